//! The tagging run: which documents each tagger still has to see, the
//! parallel pass over their blocks, sidecar writing and the commit.

use super::{dedup, language, ocr, pii, quality, toxicity};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use rayon::prelude::*;
use roaring::RoaringBitmap;

use crate::catalog::{Commit, SignalInfo, TagEntry};
use crate::corpus::{Corpus, LiveSegment, WriteLock};
use crate::error::{Error, Result};
use crate::schema::FieldKind;
use crate::segment::sidecar::{self, Column, ColumnValues, Sidecar};
use crate::select::Selection;

/// A tagger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tagger {
    /// `lang_detected`, `lang_score`, `code_score`.
    Language,
    /// RedPajama-V2 quality signals and the FineWeb / C4 ratios.
    Quality,
    /// `ocr_dict_ratio`, `ocr_window_agree`, `ocr_noise`.
    Ocr,
    /// `pii_*` counts.
    Pii,
    /// `toxicity_matches` against user word lists.
    Toxicity,
    /// `is_dup`, `dup_of`, `near_dup_cluster`, `near_dup_rep`.
    Dedup,
}

impl Tagger {
    /// Every tagger, in run order.
    pub const ALL: [Tagger; 6] = [
        Tagger::Language,
        Tagger::Quality,
        Tagger::Ocr,
        Tagger::Pii,
        Tagger::Toxicity,
        Tagger::Dedup,
    ];

    /// Its name on the command line and in file names.
    pub fn name(self) -> &'static str {
        match self {
            Tagger::Language => "language",
            Tagger::Quality => "quality",
            Tagger::Ocr => "ocr",
            Tagger::Pii => "pii",
            Tagger::Toxicity => "toxicity",
            Tagger::Dedup => "dedup",
        }
    }

    /// Parses a comma-separated list (`all` for every tagger but toxicity,
    /// which needs word lists).
    pub fn parse_list(s: &str) -> Result<Vec<Tagger>> {
        let mut out = BTreeSet::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if part == "all" {
                out.extend(Tagger::ALL.into_iter().filter(|t| *t != Tagger::Toxicity));
                continue;
            }
            match Tagger::ALL.into_iter().find(|t| t.name() == part) {
                Some(t) => {
                    out.insert(t);
                }
                None => {
                    return Err(Error::Invalid(format!(
                        "unknown tagger `{part}` (taggers: {})",
                        Tagger::ALL.map(|t| t.name()).join(", ")
                    )))
                }
            }
        }
        Ok(out.into_iter().collect())
    }

    /// The signal columns it writes, with their kinds, in its column order
    /// (what `schema` shows and queries may use once it ran).
    pub fn columns(self) -> Vec<(String, FieldKind)> {
        let numbers = |names: &[&str]| {
            names
                .iter()
                .map(|n| (n.to_string(), FieldKind::Number))
                .collect()
        };
        match self {
            Tagger::Language => vec![
                ("lang_detected".into(), FieldKind::Facet),
                ("lang_score".into(), FieldKind::Number),
                ("code_score".into(), FieldKind::Number),
            ],
            Tagger::Quality => numbers(quality::column_names()),
            Tagger::Ocr => numbers(&["ocr_dict_ratio", "ocr_window_agree", "ocr_noise"]),
            Tagger::Pii => pii::PiiKind::ALL
                .iter()
                .map(|k| (k.column().to_string(), FieldKind::Number))
                .collect(),
            Tagger::Toxicity => numbers(&["toxicity_matches"]),
            Tagger::Dedup => dedup_columns(),
        }
    }

    /// The tagger that writes signal column `name`, if any.
    pub fn of_signal(name: &str) -> Option<Tagger> {
        Tagger::ALL
            .into_iter()
            .find(|t| t.columns().iter().any(|(n, _)| n == name))
    }

    /// For a field name that no segment holds: when a tagger computes it,
    /// the sentence saying so and the command that computes it, e.g.
    /// "field `ocr_noise` is a signal of the ocr tagger, not computed in this
    /// corpus: run `corpusql tag --taggers ocr`".
    pub fn not_computed_hint(name: &str) -> Option<String> {
        let t = Tagger::of_signal(name)?;
        let extra = if t == Tagger::Toxicity {
            " --toxicity-lists DIR"
        } else {
            ""
        };
        Some(format!(
            "field `{name}` is a signal of the {} tagger, not computed in this corpus: run `corpusql tag --taggers {}{extra}`",
            t.name(),
            t.name()
        ))
    }
}

/// Options of a tagging run.
#[derive(Debug, Clone)]
pub struct TagOptions {
    /// Taggers to run.
    pub taggers: Vec<Tagger>,
    /// Restrict per-document taggers to documents matching this query
    /// (deduplication always covers the whole corpus).
    pub query: Option<String>,
    /// Languages `lang_detected` may take.
    pub languages: language::LangConfig,
    /// Where the OCR word lists are (`/usr/share/dict`).
    pub dict_dir: PathBuf,
    /// Word lists for the toxicity tagger (LDNOOBW layout).
    pub toxicity_lists: Option<PathBuf>,
    /// Receives the documents tagged (see [`crate::progress`]).
    pub progress: Option<crate::progress::ProgressSink>,
    /// Bytes of memory deduplication may buffer before spilling to disk.
    pub dedup_memory: usize,
    /// Recompute even where values of the current version exist.
    pub force: bool,
}

impl Default for TagOptions {
    fn default() -> Self {
        TagOptions {
            taggers: vec![Tagger::Language, Tagger::Quality, Tagger::Pii],
            query: None,
            languages: language::LangConfig::default(),
            dict_dir: PathBuf::from("/usr/share/dict"),
            toxicity_lists: None,
            progress: None,
            dedup_memory: 256 << 20,
            force: false,
        }
    }
}

/// What one tagger did in a run.
#[derive(Debug, Clone)]
pub struct TagOutcome {
    /// Tagger name.
    pub tagger: String,
    /// Its version.
    pub version: String,
    /// Documents it computed values for in this run.
    pub docs: u64,
    /// Sidecars written.
    pub sidecars: usize,
}

/// What a tagging run did.
#[derive(Debug, Clone, Default)]
pub struct TagReport {
    /// Per tagger.
    pub outcomes: Vec<TagOutcome>,
    /// The generation committed (None when nothing needed tagging).
    pub generation: Option<u64>,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Text bytes read.
    pub bytes: u64,
}

/// One computed value.
#[derive(Debug, Clone)]
enum Val {
    Num(f64),
    Str(Option<String>),
}

/// Values of one document for one tagger: (ordinal, tagger index, values).
type Row = (u32, usize, Vec<Val>);

/// Per-thread scratch state of the per-document taggers.
#[derive(Default)]
struct Scratch {
    quality: Option<quality::Scorer>,
    qout: Vec<Option<f64>>,
}

/// A per-document tagger.
trait DocTagger: Sync + Send {
    fn tagger(&self) -> Tagger;
    fn version(&self) -> String;
    fn columns(&self) -> Vec<(String, FieldKind)>;
    fn score(&self, text: &str, lang: Option<&str>, s: &mut Scratch, out: &mut Vec<Val>);
}

struct LanguageTagger {
    det: Arc<language::Detector>,
    cfg: language::LangConfig,
}

impl DocTagger for LanguageTagger {
    fn tagger(&self) -> Tagger {
        Tagger::Language
    }
    fn version(&self) -> String {
        format!(
            "{}[{};{}]",
            language::VERSION,
            self.cfg.allowed.join(","),
            self.cfg.prefix_chars
        )
    }
    fn columns(&self) -> Vec<(String, FieldKind)> {
        self.tagger().columns()
    }
    fn score(&self, text: &str, _lang: Option<&str>, _s: &mut Scratch, out: &mut Vec<Val>) {
        let (code, score) = self.det.detect(text);
        out.push(Val::Str(Some(code.to_string())));
        out.push(Val::Num(score));
        out.push(Val::Num(language::code_score(text)));
    }
}

struct QualityTagger;

impl DocTagger for QualityTagger {
    fn tagger(&self) -> Tagger {
        Tagger::Quality
    }
    fn version(&self) -> String {
        quality::VERSION.to_string()
    }
    fn columns(&self) -> Vec<(String, FieldKind)> {
        self.tagger().columns()
    }
    fn score(&self, text: &str, lang: Option<&str>, s: &mut Scratch, out: &mut Vec<Val>) {
        let scorer = s.quality.get_or_insert_with(quality::Scorer::new);
        s.qout.clear();
        scorer.score(text, lang, &mut s.qout);
        out.extend(s.qout.iter().map(|v| Val::Num(v.unwrap_or(f64::NAN))));
    }
}

struct OcrTagger {
    dicts: ocr::Dictionaries,
    det: Arc<language::Detector>,
    langs: Vec<&'static str>,
    /// The detector's languages and the word lists' sizes: results depend on both.
    inputs: String,
}

impl DocTagger for OcrTagger {
    fn tagger(&self) -> Tagger {
        Tagger::Ocr
    }
    fn version(&self) -> String {
        format!("{}[{}]{}", ocr::VERSION, self.langs.join(","), self.inputs)
    }
    fn columns(&self) -> Vec<(String, FieldKind)> {
        self.tagger().columns()
    }
    fn score(&self, text: &str, lang: Option<&str>, _s: &mut Scratch, out: &mut Vec<Val>) {
        let lang = match lang {
            Some(l) if self.langs.contains(&l) => l,
            _ => self.det.detect(text).0,
        };
        let r = ocr::score(text, lang, &self.dicts, &self.det);
        out.push(Val::Num(r.dict_ratio.unwrap_or(f64::NAN)));
        out.push(Val::Num(r.window_agree.unwrap_or(f64::NAN)));
        out.push(Val::Num(r.noise));
    }
}

struct PiiTagger;

impl DocTagger for PiiTagger {
    fn tagger(&self) -> Tagger {
        Tagger::Pii
    }
    fn version(&self) -> String {
        pii::VERSION.to_string()
    }
    fn columns(&self) -> Vec<(String, FieldKind)> {
        self.tagger().columns()
    }
    fn score(&self, text: &str, _lang: Option<&str>, _s: &mut Scratch, out: &mut Vec<Val>) {
        out.extend(pii::counts(text).iter().map(|&c| Val::Num(c as f64)));
    }
}

struct ToxicityTagger {
    lists: toxicity::WordLists,
}

impl DocTagger for ToxicityTagger {
    fn tagger(&self) -> Tagger {
        Tagger::Toxicity
    }
    fn version(&self) -> String {
        format!("{}+{:016x}", toxicity::VERSION, self.lists.fingerprint())
    }
    fn columns(&self) -> Vec<(String, FieldKind)> {
        self.tagger().columns()
    }
    fn score(&self, text: &str, lang: Option<&str>, _s: &mut Scratch, out: &mut Vec<Val>) {
        out.push(Val::Num(self.lists.count(text, lang) as f64));
    }
}

/// The columns and version each tagger writes (dedup included), without
/// running it; `schema` and `tag report` use it.
pub fn dedup_columns() -> Vec<(String, FieldKind)> {
    vec![
        ("is_dup".into(), FieldKind::Bool),
        ("dup_of".into(), FieldKind::Facet),
        ("near_dup_cluster".into(), FieldKind::Facet),
        ("near_dup_rep".into(), FieldKind::Bool),
    ]
}

fn build_taggers(opts: &TagOptions) -> Result<Vec<Box<dyn DocTagger>>> {
    let mut out: Vec<Box<dyn DocTagger>> = Vec::new();
    let need_det = opts
        .taggers
        .iter()
        .any(|t| matches!(t, Tagger::Language | Tagger::Ocr));
    let det = if need_det {
        Some(Arc::new(language::Detector::new(&opts.languages)?))
    } else {
        None
    };
    for t in &opts.taggers {
        match t {
            Tagger::Language => out.push(Box::new(LanguageTagger {
                det: det.clone().expect("detector"),
                cfg: opts.languages.clone(),
            })),
            Tagger::Quality => out.push(Box::new(QualityTagger)),
            Tagger::Ocr => {
                let langs = vec!["fr", "en", "de", "es", "it"];
                let dicts = ocr::Dictionaries::load(&opts.dict_dir, &langs)?;
                let sizes: Vec<String> = langs
                    .iter()
                    .map(|l| format!("{l}:{}:{:08x}", dicts.len(l), dicts.fingerprint(l) >> 32))
                    .collect();
                let inputs = format!(
                    "[det:{}][words:{}]",
                    opts.languages.allowed.join(","),
                    sizes.join(",")
                );
                out.push(Box::new(OcrTagger {
                    dicts,
                    det: det.clone().expect("detector"),
                    langs,
                    inputs,
                }))
            }
            Tagger::Pii => out.push(Box::new(PiiTagger)),
            Tagger::Toxicity => {
                let Some(dir) = &opts.toxicity_lists else {
                    return Err(Error::Invalid(
                        "the toxicity tagger needs word lists: --toxicity-lists DIR (one file per language, e.g. the LDNOOBW lists)".into(),
                    ));
                };
                let lists = toxicity::WordLists::load(dir)?;
                out.push(Box::new(ToxicityTagger { lists }))
            }
            Tagger::Dedup => {}
        }
    }
    Ok(out)
}

/// The sidecar of `tagger` attached to a segment, with its catalog entry.
fn existing<'a>(
    corpus: &'a Corpus,
    ls: &'a LiveSegment,
    tagger: &str,
) -> Option<(&'a TagEntry, &'a Arc<Sidecar>)> {
    let entries = corpus.state().tags.get(&ls.entry.id)?;
    let e = entries.iter().find(|e| e.tagger == tagger)?;
    let sc = ls
        .segment
        .overlay()
        .sidecars()
        .iter()
        .find(|s| s.path().file_name().and_then(|n| n.to_str()) == Some(e.file.as_str()))?;
    Some((e, sc))
}

/// Column builders for one (segment, tagger), seeded with earlier values.
fn seed_columns(
    cols: &[(String, FieldKind)],
    n: usize,
    old: Option<&Arc<Sidecar>>,
) -> Result<Vec<ColumnValues>> {
    let mut out = Vec::with_capacity(cols.len());
    for (name, kind) in cols {
        let mut c = match kind {
            FieldKind::Number => ColumnValues::Number(vec![f64::NAN; n]),
            FieldKind::Bool => ColumnValues::Bool(vec![None; n]),
            _ => ColumnValues::Facet(vec![None; n]),
        };
        if let Some(sc) = old {
            if let Some(i) = sc.position(name) {
                match (&mut c, &*sc.column(i)?) {
                    (ColumnValues::Number(v), Column::Number(o, _)) => {
                        v.copy_from_slice(&o[..n]);
                    }
                    (ColumnValues::Facet(v), Column::Facet(o, _)) => {
                        for (val, bm) in o.iter() {
                            for d in bm {
                                v[d as usize] = Some(val.clone());
                            }
                        }
                    }
                    (ColumnValues::Bool(v), Column::Facet(o, _)) => {
                        for (val, bm) in o.iter() {
                            for d in bm {
                                v[d as usize] = Some(val == "true");
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        out.push(c);
    }
    Ok(out)
}

fn set_val(c: &mut ColumnValues, ord: usize, v: Val) {
    match (c, v) {
        (ColumnValues::Number(col), Val::Num(x)) => col[ord] = x,
        (ColumnValues::Facet(col), Val::Str(s)) => col[ord] = s,
        (ColumnValues::Bool(col), Val::Str(s)) => col[ord] = s.map(|s| s == "true"),
        _ => {}
    }
}

/// The user's `lang` value of every ordinal of a segment.
fn langs_of(seg: &crate::segment::Segment) -> Result<Vec<Option<Arc<str>>>> {
    let mut out = vec![None; seg.doc_count() as usize];
    let (groups, _) = seg.split_by_values("lang", &seg.all(), true)?;
    for (v, bm) in groups {
        let v: Arc<str> = v.into();
        for o in bm {
            out[o as usize] = Some(v.clone());
        }
    }
    Ok(out)
}

/// Starts a phase of `total` documents on the caller's progress sink.
fn progress_bar(
    sink: &Option<crate::progress::ProgressSink>,
    total: u64,
    what: &str,
) -> Option<crate::progress::ProgressSink> {
    let sink = sink.clone().filter(|_| total > 0)?;
    sink.0.start(what, total, crate::progress::Unit::Documents);
    Some(sink)
}

/// Runs taggers on the corpus in `dir` and commits their sidecars.
pub fn tag(dir: &Path, opts: &TagOptions) -> Result<TagReport> {
    let start = Instant::now();
    let _lock = WriteLock::acquire(dir)?;
    let corpus = Corpus::open(dir)?;
    let st = corpus.state().clone();
    let mut run = Run::prepare(&corpus, opts)?;
    let generation = st.generation + 1;
    let mut report = TagReport::default();
    let all: Vec<usize> = (0..corpus.segments().len()).collect();
    let written = run.tag_segments(dir, &corpus, &all, generation, opts, &mut report)?;
    let mut new_tags: BTreeMap<u64, Vec<TagEntry>> = BTreeMap::new();
    for (id, e) in written {
        add_entry(&mut new_tags, &st, id, e);
    }
    let mut outcomes = run.outcomes.clone();
    if opts.taggers.contains(&Tagger::Dedup) {
        let o = run_dedup(dir, &corpus, opts, generation, &mut new_tags)?;
        outcomes.insert(Tagger::Dedup, o);
    }
    report.outcomes = outcomes.into_values().collect();
    if !new_tags.is_empty() {
        let signals = run.signals(&st.signals);
        let detail = outcome_detail(&report.outcomes);
        let commit = Commit {
            tags: new_tags.into_iter().collect(),
            signals: Some(signals),
            op: "tag".into(),
            detail,
            next_segment_id: st.next_segment_id,
            ..Default::default()
        };
        report.generation = Some(commit_sidecars(dir, &corpus, commit)?);
    }
    report.seconds = start.elapsed().as_secs_f64();
    Ok(report)
}

/// Sets `e` in the tag list of segment `id` (replacing that tagger's
/// earlier entry), starting from the catalog's list.
fn add_entry(
    new_tags: &mut BTreeMap<u64, Vec<TagEntry>>,
    st: &crate::catalog::CatalogState,
    id: u64,
    e: TagEntry,
) {
    let list = new_tags
        .entry(id)
        .or_insert_with(|| st.tags.get(&id).cloned().unwrap_or_default());
    list.retain(|x| x.tagger != e.tagger);
    list.push(e);
}

/// A generation's detail: what each tagger tagged.
fn outcome_detail(outcomes: &[TagOutcome]) -> String {
    outcomes
        .iter()
        .filter(|o| o.docs > 0)
        .map(|o| format!("{} ({} docs)", o.tagger, o.docs))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a tagging run (or task) works with: its per-document taggers, the
/// signal columns they and deduplication add, the selected documents.
struct Run {
    taggers: Vec<Box<dyn DocTagger>>,
    all_cols: Vec<(String, FieldKind, Tagger, String)>,
    sel: Selection,
    outcomes: BTreeMap<Tagger, TagOutcome>,
}

impl Run {
    fn prepare(corpus: &Corpus, opts: &TagOptions) -> Result<Run> {
        let st = corpus.state();
        let taggers = build_taggers(opts)?;
        let mut all_cols: Vec<(String, FieldKind, Tagger, String)> = Vec::new();
        for t in &taggers {
            for (n, k) in t.columns() {
                all_cols.push((n, k, t.tagger(), t.version()));
            }
        }
        if opts.taggers.contains(&Tagger::Dedup) {
            for (n, k) in dedup_columns() {
                all_cols.push((n, k, Tagger::Dedup, dedup::VERSION.to_string()));
            }
        }
        check_shadowing(&st.schema, &all_cols)?;
        let sel = match &opts.query {
            Some(q) => corpus.query(q)?,
            None => corpus.all(),
        };
        let mut outcomes: BTreeMap<Tagger, TagOutcome> = BTreeMap::new();
        for t in &taggers {
            outcomes.insert(
                t.tagger(),
                TagOutcome {
                    tagger: t.tagger().name().into(),
                    version: t.version(),
                    docs: 0,
                    sidecars: 0,
                },
            );
        }
        Ok(Run {
            taggers,
            all_cols,
            sel,
            outcomes,
        })
    }

    /// The corpus's signal table with this run's columns set.
    fn signals(&self, old: &BTreeMap<String, SignalInfo>) -> BTreeMap<String, SignalInfo> {
        let mut signals = old.clone();
        for (n, k, t, v) in &self.all_cols {
            signals.insert(
                n.clone(),
                SignalInfo {
                    kind: *k,
                    tagger: t.name().into(),
                    version: v.clone(),
                },
            );
        }
        signals
    }

    /// Runs the per-document taggers on the segments at `indices` (of
    /// `corpus.segments()`), writing each new sidecar into `out_dir` under
    /// the name it takes in `generation`; returns them per segment id.
    fn tag_segments(
        &mut self,
        out_dir: &Path,
        corpus: &Corpus,
        indices: &[usize],
        generation: u64,
        opts: &TagOptions,
        report: &mut TagReport,
    ) -> Result<Vec<(u64, TagEntry)>> {
        let taggers = &self.taggers;
        let mut written = Vec::new();
        // Work per segment and tagger.
        let mut plans = Vec::new();
        let mut total = 0u64;
        for &i in indices {
            let ls = &corpus.segments()[i];
            let chosen = &self.sel.parts[i].1;
            let mut per = Vec::new();
            for t in taggers {
                let name = t.tagger().name();
                let old = existing(corpus, ls, name)
                    .filter(|(e, _)| e.version == t.version() && !opts.force);
                let todo = match old {
                    Some((_, sc)) if !opts.force => chosen - sc.tagged()?,
                    _ => chosen.clone(),
                };
                per.push((todo, old.map(|(_, sc)| sc.clone())));
            }
            let union = per.iter().fold(RoaringBitmap::new(), |a, (t, _)| a | t);
            total += union.len();
            plans.push((i, per, union));
        }
        let pb = progress_bar(&opts.progress, total, "tagging");
        for (i, per, union) in plans {
            if union.is_empty() {
                continue;
            }
            let ls = &corpus.segments()[i];
            let seg = &ls.segment;
            let n = seg.doc_count() as usize;
            let langs = langs_of(seg)?;
            let one = Selection {
                parts: vec![(seg.clone(), union.clone())],
                notes: Vec::new(),
            };
            let mut cols: Vec<Vec<ColumnValues>> = Vec::new();
            for (t, (_, old)) in taggers.iter().zip(&per) {
                cols.push(seed_columns(&t.columns(), n, old.as_ref())?);
            }
            let jobs = one.jobs();
            let window = rayon::current_num_threads().max(1) * 4;
            for chunk in jobs.chunks(window) {
                let outs: Vec<Result<Vec<Row>>> = chunk
                    .par_iter()
                    .map_init(Scratch::default, |scratch, j| {
                        let b = one.read(j)?;
                        let first = seg.blocks()[j.block].first_doc;
                        let mut rows = Vec::new();
                        for &d in &j.docs {
                            let ord = first + d;
                            let text = b.text(d as usize);
                            let lang = langs[ord as usize].as_deref();
                            for (ti, t) in taggers.iter().enumerate() {
                                if per[ti].0.contains(ord) {
                                    let mut out = Vec::new();
                                    t.score(text, lang, scratch, &mut out);
                                    rows.push((ord, ti, out));
                                }
                            }
                        }
                        Ok(rows)
                    })
                    .collect();
                for o in outs {
                    for (ord, ti, vals) in o? {
                        for (c, v) in cols[ti].iter_mut().zip(vals) {
                            set_val(c, ord as usize, v);
                        }
                    }
                }
                let docs: u64 = chunk.iter().map(|j| j.docs.len() as u64).sum();
                crate::progress::with(&pb, |p| p.advance(docs));
            }
            report.bytes += match seg.numeric(crate::format::BYTES_FIELD)? {
                Some(col) => union.iter().map(|o| col[o as usize] as u64).sum(),
                None => 0,
            };
            for ((t, (todo, old)), values) in taggers.iter().zip(&per).zip(cols) {
                if todo.is_empty() {
                    continue;
                }
                let name = t.tagger().name();
                let mut tagged = todo.clone();
                if let Some(sc) = old {
                    tagged |= sc.tagged()?;
                }
                let file = sidecar::file_name(&ls.entry.file, name, generation);
                let columns: Vec<(String, ColumnValues)> = t
                    .columns()
                    .into_iter()
                    .map(|(n, _)| n)
                    .zip(values)
                    .collect();
                let bytes = sidecar::write(
                    &out_dir.join(&file),
                    name,
                    &t.version(),
                    n as u32,
                    &tagged,
                    &columns,
                )?;
                written.push((
                    ls.entry.id,
                    TagEntry {
                        tagger: name.into(),
                        version: t.version(),
                        file,
                        tagged_docs: tagged.len() as u32,
                        columns: t.columns(),
                        file_bytes: bytes,
                    },
                ));
                let o = self.outcomes.get_mut(&t.tagger()).expect("outcome");
                o.docs += todo.len();
                o.sidecars += 1;
            }
        }
        crate::progress::with(&pb, |p| p.finish());
        Ok(written)
    }
}

/// Refuses signal columns that would shadow a field of the corpus's own.
fn check_shadowing(
    schema: &crate::schema::Schema,
    cols: &[(String, FieldKind, Tagger, String)],
) -> Result<()> {
    for (n, _, t, _) in cols {
        if schema.fields.contains_key(n) {
            return Err(Error::Invalid(format!(
                "the corpus has a field `{n}` of its own; the {} tagger would shadow it",
                t.name()
            )));
        }
    }
    Ok(())
}

/// Runs task `task` of the tagging job `job` (see [`crate::job`]): the
/// per-document taggers over its contiguous share of the corpus's
/// segments, sidecars staged in the job's folder, nothing committed.
/// Deduplication, which compares every document with every other, runs
/// once at the job's commit.
pub fn tag_task(
    dir: &Path,
    job: &str,
    task: crate::job::TaskId,
    opts: &TagOptions,
) -> Result<TagReport> {
    if let Some(uri) = crate::remote::as_uri(dir) {
        return crate::remote::run_task(uri, job, task, |work| tag_task(work, job, task, opts));
    }
    let start = Instant::now();
    crate::job::check_name(job)?;
    let corpus = Corpus::open(dir)?;
    let st = corpus.state().clone();
    let mut run = Run::prepare(&corpus, opts)?;
    let staging = crate::job::Staging::begin(dir, job, task)?;
    let share: Vec<usize> = task.share(corpus.segments().len()).collect();
    let mut report = TagReport::default();
    let written = run.tag_segments(
        staging.path(),
        &corpus,
        &share,
        st.generation + 1,
        opts,
        &mut report,
    )?;
    let mut m = crate::job::Manifest::new(job, crate::job::JobKind::Tag, task, st.generation);
    let mut by_seg: BTreeMap<u64, Vec<TagEntry>> = BTreeMap::new();
    for (id, e) in written {
        by_seg.entry(id).or_default().push(e);
    }
    for (id, entries) in by_seg {
        let file = st
            .segments
            .iter()
            .find(|s| s.id == id)
            .map(|s| s.file.clone())
            .unwrap_or_default();
        m.tags.push(crate::job::StagedTags {
            segment: id,
            segment_file: file,
            entries,
        });
    }
    m.signals = run.signals(&BTreeMap::new());
    m.dedup = opts.taggers.contains(&Tagger::Dedup);
    m.outcomes = run
        .outcomes
        .values()
        .map(|o| {
            (
                o.tagger.clone(),
                o.version.clone(),
                o.docs,
                o.sidecars as u64,
            )
        })
        .collect();
    staging.finish(&m)?;
    report.outcomes = run.outcomes.into_values().collect();
    report.generation = None;
    report.seconds = start.elapsed().as_secs_f64();
    Ok(report)
}

/// Commits the finished tasks of a tagging job (called by
/// [`crate::job::commit`] under the write lock): links their sidecars into
/// the corpus under this generation's names, runs deduplication when the
/// job asked for it, and commits one generation whose detail carries
/// `mark`.
pub(crate) fn commit_tag_job(
    dir: &Path,
    job: &str,
    tasks: &[(PathBuf, crate::job::Manifest)],
    mark: &str,
    opts: &TagOptions,
) -> Result<crate::job::JobReport> {
    let corpus = Corpus::open(dir)?;
    let st = corpus.state().clone();
    let generation = st.generation + 1;
    let mut new_tags: BTreeMap<u64, Vec<TagEntry>> = BTreeMap::new();
    let mut signals = st.signals.clone();
    let mut outcomes: BTreeMap<String, (String, String, u64, u64)> = BTreeMap::new();
    let mut linked = Vec::new();
    let mut segments = std::collections::BTreeSet::new();
    let undo = |linked: &[PathBuf]| {
        for p in linked {
            let _ = crate::storage::remove_file(p);
        }
    };
    for (p, m) in tasks {
        for (n, info) in &m.signals {
            if st.schema.fields.contains_key(n) {
                undo(&linked);
                return Err(Error::Invalid(format!(
                    "job {job}: the corpus has a field `{n}` of its own; the {} tagger would shadow it",
                    info.tagger
                )));
            }
            signals.insert(n.clone(), info.clone());
        }
        for o in &m.outcomes {
            let e = outcomes
                .entry(o.0.clone())
                .or_insert_with(|| (o.0.clone(), o.1.clone(), 0, 0));
            e.2 += o.2;
            e.3 += o.3;
        }
        for t in &m.tags {
            if !st
                .segments
                .iter()
                .any(|s| s.id == t.segment && s.file == t.segment_file)
            {
                undo(&linked);
                return Err(Error::Invalid(format!(
                    "job {job}: segment {} was compacted or removed after task {} read the corpus (generation {}); run the job's tasks again. Nothing was committed",
                    t.segment_file, m.task, m.base_generation
                )));
            }
            segments.insert(t.segment);
            for e in &t.entries {
                let name = sidecar::file_name(&t.segment_file, &e.tagger, generation);
                let to = dir.join(&name);
                if let Err(err) = crate::storage::link_or_copy(&p.join(&e.file), &to) {
                    undo(&linked);
                    return Err(Error::io(&to, err));
                }
                linked.push(to);
                let mut e = e.clone();
                e.file = name;
                add_entry(&mut new_tags, &st, t.segment, e);
            }
        }
    }
    if let Err(e) = crate::storage::sync_dir(dir) {
        undo(&linked);
        return Err(Error::io(dir, e));
    }
    let mut report_outcomes: Vec<TagOutcome> = outcomes
        .values()
        .map(|o| TagOutcome {
            tagger: o.0.clone(),
            version: o.1.clone(),
            docs: o.2,
            sidecars: o.3 as usize,
        })
        .collect();
    if tasks.iter().any(|(_, m)| m.dedup) {
        let o = run_dedup(dir, &corpus, opts, generation, &mut new_tags)?;
        for (n, k) in dedup_columns() {
            signals.insert(
                n,
                SignalInfo {
                    kind: k,
                    tagger: Tagger::Dedup.name().into(),
                    version: dedup::VERSION.into(),
                },
            );
        }
        report_outcomes.push(o);
    }
    let mut report = crate::job::JobReport {
        segments: segments.len() as u64,
        outcomes: report_outcomes
            .iter()
            .map(|o| {
                (
                    o.tagger.clone(),
                    o.version.clone(),
                    o.docs,
                    o.sidecars as u64,
                )
            })
            .collect(),
        ..Default::default()
    };
    if new_tags.is_empty() {
        return Ok(report);
    }
    let commit = Commit {
        tags: new_tags.into_iter().collect(),
        signals: Some(signals),
        op: "tag".into(),
        detail: format!(
            "job {job}: {} tasks, {} {mark}",
            tasks.len(),
            outcome_detail(&report_outcomes)
        ),
        next_segment_id: st.next_segment_id,
        ..Default::default()
    };
    report.generation = Some(commit_sidecars(dir, &corpus, commit)?);
    Ok(report)
}

/// Commits a generation of new sidecars on top of `corpus`'s snapshot;
/// on failure removes what the catalog does not list, on success the
/// sidecars the new generation no longer lists (readers of the old
/// generation hold them open).
pub(crate) fn commit_sidecars(dir: &Path, corpus: &Corpus, commit: Commit) -> Result<u64> {
    let g = match corpus
        .catalog()
        .commit(corpus.generation(), commit, corpus.len())
    {
        Ok(g) => g,
        Err(e) => {
            crate::corpus::remove_unless_committed(dir, corpus.catalog());
            return Err(e);
        }
    };
    if let Ok(st) = corpus.catalog().state() {
        let _ = crate::corpus::collect_orphans(dir, &st);
    }
    Ok(g)
}

/// Removes a scratch folder when dropped.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Corpus-wide exact and near-duplicate detection (see [`dedup`]).
fn run_dedup(
    dir: &Path,
    corpus: &Corpus,
    opts: &TagOptions,
    generation: u64,
    new_tags: &mut BTreeMap<u64, Vec<TagEntry>>,
) -> Result<TagOutcome> {
    let name = Tagger::Dedup.name();
    let mut outcome = TagOutcome {
        tagger: name.into(),
        version: dedup::VERSION.into(),
        docs: 0,
        sidecars: 0,
    };
    // Up to date when every segment's dedup sidecar (current version) was
    // computed on exactly the live documents of today.
    let mut fresh = !opts.force;
    for ls in corpus.segments() {
        match existing(corpus, ls, name) {
            Some((e, sc)) if e.version == dedup::VERSION && *sc.tagged()? == ls.live => {}
            _ => fresh = false,
        }
    }
    if fresh {
        return Ok(outcome);
    }
    // Spill files live inside the corpus directory (same file system, and
    // removed with it); a crash leaves the folder, removed by the next run.
    let work = dir.join("dedup.tmp.d");
    if work.exists() {
        std::fs::remove_dir_all(&work).map_err(|e| Error::io(&work, e))?;
    }
    std::fs::create_dir_all(&work).map_err(|e| Error::io(&work, e))?;
    let _cleanup = RemoveOnDrop(work.clone());
    // Global ranks in key order: a k-way merge of the segments' key maps.
    // Per-document state lives in memory-mapped files, so memory stays
    // bounded whatever the corpus size: `ranks` maps (segment base +
    // ordinal) to rank + 1 (0: not live), `key_at` maps a rank to its key's
    // offset in `keys.bin` (u32 length, then the bytes).
    let segs = corpus.segments();
    let mut base = Vec::with_capacity(segs.len());
    let mut total = 0u64;
    for s in segs {
        base.push(total);
        total += s.segment.doc_count() as u64;
    }
    let mut ranks = dedup::DiskU64::create(&work.join("ranks.u64"), total)?;
    let mut key_at = dedup::DiskU64::create(&work.join("key-at.u64"), total)?;
    let keys_path = work.join("keys.bin");
    let mut n_docs = 0u64;
    {
        use fst::Streamer;
        use std::cmp::Reverse;
        use std::collections::BinaryHeap;
        use std::io::Write;
        let f = std::fs::File::create(&keys_path).map_err(|e| Error::io(&keys_path, e))?;
        let mut keys_out = std::io::BufWriter::with_capacity(1 << 20, f);
        let mut off = 0u64;
        let mut streams: Vec<_> = segs.iter().map(|s| s.segment.key_stream()).collect();
        let mut heap = BinaryHeap::new();
        for (i, s) in streams.iter_mut().enumerate() {
            if let Some((k, o)) = s.next() {
                heap.push(Reverse((k.to_vec(), i, o as u32)));
            }
        }
        while let Some(Reverse((k, i, o))) = heap.pop() {
            if segs[i].live.contains(o) {
                ranks.set(base[i] + o as u64, n_docs + 1);
                key_at.set(n_docs, off);
                keys_out
                    .write_all(&(k.len() as u32).to_le_bytes())
                    .and_then(|_| keys_out.write_all(&k))
                    .map_err(|e| Error::io(&keys_path, e))?;
                off += 4 + k.len() as u64;
                n_docs += 1;
            }
            if let Some((k, o)) = streams[i].next() {
                heap.push(Reverse((k.to_vec(), i, o as u32)));
            }
        }
        // Flushed, not synced: a work file read back through the page cache
        // by this process and removed with the work directory.
        keys_out
            .into_inner()
            .map_err(|e| Error::io(&keys_path, e.into_error()))?;
    }
    let rank_of = |i: usize, o: u32| ranks.get(base[i] + o as u64) - 1;
    let mut cfg = dedup::DedupConfig::new(work.clone());
    cfg.memory_budget = opts.dedup_memory;
    let mut builder = dedup::Builder::new(cfg.clone(), n_docs)?;
    let pb = progress_bar(&opts.progress, n_docs, "dedup signatures");
    let window = rayon::current_num_threads().max(1) * 4;
    for (i, ls) in segs.iter().enumerate() {
        let seg = &ls.segment;
        let one = Selection {
            parts: vec![(seg.clone(), ls.live.clone())],
            notes: Vec::new(),
        };
        let jobs = one.jobs();
        for chunk in jobs.chunks(window) {
            let outs: Vec<Result<Vec<(u64, dedup::Signature)>>> = chunk
                .par_iter()
                .map(|j| {
                    let b = one.read(j)?;
                    let first = seg.blocks()[j.block].first_doc;
                    Ok(j.docs
                        .iter()
                        .map(|&d| {
                            (
                                rank_of(i, first + d),
                                dedup::signature(b.text(d as usize), &cfg),
                            )
                        })
                        .collect())
                })
                .collect();
            for o in outs {
                let rows = o?;
                crate::progress::with(&pb, |p| p.advance(rows.len() as u64));
                for (r, sig) in rows {
                    builder.add(r, &sig)?;
                }
            }
        }
    }
    crate::progress::with(&pb, |p| p.finish());
    let result = builder.finish()?;
    let keys_file = std::fs::File::open(&keys_path).map_err(|e| Error::io(&keys_path, e))?;
    // SAFETY: the file was written and flushed above by this process, in a
    // work directory no other process writes (the corpus write lock is held).
    let keys = unsafe { memmap2::Mmap::map(&keys_file) }.map_err(|e| Error::io(&keys_path, e))?;
    let key_of = |r: u64| -> String {
        let off = key_at.get(r) as usize;
        let len = u32::from_le_bytes(keys[off..off + 4].try_into().expect("4 bytes")) as usize;
        String::from_utf8_lossy(&keys[off + 4..off + 4 + len]).into_owned()
    };
    for (i, ls) in segs.iter().enumerate() {
        let n = ls.segment.doc_count() as usize;
        let mut is_dup = vec![None; n];
        let mut dup_of = vec![None; n];
        let mut cluster = vec![None; n];
        let mut rep = vec![None; n];
        for o in ls.live.iter() {
            let r = rank_of(i, o);
            let d = result.dup_of(r);
            is_dup[o as usize] = Some(d.is_some());
            dup_of[o as usize] = d.map(key_of);
            let c = result.cluster_rep(r);
            cluster[o as usize] = c.map(key_of);
            rep[o as usize] = Some(c.is_none_or(|c| c == r));
        }
        let columns = vec![
            ("is_dup".to_string(), ColumnValues::Bool(is_dup)),
            ("dup_of".to_string(), ColumnValues::Facet(dup_of)),
            ("near_dup_cluster".to_string(), ColumnValues::Facet(cluster)),
            ("near_dup_rep".to_string(), ColumnValues::Bool(rep)),
        ];
        let file = sidecar::file_name(&ls.entry.file, name, generation);
        let bytes = sidecar::write(
            &dir.join(&file),
            name,
            dedup::VERSION,
            n as u32,
            &ls.live,
            &columns,
        )?;
        let mut list = new_tags
            .remove(&ls.entry.id)
            .or_else(|| corpus.state().tags.get(&ls.entry.id).cloned())
            .unwrap_or_default();
        list.retain(|e| e.tagger != name);
        list.push(TagEntry {
            tagger: name.into(),
            version: dedup::VERSION.into(),
            file,
            tagged_docs: ls.live.len() as u32,
            columns: dedup_columns(),
            file_bytes: bytes,
        });
        new_tags.insert(ls.entry.id, list);
        outcome.sidecars += 1;
    }
    outcome.docs = n_docs;
    Ok(outcome)
}
