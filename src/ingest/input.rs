//! Input sources for ingest: files (plain, gzip or zstd, recognized by their
//! magic bytes), stdin, or any reader. Bytes are hashed (xxh3-128) as read,
//! for the ingest log, and split into chunks of whole lines.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use xxhash_rust::xxh3::Xxh3;

use crate::error::{Error, IoContext, Result};

/// One input of an ingest.
pub enum Input {
    /// A file path; `-` means stdin.
    Path(PathBuf),
    /// Any reader, with a name for messages and the ingest log.
    Reader(String, Box<dyn Read + Send>),
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

impl Input {
    /// The name used in messages and the ingest log.
    pub fn name(&self) -> String {
        match self {
            Input::Path(p) => p.display().to_string(),
            Input::Reader(n, _) => n.clone(),
        }
    }
}

/// Counts and hashes bytes as they are read.
struct Tally<R> {
    inner: R,
    hash: Xxh3,
    bytes: Arc<AtomicU64>,
}

impl<R: Read> Read for Tally<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// An opened input: a decompressed stream of bytes.
pub struct Opened {
    /// Name for messages.
    pub name: String,
    /// Total size of the raw input when known (for progress).
    pub total: Option<u64>,
    /// Raw bytes read so far.
    pub read: Arc<AtomicU64>,
    reader: Box<dyn Read + Send>,
    hash: Arc<std::sync::Mutex<Option<u128>>>,
}

/// Wraps the tally so the final hash is published when the stream ends.
struct Finisher<R> {
    tally: Option<Tally<R>>,
    out: Arc<std::sync::Mutex<Option<u128>>>,
}

impl<R: Read> Read for Finisher<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let Some(t) = self.tally.as_mut() else {
            return Ok(0);
        };
        let n = t.read(buf)?;
        if n == 0 && !buf.is_empty() {
            let t = self.tally.take().unwrap();
            *self.out.lock().unwrap() = Some(t.hash.digest128());
        }
        Ok(n)
    }
}

impl Opened {
    /// Opens `input`, sniffing gzip (`1f 8b`) and zstd (`28 b5 2f fd`).
    pub fn open(input: Input) -> Result<Opened> {
        let name = input.name();
        let (raw, total): (Box<dyn Read + Send>, Option<u64>) = match input {
            Input::Path(p) if p.as_os_str() == "-" => (Box::new(std::io::stdin()), None),
            Input::Path(p) => {
                let f = File::open(&p).at(&p)?;
                let len = f.metadata().ok().map(|m| m.len());
                (Box::new(f), len)
            }
            Input::Reader(_, r) => (r, None),
        };
        let read = Arc::new(AtomicU64::new(0));
        let hash = Arc::new(std::sync::Mutex::new(None));
        let tally = Finisher {
            tally: Some(Tally {
                inner: raw,
                hash: Xxh3::new(),
                bytes: read.clone(),
            }),
            out: hash.clone(),
        };
        let mut buffered = BufReader::with_capacity(1 << 20, tally);
        // Sniff the first 4 bytes, however the source delivers them.
        let mut head = Vec::with_capacity(4);
        while head.len() < 4 {
            let mut b = [0u8; 4];
            let n = read_full(&mut buffered, &mut b[..4 - head.len()])
                .map_err(|e| Error::io(&name, e))?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&b[..n]);
        }
        let magic = head.clone();
        let buffered = std::io::Read::chain(std::io::Cursor::new(head), buffered);
        let reader: Box<dyn Read + Send> = if magic.starts_with(&[0x1f, 0x8b]) {
            Box::new(BufReader::with_capacity(
                1 << 20,
                flate2::read::MultiGzDecoder::new(buffered),
            ))
        } else if magic == [0x28, 0xb5, 0x2f, 0xfd] {
            let d = zstd::stream::read::Decoder::with_buffer(buffered)
                .map_err(|e| Error::io(&name, e))?;
            Box::new(d)
        } else {
            Box::new(buffered)
        };
        Ok(Opened {
            name,
            total,
            read,
            reader,
            hash,
        })
    }

    /// The content hash of everything read, once the stream is exhausted.
    pub fn content_hash(&self) -> Option<u128> {
        *self.hash.lock().unwrap()
    }

    /// Reads the next chunk of whole lines (at least `target` bytes unless
    /// the input ends). Returns an empty vector at the end.
    pub fn next_chunk(&mut self, carry: &mut Vec<u8>, target: usize) -> Result<Vec<u8>> {
        let mut buf = std::mem::take(carry);
        let mut eof = false;
        while buf.len() < target {
            let old = buf.len();
            buf.resize(old + (target - old).max(1 << 16), 0);
            let n = read_full(&mut self.reader, &mut buf[old..])
                .map_err(|e| Error::io(&self.name, e))?;
            buf.truncate(old + n);
            if n == 0 {
                eof = true;
                break;
            }
        }
        if eof {
            // Drain anything a short read left (the decoder may end after the frame).
            return Ok(buf);
        }
        match memchr::memrchr(b'\n', &buf) {
            Some(i) => {
                carry.extend_from_slice(&buf[i + 1..]);
                buf.truncate(i + 1);
                Ok(buf)
            }
            None => {
                // One line longer than the chunk: keep reading until its end.
                let mut more = Vec::new();
                loop {
                    let mut tmp = vec![0u8; 1 << 20];
                    let n = read_full(&mut self.reader, &mut tmp)
                        .map_err(|e| Error::io(&self.name, e))?;
                    if n == 0 {
                        buf.extend_from_slice(&more);
                        return Ok(buf);
                    }
                    tmp.truncate(n);
                    if let Some(i) = memchr::memchr(b'\n', &tmp) {
                        more.extend_from_slice(&tmp[..=i]);
                        carry.extend_from_slice(&tmp[i + 1..]);
                        buf.extend_from_slice(&more);
                        return Ok(buf);
                    }
                    more.extend_from_slice(&tmp);
                }
            }
        }
    }
}

fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
