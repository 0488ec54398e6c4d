//! What changed between two merged filesystems, path by path: added, removed, or
//! changed in type, size, permission bits, owner, link target or content (by sha256),
//! as `container-diff --type=file` and a diff of two unpacked root filesystems see it.
//! Times are not compared: a squash may set them (`--timestamp`) without changing what
//! the image holds.

use crate::layer::index::{EntryRec, Kind};
use crate::layer::overlay::{Tree, parent};
use crate::layer::path::escape;
use crate::layer::writer::Spool;
use std::collections::BTreeMap;

/// What is at one path of a merged filesystem.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Facts {
    /// `file`, `dir`, `symlink` or `other` (a device, FIFO or socket). A hard link is
    /// the file it shares.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// A file's size in bytes (0 for the others).
    pub size: u64,
    /// Permission bits, in octal (`0644`).
    pub mode: String,
    /// Owner's uid.
    pub uid: u64,
    /// Owner's gid.
    pub gid: u64,
    /// A symlink's target, escaped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// A file's sha256.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// A folder no layer lists but a path below it needs (a runtime creates it; its
    /// mode and owner are the runtime's, so only its presence is compared).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub implicit: bool,
}

/// How a path changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum How {
    /// Only in the second image.
    Added,
    /// Only in the first.
    Removed,
    /// In both, different.
    Changed,
}

/// One path that differs.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Change {
    /// The path, escaped, from the root (`/usr/bin/x`).
    pub path: String,
    /// How it changed.
    pub change: How,
    /// What differs, for a changed path: `type`, `size`, `mode`, `owner`, `link`,
    /// `content`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<&'static str>,
    /// What the first image holds there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<Facts>,
    /// What the second holds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<Facts>,
}

impl Change {
    /// The change at `path` (normalised, as the facts are keyed), the fields that
    /// differ worked out from its facts.
    fn new(path: &[u8], change: How, before: Option<&Facts>, after: Option<&Facts>) -> Change {
        Change {
            path: format!("/{}", escape(path)),
            change,
            fields: match (before, after) {
                (Some(a), Some(b)) => differences(a, b),
                _ => Vec::new(),
            },
            before: before.cloned(),
            after: after.cloned(),
        }
    }
}

/// Every path's facts, the root left out. `spools` holds the entries, with their
/// digests when the layers were scanned for them.
pub fn facts(tree: &Tree, spools: &[Spool]) -> BTreeMap<Vec<u8>, Facts> {
    let mut out = BTreeMap::new();
    for (p, node) in tree.nodes.iter().filter(|(p, _)| !p.is_empty()) {
        let Some(rec) = spools
            .get(node.inode.layer)
            .and_then(|s| s.entries.get(node.inode.entry))
        else {
            continue;
        };
        out.insert(p.clone(), of(rec, node.is_dir));
        // The folders above it that no layer lists.
        let mut up = parent(p);
        while !up.is_empty() && !tree.nodes.contains_key(up) && !out.contains_key(up) {
            out.insert(up.to_vec(), implicit_dir());
            up = parent(up);
        }
    }
    out
}

fn of(rec: &EntryRec, is_dir: bool) -> Facts {
    let kind = match &rec.kind {
        _ if is_dir => "dir",
        Kind::File | Kind::Hardlink(_) => "file",
        Kind::Symlink(_) => "symlink",
        _ => "other",
    };
    Facts {
        kind,
        size: if kind == "file" { rec.size } else { 0 },
        mode: format!("{:04o}", rec.mode),
        uid: rec.owner.0,
        gid: rec.owner.1,
        link: match &rec.kind {
            Kind::Symlink(t) if !is_dir => Some(escape(t)),
            _ => None,
        },
        digest: (kind == "file")
            .then(|| rec.digest.as_ref().map(|d| d.as_str().to_string()))
            .flatten(),
        implicit: false,
    }
}

fn implicit_dir() -> Facts {
    Facts {
        kind: "dir",
        size: 0,
        mode: String::new(),
        uid: 0,
        gid: 0,
        link: None,
        digest: None,
        implicit: true,
    }
}

/// What differs between two facts of one path. A symlink's permission bits are not
/// compared (Linux ignores them, and unpackers set them to `0777`).
fn differences(a: &Facts, b: &Facts) -> Vec<&'static str> {
    if a.kind != b.kind {
        return vec!["type"];
    }
    if a.implicit || b.implicit {
        return Vec::new();
    }
    let mut out = Vec::new();
    if a.size != b.size {
        out.push("size");
    }
    if a.mode != b.mode && a.kind != "symlink" {
        out.push("mode");
    }
    if (a.uid, a.gid) != (b.uid, b.gid) {
        out.push("owner");
    }
    if a.link != b.link {
        out.push("link");
    }
    if a.digest != b.digest {
        out.push("content");
    }
    out
}

/// Every path that differs from `a` to `b`, in path order.
pub fn compare(a: &BTreeMap<Vec<u8>, Facts>, b: &BTreeMap<Vec<u8>, Facts>) -> Vec<Change> {
    let mut out = Vec::new();
    let (mut ia, mut ib) = (a.iter().peekable(), b.iter().peekable());
    loop {
        let next = match (ia.peek(), ib.peek()) {
            (None, None) => break,
            (Some((pa, _)), Some((pb, _))) => pa.cmp(pb),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
        };
        match next {
            std::cmp::Ordering::Less => {
                let (p, f) = ia.next().expect("peeked");
                out.push(Change::new(p, How::Removed, Some(f), None));
            }
            std::cmp::Ordering::Greater => {
                let (p, f) = ib.next().expect("peeked");
                out.push(Change::new(p, How::Added, None, Some(f)));
            }
            std::cmp::Ordering::Equal => {
                let ((p, fa), (_, fb)) = (ia.next().expect("peeked"), ib.next().expect("peeked"));
                let c = Change::new(p, How::Changed, Some(fa), Some(fb));
                if !c.fields.is_empty() {
                    out.push(c);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(size: u64, mode: &str, digest: &str) -> Facts {
        Facts {
            kind: "file",
            size,
            mode: mode.into(),
            uid: 0,
            gid: 0,
            link: None,
            digest: Some(digest.into()),
            implicit: false,
        }
    }

    #[test]
    fn compare_lists_added_removed_and_what_changed() {
        let a = BTreeMap::from([
            (b"same".to_vec(), file(1, "0644", "x")),
            (b"gone".to_vec(), file(2, "0644", "y")),
            (b"edit".to_vec(), file(3, "0644", "z")),
            (b"chmod".to_vec(), file(3, "0644", "z")),
        ]);
        let mut b = a.clone();
        b.remove(&b"gone"[..]);
        b.insert(b"new".to_vec(), file(4, "0600", "w"));
        b.insert(b"edit".to_vec(), file(5, "0644", "v"));
        b.get_mut(&b"chmod"[..]).unwrap().mode = "0600".into();
        let got: Vec<(String, How, Vec<&str>)> = compare(&a, &b)
            .into_iter()
            .map(|c| (c.path, c.change, c.fields))
            .collect();
        assert_eq!(
            got,
            [
                ("/chmod".to_string(), How::Changed, vec!["mode"]),
                ("/edit".to_string(), How::Changed, vec!["size", "content"]),
                ("/gone".to_string(), How::Removed, vec![]),
                ("/new".to_string(), How::Added, vec![]),
            ]
        );
        let mut dir = implicit_dir();
        assert!(differences(&dir, &implicit_dir()).is_empty());
        dir.implicit = false;
        dir.mode = "0700".into();
        assert!(
            differences(&dir, &implicit_dir()).is_empty(),
            "implicit: presence only"
        );
        assert_eq!(differences(&dir, &file(0, "0700", "")), ["type"]);
    }
}
