//! `ocislim squash`: merge layers as a runtime would and write one layer (or keep a
//! base and squash the rest) that yields exactly the same filesystem.
//!
//! ```text
//! pass 1 (parallel, one layer per thread, biggest first):
//!   blob ─► verify ─► entry index; compressed layers decompressed once to a spool,
//!   plain ones read in place later                      (kept base: raw blob copied too)
//! merge:  Tree::apply layer by layer  ─► base tree (first N) and final tree
//! plan:   overlay::plan ─► raw copies, promoted aliases, relinks, whiteouts
//! emit:   layer::writer::emit ─► Meter (diff_id) ─► Encoder (parallel chunks) ─► blob
//! config: rootfs.diff_ids, history folded; manifest, index; atomic rename
//! ```

use crate::cache::Cache;
use crate::deps::closure::ClosureReport;
use crate::deps::guard::GuardReport;
use crate::digest::{Digest, Meter};
use crate::error::{Error, Result};
use crate::image::config::{self, SquashNote};
use crate::image::reader::{self, OpenOptions, SourceSpec};
use crate::image::writer::{Dest, OutImage, OutLayer, OutputOptions, SideFile, Staging};
use crate::image::{Format, Image, media};
use crate::layer::codec::{Compression, EncodeOptions};
use crate::layer::index::{EntryRec, IndexMode};
use crate::layer::overlay::{self};
use crate::layer::reader::LayerScan;
use crate::layer::writer::{EmitStats, Spool};
use crate::pipeline::attach;
use crate::pipeline::emit::{LayerOut, Sizes, Written, squashed_codec, write_layer};
use crate::pipeline::format::{default_format, media_family};
use crate::pipeline::groups::{self, GroupSpec};
use crate::pipeline::merge::{merge_scanned, merge_scanned_at, scan_layers};
use crate::pipeline::reuse::{self, CacheOptions, CacheOutcome};
use crate::pipeline::slim::Slimmed;
use crate::policy::{PolicyOutcome, PolicySet};
use std::path::Path;

/// Which layers stay as they are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Keep {
    /// Squash everything into one layer.
    Nothing,
    /// Keep the bottom N layers (`--keep-layers N`).
    Layers(usize),
    /// Keep the layers shared, by diff_id and in order, with this image (`--base`).
    Base(SourceSpec),
}

/// What `squash` is asked to do.
#[derive(Clone, Debug)]
pub struct SquashOptions {
    /// The source.
    pub source: SourceSpec,
    /// Platform choice.
    pub open: OpenOptions,
    /// Where and how to write the result.
    pub output: OutputOptions,
    /// What to keep.
    pub keep: Keep,
    /// Write the squashed layers as groups, each one output layer (`--layer-groups`;
    /// `--base` then only says where the base ends).
    pub groups: Option<GroupSpec>,
    /// Clamp mtimes and set `created` (`--timestamp`, `SOURCE_DATE_EPOCH`).
    pub timestamp: Option<u64>,
    /// Keep and reuse decompressed layers and squashed layers here (`--cache`).
    pub cache: Option<CacheOptions>,
    /// What to delete.
    pub policy: PolicySet,
    /// Compute everything, write nothing (but the report file).
    pub dry_run: bool,
    /// Also write the JSON report here (`--report`), checked before the image is read
    /// and moved into place with the image.
    pub report_file: Option<std::path::PathBuf>,
    /// Also write the output's SBOM here, in this format (`--sbom`), checked and
    /// committed as the report is.
    pub sbom: Option<(std::path::PathBuf, crate::sbom::SbomFormat)>,
    /// With `sbom`, also attach the SBOM and the record of the slim to the output as
    /// its referrers, where the sink can hold them (`--no-attach` turns it off).
    pub attach: bool,
    /// Write the image even when the policy breaks references the input satisfied
    /// (they are listed as warnings).
    pub allow_broken: bool,
    /// Run the dependency check (`--no-check` turns it off).
    pub check: bool,
    /// Worker threads.
    pub jobs: usize,
    /// Progress bars.
    pub progress: crate::progress::Progress,
}

/// One input layer in the report.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct LayerOutcome {
    /// Position from 1.
    pub position: usize,
    /// Blob digest.
    pub digest: Digest,
    /// Stored size.
    pub compressed_size: u64,
    /// Plain tar size.
    pub uncompressed_size: u64,
    /// Entries in the layer.
    pub entries: u64,
    /// Kept as is (a base layer).
    pub kept: bool,
    /// File data in this layer that later layers shadowed (deleted, replaced), dropped.
    pub shadowed_bytes: u64,
    /// File data in this layer the policy deleted.
    pub deleted_bytes: u64,
}

/// What `squash` did.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct SquashReport {
    /// Input format.
    pub input_format: String,
    /// Output format.
    pub output_format: String,
    /// Layers kept below the squashed one.
    pub kept_layers: usize,
    /// Per input layer.
    pub layers: Vec<LayerOutcome>,
    /// The squashed layer's digest.
    pub squashed_digest: Digest,
    /// Its diff_id.
    pub squashed_diff_id: Digest,
    /// Its codec.
    pub squashed_compression: String,
    /// Entries in it.
    pub squashed_entries: u64,
    /// With `--layer-groups`, each group's output layer, bottom first (the squashed
    /// fields above are the top one's).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub groups: Vec<GroupOutcome>,
    /// Sizes before: sum of stored blobs, sum of plain tars.
    pub before: Sizes,
    /// Sizes after.
    pub after: Sizes,
    /// What the squash saved, like with like.
    pub saved: Saved,
    /// The output config digest (image ID).
    pub config_digest: Digest,
    /// The names the output goes by (a docker archive with no `--tag`: the input's
    /// with `-slim` appended to each tag).
    pub tags: Vec<String>,
    /// What the policy deleted.
    pub policy: PolicyOutcome,
    /// Whether nothing was written.
    pub dry_run: bool,
    /// Warnings.
    pub warnings: Vec<String>,
    /// What the dependency check found: references the policy broke (only with
    /// `--allow-broken`: otherwise they are an error) and references broken in the
    /// input already. Absent when the policy deleted nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<GuardReport>,
    /// What closure mode kept and why, when the policy asks for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closure: Option<ClosureReport>,
    /// The packages removed, when the policy removes any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packages: Option<crate::packages::remove::RemovalReport>,
    /// npm's devDependencies pruned, when the policy prunes them.
    pub npm: Option<crate::packages::npm::PruneReport>,
    /// dpkg's database kept truthful after rules deleted packages' files.
    pub dpkg_excluded: Option<crate::packages::excluded::ExcludeReport>,
    /// The package database settled after the policy: packages it emptied purged,
    /// licences and configuration files of those that stay kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<crate::packages::settle::SettleReport>,
    /// Python's metadata after the deletions: RECORDs rewritten to the files left,
    /// emptied distributions' dist-info deleted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub python: Option<crate::packages::python::PythonReport>,
    /// Every file the policy rewrote or wrote (package databases, dpkg filters).
    pub rewritten: Vec<String>,
    /// The packages the output's SBOM lists, by ecosystem, when `--sbom` asked for one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sbom: Option<std::collections::BTreeMap<String, usize>>,
    /// For a registry destination, what the push did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pushed: Option<crate::image::remote::Pushed>,
    /// With `--cache`, what came from it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheOutcome>,
}

/// One layer group's output layer.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct GroupOutcome {
    /// Its input layers, from 1: first and last.
    pub layers: (usize, usize),
    /// The blob's digest.
    pub digest: Digest,
    /// Its diff_id.
    pub diff_id: Digest,
    /// Stored size.
    pub compressed_size: u64,
    /// Plain tar size.
    pub uncompressed_size: u64,
    /// Entries in it.
    pub entries: u64,
    /// Whether its blob came from the cache (`--cache`).
    pub reused: bool,
}

/// What a squash saved, each figure comparing like with like.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
pub struct Saved {
    /// Percent of the plain tar bytes (what unpacks).
    pub tar_percent: f64,
    /// Percent of the stored bytes, when every input layer is stored with the output's
    /// codec; `None` otherwise (a `docker save` input is stored plain: gzip output
    /// against it would credit the codec; `bench` compares at one codec).
    pub stored_percent: Option<f64>,
}

impl Saved {
    fn of(before: Sizes, after: Sizes, like_stored: bool) -> Saved {
        let pct = |a: u64, b: u64| 100.0 * (1.0 - a as f64 / b.max(1) as f64);
        Saved {
            tar_percent: pct(after.uncompressed, before.uncompressed),
            stored_percent: like_stored.then(|| pct(after.compressed, before.compressed)),
        }
    }
}

/// A layer's scan, and its blob as copied when it is kept.
type ScanAndBlob = (LayerScan, Option<(Digest, u64)>);

/// Runs `squash`: the source read and merged, slimmed by the policy, the squashed layer
/// emitted, then the config, manifest and report, committed together.
pub fn squash(opts: &SquashOptions) -> Result<SquashReport> {
    let (mut report_file, sbom_file, cache) = before_reading(opts)?;
    let source = reader::open(&opts.source, &opts.open)?;
    let image = &source.image;
    let mut warnings = image.warnings.clone();
    let (keep, ends) = cuts(opts, image, &mut warnings)?;
    let (format, mut staging) = stage_output(opts, &source)?;
    let result_key = result_key(opts, cache.as_ref(), (image, keep, &ends), format);
    if let Some(r) = whole_from_cache(result_key.as_ref(), &mut staging, &mut report_file)? {
        return Ok(r);
    }
    let mut scanned = scan_layers(
        &source,
        (keep, IndexMode::Entries),
        (staging.as_ref(), cache.as_ref()),
        opts.jobs,
        &opts.progress,
    )?;
    let from_cache: Vec<bool> = scanned.iter().map(|s| s.cached).collect();
    let (base, mut tree, snapshots) = merged(&mut scanned, image, (keep, &ends), &mut warnings)?;
    let (scans, mut spools): (Vec<ScanAndBlob>, Vec<Spool>) = scanned
        .into_iter()
        .map(|s| ((s.scan, s.kept_blob), s.spool))
        .unzip();
    let slimmed = crate::pipeline::slim::slim(
        &opts.policy,
        (&mut tree, &mut spools),
        &image.config_json,
        keep,
        opts.check.then_some(opts.allow_broken),
        &mut warnings,
    )?;
    warnings.extend(opts.policy.warnings.iter().cloned());
    let inventory = opts
        .sbom
        .as_ref()
        .map(|_| catalog(&tree, &spools))
        .transpose()?;
    let codec = squashed_codec(
        opts.output.compression,
        scans.last().map(|s| s.0.compression),
    );
    let trees = groups::slimmed_trees(snapshots, tree, &slimmed.deleted, &opts.policy)?;
    let starts = groups::starts(keep, &ends);
    let (written, reused) = write_groups(
        opts,
        image,
        (&base, &trees, &starts),
        (&spools, codec),
        (staging.as_ref(), cache.as_ref()),
    )?;
    let input = Input {
        image,
        scans: &scans,
        spools: &spools,
        keep,
        groups: starts
            .iter()
            .zip(&ends)
            .map(|(&s, &e)| (s + 1, e))
            .collect(),
    };
    let (mut out, mut report) =
        assemble(opts, &input, (format, codec), written, slimmed, warnings)?;
    if let Some(c) = &cache {
        account_cache(&mut report, reuse::outcome(c, &from_cache, reused));
    }
    if let Some((c, k)) = &result_key {
        reuse::keep_result(c, k, &out, &report);
    }
    let sbom = match (inventory, sbom_file) {
        (Some(inv), Some(f)) => Some((
            attach::documents(opts, image, &inv, (&mut out, &mut report))?,
            f,
        )),
        _ => None,
    };
    commit(staging, &out, &mut report, (report_file, sbom))?;
    Ok(report)
}

/// What is checked and opened before any image byte is read: the output's format, the
/// side files (`--report`, `--sbom`) staged, the cache.
fn before_reading(
    opts: &SquashOptions,
) -> Result<(Option<SideFile>, Option<SideFile>, Option<Cache>)> {
    if let Some(f) = opts.output.format.filter(|_| !opts.dry_run) {
        opts.output.check(f)?;
    }
    let report_file = stage_side(opts, (opts.report_file.as_deref(), "--report"), None)?;
    let sbom_path = opts.sbom.as_ref().map(|(p, _)| p.as_path());
    let sbom_file = stage_side(opts, (sbom_path, "--sbom"), opts.report_file.as_deref())?;
    let cache = opts
        .cache
        .as_ref()
        .map(|c| Cache::open(&c.dir, c.max))
        .transpose()?;
    Ok((report_file, sbom_file, cache))
}

/// The slimmed image's packages, for `--sbom`.
fn catalog(tree: &overlay::Tree, spools: &[Spool]) -> Result<crate::sbom::Inventory> {
    crate::sbom::catalog(&crate::layer::fs::TreeFs::new(tree, spools))
        .map_err(|e| Error::corrupt("package database", e))
}

/// [`write_squashed`], with what each spool holds when there is a cache.
fn write_groups(
    opts: &SquashOptions,
    image: &Image,
    trees: (&overlay::Tree, &[overlay::Tree], &[usize]),
    (spools, codec): (&[Spool], Compression),
    (staging, cache): (Option<&Staging>, Option<&Cache>),
) -> Result<(Vec<Written>, Vec<usize>)> {
    let diff_ids: Vec<Digest> = image.layers.iter().map(|l| l.diff_id.clone()).collect();
    let ids = match cache {
        Some(c) => Some((c, reuse::spool_ids(&diff_ids, spools)?)),
        None => None,
    };
    let cache = ids.as_ref().map(|(c, ids)| (*c, ids.as_slice()));
    write_squashed(opts, trees, spools, codec, (staging, cache))
}

/// The report's account of the cache ([`reuse::outcome`]), each group marked reused or
/// not.
fn account_cache(report: &mut SquashReport, (outcome, warnings): (CacheOutcome, Vec<String>)) {
    for (i, g) in report.groups.iter_mut().enumerate() {
        g.reused = outcome.groups_reused.contains(&(i + 1));
    }
    report.warnings.extend(warnings);
    report.cache = Some(outcome);
}

/// The cache's key of this whole squash ([`reuse::result_key`]: the image, the policy,
/// and every option the output depends on), when it is kept whole and looked up whole:
/// every output layer a squashed one (nothing kept as it is), no SBOM, no dry run.
fn result_key<'c>(
    opts: &SquashOptions,
    cache: Option<&'c Cache>,
    (image, keep, ends): (&Image, usize, &[usize]),
    format: Format,
) -> Option<(&'c Cache, Digest)> {
    let whole = keep == 0
        && !opts.dry_run
        && opts.sbom.is_none()
        && (opts.groups.is_some() || !matches!(opts.keep, Keep::Base(_)));
    let cache = cache.filter(|_| whole)?;
    let o = &opts.output;
    let options = format!(
        "{format:?} {:?} {:?} {:?} {:?} {ends:?} {:?} {} {}",
        o.compression,
        o.level,
        (&o.tags, &o.ref_name),
        opts.timestamp,
        opts.groups,
        opts.check,
        opts.allow_broken
    );
    Some((cache, reuse::result_key(&options, &opts.policy, image)))
}

/// The whole squash from the cache, committed, when it has it (the staging folder and
/// the report file are taken then).
fn whole_from_cache(
    key: Option<&(&Cache, Digest)>,
    staging: &mut Option<Staging>,
    report_file: &mut Option<SideFile>,
) -> Result<Option<SquashReport>> {
    let (Some((c, k)), Some(st)) = (key, staging.as_ref()) else {
        return Ok(None);
    };
    let Some((out, mut report)) = reuse::cached_result(c, k, st)? else {
        return Ok(None);
    };
    reused_whole(c, &mut report);
    commit(
        staging.take(),
        &out,
        &mut report,
        (report_file.take(), None),
    )?;
    Ok(Some(report))
}

/// `report`, kept whole, as this run gives it: every squashed layer from the cache,
/// and the cache's account (with its warnings) this run's.
fn reused_whole(cache: &Cache, report: &mut SquashReport) {
    let groups = report.groups.len().max(1);
    let (mut outcome, warnings) = reuse::outcome(cache, &[], (1..=groups).collect());
    outcome.result_reused = true;
    for g in &mut report.groups {
        g.reused = true;
    }
    report.warnings.extend(warnings);
    report.cache = Some(outcome);
}

/// How many bottom layers stay as they are, and where the squashed layers end (each
/// group's last layer; one group, the top, without `--layer-groups`). With groups,
/// `--base` only says where the base ends: nothing is kept as it is.
fn cuts(
    opts: &SquashOptions,
    image: &Image,
    warnings: &mut Vec<String>,
) -> Result<(usize, Vec<usize>)> {
    let total = image.layers.len();
    let kept = kept_layers(opts, image, warnings)?;
    let Some(g) = &opts.groups else {
        return Ok((kept, vec![total]));
    };
    let history = image
        .config_json
        .get("history")
        .unwrap_or(&serde_json::Value::Null);
    Ok((
        0,
        groups::ends(g, history, total, (kept > 0).then_some(kept))?,
    ))
}

/// The merged trees: the kept base's (empty with groups), the top's, and with groups
/// each lower group's (after its last layer).
fn merged(
    scanned: &mut [crate::pipeline::merge::Scanned],
    image: &Image,
    (keep, ends): (usize, &[usize]),
    warnings: &mut Vec<String>,
) -> Result<(overlay::Tree, overlay::Tree, Vec<overlay::Tree>)> {
    if ends.len() > 1 {
        let mut trees = merge_scanned_at(scanned, image, ends, warnings)?;
        let fin = trees.pop().expect("the last group ends at the top");
        return Ok((overlay::Tree::default(), fin, trees));
    }
    let (base, tree) = merge_scanned(scanned, image, keep, warnings)?;
    Ok((base, tree, Vec::new()))
}

/// Writes the squashed layers: each group's tree (`trees`, bottom first; one without
/// groups) as the layer that turns the one below it (`base` for the first) into it,
/// holding the entries of the input layers from its start on. With a cache (and what
/// each spool holds, [`reuse::spool_ids`]), a layer it has is taken from it and one
/// written is kept in it; the second list is the squashed layers reused, from 1.
fn write_squashed(
    opts: &SquashOptions,
    (base, trees, starts): (&overlay::Tree, &[overlay::Tree], &[usize]),
    spools: &[Spool],
    codec: Compression,
    (staging, cache): (Option<&Staging>, Option<(&Cache, &[Digest])>),
) -> Result<(Vec<Written>, Vec<usize>)> {
    let entries: Vec<&[EntryRec]> = spools.iter().map(|s| s.entries.as_slice()).collect();
    let enc = EncodeOptions {
        compression: codec,
        level: opts.output.level,
        threads: opts.jobs.max(1) as u32,
    };
    let mut written = Vec::with_capacity(trees.len());
    let mut reused = Vec::new();
    for (i, tree) in trees.iter().enumerate() {
        let below = if i == 0 { base } else { &trees[i - 1] };
        let plan = overlay::plan(below, tree, starts[i], &entries);
        let key = cache.map(|(c, ids)| {
            (
                c,
                reuse::group_key(&plan, &entries, ids, enc, opts.timestamp),
            )
        });
        if let Some((c, k)) = &key
            && let Some(w) = reuse::reused_group(c, k, staging)?
        {
            written.push(w);
            reused.push(i + 1);
            continue;
        }
        let out = match staging {
            Some(st) => LayerOut::Blob(st.blob_writer()?),
            None => LayerOut::Dry(Meter::new(std::io::sink())),
        };
        // The work: the bytes of what is written (entries copied whole, hard-link data
        // taken over, markers), not what the input layers held before the policy deleted.
        let upper_bound = plan_bytes(&plan, &entries);
        let w = write_layer(
            &plan,
            spools,
            enc,
            opts.timestamp,
            &opts.progress,
            upper_bound,
            out,
        )?;
        if let (Some((c, k)), Some(st)) = (&key, staging) {
            reuse::keep_group(c, k, &w, st);
        }
        written.push(w);
    }
    Ok((written, reused))
}

/// The output's format (`--format`, else the input's family for the destination) and
/// its staging folder (none for a dry run), checked before any layer is read.
fn stage_output(
    opts: &SquashOptions,
    source: &reader::Source,
) -> Result<(Format, Option<Staging>)> {
    let image = &source.image;
    let format = match opts.output.format {
        Some(f) => f,
        None if opts.dry_run => image.format,
        None => default_format(image.format, &opts.output.dest),
    };
    if opts.dry_run {
        return Ok((format, None));
    }
    opts.output.check(format)?;
    let mut st = Staging::new(opts.output.dest.clone(), format)?;
    st.mount_from(source.pulled.as_ref().map(|p| p.mount_from()));
    Ok((format, Some(st)))
}

/// How many bottom layers stay as they are (`--keep-layers`, or those `--base` shares),
/// leaving at least one to squash.
fn kept_layers(opts: &SquashOptions, image: &Image, warnings: &mut Vec<String>) -> Result<usize> {
    let total = image.layers.len();
    let keep = match &opts.keep {
        Keep::Nothing => 0,
        Keep::Layers(n) => *n,
        Keep::Base(spec) => {
            let base = reader::open(spec, &opts.open)?.image;
            let n = base
                .layers
                .iter()
                .zip(&image.layers)
                .take_while(|(b, i)| b.diff_id == i.diff_id)
                .count();
            if n < base.layers.len() {
                warnings.push(format!(
                    "the base image shares {n} of its {} layers with the source; keeping those {n}",
                    base.layers.len()
                ));
            }
            n
        }
    };
    if total == 0 {
        return Err(Error::Usage("the image has no layers to squash".into()));
    }
    if keep >= total {
        return Err(Error::Usage(format!(
            "keeping {keep} of {total} layers leaves nothing to squash"
        )));
    }
    Ok(keep)
}

/// The input as squash read it: its image, each layer's scan (and copied blob) and spool,
/// and how many layers stay.
struct Input<'a> {
    image: &'a Image,
    scans: &'a [ScanAndBlob],
    spools: &'a [Spool],
    keep: usize,
    /// The squashed groups' input layers, from 1: first and last (one without groups).
    groups: Vec<(usize, usize)>,
}

/// The output image (config, manifest's media types, layers, names) and the report,
/// from the squashed layers as written (one per group) and what the policy did.
fn assemble(
    opts: &SquashOptions,
    input: &Input,
    (format, codec): (Format, Compression),
    written: Vec<Written>,
    slimmed: Slimmed,
    mut warnings: Vec<String>,
) -> Result<(OutImage, SquashReport)> {
    let (image, scans, spools, keep) = (input.image, input.scans, input.spools, input.keep);
    let kept_codecs = scans[..keep].iter().map(|s| s.0.compression);
    let codecs: Vec<Compression> = kept_codecs.chain(written.iter().map(|_| codec)).collect();
    let (docker, manifest_media, config_media) = media_family(image, &codecs, &mut warnings);
    let squashed = written.iter().map(|w| OutLayer {
        digest: w.digest.clone(),
        size: w.size,
        media_type: codec.media_type(docker).to_string(),
        annotations: None,
    });
    let layers = out_layers(&scans[..keep], image, docker, squashed);
    let diff_ids: Vec<&Digest> = written.iter().map(|w| &w.diff_id).collect();
    let config_bytes = out_config(opts, image, (keep, &input.groups), &diff_ids, &mut warnings)?;
    let (tags, ref_names) = output_names(opts, format, image);
    let (report_layers, before, after) = layer_outcomes(
        scans,
        spools,
        keep,
        &summed(&written),
        &slimmed.policy,
        Sizes {
            compressed: written.iter().map(|w| w.size).sum(),
            uncompressed: written.iter().map(|w| w.tar_size).sum(),
        },
    );
    let top = written.last().expect("at least one squashed layer");
    let report = SquashReport {
        input_format: image.format.name().to_string(),
        output_format: format.name().to_string(),
        kept_layers: keep,
        layers: report_layers,
        squashed_digest: top.digest.clone(),
        squashed_diff_id: top.diff_id.clone(),
        squashed_compression: codec.name().to_string(),
        squashed_entries: top.stats.entries,
        groups: group_outcomes(&written, &input.groups),
        saved: Saved::of(
            before,
            after,
            scans.iter().all(|s| s.0.compression == codec),
        ),
        before,
        after,
        config_digest: Digest::of(&config_bytes),
        policy: slimmed.policy,
        dry_run: opts.dry_run,
        warnings,
        check: slimmed.check,
        closure: slimmed.closure,
        packages: slimmed.packages,
        npm: slimmed.npm,
        dpkg_excluded: slimmed.dpkg_excluded,
        database: slimmed.database,
        python: slimmed.python,
        rewritten: slimmed.rewritten,
        sbom: None,
        pushed: None,
        cache: None,
        tags: tags.clone(),
    };
    let out = OutImage {
        config: config_bytes,
        config_media_type: config_media,
        manifest_media_type: manifest_media,
        manifest_annotations: image.manifest_annotations.clone(),
        layers,
        tags,
        ref_names,
        attached: Vec::new(),
    };
    Ok((out, report))
}

/// What the squashed layers emitted, together.
fn summed(written: &[Written]) -> crate::layer::writer::EmitStats {
    let mut stats = crate::layer::writer::EmitStats::default();
    for w in written {
        stats.entries += w.stats.entries;
        let n = w.stats.kept_by_layer.len().max(stats.kept_by_layer.len());
        stats.kept_by_layer.resize(n, 0);
        for (i, b) in w.stats.kept_by_layer.iter().enumerate() {
            stats.kept_by_layer[i] += b;
        }
    }
    stats
}

/// Each group's layer in the report (none without groups).
fn group_outcomes(written: &[Written], groups: &[(usize, usize)]) -> Vec<GroupOutcome> {
    if written.len() < 2 {
        return Vec::new();
    }
    written
        .iter()
        .zip(groups)
        .map(|(w, &layers)| GroupOutcome {
            layers,
            digest: w.digest.clone(),
            diff_id: w.diff_id.clone(),
            compressed_size: w.size,
            uncompressed_size: w.tar_size,
            entries: w.stats.entries,
            reused: false,
        })
        .collect()
}

/// About the plain tar bytes `plan` writes: each entry copied as the input holds it,
/// a taken-over hard link's data, a 512-byte header per marker or rewritten link.
fn plan_bytes(plan: &[overlay::Emit], layers: &[&[EntryRec]]) -> u64 {
    let span = |id: &overlay::EntryId| {
        let (a, b) = layers[id.layer][id.entry].span;
        b.saturating_sub(a)
    };
    plan.iter()
        .map(|e| match e {
            overlay::Emit::Raw(id) => span(id),
            overlay::Emit::Promote { carrier, .. } => span(carrier) + 512,
            _ => 512,
        })
        .sum()
}

/// The output's names and layout ref names ([`OutputOptions::names`]); what an engine
/// loads (a docker archive) never under the input's own names: `NAME:TAG-slim` unless
/// `--tag` names it.
fn output_names(opts: &SquashOptions, format: Format, image: &Image) -> (Vec<String>, Vec<String>) {
    let (tags, ref_names) = opts.output.names(format, image);
    if format != Format::DockerArchive || !opts.output.tags.is_empty() {
        return (tags, ref_names);
    }
    (
        tags.iter().filter_map(|t| media::slim_name(t)).collect(),
        ref_names,
    )
}

/// The output's layers: the kept ones as the input stores them (a dry run copies
/// nothing; their blobs are the input's, byte for byte), then `squashed`.
fn out_layers(
    kept: &[ScanAndBlob],
    image: &crate::image::Image,
    docker: bool,
    squashed: impl Iterator<Item = OutLayer>,
) -> Vec<OutLayer> {
    let mut layers: Vec<OutLayer> = kept
        .iter()
        .zip(&image.layers)
        .map(|((scan, kept_blob), l)| {
            let (digest, size) = kept_blob
                .clone()
                .unwrap_or((scan.blob_digest.clone(), scan.blob_size));
            OutLayer {
                digest,
                size,
                media_type: l
                    .media_type
                    .clone()
                    .unwrap_or_else(|| scan.compression.media_type(docker).to_string()),
                annotations: l.annotations.clone(),
            }
        })
        .collect();
    layers.extend(squashed);
    layers
}

/// The output's config: the input's, with the kept layers' diff_ids and the squashed
/// ones', and a history entry per squashed layer saying what was squashed.
fn out_config(
    opts: &SquashOptions,
    image: &crate::image::Image,
    (keep, groups): (usize, &[(usize, usize)]),
    squashed: &[&Digest],
    warnings: &mut Vec<String>,
) -> Result<Vec<u8>> {
    let mut diff_ids: Vec<Digest> = image.layers[..keep]
        .iter()
        .map(|l| l.diff_id.clone())
        .collect();
    diff_ids.extend(squashed.iter().map(|d| (*d).clone()));
    let note = SquashNote {
        kept: keep,
        total: image.layers.len(),
        groups: groups.to_vec(),
        policy: opts.policy.names.clone(),
        created: opts.timestamp.map(config::rfc3339),
    };
    let (config_json, warning) = config::rebuild(&image.config_json, &diff_ids, &note);
    warnings.extend(warning);
    Ok(serde_json::to_vec(&config_json).map_err(std::io::Error::other)?)
}

/// Checks a side file (`--report`, `--sbom`) against the source, the destination and
/// the other side files, and stages it, before any image byte is read.
fn stage_side(
    opts: &SquashOptions,
    (path, flag): (Option<&Path>, &str),
    also: Option<&Path>,
) -> Result<Option<SideFile>> {
    let Some(p) = path else {
        return Ok(None);
    };
    let mut others: Vec<&Path> = opts.source.path.iter().map(|p| p.as_path()).collect();
    if let Dest::Path(o) | Dest::Node(o) = &opts.output.dest {
        others.push(o);
    }
    others.extend(also);
    SideFile::stage(p, flag, &others).map(Some)
}

/// Commits the staged image (a dry run has none), the report file and the SBOM. The
/// side files are written before the image is committed, so one that cannot be written
/// leaves no image either; the report is rewritten if committing adds warnings, and
/// both are renamed after.
fn commit(
    staging: Option<Staging>,
    out: &OutImage,
    report: &mut SquashReport,
    (mut report_file, sbom): (Option<SideFile>, Option<(Vec<u8>, SideFile)>),
) -> Result<()> {
    if let Some(f) = &mut report_file {
        f.write(&report_bytes(report))?;
    }
    let sbom_file = match sbom {
        Some((bytes, mut f)) => {
            f.write(&bytes)?;
            Some(f)
        }
        None => None,
    };
    let finished = match staging {
        Some(st) => st.finish(out)?,
        None => Default::default(),
    };
    report.pushed = finished.pushed;
    if !finished.warnings.is_empty() {
        report.warnings.extend(finished.warnings);
        if let Some(f) = &mut report_file {
            f.write(&report_bytes(report))?;
        }
    }
    if let Some(f) = report_file {
        f.commit()?;
    }
    if let Some(f) = sbom_file {
        f.commit()?;
    }
    Ok(())
}

/// The `--report` file: the report as `--json` prints it.
fn report_bytes(report: &SquashReport) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(report).expect("reports serialise");
    bytes.push(b'\n');
    bytes
}

/// Each input layer's line in the report, and the image's sizes before and after;
/// `after` starts as the squashed layer's sizes.
fn layer_outcomes(
    scans: &[ScanAndBlob],
    spools: &[Spool],
    keep: usize,
    stats: &EmitStats,
    policy: &PolicyOutcome,
    mut after: Sizes,
) -> (Vec<LayerOutcome>, Sizes, Sizes) {
    let mut report_layers = Vec::new();
    let mut before = Sizes::default();
    for (i, ((scan, _), spool)) in scans.iter().zip(spools).enumerate() {
        let stored: u64 = spool.entries.iter().map(|e| e.size).sum();
        before.compressed += scan.blob_size;
        before.uncompressed += scan.tar_size;
        if i < keep {
            after.compressed += scan.blob_size;
            after.uncompressed += scan.tar_size;
        }
        report_layers.push(LayerOutcome {
            position: i + 1,
            digest: scan.blob_digest.clone(),
            compressed_size: scan.blob_size,
            uncompressed_size: scan.tar_size,
            entries: scan.entries,
            kept: i < keep,
            shadowed_bytes: if i < keep {
                0
            } else {
                stored
                    .saturating_sub(stats.kept_by_layer[i])
                    .saturating_sub(policy.reclaimed_by_layer[i])
            },
            deleted_bytes: policy.reclaimed_by_layer[i],
        });
    }
    (report_layers, before, after)
}
