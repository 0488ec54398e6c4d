//! Benchmarks of the hot paths, run with `cargo bench` (or `cargo bench -- gzip` for one
//! group): tar indexing, policy matching over about a million paths, and the parallel
//! gzip and zstd encoders at 1 thread and at every core. Inputs are generated, so the
//! numbers are comparable between machines and runs; each case runs three times and the
//! fastest is printed. No assertion is made on time.

use ocislim::layer::codec::{Compression, EncodeOptions, Encoder};
use ocislim::layer::index::IndexMode;
use ocislim::layer::overlay::Tree;
use ocislim::layer::reader::scan_full;
use std::hint::black_box;
use std::io::{Sink, Write};
use std::time::{Duration, Instant};

const MIB: f64 = (1 << 20) as f64;

fn fastest<T>(mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best = None;
    let mut out = None;
    for _ in 0..3 {
        let t = Instant::now();
        let r = black_box(f());
        let e = t.elapsed();
        if best.is_none_or(|b| e < b) {
            best = Some(e);
        }
        out = Some(r);
    }
    (best.unwrap(), out.unwrap())
}

/// Bytes that compress a little less well than the files of a Debian image (about 1.8:1
/// at gzip 6, against 2.8:1): text from a 4096-word vocabulary, common words far more often, with runs of
/// random bytes standing for binaries and already compressed files.
fn corpus(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let words: Vec<Vec<u8>> = (0..4096)
        .map(|_| {
            let n = 2 + next() % 9;
            (0..n).map(|_| b'a' + (next() % 26) as u8).collect()
        })
        .collect();
    let mut out = Vec::with_capacity(len + 4096);
    while out.len() < len {
        let r = next();
        if r % 256 == 0 {
            let n = 64 + (r >> 8) % 1024;
            out.extend((0..n).map(|_| next() as u8));
        } else {
            // The product of two uniform picks favours small indexes, as word use does.
            let i = ((r >> 8) % 64) * ((r >> 20) % 64);
            out.extend_from_slice(&words[i as usize]);
            out.push(if r % 11 == 0 { b'\n' } else { b' ' });
        }
    }
    out.truncate(len);
    out
}

/// A tar of `n` entries: directories and files named like a Debian image's.
fn tar_of(n: usize, file_size: usize) -> Vec<u8> {
    let data = corpus(file_size.max(1));
    let mut b = tar::Builder::new(Vec::new());
    let tops = [
        "usr/share/doc",
        "usr/lib/python3/dist-packages",
        "srv/app/node_modules",
        "usr/share/locale",
        "usr/include",
        "var/cache/apt/archives",
    ];
    for i in 0..n {
        let top = tops[i % tops.len()];
        let path = format!(
            "{top}/pkg{}/sub{}/file{i}.{}",
            i / 97,
            i % 13,
            ["txt", "py", "js", "mo", "h", "deb"][i % 6]
        );
        let mut h = tar::Header::new_gnu();
        h.set_size(file_size as u64);
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, path, &data[..file_size]).unwrap();
    }
    b.into_inner().unwrap()
}

fn index(tar: &[u8]) -> Vec<ocislim::layer::index::EntryRec> {
    let (_, _, _, recs) =
        scan_full::<_, Sink, Sink>(tar, "bench", None, None, IndexMode::Entries).unwrap();
    recs
}

fn bench_index() {
    let tar = tar_of(100_000, 4096);
    let (t, recs) = fastest(|| index(&tar));
    println!(
        "index   {:>9} entries {:>7.0} MiB  {:>8.2} s  {:>7.0} MiB/s  {:>9.0} entries/s",
        recs.len(),
        tar.len() as f64 / MIB,
        t.as_secs_f64(),
        tar.len() as f64 / MIB / t.as_secs_f64(),
        recs.len() as f64 / t.as_secs_f64()
    );
}

fn bench_policy() {
    let tar = tar_of(1_000_000, 0);
    let mut recs = index(&tar);
    drop(tar);
    let mut warnings = Vec::new();
    // The merge moves entries only when a parent is a symlink: none are here, so every
    // run sees the same records.
    let (tm, (_, tree)) =
        fastest(|| Tree::merge([(&mut recs[..], "bench".to_string())], 0, &mut warnings).unwrap());
    println!(
        "merge   {:>9} paths                 {:>8.2} s  {:>9.0} paths/s",
        tree.nodes.len(),
        tm.as_secs_f64(),
        tree.nodes.len() as f64 / tm.as_secs_f64()
    );
    for name in ["default", "aggressive"] {
        let mut b = ocislim::policy::PolicySetBuilder::default();
        b.add(name).unwrap();
        let set = b.build().unwrap();
        let (t, deleted) = fastest(|| set.decide(&tree, &Default::default()).unwrap());
        println!(
            "policy  {:>9} paths {name:<11} {:>8.2} s  {:>9.0} paths/s  {} deleted",
            tree.nodes.len(),
            t.as_secs_f64(),
            tree.nodes.len() as f64 / t.as_secs_f64(),
            deleted.len()
        );
    }
}

fn bench_codecs() {
    // OCISLIM_BENCH_DATA=FILE compresses a real file (say, a flattened image tar) instead.
    let data = match std::env::var_os("OCISLIM_BENCH_DATA") {
        Some(p) => std::fs::read(p).unwrap(),
        None => corpus(256 << 20),
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
    for (compression, level) in [(Compression::Gzip, 6), (Compression::Zstd, 3)] {
        let mut threads = vec![1];
        if cores > 1 {
            threads.push(cores);
        }
        for t in threads {
            let opts = EncodeOptions {
                compression,
                level: Some(level),
                threads: t,
            };
            let (e, size) = fastest(|| {
                let mut enc = Encoder::new(Counter(0), opts).unwrap();
                enc.write_all(&data).unwrap();
                enc.finish().unwrap().0
            });
            println!(
                "{:<7} level {level} threads {t}  {:>5.0} MiB  {:>8.2} s  {:>7.0} MiB/s  ratio {:.2}",
                compression.name(),
                data.len() as f64 / MIB,
                e.as_secs_f64(),
                data.len() as f64 / MIB / e.as_secs_f64(),
                data.len() as f64 / size as f64
            );
        }
    }
}

struct Counter(u64);
impl Write for Counter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0 += b.len() as u64;
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn main() {
    // `cargo bench -- NAME` runs the groups whose name contains NAME; flags are ignored.
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wanted = |g: &str| filter.is_empty() || filter.iter().any(|f| g.contains(f.as_str()));
    if wanted("index") {
        bench_index();
    }
    if wanted("policy") {
        bench_policy();
    }
    if wanted("gzip zstd codecs") {
        bench_codecs();
    }
}
