//! The content-addressed cache (`squash --cache DIR`): what a later run over the same
//! layers needs without decompressing or compressing them again.
//!
//! ```text
//! DIR/tars/<diff_id hex>    an input layer's plain tar: its sha256 is its name
//! DIR/groups/<key hex>      a layer group's record: its blob's digest, diff_id, sizes
//! DIR/results/<key hex>     a whole squash's record: the output's config, manifest
//!                           fields and report, its layers being group blobs
//! DIR/blobs/<digest hex>    a group's blob
//! DIR/tmp/                  entries being written, renamed into place when whole
//! ```
//!
//! Every entry is checked when used: a plain tar is hashed as it is indexed, a blob as
//! it is staged, a record carries its own sha256. One that fails is deleted and listed,
//! and its work done again; it is never used. Writes go to `tmp/` and are renamed when
//! whole: a run killed mid-write leaves only a temporary file, which a later trim
//! deletes. No lock is held: two runs writing one entry write the same bytes and the
//! last rename wins; a reader holds an open file, which a trim cannot take from it.
//! Last use is the file's mtime; `trim` deletes the least recently used entries beyond
//! the size bound. Failing to write an entry is a warning: the run's output never
//! depends on the cache.

use crate::digest::{Digest, Meter};
use crate::error::{Error, Result};
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// The first word of a record: a record written in another layout is not read.
const RECORD_MAGIC: &str = "ocislim-cache-1";

/// The default bound of a cache's size (`--cache-max`).
pub const DEFAULT_MAX: u64 = 10 << 30;

/// Temporary files older than this are a killed run's, deleted by `trim`.
const STALE_TMP: Duration = Duration::from_secs(3600);

/// The subfolders.
const TARS: &str = "tars";
const GROUPS: &str = "groups";
const RESULTS: &str = "results";
const BLOBS: &str = "blobs";
const TMP: &str = "tmp";

/// What a record describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A squashed layer ([`GroupRecord`]).
    Group,
    /// A whole squash: the output image and the report.
    Result,
}

impl Kind {
    fn folder(self) -> &'static str {
        match self {
            Kind::Group => GROUPS,
            Kind::Result => RESULTS,
        }
    }
}

/// A cache folder, opened for one run.
#[derive(Debug)]
pub struct Cache {
    dir: PathBuf,
    max: u64,
    notes: Mutex<Notes>,
}

/// What the store itself saw: entries dropped, writes that failed.
#[derive(Debug, Default)]
struct Notes {
    dropped: Vec<String>,
    warnings: Vec<String>,
}

/// A layer group's record: its output layer as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupRecord {
    /// The blob's digest.
    pub digest: Digest,
    /// Its size.
    pub size: u64,
    /// The plain tar's digest.
    pub diff_id: Digest,
    /// The plain tar's size.
    pub tar_size: u64,
    /// Entries written.
    pub entries: u64,
    /// Data bytes kept, by input layer.
    pub kept_by_layer: Vec<u64>,
}

impl Cache {
    /// Opens (creating) the cache folder `dir`, bounded to `max` bytes.
    pub fn open(dir: &Path, max: u64) -> Result<Cache> {
        for sub in [TARS, GROUPS, RESULTS, BLOBS, TMP] {
            std::fs::create_dir_all(dir.join(sub)).map_err(|e| {
                Error::Usage(format!(
                    "--cache: cannot use {} as a cache folder: {e}",
                    shown(dir)
                ))
            })?;
        }
        Ok(Cache {
            dir: dir.to_path_buf(),
            max,
            notes: Mutex::new(Notes::default()),
        })
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The cached plain tar of the layer whose diff_id is `diff_id`, marked used. The
    /// caller hashes it as it reads it and drops it ([`Cache::drop_entry`]) unless its
    /// digest is `diff_id`.
    pub fn tar(&self, diff_id: &Digest) -> Option<(File, PathBuf)> {
        let path = self.dir.join(TARS).join(diff_id.hex());
        let f = File::open(&path).ok()?;
        touch(&f);
        Some((f, path))
    }

    /// A new temporary file in the cache, for a layer's plain tar as it is decompressed;
    /// [`Cache::keep_tar`] names it when its digest is known.
    pub fn tar_writer(&self) -> Result<(File, tempfile::TempPath)> {
        let (f, path) = tempfile::NamedTempFile::new_in(self.dir.join(TMP))?.into_parts();
        Ok((f, path))
    }

    /// Names the plain tar written through `tmp` by its diff_id.
    pub fn keep_tar(&self, tmp: tempfile::TempPath, diff_id: &Digest) {
        let to = self.dir.join(TARS).join(diff_id.hex());
        if let Err(e) = tmp.persist(&to) {
            self.warn(&to, &e.error);
        }
    }

    /// The record of the layer group whose key is `key`, with its blob checked against
    /// its digest, both marked used; `None` (the broken one dropped) when either is
    /// missing or fails its check.
    pub fn group(&self, key: &Digest) -> Option<(GroupRecord, PathBuf)> {
        let body = self.record(Kind::Group, key)?;
        let path = self.dir.join(GROUPS).join(key.hex());
        let Some(rec) = GroupRecord::parse(&body) else {
            self.drop_entry(&path, "a record that does not parse");
            return None;
        };
        match self.blob(&rec.digest, rec.size) {
            Some(blob) => Some((rec, blob)),
            None => {
                self.drop_entry(&path, "its blob is missing or broken");
                None
            }
        }
    }

    /// Keeps the layer group `rec` under `key`, its blob copied from `blob`.
    pub fn put_group(&self, key: &Digest, rec: &GroupRecord, blob: &Path) {
        let to = self.dir.join(BLOBS).join(rec.digest.hex());
        if let Err(e) = self.place(blob, &to) {
            return self.warn(&to, &e);
        }
        self.put_record(Kind::Group, key, &rec.body());
    }

    /// The blob `digest` of `size` bytes, checked (a broken one is dropped) and marked
    /// used.
    pub fn blob(&self, digest: &Digest, size: u64) -> Option<PathBuf> {
        let blob = self.dir.join(BLOBS).join(digest.hex());
        match hash_file(&blob) {
            Ok((d, n)) if d == *digest && n == size => Some(blob),
            Ok(_) => {
                self.drop_entry(&blob, "a blob whose digest is not its name");
                None
            }
            Err(_) => None,
        }
    }

    /// A record's body, when its checksum holds (a broken one is dropped), marked used.
    pub fn record(&self, kind: Kind, key: &Digest) -> Option<Vec<u8>> {
        let path = self.dir.join(kind.folder()).join(key.hex());
        let bytes = read_capped(&path, 64 << 20).ok()?;
        let parsed = (|| {
            let nl = bytes.iter().position(|&b| b == b'\n')?;
            let head = std::str::from_utf8(&bytes[..nl]).ok()?;
            let (magic, sum) = head.split_once(' ')?;
            let body = &bytes[nl + 1..];
            (magic == RECORD_MAGIC && Digest::parse(sum)? == Digest::of(body))
                .then(|| body.to_vec())
        })();
        match parsed {
            Some(body) => {
                if let Ok(f) = File::open(&path) {
                    touch(&f);
                }
                Some(body)
            }
            None => {
                self.drop_entry(&path, "a record whose checksum fails");
                None
            }
        }
    }

    /// Writes a record atomically: its checksum, then its body.
    pub fn put_record(&self, kind: Kind, key: &Digest, body: &[u8]) {
        let path = self.dir.join(kind.folder()).join(key.hex());
        let result = (|| -> std::io::Result<()> {
            let mut tmp = tempfile::NamedTempFile::new_in(self.dir.join(TMP))?;
            writeln!(tmp, "{RECORD_MAGIC} {}", Digest::of(body))?;
            tmp.write_all(body)?;
            tmp.persist(&path).map_err(|e| e.error)?;
            Ok(())
        })();
        if let Err(e) = result {
            self.warn(&path, &e);
        }
    }

    /// Deletes the record of `kind` under `key`, saying why in the report.
    pub fn drop_record(&self, kind: Kind, key: &Digest, why: &str) {
        self.drop_entry(&self.dir.join(kind.folder()).join(key.hex()), why);
    }

    /// Deletes a cache entry that failed its check, saying why in the report.
    pub fn drop_entry(&self, path: &Path, why: &str) {
        let _ = std::fs::remove_file(path);
        self.notes
            .lock()
            .expect("cache notes")
            .dropped
            .push(format!(
                "{}: {why}",
                shown(path.strip_prefix(&self.dir).unwrap_or(path))
            ));
    }

    /// The entries dropped so far and the warnings of failed writes, taken.
    pub fn take_notes(&self) -> (Vec<String>, Vec<String>) {
        let mut n = self.notes.lock().expect("cache notes");
        (
            std::mem::take(&mut n.dropped),
            std::mem::take(&mut n.warnings),
        )
    }

    /// Deletes the least recently used entries until the cache holds at most its bound,
    /// and temporary files a killed run left; returns the bytes deleted and the bytes
    /// left.
    pub fn trim(&self) -> (u64, u64) {
        let now = SystemTime::now();
        let mut entries = Vec::new();
        for sub in [TARS, GROUPS, RESULTS, BLOBS, TMP] {
            let Ok(rd) = std::fs::read_dir(self.dir.join(sub)) else {
                continue;
            };
            for e in rd.flatten() {
                let Ok(md) = e.metadata() else { continue };
                let used = md.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                if sub == TMP {
                    if now.duration_since(used).unwrap_or_default() > STALE_TMP {
                        let _ = std::fs::remove_file(e.path());
                    }
                    continue;
                }
                entries.push((used, md.len(), e.path()));
            }
        }
        let mut total: u64 = entries.iter().map(|e| e.1).sum();
        entries.sort();
        let mut evicted = 0;
        for (_, len, path) in entries {
            if total <= self.max {
                break;
            }
            if std::fs::remove_file(&path).is_ok() {
                total -= len;
                evicted += len;
            }
        }
        (evicted, total)
    }

    /// Puts a copy of `from` at `to` through `tmp/` (a copy, never a hard link: an
    /// output's blob shares no file with the cache).
    fn place(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        let t = tempfile::Builder::new()
            .prefix(".copy-")
            .make_in(self.dir.join(TMP), |p| std::fs::copy(from, p))?;
        t.persist(to).map(|_| ()).map_err(|e| e.error)
    }

    fn warn(&self, path: &Path, e: &dyn std::fmt::Display) {
        self.notes
            .lock()
            .expect("cache notes")
            .warnings
            .push(format!("the cache could not keep {}: {e}", shown(path)));
    }
}

impl GroupRecord {
    fn body(&self) -> Vec<u8> {
        let v = serde_json::json!({
            "digest": self.digest.as_str(),
            "size": self.size,
            "diff_id": self.diff_id.as_str(),
            "tar_size": self.tar_size,
            "entries": self.entries,
            "kept_by_layer": self.kept_by_layer,
        });
        serde_json::to_vec(&v).expect("records serialise")
    }

    fn parse(body: &[u8]) -> Option<GroupRecord> {
        let v: serde_json::Value = serde_json::from_slice(body).ok()?;
        let digest = |k: &str| Digest::parse(v.get(k)?.as_str()?);
        let num = |k: &str| v.get(k)?.as_u64();
        Some(GroupRecord {
            digest: digest("digest")?,
            size: num("size")?,
            diff_id: digest("diff_id")?,
            tar_size: num("tar_size")?,
            entries: num("entries")?,
            kept_by_layer: v
                .get("kept_by_layer")?
                .as_array()?
                .iter()
                .map(|n| n.as_u64())
                .collect::<Option<Vec<u64>>>()?,
        })
    }
}

/// A cache key: the sha256 of labelled parts, each length-prefixed so no two sequences
/// of parts hash alike.
pub struct Key(Meter<std::io::Sink>);

impl Default for Key {
    fn default() -> Self {
        Key::new()
    }
}

impl Key {
    /// A key for entries of one kind and format, of this build of ocislim.
    pub fn new() -> Key {
        let mut k = Key(Meter::new(std::io::sink()));
        k.part(RECORD_MAGIC.as_bytes());
        k.part(env!("CARGO_PKG_VERSION").as_bytes());
        k
    }

    /// Adds a part.
    pub fn part(&mut self, bytes: &[u8]) -> &mut Key {
        let _ = self.0.write_all(&(bytes.len() as u64).to_le_bytes());
        let _ = self.0.write_all(bytes);
        self
    }

    /// The key.
    pub fn finish(self) -> Digest {
        self.0.finish().1
    }
}

/// A path in a message, its untrusted bytes escaped.
fn shown(p: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    crate::escape::escape(p.as_os_str().as_bytes())
}

/// Marks an entry used now (its mtime, which `trim` orders by).
fn touch(f: &File) {
    let _ = f.set_modified(SystemTime::now());
}

/// The sha256 and size of a file's bytes.
fn hash_file(path: &Path) -> std::io::Result<(Digest, u64)> {
    let mut m = Meter::new(std::io::sink());
    let mut f = File::open(path)?;
    touch(&f);
    std::io::copy(&mut f, &mut m)?;
    let (_, d, n) = m.finish();
    Ok((d, n))
}

/// A file's bytes, at most `cap` of them (a record is small; a bigger one is not one).
fn read_capped(path: &Path, cap: u64) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    File::open(path)?.take(cap).read_to_end(&mut bytes)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> GroupRecord {
        GroupRecord {
            digest: Digest::of(b"blob"),
            size: 4,
            diff_id: Digest::of(b"tar"),
            tar_size: 3,
            entries: 1,
            kept_by_layer: vec![0, 3],
        }
    }

    #[test]
    fn a_group_is_found_again_and_a_broken_one_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path(), DEFAULT_MAX).unwrap();
        let blob = dir.path().join("b");
        std::fs::write(&blob, b"blob").unwrap();
        let key = Key::new().part(b"k").finish_ref();
        cache.put_group(&key, &record(), &blob);
        assert_eq!(cache.group(&key).map(|g| g.0), Some(record()));
        // The blob corrupted: the record and the blob go.
        std::fs::write(dir.path().join(BLOBS).join(record().digest.hex()), b"blub").unwrap();
        assert_eq!(cache.group(&key), None);
        assert_eq!(cache.take_notes().0.len(), 2);
        // A record with a bad checksum.
        cache.put_group(&key, &record(), &blob);
        let rec = dir.path().join(GROUPS).join(key.hex());
        let mut bytes = std::fs::read(&rec).unwrap();
        *bytes.last_mut().unwrap() ^= 1;
        std::fs::write(&rec, bytes).unwrap();
        assert_eq!(cache.group(&key), None);
        assert!(!rec.exists());
    }

    #[test]
    fn trim_keeps_the_most_recently_used_within_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path(), 10).unwrap();
        for (i, name) in ["old", "new"].iter().enumerate() {
            let p = dir.path().join(TARS).join(name);
            std::fs::write(&p, [0u8; 8]).unwrap();
            let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1000 + i as u64);
            File::options()
                .write(true)
                .open(&p)
                .unwrap()
                .set_modified(t)
                .unwrap();
        }
        let stale = dir.path().join(TMP).join("killed");
        std::fs::write(&stale, b"partial").unwrap();
        File::options()
            .write(true)
            .open(&stale)
            .unwrap()
            .set_modified(SystemTime::UNIX_EPOCH)
            .unwrap();
        assert_eq!(cache.trim(), (8, 8));
        assert!(dir.path().join(TARS).join("new").exists());
        assert!(!stale.exists());
    }

    impl Key {
        fn finish_ref(&mut self) -> Digest {
            std::mem::take(self).finish()
        }
    }
}
