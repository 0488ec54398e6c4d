//! Layers: codecs, entry names, and streaming a layer blob.

pub mod codec;
pub mod headers;
pub mod index;
pub mod overlay;
pub mod path;
pub mod pgzip;
pub mod reader;
pub mod synth;
pub mod writer;
