//! A software bill of materials of an image, written from its own metadata, as the
//! scanners security teams run (syft, trivy) read it:
//!
//! ```text
//!  merged fs ─► os-release              ─► distro (id, version)
//!           ─► dpkg status / apk db     ─► deb / apk packages, licences from
//!                                          /usr/share/doc/PKG/copyright (apk: L:)
//!           ─► **/*.dist-info/METADATA,
//!              **/*.egg-info[/PKG-INFO] ─► python packages
//!           ─► **/package.json          ─► npm packages
//!                                        ─► Inventory ─► spdx::render | cyclonedx::render
//! ```
//!
//! The finders follow syft's catalogers (`dpkg-db`, `apk-db`,
//! `python-installed-package`, `javascript-package`), so the (type, name, version) set
//! is the one syft lists for the same image. Every file is read within a byte budget
//! (a hostile image of a million `package.json` files costs their bytes, once).

pub mod cyclonedx;
mod language;
pub mod spdx;

use crate::layer::fs::{Fs, resolve};
use crate::packages::{Budget, Database, Manager};
use serde::Serialize;
use std::collections::BTreeSet;

/// The most bytes of one language package's metadata file read (a `package.json` or
/// `METADATA` of a real package is a few KiB; METADATA's headers come first).
pub const MAX_METADATA_FILE: u64 = 1 << 20;

/// Which SBOM format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum SbomFormat {
    /// SPDX 2.3 JSON.
    #[default]
    Spdx,
    /// CycloneDX 1.6 JSON.
    Cyclonedx,
}

impl SbomFormat {
    /// Its media type (the `artifactType` of a referrer holding it).
    pub fn media_type(self) -> &'static str {
        match self {
            SbomFormat::Spdx => "application/spdx+json",
            SbomFormat::Cyclonedx => "application/vnd.cyclonedx+json",
        }
    }
}

/// A package's ecosystem, named as syft and purl name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Ecosystem {
    /// A Debian package (dpkg).
    Deb,
    /// An Alpine package (apk).
    Apk,
    /// A Python distribution installed with its metadata.
    Python,
    /// A Node package (its `package.json`).
    Npm,
}

impl Ecosystem {
    /// Its name, as syft's `type` and purl's type word.
    pub fn name(self) -> &'static str {
        match self {
            Ecosystem::Deb => "deb",
            Ecosystem::Apk => "apk",
            Ecosystem::Python => "python",
            Ecosystem::Npm => "npm",
        }
    }
}

/// One package the image ships.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Component {
    /// Its ecosystem.
    pub ecosystem: Ecosystem,
    /// Its name.
    pub name: String,
    /// Its version (`UNKNOWN` when its metadata gives none, as syft stubs it).
    pub version: String,
    /// Its architecture, for OS packages.
    pub arch: String,
    /// The licences its metadata names, as written there.
    pub licences: Vec<String>,
    /// Where its metadata is (from the image root).
    pub location: String,
    /// Its package URL.
    pub purl: String,
}

/// The OS, from `/etc/os-release`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Distro {
    /// `ID` (`debian`, `alpine`).
    pub id: String,
    /// `VERSION_ID` (`12`, `3.20.3`).
    pub version_id: String,
    /// `PRETTY_NAME`.
    pub pretty_name: String,
}

/// Everything an image ships as packages.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Inventory {
    /// The OS, when the image names one.
    pub distro: Option<Distro>,
    /// Every package, sorted by ecosystem, name, version and location.
    pub components: Vec<Component>,
    /// Metadata that could not be read (too big, not UTF-8, not JSON).
    pub warnings: Vec<String>,
}

impl Inventory {
    /// How many packages of each ecosystem it lists.
    pub fn counts(&self) -> std::collections::BTreeMap<&'static str, usize> {
        let mut counts = std::collections::BTreeMap::new();
        for c in &self.components {
            *counts.entry(c.ecosystem.name()).or_insert(0) += 1;
        }
        counts
    }
}

/// What an SBOM describes: the image's name, its digest (config or manifest) and when
/// it was made.
#[derive(Clone, Debug)]
pub struct Subject {
    /// A name for people (the output's tag, or the source).
    pub name: String,
    /// The image's digest; names the document, so one image gives one document.
    pub digest: crate::digest::Digest,
    /// RFC 3339; the image's own `created` (never the clock: the output is
    /// deterministic).
    pub created: String,
}

/// The packages of the merged filesystem `fs`.
pub fn catalog(fs: &dyn Fs) -> Result<Inventory, String> {
    let budget = Budget::new();
    let mut inv = Inventory {
        distro: distro(fs, &budget),
        ..Default::default()
    };
    if let Some(db) = crate::packages::read_within(fs, &budget)? {
        os_packages(fs, &db, inv.distro.as_ref(), &budget, &mut inv.components);
        inv.warnings.extend(db.warnings);
    }
    language::find(fs, &budget, &mut inv);
    inv.components.sort();
    inv.components.dedup();
    Ok(inv)
}

/// When the image says it was made (its config's `created`), the epoch when it says
/// nothing: an SBOM never takes the clock's time, so the same image gives the same bytes.
pub fn created(config: &serde_json::Value) -> String {
    // SPDX asks for `YYYY-MM-DDThh:mm:ssZ`: fractions of a second go (Docker writes
    // UTC, so an offset is rare; it is dropped with them).
    let s = config["created"].as_str().unwrap_or("");
    let b = s.as_bytes();
    let shaped = b.len() >= 19
        && b[..19].iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            _ => c.is_ascii_digit(),
        });
    if shaped {
        format!("{}Z", &s[..19])
    } else {
        "1970-01-01T00:00:00Z".to_string()
    }
}

/// Renders `inv` in `format`.
pub fn render(inv: &Inventory, format: SbomFormat, subject: &Subject) -> Vec<u8> {
    let mut bytes = match format {
        SbomFormat::Spdx => spdx::render(inv, subject),
        SbomFormat::Cyclonedx => cyclonedx::render(inv, subject),
    };
    bytes.push(b'\n');
    bytes
}

/// Where the OS names itself: `/etc/os-release`, else `/usr/lib/os-release`.
const OS_RELEASE: &[&[u8]] = &[b"etc/os-release", b"usr/lib/os-release"];

/// The OS the image names, from `os-release` (`KEY=value`, the value maybe quoted).
fn distro(fs: &dyn Fs, budget: &Budget) -> Option<Distro> {
    let text = OS_RELEASE
        .iter()
        .find_map(|p| small_text(fs, p, 64 << 10, budget))?;
    let mut d = Distro::default();
    for line in text.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim().trim_matches('"').trim_matches('\'').to_string();
        match k.trim() {
            "ID" => d.id = v,
            "VERSION_ID" => d.version_id = v,
            "PRETTY_NAME" => d.pretty_name = v,
            _ => {}
        }
    }
    (!d.id.is_empty()).then_some(d)
}

/// The text of the file `p` (symlinks followed), when it holds at most `max` bytes, read
/// within `budget` ([`crate::packages::read_capped`]).
fn small_text(fs: &dyn Fs, p: &[u8], max: u64, budget: &Budget) -> Option<String> {
    let real = resolve(fs, p)?;
    let bytes = crate::packages::read_capped(fs, (&real, ""), max, budget, "").ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// The OS packages of `db` (all but those dpkg records as not installed).
fn os_packages(
    fs: &dyn Fs,
    db: &Database,
    distro: Option<&Distro>,
    budget: &Budget,
    out: &mut Vec<Component>,
) {
    let (ecosystem, location) = match db.manager {
        Manager::Dpkg => (Ecosystem::Deb, "/var/lib/dpkg/status"),
        Manager::Apk => (Ecosystem::Apk, "/lib/apk/db/installed"),
    };
    for p in db.packages.iter().filter(|p| p.state != "not-installed") {
        let licences = match db.manager {
            Manager::Dpkg => debian_licences(fs, &p.name, budget),
            Manager::Apk => (!p.licence.is_empty())
                .then(|| p.licence.clone())
                .into_iter()
                .collect(),
        };
        out.push(Component {
            ecosystem,
            purl: purl::os(ecosystem, distro, &p.name, &p.version, &p.arch),
            name: p.name.clone(),
            version: p.version.clone(),
            arch: p.arch.clone(),
            licences,
            location: location.to_string(),
        });
    }
}

/// The most bytes of a copyright file read (the biggest in Debian are ~2 MiB).
const MAX_COPYRIGHT: u64 = 8 << 20;

/// The licences `/usr/share/doc/NAME/copyright` names, as syft reads them: each
/// `License:` field's first word and each `/usr/share/common-licenses/NAME` mentioned,
/// summaries (`A or B`) and `none` left out, a final `.` dropped; sorted, once each.
fn debian_licences(fs: &dyn Fs, name: &str, budget: &Budget) -> Vec<String> {
    if name.contains('/') || name.starts_with('.') {
        return Vec::new();
    }
    let p = format!("usr/share/doc/{name}/copyright");
    small_text(fs, p.as_bytes(), MAX_COPYRIGHT, budget)
        .map(|text| copyright_licences(&text))
        .unwrap_or_default()
}

/// The licences a Debian copyright file names (see [`debian_licences`]).
fn copyright_licences(text: &str) -> Vec<String> {
    const COMMON: &str = "/usr/share/common-licenses/";
    let mut found = BTreeSet::new();
    let mut add = |candidate: &str| {
        let c = candidate.trim();
        if c.contains(" or ")
            || c.contains(" and ")
            || c.is_empty()
            || c.eq_ignore_ascii_case("none")
        {
            return;
        }
        found.insert(c.strip_suffix('.').unwrap_or(c).to_string());
    };
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("License: ") {
            add(rest.split(char::is_whitespace).next().unwrap_or(""));
        }
        if let Some(at) = line.find(COMMON) {
            let rest = &line[at + COMMON.len()..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || "_.-".contains(c)))
                .unwrap_or(rest.len());
            add(&rest[..end]);
        }
    }
    found.into_iter().filter(|l| !l.is_empty()).collect()
}

pub mod purl {
    //! Package URLs (<https://github.com/package-url/purl-spec>): `pkg:TYPE/NAMESPACE/NAME@VERSION?QUALIFIERS`,
    //! each part percent-encoded but for letters, digits and `.-_~`.

    use super::{Distro, Ecosystem};

    /// `s` percent-encoded as a purl part.
    pub fn encode(s: &str) -> String {
        let mut out = String::with_capacity(s.len());
        for b in s.bytes() {
            if b.is_ascii_alphanumeric() || b".-_~".contains(&b) {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        out
    }

    /// An OS package's purl: `pkg:deb/debian/NAME@VERSION?arch=ARCH&distro=debian-12`
    /// (apk: `pkg:apk/alpine/...`).
    pub fn os(
        e: Ecosystem,
        distro: Option<&Distro>,
        name: &str,
        version: &str,
        arch: &str,
    ) -> String {
        let namespace = match (e, distro) {
            (_, Some(d)) => d.id.as_str(),
            (Ecosystem::Apk, None) => "alpine",
            _ => "debian",
        };
        let mut q = Vec::new();
        if !arch.is_empty() {
            q.push(format!("arch={}", encode(arch)));
        }
        if let Some(d) = distro {
            q.push(format!(
                "distro={}",
                encode(&format!("{}-{}", d.id, d.version_id))
            ));
        }
        let mut s = format!(
            "pkg:{}/{}/{}@{}",
            e.name(),
            encode(namespace),
            encode(name),
            encode(version)
        );
        if !q.is_empty() {
            s.push('?');
            s.push_str(&q.join("&"));
        }
        s
    }

    /// A Python package's name as PEP 503 normalises it: lower-cased, each run of
    /// `-`, `_` and `.` one `-`.
    pub fn pep503(name: &str) -> String {
        let mut out = String::with_capacity(name.len());
        for c in name.chars() {
            if matches!(c, '-' | '_' | '.') {
                if !out.ends_with('-') {
                    out.push('-');
                }
            } else {
                out.push(c.to_ascii_lowercase());
            }
        }
        out
    }

    /// A Python package's purl, its name normalised ([`pep503`]).
    pub fn pypi(name: &str, version: &str) -> String {
        format!("pkg:pypi/{}@{}", encode(&pep503(name)), encode(version))
    }

    /// A Node package's purl; a scope (`@types/node`) is its namespace.
    pub fn npm(name: &str, version: &str) -> String {
        let path = match name.split_once('/') {
            Some((scope, n)) => format!("{}/{}", encode(scope), encode(n)),
            None => encode(name),
        };
        format!("pkg:npm/{path}@{}", encode(version))
    }
}

/// An SPDX licence expression for `licences` (each a name as the metadata gives it):
/// each a known SPDX id or expression (imprecise names mended, `GPL-2+` read as
/// `GPL-2.0-or-later`), else a `LicenseRef-` of its own; joined by `AND`. `None` when
/// there is none.
pub fn spdx_expression(licences: &[String]) -> Option<String> {
    let mut terms: Vec<String> = Vec::new();
    for t in licences.iter().map(|l| spdx_term(l)) {
        if !terms.contains(&t) {
            terms.push(t);
        }
    }
    match terms.len() {
        0 => None,
        1 => terms.into_iter().next(),
        _ => Some(
            terms
                .iter()
                .map(|t| {
                    if t.contains(' ') {
                        format!("({t})")
                    } else {
                        t.clone()
                    }
                })
                .collect::<Vec<_>>()
                .join(" AND "),
        ),
    }
}

/// Names metadata gives that are an SPDX licence under another name (Debian's
/// copyright format names MIT `Expat`; its `Artistic` is Artistic 1.0).
const ALIASES: &[(&str, &str)] = &[
    ("Expat", "MIT"),
    ("MIT License", "MIT"),
    ("Artistic", "Artistic-1.0"),
    ("Apache-2", "Apache-2.0"),
    ("Apache 2.0", "Apache-2.0"),
    ("Apache License 2.0", "Apache-2.0"),
    ("Apache License, Version 2.0", "Apache-2.0"),
];

/// One licence as an SPDX expression (see [`spdx_expression`]): a valid expression as
/// it is (a GNU licence first, as below); an SPDX id in another case (`BSD-3-clause`); a GNU licence as Debian names it
/// (`GPL-2`, `LGPL-2.1+`); a name of [`ALIASES`]; else a `LicenseRef-` of its own.
/// Never a guess: a name that only starts like a licence (`BSD`) is not that licence.
pub fn spdx_term(l: &str) -> String {
    let l = l.trim();
    if let Some(id) = gnu(l) {
        return id;
    }
    if ::spdx::Expression::parse(l).is_ok() {
        return l.to_string();
    }
    if let Some(id) = ::spdx::identifiers::LICENSES
        .iter()
        .find(|x| x.name.eq_ignore_ascii_case(l))
    {
        return id.name.to_string();
    }
    if let Some((_, id)) = ALIASES.iter().find(|(a, _)| a.eq_ignore_ascii_case(l)) {
        return id.to_string();
    }
    licence_ref(l)
}

/// A GNU licence as Debian's copyright format names it: `GPL-2`, `GPL-2+`,
/// `LGPL-2.1`, `AGPL-3+`, `GFDL-1.3` (`-only`, or `-or-later` with `+`).
fn gnu(l: &str) -> Option<String> {
    let (base, plus) = match l.strip_suffix('+') {
        Some(b) => (b, true),
        None => (l, false),
    };
    let (family, version) = base.split_once('-')?;
    if !["GPL", "LGPL", "AGPL", "GFDL"].contains(&family.to_ascii_uppercase().as_str()) {
        return None;
    }
    let version = if version.contains('.') {
        version.to_string()
    } else {
        format!("{version}.0")
    };
    let id = format!(
        "{}-{version}-{}",
        family.to_ascii_uppercase(),
        if plus { "or-later" } else { "only" }
    );
    ::spdx::license_id(&id).map(|x| x.name.to_string())
}

/// `LicenseRef-` and `l` with every character outside `A-Za-z0-9.-` as `-`.
pub fn licence_ref(l: &str) -> String {
    let id: String = l
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("LicenseRef-{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copyright_licences_as_syft_reads_them() {
        let text = "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\
                    Files: *\nLicense: GPL-2+\n\nFiles: a/*\nLicense: BSD-3-clause or GPL-2\n\
                    License: Expat.\nLicense: none\n On Debian systems, see \
                    /usr/share/common-licenses/GPL-2.\n";
        // syft reads the first word of a `License:` field before it looks for " or ".
        assert_eq!(
            copyright_licences(text),
            ["BSD-3-clause", "Expat", "GPL-2", "GPL-2+"]
        );
    }

    #[test]
    fn licences_become_spdx_expressions() {
        for (given, want) in [
            (&["GPL-2+"][..], Some("GPL-2.0-or-later")),
            (&["GPL-2"], Some("GPL-2.0-only")),
            (&["LGPL-2.1+"], Some("LGPL-2.1-or-later")),
            (&["BSD-3-clause"], Some("BSD-3-Clause")),
            (&["BSD"], Some("LicenseRef-BSD")),
            (&["GPL"], Some("LicenseRef-GPL")),
            (&["MIT"], Some("MIT")),
            (&["MIT OR Apache-2.0"], Some("MIT OR Apache-2.0")),
            (
                &["Expat", "public domain"],
                Some("MIT AND LicenseRef-public-domain"),
            ),
            (&["(MIT OR Apache-2.0)"], Some("(MIT OR Apache-2.0)")),
            (&[], None),
        ] {
            let given: Vec<String> = given.iter().map(|s| s.to_string()).collect();
            assert_eq!(spdx_expression(&given).as_deref(), want, "{given:?}");
        }
    }

    #[test]
    fn created_is_the_config_s_in_spdx_s_shape() {
        for (given, want) in [
            (
                serde_json::json!({"created": "2024-05-06T07:08:09.123456789Z"}),
                "2024-05-06T07:08:09Z",
            ),
            (
                serde_json::json!({"created": "2024-05-06T07:08:09Z"}),
                "2024-05-06T07:08:09Z",
            ),
            (
                serde_json::json!({"created": "yesterday"}),
                "1970-01-01T00:00:00Z",
            ),
            (serde_json::json!({}), "1970-01-01T00:00:00Z"),
        ] {
            assert_eq!(created(&given), want);
        }
    }

    #[test]
    fn purls_are_encoded_as_the_spec_says() {
        let d = Distro {
            id: "debian".into(),
            version_id: "12".into(),
            pretty_name: String::new(),
        };
        assert_eq!(
            purl::os(
                Ecosystem::Deb,
                Some(&d),
                "libstdc++6",
                "1:12.2.0-14",
                "amd64"
            ),
            "pkg:deb/debian/libstdc%2B%2B6@1%3A12.2.0-14?arch=amd64&distro=debian-12"
        );
        assert_eq!(purl::pypi("Flask_Login", "0.6"), "pkg:pypi/flask-login@0.6");
        assert_eq!(
            purl::npm("@types/node", "20.1.0"),
            "pkg:npm/%40types/node@20.1.0"
        );
    }
}
