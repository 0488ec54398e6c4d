//! What an ELF file asks of the dynamic loader, read with the `object` crate: its
//! interpreter (`PT_INTERP`), the libraries it needs (`DT_NEEDED`), where to look
//! (`DT_RPATH`, `DT_RUNPATH`), its own name (`DT_SONAME`), and the class and machine a
//! library must match to satisfy it. Only the headers and the dynamic section are read.

use object::elf::{self, FileHeader32, FileHeader64};
use object::read::elf::{FileHeader, ProgramHeader};
use object::{Endianness, ReadCache, ReadRef};
use std::io::{Read, Seek};

/// Most `DT_NEEDED`, `DT_RPATH`, `DT_RUNPATH` and `DT_SONAME` entries read from one file
/// (real programs have tens): at most 4 MiB of strings for any file.
pub const MAX_DYNAMIC_STRINGS: usize = 1024;

/// Whether bytes start like an ELF file.
pub fn is_elf(head: &[u8]) -> bool {
    head.starts_with(b"\x7fELF")
}

/// What the loader needs to know of one ELF file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ElfInfo {
    /// 64-bit (`ELFCLASS64`).
    pub class64: bool,
    /// Big-endian.
    pub big_endian: bool,
    /// `e_machine`.
    pub machine: u16,
    /// `PT_INTERP`: the program interpreter.
    pub interp: Option<Vec<u8>>,
    /// `DT_NEEDED`, in order.
    pub needed: Vec<Vec<u8>>,
    /// `DT_RPATH`.
    pub rpath: Option<Vec<u8>>,
    /// `DT_RUNPATH`.
    pub runpath: Option<Vec<u8>>,
    /// `DT_SONAME`.
    pub soname: Option<Vec<u8>>,
}

impl ElfInfo {
    /// Whether a library of `other`'s class, byte order and machine can satisfy this
    /// file's needs (the loader skips others and searches on).
    pub fn compatible(&self, other: &ElfInfo) -> bool {
        self.class64 == other.class64
            && self.big_endian == other.big_endian
            && self.machine == other.machine
    }
}

/// Reads an ELF file's loader information from a seekable reader.
pub fn parse(r: impl Read + Seek) -> Result<ElfInfo, String> {
    let cache = ReadCache::new(r);
    let data = &cache;
    let ident = data
        .read_bytes_at(0, 16)
        .map_err(|()| "shorter than an ELF header".to_string())?;
    let info = match ident[4] {
        1 => parse_as::<FileHeader32<Endianness>, _>(data),
        2 => parse_as::<FileHeader64<Endianness>, _>(data),
        c => return Err(format!("unknown ELF class {c}")),
    };
    info.map_err(|e| format!("malformed ELF: {e}"))
}

fn parse_as<'d, H, R>(data: R) -> Result<ElfInfo, String>
where
    H: FileHeader<Endian = Endianness>,
    R: ReadRef<'d>,
{
    let e = |x: object::read::Error| x.to_string();
    let h = H::parse(data).map_err(e)?;
    let endian = h.endian().map_err(e)?;
    let mut info = ElfInfo {
        class64: h.is_class_64(),
        big_endian: h.is_big_endian(),
        machine: h.e_machine(endian).0,
        ..ElfInfo::default()
    };
    for ph in h.program_headers(endian, data).map_err(e)? {
        if let Some(i) = ph.interpreter(endian, data).map_err(e)? {
            info.interp = Some(i.to_vec());
        }
    }
    let sections = h.sections(endian, data).map_err(e)?;
    let dynamic = sections.dynamic_table(endian, data).map_err(e)?;
    // Each string read costs up to 4 KiB (the `object` crate's bound on one string),
    // so a hostile dynamic table of many entries at distinct offsets is cut short.
    let mut strings = 0;
    for d in dynamic.iter() {
        if matches!(
            d.tag,
            elf::DT_NEEDED | elf::DT_RPATH | elf::DT_RUNPATH | elf::DT_SONAME
        ) {
            strings += 1;
            if strings > MAX_DYNAMIC_STRINGS {
                return Err(format!("more than {MAX_DYNAMIC_STRINGS} dynamic strings"));
            }
        }
        let slot = match d.tag {
            elf::DT_NEEDED => {
                info.needed.push(dynamic.string(d).map_err(e)?.to_vec());
                continue;
            }
            elf::DT_RPATH => &mut info.rpath,
            elf::DT_RUNPATH => &mut info.runpath,
            elf::DT_SONAME => &mut info.soname,
            _ => continue,
        };
        *slot = Some(dynamic.string(d).map_err(e)?.to_vec());
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_test_binary_itself() {
        // The test binary is a dynamically linked ELF file of the host's machine.
        let exe = std::env::current_exe().unwrap();
        let info = parse(std::fs::File::open(exe).unwrap()).unwrap();
        assert!(info.class64);
        assert!(
            info.needed.iter().any(|n| n.starts_with(b"libc.so")),
            "{info:?}"
        );
        assert!(
            info.interp
                .as_deref()
                .is_some_and(|i| i.ends_with(b".so.2")),
            "{info:?}"
        );
        assert!(parse(std::io::Cursor::new(b"\x7fELF\x03".to_vec())).is_err());
        assert!(parse(std::io::Cursor::new(b"\x7fELF\x02\x01\x01".to_vec())).is_err());
    }
}
