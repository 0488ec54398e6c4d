//! `ocislim convert`: re-encode an image into another sink or codec, losslessly.
//!
//! Each layer streams once: verified, and either copied byte-for-byte (same codec, no
//! level asked) or re-encoded. The config is copied byte-for-byte, so the image ID
//! stays the same: re-encoding never changes a layer's diff_id.

use crate::digest::Digest;
use crate::error::Result;
use crate::image::LayerRef;
use crate::image::reader::{self, OpenOptions, SourceSpec};
use crate::image::writer::{OutImage, OutLayer, OutputOptions, Staging};
use crate::layer::codec::{Compression, EncodeOptions};
use crate::layer::reader::{Copy, LayerScan, scan};
use crate::pipeline::format::{default_format, media_family};

/// What `convert` is asked to do, validated before any image byte is read.
#[derive(Clone, Debug)]
pub struct ConvertOptions {
    /// The source.
    pub source: SourceSpec,
    /// Platform choice.
    pub open: OpenOptions,
    /// Where and how to write the result.
    pub output: OutputOptions,
    /// Worker threads.
    pub jobs: usize,
    /// Progress bars.
    pub progress: crate::progress::Progress,
}

/// One layer, before and after.
#[derive(Clone, Debug, serde::Serialize)]
pub struct LayerConversion {
    /// Position from 1.
    pub position: usize,
    /// Input blob digest.
    pub input_digest: Digest,
    /// Input codec.
    pub input_compression: &'static str,
    /// Input blob size.
    pub input_size: u64,
    /// Output blob digest.
    pub output_digest: Digest,
    /// Output codec.
    pub output_compression: &'static str,
    /// Output blob size.
    pub output_size: u64,
    /// Uncompressed tar size.
    pub tar_size: u64,
    /// Whether the blob was copied byte-for-byte.
    pub copied: bool,
}

/// What `convert` did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ConvertReport {
    /// Input format.
    pub input_format: &'static str,
    /// Output format.
    pub output_format: &'static str,
    /// The config digest (unchanged by conversion).
    pub config_digest: Digest,
    /// Per layer.
    pub layers: Vec<LayerConversion>,
    /// Warnings.
    pub warnings: Vec<String>,
    /// For a registry destination, what the push did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pushed: Option<crate::image::remote::Pushed>,
}

/// Streams one layer into staging: verified, copied or re-encoded.
pub(crate) fn write_layer(
    progress: &crate::progress::Progress,
    source: &reader::Source,
    staging: &Staging,
    layer: &LayerRef,
    want: Option<Compression>,
    level: Option<i32>,
    threads: u32,
) -> Result<(LayerScan, OutLayer, bool)> {
    let blob = source.layer_blob(layer)?;
    let have = blob.compression;
    let target = want.unwrap_or(have);
    let copy_raw = target == have && level.is_none();
    let out = staging.blob_writer()?;
    let copy = if copy_raw {
        Copy::Raw(out)
    } else {
        Copy::Reencode(
            out,
            EncodeOptions {
                compression: target,
                level,
                threads,
            },
        )
    };
    let reader = progress.reader(
        &format!("layer {}", layer.position),
        blob.size,
        blob.reader(),
    );
    let (scan, out) = scan(reader, &layer.name(), copy)?;
    layer.verify(&scan)?;
    let (digest, size) = out.expect("a copy target was given").finish()?;
    let out = OutLayer {
        digest,
        size,
        media_type: String::new(),
        annotations: layer.annotations.clone(),
    };
    Ok((scan, out, copy_raw))
}

// Long: the command's sequence (open, stage, each layer streamed, config, manifest,
// commit) with its report built along; each step is one call already.
/// Runs `convert`.
pub fn convert(opts: &ConvertOptions) -> Result<ConvertReport> {
    if let Some(f) = opts.output.format {
        opts.output.check(f)?;
    }
    let source = reader::open(&opts.source, &opts.open)?;
    let image = &source.image;
    let format = opts
        .output
        .format
        .unwrap_or_else(|| default_format(image.format, &opts.output.dest));
    opts.output.check(format)?;
    let mut staging = Staging::new(opts.output.dest.clone(), format)?;
    staging.mount_from(source.pulled.as_ref().map(|p| p.mount_from()));
    // Layers run side by side; their encoders share the rest of --jobs, so at most about
    // --jobs threads compress at once, however many layers there are. The bytes do not
    // depend on it.
    let side_by_side = opts.jobs.clamp(1, image.layers.len().max(1));
    let threads = (opts.jobs.max(1) / side_by_side).max(1) as u32;
    let results: Vec<(LayerScan, OutLayer, bool)> = crate::parallel::biggest_first(
        &image.layers,
        opts.jobs,
        |l| source.layer_size(l),
        |l| {
            write_layer(
                &opts.progress,
                &source,
                &staging,
                l,
                opts.output.compression,
                opts.output.level,
                threads,
            )
        },
    )?;
    let mut warnings = image.warnings.clone();
    let codecs: Vec<Compression> = results
        .iter()
        .map(|(s, _, raw)| {
            if *raw {
                s.compression
            } else {
                opts.output.compression.unwrap_or(s.compression)
            }
        })
        .collect();
    let (docker, manifest_media, config_media) = media_family(image, &codecs, &mut warnings);
    let mut layers = Vec::new();
    let mut report_layers = Vec::new();
    for ((scan, mut out, copied), codec) in results.into_iter().zip(&codecs) {
        out.media_type = codec.media_type(docker).to_string();
        report_layers.push(LayerConversion {
            position: report_layers.len() + 1,
            input_digest: scan.blob_digest.clone(),
            input_compression: scan.compression.name(),
            input_size: scan.blob_size,
            output_digest: out.digest.clone(),
            output_compression: codec.name(),
            output_size: out.size,
            tar_size: scan.tar_size,
            copied,
        });
        layers.push(out);
    }
    let (tags, ref_names) = opts.output.names(format, image);
    let finished = staging.finish(&OutImage {
        config: image.config.clone(),
        config_media_type: config_media,
        manifest_media_type: manifest_media,
        manifest_annotations: image.manifest_annotations.clone(),
        layers,
        tags,
        ref_names,
        attached: Vec::new(),
    })?;
    warnings.extend(finished.warnings);
    Ok(ConvertReport {
        input_format: image.format.name(),
        output_format: format.name(),
        config_digest: image.config_digest(),
        layers: report_layers,
        warnings,
        pushed: finished.pushed,
    })
}
