//! Writing into an OCI layout that already holds images: ocislim adds its image beside
//! them, as `skopeo copy` and umoci do, replacing only the entry of the same name. skopeo
//! writes the layout and reads every image back (verifying each blob's digest), umoci
//! lists the names, and `umoci gc` finds nothing left unreferenced.

use crate::fixtures;
use crate::tools::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The fixture image, and a layout skopeo made of it in `work/images`, named `name`.
fn skopeo_layout(work: &Path, name: &str) -> (PathBuf, PathBuf) {
    let small = fixtures::fixtures_dir().join("small.tar");
    let layout = work.join("images");
    run(Command::new("skopeo")
        .args(["copy", "--quiet"])
        .arg(format!("oci-archive:{}", small.display()))
        .arg(format!("oci:{}:{name}", layout.display())));
    (small, layout)
}

fn names(layout: &Path) -> Vec<String> {
    let out = run(Command::new("umoci").args(["ls", "--layout"]).arg(layout));
    let mut v: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    v.sort();
    v
}

fn blobs(layout: &Path) -> Vec<PathBuf> {
    entries(&layout.join("blobs/sha256"))
}

/// Every image in the layout reads back whole through skopeo, and umoci's garbage
/// collection, run on a copy, removes nothing: no blob was lost, none was left over.
fn assert_whole_and_tidy(layout: &Path, work: &Path) {
    for name in names(layout) {
        let dir = work.join(format!("read-{name}"));
        run(Command::new("skopeo")
            .args(["copy", "--quiet"])
            .arg(format!("oci:{}:{name}", layout.display()))
            .arg(format!("dir:{}", dir.display())));
        std::fs::remove_dir_all(&dir).unwrap();
    }
    let copy = work.join("gc-copy");
    let _ = std::fs::remove_dir_all(&copy);
    run(Command::new("cp").arg("-a").arg(layout).arg(&copy));
    run(Command::new("umoci").args(["gc", "--layout"]).arg(&copy));
    let rel = |l: &Path| -> Vec<_> {
        blobs(l)
            .into_iter()
            .map(|b| b.file_name().unwrap().to_owned())
            .collect()
    };
    assert_eq!(rel(layout), rel(&copy), "umoci gc found unreferenced blobs");
    std::fs::remove_dir_all(&copy).unwrap();
    let left: Vec<_> = staged_in(layout)
        .into_iter()
        .chain(staged_in(layout.parent().unwrap()))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn an_image_is_added_beside_the_layouts_other_images_and_replaces_only_its_name() {
    let w = scratch();
    let (small, layout) = skopeo_layout(w.path(), "other");
    let others_blobs = blobs(&layout);

    // A new name is added; the image already there keeps every blob.
    run(ocislim()
        .args(["squash", "--policy", "none"])
        .arg(&small)
        .arg("-o")
        .arg(format!("oci:{}:slim", layout.display())));
    assert_eq!(names(&layout), ["other", "slim"]);
    assert!(others_blobs.iter().all(|b| b.exists()));
    assert_whole_and_tidy(&layout, w.path());
    let first = blobs(&layout);

    // The same name again, another policy: that entry is replaced, and the blobs only
    // it used are gone.
    run(ocislim()
        .args(["squash", "--policy", "aggressive"])
        .arg(&small)
        .arg("-o")
        .arg(format!("oci:{}:slim", layout.display())));
    assert_eq!(names(&layout), ["other", "slim"]);
    assert_ne!(blobs(&layout), first);
    assert!(others_blobs.iter().all(|b| b.exists()));
    assert_whole_and_tidy(&layout, w.path());

    // Entries that share blobs: the bottom layer kept, twice under one name. Replacing
    // the first removes what only it used, never the layer `other` still uses.
    for policy in ["none", "aggressive"] {
        run(ocislim()
            .arg("squash")
            .arg(format!("oci:{}:other", layout.display()))
            .args(["--keep-layers", "1", "--policy", policy, "-o"])
            .arg(format!("oci:{}:based", layout.display())));
    }
    assert_eq!(names(&layout), ["based", "other", "slim"]);
    assert!(others_blobs.iter().all(|b| b.exists()));
    assert_whole_and_tidy(&layout, w.path());

    // Read from the layout and written back under the source's own name, with a
    // `--tag` as well (a second entry, named by the tag part, as for any layout output).
    run(ocislim()
        .arg("squash")
        .arg(format!("oci:{}:other", layout.display()))
        .args(["--tag", "app:2", "-o"])
        .arg(format!("oci:{}:other", layout.display())));
    assert_eq!(names(&layout), ["2", "based", "other", "slim"]);
    assert_whole_and_tidy(&layout, w.path());
    let config = skopeo_config(&format!("oci:{}:other", layout.display()));
    assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 1);
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(layout.join("index.json"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o644, "index.json keeps its mode");
}

/// A layout whose index cannot be read is refused before the image is read: one line
/// naming the file, exit 2, nothing changed. `-o` transports that contradict
/// `--format`, or a ref name outside image-spec's grammar, are refused the same way.
#[test]
fn a_layout_with_a_broken_index_and_bad_destinations_are_refused() {
    let w = scratch();
    let (small, layout) = skopeo_layout(w.path(), "other");
    std::fs::write(layout.join("index.json"), "{\"manifests\": ").unwrap();
    let before = entries(w.path());
    let blobs_before = blobs(&layout);
    let cases = [
        (format!("oci:{}:x", layout.display()), vec![], "index.json"),
        (
            format!("oci:{}:x", w.path().join("new").display()),
            vec!["--format", "oci-archive"],
            "writes oci but --format is oci-archive",
        ),
        (
            format!("oci:{}:bad name", w.path().join("new").display()),
            vec![],
            "a ref name is",
        ),
        (
            format!("docker-archive:{}:Bad:1", w.path().join("d.tar").display()),
            vec![],
            "d.tar:Bad:1: a name is lowercase",
        ),
    ];
    for (dest, extra, needle) in cases {
        let (code, err) = run_fail(
            ocislim()
                .arg("squash")
                .arg(&small)
                .args(extra)
                .arg("-o")
                .arg(&dest),
        );
        assert_eq!(code, 2, "{dest}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains(needle), "{dest}: {err}");
        assert_eq!(entries(w.path()), before);
        assert_eq!(blobs(&layout), blobs_before);
    }
}

/// `-o docker-archive:FILE:NAME:TAG` names the image as `--tag` does, and
/// `-o oci-archive:FILE:REF` names the archive's entry, as skopeo writes them.
#[test]
fn archive_destinations_take_skopeos_names() {
    let w = scratch();
    let small = fixtures::fixtures_dir().join("small.tar");
    let docker = w.path().join("d.tar");
    run(ocislim()
        .arg("squash")
        .arg(&small)
        .arg("-o")
        .arg(format!("docker-archive:{}:app:7", docker.display())));
    let out = run(Command::new("skopeo")
        .args(["inspect", "--raw"])
        .arg(format!("docker-archive:{}:app:7", docker.display())));
    assert!(!out.stdout.is_empty());
    let oci = w.path().join("o.tar");
    run(ocislim()
        .arg("squash")
        .arg(&small)
        .arg("-o")
        .arg(format!("oci-archive:{}:v1", oci.display())));
    let config = skopeo_config(&format!("oci-archive:{}:v1", oci.display()));
    assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 1);
}

/// Unmounts on drop, so a failed assertion leaves no mount behind.
struct Mount(std::path::PathBuf);
impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// `docker run -v out:/out ocislim squash ... -o /out`: the destination folder is a mount
/// point, which cannot be renamed away. The image is staged inside it and added, for an
/// empty folder and for a layout already there. A tmpfs stands in for the volume (the
/// test command runs as root).
#[test]
fn a_layout_can_be_written_into_a_mount_point() {
    let w = scratch();
    let small = fixtures::fixtures_dir().join("small.tar");
    let out = w.path().join("out");
    std::fs::create_dir(&out).unwrap();
    run(Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64m", "tmpfs"])
        .arg(&out));
    let _mounted = Mount(out.clone());
    for (policy, name) in [("default", "a"), ("none", "b")] {
        run(ocislim()
            .args(["squash", "--policy", policy])
            .arg(&small)
            .arg("-o")
            .arg(format!("oci:{}:{name}", out.display())));
    }
    assert_eq!(names(&out), ["a", "b"]);
    assert_whole_and_tidy(&out, w.path());
}

/// `squash oci:imgs:app -o imgs`, the layout skopeo wrote: with no name given, the
/// output keeps the entry's ref name as it is, so the squashed image replaces `app`
/// (not a new entry `latest`, as if `app` were the Docker name `app:latest`). A docker
/// archive still takes it as a name.
#[test]
fn a_ref_name_without_a_docker_name_is_kept_as_it_is() {
    let w = scratch();
    let (_, layout) = skopeo_layout(w.path(), "app");
    run(ocislim()
        .arg("squash")
        .arg(format!("oci:{}:app", layout.display()))
        .arg("-o")
        .arg(&layout));
    assert_eq!(names(&layout), ["app"]);
    let config = skopeo_config(&format!("oci:{}:app", layout.display()));
    assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 1);
    assert_whole_and_tidy(&layout, w.path());
    let archive = w.path().join("app.tar");
    run(ocislim()
        .arg("squash")
        .arg(format!("oci:{}:app", layout.display()))
        .args(["--format", "docker-archive", "-o"])
        .arg(&archive));
    // A docker archive squashed without --tag goes by the input's name with -slim.
    run(Command::new("skopeo")
        .args(["inspect", "--raw"])
        .arg(format!(
            "docker-archive:{}:app:latest-slim",
            archive.display()
        )));
}

/// A CI matrix squashing into one shared folder at once, a layout skopeo made or an
/// empty folder: every run's entry is there afterwards (runs take turns adding), and the
/// layout is whole and tidy.
#[test]
fn runs_adding_to_one_layout_at_once_keep_every_entry() {
    let w = scratch();
    let (small, made) = skopeo_layout(w.path(), "base");
    let empty = w.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    for (layout, first) in [(&made, Some("base")), (&empty, None)] {
        for round in 0..3 {
            let children: Vec<_> = (0..6)
                .map(|i| {
                    ocislim()
                        .args(["squash", "--policy", ["none", "default"][i % 2]])
                        .arg(&small)
                        .arg("-o")
                        .arg(format!("oci:{}:r{round}-{i}", layout.display()))
                        .stdin(std::process::Stdio::null())
                        .stderr(std::process::Stdio::piped())
                        .spawn()
                        .unwrap()
                })
                .collect();
            for c in children {
                let out = c.wait_with_output().unwrap();
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        let mut want: Vec<String> = first.into_iter().map(String::from).collect();
        want.extend((0..3).flat_map(|r| (0..6).map(move |i| format!("r{r}-{i}"))));
        want.sort();
        assert_eq!(names(layout), want);
        assert_whole_and_tidy(layout, w.path());
    }
}

/// Whether `/proc/locks` shows process `pid` waiting for a lock (a `->` line).
fn waiting_for_a_lock(pid: u32) -> bool {
    let locks = std::fs::read_to_string("/proc/locks").unwrap();
    locks.lines().any(|l| {
        let mut f = l.split_whitespace().skip(1);
        f.next() == Some("->") && f.nth(3) == Some(pid.to_string().as_str())
    })
}

/// The race made certain: while another holder (this test) has the folder's lock, a run
/// adding to it is seen by the kernel waiting for that lock (`/proc/locks`) and has not
/// touched `index.json`; once the lock is released it finishes and its entry is there.
#[test]
fn a_run_adding_to_a_locked_layout_waits_for_the_lock() {
    let w = scratch();
    let (small, layout) = skopeo_layout(w.path(), "base");
    let index = std::fs::read(layout.join("index.json")).unwrap();
    let held = std::fs::File::open(&layout).unwrap();
    held.lock().unwrap();
    let mut child = ocislim()
        .args(["squash", "--policy", "none"])
        .arg(&small)
        .arg("-o")
        .arg(format!("oci:{}:waited", layout.display()))
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Bounded only so that a broken lock fails instead of hanging: the run must be seen
    // waiting long before, or have exited (which fails below).
    let mut waiting = false;
    for _ in 0..600 {
        if waiting_for_a_lock(child.id()) {
            waiting = true;
            break;
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        waiting,
        "the run never waited for the lock (exited: {:?})",
        child.try_wait().unwrap()
    );
    assert!(child.try_wait().unwrap().is_none());
    assert_eq!(
        std::fs::read(layout.join("index.json")).unwrap(),
        index,
        "index.json changed while the lock was held"
    );
    held.unlock().unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(names(&layout), ["base", "waited"]);
    assert_whole_and_tidy(&layout, w.path());
}

/// A destination whose folder is missing is named in a one-line error, and nothing is
/// created.
#[test]
fn a_missing_output_folder_is_reported_and_nothing_is_created() {
    let w = scratch();
    let small = fixtures::fixtures_dir().join("small.tar");
    for dest in [
        format!("oci:{}/missing/layout:1", w.path().display()),
        format!("{}/missing/out.tar", w.path().display()),
    ] {
        let (code, err) = run_fail(ocislim().args(["squash"]).arg(&small).arg("-o").arg(&dest));
        assert_eq!(code, 2, "{err}");
        let want = format!(
            "output folder {}/missing does not exist",
            w.path().display()
        );
        assert!(err.contains(&want), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert_eq!(entries(w.path()), Vec::<PathBuf>::new());
    }
}
