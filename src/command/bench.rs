//! `ocislim bench`: every policy against every image, each image read, verified and
//! indexed once, then merged, slimmed and compressed (to a counting sink) per policy.

use crate::digest::Meter;
use crate::error::Result;
use crate::image::reader::{self, OpenOptions, SourceSpec};
use crate::layer::codec::{Compression, EncodeOptions, Encoder};
use crate::layer::index::{EntryRec, IndexMode};
use crate::layer::overlay::{self, Tree};
use crate::pipeline::emit::{LayerOut, Sizes, squashed_codec, write_layer};
use crate::pipeline::merge::{Scanned, merge_scanned, scan_layers};
use crate::policy::PolicySet;
use crate::progress::Progress;
use crate::section::Section;
use std::time::Instant;

/// The fixture images embedded in the binary, the default when no image is named.
pub const FIXTURES: &[(&str, &[u8])] = &[(
    "fixtures/small.tar",
    include_bytes!("../../fixtures/small.tar"),
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
    /// Add whether the dependency check passes (`--check`).
    pub check: bool,
    /// Run this shell command in each slimmed image under Docker (`--smoke`).
    pub smoke: Option<String>,
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
    /// With `--check`: `ok`, or how many references the policy breaks and the first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
    /// With `--smoke`: `ok`, the command's exit status, or why it did not run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smoke: Option<String>,
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
        let mode = (0, IndexMode::Entries);
        let mut scanned = scan_layers(&source, mode, (None, None), opts.jobs, &opts.progress)?;
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
        let before_at_output_codec = stored_at(&scanned, enc)?;
        let mut spools: Vec<_> = scanned.into_iter().map(|s| s.spool).collect();
        let layers = spools.len();
        for (policy_name, policy) in &opts.policies {
            let start = Instant::now();
            // A policy's rewrite layer is appended to the spools, and dropped after.
            spools.truncate(layers);
            let (mut t, sp) = (tree.clone(), &mut spools);
            let slimmed = crate::pipeline::slim::slim(
                policy,
                (&mut t, sp),
                &source.image.config_json,
                0,
                opts.check.then_some(true),
                &mut warnings,
            )?;
            let check = opts.check.then(|| match &slimmed.check {
                Some(g) if !g.broken_by_policy.is_empty() => format!(
                    "{} broken: {}",
                    g.broken_by_policy.len(),
                    g.broken_by_policy[0]
                ),
                _ => "ok".to_string(),
            });
            let outcome = slimmed.policy;
            let entries: Vec<&[EntryRec]> = sp.iter().map(|s| s.entries.as_slice()).collect();
            let plan = overlay::plan(&Tree::default(), &t, 0, &entries);
            let w = write_layer(
                &plan,
                sp,
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
                check,
                smoke: match &opts.smoke {
                    Some(cmd) => Some(smoke(spec, policy, cmd, opts)?),
                    None => None,
                },
            });
        }
    }
    Ok(BenchReport { rows })
}

/// The input's layers' stored size at the output's codec: a layer stored with it counts
/// as it is, the others as they compress with it (bench compares like with like).
fn stored_at(scanned: &[Scanned], enc: EncodeOptions) -> Result<u64> {
    scanned
        .iter()
        .map(|s| {
            if s.scan.compression == enc.compression {
                return Ok(s.scan.blob_size);
            }
            let tar = Section::new(&*s.spool.file, s.spool.base, s.spool.base + s.scan.tar_size);
            encoded_size(tar, enc)
        })
        .sum()
}

/// Runs `cmd` with `sh -c` in the image `spec` slimmed by `policy`, under the Docker
/// engine the `docker` command reaches (`DOCKER_HOST`), without network: `ok`, the
/// exit status, or why it could not run.
fn smoke(spec: &SourceSpec, policy: &PolicySet, cmd: &str, opts: &BenchOptions) -> Result<String> {
    use std::process::{Command, Stdio};
    let docker = |args: &[&str]| {
        Command::new("docker")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
    };
    if !docker(&["version"]).is_ok_and(|s| s.success()) {
        return Ok("no Docker engine".into());
    }
    let dir = tempfile::tempdir()?;
    let archive = dir.path().join("slim.tar");
    let tag = format!("ocislim-bench-smoke:{}", std::process::id());
    let squash = crate::pipeline::squash::SquashOptions {
        source: spec.clone(),
        open: opts.open.clone(),
        output: crate::image::writer::OutputOptions {
            compression: opts.compression,
            level: opts.level,
            ..crate::image::writer::OutputOptions::parse(
                &format!("docker-archive:{}:{tag}", archive.display()),
                None,
                Vec::new(),
                crate::image::remote::Access::default(),
            )?
        },
        keep: crate::pipeline::squash::Keep::Nothing,
        groups: None,
        timestamp: None,
        cache: None,
        policy: policy.clone(),
        dry_run: false,
        report_file: None,
        sbom: None,
        attach: false,
        allow_broken: true,
        check: false,
        jobs: opts.jobs,
        progress: Progress::hidden(),
    };
    crate::pipeline::squash::squash(&squash)?;
    let path = archive.to_string_lossy();
    if !docker(&["load", "-i", &path]).is_ok_and(|s| s.success()) {
        return Ok("docker load failed".into());
    }
    let ran = docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        "sh",
        &tag,
        "-c",
        cmd,
    ]);
    let _ = docker(&["rmi", &tag]);
    Ok(match ran {
        Ok(s) if s.success() => "ok".into(),
        Ok(s) => format!("failed ({s})"),
        Err(e) => format!("docker: {e}"),
    })
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
