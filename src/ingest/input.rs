//! Input sources for ingest: files (plain, gzip or zstd, recognized by their
//! magic bytes), stdin, or any reader. Bytes are hashed (xxh3-128) as read,
//! for the ingest log, and split into chunks of whole lines. A Parquet file
//! (recognized by its magic `PAR1`) is read by [`super::parquet`] and
//! yields the same chunks: one JSONL line per row.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use xxhash_rust::xxh3::Xxh3;

use super::parquet::{ParquetSource, MAGIC as PARQUET_MAGIC};
use super::record::RecordOptions;
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

/// Inputs that can be read again: paths stay paths, stdin and readers are
/// read into memory once. A change to a corpus at a URI may run again
/// after another writer's commit ([`crate::remote::write`]).
pub(crate) struct Replayable(Vec<(String, Option<Vec<u8>>)>);

impl Replayable {
    /// Takes `inputs`, reading stdin and readers to their end.
    pub(crate) fn take(inputs: Vec<Input>) -> Result<Replayable> {
        let mut out = Vec::with_capacity(inputs.len());
        for i in inputs {
            let name = i.name();
            match i {
                Input::Path(p) if p.as_os_str() != "-" => out.push((name, None)),
                Input::Path(_) => {
                    let mut b = Vec::new();
                    std::io::stdin()
                        .read_to_end(&mut b)
                        .map_err(|e| Error::Invalid(format!("stdin: {e}")))?;
                    out.push((name, Some(b)));
                }
                Input::Reader(_, mut r) => {
                    let mut b = Vec::new();
                    r.read_to_end(&mut b)
                        .map_err(|e| Error::Invalid(format!("{name}: {e}")))?;
                    out.push((name, Some(b)));
                }
            }
        }
        Ok(Replayable(out))
    }

    /// The inputs, for one run.
    pub(crate) fn inputs(&self) -> Vec<Input> {
        self.0
            .iter()
            .map(|(name, bytes)| match bytes {
                None => Input::Path(PathBuf::from(name)),
                Some(b) => Input::Reader(name.clone(), Box::new(std::io::Cursor::new(b.clone()))),
            })
            .collect()
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
    reader: Source,
    hash: Arc<std::sync::Mutex<Option<u128>>>,
}

/// Where an opened input's lines come from.
enum Source {
    /// JSONL bytes (decompressed).
    Lines(Box<dyn Read + Send>),
    /// Rows of a Parquet file, encoded as JSONL lines.
    Parquet(Box<ParquetSource>),
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
    /// Opens `input`, sniffing gzip (`1f 8b`) and zstd (`28 b5 2f fd`),
    /// with the default record options (see [`Opened::open_with`]).
    pub fn open(input: Input) -> Result<Opened> {
        Opened::open_with(input, &RecordOptions::default())
    }

    /// Opens `input`, sniffing gzip (`1f 8b`), zstd (`28 b5 2f fd`) and,
    /// for a file, Parquet (`PAR1`): a Parquet file's schema is checked
    /// against `record` (its text column) before anything is read.
    pub fn open_with(input: Input, record: &RecordOptions) -> Result<Opened> {
        let name = input.name();
        if let Input::Path(p) = &input {
            if p.as_os_str() != "-" && starts_with_parquet_magic(p)? {
                let read = Arc::new(AtomicU64::new(0));
                let src = ParquetSource::open(p, record.text_field(), read.clone())?;
                return Ok(Opened {
                    name,
                    total: Some(src.len()),
                    read,
                    reader: Source::Parquet(Box::new(src)),
                    hash: Arc::new(std::sync::Mutex::new(None)),
                });
            }
        }
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
        if magic == PARQUET_MAGIC {
            return Err(Error::Invalid(format!(
                "{name}: this is a Parquet file; Parquet is read from a file (its index is at \
                 the end), not from a stream: save it to a file and name the file"
            )));
        }
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
            reader: Source::Lines(reader),
            hash,
        })
    }

    /// Whether the input is a Parquet file (its line numbers are row numbers).
    pub fn is_parquet(&self) -> bool {
        matches!(self.reader, Source::Parquet(_))
    }

    /// The content hash of everything read, once the stream is exhausted.
    pub fn content_hash(&self) -> Option<u128> {
        if let Source::Parquet(p) = &self.reader {
            return p.content_hash();
        }
        *self.hash.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads the next chunk of whole lines (at least `target` bytes unless
    /// the input ends) into `spare`, a spent chunk to reuse (or an empty
    /// vector): reused memory is not faulted in and zeroed by the kernel
    /// again. Returns an empty vector at the end.
    pub fn next_chunk(
        &mut self,
        carry: &mut Vec<u8>,
        target: usize,
        mut spare: Vec<u8>,
    ) -> Result<Vec<u8>> {
        spare.clear();
        let reader = match &mut self.reader {
            Source::Lines(r) => r,
            Source::Parquet(p) => {
                // Sized by the decoder: `fill` swaps in its chunk and hands
                // this buffer back to the decoders.
                p.fill(&mut spare, target)?;
                return Ok(spare);
            }
        };
        let mut buf = spare;
        buf.extend_from_slice(carry);
        carry.clear();
        let mut eof = false;
        while buf.len() < target {
            let old = buf.len();
            buf.resize(old + (target - old).max(1 << 16), 0);
            let n = read_full(reader, &mut buf[old..]).map_err(|e| Error::io(&self.name, e))?;
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
                    let n = read_full(reader, &mut tmp).map_err(|e| Error::io(&self.name, e))?;
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

/// Whether the file at `p` starts with the Parquet magic.
fn starts_with_parquet_magic(p: &std::path::Path) -> Result<bool> {
    let mut f = File::open(p).at(p)?;
    let mut head = [0u8; 4];
    let n = read_full(&mut f, &mut head).at(p)?;
    Ok(n == 4 && head == PARQUET_MAGIC)
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
