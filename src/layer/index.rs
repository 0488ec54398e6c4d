//! The index of one layer: every entry's normalised path, what kind of entry it is
//! (including whiteouts and opaque markers, recognised by name whatever their type),
//! and where its raw bytes lie in the layer's plain tar, so the emitter can copy
//! unchanged entries byte for byte (PAX records, long names and all).
//!
//! Whiteouts (image-spec `layer.md`, "Whiteouts"): "a whiteout file is an empty file
//! with a special filename that signifies a path should be deleted ... `.wh.` prefix";
//! "an opaque whiteout entry is a file with the name `.wh..wh..opq` indicating that all
//! siblings are hidden in the lower layer".

use super::headers;
use super::path::{self, join, split_parent};

/// Prefix of a whiteout's base name.
pub const WHITEOUT_PREFIX: &[u8] = b".wh.";
/// Base name of an opaque-directory marker.
pub const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";
/// Prefix of AUFS bookkeeping names (`.wh..wh.plnk`, ...), which are not whiteouts.
const AUFS_META_PREFIX: &[u8] = b".wh..wh.";

/// What an entry is, for the overlay merge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link to the target it holds as stored (never resolved on the host;
    /// inside the image, later entries' parent directories resolve through it).
    Symlink(Vec<u8>),
    /// A hard link to the normalised path it names.
    Hardlink(Vec<u8>),
    /// A device node, FIFO or other special file.
    Special,
    /// `.wh.NAME`: hides this path (and its subtree) in lower layers.
    Whiteout(Vec<u8>),
    /// `.wh..wh..opq`: hides lower-layer children of this directory.
    Opaque(Vec<u8>),
    /// Something to drop: AUFS bookkeeping, PAX global headers.
    Ignored,
}

/// One entry of a layer.
#[derive(Clone, Debug)]
pub struct EntryRec {
    /// Normalised path (no leading `./` or `/`, no trailing `/`).
    pub path: Vec<u8>,
    /// Its kind.
    pub kind: Kind,
    /// Byte range of the whole entry (extension headers, header, data, padding) in
    /// the layer's plain tar.
    pub span: (u64, u64),
    /// Offset of its data in the plain tar.
    pub data_offset: u64,
    /// Size of its data.
    pub size: u64,
    /// sha256 of its data, when the scan was asked for digests (`inspect`, to tell a
    /// metadata-only copy-up from an overwrite).
    pub digest: Option<crate::digest::Digest>,
    /// Permission bits of its header (`0o7777`).
    pub mode: u32,
    /// Its owner `(uid, gid)`: PAX `uid`/`gid` over the header's fields, as Go's
    /// `archive/tar` reads them.
    pub owner: (u64, u64),
    /// Whether the merge moved it: its name (or a hard link's target) passed through a
    /// symlink, which runtimes follow, so `path` is where it really lands and the
    /// writer gives it a new header.
    pub moved: bool,
}

/// How much a scan records about each entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IndexMode {
    /// Nothing: only count and check.
    Off,
    /// Paths, kinds and byte spans.
    Entries,
    /// That, and a digest of every file's data.
    EntriesWithDigests,
}

/// Classifies a normalised path and tar entry type.
pub fn classify(path: &[u8], kind: tar::EntryType, link: Option<Vec<u8>>) -> Kind {
    let (parent, name) = split_parent(path);
    if name == OPAQUE_MARKER {
        return Kind::Opaque(parent.to_vec());
    }
    if name.starts_with(AUFS_META_PREFIX) {
        return Kind::Ignored;
    }
    if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
        return Kind::Whiteout(join(parent, hidden));
    }
    use tar::EntryType as T;
    match kind {
        T::Regular | T::Continuous | T::GNUSparse => Kind::File,
        T::Directory => Kind::Dir,
        T::Symlink => Kind::Symlink(link.unwrap_or_default()),
        T::Link => Kind::Hardlink(link.unwrap_or_default()),
        T::Char | T::Block | T::Fifo => Kind::Special,
        T::XGlobalHeader => Kind::Ignored,
        _ => Kind::File,
    }
}

/// The longest entry name or link target accepted, in bytes: Linux's `PATH_MAX`, past
/// which no runtime can create the path in one call.
pub const MAX_PATH_BYTES: usize = 4096;
/// The deepest entry accepted, in path components: ancestor walks cost the depth for
/// every entry, so a bound keeps a small hostile layer from costing minutes. Real
/// images stay far below it (Debian's deepest paths have about 15 components).
pub const MAX_PATH_DEPTH: usize = 256;

/// Refuses a path over [`MAX_PATH_BYTES`] or [`MAX_PATH_DEPTH`], naming `what` it is.
pub(crate) fn check_limits(p: &[u8], what: &str) -> Result<(), String> {
    let depth = p.split(|&b| b == b'/').count();
    if p.len() > MAX_PATH_BYTES || depth > MAX_PATH_DEPTH {
        let head = path::escape(&p[..p.len().min(60)]);
        return Err(format!(
            "{head}... ({what} of {} bytes, {depth} components; the limits are {MAX_PATH_BYTES} bytes and {MAX_PATH_DEPTH} components)",
            p.len()
        ));
    }
    Ok(())
}

/// Records an entry of the layer's plain tar. Refuses, with the escaped name and why,
/// names and link targets over [`MAX_PATH_BYTES`] or [`MAX_PATH_DEPTH`], names that
/// climb out of the root, entries that would replace the root itself (umoci
/// refuses to change the root's type), links to the root, and whiteouts that name no
/// file (`.wh.`, `.wh..`, `.wh...`: image-spec `layer.md` forbids them).
pub fn record(entry: &headers::Entry) -> Result<EntryRec, String> {
    let shown = || path::escape(&entry.path);
    check_limits(&entry.path, "a name")?;
    check_limits(&entry.link, "a link target")?;
    let path = path::normalize(&entry.path).ok_or_else(shown)?;
    let link = if entry.kind.is_hard_link() {
        let target = path::normalize(&entry.link)
            .ok_or_else(|| format!("{} (hardlink target)", path::escape(&entry.link)))?;
        if target.is_empty() {
            return Err(format!("{} (a hard link to the root)", shown()));
        }
        Some(target)
    } else if entry.kind.is_symlink() {
        Some(entry.link.clone())
    } else {
        None
    };
    // A global header is `Ignored` by type (the walker refused any named as a marker).
    let kind = classify(&path, entry.kind, link);
    let names_root = match &kind {
        Kind::Whiteout(hidden) => {
            let (_, name) = split_parent(hidden);
            matches!(name, b"" | b"." | b"..")
        }
        Kind::Dir | Kind::Opaque(_) | Kind::Ignored => false,
        _ => path.is_empty(),
    };
    if names_root {
        return Err(format!(
            "{} (names the root or no file: it would replace or delete the whole filesystem)",
            shown()
        ));
    }
    Ok(EntryRec {
        path,
        kind,
        span: (entry.start, entry.end()),
        data_offset: entry.data_offset,
        size: entry.size,
        digest: None,
        mode: entry.header.mode().unwrap_or(0) & 0o7777,
        owner: owner(entry),
        moved: false,
    })
}

/// An entry's owner: its last PAX `uid`/`gid` record (the walker refused non-numeric
/// ones), else the header's field.
fn owner(entry: &headers::Entry) -> (u64, u64) {
    let pax = |key: &[u8]| {
        entry
            .pax
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| std::str::from_utf8(v).ok()?.parse().ok())
    };
    (
        pax(b"uid").unwrap_or_else(|| entry.header.uid().unwrap_or(0)),
        pax(b"gid").unwrap_or_else(|| entry.header.gid().unwrap_or(0)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tar::EntryType as T;

    #[test]
    fn classify_table() {
        for (p, t, want) in [
            (&b"a/.wh.b"[..], T::Regular, Kind::Whiteout(b"a/b".to_vec())),
            (b".wh.top", T::Regular, Kind::Whiteout(b"top".to_vec())),
            (b"a/.wh.b", T::Link, Kind::Whiteout(b"a/b".to_vec())),
            (b"a/.wh..wh..opq", T::Regular, Kind::Opaque(b"a".to_vec())),
            (b".wh..wh..opq", T::Regular, Kind::Opaque(Vec::new())),
            (b"a/.wh..wh.plnk", T::Directory, Kind::Ignored),
            (b"a/foo.wh.bar", T::Regular, Kind::File),
            (b"d", T::Directory, Kind::Dir),
            (b"s", T::Symlink, Kind::Symlink(Vec::new())),
            (b"f", T::Fifo, Kind::Special),
        ] {
            assert_eq!(classify(p, t, None), want, "{}", path::escape(p));
        }
    }
}
