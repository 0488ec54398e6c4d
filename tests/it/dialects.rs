//! Layers written by GNU tar (`--format=posix --xattrs`) and bsdtar (`--format=pax`), not
//! by the fixture builder's `tar` crate: `./`-prefixed names, sub-second times in PAX
//! records, PAX-only long names and link targets, ustar prefixes, uname/gname, xattrs in
//! SCHILY and LIBARCHIVE records, a FIFO. The squashed image is judged by umoci (the
//! filesystem) and by Python's tarfile (`tar_headers.py`: every unchanged entry byte for
//! byte, and `--timestamp` changing nothing but times).

use crate::builder::Spec;
use crate::squash::{blob, manifest};
use crate::tools::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Makes two trees and tars them: `gnu.tar` by GNU tar, `bsd.tar` by bsdtar.
const TREES: &str = r#"
set -eu
A=$1/a; B=$1/b
N=$(printf 'n%.0s' $(seq 60)); M=$(printf 'm%.0s' $(seq 70)); T=$(printf 't%.0s' $(seq 150))
mkdir -p "$A/d" "$A/$N/$M" "$B/d" "$B/e" "$B/$N/$M"
printf hi >"$A/d/f"; printf old >"$A/d/over"
ln -s "$T" "$A/d/longlink"
printf x >"$A/$N/$M/file"
setfattr -n user.k -v v "$A/d/f"
chown 1:1 "$A/d/f"; chown 2:2 "$B/e"
printf new >"$B/d/over"; printf y >"$B/e/g"; printf z >"$B/$N/$M/other"
setfattr -n user.b -v 0x00ff0a "$B/e/g"
ln -s ../d/f "$B/e/rel"
mkfifo "$B/e/p"
find "$A" "$B" -depth -exec touch -h -d @1500000000.25 {} +
touch -h -d @1700000000.123456789 "$A/d/f" "$A/d/longlink" "$B/e/g" "$B/e"
tar --format=posix --xattrs --xattrs-include='*' -C "$A" -cf "$1/gnu.tar" .
bsdtar --format=pax -C "$B" -cf "$1/bsd.tar" .
"#;

fn tar_headers() -> Command {
    let mut c = Command::new("python3");
    c.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/tar_headers.py"));
    c
}

/// The GNU tar and bsdtar layers as an OCI layout (gzip, by the builder), and the
/// paths of the two layer blobs.
fn dialect_image(work: &Path) -> (PathBuf, Vec<PathBuf>) {
    run(Command::new("sh").args(["-c", TREES, "sh"]).arg(work));
    let tars: Vec<Vec<u8>> = ["gnu.tar", "bsd.tar"]
        .iter()
        .map(|t| std::fs::read(work.join(t)).unwrap())
        .collect();
    let gnu = String::from_utf8_lossy(
        &run(Command::new("tar").arg("-tvf").arg(work.join("gnu.tar"))).stdout,
    )
    .into_owned();
    assert!(
        gnu.contains("daemon/daemon") && gnu.contains("./d/f"),
        "{gnu}"
    );
    let dir = work.join("orig");
    Spec::parse("tag dialects:1\nlayer \"gnu tar\"\nlayer \"bsdtar\"\n")
        .write_layout_of(&dir, tars, false);
    let layers = manifest(&dir)["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| blob(&dir, l["digest"].as_str().unwrap()))
        .collect();
    (dir, layers)
}

fn squashed_layer(out: &Path) -> PathBuf {
    let m = manifest(out);
    assert_eq!(m["layers"].as_array().unwrap().len(), 1);
    blob(out, m["layers"][0]["digest"].as_str().unwrap())
}

#[test]
fn gnu_tar_and_bsdtar_layers_are_copied_byte_for_byte() {
    let w = scratch();
    let (orig, layers) = dialect_image(w.path());
    let out = w.path().join("out");
    crate::squash::squash(&orig, &out, &[]);
    let want = umoci_listing(&orig, "1", w.path());
    assert!(
        want.contains("time=1700000000.123456789") && want.contains("user.b=0x00ff0a"),
        "{want}"
    );
    assert_eq!(want, umoci_listing(&out, "1", w.path()));
    let res = run(tar_headers()
        .args(&layers)
        .arg("--")
        .arg(squashed_layer(&out)));
    let said = String::from_utf8_lossy(&res.stdout);
    assert!(said.contains("byte-identical, 0 with"), "{said}");
}

#[test]
fn timestamp_clamps_pax_times_and_changes_nothing_else() {
    let w = scratch();
    let (orig, layers) = dialect_image(w.path());
    let out = w.path().join("out");
    crate::squash::squash(&orig, &out, &["--timestamp", "1600000000"]);
    let res = run(tar_headers()
        .args(["--clamp", "1600000000"])
        .args(&layers)
        .arg("--")
        .arg(squashed_layer(&out)));
    let said = String::from_utf8_lossy(&res.stdout);
    assert!(!said.contains(" 0 with clamped"), "{said}");
    // umoci applies the clamped times: nothing is newer than the clamp.
    let l = umoci_listing(&out, "1", w.path());
    for t in l.split_whitespace().filter_map(|f| f.strip_prefix("time=")) {
        let secs: f64 = t.parse().unwrap();
        assert!(secs <= 1_600_000_000.0, "{t} in\n{l}");
    }
    // The same through SOURCE_DATE_EPOCH, byte for byte.
    let env_out = w.path().join("env-out");
    run(ocislim()
        .args([
            "squash",
            "--policy",
            "none",
            "--format",
            "oci",
            "--tag",
            "squashed:1",
        ])
        .arg(&orig)
        .arg("-o")
        .arg(&env_out)
        .env("SOURCE_DATE_EPOCH", "1600000000"));
    assert_eq!(
        std::fs::read(squashed_layer(&out)).unwrap(),
        std::fs::read(squashed_layer(&env_out)).unwrap()
    );
}
