//! `ocislim inspect`: what an image is made of, every layer verified as it is read,
//! and where its bytes go (see [`waste`]).

pub mod waste;

use crate::digest::Digest;
use crate::error::Result;
use crate::image::reader::{self, OpenOptions, SourceSpec};
use crate::image::remote::Remote;
use crate::layer::index::IndexMode;
use crate::layer::reader::scan_full;
use crate::policy::PolicySet;
use serde_json::Value;

/// One layer as found.
#[derive(Clone, Debug, serde::Serialize)]
pub struct LayerInfo {
    /// Position from 1.
    pub position: usize,
    /// Blob digest.
    pub digest: Digest,
    /// Media type: the descriptor's, or the one the sniffed codec implies.
    pub media_type: String,
    /// Blob size.
    pub compressed_size: u64,
    /// Uncompressed tar size.
    pub uncompressed_size: u64,
    /// The config's diff_id, checked.
    pub diff_id: Digest,
    /// Tar entries.
    pub entries: u64,
}

/// What `inspect` found.
#[derive(Clone, Debug, serde::Serialize)]
pub struct InspectReport {
    /// The source as given.
    pub source: String,
    /// The source's format: its transport for a registry (`docker`) or the engine
    /// (`docker-daemon`), else the format detected.
    pub format: &'static str,
    /// Detected shape.
    pub shape: &'static str,
    /// `os/arch[/variant]`.
    pub platform: String,
    /// Names the source gives the image.
    pub tags: Vec<String>,
    /// Config digest (the image ID).
    pub config_digest: Digest,
    /// `created` from the config.
    pub created: Option<String>,
    /// The config's `config` object (Env, Cmd, Entrypoint, ...), as it is.
    pub config: Value,
    /// The config's history.
    pub history: Vec<Value>,
    /// Layers, bottom first.
    pub layers: Vec<LayerInfo>,
    /// File data stored across layers that the merged filesystem does not show.
    pub wasted_bytes: u64,
    /// Merged over stored file data (1.0: nothing wasted).
    pub efficiency: f64,
    /// Where the bytes go.
    pub analysis: waste::Waste,
    /// Warnings.
    pub warnings: Vec<String>,
}

/// Runs `inspect`, reading every layer with `jobs` threads.
pub fn inspect(
    source: &SourceSpec,
    open: &OpenOptions,
    policies: &[PolicySet],
    jobs: usize,
    progress: &crate::progress::Progress,
) -> Result<InspectReport> {
    let src = reader::open(source, open)?;
    let image = &src.image;
    let scanned = crate::parallel::biggest_first(
        &image.layers,
        jobs,
        |l| src.layer_size(l),
        |l| {
            let blob = src.layer_blob(l)?;
            let reader =
                progress.reader(&format!("layer {}", l.position), blob.size, blob.reader());
            let none: Option<std::io::Sink> = None;
            let (s, _, _, entries) = scan_full(
                reader,
                &l.name(),
                none,
                None::<crate::layer::codec::Encoder<std::io::Sink>>,
                IndexMode::EntriesWithDigests,
            )?;
            l.verify(&s)?;
            Ok((
                entries,
                LayerInfo {
                    position: l.position,
                    digest: s.blob_digest.clone(),
                    media_type: l
                        .media_type
                        .clone()
                        .unwrap_or_else(|| s.compression.media_type(false).to_string()),
                    compressed_size: s.blob_size,
                    uncompressed_size: s.tar_size,
                    diff_id: s.diff_id,
                    entries: s.entries,
                },
            ))
        },
    )?;
    let (mut indexes, layers): (Vec<_>, Vec<_>) = scanned.into_iter().unzip();
    let mut warnings = image.warnings.clone();
    let names: Vec<String> = image.layers.iter().map(|l| l.name()).collect();
    let analysis = waste::analyse(&mut indexes, &names, policies, &mut warnings)?;
    let c = &image.config_json;
    Ok(InspectReport {
        source: source.display(),
        format: match &source.remote {
            Some(Remote::Registry(_)) => "docker",
            Some(Remote::Daemon(_)) => "docker-daemon",
            None => image.format.name(),
        },
        shape: image.shape,
        platform: image.platform(),
        tags: image.tags.clone(),
        config_digest: image.config_digest(),
        created: c.get("created").and_then(Value::as_str).map(str::to_string),
        config: c.get("config").cloned().unwrap_or(Value::Null),
        history: c
            .get("history")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
        layers,
        wasted_bytes: analysis.stored_bytes - analysis.merged_bytes,
        efficiency: analysis.efficiency,
        analysis,
        warnings,
    })
}
