//! What an ELF file asks of the dynamic loader, read with the `object` crate: its
//! interpreter (`PT_INTERP`), the libraries it needs (`DT_NEEDED`), where to look
//! (`DT_RPATH`, `DT_RUNPATH`), its own name (`DT_SONAME`), and the class and machine a
//! library must match to satisfy it. Only the file header, the program headers and what
//! `PT_INTERP` and `PT_DYNAMIC` point at are read, as the kernel and ld.so read them:
//! section headers may be stripped and are never consulted.

use object::elf::{self, FileHeader32, FileHeader64};
use object::read::elf::{Dyn, FileHeader, ProgramHeader};
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

/// Longest interpreter path read (Linux's `PATH_MAX`; the kernel refuses longer).
const MAX_INTERP: u64 = 4096;
/// Longest dynamic string read (the `object` crate's own bound on one string).
const MAX_STRING: u64 = 4096;

// Long: one bounded pass over an ELF file's program headers and dynamic segment, as
// the loader reads them; each read's bounds check stays beside the read.
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
    // Only program headers, as the kernel and ld.so read a file: section headers may be
    // stripped (`sstrip`, packers) and mean nothing to the loader.
    let headers = h.program_headers(endian, data).map_err(e)?;
    let first = |kind: elf::ProgramType| headers.iter().find(|ph| ph.p_type(endian) == kind);
    // The kernel takes the first PT_INTERP; later ones are never read.
    if let Some(ph) = first(elf::PT_INTERP) {
        let len = ph.p_filesz(endian).into().min(MAX_INTERP);
        let bytes = data
            .read_bytes_at(ph.p_offset(endian).into(), len)
            .map_err(|()| "PT_INTERP lies outside the file".to_string())?;
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        info.interp = Some(bytes[..end].to_vec());
    }
    let Some(dynamic) = first(elf::PT_DYNAMIC) else {
        return Ok(info);
    };
    let entries = dynamic
        .dynamic(endian, data)
        .map_err(e)?
        .unwrap_or_default();
    let tags = || {
        entries
            .iter()
            .map(|d| (d.tag(endian), d.val(endian)))
            .take_while(|&(tag, _)| tag != elf::DT_NULL)
    };
    let value = |want: elf::DynamicTag| tags().find(|&(t, _)| t == want).map(|(_, v)| v);
    // DT_STRTAB is an address: the PT_LOAD segment holding it gives its file offset.
    let (Some(strtab), Some(strsz)) = (value(elf::DT_STRTAB), value(elf::DT_STRSZ)) else {
        return Ok(info);
    };
    let table = headers
        .iter()
        .filter(|ph| ph.p_type(endian) == elf::PT_LOAD)
        .find_map(|ph| {
            let (vaddr, filesz) = (ph.p_vaddr(endian).into(), ph.p_filesz(endian).into());
            let at = strtab.checked_sub(vaddr).filter(|at| *at < filesz)?;
            let offset = ph.p_offset(endian).into().checked_add(at)?;
            Some((offset, strsz.min(filesz - at)))
        })
        .ok_or("DT_STRTAB lies in no loaded segment")?;
    let string = |at: u64| -> Result<Vec<u8>, String> {
        let bad = || format!("a dynamic string at {at} lies outside DT_STRTAB");
        let left = table.1.checked_sub(at).filter(|l| *l > 0).ok_or_else(bad)?;
        let bytes = table
            .0
            .checked_add(at)
            .and_then(|offset| data.read_bytes_at(offset, left.min(MAX_STRING)).ok())
            .ok_or_else(bad)?;
        let end = bytes.iter().position(|&b| b == 0).ok_or_else(bad)?;
        Ok(bytes[..end].to_vec())
    };
    // Each string read costs up to 4 KiB, so a hostile dynamic table of many entries at
    // distinct offsets is cut short.
    let mut strings = 0;
    for (tag, val) in tags() {
        let slot = match tag {
            elf::DT_NEEDED | elf::DT_RPATH | elf::DT_RUNPATH | elf::DT_SONAME => {
                strings += 1;
                if strings > MAX_DYNAMIC_STRINGS {
                    return Err(format!("more than {MAX_DYNAMIC_STRINGS} dynamic strings"));
                }
                match tag {
                    elf::DT_NEEDED => {
                        info.needed.push(string(val)?);
                        continue;
                    }
                    elf::DT_RPATH => &mut info.rpath,
                    elf::DT_RUNPATH => &mut info.runpath,
                    _ => &mut info.soname,
                }
            }
            _ => continue,
        };
        *slot = Some(string(val)?);
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test binary with its section headers stripped as `sstrip` leaves them
    /// (`e_shoff = e_shnum = e_shstrndx = 0`): the loader reads it all the same.
    #[test]
    fn section_headers_stripped_change_nothing() {
        let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let want = parse(std::io::Cursor::new(exe.clone())).unwrap();
        let mut stripped = exe;
        stripped[0x28..0x30].fill(0); // e_shoff (ELF64)
        stripped[0x3c..0x40].fill(0); // e_shnum, e_shstrndx
        let got = parse(std::io::Cursor::new(stripped)).unwrap();
        assert_eq!(want, got);
        assert!(!got.needed.is_empty());
    }

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
