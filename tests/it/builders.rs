//! Images from other builders and a second runtime: Debian's podman 4.3 and buildah 1.28
//! (vfs storage, as root, each test with its own storage). What they write
//! (`podman save --format oci-archive|docker-archive|oci-dir`, `buildah push oci:` and
//! `oci-archive:`) is read and squashed, judged by umoci against the original; and
//! podman loads and runs what ocislim writes, zstd included, as Docker does.

use crate::tools::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// podman and buildah with private storage under a scratch folder. Setting rlimits is
/// refused in this sandbox, so containers.conf asks for none.
struct Builders {
    dir: tempfile::TempDir,
}

impl Builders {
    fn new() -> Builders {
        let dir = scratch();
        std::fs::write(
            dir.path().join("containers.conf"),
            "[containers]\ndefault_ulimits = []\n",
        )
        .unwrap();
        Builders { dir }
    }

    fn tool(&self, name: &str) -> Command {
        let d = self.dir.path();
        let mut c = Command::new(name);
        c.env("CONTAINERS_CONF", d.join("containers.conf"))
            .arg("--root")
            .arg(d.join("root"))
            .arg("--runroot")
            .arg(d.join("run"))
            .args(["--storage-driver", "vfs"]);
        if name == "podman" {
            c.args(["--cgroup-manager", "cgroupfs"]);
        }
        c
    }

    fn podman(&self) -> Command {
        self.tool("podman")
    }

    fn buildah(&self) -> Command {
        self.tool("buildah")
    }

    /// `podman run` of an image, its output.
    fn run_image(&self, image: &str) -> String {
        let out = run(self
            .podman()
            .args(["run", "--rm", "--network", "none", image]));
        String::from_utf8(out.stdout).unwrap()
    }
}

/// The busybox fixture as a docker archive tagged `tag`.
fn busybox_archive(work: &Path, tag: &str) -> PathBuf {
    let text =
        std::fs::read_to_string(crate::fixtures::fixtures_dir().join("busybox.spec")).unwrap();
    let layout = work.join("busybox.oci");
    crate::builder::Spec::parse(&text).write_layout(&layout, false);
    let out = work.join("busybox.tar");
    run(ocislim()
        .arg("convert")
        .arg(&layout)
        .args(["--format", "docker-archive", "--tag", tag, "-o"])
        .arg(&out));
    out
}

const RUN_OUTPUT: &str = "fixture-ok\nmotd from layer 2\n";

#[test]
fn images_podman_and_buildah_write_are_read_and_squashed() {
    let b = Builders::new();
    let w = scratch();
    run(b
        .podman()
        .args(["load", "-i"])
        .arg(busybox_archive(w.path(), "localhost/bb:1")));
    // buildah adds a layer of its own making.
    let ctr = run(b.buildah().args(["from", "localhost/bb:1"]));
    let ctr = String::from_utf8(ctr.stdout).unwrap().trim().to_string();
    let extra = w.path().join("extra");
    std::fs::write(&extra, "from buildah\n").unwrap();
    run(b
        .buildah()
        .args(["copy", &ctr])
        .arg(&extra)
        .arg("/etc/motd"));
    run(b.buildah().args(["commit", "-q", &ctr, "localhost/bb:2"]));
    let p = |name: &str| w.path().join(name);
    let written: Vec<(String, Command)> = vec![
        (format!("oci-archive:{}", p("podman-oci.tar").display()), {
            let mut c = b.podman();
            c.args(["save", "--format", "oci-archive", "-o"])
                .arg(p("podman-oci.tar"))
                .arg("localhost/bb:2");
            c
        }),
        (
            format!("docker-archive:{}", p("podman-docker.tar").display()),
            {
                let mut c = b.podman();
                c.args(["save", "--format", "docker-archive", "-o"])
                    .arg(p("podman-docker.tar"))
                    .arg("localhost/bb:2");
                c
            },
        ),
        (format!("oci:{}", p("podman-oci-dir").display()), {
            let mut c = b.podman();
            c.args(["save", "--format", "oci-dir", "-o"])
                .arg(p("podman-oci-dir"))
                .arg("localhost/bb:2");
            c
        }),
        (format!("oci:{}:bb", p("buildah-oci").display()), {
            let mut c = b.buildah();
            c.args(["push", "-q", "localhost/bb:2"])
                .arg(format!("oci:{}:bb", p("buildah-oci").display()));
            c
        }),
        (
            format!("oci-archive:{}:bb", p("buildah-oci.tar").display()),
            {
                let mut c = b.buildah();
                c.args(["push", "-q", "localhost/bb:2"])
                    .arg(format!("oci-archive:{}:bb", p("buildah-oci.tar").display()));
                c
            },
        ),
    ];
    for (i, (source, mut make)) in written.into_iter().enumerate() {
        run(&mut make);
        let original = p(&format!("original-{i}"));
        skopeo_to_oci(&source, &original);
        let want = umoci_listing(&original, "t", w.path());
        assert!(want.contains("./etc/motd "), "{source}: {want}");
        let out = p(&format!("slim-{i}"));
        run(ocislim()
            .args(["squash", "--policy", "none"])
            .arg(&source)
            .arg("-o")
            .arg(format!("oci:{}:t", out.display())));
        let got = umoci_listing(&out, "t", w.path());
        assert_eq!(want, got, "{source}:\n{}", diff(&want, &got));
        let m = run(Command::new("skopeo")
            .args(["inspect", "--raw"])
            .arg(format!("oci:{}:t", out.display())));
        let m: serde_json::Value = serde_json::from_slice(&m.stdout).unwrap();
        assert_eq!(m["layers"].as_array().unwrap().len(), 1, "{source}");
    }
}

#[test]
fn podman_loads_and_runs_what_ocislim_writes_zstd_included() {
    let b = Builders::new();
    let w = scratch();
    let input = busybox_archive(w.path(), "localhost/bb:1");
    for format in ["docker-archive", "oci-archive"] {
        for codec in ["gzip", "zstd", "none"] {
            let tag = format!("localhost/slim-{format}-{codec}:1");
            let out = w.path().join(format!("{format}-{codec}.tar"));
            run(ocislim()
                .args(["squash", "--policy", "none", "--compression", codec])
                .args(["--format", format, "--tag", &tag])
                .arg(&input)
                .arg("-o")
                .arg(&out));
            let loaded = run(b.podman().args(["load", "-i"]).arg(&out));
            let said = String::from_utf8_lossy(&loaded.stdout).into_owned();
            assert!(said.contains(&tag), "{format} {codec}: {said}");
            assert_eq!(b.run_image(&tag), RUN_OUTPUT, "{format} {codec}");
        }
    }
}
