//! The policy step shared by `squash` and `bench`: a merged tree decided by a policy
//! (globs, package removal, npm pruning, closure mode), its deletions applied, the
//! files the policy rewrites (package databases, dpkg filters) laid on top as one
//! synthesized layer, and the dependency check of the result against the merged tree.

use crate::deps::Analysis;
use crate::deps::closure::{Closure, ClosureReport};
use crate::deps::guard::GuardReport;
use crate::deps::loader::ElfCache;
use crate::error::{Error, Result};
use crate::layer::fs::TreeFs;
use crate::layer::fs::{Fs, Stat, resolve_trail};
use crate::layer::index::EntryRec;
use crate::layer::overlay::Tree;
use crate::layer::synth::Rewrite;
use crate::layer::writer::Spool;
use crate::packages::excluded::{ExcludeReport, GlobRule};
use crate::packages::needs::FileNeed;
use crate::packages::npm::PruneReport;
use crate::packages::python::{PythonPlan, PythonReport};
use crate::packages::remove::{Removal, RemovalReport};
use crate::packages::settle::{SettleReport, Settled};
use crate::policy::{Computed, PolicyOutcome, PolicySet};
use std::collections::{HashMap, HashSet};

/// What a policy did to a merged tree.
pub struct Slimmed {
    /// Every deleted path, with its rule.
    pub deleted: Vec<(Vec<u8>, usize)>,
    /// The policy's accounting.
    pub policy: PolicyOutcome,
    /// The dependency check, when asked and something was deleted.
    pub check: Option<GuardReport>,
    /// Closure mode's report.
    pub closure: Option<ClosureReport>,
    /// Package removal's report.
    pub packages: Option<RemovalReport>,
    /// npm pruning's report.
    pub npm: Option<PruneReport>,
    /// dpkg's database after rules deleted packages' files.
    pub dpkg_excluded: Option<ExcludeReport>,
    /// The database settled: emptied packages purged, licences kept.
    pub database: Option<SettleReport>,
    /// Python's metadata after the deletions: RECORDs rewritten, emptied
    /// distributions' dist-info deleted.
    pub python: Option<PythonReport>,
    /// Every file rewritten or written, from the image root.
    pub rewritten: Vec<String>,
}

/// Slims `tree` (merged from `spools`, the first `keep` layers kept as they are) by
/// `policy`; a rewrite layer, when there is one, is appended to `spools`. With
/// `check` (`Some(allow_broken)`), the result is checked against the merged tree, and
/// a reference the policy broke is an error unless `allow_broken`.
pub fn slim(
    policy: &PolicySet,
    (tree, spools): (&mut Tree, &mut Vec<Spool>),
    config: &serde_json::Value,
    keep: usize,
    check: Option<bool>,
    warnings: &mut Vec<String>,
) -> Result<Slimmed> {
    let elf = ElfCache::default();
    let decided = decide(policy, (tree, &TreeFs::new(tree, spools)), config, &elf)?;
    let (mut deleted, closure, npm, was) =
        (decided.deleted, decided.closure, decided.npm, decided.was);
    if let Some(n) = &npm {
        warnings.extend(n.warnings.iter().map(|w| format!("npm: {w}")));
    }
    let settled = settle(
        policy,
        &TreeFs::new(tree, spools),
        &mut deleted,
        decided.removal.as_ref(),
    )?;
    let python = python_metadata(policy, &TreeFs::new(tree, spools), &mut deleted)?;
    let gone = match &settled {
        Some(s) => std::borrow::Cow::Borrowed(&s.gone),
        None => std::borrow::Cow::Owned(removed_by(decided.removal.as_ref())),
    };
    let excluded = database_filters(policy, &TreeFs::new(tree, spools), &deleted, &gone)?;
    drop(gone);
    let apk_installed = crate::packages::apk_installed(&TreeFs::new(tree, spools));
    let merged = (check.is_some() && !deleted.is_empty()).then(|| tree.clone());
    let entries: Vec<&[EntryRec]> = spools.iter().map(|s| s.entries.as_slice()).collect();
    let mut outcome = crate::policy::apply(policy, tree, &deleted, keep, &entries);
    drop(entries);
    let (mut rewrites, packages, database, dpkg_excluded) =
        database_rewrites(decided.removal, settled, excluded, warnings);
    let python = python.map(|p| {
        rewrites.extend(p.rewrites);
        warnings.extend(p.report.warnings.iter().map(|w| format!("python: {w}")));
        p.report
    });
    crate::packages::apk_without_lost(&mut rewrites, apk_installed, &TreeFs::new(tree, spools));
    rewrites.sort_by(|a, b| a.path.cmp(&b.path));
    let rewritten: Vec<String> = rewrites
        .iter()
        .map(|r| format!("/{}", crate::layer::path::escape(&r.path)))
        .collect();
    rewrite(tree, spools, &rewrites, warnings)?;
    outcome.reclaimed_by_layer.resize(spools.len(), 0);
    refuse_empty(policy, &deleted, tree)?;
    let check = match (merged, check) {
        (Some(before), Some(allow_broken)) => {
            let views = (&before, &*tree, spools.as_slice());
            Some(guard(
                policy,
                config,
                views,
                (&deleted, was),
                &elf,
                allow_broken,
            )?)
        }
        _ => None,
    };
    if let Some(g) = &check {
        guard_warnings(g, warnings);
    }
    Ok(Slimmed {
        deleted,
        policy: outcome,
        check,
        closure,
        packages,
        npm,
        dpkg_excluded,
        database,
        python,
        rewritten,
    })
}

/// What the dependency check says as warnings: the references the policy broke (with
/// `--allow-broken`), and the symlinks it left dangling, in one line.
fn guard_warnings(g: &GuardReport, warnings: &mut Vec<String>) {
    warnings.extend(
        g.broken_by_policy
            .iter()
            .map(|r| format!("the policy breaks {r}")),
    );
    if let Some(first) = g.links_left_dangling.first() {
        warnings.push(format!(
            "{} symlinks left dangling by the policy (the first: {first})",
            g.links_left_dangling.len()
        ));
    }
}

/// Python's metadata after the deletions ([`crate::packages::python`]): the dist-info
/// of distributions the policy emptied joins `deleted` (by the emptied-packages rule),
/// the RECORDs of the others are rewritten.
fn python_metadata(
    policy: &PolicySet,
    fs: &TreeFs,
    deleted: &mut Vec<(Vec<u8>, usize)>,
) -> Result<Option<PythonPlan>> {
    let Some(rule) = policy.emptied_rule() else {
        return Ok(None);
    };
    let Some(mut p) = crate::packages::python::plan(fs, deleted)? else {
        return Ok(None);
    };
    if !p.delete.is_empty() {
        deleted.extend(std::mem::take(&mut p.delete).into_iter().map(|d| (d, rule)));
        deleted.sort_by(|a, b| a.0.split(|&c| c == b'/').cmp(b.0.split(|&c| c == b'/')));
    }
    Ok(Some(p))
}

/// What a policy decided for an image.
pub struct Decided {
    /// Every deleted path and its rule.
    pub deleted: Vec<(Vec<u8>, usize)>,
    /// What closure mode kept, when asked.
    pub closure: Option<ClosureReport>,
    /// The package removal, when asked: its files to rewrite and its report.
    pub removal: Option<Removal>,
    /// What pruning npm's devDependencies did, when asked.
    pub npm: Option<PruneReport>,
    /// The analysis of every file before the policy, when package removal read it
    /// (the guard compares against it).
    pub was: Option<Analysis>,
}

/// Decides by `policy` for the image whose merged tree is `tree`, its files read through `fs`
/// and its config `config`: with closure mode, what the image needs is computed
/// first (ELF files read through `elf`), then the package removal, which keeps what
/// the kept files need (closure's kept files, or by the analysis of every file),
/// then [`PolicySet::decide`].
fn decide(
    policy: &PolicySet,
    (tree, fs): (&Tree, &dyn Fs),
    config: &serde_json::Value,
    elf: &ElfCache,
) -> Result<Decided> {
    let was = policy
        .packages
        .as_ref()
        .map(|_| crate::deps::guard::before(fs, config, &policy.libraries, elf));
    let closure = policy
        .closure
        .as_ref()
        .map(|c| crate::deps::closure::compute(fs, config, c, elf));
    let npm = policy.prunes_npm().then(|| crate::packages::npm::plan(fs));
    let removal = match &policy.packages {
        Some(p) => {
            let needs = match (&closure, was.as_ref()) {
                (Some(c), _) => closure_needs(fs, c),
                (None, Some(a)) => {
                    // The needs of files the rules delete anyway do not count.
                    let first = Computed {
                        npm: npm.as_ref(),
                        ..Computed::default()
                    };
                    let gone = policy.decide(tree, &first)?;
                    let gone: HashSet<&[u8]> = gone.iter().map(|(p, _)| p.as_slice()).collect();
                    file_needs(a, &gone)
                }
                (None, None) => Vec::new(),
            };
            Some(crate::packages::remove::plan(fs, p, &needs)?)
        }
        None => None,
    };
    let computed = Computed {
        closure: closure.as_ref(),
        removal: removal.as_ref(),
        npm: npm.as_ref(),
    };
    let mut deleted = policy.decide(tree, &computed)?;
    links_with_targets(policy, (tree, fs), &mut deleted);
    Ok(Decided {
        deleted,
        closure: closure.map(|c| c.report),
        removal,
        npm: npm.map(|n| n.report),
        was,
    })
}

/// Symlinks every way of which leads into what the policy deletes (the
/// `/etc/alternatives` links of deleted man pages) go with their targets, by the rule
/// that deleted the target: left, each would dangle, and a warning on every run teaches
/// users to ignore stderr. A link `[keep]` names, or one dangling in the input, stays.
/// `deleted` lists every deleted path (a folder's content included), parents first.
fn links_with_targets(
    policy: &PolicySet,
    (tree, fs): (&Tree, &dyn Fs),
    deleted: &mut Vec<(Vec<u8>, usize)>,
) {
    if deleted.is_empty() {
        return;
    }
    let by_path: HashMap<&[u8], usize> = deleted.iter().map(|(p, r)| (p.as_slice(), *r)).collect();
    let mut links: Vec<(Vec<u8>, usize)> = Vec::new();
    for p in tree.nodes.keys() {
        if by_path.contains_key(p.as_slice())
            || !matches!(fs.stat(p), Some(Stat::Symlink(_)))
            || policy.keeps(p)
        {
            continue;
        }
        let mut rule = None;
        let real = resolve_trail(fs, p, &mut |l| {
            if l != p.as_slice() {
                rule = rule.or_else(|| by_path.get(l).copied());
            }
        });
        if let Some(r) = rule.or_else(|| real.as_deref().and_then(|r| by_path.get(r).copied())) {
            links.push((p.clone(), r));
        }
    }
    if links.is_empty() {
        return;
    }
    drop(by_path);
    deleted.extend(links);
    deleted.sort_by(|a, b| a.0.split(|&c| c == b'/').cmp(b.0.split(|&c| c == b'/')));
}

/// The analysis' needs of the files not `gone`, as package removal reads them.
fn file_needs(a: &Analysis, gone: &HashSet<&[u8]>) -> Vec<FileNeed> {
    a.needs
        .iter()
        .filter(|n| !gone.contains(n.who.as_slice()))
        .cloned()
        .map(FileNeed::from)
        .collect()
}

/// What closure mode keeps (files and links, not the folders above them), as needs:
/// a package whose file closure keeps is not removed.
fn closure_needs(fs: &dyn Fs, c: &Closure) -> Vec<FileNeed> {
    let mut kept: Vec<&Vec<u8>> = c
        .keep
        .iter()
        .filter(|p| !matches!(fs.stat(p), Some(Stat::Dir) | None))
        .collect();
    kept.sort();
    kept.into_iter()
        .map(|p| FileNeed {
            who: Vec::new(),
            shown: "closure mode".into(),
            needs: format!("/{}", crate::layer::path::escape(p)),
            at: p.clone(),
        })
        .collect()
}

/// The dependency check of a slimmed tree against the merged one; references the policy
/// broke are an error unless `--allow-broken`.
fn guard(
    policy: &PolicySet,
    config: &serde_json::Value,
    (before, after, spools): (&Tree, &Tree, &[Spool]),
    (deleted, was): (&[(Vec<u8>, usize)], Option<Analysis>),
    elf: &ElfCache,
    allow_broken: bool,
) -> Result<GuardReport> {
    let rules: Vec<String> = policy.rules().iter().map(|r| r.id.clone()).collect();
    let g = crate::deps::guard::compare(
        &TreeFs::new(before, spools),
        &TreeFs::new(after, spools),
        config,
        (deleted, &rules),
        &policy.libraries,
        elf,
        was,
    );
    match g.broken_by_policy.first() {
        Some(first) if !allow_broken => Err(Error::Broken {
            first: first.to_string(),
            more: match g.broken_by_policy.len() {
                1 => String::new(),
                n => format!("; {} more", n - 1),
            },
        }),
        _ => Ok(g),
    }
}

/// Applies the files the policy rewrites (package databases, alternatives, dpkg
/// filters) on top of `tree` as one more layer, appended to `spools`.
fn rewrite(
    tree: &mut Tree,
    spools: &mut Vec<Spool>,
    rewrites: &[Rewrite],
    warnings: &mut Vec<String>,
) -> Result<()> {
    if rewrites.is_empty() {
        return Ok(());
    }
    let mut layer = crate::layer::synth::build(rewrites, tree, spools)?;
    tree.apply(
        spools.len(),
        &mut layer.entries,
        crate::layer::synth::NAME,
        warnings,
    )?;
    spools.push(layer);
    Ok(())
}

/// dpkg's `.list` and `.md5sums` without what the policy's rules deleted, and its
/// `path-exclude` lines ([`crate::packages::excluded`]); `None` when nothing was
/// deleted but by package removal.
fn database_filters(
    policy: &PolicySet,
    fs: &TreeFs,
    deleted: &[(Vec<u8>, usize)],
    gone: &HashSet<String>,
) -> Result<Option<(Vec<Rewrite>, ExcludeReport)>> {
    let rules: Vec<Option<GlobRule>> = policy
        .rules()
        .iter()
        .map(|r| {
            (!r.globs.0.is_empty()).then(|| GlobRule {
                id: &r.id,
                delete: &r.globs.0,
                keep: &r.globs.1,
            })
        })
        .collect();
    let deleted: Vec<(Vec<u8>, usize)> = deleted
        .iter()
        .filter(|(_, r)| policy.rules()[*r].id != crate::policy::PACKAGES_RULE)
        .cloned()
        .collect();
    if deleted.is_empty() {
        return Ok(None);
    }
    crate::packages::excluded::plan(fs, &deleted, &rules, &policy.keep_globs, gone).map(Some)
}

/// The files the package steps rewrite, with their reports: the removal's, except the
/// database files settling rewrote for every package gone (they replace the
/// removal's), the settled database's, and dpkg's file lists after glob deletions.
fn database_rewrites(
    removal: Option<Removal>,
    settled: Option<Settled>,
    excluded: Option<(Vec<Rewrite>, ExcludeReport)>,
    warnings: &mut Vec<String>,
) -> (
    Vec<Rewrite>,
    Option<RemovalReport>,
    Option<SettleReport>,
    Option<ExcludeReport>,
) {
    let mut rewrites = Vec::new();
    let settled_paths: HashSet<Vec<u8>> = settled
        .iter()
        .flat_map(|s| s.rewrites.iter().map(|r| r.path.clone()))
        .collect();
    let packages = removal.map(|r| {
        rewrites.extend(
            r.rewrites
                .into_iter()
                .filter(|w| !settled_paths.contains(&w.path)),
        );
        r.report
    });
    let database = settled.map(|s| {
        rewrites.extend(s.rewrites);
        s.report
    });
    let dpkg_excluded = excluded.map(|(r, report)| {
        rewrites.extend(r);
        warnings.extend(report.warnings.iter().map(|w| format!("dpkg: {w}")));
        report
    });
    (rewrites, packages, database, dpkg_excluded)
}

/// The packages a removal takes.
fn removed_by(removal: Option<&Removal>) -> HashSet<String> {
    removal
        .map(|r| {
            let p = &r.report;
            p.removed
                .iter()
                .chain(&p.removed_unneeded)
                .chain(&p.autoremoved)
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

/// Settles the package database ([`crate::packages::settle`]): the licences of
/// packages that stay leave `deleted`, what is left of the packages the policy emptied
/// joins it.
fn settle(
    policy: &PolicySet,
    fs: &TreeFs,
    deleted: &mut Vec<(Vec<u8>, usize)>,
    removal: Option<&Removal>,
) -> Result<Option<Settled>> {
    let Some(rule) = policy.emptied_rule() else {
        return Ok(None);
    };
    let set: HashSet<&[u8]> = deleted.iter().map(|(p, _)| p.as_slice()).collect();
    let Some(mut s) = crate::packages::settle::plan(fs, &set, &removed_by(removal))? else {
        return Ok(None);
    };
    drop(set);
    if !s.restore.is_empty() {
        deleted.retain(|(p, _)| !s.restore.contains(p));
    }
    if !s.delete.is_empty() {
        deleted.extend(std::mem::take(&mut s.delete).into_iter().map(|p| (p, rule)));
        // Parents first, in component order, as the policy decides them.
        deleted.sort_by(|a, b| a.0.split(|&c| c == b'/').cmp(b.0.split(|&c| c == b'/')));
    }
    Ok(Some(s))
}

/// Refuses a policy that left nothing but the root: an empty image is never what was
/// meant.
fn refuse_empty(policy: &PolicySet, deleted: &[(Vec<u8>, usize)], tree: &Tree) -> Result<()> {
    if let Some((_, rule)) = deleted.first()
        && tree.nodes.keys().all(|p| p.is_empty())
    {
        return Err(Error::Usage(format!(
            "policy {}: rule {} deletes every file of the image; refusing to write an empty image",
            policy.names,
            policy.rules()[*rule].id
        )));
    }
    Ok(())
}
