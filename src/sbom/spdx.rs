//! SPDX 2.3 JSON (<https://spdx.github.io/spdx-spec/v2.3/>): the document describes the
//! image (a package of purpose `CONTAINER`), which `CONTAINS` each package; each has
//! its purl as a `PACKAGE-MANAGER` external reference and its declared licence as an
//! SPDX expression, a name no SPDX id matches as a `LicenseRef-` with its text in
//! `hasExtractedLicensingInfos` (spec 10.1). Written with serde structs: the `spdx-rs`
//! crate is unmaintained since 2022 and reads SPDX 2.2.

use super::{Component, Inventory, Subject, licence_ref, spdx_term};
use serde::Serialize;
use std::collections::BTreeMap;

/// The document's root package: the image.
const ROOT: &str = "SPDXRef-DocumentRoot-Image";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Document {
    spdx_version: &'static str,
    data_license: &'static str,
    #[serde(rename = "SPDXID")]
    spdx_id: &'static str,
    name: String,
    document_namespace: String,
    creation_info: CreationInfo,
    packages: Vec<Package>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    has_extracted_licensing_infos: Vec<Extracted>,
    relationships: Vec<Relationship>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CreationInfo {
    created: String,
    creators: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Package {
    name: String,
    #[serde(rename = "SPDXID")]
    spdx_id: String,
    version_info: String,
    download_location: &'static str,
    files_analyzed: bool,
    license_concluded: &'static str,
    license_declared: String,
    copyright_text: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    source_info: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    primary_package_purpose: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    external_refs: Vec<ExternalRef>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ExternalRef {
    reference_category: &'static str,
    reference_type: &'static str,
    reference_locator: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Extracted {
    license_id: String,
    extracted_text: String,
    name: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Relationship {
    spdx_element_id: String,
    relationship_type: &'static str,
    related_spdx_element: String,
}

/// `SPDXRef-` ids allow letters, digits, `.` and `-` (spec 7.2).
fn id_part(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// A package's id: its ecosystem and name, and a digest of what makes it one (two
/// copies of a name at two versions or places are two packages).
fn package_id(c: &Component) -> String {
    let key = format!(
        "{}\0{}\0{}\0{}",
        c.ecosystem.name(),
        c.name,
        c.version,
        c.location
    );
    let d = crate::digest::Digest::of(key.as_bytes());
    format!(
        "SPDXRef-Package-{}-{}-{}",
        c.ecosystem.name(),
        id_part(&c.name),
        &d.hex()[..16]
    )
}

/// `inv` as an SPDX 2.3 JSON document about `subject`.
pub fn render(inv: &Inventory, subject: &Subject) -> Vec<u8> {
    let mut extracted = BTreeMap::new();
    let mut packages = vec![Package {
        name: subject.name.clone(),
        spdx_id: ROOT.to_string(),
        version_info: subject.digest.to_string(),
        download_location: "NOASSERTION",
        files_analyzed: false,
        license_concluded: "NOASSERTION",
        license_declared: "NOASSERTION".to_string(),
        copyright_text: "NOASSERTION",
        source_info: None,
        primary_package_purpose: Some("CONTAINER"),
        external_refs: Vec::new(),
    }];
    let mut relationships = vec![Relationship {
        spdx_element_id: "SPDXRef-DOCUMENT".into(),
        relationship_type: "DESCRIBES",
        related_spdx_element: ROOT.into(),
    }];
    for c in &inv.components {
        let id = package_id(c);
        for l in &c.licences {
            if spdx_term(l).starts_with("LicenseRef-") {
                extracted.entry(licence_ref(l)).or_insert_with(|| l.clone());
            }
        }
        packages.push(Package {
            name: c.name.clone(),
            spdx_id: id.clone(),
            version_info: c.version.clone(),
            download_location: "NOASSERTION",
            files_analyzed: false,
            license_concluded: "NOASSERTION",
            license_declared: super::spdx_expression(&c.licences)
                .unwrap_or_else(|| "NOASSERTION".into()),
            copyright_text: "NOASSERTION",
            source_info: Some(format!("acquired package info from {}", c.location)),
            primary_package_purpose: Some("LIBRARY"),
            external_refs: vec![ExternalRef {
                reference_category: "PACKAGE-MANAGER",
                reference_type: "purl",
                reference_locator: c.purl.clone(),
            }],
        });
        relationships.push(Relationship {
            spdx_element_id: ROOT.into(),
            relationship_type: "CONTAINS",
            related_spdx_element: id,
        });
    }
    let doc = Document {
        spdx_version: "SPDX-2.3",
        data_license: "CC0-1.0",
        spdx_id: "SPDXRef-DOCUMENT",
        name: subject.name.clone(),
        document_namespace: format!(
            "https://spdx.org/spdxdocs/ocislim-{}-{}",
            id_part(&subject.name),
            subject.digest.hex()
        ),
        creation_info: CreationInfo {
            created: subject.created.clone(),
            creators: vec![format!("Tool: ocislim-{}", env!("CARGO_PKG_VERSION"))],
        },
        packages,
        has_extracted_licensing_infos: extracted
            .into_iter()
            .map(|(id, text)| Extracted {
                license_id: id,
                name: text.clone(),
                extracted_text: text,
            })
            .collect(),
        relationships,
    };
    serde_json::to_vec_pretty(&doc).expect("SPDX documents serialise")
}
