//! ocislim makes existing container images smaller after they are built.
//!
//! ```text
//!  source (image/)            scan (layer/, parallel per layer)       sink (image/)
//!  OCI layout dir      ──►    verify blob digest and size,      ──►   config, manifest,
//!  OCI archive tar            decompress (sniffed codec),             index.json /
//!  docker save tar            hash diff_id, walk tar headers,         manifest.json,
//!  stdin (spooled)            re-encode or copy raw                   atomic rename
//!                                                                     └► report
//! ```
//! `convert` re-encodes an image between sinks and codecs without changing its
//! filesystem or config; `inspect` reads and verifies every layer and reports on it.
//! The library never prints and never exits: it returns reports and typed errors.

pub mod cache;
pub mod cleanup;
pub mod command;
pub mod deps;
pub mod diff;
pub mod digest;
pub mod error;
pub mod escape;
pub mod image;
pub mod layer;
pub mod packages;
pub mod parallel;
pub mod pipeline;
pub mod policy;
pub mod progress;
pub mod report;
pub mod sbom;
pub mod section;
pub mod transport;

pub use error::{Error, Result};
