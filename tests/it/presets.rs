//! Must-keep lists for every shipped policy, on a real image: the Debian root filesystem
//! (debootstrap, python3-pip, `pip install requests`) with an Express app installed by
//! the real npm on top. What the input holds is listed by GNU tar (`tar -tvf` of each
//! layer), not by ocislim; each preset's report (`--dry-run --json`) must delete none of
//! the must-keep paths, and the `aggressive` output, unpacked by umoci, must hold every
//! one of them on disk. Pinned goldens (`policy.rs`) say what a preset deletes; this says
//! what it must never delete.

use crate::builder::Spec;
use crate::policy::{deleted_paths, report};
use crate::tools::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

const PRESETS: [&str; 10] = [
    "default",
    "apt",
    "docs",
    "python",
    "node",
    "headers",
    "locales",
    "logs",
    "caches",
    "aggressive",
];

/// Every path of a layer tar as GNU tar lists it (without `./` and a trailing `/`), with
/// its symlink target if it is one.
fn tar_paths(tar: &Path) -> BTreeMap<String, Option<String>> {
    let out = run(Command::new("tar")
        .args(["--quoting-style=literal", "-tvf"])
        .arg(tar));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            // perms owner size date time name [-> target | link to target]
            let rest = l.split_whitespace().skip(5).collect::<Vec<_>>().join(" ");
            let (name, target) = match rest.split_once(" -> ") {
                Some((n, t)) => (n.to_string(), Some(t.to_string())),
                None => (rest.split(" link to ").next().unwrap().to_string(), None),
            };
            let name = name
                .trim_start_matches("./")
                .trim_end_matches('/')
                .to_string();
            (name, target)
        })
        .filter(|(n, _)| !n.is_empty() && n != ".")
        .collect()
}

/// The rules every shipped policy must honour, each a name and a test on a path.
type MustKeep = (&'static str, fn(&str) -> bool);

const MUST_KEEP: &[MustKeep] = &[
    // But the alternatives of man pages, which go with the pages they point to.
    ("everything in /etc", |p| {
        p.starts_with("etc/") && !(p.starts_with("etc/alternatives/") && p.ends_with(".gz"))
    }),
    ("copyright files", |p| {
        p.starts_with("usr/share/doc/") && p.matches('/').count() == 4 && p.ends_with("/copyright")
    }),
    ("English and C locales", |p| {
        [
            "usr/share/locale/en/",
            "usr/share/locale/en_",
            "usr/lib/locale/C.",
        ]
        .iter()
        .any(|s| p.starts_with(s))
            || p == "usr/share/locale/locale.alias"
            || ["C", "POSIX"]
                .iter()
                .any(|l| p == format!("usr/share/i18n/locales/{l}"))
    }),
    ("apt's locks and partial folders", |p| {
        [
            "var/lib/apt/lists/lock",
            "var/lib/apt/lists/partial",
            "var/cache/apt/archives/lock",
            "var/cache/apt/archives/partial",
        ]
        .contains(&p)
    }),
    ("CA certificates", |p| {
        p.starts_with("usr/share/ca-certificates/") || p.starts_with("etc/ssl/certs/")
    }),
    ("shared libraries", |p| {
        let name = p.rsplit('/').next().unwrap();
        (p.starts_with("usr/lib/") || p.starts_with("lib/"))
            && (name.ends_with(".so") || name.contains(".so."))
    }),
    ("package.json in node_modules", |p| {
        p.contains("/node_modules/") && p.ends_with("/package.json")
    }),
    ("dist-info metadata", |p| {
        p.contains(".dist-info/") || p.ends_with(".dist-info")
    }),
    ("__init__.py outside tests", |p| {
        p.ends_with("/__init__.py") && !p.contains("/tests/") && !p.contains("/test/")
    }),
    ("/tmp and /var/tmp themselves", |p| {
        p == "tmp" || p == "var/tmp"
    }),
];

/// Installs Express with the real npm into `work/app/srv/app`, adds `files` (name,
/// text) there, and tars `srv` with GNU tar.
pub fn node_layer(work: &Path, files: &[(&str, &str)]) -> std::path::PathBuf {
    let app = work.join("app/srv/app");
    std::fs::create_dir_all(&app).unwrap();
    for (name, text) in files {
        std::fs::write(app.join(name), text).unwrap();
    }
    run(Command::new("npm")
        .args([
            "install",
            "--no-audit",
            "--no-fund",
            "--no-update-notifier",
            "express@4.21.2",
        ])
        .current_dir(&app));
    let tar = work.join("node.tar");
    run(Command::new("tar")
        .args(["--numeric-owner", "-C"])
        .arg(work.join("app"))
        .arg("-cf")
        .arg(&tar)
        .arg("srv"));
    tar
}

/// Each package's main file, from its package.json (`main`, default `index.js`), where
/// the package has it.
fn node_mains(input: &BTreeMap<String, Option<String>>, root: &Path) -> Vec<String> {
    let mut mains = Vec::new();
    for p in input.keys() {
        let Some(dir) = p.strip_suffix("/package.json") else {
            continue;
        };
        if !dir.ends_with(&format!("node_modules/{}", dir.rsplit('/').next().unwrap())) {
            continue;
        }
        let doc: Value = match std::fs::read(root.join(p)) {
            Ok(b) => serde_json::from_slice(&b).unwrap_or(Value::Null),
            Err(_) => continue,
        };
        let main = doc["main"].as_str().unwrap_or("index.js");
        let main = main.trim_start_matches("./");
        for cand in [
            main.to_string(),
            format!("{main}.js"),
            format!("{main}/index.js"),
        ] {
            let full = format!("{dir}/{}", cand.trim_end_matches('/'));
            if input.contains_key(&full) {
                mains.push(full);
                break;
            }
        }
    }
    mains
}

#[test]
fn every_shipped_policy_keeps_what_the_debian_node_image_needs() {
    let w = scratch();
    let rootfs =
        std::path::PathBuf::from(std::env::var_os("OCISLIM_DEBIAN_ROOTFS").expect(
            "OCISLIM_DEBIAN_ROOTFS is set by scripts/test (scripts/debian-rootfs builds it)",
        ));
    let node = node_layer(w.path(), &[]);
    let mut input = tar_paths(&rootfs);
    input.extend(tar_paths(&node));
    let tars = vec![
        std::fs::read(&rootfs).unwrap(),
        std::fs::read(&node).unwrap(),
    ];
    let dir = w.path().join("img");
    Spec::parse(
        "tag must-keep:1\nconfig Entrypoint=[\"/usr/bin/python3\"] Cmd=[\"-c\",\"import requests\"]\nlayer \"debian\"\nlayer \"npm install express\"\n",
    )
    .write_layout_of(&dir, tars, true);
    drop(std::fs::remove_file(&node));

    // The entrypoint, as skopeo reads the config, and what its symlinks point to.
    let cfg = skopeo_config(&format!("oci:{}:1", dir.display()));
    let mut entry = cfg["config"]["Entrypoint"][0]
        .as_str()
        .unwrap()
        .trim_start_matches('/')
        .to_string();
    let mut must: Vec<(String, &str)> = Vec::new();
    while let Some(target) = input.get(&entry).cloned() {
        must.push((entry.clone(), "the entrypoint and its symlink chain"));
        match target {
            Some(t) if t.starts_with('/') => entry = t.trim_start_matches('/').to_string(),
            Some(t) => entry = format!("{}/{t}", entry.rsplit_once('/').unwrap().0),
            None => break,
        }
    }
    assert!(
        must.len() >= 2,
        "python3 is a symlink to python3.11: {must:?}"
    );
    for (what, keep) in MUST_KEEP {
        let n = must.len();
        must.extend(input.keys().filter(|p| keep(p)).map(|p| (p.clone(), *what)));
        assert!(must.len() > n, "the test image holds no {what}");
    }
    let npm_root = w.path().join("app");
    let mains = node_mains(&input, &npm_root);
    assert!(mains.len() >= 50, "{mains:?}");
    must.extend(
        mains
            .into_iter()
            .map(|p| (p, "each node package's main file")),
    );

    for preset in PRESETS {
        let r = report(&dir, None, &["--policy", preset]);
        let deleted = deleted_paths(&r);
        let gone = |p: &str| {
            deleted
                .iter()
                .any(|(d, sub)| d == p || (*sub && p.starts_with(&format!("{d}/"))))
        };
        let broken: Vec<String> = must
            .iter()
            .filter(|(p, _)| gone(p))
            .map(|(p, what)| format!("{what}: {p}"))
            .collect();
        assert!(
            broken.is_empty(),
            "policy {preset} deletes {} must-keep paths:\n{}",
            broken.len(),
            broken[..broken.len().min(30)].join("\n")
        );
        if preset == "aggressive" {
            assert!(!deleted.is_empty());
        }
    }

    // On disk: the aggressive output, unpacked by umoci, holds every must-keep path.
    let out = w.path().join("aggressive");
    run(ocislim()
        .args([
            "squash",
            "--policy",
            "aggressive",
            "--format",
            "oci",
            "--tag",
            "slim:1",
        ])
        .arg(&dir)
        .arg("-o")
        .arg(&out));
    let root = umoci_unpack(&out, "1", w.path());
    let missing: Vec<&String> = must
        .iter()
        .map(|(p, _)| p)
        .filter(|p| std::fs::symlink_metadata(root.join(p)).is_err())
        .collect();
    assert!(missing.is_empty(), "missing after aggressive: {missing:?}");
}
