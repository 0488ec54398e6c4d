//! Opens a source and chooses one image in it.
//!
//! ```text
//! SOURCE ─► Store (dir | tar index | stdin spool)
//!        ─► index.json (OCI layout, OCI archive, Docker 25+ save)   ─► candidates
//!           or manifest.json only (classic docker save)             ─┘   │
//!        ─► choose by reference, then platform (attestations dropped) ◄──┘
//!        ─► manifest + config, verified by digest and size ─► Image
//! ```
//! Format is detected from content, never from the file name.

use super::index::{self, Candidate, matches_reference};
use super::media::{self, normalize_ref};
use super::platform::Platform;
use super::remote::{self, Access, Remote, Spool};
use super::store::{self, Store, TarStore};
use super::{Format, Image, LayerRef};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::layer::codec::{Compression, check_layer_media_type};
use crate::section::Section;
use serde_json::Value;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

/// Largest JSON document (index, manifest, config) accepted.
pub(crate) const JSON_LIMIT: u64 = 32 << 20;

/// Where to read an image from, as written on the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceSpec {
    /// A path, or `None` for standard input.
    pub path: Option<PathBuf>,
    /// A skopeo-style transport prefix, when one was given.
    pub transport: Option<Format>,
    /// The image to pick inside the source (`app:1`, `@0`).
    pub reference: Option<String>,
    /// A registry or the Docker engine, instead of a path.
    pub remote: Option<Remote>,
}

impl SourceSpec {
    /// Parses `-`, `PATH`, or `oci:PATH[:REF]`, `oci-archive:PATH[:REF]`,
    /// `docker-archive:PATH[:REF]`. A path that exists wins over splitting off a
    /// reference, so paths holding `:` still work.
    pub fn parse(s: &str) -> SourceSpec {
        let remote = Remote::parse(s);
        if s == "-" || remote.is_some() {
            return SourceSpec {
                path: None,
                transport: None,
                reference: None,
                remote,
            };
        }
        for format in [Format::Oci, Format::OciArchive, Format::DockerArchive] {
            let Some(rest) = s
                .strip_prefix(format.name())
                .and_then(|r| r.strip_prefix(':'))
            else {
                continue;
            };
            let (path, reference) = match rest.split_once(':') {
                Some((p, r)) if !std::path::Path::new(rest).exists() => {
                    (p, Some(r.to_string()).filter(|r| !r.is_empty()))
                }
                _ => (rest, None),
            };
            let path = if path == "-" {
                None
            } else {
                Some(PathBuf::from(path))
            };
            return SourceSpec {
                path,
                transport: Some(format),
                reference,
                remote: None,
            };
        }
        SourceSpec {
            path: Some(PathBuf::from(s)),
            transport: None,
            reference: None,
            remote: None,
        }
    }

    /// How messages name this source.
    pub fn display(&self) -> String {
        if let Some(r) = &self.remote {
            return r.display();
        }
        self.path
            .as_ref()
            .map_or_else(|| "standard input".into(), |p| p.display().to_string())
    }
}

/// Options for choosing an image.
#[derive(Clone, Debug, Default)]
pub struct OpenOptions {
    /// `--platform`; `None` prefers the host's in a multi-platform index.
    pub platform: Option<Platform>,
    /// Credentials and TLS for a registry source.
    pub access: Access,
    /// Where reading standard input shows its bytes.
    pub progress: crate::progress::Progress,
}

/// An opened source and the image chosen in it.
pub struct Source {
    /// Random access to the source's files.
    pub store: Store,
    /// The image.
    pub image: Image,
    /// For a registry source, its spool folder and repository.
    pub pulled: Option<Box<dyn Spool>>,
}

/// A layer's blob, found in its source, with the size the manifest promised checked and
/// its codec sniffed from its first bytes.
pub struct LayerBlob {
    /// The file holding the blob (the blob itself, or the archive around it).
    pub file: Arc<File>,
    /// Where the blob starts in `file`.
    pub offset: u64,
    /// Its size.
    pub size: u64,
    /// Its codec, by magic bytes.
    pub compression: Compression,
}

impl LayerBlob {
    /// A reader over the blob, by positional reads.
    pub fn reader(&self) -> Section<Arc<File>> {
        Section::new(self.file.clone(), self.offset, self.offset + self.size)
    }
}

impl Source {
    /// Finds layer `l`'s blob, checks its size against the manifest's and sniffs its codec.
    pub fn layer_blob(&self, l: &LayerRef) -> Result<LayerBlob> {
        let (file, offset, size) = self.store.locate(&l.location)?;
        if let Some(expected) = l.size.filter(|e| *e != size) {
            return Err(Error::SizeMismatch {
                blob: l.name(),
                expected,
                found: size,
            });
        }
        let mut head = [0u8; 4];
        let head_len = size.min(head.len() as u64) as usize;
        file.read_exact_at(&mut head[..head_len], offset)?;
        Ok(LayerBlob {
            file,
            offset,
            size,
            compression: Compression::sniff(&head[..head_len]),
        })
    }

    /// Layer `l`'s stored size, to schedule the biggest layers first (0 when it cannot be
    /// found: reading it will say why).
    pub fn layer_size(&self, l: &LayerRef) -> u64 {
        l.size
            .or_else(|| self.store.locate(&l.location).ok().map(|(_, _, n)| n))
            .unwrap_or(0)
    }
}

/// A source's store, before an image is chosen in it.
struct Opened {
    store: Store,
    pulled: Option<Box<dyn Spool>>,
    name: String,
    format: Format,
    has_index: bool,
    has_docker: bool,
}

/// Opens a source's store (a registry's manifests spooled, the engine's save spooled) and
/// detects its format.
fn open_store(spec: &SourceSpec, opts: &OpenOptions) -> Result<Opened> {
    let name = spec.display();
    let mut pulled = None;
    let store = match (&spec.remote, &spec.path) {
        (Some(rem @ Remote::Registry(r)), _) => {
            let p = remote::transports(rem)?.pull(r, &opts.access.source())?;
            let dir = Store::Dir(p.path().to_path_buf());
            pulled = Some(p);
            dir
        }
        (Some(rem @ Remote::Daemon(n)), _) => Store::Tar(TarStore::index(
            remote::transports(rem)?.engine_export(n)?,
            &name,
        )?),
        (None, None) => store::open_stdin(&opts.progress)?,
        (None, Some(p)) => store::open_path(p)?,
    };
    // image-spec requires `oci-layout` beside `index.json`; skopeo and stereoscope read
    // a layout without it, and so does this, with a warning.
    let has_index = store.exists(media::INDEX_FILE);
    let has_docker = store.exists(media::DOCKER_MANIFEST_FILE);
    let format = match (&store, has_index, has_docker) {
        (Store::Dir(_), true, _) => Format::Oci,
        (_, _, true) => Format::DockerArchive,
        (Store::Tar(_), true, false) => Format::OciArchive,
        _ => {
            return Err(Error::UnknownFormat {
                path: PathBuf::from(&name),
                reason: "found neither index.json nor manifest.json".into(),
            });
        }
    };
    if let Some(t) = spec.transport {
        let fits = match t {
            Format::Oci => format == Format::Oci,
            Format::OciArchive => {
                format == Format::OciArchive || (has_index && format != Format::Oci)
            }
            Format::DockerArchive => has_docker,
        };
        if !fits {
            return Err(Error::Usage(format!(
                "{name} is {}, not {}",
                format.name(),
                t.name()
            )));
        }
    }
    Ok(Opened {
        store,
        pulled,
        name,
        format,
        has_index,
        has_docker,
    })
}

/// Opens a source and chooses its image.
pub fn open(spec: &SourceSpec, opts: &OpenOptions) -> Result<Source> {
    let Opened {
        store,
        pulled,
        name,
        format,
        has_index,
        has_docker,
    } = open_store(spec, opts)?;
    let reader = Reader {
        store: &store,
        name: &name,
        pulled: pulled.as_deref(),
    };
    // Docker 25's save of an image it holds in its classic store writes
    // `"manifests": null` beside a full manifest.json: skopeo and go-containerregistry
    // read that archive through manifest.json, and so does this.
    let index_lists_nothing = has_docker && has_index && reader.index_lists_nothing()?;
    // `@N` is a docker-archive reference (the Nth entry of manifest.json), in Docker 25+
    // archives too: skopeo reads it there.
    let by_position = has_docker
        && spec
            .reference
            .as_deref()
            .and_then(|r| r.strip_prefix('@'))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    let mut image = if has_index && !index_lists_nothing && !by_position {
        let shape = match format {
            Format::DockerArchive => "docker save, OCI layout (Docker 25+)",
            Format::OciArchive => "OCI layout in a tar",
            Format::Oci => "OCI layout directory",
        };
        let docker_tags = if has_docker {
            reader.docker_tags_by_config()?
        } else {
            Vec::new()
        };
        reader.image_from_index(format, shape, spec.reference.as_deref(), opts, &docker_tags)?
    } else {
        reader.image_from_docker_manifest(spec.reference.as_deref(), opts)?
    };
    if has_index && !has_docker && !store.exists(media::OCI_LAYOUT_FILE) {
        image.warnings.push(
            "the layout has no oci-layout file (image-spec requires one); read as skopeo reads it"
                .into(),
        );
    }
    // A pulled image is read from a layout folder and an engine's from its `docker
    // save`: the shape names where it really came from.
    match &spec.remote {
        Some(Remote::Registry(_)) if image.docker_media_types => {
            image.shape = "a registry, Docker v2 schema 2 manifest";
        }
        Some(Remote::Registry(_)) => image.shape = "a registry, OCI image manifest",
        Some(Remote::Daemon(_)) => image.shape = "the Docker engine, exported by docker save",
        None => {}
    }
    if let Some(p) = &pulled {
        image.warnings.extend(p.warnings().iter().cloned());
        let layers: Vec<(Digest, u64)> = image
            .layers
            .iter()
            .filter_map(|l| Some((l.digest.clone()?, l.size?)))
            .collect();
        p.fetch_layers(&layers)?;
    }
    Ok(Source {
        store,
        image: drop_bad_names(image),
        pulled,
    })
}

/// One image of a multi-platform source, as its index describes it.
pub struct PlatformEntry {
    /// The platform it is picked by.
    pub platform: Option<Platform>,
    /// Its descriptor (its platform and annotations go into the output's index).
    pub descriptor: Value,
}

/// Every image of a source's index (`squash --all-platforms`).
pub struct Platforms {
    /// The source's format.
    pub format: Format,
    /// The images, in the index's order.
    pub images: Vec<PlatformEntry>,
    /// The annotations of the index that lists them.
    pub annotations: Option<Value>,
    /// The names the output takes when none is given: tags and bare ref names.
    pub names: (Vec<String>, Vec<String>),
    /// Attestations and artifacts left behind.
    pub warnings: Vec<String>,
    /// For a registry source, its repository (blobs are mounted from it).
    pub repo: Option<remote::MountFrom>,
}

/// Lists the images of a source's index, each to be opened with its platform.
pub fn platforms(spec: &SourceSpec, opts: &OpenOptions) -> Result<Platforms> {
    if spec.remote.is_none() && spec.path.is_none() {
        return Err(Error::Usage(
            "--all-platforms reads the source once per platform: give a file, folder or docker://, not stdin".into(),
        ));
    }
    let o = open_store(spec, opts)?;
    if !o.has_index {
        return Err(Error::Usage(format!(
            "{} holds one image and no index of platforms; squash it without --all-platforms",
            o.name
        )));
    }
    let reader = Reader {
        store: &o.store,
        name: &o.name,
        pulled: o.pulled.as_deref(),
    };
    let (index, candidates, mut warnings) = reader.candidates(spec.reference.as_deref())?;
    if let Some(p) = &o.pulled {
        warnings.extend(p.warnings().iter().cloned());
    }
    let Some(first) = candidates.first() else {
        return Err(Error::json("index.json", "no image manifests"));
    };
    // The index that lists the platforms: index.json's one nested index, or itself.
    let entries = index["manifests"].as_array().map_or(&[][..], |v| v);
    let annotations = match entries {
        [one]
            if one
                .get("mediaType")
                .and_then(Value::as_str)
                .is_some_and(media::is_index) =>
        {
            let (bytes, _) = reader.read_descriptor(one, "nested index")?;
            parse_json(&bytes, "nested index")?
                .get("annotations")
                .cloned()
        }
        _ => index.get("annotations").cloned(),
    };
    let tags = first
        .names
        .iter()
        .filter(|n| n.contains(':'))
        .cloned()
        .collect();
    let names = (tags, first.bare_ref.iter().cloned().collect());
    Ok(Platforms {
        format: o.format,
        names,
        annotations,
        warnings,
        repo: o.pulled.map(|p| p.mount_from()),
        images: candidates
            .into_iter()
            .map(|c| PlatformEntry {
                platform: c.platform,
                descriptor: c.descriptor,
            })
            .collect(),
    })
}

/// Input names are copied into the output (`manifest.json`, `repositories`,
/// annotations): one that Docker would not accept as a reference (control characters,
/// `../`, 300 characters) is left out, with a warning.
fn drop_bad_names(mut image: Image) -> Image {
    let mut warnings = Vec::new();
    image.tags.retain(|t| match media::reference_problem(t) {
        None => true,
        Some(why) => {
            warnings.push(format!(
                "the input's name {:?} is not copied: {why}",
                crate::layer::path::escape(t.as_bytes())
            ));
            false
        }
    });
    image.ref_names.retain(|r| {
        let ok = media::is_ref_name(r);
        if !ok {
            warnings.push(format!(
                "the input's ref name {:?} is not copied: not an image-spec ref name",
                crate::layer::path::escape(r.as_bytes())
            ));
        }
        ok
    });
    image.warnings.extend(warnings);
    image
}

struct Reader<'a> {
    store: &'a Store,
    name: &'a str,
    /// A registry source's spool: the chosen image's config is fetched into it.
    pulled: Option<&'a dyn Spool>,
}

fn field<'v>(v: &'v Value, key: &str, what: &str) -> Result<&'v Value> {
    v.get(key)
        .ok_or_else(|| Error::json(what, format!("missing field {key:?}")))
}

fn str_field<'v>(v: &'v Value, key: &str, what: &str) -> Result<&'v str> {
    field(v, key, what)?
        .as_str()
        .ok_or_else(|| Error::json(what, format!("field {key:?} is not a string")))
}

fn parse_json(bytes: &[u8], what: &str) -> Result<Value> {
    serde_json::from_slice(bytes).map_err(|e| Error::json(what, e))
}

/// A descriptor's digest, when it is one this reader can check.
fn descriptor_digest(d: &Value, what: &str) -> Result<Digest> {
    let digest = str_field(d, "digest", what)?;
    Digest::parse(digest).ok_or_else(|| Error::json(what, format!("unsupported digest {digest:?}")))
}

impl Reader<'_> {
    /// Reads a blob named by a descriptor and checks its size and digest.
    fn read_descriptor(&self, d: &Value, what: &str) -> Result<(Vec<u8>, Digest)> {
        let digest = descriptor_digest(d, what)?;
        let location = format!("{}/{}", media::BLOBS_DIR, digest.hex());
        let bytes = self
            .store
            .read_small(&location, JSON_LIMIT)
            .map_err(|e| match e {
                Error::MissingBlob { .. } => Error::MissingBlob {
                    blob: format!("{digest} ({what})"),
                    source_name: self.name.to_string(),
                },
                other => other,
            })?;
        if let Some(size) = descriptor_size(d, what)?
            && size != bytes.len() as u64
        {
            return Err(Error::SizeMismatch {
                blob: format!("{digest} ({what})"),
                expected: size,
                found: bytes.len() as u64,
            });
        }
        check_digest(&bytes, &digest, what)?;
        Ok((bytes, digest))
    }

    /// `index.json` and its images (attestations and artifacts left behind, said in the
    /// warnings), only those named `reference` when one is given.
    fn candidates(&self, reference: Option<&str>) -> Result<(Value, Vec<Candidate>, Vec<String>)> {
        let index = parse_json(
            &self.store.read_small(media::INDEX_FILE, JSON_LIMIT)?,
            "index.json",
        )?;
        let mut walk = index::walk(&index, &|d, what| self.read_descriptor(d, what))?;
        let all_names: Vec<String> = walk
            .candidates
            .iter()
            .flat_map(|c| c.names.clone())
            .collect();
        if let Err(reason) = index::select(&mut walk, reference) {
            return Err(self.choice_error(reason, all_names));
        }
        Ok((index, walk.candidates, walk.warnings))
    }

    // Long: image-spec's checks of one chosen image in their order (descriptor, platform,
    // manifest media type, config, each layer's type), each error naming the document it
    // read; the checks share the descriptor and the names found on the way down.
    fn image_from_index(
        &self,
        format: Format,
        shape: &'static str,
        reference: Option<&str>,
        opts: &OpenOptions,
        docker_tags: &[(Digest, Vec<String>)],
    ) -> Result<Image> {
        let (_, candidates, warnings) = self.candidates(reference)?;
        if candidates.is_empty() {
            // Say what the index held instead.
            let mut why = warnings.join("; ");
            if why.is_empty() {
                why = "it lists none".into();
            }
            return Err(Error::json(
                "index.json",
                format!("no image manifests ({why})"),
            ));
        }
        let chosen = self.choose_platform(candidates, opts)?;
        let (manifest_bytes, manifest_digest) =
            self.read_descriptor(&chosen.descriptor, "manifest")?;
        let manifest = parse_json(&manifest_bytes, "manifest")?;
        let what = format!("manifest {manifest_digest}");
        let media_type = manifest
            .get("mediaType")
            .and_then(Value::as_str)
            .or_else(|| chosen.descriptor.get("mediaType").and_then(Value::as_str))
            .unwrap_or(media::OCI_MANIFEST);
        if !media::is_manifest(media_type) {
            return Err(Error::UnsupportedMediaType {
                media_type: media_type.into(),
                what,
            });
        }
        let config_desc = field(&manifest, "config", &what)?;
        if let Some(reason) = index::manifest_artifact(&manifest) {
            return Err(Error::NotAnImage {
                what: match chosen.names.first() {
                    Some(n) => format!("{what} (named {n:?})"),
                    None => what,
                },
                reason,
                source_name: self.name.to_string(),
            });
        }
        if let Some(p) = self.pulled {
            p.fetch_config(
                &descriptor_digest(config_desc, "config")?,
                descriptor_size(config_desc, "config")?,
            )?;
        }
        let layer_descs = field(&manifest, "layers", &what)?
            .as_array()
            .ok_or_else(|| Error::json(&what, "layers is not an array"))?;
        // Layers of no layer type say more of what the manifest is than its config does
        // (an artifact with an image config type and `{}` for a config).
        for (i, d) in layer_descs.iter().enumerate() {
            let lwhat = format!("layer {}", i + 1);
            check_layer_media_type(str_field(d, "mediaType", &lwhat)?, &lwhat)?;
        }
        let (config, config_digest) = self.read_descriptor(config_desc, "config")?;
        let config_json = parse_json(&config, "config")?;
        let diff_ids = diff_ids(&config_json)?;
        if layer_descs.len() != diff_ids.len() {
            return Err(Error::json(
                &what,
                format!(
                    "{} layers but the config lists {} diff_ids",
                    layer_descs.len(),
                    diff_ids.len()
                ),
            ));
        }
        let mut layers = Vec::new();
        for (i, (d, diff_id)) in layer_descs.iter().zip(diff_ids).enumerate() {
            let lwhat = format!("layer {}", i + 1);
            let layer_media = str_field(d, "mediaType", &lwhat)?;
            let digest_str = str_field(d, "digest", &lwhat)?;
            let digest = Digest::parse(digest_str)
                .ok_or_else(|| Error::json(&lwhat, format!("unsupported digest {digest_str:?}")))?;
            layers.push(LayerRef {
                position: i + 1,
                location: format!("{}/{}", media::BLOBS_DIR, digest.hex()),
                digest: Some(digest),
                size: descriptor_size(d, &lwhat)?,
                media_type: Some(layer_media.to_string()),
                diff_id,
                annotations: d.get("annotations").cloned(),
            });
        }
        let mut tags: Vec<String> = chosen
            .names
            .iter()
            .filter(|n| n.contains(':') || !n.contains('/'))
            .cloned()
            .collect();
        // Docker 25+ writes both the full name and the bare tag; keep the full name.
        if tags.iter().any(|t| t.contains(':')) {
            tags.retain(|t| t.contains(':'));
        }
        for (d, t) in docker_tags {
            if *d == config_digest {
                tags.extend(t.iter().cloned());
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        tags.retain(|t| seen.insert(normalize_ref(t)));
        Ok(Image {
            format,
            shape,
            config,
            config_json,
            config_media_type: str_field(config_desc, "mediaType", "config descriptor")
                .unwrap_or(media::OCI_CONFIG)
                .to_string(),
            docker_media_types: media_type == media::DOCKER_MANIFEST,
            manifest_annotations: manifest.get("annotations").cloned(),
            layers,
            tags,
            ref_names: chosen.bare_ref.into_iter().collect(),
            warnings,
        })
    }

    // Long: the platform choice (--platform, else the host's) and the refusals that list
    // what the index offers when it leaves no single image; they share the candidates
    // and their description.
    fn choose_platform(
        &self,
        mut candidates: Vec<Candidate>,
        opts: &OpenOptions,
    ) -> Result<Candidate> {
        let describe = |cs: &[Candidate]| {
            cs.iter()
                .map(|c| {
                    c.platform
                        .as_ref()
                        .map_or_else(|| "unspecified".to_string(), Platform::to_string)
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        if candidates.is_empty() {
            return Err(Error::json("index.json", "no image manifests"));
        }
        let wanted = opts.platform.clone();
        let host = Platform::host();
        let filter = |cs: &mut Vec<Candidate>, p: &Platform| {
            cs.retain(|c| c.platform.as_ref().is_none_or(|cp| p.accepts(cp)))
        };
        match &wanted {
            Some(p) => {
                let available = describe(&candidates);
                filter(&mut candidates, p);
                if candidates.is_empty() {
                    return Err(Error::NoSuchPlatform {
                        wanted: p.to_string(),
                        source_name: self.name.into(),
                        available,
                    });
                }
            }
            None if candidates.len() > 1 => {
                let available = describe(&candidates);
                let mut on_host: Vec<Candidate> = Vec::new();
                let mut rest = Vec::new();
                for c in candidates {
                    if c.platform.as_ref().is_some_and(|cp| host.accepts(cp)) {
                        on_host.push(c)
                    } else {
                        rest.push(c)
                    }
                }
                candidates = if on_host.is_empty() { rest } else { on_host };
                if candidates.iter().all(|c| c.platform.is_some())
                    && candidates.len() > 1
                    && candidates
                        .iter()
                        .any(|c| !host.accepts(c.platform.as_ref().unwrap()))
                {
                    return Err(Error::NoSuchPlatform {
                        wanted: format!("{host} (the host's; use --platform)"),
                        source_name: self.name.into(),
                        available,
                    });
                }
            }
            None => {}
        }
        if candidates.len() > 1 {
            let first = &candidates[0].names;
            if !first.is_empty() && candidates.iter().all(|c| c.names == *first) {
                // Names that do not tell the images apart are no choice: offer digests.
                return Err(self.choice_error(
                    format!(
                        "{} images are named {:?}",
                        candidates.len(),
                        first.join(", ")
                    ),
                    candidates.iter().map(|c| format!("@{}", c.digest())),
                ));
            }
            let names = candidates
                .iter()
                .flat_map(|c| c.names.clone())
                .collect::<Vec<_>>();
            return Err(self.choice_error("several images".into(), names));
        }
        Ok(candidates.remove(0))
    }

    fn choice_error(&self, reason: String, names: impl IntoIterator<Item = String>) -> Error {
        let mut names: Vec<String> = names.into_iter().collect();
        names.sort();
        names.dedup();
        let choices = if names.is_empty() {
            "(the images have no names)".to_string()
        } else {
            names.join(", ")
        };
        Error::ImageChoice {
            reason,
            source_name: self.name.into(),
            choices,
        }
    }

    /// Whether `index.json` lists no manifest (`"manifests": null` or `[]`).
    fn index_lists_nothing(&self) -> Result<bool> {
        let index = parse_json(
            &self.store.read_small(media::INDEX_FILE, JSON_LIMIT)?,
            "index.json",
        )?;
        Ok(match index.get("manifests") {
            None | Some(Value::Null) => true,
            Some(Value::Array(a)) => a.is_empty(),
            Some(_) => false,
        })
    }

    /// `manifest.json` of a `docker save` archive: (config digest, RepoTags) per entry.
    fn docker_manifest(&self) -> Result<Vec<Value>> {
        let v = parse_json(
            &self
                .store
                .read_small(media::DOCKER_MANIFEST_FILE, JSON_LIMIT)?,
            "manifest.json",
        )?;
        v.as_array()
            .cloned()
            .ok_or_else(|| Error::json("manifest.json", "not an array"))
    }

    fn docker_tags_by_config(&self) -> Result<Vec<(Digest, Vec<String>)>> {
        let mut out = Vec::new();
        for entry in self.docker_manifest()? {
            let config = str_field(&entry, "Config", "manifest.json")?;
            if let Some(d) = digest_from_location(config) {
                out.push((d, repo_tags(&entry)));
            }
        }
        Ok(out)
    }

    // Long: `docker save`'s manifest.json read as Docker reads it (the entry chosen, its
    // config, its layers as paths or blobs), each step naming the entry in its errors.
    fn image_from_docker_manifest(
        &self,
        reference: Option<&str>,
        opts: &OpenOptions,
    ) -> Result<Image> {
        let entries = self.docker_manifest()?;
        let all_names = || {
            entries.iter().enumerate().flat_map(|(i, e)| {
                let t = repo_tags(e);
                if t.is_empty() {
                    vec![format!("@{i}")]
                } else {
                    t
                }
            })
        };
        let chosen = match reference {
            Some(r) if r.starts_with('@') => r[1..]
                .parse::<usize>()
                .ok()
                .and_then(|i| entries.get(i))
                .ok_or_else(|| self.choice_error(format!("no image {r}"), all_names()))?,
            Some(r) => entries
                .iter()
                .find(|e| matches_reference(&repo_tags(e), r))
                .ok_or_else(|| self.choice_error(format!("no image named {r:?}"), all_names()))?,
            None if entries.len() == 1 => &entries[0],
            None if entries.is_empty() => return Err(Error::json("manifest.json", "no images")),
            None => return Err(self.choice_error("several images".into(), all_names())),
        };
        let what = "manifest.json";
        let config_loc = str_field(chosen, "Config", what)?;
        let config = self.store.read_small(config_loc, JSON_LIMIT)?;
        let mut warnings = Vec::new();
        match digest_from_location(config_loc) {
            // A content-addressed blob's name is a claim.
            Some(d) if config_loc.starts_with(media::BLOBS_DIR) => {
                check_digest(&config, &d, &format!("config {config_loc}"))?
            }
            // A classic save names the config by the image ID, but the name is only a
            // path: docker load and skopeo compute the ID from the bytes, and
            // go-containerregistry's tarball writer names it otherwise.
            Some(d) if Digest::of(&config) != d => warnings.push(format!(
                "the config {:?} is not named by its digest ({}): read by its path, as docker load does",
                crate::layer::path::escape(config_loc.as_bytes()),
                Digest::of(&config)
            )),
            _ => {}
        }
        let config_json = parse_json(&config, "config")?;
        let platform = Platform::of_config(&config_json);
        if let Some(p) = &opts.platform
            && !p.accepts(&platform)
        {
            return Err(Error::NoSuchPlatform {
                wanted: p.to_string(),
                source_name: self.name.into(),
                available: platform.to_string(),
            });
        }
        let diff_ids = diff_ids(&config_json)?;
        let locations = field(chosen, "Layers", what)?
            .as_array()
            .ok_or_else(|| Error::json(what, "Layers is not an array"))?;
        if locations.len() != diff_ids.len() {
            return Err(Error::json(
                what,
                format!(
                    "{} layers but the config lists {} diff_ids",
                    locations.len(),
                    diff_ids.len()
                ),
            ));
        }
        let mut layers = Vec::new();
        for (i, (loc, diff_id)) in locations.iter().zip(diff_ids).enumerate() {
            let loc = loc
                .as_str()
                .ok_or_else(|| Error::json(what, "a layer path is not a string"))?;
            layers.push(LayerRef {
                position: i + 1,
                location: loc.to_string(),
                digest: digest_from_location(loc),
                size: None,
                media_type: None,
                diff_id,
                annotations: None,
            });
        }
        Ok(Image {
            format: Format::DockerArchive,
            shape: "docker save, classic",
            config,
            config_json,
            config_media_type: media::OCI_CONFIG.to_string(),
            docker_media_types: false,
            manifest_annotations: None,
            layers,
            tags: repo_tags(chosen),
            ref_names: Vec::new(),
            warnings,
        })
    }
}

fn repo_tags(entry: &Value) -> Vec<String> {
    entry
        .get("RepoTags")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// The digest a `docker save` path promises: `blobs/sha256/<hex>` or `<hex>.json`.
fn digest_from_location(loc: &str) -> Option<Digest> {
    let file = loc.rsplit('/').next()?;
    let hex = if loc.starts_with(media::BLOBS_DIR) {
        file
    } else {
        file.strip_suffix(".json")?
    };
    Digest::parse(&format!("sha256:{hex}"))
}

/// A descriptor's `size`: absent, or a non-negative integer (image-spec
/// `descriptor.md`: "int64"); `-1`, `1.5` or `"12"` are refused as Go refuses them.
fn descriptor_size(d: &Value, what: &str) -> Result<Option<u64>> {
    match d.get("size") {
        None => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or_else(|| {
            Error::json(
                what,
                format!("descriptor size {v} is not a non-negative integer"),
            )
        }),
    }
}

fn check_digest(bytes: &[u8], expected: &Digest, what: &str) -> Result<()> {
    let found = Digest::of(bytes);
    if &found != expected {
        return Err(Error::DigestMismatch {
            blob: format!("{expected} ({what})"),
            expected: expected.to_string(),
            found: found.to_string(),
        });
    }
    Ok(())
}

fn diff_ids(config: &Value) -> Result<Vec<Digest>> {
    let ids = config
        .pointer("/rootfs/diff_ids")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::json("config", "missing rootfs.diff_ids"))?;
    ids.iter()
        .map(|v| {
            v.as_str()
                .and_then(Digest::parse)
                .ok_or_else(|| Error::json("config", format!("bad diff_id {v}")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_spec_table() {
        let p = |s: &str| SourceSpec::parse(s);
        assert_eq!(p("-").path, None);
        let s = p("oci:/no/such/dir:app:1");
        assert_eq!(
            (s.path.unwrap(), s.transport, s.reference.as_deref()),
            (
                PathBuf::from("/no/such/dir"),
                Some(Format::Oci),
                Some("app:1")
            )
        );
        let s = p("docker-archive:x.tar");
        assert_eq!(
            (s.transport, s.reference),
            (Some(Format::DockerArchive), None)
        );
        let s = p("oci-archive:-:latest");
        assert_eq!((s.path, s.reference.as_deref()), (None, Some("latest")));
        assert_eq!(p("plain.tar").transport, None);
    }

    #[test]
    fn digest_from_location_table() {
        let hex = "ab".repeat(32);
        assert!(digest_from_location(&format!("blobs/sha256/{hex}")).is_some());
        assert!(digest_from_location(&format!("{hex}.json")).is_some());
        assert!(digest_from_location(&format!("{hex}/layer.tar")).is_none());
        assert!(digest_from_location("config.json").is_none());
    }
}
