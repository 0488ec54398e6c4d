//! A real image built from Debian packages (debootstrap minbase with python3-pip and a
//! `pip install requests`, then Docker-built layers that delete, overwrite, chmod,
//! hard-link and move things), squashed whole and above its base, with no policy and
//! with `default` and `aggressive`, judged by umoci and by Docker, and run; `ocislim
//! diff` of the input and its `default` slim judged by umoci and bsdtar.

use crate::docker::{docker_export_listing, reconcile, squash_and_load};
use crate::tools::*;
use std::path::{Path, PathBuf};

const DOCKERFILE: &str = r#"FROM ocislim-test/debian:base
RUN rm -rf /var/lib/apt/lists/* /usr/share/doc/* && mkdir -p /opt/app && printf 'print 6*7, "\\n";\n' > /opt/app/main.pl
RUN echo changed > /etc/motd && chmod 600 /etc/debian_version && ln /usr/bin/perl /opt/app/perl && rm -rf /usr/share/man && mkdir -p /usr/share/man/man1 && echo new > /usr/share/man/man1/x.1
RUN rm /usr/bin/perl5.36.0 && mv /etc/apt /etc/apt2 && rm -rf /var/cache/apt/archives/*.deb && ln -sf /opt/app /app
CMD ["/bin/sh", "-c", "cat /etc/motd; /opt/app/perl /opt/app/main.pl; python3 -c 'import requests; print(requests.__version__)'"]
"#;

/// What the image's command prints.
const RUNS: &str = "changed\n42\n2.31.0\n";

fn rootfs() -> PathBuf {
    PathBuf::from(
        std::env::var_os("OCISLIM_DEBIAN_ROOTFS").expect(
            "OCISLIM_DEBIAN_ROOTFS is set by scripts/test (scripts/debian-rootfs builds it)",
        ),
    )
}

/// Builds the layered Debian image in Docker and saves it (classic `docker save`).
fn build(work: &Path) -> PathBuf {
    run(docker()
        .args(["import"])
        .arg(rootfs())
        .arg("ocislim-test/debian:base"));
    let ctx = work.join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), DOCKERFILE).unwrap();
    run(docker()
        .args([
            "build",
            "--network",
            "none",
            "-q",
            "-t",
            "ocislim-test/debian:layered",
        ])
        .arg(&ctx));
    let saved = work.join("debian.tar");
    run(docker()
        .args(["save", "-o"])
        .arg(&saved)
        .arg("ocislim-test/debian:layered"));
    saved
}

#[test]
fn debian_image_squashed_whole_and_above_its_base_matches_umoci_and_docker_and_runs() {
    let w = scratch();
    let saved = build(w.path());
    let layers = docker_layer_count("ocislim-test/debian:layered");
    assert_eq!(layers.trim(), "4");
    // umoci's view of the original, through skopeo.
    let orig = w.path().join("orig.oci");
    skopeo_to_oci(&format!("docker-archive:{}", saved.display()), &orig);
    let want = umoci_listing(&orig, "t", w.path());
    assert!(
        want.contains("./opt/app/perl") && !want.contains("./usr/bin/perl5.36.0 "),
        "the Dockerfile ran"
    );
    let docker_want = docker_export_listing("ocislim-test/debian:layered", w.path());
    for keep in [0, 1] {
        let out = w.path().join(format!("sq{keep}.oci"));
        run(ocislim()
            .args(["squash", "--policy", "none"])
            .arg(&saved)
            .args([
                "--keep-layers",
                &keep.to_string(),
                "--format",
                "oci",
                "--tag",
                "sq:1",
                "-o",
            ])
            .arg(&out));
        let got = umoci_listing(&out, "1", w.path());
        assert!(
            got == want,
            "keep {keep}: umoci sees different filesystems\n{}",
            diff(&want, &got)
        );
        let tag = format!("ocislim-test/debian:sq{keep}");
        squash_and_load(
            &saved,
            &["--policy", "none", "--keep-layers", &keep.to_string()],
            &tag,
            w.path(),
        );
        let (a, b) = reconcile(&docker_want, &docker_export_listing(&tag, w.path()));
        assert!(
            a == b,
            "keep {keep}: Docker sees different filesystems\n{}",
            diff(&a, &b)
        );
        let out = run(docker().args(["run", "--rm", "--network", "none", &tag]));
        assert_eq!(String::from_utf8_lossy(&out.stdout), RUNS);
        run(docker().args(["rmi", &tag]));
    }
    // Slimmed by policy: only the reported paths go (umoci), it still runs, and dpkg's
    // database still tells the truth: `dpkg --verify` finds nothing missing that the
    // input's layers had not already deleted.
    let verify = |tag: &str| -> std::collections::BTreeSet<String> {
        let out = run(docker().args([
            "run",
            "--rm",
            "--network",
            "none",
            "--entrypoint",
            "sh",
            tag,
            "-c",
            // What it finds is on stdout; its status is not the judge.
            "dpkg --verify || true",
        ]));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(String::from)
            .collect()
    };
    let verified_before = verify("ocislim-test/debian:layered");
    for (policy, keep) in [("default", "0"), ("aggressive", "0"), ("aggressive", "1")] {
        let name = format!("debian-{policy}-{keep}");
        let (r, _) = crate::policy::assert_only_reported_paths_go(
            &orig,
            "t",
            &["--policy", policy, "--keep-layers", keep],
            w.path(),
            &name,
        );
        if policy == "default" {
            // `ocislim diff` of the input and its slim, judged by umoci and bsdtar.
            let slim = w.path().join(format!("{name}.oci"));
            crate::diff::judge_slim_diff(&orig, &slim, &r, w.path());
        }
        let tag = format!("ocislim-test/debian:{policy}{keep}");
        squash_and_load(
            &saved,
            &["--policy", policy, "--keep-layers", keep],
            &tag,
            w.path(),
        );
        let out = run(docker().args(["run", "--rm", "--network", "none", &tag]));
        assert_eq!(String::from_utf8_lossy(&out.stdout), RUNS, "{name}");
        let verified = verify(&tag);
        let new: Vec<&String> = verified.difference(&verified_before).collect();
        assert!(new.is_empty(), "{name}: dpkg --verify finds {new:#?}");
        run(docker().args(["rmi", &tag]));
        eprintln!(
            "{name}: before {} after {} stored",
            r["before"]["compressed"], r["after"]["compressed"]
        );
    }
    // Layer groups: the base, the first RUN, and the two above as three layers, the
    // whiteouts between them as Docker applies them (umoci judges the filesystem).
    let args = ["--policy", "default", "--layer-groups", "1,2"];
    let (r, _) =
        crate::policy::assert_only_reported_paths_go(&orig, "t", &args, w.path(), "groups");
    assert_eq!(
        r["groups"].as_array().unwrap().len(),
        3,
        "{:#}",
        r["groups"]
    );
    let tag = "ocislim-test/debian:groups";
    squash_and_load(&saved, &args, tag, w.path());
    assert_eq!(docker_layer_count(tag).trim(), "3");
    let out = run(docker().args(["run", "--rm", "--network", "none", tag]));
    assert_eq!(String::from_utf8_lossy(&out.stdout), RUNS, "groups");
    run(docker().args(["rmi", tag]));
    run(docker().args([
        "rmi",
        "ocislim-test/debian:layered",
        "ocislim-test/debian:base",
    ]));
}
