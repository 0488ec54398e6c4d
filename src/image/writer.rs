//! Writes an image to a sink: an OCI layout directory, an OCI archive, or a docker
//! archive (an OCI layout plus `manifest.json` and `repositories`, the shape Docker 25+
//! writes and every `docker load` since 1.10 reads), to a path or to stdout.
//!
//! Blobs are written into a staging folder beside the destination while layers stream;
//! the config, manifest and index are written last, and only a complete result is
//! renamed into place. A failure drops the staging folder, leaving nothing behind; so
//! does an interruption, through [`crate::cleanup`].
//! Every JSON document is written with sorted keys and every archive header is fixed
//! (mtime 0, uid 0, mode 0644/0755), so the same image gives the same bytes.

use super::Format;
use super::media;
use super::remote::{self, Access, MountFrom, Pushed, Remote};
use crate::cleanup::{STAGED, Staged};
use crate::digest::{Digest, Meter};
use crate::error::{Error, Result};
use serde_json::{Map, Value, json};
use std::fs::Permissions;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Where an image goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dest {
    /// A path, replaced atomically.
    Path(PathBuf),
    /// Standard output, as a tar stream.
    Stdout,
    /// A FIFO or character device (`/dev/stdout`, `/dev/null`, a named pipe), written
    /// into as a stream, as skopeo does: never renamed over or replaced.
    Node(PathBuf),
    /// A registry (`docker://HOST/REPO[:TAG|@DIGEST]`): pushed, the manifest last.
    Registry(String, Box<Access>),
    /// The Docker engine (`docker-daemon:NAME:TAG`): loaded as `docker load` would; the
    /// name is the output's first tag.
    Daemon,
}

impl Dest {
    /// `-` means stdout; a path leading (through symlinks) to a FIFO or a character
    /// device is a stream node.
    pub fn parse(s: &str) -> Dest {
        if s == "-" {
            Dest::Stdout
        } else {
            Dest::from_path(PathBuf::from(s))
        }
    }

    fn from_path(p: PathBuf) -> Dest {
        use std::os::unix::fs::FileTypeExt;
        match std::fs::metadata(&p) {
            Ok(m) if m.file_type().is_fifo() || m.file_type().is_char_device() => Dest::Node(p),
            _ => Dest::Path(p),
        }
    }

    /// Whether the image goes out as one tar stream (stdout or a stream node).
    pub fn is_stream(&self) -> bool {
        matches!(self, Dest::Stdout | Dest::Node(_))
    }

    /// The format a remote destination takes, when it is one.
    pub fn remote_format(&self) -> Option<Format> {
        match self {
            Dest::Registry(..) => Some(Format::Oci),
            Dest::Daemon => Some(Format::DockerArchive),
            _ => None,
        }
    }

    /// Checks, before any image byte is read, that the destination can be written.
    pub fn check(&self, format: Format) -> Result<()> {
        if let Some(f) = self.remote_format().filter(|f| *f != format) {
            return Err(Error::Usage(format!(
                "--format {}: a {} destination takes the image as {}",
                format.name(),
                if f == Format::Oci {
                    "registry"
                } else {
                    "docker-daemon"
                },
                f.name()
            )));
        }
        match self {
            // Reached (and credentials tried) before any image byte is read.
            Dest::Registry(spec, access) => {
                remote::transports(&Remote::Registry(spec.clone()))?.reach(spec, access)
            }
            Dest::Daemon => remote::transports(&Remote::Daemon(String::new()))?.engine_ping(),
            Dest::Stdout => {
                if format == Format::Oci {
                    return Err(Error::Usage("an OCI layout directory cannot be written to stdout; use --format oci-archive or docker-archive".into()));
                }
                if io::IsTerminal::is_terminal(&io::stdout()) {
                    return Err(Error::Usage(
                        "refusing to write an image archive to a terminal; redirect stdout".into(),
                    ));
                }
                Ok(())
            }
            Dest::Node(p) => {
                if format == Format::Oci {
                    return Err(Error::Usage(format!(
                        "{} is a FIFO or device: an OCI layout directory cannot be written into it; use --format oci-archive or docker-archive",
                        p.display()
                    )));
                }
                // As for stdout: `-o /dev/stderr` on a terminal would flood it. (Only
                // devices are opened to ask: opening a FIFO waits for its reader.)
                use std::os::unix::fs::FileTypeExt;
                let device = fs_err::metadata(p)?.file_type().is_char_device();
                if device
                    && io::IsTerminal::is_terminal(
                        &fs_err::OpenOptions::new()
                            .write(true)
                            .open(p)?
                            .into_parts()
                            .0,
                    )
                {
                    return Err(Error::Usage(format!(
                        "{} is a terminal; refusing to write an image archive to it",
                        p.display()
                    )));
                }
                Ok(())
            }
            Dest::Path(p) => {
                let parent = staging_parent(p);
                if !parent.is_dir() {
                    return Err(Error::Usage(format!(
                        "output folder {} does not exist",
                        parent.display()
                    )));
                }
                // A run adding to this folder right now is waited for, not seen halfway.
                let _turn = (format == Format::Oci && adds_to_folder(p))
                    .then(|| super::layout::lock(p))
                    .transpose()?;
                replaceable(p, format)
            }
        }
    }
}

/// What an output of `format` may be written over: nothing, a symlink (the link is
/// replaced, not what it points to), a regular file for an archive, never a device,
/// FIFO or socket; for a layout, an empty
/// folder or an OCI layout with a readable index (the image is added to it). Any other
/// folder is the user's.
fn replaceable(p: &Path, format: Format) -> Result<()> {
    let Ok(meta) = fs_err::symlink_metadata(p) else {
        return Ok(());
    };
    let refuse = |what: &str| {
        Err(Error::Usage(format!(
            "{} {what}; refusing to replace it (remove it or choose another -o)",
            p.display()
        )))
    };
    let t = meta.file_type();
    if !(t.is_file() || t.is_dir() || t.is_symlink()) {
        // A device, FIFO or socket: renaming over it would destroy it (`/dev/null`).
        return refuse("is a device, FIFO or socket");
    }
    match (meta.is_dir(), format) {
        (false, Format::Oci) if !meta.file_type().is_symlink() => {
            refuse("is a file, not an OCI layout")
        }
        (true, Format::Oci) => {
            if is_layout(p) {
                // The image is added to it: its index must be one to add to.
                super::layout::read_index(p).map(drop)
            } else if is_empty_but_staging(p)? {
                Ok(())
            } else {
                refuse("is a folder but not an OCI layout")
            }
        }
        (true, _) => refuse("is a folder, and the output is an archive"),
        _ => Ok(()),
    }
}

/// Whether a folder holds nothing but staging folders (ours, while it is written).
fn is_empty_but_staging(p: &Path) -> Result<bool> {
    for e in fs_err::read_dir(p)? {
        if !e?.file_name().to_string_lossy().starts_with(STAGING_PREFIX) {
            return Ok(false);
        }
    }
    Ok(true)
}

fn staging_parent(p: &Path) -> PathBuf {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Where and how to write an output image.
#[derive(Clone, Debug)]
pub struct OutputOptions {
    /// The destination.
    pub dest: Dest,
    /// Output format; `None` keeps the input's (docker archive for stdout).
    pub format: Option<Format>,
    /// Layer codec; `None` keeps the input's.
    pub compression: Option<crate::layer::codec::Compression>,
    /// Codec level; `None` for the codec's default.
    pub level: Option<i32>,
    /// Names for the output; empty keeps the input's (unless `ref_name` is given).
    pub tags: Vec<String>,
    /// A layout entry's `org.opencontainers.image.ref.name`, written as given (`-o
    /// oci:DIR:REF`, `-o oci-archive:FILE:REF`).
    pub ref_name: Option<String>,
}

impl OutputOptions {
    /// Reads `-o`: a path, `-`, or what skopeo takes as a destination:
    /// `oci:DIR[:REF]`, `oci-archive:FILE[:REF]` (REF becomes the entry's ref name) or
    /// `docker-archive:FILE[:NAME[:TAG]]` (a name, as `--tag`). The transport sets the
    /// format; a different `--format` is an error.
    pub fn parse(
        output: &str,
        format: Option<Format>,
        mut tags: Vec<String>,
        access: Access,
    ) -> Result<OutputOptions> {
        let spec = super::reader::SourceSpec::parse(output);
        let format = match (format, spec.transport) {
            (Some(f), Some(t)) if f != t => {
                return Err(Error::Usage(format!(
                    "-o {output} writes {} but --format is {}",
                    t.name(),
                    f.name()
                )));
            }
            (f, t) => f.or(t),
        };
        let dest = match &spec.remote {
            Some(Remote::Registry(r)) => Dest::Registry(r.clone(), Box::new(access.destination())),
            Some(Remote::Daemon(name)) => {
                if let Some(problem) = media::reference_problem(name) {
                    return Err(Error::Usage(format!("-o {output}: {problem}")));
                }
                tags.insert(0, name.clone());
                Dest::Daemon
            }
            None => spec.path.clone().map_or(Dest::Stdout, Dest::from_path),
        };
        let ref_name = match (spec.transport, spec.reference) {
            (Some(Format::DockerArchive), Some(name)) => {
                if let Some(problem) = media::reference_problem(&name) {
                    return Err(Error::Usage(format!("-o {output}: {problem}")));
                }
                tags.insert(0, name);
                None
            }
            (_, r) => r,
        };
        Ok(OutputOptions {
            dest,
            format,
            compression: None,
            level: None,
            tags,
            ref_name,
        })
    }

    /// Checks, before any image byte is read, the destination for `format`, the names
    /// and, when the codec is given, the level.
    pub fn check(&self, format: Format) -> Result<()> {
        if let (Dest::Registry(spec, _), Some(t)) = (&self.dest, self.tags.first()) {
            return Err(Error::Usage(format!(
                "--tag {t}: a push to docker://{spec} is named by that reference; push again to tag it otherwise"
            )));
        }
        self.dest.check(format)?;
        for t in &self.tags {
            if let Some(problem) = media::reference_problem(t) {
                return Err(Error::Usage(format!("--tag {t:?}: {problem}")));
            }
        }
        if let Some(r) = &self.ref_name {
            if let Some(problem) = media::ref_name_problem(r) {
                return Err(Error::Usage(format!("-o ...:{r}: {problem}")));
            }
            if format == Format::DockerArchive {
                return Err(Error::Usage(format!(
                    "-o ...:{r}: a docker archive names images with --tag, not a ref name"
                )));
            }
        }
        match (self.compression, self.level) {
            (Some(c), Some(level)) => c.check_level(level),
            _ => Ok(()),
        }
    }

    /// The output's names and layout ref names: `--tag`s and `-o ...:REF` when given,
    /// else the input's. An OCI output keeps an input ref name that had no Docker name
    /// as it is; a docker archive takes it as a name (`app` is `app:latest`).
    pub fn names(&self, format: Format, input: &super::Image) -> (Vec<String>, Vec<String>) {
        if !self.tags.is_empty() || self.ref_name.is_some() {
            return (self.tags.clone(), self.ref_name.iter().cloned().collect());
        }
        if format == Format::DockerArchive {
            return (input.tags.clone(), Vec::new());
        }
        let tags = input
            .tags
            .iter()
            .filter(|t| !input.ref_names.contains(t))
            .cloned()
            .collect();
        (tags, input.ref_names.clone())
    }
}

/// A layer as written.
#[derive(Clone, Debug)]
pub struct OutLayer {
    /// Blob digest.
    pub digest: Digest,
    /// Blob size.
    pub size: u64,
    /// Layer media type.
    pub media_type: String,
    /// Descriptor annotations carried from the input.
    pub annotations: Option<Value>,
}

/// Everything but the layer blobs, which are already staged.
#[derive(Clone, Debug)]
pub struct OutImage {
    /// Config bytes.
    pub config: Vec<u8>,
    /// Config media type.
    pub config_media_type: String,
    /// Manifest media type.
    pub manifest_media_type: String,
    /// Manifest annotations.
    pub manifest_annotations: Option<Value>,
    /// Layers, bottom first.
    pub layers: Vec<OutLayer>,
    /// Image names (`app:1`).
    pub tags: Vec<String>,
    /// Layout entries named as given (`org.opencontainers.image.ref.name` only).
    pub ref_names: Vec<String>,
    /// Documents about the image (its SBOM, the record of the slim), attached as
    /// referrers where the sink can hold them.
    pub attached: Vec<Attachment>,
}

/// A document attached to an image as a referrer: an artifact manifest whose `subject`
/// is the image's manifest, with the document as its one layer and the empty config
/// (image-spec `manifest.md`, "Guidelines for Artifact Usage"), as `oras attach` writes
/// it.
#[derive(Clone, Debug)]
pub struct Attachment {
    /// Its media type, also the manifest's `artifactType`.
    pub media_type: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// The manifest's annotations (`org.opencontainers.image.created`, ...).
    pub annotations: Value,
}

/// A staging folder of blobs, finished into a sink.
pub struct Staging {
    // Declared before `staged`: the folder is removed before it leaves the list.
    dir: tempfile::TempDir,
    staged: Staged,
    dest: Dest,
    format: Format,
    mount_from: Option<MountFrom>,
}

/// An image whose config and manifest are staged: what a registry push needs of it.
#[derive(Clone, Debug)]
pub struct StagedImage {
    /// The manifest's digest.
    pub digest: Digest,
    /// The manifest's bytes.
    pub manifest: Vec<u8>,
    /// The manifest's media type.
    pub media_type: String,
    /// Its blobs, layers first, the config last.
    pub blobs: Vec<(Digest, u64)>,
}

/// What finishing a staged image did.
#[derive(Debug, Default)]
pub struct Finished {
    /// What was left as it was.
    pub warnings: Vec<String>,
    /// For a registry destination, what the push did.
    pub pushed: Option<Pushed>,
}

/// A blob being written into staging; `finish` names it by its digest.
pub struct BlobWriter {
    file: Meter<BufWriter<tempfile::NamedTempFile>>,
    blobs: PathBuf,
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl BlobWriter {
    /// Moves the blob to `blobs/sha256/<hex>` and returns its digest and size.
    pub fn finish(self) -> Result<(Digest, u64)> {
        let (buf, digest, size) = self.file.finish();
        let tmp = buf.into_inner().map_err(|e| e.into_error())?;
        tmp.persist(self.blobs.join(digest.hex()))
            .map_err(|e| e.error)?;
        Ok((digest, size))
    }
}

const STAGING_PREFIX: &str = ".ocislim-";

impl Staging {
    /// Creates the staging folder next to the destination, inside it when the image is
    /// added to an existing folder (which may be a mount point, as `docker run -v
    /// out:/out` makes it), or in `$TMPDIR` for stdout.
    pub fn new(dest: Dest, format: Format) -> Result<Staging> {
        let (dir, staged) = STAGED.create(|| match &dest {
            Dest::Stdout | Dest::Node(_) | Dest::Registry(..) | Dest::Daemon => {
                tempfile::Builder::new().prefix(STAGING_PREFIX).tempdir()
            }
            // The staged folder may become the OCI layout: give it the umask's mode.
            Dest::Path(p) => tempfile::Builder::new()
                .prefix(STAGING_PREFIX)
                .permissions(Permissions::from_mode(0o777))
                .tempdir_in(if format == Format::Oci && adds_to_folder(p) {
                    p.clone()
                } else {
                    staging_parent(p)
                }),
        })?;
        fs_err::create_dir_all(dir.path().join(media::BLOBS_DIR))?;
        Ok(Staging {
            dir,
            staged,
            dest,
            format,
            mount_from: None,
        })
    }

    /// The repository the image was pulled from: a push to another repository of the
    /// same registry mounts its blobs instead of uploading them.
    pub fn mount_from(&mut self, repo: Option<MountFrom>) {
        self.mount_from = repo;
    }

    /// The staging folder, for spool files that must vanish with it.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    fn blobs(&self) -> PathBuf {
        self.dir.path().join(media::BLOBS_DIR)
    }

    /// Starts writing a blob.
    pub fn blob_writer(&self) -> Result<BlobWriter> {
        let tmp = tempfile::Builder::new()
            .prefix(".tmp-")
            .permissions(Permissions::from_mode(0o666))
            .tempfile_in(self.blobs())?;
        Ok(BlobWriter {
            file: Meter::new(BufWriter::with_capacity(1 << 20, tmp)),
            blobs: self.blobs(),
        })
    }

    /// Where the blob `digest` is staged.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blobs().join(digest.hex())
    }

    /// Stages a copy of a blob already written elsewhere (a cached squashed layer, its
    /// digest checked by the caller), never a hard link: the output shares no file
    /// with where it came from.
    pub fn adopt(&self, from: &Path, digest: &Digest) -> Result<()> {
        let to = self.blob_path(digest);
        if !to.exists() {
            fs_err::copy(from, &to)?;
        }
        Ok(())
    }

    /// Writes a small blob whole.
    pub fn add_bytes(&self, bytes: &[u8]) -> Result<(Digest, u64)> {
        let mut w = self.blob_writer()?;
        w.write_all(bytes)?;
        w.finish()
    }

    /// Writes config, manifest and index, then moves the result into place. Returns
    /// warnings about what was left as it was.
    pub fn finish(self, image: &OutImage) -> Result<Finished> {
        let staged = self.stage_image(image)?;
        let base = json!({"mediaType": image.manifest_media_type, "digest": staged.digest.as_str(), "size": staged.manifest.len()});
        let mut warnings = Vec::new();
        let referrers = if image.attached.is_empty() {
            Vec::new()
        } else if self.format == Format::DockerArchive {
            warnings.push(format!(
                "a docker archive holds no referrers: {} documents about the image were not attached",
                image.attached.len()
            ));
            Vec::new()
        } else {
            image
                .attached
                .iter()
                .map(|a| self.stage_referrer(a, &base))
                .collect::<Result<Vec<_>>>()?
        };
        // In a layout's index without a name, as `oras attach` lists them; a registry
        // lists them itself.
        let listed: Vec<Value> = if matches!(self.dest, Dest::Registry(..)) {
            Vec::new()
        } else {
            referrers.iter().map(|(r, artifact_type)| {
                json!({"mediaType": media::OCI_MANIFEST, "digest": r.digest.as_str(), "size": r.manifest.len(), "artifactType": artifact_type})
            }).collect()
        };
        let descriptors = self.write_top(base, (&image.tags, &image.ref_names), listed)?;
        let top_files = self.write_docker_files(&staged, &image.tags)?;
        let name = image.tags.first().map_or("", |t| t.as_str()).to_string();
        let referrers: Vec<StagedImage> = referrers.into_iter().map(|(r, _)| r).collect();
        let mut finished =
            self.deliver(&descriptors, &top_files, &name, &[staged], None, &referrers)?;
        finished.warnings.splice(0..0, warnings);
        Ok(finished)
    }

    /// Stages `a` as a referrer of the manifest `subject` (a descriptor): its blob, the
    /// empty config and the artifact manifest. Returns it and its `artifactType`.
    fn stage_referrer(&self, a: &Attachment, subject: &Value) -> Result<(StagedImage, String)> {
        let (digest, size) = self.add_bytes(&a.bytes)?;
        let (empty, empty_size) = self.add_bytes(media::EMPTY_JSON)?;
        let mut manifest = json!({
            "schemaVersion": 2,
            "mediaType": media::OCI_MANIFEST,
            "artifactType": a.media_type,
            "config": {"mediaType": media::OCI_EMPTY, "digest": empty.as_str(), "size": empty_size},
            "layers": [{"mediaType": a.media_type, "digest": digest.as_str(), "size": size}],
            "subject": subject,
        });
        if a.annotations.as_object().is_some_and(|o| !o.is_empty()) {
            manifest["annotations"] = a.annotations.clone();
        }
        let bytes = serde_json::to_vec(&manifest).map_err(io::Error::other)?;
        let (manifest_digest, _) = self.add_bytes(&bytes)?;
        Ok((
            StagedImage {
                digest: manifest_digest,
                manifest: bytes,
                media_type: media::OCI_MANIFEST.to_string(),
                blobs: vec![(digest, size), (empty, empty_size)],
            },
            a.media_type.clone(),
        ))
    }

    /// For a docker archive, writes `manifest.json` and `repositories` naming `image`
    /// under `tags`, beside the OCI layout's files (Docker 25+'s shape). Returns the top
    /// files the archive holds.
    fn write_docker_files(
        &self,
        image: &StagedImage,
        tags: &[String],
    ) -> Result<Vec<&'static str>> {
        let mut top_files = vec![media::OCI_LAYOUT_FILE, media::INDEX_FILE];
        if self.format != Format::DockerArchive {
            return Ok(top_files);
        }
        let root = self.dir.path();
        let (config, layers) = image.blobs.split_last().expect("an image has a config");
        let tags: Vec<String> = tags.iter().map(|t| media::normalize_ref(t)).collect();
        let docker = json!([{
            "Config": format!("{}/{}", media::BLOBS_DIR, config.0.hex()),
            "RepoTags": tags,
            "Layers": layers.iter().map(|(d, _)| format!("{}/{}", media::BLOBS_DIR, d.hex())).collect::<Vec<_>>(),
        }]);
        write_json(&root.join(media::DOCKER_MANIFEST_FILE), &docker)?;
        let mut repos = Map::new();
        let top = layers.last().unwrap_or(config).0.hex();
        for t in &tags {
            let (name, tag) = t.rsplit_once(':').unwrap_or((t, "latest"));
            let entry = repos.entry(name.to_string()).or_insert_with(|| json!({}));
            entry[tag] = json!(top);
        }
        write_json(
            &root.join(media::DOCKER_REPOSITORIES_FILE),
            &Value::Object(repos),
        )?;
        top_files.extend([media::DOCKER_MANIFEST_FILE, media::DOCKER_REPOSITORIES_FILE]);
        Ok(top_files)
    }

    /// Writes an image's config and manifest into staging (its layers are there already);
    /// returns what a push needs of it.
    pub fn stage_image(&self, image: &OutImage) -> Result<StagedImage> {
        let (config_digest, config_size) = self.add_bytes(&image.config)?;
        let layers: Vec<Value> = image
            .layers
            .iter()
            .map(|l| {
                let mut d =
                    json!({"mediaType": l.media_type, "digest": l.digest.as_str(), "size": l.size});
                if let Some(a) = &l.annotations {
                    d["annotations"] = a.clone();
                }
                d
            })
            .collect();
        let mut manifest = json!({
            "schemaVersion": 2,
            "mediaType": image.manifest_media_type,
            "config": {"mediaType": image.config_media_type, "digest": config_digest.as_str(), "size": config_size},
            "layers": layers,
        });
        if let Some(a) = &image.manifest_annotations {
            manifest["annotations"] = a.clone();
        }
        let manifest_bytes = serde_json::to_vec(&manifest).map_err(io::Error::other)?;
        let (digest, _) = self.add_bytes(&manifest_bytes)?;
        let mut blobs: Vec<(Digest, u64)> = image
            .layers
            .iter()
            .map(|l| (l.digest.clone(), l.size))
            .collect();
        blobs.push((config_digest, config_size));
        Ok(StagedImage {
            digest,
            manifest: manifest_bytes,
            media_type: image.manifest_media_type.clone(),
            blobs,
        })
    }

    /// Finishes an index of staged images (`--all-platforms`): `index` is written as a
    /// blob and named in `index.json` (or pushed under the destination's tag, after every
    /// image by digest). A docker archive (or the engine) gets Docker 25+'s shape of a
    /// multi-platform save: the index in `index.json`, and in `manifest.json` one image,
    /// `images[native]`, under the tags, for engines that read only that file.
    pub fn finish_index(
        self,
        images: &[StagedImage],
        native: usize,
        index: &Value,
        tags: &[String],
        ref_names: &[String],
    ) -> Result<Finished> {
        let bytes = serde_json::to_vec(index).map_err(io::Error::other)?;
        let (digest, size) = self.add_bytes(&bytes)?;
        let base = json!({"mediaType": media::OCI_INDEX, "digest": digest.as_str(), "size": size});
        let descriptors = self.write_top(base, (tags, ref_names), Vec::new())?;
        let top_files = self.write_docker_files(&images[native], tags)?;
        let name = tags.first().map_or("", |t| t.as_str());
        self.deliver(
            &descriptors,
            &top_files,
            name,
            images,
            Some((&bytes, &digest)),
            &[],
        )
    }

    /// Writes `index.json` (one entry per name, pointing at `base`, then `unnamed`) and
    /// `oci-layout`.
    fn write_top(
        &self,
        base: Value,
        (tags, ref_names): (&[String], &[String]),
        unnamed: Vec<Value>,
    ) -> Result<Vec<Value>> {
        let root = self.dir.path();
        let mut descriptors = Vec::new();
        for tag in tags {
            let mut d = base.clone();
            let mut ann = Map::new();
            ann.insert(media::CONTAINERD_IMAGE_NAME.into(), json!(full_name(tag)));
            ann.insert(media::REF_NAME.into(), json!(media::tag_of(tag)));
            d["annotations"] = Value::Object(ann);
            descriptors.push(d);
        }
        for r in ref_names {
            let mut d = base.clone();
            d["annotations"] = json!({media::REF_NAME: r});
            descriptors.push(d);
        }
        if descriptors.is_empty() {
            descriptors.push(base);
        }
        descriptors.extend(unnamed);
        let index =
            json!({"schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": &descriptors});
        write_json(&root.join(media::INDEX_FILE), &index)?;
        fs_err::write(
            root.join(media::OCI_LAYOUT_FILE),
            format!(
                "{{\"imageLayoutVersion\":\"{}\"}}",
                media::OCI_LAYOUT_VERSION
            ),
        )?;
        Ok(descriptors)
    }

    // Long: one arm per sink (registry, engine, layout, archive path, stdout, a FIFO or
    // device), each a few calls; a table of sinks reads better whole.
    /// Moves the staged result into its sink.
    fn deliver(
        self,
        descriptors: &[Value],
        top_files: &[&str],
        name: &str,
        images: &[StagedImage],
        index: Option<(&[u8], &Digest)>,
        referrers: &[StagedImage],
    ) -> Result<Finished> {
        let root = self.dir.path();
        let done = Ok(Finished::default());
        match (&self.dest, self.format) {
            (Dest::Registry(spec, access), _) => {
                let pushed = remote::transports(&Remote::Registry(spec.clone()))?.push(
                    root,
                    (images, index, referrers),
                    spec,
                    access,
                    self.mount_from.as_ref(),
                )?;
                Ok(Finished {
                    warnings: Vec::new(),
                    pushed: Some(pushed),
                })
            }
            (Dest::Daemon, _) => {
                let what = format!("docker-daemon:{name}");
                remote::transports(&Remote::Daemon(name.to_string()))?.engine_load(
                    &what,
                    &mut |w| {
                        let mut w = BufWriter::with_capacity(1 << 20, w);
                        write_archive(root, top_files, &mut w)?;
                        w.flush()?;
                        Ok(())
                    },
                )?;
                done
            }
            (Dest::Path(p), Format::Oci) => self
                .staged
                .commit(|| put_layout(self.dir, p, descriptors))
                .map(|warnings| Finished {
                    warnings,
                    pushed: None,
                }),
            (Dest::Path(p), _) => {
                let (tmp, staged) = STAGED.create(|| {
                    tempfile::Builder::new()
                        .prefix(STAGING_PREFIX)
                        .permissions(Permissions::from_mode(0o666))
                        .tempfile_in(staging_parent(p))
                })?;
                let mut w = BufWriter::with_capacity(1 << 20, tmp);
                write_archive(root, top_files, &mut w)?;
                let tmp = w.into_inner().map_err(|e| e.into_error())?;
                tmp.as_file().sync_all()?;
                replaceable(p, self.format)?;
                staged.commit(|| tmp.persist(p)).map_err(|e| e.error)?;
                done
            }
            (Dest::Stdout, _) => {
                let mut w = BufWriter::with_capacity(1 << 20, io::stdout().lock());
                // A closed pipe is an error here, not the quiet end of a `| head`.
                write_archive(root, top_files, &mut w).map_err(|e| match e {
                    Error::Io(e) => Error::Stdout(e),
                    e => e,
                })?;
                w.flush().map_err(Error::Stdout)?;
                done
            }
            (Dest::Node(p), _) => {
                // Opened only now, when the image is complete: a reader at the other end
                // of a FIFO sees a whole archive or nothing.
                let node = fs_err::OpenOptions::new().write(true).open(p)?;
                let mut w = BufWriter::with_capacity(1 << 20, node);
                write_archive(root, top_files, &mut w)?;
                w.flush()?;
                done
            }
        }
    }
}

/// A file written beside the image (`--report FILE`), checked before any image byte is
/// read and staged like the image: written under a temporary name in its folder while
/// the image is staged, renamed into place right after the image. A FIFO or character
/// device (`/dev/stderr`) is written into instead.
pub struct SideFile {
    path: PathBuf,
    staged: Option<(tempfile::NamedTempFile, Staged)>,
    bytes: Vec<u8>,
}

impl SideFile {
    /// Checks `path` (named `flag` in errors) against the image's source and
    /// destination, which it must not be, and stages its temporary file.
    pub fn stage(path: &Path, flag: &str, others: &[&Path]) -> Result<SideFile> {
        let refuse = |why: &str| Err(Error::Usage(format!("{flag} {}: {why}", path.display())));
        let node = matches!(Dest::from_path(path.to_path_buf()), Dest::Node(_));
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            let t = meta.file_type();
            if t.is_dir() {
                return refuse("is a folder");
            }
            if !(node || t.is_file() || t.is_symlink()) {
                return refuse("is a device or socket; refusing to replace it");
            }
        }
        for other in others {
            if same_file(path, other) {
                return refuse(&format!(
                    "is also {}; refusing to overwrite it",
                    other.display()
                ));
            }
        }
        if node {
            return Ok(SideFile {
                path: path.to_path_buf(),
                staged: None,
                bytes: Vec::new(),
            });
        }
        let parent = staging_parent(path);
        if !parent.is_dir() {
            return refuse("its folder does not exist");
        }
        let staged = STAGED.create(|| {
            tempfile::Builder::new()
                .prefix(STAGING_PREFIX)
                .permissions(Permissions::from_mode(0o666))
                .tempfile_in(&parent)
        })?;
        Ok(SideFile {
            path: path.to_path_buf(),
            staged: Some(staged),
            bytes: Vec::new(),
        })
    }

    /// Writes `bytes` into the staged file, replacing what an earlier call wrote; a
    /// stream node is written at [`SideFile::commit`].
    pub fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.bytes = bytes.to_vec();
        if let Some((tmp, _)) = &self.staged {
            let mut f = tmp.as_file();
            f.set_len(0)?;
            io::Seek::rewind(&mut f)?;
            f.write_all(bytes)?;
            f.sync_all()?;
        }
        Ok(())
    }

    /// Moves the file written into place (or writes it into the stream node).
    pub fn commit(self) -> Result<()> {
        match self.staged {
            None => {
                let mut node = fs_err::OpenOptions::new().write(true).open(&self.path)?;
                node.write_all(&self.bytes)?;
                Ok(())
            }
            Some((tmp, staged)) => {
                staged
                    .commit(|| tmp.persist(&self.path))
                    .map_err(|e| e.error)?;
                Ok(())
            }
        }
    }
}

/// Whether `a` and `b` name the same file: the same path once their folders are
/// resolved, or the same inode.
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    if let (Ok(x), Ok(y)) = (std::fs::metadata(a), std::fs::metadata(b))
        && x.dev() == y.dev()
        && x.ino() == y.ino()
    {
        return true;
    }
    let resolved = |p: &Path| {
        std::fs::canonicalize(staging_parent(p))
            .ok()
            .map(|d| d.join(p.file_name().unwrap_or_default()))
    };
    resolved(a).is_some() && resolved(a) == resolved(b)
}

/// `app:1` -> `docker.io/library/app:1`, as Docker 25+ writes `io.containerd.image.name`.
fn full_name(tag: &str) -> String {
    let n = media::normalize_ref(tag);
    let first = n.split('/').next().unwrap_or("");
    if n.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost") {
        n
    } else if n.contains('/') {
        format!("docker.io/{n}")
    } else {
        format!("docker.io/library/{n}")
    }
}

fn write_json(path: &Path, v: &Value) -> Result<()> {
    fs_err::write(path, serde_json::to_vec(v).map_err(io::Error::other)?)?;
    Ok(())
}

/// Puts the staged layout, whose index lists `entries`, at `dest`: renamed into place
/// when `dest` is absent or a symlink (the link is replaced); added to it when it is a
/// folder, empty or a layout.
fn put_layout(staged: tempfile::TempDir, dest: &Path, entries: &[Value]) -> Result<Vec<String>> {
    let staged = staged.keep();
    let result = (|| -> Result<Vec<String>> {
        let folder = adds_to_folder(dest);
        let _turn = folder.then(|| super::layout::lock(dest)).transpose()?;
        // Checked before the image was read; checked again, as the folder may have changed.
        replaceable(dest, Format::Oci)?;
        if folder {
            let mut warnings = super::layout::add(&staged, dest, entries)?;
            if let Err(e) = fs_err::remove_dir_all(&staged) {
                warnings.push(format!("the staging folder was left: {e}"));
            }
            return Ok(warnings);
        }
        if fs_err::symlink_metadata(dest).is_ok() {
            let old = tempfile::Builder::new()
                .prefix(STAGING_PREFIX)
                .tempdir_in(staging_parent(dest))?;
            let old_path = old.path().join("old");
            fs_err::rename(dest, &old_path)?;
            fs_err::rename(&staged, dest)?;
            drop(old); // removes the link
        } else {
            fs_err::rename(&staged, dest)?;
        }
        Ok(Vec::new())
    })();
    if result.is_err() {
        // Leave nothing behind: the staged layout is ours to remove.
        let _ = std::fs::remove_dir_all(&staged);
    }
    result
}

/// Whether a layout output at `p` is added to the folder there (a folder, not a symlink
/// to one) rather than renamed into place.
fn adds_to_folder(p: &Path) -> bool {
    fs_err::symlink_metadata(p).is_ok_and(|m| m.is_dir())
}

fn is_layout(dir: &Path) -> bool {
    dir.join(media::OCI_LAYOUT_FILE).is_file()
}

fn tar_header(kind: tar::EntryType, size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(if kind.is_dir() { 0o755 } else { 0o644 });
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h
}

/// Writes the staged layout as a tar: top-level files, then blobs sorted by digest.
fn write_archive(root: &Path, top_files: &[&str], w: &mut impl Write) -> Result<()> {
    let mut b = tar::Builder::new(w);
    for name in top_files {
        let bytes = fs_err::read(root.join(name))?;
        let mut h = tar_header(tar::EntryType::Regular, bytes.len() as u64);
        b.append_data(&mut h, name, &bytes[..])?;
    }
    for dir in ["blobs/", "blobs/sha256/"] {
        let mut h = tar_header(tar::EntryType::Directory, 0);
        b.append_data(&mut h, dir, io::empty())?;
    }
    let blobs = root.join(media::BLOBS_DIR);
    let mut names: Vec<String> = fs_err::read_dir(&blobs)?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<io::Result<_>>()?;
    names.sort();
    for name in names {
        let file = fs_err::File::open(blobs.join(&name))?;
        let mut h = tar_header(tar::EntryType::Regular, file.metadata()?.len());
        b.append_data(&mut h, format!("{}/{name}", media::BLOBS_DIR), file)?;
    }
    b.into_inner()?.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_name_table() {
        assert_eq!(full_name("app:1"), "docker.io/library/app:1");
        assert_eq!(full_name("me/app"), "docker.io/me/app:latest");
        assert_eq!(full_name("localhost:5000/app:2"), "localhost:5000/app:2");
        assert_eq!(full_name("ghcr.io/x/y:3"), "ghcr.io/x/y:3");
    }
}
