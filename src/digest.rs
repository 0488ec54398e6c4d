//! sha256 digests and the metering reader/writer that hash bytes as they stream.

use sha2::{Digest as _, Sha256};
use std::fmt;
use std::io::{self, Read, Write};

/// The only digest algorithm OCI images use in practice.
pub const SHA256_PREFIX: &str = "sha256:";

/// A `sha256:<64 hex>` digest.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Digest(String);

impl Digest {
    /// Parses `sha256:<hex>`; other algorithms and malformed strings are refused.
    pub fn parse(s: &str) -> Option<Digest> {
        (s.starts_with(SHA256_PREFIX) && Digest::is_well_formed(s)).then(|| Digest(s.to_string()))
    }

    /// Whether `s` is a well-formed digest of an algorithm the image spec registers
    /// (`sha256:<64 hex>`, `sha512:<128 hex>`, lowercase hex only): only such a string
    /// may become a file name under `blobs/<alg>/` (image-spec `descriptor.md`,
    /// "Registered algorithms").
    pub fn is_well_formed(s: &str) -> bool {
        let Some((alg, hex)) = s.split_once(':') else {
            return false;
        };
        let len = match alg {
            "sha256" => 64,
            "sha512" => 128,
            _ => return false,
        };
        hex.len() == len && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    }

    /// The digest of a byte slice.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest::from_hasher(Sha256::new_with_prefix(bytes))
    }

    fn from_hasher(h: Sha256) -> Digest {
        Digest(format!("{SHA256_PREFIX}{}", hex::encode(h.finalize())))
    }

    /// The hex part, which names the blob under `blobs/sha256/`.
    pub fn hex(&self) -> &str {
        &self.0[SHA256_PREFIX.len()..]
    }

    /// The full `sha256:<hex>` string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Counts and hashes what passes through, reading or writing.
pub struct Meter<T> {
    inner: T,
    hasher: Sha256,
    count: u64,
    /// When set, only counts: the bytes are hashed elsewhere ([`Meter::hashing_off`]).
    off: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

impl<T> Meter<T> {
    /// Wraps a reader or writer.
    pub fn new(inner: T) -> Self {
        Meter {
            inner,
            hasher: Sha256::new(),
            count: 0,
            off: None,
        }
    }

    /// A meter that stops hashing (and only counts) once `off` is set, for bytes that
    /// turn out to be hashed elsewhere too: its digest is then of a prefix, not to be
    /// used.
    pub fn hashing_off(inner: T, off: std::sync::Arc<std::sync::atomic::AtomicBool>) -> Self {
        Meter {
            off: Some(off),
            ..Meter::new(inner)
        }
    }

    fn hashing(&self) -> bool {
        !self
            .off
            .as_ref()
            .is_some_and(|o| o.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Bytes seen so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The wrapped value, the digest and the byte count.
    pub fn finish(self) -> (T, Digest, u64) {
        (self.inner, Digest::from_hasher(self.hasher), self.count)
    }

    /// The wrapped value.
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.inner
    }
}

impl<R: Read> Read for Meter<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if self.hashing() {
            self.hasher.update(&buf[..n]);
        }
        self.count += n as u64;
        Ok(n)
    }
}

impl<W: Write> Write for Meter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Copies everything read from `inner` into `tee` as well.
pub struct TeeReader<R, W> {
    inner: R,
    tee: W,
}

impl<R, W> TeeReader<R, W> {
    /// Reads from `inner`, copying to `tee`.
    pub fn new(inner: R, tee: W) -> Self {
        TeeReader { inner, tee }
    }

    /// The reader and the writer.
    pub fn into_parts(self) -> (R, W) {
        (self.inner, self.tee)
    }
}

impl<R: Read, W: Write> Read for TeeReader<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.tee.write_all(&buf[..n])?;
        Ok(n)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
        let s = String::deserialize(d)?;
        Digest::parse(&s).ok_or_else(|| serde::de::Error::custom("not a sha256 digest"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_only_lowercase_sha256() {
        let hex = "a".repeat(64);
        for (s, ok) in [
            (format!("sha256:{hex}"), true),
            (format!("sha256:{}", "A".repeat(64)), false),
            (format!("sha512:{hex}"), false),
            (format!("sha256:{}", "a".repeat(63)), false),
            ("sha256:../../etc/passwd".to_string(), false),
        ] {
            assert_eq!(Digest::parse(&s).is_some(), ok, "{s}");
        }
    }

    #[test]
    fn meter_hashes_what_it_reads() {
        let mut m = Meter::new(&b"hello"[..]);
        io::copy(&mut m, &mut io::sink()).unwrap();
        let (_, d, n) = m.finish();
        assert_eq!(n, 5);
        assert_eq!(
            d.as_str(),
            "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
    }
}
