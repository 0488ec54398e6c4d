//! Errors a person reads (issue: the first hour of a new user): each names the thing and
//! the fix, on one line, with exit status 2 for a usage or policy error and 1 for
//! everything else, through the binary as a user runs it.

use crate::registry::{Registry, test_image};
use crate::tools::*;
use std::process::Command;

/// One failing run: its exit status and its one line of stderr.
fn fails(args: &[&str]) -> (i32, String) {
    let out = Command::new(OCISLIM).args(args).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    (out.status.code().unwrap(), err)
}

#[test]
fn a_missing_file_and_an_image_name_written_as_a_path_say_what_to_write() {
    let (code, err) = fails(&["squash", "/nonexistent.tar", "--dry-run"]);
    assert_eq!(
        (code, err.trim()),
        (1, "error: no such file: /nonexistent.tar")
    );
    let (code, err) = fails(&["squash", "lab/debian:bookworm", "--dry-run"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("no such file: lab/debian:bookworm")
            && err.contains("write docker-daemon:lab/debian:bookworm"),
        "{err}"
    );
    let (code, err) = fails(&[
        "squash",
        "fixtures/small.tar",
        "--base",
        "lab/debian:12",
        "--dry-run",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("write docker-daemon:lab/debian:12"), "{err}");
}

#[test]
fn every_policy_error_exits_2() {
    let w = scratch();
    for (name, text, says) in [
        ("toml", "x = [", "unclosed array"),
        (
            "glob",
            "[[rule]]\nid = \"a\"\ndelete = [\"a[b\"]\n",
            "unclosed character class",
        ),
    ] {
        let p = w.path().join(format!("{name}.toml"));
        std::fs::write(&p, text).unwrap();
        let p = p.to_str().unwrap().to_string();
        let (code, err) = fails(&["squash", "fixtures/small.tar", "--policy", &p, "--dry-run"]);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains(&p) && err.contains(says), "{err}");
    }
    let (code, err) = fails(&[
        "squash",
        "fixtures/small.tar",
        "--policy",
        "nosuch",
        "--dry-run",
    ]);
    assert_eq!(code, 2, "{err}");
    let help = run(ocislim().arg("--help")).stdout;
    assert!(String::from_utf8_lossy(&help).contains("2 usage or policy error"));
}

/// A disk that fills while the output is written: the error says so, and where ocislim
/// writes (the output's folder, the temporary folder). A 64 KiB tmpfs (the suite runs
/// as root) holds the output.
#[test]
fn a_full_disk_is_named_as_such() {
    let w = scratch();
    let tiny = w.path().join("tiny");
    std::fs::create_dir(&tiny).unwrap();
    run(Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(&tiny));
    let out = tiny.join("out.tar");
    let result = Command::new(OCISLIM)
        .args([
            "squash",
            "fixtures/small.tar",
            "--policy",
            "none",
            "--compression",
            "none",
        ])
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    let left = std::fs::read_dir(&tiny).unwrap().count();
    run(Command::new("umount").arg(&tiny));
    let err = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(1), "{err}");
    assert!(
        err.contains("error: no space left on device: free space in the output's folder"),
        "{err}"
    );
    assert_eq!(left, 0, "nothing left behind");
}

/// A plain-HTTP registry reached with TLS verification on (the default) says to add
/// `--tls-verify=false`; `--src-tls-verify=false` opens it for the source alone, and a
/// bare `--tls-verify` means true, as skopeo reads them.
#[test]
fn a_plain_http_registry_says_to_add_tls_verify_false() {
    let w = scratch();
    let reg = Registry::start(false);
    let layout = test_image(w.path(), "plain", 4 << 10);
    reg.put(&format!("oci:{}:1", layout.display()), "app:1");
    let src = format!("docker://{}/app:1", reg.host());
    let (code, err) = fails(&["inspect", &src]);
    assert_eq!(code, 1);
    assert!(
        err.contains("the registry answered plain HTTP: add --tls-verify=false"),
        "{err}"
    );
    run(ocislim().args(["inspect", "--src-tls-verify=false", &src]));
    run(ocislim().args(["inspect", "--tls-verify=false", &src]));
    let (code, err) = fails(&["inspect", "--tls-verify", &src]);
    assert_eq!(code, 1, "a bare --tls-verify is true: {err}");
    assert!(err.contains("plain HTTP"), "{err}");
}
