//! Writes the squashed layer's tar from a plan: unchanged entries are copied as raw
//! bytes from each layer's plain tar (extension headers, header, data and padding);
//! only entries that change (a promoted hard-link alias, a relinked link, a
//! synthesized whiteout, an entry moved under a symlinked parent) get a new header, and
//! `--timestamp` edits only the time fields of the headers it copies. New headers write
//! long names as GNU `L`/`K` records, which carry any bytes, so non-UTF-8 names survive.

use super::headers::{WalkError, Walker};
use super::index::{EntryRec, Kind, OPAQUE_MARKER, WHITEOUT_PREFIX};
use super::overlay::{Emit, EntryId};
use super::path::{join, split_parent};
use crate::error::{Error, Result};
use crate::section::Section;
use std::fs::File;
use std::io::{self, Read, Write};
use std::sync::Arc;

const BLOCK: usize = 512;
const NAME_FIELD: usize = 100;
const GNU_LONG_NAME: &[u8] = b"././@LongLink";

/// A layer's plain tar, spooled, with its index.
pub struct Spool {
    /// The file holding the plain tar: a spool file, or the source itself when the
    /// layer is stored uncompressed (read in place).
    pub file: Arc<File>,
    /// Where the tar starts in `file`.
    pub base: u64,
    /// Its entries, with spans relative to `base`.
    pub entries: Vec<EntryRec>,
}

impl Spool {
    /// The bytes `start..end` of the tar.
    fn range(&self, start: u64, end: u64) -> Section<&File> {
        Section::new(&self.file, self.base + start, self.base + end)
    }
}

/// An entry read back whole from its spool.
struct Parsed {
    header: tar::Header,
    pax: Vec<(Vec<u8>, Vec<u8>)>,
    link: Option<Vec<u8>>,
}

fn parse(spool: &Spool, rec: &EntryRec) -> Result<Parsed> {
    let range = spool.range(rec.span.0, rec.span.1);
    let mut walker = Walker::new(range);
    let entry = match walker.next_entry() {
        Ok(Some(e)) => e,
        Ok(None) => return Err(Error::corrupt("spooled layer", "entry vanished")),
        Err(WalkError::Io(e)) => return Err(e.into()),
        Err(WalkError::Refused(why)) => return Err(Error::corrupt("spooled layer", why)),
    };
    let pax = entry
        .pax
        .into_iter()
        .filter(|(k, _)| !matches!(k.as_slice(), b"path" | b"linkpath" | b"size"))
        .collect();
    let link = (entry.kind.is_hard_link() || entry.kind.is_symlink()).then_some(entry.link);
    Ok(Parsed {
        header: entry.header,
        pax,
        link,
    })
}

/// Writes a new entry at `path`: a regular file holding `data`, or a symlink to `link`,
/// with every other field and extension record (mtime to the nanosecond, xattrs, owner
/// names) of the entry `rec` of `spool`; a symlink's mode is `0777`.
pub fn write_like(
    w: &mut impl Write,
    (spool, rec): (&Spool, &EntryRec),
    path: &[u8],
    link: Option<&[u8]>,
    data: &[u8],
) -> Result<()> {
    let Parsed {
        mut header, pax, ..
    } = parse(spool, rec)?;
    match link {
        Some(_) => {
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_mode(0o777);
        }
        None => header.set_entry_type(tar::EntryType::Regular),
    }
    let size = if link.is_some() { 0 } else { data.len() as u64 };
    write_entry(w, header, path, link, &pax, data, size)
}

/// The end of a tar: two zero blocks.
pub fn finish_tar(w: &mut impl Write) -> io::Result<()> {
    w.write_all(&[0u8; 2 * BLOCK])
}

fn pad(w: &mut impl Write, len: u64) -> io::Result<()> {
    let rem = (len % BLOCK as u64) as usize;
    if rem != 0 {
        w.write_all(&[0u8; BLOCK][..BLOCK - rem])?;
    }
    Ok(())
}

fn long_record(w: &mut impl Write, kind: u8, value: &[u8]) -> io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.as_old_mut().name[..GNU_LONG_NAME.len()].copy_from_slice(GNU_LONG_NAME);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::new(kind));
    h.set_size(value.len() as u64 + 1);
    h.set_cksum();
    w.write_all(h.as_bytes())?;
    w.write_all(value)?;
    w.write_all(&[0])?;
    pad(w, value.len() as u64 + 1)
}

fn pax_record(key: &[u8], value: &[u8]) -> Vec<u8> {
    // "%d %s=%s\n", where the length counts itself.
    let body = key.len() + value.len() + 3;
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    [format!("{len} ").as_bytes(), key, b"=", value, b"\n"].concat()
}

fn set_field(field: &mut [u8], value: &[u8]) {
    field.fill(0);
    let n = value.len().min(field.len());
    field[..n].copy_from_slice(&value[..n]);
}

/// Writes one entry with a new name and link target, keeping `header`'s other fields.
fn write_entry(
    w: &mut impl Write,
    mut header: tar::Header,
    path: &[u8],
    link: Option<&[u8]>,
    pax: &[(Vec<u8>, Vec<u8>)],
    data: impl Read,
    size: u64,
) -> Result<()> {
    if !pax.is_empty() {
        let body: Vec<u8> = pax.iter().flat_map(|(k, v)| pax_record(k, v)).collect();
        let mut h = tar::Header::new_ustar();
        set_field(&mut h.as_old_mut().name, b"././@PaxHeader");
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::XHeader);
        h.set_size(body.len() as u64);
        h.set_cksum();
        w.write_all(h.as_bytes())?;
        w.write_all(&body)?;
        pad(w, body.len() as u64)?;
    }
    if path.len() > NAME_FIELD {
        long_record(w, b'L', path)?;
    }
    if let Some(l) = link.filter(|l| l.len() > NAME_FIELD) {
        long_record(w, b'K', l)?;
    }
    if let Some(u) = header.as_ustar_mut() {
        u.prefix.fill(0);
    }
    set_field(&mut header.as_old_mut().name, path);
    set_field(&mut header.as_old_mut().linkname, link.unwrap_or_default());
    header.set_size(size);
    header.set_cksum();
    w.write_all(header.as_bytes())?;
    let copied = io::copy(&mut data.take(size), w)?;
    if copied != size {
        return Err(Error::corrupt("spooled layer", "entry data is short"));
    }
    Ok(pad(w, size)?)
}

/// The header of a synthesized whiteout or opaque marker: an empty file, fixed metadata.
fn marker() -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h
}

/// What emitting wrote, per input layer: bytes of entry data carried over.
#[derive(Clone, Debug, Default)]
pub struct EmitStats {
    /// Entries written.
    pub entries: u64,
    /// Data bytes kept, by input layer position (from 0).
    pub kept_by_layer: Vec<u64>,
}

/// Emission knobs.
#[derive(Clone, Copy, Debug, Default)]
pub struct EmitOptions {
    /// Clamp every entry's mtime to at most this (`--timestamp`, `SOURCE_DATE_EPOCH`);
    /// entries it changes get a new header, the rest are still copied raw.
    pub clamp_mtime: Option<u64>,
}

/// Clamps the mtime of a parsed entry; returns whether anything changed.
fn clamp(parsed: &mut Parsed, limit: u64) -> bool {
    let header = clamp_header(&mut parsed.header, limit);
    clamp_records(&mut parsed.pax, limit) || header
}

/// Sets a header's mtime field to `limit` when it is later; returns whether it was.
fn clamp_header(header: &mut tar::Header, limit: u64) -> bool {
    let later = header.mtime().is_ok_and(|t| t > limit);
    if later {
        header.set_mtime(limit);
    }
    later
}

/// Copies an entry that only `--timestamp` changes, as GNU tar's `--clamp-mtime` would:
/// its extension headers and header as stored, with each mtime field and each PAX
/// `mtime`, `atime` and `ctime` later than `limit` set to it. Names (`./` prefixes, PAX
/// paths, ustar prefixes, GNU long names), other records and data stay byte for byte.
fn copy_clamped(mut src: impl Read, limit: u64, w: &mut impl Write) -> Result<()> {
    loop {
        let mut block = [0u8; BLOCK];
        src.read_exact(&mut block)?;
        let mut header = tar::Header::from_byte_slice(&block).clone();
        let mut changed = clamp_header(&mut header, limit);
        if !matches!(block[156], b'x' | b'L' | b'K') {
            if changed {
                header.set_cksum();
            }
            w.write_all(header.as_bytes())?;
            io::copy(&mut src, w)?;
            return Ok(());
        }
        let size = header.entry_size()?;
        let mut data = vec![0; size.div_ceil(BLOCK as u64) as usize * BLOCK];
        src.read_exact(&mut data)?;
        if block[156] == b'x' {
            let mut records = super::headers::parse_pax(&data[..size as usize])
                .map_err(|why| Error::corrupt("spooled layer", why))?;
            if clamp_records(&mut records, limit) {
                data = records.iter().flat_map(|(k, v)| pax_record(k, v)).collect();
                header.set_size(data.len() as u64);
                data.resize(data.len().div_ceil(BLOCK) * BLOCK, 0);
                changed = true;
            }
        }
        if changed {
            header.set_cksum();
        }
        w.write_all(header.as_bytes())?;
        w.write_all(&data)?;
    }
}

/// Sets PAX `mtime`, `atime` and `ctime` records later than `limit` to it; returns
/// whether any was.
fn clamp_records(pax: &mut [(Vec<u8>, Vec<u8>)], limit: u64) -> bool {
    let mut changed = false;
    for (k, v) in pax.iter_mut() {
        if matches!(k.as_slice(), b"mtime" | b"atime" | b"ctime") {
            let secs: f64 = std::str::from_utf8(v)
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0.0);
            if secs > limit as f64 {
                *v = limit.to_string().into_bytes();
                changed = true;
            }
        }
    }
    changed
}

// Long: the emission loop, one arm per plan step (raw copy, promoted alias, relink,
// whiteout) writing one tar stream and counting what it wrote.
/// Writes the squashed layer's tar for `plan` into `w`, ending with the two zero
/// blocks that close a tar.
pub fn emit(
    plan: &[Emit],
    spools: &[Spool],
    opts: EmitOptions,
    w: &mut impl Write,
) -> Result<EmitStats> {
    let rec = |id: EntryId| &spools[id.layer].entries[id.entry];
    let mut stats = EmitStats {
        entries: 0,
        kept_by_layer: vec![0; spools.len()],
    };
    for step in plan {
        match step {
            Emit::Raw(id) => {
                let r = rec(*id);
                let spool = &spools[id.layer];
                // Copied byte for byte; --timestamp changes only its times; the merge
                // moved it (a parent was a symlink): it gets a new header and name.
                if r.moved {
                    let mut parsed = parse(spool, r)?;
                    if let Some(limit) = opts.clamp_mtime {
                        clamp(&mut parsed, limit);
                    }
                    if let Kind::Hardlink(target) = &r.kind {
                        parsed.link = Some(target.clone());
                    }
                    write_entry(
                        w,
                        parsed.header,
                        &r.path,
                        parsed.link.as_deref(),
                        &parsed.pax,
                        spool.range(r.data_offset, r.data_offset + r.size),
                        r.size,
                    )?;
                } else if let Some(limit) = opts.clamp_mtime {
                    copy_clamped(spool.range(r.span.0, r.span.1), limit, w)?;
                } else {
                    io::copy(&mut spool.range(r.span.0, r.span.1), w)?;
                }
                stats.kept_by_layer[id.layer] += r.size;
            }
            Emit::Promote { alias, carrier } => {
                let c = rec(*carrier);
                let parsed = parse(&spools[carrier.layer], c)?;
                let data = spools[carrier.layer].range(c.data_offset, c.data_offset + c.size);
                let mut parsed = parsed;
                if let Some(limit) = opts.clamp_mtime {
                    clamp(&mut parsed, limit);
                }
                let link = parsed
                    .link
                    .clone()
                    .filter(|_| parsed.header.entry_type().is_symlink());
                write_entry(
                    w,
                    parsed.header,
                    &rec(*alias).path,
                    link.as_deref(),
                    &parsed.pax,
                    data,
                    c.size,
                )?;
                stats.kept_by_layer[carrier.layer] += c.size;
            }
            Emit::Relink { link, target } => {
                let l = rec(*link);
                let mut parsed = parse(&spools[link.layer], l)?;
                if let Some(limit) = opts.clamp_mtime {
                    clamp(&mut parsed, limit);
                }
                write_entry(
                    w,
                    parsed.header,
                    &l.path,
                    Some(target),
                    &parsed.pax,
                    io::empty(),
                    0,
                )?;
            }
            Emit::Whiteout(p) => {
                let (dir, name) = split_parent(p);
                let path = join(dir, &[WHITEOUT_PREFIX, name].concat());
                write_entry(w, marker(), &path, None, &[], io::empty(), 0)?;
            }
            Emit::Opaque(d) => {
                let path = join(d, OPAQUE_MARKER);
                write_entry(w, marker(), &path, None, &[], io::empty(), 0)?;
            }
        }
        stats.entries += 1;
    }
    w.write_all(&[0u8; 2 * BLOCK])?;
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_length_counts_itself() {
        for (k, v) in [
            ("a", &b"b"[..]),
            ("SCHILY.xattr.user.x", &[b'z'; 95][..]),
            ("k", &[0u8; 993][..]),
        ] {
            let r = pax_record(k.as_bytes(), v);
            let len: usize = std::str::from_utf8(&r[..r.iter().position(|&b| b == b' ').unwrap()])
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(len, r.len());
        }
    }
}
