//! The engine: turns the schedule into batches of packed sequences. For
//! each batch it gathers the scheduled documents that overlap the batch's
//! sequences, reads (in parallel) only the blocks holding the documents that
//! overlap this rank's own sequences, tokenizes them (in parallel), joins
//! them by end-of-document ids and cuts the token stream into rows of
//! `seq_len`. Positions come from exact token counts alone, so a rank never
//! tokenizes a document that lies wholly in other ranks' sequences. It also
//! attributes the emitted tokens to components (and, on request, to
//! licenses and sources) for reports.
//!
//! The engine is synchronous; [`super::stream::Stream`] runs it on a
//! prefetch thread.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use rayon::prelude::*;
use serde::Serialize;

use super::mixture::{self, Mixture, Resolved};
use super::schedule::{Scheduled, Scheduler, Shard, WorkerSplit};
use super::state::{selection_fingerprint, StreamState, STATE_VERSION};
use super::stream::{Batch, Span};
use crate::corpus::Corpus;
use crate::error::{Error, Result};
use crate::segment::Block;
use crate::tokenize::Tokenizer;

/// Where an engine starts and which share of the stream it produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineOptions {
    /// This process's rank.
    pub rank: u64,
    /// Number of ranks.
    pub world: u64,
    /// First global sequence of the run (a resume state's `next_sequence`;
    /// 0 otherwise). The engine does not check a state: see
    /// [`Engine::check_resume`].
    pub start: u64,
    /// Emit at most this many sequences (this rank's, or this worker's).
    pub stop_after: Option<u64>,
    /// This worker's part of the rank's sequences (the whole rank by default).
    pub split: WorkerSplit,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            rank: 0,
            world: 1,
            start: 0,
            stop_after: None,
            split: WorkerSplit::default(),
        }
    }
}

/// Tokens emitted, attributed to components (and documents' facets).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Emitted {
    /// Sequences emitted by this rank.
    pub sequences: u64,
    /// Tokens emitted by this rank.
    pub tokens: u64,
    /// Tokens per component name.
    pub by_component: BTreeMap<String, u64>,
    /// Tokens per license (when facets are tracked).
    pub by_license: BTreeMap<String, u64>,
    /// Tokens per source (when facets are tracked).
    pub by_source: BTreeMap<String, u64>,
    /// Sum of emitted token ids (a cheap checksum).
    pub checksum: u64,
}

/// The `license` and `source` of every document of the snapshot, as small
/// indexes into per-segment name tables (`u16::MAX`: absent).
pub(super) struct Facets {
    /// Per segment: the license column, then the source column.
    cols: Vec<[Vec<u16>; 2]>,
    /// Per segment: the names the indexes point to.
    names: Vec<Vec<String>>,
}

impl Facets {
    fn load(corpus: &Corpus) -> Result<Facets> {
        let mut cols = Vec::new();
        let mut names = Vec::new();
        for s in corpus.segments() {
            let mut seg_names: Vec<String> = Vec::new();
            let mut pair: [Vec<u16>; 2] = [Vec::new(), Vec::new()];
            for (field, col) in ["license", "source"].into_iter().zip(pair.iter_mut()) {
                *col = vec![u16::MAX; s.segment.doc_count() as usize];
                let (values, _) = s.segment.split_by_values(field, &s.segment.all(), true)?;
                for (v, docs) in values {
                    let idx = match seg_names.iter().position(|n| *n == v) {
                        Some(i) => i,
                        None => {
                            seg_names.push(v);
                            seg_names.len() - 1
                        }
                    };
                    for o in docs.iter() {
                        if let Some(c) = col.get_mut(o as usize) {
                            *c = idx.min(u16::MAX as usize - 1) as u16;
                        }
                    }
                }
            }
            cols.push(pair);
            names.push(seg_names);
        }
        Ok(Facets { cols, names })
    }

    fn index(&self, field: usize, part: u32, ord: u32) -> u16 {
        self.cols
            .get(part as usize)
            .and_then(|c| c[field].get(ord as usize))
            .copied()
            .unwrap_or(u16::MAX)
    }

    fn name(&self, part: u32, idx: u16) -> String {
        match self
            .names
            .get(part as usize)
            .and_then(|n| n.get(idx as usize))
        {
            Some(n) if idx != u16::MAX => n.clone(),
            _ => "(none)".to_string(),
        }
    }
}

/// Running totals behind [`Emitted`]: what the batches counted so far hold.
#[derive(Default)]
pub(super) struct Tally {
    sequences: u64,
    tokens: u64,
    checksum: u64,
    components: Vec<u64>,
    /// Tokens per (segment, name index), for licenses then sources.
    facets: [HashMap<(u32, u16), u64>; 2],
}

impl Tally {
    /// Counts `b`'s rows and tokens (and their facets, given the tables).
    pub(super) fn add(&mut self, b: &Batch, facets: Option<&Facets>) {
        self.sequences += b.rows as u64;
        self.tokens += (b.rows * b.seq_len) as u64;
        self.checksum = self
            .checksum
            .wrapping_add(b.tokens.par_iter().map(|&t| t as u64).sum::<u64>());
        for s in &b.spans {
            let c = s.component as usize;
            if self.components.len() <= c {
                self.components.resize(c + 1, 0);
            }
            self.components[c] += s.tokens;
            if let Some(f) = facets {
                for (i, out) in self.facets.iter_mut().enumerate() {
                    *out.entry((s.part, f.index(i, s.part, s.ord))).or_default() += s.tokens;
                }
            }
        }
    }

    /// The totals, named.
    pub(super) fn emitted(&self, m: &Mixture, facets: Option<&Facets>) -> Emitted {
        let mut e = Emitted {
            sequences: self.sequences,
            tokens: self.tokens,
            checksum: self.checksum,
            ..Emitted::default()
        };
        for (c, n) in m.components.iter().zip(&self.components) {
            if *n > 0 {
                e.by_component.insert(c.name.clone(), *n);
            }
        }
        if let Some(f) = facets {
            for (i, out) in [&mut e.by_license, &mut e.by_source]
                .into_iter()
                .enumerate()
            {
                for (&(part, idx), &n) in &self.facets[i] {
                    *out.entry(f.name(part, idx)).or_default() += n;
                }
            }
        }
        e
    }
}

/// The engine behind [`super::stream::Stream`] and `corpusql stream`.
pub struct Engine {
    corpus: Corpus,
    mixture: Mixture,
    /// What the corpus policy holds back from the mixture.
    policy: crate::policy::PolicyOutcome,
    resolved: Resolved,
    /// See [`StreamState::selection`].
    selection: String,
    sched: std::iter::Peekable<Scheduler>,
    shard: Shard,
    /// Global sequences end here (exclusive).
    end: u64,
    /// Sequences this rank will emit.
    total: u64,
    /// This rank's sequences already handed out.
    done: u64,
    cache: HashMap<(u32, u32), Arc<Block>>,
    cache_order: VecDeque<(u32, u32)>,
    cache_cap: usize,
    facets: Option<Arc<Facets>>,
    tally: Tally,
    pending: Vec<PendingDoc>,
}

struct PendingDoc {
    s: Scheduled,
    tokens: Option<Tokens>,
}

/// A document's tokens, end-of-document included.
enum Tokens {
    /// Ids from a tokenizer.
    Ids(Vec<u32>),
    /// The byte tokenizer: the text's bytes in a block, then EOS.
    Bytes(Arc<Block>, usize),
}

impl Tokens {
    /// Copies tokens `from..from + dst.len()` into `dst`.
    fn copy_into(&self, dst: &mut [u32], from: usize, eos: u32) {
        match self {
            Tokens::Ids(v) => dst.copy_from_slice(&v[from..from + dst.len()]),
            Tokens::Bytes(block, i) => {
                let text = block.text_bytes(*i);
                let end = (from + dst.len()).min(text.len());
                let n = end.saturating_sub(from);
                for (d, &b) in dst[..n].iter_mut().zip(&text[from.min(end)..end]) {
                    *d = b as u32;
                }
                if n < dst.len() {
                    dst[n] = eos;
                }
            }
        }
    }
}

impl Engine {
    /// Prepares a stream of `m` on `corpus` (plans it, refusing bad plans).
    pub fn new(corpus: &Corpus, m: &Mixture, opts: EngineOptions) -> Result<Engine> {
        if opts.world == 0 || opts.rank >= opts.world {
            return Err(Error::Invalid(format!(
                "rank {} of world {} is not a valid rank",
                opts.rank, opts.world
            )));
        }
        let m = &m.bound(corpus)?;
        let (plan, resolved) = mixture::plan(corpus, m)?;
        let end = plan.sequences;
        let policy = plan.policy;
        opts.split.check()?;
        let shard = Shard {
            start: opts.start,
            rank: opts.rank,
            world: opts.world,
            split: opts.split,
        };
        // A resume state may name any `next_sequence`; past the end is done.
        let total = shard.total(end, opts.stop_after);
        let selection = selection_fingerprint(corpus, &resolved);
        let sched = Scheduler::new(corpus, m, &resolved).peekable();
        let cache_cap = (m.components.len() * m.shuffle_window_blocks * 2).max(64);
        Ok(Engine {
            corpus: corpus.clone(),
            mixture: m.clone(),
            policy,
            resolved,
            selection,
            sched,
            shard,
            end,
            total,
            done: 0,
            cache: HashMap::new(),
            cache_order: VecDeque::new(),
            cache_cap,
            facets: None,
            tally: Tally::default(),
            pending: Vec::new(),
        })
    }

    /// Also attribute emitted tokens to licenses and sources (for reports).
    pub fn track_facets(&mut self) -> Result<()> {
        self.facets = Some(Arc::new(Facets::load(&self.corpus)?));
        Ok(())
    }

    /// The facet tables, when tracked.
    pub(super) fn facets(&self) -> Option<Arc<Facets>> {
        self.facets.clone()
    }

    /// What the corpus policy holds back from the mixture (or lets through,
    /// when the mixture was bound with the policy overridden).
    pub fn policy(&self) -> &crate::policy::PolicyOutcome {
        &self.policy
    }

    /// Sequences this rank emits in total.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.resolved.tokenizer
    }

    /// The mixture streamed.
    pub fn mixture(&self) -> &Mixture {
        &self.mixture
    }

    /// This rank's share of the sequences.
    pub fn shard(&self) -> Shard {
        self.shard
    }

    /// What was emitted so far.
    pub fn emitted(&self) -> Emitted {
        self.tally.emitted(&self.mixture, self.facets.as_deref())
    }

    /// The state after what was emitted so far.
    pub fn state(&self) -> StreamState {
        StreamState {
            version: STATE_VERSION,
            generation: self.corpus.generation(),
            mixture_hash: self.mixture.hash(),
            tokenizer: self.resolved.tokenizer.id(),
            seq_len: self.mixture.seq_len,
            next_sequence: self.shard.next_sequence(self.done),
            selection: Some(self.selection.clone()),
        }
    }

    /// Refuses to resume from `st` unless it belongs to this stream: same
    /// mixture, tokenizer and sequence length, and the same segments and
    /// selected documents (or, for a version-1 state, the same generation).
    /// The refusal is an [`Error::ResumeMismatch`] naming what differs.
    pub fn check_resume(&self, st: &StreamState) -> Result<()> {
        st.check(
            self.corpus.generation(),
            &self.selection,
            &self.mixture,
            &self.resolved.tokenizer.id(),
        )
    }

    /// The row of global sequence `s` in the batch of `rows` rows starting at
    /// this rank's `k0`-th sequence, if `s` is there.
    fn row_of(&self, s: u64, k0: u64, rows: usize) -> Option<usize> {
        let k = self.shard.local(s)?;
        (k >= k0 && k < k0 + rows as u64).then(|| (k - k0) as usize)
    }

    fn block(&mut self, part: u32, block: u32) -> Result<Arc<Block>> {
        if let Some(b) = self.cache.get(&(part, block)) {
            return Ok(b.clone());
        }
        let b = Arc::new(
            self.corpus.segments()[part as usize]
                .segment
                .read_block(block as usize)?,
        );
        self.insert_block(part, block, b.clone());
        Ok(b)
    }

    fn insert_block(&mut self, part: u32, block: u32, b: Arc<Block>) {
        self.cache.insert((part, block), b);
        self.cache_order.push_back((part, block));
        while self.cache_order.len() > self.cache_cap {
            if let Some(k) = self.cache_order.pop_front() {
                self.cache.remove(&k);
            }
        }
    }

    /// The next `rows` sequences of this rank (fewer at the end; `None` when
    /// done). `rows` must be positive.
    pub fn next_batch(&mut self, rows: usize) -> Result<Option<Batch>> {
        if rows == 0 {
            return Err(Error::Invalid("a batch needs at least one row".into()));
        }
        if self.done >= self.total {
            return Ok(None);
        }
        let rows = rows.min((self.total - self.done) as usize);
        let l = self.mixture.seq_len as u64;
        let k0 = self.done;
        let seqs: Vec<u64> = (0..rows as u64)
            .map(|k| self.shard.global(k0 + k))
            .collect();
        let lo = seqs[0] * l;
        let hi = (seqs[rows - 1] + 1) * l;
        // Gather every document overlapping [lo, hi), reading only those that
        // overlap one of this batch's sequences.
        self.pending.retain(|p| p.s.start + p.s.tokens as u64 > lo);
        while let Some(s) = self.sched.peek().copied() {
            if s.start >= hi {
                break;
            }
            self.sched.next();
            if s.start + s.tokens as u64 <= lo {
                continue;
            }
            self.pending.push(PendingDoc { s, tokens: None });
        }
        let need: Vec<usize> = (0..self.pending.len())
            .filter(|&i| {
                let p = &self.pending[i];
                p.tokens.is_none()
                    && (p.s.start / l..=(p.s.start + p.s.tokens as u64 - 1) / l)
                        .any(|s| self.row_of(s, k0, rows).is_some())
            })
            .collect();
        // Decompress the blocks needed (in parallel), then tokenize.
        let mut wanted: Vec<(u32, u32)> = Vec::new();
        for &i in &need {
            let s = self.pending[i].s;
            let seg = &self.corpus.segments()[s.part as usize].segment;
            let b = seg.block_of(s.ord) as u32;
            if !self.cache.contains_key(&(s.part, b)) && !wanted.contains(&(s.part, b)) {
                wanted.push((s.part, b));
            }
        }
        let corpus = &self.corpus;
        let fetched: Vec<((u32, u32), Result<Block>)> = wanted
            .par_iter()
            .map(|&(p, b)| {
                (
                    (p, b),
                    corpus.segments()[p as usize].segment.read_block(b as usize),
                )
            })
            .collect();
        for (k, b) in fetched {
            self.insert_block(k.0, k.1, Arc::new(b?));
        }
        let mut jobs = Vec::with_capacity(need.len());
        for &i in &need {
            let s = self.pending[i].s;
            let seg = self.corpus.segments()[s.part as usize].segment.clone();
            let bi = seg.block_of(s.ord);
            let block = self.block(s.part, bi as u32)?;
            let local = (s.ord - seg.blocks()[bi].first_doc) as usize;
            jobs.push((i, block, local));
        }
        let tok = &self.resolved.tokenizer;
        let eos = tok.eos();
        if let Tokenizer::Bytes = tok {
            // Byte tokens are the text's bytes: packing reads them straight
            // from the block, with no intermediate ids and no re-validation.
            for (i, block, local) in jobs {
                let n = block.text_bytes(local).len() + 1;
                let expected = self.pending[i].s.tokens as usize;
                if n != expected {
                    return Err(Error::Invalid(format!(
                        "document length changed ({n} byte tokens now, {expected} recorded): the corpus snapshot is inconsistent"
                    )));
                }
                self.pending[i].tokens = Some(Tokens::Bytes(block, local));
            }
        } else {
            let encoded: Vec<(usize, Result<Vec<u32>>)> = jobs
                .par_iter()
                .map(|(i, block, local)| {
                    let text = block.text(*local);
                    let mut v = Vec::with_capacity(text.len() / 3 + 1);
                    let r = tok.encode(text, &mut v).map(|_| {
                        v.push(eos);
                        v
                    });
                    (*i, r)
                })
                .collect();
            for (i, r) in encoded {
                let v = r?;
                let expected = self.pending[i].s.tokens as usize;
                if v.len() != expected {
                    return Err(Error::Invalid(format!(
                        "document token count changed ({} now, {expected} recorded): the token-count file is stale; delete the *.cqc files and rerun",
                        v.len()
                    )));
                }
                self.pending[i].tokens = Some(Tokens::Ids(v));
            }
        }
        // Pack, rows in parallel: each row takes the tokens of the pending
        // documents (sorted by position) that overlap it.
        let mut tokens = vec![0u32; rows * l as usize];
        let pending = &self.pending;
        let filled: Vec<(u64, Vec<u32>)> = tokens
            .par_chunks_mut(l as usize)
            .zip(seqs.par_iter())
            .map(|(row, &s)| {
                let (sa, sb) = (s * l, (s + 1) * l);
                let first = pending.partition_point(|p| p.s.start + p.s.tokens as u64 <= sa);
                let mut covered = 0u64;
                let mut starts = Vec::new();
                for p in &pending[first..] {
                    let (a, b) = (p.s.start, p.s.start + p.s.tokens as u64);
                    if a >= sb {
                        break;
                    }
                    let Some(t) = &p.tokens else { continue };
                    let (x, y) = (a.max(sa), b.min(sb));
                    t.copy_into(
                        &mut row[(x - sa) as usize..(y - sa) as usize],
                        (x - a) as usize,
                        eos,
                    );
                    covered += y - x;
                    if a >= sa {
                        starts.push((a - sa) as u32);
                    }
                }
                (covered, starts)
            })
            .collect();
        let (covered, doc_starts): (Vec<u64>, Vec<Vec<u32>>) = filled.into_iter().unzip();
        if let Some(r) = covered.iter().position(|&c| c != l) {
            return Err(Error::Invalid(format!(
                "internal: sequence {} was not filled ({} of {l} tokens)",
                seqs[r], covered[r]
            )));
        }
        // Attribution: tokens of each document inside this batch's rows.
        let mut spans = Vec::new();
        for p in &self.pending {
            let (a, b) = (p.s.start, p.s.start + p.s.tokens as u64);
            for s in a / l..=(b - 1) / l {
                let Some(row) = self.row_of(s, k0, rows) else {
                    continue;
                };
                spans.push(Span {
                    row,
                    component: p.s.component,
                    part: p.s.part,
                    ord: p.s.ord,
                    tokens: b.min((s + 1) * l) - a.max(s * l),
                });
            }
        }
        self.done += rows as u64;
        let batch = Batch {
            tokens,
            rows,
            seq_len: l as usize,
            sequences: seqs,
            doc_starts,
            spans,
        };
        self.tally.add(&batch, self.facets.as_deref());
        Ok(Some(batch))
    }

    /// Global sequences of the whole stream (all ranks).
    pub fn global_sequences(&self) -> u64 {
        self.end
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing;
    use super::*;

    fn mix() -> Mixture {
        Mixture::parse(testing::MIX).unwrap()
    }

    fn run(corpus: &Corpus, opts: EngineOptions, rows: usize) -> Vec<Vec<u32>> {
        let mut e = Engine::new(corpus, &mix(), opts).unwrap();
        let mut out = Vec::new();
        while let Some(b) = e.next_batch(rows).unwrap() {
            out.extend((0..b.rows()).map(|r| b.row(r).unwrap().to_vec()));
        }
        assert_eq!(out.len() as u64, e.total());
        out
    }

    /// The first documents of the stream and a digest of all its tokens,
    /// as corpusql has always streamed them: a change reorders every
    /// stream and invalidates every saved state.
    #[test]
    fn the_stream_is_pinned() {
        let (_dir, corpus) = testing::corpus();
        let m = mix();
        let (_, resolved) = mixture::plan(&corpus, &m).unwrap();
        let mut got = Vec::new();
        for s in Scheduler::new(&corpus, &m, &resolved).take(16) {
            let seg = &corpus.segments()[s.part as usize].segment;
            let bi = seg.block_of(s.ord);
            let b = seg.read_block(bi).unwrap();
            let key = b
                .key((s.ord - seg.blocks()[bi].first_doc) as usize)
                .to_string();
            got.push((s.component, key, s.tokens, s.start));
        }
        let want: Vec<(u32, String, u32, u64)> = [
            (0, "d0432", 1005, 0),
            (1, "d0563", 1352, 1005),
            (0, "d0177", 570, 2357),
            (0, "d0309", 954, 2927),
            (1, "d0191", 1088, 3881),
            (0, "d0372", 285, 4969),
            (0, "d0240", 1401, 5254),
            (1, "d0538", 427, 6655),
            (0, "d0246", 123, 7082),
            (1, "d0202", 1495, 7205),
            (0, "d0396", 1173, 8700),
            (0, "d0357", 1230, 9873),
            (1, "d0236", 1253, 11103),
            (0, "d0354", 1119, 12356),
            (0, "d0192", 1125, 13475),
            (1, "d0482", 1355, 14600),
        ]
        .into_iter()
        .map(|(c, k, t, s)| (c, k.to_string(), t, s))
        .collect();
        assert_eq!(got, want);
        let mut e = Engine::new(&corpus, &m, EngineOptions::default()).unwrap();
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        let mut rows = 0;
        while let Some(b) = e.next_batch(50).unwrap() {
            for t in b.tokens() {
                h.update(&t.to_le_bytes());
            }
            rows += b.rows();
        }
        assert_eq!(rows, 4687);
        assert_eq!(format!("{:016x}", h.digest()), "62026f56c1022b12");
        let st = e.state();
        assert_eq!(st.mixture_hash, "dd2bc5af36add366");
        assert_eq!(
            st.selection.as_deref(),
            Some("21e9c10916cde00173d367117278cbf1")
        );
        assert_eq!(st.next_sequence, 4687);
    }

    #[test]
    fn batch_sizes_and_ranks_do_not_change_the_stream() {
        let (_dir, corpus) = testing::corpus();
        let one = run(&corpus, EngineOptions::default(), 64);
        assert_eq!(run(&corpus, EngineOptions::default(), 1), one);
        assert_eq!(run(&corpus, EngineOptions::default(), 10_000), one);
        for world in [2u64, 3] {
            let ranks: Vec<Vec<Vec<u32>>> = (0..world)
                .map(|rank| {
                    let o = EngineOptions {
                        rank,
                        world,
                        ..EngineOptions::default()
                    };
                    run(&corpus, o, 7)
                })
                .collect();
            let mut merged = Vec::new();
            for k in 0.. {
                let before = merged.len();
                for r in &ranks {
                    if let Some(row) = r.get(k) {
                        merged.push(row.clone());
                    }
                }
                if merged.len() == before {
                    break;
                }
            }
            assert_eq!(merged, one, "world {world}");
        }
        // A later start and a stop.
        let o = EngineOptions {
            start: 100,
            stop_after: Some(5),
            ..EngineOptions::default()
        };
        assert_eq!(run(&corpus, o, 2), one[100..105].to_vec());
        // Three workers of rank 1 of 2, in blocks of 4: taking one block
        // from each worker in turn gives the rank's own order.
        let rank = |split| {
            let o = EngineOptions {
                rank: 1,
                world: 2,
                split,
                ..EngineOptions::default()
            };
            run(&corpus, o, 3)
        };
        let whole = rank(WorkerSplit::default());
        let parts: Vec<Vec<Vec<u32>>> = (0..3)
            .map(|worker| {
                rank(WorkerSplit {
                    worker,
                    workers: 3,
                    block: 4,
                    skip: 0,
                })
            })
            .collect();
        let mut merged = Vec::new();
        for b in 0.. {
            let Some(part) = parts[b % 3].get(b / 3 * 4..) else {
                break;
            };
            if part.is_empty() {
                break;
            }
            merged.extend(part.iter().take(4).cloned());
        }
        assert_eq!(merged, whole);
    }

    #[test]
    fn document_starts_follow_the_end_of_document_ids() {
        let (_dir, corpus) = testing::corpus();
        let mut e = Engine::new(&corpus, &mix(), EngineOptions::default()).unwrap();
        let b = e.next_batch(200).unwrap().unwrap();
        let mut after_eos = true;
        for r in 0..b.rows() {
            let row = b.row(r).unwrap();
            let want: Vec<u32> = (0..row.len())
                .filter(|&i| if i == 0 { after_eos } else { row[i - 1] == 256 })
                .map(|i| i as u32)
                .collect();
            assert_eq!(b.document_starts()[r], want, "row {r}");
            after_eos = row[row.len() - 1] == 256;
        }
        assert_eq!(b.sequences(), (0..200).collect::<Vec<u64>>());
    }

    #[test]
    fn emitted_tokens_are_attributed() {
        let (_dir, corpus) = testing::corpus();
        let mut e = Engine::new(&corpus, &mix(), EngineOptions::default()).unwrap();
        e.track_facets().unwrap();
        let mut checksum = 0u64;
        while let Some(b) = e.next_batch(300).unwrap() {
            checksum += b.tokens().iter().map(|&t| t as u64).sum::<u64>();
        }
        let em = e.emitted();
        assert_eq!(em.sequences, 4687);
        assert_eq!(em.tokens, 4687 * 64);
        assert_eq!(em.checksum, checksum);
        for by in [&em.by_component, &em.by_license, &em.by_source] {
            assert_eq!(by.values().sum::<u64>(), em.tokens, "{by:?}");
        }
        let fr = em.by_component["fr"] as f64 / em.tokens as f64;
        assert!((fr - 0.6).abs() < 0.01, "{fr}");
        assert_eq!(em.by_license.len(), 4, "{:?}", em.by_license);
    }

    #[test]
    fn bad_arguments_are_refused() {
        let (_dir, corpus) = testing::corpus();
        for (rank, world) in [(1, 1), (0, 0), (5, 4)] {
            let o = EngineOptions {
                rank,
                world,
                ..EngineOptions::default()
            };
            assert!(Engine::new(&corpus, &mix(), o).is_err());
        }
        let mut e = Engine::new(&corpus, &mix(), EngineOptions::default()).unwrap();
        assert!(e.next_batch(0).is_err());
        // Past the end: nothing, no panic.
        let o = EngineOptions {
            start: u64::MAX,
            rank: 3,
            world: 4,
            stop_after: Some(4),
            split: WorkerSplit::default(),
        };
        let mut e = Engine::new(&corpus, &mix(), o).unwrap();
        assert_eq!(e.total(), 0);
        assert!(e.next_batch(2).unwrap().is_none());
    }
}
