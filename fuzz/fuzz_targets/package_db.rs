//! A package database as an image carries it: dpkg's status and diversions files,
//! apk's `installed`, and every relation field in them. Any panic is a bug (a non-ASCII
//! apk key once panicked at a char boundary).
#![no_main]

use libfuzzer_sys::fuzz_target;
use ocislim::packages::{apk, dpkg, relation};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(stanzas) = dpkg::stanzas(&text) {
        for s in &stanzas {
            for k in ["Depends", "Pre-Depends", "Provides", "Recommends"] {
                if let Some(v) = s.fields.get(k) {
                    let _ = relation::parse_dpkg(v);
                }
            }
        }
    }
    let _ = dpkg::diversions(&text);
    for r in apk::records(&text) {
        for (k, v) in &r.lines {
            match k {
                'D' => drop(relation::parse_apk(v)),
                'p' => v.split_whitespace().for_each(|w| drop(relation::apk_provided(w))),
                _ => {}
            }
        }
    }
});
