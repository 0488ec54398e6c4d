//! An ELF file as the dependency analysis reads it: program headers only (PT_INTERP,
//! PT_DYNAMIC, its strings through PT_LOAD). Any panic, or work or memory out of
//! proportion to the input, is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ocislim::deps::elf::parse(std::io::Cursor::new(data));
});
