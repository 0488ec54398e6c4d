//! The dynamic loader's search, emulated inside the image root: what glibc's `ld.so`
//! or musl's loader would load for a program, each library found or not.
//!
//! glibc (`elf/dl-load.c`), for a name without `/` needed by object O:
//! 1. `DT_RPATH` of O and of the objects that loaded it, up to the program, unless O has
//!    a `DT_RUNPATH` (and the program's own `DT_RPATH` only without its `DT_RUNPATH`);
//! 2. `LD_LIBRARY_PATH` (from the config's `Env`);
//! 3. `DT_RUNPATH` of O;
//! 4. `/etc/ld.so.cache`, which `ldconfig` builds from `/etc/ld.so.conf` and its
//!    includes: those folders are searched in order (a stale cache is not read);
//! 5. the system folders: `/lib/TRIPLE`, `/usr/lib/TRIPLE` (Debian's multiarch),
//!    `/lib64`, `/usr/lib64`, `/lib`, `/usr/lib`.
//!
//! musl: `LD_LIBRARY_PATH`, then `DT_RPATH`/`DT_RUNPATH` of O, then the folders in
//! `/etc/ld-musl-ARCH.path` (or `/lib:/usr/local/lib:/usr/lib`).
//!
//! `$ORIGIN` is the folder of the object that holds the path, `$LIB` the multiarch
//! `lib/TRIPLE` where the image has it (else `lib64` or `lib`), `$PLATFORM` the
//! machine's name. A candidate of another class or machine is skipped, as the loader
//! skips it. A library already loaded under that name or soname is reused. Not
//! emulated: `glibc-hwcaps` and legacy hwcap subfolders (tried first by glibc, rarely
//! populated), `DF_1_NODEFLIB`, and `LD_PRELOAD`.

use super::elf::{self, ElfInfo};
use crate::layer::fs::{Fs, Stat, join_rel, normalise, resolve};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;

/// Which loader a program names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Libc {
    /// glibc's `ld-linux*.so`.
    Glibc,
    /// musl's `ld-musl-ARCH.so.1`.
    Musl,
}

impl Libc {
    /// The loader the object `info` names: musl's when its interpreter is `ld-musl-*`,
    /// else glibc's (also for an object that names none).
    pub fn of(info: &ElfInfo) -> Libc {
        match &info.interp {
            Some(i) if i.windows(7).any(|w| w == b"ld-musl") => Libc::Musl,
            _ => Libc::Glibc,
        }
    }
}

/// One library a program's load needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Needed {
    /// The name asked for (`DT_NEEDED`).
    pub name: Vec<u8>,
    /// The object that asked (the program or a library), as found.
    pub by: Vec<u8>,
    /// Where it was found, as the loader prints it (the folder as searched, `..` and
    /// all, then the name), or `None`.
    pub found: Option<Vec<u8>>,
    /// Where it was found, as a normalised path in the image.
    pub at: Option<Vec<u8>>,
}

/// What loading one program takes.
#[derive(Clone, Debug, Default)]
pub struct Load {
    /// The interpreter asked for, and whether the image holds it.
    pub interp: Option<(Vec<u8>, bool)>,
    /// Every library of the load, in load order (breadth first, as `ld.so --list`).
    pub libs: Vec<Needed>,
}

/// Most folders taken from `LD_LIBRARY_PATH`, from `/etc/ld.so.conf` and its includes,
/// and searched for one library: real images have tens, and each folder costs a lookup
/// for every library of every program.
pub const MAX_SEARCH_DIRS: usize = 256;

/// ELF information by real path, read once. One cache may serve two views of an image
/// when every path the second holds has the same bytes in the first (the merged image and
/// the image after a policy, which only deletes).
#[derive(Default)]
pub struct ElfCache(Mutex<HashMap<Vec<u8>, Option<ElfInfo>>>);

/// The loader's view of one image: its configuration files read once, ELF headers read
/// once per file.
pub struct Loader<'a> {
    fs: &'a dyn Fs,
    ld_library_path: Vec<Vec<u8>>,
    conf_dirs: Vec<Vec<u8>>,
    /// `/etc/ld.so.conf` and the files it includes, as read.
    conf_files: Vec<Vec<u8>>,
    elf: &'a ElfCache,
    musl: Mutex<HashMap<Vec<u8>, Vec<Vec<u8>>>>,
}

/// The first [`MAX_SEARCH_DIRS`] distinct folders of `dirs`, in order.
fn distinct(dirs: impl IntoIterator<Item = Vec<u8>>) -> Vec<Vec<u8>> {
    let mut seen = HashSet::new();
    dirs.into_iter()
        .filter(|d| seen.insert(d.clone()))
        .take(MAX_SEARCH_DIRS)
        .collect()
}

/// The machine's multiarch triple and `$PLATFORM` name.
fn machine_names(machine: u16, class64: bool) -> (&'static str, &'static str) {
    match (machine, class64) {
        (62, _) => ("x86_64-linux-gnu", "x86_64"),
        (3, _) => ("i386-linux-gnu", "i686"),
        (183, _) => ("aarch64-linux-gnu", "aarch64"),
        (40, _) => ("arm-linux-gnueabihf", "v7l"),
        (21, true) => ("powerpc64le-linux-gnu", "powerpc64le"),
        (22, _) => ("s390x-linux-gnu", "s390x"),
        (243, _) => ("riscv64-linux-gnu", "riscv64"),
        _ => ("", ""),
    }
}

impl<'a> Loader<'a> {
    /// A loader for the image `fs`, with the config's `Env` (`KEY=VALUE`), reading ELF
    /// files through `elf`.
    pub fn new(fs: &'a dyn Fs, env: &[String], elf: &'a ElfCache) -> Self {
        let ld_library_path = env
            .iter()
            .filter_map(|e| e.strip_prefix("LD_LIBRARY_PATH="))
            .next_back()
            .map(|v| {
                distinct(
                    v.split([':', ';'])
                        .filter(|d| !d.is_empty())
                        .map(|d| d.as_bytes().to_vec()),
                )
            })
            .unwrap_or_default();
        let mut conf = Conf::new(fs);
        conf.read(b"etc/ld.so.conf", 0);
        Loader {
            fs,
            ld_library_path,
            conf_dirs: distinct(conf.dirs),
            conf_files: conf.files_read,
            elf,
            musl: Mutex::new(HashMap::new()),
        }
    }

    /// The ELF information of the file at `p` (symlinks resolved), read once.
    pub fn elf(&self, p: &[u8]) -> Option<ElfInfo> {
        let real = resolve(self.fs, p)?;
        if let Some(hit) = self.elf.0.lock().unwrap().get(&real) {
            return hit.clone();
        }
        let info = self.fs.open(&real).and_then(|mut f| {
            let head = f.head(4).ok()?;
            if !elf::is_elf(&head) {
                return None;
            }
            std::io::Seek::rewind(&mut f).ok()?;
            elf::parse(f).ok()
        });
        self.elf.0.lock().unwrap().insert(real, info.clone());
        info
    }

    /// Emulates loading the program (or library) at `p`, whose ELF information is
    /// `info`.
    pub fn load(&self, p: &[u8], info: &ElfInfo) -> Load {
        let libc = Libc::of(info);
        let mut load = Load {
            interp: info.interp.as_ref().map(|i| {
                let ok = resolve(self.fs, &normalise(i))
                    .is_some_and(|r| matches!(self.fs.stat(&r), Some(Stat::File { .. })));
                (i.clone(), ok)
            }),
            libs: Vec::new(),
        };
        let main = p.to_vec();
        // Loaded objects: path -> (info, the object that loaded it); names -> path.
        let mut objects: Vec<(Vec<u8>, ElfInfo, Option<usize>)> = vec![(main, info.clone(), None)];
        // Names already loaded: the program's soname, and the interpreter's (loaded
        // before anything else; `libc.so.6` needing `ld-linux-x86-64.so.2` reuses it).
        // A library names no interpreter: the system's loader for its machine is there.
        let mut names: HashSet<Vec<u8>> = info.soname.iter().cloned().collect();
        names.extend(builtin_names(libc, info));
        if let Some(interp) = &info.interp
            && let Some(s) = self.elf(&normalise(interp)).and_then(|i| i.soname)
        {
            names.insert(s);
        }
        let mut queue = VecDeque::from([0usize]);
        while let Some(i) = queue.pop_front() {
            let needed = objects[i].1.needed.clone();
            for name in needed {
                if names.contains(&name) {
                    continue;
                }
                let found = self.search(libc, &name, i, &objects);
                load.libs.push(Needed {
                    name: name.clone(),
                    by: objects[i].0.clone(),
                    found: found.as_ref().map(|(_, shown, _)| shown.clone()),
                    at: found.as_ref().map(|(at, _, _)| at.clone()),
                });
                if let Some((path, _, lib)) = found {
                    let k = objects.len();
                    names.insert(name);
                    names.extend(lib.soname.iter().cloned());
                    objects.push((path, lib, Some(i)));
                    queue.push_back(k);
                }
            }
        }
        load
    }

    /// Where a library `name` opened by name at run time (`dlopen`) from the object at
    /// `by` (ELF information `info`) is found: the same search as for its own
    /// `DT_NEEDED`, as a normalised path in the image.
    pub fn find(&self, name: &[u8], by: &[u8], info: &ElfInfo) -> Option<Vec<u8>> {
        let libc = Libc::of(info);
        let objects = [(by.to_vec(), info.clone(), None)];
        self.search(libc, name, 0, &objects).map(|(at, _, _)| at)
    }

    /// Where the loader finds `name` for object `by`: the path in the image, the path
    /// as the loader prints it, and that library's information.
    fn search(
        &self,
        libc: Libc,
        name: &[u8],
        by: usize,
        objects: &[(Vec<u8>, ElfInfo, Option<usize>)],
    ) -> Option<(Vec<u8>, Vec<u8>, ElfInfo)> {
        let (_, info, _) = &objects[by];
        if name.contains(&b'/') {
            let p = normalise(name);
            return self.candidate(&p, info).map(|lib| (p, name.to_vec(), lib));
        }
        let mut dirs: Vec<Vec<u8>> = Vec::new();
        let expand = |o: usize, list: &[u8]| -> Vec<Vec<u8>> {
            split_path(list)
                .map(|d| self.expand(d, &objects[o].0, &objects[o].1))
                .collect()
        };
        match libc {
            Libc::Glibc => {
                if info.runpath.is_none() {
                    let mut o = Some(by);
                    while let Some(k) = o {
                        let (_, oi, loader) = &objects[k];
                        // The program's RPATH is ignored when it has a RUNPATH.
                        let main_with_runpath = loader.is_none() && oi.runpath.is_some();
                        if let (Some(r), false) = (&oi.rpath, main_with_runpath) {
                            dirs.extend(expand(k, r));
                        }
                        o = *loader;
                    }
                }
                dirs.extend(self.ld_library_path.iter().cloned());
                if let Some(r) = &info.runpath {
                    dirs.extend(expand(by, r));
                }
                dirs.extend(self.conf_dirs.iter().cloned());
                let (triple, _) = machine_names(info.machine, info.class64);
                if !triple.is_empty() {
                    dirs.push(format!("/lib/{triple}").into_bytes());
                    dirs.push(format!("/usr/lib/{triple}").into_bytes());
                }
                if info.class64 {
                    dirs.extend([b"/lib64".to_vec(), b"/usr/lib64".to_vec()]);
                }
                dirs.extend([b"/lib".to_vec(), b"/usr/lib".to_vec()]);
            }
            Libc::Musl => {
                dirs.extend(self.ld_library_path.iter().cloned());
                for r in [&info.rpath, &info.runpath].into_iter().flatten() {
                    dirs.extend(expand(by, r));
                }
                dirs.extend(self.musl_dirs(info));
            }
        }
        dirs.truncate(MAX_SEARCH_DIRS);
        dirs.iter().find_map(|d| {
            let p = join_rel(&normalise(d), name);
            let lib = self.candidate(&p, info)?;
            let dir = d.strip_suffix(b"/").unwrap_or(d);
            let lead: &[u8] = if dir.starts_with(b"/") { b"" } else { b"/" };
            Some((p, [lead, dir, b"/", name].concat(), lib))
        })
    }

    /// The file at `p`, when it is an ELF library `info` can use.
    fn candidate(&self, p: &[u8], info: &ElfInfo) -> Option<ElfInfo> {
        let lib = self.elf(p)?;
        info.compatible(&lib).then_some(lib)
    }

    /// `$ORIGIN`, `$LIB` and `$PLATFORM` in a path list entry of the object at `owner`.
    fn expand(&self, dir: &[u8], owner: &[u8], info: &ElfInfo) -> Vec<u8> {
        let origin = format!(
            "/{}",
            String::from_utf8_lossy(crate::layer::overlay::parent(owner))
        );
        let (triple, platform) = machine_names(info.machine, info.class64);
        let multiarch = format!("usr/lib/{triple}");
        let lib = if !triple.is_empty()
            && matches!(self.fs.stat(multiarch.as_bytes()), Some(Stat::Dir))
        {
            format!("lib/{triple}")
        } else if info.class64 {
            "lib64".into()
        } else {
            "lib".into()
        };
        let mut s = String::from_utf8_lossy(dir).into_owned();
        for (token, value) in [
            ("ORIGIN", &origin),
            ("LIB", &lib),
            ("PLATFORM", &platform.to_string()),
        ] {
            s = s
                .replace(&format!("${{{token}}}"), value)
                .replace(&format!("${token}"), value);
        }
        s.into_bytes()
    }

    /// The files that tell the system's loader where to look for the libraries of an
    /// object `info` describes, those the image holds: glibc's `/etc/ld.so.conf` with
    /// its includes and the cache `ldconfig` built from them (the loader reads the
    /// cache, not the configuration); musl's `/etc/ld-musl-ARCH.path`.
    pub fn config_files(&self, info: &ElfInfo) -> Vec<Vec<u8>> {
        match Libc::of(info) {
            Libc::Glibc => {
                let mut out = self.conf_files.clone();
                out.push(b"etc/ld.so.cache".to_vec());
                out
            }
            Libc::Musl => vec![[b"etc/ld-musl-", musl_arch(info), b".path"].concat()],
        }
        .into_iter()
        .filter(|p| self.fs.stat(p).is_some())
        .collect()
    }

    /// musl's library folders: `/etc/ld-musl-ARCH.path`, or its defaults; read once
    /// per machine.
    fn musl_dirs(&self, info: &ElfInfo) -> Vec<Vec<u8>> {
        let arch = musl_arch(info);
        if let Some(dirs) = self.musl.lock().unwrap().get(arch) {
            return dirs.clone();
        }
        let file = [b"etc/ld-musl-", arch, b".path"].concat();
        let text = resolve(self.fs, &file)
            .and_then(|p| self.fs.open(&p))
            .and_then(|f| f.head(1 << 16).ok());
        let dirs = match text {
            Some(t) => distinct(
                t.split(|b| b"\n: ".contains(b))
                    .filter(|d| !d.is_empty())
                    .map(<[u8]>::to_vec),
            ),
            None => [&b"/lib"[..], b"/usr/local/lib", b"/usr/lib"]
                .iter()
                .map(|d| d.to_vec())
                .collect(),
        };
        self.musl
            .lock()
            .unwrap()
            .insert(arch.to_vec(), dirs.clone());
        dirs
    }
}

/// The `ARCH` of musl's loader `ld-musl-ARCH.so.1` that `info` names.
fn musl_arch(info: &ElfInfo) -> &[u8] {
    info.interp
        .as_deref()
        .and_then(|i| i.split(|&b| b == b'/').next_back())
        .and_then(|n| n.strip_prefix(b"ld-musl-"))
        .and_then(|n| n.strip_suffix(b".so.1"))
        .unwrap_or_default()
}

/// The names the loader itself answers to, loaded before any library: glibc's
/// `ld-linux*` soname for the machine; musl's libc, which is its loader, under every
/// name musl reserves for itself (`libc.so`, `libpthread.so.0`, `libc.musl-ARCH.so.1`...).
fn builtin_names(libc: Libc, info: &ElfInfo) -> Vec<Vec<u8>> {
    let names: &[&str] = match (libc, info.machine, info.class64) {
        (Libc::Glibc, 62, true) => &["ld-linux-x86-64.so.2"],
        (Libc::Glibc, 62, false) => &["ld-linux-x32.so.2"],
        (Libc::Glibc, 3, _) => &["ld-linux.so.2"],
        (Libc::Glibc, 183, _) => &["ld-linux-aarch64.so.1"],
        (Libc::Glibc, 40, _) => &["ld-linux-armhf.so.3", "ld-linux.so.3"],
        (Libc::Glibc, 21, _) => &["ld64.so.2"],
        (Libc::Glibc, 22, _) => &["ld64.so.1"],
        (Libc::Glibc, 243, _) => &["ld-linux-riscv64-lp64d.so.1"],
        (Libc::Glibc, _, _) => &[],
        (Libc::Musl, _, _) => {
            let mut v: Vec<Vec<u8>> = ["c", "pthread", "rt", "m", "dl", "util", "xnet"]
                .iter()
                .flat_map(|n| {
                    [
                        format!("lib{n}.so"),
                        format!("lib{n}.so.0"),
                        format!("lib{n}.so.1"),
                    ]
                })
                .map(String::into_bytes)
                .collect();
            if let Some(arch) = info
                .interp
                .as_deref()
                .and_then(|i| i.split(|&b| b == b'/').next_back())
                .and_then(|n| n.strip_prefix(b"ld-musl-"))
            {
                v.push([b"libc.musl-", arch].concat());
            }
            return v;
        }
    };
    names.iter().map(|n| n.as_bytes().to_vec()).collect()
}

fn split_path(list: &[u8]) -> impl Iterator<Item = &[u8]> {
    list.split(|&b| b == b':').filter(|d| !d.is_empty())
}

/// Bytes of `ld.so.conf` and its includes read in all: a real one is a few hundred;
/// hard links to one large file (each a path of its own) are read within it.
const MAX_CONF_BYTES: usize = 1 << 20;
/// Includes nested at most (ldconfig has no limit; a chain of 3000 overflowed the stack).
const MAX_CONF_DEPTH: usize = 32;

/// `/etc/ld.so.conf` and its includes, as `ldconfig` reads them: each file once (an
/// include loop or a file included many times costs one reading), globs matched against
/// one listing of the image's files, at most [`MAX_CONF_BYTES`] read and
/// [`MAX_CONF_DEPTH`] includes deep.
struct Conf<'f> {
    fs: &'f dyn Fs,
    /// Every regular file, sorted.
    files: Vec<Vec<u8>>,
    /// The conf files read so far, by real path.
    read: HashSet<Vec<u8>>,
    /// What is left of [`MAX_CONF_BYTES`].
    left: usize,
    /// The folders named, in order, each once.
    dirs: Vec<Vec<u8>>,
    named: HashSet<Vec<u8>>,
    /// The files read, as named, in order.
    files_read: Vec<Vec<u8>>,
}

impl<'f> Conf<'f> {
    fn new(fs: &'f dyn Fs) -> Self {
        Conf {
            fs,
            files: fs.files(),
            read: HashSet::new(),
            left: MAX_CONF_BYTES,
            dirs: Vec::new(),
            named: HashSet::new(),
            files_read: Vec::new(),
        }
    }

    fn read(&mut self, p: &[u8], depth: usize) {
        let Some(real) = resolve(self.fs, p) else {
            return;
        };
        if depth > MAX_CONF_DEPTH || self.left == 0 || !self.read.insert(real.clone()) {
            return;
        }
        self.files_read.push(p.to_vec());
        let Some(text) = self.fs.open(&real).and_then(|f| f.head(self.left).ok()) else {
            return;
        };
        self.left -= text.len();
        for line in text.split(|&b| b == b'\n') {
            let line = line.split(|&b| b == b'#').next().unwrap_or_default();
            let line = String::from_utf8_lossy(line);
            let mut words = line.split_whitespace();
            match words.next() {
                None => {}
                Some("include") => {
                    for pattern in words {
                        let abs = if pattern.starts_with('/') {
                            normalise(pattern.as_bytes())
                        } else {
                            join_rel(crate::layer::overlay::parent(p), pattern.as_bytes())
                        };
                        for f in self.glob(&abs) {
                            self.read(&f, depth + 1);
                        }
                    }
                }
                Some("hwcap") => {}
                Some(first) => {
                    for d in std::iter::once(first).chain(words) {
                        for d in d.split([',', ':']).filter(|d| !d.is_empty()) {
                            let d = normalise(d.split('=').next().unwrap_or(d).as_bytes());
                            if self.named.insert(d.clone()) {
                                self.dirs.push(d);
                            }
                        }
                    }
                }
            }
        }
    }

    /// The files matching a glob whose wildcards are in its last component, sorted.
    fn glob(&self, pattern: &[u8]) -> Vec<Vec<u8>> {
        let (dir, last) = match pattern.iter().rposition(|&b| b == b'/') {
            Some(i) => (&pattern[..i], &pattern[i + 1..]),
            None => (&b""[..], pattern),
        };
        let Ok(glob) = globset::Glob::new(&String::from_utf8_lossy(last)) else {
            return Vec::new();
        };
        let m = glob.compile_matcher();
        let Some(real) = resolve(self.fs, dir) else {
            return Vec::new();
        };
        let prefix = if real.is_empty() {
            Vec::new()
        } else {
            [&real[..], b"/"].concat()
        };
        // The files under the folder form one run of the sorted listing.
        let start = self
            .files
            .partition_point(|f| f.as_slice() < prefix.as_slice());
        self.files[start..]
            .iter()
            .take_while(|f| f.starts_with(&prefix))
            .filter(|f| {
                let name = &f[prefix.len()..];
                !name.contains(&b'/') && m.is_match(String::from_utf8_lossy(name).as_ref())
            })
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::memfs::MemFs;

    /// An include chain of 3000 overflowed the stack; 20 hard links to one 1 MiB file
    /// were each read whole, their folders kept 20 times.
    #[test]
    fn ld_so_conf_is_read_within_its_depth_and_byte_limits() {
        let mut fs = MemFs::default();
        fs.file("etc/ld.so.conf", b"/first\ninclude /etc/c/0.conf\n", 0o644);
        for i in 0..3000 {
            let next = format!("/d{i}\ninclude /etc/c/{}.conf\n", i + 1);
            fs.file(&format!("etc/c/{i}.conf"), next.as_bytes(), 0o644);
        }
        let cache = ElfCache::default();
        let loader = Loader::new(&fs, &[], &cache);
        assert_eq!(loader.conf_dirs.len(), 1 + MAX_CONF_DEPTH);
        assert_eq!(loader.conf_dirs[..2], [b"first".to_vec(), b"d0".to_vec()]);

        let mut fs = MemFs::default();
        let big: Vec<u8> = (0..100_000)
            .flat_map(|i| format!("/x{i}\n").into_bytes())
            .collect();
        let mut conf = b"include /etc/h/*.conf\n".to_vec();
        for i in 0..20 {
            fs.file(&format!("etc/h/{i:02}.conf"), &big, 0o644);
            conf.extend(format!("include /etc/h/{i:02}.conf\n").as_bytes());
        }
        fs.file("etc/ld.so.conf", &conf, 0o644);
        let mut conf = Conf::new(&fs);
        conf.read(b"etc/ld.so.conf", 0);
        assert_eq!(conf.left, 0);
        assert!(
            conf.read.len() <= 3,
            "{} files read within 1 MiB",
            conf.read.len()
        );
        assert!(
            conf.dirs.len() < 200_000,
            "{} folders kept",
            conf.dirs.len()
        );
    }
}
