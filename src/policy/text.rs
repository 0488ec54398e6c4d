//! Policies as `ocislim policy` prints them: the built-in list, a resolved policy's
//! rules, keep globs and closure settings, and closure mode's presets.

use super::{BUILTIN, NONE, PolicySetBuilder, describe};
use crate::deps::closure::PRESETS;

/// `policy list`.
pub fn list() -> String {
    let mut o = String::new();
    for (name, _) in BUILTIN {
        o += &format!("{name:<11} {}\n", describe(name).unwrap_or_default());
    }
    o += &format!("{NONE:<11} delete nothing: a pure squash\n");
    o
}

/// `policy presets`.
pub fn presets() -> String {
    let mut o = String::new();
    for (name, preset, what) in PRESETS {
        let default = crate::deps::closure::DEFAULT_PRESETS.contains(preset);
        o += &format!(
            "{name:<13} {}{what}\n",
            if default { "" } else { "(opt-in) " }
        );
    }
    o += &format!(
        "{:<13} the presets not marked opt-in\n",
        super::DEFAULT_PRESET_NAME
    );
    o
}

/// `policy show NAME`.
pub fn show(name: &str, b: &PolicySetBuilder) -> String {
    let mut o = format!("policy {name}: {}\n", describe(name).unwrap_or_default());
    for r in b.rules() {
        o += &format!(
            "[[rule]] {}  (from {})\n  reason: {}\n",
            r.id, r.source, r.reason
        );
        for g in &r.delete {
            o += &format!("  delete {g}\n");
        }
        for g in &r.keep {
            o += &format!("  keep   {g}\n");
        }
    }
    if !b.keep().is_empty() {
        o += "[keep] (no rule deletes these, nor their parents)\n";
        for (g, src) in b.keep() {
            o += &format!("  {g}  (from {src})\n");
        }
    }
    if let Some((roots, presets)) = b.closure() {
        o += "[closure] (delete what the command, these roots and the presets do not need)\n";
        for g in roots {
            o += &format!("  root   {g}\n");
        }
        let names: Vec<&str> = presets.iter().map(|p| p.name()).collect();
        o += &format!("  presets {}\n", names.join(", "));
    }
    if let Some(p) = b.packages() {
        let auto = if p.autoremove {
            " (and autoremove)"
        } else {
            ""
        };
        if !p.remove.is_empty() {
            o += &format!("[packages] remove {}{auto}\n", p.remove.join(", "));
        }
        if !p.unless_needed.is_empty() {
            o += &format!(
                "[packages] remove unless a kept package needs it {}{auto}\n",
                p.unless_needed.join(", ")
            );
        }
    }
    if b.npm_omit_dev() {
        o += "[npm] omit-dev (prune devDependencies, as npm prune --omit=dev)\n";
    }
    if !b.libraries().is_empty() {
        o += &format!("[runtime] libraries {}\n", b.libraries().join(", "));
    }
    for w in b.warnings() {
        o += &format!("warning: {w}\n");
    }
    o
}

/// One line of `policy check`, and its warnings.
pub fn checked(file: &str, b: &PolicySetBuilder) -> String {
    let mut o = format!("{file}: ok, {} rules", b.rules().len());
    if b.closure().is_some() {
        o += ", closure mode";
    }
    o += "\n";
    for w in b.warnings() {
        o += &format!("warning: {w}\n");
    }
    o
}
