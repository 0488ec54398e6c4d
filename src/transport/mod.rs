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
//! stays in this folder. Both implement the interface of [`crate::image::remote`]; [`register`] hands
//! them to it. Without the `transports` feature (the fuzz targets build without it)
//! neither client is compiled, and `docker://` says so.

#[cfg(feature = "transports")]
pub mod daemon;
#[cfg(feature = "transports")]
pub mod registry;
pub mod reply;
#[cfg(feature = "transports")]
pub mod wire;

#[cfg(feature = "transports")]
#[cfg(feature = "transports")]
use crate::error::Result;
#[cfg(feature = "transports")]
use crate::image::remote::{Access, MountFrom, Pushed, Pushing, Spool, Transports};
#[cfg(feature = "transports")]
#[cfg(feature = "transports")]
use std::{fs::File, future::Future, io::Write, path::Path, sync::OnceLock, time::Duration};

/// Registers the registry and engine clients with [`crate::image::remote`], so that
/// `docker://` and `docker-daemon:` sources and destinations work. Without the
/// `transports` feature there is nothing to register, and both say so.
pub fn register() {
    #[cfg(feature = "transports")]
    crate::image::remote::register(&Clients);
}

/// The registry client of [`registry`] and the engine client of [`daemon`].
#[cfg(feature = "transports")]
struct Clients;

#[cfg(feature = "transports")]
impl Transports for Clients {
    fn pull(&self, spec: &str, access: &Access) -> Result<Box<dyn Spool>> {
        Ok(Box::new(registry::pull_manifests(spec, access)?))
    }

    fn reach(&self, spec: &str, access: &Access) -> Result<()> {
        registry::Repo::connect(spec, access).map(drop)
    }

    fn push(
        &self,
        root: &Path,
        pushing: Pushing,
        spec: &str,
        access: &Access,
        mount_from: Option<&MountFrom>,
    ) -> Result<Pushed> {
        registry::push(root, pushing, spec, access, mount_from)
    }

    fn engine_ping(&self) -> Result<()> {
        daemon::ping()
    }

    fn engine_export(&self, name: &str) -> Result<File> {
        daemon::export(name)
    }

    fn engine_load(
        &self,
        what: &str,
        write: &mut dyn FnMut(&mut dyn Write) -> Result<()>,
    ) -> Result<()> {
        daemon::load(what, |w| write(w))
    }
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
