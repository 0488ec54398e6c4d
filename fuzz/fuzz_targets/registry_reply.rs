//! What a registry (or its token server) replies, as ocislim reads it: the
//! `WWW-Authenticate` challenge, a token reply, and the excerpt of an error body shown to
//! the user (one line, no control bytes, bounded). Any panic is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ocislim::transport::reply;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = reply::parse_challenge(&text);
    let _ = reply::token(data);
    let shown = reply::excerpt(&text);
    assert!(!shown.contains(['\n', '\r', '\x1b']), "{shown:?}");
    assert!(shown.chars().count() <= reply::EXCERPT * 10 + 3, "{}", shown.len());
});
