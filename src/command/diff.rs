//! `ocislim diff A B`: reads both images, merges each, and lists what changed by path
//! ([`crate::diff`]), grouped by top folder, by the package owning the path, and, given
//! the squash report of a slim (`B` is `A`'s slim), by the rule that deleted it.

use crate::diff::{Change, How, compare, facts};
use crate::error::{Error, Result};
use crate::image::reader::{OpenOptions, SourceSpec};
use crate::layer::fs::Fs;
use crate::layer::index::IndexMode;
use crate::layer::path::escape;
use crate::pipeline::merge::Merged;
use crate::progress::Progress;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;

/// What `diff` is asked.
#[derive(Clone, Debug)]
pub struct DiffOptions {
    /// The first image (before).
    pub a: SourceSpec,
    /// The second (after).
    pub b: SourceSpec,
    /// How both are opened.
    pub open: OpenOptions,
    /// The `--json` report of the squash that made `b` from `a`: the rule that deleted
    /// each path is read from it.
    pub report: Option<PathBuf>,
}

/// Counts and bytes of the changes in one group.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Group {
    /// The group: a top folder (`/usr`), a package, a rule.
    pub name: String,
    /// Paths added.
    pub added: u64,
    /// Paths removed.
    pub removed: u64,
    /// Paths changed.
    pub changed: u64,
    /// Bytes of its files in the first image.
    pub bytes_before: u64,
    /// Bytes of its files in the second.
    pub bytes_after: u64,
}

impl Group {
    fn count(&mut self, c: &Change) {
        match c.change {
            How::Added => self.added += 1,
            How::Removed => self.removed += 1,
            How::Changed => self.changed += 1,
        }
        self.bytes_before += c.before.as_ref().map_or(0, |f| f.size);
        self.bytes_after += c.after.as_ref().map_or(0, |f| f.size);
    }
}

/// One changed path with the groups it falls in.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Changed {
    /// The change.
    #[serde(flatten)]
    pub change: Change,
    /// The package that lists the path (the first image's database for a removed or
    /// changed path, the second's for an added one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    /// The rule that deleted it, or `(rewritten)` for a file the squash rewrote, when a
    /// report was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}

/// What `diff` found.
#[derive(Clone, Debug, serde::Serialize)]
pub struct DiffReport {
    /// The first image.
    pub a: String,
    /// The second.
    pub b: String,
    /// All changes counted.
    pub total: Group,
    /// By top folder, most bytes first.
    pub by_folder: Vec<Group>,
    /// By package, most bytes first (`(no package)` for paths none lists).
    pub by_package: Vec<Group>,
    /// By the rule that deleted them, when a report was given.
    pub by_rule: Vec<Group>,
    /// Every path that differs, in path order (a removed folder's paths each listed).
    pub changes: Vec<Changed>,
    /// Warnings from reading the images.
    pub warnings: Vec<String>,
}

/// Compares the images `opts.a` and `opts.b`.
pub fn diff(opts: &DiffOptions, jobs: usize, progress: &Progress) -> Result<DiffReport> {
    let rules = opts.report.as_deref().map(Rules::read).transpose()?;
    let open = |spec| {
        Merged::open_indexed(
            spec,
            (&opts.open, IndexMode::EntriesWithDigests),
            jobs,
            progress,
        )
    };
    let (ma, mb) = (open(&opts.a)?, open(&opts.b)?);
    let mut warnings = Vec::new();
    for (m, spec) in [(&ma, &opts.a), (&mb, &opts.b)] {
        let name = spec.display();
        warnings.extend(m.warnings.iter().map(|w| format!("{name}: {w}")));
    }
    let changes = compare(&facts(&ma.tree, &ma.spools), &facts(&mb.tree, &mb.spools));
    let raw = |c: &Change| c.path.clone();
    let wanted = |added: bool| -> HashSet<String> {
        changes
            .iter()
            .filter(|c| (c.change == How::Added) == added)
            .map(raw)
            .collect()
    };
    let owners_a = owners(&ma.fs(), &wanted(false), &mut warnings, &opts.a);
    let owners_b = owners(&mb.fs(), &wanted(true), &mut warnings, &opts.b);
    let changes = changes
        .into_iter()
        .map(|c| {
            let owners = if c.change == How::Added {
                &owners_b
            } else {
                &owners_a
            };
            Changed {
                package: owners.get(&c.path).cloned(),
                rule: rules.as_ref().and_then(|r| r.of(&c)),
                change: c,
            }
        })
        .collect();
    Ok(grouped(opts, changes, rules.is_some(), warnings))
}

/// The package listing each of the paths `wanted` (escaped, from the root), the first
/// in database order; a path listed through a symlinked folder (`/bin/ls` in a
/// merged-/usr image) counts where it lands.
fn owners(
    fs: &dyn Fs,
    wanted: &HashSet<String>,
    warnings: &mut Vec<String>,
    spec: &SourceSpec,
) -> HashMap<String, String> {
    let mut out = HashMap::new();
    if wanted.is_empty() {
        return out;
    }
    let db = match crate::packages::read(fs) {
        Ok(Some(db)) => db,
        Ok(None) => return out,
        Err(e) => {
            warnings.push(format!("{}: package database: {e}", spec.display()));
            return out;
        }
    };
    for pkg in &db.packages {
        for p in &pkg.files {
            let shown = format!("/{}", escape(p));
            let at = if wanted.contains(&shown) {
                shown
            } else {
                match crate::packages::locate(fs, p) {
                    Some(l) if l != *p => format!("/{}", escape(&l)),
                    _ => continue,
                }
            };
            if wanted.contains(&at) {
                out.entry(at).or_insert_with(|| pkg.name.clone());
            }
        }
    }
    out
}

/// The report: totals and groups counted from the changes.
fn grouped(
    opts: &DiffOptions,
    changes: Vec<Changed>,
    with_rules: bool,
    warnings: Vec<String>,
) -> DiffReport {
    let mut total = Group {
        name: "total".into(),
        ..Group::default()
    };
    let (mut folders, mut packages, mut rules) =
        (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
    let add = |map: &mut BTreeMap<String, Group>, name: &str, c: &Change| {
        map.entry(name.to_string())
            .or_insert_with(|| Group {
                name: name.to_string(),
                ..Group::default()
            })
            .count(c)
    };
    for c in &changes {
        total.count(&c.change);
        let top = c.change.path[1..].split('/').next().unwrap_or("");
        add(&mut folders, &format!("/{top}"), &c.change);
        add(
            &mut packages,
            c.package.as_deref().unwrap_or("(no package)"),
            &c.change,
        );
        if with_rules {
            add(
                &mut rules,
                c.rule.as_deref().unwrap_or("(no rule)"),
                &c.change,
            );
        }
    }
    DiffReport {
        a: opts.a.display(),
        b: opts.b.display(),
        total,
        by_folder: biggest_first(folders),
        by_package: biggest_first(packages),
        by_rule: biggest_first(rules),
        changes,
        warnings,
    }
}

/// Groups, those whose bytes changed most first (then by name).
fn biggest_first(map: BTreeMap<String, Group>) -> Vec<Group> {
    let mut v: Vec<Group> = map.into_values().collect();
    v.sort_by_key(|g| std::cmp::Reverse(g.bytes_before.abs_diff(g.bytes_after)));
    v
}

/// What a squash report says about each path: the rule that deleted it (a folder
/// standing for its subtree), and the files the squash rewrote or wrote.
struct Rules {
    deleted: HashMap<String, String>,
    rewritten: HashSet<String>,
}

impl Rules {
    /// Reads the `--json` report of a squash (`squash --report FILE`).
    fn read(p: &std::path::Path) -> Result<Rules> {
        let bad = |why: String| Error::Usage(format!("--report {}: {why}", p.display()));
        let bytes = std::fs::read(p).map_err(|e| bad(e.to_string()))?;
        let v: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| bad(format!("not JSON: {e}")))?;
        let deleted = v["policy"]["deleted"]
            .as_array()
            .ok_or_else(|| bad("no policy.deleted: not the report of a squash".into()))?;
        let text = |x: &serde_json::Value| x.as_str().map(String::from);
        Ok(Rules {
            deleted: deleted
                .iter()
                .filter_map(|d| Some((format!("/{}", text(&d["path"])?), text(&d["rule"])?)))
                .collect(),
            rewritten: v["rewritten"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(text)
                .collect(),
        })
    }

    /// The rule behind `c`: for a removed path, the one that deleted it or the folder
    /// above it; for a path the squash rewrote, `(rewritten)`.
    fn of(&self, c: &Change) -> Option<String> {
        if c.change != How::Removed {
            return self
                .rewritten
                .contains(&c.path)
                .then(|| "(rewritten)".to_string());
        }
        let mut p = c.path.as_str();
        loop {
            if let Some(r) = self.deleted.get(p) {
                return Some(r.clone());
            }
            p = &p[..p.rfind('/').filter(|&i| i > 0)?];
        }
    }
}
