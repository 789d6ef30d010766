//! Ingest: JSONL inputs -> validated records -> segments -> one catalog commit.
//!
//! A reader thread decompresses and cuts each input into chunks of whole
//! lines; rayon parses the lines of a chunk in parallel; one thread applies
//! them in input order (schema check, duplicate keys, rejects) to a segment
//! builder that is written out whenever it reaches its memory budget, so
//! memory stays bounded whatever the input size. Nothing is visible until
//! the single catalog commit at the end; a crash before it leaves only
//! unreferenced files, collected on the next open.

pub mod input;
pub mod parquet;
pub mod record;

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc::sync_channel;
use std::time::Instant;

use rayon::prelude::*;
use roaring::RoaringBitmap;
use xxhash_rust::xxh3::xxh3_64;

use crate::catalog::{unix_now, Catalog, CatalogState, Commit, IngestLogEntry, SegmentEntry};
use crate::corpus::{collect_orphans, segment_file_name, WriteLock, DEFAULT_CLUSTER_FIELDS};
use crate::error::{Error, IoContext, Result};
use crate::schema::Schema;
pub use crate::segment::WriterOptions;
use crate::segment::{write_segment_with, DocRecord, Segment};

pub use input::Input;
pub use record::{parse_line, Parsed, RecordOptions};

/// What to do with a record whose key already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnDuplicate {
    /// Keep the first document, count the record as skipped.
    #[default]
    Skip,
    /// Replace the older document (it is tombstoned).
    Replace,
    /// Abort the ingest; nothing is committed.
    Error,
}

/// Ingest settings.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// How records are read.
    pub record: RecordOptions,
    /// Duplicate-key policy.
    pub on_duplicate: OnDuplicate,
    /// Where rejected lines are written (JSONL: file, line, reason, raw).
    pub rejects: Option<PathBuf>,
    /// Memory budget of one in-memory segment before it is written.
    pub segment_bytes: usize,
    /// Receives the bytes read per input (see [`crate::progress`]).
    pub progress: Option<crate::progress::ProgressSink>,
    /// How many rejects the report keeps (all go to `rejects`).
    pub max_reported: usize,
    /// The field licenses are read from, for the whole corpus (`license`
    /// unless set; `license_id` and `license_class` derive from it).
    pub license_field: Option<String>,
    /// Block size and zstd level of the segments written.
    pub writer: WriterOptions,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions {
            record: RecordOptions::default(),
            on_duplicate: OnDuplicate::Skip,
            rejects: None,
            segment_bytes: 96 << 20,
            progress: None,
            max_reported: 1000,
            license_field: None,
            writer: WriterOptions::default(),
        }
    }
}

/// A rejected line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    /// Input name.
    pub file: String,
    /// 1-based line number.
    pub line: u64,
    /// Why it was rejected.
    pub reason: String,
}

impl std::fmt::Display for Reject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.reason)
    }
}

/// What an ingest did.
#[derive(Debug, Clone, Default)]
pub struct IngestReport {
    /// Documents written.
    pub ingested: u64,
    /// Records skipped as duplicate keys.
    pub skipped: u64,
    /// Records that replaced an older document.
    pub replaced: u64,
    /// Records rejected.
    pub rejected: u64,
    /// Blank lines ignored.
    pub blank: u64,
    /// Text bytes ingested.
    pub text_bytes: u64,
    /// Raw input bytes read.
    pub input_bytes: u64,
    /// Segments written.
    pub segments: usize,
    /// Generation committed; when the ingest changed nothing (every record
    /// a duplicate skipped, or no record at all) no generation is made and
    /// this is the corpus's current one.
    pub generation: u64,
    /// The first rejects (up to `max_reported`).
    pub rejects: Vec<Reject>,
    /// Wall time in seconds.
    pub seconds: f64,
    /// Whether a generation was committed (false when nothing changed).
    pub committed: bool,
    /// Per input, in the order read: its name and what became of its records
    /// (a directory or glob is one entry per file it expanded to).
    pub files: Vec<IngestLogEntry>,
    /// Nested leaves left out of the index because their kind disagreed
    /// with the schema (`meta.year` a string where earlier records had a
    /// number), by field: the records are stored whole and exported as they
    /// were, but these values cannot be queried.
    pub unindexed: std::collections::BTreeMap<String, u64>,
    /// License strings of the new documents that no alias or SPDX id
    /// matched (their `license_id` is `unknown`), with document counts,
    /// most frequent first; `(none)` counts documents without a license.
    pub unknown_licenses: Vec<(String, u64)>,
}

#[derive(Clone, Copy)]
enum Loc {
    Builder(u32),
    New(u32),
}

struct State<'a> {
    /// Signal columns of taggers (a record field may not take their names).
    signals: std::collections::BTreeMap<String, crate::catalog::SignalInfo>,
    /// Where new segments are written: the corpus directory, or a job
    /// task's staging folder.
    seg_dir: &'a Path,
    opts: &'a IngestOptions,
    schema: Schema,
    schema_changed: bool,
    existing: Vec<(u64, Segment, RoaringBitmap)>,
    builder: Vec<DocRecord>,
    builder_bytes: usize,
    index: HashMap<u64, Loc>,
    overflow: HashMap<String, Loc>,
    new_segs: Vec<(SegmentEntry, Option<Segment>)>,
    tombstones: HashMap<u64, RoaringBitmap>,
    next_id: u64,
    cluster: Vec<String>,
    report: IngestReport,
    rejects_out: Option<std::io::BufWriter<std::fs::File>>,
    per_input: (u64, u64, u64, u64),
    /// Records of the current input rejected for lacking the text field,
    /// and the first such reason.
    missing_text: (u64, Option<String>),
    writer: Option<(
        usize,
        std::thread::JoinHandle<Result<crate::segment::WrittenSegment>>,
    )>,
}

impl State<'_> {
    fn reject(&mut self, file: &str, line: u64, reason: String, raw: &[u8]) -> Result<()> {
        self.report.rejected += 1;
        self.per_input.3 += 1;
        if reason.starts_with(MISSING_TEXT) {
            self.missing_text.0 += 1;
            if self.missing_text.1.is_none() {
                self.missing_text.1 = Some(reason.clone());
            }
        }
        if let Some(w) = &mut self.rejects_out {
            let mut out = Vec::with_capacity(raw.len() + 100);
            out.extend_from_slice(b"{\"file\":");
            crate::json::write_str(&mut out, file);
            out.extend_from_slice(format!(",\"line\":{line},\"reason\":").as_bytes());
            crate::json::write_str(&mut out, &reason);
            out.extend_from_slice(b",\"raw\":");
            crate::json::write_str(&mut out, &String::from_utf8_lossy(raw));
            out.extend_from_slice(b"}\n");
            let p = self.opts.rejects.as_deref().unwrap_or(Path::new("rejects"));
            w.write_all(&out).at(p)?;
        }
        if self.report.rejects.len() < self.opts.max_reported {
            self.report.rejects.push(Reject {
                file: file.to_string(),
                line,
                reason,
            });
        }
        Ok(())
    }

    /// Where `key` already lives, if anywhere.
    fn find(&mut self, key: &str, h: u64) -> Result<Option<DupAt>> {
        let hit = self.index.get(&h).copied();
        let loc = match hit {
            Some(l) if self.loc_holds(l, key)? => Some(l),
            _ => self.overflow.get(key).copied(),
        };
        if let Some(l) = loc {
            return Ok(Some(match l {
                Loc::Builder(i) => DupAt::Builder(i),
                Loc::New(s) => {
                    let seg = self.new_segs[s as usize]
                        .1
                        .as_ref()
                        .expect("opened by loc_holds");
                    DupAt::Seg(
                        self.new_segs[s as usize].0.id,
                        seg.key_ordinal(key).unwrap_or(0),
                    )
                }
            }));
        }
        for (id, seg, live) in &self.existing {
            if let Some(ord) = seg.key_ordinal(key) {
                let dead = self.tombstones.get(id).is_some_and(|t| t.contains(ord));
                if live.contains(ord) && !dead {
                    return Ok(Some(DupAt::Seg(*id, ord)));
                }
            }
        }
        Ok(None)
    }

    fn loc_holds(&mut self, l: Loc, key: &str) -> Result<bool> {
        Ok(match l {
            Loc::Builder(i) => self.builder[i as usize].key == key,
            Loc::New(s) => {
                if self.writer.as_ref().is_some_and(|(i, _)| *i == s as usize) {
                    self.join_writer()?;
                }
                let e = &mut self.new_segs[s as usize];
                if e.1.is_none() {
                    e.1 = Some(Segment::open(&self.seg_dir.join(&e.0.file))?);
                }
                let id = e.0.id;
                let ord = e.1.as_ref().unwrap().key_ordinal(key);
                ord.is_some_and(|o| !self.tombstones.get(&id).is_some_and(|t| t.contains(o)))
            }
        })
    }

    fn remember(&mut self, key: &str, h: u64, loc: Loc) -> Result<()> {
        match self.index.get(&h).copied() {
            Some(old) if !self.loc_holds(old, key)? => {
                self.overflow.insert(key.to_string(), loc);
            }
            _ => {
                self.index.insert(h, loc);
            }
        }
        Ok(())
    }

    /// Adds the kinds of a document's new fields to the schema.
    fn learn_schema(&mut self, doc: &DocRecord) {
        for (f, kind) in &doc.present {
            if !self.schema.fields.contains_key(f.as_ref()) {
                self.schema.fields.insert(f.to_string(), *kind);
                self.schema_changed = true;
            }
        }
    }

    /// Drops the nested leaves (`meta.year`) whose kind disagrees with the
    /// schema or whose name is a signal's, counting them per field: a nested
    /// value never rejects its record (which is stored whole either way).
    fn drop_unindexable(&self, doc: &mut DocRecord) -> Vec<String> {
        if doc.nested == 0 {
            return Vec::new();
        }
        let top = doc.present.len() - doc.nested;
        let mut dropped: Vec<String> = Vec::new();
        for (f, kind) in &doc.present[top..] {
            let clash = self.signals.contains_key(f.as_ref())
                || self
                    .schema
                    .fields
                    .get(f.as_ref())
                    .is_some_and(|k| k != kind);
            if clash {
                dropped.push(f.to_string());
            }
        }
        if dropped.is_empty() {
            return dropped;
        }
        let gone = |f: &str| dropped.iter().any(|d| d == f);
        let mut i = 0;
        doc.present.retain(|(f, _)| {
            i += 1;
            i <= top || !gone(f)
        });
        doc.nested -= dropped.len();
        doc.facets.retain(|(f, _)| !gone(f));
        doc.numbers.retain(|(f, _)| !gone(f));
        dropped
    }

    /// Counts the nested leaves a stored document left out of the index.
    fn count_unindexed(&mut self, dropped: Vec<String>) {
        for f in dropped {
            *self.report.unindexed.entry(f).or_default() += 1;
        }
    }

    fn apply(&mut self, file: &str, line: u64, mut doc: DocRecord, raw: &[u8]) -> Result<()> {
        let dropped = self.drop_unindexable(&mut doc);
        for (f, _) in &doc.present {
            if let Some(info) = self.signals.get(f.as_ref()) {
                let reason = format!(
                    "field `{f}` is a signal of this corpus (computed by the {} tagger); rename the field",
                    info.tagger
                );
                return self.reject(file, line, reason, raw);
            }
        }
        for (f, kind) in &doc.present {
            if let Some(k) = self.schema.fields.get(f.as_ref()) {
                if k != kind {
                    let reason = format!(
                        "field `{f}` is {} in this corpus's schema, found {}",
                        k.describe(),
                        kind.describe()
                    );
                    return self.reject(file, line, reason, raw);
                }
            }
        }
        let h = xxh3_64(doc.key.as_bytes());
        if let Some(at) = self.find(&doc.key, h)? {
            match self.opts.on_duplicate {
                OnDuplicate::Skip => {
                    self.report.skipped += 1;
                    self.per_input.1 += 1;
                    return Ok(());
                }
                OnDuplicate::Error => {
                    return Err(Error::DuplicateKey {
                        file: file.to_string(),
                        line,
                        key: doc.key,
                    })
                }
                OnDuplicate::Replace => {
                    self.report.replaced += 1;
                    self.per_input.2 += 1;
                    match at {
                        DupAt::Builder(i) => {
                            self.count_unindexed(dropped);
                            self.learn_schema(&doc);
                            let old = std::mem::replace(&mut self.builder[i as usize], doc);
                            self.builder_bytes -= old.heap_size();
                            self.builder_bytes += self.builder[i as usize].heap_size();
                            return Ok(());
                        }
                        DupAt::Seg(id, ord) => {
                            self.tombstones.entry(id).or_default().insert(ord);
                        }
                    }
                }
            }
        }
        self.count_unindexed(dropped);
        self.learn_schema(&doc);
        self.report.ingested += 1;
        self.per_input.0 += 1;
        self.report.text_bytes += doc.text.len() as u64;
        self.builder_bytes += doc.heap_size();
        let idx = self.builder.len() as u32;
        self.remember(&doc.key, h, Loc::Builder(idx))?;
        self.builder.push(doc);
        if self.builder_bytes >= self.opts.segment_bytes {
            self.flush()?;
        }
        Ok(())
    }

    /// Applies a parsed chunk in order; returns its buffer for reuse.
    fn apply_chunk(&mut self, name: &str, pc: ParsedChunk) -> Result<Vec<u8>> {
        for (i, p) in pc.parsed.into_iter().enumerate() {
            let n = pc.first_line + i as u64 + 1;
            let (a, b) = pc.ranges[i];
            let line = &pc.chunk[a..b];
            match p {
                Parsed::Blank => self.report.blank += 1,
                Parsed::Reject(reason) => self.reject(name, n, reason, line)?,
                Parsed::Doc(d) => self.apply(name, n, *d, line)?,
            }
        }
        Ok(pc.chunk)
    }

    /// Hands the builder to a background writer (one at a time), so that
    /// parsing goes on while the segment is clustered and compressed.
    fn flush(&mut self) -> Result<()> {
        if self.builder.is_empty() {
            return Ok(());
        }
        self.join_writer()?;
        let docs = std::mem::take(&mut self.builder);
        self.builder_bytes = 0;
        let hashes: Vec<u64> = docs.iter().map(|d| xxh3_64(d.key.as_bytes())).collect();
        let id = self.next_id;
        self.next_id += 1;
        let file = segment_file_name(id);
        let s = self.new_segs.len() as u32;
        self.new_segs.push((
            SegmentEntry {
                id,
                file: file.clone(),
                docs: 0,
                text_bytes: 0,
                file_bytes: 0,
                added_generation: 0,
            },
            None,
        ));
        self.report.segments += 1;
        for h in hashes {
            if let Some(l @ Loc::Builder(_)) = self.index.get_mut(&h) {
                *l = Loc::New(s);
            }
        }
        for l in self.overflow.values_mut() {
            if matches!(l, Loc::Builder(_)) {
                *l = Loc::New(s);
            }
        }
        let path = self.seg_dir.join(&file);
        let cluster = self.cluster.clone();
        let options = self.opts.writer;
        self.writer = Some((
            s as usize,
            std::thread::spawn(move || write_segment_with(&path, docs, &cluster, &options)),
        ));
        Ok(())
    }

    /// Waits for the background writer and records what it wrote.
    fn join_writer(&mut self) -> Result<()> {
        if let Some((i, h)) = self.writer.take() {
            // Called from a pool worker (a library user's `par_iter`), the
            // wait runs pool work meanwhile: the writer needs the pool too.
            crate::pool::help_while(|| !h.is_finished());
            let w = h
                .join()
                .map_err(|_| Error::Invalid("segment writer thread panicked".into()))??;
            let e = &mut self.new_segs[i].0;
            e.docs = w.docs;
            e.text_bytes = w.text_bytes;
            e.file_bytes = w.file_bytes;
        }
        Ok(())
    }
}

enum DupAt {
    Builder(u32),
    Seg(u64, u32),
}

/// Ingests `inputs` into the corpus in `dir` (created when missing) and
/// commits them as one new generation.
///
/// `dir` may be a URI (`s3://...`): the ingest is then committed as the
/// URI's next version ([`crate::remote::write`]).
pub fn ingest(dir: &Path, inputs: Vec<Input>, opts: &IngestOptions) -> Result<IngestReport> {
    if let Some(uri) = crate::remote::as_uri(dir) {
        let replay = input::Replayable::take(inputs)?;
        let (r, _) =
            crate::remote::write(uri, "ingest", |work| ingest(work, replay.inputs(), opts))?;
        return Ok(r);
    }
    let start = Instant::now();
    crate::remote::refuse_write(dir)?;
    let inputs = expand_inputs(inputs)?;
    check_corpus_dir(dir)?;
    std::fs::create_dir_all(dir).at(dir)?;
    let _lock = WriteLock::acquire(dir)?;
    let catalog = Catalog::new(dir);
    if !catalog.exists() {
        catalog.create(&new_schema(opts), &default_cluster())?;
    }
    let cstate = catalog.refresh_current()?;
    collect_orphans(dir, &cstate)?;
    let mut built = build(dir, dir, &cstate, inputs, opts, cstate.next_segment_id)?;
    let tombstoned: u64 = built.tombstones.iter().map(|(_, t)| t.len()).sum();
    let detail = built
        .log
        .iter()
        .map(|l| l.source.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let commit = Commit {
        add: built.segments.clone(),
        remove: vec![],
        tombstones: std::mem::take(&mut built.tombstones),
        schema: built.schema_changed.then(|| built.schema.clone()),
        ingest_log: built.log.clone(),
        op: "ingest".into(),
        detail,
        next_segment_id: built.next_id,
        license_field: built.license_field_change(&cstate),
        ..Default::default()
    };
    let mut report = built.report;
    report.files = built.log;
    let changes_nothing = commit.add.is_empty()
        && commit.tombstones.is_empty()
        && commit.schema.is_none()
        && commit.license_field.is_none();
    if changes_nothing {
        report.generation = cstate.generation;
        report.seconds = start.elapsed().as_secs_f64();
        return Ok(report);
    }
    let live = built.prior_live + report.ingested - tombstoned;
    let license_field = built
        .opts
        .license_field
        .clone()
        .unwrap_or_else(|| cstate.license_field().to_string());
    match catalog.commit(cstate.generation, commit, live) {
        Ok(g) => {
            report.generation = g;
            report.committed = true;
        }
        Err(e) => {
            crate::corpus::remove_unless_committed(dir, &catalog);
            return Err(e);
        }
    }
    report.unknown_licenses = unknown_licenses(
        dir,
        built.segments.iter().map(|e| e.file.as_str()),
        &license_field,
    )?;
    report.seconds = start.elapsed().as_secs_f64();
    Ok(report)
}

/// Runs task `task` of the ingest job `job` (see [`crate::job`]): takes
/// its contiguous share of the files `inputs` expand to (every task is
/// given the same inputs), reads them against the corpus as it is now and
/// stages the segments in the job's folder, without committing. Running a
/// task again replaces its staging. `corpusql commit --job` commits them.
pub fn ingest_task(
    dir: &Path,
    job: &str,
    task: crate::job::TaskId,
    inputs: Vec<Input>,
    opts: &IngestOptions,
) -> Result<IngestReport> {
    if let Some(uri) = crate::remote::as_uri(dir) {
        return crate::remote::run_task(uri, job, task, |work| {
            ingest_task(work, job, task, inputs, opts)
        });
    }
    let start = Instant::now();
    crate::remote::refuse_write(dir)?;
    crate::job::check_name(job)?;
    let mut inputs = expand_inputs(inputs)?;
    if let Some(i) = inputs.iter().find(|i| !matches!(i, Input::Path(_))) {
        return Err(Error::Invalid(format!(
            "{}: a job task reads files (every task is given the same list and takes its share), not stdin",
            i.name()
        )));
    }
    check_corpus_dir(dir)?;
    let share = task.share(inputs.len());
    let mine: Vec<Input> = inputs.drain(share).collect();
    let catalog = Catalog::new(dir);
    let cstate = if catalog.exists() {
        catalog.state()?
    } else {
        CatalogState {
            schema: new_schema(opts),
            cluster_fields: default_cluster(),
            ..CatalogState::default()
        }
    };
    let staging = crate::job::Staging::begin(dir, job, task)?;
    let built = build(
        dir,
        staging.path(),
        &cstate,
        mine,
        opts,
        crate::job::STAGED_ID_BASE,
    )?;
    let mut m =
        crate::job::Manifest::new(job, crate::job::JobKind::Ingest, task, cstate.generation);
    m.segments = built.segments.clone();
    m.tombstones = built
        .tombstones
        .iter()
        .map(|(id, b)| (*id, b.iter().collect()))
        .collect();
    m.schema = Some(built.schema.clone());
    m.on_duplicate = Some(
        match opts.on_duplicate {
            OnDuplicate::Skip => "skip",
            OnDuplicate::Replace => "replace",
            OnDuplicate::Error => "error",
        }
        .to_string(),
    );
    m.license_field = opts.license_field.clone();
    m.ingest_log = built.log.clone();
    let r = &built.report;
    m.counts = [r.ingested, r.skipped, r.replaced, r.rejected];
    staging.finish(&m)?;
    let mut report = built.report;
    report.files = built.log;
    report.generation = cstate.generation;
    report.seconds = start.elapsed().as_secs_f64();
    Ok(report)
}

/// The schema of a corpus an ingest creates: its field mapping.
pub(crate) fn new_schema(opts: &IngestOptions) -> Schema {
    Schema {
        key_field: opts.record.id_field().to_string(),
        text_field: opts.record.text_field().to_string(),
        ..Schema::default()
    }
}

/// The facets a new corpus clusters its segments by.
pub(crate) fn default_cluster() -> Vec<String> {
    DEFAULT_CLUSTER_FIELDS
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// What [`build`] wrote and decided, not committed yet.
pub(crate) struct Built {
    /// Counts, rejects and per-file outcomes.
    pub report: IngestReport,
    /// The segments written (ids from `first_id` on).
    pub segments: Vec<SegmentEntry>,
    /// Documents to tombstone (older copies replaced, per segment id).
    pub tombstones: Vec<(u64, RoaringBitmap)>,
    /// The schema after the new documents.
    pub schema: Schema,
    /// Whether it differs from the corpus's.
    pub schema_changed: bool,
    /// One entry per input read.
    pub log: Vec<IngestLogEntry>,
    /// The next free segment id.
    pub next_id: u64,
    /// Live documents of the corpus before the ingest.
    pub prior_live: u64,
    /// The options with the corpus's saved field mapping filled in.
    pub opts: IngestOptions,
}

impl Built {
    /// The license field to record, when the ingest names a new one.
    pub fn license_field_change(&self, cstate: &CatalogState) -> Option<String> {
        self.opts
            .license_field
            .clone()
            .filter(|f| f != cstate.license_field())
    }
}

/// Reads `inputs` against the corpus state `cstate` (its segments in
/// `dir`) and writes the new segments into `seg_dir`, numbered from
/// `first_id`: everything an ingest does short of committing. On error
/// the segments written are removed.
pub(crate) fn build(
    dir: &Path,
    seg_dir: &Path,
    cstate: &CatalogState,
    inputs: Vec<Input>,
    opts: &IngestOptions,
    first_id: u64,
) -> Result<Built> {
    // The saved field mapping applies unless this ingest names its own.
    let mut resolved = opts.clone();
    let rec = &mut resolved.record;
    rec.text_field
        .get_or_insert_with(|| cstate.schema.text_field.clone());
    rec.id_field
        .get_or_insert_with(|| cstate.schema.key_field.clone());
    let opts = &resolved;
    for (k, _) in &opts.record.set {
        if k == opts.record.text_field() || k == opts.record.id_field() {
            return Err(Error::Invalid(format!(
                "--set {k}=...: `{k}` is the corpus's text or key field"
            )));
        }
        if k.contains('\0') {
            return Err(Error::Invalid(format!("--set: {}", record::nul_in_name(k))));
        }
    }
    // A corpus without documents yet (a first ingest that failed) takes
    // the mapping of the first ingest that adds some.
    let mut schema = cstate.schema.clone();
    let remap = cstate.segments.is_empty()
        && (schema.text_field != opts.record.text_field()
            || schema.key_field != opts.record.id_field());
    if remap {
        schema.text_field = opts.record.text_field().to_string();
        schema.key_field = opts.record.id_field().to_string();
    }
    let existing = cstate
        .segments
        .iter()
        .map(|e| {
            let seg = Segment::open(&dir.join(&e.file))?;
            let mut live = seg.all();
            if let Some(t) = cstate.tombstones.get(&e.id) {
                live -= t;
            }
            Ok((e.id, seg, live))
        })
        .collect::<Result<Vec<_>>>()?;
    let prior_live: u64 = existing.iter().map(|(_, _, l)| l.len()).sum();
    let rejects_out = match &opts.rejects {
        Some(p) => Some(std::io::BufWriter::new(std::fs::File::create(p).at(p)?)),
        None => None,
    };
    let mut st = State {
        seg_dir,
        opts,
        schema,
        signals: cstate.signals.clone(),
        schema_changed: remap,
        existing,
        builder: Vec::new(),
        builder_bytes: 0,
        index: HashMap::new(),
        overflow: HashMap::new(),
        new_segs: Vec::new(),
        tombstones: HashMap::new(),
        next_id: first_id,
        cluster: cstate.cluster_fields.clone(),
        report: IngestReport::default(),
        rejects_out,
        per_input: (0, 0, 0, 0),
        missing_text: (0, None),
        writer: None,
    };
    let result = run(&mut st, inputs);
    let log = match result {
        Ok(log) => log,
        Err(e) => {
            let _ = st.join_writer();
            for (e, _) in &st.new_segs {
                let _ = crate::storage::remove_file(&seg_dir.join(&e.file));
            }
            return Err(e);
        }
    };
    if let Some(w) = st.rejects_out.take() {
        let p = opts.rejects.as_deref().unwrap_or(Path::new("rejects"));
        w.into_inner()
            .map_err(|e| Error::io(p, e.into_error()))?
            .sync_all()
            .at(p)?;
    }
    Ok(Built {
        segments: st.new_segs.iter().map(|(e, _)| e.clone()).collect(),
        tombstones: st.tombstones.drain().collect(),
        schema_changed: st.schema_changed,
        schema: st.schema,
        log,
        next_id: st.next_id,
        prior_live,
        report: st.report,
        opts: resolved.clone(),
    })
}

/// Expands directories (every file under it, recursively, hidden ones
/// skipped) and glob patterns (`shards/*.parquet`, for a shell that did not
/// expand them) into files in a deterministic (sorted) order, and refuses,
/// before anything is created, a path that does not exist, a pattern that
/// matches nothing and an empty directory, naming it.
pub(crate) fn expand_inputs(inputs: Vec<Input>) -> Result<Vec<Input>> {
    let mut out = Vec::with_capacity(inputs.len());
    for i in inputs {
        let Input::Path(p) = &i else {
            out.push(i);
            continue;
        };
        if p.as_os_str() == "-" {
            out.push(i);
            continue;
        }
        let text = p.to_string_lossy();
        let is_pattern = text.contains(['*', '?', '[']);
        match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => {
                let mut files = Vec::new();
                walk(p, &mut files)?;
                if files.is_empty() {
                    return Err(Error::Invalid(format!(
                        "{}: the directory holds no input file",
                        p.display()
                    )));
                }
                files.sort();
                out.extend(files.into_iter().map(Input::Path));
            }
            Ok(_) => out.push(i),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && is_pattern => {
                let paths = glob::glob(&text).map_err(|e| {
                    Error::Invalid(format!("{text}: not a valid glob pattern: {}", e.msg))
                })?;
                let mut files = Vec::new();
                for entry in paths {
                    let f = entry.map_err(|e| {
                        let path = e.path().to_path_buf();
                        Error::io(&path, e.into())
                    })?;
                    if f.is_dir() {
                        walk(&f, &mut files)?;
                    } else {
                        files.push(f);
                    }
                }
                if files.is_empty() {
                    return Err(Error::Invalid(format!("{text}: no file matches")));
                }
                files.sort();
                files.dedup();
                out.extend(files.into_iter().map(Input::Path));
            }
            Err(e) => return Err(Error::io(p, e)),
        }
    }
    // A file named twice (by a directory and a pattern) is read once.
    let mut seen = std::collections::HashSet::new();
    out.retain(|i| match i {
        Input::Path(p) if p.as_os_str() != "-" => seen.insert(p.clone()),
        _ => true,
    });
    Ok(out)
}

/// Collects the regular files under `dir`, recursively, skipping names
/// that start with `.` or `_` (`.crc`, `_SUCCESS`, `_delta_log` markers of
/// the tools that write shards).
fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for e in std::fs::read_dir(dir).at(dir)? {
        let e = e.at(dir)?;
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || name.starts_with('_') {
            continue;
        }
        let path = e.path();
        let m = std::fs::metadata(&path).at(&path)?;
        if m.is_dir() {
            walk(&path, out)?;
        } else if m.is_file() {
            out.push(path);
        }
    }
    Ok(())
}

/// Files a corpus directory may hold before its catalog exists: the lock
/// and what an interrupted first ingest left.
fn is_corpus_debris(name: &str) -> bool {
    name == crate::corpus::LOCK_FILE
        || name == crate::catalog::CATALOG_FILE
        || name == crate::catalog::CURRENT_FILE
        || name.starts_with("seg-")
        || name.starts_with('.')
        || name == crate::job::JOBS_DIR
}

/// Refuses to create a corpus in a directory that holds other things: a
/// mistyped `--corpus /etc` must not scatter a catalog among its files.
pub(crate) fn check_corpus_dir(dir: &Path) -> Result<()> {
    crate::remote::refuse_write(dir)?;
    if Catalog::new(dir).exists() {
        return Ok(());
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(dir, e)),
    };
    let mut foreign = Vec::new();
    for e in entries {
        let e = e.at(dir)?;
        let name = e.file_name().to_string_lossy().into_owned();
        if !is_corpus_debris(&name) {
            foreign.push(name);
        }
    }
    if foreign.is_empty() {
        return Ok(());
    }
    foreign.sort();
    let shown = foreign
        .iter()
        .take(3)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    let more = if foreign.len() > 3 {
        format!(" and {} more", foreign.len() - 3)
    } else {
        String::new()
    };
    Err(Error::Invalid(format!(
        "{} is not a corpus and is not empty (it holds {shown}{more}): a new corpus needs an empty or new directory; check --corpus / CORPUSQL_DIR",
        dir.display()
    )))
}

/// License values of freshly written segments that normalize to `unknown`.
pub(crate) fn unknown_licenses<'a>(
    dir: &Path,
    files: impl Iterator<Item = &'a str>,
    field: &str,
) -> Result<Vec<(String, u64)>> {
    let mut acc: std::collections::BTreeMap<String, u64> = Default::default();
    for f in files {
        let seg = Segment::open(&dir.join(f))?;
        for (value, id) in seg.stored_terms_with_prefix(field, "") {
            if crate::license::normalize(&value).is_none() {
                *acc.entry(value).or_default() += seg.term_counts(id)?.0 as u64;
            }
        }
        let none = seg.doc_count() as u64 - seg.presence(field)?.len();
        if none > 0 {
            *acc.entry("(none)".into()).or_default() += none;
        }
    }
    let mut v: Vec<(String, u64)> = acc.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(v)
}

const CHUNK_BYTES: usize = 8 << 20;

/// How the reason of a record without its text field begins.
const MISSING_TEXT: &str = "missing field `";

/// A chunk of input lines, parsed.
struct ParsedChunk {
    chunk: Vec<u8>,
    ranges: Vec<(usize, usize)>,
    parsed: Vec<Parsed>,
    first_line: u64,
}

/// Lines in a chunk (a last line without `\n` counts).
fn line_count(c: &[u8]) -> u64 {
    let n = memchr::memchr_iter(b'\n', c).count() as u64;
    n + u64::from(!c.is_empty() && c.last() != Some(&b'\n'))
}

/// Parses every line of a chunk in parallel, keeping input order.
fn parse_chunk(chunk: Vec<u8>, first_line: u64, opts: &RecordOptions) -> ParsedChunk {
    let mut ranges = Vec::with_capacity(chunk.len() / 1024 + 1);
    let mut start = 0;
    for i in memchr::memchr_iter(b'\n', &chunk) {
        ranges.push((start, i));
        start = i + 1;
    }
    if start < chunk.len() {
        ranges.push((start, chunk.len()));
    }
    let parsed = ranges
        .par_iter()
        .enumerate()
        .with_min_len(64)
        .map(|(i, &(a, b))| parse_line(&chunk[a..b], first_line + i as u64 == 0, opts))
        .collect();
    ParsedChunk {
        chunk,
        ranges,
        parsed,
        first_line,
    }
}

fn run(st: &mut State, inputs: Vec<Input>) -> Result<Vec<IngestLogEntry>> {
    let mut log = Vec::new();
    let bar = st.opts.progress.clone();
    for input in inputs {
        let started = unix_now();
        let mut opened = input::Opened::open_with(input, &st.opts.record)?;
        let name = opened.name.clone();
        let read = opened.read.clone();
        crate::progress::with(&bar, |b| {
            b.start(
                &name,
                opened.total.unwrap_or(0),
                crate::progress::Unit::Bytes,
            )
        });
        st.per_input = (0, 0, 0, 0);
        st.missing_text = (0, None);
        let (tx, rx) = sync_channel::<Result<Vec<u8>>>(2);
        // Applied chunks go back to the reader to be filled again.
        let (spent_tx, spent_rx) = std::sync::mpsc::channel::<Vec<u8>>();
        let reader = std::thread::spawn(move || {
            let mut carry = Vec::new();
            loop {
                let spare = spent_rx.try_recv().unwrap_or_default();
                match opened.next_chunk(&mut carry, CHUNK_BYTES, spare) {
                    Ok(c) if c.is_empty() => break,
                    Ok(c) => {
                        if tx.send(Ok(c)).is_err() {
                            break;
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        break;
                    }
                }
            }
            opened
        });
        let mut line_no = 0u64;
        let mut outcome = Ok(());
        let record_opts = st.opts.record.clone();
        let mut prev: Option<ParsedChunk> = None;
        // Pipeline: parse chunk N+1 on the pool while chunk N is applied.
        loop {
            let next = match rx.recv() {
                Ok(Ok(c)) => Some(c),
                Ok(Err(e)) => {
                    outcome = Err(e);
                    None
                }
                Err(_) => None,
            };
            if next.is_none() && prev.is_none() {
                break;
            }
            let first = line_no;
            if let Some(c) = &next {
                line_no += line_count(c);
            }
            // The parse runs on a plain thread that hands its lines to the
            // pool, never on a pool worker: `apply_chunk` may wait for the
            // segment writer, which itself needs the pool, and a pool of one
            // worker blocked in that wait would never run it (issue 10).
            let (parsed, applied) = std::thread::scope(|s| {
                let parser = s.spawn(|| next.map(|c| parse_chunk(c, first, &record_opts)));
                let applied = match prev.take() {
                    Some(p) => st.apply_chunk(&name, p).map(|chunk| {
                        let _ = spent_tx.send(chunk);
                    }),
                    None => Ok(()),
                };
                crate::pool::help_while(|| !parser.is_finished());
                let parsed = parser
                    .join()
                    .map_err(|_| Error::Invalid(format!("{name}: parser thread panicked")));
                (parsed, applied)
            });
            let parsed = match parsed {
                Ok(p) => p,
                Err(e) => {
                    outcome = Err(e);
                    None
                }
            };
            if let Err(e) = applied {
                outcome = Err(e);
            }
            if outcome.is_err() {
                break;
            }
            prev = parsed;
            crate::progress::with(&bar, |b| b.set(read.load(Ordering::Relaxed)));
        }
        drop(rx);
        let opened = reader
            .join()
            .map_err(|_| Error::Invalid(format!("{name}: reader thread panicked")))?;
        outcome?;
        let (ingested, skipped, replaced, rejected) = st.per_input;
        if ingested + skipped + replaced == 0 && rejected > 0 && st.missing_text.0 == rejected {
            // Not one record had the text field: a field mapping is
            // missing, not a thousand broken records.
            let why = st.missing_text.1.take().unwrap_or_default();
            return Err(Error::Invalid(format!(
                "{name}: none of its {rejected} records has the text field, nothing was ingested: {why}"
            )));
        }
        let size = opened.read.load(Ordering::Relaxed);
        st.report.input_bytes += size;
        log.push(IngestLogEntry {
            generation: 0,
            source: name,
            size,
            content_hash: opened
                .content_hash()
                .map(|h| format!("xxh3-128:{h:032x}"))
                .unwrap_or_default(),
            started_unix: started,
            committed_unix: 0,
            ingested: st.per_input.0,
            skipped: st.per_input.1,
            replaced: st.per_input.2,
            rejected: st.per_input.3,
            set: st.opts.record.set.clone(),
        });
    }
    crate::progress::with(&bar, |b| b.finish());
    st.flush()?;
    st.join_writer()?;
    Ok(log)
}
