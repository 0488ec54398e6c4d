//! `ocislim diff`, judged by umoci and bsdtar: on a slim of the suite's Debian image, its
//! paths are exactly those a comparison of the two images' umoci unpacks (bsdtar mtree
//! listings) finds, its removed paths exactly those the squash report lists as deleted.

use crate::tools::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Paths of a `diff --json` report's changes of kind `how`.
fn changed(r: &Value, how: &str) -> BTreeSet<String> {
    r["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["change"] == how)
        .map(|c| c["path"].as_str().unwrap().to_string())
        .collect()
}

/// Decodes mtree's `\ooo` escapes (bsdtar encodes spaces and other bytes so).
fn unvis(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
            out.push(u8::from_str_radix(&s[i + 1..i + 4], 8).unwrap());
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// An unpacked root's paths (from `/`) with their type, mode, owner, size, link target
/// and sha256, as bsdtar's mtree writer lists them; a symlink's mode and a folder's
/// size are left out (neither is the image's).
fn mtree(root: &Path) -> BTreeMap<String, String> {
    let out = run(std::process::Command::new("bsdtar")
        .args(["-cf", "-", "--format", "mtree", "--options"])
        .arg("!all,!use-set,type,mode,uid,gid,size,link,sha256")
        .arg("-C")
        .arg(root)
        .arg("."));
    let mut map = BTreeMap::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let mut words = line.split(' ');
        let Some(p) = words.next().and_then(|p| p.strip_prefix("./")) else {
            continue;
        };
        let kind = line.contains(" type=dir");
        let link = line.contains(" type=link");
        let keys: Vec<&str> = words
            .filter(|w| !(kind && w.starts_with("size=") || link && w.starts_with("mode=")))
            .collect();
        map.insert(format!("/{}", unvis(p)), keys.join(" "));
    }
    map
}

/// Judges `ocislim diff ORIG SLIM` where SLIM (tag `1`) is ORIG's (tag `t`) squash whose
/// report is `report`.
pub fn judge_slim_diff(orig: &Path, slim: &Path, report: &Value, work: &Path) {
    let rep = work.join("diff-squash-report.json");
    std::fs::write(&rep, serde_json::to_vec(report).unwrap()).unwrap();
    let (a, b) = (
        format!("oci:{}:t", orig.display()),
        format!("oci:{}:1", slim.display()),
    );
    let r = json_report(
        std::process::Command::new(OCISLIM)
            .args(["diff", "--json", &a, &b, "--report"])
            .arg(&rep),
    );
    let (removed, added, changed_) = (
        changed(&r, "removed"),
        changed(&r, "added"),
        changed(&r, "changed"),
    );
    // umoci's unpacks, listed by bsdtar, compared.
    let (ra, rb) = (umoci_unpack(orig, "t", work), umoci_unpack(slim, "1", work));
    let (ma, mb) = (mtree(&ra), mtree(&rb));
    let only = |x: &BTreeMap<String, String>, y: &BTreeMap<String, String>| -> BTreeSet<String> {
        x.keys().filter(|k| !y.contains_key(*k)).cloned().collect()
    };
    let differ: BTreeSet<String> = ma
        .iter()
        .filter(|(k, v)| mb.get(*k).is_some_and(|w| w != *v))
        .map(|(k, _)| k.clone())
        .collect();
    assert!(!removed.is_empty(), "the slim deleted nothing");
    assert_eq!(
        removed,
        only(&ma, &mb),
        "removed: ocislim diff vs umoci+bsdtar"
    );
    assert_eq!(added, only(&mb, &ma), "added: ocislim diff vs umoci+bsdtar");
    assert_eq!(changed_, differ, "changed: ocislim diff vs umoci+bsdtar");
    // The squash report's deletions, each folder standing for its subtree in ORIG.
    let mut deleted = BTreeSet::new();
    for d in report["policy"]["deleted"].as_array().unwrap() {
        let p = format!("/{}", d["path"].as_str().unwrap());
        let below = format!("{p}/");
        deleted.extend(ma.keys().filter(|k| k.starts_with(&below)).cloned());
        deleted.insert(p);
    }
    assert_eq!(
        removed, deleted,
        "removed: ocislim diff vs the squash report"
    );
    // What was added or changed is what the squash says it rewrote (package databases).
    let rewritten: BTreeSet<String> = report["rewritten"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect();
    let new: BTreeSet<String> = added.union(&changed_).cloned().collect();
    assert!(
        new.is_subset(&rewritten),
        "changed but not reported as rewritten: {:?}",
        new.difference(&rewritten).collect::<Vec<_>>()
    );
    // Every removed path is named by a rule, and the groups add up.
    for c in r["changes"].as_array().unwrap() {
        if c["change"] == "removed" {
            assert!(c["rule"].is_string(), "no rule for {c}");
        }
    }
    let sum = |g: &str| -> u64 {
        r[g].as_array()
            .unwrap()
            .iter()
            .map(|x| x["removed"].as_u64().unwrap())
            .sum()
    };
    for g in ["by_folder", "by_package", "by_rule"] {
        assert_eq!(sum(g), removed.len() as u64, "{g} adds up");
    }
    assert!(
        r["by_package"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["name"] != "(no package)" && g["removed"].as_u64() > Some(0)),
        "removed files are grouped by their dpkg package: {:#}",
        r["by_package"]
    );
    std::fs::remove_dir_all(ra.parent().unwrap()).unwrap();
    std::fs::remove_dir_all(rb.parent().unwrap()).unwrap();
}

#[test]
fn diff_of_a_slim_names_rules_and_gates_ci_through_a_pipe() {
    let w = scratch();
    let slim = w.path().join("slim.oci");
    let rep = w.path().join("r.json");
    let small = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/small.tar");
    run(ocislim()
        .arg("squash")
        .arg(&small)
        .args(["--policy", "default", "--report"])
        .arg(&rep)
        .arg("-o")
        .arg(format!("oci:{}:1", slim.display())));
    let slim_ref = format!("oci:{}:1", slim.display());
    // As a CI log sees it: stdout a pipe.
    let out = run(std::process::Command::new(OCISLIM)
        .arg("diff")
        .arg(&small)
        .arg(&slim_ref)
        .arg("--report")
        .arg(&rep));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("- /usr/share/doc/app/README  (3.9 KiB)  [doc]\n")
            && text.contains("2 removed, 0 added, 0 changed")
            && text.contains("by rule:\n"),
        "{text}"
    );
    let (code, err) = run_fail(
        std::process::Command::new(OCISLIM)
            .args(["diff", "--summary", "--fail-on-change"])
            .arg(&small)
            .arg(&slim_ref),
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("2 paths changed"), "{err}");
    // The same image twice: nothing changed, the gate passes.
    let out = run(std::process::Command::new(OCISLIM)
        .args(["diff", "--fail-on-change"])
        .arg(&small)
        .arg(&small));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("0 removed, 0 added, 0 changed"),
        "{out:?}"
    );
    // A report that is not a squash's is a usage error naming it.
    let (code, err) = run_fail(
        std::process::Command::new(OCISLIM)
            .arg("diff")
            .arg(&small)
            .arg(&slim_ref)
            .arg("--report")
            .arg(&small),
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--report") && err.contains("small.tar"),
        "{err}"
    );
}
