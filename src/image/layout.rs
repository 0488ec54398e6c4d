//! Adding an image to an OCI layout that already holds images, as `skopeo copy` to
//! `oci:DIR:REF` and `umoci repack` do: the layout is a store of images, not one file to
//! replace.
//!
//! The staged blobs are moved in first (content-addressed, so a blob already there is
//! the same bytes), then `index.json` is replaced in one rename: an interruption before
//! it leaves the layout as it was plus unreferenced blobs, never an index naming a
//! missing blob. An entry whose `org.opencontainers.image.ref.name` a new entry carries
//! is replaced in place; every other entry is kept, in order; new names are appended.
//! Blobs that only the replaced entries reached are removed after the index is in place
//! (skopeo leaves them for a later garbage collection); when any of the layout's
//! manifests cannot be read, nothing is removed. ocislim runs adding to one layout at
//! the same time take turns (a lock on the folder); other tools do not take that lock.

use super::media;
use crate::digest::Digest;
use crate::error::{Error, Result};
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;

/// Reads and checks `dir/index.json` of an existing layout; the error names the file.
pub fn read_index(dir: &Path) -> Result<Value> {
    let path = dir.join(media::INDEX_FILE);
    let bad = |why: String| Error::Usage(format!("{}: {why}", path.display()));
    check_blobs_folder(dir)?;
    let bytes = read_regular(&path, super::reader::JSON_LIMIT).map_err(bad)?;
    let index: Value = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
    let Some(manifests) = index["manifests"].as_array() else {
        return Err(bad("not an image index (no \"manifests\" list)".into()));
    };
    // A digest becomes a file name when blobs are removed: one that is not a digest
    // (`sha256:../../x`) must never get that far.
    for d in manifests {
        let digest = d["digest"].as_str().unwrap_or_default();
        if !Digest::is_well_formed(digest) {
            return Err(bad(format!(
                "bad digest {:?} in a manifest descriptor",
                crate::layer::path::escape(d["digest"].to_string().as_bytes())
            )));
        }
    }
    Ok(index)
}

/// Reads a regular file of at most `limit` bytes: a symlink (to `/dev/zero`, say), a
/// FIFO or a device is refused before it is opened, and a larger file after `limit`
/// bytes, never read whole.
fn read_regular(path: &Path, limit: u64) -> std::result::Result<Vec<u8>, String> {
    use std::io::Read;
    let meta = std::fs::symlink_metadata(path).map_err(|e| e.to_string())?;
    if !meta.file_type().is_file() {
        return Err("not a regular file (a symlink, FIFO or device); refusing to read it".into());
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(limit + 1).read_to_end(&mut bytes))
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > limit {
        return Err(format!("larger than {limit} bytes"));
    }
    Ok(bytes)
}

/// Refuses a layout whose `blobs` or `blobs/sha256` is anything but a real folder (or
/// absent): blobs are moved in and removed there, and a symlink would take that outside
/// the layout.
fn check_blobs_folder(dir: &Path) -> Result<()> {
    let mut p = dir.to_path_buf();
    for part in media::BLOBS_DIR.split('/') {
        p.push(part);
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(Error::Usage(format!(
                    "{} is not a folder (a symlink or a file); refusing to write blobs through it",
                    p.display()
                )));
            }
            Err(_) => return Ok(()),
        }
    }
    Ok(())
}

/// `index`'s manifests with `new` added: a new entry replaces the entries carrying its
/// ref name (in the first one's place), an entry already there is not repeated, anything
/// else is appended. Returns the entries that were replaced.
fn merge(manifests: &mut Vec<Value>, new: &[Value]) -> Vec<Value> {
    let mut replaced = Vec::new();
    for d in new {
        let name = media::annotation(d, media::REF_NAME);
        let same_name = |m: &Value| name.is_some() && media::annotation(m, media::REF_NAME) == name;
        match manifests.iter().position(same_name) {
            Some(i) => {
                replaced.push(std::mem::replace(&mut manifests[i], d.clone()));
                let mut j = i + 1;
                while j < manifests.len() {
                    if same_name(&manifests[j]) {
                        replaced.push(manifests.remove(j));
                    } else {
                        j += 1;
                    }
                }
            }
            None if manifests.contains(d) => {}
            None => manifests.push(d.clone()),
        }
    }
    replaced
}

/// Takes out of `manifests` the referrers (unnamed entries with an `artifactType`) whose
/// `subject` is a manifest `replaced` held and `manifests` no longer does: the SBOM of an
/// image replaced under its name goes with it. Returns them.
fn orphans(blobs: &Path, manifests: &mut Vec<Value>, replaced: &[Value]) -> Vec<Value> {
    let gone: BTreeSet<&str> = replaced
        .iter()
        .filter_map(|d| d["digest"].as_str())
        .filter(|d| !manifests.iter().any(|m| m["digest"].as_str() == Some(*d)))
        .collect();
    if gone.is_empty() {
        return Vec::new();
    }
    let subject_gone = |m: &Value| {
        if m.get("artifactType").is_none() || media::annotation(m, media::REF_NAME).is_some() {
            return false;
        }
        let Some(hex) = m["digest"].as_str().and_then(Digest::parse) else {
            return false;
        };
        read_regular(&blobs.join(hex.hex()), super::reader::JSON_LIMIT)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .is_some_and(|doc| {
                doc["subject"]["digest"]
                    .as_str()
                    .is_some_and(|d| gone.contains(d))
            })
    };
    let (out, kept): (Vec<Value>, Vec<Value>) = manifests.drain(..).partition(subject_gone);
    *manifests = kept;
    out
}

/// The sha256 blobs `descriptors` reach through manifests and indexes in `blobs`; `None`
/// when one of them cannot be read or parsed, or names anything but a well-formed
/// sha256 digest, so nothing is known to be unreferenced.
fn reachable(blobs: &Path, descriptors: &[Value]) -> Option<BTreeSet<String>> {
    let mut seen = BTreeSet::new();
    let mut todo: Vec<Value> = descriptors.to_vec();
    while let Some(d) = todo.pop() {
        let hex = Digest::parse(d["digest"].as_str()?)?.hex().to_string();
        if !seen.insert(hex.clone()) {
            continue;
        }
        let media_type = d["mediaType"].as_str().unwrap_or_default();
        if media::is_manifest(media_type) || media::is_index(media_type) {
            let bytes = read_regular(&blobs.join(&hex), super::reader::JSON_LIMIT).ok()?;
            let doc: Value = serde_json::from_slice(&bytes).ok()?;
            todo.extend(doc["config"].as_object().map(|_| doc["config"].clone()));
            for list in ["layers", "manifests"] {
                todo.extend(doc[list].as_array().into_iter().flatten().cloned());
            }
        }
    }
    Some(seen)
}

/// Takes turns with other ocislim runs adding to the folder `dir` (a CI matrix sharing
/// one layout): an exclusive flock on the folder itself, released when the returned file
/// is dropped or the process ends, however it ends. Held from checking the folder to
/// replacing its index, so no run's entry is lost.
pub fn lock(dir: &Path) -> Result<fs_err::File> {
    let folder = fs_err::File::open(dir)?;
    folder.file().lock().map_err(|e| {
        Error::Io(std::io::Error::new(
            e.kind(),
            format!("locking {}: {e}", dir.display()),
        ))
    })?;
    Ok(folder)
}

/// Adds the layout staged at `staged` (blobs, `oci-layout`, and `index.json` listing
/// `new`) to the folder `dest`: an OCI layout whose index [`read_index`] accepted, or an
/// empty folder, which takes the staged layout as it is; the caller holds [`lock`].
/// Returns warnings: a blob left behind does not undo an image already in place.
pub fn add(staged: &Path, dest: &Path, new: &[Value]) -> Result<Vec<String>> {
    let blobs = dest.join(media::BLOBS_DIR);
    check_blobs_folder(dest)?;
    if !dest.join(media::INDEX_FILE).exists() {
        move_blobs(staged, &blobs)?;
        fs_err::rename(
            staged.join(media::OCI_LAYOUT_FILE),
            dest.join(media::OCI_LAYOUT_FILE),
        )?;
        fs_err::rename(staged.join(media::INDEX_FILE), dest.join(media::INDEX_FILE))?;
        return Ok(Vec::new());
    }
    // Read (and checked) again under the lock: the folder may have changed since.
    let mut index = read_index(dest)?;
    let mut manifests: Vec<Value> = index["manifests"].as_array().cloned().unwrap_or_default();
    let mut replaced = merge(&mut manifests, new);
    replaced.extend(orphans(&blobs, &mut manifests, &replaced));
    move_blobs(staged, &blobs)?;

    index["manifests"] = Value::Array(manifests.clone());
    let mut tmp = tempfile::Builder::new()
        .prefix(".ocislim-index-")
        .tempfile_in(dest)?;
    tmp.write_all(&serde_json::to_vec(&index).map_err(std::io::Error::other)?)?;
    tmp.as_file().sync_all()?;
    // The old index's mode, not the temporary file's 0600.
    let mode = fs_err::metadata(dest.join(media::INDEX_FILE))?.permissions();
    fs_err::set_permissions(tmp.path(), mode)?;
    tmp.persist(dest.join(media::INDEX_FILE))
        .map_err(|e| e.error)?;

    let mut warnings = Vec::new();
    if let (Some(gone), Some(kept)) = (reachable(&blobs, &replaced), reachable(&blobs, &manifests))
    {
        for hex in gone.difference(&kept) {
            if let Err(e) = fs_err::remove_file(blobs.join(hex))
                && e.kind() != std::io::ErrorKind::NotFound
            {
                warnings.push(format!("the replaced image's blob was left: {e}"));
            }
        }
    }
    Ok(warnings)
}

/// Moves the staged blobs into `blobs` (a blob already there is the same bytes).
fn move_blobs(staged: &Path, blobs: &Path) -> Result<()> {
    fs_err::create_dir_all(blobs)?;
    let mut names: Vec<_> = fs_err::read_dir(staged.join(media::BLOBS_DIR))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<std::io::Result<_>>()?;
    names.sort();
    for name in names {
        fs_err::rename(staged.join(media::BLOBS_DIR).join(&name), blobs.join(&name))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn named(digest: &str, name: &str) -> Value {
        json!({"digest": digest, "annotations": {media::REF_NAME: name}})
    }

    #[test]
    fn merge_replaces_by_name_in_place_and_appends_the_rest() {
        let mut m = vec![
            named("sha256:a", "1"),
            named("sha256:b", "2"),
            json!({"digest": "sha256:c"}),
            named("sha256:d", "1"),
        ];
        let replaced = merge(
            &mut m,
            &[
                named("sha256:e", "1"),
                json!({"digest": "sha256:c"}),
                named("sha256:f", "3"),
            ],
        );
        assert_eq!(
            m,
            vec![
                named("sha256:e", "1"),
                named("sha256:b", "2"),
                json!({"digest": "sha256:c"}),
                named("sha256:f", "3"),
            ]
        );
        assert_eq!(
            replaced,
            vec![named("sha256:a", "1"), named("sha256:d", "1")]
        );
    }
}
