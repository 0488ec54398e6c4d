//! Images that are not files: a registry (`docker://HOST/REPO[:TAG|@DIGEST]`, through
//! [`wire`] over `reqwest`) and the Docker engine (`docker-daemon:NAME[:TAG]`, through
//! `bollard`).
//!
//! ```text
//! source  registry ─► manifests + configs ─► spool folder (an OCI layout) ─► reader
//!                     chosen image's layers, in parallel, verified as they stream ─┘
//!         engine   ─► GET /images/NAME/get, spooled ─► docker archive ─► reader
//! sink    staging (an OCI layout) ─► registry: blobs (HEAD, mount, streamed PUT), manifest last
//!                                 ─► engine: POST /images/load, the archive streamed as written
//! ```
//! Both clients are async; they run on one small runtime behind blocking calls, so async
//! stays in this folder. Without the `transports` feature (the fuzz targets build without
//! it) neither client is compiled, and both transports say so.

#[cfg(feature = "transports")]
pub mod daemon;
#[cfg(feature = "transports")]
pub mod registry;
pub mod reply;
#[cfg(feature = "transports")]
pub mod wire;
#[cfg(not(feature = "transports"))]
mod without;
#[cfg(not(feature = "transports"))]
pub use without::{daemon, registry};

use crate::error::{Error, Result};
use std::path::PathBuf;
#[cfg(feature = "transports")]
use std::{future::Future, sync::OnceLock, time::Duration};

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
        a.src = Side::default();
        a.dest = Side::default();
        a
    }
}

/// What a push did.
#[derive(Clone, Debug, Default, serde::Serialize)]
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
}

#[cfg(feature = "transports")]
/// The one runtime the async clients run on: two I/O threads; the callers' threads (the
/// `--jobs` workers) drive their own requests through [`block_on`].
pub(crate) fn runtime() -> Result<&'static tokio::runtime::Runtime> {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    if let Some(rt) = RT.get() {
        return Ok(rt);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("ocislim-io")
        .enable_all()
        .build()?;
    Ok(RT.get_or_init(|| rt))
}

#[cfg(feature = "transports")]
/// Runs `f` to completion on the shared runtime, from any thread.
pub(crate) fn block_on<F: Future>(f: F) -> Result<F::Output> {
    Ok(runtime()?.block_on(f))
}

#[cfg(feature = "transports")]
/// Waits between attempts of a request that failed for a reason that may pass (a refused
/// connection, a timeout, a 5xx or 429): 0.25 s, 1 s, 4 s, then the error stands.
pub(crate) const BACKOFF: [Duration; 3] = [
    Duration::from_millis(250),
    Duration::from_secs(1),
    Duration::from_secs(4),
];
