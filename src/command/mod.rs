//! One thin room per command, over [`crate::pipeline`]: each takes its validated
//! options and returns its report; none prints, and none calls another.

pub mod bench;
pub mod check;
pub mod convert;
pub mod diff;
pub mod inspect;
pub mod packages;
pub mod policy;
pub mod sbom;
pub mod squash;
