//! Removing dpkg packages from an image the way `apt-get purge` and `apt-get autoremove
//! --purge` would leave it, without running anything in it:
//!
//! - the packages named by the policy's `[packages] remove` globs; those named by
//!   `remove-unless-needed` globs unless a kept package needs them (`Pre-Depends`,
//!   `Depends`, through alternatives and `Provides`), and what they need in turn; and
//!   with `autoremove = true` the automatically installed ones (apt's
//!   `/var/lib/apt/extended_states`, `Auto-Installed: 1`) that a kept package reached
//!   before the removal and none reaches after it, through `Pre-Depends`, `Depends`,
//!   `Recommends` or `Suggests` (apt's defaults, `APT::AutoRemove::RecommendsImportant`
//!   and `SuggestsImportant`; a package already orphaned before stays, unlike
//!   `apt-get autoremove`);
//! - a package a kept file needs (the dependency analysis' references, as groups of
//!   [`super::needs`]) kept as a package a kept package depends on;
//! - refused (exit 2, nothing written) when a kept package would lose a dependency
//!   (a `Pre-Depends`/`Depends` group no kept package satisfies), naming the chain of
//!   kept packages that need it; an essential or protected package is refused too, as
//!   dpkg refuses it, and so is one that diverts files (its `postrm` moves them back);
//! - the files only removed packages list (a file or folder a kept package lists
//!   stays; a folder goes only when nothing is left in it), their `info/PKG.*` files,
//!   their status stanzas (every other stanza kept byte for byte), their
//!   `extended_states` stanzas and trigger interests, and the alternatives whose
//!   choices they held, as `update-alternatives --remove` in their `prerm` would leave
//!   them (the link re-pointed to the best remaining choice, or removed with its
//!   admin file when none remains).

use super::dpkg::{self, STATUS, stanzas};
use super::needs::{FileEdges, FileNeed, KeptFor};
use super::{Budget, Database, Index, Manager, Package, locate, read_text};
use crate::error::{Error, Result};
use crate::layer::fs::{Fs, Stat, join_rel, normalise};
use crate::layer::overlay::parent;
use crate::layer::synth::{Content, Rewrite};
use globset::GlobSet;
use serde::Serialize;
use std::collections::{BTreeSet, HashMap, HashSet};

/// apt's record of automatically installed packages.
pub const EXTENDED_STATES: &[u8] = b"var/lib/apt/extended_states";
/// update-alternatives' admin folder.
pub const ALTERNATIVES: &[u8] = b"var/lib/dpkg/alternatives";
/// dpkg's trigger interest folder.
pub const TRIGGERS: &[u8] = b"var/lib/dpkg/triggers";

/// What to remove, as the policy says it.
#[derive(Clone, Debug, Default)]
pub struct RemovalOptions {
    /// Name globs, as written.
    pub patterns: Vec<String>,
    /// The same, compiled (a `*` matches any characters).
    pub set: GlobSet,
    /// Name globs of packages removed only when no kept package needs them.
    pub unless_needed: Vec<String>,
    /// The same, compiled.
    pub unless_needed_set: GlobSet,
    /// Also remove what only removed packages needed.
    pub autoremove: bool,
}

/// What a removal did.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize)]
pub struct RemovalReport {
    /// Packages the globs named.
    pub removed: Vec<String>,
    /// Packages `remove-unless-needed` named and removed.
    pub removed_unneeded: Vec<String>,
    /// Packages `remove-unless-needed` named that stay, each with the kept package
    /// that needs it.
    pub left_needed: Vec<String>,
    /// Packages autoremoval added.
    pub autoremoved: Vec<String>,
    /// Packages apt would have taken that stay because a kept file (or closure mode)
    /// needs them, each with who needs it.
    pub kept_for_files: Vec<KeptFor>,
    /// Paths deleted (files, links and emptied folders; database files included).
    pub paths: usize,
    /// Alternatives changed or removed.
    pub alternatives: Vec<String>,
    /// Globs that named no installed package.
    pub unmatched: Vec<String>,
}

/// A planned removal.
#[derive(Clone, Debug, Default)]
pub struct Removal {
    /// Every path to delete.
    pub delete: HashSet<Vec<u8>>,
    /// Files and links to rewrite, sorted by path.
    pub rewrites: Vec<Rewrite>,
    /// The report.
    pub report: RemovalReport,
}

fn refuse(why: String) -> Error {
    Error::Usage(format!("[packages] remove: {why}"))
}

/// Plans the removal `opts` asks of the image `fs`, whose files need what `needs` says
/// (the dependency analysis of every file; [`super::needs`]): a package a kept file
/// needs stays as a package a kept package depends on does.
pub fn plan(fs: &dyn Fs, opts: &RemovalOptions, needs: &[FileNeed]) -> Result<Removal> {
    let budget = Budget::new();
    // Only `remove-unless-needed` globs: an image without a database is left alone.
    let optional = opts.patterns.is_empty();
    let db =
        match super::read_within(fs, &budget).map_err(|e| Error::corrupt("package database", e))? {
            Some(db) => db,
            None if optional => return Ok(Removal::default()),
            None => return Err(refuse("the image has no package database".into())),
        };
    let apk = db.manager == Manager::Apk;
    let installed: Vec<&Package> = db
        .packages
        .iter()
        .filter(|p| p.state == "installed")
        .collect();
    let (chosen, mut report) = chosen(opts, &installed)?;
    // apk has no marks: what `/etc/apk/world` does not name was pulled in, and `apk
    // del` always takes what nothing in the world needs any more.
    let auto = match (apk, opts.autoremove) {
        (true, _) => Some(super::apk::pulled_in(fs, &installed, &budget)?),
        (false, true) => Some(auto_installed(fs, &budget)?),
        (false, false) => None,
    };
    let diverting = match apk || opts.unless_needed.is_empty() {
        true => HashSet::new(),
        false => diverting(fs, &budget)?,
    };
    let ask = Ask {
        opts,
        chosen: &chosen,
        auto: auto.as_ref(),
        diverting: &diverting,
    };
    let edges = FileEdges::new(fs, &installed, needs);
    let shells = edges.shells(&installed);
    let with_files: Vec<&Package> = shells.iter().collect();
    let (removed, selected) = select(&ask, &with_files)?;
    report.removed_unneeded = selected.removed_unneeded;
    report.left_needed = selected.left_needed;
    report.autoremoved = selected.autoremoved;
    if !edges.is_empty() {
        // What apt alone would take, to name what stays for files and why (what it
        // leaves for a kept package's sake is said as apt would).
        let (plain, apt) = select(&ask, &installed)?;
        let stayed: Vec<&str> = plain.difference(&removed).copied().collect();
        report.kept_for_files = edges.reasons(&shells, &stayed, &|n| removed.contains(n));
        report.left_needed = apt.left_needed;
    }
    let index = Index::new(with_files.iter().copied())
        .map_err(|e| Error::corrupt("package database", e))?;
    check_dependencies(&index, &with_files, &removed, &edges)?;
    if !apk {
        check_diversions(fs, &removed, &budget)?;
    }
    let mut r = Removal {
        report,
        ..Removal::default()
    };
    files(fs, &db, &removed, &mut r);
    records(fs, &db, &removed, &mut r, &budget)?;
    if !apk {
        alternatives(fs, &mut r, &budget)?;
    }
    r.rewrites.sort_by(|a, b| a.path.cmp(&b.path));
    r.report.paths = r.delete.len();
    Ok(r)
}

/// What a removal asks, as [`select`] reads it.
struct Ask<'o> {
    opts: &'o RemovalOptions,
    /// The packages `remove` names.
    chosen: &'o BTreeSet<&'o str>,
    /// The automatically installed packages, when autoremoval runs.
    auto: Option<&'o HashSet<String>>,
    /// Packages that divert files (never removed unless named).
    diverting: &'o HashSet<String>,
}

/// What [`select`] adds to the report.
struct Selected {
    removed_unneeded: Vec<String>,
    left_needed: Vec<String>,
    autoremoved: Vec<String>,
}

/// The packages apt's order removes from `installed`: the chosen ones, the
/// `remove-unless-needed` candidates no kept package needs, and what autoremoval
/// takes once those are gone (what a kept package reached before and none reaches
/// after).
fn select<'a>(ask: &Ask, installed: &[&'a Package]) -> Result<(BTreeSet<&'a str>, Selected)> {
    let opts = ask.opts;
    let index =
        Index::new(installed.iter().copied()).map_err(|e| Error::corrupt("package database", e))?;
    let mut removed: BTreeSet<&str> = installed
        .iter()
        .map(|p| p.name.as_str())
        .filter(|n| ask.chosen.contains(n))
        .collect();
    let before = ask
        .auto
        .map(|a| reachable(&index, installed, &BTreeSet::new(), a));
    let orphaned = |removed: &BTreeSet<&str>| -> BTreeSet<&str> {
        let (Some(auto), Some(before)) = (ask.auto, &before) else {
            return BTreeSet::new();
        };
        let kept = reachable(&index, installed, removed, auto);
        installed
            .iter()
            .map(|p| p.name.as_str())
            .filter(|n| !removed.contains(n) && !kept.contains(n) && before.contains(n))
            .collect()
    };
    let mut selected = Selected {
        removed_unneeded: Vec::new(),
        left_needed: Vec::new(),
        autoremoved: Vec::new(),
    };
    if !opts.unless_needed.is_empty() {
        let candidates: BTreeSet<&str> = installed
            .iter()
            .filter(|p| !removed.contains(p.name.as_str()))
            .filter(|p| opts.unless_needed_set.is_match(&p.name))
            .filter(|p| !p.essential && !p.protected && !ask.diverting.contains(&p.name))
            .map(|p| p.name.as_str())
            .collect();
        let mut all = removed.clone();
        all.extend(&candidates);
        let also = orphaned(&all);
        let (gone, left) = unless_needed(&index, installed, &removed, candidates, also);
        selected.removed_unneeded = gone.iter().map(|s| s.to_string()).collect();
        selected.left_needed = left;
        removed.extend(gone);
    }
    let extra = orphaned(&removed);
    selected.autoremoved = extra.iter().map(|s| s.to_string()).collect();
    removed.extend(extra);
    Ok((removed, selected))
}

/// The packages `remove` names, none essential or protected, and the report so far (the
/// globs that matched nothing).
fn chosen<'a>(
    opts: &RemovalOptions,
    installed: &[&'a Package],
) -> Result<(BTreeSet<&'a str>, RemovalReport)> {
    let removed: BTreeSet<&str> = installed
        .iter()
        .filter(|p| opts.set.is_match(&p.name))
        .map(|p| p.name.as_str())
        .collect();
    let report = RemovalReport {
        removed: removed.iter().map(|s| s.to_string()).collect(),
        unmatched: opts
            .patterns
            .iter()
            .filter(|g| {
                let one = globset::Glob::new(g).map(|g| g.compile_matcher());
                !installed
                    .iter()
                    .any(|p| one.as_ref().is_ok_and(|m| m.is_match(&p.name)))
            })
            .cloned()
            .collect(),
        ..RemovalReport::default()
    };
    for p in installed
        .iter()
        .filter(|p| removed.contains(p.name.as_str()))
    {
        if p.essential || p.protected {
            return Err(refuse(format!(
                "{} is {}: dpkg refuses to remove it",
                p.name,
                if p.essential {
                    "essential"
                } else {
                    "protected"
                }
            )));
        }
    }
    Ok((removed, report))
}

/// apt's automatically installed packages.
fn auto_installed(fs: &dyn Fs, budget: &Budget) -> Result<HashSet<String>> {
    let text = read_text(fs, EXTENDED_STATES, budget)
        .map_err(|e| Error::corrupt("package database", e))?
        .unwrap_or_default();
    let st = stanzas(&text).map_err(|e| Error::corrupt("/var/lib/apt/extended_states", e))?;
    Ok(st
        .iter()
        .filter(|s| s.fields.get("Auto-Installed") == Some("1"))
        .filter_map(|s| s.fields.get("Package").map(String::from))
        .collect())
}

/// What apt's autoremove keeps: from every kept package that is manually installed,
/// essential or protected, what its `Pre-Depends`, `Depends`, `Recommends` and
/// `Suggests` reach (every installed package satisfying a relation), removed packages
/// left out.
fn reachable<'a>(
    index: &Index<'a>,
    installed: &[&'a Package],
    removed: &BTreeSet<&str>,
    auto: &HashSet<String>,
) -> HashSet<&'a str> {
    let mut marked: HashSet<&str> = HashSet::new();
    let mut todo: Vec<&Package> = installed
        .iter()
        .filter(|p| !removed.contains(p.name.as_str()))
        .filter(|p| !auto.contains(&p.name) || p.essential || p.protected)
        .copied()
        .collect();
    while let Some(p) = todo.pop() {
        if !marked.insert(&p.name) {
            continue;
        }
        for r in p.depends.iter().chain(&p.recommends).flatten() {
            todo.extend(index.satisfiers(r).filter(|q| {
                !removed.contains(q.name.as_str()) && !marked.contains(q.name.as_str())
            }));
        }
    }
    marked
}

/// What `remove-unless-needed` removes beyond `removed`: of `gone` (the packages its
/// globs name, essential, protected and diverting ones left out), those no kept
/// package needs. `also` is what autoremoval would take were all of them removed: the
/// packages kept are the others, and every candidate (or package of `also`) that
/// satisfies a kept package's dependency group no kept package satisfies is put back
/// and kept in turn. Also each candidate put back, with who needs it.
fn unless_needed<'a>(
    index: &Index<'a>,
    installed: &[&'a Package],
    removed: &BTreeSet<&str>,
    mut gone: BTreeSet<&'a str>,
    mut also: BTreeSet<&'a str>,
) -> (BTreeSet<&'a str>, Vec<String>) {
    let mut left = Vec::new();
    let mut todo: Vec<&Package> = installed
        .iter()
        .map(|p| (p, p.name.as_str()))
        .filter(|(_, n)| !removed.contains(n) && !gone.contains(n) && !also.contains(n))
        .map(|(p, _)| *p)
        .collect();
    // The sets only shrink, so a group satisfied once stays satisfied: each package
    // is looked at once, when it becomes kept.
    while let Some(q) = todo.pop() {
        for group in &q.depends {
            let stays = |p: &Package| {
                let n = p.name.as_str();
                !removed.contains(n) && !gone.contains(n) && !also.contains(n)
            };
            if group.iter().flat_map(|r| index.satisfiers(r)).any(stays) {
                continue;
            }
            let back: Vec<&Package> = group
                .iter()
                .flat_map(|r| index.satisfiers(r))
                .filter(|p| !removed.contains(p.name.as_str()))
                .collect();
            for p in back {
                if gone.remove(p.name.as_str()) {
                    left.push(format!("{} (needed by {})", p.name, q.name));
                    todo.push(p);
                } else if also.remove(p.name.as_str()) {
                    todo.push(p);
                }
            }
        }
    }
    left.sort();
    (gone, left)
}

/// The packages that divert files.
fn diverting(fs: &dyn Fs, budget: &Budget) -> Result<HashSet<String>> {
    let text = read_text(fs, dpkg::DIVERSIONS, budget)
        .map_err(|e| Error::corrupt("package database", e))?
        .unwrap_or_default();
    Ok(dpkg::diversions(&text)
        .into_iter()
        .filter_map(|d| d.by)
        .collect())
}

/// Refuses a removal that leaves a kept package's dependency unsatisfied, or a kept
/// file's need (a group `edges` added).
fn check_dependencies<'a>(
    index: &Index<'a>,
    installed: &[&'a Package],
    removed: &BTreeSet<&str>,
    edges: &FileEdges,
) -> Result<()> {
    let kept: Vec<&Package> = installed
        .iter()
        .filter(|p| !removed.contains(p.name.as_str()))
        .copied()
        .collect();
    for q in &kept {
        for (i, group) in q.depends.iter().enumerate() {
            let mut satisfiers = group.iter().flat_map(|r| index.satisfiers(r));
            let mut lost: Vec<&str> = Vec::new();
            let after = satisfiers.any(|p| {
                let gone = removed.contains(p.name.as_str());
                if gone {
                    lost.push(&p.name);
                }
                !gone
            });
            if !after && !lost.is_empty() {
                lost.sort_unstable();
                lost.dedup();
                let chain = match edges.need_of(q, i) {
                    Some(n) if q.name == super::needs::UNOWNED => {
                        format!(
                            "{} is needed by {} ({})",
                            lost.join(" | "),
                            n.shown,
                            n.needs
                        )
                    }
                    Some(n) => format!(
                        "{} is needed by {} ({}), a file of {}{}",
                        lost.join(" | "),
                        n.shown,
                        n.needs,
                        q.name,
                        chain_of(&kept, &q.name)?
                    ),
                    None => format!(
                        "{} is needed by {} (Depends: {}){}",
                        lost.join(" | "),
                        q.name,
                        group
                            .iter()
                            .map(|r| r.to_string())
                            .collect::<Vec<_>>()
                            .join(" | "),
                        chain_of(&kept, &q.name)?
                    ),
                };
                return Err(refuse(format!(
                    "the removal would break a kept package: {chain}; remove those too or keep {}",
                    lost.join(" | ")
                )));
            }
        }
    }
    Ok(())
}

/// The kept packages that need `name` in turn, as the rest of a refusal's chain.
fn chain_of(kept: &[&Package], name: &str) -> Result<String> {
    let needs = super::needed_among(kept).map_err(|e| Error::corrupt("package database", e))?;
    let mut chain = String::new();
    let mut at: &str = name;
    let mut seen = HashSet::from([at]);
    let mut n = 0;
    while let Some(next) = needs.get(at).and_then(|v| v.first()) {
        if !seen.insert(next) || n >= 8 {
            break;
        }
        chain.push_str(&format!(", which is needed by {next}"));
        at = next;
        n += 1;
    }
    Ok(chain)
}

/// Refuses to remove a package that diverts files: its `postrm` would move them back.
fn check_diversions(fs: &dyn Fs, removed: &BTreeSet<&str>, budget: &Budget) -> Result<()> {
    let text = read_text(fs, dpkg::DIVERSIONS, budget)
        .map_err(|e| Error::corrupt("package database", e))?
        .unwrap_or_default();
    for d in dpkg::diversions(&text) {
        if let Some(by) = d.by.as_deref().filter(|b| removed.contains(b)) {
            return Err(refuse(format!(
                "{by} diverts /{} (to /{}); removing a diverting package is not supported",
                crate::layer::path::escape(&d.from),
                crate::layer::path::escape(&d.to)
            )));
        }
    }
    Ok(())
}

/// The files only removed packages list; folders when nothing else is left in them.
pub(crate) fn files(fs: &dyn Fs, db: &Database, removed: &BTreeSet<&str>, r: &mut Removal) {
    let mut kept_paths: HashSet<Vec<u8>> = HashSet::new();
    let mut candidates: BTreeSet<Vec<u8>> = BTreeSet::new();
    for p in &db.packages {
        let gone = p.state == "installed" && removed.contains(p.name.as_str());
        for f in &p.files {
            let Some(at) = locate(fs, f) else { continue };
            if gone {
                candidates.insert(at);
            } else {
                kept_paths.insert(at);
            }
        }
    }
    let mut dirs: HashSet<Vec<u8>> = HashSet::new();
    for c in candidates.into_iter().filter(|c| !kept_paths.contains(c)) {
        if matches!(fs.stat(&c), Some(Stat::Dir)) {
            dirs.insert(c);
        } else {
            r.delete.insert(c);
        }
    }
    // A candidate folder goes when nothing below it stays: mark the folders above each
    // path that stays (stopping at one already marked, so each folder is marked once).
    let mut occupied: HashSet<&[u8]> = HashSet::new();
    let all = fs.under(b"");
    for q in all
        .iter()
        .filter(|q| !r.delete.contains(*q) && !dirs.contains(*q))
    {
        let mut a = parent(q);
        while !a.is_empty() && occupied.insert(a) {
            a = parent(a);
        }
    }
    for d in dirs {
        if !occupied.contains(d.as_slice()) {
            r.delete.insert(d);
        }
    }
}

/// The database records of the installed packages `removed` purged from `db`: their
/// info files, status and extended_states stanzas and trigger interests (dpkg), or
/// their `installed` records and world lines (apk).
pub(crate) fn records(
    fs: &dyn Fs,
    db: &Database,
    removed: &BTreeSet<&str>,
    r: &mut Removal,
    budget: &Budget,
) -> Result<()> {
    let corrupt = |e: String| Error::corrupt("package database", e);
    if db.manager == Manager::Apk {
        r.rewrites
            .extend(super::apk::remove(fs, removed, budget).map_err(corrupt)?);
        return Ok(());
    }
    let arch_of: HashMap<&str, &str> = db
        .packages
        .iter()
        .map(|p| (p.name.as_str(), p.arch.as_str()))
        .collect();
    // A package's control files are `PKG.EXT` or `PKG:ARCH.EXT`, the extension without
    // a dot (`list`, `md5sums`, `postinst`): package names may hold dots, so
    // `python3.11.list` is python3.11's, not python3's.
    for q in fs.under(dpkg::INFO) {
        let name = &q[dpkg::INFO.len() + 1..];
        let Some(dot) = name.iter().rposition(|&b| b == b'.') else {
            continue;
        };
        let stem = std::str::from_utf8(&name[..dot]).unwrap_or_default();
        let owner = match stem.split_once(':') {
            Some((n, a)) if arch_of.get(n) == Some(&a) => n,
            Some(_) => continue,
            None => stem,
        };
        if removed.contains(owner) && !name.contains(&b'/') {
            r.delete.insert(q);
        }
    }
    for (file, key) in [(STATUS, "Package"), (EXTENDED_STATES, "Package")] {
        let Some(text) = read_text(fs, file, budget).map_err(corrupt)? else {
            continue;
        };
        let st = stanzas(&text).map_err(corrupt)?;
        let mut out = String::new();
        let mut changed = false;
        for s in &st {
            if s.fields.get(key).is_some_and(|n| removed.contains(n)) {
                changed = true;
                continue;
            }
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(&text[s.range.0..s.range.1]);
        }
        // dpkg ends the status file with the blank line after its last stanza; apt's
        // extended_states ends the same way.
        if !out.is_empty() {
            out.push('\n');
        }
        if changed {
            // Written at the database's own path, as dpkg and apt replace the file (a
            // symlink there too); the metadata comes from the file read.
            let like = crate::layer::fs::resolve(fs, file).unwrap_or_else(|| file.to_vec());
            r.rewrites.push(Rewrite {
                path: file.to_vec(),
                content: Content::File(out.into_bytes()),
                like,
            });
        }
    }
    triggers(fs, removed, r, budget).map_err(corrupt)
}

/// Trigger interests: `triggers/File` lines are `PATH PACKAGE[/noawait]`, other files
/// under `triggers/` list interested packages one per line; a file left with no
/// interest is removed (as dpkg removes it).
fn triggers(
    fs: &dyn Fs,
    removed: &BTreeSet<&str>,
    r: &mut Removal,
    budget: &Budget,
) -> std::result::Result<(), String> {
    for q in fs.under(TRIGGERS) {
        let name = &q[TRIGGERS.len() + 1..];
        if matches!(name, b"Lock" | b"Unincorp") || name.contains(&b'/') {
            continue;
        }
        let Some(text) = read_text(fs, &q, budget)? else {
            continue;
        };
        let owner = |l: &str| -> String {
            let w = if name == b"File" {
                l.split_whitespace().nth(1).unwrap_or_default()
            } else {
                l.split_whitespace().next().unwrap_or_default()
            };
            w.split(['/', ':']).next().unwrap_or_default().to_string()
        };
        let kept: Vec<&str> = text
            .lines()
            .filter(|l| !removed.contains(owner(l).as_str()))
            .collect();
        if kept.len() == text.lines().count() {
            continue;
        }
        if kept.is_empty() && name != b"File" {
            r.delete.insert(q);
        } else {
            let mut out = kept.join("\n");
            if !out.is_empty() {
                out.push('\n');
            }
            r.rewrites.push(Rewrite {
                path: q.clone(),
                content: Content::File(out.into_bytes()),
                like: q,
            });
        }
    }
    Ok(())
}

/// One alternative's admin file (update-alternatives(1), "FILES"): the mode, the link,
/// the slaves (name, link), then each choice: its path, priority and one path per slave
/// (empty when it has none).
struct Alternative {
    mode: String,
    link: String,
    slaves: Vec<(String, String)>,
    choices: Vec<Choice>,
}

struct Choice {
    path: String,
    priority: i64,
    slaves: Vec<String>,
}

fn parse_alternative(text: &str) -> Option<Alternative> {
    let mut lines = text.lines();
    let mode = lines.next()?.to_string();
    let link = lines.next()?.to_string();
    let mut slaves = Vec::new();
    loop {
        let name = lines.next()?;
        if name.is_empty() {
            break;
        }
        slaves.push((name.to_string(), lines.next()?.to_string()));
    }
    let mut choices = Vec::new();
    loop {
        let path = lines.next()?;
        if path.is_empty() {
            break;
        }
        let priority = lines.next()?.trim().parse().ok()?;
        let s = (0..slaves.len())
            .map(|_| lines.next().map(String::from))
            .collect::<Option<Vec<_>>>()?;
        choices.push(Choice {
            path: path.to_string(),
            priority,
            slaves: s,
        });
    }
    Some(Alternative {
        mode,
        link,
        slaves,
        choices,
    })
}

fn write_alternative(a: &Alternative) -> String {
    let mut o = format!("{}\n{}\n", a.mode, a.link);
    for (n, l) in &a.slaves {
        o += &format!("{n}\n{l}\n");
    }
    o += "\n";
    for c in &a.choices {
        o += &format!("{}\n{}\n", c.path, c.priority);
        for s in &c.slaves {
            o += &format!("{s}\n");
        }
    }
    o += "\n";
    o
}

// Long: update-alternatives' rules for a group whose choices go (auto mode, a manual
// choice that went, no choice left), each writing the group's file and its links.
/// Alternatives whose choices are being deleted: pointed at the best choice left (auto
/// mode, or a manual choice that went), or removed with their links.
fn alternatives(fs: &dyn Fs, r: &mut Removal, budget: &Budget) -> Result<()> {
    let gone = |p: &str, r: &Removal| {
        let n = normalise(p.as_bytes());
        locate(fs, &n).is_none_or(|at| r.delete.contains(&at))
    };
    for admin in fs.under(ALTERNATIVES) {
        let name = String::from_utf8_lossy(&admin[ALTERNATIVES.len() + 1..]).into_owned();
        if name.contains('/') {
            continue;
        }
        let Some(text) =
            read_text(fs, &admin, budget).map_err(|e| Error::corrupt("alternatives", e))?
        else {
            continue;
        };
        let Some(mut a) = parse_alternative(&text) else {
            continue;
        };
        let before = a.choices.len();
        a.choices.retain(|c| !gone(&c.path, r));
        if a.choices.len() == before {
            continue;
        }
        r.report.alternatives.push(name.clone());
        let etc = |n: &str| join_rel(b"etc/alternatives", n.as_bytes());
        let mut links: Vec<(Vec<u8>, Vec<u8>, Option<String>)> = Vec::new();
        // (the /etc/alternatives link, the link that points at it, its new target)
        let best = a.choices.iter().max_by_key(|c| c.priority);
        let current = match fs.stat(&etc(&name)) {
            Some(Stat::Symlink(t)) => Some(String::from_utf8_lossy(&t).into_owned()),
            _ => None,
        };
        let repoint = a.mode == "auto" || current.as_deref().is_none_or(|c| gone(c, r));
        links.push((
            etc(&name),
            normalise(a.link.as_bytes()),
            best.filter(|_| repoint).map(|c| c.path.clone()),
        ));
        for (i, (sname, slink)) in a.slaves.iter().enumerate() {
            let target = best
                .filter(|_| repoint)
                .map(|c| c.slaves[i].clone())
                .filter(|t| !t.is_empty());
            links.push((etc(sname), normalise(slink.as_bytes()), target));
        }
        if best.is_none() {
            r.delete.insert(admin.clone());
        } else {
            if repoint {
                a.mode = "auto".into();
            }
            r.rewrites.push(Rewrite {
                path: admin.clone(),
                content: Content::File(write_alternative(&a).into_bytes()),
                like: admin.clone(),
            });
        }
        for (alt_link, user_link, target) in links {
            // Links are registered by the path given then (`/lib/cpp`), which a
            // merged-usr image holds through a symlinked folder (`usr/lib/cpp`).
            let (Some(alt_link), user_link) = (locate(fs, &alt_link), locate(fs, &user_link))
            else {
                continue;
            };
            if !matches!(fs.stat(&alt_link), Some(Stat::Symlink(_))) {
                continue;
            }
            match target {
                Some(t) if repoint => r.rewrites.push(Rewrite {
                    path: alt_link.clone(),
                    content: Content::Symlink(t.into_bytes()),
                    like: alt_link,
                }),
                Some(_) => {}
                None if best.is_none() || repoint => {
                    r.delete.insert(alt_link);
                    if let Some(u) =
                        user_link.filter(|u| matches!(fs.stat(u), Some(Stat::Symlink(_))))
                    {
                        r.delete.insert(u);
                    }
                }
                None => {}
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alternatives_round_trip() {
        let text = "auto\n/usr/bin/cc\ncc.1.gz\n/usr/share/man/man1/cc.1.gz\n\n/usr/bin/gcc\n20\n/usr/share/man/man1/gcc.1.gz\n/usr/bin/clang\n10\n\n\n";
        let a = parse_alternative(text).unwrap();
        assert_eq!(a.choices.len(), 2);
        assert_eq!(a.choices[1].slaves, [""]);
        assert_eq!(write_alternative(&a), text);
    }

    fn pkg(name: &str, depends: &str) -> Package {
        Package {
            name: name.into(),
            version: "1".into(),
            state: "installed".into(),
            depends: super::super::relation::parse_dpkg(depends),
            ..Package::default()
        }
    }

    /// `remove-unless-needed`: a candidate a kept package needs stays, with what it
    /// needs; one needed only through an alternative another kept package satisfies
    /// goes; one needed only by what autoremoval takes goes too.
    #[test]
    fn unless_needed_keeps_what_kept_packages_need() {
        let all = [
            pkg("jit", "gcc-12"),
            pkg("gcc-12", "cpp-12, libgcc-base"),
            pkg("cpp-12", ""),
            pkg("libgcc-base", ""),
            pkg("app", "libfoo-dev | libfoo1"),
            pkg("libfoo1", ""),
            pkg("libfoo-dev", "libfoo1"),
            pkg("make", ""),
            pkg("helper", "make"),
        ];
        let installed: Vec<&Package> = all.iter().collect();
        let index = Index::new(installed.iter().copied()).unwrap();
        let candidates: BTreeSet<&str> = ["gcc-12", "cpp-12", "libfoo-dev", "make"].into();
        // `helper` would be autoremoved once its dependents go: it does not keep make.
        let also: BTreeSet<&str> = ["helper"].into();
        let (gone, left) = unless_needed(&index, &installed, &BTreeSet::new(), candidates, also);
        assert_eq!(gone, BTreeSet::from(["libfoo-dev", "make"]));
        assert_eq!(
            left,
            ["cpp-12 (needed by gcc-12)", "gcc-12 (needed by jit)"]
        );
    }
}
