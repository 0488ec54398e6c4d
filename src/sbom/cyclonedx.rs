//! CycloneDX 1.6 JSON (<https://cyclonedx.org/docs/1.6/json/>): the image is the
//! metadata's `container` component; each package a `library` component with its purl
//! and licences (SPDX ids as `license.id`, a compound expression alone as
//! `expression`, other names as `license.name`). Written with serde structs: the
//! `cyclonedx-bom` crate (0.8) writes at most spec 1.5.

use super::{Component, Inventory, Subject, spdx_term};
use serde::Serialize;
use serde_json::{Value, json};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Bom {
    #[serde(rename = "$schema")]
    schema: &'static str,
    bom_format: &'static str,
    spec_version: &'static str,
    serial_number: String,
    version: u32,
    metadata: Value,
    components: Vec<Value>,
}

/// A UUID (RFC 9562 layout, version 5, variant 10) made of `hex`, so one image gives
/// one serial number.
fn uuid(hex: &str) -> String {
    let h: Vec<char> = hex.chars().take(32).collect();
    let s: String = h.iter().collect();
    let variant = ['8', '9', 'a', 'b'][h[16].to_digit(16).unwrap_or(0) as usize % 4];
    format!(
        "{}-{}-5{}-{}{}-{}",
        &s[0..8],
        &s[8..12],
        &s[13..16],
        variant,
        &s[17..20],
        &s[20..32]
    )
}

/// The licences of `c` as CycloneDX lists them.
fn licences(c: &Component) -> Vec<Value> {
    let terms: Vec<(String, &String)> = c.licences.iter().map(|l| (spdx_term(l), l)).collect();
    if let [(t, _)] = terms.as_slice()
        && t.contains(' ')
    {
        return vec![json!({"expression": t})];
    }
    terms
        .into_iter()
        .map(|(t, l)| {
            if t.starts_with("LicenseRef-") || t.contains(' ') {
                json!({"license": {"name": l}})
            } else {
                json!({"license": {"id": t}})
            }
        })
        .collect()
}

/// `inv` as a CycloneDX 1.6 JSON BOM about `subject`.
pub fn render(inv: &Inventory, subject: &Subject) -> Vec<u8> {
    let components = inv
        .components
        .iter()
        .map(|c| {
            let key = format!("{}\0{}", c.purl, c.location);
            let mut v = json!({
                "bom-ref": format!("{}?package-id={}", c.purl, &crate::digest::Digest::of(key.as_bytes()).hex()[..16]),
                "type": "library",
                "name": c.name,
                "version": c.version,
                "purl": c.purl,
                "properties": [{"name": "ocislim:location", "value": c.location}],
            });
            let l = licences(c);
            if !l.is_empty() {
                v["licenses"] = Value::Array(l);
            }
            v
        })
        .collect();
    let bom = Bom {
        schema: "http://cyclonedx.org/schema/bom-1.6.schema.json",
        bom_format: "CycloneDX",
        spec_version: "1.6",
        serial_number: format!("urn:uuid:{}", uuid(subject.digest.hex())),
        version: 1,
        metadata: json!({
            "timestamp": subject.created,
            "tools": {"components": [{
                "type": "application",
                "name": "ocislim",
                "version": env!("CARGO_PKG_VERSION"),
            }]},
            "component": {
                "bom-ref": subject.digest.to_string(),
                "type": "container",
                "name": subject.name,
                "version": subject.digest.to_string(),
            },
        }),
        components,
    };
    serde_json::to_vec_pretty(&bom).expect("CycloneDX BOMs serialise")
}

#[cfg(test)]
mod tests {
    #[test]
    fn serial_numbers_match_the_schema_pattern() {
        let u = super::uuid("0123456789abcdef0123456789abcdef0123");
        assert_eq!(u, "01234567-89ab-5def-8123-456789abcdef");
    }
}
