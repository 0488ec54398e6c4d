//! Pass 1 and the merge, shared by every command that reads an image's filesystem:
//! every layer streamed once (biggest first), verified and indexed, compressed layers
//! spooled as a plain tar, then merged as a runtime would (see [`Tree::merge`]).

use crate::cache::Cache;
use crate::digest::Digest;
use crate::error::Result;
use crate::image::reader::{self, OpenOptions, SourceSpec};
use crate::image::writer::Staging;
use crate::layer::codec::{Compression, Encoder};
use crate::layer::fs::TreeFs;
use crate::layer::index::IndexMode;
use crate::layer::overlay::Tree;
use crate::layer::reader::{LayerScan, scan_full};
use crate::layer::writer::Spool;
use crate::pipeline::reuse;
use std::io::BufWriter;
use std::sync::Arc;

/// Layer outcome of pass 1.
pub struct Scanned {
    /// What streaming the layer found.
    pub scan: LayerScan,
    /// Where its plain tar is read from, and its entries.
    pub spool: Spool,
    /// Its blob as copied into staging, for a kept base layer.
    pub kept_blob: Option<(Digest, u64)>,
    /// Whether it was indexed from the cache's plain tar.
    pub cached: bool,
}

/// Pass 1: every layer streamed once (biggest first), verified and indexed; compressed
/// layers are spooled as a plain tar, plain ones stay where they are; the kept base
/// layers' blobs are also copied into `staging`. `mode` says what the index records.
/// With a `cache`, a squashed layer whose plain tar it holds is indexed from there, and
/// the plain tar of each one decompressed is kept in it.
pub fn scan_layers(
    source: &reader::Source,
    (keep, mode): (usize, IndexMode),
    (staging, cache): (Option<&Staging>, Option<&Cache>),
    jobs: usize,
    progress: &crate::progress::Progress,
) -> Result<Vec<Scanned>> {
    let image = &source.image;
    crate::parallel::biggest_first(
        &image.layers,
        jobs,
        |l| source.layer_size(l),
        |l| -> Result<Scanned> {
            let cache = cache.filter(|_| l.position > keep);
            if let Some(c) = cache
                && let Some(s) = reuse::cached_layer(c, source, l, mode, progress)?
            {
                return Ok(s);
            }
            let blob = source.layer_blob(l)?;
            let raw = match staging {
                Some(st) if l.position <= keep => Some(st.blob_writer()?),
                _ => None,
            };
            // A plain tar is read in place in pass 2; only compressed layers are
            // spooled, decompressed, to a temporary file.
            let mut cached_tar = None;
            let spool = match blob.compression {
                Compression::None => None,
                _ => {
                    let f = match (cache.filter(|_| l.digest.is_some()), staging) {
                        (Some(c), _) => {
                            let (f, path) = c.tar_writer()?;
                            cached_tar = Some((c, path));
                            f
                        }
                        (None, Some(st)) => tempfile::tempfile_in(st.path())?,
                        (None, None) => tempfile::tempfile()?,
                    };
                    Some(Encoder::Plain(BufWriter::with_capacity(1 << 20, f)))
                }
            };
            let reader = progress.reader(
                &format!("read layer {}", l.position),
                blob.size,
                blob.reader(),
            );
            let (scan, raw, enc, entries) = scan_full(reader, &l.name(), raw, spool, mode)?;
            l.verify(&scan)?;
            // No spool: the plain tar is read where it is (its digests were checked).
            let spool = match enc {
                Some(enc) => Spool {
                    file: Arc::new(enc.finish()?.into_inner().map_err(|e| e.into_error())?),
                    base: 0,
                    entries,
                },
                None => Spool {
                    file: blob.file,
                    base: blob.offset,
                    entries,
                },
            };
            let kept_blob = raw.map(|w| w.finish()).transpose()?;
            if let Some((c, path)) = cached_tar {
                c.keep_tar(path, &scan.diff_id);
            }
            Ok(Scanned {
                scan,
                spool,
                kept_blob,
                cached: false,
            })
        },
    )
}

/// Merges the scanned layers (see [`Tree::merge`]).
pub fn merge_scanned(
    scanned: &mut [Scanned],
    image: &crate::image::Image,
    keep: usize,
    warnings: &mut Vec<String>,
) -> Result<(Tree, Tree)> {
    let layers = scanned
        .iter_mut()
        .zip(&image.layers)
        .map(|(s, l)| (s.spool.entries.as_mut_slice(), l.name()));
    Tree::merge(layers, keep, warnings)
}

/// Merges the scanned layers, returning the tree after each of `ends` layers
/// ([`Tree::merge_at`]).
pub fn merge_scanned_at(
    scanned: &mut [Scanned],
    image: &crate::image::Image,
    ends: &[usize],
    warnings: &mut Vec<String>,
) -> Result<Vec<Tree>> {
    let layers = scanned
        .iter_mut()
        .zip(&image.layers)
        .map(|(s, l)| (s.spool.entries.as_mut_slice(), l.name()));
    Tree::merge_at(layers, ends, warnings)
}

/// An image read, verified and merged, for the commands that read its filesystem
/// (`check`, `packages`).
pub struct Merged {
    /// The source and the image chosen in it.
    pub source: reader::Source,
    /// The merged tree.
    pub tree: Tree,
    /// Each layer's spool.
    pub spools: Vec<Spool>,
    /// Warnings of reading and merging.
    pub warnings: Vec<String>,
}

impl Merged {
    /// Reads and merges the image `spec`.
    pub fn open(
        spec: &SourceSpec,
        open: &OpenOptions,
        jobs: usize,
        progress: &crate::progress::Progress,
    ) -> Result<Merged> {
        Merged::open_indexed(spec, (open, IndexMode::Entries), jobs, progress)
    }

    /// [`Merged::open`], its index recording what `mode` says (every file's digest,
    /// for `diff`).
    pub fn open_indexed(
        spec: &SourceSpec,
        (open, mode): (&OpenOptions, IndexMode),
        jobs: usize,
        progress: &crate::progress::Progress,
    ) -> Result<Merged> {
        let source = reader::open(spec, open)?;
        let mut scanned = scan_layers(&source, (0, mode), (None, None), jobs, progress)?;
        let mut warnings = source.image.warnings.clone();
        let (_, tree) = merge_scanned(&mut scanned, &source.image, 0, &mut warnings)?;
        let spools = scanned.into_iter().map(|s| s.spool).collect();
        Ok(Merged {
            source,
            tree,
            spools,
            warnings,
        })
    }

    /// Its merged filesystem.
    pub fn fs(&self) -> TreeFs<'_> {
        TreeFs::new(&self.tree, &self.spools)
    }
}
