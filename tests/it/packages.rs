//! `ocislim packages` against dpkg's and apt's own reading of the same database, in a
//! chroot of the image as umoci unpacks it (so the merged view, whiteouts applied, is
//! what both sides see): the installed packages and their states (`dpkg-query -W`),
//! each package's regular files and their bytes (`dpkg-query -L`, diversions as it
//! prints them, sizes by `lstat` in the chroot), and which packages nothing installed
//! needs (what `dpkg --simulate --remove` lets go).

use crate::builder::Spec;
use crate::tools::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::Command;

/// Per package: (state, regular files, their bytes), by dpkg-query in the chroot, and
/// whether apt finds no installed reverse dependency.
const ORACLE_PY: &str = r#"
import os, stat, subprocess
def q(*a):
    return subprocess.run(a, capture_output=True, text=True).stdout
fmt = "${binary:Package} ${db:Status-Status} ${Essential} ${Protected}\n"
for line in q("dpkg-query", "-W", "-f", fmt).splitlines():
    pkg, state, essential, protected = (line.split(" ") + ["", ""])[:4]
    paths, last = [], None
    for l in q("dpkg-query", "-L", pkg).splitlines():
        if l.startswith("diverted by ") and last is not None:
            paths[-1] = l.split(" to: ", 1)[1]
        elif l.startswith("/"):
            paths.append(l)
            last = l
    seen, size = set(), 0
    for p in paths:
        d = os.path.realpath(os.path.dirname(p))
        at = os.path.join(d, os.path.basename(p))
        try:
            st = os.lstat(at)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and at not in seen:
            seen.add(at)
            size += st.st_size
    removal = "skip"
    if state == "installed" and essential != "yes" and protected != "yes":
        r = subprocess.run(["dpkg", "--simulate", "--remove", pkg], capture_output=True)
        removal = "removable" if r.returncode == 0 else "needed"
    print(pkg.split(":")[0], state, len(seen), size, removal)
"#;

#[test]
fn packages_lists_what_dpkg_and_apt_read_in_the_merged_view() {
    let w = scratch();
    let rootfs =
        std::path::PathBuf::from(std::env::var_os("OCISLIM_DEBIAN_ROOTFS").expect(
            "OCISLIM_DEBIAN_ROOTFS is set by scripts/test (scripts/debian-rootfs builds it)",
        ));
    // A second layer makes the merged view differ from the database: docs and a
    // program deleted, a file replaced by a bigger one.
    let upper = Spec::parse(concat!(
        "layer\n",
        "opaque usr/share/doc\n",
        "whiteout usr/bin/perl5.36.0\n",
        "file usr/bin/tac size=123456\n",
    ));
    let mut tars = vec![std::fs::read(&rootfs).unwrap()];
    tars.extend(upper.layer_tars());
    let dir = w.path().join("img");
    Spec::parse("tag pk:1\nlayer\nlayer\n").write_layout_of(&dir, tars, false);

    let out = run(ocislim().args(["packages", "--json"]).arg(&dir));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["manager"], "dpkg");
    let ours: BTreeMap<String, (String, u64, u64)> = v["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                (
                    p["state"].as_str().unwrap().to_string(),
                    p["files"].as_u64().unwrap(),
                    p["bytes"].as_u64().unwrap(),
                ),
            )
        })
        .collect();
    let sizes: Vec<u64> = v["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["bytes"].as_u64().unwrap())
        .collect();
    assert!(sizes.windows(2).all(|s| s[0] >= s[1]), "largest first");

    let root = umoci_unpack(&dir, "1", w.path());
    std::fs::write(root.join("tmp/oracle.py"), ORACLE_PY).unwrap();
    let o = run(Command::new("chroot")
        .arg(&root)
        .args(["/usr/bin/python3", "/tmp/oracle.py"]));
    let theirs: BTreeMap<String, (String, u64, u64)> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (
                f[0].to_string(),
                (
                    f[1].to_string(),
                    f[2].parse().unwrap(),
                    f[3].parse().unwrap(),
                ),
            )
        })
        .collect();
    assert!(theirs.len() > 100, "{} packages", theirs.len());
    let differ: Vec<String> = theirs
        .iter()
        .filter(|(k, v)| ours.get(*k) != Some(v))
        .map(|(k, v)| format!("{k}: dpkg {v:?}, ocislim {:?}", ours.get(k)))
        .collect();
    assert!(differ.is_empty(), "{}", differ.join("\n"));
    assert_eq!(ours.len(), theirs.len());
    // The upper layer shows: tac's new size counts, perl's deleted file does not.
    assert!(ours["coreutils"].2 > 123456);

    // Leaves: what dpkg itself lets go alone (`dpkg --simulate --remove`: it refuses
    // when an installed package's dependency would be left unsatisfied, alternatives,
    // Provides and versions read its way); essential and protected packages, which it
    // refuses whatever depends on them, are left out.
    let leaves: Vec<String> = v["leaves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect();
    let mut compared = 0;
    for l in String::from_utf8_lossy(&o.stdout).lines() {
        let f: Vec<&str> = l.split(' ').collect();
        if f[4] == "skip" {
            continue;
        }
        compared += 1;
        assert_eq!(
            leaves.contains(&f[0].to_string()),
            f[4] == "removable",
            "{}: dpkg says {}, ocislim's required_by {}",
            f[0],
            f[4],
            v["packages"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == f[0])
                .map_or(Value::Null, |p| p["required_by"].clone())
        );
    }
    assert!(compared > 50, "{compared} packages compared");
    assert!(leaves.contains(&"python3-pip".to_string()), "{leaves:?}");
}

/// apk's database, written by hand from the format (no apk on this machine), as the
/// only layer of an image whose files are partly there.
#[test]
fn packages_reads_an_apk_database() {
    let w = scratch();
    let dir = w.path().join("img");
    Spec::parse(concat!(
        "tag apk:1\nlayer\n",
        "file lib/apk/db/installed \"P:musl\\nV:1.2.4-r2\\nA:x86_64\\np:so:libc.musl-x86_64.so.1=1\\nF:lib\\nR:ld-musl-x86_64.so.1\\n\\nP:busybox\\nV:1.36.1-r5\\nD:so:libc.musl-x86_64.so.1\\nF:bin\\nR:busybox\\nR:gone\\n\" mode=0644\n",
        "file lib/ld-musl-x86_64.so.1 size=600\n",
        "file bin/busybox size=800\n",
    ))
    .write_layout(&dir, false);
    let out = run(ocislim().args(["packages", "--json"]).arg(&dir));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["manager"], "apk");
    let rows: Vec<String> = v["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            format!(
                "{} {} {} {} {}",
                p["name"], p["bytes"], p["files"], p["missing"], p["required_by"]
            )
        })
        .collect();
    assert_eq!(
        rows,
        ["\"busybox\" 800 1 1 []", "\"musl\" 600 1 0 [\"busybox\"]"]
    );
    assert_eq!(v["leaves"], serde_json::json!(["busybox"]));
    let (code, err) = run_fail(
        ocislim()
            .arg("packages")
            .arg(crate::fixtures::fixtures_dir().join("small.tar")),
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no package database"), "{err}");
}
