//! `inspect`: the waste analysis against hand-computed figures, the CI gates, and a
//! golden listing for the committed fixture.

use crate::fixtures;
use crate::tools::*;
use serde_json::Value;

fn inspect_json(src: &std::path::Path, extra: &[&str]) -> Value {
    let out = run(ocislim().arg("inspect").arg(src).arg("--json").args(extra));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn efficiency_and_waste_match_the_hand_computed_fixture() {
    let w = scratch();
    let dir = fixtures::layout("efficiency", w.path());
    let r = inspect_json(&dir, &[]);
    let a = &r["analysis"];
    assert_eq!(a["stored_bytes"], 11150);
    assert_eq!(a["merged_bytes"], 4250);
    assert_eq!(r["wasted_bytes"], 6900);
    assert!((r["efficiency"].as_f64().unwrap() - 4250.0 / 11150.0).abs() < 1e-12);
    assert_eq!(a["layers"][0]["shadowed_bytes"], 6900);
    assert_eq!(a["layers"][1]["shadowed_bytes"], 0);
    let culprits: Vec<(String, u64, String)> = a["layers"][0]["culprits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["path"].as_str().unwrap().into(),
                c["bytes"].as_u64().unwrap(),
                c["reason"].as_str().unwrap().into(),
            )
        })
        .collect();
    let want = [
        ("c", 3000, "copied up"),
        ("b", 2000, "deleted"),
        ("a", 1000, "overwritten"),
        ("d/y", 500, "deleted"),
        ("d/x", 400, "deleted"),
    ];
    assert_eq!(
        culprits,
        want.map(|(p, b, r)| (p.to_string(), b, r.to_string()))
    );
    assert_eq!(a["largest_files"][0]["path"], "c");
    assert_eq!(
        a["largest_dirs"][0],
        serde_json::json!({"path": "d", "bytes": 50})
    );
}

#[test]
fn fail_under_and_fail_over_gate_the_exit_status() {
    let w = scratch();
    let dir = fixtures::layout("efficiency", w.path());
    let (code, err) = run_fail(
        ocislim()
            .arg("inspect")
            .arg(&dir)
            .args(["--fail-under", "0.5"]),
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("gate failed: efficiency 0.381 is under 0.5"),
        "{err}"
    );
    let (code, err) = run_fail(
        ocislim()
            .arg("inspect")
            .arg(&dir)
            .args(["--fail-over", "6899"]),
    );
    assert_eq!(code, 1);
    assert!(err.contains("6900 bytes wasted, over 6899"), "{err}");
    run(ocislim()
        .arg("inspect")
        .arg(&dir)
        .args(["--fail-over", "6900", "--fail-under", "0.38"]));
}

/// `inspect --fail-over N | head -1` in CI: the reader is gone before the report is
/// written, and the gate's verdict must still be the exit status.
#[test]
fn a_failed_gate_still_fails_when_stdout_is_closed_early() {
    let w = scratch();
    let dir = fixtures::layout("efficiency", w.path());
    let with_stdout_closed = |max: &str| {
        let mut child = ocislim()
            .arg("inspect")
            .arg(&dir)
            .args(["--fail-over", max])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = with_stdout_closed("6899");
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("6900 bytes wasted, over 6899"), "{err}");
    // A passing gate with a closed stdout stays quiet and succeeds.
    assert_eq!(with_stdout_closed("6900"), (Some(0), String::new()));
}

#[test]
fn inspect_golden_listing_of_the_committed_fixture() {
    let out = run(ocislim().current_dir(env!("CARGO_MANIFEST_DIR")).args([
        "inspect",
        "fixtures/small.tar",
        "--policy",
        "default",
        "--policy",
        "aggressive",
    ]));
    let got = String::from_utf8(out.stdout).unwrap();
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/inspect-small.txt");
    if std::env::var_os("OCISLIM_REGENERATE").is_some() {
        std::fs::write(&path, &got).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap();
    assert!(
        got == want,
        "inspect output changed (- golden, + now)\n{}",
        diff(&want, &got)
    );
}
