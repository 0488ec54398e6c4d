//! The image root as the analysis sees it: paths, kinds, modes and bytes of the merged
//! filesystem, never the host's. Symlinks resolve inside the root, as the kernel
//! resolves them in a container (an absolute target starts again at the image root,
//! `..` stops there), at most [`MAX_SYMLINK_HOPS`] of them per path.

use crate::layer::index::{EntryRec, Kind};
use crate::layer::overlay::{MAX_SYMLINK_HOPS, Tree};
use crate::layer::writer::Spool;
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::sync::Mutex;

/// What is at a path, not following a final symlink.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stat {
    /// A regular file, its size and permission bits.
    File {
        /// Size in bytes.
        size: u64,
        /// Permission bits (`0o7777`).
        mode: u32,
    },
    /// A directory.
    Dir,
    /// A symbolic link and its target as stored.
    Symlink(Vec<u8>),
    /// A device, FIFO or socket.
    Other,
}

/// A read-only root filesystem.
pub trait Fs: Sync {
    /// What is at the normalised path `p` (no leading `/`; the root is empty).
    fn stat(&self, p: &[u8]) -> Option<Stat>;
    /// A reader over the regular file at `p` (no symlink followed).
    fn open(&self, p: &[u8]) -> Option<FileRange<'_>>;
    /// Every regular file's path, sorted.
    fn files(&self) -> Vec<Vec<u8>>;
    /// Every symlink's path, sorted.
    fn symlinks(&self) -> Vec<Vec<u8>>;
    /// Every path strictly below the folder `dir` (every path for the root), sorted.
    fn under(&self, dir: &[u8]) -> Vec<Vec<u8>>;
    /// Where resolved folders are remembered, when the view keeps them.
    fn memo(&self) -> Option<&ResolveMemo> {
        None
    }
}

/// A byte range of a file read by positional reads: one file's data inside a spooled
/// layer. Seekable, so an ELF parser reads only the parts it needs.
pub struct FileRange<'a> {
    file: &'a File,
    start: u64,
    len: u64,
    pos: u64,
}

impl<'a> FileRange<'a> {
    /// The bytes `start..start + len` of `file`.
    pub fn new(file: &'a File, start: u64, len: u64) -> Self {
        FileRange {
            file,
            start,
            len,
            pos: 0,
        }
    }

    /// Its length.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Up to `n` bytes from its start.
    pub fn head(&self, n: usize) -> io::Result<Vec<u8>> {
        let mut buf = vec![0; n.min(self.len as usize)];
        self.file.read_exact_at(&mut buf, self.start)?;
        Ok(buf)
    }
}

impl Read for FileRange<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = (self.len.saturating_sub(self.pos)).min(buf.len() as u64) as usize;
        if left == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..left], self.start + self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for FileRange<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let pos = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = pos.ok_or_else(|| io::Error::other("seek before the start"))?;
        Ok(self.pos)
    }
}

/// The merged filesystem of a squash: the overlay tree and the spooled layers holding
/// the entries' bytes.
pub struct TreeFs<'a> {
    tree: &'a Tree,
    spools: &'a [Spool],
    memo: ResolveMemo,
}

impl<'a> TreeFs<'a> {
    /// A view of `tree`, whose entries live in `spools` (by layer position).
    pub fn new(tree: &'a Tree, spools: &'a [Spool]) -> Self {
        TreeFs {
            tree,
            spools,
            memo: ResolveMemo::default(),
        }
    }

    fn rec(&self, p: &[u8]) -> Option<&EntryRec> {
        let node = self.tree.nodes.get(p)?;
        self.spools
            .get(node.inode.layer)?
            .entries
            .get(node.inode.entry)
    }
}

impl Fs for TreeFs<'_> {
    fn stat(&self, p: &[u8]) -> Option<Stat> {
        let Some(node) = self.tree.nodes.get(p) else {
            // A folder no layer lists but a path below it is there: runtimes create it
            // (a tar need not list the folders above its entries).
            return (p.is_empty() || has_below(&self.tree.nodes, p)).then_some(Stat::Dir);
        };
        if node.is_dir {
            return Some(Stat::Dir);
        }
        let rec = self.rec(p)?;
        Some(match &rec.kind {
            Kind::File | Kind::Hardlink(_) => Stat::File {
                size: rec.size,
                mode: rec.mode,
            },
            Kind::Symlink(t) => Stat::Symlink(t.clone()),
            Kind::Dir => Stat::Dir,
            _ => Stat::Other,
        })
    }

    fn open(&self, p: &[u8]) -> Option<FileRange<'_>> {
        let node = self.tree.nodes.get(p)?;
        let spool = self.spools.get(node.inode.layer)?;
        let rec = spool.entries.get(node.inode.entry)?;
        matches!(rec.kind, Kind::File | Kind::Hardlink(_))
            .then(|| FileRange::new(&spool.file, spool.base + rec.data_offset, rec.size))
    }

    fn files(&self) -> Vec<Vec<u8>> {
        self.tree
            .nodes
            .iter()
            .filter(|(p, n)| !n.is_dir && matches!(self.stat(p), Some(Stat::File { .. })))
            .map(|(p, _)| p.clone())
            .collect()
    }

    fn symlinks(&self) -> Vec<Vec<u8>> {
        self.tree
            .nodes
            .iter()
            .filter(|(p, n)| !n.is_dir && matches!(self.stat(p), Some(Stat::Symlink(_))))
            .map(|(p, _)| p.clone())
            .collect()
    }

    fn under(&self, dir: &[u8]) -> Vec<Vec<u8>> {
        below(&self.tree.nodes, dir)
    }

    fn memo(&self) -> Option<&ResolveMemo> {
        Some(&self.memo)
    }
}

/// Whether `map` has a key strictly below the folder `dir` (not the root).
fn has_below<V>(map: &std::collections::BTreeMap<Vec<u8>, V>, dir: &[u8]) -> bool {
    let from = [dir, b"/"].concat();
    let to = [dir, b"0"].concat();
    map.range(from..to).next().is_some()
}

/// The keys of `map` strictly below the folder `dir` (all but the root for the root):
/// the range from `dir/` up to `dir0` (`0` follows `/`).
pub(crate) fn below<V>(map: &std::collections::BTreeMap<Vec<u8>, V>, dir: &[u8]) -> Vec<Vec<u8>> {
    if dir.is_empty() {
        return map.keys().filter(|p| !p.is_empty()).cloned().collect();
    }
    let from = [dir, b"/"].concat();
    let to = [dir, b"0"].concat();
    map.range(from..to).map(|(p, _)| p.clone()).collect()
}

/// `p` as a process with working folder `dir` opens it: from the root when absolute,
/// else below `dir` (the config's `WorkingDir` and its command's paths).
pub fn from_workdir(dir: &[u8], p: &[u8]) -> Vec<u8> {
    if p.starts_with(b"/") {
        join_rel(b"", p)
    } else {
        join_rel(dir, p)
    }
}

/// Joins a normalised directory and a relative path, applying `.` and `..` (which stops
/// at the root). A leading `/` of `rel` is not the root here: see [`from_workdir`].
pub fn join_rel(dir: &[u8], rel: &[u8]) -> Vec<u8> {
    let mut parts: Vec<&[u8]> = dir
        .split(|&b| b == b'/')
        .filter(|c| !c.is_empty())
        .collect();
    push_components(&mut parts, rel);
    parts.join(&b'/')
}

fn push_components<'p>(parts: &mut Vec<&'p [u8]>, rel: &'p [u8]) {
    for c in rel.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
}

/// Normalises an absolute or root-relative path (`/usr/../bin/` -> `bin`).
pub fn normalise(p: &[u8]) -> Vec<u8> {
    join_rel(b"", p)
}

/// Resolves every symlink in `p` (a normalised path) inside the root, the final one
/// included; `None` when a component is missing, is not a directory where one must
/// be, or more than [`MAX_SYMLINK_HOPS`] links are followed.
pub fn resolve(fs: &dyn Fs, p: &[u8]) -> Option<Vec<u8>> {
    resolve_trail(fs, p, &mut |_| {})
}

/// Path components one resolution walks at most (each symlink's target adds its own):
/// the kernel's 40 links of up to 4095 bytes allow far more, which a hostile image spends
/// as `d/..` pairs (127 of them cost 2 ms a resolve); no real path comes near it.
pub const MAX_RESOLVE_STEPS: usize = 4096;

/// Folders resolved so far through one view: folder -> its real path, the symlinks
/// followed and their count, or `None` when it does not resolve to a folder. Every
/// path below a folder resolves through one lookup, so a list of a million names under
/// one hostile link costs one walk of the link.
#[derive(Default)]
pub struct ResolveMemo(Mutex<HashMap<Vec<u8>, Option<Resolved>>>);

#[derive(Clone)]
struct Resolved {
    real: Vec<u8>,
    trail: Vec<Vec<u8>>,
    hops: usize,
}

/// [`resolve`], calling `link` with the path of every symlink followed on the way (a
/// symlinked folder above the file included): what must stay for the path to resolve.
pub fn resolve_trail(fs: &dyn Fs, p: &[u8], link: &mut dyn FnMut(&[u8])) -> Option<Vec<u8>> {
    let (Some(memo), Some(i)) = (fs.memo(), p.iter().rposition(|&b| b == b'/')) else {
        return walk(fs, Vec::new(), p, 0, link).map(|r| r.real);
    };
    let dir = resolve_dir(fs, memo, &p[..i])?;
    dir.trail.iter().for_each(|l| link(l));
    walk(fs, components(&dir.real), &p[i + 1..], dir.hops, link).map(|r| r.real)
}

/// The components of a normalised path.
fn components(p: &[u8]) -> Vec<Vec<u8>> {
    p.split(|&b| b == b'/')
        .filter(|c| !c.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

/// The folder `dir` resolved, through the nearest folder above it that is remembered:
/// each folder below that one costs one step from its parent's resolution (a new folder
/// 240 levels deep is one step, not 480), and is remembered in turn.
fn resolve_dir(fs: &dyn Fs, memo: &ResolveMemo, dir: &[u8]) -> Option<Resolved> {
    let mut todo: Vec<&[u8]> = Vec::new();
    let mut at = dir;
    let mut known = loop {
        if let Some(hit) = memo.0.lock().unwrap().get(at).cloned() {
            break hit;
        }
        todo.push(at);
        match at.iter().rposition(|&b| b == b'/') {
            Some(i) => at = &at[..i],
            None => {
                break Some(Resolved {
                    real: Vec::new(),
                    trail: Vec::new(),
                    hops: 0,
                });
            }
        }
    };
    while let Some(d) = todo.pop() {
        known = known.and_then(|parent| {
            let name = d.rsplit(|&b| b == b'/').next().unwrap_or(d);
            let mut trail = parent.trail.clone();
            let done = components(&parent.real);
            walk(fs, done, name, parent.hops, &mut |l| trail.push(l.to_vec()))
                .filter(|r| fs.stat(&r.real) == Some(Stat::Dir) || r.real.is_empty())
                .map(|r| Resolved { trail, ..r })
        });
        memo.0.lock().unwrap().insert(d.to_vec(), known.clone());
    }
    known
}

/// Walks the components of `p` from the resolved folder `done`, `hops` links followed
/// so far.
fn walk(
    fs: &dyn Fs,
    mut done: Vec<Vec<u8>>,
    p: &[u8],
    mut hops: usize,
    link: &mut dyn FnMut(&[u8]),
) -> Option<Resolved> {
    let mut steps = 0;
    let mut todo: Vec<Vec<u8>> = p
        .split(|&b| b == b'/')
        .filter(|c| !c.is_empty())
        .rev()
        .map(<[u8]>::to_vec)
        .collect();
    while let Some(c) = todo.pop() {
        steps += 1;
        if steps > MAX_RESOLVE_STEPS {
            return None;
        }
        match c.as_slice() {
            b"." => continue,
            b".." => {
                done.pop();
                continue;
            }
            _ => {}
        }
        let here = [done.join(&b'/').as_slice(), &c].join(&b'/');
        let here = if done.is_empty() { c.clone() } else { here };
        match fs.stat(&here)? {
            Stat::Symlink(target) => {
                link(&here);
                hops += 1;
                if hops > MAX_SYMLINK_HOPS {
                    return None;
                }
                if target.starts_with(b"/") {
                    done.clear();
                }
                todo.extend(
                    target
                        .split(|&b| b == b'/')
                        .filter(|c| !c.is_empty())
                        .rev()
                        .map(<[u8]>::to_vec),
                );
            }
            Stat::Dir => done.push(c),
            _ if todo.is_empty() => done.push(c),
            _ => return None,
        }
    }
    Some(Resolved {
        real: done.join(&b'/'),
        trail: Vec::new(),
        hops,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::layer::memfs::{Counting, MemFs};

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let mut fs = MemFs::default();
        fs.file("usr/lib/x86_64-linux-gnu/libc.so.6", b"", 0o755)
            .link("lib", "usr/lib")
            .link("lib64", "/usr/lib64")
            .file("usr/lib64/ld.so", b"", 0o755)
            .link("usr/lib/x86_64-linux-gnu/libc.so", "libc.so.6")
            .link("up", "../../../../usr")
            .link("loop", "loop");
        let r = |p: &str| resolve(&fs, p.as_bytes()).map(|v| String::from_utf8(v).unwrap());
        assert_eq!(
            r("lib/x86_64-linux-gnu/libc.so").as_deref(),
            Some("usr/lib/x86_64-linux-gnu/libc.so.6")
        );
        assert_eq!(r("lib64/ld.so").as_deref(), Some("usr/lib64/ld.so"));
        assert_eq!(r("up/lib64/ld.so").as_deref(), Some("usr/lib64/ld.so"));
        assert_eq!(r("loop"), None);
        assert_eq!(r("lib/missing"), None, "the final component must exist");
        assert_eq!(r("usr/lib64/ld.so/x"), None, "a file is not a directory");
        assert_eq!(normalise(b"/usr/../bin/"), b"bin");
    }

    #[test]
    /// A link that loops through 127 `d/..` pairs cost a full walk per resolve: names
    /// below it resolve through one remembered walk, and one walk is bounded.
    fn resolving_names_under_a_hostile_link_costs_one_walk() {
        let mut fs = MemFs::default();
        fs.file("d/f", b"", 0o644)
            .link("loop", &format!("{}loop", "d/../".repeat(127)))
            .link("ok", &format!("{}d", "d/../".repeat(127)));
        let count = Counting(&fs, Default::default());
        let one = {
            assert_eq!(resolve(&count, b"loop"), None);
            count.1.swap(0, std::sync::atomic::Ordering::Relaxed)
        };
        assert!(one <= MAX_RESOLVE_STEPS, "{one} lookups for one walk");
        for i in 0..20_000 {
            assert_eq!(resolve(&count, format!("loop/a{i}").as_bytes()), None);
        }
        let names = count.1.swap(0, std::sync::atomic::Ordering::Relaxed);
        assert!(
            names <= one,
            "{names} lookups for 20000 names (one walk: {one})"
        );
        for i in 0..1000 {
            assert_eq!(
                resolve(&count, b"ok/f").as_deref(),
                Some(&b"d/f"[..]),
                "{i}"
            );
        }
        let through = count.1.swap(0, std::sync::atomic::Ordering::Relaxed);
        assert!(
            through <= one + 1000 * 2,
            "{through} lookups for 1000 resolves"
        );
        let mut trail = Vec::new();
        resolve_trail(&count, b"ok/f", &mut |l| trail.push(l.to_vec()));
        assert_eq!(
            trail,
            [b"ok".to_vec()],
            "a remembered folder still names its links"
        );
    }
}
