//! Keeping the package database truthful after any policy, as scanners (syft, trivy)
//! read it: a slimmed image never hides what it still ships, nor lists what it no
//! longer ships.
//!
//! - A package the policy left with no file outside its documentation (it lost files,
//!   and none of its files outside `/usr/share/{doc,man,info,lintian,bug}` is left)
//!   goes as `dpkg --purge` would take it: its status stanza, info files, trigger
//!   interests and `extended_states` stanza, and the files only it lists (its licence
//!   with them), unless a package that stays depends on it (a metapackage, a doc-only
//!   dependency): then it stays listed, so apt's view stays consistent.
//! - A package that stays keeps its licence, whatever the policy's globs say:
//!   `/usr/share/doc/PKG/copyright`, and when `/usr/share/doc/PKG` is a symlink to
//!   another package's folder (`libgcc-s1 -> gcc-12-base`), the link and the
//!   copyright file it leads to. (Its deleted configuration files are not brought
//!   back: `dpkg --verify` checks only what `.list` names, and a kept script there
//!   would need a shell closure mode let go.)
//!
//! The `.list` and `.md5sums` of what stays are rewritten by [`super::excluded`]; the
//! same for apk's database is left to [`super::apk`] (records of emptied packages go).

use super::remove::Removal;
use super::{Budget, Database, Index, Manager, Package, locate};
use crate::error::{Error, Result};
use crate::layer::fs::{Fs, Stat, join_rel, resolve};
use crate::layer::overlay::parent;
use crate::layer::synth::Rewrite;
use serde::Serialize;
use std::collections::{BTreeSet, HashSet};

/// The rule the paths of emptied packages go by.
pub const RULE: &str = "emptied-packages";

/// Folders whose files do not count as what a package ships.
const DOCS: &[&[u8]] = &[
    b"usr/share/doc/",
    b"usr/share/man/",
    b"usr/share/info/",
    b"usr/share/lintian/",
    b"usr/share/bug/",
    b"usr/share/doc-base/",
];

/// Where Debian keeps each package's licence: `DOC/PKG/copyright`.
const DOC: &[u8] = b"usr/share/doc";

/// What settling the database did.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize)]
pub struct SettleReport {
    /// Packages left with no file outside docs, purged from the database.
    pub purged: Vec<String>,
    /// Packages left with no file outside docs that stay listed, because a package
    /// that stays depends on them.
    pub listed_for_dependents: Vec<String>,
    /// Licence files (and links to them) kept for packages that stay.
    pub licences_kept: usize,
}

/// A settled database.
#[derive(Debug, Default)]
pub struct Settled {
    /// Deleted paths that stay after all: licences of packages that stay, and the
    /// folders above them.
    pub restore: HashSet<Vec<u8>>,
    /// Paths the purge deletes beyond what the policy deleted.
    pub delete: BTreeSet<Vec<u8>>,
    /// The database files rewritten for every package gone (the removed and the
    /// purged ones together), sorted by path; they replace the removal's own.
    pub rewrites: Vec<Rewrite>,
    /// Every package gone from the database: removed or purged.
    pub gone: HashSet<String>,
    /// The report.
    pub report: SettleReport,
}

fn is_doc(p: &[u8]) -> bool {
    DOCS.iter().any(|d| p.starts_with(d))
}

/// Settles the database of the image `fs` whose located paths `deleted` go by the
/// policy, `removed` the packages its removal takes; `None` when the image has no
/// database, the policy deletes the database itself, or nothing was deleted.
pub fn plan(
    fs: &dyn Fs,
    deleted: &HashSet<&[u8]>,
    removed: &HashSet<String>,
) -> Result<Option<Settled>> {
    let budget = Budget::new();
    let corrupt = |e: String| Error::corrupt("package database", e);
    let Some(db) = super::read_within(fs, &budget).map_err(corrupt)? else {
        return Ok(None);
    };
    let status = match db.manager {
        Manager::Dpkg => super::dpkg::STATUS,
        Manager::Apk => super::apk::INSTALLED,
    };
    let gone_db = resolve(fs, status).is_none_or(|at| deleted.contains(at.as_slice()));
    if deleted.is_empty() || gone_db {
        return Ok(None);
    }
    let installed: Vec<&Package> = db
        .packages
        .iter()
        .filter(|p| p.state == "installed" && !removed.contains(&p.name))
        .collect();
    let stays = staying(fs, &installed, deleted)?;
    let mut s = Settled::default();
    let purged: BTreeSet<&str> = installed
        .iter()
        .map(|p| p.name.as_str())
        .filter(|n| !stays.0.contains(n))
        .collect();
    s.report.purged = purged.iter().map(|n| n.to_string()).collect();
    s.report.listed_for_dependents = stays.1;
    s.gone = removed
        .iter()
        .cloned()
        .chain(s.report.purged.clone())
        .collect();
    if !purged.is_empty() || !removed.is_empty() {
        // The purged packages' files and records; the removal's own files are deleted
        // by its rule, but the database is written once for every package gone.
        let mut p = Removal::default();
        super::remove::files(fs, &db, &purged, &mut p);
        super::remove::records(fs, &db, &purged, &mut p, &budget)?;
        s.delete = p
            .delete
            .into_iter()
            .filter(|q| !deleted.contains(q.as_slice()))
            .collect();
        s.rewrites = if removed.is_empty() {
            p.rewrites
        } else {
            let all: BTreeSet<&str> = s.gone.iter().map(String::as_str).collect();
            let mut r = Removal::default();
            super::remove::records(fs, &db, &all, &mut r, &budget)?;
            r.rewrites
        };
        s.rewrites.sort_by(|a, b| a.path.cmp(&b.path));
    }
    licences(fs, &db, &installed, &stays.0, deleted, &mut s);
    Ok(Some(s))
}

/// The packages that stay: those with a file left outside docs or that lost nothing,
/// and what they depend on (one alternative of each group, a staying one first);
/// second, the packages kept only for that dependency.
fn staying<'a>(
    fs: &dyn Fs,
    installed: &[&'a Package],
    deleted: &HashSet<&[u8]>,
) -> Result<(HashSet<&'a str>, Vec<String>)> {
    let mut stays: HashSet<&str> = HashSet::new();
    let mut todo: Vec<&Package> = Vec::new();
    for p in installed {
        let (mut lost, mut left) = (false, false);
        for f in &p.files {
            let Some(at) = locate(fs, f) else { continue };
            // A folder to dpkg, even where the image has a symlink to one there
            // (`/lib -> usr/lib` on a merged /usr).
            let folder = match fs.stat(&at) {
                Some(Stat::Dir) => true,
                Some(Stat::Symlink(_)) => {
                    resolve(fs, &at).is_some_and(|r| fs.stat(&r) == Some(Stat::Dir))
                }
                _ => false,
            };
            if folder {
                continue;
            }
            if deleted.contains(at.as_slice()) {
                lost = true;
            } else if !is_doc(&at) {
                left = true;
                break;
            }
        }
        if left || !lost {
            stays.insert(&p.name);
            todo.push(p);
        }
    }
    let index =
        Index::new(installed.iter().copied()).map_err(|e| Error::corrupt("package database", e))?;
    let mut for_dependents = Vec::new();
    while let Some(q) = todo.pop() {
        for group in &q.depends {
            let satisfiers: Vec<&Package> =
                group.iter().flat_map(|r| index.satisfiers(r)).collect();
            if satisfiers.iter().any(|p| stays.contains(p.name.as_str())) {
                continue;
            }
            if let Some(&p) = satisfiers.first() {
                stays.insert(&p.name);
                for_dependents.push(p.name.clone());
                todo.push(p);
            }
        }
    }
    for_dependents.sort();
    Ok((stays, for_dependents))
}

/// Brings back the licences of the packages that stay.
fn licences(
    fs: &dyn Fs,
    db: &Database,
    installed: &[&Package],
    stays: &HashSet<&str>,
    deleted: &HashSet<&[u8]>,
    s: &mut Settled,
) {
    // `p` and the folders above it leave both deletions; whether any was deleted.
    let restore = |p: &[u8], s: &mut Settled| -> bool {
        let mut back = false;
        let mut a = p;
        while !a.is_empty() {
            back |= s.delete.remove(a);
            if deleted.contains(a) {
                back |= s.restore.insert(a.to_vec());
            }
            a = parent(a);
        }
        back
    };
    if db.manager != Manager::Dpkg {
        return;
    }
    for p in installed.iter().filter(|p| stays.contains(p.name.as_str())) {
        let folder = join_rel(DOC, p.name.as_bytes());
        let copyright = match fs.stat(&folder) {
            Some(Stat::Symlink(_)) => {
                let link = restore(&folder, s);
                let target = resolve(fs, &folder).map(|t| join_rel(&t, b"copyright"));
                match target {
                    Some(t) if matches!(fs.stat(&t), Some(Stat::File { .. })) => {
                        s.report.licences_kept += usize::from(restore(&t, s) || link);
                    }
                    _ => s.report.licences_kept += usize::from(link),
                }
                continue;
            }
            Some(Stat::Dir) => join_rel(&folder, b"copyright"),
            _ => continue,
        };
        if matches!(fs.stat(&copyright), Some(Stat::File { .. })) {
            s.report.licences_kept += usize::from(restore(&copyright, s));
        }
    }
}
