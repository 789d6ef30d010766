//! Parquet input: a Parquet file is read row group by row group, in record
//! batches of bounded size, and each row is encoded as one JSONL line, so
//! that the rest of ingest (record parsing, schema, rejects) treats it like
//! any JSONL input and the line number of a reject is the row number. Up to
//! four workers decode row groups side by side; their lines are taken in
//! row group order.
//!
//! The file is checked before any row is read: a column of a type corpusql
//! cannot store (binary data, maps, unions, intervals) or a missing text
//! column refuses the file with a message naming the file, the column and a
//! remedy. Memory stays bounded, whatever the size of the file, by a few
//! chunks per worker, one record batch (about [`BATCH_BYTES`] of decoded
//! data) and the pages being decoded.
//!
//! Type mapping: strings (`Utf8`, `LargeUtf8`, `Utf8View`, dictionaries of
//! strings) become JSON strings (facets); integers, floats and decimals
//! become numbers (NaN and infinities become JSON null: stored, not
//! indexed); booleans stay booleans; lists become arrays (null elements of a
//! list of strings are dropped, so that it stays a multi-valued facet);
//! structs become objects; dates, times, timestamps and durations become
//! ISO 8601 strings; a null omits the field.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::temporal_conversions::{
    timestamp_ms_to_datetime, timestamp_ns_to_datetime, timestamp_s_to_datetime,
    timestamp_us_to_datetime,
};
use arrow_array::types::{
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType,
};
use arrow_array::{
    Array, GenericListArray, GenericStringArray, OffsetSizeTrait, RecordBatch, StringViewArray,
};
use arrow_json::writer::{
    make_encoder, Encoder, EncoderFactory, EncoderOptions, LineDelimited, NullableEncoder,
    WriterBuilder,
};
use arrow_schema::{ArrowError, DataType, FieldRef, Schema, TimeUnit};
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use parquet::arrow::ProjectionMask;
use xxhash_rust::xxh3::Xxh3;

use crate::error::{Error, IoContext, Result};

/// The magic bytes that open (and close) every Parquet file.
pub const MAGIC: [u8; 4] = *b"PAR1";

/// Decoded bytes aimed at per record batch: the batch size in rows is this
/// divided by the average uncompressed row size of the row group.
pub const BATCH_BYTES: u64 = 4 << 20;

/// The most rows per record batch.
pub const MAX_BATCH_ROWS: usize = 8192;

/// What a decoding worker hands the reader, in row order per row group.
enum Msg {
    /// Whole lines of the row group being decoded.
    Lines(Vec<u8>),
    /// The row group is done.
    End,
    /// Decoding failed (the worker stops).
    Failed(Error),
}

/// An open Parquet file, producing JSONL lines, one per row.
///
/// Row groups are decoded and encoded by `workers` threads (row group `g`
/// by worker `g % workers`, each with its own file handle), each at most
/// two chunks ahead; the reader takes their chunks in row group order, so
/// lines keep the file's row order and memory stays bounded by
/// `workers` × (two chunks + one record batch).
pub struct ParquetSource {
    path: PathBuf,
    name: String,
    meta: ArrowReaderMetadata,
    /// The row group being taken.
    group: usize,
    /// One receiver per worker.
    workers: Vec<Receiver<Msg>>,
    /// Compressed bytes of the row groups finished (progress).
    read: Arc<AtomicU64>,
    len: u64,
    hash: Option<u128>,
    /// Spent chunk buffers, handed back to the workers to fill again (a
    /// fresh 12 MiB buffer per chunk was faulted in page by page).
    spares: Spares,
}

/// Chunk buffers shared by the reader and the decoding workers.
type Spares = Arc<std::sync::Mutex<Vec<Vec<u8>>>>;

/// How many spent buffers are kept for reuse.
const MAX_SPARES: usize = 1;

impl std::fmt::Debug for ParquetSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ParquetSource({})", self.name)
    }
}

impl ParquetSource {
    /// Opens the Parquet file at `path`, reads its footer and checks its
    /// schema: every column must have a type corpusql stores, and
    /// `text_field` must be a string column. `read` receives progress in
    /// bytes of the file. Decoding starts on the first [`fill`](Self::fill).
    pub fn open(path: &Path, text_field: &str, read: Arc<AtomicU64>) -> Result<ParquetSource> {
        let name = path.display().to_string();
        let file = File::open(path).at(path)?;
        let len = file.metadata().at(path)?.len();
        // The footer decoder may panic on a corrupt footer, like the page
        // decoders (see `Decoder::run`): an error naming the file instead.
        let loaded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            ArrowReaderMetadata::load(&file, ArrowReaderOptions::new())
        }));
        let meta = match loaded {
            Ok(Ok(meta)) => meta,
            Ok(Err(e)) => {
                return Err(Error::Invalid(format!(
                    "{name}: not a readable Parquet file ({e}); it may be truncated or corrupt: \
                     write it again (nothing was ingested)"
                )))
            }
            Err(_) => {
                return Err(Error::Invalid(format!(
                    "{name}: not a readable Parquet file (its footer is malformed); it is \
                     corrupt: write it again (nothing was ingested)"
                )))
            }
        };
        check_schema(&name, meta.schema(), text_field)?;
        Ok(ParquetSource {
            path: path.to_path_buf(),
            name,
            meta,
            group: 0,
            workers: Vec::new(),
            read,
            len,
            hash: None,
            spares: Spares::default(),
        })
    }

    /// The size of the file in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the file is empty (it never is once opened).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The xxh3-128 hash of the file's bytes, once every row was produced.
    pub fn content_hash(&self) -> Option<u128> {
        self.hash
    }

    /// Starts the decoding workers: a quarter of the ingest's threads (the
    /// others parse), one to four, and no more than there are row groups.
    fn start(&mut self, target: usize) {
        let groups = self.meta.metadata().num_row_groups();
        let n = (rayon::current_num_threads() / 4)
            .clamp(1, 4)
            .min(groups.max(1));
        let mut first_rows = Vec::with_capacity(groups);
        let mut acc = 0u64;
        for g in 0..groups {
            first_rows.push(acc);
            acc += self.meta.metadata().row_group(g).num_rows().max(0) as u64;
        }
        let first_rows = Arc::new(first_rows);
        for k in 0..n {
            let (tx, rx) = sync_channel(2);
            let dec = Decoder {
                path: self.path.clone(),
                name: self.name.clone(),
                meta: self.meta.clone(),
                first_rows: first_rows.clone(),
                options: Arc::new(NullFreeLists),
                spares: self.spares.clone(),
            };
            std::thread::spawn(move || dec.run(k, n, target, tx));
            self.workers.push(rx);
        }
    }

    /// Appends JSONL lines, one per row, until `out` holds at least
    /// `target` bytes, a row group ends or the file ends. Returns false at
    /// the end of the file.
    pub fn fill(&mut self, out: &mut Vec<u8>, target: usize) -> Result<bool> {
        let groups = self.meta.metadata().num_row_groups();
        if self.workers.is_empty() && groups > 0 {
            self.start(target);
        }
        while out.len() < target {
            if self.group >= groups {
                self.finish()?;
                return Ok(false);
            }
            let k = self.group % self.workers.len().max(1);
            let msg = match self.workers.get(k).map(|w| w.recv()) {
                Some(Ok(m)) => m,
                _ => Msg::Failed(Error::Invalid(format!(
                    "{}: row group {}: the decoder stopped unexpectedly",
                    self.name, self.group
                ))),
            };
            match msg {
                Msg::Lines(lines) if out.is_empty() => {
                    let spent = std::mem::replace(out, lines);
                    self.spare(spent, target);
                }
                Msg::Lines(lines) => {
                    out.extend_from_slice(&lines);
                    self.spare(lines, target);
                }
                Msg::End => {
                    let c = self.meta.metadata().row_group(self.group).compressed_size();
                    self.read.fetch_add(c.max(0) as u64, Ordering::Relaxed);
                    self.group += 1;
                    // Hand over what a row group gave: a chunk's lines need
                    // not fill it, and waiting on the next worker delays
                    // parsing.
                    if !out.is_empty() {
                        return Ok(true);
                    }
                }
                Msg::Failed(e) => {
                    self.workers.clear();
                    return Err(e);
                }
            }
        }
        Ok(true)
    }

    /// Keeps a spent chunk buffer for the decoders, unless enough are kept
    /// or its size is unusual (a buffer a huge batch grew is dropped).
    fn spare(&self, buf: Vec<u8>, target: usize) {
        if (target..=2 * target + target / 2).contains(&buf.capacity()) {
            if let Ok(mut s) = self.spares.lock() {
                if s.len() < MAX_SPARES {
                    s.push(buf);
                }
            }
        }
    }

    /// Hashes the file's bytes for the ingest log (they are in the page
    /// cache by now) and reports the whole file as read.
    fn finish(&mut self) -> Result<()> {
        if self.hash.is_some() {
            return Ok(());
        }
        let mut f = File::open(&self.path).at(&self.path)?;
        let mut h = Xxh3::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0u64;
        loop {
            let n = match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::io(&self.path, e)),
            };
            h.update(&buf[..n]);
            total += n as u64;
        }
        self.hash = Some(h.digest128());
        self.read.store(total, Ordering::Relaxed);
        Ok(())
    }
}

/// One decoding worker's view of the file.
struct Decoder {
    path: PathBuf,
    name: String,
    meta: ArrowReaderMetadata,
    /// The number of rows before each row group.
    first_rows: Arc<Vec<u64>>,
    options: Arc<NullFreeLists>,
    spares: Spares,
}

impl Decoder {
    /// Decodes row groups `k`, `k + n`, `k + 2n`, ... into chunks of about
    /// `target` bytes, until done, failed, or the reader is gone.
    fn run(self, k: usize, n: usize, target: usize, tx: SyncSender<Msg>) {
        // Its own file handle: a cloned handle shares the file offset.
        let file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) => {
                let _ = tx.send(Msg::Failed(Error::io(&self.path, e)));
                return;
            }
        };
        let groups = self.meta.metadata().num_row_groups();
        for g in (k..groups).step_by(n.max(1)) {
            // A decoder that panics on a malformed file must not take the
            // ingest down with a bare "thread panicked": say which file and
            // row group.
            let sent = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.group(&file, g, target, &tx)
            }));
            match sent {
                Ok(Ok(true)) => {}
                Ok(Ok(false)) => return,
                Ok(Err(e)) => {
                    let _ = tx.send(Msg::Failed(e));
                    return;
                }
                Err(_) => {
                    let _ = tx.send(Msg::Failed(Error::Invalid(format!(
                        "{}: row group {g}: the Parquet decoder failed on malformed data; \
                         the file is corrupt: write it again (nothing was ingested)",
                        self.name
                    ))));
                    return;
                }
            }
        }
    }

    /// Sends row group `g` as chunks then `End`; false when the reader is gone.
    fn group(&self, file: &File, g: usize, target: usize, tx: &SyncSender<Msg>) -> Result<bool> {
        let rg = self.meta.metadata().row_group(g);
        let rows = rg.num_rows().max(0) as u64;
        if rows > 0 {
            let per_row = (rg.total_byte_size().max(1) as u64).div_ceil(rows).max(1);
            let batch = (BATCH_BYTES / per_row).clamp(1, MAX_BATCH_ROWS as u64) as usize;
            let reader = self
                .builder(file)?
                .with_row_groups(vec![g])
                .with_batch_size(batch)
                .build()
                .map_err(|e| self.group_error(file, g, &e.to_string()))?;
            let mut buf = self.buffer(target);
            let mut done = 0u64;
            for b in reader {
                let b = b.map_err(|e| self.group_error(file, g, &e.to_string()))?;
                self.encode(g, done, &b, &mut buf)?;
                done += b.num_rows() as u64;
                if buf.len() >= target {
                    let full = std::mem::replace(&mut buf, self.buffer(target));
                    if tx.send(Msg::Lines(full)).is_err() {
                        return Ok(false);
                    }
                }
            }
            if !buf.is_empty() && tx.send(Msg::Lines(buf)).is_err() {
                return Ok(false);
            }
        }
        Ok(tx.send(Msg::End).is_ok())
    }

    /// An empty chunk buffer: a spent one when the reader handed one back.
    fn buffer(&self, target: usize) -> Vec<u8> {
        let mut b = self
            .spares
            .lock()
            .ok()
            .and_then(|mut s| s.pop())
            .unwrap_or_default();
        b.clear();
        b.reserve(target + target / 2);
        b
    }

    fn builder(&self, file: &File) -> Result<ParquetRecordBatchReaderBuilder<File>> {
        let f = file.try_clone().at(&self.path)?;
        Ok(ParquetRecordBatchReaderBuilder::new_with_metadata(
            f,
            self.meta.clone(),
        ))
    }

    fn first_row(&self, g: usize) -> u64 {
        self.first_rows.get(g).copied().unwrap_or(0)
    }

    /// An error reading row group `g`: names the file, the row group, its
    /// rows and, when one column alone fails to decode, that column.
    fn group_error(&self, file: &File, g: usize, detail: &str) -> Error {
        let md = self.meta.metadata();
        let first = self.first_row(g);
        let rows = md.row_group(g).num_rows().max(0) as u64;
        let column = self
            .failing_column(file, g)
            .map(|c| format!(", column `{c}`"))
            .unwrap_or_default();
        Error::Invalid(format!(
            "{}: row group {g} of {} (rows {}-{}){column}: {detail}; the file is truncated or \
             corrupt: write it again (nothing was ingested)",
            self.name,
            md.num_row_groups(),
            first + 1,
            first + rows,
        ))
    }

    /// The first top-level column of row group `g` that fails to decode on
    /// its own (for error messages only).
    fn failing_column(&self, file: &File, g: usize) -> Option<String> {
        let fields = self.meta.schema().fields();
        for (i, f) in fields.iter().enumerate() {
            let mask = ProjectionMask::roots(self.meta.parquet_schema(), [i]);
            let Ok(b) = self.builder(file) else {
                return None;
            };
            let reader = b
                .with_row_groups(vec![g])
                .with_projection(mask)
                .with_batch_size(1024)
                .build();
            let failed = match reader {
                Err(_) => true,
                Ok(mut r) => r.any(|b| b.is_err()),
            };
            if failed {
                return Some(f.name().clone());
            }
        }
        None
    }

    /// Encodes the rows of `batch` (the rows after `done` of row group `g`)
    /// as JSONL lines, nulls omitted.
    fn encode(&self, g: usize, done: u64, batch: &RecordBatch, out: &mut Vec<u8>) -> Result<()> {
        let factory: Arc<dyn EncoderFactory> = self.options.clone();
        let mut w = WriterBuilder::new()
            .with_explicit_nulls(false)
            .with_encoder_factory(factory)
            .build::<_, LineDelimited>(out);
        w.write(batch).and_then(|_| w.finish()).map_err(|e| {
            let first = self.first_row(g) + done;
            Error::Invalid(format!(
                "{}: row group {g}, rows {}-{}: cannot encode as JSON: {e}",
                self.name,
                first + 1,
                first + batch.num_rows() as u64
            ))
        })
    }
}

/// Whether `t` is a string type (a facet), dictionaries of strings included.
fn is_string(t: &DataType) -> bool {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, v) => is_string(v),
        _ => false,
    }
}

/// The first column (dotted path) whose type corpusql cannot store, with
/// that type.
fn unsupported(path: &str, t: &DataType) -> Option<(String, DataType)> {
    match t {
        DataType::Null
        | DataType::Boolean
        | DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64
        | DataType::Float16
        | DataType::Float32
        | DataType::Float64
        | DataType::Decimal32(_, _)
        | DataType::Decimal64(_, _)
        | DataType::Decimal128(_, _)
        | DataType::Decimal256(_, _)
        | DataType::Utf8
        | DataType::LargeUtf8
        | DataType::Utf8View
        | DataType::Date32
        | DataType::Date64
        | DataType::Timestamp(_, _)
        | DataType::Time32(_)
        | DataType::Time64(_)
        | DataType::Duration(_) => None,
        DataType::Dictionary(_, v) => unsupported(path, v),
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            unsupported(&format!("{path}[]"), f.data_type())
        }
        DataType::Struct(fields) => fields
            .iter()
            .find_map(|f| unsupported(&format!("{path}.{}", f.name()), f.data_type())),
        other => Some((path.to_string(), other.clone())),
    }
}

/// Checks a file's schema before any row is read.
fn check_schema(name: &str, schema: &Schema, text_field: &str) -> Result<()> {
    for f in schema.fields() {
        // Every row would be rejected for it (a nested field's name with
        // NUL is stored and not indexed, as in JSON).
        if f.name().contains('\0') {
            return Err(Error::Invalid(format!(
                "{name}: {}; nothing was ingested",
                super::record::nul_in_name(f.name())
            )));
        }
        if let Some((col, t)) = unsupported(f.name(), f.data_type()) {
            let why = match t {
                DataType::Binary
                | DataType::LargeBinary
                | DataType::BinaryView
                | DataType::FixedSizeBinary(_) => "binary data is not text",
                DataType::Map(_, _) => "maps have no fixed fields",
                _ => "it has no JSON equivalent",
            };
            return Err(Error::Invalid(format!(
                "{name}: column `{col}` has type {t}, which corpusql cannot ingest ({why}); \
                 drop the column or cast it to a string or struct before ingest \
                 (e.g. DuckDB: COPY (SELECT * EXCLUDE ({top}) FROM '{name}') TO 'out.parquet'); \
                 nothing was ingested",
                top = f.name()
            )));
        }
    }
    match schema.field_with_name(text_field) {
        Ok(f) if is_string(f.data_type()) => Ok(()),
        Ok(f) => Err(Error::Invalid(format!(
            "{name}: column `{text_field}` (the document text) has type {}, not a string; \
             name the text column with --text-field; nothing was ingested",
            f.data_type()
        ))),
        Err(_) => {
            let strings: Vec<&str> = schema
                .fields()
                .iter()
                .filter(|f| is_string(f.data_type()))
                .map(|f| f.name().as_str())
                .collect();
            let has = if strings.is_empty() {
                "it has no string column".to_string()
            } else {
                format!("its string columns are: {}", strings.join(", "))
            };
            Err(Error::Invalid(format!(
                "{name}: no column `{text_field}` (the document text); {has}; \
                 name the text column with --text-field; nothing was ingested"
            )))
        }
    }
}

/// corpusql's encoders of Arrow columns into JSON: lists whose elements are
/// strings without their null elements (so that a list of strings is always
/// a multi-valued facet), every string column through corpusql's escaper,
/// and timestamps with a time zone as UTC instants.
#[derive(Debug)]
struct NullFreeLists;

impl EncoderFactory for NullFreeLists {
    fn make_default_encoder<'a>(
        &self,
        field: &'a FieldRef,
        array: &'a dyn Array,
        options: &'a EncoderOptions,
    ) -> std::result::Result<Option<NullableEncoder<'a>>, ArrowError> {
        let nulls = array.nulls().cloned();
        let enc: Box<dyn Encoder + 'a> = match array.data_type() {
            DataType::List(f) if is_string(f.data_type()) => {
                Box::new(ListEnc::new(field, array.as_list::<i32>(), options)?)
            }
            DataType::LargeList(f) if is_string(f.data_type()) => {
                Box::new(ListEnc::new(field, array.as_list::<i64>(), options)?)
            }
            DataType::FixedSizeList(f, n) if is_string(f.data_type()) => {
                let a = array.as_fixed_size_list();
                let values = make_encoder(field, a.values().as_ref(), options)?;
                let n = (*n).max(0) as usize;
                Box::new(FixedEnc { n, values })
            }
            // Arrow formats named time zones (`UTC`, `Europe/Paris`) only
            // with a time zone database: write the instant in UTC instead.
            DataType::Timestamp(unit, Some(_)) => {
                let values = match unit {
                    TimeUnit::Second => array.as_primitive::<TimestampSecondType>().values(),
                    TimeUnit::Millisecond => {
                        array.as_primitive::<TimestampMillisecondType>().values()
                    }
                    TimeUnit::Microsecond => {
                        array.as_primitive::<TimestampMicrosecondType>().values()
                    }
                    TimeUnit::Nanosecond => {
                        array.as_primitive::<TimestampNanosecondType>().values()
                    }
                };
                Box::new(UtcTimestamps {
                    values: &values[..],
                    unit: *unit,
                })
            }
            // Strings through corpusql's escaper (the same bytes as
            // arrow's, which goes through serde_json a byte at a time: the
            // text column made it 8% of a Parquet ingest).
            DataType::Utf8 => Box::new(Strings(array.as_string::<i32>())),
            DataType::LargeUtf8 => Box::new(Strings(array.as_string::<i64>())),
            DataType::Utf8View => Box::new(StringViews(array.as_string_view())),
            _ => return Ok(None),
        };
        Ok(Some(NullableEncoder::new(enc, nulls)))
    }
}

/// A string column, escaped by [`crate::json::write_str`].
struct Strings<'a, O: OffsetSizeTrait>(&'a GenericStringArray<O>);

impl<O: OffsetSizeTrait> Encoder for Strings<'_, O> {
    fn encode(&mut self, idx: usize, out: &mut Vec<u8>) {
        // Out of range only on malformed data: the panic is caught and
        // reported as a corrupt row group, as arrow's own encoder's is.
        crate::json::write_str(out, self.0.value(idx));
    }
}

/// A string view column, escaped by [`crate::json::write_str`].
struct StringViews<'a>(&'a StringViewArray);

impl Encoder for StringViews<'_> {
    fn encode(&mut self, idx: usize, out: &mut Vec<u8>) {
        crate::json::write_str(out, self.0.value(idx));
    }
}

/// Timestamps with a time zone, as ISO 8601 instants in UTC
/// (`2021-05-06T07:08:09.5Z`); `null` when out of range.
struct UtcTimestamps<'a> {
    values: &'a [i64],
    unit: TimeUnit,
}

impl Encoder for UtcTimestamps<'_> {
    fn encode(&mut self, idx: usize, out: &mut Vec<u8>) {
        let Some(&v) = self.values.get(idx) else {
            out.extend_from_slice(b"null");
            return;
        };
        let t = match self.unit {
            TimeUnit::Second => timestamp_s_to_datetime(v),
            TimeUnit::Millisecond => timestamp_ms_to_datetime(v),
            TimeUnit::Microsecond => timestamp_us_to_datetime(v),
            TimeUnit::Nanosecond => timestamp_ns_to_datetime(v),
        };
        match t {
            Some(t) => {
                // Writing to a Vec cannot fail.
                let _ = write!(out, "\"{}Z\"", t.format("%Y-%m-%dT%H:%M:%S%.f"));
            }
            None => out.extend_from_slice(b"null"),
        }
    }
}

/// A list of strings, null elements skipped.
struct ListEnc<'a, O: OffsetSizeTrait> {
    offsets: &'a [O],
    values: NullableEncoder<'a>,
}

impl<'a, O: OffsetSizeTrait> ListEnc<'a, O> {
    fn new(
        field: &'a FieldRef,
        array: &'a GenericListArray<O>,
        options: &'a EncoderOptions,
    ) -> std::result::Result<Self, ArrowError> {
        Ok(ListEnc {
            offsets: array.value_offsets(),
            values: make_encoder(field, array.values().as_ref(), options)?,
        })
    }
}

impl<O: OffsetSizeTrait> Encoder for ListEnc<'_, O> {
    fn encode(&mut self, idx: usize, out: &mut Vec<u8>) {
        let (Some(a), Some(b)) = (self.offsets.get(idx), self.offsets.get(idx + 1)) else {
            out.extend_from_slice(b"[]");
            return;
        };
        write_elements(&mut self.values, a.as_usize()..b.as_usize(), out);
    }
}

/// A fixed-size list of strings, null elements skipped.
struct FixedEnc<'a> {
    n: usize,
    values: NullableEncoder<'a>,
}

impl Encoder for FixedEnc<'_> {
    fn encode(&mut self, idx: usize, out: &mut Vec<u8>) {
        write_elements(&mut self.values, idx * self.n..(idx + 1) * self.n, out);
    }
}

fn write_elements(
    values: &mut NullableEncoder<'_>,
    range: std::ops::Range<usize>,
    out: &mut Vec<u8>,
) {
    out.push(b'[');
    let mut first = true;
    for i in range {
        if values.is_null(i) {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        values.encode(i, out);
    }
    out.push(b']');
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_schema::Field;

    #[test]
    fn unsupported_types_are_found_inside_containers() {
        let inner = DataType::Struct(vec![Field::new("blob", DataType::Binary, true)].into());
        let t = DataType::List(Arc::new(Field::new("item", inner, true)));
        let (path, ty) = unsupported("meta", &t).expect("binary inside");
        assert_eq!(path, "meta[].blob");
        assert_eq!(ty, DataType::Binary);
        assert!(unsupported(
            "x",
            &DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
        )
        .is_none());
    }

    #[test]
    fn missing_text_column_lists_the_string_columns() {
        let s = Schema::new(vec![
            Field::new("body", DataType::LargeUtf8, true),
            Field::new("n", DataType::Int64, true),
        ]);
        let e = check_schema("f.parquet", &s, "text")
            .unwrap_err()
            .to_string();
        assert!(e.contains("f.parquet: no column `text`"), "{e}");
        assert!(e.contains("its string columns are: body"), "{e}");
        assert!(e.contains("--text-field"), "{e}");
    }
}
