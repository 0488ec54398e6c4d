//! The arguments several commands share (a source, registry access, an output) and
//! the options built from them, validated before any image byte is read.

use ocislim::Error;
use ocislim::image::Format;
use ocislim::image::platform::Platform;
use ocislim::image::reader::{OpenOptions, SourceSpec};
use ocislim::image::remote::{Access, Side};
use ocislim::image::writer::OutputOptions;
use ocislim::layer::codec::Compression;
use ocislim::policy::{PolicySet, PolicySetBuilder};
use ocislim::progress::Progress;

#[derive(clap::Args)]
pub struct SourceArgs {
    /// Image to read: a path, `-` for stdin, or TRANSPORT:NAME.
    ///
    /// Image to read: a path (OCI layout dir, OCI archive, docker save archive), `-`
    /// for stdin, or oci:PATH[:REF], oci-archive:PATH[:REF], docker-archive:PATH[:REF],
    /// docker://HOST/REPO[:TAG|@DIGEST] (a registry), docker-daemon:NAME[:TAG] (the
    /// Docker engine at $DOCKER_HOST).
    pub source: String,
    /// Platform to pick from a multi-platform index (default: the host's).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

// How to reach registries (`docker://`), spelled as skopeo spells them. (No doc comment:
// clap took it for the about of a command that has none.)
#[derive(clap::Args)]
#[command(next_help_heading = "Registries")]
pub struct RegistryArgs {
    /// Credentials for every registry of this run.
    ///
    /// Credentials for every registry of this run (default: from --authfile,
    /// containers' auth.json or Docker's config.json, credential helpers included).
    #[arg(long, value_name = "USER[:PASS]")]
    pub creds: Option<String>,
    /// Read credentials from this auth.json / config.json instead.
    #[arg(long, value_name = "FILE")]
    pub authfile: Option<std::path::PathBuf>,
    /// Credentials for the source registry only (instead of --creds).
    #[arg(long, value_name = "USER[:PASS]")]
    pub src_creds: Option<String>,
    /// Credentials for the destination registry only (instead of --creds).
    #[arg(long, value_name = "USER[:PASS]")]
    pub dest_creds: Option<String>,
    /// Read the source registry's credentials from this file.
    #[arg(long, value_name = "FILE")]
    pub src_authfile: Option<std::path::PathBuf>,
    /// Read the destination registry's credentials from this file.
    #[arg(long, value_name = "FILE")]
    pub dest_authfile: Option<std::path::PathBuf>,
    /// Fail when the registry requests of this run take longer in all.
    ///
    /// Fail when the registry requests of this run take longer in all (90s, 10m, 1h;
    /// default: no limit beyond each request's own).
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
    /// Require HTTPS and a verified certificate; =false also allows plain HTTP.
    ///
    /// Require HTTPS and a verified certificate (the default); --tls-verify=false
    /// accepts any certificate and plain HTTP. As skopeo: the bare flag means true, a
    /// value follows `=`.
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set,
          num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub tls_verify: bool,
    /// --tls-verify for the source registry only.
    #[arg(long, value_name = "BOOL", action = clap::ArgAction::Set, num_args = 0..=1,
          require_equals = true, default_missing_value = "true")]
    pub src_tls_verify: Option<bool>,
    /// --tls-verify for the destination registry only.
    #[arg(long, value_name = "BOOL", action = clap::ArgAction::Set, num_args = 0..=1,
          require_equals = true, default_missing_value = "true")]
    pub dest_tls_verify: Option<bool>,
    /// Trust the CA certificates (*.crt) in this folder.
    ///
    /// Trust the CA certificates (*.crt) in this folder (default:
    /// /etc/containers/certs.d/HOST and /etc/docker/certs.d/HOST).
    #[arg(long, value_name = "DIR")]
    pub cert_dir: Option<std::path::PathBuf>,
}

impl RegistryArgs {
    /// The run's credentials, TLS and deadline.
    pub fn access(&self) -> Result<Access, Error> {
        let creds = |c: &Option<String>, flag| c.as_deref().map(|c| Access::parse_creds(c, flag));
        Ok(Access {
            creds: creds(&self.creds, "--creds").transpose()?,
            authfile: self.authfile.clone(),
            src: Side {
                creds: creds(&self.src_creds, "--src-creds").transpose()?,
                authfile: self.src_authfile.clone(),
                tls_verify: self.src_tls_verify,
            },
            dest: Side {
                creds: creds(&self.dest_creds, "--dest-creds").transpose()?,
                authfile: self.dest_authfile.clone(),
                tls_verify: self.dest_tls_verify,
            },
            insecure: !self.tls_verify,
            cert_dir: self.cert_dir.clone(),
            deadline: self
                .timeout
                .as_deref()
                .map(Access::deadline_in)
                .transpose()?,
        })
    }
}

/// How the output image is written (shared by `convert` and `squash`).
#[derive(clap::Args)]
pub struct OutputArgs {
    /// Output format (default: the input's; docker-archive for stdout).
    #[arg(long)]
    pub format: Option<Format>,
    /// Layer compression.
    ///
    /// Layer compression (convert: default keeps each layer's; squash: default follows
    /// the input's top layer, gzip when that is uncompressed).
    #[arg(long)]
    pub compression: Option<Compression>,
    /// Compression level (gzip 0-9, zstd 1-22).
    #[arg(long)]
    pub level: Option<i32>,
    /// Name the output image NAME[:TAG] (repeatable).
    ///
    /// Name the output image NAME[:TAG] (repeatable). Default: the input's names; for a
    /// squash written as a docker archive (stdout included), each with `-slim` appended
    /// to its tag (`app:1` becomes `app:1-slim`), so loading it never replaces the input.
    #[arg(long)]
    pub tag: Vec<String>,
}

impl OutputArgs {
    /// The output options for destination `output`.
    pub fn options(self, output: &str, registry: &RegistryArgs) -> Result<OutputOptions, Error> {
        Ok(OutputOptions {
            compression: self.compression,
            level: self.level,
            ..OutputOptions::parse(output, self.format, self.tag, registry.access()?)?
        })
    }
}

impl SourceArgs {
    /// The source as written.
    pub fn spec(&self) -> SourceSpec {
        SourceSpec::parse(&self.source)
    }

    /// How to open it: the platform, the registry access, and the progress shown
    /// while standard input is read.
    pub fn open_options(&self, progress: &Progress) -> Result<OpenOptions, Error> {
        Ok(OpenOptions {
            platform: parse_platform(self.platform.as_deref())?,
            access: self.registry.access()?,
            progress: progress.clone(),
        })
    }
}

/// `--platform OS/ARCH[/VARIANT]`.
pub fn parse_platform(p: Option<&str>) -> Result<Option<Platform>, Error> {
    p.map(|p| {
        Platform::parse(p)
            .ok_or_else(|| Error::Usage(format!("--platform {p:?}: expected OS/ARCH[/VARIANT]")))
    })
    .transpose()
}

/// The named policies combined into one, and the builder that read them.
pub fn policies(
    names: &[String],
    globs: &GlobArgs,
) -> Result<(PolicySetBuilder, PolicySet), Error> {
    let mut b = PolicySetBuilder::default();
    for n in names {
        b.add(n)?;
    }
    b.add_flags(&globs.keep, &globs.delete)?;
    let set = b.build()?;
    Ok((b, set))
}

/// Each named policy compiled on its own (inspect and bench compare them), the
/// `--keep`/`--delete` globs added to each; the globs alone when no policy is named.
pub fn each_policy(names: &[String], globs: &GlobArgs) -> Result<Vec<PolicySet>, Error> {
    if names.is_empty() && !globs.is_empty() {
        return Ok(vec![policies(&[], globs)?.1]);
    }
    names
        .iter()
        .map(|n| policies(std::slice::from_ref(n), globs).map(|(_, set)| set))
        .collect()
}

/// `--keep GLOB` and `--delete GLOB`: a one-off policy on the command line.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct GlobArgs {
    /// Keep what GLOB names, whatever the policies delete (repeatable).
    ///
    /// Keep what GLOB names (a path from the image root, `srv/cache/**`), whatever the
    /// policies delete: a global `[keep]` glob of a policy file (repeatable).
    #[arg(long, value_name = "GLOB")]
    pub keep: Vec<String>,
    /// Delete what GLOB names too (repeatable; the rule cli-delete).
    ///
    /// Delete what GLOB names too (a path from the image root, `opt/app/tests/**`),
    /// by one rule, `cli-delete`, as a policy file's `[[rule]] delete` (repeatable).
    #[arg(long, value_name = "GLOB")]
    pub delete: Vec<String>,
}

impl GlobArgs {
    fn is_empty(&self) -> bool {
        self.keep.is_empty() && self.delete.is_empty()
    }
}
