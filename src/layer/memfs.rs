//! An in-memory merged filesystem for tests of every room: paths, kinds, modes and bytes
//! from a table, and a wrapper that counts the lookups made through it.

use crate::layer::fs::{FileRange, Fs, ResolveMemo, Stat, below};
use std::collections::BTreeMap;
use std::fs::File;

/// An in-memory root for tables: path -> (stat, bytes); the bytes are written to
/// one temporary file the first time a file is opened.
#[derive(Default)]
pub struct MemFs(
    pub BTreeMap<Vec<u8>, (Stat, Vec<u8>)>,
    std::sync::OnceLock<(File, std::collections::HashMap<Vec<u8>, u64>)>,
    ResolveMemo,
);

impl MemFs {
    /// Adds a regular file (and its folders).
    pub fn file(&mut self, p: &str, bytes: &[u8], mode: u32) -> &mut Self {
        self.dirs(p);
        let stat = Stat::File {
            size: bytes.len() as u64,
            mode,
        };
        self.0.insert(p.into(), (stat, bytes.to_vec()));
        self
    }
    /// Adds a symlink (and its folders).
    pub fn link(&mut self, p: &str, target: &str) -> &mut Self {
        self.dirs(p);
        self.0
            .insert(p.into(), (Stat::Symlink(target.into()), Vec::new()));
        self
    }
    fn dirs(&mut self, p: &str) {
        let mut d = String::new();
        for c in p
            .split('/')
            .rev()
            .skip(1)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
        {
            d = if d.is_empty() {
                c.into()
            } else {
                format!("{d}/{c}")
            };
            self.0
                .entry(d.clone().into())
                .or_insert((Stat::Dir, Vec::new()));
        }
    }
}

impl Fs for MemFs {
    fn stat(&self, p: &[u8]) -> Option<Stat> {
        if p.is_empty() {
            return Some(Stat::Dir);
        }
        self.0.get(p).map(|(s, _)| s.clone())
    }
    fn open(&self, p: &[u8]) -> Option<FileRange<'_>> {
        let (file, at) = self.1.get_or_init(|| {
            use std::io::Write;
            let mut f = tempfile::tempfile().unwrap();
            let mut at = std::collections::HashMap::new();
            let mut n = 0;
            for (p, (_, bytes)) in &self.0 {
                f.write_all(bytes).unwrap();
                at.insert(p.clone(), n);
                n += bytes.len() as u64;
            }
            (f, at)
        });
        match self.0.get(p)? {
            (Stat::File { size, .. }, _) => Some(FileRange::new(file, at[p], *size)),
            _ => None,
        }
    }
    fn files(&self) -> Vec<Vec<u8>> {
        self.0
            .iter()
            .filter(|(_, (s, _))| matches!(s, Stat::File { .. }))
            .map(|(p, _)| p.clone())
            .collect()
    }
    fn symlinks(&self) -> Vec<Vec<u8>> {
        self.0
            .iter()
            .filter(|(_, (s, _))| matches!(s, Stat::Symlink(_)))
            .map(|(p, _)| p.clone())
            .collect()
    }
    fn under(&self, dir: &[u8]) -> Vec<Vec<u8>> {
        below(&self.0, dir)
    }

    fn memo(&self) -> Option<&ResolveMemo> {
        Some(&self.2)
    }
}

/// Counts the lookups made through a view.
pub struct Counting<'f>(pub &'f MemFs, pub std::sync::atomic::AtomicUsize);

impl Fs for Counting<'_> {
    fn stat(&self, p: &[u8]) -> Option<Stat> {
        self.1.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.0.stat(p)
    }
    fn open(&self, p: &[u8]) -> Option<FileRange<'_>> {
        self.0.open(p)
    }
    fn files(&self) -> Vec<Vec<u8>> {
        self.0.files()
    }
    fn symlinks(&self) -> Vec<Vec<u8>> {
        self.0.symlinks()
    }
    fn under(&self, dir: &[u8]) -> Vec<Vec<u8>> {
        self.0.under(dir)
    }
    fn memo(&self) -> Option<&ResolveMemo> {
        self.0.memo()
    }
}
