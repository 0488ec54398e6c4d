//! An interrupted run (Ctrl-C, `timeout`, a CI job cancelled) leaves nothing behind: the
//! process removes its staging folder and dies of the signal, and an earlier result at
//! the destination is untouched. A reader of stdout that goes away early makes the run
//! fail, as `docker save` fails: what it read is not an image.

use crate::builder::Spec;
use crate::tools::*;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const PRECIOUS: &[u8] = b"an earlier result that must survive";

/// An image whose squash takes seconds at `--level 9 -j 1`: one big layer of filler.
fn slow_image(dir: &Path) {
    Spec::parse("tag slow:1\nlayer\nfile big size=48000000:7 mode=0644\nfile small \"x\"\n")
        .write_layout(dir, false);
}

/// Waits until `dir` holds an `.ocislim-` staging entry; panics if `child` ends first.
fn wait_for_staging(child: &mut Child, dir: &Path) {
    loop {
        let staged = std::fs::read_dir(dir).unwrap().any(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with(".ocislim-")
        });
        if staged {
            return;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "ocislim ended ({status}) before it staged anything in {}",
                dir.display()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Sends `signal`, then returns how the process ended and its stderr.
fn interrupt(child: Child, signal: &str) -> (Option<i32>, String) {
    run(Command::new("kill")
        .args(["-s", signal])
        .arg(child.id().to_string()));
    let out = child.wait_with_output().unwrap();
    (
        out.status.signal(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The process died of `signal` (number `number`) and said what it removed.
fn assert_died_of(ended: (Option<i32>, String), signal: &str, number: i32) {
    let (died_of, stderr) = ended;
    assert_eq!(died_of, Some(number), "{stderr}");
    assert_eq!(
        stderr.trim_end(),
        format!("error: interrupted by SIG{signal}; the partial output was removed")
    );
}

#[test]
fn an_interrupted_squash_leaves_nothing_and_keeps_the_earlier_result() {
    let work = scratch();
    let src = work.path().join("src");
    slow_image(&src);
    for (format, name, signal, number) in [
        ("oci", "layout", "TERM", 15),
        ("docker-archive", "out.tar", "INT", 2),
        ("oci-archive", "out.tar", "HUP", 1),
    ] {
        let out = work.path().join(format!("out-{format}"));
        std::fs::create_dir(&out).unwrap();
        let dest = out.join(name);
        // An earlier layout (the image would be added to it) or archive: its bytes must
        // survive.
        let earlier = if format == "oci" {
            std::fs::create_dir(&dest).unwrap();
            std::fs::write(dest.join("oci-layout"), b"{}").unwrap();
            let index = serde_json::json!({"schemaVersion": 2, "manifests": [],
                "annotations": {"note": String::from_utf8_lossy(PRECIOUS)}});
            let bytes = serde_json::to_vec(&index).unwrap();
            std::fs::write(dest.join("index.json"), &bytes).unwrap();
            bytes
        } else {
            std::fs::write(&dest, PRECIOUS).unwrap();
            PRECIOUS.to_vec()
        };
        let mut child = Command::new(OCISLIM)
            .args(["-q", "-j", "1", "squash"])
            .arg(format!("oci:{}:1", src.display()))
            .args(["--policy", "none", "--level", "9", "--format", format, "-o"])
            .arg(&dest)
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Added to a layout, the image is staged inside it; an archive beside it.
        wait_for_staging(&mut child, if format == "oci" { &dest } else { &out });
        let ended = interrupt(child, signal);
        assert_eq!(
            entries(&out),
            vec![dest.clone()],
            "something was left behind"
        );
        let kept = if format == "oci" {
            assert_eq!(
                entries(&dest),
                [dest.join("index.json"), dest.join("oci-layout")],
                "something was left in the layout"
            );
            dest.join("index.json")
        } else {
            dest.clone()
        };
        assert_eq!(
            std::fs::read(kept).unwrap(),
            earlier,
            "{format}: the earlier result was touched"
        );
        assert_died_of(ended, signal, number);
    }
}

/// Starts a squash of a 400 kB image to a stdout pipe, with `$TMPDIR` in `work/tmp`;
/// returns the child and that folder.
fn squash_to_stdout(work: &Path) -> (Child, std::path::PathBuf) {
    let src = work.join("src");
    Spec::parse("tag piped:1\nlayer\nfile big size=400000 mode=0644\n").write_layout(&src, false);
    let tmp = work.join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let child = Command::new(OCISLIM)
        .args(["-q", "squash"])
        .arg(format!("oci:{}:1", src.display()))
        .args(["--policy", "none", "--compression", "none", "-o", "-"])
        .env("TMPDIR", &tmp)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (child, tmp)
}

/// Writing to a pipe nobody reads blocks the run after its layers are staged in
/// `$TMPDIR`; the interruption must still remove them.
#[test]
fn an_interrupted_write_to_stdout_leaves_nothing_in_tmpdir() {
    let work = scratch();
    let (mut child, tmp) = squash_to_stdout(work.path());
    wait_for_staging(&mut child, &tmp);
    // The archive is bigger than the pipe holds: the run cannot finish on its own.
    let unread = child.stdout.take().unwrap();
    let ended = interrupt(child, "TERM");
    drop(unread);
    assert_eq!(
        entries(&tmp),
        Vec::<std::path::PathBuf>::new(),
        "something was left behind"
    );
    assert_died_of(ended, "TERM", 15);
}

#[test]
fn a_reader_that_stops_early_makes_the_run_fail() {
    let work = scratch();
    let (mut child, tmp) = squash_to_stdout(work.path());
    // Like `| head -c 512`: read the first block, then close the pipe.
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 512];
    std::io::Read::read_exact(&mut stdout, &mut first).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr.trim_end(),
        "error: writing the image to stdout: Broken pipe (os error 32)"
    );
    assert_eq!(
        entries(&tmp),
        Vec::<std::path::PathBuf>::new(),
        "something was left behind"
    );
}
