//! Each command's arguments turned into its options (policies compiled, destinations
//! checked, before any image byte is read), the command run, and its report formatted.

use super::args::{each_policy, parse_platform, policies};
use super::{
    BenchArgs, CheckArgs, Cli, Command, ConvertArgs, DiffArgs, InspectArgs, PackagesArgs,
    PolicyCommand, ProgressMode, SbomArgs, SquashArgs, docs,
};
use ocislim::Error;
use ocislim::cleanup::STAGED;
use ocislim::command::bench::{self, BenchOptions};
use ocislim::command::convert::{self, ConvertOptions};
use ocislim::command::squash::{self, CacheOptions, GroupSpec, Keep, SquashOptions};
use ocislim::command::{check, diff, inspect, packages, policy as policy_cmd};
use ocislim::image::reader::{OpenOptions, SourceSpec};
use ocislim::image::remote::Access;
use ocislim::policy;
use ocislim::progress::Progress;
use ocislim::report;

/// `check`: the image's broken references; a gate failing on those neither ignored
/// nor broken in the baseline.
fn check_command(a: CheckArgs, ctx: &Ctx) -> Result<Printed, Error> {
    let (_, set) = policies(&a.policy, &Default::default())?;
    let mut ignore = a.ignore;
    ignore.extend(set.check_ignore.iter().cloned());
    let open = a.src.open_options(&ctx.progress)?;
    let opts = check::CheckOptions {
        list_loads: a.loads,
        ignore,
        baseline: a
            .baseline
            .map(|b| (ocislim::image::reader::SourceSpec::parse(&b), open.clone())),
    };
    let r = check::check(&a.src.spec(), &open, &opts, ctx.jobs, &ctx.progress)?;
    let n = r.analysis.broken.len();
    Ok(Printed {
        text: shown(a.json, &r, report::check_text),
        failed: (n > 0).then(|| format!("{n} broken references")),
        notes: String::new(),
    })
}

/// `diff`: what changed between two images; with --fail-on-change, a gate.
fn diff_command(a: DiffArgs, ctx: &Ctx) -> Result<Printed, Error> {
    let opts = diff::DiffOptions {
        a: a.src.spec(),
        b: SourceSpec::parse(&a.second),
        open: a.src.open_options(&ctx.progress)?,
        report: a.report,
    };
    let r = diff::diff(&opts, ctx.jobs, &ctx.progress)?;
    let t = &r.total;
    let n = t.added + t.removed + t.changed;
    Ok(Printed {
        text: shown(a.json, &r, |r| report::diff_text(r, !a.summary)),
        failed: (a.fail_on_change && n > 0).then(|| format!("{n} paths changed")),
        notes: String::new(),
    })
}

/// What a command prints, and, for a gate that failed (`check`, `inspect --fail-under`),
/// why the run fails after printing it.
pub struct Printed {
    /// The report.
    pub text: String,
    /// The failed gate's reason.
    pub failed: Option<String>,
    /// Warnings for stderr, when the report is a document on stdout.
    pub notes: String,
}

impl From<String> for Printed {
    fn from(text: String) -> Printed {
        Printed {
            text,
            failed: None,
            notes: String::new(),
        }
    }
}

/// The report as JSON or for people.
fn shown<T: serde::Serialize>(json: bool, r: &T, text: impl FnOnce(&T) -> String) -> String {
    if json { report::json(r) } else { text(r) }
}

/// Runs the command `cli` names.
pub fn run(cli: Cli) -> Result<Printed, Error> {
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let progress = match (cli.quiet, cli.progress) {
        (true, _) | (_, ProgressMode::None) => Progress::hidden(),
        (_, ProgressMode::Plain) => Progress::plain(),
        (_, ProgressMode::Tty) => Progress::stderr(),
        (_, ProgressMode::Auto) if tty => Progress::stderr(),
        (_, ProgressMode::Auto) if cli.json_on_stderr() => Progress::hidden(),
        (_, ProgressMode::Auto) => Progress::plain(),
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
    let ctx = Ctx { jobs, progress };
    Ok(match cli.command {
        Command::Squash(a) => squash_command(a, ctx)?.into(),
        Command::Inspect(a) => inspect_command(a, &ctx)?,
        Command::Check(a) => check_command(a, &ctx)?,
        Command::Packages(PackagesArgs { src, json }) => {
            let l = packages::packages(
                &src.spec(),
                &src.open_options(&ctx.progress)?,
                jobs,
                &ctx.progress,
            )?;
            shown(json, &l, report::packages_text).into()
        }
        Command::Diff(a) => diff_command(a, &ctx)?,
        Command::Sbom(a) => sbom_command(a, ctx)?,
        Command::Bench(a) => bench_command(a, ctx)?.into(),
        Command::Convert(ConvertArgs {
            src,
            output,
            out,
            json,
        }) => {
            let opts = ConvertOptions {
                source: src.spec(),
                open: src.open_options(&ctx.progress)?,
                output: out.options(&output, &src.registry)?,
                jobs,
                progress: ctx.progress,
            };
            shown(json, &convert::convert(&opts)?, report::convert_text).into()
        }
        Command::Policy(cmd) => match cmd {
            PolicyCommand::List => policy_cmd::list(),
            PolicyCommand::Presets => policy_cmd::presets(),
            PolicyCommand::Show { name } => policy_cmd::show(&name)?,
            PolicyCommand::Check { files } => policy_cmd::check(&files)?,
        }
        .into(),
        Command::Completions(a) => docs::completions(a.shell).into(),
        Command::ManPage(a) => docs::man_page(a.dir)?.into(),
    })
}

/// What every command runs with.
struct Ctx {
    jobs: usize,
    progress: Progress,
}

/// `--timestamp`, else `SOURCE_DATE_EPOCH` when set.
fn timestamp(given: Option<u64>) -> Result<Option<u64>, Error> {
    if given.is_some() {
        return Ok(given);
    }
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.is_empty() => v.parse().map(Some).map_err(|_| {
            Error::Usage(format!(
                "SOURCE_DATE_EPOCH={v:?} is not a number of seconds"
            ))
        }),
        _ => Ok(None),
    }
}

/// The cache folder: `--cache DIR`; `--cache` alone, `$XDG_CACHE_HOME/ocislim`
/// (`~/.cache/ocislim`); without the flag, `$OCISLIM_CACHE` when set.
fn cache_dir(flag: Option<Option<std::path::PathBuf>>) -> Option<std::path::PathBuf> {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    match flag {
        Some(Some(dir)) => return Some(dir),
        Some(None) => {}
        None => return env("OCISLIM_CACHE").map(Into::into),
    }
    let base = env("XDG_CACHE_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| env("HOME").map(|h| std::path::PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    Some(base.join("ocislim"))
}

fn squash_command(a: SquashArgs, ctx: Ctx) -> Result<String, Error> {
    // Policies are parsed and compiled before any image byte is read.
    let (_, policy) = policies(&a.policy, &a.globs)?;
    let keep = match (a.keep_layers, a.base) {
        (Some(n), _) => Keep::Layers(n),
        (None, Some(b)) => Keep::Base(SourceSpec::parse(&b)),
        (None, None) => Keep::Nothing,
    };
    let opts = SquashOptions {
        source: a.src.spec(),
        open: a.src.open_options(&ctx.progress)?,
        // A dry run writes nothing; its destination is never checked.
        output: a
            .out
            .options(a.output.as_deref().unwrap_or("-"), &a.src.registry)?,
        keep,
        groups: a
            .layer_groups
            .as_deref()
            .map(|g| GroupSpec::parse(g, a.max_layer_groups as usize))
            .transpose()
            .map_err(|e| Error::Usage(format!("--layer-groups: {e}")))?,
        timestamp: timestamp(a.timestamp)?,
        cache: cache_dir(a.cache).map(|dir| CacheOptions {
            dir,
            max: a.cache_max,
        }),
        policy,
        dry_run: a.dry_run,
        allow_broken: a.allow_broken,
        check: !a.no_check,
        report_file: a.report,
        sbom: a.sbom.map(|p| (p, a.sbom_format)),
        attach: !a.no_attach,
        jobs: ctx.jobs,
        progress: ctx.progress,
    };
    Ok(if a.all_platforms {
        shown(
            a.json,
            &squash::squash_all(&opts)?,
            report::all_platforms_text,
        )
    } else {
        shown(a.json, &squash::squash(&opts)?, report::squash_text)
    })
}

/// Runs `sbom`: the document on stdout (its warnings for stderr), or a line saying
/// where it was written.
fn sbom_command(a: SbomArgs, ctx: Ctx) -> Result<Printed, Error> {
    let r = ocislim::command::sbom::sbom(&ocislim::command::sbom::SbomOptions {
        source: a.src.spec(),
        open: a.src.open_options(&ctx.progress)?,
        format: a.format,
        output: a.output,
        jobs: ctx.jobs,
        progress: ctx.progress,
    })?;
    let (text, notes) = report::sbom_text(&r);
    Ok(Printed {
        text,
        failed: None,
        notes,
    })
}

/// Runs `bench`: the named policies (default: `none`, then every built-in one) against
/// the named images (default: the fixtures built into the binary).
fn bench_command(a: BenchArgs, ctx: Ctx) -> Result<String, Error> {
    let names: Vec<String> = if a.policy.is_empty() {
        std::iter::once(policy::NONE.to_string())
            .chain(policy::BUILTIN.iter().map(|(n, _)| n.to_string()))
            .collect()
    } else {
        a.policy
    };
    // Policies are compiled before any image byte is read.
    let policies = names
        .iter()
        .cloned()
        .zip(each_policy(&names, &a.globs)?)
        .collect();
    // Registry images are reached with the ambient credentials.
    let open = OpenOptions {
        platform: parse_platform(a.platform.as_deref())?,
        access: Access::default(),
        progress: ctx.progress.clone(),
    };
    // The built-in fixtures are written to a temporary folder to be read.
    let (fixtures, _staged) = STAGED.create(tempfile::tempdir)?;
    let images: Vec<(String, SourceSpec)> = if a.images.is_empty() {
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
        a.images
            .iter()
            .map(|i| (i.clone(), SourceSpec::parse(i)))
            .collect()
    };
    let r = bench::bench(&BenchOptions {
        images,
        policies,
        open,
        compression: a.compression,
        level: a.level,
        jobs: ctx.jobs,
        progress: ctx.progress,
        check: a.check,
        smoke: a.smoke,
    })?;
    Ok(report::bench(&r, a.format))
}

/// `inspect`, with its gates (`--fail-under`, `--fail-over`).
fn inspect_command(a: InspectArgs, ctx: &Ctx) -> Result<Printed, Error> {
    let (src, policy) = (&a.src, &a.policy);
    // Policies are compiled before any image byte is read.
    let policies = each_policy(policy, &a.globs)?;
    if let Some(p) = policies.iter().find(|p| p.reads_contents()) {
        return Err(Error::Usage(format!(
            "policy {}: closure mode and package removal read the files' contents; measure it with \
             `ocislim squash --dry-run --policy {0}` or `ocislim bench --policy {0}`",
            p.names
        )));
    }
    let r = inspect::inspect(
        &src.spec(),
        &src.open_options(&ctx.progress)?,
        &policies,
        ctx.jobs,
        &ctx.progress,
    )?;
    let failed = match (a.fail_under, a.fail_over) {
        (Some(min), _) if r.efficiency < min => {
            Some(format!("efficiency {:.3} is under {min}", r.efficiency))
        }
        (_, Some(max)) if r.wasted_bytes > max => {
            Some(format!("{} bytes wasted, over {max}", r.wasted_bytes))
        }
        _ => None,
    };
    Ok(Printed {
        text: shown(a.json, &r, report::inspect_text),
        failed,
        notes: String::new(),
    })
}
