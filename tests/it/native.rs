//! Removal and closure that see what the image's own files need, on an image that builds
//! native code from source as single-stage Dockerfiles do (`scripts/debian-rootfs
//! native`: compilers, `python3-dev`, `libpq-dev` and `zlib1g-dev` left installed; a
//! venv with psycopg2 built `--no-binary` and uwsgi; a Node app whose pg-native addon
//! node-gyp built against Debian's libpq; a C program with its own library in
//! /usr/local/lib, found through `ldconfig`'s cache, its build tree in the working
//! folder). The judges: Docker runs each app from the output; Debian's dpkg and apt
//! (under Docker) check the output's database; apt itself, simulating the reported
//! removal in a chroot of the input, must leave the same installed set.

use crate::builder::Spec;
use crate::closure::rootfs;
use crate::tools::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The native image as a layout: its root as one layer, then a layer whiting out
/// `hide` (so one app alone needs the libraries it shares with another), with `config`.
fn image(work: &Path, name: &str, config: &str, hide: Option<&str>) -> PathBuf {
    let tar = std::fs::read(rootfs("OCISLIM_DEBIAN_NATIVE", "native")).unwrap();
    let dir = work.join(name);
    let top = hide.map_or(String::new(), |h| format!("layer\nwhiteout {h}\n"));
    let spec = Spec::parse(&format!("tag {name}:1\nconfig {config}\nlayer\n{top}"));
    let mut tars = vec![tar];
    tars.extend(spec.layer_tars().into_iter().skip(1));
    // Uncompressed layers (as Docker 25 saves them): gzip of 800 MB is not under test.
    spec.write_layout_of(&dir, tars, true);
    dir
}

/// Slims `layout` by `policies` into a docker archive tagged `tag`, loads it into
/// Docker, and returns the report (which must say the policy broke nothing).
fn slim_and_load(work: &Path, layout: &Path, policies: &[&str], tag: &str) -> Value {
    let out = work.join(format!("{}.tar", tag.replace([':', '/'], "-")));
    let report = work.join(format!("{}.json", tag.replace([':', '/'], "-")));
    let mut cmd = ocislim();
    cmd.arg("squash");
    for p in policies {
        cmd.args(["--policy", p]);
    }
    run(cmd
        .arg(layout)
        .arg("-o")
        .arg(format!("docker-archive:{}:{tag}", out.display()))
        .arg("--report")
        .arg(&report));
    let r = report_breaking_nothing(&report);
    run(docker().arg("load").arg("-i").arg(&out));
    std::fs::remove_file(&out).unwrap();
    r
}

/// Runs `args` in the image `tag` with `entrypoint`; its stdout.
fn in_docker(tag: &str, entrypoint: &str, args: &[&str]) -> String {
    let out = run(docker()
        .args([
            "run",
            "--rm",
            "--network",
            "none",
            "--entrypoint",
            entrypoint,
            tag,
        ])
        .args(args));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The packages dpkg lists as installed (`ii`) in the image `tag`.
fn installed_in(tag: &str) -> BTreeSet<String> {
    in_docker(
        tag,
        "dpkg-query",
        &["-W", "-f", "${db:Status-Abbrev} ${Package}\n"],
    )
    .lines()
    .filter_map(|l| l.strip_prefix("ii  "))
    .map(|n| n.trim().to_string())
    .collect()
}

fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n.as_str().map(String::from))
        .collect()
}

/// The packages kept for files, and who each is needed by.
fn kept_for_files(r: &Value) -> Vec<(String, String, String)> {
    r["packages"]["kept_for_files"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|k| {
            let s = |f: &str| k[f].as_str().unwrap_or_default().to_string();
            (s("package"), s("needed_by"), s("needs"))
        })
        .collect()
}

/// apt's own view: in a chroot of the input (its own apt and configuration), the
/// packages ocislim kept for files marked manual, then `apt-get purge --autoremove` of
/// what it reports removed, simulated; the installed set apt leaves.
fn apt_leaves(work: &Path, r: &Value) -> BTreeSet<String> {
    let root = work.join("apt-root");
    std::fs::create_dir_all(&root).unwrap();
    run(Command::new("tar")
        .args(["-xf"])
        .arg(rootfs("OCISLIM_DEBIAN_NATIVE", "native"))
        .arg("-C")
        .arg(&root));
    let keep: Vec<String> = kept_for_files(r).into_iter().map(|k| k.0).collect();
    if !keep.is_empty() {
        run(Command::new("chroot")
            .arg(&root)
            .args(["apt-mark", "manual"])
            .args(&keep));
    }
    let removed: Vec<String> = ["removed", "removed_unneeded"]
        .iter()
        .flat_map(|k| names(&r["packages"][k]))
        .collect();
    let sim = run(Command::new("chroot")
        .arg(&root)
        .args(["apt-get", "-s", "-qq", "purge", "--autoremove"])
        .args(&removed));
    let purged: BTreeSet<String> = String::from_utf8_lossy(&sim.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("Purg "))
        .filter_map(|l| l.split_whitespace().next())
        .map(|n| n.split(':').next().unwrap().to_string())
        .collect();
    let status = std::fs::read_to_string(root.join("var/lib/dpkg/status")).unwrap();
    let mut left = BTreeSet::new();
    for stanza in status.split("\n\n") {
        let field = |k: &str| {
            stanza
                .lines()
                .find_map(|l| l.strip_prefix(k))
                .map(|v| v.trim().to_string())
        };
        if let (Some(p), Some(s)) = (field("Package:"), field("Status:"))
            && s == "install ok installed"
            && !purged.contains(&p)
        {
            left.insert(p);
        }
    }
    std::fs::remove_dir_all(&root).unwrap();
    left
}

/// dpkg's and apt's checks of the image `tag`, run in it: nothing to say.
fn database_is_sound(tag: &str) {
    let out = in_docker(
        tag,
        "sh",
        &["-c", "dpkg --audit; dpkg --verify; apt-get check -qq"],
    );
    assert_eq!(out, "", "dpkg --audit, dpkg --verify, apt-get check");
}

#[test]
fn aggressive_keeps_the_libraries_a_venv_built_from_source_loads() {
    let work = scratch();
    let config = r#"Entrypoint=["/opt/venv/bin/python","/opt/app/app.py"]"#;
    let layout = image(work.path(), "native-py", config, Some("app"));
    let tag = "ocislim-test/native-py:slim";
    let r = slim_and_load(work.path(), &layout, &["aggressive"], tag);

    let kept = kept_for_files(&r);
    let reason = |p: &str| kept.iter().find(|k| k.0 == p).cloned();
    let pq = reason("libpq5").expect("libpq5 kept for files");
    assert!(
        pq.1.contains("psycopg2/_psycopg") && pq.2 == "libpq.so.5",
        "{pq:?}"
    );
    let py = reason("libpython3.11").expect("libpython3.11 kept for files");
    assert_eq!(
        (py.1.as_str(), py.2.as_str()),
        ("/opt/venv/bin/uwsgi", "libpython3.11.so.1.0")
    );

    let ran = in_docker(tag, "/opt/venv/bin/python", &["/opt/app/app.py"]);
    assert!(
        ran.contains("psycopg2 2.9.9") && ran.contains("connect reached libpq"),
        "{ran}"
    );
    assert!(in_docker(tag, "/opt/venv/bin/uwsgi", &["--version"]).starts_with("2.0.23"));

    let left = installed_in(tag);
    for gone in [
        "gcc-12",
        "g++-12",
        "cpp-12",
        "make",
        "binutils",
        "libc6-dev",
        "libpq-dev",
        "python3.11-dev",
        "libpython3.11-dev",
        "zlib1g-dev",
        "build-essential",
    ] {
        assert!(!left.contains(gone), "{gone} is still installed");
    }
    for stays in ["libpq5", "libpython3.11", "python3.11", "nodejs"] {
        assert!(left.contains(stays), "{stays} was removed");
    }
    database_is_sound(tag);
    assert_eq!(apt_leaves(work.path(), &r), left, "apt's installed set");
    run(docker().args(["rmi", tag]));

    // Naming libpq5 is refused, with the file that needs it.
    let policy = work.path().join("libpq.toml");
    std::fs::write(
        &policy,
        "[packages]\nremove = [\"libpq5\", \"libpq-dev\"]\n",
    )
    .unwrap();
    let (code, err) = run_fail(
        ocislim()
            .args(["squash", "--dry-run", "--policy"])
            .arg(&policy)
            .arg(&layout),
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(
            "libpq5 is needed by /opt/venv/lib/python3.11/site-packages/psycopg2/_psycopg"
        ) && err.contains("(libpq.so.5)"),
        "{err}"
    );
}

#[test]
fn aggressive_keeps_the_library_a_node_addon_loads() {
    let work = scratch();
    let config = r#"Entrypoint=["/usr/bin/node","/app/index.js"]"#;
    let layout = image(work.path(), "native-node", config, Some("opt/venv"));
    let tag = "ocislim-test/native-node:slim";
    let r = slim_and_load(work.path(), &layout, &["aggressive"], tag);
    let kept = kept_for_files(&r);
    let pq = kept.iter().find(|k| k.0 == "libpq5").expect("libpq5 kept");
    assert!(
        pq.1.ends_with("libpq/build/Release/addon.node") && pq.2 == "libpq.so.5",
        "{pq:?}"
    );
    assert!(
        !kept.iter().any(|k| k.0 == "libpython3.11"),
        "no kept file needs libpython3.11 once the venv is gone: {kept:?}"
    );
    let ran = in_docker(tag, "/usr/bin/node", &["/app/index.js"]);
    assert!(ran.contains("connect reached libpq"), "{ran}");
    let left = installed_in(tag);
    assert!(left.contains("libpq5") && !left.contains("libpq-dev") && !left.contains("gcc-12"));
    database_is_sound(tag);
    assert_eq!(apt_leaves(work.path(), &r), left, "apt's installed set");
    run(docker().args(["rmi", tag]));
}

#[test]
fn closure_keeps_what_the_loader_needs_to_find_a_usr_local_library() {
    let work = scratch();
    let config = r#"Entrypoint=["/usr/local/bin/zcrc"] WorkingDir="/src""#;
    let layout = image(work.path(), "native-c", config, None);
    for (policies, tag) in [
        (&["closure"][..], "ocislim-test/native-c:closure"),
        (
            &["closure", "aggressive"][..],
            "ocislim-test/native-c:aggressive",
        ),
    ] {
        let r = slim_and_load(work.path(), &layout, policies, tag);
        let (b, a) = (
            r["before"]["uncompressed"].as_u64().unwrap(),
            r["after"]["uncompressed"].as_u64().unwrap(),
        );
        eprintln!(
            "{policies:?}: {b} -> {a} tar bytes ({:.1}x)",
            b as f64 / a as f64
        );
        assert!(a * 10 <= b, "{policies:?}: {b} -> {a} is not 10x smaller");
        let kept: Vec<&str> = r["closure"]["kept"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|k| k["path"].as_str())
            .collect();
        for f in [
            "/etc/ld.so.cache",
            "/etc/ld.so.conf",
            "/usr/local/lib/libchk.so.1",
        ] {
            assert!(kept.contains(&f), "{f} not kept: {policies:?}");
        }
        // The loader finds libchk.so.1 through the cache alone (/usr/local/lib is in
        // none of its default folders), from /usr/local/bin and from the build tree.
        assert_eq!(
            in_docker(tag, "/usr/local/bin/zcrc", &["abc"]),
            "crc32(abc) = 352441c2\n"
        );
        assert_eq!(
            run(docker().args(["run", "--rm", "--network", "none", tag, "xyz"])).stdout,
            b"crc32(xyz) = eb8eba67\n"
        );
        assert_eq!(
            in_docker(tag, "/src/zcrc", &["abc"]),
            "crc32(abc) = 352441c2\n"
        );
        run(docker().args(["rmi", tag]));
    }
    // Closure with the other shipped policies that compute deletions of their own
    // (package removal, npm pruning, Python metadata): each agrees with it, nothing
    // broken and no file rewritten that closure deleted.
    for p in ["toolchain", "node", "python", "default"] {
        run(ocislim()
            .args(["squash", "--dry-run", "--policy", "closure", "--policy", p])
            .arg(&layout));
    }
}

/// The same on an apk image, musl's loader searching: a program no package owns
/// (`/app/greet`, built with Debian's musl-gcc) loads `libgreet.so.1`, which only
/// `greet-dev` (in the world) pulled in. Removing greet-dev would take libgreet, as
/// `apk del` does; it stays, kept for the program, which runs under Docker. Naming
/// libgreet in `remove` is refused with the file.
#[test]
fn an_apk_removal_keeps_the_library_a_musl_program_loads() {
    let w = scratch();
    let src = w.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(
        src.join("greet.c"),
        "const char *greeting(void) { return \"hello from libgreet\"; }\n",
    )
    .unwrap();
    std::fs::write(
        src.join("main.c"),
        "#include <stdio.h>\nconst char *greeting(void);\nint main(void) { puts(greeting()); return 0; }\n",
    )
    .unwrap();
    run(Command::new("musl-gcc").current_dir(&src).args([
        "-shared",
        "-fPIC",
        "-Wl,-soname,libgreet.so.1",
        "-o",
        "libgreet.so.1",
        "greet.c",
    ]));
    std::os::unix::fs::symlink("libgreet.so.1", src.join("libgreet.so")).unwrap();
    run(Command::new("musl-gcc")
        .current_dir(&src)
        .args(["-o", "greet", "main.c", "-L.", "-lgreet"]));
    let installed = concat!(
        "C:Q1musl=\nP:musl\nV:1.2.3-r0\nA:x86_64\np:so:libc.musl-x86_64.so.1=1\nF:lib\nR:ld-musl-x86_64.so.1\nR:libc.musl-x86_64.so.1\n\n",
        "C:Q1lib=\nP:libgreet\nV:1.0-r0\nA:x86_64\np:so:libgreet.so.1=1.0\nF:usr/lib\nR:libgreet.so.1\n\n",
        "C:Q1dev=\nP:greet-dev\nV:1.0-r0\nA:x86_64\nD:so:libgreet.so.1\nF:usr/lib\nR:libgreet.so\nF:usr/include\nR:greet.h\n\n",
    );
    let spec = format!(
        concat!(
            "tag apk-native:1\nconfig Entrypoint=[\"/app/greet\"]\nlayer\n",
            "dir lib\nfile lib/ld-musl-x86_64.so.1 from=/lib/x86_64-linux-musl/libc.so mode=0755\n",
            "symlink lib/libc.musl-x86_64.so.1 -> ld-musl-x86_64.so.1\n",
            "dir usr/lib\nfile usr/lib/libgreet.so.1 from={lib} mode=0755\n",
            "symlink usr/lib/libgreet.so -> libgreet.so.1\nfile usr/include/greet.h \"const char *greeting(void);\\n\"\n",
            "file app/greet from={prog} mode=0755\n",
            "file etc/apk/world \"musl\\ngreet-dev\\n\"\n",
            "file lib/apk/db/installed \"{installed}\"\n",
        ),
        lib = src.join("libgreet.so.1").display(),
        prog = src.join("greet").display(),
        installed = installed.replace('\n', "\\n"),
    );
    let dir = w.path().join("img");
    Spec::parse(&spec).write_layout(&dir, false);
    let tag = "ocislim-test/apk-native:slim";
    let (out, r) = squash_with_policy(
        w.path(),
        &dir,
        "[packages]\nremove = [\"greet-dev\"]\n",
        tag,
    );
    assert_eq!(r["packages"]["removed"], serde_json::json!(["greet-dev"]));
    assert_eq!(r["packages"]["autoremoved"], serde_json::json!([]));
    assert_eq!(
        kept_for_files(&r),
        [(
            "libgreet".into(),
            "/app/greet".into(),
            "libgreet.so.1".into()
        )]
    );
    run(docker().arg("load").arg("-i").arg(&out));
    let ran = run(docker().args(["run", "--rm", "--network", "none", tag]));
    run(docker().args(["rmi", tag]));
    assert_eq!(
        String::from_utf8_lossy(&ran.stdout),
        "hello from libgreet\n"
    );

    let policy = w.path().join("libgreet.toml");
    std::fs::write(
        &policy,
        "[packages]\nremove = [\"libgreet\", \"greet-dev\"]\n",
    )
    .unwrap();
    let (code, err) = run_fail(
        ocislim()
            .args(["squash", "--dry-run", "--policy"])
            .arg(&policy)
            .arg(&dir),
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("libgreet is needed by /app/greet (libgreet.so.1)"),
        "{err}"
    );
}
