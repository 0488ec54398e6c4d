//! `bench`: the table for the embedded fixtures, as golden CSV (seconds dropped: tests
//! never assert on time), and the shape of the JSON.

use crate::tools::*;
use serde_json::Value;

#[test]
fn bench_golden_table_for_the_embedded_fixtures() {
    let out = run(ocislim().args(["bench", "--format", "csv"]));
    let csv = String::from_utf8(out.stdout).unwrap();
    // Every column but the last (seconds).
    let got: String = csv
        .lines()
        .map(|l| l.rsplit_once(',').unwrap().0.to_string() + "\n")
        .collect();
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/bench-fixtures.csv");
    if std::env::var_os("OCISLIM_REGENERATE").is_some() {
        std::fs::write(&path, &got).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap();
    assert!(
        got == want,
        "bench table changed (- golden, + now)\n{}",
        diff(&want, &got)
    );
}

#[test]
fn bench_runs_every_policy_against_every_image() {
    let w = scratch();
    let a = crate::fixtures::layout("waste", w.path());
    let b = crate::fixtures::layout("hard-cases", w.path());
    let out = run(ocislim()
        .arg("bench")
        .arg(&a)
        .arg(&b)
        .args(["--policy", "none", "--policy", "python", "--format", "json"]));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = r["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 4);
    let cell = |i: usize, k: &str| rows[i][k].clone();
    assert_eq!(
        (cell(0, "policy"), cell(1, "policy")),
        ("none".into(), "python".into())
    );
    assert_eq!(cell(0, "files_removed"), 0);
    assert_eq!(
        cell(1, "files_removed"),
        3,
        "the pip cache file, the .pyc in __pycache__, the test file"
    );
    // The baseline's output equals a pure squash of the same image.
    let sq = w.path().join("sq.json");
    run(ocislim()
        .arg("squash")
        .arg(&a)
        .args(["--policy", "none", "--dry-run", "--report"])
        .arg(&sq));
    let s: Value = serde_json::from_slice(&std::fs::read(&sq).unwrap()).unwrap();
    assert_eq!(cell(0, "after"), s["after"]);
}
