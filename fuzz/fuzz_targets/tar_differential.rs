//! The names ocislim's strict walker sees against the `tar` crate's: whenever the walker
//! accepts a tar, the `tar` crate (an independent reader, and a lenient one) must see the
//! same entries, names, link targets and sizes, or fail. A disagreement is a header
//! ocislim should refuse.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ocislim::layer::headers::Walker;

fuzz_target!(|data: &[u8]| {
    let mut walker = Walker::new(data);
    let mut ours = Vec::new();
    loop {
        match walker.next_entry() {
            Ok(Some(e)) => {
                let link = if e.kind.is_hard_link() || e.kind.is_symlink() {
                    e.link.clone()
                } else {
                    Vec::new()
                };
                ours.push((e.path.clone(), link, e.size, e.header.entry_type().as_byte()));
            }
            Ok(None) => break,
            Err(_) => return,
        }
    }
    let mut theirs = Vec::new();
    let mut archive = tar::Archive::new(data);
    let Ok(entries) = archive.entries() else {
        return;
    };
    for e in entries {
        let Ok(e) = e else {
            return;
        };
        let kind = e.header().entry_type();
        let link = if kind.is_hard_link() || kind.is_symlink() {
            e.link_name_bytes().map(|l| l.into_owned()).unwrap_or_default()
        } else {
            Vec::new()
        };
        theirs.push((e.path_bytes().into_owned(), link, e.size(), kind.as_byte()));
    }
    assert_eq!(ours, theirs, "the walker and the tar crate disagree");
});
