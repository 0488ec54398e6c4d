//! The cache's part in a squash (`--cache`, see [`crate::cache`]): a layer whose plain
//! tar the cache holds is indexed from it (hashed as it is read: its digest must be
//! the layer's diff_id) instead of decompressed; a squashed layer whose plan the cache
//! has written before is taken from it instead of compressed again.
//!
//! A squashed layer's key is everything its bytes depend on: the codec, its level and
//! `--timestamp`, the plan (each entry copied, promoted, relinked, every marker) with
//! each input entry it copies as the merge left it, and the content of each layer those
//! entries are in (its diff_id, or the digest of the policy's rewritten files). What
//! changed above a group is in none of these, so a rebuild that changes only the top
//! layers finds the lower groups' blobs.
//!
//! A whole squash is kept too, under a key of its input (the config's digest, each
//! layer's digest, diff_id, media type and annotations, the manifest's annotations and
//! the names), its options and the policy's text: the same again reads no layer, only
//! checks and copies the cached blobs, and prints the report it printed then. It is
//! kept only when every output layer is a squashed one (nothing kept as it is: no
//! `--keep-layers`, no `--base` without groups), with no `--sbom` and no dry run.

use crate::cache::{Cache, GroupRecord, Key};
use crate::digest::{Digest, Meter};
use crate::error::Result;
use crate::image::LayerRef;
use crate::image::reader::Source;
use crate::image::writer::{OutImage, OutLayer, Staging};
use crate::layer::codec::{Compression, EncodeOptions};
use crate::layer::index::{EntryRec, IndexMode};
use crate::layer::overlay::{Emit, EntryId};
use crate::layer::reader::{LayerScan, scan_full};
use crate::layer::writer::{EmitStats, Spool};
use crate::pipeline::emit::Written;
use crate::pipeline::merge::Scanned;
use std::collections::BTreeSet;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

/// `--cache DIR` and `--cache-max`.
#[derive(Clone, Debug)]
pub struct CacheOptions {
    /// The cache folder.
    pub dir: std::path::PathBuf,
    /// Its bound, in bytes.
    pub max: u64,
}

/// What the cache did in one squash, for the report.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct CacheOutcome {
    /// The cache folder.
    pub dir: String,
    /// Input layers (from 1) indexed from a cached plain tar, not decompressed.
    pub layers_reused: Vec<usize>,
    /// Squashed layers (from 1, bottom first) whose blob came from the cache.
    pub groups_reused: Vec<usize>,
    /// Whether the whole result came from the cache (the same input, options and
    /// policy again): no layer was read.
    pub result_reused: bool,
    /// Entries that failed their check, deleted and their work done again.
    pub dropped: Vec<String>,
    /// Bytes of least recently used entries deleted to keep within `--cache-max`.
    pub evicted_bytes: u64,
    /// Bytes the cache holds after the run.
    pub size: u64,
}

/// Layer `l` indexed from its cached plain tar, when the cache has one whose digest is
/// its diff_id (one that is not is dropped); its blob is only located, not read.
pub fn cached_layer(
    cache: &Cache,
    source: &Source,
    l: &LayerRef,
    mode: IndexMode,
    progress: &crate::progress::Progress,
) -> Result<Option<Scanned>> {
    let Some(blob_digest) = &l.digest else {
        return Ok(None);
    };
    let Some((file, path)) = cache.tar(&l.diff_id) else {
        return Ok(None);
    };
    let blob = source.layer_blob(l)?;
    let len = file.metadata()?.len();
    let reader = progress.reader(
        &format!("read layer {} (cache)", l.position),
        len,
        std::io::BufReader::new(file.try_clone()?),
    );
    let scanned = scan_full::<_, std::io::Sink, std::io::Sink>(reader, &l.name(), None, None, mode);
    match scanned {
        Ok((scan, _, _, entries))
            if scan.diff_id == l.diff_id && scan.compression == Compression::None =>
        {
            Ok(Some(Scanned {
                scan: LayerScan {
                    compression: blob.compression,
                    blob_digest: blob_digest.clone(),
                    blob_size: blob.size,
                    ..scan
                },
                spool: Spool {
                    file: Arc::new(file),
                    base: 0,
                    entries,
                },
                kept_blob: None,
                cached: true,
            }))
        }
        _ => {
            cache.drop_entry(&path, "a plain tar whose digest is not its name");
            Ok(None)
        }
    }
}

/// What each spool's bytes are: an input layer's diff_id, and for the policy's
/// rewritten files (spools past the input's layers) the digest of their tar.
pub fn spool_ids(diff_ids: &[Digest], spools: &[Spool]) -> Result<Vec<Digest>> {
    let mut ids = diff_ids.to_vec();
    for s in &spools[diff_ids.len().min(spools.len())..] {
        let end = s.entries.iter().map(|e| e.span.1).max().unwrap_or(0);
        let mut m = Meter::new(std::io::sink());
        let mut buf = vec![0u8; 1 << 16];
        let mut at = 0;
        while at < end {
            let n = ((end - at) as usize).min(buf.len());
            s.file.read_exact_at(&mut buf[..n], s.base + at)?;
            m.write_all(&buf[..n])?;
            at += n as u64;
        }
        ids.push(m.finish().1);
    }
    Ok(ids)
}

/// The key of the squashed layer `plan` writes (see the module's text).
pub fn group_key(
    plan: &[Emit],
    layers: &[&[EntryRec]],
    ids: &[Digest],
    enc: EncodeOptions,
    timestamp: Option<u64>,
) -> Digest {
    let mut key = Key::new();
    key.part(b"squashed layer")
        .part(format!("{:?} {:?} {timestamp:?}", enc.compression, enc.level).as_bytes());
    let mut used = BTreeSet::new();
    for e in plan {
        key.part(format!("{e:?}").as_bytes());
        for id in referenced(e) {
            key.part(format!("{:?}", layers[id.layer][id.entry]).as_bytes());
            used.insert(id.layer);
        }
    }
    for l in used {
        key.part(format!("{l} {}", ids[l]).as_bytes());
    }
    key.finish()
}

/// The input entries an emit copies.
fn referenced(e: &Emit) -> Vec<EntryId> {
    match e {
        Emit::Raw(id) => vec![*id],
        Emit::Promote { alias, carrier } => vec![*alias, *carrier],
        Emit::Relink { link, .. } => vec![*link],
        Emit::Whiteout(_) | Emit::Opaque(_) => Vec::new(),
    }
}

/// The squashed layer under `key`, its blob staged (a dry run stages nothing), when
/// the cache has it and it passes its checks.
pub fn reused_group(
    cache: &Cache,
    key: &Digest,
    staging: Option<&Staging>,
) -> Result<Option<Written>> {
    let Some((rec, blob)) = cache.group(key) else {
        return Ok(None);
    };
    if let Some(st) = staging {
        st.adopt(&blob, &rec.digest)?;
    }
    Ok(Some(Written {
        stats: EmitStats {
            entries: rec.entries,
            kept_by_layer: rec.kept_by_layer,
        },
        diff_id: rec.diff_id,
        tar_size: rec.tar_size,
        digest: rec.digest,
        size: rec.size,
    }))
}

/// The report's account of the cache: what `scanned` and `reused` took from it, what
/// it dropped, and what trimming it to its bound deleted.
pub fn outcome(cache: &Cache, scanned: &[bool], reused: Vec<usize>) -> (CacheOutcome, Vec<String>) {
    let (evicted_bytes, size) = cache.trim();
    let (dropped, warnings) = cache.take_notes();
    use std::os::unix::ffi::OsStrExt;
    let outcome = CacheOutcome {
        dir: crate::escape::escape(cache.dir().as_os_str().as_bytes()),
        layers_reused: (1..=scanned.len()).filter(|&i| scanned[i - 1]).collect(),
        groups_reused: reused,
        result_reused: false,
        dropped,
        evicted_bytes,
        size,
    };
    (outcome, warnings)
}

/// Keeps the squashed layer `w`, staged in `staging`, under `key`.
pub fn keep_group(cache: &Cache, key: &Digest, w: &Written, staging: &Staging) {
    let rec = GroupRecord {
        digest: w.digest.clone(),
        size: w.size,
        diff_id: w.diff_id.clone(),
        tar_size: w.tar_size,
        entries: w.stats.entries,
        kept_by_layer: w.stats.kept_by_layer.clone(),
    };
    cache.put_group(key, &rec, &staging.blob_path(&w.digest));
}

/// The key of a whole squash of `image` with `options` (the output's format, codec,
/// names, cuts and every other option its bytes depend on, as text) and `policy` (see
/// the module's text).
pub fn result_key(
    options: &str,
    policy: &crate::policy::PolicySet,
    image: &crate::image::Image,
) -> Digest {
    let mut key = Key::new();
    key.part(b"squash result")
        .part(options.as_bytes())
        .part(policy.fingerprint().as_bytes())
        .part(
            format!(
                "{:?} {} {:?} {:?} {:?} {:?} {:?} {:?}",
                image.format,
                image.config_digest(),
                (&image.config_media_type, image.docker_media_types),
                image.manifest_annotations.as_ref().map(|v| v.to_string()),
                image.tags,
                image.ref_names,
                image.warnings,
                image.shape,
            )
            .as_bytes(),
        );
    for l in &image.layers {
        key.part(
            format!(
                "{:?} {} {:?} {:?} {:?}",
                l.digest,
                l.diff_id,
                l.size,
                l.media_type,
                l.annotations.as_ref().map(|v| v.to_string())
            )
            .as_bytes(),
        );
    }
    key.finish()
}

/// The squash kept under `key`: its output image, every layer blob checked and staged,
/// and its report; `None` (the record dropped) when the record or a blob is missing or
/// broken.
pub fn cached_result<R: serde::de::DeserializeOwned>(
    cache: &Cache,
    key: &Digest,
    staging: &Staging,
) -> Result<Option<(OutImage, R)>> {
    use crate::cache::Kind;
    let Some(body) = cache.record(Kind::Result, key) else {
        return Ok(None);
    };
    let Some((out, report)) = parse_result(&body) else {
        cache.drop_record(Kind::Result, key, "a record that does not parse");
        return Ok(None);
    };
    for l in &out.layers {
        let Some(blob) = cache.blob(&l.digest, l.size) else {
            cache.drop_record(Kind::Result, key, "a layer blob is missing or broken");
            return Ok(None);
        };
        staging.adopt(&blob, &l.digest)?;
    }
    Ok(Some((out, report)))
}

/// Keeps the squash that wrote `out` and `report` under `key`.
pub fn keep_result<R: serde::Serialize>(cache: &Cache, key: &Digest, out: &OutImage, report: &R) {
    let layers: Vec<serde_json::Value> = out
        .layers
        .iter()
        .map(|l| {
            serde_json::json!({"digest": l.digest, "size": l.size,
                "media_type": l.media_type, "annotations": l.annotations})
        })
        .collect();
    let body = serde_json::json!({
        "config": String::from_utf8_lossy(&out.config),
        "config_media_type": out.config_media_type,
        "manifest_media_type": out.manifest_media_type,
        "manifest_annotations": out.manifest_annotations,
        "layers": layers,
        "tags": out.tags,
        "ref_names": out.ref_names,
        "report": report,
    });
    let bytes = serde_json::to_vec(&body).expect("records serialise");
    cache.put_record(crate::cache::Kind::Result, key, &bytes);
}

/// A result record's output image and report.
fn parse_result<R: serde::de::DeserializeOwned>(body: &[u8]) -> Option<(OutImage, R)> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let text = |k: &str| Some(v.get(k)?.as_str()?.to_string());
    let texts = |k: &str| serde_json::from_value::<Vec<String>>(v.get(k)?.clone()).ok();
    let layers = v
        .get("layers")?
        .as_array()?
        .iter()
        .map(|l| {
            Some(OutLayer {
                digest: Digest::parse(l.get("digest")?.as_str()?)?,
                size: l.get("size")?.as_u64()?,
                media_type: l.get("media_type")?.as_str()?.to_string(),
                annotations: l.get("annotations").filter(|a| !a.is_null()).cloned(),
            })
        })
        .collect::<Option<Vec<_>>>()?;
    let out = OutImage {
        config: text("config")?.into_bytes(),
        config_media_type: text("config_media_type")?,
        manifest_media_type: text("manifest_media_type")?,
        manifest_annotations: v
            .get("manifest_annotations")
            .filter(|a| !a.is_null())
            .cloned(),
        layers,
        tags: texts("tags")?,
        ref_names: texts("ref_names")?,
        attached: Vec::new(),
    };
    let report = serde_json::from_value(v.get("report")?.clone()).ok()?;
    Some((out, report))
}
