//! dpkg's database (dpkg(1), "FILES"; deb-control(5)): `/var/lib/dpkg/status` holds one
//! deb822 stanza per package (`Package`, `Status: want flag state`, `Version`,
//! `Architecture`, `Essential`, `Pre-Depends`, `Depends`, `Provides`, `Conffiles`);
//! `/var/lib/dpkg/info/PKG.list` (or `PKG:ARCH.list` for `Multi-Arch: same`) lists the
//! paths a package installed, one per line, folders included;
//! `/var/lib/dpkg/diversions` holds triples of lines: the path, where it is diverted to,
//! and the diverting package (`:` for a local diversion): another package's file at
//! that path is installed at the second one.

use super::relation::{Relation, parse_dpkg};
use super::{Budget, Manager, Package, read_text};
use crate::layer::fs::{Fs, normalise};
use std::collections::HashMap;

/// The status file.
pub const STATUS: &[u8] = b"var/lib/dpkg/status";
/// The folder of per-package files (`.list`, `.md5sums`, maintainer scripts).
pub const INFO: &[u8] = b"var/lib/dpkg/info";
/// The diversions file.
pub const DIVERSIONS: &[u8] = b"var/lib/dpkg/diversions";

/// A diversion: `from` is installed at `to` for every package but `by`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diversion {
    /// The diverted path (normalised).
    pub from: Vec<u8>,
    /// Where other packages' file goes (normalised).
    pub to: Vec<u8>,
    /// The diverting package (`None`: a local diversion).
    pub by: Option<String>,
}

/// Parses the diversions file.
pub fn diversions(text: &str) -> Vec<Diversion> {
    let lines: Vec<&str> = text.lines().collect();
    lines
        .chunks_exact(3)
        .map(|t| Diversion {
            from: normalise(t[0].as_bytes()),
            to: normalise(t[1].as_bytes()),
            by: (t[2] != ":").then(|| t[2].to_string()),
        })
        .collect()
}

/// One stanza of the status file as text, and where it is (byte range), so a rewrite
/// keeps every other stanza byte for byte.
pub struct Stanza {
    /// Its bytes' range in the file, blank line separators excluded.
    pub range: (usize, usize),
    /// Its fields.
    pub fields: deb822_fast::Paragraph,
}

/// The stanzas of a status file, split on blank lines (deb822 separates paragraphs by
/// empty lines; dpkg writes exactly one).
pub fn stanzas(text: &str) -> Result<Vec<Stanza>, String> {
    let mut out = Vec::new();
    let mut start = None;
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        let blank = line.trim().is_empty();
        match (blank, start) {
            (false, None) => start = Some(pos),
            (true, Some(s)) => {
                out.push(stanza(text, s, pos)?);
                start = None;
            }
            _ => {}
        }
        pos += line.len();
    }
    if let Some(s) = start {
        out.push(stanza(text, s, pos)?);
    }
    Ok(out)
}

fn stanza(text: &str, start: usize, end: usize) -> Result<Stanza, String> {
    let fields: deb822_fast::Paragraph = text[start..end]
        .parse()
        .map_err(|e: deb822_fast::Error| format!("stanza at byte {start}: {e}"))?;
    Ok(Stanza {
        range: (start, end),
        fields,
    })
}

/// Reads the packages of the status file at [`STATUS`] with their file lists.
pub(crate) fn read(
    fs: &dyn Fs,
    warnings: &mut Vec<String>,
    budget: &Budget,
) -> Result<Vec<Package>, String> {
    let text = read_text(fs, STATUS, budget)?.unwrap_or_default();
    let diverted: HashMap<Vec<u8>, Diversion> = read_text(fs, DIVERSIONS, budget)?
        .map(|t| diversions(&t))
        .unwrap_or_default()
        .into_iter()
        .map(|d| (d.from.clone(), d))
        .collect();
    let mut out = Vec::new();
    for s in stanzas(&text).map_err(|e| format!("/var/lib/dpkg/status: {e}"))? {
        let f = &s.fields;
        let Some(name) = f.get("Package") else {
            warnings.push(format!(
                "/var/lib/dpkg/status: a stanza at byte {} has no Package field",
                s.range.0
            ));
            continue;
        };
        let state = f
            .get("Status")
            .and_then(|s| s.split_whitespace().nth(2))
            .unwrap_or("unknown")
            .to_string();
        let arch = f.get("Architecture").unwrap_or_default().to_string();
        let mut depends: Vec<Vec<Relation>> = Vec::new();
        for k in ["Pre-Depends", "Depends"] {
            depends.extend(f.get(k).map(parse_dpkg).unwrap_or_default());
        }
        let provides = f
            .get("Provides")
            .map(parse_dpkg)
            .unwrap_or_default()
            .into_iter()
            .flatten()
            .collect();
        let files = list_files(fs, name, &arch, &diverted, budget)?;
        out.push(Package {
            manager: Manager::Dpkg,
            name: name.to_string(),
            version: f.get("Version").unwrap_or_default().to_string(),
            arch,
            state,
            essential: f.get("Essential") == Some("yes"),
            protected: f.get("Protected") == Some("yes"),
            depends,
            recommends: ["Recommends", "Suggests"]
                .iter()
                .flat_map(|k| f.get(k).map(parse_dpkg).unwrap_or_default())
                .collect(),
            provides,
            files,
            licence: String::new(),
        });
    }
    Ok(out)
}

/// The `.list` file of a package (`NAME.list`, or `NAME:ARCH.list` for a
/// `Multi-Arch: same` package), diversions by other packages applied.
fn list_files(
    fs: &dyn Fs,
    name: &str,
    arch: &str,
    diverted: &HashMap<Vec<u8>, Diversion>,
    budget: &Budget,
) -> Result<Vec<Vec<u8>>, String> {
    let mut text = None;
    for file in [format!("{name}:{arch}.list"), format!("{name}.list")] {
        let p = [INFO, b"/", file.as_bytes()].concat();
        if let Some(t) = read_text(fs, &p, budget)? {
            text = Some((t, file));
            break;
        }
    }
    let Some((text, file)) = text else {
        return Ok(Vec::new());
    };
    let show = || {
        format!(
            "/var/lib/dpkg/info/{}",
            crate::layer::path::escape(file.as_bytes())
        )
    };
    let mut files = Vec::new();
    for line in text.lines().filter(|l| l.starts_with('/')) {
        let p = normalise(line.as_bytes());
        let p = match diverted.get(&p) {
            Some(d) if d.by.as_deref() != Some(name) => d.to.clone(),
            _ => p,
        };
        if !p.is_empty() {
            budget.keep(&show)?;
            files.push(p);
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stanzas_keep_their_byte_ranges() {
        let text = "Package: a\nStatus: install ok installed\nDescription: x\n more\n\nPackage: b\nVersion: 1\n";
        let s = stanzas(text).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(
            &text[s[0].range.0..s[0].range.1],
            "Package: a\nStatus: install ok installed\nDescription: x\n more\n"
        );
        assert_eq!(s[1].fields.get("Version"), Some("1"));
        assert_eq!(
            &text[s[1].range.0..s[1].range.1],
            "Package: b\nVersion: 1\n"
        );
    }

    #[test]
    fn diversions_by_others_and_local() {
        let d = diversions("/usr/bin/foo\n/usr/bin/foo.real\nbar\n/etc/x\n/etc/x.local\n:\n");
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].to, b"usr/bin/foo.real");
        assert_eq!(d[0].by.as_deref(), Some("bar"));
        assert_eq!(d[1].by, None);
    }
}
