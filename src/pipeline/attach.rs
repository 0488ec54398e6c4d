//! What `squash --sbom` writes beside the output and attaches to it: the SBOM of the
//! output ([`crate::sbom`]) and the record of the slim (where the image came from, by
//! which policy, what went), both as referrers of the output where the sink holds them
//! ([`crate::image::writer::Attachment`]).

use crate::digest::Digest;
use crate::error::Result;
use crate::image::Image;
use crate::image::writer::{Dest, OutImage};
use crate::pipeline::emit::Sizes;
use crate::pipeline::squash::{SquashOptions, SquashReport};

/// The SBOM of the output (returned, for the `--sbom` file), counted in the report;
/// unless `--no-attach`, it and the record of the slim are attached to `out`.
pub(crate) fn documents(
    opts: &SquashOptions,
    image: &Image,
    inv: &crate::sbom::Inventory,
    (out, report): (&mut OutImage, &mut SquashReport),
) -> Result<Vec<u8>> {
    let bytes = sbom_bytes(opts, out, inv, report)?;
    if opts.attach {
        out.attached = attachments(opts, (image, out), report, &bytes)?;
    }
    Ok(bytes)
}

/// The output's SBOM: `inv` about the output image (named by its first tag, else its
/// destination; its config digest; its config's `created`), counted in the report.
fn sbom_bytes(
    opts: &SquashOptions,
    out: &OutImage,
    inv: &crate::sbom::Inventory,
    report: &mut SquashReport,
) -> Result<Vec<u8>> {
    let config: serde_json::Value =
        serde_json::from_slice(&out.config).map_err(std::io::Error::other)?;
    let subject = crate::sbom::Subject {
        name: out
            .tags
            .iter()
            .chain(&out.ref_names)
            .next()
            .cloned()
            .unwrap_or_else(|| match &opts.output.dest {
                Dest::Path(p) | Dest::Node(p) => p.display().to_string(),
                Dest::Registry(r, _) => r.clone(),
                Dest::Stdout | Dest::Daemon => "image".to_string(),
            }),
        digest: report.config_digest.clone(),
        created: crate::sbom::created(&config),
    };
    report.sbom = Some(
        inv.counts()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    );
    report
        .warnings
        .extend(inv.warnings.iter().map(|w| format!("sbom: {w}")));
    let (_, format) = opts.sbom.as_ref().expect("an inventory only when asked");
    Ok(crate::sbom::render(inv, *format, &subject))
}

/// The media type of the record of a slim (a referrer of the output, beside its SBOM).
pub const RECORD_MEDIA_TYPE: &str = "application/vnd.ocislim.slim-record.v1+json";

/// What the record of a slim says: where the image came from, by which policy (its
/// digest and text), what went (packages, files and bytes per rule), and the sizes.
#[derive(serde::Serialize)]
struct Record<'a> {
    tool: String,
    input: serde_json::Value,
    policy: serde_json::Value,
    packages_removed: Vec<&'a str>,
    packages_purged: Vec<&'a str>,
    rules: Vec<serde_json::Value>,
    before: &'a Sizes,
    after: &'a Sizes,
    output_config_digest: &'a Digest,
}

/// The documents attached to the output as its referrers: the SBOM and the record of
/// the slim, each dated by the output's `created`. (The input's own referrers and
/// attestations are never carried over: they describe another image.)
fn attachments(
    opts: &SquashOptions,
    (image, out): (&Image, &OutImage),
    report: &SquashReport,
    sbom: &[u8],
) -> Result<Vec<crate::image::writer::Attachment>> {
    let (_, format) = opts.sbom.as_ref().expect("attached only with --sbom");
    let policy_text: String = opts
        .policy
        .sources
        .iter()
        .map(|(name, text)| format!("# {name}\n{text}\n"))
        .collect();
    let removed = report.packages.iter().flat_map(|p| {
        p.removed
            .iter()
            .chain(&p.removed_unneeded)
            .chain(&p.autoremoved)
            .map(String::as_str)
    });
    let record = Record {
        tool: format!("ocislim {}", env!("CARGO_PKG_VERSION")),
        input: serde_json::json!({
            "source": opts.source.display(),
            "config_digest": image.config_digest().as_str(),
        }),
        policy: serde_json::json!({
            "names": opts.policy.names,
            "digest": Digest::of(policy_text.as_bytes()).as_str(),
            "sources": opts.policy.sources.iter().map(|(n, t)| serde_json::json!({"name": n, "text": t})).collect::<Vec<_>>(),
        }),
        packages_removed: removed.collect(),
        packages_purged: report
            .database
            .iter()
            .flat_map(|d| d.purged.iter().map(String::as_str))
            .collect(),
        rules: report
            .policy
            .rules
            .iter()
            .map(|r| serde_json::json!({"id": r.id, "files": r.files, "reclaimed_bytes": r.reclaimed_bytes, "hidden_bytes": r.hidden_bytes}))
            .collect(),
        before: &report.before,
        after: &report.after,
        output_config_digest: &report.config_digest,
    };
    let mut record_bytes = serde_json::to_vec_pretty(&record).map_err(std::io::Error::other)?;
    record_bytes.push(b'\n');
    let config: serde_json::Value =
        serde_json::from_slice(&out.config).map_err(std::io::Error::other)?;
    let created =
        serde_json::json!({"org.opencontainers.image.created": crate::sbom::created(&config)});
    Ok(vec![
        crate::image::writer::Attachment {
            media_type: format.media_type().to_string(),
            bytes: sbom.to_vec(),
            annotations: created.clone(),
        },
        crate::image::writer::Attachment {
            media_type: RECORD_MEDIA_TYPE.to_string(),
            bytes: record_bytes,
            annotations: created,
        },
    ])
}
