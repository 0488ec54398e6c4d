//! The registry transport, `docker://HOST/REPO[:TAG|@DIGEST]`: pulls and the challenge
//! through [`super::wire`] (every reply capped as it streams, every request under a
//! deadline), references parsed by `oci-client`, credentials through
//! `docker_credential`.
//!
//! Pull writes what it fetches into a spool folder shaped as an OCI layout, so the reader
//! treats it as any layout and verifies every document and layer as it reads it: first
//! the manifest (and, for an index, every child manifest, all small), then, once an
//! image is chosen, its config, then its layers in parallel, each streamed to disk and
//! capped at its descriptor's size. Push uploads a finished staging layout: blobs the registry
//! has are skipped (`HEAD`), blobs of another repository on the same registry are
//! mounted, the rest go up streamed, the manifest last, so a failed push leaves the tag
//! where it was.

use super::wire::{self, Failure, Http, with_causes};
use crate::cleanup::{STAGED, Staged};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::image::media;
use crate::image::reader::JSON_LIMIT;
use crate::image::remote::{Access, MountFrom, Pushed, Pushing, Spool};
use crate::image::writer::StagedImage;
use bytes::Bytes;
use oci_client::Reference;
use rayon::prelude::*;
use serde_json::{Value, json};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Manifests fetched for one index, nested ones included.
const MAX_DOCUMENTS: usize = 256;
/// Nesting of indexes followed.
const MAX_DEPTH: usize = 4;

const MANIFEST_TYPES: [&str; 4] = [
    media::OCI_MANIFEST,
    media::OCI_INDEX,
    media::DOCKER_MANIFEST,
    media::DOCKER_MANIFEST_LIST,
];

/// A connection to one repository of a registry.
#[derive(Clone)]
pub struct Repo {
    /// Every request, the challenge checked before anything is sent.
    http: std::sync::Arc<Http>,
    /// The reference as given (its tag or digest included).
    pub reference: Reference,
    /// As written on the command line, for messages.
    pub name: String,
}

impl Repo {
    /// Parses `HOST/REPO[:TAG|@DIGEST]`, finds credentials and TLS roots for the host, and
    /// asks the registry's `/v2/` which protocol and authentication it wants: a token
    /// for `scope` (`pull`, or `pull,push`) is fetched, Basic credentials are tried.
    pub fn connect(spec: &str, access: &Access) -> Result<Repo> {
        Self::connect_for(spec, access, "pull")
    }

    fn connect_for(spec: &str, access: &Access, scope: &str) -> Result<Repo> {
        let name = format!("docker://{}", crate::escape::escape(spec.as_bytes()));
        let reference: Reference = spec
            .parse()
            .map_err(|e| Error::Usage(format!("{name}: not an image reference: {e}")))?;
        let host = reference.resolve_registry().to_string();
        let creds = credentials(&host, access)?;
        let web = wire::client(access, ca_certificates(&host, access, &name)?)?;
        let attempt = |base: &str| {
            Http::connect(
                web.clone(),
                base.to_string(),
                reference.repository(),
                creds.clone(),
                access,
                &name,
            )
        };
        let (https, http) = (format!("https://{host}"), format!("http://{host}"));
        let found = match attempt(&https) {
            Ok(found) => found,
            // `--tls-verify=false` also allows a registry that speaks plain HTTP (a TLS
            // handshake refused is not worth retrying).
            Err(f) if access.insecure && f.unreachable => again(|| attempt(&http))?,
            Err(f) if f.transient => again(|| attempt(&https))?,
            Err(f) => return Err(f.error),
        };
        again(|| found.authorize(scope, &[]))?;
        Ok(Repo {
            http: std::sync::Arc::new(found),
            reference,
            name,
        })
    }

    fn at_digest(&self, digest: &Digest) -> Reference {
        Reference::with_digest(
            self.reference.registry().to_string(),
            self.reference.repository().to_string(),
            digest.as_str().to_string(),
        )
    }

    /// The signatures, attestations and SBOMs cosign keeps beside `digest` in the
    /// repository (tags `sha256-<hex>.sig`, `.att`, `.sbom`), each as a warning like the
    /// reader's for those in a layout. One `HEAD` each, not retried: absent is the norm,
    /// and a registry that will not say is taken as having none.
    fn cosign_companions(&self, digest: &Digest) -> Vec<String> {
        ["sig", "att", "sbom"]
            .iter()
            .filter_map(|kind| {
                let tag = format!("sha256-{}.{kind}", digest.hex());
                self.http
                    .has_manifest(&tag, &MANIFEST_TYPES.join(", "))
                    .then(|| {
                        format!(
                            "left behind cosign {kind} {tag} in {}: it is about the input, not \
                         the output, whose digest differs; not copied",
                            self.reference.repository()
                        )
                    })
            })
            .collect()
    }

    /// Fetches a manifest by reference: its bytes, their digest and media type.
    fn manifest(&self, at: &Reference) -> Result<(Bytes, Digest, String)> {
        let name = tag_or_digest(at);
        let accept = MANIFEST_TYPES.join(", ");
        let bytes = Bytes::from(again(|| self.http.manifest(name, &accept, JSON_LIMIT))?);
        // The digest is ours, of the bytes: never the registry's header.
        let digest = Digest::of(&bytes);
        if let Some(want) = at.digest().filter(|d| *d != digest.as_str()) {
            return Err(Error::DigestMismatch {
                blob: format!("{} manifest", self.name),
                expected: want.to_string(),
                found: digest.as_str().to_string(),
            });
        }
        let doc: Value = serde_json::from_slice(&bytes)
            .map_err(|e| Error::json(format!("{} manifest", self.name), e))?;
        let media_type = match doc.get("mediaType").and_then(Value::as_str) {
            Some(m) => m.to_string(),
            None if doc.get("manifests").is_some() => media::OCI_INDEX.to_string(),
            None => media::OCI_MANIFEST.to_string(),
        };
        Ok((bytes, digest, media_type))
    }

    /// Streams blob `digest` of `size` bytes into a writer `open` gives, a fresh one for
    /// each attempt, retrying what may pass (a refused or cut connection, a 5xx, a
    /// digest mismatch); returns the writer that got it whole. More than `size` bytes,
    /// or other bytes, are refused as they arrive.
    fn blob<W: Write>(
        &self,
        digest: &Digest,
        size: u64,
        mut open: impl FnMut() -> Result<W>,
    ) -> Result<W> {
        again(|| {
            let mut out = open().map_err(Failure::stop)?;
            self.http.blob(digest, size, &mut out)?;
            Ok(out)
        })
    }
}

/// The tag or digest a reference names (`latest` when it names neither).
fn tag_or_digest(at: &Reference) -> &str {
    at.digest().or(at.tag()).unwrap_or("latest")
}

/// Runs `attempt` until it succeeds, fails for good, or [`super::BACKOFF`] is spent.
fn again<T>(mut attempt: impl FnMut() -> std::result::Result<T, Failure>) -> Result<T> {
    let mut waits = super::BACKOFF.iter();
    loop {
        match attempt() {
            Ok(v) => return Ok(v),
            Err(f) if f.transient => match waits.next() {
                Some(w) => std::thread::sleep(*w),
                None => return Err(f.error),
            },
            Err(f) => return Err(f.error),
        }
    }
}

/// The credentials for `host`: `--creds`, else `--authfile`, else containers'
/// `auth.json` (`REGISTRY_AUTH_FILE`, `$XDG_RUNTIME_DIR/containers/auth.json`), else
/// Docker's `config.json` (`$DOCKER_CONFIG`, `~/.docker`), credential helpers included;
/// none found is anonymous access.
fn credentials(host: &str, access: &Access) -> Result<Option<(String, String)>> {
    use docker_credential::{CredentialRetrievalError as E, DockerCredential};
    if let Some(c) = &access.creds {
        return Ok(Some(c.clone()));
    }
    let server = match host {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => "https://index.docker.io/v1/",
        h => h,
    };
    let found = match &access.authfile {
        Some(f) => {
            let file = fs_err::File::open(f)?;
            docker_credential::get_credential_from_reader(std::io::BufReader::new(file), server)
        }
        None => match docker_credential::get_podman_credential(server) {
            Err(E::NoCredentialConfigured | E::ConfigNotFound | E::ConfigReadError) => {
                docker_credential::get_credential(server)
            }
            r => r,
        },
    };
    match found {
        Ok(DockerCredential::UsernamePassword(u, p)) => Ok(Some((u, p))),
        Ok(DockerCredential::IdentityToken(_)) => Err(Error::Usage(format!(
            "the credentials stored for {host} are an identity token, which ocislim cannot use; give --creds USER:PASS"
        ))),
        Err(E::NoCredentialConfigured | E::ConfigNotFound | E::ConfigReadError) => Ok(None),
        Err(e) => Err(Error::Usage(format!("credentials for {host}: {e}"))),
    }
}

/// CA certificates to trust for `host`: the `*.crt` files of `--cert-dir`, else of
/// `/etc/containers/certs.d/HOST` and `/etc/docker/certs.d/HOST` (skopeo's and Docker's
/// places).
fn ca_certificates(host: &str, access: &Access, name: &str) -> Result<Vec<reqwest::Certificate>> {
    let dirs: Vec<PathBuf> = match &access.cert_dir {
        Some(d) => vec![d.clone()],
        None => ["/etc/containers/certs.d", "/etc/docker/certs.d"]
            .iter()
            .map(|d| Path::new(d).join(host))
            .collect(),
    };
    let mut certs = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "crt"))
            .collect();
        files.sort();
        for f in files {
            let cert = reqwest::Certificate::from_pem(&fs_err::read(&f)?).map_err(|e| {
                Error::Usage(format!(
                    "{name}: CA certificate {}: {}",
                    f.display(),
                    with_causes(&e)
                ))
            })?;
            certs.push(cert);
        }
    }
    Ok(certs)
}

/// A pulled image's spool folder: an OCI layout of what was fetched. It goes when
/// dropped (or when the process is interrupted).
pub struct Pulled {
    dir: tempfile::TempDir,
    _staged: Staged,
    /// The repository it came from.
    pub repo: Repo,
    /// What the repository holds beside the image that is not copied (cosign's tags).
    pub warnings: Vec<String>,
}

impl Pulled {
    fn blob_path(&self, d: &Digest) -> PathBuf {
        self.dir.path().join(media::BLOBS_DIR).join(d.hex())
    }

    fn write_blob(&self, d: &Digest, bytes: &[u8]) -> Result<()> {
        fs_err::write(self.blob_path(d), bytes)?;
        Ok(())
    }
}

impl Spool for Pulled {
    /// The spool folder.
    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fetches layer blobs (digest, size) that are not in the spool yet, in parallel on
    /// the `--jobs` pool; each lands under its name only when whole.
    fn fetch_layers(&self, layers: &[(Digest, u64)]) -> Result<()> {
        layers.par_iter().try_for_each(|(digest, size)| {
            let path = self.blob_path(digest);
            if path.exists() {
                return Ok(());
            }
            let blobs = self.dir.path().join(media::BLOBS_DIR);
            let w = self.repo.blob(digest, *size, || {
                let tmp = tempfile::NamedTempFile::new_in(&blobs)?;
                Ok(std::io::BufWriter::with_capacity(1 << 20, tmp))
            })?;
            let tmp = w.into_inner().map_err(|e| e.into_error())?;
            tmp.persist(&path).map_err(|e| e.error)?;
            Ok(())
        })
    }

    /// Fetches a chosen image's config into the spool, unless it is there. `size` is its
    /// descriptor's (the reader checks it), capped at the limit for JSON documents.
    fn fetch_config(&self, digest: &Digest, size: Option<u64>) -> Result<()> {
        if self.blob_path(digest).exists() {
            return Ok(());
        }
        let size = size.unwrap_or(JSON_LIMIT);
        if size > JSON_LIMIT {
            return Err(Error::corrupt(
                format!("{} manifest", self.repo.name),
                format!("a config of {size} bytes is too large"),
            ));
        }
        let buf = self.repo.blob(digest, size, || Ok(Vec::new()))?;
        self.write_blob(digest, &buf)
    }

    fn warnings(&self) -> &[String] {
        &self.warnings
    }

    fn mount_from(&self) -> MountFrom {
        MountFrom {
            registry: self.repo.reference.resolve_registry().to_string(),
            repository: self.repo.reference.repository().to_string(),
        }
    }
}

/// Fetches the manifest `spec` names, and when it is an index every manifest and config
/// under it, into a new spool folder whose `index.json` points at it.
pub fn pull_manifests(spec: &str, access: &Access) -> Result<Pulled> {
    let repo = Repo::connect(spec, access)?;
    let (dir, staged) =
        STAGED.create(|| tempfile::Builder::new().prefix(".ocislim-pull-").tempdir())?;
    fs_err::create_dir_all(dir.path().join(media::BLOBS_DIR))?;
    let mut pulled = Pulled {
        dir,
        _staged: staged,
        repo,
        warnings: Vec::new(),
    };
    let (bytes, digest, media_type) = pulled.repo.manifest(&pulled.repo.reference)?;
    pulled.warnings = pulled.repo.cosign_companions(&digest);
    pulled.write_blob(&digest, &bytes)?;
    let mut count = 1;
    pulled.fetch_children(&bytes, &media_type, 0, &mut count)?;
    let index = json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_INDEX,
        "manifests": [{"mediaType": media_type, "digest": digest.as_str(), "size": bytes.len()}],
    });
    fs_err::write(
        pulled.path().join(media::INDEX_FILE),
        serde_json::to_vec(&index).map_err(std::io::Error::other)?,
    )?;
    fs_err::write(
        pulled.path().join(media::OCI_LAYOUT_FILE),
        format!(
            "{{\"imageLayoutVersion\":\"{}\"}}",
            media::OCI_LAYOUT_VERSION
        ),
    )?;
    Ok(pulled)
}

impl Pulled {
    /// Fetches the manifests under an index (recursively) into the spool. Configs wait
    /// until an image is chosen ([`Pulled::fetch_config`]): an index may name hundreds.
    fn fetch_children(
        &self,
        bytes: &[u8],
        media_type: &str,
        depth: usize,
        count: &mut usize,
    ) -> Result<()> {
        if !media::is_index(media_type) {
            return Ok(());
        }
        let what = format!("{} manifest", self.repo.name);
        if depth >= MAX_DEPTH {
            return Err(Error::corrupt(&what, "indexes nested too deep"));
        }
        let doc: Value = serde_json::from_slice(bytes).map_err(|e| Error::json(&what, e))?;
        let children = doc
            .get("manifests")
            .and_then(Value::as_array)
            .map_or(&[][..], |v| v);
        for child in children {
            let digest = child
                .get("digest")
                .and_then(Value::as_str)
                .and_then(Digest::parse)
                .ok_or_else(|| Error::json(&what, "a descriptor without a sha256 digest"))?;
            if self.blob_path(&digest).exists() {
                continue;
            }
            *count += 1;
            if *count > MAX_DOCUMENTS {
                return Err(Error::corrupt(
                    &what,
                    format!("more than {MAX_DOCUMENTS} manifests"),
                ));
            }
            // `manifest` refuses bytes that are not `digest`'s.
            let (bytes, _, media_type) = self.repo.manifest(&self.repo.at_digest(&digest))?;
            self.write_blob(&digest, &bytes)?;
            self.fetch_children(&bytes, &media_type, depth + 1, count)?;
        }
        Ok(())
    }
}

/// Pushes the images of staging folder `root` (blobs in `blobs/sha256`) to `spec`: each
/// image's blobs (config last) and, for one image, its manifest under the reference's tag
/// or digest; for an `index`, each image's manifest by digest and then the index under the
/// tag (`index` holds its bytes and digest). `mount_from` is the source repository, whose blobs need no upload when it is on
/// the same registry.
pub fn push(
    root: &Path,
    (images, index, referrers): Pushing,
    spec: &str,
    access: &Access,
    mount_from: Option<&MountFrom>,
) -> Result<Pushed> {
    let started = std::time::Instant::now();
    let repo = Repo::connect_for(spec, access, "pull,push")?;
    let mount_from = mount_from.filter(|m| {
        m.registry == repo.reference.resolve_registry()
            && m.repository != repo.reference.repository()
    });
    if let Some(from) = mount_from {
        again(|| repo.http.authorize("pull,push", &[&from.repository]))?;
    }
    let mut outcomes = Vec::new();
    for image in images {
        let (config, layers) = image.blobs.split_last().expect("an image has a config");
        let mut these: Vec<Outcome> = layers
            .par_iter()
            .map(|(d, n)| push_blob(&repo, root, d, *n, mount_from))
            .collect::<Result<_>>()?;
        these.push(push_blob(&repo, root, &config.0, config.1, mount_from)?);
        outcomes.extend(these);
        if index.is_some() {
            push_manifest(
                &repo,
                &repo.at_digest(&image.digest),
                &image.manifest,
                &image.media_type,
            )?;
        }
    }
    let (top, media_type, digest) = match (index, images) {
        (Some((bytes, digest)), _) => (bytes, media::OCI_INDEX, digest),
        (None, [image]) => (
            &image.manifest[..],
            image.media_type.as_str(),
            &image.digest,
        ),
        (None, _) => unreachable!("one image, or an index"),
    };
    if repo
        .reference
        .digest()
        .is_some_and(|d| d != digest.as_str())
    {
        return Err(Error::Usage(format!(
            "{}: the output's manifest is {}, not the digest given",
            repo.name,
            digest.as_str()
        )));
    }
    push_manifest(&repo, &repo.reference, top, media_type)?;
    let referrers_tag = push_referrers(&repo, root, digest, referrers, &mut outcomes)?;
    let count = |o: Outcome| outcomes.iter().filter(|x| **x == o).count();
    Ok(Pushed {
        reference: repo.name.clone(),
        digest: digest.as_str().to_string(),
        uploaded: count(Outcome::Uploaded),
        present: count(Outcome::Present),
        mounted: count(Outcome::Mounted),
        seconds: started.elapsed().as_secs_f64(),
        referrers: referrers.len(),
        referrers_tag,
    })
}

/// Pushes `referrers` of the manifest `subject` (their blobs, then each manifest by
/// digest). A registry that answers the referrers API lists them itself; for one that
/// does not (distribution 2.8), they are listed in the index tagged `sha256-<hex>`, the
/// referrers already listed there kept (a cosign signature, another tool's SBOM), as
/// the distribution-spec's "Referrers Tag Schema" says. Returns that tag when written.
fn push_referrers(
    repo: &Repo,
    root: &Path,
    subject: &Digest,
    referrers: &[StagedImage],
    outcomes: &mut Vec<Outcome>,
) -> Result<Option<String>> {
    if referrers.is_empty() {
        return Ok(None);
    }
    for r in referrers {
        for (d, n) in &r.blobs {
            outcomes.push(push_blob(repo, root, d, *n, None)?);
        }
        push_manifest(repo, &repo.at_digest(&r.digest), &r.manifest, &r.media_type)?;
    }
    if repo.http.has_referrers_api(subject) {
        return Ok(None);
    }
    let tag = media::referrers_tag(subject);
    // No tag yet is the norm (the registry answers 404); what cannot be read as an
    // index lists nothing to keep.
    let mut listed: Vec<Value> = repo
        .http
        .manifest(&tag, media::OCI_INDEX, JSON_LIMIT)
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|v| v["manifests"].as_array().cloned())
        .unwrap_or_default();
    for r in referrers {
        let artifact_type = serde_json::from_slice::<Value>(&r.manifest)
            .ok()
            .and_then(|m| m["artifactType"].as_str().map(String::from));
        let d = serde_json::json!({"mediaType": r.media_type, "digest": r.digest.as_str(), "size": r.manifest.len(), "artifactType": artifact_type});
        if !listed.iter().any(|l| l["digest"] == d["digest"]) {
            listed.push(d);
        }
    }
    let index =
        serde_json::json!({"schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": listed});
    let bytes = serde_json::to_vec(&index).map_err(std::io::Error::other)?;
    let at = Reference::with_tag(
        repo.reference.registry().to_string(),
        repo.reference.repository().to_string(),
        tag.clone(),
    );
    push_manifest(repo, &at, &bytes, media::OCI_INDEX)?;
    Ok(Some(tag))
}

fn push_manifest(repo: &Repo, at: &Reference, bytes: &[u8], media_type: &str) -> Result<()> {
    let name = tag_or_digest(at);
    let body = Bytes::copy_from_slice(bytes);
    again(|| repo.http.put_manifest(name, &body, media_type))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Present,
    Mounted,
    Uploaded,
}

/// Makes blob `digest` present in `repo`: already there, mounted, or uploaded as one
/// streamed request (each attempt starts over from the file).
fn push_blob(
    repo: &Repo,
    root: &Path,
    digest: &Digest,
    size: u64,
    mount_from: Option<&MountFrom>,
) -> Result<Outcome> {
    if again(|| repo.http.has_blob(digest))? {
        return Ok(Outcome::Present);
    }
    if let Some(from) = mount_from
        && again(|| repo.http.mount(digest, &from.repository))?
    {
        return Ok(Outcome::Mounted);
    }
    let path = root.join(media::BLOBS_DIR).join(digest.hex());
    again(|| repo.http.upload(digest, size, &path))?;
    Ok(Outcome::Uploaded)
}
