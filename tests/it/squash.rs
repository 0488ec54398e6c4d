//! Squash, one test per hard case, each judged by umoci: the root filesystem of the
//! original image and of the squashed one (whole, and above a kept base), unpacked by
//! `umoci unpack` and listed by bsdtar mtree and getfattr, are identical.

use crate::builder::Spec;
use crate::tools::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Squashes `dir` into `out` (an OCI layout tagged `:1`) with extra arguments.
pub fn squash(dir: &Path, out: &Path, extra: &[&str]) {
    run(ocislim()
        .args(["squash", "--policy", "none"])
        .arg(dir)
        .arg("-o")
        .arg(out)
        .args(["--format", "oci", "--tag", "squashed:1"])
        .args(extra));
}

/// Builds `spec` and checks that umoci sees the same filesystem in the original, the
/// fully squashed image, and (for every possible base) the partially squashed ones.
/// Returns the work folder and the listing.
pub fn assert_squash_faithful(spec: &str) -> (tempfile::TempDir, String) {
    let w = scratch();
    let spec = Spec::parse(spec);
    let dir = w.path().join("orig.oci");
    spec.write_layout(&dir, false);
    let want = umoci_listing(&dir, spec.tag.rsplit_once(':').unwrap().1, w.path());
    let layers = spec.layer_tars().len();
    // The same layers stored uncompressed in a `docker save` archive are read in place
    // (at their offsets in the archive) rather than spooled: the result must not change.
    let plain_dir = w.path().join("orig-plain.oci");
    spec.write_layout(&plain_dir, true);
    let plain = w.path().join("orig-plain.tar");
    crate::fixtures::pack(&plain_dir, &plain);
    let sources = [
        ("gzip", &dir, (0..layers).collect::<Vec<_>>()),
        ("plain", &plain, vec![0, layers - 1]),
    ];
    for (what, src, keeps) in sources {
        for keep in keeps {
            let out = w.path().join(format!("squashed-{what}-keep{keep}.oci"));
            squash(src, &out, &["--keep-layers", &keep.to_string()]);
            let got = umoci_listing(&out, "1", w.path());
            assert!(
                got == want,
                "{what} layers, keep {keep}: root filesystems differ\n--- original\n{want}\n--- squashed\n{got}"
            );
            let m = manifest(&out);
            assert_eq!(m["layers"].as_array().unwrap().len(), keep + 1);
        }
    }
    (w, want)
}

pub fn manifest(layout: &Path) -> Value {
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let d = index["manifests"][0]["digest"].as_str().unwrap();
    serde_json::from_slice(&std::fs::read(blob(layout, d)).unwrap()).unwrap()
}

pub fn blob(layout: &Path, digest: &str) -> PathBuf {
    layout.join("blobs/sha256").join(&digest[7..])
}

pub fn config(layout: &Path) -> Value {
    let m = manifest(layout);
    serde_json::from_slice(
        &std::fs::read(blob(layout, m["config"]["digest"].as_str().unwrap())).unwrap(),
    )
    .unwrap()
}

const HARDLINK_TARGET_WHITED_OUT_LATER_LEAVES_THE_ALIAS_WITH_THE_DATA: &str =
    "layer\nfile t \"data\"\nhardlink h -> t\nhardlink g -> t\nlayer\nwhiteout t\n";
const HARDLINK_TARGET_OVERWRITTEN_LATER_ALIASES_KEEP_THE_OLD_BYTES: &str =
    "layer\nfile t \"old bytes\" mode=0640\nhardlink h -> t mode=0640\nlayer\nfile t \"new\"\n";
const WHITEOUT_STORED_AS_A_HARDLINK_ENTRY_STILL_HIDES: &str =
    "layer\ndir d\nfile d/x \"x\"\nfile other \"o\"\nlayer\nhardlink d/.wh.x -> other\n";
const DIRECTORY_DELETED_THEN_RECREATED_ABOVE_A_KEPT_BASE_GETS_AN_OPAQUE_MARKER: &str = "layer\ndir d mode=0700\nfile d/a \"a\"\nfile d/b \"b\"\nfile d/c \"c\"\nfile keep \"k\"\nlayer\nwhiteout d\ndir d mode=0755\nfile d/new \"n\"\n";
const OPAQUE_MARKER_LISTED_AFTER_ITS_SIBLINGS_HIDES_ONLY_LOWER_LAYERS: &str =
    "layer\ndir a\nfile a/old \"o\"\nlayer\ndir a\nfile a/new \"n\"\nopaque a\n";
const WHITEOUT_AND_SAME_NAMED_ENTRY_IN_ONE_LAYER_IN_EITHER_ORDER_KEEPS_THE_ENTRY: &str = "layer\nfile a \"lower\"\nfile b \"lower\"\nlayer\nwhiteout a\nfile a \"upper\"\nfile b \"upper\"\nwhiteout b\n";
const DIRECTORY_REPLACED_BY_A_FILE_AND_FILE_REPLACED_BY_A_DIRECTORY: &str = "layer\ndir a\nfile a/x \"x\"\nfile b \"b\"\nlayer\nfile a \"now a file\"\ndir b\nfile b/y \"y\"\n";
const DIRECTORY_REPLACED_BY_A_SYMLINK_AND_ENTRY_UNDER_A_LOWER_LAYER_SYMLINK: &str = "layer\ndir d\nfile d/f \"f\"\ndir usr\ndir usr/lib\nsymlink lib -> usr/lib\nlayer\nsymlink d -> /tmp\nfile lib/x \"through the link\"\n";
const DUPLICATE_AND_DOT_PREFIXED_ENTRIES_LAST_ONE_WINS: &str = "layer\nfile a \"first\"\nfile ./a \"second!\"\ndir ./d/\nfile d/x \"x\"\nlayer\nraw \"/d/x\" \"upper x\"\n";
const SAME_BLOB_TWICE_IN_A_MANIFEST_IS_PROCESSED_BY_POSITION: &str =
    "layer\nfile a \"x\"\nlayer\nfile a \"yy\"\nfile b \"b\"\nlayer\nfile a \"x\"\n";
const ABSOLUTE_AND_ROOT_CLIMBING_SYMLINKS_ARE_KEPT_VERBATIM: &str = "layer\ndir s\nsymlink s/abs -> /etc/passwd\nsymlink s/up -> ../../../../../etc/shadow\nlayer\nfile s/x \"x\"\n";
const A_NAME_CONTAINING_WH_INSIDE_IS_NOT_A_WHITEOUT: &str =
    "layer\nfile bar \"b\"\nlayer\nfile foo.wh.bar \"not a whiteout\"\n";
const PARTIAL_SQUASH_KEEPS_BASE_BLOBS_BYTE_IDENTICAL_AND_HISTORY_ALIGNED: &str = "config Cmd=[\"/bin/app\"] Healthcheck={\"Test\":[\"NONE\"]}\nlayer \"base one\"\nfile a \"a\"\nlayer \"base two\"\nfile b \"b\"\nlayer \"app\"\nfile c \"c\"\nlayer \"cleanup\"\nwhiteout a\n";

const EQUAL_FILES_IN_SEPARATE_LINK_GROUPS_STAY_IN_THEIR_GROUPS: &str = "layer\nfile a \"same\"\nfile b \"same\"\nhardlink c -> a\nhardlink d -> b\nfile x \"x\"\nlayer\nwhiteout x\n";

/// Every hand-written hard case, for the Docker oracle.
pub const CASES: &[(&str, &str)] = &[
    (
        "equal_files_in_separate_link_groups_stay_in_their_groups",
        EQUAL_FILES_IN_SEPARATE_LINK_GROUPS_STAY_IN_THEIR_GROUPS,
    ),
    (
        "hardlink_target_whited_out_later_leaves_the_alias_with_the_data",
        HARDLINK_TARGET_WHITED_OUT_LATER_LEAVES_THE_ALIAS_WITH_THE_DATA,
    ),
    (
        "hardlink_target_overwritten_later_aliases_keep_the_old_bytes",
        HARDLINK_TARGET_OVERWRITTEN_LATER_ALIASES_KEEP_THE_OLD_BYTES,
    ),
    (
        "whiteout_stored_as_a_hardlink_entry_still_hides",
        WHITEOUT_STORED_AS_A_HARDLINK_ENTRY_STILL_HIDES,
    ),
    (
        "directory_deleted_then_recreated_above_a_kept_base_gets_an_opaque_marker",
        DIRECTORY_DELETED_THEN_RECREATED_ABOVE_A_KEPT_BASE_GETS_AN_OPAQUE_MARKER,
    ),
    (
        "opaque_marker_listed_after_its_siblings_hides_only_lower_layers",
        OPAQUE_MARKER_LISTED_AFTER_ITS_SIBLINGS_HIDES_ONLY_LOWER_LAYERS,
    ),
    (
        "whiteout_and_same_named_entry_in_one_layer_in_either_order_keeps_the_entry",
        WHITEOUT_AND_SAME_NAMED_ENTRY_IN_ONE_LAYER_IN_EITHER_ORDER_KEEPS_THE_ENTRY,
    ),
    (
        "directory_replaced_by_a_file_and_file_replaced_by_a_directory",
        DIRECTORY_REPLACED_BY_A_FILE_AND_FILE_REPLACED_BY_A_DIRECTORY,
    ),
    (
        "directory_replaced_by_a_symlink_and_entry_under_a_lower_layer_symlink",
        DIRECTORY_REPLACED_BY_A_SYMLINK_AND_ENTRY_UNDER_A_LOWER_LAYER_SYMLINK,
    ),
    (
        "duplicate_and_dot_prefixed_entries_last_one_wins",
        DUPLICATE_AND_DOT_PREFIXED_ENTRIES_LAST_ONE_WINS,
    ),
    (
        "same_blob_twice_in_a_manifest_is_processed_by_position",
        SAME_BLOB_TWICE_IN_A_MANIFEST_IS_PROCESSED_BY_POSITION,
    ),
    (
        "absolute_and_root_climbing_symlinks_are_kept_verbatim",
        ABSOLUTE_AND_ROOT_CLIMBING_SYMLINKS_ARE_KEPT_VERBATIM,
    ),
    (
        "a_name_containing_wh_inside_is_not_a_whiteout",
        A_NAME_CONTAINING_WH_INSIDE_IS_NOT_A_WHITEOUT,
    ),
    (
        "partial_squash_keeps_base_blobs_byte_identical_and_history_aligned",
        PARTIAL_SQUASH_KEEPS_BASE_BLOBS_BYTE_IDENTICAL_AND_HISTORY_ALIGNED,
    ),
];

fn line<'a>(listing: &'a str, path: &str) -> &'a str {
    listing
        .lines()
        .find(|l| l.split(' ').next() == Some(path))
        .unwrap_or_else(|| panic!("{path} not in\n{listing}"))
}

fn absent(listing: &str, path: &str) -> bool {
    listing.lines().all(|l| l.split(' ').next() != Some(path))
}

#[test]
fn hardlink_target_whited_out_later_leaves_the_alias_with_the_data() {
    let (_w, l) =
        assert_squash_faithful(HARDLINK_TARGET_WHITED_OUT_LATER_LEAVES_THE_ALIAS_WITH_THE_DATA);
    assert!(absent(&l, "./t"));
    assert!(
        line(&l, "./h").contains("size=4") && line(&l, "./h").contains("nlink=2"),
        "{l}"
    );
    assert_eq!(groups(&l), ["g h"], "{l}");
}

/// The hard-link groups of a listing, one line per group.
fn groups(listing: &str) -> Vec<&str> {
    listing
        .split(GROUPS_HEADER)
        .nth(1)
        .unwrap()
        .lines()
        .filter(|g| !g.is_empty())
        .collect()
}

#[test]
fn equal_files_in_separate_link_groups_stay_in_their_groups() {
    // Same bytes, modes and link counts: only inode identity tells the groups apart.
    let (_w, l) = assert_squash_faithful(EQUAL_FILES_IN_SEPARATE_LINK_GROUPS_STAY_IN_THEIR_GROUPS);
    assert_eq!(groups(&l), ["a c", "b d"], "{l}");
}

#[test]
fn hardlink_target_overwritten_later_aliases_keep_the_old_bytes() {
    let (_w, l) =
        assert_squash_faithful(HARDLINK_TARGET_OVERWRITTEN_LATER_ALIASES_KEEP_THE_OLD_BYTES);
    assert!(line(&l, "./h").contains("size=9"), "{l}");
    assert!(line(&l, "./t").contains("size=3"), "{l}");
}

#[test]
fn whiteout_stored_as_a_hardlink_entry_still_hides() {
    let (_w, l) = assert_squash_faithful(WHITEOUT_STORED_AS_A_HARDLINK_ENTRY_STILL_HIDES);
    assert!(absent(&l, "./d/x"), "{l}");
}

#[test]
fn directory_deleted_then_recreated_above_a_kept_base_gets_an_opaque_marker() {
    let spec = DIRECTORY_DELETED_THEN_RECREATED_ABOVE_A_KEPT_BASE_GETS_AN_OPAQUE_MARKER;
    let (w, l) = assert_squash_faithful(spec);
    assert!(
        absent(&l, "./d/a") && line(&l, "./d").contains("mode=755"),
        "{l}"
    );
    // The new layer hides the base's d/* with one opaque marker, not three whiteouts.
    let out = w.path().join("squashed-gzip-keep1.oci");
    let top = manifest(&out)["layers"][1]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let names = run(std::process::Command::new("tar")
        .arg("-tzf")
        .arg(blob(&out, &top)));
    assert_eq!(
        String::from_utf8_lossy(&names.stdout),
        "d/.wh..wh..opq\nd\nd/new\n"
    );
}

#[test]
fn opaque_marker_listed_after_its_siblings_hides_only_lower_layers() {
    let (_w, l) =
        assert_squash_faithful(OPAQUE_MARKER_LISTED_AFTER_ITS_SIBLINGS_HIDES_ONLY_LOWER_LAYERS);
    assert!(absent(&l, "./a/old") && !absent(&l, "./a/new"), "{l}");
}

#[test]
fn whiteout_and_same_named_entry_in_one_layer_in_either_order_keeps_the_entry() {
    let (_w, l) = assert_squash_faithful(
        WHITEOUT_AND_SAME_NAMED_ENTRY_IN_ONE_LAYER_IN_EITHER_ORDER_KEEPS_THE_ENTRY,
    );
    assert!(
        line(&l, "./a").contains("size=5") && line(&l, "./b").contains("size=5"),
        "{l}"
    );
}

#[test]
fn directory_replaced_by_a_file_and_file_replaced_by_a_directory() {
    let (_w, l) =
        assert_squash_faithful(DIRECTORY_REPLACED_BY_A_FILE_AND_FILE_REPLACED_BY_A_DIRECTORY);
    assert!(
        absent(&l, "./a/x")
            && line(&l, "./a").contains("type=file")
            && line(&l, "./b").contains("type=dir"),
        "{l}"
    );
}

#[test]
fn directory_replaced_by_a_symlink_and_entry_under_a_lower_layer_symlink() {
    let spec = DIRECTORY_REPLACED_BY_A_SYMLINK_AND_ENTRY_UNDER_A_LOWER_LAYER_SYMLINK;
    let (_w, l) = assert_squash_faithful(spec);
    assert!(
        line(&l, "./d").contains("type=link") && absent(&l, "./d/f"),
        "{l}"
    );
}

#[test]
fn duplicate_and_dot_prefixed_entries_last_one_wins() {
    let (_w, l) = assert_squash_faithful(DUPLICATE_AND_DOT_PREFIXED_ENTRIES_LAST_ONE_WINS);
    assert!(
        line(&l, "./a").contains("size=7") && line(&l, "./d/x").contains("size=7"),
        "{l}"
    );
}

#[test]
fn same_blob_twice_in_a_manifest_is_processed_by_position() {
    let spec = SAME_BLOB_TWICE_IN_A_MANIFEST_IS_PROCESSED_BY_POSITION;
    let w = scratch();
    let dir = w.path().join("o.oci");
    Spec::parse(spec).write_layout(&dir, false);
    let layers = manifest(&dir)["layers"].clone();
    assert_eq!(
        layers[0]["digest"], layers[2]["digest"],
        "the fixture repeats a blob"
    );
    let (_w, l) = assert_squash_faithful(spec);
    assert!(
        line(&l, "./a").contains("size=1") && !absent(&l, "./b"),
        "{l}"
    );
}

#[test]
fn binary_xattrs_long_and_non_utf8_names_devices_and_fifos_survive() {
    let text =
        std::fs::read_to_string(crate::fixtures::fixtures_dir().join("hard-cases.spec")).unwrap();
    let (_w, l) = assert_squash_faithful(&text);
    assert!(l.contains("security.capability=0x010000020a00"), "{l}");
    assert!(
        l.contains("type=char device=native,1,3") && l.contains("type=fifo"),
        "{l}"
    );
    assert!(
        l.contains("caf\\351-latin1") && l.contains("cccccccc.txt"),
        "{l}"
    );
}

/// xattrs of every namespace a layer carries: `user.*` (a value with NULs and a newline),
/// `trusted.*`, a POSIX access ACL, and a capability, on files, a directory and one
/// overwritten in an upper layer (whose xattrs must go with it). umoci applies them; the
/// listing reads them back with getfattr, whose exit status is checked.
const XATTRS_OF_EVERY_NAMESPACE_SURVIVE: &str = concat!(
    "layer\n",
    "dir d mode=0750\n",
    "xattr d user.dir=\"on a directory\"\n",
    "file d/f \"f\" mode=0640\n",
    "xattr d/f user.mime=\"text\\x00plain\\n\\x00\"\n",
    "xattr d/f trusted.ocislim=\"t\"\n",
    "file acl \"a\" mode=0640\n",
    "xattr acl system.posix_acl_access=\"",
    "\\x02\\x00\\x00\\x00",
    "\\x01\\x00\\x06\\x00\\xff\\xff\\xff\\xff",
    "\\x02\\x00\\x04\\x00\\xe8\\x03\\x00\\x00",
    "\\x04\\x00\\x04\\x00\\xff\\xff\\xff\\xff",
    "\\x10\\x00\\x04\\x00\\xff\\xff\\xff\\xff",
    "\\x20\\x00\\x00\\x00\\xff\\xff\\xff\\xff\"\n",
    "file old \"old\"\n",
    "xattr old user.gone=\"1\"\n",
    "layer\n",
    "file old \"new\"\n",
    "file cap \"c\" mode=0755\n",
    "xattr cap security.capability=\"\\x01\\x00\\x00\\x02\\x00\\x04\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\"\n",
);

#[test]
fn xattrs_of_every_namespace_survive() {
    let (_w, l) = assert_squash_faithful(XATTRS_OF_EVERY_NAMESPACE_SURVIVE);
    let xattrs = l.split("# xattrs").nth(1).unwrap();
    for want in [
        "user.dir=0x6f6e2061206469726563746f7279",
        "user.mime=0x7465787400706c61696e0a00",
        "trusted.ocislim=0x74",
        "system.posix_acl_access=0x02000000010006",
        "security.capability=0x0100000200040000",
    ] {
        assert!(xattrs.contains(want), "{want} missing:\n{xattrs}");
    }
    assert!(!xattrs.contains("user.gone"), "{xattrs}");
}

#[test]
fn absolute_and_root_climbing_symlinks_are_kept_verbatim() {
    let (_w, l) = assert_squash_faithful(ABSOLUTE_AND_ROOT_CLIMBING_SYMLINKS_ARE_KEPT_VERBATIM);
    assert!(
        line(&l, "./s/abs").contains("link=/etc/passwd")
            && line(&l, "./s/up").contains("link=../../../../../etc/shadow"),
        "{l}"
    );
}

#[test]
fn a_name_containing_wh_inside_is_not_a_whiteout() {
    let (_w, l) = assert_squash_faithful(A_NAME_CONTAINING_WH_INSIDE_IS_NOT_A_WHITEOUT);
    assert!(!absent(&l, "./bar") && !absent(&l, "./foo.wh.bar"), "{l}");
}

#[test]
fn partial_squash_keeps_base_blobs_byte_identical_and_history_aligned() {
    let spec = PARTIAL_SQUASH_KEEPS_BASE_BLOBS_BYTE_IDENTICAL_AND_HISTORY_ALIGNED;
    let (w, _) = assert_squash_faithful(spec);
    let orig = w.path().join("orig.oci");
    let out = w.path().join("squashed-gzip-keep2.oci");
    let (mi, mo) = (manifest(&orig), manifest(&out));
    for i in 0..2 {
        assert_eq!(mi["layers"][i], mo["layers"][i], "base layer {i} changed");
        let d = mo["layers"][i]["digest"].as_str().unwrap();
        assert_eq!(
            std::fs::read(blob(&orig, d)).unwrap(),
            std::fs::read(blob(&out, d)).unwrap()
        );
    }
    let (ci, co) = (config(&orig), config(&out));
    let h = co["history"].as_array().unwrap();
    assert_eq!(h.len(), 3);
    assert_eq!(h[0], ci["history"][0]);
    assert_eq!(h[1], ci["history"][1]);
    assert_eq!(h[2]["comment"], "squashed layers 3-4 of 4 (policy none)");
    assert_eq!(
        co["rootfs"]["diff_ids"].as_array().unwrap()[..2],
        ci["rootfs"]["diff_ids"].as_array().unwrap()[..2]
    );
    assert_eq!(
        co["config"], ci["config"],
        "Cmd, Healthcheck and the rest are kept"
    );
    assert_eq!(co["x-vendor-field"], ci["x-vendor-field"]);
    assert_eq!(co["created"], ci["created"]);
    // The same through --base: the layers shared with the base image are kept.
    let base_dir = w.path().join("base.oci");
    Spec::parse("layer \"base one\"\nfile a \"a\"\nlayer \"base two\"\nfile b \"b\"\n")
        .write_layout(&base_dir, false);
    let via_base = w.path().join("via-base.oci");
    squash(&orig, &via_base, &["--base", base_dir.to_str().unwrap()]);
    assert_eq!(manifest(&via_base), mo);
    // Judged by others: umoci unpacks the original's filesystem from it, and skopeo reads
    // the base image's layers and diff_ids, unchanged, at its bottom.
    assert_eq!(
        umoci_listing(&via_base, "1", w.path()),
        umoci_listing(&orig, "1", w.path())
    );
    let raw = |l: &Path, r: &str| -> Value {
        let out = run(Command::new("skopeo")
            .args(["inspect", "--raw"])
            .arg(format!("oci:{}:{r}", l.display())));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let (base_m, out_m) = (raw(&base_dir, "1"), raw(&via_base, "1"));
    assert_eq!(
        out_m["layers"].as_array().unwrap()[..2],
        base_m["layers"].as_array().unwrap()[..]
    );
    let base_c = skopeo_config(&format!("oci:{}:1", base_dir.display()));
    let out_c = skopeo_config(&format!("oci:{}:1", via_base.display()));
    assert_eq!(
        out_c["rootfs"]["diff_ids"].as_array().unwrap()[..2],
        base_c["rootfs"]["diff_ids"].as_array().unwrap()[..]
    );
    assert_eq!(out_c["rootfs"]["diff_ids"].as_array().unwrap().len(), 3);
}

#[test]
fn squashing_twice_and_with_one_job_gives_identical_digests() {
    let w = scratch();
    let dir = crate::fixtures::layout("hard-cases", w.path());
    let mut digests = Vec::new();
    for (i, jobs) in ["1", "2", "1", "2"].iter().enumerate() {
        for codec in ["gzip", "zstd"] {
            let out = w.path().join(format!("s{i}-{codec}.tar"));
            run(ocislim()
                .args(["-j", jobs, "squash", "--policy", "none"])
                .arg(&dir)
                .args(["--compression", codec, "--format", "oci-archive", "-o"])
                .arg(&out));
            digests.push((codec, std::fs::read(&out).unwrap()));
        }
    }
    for pair in digests.chunks(2).skip(1) {
        assert!(
            pair[0] == digests[0] && pair[1] == digests[1],
            "output depends on the run or on --jobs"
        );
    }
}

#[test]
fn timestamp_clamps_mtimes_and_sets_created() {
    let w = scratch();
    let dir = w.path().join("o.oci");
    Spec::parse("layer\nfile old \"o\" mtime=1000\nfile new \"n\" mtime=2000000000\n")
        .write_layout(&dir, false);
    let out = w.path().join("t.oci");
    squash(&dir, &out, &["--timestamp", "1500000000"]);
    let l = umoci_listing(&out, "1", w.path());
    assert!(
        line(&l, "./old").contains("time=1000.0")
            && line(&l, "./new").contains("time=1500000000.0"),
        "{l}"
    );
    // `created` as skopeo reads it, against the epoch as date(1) prints it.
    let date = run(Command::new("date").args(["-u", "-d", "@1500000000", "+%Y-%m-%dT%H:%M:%SZ"]));
    let want = String::from_utf8(date.stdout).unwrap().trim().to_string();
    assert_eq!(
        skopeo_config(&format!("oci:{}:1", out.display()))["created"],
        want
    );
    // SOURCE_DATE_EPOCH asks the same when --timestamp is not given.
    let env = w.path().join("env.oci");
    run(ocislim()
        .args(["squash", "--policy", "none"])
        .arg(&dir)
        .args(["--format", "oci", "--tag", "squashed:1", "-o"])
        .arg(&env)
        .env("SOURCE_DATE_EPOCH", "1500000000"));
    assert_eq!(manifest(&env), manifest(&out));
    assert_eq!(umoci_listing(&env, "1", w.path()), l);
    assert_eq!(
        skopeo_config(&format!("oci:{}:1", env.display()))["created"],
        want
    );
}

/// A squashed layer of several gzip chunks (1 MiB each): the same bytes for any
/// `--jobs`, one gzip member, and every reader gets the whole tar back: Python's
/// `gzip` module, `zcat`, and flate2's single-member `GzDecoder` (a second member
/// would be invisible to it). Each must reproduce the config's diff_id.
#[test]
fn parallel_gzip_is_one_member_every_reader_reads_and_jobs_do_not_change() {
    use std::io::Read;
    let w = scratch();
    let dir = w.path().join("big.oci");
    Spec::parse(
        "layer\nfile a size=3000000:1\nfile b size=2500000:2\nlayer\nfile c size=1500000:3\nfile a size=100:4\n",
    )
    .write_layout(&dir, false);
    let mut outputs = Vec::new();
    for jobs in ["1", "2", "3"] {
        let out = w.path().join(format!("j{jobs}.oci"));
        run(ocislim()
            .args([
                "-j",
                jobs,
                "squash",
                "--policy",
                "none",
                "--compression",
                "gzip",
            ])
            .arg(&dir)
            .arg("-o")
            .arg(&out));
        outputs.push(out);
    }
    for o in &outputs[1..] {
        assert_eq!(
            manifest(o),
            manifest(&outputs[0]),
            "{} differs",
            o.display()
        );
    }
    let out = &outputs[0];
    let layer = blob(out, manifest(out)["layers"][0]["digest"].as_str().unwrap());
    let diff_id = config(out)["rootfs"]["diff_ids"][0]
        .as_str()
        .unwrap()
        .to_string();
    let gz = std::fs::read(&layer).unwrap();
    assert!(gz.len() > 3 << 20, "not several chunks: {} bytes", gz.len());
    let sha = |b: &[u8]| {
        use sha2::Digest as _;
        format!("sha256:{}", hex::encode(sha2::Sha256::digest(b)))
    };

    let mut flate = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut flate)
        .unwrap();
    assert_eq!(sha(&flate), diff_id, "flate2's GzDecoder");
    let zcat = run(Command::new("zcat").arg(&layer)).stdout;
    assert_eq!(sha(&zcat), diff_id, "zcat");
    let python = run(Command::new("python3")
        .args([
            "-c",
            "import gzip, hashlib, sys; print('sha256:' + hashlib.sha256(gzip.open(sys.argv[1]).read()).hexdigest())",
        ])
        .arg(&layer))
    .stdout;
    assert_eq!(
        String::from_utf8(python).unwrap().trim(),
        diff_id,
        "python gzip"
    );
    // One member: nothing follows the first one.
    let mut d = flate2::bufread::GzDecoder::new(&gz[..]);
    std::io::copy(&mut d, &mut std::io::sink()).unwrap();
    assert!(d.into_inner().is_empty(), "more than one gzip member");
}

/// The summary compares like with like: a `docker save`-style input stores plain tars,
/// so gzip output against it says nothing about stored bytes (it said "64.9% smaller
/// stored" for `--policy none`); an input stored as gzip, squashed to gzip, compares
/// both; the tar bytes always.
#[test]
fn the_summary_compares_stored_bytes_only_at_one_codec() {
    let w = scratch();
    let plain = w.path().join("plain.tar");
    run(ocislim()
        .args([
            "convert",
            "fixtures/small.tar",
            "--compression",
            "none",
            "--format",
        ])
        .args(["docker-archive", "-o"])
        .arg(&plain));
    for (input, like) in [
        (Path::new("fixtures/small.tar"), true),
        (plain.as_path(), false),
    ] {
        let r = json_report(
            Command::new(OCISLIM)
                .args(["squash", "--policy", "none", "--dry-run", "--json"])
                .arg(input),
        );
        let tar = r["saved"]["tar_percent"].as_f64().unwrap();
        assert!(tar.abs() < 40.0, "{input:?}: {tar}");
        assert_eq!(
            r["saved"]["stored_percent"].is_f64(),
            like,
            "{input:?}: {:#}",
            r["saved"]
        );
        let text = Command::new(OCISLIM)
            .args(["squash", "--policy", "none", "--dry-run"])
            .arg(input)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&text.stderr).into_owned()
            + &String::from_utf8_lossy(&text.stdout);
        assert!(text.contains("% of the tar bytes"), "{text}");
        assert_eq!(
            text.contains("of the stored bytes (both gzip)"),
            like,
            "{text}"
        );
        assert_eq!(text.contains("stored sizes not compared"), !like, "{text}");
    }
}
