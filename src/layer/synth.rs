//! A layer made here, not read from the image: files a policy rewrites (a package
//! database without the removed packages' stanzas, an alternatives link pointed at the
//! choice that remains). Each is a tar entry with every field and extension record
//! (owner, mode, mtime to the nanosecond, xattrs) of the entry it replaces, so the
//! output stays deterministic; the layer is applied on top
//! of the merged tree like any other and its entries are copied raw by the writer.

use super::index::IndexMode;
use super::overlay::Tree;
use super::reader::scan_full;
use super::writer::{Spool, finish_tar, write_like};
use crate::error::{Error, Result};
use crate::layer::codec::Encoder;
use std::io::{Seek, Write};
use std::sync::Arc;

/// The name the synthesized layer has in errors and warnings.
pub const NAME: &str = "files rewritten by the policy";

/// What a rewritten path holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Content {
    /// A regular file with these bytes.
    File(Vec<u8>),
    /// A symlink to this target.
    Symlink(Vec<u8>),
}

/// One path to rewrite.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rewrite {
    /// Its normalised path.
    pub path: Vec<u8>,
    /// What it holds.
    pub content: Content,
    /// The path whose entry lends its owner, mode and mtime (usually `path` itself).
    pub like: Vec<u8>,
}

/// Builds the layer of `rewrites` (sorted by path) as a spool; entries' metadata comes
/// from `tree`'s entries in `spools`.
pub fn build(rewrites: &[Rewrite], tree: &Tree, spools: &[Spool]) -> Result<Spool> {
    let mut w = std::io::BufWriter::new(tempfile::tempfile()?);
    for r in rewrites {
        let node = tree.nodes.get(&r.like).ok_or_else(|| {
            Error::corrupt(
                NAME,
                format!("no entry at {}", crate::layer::path::escape(&r.like)),
            )
        })?;
        let spool = &spools[node.inode.layer];
        let like = (spool, &spool.entries[node.inode.entry]);
        match &r.content {
            Content::File(bytes) => write_like(&mut w, like, &r.path, None, bytes)?,
            Content::Symlink(target) => write_like(&mut w, like, &r.path, Some(target), &[])?,
        }
    }
    finish_tar(&mut w)?;
    let mut file = w.into_inner().map_err(|e| e.into_error())?;
    file.flush()?;
    file.rewind()?;
    let (_, _, _, entries) = scan_full(
        &file,
        NAME,
        None::<std::io::Sink>,
        None::<Encoder<std::io::Sink>>,
        IndexMode::Entries,
    )?;
    Ok(Spool {
        file: Arc::new(file),
        base: 0,
        entries,
    })
}
