//! The index of one layer: every entry's normalised path, what kind of entry it is
//! (including whiteouts and opaque markers, recognised by name whatever their type),
//! and where its raw bytes lie in the layer's plain tar, so the emitter can copy
//! unchanged entries byte for byte (PAX records, long names and all).
//!
//! Whiteouts (image-spec `layer.md`, "Whiteouts"): "a whiteout file is an empty file
//! with a special filename that signifies a path should be deleted ... `.wh.` prefix";
//! "an opaque whiteout entry is a file with the name `.wh..wh..opq` indicating that all
//! siblings are hidden in the lower layer".

use super::path;
use std::io::Read;

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
    /// A symbolic link (its target is data, never resolved).
    Symlink,
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

fn split_parent(p: &[u8]) -> (&[u8], &[u8]) {
    match p.iter().rposition(|&b| b == b'/') {
        Some(i) => (&p[..i], &p[i + 1..]),
        None => (&[], p),
    }
}

fn join(parent: &[u8], name: &[u8]) -> Vec<u8> {
    if parent.is_empty() {
        name.to_vec()
    } else {
        [parent, b"/", name].concat()
    }
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
        T::Symlink => Kind::Symlink,
        T::Link => Kind::Hardlink(link.unwrap_or_default()),
        T::Char | T::Block | T::Fifo => Kind::Special,
        T::XGlobalHeader => Kind::Ignored,
        _ => Kind::File,
    }
}

/// Records a tar entry read from the layer's plain tar; `span_start` is where the
/// previous entry ended. Returns the record and where this entry ends.
pub fn record<R: Read>(entry: &tar::Entry<'_, R>, span_start: u64) -> Option<(EntryRec, u64)> {
    let raw_path = entry.path_bytes();
    let path = path::normalize(&raw_path)?;
    let header = entry.header();
    let link = if header.entry_type().is_hard_link() {
        Some(path::normalize(
            &entry.link_name_bytes().unwrap_or_default(),
        )?)
    } else {
        None
    };
    // What tar-rs skipped to reach the next header (PAX `size` applied).
    let size = entry.size();
    let data_offset = entry.raw_file_position();
    let end = data_offset + size.div_ceil(512) * 512;
    let kind = classify(&path, header.entry_type(), link);
    Some((
        EntryRec {
            path,
            kind,
            span: (span_start, end),
            data_offset,
            size,
            digest: None,
        },
        end,
    ))
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
            (b"s", T::Symlink, Kind::Symlink),
            (b"f", T::Fifo, Kind::Special),
        ] {
            assert_eq!(classify(p, t, None), want, "{}", path::escape(p));
        }
    }
}
