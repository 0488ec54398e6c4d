//! Integration tests: ocislim against real tools (umoci, skopeo, bsdtar, Docker).

mod bench;
mod builder;
mod check;
mod cli_docs;
mod closure;
mod corrupt;
mod debian;
mod dialects;
mod docker;
mod fixtures;
mod hostile;
mod inspect;
mod interrupt;
mod layout;
mod packages;
mod policy;
mod presets;
mod property;
mod rawtar;
mod roundtrip;
mod select;
mod sinks;
mod squash;
mod terminal;
mod tools;
