//! Images other tools wrote, from their own test suites (`../shared/peer-fixtures/`:
//! containers/image, go-containerregistry, regclient, stereoscope, dive, oras-go, skopeo,
//! moby, sylabs/oci-tools). Over the whole folder: every image skopeo reads is read,
//! squashed (umoci's unpack of the output equals umoci's unpack of the original) and
//! converted (skopeo reads the result with the same diff_ids); every image the judges
//! refuse is refused by ocislim too, in one line stating the reason this file expects.
//! Where skopeo 1.9 cannot name an image that the fixture's own project reads, the
//! judges read the same image named another way.

use crate::tools::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The fixtures, beside the checkout as CI lays them (`OCISLIM_PEER_FIXTURES` elsewhere).
/// Missing, the test fails: it is never skipped.
fn fixtures() -> PathBuf {
    let dir = std::env::var_os("OCISLIM_PEER_FIXTURES").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/peer-fixtures"),
        PathBuf::from,
    );
    assert!(
        dir.join("go-containerregistry").is_dir(),
        "{} holds no peer fixtures (CI lays shared/ beside the checkout)",
        dir.display()
    );
    dir
}

/// One image to read: how ocislim and skopeo name it.
#[derive(Debug)]
struct Case {
    /// Shown in failures: the fixture's path below the folder, and the reference.
    label: String,
    /// ocislim's source argument.
    source: String,
    /// skopeo's transport reference for the same image.
    skopeo: String,
}

fn sniff(path: &Path) -> Option<&'static str> {
    let list = Command::new("bsdtar").arg("-tf").arg(path).output().ok()?;
    let names = String::from_utf8_lossy(&list.stdout).into_owned();
    let has = |n: &str| names.lines().any(|l| l.trim_start_matches("./") == n);
    if has("manifest.json") {
        Some("docker-archive")
    } else if has("index.json") {
        Some("oci-archive")
    } else {
        None
    }
}

/// The top-level names of a layout's `index.json`, each once.
fn ref_names(index: &[u8]) -> Vec<String> {
    let v: Value = serde_json::from_slice(index).unwrap_or(Value::Null);
    let mut names: Vec<String> = v["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["annotations"]["org.opencontainers.image.ref.name"].as_str())
        .map(String::from)
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Every image in the folder: each layout and OCI archive as it is and by each of its
/// top-level names, each docker archive as it is and by each position (`@N`).
fn cases(root: &Path) -> Vec<Case> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let mut children: Vec<PathBuf> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        children.sort();
        for p in children {
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            if p.is_dir() {
                if p.join("index.json").is_file() {
                    let index = std::fs::read(p.join("index.json")).unwrap();
                    out.push(case(&rel, "oci", &p, None));
                    for r in ref_names(&index) {
                        out.push(case(&rel, "oci", &p, Some(&r)));
                    }
                } else if !rel.ends_with("blobs") {
                    stack.push(p);
                }
            } else if let Some(format) = sniff(&p) {
                out.push(case(&rel, format, &p, None));
                if format == "docker-archive" {
                    let n = docker_images(&p);
                    for i in 0..n {
                        out.push(case(&rel, format, &p, Some(&format!("@{i}"))));
                    }
                } else {
                    let index = run(Command::new("bsdtar").arg("-xOf").arg(&p).arg("index.json"));
                    for r in ref_names(&index.stdout) {
                        out.push(case(&rel, format, &p, Some(&r)));
                    }
                }
            }
        }
    }
    out
}

/// How many images a docker archive's `manifest.json` lists.
fn docker_images(p: &Path) -> usize {
    let m = Command::new("bsdtar")
        .arg("-xOf")
        .arg(p)
        .arg("manifest.json")
        .output()
        .unwrap();
    serde_json::from_slice::<Value>(&m.stdout)
        .ok()
        .and_then(|v| v.as_array().map(Vec::len))
        .unwrap_or(0)
}

fn case(rel: &str, format: &str, path: &Path, reference: Option<&str>) -> Case {
    let r = reference.map_or(String::new(), |r| format!(":{r}"));
    Case {
        label: format!("{rel}{r}"),
        source: format!("{format}:{}{r}", path.display()),
        skopeo: format!("{format}:{}{r}", path.display()),
    }
}

/// Why ocislim refuses what the judges refuse (or what is no image): a fixture (and
/// reference) -> words its one line must hold. A refusal not listed here fails the
/// test, so every new reason is read by someone. cosign signatures, named by their
/// `_cosign:` tags, are refused as such (see [`expected_refusal`]).
const REFUSALS: &[(&str, &str)] = &[
    // Several images and no name given, as skopeo says too.
    (
        "containers-image/oci-layout-fixtures/delete_image_multiple_images",
        "several images",
    ),
    ("skopeo/docker-two-images.tar.xz", "several images"),
    ("regclient/external", "several images"),
    ("regclient/testrepo", "several images"),
    (
        "go-containerregistry/tarball/test_bundle.tar",
        "several images",
    ),
    (
        "go-containerregistry/tarball/test_link.tar",
        "several images",
    ),
    (
        "containers-image/oci-layout-fixtures/delete_image_two_identical_references",
        "2 images are named \"1.0.0\"",
    ),
    (
        "containers-image/oci-layout-fixtures/delete_image_two_identical_references:1.0.0",
        "2 images are named \"1.0.0\"",
    ),
    // Broken fixtures: a blob missing, cut or lying about its size or digest.
    (
        "containers-image/oci-layout-fixtures/delete_image_shared_blobs_dir",
        "missing blob",
    ),
    (
        "containers-image/oci-layout-fixtures/delete_image_shared_blobs_dir:latest",
        "missing blob",
    ),
    (
        "containers-image/oci-layout-fixtures/delete_image_multiple_images:1.0.0",
        "size mismatch",
    ),
    (
        "containers-image/oci-layout-fixtures/delete_image_only_one_image",
        "size mismatch",
    ),
    (
        "containers-image/oci-layout-fixtures/delete_image_only_one_image:latest",
        "size mismatch",
    ),
    // containers/image's deletion fixtures: their layers are 33 bytes of text, no tar.
    (
        "containers-image/oci-layout-fixtures/delete_image_multiple_images:3",
        "corrupt layer 1",
    ),
    (
        "containers-image/oci-layout-fixtures/delete_image_multiple_images:3.16.7",
        "corrupt layer 1",
    ),
    (
        "containers-image/oci-layout-fixtures/delete_image_multiple_images:3.17.5",
        "corrupt layer 1",
    ),
    (
        "containers-image/oci-layout-fixtures/delete_image_multiple_images:3.18",
        "corrupt layer 1",
    ),
    (
        "containers-image/oci-layout-fixtures/delete_image_multiple_images:3.18.3",
        "corrupt layer 1",
    ),
    (
        "containers-image/oci-layout-fixtures/delete_image_multiple_images:latest",
        "corrupt layer 1",
    ),
    (
        "sylabs-oci-tools/images/aufs-docker-v2-manifest",
        "size mismatch",
    ),
    ("stereoscope/oci/valid_manifest", "size mismatch"),
    ("stereoscope/oci/invalid_file", "invalid index.json: EOF"),
    (
        "stereoscope/oci/no_manifests",
        "missing field \"manifests\"",
    ),
    (
        "go-containerregistry/tarball/null_manifest.tar",
        "manifest.json: not an array",
    ),
    (
        "go-containerregistry/layout/test_gc_image_unknown_mediatype",
        "no image manifests (dropped index entry of media type application/vnd.oci.descriptor.v1+json)",
    ),
    (
        "go-containerregistry/layout/test_index:2",
        "is an entry of media type application/vnd.oci.descriptor.v1+json, not an image",
    ),
    // Layers in formats no runtime unpacks as a tar.
    (
        "sylabs-oci-tools/images/overlayfs-docker-v2-manifest",
        "unsupported media type \"application/vnd.sylabs.image.layer.v1.squashfs\"",
    ),
    (
        "regclient/testrepo:a-docker",
        "unsupported media type \"application/vnd.example.build-type+json\"",
    ),
    (
        "regclient/testrepo:a-docker-oci",
        "unsupported media type \"application/vnd.example.build-type+json\"",
    ),
    (
        "regclient/testrepo:sha256-7e87ffc91b9ceafa85be2777b16b1be10e4664fd4f3acc86e4295b97da5163ba",
        "unsupported media type \"application/vnd.example.build-type+json\"",
    ),
    // Artifacts, and indexes of them (image-spec 1.1 `artifactType`, referrers tags).
    (
        "go-containerregistry/layout/test_index_media_type",
        "is an artifact (its config is of type application/vnd.cncf.helm.config.v1+json)",
    ),
    (
        "regclient/external:a3",
        "is an artifact of type application/example.sbom",
    ),
    (
        "regclient/external:a4",
        "is an artifact of type application/example.sbom",
    ),
    (
        "regclient/testrepo:a-example",
        "is an artifact of type application/example ",
    ),
    (
        "regclient/testrepo:a1",
        "is an artifact of type application/example.sbom",
    ),
    (
        "regclient/testrepo:a2",
        "is an artifact of type application/example.signature",
    ),
    (
        "regclient/testrepo:a3",
        "is an artifact of type application/example.layers",
    ),
    (
        "regclient/testrepo:child",
        "is an artifact of type application/example.child",
    ),
    (
        "regclient/testrepo:mirror",
        "is an artifact of type application/example.mirror",
    ),
    (
        "regclient/testrepo:sha256-0514ce64171e869a0b065fa1ce1b533e82808c9228d5b97ea6e3ef2e026d9aed",
        "is an artifact of type application/example.mirror",
    ),
    (
        "regclient/testrepo:ai",
        "is an index of artifacts of type application/example.artifacts",
    ),
    (
        "regclient/testrepo:loop",
        "is an index of artifacts of type application/example.loop",
    ),
    (
        "regclient/external:sha256-dfae8f425735a5e3a72e40d6609e03079995511d48157c74d54801ff4430491e",
        "is a referrers index",
    ),
    (
        "regclient/testrepo:sha256-dfae8f425735a5e3a72e40d6609e03079995511d48157c74d54801ff4430491e",
        "is a referrers index",
    ),
    (
        "regclient/testrepo:sha256-36ed7f4ec4545a40ca043f60d76653ef3d2a76f58a051c0f3a256aaab26fb847",
        "is a referrers index",
    ),
    (
        "regclient/testrepo:sha256-6bed79d0800a0d3a1d0e0e8105a6a5f7f7758ce09e160a8f142574c418302467",
        "is a referrers index",
    ),
    (
        "regclient/testrepo:sha256-8e54c6754f08d22f85c7552bb1951b228b8194d29b14a1639dbe50868da0273e",
        "is a referrers index",
    ),
    (
        "regclient/testrepo:sha256-ee378b79279b57eb5ac1f3b892c9ad2a9be9d9ccabe1a29a9cbaed8cad182358",
        "is a referrers index",
    ),
];

/// The words a case's refusal must hold, if it is to be refused.
fn expected_refusal(label: &str) -> Option<&'static str> {
    if let Some((_, words)) = REFUSALS.iter().find(|(l, _)| *l == label) {
        return Some(words);
    }
    label
        .contains(":_cosign:sha256-")
        .then_some(", not an image")
}

/// How the judges read an image skopeo 1.9 cannot name.
enum Judge {
    /// The same image in another fixture or under another name: a transport and a
    /// path (with `:REF`) below the folder.
    Named(&'static str, &'static str),
    /// The layout with only this entry of its index.
    Entry(usize),
}

/// go-containerregistry's layouts hold the image of its `tarball/test_image_1.tar` (the
/// same config digest) as a Docker manifest under OCI descriptors, some with
/// `artifactType` set to the config's type, in a Docker manifest list and in a nested
/// index: skopeo 1.9 refuses every one of those ("unsupported image-specific operation on
/// artifact", "no descriptor found"), go-containerregistry reads them.
const GGCR_LAYOUT: &str =
    "go-containerregistry reads it; skopeo 1.9 takes artifactType for an artifact";

/// Images skopeo 1.9 refuses that the fixture's own project reads, and so does ocislim:
/// fixture, how the judges read the same image, why.
const READ_THOUGH_SKOPEO_REFUSES: &[(&str, Judge, &str)] = &[
    (
        "stereoscope/oci/valid_oci_dir",
        Judge::Named("oci", "stereoscope/oci/valid_oci_dir:latest"),
        "two names of one manifest are one image (stereoscope reads it)",
    ),
    (
        "go-containerregistry/layout/test_index",
        Judge::Named(
            "docker-archive",
            "go-containerregistry/tarball/test_image_1.tar",
        ),
        GGCR_LAYOUT,
    ),
    (
        "go-containerregistry/layout/test_index:1",
        Judge::Named(
            "docker-archive",
            "go-containerregistry/tarball/test_image_1.tar",
        ),
        GGCR_LAYOUT,
    ),
    (
        "go-containerregistry/layout/test_index:3",
        Judge::Named(
            "docker-archive",
            "go-containerregistry/tarball/test_image_1.tar",
        ),
        GGCR_LAYOUT,
    ),
    (
        "go-containerregistry/layout/test_index:4",
        Judge::Named(
            "docker-archive",
            "go-containerregistry/tarball/test_image_1.tar",
        ),
        GGCR_LAYOUT,
    ),
    (
        "go-containerregistry/layout/test_gc_index",
        Judge::Named(
            "docker-archive",
            "go-containerregistry/tarball/test_image_1.tar",
        ),
        GGCR_LAYOUT,
    ),
    (
        "go-containerregistry/layout/test_gc_index:1",
        Judge::Named(
            "docker-archive",
            "go-containerregistry/tarball/test_image_1.tar",
        ),
        GGCR_LAYOUT,
    ),
    (
        "go-containerregistry/layout/test_gc_index:3",
        Judge::Named(
            "docker-archive",
            "go-containerregistry/tarball/test_image_1.tar",
        ),
        GGCR_LAYOUT,
    ),
    (
        "go-containerregistry/layout/test_gc_index:4",
        Judge::Named(
            "docker-archive",
            "go-containerregistry/tarball/test_image_1.tar",
        ),
        GGCR_LAYOUT,
    ),
    (
        "sylabs-oci-tools/images/hello-world-cosign-manifest",
        Judge::Entry(0),
        "one image beside its cosign signatures (oci-tools reads it)",
    ),
    (
        "sylabs-oci-tools/images/hello-world-cosign-manifest-list",
        Judge::Entry(0),
        "one index beside its cosign signatures (oci-tools reads it)",
    ),
];

/// The one line ocislim printed for a case it refused.
fn refusal(c: &Case) -> Option<String> {
    let out = ocislim()
        .arg("inspect")
        .arg(&c.source)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    if out.status.success() {
        return None;
    }
    Some(String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Runs a command; its stderr as the error when it fails.
fn attempt(cmd: &mut Command) -> Result<std::process::Output, String> {
    let out = cmd.stdin(std::process::Stdio::null()).output().unwrap();
    if out.status.success() {
        Ok(out)
    } else {
        Err(format!(
            "{:?} {:?} failed: {}",
            cmd.get_program(),
            cmd.get_args().collect::<Vec<_>>(),
            String::from_utf8_lossy(&out.stderr).trim_end()
        ))
    }
}

/// The judges' view of an image: skopeo copies it into an OCI layout (verifying every
/// blob as it copies), umoci unpacks it and the tree is listed. Where skopeo keeps a
/// Docker manifest in the layout (it does when the index says OCI but the manifest is
/// Docker's), umoci cannot read it, and the copy goes through a docker archive (which
/// makes it Docker schema 2) first. `umoci raw unpack` unpacks the root filesystem only:
/// peers' fixtures often have configs with no `os`, for which umoci makes no runtime
/// config. An error is the judges' refusal.
fn judged(transport_ref: &str, work: &Path, name: &str) -> Result<String, String> {
    let layout = work.join(format!("{name}-oci"));
    let direct = skopeo_to_layout(transport_ref, &layout).and_then(|()| umoci_listing_of(&layout));
    match direct {
        Err(e) if e.contains("not implemented: application/vnd.docker") => {
            let archive = work.join(format!("{name}.tar"));
            let layout = work.join(format!("{name}-via-docker"));
            attempt(
                Command::new("skopeo")
                    .args(["copy", "--quiet"])
                    .arg(transport_ref)
                    .arg(format!("docker-archive:{}", archive.display())),
            )?;
            skopeo_to_layout(&format!("docker-archive:{}", archive.display()), &layout)?;
            umoci_listing_of(&layout)
        }
        other => other,
    }
}

fn skopeo_to_layout(transport_ref: &str, layout: &Path) -> Result<(), String> {
    attempt(
        Command::new("skopeo")
            .args([
                "copy",
                "--quiet",
                "--format",
                "oci",
                "--dest-compress-format",
                "gzip",
            ])
            .arg("--dest-compress")
            .arg(transport_ref)
            .arg(format!("oci:{}:t", layout.display())),
    )
    .map(drop)
}

fn umoci_listing_of(layout: &Path) -> Result<String, String> {
    let rootfs = layout.with_extension("rootfs");
    attempt(
        Command::new("umoci")
            .args(["raw", "unpack", "--image"])
            .arg(format!("{}:t", layout.display()))
            .arg(&rootfs),
    )?;
    Ok(listing(&rootfs))
}

/// diff_ids of the image at a skopeo reference.
fn diff_ids(transport_ref: &str) -> Result<Value, String> {
    let out =
        attempt(Command::new("skopeo").args(["inspect", "--config", "--raw", transport_ref]))?;
    let v: Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    Ok(v["rootfs"]["diff_ids"].clone())
}

/// Squashes a case and judges the output against `want` (the judges' view of the
/// input); converts it and checks skopeo reads the same diff_ids as in `judge_ref`.
fn squash_and_convert(c: &Case, want: &str, judge_ref: &str, work: &Path) -> Result<(), String> {
    let out = work.join("slim");
    attempt(
        ocislim()
            .args(["squash", "--policy", "none", "--no-check"])
            .arg(&c.source)
            .arg("-o")
            .arg(&out)
            .args(["--format", "oci"]),
    )?;
    // A fresh layout holds one image, which skopeo reads with no reference.
    let got = judged(&format!("oci:{}", out.display()), work, "slim")?;
    if strip_dir_times(want) != strip_dir_times(&got) {
        return Err(format!("squash differs:\n{}", diff(want, &got)));
    }
    let converted = work.join("converted");
    attempt(
        ocislim()
            .arg("convert")
            .arg(&c.source)
            .arg("-o")
            .arg(&converted)
            .args(["--format", "oci"]),
    )?;
    let (a, b) = (
        diff_ids(judge_ref)?,
        diff_ids(&format!("oci:{}", converted.display()))?,
    );
    if a != b {
        return Err(format!("convert changed the diff_ids: {a} -> {b}"));
    }
    Ok(())
}

/// The reference the judges read for a case: its own, or for an image skopeo 1.9
/// cannot name, the same image named another way.
fn judge_ref(c: &Case, root: &Path, work: &Path) -> String {
    match READ_THOUGH_SKOPEO_REFUSES
        .iter()
        .find(|(l, _, _)| *l == c.label)
    {
        None => c.skopeo.clone(),
        Some((_, Judge::Named(format, other), _)) => {
            format!("{format}:{}", root.join(other).display())
        }
        Some((_, Judge::Entry(n), _)) => {
            // A copy of the layout whose index lists only entry n.
            let dir = root.join(&c.label);
            let copy = work.join("judge-layout");
            run(Command::new("cp").arg("-r").arg(&dir).arg(&copy));
            run(Command::new("chmod").args(["-R", "u+w"]).arg(&copy));
            let index = copy.join("index.json");
            let mut v: Value = serde_json::from_slice(&std::fs::read(&index).unwrap()).unwrap();
            let entry = v["manifests"][*n].clone();
            v["manifests"] = Value::Array(vec![entry]);
            std::fs::write(&index, serde_json::to_vec(&v).unwrap()).unwrap();
            format!("oci:{}", copy.display())
        }
    }
}

/// A directory only implied by its children (no entry of its own) is made by umoci at
/// unpack time, with that time as its mtime: such lines differ between any two unpacks.
fn strip_dir_times(listing: &str) -> String {
    listing
        .lines()
        .map(|l| {
            if l.contains("type=dir") {
                l.split(' ')
                    .filter(|f| !f.starts_with("time="))
                    .collect::<Vec<_>>()
                    .join(" ")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn every_image_peers_ship_is_read_squashed_and_converted_or_refused_for_its_reason() {
    let root = fixtures();
    let cases = cases(&root);
    assert!(
        cases.len() > 60,
        "only {} cases found in {}",
        cases.len(),
        root.display()
    );
    let mut failures = Vec::new();
    let (mut read, mut refused) = (0, 0);
    for c in &cases {
        let expected = expected_refusal(&c.label);
        let w = scratch();
        let judge = judge_ref(c, &root, w.path());
        let view = judged(&judge, w.path(), "original");
        match (view, refusal(c), expected) {
            (Ok(want), None, None) => match squash_and_convert(c, &want, &judge, w.path()) {
                Ok(()) => read += 1,
                Err(e) => failures.push(format!("{}: {e}", c.label)),
            },
            (_, Some(err), Some(words)) => {
                if !err.contains(words) || err.trim_end().lines().count() != 1 {
                    failures.push(format!(
                        "{}: refused as {err:?}, not for {words:?}",
                        c.label
                    ));
                } else {
                    refused += 1;
                }
            }
            (Ok(_), Some(err), None) => failures.push(format!(
                "{}: the judges read it, ocislim refused: {err}",
                c.label
            )),
            (Err(e), None, _) => failures.push(format!(
                "{}: the judges refuse it ({e}), ocislim reads it",
                c.label
            )),
            (Err(e), Some(err), None) => failures.push(format!(
                "{}: refused (as the judges do: {e}) with no expected reason: {}",
                c.label,
                err.trim_end()
            )),
            (_, None, Some(words)) => failures.push(format!(
                "{}: read, but expected a refusal for {words:?}",
                c.label
            )),
        }
    }
    eprintln!(
        "{} cases: {read} read, squashed and converted; {refused} refused for their reason",
        cases.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} cases failed ({read} read, {refused} refused as expected):\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// The busybox fixture with `extra` layers on top (raw tars), as an OCI layout.
fn busybox_plus(extra: Vec<Vec<u8>>, dir: &Path) -> PathBuf {
    let text =
        std::fs::read_to_string(crate::fixtures::fixtures_dir().join("busybox.spec")).unwrap();
    let text = format!("{text}{}", "layer \"raw\"\n".repeat(extra.len()));
    let spec = crate::builder::Spec::parse(&text);
    let mut tars = spec.layer_tars();
    let n = tars.len() - extra.len();
    tars.truncate(n);
    tars.extend(extra);
    spec.write_layout_of(dir, tars, false);
    dir.to_path_buf()
}

/// Squashes `source` into an OCI layout tagged `t` at `out`.
fn squash_to_layout(source: &Path, out: &Path) {
    run(ocislim()
        .args(["squash", "--policy", "none", "--no-check"])
        .arg(source)
        .arg("-o")
        .arg(format!("oci:{}:t", out.display())));
}

/// moby/go-archive's `broken.tar`: its last header has the ustar magic with GNU tar's
/// version field, and a prefix. Go's archive/tar (Docker, containerd) and libarchive
/// read the prefix; so does ocislim, and the file keeps its whole name.
#[test]
fn a_ustar_header_with_the_gnu_version_field_is_read_with_its_prefix() {
    let w = scratch();
    let broken = std::fs::read(fixtures().join("go-archive/broken.tar")).unwrap();
    let input = busybox_plus(vec![broken], &w.path().join("in"));
    let want = umoci_listing(&input, "1", w.path());
    let long = "./root/.cpanm/work/1395823785.24209/Plack-1.0030/blib/man3/Plack::Middleware::LighttpdScriptNameFix.3pm ";
    assert!(want.contains(long), "umoci reads the prefix: {want}");
    let out = w.path().join("out");
    squash_to_layout(&input, &out);
    let got = umoci_listing(&out, "t", w.path());
    assert_eq!(want, got, "{}", diff(&want, &got));
}

/// A file, then a path below it (umoci's non-dir-parent cases), in one layer and across
/// layers: no runtime can unpack both (Debian's umoci 0.4.7 and Docker refuse such a
/// layer; umoci's own newer tests expect the directory to replace the file). ocislim
/// replaces the file with the directory, says so, and writes what umoci unpacks and
/// Docker runs: the same tree as the image built without the files.
#[test]
fn a_path_below_a_file_replaces_the_file_and_runtimes_unpack_the_output() {
    use crate::rawtar::Tar;
    let w = scratch();
    let layers = |with_files: bool| {
        let mut one = Tar::default();
        if with_files {
            one.file(b"nondir", b"a file\n");
        }
        let one = one.file(b"nondir/foo/bar/baz", b"below\n").finish();
        let mut file = Tar::default();
        if with_files {
            file.file(b"lower", b"a file\n");
        }
        let file = file.file(b"other", b"x\n").finish();
        let below = Tar::default().file(b"lower/foo/baz", b"below\n").finish();
        vec![one, file, below]
    };
    let input = busybox_plus(layers(true), &w.path().join("in"));
    let intended = busybox_plus(layers(false), &w.path().join("intended"));
    let want = umoci_listing(&intended, "1", w.path());
    let out = w.path().join("out");
    let report = w.path().join("report.json");
    run(ocislim()
        .args(["squash", "--policy", "none", "--no-check", "--report"])
        .arg(&report)
        .arg(&input)
        .arg("-o")
        .arg(format!("oci:{}:t", out.display())));
    let got = umoci_listing(&out, "t", w.path());
    assert!(
        got.contains("./nondir/foo/bar/baz ") && got.contains("./lower/foo/baz "),
        "{got}"
    );
    assert_eq!(
        strip_dir_times(&want),
        strip_dir_times(&got),
        "{}",
        diff(&want, &got)
    );
    let r = std::fs::read_to_string(&report).unwrap();
    for file in ["nondir", "lower"] {
        assert!(
            r.contains(&format!(
                "replaces the non-directory {file} with a directory"
            )),
            "{r}"
        );
    }
    // Docker applies the output.
    let tar = w.path().join("slim.tar");
    run(ocislim()
        .arg("convert")
        .arg(format!("oci:{}:t", out.display()))
        .args([
            "--format",
            "docker-archive",
            "--tag",
            "ocislim-test/nondir:1",
            "-o",
        ])
        .arg(&tar));
    run(docker().args(["load", "-i"]).arg(&tar));
    let ran = run(docker().args([
        "run",
        "--rm",
        "--network",
        "none",
        "ocislim-test/nondir:1",
        "cat",
        "/nondir/foo/bar/baz",
        "/lower/foo/baz",
    ]));
    assert_eq!(String::from_utf8_lossy(&ran.stdout), "below\nbelow\n");
    run(docker().args(["rmi", "ocislim-test/nondir:1"]));
}

/// A docker archive compressed as a whole (`docker save | xz`, `.tar.gz`, `.tar.zst`),
/// from a file or standard input, is read as the archive inside it: the output is the
/// same bytes as from the plain archive.
#[test]
fn a_docker_archive_compressed_whole_is_read_as_the_archive_inside() {
    let w = scratch();
    let p = |n: &str| w.path().join(n);
    let layout = busybox_plus(vec![], &p("in"));
    run(ocislim()
        .arg("convert")
        .arg(&layout)
        .args(["--format", "docker-archive", "-o"])
        .arg(p("plain.tar")));
    let squash = |source: &str, stdin: Option<&Path>, out: &Path| {
        let mut c = ocislim();
        c.args(["squash", "--policy", "none", source, "-o"])
            .arg(out);
        match stdin {
            Some(f) => {
                let o = c.stdin(std::fs::File::open(f).unwrap()).output().unwrap();
                assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            }
            None => {
                run(&mut c);
            }
        }
        std::fs::read(out).unwrap()
    };
    let want = squash(p("plain.tar").to_str().unwrap(), None, &p("want.tar"));
    for (tool, ext) in [("xz", "xz"), ("gzip", "gz"), ("zstd", "zst")] {
        let packed = p(&format!("image.tar.{ext}"));
        let out = run(Command::new(tool).arg("-c").arg(p("plain.tar")));
        std::fs::write(&packed, &out.stdout).unwrap();
        let from_file = squash(packed.to_str().unwrap(), None, &p(&format!("f-{ext}.tar")));
        assert!(from_file == want, "{tool}: the output differs");
        let from_stdin = squash("-", Some(&packed), &p(&format!("s-{ext}.tar")));
        assert!(from_stdin == want, "{tool} on stdin: the output differs");
    }
    // A truncated one is refused in one line naming the file.
    let packed = std::fs::read(p("image.tar.xz")).unwrap();
    std::fs::write(p("cut.tar.xz"), &packed[..packed.len() / 2]).unwrap();
    let (code, err) = run_fail(
        ocislim()
            .args(["squash", "--policy", "none"])
            .arg(p("cut.tar.xz"))
            .arg("-o")
            .arg(p("cut-out.tar")),
    );
    assert_eq!(code, 1);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("cut.tar.xz") && err.contains("compressed archive"),
        "{err}"
    );
    assert!(!p("cut-out.tar").exists());
}
