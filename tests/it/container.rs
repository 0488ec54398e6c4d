//! ocislim as a container image (`scripts/ocislim-image`): small, loadable by Docker, and
//! squashing a fixture mounted from the host into the same bytes the host's run writes.

use crate::tools::*;
use std::process::Command;

/// Built from this test run's binary (a release build is what the script makes by
/// default, measured in the README; the test binary is larger, and still under 20 MB
/// stored).
#[test]
fn the_ocislim_image_is_small_and_squashes_a_mounted_fixture() {
    let w = scratch();
    let archive = w.path().join("ocislim-image.tar");
    let tag = "ocislim-test/ocislim:1";
    run(Command::new("scripts/ocislim-image")
        .arg(&archive)
        .arg(OCISLIM)
        .arg(tag)
        .current_dir(env!("CARGO_MANIFEST_DIR")));
    let stored = std::fs::metadata(&archive).unwrap().len();
    assert!(stored < 20 << 20, "{stored} bytes");
    // One layer, no base distribution: nothing but the binary, its libraries and CA
    // certificates (and folders).
    let manifest = run(Command::new("tar")
        .arg("-xOf")
        .arg(&archive)
        .arg("manifest.json"));
    let manifest: serde_json::Value = serde_json::from_slice(&manifest.stdout).unwrap();
    let layers = manifest[0]["Layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "{manifest}");
    let files = run(Command::new("sh")
        .arg("-c")
        .arg("tar -xOf \"$0\" \"$1\" | tar -tzv | grep -v '^d' | awk '{ print $6 }'")
        .arg(&archive)
        .arg(layers[0].as_str().unwrap()));
    let files = String::from_utf8(files.stdout).unwrap();
    for f in files.lines() {
        assert!(
            f == "usr/local/bin/ocislim"
                || f == "etc/ssl/certs/ca-certificates.crt"
                || f.starts_with("lib/")
                || f.starts_with("lib64/")
                || f.starts_with("usr/lib/"),
            "{f} in the image:\n{files}"
        );
    }
    assert!(files.contains("usr/local/bin/ocislim"), "{files}");
    run(docker().args(["load", "-q", "-i"]).arg(&archive));
    let version = run(docker().args([
        "run",
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        "/usr/local/bin/ocislim",
        tag,
        "--version",
    ]));
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("ocislim "));

    let mount = w.path().join("w");
    std::fs::create_dir(&mount).unwrap();
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/small.tar");
    std::fs::copy(&fixture, mount.join("app.tar")).unwrap();
    run(docker()
        .args(["run", "--rm", "--network", "none", "-v"])
        .arg(format!("{}:/w", mount.display()))
        .args([tag, "-q", "squash", "/w/app.tar", "-o", "/w/app-slim.tar"]));
    let host = w.path().join("host-slim.tar");
    run(ocislim()
        .args(["squash"])
        .arg(&fixture)
        .arg("-o")
        .arg(&host));
    assert_eq!(
        std::fs::read(mount.join("app-slim.tar")).unwrap(),
        std::fs::read(&host).unwrap(),
        "the container's output differs from the host's"
    );
    let size = run(docker().args(["image", "inspect", "-f", "{{.Size}}", tag]));
    eprintln!(
        "image: {stored} bytes stored, {} bytes unpacked (Docker's size)",
        String::from_utf8_lossy(&size.stdout).trim()
    );
    run(docker().args(["rmi", tag]));
}
