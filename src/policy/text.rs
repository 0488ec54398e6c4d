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

/// A TOML string.
fn quoted(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// A TOML array of strings.
fn strings(list: &[String]) -> String {
    let items: Vec<String> = list.iter().map(|s| quoted(s)).collect();
    format!("[{}]", items.join(", "))
}

/// `policy show NAME`: the policy after `extends`, as one TOML policy file that `policy
/// check` accepts (each rule's origin in a comment), so it can be a template.
pub fn show(name: &str, b: &PolicySetBuilder) -> String {
    let description = describe(name).unwrap_or_default();
    let mut o = format!(
        "# policy {name}, its extends resolved: every rule of every policy it reads.\n\
         description = {}\n",
        quoted(&description)
    );
    for r in b.rules() {
        o += &format!("\n# from {}\n[[rule]]\nid = {}\n", r.source, quoted(&r.id));
        if !r.reason.is_empty() {
            o += &format!("reason = {}\n", quoted(&r.reason));
        }
        o += &format!("delete = {}\n", strings(&r.delete));
        if !r.keep.is_empty() {
            o += &format!("keep = {}\n", strings(&r.keep));
        }
    }
    if !b.keep().is_empty() {
        o += "\n# no rule deletes these, nor their parents\n[keep]\npaths = [\n";
        for (g, src) in b.keep() {
            o += &format!("    {},  # from {src}\n", quoted(g));
        }
        o += "]\n";
    }
    if let Some((roots, presets)) = b.closure() {
        let names: Vec<String> = presets.iter().map(|p| p.name().to_string()).collect();
        o += &format!(
            "\n# delete what the command, these roots and the presets do not need\n\
             [closure]\nroots = {}\npresets = {}\n",
            strings(roots),
            strings(&names)
        );
    }
    if let Some(p) = b.packages() {
        o += "\n[packages]\n";
        if !p.remove.is_empty() {
            o += &format!("remove = {}\n", strings(&p.remove));
        }
        if !p.unless_needed.is_empty() {
            o += &format!("remove-unless-needed = {}\n", strings(&p.unless_needed));
        }
        if p.autoremove {
            o += "autoremove = true\n";
        }
    }
    if b.npm_omit_dev() {
        o += "\n# prune devDependencies, as npm prune --omit=dev\n[npm]\nomit-dev = true\n";
    }
    if !b.check_ignore().is_empty() {
        o += &format!("\n[check]\nignore = {}\n", strings(b.check_ignore()));
    }
    if !b.libraries().is_empty() {
        o += &format!("\n[runtime]\nlibraries = {}\n", strings(b.libraries()));
    }
    for w in b.warnings() {
        o += &format!("# warning: {}\n", w.replace('\n', " "));
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
