//! A strict tar header walker: reads a layer's tar the way Go's `archive/tar` (which
//! Docker, containerd and skopeo use) reads it, and refuses every header on which
//! mainstream readers (Go, libarchive, Python's `tarfile`, the `tar` crate) could see
//! different entries, so the names ocislim checks and merges are the names a runtime
//! unpacks.
//!
//! ```text
//! [x: PAX records] [L: GNU long name] [K: GNU long link]  header  data  padding
//! └──────────── extension headers, at most one of each ──┘
//! ```
//! What is refused, and why (each is a known disagreement between readers):
//! - a header-only entry (directory, link, device, FIFO) with a non-zero size: Go,
//!   libarchive and Python read the next header right after it, the `tar` crate skips
//!   `size` bytes first;
//! - an extension header (`x`, `g`, `L`, `K`) without the ustar or GNU magic: Go applies
//!   it, the `tar` crate returns it as a file;
//! - two extension headers of one kind before one entry, an extension header before a
//!   global header or the end, and a GNU long name beside a PAX `path` (readers pick
//!   different winners);
//! - malformed PAX records (Go's `parsePAXRecord` rules: a decimal length that counts
//!   itself, `key=value`, a newline), a NUL inside a `path`, `linkpath`, `uname` or
//!   `gname`, non-numeric or negative `size`, `uid`, `gid`, malformed times;
//! - PAX records whose `path`, `linkpath` or `size` a reader splitting records on
//!   newlines (the `tar` crate) reads differently: a newline inside a value, which can
//!   hide or forge a record, or one of those keys given twice (Go keeps the last, the
//!   `tar` crate the first);
//! - a NUL inside a GNU long name, or more than one after it (Go cuts at the first, the
//!   `tar` crate drops one), an empty one (Go ignores it, the `tar` crate applies it);
//! - a non-directory whose name ends in `/` (Go reads an old-style one as a directory);
//! - a size or checksum field that is not clean octal or base-256, a zero block followed
//!   by a non-zero one (Go refuses, others stop), entry types no runtime applies.
//!
//! A PAX global header (`g`) is parsed as strictly, then ignored, as Docker and
//! containerd ignore its records: it never renames or resizes the entry after it. One
//! that carries a `path` or `linkpath`, or whose own name is a whiteout, is refused:
//! Go names the header itself by its `path`, and Docker then applies a whiteout so
//! named, while umoci refuses every global header.
//! Extension data is held in memory up to [`MAX_EXTENSION`] bytes, Go's own limit.

use std::io::{self, Read};

/// Largest PAX or GNU extension record ocislim reads (Go's `maxSpecialFileSize`).
pub const MAX_EXTENSION: u64 = 1 << 20;

const BLOCK: u64 = 512;

/// One logical entry: its main header and what its extension headers said.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The main header block, as stored.
    pub header: tar::Header,
    /// The entry type.
    pub kind: tar::EntryType,
    /// The name as a runtime reads it (PAX `path`, GNU long name, or prefix + name).
    pub path: Vec<u8>,
    /// The link target (PAX `linkpath`, GNU long link, or the header's field).
    pub link: Vec<u8>,
    /// PAX records of its `x` header, in order, as stored.
    pub pax: PaxRecords,
    /// Size of its data (PAX `size` applied).
    pub size: u64,
    /// Where its first extension header (or its header) starts.
    pub start: u64,
    /// Where its data starts.
    pub data_offset: u64,
}

impl Entry {
    /// Where the entry ends (data padded to a block).
    pub fn end(&self) -> u64 {
        self.data_offset + self.size.div_ceil(BLOCK) * BLOCK
    }

    /// Whether the entry is a PAX global header, to be ignored.
    pub fn is_global(&self) -> bool {
        self.kind == tar::EntryType::XGlobalHeader
    }
}

/// Walks the entries of a tar stream; call [`Walker::data`] to read an entry's data.
pub struct Walker<R> {
    inner: R,
    /// How data not read is passed over: read through, or sought over.
    skip: fn(&mut R, u64) -> io::Result<u64>,
    pos: u64,
    /// Where the current entry's data ends, padding included.
    next: u64,
    /// Unread data of the current entry.
    left: u64,
    done: bool,
}

type Refusal = String;

/// PAX records as stored: key, value.
pub type PaxRecords = Vec<(Vec<u8>, Vec<u8>)>;

fn octal_or_base256(field: &[u8], what: &str) -> Result<u64, Refusal> {
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        // Base-256: a positive big-endian number after the marker byte.
        if field[0] != 0x80 {
            return Err(format!("negative or oversized base-256 {what}"));
        }
        let mut n: u64 = 0;
        for &b in &field[1..] {
            n = n
                .checked_mul(256)
                .and_then(|n| n.checked_add(b as u64))
                .ok_or_else(|| format!("{what} overflows"))?;
        }
        return Ok(n);
    }
    // Go's parseOctal: spaces and NULs trimmed at both ends, then octal digits only.
    let trimmed = trim(field);
    if trimmed.is_empty() {
        return Ok(0);
    }
    if !trimmed.iter().all(|b| (b'0'..=b'7').contains(b)) {
        return Err(format!("{what} field is not octal"));
    }
    let s = std::str::from_utf8(trimmed).expect("octal digits");
    u64::from_str_radix(s, 8).map_err(|_| format!("{what} overflows"))
}

fn trim(field: &[u8]) -> &[u8] {
    let keep = |b: &u8| *b != b' ' && *b != 0;
    let Some(start) = field.iter().position(keep) else {
        return &[];
    };
    let end = field.iter().rposition(keep).expect("found one") + 1;
    &field[start..end]
}

/// Up to the first NUL, as every reader cuts a header's string fields.
fn cstr(field: &[u8]) -> &[u8] {
    field
        .iter()
        .position(|&b| b == 0)
        .map_or(field, |i| &field[..i])
}

/// The header's format, as Go's `getFormat` tells it.
#[derive(PartialEq, Eq, Clone, Copy)]
enum Format {
    V7,
    Ustar,
    Gnu,
}

fn format(block: &[u8; 512]) -> Result<Format, Refusal> {
    let magic = &block[257..263];
    let version = &block[263..265];
    let trailer = &block[508..512];
    match (magic, version) {
        // Go's getFormat reads `ustar\0` as ustar whatever the version, so does
        // libarchive; GNU tar 1.13's `ustar\0` + ` \0` (moby/go-archive's `broken.tar`)
        // is read with its prefix by both.
        (b"ustar\0", b"00" | b" \0") if trailer != b"tar\0" => Ok(Format::Ustar),
        (b"ustar ", b" \0") => Ok(Format::Gnu),
        _ if magic.starts_with(b"ustar") => Err(format!(
            "ambiguous tar magic {:?} {:?} (readers disagree on its fields)",
            crate::layer::path::escape(magic),
            crate::layer::path::escape(version)
        )),
        _ => Ok(Format::V7),
    }
}

/// Parses PAX records by Go's `parsePAXRecord` rules; later records of a key win.
pub fn parse_pax(mut data: &[u8]) -> Result<PaxRecords, Refusal> {
    let bad = |why: &str| Err(format!("malformed PAX record: {why}"));
    let mut out = Vec::new();
    while !data.is_empty() {
        let Some(sp) = data.iter().position(|&b| b == b' ') else {
            return bad("no length");
        };
        let digits = &data[..sp];
        if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
            return bad("length is not a decimal number");
        }
        let len: usize = std::str::from_utf8(digits)
            .expect("digits")
            .parse()
            .map_err(|_| "length overflows".to_string())?;
        if len < 5 || len > data.len() || len <= sp + 1 {
            return bad("length out of range");
        }
        let (rec, rest) = data.split_at(len);
        if rec[len - 1] != b'\n' {
            return bad("length does not end at a newline");
        }
        let kv = &rec[sp + 1..len - 1];
        let Some(eq) = kv.iter().position(|&b| b == b'=') else {
            return bad("no '='");
        };
        let (key, value) = (&kv[..eq], &kv[eq + 1..]);
        if key.is_empty() || key.contains(&0) {
            return bad("empty key or NUL in a key");
        }
        if matches!(key, b"path" | b"linkpath" | b"uname" | b"gname") && value.contains(&0) {
            return bad("NUL inside a name");
        }
        check_pax_value(key, value)?;
        out.push((key.to_vec(), value.to_vec()));
        data = rest;
    }
    Ok(out)
}

fn check_pax_value(key: &[u8], value: &[u8]) -> Result<(), Refusal> {
    let digits = |v: &[u8]| !v.is_empty() && v.len() <= 18 && v.iter().all(u8::is_ascii_digit);
    match key {
        b"size" | b"uid" | b"gid" if !digits(value) => Err(format!(
            "PAX {} is not a non-negative decimal number",
            String::from_utf8_lossy(key)
        )),
        b"mtime" | b"atime" | b"ctime" => {
            let v = value.strip_prefix(b"-").unwrap_or(value);
            let (secs, frac) = match v.iter().position(|&b| b == b'.') {
                Some(i) => (&v[..i], Some(&v[i + 1..])),
                None => (v, None),
            };
            if digits(secs) && frac.is_none_or(|f| f.iter().all(u8::is_ascii_digit)) {
                Ok(())
            } else {
                Err(format!(
                    "PAX {} is not a time",
                    String::from_utf8_lossy(key)
                ))
            }
        }
        _ if key.starts_with(b"GNU.sparse") => Err(
            "the entry is a sparse file (GNU.sparse PAX records); sparse entries are not supported"
                .into(),
        ),
        _ => Ok(()),
    }
}

fn pax_value<'a>(pax: &'a [(Vec<u8>, Vec<u8>)], key: &[u8]) -> Option<&'a [u8]> {
    pax.iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_slice())
}

/// What a reader that splits PAX records on newlines (the `tar` crate) takes for `key`:
/// the first line that is a whole record of that key; nothing after an empty line.
fn line_split_value<'a>(data: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    for line in data.split(|&b| b == b'\n') {
        if line.is_empty() {
            return None;
        }
        let Some(sp) = line.iter().position(|&b| b == b' ') else {
            continue;
        };
        let len = std::str::from_utf8(&line[..sp])
            .ok()
            .and_then(|l| l.parse::<usize>().ok());
        if len != Some(line.len() + 1) {
            continue;
        }
        let kv = &line[sp + 1..];
        match kv.iter().position(|&b| b == b'=') {
            Some(eq) if &kv[..eq] == key => return Some(&kv[eq + 1..]),
            _ => {}
        }
    }
    None
}

/// Refuses PAX records whose `path`, `linkpath` or `size` a line-splitting reader reads
/// differently from Go, libarchive and Python (which read by length, the last record
/// of a key winning): a newline inside a value can hide a record or forge one, and a
/// key given twice picks another winner (found by the `tar_differential` fuzz target).
fn check_line_split(data: &[u8], records: &PaxRecords) -> Result<(), Refusal> {
    for key in [&b"path"[..], b"linkpath", b"size"] {
        if line_split_value(data, key) != pax_value(records, key) {
            return Err(format!(
                "PAX records that readers splitting them on newlines (the tar crate) read \
                 as another {} (a newline inside a value, or a key given twice)",
                String::from_utf8_lossy(key)
            ));
        }
    }
    Ok(())
}

/// A GNU long name or link: the name and at most one NUL, as GNU tar, Go and Python
/// write it. Go cuts at the first NUL, the `tar` crate drops only one trailing NUL: any
/// other byte after the name makes them disagree (found by the `tar_differential`
/// fuzz target).
fn long_name(data: Vec<u8>, what: &str) -> Result<Vec<u8>, Refusal> {
    let name = cstr(&data);
    if data[name.len()..].iter().any(|&b| b != 0) {
        return Err(format!("NUL inside a GNU long {what}"));
    }
    if data.len() > name.len() + 1 {
        return Err(format!("a GNU long {what} padded with NULs"));
    }
    if name.is_empty() {
        return Err(format!("empty GNU long {what}"));
    }
    Ok(name.to_vec())
}

fn read_through<R: Read>(r: &mut R, n: u64) -> io::Result<u64> {
    io::copy(&mut r.take(n), &mut io::sink())
}

fn seek_over<R: Read + io::Seek>(r: &mut R, n: u64) -> io::Result<u64> {
    let n_signed = i64::try_from(n).map_err(|_| io::Error::other("size overflows"))?;
    r.seek(io::SeekFrom::Current(n_signed))?;
    Ok(n)
}

impl<R: Read + io::Seek> Walker<R> {
    /// Walks a tar file whose data is sought over, not read (an image archive, where
    /// only the positions of members are wanted). A member cut short by the end of the
    /// file is the caller's to notice.
    pub fn new_seekable(inner: R) -> Self {
        Walker {
            skip: seek_over::<R>,
            ..Walker::new(inner)
        }
    }
}

impl<R: Read> Walker<R> {
    /// Walks the tar read from `inner`, which starts at offset 0.
    pub fn new(inner: R) -> Self {
        Walker {
            inner,
            skip: read_through::<R>,
            pos: 0,
            next: 0,
            left: 0,
            done: false,
        }
    }

    /// How far into the tar the walk has read.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// The reader, positioned wherever the walk stopped.
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// Reads the rest of the current entry's data.
    pub fn data(&mut self) -> impl Read + '_ {
        DataReader { w: self }
    }

    fn skip_to(&mut self, to: u64) -> io::Result<()> {
        let n = to - self.pos;
        let copied = (self.skip)(&mut self.inner, n)?;
        self.pos += copied;
        if copied != n {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "tar ends inside an entry",
            ));
        }
        Ok(())
    }

    /// Reads one block; `None` at a clean end of stream.
    fn block(&mut self) -> io::Result<Option<[u8; 512]>> {
        let mut b = [0u8; 512];
        let mut got = 0;
        while got < b.len() {
            match self.inner.read(&mut b[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.pos += got as u64;
        match got {
            0 => Ok(None),
            512 => Ok(Some(b)),
            _ => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "tar ends inside a header",
            )),
        }
    }

    fn read_extension(&mut self, size: u64, what: &str) -> Result<Vec<u8>, WalkError> {
        if size > MAX_EXTENSION {
            return Err(WalkError::Refused(format!(
                "{what} of {size} bytes (the limit is {MAX_EXTENSION})"
            )));
        }
        let mut data = vec![0u8; size as usize];
        self.inner.read_exact(&mut data)?;
        self.pos += size;
        self.skip_to(self.pos.div_ceil(BLOCK) * BLOCK)?;
        Ok(data)
    }

    /// The next header block, checksum checked; `None` at the end of the archive (a
    /// zero block, which must be followed by another or by nothing).
    fn header_block(&mut self, pending: bool) -> Result<Option<[u8; 512]>, WalkError> {
        let refuse = |s: &str| Err(WalkError::Refused(s.to_string()));
        let block = match self.block()? {
            Some(b) if b.iter().any(|&x| x != 0) => b,
            _ if pending => return refuse("extension headers with no entry after them"),
            None => return Ok(None),
            Some(_) => {
                // Go requires a second zero block; the others stop at the first.
                if self.block()?.is_some_and(|b| b.iter().any(|&x| x != 0)) {
                    return refuse("a header after an end-of-archive block");
                }
                return Ok(None);
            }
        };
        let stored = octal_or_base256(&block[148..156], "checksum").map_err(WalkError::Refused)?;
        let sum: u64 = block[..148]
            .iter()
            .chain(&[b' '; 8])
            .chain(&block[156..])
            .map(|&b| b as u64)
            .sum();
        if stored != sum {
            return Err(WalkError::Io(io::Error::new(
                io::ErrorKind::InvalidData,
                "tar header checksum mismatch",
            )));
        }
        Ok(Some(block))
    }

    /// The next entry, or `None` at the end of the archive. Errors are I/O errors (a
    /// truncated tar) or refusals naming what was ambiguous.
    pub fn next_entry(&mut self) -> Result<Option<Entry>, WalkError> {
        if self.done {
            return Ok(None);
        }
        self.skip_to(self.next)?;
        let start = self.pos;
        let mut ext = Extensions::default();
        let refused = WalkError::Refused;
        loop {
            let Some(block) = self.header_block(ext.pending())? else {
                self.done = true;
                return Ok(None);
            };
            let fmt = format(&block).map_err(refused)?;
            let kind_byte = block[156];
            let mut size = octal_or_base256(&block[124..136], "size").map_err(refused)?;
            if matches!(kind_byte, b'x' | b'g' | b'L' | b'K') && fmt == Format::V7 {
                return Err(refused(format!(
                    "an extension header of type '{}' without the ustar magic",
                    kind_byte as char
                )));
            }
            // GNU tar 1.13's `ustar\0` + ` \0` is read as ustar for a plain entry, but as
            // an extension header Go applies it and the tar crate returns it as an entry
            // of its own (it knows only `ustar\0 00` and `ustar  \0`): readers disagree.
            if matches!(kind_byte, b'x' | b'g' | b'L' | b'K') && block[257..265] == *b"ustar\0 \0" {
                return Err(refused(format!(
                    "an extension header of type '{}' with GNU tar 1.13's magic (readers disagree on it)",
                    kind_byte as char
                )));
            }
            if let Some(what) = extension_name(kind_byte) {
                let data = self.read_extension(size, what)?;
                ext.add(kind_byte, data).map_err(refused)?;
                continue;
            }
            if kind_byte == b'g' && ext.pending() {
                return Err(refused(
                    "extension headers before a PAX global header".into(),
                ));
            }
            let (path, link, pax) = ext.names(&block, fmt).map_err(refused)?;
            if let Some(s) = pax_value(&pax, b"size") {
                size = std::str::from_utf8(s)
                    .expect("checked digits")
                    .parse()
                    .expect("checked digits");
            }
            check_entry(kind_byte, size, &path).map_err(refused)?;
            let data_offset = self.pos;
            if kind_byte == b'g' {
                let data = self.read_extension(size, "PAX global header")?;
                check_global(&data, &path).map_err(refused)?;
                // Its data is read: nothing is left for `data`.
                self.left = 0;
                self.next = self.pos;
            } else {
                self.left = size;
                self.next = data_offset
                    .checked_add(size.div_ceil(BLOCK) * BLOCK)
                    .ok_or_else(|| refused("size overflows".into()))?;
            }
            return Ok(Some(Entry {
                header: tar::Header::from_byte_slice(&block).clone(),
                kind: tar::EntryType::new(kind_byte),
                path,
                link,
                pax,
                size,
                start,
                data_offset,
            }));
        }
    }
}

/// What the extension headers before an entry said, at most one of each kind.
#[derive(Default)]
struct Extensions {
    pax: Option<PaxRecords>,
    gnu_name: Option<Vec<u8>>,
    gnu_link: Option<Vec<u8>>,
}

fn extension_name(kind: u8) -> Option<&'static str> {
    match kind {
        b'x' => Some("PAX header"),
        b'L' => Some("GNU long name"),
        b'K' => Some("GNU long link"),
        _ => None,
    }
}

impl Extensions {
    fn pending(&self) -> bool {
        self.pax.is_some() || self.gnu_name.is_some() || self.gnu_link.is_some()
    }

    /// Takes an extension header's data; a second of the same kind is refused.
    fn add(&mut self, kind: u8, data: Vec<u8>) -> Result<(), Refusal> {
        let dup = match kind {
            b'x' => {
                let records = parse_pax(&data)?;
                check_line_split(&data, &records)?;
                self.pax.replace(records).is_some()
            }
            b'L' => self.gnu_name.replace(long_name(data, "name")?).is_some(),
            _ => self.gnu_link.replace(long_name(data, "link")?).is_some(),
        };
        if dup {
            let what = extension_name(kind).expect("an extension");
            return Err(format!("two {what}s before one entry"));
        }
        Ok(())
    }

    /// The entry's name and link target as a runtime reads them, and its PAX records.
    fn names(
        self,
        block: &[u8; 512],
        fmt: Format,
    ) -> Result<(Vec<u8>, Vec<u8>, PaxRecords), Refusal> {
        let pax = self.pax.unwrap_or_default();
        if self.gnu_name.is_some() && pax_value(&pax, b"path").is_some() {
            return Err("both a GNU long name and a PAX path".into());
        }
        if self.gnu_link.is_some() && pax_value(&pax, b"linkpath").is_some() {
            return Err("both a GNU long link and a PAX linkpath".into());
        }
        let path = match (self.gnu_name, pax_value(&pax, b"path")) {
            (Some(n), _) => n,
            (None, Some(p)) => p.to_vec(),
            (None, None) if fmt == Format::Ustar => {
                let prefix = cstr(&block[345..500]);
                let name = cstr(&block[..100]);
                if prefix.is_empty() {
                    name.to_vec()
                } else {
                    [prefix, b"/", name].concat()
                }
            }
            (None, None) => cstr(&block[..100]).to_vec(),
        };
        let link = match (self.gnu_link, pax_value(&pax, b"linkpath")) {
            (Some(l), _) => l,
            (None, Some(l)) => l.to_vec(),
            (None, None) => cstr(&block[157..257]).to_vec(),
        };
        Ok((path, link, pax))
    }
}

/// Refuses entries readers disagree on or runtimes refuse, by type, size and name.
fn check_entry(kind: u8, size: u64, path: &[u8]) -> Result<(), Refusal> {
    let escaped = || crate::layer::path::escape(path);
    if matches!(kind, b'1' | b'2' | b'3' | b'4' | b'5' | b'6') && size != 0 {
        return Err(format!(
            "{}: a {} header with a size of {size} (readers disagree on where the next header is)",
            escaped(),
            type_name(kind)
        ));
    }
    if kind == b'S' {
        return Err(format!(
            "{} is a sparse file; sparse entries are not supported",
            escaped()
        ));
    }
    if !matches!(
        kind,
        b'0' | 0 | b'1' | b'2' | b'3' | b'4' | b'5' | b'6' | b'g'
    ) {
        return Err(format!(
            "{}: unsupported entry type {:?} (runtimes refuse it)",
            escaped(),
            kind as char
        ));
    }
    if kind != b'5' && kind != b'g' && path.ends_with(b"/") {
        return Err(format!(
            "{}: a {} whose name ends in '/' (some readers take it for a directory)",
            escaped(),
            type_name(kind)
        ));
    }
    Ok(())
}

/// A PAX global header's records, parsed as strictly as any (so a reader that applies
/// them cannot be fooled either), then dropped. Go gives the global header itself the
/// name in its `path` record, and Docker and containerd then apply a whiteout so named
/// (seen with Docker 20.10: `path=.wh.etc` deletes /etc); umoci refuses the header. So
/// one with a name, or named as a whiteout, is refused.
fn check_global(data: &[u8], path: &[u8]) -> Result<(), Refusal> {
    let records = parse_pax(data)?;
    let named = pax_value(&records, b"path").unwrap_or(path);
    let base = named.rsplit(|&b| b == b'/').find(|c| !c.is_empty());
    if pax_value(&records, b"path").is_some()
        || pax_value(&records, b"linkpath").is_some()
        || base.is_some_and(|b| b.starts_with(b".wh."))
    {
        return Err(format!(
            "a PAX global header named {:?}: runtimes disagree on it (Docker applies its name as a whiteout, umoci refuses it)",
            crate::layer::path::escape(named)
        ));
    }
    Ok(())
}

fn type_name(kind: u8) -> &'static str {
    match kind {
        b'1' => "hard link",
        b'2' => "symlink",
        b'3' => "character device",
        b'4' => "block device",
        b'5' => "directory",
        b'6' => "FIFO",
        _ => "file",
    }
}

/// Why a walk stopped.
#[derive(Debug)]
pub enum WalkError {
    /// The stream failed or ended early.
    Io(io::Error),
    /// A header readers could read differently, or that runtimes refuse.
    Refused(String),
}

impl From<io::Error> for WalkError {
    fn from(e: io::Error) -> Self {
        WalkError::Io(e)
    }
}

struct DataReader<'a, R> {
    w: &'a mut Walker<R>,
}

impl<R: Read> Read for DataReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let max = (self.w.left.min(buf.len() as u64)) as usize;
        if max == 0 {
            return Ok(0);
        }
        let n = self.w.inner.read(&mut buf[..max])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "tar ends inside an entry's data",
            ));
        }
        self.w.left -= n as u64;
        self.w.pos += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_line_splitting_readers_read_differently_are_refused() {
        let check = |d: &[u8]| check_line_split(d, &parse_pax(d).unwrap());
        // Ordinary records, and a newline in a value that hides or forges nothing of
        // path, linkpath or size.
        assert!(check(b"9 path=a\n14 linkpath=b\n9 size=1\n").is_ok());
        assert!(check(b"27 SCHILY.xattr.user.k=a\nb\n").is_ok());
        for bad in [
            // A newline in the name itself.
            &b"12 path=a\nb\n"[..],
            // A value ending in a newline: the empty line hides the path after it.
            b"21 SCHILY.xattr.k=v\n\n9 path=a\n",
            // A record forged inside another's value.
            b"30 comment=x\n17 path=smuggled\n",
            // A key given twice.
            b"9 path=a\n9 path=b\n",
            b"9 size=1\n9 size=2\n",
        ] {
            assert!(check(bad).is_err(), "{}", crate::layer::path::escape(bad));
        }
    }

    /// A header block: `name`, type `kind`, `size` bytes of data, magic and version
    /// `magic`, its checksum computed.
    fn block(name: &[u8], kind: u8, size: usize, magic: &[u8; 8]) -> Vec<u8> {
        let mut b = vec![0u8; 512];
        b[..name.len()].copy_from_slice(name);
        b[100..108].copy_from_slice(b"0000644\0");
        b[108..116].copy_from_slice(b"0000000\0");
        b[116..124].copy_from_slice(b"0000000\0");
        b[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
        b[136..148].copy_from_slice(b"00000000000\0");
        b[156] = kind;
        b[257..265].copy_from_slice(magic);
        b[148..156].copy_from_slice(b"        ");
        let sum: u32 = b.iter().map(|&x| u32::from(x)).sum();
        b[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        b
    }

    #[test]
    fn an_extension_header_with_gnu_tar_1_13_magic_is_refused() {
        // Go applies the long name; the tar crate returns the header as an entry (found
        // by the tar_differential fuzz target).
        let long = [b'p'; 120];
        let mut tar = block(b"././@LongLink", b'L', long.len() + 1, b"ustar\0 \0");
        let mut data = long.to_vec();
        data.push(0);
        data.resize(512, 0);
        tar.extend(data);
        tar.extend(block(b"short", b'0', 0, b"ustar\x0000"));
        tar.extend([0u8; 1024]);
        let mut w = Walker::new(&tar[..]);
        let e = loop {
            match w.next_entry() {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("accepted"),
                Err(e) => break format!("{e:?}"),
            }
        };
        assert!(e.contains("GNU tar 1.13's magic"), "{e}");
        // A plain entry with that magic is still read (moby's broken.tar).
        let mut tar = block(b"f", b'0', 0, b"ustar\0 \0");
        tar.extend([0u8; 1024]);
        assert!(Walker::new(&tar[..]).next_entry().unwrap().is_some());
    }

    #[test]
    fn pax_records_table() {
        let ok = |d: &[u8]| parse_pax(d).unwrap();
        assert_eq!(ok(b"9 path=a\n"), vec![(b"path".to_vec(), b"a".to_vec())]);
        // A value may hold newlines and '=': the length decides.
        assert_eq!(ok(b"13 path=a\nb=\n")[0].1, b"a\nb=");
        assert!(ok(b"").is_empty());
        for bad in [
            &b"9 path=a"[..],
            b"11 path=a\n",
            b"+9 path=a\n",
            b"9 patha\n\n",
            b"5 =a\n",
            b"12 path=\0ab\n",
            b"11 size=-1\n",
            b"13 mtime=1.x\n",
            b"22 GNU.sparse.major=1\n",
            b"99999999999999999999 path=a\n",
        ] {
            assert!(
                parse_pax(bad).is_err(),
                "{}",
                crate::layer::path::escape(bad)
            );
        }
    }

    #[test]
    fn numeric_fields_follow_go() {
        assert_eq!(octal_or_base256(b"0000644\0", "f"), Ok(0o644));
        assert_eq!(octal_or_base256(b" 644 \0\0", "f"), Ok(0o644));
        assert_eq!(octal_or_base256(b"\0\0\0", "f"), Ok(0));
        assert_eq!(octal_or_base256(&[0x80, 0, 0, 1, 0], "f"), Ok(256));
        assert!(octal_or_base256(b"12\0 34", "f").is_err());
        assert!(octal_or_base256(b"0009", "f").is_err());
        assert!(octal_or_base256(&[0xff, 0xff], "f").is_err());
    }

    #[test]
    fn a_global_header_never_renames_the_next_entry() {
        let mut tar = Vec::new();
        let block = |name: &[u8], kind: u8, size: u64| {
            let mut h = tar::Header::new_ustar();
            h.as_old_mut().name[..name.len()].copy_from_slice(name);
            h.set_entry_type(tar::EntryType::new(kind));
            h.set_size(size);
            h.set_mode(0o644);
            h.set_cksum();
            h.as_bytes().to_vec()
        };
        let records = b"14 comment=xy\n";
        tar.extend(block(b"pax_global_header", b'g', records.len() as u64));
        tar.extend(records);
        tar.resize(1024, 0);
        tar.extend(block(b"file", b'0', 0));
        tar.extend([0u8; 1024]);
        let mut w = Walker::new(&tar[..]);
        let g = w.next_entry().unwrap().unwrap();
        assert!(g.is_global());
        let f = w.next_entry().unwrap().unwrap();
        assert_eq!(f.path, b"file");
        assert_eq!((f.start, f.data_offset), (1024, 1536));
        assert!(w.next_entry().unwrap().is_none());
    }
}
