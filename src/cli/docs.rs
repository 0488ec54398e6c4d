//! What is generated from the command line's own definition: shell completions and
//! man pages.

use super::Cli;
use clap::CommandFactory;
use ocislim::Error;
use std::path::PathBuf;

/// The completion script for `shell`; `--policy` completes the built-in policies' names
/// as well as files (clap's static scripts offer one or the other).
pub fn completions(shell: clap_complete::Shell) -> String {
    use clap_complete::Shell;
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "ocislim", &mut out);
    let script = String::from_utf8_lossy(&out).into_owned();
    let names: Vec<&str> = ocislim::policy::BUILTIN
        .iter()
        .map(|(n, _)| *n)
        .chain([ocislim::policy::NONE])
        .collect();
    let names = names.join(" ");
    match shell {
        Shell::Bash => script.replace(
            "--policy)\n                    COMPREPLY=($(compgen -f \"${cur}\"))",
            &format!(
                "--policy)\n                    COMPREPLY=($(compgen -W \"{names}\" -- \"${{cur}}\") $(compgen -f -- \"${{cur}}\"))"
            ),
        ),
        Shell::Zsh => script
            .lines()
            .map(|l| match l.contains("*--policy=[") {
                true => l.replacen(
                    ":_default'",
                    &format!(":{{compadd -- {names}; _files}}'"),
                    1,
                ),
                false => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n")
            + "\n",
        Shell::Fish => script
            .lines()
            .map(|l| match l.contains(" -l policy ") {
                true => format!("{l} -a \"{names}\""),
                false => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n")
            + "\n",
        _ => script,
    }
}

/// The man page, or with `dir` every page (the command's and each subcommand's) there.
pub fn man_page(dir: Option<PathBuf>) -> Result<String, Error> {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    match dir {
        None => Ok(String::from_utf8_lossy(&page(&cmd, None)?).into_owned()),
        Some(d) => {
            if !d.is_dir() {
                return Err(Error::Usage(format!("--dir {}: not a folder", d.display())));
            }
            let mut stack = vec![(cmd, None)];
            while let Some((c, parent)) = stack.pop() {
                let name = clap_mangen::Man::new(c.clone()).get_filename();
                std::fs::write(d.join(&name), page(&c, parent.as_deref())?)?;
                let me = name.trim_end_matches(".1").to_string();
                stack.extend(
                    c.get_subcommands()
                        .filter(|s| !s.is_hide_set())
                        .map(|s| (s.clone(), Some(me.clone()))),
                );
            }
            Ok(format!("man pages written to {}\n", d.display()))
        }
    }
}

/// One page: clap_mangen's sections (name, synopsis, description, options, subcommands),
/// then EXIT STATUS, EXAMPLES, ENVIRONMENT (for the commands that read images), SEE ALSO
/// (only pages that are written) and VERSION.
fn page(cmd: &clap::Command, parent: Option<&str>) -> Result<Vec<u8>, Error> {
    let man = clap_mangen::Man::new(cmd.clone());
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut out)?;
    }
    if cmd.has_subcommands() {
        man.render_subcommands_section(&mut out)?;
    }
    let name = man.get_filename();
    let name = name.trim_end_matches(".1");
    let mut o = String::new();
    section(&mut o, "EXIT STATUS", &[super::EXIT_CODES]);
    let examples: Vec<String> = EXAMPLES
        .iter()
        .filter(|(page, _, _)| *page == name)
        .map(|(_, what, how)| format!("{what}\n.PP\n.RS 4\n.nf\n{}\n.fi\n.RE", roff(how)))
        .collect();
    if !examples.is_empty() {
        o.push_str(".SH EXAMPLES\n");
        for e in &examples {
            o.push_str(".PP\n");
            o.push_str(e);
            o.push('\n');
        }
    }
    if READS_IMAGES.contains(&name) {
        o.push_str(".SH ENVIRONMENT\n");
        for (var, what) in ENVIRONMENT {
            o.push_str(&format!(".TP\n\\fB{}\\fR\n{}\n", roff(var), roff(what)));
        }
    }
    let see: Vec<String> = see_also(cmd, name, parent)
        .iter()
        .map(|p| format!("\\fB{}\\fR(1)", roff(p)))
        .collect();
    o.push_str(&format!(".SH \"SEE ALSO\"\n{}\n", see.join(", ")));
    o.push_str(&format!(".SH VERSION\nv{}\n", env!("CARGO_PKG_VERSION")));
    out.extend_from_slice(o.as_bytes());
    Ok(out)
}

/// A section of plain paragraphs.
fn section(o: &mut String, title: &str, paras: &[&str]) {
    o.push_str(&format!(".SH \"{title}\"\n"));
    for p in paras {
        o.push_str(&format!(".PP\n{}\n", roff(p)));
    }
}

/// Text as roff reads it literally: backslashes and hyphens escaped, a line starting
/// with a control character protected.
fn roff(text: &str) -> String {
    text.replace('\\', "\\e")
        .replace('-', "\\-")
        .lines()
        .map(|l| {
            if l.starts_with(['.', '\'']) {
                format!("\\&{l}")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The pages a page refers to: the top page, its parent's and its own subcommands'
/// (every one written by `man_page`).
fn see_also(cmd: &clap::Command, name: &str, parent: Option<&str>) -> Vec<String> {
    let mut out: Vec<String> = ["ocislim"]
        .into_iter()
        .chain(parent)
        .filter(|p| *p != name)
        .map(String::from)
        .collect();
    out.dedup();
    out.extend(
        cmd.get_subcommands()
            .filter(|s| !s.is_hide_set())
            .map(|s| format!("{name}-{}", s.get_name())),
    );
    out
}

/// The pages of commands that read images, which the environment reaches.
const READS_IMAGES: &[&str] = &[
    "ocislim",
    "ocislim-squash",
    "ocislim-inspect",
    "ocislim-check",
    "ocislim-packages",
    "ocislim-diff",
    "ocislim-sbom",
    "ocislim-bench",
    "ocislim-convert",
];

/// What ocislim reads from the environment.
const ENVIRONMENT: &[(&str, &str)] = &[
    (
        "DOCKER_HOST",
        "The Docker engine docker-daemon: sources and destinations reach (default: unix:///var/run/docker.sock).",
    ),
    (
        "REGISTRY_AUTH_FILE",
        "The containers auth.json read for registry credentials, before $XDG_RUNTIME_DIR/containers/auth.json and Docker's config.json (--creds and --authfile take precedence).",
    ),
    (
        "DOCKER_CONFIG",
        "The folder of Docker's config.json (default: ~/.docker), credential helpers included.",
    ),
    (
        "SOURCE_DATE_EPOCH",
        "The time set on the squashed layer's entries and the config's created when --timestamp is not given, for reproducible builds.",
    ),
    (
        "OCISLIM_CACHE",
        "squash's cache folder when --cache is not given (see --cache); unset or empty, no cache.",
    ),
    (
        "XDG_CACHE_HOME",
        "Where --cache alone keeps its folder, ocislim (default: ~/.cache).",
    ),
    (
        "TMPDIR",
        "Where compressed layers are decompressed while an image is read (an image written to stdout is also staged there).",
    ),
];

/// Examples by page: what it does, then the command.
const EXAMPLES: &[(&str, &str, &str)] = &[
    (
        "ocislim-squash",
        "In CI, slim each build in layer groups with a cache: only the layers a rebuild changed are decompressed, only the groups it changed compressed and pushed:",
        "ocislim squash docker-daemon:app:$SHA --layer-groups auto --cache /var/cache/ocislim -o docker://registry.example/app:$SHA-slim",
    ),
    (
        "ocislim",
        "Slim an image from the Docker engine and load it back under a new name:",
        "docker save app:1 | ocislim squash - --tag app:1-slim -o - | docker load",
    ),
    (
        "ocislim",
        "What the slim removed, by path:",
        "ocislim diff docker-daemon:app:1 docker-daemon:app:1-slim",
    ),
    (
        "ocislim-squash",
        "Slim an archive with the default policy:",
        "ocislim squash app.tar --policy default -o app-slim.tar",
    ),
    (
        "ocislim-squash",
        "Registry to registry, keeping the base image's layers, with a JSON report:",
        "ocislim squash docker://registry.example/app:1 --base docker://registry.example/debian:12 \\\n    --policy aggressive -o docker://registry.example/app:1-slim --report slim.json",
    ),
    (
        "ocislim-squash",
        "A one-off deletion on top of a policy, without writing:",
        "ocislim squash app.tar --policy default --delete 'usr/share/locale/**' --dry-run",
    ),
    (
        "ocislim-inspect",
        "Where an image wastes space and what a policy would reclaim; fail CI under 90% efficiency:",
        "ocislim inspect docker-daemon:app:1 --policy default --fail-under 0.9",
    ),
    (
        "ocislim-check",
        "Gate a slim: fail only on references the slim broke, ignoring a known one:",
        "ocislim check oci:slim:1 --baseline oci:app:1 --ignore 'usr/lib/python3*/cgi.py'",
    ),
    (
        "ocislim-packages",
        "The largest packages, and the leaves nothing depends on:",
        "ocislim packages docker-daemon:app:1",
    ),
    (
        "ocislim-diff",
        "What a slim changed, each deleted path with its rule:",
        "ocislim squash app.tar --policy default --report r.json -o oci:slim:1\nocislim diff app.tar oci:slim:1 --report r.json",
    ),
    (
        "ocislim-diff",
        "Fail CI when a rebuild changed anything:",
        "ocislim diff --summary --fail-on-change oci:prev:1 oci:next:1",
    ),
    (
        "ocislim-sbom",
        "An image's SBOM as CycloneDX:",
        "ocislim sbom docker-daemon:app:1 --format cyclonedx -o app.cdx.json",
    ),
    (
        "ocislim-bench",
        "Compare policies on two images as CSV:",
        "ocislim bench --policy default --policy aggressive a.tar b.tar --report-format csv",
    ),
    (
        "ocislim-convert",
        "Re-encode a docker save archive as a zstd OCI layout:",
        "ocislim convert app.tar --format oci --compression zstd -o oci:app-zstd:1",
    ),
    (
        "ocislim-policy",
        "Start a policy from a built-in one:",
        "ocislim policy show default > mine.toml && ocislim policy check mine.toml",
    ),
    (
        "ocislim-policy-list",
        "The built-in policies:",
        "ocislim policy list",
    ),
    (
        "ocislim-policy-presets",
        "The presets a policy can name:",
        "ocislim policy presets",
    ),
    (
        "ocislim-policy-show",
        "A built-in policy as TOML:",
        "ocislim policy show aggressive",
    ),
    (
        "ocislim-policy-check",
        "Check policy files before a run:",
        "ocislim policy check mine.toml team.toml",
    ),
    (
        "ocislim-completions",
        "Install bash completion:",
        "ocislim completions bash > /etc/bash_completion.d/ocislim",
    ),
    (
        "ocislim-man-page",
        "Read this manual, or install every page:",
        "ocislim man-page | man -l -\nocislim man-page --dir /usr/local/share/man/man1",
    ),
];
