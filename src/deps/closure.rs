//! Closure mode: keep only what the image needs, the way distroless images are made by
//! hand, and delete the rest. What is kept is computed from roots and iterated to a
//! fixed point:
//!
//! - roots: the config's `Entrypoint` + `Cmd` (the program through `PATH` and
//!   `WorkingDir`, every later word that names a path in the image, and the programs a
//!   `sh -c '...'` string names), and the policy's `[closure] roots` globs (a matched
//!   folder is kept whole);
//! - what a kept file needs, by the analysis of [`super`]: an ELF file's interpreter and
//!   every library of its load, a script's `#!` interpreter (and `env NAME` through
//!   `PATH`), the libraries glibc opens by name ([`super::runtime`]); every symlink on
//!   the way to a kept path (a symlinked `/lib` included) and every symlink's target;
//! - runtime presets a static reading cannot see ([`PRESETS`]), each applied when its
//!   runtime is kept (Python, Node, Java) or always (certificates, system files,
//!   `/tmp`, the working directory); `tzdata` and `gconv` only when asked for.
//!
//! Folders above a kept path stay (with their own metadata). Nothing is run: the image
//! is read, never executed.

use super::loader::{ElfCache, Loader};
use super::{config_words, elf, env, path_dirs, runtime, show, which};
use crate::layer::fs::{Fs, Stat, from_workdir, join_rel, normalise, resolve_trail};
use crate::layer::overlay::parent;
use globset::GlobSet;
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

/// Most distinct words of a `sh -c` string looked up as programs (each costs a lookup
/// per `PATH` folder; real commands have tens).
pub const MAX_SHELL_WORDS: usize = 4096;

/// A runtime preset: files a program needs that no header or `#!` line names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Preset {
    /// Python's standard library and package folders.
    Python,
    /// Node's module folders and the app's package.
    Node,
    /// The Java home.
    Java,
    /// CA certificates.
    Certificates,
    /// The system files most programs read.
    System,
    /// All time zone data.
    Tzdata,
    /// glibc's `iconv` modules.
    Gconv,
    /// `/tmp` and `/var/tmp`, as empty folders.
    Tmp,
    /// The working directory, whole.
    Workdir,
}

/// Every preset: its name in a policy, and what it keeps.
pub const PRESETS: &[(&str, Preset, &str)] = &[
    (
        "python",
        Preset::Python,
        "for a kept `pythonX.Y` program at PREFIX/bin: PREFIX/lib/pythonX.Y whole (standard \
         library, lib-dynload, site-packages), PREFIX/lib/pythonXY.zip, PREFIX/lib/python3/dist-packages, \
         /usr/local/lib/pythonX.Y (Debian's site folders); a virtual environment (a folder with \
         pyvenv.cfg) whose bin/python* is on the way to a kept program; PYTHONPATH, PYTHONHOME and \
         VIRTUAL_ENV folders of the config's Env",
    ),
    (
        "node",
        Preset::Node,
        "for a kept `node` or `nodejs` program: /usr/share/nodejs, /usr/lib/nodejs and \
         /usr/lib/TRIPLE/nodejs (Debian's module folders), PREFIX/lib/node, NODE_PATH folders; \
         the app's folder (the nearest folder with a package.json above a script the command \
         names), whole with its node_modules; a kept file inside node_modules/PKG keeps PKG whole",
    ),
    (
        "java",
        Preset::Java,
        "for a kept `java` program: JAVA_HOME from the config's Env, or the folder above the \
         program's bin (and the JDK above a jre), whole",
    ),
    (
        "certificates",
        Preset::Certificates,
        "/etc/ssl, /usr/lib/ssl (Debian's OPENSSLDIR), /etc/pki, /etc/ca-certificates, /etc/ca-certificates.conf, \
         /usr/share/ca-certificates, /usr/local/share/ca-certificates",
    ),
    (
        "system",
        Preset::System,
        "/etc/passwd, group, shadow, gshadow, nsswitch.conf, hosts, host.conf, resolv.conf, \
         gai.conf, localtime (and its zone file), timezone, os-release",
    ),
    (
        "tzdata",
        Preset::Tzdata,
        "/usr/share/zoneinfo whole (about 2 MB, for programs that read zones by name)",
    ),
    (
        "gconv",
        Preset::Gconv,
        "the gconv folder beside each kept glibc (iconv to encodings other than UTF-8, ASCII and Latin-1)",
    ),
    ("tmp", Preset::Tmp, "/tmp and /var/tmp, as empty folders"),
    (
        "workdir",
        Preset::Workdir,
        "the config's WorkingDir, whole (unless it is /)",
    ),
];

/// What closure mode always keeps, whatever the presets: the package databases (dpkg,
/// apt's marks, apk) and the files that name the OS.
pub const DATABASES: &[&str] = &[
    "var/lib/dpkg/status",
    "var/lib/dpkg/info",
    "var/lib/dpkg/triggers",
    "var/lib/dpkg/updates",
    "var/lib/dpkg/diversions",
    "var/lib/dpkg/statoverride",
    "var/lib/dpkg/arch",
    "var/lib/apt/extended_states",
    "lib/apk/db",
    "etc/apk",
    "etc/os-release",
    "usr/lib/os-release",
    "etc/debian_version",
    "etc/alpine-release",
];

/// The top folders a merged /usr makes symlinks (`/bin -> usr/bin`): closure keeps
/// each such link (not what it leads to), because the package database names files
/// through them (`/bin/bash`), and `dpkg --verify` and scanners look them up there.
const USR_ALIASES: &[&str] = &["bin", "sbin", "lib", "lib32", "lib64", "libx32"];

/// The files of dpkg's info folder closure mode keeps: each package's file list, its
/// checksums and its configuration files' names, and `format` (without it dpkg reads
/// the folder as the old layout and finds no `PKG:ARCH.list`).
const DPKG_INFO_KEPT: &[&[u8]] = &[b".list", b".md5sums", b".conffiles", b"/info/format"];

/// The presets a closure applies when a policy names none.
pub const DEFAULT_PRESETS: &[Preset] = &[
    Preset::Python,
    Preset::Node,
    Preset::Java,
    Preset::Certificates,
    Preset::System,
    Preset::Tmp,
    Preset::Workdir,
];

impl Preset {
    /// The preset of a name.
    pub fn named(name: &str) -> Option<Preset> {
        PRESETS.iter().find(|(n, _, _)| *n == name).map(|p| p.1)
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        PRESETS.iter().find(|p| p.1 == self).map_or("", |p| p.0)
    }
}

/// What a closure keeps, as the policy gives it.
#[derive(Clone, Debug, Default)]
pub struct ClosureOptions {
    /// `[closure] roots` globs, as written.
    pub roots: Vec<String>,
    /// The same, compiled.
    pub root_set: GlobSet,
    /// Presets applied.
    pub presets: BTreeSet<Preset>,
    /// Libraries opened by name at run time (`[runtime] libraries`).
    pub libraries: Vec<String>,
}

/// One kept path and why.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct Kept {
    /// The path.
    pub path: String,
    /// Why it is kept.
    pub why: String,
    /// The root that pulled it in.
    pub root: String,
}

/// One root of a closure.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct Root {
    /// The root: a path and why it is one.
    pub root: String,
    /// Paths it pulled in, itself included (a path counted for the first root that
    /// reached it).
    pub paths: usize,
}

/// What a closure kept and why.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize)]
pub struct ClosureReport {
    /// The roots, in the order they were taken.
    pub roots: Vec<Root>,
    /// The presets applied, with what triggered each.
    pub presets: Vec<String>,
    /// Paths kept (files, links, folders; the folders above them not counted).
    pub kept_paths: usize,
    /// Each kept path and why, a folder kept whole standing for its content.
    pub kept: Vec<Kept>,
}

/// A computed closure.
pub struct Closure {
    /// Every path kept, the folders above them included.
    pub keep: HashSet<Vec<u8>>,
    /// The report.
    pub report: ClosureReport,
}

impl Closure {
    /// Whether the path stays.
    pub fn keeps(&self, p: &[u8]) -> bool {
        p.is_empty() || self.keep.contains(p)
    }
}

/// One kept path.
struct Rec {
    path: Vec<u8>,
    why: String,
    by: Option<usize>,
}

struct Walk<'a> {
    fs: &'a dyn Fs,
    loader: Loader<'a>,
    opts: &'a ClosureOptions,
    env: Vec<String>,
    dirs: Vec<String>,
    recs: Vec<Rec>,
    index: HashMap<Vec<u8>, usize>,
    whole: HashSet<Vec<u8>>,
    queue: VecDeque<usize>,
    libcs: HashSet<Vec<u8>>,
    /// The `pythonX.Y` folders of each `PREFIX/lib` looked at (listed once each).
    python_libs: HashMap<Vec<u8>, Vec<Vec<u8>>>,
    presets: BTreeSet<String>,
}

fn basename(p: &[u8]) -> &[u8] {
    p.rsplit(|&b| b == b'/').next().unwrap_or(p)
}

/// `python3`, `python3.11`: a Python interpreter's name.
fn is_python(name: &[u8]) -> bool {
    name.strip_prefix(b"python").is_some_and(|v| {
        !v.is_empty() && v[0].is_ascii_digit() && v.iter().all(|b| b.is_ascii_digit() || *b == b'.')
    })
}

impl<'a> Walk<'a> {
    fn has(&self, p: &str) -> bool {
        self.fs.stat(p.as_bytes()).is_some()
    }

    /// Records `p` (already real or a symlink) once; queued for analysis when `analyze`.
    fn insert(&mut self, p: &[u8], why: &str, by: Option<usize>, analyze: bool) -> usize {
        if let Some(&i) = self.index.get(p) {
            return i;
        }
        let i = self.recs.len();
        self.recs.push(Rec {
            path: p.to_vec(),
            why: why.to_string(),
            by,
        });
        self.index.insert(p.to_vec(), i);
        if analyze {
            self.queue.push_back(i);
        }
        i
    }

    /// Keeps `p` (normalised) and every symlink on its way; returns the real path's
    /// record, `None` when it does not resolve.
    fn add(&mut self, p: &[u8], why: &str, by: Option<usize>, analyze: bool) -> Option<usize> {
        let mut links: Vec<Vec<u8>> = Vec::new();
        let real = resolve_trail(self.fs, p, &mut |l| links.push(l.to_vec()));
        let real = real.filter(|r| !r.is_empty());
        // The real path first, so a root's record is the file it names; the links on
        // the way hang below it.
        let i = real.as_ref().map(|r| {
            let why = if links.is_empty() {
                why.to_string()
            } else {
                format!("{why}, as {}", show(p))
            };
            self.insert(r, &why, by, analyze)
        });
        let link_why = format!("a symlink on the way to {}", show(p));
        for l in &links {
            let w = if l == p && i.is_none() {
                why
            } else {
                &link_why
            };
            let k = self.insert(l, w, i.or(by), false);
            self.venv(l, Some(k));
        }
        if let (Some(r), Some(i)) = (&real, i) {
            self.node_package(r, i);
        }
        i
    }

    /// Keeps the folder `p` (normalised, symlinks followed) and all it holds.
    fn whole(&mut self, p: &[u8], why: &str, by: Option<usize>) {
        self.whole_of(p, (why, None), by, true, &|_| true);
    }

    /// Keeps the folder `p` (normalised, symlinks followed) and what it holds that
    /// `keep` accepts, each with the reason `why.1` (default: inside `p`), analysed
    /// when `analyze`; returns the folder's record.
    fn whole_of(
        &mut self,
        p: &[u8],
        why: (&str, Option<&str>),
        by: Option<usize>,
        analyze: bool,
        keep: &dyn Fn(&[u8]) -> bool,
    ) -> Option<usize> {
        let i = self.add(p, why.0, by, false)?;
        let real = self.recs[i].path.clone();
        if !matches!(self.fs.stat(&real), Some(Stat::Dir)) || !self.whole.insert(real.clone()) {
            return Some(i);
        }
        let inside = why
            .1
            .map_or_else(|| format!("inside {}", show(&real)), String::from);
        for q in self.fs.under(&real).into_iter().filter(|q| keep(q)) {
            match self.fs.stat(&q) {
                Some(Stat::Symlink(_)) => {
                    self.add(&q, &inside, Some(i), analyze);
                }
                Some(Stat::File { .. }) => {
                    self.insert(&q, &inside, Some(i), analyze);
                }
                _ => {
                    self.insert(&q, &inside, Some(i), false);
                }
            }
        }
        Some(i)
    }

    /// The roots: the config's command, the policy's globs, the presets that always
    /// apply.
    fn roots(&mut self, config: &Value) {
        let c = &config["config"];
        let workdir = normalise(c["WorkingDir"].as_str().unwrap_or("/").as_bytes());
        let mut argv = config_words(config, "Entrypoint");
        argv.extend(config_words(config, "Cmd"));
        if let Some(prog) = argv.first() {
            let p = if prog.contains('/') {
                Some(from_workdir(&workdir, prog.as_bytes()))
            } else {
                which(self.fs, &self.dirs, prog)
            };
            if let Some(p) = p {
                self.add(&p, "the entrypoint", None, true);
            }
        }
        let mut shell = false;
        for w in argv.iter().skip(1) {
            if shell {
                self.shell_words(w);
                shell = false;
                continue;
            }
            shell = w == "-c";
            if w.starts_with('-') || w.contains('=') || w.is_empty() {
                continue;
            }
            let p = from_workdir(&workdir, w.as_bytes());
            match self.fs.stat(&p) {
                Some(Stat::Dir) => self.whole(&p, "named by the command", None),
                Some(_) => {
                    let why = "named by the command";
                    if let Some(i) = self.add(&p, why, None, true) {
                        self.app_folder(i);
                    }
                }
                None => {}
            }
        }
        if !self.opts.roots.is_empty() {
            let all = self.fs.under(b"");
            for p in all {
                if self.opts.root_set.is_match(OsStr::from_bytes(&p)) {
                    let why = format!("matched by a [closure] root glob ({})", show(&p));
                    match self.fs.stat(&p) {
                        Some(Stat::Dir) => self.whole(&p, &why, None),
                        _ => {
                            self.add(&p, &why, None, true);
                        }
                    }
                }
            }
        }
        self.always(&workdir);
    }

    /// The programs a `sh -c` string names, each found through `PATH`.
    fn shell_words(&mut self, s: &str) {
        let mut seen = HashSet::new();
        let words = s
            .split(|c: char| c.is_whitespace() || ";&|()`<>".contains(c))
            .filter(|w| !w.is_empty() && !w.contains('=') && seen.insert(*w))
            .take(MAX_SHELL_WORDS);
        for w in words {
            let p = if w.contains('/') {
                Some(normalise(w.as_bytes()))
            } else {
                which(self.fs, &self.dirs, w)
            };
            if let Some(p) = p.filter(|p| self.fs.stat(p).is_some()) {
                self.add(&p, "named by the command's shell string", None, true);
            }
        }
    }

    fn on(&self, p: Preset) -> bool {
        self.opts.presets.contains(&p)
    }

    fn applied(&mut self, p: Preset, trigger: &str) {
        self.presets.insert(format!("{} ({trigger})", p.name()));
    }

    /// The presets that apply whatever is kept.
    fn always(&mut self, workdir: &[u8]) {
        let groups: [(Preset, &[&str]); 4] = [
            (
                Preset::Certificates,
                &[
                    "etc/ssl",
                    "usr/lib/ssl",
                    "etc/pki",
                    "etc/ca-certificates",
                    "etc/ca-certificates.conf",
                    "usr/share/ca-certificates",
                    "usr/local/share/ca-certificates",
                ],
            ),
            (
                Preset::System,
                &[
                    "etc/passwd",
                    "etc/group",
                    "etc/shadow",
                    "etc/gshadow",
                    "etc/nsswitch.conf",
                    "etc/hosts",
                    "etc/host.conf",
                    "etc/resolv.conf",
                    "etc/gai.conf",
                    "etc/localtime",
                    "etc/timezone",
                    "etc/os-release",
                ],
            ),
            (Preset::Tzdata, &["usr/share/zoneinfo"]),
            (Preset::Tmp, &["tmp", "var/tmp"]),
        ];
        for (preset, paths) in groups {
            if !self.on(preset) {
                continue;
            }
            let why = format!("preset {}", preset.name());
            let mut any = false;
            for p in paths {
                if !self.has(p) {
                    continue;
                }
                any = true;
                if preset == Preset::Tmp {
                    self.add(p.as_bytes(), &why, None, false);
                } else {
                    self.whole(p.as_bytes(), &why, None);
                }
            }
            if any {
                self.applied(preset, "always");
            }
        }
        if self.on(Preset::Workdir) && !workdir.is_empty() && self.fs.stat(workdir).is_some() {
            self.whole(workdir, "preset workdir", None);
            self.applied(Preset::Workdir, &show(workdir));
        }
        self.databases();
    }

    /// The package databases and the files that name the OS, always: scanners read
    /// them to know what the image ships (the database is then settled to what is
    /// kept, [`crate::packages::settle`]). Data, not programs: nothing in them is
    /// analysed (maintainer scripts would pull in a shell).
    fn databases(&mut self) {
        let why = "the package database and the OS's name, kept for scanners";
        let mut any = false;
        // dpkg's info folder: what scanners and `dpkg --verify` read, not the
        // maintainer scripts, symbols and templates only installs use.
        let keep = |q: &[u8]| {
            !q.starts_with(b"var/lib/dpkg/info/") || DPKG_INFO_KEPT.iter().any(|e| q.ends_with(e))
        };
        for p in DATABASES {
            any |= self
                .whole_of(p.as_bytes(), (why, Some(why)), None, false, &keep)
                .is_some();
        }
        if any {
            self.presets.insert("package databases (always)".into());
            for p in USR_ALIASES {
                if matches!(self.fs.stat(p.as_bytes()), Some(Stat::Symlink(_))) {
                    self.add(p.as_bytes(), why, None, false);
                }
            }
        }
    }

    /// Runs the queue to a fixed point.
    fn run(&mut self) {
        while let Some(i) = self.queue.pop_front() {
            let p = self.recs[i].path.clone();
            let Some(Stat::File { mode, .. }) = self.fs.stat(&p) else {
                continue;
            };
            let Some(head) = self.fs.open(&p).and_then(|f| f.head(256).ok()) else {
                continue;
            };
            if elf::is_elf(&head) {
                self.elf_needs(&p, i);
            } else if head.starts_with(b"#!") && mode & 0o111 != 0 {
                self.script_needs(&p, &head, i);
            }
        }
    }

    fn elf_needs(&mut self, p: &[u8], i: usize) {
        let Some(info) = self.loader.elf(p) else {
            return;
        };
        let load = self.loader.load(p, &info);
        // What makes the real loader find what the emulated one found: glibc's loader
        // reads ld.so.cache, built from ld.so.conf (a library in /usr/local/lib is
        // found through them alone).
        for f in self.loader.config_files(&info) {
            let why = format!("how the loader finds the libraries of {}", show(p));
            self.add(&f, &why, Some(i), false);
        }
        if let Some((interp, true)) = &load.interp {
            let why = format!("the ELF interpreter of {}", show(p));
            self.add(&normalise(interp), &why, Some(i), false);
        }
        for n in &load.libs {
            let Some(at) = &n.at else { continue };
            let why = format!(
                "library {} of {}",
                crate::layer::path::escape(&n.name),
                show(p)
            );
            let Some(l) = self.add(at, &why, Some(i), false) else {
                continue;
            };
            if n.name == runtime::GLIBC_SONAME {
                let libc = self.recs[l].path.clone();
                self.glibc_runtime(&libc, l);
            }
        }
        let name = basename(p);
        if is_python(name) && self.on(Preset::Python) {
            self.python(p, i);
        } else if (name == b"node" || name == b"nodejs") && self.on(Preset::Node) {
            self.node(p, i);
        } else if name == b"java" && self.on(Preset::Java) {
            self.java(p, i);
        }
    }

    fn script_needs(&mut self, p: &[u8], head: &[u8], i: usize) {
        let Some(sb) = super::shebang(p, head) else {
            return;
        };
        let why = format!("the #! interpreter of {}", show(p));
        self.add(&sb.path, &why, Some(i), true);
        if let Some(name) = sb.env_program
            && let Some(at) = which(self.fs, &self.dirs, &name)
        {
            let why = format!("the program `env` runs for {}", show(p));
            self.add(&at, &why, Some(i), true);
        }
    }

    /// The libraries glibc at `libc` opens by name.
    fn glibc_runtime(&mut self, libc: &[u8], l: usize) {
        if !self.libcs.insert(libc.to_vec()) {
            return;
        }
        for (name, at) in runtime::resolve_all(self.fs, &self.loader, libc, &self.opts.libraries) {
            if let Some(at) = at {
                let why = format!(
                    "opened by name at run time by {} ({})",
                    show(libc),
                    crate::layer::path::escape(&name)
                );
                self.add(&at, &why, Some(l), true);
            }
        }
        if self.on(Preset::Gconv) {
            let g = join_rel(parent(libc), b"gconv");
            if matches!(self.fs.stat(&g), Some(Stat::Dir)) {
                self.whole(&g, "preset gconv", Some(l));
                self.applied(Preset::Gconv, &show(libc));
            }
        }
    }

    /// The folders of a `KEY=a:b` variable of the config's `Env`.
    fn env_dirs(&self, key: &str) -> Vec<Vec<u8>> {
        let prefix = format!("{key}=");
        self.env
            .iter()
            .filter_map(|e| e.strip_prefix(&prefix))
            .next_back()
            .map(|v| {
                v.split(':')
                    .filter(|d| d.starts_with('/'))
                    .map(|d| normalise(d.as_bytes()))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn python(&mut self, p: &[u8], i: usize) {
        let prefix = parent(parent(p)).to_vec();
        let lib = join_rel(&prefix, b"lib");
        let name = basename(p).to_vec();
        let fs = self.fs;
        let all = self.python_libs.entry(lib.clone()).or_insert_with(|| {
            fs.under(&lib)
                .into_iter()
                .filter(|q| parent(q) == lib.as_slice())
                .map(|q| basename(&q).to_vec())
                .filter(|n| is_python(n) && n.contains(&b'.'))
                .filter(|n| matches!(fs.stat(&join_rel(&lib, n)), Some(Stat::Dir)))
                .collect()
        });
        let versions: Vec<Vec<u8>> = all
            .iter()
            .filter(|n| n.starts_with(&name))
            .cloned()
            .collect();
        let why = format!("preset python for {}", show(p));
        let mut folders: Vec<Vec<u8>> = vec![join_rel(&lib, b"python3/dist-packages")];
        for v in &versions {
            let nodot: Vec<u8> = v.iter().copied().filter(|&b| b != b'.').collect();
            folders.push(join_rel(&lib, v));
            folders.push(join_rel(&lib, &[&nodot[..], b".zip"].concat()));
            folders.push(join_rel(b"usr/local/lib", v));
        }
        for k in ["PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"] {
            folders.extend(self.env_dirs(k));
        }
        for f in folders {
            if self.fs.stat(&f).is_some() {
                self.whole(&f, &why, Some(i));
            }
        }
        self.applied(Preset::Python, &show(p));
    }

    /// A virtual environment whose `bin/python*` is the symlink `l`: kept whole.
    fn venv(&mut self, l: &[u8], by: Option<usize>) {
        if !self.on(Preset::Python) || !basename(l).starts_with(b"python") {
            return;
        }
        let bin = parent(l);
        if basename(bin) != b"bin" {
            return;
        }
        let root = parent(bin).to_vec();
        if matches!(
            self.fs.stat(&join_rel(&root, b"pyvenv.cfg")),
            Some(Stat::File { .. })
        ) {
            self.whole(&root, "preset python (a virtual environment)", by);
            self.applied(Preset::Python, &format!("venv {}", show(&root)));
        }
    }

    fn node(&mut self, p: &[u8], i: usize) {
        let why = format!("preset node for {}", show(p));
        let prefix = parent(parent(p)).to_vec();
        let mut folders: Vec<Vec<u8>> = [
            "usr/share/nodejs",
            "usr/lib/nodejs",
            "usr/lib/x86_64-linux-gnu/nodejs",
            "usr/lib/aarch64-linux-gnu/nodejs",
        ]
        .iter()
        .map(|f| f.as_bytes().to_vec())
        .collect();
        folders.push(join_rel(&prefix, b"lib/node"));
        folders.extend(self.env_dirs("NODE_PATH"));
        for f in folders {
            if self.fs.stat(&f).is_some() {
                self.whole(&f, &why, Some(i));
            }
        }
        self.applied(Preset::Node, &show(p));
    }

    /// The app folder of a script the command names: the nearest folder above it with a
    /// `package.json`, kept whole (Node only).
    fn app_folder(&mut self, i: usize) {
        if !self.on(Preset::Node) {
            return;
        }
        let p = self.recs[i].path.clone();
        let ext = basename(&p)
            .rsplit(|&b| b == b'.')
            .next()
            .unwrap_or_default();
        if !matches!(ext, b"js" | b"mjs" | b"cjs" | b"ts") {
            return;
        }
        let mut d = parent(&p).to_vec();
        loop {
            if matches!(
                self.fs.stat(&join_rel(&d, b"package.json")),
                Some(Stat::File { .. })
            ) {
                let why = format!("preset node (the app folder of {})", show(&p));
                self.whole(&d, &why, Some(i));
                self.applied(Preset::Node, &show(&d));
                return;
            }
            if d.is_empty() {
                return;
            }
            d.truncate(parent(&d).len());
        }
    }

    /// A kept file inside `node_modules/PKG` (or `node_modules/@scope/PKG`): PKG whole.
    fn node_package(&mut self, p: &[u8], i: usize) {
        if !self.on(Preset::Node) {
            return;
        }
        let parts: Vec<&[u8]> = p.split(|&b| b == b'/').collect();
        let Some(k) = parts.iter().rposition(|c| *c == b"node_modules") else {
            return;
        };
        let take = match parts.get(k + 1) {
            Some(s) if s.starts_with(b"@") => k + 3,
            Some(_) => k + 2,
            None => return,
        };
        if take >= parts.len() {
            return;
        }
        let pkg = parts[..take].join(&b'/');
        let why = format!("preset node (the package of {})", show(p));
        self.whole(&pkg, &why, Some(i));
    }

    fn java(&mut self, p: &[u8], i: usize) {
        let mut homes = self.env_dirs("JAVA_HOME");
        if homes.is_empty() {
            let home = parent(parent(p)).to_vec();
            if basename(&home) == b"jre" {
                homes.push(parent(&home).to_vec());
            }
            homes.push(home);
        }
        let why = format!("preset java for {}", show(p));
        for h in homes.into_iter().filter(|h| !h.is_empty()) {
            self.whole(&h, &why, Some(i));
        }
        self.applied(Preset::Java, &show(p));
    }

    /// Whether a folder kept whole holds `p`.
    fn below_whole(&self, p: &[u8]) -> bool {
        let mut a = parent(p);
        while !a.is_empty() {
            if self.whole.contains(a) {
                return true;
            }
            a = parent(a);
        }
        false
    }

    /// The root that pulled record `i` in.
    fn root_of(&self, mut i: usize) -> &str {
        while let Some(b) = self.recs[i].by {
            i = b;
        }
        &self.recs[i].why
    }
}

/// Computes what `fs` (the merged image, config `config`) needs under `opts`.
pub fn compute(fs: &dyn Fs, config: &Value, opts: &ClosureOptions, elf: &ElfCache) -> Closure {
    let env = env(config);
    let mut w = Walk {
        fs,
        loader: Loader::new(fs, &env, elf),
        opts,
        dirs: path_dirs(&env),
        env,
        recs: Vec::new(),
        index: HashMap::new(),
        whole: HashSet::new(),
        queue: VecDeque::new(),
        libcs: HashSet::new(),
        python_libs: HashMap::new(),
        presets: BTreeSet::new(),
    };
    w.roots(config);
    w.run();
    let mut keep: HashSet<Vec<u8>> = HashSet::new();
    for r in &w.recs {
        let mut p = r.path.as_slice();
        while !p.is_empty() && keep.insert(p.to_vec()) {
            p = parent(p);
        }
    }
    let mut kept: Vec<Kept> = w
        .recs
        .iter()
        .enumerate()
        // A path below a folder kept whole is listed by that folder (the target of a
        // link inside it, elsewhere, is listed on its own).
        .filter(|(_, r)| !w.below_whole(&r.path))
        .map(|(i, r)| Kept {
            path: show(&r.path),
            why: r.why.clone(),
            root: w.root_of(i).to_string(),
        })
        .collect();
    kept.sort_by(|a, b| a.path.cmp(&b.path));
    let mut roots: Vec<Root> = Vec::new();
    let mut root_index: HashMap<usize, usize> = HashMap::new();
    for i in 0..w.recs.len() {
        let mut top = i;
        while let Some(b) = w.recs[top].by {
            top = b;
        }
        let k = *root_index.entry(top).or_insert_with(|| {
            roots.push(Root {
                root: format!("{} ({})", show(&w.recs[top].path), w.recs[top].why),
                paths: 0,
            });
            roots.len() - 1
        });
        roots[k].paths += 1;
    }
    Closure {
        report: ClosureReport {
            roots,
            presets: w.presets.into_iter().collect(),
            kept_paths: w.recs.len(),
            kept,
        },
        keep,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::memfs::MemFs;
    use serde_json::json;

    fn opts(roots: &[&str], presets: &[Preset]) -> ClosureOptions {
        let mut b = globset::GlobSetBuilder::new();
        for r in roots {
            b.add(
                globset::GlobBuilder::new(r)
                    .literal_separator(true)
                    .build()
                    .unwrap(),
            );
        }
        ClosureOptions {
            roots: roots.iter().map(|r| r.to_string()).collect(),
            root_set: b.build().unwrap(),
            presets: presets.iter().copied().collect(),
            libraries: Vec::new(),
        }
    }

    fn kept(fs: &MemFs, config: Value, o: &ClosureOptions) -> Vec<String> {
        let c = compute(fs, &config, o, &ElfCache::default());
        let mut v: Vec<String> = c
            .keep
            .iter()
            .map(|p| String::from_utf8(p.clone()).unwrap())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn scripts_bring_their_interpreters_through_env_and_symlinks() {
        let mut fs = MemFs::default();
        fs.file("usr/bin/run", b"#!/usr/bin/env tool\n", 0o755)
            .file("usr/bin/env", b"\x7fELF", 0o755)
            .file("opt/tool/bin/tool", b"#!/bin/sh\necho", 0o755)
            .link("usr/local/bin/tool", "/opt/tool/bin/tool")
            .link("bin", "usr/bin")
            .file("usr/bin/sh", b"\x7fELF", 0o755)
            .file("usr/bin/unused", b"#!/bin/sh\n", 0o755)
            .file("etc/passwd", b"root:x:0:0::/root:/bin/sh\n", 0o644)
            .file("etc/other", b"", 0o644)
            .file("tmp/junk", b"", 0o644);
        let config =
            json!({"config": {"Entrypoint": ["run"], "Env": ["PATH=/usr/local/bin:/usr/bin"]}});
        let o = opts(&[], DEFAULT_PRESETS);
        assert_eq!(
            kept(&fs, config, &o),
            [
                "bin",
                "etc",
                "etc/passwd",
                "opt",
                "opt/tool",
                "opt/tool/bin",
                "opt/tool/bin/tool",
                "tmp",
                "usr",
                "usr/bin",
                "usr/bin/env",
                "usr/bin/run",
                "usr/bin/sh",
                "usr/local",
                "usr/local/bin",
                "usr/local/bin/tool",
            ]
        );
    }

    #[test]
    fn roots_globs_command_words_and_the_node_app_folder_are_kept_whole() {
        let mut fs = MemFs::default();
        fs.file("usr/bin/node", b"\x7fELF", 0o755)
            .file("srv/app/package.json", b"{}", 0o644)
            .file("srv/app/src/server.js", b"", 0o644)
            .file("srv/app/node_modules/x/index.js", b"", 0o644)
            .file("srv/other/file", b"", 0o644)
            .file("data/a/b", b"", 0o644)
            .file("data/c", b"", 0o644)
            .file("usr/share/nodejs/acorn/index.js", b"", 0o644)
            .file("usr/share/doc/x", b"", 0o644);
        let config =
            json!({"config": {"Cmd": ["node", "src/server.js"], "WorkingDir": "/srv/app/"}});
        let o = opts(&["data/a"], &[Preset::Node]);
        let k = kept(&fs, config, &o);
        for p in [
            "srv/app/node_modules/x/index.js",
            "srv/app/package.json",
            "data/a/b",
            "usr/bin/node",
        ] {
            assert!(k.contains(&p.to_string()), "{p} not kept: {k:?}");
        }
        for p in ["srv/other", "data/c", "usr/share/doc"] {
            assert!(!k.contains(&p.to_string()), "{p} kept: {k:?}");
        }
        // `node` is not an ELF file the loader can read here (4 bytes), so its preset
        // never ran: Debian's module folder stays only with a real `node`.
        assert!(!k.contains(&"usr/share/nodejs".to_string()));
    }

    #[test]
    fn a_venv_on_the_way_to_python_is_kept_whole() {
        let mut fs = MemFs::default();
        fs.file("usr/bin/python3.11", b"\x7fELF", 0o755)
            .link("opt/venv/bin/python", "/usr/bin/python3.11")
            .file("opt/venv/pyvenv.cfg", b"home = /usr/bin\n", 0o644)
            .file("opt/venv/lib/python3.11/site-packages/m.py", b"", 0o644)
            .file("opt/else/x", b"", 0o644);
        let config = json!({"config": {"Entrypoint": ["/opt/venv/bin/python"]}});
        let k = kept(&fs, config, &opts(&[], &[Preset::Python]));
        assert!(k.contains(&"opt/venv/lib/python3.11/site-packages/m.py".to_string()));
        assert!(k.contains(&"usr/bin/python3.11".to_string()));
        assert!(!k.contains(&"opt/else".to_string()));
    }

    /// A real ELF program (the host's `true`) as `java`: its preset keeps the Java home
    /// above `bin` (and the JDK above a `jre`); `tzdata` keeps the zone folder only when
    /// asked for, while `system` keeps `/etc/localtime` and the one zone it names.
    #[test]
    fn java_home_and_time_zones() {
        let elf = std::fs::read("/bin/true").unwrap();
        let mut fs = MemFs::default();
        fs.file("usr/lib/jvm/jdk/jre/bin/java", &elf, 0o755)
            .file("usr/lib/jvm/jdk/lib/modules", b"m", 0o644)
            .file("usr/lib/jvm/other/lib/x", b"", 0o644)
            .file("usr/share/zoneinfo/Etc/UTC", b"TZif", 0o644)
            .file("usr/share/zoneinfo/Europe/Paris", b"TZif", 0o644)
            .link("etc/localtime", "/usr/share/zoneinfo/Etc/UTC");
        let config = json!({"config": {"Entrypoint": ["/usr/lib/jvm/jdk/jre/bin/java"]}});
        let k = kept(&fs, config.clone(), &opts(&[], DEFAULT_PRESETS));
        assert!(
            k.contains(&"usr/lib/jvm/jdk/lib/modules".to_string()),
            "{k:?}"
        );
        assert!(!k.contains(&"usr/lib/jvm/other".to_string()));
        assert!(k.contains(&"usr/share/zoneinfo/Etc/UTC".to_string()));
        assert!(!k.contains(&"usr/share/zoneinfo/Europe".to_string()));
        let mut with_tz: Vec<Preset> = DEFAULT_PRESETS.to_vec();
        with_tz.push(Preset::Tzdata);
        let k = kept(&fs, config, &opts(&[], &with_tz));
        assert!(k.contains(&"usr/share/zoneinfo/Europe/Paris".to_string()));
    }

    #[test]
    fn python_names() {
        for (n, ok) in [
            ("python3", true),
            ("python3.11", true),
            ("python", false),
            ("python3-config", false),
            ("pythonx", false),
        ] {
            assert_eq!(is_python(n.as_bytes()), ok, "{n}");
        }
    }
}
