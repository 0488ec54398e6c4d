//! `squash --cache`: a cached run writes exactly what an uncached run writes, whatever
//! the cache holds (garbage, truncated entries, what a killed run left, what a
//! concurrent run is writing), and reuses what did not change: the layers it holds are
//! not decompressed, the squashed layers it holds are not compressed again, and the
//! same input with the same options again reads no layer at all.

use crate::builder::Spec;
use crate::tools::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Three layers (a base, dependencies, the app `app`), big enough that a run takes a
/// while to write (a kill lands mid-write).
fn image(dir: &Path, app: &str) {
    let spec = format!(
        r#"tag c:1
layer "/bin/sh -c #(nop) ADD file:base in / "
dir usr mode=0755
dir usr/lib mode=0755
dir usr/share mode=0755
dir usr/share/doc mode=0755
dir usr/share/doc/base mode=0755
file usr/share/doc/base/README size=5000
file usr/lib/libbase.so size=6000000:1
file usr/lib/libbase2.so size=6000000:2
layer "RUN /bin/sh -c apt-get install deps # buildkit"
dir var mode=0755
dir var/cache mode=0755
dir var/cache/apt mode=0755
dir var/cache/apt/archives mode=0755
file var/cache/apt/archives/dep.deb size=50000
file usr/lib/libdep.so size=6000000:3
layer "COPY . /app # buildkit"
dir app mode=0755
file app/main "{app}"
file app/data size=2000000:4
whiteout var/cache/apt/archives/dep.deb
"#
    );
    Spec::parse(&spec).write_layout(dir, false);
}

/// `ocislim squash SRC --layer-groups 1,2 ... -o OUT` with `extra` arguments; its
/// report.
fn squash(src: &Path, out: &Path, extra: &[&str]) -> Value {
    json_report(&mut squash_cmd(src, out, extra))
}

fn squash_cmd(src: &Path, out: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(OCISLIM);
    cmd.arg("squash")
        .arg(src)
        .args(["--policy", "default", "--layer-groups", "1,2", "--json"])
        .args(["--progress", "none", "--format", "oci", "--tag", "c:1"])
        .args(extra)
        .arg("-o")
        .arg(out);
    cmd
}

/// Every file under `dir`, by relative path, with its bytes.
fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out: Vec<(PathBuf, Vec<u8>)> = walk(dir)
        .into_iter()
        .map(|p| {
            (
                p.strip_prefix(dir).unwrap().to_path_buf(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Asserts two layouts hold the same files, byte for byte.
fn assert_same(want: &Path, got: &Path, what: &str) {
    let (a, b) = (files(want), files(got));
    let names = |v: &[(PathBuf, Vec<u8>)]| v.iter().map(|f| f.0.clone()).collect::<Vec<_>>();
    assert_eq!(names(&a), names(&b), "{what}: not the same files");
    for ((p, x), (_, y)) in a.iter().zip(&b) {
        assert!(x == y, "{what}: {} differs", p.display());
    }
}

fn list(v: &Value) -> Vec<u64> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|n| n.as_u64().unwrap())
        .collect()
}

/// The two inputs (app `1` and app `2`) and their uncached squashes.
struct Inputs {
    w: tempfile::TempDir,
    a: PathBuf,
    b: PathBuf,
    ref_a: PathBuf,
    ref_b: PathBuf,
}

fn inputs() -> Inputs {
    let w = scratch();
    let (a, b) = (w.path().join("a.oci"), w.path().join("b.oci"));
    image(&a, "one");
    image(&b, "two");
    let (ref_a, ref_b) = (w.path().join("ref-a"), w.path().join("ref-b"));
    let r = squash(&a, &ref_a, &[]);
    assert!(r.get("cache").is_none(), "no cache without --cache: {r:#}");
    squash(&b, &ref_b, &[]);
    Inputs {
        w,
        a,
        b,
        ref_a,
        ref_b,
    }
}

#[test]
fn a_cached_run_writes_what_an_uncached_one_does_and_reuses_what_did_not_change() {
    let t = inputs();
    let cache = t.w.path().join("cache");
    let c = ["--cache", cache.to_str().unwrap()];
    let out = |n: &str| t.w.path().join(n);
    // Cold: nothing reused, everything kept.
    let r = squash(&t.a, &out("cold"), &c);
    assert_same(&t.ref_a, &out("cold"), "cold");
    assert_eq!(list(&r["cache"]["layers_reused"]), Vec::<u64>::new());
    assert_eq!(list(&r["cache"]["groups_reused"]), Vec::<u64>::new());
    assert_eq!(r["cache"]["result_reused"], false);
    let cold = r;
    // The same input again: the whole result from the cache, no layer read, the same
    // report but for what it says of the cache.
    let r = squash(&t.a, &out("warm"), &c);
    assert_same(&t.ref_a, &out("warm"), "warm");
    assert_eq!(r["cache"]["result_reused"], true, "{:#}", r["cache"]);
    assert_eq!(list(&r["cache"]["layers_reused"]), Vec::<u64>::new());
    assert_eq!(list(&r["cache"]["groups_reused"]), [1, 2, 3]);
    assert!(
        r["groups"]
            .as_array()
            .unwrap()
            .iter()
            .all(|g| g["reused"] == true)
    );
    let without_cache = |v: &Value| {
        let mut v = v.clone();
        v.as_object_mut().unwrap().remove("cache");
        for g in v["groups"].as_array_mut().unwrap() {
            g.as_object_mut().unwrap().remove("reused");
        }
        v
    };
    assert_eq!(without_cache(&r), without_cache(&cold));
    // Other options are another result: every layer read from the cache (none
    // decompressed), every group reused, as the options leave the groups' bytes alone.
    let r = squash(&t.a, &out("named"), &[c[0], c[1], "--tag", "c:2"]);
    assert_eq!(r["cache"]["result_reused"], false);
    assert_eq!(list(&r["cache"]["layers_reused"]), [1, 2, 3]);
    assert_eq!(list(&r["cache"]["groups_reused"]), [1, 2, 3]);
    // A rebuild that changed the app: only its layer decompressed, its group written.
    let r = squash(&t.b, &out("rebuilt"), &c);
    assert_same(&t.ref_b, &out("rebuilt"), "rebuilt");
    assert_eq!(list(&r["cache"]["layers_reused"]), [1, 2]);
    assert_eq!(list(&r["cache"]["groups_reused"]), [1, 2]);
    assert_eq!(r["cache"]["result_reused"], false);
    // The text summary says so.
    let text = run(Command::new(OCISLIM)
        .arg("squash")
        .arg(&t.b)
        .args([
            "--policy",
            "default",
            "--layer-groups",
            "1,2",
            "--progress",
            "none",
            "--format",
            "oci",
            "--tag",
            "c:1",
        ])
        .args(c)
        .arg("-o")
        .arg(out("text")));
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    assert!(
        text.contains("the whole result from it, no layer read"),
        "{text}"
    );
    assert!(text.contains("group 3 (layers 3-3): "), "{text}");
    // $OCISLIM_CACHE turns it on; --cache alone means $XDG_CACHE_HOME/ocislim.
    let r = json_report(squash_cmd(&t.b, &out("env"), &[]).env("OCISLIM_CACHE", &cache));
    assert_eq!(r["cache"]["dir"], cache.to_str().unwrap());
    assert_eq!(r["cache"]["result_reused"], true);
    let xdg = t.w.path().join("xdg");
    let r = json_report(
        squash_cmd(&t.b, &out("xdg-out"), &["--cache"])
            .env_remove("OCISLIM_CACHE")
            .env("XDG_CACHE_HOME", &xdg),
    );
    assert_eq!(r["cache"]["dir"], xdg.join("ocislim").to_str().unwrap());
    assert_same(&t.ref_b, &out("xdg-out"), "xdg");
    // A folder that cannot be one: a usage error naming it, before any work.
    let (code, err) = run_fail(&mut squash_cmd(
        &t.b,
        &out("never"),
        &["--cache", "/proc/version/x"],
    ));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("/proc/version/x"), "{err}");
    assert!(!out("never").exists());
    // --cache-max: the least recently used entries go, the output is the same.
    let r = squash(&t.b, &out("small"), &[c[0], c[1], "--cache-max", "1M"]);
    assert_same(&t.ref_b, &out("small"), "bounded");
    assert!(
        r["cache"]["size"].as_u64().unwrap() <= 1 << 20,
        "{:#}",
        r["cache"]
    );
    assert!(r["cache"]["evicted_bytes"].as_u64().unwrap() > 0);
    let held: u64 = walk(&cache)
        .iter()
        .map(|p| p.metadata().unwrap().len())
        .sum();
    assert!(held <= 1 << 20, "{held} bytes left");
}

#[test]
fn garbage_truncation_kills_and_a_concurrent_run_change_no_output() {
    let t = inputs();
    let cache = t.w.path().join("cache");
    let c = ["--cache", cache.to_str().unwrap()];
    let out = |n: &str| t.w.path().join(n);
    squash(&t.a, &out("fill"), &c);
    // Every entry garbage: each dropped, redone, the output the same.
    let entries = walk(&cache);
    assert!(entries.len() >= 9, "{entries:?}");
    for p in &entries {
        std::fs::write(p, b"garbage\n").unwrap();
    }
    let r = squash(&t.a, &out("garbage"), &c);
    // The whole result's record, three plain tars, three groups' records.
    assert_same(&t.ref_a, &out("garbage"), "garbage");
    assert_eq!(list(&r["cache"]["layers_reused"]), Vec::<u64>::new());
    assert_eq!(list(&r["cache"]["groups_reused"]), Vec::<u64>::new());
    assert_eq!(
        r["cache"]["dropped"].as_array().unwrap().len(),
        7,
        "{:#}",
        r["cache"]
    );
    // Every entry cut in half.
    for p in walk(&cache) {
        let len = p.metadata().unwrap().len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .unwrap()
            .set_len(len / 2)
            .unwrap();
    }
    let r = squash(&t.a, &out("truncated"), &c);
    assert_same(&t.ref_a, &out("truncated"), "truncated");
    assert_eq!(list(&r["cache"]["groups_reused"]), Vec::<u64>::new());
    // Runs killed at points through their work, then one that finishes.
    std::fs::remove_dir_all(&cache).unwrap();
    for (i, ms) in [30, 100, 200, 350, 500, 700].into_iter().enumerate() {
        let mut child = squash_cmd(&t.b, &out(&format!("killed{i}")), &c)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(ms));
        let _ = child.kill();
        child.wait().unwrap();
    }
    squash(&t.b, &out("after-kills"), &c);
    assert_same(&t.ref_b, &out("after-kills"), "after kills");
    let r = squash(&t.b, &out("after-kills2"), &c);
    assert_same(&t.ref_b, &out("after-kills2"), "after kills, again");
    assert_eq!(r["cache"]["result_reused"], true);
    // Two runs at once on a new cache, of the two inputs, then both again at once.
    let shared = t.w.path().join("shared");
    let s = ["--cache", shared.to_str().unwrap()];
    for round in 0..2 {
        let (oa, ob) = (out(&format!("ca{round}")), out(&format!("cb{round}")));
        let mut a = squash_cmd(&t.a, &oa, &s)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let mut b = squash_cmd(&t.b, &ob, &s)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        assert!(a.wait().unwrap().success() && b.wait().unwrap().success());
        assert_same(&t.ref_a, &oa, "concurrent a");
        assert_same(&t.ref_b, &ob, "concurrent b");
    }
    let r = squash(&t.a, &out("after-concurrent"), &s);
    assert_eq!(r["cache"]["result_reused"], true);
    assert_same(&t.ref_a, &out("after-concurrent"), "after concurrent runs");
}
