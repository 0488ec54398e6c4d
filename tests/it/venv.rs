//! A Python app in a virtual environment on Debian's python3 (the python test image:
//! minbase + python3-pip): the venv made by Debian's own `python3 -m venv` on the host
//! (the same bookworm python3.11 as the image's), `requests` installed into it from
//! PyPI (pip leaves its bytecode), and the app beside it. Slimmed by `aggressive` plus the
//! removal of pip and its tools, judged by dpkg and apt under Docker (as the Node image
//! is, [`crate::npm::dpkg_checks`]) and by the app itself.

use crate::builder::Spec;
use crate::tools::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

const APP: &str = r#"import sys, ssl, json, hashlib, sqlite3
import requests, certifi, urllib3, idna, charset_normalizer
req = requests.Request("GET", "https://example.invalid/x", params={"q": "1"}).prepare()
ctx = ssl.create_default_context(cafile=certifi.where())
db = sqlite3.connect(":memory:").execute("select 1").fetchone()[0]
print("venv app", sys.prefix, req.url, requests.__version__, db,
      hashlib.sha256(b"x").hexdigest()[:8], len(ctx.get_ca_certs()) > 0)
"#;

/// A virtual environment at `venv` made by Debian's python3 (not another one on PATH:
/// the image's own version), with `pip install ARGS` run in it.
pub fn make_venv(venv: &Path, args: &[&str]) {
    run(Command::new("/usr/bin/python3")
        .args(["-m", "venv"])
        .arg(venv));
    run(Command::new(venv.join("bin/python"))
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(args));
}

/// The layer: /opt/venv with requests, and /srv/app.py.
fn venv_layer(work: &Path) -> PathBuf {
    let top = work.join("venv-layer");
    std::fs::create_dir_all(top.join("srv")).unwrap();
    std::fs::write(top.join("srv/app.py"), APP).unwrap();
    make_venv(&top.join("opt/venv"), &["requests==2.31.0"]);
    let tar = work.join("venv.tar");
    run(Command::new("tar")
        .args(["--numeric-owner", "--owner=0", "--group=0", "-C"])
        .arg(&top)
        .arg("-cf")
        .arg(&tar)
        .args(["opt", "srv"]));
    tar
}

#[test]
fn a_python_venv_image_loses_pip_and_its_waste_and_still_runs() {
    let w = scratch();
    let base = crate::closure::rootfs("OCISLIM_DEBIAN_ROOTFS", "python");
    let layer = venv_layer(w.path());
    let dir = w.path().join("img");
    Spec::parse(
        "tag venv:1\nconfig Cmd=[\"/opt/venv/bin/python\",\"/srv/app.py\"]\nlayer\nlayer\n",
    )
    .write_layout_of(
        &dir,
        vec![
            std::fs::read(&base).unwrap(),
            std::fs::read(&layer).unwrap(),
        ],
        false,
    );
    let tag = "ocislim-test/venv:slim";
    let (out, r) = squash_with_policy(
        w.path(),
        &dir,
        concat!(
            "extends = [\"aggressive\"]\n[packages]\n",
            "remove = [\"python3-pip\", \"python3-setuptools\", \"python3-wheel\", ",
            "\"python3-distutils\", \"python3-lib2to3\", \"python3-pkg-resources\"]\n",
        ),
        tag,
    );
    let (before, after) = (
        r["before"]["uncompressed"].as_u64().unwrap(),
        r["after"]["uncompressed"].as_u64().unwrap(),
    );
    eprintln!(
        "python venv: {before} -> {after} tar bytes ({:.1}% smaller); packages {:#}",
        100.0 * (1.0 - after as f64 / before as f64),
        r["packages"]
    );
    // The venv's bytecode went by the python policy.
    let pycache = r["policy"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == "pycache")
        .map_or(0, |x| x["files"].as_u64().unwrap());
    assert!(pycache > 0, "{:#}", r["policy"]["rules"]);
    let removed: BTreeSet<String> = ["removed", "autoremoved"]
        .iter()
        .flat_map(|k| r["packages"][k].as_array().unwrap().iter())
        .map(|n| n.as_str().unwrap().to_string())
        .collect();
    assert!(removed.contains("python3-pip"), "{removed:?}");
    let before_packages = crate::npm::installed_in_tar(&base, w.path());
    let (app, got) =
        crate::npm::dpkg_checks(&out, tag, w.path(), "/opt/venv/bin/python /srv/app.py");
    assert!(
        app.starts_with("venv app /opt/venv https://example.invalid/x?q=1 2.31.0 1 2d711642 True"),
        "{app}"
    );
    let want: BTreeSet<String> = before_packages.difference(&removed).cloned().collect();
    assert_eq!(got, want);
}
