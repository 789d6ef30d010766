//! The streamer: a mixture's documents in a deterministic pseudo-random
//! order, tokenized, joined by end-of-document ids, packed into sequences of
//! `seq_len` tokens, and split across data-parallel ranks — resumable from a
//! small state.
//!
//! ## Order
//! For each component and epoch, the blocks holding its documents are
//! ordered by a keyed hash of (seed, component, epoch, segment id, block);
//! consecutive groups of `shuffle_window_blocks` blocks form windows inside
//! which documents are ordered by a hash of (seed, component, epoch,
//! segment id, ordinal). Nothing is shuffled in memory beyond one window,
//! and a deleted document simply drops out without moving the others.
//! Components are interleaved by deficit: the next document comes from the
//! component furthest below its token share.
//!
//! ## Packing and ranks
//! The global token stream is cut into sequences of `seq_len`; sequence `s`
//! goes to rank `s mod world` (counted from the resume point), so the global
//! order never depends on the number of ranks. Positions are computed from
//! exact token counts alone: a rank reads and tokenizes only documents that
//! overlap its own sequences.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::corpus::Corpus;
use crate::error::{Error, Result};
use crate::mixture::{self, Mixture, Resolved};
use crate::segment::Block;

/// Where a stream starts and which share of it this process emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamOptions {
    /// This process's rank.
    pub rank: u64,
    /// Number of ranks.
    pub world: u64,
    /// First global sequence of the run (from a resume state; 0 otherwise).
    pub start: u64,
    /// Emit at most this many sequences (this rank's).
    pub stop_after: Option<u64>,
}

impl Default for StreamOptions {
    fn default() -> Self {
        StreamOptions {
            rank: 0,
            world: 1,
            start: 0,
            stop_after: None,
        }
    }
}

/// The version of [`StreamState`] this build writes.
pub const STATE_VERSION: u32 = 2;

/// A resumable position in a stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamState {
    /// State format version.
    pub version: u32,
    /// Corpus generation the stream reads.
    pub generation: u64,
    /// Hash of the mixture.
    pub mixture_hash: String,
    /// Tokenizer id.
    pub tokenizer: String,
    /// Sequence length.
    pub seq_len: usize,
    /// The next global sequence to emit (every rank has emitted all before it).
    pub next_sequence: u64,
    /// Fingerprint of what the schedule depends on: the snapshot's segments
    /// and each component's selected documents (version 2 on). A state whose
    /// fingerprint matches resumes on a later generation that changed
    /// neither, such as one that only added tag signals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selection: Option<String>,
}

impl StreamState {
    /// Refuses a state that does not belong to this corpus and mixture.
    /// `selection` is the fingerprint of the stream about to resume (see
    /// [`Engine::state`]); a version-1 state, which has none, must be of the
    /// same generation.
    pub fn check(
        &self,
        generation: u64,
        selection: &str,
        m: &Mixture,
        tokenizer: &str,
    ) -> Result<()> {
        if !(1..=STATE_VERSION).contains(&self.version) {
            return Err(Error::Invalid(format!(
                "stream state version {} is not supported (1 to {STATE_VERSION} are)",
                self.version
            )));
        }
        let same_documents = match &self.selection {
            Some(f) => f == selection,
            None => self.generation == generation,
        };
        if !same_documents {
            return Err(Error::Invalid(format!(
                "the stream state is for corpus generation {}, the corpus is at generation {generation} and the documents this mixture selects changed since (ingested, deleted, compacted or retagged): resuming would not continue the same stream",
                self.generation
            )));
        }
        if self.mixture_hash != m.hash() {
            return Err(Error::Invalid(format!(
                "the stream state is for mixture {}, this mixture hashes to {}: the mixture (weights, queries, seed, budget, ...) changed",
                self.mixture_hash,
                m.hash()
            )));
        }
        if self.tokenizer != tokenizer || self.seq_len != m.seq_len {
            return Err(Error::Invalid(format!(
                "the stream state is for tokenizer {} and seq_len {}, not {tokenizer} and {}",
                self.tokenizer, self.seq_len, m.seq_len
            )));
        }
        Ok(())
    }
}

/// One scheduled document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scheduled {
    /// Component index.
    pub component: u32,
    /// Segment index in the snapshot.
    pub part: u32,
    /// Ordinal in the segment.
    pub ord: u32,
    /// Tokens (end-of-document included).
    pub tokens: u32,
    /// Global position of its first token.
    pub start: u64,
}

/// xxh3-128 of the snapshot's segments (file, documents, blocks) and of
/// each component's selected ordinals per segment: everything the schedule
/// reads besides the mixture and the token counts (a function of a
/// segment's text and the tokenizer).
fn selection_fingerprint(corpus: &Corpus, resolved: &Resolved) -> String {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for s in corpus.segments() {
        let name = s.segment.path().file_name().unwrap_or_default();
        h.update(name.as_encoded_bytes());
        h.update(&[0]);
        h.update(&s.segment.doc_count().to_le_bytes());
        h.update(&(s.segment.blocks().len() as u64).to_le_bytes());
    }
    let mut buf = Vec::new();
    for (c, sel) in resolved.selections.iter().enumerate() {
        h.update(&(c as u64).to_le_bytes());
        for (p, (_, bm)) in sel.parts().iter().enumerate() {
            buf.clear();
            bm.serialize_into(&mut buf).expect("Vec write");
            h.update(&(p as u64).to_le_bytes());
            h.update(&(buf.len() as u64).to_le_bytes());
            h.update(&buf);
        }
    }
    format!("{:032x}", h.digest128())
}

fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
    z ^ (z >> 31)
}

struct Cursor {
    /// (part, segment id, block index) of every block of the snapshot: the
    /// windows are cut from all blocks, so that a block emptied by deletions
    /// does not shift the windows of the others.
    all: Arc<Vec<(u32, u64, u32)>>,
    /// Matched ordinals per (part, block).
    matched: HashMap<(u32, u32), Vec<u32>>,
    key: u64,
    epoch: u64,
    order: Vec<usize>,
    next_window: usize,
    window: Vec<(u32, u32)>,
    pos: usize,
    once: bool,
    done: bool,
    window_blocks: usize,
}

impl Cursor {
    fn is_empty(&self) -> bool {
        self.matched.is_empty()
    }

    fn start_epoch(&mut self) {
        let key = self.key ^ mix64(self.epoch.wrapping_add(0x9e3779b97f4a7c15));
        let mut order: Vec<(u64, usize)> = self
            .all
            .iter()
            .enumerate()
            .map(|(i, (_, seg, b))| {
                (
                    mix64(key ^ mix64(seg.wrapping_mul(0x100000001b3) ^ *b as u64)),
                    i,
                )
            })
            .collect();
        order.sort_unstable();
        self.order = order.into_iter().map(|(_, i)| i).collect();
        self.next_window = 0;
    }

    fn next(&mut self) -> Option<(u32, u32)> {
        loop {
            if self.pos < self.window.len() {
                self.pos += 1;
                return Some(self.window[self.pos - 1]);
            }
            if self.done || self.is_empty() {
                return None;
            }
            if self.next_window * self.window_blocks >= self.order.len() {
                if self.once {
                    self.done = true;
                    return None;
                }
                self.epoch += 1;
                self.start_epoch();
            }
            let key = self.key ^ mix64(self.epoch.wrapping_add(0x51afd7ed558ccd));
            let lo = self.next_window * self.window_blocks;
            let hi = (lo + self.window_blocks).min(self.order.len());
            let mut w: Vec<(u64, u32, u32)> = Vec::new();
            for &bi in &self.order[lo..hi] {
                let (part, seg, block) = self.all[bi];
                let Some(ords) = self.matched.get(&(part, block)) else {
                    continue;
                };
                let sk = mix64(seg.wrapping_mul(0xff51afd7ed558ccd));
                w.extend(ords.iter().map(|&o| (mix64(key ^ sk ^ o as u64), part, o)));
            }
            w.sort_unstable();
            self.window = w.into_iter().map(|(_, p, o)| (p, o)).collect();
            self.pos = 0;
            self.next_window += 1;
        }
    }
}

/// Produces the global schedule of documents: which document, from which
/// component, at which token position. Needs token counts only.
pub struct Scheduler {
    cursors: Vec<Cursor>,
    shares: Vec<f64>,
    emitted: Vec<u64>,
    counts: Vec<Arc<Vec<u32>>>,
    position: u64,
}

impl Scheduler {
    /// A scheduler for a resolved mixture.
    pub fn new(corpus: &Corpus, m: &Mixture, r: &Resolved) -> Scheduler {
        let once = m.tokens.is_none();
        let all: Arc<Vec<(u32, u64, u32)>> = Arc::new(
            corpus
                .segments()
                .iter()
                .enumerate()
                .flat_map(|(p, s)| {
                    (0..s.segment.blocks().len() as u32).map(move |b| (p as u32, s.entry.id, b))
                })
                .collect(),
        );
        let cursors = m
            .components
            .iter()
            .zip(&r.selections)
            .map(|(c, sel)| {
                let matched = sel
                    .jobs()
                    .into_iter()
                    .map(|j| {
                        let first = corpus.segments()[j.part].segment.blocks()[j.block].first_doc;
                        (
                            (j.part as u32, j.block as u32),
                            j.docs.iter().map(|d| d + first).collect(),
                        )
                    })
                    .collect();
                let mut cur = Cursor {
                    all: all.clone(),
                    matched,
                    key: mix64(m.seed ^ xxhash_rust::xxh3::xxh3_64(c.name.as_bytes())),
                    epoch: 0,
                    order: Vec::new(),
                    next_window: 0,
                    window: Vec::new(),
                    pos: 0,
                    once,
                    done: false,
                    window_blocks: m.shuffle_window_blocks,
                };
                cur.start_epoch();
                cur
            })
            .collect::<Vec<_>>();
        Scheduler {
            emitted: vec![0; cursors.len()],
            cursors,
            shares: m.shares(),
            counts: r.counts.clone(),
            position: 0,
        }
    }

    /// Tokens scheduled so far.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Tokens scheduled per component.
    pub fn emitted(&self) -> &[u64] {
        &self.emitted
    }
}

impl Iterator for Scheduler {
    type Item = Scheduled;

    fn next(&mut self) -> Option<Scheduled> {
        loop {
            let c = (0..self.cursors.len())
                .filter(|&c| !self.cursors[c].done && !self.cursors[c].is_empty())
                .min_by(|&a, &b| {
                    let pa = self.emitted[a] as f64 / self.shares[a];
                    let pb = self.emitted[b] as f64 / self.shares[b];
                    pa.partial_cmp(&pb)
                        .unwrap_or(std::cmp::Ordering::Equal)
                        .then(a.cmp(&b))
                })?;
            if let Some((part, ord)) = self.cursors[c].next() {
                let tokens = self.counts[part as usize][ord as usize];
                let s = Scheduled {
                    component: c as u32,
                    part,
                    ord,
                    tokens,
                    start: self.position,
                };
                self.position += tokens as u64;
                self.emitted[c] += tokens as u64;
                return Some(s);
            }
        }
    }
}

/// A batch of packed sequences for the trainer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// `rows * seq_len` token ids, row-major.
    pub tokens: Vec<u32>,
    /// Rows in this batch.
    pub rows: usize,
    /// Tokens per row.
    pub seq_len: usize,
    /// Global sequence index of each row.
    pub sequences: Vec<u64>,
    /// Per row, the offsets where a document starts.
    pub doc_starts: Vec<Vec<u32>>,
}

#[cfg(feature = "candle")]
impl Batch {
    /// The batch as a `[rows, seq_len]` u32 tensor on `device`.
    pub fn to_tensor(
        &self,
        device: &candle_core::Device,
    ) -> candle_core::Result<candle_core::Tensor> {
        candle_core::Tensor::from_slice(&self.tokens, (self.rows, self.seq_len), device)
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
    pub by_component: std::collections::BTreeMap<String, u64>,
    /// Tokens per license.
    pub by_license: std::collections::BTreeMap<String, u64>,
    /// Tokens per source.
    pub by_source: std::collections::BTreeMap<String, u64>,
    /// Sum of emitted token ids (a cheap checksum).
    pub checksum: u64,
}

/// The engine behind [`Streamer`] and `corpusql stream`.
pub struct Engine {
    corpus: Corpus,
    mixture: Mixture,
    resolved: Resolved,
    /// See [`StreamState::selection`].
    selection: String,
    sched: std::iter::Peekable<Scheduler>,
    opts: StreamOptions,
    /// Global sequences end here (exclusive).
    end: u64,
    /// Sequences this rank will emit.
    total: u64,
    /// This rank's sequences already handed out.
    done: u64,
    cache: HashMap<(u32, u32), Arc<Block>>,
    cache_order: VecDeque<(u32, u32)>,
    cache_cap: usize,
    facets: Option<Vec<HashMap<String, Vec<u16>>>>,
    facet_names: Vec<Vec<String>>,
    emitted: Emitted,
    comp_tokens: Vec<u64>,
    facet_tokens: [HashMap<(u32, u16), u64>; 2],
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
    pub fn new(corpus: &Corpus, m: &Mixture, opts: StreamOptions) -> Result<Engine> {
        if opts.world == 0 || opts.rank >= opts.world {
            return Err(Error::Invalid(format!(
                "rank {} of world {} is not a valid rank",
                opts.rank, opts.world
            )));
        }
        let (plan, resolved) = mixture::plan(corpus, m)?;
        let end = plan.sequences;
        // A resume state may name any `next_sequence`; past the end is done.
        let first = opts.start.saturating_add(opts.rank);
        let mut total = if first < end {
            (end - first).div_ceil(opts.world)
        } else {
            0
        };
        if let Some(n) = opts.stop_after {
            total = total.min(n);
        }
        let selection = selection_fingerprint(corpus, &resolved);
        let sched = Scheduler::new(corpus, m, &resolved).peekable();
        let cache_cap = (m.components.len() * m.shuffle_window_blocks * 2).max(64);
        Ok(Engine {
            corpus: corpus.clone(),
            mixture: m.clone(),
            resolved,
            selection,
            sched,
            opts,
            end,
            total,
            done: 0,
            cache: HashMap::new(),
            cache_order: VecDeque::new(),
            cache_cap,
            facets: None,
            facet_names: Vec::new(),
            emitted: Emitted::default(),
            comp_tokens: vec![0; m.components.len()],
            facet_tokens: [HashMap::new(), HashMap::new()],
            pending: Vec::new(),
        })
    }

    /// Also attribute emitted tokens to licenses and sources (for reports).
    pub fn track_facets(&mut self) -> Result<()> {
        let mut per_seg = Vec::new();
        let mut names = Vec::new();
        for s in self.corpus.segments() {
            let mut m = HashMap::new();
            let mut seg_names = Vec::new();
            for field in ["license", "source"] {
                let mut col = vec![u16::MAX; s.segment.doc_count() as usize];
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
                        col[o as usize] = idx.min(u16::MAX as usize - 1) as u16;
                    }
                }
                m.insert(field.to_string(), col);
            }
            per_seg.push(m);
            names.push(seg_names);
        }
        self.facets = Some(per_seg);
        self.facet_names = names;
        Ok(())
    }

    /// Sequences this rank emits in total.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &crate::tokenize::Tokenizer {
        &self.resolved.tokenizer
    }

    /// What was emitted so far.
    pub fn emitted(&self) -> Emitted {
        let mut e = self.emitted.clone();
        for (c, n) in self.mixture.components.iter().zip(&self.comp_tokens) {
            if *n > 0 {
                e.by_component.insert(c.name.clone(), *n);
            }
        }
        for (i, out) in [&mut e.by_license, &mut e.by_source]
            .into_iter()
            .enumerate()
        {
            for (&(part, idx), &n) in &self.facet_tokens[i] {
                let v = if idx == u16::MAX {
                    "(none)".to_string()
                } else {
                    self.facet_names[part as usize][idx as usize].clone()
                };
                *out.entry(v).or_default() += n;
            }
        }
        e
    }

    /// The state after what was emitted so far.
    pub fn state(&self) -> StreamState {
        StreamState {
            version: STATE_VERSION,
            generation: self.corpus.generation(),
            mixture_hash: self.mixture.hash(),
            tokenizer: self.resolved.tokenizer.id(),
            seq_len: self.mixture.seq_len,
            next_sequence: self.opts.start + self.done * self.opts.world,
            selection: Some(self.selection.clone()),
        }
    }

    /// Refuses to resume from `st` unless it belongs to this stream: same
    /// mixture, tokenizer and sequence length, and the same segments and
    /// selected documents (or, for a version-1 state, the same generation).
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
        let first = self.opts.start + self.opts.rank;
        if s < first || !(s - first).is_multiple_of(self.opts.world) {
            return None;
        }
        let k = (s - first) / self.opts.world;
        (k >= k0 && k < k0 + rows as u64).then(|| (k - k0) as usize)
    }

    /// Global index of this rank's `k`-th sequence.
    fn global(&self, k: u64) -> u64 {
        self.opts.start + self.opts.rank + k * self.opts.world
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

    /// The next `rows` sequences of this rank (fewer at the end; `None` when done).
    pub fn next_batch(&mut self, rows: usize) -> Result<Option<Batch>> {
        if self.done >= self.total {
            return Ok(None);
        }
        let rows = rows.min((self.total - self.done) as usize);
        let l = self.mixture.seq_len as u64;
        let k0 = self.done;
        let seqs: Vec<u64> = (0..rows as u64).map(|k| self.global(k0 + k)).collect();
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
        if let crate::tokenize::Tokenizer::Bytes = tok {
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
        // Attribution: tokens of each document inside this batch's rows.
        for p in &self.pending {
            let (a, b) = (p.s.start, p.s.start + p.s.tokens as u64);
            for s in a / l..=(b - 1) / l {
                if self.row_of(s, k0, rows).is_none() {
                    continue;
                }
                let n = b.min((s + 1) * l) - a.max(s * l);
                self.comp_tokens[p.s.component as usize] += n;
                if let Some(f) = &self.facets {
                    for (i, field) in ["license", "source"].iter().enumerate() {
                        let idx = f[p.s.part as usize][*field][p.s.ord as usize];
                        *self.facet_tokens[i].entry((p.s.part, idx)).or_default() += n;
                    }
                }
            }
        }
        if let Some(r) = covered.iter().position(|&c| c != l) {
            return Err(Error::Invalid(format!(
                "internal: sequence {} was not filled ({} of {l} tokens)",
                seqs[r], covered[r]
            )));
        }
        self.emitted.sequences += rows as u64;
        self.emitted.tokens += rows as u64 * l;
        self.emitted.checksum += tokens.par_iter().map(|&t| t as u64).sum::<u64>();
        self.done += rows as u64;
        Ok(Some(Batch {
            tokens,
            rows,
            seq_len: l as usize,
            sequences: seqs,
            doc_starts,
        }))
    }

    /// Global sequences of the whole stream (all ranks).
    pub fn global_sequences(&self) -> u64 {
        self.end
    }
}

/// A library iterator of batches with a background prefetch thread.
pub struct Streamer {
    rx: std::sync::mpsc::Receiver<Result<Batch>>,
    handle: Option<std::thread::JoinHandle<Engine>>,
    received: u64,
    opts: StreamOptions,
}

impl Streamer {
    /// Streams `m` from `corpus` in batches of `batch` rows, prefetching
    /// `prefetch` batches on a background thread.
    pub fn new(
        corpus: &Corpus,
        m: &Mixture,
        opts: StreamOptions,
        batch: usize,
        prefetch: usize,
    ) -> Result<Streamer> {
        let mut engine = Engine::new(corpus, m, opts)?;
        let (tx, rx) = std::sync::mpsc::sync_channel(prefetch.max(1));
        let batch = batch.max(1);
        let handle = std::thread::spawn(move || {
            loop {
                match engine.next_batch(batch) {
                    Ok(Some(b)) => {
                        if tx.send(Ok(b)).is_err() {
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        break;
                    }
                }
            }
            engine
        });
        Ok(Streamer {
            rx,
            handle: Some(handle),
            received: 0,
            opts,
        })
    }

    /// Stops the background thread and returns the state after the
    /// batches received so far (prefetched ones not received are not counted).
    pub fn finish(mut self) -> Option<StreamState> {
        let h = self.handle.take()?;
        drop(std::mem::replace(
            &mut self.rx,
            std::sync::mpsc::sync_channel(1).1,
        ));
        crate::pool::help_while(|| !h.is_finished());
        let mut st = h.join().ok()?.state();
        st.next_sequence = self.opts.start + self.received * self.opts.world;
        Some(st)
    }
}

impl Iterator for Streamer {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Result<Batch>> {
        let b = if crate::pool::on_worker() {
            // The prefetch thread needs the pool this worker belongs to.
            loop {
                match self.rx.try_recv() {
                    Ok(b) => break b,
                    Err(std::sync::mpsc::TryRecvError::Disconnected) => return None,
                    Err(std::sync::mpsc::TryRecvError::Empty) => crate::pool::help_once(),
                }
            }
        } else {
            self.rx.recv().ok()?
        };
        if let Ok(b) = &b {
            self.received += b.rows as u64;
        }
        Some(b)
    }
}

/// One document behind a stretch of a sequence (what `corpusql trace` prints).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TraceHit {
    /// Global sequence index.
    pub sequence: u64,
    /// First token of the stretch, as an offset in the sequence.
    pub from: u64,
    /// One past its last token.
    pub to: u64,
    /// Offset of the stretch's first token inside the document's tokens.
    pub doc_offset: u64,
    /// Tokens of the document (end-of-document included).
    pub doc_tokens: u32,
    /// The component that scheduled the document.
    pub component: String,
    /// The document key.
    pub key: String,
    /// Its `license`, `source` and `lang` as ingested (when present), and
    /// the derived `license_id` and `license_class`.
    pub facets: std::collections::BTreeMap<String, serde_json::Value>,
}

/// The documents behind global sequence `sequence` of the stream of `m`
/// (only the one at token `offset`, when given): a replay of the schedule
/// from token counts, then one block read per document named.
pub fn trace(
    corpus: &Corpus,
    m: &Mixture,
    sequence: u64,
    offset: Option<u64>,
) -> Result<Vec<TraceHit>> {
    let (plan, resolved) = mixture::plan(corpus, m)?;
    if sequence >= plan.sequences {
        return Err(Error::Invalid(format!(
            "sequence {sequence} is beyond the stream, which has {} sequences",
            plan.sequences
        )));
    }
    let l = m.seq_len as u64;
    if offset.is_some_and(|k| k >= l) {
        return Err(Error::Invalid(format!(
            "offset must be below seq_len = {l}"
        )));
    }
    let (lo, hi) = match offset {
        Some(k) => (sequence * l + k, sequence * l + k + 1),
        None => (sequence * l, (sequence + 1) * l),
    };
    let mut hits = Vec::new();
    for s in Scheduler::new(corpus, m, &resolved) {
        let (a, b) = (s.start, s.start + s.tokens as u64);
        if a >= hi {
            break;
        }
        if b <= lo {
            continue;
        }
        let seg = &corpus.segments()[s.part as usize].segment;
        let bi = seg.block_of(s.ord);
        let block = seg.read_block(bi)?;
        let i = (s.ord - seg.blocks()[bi].first_doc) as usize;
        let mut json = Vec::new();
        block.write_json(i, &mut json);
        let record: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&json).unwrap_or_default();
        let lic_field = corpus.state().license_field();
        let mut facets: std::collections::BTreeMap<String, serde_json::Value> =
            [lic_field, "source", "lang"]
                .iter()
                .filter_map(|f| record.get(*f).map(|v| (f.to_string(), v.clone())))
                .collect();
        // The derived license facets, as queries and reports see them.
        let id = record
            .get(lic_field)
            .and_then(|v| v.as_str())
            .and_then(crate::license::normalize)
            .unwrap_or_else(|| crate::license::UNKNOWN.to_string());
        facets.insert(
            "license_class".into(),
            crate::license::class_of(&id).as_str().into(),
        );
        facets.insert("license_id".into(), id.into());
        let (x, y) = (a.max(lo), b.min(hi));
        hits.push(TraceHit {
            sequence,
            from: x - sequence * l,
            to: y - sequence * l,
            doc_offset: x - a,
            doc_tokens: s.tokens,
            component: m.components[s.component as usize].name.clone(),
            key: block.key(i).to_string(),
            facets,
        });
    }
    Ok(hits)
}
