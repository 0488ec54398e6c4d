//! `ocislim sbom` and `squash --sbom` on small built images: what each finder lists, the
//! same bytes from the same image, metadata too big or not JSON a warning and never a
//! failure, and the file replaced only when complete. (syft judges the real images in
//! `scanners.rs`.)

use crate::builder::Spec;
use crate::tools::*;
use serde_json::Value;
use std::collections::BTreeSet;

const STATUS: &str = "Package: libfoo1\\nStatus: install ok installed\\nArchitecture: amd64\\nVersion: 1:2.0+dfsg-1\\n\\nPackage: gone\\nStatus: purge ok not-installed\\nArchitecture: amd64\\nVersion: 1\\n\\n";

/// An image with a dpkg package (its licence in its copyright file), a Python
/// distribution, two Node packages (one scoped), a `package.json` without a name, one
/// that is not JSON and one over the size limit.
fn image(dir: &std::path::Path) {
    Spec::parse(&format!(
        concat!(
            "tag sb:1\n",
            "config Cmd=[\"/bin/sh\"]\n",
            "layer\n",
            "file etc/os-release \"ID=debian\\nVERSION_ID=\\\"12\\\"\\n\"\n",
            "file var/lib/dpkg/status \"{}\"\n",
            "file var/lib/dpkg/info/libfoo1:amd64.list \"/usr/lib/libfoo.so.1\\n\"\n",
            "file usr/lib/libfoo.so.1 \"elf\"\n",
            "file usr/share/doc/libfoo1/copyright \"Files: *\\nLicense: GPL-2+\\n\"\n",
            "file usr/lib/python3/dist-packages/Req_Lib-1.0.dist-info/METADATA \"Metadata-Version: 2.1\\nName: Req_Lib\\nVersion: 1.0\\nLicense-Expression: MIT OR Apache-2.0\\n\\nbody\\n\"\n",
            "file srv/node_modules/left-pad/package.json \"{{\\\"name\\\":\\\"left-pad\\\",\\\"version\\\":\\\"1.3.0\\\",\\\"license\\\":\\\"WTFPL\\\"}}\"\n",
            "file srv/node_modules/@types/node/package.json \"{{\\\"name\\\":\\\"@types/node\\\",\\\"version\\\":\\\"20.1.0\\\"}}\"\n",
            "file srv/package.json \"{{\\\"private\\\":true}}\"\n",
            "file srv/broken/package.json \"{{\"\n",
            "file srv/huge/package.json size=1100000\n",
        ),
        STATUS
    ))
    .write_layout(dir, false);
}

/// The (type, name, version, purl) of each package of an SPDX document.
fn spdx_packages(doc: &Value) -> BTreeSet<(String, String, String)> {
    doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| {
            let purl = p["externalRefs"][0]["referenceLocator"].as_str()?;
            Some((
                p["name"].as_str().unwrap().to_string(),
                p["versionInfo"].as_str().unwrap().to_string(),
                purl.to_string(),
            ))
        })
        .collect()
}

#[test]
fn sbom_lists_os_python_and_npm_packages_with_purls_and_licences() {
    let w = scratch();
    let layout = w.path().join("in.oci");
    image(&layout);
    let out = run(ocislim()
        .arg("sbom")
        .arg(format!("oci:{}:1", layout.display())));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["spdxVersion"], "SPDX-2.3");
    let want: BTreeSet<(String, String, String)> = [
        (
            "libfoo1",
            "1:2.0+dfsg-1",
            "pkg:deb/debian/libfoo1@1%3A2.0%2Bdfsg-1?arch=amd64&distro=debian-12",
        ),
        ("req-lib", "1.0", "pkg:pypi/req-lib@1.0"),
        ("left-pad", "1.3.0", "pkg:npm/left-pad@1.3.0"),
        ("@types/node", "20.1.0", "pkg:npm/%40types/node@20.1.0"),
    ]
    .iter()
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    .collect();
    assert_eq!(spdx_packages(&doc), want);
    let licence = |name: &str| {
        doc["packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap()["licenseDeclared"]
            .clone()
    };
    assert_eq!(licence("libfoo1"), "GPL-2.0-or-later");
    assert_eq!(licence("req-lib"), "MIT OR Apache-2.0");
    assert_eq!(licence("left-pad"), "WTFPL");
    assert_eq!(licence("@types/node"), "NOASSERTION");
    // What could not be read is said on stderr, and the document stays whole.
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/srv/broken/package.json: not JSON"), "{err}");
    assert!(
        err.contains("/srv/huge/package.json: 1100000 bytes"),
        "{err}"
    );
    // The same image gives the same bytes.
    let again = run(ocislim()
        .arg("sbom")
        .arg(format!("oci:{}:1", layout.display())));
    assert_eq!(out.stdout, again.stdout);
}

#[test]
fn cyclonedx_has_the_same_packages_and_a_serial_number_of_the_image() {
    let w = scratch();
    let layout = w.path().join("in.oci");
    image(&layout);
    let file = w.path().join("bom.json");
    let out = run(ocislim()
        .args(["sbom", "--format", "cyclonedx", "-o"])
        .arg(&file)
        .arg(format!("oci:{}:1", layout.display())));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("sbom: 4 packages (1 deb, 2 npm, 1 python)"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let bom: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(bom["specVersion"], "1.6");
    let serial = bom["serialNumber"].as_str().unwrap();
    assert!(
        serial.starts_with("urn:uuid:") && serial.len() == 45,
        "{serial}"
    );
    let purls: BTreeSet<&str> = bom["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["purl"].as_str().unwrap())
        .collect();
    assert_eq!(purls.len(), 4);
    assert!(purls.contains("pkg:pypi/req-lib@1.0"));
    let req = bom["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "req-lib")
        .unwrap();
    assert_eq!(req["licenses"][0]["expression"], "MIT OR Apache-2.0");
}

#[test]
fn squash_sbom_describes_the_output_not_the_input() {
    let w = scratch();
    let layout = w.path().join("in.oci");
    image(&layout);
    let delete = w.path().join("p.toml");
    std::fs::write(
        &delete,
        "[[rule]]\nid = \"node\"\ndelete = [\"srv/node_modules/left-pad/**\"]\n",
    )
    .unwrap();
    let (out, sbom, report) = (
        w.path().join("out.oci"),
        w.path().join("out.spdx.json"),
        w.path().join("r.json"),
    );
    run(ocislim()
        .args(["squash", "--policy"])
        .arg(&delete)
        .args(["--no-check", "--tag", "out:1", "--format", "oci"])
        .arg(format!("oci:{}:1", layout.display()))
        .arg("--report")
        .arg(&report)
        .arg("--sbom")
        .arg(&sbom)
        .arg("-o")
        .arg(&out));
    let doc: Value = serde_json::from_slice(&std::fs::read(&sbom).unwrap()).unwrap();
    let names: BTreeSet<String> = spdx_packages(&doc).into_iter().map(|p| p.0).collect();
    assert!(
        !names.contains("left-pad") && names.contains("@types/node"),
        "{names:?}"
    );
    // The document names the output image by its tag and config digest, and `ocislim
    // sbom` of the output lists the same packages.
    assert_eq!(doc["name"], "out:1");
    let r: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(doc["packages"][0]["versionInfo"], r["config_digest"]);
    assert_eq!(r["sbom"]["npm"], 1);
    let of_output = run(ocislim()
        .arg("sbom")
        .arg(format!("oci:{}:out:1", out.display())));
    let of_output: Value = serde_json::from_slice(&of_output.stdout).unwrap();
    assert_eq!(spdx_packages(&of_output), spdx_packages(&doc));
}

#[test]
fn a_failed_squash_leaves_no_sbom_behind() {
    let w = scratch();
    let layout = w.path().join("in.oci");
    image(&layout);
    let sbom = w.path().join("out.spdx.json");
    // The source is refused after the side files are staged: nothing is left.
    let (code, _) = run_fail(
        ocislim()
            .args(["squash", "--keep-layers", "5", "--sbom"])
            .arg(&sbom)
            .arg(format!("oci:{}:1", layout.display()))
            .arg("-o")
            .arg(w.path().join("out.tar")),
    );
    assert_ne!(code, 0);
    let left: Vec<_> = std::fs::read_dir(w.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(!sbom.exists(), "{left:?}");
    assert!(left.iter().all(|n| n == "in.oci"), "{left:?}");
}

/// The blobs of a layout, by hex digest.
fn blobs(layout: &std::path::Path) -> BTreeSet<String> {
    std::fs::read_dir(layout.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect()
}

/// A JSON blob of a layout.
fn blob_json(layout: &std::path::Path, digest: &str) -> Value {
    serde_json::from_slice(&std::fs::read(layout.join("blobs/sha256").join(&digest[7..])).unwrap())
        .unwrap()
}

/// In a layout output, the SBOM and the record of the slim are referrers of the image
/// (an artifact manifest each, its `subject` the image's manifest, listed unnamed in
/// `index.json` as `oras attach` lists them); umoci and skopeo see one image, and
/// `skopeo copy` of it takes none of them. Squashing into the same name again replaces
/// them with the new image's. A docker archive says it holds none.
#[test]
fn a_layout_output_holds_the_sbom_and_the_record_as_referrers_skopeo_does_not_copy() {
    let w = scratch();
    let layout = w.path().join("in.oci");
    image(&layout);
    let (out, sbom) = (w.path().join("out"), w.path().join("sbom.json"));
    let squash = |policy: &str| {
        run(ocislim()
            .args([
                "squash",
                "--no-check",
                "--json",
                "--tag",
                "out:1",
                "--format",
                "oci",
            ])
            .args(["--policy", policy, "--sbom"])
            .arg(&sbom)
            .arg(format!("oci:{}:1", layout.display()))
            .arg("-o")
            .arg(&out))
    };
    squash("none");
    let index: Value =
        serde_json::from_slice(&std::fs::read(out.join("index.json")).unwrap()).unwrap();
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 3, "{index}");
    let image = manifests[0]["digest"].as_str().unwrap();
    let types: Vec<&str> = manifests[1..]
        .iter()
        .map(|m| m["artifactType"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "application/spdx+json",
            "application/vnd.ocislim.slim-record.v1+json"
        ]
    );
    for m in &manifests[1..] {
        let doc = blob_json(&out, m["digest"].as_str().unwrap());
        assert_eq!(doc["subject"]["digest"], image, "{doc}");
        assert_eq!(
            doc["config"]["mediaType"],
            "application/vnd.oci.empty.v1+json"
        );
    }
    let sbom_layer = &blob_json(&out, manifests[1]["digest"].as_str().unwrap())["layers"][0];
    assert_eq!(
        std::fs::read(
            out.join("blobs/sha256")
                .join(&sbom_layer["digest"].as_str().unwrap()[7..])
        )
        .unwrap(),
        std::fs::read(&sbom).unwrap()
    );
    let record_layer = &blob_json(&out, manifests[2]["digest"].as_str().unwrap())["layers"][0];
    let record = blob_json(&out, record_layer["digest"].as_str().unwrap());
    assert_eq!(record["policy"]["names"], "none", "{record}");
    assert!(
        record["input"]["config_digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    // umoci lists one image; skopeo copies it without its referrers.
    let ls = run(std::process::Command::new("umoci")
        .args(["ls", "--layout"])
        .arg(&out));
    assert_eq!(String::from_utf8_lossy(&ls.stdout).trim(), "1");
    let copy = w.path().join("copy");
    run(std::process::Command::new("skopeo")
        .args(["copy", "--quiet"])
        .arg(format!("oci:{}:1", out.display()))
        .arg(format!("oci:{}:1", copy.display())));
    let copied = blobs(&copy);
    assert!(copied.contains(&image[7..]));
    assert!(!copied.contains(&sbom_layer["digest"].as_str().unwrap()[7..]));
    assert!(!copied.contains(&manifests[1]["digest"].as_str().unwrap()[7..]));
    // The same name again: the old image's referrers and their blobs go with it.
    squash("aggressive");
    let index: Value =
        serde_json::from_slice(&std::fs::read(out.join("index.json")).unwrap()).unwrap();
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 3, "{index}");
    let image = manifests[0]["digest"].as_str().unwrap();
    for m in &manifests[1..] {
        assert_eq!(
            blob_json(&out, m["digest"].as_str().unwrap())["subject"]["digest"],
            image
        );
    }
    assert!(!blobs(&out).contains(&sbom_layer["digest"].as_str().unwrap()[7..]));
    // A docker archive holds no referrers, and says so.
    let r = run(std::process::Command::new(OCISLIM)
        .args(["squash", "--no-check", "--json", "--sbom"])
        .arg(&sbom)
        .arg(format!("oci:{}:1", layout.display()))
        .arg("-o")
        .arg(format!(
            "docker-archive:{}",
            w.path().join("out.tar").display()
        )));
    let r: Value = serde_json::from_slice(&r.stdout).unwrap();
    assert!(
        r["warnings"]
            .to_string()
            .contains("a docker archive holds no referrers"),
        "{r}"
    );
}

/// Pushed to a registry (distribution 2.8, which has no referrers API), the referrers
/// go by digest and are listed in the index tagged `sha256-<hex>` of the image, as the
/// distribution-spec's fallback says; skopeo copies the image without them.
#[test]
fn a_registry_push_lists_the_referrers_under_the_tag_fallback() {
    let w = scratch();
    let reg = crate::registry::Registry::start(false);
    let layout = w.path().join("in.oci");
    image(&layout);
    let sbom = w.path().join("sbom.json");
    let r = run(std::process::Command::new(OCISLIM)
        .args([
            "squash",
            "--no-check",
            "--json",
            "--policy",
            "none",
            "--sbom",
        ])
        .arg(&sbom)
        .arg(format!("oci:{}:1", layout.display()))
        .arg("-o")
        .arg(format!("docker://{}/slim:1", reg.host()))
        .args(reg.access()));
    let r: Value = serde_json::from_slice(&r.stdout).unwrap();
    let digest = r["pushed"]["digest"].as_str().unwrap().to_string();
    let tag = format!("sha256-{}", &digest[7..]);
    assert_eq!(r["pushed"]["referrers"], 2, "{r}");
    assert_eq!(r["pushed"]["referrers_tag"], tag, "{r}");
    // The registry itself has no referrers API.
    let api = run(std::process::Command::new("python3").arg("-c").arg(format!(
        "import urllib.request, urllib.error\ntry:\n print(urllib.request.urlopen('http://{}/v2/slim/referrers/{digest}').status)\nexcept urllib.error.HTTPError as e:\n print(e.code)",
        reg.host()
    )));
    assert_eq!(String::from_utf8_lossy(&api.stdout).trim(), "404");
    let raw = |reference: &str| -> Value {
        let out = run(std::process::Command::new("skopeo")
            .args(["inspect", "--raw", "--tls-verify=false"])
            .arg(format!("docker://{}/slim{reference}", reg.host())));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let listed = raw(&format!(":{tag}"));
    let listed = listed["manifests"].as_array().unwrap();
    let types: BTreeSet<&str> = listed
        .iter()
        .map(|m| m["artifactType"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        BTreeSet::from([
            "application/spdx+json",
            "application/vnd.ocislim.slim-record.v1+json"
        ])
    );
    for m in listed {
        let doc = raw(&format!("@{}", m["digest"].as_str().unwrap()));
        assert_eq!(doc["subject"]["digest"], digest.as_str(), "{doc}");
    }
    let copy = w.path().join("copy");
    run(std::process::Command::new("skopeo")
        .args(["copy", "--quiet", "--src-tls-verify=false"])
        .arg(format!("docker://{}/slim:1", reg.host()))
        .arg(format!("oci:{}:1", copy.display())));
    let sbom_digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
        std::fs::read(&sbom).unwrap(),
    ));
    assert!(!blobs(&copy).contains(&sbom_digest));
}

/// A hostile image of many broken `package.json` files: each costs its bytes once, and
/// the warnings are capped (100, then one line counting the rest).
#[test]
fn many_broken_metadata_files_give_a_bounded_list_of_warnings() {
    let w = scratch();
    let layout = w.path().join("in.oci");
    let mut spec = String::from("tag sb:1\nlayer\n");
    for i in 0..300 {
        spec += &format!("file srv/m{i}/package.json \"{{\"\n");
    }
    Spec::parse(&spec).write_layout(&layout, false);
    let out = run(ocislim()
        .arg("sbom")
        .arg(format!("oci:{}:1", layout.display())));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 101, "{err}");
    assert!(
        err.contains("200 more package metadata files could not be read"),
        "{err}"
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["packages"].as_array().unwrap().len(), 1);
}
