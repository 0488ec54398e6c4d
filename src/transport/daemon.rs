//! The Docker engine transport, `docker-daemon:NAME[:TAG]`: the Engine API on
//! `$DOCKER_HOST` (default `/var/run/docker.sock`) through `bollard`.
//!
//! A source is `GET /images/NAME/get` (what `docker save` reads), spooled to an anonymous
//! temporary file and indexed like any docker archive: the reader needs random access.
//! A sink is `POST /images/load` (what `docker load` sends), with the archive streamed
//! into the request as it is written: no archive is kept anywhere.

use crate::error::{Error, Result};
use bollard::Docker;
use bytes::Bytes;
use futures_util::StreamExt;
use std::fs::File;
use std::io::{self, Write};

fn engine(what: &str) -> Result<Docker> {
    let fail = |e: bollard::errors::Error| Error::Remote {
        what: what.to_string(),
        reason: format!("the Docker engine: {e}"),
    };
    let docker = Docker::connect_with_defaults().map_err(fail)?;
    // Older engines (Debian 12's 20.10 speaks API 1.41) refuse a newer client version.
    super::block_on(docker.negotiate_version())?.map_err(fail)
}

/// Whether the engine answers (before any image byte is read for it).
pub fn ping() -> Result<()> {
    engine("docker-daemon:").map(drop)
}

/// `docker save NAME`, into an anonymous temporary file. A NAME without a tag or digest
/// means `NAME:latest`, as `docker run NAME` reads it (`docker save NAME` would save
/// every tag of the repository).
pub fn export(name: &str) -> Result<File> {
    let what = format!("docker-daemon:{name}");
    let last = name.rsplit('/').next().unwrap_or(name);
    let latest;
    let name = if last.contains(':') || last.contains('@') {
        name
    } else {
        latest = format!("{name}:latest");
        &latest
    };
    let docker = engine(&what)?;
    let mut file = tempfile::tempfile()?;
    {
        let mut w = io::BufWriter::with_capacity(1 << 20, &mut file);
        super::block_on(async {
            let mut stream = docker.export_image(name);
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| Error::Remote {
                    what: what.clone(),
                    reason: e.to_string(),
                })?;
                w.write_all(&chunk)?;
            }
            Ok::<_, Error>(())
        })??;
        w.flush()?;
    }
    Ok(file)
}

/// Writes into a channel feeding the request body, in 1 MiB pieces.
struct ChannelWriter {
    buf: Vec<u8>,
    tx: tokio::sync::mpsc::Sender<io::Result<Bytes>>,
}

impl ChannelWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let piece = Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(1 << 20),
        ));
        self.tx
            .blocking_send(Ok(piece))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the engine stopped reading"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= 1 << 20 {
            self.send()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// `docker load`: `write` writes a docker archive, which streams into the engine. An
/// archive cut short by an error is refused by the engine, which loads nothing from it.
pub fn load(what: &str, write: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    let docker = engine(what)?;
    let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(4);
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let remote = |reason: String| Error::Remote {
        what: what.to_string(),
        reason,
    };
    let rt = super::runtime()?;
    let task = rt.spawn(async move {
        let options = bollard::query_parameters::ImportImageOptionsBuilder::default()
            .quiet(true)
            .build();
        let mut replies = std::pin::pin!(docker.import_image_stream(options, body, None));
        let mut said = Vec::new();
        while let Some(reply) = replies.next().await {
            match reply {
                Err(e) => return Err(e.to_string()),
                Ok(info) => {
                    if let Some(e) = info.error_detail.and_then(|d| d.message) {
                        return Err(e);
                    }
                    said.extend(info.stream);
                }
            }
        }
        Ok(said.concat())
    });
    let mut w = ChannelWriter {
        buf: Vec::with_capacity(1 << 20),
        tx,
    };
    let written = write(&mut w).and_then(|()| w.flush().map_err(Error::from));
    if let Err(e) = &written {
        // The engine must not take a partial archive as a whole one.
        let _ = w.tx.blocking_send(Err(io::Error::other(e.to_string())));
    }
    drop(w);
    let reply = rt.block_on(task).map_err(|e| remote(e.to_string()))?;
    match (written, reply) {
        (Err(e), _) => Err(e),
        (Ok(()), Err(e)) => Err(remote(e)),
        (Ok(()), Ok(_)) => Ok(()),
    }
}
