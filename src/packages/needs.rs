//! What the image's own files need, as package dependencies: a removal that sees them.
//!
//! apt decides from the packages' `Depends` alone, so a library only a `-dev` package
//! depends on (`libpq5` under `libpq-dev`) is autoremoved while a file no package owns
//! (a venv's `_psycopg...so`) loads it. Here every satisfied reference the dependency
//! analysis found (a library of an ELF file's load, an interpreter, a `#!` line's
//! program, the entrypoint, what closure mode keeps) becomes a dependency group of the
//! package owning the file, or of one stand-in package for the files no package owns
//! (always kept): the group is the packages owning the path the reference reaches, and
//! each symlink on the way to it. apt's own rules (autoremove's reach, what
//! `remove-unless-needed` puts back, the refusal to break a kept package) then apply to
//! them unchanged, so a package stays exactly when a kept file, or a kept package,
//! needs it.

use super::Package;
use super::relation::{Op, Relation};
use crate::layer::fs::{Fs, Stat, resolve_trail};
use crate::layer::overlay::parent;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};

/// The stand-in package for the files no package owns.
pub const UNOWNED: &str = "(files no package owns)";

/// One reference a file of the image makes to a path the image holds.
#[derive(Clone, Debug)]
pub struct FileNeed {
    /// The file (normalised; empty: none, as for the config's entrypoint or what
    /// closure mode keeps).
    pub who: Vec<u8>,
    /// Who needs it, as a person reads it (`/opt/venv/.../x.so`, `the entrypoint`).
    pub shown: String,
    /// What it needs, as the file names it (`libpq.so.5`).
    pub needs: String,
    /// Where the image satisfies it (normalised; symlinks are followed here).
    pub at: Vec<u8>,
}

/// A package a removal would have taken that stays for what a kept file needs.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct KeptFor {
    /// The package.
    pub package: String,
    /// Who needs it: a file, `the entrypoint`, `closure mode`, or a package kept for
    /// files whose dependency it satisfies.
    pub needed_by: String,
    /// What: the name the file uses, or the dependency.
    pub needs: String,
}

impl std::fmt::Display for KeptFor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (needed by {}: {})",
            self.package, self.needed_by, self.needs
        )
    }
}

/// The dependency groups file needs add, per package name ([`UNOWNED`] for files no
/// package owns), each with the need that made it.
#[derive(Default)]
pub struct FileEdges {
    groups: BTreeMap<String, Vec<(Vec<Relation>, FileNeed)>>,
}

impl FileEdges {
    /// The groups `needs` add to `installed`.
    pub fn new(fs: &dyn Fs, installed: &[&Package], needs: &[FileNeed]) -> FileEdges {
        let needs: Vec<&FileNeed> = needs.iter().filter(|n| !is_script_of(&n.who)).collect();
        // The paths asked about: each need's file, and every path on its way.
        let trails: Vec<Vec<Vec<u8>>> = needs.iter().map(|n| trail(fs, &n.at)).collect();
        let wanted: HashSet<&[u8]> = needs
            .iter()
            .map(|n| n.who.as_slice())
            .filter(|w| !w.is_empty())
            .chain(trails.iter().flatten().map(Vec::as_slice))
            .collect();
        let owners = owners(fs, installed, &wanted);
        let mut edges = FileEdges::default();
        let mut seen: HashSet<(usize, Vec<usize>)> = HashSet::new();
        for (&n, trail) in needs.iter().zip(&trails) {
            let who: &[usize] = owners.get(n.who.as_slice()).map_or(&[], Vec::as_slice);
            for p in trail {
                let Some(by) = owners.get(p.as_slice()) else {
                    continue;
                };
                let carriers: Vec<Option<usize>> = if who.is_empty() {
                    vec![None]
                } else {
                    who.iter().map(|&w| Some(w)).collect()
                };
                for w in carriers {
                    if w.is_some_and(|w| by.contains(&w)) {
                        continue;
                    }
                    if !seen.insert((w.map_or(usize::MAX, |w| w), by.clone())) {
                        continue;
                    }
                    let name = w.map_or(UNOWNED, |w| installed[w].name.as_str());
                    let group = by
                        .iter()
                        .map(|&q| Relation {
                            name: installed[q].name.clone(),
                            version: Some((Op::Eq, installed[q].version.clone())),
                        })
                        .collect();
                    edges
                        .groups
                        .entry(name.to_string())
                        .or_default()
                        .push((group, n.clone()));
                }
            }
        }
        edges
    }

    /// Whether file needs add nothing.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// `installed` with the groups added (without their file lists), and the stand-in
    /// for files no package owns: protected, so never removed, and a root of
    /// autoremoval's reach.
    pub fn shells(&self, installed: &[&Package]) -> Vec<Package> {
        let mut out: Vec<Package> = installed
            .iter()
            .map(|p| {
                let mut depends = p.depends.clone();
                if let Some(g) = self.groups.get(&p.name) {
                    depends.extend(g.iter().map(|(group, _)| group.clone()));
                }
                Package {
                    manager: p.manager,
                    name: p.name.clone(),
                    version: p.version.clone(),
                    arch: p.arch.clone(),
                    state: p.state.clone(),
                    essential: p.essential,
                    protected: p.protected,
                    depends,
                    recommends: p.recommends.clone(),
                    provides: p.provides.clone(),
                    files: Vec::new(),
                    licence: String::new(),
                }
            })
            .collect();
        if let Some(g) = self.groups.get(UNOWNED) {
            out.push(Package {
                manager: installed.first().map(|p| p.manager).unwrap_or_default(),
                name: UNOWNED.into(),
                version: "0".into(),
                state: "installed".into(),
                protected: true,
                depends: g.iter().map(|(group, _)| group.clone()).collect(),
                ..Package::default()
            });
        }
        out
    }

    /// The file need behind dependency group `i` of `q` (a shell from
    /// [`FileEdges::shells`]: the added groups come last), when a file need added it.
    pub fn need_of(&self, q: &Package, i: usize) -> Option<&FileNeed> {
        let g = self.groups.get(&q.name)?;
        let own = q.depends.len().checked_sub(g.len())?;
        i.checked_sub(own).and_then(|k| g.get(k)).map(|(_, n)| n)
    }

    /// Why each of `stayed` (packages a removal without file needs takes, and this
    /// one keeps) stays: the first need of a kept file or package reaching it, else a
    /// dependency of another package of `stayed` (or of a kept package) on it.
    pub fn reasons(
        &self,
        shells: &[Package],
        stayed: &[&str],
        removed: &dyn Fn(&str) -> bool,
    ) -> Vec<KeptFor> {
        let mut out = Vec::new();
        for &p in stayed {
            let direct = self
                .groups
                .iter()
                .filter(|(carrier, _)| carrier.as_str() == UNOWNED || !removed(carrier))
                .flat_map(|(_, g)| g)
                .find(|(group, _)| group.iter().any(|r| r.name == p));
            if let Some((_, n)) = direct {
                out.push(KeptFor {
                    package: p.to_string(),
                    needed_by: n.shown.clone(),
                    needs: n.needs.clone(),
                });
                continue;
            }
            let by = shells
                .iter()
                .filter(|q| q.name != p && !removed(&q.name))
                .filter(|q| stayed.contains(&q.name.as_str()))
                .chain(shells.iter().filter(|q| q.name != p && !removed(&q.name)))
                .find_map(|q| {
                    q.depends
                        .iter()
                        .find(|g| g.iter().any(|r| r.name == p))
                        .map(|g| (q, g))
                });
            if let Some((q, g)) = by {
                out.push(KeptFor {
                    package: p.to_string(),
                    needed_by: q.name.clone(),
                    needs: format!(
                        "Depends: {}",
                        g.iter()
                            .map(|r| r.to_string())
                            .collect::<Vec<_>>()
                            .join(" | ")
                    ),
                });
            }
        }
        out
    }
}

/// For each package of `installed`, the files no package owns that need it (`FILE
/// (NAME)`, each file once, in the order of `needs`): what `ocislim packages` shows, and
/// what keeps a package a removal would take.
pub fn needed_by_files(
    fs: &dyn Fs,
    installed: &[&Package],
    needs: &[FileNeed],
) -> HashMap<String, Vec<String>> {
    let trails: Vec<Vec<Vec<u8>>> = needs.iter().map(|n| trail(fs, &n.at)).collect();
    let who: HashSet<&[u8]> = needs
        .iter()
        .map(|n| n.who.as_slice())
        .filter(|w| !w.is_empty())
        .collect();
    let wanted: HashSet<&[u8]> = who
        .iter()
        .copied()
        .chain(trails.iter().flatten().map(Vec::as_slice))
        .collect();
    let owners = owners(fs, installed, &wanted);
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    let mut seen: HashSet<(usize, &[u8])> = HashSet::new();
    for (n, trail) in needs.iter().zip(&trails) {
        if n.who.is_empty() || is_script_of(&n.who) || owners.contains_key(n.who.as_slice()) {
            continue;
        }
        for q in trail
            .iter()
            .filter_map(|p| owners.get(p.as_slice()))
            .flatten()
        {
            if seen.insert((*q, n.who.as_slice())) {
                out.entry(installed[*q].name.clone())
                    .or_default()
                    .push(format!("{} ({})", n.shown, n.needs));
            }
        }
    }
    out
}

/// Whether `who` is a maintainer script in dpkg's database: its package's, not a file
/// the image runs (it goes with its package).
fn is_script_of(who: &[u8]) -> bool {
    who.starts_with(b"var/lib/dpkg/info/")
}

/// Every file on the way to `at`: each symlink followed, then the real path; not the
/// symlinked folders on the way (a merged-/usr `/lib` that every library package
/// lists), nor a folder.
fn trail(fs: &dyn Fs, at: &[u8]) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    let real = resolve_trail(fs, at, &mut |l| out.push(l.to_vec()));
    out.extend(real);
    out.retain(|p| {
        !matches!(
            crate::layer::fs::resolve(fs, p).and_then(|r| fs.stat(&r)),
            Some(Stat::Dir) | None
        )
    });
    out
}

/// The packages (indexes into `installed`) listing each path of `wanted`, as the image
/// holds the path (folders above it resolved, as [`super::locate`]); each folder
/// resolved once.
fn owners(
    fs: &dyn Fs,
    installed: &[&Package],
    wanted: &HashSet<&[u8]>,
) -> HashMap<Vec<u8>, Vec<usize>> {
    let mut out: HashMap<Vec<u8>, Vec<usize>> = HashMap::new();
    let mut dirs: HashMap<&[u8], Option<Vec<u8>>> = HashMap::new();
    for (i, p) in installed.iter().enumerate() {
        for f in &p.files {
            let dir = parent(f);
            let located = dirs
                .entry(dir)
                .or_insert_with(|| crate::layer::fs::resolve(fs, dir));
            let Some(d) = located else { continue };
            let name = &f[dir.len()..];
            let at = crate::layer::fs::join_rel(d, name.strip_prefix(b"/").unwrap_or(name));
            if wanted.contains(at.as_slice()) {
                let v = out.entry(at).or_default();
                if v.last() != Some(&i) {
                    v.push(i);
                }
            }
        }
    }
    out
}
