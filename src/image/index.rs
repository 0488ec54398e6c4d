//! Walks an image index (`index.json` and the indexes it nests) to the images in it,
//! and picks those a reference names (image-spec `image-layout.md`, `image-index.md`).
//!
//! ```text
//! index.json ─► descriptor ─► manifest            ─► Candidate (names along the way)
//!                          ─► index (depth <= 4)  ─► walk again
//!                          ─► attestation, signature, artifact, other type ─► NotImage
//! ```
//! A reference is matched against every name on the way to an image: the image's own
//! `ref.name`, and those of the indexes that list it. The shallowest match wins, so a
//! top-level `ref.name` is the one a user means (skopeo and go-containerregistry read
//! only the top level), and one manifest listed twice is one image.

use super::media;
use super::platform::Platform;
use crate::digest::Digest;
use crate::error::{Error, Result};
use serde_json::Value;

/// Nesting of indexes followed before giving up.
pub(crate) const MAX_INDEX_DEPTH: usize = 4;
/// Index entries visited in all, nested ones counted each time they are reached.
pub(crate) const MAX_INDEX_ENTRIES: usize = 1 << 16;
/// Times one nested index is walked (once per name it is reached by; real layouts
/// name one index a few times). With [`MAX_INDEX_ENTRIES`], a walk costs at most this
/// many times the indexes' bytes, however a hostile index repeats itself.
pub(crate) const MAX_INDEX_VISITS: usize = 64;

/// A leaf manifest found while walking the index.
pub(crate) struct Candidate {
    /// Its descriptor in the index that lists it.
    pub descriptor: Value,
    /// Its names: its own, or those of the index that lists it when it has none.
    pub names: Vec<String>,
    /// A `ref.name` given with no Docker name beside it (`skopeo copy ... oci:DIR:REF`).
    pub bare_ref: Option<String>,
    /// Its platform, when the index says.
    pub platform: Option<Platform>,
    /// The names on the way to it, one entry per descriptor that gives any: the
    /// indexes that list it, then its own.
    lineage: Vec<Named>,
}

/// The names one descriptor on the way to an image gives it.
#[derive(Clone)]
struct Named {
    depth: usize,
    names: Vec<String>,
    bare_ref: Option<String>,
}

impl Candidate {
    /// The manifest's digest as the index writes it.
    pub fn digest(&self) -> &str {
        self.descriptor
            .get("digest")
            .and_then(Value::as_str)
            .unwrap_or("?")
    }
}

/// A named index entry that is no image: asking for it says what it is.
struct NotImage {
    names: Vec<String>,
    what: String,
}

/// What a walk found.
#[derive(Default)]
pub(crate) struct Walk {
    /// The images, in the index's order.
    pub candidates: Vec<Candidate>,
    /// What was left behind and why.
    pub warnings: Vec<String>,
    not_images: Vec<NotImage>,
    /// Entries visited so far.
    entries: usize,
    /// Nested indexes read, parsed, and how often each was walked: each is read once.
    nested: std::collections::HashMap<String, (std::rc::Rc<Value>, usize)>,
}

impl Walk {
    /// Records a named entry that is no image, and why it was left behind.
    fn not_image(&mut self, names: &[String], what: String, warning: String) {
        self.warnings.push(warning);
        self.not_images.push(NotImage {
            names: names.to_vec(),
            what,
        });
    }
}

/// Reads the blob a descriptor names, verified (`what` names it in errors).
pub(crate) type ReadDescriptor<'a> = dyn Fn(&Value, &str) -> Result<(Vec<u8>, Digest)> + 'a;

/// Walks `index` and the indexes it nests.
pub(crate) fn walk(index: &Value, read: &ReadDescriptor<'_>) -> Result<Walk> {
    let mut out = Walk::default();
    let root = Position {
        depth: 0,
        names: &[],
        bare_ref: None,
        lineage: &[],
        path: &[],
    };
    walk_level(index, &root, read, &mut out)?;
    Ok(out)
}

/// Where a walk stands: the names it inherits and the indexes above it.
struct Position<'p> {
    depth: usize,
    names: &'p [String],
    bare_ref: Option<&'p str>,
    lineage: &'p [Named],
    /// Digests of the indexes above, to find an index that lists itself.
    path: &'p [String],
}

// Long: one level of the index walk, one match classifying each child (image,
// nested index, attestation, artifact, referrers index) with the names and the
// loop guard of the level above; the classes are image-spec's and read as one table.
fn walk_level(
    index: &Value,
    at: &Position<'_>,
    read: &ReadDescriptor<'_>,
    out: &mut Walk,
) -> Result<()> {
    let manifests = index
        .get("manifests")
        .ok_or_else(|| Error::json("index", "missing field \"manifests\""))?
        .as_array()
        .ok_or_else(|| Error::json("index", "manifests is not an array"))?;
    for d in manifests {
        out.entries += 1;
        if out.entries > MAX_INDEX_ENTRIES {
            return Err(Error::json(
                "index",
                format!("the indexes list more than {MAX_INDEX_ENTRIES} entries in all"),
            ));
        }
        let own = descriptor_names(d);
        let (names, bare_ref) = if own.is_empty() {
            (at.names.to_vec(), at.bare_ref.map(String::from))
        } else {
            (own.clone(), bare_ref_name(d))
        };
        let mut lineage = at.lineage.to_vec();
        if !own.is_empty() {
            lineage.push(Named {
                depth: at.depth,
                names: own.clone(),
                bare_ref: bare_ref_name(d),
            });
        }
        let media_type = d
            .get("mediaType")
            .and_then(Value::as_str)
            .unwrap_or(media::OCI_MANIFEST);
        let platform = d.get("platform").map(Platform::of_config);
        let digest = d.get("digest").and_then(Value::as_str).unwrap_or("?");
        if media::annotation(d, media::DOCKER_REFERENCE_TYPE) == Some("attestation-manifest")
            || platform.as_ref().is_some_and(|p| p.os == "unknown")
        {
            out.not_image(
                &own,
                "an attestation manifest".into(),
                format!("dropped attestation manifest {digest}"),
            );
        } else if let Some(what) = signature_or_artifact(d, &names) {
            out.not_image(
                &own,
                format!("a {what}"),
                format!(
                    "left behind {what} {digest}: it is not an image to squash (a signature of \
                     the input does not sign the output, whose digest differs)"
                ),
            );
        } else if media::is_manifest(media_type) {
            out.candidates.push(Candidate {
                descriptor: d.clone(),
                names,
                bare_ref,
                platform,
                lineage,
            });
        } else if media::is_index(media_type) {
            if at.path.iter().any(|p| p == digest) {
                out.not_image(
                    &own,
                    format!("index {digest}, which lists itself"),
                    format!("left behind index {digest}: it lists itself"),
                );
                continue;
            }
            if at.depth >= MAX_INDEX_DEPTH {
                return Err(Error::json("index", "indexes nested too deep"));
            }
            let nested = nested_index(d, digest, read, out)?;
            let mut path = at.path.to_vec();
            path.push(digest.to_string());
            let before = out.candidates.len();
            let below = Position {
                depth: at.depth + 1,
                names: &names,
                bare_ref: bare_ref.as_deref(),
                lineage: &lineage,
                path: &path,
            };
            if let Some(t) = nested
                .get("artifactType")
                .and_then(Value::as_str)
                .filter(|t| !media::is_config(t))
            {
                out.not_image(
                    &own,
                    format!("an index of artifacts of type {t}"),
                    format!("left behind index {digest}: its artifactType is {t}"),
                );
                continue;
            }
            walk_level(&nested, &below, read, out)?;
            if out.candidates.len() == before {
                let what = match referrers_tag(&own) {
                    Some(subject) => format!(
                        "a referrers index (the artifacts that refer to sha256:{subject}), with no image in it"
                    ),
                    None => format!("index {digest}, with no image in it"),
                };
                out.not_images.push(NotImage { names: own, what });
            }
        } else {
            out.not_image(
                &own,
                format!("an entry of media type {media_type}"),
                format!("dropped index entry of media type {media_type}"),
            );
        }
    }
    Ok(())
}

/// What a manifest is when it says it is no image: an `artifactType` that is not an
/// image config's type, or a config of another type (`application/vnd.oci.empty.v1+json`
/// for most artifacts), as image-spec 1.1's `manifest.md` tells artifacts apart.
pub(crate) fn manifest_artifact(manifest: &Value) -> Option<String> {
    let config_type = manifest
        .get("config")
        .and_then(|c| c.get("mediaType"))
        .and_then(Value::as_str);
    let artifact_type = manifest
        .get("artifactType")
        .and_then(Value::as_str)
        .filter(|t| !media::is_config(t));
    match (artifact_type, config_type) {
        (Some(t), c) => Some(format!(
            "an artifact of type {t}{}",
            c.map_or(String::new(), |c| format!(" (its config is {c})"))
        )),
        (None, Some(c)) if !media::is_config(c) => {
            Some(format!("an artifact (its config is of type {c})"))
        }
        _ => None,
    }
}

/// A nested index, read and parsed the first time it is reached, counted each time.
fn nested_index(
    d: &Value,
    digest: &str,
    read: &ReadDescriptor<'_>,
    out: &mut Walk,
) -> Result<std::rc::Rc<Value>> {
    if !out.nested.contains_key(digest) {
        let (bytes, _) = read(d, "nested index")?;
        let v: Value =
            serde_json::from_slice(&bytes).map_err(|e| Error::json("nested index", e))?;
        out.nested
            .insert(digest.to_string(), (std::rc::Rc::new(v), 0));
    }
    let (v, visits) = out.nested.get_mut(digest).expect("inserted above");
    *visits += 1;
    if *visits > MAX_INDEX_VISITS {
        return Err(Error::json(
            "index",
            format!("index {digest} is listed more than {MAX_INDEX_VISITS} times"),
        ));
    }
    Ok(v.clone())
}

/// Keeps the candidates `reference` names (the shallowest match wins), or says why none
/// is an image. `@sha256:HEX` picks a manifest by digest. One manifest listed twice is
/// kept once either way.
pub(crate) fn select(walk: &mut Walk, reference: Option<&str>) -> std::result::Result<(), String> {
    if let Some(r) = reference {
        if let Some(digest) = r.strip_prefix('@') {
            walk.candidates.retain(|c| c.digest() == digest);
            if walk.candidates.is_empty() {
                return Err(format!("no manifest {r}"));
            }
        } else {
            let depth_of = |c: &Candidate| {
                c.lineage
                    .iter()
                    .find(|n| matches_reference(&n.names, r))
                    .map(|n| n.depth)
            };
            let Some(best) = walk.candidates.iter().filter_map(depth_of).min() else {
                return Err(
                    match walk
                        .not_images
                        .iter()
                        .find(|n| matches_reference(&n.names, r))
                    {
                        Some(n) => format!("the entry named {r:?} is {}, not an image", n.what),
                        None => format!("no image named {r:?}"),
                    },
                );
            };
            walk.candidates.retain(|c| depth_of(c) == Some(best));
            // The image takes the names it was asked by, not a nested index's.
            for c in &mut walk.candidates {
                if let Some(n) = c.lineage.iter().find(|n| n.depth == best) {
                    c.names = n.names.clone();
                    c.bare_ref = n.bare_ref.clone();
                }
            }
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    walk.candidates
        .retain(|c| seen.insert(c.digest().to_string()));
    Ok(())
}

/// The names an index descriptor gives its image.
fn descriptor_names(d: &Value) -> Vec<String> {
    [media::CONTAINERD_IMAGE_NAME, media::REF_NAME]
        .into_iter()
        .filter_map(|key| media::annotation(d, key).map(String::from))
        .collect()
}

/// A descriptor's `ref.name` when it has no `io.containerd.image.name` beside it.
fn bare_ref_name(d: &Value) -> Option<String> {
    match (
        media::annotation(d, media::REF_NAME),
        media::annotation(d, media::CONTAINERD_IMAGE_NAME),
    ) {
        (Some(r), None) => Some(r.to_string()),
        _ => None,
    }
}

/// The subject's hex of a tag in the referrers tag schema (`sha256-<hex>`, the
/// distribution-spec's fallback for registries without the referrers API).
fn referrers_tag(names: &[String]) -> Option<&str> {
    names.iter().find_map(|n| {
        let tag = n.rsplit([':', '/']).next()?;
        let hex = tag.strip_prefix("sha256-")?;
        (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then_some(hex)
    })
}

/// What a descriptor is when it is no image: a cosign signature, attestation or SBOM
/// (tagged `sha256-<hex>.sig`, `.att`, `.sbom`), or an OCI artifact (an `artifactType`
/// that is not an image config's media type).
fn signature_or_artifact(d: &Value, names: &[String]) -> Option<String> {
    let cosign = names.iter().find_map(|n| {
        let tag = n.rsplit([':', '/']).next()?;
        let (hex, kind) = tag.strip_prefix("sha256-")?.split_once('.')?;
        (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .then_some(kind)
            .filter(|k| matches!(*k, "sig" | "att" | "sbom"))
            .map(|k| format!("cosign {k} {tag}"))
    });
    cosign.or_else(|| {
        d.get("artifactType")
            .and_then(Value::as_str)
            .filter(|t| !media::is_config(t))
            .map(|t| format!("artifact of type {t}"))
    })
}

/// Whether any of `names` is the reference `wanted`, as Docker compares names.
pub(crate) fn matches_reference(names: &[String], wanted: &str) -> bool {
    let w = media::normalize_ref(wanted);
    names
        .iter()
        .any(|n| n == wanted || media::normalize_ref(n) == w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn manifest(digest: &str, name: Option<&str>) -> Value {
        let mut d = json!({"mediaType": media::OCI_MANIFEST, "digest": digest, "size": 2});
        if let Some(n) = name {
            d["annotations"] = json!({ media::REF_NAME: n });
        }
        d
    }

    /// go-containerregistry's `layout/test_index`: entry 3 is an index listing the
    /// manifest of entry 1 under the name "1".
    fn ggcr_test_index() -> Walk {
        let nested = json!({"manifests": [manifest("sha256:m1", Some("1"))]});
        let mut index_3 = json!({"mediaType": media::OCI_INDEX, "digest": "sha256:i3", "size": 2});
        index_3["annotations"] = json!({ media::REF_NAME: "3" });
        let mut other = json!({"mediaType": "application/vnd.oci.descriptor.v1+json", "digest": "sha256:x", "size": 2});
        other["annotations"] = json!({ media::REF_NAME: "2" });
        let index = json!({"manifests": [manifest("sha256:m1", Some("1")), other, index_3]});
        let read = |_: &Value, _: &str| Ok((serde_json::to_vec(&nested).unwrap(), Digest::of(b"")));
        walk(&index, &read).unwrap()
    }

    #[test]
    fn a_top_level_name_wins_over_a_nested_one_naming_the_same_manifest() {
        for (reference, want_names) in [("1", vec!["1"]), ("3", vec!["3"]), ("app:3", vec![])] {
            let mut w = ggcr_test_index();
            let got = select(&mut w, Some(reference));
            if want_names.is_empty() {
                assert_eq!(got, Err(format!("no image named {reference:?}")));
                continue;
            }
            got.unwrap();
            assert_eq!(w.candidates.len(), 1, "{reference}");
            assert_eq!(w.candidates[0].digest(), "sha256:m1");
            assert_eq!(w.candidates[0].names, want_names, "{reference}");
        }
    }

    #[test]
    fn a_name_on_a_non_image_entry_says_what_the_entry_is() {
        let mut w = ggcr_test_index();
        let err = select(&mut w, Some("2")).unwrap_err();
        assert_eq!(
            err,
            "the entry named \"2\" is an entry of media type application/vnd.oci.descriptor.v1+json, not an image"
        );
    }

    #[test]
    fn one_manifest_listed_twice_is_one_image() {
        let mut w = ggcr_test_index();
        select(&mut w, None).unwrap();
        assert_eq!(w.candidates.len(), 1);
    }

    #[test]
    fn a_config_typed_artifact_type_is_an_image() {
        let mut d = manifest("sha256:m", None);
        d["artifactType"] = json!(media::DOCKER_CONFIG);
        assert_eq!(signature_or_artifact(&d, &[]), None);
        d["artifactType"] = json!("application/vnd.example.sbom");
        assert_eq!(
            signature_or_artifact(&d, &[]).as_deref(),
            Some("artifact of type application/vnd.example.sbom")
        );
    }
}
