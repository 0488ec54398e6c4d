//! A Node image built as a typical single-stage Dockerfile builds it: Debian's nodejs,
//! npm and build-essential (`scripts/debian-rootfs node-dev`), then the app's layer:
//! `npm install` with its devDependencies (TypeScript, type packages, supertest; npm's
//! cache left in /root/.npm), `tsc` run in place and the tests run in place.
//! Slimmed by a policy that extends `aggressive` and removes npm with autoremove:
//!
//! - npm's own pruning is the judge of the devDependencies: `npm prune --omit=dev`
//!   on a copy of the app leaves the same packages as the slimmed image;
//! - dpkg is the judge of the database: `dpkg --audit`, `dpkg --verify` and `apt-get
//!   check` find nothing, `dpkg-query` lists the input's packages minus exactly those
//!   the report removed, and a .deb still installs, its README left out by the
//!   `path-exclude` lines and its copyright kept;
//! - the server still answers under Docker, and the image is at least 45% smaller.

use crate::builder::Spec;
use crate::tools::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

const PACKAGE_JSON: &str = r#"{
  "name": "slim-node-app",
  "version": "1.0.0",
  "private": true,
  "main": "dist/server.js",
  "scripts": { "build": "tsc", "test": "node --test dist/" },
  "dependencies": { "express": "4.21.2" },
  "devDependencies": {
    "@types/express": "4.17.21",
    "@types/node": "20.17.10",
    "supertest": "7.0.0",
    "typescript": "5.7.2"
  }
}
"#;

const TSCONFIG: &str = r#"{ "compilerOptions": { "target": "es2020", "module": "commonjs",
  "outDir": "dist", "rootDir": "src", "esModuleInterop": true, "types": ["node"] } }
"#;

const APP_TS: &str = r#"import express from 'express';
export const app = express();
app.get('/health', (_req, res) => { res.json({ ok: true, pid: typeof process.pid }); });
"#;

const SERVER_TS: &str = r#"import http from 'node:http';
import { AddressInfo } from 'node:net';
import { app } from './app';
const server = app.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  http.get(`http://127.0.0.1:${port}/health`, (res) => {
    let body = '';
    res.on('data', (d) => (body += d));
    res.on('end', () => { console.log('node app', res.statusCode, body); server.close(); });
  });
});
"#;

const TEST_TS: &str = r#"import { test } from 'node:test';
// @ts-ignore: supertest ships no types and none are installed
import request from 'supertest';
import { app } from './app';
test('health', async () => { await request(app).get('/health').expect(200); });
"#;

const NPM: [&str; 3] = ["--no-audit", "--no-fund", "--no-update-notifier"];

/// The app's layer: sources, `npm install` (cache in /root/.npm), build and tests run
/// in place, by the host's npm and node.
fn app_layer(work: &Path) -> (PathBuf, PathBuf) {
    let top = work.join("app-layer");
    let app = top.join("srv/app");
    std::fs::create_dir_all(app.join("src")).unwrap();
    for (p, text) in [
        ("package.json", PACKAGE_JSON),
        ("tsconfig.json", TSCONFIG),
        ("src/app.ts", APP_TS),
        ("src/server.ts", SERVER_TS),
        ("src/app.test.ts", TEST_TS),
    ] {
        std::fs::write(app.join(p), text).unwrap();
    }
    let npm = |args: &[&str]| {
        run(Command::new("npm")
            .args(args)
            .args(NPM)
            .arg("--cache")
            .arg(top.join("root/.npm"))
            .current_dir(&app))
    };
    npm(&["install"]);
    npm(&["run", "build"]);
    npm(&["test"]);
    let tar = work.join("app.tar");
    run(Command::new("tar")
        .args(["--numeric-owner", "--owner=0", "--group=0", "-C"])
        .arg(&top)
        .arg("-cf")
        .arg(&tar)
        .args(["srv", "root"]));
    (tar, app)
}

/// The package folders below `root`'s node_modules: each folder holding a
/// package.json whose parent is `node_modules` or a `@scope` in it.
fn package_folders(root: &Path) -> BTreeSet<String> {
    let out = run(Command::new("find")
        .arg(root.join("node_modules"))
        .args(["-name", "package.json"]));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix(root.to_str().unwrap()))
        .filter_map(|l| l.strip_suffix("/package.json"))
        .filter(|d| {
            let parts: Vec<&str> = d.split('/').collect();
            let n = parts.len();
            n >= 2
                && (parts[n - 2] == "node_modules"
                    || (n >= 3 && parts[n - 2].starts_with('@') && parts[n - 3] == "node_modules"))
        })
        .map(String::from)
        .collect()
}

/// The `dpkg-query -W` format of the installed-package lines.
const QUERY: &str = "${db:Status-Status} ${Package}\n";

/// The installed packages in `dpkg-query` output.
fn installed(out: &str) -> BTreeSet<String> {
    out.lines()
        .filter_map(|l| l.strip_prefix("installed "))
        .map(String::from)
        .collect()
}

/// The installed packages of a root filesystem tar, by the host's dpkg-query reading
/// its database (`--admindir`).
pub fn installed_in_tar(tar: &Path, work: &Path) -> BTreeSet<String> {
    let dir = work.join("admindir");
    std::fs::create_dir_all(&dir).unwrap();
    run(Command::new("tar")
        .arg("-xf")
        .arg(tar)
        .arg("-C")
        .arg(&dir)
        .args(["./var/lib/dpkg/status", "./var/lib/dpkg/info"]));
    let out = run(Command::new("dpkg-query")
        .arg(format!("--admindir={}", dir.join("var/lib/dpkg").display()))
        .args(["-W", "-f", QUERY]));
    installed(&String::from_utf8_lossy(&out.stdout))
}

/// Loads the docker archive `archive` as `tag` and, in one container (each costs a
/// copy of the image here), runs `prelude`, then `dpkg --audit`, `dpkg --verify` and
/// `apt-get check` (which print what they find), and installs a .deb whose README the
/// `path-exclude` lines leave out. Returns what `prelude` printed, once the rest is
/// checked, and the installed packages `dpkg-query` listed before the install.
pub fn dpkg_checks(
    archive: &Path,
    tag: &str,
    work: &Path,
    prelude: &str,
) -> (String, BTreeSet<String>) {
    run(docker().arg("load").arg("-i").arg(archive));
    let deb = crate::packages::small_deb(work);
    let ran = run(docker()
        .args(["run", "--rm", "--network", "none", "-v"])
        .arg(format!("{}:/deb/hello.deb:ro", deb.display()))
        .args([
            "--entrypoint",
            "sh",
            tag,
            "-ec",
            &format!(
                "{prelude}; echo ---; dpkg-query -W -f '{QUERY}' >/tmp/installed; \
                 dpkg --audit; dpkg --verify; apt-get check -qq; \
                 apt-get install -y -qq /deb/hello.deb >/dev/null; \
                 cat /usr/share/ocislim-hello/hello; ls /usr/share/doc/ocislim-hello; \
                 echo ---; cat /tmp/installed"
            ),
        ]));
    run(docker().args(["rmi", tag]));
    let stdout = String::from_utf8_lossy(&ran.stdout).into_owned();
    let mut parts = stdout.splitn(3, "---\n");
    let (app, checks, listed) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    assert!(
        checks == "hello\ncopyright\n",
        "dpkg, apt or the install found: {checks}{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    (app.to_string(), installed(listed))
}

#[test]
fn a_single_stage_node_image_loses_its_toolchain_and_dev_dependencies_and_still_runs() {
    let w = scratch();
    let base = crate::closure::rootfs("OCISLIM_DEBIAN_NODE_DEV", "node-dev");
    let (app_tar, app) = app_layer(w.path());
    let dir = w.path().join("img");
    Spec::parse(
        "tag node:1\nconfig Cmd=[\"node\",\"dist/server.js\"] WorkingDir=\"/srv/app\"\nlayer\nlayer\n",
    )
    .write_layout_of(
        &dir,
        vec![std::fs::read(&base).unwrap(), std::fs::read(&app_tar).unwrap()],
        false,
    );
    // The app's layer leaves dpkg's database alone: the base's is the input's.
    let before_packages = installed_in_tar(&base, w.path());

    let tag = "ocislim-test/node-dev:slim";
    let (out, r) = squash_with_policy(
        w.path(),
        &dir,
        "extends = [\"aggressive\"]\n[packages]\nremove = [\"npm\"]\nautoremove = true\n",
        tag,
    );
    let (before, after) = (
        r["before"]["uncompressed"].as_u64().unwrap(),
        r["after"]["uncompressed"].as_u64().unwrap(),
    );
    let removed: BTreeSet<String> = ["removed", "removed_unneeded", "autoremoved"]
        .iter()
        .flat_map(|k| r["packages"][k].as_array().unwrap().iter())
        .map(|n| n.as_str().unwrap().to_string())
        .collect();
    eprintln!(
        "node single-stage: {before} -> {after} tar bytes ({:.1}% smaller), stored {} -> {}; \
         {} packages removed; npm {:#}",
        100.0 * (1.0 - after as f64 / before as f64),
        r["before"]["compressed"],
        r["after"]["compressed"],
        removed.len(),
        r["npm"]
    );
    for p in ["npm", "gcc-12", "g++-12", "make", "libc6-dev", "node-gyp"] {
        assert!(removed.contains(p), "{p} not removed: {removed:?}");
    }
    assert!(
        after as f64 <= before as f64 * 0.55,
        "only {:.1}% smaller: {before} -> {after}",
        100.0 * (1.0 - after as f64 / before as f64)
    );

    // npm prune --omit=dev on a copy of the app is the judge of node_modules.
    let pruned = w.path().join("npm-pruned");
    run(Command::new("cp").arg("-a").arg(&app).arg(&pruned));
    run(Command::new("npm")
        .args(["prune", "--omit=dev"])
        .args(NPM)
        .current_dir(&pruned));
    let ours_layout = w.path().join("slim-oci");
    run(ocislim()
        .arg("convert")
        .arg(format!("docker-archive:{}", out.display()))
        .arg("-o")
        .arg(format!("oci:{}:1", ours_layout.display())));
    let root = umoci_unpack(&ours_layout, "1", w.path());
    let (want, got) = (
        package_folders(&pruned),
        package_folders(&root.join("srv/app")),
    );
    assert!(
        want == got,
        "node_modules differs from npm prune --omit=dev (- npm, + ocislim):\n{}",
        diff(
            &want.iter().cloned().collect::<Vec<_>>().join("\n"),
            &got.iter().cloned().collect::<Vec<_>>().join("\n")
        )
    );
    assert!(!got.iter().any(|p| p.ends_with("/typescript")));
    assert!(!root.join("srv/app/node_modules/.bin/tsc").exists());
    // npm's cache: its folder stays (the rule deletes `root/.npm/**`), empty.
    let cache = std::fs::read_dir(root.join("root/.npm")).map_or(0, |d| d.count());
    assert_eq!(cache, 0);

    // Under Docker: the app answers; dpkg and apt find nothing wrong; a .deb installs.
    let (checks, got) = dpkg_checks(&out, tag, w.path(), "node dist/server.js");
    assert_eq!(checks, "node app 200 {\"ok\":true,\"pid\":\"number\"}\n");
    let want: BTreeSet<String> = before_packages.difference(&removed).cloned().collect();
    assert_eq!(got, want);
}
