//! `squash --all-platforms` on an index the suite builds (linux/amd64, linux/arm64/v8 and
//! a buildx-style attestation): skopeo reads the output index back with both platforms
//! and the input's annotations, and umoci judges each platform's filesystem against its
//! original (skopeo picks each platform out of both indexes). The same run pushed to a
//! registry gives the same index digest.

use crate::builder::Spec;
use crate::registry::Registry;
use crate::tools::*;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use std::path::Path;
use std::process::Command;

fn sha(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn put_blob(layout: &Path, bytes: &[u8]) -> Value {
    let d = sha(bytes);
    std::fs::write(layout.join("blobs/sha256").join(&d[7..]), bytes).unwrap();
    json!({"digest": d, "size": bytes.len()})
}

fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

/// Builds `spec` into `into` (blobs shared), with the config's platform set; returns the
/// manifest's descriptor.
fn add_image(into: &Path, spec: &str, arch: &str, variant: Option<&str>, work: &Path) -> Value {
    let single = work.join(format!("single-{arch}"));
    Spec::parse(spec).write_layout(&single, false);
    let blobs = single.join("blobs/sha256");
    for e in std::fs::read_dir(&blobs).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), into.join("blobs/sha256").join(e.file_name())).unwrap();
    }
    let index = read_json(&single.join("index.json"));
    let digest = index["manifests"][0]["digest"].as_str().unwrap();
    let mut manifest = read_json(&blobs.join(&digest[7..]));
    let mut config = read_json(&blobs.join(&manifest["config"]["digest"].as_str().unwrap()[7..]));
    config["architecture"] = json!(arch);
    if let Some(v) = variant {
        config["variant"] = json!(v);
    }
    let c = put_blob(into, &serde_json::to_vec(&config).unwrap());
    manifest["config"]["digest"] = c["digest"].clone();
    manifest["config"]["size"] = c["size"].clone();
    let mut d = put_blob(into, &serde_json::to_vec(&manifest).unwrap());
    d["mediaType"] = json!("application/vnd.oci.image.manifest.v1+json");
    d["platform"] = json!({"os": "linux", "architecture": arch});
    if let Some(v) = variant {
        d["platform"]["variant"] = json!(v);
    }
    d
}

/// The index: amd64, arm64/v8, and an attestation of the amd64 image, under `multi`.
fn multi_platform_layout(work: &Path) -> std::path::PathBuf {
    let m = work.join("multi");
    std::fs::create_dir_all(m.join("blobs/sha256")).unwrap();
    let base =
        std::fs::read_to_string(crate::fixtures::fixtures_dir().join("busybox.spec")).unwrap();
    let amd = add_image(
        &m,
        &format!(
            "{base}layer \"amd\"\nfile etc/arch \"amd64\\n\"\n\
             dir usr\ndir usr/share\ndir usr/share/doc\ndir usr/share/doc/a\n\
             file usr/share/doc/a/README \"x\"\n"
        ),
        "amd64",
        None,
        work,
    );
    let arm = add_image(
        &m,
        "tag arm:1\nlayer \"base\"\ndir etc\nfile etc/arch \"arm64\\n\"\nfile etc/old \"old\"\n\
         layer \"update\"\nfile etc/arch \"arm64 v8\\n\"\nwhiteout etc/old\n",
        "arm64",
        Some("v8"),
        work,
    );
    let statement = br#"{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"https://slsa.dev/provenance/v0.2"}"#;
    let mut layer = put_blob(&m, statement);
    layer["mediaType"] = json!("application/vnd.in-toto+json");
    let mut config = put_blob(&m, b"{}");
    config["mediaType"] = json!("application/vnd.oci.image.config.v1+json");
    let att_manifest = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config, "layers": [layer]});
    let mut att = put_blob(&m, &serde_json::to_vec(&att_manifest).unwrap());
    att["mediaType"] = json!("application/vnd.oci.image.manifest.v1+json");
    att["platform"] = json!({"os": "unknown", "architecture": "unknown"});
    att["annotations"] = json!({"vnd.docker.reference.type": "attestation-manifest",
        "vnd.docker.reference.digest": amd["digest"]});
    let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [amd, arm, att],
        "annotations": {"org.opencontainers.image.source": "https://example.invalid/multi"}});
    let mut top = put_blob(&m, &serde_json::to_vec(&index).unwrap());
    top["mediaType"] = json!("application/vnd.oci.image.index.v1+json");
    top["annotations"] = json!({"org.opencontainers.image.ref.name": "multi"});
    std::fs::write(
        m.join("index.json"),
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [top]})).unwrap(),
    )
    .unwrap();
    std::fs::write(m.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    m
}

/// skopeo's copy of one platform out of an index, as a single-image layout tagged `t`.
fn pick(from: &str, arch: &str, variant: Option<&str>, to: &Path) {
    let mut c = Command::new("skopeo");
    c.args([
        "copy",
        "--quiet",
        "--override-os",
        "linux",
        "--override-arch",
        arch,
    ]);
    if let Some(v) = variant {
        c.args(["--override-variant", v]);
    }
    run(c.arg(from).arg(format!("oci:{}:t", to.display())));
}

#[test]
fn all_platforms_squashes_each_platform_and_writes_the_same_index() {
    let w = scratch();
    let m = multi_platform_layout(w.path());
    let src = format!("oci:{}:multi", m.display());
    let out = w.path().join("out");
    let squash_all = |dest: &str, extra: &[String]| -> Value {
        let o = run(Command::new(OCISLIM)
            .args([
                "squash",
                "--all-platforms",
                "--policy",
                "none",
                "--json",
                &src,
            ])
            .args(["-o", dest])
            .args(extra));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let report = squash_all(&format!("oci:{}:slim", out.display()), &[]);
    let plats: Vec<&str> = report["platforms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["platform"].as_str().unwrap())
        .collect();
    assert_eq!(plats, ["linux/amd64", "linux/arm64/v8"], "{report}");
    assert!(
        report["warnings"].to_string().contains("attestation"),
        "{report}"
    );
    let raw = run(Command::new("skopeo")
        .args(["inspect", "--raw"])
        .arg(format!("oci:{}:slim", out.display())));
    let index: Value = serde_json::from_slice(&raw.stdout).unwrap();
    let platforms: Vec<Value> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["platform"].clone())
        .collect();
    assert_eq!(
        platforms,
        [
            json!({"os": "linux", "architecture": "amd64"}),
            json!({"os": "linux", "architecture": "arm64", "variant": "v8"})
        ],
        "{index}"
    );
    assert_eq!(
        index["annotations"]["org.opencontainers.image.source"],
        "https://example.invalid/multi"
    );
    assert_eq!(sha(&raw.stdout), report["index_digest"].as_str().unwrap());
    // Each platform, picked out by skopeo, judged by umoci against the input's.
    let judge = |output: &str, tag: &str| {
        for (arch, variant) in [("amd64", None), ("arm64", Some("v8"))] {
            let want_dir = w.path().join(format!("want-{tag}-{arch}"));
            let got_dir = w.path().join(format!("got-{tag}-{arch}"));
            pick(&src, arch, variant, &want_dir);
            pick(output, arch, variant, &got_dir);
            let want = umoci_listing(&want_dir, "t", &w.path().join(format!("uw-{tag}-{arch}")));
            let got = umoci_listing(&got_dir, "t", &w.path().join(format!("ug-{tag}-{arch}")));
            assert_eq!(want, got, "{tag} {arch}: {}", diff(&want, &got));
            let layers = skopeo_config(&format!("oci:{}:t", got_dir.display()));
            assert_eq!(layers["rootfs"]["diff_ids"].as_array().unwrap().len(), 1);
            assert_eq!(layers["architecture"], arch);
        }
    };
    judge(&format!("oci:{}:slim", out.display()), "oci");

    // To a registry: the same index, by digest.
    let reg = Registry::start(false);
    let pushed = squash_all(
        &format!("docker://{}/multi:slim", reg.host()),
        &reg.access(),
    );
    assert_eq!(
        pushed["pushed"]["digest"], report["index_digest"],
        "{pushed}"
    );
    let remote = run(Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{}/multi:slim", reg.host())));
    assert_eq!(remote.stdout, raw.stdout);

    // One platform pulled from the registry's index: only its config and layers are
    // fetched, never the other platform's config.
    let since = reg.log().len();
    let one = w.path().join("one");
    run(ocislim()
        .args(["squash", "--policy", "none", "--platform", "linux/arm64/v8"])
        .args(reg.access())
        .arg(format!("docker://{}/multi:slim", reg.host()))
        .arg("-o")
        .arg(format!("oci:{}:one", one.display())));
    let arm = &index["manifests"][1]["digest"];
    let arm_manifest = run(Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!(
            "docker://{}/multi@{}",
            reg.host(),
            arm.as_str().unwrap()
        )));
    let arm_manifest: Value = serde_json::from_slice(&arm_manifest.stdout).unwrap();
    let mut want: Vec<&str> = arm_manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .chain([&arm_manifest["config"]])
        .map(|d| d["digest"].as_str().unwrap())
        .collect();
    want.sort();
    let log = reg.log();
    let mut fetched: Vec<&str> = log[since..]
        .lines()
        .filter_map(|l| l.split_once("\"GET /v2/multi/blobs/")?.1.split(' ').next())
        .collect();
    fetched.sort();
    fetched.dedup();
    assert_eq!(fetched, want, "{}", &log[since..]);
    let config = skopeo_config(&format!("oci:{}:one", one.display()));
    assert_eq!(config["architecture"], "arm64");

    // A docker archive in Docker 25+'s shape of a multi-platform save: the same index
    // (skopeo reads it as an OCI archive, umoci judges each platform), and in
    // manifest.json the host's platform under the tag, which Engine 20.10 loads.
    let archive = w.path().join("multi.tar");
    let r = squash_all(
        &format!(
            "docker-archive:{}:ocislim-test/multi:slim",
            archive.display()
        ),
        &[],
    );
    assert_eq!(r["index_digest"], report["index_digest"], "{r}");
    assert!(
        r["warnings"]
            .to_string()
            .contains("names linux/amd64 alone"),
        "{r}"
    );
    judge(
        &format!("oci-archive:{}:slim", archive.display()),
        "archive",
    );
    // ocislim reads its archive as the index it holds: --platform picks from every
    // platform, not only the one manifest.json names.
    let inspected = run(ocislim()
        .args(["inspect", "--json", "--platform", "linux/arm64/v8"])
        .arg(&archive));
    let inspected: Value = serde_json::from_slice(&inspected.stdout).unwrap();
    assert_eq!(inspected["platform"], "linux/arm64/v8", "{inspected}");
    run(docker().args(["load", "-q", "-i"]).arg(&archive));
    let cat_arch = |image: &str| {
        let out = run(docker().args([
            "run",
            "--rm",
            "--network",
            "none",
            image,
            "cat",
            "/etc/arch",
        ]));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(cat_arch("ocislim-test/multi:slim"), "amd64\n");
    // The engine as destination: the same archive, streamed into its load.
    let r = squash_all("docker-daemon:ocislim-test/multi:daemon", &[]);
    assert_eq!(r["index_digest"], report["index_digest"], "{r}");
    assert_eq!(cat_arch("ocislim-test/multi:daemon"), "amd64\n");
    let inspect = run(docker().args([
        "image",
        "inspect",
        "--format",
        "{{.Architecture}} {{len .RootFS.Layers}}",
        "ocislim-test/multi:daemon",
    ]));
    assert_eq!(String::from_utf8_lossy(&inspect.stdout).trim(), "amd64 1");
    run(docker().args([
        "rmi",
        "ocislim-test/multi:slim",
        "ocislim-test/multi:daemon",
    ]));
}
