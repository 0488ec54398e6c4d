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
        ("Req_Lib", "1.0", "pkg:pypi/req-lib@1.0"),
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
    assert_eq!(licence("Req_Lib"), "MIT OR Apache-2.0");
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
        .find(|c| c["name"] == "Req_Lib")
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
