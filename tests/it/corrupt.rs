//! Bad input: each gives a one-line error naming what is wrong, exit status 1, and
//! leaves nothing new in the output folder (an existing destination is untouched). And
//! a destination that is not an earlier image, refused before anything is read.

use crate::builder::Spec;
use crate::fixtures;
use crate::tools::*;
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use std::path::Path;
use std::process::Command;

const PRECIOUS: &[u8] = b"an earlier result that must survive";

/// Runs `convert SRC` into a folder holding only an earlier result, and checks the
/// failure: status 1, one line on stderr containing every `needle`, folder unchanged.
fn assert_refused(src: &str, extra: &[&str], needles: &[&str]) {
    let out = scratch();
    let dest = out.path().join("out.tar");
    std::fs::write(&dest, PRECIOUS).unwrap();
    let (code, stderr) = run_fail(
        ocislim()
            .args(["convert", src, "-o"])
            .arg(&dest)
            .args(["--format", "docker-archive"])
            .args(extra),
    );
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "not one line: {stderr}"
    );
    assert!(stderr.starts_with("error: "), "{stderr}");
    for n in needles {
        assert!(stderr.contains(n), "{stderr:?} does not mention {n:?}");
    }
    assert_eq!(
        entries(out.path()),
        vec![dest.clone()],
        "something was left behind"
    );
    assert_eq!(
        std::fs::read(&dest).unwrap(),
        PRECIOUS,
        "the earlier result was touched"
    );
}

fn sha(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn blob_path(layout: &Path, digest: &str) -> std::path::PathBuf {
    layout.join("blobs/sha256").join(&digest[7..])
}

fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

/// The manifest of a one-image layout and its digest.
fn manifest(layout: &Path) -> (Value, String) {
    let d = read_json(&layout.join("index.json"))["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    (read_json(&blob_path(layout, &d)), d)
}

/// Rewrites the manifest (and optionally the config) and fixes the digests above them,
/// as a careless tool would: the image is consistent except for what `edit` breaks.
fn rewrite(
    layout: &Path,
    edit_config: impl FnOnce(&mut Value),
    edit_manifest: impl FnOnce(&mut Value),
) {
    let (mut m, _) = manifest(layout);
    let cd = m["config"]["digest"].as_str().unwrap().to_string();
    let mut config = read_json(&blob_path(layout, &cd));
    edit_config(&mut config);
    let cbytes = serde_json::to_vec(&config).unwrap();
    std::fs::write(blob_path(layout, &sha(&cbytes)), &cbytes).unwrap();
    m["config"]["digest"] = sha(&cbytes).into();
    m["config"]["size"] = cbytes.len().into();
    edit_manifest(&mut m);
    let mbytes = serde_json::to_vec(&m).unwrap();
    std::fs::write(blob_path(layout, &sha(&mbytes)), &mbytes).unwrap();
    let mut index = read_json(&layout.join("index.json"));
    index["manifests"][0]["digest"] = sha(&mbytes).into();
    index["manifests"][0]["size"] = mbytes.len().into();
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
}

fn layer_digest(layout: &Path, i: usize) -> String {
    manifest(layout).0["layers"][i]["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn truncated_archive_is_refused() {
    let w = scratch();
    let layout = fixtures::layout("hard-cases", w.path());
    let tar = w.path().join("cut.tar");
    run(Command::new("tar")
        .arg("-C")
        .arg(&layout)
        .arg("-cf")
        .arg(&tar)
        .arg("."));
    let len = std::fs::metadata(&tar).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&tar).unwrap();
    f.set_len(len / 2).unwrap();
    assert_refused(tar.to_str().unwrap(), &[], &["cut.tar"]);
}

#[test]
fn layer_digest_mismatch_names_blob_expected_and_found() {
    let w = scratch();
    let dir = w.path().join("img");
    fixtures::spec("hard-cases").write_layout(&dir, true); // plain layers: a flipped byte still parses
    let d = layer_digest(&dir, 0);
    let p = blob_path(&dir, &d);
    let mut bytes = std::fs::read(&p).unwrap();
    let at = bytes.windows(9).position(|w| w == b"127.0.0.1").unwrap();
    bytes[at] = b'8';
    std::fs::write(&p, bytes).unwrap();
    assert_refused(
        dir.to_str().unwrap(),
        &[],
        &["digest mismatch", &d, "expected", "found sha256:"],
    );
}

#[test]
fn config_digest_mismatch_is_refused() {
    let w = scratch();
    let dir = fixtures::layout("hard-cases", w.path());
    let cd = manifest(&dir).0["config"]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let p = blob_path(&dir, &cd);
    let text = std::fs::read_to_string(&p)
        .unwrap()
        .replace("amd64", "arm64");
    std::fs::write(&p, text).unwrap();
    assert_refused(
        dir.to_str().unwrap(),
        &[],
        &["digest mismatch", &cd, "config"],
    );
}

#[test]
fn layer_size_mismatch_is_refused() {
    let w = scratch();
    let dir = fixtures::layout("hard-cases", w.path());
    let d = layer_digest(&dir, 1);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(blob_path(&dir, &d))
        .unwrap();
    std::io::Write::write_all(&mut f, b"x").unwrap();
    assert_refused(
        dir.to_str().unwrap(),
        &[],
        &["size mismatch", &d, "expected"],
    );
}

#[test]
fn missing_blob_is_refused() {
    let w = scratch();
    let dir = fixtures::layout("hard-cases", w.path());
    let d = layer_digest(&dir, 1);
    std::fs::remove_file(blob_path(&dir, &d)).unwrap();
    assert_refused(dir.to_str().unwrap(), &[], &["missing blob", &d[7..]]);
}

#[test]
fn unknown_layer_media_type_is_refused() {
    let w = scratch();
    let dir = fixtures::layout("hard-cases", w.path());
    rewrite(
        &dir,
        |_| {},
        |m| m["layers"][1]["mediaType"] = "application/vnd.example.secret".into(),
    );
    assert_refused(
        dir.to_str().unwrap(),
        &[],
        &[
            "unsupported media type",
            "application/vnd.example.secret",
            "layer 2",
        ],
    );
}

#[test]
fn diff_id_mismatch_is_refused() {
    let w = scratch();
    let dir = fixtures::layout("hard-cases", w.path());
    let fake = format!("sha256:{}", "0".repeat(64));
    let f2 = fake.clone();
    rewrite(
        &dir,
        move |c| c["rootfs"]["diff_ids"][0] = f2.into(),
        |_| {},
    );
    assert_refused(
        dir.to_str().unwrap(),
        &[],
        &["layer 1", "diff_id mismatch", &fake],
    );
}

#[test]
fn root_climbing_entry_name_is_refused() {
    let w = scratch();
    let dir = w.path().join("evil");
    Spec::parse(
        "tag evil:1\nlayer\nfile ok \"x\"\nraw \"../../etc/cron.d/evil\" \"* * * * * root true\"\n",
    )
    .write_layout(&dir, false);
    assert_refused(
        dir.to_str().unwrap(),
        &[],
        &["unsafe path", "../../etc/cron.d/evil", "layer 1"],
    );
}

#[test]
fn missing_platform_is_refused_listing_what_is_there() {
    let w = scratch();
    let dir = fixtures::layout("hard-cases", w.path());
    let src = format!("docker-archive:{}", {
        let t = w.path().join("d.tar");
        run(Command::new("skopeo")
            .args(["copy", "--quiet"])
            .arg(format!("oci:{}:1", dir.display()))
            .arg(format!("docker-archive:{}:hard:1", t.display())));
        t.display().to_string()
    });
    assert_refused(
        &src,
        &["--platform", "linux/s390x"],
        &["no image for platform linux/s390x", "linux/amd64"],
    );
}

#[test]
fn unknown_format_is_refused() {
    let w = scratch();
    let f = w.path().join("notes.txt");
    std::fs::write(&f, "not an image").unwrap();
    assert_refused(f.to_str().unwrap(), &[], &["notes.txt"]);
}

#[test]
fn sparse_file_in_a_layer_is_refused_by_squash_not_corrupted() {
    let w = scratch();
    let root = w.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let f = std::fs::File::create(root.join("sparse")).unwrap();
    f.set_len(4 << 20).unwrap();
    std::io::Write::write_all(&mut &f, b"data at the start").unwrap();
    let tar = w.path().join("layer.tar");
    run(Command::new("tar")
        .args(["--sparse", "--format=gnu", "-C"])
        .arg(&root)
        .arg("-cf")
        .arg(&tar)
        .arg("sparse"));
    let spec = Spec::parse("tag sparse:1\nlayer\n");
    let dir = w.path().join("img");
    spec.write_layout_of(&dir, vec![std::fs::read(&tar).unwrap()], false);
    let out = scratch();
    let dest = out.path().join("out.tar");
    let (code, err) = run_fail(
        ocislim()
            .args(["squash", "--policy", "none"])
            .arg(&dir)
            .arg("-o")
            .arg(&dest),
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("is a sparse file; sparse entries are not supported")
            && err.contains("layer 1"),
        "{err}"
    );
    assert!(entries(out.path()).is_empty(), "something was left behind");
}

/// `-o` writes over an earlier image (an archive file is replaced; an empty folder or an
/// OCI layout takes the image, `layout.rs` tests how) but never a folder of the user's,
/// nor a file with a layout: refused before the image is read, exit 2, everything as it
/// was.
#[test]
fn output_replaces_an_earlier_image_but_never_a_users_folder() {
    let work = scratch();
    let src = fixtures::fixtures_dir().join("small.tar");
    let notes = work.path().join("notes");
    std::fs::create_dir(&notes).unwrap();
    std::fs::write(notes.join("keep.txt"), PRECIOUS).unwrap();
    let file = work.path().join("file");
    std::fs::write(&file, PRECIOUS).unwrap();
    let before = entries(work.path());
    for (dest, format, needle) in [
        (&notes, "oci", "is a folder but not an OCI layout"),
        (&file, "oci", "is a file, not an OCI layout"),
        (
            &notes,
            "docker-archive",
            "is a folder, and the output is an archive",
        ),
    ] {
        let (code, stderr) = run_fail(
            ocislim()
                .args(["squash"])
                .arg(&src)
                .args(["--format", format, "-o"])
                .arg(dest),
        );
        assert_eq!(code, 2, "{stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains(needle) && stderr.contains("refusing to replace it"),
            "{stderr}"
        );
        assert_eq!(entries(work.path()), before, "something changed");
        assert_eq!(std::fs::read(notes.join("keep.txt")).unwrap(), PRECIOUS);
        assert_eq!(std::fs::read(&file).unwrap(), PRECIOUS);
    }
    // An empty folder takes a layout; a second run adds to it (`layout.rs` tests how).
    let layout = work.path().join("layout");
    std::fs::create_dir(&layout).unwrap();
    for _ in 0..2 {
        run(ocislim()
            .args(["squash"])
            .arg(&src)
            .args(["--format", "oci", "-o"])
            .arg(&layout));
        assert!(layout.join("oci-layout").is_file());
    }
    // An archive file is overwritten, as `docker save -o` does.
    run(ocislim()
        .args(["squash"])
        .arg(&src)
        .args(["--format", "docker-archive", "-o"])
        .arg(&file));
    assert_ne!(std::fs::read(&file).unwrap(), PRECIOUS);
}

/// Names Docker would not load and levels the codec does not have are refused before
/// the image is read (a missing source is not even noticed): exit 2, one line naming the
/// option, nothing written. A level checked against the input's codec is refused too.
#[test]
fn bad_tags_and_levels_are_refused_before_reading() {
    let work = scratch();
    let dest = work.path().join("out.tar");
    let missing = work.path().join("missing.tar");
    for (args, needle) in [
        (
            &["--tag", "Bad:Name"][..],
            "--tag \"Bad:Name\": a name is lowercase",
        ),
        (&["--tag", "app:1:2"], "--tag \"app:1:2\""),
        (&["--tag", "app:-x"], "--tag \"app:-x\": a tag is"),
        (
            &["--compression", "gzip", "--level", "12"],
            "--level 12: gzip levels are 0-9",
        ),
        (
            &["--compression", "zstd", "--level", "23"],
            "--level 23: zstd levels are 1-22",
        ),
    ] {
        let (code, stderr) = run_fail(
            ocislim()
                .arg("squash")
                .arg(&missing)
                .args(["--format", "docker-archive", "-o"])
                .arg(&dest)
                .args(args),
        );
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains(needle),
            "{stderr:?} does not mention {needle:?}"
        );
    }
    let (code, stderr) = run_fail(
        ocislim()
            .arg("squash")
            .arg(fixtures::fixtures_dir().join("small.tar"))
            .args(["--level", "10", "-o"])
            .arg(&dest),
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("--level 10: gzip levels are 0-9"),
        "{stderr}"
    );
    let (code, stderr) = run_fail(ocislim().args(["-j", "0", "policy", "list"]));
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(entries(work.path()), Vec::<std::path::PathBuf>::new());
}
