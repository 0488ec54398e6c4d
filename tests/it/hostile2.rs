//! Hostile inputs, second round: the package, ELF, policy and layout readers. Each
//! case is a tiny input built here; costs are bounded by the child's peak RSS (from its
//! rusage, read by Python's `resource`) and by scaled inputs, never by wall-clock time.

use crate::builder::Spec;
use crate::tools::*;
use std::process::{Command, Output};

/// Runs `cmd` under a Python parent that prints the child's peak RSS (KiB) from its
/// rusage; returns the output and that number.
pub fn with_peak_rss(cmd: &Command) -> (Output, u64) {
    let (out, peak, _) = with_usage(cmd);
    (out, peak)
}

/// [`with_peak_rss`], and the CPU seconds (user and system) the child spent: work,
/// whatever else the machine runs.
pub fn with_usage(cmd: &Command) -> (Output, u64, f64) {
    let mut py = Command::new("python3");
    py.args([
        "-c",
        "import resource, subprocess, sys\n\
         r = subprocess.run(sys.argv[1:], stdin=subprocess.DEVNULL)\n\
         u = resource.getrusage(resource.RUSAGE_CHILDREN)\n\
         sys.stderr.write('\\ncpu-seconds %f\\npeak-rss-kib %d\\n' % (u.ru_utime + u.ru_stime, u.ru_maxrss))\n\
         sys.exit(r.returncode)",
    ]);
    py.arg(cmd.get_program()).args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => py.env(k, v),
            None => py.env_remove(k),
        };
    }
    let out = py.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let figure = |key: &str| {
        err.lines()
            .rev()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key} in {err}"))
            .trim()
            .to_string()
    };
    let peak = figure("peak-rss-kib ").parse().unwrap();
    let cpu = figure("cpu-seconds ").parse().unwrap();
    let cut = err.rfind("\ncpu-seconds").unwrap_or(err.len());
    let stderr = err.as_bytes()[..cut].to_vec();
    (
        Output {
            status: out.status,
            stdout: out.stdout,
            stderr,
        },
        peak,
        cpu,
    )
}

/// Class 1: a non-ASCII key (or an invalid byte) at the start of a line of
/// `/lib/apk/db/installed` panicked a plain squash (exit 101).
#[test]
fn an_apk_database_with_non_ascii_keys_is_read_without_a_panic() {
    let w = scratch();
    let dir = w.path().join("img");
    Spec::parse(
        "tag apk:1\nlayer\ndir lib\ndir lib/apk\ndir lib/apk/db\n\
         file lib/apk/db/installed \"\\xc3\\xa9:x\\nP:musl\\nV:1.2\\n\\xff:y\\nF:lib\\nR:ld-musl.so\\n\\n\"\n\
         file lib/ld-musl.so \"elf\"\n",
    )
    .write_layout(&dir, false);
    for policy in ["default", "none"] {
        let out = w.path().join(format!("{policy}.tar"));
        let o = ocislim()
            .args(["squash", "--policy", policy])
            .arg(&dir)
            .arg("-o")
            .arg(&out)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{policy}: exit {:?}: {}",
            o.status.code(),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let o = run(ocislim().args(["packages", "--json"]).arg(&dir));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v.to_string().contains("musl"), "{v}");
}

/// Class 6: `extends` is loaded once per policy (a diamond of depth 20 loaded every
/// path, 2^20 loads), a chain deeper than the limit is refused in one line, and a file
/// of 200k `[[rule]]` tables is refused by its size before it is parsed.
#[test]
fn policy_extends_diamonds_chains_and_floods_are_bounded() {
    let w = scratch();
    let p = |n: String| w.path().join(n);
    // A diamond: level i extends both policies of level i+1.
    for i in 0..20 {
        for side in ["a", "b"] {
            let extends = if i < 19 {
                format!(
                    "extends = [\"./l{}a.toml\", \"./l{}b.toml\"]\n",
                    i + 1,
                    i + 1
                )
            } else {
                String::new()
            };
            let rule = format!(
                "[[rule]]\nid = \"r{i}{side}\"\nreason = \"x\"\ndelete = [\"x{i}{side}\"]\n"
            );
            std::fs::write(p(format!("l{i}{side}.toml")), format!("{extends}{rule}")).unwrap();
        }
    }
    let (o, peak) = with_peak_rss(ocislim().args(["policy", "show"]).arg(p("l0a.toml".into())));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("r19b"));
    assert!(peak < 64 << 10, "peak RSS {peak} KiB");
    // A chain of 50k files: refused at the depth limit, without a stack overflow.
    for i in 0..40 {
        std::fs::write(
            p(format!("c{i}.toml")),
            format!("extends = [\"./c{}.toml\"]\n", i + 1),
        )
        .unwrap();
    }
    std::fs::write(p("c40.toml".into()), "").unwrap();
    let (code, err) = run_fail(ocislim().args(["policy", "check"]).arg(p("c0.toml".into())));
    assert_eq!(code, 2, "a policy error: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("extends nested deeper than 32"), "{err}");
    // 200k rule tables: refused by size, before the parse.
    let flood: String = (0..200_000)
        .map(|i| format!("[[rule]]\nid = \"r{i}\"\n"))
        .collect();
    std::fs::write(p("flood.toml".into()), flood).unwrap();
    let (o, peak) = with_peak_rss(
        ocislim()
            .args(["policy", "check"])
            .arg(p("flood.toml".into())),
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "a policy error: {err}");
    assert!(
        err.contains("flood.toml") && err.contains("larger than"),
        "{err}"
    );
    assert!(peak < 64 << 10, "peak RSS {peak} KiB");
    // Under the size limit, 129 tables in one file are refused as too many rules.
    let many: String = (0..129)
        .map(|i| format!("[[rule]]\nid = \"r{i}\"\nreason = \"x\"\ndelete = [\"x{i}\"]\n"))
        .collect();
    std::fs::write(p("many.toml".into()), many).unwrap();
    let (_, err) = run_fail(
        ocislim()
            .args(["policy", "check"])
            .arg(p("many.toml".into())),
    );
    assert!(err.contains("129 rules"), "{err}");
}

/// Class 9: an index listing one manifest 200 times is one image: `--all-platforms`
/// squashes it once.
#[test]
fn an_index_listing_one_manifest_200_times_is_squashed_once() {
    let w = scratch();
    let dir = w.path().join("img");
    Spec::parse("tag dup:1\nlayer\nfile a \"a\"\n").write_layout(&dir, false);
    let index_path = dir.join("index.json");
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
    let mut d = index["manifests"][0].clone();
    d["platform"] = serde_json::json!({"os": "linux", "architecture": "amd64"});
    d["annotations"]
        .as_object_mut()
        .unwrap()
        .remove("io.containerd.image.name");
    index["manifests"] = serde_json::Value::Array(vec![d; 200]);
    std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
    let out = w.path().join("out");
    let (o, peak) = with_peak_rss(
        ocislim()
            .args(["squash", "--all-platforms", "--policy", "none"])
            .arg(&dir)
            .arg("-o")
            .arg(&out),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(peak < 128 << 10, "peak RSS {peak} KiB");
    // The output lists the image once: one index entry, one manifest, config and layer.
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("index.json")).unwrap()).unwrap();
    let blobs = std::fs::read_dir(out.join("blobs/sha256")).unwrap().count();
    assert_eq!(blobs, 4, "index, manifest, config, layer: {index}");
    let nested = index["manifests"][0]["digest"].as_str().unwrap();
    let platforms: serde_json::Value = serde_json::from_slice(
        &std::fs::read(out.join("blobs/sha256").join(&nested[7..])).unwrap(),
    )
    .unwrap();
    assert_eq!(
        platforms["manifests"].as_array().unwrap().len(),
        1,
        "{platforms}"
    );
}

/// Class 10: a destination whose `index.json` is a symlink to `/dev/zero`, or a FIFO,
/// is refused in one line, without reading it whole (or hanging on it).
#[test]
fn a_destination_index_that_is_not_a_regular_file_is_refused() {
    let w = scratch();
    let src = w.path().join("src");
    Spec::parse("tag x:1\nlayer\nfile a \"a\"\n").write_layout(&src, false);
    for kind in ["symlink", "fifo"] {
        let dest = w.path().join(kind);
        std::fs::create_dir_all(dest.join("blobs/sha256")).unwrap();
        std::fs::write(
            dest.join("oci-layout"),
            "{\"imageLayoutVersion\":\"1.0.0\"}",
        )
        .unwrap();
        let index = dest.join("index.json");
        if kind == "symlink" {
            std::os::unix::fs::symlink("/dev/zero", &index).unwrap();
        } else {
            run(Command::new("mkfifo").arg(&index));
        }
        let (o, peak) = with_peak_rss(
            ocislim()
                .args(["squash", "--policy", "none"])
                .arg(&src)
                .arg("-o")
                .arg(format!("oci:{}:y", dest.display())),
        );
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{kind}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{kind}: {err}");
        assert!(err.contains("not a regular file"), "{kind}: {err}");
        assert!(peak < 64 << 10, "{kind}: peak RSS {peak} KiB");
        assert_eq!(
            std::fs::read_dir(&dest).unwrap().count(),
            3,
            "{kind}: something was left in the destination"
        );
    }
}

/// Class 4: an `ld.so.conf` include chain of 3000 overflowed the stack in the squash
/// guard (exit 134, a staging folder left in the destination); 20 hard links to one
/// 1 MiB conf file were each read whole. Includes are followed 32 deep and 1 MiB is
/// read in all.
#[test]
fn ld_so_conf_include_chains_and_hard_links_are_bounded() {
    let w = scratch();
    let big = w.path().join("big.conf");
    let lines: String = (0..100_000).map(|i| format!("/x{i}\n")).collect();
    std::fs::write(&big, lines).unwrap();
    let mut spec = String::from(
        "tag ld:1\nlayer\nfile bin/true from=/bin/true mode=0755\n\
         file etc/ld.so.conf \"include /etc/c/0.conf\\ninclude /etc/h/*.conf\\n\"\n",
    );
    spec += &format!("file etc/h/00.conf from={}\n", big.display());
    for i in 1..20 {
        spec += &format!("hardlink etc/h/{i:02}.conf -> etc/h/00.conf\n");
    }
    for i in 0..3000 {
        spec += &format!(
            "file etc/c/{i}.conf \"/d{i}\\ninclude /etc/c/{}.conf\\n\"\n",
            i + 1
        );
    }
    let dir = w.path().join("img");
    Spec::parse(&spec).write_layout(&dir, false);
    let dest = w.path().join("dest");
    std::fs::create_dir(&dest).unwrap();
    for policy in ["default", "python"] {
        let out = dest.join(policy);
        let (o, peak) = with_peak_rss(
            ocislim()
                .args(["squash", "--policy", policy, "--allow-broken"])
                .arg(&dir)
                .arg("-o")
                .arg(&out),
        );
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            o.status.success(),
            "{policy}: exit {:?}: {err}",
            o.status.code()
        );
        assert!(peak < 256 << 10, "{policy}: peak RSS {peak} KiB");
        eprintln!("ld.so.conf bombs, --policy {policy}: peak RSS {peak} KiB");
    }
    let left = staged_in(&dest);
    assert!(left.is_empty(), "{left:?}");
}

/// Class 4: a 64 MiB `.list` of `/a` lines (an image of a few KB compressed) kept
/// 1.27 GiB of paths. The paths the packages list are counted as they are kept: this
/// one is refused in one line naming the file, within bounded memory, and a list of
/// a million distinct paths is read.
#[test]
fn a_huge_dpkg_list_is_counted_as_it_is_read() {
    let w = scratch();
    let status =
        "Package: p\\nStatus: install ok installed\\nVersion: 1\\nArchitecture: amd64\\n\\n";
    let build = |name: &str, list: &[u8]| {
        let file = w.path().join(format!("{name}.list"));
        std::fs::write(&file, list).unwrap();
        let dir = w.path().join(name);
        Spec::parse(&format!(
            "tag dpkg:1\nlayer\nfile var/lib/dpkg/status \"{status}\"\n\
             file var/lib/dpkg/info/p.list from={}\n",
            file.display()
        ))
        .write_layout(&dir, false);
        dir
    };
    let bomb = build("bomb", &b"/a\n".repeat(64 << 20 >> 2));
    let (o, peak) = with_peak_rss(ocislim().args(["packages", "--json"]).arg(&bomb));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("/var/lib/dpkg/info/p.list") && err.contains("4000000 paths"),
        "{err}"
    );
    assert!(peak < 640 << 10, "peak RSS {peak} KiB");
    eprintln!("a 64 MiB .list of /a: peak RSS {peak} KiB: {}", err.trim());
    let many: Vec<u8> = (0..1_000_000)
        .flat_map(|i| format!("/usr/share/p/f{i}\n").into_bytes())
        .collect();
    let fine = build("fine", &many);
    let (o, peak) = with_peak_rss(ocislim().args(["packages", "--json"]).arg(&fine));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(peak < 512 << 10, "peak RSS {peak} KiB");
    eprintln!("a .list of 1M distinct paths: peak RSS {peak} KiB");
}

/// Class 4: one 1 MiB ELF with 1000 `PT_INTERP` headers, each spanning the file, cost
/// 1-1.9 GiB: the kernel takes the first and so does the analysis (at most 4096 bytes
/// of it). `check` names that interpreter, missing, within bounded memory.
#[test]
fn an_elf_with_a_thousand_interpreters_reads_the_first() {
    let w = scratch();
    let (phnum, at, size) = (1000u16, 57_000u64, 1u64 << 20);
    let mut elf = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0".to_vec();
    elf.extend(2u16.to_le_bytes()); // ET_EXEC
    elf.extend(62u16.to_le_bytes()); // x86-64
    elf.extend(1u32.to_le_bytes());
    elf.extend(0u64.to_le_bytes()); // entry
    elf.extend(64u64.to_le_bytes()); // phoff
    elf.extend(0u64.to_le_bytes()); // shoff
    elf.extend(0u32.to_le_bytes());
    for v in [64u16, 56, phnum, 64, 0, 0] {
        elf.extend(v.to_le_bytes());
    }
    for _ in 0..phnum {
        elf.extend(3u32.to_le_bytes()); // PT_INTERP
        elf.extend(4u32.to_le_bytes());
        for v in [at, 0, 0, size - at, size - at, 1] {
            elf.extend(v.to_le_bytes());
        }
    }
    elf.resize(at as usize, 0);
    elf.extend(b"/lib/ld-first.so\0");
    elf.resize(size as usize, b'a');
    let file = w.path().join("x");
    std::fs::write(&file, &elf).unwrap();
    let dir = w.path().join("img");
    Spec::parse(&format!(
        "tag elf:1\nconfig Cmd=[\"/bin/x\"]\nlayer\nfile bin/x from={} mode=0755\n",
        file.display()
    ))
    .write_layout(&dir, false);
    let (o, peak) = with_peak_rss(ocislim().args(["check", "--json"]).arg(&dir));
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{out} {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.contains("/lib/ld-first.so"), "{out}");
    assert!(peak < 96 << 10, "peak RSS {peak} KiB");
    eprintln!("1000 PT_INTERP headers: peak RSS {peak} KiB");
}

/// An image holding one file, `path`, with `bytes`.
fn image_with(w: &std::path::Path, name: &str, path: &str, bytes: &[u8]) -> std::path::PathBuf {
    let file = w.join(format!("{name}.data"));
    std::fs::write(&file, bytes).unwrap();
    let dir = w.join(name);
    Spec::parse(&format!(
        "tag {name}:1\nlayer\nfile {path} from={}\n",
        file.display()
    ))
    .write_layout(&dir, false);
    dir
}

/// Class 4: 1744 packages each naming 20 versions of a virtual package 256 others
/// provide (2000 packages, 0.8 MiB) took 38 s for `packages` and 176 s for a removal
/// with autoremove: each comparison parsed both versions with a regex. Versions are
/// parsed once, satisfiers indexed by the version each package answers with; the CPU
/// time the child spends (from its rusage, not the clock) is bounded, 1.8 s measured.
#[test]
fn versioned_relations_to_a_virtual_package_of_256_providers_are_bounded() {
    let w = scratch();
    let mut status = String::new();
    for i in 0..256 {
        status += &format!(
            "Package: prov{i}\nStatus: install ok installed\nVersion: 1\n\
             Architecture: amd64\nProvides: virt (= 1.{i})\n\n"
        );
    }
    for i in 0..1744 {
        let alts: Vec<String> = (0..20)
            .map(|j| format!("virt (>= 2.{})", i * 20 + j))
            .collect();
        status += &format!(
            "Package: user{i}\nStatus: install ok installed\nVersion: 1\n\
             Architecture: amd64\nDepends: {}\n\n",
            alts.join(" | ")
        );
    }
    let dir = image_with(w.path(), "virt", "var/lib/dpkg/status", status.as_bytes());
    let (o, peak, cpu) = with_usage(ocislim().args(["packages", "--json"]).arg(&dir));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(cpu < 8.0, "{cpu} CPU seconds");
    assert!(peak < 128 << 10, "peak RSS {peak} KiB");
    eprintln!("256 providers, 1744 packages: {cpu:.1} CPU s, peak RSS {peak} KiB");
}

/// Class 4: a 64 MiB package-lock.json of tiny entries held 1.1 GiB as a
/// `serde_json::Value`; read as raw slices it costs a few times its size, and four
/// times the lockfile costs about four times the memory.
#[test]
fn a_huge_package_lock_costs_memory_in_proportion_to_its_size() {
    let w = scratch();
    let peak = |mib: usize| {
        let mut lock = String::from("{\"lockfileVersion\":3,\"packages\":{");
        let mut n = 0;
        while lock.len() < mib << 20 {
            lock += &format!("\"node_modules/a{n}\":{{\"dev\":true}},");
            n += 1;
        }
        lock += "\"\":{}}}";
        let name = format!("lock{mib}");
        std::fs::write(w.path().join(format!("{name}.data")), &lock).unwrap();
        let dir = w.path().join(&name);
        // A project needs its node_modules folder.
        Spec::parse(&format!(
            "tag {name}:1\nlayer\nfile app/package-lock.json from={}\n\
             dir app/node_modules\nfile app/node_modules/a0/package.json \"{{}}\"\n",
            w.path().join(format!("{name}.data")).display()
        ))
        .write_layout(&dir, false);
        let (o, peak) = with_peak_rss(
            ocislim()
                .args(["squash", "--policy", "node"])
                .arg(&dir)
                .arg("-o")
                .arg(w.path().join(format!("{name}.out"))),
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        peak
    };
    let (small, big) = (peak(16), peak(64));
    eprintln!("package-lock.json of 16 MiB: peak RSS {small} KiB; 64 MiB: {big} KiB");
    assert!(big < 640 << 10, "peak RSS {big} KiB for 64 MiB");
    assert!(
        big < small * 6,
        "{small} KiB for 16 MiB, {big} KiB for 64 MiB"
    );
}
