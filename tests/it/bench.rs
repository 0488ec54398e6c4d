//! `bench`: the table for the embedded fixtures, as golden CSV (seconds dropped: tests
//! never assert on time), and the shape of the JSON.

use crate::tools::*;
use serde_json::Value;

#[test]
fn bench_golden_table_for_the_embedded_fixtures() {
    let out = run(ocislim().args(["bench", "--report-format", "csv"]));
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

/// Like against like: from a `docker save` archive (plain tar layers, written by skopeo)
/// the stored sizes are both gzip. "stored before" is the input re-encoded as ocislim's
/// own `convert --compression gzip` stores it (layer sizes read by skopeo), never the
/// plain tar bytes; "tar before" is the layers' bytes as skopeo's plain archive holds
/// them, and "tar saved" compares tar with tar.
#[test]
fn bench_compares_stored_sizes_at_one_codec_and_tar_with_tar() {
    let w = scratch();
    let layout = crate::fixtures::layout("waste", w.path());
    let saved = w.path().join("saved.tar");
    run(std::process::Command::new("skopeo")
        .args(["copy", "--quiet"])
        .arg(format!("oci:{}:1", layout.display()))
        .arg(format!("docker-archive:{}:waste:1", saved.display())));
    let layer_sizes = |reference: &str| -> u64 {
        let raw = run(std::process::Command::new("skopeo").args(["inspect", "--raw", reference]));
        let m: Value = serde_json::from_slice(&raw.stdout).unwrap();
        m["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["size"].as_u64().unwrap())
            .sum()
    };
    let plain_bytes = layer_sizes(&format!("docker-archive:{}", saved.display()));
    let gz = w.path().join("gz.oci");
    run(ocislim()
        .args([
            "convert",
            "--compression",
            "gzip",
            "--format",
            "oci",
            "--tag",
            "gz:1",
        ])
        .arg(&saved)
        .arg("-o")
        .arg(&gz));
    let gzip_bytes = layer_sizes(&format!("oci:{}:1", gz.display()));
    let out = run(ocislim().arg("bench").arg(&saved).args([
        "--policy",
        "none",
        "--policy",
        "aggressive",
        "--format",
        "json",
    ]));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    for row in r["rows"].as_array().unwrap() {
        assert_eq!(row["codec"], "gzip");
        assert_eq!(
            row["before"]["compressed"], plain_bytes,
            "stored as the input"
        );
        assert_eq!(row["before"]["uncompressed"], plain_bytes);
        assert_eq!(row["before_at_output_codec"], gzip_bytes, "{row}");
        let pct = |a: &Value, b: u64| 100.0 * (1.0 - a.as_u64().unwrap() as f64 / b as f64);
        let close = |x: &Value, y: f64| (x.as_f64().unwrap() - y).abs() < 1e-9;
        assert!(
            close(
                &row["tar_saved_percent"],
                pct(&row["after"]["uncompressed"], plain_bytes)
            ),
            "{row}"
        );
        assert!(
            close(
                &row["stored_saved_percent"],
                pct(&row["after"]["compressed"], gzip_bytes)
            ),
            "{row}"
        );
    }
}
