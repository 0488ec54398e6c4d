//! Streams one layer blob: hashes the blob and its uncompressed tar as they pass,
//! walks the tar headers (counting entries, refusing unsafe names) and optionally
//! copies the blob, raw or re-encoded, to a writer, in a single read.
//!
//! ```text
//! blob ─► Meter (blob digest) ─► tee raw ─► Decoder (sniffed) ─► Meter (diff_id)
//!                                                           └─► tee to Encoder ─► out
//!                                              tar headers ◄─┘
//! ```

use super::codec::{Compression, Decoder, EncodeOptions, Encoder};
use super::headers::{WalkError, Walker};
use super::index::{EntryRec, IndexMode, Kind, record};
use crate::digest::{Digest, Meter, TeeReader};
use crate::error::{Error, Result};
use std::io::{self, BufReader, Read, Write};

/// What streaming a layer found.
#[derive(Clone, Debug)]
pub struct LayerScan {
    /// The codec sniffed from the blob.
    pub compression: Compression,
    /// sha256 of the blob as stored.
    pub blob_digest: Digest,
    /// Size of the blob as stored.
    pub blob_size: u64,
    /// sha256 of the uncompressed tar.
    pub diff_id: Digest,
    /// Size of the uncompressed tar.
    pub tar_size: u64,
    /// Tar entries, counting each PAX/GNU-extended entry once.
    pub entries: u64,
}

/// Where the streamed layer goes, besides being checked.
pub enum Copy<W: Write> {
    /// Nowhere: only check and measure.
    Nothing,
    /// The blob's bytes as they are.
    Raw(W),
    /// The uncompressed tar, re-encoded.
    Reencode(W, EncodeOptions),
}

/// A writer that may be absent.
struct Maybe<W>(Option<W>);

impl<W: Write> Write for Maybe<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.0 {
            Some(w) => w.write(buf),
            None => Ok(buf.len()),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.0 {
            Some(w) => w.flush(),
            None => Ok(()),
        }
    }
}

const READ_BUFFER: usize = 256 * 1024;

/// Streams `blob` (named `what` in errors), checking that its tar is whole and safe.
/// Returns what it found and the writer of `copy`, finished.
pub fn scan<R: Read, W: Write>(
    blob: R,
    what: &str,
    copy: Copy<W>,
) -> Result<(LayerScan, Option<W>)> {
    let (raw_tee, reencode) = match copy {
        Copy::Nothing => (None, None),
        Copy::Raw(w) => (Some(w), None),
        Copy::Reencode(w, opts) => (None, Some(Encoder::new(w, opts)?)),
    };
    let (scan, raw, enc, _) = scan_full(blob, what, raw_tee, reencode, IndexMode::Off)?;
    let out = match (raw, enc) {
        (Some(w), _) => Some(w),
        (None, Some(e)) => Some(e.finish()?),
        (None, None) => None,
    };
    Ok((scan, out))
}

/// What [`scan_full`] hands back: the scan, both writers, and the entry index.
pub type FullScan<W1, W2> = (LayerScan, Option<W1>, Option<Encoder<W2>>, Vec<EntryRec>);

/// [`scan`] with both taps at once (the raw blob and the uncompressed tar, re-encoded
/// or spooled) and, with `index`, a record of every entry.
pub fn scan_full<R: Read, W1: Write, W2: Write>(
    blob: R,
    what: &str,
    raw_tee: Option<W1>,
    reencode: Option<Encoder<W2>>,
    index: IndexMode,
) -> Result<FullScan<W1, W2>> {
    let corrupt = |e: io::Error| Error::corrupt(what, e);
    let mut records = Vec::new();
    // A plain tar's blob digest is its diff_id: hashed once, by the tar's meter.
    let plain = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let metered = Meter::hashing_off(TeeReader::new(blob, Maybe(raw_tee)), plain.clone());
    let buffered = BufReader::with_capacity(READ_BUFFER, metered);
    let (compression, decoder) = Decoder::sniff(buffered).map_err(|e| match e {
        Error::Io(io) => corrupt(io),
        other => other,
    })?;
    plain.store(
        compression == Compression::None,
        std::sync::atomic::Ordering::Relaxed,
    );
    let tar_meter = Meter::new(TeeReader::new(decoder, Maybe(reencode)));
    let mut walker = Walker::new(tar_meter);
    let mut entries = 0u64;
    loop {
        let entry = match walker.next_entry() {
            Ok(Some(e)) => e,
            Ok(None) => break,
            Err(WalkError::Io(e)) => return Err(corrupt(e)),
            Err(WalkError::Refused(why)) => {
                return Err(Error::Unsupported {
                    what: what.to_string(),
                    reason: format!("tar header before byte {}: {why}", walker.position()),
                });
            }
        };
        let mut rec = record(&entry).map_err(|bad| Error::UnsafePath {
            layer: what.to_string(),
            path: bad,
        })?;
        if index != IndexMode::Off {
            if index == IndexMode::EntriesWithDigests && rec.kind == Kind::File {
                let mut m = Meter::new(io::sink());
                io::copy(&mut walker.data(), &mut m).map_err(corrupt)?;
                rec.digest = Some(m.finish().1);
            }
            records.push(rec);
        }
        entries += 1;
    }
    let mut tar_meter = walker.into_inner();
    // The tar's end-of-archive blocks and record padding belong to the diff_id too.
    io::copy(&mut tar_meter, &mut io::sink()).map_err(corrupt)?;
    let (tee, diff_id, tar_size) = tar_meter.finish();
    let (decoder, Maybe(encoder)) = tee.into_parts();
    // Whatever follows the last compressed frame still belongs to the blob's digest.
    let mut buffered = decoder.into_inner();
    io::copy(&mut buffered, &mut io::sink()).map_err(corrupt)?;
    let (tee, blob_digest, blob_size) = buffered.into_inner().finish();
    let blob_digest = match compression {
        Compression::None => diff_id.clone(),
        _ => blob_digest,
    };
    let (_, Maybe(raw)) = tee.into_parts();
    let scan = LayerScan {
        compression,
        blob_digest,
        blob_size,
        diff_id,
        tar_size,
        entries,
    };
    Ok((scan, raw, encoder, records))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_with(names: &[&str]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for n in names {
            let mut h = tar::Header::new_gnu();
            h.set_size(3);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            // set_path refuses `..`; write the raw name as a hostile writer would.
            h.as_old_mut().name[..n.len()].copy_from_slice(n.as_bytes());
            h.set_cksum();
            b.append(&h, &b"abc"[..]).unwrap();
        }
        b.into_inner().unwrap()
    }

    /// Hands out at most a few bytes per read, as pipes and sockets do.
    struct Dribble<R>(R, usize);
    impl<R: Read> Read for Dribble<R> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.1 = self.1 % 7 + 1;
            let n = buf.len().min(self.1);
            self.0.read(&mut buf[..n])
        }
    }

    #[test]
    fn counts_entries_and_hashes_through_short_reads() {
        let tar = tar_with(&["a", "./b", "c/d"]);
        let (scan, _) = scan::<_, Vec<u8>>(Dribble(&tar[..], 0), "t", Copy::Nothing).unwrap();
        assert_eq!(scan.entries, 3);
        assert_eq!(scan.tar_size, tar.len() as u64);
        assert_eq!(scan.diff_id, Digest::of(&tar));
        assert_eq!(scan.blob_digest, Digest::of(&tar));
    }

    #[test]
    fn reencode_round_trips_and_raw_copies_bytes() {
        let tar = tar_with(&["a"]);
        let opts = EncodeOptions {
            compression: Compression::Zstd,
            level: None,
            threads: 1,
        };
        let (_, z) = scan(&tar[..], "t", Copy::Reencode(Vec::new(), opts)).unwrap();
        let z = z.unwrap();
        let (scan2, raw) = scan(&z[..], "z", Copy::Raw(Vec::new())).unwrap();
        assert_eq!(raw.unwrap(), z);
        assert_eq!(scan2.compression, Compression::Zstd);
        assert_eq!(scan2.diff_id, Digest::of(&tar));
        assert_eq!(scan2.blob_digest, Digest::of(&z));
    }

    #[test]
    fn climbing_name_is_unsafe() {
        let tar = tar_with(&["ok", "../../etc/passwd"]);
        let err = scan::<_, Vec<u8>>(&tar[..], "layer 1", Copy::Nothing).unwrap_err();
        assert!(matches!(err, Error::UnsafePath { .. }), "{err}");
        assert!(err.to_string().contains("../../etc/passwd"), "{err}");
    }

    #[test]
    fn truncated_tar_is_corrupt() {
        let tar = tar_with(&["a", "b"]);
        let err = scan::<_, Vec<u8>>(&tar[..600], "layer 1", Copy::Nothing).unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    }
}
