//! apk's database (apk-tools `database.c`, the "installed" file format): at
//! `/lib/apk/db/installed`, one record per package separated by blank lines, each line
//! `KEY:VALUE` with one-letter keys: `P` name, `V` version, `A` architecture, `D`
//! dependencies, `p` provides, `F` a folder (relative to the root) whose files follow
//! as `R` lines; `M`, `a`, `Z` and the rest (permissions, checksums) are not needed.
//! `/etc/apk/world` names what was asked for (one dependency per line); the maintainer
//! scripts are entries `NAME-VERSION.CHECKSUM.ACTION` of `/lib/apk/db/scripts.tar`, and
//! `/lib/apk/db/triggers` has one line per package with triggers, `CHECKSUM PATH...`.

use super::relation::{apk_provided, parse_apk};
use super::{Budget, Manager, Package, read_text};
use crate::layer::fs::{Fs, Stat, join_rel, normalise};
use crate::layer::synth::{Content, Rewrite};
use std::collections::{BTreeSet, HashSet};

/// The installed database.
pub const INSTALLED: &[u8] = b"lib/apk/db/installed";
/// What was asked for.
pub const WORLD: &[u8] = b"etc/apk/world";
/// The maintainer scripts.
pub const SCRIPTS: &[u8] = b"lib/apk/db/scripts.tar";
/// The trigger interests.
pub const TRIGGERS: &[u8] = b"lib/apk/db/triggers";

/// The name a world line asks for: `name`, `name=1.2`, `name>1`, `name@tag`, `!name`
/// (a conflict: nothing asked for).
fn world_name(line: &str) -> Option<&str> {
    let l = line.trim();
    if l.is_empty() || l.starts_with('!') {
        return None;
    }
    let end = l.find(['<', '>', '=', '~', '@']).unwrap_or(l.len());
    Some(&l[..end])
}

/// The installed packages `/etc/apk/world` does not name: pulled in by others (the
/// marks apt keeps in extended_states).
pub(crate) fn pulled_in(
    fs: &dyn Fs,
    installed: &[&Package],
    budget: &Budget,
) -> crate::error::Result<HashSet<String>> {
    let text = read_text(fs, WORLD, budget)
        .map_err(|e| crate::error::Error::corrupt("package database", e))?
        .unwrap_or_default();
    let world: HashSet<&str> = text.lines().filter_map(world_name).collect();
    Ok(installed
        .iter()
        .filter(|p| !world.contains(p.name.as_str()))
        .map(|p| p.name.clone())
        .collect())
}

/// Removes the packages `removed` from apk's database as `apk del` leaves it: their
/// records in `installed` (every other record byte for byte), their world lines,
/// their scripts in `scripts.tar` and their trigger lines: the database files rewritten.
pub(crate) fn remove(
    fs: &dyn Fs,
    removed: &BTreeSet<&str>,
    budget: &Budget,
) -> Result<Vec<Rewrite>, String> {
    let mut rewrites = Vec::new();
    let mut write = |path: &[u8], bytes: Vec<u8>| {
        rewrites.push(Rewrite {
            path: path.to_vec(),
            content: Content::File(bytes),
            like: crate::layer::fs::resolve(fs, path).unwrap_or_else(|| path.to_vec()),
        })
    };
    let text = read_text(fs, INSTALLED, budget)?.unwrap_or_default();
    // Each removed package's script name prefix (`NAME-VERSION.CHECKSUM.`) and checksum,
    // from one pass over the records.
    let mut gone_ids: Vec<String> = Vec::new();
    let mut checksums: HashSet<&str> = HashSet::new();
    let mut out = String::new();
    for r in records(&text) {
        let field = |k: char| r.lines.iter().find(|(c, _)| *c == k).map(|(_, v)| *v);
        if let Some(name) = field('P').filter(|n| removed.contains(n)) {
            let version = field('V').unwrap_or("");
            let checksum = field('C');
            gone_ids.push(match checksum {
                Some(c) => format!("{name}-{version}.{c}."),
                None => format!("{name}-{version}."),
            });
            checksums.extend(checksum);
            continue;
        }
        out.push_str(&text[r.range.0..r.range.1]);
        out.push('\n');
    }
    if gone_ids.is_empty() {
        return Ok(rewrites);
    }
    write(INSTALLED, out.into_bytes());
    if let Some(world) = read_text(fs, WORLD, budget)? {
        let kept: String = world
            .split_inclusive('\n')
            .filter(|l| world_name(l).is_none_or(|n| !removed.contains(n)))
            .collect();
        if kept != world {
            write(WORLD, kept.into_bytes());
        }
    }
    if let Some(triggers) = read_text(fs, TRIGGERS, budget)? {
        let kept: String = triggers
            .split_inclusive('\n')
            .filter(|l| {
                !l.split_whitespace()
                    .next()
                    .is_some_and(|c| checksums.contains(c))
            })
            .collect();
        if kept != triggers {
            write(TRIGGERS, kept.into_bytes());
        }
    }
    if let Some(Stat::File { size, .. }) = fs.stat(SCRIPTS) {
        // Counted (and refused when too big) before a byte is read.
        budget.take(size, "/lib/apk/db/scripts.tar")?;
        let bytes = fs
            .open(SCRIPTS)
            .and_then(|f| f.head(size as usize).ok())
            .ok_or("/lib/apk/db/scripts.tar: cannot be read")?;
        if let Some(kept) = without_scripts(&bytes, &gone_ids)? {
            write(SCRIPTS, kept);
        }
    }
    Ok(rewrites)
}

/// `scripts.tar` without the entries whose names start with one of `prefixes`; `None`
/// when it has none of them. Kept entries keep their headers.
fn without_scripts(tar_bytes: &[u8], prefixes: &[String]) -> Result<Option<Vec<u8>>, String> {
    let bad = |e: std::io::Error| {
        let e = e.to_string();
        format!(
            "/lib/apk/db/scripts.tar: {}",
            crate::layer::path::escape(e.as_bytes())
        )
    };
    let mut archive = tar::Archive::new(tar_bytes);
    let mut b = tar::Builder::new(Vec::new());
    let mut dropped = false;
    for entry in archive.entries().map_err(bad)? {
        let mut e = entry.map_err(bad)?;
        let name = e.path_bytes().into_owned();
        if prefixes.iter().any(|p| name.starts_with(p.as_bytes())) {
            dropped = true;
            continue;
        }
        let mut h = e.header().clone();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).map_err(bad)?;
        b.append_data(
            &mut h,
            String::from_utf8_lossy(&name).as_ref(),
            data.as_slice(),
        )
        .map_err(bad)?;
    }
    dropped.then(|| b.into_inner()).transpose().map_err(bad)
}

/// `installed` without the files the policy deleted (`gone` says whether a path is no
/// longer in the image): each `R:` line of such a file with the `a:` and `Z:` lines
/// that describe it, and each `F:` folder that went with its `M:` line and its files;
/// every other line byte for byte, as `apk` lists what a package still has. `None`
/// when nothing changes.
pub fn without_lost(installed: &str, gone: &dyn Fn(&[u8]) -> bool) -> Option<String> {
    let mut out = String::with_capacity(installed.len());
    let (mut folder, mut folder_gone, mut file_gone, mut changed) =
        (String::new(), false, false, false);
    for line in installed.split_inclusive('\n') {
        let body = line.trim_end_matches('\n');
        let (key, value) = match body.split_once(':') {
            Some((k, v)) if k.len() == 1 => (k, v),
            _ => ("", body),
        };
        let drop = match key {
            "" => {
                // A blank line ends the record.
                (folder_gone, file_gone) = (false, false);
                folder.clear();
                false
            }
            "F" => {
                folder = value.to_string();
                folder_gone = gone(normalise(folder.as_bytes()).as_slice());
                file_gone = false;
                folder_gone
            }
            "M" => folder_gone,
            "R" => {
                file_gone =
                    folder_gone || gone(&join_rel(&normalise(folder.as_bytes()), value.as_bytes()));
                file_gone
            }
            "a" | "Z" => file_gone,
            _ => false,
        };
        changed |= drop;
        if !drop {
            out.push_str(line);
        }
    }
    changed.then_some(out)
}

/// One record's lines, and its byte range in the file.
pub struct Record<'a> {
    /// Its range, the blank line after it excluded.
    pub range: (usize, usize),
    /// Its `KEY:VALUE` lines.
    pub lines: Vec<(char, &'a str)>,
}

/// Splits the installed file into records.
pub fn records(text: &str) -> Vec<Record<'_>> {
    let mut out = Vec::new();
    let mut cur: Option<Record> = None;
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches('\n');
        if body.is_empty() {
            if let Some(mut r) = cur.take() {
                r.range.1 = pos;
                out.push(r);
            }
        } else {
            let r = cur.get_or_insert(Record {
                range: (pos, pos),
                lines: Vec::new(),
            });
            // The key is one character, not one byte: a non-ASCII one (or U+FFFD for an
            // invalid byte) must not cut a character in two.
            let mut chars = body.chars();
            if let (Some(k), Some(':')) = (chars.next(), chars.next()) {
                r.lines.push((k, chars.as_str()));
            }
        }
        pos += line.len();
    }
    if let Some(mut r) = cur {
        r.range.1 = pos;
        out.push(r);
    }
    out
}

/// Reads the installed packages.
pub(crate) fn read(
    fs: &dyn Fs,
    warnings: &mut Vec<String>,
    budget: &Budget,
) -> Result<Vec<Package>, String> {
    let text = read_text(fs, INSTALLED, budget)?.unwrap_or_default();
    let show = || "/lib/apk/db/installed".to_string();
    let mut out = Vec::new();
    for r in records(&text) {
        let mut p = Package {
            manager: Manager::Apk,
            state: "installed".into(),
            ..Package::default()
        };
        let mut dir: Vec<u8> = Vec::new();
        for (k, v) in &r.lines {
            match k {
                'P' => p.name = v.to_string(),
                'V' => p.version = v.to_string(),
                'A' => p.arch = v.to_string(),
                'L' => p.licence = v.to_string(),
                'D' => p.depends.extend(parse_apk(v)),
                'p' => p.provides.extend(v.split_whitespace().map(apk_provided)),
                'F' => {
                    dir = normalise(v.as_bytes());
                    budget.keep(&show)?;
                    p.files.push(dir.clone());
                }
                'R' => {
                    let f = join_rel(&dir, v.as_bytes());
                    budget.keep(&show)?;
                    p.files.push(f);
                }
                _ => {}
            }
        }
        if p.name.is_empty() {
            warnings.push(format!(
                "/lib/apk/db/installed: a record at byte {} has no P: line",
                r.range.0
            ));
            continue;
        }
        out.push(p);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_files_leave_their_records_and_the_rest_stays_byte_for_byte() {
        let db = concat!(
            "P:musl\nV:1\nF:lib\nM:0:0:755\nR:ld-musl.so.1\na:0:0:755\nZ:Q1a=\n",
            "R:libc.so\nZ:Q1b=\nF:usr/share/doc/musl\nM:0:0:755\nR:README\nZ:Q1c=\n\n",
            "P:busybox\nV:2\nF:bin\nR:busybox\nZ:Q1d=\n\n",
        );
        let gone = |p: &[u8]| p == b"lib/libc.so" || p.starts_with(b"usr/share/doc");
        let want = concat!(
            "P:musl\nV:1\nF:lib\nM:0:0:755\nR:ld-musl.so.1\na:0:0:755\nZ:Q1a=\n\n",
            "P:busybox\nV:2\nF:bin\nR:busybox\nZ:Q1d=\n\n",
        );
        assert_eq!(without_lost(db, &gone).as_deref(), Some(want));
        assert_eq!(without_lost(db, &|_| false), None);
    }

    pub const INSTALLED_TEXT: &str = "C:Q1abc=\nP:musl\nV:1.2.4-r2\nA:x86_64\np:so:libc.musl-x86_64.so.1=1\nF:lib\nR:ld-musl-x86_64.so.1\na:0:0:755\nZ:Q1x=\nR:libc.musl-x86_64.so.1\n\nP:busybox\nV:1.36.1-r5\nA:x86_64\nD:so:libc.musl-x86_64.so.1\np:cmd:busybox=1.36.1-r5\nF:bin\nR:busybox\nF:etc\nR:securetty\n";

    #[test]
    fn a_non_ascii_key_is_a_line_like_any_other() {
        let text = "é:x\nP:musl\n\u{fffd}:y\nV:1\n\nP\n";
        let r = records(text);
        assert_eq!(
            r[0].lines,
            [('é', "x"), ('P', "musl"), ('\u{fffd}', "y"), ('V', "1")]
        );
        assert!(r[1].lines.is_empty());
    }

    #[test]
    fn records_files_and_relations() {
        let mut fs = crate::layer::memfs::MemFs::default();
        fs.file("lib/apk/db/installed", INSTALLED_TEXT.as_bytes(), 0o644);
        let mut w = Vec::new();
        let p = read(&fs, &mut w, &Budget::new()).unwrap();
        assert!(w.is_empty());
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].name, "musl");
        assert_eq!(
            p[0].files,
            [
                &b"lib"[..],
                b"lib/ld-musl-x86_64.so.1",
                b"lib/libc.musl-x86_64.so.1"
            ]
        );
        assert_eq!(p[0].provides[0].name, "so:libc.musl-x86_64.so.1");
        assert_eq!(p[1].depends[0][0].name, "so:libc.musl-x86_64.so.1");
        assert_eq!(
            p[1].files,
            [&b"bin"[..], b"bin/busybox", b"etc", b"etc/securetty"]
        );
        let r = records(INSTALLED_TEXT);
        assert_eq!(&INSTALLED_TEXT[r[1].range.0..r[1].range.0 + 9], "P:busybox");
    }
}
