//! Docker accepts what we write: `docker load` into a real engine, then `docker run`.

use crate::fixtures;
use crate::tools::*;
use std::process::{Command, Stdio};

fn run_image(tag: &str) -> String {
    let out = run(docker().args(["run", "--rm", "--network", "none", tag]));
    String::from_utf8(out.stdout).unwrap()
}

/// The busybox fixture plus a top layer naming `who`, so that each test's image has a
/// layer the engine has not seen and must really apply.
fn busybox_with(who: &str, work: &std::path::Path) -> std::path::PathBuf {
    let text = std::fs::read_to_string(fixtures::fixtures_dir().join("busybox.spec")).unwrap();
    let text = format!("{text}layer \"mark\"\nfile etc/who \"{who}\"\n");
    let dir = work.join("busybox.oci");
    crate::builder::Spec::parse(&text).write_layout(&dir, false);
    dir
}

/// Docker judges the gzip and plain layers ocislim writes. Debian 12's Engine 20.10.24
/// applies no zstd layer, ocislim's or skopeo's, loaded or pulled ("archive/tar: invalid
/// tar header"; zstd came with Engine 23). A pull can seem to work when layers of the
/// same diff_ids are already in the engine (it then applies nothing), so each layer
/// here is new to the engine. podman judges zstd (`builders.rs`).
#[test]
fn docker_loads_and_runs_gzip_and_plain_and_engine_20_10_refuses_any_zstd() {
    let w = scratch();
    for codec in ["gzip", "none"] {
        let layout = busybox_with(&format!("load-{codec}"), &w.path().join(codec));
        let tag = format!("ocislim-test/bb-{codec}:1");
        let out = w.path().join(format!("bb-{codec}.tar"));
        run(ocislim()
            .args(["convert"])
            .arg(&layout)
            .args(["--compression", codec, "--tag", &tag, "-o"])
            .arg(&out)
            .args(["--format", "docker-archive"]));
        let loaded = run(docker().args(["load", "-i"]).arg(&out));
        assert!(
            String::from_utf8_lossy(&loaded.stdout).contains(&tag),
            "{loaded:?}"
        );
        assert_eq!(
            run_image(&tag),
            "fixture-ok\nmotd from layer 2\n",
            "{codec}"
        );
        run(docker().args(["rmi", &tag]));
    }
    // The README says Engine 20.10 cannot apply zstd: this shows it, for skopeo's zstd
    // as for ocislim's, so that an engine that learns it makes the README change.
    let layout = busybox_with("zstd-refused", &w.path().join("zstd"));
    let ours = w.path().join("ours.tar");
    run(ocislim()
        .args([
            "convert",
            "--compression",
            "zstd",
            "--format",
            "docker-archive",
        ])
        .arg(&layout)
        .arg("-o")
        .arg(&ours));
    let skopeo_layout = w.path().join("skopeo-zstd");
    run(Command::new("skopeo")
        .args([
            "copy",
            "--quiet",
            "--dest-compress",
            "--dest-compress-format",
            "zstd",
        ])
        .arg(format!("oci:{}", layout.display()))
        .arg(format!("oci:{}:z", skopeo_layout.display())));
    let theirs = w.path().join("theirs.tar");
    run(ocislim()
        .args(["convert", "--format", "docker-archive"])
        .arg(format!("oci:{}:z", skopeo_layout.display()))
        .arg("-o")
        .arg(&theirs));
    for archive in [&ours, &theirs] {
        let (_, err) = run_fail(docker().args(["load", "-i"]).arg(archive));
        assert!(err.contains("invalid tar header"), "{err}");
    }
}

#[test]
fn docker_save_piped_through_ocislim_loads_back() {
    let w = scratch();
    let layout = busybox_with("pipe", w.path());
    let first = w.path().join("first.tar");
    run(ocislim()
        .args(["convert"])
        .arg(&layout)
        .args(["--tag", "ocislim-test/pipe-src:1", "-o"])
        .arg(&first)
        .args(["--format", "docker-archive"]));
    run(docker().args(["load", "-i"]).arg(&first));
    // docker save | ocislim convert - -o - | docker load, with real pipes.
    pipe(
        "ocislim-test/pipe-src:1",
        &[
            "convert",
            "-",
            "-o",
            "-",
            "--compression",
            "gzip",
            "--tag",
            "ocislim-test/pipe-out:1",
        ],
    );
    assert_eq!(
        run_image("ocislim-test/pipe-out:1"),
        "fixture-ok\nmotd from layer 2\n"
    );
    // docker save | ocislim squash - -o - | docker load: the default policy, one layer.
    pipe(
        "ocislim-test/pipe-src:1",
        &["squash", "-", "-o", "-", "--tag", "ocislim-test/pipe-sq:1"],
    );
    assert_eq!(
        run_image("ocislim-test/pipe-sq:1"),
        "fixture-ok\nmotd from layer 2\n"
    );
    run(docker().args(["rmi", "ocislim-test/pipe-sq:1"]));
    // The image ID survives conversion: the config is copied byte for byte.
    let id = |t: &str| {
        String::from_utf8(run(docker().args(["image", "inspect", "-f", "{{.Id}}", t])).stdout)
            .unwrap()
    };
    assert_eq!(id("ocislim-test/pipe-src:1"), id("ocislim-test/pipe-out:1"));
    // The README's headline without --tag: the slim image is loaded as NAME:TAG-slim,
    // and the input keeps its ID and its tag.
    let input = id("ocislim-test/pipe-src:1");
    pipe("ocislim-test/pipe-src:1", &["squash", "-", "-o", "-"]);
    assert_eq!(id("ocislim-test/pipe-src:1"), input);
    assert_ne!(id("ocislim-test/pipe-src:1-slim"), input);
    assert_eq!(
        run_image("ocislim-test/pipe-src:1-slim"),
        "fixture-ok\nmotd from layer 2\n"
    );
    // docker-daemon:NAME means NAME:latest, as `docker run NAME` does, though the
    // repository holds two images now (1 and 1-slim).
    run(docker().args([
        "tag",
        "ocislim-test/pipe-src:1",
        "ocislim-test/pipe-src:latest",
    ]));
    let out = run(Command::new(OCISLIM).args([
        "inspect",
        "--json",
        "docker-daemon:ocislim-test/pipe-src",
    ]));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["tags"],
        serde_json::json!(["ocislim-test/pipe-src:latest"])
    );
    run(docker().args([
        "rmi",
        "ocislim-test/pipe-src:1-slim",
        "ocislim-test/pipe-src:latest",
    ]));
    run(docker().args(["rmi", "ocislim-test/pipe-src:1", "ocislim-test/pipe-out:1"]));
}

/// `docker save SOURCE | ocislim ARGS | docker load`, with real pipes.
fn pipe(source: &str, args: &[&str]) {
    let mut save = docker()
        .args(["save", source])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut slim = Command::new(OCISLIM)
        .arg("-q")
        .args(args)
        .stdin(save.stdout.take().unwrap())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let load = docker()
        .arg("load")
        .stdin(slim.stdout.take().unwrap())
        .output()
        .unwrap();
    assert!(
        save.wait().unwrap().success() && slim.wait().unwrap().success(),
        "{args:?}"
    );
    assert!(
        load.status.success(),
        "{}",
        String::from_utf8_lossy(&load.stderr)
    );
}

/// What Docker's own layer application makes of an image: `docker create` then
/// `docker export`, listed by bsdtar mtree. The paths Docker's init layer adds to
/// every container (`/.dockerenv`, `/etc/hosts`, ...) carry the creation time, so
/// their lines are dropped on both sides. Docker also leaves a directory's mtime at
/// "now" when a whiteout deletes inside it and the layer does not restate the
/// directory; such times (later than `since`) are an artifact of applying, not image
/// content, and read `time=applied`.
pub fn docker_export_listing(tag: &str, work: &std::path::Path) -> String {
    docker_export_listing_since(tag, work, 1_750_000_000)
}

fn docker_export_listing_since(tag: &str, work: &std::path::Path, since: u64) -> String {
    let id = String::from_utf8(
        run(docker().args(["create", "--network", "none", tag, "/nonexistent"])).stdout,
    )
    .unwrap();
    let id = id.trim();
    let tar = work.join(format!("export-{id}.tar"));
    run(docker().args(["export", "-o"]).arg(&tar).arg(id));
    run(docker().args(["rm", id]));
    // Unpacked by GNU tar (bsdtar cannot read the non-UTF-8 PAX names Docker writes),
    // then listed like the umoci bundles.
    let root = work.join(format!("export-{id}"));
    std::fs::create_dir(&root).unwrap();
    run(Command::new("tar")
        .args(["--xattrs", "--xattrs-include=*", "--numeric-owner", "-xpf"])
        .arg(&tar)
        .arg("-C")
        .arg(&root));
    let listing = crate::tools::listing(&root);
    const INIT_LAYER: &[&str] = &[
        "./.dockerenv",
        "./etc/hosts",
        "./etc/hostname",
        "./etc/resolv.conf",
        "./etc/mtab",
        "./dev",
        "./dev/console",
        "./dev/pts",
        "./dev/shm",
        "./proc",
        "./sys",
        "./etc",
        ".",
    ];
    listing
        .lines()
        .filter(|l| !INIT_LAYER.contains(&l.split(' ').next().unwrap_or("")))
        .map(|l| {
            let applied = |f: &str| {
                let t = f.strip_prefix("time=").and_then(|t| t.split('.').next());
                t.and_then(|t| t.parse::<u64>().ok())
                    .is_some_and(|t| t >= since)
                    && l.contains("type=dir")
            };
            let fields: Vec<&str> = l
                .split(' ')
                .map(|f| if applied(f) { "time=applied" } else { f })
                .collect();
            fields.join(" ") + "\n"
        })
        .collect()
}

/// Squashes `src` with `args` into a docker archive tagged `tag` and loads it.
pub fn squash_and_load(src: &std::path::Path, args: &[&str], tag: &str, work: &std::path::Path) {
    let tar = work.join(format!("{}.tar", tag.replace(['/', ':'], "_")));
    run(ocislim()
        .arg("squash")
        .arg(src)
        .args(args)
        .args(["--format", "docker-archive", "--tag", tag, "-o"])
        .arg(&tar));
    run(docker().args(["load", "-i"]).arg(&tar));
}

/// Where either listing has `time=applied` for a directory, the other's time for that
/// path is set to the same: Docker's application time is not image content.
pub fn reconcile(a: &str, b: &str) -> (String, String) {
    let applied: std::collections::BTreeSet<&str> = a
        .lines()
        .chain(b.lines())
        .filter(|l| l.contains("time=applied"))
        .filter_map(|l| l.split(' ').next())
        .collect();
    let fix = |s: &str| -> String {
        s.lines()
            .map(|l| {
                if applied.contains(l.split(' ').next().unwrap_or("")) {
                    l.split(' ')
                        .map(|f| {
                            if f.starts_with("time=") {
                                "time=applied"
                            } else {
                                f
                            }
                        })
                        .collect::<Vec<_>>()
                        .join(" ")
                        + "\n"
                } else {
                    format!("{l}\n")
                }
            })
            .collect()
    };
    (fix(a), fix(b))
}

/// Loads an OCI layout into Docker through skopeo (not through ocislim).
fn load_with_skopeo(layout: &std::path::Path, ref_name: &str, tag: &str, work: &std::path::Path) {
    let tar = work.join(format!("{}.tar", tag.replace(['/', ':'], "_")));
    run(Command::new("skopeo")
        .args(["copy", "--quiet"])
        .arg(format!("oci:{}:{ref_name}", layout.display()))
        .arg(format!("docker-archive:{}:{tag}", tar.display())));
    run(docker().args(["load", "-i"]).arg(&tar));
}

#[test]
fn docker_applies_original_and_squashed_hard_cases_to_the_same_filesystem() {
    let w = scratch();
    let hard = std::fs::read_to_string(fixtures::fixtures_dir().join("hard-cases.spec")).unwrap();
    let mut cases: Vec<(&str, &str)> = crate::squash::CASES.to_vec();
    cases.push(("hard_cases_spec", &hard));
    // Docker 20.10 applies a whiteout listed after a same-named entry of its own layer
    // to that entry (it deletes `b` in `file b, .wh.b`); image-spec `layer.md` says
    // whiteouts "MUST only apply to resources in lower/parent layers", and umoci and
    // ocislim follow it. That case is judged by umoci alone (squash.rs); here it is
    // only checked that Docker disagrees, so a change in Docker shows up.
    let docker_deviates =
        "whiteout_and_same_named_entry_in_one_layer_in_either_order_keeps_the_entry";
    for (i, (name, spec)) in cases.iter().enumerate() {
        let dir = w.path().join(format!("case{i}"));
        let spec = crate::builder::Spec::parse(spec);
        spec.write_layout(&dir.join("orig.oci"), false);
        let orig_tag = format!("ocislim-test/orig-{i}:1");
        if *name == "duplicate_and_dot_prefixed_entries_last_one_wins" {
            // Docker refuses the original ("duplicates of file paths not supported"),
            // so it cannot judge; umoci does (squash.rs). Docker loads our output.
            squash_and_load(
                &dir.join("orig.oci"),
                &["--policy", "none"],
                "ocislim-test/dups:1",
                &dir,
            );
            run(docker().args(["rmi", "ocislim-test/dups:1"]));
            continue;
        }
        load_with_skopeo(
            &dir.join("orig.oci"),
            spec.tag.rsplit_once(':').unwrap().1,
            &orig_tag,
            &dir,
        );
        let want = docker_export_listing(&orig_tag, &dir);
        for keep in [0, 1] {
            let sq_tag = format!("ocislim-test/sq-{i}-{keep}:1");
            squash_and_load(
                &dir.join("orig.oci"),
                &["--policy", "none", "--keep-layers", &keep.to_string()],
                &sq_tag,
                &dir,
            );
            let (want, got) = reconcile(&want, &docker_export_listing(&sq_tag, &dir));
            if *name == docker_deviates {
                assert!(
                    !want.contains("./b ") && got.contains("./b "),
                    "Docker now follows the spec here; judge this case too\n{want}"
                );
                run(docker().args(["rmi", &sq_tag]));
                continue;
            }
            assert!(
                got == want,
                "{name}, keep {keep}: Docker sees different filesystems (- original, + squashed)\n{}",
                diff(&want, &got)
            );
            run(docker().args(["rmi", &sq_tag]));
        }
        run(docker().args(["rmi", &orig_tag]));
    }
}

#[test]
fn docker_runs_the_squashed_busybox_image() {
    let w = scratch();
    let layout = busybox_with("squash", w.path());
    squash_and_load(
        &layout,
        &["--policy", "none"],
        "ocislim-test/bb-squashed:1",
        w.path(),
    );
    assert_eq!(
        run_image("ocislim-test/bb-squashed:1"),
        "fixture-ok\nmotd from layer 2\n"
    );
    let layers = docker_layer_count("ocislim-test/bb-squashed:1");
    assert_eq!(layers.trim(), "1");
    run(docker().args(["rmi", "ocislim-test/bb-squashed:1"]));
}

/// `bench --check --smoke`: per policy, whether the dependency check finds a reference
/// the policy broke, and whether a command still runs in the slimmed image under
/// Docker. A policy deleting busybox breaks `/bin/sh` (and so the command); `none`
/// breaks nothing.
#[test]
fn bench_check_and_smoke_columns_say_whether_each_slimmed_image_still_works() {
    let w = scratch();
    let layout = busybox_with("bench-smoke", w.path());
    let policy = w.path().join("no-busybox.toml");
    std::fs::write(
        &policy,
        "[[rule]]\nid = \"busybox\"\ndelete = [\"bin/busybox\"]\n",
    )
    .unwrap();
    let out = run(ocislim()
        .arg("bench")
        .arg(&layout)
        .args(["--policy", "none", "--policy"])
        .arg(&policy)
        .args(["--check", "--smoke", "cat /etc/motd", "--format", "json"]));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = r["rows"].as_array().unwrap();
    assert_eq!(rows[0]["check"], "ok");
    assert_eq!(rows[0]["smoke"], "ok");
    let check = rows[1]["check"].as_str().unwrap();
    assert!(
        check.contains("broken") && check.contains("bin/busybox"),
        "{check}"
    );
    let smoke = rows[1]["smoke"].as_str().unwrap();
    assert!(smoke.starts_with("failed"), "{smoke}");
    // The table names the columns.
    let out = run(ocislim().arg("bench").arg(&layout).args([
        "--policy",
        "none",
        "--check",
        "--report-format",
        "csv",
    ]));
    let csv = String::from_utf8_lossy(&out.stdout);
    assert!(csv.lines().next().unwrap().ends_with(",check"), "{csv}");
}

/// The README's headline command, read from the README and run as a user runs it (a
/// shell pipeline, stderr a pipe as in a CI log) against the private engine: the slim
/// image is loaded under the name it was given, and the input keeps its ID and tag.
#[test]
fn the_readme_headline_command_runs_end_to_end_and_leaves_the_input_alone() {
    let w = scratch();
    let layout = busybox_with("headline", w.path());
    let archive = w.path().join("app.tar");
    run(ocislim()
        .arg("convert")
        .arg(&layout)
        .args([
            "--tag",
            "ocislim-test/headline:1",
            "--format",
            "docker-archive",
            "-o",
        ])
        .arg(&archive));
    run(docker().args(["load", "-i"]).arg(&archive));
    let id = |t: &str| {
        String::from_utf8(run(docker().args(["image", "inspect", "-f", "{{.Id}}", t])).stdout)
            .unwrap()
    };
    let input = id("ocislim-test/headline:1");
    let readme =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
            .unwrap();
    let headline = readme
        .lines()
        .find(|l| l.starts_with("docker save app:1 | ocislim squash"))
        .expect("the README shows the headline pipeline");
    let command = headline.replace("app:1", "ocislim-test/headline:1");
    let bin = std::path::Path::new(OCISLIM).parent().unwrap();
    let out = run(Command::new("sh")
        .args(["-c", &format!("set -e; {command}")])
        .env(
            "PATH",
            format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
        ));
    let err = String::from_utf8_lossy(&out.stderr);
    // A CI log gets plain progress lines and the summary.
    assert!(
        err.contains("s] read stdin: streaming") && err.contains("saved:"),
        "{err}"
    );
    assert_eq!(
        id("ocislim-test/headline:1"),
        input,
        "the input keeps its ID"
    );
    assert_ne!(id("ocislim-test/headline:1-slim"), input);
    assert_eq!(
        run_image("ocislim-test/headline:1-slim"),
        "fixture-ok\nmotd from layer 2\n"
    );
    run(docker().args([
        "rmi",
        "ocislim-test/headline:1",
        "ocislim-test/headline:1-slim",
    ]));
}
