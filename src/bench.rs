//! `ocislim bench`: every policy against every image, each image read, verified and
//! indexed once, then merged, slimmed and compressed (to a counting sink) per policy.

use crate::digest::Meter;
use crate::error::Result;
use crate::image::reader::{self, OpenOptions, SourceSpec};
use crate::image::store::Section;
use crate::layer::codec::{Compression, EncodeOptions, Encoder};
use crate::layer::index::EntryRec;
use crate::layer::overlay::{self, Tree};
use crate::policy::PolicySet;
use crate::progress::Progress;
use crate::squash::{LayerOut, Sizes, merge_scanned, scan_layers, squashed_codec, write_layer};
use std::time::Instant;

/// The fixture images embedded in the binary, the default when no image is named.
pub const FIXTURES: &[(&str, &[u8])] = &[(
    "fixtures/small.tar",
    include_bytes!("../fixtures/small.tar"),
)];

/// What `bench` is asked to do.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// The images, with the names the table gives them.
    pub images: Vec<(String, SourceSpec)>,
    /// The policies, with their names.
    pub policies: Vec<(String, PolicySet)>,
    /// Platform choice.
    pub open: OpenOptions,
    /// Codec of the squashed layer (default: as `squash` chooses).
    pub compression: Option<Compression>,
    /// Codec level.
    pub level: Option<i32>,
    /// Worker threads.
    pub jobs: usize,
    /// Progress bars (for reading).
    pub progress: Progress,
}

/// One image x policy.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BenchRow {
    /// Image name.
    pub image: String,
    /// Policy name.
    pub policy: String,
    /// Sizes of the input (all layers), stored as the input stores them.
    pub before: Sizes,
    /// The input's layers at the output's codec and level: as stored when their codec
    /// is the output's, re-encoded (to a counting sink) when it is not, so that
    /// `stored_saved_percent` compares like with like.
    pub before_at_output_codec: u64,
    /// Sizes of the squashed, slimmed output.
    pub after: Sizes,
    /// The output's codec (`gzip`, `zstd`, `none`).
    pub codec: String,
    /// Tar bytes saved, in percent of the input's tar bytes.
    pub tar_saved_percent: f64,
    /// Stored bytes saved, in percent of `before_at_output_codec`.
    pub stored_saved_percent: f64,
    /// Non-directory paths the policy deleted.
    pub files_removed: u64,
    /// Seconds for this policy (merge, policy, compression), the image read excluded.
    pub seconds: f64,
}

/// The table.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BenchReport {
    /// One row per image x policy, images in the order given.
    pub rows: Vec<BenchRow>,
}

/// Runs `bench`.
pub fn bench(opts: &BenchOptions) -> Result<BenchReport> {
    let mut rows = Vec::new();
    for (name, spec) in &opts.images {
        let source = reader::open(spec, &opts.open)?;
        let mut scanned = scan_layers(&source, 0, None, opts.jobs, &opts.progress)?;
        let mut warnings = Vec::new();
        let (_, tree) = merge_scanned(&mut scanned, &source.image, 0, &mut warnings)?;
        let before = Sizes {
            compressed: scanned.iter().map(|s| s.scan.blob_size).sum(),
            uncompressed: scanned.iter().map(|s| s.scan.tar_size).sum(),
        };
        let codec = squashed_codec(opts.compression, scanned.last().map(|s| s.scan.compression));
        let enc = EncodeOptions {
            compression: codec,
            level: opts.level,
            threads: opts.jobs.max(1) as u32,
        };
        let before_at_output_codec = scanned
            .iter()
            .map(|s| {
                if s.scan.compression == codec {
                    return Ok(s.scan.blob_size);
                }
                let tar =
                    Section::new(&*s.spool.file, s.spool.base, s.spool.base + s.scan.tar_size);
                encoded_size(tar, enc)
            })
            .sum::<Result<u64>>()?;
        let spools: Vec<_> = scanned.into_iter().map(|s| s.spool).collect();
        let entries: Vec<&[EntryRec]> = spools.iter().map(|s| s.entries.as_slice()).collect();
        for (policy_name, policy) in &opts.policies {
            let start = Instant::now();
            let mut t = tree.clone();
            let fs = crate::deps::fs::TreeFs::new(&tree, &spools);
            let elf = crate::deps::loader::ElfCache::default();
            let deleted = policy
                .decide_image(&t, &fs, &source.image.config_json, &elf)?
                .deleted;
            let outcome = crate::policy::apply(policy, &mut t, &deleted, 0, &entries);
            let plan = overlay::plan(&Tree::default(), &t, 0, &entries);
            let w = write_layer(
                &plan,
                &spools,
                enc,
                None,
                &Progress::hidden(),
                0,
                LayerOut::Dry(Meter::new(std::io::sink())),
            )?;
            let after = Sizes {
                compressed: w.size,
                uncompressed: w.tar_size,
            };
            rows.push(BenchRow {
                image: name.clone(),
                policy: policy_name.clone(),
                before,
                before_at_output_codec,
                after,
                codec: codec.name().to_string(),
                tar_saved_percent: saved(after.uncompressed, before.uncompressed),
                stored_saved_percent: saved(after.compressed, before_at_output_codec),
                files_removed: outcome.rules.iter().map(|r| r.files).sum(),
                seconds: start.elapsed().as_secs_f64(),
            });
        }
    }
    Ok(BenchReport { rows })
}

/// Percent of `before` that `after` saves.
fn saved(after: u64, before: u64) -> f64 {
    100.0 * (1.0 - after as f64 / before.max(1) as f64)
}

/// Bytes `tar` takes encoded with `enc`.
fn encoded_size(mut tar: impl std::io::Read, enc: EncodeOptions) -> Result<u64> {
    let mut e = Encoder::new(Meter::new(std::io::sink()), enc)?;
    std::io::copy(&mut tar, &mut e)?;
    Ok(e.finish()?.count())
}
