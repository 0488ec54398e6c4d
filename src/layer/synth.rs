//! A layer made here, not read from the image: files a policy rewrites (a package
//! database without the removed packages' stanzas, an alternatives link pointed at the
//! choice that remains). Each is a tar entry whose owner, mode and mtime are copied from
//! the entry it replaces, so the output stays deterministic; the layer is applied on top
//! of the merged tree like any other and its entries are copied raw by the writer.

use super::index::IndexMode;
use super::overlay::Tree;
use super::reader::scan_full;
use super::writer::{Spool, header_of};
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
    let file = tempfile::tempfile()?;
    let mut b = tar::Builder::new(std::io::BufWriter::new(file));
    for r in rewrites {
        let node = tree.nodes.get(&r.like).ok_or_else(|| {
            Error::corrupt(
                NAME,
                format!("no entry at {}", crate::layer::path::escape(&r.like)),
            )
        })?;
        let rec = &spools[node.inode.layer].entries[node.inode.entry];
        let mut h = header_of(&spools[node.inode.layer], rec)?;
        let path = std::ffi::OsStr::new(
            std::str::from_utf8(&r.path)
                .map_err(|_| Error::corrupt(NAME, "a rewritten path is not UTF-8"))?,
        );
        match &r.content {
            Content::File(bytes) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(bytes.len() as u64);
                b.append_data(&mut h, path, bytes.as_slice())?;
            }
            Content::Symlink(target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                h.set_mode(0o777);
                let t = std::str::from_utf8(target)
                    .map_err(|_| Error::corrupt(NAME, "a link target is not UTF-8"))?;
                b.append_link(&mut h, path, t)?;
            }
        }
    }
    let mut file = b.into_inner()?.into_inner().map_err(|e| e.into_error())?;
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
