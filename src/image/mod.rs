//! Images: opening a source (OCI layout, OCI archive, `docker save` archive, stdin),
//! choosing one image in it, and writing images to the same kinds of sinks.
//!
//! An opened image is its raw config bytes (kept byte-for-byte unless something in it
//! changes), its config as a JSON value (so fields oci-spec does not model survive),
//! and its layers in manifest order, each with what is known to verify it by.

pub mod config;
pub(crate) mod index;
pub mod layout;
pub mod media;
pub mod platform;
pub mod reader;
pub mod remote;
pub mod store;
pub mod writer;

use crate::digest::Digest;
use serde_json::Value;

/// The container formats ocislim reads and writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// An OCI image layout directory.
    Oci,
    /// A tar holding an OCI image layout.
    OciArchive,
    /// A `docker save` / `docker load` archive.
    DockerArchive,
}

impl Format {
    /// The name used on the command line and in skopeo's transports.
    pub fn name(self) -> &'static str {
        match self {
            Format::Oci => "oci",
            Format::OciArchive => "oci-archive",
            Format::DockerArchive => "docker-archive",
        }
    }
}

/// One layer of an opened image, as the manifest describes it.
#[derive(Clone, Debug)]
pub struct LayerRef {
    /// Position in the manifest, from 1.
    pub position: usize,
    /// The file inside the source that holds the blob.
    pub location: String,
    /// The blob's digest, when the source names it (not in classic `docker save`).
    pub digest: Option<Digest>,
    /// The blob's size, when a descriptor gives it.
    pub size: Option<u64>,
    /// The descriptor's media type, when there is a descriptor.
    pub media_type: Option<String>,
    /// The config's `rootfs.diff_ids` entry for this layer.
    pub diff_id: Digest,
    /// The descriptor's annotations, carried to the output.
    pub annotations: Option<Value>,
}

impl LayerRef {
    /// How errors and reports name this layer.
    pub fn name(&self) -> String {
        match &self.digest {
            Some(d) => format!("layer {} ({d})", self.position),
            None => format!("layer {} ({})", self.position, self.location),
        }
    }
}

/// An image chosen from a source, with everything needed to read its layers.
#[derive(Clone, Debug)]
pub struct Image {
    /// The source's format.
    pub format: Format,
    /// A few words on the source's shape (`docker save, classic`, ...).
    pub shape: &'static str,
    /// The config blob as stored.
    pub config: Vec<u8>,
    /// The config parsed.
    pub config_json: Value,
    /// The config descriptor's media type (OCI's when the source has none).
    pub config_media_type: String,
    /// Whether the manifest uses Docker's media types rather than OCI's.
    pub docker_media_types: bool,
    /// The manifest's annotations, carried to the output.
    pub manifest_annotations: Option<Value>,
    /// The layers, bottom first.
    pub layers: Vec<LayerRef>,
    /// Names the source gives the image (`app:1`), for the output.
    pub tags: Vec<String>,
    /// The layout entry's `ref.name` when it has no Docker name beside it (skopeo's
    /// `oci:DIR:REF`): an OCI output carries it as it is, not as the tag of `REF:latest`.
    pub ref_names: Vec<String>,
    /// Things worth saying that did not stop the work.
    pub warnings: Vec<String>,
}

impl Image {
    /// The config's digest.
    pub fn config_digest(&self) -> Digest {
        Digest::of(&self.config)
    }

    /// `os/architecture[/variant]` from the config.
    pub fn platform(&self) -> String {
        platform::Platform::of_config(&self.config_json).to_string()
    }
}

impl LayerRef {
    /// Checks what streaming the blob found against what the manifest and config
    /// promise: blob digest (when known) and the diff_id. The size was checked before
    /// reading, by `Source::layer_blob`.
    pub fn verify(&self, scan: &crate::layer::reader::LayerScan) -> crate::Result<()> {
        use crate::Error;
        if let Some(d) = &self.digest
            && *d != scan.blob_digest
        {
            return Err(Error::DigestMismatch {
                blob: self.name(),
                expected: d.to_string(),
                found: scan.blob_digest.to_string(),
            });
        }
        if self.diff_id != scan.diff_id {
            return Err(Error::DiffIdMismatch {
                layer: self.position,
                blob: self.location.clone(),
                expected: self.diff_id.to_string(),
                found: scan.diff_id.to_string(),
            });
        }
        Ok(())
    }
}
