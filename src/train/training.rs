//! The training set a mixture's stream emits, measured without reading a
//! text: the schedule is replayed from token counts over every global
//! sequence, and each piece of each sequence credits its document. The
//! result is what `corpusql report MIX.toml` describes: the documents the
//! stream holds (once each), the tokens it takes from each (epochs
//! included), per component and per phase.

use std::collections::BTreeMap;
use std::sync::Arc;

use roaring::RoaringBitmap;
use serde::{Deserialize, Serialize};

use super::mixture::{self, Mixture, WeightChange};
use super::schedule::Schedule;
use crate::corpus::Corpus;
use crate::error::Result;

/// One component of a training set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentTraining {
    /// Name.
    pub name: String,
    /// Query.
    pub query: String,
    /// Tokens the stream takes from it.
    pub tokens: u64,
    /// Its share of the stream's tokens.
    pub share: f64,
    /// Distinct documents it contributes at least one token of.
    pub docs: u64,
    /// Tokens of one pass over its documents.
    pub tokens_available: u64,
    /// `tokens / tokens_available`: passes over its documents.
    pub epochs: f64,
}

/// One phase of a training set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseTraining {
    /// Name (`phase-N` when the file gives none; `all` without phases).
    pub name: String,
    /// Its first global sequence.
    pub first_sequence: u64,
    /// Its sequences.
    pub sequences: u64,
    /// Tokens per component name.
    pub tokens_by_component: BTreeMap<String, u64>,
}

/// What a training set holds, component by component and phase by phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingSummary {
    /// Mixture hash.
    pub mixture_hash: String,
    /// Tokens per sequence.
    pub seq_len: usize,
    /// Sequences of the stream (all ranks).
    pub sequences: u64,
    /// Tokens of the stream.
    pub tokens: u64,
    /// Components, in the mixture's order.
    pub components: Vec<ComponentTraining>,
    /// Phases, in order.
    pub phases: Vec<PhaseTraining>,
    /// The weight changes replayed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub weight_changes: Vec<WeightChange>,
}

/// The documents and tokens of a mixture's stream.
#[derive(Debug, Clone)]
pub struct TrainingSet {
    /// Per segment of the snapshot: the documents with at least one token
    /// in the stream.
    pub parts: Vec<RoaringBitmap>,
    /// Per segment: tokens the stream takes from each document (repeats
    /// included).
    pub tokens: Vec<Arc<Vec<u32>>>,
    /// The totals.
    pub summary: TrainingSummary,
}

/// The training set of `m` (bound to the corpus policy unless it already
/// is) on `corpus`, with the weight changes `changes`: a replay of its
/// schedule over every sequence.
pub fn training_set(corpus: &Corpus, m: &Mixture, changes: &[WeightChange]) -> Result<TrainingSet> {
    let m = &m.bound(corpus)?;
    let (plan, resolved) = mixture::plan(corpus, m)?;
    let mut changes = changes.to_vec();
    changes.sort_by_key(|c| c.from_sequence);
    let mut sched = Schedule::new(corpus, m, &resolved, &changes);
    let end = sched.end();
    let stretches = sched.blend().stretches().to_vec();
    let n = m.components.len();
    let mut tokens: Vec<Vec<u32>> = corpus
        .segments()
        .iter()
        .map(|s| vec![0u32; s.segment.doc_count() as usize])
        .collect();
    let mut by_comp = vec![0u64; n];
    let phases_n = if m.phases.is_empty() {
        1
    } else {
        m.phases.len()
    };
    let mut by_phase = vec![vec![0u64; n]; phases_n];
    let mut phase_span: Vec<Option<(u64, u64)>> = vec![None; phases_n];
    let mut docs: Vec<Vec<RoaringBitmap>> = vec![vec![RoaringBitmap::new(); tokens.len()]; n];
    let l = m.seq_len as u64;
    let mut st = 0;
    for s in 0..end {
        while st + 1 < stretches.len() && stretches[st].end <= s {
            st += 1;
        }
        let phase = stretches.get(st).map_or(0, |x| x.phase).min(phases_n - 1);
        let Some(p) = sched.place(s) else { break };
        let c = p.component as usize;
        by_comp[c] += l;
        by_phase[phase][c] += l;
        let span = phase_span[phase].get_or_insert((s, s));
        span.1 = s;
        for x in &p.pieces {
            let t = &mut tokens[x.part as usize][x.ord as usize];
            *t = t.saturating_add(x.len);
            docs[c][x.part as usize].insert(x.ord);
        }
    }
    let parts: Vec<RoaringBitmap> = tokens
        .iter()
        .map(|t| {
            t.iter()
                .enumerate()
                .filter(|(_, &x)| x > 0)
                .map(|(o, _)| o as u32)
                .collect()
        })
        .collect();
    let total: u64 = by_comp.iter().sum();
    let components = m
        .components
        .iter()
        .zip(&plan.components)
        .enumerate()
        .map(|(c, (mc, pc))| ComponentTraining {
            name: mc.name.clone(),
            query: mc.query.clone(),
            tokens: by_comp[c],
            share: if total > 0 {
                by_comp[c] as f64 / total as f64
            } else {
                0.0
            },
            docs: docs[c].iter().map(|b| b.len()).sum(),
            tokens_available: pc.tokens_available,
            epochs: if pc.tokens_available > 0 {
                by_comp[c] as f64 / pc.tokens_available as f64
            } else {
                0.0
            },
        })
        .collect();
    let phases = (0..phases_n)
        .map(|i| {
            let (a, b) = phase_span[i].unwrap_or((0, 0));
            PhaseTraining {
                name: if m.phases.is_empty() {
                    "all".to_string()
                } else {
                    m.phase_name(i)
                },
                first_sequence: a,
                sequences: if phase_span[i].is_some() {
                    b - a + 1
                } else {
                    0
                },
                tokens_by_component: m
                    .components
                    .iter()
                    .zip(&by_phase[i])
                    .filter(|(_, &t)| t > 0)
                    .map(|(c, &t)| (c.name.clone(), t))
                    .collect(),
            }
        })
        .collect();
    Ok(TrainingSet {
        parts,
        tokens: tokens.into_iter().map(Arc::new).collect(),
        summary: TrainingSummary {
            mixture_hash: m.hash(),
            seq_len: m.seq_len,
            sequences: end,
            tokens: total,
            components,
            phases,
            weight_changes: changes,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::super::engine::{Engine, EngineOptions};
    use super::super::testing;
    use super::*;

    #[test]
    fn the_training_set_is_what_the_stream_emits() {
        let (_dir, corpus) = testing::corpus();
        let m = Mixture::parse(testing::MIX).unwrap();
        let t = training_set(&corpus, &m, &[]).unwrap();
        let mut e = Engine::new(&corpus, &m, EngineOptions::default()).unwrap();
        let mut per_doc: Vec<Vec<u64>> = corpus
            .segments()
            .iter()
            .map(|s| vec![0; s.segment.doc_count() as usize])
            .collect();
        while let Some(b) = e.next_batch(100).unwrap() {
            for p in b.pieces() {
                per_doc[p.part as usize][p.ord as usize] += p.tokens;
            }
        }
        let em = e.emitted();
        assert_eq!(t.summary.tokens, em.tokens);
        assert_eq!(t.summary.sequences, em.sequences);
        for c in &t.summary.components {
            assert_eq!(c.tokens, em.by_component[&c.name], "{}", c.name);
        }
        for (p, docs) in per_doc.iter().enumerate() {
            for (o, &n) in docs.iter().enumerate() {
                assert_eq!(t.tokens[p][o] as u64, n);
                assert_eq!(t.parts[p].contains(o as u32), n > 0);
            }
        }
        assert_eq!(t.summary.phases.len(), 1);
        assert_eq!(t.summary.phases[0].sequences, em.sequences);
    }
}
