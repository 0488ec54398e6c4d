//! Shell completions and man pages generated from the clap definitions: bash itself
//! completes subcommands and flags from the script; groff renders every page without
//! a warning; zsh and fish are not installed here, so their scripts are only checked to
//! name every subcommand.

use crate::tools::*;
use std::process::Command;

/// In the order `ocislim --help` lists them: the order of use.
const SUBCOMMANDS: &[&str] = &[
    "squash",
    "inspect",
    "check",
    "packages",
    "diff",
    "sbom",
    "bench",
    "convert",
    "policy",
    "completions",
    "man-page",
];

/// Each subcommand's own one-line description, the first line of its help.
const ABOUT: &[(&str, &str)] = &[
    (
        "squash",
        "Slim an image: delete by policy and flatten its layers",
    ),
    (
        "inspect",
        "Show an image's format, config, history and layers, verifying every blob",
    ),
    (
        "check",
        "Report the references an image does not satisfy; exit 1 when any is broken",
    ),
    ("packages", "List an image's packages, largest first"),
    ("diff", "Show what changed between two images, path by path"),
    (
        "sbom",
        "Write an image's SBOM (SPDX 2.3 or CycloneDX 1.6 JSON) from its own metadata",
    ),
    (
        "bench",
        "Run each policy against each image and print a table of sizes before and after",
    ),
    (
        "convert",
        "Re-encode an image into another format or compression, losslessly",
    ),
    ("policy", "List, show and check deletion policies"),
    ("completions", "Print a shell completion script"),
    (
        "man-page",
        "Print the man page, or write every page into a folder",
    ),
];

/// What bash completes for the words `line` (the last one being completed), calling
/// the function as bash does: command, current word, previous word.
fn bash_complete(script: &str, line: &[&str]) -> Vec<String> {
    let words = line
        .iter()
        .map(|w| format!("'{w}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let program = format!(
        "{script}\nCOMP_WORDS=({words}); COMP_CWORD={}; COMP_LINE='{}'; COMP_POINT=${{#COMP_LINE}}; _ocislim ocislim '{}' '{}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        line.len() - 1,
        line.join(" "),
        line[line.len() - 1],
        line[line.len().saturating_sub(2)]
    );
    let out = run(Command::new("bash").args(["-c", &program]));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn bash_completes_subcommands_and_flags_from_the_generated_script() {
    let out = run(ocislim().args(["completions", "bash"]));
    let script = String::from_utf8(out.stdout).unwrap();
    let subs = bash_complete(&script, &["ocislim", ""]);
    for s in SUBCOMMANDS {
        assert!(subs.iter().any(|c| c == s), "{s} not in {subs:?}");
    }
    assert_eq!(bash_complete(&script, &["ocislim", "pac"]), ["packages"]);
    let flags = bash_complete(&script, &["ocislim", "squash", "--allow"]);
    assert_eq!(flags, ["--allow-broken"]);
    // --policy completes the built-in names and files (the tests run in the crate root).
    for sub in ["squash", "inspect", "bench"] {
        let names = bash_complete(&script, &["ocislim", sub, "--policy", "agg"]);
        assert_eq!(names, ["aggressive"], "{sub}");
        let files = bash_complete(&script, &["ocislim", sub, "--policy", "Cargo.t"]);
        assert_eq!(files, ["Cargo.toml"], "{sub}");
    }
    for shell in ["zsh", "fish"] {
        let out = run(ocislim().args(["completions", shell]));
        let text = String::from_utf8(out.stdout).unwrap();
        for s in SUBCOMMANDS {
            assert!(text.contains(s), "{shell}: {s}");
        }
        let policy = text
            .lines()
            .find(|l| l.contains("policy=[") || l.contains(" -l policy "));
        assert!(
            policy.is_some_and(|l| l.contains("aggressive") && l.contains("default")),
            "{shell}: --policy offers no built-in names: {policy:?}"
        );
    }
    let (code, err) = run_fail(ocislim().args(["completions", "tcsh"]));
    assert_eq!(code, 2, "{err}");
}

#[test]
fn each_subcommand_help_starts_with_its_own_description_in_the_order_of_use() {
    assert_eq!(
        ABOUT.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        SUBCOMMANDS
    );
    for (sub, about) in ABOUT {
        for flag in ["--help", "-h"] {
            let out = run(ocislim().args([sub, flag]));
            let text = String::from_utf8(out.stdout).unwrap();
            // clap drops the about's final period in short help and keeps it in long help.
            let first = text.lines().next().map(|l| l.trim_end_matches('.'));
            assert_eq!(first, Some(*about), "ocislim {sub} {flag}");
        }
        // Short help is one line a flag; long help keeps the detail.
        let short = String::from_utf8(run(ocislim().args([sub, "-h"])).stdout).unwrap();
        let long = String::from_utf8(run(ocislim().args([sub, "--help"])).stdout).unwrap();
        assert!(long.len() >= short.len(), "{sub}");
    }
    let top = String::from_utf8(run(ocislim().arg("--help")).stdout).unwrap();
    let listed: Vec<&str> = top
        .lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|s| *s != "help")
        .collect();
    assert_eq!(listed, SUBCOMMANDS);
    let squash = String::from_utf8(run(ocislim().args(["squash", "--help"])).stdout).unwrap();
    assert!(
        squash.contains("exact overlay"),
        "long help keeps the detail"
    );
}

/// `docs/man/` holds the pages the binary generates (regenerate with
/// `cargo run -- man-page --dir docs/man`).
#[test]
fn the_man_pages_in_docs_are_current() {
    let w = scratch();
    run(ocislim().args(["man-page", "--dir"]).arg(w.path()));
    let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/man");
    let mut generated: Vec<_> = entries(w.path())
        .iter()
        .map(|p| p.file_name().unwrap().to_owned())
        .collect();
    generated.sort();
    let mut committed: Vec<_> = entries(&docs)
        .iter()
        .map(|p| p.file_name().unwrap().to_owned())
        .collect();
    committed.sort();
    assert_eq!(
        generated, committed,
        "regenerate: cargo run -- man-page --dir docs/man"
    );
    for name in &generated {
        let fresh = std::fs::read(w.path().join(name)).unwrap();
        let kept = std::fs::read(docs.join(name)).unwrap();
        assert!(
            fresh == kept,
            "docs/man/{} is stale: cargo run -- man-page --dir docs/man",
            name.to_string_lossy()
        );
    }
}

#[test]
fn every_man_page_renders_without_a_groff_warning() {
    let w = scratch();
    run(ocislim().args(["man-page", "--dir"]).arg(w.path()));
    let mut pages: Vec<String> = entries(w.path())
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    for s in SUBCOMMANDS {
        assert!(pages.contains(&format!("ocislim-{s}.1")), "{s}: {pages:?}");
    }
    assert!(pages.contains(&"ocislim.1".to_string()));
    for p in &pages {
        let out = run(Command::new("groff")
            .args(["-man", "-Tutf8", "-ww", "-z"])
            .arg(w.path().join(p)));
        let warnings = String::from_utf8_lossy(&out.stderr);
        assert!(warnings.is_empty(), "{p}: {warnings}");
    }
    // Every page has examples and refers only to pages written; the pages of commands
    // that read images name the environment they read.
    for p in &pages {
        let text = std::fs::read_to_string(w.path().join(p)).unwrap();
        assert!(text.contains("\n.SH EXAMPLES\n"), "{p}: no EXAMPLES");
        assert!(
            text.contains("\n.SH \"EXIT STATUS\"\n"),
            "{p}: no EXIT STATUS"
        );
        let reads = [
            "squash", "inspect", "check", "packages", "diff", "sbom", "bench", "convert",
        ]
        .iter()
        .any(|s| *p == format!("ocislim-{s}.1"));
        if reads || p == "ocislim.1" {
            assert!(
                text.contains("\n.SH ENVIRONMENT\n") && text.contains("DOCKER_HOST"),
                "{p}: no ENVIRONMENT"
            );
        }
        for r in text.split("\\fB").skip(1) {
            let Some((name, rest)) = r.split_once("\\fR") else {
                continue;
            };
            if rest.starts_with("(1)") {
                let file = format!("{}.1", name.replace("\\-", "-"));
                assert!(pages.contains(&file), "{p} refers to {file}, not written");
            }
        }
    }
    let out = run(ocislim().arg("man-page"));
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(
        page.contains(".TH ocislim 1"),
        "{}",
        &page[..200.min(page.len())]
    );
    assert!(page.contains("squash"));
}
