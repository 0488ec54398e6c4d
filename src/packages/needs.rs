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
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
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
        let trails = Trails::new(fs, needs.iter().map(|n| n.at.as_slice()));
        let owners = owners(
            fs,
            installed,
            &needs
                .iter()
                .map(|n| n.who.as_slice())
                .filter(|w| !w.is_empty())
                .chain(trails.paths())
                .collect(),
        );
        let mut edges = FileEdges::default();
        // One group per carrier and needed path: libc.so.6, needed by every program,
        // costs one lookup per program.
        let mut seen: HashSet<(usize, &[u8])> = HashSet::new();
        for &n in &needs {
            let carriers: Vec<Option<usize>> = match owners.get(n.who.as_slice()) {
                None => vec![None],
                Some(who) => who.iter().map(|&w| Some(w)).collect(),
            };
            for p in trails.of(&n.at) {
                let Some(by) = owners.get(p.as_slice()) else {
                    continue;
                };
                for &w in &carriers {
                    if w.is_some_and(|w| by.contains(&w))
                        || !seen.insert((w.unwrap_or(usize::MAX), p.as_slice()))
                    {
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
    /// one keeps) stays: the first need of a kept file (or kept package's file)
    /// reaching it, else a dependency on it of another package of `stayed`, else of a
    /// kept package.
    pub fn reasons(
        &self,
        shells: &[Package],
        stayed: &[&str],
        removed: &dyn Fn(&str) -> bool,
    ) -> Vec<KeptFor> {
        // Each looked up once per package: the first need naming it, the first
        // dependency group naming it.
        let mut by_need: HashMap<&str, &FileNeed> = HashMap::new();
        for (carrier, groups) in &self.groups {
            if carrier != UNOWNED && removed(carrier) {
                continue;
            }
            for (group, n) in groups {
                for r in group {
                    by_need.entry(r.name.as_str()).or_insert(n);
                }
            }
        }
        let stays: HashSet<&str> = stayed.iter().copied().collect();
        let kept = shells.iter().filter(|q| !removed(&q.name));
        let (first, then): (Vec<&Package>, Vec<&Package>) =
            kept.partition(|q| stays.contains(q.name.as_str()));
        let mut by_package: HashMap<&str, (&Package, &Vec<Relation>)> = HashMap::new();
        for q in first.into_iter().chain(then) {
            for g in &q.depends {
                for r in g {
                    if r.name != q.name {
                        by_package.entry(r.name.as_str()).or_insert((q, g));
                    }
                }
            }
        }
        let mut out = Vec::new();
        for &p in stayed {
            if let Some(n) = by_need.get(p) {
                out.push(KeptFor {
                    package: p.to_string(),
                    needed_by: n.shown.clone(),
                    needs: n.needs.clone(),
                });
            } else if let Some((q, g)) = by_package.get(p) {
                let names: Vec<String> = g.iter().map(|r| r.to_string()).collect();
                out.push(KeptFor {
                    package: p.to_string(),
                    needed_by: q.name.clone(),
                    needs: format!("Depends: {}", names.join(" | ")),
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
    let needs: Vec<&FileNeed> = needs
        .iter()
        .filter(|n| !n.who.is_empty() && !is_script_of(&n.who))
        .collect();
    let trails = Trails::new(fs, needs.iter().map(|n| n.at.as_slice()));
    let wanted = needs
        .iter()
        .map(|n| n.who.as_slice())
        .chain(trails.paths())
        .collect();
    let owners = owners(fs, installed, &wanted);
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    let mut seen: HashSet<(usize, &[u8])> = HashSet::new();
    for n in needs
        .iter()
        .filter(|n| !owners.contains_key(n.who.as_slice()))
    {
        for q in trails
            .of(&n.at)
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

/// The [`trail`] of each needed path, computed once per distinct path.
struct Trails<'n> {
    index: HashMap<&'n [u8], usize>,
    trails: Vec<Vec<Vec<u8>>>,
}

impl<'n> Trails<'n> {
    fn new(fs: &dyn Fs, ats: impl Iterator<Item = &'n [u8]>) -> Self {
        let mut t = Trails {
            index: HashMap::new(),
            trails: Vec::new(),
        };
        for at in ats {
            if !t.index.contains_key(at) {
                t.index.insert(at, t.trails.len());
                t.trails.push(trail(fs, at));
            }
        }
        t
    }

    fn of(&self, at: &[u8]) -> &[Vec<u8>] {
        self.index.get(at).map_or(&[], |&i| &self.trails[i])
    }

    fn paths(&self) -> impl Iterator<Item = &[u8]> {
        self.trails.iter().flatten().map(Vec::as_slice)
    }
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

/// Most packages listing one path for it to count: a file is one package's (a few share
/// one through diversions or `Replaces`); more is a folder's listing or a crafted
/// database, and each owner would cost a dependency of every file needing the path.
pub const MAX_OWNERS: usize = 8;

/// The packages (indexes into `installed`) listing each path of `wanted`, as the image
/// holds the path (folders above it resolved, as [`super::locate`]); each folder
/// resolved once. A path more than [`MAX_OWNERS`] packages list is left out.
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
    out.retain(|_, v| v.len() <= MAX_OWNERS);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::memfs::MemFs;

    fn pkg(name: &str, files: &[&str]) -> Package {
        Package {
            name: name.into(),
            version: "1".into(),
            state: "installed".into(),
            files: files.iter().map(|f| f.as_bytes().to_vec()).collect(),
            ..Package::default()
        }
    }

    fn need(who: &str, name: &str, at: &str) -> FileNeed {
        FileNeed {
            who: who.as_bytes().to_vec(),
            shown: format!("/{who}"),
            needs: name.into(),
            at: at.as_bytes().to_vec(),
        }
    }

    #[test]
    fn a_file_no_package_owns_adds_a_group_to_the_stand_in_and_a_packaged_file_to_its_package() {
        let mut fs = MemFs::default();
        fs.file("usr/lib/libpq.so.5.15", b"\x7fELF", 0o644)
            .link("usr/lib/libpq.so.5", "libpq.so.5.15")
            .link("lib", "usr/lib")
            .file("usr/bin/psql", b"\x7fELF", 0o755)
            .file("opt/venv/_psycopg.so", b"\x7fELF", 0o644)
            .file("var/lib/dpkg/info/x.postinst", b"#!/usr/bin/psql\n", 0o755);
        let (pq, client) = (
            pkg(
                "libpq5",
                &["/usr/lib/libpq.so.5.15", "/usr/lib/libpq.so.5", "/usr/lib"],
            ),
            pkg("client", &["/usr/bin/psql", "/usr/lib"]),
        );
        let installed = [&pq, &client];
        let needs = [
            need("opt/venv/_psycopg.so", "libpq.so.5", "lib/libpq.so.5"),
            need("usr/bin/psql", "libpq.so.5", "usr/lib/libpq.so.5"),
            need("usr/lib/libpq.so.5.15", "self", "usr/lib/libpq.so.5.15"),
            need(
                "var/lib/dpkg/info/x.postinst",
                "/usr/bin/psql",
                "usr/bin/psql",
            ),
        ];
        let e = FileEdges::new(&fs, &installed, &needs);
        let names = |carrier: &str| -> Vec<String> {
            e.groups
                .get(carrier)
                .into_iter()
                .flatten()
                .map(|(g, _)| g[0].name.clone())
                .collect()
        };
        // The symlinked folder on the way (lib) counts for nothing; the link and the
        // real file each give a group; a package's need of its own file none; the
        // maintainer script none.
        assert_eq!(names(UNOWNED), ["libpq5", "libpq5"]);
        assert_eq!(names("client"), ["libpq5", "libpq5"]);
        assert_eq!(names("libpq5"), Vec::<String>::new());
        let shells = e.shells(&installed);
        assert_eq!(shells.len(), 3);
        assert!(shells[2].protected && shells[2].name == UNOWNED);
        assert_eq!(e.need_of(&shells[1], 0).unwrap().needs, "libpq.so.5");
        let why = e.reasons(&shells, &["libpq5"], &|_| false);
        assert_eq!(
            why[0].to_string(),
            "libpq5 (needed by /opt/venv/_psycopg.so: libpq.so.5)"
        );
        let by_files = needed_by_files(&fs, &installed, &needs);
        assert_eq!(by_files["libpq5"], ["/opt/venv/_psycopg.so (libpq.so.5)"]);
        assert!(
            !by_files.contains_key("client"),
            "the maintainer script counts for nothing"
        );
    }

    /// A crafted database: 1000 packages list the one library 20000 files need. A path
    /// listed by more than MAX_OWNERS packages counts for nothing (each owner would be a
    /// dependency of every file needing it), and the needs of one path cost one lookup.
    #[test]
    fn a_path_many_packages_list_adds_no_group() {
        let mut fs = MemFs::default();
        fs.file("usr/lib/libc.so.6", b"\x7fELF", 0o755);
        let packages: Vec<Package> = (0..1000)
            .map(|i| pkg(&format!("p{i}"), &["/usr/lib/libc.so.6"]))
            .collect();
        let installed: Vec<&Package> = packages.iter().collect();
        let needs: Vec<FileNeed> = (0..20000)
            .map(|i| need(&format!("opt/f{i}"), "libc.so.6", "usr/lib/libc.so.6"))
            .collect();
        let e = FileEdges::new(&fs, &installed, &needs);
        assert!(e.is_empty());
        let few: Vec<&Package> = installed[..MAX_OWNERS].to_vec();
        let e = FileEdges::new(&fs, &few, &needs);
        assert_eq!(e.groups[UNOWNED].len(), 1, "one group per needed path");
        assert_eq!(e.groups[UNOWNED][0].0.len(), MAX_OWNERS);
    }
}
