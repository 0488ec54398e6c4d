//! What a policy removed: per rule, the files and bytes, and every deleted path.
//!
//! Bytes are counted per inode, once, and only when no name of it survives (deleting
//! one name of a hard-link group frees nothing). A path that lives in a kept base layer
//! is hidden by a whiteout, not reclaimed: its bytes stay in the base blob.

use super::PolicySet;
use crate::layer::index::{EntryRec, Kind};
use crate::layer::overlay::{EntryId, Tree};
use crate::layer::path::escape;
use std::collections::{HashMap, HashSet};

/// How many example paths each rule reports.
const EXAMPLES: usize = 3;

/// One rule's effect.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct RuleOutcome {
    /// Rule id.
    pub id: String,
    /// Why it is safe.
    pub reason: String,
    /// Non-directory paths it deleted.
    pub files: u64,
    /// Bytes it freed from the squashed layer.
    pub reclaimed_bytes: u64,
    /// Bytes of base-layer files it hid with whiteouts (still stored in the base).
    pub hidden_bytes: u64,
    /// A few of the paths it deleted.
    pub examples: Vec<String>,
}

/// One deleted path; a directory stands for its whole subtree.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct DeletedPath {
    /// The path, escaped.
    pub path: String,
    /// The rule.
    pub rule: String,
    /// Whether it is a directory deleted with its subtree.
    pub subtree: bool,
    /// Whether it lives in a kept base layer (hidden by a whiteout, not reclaimed).
    pub hidden: bool,
}

/// A policy's effect on one image.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct PolicyOutcome {
    /// The policies applied.
    pub policy: String,
    /// Per rule, in rule order (rules that deleted nothing included).
    pub rules: Vec<RuleOutcome>,
    /// Every deleted path, parents standing for their subtrees.
    pub deleted: Vec<DeletedPath>,
    /// Bytes reclaimed, by the input layer that stored them.
    #[serde(skip)]
    pub reclaimed_by_layer: Vec<u64>,
}

/// Removes `deleted` from `tree` and accounts for it. `keep` is the number of kept
/// base layers; `entries` gives entry sizes.
pub fn apply(
    policy: &PolicySet,
    tree: &mut Tree,
    deleted: &[(Vec<u8>, usize)],
    keep: usize,
    entries: &[&[EntryRec]],
) -> PolicyOutcome {
    let size = |id: EntryId| entries[id.layer][id.entry].size;
    let mut rules: Vec<RuleOutcome> = policy
        .rules()
        .iter()
        .map(|r| RuleOutcome {
            id: r.id.clone(),
            reason: r.reason.clone(),
            ..Default::default()
        })
        .collect();
    let removed: Vec<(Vec<u8>, usize, crate::layer::overlay::Node)> = deleted
        .iter()
        .filter_map(|(p, r)| tree.nodes.remove(p).map(|n| (p.clone(), *r, n)))
        .collect();
    let surviving = tree.live_inodes();
    let rule_of: HashMap<&[u8], usize> =
        removed.iter().map(|(p, r, _)| (p.as_slice(), *r)).collect();
    let mut counted: HashSet<EntryId> = HashSet::new();
    let mut out = PolicyOutcome {
        policy: policy.names.clone(),
        reclaimed_by_layer: vec![0; entries.len()],
        ..Default::default()
    };
    for (path, r, node) in &removed {
        let rule = &mut rules[*r];
        let hidden = node.id.layer < keep;
        if !node.is_dir {
            rule.files += 1;
            let is_file = matches!(entries[node.inode.layer][node.inode.entry].kind, Kind::File);
            if is_file && !surviving.contains(&node.inode) && counted.insert(node.inode) {
                if node.inode.layer < keep {
                    rule.hidden_bytes += size(node.inode);
                } else {
                    rule.reclaimed_bytes += size(node.inode);
                    out.reclaimed_by_layer[node.inode.layer] += size(node.inode);
                }
            }
        }
        // A path whose parent went by the same rule is part of the parent's subtree.
        let par = crate::layer::overlay::parent(path);
        if !par.is_empty() && rule_of.get(par) == Some(r) {
            continue;
        }
        if rule.examples.len() < EXAMPLES {
            rule.examples.push(escape(path));
        }
        out.deleted.push(DeletedPath {
            path: escape(path),
            rule: rule.id.clone(),
            subtree: node.is_dir,
            hidden,
        });
    }
    out.rules = rules;
    out
}
