//! Python's installed-package metadata kept truthful after a policy, as pip and
//! scanners read it (PyPA "Recording installed projects"):
//!
//! - a distribution that keeps files keeps its `NAME.dist-info`, its `RECORD` (CSV:
//!   path relative to the folder holding the dist-info, hash, size) without the lines
//!   of the files the policy deleted (`__pycache__/*.pyc` under `default`), every other
//!   line byte for byte, so `pip show -f` and `importlib.metadata` list only what is
//!   there;
//! - a distribution the policy left no file of outside its dist-info goes as `pip
//!   uninstall` takes it: its dist-info with it, so no scanner lists it.
//!
//! `*.egg-info` (no RECORD; `installed-files.txt` is optional and pip does not rewrite
//! it) is left as it is, and so is a RECORD a dpkg package installed (Debian's
//! `python3-pip`): `dpkg --verify` checks its bytes, and dpkg's own file list already
//! says which of the package's files went ([`super::excluded`]); the report names it.

use super::Budget;
use crate::error::Result;
use crate::layer::fs::{Fs, join_rel};
use crate::layer::overlay::parent;
use crate::layer::path::escape;
use crate::layer::synth::{Content, Rewrite};
use serde::Serialize;
use std::collections::HashSet;

/// The largest `RECORD` read (numpy's is ~100 KiB).
pub const MAX_RECORD: u64 = 16 << 20;

/// What was done to the Python metadata.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize)]
pub struct PythonReport {
    /// Distributions whose `RECORD` lost lines (files the policy deleted).
    pub records_rewritten: Vec<String>,
    /// Distributions the policy emptied, their dist-info deleted with them.
    pub removed: Vec<String>,
    /// Distributions a dpkg package installed whose files the policy deleted: their
    /// RECORD is left to dpkg (`dpkg --verify` checks its bytes; dpkg's file list says
    /// what went).
    pub left_to_dpkg: Vec<String>,
    /// RECORDs that could not be read, left as they were.
    pub warnings: Vec<String>,
}

/// The rewrites and deletions that keep Python's metadata truthful.
#[derive(Debug, Default)]
pub struct PythonPlan {
    /// The RECORDs rewritten.
    pub rewrites: Vec<Rewrite>,
    /// The dist-info folders of emptied distributions.
    pub delete: Vec<Vec<u8>>,
    /// What was done.
    pub report: PythonReport,
}

/// Plans the RECORD rewrites for the image `fs` whose paths `deleted` go (a folder
/// with its subtree); `None` when nothing changes.
pub fn plan(fs: &dyn Fs, deleted: &[(Vec<u8>, usize)]) -> Result<Option<PythonPlan>> {
    if deleted.is_empty() {
        return Ok(None);
    }
    let gone: HashSet<&[u8]> = deleted.iter().map(|(p, _)| p.as_slice()).collect();
    let is_gone = |p: &[u8]| super::gone_under(&gone, p);
    let budget = Budget::new();
    let mut plan = PythonPlan::default();
    // Files dpkg packages list, read once, when a RECORD is to change.
    let mut dpkg_owned: Option<HashSet<Vec<u8>>> = None;
    for record in fs.files() {
        let Some(dist) = record.strip_suffix(b"/RECORD") else {
            continue;
        };
        if !dist.ends_with(b".dist-info") || is_gone(&record) {
            continue;
        }
        let show = format!("/{}", escape(&record));
        let bigger = "a RECORD may hold; left as it is";
        let text = match super::read_capped(fs, (&record, &show), MAX_RECORD, &budget, bigger) {
            Ok(t) => t,
            Err(w) => {
                plan.report.warnings.push(w);
                continue;
            }
        };
        let site = parent(dist);
        let (mut kept, mut dropped, mut outside_left, mut outside) = (Vec::new(), 0, 0, 0);
        for line in text.split_inclusive(|&b| b == b'\n') {
            let Some(path) = first_field(line) else {
                kept.push(line);
                continue;
            };
            let at = join_rel(site, &path);
            let own = at.starts_with(dist) && at.get(dist.len()) == Some(&b'/');
            if is_gone(&at) {
                dropped += 1;
                outside += usize::from(!own);
                continue;
            }
            if !own {
                outside += 1;
                outside_left += 1;
            }
            kept.push(line);
        }
        if dropped == 0 {
            continue;
        }
        let name = String::from_utf8_lossy(&dist[parent(dist).len()..])
            .trim_start_matches('/')
            .to_string();
        let owned = dpkg_owned.get_or_insert_with(|| dpkg_files(fs));
        if owned.contains(&record) {
            plan.report.left_to_dpkg.push(name);
            continue;
        }
        if outside > 0 && outside_left == 0 {
            plan.delete.push(dist.to_vec());
            plan.report.removed.push(name);
        } else {
            plan.rewrites.push(Rewrite {
                path: record.clone(),
                content: Content::File(kept.concat()),
                like: record.clone(),
            });
            plan.report.records_rewritten.push(name);
        }
    }
    let changed = !plan.rewrites.is_empty() || !plan.delete.is_empty();
    Ok((changed || !plan.report.warnings.is_empty()).then_some(plan))
}

/// Every file the dpkg packages of `fs` list, where the image holds it (a database that
/// cannot be read lists none: then every RECORD is rewritten).
fn dpkg_files(fs: &dyn Fs) -> HashSet<Vec<u8>> {
    let Ok(Some(db)) = super::read(fs) else {
        return HashSet::new();
    };
    db.packages
        .iter()
        .flat_map(|p| &p.files)
        .filter(|f| f.ends_with(b"/RECORD"))
        .filter_map(|f| super::locate(fs, f))
        .collect()
}

/// The first field of a CSV line (RFC 4180: a quoted field may hold `,` and `""`);
/// `None` for a blank line.
fn first_field(line: &[u8]) -> Option<Vec<u8>> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() {
        return None;
    }
    if let Some(rest) = line.strip_prefix(b"\"") {
        let mut out = Vec::new();
        let mut i = 0;
        while i < rest.len() {
            match (rest[i], rest.get(i + 1)) {
                (b'"', Some(b'"')) => {
                    out.push(b'"');
                    i += 2;
                }
                (b'"', _) => break,
                (c, _) => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        return Some(out);
    }
    Some(line.split(|&b| b == b',').next().unwrap_or(line).to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::memfs::MemFs;

    const RECORD: &[u8] = b"req/__init__.py,sha256=a,10\n\
                            req/__pycache__/__init__.cpython-311.pyc,,\n\
                            \"req/a,b.py\",sha256=b,3\n\
                            ../../bin/req,sha256=c,5\n\
                            req-1.0.dist-info/METADATA,sha256=d,4\n\
                            req-1.0.dist-info/RECORD,,\n";

    fn fs() -> MemFs {
        let mut fs = MemFs::default();
        fs.file("site/req/__init__.py", b"", 0o644)
            .file("site/req/__pycache__/__init__.cpython-311.pyc", b"", 0o644)
            .file("site/req/a,b.py", b"", 0o644)
            .file("bin/req", b"", 0o755)
            .file("site/req-1.0.dist-info/METADATA", b"Name: req\n", 0o644)
            .file("site/req-1.0.dist-info/RECORD", RECORD, 0o644);
        fs
    }

    #[test]
    fn a_kept_distribution_s_record_loses_the_lines_of_deleted_files() {
        let fs = fs();
        let deleted = vec![(b"site/req/__pycache__".to_vec(), 0)];
        let p = plan(&fs, &deleted).unwrap().unwrap();
        assert!(p.delete.is_empty());
        let Content::File(bytes) = &p.rewrites[0].content else {
            panic!()
        };
        let want: Vec<u8> = RECORD
            .split_inclusive(|&b| b == b'\n')
            .filter(|l| !l.starts_with(b"req/__pycache__"))
            .flatten()
            .copied()
            .collect();
        assert_eq!(bytes, &want);
        assert_eq!(p.report.records_rewritten, ["req-1.0.dist-info"]);
    }

    #[test]
    fn a_distribution_left_with_no_file_goes_with_its_dist_info() {
        let fs = fs();
        let deleted = vec![(b"bin/req".to_vec(), 0), (b"site/req".to_vec(), 0)];
        let p = plan(&fs, &deleted).unwrap().unwrap();
        assert_eq!(p.delete, [b"site/req-1.0.dist-info".to_vec()]);
        assert!(p.rewrites.is_empty());
    }

    #[test]
    fn nothing_deleted_under_it_leaves_the_record_alone() {
        let fs = fs();
        let deleted = vec![(b"usr/share/doc".to_vec(), 0)];
        assert!(plan(&fs, &deleted).unwrap().is_none());
    }

    #[test]
    fn csv_first_fields() {
        assert_eq!(first_field(b"a/b.py,sha256=x,1\n").unwrap(), b"a/b.py");
        assert_eq!(first_field(b"\"a,\"\"b.py\",,\r\n").unwrap(), b"a,\"b.py");
        assert!(first_field(b"\n").is_none());
    }
}
