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
use crate::deps::fs::{Fs, Stat, join_rel};
use crate::layer::overlay::parent;
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashSet};

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
#[derive(Clone, Debug, Default, Serialize)]
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
#[derive(Clone, Debug, Default, Serialize)]
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

/// The packages a lockfile marks `dev` (paths relative to the project) with their
/// locked versions; every other package it lists in `others`.
fn dev_marked(
    lock: &Value,
    others: &mut Vec<String>,
) -> Result<BTreeMap<String, Option<String>>, String> {
    let mut dev = BTreeMap::new();
    let mut mark = |key: String, entry: &Value| {
        if entry["link"] == Value::Bool(true) {
            return;
        }
        if entry["dev"] == Value::Bool(true) {
            dev.insert(key, entry["version"].as_str().map(String::from));
        } else {
            others.push(key);
        }
    };
    if let Some(packages) = lock["packages"].as_object() {
        for (key, entry) in packages {
            if key.split('/').any(|c| c == "node_modules") {
                mark(key.clone(), entry);
            }
        }
    } else if let Some(deps) = lock["dependencies"].as_object() {
        // v1: nested `dependencies`, each under its parent's node_modules.
        let mut todo: Vec<(String, &serde_json::Map<String, Value>)> = vec![(String::new(), deps)];
        while let Some((prefix, deps)) = todo.pop() {
            for (name, entry) in deps {
                let key = format!("{prefix}node_modules/{name}");
                if let Some(nested) = entry["dependencies"].as_object() {
                    todo.push((format!("{key}/"), nested));
                }
                mark(key, entry);
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

/// A package's manifest.
fn manifest(fs: &dyn Fs, dir: &[u8], budget: &Budget) -> Result<Option<Value>, String> {
    let Some(text) = read_text(fs, &join_rel(dir, b"package.json"), budget)? else {
        return Ok(None);
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| format!("{}/package.json: {e}", show(dir)))
}

/// The names a package needs at run time.
fn runtime_needs(manifest: &Value) -> Vec<String> {
    ["dependencies", "optionalDependencies", "peerDependencies"]
        .iter()
        .filter_map(|k| manifest[k].as_object())
        .flat_map(|m| m.keys().cloned())
        .collect()
}

/// Where Node finds the package `name` required from the folder `from`: the nearest
/// `node_modules/name` upwards (folders named `node_modules` skipped), up to the root.
fn resolve_from(fs: &dyn Fs, from: &[u8], name: &str) -> Result<Option<Vec<u8>>, ()> {
    let mut dir = from.to_vec();
    for _ in 0..MAX_DEPTH * 2 {
        if !dir.ends_with(b"node_modules") {
            let cand = join_rel(&join_rel(&dir, b"node_modules"), name.as_bytes());
            if is_dir(fs, &cand) {
                return Ok(Some(cand));
            }
        }
        if dir.is_empty() {
            return Ok(None);
        }
        dir = parent(&dir).to_vec();
    }
    Err(())
}

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
    let lock: Value =
        serde_json::from_str(&text).map_err(|e| format!("{lockfile}: not JSON: {e}"))?;
    let mut others = Vec::new();
    let marked = dev_marked(&lock, &mut others).map_err(|e| format!("{lockfile}: {e}"))?;
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
        let installed = manifest(fs, &p, budget)?;
        let installed = installed.as_ref().and_then(|m| m["version"].as_str());
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
    while let Some(pkg) = todo.pop() {
        if !seen.insert(pkg.clone()) {
            continue;
        }
        let Some(m) = manifest(fs, &pkg, budget)? else {
            continue;
        };
        for name in runtime_needs(&m) {
            if !safe_key(&name) || name.split('/').count() > 2 {
                continue;
            }
            resolutions += 1;
            if resolutions > MAX_RESOLUTIONS {
                return Err(format!(
                    "more than {MAX_RESOLUTIONS} dependencies to resolve; left alone"
                ));
            }
            let found = resolve_from(fs, &pkg, &name).map_err(|()| {
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
        let dev = dev_marked(&v3, &mut others).unwrap();
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
        let dev = dev_marked(&v1, &mut others).unwrap();
        assert_eq!(
            dev.keys().collect::<Vec<_>>(),
            ["node_modules/a/node_modules/d", "node_modules/b"]
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
}
