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

/// A .deb of one file, a README and a copyright file, and no dependencies, built by
/// dpkg-deb on the host.
pub fn small_deb(work: &std::path::Path) -> std::path::PathBuf {
    let root = work.join("deb");
    std::fs::create_dir_all(root.join("DEBIAN")).unwrap();
    std::fs::create_dir_all(root.join("usr/share/ocislim-hello")).unwrap();
    let doc = root.join("usr/share/doc/ocislim-hello");
    std::fs::create_dir_all(&doc).unwrap();
    std::fs::write(doc.join("README"), "read me\n").unwrap();
    std::fs::write(doc.join("copyright"), "public domain\n").unwrap();
    std::fs::write(
        root.join("DEBIAN/control"),
        "Package: ocislim-hello\nVersion: 1.0\nArchitecture: all\nMaintainer: ocislim tests <tests@ocislim.invalid>\nDescription: a test package\n",
    )
    .unwrap();
    std::fs::write(root.join("usr/share/ocislim-hello/hello"), "hello\n").unwrap();
    let deb = work.join("ocislim-hello.deb");
    run(Command::new("dpkg-deb")
        .args(["--root-owner-group", "--build"])
        .arg(&root)
        .arg(&deb));
    deb
}

/// The installed packages of an unpacked root, by dpkg-query in a chroot.
pub fn installed(root: &std::path::Path) -> Vec<String> {
    let out = run(Command::new("chroot").arg(root).args([
        "dpkg-query",
        "-W",
        "-f",
        "${db:Status-Status} ${Package}\n",
    ]));
    let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("installed "))
        .map(String::from)
        .collect();
    v.sort();
    v
}

/// Every path under `prefixes` of an unpacked root.
fn paths_under(root: &std::path::Path, prefixes: &[&str]) -> Vec<String> {
    let mut v = Vec::new();
    for p in prefixes {
        let out = Command::new("find").arg(root.join(p)).output().unwrap();
        v.extend(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(|l| l.strip_prefix(root.to_str().unwrap()).unwrap().to_string()),
        );
    }
    v.sort();
    v
}

/// Slims the layout `dir` with a `[packages]` table and compares with apt doing the
/// same removal (`apt-get purge` of the packages ocislim reports, then `apt-get
/// autoremove --purge`) in a chroot of `rootfs`: the same installed packages, the same
/// paths under /usr, /etc/alternatives and dpkg's folders. Returns the report and the
/// output layout.
fn remove_like_apt(
    work: &std::path::Path,
    dir: &std::path::Path,
    rootfs: &std::path::Path,
    table: &str,
) -> (Value, std::path::PathBuf) {
    let policy = work.join("packages.toml");
    std::fs::write(&policy, table).unwrap();
    let out = work.join("slim");
    let _ = std::fs::remove_dir_all(&out);
    let report = work.join("report.json");
    run(ocislim()
        .args(["squash", "--policy"])
        .arg(&policy)
        .arg(dir)
        .arg("-o")
        .arg(format!("oci:{}:slim", out.display()))
        .arg("--report")
        .arg(&report));
    let r = report_breaking_nothing(&report);
    let names = |k: &str| -> Vec<String> {
        r["packages"][k]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap().to_string())
            .collect()
    };
    eprintln!(
        "{table:?}: {} -> {} tar bytes; removed {:?}, autoremoved {}",
        r["before"]["uncompressed"],
        r["after"]["uncompressed"],
        names("removed"),
        names("autoremoved").len()
    );
    let apt_root = work.join("apt-root");
    let _ = std::fs::remove_dir_all(&apt_root);
    std::fs::create_dir(&apt_root).unwrap();
    run(Command::new("tar")
        .args(["--numeric-owner", "-xpf"])
        .arg(rootfs)
        .arg("-C")
        .arg(&apt_root));
    let apt = |args: &str| {
        run(Command::new("chroot").arg(&apt_root).args([
            "sh",
            "-c",
            &format!("DEBIAN_FRONTEND=noninteractive {args}"),
        ]))
    };
    apt(&format!(
        "apt-get purge -y -q {}",
        names("removed").join(" ")
    ));
    if table.contains("autoremove = true") {
        apt("apt-get autoremove --purge -y -q");
    }
    let root = work.join(format!("bundle-{}", names("removed").len()));
    let _ = std::fs::remove_dir_all(&root);
    let ours = umoci_unpack(&out, "slim", &root);
    assert_eq!(installed(&ours), installed(&apt_root));
    let compare = [
        "usr",
        "etc/alternatives",
        "var/lib/dpkg/alternatives",
        "var/lib/dpkg/info",
    ];
    let (a, b) = (
        paths_under(&apt_root, &compare),
        paths_under(&ours, &compare),
    );
    assert!(
        a == b,
        "paths differ from apt's (- apt, + ocislim):\n{}",
        diff(&a.join("\n"), &b.join("\n"))
    );
    (r, out)
}

/// Package removal on the toolchain image, judged by apt itself (see
/// [`remove_like_apt`]): `build-essential` with autoremove (apt keeps the compilers:
/// `apt` suggests `dpkg-dev`, which reaches them, and apt counts suggestions), then the
/// whole toolchain by globs. The slimmed image passes `dpkg --audit`, `dpkg --verify`
/// and `apt-get check` and installs a .deb with `apt-get install`, under Docker. A
/// removal a kept package would miss is refused with the chain.
#[test]
fn removing_the_toolchain_leaves_what_apt_purge_and_autoremove_leave() {
    let w = scratch();
    let toolchain = std::path::PathBuf::from(std::env::var_os("OCISLIM_DEBIAN_TOOLCHAIN").expect(
        "OCISLIM_DEBIAN_TOOLCHAIN is set by scripts/test (scripts/debian-rootfs toolchain builds it)",
    ));
    let dir = w.path().join("img");
    Spec::parse("tag tc:1\nconfig Entrypoint=[\"/bin/sh\",\"-c\",\"echo runs\"]\nlayer\n")
        .write_layout_of(&dir, vec![std::fs::read(&toolchain).unwrap()], true);
    let (r, _) = remove_like_apt(
        w.path(),
        &dir,
        &toolchain,
        "[packages]\nremove = [\"build-essential\"]\nautoremove = true\n",
    );
    assert_eq!(r["packages"]["autoremoved"].as_array().unwrap().len(), 3);
    let (r, out) = remove_like_apt(
        w.path(),
        &dir,
        &toolchain,
        concat!(
            "[packages]\nremove = [\"build-essential\", \"dpkg-dev\", \"libdpkg-perl\", \"gcc\", \"gcc-12\", ",
            "\"g++*\", \"cpp*\", \"make\", \"patch\", \"*-dev\", \"binutils*\", \"libc-dev-bin\"]\n",
            "autoremove = true\n",
        ),
    );
    let (before, after) = (
        r["before"]["uncompressed"].as_u64().unwrap(),
        r["after"]["uncompressed"].as_u64().unwrap(),
    );
    assert!(after * 2 < before, "{before} -> {after}");
    // The built-in `toolchain` policy (remove-unless-needed globs, autoremove) takes
    // the same packages: nothing kept on this image needs any of them.
    let report = w.path().join("toolchain.json");
    run(ocislim()
        .args(["squash", "--dry-run", "--policy", "toolchain"])
        .arg(&dir)
        .arg("--report")
        .arg(&report));
    let t: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let names = |v: &Value, keys: &[&str]| -> std::collections::BTreeSet<String> {
        keys.iter()
            .flat_map(|k| v["packages"][k].as_array().unwrap().iter())
            .map(|n| n.as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        names(&t, &["removed_unneeded", "autoremoved"]),
        names(&r, &["removed", "autoremoved"])
    );
    assert_eq!(t["packages"]["left_needed"], serde_json::json!([]));
    // Under Docker: dpkg and apt find nothing wrong, and a package still installs.
    let deb = small_deb(w.path());
    let tag = "ocislim-test/toolchain:slim";
    let archive = w.path().join("slim.tar");
    run(ocislim()
        .args(["convert"])
        .arg(format!("oci:{}:slim", out.display()))
        .arg("-o")
        .arg(format!("docker-archive:{}:{tag}", archive.display())));
    run(docker().arg("load").arg("-i").arg(&archive));
    let ran = run(docker()
        .args(["run", "--rm", "--network", "none", "-v"])
        .arg(format!("{}:/deb/hello.deb:ro", deb.display()))
        .args([
            "--entrypoint",
            "sh",
            tag,
            "-ec",
            // dpkg --audit and --verify print what they find on stdout (and exit 1).
            "dpkg --audit; dpkg --verify; apt-get check -qq; apt-get install -y -qq /deb/hello.deb >/dev/null; cat /usr/share/ocislim-hello/hello; dpkg-query -W -f '${Status}\\n' ocislim-hello",
        ]));
    run(docker().args(["rmi", tag]));
    let stdout = String::from_utf8_lossy(&ran.stdout);
    assert!(
        stdout == "hello\ninstall ok installed\n",
        "{stdout}{}",
        String::from_utf8_lossy(&ran.stderr)
    );

    // libc6-dev alone: build-essential and the compilers still need it.
    let policy = w.path().join("libc6-dev.toml");
    std::fs::write(&policy, "[packages]\nremove = [\"libc6-dev\"]\n").unwrap();
    let (code, err) = run_fail(
        ocislim()
            .args(["squash", "--dry-run", "--policy"])
            .arg(&policy)
            .arg(&dir),
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("libc6-dev is needed by") && err.contains("build-essential"),
        "{err}"
    );
}

/// apk's database, written by hand from apk-tools' format (no apk here to make an
/// Alpine image with): `app` needs `libgreet` (through its `so:` provide), `devtool`
/// needs it too and pulled in `tool-helper`; the world names busybox, the base, app and
/// devtool. Removing devtool leaves the database as `apk del devtool` would: devtool
/// and tool-helper (nothing in the world needs it now) go with their files, records,
/// world line, script and trigger; libgreet stays. Judged inside the image by busybox:
/// an awk reading of the installed file (every listed file of every remaining package
/// is there, the removed ones' are not), the world, and `tar -t` of the scripts.
/// Removing libgreet is refused: app needs it.
#[test]
fn apk_removal_leaves_what_apk_del_leaves() {
    let w = scratch();
    let scripts = w.path().join("scripts");
    std::fs::create_dir_all(&scripts).unwrap();
    for s in [
        "app-1.0-r0.Q1app=.post-install",
        "devtool-2.1-r3.Q1dev=.post-install",
    ] {
        std::fs::write(scripts.join(s), "#!/bin/sh\nexit 0\n").unwrap();
    }
    let scripts_tar = w.path().join("scripts.tar");
    run(Command::new("tar")
        .args(["--format=ustar", "--owner=0", "--group=0", "-C"])
        .arg(&scripts)
        .arg("-cf")
        .arg(&scripts_tar)
        .args([
            "app-1.0-r0.Q1app=.post-install",
            "devtool-2.1-r3.Q1dev=.post-install",
        ]));
    let installed = concat!(
        "C:Q1bb=\nP:busybox\nV:1.36.1-r5\nA:x86_64\np:cmd:busybox=1.36.1-r5\nF:bin\nR:busybox\nR:sh\nR:cat\n\n",
        "C:Q1base=\nP:alpine-baselayout\nV:3.4.3-r1\nA:x86_64\nF:etc\nR:motd\n\n",
        "C:Q1lib=\nP:libgreet\nV:1.2-r0\nA:x86_64\np:so:libgreet.so.1=1.2\nF:usr\nF:usr/lib\nR:libgreet.so.1\nF:usr/share/greet\nR:hello\n",
        "F:usr/share/doc/libgreet\nM:0:0:755\nR:README\na:0:0:644\nZ:Q1readme=\n\n",
        "C:Q1app=\nP:app\nV:1.0-r0\nA:x86_64\nD:so:libgreet.so.1 /bin/sh\nF:usr/bin\nR:app\n\n",
        "C:Q1dev=\nP:devtool\nV:2.1-r3\nA:x86_64\nD:so:libgreet.so.1 tool-helper>=1\nF:usr/bin\nR:devtool\n\n",
        "C:Q1help=\nP:tool-helper\nV:1.0-r0\nA:x86_64\nF:usr/libexec\nR:helper\nF:usr/libexec/helper.d\nR:conf\n\n",
    );
    let check = concat!(
        "#!/bin/sh\n",
        "awk -F: '/^P:/{p=$2} /^F:/{d=$2; print p\" /\"d} /^R:/{print p\" /\"d\"/\"$2}' /lib/apk/db/installed |",
        " while read p f; do [ -e \"$f\" ] || [ -h \"$f\" ] || echo \"$p lacks $f\"; done\n",
        "awk -F: '/^P:/{print $2}' /lib/apk/db/installed | tr '\\n' ' '; echo\n",
        "cat /etc/apk/world; tar -tf /lib/apk/db/scripts.tar; cat /lib/apk/db/triggers\n",
        "for f in /usr/bin/devtool /usr/libexec; do [ -e $f ] && echo \"left $f\"; done; /usr/bin/app\n",
    );
    let spec = format!(
        concat!(
            "tag apk:1\nconfig Cmd=[\"/check\"]\nlayer\n",
            "dir bin\nfile bin/busybox from=/bin/busybox mode=0755\nsymlink bin/sh -> busybox\n",
            "hardlink bin/cat -> bin/busybox mode=0755\n",
            "dir usr/bin\nfile usr/bin/app \"#!/bin/sh\\ncat /usr/share/greet/hello\\n\" mode=0755\n",
            "file usr/bin/devtool \"#!/bin/sh\\n\" mode=0755\n",
            "file usr/lib/libgreet.so.1 size=4096\nfile usr/share/greet/hello \"hello from libgreet\\n\"\n",
            "file usr/share/doc/libgreet/README \"docs\\n\"\n",
            "file usr/libexec/helper size=100\nfile usr/libexec/helper.d/conf \"x=1\\n\"\n",
            "file etc/motd \"welcome\\n\"\nfile etc/apk/world \"busybox\\nalpine-baselayout\\napp\\ndevtool>=2\\n\"\n",
            "file lib/apk/db/installed \"{}\"\n",
            "file lib/apk/db/scripts.tar from={}\n",
            "file lib/apk/db/triggers \"Q1dev= /usr/share/devtool\\n\"\n",
            "file check \"{}\" mode=0755\n",
        ),
        installed.replace('\n', "\\n"),
        scripts_tar.display(),
        check
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n"),
    );
    let dir = w.path().join("img");
    Spec::parse(&spec).write_layout(&dir, false);
    let tag = "ocislim-test/apk:slim";
    // The docs go by a glob: libgreet stays, its record without them (the check's
    // first awk would say "libgreet lacks /usr/share/doc/libgreet").
    let (out, r) = squash_with_policy(
        w.path(),
        &dir,
        "[[rule]]\nid = \"doc\"\ndelete = [\"usr/share/doc\", \"usr/share/doc/**\"]\n[packages]\nremove = [\"devtool\"]\n",
        tag,
    );
    assert_eq!(r["packages"]["removed"], serde_json::json!(["devtool"]));
    assert_eq!(
        r["packages"]["autoremoved"],
        serde_json::json!(["tool-helper"])
    );
    run(docker().arg("load").arg("-i").arg(&out));
    let ran = run(docker().args(["run", "--rm", "--network", "none", tag]));
    run(docker().args(["rmi", tag]));
    assert_eq!(
        String::from_utf8_lossy(&ran.stdout),
        concat!(
            "busybox alpine-baselayout libgreet app \n",
            "busybox\nalpine-baselayout\napp\n",
            "app-1.0-r0.Q1app=.post-install\n",
            "hello from libgreet\n",
        )
    );
    // libgreet alone: app still needs it.
    let policy = w.path().join("libgreet.toml");
    std::fs::write(&policy, "[packages]\nremove = [\"libgreet\"]\n").unwrap();
    let (code, err) = run_fail(
        ocislim()
            .args(["squash", "--dry-run", "--policy"])
            .arg(&policy)
            .arg(&dir),
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("libgreet is needed by app"), "{err}");
}
