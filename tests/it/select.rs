//! Choosing one image in a source: by reference, by platform, attestations dropped.

use crate::fixtures;
use crate::tools::*;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use std::path::Path;

fn put(layout: &Path, bytes: &[u8]) -> (String, usize) {
    let d = format!("sha256:{}", hex::encode(Sha256::digest(bytes)));
    std::fs::write(layout.join("blobs/sha256").join(&d[7..]), bytes).unwrap();
    (d, bytes.len())
}

/// One layout holding `small` (amd64), `busybox`-less `hard-cases` relabelled arm64,
/// in a nested multi-platform index with a BuildKit attestation manifest.
fn multi_platform(work: &Path) -> std::path::PathBuf {
    let a = fixtures::layout("small", work);
    let b = fixtures::layout("hard-cases", &work.join("b"));
    // Merge b's blobs into a.
    for e in std::fs::read_dir(b.join("blobs/sha256")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), a.join("blobs/sha256").join(e.file_name())).unwrap();
    }
    let desc = |l: &Path| read_index(l)["manifests"][0].clone();
    let mut da = desc(&a);
    let mut db = desc(&b);
    da.as_object_mut().unwrap().remove("annotations");
    db.as_object_mut().unwrap().remove("annotations");
    da["platform"] = json!({"os": "linux", "architecture": "amd64"});
    db["platform"] = json!({"os": "linux", "architecture": "arm64", "variant": "v8"});
    // An attestation: its "layer" is in-toto JSON, which must never be read as a tar.
    let (sd, ss) = put(&a, br#"{"_type":"https://in-toto.io/Statement/v0.1"}"#);
    let (cd, cs) = put(&a, b"{}");
    let att = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
        "layers": [{"mediaType": "application/vnd.in-toto+json", "digest": sd, "size": ss}]});
    let (ad, asz) = put(&a, &serde_json::to_vec(&att).unwrap());
    let datt = json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": ad, "size": asz,
        "platform": {"os": "unknown", "architecture": "unknown"},
        "annotations": {"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": da["digest"]}});
    let nested = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [da, db, datt]});
    let (nd, ns) = put(&a, &serde_json::to_vec(&nested).unwrap());
    let top = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
        {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": nd, "size": ns,
         "annotations": {"org.opencontainers.image.ref.name": "multi"}}]});
    std::fs::write(a.join("index.json"), serde_json::to_vec(&top).unwrap()).unwrap();
    a
}

fn read_index(l: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(l.join("index.json")).unwrap()).unwrap()
}

fn inspect_json(args: &[&str]) -> Value {
    let out = run(ocislim().args(["inspect", "--json"]).args(args));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn multi_platform_index_defaults_to_host_and_drops_attestations() {
    let w = scratch();
    let dir = multi_platform(w.path());
    let d = dir.to_str().unwrap();
    let host = inspect_json(&[d]);
    assert_eq!(host["platform"], "linux/amd64");
    assert_eq!(
        host["layers"].as_array().unwrap().len(),
        3,
        "small has three layers"
    );
    assert!(
        host["warnings"][0]
            .as_str()
            .unwrap()
            .contains("attestation"),
        "{host}"
    );
    let arm = inspect_json(&[d, "--platform", "linux/arm64"]);
    assert_eq!(
        arm["layers"].as_array().unwrap().len(),
        2,
        "hard-cases has two layers"
    );
    // Other tools read what we pick: convert it and let skopeo look.
    let out = w.path().join("arm.tar");
    run(ocislim()
        .args(["convert", d, "--platform", "linux/arm64/v8", "-o"])
        .arg(&out)
        .args(["--format", "oci-archive", "--tag", "arm:1"]));
    let cfg = skopeo_config(&format!("oci-archive:{}:1", out.display()));
    assert_eq!(cfg["config"]["User"], "1000:1000");
    let (code, err) = run_fail(ocislim().args(["inspect", d, "--platform", "linux/riscv64"]));
    assert_eq!(code, 1);
    assert!(err.contains("linux/amd64, linux/arm64/v8"), "{err}");
}

/// `squash --platform` takes the image skopeo takes for the same platform from the same
/// nested index (umoci lists both the same; skopeo reads the same platform in both
/// configs), drops the attestation with a warning and copies none of its blobs.
#[test]
fn squash_platform_picks_what_skopeo_picks_and_leaves_the_attestation() {
    let w = scratch();
    let dir = multi_platform(w.path());
    let attestation_layer = hex::encode(Sha256::digest(
        br#"{"_type":"https://in-toto.io/Statement/v0.1"}"#,
    ));
    let mut listings = Vec::new();
    for (platform, arch, variant) in [
        ("linux/arm64/v8", "arm64", "v8"),
        ("linux/amd64", "amd64", ""),
    ] {
        let picked = w.path().join(format!("skopeo-{arch}"));
        let mut skopeo = std::process::Command::new("skopeo");
        skopeo.args(["--override-os", "linux", "--override-arch", arch]);
        if !variant.is_empty() {
            skopeo.args(["--override-variant", variant]);
        }
        run(skopeo
            .args(["copy", "--quiet"])
            .arg(format!("oci:{}:multi", dir.display()))
            .arg(format!("oci:{}:1", picked.display())));
        let out = w.path().join(format!("squashed-{arch}"));
        let res = run(std::process::Command::new(OCISLIM)
            .args(["squash", "--policy", "none", "--platform", platform])
            .arg(format!("oci:{}:multi", dir.display()))
            .arg("-o")
            .arg(format!("oci:{}:1", out.display())));
        // The warning is part of the report (stdout here; stderr with `-o -`).
        let report = String::from_utf8_lossy(&res.stdout);
        assert!(
            report.contains("warning: dropped attestation manifest"),
            "{report}"
        );
        assert_eq!(
            umoci_listing(&out, "1", w.path()),
            umoci_listing(&picked, "1", w.path()),
            "{platform}"
        );
        let (got, want) = (
            skopeo_config(&format!("oci:{}:1", out.display())),
            skopeo_config(&format!("oci:{}:1", picked.display())),
        );
        for field in ["os", "architecture", "variant", "config"] {
            assert_eq!(got[field], want[field], "{platform}: {field}");
        }
        // (The fixture relabels an amd64 image as arm64 in the index only, so the
        // configs' own platform says nothing; the listings tell the images apart.)
        listings.push(umoci_listing(&out, "1", w.path()));
        let raw = run(std::process::Command::new("skopeo")
            .args(["inspect", "--raw"])
            .arg(format!("oci:{}:1", out.display())));
        let m: Value = serde_json::from_slice(&raw.stdout).unwrap();
        assert_eq!(m["mediaType"], "application/vnd.oci.image.manifest.v1+json");
        assert!(
            !out.join("blobs/sha256").join(&attestation_layer).exists(),
            "{platform}: the attestation's blob was copied"
        );
    }
    assert_ne!(
        listings[0], listings[1],
        "the two platforms hold different images"
    );
}

/// Two images in one `docker save` archive (skopeo wrote each; `manifest.json` lists
/// both, as `docker save a b` does).
fn two_image_archive(w: &Path) -> std::path::PathBuf {
    // Two images in one classic docker archive, written by skopeo.
    let a = fixtures::layout("small", w);
    let b = fixtures::layout("hard-cases", &w.join("b"));
    let tar = w.join("two.tar");
    run(std::process::Command::new("skopeo")
        .args(["copy", "--quiet"])
        .arg(format!("oci:{}:1", a.display()))
        .arg(format!("docker-archive:{}:small:1", tar.display())));
    // skopeo cannot append; docker save of two images is the real-world case, so build
    // manifest.json with both by hand from skopeo's single-image archives.
    let tar_b = w.join("b.tar");
    run(std::process::Command::new("skopeo")
        .args(["copy", "--quiet"])
        .arg(format!("oci:{}:1", b.display()))
        .arg(format!("docker-archive:{}:hard:1", tar_b.display())));
    let merged = w.join("merged");
    std::fs::create_dir(&merged).unwrap();
    for t in [&tar, &tar_b] {
        run(std::process::Command::new("tar")
            .arg("-C")
            .arg(&merged)
            .arg("-xf")
            .arg(t));
    }
    let ma: Value = serde_json::from_slice(
        &run(std::process::Command::new("tar")
            .arg("-xOf")
            .arg(&tar)
            .arg("manifest.json"))
        .stdout,
    )
    .unwrap();
    let mb: Value = serde_json::from_slice(
        &run(std::process::Command::new("tar")
            .arg("-xOf")
            .arg(&tar_b)
            .arg("manifest.json"))
        .stdout,
    )
    .unwrap();
    std::fs::write(
        merged.join("manifest.json"),
        serde_json::to_vec(&json!([ma[0], mb[0]])).unwrap(),
    )
    .unwrap();
    let both = w.join("both.tar");
    run(std::process::Command::new("tar")
        .arg("-C")
        .arg(&merged)
        .arg("-cf")
        .arg(&both)
        .arg("."));
    both
}

/// `@N` picks the entry skopeo's `docker-archive:FILE:@N` picks (both count from 0).
#[test]
fn at_n_picks_the_entry_skopeo_picks() {
    let w = scratch();
    let both = two_image_archive(w.path());
    for n in ["@0", "@1"] {
        let reference = format!("docker-archive:{}:{n}", both.display());
        let picked = w.path().join(format!("skopeo{n}"));
        skopeo_to_oci(&reference, &picked);
        let out = w.path().join(format!("squashed{n}"));
        run(ocislim()
            .args(["squash", "--policy", "none", &reference, "-o"])
            .arg(format!("oci:{}:1", out.display())));
        assert_eq!(
            umoci_listing(&out, "1", w.path()),
            umoci_listing(&picked, "t", w.path()),
            "{n}"
        );
    }
}

#[test]
fn several_images_need_a_reference_and_the_error_lists_them() {
    let w = scratch();
    let both = two_image_archive(w.path());
    let b = both.to_str().unwrap();
    let (code, err) = run_fail(ocislim().args(["inspect", b]));
    assert_eq!(code, 1);
    assert!(
        err.contains("several images") && err.contains("hard:1") && err.contains("small:1"),
        "{err}"
    );
    let picked = inspect_json(&[&format!("docker-archive:{b}:hard:1")]);
    assert!(
        picked["tags"][0].as_str().unwrap().ends_with("hard:1"),
        "{picked}"
    );
    let picked = inspect_json(&[&format!("docker-archive:{b}:docker.io/library/small:1")]);
    assert_eq!(picked["layers"].as_array().unwrap().len(), 3);
    let (_, err) = run_fail(ocislim().args(["inspect", &format!("docker-archive:{b}:nope:2")]));
    assert!(
        err.contains("no image named \"nope:2\"") && err.contains("hard:1"),
        "{err}"
    );
}

/// A layout that also holds the image's cosign signature (tagged `sha256-<hex>.sig`,
/// as cosign tags it) and an OCI artifact (`artifactType`): the image is picked without
/// a reference, the others are named as left behind, and the output holds the image
/// alone (skopeo reads it back as the only image).
#[test]
fn signatures_and_artifacts_beside_the_image_are_left_behind() {
    let w = scratch();
    let l = fixtures::layout("small", w.path());
    let mut index = read_index(&l);
    let image = index["manifests"][0].clone();
    let hex = image["digest"].as_str().unwrap()[7..].to_string();
    let (cd, cs) = put(&l, b"{}");
    let (sd, ss) = put(
        &l,
        br#"{"critical":{"image":{"docker-manifest-digest":"x"}}}"#,
    );
    let sig = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
        "layers": [{"mediaType": "application/vnd.dev.cosign.simplesigning.v1+json", "digest": sd, "size": ss}]});
    let (gd, gs) = put(&l, &serde_json::to_vec(&sig).unwrap());
    let sbom = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/spdx+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": cd, "size": cs},
        "layers": [{"mediaType": "application/spdx+json", "digest": sd, "size": ss}]});
    let (bd, bs) = put(&l, &serde_json::to_vec(&sbom).unwrap());
    index["manifests"] = json!([image,
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": gd, "size": gs,
         "annotations": {"org.opencontainers.image.ref.name": format!("sha256-{hex}.sig")}},
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": bd, "size": bs,
         "artifactType": "application/spdx+json"}]);
    std::fs::write(l.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    let out = w.path().join("out");
    let report = w.path().join("r.json");
    run(ocislim()
        .arg("squash")
        .arg(&l)
        .arg("-o")
        .arg(format!("oci:{}:slim", out.display()))
        .arg("--report")
        .arg(&report));
    let r: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let warnings = r["warnings"].to_string();
    assert!(
        warnings.contains(&format!("left behind cosign sig sha256-{hex}.sig"))
            && warnings.contains("left behind artifact of type application/spdx+json"),
        "{warnings}"
    );
    let written = read_index(&out);
    assert_eq!(written["manifests"].as_array().unwrap().len(), 1);
    // The squashed image's layers are what skopeo sees there.
    let raw = run(std::process::Command::new("skopeo")
        .args(["inspect", "--raw"])
        .arg(format!("oci:{}:slim", out.display())));
    let m: Value = serde_json::from_slice(&raw.stdout).unwrap();
    assert_eq!(m["layers"].as_array().unwrap().len(), 1);
}
