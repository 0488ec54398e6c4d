//! A layer's tar (or gzip/zstd of one) as a hostile image carries it: read, indexed,
//! merged with itself as two layers (whiteouts, opaque markers, symlinked parents) and
//! planned. Any panic, or a cost out of proportion to the input, is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ocislim::layer::index::IndexMode;
use ocislim::layer::overlay::{Tree, plan};
use ocislim::layer::reader::scan_full;
use std::io::Sink;

fuzz_target!(|data: &[u8]| {
    let Ok((_, _, _, records)) =
        scan_full::<_, Sink, Sink>(data, "fuzz", None, None, IndexMode::EntriesWithDigests)
    else {
        return;
    };
    let mut layers = vec![records.clone(), records];
    let merged = Tree::merge(
        layers
            .iter_mut()
            .map(|l| (l.as_mut_slice(), "fuzz".to_string())),
        1,
        &mut Vec::new(),
    );
    if let Ok((base, tree)) = merged {
        let refs: Vec<&[_]> = layers.iter().map(Vec::as_slice).collect();
        plan(&base, &tree, 1, &refs);
    }
});
