//! An image archive (OCI archive or `docker save`) as a hostile source carries it: its
//! `index.json`, manifests, configs and `manifest.json` are read and checked. Any panic
//! is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ocislim::image::reader::{OpenOptions, SourceSpec, open};

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("image.tar");
    std::fs::write(&path, data).unwrap();
    let spec = SourceSpec::parse(path.to_str().unwrap());
    if let Ok(source) = open(&spec, &OpenOptions::default()) {
        for l in &source.image.layers {
            let _ = source.layer_blob(l);
        }
    }
});
