//! A compiled policy set and its decision over a merged tree.
//!
//! A path is deleted by the first rule whose `delete` globs match it or an ancestor
//! (a matched directory takes its subtree), unless a keep glob (the global `[keep]`,
//! or the rule's own `keep`) matches it or an ancestor, or it is the ancestor of a
//! kept path (kept paths keep their parent directories). Paths are visited parents
//! first, so each decision reads its parent's.

use crate::deps::closure::{Closure, ClosureOptions};
use crate::error::Result;
use crate::layer::overlay::Tree;
use crate::packages::npm::Prune;
use crate::packages::remove::Removal;
use globset::GlobSet;
use rayon::prelude::*;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Rules are tracked in a bit set per path.
pub(crate) const MAX_RULES: usize = 128;

/// Every deleted path (parents before children) and the index of the rule deleting it.
pub type Deletions = Vec<(Vec<u8>, usize)>;

/// Deletion sets computed from the image before the paths are decided.
#[derive(Default)]
pub struct Computed<'a> {
    /// Closure mode's keep set.
    pub closure: Option<&'a Closure>,
    /// A package removal.
    pub removal: Option<&'a Removal>,
    /// npm's devDependencies to prune.
    pub npm: Option<&'a Prune>,
}

/// A rule, as reports name it.
#[derive(Clone, Debug)]
pub struct Rule {
    /// Its id.
    pub id: String,
    /// Why deleting is safe.
    pub reason: String,
    /// Its deletion globs and its own keep globs (none for a computed rule: package
    /// removal, npm, closure mode).
    pub globs: (Vec<String>, Vec<String>),
}

/// Compiled policies: every rule's globs in one set each for deletes and keeps (one
/// match per path, whatever the number of rules), mapped back to their rules.
#[derive(Clone, Debug)]
pub struct PolicySet {
    /// The policy names, joined with `+` (`none` for a pure squash).
    pub names: String,
    pub(super) rules: Vec<Rule>,
    pub(super) delete: GlobSet,
    pub(super) delete_rule: Vec<usize>,
    pub(super) local_keep: GlobSet,
    pub(super) local_keep_rule: Vec<usize>,
    pub(super) keep: GlobSet,
    /// The `[keep]` globs.
    pub keep_globs: Vec<String>,
    /// Globs that can never match, found while loading.
    pub warnings: Vec<String>,
    /// Closure mode.
    pub closure: Option<ClosureOptions>,
    /// The index of the rule closure mode deletes by.
    pub(super) closure_rule: Option<usize>,
    /// `[packages] remove`.
    pub packages: Option<crate::packages::remove::RemovalOptions>,
    /// The index of the rule package removal deletes by.
    pub(super) packages_rule: Option<usize>,
    /// The index of the rule npm's devDependencies go by, when pruned.
    pub(super) npm_rule: Option<usize>,
    /// The index of the rule emptied packages go by ([`crate::packages::settle`]).
    pub(super) emptied_rule: Option<usize>,
    /// Libraries opened by name at run time, for the guard and the closure.
    pub libraries: Vec<String>,
    /// `[check] ignore`: path globs of files whose broken references `check` reports
    /// as ignored, not failing.
    pub check_ignore: Vec<String>,
    /// Each policy file read, with its text, in the order read (`extends` first): what
    /// the record of a slim quotes.
    pub sources: Vec<(String, String)>,
}

/// What the policy decides for a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// It stays.
    Keep,
    /// Rule number `rule` deletes it.
    Delete {
        /// Index into [`PolicySet::rules`].
        rule: usize,
    },
}

fn os(p: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(p))
}

fn parent(p: &[u8]) -> Option<&[u8]> {
    if p.is_empty() {
        None
    } else {
        Some(
            p.iter()
                .rposition(|&b| b == b'/')
                .map_or(&[][..], |i| &p[..i]),
        )
    }
}

/// What a path's own name matches, before anything is inherited from its ancestors.
struct OwnMatch {
    keep: bool,
    local_keep: u128,
    delete: u128,
}

/// The rules whose globs in `set` match `path`, as a bit set.
fn rule_bits(set: &GlobSet, rule_of: &[usize], path: &Path, scratch: &mut Vec<usize>) -> u128 {
    set.matches_into(path, scratch);
    scratch.iter().fold(0, |acc, &i| acc | 1u128 << rule_of[i])
}

impl PolicySet {
    /// What the policy decides by, as text (its compiled globs left out: they follow
    /// from the rest): the same text, the same decisions. The key of a cached squash.
    pub fn fingerprint(&self) -> String {
        format!(
            "{:?}",
            (
                (&self.names, &self.sources, &self.rules, &self.keep_globs),
                self.closure
                    .as_ref()
                    .map(|c| (&c.roots, &c.presets, &c.libraries)),
                self.packages
                    .as_ref()
                    .map(|p| (&p.patterns, &p.unless_needed, p.autoremove)),
                (
                    self.closure_rule,
                    self.packages_rule,
                    self.npm_rule,
                    self.emptied_rule,
                ),
                (&self.libraries, &self.check_ignore, &self.warnings),
            )
        )
    }

    /// A policy set that deletes nothing.
    pub fn none() -> PolicySet {
        PolicySet {
            names: super::NONE.into(),
            rules: Vec::new(),
            delete: GlobSet::empty(),
            delete_rule: Vec::new(),
            local_keep: GlobSet::empty(),
            local_keep_rule: Vec::new(),
            keep: GlobSet::empty(),
            keep_globs: Vec::new(),
            check_ignore: Vec::new(),
            warnings: Vec::new(),
            closure: None,
            closure_rule: None,
            packages: None,
            packages_rule: None,
            npm_rule: None,
            emptied_rule: None,
            libraries: Vec::new(),
            sources: Vec::new(),
        }
    }

    /// Whether deciding needs the files' contents beyond what globs can skip: closure
    /// mode, or packages a policy insists on removing (`inspect` refuses those).
    pub fn reads_contents(&self) -> bool {
        self.closure.is_some()
            || self
                .packages
                .as_ref()
                .is_some_and(|p| !p.patterns.is_empty())
    }

    /// Whether it has rules computed from the files' contents that can be left out of
    /// an estimate: `remove-unless-needed` packages, npm's devDependencies.
    pub fn has_optional_computed_rules(&self) -> bool {
        self.packages.is_some() || self.npm_rule.is_some()
    }

    /// Whether a global `[keep]` glob names `p` itself.
    pub fn keeps(&self, p: &[u8]) -> bool {
        !self.keep.is_empty() && self.keep.is_match(os(p))
    }

    /// The rules, in order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The rule what is left of emptied packages goes by, when the policy has rules.
    pub fn emptied_rule(&self) -> Option<usize> {
        self.emptied_rule
    }

    /// Whether it prunes npm's devDependencies.
    pub fn prunes_npm(&self) -> bool {
        self.npm_rule.is_some()
    }

    /// Whether the policy deletes nothing at all.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    // Long: the one parallel pass over every path (glob rules, then the computed sets,
    // then the global keep); split, each part would take the per-thread scratch and the
    // rule bits along.
    /// Decides for every path of `tree`; returns the deleted paths (every one, parents
    /// before children) with the rule that deletes each. What no glob rule deletes goes
    /// by a computed set: a package removal's paths, npm's pruned folders (with their
    /// subtrees), then, in closure mode, what the closure does not keep (the global
    /// `[keep]` globs still win over all).
    pub fn decide(&self, tree: &Tree, computed: &Computed) -> Result<Deletions> {
        let closure = computed.closure.filter(|_| self.closure.is_some());
        let removal = computed.removal.filter(|_| self.packages.is_some());
        let npm = computed.npm.filter(|_| self.npm_rule.is_some());
        if self.rules.is_empty() {
            return Ok(Vec::new());
        }
        debug_assert!(self.rules.len() <= MAX_RULES, "checked when built");
        // Parents first, in component order (so `a/b` directly follows `a`'s other
        // descendants, whatever bytes sort between them).
        let mut paths: Vec<&Vec<u8>> = tree.nodes.keys().filter(|p| !p.is_empty()).collect();
        paths.sort_by(|a, b| a.split(|&c| c == b'/').cmp(b.split(|&c| c == b'/')));
        // The glob matching, the costly part, runs on every core; the inheritance
        // below is a cheap walk in order.
        let own: Vec<OwnMatch> = paths
            .par_iter()
            .map_init(Vec::new, |scratch, p| {
                let path = os(p);
                OwnMatch {
                    keep: !self.keep.is_empty() && self.keep.is_match(path),
                    local_keep: if self.local_keep.is_empty() {
                        0
                    } else {
                        rule_bits(&self.local_keep, &self.local_keep_rule, path, scratch)
                    },
                    delete: rule_bits(&self.delete, &self.delete_rule, path, scratch),
                }
            })
            .collect();
        // Each path's parent by position: one hash per path, then plain indexing.
        let index: HashMap<&[u8], usize> = paths
            .iter()
            .enumerate()
            .map(|(i, p)| (p.as_slice(), i))
            .collect();
        let parent_of: Vec<Option<usize>> = paths
            .iter()
            .map(|p| parent(p).and_then(|x| index.get(x).copied()))
            .collect();
        // Pass 1: what is kept, globally and per rule, inherited from ancestors; then
        // the ancestors of kept paths are shielded too.
        let n = paths.len();
        let (mut kept_global, mut kept_rules) = (vec![false; n], vec![0u128; n]);
        let (mut shield_global, mut shield_rules) = (vec![false; n], vec![0u128; n]);
        for i in 0..n {
            let (g, k) = match parent_of[i] {
                Some(j) => (kept_global[j], kept_rules[j]),
                None => (false, 0),
            };
            let (g, k) = (g || own[i].keep, k | own[i].local_keep);
            kept_global[i] = g;
            kept_rules[i] = k;
            if g || k != 0 {
                let mut a = parent(paths[i]);
                while let Some(x) = a {
                    if let Some(&j) = index.get(x) {
                        // Whoever shielded `x` with these bits shielded its ancestors too.
                        if (shield_global[j] || !g) && shield_rules[j] & k == k {
                            break;
                        }
                        shield_global[j] |= g;
                        shield_rules[j] |= k;
                    }
                    a = parent(x);
                }
            }
        }
        // Pass 2: deletions, inherited from ancestors.
        let mut matched = vec![0u128; n];
        let mut pruned = vec![false; if npm.is_some() { n } else { 0 }];
        let root_lens: std::collections::BTreeSet<usize> = npm
            .map(|np| np.roots.iter().map(Vec::len).collect())
            .unwrap_or_default();
        let mut out = Vec::new();
        for i in 0..n {
            let m = parent_of[i].map_or(0, |j| matched[j]) | own[i].delete;
            matched[i] = m;
            if let Some(np) = npm {
                // A folder no layer lists is no node: ask whether a pruned root is a
                // prefix, by the roots' lengths (not every ancestor: hashing each
                // prefix of a deep path would cost its length squared).
                let p = paths[i].as_slice();
                let above = match parent_of[i] {
                    Some(j) => pruned[j],
                    None => root_lens
                        .iter()
                        .any(|&l| l < p.len() && p[l] == b'/' && np.roots.contains(&p[..l])),
                };
                pruned[i] = above || np.roots.contains(paths[i].as_slice());
            }
            if (m == 0 && closure.is_none() && removal.is_none() && npm.is_none())
                || kept_global[i]
                || shield_global[i]
            {
                continue;
            }
            let live = m & !(kept_rules[i] | shield_rules[i]);
            if live != 0 {
                out.push((paths[i].clone(), live.trailing_zeros() as usize));
            } else if let (Some(r), Some(rule)) = (removal, self.packages_rule)
                && r.delete.contains(paths[i].as_slice())
            {
                out.push((paths[i].clone(), rule));
            } else if let Some(rule) = self.npm_rule.filter(|_| npm.is_some() && pruned[i]) {
                out.push((paths[i].clone(), rule));
            } else if let (Some(c), Some(rule)) = (closure, self.closure_rule)
                && !c.keeps(paths[i])
            {
                out.push((paths[i].clone(), rule));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::overlay::{EntryId, Node};
    use crate::policy::PolicySetBuilder;

    fn tree(paths: &[&str]) -> Tree {
        let mut t = Tree::default();
        for (i, p) in paths.iter().enumerate() {
            let id = EntryId { layer: 0, entry: i };
            let (p, is_dir) = p.strip_suffix('/').map_or((*p, false), |d| (d, true));
            t.nodes.insert(
                p.as_bytes().to_vec(),
                Node {
                    id,
                    inode: id,
                    is_dir,
                },
            );
        }
        t
    }

    fn deleted(policy: &str, paths: &[&str]) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("p.toml");
        std::fs::write(&f, policy).unwrap();
        let mut b = PolicySetBuilder::default();
        b.add(f.to_str().unwrap()).unwrap();
        let set = b.build().unwrap();
        set.decide(&tree(paths), &Computed::default())
            .unwrap()
            .into_iter()
            .map(|(p, r)| format!("{}:{}", String::from_utf8(p).unwrap(), set.rules[r].id))
            .collect()
    }

    /// Closure mode: glob rules decide first (their deletions are theirs), then what
    /// the closure does not keep goes by the closure rule; a `[keep]` glob wins over
    /// both, and folders above a kept path stay.
    #[test]
    fn closure_deletes_what_it_does_not_keep_after_the_glob_rules() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("p.toml");
        std::fs::write(
            &f,
            "[[rule]]\nid='docs'\ndelete=['usr/share/doc/**']\n[keep]\npaths=['etc/keepme']\n[closure]\n",
        )
        .unwrap();
        let mut b = PolicySetBuilder::default();
        b.add(f.to_str().unwrap()).unwrap();
        let set = b.build().unwrap();
        let t = tree(&[
            "usr/",
            "usr/bin/",
            "usr/bin/app",
            "usr/bin/other",
            "usr/share/",
            "usr/share/doc/",
            "usr/share/doc/x",
            "etc/",
            "etc/keepme",
            "etc/other",
        ]);
        let closure = Closure {
            keep: [
                "usr",
                "usr/bin",
                "usr/bin/app",
                "usr/share",
                "usr/share/doc",
                "usr/share/doc/x",
            ]
            .iter()
            .map(|p| p.as_bytes().to_vec())
            .collect(),
            report: Default::default(),
        };
        let got: Vec<String> = set
            .decide(
                &t,
                &Computed {
                    closure: Some(&closure),
                    ..Computed::default()
                },
            )
            .unwrap()
            .into_iter()
            .map(|(p, r)| format!("{}:{}", String::from_utf8(p).unwrap(), set.rules[r].id))
            .collect();
        assert_eq!(
            got,
            [
                "etc/other:closure",
                "usr/bin/other:closure",
                "usr/share/doc/x:docs"
            ]
        );
        assert_eq!(
            set.decide(&t, &Computed::default()).unwrap().len(),
            1,
            "without the computed closure only the glob rule deletes"
        );
    }

    /// The shipped `python` policy finds test suites at any depth and in virtual
    /// environments, and nothing else inside packages.
    #[test]
    fn python_tests_at_any_depth_and_in_venvs() {
        let mut b = PolicySetBuilder::default();
        b.add("python").unwrap();
        let set = b.build().unwrap();
        let site = "usr/local/lib/python3.11/dist-packages";
        let venv = "opt/venv/lib/python3.11/site-packages";
        let app = "srv/app/.venv/lib/python3.12/site-packages";
        let paths: Vec<String> = [
            format!("{site}/"),
            format!("{site}/numpy/"),
            format!("{site}/numpy/linalg/"),
            format!("{site}/numpy/linalg/tests/"),
            format!("{site}/numpy/linalg/tests/test_linalg.py"),
            format!("{site}/numpy/testing/"),
            format!("{site}/numpy/testing/utils.py"),
            format!("{site}/numpy/tests/"),
            format!("{site}/tests/"),
            format!("{site}/tests/__init__.py"),
            format!("{venv}/"),
            format!("{venv}/pandas/"),
            format!("{venv}/pandas/tests/"),
            format!("{venv}/pandas/tests/frame/"),
            format!("{app}/"),
            format!("{app}/x/"),
            format!("{app}/x/y/"),
            format!("{app}/x/y/tests/"),
            "usr/lib/python3/dist-packages/".into(),
            "usr/lib/python3/dist-packages/a/".into(),
            "usr/lib/python3/dist-packages/a/tests/".into(),
            "usr/lib/python3.11/".into(),
            "usr/lib/python3.11/unittest/".into(),
            "usr/lib/python3.11/unittest/tests/".into(),
        ]
        .into();
        let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
        let got: Vec<String> = set
            .decide(&tree(&refs), &Computed::default())
            .unwrap()
            .into_iter()
            .map(|(p, _)| String::from_utf8(p).unwrap())
            .collect();
        assert_eq!(
            got,
            [
                "opt/venv/lib/python3.11/site-packages/pandas/tests".to_string(),
                "opt/venv/lib/python3.11/site-packages/pandas/tests/frame".into(),
                "srv/app/.venv/lib/python3.12/site-packages/x/y/tests".into(),
                "usr/lib/python3/dist-packages/a/tests".into(),
                format!("{site}/numpy/linalg/tests"),
                format!("{site}/numpy/linalg/tests/test_linalg.py"),
                format!("{site}/numpy/tests"),
            ],
            "a top-level `tests` package, numpy.testing and the standard library stay"
        );
    }

    #[test]
    fn decisions_table() {
        let cases: &[(&str, &[&str], &[&str])] = &[
            // `dir/**` empties a directory but keeps it.
            (
                "[[rule]]\nid='d'\ndelete=['usr/share/doc/**']",
                &[
                    "usr/",
                    "usr/share/",
                    "usr/share/doc/",
                    "usr/share/doc/a/",
                    "usr/share/doc/a/x",
                ],
                &["usr/share/doc/a:d", "usr/share/doc/a/x:d"],
            ),
            // A matched directory takes its subtree; a leading `/` is ignored.
            (
                "[[rule]]\nid='p'\ndelete=['/**/__pycache__']",
                &["a/", "a/__pycache__/", "a/__pycache__/m.pyc", "a/m.py"],
                &["a/__pycache__:p", "a/__pycache__/m.pyc:p"],
            ),
            // `*` stays inside one component.
            (
                "[[rule]]\nid='l'\ndelete=['var/*.log']",
                &["var/", "var/a.log", "var/x/", "var/x/b.log"],
                &["var/a.log:l"],
            ),
            // Global keep keeps the path and its parents; siblings go.
            (
                "[[rule]]\nid='d'\ndelete=['doc']\n[keep]\npaths=['doc/*/copyright']",
                &[
                    "doc/",
                    "doc/a/",
                    "doc/a/copyright",
                    "doc/a/NEWS",
                    "doc/b/",
                    "doc/b/x",
                ],
                &["doc/a/NEWS:d", "doc/b:d", "doc/b/x:d"],
            ),
            // A rule's own keep only shields from that rule.
            (
                "[[rule]]\nid='a'\ndelete=['x/**']\nkeep=['x/k']\n[[rule]]\nid='b'\ndelete=['x/k']",
                &["x/", "x/k", "x/o"],
                &["x/k:b", "x/o:a"],
            ),
            // The first matching rule is credited.
            (
                "[[rule]]\nid='first'\ndelete=['t/**']\n[[rule]]\nid='second'\ndelete=['t/a']",
                &["t/", "t/a"],
                &["t/a:first"],
            ),
            // A symlink is matched as a link, never followed: `lib/**` does not reach
            // the link target, `lib` deletes the link alone.
            (
                "[[rule]]\nid='s'\ndelete=['lib']",
                &["lib", "usr/", "usr/lib/", "usr/lib/x"],
                &["lib:s"],
            ),
        ];
        for (policy, paths, want) in cases {
            assert_eq!(deleted(policy, paths), *want, "{policy}");
        }
    }
}
