//! The library's error type: every variant carries what a user needs to act on it.
//!
//! Messages are one line; the binary prints them as `error: {err:#}`.

use std::path::PathBuf;

/// Everything that can stop ocislim.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O error; `fs-err` puts the path in the message.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A blob's sha256 does not match the digest that names it.
    #[error("digest mismatch for blob {blob}: expected {expected}, found {found}")]
    DigestMismatch {
        /// Where the blob was read from.
        blob: String,
        /// The digest the manifest or file name promises.
        expected: String,
        /// The digest of the bytes that were read.
        found: String,
    },
    /// A blob's size does not match its descriptor.
    #[error("size mismatch for blob {blob}: expected {expected} bytes, found {found}")]
    SizeMismatch {
        /// Where the blob was read from.
        blob: String,
        /// The size the descriptor promises.
        expected: u64,
        /// The number of bytes read.
        found: u64,
    },
    /// A layer's uncompressed sha256 does not match the config's `rootfs.diff_ids`.
    #[error("layer {layer} ({blob}): diff_id mismatch: config says {expected}, content is {found}")]
    DiffIdMismatch {
        /// Position of the layer in the manifest, from 1.
        layer: usize,
        /// Where the blob was read from.
        blob: String,
        /// The diff_id in the config.
        expected: String,
        /// The sha256 of the uncompressed bytes.
        found: String,
    },
    /// A blob the image refers to is not in the source.
    #[error("missing blob {blob} in {source_name}")]
    MissingBlob {
        /// The blob's path or digest.
        blob: String,
        /// The source that should hold it.
        source_name: String,
    },
    /// A media type ocislim does not know how to treat.
    #[error("unsupported media type {media_type:?} for {what}")]
    UnsupportedMediaType {
        /// The media type as written.
        media_type: String,
        /// What carried it (a layer, a manifest).
        what: String,
    },
    /// A path that would escape the image root or the archive.
    #[error("unsafe path {path:?} in {layer}")]
    UnsafePath {
        /// The layer or archive that holds it.
        layer: String,
        /// The offending path, escaped.
        path: String,
    },
    /// A truncated or otherwise unreadable archive or layer.
    #[error("corrupt {what}: {reason}")]
    Corrupt {
        /// The file, blob or layer.
        what: String,
        /// What was wrong.
        reason: String,
    },
    /// Valid input that ocislim cannot process faithfully.
    #[error("unsupported {what}: {reason}")]
    Unsupported {
        /// The layer or file.
        what: String,
        /// What is not supported.
        reason: String,
    },
    /// A JSON document that does not parse or lacks a required field.
    #[error("invalid {what}: {reason}")]
    InvalidJson {
        /// The document (config, manifest, index).
        what: String,
        /// What was wrong.
        reason: String,
    },
    /// The source is none of the formats ocislim reads.
    #[error("{path}: not an OCI layout, OCI archive or docker archive ({reason})")]
    UnknownFormat {
        /// The source path.
        path: PathBuf,
        /// What was looked for.
        reason: String,
    },
    /// No image matches the requested platform.
    #[error("no image for platform {wanted} in {source_name}; available: {available}")]
    NoSuchPlatform {
        /// The platform asked for (or the host's).
        wanted: String,
        /// The source.
        source_name: String,
        /// The platforms that are there.
        available: String,
    },
    /// What a reference names is no image (an artifact, an attestation).
    #[error("{what} in {source_name} is {reason}, not an image")]
    NotAnImage {
        /// The manifest or name.
        what: String,
        /// What it is instead.
        reason: String,
        /// The source.
        source_name: String,
    },
    /// No image or several images match the requested reference.
    #[error(
        "{reason} in {source_name}; choose one of: {choices} (as oci:PATH:REF or docker-archive:PATH:REF)"
    )]
    ImageChoice {
        /// What went wrong ("no image named x", "several images").
        reason: String,
        /// The source.
        source_name: String,
        /// The references to choose from.
        choices: String,
    },
    /// A policy file that cannot be used.
    #[error("{file}{}: {}{reason}", if *line > 0 { format!(":{line}") } else { String::new() }, policy_context(rule, glob))]
    Policy {
        /// The policy file or built-in name.
        file: String,
        /// The line, from 1 (0 when unknown).
        line: usize,
        /// The rule id, when one is concerned.
        rule: String,
        /// The glob, when one is concerned.
        glob: String,
        /// What is wrong.
        reason: String,
    },
    /// The image stream to stdout was cut short (the reader went away): what the reader
    /// got is not an image.
    #[error("writing the image to stdout: {0}")]
    Stdout(std::io::Error),
    /// A CI gate (`inspect --fail-under`, `--fail-over`) that the image does not pass.
    #[error("gate failed: {0}")]
    Gate(String),
    /// The policy would break references the input satisfied (`squash` without
    /// `--allow-broken`): the first one, and how many in all.
    #[error("the policy breaks the image: {first}{more} (--allow-broken writes it anyway)")]
    Broken {
        /// The first broken reference, described.
        first: String,
        /// `; N more` when there are others.
        more: String,
    },
    /// A registry or the Docker engine refused or failed a request.
    #[error("{what}: {reason}")]
    Remote {
        /// The remote image (`docker://HOST/REPO:TAG`, `docker-daemon:NAME`) and what of it.
        what: String,
        /// What the remote said, or why it could not be reached.
        reason: String,
    },
    /// A command line that cannot be carried out.
    #[error("{0}")]
    Usage(String),
}

fn policy_context(rule: &str, glob: &str) -> String {
    match (rule.is_empty(), glob.is_empty()) {
        (true, true) => String::new(),
        (false, true) => format!("rule {rule}: "),
        (true, false) => format!("glob {glob:?}: "),
        (false, false) => format!("rule {rule}: glob {glob:?}: "),
    }
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A corrupt-input error.
    pub(crate) fn corrupt(what: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        Error::Corrupt {
            what: what.into(),
            reason: reason.to_string(),
        }
    }

    /// An invalid-document error.
    pub(crate) fn json(what: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        Error::InvalidJson {
            what: what.into(),
            reason: reason.to_string(),
        }
    }

    /// The message a person reads: the error, and for a full disk (ENOSPC, wherever it
    /// surfaced: a staged blob, a layer's spool) which disks ocislim writes to.
    pub fn message(&self) -> String {
        let text = format!("{self:#}");
        if !text.contains("os error 28") && !text.contains("No space left on device") {
            return text;
        }
        format!(
            "no space left on device: free space in the output's folder (the image is staged beside it) or in the temporary folder {} (layers are decompressed there; set TMPDIR to move it) [{text}]",
            std::env::temp_dir().display()
        )
    }

    /// The exit code for this error: 2 for usage and policy errors (the command line
    /// or a policy it names cannot be carried out: nothing was read or written), 1
    /// otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) | Error::Policy { .. } => 2,
            _ => 1,
        }
    }
}
