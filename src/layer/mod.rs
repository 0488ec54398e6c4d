//! Layers: codecs, entry names, and streaming a layer blob.

pub mod codec;
pub mod path;
pub mod reader;
