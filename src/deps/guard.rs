//! The guard every slimming `squash` runs: the merged filesystem is analysed before and
//! after the policy, and a reference that resolved before and does not after is blamed
//! on the rule and path whose deletion broke it. References already broken in the
//! input are reported as such, never blamed on the policy. Symlinks that resolved
//! before and dangle after are listed apart: a program's libraries, interpreter and
//! entrypoint are resolved through symlinks already, so a dangling link that matters
//! breaks one of those too.

use super::loader::ElfCache;
use super::{Analysis, Broken, RuntimeLib, analyze_with};
use crate::layer::fs::{Fs, Stat, normalise, resolve};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};

/// The analysis of the image before the policy, as [`compare`] needs it: every load
/// listed, every file's needs recorded.
pub fn before(fs: &dyn Fs, config: &Value, libraries: &[String], elf: &ElfCache) -> Analysis {
    analyze_with(fs, config, true, libraries, elf)
}

/// A reference the policy broke.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
pub struct Regression {
    /// Who needs it.
    pub who: String,
    /// What it needs.
    pub needs: String,
    /// Where it was found before the policy ran.
    pub was: String,
    /// The rule that deleted it (or a folder above it), when one did.
    pub rule: Option<String>,
    /// The deleted path.
    pub deleted: Option<String>,
}

impl std::fmt::Display for Regression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} needs {} (was {}", self.who, self.needs, self.was)?;
        match (&self.rule, &self.deleted) {
            (Some(r), Some(d)) => write!(f, ", deleted by rule `{r}` at {d})"),
            _ => write!(f, ")"),
        }
    }
}

/// What the guard found.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize)]
pub struct GuardReport {
    /// References the policy broke: an error unless `--allow-broken`.
    pub broken_by_policy: Vec<Regression>,
    /// Symlinks whose target the policy deleted (an `/etc/alternatives` link to a man
    /// page): reported, not an error, since no program's load, interpreter or
    /// entrypoint goes through them (those are checked above).
    pub links_left_dangling: Vec<Regression>,
    /// References broken in the input already.
    pub broken_in_input: Vec<Broken>,
}

/// Compares the image before (`before`) and after (`after`) the policy. `deleted` is
/// the policy's decisions (path, rule index) and the rules' names; `libraries` the
/// policy's runtime libraries. One ELF cache serves both views (and the closure's
/// reading): the policy only deletes, so a path the slimmed image holds has the merged
/// image's bytes, and each ELF file is parsed once. `was` is [`before`]'s analysis when
/// the caller has it already (package removal reads its needs).
pub fn compare(
    before: &dyn Fs,
    after: &dyn Fs,
    config: &Value,
    (deleted, rules): (&[(Vec<u8>, usize)], &[String]),
    libraries: &[String],
    elf: &ElfCache,
    was: Option<Analysis>,
) -> GuardReport {
    let now = || analyze_with(after, config, false, libraries, elf);
    let (was, now) = match was {
        Some(was) => (was, now()),
        None => rayon::join(|| self::before(before, config, libraries, elf), now),
    };
    let old: BTreeSet<(&str, &str)> = was
        .broken
        .iter()
        .map(|b| (b.who.as_str(), b.needs.as_str()))
        .collect();
    // Where each library of each load was found before, by (program, name).
    let mut found: HashMap<(&str, &str), &str> = HashMap::new();
    for l in &was.loads {
        for (name, at) in &l.libs {
            if let Some(at) = at {
                found.entry((l.path.as_str(), name.as_str())).or_insert(at);
            }
        }
    }
    // The deleted path that is the target or a folder above it: a lookup per ancestor,
    // so many dangling links into a large deletion cost no more than their depth.
    let by_path: HashMap<&[u8], usize> = deleted.iter().map(|(d, r)| (d.as_slice(), *r)).collect();
    let cause = |target: &[u8]| -> Option<(String, String)> {
        let mut p = resolve(before, &normalise(target)).unwrap_or_else(|| normalise(target));
        loop {
            if let Some(r) = by_path.get(p.as_slice()) {
                return Some((
                    rules[*r].clone(),
                    format!("/{}", crate::layer::path::escape(&p)),
                ));
            }
            if p.is_empty() {
                return None;
            }
            p.truncate(crate::layer::overlay::parent(&p).len());
        }
    };
    let mut report = GuardReport {
        broken_in_input: was.broken.clone(),
        ..GuardReport::default()
    };
    for b in now
        .broken
        .iter()
        .filter(|b| !old.contains(&(b.who.as_str(), b.needs.as_str())))
    {
        // `who` may read "/prog (through /lib)": the program is the first word.
        let prog = b.who.split(" (through ").next().unwrap_or(&b.who);
        let was_at = found
            .get(&(prog, b.needs.as_str()))
            .map(|s| s.to_string())
            .or_else(|| b.needs.starts_with('/').then(|| b.needs.clone()))
            .or_else(|| which_before(before, config, &b.needs))
            .unwrap_or_else(|| "in the input".into());
        let (rule, path) = cause(was_at.as_bytes()).unzip();
        report.broken_by_policy.push(Regression {
            who: b.who.clone(),
            needs: b.needs.clone(),
            was: was_at,
            rule,
            deleted: path,
        });
    }
    report
        .broken_by_policy
        .extend(runtime_lost(&was.runtime, &now.runtime, &cause));
    report.links_left_dangling = dangling(before, after, &cause);
    report.broken_by_policy.sort();
    report
}

/// A program name found through the config's `PATH` in the image before the policy.
fn which_before(fs: &dyn Fs, config: &Value, name: &str) -> Option<String> {
    let dirs = super::path_dirs(&super::env(config));
    super::which(fs, &dirs, name).map(|p| format!("/{}", crate::layer::path::escape(&p)))
}

/// The rule and path whose deletion took a target away.
type Cause<'a> = dyn Fn(&[u8]) -> Option<(String, String)> + 'a;

/// Libraries a C library still in the image opens by name at run time, found before
/// and not after.
fn runtime_lost(was: &[RuntimeLib], now: &[RuntimeLib], cause: &Cause) -> Vec<Regression> {
    let now: HashMap<(&str, &str), &Option<String>> = now
        .iter()
        .map(|r| ((r.by.as_str(), r.name.as_str()), &r.at))
        .collect();
    was.iter()
        .filter_map(|r| {
            let at = r.at.as_ref()?;
            matches!(now.get(&(r.by.as_str(), r.name.as_str())), Some(None)).then(|| {
                let (rule, deleted) = cause(at.as_bytes()).unzip();
                Regression {
                    who: format!("{} (opens it by name at run time)", r.by),
                    needs: r.name.clone(),
                    was: at.clone(),
                    rule,
                    deleted,
                }
            })
        })
        .collect()
}

/// Symlinks still in the image that resolved before and dangle now.
fn dangling(before: &dyn Fs, after: &dyn Fs, cause: &Cause) -> Vec<Regression> {
    after
        .symlinks()
        .into_iter()
        .filter(|p| resolve(after, p).is_none())
        .filter_map(|p| {
            let target = resolve(before, &p)?;
            let Some(Stat::Symlink(t)) = after.stat(&p) else {
                return None;
            };
            let (rule, deleted) = cause(&target).unzip();
            Some(Regression {
                who: format!("/{}", crate::layer::path::escape(&p)),
                needs: format!("its target {}", crate::layer::path::escape(&t)),
                was: format!("/{}", crate::layer::path::escape(&target)),
                rule,
                deleted,
            })
        })
        .collect()
}
