//! Layer codecs: gzip (any number of members), zstd and plain tar, and their media types.
//!
//! The codec of an input blob is sniffed from its magic bytes, because `docker save`
//! archives carry no media types and some writers label blobs wrongly. Media types are
//! still checked, so a blob that is not a layer is never parsed as a tar
//! (image-spec `layer.md`, `manifest.md`).

use crate::error::{Error, Result};
use std::io::{self, BufRead, Read, Write};

/// OCI layer, plain tar.
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// OCI layer, gzip.
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// OCI layer, zstd.
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// Docker layer, gzip.
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Docker layer, plain tar (rare).
pub const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
/// Deprecated OCI and Docker "foreign"/non-distributable layers: still tars.
const NONDISTRIBUTABLE_LAYERS: &[&str] = &[
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
];

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

/// Default gzip level (what `gzip`, Docker and pigz use).
pub const DEFAULT_GZIP_LEVEL: u32 = 6;
/// Default zstd level (zstd's own default).
pub const DEFAULT_ZSTD_LEVEL: i32 = 3;

/// How a layer blob is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, clap::ValueEnum)]
pub enum Compression {
    /// gzip (RFC 1952), possibly several members.
    Gzip,
    /// zstd frames.
    Zstd,
    /// A plain tar.
    None,
}

impl Compression {
    /// Checks a `--level` for this codec: gzip takes 0-9, zstd 1-22 (what `zstd --ultra`
    /// takes); no compression ignores it. Out of range is an error, not a clamp.
    pub fn check_level(self, level: i32) -> Result<()> {
        let (low, high) = match self {
            Compression::Gzip => (0, 9),
            Compression::Zstd => (1, 22),
            Compression::None => return Ok(()),
        };
        if (low..=high).contains(&level) {
            Ok(())
        } else {
            Err(Error::Usage(format!(
                "--level {level}: {} levels are {low}-{high}",
                self.name()
            )))
        }
    }

    /// Sniffs the codec from the first bytes of a blob.
    pub fn sniff(head: &[u8]) -> Compression {
        if head.starts_with(GZIP_MAGIC) {
            Compression::Gzip
        } else if head.starts_with(ZSTD_MAGIC) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    /// The codec a layer media type promises, or `None` if it is not a layer media type.
    pub fn from_media_type(media_type: &str) -> Option<Compression> {
        Some(match media_type {
            OCI_LAYER_TAR | DOCKER_LAYER_TAR => Compression::None,
            OCI_LAYER_GZIP | DOCKER_LAYER_GZIP => Compression::Gzip,
            OCI_LAYER_ZSTD => Compression::Zstd,
            m if NONDISTRIBUTABLE_LAYERS.contains(&m) => {
                if m.ends_with("gzip") {
                    Compression::Gzip
                } else if m.ends_with("zstd") {
                    Compression::Zstd
                } else {
                    Compression::None
                }
            }
            _ => return None,
        })
    }

    /// The layer media type for this codec in the OCI or Docker family. Docker has no
    /// zstd type, so zstd is always OCI.
    pub fn media_type(self, docker_family: bool) -> &'static str {
        match (self, docker_family) {
            (Compression::Gzip, true) => DOCKER_LAYER_GZIP,
            (Compression::Gzip, false) => OCI_LAYER_GZIP,
            (Compression::Zstd, _) => OCI_LAYER_ZSTD,
            (Compression::None, true) => DOCKER_LAYER_TAR,
            (Compression::None, false) => OCI_LAYER_TAR,
        }
    }

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::None => "none",
        }
    }
}

/// Encoder settings for output layers.
#[derive(Clone, Copy, Debug)]
pub struct EncodeOptions {
    /// The codec.
    pub compression: Compression,
    /// Level; `None` for the codec's default.
    pub level: Option<i32>,
    /// Worker threads for gzip and zstd (zstd always gets at least 1: its output with
    /// zero workers differs from its output with any number of workers). The output
    /// bytes never depend on it.
    pub threads: u32,
}

/// A decompressing reader over a buffered blob reader.
pub enum Decoder<R: BufRead> {
    /// gzip, every member.
    Gzip(Box<flate2::bufread::MultiGzDecoder<R>>),
    /// zstd, every frame.
    Zstd(zstd::stream::read::Decoder<'static, R>),
    /// Plain tar.
    Plain(R),
}

/// The largest zstd window accepted: 2^31 bytes, zstd's own limit on 64-bit targets
/// (`ZSTD_WINDOWLOG_MAX_64`), what `zstd --long=31` writes.
pub const ZSTD_WINDOW_LOG_MAX: u32 = 31;

impl<R: BufRead> Decoder<R> {
    /// Sniffs the codec from `inner`'s first bytes and wraps it.
    pub fn sniff(mut inner: R) -> Result<(Compression, Decoder<R>)> {
        let head = inner.fill_buf()?;
        let compression = Compression::sniff(head);
        let decoder = match compression {
            Compression::Gzip => {
                Decoder::Gzip(Box::new(flate2::bufread::MultiGzDecoder::new(inner)))
            }
            Compression::Zstd => {
                let mut d = zstd::stream::read::Decoder::with_buffer(inner)?;
                // zstd refuses windows over 128 MiB unless told; `zstd --long=31` frames
                // need up to 2 GiB, zstd's own ceiling. The window is allocated as the
                // frame declares it but filled only as far as the layer's data reaches.
                d.window_log_max(ZSTD_WINDOW_LOG_MAX)?;
                Decoder::Zstd(d)
            }
            Compression::None => Decoder::Plain(inner),
        };
        Ok((compression, decoder))
    }

    /// The underlying reader, to drain what the codec did not consume.
    pub fn into_inner(self) -> R {
        match self {
            Decoder::Gzip(d) => d.into_inner(),
            Decoder::Zstd(d) => d.finish(),
            Decoder::Plain(r) => r,
        }
    }
}

impl<R: BufRead> Read for Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoder::Gzip(d) => d.read(buf),
            Decoder::Zstd(d) => d.read(buf),
            Decoder::Plain(r) => r.read(buf),
        }
    }
}

/// A compressing writer.
pub enum Encoder<W: Write> {
    /// gzip, one member, compressed in parallel chunks.
    Gzip(super::pgzip::ParGzEncoder<W>),
    /// zstd.
    Zstd(zstd::stream::write::Encoder<'static, W>),
    /// No compression.
    Plain(W),
}

impl<W: Write> Encoder<W> {
    /// Starts an encoder writing into `inner`.
    pub fn new(inner: W, opts: EncodeOptions) -> Result<Encoder<W>> {
        if let Some(level) = opts.level {
            opts.compression.check_level(level)?;
        }
        Ok(match opts.compression {
            Compression::Gzip => {
                let level = opts.level.map_or(DEFAULT_GZIP_LEVEL, |l| l as u32);
                // mtime 0, no file name and fixed chunks: the bytes depend only on the
                // input and the level.
                Encoder::Gzip(super::pgzip::ParGzEncoder::new(
                    inner,
                    level,
                    opts.threads.max(1) as usize,
                )?)
            }
            Compression::Zstd => {
                let level = opts.level.unwrap_or(DEFAULT_ZSTD_LEVEL);
                let mut e = zstd::stream::write::Encoder::new(inner, level)?;
                e.multithread(opts.threads.max(1))?;
                e.include_checksum(true)?;
                Encoder::Zstd(e)
            }
            Compression::None => Encoder::Plain(inner),
        })
    }

    /// Flushes the codec's trailer and returns the inner writer.
    pub fn finish(self) -> io::Result<W> {
        match self {
            Encoder::Gzip(e) => e.finish(),
            Encoder::Zstd(e) => e.finish(),
            Encoder::Plain(w) => Ok(w),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Gzip(e) => e.write(buf),
            Encoder::Zstd(e) => e.write(buf),
            Encoder::Plain(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Gzip(e) => e.flush(),
            Encoder::Zstd(e) => e.flush(),
            Encoder::Plain(w) => w.flush(),
        }
    }
}

/// Checks that a descriptor's media type names a layer, returning its promised codec.
/// A known OCI type that is not a layer (a config, a manifest, the empty JSON blob of an
/// artifact) is named as such, so the error says what was found.
pub fn check_layer_media_type(media_type: &str, what: &str) -> Result<Compression> {
    use oci_spec::image::MediaType;
    Compression::from_media_type(media_type).ok_or_else(|| {
        let kind = match MediaType::from(media_type) {
            MediaType::Other(_) => String::new(),
            known => format!(" (oci-spec knows it as {known:?}, not a layer)"),
        };
        Error::UnsupportedMediaType {
            media_type: media_type.to_string(),
            what: format!("{what}{kind}"),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniff_by_magic() {
        for (head, c) in [
            (&[0x1f, 0x8b, 8, 0][..], Compression::Gzip),
            (&[0x28, 0xb5, 0x2f, 0xfd, 0][..], Compression::Zstd),
            (b"etc/\0\0\0", Compression::None),
            (&[][..], Compression::None),
        ] {
            assert_eq!(Compression::sniff(head), c);
        }
    }

    /// Our constants against oci-spec's, so a typo cannot hide in both reader and writer.
    #[test]
    fn media_types_agree_with_oci_spec() {
        use oci_spec::image::MediaType;
        for (ours, theirs) in [
            (OCI_LAYER_TAR, MediaType::ImageLayer),
            (OCI_LAYER_GZIP, MediaType::ImageLayerGzip),
            (OCI_LAYER_ZSTD, MediaType::ImageLayerZstd),
            (crate::image::media::OCI_MANIFEST, MediaType::ImageManifest),
            (crate::image::media::OCI_INDEX, MediaType::ImageIndex),
            (crate::image::media::OCI_CONFIG, MediaType::ImageConfig),
        ] {
            assert_eq!(ours, theirs.to_string());
        }
        let err = check_layer_media_type("application/vnd.oci.image.config.v1+json", "layer 1")
            .unwrap_err();
        assert!(err.to_string().contains("ImageConfig"), "{err}");
    }

    #[test]
    fn media_types_round_trip() {
        for c in [Compression::Gzip, Compression::Zstd, Compression::None] {
            for docker in [false, true] {
                assert_eq!(Compression::from_media_type(c.media_type(docker)), Some(c));
            }
        }
        assert_eq!(
            Compression::from_media_type("application/vnd.in-toto+json"),
            None
        );
    }

    fn round_trip(c: Compression, data: &[u8], threads: u32) -> Vec<u8> {
        let opts = EncodeOptions {
            compression: c,
            level: None,
            threads,
        };
        let mut e = Encoder::new(Vec::new(), opts).unwrap();
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn encoders_decode_back_and_are_deterministic() {
        let data: Vec<u8> = (0..200_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        for c in [Compression::Gzip, Compression::Zstd, Compression::None] {
            let a = round_trip(c, &data, 1);
            assert_eq!(
                a,
                round_trip(c, &data, 2),
                "{c:?} output depends on threads"
            );
            let (sniffed, mut d) = Decoder::sniff(&a[..]).unwrap();
            assert_eq!(sniffed, c);
            let mut out = Vec::new();
            d.read_to_end(&mut out).unwrap();
            assert_eq!(out, data);
        }
    }

    #[test]
    fn gzip_decoder_reads_every_member() {
        let mut two = round_trip(Compression::Gzip, b"first ", 1);
        two.extend(round_trip(Compression::Gzip, b"second", 1));
        let (_, mut d) = Decoder::sniff(&two[..]).unwrap();
        let mut out = String::new();
        d.read_to_string(&mut out).unwrap();
        assert_eq!(out, "first second");
    }
}
