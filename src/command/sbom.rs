//! `ocislim sbom`: reads an image, merges its layers, and writes the SBOM of what it
//! ships ([`crate::sbom`]), to stdout or into a file replaced when complete.

use crate::error::{Error, Result};
use crate::image::reader::{OpenOptions, SourceSpec};
use crate::image::writer::SideFile;
use crate::pipeline::merge::Merged;
use crate::progress::Progress;
use crate::sbom::{SbomFormat, Subject};
use serde::Serialize;
use std::path::PathBuf;

/// What `sbom` is asked to do.
pub struct SbomOptions {
    /// The image.
    pub source: SourceSpec,
    /// Platform choice.
    pub open: OpenOptions,
    /// The document's format.
    pub format: SbomFormat,
    /// Where to write it (stdout when `None`).
    pub output: Option<PathBuf>,
    /// Worker threads.
    pub jobs: usize,
    /// Progress bars.
    pub progress: Progress,
}

/// What `sbom` did.
#[derive(Serialize)]
pub struct SbomReport {
    /// The document, when it goes to stdout.
    #[serde(skip)]
    pub document: Option<Vec<u8>>,
    /// Where it was written.
    pub written_to: Option<String>,
    /// Packages listed, by ecosystem.
    pub packages: std::collections::BTreeMap<&'static str, usize>,
    /// Warnings of reading the image and its metadata.
    pub warnings: Vec<String>,
}

/// Writes the SBOM of the image `opts.source`.
pub fn sbom(opts: &SbomOptions) -> Result<SbomReport> {
    let file = opts
        .output
        .as_ref()
        .map(|p| {
            let others: Vec<&std::path::Path> =
                opts.source.path.iter().map(|p| p.as_path()).collect();
            SideFile::stage(p, "--output", &others)
        })
        .transpose()?;
    let m = Merged::open(&opts.source, &opts.open, opts.jobs, &opts.progress)?;
    let inv = crate::sbom::catalog(&m.fs()).map_err(|e| Error::corrupt("package database", e))?;
    let image = &m.source.image;
    let subject = Subject {
        name: opts.source.display(),
        digest: image.config_digest(),
        created: crate::sbom::created(&image.config_json),
    };
    let document = crate::sbom::render(&inv, opts.format, &subject);
    let mut warnings = m.warnings.clone();
    warnings.extend(inv.warnings.iter().cloned());
    let written_to = match file {
        Some(mut f) => {
            f.write(&document)?;
            f.commit()?;
            opts.output.as_ref().map(|p| p.display().to_string())
        }
        None => None,
    };
    Ok(SbomReport {
        document: written_to.is_none().then_some(document),
        written_to,
        packages: inv.counts(),
        warnings,
    })
}
