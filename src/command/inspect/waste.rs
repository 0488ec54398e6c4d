//! Where an image's bytes go: what later layers shadow (deleted, overwritten, copied up
//! by a metadata change), how efficient the stack is, the largest files and
//! directories, and what each policy would reclaim.
//!
//! Efficiency is bytes in the merged filesystem over bytes stored across layers: every
//! file's data counted once per layer that stores it, each inode once (hard links
//! store nothing of their own). 1.0 means no layer stores a byte nobody sees.

use crate::error::Result;
use crate::layer::index::{EntryRec, Kind};
use crate::layer::overlay::{EntryId, Tree, parent};
use crate::layer::path::escape;
use crate::policy::{PolicyOutcome, PolicySet};
use std::collections::{HashMap, HashSet};

/// How many culprits, files and directories are listed.
const TOP: usize = 5;

/// A path and a byte count.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PathBytes {
    /// The path, escaped.
    pub path: String,
    /// Bytes.
    pub bytes: u64,
}

/// A shadowed entry.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Culprit {
    /// The path, escaped.
    pub path: String,
    /// Its data size.
    pub bytes: u64,
    /// `deleted`, `overwritten` or `copied up` (same data, new metadata).
    pub reason: &'static str,
}

/// One layer's waste.
#[derive(Clone, Debug, serde::Serialize)]
pub struct LayerWaste {
    /// Position from 1.
    pub position: usize,
    /// File data the layer stores.
    pub stored_bytes: u64,
    /// Of which later layers (or later entries) shadow.
    pub shadowed_bytes: u64,
    /// The largest shadowed entries.
    pub culprits: Vec<Culprit>,
}

/// The analysis.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Waste {
    /// File data stored across layers.
    pub stored_bytes: u64,
    /// File data in the merged filesystem.
    pub merged_bytes: u64,
    /// `merged_bytes / stored_bytes` (1.0 for an image with no file data).
    pub efficiency: f64,
    /// Per layer.
    pub layers: Vec<LayerWaste>,
    /// The largest files of the merged filesystem.
    pub largest_files: Vec<PathBytes>,
    /// The largest directories (file data below them, each inode counted once).
    pub largest_dirs: Vec<PathBytes>,
    /// What each named policy would reclaim.
    pub policies: Vec<PolicyOutcome>,
}

/// The largest `TOP` of raw paths and their bytes, escaped: only those few are copied,
/// so a tree of long names costs no more than its own size.
fn top<'a>(v: impl IntoIterator<Item = (&'a [u8], u64)>) -> Vec<PathBytes> {
    let mut v: Vec<(&[u8], u64)> = v.into_iter().collect();
    v.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    v.truncate(TOP);
    v.into_iter()
        .map(|(p, bytes)| PathBytes {
            path: escape(p),
            bytes,
        })
        .collect()
}

/// Analyses layer indexes (with digests, to recognise copy-ups).
pub fn analyse(
    layers: &mut [Vec<EntryRec>],
    names: &[String],
    policies: &[PolicySet],
    warnings: &mut Vec<String>,
) -> Result<Waste> {
    let (_, tree) = Tree::merge(
        layers
            .iter_mut()
            .map(Vec::as_mut_slice)
            .zip(names.iter().cloned()),
        0,
        warnings,
    )?;
    let layers: &[Vec<EntryRec>] = layers;
    let rec = |id: EntryId| &layers[id.layer][id.entry];
    let live = tree.live_inodes();
    let merged_bytes: u64 = live
        .iter()
        .filter(|id| rec(**id).kind == Kind::File)
        .map(|id| rec(*id).size)
        .sum();
    let out_layers: Vec<LayerWaste> = (0..layers.len())
        .map(|i| layer_waste(layers, i, &tree, &live))
        .collect();
    let stored_bytes: u64 = out_layers.iter().map(|l| l.stored_bytes).sum();
    let (files, dirs) = sizes_by_path(layers, &tree);
    let outcomes = policy_outcomes(layers, &tree, policies, warnings)?;
    Ok(Waste {
        stored_bytes,
        merged_bytes,
        efficiency: if stored_bytes == 0 {
            1.0
        } else {
            merged_bytes as f64 / stored_bytes as f64
        },
        layers: out_layers,
        largest_files: top(files),
        largest_dirs: top(dirs),
        policies: outcomes,
    })
}

/// Layer `i`'s file data and what of it the merge does not see, the largest first, each
/// saying why: deleted, overwritten, or copied up unchanged.
fn layer_waste(
    layers: &[Vec<EntryRec>],
    i: usize,
    tree: &Tree,
    live: &HashSet<EntryId>,
) -> LayerWaste {
    let rec = |id: EntryId| &layers[id.layer][id.entry];
    let entries = &layers[i];
    let mut culprits = Vec::new();
    let mut shadowed = 0;
    for (j, e) in entries.iter().enumerate() {
        let id = EntryId { layer: i, entry: j };
        if e.kind != Kind::File || e.size == 0 || live.contains(&id) {
            continue;
        }
        shadowed += e.size;
        let reason = match tree.nodes.get(&e.path) {
            None => "deleted",
            Some(n)
                if !n.is_dir
                    && rec(n.inode).kind == Kind::File
                    && rec(n.inode).digest.is_some()
                    && rec(n.inode).digest == e.digest =>
            {
                "copied up"
            }
            Some(_) => "overwritten",
        };
        culprits.push(Culprit {
            path: escape(&e.path),
            bytes: e.size,
            reason,
        });
    }
    culprits.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.path.cmp(&b.path)));
    culprits.truncate(TOP);
    LayerWaste {
        position: i + 1,
        stored_bytes: entries
            .iter()
            .filter(|e| e.kind == Kind::File)
            .map(|e| e.size)
            .sum(),
        shadowed_bytes: shadowed,
        culprits,
    }
}

/// A path and its bytes.
type Sized<'t> = (&'t [u8], u64);

/// The merged filesystem's files with their sizes, and each folder's total, every inode
/// counted once (at its first path).
fn sizes_by_path<'t>(
    layers: &[Vec<EntryRec>],
    tree: &'t Tree,
) -> (Vec<Sized<'t>>, HashMap<&'t [u8], u64>) {
    let rec = |id: EntryId| &layers[id.layer][id.entry];
    let mut seen = HashSet::new();
    let mut files = Vec::new();
    let mut dirs: HashMap<&[u8], u64> = HashMap::new();
    for (p, n) in &tree.nodes {
        if n.is_dir || rec(n.inode).kind != Kind::File || !seen.insert(n.inode) {
            continue;
        }
        let size = rec(n.inode).size;
        files.push((p.as_slice(), size));
        let mut a: &[u8] = p;
        while !a.is_empty() {
            a = parent(a);
            if !a.is_empty() {
                *dirs.entry(a).or_default() += size;
            }
        }
    }
    (files, dirs)
}

/// What each policy's glob rules would reclaim from the merged tree.
fn policy_outcomes(
    layers: &[Vec<EntryRec>],
    tree: &Tree,
    policies: &[PolicySet],
    warnings: &mut Vec<String>,
) -> Result<Vec<PolicyOutcome>> {
    let entries: Vec<&[EntryRec]> = layers.iter().map(Vec::as_slice).collect();
    let mut outcomes = Vec::new();
    for policy in policies {
        let mut t = tree.clone();
        if policy.reads_contents() {
            return Err(crate::error::Error::Usage(format!(
                "policy {}: closure mode and package removal read the files' contents; measure it with \
                 `ocislim squash --dry-run --policy {0}` or `ocislim bench`",
                policy.names
            )));
        }
        if policy.has_optional_computed_rules() {
            warnings.push(format!(
                "policy {}: its glob rules only; packages it removes where unneeded and npm devDependencies \
                 are measured by `ocislim squash --dry-run` or `ocislim bench`",
                policy.names
            ));
        }
        let deleted = policy.decide(&t, &Default::default())?;
        outcomes.push(crate::policy::apply(policy, &mut t, &deleted, 0, &entries));
    }
    Ok(outcomes)
}
