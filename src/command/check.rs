//! `ocislim check`: reads an image, merges its layers, and reports every reference the
//! merged filesystem does not satisfy (see [`crate::deps`]).

use crate::deps::{self, Analysis};
use crate::error::Result;
use crate::image::reader::{OpenOptions, SourceSpec};
use crate::pipeline::merge::Merged;
use crate::progress::Progress;

/// What `check` found, with the image it read.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CheckReport {
    /// Warnings from reading the image.
    pub warnings: Vec<String>,
    /// The analysis.
    #[serde(flatten)]
    pub analysis: Analysis,
}

/// Checks the image `spec`; with `list_loads`, every ELF file's load is recorded.
pub fn check(
    spec: &SourceSpec,
    open: &OpenOptions,
    list_loads: bool,
    jobs: usize,
    progress: &Progress,
) -> Result<CheckReport> {
    let m = Merged::open(spec, open, jobs, progress)?;
    let analysis = deps::analyze(&m.fs(), &m.source.image.config_json, list_loads);
    Ok(CheckReport {
        warnings: m.warnings,
        analysis,
    })
}
