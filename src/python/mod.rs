//! The Python binding (cargo feature `python`): the `corpusql._corpusql`
//! extension module, built by maturin (`pip install .`), that the
//! pure-Python package under `python/corpusql/` wraps. It is a thin layer
//! over the facade: a `Corpus`, a `Mixture`, a `Stream` of token batches,
//! a lazy record reader, and exceptions that carry the CLI's messages.
//! Results that the CLI prints as JSON cross as the same JSON text (the
//! Python side parses it), so a dict equals the CLI's `--json` output.
//!
//! Fork safety: the binding never uses rayon's global pool. Each process
//! gets its own pool, made on first use and made again after a fork (a
//! pool's threads do not survive one), and the GIL is released while
//! reading, tokenizing and packing.

use std::io::Cursor;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyStopIteration};
use pyo3::prelude::*;
use pyo3::types::PyByteArray;

use crate::error::Error;
use crate::export::{JsonlReader, Projection};
use crate::ingest::{IngestOptions, Input, OnDuplicate};
use crate::train::schedule::{Shard, WorkerSplit};
use crate::train::{Encoding, StreamOptions, StreamState};
use crate::{ExportOptions, ReportOf, ReportOptions, TagOptions, Tagger, TraceOptions};

create_exception!(
    _corpusql,
    CorpusqlError,
    PyException,
    "Base class of every corpusql error."
);
create_exception!(
    _corpusql,
    QueryError,
    CorpusqlError,
    "A query that does not parse or names what does not exist (the message shows the caret and a suggestion)."
);
create_exception!(
    _corpusql,
    CorpusError,
    CorpusqlError,
    "No corpus, a corrupt or unreadable file, a newer format, a catalog failure."
);
create_exception!(
    _corpusql,
    ResumeError,
    CorpusqlError,
    "A stream state from another corpus generation, mixture, tokenizer or sequence length."
);
create_exception!(
    _corpusql,
    IngestError,
    CorpusqlError,
    "An ingest refused (a duplicate key under on_duplicate='error')."
);

/// The Python exception for a library error, with the CLI's message.
fn py_err(e: Error) -> PyErr {
    let msg = e.to_string();
    match e {
        Error::Query(_) => QueryError::new_err(msg),
        Error::ResumeMismatch { .. } => ResumeError::new_err(msg),
        // The message names the CLI's flag; Python has the argument.
        Error::DuplicateKey { .. } => IngestError::new_err(msg.replace(
            "--on-duplicate skip or replace",
            "on_duplicate=\"skip\" or \"replace\"",
        )),
        Error::Io { .. }
        | Error::Corrupt { .. }
        | Error::CorruptSignals { .. }
        | Error::Version { .. }
        | Error::NoCorpus { .. }
        | Error::Catalog { .. } => CorpusError::new_err(msg),
        _ => CorpusqlError::new_err(msg),
    }
}

fn json_err(e: serde_json::Error) -> PyErr {
    CorpusqlError::new_err(format!("internal: {e}"))
}

fn to_json<T: serde::Serialize>(v: &T) -> PyResult<String> {
    serde_json::to_string(v).map_err(json_err)
}

/// This process's pool and the process it was made in.
static POOL: Mutex<Option<(u32, Arc<rayon::ThreadPool>)>> = Mutex::new(None);
/// Threads for pools made from now on (0: one per CPU).
static THREADS: Mutex<usize> = Mutex::new(0);

/// The pool of this process: made on first use, and again in a child after
/// a fork (the parent's pool is leaked there, never joined: its threads do
/// not exist in the child).
fn pool() -> PyResult<Arc<rayon::ThreadPool>> {
    let pid = std::process::id();
    let mut g = POOL.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((p, pool)) = g.as_ref() {
        if *p == pid {
            return Ok(pool.clone());
        }
    }
    let threads = *THREADS.lock().unwrap_or_else(|e| e.into_inner());
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("corpusql-{i}"))
        .build()
        .map_err(|e| CorpusqlError::new_err(format!("cannot start threads: {e}")))?;
    let pool = Arc::new(pool);
    if let Some(old) = g.replace((pid, pool.clone())) {
        std::mem::forget(old);
    }
    Ok(pool)
}

/// Runs `f` in this process's pool with the GIL released.
fn run<T: Send>(py: Python<'_>, f: impl FnOnce() -> crate::Result<T> + Send) -> PyResult<T> {
    let pool = pool()?;
    py.allow_threads(|| pool.install(f)).map_err(py_err)
}

/// Sets the number of threads corpusql uses in this process (0: one per
/// CPU). Takes effect for the pool made next: at once if none was made in
/// this process yet.
#[pyfunction]
fn set_threads(n: usize) {
    *THREADS.lock().unwrap_or_else(|e| e.into_inner()) = n;
    let mut g = POOL.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((p, old)) = g.take() {
        if p != std::process::id() {
            std::mem::forget(old);
        }
    }
}

/// A training mixture (a mixture file's content).
#[pyclass(name = "Mixture", module = "corpusql._corpusql", frozen)]
#[derive(Clone)]
struct PyMixture {
    inner: crate::Mixture,
}

#[pymethods]
impl PyMixture {
    /// Reads and checks a mixture file.
    #[staticmethod]
    fn from_file(path: PathBuf) -> PyResult<Self> {
        Ok(PyMixture {
            inner: crate::Mixture::from_file(&path).map_err(py_err)?,
        })
    }

    /// Parses and checks a mixture file's TOML text.
    #[staticmethod]
    fn parse(text: &str) -> PyResult<Self> {
        Ok(PyMixture {
            inner: crate::Mixture::parse(text).map_err(py_err)?,
        })
    }

    /// Parses and checks a mixture given as JSON (the shape of the TOML).
    #[staticmethod]
    fn from_json(text: &str) -> PyResult<Self> {
        let m: crate::Mixture = serde_json::from_str(text)
            .map_err(|e| CorpusqlError::new_err(format!("mixture: {e}")))?;
        m.check("mixture").map_err(py_err)?;
        Ok(PyMixture { inner: m })
    }

    /// A one-component mixture streaming every match of `query` once.
    #[staticmethod]
    #[pyo3(signature = (query, tokenizer = "bytes", seq_len = 2048, seed = 0))]
    fn inline(query: &str, tokenizer: &str, seq_len: usize, seed: u64) -> PyResult<Self> {
        let m = crate::Mixture::inline(query, tokenizer, seq_len, seed);
        m.check("mixture").map_err(py_err)?;
        Ok(PyMixture { inner: m })
    }

    /// The mixture as JSON (the shape of the TOML).
    fn to_json(&self) -> PyResult<String> {
        to_json(&self.inner)
    }

    /// The mixture's hash (what a stream state records).
    #[getter]
    fn hash(&self) -> String {
        self.inner.hash()
    }

    /// Tokens per packed sequence.
    #[getter]
    fn seq_len(&self) -> usize {
        self.inner.seq_len
    }

    /// `bytes` or the path of a `tokenizer.json`.
    #[getter]
    fn tokenizer(&self) -> String {
        self.inner.tokenizer.clone()
    }

    /// The components' names.
    #[getter]
    fn components(&self) -> Vec<String> {
        self.inner
            .components
            .iter()
            .map(|c| c.name.clone())
            .collect()
    }

    fn __repr__(&self) -> String {
        format!(
            "Mixture(components={:?}, tokens={:?}, seq_len={}, tokenizer={:?})",
            self.components(),
            self.inner.tokens,
            self.inner.seq_len,
            self.inner.tokenizer
        )
    }
}

/// A corpus snapshot (`corpusql.open`). Calls from several Python threads
/// run at once (each on the snapshot current when it started); `reload`
/// and `tag` swap in a new snapshot.
#[pyclass(name = "Corpus", module = "corpusql._corpusql", frozen)]
struct PyCorpus {
    inner: std::sync::RwLock<Arc<crate::Corpus>>,
}

impl PyCorpus {
    /// The current snapshot.
    fn snap(&self) -> Arc<crate::Corpus> {
        self.inner.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Makes `c` the current snapshot.
    fn set(&self, c: crate::Corpus) {
        *self.inner.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(c);
    }
}

fn on_duplicate(s: &str) -> PyResult<OnDuplicate> {
    match s {
        "skip" => Ok(OnDuplicate::Skip),
        "replace" => Ok(OnDuplicate::Replace),
        "error" => Ok(OnDuplicate::Error),
        _ => Err(CorpusqlError::new_err(format!(
            "on_duplicate={s:?}: expected \"skip\", \"replace\" or \"error\""
        ))),
    }
}

fn projection(fields: Option<Vec<String>>, signals: bool) -> Projection {
    let joined = fields.map(|f| f.join(","));
    Projection::parse_with(joined.as_deref(), signals)
}

#[pymethods]
impl PyCorpus {
    /// Opens the corpus at `path` (its current generation).
    #[new]
    fn new(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let c = run(py, || crate::Corpus::open(&path))?;
        Ok(PyCorpus {
            inner: std::sync::RwLock::new(Arc::new(c)),
        })
    }

    /// The corpus directory.
    #[getter]
    fn path(&self) -> PathBuf {
        self.snap().dir().to_path_buf()
    }

    /// The generation this snapshot reads.
    #[getter]
    fn generation(&self) -> u64 {
        self.snap().generation()
    }

    /// Live documents.
    fn __len__(&self) -> usize {
        self.snap().len() as usize
    }

    /// Moves this handle to the corpus's current generation.
    fn reload(&self, py: Python<'_>) -> PyResult<()> {
        let dir = self.snap().dir().to_path_buf();
        let c = run(py, || crate::Corpus::open(&dir))?;
        self.set(c);
        Ok(())
    }

    /// Documents matching `query`.
    fn count(&self, py: Python<'_>, query: &str) -> PyResult<u64> {
        let c = &*self.snap();
        run(py, || c.count(query))
    }

    /// A lazy reader of the matching records as JSONL chunks.
    #[pyo3(signature = (query, fields = None, limit = None, signals = false, split = None))]
    fn records(
        &self,
        py: Python<'_>,
        query: &str,
        fields: Option<Vec<String>>,
        limit: Option<u64>,
        signals: bool,
        split: Option<(u64, u64, u64, u64, u64, u64, u64)>,
    ) -> PyResult<Records> {
        let c = &*self.snap();
        let reader = run(py, || {
            let mut sel = c.query(query)?;
            if let Some(n) = limit {
                sel.truncate(n);
            }
            let proj = projection(fields, signals);
            proj.check(c.schema())?;
            let mut r = JsonlReader::new(sel, proj)?;
            if let Some((start, rank, world, worker, workers, block, skip)) = split {
                let shard = Shard {
                    start,
                    rank,
                    world,
                    split: WorkerSplit {
                        worker,
                        workers,
                        block,
                        skip,
                    },
                };
                if world == 0 || rank >= world {
                    return Err(Error::Invalid(format!(
                        "rank {rank} of world {world} is not a valid rank"
                    )));
                }
                shard.split.check()?;
                r = r.keep(move |i| shard.local(i).is_some());
            }
            Ok(r)
        })?;
        Ok(Records {
            inner: Some(reader),
        })
    }

    /// One record as JSON text, or `None`.
    #[pyo3(signature = (key, signals = false))]
    fn get_json(&self, py: Python<'_>, key: &str, signals: bool) -> PyResult<Option<String>> {
        let c = &*self.snap();
        run(py, || {
            let sel = c.key_selection(key);
            if sel.count() == 0 {
                return Ok(None);
            }
            let mut out = Vec::new();
            crate::export::write_jsonl(&sel, &projection(None, signals), &mut out)?;
            Ok(Some(String::from_utf8_lossy(&out).trim_end().to_string()))
        })
    }

    /// Documents and bytes by group, as `stats --json`.
    #[pyo3(signature = (query = "*", by = Vec::new()))]
    fn stats_json(&self, py: Python<'_>, query: &str, by: Vec<String>) -> PyResult<String> {
        let c = &*self.snap();
        let st = run(py, || c.stats(&c.query(query)?, &by))?;
        to_json(&st)
    }

    /// Fields, kinds and document counts, as `schema --json`.
    #[pyo3(signature = (values = 5))]
    fn schema_json(&self, py: Python<'_>, values: usize) -> PyResult<String> {
        let c = &*self.snap();
        let d = run(py, || c.describe_schema(values))?;
        to_json(&d)
    }

    /// The mixture's plan, as `mix plan --json`.
    #[pyo3(signature = (mixture, override_policy = false))]
    fn plan_json(
        &self,
        py: Python<'_>,
        mixture: &PyMixture,
        override_policy: bool,
    ) -> PyResult<String> {
        let c = &*self.snap();
        let p = run(py, || c.plan_with(&mixture.inner, override_policy))?;
        to_json(&p)
    }

    /// The license datasheet of a mixture (or a query), as `report --json`.
    #[pyo3(signature = (mixture = None, query = None, override_policy = false, tokenizer = None, label = None))]
    fn report_json(
        &self,
        py: Python<'_>,
        mixture: Option<&PyMixture>,
        query: Option<String>,
        override_policy: bool,
        tokenizer: Option<String>,
        label: Option<String>,
    ) -> PyResult<String> {
        let c = &*self.snap();
        let of = match (&mixture, &query) {
            (Some(m), None) => ReportOf::Mixture(&m.inner),
            (None, Some(q)) => ReportOf::Query(q),
            _ => {
                return Err(CorpusqlError::new_err(
                    "report: give a mixture or a query, not both",
                ))
            }
        };
        let opts = ReportOptions {
            override_policy,
            tokenizer,
            label,
            ..ReportOptions::default()
        };
        let d = run(py, || c.report(of, &opts))?;
        Ok(crate::report::to_json(&d))
    }

    /// The documents behind a stream position, as `trace --json`.
    #[pyo3(signature = (mixture, sequence, offset = None, override_policy = false))]
    fn trace_json(
        &self,
        py: Python<'_>,
        mixture: &PyMixture,
        sequence: u64,
        offset: Option<u64>,
        override_policy: bool,
    ) -> PyResult<String> {
        let c = &*self.snap();
        let opts = TraceOptions {
            sequence,
            offset,
            override_policy,
            ..Default::default()
        };
        let t = run(py, || c.trace(&mixture.inner, &opts))?;
        to_json(&t)
    }

    /// Runs taggers (`language`, `quality`, `pii`, `dedup`, ...) and commits
    /// their signals; moves this handle to the new generation.
    #[pyo3(signature = (taggers, query = None, force = false))]
    fn tag_json(
        &self,
        py: Python<'_>,
        taggers: Vec<String>,
        query: Option<String>,
        force: bool,
    ) -> PyResult<String> {
        let list = Tagger::parse_list(&taggers.join(",")).map_err(py_err)?;
        let opts = TagOptions {
            taggers: list,
            query,
            force,
            ..TagOptions::default()
        };
        let mut c = (*self.snap()).clone();
        let r = run(py, || c.tag(&opts))?;
        self.set(c);
        let outcomes: Vec<serde_json::Value> = r
            .outcomes
            .iter()
            .map(|o| serde_json::json!({"tagger": o.tagger, "docs": o.docs, "version": o.version}))
            .collect();
        to_json(&serde_json::json!({
            "taggers": outcomes, "generation": r.generation,
            "seconds": r.seconds, "bytes": r.bytes,
        }))
    }

    /// Exports the matching records (JSONL, compressed by extension) under
    /// the policy; returns what was written and held back.
    #[pyo3(signature = (query, path, fields = None, limit = None, override_policy = false, redact_pii = false))]
    #[allow(clippy::too_many_arguments)]
    fn export_json(
        &self,
        py: Python<'_>,
        query: &str,
        path: PathBuf,
        fields: Option<Vec<String>>,
        limit: Option<u64>,
        override_policy: bool,
        redact_pii: bool,
    ) -> PyResult<String> {
        let c = &*self.snap();
        let opts = ExportOptions {
            projection: projection(fields, false),
            redact_pii,
            limit,
            override_policy,
        };
        let r = run(py, || {
            opts.projection.check(c.schema())?;
            let sel = c.query(query)?;
            let mut out = crate::export::open_output(Some(&path))?;
            let r = c.export(&sel, &opts, &mut out)?;
            out.finish()?;
            Ok(r)
        })?;
        to_json(&r)
    }

    /// Opens a stream of packed token sequences.
    #[pyo3(signature = (mixture, rank = 0, world = 1, resume = None, override_policy = false,
                        worker = 0, workers = 1, block = 1, skip = 0, prefetch = 2, stop_after = None,
                        track_facets = false, provenance = false))]
    #[allow(clippy::too_many_arguments)]
    fn stream(
        &self,
        py: Python<'_>,
        mixture: &PyMixture,
        rank: u64,
        world: u64,
        resume: Option<&str>,
        override_policy: bool,
        worker: u64,
        workers: u64,
        block: u64,
        skip: u64,
        prefetch: usize,
        stop_after: Option<u64>,
        track_facets: bool,
        provenance: bool,
    ) -> PyResult<PyStream> {
        let resume = resume
            .map(|s| {
                serde_json::from_str::<StreamState>(s)
                    .map_err(|e| ResumeError::new_err(format!("not a corpusql stream state: {e}")))
            })
            .transpose()?;
        let opts = StreamOptions {
            rank,
            world,
            resume,
            stop_after,
            prefetch,
            override_policy,
            track_facets,
            split: WorkerSplit {
                worker,
                workers,
                block,
                skip,
            },
            provenance,
        };
        let c = &*self.snap();
        let pool = pool()?;
        let s = run(py, || c.stream(&mixture.inner, opts))?;
        let enc = Encoding::for_vocab(s.tokenizer().vocab_size());
        Ok(PyStream {
            inner: Mutex::new(Some(s.in_pool(pool))),
            closed: Mutex::new(None),
            enc,
        })
    }
}

/// A lazy reader of records (JSONL chunks).
#[pyclass(name = "Records", module = "corpusql._corpusql")]
struct Records {
    inner: Option<JsonlReader>,
}

#[pymethods]
impl Records {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// The next chunk of JSONL text (a few blocks' records).
    fn __next__(&mut self, py: Python<'_>) -> PyResult<String> {
        let Some(r) = self.inner.as_mut() else {
            return Err(PyStopIteration::new_err(()));
        };
        let blocks = pool()?.current_num_threads().max(1) * 2;
        match run(py, || r.next_chunk(blocks))? {
            Some(buf) => Ok(String::from_utf8_lossy(&buf).into_owned()),
            None => {
                self.inner = None;
                Err(PyStopIteration::new_err(()))
            }
        }
    }
}

/// A stream of packed token batches.
#[pyclass(name = "Stream", module = "corpusql._corpusql")]
struct PyStream {
    inner: Mutex<Option<crate::Stream>>,
    /// State, emitted and policy JSON kept at close.
    closed: Mutex<Option<[String; 3]>>,
    enc: Encoding,
}

/// A batch as it crosses to Python: token bytes, position bytes, rows,
/// sequence length, global sequence indices, component per row, and
/// provenance (JSON: per row, `[key, token offset, tokens]` pieces).
type EncodedBatch = (
    Vec<u8>,
    Option<Vec<u8>>,
    usize,
    usize,
    Vec<u64>,
    Vec<u32>,
    Option<String>,
);

/// The next batch of `s`, encoded, with positions when asked.
fn next_parts(
    pool: &rayon::ThreadPool,
    s: &mut crate::Stream,
    rows: usize,
    enc: Encoding,
    positions: bool,
    provenance: bool,
) -> crate::Result<Option<EncodedBatch>> {
    let b = if s.prefetches() {
        s.next_batch(rows)?
    } else {
        pool.install(|| s.next_batch(rows))?
    };
    let Some(b) = b else {
        return Ok(None);
    };
    let mut tok = Vec::new();
    pool.install(|| b.encode(enc, &mut tok))?;
    let pos = positions.then(|| {
        let l = b.seq_len();
        let mut out = Vec::with_capacity(b.tokens().len() * 4);
        for starts in b.document_starts() {
            let mut next = starts.iter().peekable();
            let mut base = 0u32;
            for j in 0..l as u32 {
                if next.peek().is_some_and(|&&s| s == j) {
                    base = j;
                    next.next();
                }
                out.extend_from_slice(&(j - base).to_le_bytes());
            }
        }
        out
    });
    let seqs = b.sequences().to_vec();
    let prov = if provenance {
        let mut rows: Vec<Vec<serde_json::Value>> = vec![Vec::new(); b.rows()];
        for p in b.pieces() {
            if let Some(r) = rows.get_mut(p.row) {
                r.push(serde_json::json!([
                    p.key.as_deref(),
                    p.doc_offset,
                    p.tokens
                ]));
            }
        }
        Some(serde_json::to_string(&rows).map_err(|e| crate::Error::Invalid(e.to_string()))?)
    } else {
        None
    };
    let (rows, seq_len, components) = (b.rows(), b.seq_len(), b.components().to_vec());
    s.recycle(b);
    Ok(Some((tok, pos, rows, seq_len, seqs, components, prov)))
}

type BatchParts = (
    Py<PyByteArray>,
    Option<Py<PyByteArray>>,
    usize,
    usize,
    Vec<u64>,
    Vec<u32>,
    Option<String>,
);

impl PyStream {
    /// One of the JSON texts kept at close (0 state, 1 emitted, 2 policy),
    /// or `f` of the open stream.
    fn json_of(
        &self,
        which: usize,
        f: impl FnOnce(&crate::Stream) -> PyResult<String>,
    ) -> PyResult<String> {
        if let Some(kept) = self
            .closed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            return Ok(kept[which].clone());
        }
        self.with(f)?
    }

    /// `f` of the open stream.
    fn with<T>(&self, f: impl FnOnce(&crate::Stream) -> T) -> PyResult<T> {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.as_ref()
            .map(f)
            .ok_or_else(|| CorpusqlError::new_err("the stream is closed"))
    }
}

#[pymethods]
impl PyStream {
    /// The next batch of up to `rows` sequences: (token bytes, position
    /// bytes or None, rows, seq_len, global sequence indices, component
    /// index per row, provenance JSON or None), or None at the end. Tokens
    /// are little-endian u16 or u32 (`width`); positions (u32, when asked)
    /// restart at 0 at each document start; provenance (when asked) gives
    /// per row its `[key, token offset, tokens]` pieces (keys when the
    /// stream was opened with `provenance`).
    #[pyo3(signature = (rows, positions = false, provenance = false))]
    fn next_batch(
        &mut self,
        py: Python<'_>,
        rows: usize,
        positions: bool,
        provenance: bool,
    ) -> PyResult<Option<BatchParts>> {
        let enc = self.enc;
        let s = self
            .inner
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
            .ok_or_else(|| CorpusqlError::new_err("the stream is closed"))?;
        let pool = pool()?;
        // Parallel work runs in this process's pool (rayon's global pool may
        // be a dead copy from before a fork). The wait for the prefetch
        // thread happens off the pool: see `Stream::in_pool`.
        let got = py
            .allow_threads(|| next_parts(&pool, s, rows, enc, positions, provenance))
            .map_err(py_err)?;
        Ok(got.map(|(tok, pos, rows, seq_len, seqs, comps, prov)| {
            (
                PyByteArray::new(py, &tok).unbind(),
                pos.map(|p| PyByteArray::new(py, &p).unbind()),
                rows,
                seq_len,
                seqs,
                comps,
                prov,
            )
        }))
    }

    /// Changes the weights (JSON object: component name to weight) from
    /// global sequence `from_sequence` to the end of its phase; recorded in
    /// the state. See `Stream::set_weights`.
    fn set_weights(
        &mut self,
        py: Python<'_>,
        weights_json: &str,
        from_sequence: u64,
    ) -> PyResult<()> {
        let weights: std::collections::BTreeMap<String, f64> =
            serde_json::from_str(weights_json).map_err(json_err)?;
        let s = self
            .inner
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
            .ok_or_else(|| CorpusqlError::new_err("the stream is closed"))?;
        py.allow_threads(|| s.set_weights(weights, from_sequence))
            .map_err(py_err)
    }

    /// The mixture's component names, in the order of the component indices.
    #[getter]
    fn component_names(&self) -> PyResult<Vec<String>> {
        self.with(|s| {
            s.mixture()
                .components
                .iter()
                .map(|c| c.name.clone())
                .collect()
        })
    }

    /// Bytes per token id: 2 (u16) or 4 (u32).
    #[getter]
    fn width(&self) -> usize {
        self.enc.width()
    }

    /// The resume state after the batches handed out (JSON).
    fn state_json(&self) -> PyResult<String> {
        self.json_of(0, |s| to_json(&s.state()))
    }

    /// What the batches handed out hold (JSON).
    fn emitted_json(&self) -> PyResult<String> {
        self.json_of(1, |s| to_json(&s.emitted()))
    }

    /// What the policy held back from this stream (JSON).
    fn policy_json(&self) -> PyResult<String> {
        self.json_of(2, |s| to_json(s.policy()))
    }

    /// Tokens per sequence.
    #[getter]
    fn seq_len(&self) -> PyResult<usize> {
        self.with(|s| s.seq_len())
    }

    /// The tokenizer's vocabulary size.
    #[getter]
    fn vocab_size(&self) -> PyResult<u32> {
        self.with(|s| s.tokenizer().vocab_size())
    }

    /// The end-of-document token id.
    #[getter]
    fn eos(&self) -> PyResult<u32> {
        self.with(|s| s.tokenizer().eos())
    }

    /// Sequences this rank (or worker) emits in all.
    #[getter]
    fn total_sequences(&self) -> PyResult<u64> {
        self.with(|s| s.total_sequences())
    }

    /// Sequences handed out so far.
    #[getter]
    fn emitted_sequences(&self) -> PyResult<u64> {
        self.with(|s| s.emitted_sequences())
    }

    /// Global sequences of the whole stream (all ranks).
    #[getter]
    fn global_sequences(&self) -> PyResult<u64> {
        self.with(|s| s.global_sequences())
    }

    /// The first global sequence of this run (the resume point).
    #[getter]
    fn start_sequence(&self) -> PyResult<u64> {
        self.with(|s| s.start_sequence())
    }

    /// Stops the prefetch thread and frees the stream.
    fn close(&mut self, py: Python<'_>) {
        if let Some(s) = self
            .inner
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            py.allow_threads(|| drop(s));
        }
    }
}

/// Ingests files and/or JSONL text into the corpus at `path` (created if
/// absent); returns the report as JSON (the shape of `ingest --json`).
#[pyfunction]
#[pyo3(signature = (path, inputs = Vec::new(), records = None, on_duplicate = "skip",
                    text_field = None, id_field = None, license_field = None, allow_rejects = true))]
#[allow(clippy::too_many_arguments)]
fn ingest_json(
    py: Python<'_>,
    path: PathBuf,
    inputs: Vec<PathBuf>,
    records: Option<Vec<u8>>,
    on_duplicate: &str,
    text_field: Option<String>,
    id_field: Option<String>,
    license_field: Option<String>,
    allow_rejects: bool,
) -> PyResult<String> {
    let mut opts = IngestOptions {
        on_duplicate: self::on_duplicate(on_duplicate)?,
        license_field,
        ..IngestOptions::default()
    };
    if let Some(t) = text_field {
        opts.record.text_field = Some(t);
    }
    if let Some(i) = id_field {
        opts.record.id_field = Some(i);
    }
    let mut ins: Vec<Input> = inputs.into_iter().map(Input::Path).collect();
    if let Some(bytes) = records {
        ins.push(Input::Reader(
            "<records>".into(),
            Box::new(Cursor::new(bytes)),
        ));
    }
    if ins.is_empty() {
        return Err(CorpusqlError::new_err("ingest: no inputs and no records"));
    }
    let r = run(py, || crate::ingest(&path, ins, &opts))?;
    if r.rejected > 0 && !allow_rejects {
        let first = r.rejects.first().map(|x| x.to_string()).unwrap_or_default();
        return Err(IngestError::new_err(format!(
            "{} records rejected (the rest committed in generation {}); first: {first}",
            r.rejected, r.generation
        )));
    }
    let rejects: Vec<String> = r.rejects.iter().map(|x| x.to_string()).collect();
    to_json(&serde_json::json!({
        "ingested": r.ingested, "skipped": r.skipped, "replaced": r.replaced,
        "rejected": r.rejected, "blank": r.blank, "text_bytes": r.text_bytes,
        "input_bytes": r.input_bytes, "segments": r.segments, "generation": r.generation,
        "committed": r.committed,
        "seconds": r.seconds, "unknown_licenses": r.unknown_licenses, "rejects": rejects,
        "unindexed": r.unindexed,
        "files": r.files.iter().map(|f| serde_json::json!({
            "file": f.source, "ingested": f.ingested, "skipped": f.skipped,
            "replaced": f.replaced, "rejected": f.rejected, "bytes": f.size,
        })).collect::<Vec<_>>(),
    }))
}

/// The JSON of a job task's ingest report.
fn task_report_json(r: &crate::IngestReport) -> PyResult<String> {
    let rejects: Vec<String> = r.rejects.iter().map(|x| x.to_string()).collect();
    to_json(&serde_json::json!({
        "ingested": r.ingested, "skipped": r.skipped, "replaced": r.replaced,
        "rejected": r.rejected, "text_bytes": r.text_bytes, "segments": r.segments,
        "seconds": r.seconds, "rejects": rejects,
        "files": r.files.iter().map(|f| f.source.clone()).collect::<Vec<_>>(),
    }))
}

fn task_id(index: u32, count: u32) -> PyResult<crate::job::TaskId> {
    if count == 0 {
        Ok(crate::job::TaskId::open(index))
    } else {
        crate::job::TaskId::new(index, count).map_err(py_err)
    }
}

/// Runs task `index` of `count` (0: a job whose driver names its tasks at
/// commit) of the ingest job `job` on the corpus at `path`: stages, commits
/// nothing (`corpusql ingest --job --task`).
#[pyfunction]
#[pyo3(signature = (path, job, index, count, inputs, on_duplicate = "skip",
                    text_field = None, id_field = None, license_field = None))]
#[allow(clippy::too_many_arguments)]
fn ingest_task_json(
    py: Python<'_>,
    path: PathBuf,
    job: String,
    index: u32,
    count: u32,
    inputs: Vec<PathBuf>,
    on_duplicate: &str,
    text_field: Option<String>,
    id_field: Option<String>,
    license_field: Option<String>,
) -> PyResult<String> {
    let mut opts = IngestOptions {
        on_duplicate: self::on_duplicate(on_duplicate)?,
        license_field,
        ..IngestOptions::default()
    };
    opts.record.text_field = text_field;
    opts.record.id_field = id_field;
    let task = task_id(index, count)?;
    let ins: Vec<Input> = inputs.into_iter().map(Input::Path).collect();
    let r = run(py, || crate::ingest_task(&path, &job, task, ins, &opts))?;
    task_report_json(&r)
}

/// Runs task `index` of `count` of the tagging job `job`: the taggers
/// (comma-separated names) over its share of the segments, staged.
#[pyfunction]
#[pyo3(signature = (path, job, index, count, taggers = None))]
fn tag_task_json(
    py: Python<'_>,
    path: PathBuf,
    job: String,
    index: u32,
    count: u32,
    taggers: Option<String>,
) -> PyResult<String> {
    let mut opts = TagOptions::default();
    if let Some(t) = taggers {
        opts.taggers = Tagger::parse_list(&t).map_err(py_err)?;
    }
    let task = task_id(index, count)?;
    let r = run(py, || crate::tag_task(&path, &job, task, &opts))?;
    to_json(&serde_json::json!({
        "taggers": r.outcomes.iter().map(|o| serde_json::json!({
            "tagger": o.tagger, "version": o.version, "docs": o.docs, "sidecars": o.sidecars,
        })).collect::<Vec<_>>(),
        "seconds": r.seconds,
    }))
}

/// Commits job `job` (`corpusql commit --job`): every task of its count,
/// or exactly `tasks` when given.
#[pyfunction]
#[pyo3(signature = (path, job, tasks = None))]
fn commit_job_json(
    py: Python<'_>,
    path: PathBuf,
    job: String,
    tasks: Option<Vec<u32>>,
) -> PyResult<String> {
    let opts = TagOptions::default();
    let r = run(py, || {
        crate::job::commit_tasks(&path, &job, tasks.as_deref(), &opts)
    })?;
    to_json(&r.to_json())
}

/// Removes the staging of job `job`; returns whether there was any.
#[pyfunction]
fn abort_job(path: PathBuf, job: String) -> PyResult<bool> {
    crate::job::abort(&path, &job).map_err(py_err)
}

#[pymodule]
fn _corpusql(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("CorpusqlError", py.get_type::<CorpusqlError>())?;
    m.add("QueryError", py.get_type::<QueryError>())?;
    m.add("CorpusError", py.get_type::<CorpusError>())?;
    m.add("ResumeError", py.get_type::<ResumeError>())?;
    m.add("IngestError", py.get_type::<IngestError>())?;
    m.add_class::<PyCorpus>()?;
    m.add_class::<PyMixture>()?;
    m.add_class::<PyStream>()?;
    m.add_class::<Records>()?;
    m.add_function(wrap_pyfunction!(ingest_json, m)?)?;
    m.add_function(wrap_pyfunction!(set_threads, m)?)?;
    m.add_function(wrap_pyfunction!(ingest_task_json, m)?)?;
    m.add_function(wrap_pyfunction!(tag_task_json, m)?)?;
    m.add_function(wrap_pyfunction!(commit_job_json, m)?)?;
    m.add_function(wrap_pyfunction!(abort_job, m)?)?;
    Ok(())
}
