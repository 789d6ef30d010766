//! Training mixtures: components (a query and a weight each), a budget in
//! tokens, a seed, a tokenizer and a sequence length — read from TOML or
//! given inline — and the plan that measures them on a corpus snapshot:
//! documents, tokens available and targeted, epochs, and breakdowns by
//! license, source and language. Weights are shares of tokens; a mixture
//! may change them over training in `[[phase]]`s, each with its own budget
//! and weights, and the trainer may change them while it trains
//! ([`WeightChange`]). [`Mixture::stretches`] turns both into the stretches
//! of global sequences the schedule blends with fixed shares.

use std::collections::BTreeMap;

use roaring::RoaringBitmap;
use serde::{Deserialize, Serialize};

use crate::corpus::Corpus;
use crate::error::{Error, Result};
use crate::policy::PolicyOutcome;
use crate::select::Selection;
use crate::tokenize::{selected_counts, Tokenizer};

/// One component of a mixture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Component {
    /// Name, unique in the mixture.
    pub name: String,
    /// The query selecting its documents.
    pub query: String,
    /// Share of the budget's tokens (weights are normalized to sum to 1).
    /// Required without phases; with `[[phase]]`s each phase gives the
    /// weights and this one must be left out (0).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub weight: f64,
    /// Refuse plans that would repeat the component more often than this.
    #[serde(default)]
    pub max_epochs: Option<f64>,
}

/// A mixture as written in a mixture file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mixture {
    /// Seed of the order.
    #[serde(default)]
    pub seed: u64,
    /// Budget in tokens of the tokenizer; `None` streams every document once.
    #[serde(default)]
    pub tokens: Option<u64>,
    /// Tokens per packed sequence.
    #[serde(default = "default_seq_len")]
    pub seq_len: usize,
    /// `bytes` or a path to a `tokenizer.json`.
    #[serde(default = "default_tokenizer")]
    pub tokenizer: String,
    /// Documents shuffled together: blocks per shuffle window.
    #[serde(default = "default_window")]
    pub shuffle_window_blocks: usize,
    /// Sequences of one component shuffled together (Megatron's shuffle
    /// index, bounded): a long document spreads over this many sequences.
    #[serde(default = "default_sequence_window")]
    pub shuffle_window_sequences: u64,
    /// The components.
    #[serde(rename = "component")]
    pub components: Vec<Component>,
    /// Phases of training, in order, each with its budget and weights
    /// (empty: one phase, the top-level budget and component weights).
    #[serde(rename = "phase", default, skip_serializing_if = "Vec::is_empty")]
    pub phases: Vec<Phase>,
    /// License classes the corpus policy allows (set by commands from the
    /// corpus's `policy.toml`, never read from a mixture file); `None`
    /// allows every class.
    #[serde(skip_deserializing, skip_serializing_if = "Option::is_none")]
    pub(crate) policy_allow: Option<Vec<String>>,
    /// Whether `policy_allow` was set from a corpus policy (by
    /// [`Mixture::under_policy`]). An unbound mixture is bound to its
    /// corpus's policy, not overridden, wherever it is planned or streamed.
    #[serde(skip)]
    pub(crate) policy_bound: bool,
    /// Stream the text with personal data replaced by placeholders
    /// (`--redact-pii`; never read from a mixture file).
    #[serde(skip_deserializing, skip_serializing_if = "std::ops::Not::not")]
    pub redact_pii: bool,
}

fn default_seq_len() -> usize {
    2048
}
fn default_tokenizer() -> String {
    "bytes".into()
}
fn default_window() -> usize {
    16
}
fn default_sequence_window() -> u64 {
    1024
}
fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

/// One phase of training: a budget and the components' weights during it
/// (curriculum, or the annealing phase at the end of a pretraining run).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    /// Name, unique in the mixture (default `phase-N`, from 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Tokens of this phase (whole sequences of it are streamed).
    pub tokens: u64,
    /// Weight per component name; a component left out gets none.
    pub weights: BTreeMap<String, f64>,
}

/// A change of the weights decided while training (DoReMi / ADO style
/// online mixing): from global sequence `from_sequence` to the end of the
/// phase it falls in, the components get these weights (left out: none).
/// Recorded in the stream state, so a resume replays it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightChange {
    /// First global sequence with the new weights.
    pub from_sequence: u64,
    /// Weight per component name.
    pub weights: BTreeMap<String, f64>,
}

/// A stretch of global sequences blended with fixed shares: a phase, or the
/// part of one after a [`WeightChange`].
#[derive(Debug, Clone, PartialEq)]
pub struct Stretch {
    /// First global sequence.
    pub start: u64,
    /// One past the last.
    pub end: u64,
    /// Normalized share of each component (0 for none).
    pub shares: Vec<f64>,
    /// The phase it belongs to.
    pub phase: usize,
}

impl Mixture {
    /// Reads, parses and checks a mixture file.
    pub fn from_file(path: impl AsRef<std::path::Path>) -> Result<Mixture> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Mixture::from_toml(&text, &path.display().to_string())
    }

    /// Parses and checks a mixture's TOML text (errors name it `mixture`).
    pub fn parse(text: &str) -> Result<Mixture> {
        Mixture::from_toml(text, "mixture")
    }

    /// Parses and checks a mixture file's text; errors name it `origin`.
    pub fn from_toml(text: &str, origin: &str) -> Result<Mixture> {
        let m: Mixture =
            toml::from_str(text).map_err(|e| Error::Invalid(format!("{origin}: {e}")))?;
        m.check(origin)?;
        Ok(m)
    }

    /// A one-component mixture streaming every match of `query` once.
    pub fn inline(query: &str, tokenizer: &str, seq_len: usize, seed: u64) -> Mixture {
        Mixture {
            seed,
            tokens: None,
            seq_len,
            tokenizer: tokenizer.into(),
            shuffle_window_blocks: default_window(),
            shuffle_window_sequences: default_sequence_window(),
            components: vec![Component {
                name: "query".into(),
                query: query.into(),
                weight: 1.0,
                max_epochs: None,
            }],
            phases: Vec::new(),
            policy_allow: None,
            policy_bound: false,
            redact_pii: false,
        }
    }

    /// Applies the corpus policy of `dir` (unless `override_policy`): the
    /// components then select only documents of allowed license classes.
    pub fn under_policy(mut self, dir: &std::path::Path, override_policy: bool) -> Result<Mixture> {
        let p = crate::policy::Policy::load(dir)?;
        self.policy_bound = true;
        self.policy_allow = if override_policy || !p.is_set() {
            None
        } else {
            Some(p.allowed())
        };
        Ok(self)
    }

    /// This mixture bound to `corpus`'s policy: itself when already bound
    /// (by [`Mixture::under_policy`], which may override the policy), else
    /// under the policy, not overridden. Every path that plans or streams a
    /// mixture goes through here, so none reads a held-back class unless the
    /// caller overrode the policy explicitly.
    pub(crate) fn bound(&self, corpus: &Corpus) -> Result<Mixture> {
        if self.policy_bound {
            return Ok(self.clone());
        }
        self.clone().under_policy(corpus.dir(), false)
    }

    /// Whether the stream of this mixture includes documents the corpus
    /// policy holds back (it was bound with `override_policy`).
    pub(crate) fn overrides_policy(&self) -> bool {
        self.policy_bound && self.policy_allow.is_none()
    }

    /// Checks names, weights and sizes.
    pub fn check(&self, origin: &str) -> Result<()> {
        let bad = |m: String| Err(Error::Invalid(format!("{origin}: {m}")));
        if self.components.is_empty() {
            return bad("a mixture needs at least one [[component]]".into());
        }
        if self.seq_len == 0 {
            return bad("seq_len must be positive".into());
        }
        if self.shuffle_window_blocks == 0 {
            return bad("shuffle_window_blocks must be positive".into());
        }
        if self.shuffle_window_sequences == 0 {
            return bad("shuffle_window_sequences must be positive".into());
        }
        for (i, c) in self.components.iter().enumerate() {
            if self.phases.is_empty() && !(c.weight.is_finite() && c.weight > 0.0) {
                return bad(format!(
                    "component `{}`: weight must be a positive number",
                    c.name
                ));
            }
            if !self.phases.is_empty() && c.weight != 0.0 {
                return bad(format!(
                    "component `{}`: with [[phase]]s the weights are given per phase; drop its `weight`",
                    c.name
                ));
            }
            if self.components[..i].iter().any(|o| o.name == c.name) {
                return bad(format!("component name `{}` appears twice", c.name));
            }
            if c.max_epochs.is_some_and(|e| e.is_nan() || e <= 0.0) {
                return bad(format!(
                    "component `{}`: max_epochs must be positive",
                    c.name
                ));
            }
        }
        if self.phases.is_empty() {
            return Ok(());
        }
        let total: u64 = self.phases.iter().map(|p| p.tokens).sum();
        if self.tokens.is_some_and(|t| t != total) {
            return bad(format!(
                "`tokens` ({}) is not the sum of the phases' tokens ({total}); leave it out or make them agree",
                self.tokens.unwrap_or(0)
            ));
        }
        for (i, p) in self.phases.iter().enumerate() {
            let name = self.phase_name(i);
            if self.phases[..i]
                .iter()
                .enumerate()
                .any(|(j, _)| self.phase_name(j) == name)
            {
                return bad(format!("phase name `{name}` appears twice"));
            }
            if (p.tokens as u128) < self.seq_len as u128 {
                return bad(format!(
                    "phase `{name}`: tokens ({}) must hold at least one sequence of {}",
                    p.tokens, self.seq_len
                ));
            }
            self.check_weights(&p.weights)
                .or_else(|e| bad(format!("phase `{name}`: {e}")))?;
        }
        Ok(())
    }

    /// Checks a table of weights by component name: known names, finite
    /// non-negative weights, at least one positive.
    pub fn check_weights(&self, w: &BTreeMap<String, f64>) -> std::result::Result<(), String> {
        for (name, x) in w {
            if !self.components.iter().any(|c| &c.name == name) {
                let names: Vec<&str> = self.components.iter().map(|c| c.name.as_str()).collect();
                return Err(format!(
                    "no component is named `{name}` (components: {})",
                    names.join(", ")
                ));
            }
            if !(x.is_finite() && *x >= 0.0) {
                return Err(format!("weight of `{name}` must be a non-negative number"));
            }
        }
        if !w.values().any(|&x| x > 0.0) {
            return Err("at least one weight must be positive".into());
        }
        Ok(())
    }

    /// The name of phase `i` (its own, or `phase-N` from 1).
    pub fn phase_name(&self, i: usize) -> String {
        self.phases
            .get(i)
            .and_then(|p| p.name.clone())
            .unwrap_or_else(|| format!("phase-{}", i + 1))
    }

    /// Normalized shares of a table of weights, in component order.
    fn shares_of(&self, w: &BTreeMap<String, f64>) -> Vec<f64> {
        let total: f64 = w.values().sum();
        self.components
            .iter()
            .map(|c| w.get(&c.name).copied().unwrap_or(0.0) / total)
            .collect()
    }

    /// The budget in tokens: the phases' sum, or the top-level `tokens`.
    pub fn budget(&self) -> Option<u64> {
        if self.phases.is_empty() {
            self.tokens
        } else {
            Some(self.phases.iter().map(|p| p.tokens).sum())
        }
    }

    /// The stretches of global sequences and their shares: one per phase
    /// (whole sequences of its budget), split where a weight change
    /// applies. Without a budget, one stretch of `once_sequences` (every
    /// document once). `changes` must be sorted by `from_sequence`; a change
    /// past the end changes nothing.
    pub fn stretches(&self, once_sequences: u64, changes: &[WeightChange]) -> Vec<Stretch> {
        let l = self.seq_len as u64;
        let mut out: Vec<Stretch> = if self.phases.is_empty() {
            let end = match self.tokens {
                Some(t) => t / l,
                None => once_sequences,
            };
            vec![Stretch {
                start: 0,
                end,
                shares: self.base_shares(),
                phase: 0,
            }]
        } else {
            let mut at = 0;
            self.phases
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let n = p.tokens / l;
                    at += n;
                    Stretch {
                        start: at - n,
                        end: at,
                        shares: self.shares_of(&p.weights),
                        phase: i,
                    }
                })
                .collect()
        };
        for ch in changes {
            let s = ch.from_sequence;
            let Some(i) = out.iter().position(|x| x.start <= s && s < x.end) else {
                continue;
            };
            if out[i].start < s {
                let mut tail = out[i].clone();
                tail.start = s;
                out[i].end = s;
                out.insert(i + 1, tail);
            }
            // From `s` to the end of its phase (later changes override).
            let (phase, shares) = (out[i].phase, self.shares_of(&ch.weights));
            for x in out.iter_mut().filter(|x| x.start >= s && x.phase == phase) {
                x.shares = shares.clone();
            }
        }
        out.retain(|x| x.end > x.start);
        out
    }

    /// Shares from the component weights (equal shares with phases, which
    /// give theirs per phase).
    fn base_shares(&self) -> Vec<f64> {
        let total: f64 = self.components.iter().map(|c| c.weight).sum();
        if total > 0.0 {
            self.components.iter().map(|c| c.weight / total).collect()
        } else {
            vec![1.0 / self.components.len() as f64; self.components.len()]
        }
    }

    /// Hash of the canonical form (what a stream state is bound to).
    pub fn hash(&self) -> String {
        let canon = serde_json::to_vec(self).unwrap_or_default();
        format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&canon))
    }

    /// Normalized token shares of the whole budget (over every phase,
    /// weighted by their budgets).
    pub fn shares(&self) -> Vec<f64> {
        if self.phases.is_empty() {
            return self.base_shares();
        }
        let total: f64 = self.phases.iter().map(|p| p.tokens as f64).sum();
        let mut out = vec![0.0; self.components.len()];
        for p in &self.phases {
            for (o, s) in out.iter_mut().zip(self.shares_of(&p.weights)) {
                *o += s * p.tokens as f64 / total;
            }
        }
        out
    }
}

/// Documents and tokens of one group of a breakdown.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Slice {
    /// The facet value (`(none)` when absent).
    pub value: String,
    /// Documents.
    pub docs: u64,
    /// Tokens available.
    pub tokens: u64,
}

/// The plan of one component.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComponentPlan {
    /// Name.
    pub name: String,
    /// Query.
    pub query: String,
    /// Normalized share of tokens.
    pub share: f64,
    /// Matching documents.
    pub docs: u64,
    /// Tokens of one pass over them (end-of-document included).
    pub tokens_available: u64,
    /// Tokens the budget asks of it.
    pub tokens_target: u64,
    /// target / available: above 1 repeats (upsampling), below 1 subsamples.
    pub epochs: f64,
    /// The cap, if any.
    pub max_epochs: Option<f64>,
    /// By license, source and language.
    pub by: BTreeMap<String, Vec<Slice>>,
}

/// A measured mixture.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// Corpus generation measured.
    pub generation: u64,
    /// Mixture hash.
    pub mixture_hash: String,
    /// Tokenizer id.
    pub tokenizer: String,
    /// Sequence length.
    pub seq_len: usize,
    /// Token budget.
    pub tokens: u64,
    /// Full sequences the budget gives.
    pub sequences: u64,
    /// Components.
    pub components: Vec<ComponentPlan>,
    /// The phases, in order (absent from JSON without `[[phase]]`s).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub phases: Vec<PhasePlan>,
    /// What the corpus policy holds back from the components (or lets
    /// through, when overridden); absent from JSON when no policy is set.
    #[serde(skip_serializing_if = "PolicyOutcome::is_unset")]
    pub policy: PolicyOutcome,
}

/// One phase of a plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhasePlan {
    /// Name (`phase-N` when the file gives none).
    pub name: String,
    /// Its budget in tokens.
    pub tokens: u64,
    /// Its whole sequences.
    pub sequences: u64,
    /// Its first global sequence.
    pub first_sequence: u64,
    /// Normalized share per component name (components with none left out).
    pub shares: BTreeMap<String, f64>,
}

/// A component's selection and per-document token counts, ready to stream.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// Selections, one per component.
    pub selections: Vec<Selection>,
    /// Token counts per segment of the snapshot (of the selected
    /// documents at least; others may read
    /// [`crate::tokenize::NOT_COUNTED`]).
    pub counts: Vec<std::sync::Arc<Vec<u32>>>,
    /// The tokenizer.
    pub tokenizer: Tokenizer,
    /// Ids computed while counting, for the stream to reuse.
    pub kept: std::sync::Arc<crate::tokenize::KeptIds>,
    /// Stored ids per segment (`tokenize --keep-ids`), for a tokenizer
    /// other than `bytes`: streams read them instead of tokenizing.
    pub ids: Vec<Option<std::sync::Arc<crate::token_ids::SegmentIds>>>,
}

/// Runs each component's query and loads token counts.
pub(crate) fn resolve(corpus: &Corpus, m: &Mixture) -> Result<Resolved> {
    // An inline mixture was never checked: a zero seq_len would divide by zero.
    m.check("mixture")?;
    let tokenizer = Tokenizer::load(&m.tokenizer)?.redacting(m.redact_pii);
    let policy = crate::policy::Policy {
        allow: m.policy_allow.clone(),
        note: None,
    };
    let selections = m
        .components
        .iter()
        .map(|c| {
            let sel = corpus.query(&c.query).map_err(|e| match e {
                // Still a query error (Python's QueryError), naming the component.
                Error::Query(mut q) => {
                    q.message = format!("component `{}`: {}", c.name, q.message);
                    Error::Query(q)
                }
                e => Error::Invalid(format!("component `{}`: {e}", c.name)),
            })?;
            Ok(crate::policy::apply(corpus, &sel, &policy)?.0)
        })
        .collect::<Result<Vec<_>>>()?;
    // Count only what the components select (each document once).
    let need: Vec<RoaringBitmap> = (0..corpus.segments().len())
        .map(|i| {
            let mut u = RoaringBitmap::new();
            for sel in &selections {
                if let Some((_, bm)) = sel.parts().get(i) {
                    u |= bm;
                }
            }
            u
        })
        .collect();
    let ids = match tokenizer {
        Tokenizer::Bytes => vec![None; corpus.segments().len()],
        _ => corpus
            .segments()
            .iter()
            .map(|s| {
                crate::token_ids::SegmentIds::open(
                    corpus.dir(),
                    &s.entry.file,
                    &s.segment,
                    &tokenizer.id(),
                )
                .map(|o| o.map(std::sync::Arc::new))
            })
            .collect::<Result<Vec<_>>>()?,
    };
    let (counts, kept) = selected_counts(corpus, &tokenizer, &need, &ids)?;
    Ok(Resolved {
        selections,
        counts,
        tokenizer,
        kept: std::sync::Arc::new(kept),
        ids,
    })
}

fn tokens_of(bm: &RoaringBitmap, counts: &[u32]) -> u64 {
    bm.iter().map(|o| counts[o as usize] as u64).sum()
}

/// Measures `m` on `corpus`; refuses plans that break a `max_epochs`.
pub fn plan(corpus: &Corpus, m: &Mixture) -> Result<(Plan, Resolved)> {
    let m = &m.bound(corpus)?;
    let r = resolve(corpus, m)?;
    let shares = m.shares();
    let available: Vec<u64> = r
        .selections
        .iter()
        .map(|s| {
            s.parts()
                .iter()
                .enumerate()
                .map(|(i, (_, bm))| tokens_of(bm, &r.counts[i]))
                .sum()
        })
        .collect();
    let l = m.seq_len as u64;
    let budget = m.budget().unwrap_or_else(|| available.iter().sum());
    let mut comps = Vec::new();
    for (i, c) in m.components.iter().enumerate() {
        let sel = &r.selections[i];
        let target = if m.budget().is_some() {
            (shares[i] * budget as f64).round() as u64
        } else {
            available[i]
        };
        let epochs = if available[i] > 0 {
            target as f64 / available[i] as f64
        } else {
            f64::INFINITY
        };
        let mut by = BTreeMap::new();
        for field in ["license", "source", "lang"] {
            if corpus.schema().fields.contains_key(field) {
                by.insert(field.to_string(), breakdown(sel, field, &r.counts)?);
            }
        }
        comps.push(ComponentPlan {
            name: c.name.clone(),
            query: c.query.clone(),
            share: shares[i],
            docs: sel.count(),
            tokens_available: available[i],
            tokens_target: target,
            epochs,
            max_epochs: c.max_epochs,
            by,
        });
    }
    for p in &comps {
        if p.docs == 0 && p.tokens_target > 0 {
            return Err(Error::Invalid(format!(
                "component `{}` matches no document (query `{}`); fix the query or drop the component",
                p.name, p.query
            )));
        }
        if let Some(max) = p.max_epochs {
            if p.epochs > max {
                let allowed = (max * p.tokens_available as f64) as u64;
                return Err(Error::Invalid(format!(
                    "component `{}` needs {:.2} epochs of its {} tokens to reach its target of {} tokens, above max_epochs = {max} (short by {} tokens, {:.2} epochs): lower its weight, raise max_epochs, add documents or lower the budget",
                    p.name,
                    p.epochs,
                    p.tokens_available,
                    p.tokens_target,
                    p.tokens_target - allowed,
                    p.epochs - max
                )));
            }
        }
    }
    Ok((
        Plan {
            generation: corpus.generation(),
            mixture_hash: m.hash(),
            tokenizer: r.tokenizer.id(),
            seq_len: m.seq_len,
            tokens: budget,
            sequences: match m.budget() {
                Some(_) => m.stretches(0, &[]).last().map_or(0, |x| x.end),
                // Every document once: each component packs its own
                // sequences and drops its partial last one.
                None => available.iter().map(|a| a / l).sum(),
            },
            phases: m
                .stretches(0, &[])
                .iter()
                .filter(|_| !m.phases.is_empty())
                .map(|x| PhasePlan {
                    name: m.phase_name(x.phase),
                    tokens: m.phases[x.phase].tokens,
                    sequences: x.end - x.start,
                    first_sequence: x.start,
                    shares: m
                        .components
                        .iter()
                        .zip(&x.shares)
                        .filter(|(_, &s)| s > 0.0)
                        .map(|(c, &s)| (c.name.clone(), s))
                        .collect(),
                })
                .collect(),
            components: comps,
            policy: crate::policy::mixture_outcome(corpus, m)?,
        },
        r,
    ))
}

fn breakdown(
    sel: &Selection,
    field: &str,
    counts: &[std::sync::Arc<Vec<u32>>],
) -> Result<Vec<Slice>> {
    let mut acc: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for (i, (seg, bm)) in sel.parts().iter().enumerate() {
        if bm.is_empty() {
            continue;
        }
        let (values, rest) = seg.split_by_values(field, bm, false)?;
        for (v, sub) in values.into_iter().chain([("(none)".to_string(), rest)]) {
            if sub.is_empty() {
                continue;
            }
            let e = acc.entry(v).or_default();
            e.0 += sub.len();
            e.1 += tokens_of(&sub, &counts[i]);
        }
    }
    let mut v: Vec<Slice> = acc
        .into_iter()
        .map(|(value, (docs, tokens))| Slice {
            value,
            docs,
            tokens,
        })
        .collect();
    v.sort_by(|a, b| b.tokens.cmp(&a.tokens).then_with(|| a.value.cmp(&b.value)));
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIX: &str = "seed = 3\ntokens = 1000\n\
        [[component]]\nname = \"a\"\nquery = \"lang=fr\"\nweight = 3\n\
        [[component]]\nname = \"b\"\nquery = \"*\"\nweight = 1\nmax_epochs = 2\n";

    #[test]
    fn parse_applies_defaults_and_normalizes_shares() {
        let m = Mixture::parse(MIX).unwrap();
        assert_eq!((m.seq_len, m.tokenizer.as_str()), (2048, "bytes"));
        assert_eq!(m.shuffle_window_blocks, 16);
        assert_eq!(m.tokens, Some(1000));
        assert_eq!(m.shares(), vec![0.75, 0.25]);
        assert_eq!(m.components[1].max_epochs, Some(2.0));
    }

    #[test]
    fn parse_refuses_bad_mixtures_naming_the_origin() {
        for (text, needle) in [
            ("seed = 1\n", "component"),
            ("[[component]]\nname = \"a\"\nquery = \"*\"\nweight = 0\n", "weight"),
            ("seq_len = 0\n[[component]]\nname = \"a\"\nquery = \"*\"\nweight = 1\n", "seq_len"),
            ("bogus = 1\n[[component]]\nname = \"a\"\nquery = \"*\"\nweight = 1\n", "bogus"),
            (
                "[[component]]\nname = \"a\"\nquery = \"*\"\nweight = 1\n[[component]]\nname = \"a\"\nquery = \"*\"\nweight = 1\n",
                "twice",
            ),
        ] {
            let e = Mixture::from_toml(text, "m.toml").unwrap_err().to_string();
            assert!(e.starts_with("m.toml: "), "{e}");
            assert!(e.contains(needle), "`{needle}` not in {e}");
        }
    }

    const PHASED: &str = "seq_len = 10\n\
        [[component]]\nname = \"a\"\nquery = \"*\"\n\
        [[component]]\nname = \"b\"\nquery = \"*\"\n\
        [[phase]]\nname = \"main\"\ntokens = 1000\nweights = { a = 3, b = 1 }\n\
        [[phase]]\ntokens = 505\nweights = { b = 1 }\n";

    #[test]
    fn phases_give_stretches_and_weight_changes_split_them() {
        let m = Mixture::parse(PHASED).unwrap();
        assert_eq!(m.budget(), Some(1505));
        assert_eq!(m.phase_name(1), "phase-2");
        // Overall shares weigh each phase by its budget.
        let sh = m.shares();
        assert!((sh[0] - 0.75 * 1000.0 / 1505.0).abs() < 1e-12, "{sh:?}");
        let st = m.stretches(0, &[]);
        assert_eq!(
            st.iter()
                .map(|x| (x.start, x.end, x.phase))
                .collect::<Vec<_>>(),
            vec![(0, 100, 0), (100, 150, 1)]
        );
        assert_eq!(st[0].shares, vec![0.75, 0.25]);
        assert_eq!(st[1].shares, vec![0.0, 1.0]);
        // A change inside phase 1 holds to its end; phase 2 keeps its own.
        let ch = |s, a: f64, b: f64| WeightChange {
            from_sequence: s,
            weights: [("a".to_string(), a), ("b".to_string(), b)].into(),
        };
        let st = m.stretches(0, &[ch(40, 1.0, 1.0), ch(70, 0.0, 1.0)]);
        assert_eq!(
            st.iter()
                .map(|x| (x.start, x.end, x.shares[0]))
                .collect::<Vec<_>>(),
            vec![
                (0, 40, 0.75),
                (40, 70, 0.5),
                (70, 100, 0.0),
                (100, 150, 0.0)
            ]
        );
        // A change past the end, or at a phase's start, splits nothing.
        let st = m.stretches(0, &[ch(100, 1.0, 0.0), ch(500, 1.0, 1.0)]);
        assert_eq!(st.len(), 2);
        assert_eq!(st[1].shares, vec![1.0, 0.0]);
    }

    #[test]
    fn bad_phases_are_refused() {
        for (text, needle) in [
            (
                PHASED.replace("seq_len = 10", "seq_len = 10\ntokens = 7"),
                "sum of the phases",
            ),
            (
                PHASED.replace("weights = { b = 1 }", "weights = { c = 1 }"),
                "no component is named `c`",
            ),
            (
                PHASED.replace("weights = { b = 1 }", "weights = { b = 0 }"),
                "at least one weight",
            ),
            (
                PHASED.replace("tokens = 505", "tokens = 5"),
                "at least one sequence",
            ),
            (
                PHASED.replace("name = \"main\"", "name = \"phase-2\""),
                "appears twice",
            ),
            (
                PHASED.replace(
                    "query = \"*\"\n[[phase]]",
                    "query = \"*\"\nweight = 1\n[[phase]]",
                ),
                "given per phase",
            ),
        ] {
            let e = Mixture::from_toml(&text, "p.toml").unwrap_err().to_string();
            assert!(e.contains(needle), "`{needle}` not in {e}");
        }
    }

    #[test]
    fn from_file_reads_and_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("mix.toml");
        std::fs::write(&p, MIX).unwrap();
        assert_eq!(
            Mixture::from_file(&p).unwrap(),
            Mixture::parse(MIX).unwrap()
        );
        let missing = dir.path().join("none.toml");
        match Mixture::from_file(&missing) {
            Err(Error::Io { path, .. }) => assert_eq!(path, missing),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_hash_binds_what_changes_the_stream() {
        let m = Mixture::parse(MIX).unwrap();
        assert_eq!(m.hash(), Mixture::parse(MIX).unwrap().hash());
        assert_eq!(m.hash().len(), 16);
        let mut other = m.clone();
        other.seed += 1;
        assert_ne!(other.hash(), m.hash());
        let mut other = m.clone();
        other.redact_pii = true;
        assert_ne!(other.hash(), m.hash());
        let inline = Mixture::inline("lang=fr", "bytes", 128, 0);
        assert_eq!(inline.tokens, None);
        inline.check("inline").unwrap();
    }
}
