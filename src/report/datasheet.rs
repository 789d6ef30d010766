//! Datasheets: the numbers behind `corpusql report` and `corpusql tag
//! report`, computed from a selection (a query or a mixture's components)
//! and the catalog — documents, bytes and tokens by license id, license
//! class, source and language; what the policy holds back; attribution
//! lists; the ingest log; what deletions withdrew between generations; and
//! for taggers, the distribution of every signal with the share of
//! documents common thresholds would remove. The rest of [`crate::report`]
//! defines the [`Datasheet`] these fill and renders it.

use std::collections::BTreeMap;
use std::sync::Arc;

use roaring::RoaringBitmap;

use super::{
    Attribution, Breakdown, BreakdownRow, Counts, Datasheet, DiffRow, IngestEntry, PolicySummary,
    SignalSummary, ThresholdImpact, Withdrawal, WithdrawalLogEntry,
};
use crate::corpus::Corpus;
use crate::error::Result;
use crate::plan::{self, Plan};
use crate::policy::{self, Policy};
use crate::schema::FieldKind;
use crate::segment::overlay::{LICENSE_CLASS, LICENSE_ID};
use crate::tokenize::{corpus_counts, Tokenizer};

/// Field attribution strings are read from (given at ingest or with `--set attribution=...`).
pub const ATTRIBUTION_FIELD: &str = "attribution";

/// What a datasheet covers.
pub struct Scope<'a> {
    /// The open corpus.
    pub corpus: &'a Corpus,
    /// The selection's plan (a query's, or the union of a mixture's components).
    pub plan: Plan,
    /// How the selection was given (query text or mixture file name).
    pub label: String,
    /// Tokenizer for token counts.
    pub tokenizer: Tokenizer,
    /// Count the documents the corpus policy holds back in the totals,
    /// breakdowns and attributions too (by default they are left out and
    /// only listed as held back).
    pub override_policy: bool,
    /// For a mixture: the training set its stream emits. The totals and
    /// breakdowns then count its documents (once each) and the tokens the
    /// stream takes from them (epochs included).
    pub training: Option<crate::train::training::TrainingSet>,
}

#[derive(Default, Clone, Copy)]
struct Acc {
    docs: u64,
    bytes: u64,
    tokens: u64,
}

impl Acc {
    fn counts(self) -> Counts {
        Counts {
            docs: self.docs,
            bytes: self.bytes,
            tokens: Some(self.tokens),
        }
    }
}

fn add(acc: &mut Acc, bm: &RoaringBitmap, bytes: Option<&Arc<Vec<f64>>>, tokens: &[u32]) {
    acc.docs += bm.len();
    for o in bm {
        if let Some(b) = bytes {
            acc.bytes += b[o as usize] as u64;
        }
        acc.tokens += tokens[o as usize] as u64;
    }
}

/// Groups documents of `parts` by `field` (a document under its first value; `(none)` without one).
fn group_by(
    corpus: &Corpus,
    parts: &[RoaringBitmap],
    field: &str,
    counts: &[Arc<Vec<u32>>],
) -> Result<BTreeMap<String, Acc>> {
    let mut out: BTreeMap<String, Acc> = BTreeMap::new();
    for (i, ls) in corpus.segments().iter().enumerate() {
        let bm = &parts[i];
        if bm.is_empty() {
            continue;
        }
        let bytes = ls.segment.numeric(crate::format::BYTES_FIELD)?;
        let (groups, rest) = ls.segment.split_by_values(field, bm, true)?;
        for (v, sub) in groups.into_iter().chain([("(none)".to_string(), rest)]) {
            if !sub.is_empty() {
                add(out.entry(v).or_default(), &sub, bytes.as_ref(), &counts[i]);
            }
        }
    }
    Ok(out)
}

fn rows_of(map: BTreeMap<String, Acc>, with_class: bool) -> Vec<BreakdownRow> {
    breakdown_rows(map.into_iter().map(|(v, a)| (v, a.counts())), with_class)
}

/// Breakdown rows, largest first (then by value), with each license id's
/// class when `with_class`.
fn breakdown_rows(
    rows: impl IntoIterator<Item = (String, Counts)>,
    with_class: bool,
) -> Vec<BreakdownRow> {
    let mut rows: Vec<BreakdownRow> = rows
        .into_iter()
        .map(|(value, counts)| BreakdownRow {
            class: with_class.then(|| crate::license::class_of(&value).as_str().to_string()),
            value,
            counts,
        })
        .collect();
    rows.sort_by(|a, b| {
        b.counts
            .docs
            .cmp(&a.counts.docs)
            .then_with(|| a.value.cmp(&b.value))
    });
    rows
}

/// The selection of `plan`, per segment.
fn parts_of(corpus: &Corpus, plan: &Plan) -> Result<Vec<RoaringBitmap>> {
    corpus
        .segments()
        .iter()
        .map(|s| plan::eval(plan, &s.segment, &s.live, &s.live))
        .collect()
}

/// The license datasheet of a selection.
pub fn license_datasheet(scope: &Scope<'_>, since_generation: Option<u64>) -> Result<Datasheet> {
    let corpus = scope.corpus;
    let counts = corpus_counts(corpus, &scope.tokenizer)?;
    let parts = parts_of(corpus, &scope.plan)?;
    // Policy.
    let pol = Policy::load(corpus.dir())?;
    let sel = crate::select::Selection {
        parts: corpus
            .segments()
            .iter()
            .zip(&parts)
            .map(|(s, p)| (s.segment.clone(), p.clone()))
            .collect(),
        notes: Vec::new(),
    };
    let (kept, held) = policy::apply(corpus, &sel, &pol)?;
    // What may leave the corpus is what the datasheet describes: for a
    // mixture, what its stream emits (bound to the policy already).
    let parts: Vec<RoaringBitmap> = match &scope.training {
        Some(t) => t.parts.clone(),
        None if scope.override_policy => parts,
        None => kept.parts.into_iter().map(|(_, bm)| bm).collect(),
    };
    let counts_all = counts;
    let counts: &[Arc<Vec<u32>>] = match &scope.training {
        Some(t) => &t.tokens,
        None => &counts_all,
    };
    let policy = Some(PolicySummary {
        allowed_classes: pol.allowed(),
        set: pol.is_set(),
        overridden: scope.override_policy && pol.is_set(),
        held_back: Counts {
            docs: held.docs,
            bytes: held.bytes,
            tokens: None,
        },
        held_back_licenses: held
            .by_license
            .iter()
            .map(|(id, class, d, b)| BreakdownRow {
                value: id.clone(),
                counts: Counts {
                    docs: *d,
                    bytes: *b,
                    tokens: None,
                },
                class: Some(class.clone()),
            })
            .collect(),
    });
    let mut totals = Acc::default();
    for (i, ls) in corpus.segments().iter().enumerate() {
        let bytes = ls.segment.numeric(crate::format::BYTES_FIELD)?;
        add(&mut totals, &parts[i], bytes.as_ref(), &counts[i]);
    }
    let mut breakdowns = Vec::new();
    for field in [LICENSE_ID, LICENSE_CLASS, "source", "lang"] {
        if corpus.schema().resolve(field).is_none() {
            continue;
        }
        let map = group_by(corpus, &parts, field, counts)?;
        breakdowns.push(Breakdown {
            facet: field.to_string(),
            rows: rows_of(map, field == LICENSE_ID),
        });
    }
    let attributions = attributions(corpus, &parts)?;
    let ingest_log = corpus
        .catalog()
        .ingest_log()?
        .into_iter()
        .map(|e| IngestEntry {
            file: e.source,
            size: e.size,
            xxh3_128: e.content_hash,
            started_unix: e.started_unix,
            finished_unix: e.committed_unix,
            docs_added: e.ingested,
            rejected: e.rejected,
            generation: e.generation,
        })
        .collect();
    // Deletes after `since_generation`; those whose documents `compact`
    // has dropped are only in the log.
    let withdrawals: Vec<_> = corpus
        .catalog()
        .withdrawals()?
        .into_iter()
        .filter(|w| since_generation.is_none_or(|s| w.generation > s))
        .collect();
    let in_files = |w: &crate::catalog::Withdrawal| {
        w.tombstoned
            .keys()
            .any(|id| corpus.segments().iter().any(|s| s.entry.id == *id))
    };
    let (kept, dropped): (Vec<_>, Vec<_>) = withdrawals.into_iter().partition(|w| in_files(w));
    let withdrawal = withdrawal(scope, &counts_all, totals, &kept, since_generation)?;
    let dropped: std::collections::BTreeSet<u64> = dropped.iter().map(|w| w.generation).collect();
    let withdrawal_log = withdrawal_log(corpus, since_generation, &dropped)?;
    let mut notes = Vec::new();
    if let Some(b) = breakdowns.iter().find(|b| b.facet == LICENSE_ID) {
        if let Some(u) = b.rows.iter().find(|r| r.value == crate::license::UNKNOWN) {
            notes.push(format!(
                "{} documents have a license corpusql does not recognize or none at all (license_id = unknown); `corpusql stats \"license_id = unknown\" --by {}` lists the raw values",
                u.counts.docs,
                corpus.state().license_field()
            ));
        }
    }
    Ok(Datasheet {
        title: format!("Datasheet: {}", scope.label),
        generated_unix: crate::catalog::unix_now(),
        corpus: corpus.label(),
        generation: corpus.generation(),
        selection: scope.label.clone(),
        tokenizer: scope.tokenizer.id(),
        totals: totals.counts(),
        breakdowns,
        policy,
        attributions,
        ingest_log,
        withdrawal,
        withdrawal_log,
        signals: Vec::new(),
        notes,
        training: scope.training.as_ref().map(|t| t.summary.clone()),
    })
}

/// Attribution lists: every (source, license) whose license requires attribution.
fn attributions(corpus: &Corpus, parts: &[RoaringBitmap]) -> Result<Vec<Attribution>> {
    // (source, license) -> (docs, attribution strings with counts, docs without one)
    type Group = (u64, BTreeMap<String, u64>, u64);
    let mut acc: BTreeMap<(String, String), Group> = BTreeMap::new();
    for (i, ls) in corpus.segments().iter().enumerate() {
        let bm = &parts[i];
        if bm.is_empty() {
            continue;
        }
        let seg = &ls.segment;
        let (ids, _) = seg.split_by_values(LICENSE_ID, bm, true)?;
        for (id, sub) in ids {
            if !crate::license::requires_attribution(&id) {
                continue;
            }
            let (sources, rest) = seg.split_by_values("source", &sub, true)?;
            for (src, s) in sources.into_iter().chain([("(none)".to_string(), rest)]) {
                if s.is_empty() {
                    continue;
                }
                let e = acc.entry((src, id.clone())).or_default();
                e.0 += s.len();
                let (attrs, missing) = seg.split_by_values(ATTRIBUTION_FIELD, &s, false)?;
                for (a, abm) in attrs {
                    *e.1.entry(a).or_default() += abm.len();
                }
                e.2 += missing.len();
            }
        }
    }
    let mut out: Vec<Attribution> = acc
        .into_iter()
        .map(|((source, license_id), (docs, attrs, missing))| {
            let mut a: Vec<(String, u64)> = attrs.into_iter().collect();
            a.sort_by(|x, y| y.1.cmp(&x.1).then_with(|| x.0.cmp(&y.0)));
            Attribution {
                source,
                license_id,
                docs,
                attributions: a.into_iter().take(50).map(|x| x.0).collect(),
                missing,
            }
        })
        .collect();
    out.sort_by(|a, b| b.docs.cmp(&a.docs).then_with(|| a.source.cmp(&b.source)));
    Ok(out)
}

/// Every delete after `since`, from the summary it recorded; `dropped`:
/// the generations whose documents `compact` has dropped.
fn withdrawal_log(
    corpus: &Corpus,
    since: Option<u64>,
    dropped: &std::collections::BTreeSet<u64>,
) -> Result<Vec<WithdrawalLogEntry>> {
    let summaries = corpus.catalog().withdrawn_summaries()?;
    let rows = |v: &[(String, u64, u64)]| {
        let counts = v.iter().map(|(value, docs, bytes)| {
            let c = Counts {
                docs: *docs,
                bytes: *bytes,
                tokens: None,
            };
            (value.clone(), c)
        });
        breakdown_rows(counts, false)
    };
    Ok(corpus
        .catalog()
        .generations()?
        .into_iter()
        .filter(|g| g.op == "delete" && since.is_none_or(|s| g.generation > s))
        .filter_map(|g| {
            let sum = summaries.get(&g.generation)?;
            Some(WithdrawalLogEntry {
                generation: g.generation,
                unix: g.unix,
                query: g.detail.clone(),
                withdrawn: Counts {
                    docs: sum.docs,
                    bytes: sum.bytes,
                    tokens: None,
                },
                by_license: rows(&sum.by_license),
                by_source: rows(&sum.by_source),
                compacted: dropped.contains(&g.generation),
            })
        })
        .collect())
}

/// What deletions after `since` withdrew from the selection.
/// `ws`: the deletes after `since` whose documents are still in the files.
fn withdrawal(
    scope: &Scope<'_>,
    counts: &[Arc<Vec<u32>>],
    after: Acc,
    ws: &[crate::catalog::Withdrawal],
    since: Option<u64>,
) -> Result<Option<Withdrawal>> {
    let corpus = scope.corpus;
    if ws.is_empty() {
        return Ok(None);
    }
    let from = since.unwrap_or_else(|| ws[0].generation - 1);
    let mut removed = Acc::default();
    let mut by_license: BTreeMap<String, Acc> = BTreeMap::new();
    let mut by_source: BTreeMap<String, Acc> = BTreeMap::new();
    for w in ws {
        for (i, ls) in corpus.segments().iter().enumerate() {
            let Some(t) = w.tombstoned.get(&ls.entry.id) else {
                continue;
            };
            // The selection's plan over the withdrawn documents.
            let hit = plan::eval(&scope.plan, &ls.segment, t, t)?;
            if hit.is_empty() {
                continue;
            }
            let bytes = ls.segment.numeric(crate::format::BYTES_FIELD)?;
            add(&mut removed, &hit, bytes.as_ref(), &counts[i]);
            for (field, map) in [(LICENSE_ID, &mut by_license), ("source", &mut by_source)] {
                let (groups, rest) = ls.segment.split_by_values(field, &hit, true)?;
                for (v, sub) in groups.into_iter().chain([("(none)".to_string(), rest)]) {
                    if !sub.is_empty() {
                        add(map.entry(v).or_default(), &sub, bytes.as_ref(), &counts[i]);
                    }
                }
            }
        }
    }
    let parts = parts_of(corpus, &scope.plan)?;
    let diff = |field: &str, removed: BTreeMap<String, Acc>| -> Result<Vec<DiffRow>> {
        let now = group_by(corpus, &parts, field, counts)?;
        let mut rows: Vec<DiffRow> = removed
            .into_iter()
            .map(|(v, r)| {
                let a = now.get(&v).copied().unwrap_or_default();
                DiffRow {
                    value: v,
                    before: Acc {
                        docs: a.docs + r.docs,
                        bytes: a.bytes + r.bytes,
                        tokens: a.tokens + r.tokens,
                    }
                    .counts(),
                    after: a.counts(),
                }
            })
            .collect();
        rows.sort_by(|a, b| {
            (b.before.docs - b.after.docs)
                .cmp(&(a.before.docs - a.after.docs))
                .then_with(|| a.value.cmp(&b.value))
        });
        Ok(rows)
    };
    Ok(Some(Withdrawal {
        from_generation: from,
        to_generation: corpus.generation(),
        before: Acc {
            docs: after.docs + removed.docs,
            bytes: after.bytes + removed.bytes,
            tokens: after.tokens + removed.tokens,
        }
        .counts(),
        after: after.counts(),
        by_license: diff(LICENSE_ID, by_license)?,
        by_source: diff("source", by_source)?,
    }))
}

/// Thresholds users commonly filter on: (signal, rule, removes when, source).
type Rule = (&'static str, &'static str, fn(f64) -> bool, &'static str);

const RULES: &[Rule] = &[
    ("rps_doc_word_count", "< 50", |x| x < 50.0, "Gopher"),
    (
        "rps_doc_word_count",
        "> 100000",
        |x| x > 100_000.0,
        "Gopher",
    ),
    ("rps_doc_mean_word_length", "< 3", |x| x < 3.0, "Gopher"),
    ("rps_doc_mean_word_length", "> 10", |x| x > 10.0, "Gopher"),
    (
        "rps_doc_symbol_to_word_ratio",
        "> 0.1",
        |x| x > 0.1,
        "Gopher",
    ),
    (
        "rps_doc_frac_lines_end_with_ellipsis",
        "> 0.3",
        |x| x > 0.3,
        "Gopher",
    ),
    ("rps_doc_frac_no_alph_words", "> 0.2", |x| x > 0.2, "Gopher"),
    (
        "rps_doc_frac_chars_top_2gram",
        "> 0.2",
        |x| x > 0.2,
        "Gopher",
    ),
    (
        "rps_doc_frac_chars_top_3gram",
        "> 0.18",
        |x| x > 0.18,
        "Gopher",
    ),
    (
        "rps_doc_frac_chars_top_4gram",
        "> 0.16",
        |x| x > 0.16,
        "Gopher",
    ),
    (
        "rps_doc_frac_chars_dupe_5grams",
        "> 0.15",
        |x| x > 0.15,
        "Gopher",
    ),
    (
        "rps_doc_frac_chars_dupe_10grams",
        "> 0.1",
        |x| x > 0.1,
        "Gopher",
    ),
    ("rps_doc_lorem_ipsum", "> 0", |x| x > 0.0, "C4"),
    ("rps_doc_curly_bracket", "> 0", |x| x > 0.0, "C4"),
    ("lang_score", "< 0.65", |x| x < 0.65, "FineWeb"),
    ("code_score", "> 0.5", |x| x > 0.5, "corpusql"),
    ("ocr_noise", "> 0.5", |x| x > 0.5, "corpusql"),
    ("ocr_dict_ratio", "< 0.7", |x| x < 0.7, "corpusql"),
    ("pii_email", "> 0", |x| x > 0.0, "any PII"),
    ("pii_phone", "> 0", |x| x > 0.0, "any PII"),
    ("pii_ip", "> 0", |x| x > 0.0, "any PII"),
    ("pii_nir", "> 0", |x| x > 0.0, "any PII"),
    ("pii_iban", "> 0", |x| x > 0.0, "any PII"),
    ("pii_card", "> 0", |x| x > 0.0, "any PII"),
    ("pii_siret", "> 0", |x| x > 0.0, "any PII"),
    ("toxicity_matches", "> 0", |x| x > 0.0, "word lists"),
    ("is_dup", "= true", |x| x > 0.5, "exact dedup"),
    ("near_dup_rep", "= false", |x| x < 0.5, "near dedup"),
];

/// Values of signal `name` over `parts` (bools as 0/1), optionally within one source.
fn signal_values(
    corpus: &Corpus,
    parts: &[RoaringBitmap],
    name: &str,
    kind: FieldKind,
) -> Result<(Vec<f64>, u64)> {
    let mut vals = Vec::new();
    let mut missing = 0u64;
    for (i, ls) in corpus.segments().iter().enumerate() {
        let bm = &parts[i];
        if bm.is_empty() {
            continue;
        }
        let seg = &ls.segment;
        match kind {
            FieldKind::Number => {
                let present = seg.presence(name)? & bm;
                missing += bm.len() - present.len();
                if let Some(col) = seg.numeric(name)? {
                    vals.extend(present.iter().map(|o| col[o as usize]));
                }
            }
            FieldKind::Bool => {
                let t = seg.postings(name, "true")? & bm;
                let f = seg.postings(name, "false")? & bm;
                missing += bm.len() - t.len() - f.len();
                vals.extend(std::iter::repeat_n(1.0, t.len() as usize));
                vals.extend(std::iter::repeat_n(0.0, f.len() as usize));
            }
            _ => {}
        }
    }
    Ok((vals, missing))
}

/// The signal datasheet of a selection: per signal (all sources, then the
/// largest sources) the distribution and threshold impacts.
pub fn signal_datasheet(scope: &Scope<'_>, max_sources: usize) -> Result<Datasheet> {
    let corpus = scope.corpus;
    let parts = parts_of(corpus, &scope.plan)?;
    let docs: u64 = parts.iter().map(|p| p.len()).sum();
    let bytes: u64 = {
        let mut b = 0;
        for (i, ls) in corpus.segments().iter().enumerate() {
            if let Some(col) = ls.segment.numeric(crate::format::BYTES_FIELD)? {
                b += parts[i].iter().map(|o| col[o as usize] as u64).sum::<u64>();
            }
        }
        b
    };
    // Scopes: everything, then each of the largest sources.
    let mut scopes: Vec<(Option<String>, Vec<RoaringBitmap>)> = vec![(None, parts.clone())];
    if corpus.schema().resolve("source").is_some() {
        let mut per: BTreeMap<String, Vec<RoaringBitmap>> = BTreeMap::new();
        let n = corpus.segments().len();
        for (i, ls) in corpus.segments().iter().enumerate() {
            let (groups, _) = ls.segment.split_by_values("source", &parts[i], true)?;
            for (v, sub) in groups {
                per.entry(v)
                    .or_insert_with(|| vec![RoaringBitmap::new(); n])[i] = sub;
            }
        }
        let mut srcs: Vec<(String, Vec<RoaringBitmap>)> = per.into_iter().collect();
        srcs.sort_by_key(|(_, p)| std::cmp::Reverse(p.iter().map(|b| b.len()).sum::<u64>()));
        for (s, p) in srcs.into_iter().take(max_sources) {
            scopes.push((Some(s), p));
        }
    }
    let mut signals = Vec::new();
    for (name, info) in &corpus.state().signals {
        if !matches!(info.kind, FieldKind::Number | FieldKind::Bool) {
            continue;
        }
        for (source, p) in &scopes {
            let (mut vals, missing) = signal_values(corpus, p, name, info.kind)?;
            let n = vals.len() as u64;
            let thresholds = RULES
                .iter()
                .filter(|r| r.0 == name)
                .map(|(_, rule, f, src)| {
                    let removed = vals.iter().filter(|&&x| f(x)).count() as u64;
                    ThresholdImpact {
                        rule: format!("{name} {rule}"),
                        source: src.to_string(),
                        removed_docs: removed,
                        removed_share: if n > 0 {
                            removed as f64 / n as f64
                        } else {
                            0.0
                        },
                    }
                })
                .collect();
            let (quantiles, histogram) = super::summarize(&mut vals, 20);
            signals.push(SignalSummary {
                name: name.clone(),
                version: info.version.clone(),
                source: source.clone(),
                tagged: n,
                missing,
                quantiles,
                histogram,
                thresholds,
            });
        }
    }
    let mut notes = Vec::new();
    if corpus.state().signals.is_empty() {
        notes.push("no signals yet: run `corpusql tag` first".to_string());
    }
    Ok(Datasheet {
        title: format!("Signals: {}", scope.label),
        generated_unix: crate::catalog::unix_now(),
        corpus: corpus.label(),
        generation: corpus.generation(),
        selection: scope.label.clone(),
        tokenizer: scope.tokenizer.id(),
        totals: Counts {
            docs,
            bytes,
            tokens: None,
        },
        breakdowns: Vec::new(),
        policy: None,
        attributions: Vec::new(),
        ingest_log: Vec::new(),
        withdrawal: None,
        withdrawal_log: Vec::new(),
        signals,
        notes,
        training: None,
    })
}
