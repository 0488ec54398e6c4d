//! The round-trip matrix: every source shape x every sink x gzip/zstd/none. The root
//! filesystem unpacked by umoci and listed by bsdtar mtree and getfattr, and the
//! config as skopeo reads it, must equal the original's.

use crate::fixtures;
use crate::tools::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[derive(Clone, Copy, Debug)]
enum Shape {
    OciDir,
    OciArchive,
    DockerClassic,
    Docker25,
    Stdin,
}

/// Makes the source in `shape` from fixture `name`; returns the argument for ocislim
/// and, for stdin, the file to feed it.
fn make_source(shape: Shape, name: &str, work: &Path) -> (String, Option<PathBuf>) {
    let layout = fixtures::layout(name, work);
    let tag = fixtures::spec(name).tag;
    let classic = || {
        let out = work.join("classic.tar");
        run(Command::new("skopeo")
            .args(["copy", "--quiet"])
            .arg(format!(
                "oci:{}:{}",
                layout.display(),
                tag.rsplit_once(':').unwrap().1
            ))
            .arg(format!("docker-archive:{}:{tag}", out.display())));
        out
    };
    match shape {
        Shape::OciDir => (layout.display().to_string(), None),
        Shape::OciArchive => {
            let out = work.join("src-oci.tar");
            run(Command::new("tar")
                .arg("-C")
                .arg(&layout)
                .arg("-cf")
                .arg(&out)
                .arg("."));
            (out.display().to_string(), None)
        }
        Shape::DockerClassic => (classic().display().to_string(), None),
        Shape::Docker25 => {
            let out = work.join("src-docker25.tar");
            docker25_archive(&layout, &tag, &out);
            (out.display().to_string(), None)
        }
        Shape::Stdin => ("-".into(), Some(classic())),
    }
}

/// Writes the image `tag` (`NAME:REF`) of `layout` as Docker 25+ `docker save` lays it
/// out, by `docker25.py` (from moby's public description, not the fixture builder), and
/// checks that skopeo reads it both ways a real one is read: as a `docker-archive`
/// (through `manifest.json`) and as an `oci-archive` (through `index.json`), each to the
/// original's filesystem as umoci unpacks it.
pub fn docker25_archive(layout: &Path, tag: &str, out: &Path) {
    let (_, reference) = tag.rsplit_once(':').unwrap();
    run(Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/docker25.py"))
        .arg(layout)
        .arg(reference)
        .arg(tag)
        .arg(out));
    let work = out.with_extension("check");
    std::fs::create_dir(&work).unwrap();
    let want = umoci_listing(layout, reference, &work);
    for (i, transport) in [
        format!("docker-archive:{}", out.display()),
        format!("oci-archive:{}:{reference}", out.display()),
    ]
    .iter()
    .enumerate()
    {
        let norm = work.join(format!("read-{i}"));
        skopeo_to_oci(transport, &norm);
        let got = umoci_listing(&norm, "t", &work);
        assert!(got == want, "{transport}: {}", diff(&want, &got));
    }
    std::fs::remove_dir_all(&work).unwrap();
}

const SINKS: [&str; 4] = ["oci", "oci-archive", "docker-archive", "stdout"];
const CODECS: [&str; 3] = ["gzip", "zstd", "none"];

fn round_trip(shape: Shape, name: &str) {
    let work = scratch();
    let w = work.path();
    let original = fixtures::layout(name, &w.join("orig"));
    let tag = fixtures::spec(name).tag;
    let want = umoci_listing(&original, tag.rsplit_once(':').unwrap().1, w);
    let want_config = skopeo_config(&format!("oci:{}:1", original.display()));
    assert!(
        want.contains("type=file"),
        "the oracle listed nothing:\n{want}"
    );
    if std::env::var_os("OCISLIM_SHOW").is_some() {
        eprintln!("{want}");
    }
    let (src, stdin) = make_source(shape, name, w);
    for sink in SINKS {
        for codec in CODECS {
            let case = format!("{shape:?} -> {sink} ({codec})");
            let out = w.join(format!("out-{sink}-{codec}"));
            let mut cmd = ocislim();
            cmd.args(["convert", &src, "--compression", codec, "--tag", "check:1"]);
            if sink == "stdout" {
                cmd.args(["-o", "-"])
                    .stdout(Stdio::from(std::fs::File::create(&out).unwrap()));
            } else {
                cmd.args(["-o"]).arg(&out).args(["--format", sink]);
            }
            if let Some(f) = &stdin {
                cmd.stdin(Stdio::from(std::fs::File::open(f).unwrap()));
            }
            let status = cmd.status().unwrap();
            assert!(status.success(), "{case}: ocislim failed");
            let skopeo_ref = match sink {
                "oci" => format!("oci:{}:1", out.display()),
                "oci-archive" => format!("oci-archive:{}:1", out.display()),
                _ => format!("docker-archive:{}", out.display()),
            };
            let norm = w.join(format!("norm-{sink}-{codec}"));
            skopeo_to_oci(&skopeo_ref, &norm);
            let got = umoci_listing(&norm, "t", w);
            assert!(
                got == want,
                "{case}: root filesystems differ\n--- original\n{want}\n--- output\n{got}"
            );
            assert_eq!(
                skopeo_config(&skopeo_ref),
                want_config,
                "{case}: configs differ"
            );
        }
    }
}

#[test]
fn oci_layout_round_trips_through_every_sink_and_codec() {
    round_trip(Shape::OciDir, "hard-cases");
}

#[test]
fn oci_archive_round_trips_through_every_sink_and_codec() {
    round_trip(Shape::OciArchive, "hard-cases");
}

#[test]
fn classic_docker_archive_round_trips_through_every_sink_and_codec() {
    round_trip(Shape::DockerClassic, "hard-cases");
}

#[test]
fn docker_25_archive_round_trips_through_every_sink_and_codec() {
    round_trip(Shape::Docker25, "hard-cases");
}

#[test]
fn stdin_round_trips_through_every_sink_and_codec() {
    round_trip(Shape::Stdin, "hard-cases");
}

/// Outputs get the modes `cp` or `tar` would give them under the caller's umask (0644
/// files, 0755 folders under 022), not the 0600/0700 of a private temporary file.
#[test]
fn outputs_follow_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let work = scratch();
    let src = fixtures::fixtures_dir().join("small.tar");
    for (umask, file_mode, dir_mode) in [("022", 0o644, 0o755), ("027", 0o640, 0o750)] {
        let archive = work.path().join(format!("out-{umask}.tar"));
        let layout = work.path().join(format!("layout-{umask}"));
        for (dest, format) in [(&archive, "docker-archive"), (&layout, "oci")] {
            run(Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "umask {umask} && exec \"$0\" -q squash \"$1\" -o \"$2\" --format {format}"
                ))
                .arg(OCISLIM)
                .arg(&src)
                .arg(dest));
        }
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&archive), file_mode, "{}", archive.display());
        assert_eq!(mode(&layout), dir_mode, "{}", layout.display());
        assert_eq!(mode(&layout.join("blobs/sha256")), dir_mode);
        assert_eq!(mode(&layout.join("index.json")), file_mode);
        for blob in std::fs::read_dir(layout.join("blobs/sha256")).unwrap() {
            assert_eq!(mode(&blob.unwrap().path()), file_mode);
        }
    }
}

/// `-o NAME.tar` from a layout folder writes an archive (an OCI archive, which skopeo
/// reads as one), not a folder named `NAME.tar`; any other name keeps the layout.
#[test]
fn a_tar_destination_from_a_layout_is_an_archive() {
    let work = scratch();
    let layout = work.path().join("layout");
    run(ocislim()
        .args(["convert"])
        .arg(fixtures::fixtures_dir().join("small.tar"))
        .args(["--format", "oci", "-o"])
        .arg(&layout));
    let archive = work.path().join("slim.tar");
    let folder = work.path().join("slim");
    for dest in [&archive, &folder] {
        run(ocislim()
            .arg("squash")
            .arg(format!("oci:{}", layout.display()))
            .arg("-o")
            .arg(dest));
    }
    assert!(archive.is_file(), "{} is not a file", archive.display());
    skopeo_config(&format!("oci-archive:{}", archive.display()));
    assert!(folder.join("oci-layout").is_file());
}
