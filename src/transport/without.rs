//! The transports of a build without the `transports` feature: the same interface, and
//! every call says the feature is missing. (The fuzz targets build this way: the
//! registry and engine clients would double their build under sanitizers.)

use crate::error::Error;

fn missing(what: &str) -> Error {
    Error::Unsupported {
        what: what.to_string(),
        reason: "this ocislim was built without the `transports` feature".into(),
    }
}

/// The registry transport, absent.
pub mod registry {
    use super::missing;
    use crate::digest::Digest;
    use crate::error::Result;
    use crate::image::writer::StagedImage;
    pub use crate::transport::Pushed;
    use crate::transport::{Access, Remote};
    use std::convert::Infallible;
    use std::path::Path;

    /// A repository; none can be made.
    #[derive(Clone)]
    pub struct Repo(Infallible);

    impl Repo {
        /// Fails: no registry client is built in.
        pub fn connect(spec: &str, _: &Access) -> Result<Repo> {
            Err(missing(&Remote::Registry(spec.into()).display()))
        }
    }

    /// A pulled image; none can be made.
    pub struct Pulled {
        /// Its repository.
        pub repo: Repo,
        /// What was not copied.
        pub warnings: Vec<String>,
    }

    impl Pulled {
        /// Never called: no `Pulled` exists.
        pub fn path(&self) -> &Path {
            match self.repo.0 {}
        }

        /// Never called: no `Pulled` exists.
        pub fn fetch_config(&self, _: &Digest, _: Option<u64>) -> Result<()> {
            match self.repo.0 {}
        }

        /// Never called: no `Pulled` exists.
        pub fn fetch_layers(&self, _: &[(Digest, u64)]) -> Result<()> {
            match self.repo.0 {}
        }
    }

    /// Fails: no registry client is built in.
    pub fn pull_manifests(spec: &str, access: &Access) -> Result<Pulled> {
        Repo::connect(spec, access).map(|repo| match repo.0 {})
    }

    /// Fails: no registry client is built in.
    pub fn push(
        _: &Path,
        _: &[StagedImage],
        _: Option<(&[u8], &Digest)>,
        spec: &str,
        access: &Access,
        _: Option<&Repo>,
    ) -> Result<Pushed> {
        Repo::connect(spec, access).map(|repo| match repo.0 {})
    }
}

/// The Docker engine transport, absent.
pub mod daemon {
    use super::missing;
    use crate::error::Result;
    use std::fs::File;
    use std::io::Write;

    /// Fails: no engine client is built in.
    pub fn ping() -> Result<()> {
        Err(missing("docker-daemon:"))
    }

    /// Fails: no engine client is built in.
    pub fn export(name: &str) -> Result<File> {
        Err(missing(&format!("docker-daemon:{name}")))
    }

    /// Fails: no engine client is built in.
    pub fn load(what: &str, _: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
        Err(missing(what))
    }
}
