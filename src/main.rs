//! The `ocislim` command: parses arguments, calls the library, prints the report.

use clap::{CommandFactory, Parser, Subcommand};
use ocislim::bench::{self, BenchOptions};
use ocislim::cleanup::STAGED;
use ocislim::convert::{self, ConvertOptions};
use ocislim::image::Format;
use ocislim::image::platform::Platform;
use ocislim::image::reader::{OpenOptions, SourceSpec};
use ocislim::image::remote::{Access, Side};
use ocislim::image::writer::OutputOptions;
use ocislim::layer::codec::Compression;
use ocislim::policy::{self, PolicySet, PolicySetBuilder};
use ocislim::progress::Progress;
use ocislim::report::TableFormat;
use ocislim::squash::{self, Keep, SquashOptions};
use ocislim::{Error, inspect, report};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use signal_hook::low_level::{emulate_default_handler, signal_name};
use std::io::Write;

const EXIT_CODES: &str = "Exit status: 0 done, 1 failed, 2 usage error.";

/// Make existing container images smaller.
#[derive(Parser)]
#[command(version, about, after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Worker threads, at least 1 (default: all cores).
    #[arg(short, long, global = true, value_parser = clap::value_parser!(u64).range(1..))]
    jobs: Option<u64>,
    /// Print nothing but errors (and the report of `inspect`, which is its output).
    #[arg(short, long, global = true)]
    quiet: bool,
}

#[derive(clap::Args)]
struct SourceArgs {
    /// Image to read: a path (OCI layout dir, OCI archive, docker save archive), `-` for
    /// stdin, or oci:PATH[:REF], oci-archive:PATH[:REF], docker-archive:PATH[:REF],
    /// docker://HOST/REPO[:TAG|@DIGEST] (a registry), docker-daemon:NAME[:TAG] (the
    /// Docker engine at $DOCKER_HOST).
    source: String,
    /// Platform to pick from a multi-platform index (default: the host's).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    platform: Option<String>,
    #[command(flatten)]
    registry: RegistryArgs,
}

/// How to reach registries (`docker://`), spelled as skopeo spells them.
#[derive(clap::Args)]
#[command(next_help_heading = "Registries")]
struct RegistryArgs {
    /// Credentials for every registry of this run (default: from --authfile, containers'
    /// auth.json or Docker's config.json, credential helpers included).
    #[arg(long, value_name = "USER[:PASS]")]
    creds: Option<String>,
    /// Read credentials from this auth.json / config.json instead.
    #[arg(long, value_name = "FILE")]
    authfile: Option<std::path::PathBuf>,
    /// Credentials for the source registry only (instead of --creds).
    #[arg(long, value_name = "USER[:PASS]")]
    src_creds: Option<String>,
    /// Credentials for the destination registry only (instead of --creds).
    #[arg(long, value_name = "USER[:PASS]")]
    dest_creds: Option<String>,
    /// Read the source registry's credentials from this file.
    #[arg(long, value_name = "FILE")]
    src_authfile: Option<std::path::PathBuf>,
    /// Read the destination registry's credentials from this file.
    #[arg(long, value_name = "FILE")]
    dest_authfile: Option<std::path::PathBuf>,
    /// Fail when the registry requests of this run take longer in all (90s, 10m, 1h;
    /// default: no limit beyond each request's own).
    #[arg(long, value_name = "DURATION")]
    timeout: Option<String>,
    /// Require HTTPS and a verified certificate; false also allows plain HTTP.
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    tls_verify: bool,
    /// Trust the CA certificates (*.crt) in this folder (default:
    /// /etc/containers/certs.d/HOST and /etc/docker/certs.d/HOST).
    #[arg(long, value_name = "DIR")]
    cert_dir: Option<std::path::PathBuf>,
}

impl RegistryArgs {
    fn access(&self) -> Result<Access, Error> {
        let creds = |c: &Option<String>, flag| c.as_deref().map(|c| Access::parse_creds(c, flag));
        Ok(Access {
            creds: creds(&self.creds, "--creds").transpose()?,
            authfile: self.authfile.clone(),
            src: Side {
                creds: creds(&self.src_creds, "--src-creds").transpose()?,
                authfile: self.src_authfile.clone(),
            },
            dest: Side {
                creds: creds(&self.dest_creds, "--dest-creds").transpose()?,
                authfile: self.dest_authfile.clone(),
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
struct OutputArgs {
    /// Output format (default: the input's; docker-archive for stdout).
    #[arg(long)]
    format: Option<Format>,
    /// Layer compression (convert: default keeps each layer's; squash: default follows
    /// the input's top layer, gzip when that is uncompressed).
    #[arg(long)]
    compression: Option<Compression>,
    /// Compression level (gzip 0-9, zstd 1-22).
    #[arg(long)]
    level: Option<i32>,
    /// Name the output image NAME[:TAG] (repeatable; default: the input's names).
    #[arg(long)]
    tag: Vec<String>,
}

impl OutputArgs {
    fn options(self, output: &str, registry: &RegistryArgs) -> Result<OutputOptions, Error> {
        Ok(OutputOptions {
            compression: self.compression,
            level: self.level,
            ..OutputOptions::parse(output, self.format, self.tag, registry.access()?)?
        })
    }
}

#[derive(Subcommand)]
enum Command {
    /// Re-encode an image into another format or compression, losslessly.
    #[command(after_help = EXIT_CODES)]
    Convert {
        #[command(flatten)]
        src: SourceArgs,
        /// Destination: a path, `-` for stdout, or oci:DIR[:REF], oci-archive:FILE[:REF],
        /// docker-archive:FILE[:NAME:TAG]. An existing OCI layout gets the image added.
        #[arg(short, long)]
        output: String,
        #[command(flatten)]
        out: OutputArgs,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Flatten layers into one (or keep a base and squash the rest) with exact overlay
    /// semantics: the output's filesystem is the input's merged filesystem.
    #[command(after_help = EXIT_CODES)]
    Squash {
        #[command(flatten)]
        src: SourceArgs,
        /// Destination: a path, `-` for stdout, or oci:DIR[:REF], oci-archive:FILE[:REF],
        /// docker-archive:FILE[:NAME:TAG]. An existing OCI layout gets the image added.
        #[arg(short, long, required_unless_present = "dry_run")]
        output: Option<String>,
        #[command(flatten)]
        out: OutputArgs,
        /// Keep the bottom N layers byte-identical and squash the rest above them.
        #[arg(long, value_name = "N", conflicts_with = "base")]
        keep_layers: Option<usize>,
        /// Keep the layers SOURCE shares with this image (by diff_id, in order).
        #[arg(long, value_name = "IMAGE")]
        base: Option<String>,
        /// Deletion policy: a built-in name (`ocislim policy list`) or a TOML file;
        /// repeatable, they combine. `none` is a pure squash.
        #[arg(long, default_value = "default", value_name = "NAME|FILE")]
        policy: Vec<String>,
        /// Compute and report everything, write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Squash every image of a multi-platform index and write an index of the results
        /// with the same platforms and annotations (attestations are dropped). A docker
        /// archive also names the host's platform in manifest.json, as Docker 25+ saves.
        #[arg(long, conflicts_with_all = ["platform", "report"])]
        all_platforms: bool,
        /// Write the image even when the policy breaks references the input satisfied
        /// (a library a program loads, a script's interpreter, the entrypoint, a symlink's
        /// target); they are listed as warnings instead of failing the run.
        #[arg(long, conflicts_with = "no_check")]
        allow_broken: bool,
        /// Skip the dependency check of the slimmed image (it costs a few percent; a
        /// policy that breaks the image is then not noticed). For measuring the check.
        #[arg(long)]
        no_check: bool,
        /// Also write the JSON report (every deleted path included) to FILE.
        #[arg(long, value_name = "FILE")]
        report: Option<std::path::PathBuf>,
        /// Clamp file mtimes to EPOCH and set `created` to it (default:
        /// $SOURCE_DATE_EPOCH when set; otherwise times are kept).
        #[arg(long, value_name = "EPOCH")]
        timestamp: Option<u64>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script: `ocislim completions bash >
    /// /etc/bash_completion.d/ocislim` (zsh: a `_ocislim` file on `$fpath`; fish:
    /// `~/.config/fish/completions/ocislim.fish`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff: `ocislim man-page | man -l -`), or with `--dir` write
    /// ocislim.1 and one page per subcommand (ocislim-squash.1, ...) there.
    ManPage {
        /// Write every page into this folder.
        #[arg(long, value_name = "DIR")]
        dir: Option<std::path::PathBuf>,
    },
    /// Run each policy against each image and print a table of sizes before and after.
    #[command(after_help = EXIT_CODES)]
    Bench {
        /// Images (default: the fixture images built into ocislim).
        images: Vec<String>,
        /// Policies, each run on its own (default: `none` as a baseline, then every
        /// built-in policy).
        #[arg(long, value_name = "NAME|FILE")]
        policy: Vec<String>,
        /// Output format.
        #[arg(long, default_value = "table")]
        format: TableFormat,
        /// Codec of the squashed layer (default: as squash chooses).
        #[arg(long)]
        compression: Option<Compression>,
        /// Compression level.
        #[arg(long)]
        level: Option<i32>,
        /// Platform to pick from multi-platform indexes.
        #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
        platform: Option<String>,
        /// Add a column saying whether `ocislim check` finds nothing the policy broke.
        #[arg(long)]
        check: bool,
        /// Add a column saying whether this shell command succeeds in each slimmed image,
        /// run under the Docker engine `docker` reaches (`DOCKER_HOST`), without network.
        #[arg(long, value_name = "CMD")]
        smoke: Option<String>,
    },
    /// List, show and check deletion policies.
    #[command(subcommand, after_help = EXIT_CODES)]
    Policy(PolicyCommand),
    /// Show an image's format, config, history and layers, verifying every blob.
    #[command(after_help = EXIT_CODES)]
    /// Report every reference the image does not satisfy: libraries its ELF files need
    /// (found as glibc's or musl's loader finds them, inside the image), script
    /// interpreters, the config's entrypoint and user. Exit 1 when any is broken.
    #[command(after_help = EXIT_CODES)]
    Check {
        #[command(flatten)]
        src: SourceArgs,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Also list every ELF file's libraries and where they were found, as
        /// `ld.so --list` prints them.
        #[arg(long)]
        loads: bool,
    },
    /// The packages a dpkg or apk database records, with the bytes their files really
    /// hold in the merged filesystem, largest first, and which ones no installed package
    /// depends on.
    #[command(after_help = EXIT_CODES)]
    Packages {
        #[command(flatten)]
        src: SourceArgs,
        /// Print the listing as JSON.
        #[arg(long)]
        json: bool,
    },
    Inspect {
        #[command(flatten)]
        src: SourceArgs,
        /// Also show what this policy would reclaim, per rule (repeatable: each is
        /// reported on its own).
        #[arg(long, value_name = "NAME|FILE")]
        policy: Vec<String>,
        /// Exit 1 when the efficiency (merged / stored file data, 0 to 1) is under this.
        #[arg(long, value_name = "EFFICIENCY")]
        fail_under: Option<f64>,
        /// Exit 1 when more than this many bytes are wasted (stored but not seen).
        #[arg(long, value_name = "WASTED_BYTES")]
        fail_over: Option<u64>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// The built-in policies.
    List,
    /// Closure mode's runtime presets (`[closure] presets`).
    Presets,
    /// A policy's rules after `extends` is resolved.
    Show {
        /// Built-in name or TOML file.
        name: String,
    },
    /// Parse and compile policy files; errors name the file, line, rule and glob.
    Check {
        /// TOML files.
        #[arg(required = true)]
        files: Vec<String>,
    },
}

fn policies(names: &[String]) -> Result<(PolicySetBuilder, PolicySet), Error> {
    let mut b = PolicySetBuilder::default();
    for n in names {
        b.add(n)?;
    }
    let set = b.build()?;
    Ok((b, set))
}

/// Each named policy compiled on its own (inspect and bench compare them).
fn each_policy(names: &[String]) -> Result<Vec<PolicySet>, Error> {
    names
        .iter()
        .map(|n| policies(std::slice::from_ref(n)).map(|(_, set)| set))
        .collect()
}

fn policy_command(cmd: PolicyCommand) -> Result<String, Error> {
    Ok(match cmd {
        PolicyCommand::List => policy::text::list(),
        PolicyCommand::Presets => policy::text::presets(),
        PolicyCommand::Show { name } => {
            let (b, _) = policies(std::slice::from_ref(&name))?;
            policy::text::show(&name, &b)
        }
        PolicyCommand::Check { files } => {
            let mut o = String::new();
            for f in &files {
                let (b, _) = policies(std::slice::from_ref(f))?;
                o += &policy::text::checked(f, &b);
            }
            o
        }
    })
}

fn parse_platform(p: Option<&str>) -> Result<Option<Platform>, Error> {
    p.map(|p| {
        Platform::parse(p)
            .ok_or_else(|| Error::Usage(format!("--platform {p:?}: expected OS/ARCH[/VARIANT]")))
    })
    .transpose()
}

fn open_options(src: &SourceArgs) -> Result<OpenOptions, Error> {
    Ok(OpenOptions {
        platform: parse_platform(src.platform.as_deref())?,
        access: src.registry.access()?,
    })
}

fn run(cli: Cli) -> Result<String, Error> {
    let progress = if !cli.quiet && std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        Progress::stderr()
    } else {
        Progress::hidden()
    };
    let jobs = cli.jobs.map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        |j| j as usize,
    );
    // Bulk work the library hands to rayon (policy matching) runs on --jobs threads too.
    // Failing to size the pool only costs speed.
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build_global();
    match cli.command {
        Command::Convert {
            src,
            output,
            out,
            json,
        } => {
            let opts = ConvertOptions {
                source: SourceSpec::parse(&src.source),
                open: open_options(&src)?,
                output: out.options(&output, &src.registry)?,
                jobs,
                progress,
            };
            let r = convert::convert(&opts)?;
            Ok(if json {
                report::json(&r)
            } else {
                report::convert_text(&r)
            })
        }
        Command::Squash {
            src,
            output,
            out,
            keep_layers,
            base,
            policy,
            dry_run,
            all_platforms,
            allow_broken,
            no_check,
            report: report_file,
            timestamp,
            json,
        } => {
            let opts = SquashArgs {
                all_platforms,
                src,
                output,
                out,
                keep: (keep_layers, base),
                policy,
                dry_run,
                check: (allow_broken, no_check),
                report_file,
                timestamp,
            };
            squash_command(opts, json, jobs, progress)
        }
        Command::Policy(cmd) => policy_command(cmd),
        Command::Completions { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "ocislim", &mut out);
            Ok(String::from_utf8_lossy(&out).into_owned())
        }
        Command::ManPage { dir } => man_page(dir),
        Command::Bench {
            images,
            policy,
            format,
            compression,
            level,
            platform,
            check,
            smoke,
        } => bench_command(
            (images, policy),
            format,
            (compression, level),
            platform,
            (check, smoke),
            jobs,
            progress,
        ),
        Command::Inspect {
            src,
            policy,
            fail_under,
            fail_over,
            json,
        } => inspect_command(
            &src,
            &policy,
            (fail_under, fail_over),
            json,
            jobs,
            &progress,
        ),
        Command::Check { src, json, loads } => check_command(&src, json, loads, jobs, &progress),
        Command::Packages { src, json } => {
            let l = ocislim::packages::image::packages(
                &SourceSpec::parse(&src.source),
                &open_options(&src)?,
                jobs,
                &progress,
            )?;
            Ok(if json {
                report::json(&l)
            } else {
                report::packages_text(&l)
            })
        }
    }
}

/// `squash`'s arguments, as parsed.
struct SquashArgs {
    all_platforms: bool,
    src: SourceArgs,
    output: Option<String>,
    out: OutputArgs,
    keep: (Option<usize>, Option<String>),
    policy: Vec<String>,
    dry_run: bool,
    /// `--allow-broken`, `--no-check`.
    check: (bool, bool),
    report_file: Option<std::path::PathBuf>,
    timestamp: Option<u64>,
}

fn squash_command(
    a: SquashArgs,
    json: bool,
    jobs: usize,
    progress: Progress,
) -> Result<String, Error> {
    // Policies are parsed and compiled before any image byte is read.
    let (_, policy) = policies(&a.policy)?;
    let timestamp = match a.timestamp {
        Some(t) => Some(t),
        None => match std::env::var("SOURCE_DATE_EPOCH") {
            Ok(v) if !v.is_empty() => Some(v.parse().map_err(|_| {
                Error::Usage(format!(
                    "SOURCE_DATE_EPOCH={v:?} is not a number of seconds"
                ))
            })?),
            _ => None,
        },
    };
    let keep = match a.keep {
        (Some(n), _) => Keep::Layers(n),
        (None, Some(b)) => Keep::Base(SourceSpec::parse(&b)),
        (None, None) => Keep::Nothing,
    };
    let opts = SquashOptions {
        source: SourceSpec::parse(&a.src.source),
        open: open_options(&a.src)?,
        // A dry run writes nothing; its destination is never checked.
        output: a
            .out
            .options(a.output.as_deref().unwrap_or("-"), &a.src.registry)?,
        keep,
        timestamp,
        policy,
        dry_run: a.dry_run,
        allow_broken: a.check.0,
        check: !a.check.1,
        report_file: a.report_file,
        jobs,
        progress,
    };
    if a.all_platforms {
        let r = ocislim::platforms::squash_all(&opts)?;
        return Ok(if json {
            report::json(&r)
        } else {
            report::all_platforms_text(&r)
        });
    }
    let r = squash::squash(&opts)?;
    Ok(if json {
        report::json(&r)
    } else {
        report::squash_text(&r)
    })
}

/// Runs `bench`: the named policies (default: `none`, then every built-in one) against
/// the named images (default: the fixtures built into the binary).
fn bench_command(
    (images, policy): (Vec<String>, Vec<String>),
    format: TableFormat,
    (compression, level): (Option<Compression>, Option<i32>),
    platform: Option<String>,
    (check, smoke): (bool, Option<String>),
    jobs: usize,
    progress: Progress,
) -> Result<String, Error> {
    let names: Vec<String> = if policy.is_empty() {
        std::iter::once(policy::NONE.to_string())
            .chain(policy::BUILTIN.iter().map(|(n, _)| n.to_string()))
            .collect()
    } else {
        policy
    };
    // Policies are compiled before any image byte is read.
    let policies = names.iter().cloned().zip(each_policy(&names)?).collect();
    // Registry images are reached with the ambient credentials.
    let open = OpenOptions {
        platform: parse_platform(platform.as_deref())?,
        access: Access::default(),
    };
    // The built-in fixtures are written to a temporary folder to be read.
    let (fixtures, _staged) = STAGED.create(tempfile::tempdir)?;
    let images: Vec<(String, SourceSpec)> = if images.is_empty() {
        bench::FIXTURES
            .iter()
            .map(|(name, bytes)| {
                let p = fixtures.path().join(name.replace('/', "_"));
                fs_err::write(&p, bytes)?;
                Ok((
                    name.to_string(),
                    SourceSpec::parse(&p.display().to_string()),
                ))
            })
            .collect::<Result<_, Error>>()?
    } else {
        images
            .iter()
            .map(|i| (i.clone(), SourceSpec::parse(i)))
            .collect()
    };
    let r = bench::bench(&BenchOptions {
        images,
        policies,
        open,
        compression,
        level,
        jobs,
        progress,
        check,
        smoke,
    })?;
    Ok(report::bench(&r, format))
}

/// `inspect`, with its gates (`--fail-under`, `--fail-over`).
fn inspect_command(
    src: &SourceArgs,
    policy: &[String],
    (fail_under, fail_over): (Option<f64>, Option<u64>),
    json: bool,
    jobs: usize,
    progress: &Progress,
) -> Result<String, Error> {
    // Policies are compiled before any image byte is read.
    let policies = each_policy(policy)?;
    if let Some(p) = policies.iter().find(|p| p.reads_contents()) {
        return Err(Error::Usage(format!(
            "policy {}: closure mode and package removal read the files' contents; measure it with \
             `ocislim squash --dry-run --policy {0}` or `ocislim bench --policy {0}`",
            p.names
        )));
    }
    let r = inspect::inspect(
        &SourceSpec::parse(&src.source),
        &open_options(src)?,
        &policies,
        jobs,
        progress,
    )?;
    let text = if json {
        report::json(&r)
    } else {
        report::inspect_text(&r)
    };
    let gate = match (fail_under, fail_over) {
        (Some(min), _) if r.efficiency < min => {
            Some(format!("efficiency {:.3} is under {min}", r.efficiency))
        }
        (_, Some(max)) if r.wasted_bytes > max => {
            Some(format!("{} bytes wasted, over {max}", r.wasted_bytes))
        }
        _ => None,
    };
    gated(text, gate)
}

/// `check`: exit 1 when a reference is broken.
fn check_command(
    src: &SourceArgs,
    json: bool,
    loads: bool,
    jobs: usize,
    progress: &Progress,
) -> Result<String, Error> {
    let r = ocislim::check::check(
        &SourceSpec::parse(&src.source),
        &open_options(src)?,
        loads,
        jobs,
        progress,
    )?;
    let text = if json {
        report::json(&r)
    } else {
        ocislim::check::text(&r)
    };
    let n = r.analysis.broken.len();
    gated(text, (n > 0).then(|| format!("{n} broken references")))
}

/// A report, and the reason its gate failed: the report still goes out and the reason is
/// the error line. A reader that stopped early (`| head`) does not turn the verdict
/// into 0.
fn gated(text: String, gate: Option<String>) -> Result<String, Error> {
    match gate {
        Some(reason) => {
            if let Err(e) = std::io::stdout().write_all(text.as_bytes())
                && e.kind() != std::io::ErrorKind::BrokenPipe
            {
                return Err(e.into());
            }
            Err(Error::Gate(reason))
        }
        None => Ok(text),
    }
}

/// The man page on stdout, or every page (the command's and each subcommand's) in `dir`.
fn man_page(dir: Option<std::path::PathBuf>) -> Result<String, Error> {
    let cmd = Cli::command();
    match dir {
        None => {
            let mut out = Vec::new();
            clap_mangen::Man::new(cmd).render(&mut out)?;
            Ok(String::from_utf8_lossy(&out).into_owned())
        }
        Some(d) => {
            if !d.is_dir() {
                return Err(Error::Usage(format!("--dir {}: not a folder", d.display())));
            }
            clap_mangen::generate_to(cmd, &d)?;
            Ok(format!("man pages written to {}\n", d.display()))
        }
    }
}

/// On SIGINT, SIGTERM or SIGHUP, removes what is staged and dies of that signal, as if it
/// had not been caught (the shell sees 130, 143 or 129).
fn remove_staged_on_signal() -> std::io::Result<()> {
    let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    std::thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            let held = STAGED.abandon();
            let name = signal_name(sig).unwrap_or("a signal");
            if held.removed > 0 {
                eprintln!("error: interrupted by {name}; the partial output was removed");
            } else {
                eprintln!("error: interrupted by {name}");
            }
            let _ = emulate_default_handler(sig);
            std::process::exit(128 + sig);
        }
    });
    Ok(())
}

fn main() {
    let cli = Cli::parse();
    ocislim::transport::register();
    if let Err(e) = remove_staged_on_signal() {
        eprintln!("error: cannot handle signals: {e}");
        std::process::exit(1);
    }
    // `-q` silences convert's and squash's reports; inspect's report is its product.
    let quiet = cli.quiet
        && !matches!(
            cli.command,
            Command::Inspect { .. }
                | Command::Check { .. }
                | Command::Packages { .. }
                | Command::Completions { .. }
                | Command::ManPage { .. }
                | Command::Policy(_)
                | Command::Bench { .. }
        );
    // Reports go to stderr when stdout carries the image.
    let to_stdout = !matches!(&cli.command, Command::Convert { output, .. } | Command::Squash { output: Some(output), .. }
        if OutputOptions::parse(output, None, Vec::new(), Default::default()).is_ok_and(|o| o.dest.is_stream()));
    match run(cli) {
        Ok(text) if quiet => drop(text),
        Ok(text) => {
            let written = if to_stdout {
                std::io::stdout().write_all(text.as_bytes())
            } else {
                std::io::stderr().write_all(text.as_bytes())
            };
            // A closed pipe (`| head`) is not an error.
            if let Err(e) = written
                && e.kind() != std::io::ErrorKind::BrokenPipe
            {
                eprintln!("error: {e}");
                std::process::exit(1);
            }
        }
        Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(err) => {
            // An interruption removing the staged output makes the pipeline fail: that
            // error is not the story, so wait for the signal thread to end the process.
            STAGED.settle();
            let text = format!("{err:#}");
            eprintln!("error: {}", ocislim::escape::one_line(&text));
            std::process::exit(err.exit_code());
        }
    }
}
