//! Policies: TOML files of deletion globs, resolved through `extends` and compiled into
//! a [`PolicySet`] before any image byte is read.
//!
//! ```toml
//! description = "..."
//! extends = ["docs", "./more.toml"]   # built-in names, or files relative to this one
//! [[rule]]
//! id = "pip-cache"
//! reason = "..."
//! delete = ["root/.cache/pip/**"]
//! keep = ["..."]                      # exceptions to this rule only
//! [keep]
//! paths = ["usr/share/doc/*/copyright"]   # no rule deletes these, nor their parents
//! [closure]                           # closure mode: delete what the image does not need
//! roots = ["app/**"]                  # kept with all they need, besides the command
//! presets = ["default", "tzdata"]     # runtime presets (deps::closure::PRESETS)
//! [runtime]
//! libraries = ["libfoo.so.1"]         # opened by name at run time (dlopen)
//! [check]
//! ignore = ["usr/lib/python3*/cgi.py"] # broken references `check` reports as ignored
//! [packages]
//! remove = ["build-essential", "*-dev"]   # dpkg packages, by name glob (packages::remove)
//! remove-unless-needed = ["gcc-*"]   # only those no kept package needs
//! autoremove = true                   # and what only they needed
//! [npm]
//! omit-dev = true                     # prune devDependencies (packages::npm)
//! ```
//! Paths are relative to the image root (a leading `/` is accepted and ignored); `*`
//! stays inside one path component and `**` crosses them; a matched directory takes its
//! subtree.

mod account;
mod matcher;
pub mod text;

pub use account::{DeletedPath, PolicyOutcome, RuleOutcome, apply};

pub use matcher::{Computed, Decision, PolicySet, Rule};

use crate::deps::closure::{ClosureOptions, DEFAULT_PRESETS, Preset};
use crate::error::{Error, Result};
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use serde::Deserialize;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The policies shipped in `policies/`, embedded in the binary.
pub const BUILTIN: &[(&str, &str)] = &[
    ("default", include_str!("../../policies/default.toml")),
    ("aggressive", include_str!("../../policies/aggressive.toml")),
    ("apt", include_str!("../../policies/apt.toml")),
    ("docs", include_str!("../../policies/docs.toml")),
    ("locales", include_str!("../../policies/locales.toml")),
    ("python", include_str!("../../policies/python.toml")),
    ("node", include_str!("../../policies/node.toml")),
    ("headers", include_str!("../../policies/headers.toml")),
    ("toolchain", include_str!("../../policies/toolchain.toml")),
    ("logs", include_str!("../../policies/logs.toml")),
    ("caches", include_str!("../../policies/caches.toml")),
    ("closure", include_str!("../../policies/closure.toml")),
];

/// The rule closure mode deletes by, last in a policy set's rules.
pub const CLOSURE_RULE: &str = "closure";

/// The rule package removal deletes by.
pub const PACKAGES_RULE: &str = "packages";

/// The preset name that stands for [`DEFAULT_PRESETS`] in `[closure] presets`.
pub const DEFAULT_PRESET_NAME: &str = "default";

/// The name that means "delete nothing": a pure squash.
pub const NONE: &str = "none";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    description: Option<String>,
    #[serde(default)]
    extends: Vec<String>,
    #[serde(default, rename = "rule")]
    rules: Vec<RuleFile>,
    keep: Option<KeepFile>,
    closure: Option<ClosureFile>,
    runtime: Option<RuntimeFile>,
    packages: Option<PackagesFile>,
    npm: Option<NpmFile>,
    check: Option<CheckFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckFile {
    #[serde(default)]
    ignore: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct NpmFile {
    #[serde(default)]
    omit_dev: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(rename_all = "kebab-case")]
struct PackagesFile {
    #[serde(default)]
    remove: Vec<String>,
    #[serde(default)]
    remove_unless_needed: Vec<String>,
    #[serde(default)]
    autoremove: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClosureFile {
    #[serde(default)]
    roots: Vec<String>,
    presets: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuntimeFile {
    #[serde(default)]
    libraries: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    id: String,
    reason: Option<String>,
    #[serde(default)]
    delete: Vec<String>,
    #[serde(default)]
    keep: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeepFile {
    #[serde(default)]
    paths: Vec<String>,
}

/// Where a policy came from.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Origin {
    Builtin(&'static str),
    File(PathBuf),
    /// `--keep GLOB` and `--delete GLOB` on the command line, as one policy's text.
    Flags(String),
}

impl Origin {
    fn display(&self) -> String {
        match self {
            Origin::Builtin(n) => format!("built-in policy {n}"),
            Origin::File(p) => p.display().to_string(),
            Origin::Flags(_) => "--keep/--delete".into(),
        }
    }
}

/// A rule as written, with where it came from (for `policy show` and errors).
#[derive(Clone, Debug)]
pub struct RuleSpec {
    /// Its id.
    pub id: String,
    /// Why deleting is safe.
    pub reason: String,
    /// Deletion globs.
    pub delete: Vec<String>,
    /// Rule-local exceptions.
    pub keep: Vec<String>,
    /// The policy that defined it.
    pub source: String,
}

/// Policies resolved through `extends`, before compiling.
#[derive(Clone, Debug, Default)]
pub struct PolicySetBuilder {
    names: Vec<String>,
    rules: Vec<RuleSpec>,
    keep: Vec<(String, String)>,
    warnings: Vec<String>,
    /// Closure mode, when a policy has a `[closure]` table: its roots and presets.
    closure: Option<(Vec<String>, BTreeSet<Preset>)>,
    libraries: Vec<String>,
    /// `[packages]`: what to remove.
    packages: Option<PackagesSpec>,
    /// `[npm] omit-dev`.
    npm_omit_dev: bool,
    /// `[check] ignore`: path globs of files whose broken references `check` reports
    /// as ignored.
    check_ignore: Vec<String>,
    /// Every policy loaded so far: one reached again through `extends` (a diamond) is
    /// loaded once, so loading costs the policies' size, not the number of paths.
    loaded: BTreeSet<String>,
    /// Each file read and its text.
    sources: Vec<(String, String)>,
}

/// Deepest chain of `extends` followed (the shipped policies nest two deep).
const MAX_EXTENDS_DEPTH: usize = 32;
/// Largest policy file read (the shipped ones are a few KiB): parsing is bounded
/// before any table is counted.
const MAX_POLICY_FILE: u64 = 1 << 20;

/// `[packages]`, merged over every policy.
#[derive(Clone, Debug, Default)]
pub struct PackagesSpec {
    /// `remove`: refused when a kept package needs one.
    pub remove: Vec<String>,
    /// `remove-unless-needed`: left installed when a kept package needs one.
    pub unless_needed: Vec<String>,
    /// `autoremove`.
    pub autoremove: bool,
}

/// The last line holding `needle` (a duplicate's, when it is there twice).
fn line_of_last(text: &str, needle: &str) -> usize {
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.contains(needle))
        .last()
        .map_or(0, |(i, _)| i + 1)
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .map_or(0, |i| i + 1)
}

fn policy_error(
    file: &str,
    line: usize,
    rule: &str,
    glob: &str,
    reason: impl std::fmt::Display,
) -> Error {
    Error::Policy {
        file: file.to_string(),
        line,
        rule: rule.to_string(),
        glob: glob.to_string(),
        reason: reason.to_string(),
    }
}

/// Why a syntactically valid glob can never match a normalised path, if it cannot.
fn never_matches(glob: &str) -> Option<&'static str> {
    let g = glob.trim_start_matches('/');
    if g.split('/').any(|c| c.contains("**") && c != "**") {
        return Some("`**` only crosses directories as a whole path component (`a/**/b`, `**/x`)");
    }
    if g.ends_with('/') {
        return Some("paths never end with `/`; drop it (a matched directory takes its subtree)");
    }
    if g.split('/').any(|c| c == "." || c == ".." || c.is_empty()) {
        return Some("paths are normalised: no `.`, `..` or empty components");
    }
    None
}

impl PolicySetBuilder {
    /// Adds a policy by built-in name or file path, resolving `extends`.
    pub fn add(&mut self, name_or_path: &str) -> Result<&mut Self> {
        if name_or_path == NONE {
            self.names.push(NONE.into());
            return Ok(self);
        }
        let origin = resolve(name_or_path, None)?;
        self.names.push(name_or_path.to_string());
        self.load(origin, &mut Vec::new())?;
        Ok(self)
    }

    /// Adds `--keep GLOB`s (global keep globs, as `[keep] paths`) and `--delete GLOB`s
    /// (one rule, `cli-delete`), for a one-off: checked and recorded as a policy file
    /// would be.
    pub fn add_flags(&mut self, keep: &[String], delete: &[String]) -> Result<&mut Self> {
        if keep.is_empty() && delete.is_empty() {
            return Ok(self);
        }
        let list = |globs: &[String]| -> String {
            let quoted: Vec<String> = globs
                .iter()
                .map(|g| toml::Value::String(g.clone()).to_string())
                .collect();
            format!("[{}]", quoted.join(", "))
        };
        let mut text = String::new();
        if !delete.is_empty() {
            text += &format!(
                "[[rule]]\nid = \"cli-delete\"\nreason = \"--delete on the command line\"\ndelete = {}\n",
                list(delete)
            );
        }
        if !keep.is_empty() {
            text += &format!("[keep]\npaths = {}\n", list(keep));
        }
        self.names.push("--keep/--delete".into());
        self.load(Origin::Flags(text), &mut Vec::new())?;
        Ok(self)
    }

    fn load(&mut self, origin: Origin, stack: &mut Vec<Origin>) -> Result<()> {
        if !self.enter(&origin, stack)? {
            return Ok(());
        }
        let file = origin.display();
        let text = match &origin {
            Origin::Builtin(n) => BUILTIN
                .iter()
                .find(|(b, _)| b == n)
                .map(|(_, t)| t.to_string())
                .expect("resolved built-in"),
            Origin::File(p) => read_policy_file(p)?,
            Origin::Flags(text) => text.clone(),
        };
        let mut parsed: PolicyFile = toml::from_str(&text).map_err(|e| {
            let line = e
                .span()
                .map_or(0, |s| text[..s.start].matches('\n').count() + 1);
            policy_error(&file, line, "", "", e.message())
        })?;
        stack.push(origin.clone());
        let base = match &origin {
            Origin::File(p) => p.parent().map(Path::to_path_buf),
            Origin::Builtin(_) | Origin::Flags(_) => None,
        };
        for parent in &parsed.extends {
            let o = resolve(parent, base.as_deref()).map_err(|e| match e {
                Error::Usage(reason) => policy_error(&file, line_of(&text, parent), "", "", reason),
                other => other,
            })?;
            self.load(o, stack)?;
        }
        stack.pop();
        self.sources.push((file.clone(), text.clone()));
        let rules = std::mem::take(&mut parsed.rules);
        self.add_rules(&file, &text, rules)?;
        self.add_tables(&file, &text, parsed)
    }

    /// Whether `origin` is to be read now: an extends cycle or nesting past the limit is
    /// an error, and a file reached again through another extends is read once.
    fn enter(&mut self, origin: &Origin, stack: &[Origin]) -> Result<bool> {
        if let Some(i) = stack.iter().position(|o| o == origin) {
            let chain: Vec<String> = stack[i..]
                .iter()
                .chain([origin])
                .map(Origin::display)
                .collect();
            return Err(policy_error(
                &origin.display(),
                0,
                "",
                "",
                format!("extends cycle: {}", chain.join(" -> ")),
            ));
        }
        let file = origin.display();
        if !self.loaded.insert(file.clone()) {
            return Ok(false); // reached again through another extends: loaded once
        }
        if stack.len() >= MAX_EXTENDS_DEPTH {
            return Err(policy_error(
                &file,
                0,
                "",
                "",
                format!("extends nested deeper than {MAX_EXTENDS_DEPTH}"),
            ));
        }
        Ok(true)
    }

    /// A file's `[[rule]]`s, each id once (a rule reached twice through extends counts
    /// once), at most [`matcher::MAX_RULES`] in all.
    fn add_rules(&mut self, file: &str, text: &str, rules: Vec<RuleFile>) -> Result<()> {
        if rules.len() > matcher::MAX_RULES {
            return Err(Error::Usage(format!(
                "policy {file}: {} rules; at most {} can be applied at once",
                rules.len(),
                matcher::MAX_RULES
            )));
        }
        for r in rules {
            if r.id.is_empty() {
                return Err(policy_error(
                    file,
                    line_of(text, "[[rule]]"),
                    "",
                    "",
                    "a rule needs an id",
                ));
            }
            if let Some(x) = self.rules.iter().find(|x| x.id == r.id) {
                // The same rule in two policies (`pip-cache` in `default` and `python`)
                // counts once; two rules under one id would silently lose one.
                let same = x.delete == r.delete
                    && x.keep == r.keep
                    && Some(&x.reason) == r.reason.as_ref().or(Some(&String::new()));
                if same && x.source != file {
                    continue;
                }
                let place = if x.source == file {
                    "earlier in this file".to_string()
                } else {
                    format!("by {}", x.source)
                };
                return Err(policy_error(
                    file,
                    line_of_last(text, &format!("\"{}\"", r.id)),
                    &r.id,
                    "",
                    format!(
                        "rule id {:?} is already defined {place}; give this rule an id of its own",
                        r.id
                    ),
                ));
            }
            for g in r.delete.iter().chain(&r.keep) {
                self.check_glob(file, text, &r.id, g)?;
            }
            self.rules.push(RuleSpec {
                id: r.id,
                reason: r.reason.unwrap_or_default(),
                delete: r.delete,
                keep: r.keep,
                source: file.to_string(),
            });
            // Refused here, not only when built: the id scan above stays bounded.
            if self.rules.len() > matcher::MAX_RULES {
                return Err(Error::Usage(format!(
                    "policy {file}: more than {} rules with the policies it extends; at most {} can be applied at once",
                    matcher::MAX_RULES,
                    matcher::MAX_RULES
                )));
            }
        }
        Ok(())
    }

    /// A file's tables: `[keep]`, `[closure]`, `[packages]`, `[npm]`, `[runtime]`,
    /// `[check]`.
    fn add_tables(&mut self, file: &str, text: &str, parsed: PolicyFile) -> Result<()> {
        for g in parsed.keep.map(|k| k.paths).unwrap_or_default() {
            self.check_glob(file, text, "[keep]", &g)?;
            self.keep.push((g, file.to_string()));
        }
        if let Some(c) = parsed.closure {
            self.add_closure(file, text, c)?;
        }
        if let Some(p) = parsed.packages {
            for g in p.remove.iter().chain(&p.remove_unless_needed) {
                if let Err(e) = globset::Glob::new(g) {
                    let line = line_of(text, &format!("\"{g}\""));
                    return Err(policy_error(file, line, "[packages]", g, e));
                }
            }
            let spec = self.packages.get_or_insert_with(Default::default);
            spec.remove.extend(p.remove);
            spec.unless_needed.extend(p.remove_unless_needed);
            spec.autoremove |= p.autoremove;
        }
        if let Some(n) = parsed.npm {
            self.npm_omit_dev |= n.omit_dev;
        }
        for g in parsed.check.map(|c| c.ignore).unwrap_or_default() {
            self.check_glob(file, text, "[check]", &g)?;
            if !self.check_ignore.contains(&g) {
                self.check_ignore.push(g);
            }
        }
        for l in parsed.runtime.map(|r| r.libraries).unwrap_or_default() {
            if l.is_empty() || l.contains('/') {
                let line = line_of(text, &format!("\"{l}\""));
                return Err(policy_error(
                    file,
                    line,
                    "[runtime]",
                    &l,
                    "a library name (`libfoo.so.1`), not a path",
                ));
            }
            if !self.libraries.contains(&l) {
                self.libraries.push(l);
            }
        }
        Ok(())
    }

    /// A `[closure]` table: roots add up, presets too (`default` standing for
    /// [`DEFAULT_PRESETS`], the set when a table names none).
    fn add_closure(&mut self, file: &str, text: &str, c: ClosureFile) -> Result<()> {
        for g in &c.roots {
            self.check_glob(file, text, "[closure]", g)?;
        }
        let mut presets = BTreeSet::new();
        for name in c
            .presets
            .unwrap_or_else(|| vec![DEFAULT_PRESET_NAME.into()])
        {
            if name == DEFAULT_PRESET_NAME {
                presets.extend(DEFAULT_PRESETS.iter().copied());
                continue;
            }
            let Some(p) = Preset::named(&name) else {
                let names: Vec<&str> = crate::deps::closure::PRESETS.iter().map(|p| p.0).collect();
                return Err(policy_error(
                    file,
                    line_of(text, &format!("\"{name}\"")),
                    "[closure]",
                    "",
                    format!(
                        "unknown preset {name:?}; presets: default, {}",
                        names.join(", ")
                    ),
                ));
            };
            presets.insert(p);
        }
        let (roots, all) = self.closure.get_or_insert_with(Default::default);
        roots.extend(c.roots.into_iter().filter(|g| never_matches(g).is_none()));
        all.extend(presets);
        Ok(())
    }

    fn check_glob(&mut self, file: &str, text: &str, rule: &str, glob: &str) -> Result<()> {
        let line = line_of(text, &format!("\"{glob}\""));
        if let Some(why) = never_matches(glob) {
            self.warnings.push(format!(
                "{file}:{line}: rule {rule}: glob {glob:?} can never match: {why}"
            ));
            return Ok(());
        }
        compile(glob).map_err(|e| policy_error(file, line, rule, glob, e))?;
        Ok(())
    }

    /// Warnings found while loading (globs that can never match).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The resolved rules, in order.
    pub fn rules(&self) -> &[RuleSpec] {
        &self.rules
    }

    /// The global keep globs with their sources.
    pub fn keep(&self) -> &[(String, String)] {
        &self.keep
    }

    /// Closure mode's roots and presets, when a policy asks for it.
    pub fn closure(&self) -> Option<(&[String], &BTreeSet<Preset>)> {
        self.closure.as_ref().map(|(r, p)| (r.as_slice(), p))
    }

    /// `[packages]`, when a policy removes packages.
    pub fn packages(&self) -> Option<&PackagesSpec> {
        self.packages.as_ref()
    }

    /// Whether a policy prunes npm's devDependencies (`[npm] omit-dev`).
    pub fn npm_omit_dev(&self) -> bool {
        self.npm_omit_dev
    }

    /// Libraries opened by name at run time (`[runtime] libraries`).
    pub fn libraries(&self) -> &[String] {
        &self.libraries
    }

    /// `[check] ignore` globs.
    pub fn check_ignore(&self) -> &[String] {
        &self.check_ignore
    }

    // Long: the compiled policy's fields, one block per computed rule (packages, npm,
    // closure) pushing its rule and keeping its index; the blocks share the rule list.
    /// Compiles the globs; more rules than can be applied at once are refused here,
    /// by `policy check` and before any image byte is read.
    pub fn build(&self) -> Result<PolicySet> {
        let rules = self.rules.len()
            + self.closure.is_some() as usize
            + self.packages.is_some() as usize
            + self.npm_omit_dev as usize;
        if rules > matcher::MAX_RULES {
            return Err(Error::Usage(format!(
                "policy {}: {} rules; at most {} can be applied at once",
                self.names.join("+"),
                rules,
                matcher::MAX_RULES
            )));
        }
        let (delete, delete_rule) = glob_set(
            self.rules
                .iter()
                .enumerate()
                .flat_map(|(i, r)| r.delete.iter().map(move |g| (g, i))),
        )?;
        let (local_keep, local_keep_rule) = glob_set(
            self.rules
                .iter()
                .enumerate()
                .flat_map(|(i, r)| r.keep.iter().map(move |g| (g, i))),
        )?;
        let (keep, _) = glob_set(self.keep.iter().map(|(g, _)| (g, 0)))?;
        let names = if self.names.is_empty() {
            NONE.to_string()
        } else {
            self.names.join("+")
        };
        let mut rules: Vec<Rule> = self
            .rules
            .iter()
            .map(|r| Rule {
                id: r.id.clone(),
                reason: r.reason.clone(),
                globs: (r.delete.clone(), r.keep.clone()),
            })
            .collect();
        let packages = match &self.packages {
            Some(spec) => {
                rules.push(Rule {
                    id: PACKAGES_RULE.into(),
                    reason: "files only the removed packages own, and their database entries"
                        .into(),
                    globs: Default::default(),
                });
                Some(removal_options(spec)?)
            }
            None => None,
        };
        let packages_rule = packages.as_ref().map(|_| rules.len() - 1);
        if self.npm_omit_dev {
            rules.push(Rule {
                id: crate::packages::npm::RULE.into(),
                reason: "packages a project's lockfile marks dev and nothing kept needs at run time (npm prune --omit=dev)"
                    .into(),
                globs: Default::default(),
            });
        }
        let npm_rule = self.npm_omit_dev.then(|| rules.len() - 1);
        let closure = match &self.closure {
            Some((roots, presets)) => {
                rules.push(Rule {
                    id: CLOSURE_RULE.into(),
                    reason: "closure mode: nothing the command, the closure roots or a runtime preset needs"
                        .into(),
                    globs: Default::default(),
                });
                let (root_set, _) = glob_set(roots.iter().map(|g| (g, 0)))?;
                Some(ClosureOptions {
                    roots: roots.clone(),
                    root_set,
                    presets: presets.clone(),
                    libraries: self.libraries.clone(),
                })
            }
            None => None,
        };
        let closure_rule = closure.as_ref().map(|_| rules.len() - 1);
        // Every policy that deletes anything may empty a package: its database entry
        // and what is left of it go by this rule (packages::settle).
        let emptied_rule = (!rules.is_empty()).then(|| {
            rules.push(Rule {
                id: crate::packages::settle::RULE.into(),
                reason: "what is left of packages the policy emptied (no file outside docs, no dependent that stays): their database entries and documents, as dpkg --purge takes them"
                    .into(),
                globs: Default::default(),
            });
            rules.len() - 1
        });
        Ok(PolicySet {
            emptied_rule,
            names,
            closure,
            closure_rule,
            packages,
            packages_rule,
            npm_rule,
            libraries: self.libraries.clone(),
            check_ignore: self.check_ignore.clone(),
            rules,
            delete,
            delete_rule,
            local_keep,
            local_keep_rule,
            keep,
            keep_globs: self.keep.iter().map(|(g, _)| g.clone()).collect(),
            warnings: self.warnings.clone(),
            sources: self.sources.clone(),
        })
    }
}

/// The globs compiled into one set, each with the index of the rule it belongs to (globs
/// that can never match are left out: `policy check` warned of them).
fn glob_set<'a>(globs: impl Iterator<Item = (&'a String, usize)>) -> Result<(GlobSet, Vec<usize>)> {
    let mut b = GlobSetBuilder::new();
    let mut owner = Vec::new();
    for (g, rule) in globs.filter(|(g, _)| never_matches(g).is_none()) {
        b.add(compile(g).map_err(|e| policy_error("", 0, "", g, e))?);
        owner.push(rule);
    }
    Ok((
        b.build().map_err(|e| policy_error("", 0, "", "", e))?,
        owner,
    ))
}

/// `[packages]`: the package name globs compiled.
fn removal_options(spec: &PackagesSpec) -> Result<crate::packages::remove::RemovalOptions> {
    let names = |globs: &[String]| -> Result<GlobSet> {
        let mut b = GlobSetBuilder::new();
        for g in globs {
            b.add(globset::Glob::new(g).map_err(|e| policy_error("", 0, "[packages]", g, e))?);
        }
        b.build()
            .map_err(|e| policy_error("", 0, "[packages]", "", e))
    };
    Ok(crate::packages::remove::RemovalOptions {
        patterns: spec.remove.clone(),
        set: names(&spec.remove)?,
        unless_needed: spec.unless_needed.clone(),
        unless_needed_set: names(&spec.unless_needed)?,
        autoremove: spec.autoremove,
    })
}

fn compile(glob: &str) -> std::result::Result<globset::Glob, globset::Error> {
    GlobBuilder::new(glob.trim_start_matches('/'))
        .literal_separator(true)
        .backslash_escape(true)
        .build()
}

/// A policy file's text, refused past [`MAX_POLICY_FILE`] bytes without reading more.
fn read_policy_file(p: &Path) -> Result<String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    fs_err::File::open(p)?
        .take(MAX_POLICY_FILE + 1)
        .read_to_end(&mut bytes)?;
    let too_big = bytes.len() as u64 > MAX_POLICY_FILE;
    let text = String::from_utf8(bytes).ok().filter(|_| !too_big);
    text.ok_or_else(|| {
        let why = if too_big {
            format!("larger than {MAX_POLICY_FILE} bytes")
        } else {
            "not UTF-8 text".to_string()
        };
        policy_error(&p.display().to_string(), 0, "", "", why)
    })
}

/// A built-in name or a file path (relative to `base` for `extends`).
fn resolve(name: &str, base: Option<&Path>) -> Result<Origin> {
    if let Some((n, _)) = BUILTIN.iter().find(|(n, _)| *n == name) {
        return Ok(Origin::Builtin(n));
    }
    let looks_like_path = name.contains('/') || name.ends_with(".toml");
    let path = match base {
        Some(b) if Path::new(name).is_relative() => b.join(name),
        _ => PathBuf::from(name),
    };
    if looks_like_path || path.is_file() {
        if !path.is_file() {
            return Err(Error::Usage(format!(
                "policy file {} does not exist",
                path.display()
            )));
        }
        return Ok(Origin::File(path.canonicalize()?));
    }
    let names: Vec<&str> = BUILTIN.iter().map(|(n, _)| *n).chain([NONE]).collect();
    Err(Error::Usage(format!(
        "unknown policy {name:?}; built-in policies: {}",
        names.join(", ")
    )))
}

/// The description of a built-in policy.
pub fn describe(name: &str) -> Option<String> {
    let text = BUILTIN.iter().find(|(n, _)| *n == name)?.1;
    let parsed: PolicyFile = toml::from_str(text).ok()?;
    parsed.description
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_policy_parses_and_compiles() {
        for (name, _) in BUILTIN {
            let mut b = PolicySetBuilder::default();
            b.add(name).unwrap();
            assert!(b.warnings().is_empty(), "{name}: {:?}", b.warnings());
            b.build().unwrap();
            assert!(describe(name).is_some(), "{name} has no description");
        }
    }

    #[test]
    fn never_matching_globs_are_named() {
        for (g, bad) in [
            ("doc**", true),
            ("a/**/b", false),
            ("**/x", false),
            ("dir/", true),
            ("./a", true),
            ("/usr/**", false),
            ("a//b", true),
        ] {
            assert_eq!(never_matches(g).is_some(), bad, "{g}");
        }
    }

    fn load(text: &str) -> Result<PolicySetBuilder> {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("app.toml");
        std::fs::write(&f, text).unwrap();
        let mut b = PolicySetBuilder::default();
        b.add(f.to_str().unwrap())?;
        Ok(b)
    }

    #[test]
    fn one_id_names_one_rule() {
        let twice = "[[rule]]\nid = \"a\"\ndelete = [\"x/**\"]\n\n[[rule]]\nid = \"a\"\ndelete = [\"y/**\"]\n";
        let e = load(twice).err().unwrap().to_string();
        assert!(
            e.contains(":6:") && e.contains("already defined earlier in this file"),
            "{e}"
        );
        let over = "extends = [\"default\"]\n[[rule]]\nid = \"doc\"\ndelete = [\"opt/doc/**\"]\n";
        let e = load(over).err().unwrap().to_string();
        assert!(e.contains("already defined by built-in policy docs"), "{e}");
        // The same rule in two built-ins (`pip-cache` in default and python) is one rule.
        let b = load("extends = [\"default\", \"python\", \"node\"]\n").unwrap();
        assert_eq!(b.rules.iter().filter(|r| r.id == "pip-cache").count(), 1);
    }

    #[test]
    fn closure_tables_add_roots_presets_libraries_and_a_last_rule() {
        let b = load(concat!(
            "extends = [\"closure\", \"python\"]\n",
            "[closure]\nroots = [\"srv/**\"]\npresets = [\"default\", \"tzdata\"]\n",
            "[runtime]\nlibraries = [\"libfoo.so.1\"]\n",
        ))
        .unwrap();
        let set = b.build().unwrap();
        let ids: Vec<&str> = set
            .rules()
            .iter()
            .rev()
            .take(2)
            .map(|r| r.id.as_str())
            .collect();
        assert_eq!(ids, [crate::packages::settle::RULE, CLOSURE_RULE]);
        assert_eq!(set.rules().len(), b.rules().len() + 2);
        let c = set.closure.as_ref().unwrap();
        assert!(c.presets.contains(&Preset::Tzdata) && c.presets.contains(&Preset::Python));
        assert!(!c.presets.contains(&Preset::Gconv));
        assert_eq!(c.roots, ["srv/**"]);
        assert!(c.root_set.is_match("srv/app/x"));
        assert_eq!(set.libraries, ["libfoo.so.1"]);
        assert!(
            load("[[rule]]\nid = \"x\"\n")
                .unwrap()
                .build()
                .unwrap()
                .closure
                .is_none()
        );
    }

    #[test]
    fn bad_closure_and_runtime_entries_name_file_and_line() {
        let err = load("[closure]\npresets = [\"pyhton\"]\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("app.toml:2")
                && err.contains("unknown preset \"pyhton\"")
                && err.contains("python"),
            "{err}"
        );
        let err = load("\n[runtime]\nlibraries = [\"/usr/lib/libx.so\"]\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("app.toml:3") && err.contains("not a path"),
            "{err}"
        );
        let err = load("[closure]\nroots = [\"a[\"]\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("app.toml:2") && err.contains("a["), "{err}");
    }

    #[test]
    fn packages_tables_add_a_rule_and_bad_globs_name_the_line() {
        let b = load("[packages]\nremove = [\"gcc-*\", \"make\"]\nautoremove = true\n").unwrap();
        let set = b.build().unwrap();
        assert_eq!(set.rules()[set.rules().len() - 2].id, PACKAGES_RULE);
        let p = set.packages.as_ref().unwrap();
        assert!(p.autoremove && p.set.is_match("gcc-12") && !p.set.is_match("libgcc-s1"));
        let both = load("extends = [\"closure\"]\n[packages]\nremove = [\"x\"]\n")
            .unwrap()
            .build()
            .unwrap();
        let ids: Vec<&str> = both.rules().iter().map(|r| r.id.as_str()).collect();
        assert_eq!(
            ids,
            [PACKAGES_RULE, CLOSURE_RULE, crate::packages::settle::RULE]
        );
        let err = load("\n[packages]\nremove = [\"gcc[\"]\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("app.toml:3") && err.contains("gcc["), "{err}");
    }

    #[test]
    fn unknown_policy_lists_the_builtins() {
        let err = PolicySetBuilder::default()
            .add("pythn")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unknown policy \"pythn\"")
                && err.contains("python")
                && err.contains("aggressive"),
            "{err}"
        );
    }
}
