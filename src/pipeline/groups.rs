//! Layer groups (`squash --layer-groups`): the input cut into consecutive groups of
//! layers, each written as one output layer. A group's layer holds what its own layers
//! put in the merged filesystem (shadowed data dropped, exact overlay semantics), minus
//! what the policy deletes, plus whiteouts for what it removes from the groups below,
//! as a runtime expects. Its bytes depend only on its own layers, the layers below it,
//! the options and the policy's decisions on its paths: a rebuild that changes only the
//! top layers gives the lower groups byte-identical blobs, which registries and nodes
//! share.
//!
//! `auto` cuts after the base image (`--base`, else the history: the layers up to the
//! last `CMD`/`ENTRYPOINT` a base image ends with) and before each `COPY`/`ADD` layer,
//! at most `max` groups (the base cut and the highest copies kept).

use crate::error::{Error, Result};
use crate::layer::overlay::Tree;
use crate::policy::{Computed, PolicySet};
use serde_json::Value;

/// Where `--layer-groups` cuts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupSpec {
    /// From the history, at most this many groups.
    Auto(usize),
    /// After these layers (1-based, ascending).
    After(Vec<usize>),
}

impl GroupSpec {
    /// Parses `auto` or `N,M,...` (a group ends after layer N); `max` bounds `auto`.
    pub fn parse(s: &str, max: usize) -> std::result::Result<GroupSpec, String> {
        if s == "auto" {
            return Ok(GroupSpec::Auto(max.max(1)));
        }
        let mut cuts = Vec::new();
        for part in s.split(',') {
            let n: usize = part
                .trim()
                .parse()
                .map_err(|_| format!("{part:?} is not a layer number (auto or N,M,...)"))?;
            if n == 0 || cuts.last().is_some_and(|&l| l >= n) {
                return Err(format!(
                    "{s:?}: layer numbers start at 1 and ascend (a group ends after each)"
                ));
            }
            cuts.push(n);
        }
        Ok(GroupSpec::After(cuts))
    }
}

/// The groups' ends (layer counts, ascending; the last is `total`). `base` is the
/// number of layers `--base` shares with the input.
pub fn ends(
    spec: &GroupSpec,
    history: &Value,
    total: usize,
    base: Option<usize>,
) -> Result<Vec<usize>> {
    let mut ends = match spec {
        GroupSpec::After(cuts) => {
            if let Some(&n) = cuts.iter().find(|&&n| n >= total) {
                return Err(Error::Usage(format!(
                    "--layer-groups: a group ending after layer {n} leaves nothing above it (the image has {total} layers)"
                )));
            }
            cuts.clone()
        }
        GroupSpec::Auto(max) => auto(history, total, base, *max),
    };
    ends.push(total);
    Ok(ends)
}

/// `auto`'s cuts: after the base, before each `COPY`/`ADD` layer; at most `max - 1`
/// cuts, the base's first, then the highest copies (the app is on top).
fn auto(history: &Value, total: usize, base: Option<usize>, max: usize) -> Vec<usize> {
    let entries: Vec<&Value> = history
        .as_array()
        .map(|h| h.iter().collect())
        .unwrap_or_default();
    let empty = |h: &Value| h.get("empty_layer").and_then(Value::as_bool) == Some(true);
    let by = |h: &Value| {
        h.get("created_by")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    // Only a history that pairs with the layers is read.
    let paired = entries.iter().filter(|h| !empty(h)).count() == total;
    let mut base_end = base.filter(|&b| b > 0 && b < total);
    let mut copies = Vec::new();
    if paired {
        let mut layer = 0;
        // The last CMD or ENTRYPOINT a layer follows: where a base image ended.
        let (mut pending, mut last_cmd_at) = (None, None);
        for h in &entries {
            let text = by(h);
            if empty(h) {
                if is_instruction(&text, &["CMD", "ENTRYPOINT"]) && layer > 0 {
                    pending = Some(layer);
                }
                continue;
            }
            if let Some(c) = pending.take() {
                last_cmd_at = Some(c);
            }
            if is_instruction(&text, &["COPY", "ADD"]) && layer > 0 {
                copies.push(layer);
            }
            layer += 1;
        }
        if base_end.is_none() {
            base_end = last_cmd_at.filter(|&b| b < total);
        }
    }
    let base_end = base_end.unwrap_or(0);
    // Layers count up, so the copies' cuts ascend with no repeat.
    let mut cuts: Vec<usize> = copies.into_iter().filter(|&c| c > base_end).collect();
    let room = max.saturating_sub(1 + usize::from(base_end > 0));
    let cuts = cuts.split_off(cuts.len().saturating_sub(room));
    let mut out: Vec<usize> = (base_end > 0).then_some(base_end).into_iter().collect();
    out.extend(cuts);
    out.truncate(max.saturating_sub(1));
    out
}

/// Whether a history entry's `created_by` is one of `words` (`COPY dir /app # buildkit`,
/// `/bin/sh -c #(nop) COPY file:... in /app`, as BuildKit and the classic builder
/// write them).
fn is_instruction(created_by: &str, words: &[&str]) -> bool {
    let text = created_by
        .trim_start()
        .trim_start_matches("/bin/sh -c ")
        .trim_start_matches("#(nop)")
        .trim_start();
    let first = text.split_whitespace().next().unwrap_or("");
    words.contains(&first)
}

/// Where each squashed layer's input layers start (0-based): after the `keep` kept
/// ones, then after each group's end.
pub fn starts(keep: usize, ends: &[usize]) -> Vec<usize> {
    std::iter::once(keep)
        .chain(ends[..ends.len() - 1].iter().copied())
        .collect()
}

/// Each group's merged tree as its layer must leave the filesystem: the input merged up
/// to its end (`snapshots`, the lower groups') minus what the policy deleted (`deleted`,
/// every path, a folder with what lies below it) and minus what the policy's glob rules
/// delete among the paths a higher layer removed (they are in no final path, so only
/// the globs decide them: the apt archives a later `apt-get clean` deletes go from the
/// group that holds them); the top group's is the slimmed final tree `fin`.
pub fn slimmed_trees(
    snapshots: Vec<Tree>,
    fin: Tree,
    deleted: &[(Vec<u8>, usize)],
    policy: &PolicySet,
) -> Result<Vec<Tree>> {
    let mut out = Vec::with_capacity(snapshots.len() + 1);
    for mut t in snapshots {
        for (p, _) in deleted {
            t.remove_with_subtree(p);
        }
        let by_globs = policy.decide(&t, &Computed::default())?;
        for (p, _) in by_globs.iter().filter(|(p, _)| !fin.nodes.contains_key(p)) {
            t.remove_with_subtree(p);
        }
        out.push(t);
    }
    out.push(fin);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn history(items: &[(&str, bool)]) -> Value {
        Value::Array(
            items
                .iter()
                .map(|(by, empty)| json!({"created_by": by, "empty_layer": empty}))
                .collect(),
        )
    }

    #[test]
    fn auto_cuts_after_the_base_and_before_copies() {
        let h = history(&[
            ("/bin/sh -c #(nop) ADD file:abc in / ", false),
            ("/bin/sh -c #(nop)  CMD [\"bash\"]", true),
            (
                "RUN /bin/sh -c apt-get install -y python3 # buildkit",
                false,
            ),
            ("COPY requirements.txt /app/ # buildkit", false),
            (
                "RUN /bin/sh -c pip install -r /app/requirements.txt # buildkit",
                false,
            ),
            ("COPY . /app # buildkit", false),
            ("CMD [\"python3\", \"/app/main.py\"]", true),
        ]);
        assert_eq!(
            ends(&GroupSpec::Auto(4), &h, 5, None).unwrap(),
            [1, 2, 4, 5]
        );
        assert_eq!(ends(&GroupSpec::Auto(3), &h, 5, None).unwrap(), [1, 4, 5]);
        assert_eq!(ends(&GroupSpec::Auto(1), &h, 5, None).unwrap(), [5]);
        assert_eq!(
            ends(&GroupSpec::Auto(4), &h, 5, Some(2)).unwrap(),
            [2, 4, 5]
        );
        // A history that does not pair with the layers: only --base cuts.
        assert_eq!(ends(&GroupSpec::Auto(4), &h, 7, None).unwrap(), [7]);
        assert_eq!(ends(&GroupSpec::Auto(4), &h, 7, Some(3)).unwrap(), [3, 7]);
        assert_eq!(
            ends(&GroupSpec::After(vec![2, 3]), &h, 5, None).unwrap(),
            [2, 3, 5]
        );
        assert!(ends(&GroupSpec::After(vec![5]), &h, 5, None).is_err());
    }

    #[test]
    fn parse_refuses_what_is_not_ascending_layer_numbers() {
        assert_eq!(GroupSpec::parse("auto", 4), Ok(GroupSpec::Auto(4)));
        assert_eq!(GroupSpec::parse("1,3", 4), Ok(GroupSpec::After(vec![1, 3])));
        for bad in ["0", "3,2", "2,2", "x", ""] {
            assert!(GroupSpec::parse(bad, 4).is_err(), "{bad}");
        }
    }
}
