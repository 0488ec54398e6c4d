//! A policy file as a user (or a pipeline's input) writes it: parsed, its globs
//! compiled, and decided on a small tree. Any panic is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ocislim::policy::PolicySetBuilder;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.toml");
    std::fs::write(&path, data).unwrap();
    let mut b = PolicySetBuilder::default();
    if b.add(path.to_str().unwrap()).is_ok() {
        let _ = b.build();
    }
});
