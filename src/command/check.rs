//! `ocislim check`: reads an image, merges its layers, and reports every reference the
//! merged filesystem does not satisfy (see [`crate::deps`]).

use crate::deps::{self, Analysis, Broken};
use crate::error::{Error, Result};
use crate::image::reader::{OpenOptions, SourceSpec};
use crate::pipeline::merge::Merged;
use crate::progress::Progress;
use std::collections::BTreeSet;

/// What `check` found, with the image it read.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CheckReport {
    /// Warnings from reading the image.
    pub warnings: Vec<String>,
    /// The analysis; its `broken` lists what fails the check (neither ignored nor
    /// broken in the baseline).
    #[serde(flatten)]
    pub analysis: Analysis,
    /// Broken references of files an ignore glob names: reported, not failing.
    pub ignored: Vec<Broken>,
    /// Broken references the baseline image has too: reported, not failing.
    pub broken_in_baseline: Vec<Broken>,
}

/// What `check` is asked.
#[derive(Clone, Debug, Default)]
pub struct CheckOptions {
    /// Record every ELF file's load.
    pub list_loads: bool,
    /// Path globs (`usr/lib/python3*/cgi.py`, from `--ignore` and a policy's `[check]
    /// ignore`): a broken reference of a file they name does not fail the check.
    pub ignore: Vec<String>,
    /// An image whose broken references do not fail the check (the input of a slim:
    /// only what the slim broke counts, as the squash guard judges).
    pub baseline: Option<(SourceSpec, OpenOptions)>,
}

/// Checks the image `spec`.
pub fn check(
    spec: &SourceSpec,
    open: &OpenOptions,
    opts: &CheckOptions,
    jobs: usize,
    progress: &Progress,
) -> Result<CheckReport> {
    let ignore = ignore_set(&opts.ignore)?;
    let mut m = Merged::open(spec, open, jobs, progress)?;
    let mut analysis = deps::analyze(&m.fs(), &m.source.image.config_json, opts.list_loads);
    let mut warnings = std::mem::take(&mut m.warnings);
    drop(m);
    let baseline: BTreeSet<(String, String)> = match &opts.baseline {
        Some((spec, open)) => {
            let b = Merged::open(spec, open, jobs, progress)?;
            warnings.extend(b.warnings.iter().map(|w| format!("baseline: {w}")));
            let a = deps::analyze(&b.fs(), &b.source.image.config_json, false);
            a.broken.into_iter().map(|x| (x.who, x.needs)).collect()
        }
        None => BTreeSet::new(),
    };
    let (mut ignored, mut in_baseline) = (Vec::new(), Vec::new());
    analysis.broken.retain(|b| {
        let path = b.who.split(" (through ").next().unwrap_or(&b.who);
        if ignore.is_match(path.trim_start_matches('/')) {
            ignored.push(b.clone());
            false
        } else if baseline.contains(&(b.who.clone(), b.needs.clone())) {
            in_baseline.push(b.clone());
            false
        } else {
            true
        }
    });
    Ok(CheckReport {
        warnings,
        analysis,
        ignored,
        broken_in_baseline: in_baseline,
    })
}

/// The ignore globs, compiled as policy globs are; a bad one is a usage error naming it.
fn ignore_set(globs: &[String]) -> Result<globset::GlobSet> {
    let mut b = globset::GlobSetBuilder::new();
    for g in globs {
        let glob = globset::GlobBuilder::new(g.trim_start_matches('/'))
            .literal_separator(true)
            .build()
            .map_err(|e| Error::Usage(format!("--ignore {g:?}: {e}")))?;
        b.add(glob);
    }
    b.build()
        .map_err(|e| Error::Usage(format!("--ignore: {e}")))
}
