//! The squashed layer's emission: the overlay plan streamed through the codec into a
//! staged blob (or, for a dry run and `bench`, only counted), the plain tar hashed on the
//! way for its diff_id.

use crate::digest::{Digest, Meter};
use crate::error::Result;
use crate::image::writer::BlobWriter;
use crate::layer::codec::{Compression, EncodeOptions, Encoder};
use crate::layer::overlay;
use crate::layer::writer::{EmitOptions, Spool, emit};
use std::io::Write;

/// Compressed and uncompressed totals.
#[derive(Clone, Copy, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Sizes {
    /// Stored (compressed) bytes.
    pub compressed: u64,
    /// Plain tar bytes.
    pub uncompressed: u64,
}

/// Where the squashed layer goes: a staged blob, or (dry run) only a digest and size.
pub enum LayerOut {
    /// A blob written into staging.
    Blob(BlobWriter),
    /// Only counted and hashed.
    Dry(Meter<std::io::Sink>),
}

impl Write for LayerOut {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            LayerOut::Blob(w) => w.write(buf),
            LayerOut::Dry(w) => w.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            LayerOut::Blob(w) => w.flush(),
            LayerOut::Dry(w) => w.flush(),
        }
    }
}

impl LayerOut {
    /// The blob's digest and size.
    pub fn finish(self) -> Result<(Digest, u64)> {
        match self {
            LayerOut::Blob(w) => w.finish(),
            LayerOut::Dry(m) => {
                let (_, d, n) = m.finish();
                Ok((d, n))
            }
        }
    }
}

/// The squashed layer's codec: the one asked for, else the input's top layer's, and
/// gzip when that is plain tar (output is never silently uncompressed).
pub fn squashed_codec(want: Option<Compression>, top: Option<Compression>) -> Compression {
    want.unwrap_or(match top {
        Some(Compression::None) | None => Compression::Gzip,
        Some(c) => c,
    })
}

/// The squashed layer as written.
pub struct Written {
    /// What was emitted.
    pub stats: crate::layer::writer::EmitStats,
    /// The plain tar's digest.
    pub diff_id: Digest,
    /// The plain tar's size.
    pub tar_size: u64,
    /// The blob's digest.
    pub digest: Digest,
    /// The blob's size.
    pub size: u64,
}

/// Emits `plan` through the codec into `out`, hashing the plain tar for the diff_id.
pub fn write_layer(
    plan: &[overlay::Emit],
    spools: &[Spool],
    enc: EncodeOptions,
    timestamp: Option<u64>,
    progress: &crate::progress::Progress,
    upper_bound: u64,
    out: LayerOut,
) -> Result<Written> {
    let name = format!("write {}", enc.compression.name());
    let mut meter = Meter::new(Encoder::new(out, enc)?);
    let bar = progress.bar(&name, upper_bound);
    let stats = emit(
        plan,
        spools,
        EmitOptions {
            clamp_mtime: timestamp,
        },
        &mut bar.wrap_write(&mut meter),
    )?;
    drop(bar);
    meter.flush()?;
    let (enc, diff_id, tar_size) = meter.finish();
    let (digest, size) = enc.finish()?.finish()?;
    Ok(Written {
        stats,
        diff_id,
        tar_size,
        digest,
        size,
    })
}
