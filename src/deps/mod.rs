//! Static dependency analysis inside an image root, never the host's files: what each
//! program needs and whether the image holds it.
//! - ELF files: the interpreter and every library, found the way glibc's and musl's
//!   loaders find them ([`loader`]);
//! - scripts (executable files starting with `#!`): the interpreter, and for
//!   `/usr/bin/env NAME` the `NAME` found through `PATH`;
//! - the config: `Entrypoint` + `Cmd` found through `PATH` and `WorkingDir`, and a
//!   `User` (and group) given by name present in `/etc/passwd` (`/etc/group`).

pub mod closure;
pub mod elf;

pub mod guard;
pub mod loader;
pub mod runtime;

use crate::layer::fs::{Fs, Stat, from_workdir, join_rel, normalise, resolve};
use crate::layer::overlay::parent;
use loader::{ElfCache, Load, Loader};
use rayon::prelude::*;
use serde::Serialize;
use serde_json::Value;
use std::collections::HashSet;

/// `PATH` when the config sets none (Docker's default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// One reference the image does not satisfy.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
pub struct Broken {
    /// Who needs it: a file's path (`/usr/bin/x`), or `config` for the image's config.
    pub who: String,
    /// What it needs: a library name, an interpreter, a program, a user.
    pub needs: String,
    /// Why it is missing, in a few words.
    pub why: String,
}

/// One reference a file makes that the image satisfies: what package removal must
/// not take away while the file stays.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Need {
    /// The file that needs it (empty: the config's entrypoint).
    pub who: Vec<u8>,
    /// What it needs, as the file names it (a library's name, an interpreter).
    pub name: String,
    /// Where the image satisfies it: the path the loader or `PATH` found.
    pub at: Vec<u8>,
}

impl From<Need> for crate::packages::needs::FileNeed {
    fn from(n: Need) -> Self {
        crate::packages::needs::FileNeed {
            shown: if n.who.is_empty() {
                "the entrypoint".into()
            } else {
                show(&n.who)
            },
            who: n.who,
            needs: n.name,
            at: n.at,
        }
    }
}

/// The load of one ELF file, as `ld.so --list` would show it.
#[derive(Clone, Debug, Serialize)]
pub struct Listed {
    /// The ELF file.
    pub path: String,
    /// Its interpreter, if it names one.
    pub interp: Option<String>,
    /// Every library of its load: name, and where it was found (`null`: not found).
    pub libs: Vec<(String, Option<String>)>,
}

/// What [`analyze`] found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Analysis {
    /// ELF files read.
    pub elf_files: usize,
    /// Scripts read.
    pub scripts: usize,
    /// Every unsatisfied reference, sorted.
    pub broken: Vec<Broken>,
    /// Each ELF file's load, when asked for.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub loads: Vec<Listed>,
    /// The libraries each glibc some load reaches opens by name at run time
    /// ([`runtime`]), and where; one the image lacks is not broken (glibc skips it).
    pub runtime: Vec<RuntimeLib>,
    /// Every satisfied reference of every file (interpreters, libraries of each load,
    /// `#!` interpreters and `env` programs, libraries opened by name, the entrypoint),
    /// when loads are listed.
    #[serde(skip)]
    pub needs: Vec<Need>,
}

/// A library a C library opens by name at run time.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct RuntimeLib {
    /// The C library.
    pub by: String,
    /// The library's name.
    pub name: String,
    /// Where it is found (`null`: nowhere).
    pub at: Option<String>,
}

fn show(p: &[u8]) -> String {
    format!("/{}", crate::layer::path::escape(p))
}

fn show_name(p: &[u8]) -> String {
    crate::layer::path::escape(p)
}

/// The config's `Env` as `KEY=VALUE` strings.
fn env(config: &Value) -> Vec<String> {
    config["config"]["Env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e.as_str().map(String::from))
        .collect()
}

/// The `PATH` folders of the config's `Env`.
fn path_dirs(env: &[String]) -> Vec<String> {
    let path = env
        .iter()
        .filter_map(|e| e.strip_prefix("PATH="))
        .next_back()
        .unwrap_or(DEFAULT_PATH);
    // Distinct and capped: each folder costs a lookup per program name searched.
    let mut seen = HashSet::new();
    path.split(':')
        .filter(|d| !d.is_empty() && seen.insert(*d))
        .take(loader::MAX_SEARCH_DIRS)
        .map(String::from)
        .collect()
}

/// Whether `p` resolves to an executable regular file.
fn executable(fs: &dyn Fs, p: &[u8]) -> bool {
    resolve(fs, p)
        .is_some_and(|r| matches!(fs.stat(&r), Some(Stat::File { mode, .. }) if mode & 0o111 != 0))
}

/// `name` looked up through `PATH` (`None` when no folder holds an executable).
fn which(fs: &dyn Fs, dirs: &[String], name: &str) -> Option<Vec<u8>> {
    dirs.iter()
        .map(|d| join_rel(&normalise(d.as_bytes()), name.as_bytes()))
        .find(|p| executable(fs, p))
}

/// Analyses the image `fs` whose config is `config`; with `list_loads`, also records
/// every ELF file's load and every file's [`Need`]s.
pub fn analyze(fs: &dyn Fs, config: &Value, list_loads: bool) -> Analysis {
    analyze_with(fs, config, list_loads, &[], &ElfCache::default())
}

/// [`analyze`], with the policy's runtime libraries `libraries`, reading ELF files
/// through `elf` (shared by the guard's two views).
pub fn analyze_with(
    fs: &dyn Fs,
    config: &Value,
    list_loads: bool,
    libraries: &[String],
    elf: &ElfCache,
) -> Analysis {
    let env = env(config);
    let dirs = path_dirs(&env);
    let loader = Loader::new(fs, &env, elf);
    let mut a = Analysis::default();
    let files = fs.files();
    let per_file: Vec<FileResult> = files
        .par_iter()
        .map(|p| check_file(fs, &loader, &dirs, p, list_loads))
        .collect();
    if list_loads {
        a.needs = config_needs(fs, config, &dirs);
    }
    // A library some other file's load reaches was resolved in that context (a
    // `numpy.libs` library found through the extension module's `$ORIGIN` RPATH): its
    // own load, alone, is not how it is ever loaded, so only the loads of the files no
    // load reaches (programs, plugins, extension modules) count.
    let reached: HashSet<&[u8]> = per_file
        .iter()
        .flat_map(|r| r.reached.iter().map(Vec::as_slice))
        .collect();
    for (p, r) in files.iter().zip(&per_file) {
        if !r.is_elf || !reached.contains(p.as_slice()) {
            a.broken.extend(r.broken.iter().cloned());
        }
    }
    let libcs: std::collections::BTreeSet<&[u8]> = per_file
        .iter()
        .flat_map(|r| r.libcs.iter().map(Vec::as_slice))
        .collect();
    for libc in libcs {
        for (name, at) in runtime::resolve_all(fs, &loader, libc, libraries) {
            if let (true, Some(at)) = (list_loads, &at) {
                a.needs.push(Need {
                    who: libc.to_vec(),
                    name: show_name(&name),
                    at: at.clone(),
                });
            }
            a.runtime.push(RuntimeLib {
                by: show(libc),
                name: show_name(&name),
                at: at.as_deref().map(show),
            });
        }
    }
    for (r, p) in per_file.into_iter().zip(files) {
        a.needs.extend(r.needs.into_iter().map(|(name, at)| Need {
            who: p.clone(),
            name,
            at,
        }));
        a.loads.extend(r.listed);
        a.elf_files += r.is_elf as usize;
        a.scripts += r.is_script as usize;
    }
    a.broken.extend(check_config(fs, config, &dirs));
    a.broken.sort();
    a.broken.dedup();
    a
}

/// What one file needs.
#[derive(Default)]
struct FileResult {
    /// Its broken references.
    broken: Vec<Broken>,
    /// Its load, when asked for.
    listed: Option<Listed>,
    /// The real paths of the libraries its load found.
    reached: Vec<Vec<u8>>,
    /// The real paths of the glibc C libraries its load found.
    libcs: Vec<Vec<u8>>,
    /// What it needs and where that is, when asked for.
    needs: Vec<(String, Vec<u8>)>,
    is_elf: bool,
    is_script: bool,
}

/// One file's broken references and load.
fn check_file(
    fs: &dyn Fs,
    loader: &Loader,
    dirs: &[String],
    p: &[u8],
    list_loads: bool,
) -> FileResult {
    let Some(head) = fs.open(p).and_then(|f| f.head(256).ok()) else {
        return FileResult::default();
    };
    let mode = match fs.stat(p) {
        Some(Stat::File { mode, .. }) => mode,
        _ => 0,
    };
    if elf::is_elf(&head) {
        let Some(info) = loader.elf(p) else {
            return FileResult {
                is_elf: true,
                ..FileResult::default()
            };
        };
        let load = loader.load(p, &info);
        let listed = list_loads.then(|| Listed {
            path: show(p),
            interp: load.interp.as_ref().map(|(i, _)| show_name(i)),
            libs: load
                .libs
                .iter()
                .map(|n| (show_name(&n.name), n.found.as_deref().map(show_name)))
                .collect(),
        });
        let needs = if list_loads {
            load_needs(fs, p, &load)
        } else {
            Vec::new()
        };
        return FileResult {
            broken: load_broken(p, &load),
            needs,
            listed,
            reached: load
                .libs
                .iter()
                .filter_map(|n| n.at.as_deref().and_then(|at| resolve(fs, at)))
                .collect(),
            libcs: load
                .libs
                .iter()
                .filter(|n| n.name == runtime::GLIBC_SONAME)
                .filter_map(|n| n.at.as_deref().and_then(|at| resolve(fs, at)))
                .collect(),
            is_elf: true,
            is_script: false,
        };
    }
    if head.starts_with(b"#!") && mode & 0o111 != 0 {
        return FileResult {
            broken: check_script(fs, dirs, p, &head),
            needs: if list_loads {
                script_needs(fs, dirs, p, &head)
            } else {
                Vec::new()
            },
            is_script: true,
            ..FileResult::default()
        };
    }
    FileResult::default()
}

/// What the load of the ELF file at `p` found: its interpreter and every library (one
/// another library needs named with it).
fn load_needs(fs: &dyn Fs, p: &[u8], load: &Load) -> Vec<(String, Vec<u8>)> {
    let interp = load
        .interp
        .iter()
        .filter(|(_, ok)| *ok)
        .filter_map(|(i, _)| resolve(fs, &normalise(i)).map(|at| (show_name(i), at)));
    let libs = load.libs.iter().filter_map(|n| {
        let name = if n.by == p {
            show_name(&n.name)
        } else {
            format!("{} (through {})", show_name(&n.name), show(&n.by))
        };
        n.at.clone().map(|at| (name, at))
    });
    interp.chain(libs).collect()
}

/// What a script's `#!` line finds: its interpreter, and the program `env` runs.
fn script_needs(fs: &dyn Fs, dirs: &[String], p: &[u8], head: &[u8]) -> Vec<(String, Vec<u8>)> {
    let Some(sb) = shebang(p, head) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if executable(fs, &sb.path) {
        out.push((sb.interp, sb.path));
    }
    if let Some(name) = sb.env_program
        && let Some(at) = which(fs, dirs, &name)
    {
        out.push((name, at));
    }
    out
}

/// The broken references of one ELF file's load: its interpreter (a program's only:
/// libraries name none) and its libraries.
fn load_broken(p: &[u8], load: &Load) -> Vec<Broken> {
    let mut out = Vec::new();
    if let Some((i, false)) = &load.interp {
        out.push(Broken {
            who: show(p),
            needs: show_name(i),
            why: "its ELF interpreter is not in the image".into(),
        });
    }
    for n in load.libs.iter().filter(|n| n.found.is_none()) {
        let who = if n.by == p {
            show(p)
        } else {
            format!("{} (through {})", show(p), show(&n.by))
        };
        out.push(Broken {
            who,
            needs: show_name(&n.name),
            why: "no library of that name on the loader's search path".into(),
        });
    }
    out
}

/// A script's interpreter: `#!/path [arg]`, and `#!/usr/bin/env [-S] NAME` through `PATH`.
/// A script's `#!` line: the interpreter as written, its path in the image (relative
/// to the script's folder when not absolute), and, for `env`, the program it runs (its
/// first word that is neither an option nor an assignment).
pub(crate) struct Shebang {
    pub(crate) interp: String,
    pub(crate) path: Vec<u8>,
    pub(crate) env_program: Option<String>,
}

/// Parses the `#!` line at the start of `head`, the first bytes of the script at `p`;
/// `None` when it names no interpreter.
pub(crate) fn shebang(p: &[u8], head: &[u8]) -> Option<Shebang> {
    let line = head[2..].split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut words = line.split_whitespace();
    let interp = words.next()?.to_string();
    let path = if interp.starts_with('/') {
        normalise(interp.as_bytes())
    } else {
        join_rel(parent(p), interp.as_bytes())
    };
    let env_program = (interp.rsplit('/').next() == Some("env"))
        .then(|| words.find(|w| !w.starts_with('-') && !w.contains('=')))
        .flatten()
        .map(String::from);
    Some(Shebang {
        interp,
        path,
        env_program,
    })
}

fn check_script(fs: &dyn Fs, dirs: &[String], p: &[u8], head: &[u8]) -> Vec<Broken> {
    let Some(sb) = shebang(p, head) else {
        return vec![Broken {
            who: show(p),
            needs: "#!".into(),
            why: "the #! line names no interpreter".into(),
        }];
    };
    let mut out = Vec::new();
    if !executable(fs, &sb.path) {
        out.push(Broken {
            who: show(p),
            needs: sb.interp,
            why: "its #! interpreter is not an executable file in the image".into(),
        });
    } else if let Some(name) = sb.env_program
        && which(fs, dirs, &name).is_none()
    {
        out.push(Broken {
            who: show(p),
            needs: name,
            why: "`env` finds no such program on PATH".into(),
        });
    }
    out
}

/// A list of strings of the config's `config` object (`Entrypoint`, `Cmd`).
fn config_words(config: &Value, key: &str) -> Vec<String> {
    config["config"][key]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|w| w.as_str().map(String::from))
        .collect()
}

/// The program the config's entrypoint (or command) runs, when the image holds it.
fn config_needs(fs: &dyn Fs, config: &Value, dirs: &[String]) -> Vec<Need> {
    let entry = config_words(config, "Entrypoint");
    let argv = if entry.is_empty() {
        config_words(config, "Cmd")
    } else {
        entry
    };
    let Some(prog) = argv.first() else {
        return Vec::new();
    };
    let at = if prog.contains('/') {
        let workdir = config["config"]["WorkingDir"].as_str().unwrap_or("/");
        Some(from_workdir(
            &normalise(workdir.as_bytes()),
            prog.as_bytes(),
        ))
        .filter(|p| executable(fs, p))
    } else {
        which(fs, dirs, prog)
    };
    at.map(|at| Need {
        who: Vec::new(),
        name: prog.clone(),
        at,
    })
    .into_iter()
    .collect()
}

/// The config's entrypoint (or command) and user.
fn check_config(fs: &dyn Fs, config: &Value, dirs: &[String]) -> Vec<Broken> {
    let c = &config["config"];
    let words = |k: &str| config_words(config, k);
    let mut out = Vec::new();
    let entry = words("Entrypoint");
    let argv = if entry.is_empty() {
        words("Cmd")
    } else {
        entry
    };
    if let Some(prog) = argv.first() {
        let workdir = c["WorkingDir"].as_str().unwrap_or("/");
        let found = if prog.contains('/') {
            let p = from_workdir(&normalise(workdir.as_bytes()), prog.as_bytes());
            executable(fs, &p)
        } else {
            which(fs, dirs, prog).is_some()
        };
        if !found {
            out.push(Broken {
                who: "config".into(),
                needs: prog.clone(),
                why: if prog.contains('/') {
                    "the entrypoint is not an executable file in the image".into()
                } else {
                    "the entrypoint is on no PATH folder".into()
                },
            });
        }
    }
    if let Some(user) = c["User"].as_str().filter(|u| !u.is_empty()) {
        let (u, g) = user
            .split_once(':')
            .map_or((user, None), |(u, g)| (u, Some(g)));
        for (name, db) in [(Some(u), "etc/passwd"), (g, "etc/group")] {
            let Some(name) =
                name.filter(|n| !n.is_empty() && !n.bytes().all(|b| b.is_ascii_digit()))
            else {
                continue;
            };
            if !names_in(fs, db.as_bytes()).iter().any(|n| n == name) {
                out.push(Broken {
                    who: "config".into(),
                    needs: format!("user {user}"),
                    why: format!("/{db} has no entry {name:?}"),
                });
            }
        }
    }
    out
}

/// The first field of each line of a colon-separated database (`/etc/passwd`).
fn names_in(fs: &dyn Fs, p: &[u8]) -> Vec<String> {
    let text = resolve(fs, p)
        .and_then(|r| fs.open(&r))
        .and_then(|f| f.head(1 << 22).ok())
        .unwrap_or_default();
    String::from_utf8_lossy(&text)
        .lines()
        .filter_map(|l| l.split(':').next())
        .map(String::from)
        .collect()
}
