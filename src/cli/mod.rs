//! The command line: clap's structs (raw flags only) and the dispatch that turns them
//! into each command's validated options, runs it and formats its report.

pub mod args;
pub mod docs;
pub mod run;

use args::{GlobArgs, OutputArgs, SourceArgs};
use clap::{Parser, Subcommand};
use ocislim::image::writer::OutputOptions;
use ocislim::layer::codec::Compression;
use ocislim::report::TableFormat;

/// Printed under every command's help.
pub const EXIT_CODES: &str =
    "Exit status: 0 done, 1 failed, 2 usage or policy error (nothing written).";

/// Make existing container images smaller.
#[derive(Parser)]
#[command(version, about, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Worker threads, at least 1 (default: all cores).
    #[arg(short, long, global = true, value_parser = clap::value_parser!(u64).range(1..))]
    pub jobs: Option<u64>,
    /// Print nothing but errors (and the report of `inspect`, which is its output).
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Progress on stderr: bars (tty), a line per phase (plain: CI logs), or none.
    ///
    /// Progress on stderr, as `docker build --progress`: `tty` redraws a bar per layer
    /// and for the output; `plain` prints one line as each phase starts, with the time
    /// since the start and its size (for CI logs); `none` prints nothing; `auto` (the
    /// default) is `tty` when stderr is a terminal, else `plain` (`none` when the
    /// `--json` report goes to stderr, the image being on stdout).
    #[arg(long, global = true, value_enum, default_value = "auto")]
    pub progress: ProgressMode,
}

/// `--progress`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressMode {
    /// Bars on a terminal, a line per phase otherwise.
    Auto,
    /// Bars.
    Tty,
    /// A line per phase.
    Plain,
    /// Nothing.
    None,
}

/// The subcommands, in the order a user meets them.
#[derive(Subcommand)]
pub enum Command {
    /// Slim an image: delete by policy and flatten its layers.
    ///
    /// Flattens layers into one (or keeps a base and squashes the rest) with exact overlay
    /// semantics: the output's filesystem is the input's merged filesystem minus what the
    /// policy deleted, and the report lists every deletion. The slimmed image is checked
    /// for references the policy broke before it is written.
    #[command(after_help = EXIT_CODES)]
    Squash(SquashArgs),
    /// Show an image's format, config, history and layers, verifying every blob.
    ///
    /// Also reports the bytes later layers shadow (wasted) and, with --policy, what a
    /// policy would reclaim per rule; --fail-under and --fail-over gate CI on them.
    #[command(after_help = EXIT_CODES)]
    Inspect(InspectArgs),
    /// Report the references an image does not satisfy; exit 1 when any is broken.
    ///
    /// Checks the libraries its ELF files need (found as glibc's or musl's loader finds
    /// them, inside the image), script interpreters, the config's entrypoint and user.
    #[command(after_help = EXIT_CODES)]
    Check(CheckArgs),
    /// List an image's packages, largest first.
    ///
    /// The packages a dpkg or apk database records, with the bytes their files really
    /// hold in the merged filesystem, and which ones no installed package depends on.
    #[command(after_help = EXIT_CODES)]
    Packages(PackagesArgs),
    /// Show what changed between two images, path by path.
    ///
    /// Merges each image's layers and lists the paths added, removed and changed (in
    /// type, size, mode, owner, link target or content), with totals by top folder and
    /// by the package that lists each path. With --report (the squash's --json report,
    /// when the second image is the first one's slim) each deleted path also names the
    /// rule that deleted it. --fail-on-change makes any change exit 1, for CI.
    #[command(after_help = EXIT_CODES)]
    Diff(DiffArgs),
    /// Write an image's SBOM (SPDX 2.3 or CycloneDX 1.6 JSON) from its own metadata.
    ///
    /// Lists what the image ships as scanners read it: its dpkg or apk packages (with
    /// the licences their copyright files or database name), Python distributions
    /// (`*.dist-info`, `*.egg-info`) and Node packages (`package.json`), each with its
    /// purl. The same document `squash --sbom` writes for its output.
    #[command(after_help = EXIT_CODES)]
    Sbom(SbomArgs),
    /// Run each policy against each image and print a table of sizes before and after.
    #[command(after_help = EXIT_CODES)]
    Bench(BenchArgs),
    /// Re-encode an image into another format or compression, losslessly.
    #[command(after_help = EXIT_CODES)]
    Convert(ConvertArgs),
    /// List, show and check deletion policies.
    #[command(subcommand, after_help = EXIT_CODES)]
    Policy(PolicyCommand),
    /// Print a shell completion script.
    ///
    /// `ocislim completions bash > /etc/bash_completion.d/ocislim` (zsh: a `_ocislim`
    /// file on `$fpath`; fish: `~/.config/fish/completions/ocislim.fish`).
    Completions(CompletionsArgs),
    /// Print the man page, or write every page into a folder.
    ///
    /// Roff on stdout (`ocislim man-page | man -l -`), or with `--dir` ocislim.1 and one
    /// page per subcommand (ocislim-squash.1, ...) there.
    ManPage(ManPageArgs),
}

// `ocislim squash`'s arguments (no doc comment: clap would take it for the about).
#[derive(clap::Args)]
pub struct SquashArgs {
    #[command(flatten)]
    pub src: SourceArgs,
    /// Destination: a path, `-` for stdout, or TRANSPORT:NAME.
    ///
    /// A path, `-` for stdout, or oci:DIR[:REF], oci-archive:FILE[:REF],
    /// docker-archive:FILE[:NAME:TAG], docker://HOST/REPO[:TAG], docker-daemon:NAME[:TAG].
    /// An existing OCI layout gets the image added.
    #[arg(short, long, required_unless_present = "dry_run")]
    pub output: Option<String>,
    #[command(flatten)]
    pub out: OutputArgs,
    /// Keep the bottom N layers byte-identical and squash the rest above them.
    #[arg(long, value_name = "N", conflicts_with = "base")]
    pub keep_layers: Option<usize>,
    /// Keep the layers SOURCE shares with this image (by diff_id, in order).
    ///
    /// Keep the layers SOURCE shares with this image (by diff_id, in order). With
    /// --layer-groups, they are not kept as they are: they make the first group.
    #[arg(long, value_name = "IMAGE")]
    pub base: Option<String>,
    /// Write the squashed layers as groups, one output layer each (auto or N,M,...).
    ///
    /// Write the squashed layers as groups, one output layer each, slimmed by the policy:
    /// `N,M` ends a group after input layers N and M; `auto` ends one after the base
    /// image (--base, else the history's last CMD or ENTRYPOINT before a layer) and
    /// before each COPY or ADD layer, at most --max-layer-groups. A group's layer depends
    /// only on its own layers and those below it, so a rebuild that changes only the top
    /// layers gives the lower groups the same blobs (registries and nodes share them).
    #[arg(long, value_name = "auto|N,M,...", conflicts_with = "keep_layers")]
    pub layer_groups: Option<String>,
    /// The most groups --layer-groups auto makes.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_layer_groups: u64,
    /// Keep decompressed layers and squashed layers in DIR and reuse them.
    ///
    /// Keep each decompressed input layer (by diff_id) and each squashed layer (by
    /// everything its bytes depend on) in DIR, and reuse them: a rebuild that changed
    /// only its top layers decompresses and compresses only those. Default DIR:
    /// $XDG_CACHE_HOME/ocislim (~/.cache/ocislim); $OCISLIM_CACHE turns it on without
    /// the flag. Every entry is checked when used; one that fails is recomputed.
    #[arg(long, value_name = "DIR", num_args = 0..=1)]
    pub cache: Option<Option<std::path::PathBuf>>,
    /// The most the cache holds: least recently used entries go (bytes, or K, M, G).
    #[arg(long, value_name = "SIZE", default_value = "10G", value_parser = parse_size)]
    pub cache_max: u64,
    /// Deletion policy: a built-in name or a TOML file (repeatable).
    ///
    /// Deletion policy: a built-in name (`ocislim policy list`) or a TOML file;
    /// repeatable, they combine. `none` is a pure squash.
    #[arg(long, default_value = "default", value_name = "NAME|FILE")]
    pub policy: Vec<String>,
    #[command(flatten)]
    pub globs: GlobArgs,
    /// Compute and report everything, write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Squash every image of a multi-platform index.
    ///
    /// Writes an index of the results with the same platforms and annotations
    /// (attestations are dropped). A docker archive also names the host's platform in
    /// manifest.json, as Docker 25+ saves.
    #[arg(long, conflicts_with_all = ["platform", "report"])]
    pub all_platforms: bool,
    /// Write the image even when the policy breaks references the input satisfied.
    ///
    /// Write the image even when the policy breaks references the input satisfied (a
    /// library a program loads, a script's interpreter, the entrypoint, a symlink's
    /// target); they are listed as warnings instead of failing the run.
    #[arg(long, conflicts_with = "no_check")]
    pub allow_broken: bool,
    /// Skip the dependency check of the slimmed image.
    ///
    /// Skip the dependency check of the slimmed image (it costs a few percent; a policy
    /// that breaks the image is then not noticed). For measuring the check.
    #[arg(long)]
    pub no_check: bool,
    /// Also write the JSON report (every deleted path included) to FILE.
    #[arg(long, value_name = "FILE")]
    pub report: Option<std::path::PathBuf>,
    /// Also write the output's SBOM to FILE.
    ///
    /// Also write the output's SBOM to FILE, from the output's own package databases
    /// and language metadata (`ocislim sbom` of the result).
    #[arg(long, value_name = "FILE", conflicts_with = "all_platforms")]
    pub sbom: Option<std::path::PathBuf>,
    /// With --sbom, write only the file: attach nothing to the output.
    ///
    /// With --sbom, a layout, an OCI archive and a registry also get the SBOM and a
    /// record of the slim attached as referrers of the output (listed in a layout's
    /// index.json, as oras attach lists them; syft's oci-dir: reads only a layout of one
    /// manifest). --no-attach writes only the file.
    #[arg(long, requires = "sbom")]
    pub no_attach: bool,
    /// The SBOM's format: SPDX 2.3 JSON or CycloneDX 1.6 JSON.
    #[arg(long, value_enum, default_value = "spdx", value_name = "FORMAT")]
    pub sbom_format: ocislim::sbom::SbomFormat,
    /// Clamp file mtimes to EPOCH and set `created` to it.
    ///
    /// Clamp file mtimes to EPOCH and set `created` to it (default: $SOURCE_DATE_EPOCH
    /// when set; otherwise times are kept).
    #[arg(long, value_name = "EPOCH")]
    pub timestamp: Option<u64>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

// `ocislim inspect`'s arguments (no doc comment: clap would take it for the about).
#[derive(clap::Args)]
pub struct InspectArgs {
    #[command(flatten)]
    pub src: SourceArgs,
    /// Also show what this policy would reclaim, per rule.
    ///
    /// Also show what this policy would reclaim, per rule (repeatable: each is reported
    /// on its own).
    #[arg(long, value_name = "NAME|FILE")]
    pub policy: Vec<String>,
    #[command(flatten)]
    pub globs: GlobArgs,
    /// Exit 1 when the efficiency (merged / stored file data, 0 to 1) is under this.
    #[arg(long, value_name = "EFFICIENCY")]
    pub fail_under: Option<f64>,
    /// Exit 1 when more than this many bytes are wasted (stored but not seen).
    #[arg(long, value_name = "WASTED_BYTES")]
    pub fail_over: Option<u64>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

// `ocislim check`'s arguments (no doc comment: clap would take it for the about).
#[derive(clap::Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub src: SourceArgs,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Also list every ELF file's libraries and where they were found, as
    /// `ld.so --list` prints them.
    #[arg(long)]
    pub loads: bool,
    /// Fail only on references broken here and not in IMAGE (a slim's input).
    ///
    /// Fail only on references broken here and not in IMAGE: for a gate on a slimmed
    /// image, its input as the baseline (what the squash guard judges); the others are
    /// reported as broken in the baseline.
    #[arg(long, value_name = "IMAGE")]
    pub baseline: Option<String>,
    /// Report the broken references of files GLOB names as ignored (repeatable).
    ///
    /// Report the broken references of files GLOB names as ignored, not failing
    /// (repeatable; `usr/lib/python3*/cgi.py`). A policy's `[check] ignore` globs add
    /// to them through --policy.
    #[arg(long, value_name = "GLOB")]
    pub ignore: Vec<String>,
    /// Read `[check] ignore` from these policies (a built-in name or a TOML file;
    /// repeatable).
    #[arg(long)]
    pub policy: Vec<String>,
}

// `ocislim packages`'s arguments (no doc comment: clap would take it for the about).
#[derive(clap::Args)]
pub struct PackagesArgs {
    #[command(flatten)]
    pub src: SourceArgs,
    /// Print the listing as JSON.
    #[arg(long)]
    pub json: bool,
}

// `ocislim diff`'s arguments (no doc comment: clap would take it for the about).
#[derive(clap::Args)]
pub struct DiffArgs {
    /// The first image (before), and how images are read.
    #[command(flatten)]
    pub src: SourceArgs,
    /// The second image (after), as the first is named.
    pub second: String,
    /// Print the report as JSON (every changed path, with its facts before and after).
    #[arg(long)]
    pub json: bool,
    /// The squash's --json report, to name the rule that deleted each path.
    #[arg(long, value_name = "FILE")]
    pub report: Option<std::path::PathBuf>,
    /// Print only the totals and groups, not each path.
    #[arg(long)]
    pub summary: bool,
    /// Exit 1 when anything changed.
    #[arg(long)]
    pub fail_on_change: bool,
}

// `ocislim sbom`'s arguments (no doc comment: clap would take it for the about).
#[derive(clap::Args)]
pub struct SbomArgs {
    #[command(flatten)]
    pub src: SourceArgs,
    /// The SBOM's format.
    #[arg(long, value_enum, default_value = "spdx")]
    pub format: ocislim::sbom::SbomFormat,
    /// Write it to FILE (replaced when complete) instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<std::path::PathBuf>,
}

// `ocislim bench`'s arguments (no doc comment: clap would take it for the about).
#[derive(clap::Args)]
pub struct BenchArgs {
    /// Images (default: the fixture images built into ocislim).
    pub images: Vec<String>,
    /// Policies, each run on its own (default: `none` as a baseline, then every
    /// built-in policy).
    #[arg(long, value_name = "NAME|FILE")]
    pub policy: Vec<String>,
    #[command(flatten)]
    pub globs: GlobArgs,
    /// How the report is printed (squash's --format is the image's).
    ///
    /// How the report is printed: table, markdown, csv (raw numbers: bytes, percent
    /// without its sign) or json. `--format` is an alias, from before the name clashed
    /// with squash's --format (the image's format).
    #[arg(long = "report-format", alias = "format", default_value = "table")]
    pub format: TableFormat,
    /// Codec of the squashed layer (default: as squash chooses).
    #[arg(long)]
    pub compression: Option<Compression>,
    /// Compression level.
    #[arg(long)]
    pub level: Option<i32>,
    /// Platform to pick from multi-platform indexes.
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,
    /// Add a column saying whether `ocislim check` finds nothing the policy broke.
    #[arg(long)]
    pub check: bool,
    /// Add a column saying whether this shell command runs in each slimmed image.
    ///
    /// Run with `sh -c` under the Docker engine `docker` reaches (`DOCKER_HOST`),
    /// without network.
    #[arg(long, value_name = "CMD")]
    pub smoke: Option<String>,
}

// `ocislim convert`'s arguments (no doc comment: clap would take it for the about).
#[derive(clap::Args)]
pub struct ConvertArgs {
    #[command(flatten)]
    pub src: SourceArgs,
    /// Destination: a path, `-` for stdout, or TRANSPORT:NAME.
    ///
    /// A path, `-` for stdout, or oci:DIR[:REF], oci-archive:FILE[:REF],
    /// docker-archive:FILE[:NAME:TAG], docker://HOST/REPO[:TAG], docker-daemon:NAME[:TAG].
    /// An existing OCI layout gets the image added.
    #[arg(short, long)]
    pub output: String,
    #[command(flatten)]
    pub out: OutputArgs,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

// `ocislim completions`'s arguments (no doc comment: clap would take it for the about).
#[derive(clap::Args)]
pub struct CompletionsArgs {
    /// The shell.
    pub shell: clap_complete::Shell,
}

// `ocislim man-page`'s arguments (no doc comment: clap would take it for the about).
#[derive(clap::Args)]
pub struct ManPageArgs {
    /// Write every page into this folder.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<std::path::PathBuf>,
}

/// `ocislim policy ...`.
#[derive(Subcommand)]
pub enum PolicyCommand {
    /// The built-in policies.
    List,
    /// Closure mode's runtime presets (`[closure] presets`).
    Presets,
    /// A policy after `extends` is resolved, as one TOML policy file.
    ///
    /// Every rule of every policy it reads (each origin in a comment) and its tables, as
    /// a policy file `policy check` accepts: a template for your own.
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

impl Cli {
    /// Whether `-q` silences the report: it does for convert's and squash's, not for the
    /// commands whose report is their product.
    pub fn silenced(&self) -> bool {
        self.quiet && matches!(self.command, Command::Convert(_) | Command::Squash(_))
    }

    /// Whether the report goes to stderr as JSON (`--json` with the image on stdout):
    /// then `--progress auto` prints no progress there, so a reader parses the report.
    pub fn json_on_stderr(&self) -> bool {
        let json = match &self.command {
            Command::Squash(a) => a.json,
            Command::Convert(a) => a.json,
            _ => false,
        };
        json && !self.report_to_stdout()
    }

    /// Whether the report goes to stdout: not when stdout carries the image.
    pub fn report_to_stdout(&self) -> bool {
        !matches!(&self.command, Command::Convert(ConvertArgs { output, .. }) | Command::Squash(SquashArgs { output: Some(output), .. })
            if OutputOptions::parse(output, None, Vec::new(), Default::default()).is_ok_and(|o| o.dest.is_stream()))
    }
}

/// A size: bytes, or a number with K, M, G or T (powers of 1024).
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, shift) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => {
                    return Err(format!(
                        "{s:?}: a size is bytes, or a number with K, M, G or T"
                    ));
                }
            };
            (&t[..i], shift)
        }
        _ => (t, 0),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?}: a size is bytes, or a number with K, M, G or T"))?;
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("{s:?} is too big"))
}
