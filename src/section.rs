//! A reader over a byte range of a file by positional reads, so many readers share one
//! file across threads: an archive member, a layer blob inside an archive, an entry of a
//! spooled layer.

use std::borrow::Borrow;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;

/// A reader over a byte range of a file, by positional reads (so many can share one
/// file across threads): an archive member, or an entry of a spooled layer.
pub struct Section<F> {
    file: F,
    pos: u64,
    end: u64,
}

impl<F: Borrow<File>> Section<F> {
    /// Reads `file` from `start` up to `end`.
    pub fn new(file: F, start: u64, end: u64) -> Self {
        Section {
            file,
            pos: start,
            end,
        }
    }
}

impl<F: Borrow<File>> Read for Section<F> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = (self.end - self.pos).min(buf.len() as u64) as usize;
        if left == 0 {
            return Ok(0);
        }
        let n = self.file.borrow().read_at(&mut buf[..left], self.pos)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "file ends inside a section",
            ));
        }
        self.pos += n as u64;
        Ok(n)
    }
}
