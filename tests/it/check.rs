//! `ocislim check` against the real loader: for every ELF file of the Debian test image
//! (with Python's extension modules) plus C programs built here that find a library
//! through `DT_RPATH` with `$ORIGIN`, through `DT_RUNPATH`, and through the config's
//! `LD_LIBRARY_PATH`, the libraries ocislim resolves (name and path) equal what glibc's
//! own `ld.so --list` prints, run in a chroot of the image unpacked by GNU tar. A copy
//! with a needed library deleted is reported, naming the library and who needs it.

use crate::builder::Spec;
use crate::tools::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const GREET_C: &str = "const char *greet(void) { return \"hello\"; }\n";
const APP_C: &str =
    "#include <stdio.h>\nconst char *greet(void);\nint main(void) { puts(greet()); return 0; }\n";

/// Builds, with the host's gcc (Debian 12, as the image), a tree under `work/c`:
/// `/opt/app/lib/libgreet.so`, `/opt/app/bin/app-rpath` (`DT_RPATH=$ORIGIN/../lib`),
/// `/opt/app/bin/app-runpath` (`DT_RUNPATH=/opt/app/lib`), `/opt/envlib/libenvonly.so`
/// and `/opt/app/bin/app-env` (found through `LD_LIBRARY_PATH` only). Returns its tar.
fn c_programs(work: &Path) -> PathBuf {
    let src = work.join("src");
    let root = work.join("c");
    std::fs::create_dir_all(&src).unwrap();
    for d in ["opt/app/lib", "opt/app/bin", "opt/envlib"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(src.join("greet.c"), GREET_C).unwrap();
    std::fs::write(src.join("app.c"), APP_C).unwrap();
    let gcc = |args: &[&str]| {
        run(Command::new("gcc").args(args).current_dir(&src));
    };
    let lib = root.join("opt/app/lib/libgreet.so");
    let env_lib = root.join("opt/envlib/libenvonly.so");
    gcc(&[
        "-shared",
        "-fPIC",
        "-Wl,-soname,libgreet.so",
        "greet.c",
        "-o",
        lib.to_str().unwrap(),
    ]);
    gcc(&[
        "-shared",
        "-fPIC",
        "-Wl,-soname,libenvonly.so",
        "greet.c",
        "-o",
        env_lib.to_str().unwrap(),
    ]);
    let bin = |name: &str| {
        root.join("opt/app/bin")
            .join(name)
            .to_str()
            .unwrap()
            .to_string()
    };
    let libdir = root.join("opt/app/lib").to_str().unwrap().to_string();
    gcc(&[
        "app.c",
        "-L",
        &libdir,
        "-lgreet",
        "-Wl,--disable-new-dtags,-rpath,$ORIGIN/../lib",
        "-o",
        &bin("app-rpath"),
    ]);
    gcc(&[
        "app.c",
        "-L",
        &libdir,
        "-lgreet",
        "-Wl,--enable-new-dtags,-rpath,/opt/app/lib",
        "-o",
        &bin("app-runpath"),
    ]);
    let envdir = root.join("opt/envlib").to_str().unwrap().to_string();
    gcc(&["app.c", "-L", &envdir, "-lenvonly", "-o", &bin("app-env")]);
    let tar = work.join("c.tar");
    run(Command::new("tar")
        .args(["--numeric-owner", "--owner=0", "--group=0", "-C"])
        .arg(&root)
        .arg("-cf")
        .arg(&tar)
        .arg("opt"));
    tar
}

/// `ldd`-style listings by glibc's loader in a chroot of `root`, for `paths`: for each,
/// name -> path (`None`: not found); files the loader cannot list are left out.
fn ld_so_list(
    root: &Path,
    paths: &[String],
    env: &str,
) -> BTreeMap<String, BTreeMap<String, Option<String>>> {
    std::fs::write(root.join("tmp/ocislim-list"), paths.join("\n") + "\n").unwrap();
    let script = format!(
        "while read -r f; do echo \"== $f\"; {env} /lib64/ld-linux-x86-64.so.2 --list \"$f\" 2>/dev/null || echo '!! failed'; done < /tmp/ocislim-list"
    );
    let out = run(Command::new("chroot")
        .arg(root)
        .args(["/bin/sh", "-c", &script]));
    let mut all = BTreeMap::new();
    let mut current: Option<(String, BTreeMap<String, Option<String>>)> = None;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if let Some(f) = line.strip_prefix("== ") {
            if let Some((p, m)) = current.take() {
                all.insert(p, m);
            }
            current = Some((f.to_string(), BTreeMap::new()));
        } else if line == "!! failed" {
            current = None;
        } else if let (Some((_, m)), Some((name, rest))) =
            (current.as_mut(), line.trim().split_once(" => "))
        {
            let found = (rest != "not found")
                .then(|| rest.rsplit_once(" (").map_or(rest, |(p, _)| p).to_string());
            m.insert(name.to_string(), found);
        }
    }
    if let Some((p, m)) = current {
        all.insert(p, m);
    }
    all
}

fn check_json(image: &Path, extra: &[&str]) -> (i32, Value) {
    let out = Command::new(OCISLIM)
        .args(["check", "--json"])
        .args(extra)
        .arg(image)
        .output()
        .unwrap();
    let code = out.status.code().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    (code, v)
}

/// The broken references as `who needs what` lines.
fn broken(v: &Value) -> Vec<String> {
    v["broken"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            format!(
                "{} needs {}",
                b["who"].as_str().unwrap(),
                b["needs"].as_str().unwrap()
            )
        })
        .collect()
}

fn debian_rootfs() -> PathBuf {
    PathBuf::from(
        std::env::var_os("OCISLIM_DEBIAN_ROOTFS").expect(
            "OCISLIM_DEBIAN_ROOTFS is set by scripts/test (scripts/debian-rootfs builds it)",
        ),
    )
}

/// A policy deleting a library two programs load is refused before anything is
/// written, naming the library, a program, the rule and the path; `--allow-broken`
/// writes it and the report lists both programs. References Debian ships broken are
/// reported as the input's, not blamed on the policy, and the shipped `aggressive`
/// policy breaks nothing there and leaves no link dangling (the alternatives of the
/// man pages it deletes go with them).
#[test]
fn a_policy_deleting_a_needed_library_is_refused_naming_library_program_and_rule() {
    let w = scratch();
    let rootfs = debian_rootfs();
    let c = c_programs(w.path());
    let dir = w.path().join("img");
    Spec::parse("tag check:1\nconfig Entrypoint=[\"/opt/app/bin/app-rpath\"]\nlayer\nlayer\n")
        .write_layout_of(
            &dir,
            vec![std::fs::read(&rootfs).unwrap(), std::fs::read(&c).unwrap()],
            true,
        );
    let policy = w.path().join("greet.toml");
    std::fs::write(
        &policy,
        "[[rule]]\nid = \"greet-libs\"\nreason = \"test\"\ndelete = [\"opt/app/lib/*.so\"]\n",
    )
    .unwrap();
    let out_dir = w.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let out = out_dir.join("slim.tar");
    let (code, err) = run_fail(
        ocislim()
            .args(["squash", "--policy"])
            .arg(&policy)
            .arg(&dir)
            .arg("-o")
            .arg(&out),
    );
    assert_eq!(code, 1, "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    for needle in [
        "libgreet.so",
        "/opt/app/bin/app-r",
        "rule `greet-libs`",
        "/opt/app/lib/libgreet.so",
        "1 more",
        "--allow-broken",
    ] {
        assert!(err.contains(needle), "{needle} not in {err}");
    }
    assert_eq!(entries(&out_dir), Vec::<PathBuf>::new(), "nothing written");

    let report = w.path().join("report.json");
    run(ocislim()
        .args(["squash", "--allow-broken", "--policy"])
        .arg(&policy)
        .arg(&dir)
        .arg("-o")
        .arg(&out)
        .arg("--report")
        .arg(&report));
    let r: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let by_policy: Vec<String> = r["check"]["broken_by_policy"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| format!("{} {} {}", b["who"], b["needs"], b["rule"]))
        .collect();
    assert_eq!(
        by_policy,
        [
            "\"/opt/app/bin/app-rpath\" \"libgreet.so\" \"greet-libs\"",
            "\"/opt/app/bin/app-runpath\" \"libgreet.so\" \"greet-libs\"",
        ]
    );
    // Broken before the policy ran (app-env's library is only on an LD_LIBRARY_PATH
    // this image does not set, and Debian's two scripts): reported, not blamed.
    let input: Vec<String> = r["check"]["broken_in_input"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["who"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(input.len(), 3, "{:#}", r["check"]);
    assert!(
        input.contains(&"/opt/app/bin/app-env".to_string()),
        "{input:?}"
    );
    let warnings = r["warnings"].to_string();
    assert!(
        warnings.contains("the policy breaks /opt/app/bin/app-rpath needs libgreet.so"),
        "{warnings}"
    );

    let report = w.path().join("aggressive.json");
    run(ocislim()
        .args(["squash", "--dry-run", "--policy", "aggressive"])
        .arg(&dir)
        .arg("--report")
        .arg(&report));
    let r = report_breaking_nothing(&report);
    // The links into what it deletes (the alternatives of the man pages) go with their
    // targets, by the targets' rule, listed as deleted: none is left dangling.
    assert_eq!(r["check"]["links_left_dangling"], serde_json::json!([]));
    let went: Vec<&Value> = r["policy"]["deleted"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["path"] == "etc/alternatives/awk.1.gz")
        .collect();
    assert_eq!(went.len(), 1, "{went:?}");
    assert_eq!(went[0]["rule"], "man");
    assert!(
        !r["warnings"].to_string().contains("dangling"),
        "{}",
        r["warnings"]
    );
}

#[test]
fn check_resolves_every_debian_elf_file_as_ld_so_does() {
    let w = scratch();
    let rootfs = debian_rootfs();
    let c = c_programs(w.path());
    let dir = w.path().join("img");
    Spec::parse(
        "tag check:1\nconfig Env=[\"PATH=/usr/local/bin:/usr/bin:/bin\",\"LD_LIBRARY_PATH=/opt/envlib\"] Entrypoint=[\"/opt/app/bin/app-rpath\"] User=\"nobody\"\nlayer \"debian\"\nlayer \"c programs\"\n",
    )
    .write_layout_of(&dir, vec![std::fs::read(&rootfs).unwrap(), std::fs::read(&c).unwrap()], true);

    let (code, v) = check_json(&dir, &["--loads"]);
    // Broken in Debian itself, not by anything here: cgi.py's `#!/usr/local/bin/python`
    // and an example's `#!/usr/bin/make -f`.
    assert_eq!(
        broken(&v),
        [
            "/usr/lib/python3.11/cgi.py needs /usr/local/bin/python",
            "/usr/share/doc/ca-certificates/examples/ca-certificates-local/debian/rules needs /usr/bin/make",
        ],
        "{v:#}"
    );
    assert_eq!(code, 1);

    // The image as GNU tar unpacks it, and glibc's loader in a chroot of it.
    let root = w.path().join("root");
    std::fs::create_dir(&root).unwrap();
    for t in [&rootfs, &c] {
        run(Command::new("tar")
            .args(["--numeric-owner", "-xpf"])
            .arg(t)
            .arg("-C")
            .arg(&root));
    }
    let loads = v["loads"].as_array().unwrap();
    let ours: BTreeMap<String, BTreeMap<String, Option<String>>> = loads
        .iter()
        .map(|l| {
            let libs = l["libs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    (
                        p[0].as_str().unwrap().to_string(),
                        p[1].as_str().map(String::from),
                    )
                })
                .collect();
            (l["path"].as_str().unwrap().to_string(), libs)
        })
        .collect();
    let paths: Vec<String> = ours.keys().cloned().collect();
    let theirs = ld_so_list(&root, &paths, "LD_LIBRARY_PATH=/opt/envlib");
    let mut compared = 0;
    let mut differ = Vec::new();
    for (p, want) in &theirs {
        compared += 1;
        if ours[p] != *want {
            differ.push(format!(
                "{p}:\n  ld.so:   {want:?}\n  ocislim: {:?}",
                ours[p]
            ));
        }
    }
    assert!(
        differ.is_empty(),
        "{} of {compared} differ:\n{}",
        differ.len(),
        differ[..differ.len().min(10)].join("\n")
    );
    assert!(compared >= 700, "only {compared} ELF files compared");
    for must in [
        "/opt/app/bin/app-rpath",
        "/opt/app/bin/app-runpath",
        "/opt/app/bin/app-env",
        "/usr/bin/python3.11",
    ] {
        assert!(theirs.contains_key(must), "{must} was not compared");
    }
    assert!(
        theirs
            .keys()
            .any(|p| p.contains("lib-dynload/") && p.ends_with(".so")),
        "Python's extension modules were compared"
    );
    assert_eq!(
        theirs["/opt/app/bin/app-rpath"]["libgreet.so"].as_deref(),
        Some("/opt/app/bin/../lib/libgreet.so")
    );

    // A copy with libgreet.so deleted: both programs that need it are reported. Also
    // scripts through `env` (one found on PATH, one not), an entrypoint on no PATH
    // folder and a user missing from /etc/passwd (its group is there).
    let broken_dir = w.path().join("broken");
    let gone = Spec::parse(concat!(
        "layer\nwhiteout opt/app/lib/libgreet.so\n",
        "file opt/app/ok.sh \"#!/usr/bin/env python3\\n\" mode=0755\n",
        "file opt/app/bad.sh \"#!/usr/bin/env -S nosuch -x\\n\" mode=0755\n",
        "file opt/app/notexec.sh \"#!/nowhere\\n\" mode=0644\n",
    ));
    let mut tars = vec![std::fs::read(&rootfs).unwrap(), std::fs::read(&c).unwrap()];
    tars.extend(gone.layer_tars());
    Spec::parse("tag check:2\nconfig Entrypoint=[\"missing-prog\"] User=\"ghost:nogroup\" Env=[\"LD_LIBRARY_PATH=/opt/envlib\"]\nlayer\nlayer\nlayer\n")
        .write_layout_of(&broken_dir, tars, true);
    let (code, v) = check_json(&broken_dir, &[]);
    assert_eq!(code, 1);
    let b = broken(&v);
    for want in [
        "/opt/app/bin/app-rpath needs libgreet.so",
        "/opt/app/bin/app-runpath needs libgreet.so",
        "/opt/app/bad.sh needs nosuch",
        "config needs missing-prog",
        "config needs user ghost:nogroup",
    ] {
        assert!(b.iter().any(|l| l == want), "{want} not in {b:?}");
    }
    assert_eq!(
        b.len(),
        7,
        "the two Debian scripts and the five above: {b:?}"
    );
}

/// Libraries glibc opens by name, which no ELF header names: deleting the NSS module
/// `/etc/nsswitch.conf` names is refused, naming glibc; a library is on that list only
/// when the policy's `[runtime] libraries` puts it there; `--no-check` skips the check.
#[test]
fn deleting_a_library_glibc_opens_by_name_is_refused() {
    let w = scratch();
    let rootfs = debian_rootfs();
    let c = c_programs(w.path());
    let plugin = Spec::parse(&format!(
        "layer\nfile usr/lib/x86_64-linux-gnu/libplugin.so.1 from={} mode=0755\n",
        w.path().join("c/opt/app/lib/libgreet.so").display()
    ));
    let mut tars = vec![std::fs::read(&rootfs).unwrap(), std::fs::read(&c).unwrap()];
    tars.extend(plugin.layer_tars());
    let dir = w.path().join("img");
    Spec::parse(
        "tag check:1\nconfig Entrypoint=[\"/opt/app/bin/app-rpath\"]\nlayer\nlayer\nlayer\n",
    )
    .write_layout_of(&dir, tars, true);
    let policy = |name: &str, text: &str| {
        let p = w.path().join(format!("{name}.toml"));
        std::fs::write(&p, text).unwrap();
        p
    };
    let squash = |p: &Path, extra: &[&str]| {
        Command::new(OCISLIM)
            .args(["squash", "--dry-run", "--json", "--policy"])
            .arg(p)
            .args(extra)
            .arg(&dir)
            .output()
            .unwrap()
    };

    let nss = policy(
        "nss",
        "[[rule]]\nid = \"nss\"\ndelete = [\"usr/lib/x86_64-linux-gnu/libnss_files.so.2\"]\n",
    );
    let out = squash(&nss, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for needle in [
        "/usr/lib/x86_64-linux-gnu/libc.so.6 (opens it by name at run time) needs libnss_files.so.2",
        "rule `nss`",
    ] {
        assert!(err.contains(needle), "{needle} not in {err}");
    }
    // Skipped on request: the image is written as asked, with no check in the report.
    let out = squash(&nss, &["--no-check"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(r.get("check").is_none(), "{:#}", r["check"]);

    let delete_plugin =
        "[[rule]]\nid = \"plugin\"\ndelete = [\"usr/lib/x86_64-linux-gnu/libplugin.so.1\"]\n";
    let out = squash(&policy("plain", delete_plugin), &[]);
    assert!(
        out.status.success(),
        "nothing names libplugin.so.1: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let declared = policy(
        "declared",
        &format!("{delete_plugin}[runtime]\nlibraries = [\"libplugin.so.1\"]\n"),
    );
    let out = squash(&declared, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        // Found first through /lib (the symlink to usr/lib), as glibc searches.
        err.contains("libc.so.6 (opens it by name at run time) needs libplugin.so.1 (was /lib/x86_64-linux-gnu/libplugin.so.1, deleted by rule `plugin` at /usr/lib/x86_64-linux-gnu/libplugin.so.1)"),
        "{err}"
    );
}

/// `check` as a CI gate on a Debian image, which ships two broken references of its own
/// (cgi.py's `#!/usr/local/bin/python`, an example's `#!/usr/bin/make -f`): it fails
/// there; `--ignore` globs and a policy's `[check] ignore` report them as ignored; on
/// a slim of the image, `--baseline INPUT` fails only on what the slim broke (nothing
/// for `default`) and reports the rest as broken in the baseline too.
#[test]
fn check_gates_ci_with_a_baseline_and_ignore_globs() {
    let w = scratch();
    let dir = w.path().join("img");
    Spec::parse("tag gate:1\nconfig Cmd=[\"/usr/bin/python3\"]\nlayer\n").write_layout_of(
        &dir,
        vec![std::fs::read(debian_rootfs()).unwrap()],
        true,
    );
    let (code, v) = check_json(&dir, &[]);
    assert_eq!(
        (code, v["broken"].as_array().unwrap().len()),
        (1, 2),
        "{v:#}"
    );

    let (code, v) = check_json(
        &dir,
        &[
            "--ignore",
            "usr/lib/python3*/cgi.py",
            "--ignore",
            "/usr/share/doc/**",
        ],
    );
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(
        (
            v["broken"].as_array().unwrap().len(),
            v["ignored"].as_array().unwrap().len()
        ),
        (0, 2)
    );

    let policy = w.path().join("gate.toml");
    std::fs::write(&policy, "[check]\nignore = [\"usr/lib/python3*/cgi.py\"]\n").unwrap();
    let (code, v) = check_json(&dir, &["--policy", policy.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert_eq!(v["ignored"][0]["who"], "/usr/lib/python3.11/cgi.py");
    run(ocislim().args(["policy", "check"]).arg(&policy));

    let slim = w.path().join("slim");
    run(ocislim()
        .args(["squash", "--policy", "default"])
        .arg(&dir)
        .arg("-o")
        .arg(format!("oci:{}:1", slim.display())));
    let (code, v) = check_json(&slim, &["--baseline", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{v:#}");
    assert!(
        !v["broken_in_baseline"].as_array().unwrap().is_empty(),
        "{v:#}"
    );
    let text = run(ocislim()
        .arg("check")
        .arg(&slim)
        .args(["--baseline", dir.to_str().unwrap()]));
    assert!(
        String::from_utf8_lossy(&text.stdout)
            .contains("broken in the baseline too: /usr/lib/python3.11/cgi.py"),
        "{}",
        String::from_utf8_lossy(&text.stdout)
    );
}
