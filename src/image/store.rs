//! Random access to the files of a source: a directory, or a tar archive indexed once
//! by offset (an OCI archive, a `docker save` archive, or stdin spooled to a temporary
//! file). Members are read in place with positional reads, so layers can be read in
//! parallel without extracting anything.

use crate::error::{Error, Result};
use crate::layer::headers::{WalkError, Walker};
use crate::layer::path;
pub use crate::section::Section;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Symlink hops followed inside an archive before giving up.
const MAX_LINK_HOPS: usize = 16;

/// Where a source's files live.
pub enum Store {
    /// An unpacked directory.
    Dir(PathBuf),
    /// A tar archive with its member index.
    Tar(TarStore),
}

/// A tar archive's regular files by normalised name.
pub struct TarStore {
    file: Arc<File>,
    members: BTreeMap<String, Member>,
}

#[derive(Clone, Debug)]
enum Member {
    File { offset: u64, size: u64 },
    Symlink(Vec<u8>),
    Hardlink(Vec<u8>),
    Dir,
}

impl TarStore {
    /// Indexes the archive at `path` (named `what` in errors).
    pub fn index(mut file: File, what: &str) -> Result<TarStore> {
        let len = file.metadata()?.len();
        io::Seek::rewind(&mut file)?;
        let corrupt = |e: io::Error| Error::corrupt(what, e);
        // The strict walker, as for layers: the members ocislim reads are the ones
        // `docker load` (Go's archive/tar) reads.
        let mut walker = Walker::new_seekable(io::BufReader::new(&file));
        let mut members = BTreeMap::new();
        loop {
            let entry = match walker.next_entry() {
                Ok(Some(e)) => e,
                Ok(None) => break,
                Err(WalkError::Io(e)) => return Err(corrupt(e)),
                Err(WalkError::Refused(why)) => return Err(Error::corrupt(what, why)),
            };
            if entry.is_global() {
                continue;
            }
            let raw = &entry.path;
            let Some(name) = path::normalize(raw) else {
                return Err(Error::UnsafePath {
                    layer: what.to_string(),
                    path: path::escape(raw),
                });
            };
            let Ok(name) = String::from_utf8(name) else {
                continue; // no image file has a non-UTF-8 name; it cannot be referenced
            };
            let kind = entry.kind;
            let member = if kind.is_symlink() {
                Member::Symlink(entry.link)
            } else if kind.is_hard_link() {
                Member::Hardlink(entry.link)
            } else if kind.is_dir() {
                Member::Dir
            } else {
                let (offset, size) = (entry.data_offset, entry.size);
                if offset + size > len {
                    return Err(Error::corrupt(
                        what,
                        format!("truncated: member {name} ends past the end of the archive"),
                    ));
                }
                Member::File { offset, size }
            };
            members.insert(name, member);
        }
        if members.is_empty() {
            return Err(Error::corrupt(what, "empty or not a tar archive"));
        }
        Ok(TarStore {
            file: Arc::new(file),
            members,
        })
    }

    fn resolve(&self, name: &str) -> Option<(u64, u64)> {
        let mut name = name.to_string();
        for _ in 0..MAX_LINK_HOPS {
            match self.members.get(&name)? {
                Member::File { offset, size } => return Some((*offset, *size)),
                Member::Hardlink(target) => {
                    name = String::from_utf8(path::normalize(target)?).ok()?;
                }
                Member::Symlink(target) => {
                    // `docker save` links duplicate layers as `../<id>/layer.tar`.
                    let dir = name.rsplit_once('/').map_or("", |(d, _)| d);
                    let joined = if target.starts_with(b"/") {
                        target.clone()
                    } else {
                        [dir.as_bytes(), b"/", target].concat()
                    };
                    name = String::from_utf8(path::normalize(&joined)?).ok()?;
                }
                Member::Dir => return None,
            }
        }
        None
    }
}

impl Store {
    /// Whether `name` exists as a readable file.
    pub fn exists(&self, name: &str) -> bool {
        match self {
            Store::Dir(root) => root.join(name).is_file(),
            Store::Tar(t) => t.resolve(name).is_some(),
        }
    }

    /// Opens `name` (a relative path inside the source) with its size.
    pub fn open(&self, name: &str) -> Result<(Box<dyn Read + Send>, u64)> {
        let (file, offset, size) = self.locate(name)?;
        Ok((Box::new(Section::new(file, offset, offset + size)), size))
    }

    /// Where `name`'s bytes are: the file holding them, their offset and their size,
    /// for positional reads in place.
    pub fn locate(&self, name: &str) -> Result<(Arc<File>, u64, u64)> {
        let clean = path::normalize(name.as_bytes())
            .and_then(|p| String::from_utf8(p).ok())
            .filter(|p| !p.is_empty())
            .ok_or_else(|| Error::UnsafePath {
                layer: "a manifest reference".into(),
                path: path::escape(name.as_bytes()),
            })?;
        match self {
            Store::Dir(root) => {
                let path = root.join(&clean);
                let file = fs_err::File::open(&path).map_err(|e| {
                    if e.kind() == io::ErrorKind::NotFound {
                        Error::MissingBlob {
                            blob: clean.clone(),
                            source_name: root.display().to_string(),
                        }
                    } else {
                        e.into()
                    }
                })?;
                let size = file.metadata()?.len();
                Ok((Arc::new(file.into_parts().0), 0, size))
            }
            Store::Tar(t) => {
                let (offset, size) = t.resolve(&clean).ok_or_else(|| Error::MissingBlob {
                    blob: clean.clone(),
                    source_name: "the archive".into(),
                })?;
                Ok((t.file.clone(), offset, size))
            }
        }
    }

    /// Reads a small file (JSON documents) whole, refusing anything over `limit` bytes.
    pub fn read_small(&self, name: &str, limit: u64) -> Result<Vec<u8>> {
        let (reader, size) = self.open(name)?;
        if size > limit {
            return Err(Error::corrupt(
                name,
                format!("{size} bytes is too large for a JSON document"),
            ));
        }
        let mut buf = Vec::with_capacity(size as usize);
        reader.take(limit).read_to_end(&mut buf)?;
        Ok(buf)
    }
}

/// Opens `path` as a store: a directory as itself, a file as an indexed tar.
pub fn open_path(path: &Path) -> Result<Store> {
    if let Err(e) = std::fs::metadata(path)
        && e.kind() == io::ErrorKind::NotFound
    {
        return Err(no_such_file(path));
    }
    let meta = fs_err::metadata(path)?;
    if meta.is_dir() {
        return Ok(Store::Dir(path.to_path_buf()));
    }
    let what = path.display().to_string();
    let file = decompressed(fs_err::File::open(path)?.into_parts().0, &what)?;
    Ok(Store::Tar(TarStore::index(file, &what)?))
}

/// A path that names nothing, in a person's words: one that reads as an image name
/// (`lab/debian:bookworm`) was likely meant for the engine or a registry.
fn no_such_file(path: &Path) -> Error {
    use std::os::unix::ffi::OsStrExt;
    let p = crate::escape::escape(path.as_os_str().as_bytes());
    let looks_like_image = !path.is_absolute()
        && !p.starts_with('.')
        && p.contains(':')
        && crate::image::media::reference_problem(&p).is_none();
    let hint = if looks_like_image {
        format!(
            "; an image in the Docker engine? write docker-daemon:{p} (a registry: docker://HOST/{p})"
        )
    } else {
        String::new()
    };
    Error::Io(io::Error::new(
        io::ErrorKind::NotFound,
        format!("no such file: {p}{hint}"),
    ))
}

/// xz's stream magic (the `.xz` format, section 2.1.1.1).
const XZ_MAGIC: &[u8] = &[0xfd, b'7', b'z', b'X', b'Z', 0];

/// An archive compressed as a whole (`docker save | xz`, skopeo's `.tar.xz` fixtures,
/// `.tar.gz`, `.tar.zst`), decompressed into an anonymous temporary file, as skopeo
/// and `docker load` read it; any other file as it is. The codec is sniffed from the
/// content, never the name. The members are then read by the same strict walker.
fn decompressed(mut file: File, what: &str) -> Result<File> {
    io::Seek::rewind(&mut file)?; // a spool of standard input stands at its end
    let mut head = [0u8; 6];
    let n = file.read_at(&mut head, 0)?;
    let head = &head[..n];
    let input = io::BufReader::new(&file);
    let mut decoder: Box<dyn Read + '_> = if head.starts_with(XZ_MAGIC) {
        Box::new(liblzma::read::XzDecoder::new_multi_decoder(input))
    } else {
        match crate::layer::codec::Decoder::sniff(input)? {
            (crate::layer::codec::Compression::None, _) => return Ok(file),
            (_, d) => Box::new(d),
        }
    };
    let mut out = tempfile::tempfile()?;
    io::copy(&mut decoder, &mut out)
        .map_err(|e| Error::corrupt(what, format!("the compressed archive cannot be read: {e}")))?;
    Ok(out)
}

/// Spools standard input to an anonymous temporary file and indexes it.
pub fn open_stdin(progress: &crate::progress::Progress) -> Result<Store> {
    if io::IsTerminal::is_terminal(&io::stdin()) {
        return Err(Error::Usage(
            "refusing to read an image from a terminal; pipe one in (docker save IMAGE | ocislim ... -)".into(),
        ));
    }
    let mut file = tempfile::tempfile()?;
    // Its size is unknown until it ends: the bar counts bytes and rate.
    let mut input = progress.reader("read stdin", 0, io::stdin().lock());
    let n = io::copy(&mut input, &mut file)?;
    drop(input);
    if n == 0 {
        return Err(Error::corrupt("standard input", "empty"));
    }
    let file = decompressed(file, "standard input")?;
    Ok(Store::Tar(TarStore::index(file, "standard input")?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn archive(build: impl FnOnce(&mut tar::Builder<&mut File>)) -> File {
        let mut f = tempfile::tempfile().unwrap();
        let mut b = tar::Builder::new(&mut f);
        build(&mut b);
        b.finish().unwrap();
        drop(b);
        f
    }

    fn add(b: &mut tar::Builder<&mut File>, name: &str, data: &[u8]) {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, name, data).unwrap();
    }

    #[test]
    fn follows_docker_save_layer_symlinks() {
        let f = archive(|b| {
            add(b, "./aaa/layer.tar", b"layer bytes");
            let mut h = tar::Header::new_ustar();
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            h.set_mode(0o777);
            b.append_link(&mut h, "bbb/layer.tar", "../aaa/layer.tar")
                .unwrap();
        });
        let store = Store::Tar(TarStore::index(f, "t").unwrap());
        let (mut r, size) = store.open("bbb/layer.tar").unwrap();
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        assert_eq!((s.as_str(), size), ("layer bytes", 11));
        assert!(matches!(store.open("nope"), Err(Error::MissingBlob { .. })));
        assert!(matches!(
            store.open("../aaa"),
            Err(Error::UnsafePath { .. })
        ));
    }

    #[test]
    fn truncated_archive_is_refused() {
        let mut f = archive(|b| add(b, "big", &[7u8; 5000]));
        f.set_len(2048).unwrap();
        f.flush().unwrap();
        let err = TarStore::index(f, "x.tar").err().unwrap();
        assert!(err.to_string().contains("x.tar"), "{err}");
    }
}
