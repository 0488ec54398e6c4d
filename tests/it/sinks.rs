//! Every sink and codec of `squash`, judged as the `oci` output is: the squashed image,
//! read by other people's tools (bsdtar unpacks an `oci-archive`, skopeo reads a
//! `docker-archive` from stdout and decodes zstd, which umoci 0.4.7 cannot), unpacked by
//! umoci and listed by bsdtar mtree, getfattr and inode identity, equals the original.
//! Also the output codec rule, `--dry-run`, and the report on stderr with `-o -`.

use crate::builder::Spec;
use crate::tools::*;
use std::path::Path;
use std::process::{Command, Stdio};

/// The hard-case fixture as an OCI layout tagged `fixture:1` (ref `1`) in `work/orig`,
/// and umoci's listing of it.
fn original(work: &Path, plain: bool) -> (std::path::PathBuf, String) {
    let text =
        std::fs::read_to_string(crate::fixtures::fixtures_dir().join("hard-cases.spec")).unwrap();
    let spec = Spec::parse(&text);
    let dir = work.join(if plain { "orig-plain" } else { "orig" });
    // The builder writes plain tar layers for a docker archive's layout; without its
    // manifest.json that is an OCI layout of plain layers.
    spec.write_layout(&dir, plain);
    if plain {
        std::fs::remove_file(dir.join("manifest.json")).unwrap();
    }
    let tag = spec.tag.rsplit_once(':').unwrap().1.to_string();
    let want = umoci_listing(&dir, &tag, work);
    (dir, want)
}

/// Copies `source` (a skopeo reference) to an OCI layout with gzip layers, by skopeo,
/// and lists it with umoci.
fn listing_via_skopeo(source: &str, work: &Path, name: &str) -> String {
    let dir = work.join(name);
    run(Command::new("skopeo")
        .args(["copy", "--quiet", "--dest-compress-format", "gzip"])
        .arg(source)
        .arg(format!("oci:{}:1", dir.display())));
    umoci_listing(&dir, "1", work)
}

fn assert_same(what: &str, want: &str, got: &str) {
    assert!(
        got == want,
        "{what}: root filesystems differ (- original, + squashed)\n{}",
        diff(want, got)
    );
}

#[test]
fn oci_archive_output_unpacks_to_the_original_filesystem() {
    let w = scratch();
    let (orig, want) = original(w.path(), false);
    let out = w.path().join("out.tar");
    run(ocislim()
        .args(["squash", "--policy", "none"])
        .arg(&orig)
        .arg("-o")
        .arg(format!("oci-archive:{}:1", out.display())));
    // bsdtar unpacks the archive into a layout umoci reads.
    let dir = w.path().join("unpacked");
    std::fs::create_dir(&dir).unwrap();
    run(Command::new("bsdtar")
        .arg("-xf")
        .arg(&out)
        .arg("-C")
        .arg(&dir));
    assert_same("oci-archive", &want, &umoci_listing(&dir, "1", w.path()));
    // skopeo reads it too.
    let via = listing_via_skopeo(&format!("oci-archive:{}", out.display()), w.path(), "via");
    assert_same("oci-archive via skopeo", &want, &via);
}

#[test]
fn stdout_output_is_a_docker_archive_of_the_original_filesystem_with_the_report_on_stderr() {
    let w = scratch();
    let (orig, want) = original(w.path(), false);
    let out = w.path().join("stdout.tar");
    let file = std::fs::File::create(&out).unwrap();
    let res = Command::new(OCISLIM)
        .args(["squash", "--policy", "default"])
        .arg(&orig)
        .args(["-o", "-"])
        .stdout(file)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let stderr = String::from_utf8_lossy(&res.stderr);
    // The report (its size lines) went to stderr, and stdout holds only the archive:
    // skopeo reads it as a docker-archive.
    assert!(
        stderr.contains("before") && stderr.contains("after"),
        "{stderr}"
    );
    let via = listing_via_skopeo(
        &format!("docker-archive:{}", out.display()),
        w.path(),
        "via",
    );
    // The hard cases hold nothing the default policy deletes.
    assert_same("-o -", &want, &via);
    // `--json` goes to stderr as well, and parses.
    let res = Command::new(OCISLIM)
        .args(["squash", "--policy", "none", "--json"])
        .arg(&orig)
        .args(["-o", "-"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(res.status.success());
    let report: serde_json::Value = serde_json::from_slice(&res.stderr).unwrap();
    assert!(report.is_object(), "{report}");
}

#[test]
fn zstd_output_decoded_by_skopeo_unpacks_to_the_original_filesystem() {
    let w = scratch();
    let (orig, want) = original(w.path(), false);
    let out = w.path().join("zstd");
    run(ocislim()
        .args([
            "squash",
            "--policy",
            "none",
            "--compression",
            "zstd",
            "--keep-layers",
            "1",
        ])
        .arg(&orig)
        .arg("-o")
        .arg(format!("oci:{}:1", out.display())));
    let manifest = skopeo_raw(&format!("oci:{}:1", out.display()));
    let types: Vec<&str> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["mediaType"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "application/vnd.oci.image.layer.v1.tar+gzip",
            "application/vnd.oci.image.layer.v1.tar+zstd"
        ]
    );
    let via = listing_via_skopeo(&format!("oci:{}:1", out.display()), w.path(), "via");
    assert_same("zstd", &want, &via);
}

/// The manifest skopeo reads from `reference`.
fn skopeo_raw(reference: &str) -> serde_json::Value {
    let out = run(Command::new("skopeo").args(["inspect", "--raw", reference]));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// What the file command's magic says a blob is: `gzip`, `zstd` or `tar`.
fn magic(path: &Path) -> &'static str {
    let bytes = std::fs::read(path).unwrap();
    if bytes.starts_with(&[0x1f, 0x8b]) {
        "gzip"
    } else if bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        "zstd"
    } else if bytes.len() > 262 && &bytes[257..262] == b"ustar" {
        "tar"
    } else {
        "other"
    }
}

/// The squashed layer's codec follows the input's top layer, and plain tar becomes gzip:
/// the input layouts are re-encoded by skopeo, the output's media type is read by skopeo
/// and its bytes checked by their magic and by `gzip -t` / `zstd -t`.
#[test]
fn the_squashed_layer_codec_follows_the_input_top_layer_and_is_never_plain() {
    let w = scratch();
    let (gz, _) = original(w.path(), false);
    let (plain, _) = original(w.path(), true);
    let zst = w.path().join("zst");
    run(Command::new("skopeo")
        .args(["copy", "--quiet", "--dest-compress-format", "zstd"])
        .arg(format!("oci:{}:1", gz.display()))
        .arg(format!("oci:{}:1", zst.display())));
    for (input, media, codec, check) in [
        (&gz, "tar+gzip", "gzip", "gzip"),
        (&plain, "tar+gzip", "gzip", "gzip"),
        (&zst, "tar+zstd", "zstd", "zstd"),
    ] {
        let src = skopeo_raw(&format!("oci:{}:1", input.display()));
        let top = src["layers"].as_array().unwrap().last().unwrap()["mediaType"].clone();
        if input == &plain {
            assert_eq!(
                top, "application/vnd.oci.image.layer.v1.tar",
                "a plain input"
            );
        }
        let out = w.path().join(format!(
            "out-{}",
            input.file_name().unwrap().to_string_lossy()
        ));
        run(ocislim()
            .args(["squash", "--policy", "none"])
            .arg(input)
            .arg("-o")
            .arg(format!("oci:{}:1", out.display())));
        let m = skopeo_raw(&format!("oci:{}:1", out.display()));
        let layer = &m["layers"][0];
        let got = layer["mediaType"].as_str().unwrap();
        assert_eq!(
            got,
            format!("application/vnd.oci.image.layer.v1.{media}"),
            "input top layer {top}"
        );
        let blob = out
            .join("blobs/sha256")
            .join(&layer["digest"].as_str().unwrap()[7..]);
        assert_eq!(magic(&blob), codec, "input top layer {top}");
        run(Command::new(check).arg("-t").arg(&blob));
    }
}

#[test]
fn dry_run_writes_nothing() {
    let w = scratch();
    let (orig, _) = original(w.path(), false);
    let dest = w.path().join("dest");
    std::fs::create_dir(&dest).unwrap();
    for target in [
        dest.join("out.tar").display().to_string(),
        format!("oci:{}:1", dest.join("layout").display()),
        format!("oci:{}:1", dest.display()),
    ] {
        let res = run(Command::new(OCISLIM)
            .args(["squash", "--dry-run", "--json"])
            .arg(&orig)
            .arg("-o")
            .arg(&target));
        let report: serde_json::Value = serde_json::from_slice(&res.stdout).unwrap();
        assert!(report.is_object());
        assert_eq!(entries(&dest), Vec::<std::path::PathBuf>::new(), "{target}");
    }
    // Nothing beside the destination either: the work folder holds only what the test
    // made.
    let mut names: Vec<String> = entries(w.path())
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    names.retain(|n| !n.starts_with("bundle"));
    assert_eq!(names, ["dest", "orig"]);
}
