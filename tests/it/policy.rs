//! Policies on real unpackings: the golden effect of every shipped policy on the test
//! images, the fidelity oracle (the original's root filesystem minus exactly the paths
//! the report lists equals the squashed one, both unpacked by umoci), hard links under
//! deletion, and bad policies refused before any image byte is read.

use crate::builder::Spec;
use crate::fixtures;
use crate::squash::{blob, manifest};
use crate::tools::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

const BUILTIN: [&str; 10] = [
    "default",
    "aggressive",
    "apt",
    "docs",
    "locales",
    "python",
    "node",
    "headers",
    "logs",
    "caches",
];

pub fn report(layout: &Path, out: Option<&Path>, args: &[&str]) -> Value {
    let mut cmd = ocislim();
    cmd.arg("squash").arg(layout).arg("--json").args(args);
    match out {
        Some(o) => cmd
            .args(["--format", "oci", "--tag", "slim:1", "-o"])
            .arg(o),
        None => cmd.arg("--dry-run"),
    };
    // `-q` hides the human report; --json goes through --report here.
    let rep = layout
        .parent()
        .unwrap()
        .join(format!("report-{}.json", std::process::id()));
    cmd.arg("--report").arg(&rep);
    run(&mut cmd);
    serde_json::from_slice(&std::fs::read(&rep).unwrap()).unwrap()
}

#[test]
fn shipped_policies_golden_effect_on_the_test_images() {
    let w = scratch();
    let mut golden = String::from(
        "# image policy: rule files reclaimed_bytes hidden_bytes (regenerate: OCISLIM_REGENERATE=1)\n",
    );
    let mut earned: BTreeMap<&str, u64> = BTreeMap::new();
    for image in ["small", "hard-cases", "waste"] {
        let layout = fixtures::layout(image, w.path());
        for policy in BUILTIN {
            let r = report(&layout, None, &["--policy", policy]);
            for rule in r["policy"]["rules"].as_array().unwrap() {
                let files = rule["files"].as_u64().unwrap();
                *earned.entry(policy).or_default() += files;
                if files > 0 {
                    golden += &format!(
                        "{image} {policy}: {} {files} {} {}\n",
                        rule["id"].as_str().unwrap(),
                        rule["reclaimed_bytes"],
                        rule["hidden_bytes"]
                    );
                }
            }
        }
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/policies.txt");
    if std::env::var_os("OCISLIM_REGENERATE").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &golden).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap();
    assert!(
        want == golden,
        "policy effects changed (- golden, + now):\n{}",
        diff(&want, &golden)
    );
    for p in BUILTIN {
        assert!(
            earned[p] > 0,
            "policy {p} deletes nothing on any test image"
        );
    }
}

/// A path as bsdtar's mtree writer names it: spaces, `#`, backslashes and other bytes
/// outside printable ASCII as `\ooo`.
fn mtree_name(p: &str) -> String {
    p.bytes()
        .map(|b| match b {
            b'!'..=b'~' if b != b'\\' && b != b'#' => (b as char).to_string(),
            _ => format!("\\{b:03o}"),
        })
        .collect()
}

/// The listing of `rootfs` without the given paths (and, for subtrees, what is under
/// them), with nlink dropped: hard-link groups are compared separately.
fn without(listing: &str, deleted: &[(String, bool)]) -> String {
    let files = listing.split(GROUPS_HEADER).next().unwrap();
    let deleted: Vec<(String, bool)> = deleted
        .iter()
        .map(|(d, sub)| (mtree_name(d), *sub))
        .collect();
    files
        .lines()
        .filter(|l| {
            let p = l.split(' ').next().unwrap_or("");
            !deleted.iter().any(|(d, sub)| {
                p == format!("./{d}") || (*sub && p.starts_with(&format!("./{d}/")))
            })
        })
        .map(|l| {
            l.split(' ')
                .filter(|f| !f.starts_with("nlink="))
                .collect::<Vec<_>>()
                .join(" ")
                + "\n"
        })
        .collect()
}

/// `listing` with the files the report says the policy rewrote (package databases,
/// dpkg filters) compared by their metadata only (their size and digest dropped), and
/// those that `orig` does not list (written anew) left out.
fn masked(listing: &str, r: &Value, orig: &str) -> String {
    let rewritten: Vec<String> = r["rewritten"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|p| format!(".{}", p.as_str().unwrap()))
                .collect()
        })
        .unwrap_or_default();
    let in_orig = |p: &str| orig.lines().any(|l| l.split(' ').next() == Some(p));
    listing
        .lines()
        .filter_map(|l| {
            let p = l.split(' ').next().unwrap_or("");
            if !rewritten.iter().any(|w| w == p) {
                return Some(format!("{l}\n"));
            }
            if !in_orig(p) {
                return None;
            }
            let kept: Vec<&str> = l
                .split(' ')
                .filter(|f| !f.starts_with("size=") && !f.starts_with("sha256"))
                .collect();
            Some(kept.join(" ") + "\n")
        })
        .collect()
}

pub fn deleted_paths(r: &Value) -> Vec<(String, bool)> {
    r["policy"]["deleted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["path"].as_str().unwrap().to_string(),
                d["subtree"].as_bool().unwrap(),
            )
        })
        .collect()
}

/// Squashes `layout` with `args` and checks the oracle; returns the report and the
/// squashed root filesystem's listing.
pub fn assert_only_reported_paths_go(
    layout: &Path,
    tag: &str,
    args: &[&str],
    work: &Path,
    name: &str,
) -> (Value, String) {
    let orig_root = umoci_unpack(layout, tag, work);
    let out = work.join(format!("{name}.oci"));
    let r = report(layout, Some(&out), args);
    let gone = deleted_paths(&r);
    let got_root = umoci_unpack(&out, "1", work);
    let orig = listing(&orig_root);
    let want = masked(&without(&orig, &gone), &r, &orig);
    let got_listing = listing(&got_root);
    let got = masked(&without(&got_listing, &[]), &r, &orig);
    for w in r["rewritten"].as_array().into_iter().flatten() {
        let p = w.as_str().unwrap();
        assert!(
            got_root.join(&p[1..]).exists(),
            "{name}: rewritten {p} is not in the output"
        );
    }
    assert!(
        got == want,
        "{name}: the squashed filesystem is not the original minus the reported paths (- expected, + got)\n{}",
        diff(&want, &got)
    );
    assert_eq!(
        link_groups(&got_root, &[]),
        link_groups(&orig_root, &gone),
        "{name}: hard-link groups differ"
    );
    std::fs::remove_dir_all(orig_root.parent().unwrap()).unwrap();
    (r, got_listing)
}

#[test]
fn fidelity_oracle_original_minus_reported_paths_equals_the_squashed_image() {
    let w = scratch();
    let layout = fixtures::layout("waste", w.path());
    for policy in ["default", "aggressive"] {
        for keep in ["0", "1", "3"] {
            let name = format!("{policy}-keep{keep}");
            let (r, _) = assert_only_reported_paths_go(
                &layout,
                "1",
                &["--policy", policy, "--keep-layers", keep],
                w.path(),
                &name,
            );
            assert!(
                !r["policy"]["deleted"].as_array().unwrap().is_empty(),
                "{name} deleted nothing"
            );
            if keep != "0" {
                let hidden: u64 = r["policy"]["rules"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x["hidden_bytes"].as_u64().unwrap())
                    .sum();
                assert!(
                    hidden > 0,
                    "{name}: base-layer deletions are reported as hidden"
                );
            }
        }
    }
}

fn spec_layout(spec: &str, w: &Path, name: &str) -> std::path::PathBuf {
    let dir = w.join(format!("{name}.src"));
    Spec::parse(spec).write_layout(&dir, false);
    dir
}

fn policy_file(w: &Path, text: &str) -> String {
    let p = w.join("p.toml");
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

fn rule_total(r: &Value, key: &str) -> u64 {
    r["policy"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x[key].as_u64().unwrap())
        .sum()
}

#[test]
fn policy_deleting_the_data_carrying_name_hands_the_data_to_a_surviving_alias() {
    let w = scratch();
    let p = policy_file(w.path(), "[[rule]]\nid = \"doc\"\ndelete = [\"doc\"]\n");
    // The deleted name carries the data (written first) ...
    let a = spec_layout(
        "layer\ndir doc\nfile doc/big size=5000\ndir lib\nhardlink lib/alias -> doc/big\nlayer\nfile x \"x\"\n",
        w.path(),
        "carrier",
    );
    let (r, l) =
        assert_only_reported_paths_go(&a, "1", &["--policy", &p], w.path(), "carrier-deleted");
    assert!(
        l.lines()
            .any(|x| x.starts_with("./lib/alias ") && x.contains("size=5000")),
        "{l}"
    );
    assert_eq!(
        rule_total(&r, "reclaimed_bytes"),
        0,
        "one name survives: nothing is freed"
    );
    // ... or is the link (written second), in a later layer.
    let b = spec_layout(
        "layer\ndir lib\nfile lib/big size=5000\nlayer\ndir doc\nhardlink doc/alias -> lib/big\n",
        w.path(),
        "alias",
    );
    let (r, l) =
        assert_only_reported_paths_go(&b, "1", &["--policy", &p], w.path(), "alias-deleted");
    assert!(
        l.lines()
            .any(|x| x.starts_with("./lib/big ") && x.contains("size=5000")),
        "{l}"
    );
    assert_eq!(rule_total(&r, "files"), 1);
}

#[test]
fn policy_deleting_every_name_of_a_group_frees_its_bytes_once() {
    let w = scratch();
    let p = policy_file(w.path(), "[[rule]]\nid = \"all\"\ndelete = [\"g\"]\n");
    let a = spec_layout(
        "layer\ndir g\nfile g/a size=4000\nhardlink g/b -> g/a\nhardlink g/c -> g/a\nfile keep \"k\"\n",
        w.path(),
        "group",
    );
    let (r, l) = assert_only_reported_paths_go(&a, "1", &["--policy", &p], w.path(), "group");
    assert!(!l.contains("./g/"), "{l}");
    assert_eq!(rule_total(&r, "reclaimed_bytes"), 4000);
    assert_eq!(rule_total(&r, "files"), 3);
    assert_eq!(
        r["policy"]["deleted"].as_array().unwrap().len(),
        1,
        "the directory stands for its subtree"
    );
}

#[test]
fn policy_deleting_a_base_layer_path_above_a_kept_base_writes_a_whiteout_and_reports_it_hidden() {
    let w = scratch();
    let p = policy_file(w.path(), "[[rule]]\nid = \"doc\"\ndelete = [\"doc/**\"]\n");
    let a = spec_layout(
        "layer\ndir doc\nfile doc/big size=5000\nhardlink alias -> doc/big\nfile doc/small size=100\nlayer\nfile app \"app\"\n",
        w.path(),
        "based",
    );
    let (r, l) = assert_only_reported_paths_go(
        &a,
        "1",
        &["--policy", &p, "--keep-layers", "1"],
        w.path(),
        "based",
    );
    assert!(
        l.lines()
            .any(|x| x.starts_with("./alias ") && x.contains("size=5000")),
        "{l}"
    );
    assert_eq!(
        rule_total(&r, "hidden_bytes"),
        100,
        "doc/small is hidden; doc/big's data lives on as alias"
    );
    assert_eq!(rule_total(&r, "reclaimed_bytes"), 0);
    let out = w.path().join("based.oci");
    let m = manifest(&out);
    let top = m["layers"][1]["digest"].as_str().unwrap();
    let names = run(std::process::Command::new("tar")
        .arg("-tzf")
        .arg(blob(&out, top)));
    let names = String::from_utf8_lossy(&names.stdout);
    // Both of doc's entries are hidden: one opaque marker, or a whiteout each.
    let opaque = names.contains("doc/.wh..wh..opq");
    assert!(
        opaque || (names.contains("doc/.wh.big") && names.contains("doc/.wh.small")),
        "{names}"
    );
}

#[test]
fn bad_policies_are_refused_before_any_image_byte_is_read() {
    let w = scratch();
    // The source does not exist: a policy error proves the policy was checked first.
    // Every policy error is a usage error (exit 2).
    let src = w.path().join("no-such-image.tar");
    let cases: [(&str, &str, i32, &[&str]); 4] = [
        (
            "unknown-preset",
            "",
            2,
            &["unknown policy \"pythn\"", "python", "aggressive"],
        ),
        (
            "glob",
            "[[rule]]\nid = \"bad\"\ndelete = [\"ok/**\", \"a/[b\"]\n",
            2,
            &["p.toml:3", "rule bad", "glob \"a/[b\"", "unclosed"],
        ),
        (
            "key",
            "[[rule]]\nid = \"x\"\ndelete = []\ndeletes = [\"a\"]\n",
            2,
            &["p.toml:4", "unknown field `deletes`"],
        ),
        (
            "cycle",
            "extends = [\"./p.toml\"]\n",
            2,
            &["extends cycle", "p.toml -> "],
        ),
    ];
    for (name, text, code, needles) in cases {
        let policy = if text.is_empty() {
            "pythn".to_string()
        } else {
            policy_file(w.path(), text)
        };
        let (got, err) = run_fail(
            ocislim()
                .arg("squash")
                .arg(&src)
                .args(["--policy", &policy, "-o"])
                .arg(w.path().join("out.tar")),
        );
        assert_eq!(got, code, "{name}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{name}: {err}");
        for n in needles {
            assert!(err.contains(n), "{name}: {err:?} lacks {n:?}");
        }
        assert!(
            !err.contains("no-such-image"),
            "{name}: the image was opened first: {err}"
        );
    }
    // A glob that can never match is a warning, not an error.
    let p = policy_file(w.path(), "[[rule]]\nid = \"w\"\ndelete = [\"doc**\"]\n");
    let out = run(ocislim().args(["policy", "check", &p]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("ok, 1 rules") && text.contains("\"doc**\" can never match"),
        "{text}"
    );
}

/// `policy show NAME` is a policy file: `policy check` accepts it with the same rules,
/// and it deletes what NAME deletes.
#[test]
fn policy_show_prints_a_policy_that_slims_the_same() {
    let w = scratch();
    let fixture = fixtures::fixtures_dir().join("small.tar");
    for p in BUILTIN {
        let shown = w.path().join(format!("{p}.toml"));
        std::fs::write(&shown, run(ocislim().args(["policy", "show", p])).stdout).unwrap();
        let check = |f: &str| {
            let out = run(ocislim().args(["policy", "check", f]));
            let out = String::from_utf8_lossy(&out.stdout).into_owned();
            out.split_once(": ")
                .unwrap()
                .1
                .lines()
                .next()
                .unwrap()
                .to_string()
        };
        assert_eq!(check(shown.to_str().unwrap()), check(p), "{p}");
        if p == "closure" || p == "toolchain" {
            continue; // they read the image's contents; checked above as tables
        }
        let deleted = |policy: &str| {
            let out = run(std::process::Command::new(OCISLIM)
                .args(["squash", "--dry-run", "--json", "--policy", policy])
                .arg(&fixture));
            let r: Value = serde_json::from_slice(&out.stdout).unwrap();
            r["policy"]["deleted"].clone()
        };
        assert_eq!(deleted(shown.to_str().unwrap()), deleted(p), "{p}");
    }
}

#[test]
fn policy_list_and_show_cover_every_builtin() {
    let out = run(ocislim().args(["policy", "list"]));
    let list = String::from_utf8_lossy(&out.stdout);
    for p in BUILTIN {
        assert!(
            list.lines().any(|l| l.starts_with(p)),
            "{p} missing from\n{list}"
        );
        let shown = run(ocislim().args(["policy", "show", p]));
        assert!(
            String::from_utf8_lossy(&shown.stdout).contains("[[rule]]"),
            "{p}"
        );
    }
    let aggressive =
        String::from_utf8_lossy(&run(ocislim().args(["policy", "show", "aggressive"])).stdout)
            .into_owned();
    for id in [
        "apt-lists",
        "doc",
        "pycache",
        "node-modules-extras",
        "headers",
        "locale-messages",
        "logs",
        "tmp",
    ] {
        assert!(
            aggressive.contains(&format!("[[rule]]\nid = \"{id}\"\n")),
            "aggressive lacks {id}"
        );
    }
}

/// `--delete GLOB` and `--keep GLOB` for a one-off, on squash, inspect and bench: a
/// rule `cli-delete` and a global keep glob, added to the named policies (the globs
/// alone for inspect when it names none); a bad glob is a policy error (exit 2).
#[test]
fn keep_and_delete_globs_on_the_command_line() {
    let w = scratch();
    let dir = spec_layout(
        "tag flags:1\nlayer\nfile opt/app/tests/t1 size=5000\nfile opt/app/main \"x\"\n\
         file usr/share/doc/app/README size=3000\nfile usr/share/doc/app/KEEP size=2000\n",
        w.path(),
        "flags",
    );
    let r = json_report(
        std::process::Command::new(OCISLIM)
            .args([
                "squash",
                "--dry-run",
                "--json",
                "--delete",
                "opt/app/tests/**",
            ])
            .args(["--keep", "usr/share/doc/app/KEEP"])
            .arg(&dir),
    );
    let deleted: Vec<(String, String)> = r["policy"]["deleted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["path"].as_str().unwrap().into(),
                d["rule"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(
        deleted.contains(&("opt/app/tests/t1".into(), "cli-delete".into())),
        "{deleted:?}"
    );
    assert!(
        deleted.contains(&("usr/share/doc/app/README".into(), "doc".into())),
        "{deleted:?}"
    );
    assert!(
        !deleted
            .iter()
            .any(|d| d.0 == "usr/share/doc/app/KEEP" || d.0 == "opt/app/main")
    );

    let out = run(ocislim()
        .args(["inspect", "--delete", "opt/app/tests/**"])
        .arg(&dir));
    assert!(String::from_utf8_lossy(&out.stdout).contains("cli-delete"));
    let out = run(ocislim()
        .args([
            "bench",
            "--policy",
            "none",
            "--delete",
            "opt/app/tests/**",
            "--format",
            "csv",
        ])
        .arg(&dir));
    assert!(!String::from_utf8_lossy(&out.stdout).is_empty());
    // The format's example in docs/policies.md is a policy `policy check` accepts.
    let doc = std::fs::read_to_string("docs/policies.md").unwrap();
    let start = doc.find("```toml\ndescription").unwrap() + "```toml\n".len();
    let example = &doc[start..start + doc[start..].find("```").unwrap()];
    let file = w.path().join("example.toml");
    std::fs::write(&file, example.replace(", \"./team-base.toml\"", "")).unwrap();
    run(ocislim().args(["policy", "check"]).arg(&file));
    let (code, err) = run_fail(
        ocislim()
            .args(["squash", "--dry-run", "--delete", "a[b"])
            .arg(&dir),
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--delete") && err.contains("a[b"), "{err}");
}
