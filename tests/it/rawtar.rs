//! Hand-written tar bytes, for hostile layers: every header field is set by the test
//! (not by the `tar` crate, which refuses to write malformed headers), so sizes on
//! header-only types, missing magic, bad PAX records and climbing names are possible.

/// One 512-byte header block under construction.
#[derive(Clone)]
pub struct Block(pub [u8; 512]);

/// The ustar magic and version POSIX (and PAX) headers carry.
pub const USTAR: (&[u8], &[u8]) = (b"ustar\0", b"00");
/// GNU tar's magic and version.
pub const GNU: (&[u8], &[u8]) = (b"ustar ", b" \0");
/// No magic at all: a V7 header.
pub const V7: (&[u8], &[u8]) = (b"\0\0\0\0\0\0", b"\0\0");

impl Block {
    /// A header of type `kind` named `name` with `size`, ustar magic, mode 0644.
    pub fn new(name: &[u8], kind: u8, size: u64) -> Block {
        let mut b = Block([0u8; 512]);
        b.0[..name.len()].copy_from_slice(name);
        b.octal(100, 8, 0o644);
        b.octal(108, 8, 0);
        b.octal(116, 8, 0);
        b.octal(124, 12, size);
        b.octal(136, 12, 1_700_000_000);
        b.0[156] = kind;
        b.magic(USTAR);
        b
    }

    /// Sets a numeric field as zero-padded octal.
    pub fn octal(&mut self, at: usize, len: usize, v: u64) -> &mut Self {
        let s = format!("{v:0width$o}\0", width = len - 1);
        self.0[at..at + len].copy_from_slice(s.as_bytes());
        self
    }

    /// Writes raw bytes into a field.
    pub fn field(&mut self, at: usize, bytes: &[u8]) -> &mut Self {
        self.0[at..at + bytes.len()].copy_from_slice(bytes);
        self
    }

    /// Sets the magic and version.
    pub fn magic(&mut self, (m, v): (&[u8], &[u8])) -> &mut Self {
        self.field(257, m).field(263, v)
    }

    /// Sets the link name.
    pub fn link(&mut self, target: &[u8]) -> &mut Self {
        self.field(157, target)
    }

    /// The finished block, checksummed.
    pub fn bytes(&self) -> [u8; 512] {
        let mut b = self.0;
        b[148..156].copy_from_slice(b"        ");
        let sum: u32 = b.iter().map(|&x| x as u32).sum();
        b[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        b
    }
}

/// A tar stream built entry by entry.
#[derive(Default)]
pub struct Tar(pub Vec<u8>);

impl Tar {
    /// Appends a header and `data`, padded to a block (the data need not match the
    /// header's size: that is the point).
    pub fn raw(&mut self, header: &Block, data: &[u8]) -> &mut Self {
        self.0.extend_from_slice(&header.bytes());
        self.0.extend_from_slice(data);
        let rem = self.0.len() % 512;
        if rem != 0 {
            self.0.resize(self.0.len() + 512 - rem, 0);
        }
        self
    }

    /// A regular file with `data`.
    pub fn file(&mut self, name: &[u8], data: &[u8]) -> &mut Self {
        self.raw(&Block::new(name, b'0', data.len() as u64), data)
    }

    /// A directory.
    pub fn dir(&mut self, name: &[u8]) -> &mut Self {
        let mut b = Block::new(name, b'5', 0);
        b.octal(100, 8, 0o755);
        self.raw(&b, &[])
    }

    /// A symlink.
    pub fn symlink(&mut self, name: &[u8], target: &[u8]) -> &mut Self {
        let mut b = Block::new(name, b'2', 0);
        b.octal(100, 8, 0o777).link(target);
        self.raw(&b, &[])
    }

    /// A hard link.
    pub fn hardlink(&mut self, name: &[u8], target: &[u8]) -> &mut Self {
        let mut b = Block::new(name, b'1', 0);
        b.link(target);
        self.raw(&b, &[])
    }

    /// A PAX header of `kind` (`x` or `g`) holding `records` exactly as given.
    pub fn pax(&mut self, kind: u8, records: &[u8]) -> &mut Self {
        self.raw(
            &Block::new(b"././@PaxHeader", kind, records.len() as u64),
            records,
        )
    }

    /// The tar, closed by two zero blocks.
    pub fn finish(&mut self) -> Vec<u8> {
        let mut v = std::mem::take(&mut self.0);
        v.extend_from_slice(&[0u8; 1024]);
        v
    }
}

/// One well-formed PAX record: the length counts itself.
pub fn record(key: &str, value: &[u8]) -> Vec<u8> {
    let body = key.len() + value.len() + 3;
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    [format!("{len} {key}=").as_bytes(), value, b"\n"].concat()
}
