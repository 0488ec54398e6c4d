//! Docker accepts what we write: `docker load` into a real engine, then `docker run`.

use crate::fixtures;
use crate::tools::*;
use std::process::{Command, Stdio};

fn run_image(tag: &str) -> String {
    let out = run(docker().args(["run", "--rm", "--network", "none", tag]));
    String::from_utf8(out.stdout).unwrap()
}

/// The busybox fixture plus a top layer naming `who`, so that each test's image has a
/// layer the engine has not seen and must really apply.
fn busybox_with(who: &str, work: &std::path::Path) -> std::path::PathBuf {
    let text = std::fs::read_to_string(fixtures::fixtures_dir().join("busybox.spec")).unwrap();
    let text = format!("{text}layer \"mark\"\nfile etc/who \"{who}\"\n");
    let dir = work.join("busybox.oci");
    crate::builder::Spec::parse(&text).write_layout(&dir, false);
    dir
}

/// Docker Engine 20.10 (Debian 12's) cannot apply zstd layers (`archive/tar: invalid
/// tar header` for zstd blobs made by the zstd CLI as well); zstd support came with
/// Engine 23. So Docker judges gzip and plain layers; skopeo and umoci judge zstd in
/// the round-trip matrix.
#[test]
fn docker_loads_and_runs_our_docker_archive_gzip_and_plain() {
    let w = scratch();
    for codec in ["gzip", "none"] {
        let layout = busybox_with(&format!("load-{codec}"), &w.path().join(codec));
        let tag = format!("ocislim-test/bb-{codec}:1");
        let out = w.path().join(format!("bb-{codec}.tar"));
        run(ocislim()
            .args(["convert"])
            .arg(&layout)
            .args(["--compression", codec, "--tag", &tag, "-o"])
            .arg(&out)
            .args(["--format", "docker-archive"]));
        let loaded = run(docker().args(["load", "-i"]).arg(&out));
        assert!(
            String::from_utf8_lossy(&loaded.stdout).contains(&tag),
            "{loaded:?}"
        );
        assert_eq!(
            run_image(&tag),
            "fixture-ok\nmotd from layer 2\n",
            "{codec}"
        );
        run(docker().args(["rmi", &tag]));
    }
}

#[test]
fn docker_save_piped_through_ocislim_loads_back() {
    let w = scratch();
    let layout = busybox_with("pipe", w.path());
    let first = w.path().join("first.tar");
    run(ocislim()
        .args(["convert"])
        .arg(&layout)
        .args(["--tag", "ocislim-test/pipe-src:1", "-o"])
        .arg(&first)
        .args(["--format", "docker-archive"]));
    run(docker().args(["load", "-i"]).arg(&first));
    // docker save | ocislim convert - -o - | docker load, with real pipes.
    let mut save = docker()
        .args(["save", "ocislim-test/pipe-src:1"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut conv = Command::new(OCISLIM)
        .args([
            "-q",
            "convert",
            "-",
            "-o",
            "-",
            "--compression",
            "zstd",
            "--tag",
            "ocislim-test/pipe-out:1",
        ])
        .stdin(save.stdout.take().unwrap())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let load = docker()
        .arg("load")
        .stdin(conv.stdout.take().unwrap())
        .output()
        .unwrap();
    assert!(save.wait().unwrap().success() && conv.wait().unwrap().success());
    assert!(
        load.status.success(),
        "{}",
        String::from_utf8_lossy(&load.stderr)
    );
    assert_eq!(
        run_image("ocislim-test/pipe-out:1"),
        "fixture-ok\nmotd from layer 2\n"
    );
    // The image ID survives conversion: the config is copied byte for byte.
    let id = |t: &str| {
        String::from_utf8(run(docker().args(["image", "inspect", "-f", "{{.Id}}", t])).stdout)
            .unwrap()
    };
    assert_eq!(id("ocislim-test/pipe-src:1"), id("ocislim-test/pipe-out:1"));
    run(docker().args(["rmi", "ocislim-test/pipe-src:1", "ocislim-test/pipe-out:1"]));
}
