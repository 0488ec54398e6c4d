//! The registry transport against a real registry: Debian's `docker-registry`
//! (distribution 2.8) on loopback, plain, with htpasswd basic auth and TLS from a CA
//! made here, and with bearer tokens from a token server written here. skopeo puts the
//! inputs in and judges what ocislim pushed.

use crate::fixtures;
use crate::tools::*;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const USER: &str = "ci";
pub const PASS: &str = "s3cret-pass";
const TOKEN_SERVICE: &str = "ocislim-test-registry";
const TOKEN_ISSUER: &str = "ocislim-test-issuer";

/// A registry process with its own storage, port and log.
pub struct Registry {
    dir: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
    pub secure: bool,
    /// Bearer tokens from a token server are needed (and `--creds` for it).
    token: bool,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn sh(cmd: &str, dir: &Path) {
    run(Command::new("sh").args(["-euc", cmd]).current_dir(dir));
}

impl Registry {
    /// Plain HTTP, anonymous; or (`secure`) TLS from a fresh CA and htpasswd basic auth.
    pub fn start(secure: bool) -> Registry {
        Registry::start_with(secure, None)
    }

    /// Plain HTTP with token auth: the token server at `realm` signs with the key of
    /// certificate `bundle`.
    pub fn start_token(realm: &str, bundle: &Path) -> Registry {
        Registry::start_with(false, Some((realm, bundle)))
    }

    /// TLS (from a fresh CA) with token auth, the token server at `realm`.
    pub fn start_tls_token(realm: &str, bundle: &Path) -> Registry {
        Registry::start_with(true, Some((realm, bundle)))
    }

    fn start_with(secure: bool, token: Option<(&str, &Path)>) -> Registry {
        let dir = tempfile::Builder::new()
            .prefix("ocislim-registry-")
            .tempdir()
            .unwrap();
        let port = free_port();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
             http:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("data").display()
        );
        if secure {
            std::fs::create_dir(dir.path().join("certs")).unwrap();
            sh(
                &format!(
                    "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out certs/ca.crt \
                       -days 2 -subj /CN=ocislim-test-ca 2>/dev/null
                     openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr \
                       -subj /CN=127.0.0.1 2>/dev/null
                     printf 'subjectAltName=IP:127.0.0.1\\nbasicConstraints=CA:FALSE\\n' > ext
                     openssl x509 -req -in server.csr -CA certs/ca.crt -CAkey ca.key \
                       -CAcreateserial -out server.crt -days 2 -extfile ext 2>/dev/null
                     htpasswd -Bbn {USER} {PASS} > htpasswd"
                ),
                dir.path(),
            );
            let d = dir.path().display();
            config +=
                &format!("  tls:\n    certificate: {d}/server.crt\n    key: {d}/server.key\n");
            if token.is_none() {
                config += &format!(
                    "auth:\n  htpasswd:\n    realm: ocislim-test\n    path: {d}/htpasswd\n"
                );
            }
        }
        if let Some((realm, bundle)) = token {
            config += &format!(
                "auth:\n  token:\n    realm: {realm}\n    service: {TOKEN_SERVICE}\n\
                 \x20   issuer: {TOKEN_ISSUER}\n    rootcertbundle: {}\n",
                bundle.display()
            );
        }
        std::fs::write(dir.path().join("config.yml"), config).unwrap();
        let mut r = Registry {
            dir,
            port,
            child: None,
            secure,
            token: token.is_some(),
        };
        r.spawn();
        r
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("log"))
            .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(self.dir.path().join("config.yml"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("docker-registry (Debian package docker-registry) runs");
        self.child = Some(child);
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "registry did not start: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the process (its storage stays).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port and storage.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn certs(&self) -> PathBuf {
        self.dir.path().join("certs")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    /// How to reach it, for ocislim and skopeo alike.
    pub fn access(&self) -> Vec<String> {
        if self.secure {
            vec![
                format!("--creds={USER}:{PASS}"),
                format!("--cert-dir={}", self.certs().display()),
            ]
        } else if self.token {
            vec![
                format!("--creds={USER}:{PASS}"),
                "--tls-verify=false".into(),
            ]
        } else {
            vec!["--tls-verify=false".into()]
        }
    }

    fn skopeo_access(&self, prefix: &str) -> Vec<String> {
        self.access()
            .iter()
            .map(|a| a.replacen("--", &format!("--{prefix}"), 1))
            .collect()
    }

    /// Copies `from` (a skopeo reference) into the registry as `repo:tag`.
    pub fn put(&self, from: &str, repo_tag: &str) {
        run(Command::new("skopeo")
            .args(["copy", "--quiet"])
            .args(self.skopeo_access("dest-"))
            .arg(from)
            .arg(format!("docker://{}/{repo_tag}", self.host())));
    }

    /// skopeo's view of `repo:tag`: the raw manifest's digest.
    pub fn digest(&self, repo_tag: &str) -> String {
        let out = run(Command::new("skopeo")
            .args(["inspect", "--format", "{{.Digest}}"])
            .args(self.access())
            .arg(format!("docker://{}/{repo_tag}", self.host())));
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// Upload sessions started since the log had `since` bytes (a mount is not one).
    /// Bytes of the blobs the registry stores, as its storage on disk holds them.
    pub fn blob_bytes(&self) -> u64 {
        let mut total = 0;
        let mut stack = vec![self.dir.path().join("data/docker/registry/v2/blobs")];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let m = e.metadata().unwrap();
                if m.is_dir() {
                    stack.push(e.path());
                } else {
                    total += m.len();
                }
            }
        }
        total
    }

    pub fn uploads_since(&self, since: usize) -> usize {
        self.log()[since..]
            .lines()
            .filter(|l| l.contains("\"POST /v2/") && l.contains("/blobs/uploads/ HTTP"))
            .count()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The busybox fixture with two layers of its own on top (`extra` bytes of filler in
/// the second), as an OCI layout.
pub fn test_image(work: &Path, mark: &str, extra: usize) -> PathBuf {
    let text = std::fs::read_to_string(fixtures::fixtures_dir().join("busybox.spec")).unwrap();
    let text = format!(
        "{text}layer \"mark\"\nfile etc/who \"{mark}\"\nfile usr/share/doc/x/README \"docs\"\n\
         layer \"data\"\nfile srv/data size={extra}:7\n"
    );
    let dir = work.join(format!("{mark}.oci"));
    crate::builder::Spec::parse(&text).write_layout(&dir, false);
    dir
}

fn manifest_digest_of_layout(layout: &Path, tag: &str) -> String {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap_or_else(|| panic!("{tag} in {index}"))["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

fn squash_json(args: &[&str], access: &[String]) -> serde_json::Value {
    let out = run(Command::new(OCISLIM)
        .args(["squash", "--json"])
        .args(args)
        .args(access));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"))
}

/// Pull, squash, push on a plain registry: skopeo reads back the very manifest ocislim
/// writes to a file for the same input, and copies it to a layout with the same digest.
/// Then `--keep-layers` pushes: to the same repository only the new layer and the config
/// are uploaded (the registry's log counts upload sessions), and to another repository
/// of the registry what the source repository has is mounted, not uploaded.
#[test]
fn pull_squash_push_equals_file_output_and_keep_layers_uploads_only_new_blobs() {
    let w = scratch();
    let reg = Registry::start(false);
    let layout = test_image(w.path(), "plain", 64 << 10);
    reg.put(&format!("oci:{}:1", layout.display()), "app:1");
    let src = format!("docker://{}/app:1", reg.host());

    // The same input, from the file and from the registry.
    let file_out = w.path().join("file-out");
    run(ocislim()
        .args(["squash", "-q", &format!("oci:{}:1", layout.display())])
        .arg("-o")
        .arg(format!("oci:{}:slim", file_out.display())));
    let want = manifest_digest_of_layout(&file_out, "slim");
    let r = squash_json(
        &[&src, "-o", &format!("docker://{}/app:slim", reg.host())],
        &reg.access(),
    );
    assert_eq!(r["pushed"]["digest"], want.as_str(), "{r}");
    assert_eq!(reg.digest("app:slim"), want);
    let copy = w.path().join("copy");
    run(Command::new("skopeo")
        .args(["copy", "--quiet", "--src-tls-verify=false"])
        .arg(format!("docker://{}/app:slim", reg.host()))
        .arg(format!("oci:{}:slim", copy.display())));
    // Same manifest digest: same config and layer blobs, byte for byte.
    assert_eq!(manifest_digest_of_layout(&copy, "slim"), want);

    // --keep-layers 3 into the same repository: the 3 kept layers are there already.
    let keep_push = |repo_tag: &str| {
        let dest = format!("docker://{}/{repo_tag}", reg.host());
        squash_json(&[&src, "--keep-layers", "3", "-o", &dest], &reg.access())
    };
    let since = reg.log().len();
    let r = keep_push("app:keep");
    assert_eq!(reg.uploads_since(since), 2, "{}", &reg.log()[since..]);
    assert_eq!(
        (&r["pushed"]["uploaded"], &r["pushed"]["present"]),
        (&2.into(), &3.into()),
        "{r}"
    );
    // Into another repository: mounted from the source's, every blob (the squashed
    // layer and config are there too, from the push just made).
    let since = reg.log().len();
    let r = keep_push("other:keep");
    assert_eq!(reg.uploads_since(since), 0, "{}", &reg.log()[since..]);
    assert_eq!(r["pushed"]["mounted"], 5, "{r}");
    assert_eq!(
        reg.digest("other:keep"),
        r["pushed"]["digest"].as_str().unwrap()
    );
    // A full push of the same into a fresh repository uploads every blob.
    let since = reg.log().len();
    run(ocislim()
        .args(["convert", "-q"])
        .arg(format!("oci:{}:1", layout.display()))
        .args(["-o", &format!("docker://{}/fresh:1", reg.host())])
        .args(reg.access()));
    assert_eq!(reg.uploads_since(since), 5, "4 layers and the config");
    // A push is named by its reference; --tag is refused before anything is read.
    let (code, err) = run_fail(ocislim().args([
        "squash",
        &src,
        "--tag",
        "other:name",
        "-o",
        &format!("docker://{}/app:tagged", reg.host()),
        "--tls-verify=false",
    ]));
    assert_eq!(code, 2, "{err}");
}

/// A cosign signature beside the input in the repository (tag `sha256-<hex>.sig`): the
/// squash names it as left behind, and the output gets no signature tag.
#[test]
fn a_cosign_signature_in_the_registry_is_named_and_not_copied() {
    let w = scratch();
    let reg = Registry::start(false);
    let layout = test_image(w.path(), "signed", 1 << 10);
    reg.put(&format!("oci:{}:1", layout.display()), "app:1");
    let digest = reg.digest("app:1");
    // What cosign pushes is an OCI manifest under that tag; any small image stands in.
    let sig = test_image(w.path(), "sig", 16);
    reg.put(
        &format!("oci:{}:1", sig.display()),
        &format!("app:sha256-{}.sig", &digest[7..]),
    );
    let src = format!("docker://{}/app:1", reg.host());
    let r = squash_json(
        &[&src, "-o", &format!("docker://{}/slim:1", reg.host())],
        &reg.access(),
    );
    let warnings = r["warnings"].to_string();
    assert!(
        warnings.contains(&format!(
            "left behind cosign sig sha256-{}.sig",
            &digest[7..]
        )),
        "{r}"
    );
    assert!(!warnings.contains(".att"), "{r}");
    let tags = run(Command::new("skopeo")
        .args(["list-tags", "--tls-verify=false"])
        .arg(format!("docker://{}/slim", reg.host())));
    let tags: serde_json::Value = serde_json::from_slice(&tags.stdout).unwrap();
    assert_eq!(tags["Tags"], serde_json::json!(["1"]), "{tags}");
}

/// htpasswd basic auth (no token server) and TLS from a CA made here: without
/// credentials the registry refuses, without the CA the certificate is refused; with
/// `--creds`, an authfile, `REGISTRY_AUTH_FILE` or Docker's config.json naming a
/// credential helper, and `--cert-dir`, the round trip works and skopeo agrees.
#[test]
fn basic_auth_and_tls_from_a_private_ca() {
    let w = scratch();
    let reg = Registry::start(true);
    let layout = test_image(w.path(), "secure", 1 << 10);
    reg.put(&format!("oci:{}:1", layout.display()), "app:1");
    let src = format!("docker://{}/app:1", reg.host());
    let cert_dir = format!("--cert-dir={}", reg.certs().display());

    let (code, err) = run_fail(ocislim().args(["inspect", &src, &cert_dir]));
    assert_eq!(code, 1);
    assert!(
        err.contains(&src) && err.contains("authentication failed: 401 Unauthorized"),
        "{err}"
    );
    let (code, err) =
        run_fail(ocislim().args(["inspect", &src, &format!("--creds={USER}:{PASS}")]));
    assert_eq!(code, 1);
    assert!(err.contains(&src) && err.contains("certificate"), "{err}");

    // Credentials from an auth file, as `skopeo login` / `docker login` write them.
    let authfile = w.path().join("auth.json");
    let token = base64(&format!("{USER}:{PASS}"));
    std::fs::write(
        &authfile,
        format!(
            "{{\"auths\":{{\"{}\":{{\"auth\":\"{token}\"}}}}}}",
            reg.host()
        ),
    )
    .unwrap();
    let dest = format!("docker://{}/app:slim", reg.host());
    let r = squash_json(
        &[
            &src,
            "-o",
            &dest,
            "--authfile",
            authfile.to_str().unwrap(),
            &cert_dir,
        ],
        &[],
    );
    assert_eq!(
        reg.digest("app:slim"),
        r["pushed"]["digest"].as_str().unwrap()
    );
    // And from REGISTRY_AUTH_FILE, with --creds' spelling checked against skopeo's.
    let out = run(ocislim()
        .args(["inspect", "--json", &dest, &cert_dir])
        .env("REGISTRY_AUTH_FILE", &authfile));
    let inspected: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        inspected["layers"].as_array().unwrap().len(),
        1,
        "{inspected}"
    );
    // It names where the image is, not the folder it was pulled into.
    assert_eq!(inspected["format"], "docker", "{inspected}");
    assert!(
        inspected["shape"]
            .as_str()
            .unwrap()
            .starts_with("a registry, "),
        "{inspected}"
    );

    // And from Docker's config.json through a credential helper: a script on PATH that
    // answers `get` as docker-credential-* helpers do.
    let bin = w.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let helper = bin.join("docker-credential-ocislimtest");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread server\n\
             printf '{{\"ServerURL\":\"%s\",\"Username\":\"{USER}\",\"Secret\":\"{PASS}\"}}' \"$server\"\n"
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let docker_config = w.path().join("docker-config");
    std::fs::create_dir(&docker_config).unwrap();
    std::fs::write(
        docker_config.join("config.json"),
        format!("{{\"credHelpers\":{{\"{}\":\"ocislimtest\"}}}}", reg.host()),
    )
    .unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    run(ocislim()
        .args(["inspect", &dest, &cert_dir])
        .env("DOCKER_CONFIG", &docker_config)
        .env("XDG_RUNTIME_DIR", w.path())
        .env_remove("REGISTRY_AUTH_FILE")
        .env("PATH", path));
}

/// A token server, written here in Python: it checks basic credentials and answers with
/// a JWT (RS256, signed by `openssl dgst`, its certificate in the `x5c` header) granting
/// the scopes asked for, as distribution's token auth expects. Each request is logged as
/// a JSON line (its scopes, whether the credentials were right).
const TOKEN_SERVER: &str = r#"
import base64, http.server, json, subprocess, sys, time, urllib.parse
port, key, cert, user, password, log, issuer = sys.argv[1:8]
der = subprocess.run(["openssl", "x509", "-in", cert, "-outform", "DER"],
                     capture_output=True, check=True).stdout
def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        q = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
        basic = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        ok = self.headers.get("Authorization") == basic
        scopes = q.get("scope", [])
        with open(log, "a") as f:
            f.write(json.dumps({"scopes": scopes, "ok": ok}) + "\n")
        if not ok:
            self.send_response(401)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        access = []
        for s in scopes:
            kind, rest = s.split(":", 1)
            name, actions = rest.rsplit(":", 1)
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(der).decode()]}
        claims = {"iss": issuer, "sub": user, "aud": q["service"][0], "exp": now + 300,
                  "nbf": now - 10, "iat": now, "jti": str(time.time_ns()), "access": access}
        signed = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key],
                             input=signed.encode(), capture_output=True, check=True).stdout
        token = signed + "." + b64(sig)
        body = json.dumps({"token": token, "access_token": token, "expires_in": 300}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
http.server.ThreadingHTTPServer(("127.0.0.1", int(port)), H).serve_forever()
"#;

/// Bearer-token auth: the registry sends clients to a token server (above) that takes
/// basic credentials. With `--creds` ocislim gets tokens for pull and push (the server's
/// log shows its scopes) and pushes what skopeo reads back; with a wrong password it
/// exits 1 in one line and nothing is pushed.
#[test]
fn bearer_tokens_from_a_token_server() {
    let w = scratch();
    let d = w.path();
    sh(
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout token.key -out token.crt \
           -days 2 -subj /CN=ocislim-test-token 2>/dev/null",
        d,
    );
    let port = free_port();
    let log = d.join("token.log");
    let _server = python_server(
        TOKEN_SERVER,
        port,
        &[
            d.join("token.key").into(),
            d.join("token.crt").into(),
            USER.into(),
            PASS.into(),
            log.clone().into(),
            TOKEN_ISSUER.into(),
        ],
    );
    let reg = Registry::start_token(
        &format!("http://127.0.0.1:{port}/token"),
        &d.join("token.crt"),
    );
    let layout = test_image(d, "token", 1 << 10);
    reg.put(&format!("oci:{}:1", layout.display()), "app:1");
    let src = format!("docker://{}/app:1", reg.host());
    let dest = format!("docker://{}/app:slim", reg.host());

    let (code, err) = run_fail(ocislim().args([
        "squash",
        &src,
        "-o",
        &dest,
        "--tls-verify=false",
        &format!("--creds={USER}:wrong"),
    ]));
    assert_eq!(code, 1, "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains(&src) && err.contains("refused the credentials"),
        "{err}"
    );

    let since = std::fs::read_to_string(&log).unwrap().len();
    let r = squash_json(&[&src, "-o", &dest], &reg.access());
    assert_eq!(
        reg.digest("app:slim"),
        r["pushed"]["digest"].as_str().unwrap()
    );
    let requests: Vec<serde_json::Value> = std::fs::read_to_string(&log).unwrap()[since..]
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(requests.iter().all(|r| r["ok"] == true), "{requests:?}");
    let scopes = serde_json::Value::from(requests).to_string();
    assert!(
        scopes.contains("repository:app:pull") && scopes.contains("push"),
        "{scopes}"
    );
    // Without a token the registry refuses: the registry, not the token server, was the
    // judge of what was pushed.
    let mut s = TcpStream::connect(("127.0.0.1", reg.port)).unwrap();
    write!(
        s,
        "GET /v2/app/manifests/slim HTTP/1.0\r\nHost: {}\r\n\r\n",
        reg.host()
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.0 401"), "{answer}");
    assert!(answer.contains("Bearer realm="), "{answer}");
}

fn base64(s: &str) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut o = String::new();
    for c in b.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                o.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                o.push('=');
            }
        }
    }
    o
}

/// A TCP relay in front of the registry that stops the registry once `after` bytes of
/// requests went through (partway into a layer upload), and refuses from then on.
struct Cutter {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl Cutter {
    fn start(reg: &Arc<Mutex<Registry>>, after: u64) -> Cutter {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let backend = reg.lock().unwrap().port;
        // Weak: the registry goes with the test, however it ends.
        let reg = Arc::downgrade(reg);
        let s = stop.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { break };
                if s.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", backend)) else {
                    continue;
                };
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (stop, sent, reg) = (s.clone(), sent.clone(), reg.clone());
                // Requests: counted, and the registry stopped past the mark.
                std::thread::spawn(move || {
                    let (mut from, mut to) = (client, server);
                    let mut buf = [0u8; 16 << 10];
                    while let Ok(n) = from.read(&mut buf) {
                        if n == 0 || stop.load(Ordering::SeqCst) {
                            break;
                        }
                        if sent.fetch_add(n as u64, Ordering::SeqCst) + n as u64 > after {
                            stop.store(true, Ordering::SeqCst);
                            if let Some(r) = reg.upgrade() {
                                r.lock().unwrap().stop();
                            }
                            break;
                        }
                        if to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = to.shutdown(std::net::Shutdown::Both);
                    let _ = from.shutdown(std::net::Shutdown::Both);
                });
                std::thread::spawn(move || {
                    let (mut from, mut to) = (s2, c2);
                    let _ = std::io::copy(&mut from, &mut to);
                    let _ = to.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        Cutter { port, stop }
    }
}

/// A push that fails halfway (the registry is stopped during a layer upload) exits 1,
/// and the tag still resolves to the old digest once the registry is back.
#[test]
fn a_push_cut_halfway_leaves_the_old_tag() {
    let w = scratch();
    let reg = Arc::new(Mutex::new(Registry::start(false)));
    let old = test_image(w.path(), "old", 1 << 10);
    let new = test_image(w.path(), "new", 4 << 20);
    let (host, access) = {
        let r = reg.lock().unwrap();
        r.put(&format!("oci:{}:1", old.display()), "app:1");
        (r.host(), r.access())
    };
    let old_digest = reg.lock().unwrap().digest("app:1");
    let cutter = Cutter::start(&reg, 256 << 10);
    let (code, err) = run_fail(
        ocislim()
            .args(["convert", "-q"])
            .arg(format!("oci:{}:1", new.display()))
            .args(["-o", &format!("docker://127.0.0.1:{}/app:1", cutter.port)])
            .args(&access),
    );
    assert!(
        cutter.stop.load(Ordering::SeqCst),
        "the relay never cut: {err}"
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!("127.0.0.1:{}/app:1", cutter.port)),
        "{err}"
    );
    let mut r = reg.lock().unwrap();
    r.restart();
    assert_eq!(r.host(), host);
    assert_eq!(r.digest("app:1"), old_digest);
}

/// The Docker engine as source and destination: `docker-daemon:` in, `docker-daemon:`
/// out, no archive in between, and the result runs.
#[test]
fn docker_daemon_round_trip_runs() {
    let w = scratch();
    let layout = test_image(w.path(), "daemon", 1 << 10);
    let archive = w.path().join("in.tar");
    run(ocislim()
        .args(["convert", "-q"])
        .arg(format!("oci:{}:1", layout.display()))
        .args([
            "--tag",
            "ocislim-test/daemon:1",
            "--format",
            "docker-archive",
            "-o",
        ])
        .arg(&archive));
    run(docker().args(["load", "-q", "-i"]).arg(&archive));
    let r = squash_json(
        &[
            "docker-daemon:ocislim-test/daemon:1",
            "-o",
            "docker-daemon:ocislim-test/daemon:slim",
        ],
        &[],
    );
    assert_eq!(r["output_format"], "docker-archive", "{r}");
    assert_eq!(docker_layer_count("ocislim-test/daemon:slim").trim(), "1");
    let out = run(docker().args([
        "run",
        "--rm",
        "--network",
        "none",
        "ocislim-test/daemon:slim",
        "cat",
        "/etc/who",
    ]));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "daemon");
    let inspected = json_report(ocislim().args([
        "inspect",
        "--json",
        "docker-daemon:ocislim-test/daemon:slim",
    ]));
    assert_eq!(inspected["format"], "docker-daemon", "{inspected}");
    let (code, err) =
        run_fail(ocislim().args(["inspect", "docker-daemon:ocislim-test/no-such-image:1"]));
    assert_eq!(code, 1);
    assert!(
        err.contains("docker-daemon:ocislim-test/no-such-image:1"),
        "{err}"
    );
    run(docker().args(["rmi", "ocislim-test/daemon:1", "ocislim-test/daemon:slim"]));
}

/// A registry that lies, written here in Python: a layer longer than its descriptor
/// says, streamed without end, and a manifest that is not the digest asked for. Each is
/// refused with one line naming the blob or manifest, exit 1, the stream cut early, and
/// no spool left in `$TMPDIR`.
#[test]
fn a_lying_registry_is_refused_and_leaves_nothing() {
    const SERVER: &str = r#"
import hashlib, http.server, json, sys
layer_digest = "sha256:" + "ab" * 32
config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:' + b"cd" * 32 + b'"]}}'
config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": len(config)},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest, "size": 1000}]}).encode()
sent = 0
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def reply(self, body, ctype="application/json"):
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
    def do_HEAD(self): self.do_GET()
    def do_GET(self):
        global sent
        p = self.path
        if p == "/v2/":
            return self.reply(b"{}")
        if "/manifests/" in p:
            # Any tag or digest gets the same manifest: a digest reference is lied to.
            return self.reply(manifest, "application/vnd.oci.image.manifest.v1+json")
        if p.endswith(config_digest):
            return self.reply(config)
        if p.endswith(layer_digest):
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.end_headers()
            try:
                while True:
                    self.wfile.write(b"\0" * 65536)
                    sent += 65536
                    with open(sys.argv[2], "w") as f:
                        f.write(str(sent))
            except OSError:
                return
        self.send_response(404)
        self.end_headers()
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"#;
    let w = scratch();
    let port = free_port();
    let sent = w.path().join("sent");
    let _server = python_server(SERVER, port, &[sent.clone().into()]);
    let tmp = w.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let fail = |image: &str| {
        run_fail(
            ocislim()
                .args(["inspect", "--tls-verify=false", image])
                .env("TMPDIR", &tmp),
        )
    };
    let (code, err) = fail(&format!("docker://127.0.0.1:{port}/x:1"));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("size mismatch") && err.contains("sha256:abab"),
        "{err}"
    );
    let streamed: u64 = std::fs::read_to_string(&sent).unwrap().parse().unwrap();
    assert!(
        streamed < 64 << 20,
        "{streamed} bytes were sent before the cut"
    );
    let other = format!("sha256:{}", "ef".repeat(32));
    let (code, err) = fail(&format!("docker://127.0.0.1:{port}/x@{other}"));
    assert_eq!(code, 1, "{err}");
    // The digest is of the bytes received, never the registry's header.
    assert!(
        err.to_lowercase().contains("digest") && err.contains(&other),
        "{err}"
    );
    assert_eq!(entries(&tmp), Vec::<PathBuf>::new(), "spool left behind");
}

/// A TLS registry whose challenge names a plain `http://` token realm: the credentials
/// would cross in cleartext, so the run is refused in one line before any request
/// reaches the realm (the realm's server counts them); `--tls-verify=false` allows it.
#[test]
fn a_plaintext_token_realm_gets_no_credentials_while_tls_is_verified() {
    const COUNTER: &str = r#"
import http.server, sys
n = 0
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        global n
        n += 1
        with open(sys.argv[2], "w") as f:
            f.write(str(n))
        self.send_response(401)
        self.send_header("Content-Length", "0")
        self.end_headers()
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"#;
    let w = scratch();
    let d = w.path();
    sh(
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout token.key -out token.crt \
           -days 2 -subj /CN=ocislim-test-token 2>/dev/null",
        d,
    );
    let port = free_port();
    let count = d.join("count");
    let _realm = python_server(COUNTER, port, &[count.clone().into()]);
    let reg = Registry::start_tls_token(
        &format!("http://127.0.0.1:{port}/token"),
        &d.join("token.crt"),
    );
    let src = format!("docker://{}/app:1", reg.host());
    let (code, err) = run_fail(ocislim().args(["inspect", &src]).args(reg.access()));
    assert_eq!(code, 1, "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("plain HTTP") && err.contains(&format!("http://127.0.0.1:{port}/token")),
        "{err}"
    );
    assert!(!count.exists(), "the realm was asked");
    // Marked insecure, the realm is asked (and refuses these credentials).
    let (code, err) = run_fail(ocislim().args([
        "inspect",
        &src,
        "--tls-verify=false",
        &format!("--creds={USER}:{PASS}"),
    ]));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("refused the credentials"), "{err}");
    assert_eq!(std::fs::read_to_string(&count).unwrap(), "1");
}

/// A registry whose replies are endless or huge: a manifest, an error body and a token
/// reply are each refused at their limit as they stream (peak RSS far below what was
/// sent), an error body is shown as a short excerpt on one line with its control bytes
/// escaped, and a registry that trickles is cut by `--timeout`.
#[test]
fn endless_replies_are_capped_as_they_stream_and_shown_as_short_excerpts() {
    const SERVER: &str = r#"
import http.server, sys, time
port = sys.argv[1]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def endless(self, code, piece, ctype="application/json"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(1 << 40))
        self.end_headers()
        try:
            while True:
                self.wfile.write(piece * 4096)
        except OSError:
            return
    def do_GET(self):
        p = self.path
        if p == "/v2/":
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            return self.wfile.write(b"{}")
        if p.startswith("/v2/big/manifests/"):
            return self.endless(200, b'{"a":1}   ', "application/vnd.oci.image.manifest.v1+json")
        if p.startswith("/v2/gone/manifests/"):
            return self.endless(404, b"no \x1b[31mred\x1b[0m\r\nhere ")
        if p.startswith("/v2/slow/manifests/"):
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            try:
                while True:
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    time.sleep(2)
            except OSError:
                return
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()
http.server.ThreadingHTTPServer(("127.0.0.1", int(port)), H).serve_forever()
"#;
    const TOKENS: &str = r#"
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_GET(self):
        if self.path.startswith("/v2/"):
            self.send_response(401)
            self.send_header("WWW-Authenticate",
                'Bearer realm="http://127.0.0.1:%s/token",service="s"' % sys.argv[1])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(1 << 40))
        self.end_headers()
        try:
            while True:
                self.wfile.write(b'{"token":"' + b"x" * 65536)
        except OSError:
            return
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"#;
    let port = free_port();
    let _server = python_server(SERVER, port, &[]);
    let tport = free_port();
    let _tokens = python_server(TOKENS, tport, &[]);
    let fail = |image: String, extra: &[&str]| {
        let mut cmd = ocislim();
        cmd.args(["inspect", "--tls-verify=false", &image])
            .args(extra);
        let (out, peak_kib) = crate::hostile2::with_peak_rss(&cmd);
        assert_eq!(out.status.code(), Some(1), "{image}: {:?}", out);
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.trim().lines().count(), 1, "{image}: {err}");
        assert!(!err.contains('\x1b'), "{image}: a raw escape byte: {err}");
        assert!(peak_kib < 256 << 10, "{image}: peak RSS {peak_kib} KiB");
        eprintln!("{image}: peak RSS {peak_kib} KiB: {}", err.trim());
        err
    };
    let err = fail(format!("docker://127.0.0.1:{port}/big:1"), &[]);
    assert!(err.contains("more than 33554432 bytes"), "{err}");
    let err = fail(format!("docker://127.0.0.1:{port}/gone:1"), &[]);
    assert!(err.contains("404 Not Found: no \\u{1b}[31mred"), "{err}");
    assert!(err.len() < 600, "{} bytes: {err}", err.len());
    let err = fail(format!("docker://127.0.0.1:{tport}/any:1"), &[]);
    assert!(
        err.contains("token: a reply of more than 1048576 bytes"),
        "{err}"
    );
    let err = fail(
        format!("docker://127.0.0.1:{port}/slow:1"),
        &["--timeout", "5s"],
    );
    assert!(
        err.contains("timeout") || err.contains("no reply within"),
        "{err}"
    );
}

struct KillOnDrop(Child);

/// Starts `script` (its arguments: the port, then `args`) and waits until it listens on
/// `port`.
fn python_server(script: &str, port: u16, args: &[std::ffi::OsString]) -> KillOnDrop {
    let server = KillOnDrop(
        Command::new("python3")
            .args(["-c", script, &port.to_string()])
            .args(args)
            .spawn()
            .unwrap(),
    );
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "a python3 server on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
