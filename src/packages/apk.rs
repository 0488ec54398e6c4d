//! apk's database (apk-tools `database.c`, the "installed" file format): at
//! `/lib/apk/db/installed`, one record per package separated by blank lines, each line
//! `KEY:VALUE` with one-letter keys: `P` name, `V` version, `A` architecture, `D`
//! dependencies, `p` provides, `F` a folder (relative to the root) whose files follow
//! as `R` lines; `M`, `a`, `Z` and the rest (permissions, checksums) are not needed.

use super::relation::{apk_provided, parse_apk};
use super::{Budget, Manager, Package, read_text};
use crate::deps::fs::{Fs, join_rel, normalise};

/// The installed database.
pub const INSTALLED: &[u8] = b"lib/apk/db/installed";

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
            let mut chars = body.chars();
            if let (Some(k), Some(':')) = (chars.next(), chars.next()) {
                r.lines.push((k, &body[2..]));
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
                'D' => p.depends.extend(parse_apk(v)),
                'p' => p.provides.extend(v.split_whitespace().map(apk_provided)),
                'F' => {
                    dir = normalise(v.as_bytes());
                    p.files.push(dir.clone());
                }
                'R' => p.files.push(join_rel(&dir, v.as_bytes())),
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

    pub const INSTALLED_TEXT: &str = "C:Q1abc=\nP:musl\nV:1.2.4-r2\nA:x86_64\np:so:libc.musl-x86_64.so.1=1\nF:lib\nR:ld-musl-x86_64.so.1\na:0:0:755\nZ:Q1x=\nR:libc.musl-x86_64.so.1\n\nP:busybox\nV:1.36.1-r5\nA:x86_64\nD:so:libc.musl-x86_64.so.1\np:cmd:busybox=1.36.1-r5\nF:bin\nR:busybox\nF:etc\nR:securetty\n";

    #[test]
    fn records_files_and_relations() {
        let mut fs = crate::deps::fs::tests::MemFs::default();
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
