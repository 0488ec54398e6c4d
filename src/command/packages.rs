//! `ocislim packages`: reads an image, merges its layers, and lists what its package
//! database records (see [`super::list`]).

use crate::error::{Error, Result};
use crate::image::reader::{OpenOptions, SourceSpec};
use crate::packages::{Listing, list, read};
use crate::pipeline::merge::Merged;
use crate::progress::Progress;

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
    l.warnings.splice(0..0, m.warnings);
    Ok(l)
}
