//! `ocislim policy`: the built-in policies, closure mode's presets, a policy as its
//! rules resolve, and policy files checked.

use crate::error::Result;
use crate::policy::{PolicySetBuilder, text};

/// The built-in policies, one line each.
pub fn list() -> String {
    text::list()
}

/// Closure mode's runtime presets.
pub fn presets() -> String {
    text::presets()
}

/// The policy `name` (a built-in name or a file) after `extends` is resolved.
pub fn show(name: &str) -> Result<String> {
    Ok(text::show(name, &compiled(name)?))
}

/// Each file parsed and its globs compiled; the first error stops.
pub fn check(files: &[String]) -> Result<String> {
    let mut o = String::new();
    for f in files {
        o += &text::checked(f, &compiled(f)?);
    }
    Ok(o)
}

fn compiled(name: &str) -> Result<PolicySetBuilder> {
    let mut b = PolicySetBuilder::default();
    b.add(name)?;
    b.build()?;
    Ok(b)
}
