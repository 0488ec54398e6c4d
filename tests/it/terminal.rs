//! What a terminal sees: progress bars on stderr (bytes, rate, ETA, one line each that
//! fits 80 columns) only when stderr is a terminal and `-q` is not given. The terminal is
//! a real pseudo-terminal, made by util-linux `script`.

use crate::builder::Spec;
use crate::tools::*;
use std::path::Path;
use std::process::{Command, Stdio};

/// Runs ocislim with `args` on an 80x24 pseudo-terminal; returns what it printed there.
fn on_terminal(args: &str) -> String {
    let out = run(Command::new("script")
        .arg("-qec")
        .arg(format!("stty cols 80 rows 24; {OCISLIM} {args}"))
        .arg("/dev/null"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The frames drawn: text between carriage returns and line feeds, escapes removed.
fn frames(log: &str) -> Vec<String> {
    let mut plain = String::new();
    let mut chars = log.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // CSI: ESC [ parameters, then one final byte in @..~
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
        .split(['\r', '\n'])
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.to_string())
        .collect()
}

/// The bars in a frame, each from its name to the end of its ETA. indicatif pads a bar
/// to the terminal's width and lets the terminal wrap to the next row.
fn bars(frame: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = frame;
    while let Some(i) = rest.find(" eta ") {
        let eta = i + " eta ".len();
        let end = eta + rest[eta..].find(' ').unwrap_or(rest.len() - eta);
        out.push(rest[..end].trim_start());
        rest = &rest[end..];
    }
    out
}

fn image(dir: &Path) -> String {
    Spec::parse("tag bars:1\nlayer\nfile a size=8000000 mode=0644\nlayer\nfile b size=8000000:2\n")
        .write_layout(dir, false);
    format!("oci:{}:1", dir.display())
}

#[test]
fn a_terminal_shows_one_bar_per_layer_and_stage_unless_quiet() {
    let work = scratch();
    let src = image(&work.path().join("src"));
    let out = work.path().join("out");
    // Level 9 makes the write last long enough to be drawn at 8 frames a second.
    let log = on_terminal(&format!(
        "squash {src} --policy none --level 9 -o {}",
        out.display()
    ));
    let frames = frames(&log);
    let drawn: Vec<&str> = frames.iter().flat_map(|f| bars(f)).collect();
    for name in ["read layer 1 [", "read layer 2 [", "write gzip ["] {
        // Bytes done of total, and a rate: some frame of each bar shows them moving.
        let moving = drawn
            .iter()
            .any(|b| b.starts_with(name) && b.contains(" MiB/") && b.contains("MiB/s eta "));
        assert!(moving, "no moving {name:?} bar in {log:?}");
    }
    for bar in &drawn {
        assert!(
            bar.chars().count() <= 80,
            "wider than the terminal: {bar:?}"
        );
    }
    // The report follows the bars, which cleared themselves.
    assert!(log.contains("squashed"), "{log:?}");

    let quiet = on_terminal(&format!(
        "-q squash {src} --policy none -o {}",
        out.display()
    ));
    assert_eq!(quiet, "", "-q printed on the terminal");
}

/// With stderr not a terminal (a CI log), progress is plain lines: no bar, no escape
/// sequence or carriage return redrawing one.
#[test]
fn no_bars_when_stderr_is_not_a_terminal() {
    let work = scratch();
    let src = image(&work.path().join("src"));
    let out = Command::new(OCISLIM)
        .args(["squash", &src, "--policy", "none", "-o"])
        .arg(work.path().join("out"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.is_empty() && err.lines().all(|l| l.starts_with('[')),
        "{err:?}"
    );
    assert!(!err.contains(['\x1b', '\r']), "{err:?}");
    assert!(!out.stdout.is_empty(), "the report is missing");
}

/// `-` on a terminal would wait for an image nobody is typing: refused, as `docker load`
/// refuses it.
#[test]
fn stdin_on_a_terminal_is_refused() {
    let work = scratch();
    let log = on_terminal(&format!(
        "squash - -o {}; echo exit=$?",
        work.path().join("out").display()
    ));
    assert!(
        log.contains("error: refusing to read an image from a terminal"),
        "{log:?}"
    );
    assert!(log.contains("exit=2"), "{log:?}");
    assert_eq!(entries(work.path()), Vec::<std::path::PathBuf>::new());
}

/// `-o /dev/tty` (or `/dev/stderr` on a terminal) would flood the terminal with an
/// archive: refused like `-o -` on one, and the device is left as it is.
#[test]
fn output_onto_a_terminal_device_is_refused() {
    let work = scratch();
    let src = image(&work.path().join("src"));
    let log = on_terminal(&format!("squash {src} -o /dev/tty; echo exit=$?"));
    assert!(log.contains("is a terminal; refusing"), "{log:?}");
    assert!(log.contains("exit=2"), "{log:?}");
}

/// `--progress plain`, for CI logs (stderr a pipe): one line as each phase starts, the
/// time since the start and its size; the output's total is what is written (after
/// the policy's deletions), not what the input held. `auto` on a pipe is `plain`;
/// `none` prints no progress.
#[test]
fn plain_progress_prints_a_line_per_phase_with_the_real_work() {
    let run_with = |mode: &str| {
        let out = Command::new(OCISLIM)
            .args([
                "squash",
                "fixtures/small.tar",
                "--json",
                "--dry-run",
                "--progress",
                mode,
            ])
            .output()
            .unwrap();
        assert!(out.status.success());
        let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (String::from_utf8_lossy(&out.stderr).into_owned(), r)
    };
    let (err, r) = run_with("plain");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 4, "three layers read, one written: {err}");
    assert!(
        lines[0].starts_with("[") && lines[0].contains("s] read layer "),
        "{err}"
    );
    let after = r["after"]["uncompressed"].as_u64().unwrap() as f64;
    let total = lines[3].split("write gzip: ").nth(1).expect(lines[3]);
    let (n, unit) = total.split_once(' ').unwrap();
    let scale = match unit {
        "B" => 1.0,
        "KiB" => 1024.0,
        _ => panic!("{total}"),
    };
    let total = n.parse::<f64>().unwrap() * scale;
    // Within a few tar blocks of the tar written (the end-of-archive blocks aside).
    assert!((total - after).abs() <= 2048.0, "{total} vs {after}: {err}");
    assert_eq!(run_with("none").0, "", "none");
    // `auto` with stderr a pipe is plain.
    let auto = run_with("auto").0;
    assert_eq!(auto.lines().count(), 4, "{auto}");
    assert!(auto.lines().all(|l| l.starts_with('[')), "{auto}");
    // Standard input's bytes are counted while it is spooled (its size is not known).
    let mut child = Command::new(OCISLIM)
        .args(["squash", "-", "--json", "--dry-run"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        &mut child.stdin.take().unwrap(),
        &std::fs::read("fixtures/small.tar").unwrap(),
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.lines()
            .next()
            .unwrap_or("")
            .ends_with("s] read stdin: streaming"),
        "{err}"
    );
}
