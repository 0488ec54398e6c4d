//! `ocislim packages`: reads an image, merges its layers, and lists what its package
//! database records (see [`super::list`]).

use crate::deps::loader::ElfCache;
use crate::error::{Error, Result};
use crate::image::reader::{OpenOptions, SourceSpec};
use crate::layer::fs::Fs;
use crate::packages::needs::FileNeed;
use crate::packages::{Database, Listing, Package, list, read};
use crate::pipeline::merge::Merged;
use crate::progress::Progress;
use std::collections::HashSet;

/// Lists the packages of the image `spec`; an image with no database is an error.
pub fn packages(
    spec: &SourceSpec,
    open: &OpenOptions,
    jobs: usize,
    progress: &Progress,
) -> Result<Listing> {
    let m = Merged::open(spec, open, jobs, progress)?;
    let fs = m.fs();
    let db = read(&fs)
        .map_err(|e| Error::corrupt("package database", e))?
        .ok_or_else(|| {
            Error::Usage(format!(
                "{}: no package database (neither /var/lib/dpkg/status nor /lib/apk/db/installed)",
                spec.display()
            ))
        })?;
    let mut l = list(&fs, &db).map_err(|e| Error::corrupt("package database", e))?;
    files_needing(&fs, &m.source.image.config_json, &db, &mut l);
    l.warnings.splice(0..0, m.warnings);
    Ok(l)
}

/// The files no package owns that need each package, by the dependency analysis of
/// every file (what package removal keeps them for); a package they need is no leaf.
fn files_needing(fs: &dyn Fs, config: &serde_json::Value, db: &Database, l: &mut Listing) {
    let a = crate::deps::guard::before(fs, config, &[], &ElfCache::default());
    let needs: Vec<FileNeed> = a.needs.into_iter().map(FileNeed::from).collect();
    let installed: Vec<&Package> = db
        .packages
        .iter()
        .filter(|p| p.state == "installed")
        .collect();
    let mut by = crate::packages::needs::needed_by_files(fs, &installed, &needs);
    for p in &mut l.packages {
        p.needed_by_files = by.remove(&p.name).unwrap_or_default();
    }
    let needed: HashSet<&str> = l
        .packages
        .iter()
        .filter(|p| !p.needed_by_files.is_empty())
        .map(|p| p.name.as_str())
        .collect();
    l.leaves.retain(|n| !needed.contains(n.as_str()));
}
