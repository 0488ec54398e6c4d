//! Turns reports into text for people, or JSON for machines. The only place that
//! formats; untrusted strings from images are escaped before they reach a terminal.

use crate::command::bench::BenchReport;
use crate::command::convert::ConvertReport;
use crate::command::inspect::InspectReport;
use crate::layer::path::escape;
use crate::pipeline::squash::SquashReport;
use serde_json::Value;
use std::fmt::Write as _;

/// `1536` -> `1.5 KiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn clean(s: &str) -> String {
    escape(s.as_bytes())
}

/// Any serialisable report as pretty JSON.
pub fn json<T: serde::Serialize>(report: &T) -> String {
    serde_json::to_string_pretty(report).expect("reports serialise") + "\n"
}

fn show_value(v: &Value) -> String {
    match v {
        Value::String(s) => clean(s),
        other => clean(&other.to_string()),
    }
}

/// `inspect` for people.
pub fn inspect_text(r: &InspectReport) -> String {
    let mut o = String::new();
    inspect_image(&mut o, r);
    inspect_layers(&mut o, r);
    inspect_waste(&mut o, r);
    for w in &r.warnings {
        let _ = writeln!(o, "warning: {}", clean(w));
    }
    o
}

/// `inspect`'s first part: the image, its config and history.
fn inspect_image(o: &mut String, r: &InspectReport) {
    let _ = writeln!(o, "source:   {}", clean(&r.source));
    let _ = writeln!(o, "format:   {} ({})", r.format, r.shape);
    let _ = writeln!(o, "platform: {}", clean(&r.platform));
    let _ = writeln!(o, "image id: {}", r.config_digest);
    if !r.tags.is_empty() {
        let _ = writeln!(
            o,
            "tags:     {}",
            r.tags
                .iter()
                .map(|t| clean(t))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if let Some(c) = &r.created {
        let _ = writeln!(o, "created:  {}", clean(c));
    }
    if let Value::Object(cfg) = &r.config {
        let _ = writeln!(o, "config:");
        for (k, v) in cfg.iter().filter(|(_, v)| {
            !matches!(v, Value::Null | Value::Bool(false)) && v.as_str() != Some("")
        }) {
            let _ = writeln!(o, "  {k}: {}", show_value(v));
        }
    }
    let _ = writeln!(o, "history:");
    for h in &r.history {
        let empty = h
            .get("empty_layer")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let by = h.get("created_by").map(show_value).unwrap_or_default();
        let _ = writeln!(o, "  {} {}", if empty { "      " } else { "layer " }, by);
    }
}

/// `inspect`'s table of layers.
fn inspect_layers(o: &mut String, r: &InspectReport) {
    let _ = writeln!(o, "layers:");
    let _ = writeln!(
        o,
        "  {:>3}  {:<19}  {:<45}  {:>10}  {:>10}  {:>7}",
        "#", "digest", "media type", "stored", "tar", "entries"
    );
    for l in &r.layers {
        let _ = writeln!(
            o,
            "  {:>3}  {:<19}  {:<45}  {:>10}  {:>10}  {:>7}",
            l.position,
            &l.digest.as_str()[..19],
            clean(&l.media_type),
            human_bytes(l.compressed_size),
            human_bytes(l.uncompressed_size),
            l.entries
        );
    }
    let stored: u64 = r.layers.iter().map(|l| l.compressed_size).sum();
    let tar: u64 = r.layers.iter().map(|l| l.uncompressed_size).sum();
    let _ = writeln!(
        o,
        "  total {} stored, {} uncompressed, {} layers",
        human_bytes(stored),
        human_bytes(tar),
        r.layers.len()
    );
}

/// `inspect`'s waste analysis: what the merge does not see, the largest files and
/// folders, what each policy would reclaim.
fn inspect_waste(o: &mut String, r: &InspectReport) {
    let a = &r.analysis;
    let _ = writeln!(
        o,
        "efficiency: {:.1}% ({} of {} stored file data is in the merged filesystem; {} wasted)",
        100.0 * a.efficiency,
        human_bytes(a.merged_bytes),
        human_bytes(a.stored_bytes),
        human_bytes(r.wasted_bytes)
    );
    for l in a.layers.iter().filter(|l| l.shadowed_bytes > 0) {
        let _ = writeln!(
            o,
            "  layer {} shadows {} of its {}:",
            l.position,
            human_bytes(l.shadowed_bytes),
            human_bytes(l.stored_bytes)
        );
        for c in &l.culprits {
            let _ = writeln!(
                o,
                "    {:>10}  {:<11}  {}",
                human_bytes(c.bytes),
                c.reason,
                c.path
            );
        }
    }
    let _ = writeln!(o, "largest files:");
    for f in &a.largest_files {
        let _ = writeln!(o, "  {:>10}  {}", human_bytes(f.bytes), f.path);
    }
    let _ = writeln!(o, "largest directories:");
    for d in &a.largest_dirs {
        let _ = writeln!(o, "  {:>10}  {}/", human_bytes(d.bytes), d.path);
    }
    for p in &a.policies {
        let files: u64 = p.rules.iter().map(|r| r.files).sum();
        let bytes: u64 = p.rules.iter().map(|r| r.reclaimed_bytes).sum();
        let _ = writeln!(
            o,
            "policy {} would reclaim {} in {} files:",
            clean(&p.policy),
            human_bytes(bytes),
            files
        );
        rule_rows(o, &p.rules, false);
    }
}

/// `convert` for people.
pub fn convert_text(r: &ConvertReport) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{} -> {}, image id {}",
        r.input_format, r.output_format, r.config_digest
    );
    for l in &r.layers {
        let _ = writeln!(
            o,
            "  layer {:>2}: {} {} -> {} {}{}",
            l.position,
            l.input_compression,
            human_bytes(l.input_size),
            l.output_compression,
            human_bytes(l.output_size),
            if l.copied { " (copied)" } else { "" }
        );
    }
    pushed_line(&mut o, r.pushed.as_ref());
    for w in &r.warnings {
        let _ = writeln!(o, "warning: {}", clean(w));
    }
    o
}

/// What a push did, on one line.
fn pushed_line(o: &mut String, p: Option<&crate::image::remote::Pushed>) {
    if let Some(p) = p {
        let _ = writeln!(
            o,
            "pushed {}@{}: {} blobs uploaded, {} already there, {} mounted",
            clean(&p.reference),
            p.digest,
            p.uploaded,
            p.present,
            p.mounted
        );
    }
}

/// `squash --all-platforms` for people: each platform's squash, then the index.
pub fn all_platforms_text(r: &crate::command::squash::AllPlatformsReport) -> String {
    let mut o = String::new();
    for p in &r.platforms {
        let _ = writeln!(o, "platform {}:", clean(&p.platform));
        o += &squash_text(&p.report);
    }
    if let Some(d) = &r.index_digest {
        let _ = writeln!(
            o,
            "index of {} platforms written as {}: {d}",
            r.platforms.len(),
            r.output_format
        );
    }
    pushed_line(&mut o, r.pushed.as_ref());
    for w in &r.warnings {
        let _ = writeln!(o, "warning: {}", clean(w));
    }
    o
}

/// `squash` for people.
pub fn squash_text(r: &SquashReport) -> String {
    let mut o = String::new();
    squash_layers(&mut o, r);
    squash_policy(&mut o, r);
    if let Some(c) = &r.closure {
        closure_text(&mut o, c);
    }
    if let Some(p) = &r.packages {
        removal_text(&mut o, p);
    }
    if let Some(n) = &r.npm {
        npm_text(&mut o, n);
    }
    if let Some(d) = r.dpkg_excluded.as_ref().filter(|d| !d.packages.is_empty()) {
        let _ = writeln!(
            o,
            "dpkg: {} packages lost {} listed paths; their .list and .md5sums no longer name them{}",
            d.packages.len(),
            d.packages.values().sum::<usize>(),
            if d.rules.is_empty() {
                String::new()
            } else {
                format!("; path-exclude for {}", clean(&d.rules.join(", ")))
            }
        );
    }
    if let Some(d) = &r.database {
        database_text(&mut o, d);
    }
    let shadowed: u64 = r.layers.iter().map(|l| l.shadowed_bytes).sum();
    let _ = writeln!(o, "shadowed by the merge: {}", human_bytes(shadowed));
    let _ = writeln!(
        o,
        "squashed layer: {} ({}, {} entries)",
        &r.squashed_digest.as_str()[..19],
        r.squashed_compression,
        r.squashed_entries
    );
    groups_text(&mut o, r);
    let _ = writeln!(
        o,
        "before: {:>10} stored, {:>10} tar",
        human_bytes(r.before.compressed),
        human_bytes(r.before.uncompressed)
    );
    let _ = writeln!(
        o,
        "after:  {:>10} stored, {:>10} tar{}",
        human_bytes(r.after.compressed),
        human_bytes(r.after.uncompressed),
        if r.dry_run {
            "; dry run, nothing written"
        } else {
            ""
        }
    );
    let stored = match r.saved.stored_percent {
        Some(p) => format!(
            "{p:.1}% of the stored bytes (both {})",
            r.squashed_compression
        ),
        None => format!(
            "stored sizes not compared: the input is not all {} (`ocislim bench` compares them at one codec)",
            r.squashed_compression
        ),
    };
    let _ = writeln!(
        o,
        "saved:  {:.1}% of the tar bytes; {stored}",
        r.saved.tar_percent
    );
    pushed_line(&mut o, r.pushed.as_ref());
    for w in &r.warnings {
        let _ = writeln!(o, "warning: {}", clean(w));
    }
    o
}

/// With `--layer-groups`, a line per group; with `--cache`, what came from it.
fn groups_text(o: &mut String, r: &SquashReport) {
    for (i, g) in r.groups.iter().enumerate() {
        let _ = writeln!(
            o,
            "group {} (layers {}-{}): {} {:>10} stored, {} entries{}",
            i + 1,
            g.layers.0,
            g.layers.1,
            &g.digest.as_str()[..19],
            human_bytes(g.compressed_size),
            g.entries,
            if g.reused { ", from the cache" } else { "" }
        );
    }
    if let Some(c) = r.cache.as_ref().filter(|c| c.result_reused) {
        let _ = writeln!(
            o,
            "cache {}: the same input, options and policy again: the whole result from it, no layer read",
            c.dir
        );
    } else if let Some(c) = &r.cache {
        let _ = writeln!(
            o,
            "cache {}: {} of {} layers read from it, {} squashed layers reused{}{}",
            c.dir,
            c.layers_reused.len(),
            r.layers.len(),
            c.groups_reused.len(),
            if c.dropped.is_empty() {
                String::new()
            } else {
                format!("; {} broken entries dropped and redone", c.dropped.len())
            },
            if c.evicted_bytes == 0 {
                String::new()
            } else {
                format!("; {} of old entries deleted", human_bytes(c.evicted_bytes))
            }
        );
    }
}

/// `squash`'s first lines: formats, kept layers, the image id, and each input layer.
fn squash_layers(o: &mut String, r: &SquashReport) {
    let _ = writeln!(
        o,
        "{} -> {}, {} of {} layers kept, image id {}",
        r.input_format,
        r.output_format,
        r.kept_layers,
        r.layers.len(),
        r.config_digest
    );
    if !r.tags.is_empty() && r.output_format == "docker-archive" {
        let _ = writeln!(o, "tagged {}", clean(&r.tags.join(", ")));
    }
    let _ = writeln!(
        o,
        "  {:>3}  {:<19}  {:>10}  {:>10}  {:>7}  {:>10}  {:>10}",
        "#", "digest", "stored", "tar", "entries", "shadowed", "deleted"
    );
    for l in &r.layers {
        let _ = writeln!(
            o,
            "  {:>3}  {:<19}  {:>10}  {:>10}  {:>7}  {:>10}  {:>10}{}",
            l.position,
            &l.digest.as_str()[..19],
            human_bytes(l.compressed_size),
            human_bytes(l.uncompressed_size),
            l.entries,
            human_bytes(l.shadowed_bytes),
            human_bytes(l.deleted_bytes),
            if l.kept { "  kept" } else { "" }
        );
    }
}

/// What the policy's rules deleted, and the total.
fn squash_policy(o: &mut String, r: &SquashReport) {
    let p = &r.policy;
    let _ = writeln!(o, "policy {}:", clean(&p.policy));
    if !p.rules.is_empty() {
        let _ = writeln!(
            o,
            "  {:<20}  {:>6}  {:>10}  {:>10}  examples",
            "rule", "files", "reclaimed", "hidden"
        );
        rule_rows(o, &p.rules, true);
    }
    let files: u64 = p.rules.iter().map(|r| r.files).sum();
    let reclaimed: u64 = p.rules.iter().map(|r| r.reclaimed_bytes).sum();
    let hidden: u64 = p.rules.iter().map(|r| r.hidden_bytes).sum();
    let _ = writeln!(
        o,
        "  {:<20}  {:>6}  {:>10}  {:>10}",
        "total",
        files,
        human_bytes(reclaimed),
        human_bytes(hidden)
    );
}

/// Closure mode's roots and presets; the JSON report lists every kept path and why.
fn closure_text(o: &mut String, c: &crate::deps::closure::ClosureReport) {
    let _ = writeln!(
        o,
        "closure: {} paths kept from {} roots (--json lists each and why)",
        c.kept_paths,
        c.roots.len()
    );
    for root in &c.roots {
        let _ = writeln!(o, "  {:>6}  {}", root.paths, clean(&root.root));
    }
    if !c.presets.is_empty() {
        let _ = writeln!(o, "  presets: {}", clean(&c.presets.join(", ")));
    }
}

/// Package removal: what went, what stayed because it is needed.
fn removal_text(o: &mut String, p: &crate::packages::remove::RemovalReport) {
    for (what, names) in [
        ("removed", &p.removed),
        ("removed, nothing kept needs them", &p.removed_unneeded),
        ("autoremoved", &p.autoremoved),
        ("left installed, needed", &p.left_needed),
        (
            "kept for files that need them",
            &p.kept_for_files.iter().map(|k| k.to_string()).collect(),
        ),
        ("named no installed package", &p.unmatched),
    ] {
        if !names.is_empty() {
            let _ = writeln!(
                o,
                "packages {what} ({}): {}",
                names.len(),
                clean(&names.join(", "))
            );
        }
    }
}

/// npm pruning: per project, how many packages went and which dev ones stayed.
fn npm_text(o: &mut String, n: &crate::packages::npm::PruneReport) {
    for p in &n.projects {
        let _ = writeln!(
            o,
            "npm {} ({}): {} devDependencies pruned{}",
            clean(&p.path),
            p.lockfile,
            p.pruned.len(),
            if p.kept.is_empty() {
                String::new()
            } else {
                format!("; kept: {}", clean(&p.kept.join("; ")))
            }
        );
    }
}

/// `sbom`: the document itself when it goes to stdout (its warnings apart, for
/// stderr), else a line saying what was written where, and the warnings.
pub fn sbom_text(r: &crate::command::sbom::SbomReport) -> (String, String) {
    let mut warnings = String::new();
    for w in &r.warnings {
        let _ = writeln!(warnings, "warning: {}", clean(w));
    }
    if let Some(d) = &r.document {
        return (String::from_utf8_lossy(d).into_owned(), warnings);
    }
    let counts: Vec<String> = r.packages.iter().map(|(k, n)| format!("{n} {k}")).collect();
    let mut o = warnings;
    let _ = writeln!(
        o,
        "sbom: {} packages ({}) written to {}",
        r.packages.values().sum::<usize>(),
        if counts.is_empty() {
            "none".to_string()
        } else {
            counts.join(", ")
        },
        clean(r.written_to.as_deref().unwrap_or("-"))
    );
    (o, String::new())
}

/// `packages`: one line per package, largest first, then the leaves.
pub fn packages_text(l: &crate::packages::Listing) -> String {
    let mut o = String::new();
    for w in &l.warnings {
        let _ = writeln!(o, "warning: {}", clean(w));
    }
    let _ = writeln!(
        o,
        "{:<32}  {:<24}  {:>10}  {:>6}  {:>7}  required by",
        "package", "version", "bytes", "files", "missing"
    );
    for p in &l.packages {
        let mut by = p
            .required_by
            .iter()
            .take(3)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        if p.required_by.len() > 3 {
            by += &format!(" and {} more", p.required_by.len() - 3);
        }
        if let Some(first) = p.needed_by_files.first() {
            let more = match p.needed_by_files.len() {
                1 => String::new(),
                n => format!(" and {} more", n - 1),
            };
            let sep = if by.is_empty() { "" } else { "; " };
            by = format!("{by}{sep}needed by files: {first}{more}");
        }
        if p.essential {
            by = format!("(essential) {by}");
        }
        let name = if p.state == "installed" {
            clean(&p.name)
        } else {
            format!("{} ({})", clean(&p.name), clean(&p.state))
        };
        let _ = writeln!(
            o,
            "{name:<32}  {:<24}  {:>10}  {:>6}  {:>7}  {}",
            clean(&p.version),
            human_bytes(p.bytes),
            p.files,
            p.missing,
            if by.is_empty() {
                "-".to_string()
            } else {
                clean(&by)
            }
        );
    }
    let _ = writeln!(
        o,
        "{} packages ({:?}), {} in their files; {} nothing installed depends on: {}",
        l.packages.len(),
        l.manager,
        human_bytes(l.owned_bytes),
        l.leaves.len(),
        clean(&l.leaves.join(", "))
    );
    o
}

/// How `bench` prints its table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TableFormat {
    /// Aligned columns for a terminal.
    Table,
    /// A Markdown table, for a README or a pull request.
    Markdown,
    /// JSON.
    Json,
    /// CSV with raw byte counts.
    Csv,
}

/// Stored sizes are both at the output's codec ("stored before" re-encodes input layers
/// stored with another), so the two percentages compare like with like.
const BENCH_HEADER: [&str; 11] = [
    "image",
    "policy",
    "tar before",
    "tar after",
    "tar saved",
    "codec",
    "stored before",
    "stored after",
    "stored saved",
    "files removed",
    "seconds",
];

/// `bench` in the chosen format.
pub fn bench(r: &BenchReport, format: TableFormat) -> String {
    let mut o = String::new();
    let mut header: Vec<&str> = BENCH_HEADER.to_vec();
    if r.rows.first().is_some_and(|x| x.check.is_some()) {
        header.push("check");
    }
    if r.rows.first().is_some_and(|x| x.smoke.is_some()) {
        header.push("smoke");
    }
    let header = &header[..];
    match format {
        TableFormat::Json => return json(r),
        TableFormat::Csv => bench_csv(&mut o, header, bench_cells(r, false)),
        TableFormat::Markdown => {
            let _ = writeln!(o, "| {} |", header.join(" | "));
            let _ = writeln!(o, "|{}", "---|".repeat(header.len()));
            for row in bench_cells(r, true) {
                let _ = writeln!(o, "| {} |", row.join(" | "));
            }
        }
        TableFormat::Table => bench_table(&mut o, header, bench_cells(r, true)),
    }
    o
}

/// `bench`'s cells, one row a line of the report; sizes and percentages for people,
/// or raw numbers (bytes, percent without its sign) for CSV.
fn bench_cells(r: &BenchReport, human: bool) -> Vec<Vec<String>> {
    let b = |n: u64| if human { human_bytes(n) } else { n.to_string() };
    let pct = |p: f64| {
        if human {
            format!("{p:.1}%")
        } else {
            format!("{p:.1}")
        }
    };
    r.rows
        .iter()
        .map(|x| {
            vec![
                clean(&x.image),
                clean(&x.policy),
                b(x.before.uncompressed),
                b(x.after.uncompressed),
                pct(x.tar_saved_percent),
                x.codec.clone(),
                b(x.before_at_output_codec),
                b(x.after.compressed),
                pct(x.stored_saved_percent),
                x.files_removed.to_string(),
                format!("{:.2}", x.seconds),
            ]
            .into_iter()
            .chain(x.check.clone())
            .chain(x.smoke.clone())
            .collect()
        })
        .collect()
}

/// `bench` as CSV: the header's spaces as underscores, cells quoted where needed.
fn bench_csv(o: &mut String, header: &[&str], rows: Vec<Vec<String>>) {
    let quote = |c: &str| {
        if c.contains([',', '"', '\n']) {
            format!("\"{}\"", c.replace('"', "\"\""))
        } else {
            c.to_string()
        }
    };
    let _ = writeln!(
        o,
        "{}",
        header
            .iter()
            .map(|h| h.replace(' ', "_").replace("_saved", "_saved_percent"))
            .collect::<Vec<_>>()
            .join(",")
    );
    for row in rows {
        let _ = writeln!(
            o,
            "{}",
            row.iter().map(|c| quote(c)).collect::<Vec<_>>().join(",")
        );
    }
}

/// `bench` as aligned columns, the image and policy left, the numbers right.
fn bench_table(o: &mut String, header: &[&str], rows: Vec<Vec<String>>) {
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |row: &[String]| {
        row.iter()
            .enumerate()
            .map(|(i, c)| {
                if i < 2 {
                    format!("{c:<w$}", w = widths[i])
                } else {
                    format!("{c:>w$}", w = widths[i])
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
    };
    let _ = writeln!(
        o,
        "{}",
        line(&header.iter().map(|h| h.to_string()).collect::<Vec<_>>()).trim_end()
    );
    for row in rows {
        let _ = writeln!(o, "{}", line(&row).trim_end());
    }
}

/// One row per rule that deleted something: files, reclaimed bytes, (with `hidden`)
/// bytes hidden in kept base layers, and examples.
fn rule_rows(o: &mut String, rules: &[crate::policy::RuleOutcome], hidden: bool) {
    for rule in rules.iter().filter(|r| r.files > 0) {
        let hidden = if hidden {
            format!("  {:>10}", human_bytes(rule.hidden_bytes))
        } else {
            String::new()
        };
        let _ = writeln!(
            o,
            "  {:<20}  {:>6}  {:>10}{hidden}  {}",
            clean(&rule.id),
            rule.files,
            human_bytes(rule.reclaimed_bytes),
            rule.examples.join(", ")
        );
    }
}

/// Package groups `diff` prints; the rest are counted in one line (`--json` has all).
const DIFF_PACKAGES_SHOWN: usize = 20;

/// `diff` for people: totals, the groups, then (unless `paths` is false) each change, a
/// folder added or removed whole on one line standing for its subtree.
pub fn diff_text(r: &crate::command::diff::DiffReport, paths: bool) -> String {
    let mut o = String::new();
    for w in &r.warnings {
        let _ = writeln!(o, "warning: {}", clean(w));
    }
    let _ = writeln!(o, "--- {}\n+++ {}", clean(&r.a), clean(&r.b));
    if paths {
        diff_paths(&mut o, &r.changes);
    }
    let t = &r.total;
    let _ = writeln!(
        o,
        "{} removed, {} added, {} changed; file bytes {} -> {}",
        t.removed,
        t.added,
        t.changed,
        human_bytes(t.bytes_before),
        human_bytes(t.bytes_after)
    );
    let groups = [
        ("by top folder", &r.by_folder[..]),
        ("by package", &r.by_package[..]),
        ("by rule", &r.by_rule[..]),
    ];
    for (title, groups) in groups.into_iter().filter(|(_, g)| !g.is_empty()) {
        let _ = writeln!(o, "{title}:");
        let shown = if title == "by package" {
            DIFF_PACKAGES_SHOWN
        } else {
            usize::MAX
        };
        for g in groups.iter().take(shown) {
            let _ = writeln!(
                o,
                "  {:<32} {:>7} removed {:>5} added {:>5} changed  {:>10} -> {:>10}",
                clean(&g.name),
                g.removed,
                g.added,
                g.changed,
                human_bytes(g.bytes_before),
                human_bytes(g.bytes_after)
            );
        }
        if groups.len() > shown {
            let _ = writeln!(o, "  and {} more", groups.len() - shown);
        }
    }
    o
}

/// Each change on a line: `- PATH`, `+ PATH`, `~ PATH  what changed`; a whole folder
/// added or removed is one line with its paths and bytes counted.
fn diff_paths(o: &mut String, changes: &[crate::command::diff::Changed]) {
    use crate::diff::How;
    let mut i = 0;
    while i < changes.len() {
        let c = &changes[i];
        let rule = c
            .rule
            .as_deref()
            .map(|r| format!("  [{}]", clean(r)))
            .unwrap_or_default();
        let d = &c.change;
        let facts = d.before.as_ref().or(d.after.as_ref());
        let is_dir = facts.is_some_and(|f| f.kind == "dir");
        if d.change == How::Changed {
            let _ = writeln!(o, "~ {}  {}{rule}", d.path, changed_fields(d));
            i += 1;
            continue;
        }
        let sign = if d.change == How::Added { '+' } else { '-' };
        // Its subtree follows it in path order, changed the same way.
        let prefix = format!("{}/", d.path);
        let below = changes[i + 1..]
            .iter()
            .take_while(|x| {
                is_dir && x.change.change == d.change && x.change.path.starts_with(&prefix)
            })
            .count();
        let bytes: u64 = changes[i..=i + below]
            .iter()
            .filter_map(|x| x.change.before.as_ref().or(x.change.after.as_ref()))
            .map(|f| f.size)
            .sum();
        let what = match (is_dir, facts) {
            (true, _) if below > 0 => format!("/  ({} paths, {})", below + 1, human_bytes(bytes)),
            (true, _) => "/".to_string(),
            (false, Some(f)) if f.kind == "symlink" => {
                format!(" -> {}", f.link.as_deref().unwrap_or(""))
            }
            (false, Some(f)) if f.kind == "file" => format!("  ({})", human_bytes(f.size)),
            _ => String::new(),
        };
        let _ = writeln!(o, "{sign} {}{what}{rule}", d.path);
        i += below + 1;
    }
}

/// What changed at a path both images hold: `size 10 B -> 8 B, mode 0644 -> 0600`.
fn changed_fields(d: &crate::diff::Change) -> String {
    let (Some(a), Some(b)) = (&d.before, &d.after) else {
        return String::new();
    };
    d.fields
        .iter()
        .map(|&f| match f {
            "type" => format!("type {} -> {}", a.kind, b.kind),
            "size" => format!("size {} -> {}", human_bytes(a.size), human_bytes(b.size)),
            "mode" => format!("mode {} -> {}", a.mode, b.mode),
            "owner" => format!("owner {}:{} -> {}:{}", a.uid, a.gid, b.uid, b.gid),
            "link" => format!(
                "link {} -> {}",
                a.link.as_deref().unwrap_or(""),
                b.link.as_deref().unwrap_or("")
            ),
            other => other.to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `check` for people: one line per broken reference, then a summary.
pub fn check_text(r: &crate::command::check::CheckReport) -> String {
    let mut o = String::new();
    for w in &r.warnings {
        let _ = writeln!(o, "warning: {w}");
    }
    for l in &r.analysis.loads {
        let _ = writeln!(o, "{}:", l.path);
        for (name, found) in &l.libs {
            let _ = writeln!(o, "\t{name} => {}", found.as_deref().unwrap_or("not found"));
        }
    }
    for b in &r.analysis.broken {
        let _ = writeln!(o, "{} needs {}: {}", b.who, b.needs, b.why);
    }
    for (what, list) in [
        ("ignored", &r.ignored),
        ("broken in the baseline too", &r.broken_in_baseline),
    ] {
        for b in list {
            let _ = writeln!(o, "{what}: {} needs {}: {}", b.who, b.needs, b.why);
        }
    }
    let _ = writeln!(
        o,
        "{} ELF files and {} scripts checked, {} broken references{}{}",
        r.analysis.elf_files,
        r.analysis.scripts,
        r.analysis.broken.len(),
        match r.ignored.len() {
            0 => String::new(),
            n => format!(", {n} ignored"),
        },
        match r.broken_in_baseline.len() {
            0 => String::new(),
            n => format!(", {n} broken in the baseline too"),
        }
    );
    o
}

/// The database settled after the policy, when it changed anything.
fn database_text(o: &mut String, d: &crate::packages::settle::SettleReport) {
    if !d.purged.is_empty() {
        let _ = writeln!(
            o,
            "database: {} packages left with no file outside docs, purged: {}",
            d.purged.len(),
            clean(&d.purged.join(", "))
        );
    }
    if !d.listed_for_dependents.is_empty() {
        let _ = writeln!(
            o,
            "database: {} emptied packages stay listed, needed by packages that stay: {}",
            d.listed_for_dependents.len(),
            clean(&d.listed_for_dependents.join(", "))
        );
    }
    if d.licences_kept > 0 {
        let _ = writeln!(
            o,
            "database: kept {} licence files of packages that stay",
            d.licences_kept
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_bytes_table() {
        for (n, s) in [
            (0, "0 B"),
            (1023, "1023 B"),
            (1536, "1.5 KiB"),
            (5 << 30, "5.0 GiB"),
        ] {
            assert_eq!(human_bytes(n), s);
        }
    }
}
