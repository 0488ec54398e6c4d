//! `ocislim squash`: one image through [`crate::pipeline::squash`], or with
//! `--all-platforms` every image of a multi-platform index squashed, and a new
//! index of the results, with the same platforms and annotations, written to any sink. A
//! docker archive (and the engine) gets the shape of Docker 25+'s save of a multi-platform
//! image: the index in `index.json` and, for engines that read only `manifest.json`, the
//! host's platform there under the tags.
//!
//! Each platform is a whole squash of its own, one after the other, each with all of
//! `--jobs`. The work is CPU-bound: two squashes of the 1 GB bench image took 31.2 s one
//! after the other with 2 threads each, 35.2 s side by side with 1 thread each (`--jobs`
//! shared) and 33.2 s side by side with 2 each, on 2 cores. Each writes into a layout
//! inside the final staging folder; its blobs are then linked into staging and the
//! index is written over them. Attestation manifests
//! are dropped with a warning: they attest how the input was built, and the output is a
//! different image, so keeping them (re-pointed at the new digests) would claim what no
//! build produced.

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::image::platform::Platform;
use crate::image::remote::Pushed;
use crate::image::writer::{Dest, OutputOptions, StagedImage, Staging};
use crate::image::{Format, media, reader};
use crate::pipeline::format::default_format;
pub use crate::pipeline::groups::GroupSpec;
pub use crate::pipeline::reuse::CacheOptions;
use crate::pipeline::squash;
pub use crate::pipeline::squash::{Keep, SquashOptions, SquashReport, squash};
use serde_json::{Value, json};
use std::path::Path;

/// One platform's squash.
#[derive(Debug, serde::Serialize)]
pub struct PlatformReport {
    /// `os/arch[/variant]`, as the index gives it.
    pub platform: String,
    /// Its squash, as a single-platform squash reports it.
    pub report: SquashReport,
}

/// What `squash --all-platforms` did.
#[derive(Debug, serde::Serialize)]
pub struct AllPlatformsReport {
    /// The output format.
    pub output_format: &'static str,
    /// The output index's digest (none for a dry run).
    pub index_digest: Option<String>,
    /// Per platform, in the index's order.
    pub platforms: Vec<PlatformReport>,
    /// What was left behind (attestations, artifacts).
    pub warnings: Vec<String>,
    /// For a registry destination, what the push did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pushed: Option<Pushed>,
}

/// Squashes every image of the source's index.
pub fn squash_all(opts: &SquashOptions) -> Result<AllPlatformsReport> {
    let listing = reader::platforms(&opts.source, &opts.open)?;
    let format = opts
        .output
        .format
        .unwrap_or_else(|| default_format(listing.format, &opts.output.dest));
    let mut staging = if opts.dry_run {
        None
    } else {
        opts.output.check(format)?;
        let mut st = Staging::new(opts.output.dest.clone(), format)?;
        st.mount_from(listing.repo.clone());
        Some(st)
    };
    let (platforms, images, entries) = squash_each(opts, &listing, staging.as_mut())?;
    let mut report = AllPlatformsReport {
        output_format: format.name(),
        index_digest: None,
        platforms,
        warnings: listing.warnings,
        pushed: None,
    };
    let Some(st) = staging else {
        return Ok(report);
    };
    fs_err::remove_dir_all(st.path().join(PLATFORMS_DIR))?;
    let mut index =
        json!({"schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": entries});
    if let Some(a) = listing.annotations {
        index["annotations"] = a;
    }
    report.index_digest = Some(
        Digest::of(&serde_json::to_vec(&index).map_err(std::io::Error::other)?)
            .as_str()
            .to_string(),
    );
    let (tags, ref_names) = if opts.output.tags.is_empty() && opts.output.ref_name.is_none() {
        listing.names
    } else {
        (
            opts.output.tags.clone(),
            opts.output.ref_name.iter().cloned().collect(),
        )
    };
    let native = native(&listing.images);
    if format == Format::DockerArchive {
        let what = match opts.output.dest {
            Dest::Daemon => "the archive loaded into the engine",
            _ => "the docker archive",
        };
        report.warnings.push(format!(
            "{what} names {} alone in manifest.json: an engine with the classic image store (Docker before 25) keeps that platform under the tags; one with the containerd image store takes the index of every platform",
            report.platforms[native].platform
        ));
    }
    let finished = st.finish_index(&images, native, &index, &tags, &ref_names)?;
    report.warnings.extend(finished.warnings);
    report.pushed = finished.pushed;
    Ok(report)
}

/// Each platform's image squashed into its own layout inside staging (a dry run writes
/// none), adopted into staging, with its report and its descriptor for the new index.
fn squash_each(
    opts: &SquashOptions,
    listing: &reader::Platforms,
    mut staging: Option<&mut Staging>,
) -> Result<(Vec<PlatformReport>, Vec<StagedImage>, Vec<Value>)> {
    let mut platforms = Vec::new();
    let mut images = Vec::new();
    let mut entries = Vec::new();
    for (i, entry) in listing.images.iter().enumerate() {
        let mut o = opts.clone();
        o.open.platform = entry.platform.clone();
        o.report_file = None;
        let ref_name = format!("p{i}");
        if let Some(st) = &staging {
            o.output = OutputOptions {
                dest: Dest::Path(st.path().join(PLATFORMS_DIR)),
                format: Some(Format::Oci),
                tags: Vec::new(),
                ref_name: Some(ref_name.clone()),
                ..opts.output.clone()
            };
        }
        let report = squash::squash(&o)?;
        if let Some(st) = &mut staging {
            let image = adopt(st, &ref_name)?;
            entries.push(descriptor(&image, &entry.descriptor));
            images.push(image);
        }
        platforms.push(PlatformReport {
            platform: entry
                .platform
                .as_ref()
                .map_or_else(|| "unspecified".into(), ToString::to_string),
            report,
        });
    }
    Ok((platforms, images, entries))
}

/// The image a docker archive's `manifest.json` names, as `docker save` of a
/// multi-platform image names one: the host's platform, else the first.
fn native(images: &[reader::PlatformEntry]) -> usize {
    let host = Platform::host();
    images
        .iter()
        .position(|e| e.platform.as_ref().is_some_and(|p| host.accepts(p)))
        .unwrap_or(0)
}

/// Where each platform's squash writes, inside the staging folder (and gone before the
/// result is delivered).
const PLATFORMS_DIR: &str = ".platforms";

/// Links the blobs of the image staged under `ref_name` in the platforms layout into the
/// staging folder itself, and returns it as a staged image.
fn adopt(st: &Staging, ref_name: &str) -> Result<StagedImage> {
    let layout = st.path().join(PLATFORMS_DIR);
    let read = |p: &Path| -> Result<Value> {
        serde_json::from_slice(&fs_err::read(p)?)
            .map_err(|e| Error::json(p.display().to_string(), e))
    };
    let index = read(&layout.join(media::INDEX_FILE))?;
    let desc = index["manifests"]
        .as_array()
        .and_then(|m| {
            m.iter()
                .find(|d| media::annotation(d, media::REF_NAME) == Some(ref_name))
        })
        .ok_or_else(|| Error::json("the platforms layout", format!("no entry {ref_name}")))?;
    let digest_of = |d: &Value| {
        d["digest"]
            .as_str()
            .and_then(Digest::parse)
            .ok_or_else(|| Error::json("the platforms layout", "a descriptor without a digest"))
    };
    let digest = digest_of(desc)?;
    let blobs = layout.join(media::BLOBS_DIR);
    let manifest_bytes = fs_err::read(blobs.join(digest.hex()))?;
    let manifest: Value = serde_json::from_slice(&manifest_bytes)
        .map_err(|e| Error::json("the platforms layout", e))?;
    let mut list = Vec::new();
    for d in manifest["layers"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(std::iter::once(&manifest["config"]))
    {
        list.push((digest_of(d)?, d["size"].as_u64().unwrap_or(0)));
    }
    let own = st.path().join(media::BLOBS_DIR);
    for d in list.iter().map(|(d, _)| d).chain(std::iter::once(&digest)) {
        let to = own.join(d.hex());
        if !to.exists() {
            fs_err::hard_link(blobs.join(d.hex()), &to)?;
        }
    }
    Ok(StagedImage {
        media_type: manifest["mediaType"]
            .as_str()
            .unwrap_or(media::OCI_MANIFEST)
            .to_string(),
        digest,
        manifest: manifest_bytes,
        blobs: list,
    })
}

/// The output index's entry for a squashed image: the input's platform and annotations
/// (but its names, which the output's `index.json` carries).
fn descriptor(image: &StagedImage, input: &Value) -> Value {
    let mut d = json!({
        "mediaType": image.media_type,
        "digest": image.digest.as_str(),
        "size": image.manifest.len(),
    });
    if let Some(p) = input.get("platform") {
        d["platform"] = p.clone();
    }
    if let Some(Value::Object(a)) = input.get("annotations") {
        let mut a = a.clone();
        a.remove(media::REF_NAME);
        a.remove(media::CONTAINERD_IMAGE_NAME);
        if !a.is_empty() {
            d["annotations"] = Value::Object(a);
        }
    }
    d
}
