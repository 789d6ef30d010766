//! The engine: turns the schedule into batches of packed sequences. For
//! each batch it places this rank's sequences ([`Schedule::place`]: the
//! component and the pieces of documents filling each), reads (in
//! parallel) only the blocks holding those documents, tokenizes them (in
//! parallel; a document spread over several sequences of a window is
//! tokenized once and kept until its window is passed) and copies the
//! pieces into rows of `seq_len`. Positions come from exact token counts
//! alone, so a rank never tokenizes a document that lies wholly in other
//! ranks' sequences. It also attributes the emitted tokens to components
//! (and, on request, to licenses and sources, and to document keys for
//! provenance).
//!
//! The engine is synchronous; [`super::stream::Stream`] runs it on a
//! prefetch thread.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use rayon::prelude::*;
use serde::Serialize;
use xxhash_rust::xxh3::Xxh3DefaultBuilder;

use super::mixture::{self, Mixture, Resolved, WeightChange};
use super::schedule::{Placed, Schedule, Shard, WorkerSplit};
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

/// Token buffers of batches the caller is done with ([`Stream::recycle`]),
/// for the engine's next batches: a batch's buffer is tens of MiB, and a
/// fresh one costs the kernel's zeroing of new pages and a clearing pass.
///
/// [`Stream::recycle`]: super::Stream::recycle
pub(crate) type Spares = Arc<std::sync::Mutex<Vec<Vec<u32>>>>;

/// Where emitted tokens are attributed to licenses and sources: the
/// snapshot whose facet columns are read, for the emitted documents only,
/// when the totals are asked for (a stream emits a small part of a large
/// corpus; reading every document's facets up front cost more than the
/// stream).
pub(crate) struct Facets {
    corpus: Corpus,
}

impl Facets {
    pub(crate) fn load(corpus: &Corpus) -> Result<Facets> {
        Ok(Facets {
            corpus: corpus.clone(),
        })
    }

    /// Tokens per value of `field` of the documents in `docs` (segment,
    /// ordinal -> tokens); `(none)` for documents without one.
    fn tally(&self, field: &str, docs: &HashMap<(u32, u32), u64>) -> BTreeMap<String, u64> {
        let mut parts: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
        for &(p, o) in docs.keys() {
            parts.entry(p).or_default().push(o);
        }
        let mut out: BTreeMap<String, u64> = BTreeMap::new();
        for (p, mut ords) in parts {
            ords.sort_unstable();
            let bm: roaring::RoaringBitmap = ords.iter().copied().collect();
            let Some(s) = self.corpus.segments().get(p as usize) else {
                continue;
            };
            let (values, rest) = match s.segment.split_by_values(field, &bm, true) {
                Ok(x) => x,
                Err(_) => (Vec::new(), bm.clone()),
            };
            for (v, sub) in values.into_iter().chain([("(none)".to_string(), rest)]) {
                let n: u64 = sub
                    .iter()
                    .map(|o| docs.get(&(p, o)).copied().unwrap_or(0))
                    .sum();
                if n > 0 {
                    *out.entry(v).or_default() += n;
                }
            }
        }
        out
    }
}

/// Running totals behind [`Emitted`]: what the batches counted so far hold.
#[derive(Default)]
pub(crate) struct Tally {
    sequences: u64,
    tokens: u64,
    checksum: u64,
    components: Vec<u64>,
    /// Tokens per (segment, ordinal), when facets are tracked.
    docs: HashMap<(u32, u32), u64>,
}

impl Tally {
    /// Counts `b`'s rows and tokens (and its documents' tokens, when facets
    /// are tracked).
    pub(crate) fn add(&mut self, b: &Batch, facets: Option<&Facets>) {
        self.sequences += b.rows as u64;
        self.tokens += (b.rows * b.seq_len) as u64;
        self.checksum = b
            .row_sums
            .iter()
            .fold(self.checksum, |a, &s| a.wrapping_add(s));
        for s in &b.spans {
            let c = s.component as usize;
            if self.components.len() <= c {
                self.components.resize(c + 1, 0);
            }
            self.components[c] += s.tokens;
            if facets.is_some() {
                *self.docs.entry((s.part, s.ord)).or_default() += s.tokens;
            }
        }
    }

    /// The totals, named.
    pub(crate) fn emitted(&self, m: &Mixture, facets: Option<&Facets>) -> Emitted {
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
            e.by_license = f.tally("license", &self.docs);
            e.by_source = f.tally("source", &self.docs);
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
    /// Weight changes in force (recorded in the state).
    changes: Vec<WeightChange>,
    sched: Schedule,
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
    /// Tokens (and, with provenance, keys) of the documents of the current
    /// windows, by (component, index in its stream).
    /// (xxh3: a lookup per piece of every row; SipHash showed in the W4
    /// profile.)
    docs: HashMap<(u32, u64), AtHand, Xxh3DefaultBuilder>,
    provenance: bool,
    /// Token buffers handed back by the stream.
    spares: Spares,
}

/// A document's tokens and, with provenance, its key.
type AtHand = (Tokens, Option<Arc<str>>);

/// A document's tokens (and key), or why it could not be had, with the
/// count the schedule expects: what a tokenizing job gives back.
type Encoded = ((u32, u64), Result<Tokens>, Option<Arc<str>>, usize);

/// A document's tokens, end-of-document included.
enum Tokens {
    /// Ids from a tokenizer, from the count pass or from stored ids.
    Ids(Arc<Vec<u32>>),
    /// The byte tokenizer: the text's bytes in a block, then EOS.
    Bytes(Arc<Block>, usize),
}

impl Tokens {
    /// Tokens held.
    fn len(&self) -> usize {
        match self {
            Tokens::Ids(v) => v.len(),
            Tokens::Bytes(block, i) => block.text_bytes(*i).len() + 1,
        }
    }

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
        Engine::with_changes(corpus, m, opts, Vec::new())
    }

    /// [`Engine::new`] with the weight changes `changes` in force (a resume
    /// state's, or the trainer's): refused unless each names components of
    /// `m` with at least one positive weight.
    pub fn with_changes(
        corpus: &Corpus,
        m: &Mixture,
        opts: EngineOptions,
        changes: Vec<WeightChange>,
    ) -> Result<Engine> {
        let mut e = Engine::build(corpus, m, opts)?;
        if !changes.is_empty() {
            e.set_weight_changes(changes)?;
        }
        Ok(e)
    }

    /// The engine without weight changes.
    fn build(corpus: &Corpus, m: &Mixture, opts: EngineOptions) -> Result<Engine> {
        let changes: Vec<WeightChange> = Vec::new();
        if opts.world == 0 || opts.rank >= opts.world {
            return Err(Error::Invalid(format!(
                "rank {} of world {} is not a valid rank",
                opts.rank, opts.world
            )));
        }
        let m = &m.bound(corpus)?;
        let (plan, resolved) = mixture::plan(corpus, m)?;
        let policy = plan.policy;
        let sched = Schedule::new(corpus, m, &resolved, &changes);
        let end = sched.end();
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
        let cache_cap = (m.components.len() * m.shuffle_window_blocks * 2).max(64);
        Ok(Engine {
            corpus: corpus.clone(),
            mixture: m.clone(),
            policy,
            resolved,
            selection,
            changes,
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
            docs: HashMap::default(),
            provenance: false,
            spares: Spares::default(),
        })
    }

    /// Puts the weight changes `changes` in force: validated, sorted, and
    /// the schedule replayed with them (the plan, queries and counts stay).
    /// The engine starts over from its resume point: call before a batch.
    pub fn set_weight_changes(&mut self, mut changes: Vec<WeightChange>) -> Result<()> {
        for ch in &changes {
            self.mixture.check_weights(&ch.weights).map_err(|e| {
                Error::Invalid(format!(
                    "weight change from sequence {}: {e}",
                    ch.from_sequence
                ))
            })?;
        }
        changes.sort_by_key(|c| c.from_sequence);
        self.sched = Schedule::new(&self.corpus, &self.mixture, &self.resolved, &changes);
        self.docs.clear();
        self.changes = changes;
        Ok(())
    }

    /// The token buffers this engine reuses (for a stream to hand back).
    pub(crate) fn spares(&self) -> Spares {
        self.spares.clone()
    }

    /// Takes its token buffers from `spares` (shared with a stream).
    pub(crate) fn set_spares(&mut self, spares: Spares) {
        self.spares = spares;
    }

    /// Also name the document of every piece of every row
    /// ([`Batch::pieces`] then carry keys): what `--provenance` writes.
    pub fn track_provenance(&mut self) {
        self.provenance = true;
    }

    /// The weight changes in force.
    pub fn weight_changes(&self) -> &[WeightChange] {
        &self.changes
    }

    /// Counts the first `done` sequences of this engine's share as handed
    /// out (they are not produced again): how a stream rebuilt with new
    /// weights carries on where it was.
    pub(crate) fn skip(&mut self, done: u64) {
        self.done = done.min(self.total);
    }

    /// Also attribute emitted tokens to licenses and sources (for reports).
    pub fn track_facets(&mut self) -> Result<()> {
        self.facets = Some(Arc::new(Facets::load(&self.corpus)?));
        Ok(())
    }

    /// Tracks facets with tables already loaded.
    pub(super) fn set_facets(&mut self, f: Arc<Facets>) {
        self.facets = Some(f);
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
            weight_changes: self.changes.clone(),
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
        let placed: Vec<Placed> = seqs
            .iter()
            .map(|&s| {
                self.sched.place(s).ok_or_else(|| {
                    Error::Invalid(format!("internal: sequence {s} lies past the schedule"))
                })
            })
            .collect::<Result<_>>()?;
        // The documents not yet at hand, once each.
        let mut need: Vec<(u32, u64, u32, u32, u32)> = Vec::new();
        let mut seen: std::collections::HashSet<_, Xxh3DefaultBuilder> = Default::default();
        for p in &placed {
            for x in &p.pieces {
                let k = (p.component, x.doc);
                if !self.docs.contains_key(&k) && seen.insert(k) {
                    need.push((p.component, x.doc, x.part, x.ord, x.doc_tokens));
                }
            }
        }
        // Ids the count pass kept need no block (unless keys are wanted).
        if !self.provenance {
            let kept = self.resolved.kept.clone();
            need.retain(|&(c, doc, part, ord, expected)| match kept.get(part, ord) {
                Some(v) if v.len() == expected as usize => {
                    self.docs.insert((c, doc), (Tokens::Ids(v.clone()), None));
                    false
                }
                _ => true,
            });
        }
        // Stored ids: one decompression per block's chunk, chunks in
        // parallel (with provenance the blocks are read for the keys and
        // the ids taken below).
        if !self.provenance && self.resolved.ids.iter().any(|x| x.is_some()) {
            let ids = &self.resolved.ids;
            let covered = |part: u32, ord: u32| {
                ids.get(part as usize)
                    .and_then(|x| x.as_ref())
                    .is_some_and(|x| x.covers(ord))
            };
            let (stored, rest): (Vec<_>, Vec<_>) =
                need.into_iter().partition(|x| covered(x.2, x.3));
            need = rest;
            // (component, document, ordinal, expected count) by (segment, block).
            type Wanted = Vec<(u32, u64, u32, u32)>;
            let mut groups: HashMap<(u32, usize), Wanted> = HashMap::new();
            for (c, doc, part, ord, expected) in stored {
                let b = self.corpus.segments()[part as usize].segment.block_of(ord);
                groups
                    .entry((part, b))
                    .or_default()
                    .push((c, doc, ord, expected));
            }
            let eos = self.resolved.tokenizer.eos();
            type Read = Vec<((u32, u64), Vec<u32>, u32)>;
            let read: Vec<Read> = groups
                .into_par_iter()
                .map(|((part, _), docs)| {
                    let Some(Some(f)) = ids.get(part as usize) else {
                        return Ok(Vec::new());
                    };
                    let ords: Vec<u32> = docs.iter().map(|d| d.2).collect();
                    let mut got = Vec::with_capacity(ords.len());
                    f.read_many(&ords, eos, &mut got)?;
                    Ok(docs
                        .into_iter()
                        .zip(got)
                        .map(|((c, doc, _, expected), v)| ((c, doc), v, expected))
                        .collect())
                })
                .collect::<Result<_>>()?;
            for (k, v, expected) in read.into_iter().flatten() {
                if v.len() != expected as usize {
                    return Err(Error::Invalid(format!(
                        "document token count changed ({} stored ids, {expected} counted): the token files are stale; delete the *.cqc and *.cqi files and rerun",
                        v.len()
                    )));
                }
                self.docs.insert(k, (Tokens::Ids(Arc::new(v)), None));
            }
        }
        // Decompress the blocks needed (in parallel), then tokenize.
        let mut wanted: Vec<(u32, u32)> = Vec::new();
        for &(_, _, part, ord, _) in &need {
            let seg = &self.corpus.segments()[part as usize].segment;
            let b = seg.block_of(ord) as u32;
            if !self.cache.contains_key(&(part, b)) && !wanted.contains(&(part, b)) {
                wanted.push((part, b));
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
        for &(c, doc, part, ord, expected) in &need {
            let seg = self.corpus.segments()[part as usize].segment.clone();
            let bi = seg.block_of(ord);
            let block = self.block(part, bi as u32)?;
            let local = (ord - seg.blocks()[bi].first_doc) as usize;
            jobs.push(((c, doc), block, local, expected as usize, part, ord));
        }
        let tok = &self.resolved.tokenizer;
        let eos = tok.eos();
        let provenance = self.provenance;
        let key_of = |block: &Block, i: usize| provenance.then(|| Arc::<str>::from(block.key(i)));
        if let Tokenizer::Bytes = tok {
            // Byte tokens are the text's bytes: packing reads them straight
            // from the block, with no intermediate ids and no re-validation.
            for (k, block, local, expected, _, _) in jobs {
                let n = block.text_bytes(local).len() + 1;
                if n != expected {
                    return Err(Error::Invalid(format!(
                        "document length changed ({n} byte tokens now, {expected} recorded): the corpus snapshot is inconsistent"
                    )));
                }
                let key = key_of(&block, local);
                self.docs.insert(k, (Tokens::Bytes(block, local), key));
            }
        } else {
            let kept = &self.resolved.kept;
            let stored = &self.resolved.ids;
            let encoded: Vec<Encoded> = jobs
                .par_iter()
                .map(|(k, block, local, expected, part, ord)| {
                    if let Some(v) = kept.get(*part, *ord) {
                        let t = Ok(Tokens::Ids(v.clone()));
                        return (*k, t, key_of(block, *local), *expected);
                    }
                    if let Some(Some(f)) = stored.get(*part as usize) {
                        let mut v = Vec::new();
                        match f.read(*ord, eos, &mut v) {
                            Ok(true) => {
                                return (
                                    *k,
                                    Ok(Tokens::Ids(Arc::new(v))),
                                    key_of(block, *local),
                                    *expected,
                                )
                            }
                            Ok(false) => {}
                            Err(e) => return (*k, Err(e), None, *expected),
                        }
                    }
                    let text = block.text(*local);
                    let mut v = Vec::with_capacity(text.len() / 3 + 1);
                    let r = tok.encode(text, &mut v).map(|_| {
                        v.push(eos);
                        Tokens::Ids(Arc::new(v))
                    });
                    (*k, r, key_of(block, *local), *expected)
                })
                .collect();
            for (k, r, key, expected) in encoded {
                let t = r?;
                let n = t.len();
                if n != expected {
                    return Err(Error::Invalid(format!(
                        "document token count changed ({n} now, {expected} recorded): the token-count file is stale; delete the *.cqc files and rerun"
                    )));
                }
                self.docs.insert(k, (t, key));
            }
        }
        // Pack, rows in parallel: each row copies its pieces. A recycled
        // buffer of the right length is not cleared: every row is checked
        // below to be wholly covered by its pieces.
        let spare = self.spares.lock().ok().and_then(|mut s| s.pop());
        let mut tokens = spare.unwrap_or_default();
        if tokens.len() != rows * l as usize {
            tokens.clear();
            tokens.resize(rows * l as usize, 0);
        }
        let docs = &self.docs;
        let filled: Vec<(u64, Vec<u32>, u64)> = tokens
            .par_chunks_mut(l as usize)
            .zip(placed.par_iter())
            .map(|(row, p)| {
                let mut covered = 0u64;
                let mut starts = Vec::new();
                for x in &p.pieces {
                    let Some((t, _)) = docs.get(&(p.component, x.doc)) else {
                        continue;
                    };
                    let at = x.at as usize;
                    t.copy_into(
                        &mut row[at..at + x.len as usize],
                        x.doc_offset as usize,
                        eos,
                    );
                    covered += x.len as u64;
                    if x.doc_offset == 0 {
                        starts.push(x.at);
                    }
                }
                let sum = row.iter().map(|&t| u64::from(t)).sum::<u64>();
                (covered, starts, sum)
            })
            .collect();
        let mut covered = Vec::with_capacity(rows);
        let mut doc_starts = Vec::with_capacity(rows);
        let mut row_sums = Vec::with_capacity(rows);
        for (c, s, sum) in filled {
            covered.push(c);
            doc_starts.push(s);
            row_sums.push(sum);
        }
        if let Some(r) = covered.iter().position(|&c| c != l) {
            return Err(Error::Invalid(format!(
                "internal: sequence {} was not filled ({} of {l} tokens)",
                seqs[r], covered[r]
            )));
        }
        // Attribution: each piece of each row.
        let mut spans = Vec::new();
        for (row, p) in placed.iter().enumerate() {
            for x in &p.pieces {
                spans.push(Span {
                    row,
                    component: p.component,
                    part: x.part,
                    ord: x.ord,
                    tokens: x.len as u64,
                    doc_offset: x.doc_offset as u64,
                    key: self
                        .docs
                        .get(&(p.component, x.doc))
                        .and_then(|(_, k)| k.clone()),
                });
            }
        }
        // Documents no later sequence can hold.
        let sched = &self.sched;
        self.docs
            .retain(|&(c, doc), _| doc >= sched.first_kept(c as usize));
        self.done += rows as u64;
        let batch = Batch {
            tokens,
            rows,
            seq_len: l as usize,
            components: placed.iter().map(|p| p.component).collect(),
            locals: placed.iter().map(|p| p.local).collect(),
            sequences: seqs,
            doc_starts,
            spans,
            row_sums,
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
        let mut sched = Schedule::new(&corpus, &m, &resolved, &[]);
        for s in 0..16 {
            let p = sched.place(s).unwrap();
            let x = p.pieces[0];
            let seg = &corpus.segments()[x.part as usize].segment;
            let bi = seg.block_of(x.ord);
            let b = seg.read_block(bi).unwrap();
            let key = b
                .key((x.ord - seg.blocks()[bi].first_doc) as usize)
                .to_string();
            got.push((p.component, p.local, key, x.doc_offset, p.pieces.len()));
        }
        let want: Vec<(u32, u64, String, u32, usize)> = [
            (0, 0, "d0432", 0, 1),
            (1, 250, "d0193", 467, 1),
            (0, 23, "d0177", 467, 1),
            (1, 481, "d0596", 741, 1),
            (0, 800, "d0267", 362, 1),
            (0, 77, "d0396", 590, 1),
            (1, 820, "d0229", 399, 1),
            (0, 333, "d0318", 255, 1),
            (1, 370, "d0241", 1047, 1),
            (0, 625, "d0264", 193, 1),
            (0, 940, "d0249", 103, 1),
            (1, 211, "d0475", 434, 1),
            (0, 215, "d0225", 617, 1),
            (1, 573, "d0190", 842, 1),
            (0, 642, "d0300", 255, 1),
            (0, 962, "d0414", 92, 1),
        ]
        .into_iter()
        .map(|(c, j, k, o, n)| (c, j, k.to_string(), o, n))
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
        assert_eq!(format!("{:016x}", h.digest()), "cefb20574e0781e9");
        let st = e.state();
        assert_eq!(st.mixture_hash, "ebe82b8f3dfe1f67");
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
