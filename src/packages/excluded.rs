//! Keeping dpkg's database truthful when policy rules delete files packages installed
//! (docs, locales, headers...), as Debian's slim images do:
//!
//! - each kept package that lost files gets its `info/PKG.list` and `PKG.md5sums`
//!   without the deleted paths (every other line byte for byte), so `dpkg --verify`
//!   reports nothing missing and `dpkg -S` names no file that is gone. (dpkg 1.21
//!   itself keeps a path its `path-exclude` filtered in `.list`, and `--verify` then
//!   reports it missing; the database here lists what is installed.)
//! - the glob rules that deleted such files become `path-exclude` lines (their keep
//!   globs `path-include` lines after each rule's, and the policy's `[keep]` globs at
//!   the end: dpkg's last matching filter wins) in `/etc/dpkg/dpkg.cfg.d/ocislim`, so a later
//!   `apt-get install` in a derived image does not bring them back. A glob becomes
//!   an fnmatch pattern: `**` becomes `*` (which crosses `/` there), and a glob
//!   naming a folder excludes what is below it too. Computed deletions (closure mode,
//!   npm) have no glob and write no line.
//!
//! Package removal's own database rewrite ([`super::remove`]) is separate: removed
//! packages are not looked at here.

use super::{Budget, Manager, locate, read_text};
use crate::error::{Error, Result};
use crate::layer::fs::{Fs, Stat, normalise};
use crate::layer::synth::{Content, Rewrite};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// The dpkg configuration file written.
pub const CONFIG: &[u8] = b"etc/dpkg/dpkg.cfg.d/ocislim";
/// The file whose owner, mode and mtime the new configuration file takes.
const CONFIG_LIKE: &[u8] = b"etc/dpkg/dpkg.cfg";

/// A glob rule, as the exclusion lines need it.
pub struct GlobRule<'a> {
    /// Its id.
    pub id: &'a str,
    /// Its deletion globs.
    pub delete: &'a [String],
    /// Its own keep globs.
    pub keep: &'a [String],
}

/// What was done to the database.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize)]
pub struct ExcludeReport {
    /// Kept packages that lost files, each with how many of its listed paths went.
    pub packages: BTreeMap<String, usize>,
    /// The rules written as `path-exclude` lines.
    pub rules: Vec<String>,
    /// Every file rewritten or written, from the image root.
    pub rewritten: Vec<String>,
    /// Why something was left as it was.
    pub warnings: Vec<String>,
}

// Long: dpkg's path-exclude semantics in one place: which deleted paths a package
// lists, which rule deleted them, and the filter lines written for the rules; the
// three read the same index of listed paths.
/// Plans the rewrite for the image `fs` whose paths `deleted` (located paths, every
/// deleted path, with the index of the rule deleting it) go; `rules` are the policy's
/// rules by index (`None` for a computed one), `keep` the `[keep]` globs, `removed`
/// the packages a removal takes (left alone here).
pub fn plan(
    fs: &dyn Fs,
    deleted: &[(Vec<u8>, usize)],
    rules: &[Option<GlobRule>],
    keep: &[String],
    removed: &HashSet<String>,
) -> Result<(Vec<Rewrite>, ExcludeReport)> {
    let mut report = ExcludeReport::default();
    let budget = Budget::new();
    let corrupt = |e: String| Error::corrupt("package database", e);
    let Some(db) = super::read_within(fs, &budget).map_err(corrupt)? else {
        return Ok((Vec::new(), report));
    };
    if db.manager != Manager::Dpkg || deleted.is_empty() {
        return Ok((Vec::new(), report));
    }
    let by_rule: std::collections::HashMap<&[u8], usize> =
        deleted.iter().map(|(p, r)| (p.as_slice(), *r)).collect();
    // A database the policy deletes itself (closure mode may) is left to go.
    let gone = |p: &[u8]| {
        crate::layer::fs::resolve(fs, p).is_none_or(|at| by_rule.contains_key(at.as_slice()))
    };
    if gone(super::dpkg::STATUS) {
        return Ok((Vec::new(), report));
    }
    let mut rewrites = Vec::new();
    let mut used_rules: BTreeSet<usize> = BTreeSet::new();
    for p in db.packages.iter().filter(|p| !removed.contains(&p.name)) {
        let lost: HashSet<Vec<u8>> = p
            .files
            .iter()
            .filter_map(|f| locate(fs, f))
            .filter(|at| match by_rule.get(at.as_slice()) {
                Some(r) => {
                    used_rules.insert(*r);
                    true
                }
                None => false,
            })
            .collect();
        if lost.is_empty() {
            continue;
        }
        for ext in ["list", "md5sums"] {
            let Some((path, text)) = info_file(fs, &p.name, &p.arch, ext, &budget)? else {
                continue;
            };
            if by_rule.contains_key(path.as_slice()) {
                continue;
            }
            let mut out = String::with_capacity(text.len());
            let mut dropped = 0;
            for line in text.split_inclusive('\n') {
                let listed = match ext {
                    "list" => line.trim_end_matches('\n'),
                    _ => line
                        .trim_end_matches('\n')
                        .split_once("  ")
                        .map_or("", |(_, p)| p),
                };
                let gone = !listed.is_empty()
                    && locate(fs, &normalise(listed.as_bytes()))
                        .is_some_and(|at| lost.contains(&at));
                if gone {
                    dropped += 1;
                } else {
                    out.push_str(line);
                }
            }
            if dropped > 0 {
                report
                    .rewritten
                    .push(format!("/{}", crate::layer::path::escape(&path)));
                rewrites.push(Rewrite {
                    path: path.clone(),
                    content: Content::File(out.into_bytes()),
                    like: path,
                });
            }
        }
        report.packages.insert(p.name.clone(), lost.len());
    }
    let lines = exclusion_lines(&used_rules, rules, keep, &mut report);
    if !lines.is_empty() {
        let folder = crate::layer::overlay::parent(CONFIG);
        if matches!(fs.stat(CONFIG_LIKE), Some(Stat::File { .. }))
            && matches!(fs.stat(folder), Some(Stat::Dir))
            && !by_rule.contains_key(CONFIG_LIKE)
            && !by_rule.contains_key(folder)
            && fs.stat(CONFIG).is_none()
        {
            report
                .rewritten
                .push(format!("/{}", String::from_utf8_lossy(CONFIG)));
            rewrites.push(Rewrite {
                path: CONFIG.to_vec(),
                content: Content::File(lines.into_bytes()),
                like: CONFIG_LIKE.to_vec(),
            });
        } else {
            report.warnings.push(format!(
                "no path-exclude lines written: /{} exists, or /{} or its folder is missing",
                String::from_utf8_lossy(CONFIG),
                String::from_utf8_lossy(CONFIG_LIKE)
            ));
        }
    }
    rewrites.sort_by(|a, b| a.path.cmp(&b.path));
    report.rewritten.sort();
    Ok((rewrites, report))
}

/// A package's info file `PKG:ARCH.EXT` or `PKG.EXT`, with its text.
fn info_file(
    fs: &dyn Fs,
    name: &str,
    arch: &str,
    ext: &str,
    budget: &Budget,
) -> Result<Option<(Vec<u8>, String)>> {
    for file in [format!("{name}:{arch}.{ext}"), format!("{name}.{ext}")] {
        let mut p = super::dpkg::INFO.to_vec();
        p.push(b'/');
        p.extend_from_slice(file.as_bytes());
        if let Some(Stat::File { .. }) = fs.stat(&p) {
            let text = read_text(fs, &p, budget)
                .map_err(|e| Error::corrupt("package database", e))?
                .unwrap_or_default();
            return Ok(Some((p, text)));
        }
    }
    Ok(None)
}

/// The configuration file's text: the rules in `used`, as dpkg filters.
fn exclusion_lines(
    used: &BTreeSet<usize>,
    rules: &[Option<GlobRule>],
    keep: &[String],
    report: &mut ExcludeReport,
) -> String {
    let mut o = String::from(
        "# Written by ocislim: the files its policy deleted from this image, so that dpkg\n\
         # does not install them again (dpkg.cfg(5); the last matching line wins).\n",
    );
    for r in used
        .iter()
        .filter_map(|&i| rules.get(i).and_then(|r| r.as_ref()))
    {
        report.rules.push(r.id.to_string());
        o += &format!("# rule {}\n", r.id);
        for g in r.delete {
            for p in fnmatch(g, true) {
                o += &format!("path-exclude {p}\n");
            }
        }
        for g in r.keep {
            for p in fnmatch(g, false) {
                o += &format!("path-include {p}\n");
            }
        }
    }
    if report.rules.is_empty() {
        return String::new();
    }
    if !keep.is_empty() {
        o += "# [keep]\n";
    }
    for g in keep {
        for p in fnmatch(g, false) {
            o += &format!("path-include {p}\n");
        }
    }
    o
}

/// A policy glob as dpkg fnmatch patterns: `{a,b}` expanded, `**` as `*`; a deletion
/// glob also names what is below a matched folder.
fn fnmatch(glob: &str, subtree: bool) -> Vec<String> {
    let g = glob.trim_start_matches('/');
    let mut out = Vec::new();
    for g in expand_braces(g) {
        let p = format!("/{}", g.replace("**", "*"));
        let p = p.replace("/*/*", "/*");
        if subtree && !p.ends_with("/*") {
            out.push(p.clone());
            out.push(format!("{p}/*"));
        } else {
            out.push(p);
        }
    }
    out
}

/// `a{b,c}d` as `abd`, `acd` (the first group, recursively; at most 64 results).
fn expand_braces(g: &str) -> Vec<String> {
    let (Some(open), Some(close)) = (g.find('{'), g.find('}')) else {
        return vec![g.to_string()];
    };
    if close < open {
        return vec![g.to_string()];
    }
    // The rest is expanded once (per alternative, it would cost the product of every
    // group's alternatives before the cap).
    let rests = expand_braces(&g[close + 1..]);
    let mut out = Vec::new();
    for alt in g[open + 1..close].split(',') {
        for rest in &rests {
            if out.len() == 64 {
                return out;
            }
            out.push(format!("{}{alt}{rest}", &g[..open]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_as_dpkg_filters() {
        assert_eq!(fnmatch("usr/share/doc/**", true), ["/usr/share/doc/*"]);
        assert_eq!(
            fnmatch("usr/share/man", true),
            ["/usr/share/man", "/usr/share/man/*"]
        );
        assert_eq!(
            fnmatch("usr/share/doc/*/copyright", false),
            ["/usr/share/doc/*/copyright"]
        );
        assert_eq!(
            fnmatch("usr/lib/**/*.a", true),
            ["/usr/lib/*.a", "/usr/lib/*.a/*"]
        );
        assert_eq!(
            fnmatch("usr/{share,lib}/x", false),
            ["/usr/share/x", "/usr/lib/x"]
        );
    }
}
