//! Hostile images and destinations: layers written byte by byte (rawtar), layouts with
//! lying digests, outputs onto devices. Each test names the class of attack it closes.
//! Nothing outside the destination may change: every test that could touch the host
//! keeps a victim file beside the work folder and checks it afterwards, and refused runs
//! must leave their output folder empty.

use crate::builder::Spec;
use crate::rawtar::{self, Block, Tar};
use crate::tools::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// An OCI layout holding one image whose layers are `tars` (gzip-compressed).
fn image_of(tars: Vec<Vec<u8>>, dir: &Path) -> PathBuf {
    let spec = Spec::parse(&format!("tag hostile:1\n{}", "layer\n".repeat(tars.len())));
    spec.write_layout_of(dir, tars, false);
    dir.to_path_buf()
}

/// Squashes `tars` and expects a refusal: exit 1, one line naming every needle, and
/// nothing written.
fn assert_squash_refused(tars: Vec<Vec<u8>>, needles: &[&str]) -> String {
    let w = scratch();
    let img = image_of(tars, &w.path().join("img"));
    let out = w.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let before = tree_state(w.path());
    let (code, err) = run_fail(
        ocislim()
            .args(["squash", "--policy", "none"])
            .arg(&img)
            .arg("-o")
            .arg(out.join("slim.tar")),
    );
    assert_eq!(code, 1, "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
    for n in needles {
        assert!(err.contains(n), "{err:?} does not mention {n:?}");
    }
    assert!(entries(&out).is_empty(), "something was left behind");
    // inspect reads layers through the same walker and refuses them too.
    let (code, _) = run_fail(ocislim().arg("inspect").arg(&img));
    assert_eq!(code, 1);
    assert_eq!(before, tree_state(w.path()), "the work folder changed");
    err
}

/// Every path below `root` with its type, mode, and a file's size and mtime: a refused
/// run must leave the whole work folder (source, destination and all beside them) as it
/// was.
fn tree_state(root: &Path) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            // A folder's own times change when ocislim stages its temporary files in it
            // and removes them: those are allowed; what the folder holds is compared.
            let (size, time) = if m.is_dir() {
                (0, String::new())
            } else {
                (m.len(), format!("{}.{}", m.mtime(), m.mtime_nsec()))
            };
            out.push(format!(
                "{} {:?} {size} {:o} {time}",
                p.display(),
                m.file_type(),
                m.mode(),
            ));
            if m.is_dir() {
                todo.push(p);
            }
        }
    }
    out.sort();
    out
}

/// A header followed by a block that is itself a tar header: readers that skip the
/// first header's `size` never see the second.
fn hidden_behind(first: Block) -> Vec<u8> {
    let hidden = Block::new(b"../../escaped", b'0', 0).bytes();
    let mut t = Tar::default();
    t.raw(&first, &hidden);
    t.file(b"after", b"x");
    t.finish()
}

// Class 3: parser differentials.

#[test]
fn header_only_entries_with_a_size_are_refused_naming_layer_and_entry() {
    for (kind, what) in [
        (b'5', "directory"),
        (b'2', "symlink"),
        (b'1', "hard link"),
        (b'6', "FIFO"),
        (b'3', "character device"),
    ] {
        let mut h = Block::new(b"innocent", kind, 512);
        if kind == b'1' {
            h.link(b"after");
        }
        let tar = hidden_behind(h);
        assert_squash_refused(vec![tar], &["layer 1", "innocent", what, "size of 512"]);
    }
}

#[test]
fn the_tar_crate_and_docker_disagree_on_a_sized_directory_so_it_must_be_refused() {
    // Proof that the refusal above closes a real hole: Docker applies the entry hidden
    // in a directory's "data", while the tar crate (what ocislim read layers with)
    // skips it.
    let hidden = Block::new(b"smuggled", b'0', 0).bytes();
    let mut t = Tar::default();
    t.raw(&Block::new(b"d", b'5', 512), &hidden);
    t.file(b"visible", b"v");
    let tar = t.finish();
    let mut names = Vec::new();
    for e in tar::Archive::new(&tar[..]).entries().unwrap() {
        names.push(String::from_utf8(e.unwrap().path_bytes().into_owned()).unwrap());
    }
    assert_eq!(
        names,
        ["d", "visible"],
        "the tar crate skips the hidden header"
    );

    let w = scratch();
    let spec = Spec::parse("tag ocislim-test/sized-dir:1\nlayer\n");
    let dir = w.path().join("img");
    spec.write_layout_of(&dir, vec![tar], true);
    let archive = w.path().join("img.tar");
    crate::fixtures::pack(&dir, &archive);
    run(docker().arg("load").arg("-i").arg(&archive));
    let id = run(docker().args(["create", "ocislim-test/sized-dir:1", "/x"]));
    let id = String::from_utf8(id.stdout).unwrap().trim().to_string();
    let export = run(docker().args(["export", &id]));
    run(docker().args(["rm", &id]));
    run(docker().args(["rmi", "ocislim-test/sized-dir:1"]));
    let exported: Vec<String> = tar::Archive::new(&export.stdout[..])
        .entries()
        .unwrap()
        .map(|e| String::from_utf8_lossy(&e.unwrap().path_bytes()).into_owned())
        .collect();
    assert!(
        exported.iter().any(|n| n == "smuggled"),
        "Docker applies the hidden entry: {exported:?}"
    );
    // umoci (Go's archive/tar too) unpacks it as Docker does.
    let root = umoci_unpack(&dir, "1", w.path());
    assert!(
        root.join("smuggled").exists(),
        "umoci applies the hidden entry"
    );

    let (code, err) = run_fail(
        ocislim()
            .args(["squash", "--policy", "none"])
            .arg(&archive)
            .arg("-o")
            .arg(w.path().join("out.tar")),
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("d: a directory header with a size of 512"),
        "{err}"
    );
}

#[test]
fn extension_headers_without_ustar_magic_are_refused() {
    for kind in [b'L', b'K', b'x', b'g'] {
        let mut h = Block::new(b"././@LongLink", kind, 8);
        h.magic(rawtar::V7);
        let mut t = Tar::default();
        t.raw(&h, b"../../x\0");
        t.file(b"a", b"x");
        assert_squash_refused(vec![t.finish()], &["layer 1", "without the ustar magic"]);
    }
}

#[test]
fn ambiguous_names_and_extension_sequences_are_refused() {
    let long = |kind: u8, v: &[u8]| {
        let mut h = Block::new(b"././@LongLink", kind, v.len() as u64);
        h.magic(rawtar::GNU);
        let mut t = Tar::default();
        t.raw(&h, v);
        t
    };
    let cases: Vec<(Vec<u8>, &str)> = vec![
        // Go cuts a GNU long name at its first NUL; the tar crate keeps the rest.
        (
            long(b'L', b"a\0../../x\0").file(b"a", b"").finish(),
            "NUL inside a GNU long name",
        ),
        // ... and drops only one trailing NUL (found by fuzzing).
        (
            long(b'L', b"name\0\0").file(b"a", b"").finish(),
            "padded with NULs",
        ),
        // Two long names for one entry: readers pick different ones.
        (
            {
                let mut t = long(b'L', b"one\0");
                t.raw(&Block::new(b"././@LongLink", b'L', 4), b"two\0");
                t.file(b"a", b"").finish()
            },
            "two GNU long names",
        ),
        // A GNU long name and a PAX path: precedence differs between readers.
        (
            {
                let mut t = Tar::default();
                t.pax(b'x', &rawtar::record("path", b"pax-name"));
                t.raw(&Block::new(b"././@LongLink", b'L', 9), b"gnu-name\0");
                t.file(b"a", b"").finish()
            },
            "both a GNU long name and a PAX path",
        ),
        // An old-style file whose name ends in '/': Go reads a directory.
        (
            {
                let mut t = Tar::default();
                t.raw(&Block::new(b"d/", 0, 0), &[]);
                t.finish()
            },
            "ends in '/'",
        ),
        // A zero block, then more entries: Go refuses, others stop reading.
        (
            {
                let mut t = Tar::default();
                t.file(b"a", b"");
                t.0.extend_from_slice(&[0u8; 512]);
                t.file(b"../../after-the-end", b"");
                t.finish()
            },
            "after an end-of-archive block",
        ),
        // "ustar\0" with another version: Go reads a prefix, the tar crate does not.
        (
            {
                let mut h = Block::new(b"name", b'0', 0);
                h.magic((b"ustar\0", b"  ")).field(345, b"../..");
                let mut t = Tar::default();
                t.raw(&h, &[]);
                t.finish()
            },
            "ambiguous tar magic",
        ),
        // Entry types runtimes refuse.
        (
            {
                let mut t = Tar::default();
                t.raw(&Block::new(b"vol", b'V', 0), &[]);
                t.finish()
            },
            "unsupported entry type",
        ),
    ];
    for (tar, needle) in cases {
        assert_squash_refused(vec![tar], &["layer 1", needle]);
    }
}

// Class 9: lenient PAX parsing.

#[test]
fn malformed_pax_records_are_refused_as_go_refuses_them() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (rawtar::record("size", b"-1"), "PAX size"),
        (rawtar::record("size", b"12abc"), "PAX size"),
        (rawtar::record("uid", b"x"), "PAX uid"),
        (rawtar::record("mtime", b"yesterday"), "PAX mtime"),
        (b"99 path=a\n".to_vec(), "malformed PAX record"),
        (b"9 path=a\nxx".to_vec(), "malformed PAX record"),
        (b"11 path=ab\0".to_vec(), "malformed PAX record"),
        (rawtar::record("path", b"ok\0../../x"), "NUL inside a name"),
        (b"6 =ab\n".to_vec(), "empty key"),
    ];
    for (records, needle) in cases {
        let mut t = Tar::default();
        t.pax(b'x', &records);
        t.file(b"a", b"data");
        assert_squash_refused(vec![t.finish()], &["layer 1", needle]);
    }
    // The same records in a global header are refused too: it is parsed, then ignored.
    let mut t = Tar::default();
    t.pax(b'g', &rawtar::record("size", b"-1"));
    t.file(b"a", b"data");
    assert_squash_refused(vec![t.finish()], &["layer 1", "PAX size"]);
}

#[test]
fn pax_records_a_line_splitting_reader_reads_as_another_name_are_refused() {
    // A `comment` whose value holds a newline and a whole record: Go (umoci, Docker)
    // reads records by length and ignores the comment; the tar crate splits on newlines
    // and names the entry after the forged `path`.
    let forged = b"x\n17 path=smuggled".as_slice();
    let mut t = Tar::default();
    t.pax(b'x', &rawtar::record("comment", forged));
    t.file(b"innocent", b"data");
    let tar = t.finish();
    let names: Vec<Vec<u8>> = tar::Archive::new(&tar[..])
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path_bytes().into_owned())
        .collect();
    assert_eq!(
        names,
        [b"smuggled".to_vec()],
        "the tar crate reads the forged path"
    );
    let w = scratch();
    let dir = w.path().join("img");
    Spec::parse("tag t:1\nlayer\n").write_layout_of(&dir, vec![tar.clone()], true);
    let root = umoci_unpack(&dir, "1", w.path());
    assert!(
        root.join("innocent").exists(),
        "umoci reads the header's name"
    );
    assert!(!root.join("smuggled").exists());
    assert_squash_refused(
        vec![tar],
        &["layer 1", "splitting them on newlines", "path"],
    );

    // A newline inside the name itself, a value ending in a newline (the empty line
    // hides every record after it from the tar crate), and a key given twice.
    let cases = [
        rawtar::record("path", b"a\nb"),
        [
            rawtar::record("comment", b"v\n"),
            rawtar::record("path", b"long"),
        ]
        .concat(),
        [rawtar::record("path", b"a"), rawtar::record("path", b"b")].concat(),
        [rawtar::record("size", b"4"), rawtar::record("size", b"0")].concat(),
    ];
    for records in cases {
        let mut t = Tar::default();
        t.pax(b'x', &records);
        t.file(b"a", b"data");
        assert_squash_refused(vec![t.finish()], &["layer 1", "splitting them on newlines"]);
    }
}

// Class 4: PAX global headers.

/// Loads the docker archive `archive` (holding `tag`), and lists what `docker export`
/// of a container made from it holds: name, type, mode, size, link target.
fn docker_export_listing(archive: &Path, tag: &str) -> Vec<String> {
    run(docker().arg("load").arg("-i").arg(archive));
    let id = run(docker().args(["create", tag, "/x"]));
    let id = String::from_utf8(id.stdout).unwrap().trim().to_string();
    let export = run(docker().args(["export", &id]));
    run(docker().args(["rm", &id]));
    run(docker().args(["rmi", tag]));
    let mut v: Vec<String> = tar::Archive::new(&export.stdout[..])
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let h = e.header();
            format!(
                "{} {:?} {:o} {} {:?}",
                String::from_utf8_lossy(&e.path_bytes()),
                h.entry_type(),
                h.mode().unwrap(),
                h.size().unwrap(),
                e.link_name_bytes().map(|l| l.into_owned())
            )
        })
        .collect();
    v.sort();
    v
}

/// Squashes the image made of `tars` and returns what Docker exports from the input
/// and from the output, for comparison.
fn docker_before_and_after(tars: Vec<Vec<u8>>, name: &str) -> (Vec<String>, Vec<String>) {
    let w = scratch();
    let tag = format!("ocislim-test/{name}:1");
    let spec = Spec::parse(&format!("tag {tag}\n{}", "layer\n".repeat(tars.len())));
    let dir = w.path().join("img");
    spec.write_layout_of(&dir, tars, true);
    let archive = w.path().join("img.tar");
    crate::fixtures::pack(&dir, &archive);
    let out = w.path().join("out.tar");
    let out_tag = format!("ocislim-test/{name}:slim");
    run(ocislim()
        .args(["squash", "--policy", "none", "--tag", &out_tag])
        .arg(&archive)
        .arg("-o")
        .arg(&out));
    (
        docker_export_listing(&archive, &tag),
        docker_export_listing(&out, &out_tag),
    )
}

#[test]
fn pax_global_headers_without_names_are_ignored_as_docker_ignores_them() {
    let mut base = Tar::default();
    base.dir(b"etc")
        .file(b"etc/passwd", b"root:x:0:0::/root:/bin/sh\n");
    let mut top = Tar::default();
    // What `git archive` writes, and records that would resize or re-time the next
    // entry if they were applied to it.
    top.pax(b'g', &rawtar::record("comment", b"0123456789abcdef"));
    top.file(b"one", b"1");
    // Docker refuses two entries of one name in a layer, global headers included.
    let records = [rawtar::record("size", b"0"), rawtar::record("mtime", b"1")].concat();
    top.raw(
        &Block::new(b"pax_global_header", b'g', records.len() as u64),
        &records,
    );
    top.file(b"two", b"22");
    let (input, output) = docker_before_and_after(vec![base.finish(), top.finish()], "global");
    for name in ["etc/passwd ", "one ", "two "] {
        assert!(
            output.iter().any(|l| l.starts_with(name)),
            "{name} missing: {output:#?}"
        );
    }
    assert_eq!(input, output);
}

#[test]
fn pax_global_headers_with_names_are_refused_because_docker_applies_them_as_whiteouts() {
    let layers = |global: &[u8]| {
        let mut base = Tar::default();
        base.dir(b"etc").file(b"etc/passwd", b"root\n");
        let mut top = Tar::default();
        top.pax(b'g', global);
        top.file(b"one", b"1");
        vec![base.finish(), top.finish()]
    };
    // Docker deletes /etc when a global header's path is `.wh.etc`: it is not ignored.
    let w = scratch();
    let spec = Spec::parse("tag ocislim-test/global-wh:1\nlayer\nlayer\n");
    let dir = w.path().join("img");
    spec.write_layout_of(&dir, layers(&rawtar::record("path", b".wh.etc")), true);
    let archive = w.path().join("img.tar");
    crate::fixtures::pack(&dir, &archive);
    let exported = docker_export_listing(&archive, "ocislim-test/global-wh:1");
    assert!(
        !exported.iter().any(|l| l.starts_with("etc/passwd ")),
        "Docker applied the global header as a whiteout: {exported:#?}"
    );
    for (records, shown) in [
        (rawtar::record("path", b".wh.etc"), ".wh.etc"),
        (rawtar::record("path", b".wh..wh..opq"), ".wh..wh..opq"),
        // This one made ocislim panic.
        (rawtar::record("path", b"../../../climb"), "../../../climb"),
        (rawtar::record("linkpath", b"x"), "@PaxHeader"),
    ] {
        assert_squash_refused(layers(&records), &["layer 2", "PAX global header", shown]);
    }
    // A global header whose own name is a whiteout, with no records.
    let mut t = Tar::default();
    t.raw(&Block::new(b".wh.etc", b'g', 0), &[]);
    assert_squash_refused(vec![t.finish()], &["layer 1", "PAX global header"]);
}

// Class 5: entries naming the root.

#[test]
fn entries_naming_the_root_are_refused() {
    let named = |name: &[u8], kind: u8, link: &[u8]| {
        let mut h = Block::new(name, kind, 0);
        h.link(link);
        let mut t = Tar::default();
        t.file(b"a", b"data");
        t.raw(&h, &[]);
        t.finish()
    };
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (named(b".", b'0', b""), "names the root"),
        (named(b"/", b'0', b""), "ends in '/'"),
        (named(b"./", b'2', b"/etc"), "ends in '/'"),
        (named(b".", b'2', b"/etc"), "names the root"),
        (named(b"a/..", b'0', b""), "names the root"),
        (named(b"", b'6', b""), "names the root"),
        (named(b".", b'1', b"a"), "names the root"),
        (named(b".wh.", b'0', b""), "names the root or no file"),
        (named(b"a/.wh.", b'0', b""), "no file"),
        (named(b".wh...", b'0', b""), "no file"),
        (named(b".wh..", b'0', b""), "no file"),
        (named(b"b", b'1', b"./"), "a hard link to the root"),
    ];
    for (tar, needle) in cases {
        assert_squash_refused(vec![tar], &["layer 1", needle]);
    }
}

#[test]
fn docker_fails_to_load_a_file_named_dot_and_ocislim_refuses_it() {
    // What Docker 20.10 does with the same bytes: it tries to replace the root, and
    // `docker load` fails. ocislim refuses it, as umoci does.
    let w = scratch();
    let mut t = Tar::default();
    t.file(b"a", b"data").file(b".", b"");
    let spec = Spec::parse("tag ocislim-test/dot:1\nlayer\n");
    let dir = w.path().join("img");
    spec.write_layout_of(&dir, vec![t.finish()], true);
    let archive = w.path().join("img.tar");
    crate::fixtures::pack(&dir, &archive);
    // Docker tries to remove the root to put the file there, and fails
    // ("unlinkat .//: device or resource busy").
    let (_, loaded) = run_fail(docker().arg("load").arg("-i").arg(&archive));
    assert!(loaded.contains("unlinkat"), "{loaded}");
    let (code, err) = run_fail(
        ocislim()
            .args(["squash", "--policy", "none"])
            .arg(&archive)
            .arg("-o")
            .arg(w.path().join("out.tar")),
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("names the root"), "{err}");
}

#[test]
fn umoci_refuses_a_file_named_dot_as_ocislim_does() {
    let mut t = Tar::default();
    t.file(b"a", b"data").file(b".", b"");
    let w = scratch();
    let img = image_of(vec![t.finish()], &w.path().join("img"));
    let out = Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:1", img.display()))
        .arg(w.path().join("bundle"))
        .output()
        .expect("umoci is installed");
    assert!(!out.status.success(), "umoci unpacked a file over the root");
}

// Class 1: digests in a destination layout become file names.

/// A layout at `dir` whose only entry, named `t`, claims digest `digest`.
fn layout_with_entry(dir: &Path, digest: &str, media_type: &str) {
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": media_type, "digest": digest, "size": 3,
                       "annotations": {"org.opencontainers.image.ref.name": "t"}}],
    });
    std::fs::write(dir.join("index.json"), index.to_string()).unwrap();
}

#[test]
fn a_lying_digest_in_the_destination_layout_cannot_delete_outside_it() {
    let small = crate::fixtures::fixtures_dir().join("small.tar");
    for digest in [
        "sha256:../../victim",
        "sha256:/abs/victim",
        "sha256:../victim",
    ] {
        let w = scratch();
        let victim = w.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let layout = w.path().join("sub/layout");
        // Not a manifest type: the old code removed it without reading it.
        layout_with_entry(&layout, digest, "application/octet-stream");
        let before = tree_state(w.path());
        let (code, err) = run_fail(
            ocislim()
                .args(["squash"])
                .arg(&small)
                .arg("-o")
                .arg(format!("oci:{}:t", layout.display())),
        );
        assert_eq!(code, 2, "{err}");
        assert!(
            err.contains("index.json") && err.contains("bad digest"),
            "{err}"
        );
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert_eq!(before, tree_state(w.path()), "the work folder changed");
    }
}

#[test]
fn a_lying_digest_inside_a_replaced_manifest_deletes_nothing() {
    let small = crate::fixtures::fixtures_dir().join("small.tar");
    let w = scratch();
    let victim = w.path().join("victim");
    std::fs::write(&victim, "precious").unwrap();
    let layout = w.path().join("layout");
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:../../victim", "size": 1},
        "layers": [],
    })
    .to_string();
    let digest = format!(
        "sha256:{}",
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&manifest))
    );
    layout_with_entry(
        &layout,
        &digest,
        "application/vnd.oci.image.manifest.v1+json",
    );
    std::fs::write(layout.join("blobs/sha256").join(&digest[7..]), &manifest).unwrap();
    run(ocislim()
        .args(["squash"])
        .arg(&small)
        .arg("-o")
        .arg(format!("oci:{}:t", layout.display())));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
}

#[test]
fn a_blobs_folder_that_is_a_symlink_is_refused() {
    let small = crate::fixtures::fixtures_dir().join("small.tar");
    let w = scratch();
    let elsewhere = w.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let layout = w.path().join("layout");
    layout_with_entry(
        &layout,
        &format!("sha256:{}", "a".repeat(64)),
        "application/octet-stream",
    );
    std::fs::remove_dir(layout.join("blobs/sha256")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, layout.join("blobs/sha256")).unwrap();
    let (code, err) = run_fail(
        ocislim()
            .arg("squash")
            .arg(&small)
            .arg("-o")
            .arg(format!("oci:{}:t", layout.display())),
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is not a folder"), "{err}");
    assert!(
        entries(&elsewhere).is_empty(),
        "blobs were written through the link"
    );
}

// Class 2: -o onto devices and FIFOs.

#[test]
fn output_onto_a_character_device_writes_into_it_and_never_replaces_it() {
    use std::os::unix::fs::FileTypeExt;
    let small = crate::fixtures::fixtures_dir().join("small.tar");
    let w = scratch();
    // A null device of our own (we run as root, as ocislim does in pipelines).
    let null = w.path().join("null");
    run(Command::new("mknod").arg(&null).args(["c", "1", "3"]));
    run(ocislim().arg("squash").arg(&small).arg("-o").arg(&null));
    assert!(
        std::fs::symlink_metadata(&null)
            .unwrap()
            .file_type()
            .is_char_device()
    );
    // Through a symlink too, and with --report onto it.
    let link = w.path().join("link");
    std::os::unix::fs::symlink(&null, &link).unwrap();
    let null2 = w.path().join("null2");
    run(Command::new("mknod").arg(&null2).args(["c", "1", "3"]));
    run(ocislim()
        .arg("squash")
        .arg(&small)
        .arg("-o")
        .arg(&link)
        .arg("--report")
        .arg(&null2));
    assert!(
        std::fs::symlink_metadata(&null)
            .unwrap()
            .file_type()
            .is_char_device()
    );
    assert!(
        std::fs::symlink_metadata(&null2)
            .unwrap()
            .file_type()
            .is_char_device()
    );
    assert_eq!(
        entries(w.path()),
        vec![link, null, null2],
        "nothing else was written"
    );
    // An OCI layout folder cannot go into a device.
    let (code, err) = run_fail(
        ocislim()
            .arg("squash")
            .arg(&small)
            .arg("-o")
            .arg(format!("oci:{}", w.path().join("null").display())),
    );
    assert_eq!(code, 2, "{err}");
}

#[test]
fn output_onto_a_fifo_streams_a_whole_archive_into_it() {
    use std::os::unix::fs::FileTypeExt;
    let small = crate::fixtures::fixtures_dir().join("small.tar");
    let w = scratch();
    let fifo = w.path().join("pipe");
    run(Command::new("mkfifo").arg(&fifo));
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(fifo).unwrap())
    };
    run(ocislim().arg("squash").arg(&small).arg("-o").arg(&fifo));
    let bytes = reader.join().unwrap();
    assert!(
        std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo()
    );
    let archive = w.path().join("got.tar");
    std::fs::write(&archive, bytes).unwrap();
    // skopeo reads what came through the pipe as a whole docker archive.
    let dir = w.path().join("read");
    run(Command::new("skopeo")
        .args(["copy", "--quiet"])
        .arg(format!("docker-archive:{}", archive.display()))
        .arg(format!("dir:{}", dir.display())));
}

#[test]
fn output_onto_a_socket_is_refused() {
    let small = crate::fixtures::fixtures_dir().join("small.tar");
    let w = scratch();
    let sock = w.path().join("sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let (code, err) = run_fail(ocislim().arg("squash").arg(&small).arg("-o").arg(&sock));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is a device, FIFO or socket"), "{err}");
    assert!(std::fs::symlink_metadata(&sock).is_ok());
}

// Class 8: --report.

#[test]
fn a_report_path_that_is_the_output_or_the_input_or_unwritable_is_refused_before_reading() {
    let w = scratch();
    let src = w.path().join("src.tar");
    std::fs::copy(crate::fixtures::fixtures_dir().join("small.tar"), &src).unwrap();
    let before = std::fs::read(&src).unwrap();
    let out = w.path().join("out.tar");
    std::fs::write(&out, "earlier result").unwrap();
    for (report, needle) in [
        (out.clone(), "refusing to overwrite"),
        (src.clone(), "refusing to overwrite"),
        (w.path().join("./out.tar"), "refusing to overwrite"),
        (
            w.path().join("no/such/report.json"),
            "folder does not exist",
        ),
        (w.path().to_path_buf(), "is a folder"),
    ] {
        let (code, err) = run_fail(
            ocislim()
                .arg("squash")
                .arg(&src)
                .arg("-o")
                .arg(&out)
                .arg("--report")
                .arg(&report),
        );
        assert_eq!(code, 2, "{err}");
        assert!(err.contains(needle), "{err}");
    }
    assert_eq!(std::fs::read(&src).unwrap(), before);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "earlier result");
    assert_eq!(entries(w.path()), vec![out.clone(), src.clone()]);
    // A good one is written with the image.
    let report = w.path().join("report.json");
    run(ocislim()
        .arg("squash")
        .arg(&src)
        .arg("-o")
        .arg(&out)
        .arg("--report")
        .arg(&report));
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(json["dry_run"], false);
    assert_eq!(entries(w.path()), vec![out, report, src]);
}

// Class 9: late and lenient checks.

/// Rewrites the manifest of the layout's only image with `edit`, keeping the index's
/// digest and size in step.
fn edit_manifest(layout: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let index_path = layout.join("index.json");
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
    let old = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let blobs = layout.join("blobs/sha256");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(blobs.join(&old[7..])).unwrap()).unwrap();
    edit(&mut manifest);
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
    std::fs::write(blobs.join(&digest), &bytes).unwrap();
    index["manifests"][0]["digest"] = format!("sha256:{digest}").into();
    index["manifests"][0]["size"] = bytes.len().into();
    std::fs::write(&index_path, index.to_string()).unwrap();
}

#[test]
fn malformed_descriptor_sizes_are_refused() {
    for size in [
        serde_json::json!(-1),
        serde_json::json!(1.5),
        serde_json::json!("12"),
    ] {
        let w = scratch();
        let mut t = Tar::default();
        t.file(b"a", b"data");
        let img = image_of(vec![t.finish()], &w.path().join("img"));
        edit_manifest(&img, |m| m["layers"][0]["size"] = size.clone());
        let (code, err) = run_fail(
            ocislim()
                .args(["squash", "--policy", "none"])
                .arg(&img)
                .arg("-o")
                .arg(w.path().join("out.tar")),
        );
        assert_eq!(code, 1, "{err}");
        assert!(
            err.contains("layer 1") && err.contains("descriptor size"),
            "{err}"
        );
    }
}

#[test]
fn input_names_docker_would_refuse_are_not_copied_into_the_output() {
    let w = scratch();
    let mut t = Tar::default();
    t.file(b"a", b"data");
    let spec = Spec::parse("tag good/name:1\nlayer\n");
    let dir = w.path().join("img");
    spec.write_layout_of(&dir, vec![t.finish()], true);
    let bad = [
        "evil\u{1b}[2J:1",
        "../../x:1",
        &format!("{}:1", "a".repeat(300)),
    ];
    let manifest = serde_json::json!([{
        "Config": serde_json::from_slice::<serde_json::Value>(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap()[0]["Config"],
        "RepoTags": ["good/name:1", bad[0], bad[1], bad[2]],
        "Layers": serde_json::from_slice::<serde_json::Value>(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap()[0]["Layers"],
    }]);
    std::fs::write(dir.join("manifest.json"), manifest.to_string()).unwrap();
    std::fs::remove_file(dir.join("index.json")).unwrap();
    std::fs::remove_file(dir.join("oci-layout")).unwrap();
    let archive = w.path().join("img.tar");
    crate::fixtures::pack(&dir, &archive);
    let out = w.path().join("out.tar");
    let done = run(Command::new(OCISLIM)
        .args(["squash", "--policy", "none"])
        .arg(&archive)
        .arg("-o")
        .arg(&out));
    let report =
        String::from_utf8_lossy(&done.stdout).into_owned() + &String::from_utf8_lossy(&done.stderr);
    assert_eq!(report.matches("is not copied").count(), 3, "{report}");
    assert!(
        !report.contains('\u{1b}'),
        "an escape reached the terminal: {report}"
    );
    let mut written = String::new();
    for e in tar::Archive::new(std::fs::File::open(&out).unwrap())
        .entries()
        .unwrap()
    {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        if name == "manifest.json" || name == "repositories" || name == "index.json" {
            std::io::Read::read_to_string(&mut e, &mut written).unwrap();
        }
    }
    assert!(written.contains("good/name"), "{written}");
    assert!(
        !written.contains("evil") && !written.contains("..") && !written.contains("aaaa"),
        "{written}"
    );
}

#[test]
fn a_policy_over_the_rule_limit_fails_policy_check() {
    let w = scratch();
    let f = w.path().join("many.toml");
    let rules: String = (0..129)
        .map(|i| format!("[[rule]]\nid = \"r{i}\"\nreason = \"x\"\ndelete = [\"x{i}\"]\n"))
        .collect();
    std::fs::write(&f, rules).unwrap();
    let (code, err) = run_fail(ocislim().args(["policy", "check"]).arg(&f));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("129 rules") && err.contains("many.toml"),
        "{err}"
    );
}

#[test]
fn a_policy_that_deletes_every_file_is_refused_naming_the_rule() {
    let w = scratch();
    let f = w.path().join("all.toml");
    std::fs::write(
        &f,
        "[[rule]]\nid = \"everything\"\nreason = \"x\"\ndelete = [\"**\"]\n",
    )
    .unwrap();
    let out = w.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let (code, err) = run_fail(
        ocislim()
            .arg("squash")
            .arg(crate::fixtures::fixtures_dir().join("small.tar"))
            .arg("--policy")
            .arg(&f)
            .arg("-o")
            .arg(out.join("x.tar")),
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("rule everything deletes every file"), "{err}");
    assert!(entries(&out).is_empty());
}

// Class 10: valid images refused.

#[test]
fn zstd_long_window_frames_are_read() {
    // `zstd --long=31` reading a pipe declares a 2 GiB window, which zstd's decoder
    // refuses by default (`zstd -d` says "Frame requires too much memory").
    let w = scratch();
    let mut t = Tar::default();
    t.file(b"data", &crate::builder::filler(300_000, 7));
    let tar = t.finish();
    let mut child = Command::new("zstd")
        .args(["-q", "--long=31", "-c"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("zstd is installed");
    let mut stdin = child.stdin.take().unwrap();
    let input = tar.clone();
    let feeder = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &input).unwrap());
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    assert!(out.status.success());
    let frame = w.path().join("layer.zst");
    std::fs::write(&frame, &out.stdout).unwrap();
    let listed = run(Command::new("zstd").arg("-lv").arg(&frame));
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains("2.00 GiB"),
        "not a 2 GiB window: {}",
        String::from_utf8_lossy(&listed.stdout)
    );
    let (code, _) = run_fail(Command::new("zstd").args(["-d", "-q", "-c"]).arg(&frame));
    assert_ne!(code, 0);
    // Put the frame in an image as its only layer.
    let dir = w.path().join("img");
    let spec = Spec::parse("tag zl:1\nlayer\n");
    spec.write_layout_of(&dir, vec![tar.clone()], false);
    let mut m = serde_json::Value::Null;
    edit_manifest(&dir, |man| {
        let blob = &out.stdout;
        let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(blob));
        std::fs::write(dir.join("blobs/sha256").join(&digest), blob).unwrap();
        man["layers"][0]["digest"] = format!("sha256:{digest}").into();
        man["layers"][0]["size"] = blob.len().into();
        man["layers"][0]["mediaType"] = "application/vnd.oci.image.layer.v1.tar+zstd".into();
        m = man.clone();
    });
    assert!(
        m["layers"][0]["mediaType"]
            .as_str()
            .unwrap()
            .ends_with("zstd")
    );
    let slim = w.path().join("slim");
    run(ocislim()
        .args(["squash", "--policy", "none", "--compression", "gzip"])
        .arg(&dir)
        .arg("-o")
        .arg(format!("oci:{}:t", slim.display())));
    let root = umoci_unpack(&slim, "t", w.path());
    assert_eq!(
        std::fs::read(root.join("data")).unwrap(),
        crate::builder::filler(300_000, 7)
    );
}

// Class 6: symlinked parents.

/// Layers where later entries reach their parents through symlinks: relative,
/// absolute, climbing above the root, a whiteout, a hard-link target, a directory.
fn through_symlinks() -> Vec<Vec<u8>> {
    let mut base = Tar::default();
    base.dir(b"d")
        .file(b"d/secret", b"s")
        .file(b"d/keep", b"k")
        .dir(b"e")
        .symlink(b"a", b"d")
        .symlink(b"abs", b"/d")
        .symlink(b"up", b"../../e");
    let mut top = Tar::default();
    top.file(b"a/g", b"g")
        .file(b"a/.wh.secret", b"")
        .file(b"abs/h", b"h")
        .file(b"up/i", b"i")
        .hardlink(b"x", b"a/keep")
        .dir(b"a/sub")
        .file(b"a/sub/j", b"j");
    vec![base.finish(), top.finish()]
}

#[test]
fn entries_under_symlinked_parents_land_where_umoci_puts_them() {
    for keep in ["0", "1"] {
        let w = scratch();
        let img = image_of(through_symlinks(), &w.path().join("img"));
        let out = w.path().join("out");
        run(ocislim()
            .args(["squash", "--policy", "none", "--keep-layers", keep])
            .arg(&img)
            .arg("-o")
            .arg(format!("oci:{}:t", out.display())));
        let want = umoci_listing(&img, "1", w.path());
        let got = umoci_listing(&out, "t", w.path());
        for must in ["./d/g ", "./d/h ", "./e/i ", "./d/sub/j "] {
            assert!(want.contains(must), "umoci put {must} elsewhere:\n{want}");
        }
        assert!(!want.contains("./d/secret "), "{want}");
        assert_eq!(want, got, "--keep-layers {keep}:\n{}", diff(&want, &got));
    }
}

#[test]
fn entries_under_symlinked_parents_land_where_docker_puts_them() {
    let (input, output) = docker_before_and_after(through_symlinks(), "symlinked-parents");
    assert!(input.iter().any(|l| l.starts_with("d/g ")), "{input:#?}");
    assert_eq!(input, output);
}

#[test]
fn a_policy_deletes_the_file_a_symlinked_path_wrote() {
    // `a/g` lands at `d/g`: a rule for `d/**` must see it there.
    let w = scratch();
    let img = image_of(through_symlinks(), &w.path().join("img"));
    let policy = w.path().join("p.toml");
    std::fs::write(
        &policy,
        "[[rule]]\nid = \"d\"\nreason = \"x\"\ndelete = [\"d/g\"]\n",
    )
    .unwrap();
    let out = w.path().join("out");
    run(ocislim()
        .arg("squash")
        .arg(&img)
        .arg("--policy")
        .arg(&policy)
        .arg("-o")
        .arg(format!("oci:{}:t", out.display())));
    let got = umoci_listing(&out, "t", w.path());
    assert!(!got.contains("./d/g ") && got.contains("./d/h "), "{got}");
}

#[test]
fn an_image_archive_with_a_header_readers_disagree_on_is_refused() {
    // The outer archive is read by the same strict walker as layers: a sized directory
    // ahead of the image hides a member from the tar crate but not from `docker load`.
    let w = scratch();
    let mut bytes = Tar::default();
    bytes.raw(
        &Block::new(b"d", b'5', 512),
        &Block::new(b"manifest.json", b'0', 0).bytes(),
    );
    let mut archive = bytes.0;
    archive.extend(std::fs::read(crate::fixtures::fixtures_dir().join("small.tar")).unwrap());
    let src = w.path().join("hiding.tar");
    std::fs::write(&src, archive).unwrap();
    let (code, err) = run_fail(
        ocislim()
            .args(["squash"])
            .arg(&src)
            .arg("-o")
            .arg(w.path().join("out.tar")),
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("hiding.tar") && err.contains("directory header with a size"),
        "{err}"
    );
}

/// A lockfile is the image's to write: one whose dev package paths climb out of the
/// project (`..`) leaves that project alone, with a warning, and deletes nothing
/// outside it; a dev package a kept one needs at run time stays.
#[test]
fn a_hostile_npm_lockfile_deletes_nothing_outside_its_project() {
    let w = scratch();
    let lock = concat!(
        "{\"lockfileVersion\":3,\"packages\":{\"\":{\"name\":\"x\"},",
        "\"node_modules/a\":{\"version\":\"1.0.0\",\"dev\":true},",
        "\"node_modules/../../../etc\":{\"dev\":true}}}"
    );
    let lock_ok = concat!(
        "{\"lockfileVersion\":3,\"packages\":{\"\":{\"name\":\"y\"},",
        "\"node_modules/tool\":{\"version\":\"1.0.0\",\"dev\":true},",
        "\"node_modules/lib\":{\"version\":\"2.0.0\",\"dev\":true}}}"
    );
    let spec = format!(
        concat!(
            "tag npm:1\nlayer\nfile etc/passwd \"root:x:0:0::/root:/bin/sh\\n\"\n",
            "file srv/x/package-lock.json \"{}\"\n",
            "file srv/x/node_modules/a/package.json \"{{\\\"version\\\":\\\"1.0.0\\\"}}\"\n",
            "file srv/y/package.json \"{{\\\"dependencies\\\":{{\\\"lib\\\":\\\"2\\\"}}}}\"\n",
            "file srv/y/package-lock.json \"{}\"\n",
            "file srv/y/node_modules/tool/package.json \"{{\\\"version\\\":\\\"1.0.0\\\"}}\"\n",
            "file srv/y/node_modules/lib/package.json \"{{\\\"version\\\":\\\"2.0.0\\\"}}\"\n",
        ),
        lock.replace('"', "\\\""),
        lock_ok.replace('"', "\\\""),
    );
    let dir = w.path().join("img");
    Spec::parse(&spec).write_layout(&dir, false);
    let report = w.path().join("r.json");
    run(ocislim()
        .args(["squash", "--dry-run", "--policy", "node"])
        .arg(&dir)
        .arg("--report")
        .arg(&report));
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let deleted: Vec<&str> = r["policy"]["deleted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["path"].as_str().unwrap())
        .collect();
    // The builder writes no folder entries: the pruned package is its one file.
    assert_eq!(
        deleted,
        ["srv/y/node_modules/tool/package.json"],
        "{:#}",
        r["npm"]
    );
    let warnings = r["warnings"].to_string();
    assert!(warnings.contains("unsafe package path"), "{warnings}");
    assert_eq!(
        r["npm"]["projects"][0]["kept"],
        serde_json::json!(["node_modules/lib: needed at run time by the project"])
    );
}
