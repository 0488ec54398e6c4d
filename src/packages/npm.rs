//! npm's development dependencies, pruned as `npm prune --omit=dev` would, without
//! running npm:
//!
//! - a project is a folder with a `node_modules` folder and a lockfile, read in npm's
//!   order: `npm-shrinkwrap.json`, `package-lock.json`, then the hidden
//!   `node_modules/.package-lock.json` (lockfiles inside `node_modules` packages are
//!   ignored, as npm ignores them);
//! - a package goes when the lockfile marks it `dev` (lockfile v2/v3 `packages`, v1's
//!   nested `dependencies`); `devOptional` ones stay (npm omits them only with
//!   `--omit=dev --omit=optional`), and so do links (workspaces);
//! - never one needed at run time: from the project's own `package.json` and every
//!   package that stays, each `dependencies`, `optionalDependencies` and
//!   `peerDependencies` name is resolved as Node resolves it (the nearest
//!   `node_modules` upwards), and a package it reaches stays, with what it needs in turn;
//!   a package whose installed version differs from the lockfile's (a stale lockfile)
//!   stays too;
//! - with a package go the `.bin` links into it, a scope folder it leaves empty, and the
//!   hidden lockfile (npm rewrites it; without it npm reads `node_modules` itself).

use super::{Budget, read_text};
use crate::layer::fs::{Fs, Stat, join_rel};
use crate::layer::overlay::parent;
use serde::Deserialize;
use serde::Serialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// The rule the pruned paths go by.
pub const RULE: &str = "npm-dev";

/// The lockfiles npm reads, in its order, relative to the project folder.
const LOCKFILES: [&str; 3] = [
    "npm-shrinkwrap.json",
    "package-lock.json",
    "node_modules/.package-lock.json",
];

/// The hidden lockfile, relative to the project folder.
const HIDDEN: &str = "node_modules/.package-lock.json";

/// How many `node_modules` levels a resolution climbs; a project nested deeper is
/// left alone (Node itself has no limit, so pruning could remove what it finds).
const MAX_DEPTH: usize = 128;

/// How many dependency names one project resolves at most; a project needing more is
/// left alone (each resolution climbs up to [`MAX_DEPTH`] folders).
const MAX_RESOLUTIONS: usize = 1 << 20;

/// What pruning did in one project.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize)]
pub struct Project {
    /// The project folder, from the image root.
    pub path: String,
    /// The lockfile read.
    pub lockfile: String,
    /// The packages pruned, by path below the project.
    pub pruned: Vec<String>,
    /// Packages the lockfile marks `dev` that stay, each with why.
    pub kept: Vec<String>,
}

/// What pruning did in the image.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize)]
pub struct PruneReport {
    /// Each project with a lockfile, in path order.
    pub projects: Vec<Project>,
    /// Problems that left a project or a lockfile alone.
    pub warnings: Vec<String>,
}

/// A planned pruning.
#[derive(Clone, Debug, Default)]
pub struct Prune {
    /// Paths to delete with everything below them.
    pub roots: HashSet<Vec<u8>>,
    /// The report.
    pub report: PruneReport,
}

fn show(p: &[u8]) -> String {
    format!("/{}", crate::layer::path::escape(p))
}

fn is_dir(fs: &dyn Fs, p: &[u8]) -> bool {
    matches!(fs.stat(p), Some(Stat::Dir))
}

/// Plans the pruning of every project in the image `fs`.
pub fn plan(fs: &dyn Fs) -> Prune {
    let budget = Budget::new();
    let mut out = Prune::default();
    let mut projects: BTreeSet<Vec<u8>> = BTreeSet::new();
    for f in fs.files() {
        let (dir, name) = match f.iter().rposition(|&b| b == b'/') {
            Some(i) => (&f[..i], &f[i + 1..]),
            None => (&[][..], &f[..]),
        };
        let project = match name {
            b"package-lock.json" | b"npm-shrinkwrap.json" => dir,
            b".package-lock.json" if dir.ends_with(b"node_modules") => parent(dir),
            _ => continue,
        };
        let inside_a_package = project.split(|&b| b == b'/').any(|c| c == b"node_modules");
        if !inside_a_package && is_dir(fs, &join_rel(project, b"node_modules")) {
            projects.insert(project.to_vec());
        }
    }
    let bins: Vec<Vec<u8>> = fs
        .symlinks()
        .into_iter()
        .filter(|l| parent(l).ends_with(b"node_modules/.bin"))
        .collect();
    for p in projects {
        match project(fs, &p, &budget, &bins, &mut out.roots) {
            Ok(Some(r)) => out.report.projects.push(r),
            Ok(None) => {}
            Err(e) => out.report.warnings.push(format!("{}: {e}", show(&p))),
        }
    }
    out
}

/// A lockfile entry, as far as pruning reads it. The fields stay unparsed slices of the
/// lockfile's text and every other field is skipped: a `serde_json::Value` of a 64 MiB
/// lockfile of tiny entries held 1.1 GiB.
#[derive(Deserialize)]
struct Entry<'a> {
    #[serde(borrow, default)]
    dev: Option<&'a RawValue>,
    #[serde(borrow, default)]
    link: Option<&'a RawValue>,
    #[serde(borrow, default)]
    version: Option<&'a RawValue>,
}

/// A v1 lockfile entry: an [`Entry`] with the packages nested below it (its
/// `dependencies`), read in the same pass; serde_json bounds their nesting at 128.
#[derive(Deserialize)]
struct V1Entry<'a> {
    #[serde(borrow, default)]
    dev: Option<&'a RawValue>,
    #[serde(borrow, default)]
    link: Option<&'a RawValue>,
    #[serde(borrow, default)]
    version: Option<&'a RawValue>,
    #[serde(borrow, default)]
    dependencies: Nested<'a>,
}

/// v1's nested packages: of an object, the values that are objects are entries (others
/// are skipped, as `Value`'s accessors skipped them); anything but an object is none.
#[derive(Default)]
struct Nested<'a>(BTreeMap<Cow<'a, str>, V1Entry<'a>>);

/// A v1 entry where the value is an object; skipped otherwise.
struct Loose<'a>(Option<V1Entry<'a>>);

/// Deserializes any JSON value: `map` reads an object, anything else is skipped.
macro_rules! object_or_skip {
    ($ty:ident, $none:expr, |$m:ident| $map:expr) => {
        impl<'de: 'a, 'a> Deserialize<'de> for $ty<'a> {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V<'a>(std::marker::PhantomData<&'a ()>);
                impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
                    type Value = $ty<'a>;
                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str("any JSON value")
                    }
                    #[allow(unused_mut)]
                    fn visit_map<A: serde::de::MapAccess<'de>>(
                        self,
                        mut $m: A,
                    ) -> Result<Self::Value, A::Error> {
                        $map
                    }
                    fn visit_seq<A: serde::de::SeqAccess<'de>>(
                        self,
                        mut seq: A,
                    ) -> Result<Self::Value, A::Error> {
                        while seq.next_element::<IgnoredAny>()?.is_some() {}
                        Ok($none)
                    }
                    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                        Ok($none)
                    }
                    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                        Ok($none)
                    }
                    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                        Ok($none)
                    }
                    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                        Ok($none)
                    }
                    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                        Ok($none)
                    }
                    fn visit_unit<E>(self) -> Result<Self::Value, E> {
                        Ok($none)
                    }
                }
                d.deserialize_any(V(std::marker::PhantomData))
            }
        }
    };
}

object_or_skip!(Nested, Nested::default(), |m| {
    let mut out = BTreeMap::new();
    while let Some(k) = m.next_key::<Cow<'a, str>>()? {
        if let Loose(Some(e)) = m.next_value()? {
            out.insert(k, e);
        }
    }
    Ok(Nested(out))
});

object_or_skip!(Loose, Loose(None), |m| {
    let de = serde::de::value::MapAccessDeserializer::new(m);
    V1Entry::deserialize(de).map(|e| Loose(Some(e)))
});

/// A lockfile: v2/v3 `packages`, or v1 `dependencies`.
#[derive(Deserialize)]
struct Lock<'a> {
    #[serde(borrow, default)]
    packages: Option<&'a RawValue>,
    #[serde(borrow, default)]
    dependencies: Option<&'a RawValue>,
}

/// An entry's `dev`, `link` and `version` fields.
type Marks<'a> = (
    Option<&'a RawValue>,
    Option<&'a RawValue>,
    Option<&'a RawValue>,
);

/// Whether a field is JSON `true`.
fn is_true(v: Option<&RawValue>) -> bool {
    v.is_some_and(|v| v.get() == "true")
}

/// A field's text when it is a JSON string.
fn string(v: Option<&RawValue>) -> Option<String> {
    v.filter(|v| v.get().starts_with('"'))
        .and_then(|v| serde_json::from_str(v.get()).ok())
}

/// The entries of a field that is a JSON object of entries; none when it is not one.
fn entries<'a>(v: Option<&'a RawValue>) -> Result<BTreeMap<Cow<'a, str>, Entry<'a>>, String> {
    match v {
        Some(v) if v.get().starts_with('{') => {
            serde_json::from_str(v.get()).map_err(|e| format!("not a lockfile: {e}"))
        }
        _ => Ok(BTreeMap::new()),
    }
}

/// The packages a lockfile (its text) marks `dev` (paths relative to the project) with
/// their locked versions; every other package it lists in `others`.
fn dev_marked(
    text: &str,
    others: &mut Vec<String>,
) -> Result<BTreeMap<String, Option<String>>, String> {
    let lock: Lock = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let mut dev = BTreeMap::new();
    let mut mark = |key: String, (dev_field, link, version): Marks| {
        if is_true(link) {
            return;
        }
        if is_true(dev_field) {
            dev.insert(key, string(version));
        } else {
            others.push(key);
        }
    };
    if lock.packages.is_some_and(|p| p.get().starts_with('{')) {
        for (key, entry) in entries(lock.packages)? {
            if key.split('/').any(|c| c == "node_modules") {
                mark(key.into_owned(), (entry.dev, entry.link, entry.version));
            }
        }
    } else if lock.dependencies.is_some_and(|p| p.get().starts_with('{')) {
        // v1: nested `dependencies`, each under its parent's node_modules.
        let raw = lock.dependencies.map_or("{}", RawValue::get);
        let top: Nested = serde_json::from_str(raw).map_err(|e| format!("not a lockfile: {e}"))?;
        let mut todo = vec![(String::new(), top)];
        while let Some((prefix, Nested(deps))) = todo.pop() {
            for (name, entry) in deps {
                let key = format!("{prefix}node_modules/{name}");
                mark(key.clone(), (entry.dev, entry.link, entry.version));
                if !entry.dependencies.0.is_empty() {
                    todo.push((format!("{key}/"), entry.dependencies));
                }
            }
        }
    } else {
        return Err("neither `packages` nor `dependencies`".into());
    }
    Ok(dev)
}

/// A package key as a safe relative path: no empty, `.` or `..` component.
fn safe_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
}

/// A package's manifest, as far as pruning reads it (see [`Entry`]).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Manifest<'a> {
    #[serde(borrow, default)]
    version: Option<&'a RawValue>,
    #[serde(borrow, default)]
    dependencies: Option<&'a RawValue>,
    #[serde(borrow, default)]
    optional_dependencies: Option<&'a RawValue>,
    #[serde(borrow, default)]
    peer_dependencies: Option<&'a RawValue>,
}

/// What pruning reads of a package's manifest: its version, and the names it needs at
/// run time (`dependencies`, `optionalDependencies`, `peerDependencies`).
struct Needs {
    version: Option<String>,
    names: Vec<String>,
}

/// A package's manifest.
fn manifest(fs: &dyn Fs, dir: &[u8], budget: &Budget) -> Result<Option<Needs>, String> {
    let Some(text) = read_text(fs, &join_rel(dir, b"package.json"), budget)? else {
        return Ok(None);
    };
    let bad = |e: serde_json::Error| format!("{}/package.json: {e}", show(dir));
    let m: Manifest = serde_json::from_str(&text).map_err(bad)?;
    let mut names = Vec::new();
    for field in [m.dependencies, m.optional_dependencies, m.peer_dependencies] {
        if let Some(v) = field.filter(|v| v.get().starts_with('{')) {
            let keys: BTreeMap<Cow<str>, IgnoredAny> =
                serde_json::from_str(v.get()).map_err(bad)?;
            names.extend(keys.into_keys().map(Cow::into_owned));
        }
    }
    Ok(Some(Needs {
        version: string(m.version),
        names,
    }))
}

/// Node's resolutions in one project, remembered per folder and name: packages nested
/// 240 deep, each needing the same names (hard-linked manifests), climbed the same
/// folders once per package (quadratic); each (folder, name) is now looked at once.
/// Folders and names are numbered, so a deep folder's path is held per folder, not per
/// (folder, name).
#[derive(Default)]
struct Resolver {
    folders: HashMap<Vec<u8>, u32>,
    paths: Vec<Vec<u8>>,
    names: HashMap<String, u32>,
    found: HashMap<(u32, u32), Option<u32>>,
}

impl Resolver {
    fn folder(&mut self, p: &[u8]) -> u32 {
        if let Some(&id) = self.folders.get(p) {
            return id;
        }
        let id = self.paths.len() as u32;
        self.paths.push(p.to_vec());
        self.folders.insert(p.to_vec(), id);
        id
    }

    /// Where Node finds the package `name` required from the folder `from`: the nearest
    /// `node_modules/name` upwards (folders named `node_modules` skipped), up to the
    /// root; `Err` when that climbs more than [`MAX_DEPTH`] levels.
    fn resolve(&mut self, fs: &dyn Fs, from: &[u8], name: &str) -> Result<Option<Vec<u8>>, ()> {
        let n = self.names.len() as u32;
        let n = *self.names.entry(name.to_string()).or_insert(n);
        let mut dir = from.to_vec();
        let mut climbed = Vec::new();
        let found = 'climb: {
            for _ in 0..MAX_DEPTH * 2 {
                let d = self.folder(&dir);
                if let Some(hit) = self.found.get(&(d, n)) {
                    break 'climb *hit;
                }
                climbed.push(d);
                if !dir.ends_with(b"node_modules") {
                    let cand = join_rel(&join_rel(&dir, b"node_modules"), name.as_bytes());
                    if is_dir(fs, &cand) {
                        break 'climb Some(self.folder(&cand));
                    }
                }
                if dir.is_empty() {
                    break 'climb None;
                }
                dir = parent(&dir).to_vec();
            }
            return Err(());
        };
        for d in climbed {
            self.found.insert((d, n), found);
        }
        Ok(found.map(|f| self.paths[f as usize].clone()))
    }
}

// Long: npm's prune for one project in npm's order (lockfile, its dev flags, what
// kept packages need, the folders to prune); the steps share the lockfile's entries.
/// Plans one project: its pruned package folders into `roots`.
fn project(
    fs: &dyn Fs,
    dir: &[u8],
    budget: &Budget,
    bins: &[Vec<u8>],
    roots: &mut HashSet<Vec<u8>>,
) -> Result<Option<Project>, String> {
    let Some((lockfile, text)) = LOCKFILES
        .iter()
        .find_map(|l| {
            let p = join_rel(dir, l.as_bytes());
            match read_text(fs, &p, budget) {
                Ok(Some(t)) => Some(Ok((*l, t))),
                Ok(None) => None,
                Err(e) => Some(Err(e)),
            }
        })
        .transpose()?
    else {
        return Ok(None);
    };
    let mut others = Vec::new();
    let marked = dev_marked(&text, &mut others).map_err(|e| format!("{lockfile}: {e}"))?;
    let mut report = Project {
        path: show(dir),
        lockfile: lockfile.into(),
        ..Project::default()
    };
    // The candidates: installed as locked.
    let mut dev: BTreeSet<Vec<u8>> = BTreeSet::new();
    for (key, version) in &marked {
        if !safe_key(key) {
            return Err(format!("{lockfile}: unsafe package path {key:?}"));
        }
        let p = join_rel(dir, key.as_bytes());
        if !is_dir(fs, &p) {
            continue;
        }
        let installed = manifest(fs, &p, budget)?.and_then(|m| m.version);
        let installed = installed.as_deref();
        if version.is_some() && installed != version.as_deref() {
            report.kept.push(format!(
                "{key}: installed {} but locked {} (a stale lockfile)",
                installed.unwrap_or("without a version"),
                version.as_deref().unwrap_or("-")
            ));
            continue;
        }
        dev.insert(p);
    }
    if dev.is_empty() {
        return Ok(Some(report));
    }
    // From the project and every package that stays, what Node would load.
    let mut todo: Vec<Vec<u8>> = vec![dir.to_vec()];
    for key in others.iter().filter(|k| safe_key(k)) {
        let p = join_rel(dir, key.as_bytes());
        if is_dir(fs, &p) {
            todo.push(p);
        }
    }
    let mut seen: HashSet<Vec<u8>> = HashSet::new();
    let mut resolutions = 0usize;
    let mut resolver = Resolver::default();
    while let Some(pkg) = todo.pop() {
        if !seen.insert(pkg.clone()) {
            continue;
        }
        let Some(m) = manifest(fs, &pkg, budget)? else {
            continue;
        };
        for name in m.names {
            if !safe_key(&name) || name.split('/').count() > 2 {
                continue;
            }
            resolutions += 1;
            if resolutions > MAX_RESOLUTIONS {
                return Err(format!(
                    "more than {MAX_RESOLUTIONS} dependencies to resolve; left alone"
                ));
            }
            let found = resolver.resolve(fs, &pkg, &name).map_err(|()| {
                format!(
                    "{}: nested more than {MAX_DEPTH} node_modules deep; left alone",
                    show(&pkg)
                )
            })?;
            if let Some(found) = found
                && dev.remove(&found)
            {
                report.kept.push(format!(
                    "{}: needed at run time by {}",
                    rel(dir, &found),
                    if pkg == dir {
                        "the project".to_string()
                    } else {
                        rel(dir, &pkg)
                    }
                ));
                todo.push(found);
            }
        }
    }
    for p in &dev {
        report.pruned.push(rel(dir, p));
    }
    links_and_scopes(fs, dir, &dev, bins, roots);
    let hidden = join_rel(dir, HIDDEN.as_bytes());
    if !dev.is_empty() && matches!(fs.stat(&hidden), Some(Stat::File { .. })) {
        roots.insert(hidden);
    }
    roots.extend(dev);
    Ok(Some(report))
}

fn rel(dir: &[u8], p: &[u8]) -> String {
    let r = p.strip_prefix(dir).unwrap_or(p);
    String::from_utf8_lossy(r.strip_prefix(b"/").unwrap_or(r)).into_owned()
}

/// Adds the `.bin` links into pruned packages, and the scope folders (`@scope`) whose
/// every package is pruned, below the project `dir`.
fn links_and_scopes(
    fs: &dyn Fs,
    dir: &[u8],
    dev: &BTreeSet<Vec<u8>>,
    bins: &[Vec<u8>],
    roots: &mut HashSet<Vec<u8>>,
) {
    let inside = |p: &[u8]| {
        let mut a = p;
        loop {
            if dev.contains(a) {
                return true;
            }
            if a.len() <= dir.len() {
                return false;
            }
            a = parent(a);
        }
    };
    let mut scopes: BTreeSet<&[u8]> = BTreeSet::new();
    for p in dev {
        let scope = parent(p);
        if scope
            .rsplit(|&b| b == b'/')
            .next()
            .is_some_and(|c| c.starts_with(b"@"))
        {
            scopes.insert(scope);
        }
    }
    for s in scopes {
        let children = fs.under(s);
        let direct = children.iter().filter(|c| parent(c) == s);
        if direct.clone().all(|c| dev.contains(c.as_slice())) {
            roots.insert(s.to_vec());
        }
    }
    for link in bins {
        let below = link
            .strip_prefix(dir)
            .is_some_and(|r| dir.is_empty() || r.starts_with(b"/"));
        if below
            && let Some(Stat::Symlink(target)) = fs.stat(link)
            && inside(&join_rel(parent(link), &target))
        {
            roots.insert(link.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lockfile_v3_and_v1_dev_marks() {
        let v3 = json!({"lockfileVersion": 3, "packages": {
            "": {"name": "app"},
            "node_modules/a": {"version": "1.0.0"},
            "node_modules/b": {"version": "2.0.0", "dev": true},
            "node_modules/c": {"version": "1.0.0", "devOptional": true},
            "node_modules/a/node_modules/d": {"version": "1.0.0", "dev": true},
            "node_modules/w": {"resolved": "packages/w", "link": true, "dev": true},
            "packages/w": {"version": "0.0.1"},
        }});
        let mut others = Vec::new();
        let dev = dev_marked(&v3.to_string(), &mut others).unwrap();
        assert_eq!(
            dev.keys().collect::<Vec<_>>(),
            ["node_modules/a/node_modules/d", "node_modules/b"]
        );
        others.sort();
        assert_eq!(others, ["node_modules/a", "node_modules/c"]);
        let v1 = json!({"lockfileVersion": 1, "dependencies": {
            "a": {"version": "1.0.0", "dependencies": {"d": {"version": "1.0.0", "dev": true}}},
            "b": {"version": "2.0.0", "dev": true},
        }});
        let mut others = Vec::new();
        let dev = dev_marked(&v1.to_string(), &mut others).unwrap();
        assert_eq!(
            dev.keys().collect::<Vec<_>>(),
            ["node_modules/a/node_modules/d", "node_modules/b"]
        );
        assert_eq!(others, ["node_modules/a"]);
    }

    /// v1 values that are not objects are skipped in the one pass, as `Value`'s
    /// accessors skipped them, at any depth.
    #[test]
    fn v1_values_that_are_not_entries_are_skipped() {
        let v1 = json!({"lockfileVersion": 1, "dependencies": {
            "a": {"version": "1.0.0", "dependencies": {"s": "x", "n": [1, {"dev": true}],
                "d": {"dev": true, "dependencies": 7}}},
            "b": 3,
        }});
        let mut others = Vec::new();
        let dev = dev_marked(&v1.to_string(), &mut others).unwrap();
        assert_eq!(
            dev.keys().collect::<Vec<_>>(),
            ["node_modules/a/node_modules/d"]
        );
        assert_eq!(others, ["node_modules/a"]);
    }

    #[test]
    fn unsafe_keys_are_refused() {
        for k in [
            "",
            "node_modules/../../etc",
            "node_modules//a",
            "./node_modules/a",
        ] {
            assert!(!safe_key(k), "{k}");
        }
        assert!(safe_key("node_modules/@s/a/node_modules/b"));
    }

    /// A project 100 packages deep, every package.json the same (hard links) needing 50
    /// names: each resolution climbed every folder above it (quadratic); remembered per
    /// folder, the lookups grow with packages times names.
    #[test]
    fn resolutions_through_a_deep_project_are_remembered() {
        use crate::layer::memfs::{Counting, MemFs};
        let lookups = |depth: usize| {
            let mut fs = MemFs::default();
            let deps: Vec<String> = (0..50).map(|i| format!("\"n{i}\": \"1\"")).collect();
            let manifest = format!(
                "{{\"version\": \"1\", \"dependencies\": {{{}}}}}",
                deps.join(",")
            );
            let mut packages = vec![r#""": {"name": "app"}"#.to_string()];
            let mut dir = String::from("app");
            let mut key = String::new();
            for i in 0..depth {
                key = if key.is_empty() {
                    format!("node_modules/p{i}")
                } else {
                    format!("{key}/node_modules/p{i}")
                };
                dir = format!("{dir}/node_modules/p{i}");
                fs.file(&format!("{dir}/package.json"), manifest.as_bytes(), 0o644);
                packages.push(format!("\"{key}\": {{\"version\": \"1\"}}"));
            }
            fs.file(
                "app/node_modules/d/package.json",
                br#"{"version": "1"}"#,
                0o644,
            );
            packages.push(r#""node_modules/d": {"version": "1", "dev": true}"#.to_string());
            let lock = format!(
                "{{\"lockfileVersion\": 3, \"packages\": {{{}}}}}",
                packages.join(",")
            );
            fs.file("app/package-lock.json", lock.as_bytes(), 0o644);
            fs.file("app/package.json", b"{}", 0o644);
            let count = Counting(&fs, Default::default());
            let prune = plan(&count);
            assert_eq!(prune.report.projects.len(), 1, "{:?}", prune.report);
            assert_eq!(prune.report.projects[0].pruned, ["node_modules/d"]);
            count.1.into_inner()
        };
        let (small, big) = (lookups(25), lookups(100));
        // Four times the packages: about four times the lookups, not sixteen.
        assert!(big < small * 6, "{small} lookups at 25 deep, {big} at 100");
    }
}
