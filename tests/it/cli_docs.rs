//! Shell completions and man pages generated from the clap definitions: bash itself
//! completes subcommands and flags from the script; groff renders every page without
//! a warning; zsh and fish are not installed here, so their scripts are only checked to
//! name every subcommand.

use crate::tools::*;
use std::process::Command;

const SUBCOMMANDS: &[&str] = &[
    "squash",
    "convert",
    "inspect",
    "check",
    "packages",
    "policy",
    "bench",
    "completions",
    "man-page",
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
    for shell in ["zsh", "fish"] {
        let out = run(ocislim().args(["completions", shell]));
        let text = String::from_utf8(out.stdout).unwrap();
        for s in SUBCOMMANDS {
            assert!(text.contains(s), "{shell}: {s}");
        }
    }
    let (code, err) = run_fail(ocislim().args(["completions", "tcsh"]));
    assert_eq!(code, 2, "{err}");
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
    let out = run(ocislim().arg("man-page"));
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(
        page.contains(".TH ocislim 1"),
        "{}",
        &page[..200.min(page.len())]
    );
    assert!(page.contains("squash"));
}
