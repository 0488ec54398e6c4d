//! `ocislim check`: reads an image, merges its layers, and reports every reference the
//! merged filesystem does not satisfy (see [`crate::deps`]).

use crate::deps::{self, Analysis};
use crate::error::Result;
use crate::image::reader::{OpenOptions, SourceSpec};
use crate::progress::Progress;
use crate::squash::Merged;
use std::fmt::Write as _;

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

/// The human report: one line per broken reference, then a summary.
pub fn text(r: &CheckReport) -> String {
    let mut o = String::new();
    for w in &r.warnings {
        let _ = writeln!(o, "warning: {w}");
    }
    for l in &r.analysis.loads {
        let _ = writeln!(o, "{}:", l.path);
        for (name, found) in &l.libs {
            let _ = writeln!(o, "\t{name} => {}", found.as_deref().unwrap_or("not found"));
        }
    }
    for b in &r.analysis.broken {
        let _ = writeln!(o, "{} needs {}: {}", b.who, b.needs, b.why);
    }
    let _ = writeln!(
        o,
        "{} ELF files and {} scripts checked, {} broken references",
        r.analysis.elf_files,
        r.analysis.scripts,
        r.analysis.broken.len()
    );
    o
}
