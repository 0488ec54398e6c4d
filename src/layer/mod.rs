//! Layers: codecs, entry names, streaming a layer blob, and the merged filesystem view
//! ([`fs`]) every analysis reads.

pub mod codec;
pub mod fs;
pub mod headers;
pub mod index;
#[cfg(test)]
pub mod memfs;
pub mod overlay;
pub mod path;
pub mod pgzip;
pub mod reader;
pub mod synth;
pub mod writer;
