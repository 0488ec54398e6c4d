//! The interface between the reader and writer and the images that are not files: a
//! registry (`docker://`) and the Docker engine (`docker-daemon:`). `image/` defines it;
//! `transport/` implements it and registers itself, as containers/image's
//! transports register with its `transports` package, so the reader and writer never
//! import a client.
//!
//! ```text
//! reader ─► Transports::pull ─► a Spool (manifests in a folder shaped as an OCI layout)
//!            Spool::fetch_config, fetch_layers once an image is chosen
//!        ─► Transports::export (the engine's save, as a file)
//! writer ─► Transports::push (a finished staging layout), load (an archive streamed)
//! ```

use super::writer::StagedImage;
use crate::digest::Digest;
use crate::error::{Error, Result};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// An image that lives somewhere other than a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Remote {
    /// `docker://HOST/REPO[:TAG|@DIGEST]`, as skopeo spells it.
    Registry(String),
    /// `docker-daemon:NAME[:TAG]` or `docker-daemon:ID`.
    Daemon(String),
}

impl Remote {
    /// The remote named by `s`, when it has a remote transport prefix.
    pub fn parse(s: &str) -> Option<Remote> {
        if let Some(r) = s.strip_prefix("docker://") {
            return Some(Remote::Registry(r.to_string()));
        }
        s.strip_prefix("docker-daemon:")
            .map(|n| Remote::Daemon(n.to_string()))
    }

    /// As written on the command line.
    pub fn display(&self) -> String {
        match self {
            Remote::Registry(r) => format!("docker://{r}"),
            Remote::Daemon(n) => format!("docker-daemon:{n}"),
        }
    }
}

/// How to reach registries: credentials, TLS and time, as skopeo's options give them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Access {
    /// `--creds USER[:PASS]`, for every registry of the run.
    pub creds: Option<(String, String)>,
    /// `--authfile FILE`: a `config.json` / `auth.json` read instead of the defaults.
    pub authfile: Option<PathBuf>,
    /// `--src-creds`, `--src-authfile`: for the source only (before `--creds`).
    pub src: Side,
    /// `--dest-creds`, `--dest-authfile`: for the destination only.
    pub dest: Side,
    /// `--tls-verify=false`: accept any certificate, and plain HTTP when the registry
    /// does not speak TLS.
    pub insecure: bool,
    /// `--cert-dir DIR`: the `*.crt` CA certificates in it are trusted too (default:
    /// `/etc/containers/certs.d/HOST` and `/etc/docker/certs.d/HOST`).
    pub cert_dir: Option<PathBuf>,
    /// `--timeout`: when every registry request of the run must have finished.
    pub deadline: Option<std::time::Instant>,
}

/// Credentials for one side of a copy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Side {
    /// `--src-creds` / `--dest-creds`.
    pub creds: Option<(String, String)>,
    /// `--src-authfile` / `--dest-authfile`.
    pub authfile: Option<PathBuf>,
    /// `--src-tls-verify` / `--dest-tls-verify`, instead of `--tls-verify`.
    pub tls_verify: Option<bool>,
}

impl Access {
    /// Parses `--creds USER[:PASS]` (`flag` names the option in the message).
    pub fn parse_creds(s: &str, flag: &str) -> Result<(String, String)> {
        let (user, pass) = s.split_once(':').unwrap_or((s, ""));
        if user.is_empty() {
            return Err(Error::Usage(format!("{flag}: expected USER[:PASS]")));
        }
        Ok((user.to_string(), pass.to_string()))
    }

    /// The instant `--timeout DURATION` (`90`, `90s`, `10m`, `1h`) from now.
    pub fn deadline_in(s: &str) -> Result<std::time::Instant> {
        let bad = || {
            Error::Usage(format!(
                "--timeout: expected a duration like 90s, 10m or 1h, not {s:?}"
            ))
        };
        let (n, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
            Some(i) => s.split_at(i),
            None => (s, "s"),
        };
        let n: u64 = n.parse().map_err(|_| bad())?;
        let secs = match unit {
            "s" => n,
            "m" => n.saturating_mul(60),
            "h" => n.saturating_mul(3600),
            _ => return Err(bad()),
        };
        if secs == 0 {
            return Err(bad());
        }
        let now = std::time::Instant::now();
        now.checked_add(std::time::Duration::from_secs(secs))
            .ok_or_else(bad)
    }

    /// The access for the source: its own credentials, else the run's.
    pub fn source(&self) -> Access {
        self.sided(&self.src)
    }

    /// The access for the destination: its own credentials, else the run's.
    pub fn destination(&self) -> Access {
        self.sided(&self.dest)
    }

    fn sided(&self, side: &Side) -> Access {
        let mut a = self.clone();
        if side.creds.is_some() || side.authfile.is_some() {
            a.creds = side.creds.clone();
            a.authfile = side.authfile.clone();
        }
        if let Some(verify) = side.tls_verify {
            a.insecure = !verify;
        }
        a.src = Side::default();
        a.dest = Side::default();
        a
    }
}

/// What a push did.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Pushed {
    /// The reference pushed to.
    pub reference: String,
    /// The manifest's digest.
    pub digest: String,
    /// Blobs uploaded.
    pub uploaded: usize,
    /// Blobs the registry already had.
    pub present: usize,
    /// Blobs mounted from the source repository.
    pub mounted: usize,
    /// How long the push took, in seconds (reported, for `benches/compare`).
    pub seconds: f64,
    /// Referrers pushed (documents attached to the image).
    pub referrers: usize,
    /// The tag listing them, when the registry has no referrers API
    /// (`sha256-<hex>`, distribution-spec's "Referrers Tag Schema").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub referrers_tag: Option<String>,
}

/// What a push sends: the images, the index over them (its bytes and digest) when there
/// is one, and the referrers of the one image.
pub type Pushing<'a> = (
    &'a [StagedImage],
    Option<(&'a [u8], &'a Digest)>,
    &'a [StagedImage],
);

/// A registry image whose manifests (and, for an index, every child manifest) are spooled
/// into a folder shaped as an OCI layout; its config and layers come when asked for.
pub trait Spool: Send + Sync {
    /// The spool folder.
    fn path(&self) -> &Path;
    /// Fetches a chosen image's config into the spool, unless it is there. `size` is its
    /// descriptor's.
    fn fetch_config(&self, digest: &Digest, size: Option<u64>) -> Result<()>;
    /// Fetches layer blobs (digest, size) that are not in the spool yet.
    fn fetch_layers(&self, layers: &[(Digest, u64)]) -> Result<()>;
    /// What the repository holds beside the image that is not copied (cosign's tags).
    fn warnings(&self) -> &[String];
    /// The repository, for mounting its blobs into a push to the same registry.
    fn mount_from(&self) -> MountFrom;
}

/// A source repository whose blobs a push to the same registry mounts instead of
/// uploading.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountFrom {
    /// The registry's host, as the client resolves it (`docker.io` is `index.docker.io`).
    pub registry: String,
    /// The repository's path on it.
    pub repository: String,
}

/// The images that are not files.
pub trait Transports: Sync {
    /// Fetches the manifest registry reference `spec` names into a new spool.
    fn pull(&self, spec: &str, access: &Access) -> Result<Box<dyn Spool>>;
    /// Connects to registry reference `spec` for a push and tries the credentials, before
    /// any image byte is read.
    fn reach(&self, spec: &str, access: &Access) -> Result<()>;
    /// Pushes the images of staging folder `root` (blobs in `blobs/sha256`) to `spec`;
    /// for an `index` (its bytes and digest), each image's manifest by digest and then the
    /// index under the tag; then the referrers of the one image, by digest.
    fn push(
        &self,
        root: &Path,
        pushing: Pushing,
        spec: &str,
        access: &Access,
        mount_from: Option<&MountFrom>,
    ) -> Result<Pushed>;
    /// Checks that the Docker engine answers.
    fn engine_ping(&self) -> Result<()>;
    /// The engine's save of image `name`, spooled into an unnamed file.
    fn engine_export(&self, name: &str) -> Result<File>;
    /// Loads into the engine the archive `write` streams (`what` names it in errors).
    fn engine_load(
        &self,
        what: &str,
        write: &mut dyn FnMut(&mut dyn Write) -> Result<()>,
    ) -> Result<()>;
}

static TRANSPORTS: OnceLock<&'static dyn Transports> = OnceLock::new();

/// Makes `t` the transports of every later read and write; the first call wins.
pub fn register(t: &'static dyn Transports) {
    // A second registration is the same implementation again: nothing to do.
    let _ = TRANSPORTS.set(t);
}

/// The registered transports, or why `remote` cannot be reached.
pub fn transports(remote: &Remote) -> Result<&'static dyn Transports> {
    TRANSPORTS.get().copied().ok_or_else(|| Error::Unsupported {
        what: remote.display(),
        reason: "this ocislim was built without the `transports` feature (a library caller \
                 registers them with ocislim::transport::register())"
            .into(),
    })
}
