//! Parallel gzip the way pigz writes it: one gzip member whose deflate stream is cut into
//! fixed-size chunks, each compressed on its own thread with the previous 32 KiB of input
//! as its dictionary and ended with a sync flush, so the pieces join into one stream.
//!
//! The chunk boundaries depend only on the input, never on the thread count, so the bytes
//! are the same for any `--jobs`. A single member matters: some readers (flate2's
//! `GzDecoder` among them) stop after the first one.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use flate2::{Compress, FlushCompress, Status};

/// Input bytes per chunk. Large enough that the dictionary priming (32 KiB of extra match
/// finding) and the sync-flush marker cost under 1% in time and size, small enough that
/// a 10 MiB layer still spreads over several threads.
pub const CHUNK: usize = 1 << 20;
/// Deflate's window: what each chunk may refer back to.
const WINDOW: usize = 32 << 10;

/// One compressed chunk and the CRC-32 of its input.
struct Done {
    deflate: Vec<u8>,
    crc: crc32fast::Hasher,
}

struct Job {
    dict: Vec<u8>,
    data: Vec<u8>,
    last: bool,
    reply: SyncSender<io::Result<Done>>,
}

/// A single-member gzip writer compressing on `threads` threads.
pub struct ParGzEncoder<W: Write> {
    inner: Option<W>,
    level: u32,
    buf: Vec<u8>,
    /// The last `WINDOW` bytes of the chunk before `buf`.
    dict: Vec<u8>,
    jobs: Option<Sender<Job>>,
    workers: Vec<JoinHandle<()>>,
    pending: VecDeque<Receiver<io::Result<Done>>>,
    max_pending: usize,
    crc: crc32fast::Hasher,
    /// Input bytes so far, for the trailer's ISIZE.
    total_in: u64,
}

impl<W: Write> ParGzEncoder<W> {
    /// Starts a gzip member at `level` (0-9), writing its header. With one thread, chunks
    /// are compressed on the caller's thread; the output is the same either way.
    pub fn new(mut inner: W, level: u32, threads: usize) -> io::Result<ParGzEncoder<W>> {
        let level = level.min(9);
        inner.write_all(&gzip_header(level))?;
        let (jobs, workers) = if threads > 1 {
            let (tx, rx) = channel::<Job>();
            let rx = Arc::new(Mutex::new(rx));
            let workers = (0..threads)
                .map(|_| {
                    let rx = Arc::clone(&rx);
                    std::thread::spawn(move || {
                        loop {
                            let job = match rx.lock() {
                                Ok(rx) => rx.recv(),
                                Err(_) => return,
                            };
                            let Ok(job) = job else { return };
                            let done = compress_chunk(&job.dict, &job.data, level, job.last);
                            // The encoder may have been dropped on an error: nobody waits.
                            let _ = job.reply.send(done);
                        }
                    })
                })
                .collect();
            (Some(tx), workers)
        } else {
            (None, Vec::new())
        };
        Ok(ParGzEncoder {
            inner: Some(inner),
            level,
            buf: Vec::with_capacity(CHUNK),
            dict: Vec::new(),
            jobs,
            workers,
            pending: VecDeque::new(),
            // One chunk in work and one queued per thread, and the oldest being written:
            // about 3 MiB per thread. (4 per thread measured no faster.)
            max_pending: 2 * threads.max(1) + 2,
            crc: crc32fast::Hasher::new(),
            total_in: 0,
        })
    }

    fn inner(&mut self) -> &mut W {
        self.inner.as_mut().expect("used after finish")
    }

    /// Hands the buffered chunk to a worker (or compresses it here with one thread).
    fn submit(&mut self, last: bool) -> io::Result<()> {
        let data = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        let next_dict = data[data.len().saturating_sub(WINDOW)..].to_vec();
        let dict = std::mem::replace(&mut self.dict, next_dict);
        let (reply, rx) = sync_channel(1);
        let job = Job {
            dict,
            data,
            last,
            reply,
        };
        match &self.jobs {
            Some(jobs) => jobs
                .send(job)
                .map_err(|_| io::Error::other("a gzip worker thread died"))?,
            None => {
                let done = compress_chunk(&job.dict, &job.data, self.level, job.last);
                let _ = job.reply.send(done);
            }
        }
        self.pending.push_back(rx);
        while self.pending.len() > self.max_pending {
            self.collect_one()?;
        }
        Ok(())
    }

    /// Writes the oldest chunk once it is compressed.
    fn collect_one(&mut self) -> io::Result<()> {
        let Some(rx) = self.pending.pop_front() else {
            return Ok(());
        };
        let done = rx
            .recv()
            .map_err(|_| io::Error::other("a gzip worker thread died"))??;
        self.crc.combine(&done.crc);
        self.inner().write_all(&done.deflate)
    }

    /// Compresses what is left, writes the trailer and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.submit(true)?;
        while !self.pending.is_empty() {
            self.collect_one()?;
        }
        let crc = std::mem::replace(&mut self.crc, crc32fast::Hasher::new());
        let len = self.total_in;
        let mut trailer = [0u8; 8];
        trailer[..4].copy_from_slice(&crc.finalize().to_le_bytes());
        trailer[4..].copy_from_slice(&(len as u32).to_le_bytes());
        self.inner().write_all(&trailer)?;
        self.stop_workers();
        Ok(self.inner.take().expect("finished once"))
    }

    fn stop_workers(&mut self) {
        self.jobs = None;
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

impl<W: Write> Drop for ParGzEncoder<W> {
    fn drop(&mut self) {
        self.pending.clear();
        self.stop_workers();
    }
}

impl<W: Write> Write for ParGzEncoder<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        self.total_in += n as u64;
        if self.buf.len() == CHUNK {
            self.submit(false)?;
        }
        Ok(n)
    }

    /// Flushes what is compressed so far; a partial chunk stays buffered so that chunk
    /// boundaries, and so the output, do not depend on when callers flush.
    fn flush(&mut self) -> io::Result<()> {
        self.inner().flush()
    }
}

/// The 10-byte member header: no name, mtime 0, OS "unknown", as flate2's `GzBuilder`
/// writes it with `operating_system(255)`.
fn gzip_header(level: u32) -> [u8; 10] {
    let xfl = match level {
        9 => 2,
        0 | 1 => 4,
        _ => 0,
    };
    [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 255]
}

/// Deflates one chunk as a raw stream primed with `dict`. A chunk that is not the last
/// ends with a sync flush (an empty stored block), byte-aligned and without the final-block
/// bit, so the next chunk's stream continues it.
fn compress_chunk(dict: &[u8], data: &[u8], level: u32, last: bool) -> io::Result<Done> {
    let mut c = Compress::new(flate2::Compression::new(level), false);
    if !dict.is_empty() {
        c.set_dictionary(dict).map_err(io::Error::other)?;
    }
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    let mut out = Vec::with_capacity(data.len() / 2 + 1024);
    loop {
        if out.capacity() - out.len() < 1024 {
            out.reserve(out.capacity().max(4096));
        }
        let consumed = c.total_in() as usize;
        let status = c
            .compress_vec(&data[consumed..], &mut out, flush)
            .map_err(io::Error::other)?;
        let all_in = c.total_in() as usize == data.len();
        match status {
            Status::StreamEnd => break,
            // A sync flush is complete once all input is in and output space is left over.
            _ if !last && all_in && out.len() < out.capacity() => break,
            _ => {}
        }
    }
    let mut crc = crc32fast::Hasher::new();
    crc.update(data);
    Ok(Done { deflate: out, crc })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn sample(len: usize) -> Vec<u8> {
        // Compressible but not trivially: text-like runs with a slowly varying pattern.
        let mut x: u32 = 12345;
        (0..len)
            .map(|i| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                if (x >> 16).is_multiple_of(4) {
                    (x >> 24) as u8
                } else {
                    b"the quick brown fox "[i % 20]
                }
            })
            .collect()
    }

    fn gz(data: &[u8], level: u32, threads: usize, write_size: usize) -> Vec<u8> {
        let mut e = ParGzEncoder::new(Vec::new(), level, threads).unwrap();
        for piece in data.chunks(write_size.max(1)) {
            e.write_all(piece).unwrap();
        }
        e.finish().unwrap()
    }

    #[test]
    fn one_member_that_single_member_readers_read_whole() {
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 777] {
            let data = sample(len);
            for level in [0, 1, 6, 9] {
                let z = gz(&data, level, 3, 100_000);
                // flate2's GzDecoder reads one member only.
                let mut out = Vec::new();
                flate2::read::GzDecoder::new(&z[..])
                    .read_to_end(&mut out)
                    .unwrap();
                assert!(out == data, "len {len} level {level}");
            }
        }
    }

    #[test]
    fn same_bytes_for_any_thread_count_and_write_pattern() {
        let data = sample(5 * CHUNK / 2);
        let one = gz(&data, 6, 1, CHUNK);
        for (threads, write) in [(2, 4096), (3, 65_537), (8, 3 * CHUNK)] {
            assert!(one == gz(&data, 6, threads, write), "{threads} threads");
        }
    }

    #[test]
    fn priming_with_the_dictionary_keeps_the_ratio() {
        // A 20 KiB random block repeated: a serial stream stores it once. Without the
        // previous 32 KiB as dictionary every chunk would store it again.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let block: Vec<u8> = (0..20 << 10)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let data: Vec<u8> = block.iter().copied().cycle().take(4 * CHUNK).collect();
        let parallel = gz(&data, 6, 2, CHUNK).len();
        let mut serial = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        serial.write_all(&data).unwrap();
        let serial = serial.finish().unwrap().len();
        assert!(
            (parallel as f64) < serial as f64 * 1.01,
            "parallel {parallel} vs serial {serial}"
        );
    }
}
