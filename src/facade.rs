//! The library's front door: every operation a user of corpusql performs is
//! a method of [`Corpus`], and the methods that let documents leave the
//! corpus — export, stream, plan, report, trace, tokenizer training — apply
//! the corpus policy (`policy.toml`) themselves. Overriding it is an
//! explicit option, and every such method says in what it returns what the
//! policy held back ([`PolicyOutcome`]). Writers (ingest, delete, compact,
//! tag, set_policy) take the corpus write lock inside the library and
//! reload the snapshot after their commit.
//!
//! The command line is a thin layer over these methods; nothing here
//! prints, reads the environment or exits.

use std::io::Write;
use std::path::Path;

use serde::Serialize;

use crate::corpus::{Corpus, WriteLock};
use crate::error::{Error, Result};
use crate::export::Projection;
use crate::ingest::{IngestOptions, IngestReport, Input};
use crate::maintain::{CompactReport, VerifyReport};
use crate::policy::{Policy, PolicyOutcome, POLICY_FILE};
use crate::report::datasheet::{license_datasheet, Scope};
use crate::report::Datasheet;
use crate::select::Selection;
use crate::stats::Stats;
use crate::tag::{TagOptions, TagReport};
use crate::tokenize::Tokenizer;
use crate::train::mixture::Plan as MixturePlan;
use crate::train::{Mixture, Stream, StreamOptions, TraceHit};

/// What [`Corpus::export`] writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportOptions {
    /// The fields of each record (default: the whole record as ingested).
    pub projection: Projection,
    /// Replace e-mails, phone numbers, IPs, NIR, IBAN, card and SIRET
    /// numbers in the text with placeholders.
    pub redact_pii: bool,
    /// At most this many documents (counted after the policy).
    pub limit: Option<u64>,
    /// Export documents the corpus policy holds back (reported in
    /// [`ExportReport::policy`]).
    pub override_policy: bool,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            projection: Projection::All,
            redact_pii: false,
            limit: None,
            override_policy: false,
        }
    }
}

/// What [`Corpus::export`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExportReport {
    /// Documents written.
    pub documents: u64,
    /// What the policy held back (or let through when overridden).
    pub policy: PolicyOutcome,
}

/// What [`Corpus::train_tokenizer`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenizerReport {
    /// Documents trained on.
    pub documents: u64,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// What the policy held back (or let through when overridden).
    pub policy: PolicyOutcome,
}

impl Corpus {
    /// Runs `change` on the corpus directory and moves this handle to the
    /// generation it committed. For a corpus opened from a URI, the change
    /// runs on a working copy and is committed as the URI's next version
    /// ([`crate::remote::write`]), then the mirror is refreshed.
    fn change<T>(&mut self, what: &str, change: impl FnMut(&Path) -> Result<T>) -> Result<T> {
        match self.origin() {
            Some(uri) => {
                let cache = self.dir().parent().unwrap_or(self.dir()).to_path_buf();
                let (out, _) = crate::remote::write_in(&uri, &cache, what, change)?;
                let m = crate::remote::mirror_in(&uri, &cache)?;
                *self = Corpus::open(&m.dir)?;
                Ok(out)
            }
            None => {
                let mut change = change;
                let out = change(self.dir())?;
                self.reload()?;
                Ok(out)
            }
        }
    }

    /// Documents matching `query` (one integer; no text is read).
    pub fn count(&self, query: &str) -> Result<u64> {
        Ok(self.query(query)?.count())
    }

    /// Documents and bytes of a selection, grouped by the values of the
    /// `by` fields.
    pub fn stats(&self, sel: &Selection, by: &[String]) -> Result<Stats> {
        crate::stats::stats(self, sel, by)
    }

    /// Ingests `inputs` as one new generation (the write lock is taken for
    /// the run), then moves this handle to it.
    pub fn ingest(&mut self, inputs: Vec<Input>, opts: &IngestOptions) -> Result<IngestReport> {
        let replay = crate::ingest::input::Replayable::take(inputs)?;
        self.change("ingest", |dir| {
            crate::ingest::ingest(dir, replay.inputs(), opts)
        })
    }

    /// Tombstones every live document matching `query`; returns how many,
    /// and moves this handle to the new generation.
    pub fn delete(&mut self, query: &str) -> Result<u64> {
        self.change("delete", |dir| Ok(crate::maintain::delete(dir, query)?.0))
    }

    /// Rewrites the live documents into new segments of about
    /// `segment_bytes` each (deleted documents are dropped), then moves this
    /// handle to the new generation.
    pub fn compact(&mut self, segment_bytes: usize) -> Result<CompactReport> {
        if segment_bytes == 0 {
            return Err(Error::Invalid("the segment size must be positive".into()));
        }
        self.change("compact", |dir| {
            crate::maintain::compact(dir, segment_bytes)
        })
    }

    /// Checks the catalog and every checksum of every segment and sidecar.
    pub fn verify(&self) -> Result<VerifyReport> {
        crate::maintain::verify(self.dir())
    }

    /// [`Corpus::verify`] on a corpus directory that may not open (a
    /// damaged segment is reported in the [`VerifyReport`], not refused).
    pub fn verify_dir(dir: impl AsRef<Path>) -> Result<VerifyReport> {
        crate::maintain::verify(dir.as_ref())
    }

    /// Runs taggers (language, quality, OCR, PII, toxicity, dedup) and
    /// commits their signals, then moves this handle to the new generation.
    pub fn tag(&mut self, opts: &TagOptions) -> Result<TagReport> {
        self.change("tag", |dir| crate::tag::tag(dir, opts))
    }

    /// The corpus policy (allow-all when none is set).
    pub fn policy(&self) -> Result<Policy> {
        Policy::load(self.dir())
    }

    /// Sets the corpus policy under the write lock. A policy that allows
    /// every class and has no note removes `policy.toml`.
    pub fn set_policy(&self, policy: &Policy) -> Result<()> {
        policy.check().map_err(Error::Invalid)?;
        if let Some(uri) = self.origin() {
            let cache = self.dir().parent().unwrap_or(self.dir());
            crate::remote::write_in(&uri, cache, "policy", |dir| {
                Corpus::open(dir)?.set_policy(policy)
            })?;
            return Ok(());
        }
        let _lock = WriteLock::acquire(self.dir())?;
        if policy.allow.is_none() && policy.note.is_none() {
            let path = self.dir().join(POLICY_FILE);
            return match crate::storage::remove_file(&path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(Error::io(&path, e)),
            };
        }
        policy.save(self.dir())
    }

    /// Splits `sel` by the corpus policy: what may leave the corpus (all of
    /// `sel` when `override_policy`), and what the policy holds back.
    pub fn under_policy(
        &self,
        sel: &Selection,
        override_policy: bool,
    ) -> Result<(Selection, PolicyOutcome)> {
        let policy = self.policy()?;
        let (kept, held_back) = crate::policy::apply(self, sel, &policy)?;
        let outcome = PolicyOutcome {
            set: policy.is_set(),
            overridden: override_policy && policy.is_set(),
            held_back,
        };
        Ok((if override_policy { sel.clone() } else { kept }, outcome))
    }

    /// Writes the documents of `sel` the policy allows (all of them with
    /// `override_policy`) as JSONL to `out`. Held-back documents are
    /// counted in the report, never written.
    pub fn export(
        &self,
        sel: &Selection,
        opts: &ExportOptions,
        out: &mut dyn Write,
    ) -> Result<ExportReport> {
        opts.projection.check(self.schema())?;
        let (mut sel, policy) = self.under_policy(sel, opts.override_policy)?;
        if let Some(n) = opts.limit {
            sel.truncate(n);
        }
        let documents =
            crate::export::write_jsonl_with(&sel, &opts.projection, opts.redact_pii, out)?;
        Ok(ExportReport { documents, policy })
    }

    /// Trains a byte-level BPE tokenizer of `vocab_size` ids on the
    /// documents of `sel` the policy allows, and writes it to `out` as a
    /// `tokenizer.json`.
    pub fn train_tokenizer(
        &self,
        sel: &Selection,
        vocab_size: usize,
        out: &Path,
        override_policy: bool,
    ) -> Result<TokenizerReport> {
        if vocab_size < 257 {
            return Err(Error::Invalid(format!(
                "a vocabulary of {vocab_size} ids cannot hold the 256 bytes and the end-of-text token"
            )));
        }
        let (sel, policy) = self.under_policy(sel, override_policy)?;
        crate::tokenize::train_bpe(&sel, vocab_size, out)?;
        Ok(TokenizerReport {
            documents: sel.count(),
            vocab_size,
            policy,
        })
    }
}

/// Where in a stream [`Corpus::trace`] looks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TraceOptions {
    /// Global sequence index (as counted by a stream of world 1).
    pub sequence: u64,
    /// Token offset inside the sequence (`None`: every document in it).
    pub offset: Option<u64>,
    /// Trace the stream that included what the corpus policy holds back
    /// (a stream opened with [`StreamOptions::override_policy`]).
    pub override_policy: bool,
    /// The weight changes of the stream traced (its state's
    /// `weight_changes`).
    pub weight_changes: Vec<crate::train::WeightChange>,
}

/// What [`Corpus::trace`] found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trace {
    /// The documents behind the position, in stream order.
    pub hits: Vec<TraceHit>,
    /// What the policy held back from the stream traced.
    pub policy: PolicyOutcome,
}

/// What a datasheet ([`Corpus::report`]) describes.
#[derive(Debug, Clone, Copy)]
pub enum ReportOf<'a> {
    /// The documents matching a query.
    Query(&'a str),
    /// The union of a mixture's components.
    Mixture(&'a Mixture),
}

/// How [`Corpus::report`] counts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReportOptions {
    /// How the datasheet names its selection (default: the query, or
    /// `mixture`).
    pub label: Option<String>,
    /// Tokenizer for token counts (default: the mixture's, or `bytes`).
    pub tokenizer: Option<String>,
    /// List what deletions after this generation withdrew (default: every
    /// deletion on record).
    pub since_generation: Option<u64>,
    /// Count what the corpus policy holds back in the totals too (reported
    /// in the datasheet's policy section).
    pub override_policy: bool,
    /// For a mixture: the weight changes of the stream described (a
    /// state's `weight_changes`).
    pub weight_changes: Vec<crate::train::WeightChange>,
}

impl Corpus {
    /// Measures a mixture on this snapshot under the corpus policy: tokens,
    /// documents and epochs per component, and what the policy held back
    /// ([`MixturePlan::policy`]). Refuses plans that break a `max_epochs`.
    pub fn plan(&self, mixture: &Mixture) -> Result<MixturePlan> {
        self.plan_with(mixture, false)
    }

    /// [`Corpus::plan`], including what the policy holds back when
    /// `override_policy` (reported as overridden).
    pub fn plan_with(&self, mixture: &Mixture, override_policy: bool) -> Result<MixturePlan> {
        let m = mixture.clone().under_policy(self.dir(), override_policy)?;
        Ok(crate::train::mixture::plan(self, &m)?.0)
    }

    /// Opens this rank's stream of a mixture: packed, shuffled, resumable
    /// batches of token ids. The corpus policy holds back its classes
    /// unless `opts.override_policy`; [`Stream::policy`] says what it held
    /// back. `opts.resume` continues from a saved [`Stream::state`].
    pub fn stream(&self, mixture: &Mixture, opts: StreamOptions) -> Result<Stream> {
        Stream::open(self, mixture, opts)
    }

    /// The documents, sources and licenses behind a position of a
    /// mixture's stream (replayed from token counts; one block read per
    /// document named).
    pub fn trace(&self, mixture: &Mixture, opts: &TraceOptions) -> Result<Trace> {
        let m = mixture
            .clone()
            .under_policy(self.dir(), opts.override_policy)?;
        let (hits, policy) = crate::train::trace::trace_with_policy(
            self,
            &m,
            opts.sequence,
            opts.offset,
            &opts.weight_changes,
        )?;
        Ok(Trace { hits, policy })
    }

    /// The license datasheet of a query's or a mixture's documents: counts
    /// by license, class, source and language, the policy and what it
    /// holds back (left out of the counts unless `opts.override_policy`),
    /// attribution lists, the ingest log and withdrawals. Render it with
    /// [`crate::report::to_markdown`], [`crate::report::to_json`] or
    /// [`crate::report::to_html`].
    pub fn report(&self, of: ReportOf<'_>, opts: &ReportOptions) -> Result<Datasheet> {
        let mut training = None;
        let (plan, label, tokenizer) = match of {
            ReportOf::Query(q) => (
                crate::plan::plan(q, self.schema())?,
                q.to_string(),
                "bytes".to_string(),
            ),
            ReportOf::Mixture(m) => {
                let plans = m
                    .components
                    .iter()
                    .map(|c| crate::plan::plan(&c.query, self.schema()))
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                // The training set the stream emits: its documents, and
                // the tokens it takes from each.
                let mut m = m.clone().under_policy(self.dir(), opts.override_policy)?;
                if let Some(t) = &opts.tokenizer {
                    m.tokenizer = t.clone();
                }
                training = Some(crate::train::training::training_set(
                    self,
                    &m,
                    &opts.weight_changes,
                )?);
                (
                    crate::plan::Plan::Or(plans),
                    "mixture".to_string(),
                    m.tokenizer.clone(),
                )
            }
        };
        let tokenizer = Tokenizer::load(opts.tokenizer.as_deref().unwrap_or(&tokenizer))?;
        let scope = Scope {
            corpus: self,
            plan,
            label: opts.label.clone().unwrap_or(label),
            tokenizer,
            override_policy: opts.override_policy,
            training,
        };
        license_datasheet(&scope, opts.since_generation)
    }
}

/// One field of [`Corpus::describe_schema`] (a row of `corpusql schema`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldSummary {
    /// The field name.
    pub name: String,
    /// `key`, `text`, `number (built-in)`, or the field kind's name.
    pub kind: String,
    /// Live documents holding the field.
    pub docs: u64,
    /// Distinct values (facets and booleans).
    pub distinct: Option<u64>,
    /// The most frequent values with their document counts.
    pub top_values: Vec<(String, u64)>,
    /// For signal columns: the tagger that wrote it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tagger: Option<String>,
    /// For signal columns: the tagger's version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal_version: Option<String>,
    /// For derived facets: the field they derive from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub derived_from: Option<String>,
}

/// What [`Corpus::describe_schema`] returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SchemaSummary {
    /// The generation described.
    pub generation: u64,
    /// Live documents.
    pub documents: u64,
    /// The key, the text, `bytes`, then every field in schema order.
    pub fields: Vec<FieldSummary>,
}

impl Corpus {
    /// Every field with its kind, the live documents holding it, its
    /// distinct values and up to `values` most frequent ones (what
    /// `corpusql schema` shows).
    pub fn describe_schema(&self, values: usize) -> Result<SchemaSummary> {
        let schema = self.schema().clone();
        let n = self.len();
        let row = |name: &str, kind: &str, distinct: Option<u64>| FieldSummary {
            name: name.into(),
            kind: kind.into(),
            docs: n,
            distinct,
            top_values: vec![],
            tagger: None,
            signal_version: None,
            derived_from: None,
        };
        let mut fields = vec![
            row(&schema.key_field, "key", Some(n)),
            row(&schema.text_field, "text", None),
            row("bytes", "number (built-in)", None),
        ];
        for (name, kind) in &schema.fields {
            let mut docs = 0u64;
            let mut counts: std::collections::BTreeMap<String, u64> = Default::default();
            for s in self.segments() {
                docs += (s.segment.presence(name)? & &s.live).len();
                for (v, id) in s.segment.terms_with_prefix(name, "") {
                    let k = (s.segment.postings_of(id)? & &s.live).len();
                    if k > 0 {
                        *counts.entry(v).or_default() += k;
                    }
                }
            }
            let distinct = counts.len() as u64;
            let mut top: Vec<(String, u64)> = counts.into_iter().collect();
            top.sort_by(|x, y| y.1.cmp(&x.1).then_with(|| x.0.cmp(&y.0)));
            top.truncate(values);
            let facet = matches!(
                kind,
                crate::schema::FieldKind::Facet | crate::schema::FieldKind::Bool
            );
            let signal = self.state().signals.get(name);
            fields.push(FieldSummary {
                name: name.clone(),
                kind: kind.name().into(),
                docs,
                distinct: facet.then_some(distinct),
                top_values: top,
                tagger: signal.map(|i| i.tagger.clone()),
                signal_version: signal.map(|i| i.version.clone()),
                derived_from: (name == "license_id" || name == "license_class")
                    .then(|| self.state().license_field().to_string()),
            });
        }
        Ok(SchemaSummary {
            generation: self.generation(),
            documents: n,
            fields,
        })
    }
}
