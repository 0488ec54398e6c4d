//! The stages every command shares, in the order they run:
//!
//! ```text
//! merge   every layer read once, verified, indexed, merged as a runtime would
//! slim    the policy decided over the merged tree, applied, rewrites laid on top,
//!         the dependency check against the merged input
//! groups  with --layer-groups, where the squashed layers are cut, each group's tree
//! emit    the overlay plan streamed through the codec into one blob per output layer
//! reuse   with --cache, layers indexed from cached plain tars, squashed layers reused
//! format  the output's format and media types
//! squash  the four in sequence for one image, with its config, manifest and report
//! attach  squash's SBOM of the output and record of the slim, attached as referrers
//! ```

pub mod attach;
pub mod emit;
pub mod format;
pub mod groups;
pub mod merge;
pub mod reuse;
pub mod slim;
pub mod squash;
