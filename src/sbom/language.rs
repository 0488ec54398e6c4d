//! Language packages, found as syft's image catalogers find them:
//! - Python (`python-installed-package-cataloger`): `**/*.dist-info/METADATA`,
//!   `**/*.egg-info/PKG-INFO` and `**/*.egg-info` files; the headers `Name` (as PEP 503
//!   normalises it: `MarkupSafe` is `markupsafe`), `Version`, and `License-Expression`,
//!   `License` or a `License ::` classifier.
//! - Node (`javascript-package-cataloger`): every `**/package.json`; `name`,
//!   `version` (a package with no name is dropped, no version is `UNKNOWN`, as syft's
//!   compliance rules say), `license` or `licenses`.

use super::{Component, Ecosystem, Inventory, MAX_METADATA_FILE, purl};
use crate::layer::fs::Fs;
use crate::layer::path::escape;
use crate::packages::Budget;
use serde_json::Value;

/// The version syft gives a package whose metadata names none.
pub const UNKNOWN: &str = "UNKNOWN";

/// Which metadata a file is.
#[derive(Clone, Copy)]
enum Found {
    Python,
    Npm,
}

/// What `p` holds by its name, if it is metadata a finder reads.
fn kind(p: &[u8]) -> Option<Found> {
    let name = p.rsplit(|&c| c == b'/').next().unwrap_or(p);
    let dir = crate::layer::overlay::parent(p);
    let dir_name = dir.rsplit(|&c| c == b'/').next().unwrap_or(dir);
    if name == b"package.json" {
        Some(Found::Npm)
    } else if (name == b"METADATA" && dir_name.ends_with(b"dist-info"))
        || (name == b"PKG-INFO" && dir_name.ends_with(b"egg-info"))
        || name.ends_with(b".egg-info")
    {
        Some(Found::Python)
    } else {
        None
    }
}

/// Most warnings kept of one image's metadata (a hostile image of a million broken
/// `package.json` files says so in one more line, not a million).
const MAX_WARNINGS: usize = 100;

/// Adds the language packages of `fs` to `inv`.
pub(super) fn find(fs: &dyn Fs, budget: &Budget, inv: &mut Inventory) {
    let mut unsaid = 0usize;
    let mut warn = |inv: &mut Inventory, w: String| {
        if inv.warnings.len() < MAX_WARNINGS {
            inv.warnings.push(w);
        } else {
            unsaid += 1;
        }
    };
    for p in fs.files() {
        let Some(found) = kind(&p) else { continue };
        let show = format!("/{}", escape(&p));
        let text = match read(fs, &p, &show, budget) {
            Ok(t) => t,
            Err(w) => {
                warn(inv, w);
                continue;
            }
        };
        let component = match found {
            Found::Python => python(&text, show),
            Found::Npm => match npm(&text, show.clone()) {
                Ok(c) => c,
                Err(e) => {
                    warn(
                        inv,
                        format!("{show}: not JSON ({})", crate::escape::one_line(&e)),
                    );
                    None
                }
            },
        };
        inv.components.extend(component);
    }
    if unsaid > 0 {
        inv.warnings.push(format!(
            "{unsaid} more package metadata files could not be read"
        ));
    }
}

/// The text of the metadata file `p`, within [`MAX_METADATA_FILE`] and `budget`.
fn read(fs: &dyn Fs, p: &[u8], show: &str, budget: &Budget) -> Result<String, String> {
    let bigger = "package metadata may hold; not listed";
    let bytes = crate::packages::read_capped(fs, (p, show), MAX_METADATA_FILE, budget, bigger)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// A Python distribution from its core metadata (RFC 822 headers, up to the first
/// blank line); `None` without a name.
fn python(text: &str, location: String) -> Option<Component> {
    let (mut name, mut version, mut expression, mut licence) = ("", "", "", "");
    let mut classified = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            break;
        }
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim();
        match k {
            "Name" => name = v,
            "Version" => version = v,
            "License-Expression" => expression = v,
            "License" => licence = v,
            "Classifier" => {
                if let Some(l) = v.strip_prefix("License :: ") {
                    classified.push(l.rsplit(" :: ").next().unwrap_or(l).to_string());
                }
            }
            _ => {}
        }
    }
    // Python 2.7 lists itself as an egg-info named `Python`: the runtime, not a package.
    if name.is_empty() || name == "Python" {
        return None;
    }
    let version = if version.is_empty() { UNKNOWN } else { version };
    let licences = if !expression.is_empty() {
        vec![expression.to_string()]
    } else if !licence.is_empty() && licence != UNKNOWN {
        vec![licence.to_string()]
    } else {
        classified
    };
    Some(Component {
        ecosystem: Ecosystem::Python,
        purl: purl::pypi(name, version),
        name: purl::pep503(name),
        version: version.to_string(),
        arch: String::new(),
        licences,
        location,
    })
}

/// A Node package from its `package.json`; `None` without a name.
fn npm(text: &str, location: String) -> Result<Option<Component>, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let name = v["name"].as_str().unwrap_or("").trim();
    if name.is_empty() {
        return Ok(None);
    }
    let version = match v["version"].as_str().map(str::trim) {
        Some(s) if !s.is_empty() => s,
        _ => UNKNOWN,
    };
    let named = |x: &Value| match x {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("type").and_then(Value::as_str).map(String::from),
        _ => None,
    };
    let licences: Vec<String> = match (&v["license"], &v["licenses"]) {
        (Value::Null, Value::Array(a)) => a.iter().filter_map(named).collect(),
        (l, _) => named(l).into_iter().collect(),
    };
    Ok(Some(Component {
        ecosystem: Ecosystem::Npm,
        purl: purl::npm(name, version),
        name: name.to_string(),
        version: version.to_string(),
        arch: String::new(),
        licences: licences
            .into_iter()
            .filter(|l| !l.trim().is_empty())
            .collect(),
        location,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_files_are_found_by_name() {
        for (p, python, npm) in [
            (
                &b"usr/lib/python3/dist-packages/pip-23.0.1.dist-info/METADATA"[..],
                true,
                false,
            ),
            (
                b"usr/lib/python3/dist-packages/six-1.16.0.egg-info",
                true,
                false,
            ),
            (b"x/foo.egg-info/PKG-INFO", true, false),
            (b"srv/app/node_modules/a/package.json", false, true),
            (b"package.json", false, true),
            (b"x/foo.dist-info/RECORD", false, false),
            (b"x/METADATA", false, false),
        ] {
            let k = kind(p);
            assert_eq!(matches!(k, Some(Found::Python)), python, "{p:?}");
            assert_eq!(matches!(k, Some(Found::Npm)), npm, "{p:?}");
        }
    }

    #[test]
    fn python_metadata_headers_stop_at_the_body() {
        let c = python(
            "Metadata-Version: 2.1\nName: requests\nVersion: 2.31.0\nLicense: Apache 2.0\n\nName: other\n",
            "/m".into(),
        )
        .unwrap();
        assert_eq!(
            (c.name.as_str(), c.version.as_str()),
            ("requests", "2.31.0")
        );
        assert_eq!(c.licences, ["Apache 2.0"]);
        let c = python(
            "Name: x\nClassifier: License :: OSI Approved :: MIT License\n",
            "/m".into(),
        );
        assert_eq!(c.unwrap().licences, ["MIT License"]);
        assert!(python("Version: 1\n", "/m".into()).is_none());
    }

    #[test]
    fn package_json_without_name_is_dropped_and_without_version_unknown() {
        assert!(
            npm(r#"{"version":"1.0.0"}"#, "/p".into())
                .unwrap()
                .is_none()
        );
        let c = npm(r#"{"name":"a","license":{"type":"ISC"}}"#, "/p".into())
            .unwrap()
            .unwrap();
        assert_eq!(
            (c.version.as_str(), c.licences.as_slice()),
            (UNKNOWN, &["ISC".to_string()][..])
        );
        let c = npm(
            r#"{"name":"b","version":"2","licenses":[{"type":"MIT"},"BSD"]}"#,
            "/p".into(),
        );
        assert_eq!(c.unwrap().unwrap().licences, ["MIT", "BSD"]);
        assert!(npm("{", "/p".into()).is_err());
    }
}
