//! Runs ocislim and the oracles (umoci, skopeo, bsdtar, getfattr, docker) for tests.
//! A missing oracle fails the test; it is never skipped.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const OCISLIM: &str = env!("CARGO_BIN_EXE_ocislim");

/// A scratch folder removed when dropped (kept with `OCISLIM_KEEP_SCRATCH=1`, to debug).
pub fn scratch() -> tempfile::TempDir {
    let keep = std::env::var_os("OCISLIM_KEEP_SCRATCH").is_some();
    tempfile::Builder::new()
        .prefix("ocislim-test-")
        .disable_cleanup(keep)
        .tempdir()
        .unwrap()
}

/// Runs a command, panicking with its stderr when it fails.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.stdin(Stdio::null()).output().unwrap_or_else(|e| {
        panic!("cannot run {cmd:?}: {e} (the test command installs the oracles)")
    });
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs a command expected to fail; returns its exit code and stderr.
pub fn run_fail(cmd: &mut Command) -> (i32, String) {
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    assert!(!out.status.success(), "{cmd:?} should have failed");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `ocislim ARGS` (with `--json`: no `-q`, its report on stdout), which must
/// succeed; the report.
pub fn json_report(args: &mut Command) -> serde_json::Value {
    let out = run(args);
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

pub fn ocislim() -> Command {
    let mut c = Command::new(OCISLIM);
    c.arg("-q");
    c
}

/// Copies any image skopeo can read into a gzip OCI layout tagged `:t`, re-encoding
/// layers with skopeo's own codecs, so umoci (which reads gzip and plain layers) can
/// unpack what we wrote in any codec.
pub fn skopeo_to_oci(transport_ref: &str, dir: &Path) {
    run(Command::new("skopeo")
        .args([
            "copy",
            "--quiet",
            "--dest-compress",
            "--dest-compress-format",
            "gzip",
            transport_ref,
        ])
        .arg(format!("oci:{}:t", dir.display())));
}

/// Unpacks an OCI layout's image `tag` with umoci; returns the root filesystem.
pub fn umoci_unpack(layout: &Path, tag: &str, work: &Path) -> PathBuf {
    // Each unpack gets its own bundle: one layout may be unpacked more than once.
    static UNPACKS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = UNPACKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let bundle = work.join(format!(
        "bundle{n}-{}",
        layout.file_name().unwrap().to_string_lossy()
    ));
    run(Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:{tag}", layout.display()))
        .arg(&bundle));
    bundle.join("rootfs")
}

/// Unpacks an OCI layout's image `tag` with umoci and lists its root filesystem:
/// a bsdtar mtree listing (type, mode, owner, size, mtime, link, nlink, sha256) and
/// `getfattr` for every xattr, hex-encoded.
pub fn umoci_listing(layout: &Path, tag: &str, work: &Path) -> String {
    listing(&umoci_unpack(layout, tag, work))
}

/// The mtree + xattr listing of a directory tree.
pub fn listing(root: &Path) -> String {
    let mtree = run(Command::new("bsdtar")
        .args([
            "-cf",
            "-",
            "--format",
            "mtree",
            "--options",
            "!all,type,mode,uid,gid,size,time,link,nlink,sha256,device",
        ])
        .arg("-C")
        .arg(root)
        .arg("."));
    // Its status is checked: a getfattr that fails lists nothing on either side, and
    // two empty lists would compare equal.
    let xattrs = run(Command::new("getfattr")
        .args(["-R", "-h", "-d", "-m", "-", "-e", "hex", "."])
        .current_dir(root));
    let groups: String = link_groups(root, &[])
        .into_iter()
        .map(|g| g.into_iter().collect::<Vec<_>>().join(" ") + "\n")
        .collect();
    format!(
        "{}\n# xattrs\n{}\n{GROUPS_HEADER}\n{groups}",
        String::from_utf8_lossy(&mtree.stdout),
        String::from_utf8_lossy(&xattrs.stdout)
    )
}

/// Where [`listing`]'s hard-link groups start: each line a group of paths that share an
/// inode in the unpacked tree (inode identity, not only equal link counts).
pub const GROUPS_HEADER: &str = "# hard-link groups";

/// Sets of paths (relative to `root`, without `./`) sharing an inode: hard-link groups of
/// two or more, leaving out the paths in `skip` (a path, and with `true` what is under it).
pub fn link_groups(root: &Path, skip: &[(String, bool)]) -> BTreeSet<BTreeSet<String>> {
    use std::os::unix::fs::MetadataExt;
    let mut by_inode: BTreeMap<(u64, u64), BTreeSet<String>> = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let m = e.path().symlink_metadata().unwrap();
            let rel = e
                .path()
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if m.is_dir() {
                stack.push(e.path());
            } else if m.nlink() > 1
                && !skip
                    .iter()
                    .any(|(s, sub)| rel == *s || (*sub && rel.starts_with(&format!("{s}/"))))
            {
                by_inode.entry((m.dev(), m.ino())).or_default().insert(rel);
            }
        }
    }
    by_inode.into_values().filter(|g| g.len() > 1).collect()
}

/// The config of an image as skopeo reads it, parsed.
pub fn skopeo_config(transport_ref: &str) -> serde_json::Value {
    let out = run(Command::new("skopeo").args(["inspect", "--config", "--raw", transport_ref]));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Lists files in `dir`, to prove nothing was left behind.
pub fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

/// The `.ocislim*` staging entries left in `dir`.
pub fn staged_in(dir: &Path) -> Vec<PathBuf> {
    entries(dir)
        .into_iter()
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(".ocislim")
        })
        .collect()
}

/// The Docker engine the test command started; a test that needs it fails without it.
pub fn docker() -> Command {
    let host = std::env::var("DOCKER_HOST").expect(
        "DOCKER_HOST is set by the test command (scripts/test), which starts a Docker engine",
    );
    let mut c = Command::new("docker");
    c.env("DOCKER_HOST", host);
    c
}

/// The lines only one of two listings has, for failure messages.
pub fn diff(want: &str, got: &str) -> String {
    let a: std::collections::BTreeSet<&str> = want.lines().collect();
    let b: std::collections::BTreeSet<&str> = got.lines().collect();
    let mut out = String::new();
    for l in a.difference(&b) {
        out += &format!("- {l}\n");
    }
    for l in b.difference(&a) {
        out += &format!("+ {l}\n");
    }
    out
}

/// How many layers the Docker engine holds for image `tag`, as `docker image inspect`
/// prints it.
pub fn docker_layer_count(tag: &str) -> String {
    let out = run(docker().args(["image", "inspect", "-f", "{{len .RootFS.Layers}}", tag]));
    String::from_utf8(out.stdout).unwrap()
}

/// A squash report written with `--report`, after checking the dependency check found
/// nothing the policy broke.
pub fn report_breaking_nothing(report: &Path) -> serde_json::Value {
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(report).unwrap()).unwrap();
    assert_eq!(
        r["check"]["broken_by_policy"],
        serde_json::json!([]),
        "{:#}",
        r["check"]
    );
    r
}

/// Squashes the layout `dir` with the policy `policy` (TOML text) into a docker archive
/// named `tag`, with a report; returns the archive and the report, which must say the
/// policy broke nothing.
pub fn squash_with_policy(
    work: &Path,
    dir: &Path,
    policy: &str,
    tag: &str,
) -> (std::path::PathBuf, serde_json::Value) {
    let file = work.join("policy.toml");
    std::fs::write(&file, policy).unwrap();
    let out = work.join("slim.tar");
    let report = work.join("report.json");
    run(ocislim()
        .args(["squash", "--policy"])
        .arg(&file)
        .arg(dir)
        .arg("-o")
        .arg(format!("docker-archive:{}:{tag}", out.display()))
        .arg("--report")
        .arg(&report));
    (out, report_breaking_nothing(&report))
}
