//! Exporters: matched documents as JSONL (whole records exactly as ingested,
//! optionally followed by the derived license facets and tag signals, or a
//! projection of fields that may name those columns too), to any writer or to
//! a file compressed by its extension (`.zst`, `.gz`). Blocks are
//! decompressed and formatted in parallel and written in storage order.

mod direct;
pub mod parquet;
pub mod tokens;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;
use roaring::RoaringBitmap;

use crate::error::{Error, IoContext, Result};
use crate::json::{self, RawObject};
use crate::schema::FieldKind;
use crate::segment::{Block, Segment};
use crate::select::Selection;

/// Which fields each exported record holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Projection {
    /// The whole record, as ingested.
    All,
    /// The whole record, followed by every derived facet (`license_id`,
    /// `license_class`) and signal column the document has a value for.
    WithSignals,
    /// These fields, in this order (missing ones are left out). A name the
    /// record lacks is looked up among the derived facets, the signal
    /// columns and the built-in `bytes`.
    Fields(Vec<String>),
}

impl Projection {
    /// Parses `id,lang,text`; an empty list means every field (followed by
    /// the signals when `signals`).
    pub fn parse(list: Option<&str>) -> Projection {
        Projection::parse_with(list, false)
    }

    /// Like [`Projection::parse`]; with `signals` and no list, the whole
    /// record followed by the derived facets and signals.
    pub fn parse_with(list: Option<&str>, signals: bool) -> Projection {
        let all = if signals {
            Projection::WithSignals
        } else {
            Projection::All
        };
        match list {
            None => all,
            Some(s) => {
                let f: Vec<String> = s
                    .split(',')
                    .map(|x| x.trim().to_string())
                    .filter(|x| !x.is_empty())
                    .collect();
                if f.is_empty() {
                    all
                } else {
                    Projection::Fields(f)
                }
            }
        }
    }
}

impl Projection {
    /// Checks that every name of a field list is one the corpus knows (a
    /// stored field, the key or the text, a derived facet, a computed
    /// signal, `bytes`): an unknown name is an error naming it, with the
    /// tagger that computes it when it is a signal not computed yet, else
    /// the nearest known name.
    pub fn check(&self, schema: &crate::schema::Schema) -> Result<()> {
        let Projection::Fields(fields) = self else {
            return Ok(());
        };
        let mut known = schema.known_names();
        known.push(&schema.text_field);
        known.push("id");
        for f in fields {
            if known.contains(&f.as_str()) {
                continue;
            }
            if let Some(hint) = crate::tag::Tagger::not_computed_hint(f) {
                return Err(Error::Invalid(format!("--fields: {hint}")));
            }
            let hint = crate::query::suggest(f, known.iter().copied())
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_default();
            return Err(Error::Invalid(format!(
                "--fields: unknown field `{f}`{hint}"
            )));
        }
        Ok(())
    }
}

/// Appends document `i` of `block` under `proj` as one JSON line (stored
/// fields only: see [`write_jsonl`] for derived and signal columns).
pub fn format_doc(block: &Block, i: usize, proj: &Projection, out: &mut Vec<u8>) {
    format_doc_with(block, i, proj, false, out)
}

/// A column a record does not hold, read from the segment: a derived
/// facet, a signal, or the built-in `bytes`.
enum Extra {
    /// Numbers by ordinal and the ordinals that have one.
    Number(Arc<Vec<f64>>, RoaringBitmap),
    /// Value index + 1 by ordinal (0: none), and the values.
    Facet(Vec<u32>, Vec<String>, bool),
}

impl Extra {
    /// Reads column `name` of `seg`, whose overlay columns are `overlay`;
    /// `None` when the segment has no such derived, signal or built-in
    /// column.
    fn load(seg: &Segment, overlay: &[(String, FieldKind)], name: &str) -> Result<Option<Extra>> {
        if name == crate::format::BYTES_FIELD {
            return Ok(seg.numeric(name)?.map(|c| Extra::Number(c, seg.all())));
        }
        let Some(&(_, kind)) = overlay.iter().find(|(n, _)| n == name) else {
            return Ok(None);
        };
        Ok(Some(match kind {
            FieldKind::Number => {
                let col = seg.numeric(name)?.unwrap_or_default();
                Extra::Number(col, seg.presence(name)?)
            }
            _ => {
                let mut by_doc = vec![0u32; seg.doc_count() as usize];
                let mut values = Vec::new();
                for (v, id) in seg.terms_with_prefix(name, "") {
                    values.push(v);
                    let k = values.len() as u32;
                    for o in seg.postings_of(id)? {
                        by_doc[o as usize] = k;
                    }
                }
                Extra::Facet(by_doc, values, kind == FieldKind::Bool)
            }
        }))
    }

    /// Appends the JSON value of ordinal `o`; false when it has none.
    fn write(&self, o: u32, out: &mut Vec<u8>) -> bool {
        match self {
            Extra::Number(col, present) => {
                if !present.contains(o) {
                    return false;
                }
                json::write_f64(out, col[o as usize]);
            }
            Extra::Facet(by_doc, values, is_bool) => {
                let k = by_doc[o as usize];
                if k == 0 {
                    return false;
                }
                let v = &values[k as usize - 1];
                if *is_bool && (v == "true" || v == "false") {
                    out.extend_from_slice(v.as_bytes());
                } else {
                    json::write_str(out, v);
                }
            }
        }
        true
    }
}

/// The extra columns of one segment that a projection needs, by name.
#[derive(Default)]
struct Extras(Vec<(String, Extra)>);

impl Extras {
    /// The extra columns each segment of `sel` needs, loaded once per
    /// segment (none for a segment without matches).
    fn for_selection(sel: &Selection, proj: &Projection) -> Result<Vec<Extras>> {
        sel.parts()
            .iter()
            .map(|(seg, bm)| {
                if bm.is_empty() {
                    Ok(Extras::default())
                } else {
                    Extras::load(seg, proj)
                }
            })
            .collect()
    }

    fn load(seg: &Segment, proj: &Projection) -> Result<Extras> {
        let overlay = seg.overlay().columns();
        let names: Vec<&String> = match proj {
            Projection::All => return Ok(Extras::default()),
            Projection::WithSignals => overlay.iter().map(|(n, _)| n).collect(),
            Projection::Fields(f) => f.iter().collect(),
        };
        let mut out = Vec::new();
        for n in names {
            if let Some(e) = Extra::load(seg, &overlay, n)? {
                out.push((n.clone(), e));
            }
        }
        Ok(Extras(out))
    }

    fn get(&self, name: &str) -> Option<&Extra> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, e)| e)
    }
}

/// Appends `"name":value` to an open JSON object (after a `,` unless it is
/// the `first` member), `value` written by `write`; when `write` has no
/// value (returns false) nothing is appended.
fn member(
    out: &mut Vec<u8>,
    first: &mut bool,
    name: &str,
    write: impl FnOnce(&mut Vec<u8>) -> bool,
) {
    let mark = out.len();
    if !*first {
        out.push(b',');
    }
    json::write_str(out, name);
    out.push(b':');
    if write(out) {
        *first = false;
    } else {
        out.truncate(mark);
    }
}

/// Writes the record of document `i`, its text redacted when asked.
fn write_record(block: &Block, i: usize, redact: bool, out: &mut Vec<u8>) {
    if redact {
        out.extend_from_slice(block.prefix(i));
        json::write_str(out, &crate::tag::pii::redact(block.text(i)));
        out.extend_from_slice(block.suffix(i));
    } else {
        block.write_json(i, out)
    }
}

/// Like [`format_doc`]; with `redact_pii` the text has each personal-data
/// span replaced by its placeholder (`<EMAIL>`, `<PHONE>`, ...), every
/// other byte unchanged.
pub fn format_doc_with(
    block: &Block,
    i: usize,
    proj: &Projection,
    redact_pii: bool,
    out: &mut Vec<u8>,
) {
    format_doc_extra(block, i, proj, redact_pii, None, out)
}

/// [`format_doc_with`], with the segment's extra columns at ordinal `o`.
fn format_doc_extra(
    block: &Block,
    i: usize,
    proj: &Projection,
    redact_pii: bool,
    extra: Option<(&Extras, u32)>,
    out: &mut Vec<u8>,
) {
    match proj {
        Projection::All => write_record(block, i, redact_pii, out),
        Projection::WithSignals => {
            let start = out.len();
            write_record(block, i, redact_pii, out);
            if let Some((ex, o)) = extra {
                // The record is one object: reopen it before its `}`.
                debug_assert_eq!(out.last(), Some(&b'}'));
                out.pop();
                let mut first = out.len() == start + 1;
                for (name, e) in &ex.0 {
                    member(out, &mut first, name, |out| e.write(o, out));
                }
                out.push(b'}');
            }
        }
        Projection::Fields(fields) => {
            let mut full = Vec::new();
            write_record(block, i, redact_pii, &mut full);
            let s = std::str::from_utf8(&full).unwrap_or("{}");
            let obj: RawObject = serde_json::from_str(s).unwrap_or(RawObject(Vec::new()));
            out.push(b'{');
            let mut first = true;
            for f in fields {
                member(out, &mut first, f, |out| {
                    if let Some(v) = lookup(&obj, f) {
                        out.extend_from_slice(v.as_bytes());
                        return true;
                    }
                    match extra.and_then(|(ex, o)| ex.get(f).map(|e| (e, o))) {
                        Some((e, o)) => e.write(o, out),
                        None => false,
                    }
                });
            }
            out.push(b'}');
        }
    }
    out.push(b'\n');
}

/// The raw JSON of field `path` of a record: a top-level field, else a
/// dotted path into nested objects (`meta.language`), trying every split so
/// that keys holding dots (`{"a.b": {"c": 1}}`) are found too.
fn lookup(obj: &RawObject, path: &str) -> Option<String> {
    if let Some((_, v)) = obj.0.iter().find(|(k, _)| k == path) {
        return Some(v.get().to_string());
    }
    for (i, _) in path.match_indices('.') {
        let (head, rest) = (&path[..i], &path[i + 1..]);
        let Some((_, v)) = obj.0.iter().find(|(k, _)| k == head) else {
            continue;
        };
        if !v.get().starts_with('{') {
            continue;
        }
        let Ok(inner) = serde_json::from_str::<RawObject>(v.get()) else {
            continue;
        };
        if let Some(found) = lookup(&inner, rest) {
            return Some(found);
        }
    }
    None
}

/// Writes the selection as JSONL to `w`; returns the documents written.
pub fn write_jsonl(sel: &Selection, proj: &Projection, w: &mut dyn Write) -> Result<u64> {
    write_jsonl_with(sel, proj, false, w)
}

/// Like [`write_jsonl`], with personal data redacted when `redact_pii`.
pub fn write_jsonl_with(
    sel: &Selection,
    proj: &Projection,
    redact_pii: bool,
    w: &mut dyn Write,
) -> Result<u64> {
    let mut n = 0u64;
    let extras = Extras::for_selection(sel, proj)?;
    sel.map_jobs(
        |job, block| {
            let mut out = Vec::with_capacity(job.docs.len() * 512);
            let seg = &sel.parts()[job.part].0;
            let first = seg.blocks()[job.block].first_doc;
            let ex = &extras[job.part];
            for &i in &job.docs {
                let extra = Some((ex, first + i));
                format_doc_extra(block, i as usize, proj, redact_pii, extra, &mut out);
            }
            Ok((out, job.docs.len() as u64))
        },
        |(buf, k)| {
            n += k;
            w.write_all(&buf).map_err(|e| Error::io("<output>", e))
        },
    )?;
    Ok(n)
}

/// Pulls a selection's records as JSONL, a few blocks at a time (decoded in
/// parallel), for callers that consume records lazily (the Python
/// binding's iterators). `keep` filters by the record's index in the
/// selection (storage order), before any record is formatted.
pub struct JsonlReader {
    sel: Selection,
    proj: Projection,
    extras: Vec<Extras>,
    jobs: Vec<crate::select::BlockJob>,
    /// Next job to read.
    next: usize,
    /// Index in the selection of the first document of job `next`.
    first: u64,
    keep: Option<Box<dyn Fn(u64) -> bool + Send + Sync>>,
}

impl JsonlReader {
    /// A reader of `sel`'s records, projected (fields checked by the caller).
    pub fn new(sel: Selection, proj: Projection) -> Result<JsonlReader> {
        let extras = Extras::for_selection(&sel, &proj)?;
        let jobs = sel.jobs();
        Ok(JsonlReader {
            sel,
            proj,
            extras,
            jobs,
            next: 0,
            first: 0,
            keep: None,
        })
    }

    /// Keeps only the records whose index `keep` accepts.
    pub fn keep(mut self, keep: impl Fn(u64) -> bool + Send + Sync + 'static) -> JsonlReader {
        self.keep = Some(Box::new(keep));
        self
    }

    /// The next records (one JSON object per line, each line ending in a
    /// newline) from up to `blocks` blocks, or `None` at the end.
    pub fn next_chunk(&mut self, blocks: usize) -> Result<Option<Vec<u8>>> {
        loop {
            if self.next >= self.jobs.len() {
                return Ok(None);
            }
            let end = (self.next + blocks.max(1)).min(self.jobs.len());
            let mut firsts = Vec::with_capacity(end - self.next);
            for j in &self.jobs[self.next..end] {
                firsts.push(self.first);
                self.first += j.docs.len() as u64;
            }
            let (sel, proj, extras, keep) = (&self.sel, &self.proj, &self.extras, &self.keep);
            let outs: Vec<Result<Vec<u8>>> = self.jobs[self.next..end]
                .par_iter()
                .zip(firsts.par_iter())
                .map(|(job, &base)| {
                    let wanted: Vec<(usize, u32)> = job
                        .docs
                        .iter()
                        .enumerate()
                        .filter(|(k, _)| keep.as_ref().is_none_or(|f| f(base + *k as u64)))
                        .map(|(k, &i)| (k, i))
                        .collect();
                    let mut out = Vec::new();
                    if wanted.is_empty() {
                        return Ok(out);
                    }
                    let block = sel.read(job)?;
                    let seg = &sel.parts()[job.part].0;
                    let first_doc = seg.blocks()[job.block].first_doc;
                    let ex = &extras[job.part];
                    for (_, i) in wanted {
                        format_doc_extra(
                            &block,
                            i as usize,
                            proj,
                            false,
                            Some((ex, first_doc + i)),
                            &mut out,
                        );
                    }
                    Ok(out)
                })
                .collect();
            self.next = end;
            let mut all = Vec::new();
            for o in outs {
                all.extend(o?);
            }
            if !all.is_empty() {
                return Ok(Some(all));
            }
        }
    }
}

/// An output sink: stdout (`-` or none) or a file, compressed by extension
/// (`.zst`, `.gz`). A file is written under a temporary name beside it
/// (`.NAME.tmp-PID`) and renamed over its path by [`Output::finish`]; an
/// output dropped unfinished (an error on the way) removes the temporary,
/// so a failed export leaves no partial file and an older file at the path
/// untouched.
pub fn open_output(path: Option<&Path>) -> Result<Output> {
    let Some(p) = path.filter(|p| p.as_os_str() != "-") else {
        return Ok(Output {
            sink: Some(Sink::Stdout(std::io::BufWriter::with_capacity(
                1 << 20,
                std::io::stdout().lock(),
            ))),
            pending: None,
        });
    };
    Output::create(p)
}

/// Where an [`Output`] writes.
enum Sink {
    Stdout(std::io::BufWriter<std::io::StdoutLock<'static>>),
    /// An uncompressed file, written around the page cache.
    Direct(direct::DirectFile),
    Zstd(zstd::stream::write::Encoder<'static, std::io::BufWriter<std::fs::File>>),
    Gz(flate2::write::GzEncoder<std::io::BufWriter<std::fs::File>>),
}

/// A file being written under a temporary name: see [`open_output`].
#[derive(Debug)]
struct Pending {
    tmp: PathBuf,
    path: PathBuf,
}

/// An output being written: stdout, or a file that appears at its path only
/// when [`Output::finish`] succeeds (see [`open_output`]).
pub struct Output {
    sink: Option<Sink>,
    pending: Option<Pending>,
}

/// The temporary name of `path`'s content while it is written: a hidden
/// file in the same directory (so the final rename stays on one file system).
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

impl Output {
    /// A file at `path`, compressed by its extension, written under
    /// [`temp_path`] until [`Output::finish`].
    pub fn create(path: &Path) -> Result<Output> {
        Output::create_with(path, true)
    }

    /// A file at `path` written as is whatever its extension (binary
    /// tokens, reports), under [`temp_path`] until [`Output::finish`].
    pub fn create_uncompressed(path: &Path) -> Result<Output> {
        Output::create_with(path, false)
    }

    fn create_with(path: &Path, compress: bool) -> Result<Output> {
        if path.is_dir() {
            return Err(Error::Invalid(format!(
                "{}: is a directory; give a file name",
                path.display()
            )));
        }
        let tmp = temp_path(path);
        let f = std::fs::File::create(&tmp).at(path)?;
        let written = tmp.clone();
        // From here on, dropping `out` removes the temporary.
        let mut out = Output {
            sink: None,
            pending: Some(Pending {
                tmp,
                path: path.to_path_buf(),
            }),
        };
        let name = path.to_string_lossy();
        let compressed = compress && (name.ends_with(".zst") || name.ends_with(".gz"));
        if !compressed {
            out.sink = Some(Sink::Direct(direct::DirectFile::new(f, &written).at(path)?));
            return Ok(out);
        }
        let buf = std::io::BufWriter::with_capacity(1 << 20, f);
        out.sink = Some(if name.ends_with(".zst") {
            Sink::Zstd(zstd::stream::write::Encoder::new(buf, 3).at(path)?)
        } else {
            Sink::Gz(flate2::write::GzEncoder::new(
                buf,
                flate2::Compression::default(),
            ))
        });
        Ok(out)
    }

    /// Flushes everything (ending a compressed stream) and, for a file,
    /// syncs it and renames it over its path.
    pub fn finish(mut self) -> Result<()> {
        let at = self
            .pending
            .as_ref()
            .map(|p| p.path.clone())
            .unwrap_or_else(|| PathBuf::from("<stdout>"));
        let file = match self.sink.take() {
            None => None,
            Some(Sink::Stdout(mut w)) => {
                w.flush().at(&at)?;
                None
            }
            Some(Sink::Direct(d)) => {
                let f = d.finish().at(&at)?;
                f.sync_all().at(&at)?;
                None
            }
            Some(Sink::Zstd(e)) => Some(e.finish().at(&at)?),
            Some(Sink::Gz(e)) => Some(e.finish().at(&at)?),
        };
        if let Some(w) = file {
            let f = w.into_inner().map_err(|e| Error::io(&at, e.into_error()))?;
            f.sync_all().at(&at)?;
        }
        if let Some(p) = self.pending.take() {
            if let Err(e) = std::fs::rename(&p.tmp, &p.path) {
                let _ = std::fs::remove_file(&p.tmp);
                return Err(Error::io(&p.path, e));
            }
        }
        Ok(())
    }

    fn writer(&mut self) -> std::io::Result<&mut dyn Write> {
        Ok(match self.sink.as_mut() {
            Some(Sink::Stdout(w)) => w,
            Some(Sink::Direct(w)) => w,
            Some(Sink::Zstd(w)) => w,
            Some(Sink::Gz(w)) => w,
            None => return Err(std::io::Error::other("output already finished")),
        })
    }
}

impl Write for Output {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.writer()?.write(b)
    }
    fn write_all(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.writer()?.write_all(b)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.writer()?.flush()
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        if let Some(p) = self.pending.take() {
            // Unfinished: an error interrupted the writing. Close, then remove.
            drop(self.sink.take());
            let _ = std::fs::remove_file(&p.tmp);
        }
    }
}
