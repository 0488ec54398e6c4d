//! Package databases, read from the merged filesystem (never by running the image's
//! own tools): dpkg ([`dpkg`]) and apk ([`apk`]). [`list`] gives each package with the
//! bytes its files really hold in the merged view (not the `Installed-Size` its
//! maintainer declared: a later layer may have deleted or replaced them), how many of
//! its listed paths are gone, and which installed packages depend on it.

pub mod apk;
pub mod dpkg;
pub mod excluded;
pub mod needs;
pub mod npm;
pub mod python;
pub mod relation;
pub mod remove;
pub mod settle;

use crate::layer::fs::{Fs, Stat, join_rel, resolve};
use crate::layer::overlay::parent;
use relation::{Op, Relation};
use serde::Serialize;
use std::collections::{HashMap, HashSet};

/// The largest database file read (a status file of every Debian package is ~60 MiB).
pub const MAX_DATABASE_FILE: u64 = 256 << 20;

/// Which package manager.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Manager {
    /// Debian's dpkg.
    #[default]
    Dpkg,
    /// Alpine's apk.
    Apk,
}

/// One package as its database records it.
#[derive(Clone, Debug, Default)]
pub struct Package {
    /// Its manager.
    pub manager: Manager,
    /// Its name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// Its architecture.
    pub arch: String,
    /// Its state: dpkg's third `Status` word (`installed`, `config-files`, ...).
    pub state: String,
    /// dpkg's `Essential: yes`.
    pub essential: bool,
    /// dpkg's `Protected: yes`.
    pub protected: bool,
    /// `Pre-Depends` and `Depends` (apk: `D:`): groups, each needing one alternative.
    pub depends: Vec<Vec<Relation>>,
    /// `Recommends` and `Suggests` (apt's autoremove keeps what a kept package
    /// recommends or suggests: `APT::AutoRemove::RecommendsImportant` and
    /// `SuggestsImportant` are both true by default).
    pub recommends: Vec<Vec<Relation>>,
    /// What it provides: names, with a version when it gives one (`Provides: foo (= 1)`).
    pub provides: Vec<Relation>,
    /// The paths it installed (normalised), folders included.
    pub files: Vec<Vec<u8>>,
    /// Its licence as its database records it (apk's `L:`; dpkg keeps it in the
    /// package's copyright file instead).
    pub licence: String,
}

/// An image's package database.
#[derive(Clone, Debug, Default)]
pub struct Database {
    /// The manager.
    pub manager: Manager,
    /// Every package recorded, in database order.
    pub packages: Vec<Package>,
    /// Problems that did not stop the reading.
    pub warnings: Vec<String>,
}

/// The most bytes of database files read for one image, in all: a Debian image with
/// every package installed holds ~100 MiB. Without it, one big file hard-linked under
/// many package names (each link a 512-byte tar header) would be read once per name.
pub const MAX_DATABASE_TOTAL: u64 = 1 << 30;

/// The most paths the packages of one image list, in all: a Debian image of 2000
/// packages lists ~300k. Each costs ~56 bytes beyond its own (its vector, the
/// allocator's rounding), so a 64 MiB `.list` of `/a` lines kept 1.27 GiB; at this
/// limit the paths cost at most ~220 MiB.
pub const MAX_DATABASE_PATHS: u64 = 4_000_000;

/// What is left of [`MAX_DATABASE_TOTAL`] for one image.
pub(crate) struct Budget(std::cell::Cell<u64>, std::cell::Cell<u64>);

impl Budget {
    pub(crate) fn new() -> Budget {
        Budget(
            std::cell::Cell::new(MAX_DATABASE_TOTAL),
            std::cell::Cell::new(MAX_DATABASE_PATHS),
        )
    }

    /// Counts `size` bytes of the file `show` against the budget, before they are read:
    /// refused over [`MAX_DATABASE_FILE`] or what is left.
    pub(crate) fn take(&self, size: u64, show: &str) -> Result<(), String> {
        if size > MAX_DATABASE_FILE {
            return Err(format!(
                "{show}: {size} bytes, more than the {MAX_DATABASE_FILE} a database file may hold"
            ));
        }
        let left = self.0.get();
        if size > left {
            return Err(format!(
                "{show}: the database files read hold more than {MAX_DATABASE_TOTAL} bytes in all"
            ));
        }
        self.0.set(left - size);
        Ok(())
    }

    /// Counts a path kept from the file `show` against [`MAX_DATABASE_PATHS`].
    pub(crate) fn keep(&self, show: &dyn Fn() -> String) -> Result<(), String> {
        let left = self.1.get();
        if left == 0 {
            return Err(format!(
                "{}: the package database lists more than {MAX_DATABASE_PATHS} paths in all",
                show()
            ));
        }
        self.1.set(left - 1);
        Ok(())
    }
}

/// The bytes of the regular file `p` (`show` names it), when it holds at most `max`,
/// counted against `budget`; a bigger one is refused with `bigger` saying what becomes
/// of it.
pub(crate) fn read_capped(
    fs: &dyn Fs,
    (p, show): (&[u8], &str),
    max: u64,
    budget: &Budget,
    bigger: &str,
) -> Result<Vec<u8>, String> {
    let Some(Stat::File { size, .. }) = fs.stat(p) else {
        return Err(format!("{show}: not a file"));
    };
    if size > max {
        return Err(format!(
            "{show}: {size} bytes, more than the {max} {bigger}"
        ));
    }
    budget.take(size, show)?;
    fs.open(p)
        .and_then(|f| f.head(size as usize).ok())
        .ok_or_else(|| format!("{show}: cannot be read"))
}

/// Whether `p`, or a folder above it, is in `deleted` (a deleted folder takes its
/// subtree).
pub(crate) fn gone_under(deleted: &HashSet<&[u8]>, p: &[u8]) -> bool {
    let mut q = p;
    loop {
        if deleted.contains(q) {
            return true;
        }
        if q.is_empty() {
            return false;
        }
        q = parent(q);
    }
}

/// apk's `installed` after deletions ([`apk::without_lost`]), `fs` being the image
/// after them (a folder no entry is left below is gone too): the rewrite of it already
/// planned (a removal, a purge) is filtered in place; else `original`, the file as the
/// image had it, is filtered and added when anything changed.
pub fn apk_without_lost(
    rewrites: &mut Vec<crate::layer::synth::Rewrite>,
    original: Option<(String, Vec<u8>)>,
    fs: &dyn Fs,
) {
    use crate::layer::synth::{Content, Rewrite};
    let Some((text, like)) = original else {
        return;
    };
    let gone = |p: &[u8]| locate(fs, p).is_none();
    if gone(&like) {
        return;
    }
    if let Some(r) = rewrites.iter_mut().find(|r| r.path == apk::INSTALLED) {
        if let Content::File(bytes) = &mut r.content
            && let Some(kept) = apk::without_lost(&String::from_utf8_lossy(bytes), &gone)
        {
            *bytes = kept.into_bytes();
        }
        return;
    }
    if let Some(kept) = apk::without_lost(&text, &gone) {
        rewrites.push(Rewrite {
            path: apk::INSTALLED.to_vec(),
            content: Content::File(kept.into_bytes()),
            like,
        });
    }
}

/// apk's `installed` as the image has it, and where it is; `None` on a dpkg image or
/// one without it.
pub fn apk_installed(fs: &dyn Fs) -> Option<(String, Vec<u8>)> {
    if resolve(fs, dpkg::STATUS).is_some() {
        return None;
    }
    let at = resolve(fs, apk::INSTALLED)?;
    let text = read_text(fs, apk::INSTALLED, &Budget::new()).ok()??;
    Some((text, at))
}

/// A database file's text; `None` when the image has none. Its size counts against
/// `budget`.
pub(crate) fn read_text(fs: &dyn Fs, p: &[u8], budget: &Budget) -> Result<Option<String>, String> {
    let Some(real) = resolve(fs, p) else {
        return Ok(None);
    };
    let Some(Stat::File { size, .. }) = fs.stat(&real) else {
        return Ok(None);
    };
    let show = format!("/{}", crate::layer::path::escape(p));
    budget.take(size, &show)?;
    let bytes = fs
        .open(&real)
        .and_then(|f| f.head(size as usize).ok())
        .ok_or_else(|| format!("{show}: cannot be read"))?;
    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
}

/// Reads the image's package database: dpkg's when it has a status file, else apk's;
/// `None` when it has neither.
pub fn read(fs: &dyn Fs) -> Result<Option<Database>, String> {
    read_within(fs, &Budget::new())
}

/// [`read`], its files counted against `budget`.
pub(crate) fn read_within(fs: &dyn Fs, budget: &Budget) -> Result<Option<Database>, String> {
    let mut warnings = Vec::new();
    let (manager, packages) = if resolve(fs, dpkg::STATUS).is_some() {
        (Manager::Dpkg, dpkg::read(fs, &mut warnings, budget)?)
    } else if resolve(fs, apk::INSTALLED).is_some() {
        (Manager::Apk, apk::read(fs, &mut warnings, budget)?)
    } else {
        return Ok(None);
    };
    Ok(Some(Database {
        manager,
        packages,
        warnings,
    }))
}

/// One package in the listing.
#[derive(Clone, Debug, Serialize)]
pub struct Listed {
    /// Its name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// Its architecture.
    pub arch: String,
    /// Its state (`installed` for the usual ones).
    pub state: String,
    /// Bytes of the regular files it lists, as the merged filesystem holds them (each
    /// file once, a listed path through a symlinked folder resolved).
    pub bytes: u64,
    /// Regular files it lists that the image holds.
    pub files: usize,
    /// Paths it lists that the image does not hold.
    pub missing: usize,
    /// dpkg's `Essential: yes`.
    pub essential: bool,
    /// Installed packages that need it: one of their `Pre-Depends`/`Depends` groups no
    /// other installed package satisfies (see [`needed_by`]).
    pub required_by: Vec<String>,
    /// Files no package owns that need it (`FILE (NAME)`: a venv's extension module
    /// loading its library), when the listing looked ([`needs::needed_by_files`]).
    pub needed_by_files: Vec<String>,
}

/// [`list`]'s result.
#[derive(Clone, Debug, Serialize)]
pub struct Listing {
    /// The manager.
    pub manager: Manager,
    /// Packages, largest first (then by name).
    pub packages: Vec<Listed>,
    /// Installed packages no installed package needs, largest first (removing one alone
    /// leaves every dependency satisfied; essential ones are listed too).
    pub leaves: Vec<String>,
    /// Bytes of all packages' files, each file once.
    pub owned_bytes: u64,
    /// Warnings from reading the database.
    pub warnings: Vec<String>,
}

/// Where a listed path is in the image: folders above it resolved (a package lists
/// `/bin/ls`, merged-usr images hold it at `usr/bin/ls`), the last component not.
pub fn locate(fs: &dyn Fs, p: &[u8]) -> Option<Vec<u8>> {
    let dir = resolve(fs, parent(p))?;
    let name = &p[parent(p).len()..];
    let name = name.strip_prefix(b"/").unwrap_or(name);
    let at = join_rel(&dir, name);
    fs.stat(&at).map(|_| at)
}

/// Whether `r` (a version constraint) accepts `version`, as dpkg compares versions; a
/// version either side cannot parse counts as accepted (the package stays needed).
fn version_ok(manager: Manager, version: &str, r: &Relation) -> bool {
    let Some((op, want)) = &r.version else {
        return true;
    };
    if manager == Manager::Apk {
        return true;
    }
    let Some(order) = compare_versions(version, want) else {
        return true;
    };
    use std::cmp::Ordering::*;
    match op {
        Op::Lt => order == Less,
        Op::Le => order != Greater,
        Op::Eq => order == Equal,
        Op::Ge => order != Less,
        Op::Gt => order == Greater,
    }
}

/// Most parsed versions remembered per thread.
const MAX_PARSED_VERSIONS: usize = 1 << 20;

thread_local! {
    /// Versions parsed so far: `debversion` parses with a regex, and 1744 packages
    /// naming 20 versions of a virtual package 256 others provide took 13.7 s to list,
    /// nearly all of it parsing the same strings again.
    static PARSED: std::cell::RefCell<HashMap<String, Option<debversion::Version>>> =
        std::cell::RefCell::new(HashMap::new());
}

/// How dpkg orders `a` and `b`; `None` when either does not parse.
fn compare_versions(a: &str, b: &str) -> Option<std::cmp::Ordering> {
    PARSED.with(|parsed| {
        let mut parsed = parsed.borrow_mut();
        // Cleared before either is added, so both are there when compared.
        if parsed.len() + 2 > MAX_PARSED_VERSIONS {
            parsed.clear();
        }
        for v in [a, b] {
            if !parsed.contains_key(v) {
                parsed.insert(v.to_string(), v.parse().ok());
            }
        }
        let (a, b) = (parsed[a].as_ref()?, parsed[b].as_ref()?);
        a.partial_cmp(b)
    })
}

/// Whether package `p` satisfies the alternative `r`: by its name and version, or by
/// what it provides (a versioned relation only through a versioned `Provides`).
pub fn satisfies(p: &Package, r: &Relation) -> bool {
    if p.name == r.name {
        return version_ok(p.manager, &p.version, r);
    }
    p.provides.iter().any(|v| {
        v.name == r.name
            && match (&r.version, &v.version) {
                (None, _) => true,
                (Some(_), Some((_, given))) => version_ok(p.manager, given, r),
                (Some(_), None) => false,
            }
    })
}

/// Most installed packages one name may have (by name or `Provides`): real images have
/// a few; more would make every relation naming it cost that many comparisons.
pub const MAX_PROVIDERS: usize = 256;

/// Most relations whose satisfiers are remembered: each costs its satisfiers' number of
/// pointers.
const MAX_REMEMBERED: usize = 1 << 20;

/// Installed packages by the names they answer to (their own and what they provide),
/// with the version each answers with; the satisfiers of each relation asked about are
/// remembered (2000 packages naming one virtual package of 256 providers compared
/// every provider's whole `Provides` for every alternative: 38 s for `packages`, 176 s
/// for a removal).
pub struct Index<'a> {
    by_name: HashMap<&'a str, Vec<(&'a Package, Answer<'a>)>>,
    memo: std::cell::RefCell<HashMap<&'a Relation, std::rc::Rc<[&'a Package]>>>,
}

/// How a package answers to a name: by its own (its version), or by a `Provides`
/// (with the version given there, if any).
#[derive(Clone, Copy)]
enum Answer<'a> {
    Own,
    Provided(Option<&'a str>),
}

impl<'a> Index<'a> {
    /// Indexes `packages`; more than [`MAX_PROVIDERS`] for one name is refused.
    pub fn new(packages: impl IntoIterator<Item = &'a Package>) -> Result<Index<'a>, String> {
        let mut by_name: HashMap<&str, Vec<(&Package, Answer)>> = HashMap::new();
        for p in packages {
            let mut names: Vec<(&str, Answer)> = vec![(p.name.as_str(), Answer::Own)];
            for v in &p.provides {
                if v.name != p.name {
                    let given = v.version.as_ref().map(|(_, g)| g.as_str());
                    names.push((v.name.as_str(), Answer::Provided(given)));
                }
            }
            // Stable: a name provided twice (two versions) answers with either.
            names.sort_by_key(|(n, _)| *n);
            for (n, answer) in names {
                let v = by_name.entry(n).or_default();
                let again = v.last().is_some_and(|(q, _)| std::ptr::eq(*q, p));
                if !again && v.len() >= MAX_PROVIDERS {
                    return Err(format!(
                        "more than {MAX_PROVIDERS} installed packages are or provide {n:?}"
                    ));
                }
                v.push((p, answer));
            }
        }
        Ok(Index {
            by_name,
            memo: Default::default(),
        })
    }

    /// The indexed packages satisfying `r` (as [`satisfies`] decides).
    pub fn satisfiers(&self, r: &'a Relation) -> impl Iterator<Item = &'a Package> + use<'a> {
        if let Some(hit) = self.memo.borrow().get(r) {
            return VecOrRc::Rc(hit.clone(), 0);
        }
        let found: Vec<&Package> = self
            .by_name
            .get(r.name.as_str())
            .into_iter()
            .flatten()
            .filter(|(p, answer)| match (answer, &r.version) {
                (Answer::Own, _) => version_ok(p.manager, &p.version, r),
                (Answer::Provided(_), None) => true,
                (Answer::Provided(Some(given)), Some(_)) => version_ok(p.manager, given, r),
                (Answer::Provided(None), Some(_)) => false,
            })
            .map(|(p, _)| *p)
            .collect();
        let mut found = found;
        found.dedup_by(|a, b| std::ptr::eq(*a, *b));
        let mut memo = self.memo.borrow_mut();
        if memo.len() < MAX_REMEMBERED {
            let rc: std::rc::Rc<[&Package]> = found.into();
            memo.insert(r, rc.clone());
            return VecOrRc::Rc(rc, 0);
        }
        VecOrRc::Vec(found.into_iter())
    }
}

/// The satisfiers of a relation: remembered, or not.
enum VecOrRc<'a> {
    Rc(std::rc::Rc<[&'a Package]>, usize),
    Vec(std::vec::IntoIter<&'a Package>),
}

impl<'a> Iterator for VecOrRc<'a> {
    type Item = &'a Package;
    fn next(&mut self) -> Option<&'a Package> {
        match self {
            VecOrRc::Rc(rc, i) => {
                let p = rc.get(*i).copied();
                *i += 1;
                p
            }
            VecOrRc::Vec(v) => v.next(),
        }
    }
}

/// For each installed package, the installed packages that need it: a package `q`
/// needs `p` when one of `q`'s `Pre-Depends`/`Depends` groups is satisfied by `p` and
/// by no other installed package, so removing `p` alone leaves `q` unsatisfied (what
/// `dpkg --remove` refuses).
pub fn needed_by(db: &Database) -> Result<HashMap<&str, Vec<&str>>, String> {
    let installed: Vec<&Package> = db
        .packages
        .iter()
        .filter(|p| p.state == "installed")
        .collect();
    needed_among(&installed)
}

/// [`needed_by`] among `installed`, the packages that count as installed.
pub fn needed_among<'a>(
    installed: &[&'a Package],
) -> Result<HashMap<&'a str, Vec<&'a str>>, String> {
    let index = Index::new(installed.iter().copied())?;
    let mut out: HashMap<&str, Vec<&str>> = HashMap::new();
    for q in installed {
        for group in &q.depends {
            // Only whether one package alone satisfies it matters: stop at a second.
            let mut only: Option<&str> = None;
            let mut more = false;
            'group: for r in group {
                for p in index.satisfiers(r) {
                    match only {
                        None => only = Some(&p.name),
                        Some(o) if o != p.name => {
                            more = true;
                            break 'group;
                        }
                        Some(_) => {}
                    }
                }
            }
            if let (Some(only), false) = (only, more)
                && only != q.name
            {
                out.entry(only).or_default().push(&q.name);
            }
        }
    }
    for v in out.values_mut() {
        v.sort_unstable();
        v.dedup();
    }
    Ok(out)
}

/// Lists the packages of `db` against the image `fs`.
pub fn list(fs: &dyn Fs, db: &Database) -> Result<Listing, String> {
    let needs = needed_by(db)?;
    let mut all_owned: HashSet<Vec<u8>> = HashSet::new();
    let mut owned_bytes = 0;
    let mut packages: Vec<Listed> = db
        .packages
        .iter()
        .map(|p| {
            let mut seen: HashSet<Vec<u8>> = HashSet::new();
            let (mut bytes, mut files, mut missing) = (0, 0, 0);
            for f in &p.files {
                match locate(fs, f) {
                    None => missing += 1,
                    Some(at) => {
                        if let Some(Stat::File { size, .. }) = fs.stat(&at)
                            && seen.insert(at.clone())
                        {
                            bytes += size;
                            files += 1;
                            if all_owned.insert(at) {
                                owned_bytes += size;
                            }
                        }
                    }
                }
            }
            let required_by: Vec<String> = needs
                .get(p.name.as_str())
                .into_iter()
                .flatten()
                .map(|q| q.to_string())
                .collect();
            Listed {
                name: p.name.clone(),
                version: p.version.clone(),
                arch: p.arch.clone(),
                state: p.state.clone(),
                bytes,
                files,
                missing,
                essential: p.essential,
                required_by,
                needed_by_files: Vec::new(),
            }
        })
        .collect();
    packages.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.name.cmp(&b.name)));
    let leaves = packages
        .iter()
        .filter(|p| p.state == "installed" && p.required_by.is_empty())
        .map(|p| p.name.clone())
        .collect();
    Ok(Listing {
        manager: db.manager,
        packages,
        leaves,
        owned_bytes,
        warnings: db.warnings.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::memfs::MemFs;

    fn pkg(name: &str, version: &str, depends: &str, provides: &str) -> Package {
        Package {
            name: name.into(),
            version: version.into(),
            state: "installed".into(),
            depends: relation::parse_dpkg(depends),
            provides: relation::parse_dpkg(provides)
                .into_iter()
                .flatten()
                .collect(),
            ..Package::default()
        }
    }

    /// What `dpkg --remove` refuses, table by table: a sole satisfier is needed; one of
    /// two satisfiers of an `a | b` group is not; a versioned relation is satisfied by
    /// the version or a versioned Provides only.
    #[test]
    fn needed_by_follows_dpkg() {
        let db = Database {
            packages: vec![
                pkg(
                    "app",
                    "1",
                    "liba (>= 2.0), mawk | gawk, awk, virt (>= 1), old (<< 1.0)",
                    "",
                ),
                pkg("liba", "2.1", "", ""),
                pkg("mawk", "1.3", "", "awk"),
                pkg("gawk", "5", "", "awk"),
                pkg("unversioned", "1", "", "virt"),
                pkg("versioned", "1", "", "virt (= 1.2)"),
                pkg("old", "1.0", "", ""),
            ],
            ..Database::default()
        };
        let n = needed_by(&db).unwrap();
        assert_eq!(n.get("liba"), Some(&vec!["app"]));
        assert_eq!(n.get("mawk"), None, "gawk also satisfies both groups");
        assert_eq!(n.get("versioned"), Some(&vec!["app"]));
        assert_eq!(
            n.get("unversioned"),
            None,
            "an unversioned Provides cannot satisfy (>= 1)"
        );
        assert_eq!(
            n.get("old"),
            None,
            "1.0 is not << 1.0: nothing satisfies the group"
        );
    }

    /// The index answers as [`satisfies`] decides, asked once or again (remembered),
    /// for own names, versioned and unversioned Provides, a name provided twice.
    #[test]
    fn the_index_agrees_with_satisfies() {
        let packages = vec![
            pkg("a", "2", "", "v (= 1.5), w"),
            pkg("b", "1", "", "v, v (= 3)"),
            pkg("v", "0.5", "", ""),
            pkg("c", "1", "", "a (= 9)"),
        ];
        let index = Index::new(&packages).unwrap();
        let relations: Vec<Relation> = relation::parse_dpkg(
            "v, v (>= 1), v (>= 2), v (<< 1), v (= 3), w, w (>= 1), a, a (>= 3), a (= 9), x",
        )
        .into_iter()
        .flatten()
        .collect();
        for _ in 0..2 {
            for r in &relations {
                let want: Vec<&str> = packages
                    .iter()
                    .filter(|p| satisfies(p, r))
                    .map(|p| p.name.as_str())
                    .collect();
                let mut got: Vec<&str> = index.satisfiers(r).map(|p| p.name.as_str()).collect();
                got.sort_unstable();
                let mut want = want;
                want.sort_unstable();
                assert_eq!(got, want, "{r}");
            }
        }
    }

    #[test]
    fn bytes_are_the_merged_views_and_dependents_are_named() {
        let mut fs = MemFs::default();
        fs.file(
            "var/lib/dpkg/status",
            b"Package: libfoo\nStatus: install ok installed\nVersion: 1\nArchitecture: amd64\nMulti-Arch: same\nProvides: libfoo-abi (= 1.5)\n\n\
              Package: app\nStatus: install ok installed\nVersion: 2\nDepends: libfoo-abi (>= 1) | other\n\n\
              Package: gone\nStatus: deinstall ok config-files\nVersion: 3\n",
            0o644,
        )
        .file("var/lib/dpkg/info/libfoo:amd64.list", b"/.\n/lib\n/lib/libfoo.so.1\n/lib/libfoo.so\n", 0o644)
        .file("var/lib/dpkg/info/app.list", b"/usr\n/usr/bin\n/usr/bin/app\n/usr/share/doc/app/README\n", 0o644)
        .file("usr/lib/libfoo.so.1", &[0; 1000], 0o644)
        .link("usr/lib/libfoo.so", "libfoo.so.1")
        .link("lib", "usr/lib")
        .file("usr/bin/app", &[0; 10], 0o755);
        let db = read(&fs).unwrap().unwrap();
        let l = list(&fs, &db).unwrap();
        let row = |n: &str| l.packages.iter().find(|p| p.name == n).unwrap();
        assert_eq!(
            (
                row("libfoo").bytes,
                row("libfoo").files,
                row("libfoo").missing
            ),
            (1000, 1, 0)
        );
        assert_eq!(row("libfoo").required_by, ["app"]);
        assert_eq!((row("app").bytes, row("app").missing), (10, 1));
        assert_eq!(l.leaves, ["app"], "gone is not installed");
        assert_eq!(l.packages[0].name, "libfoo");
        assert_eq!(l.owned_bytes, 1010);
    }
}
