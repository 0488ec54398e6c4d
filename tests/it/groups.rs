//! `squash --layer-groups`: each group one output layer, the filesystem the input's
//! minus exactly the reported deletions (umoci judges), and a rebuild that changes only
//! the top layer leaves the lower groups' blobs byte-identical.

use crate::builder::Spec;
use crate::tools::*;
use serde_json::Value;
use std::path::Path;

/// A base (with docs the policy deletes and a file a later layer deletes), a layer of
/// dependencies over it (with an apt archive the app's layer cleans), then the app,
/// whose file is `app`.
fn image(dir: &Path, app: &str) {
    let spec = format!(
        r#"tag g:1
layer "/bin/sh -c #(nop) ADD file:base in / "
dir etc mode=0755
dir usr mode=0755
dir usr/lib mode=0755
dir usr/share mode=0755
dir usr/share/doc mode=0755
file etc/os-release "ID=test\n"
file etc/old "going\n"
dir usr/share/doc/base mode=0755
file usr/share/doc/base/README size=5000
file usr/lib/libbase.so size=20000
hardlink usr/lib/libbase.so.1 -> usr/lib/libbase.so
symlink usr/lib/libbase.so.0 -> libbase.so
layer "RUN /bin/sh -c apt-get install deps # buildkit"
whiteout etc/old
dir var mode=0755
dir var/lib mode=0755
dir var/lib/apt mode=0755
dir var/lib/apt/lists mode=0755
file var/lib/apt/lists/Packages size=30000
dir var/cache mode=0755
dir var/cache/apt mode=0755
dir var/cache/apt/archives mode=0755
file var/cache/apt/archives/dep.deb size=50000
file usr/lib/libdep.so size=10000
dir usr/share/doc/dep mode=0755
file usr/share/doc/dep/changelog size=4000
file usr/lib/libbase.so size=21000
layer "COPY . /app # buildkit"
dir app mode=0755
file app/main "{app}"
opaque usr/share/doc/dep
whiteout var/cache/apt/archives/dep.deb
file usr/share/doc/dep/NEWS size=300
"#
    );
    Spec::parse(&spec).write_layout(dir, false);
}

/// The squash's report and output layers' digests.
fn squash(src: &Path, out: &Path, groups: &str) -> (Value, Vec<String>) {
    let rep = out.with_extension("json");
    run(ocislim()
        .arg("squash")
        .arg(src)
        .args(["--policy", "default", "--layer-groups", groups, "--report"])
        .arg(&rep)
        .args(["--format", "oci", "--tag", "g:1", "-o"])
        .arg(out));
    let r: Value = serde_json::from_slice(&std::fs::read(&rep).unwrap()).unwrap();
    let index: Value =
        serde_json::from_slice(&std::fs::read(out.join("index.json")).unwrap()).unwrap();
    let manifest = index["manifests"][0]["digest"].as_str().unwrap();
    let m: Value = serde_json::from_slice(
        &std::fs::read(out.join("blobs/sha256").join(&manifest[7..])).unwrap(),
    )
    .unwrap();
    let layers = m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect();
    (r, layers)
}

#[test]
fn layer_groups_keep_the_filesystem_and_share_unchanged_groups_across_rebuilds() {
    let w = scratch();
    let v1 = w.path().join("v1.oci");
    image(&v1, "v1\\n");
    // umoci: the output is the input minus exactly the reported paths, for cuts given
    // and for auto (before the COPY; this history marks no base's end).
    for (i, (groups, want)) in [("1,2", 3), ("auto", 2), ("2", 2)].into_iter().enumerate() {
        let (r, _) = crate::policy::assert_only_reported_paths_go(
            &v1,
            "1",
            &["--policy", "default", "--layer-groups", groups],
            w.path(),
            &format!("groups{i}"),
        );
        assert_eq!(
            r["groups"].as_array().map_or(1, Vec::len),
            want,
            "{groups}: {:#}",
            r["groups"]
        );
    }
    let (r1, layers1) = squash(&v1, &w.path().join("out1.oci"), "1,2");
    assert_eq!(layers1.len(), 3, "{r1:#}");
    let groups: Vec<&Value> = r1["groups"].as_array().unwrap().iter().collect();
    assert_eq!(groups[0]["layers"], serde_json::json!([1, 1]));
    assert_eq!(groups[2]["layers"], serde_json::json!([3, 3]));
    // The docs the policy deletes are deleted in the group that holds them, so the base
    // group holds no README.
    let deleted: Vec<&str> = r1["policy"]["deleted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["path"].as_str().unwrap())
        .collect();
    assert!(deleted.contains(&"usr/share/doc/base"), "{deleted:?}");
    let blob = w
        .path()
        .join("out1.oci/blobs/sha256")
        .join(&layers1[0][7..]);
    let listing = run(std::process::Command::new("bsdtar").arg("-tvf").arg(&blob));
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(
        !listing.contains("README") && listing.contains("libbase.so"),
        "{listing}"
    );
    // What a higher layer removes from a lower group and the policy's globs delete (the
    // apt archive `apt-get clean` removes) is not carried in the lower group's blob.
    let blob = w
        .path()
        .join("out1.oci/blobs/sha256")
        .join(&layers1[1][7..]);
    let listing = run(std::process::Command::new("bsdtar").arg("-tvf").arg(&blob));
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(
        !listing.contains("dep.deb") && listing.contains("libdep.so"),
        "{listing}"
    );
    // A rebuild changing only the app: the lower groups' blobs are the same bytes.
    let v2 = w.path().join("v2.oci");
    image(&v2, "v2, longer\\n");
    let (_, layers2) = squash(&v2, &w.path().join("out2.oci"), "1,2");
    assert_eq!(layers2.len(), 3);
    assert_eq!(
        layers1[..2],
        layers2[..2],
        "unchanged groups are byte-identical"
    );
    assert_ne!(layers1[2], layers2[2], "the app group changed");
    // The history has one entry per group.
    let config = skopeo_config(&format!("oci:{}:1", w.path().join("out2.oci").display()));
    let comments: Vec<&str> = config["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h["comment"].as_str())
        .collect();
    assert_eq!(
        comments,
        [
            "squashed layers 1-1 of 3 (policy default)",
            "squashed layers 2-2 of 3 (policy default)",
            "squashed layers 3-3 of 3 (policy default)"
        ],
        "{config:#}"
    );
    // Bad cuts are usage errors, before anything is written.
    for bad in ["3", "2,1", "x"] {
        let (code, err) = run_fail(
            ocislim()
                .arg("squash")
                .arg(&v1)
                .args(["--layer-groups", bad, "-o"])
                .arg(w.path().join("bad.oci")),
        );
        assert_eq!(code, 2, "{bad}: {err}");
        assert!(err.contains("--layer-groups"), "{err}");
        assert!(!w.path().join("bad.oci").exists());
    }
}

const REBUILT: &str = r#"FROM ocislim-test/rebuild:base
RUN rm -rf /var/lib/apt/lists/* && mkdir -p /var/cache/apt/archives && head -c 2000000 /dev/urandom > /var/cache/apt/archives/big.deb && echo deps > /etc/deps
COPY requirements.txt /app/requirements.txt
RUN mkdir -p /opt/site && cp -r /usr/local/lib/python3.11/dist-packages/requests /opt/site/ && rm /var/cache/apt/archives/big.deb
COPY . /app
CMD ["python3", "/app/main.py"]
"#;

/// Five rebuilds of a Python service (Debian base, an apt-like layer, requirements, a
/// dependencies layer, `COPY . /app`), each changing one app file, each slimmed with
/// `--layer-groups auto` and pushed: the registry judges what each push uploads and what
/// it stores, skopeo what a copy into a layout holding the previous build copies.
#[test]
fn five_rebuilds_pushed_with_layer_groups_upload_and_store_only_the_app_group() {
    use crate::registry::Registry;
    let w = scratch();
    let reg = Registry::start(false);
    let rootfs = std::env::var_os("OCISLIM_DEBIAN_ROOTFS")
        .expect("OCISLIM_DEBIAN_ROOTFS is set by scripts/test");
    run(docker()
        .arg("import")
        .arg(rootfs)
        .arg("ocislim-test/rebuild:base"));
    let ctx = w.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), REBUILT).unwrap();
    std::fs::write(ctx.join("requirements.txt"), "requests\n").unwrap();
    let mut one_build = 0;
    let mut lower: Option<Vec<Value>> = None;
    let cache = w.path().join("cache");
    for i in 1..=5 {
        std::fs::write(
            ctx.join("main.py"),
            format!("import sys\nsys.path.insert(0, '/opt/site')\nimport requests\nprint('build {i}', requests.__name__)\n"),
        )
        .unwrap();
        let tag = format!("ocislim-test/rebuild:{i}");
        run(docker()
            .args(["build", "--network", "none", "-q", "-t", &tag])
            .arg(&ctx));
        let (since, stored) = (reg.log().len(), reg.blob_bytes());
        let r = json_report(
            std::process::Command::new(OCISLIM)
                .args(["squash", &format!("docker-daemon:{tag}"), "--json"])
                .args(["--policy", "default", "--layer-groups", "auto", "--cache"])
                .arg(&cache)
                .arg("-o")
                .arg(format!("docker://{}/app:{i}", reg.host()))
                .args(reg.access()),
        );
        let groups = r["groups"].as_array().unwrap().clone();
        assert_eq!(groups.len(), 3, "{:#}", r["groups"]);
        assert_eq!(groups[2]["layers"], serde_json::json!([5, 5]));
        let app = groups[2]["compressed_size"].as_u64().unwrap();
        let grown = reg.blob_bytes() - stored;
        let uploads = reg.uploads_since(since);
        eprintln!("build {i}: {uploads} uploads, {grown} bytes stored, app group {app}");
        match &lower {
            None => one_build = grown,
            Some(l) => {
                let same = |g: &[Value]| {
                    g.iter()
                        .map(|g| (g["digest"].clone(), g["diff_id"].clone()))
                        .collect::<Vec<_>>()
                };
                assert_eq!(
                    same(&groups[..2]),
                    same(l),
                    "the lower groups are the same blobs"
                );
                // ... taken from the cache, not compressed again.
                assert_eq!(
                    r["cache"]["groups_reused"],
                    serde_json::json!([1, 2]),
                    "{:#}",
                    r["cache"]
                );
                // The app group's layer and the config, nothing else.
                assert_eq!(uploads, 2, "{}", &reg.log()[since..]);
                assert!(
                    grown as f64 <= 1.1 * app as f64 + 16384.0,
                    "build {i}: {grown} bytes stored for an app group of {app}"
                );
            }
        }
        lower = Some(groups[..2].to_vec());
    }
    let total = reg.blob_bytes();
    assert!(
        total as f64 <= 1.3 * one_build as f64,
        "five builds store {total} bytes, one {one_build}"
    );
    // skopeo copies build 5 into a layout holding build 4: the app group's blob, its
    // config and manifest are all it adds.
    let layout = w.path().join("copies");
    let copy = |i: u32| {
        run(std::process::Command::new("skopeo")
            .args(["copy", "--quiet", "--src-tls-verify=false"])
            .arg(format!("docker://{}/app:{i}", reg.host()))
            .arg(format!("oci:{}:{i}", layout.display())));
    };
    copy(4);
    let before = entries(&layout.join("blobs/sha256")).len();
    copy(5);
    let added = entries(&layout.join("blobs/sha256")).len() - before;
    assert_eq!(added, 3, "the app group, the config and the manifest");
    // Build 5 from the registry runs under Docker.
    let pulled = format!("{}/app:5", reg.host());
    run(docker().args(["pull", "-q", &pulled]));
    let out = run(docker().args(["run", "--rm", "--network", "none", &pulled]));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "build 5 requests\n");
    // umoci: build 5's grouped slim is its input minus exactly the reported paths.
    let saved = w.path().join("build5.tar");
    run(docker()
        .args(["save", "-o"])
        .arg(&saved)
        .arg("ocislim-test/rebuild:5"));
    let input = w.path().join("build5.oci");
    skopeo_to_oci(&format!("docker-archive:{}", saved.display()), &input);
    crate::policy::assert_only_reported_paths_go(
        &input,
        "t",
        &["--policy", "default", "--layer-groups", "auto"],
        w.path(),
        "rebuild5",
    );
    for i in 1..=5 {
        run(docker().args(["rmi", &format!("ocislim-test/rebuild:{i}")]));
    }
    run(docker().args(["rmi", &pulled, "ocislim-test/rebuild:base"]));
}
