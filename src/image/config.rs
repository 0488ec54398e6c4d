//! Rebuilding an image config after a squash, as a JSON value so every field survives
//! (image-spec `config.md`): `rootfs.diff_ids` replaced, `history` kept aligned with
//! the layers, `created` changed only when a timestamp is asked for.
//!
//! `config.md`: "history ... ordered from first to last"; "empty_layer ... used to mark
//! if the history item created a filesystem diff". Non-empty entries pair with layers
//! in order, so the kept layers keep their entries and the squashed range becomes one.

use crate::digest::Digest;
use serde_json::{Value, json};

/// What the squashed layer's history entry says.
pub struct SquashNote {
    /// Layers kept below the squashed one.
    pub kept: usize,
    /// Layers in the input.
    pub total: usize,
    /// The squashed layers' input layers, from 1: first and last, one pair per output
    /// layer above the kept ones.
    pub groups: Vec<(usize, usize)>,
    /// The policies applied, for the comment.
    pub policy: String,
    /// `created` for the new entry, when a timestamp is asked for.
    pub created: Option<String>,
}

/// Returns the rebuilt config and any warning.
pub fn rebuild(config: &Value, diff_ids: &[Digest], note: &SquashNote) -> (Value, Option<String>) {
    let mut c = config.clone();
    c["rootfs"] = json!({"type": "layers", "diff_ids": diff_ids.iter().map(Digest::as_str).collect::<Vec<_>>()});
    let mut warning = None;
    let history = config
        .get("history")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let non_empty = |h: &Value| {
        !h.get("empty_layer")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    };
    let created = note
        .created
        .clone()
        .map(Value::String)
        .or_else(|| history.last().and_then(|h| h.get("created")).cloned())
        .or_else(|| config.get("created").cloned());
    let entry = |(first, last): (usize, usize)| {
        let mut e = json!({
            "created_by": "ocislim squash",
            "comment": format!("squashed layers {first}-{last} of {} (policy {})", note.total, note.policy),
        });
        if let Some(t) = &created {
            e["created"] = t.clone();
        }
        e
    };
    if history.iter().filter(|h| non_empty(h)).count() == note.total {
        // Kept layers' entries stay, and so do empty entries between groups; from a
        // group's first layer on, its entries fold into one (the top group's takes
        // the empty entries above it too).
        let mut out = Vec::new();
        let mut layer = 0;
        let inside = |layer: usize| {
            note.groups
                .iter()
                .any(|&(first, last)| layer >= first && (layer < last || last == note.total))
        };
        for h in history {
            if non_empty(&h) {
                layer += 1;
                if layer <= note.kept {
                    out.push(h);
                } else if let Some(&g) = note.groups.iter().find(|g| g.1 == layer) {
                    out.push(entry(g));
                }
            } else if layer <= note.kept || !inside(layer) {
                out.push(h);
            }
        }
        c["history"] = Value::Array(out);
    } else if history.is_empty() {
        if let Some(obj) = c.as_object_mut() {
            obj.remove("history");
        }
    } else {
        warning =
            Some("the config's history does not pair with its layers; history dropped".to_string());
        if let Some(obj) = c.as_object_mut() {
            obj.remove("history");
        }
    }
    if let Some(t) = &note.created {
        c["created"] = json!(t);
    }
    (c, warning)
}

/// Seconds since the epoch as RFC 3339 UTC (`1970-01-01T00:00:00Z`).
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_table() {
        for (s, want) in [
            (0, "1970-01-01T00:00:00Z"),
            (1_700_000_000, "2023-11-14T22:13:20Z"),
            (951_825_600, "2000-02-29T12:00:00Z"),
        ] {
            assert_eq!(rfc3339(s), want);
        }
    }

    #[test]
    fn history_folds_the_squashed_range_and_keeps_the_rest() {
        let config = json!({
            "created": "2020-01-01T00:00:00Z",
            "config": {"Healthcheck": {"Test": ["NONE"]}},
            "history": [
                {"created_by": "base"},
                {"created_by": "ENV x", "empty_layer": true},
                {"created_by": "RUN a", "created": "2021-01-01T00:00:00Z"},
                {"created_by": "CMD", "empty_layer": true},
                {"created_by": "RUN b", "created": "2022-01-01T00:00:00Z"},
            ],
        });
        let d = Digest::of(b"x");
        let note = SquashNote {
            kept: 1,
            total: 3,
            groups: vec![(2, 3)],
            policy: "none".into(),
            created: None,
        };
        let (c, w) = rebuild(&config, &[d.clone(), d], &note);
        assert!(w.is_none());
        let h = c["history"].as_array().unwrap();
        assert_eq!(h.len(), 3);
        assert_eq!(h[1]["created_by"], "ENV x");
        assert_eq!(h[2]["comment"], "squashed layers 2-3 of 3 (policy none)");
        assert_eq!(h[2]["created"], "2022-01-01T00:00:00Z");
        assert_eq!(c["config"]["Healthcheck"]["Test"][0], "NONE");
        assert_eq!(c["created"], "2020-01-01T00:00:00Z");
    }
}
