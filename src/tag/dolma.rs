//! Importing Dolma attribute files as signal columns, so that users keep
//! the taggers they already ran with `dolma tag` (`corpusql tag
//! import-dolma`). An attribute file is JSONL (plain, gzip or zstd), one
//! line per document: `{"id": "...", "attributes": {"<exp>__<tagger>__<attr>":
//! [[start, end, score], ...], ...}, "source": "..."}`, where `start` and
//! `end` are offsets in Unicode characters of the document's text (Python
//! string indices, as Dolma's `Span` slices `doc.text[start:end]`).
//!
//! Each attribute becomes the sidecar columns of one pseudo-tagger named
//! `dolma-<column>` ([`tagger_name`]), so re-importing an attribute replaces
//! exactly its columns, like re-running a tagger, and compaction carries
//! them like any tagger's. The column is named by [`column_name`]: the
//! prefix (`dolma_` by default), then the attribute name with every
//! character outside `[A-Za-z0-9_]` replaced by `_`. Values:
//!
//! * a *document-level* attribute (every document that has it carries one
//!   span covering its whole text, `[0, len(text), score]`) gives one column,
//!   `<column>`: that span's score;
//! * any other (*span*) attribute gives three: `<column>`, the maximum span
//!   score (no value when the document has no span); `<column>_frac`, the
//!   fraction of the text's characters the spans cover (0 to 1); and
//!   `<column>_spans`, the number of spans.
//!
//! A document with a line in the import but no span of an attribute (Dolma
//! omits attributes with no span, or writes `[]`) has `_frac` and `_spans`
//! 0 and no `<column>` value; a document with no line at all has no value
//! in any column, so `exists` finds it. Lines whose id the corpus lacks are
//! counted (or refused, with [`OnUnknownId::Error`]). Every line is parsed
//! and checked before anything is written: a malformed line fails the
//! import with its file, line and field, and nothing is committed. The
//! sidecars are committed in one catalog transaction (one generation).
//! `docs/dolma.md` is the user guide.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;
use roaring::RoaringBitmap;
use serde::Serialize;
use serde_json::Value;

use crate::catalog::{Commit, SignalInfo, TagEntry};
use crate::corpus::{Corpus, WriteLock};
use crate::error::{Error, Result};
use crate::schema::FieldKind;
use crate::segment::sidecar::{self, ColumnValues};
use crate::select::Selection;

/// The default prefix of imported column names.
pub const DEFAULT_PREFIX: &str = "dolma_";

/// The start of the tagger name of every imported attribute.
pub const TAGGER_PREFIX: &str = "dolma-";

/// How many unknown ids the report quotes.
const UNKNOWN_EXAMPLES: usize = 5;

/// What to do with a line whose id no live document of the corpus has.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum OnUnknownId {
    /// Count it in [`DolmaReport::unknown_ids`] and go on.
    #[default]
    Skip,
    /// Fail the import, naming the file, line and id.
    Error,
}

/// Options of a Dolma import.
#[derive(Debug, Clone)]
pub struct DolmaOptions {
    /// Put before every column name (letters, digits and `_` only).
    pub prefix: String,
    /// Import only these attributes (their names as in the files); every
    /// one must occur in the files. `None`: every attribute found.
    pub attributes: Option<Vec<String>>,
    /// Lines whose id the corpus lacks.
    pub on_unknown_id: OnUnknownId,
}

impl Default for DolmaOptions {
    fn default() -> Self {
        DolmaOptions {
            prefix: DEFAULT_PREFIX.into(),
            attributes: None,
            on_unknown_id: OnUnknownId::Skip,
        }
    }
}

/// Whether an attribute scored whole documents or spans of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Level {
    /// One span over the whole text per document: one column, its score.
    Document,
    /// Anything else: the maximum score, the covered fraction, the count.
    Span,
}

/// What the import did with one attribute.
#[derive(Debug, Clone, Serialize)]
pub struct DolmaAttribute {
    /// The attribute's name in the files.
    pub attribute: String,
    /// Its tagger name in the catalog ([`tagger_name`]).
    pub tagger: String,
    /// Document or span attribute.
    pub level: Level,
    /// The columns written (the first is [`column_name`]).
    pub columns: Vec<String>,
    /// Documents with at least one span of it.
    pub docs: u64,
    /// Documents whose spans end past the end of their text (the file was
    /// made from other texts, or counts bytes): their fraction is capped at 1.
    pub out_of_range_docs: u64,
}

/// What a Dolma import did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DolmaReport {
    /// Files read.
    pub files: usize,
    /// Non-blank lines read.
    pub lines: u64,
    /// Live documents with at least one line.
    pub matched_docs: u64,
    /// Lines whose id no live document has.
    pub unknown_ids: u64,
    /// The first few of those ids.
    pub unknown_examples: Vec<String>,
    /// Per attribute imported, in name order.
    pub attributes: Vec<DolmaAttribute>,
    /// The generation committed (None when there was nothing to import).
    pub generation: Option<u64>,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// The column an attribute becomes: `prefix`, then `attribute` with every
/// character outside `[A-Za-z0-9_]` replaced by `_`; a `_` goes first when
/// the result would start with a digit (query identifiers cannot).
pub fn column_name(prefix: &str, attribute: &str) -> String {
    let mut s: String = prefix.to_string();
    s.extend(attribute.chars().map(|c| {
        if c.is_ascii_alphanumeric() || c == '_' {
            c
        } else {
            '_'
        }
    }));
    if s.starts_with(|c: char| c.is_ascii_digit()) || s.is_empty() {
        s.insert(0, '_');
    }
    s
}

/// The tagger name the catalog records for a column made by [`column_name`].
pub fn tagger_name(column: &str) -> String {
    format!("{TAGGER_PREFIX}{column}")
}

/// Per-document accumulator of one attribute.
#[derive(Debug, Clone, Copy)]
struct Acc {
    /// Maximum score (NaN: no span).
    max: f64,
    /// Spans.
    spans: u32,
    /// Characters covered by the union of the spans.
    covered: u64,
    /// Largest span end.
    max_end: u64,
    /// The end of the only span when it starts at 0 (else `u64::MAX`).
    whole_end: u64,
}

const EMPTY: Acc = Acc {
    max: f64::NAN,
    spans: 0,
    covered: 0,
    max_end: 0,
    whole_end: u64::MAX,
};

/// A block's text lengths in characters: (segment index, [(ordinal, length)]).
type Lengths = (usize, Vec<(u32, u64)>);

/// One attribute's values, per segment (allocated when first needed).
struct AttrState {
    per_seg: Vec<Option<Vec<Acc>>>,
    /// Ordinals that had the attribute in a line.
    given: Vec<RoaringBitmap>,
}

/// A reader of a plain, gzip or zstd file, by its first bytes.
fn open(path: &Path) -> Result<Box<dyn BufRead>> {
    let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut r = BufReader::with_capacity(1 << 20, f);
    let head = r.fill_buf().map_err(|e| Error::io(path, e))?;
    Ok(if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(BufReader::with_capacity(
            1 << 20,
            flate2::read::MultiGzDecoder::new(r),
        ))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        let d = zstd::stream::read::Decoder::with_buffer(r).map_err(|e| Error::io(path, e))?;
        Box::new(BufReader::with_capacity(1 << 20, d))
    } else {
        Box::new(r)
    })
}

/// A non-negative integral offset.
fn offset(v: &Value) -> Option<u64> {
    if let Some(u) = v.as_u64() {
        return Some(u);
    }
    let f = v.as_f64()?;
    (f >= 0.0 && f.fract() == 0.0 && f < 9.0e15).then_some(f as u64)
}

/// Parses one attribute's span list into an accumulator.
fn spans_of(v: &Value, bad: &dyn Fn(String) -> Error) -> Result<Acc> {
    let Some(list) = v.as_array() else {
        return Err(bad(format!(
            "expected a list of [start, end, score] spans, found {}",
            kind_of(v)
        )));
    };
    let mut acc = EMPTY;
    let mut ranges = Vec::with_capacity(list.len());
    for (i, s) in list.iter().enumerate() {
        let span = s.as_array().filter(|a| a.len() == 3);
        let Some(span) = span else {
            return Err(bad(format!(
                "span {i}: expected [start, end, score], found {}",
                short(s)
            )));
        };
        let (Some(start), Some(end)) = (offset(&span[0]), offset(&span[1])) else {
            return Err(bad(format!(
                "span {i}: start and end must be non-negative integers (character offsets), found {}",
                short(s)
            )));
        };
        if end < start {
            return Err(bad(format!("span {i}: end {end} is before start {start}")));
        }
        let Some(score) = span[2].as_f64().filter(|x| x.is_finite()) else {
            return Err(bad(format!(
                "span {i}: the score must be a number, found {}",
                short(&span[2])
            )));
        };
        acc.max = if acc.max.is_nan() {
            score
        } else {
            acc.max.max(score)
        };
        acc.max_end = acc.max_end.max(end);
        ranges.push((start, end));
    }
    acc.spans = u32::try_from(list.len()).unwrap_or(u32::MAX);
    if let [(0, end)] = ranges[..] {
        acc.whole_end = end;
    }
    ranges.sort_unstable();
    let (mut cur_s, mut cur_e) = (0u64, 0u64);
    for (s, e) in ranges {
        if s > cur_e {
            acc.covered += cur_e - cur_s;
            cur_s = s;
            cur_e = e;
        } else {
            cur_e = cur_e.max(e);
        }
    }
    acc.covered += cur_e - cur_s;
    Ok(acc)
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// A value as JSON, cut to 60 characters.
fn short(v: &Value) -> String {
    let s = v.to_string();
    match s.char_indices().nth(60) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s,
    }
}

/// Imports Dolma attribute `files` into the corpus in `dir` as signal
/// columns and commits them in one generation (see the module docs).
pub fn import(dir: &Path, files: &[PathBuf], opts: &DolmaOptions) -> Result<DolmaReport> {
    let start = Instant::now();
    if files.is_empty() {
        return Err(Error::Invalid(
            "import-dolma needs at least one attribute file".into(),
        ));
    }
    if let Some(c) = opts
        .prefix
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_'))
    {
        return Err(Error::Invalid(format!(
            "--prefix `{}`: {c:?} is not allowed (letters, digits and `_` only)",
            opts.prefix
        )));
    }
    let wanted: Option<BTreeSet<&str>> = opts
        .attributes
        .as_ref()
        .map(|v| v.iter().map(String::as_str).collect());
    let _lock = WriteLock::acquire(dir)?;
    let corpus = Corpus::open(dir)?;
    let st = corpus.state().clone();
    let segs = corpus.segments();
    let mut report = DolmaReport {
        files: files.len(),
        ..Default::default()
    };
    let mut seen: Vec<RoaringBitmap> = vec![RoaringBitmap::new(); segs.len()];
    let mut attrs: BTreeMap<String, AttrState> = BTreeMap::new();

    // 1. Parse and check every line; nothing is written yet.
    for path in files {
        let name = path.display().to_string();
        let mut r = open(path)?;
        let mut buf = Vec::new();
        let mut line_no = 0u64;
        loop {
            buf.clear();
            line_no += 1;
            let n = r
                .read_until(b'\n', &mut buf)
                .map_err(|e| Error::Invalid(format!("{name}:{line_no}: reading: {e}")))?;
            if n == 0 {
                break;
            }
            if buf.iter().all(|b| b.is_ascii_whitespace()) {
                continue;
            }
            report.lines += 1;
            let at = |field: &str, what: String| {
                Error::Invalid(format!("{name}:{line_no}: field `{field}`: {what}"))
            };
            let v: Value = serde_json::from_slice(&buf)
                .map_err(|e| Error::Invalid(format!("{name}:{line_no}: not JSON: {e}")))?;
            let Value::Object(mut obj) = v else {
                return Err(Error::Invalid(format!(
                    "{name}:{line_no}: expected a JSON object, found {}",
                    kind_of(&v)
                )));
            };
            let key = match obj.get("id") {
                Some(Value::String(s)) if !s.is_empty() => s.clone(),
                Some(Value::Number(n)) if n.is_u64() || n.is_i64() => n.to_string(),
                Some(other) => {
                    return Err(at(
                        "id",
                        format!("expected a non-empty string, found {}", short(other)),
                    ))
                }
                None => return Err(at("id", "missing".into())),
            };
            let attributes = match obj.remove("attributes") {
                Some(Value::Object(m)) => m,
                Some(other) => {
                    return Err(at(
                        "attributes",
                        format!("expected an object, found {}", kind_of(&other)),
                    ))
                }
                None => return Err(at("attributes", "missing".into())),
            };
            // Check every attribute of the line, wanted or not, before
            // resolving the id: a malformed line is an error either way.
            let mut parsed = Vec::with_capacity(attributes.len());
            for (a, spans) in &attributes {
                let field = format!("attributes.{a}");
                let acc = spans_of(spans, &|what| at(&field, what))?;
                if wanted.as_ref().is_none_or(|w| w.contains(a.as_str())) {
                    parsed.push((a, acc));
                }
            }
            let found = (0..segs.len()).rev().find_map(|i| {
                let o = segs[i].segment.key_ordinal(&key)?;
                segs[i].live.contains(o).then_some((i, o))
            });
            let Some((si, ord)) = found else {
                if opts.on_unknown_id == OnUnknownId::Error {
                    return Err(at(
                        "id",
                        format!("`{key}` is not a live document of this corpus (--on-unknown-id skip counts such lines instead)"),
                    ));
                }
                report.unknown_ids += 1;
                if report.unknown_examples.len() < UNKNOWN_EXAMPLES {
                    report.unknown_examples.push(key);
                }
                continue;
            };
            seen[si].insert(ord);
            for (a, acc) in parsed {
                let s = attrs.entry(a.clone()).or_insert_with(|| AttrState {
                    per_seg: vec![None; segs.len()],
                    given: vec![RoaringBitmap::new(); segs.len()],
                });
                if !s.given[si].insert(ord) {
                    return Err(at(
                        &format!("attributes.{a}"),
                        format!("document `{key}` already has this attribute from an earlier line (a file given twice, or overlapping shards?)"),
                    ));
                }
                let n = segs[si].segment.doc_count() as usize;
                s.per_seg[si].get_or_insert_with(|| vec![EMPTY; n])[ord as usize] = acc;
            }
        }
    }
    if let Some(w) = &wanted {
        let missing: Vec<&str> = w
            .iter()
            .copied()
            .filter(|a| !attrs.contains_key(*a))
            .collect();
        if !missing.is_empty() {
            return Err(Error::Invalid(format!(
                "--attributes: {} not found in any line of the files matched to a document",
                missing
                    .iter()
                    .map(|a| format!("`{a}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    report.matched_docs = seen.iter().map(|b| b.len()).sum();

    // 2. The length in characters of every document with a line.
    let sel = Selection {
        parts: segs
            .iter()
            .zip(&seen)
            .map(|(ls, bm)| (ls.segment.clone(), bm.clone()))
            .collect(),
        notes: Vec::new(),
    };
    let lens: Vec<Result<Lengths>> = sel
        .jobs()
        .par_iter()
        .map(|j| {
            let b = sel.read(j)?;
            let first = segs[j.part].segment.blocks()[j.block].first_doc;
            Ok((
                j.part,
                j.docs
                    .iter()
                    .map(|&d| (first + d, b.text(d as usize).chars().count() as u64))
                    .collect(),
            ))
        })
        .collect();
    let mut chars: Vec<HashMap<u32, u64>> = vec![HashMap::new(); segs.len()];
    for r in lens {
        let (p, v) = r?;
        chars[p].extend(v);
    }
    let chars_of = |i: usize, o: u32| chars[i].get(&o).copied().unwrap_or(0);

    // 3. Levels, names and clashes.
    let mut plans = Vec::new();
    let mut taken: BTreeMap<String, String> = BTreeMap::new();
    for (a, s) in &attrs {
        let mut docs = 0u64;
        let mut out_of_range = 0u64;
        let mut whole = true;
        for (i, v) in s.per_seg.iter().enumerate() {
            let Some(v) = v else { continue };
            for o in s.given[i].iter() {
                let acc = &v[o as usize];
                if acc.spans == 0 {
                    continue;
                }
                docs += 1;
                let len = chars_of(i, o);
                if acc.max_end > len {
                    out_of_range += 1;
                }
                if acc.whole_end != len {
                    whole = false;
                }
            }
        }
        let level = if whole && docs > 0 {
            Level::Document
        } else {
            Level::Span
        };
        let base = column_name(&opts.prefix, a);
        let tagger = tagger_name(&base);
        let columns = match level {
            Level::Document => vec![base.clone()],
            Level::Span => vec![
                base.clone(),
                format!("{base}_frac"),
                format!("{base}_spans"),
            ],
        };
        for c in &columns {
            if let Some(other) = taken.insert(c.clone(), a.clone()) {
                return Err(Error::Invalid(format!(
                    "attributes `{other}` and `{a}` would both write column `{c}`: import them separately with different --prefix values, or choose one with --attributes"
                )));
            }
            if st.schema.fields.contains_key(c) {
                return Err(Error::Invalid(format!(
                    "the corpus has a field `{c}` of its own; attribute `{a}` would shadow it: choose another --prefix"
                )));
            }
            if let Some(info) = st.signals.get(c).filter(|i| i.tagger != tagger) {
                return Err(Error::Invalid(format!(
                    "column `{c}` of attribute `{a}` is already a signal of the {} tagger: choose another --prefix",
                    info.tagger
                )));
            }
        }
        plans.push(DolmaAttribute {
            attribute: a.clone(),
            tagger,
            level,
            columns,
            docs,
            out_of_range_docs: out_of_range,
        });
    }
    report.attributes = plans;
    if report.attributes.is_empty() || segs.is_empty() {
        report.seconds = start.elapsed().as_secs_f64();
        return Ok(report);
    }

    // 4. One sidecar per (segment, attribute), then one commit.
    let generation = st.generation + 1;
    let mut new_tags: Vec<(u64, Vec<TagEntry>)> = Vec::new();
    let written = (|| -> Result<()> {
        for (i, ls) in segs.iter().enumerate() {
            let n = ls.segment.doc_count() as usize;
            let mut list = st.tags.get(&ls.entry.id).cloned().unwrap_or_default();
            for p in &report.attributes {
                let s = &attrs[&p.attribute];
                let mut score = vec![f64::NAN; n];
                let span_cols = p.level == Level::Span;
                let (mut frac, mut count) = if span_cols {
                    (vec![f64::NAN; n], vec![f64::NAN; n])
                } else {
                    (Vec::new(), Vec::new())
                };
                for o in seen[i].iter() {
                    let acc = s.per_seg[i].as_ref().map_or(EMPTY, |v| v[o as usize]);
                    let o = o as usize;
                    score[o] = acc.max;
                    if span_cols {
                        let len = chars_of(i, o as u32);
                        frac[o] = if len == 0 {
                            0.0
                        } else {
                            (acc.covered as f64 / len as f64).min(1.0)
                        };
                        count[o] = f64::from(acc.spans);
                    }
                }
                let mut columns = vec![(p.columns[0].clone(), ColumnValues::Number(score))];
                if span_cols {
                    columns.push((p.columns[1].clone(), ColumnValues::Number(frac)));
                    columns.push((p.columns[2].clone(), ColumnValues::Number(count)));
                }
                let version = format!("dolma[{}]", p.attribute);
                let file = sidecar::file_name(&ls.entry.file, &p.tagger, generation);
                // Every live document was considered: the ones without a
                // line have no value, not a pending computation.
                let bytes = sidecar::write(
                    &dir.join(&file),
                    &p.tagger,
                    &version,
                    n as u32,
                    &ls.live,
                    &columns,
                )?;
                list.retain(|e| e.tagger != p.tagger);
                list.push(TagEntry {
                    tagger: p.tagger.clone(),
                    version,
                    file,
                    tagged_docs: ls.live.len() as u32,
                    columns: p
                        .columns
                        .iter()
                        .map(|c| (c.clone(), FieldKind::Number))
                        .collect(),
                    file_bytes: bytes,
                });
            }
            new_tags.push((ls.entry.id, list));
        }
        Ok(())
    })();
    if let Err(e) = written {
        crate::corpus::remove_unless_committed(dir, corpus.catalog());
        return Err(e);
    }
    let taggers: BTreeSet<&str> = report
        .attributes
        .iter()
        .map(|p| p.tagger.as_str())
        .collect();
    let mut signals = st.signals.clone();
    signals.retain(|_, i| !taggers.contains(i.tagger.as_str()));
    for p in &report.attributes {
        for c in &p.columns {
            signals.insert(
                c.clone(),
                SignalInfo {
                    kind: FieldKind::Number,
                    tagger: p.tagger.clone(),
                    version: format!("dolma[{}]", p.attribute),
                },
            );
        }
    }
    let detail = format!(
        "import-dolma: {} attribute(s) from {} file(s), {} documents",
        report.attributes.len(),
        files.len(),
        report.matched_docs
    );
    let commit = Commit {
        tags: new_tags,
        signals: Some(signals),
        op: "tag".into(),
        detail,
        next_segment_id: st.next_segment_id,
        ..Default::default()
    };
    report.generation = Some(super::run::commit_sidecars(dir, &corpus, commit)?);
    report.seconds = start.elapsed().as_secs_f64();
    Ok(report)
}

impl crate::corpus::Corpus {
    /// Imports Dolma attribute files as signal columns (see
    /// [`crate::raw::tag::dolma`] and `docs/dolma.md`), commits them in one
    /// generation, then moves this handle to it.
    pub fn import_dolma(&mut self, files: &[PathBuf], opts: &DolmaOptions) -> Result<DolmaReport> {
        let r = import(self.dir(), files, opts)?;
        self.reload()?;
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            column_name("dolma_", "exp__tagger__attr"),
            "dolma_exp__tagger__attr"
        );
        assert_eq!(column_name("", "a.b-c d"), "a_b_c_d");
        assert_eq!(column_name("", "1x"), "_1x");
        assert_eq!(column_name("p_", "é"), "p__");
        assert_eq!(tagger_name("dolma_x"), "dolma-dolma_x");
    }

    #[test]
    fn spans() {
        let bad = |s: String| Error::Invalid(s);
        let v: Value = serde_json::from_str("[[5, 10, 0.5], [0, 3, 0.25], [8, 12, 1]]").unwrap();
        let a = spans_of(&v, &bad).unwrap();
        assert_eq!(a.spans, 3);
        assert_eq!(a.max, 1.0);
        assert_eq!(a.covered, 3 + 7);
        assert_eq!(a.max_end, 12);
        assert_eq!(a.whole_end, u64::MAX);
        let v: Value = serde_json::from_str("[[0, 7, 0.5]]").unwrap();
        assert_eq!(spans_of(&v, &bad).unwrap().whole_end, 7);
        let v: Value = serde_json::from_str("[]").unwrap();
        let a = spans_of(&v, &bad).unwrap();
        assert!(a.max.is_nan());
        assert_eq!((a.spans, a.covered), (0, 0));
        for bad_json in [
            "{}",
            "[[1, 2]]",
            "[[-1, 2, 0.5]]",
            "[[3, 2, 0.5]]",
            "[[0, 2, \"x\"]]",
            "[[0.5, 2, 1]]",
        ] {
            let v: Value = serde_json::from_str(bad_json).unwrap();
            assert!(spans_of(&v, &bad).is_err(), "{bad_json}");
        }
    }
}
