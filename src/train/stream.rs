//! The public streamer: [`Stream::open`] on a corpus and a mixture, then
//! [`Stream::next_batch`] until `None`, with [`Stream::state`] to save a
//! resumable position at any point. The engine runs on a background
//! prefetch thread a few batches ahead of the caller; waiting for it on a
//! rayon pool worker runs the pool's work meanwhile (see `crate::pool`), so
//! a one-thread pool (`--threads 1`, `taskset -c 0`, a DataLoader worker)
//! never deadlocks.
//!
//! The stream applies the corpus policy (`policy.toml`) to the mixture:
//! documents of held-back license classes are never streamed unless
//! [`StreamOptions::override_policy`] says so, and [`Stream::policy`] tells
//! what was held back (or let through).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::engine::{Emitted, Engine, EngineOptions, Facets, Tally};
use super::mixture::Mixture;
use super::schedule::{Shard, WorkerSplit};
use super::state::StreamState;
use crate::corpus::Corpus;
use crate::error::{Error, Result};
use crate::policy::PolicyOutcome;
use crate::tokenize::Tokenizer;

/// How to open a [`Stream`].
#[derive(Debug, Clone, PartialEq)]
pub struct StreamOptions {
    /// This process's rank, below `world`.
    pub rank: u64,
    /// Number of data-parallel ranks (at least 1). Global sequence `s`
    /// (counted from the resume point) goes to rank `s mod world`.
    pub world: u64,
    /// Continue from this state (refused with [`Error::ResumeMismatch`]
    /// unless it was written by the same stream).
    pub resume: Option<StreamState>,
    /// Emit at most this many sequences (of this rank).
    pub stop_after: Option<u64>,
    /// Batches computed ahead on the background thread; 0 computes each
    /// batch in [`Stream::next_batch`], on the caller's thread.
    pub prefetch: usize,
    /// Stream documents the corpus policy holds back (reported by
    /// [`Stream::policy`]).
    pub override_policy: bool,
    /// Attribute the emitted tokens to licenses and sources too
    /// ([`Stream::emitted`]); costs one pass over the facet columns.
    pub track_facets: bool,
    /// This worker's part of the rank's sequences, for a rank read by
    /// several processes (DataLoader workers); the whole rank by default.
    /// [`Stream::state`] is the rank's position only for a whole rank.
    pub split: WorkerSplit,
    /// Name the document of every piece of every row ([`Batch::pieces`]
    /// carry keys); costs a key lookup per document.
    pub provenance: bool,
}

impl Default for StreamOptions {
    fn default() -> Self {
        StreamOptions {
            rank: 0,
            world: 1,
            resume: None,
            stop_after: None,
            prefetch: 2,
            override_policy: false,
            track_facets: false,
            split: WorkerSplit::default(),
            provenance: false,
        }
    }
}

/// Tokens of one document inside one row of a batch: what the row holds,
/// for attribution and provenance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    /// Row of the batch.
    pub row: usize,
    /// Component index (in the mixture's order).
    pub component: u32,
    /// Segment index of the document in the snapshot.
    pub part: u32,
    /// Its ordinal in the segment.
    pub ord: u32,
    /// Tokens of the document in the row.
    pub tokens: u64,
    /// Offset of the first of them in the document's tokens.
    pub doc_offset: u64,
    /// The document's key, when the stream tracks provenance
    /// ([`StreamOptions::provenance`]).
    pub key: Option<Arc<str>>,
}

/// A batch of packed sequences: `rows` rows of `seq_len` token ids each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub(super) tokens: Vec<u32>,
    pub(super) rows: usize,
    pub(super) seq_len: usize,
    pub(super) sequences: Vec<u64>,
    pub(super) components: Vec<u32>,
    pub(super) locals: Vec<u64>,
    pub(super) doc_starts: Vec<Vec<u32>>,
    pub(super) spans: Vec<Span>,
    /// Each row's sum of ids (wrapping), taken while packing: the stream's
    /// checksum without another pass over the tokens.
    pub(super) row_sums: Vec<u64>,
}

impl Batch {
    /// The `rows * seq_len` token ids, row-major.
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// The token ids, row-major, without a copy.
    pub fn into_tokens(self) -> Vec<u32> {
        self.tokens
    }

    /// Row `i` (`None` past the last row).
    pub fn row(&self, i: usize) -> Option<&[u32]> {
        (i < self.rows).then(|| &self.tokens[i * self.seq_len..(i + 1) * self.seq_len])
    }

    /// Per row, the offsets in the row where a document starts (a document
    /// continued from the previous row has no offset).
    pub fn document_starts(&self) -> &[Vec<u32>] {
        &self.doc_starts
    }

    /// Per row, its global sequence index.
    pub fn sequences(&self) -> &[u64] {
        &self.sequences
    }

    /// Per row, the component (index in the mixture's components) it comes
    /// from: every sequence belongs to one component, for per-component loss.
    pub fn components(&self) -> &[u32] {
        &self.components
    }

    /// Per row, the component's own sequence it is: a component's
    /// documents, end to end, cut into sequences of `seq_len`, are its
    /// sequences `0, 1, 2, ...` (shuffled within windows of
    /// `shuffle_window_sequences` in the stream).
    pub fn component_sequences(&self) -> &[u64] {
        &self.locals
    }

    /// The documents' pieces of every row, in row order and, inside a row,
    /// in token order: their tokens add up to `rows * seq_len`.
    pub fn pieces(&self) -> &[Span] {
        &self.spans
    }

    /// Rows in this batch.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Tokens per row.
    pub fn seq_len(&self) -> usize {
        self.seq_len
    }

    /// Moves rows `at..` into a new batch.
    fn split_off(&mut self, at: usize) -> Batch {
        let at = at.min(self.rows);
        let (keep, rest): (Vec<Span>, Vec<Span>) = self.spans.drain(..).partition(|s| s.row < at);
        self.spans = keep;
        let tail = Batch {
            tokens: self.tokens.split_off(at * self.seq_len),
            rows: self.rows - at,
            seq_len: self.seq_len,
            sequences: self.sequences.split_off(at),
            components: self.components.split_off(at),
            locals: self.locals.split_off(at),
            doc_starts: self.doc_starts.split_off(at),
            row_sums: self.row_sums.split_off(at),
            spans: rest
                .into_iter()
                .map(|s| Span {
                    row: s.row - at,
                    ..s
                })
                .collect(),
        };
        self.rows = at;
        tail
    }

    /// Appends the rows of `other` (of the same `seq_len`).
    fn append(&mut self, other: Batch) {
        let base = self.rows;
        self.tokens.extend(other.tokens);
        self.sequences.extend(other.sequences);
        self.components.extend(other.components);
        self.locals.extend(other.locals);
        self.doc_starts.extend(other.doc_starts);
        self.row_sums.extend(other.row_sums);
        self.spans.extend(other.spans.into_iter().map(|s| Span {
            row: s.row + base,
            ..s
        }));
        self.rows += other.rows;
    }
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

/// Where batches come from.
enum Source {
    /// The engine, not (yet) on a thread: with prefetch, until the first
    /// batch is asked for (its size sets the thread's batch size).
    Here(Box<Engine>),
    /// The prefetch thread and its queue.
    Thread {
        rx: Receiver<Result<Batch>>,
        handle: JoinHandle<()>,
    },
    /// The engine is done.
    Ended,
    /// A batch failed; the stream cannot go on.
    Failed,
}

/// A stream of packed token sequences (see the [module](self) doc).
pub struct Stream {
    source: Source,
    /// Rows received but not handed out yet (the caller asked for fewer).
    carry: Option<Batch>,
    /// The batch size the prefetch thread computes: the latest asked for.
    want: Arc<AtomicUsize>,
    prefetch: usize,
    shard: Shard,
    /// Rows handed out.
    done: u64,
    total: u64,
    global: u64,
    template: StreamState,
    tokenizer: Tokenizer,
    mixture: Mixture,
    policy: PolicyOutcome,
    facets: Option<Arc<Facets>>,
    tally: Tally,
    /// The pool the prefetch thread's work runs in (rayon's global pool
    /// when `None`).
    pool: Option<Arc<rayon::ThreadPool>>,
    /// Token buffers handed back ([`Stream::recycle`]) for the engine.
    spares: super::engine::Spares,
    /// What a new engine needs (after a weight change).
    corpus: Corpus,
    engine_opts: EngineOptions,
    provenance: bool,
}

impl Stream {
    /// Runs the stream's parallel work (the prefetch thread's batches and
    /// the tally of what was handed out) in `pool` instead of rayon's
    /// global pool. A process that forks (DataLoader workers) gives each
    /// process its own pool, since a pool's threads do not cross a fork.
    /// Call before the first batch, and call [`Stream::next_batch`] from
    /// outside the pool: a pool worker blocked on the prefetch thread could
    /// hold, deeper in its stack, the very work that thread waits for.
    pub fn in_pool(mut self, pool: Arc<rayon::ThreadPool>) -> Stream {
        self.pool = Some(pool);
        self
    }

    /// Opens the stream of mixture `m` on `corpus`: plans it (refusing bad
    /// plans), checks `opts.resume` against it and prepares the engine. No
    /// batch is computed before the first [`Stream::next_batch`].
    pub fn open(corpus: &Corpus, m: &Mixture, opts: StreamOptions) -> Result<Stream> {
        let m = &m.clone().under_policy(corpus.dir(), opts.override_policy)?;
        let start = opts.resume.as_ref().map_or(0, |s| s.next_sequence);
        let changes = opts
            .resume
            .as_ref()
            .map(|s| s.weight_changes.clone())
            .unwrap_or_default();
        let engine_opts = EngineOptions {
            rank: opts.rank,
            world: opts.world,
            start,
            stop_after: opts.stop_after,
            split: opts.split,
        };
        let mut engine = Engine::new(corpus, m, engine_opts)?;
        if let Some(st) = &opts.resume {
            // Checked before the weight changes it carries are applied.
            engine.check_resume(st)?;
        }
        if !changes.is_empty() {
            engine.set_weight_changes(changes)?;
        }
        if opts.track_facets {
            engine.track_facets()?;
        }
        if opts.provenance {
            engine.track_provenance();
        }
        Ok(Stream {
            corpus: corpus.clone(),
            engine_opts,
            provenance: opts.provenance,
            carry: None,
            want: Arc::new(AtomicUsize::new(1)),
            prefetch: opts.prefetch,
            shard: engine.shard(),
            done: 0,
            total: engine.total(),
            global: engine.global_sequences(),
            template: engine.state(),
            tokenizer: engine.tokenizer().clone(),
            mixture: engine.mixture().clone(),
            policy: engine.policy().clone(),
            facets: engine.facets(),
            spares: engine.spares(),
            tally: Tally::default(),
            pool: None,
            source: Source::Here(Box::new(engine)),
        })
    }

    /// The next `rows` sequences of this rank (fewer at the end), or `None`
    /// when the stream is done. `rows` may change from call to call.
    pub fn next_batch(&mut self, rows: usize) -> Result<Option<Batch>> {
        if rows == 0 {
            return Err(Error::Invalid("a batch needs at least one row".into()));
        }
        let left = self.total - self.done;
        if left == 0 {
            return Ok(None);
        }
        let rows = rows.min(usize::try_from(left).unwrap_or(usize::MAX));
        self.want.store(rows, Ordering::Relaxed);
        let mut out = match self.carry.take() {
            Some(b) => b,
            None => match self.receive()? {
                Some(b) => b,
                None => return Ok(None),
            },
        };
        while out.rows < rows {
            match self.receive()? {
                Some(b) => out.append(b),
                None => break,
            }
        }
        if out.rows > rows {
            self.carry = Some(out.split_off(rows));
        }
        self.done += out.rows as u64;
        let (tally, facets) = (&mut self.tally, self.facets.as_deref());
        match &self.pool {
            Some(p) => p.install(|| tally.add(&out, facets)),
            None => tally.add(&out, facets),
        }
        Ok(Some(out))
    }

    /// One batch from the engine (here or on its thread).
    fn receive(&mut self) -> Result<Option<Batch>> {
        let rows = self.want.load(Ordering::Relaxed);
        if let Source::Here(engine) = &mut self.source {
            if self.prefetch == 0 {
                return match engine.next_batch(rows) {
                    Ok(Some(b)) => Ok(Some(b)),
                    Ok(None) => {
                        self.source = Source::Ended;
                        Ok(None)
                    }
                    Err(e) => {
                        self.source = Source::Failed;
                        Err(e)
                    }
                };
            }
            self.start_thread()?;
        }
        let got = match &self.source {
            Source::Here(_) | Source::Ended => return Ok(None),
            Source::Failed => {
                return Err(Error::Invalid(
                    "the stream stopped at an earlier error".into(),
                ))
            }
            Source::Thread { rx, .. } => {
                if crate::pool::on_worker() {
                    // The prefetch thread needs the pool this worker belongs to.
                    loop {
                        match rx.try_recv() {
                            Ok(b) => break Some(b),
                            Err(TryRecvError::Disconnected) => break None,
                            Err(TryRecvError::Empty) => crate::pool::help_once(),
                        }
                    }
                } else {
                    rx.recv().ok()
                }
            }
        };
        match got {
            Some(Ok(b)) => Ok(Some(b)),
            Some(Err(e)) => {
                self.stop();
                self.source = Source::Failed;
                Err(e)
            }
            // The thread ended: the stream is done, unless it panicked.
            None => {
                if self.stop() {
                    Ok(None)
                } else {
                    self.source = Source::Failed;
                    Err(Error::Invalid(
                        "internal: the stream's prefetch thread panicked".into(),
                    ))
                }
            }
        }
    }

    /// Moves the engine onto the prefetch thread.
    fn start_thread(&mut self) -> Result<()> {
        let Source::Here(mut engine) = std::mem::replace(&mut self.source, Source::Failed) else {
            return Ok(());
        };
        let (tx, rx) = std::sync::mpsc::sync_channel(self.prefetch.max(1));
        let want = self.want.clone();
        let pool = self.pool.clone();
        let handle = std::thread::Builder::new()
            .name("corpusql-stream".into())
            .spawn(move || loop {
                let rows = want.load(Ordering::Relaxed).max(1);
                let got = match &pool {
                    Some(p) => p.install(|| engine.next_batch(rows)),
                    None => engine.next_batch(rows),
                };
                let msg = match got {
                    Ok(Some(b)) => Ok(b),
                    Ok(None) => break,
                    Err(e) => Err(e),
                };
                let stop = msg.is_err();
                if tx.send(msg).is_err() || stop {
                    break;
                }
            })
            .map_err(|e| {
                Error::Invalid(format!("cannot start the stream's prefetch thread: {e}"))
            })?;
        self.source = Source::Thread { rx, handle };
        Ok(())
    }

    /// Stops the prefetch thread (if any) and waits for it; false if it had
    /// panicked.
    fn stop(&mut self) -> bool {
        match std::mem::replace(&mut self.source, Source::Ended) {
            Source::Thread { rx, handle } => {
                // Dropping the queue makes the thread's next send fail.
                drop(rx);
                crate::pool::help_while(|| !handle.is_finished());
                handle.join().is_ok()
            }
            other => {
                self.source = other;
                true
            }
        }
    }

    /// The state after the batches handed out so far (batches computed ahead
    /// but not handed out are not counted): save it, and pass it as
    /// [`StreamOptions::resume`] to continue after them.
    pub fn state(&self) -> StreamState {
        StreamState {
            next_sequence: self.shard.next_sequence(self.done),
            ..self.template.clone()
        }
    }

    /// Changes the components' weights from global sequence `from_sequence`
    /// to the end of the phase it falls in (online mixing, DoReMi / ADO
    /// style; a component left out of `weights` gets none). Every rank
    /// calls it with the same arguments. `from_sequence` must not be below
    /// the state's `next_sequence` (the point every rank has reached; for a
    /// worker of a rank, past its last sequence handed out). The change is
    /// recorded in [`Stream::state`], so a resume from any later state
    /// replays it; batches computed ahead are dropped and computed again.
    pub fn set_weights(
        &mut self,
        weights: std::collections::BTreeMap<String, f64>,
        from_sequence: u64,
    ) -> Result<()> {
        let floor = if self.shard.split.workers == 1 {
            self.shard.next_sequence(self.done)
        } else if self.done == 0 {
            self.shard.start
        } else {
            self.shard.global(self.done - 1) + 1
        };
        if from_sequence < floor {
            return Err(Error::Invalid(format!(
                "cannot change the weights from sequence {from_sequence}: this stream has reached sequence {floor}; give a sequence at or after it"
            )));
        }
        self.mixture
            .check_weights(&weights)
            .map_err(|e| Error::Invalid(format!("set_weights: {e}")))?;
        let mut changes = self.template.weight_changes.clone();
        changes.retain(|c| c.from_sequence != from_sequence);
        changes.push(super::mixture::WeightChange {
            from_sequence,
            weights,
        });
        changes.sort_by_key(|c| c.from_sequence);
        if let Source::Here(engine) = &mut self.source {
            // Not started on its thread yet (or no prefetch): replay only
            // the schedule.
            engine.set_weight_changes(changes.clone())?;
            engine.skip(self.done);
        } else {
            // The engine went with the prefetch thread: a new one.
            let mut engine = Engine::with_changes(
                &self.corpus,
                &self.mixture,
                self.engine_opts,
                changes.clone(),
            )?;
            engine.skip(self.done);
            engine.set_spares(self.spares.clone());
            if let Some(f) = &self.facets {
                engine.set_facets(f.clone());
            }
            if self.provenance {
                engine.track_provenance();
            }
            self.stop();
            self.source = Source::Here(Box::new(engine));
        }
        self.carry = None;
        self.template.weight_changes = changes;
        Ok(())
    }

    /// Hands back a batch the caller is done with, so that its token buffer
    /// is reused for a later batch instead of allocating and clearing a new
    /// one (a few are kept). Optional: dropping the batch is fine.
    pub fn recycle(&self, batch: Batch) {
        if let Ok(mut s) = self.spares.lock() {
            if s.len() < 4 {
                s.push(batch.tokens);
            }
        }
    }

    /// What the batches handed out so far hold: sequences, tokens and their
    /// checksum, tokens per component (and per license and source with
    /// [`StreamOptions::track_facets`]).
    pub fn emitted(&self) -> Emitted {
        self.tally.emitted(&self.mixture, self.facets.as_deref())
    }

    /// Sequences this rank emits in all (after the resume point, at most
    /// `stop_after`).
    pub fn total_sequences(&self) -> u64 {
        self.total
    }

    /// Sequences of this rank handed out so far.
    pub fn emitted_sequences(&self) -> u64 {
        self.done
    }

    /// Global sequences of the whole stream (all ranks, from the start).
    pub fn global_sequences(&self) -> u64 {
        self.global
    }

    /// The first global sequence of this run (the resume point, or 0).
    pub fn start_sequence(&self) -> u64 {
        self.shard.start
    }

    /// Whether batches are computed on a prefetch thread (`prefetch > 0`).
    pub fn prefetches(&self) -> bool {
        self.prefetch > 0
    }

    /// Tokens per sequence.
    pub fn seq_len(&self) -> usize {
        self.mixture.seq_len
    }

    /// The tokenizer (its `vocab_size` picks the token encoding).
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// What the corpus policy holds back from this stream (or lets
    /// through, with [`StreamOptions::override_policy`]).
    pub fn policy(&self) -> &PolicyOutcome {
        &self.policy
    }

    /// The mixture streamed (bound to the corpus policy).
    pub fn mixture(&self) -> &Mixture {
        &self.mixture
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing;
    use super::*;
    use crate::error::ResumeField;

    fn mix() -> Mixture {
        Mixture::parse(testing::MIX).unwrap()
    }

    /// Rows of the stream, asking for batches of the sizes in `sizes`
    /// (cycled).
    fn rows(s: &mut Stream, sizes: &[usize]) -> Vec<Vec<u32>> {
        let mut out = Vec::new();
        for &n in sizes.iter().cycle() {
            let Some(b) = s.next_batch(n).unwrap() else {
                break;
            };
            assert!(b.rows() <= n);
            assert_eq!(b.tokens().len(), b.rows() * b.seq_len());
            assert_eq!(b.document_starts().len(), b.rows());
            assert!(b.row(b.rows()).is_none());
            out.extend((0..b.rows()).map(|r| b.row(r).unwrap().to_vec()));
            // Handed back: later batches reuse (and must wholly overwrite)
            // its buffer; the engine's own rows below never reuse one.
            s.recycle(b);
        }
        out
    }

    fn engine_rows(corpus: &Corpus, o: EngineOptions) -> (Vec<Vec<u32>>, Emitted) {
        let mut e = Engine::new(corpus, &mix(), o).unwrap();
        let mut out = Vec::new();
        while let Some(b) = e.next_batch(64).unwrap() {
            out.extend((0..b.rows()).map(|r| b.row(r).unwrap().to_vec()));
        }
        (out, e.emitted())
    }

    #[test]
    fn any_batch_sizes_and_prefetch_give_the_engine_stream() {
        let (_dir, corpus) = testing::corpus();
        let (want, emitted) = engine_rows(&corpus, EngineOptions::default());
        for prefetch in [0, 1, 3] {
            for sizes in [&[64][..], &[1, 100, 7, 7, 300], &[5000]] {
                let opts = StreamOptions {
                    prefetch,
                    ..StreamOptions::default()
                };
                let mut s = Stream::open(&corpus, &mix(), opts).unwrap();
                assert_eq!(s.total_sequences(), want.len() as u64);
                assert_eq!(s.global_sequences(), want.len() as u64);
                assert_eq!(rows(&mut s, sizes), want, "{prefetch} {sizes:?}");
                assert_eq!(s.emitted(), emitted);
                assert_eq!(s.emitted_sequences(), want.len() as u64);
                assert!(s.next_batch(3).unwrap().is_none());
            }
        }
    }

    #[test]
    fn state_counts_only_what_was_handed_out_and_resumes() {
        let (_dir, corpus) = testing::corpus();
        let (want, _) = engine_rows(&corpus, EngineOptions::default());
        let mut s = Stream::open(&corpus, &mix(), StreamOptions::default()).unwrap();
        let first = rows(&mut s, &[4]);
        assert_eq!(first, want);
        let mut s = Stream::open(&corpus, &mix(), StreamOptions::default()).unwrap();
        let a = s.next_batch(40).unwrap().unwrap();
        let b = s.next_batch(3).unwrap().unwrap();
        assert_eq!(b.sequences(), &[40, 41, 42]);
        // The thread has computed ahead; the state counts 43 sequences.
        let st = s.state();
        assert_eq!(st.next_sequence, 43);
        let partial = s.emitted();
        assert_eq!(partial.sequences, 43);
        assert_eq!(partial.tokens, 43 * 64);
        let sum: u64 = a.tokens().iter().chain(b.tokens()).map(|&t| t as u64).sum();
        assert_eq!(partial.checksum, sum);
        drop(s);
        // Resuming continues after them, on any number of ranks.
        let opts = StreamOptions {
            resume: Some(st.clone()),
            ..StreamOptions::default()
        };
        let mut r = Stream::open(&corpus, &mix(), opts).unwrap();
        assert_eq!(r.start_sequence(), 43);
        assert_eq!(rows(&mut r, &[100]), want[43..].to_vec());
        let opts = StreamOptions {
            resume: Some(st),
            rank: 1,
            world: 2,
            stop_after: Some(3),
            ..StreamOptions::default()
        };
        let mut r = Stream::open(&corpus, &mix(), opts).unwrap();
        assert_eq!(
            rows(&mut r, &[2]),
            vec![want[44].clone(), want[46].clone(), want[48].clone()]
        );
        assert_eq!(r.state().next_sequence, 43 + 3 * 2);
    }

    #[test]
    fn a_foreign_state_is_refused_by_name() {
        let (_dir, corpus) = testing::corpus();
        let mut s = Stream::open(&corpus, &mix(), StreamOptions::default()).unwrap();
        s.next_batch(2).unwrap();
        let mut st = s.state();
        st.seq_len = 32;
        let opts = StreamOptions {
            resume: Some(st),
            ..StreamOptions::default()
        };
        match Stream::open(&corpus, &mix(), opts) {
            Err(Error::ResumeMismatch { what, .. }) => assert_eq!(what, ResumeField::SeqLen),
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("resumed"),
        }
        let mut m = mix();
        m.seed = 1;
        let opts = StreamOptions {
            resume: Some(s.state()),
            ..StreamOptions::default()
        };
        match Stream::open(&corpus, &m, opts) {
            Err(Error::ResumeMismatch { what, .. }) => assert_eq!(what, ResumeField::Mixture),
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("resumed"),
        }
        assert!(s.next_batch(0).is_err());
    }

    /// A weight change gives the same rows whether the engine is on its
    /// prefetch thread (rebuilt) or not (its schedule replayed).
    #[test]
    fn set_weights_is_the_same_with_and_without_prefetch() {
        let (_dir, corpus) = testing::corpus();
        let run = |prefetch| {
            let mut out = Vec::new();
            let mut s = Stream::open(
                &corpus,
                &mix(),
                StreamOptions {
                    prefetch,
                    ..StreamOptions::default()
                },
            )
            .unwrap();
            let b = s.next_batch(30).unwrap().unwrap();
            out.extend((0..b.rows()).map(|r| b.row(r).unwrap().to_vec()));
            let w = [("rest".to_string(), 1.0)].into_iter().collect();
            s.set_weights(w, 40).unwrap();
            let b = s.next_batch(30).unwrap().unwrap();
            assert!(b.components()[10..].iter().all(|&c| c == 1));
            out.extend((0..b.rows()).map(|r| b.row(r).unwrap().to_vec()));
            assert_eq!(s.state().weight_changes.len(), 1);
            out
        };
        let (with, without) = (run(2), run(0));
        assert_eq!(with.len(), 60);
        assert_eq!(with, without);
    }

    /// A stream can move to another thread (a DataLoader worker, a Python
    /// object).
    #[test]
    fn streams_and_batches_are_send() {
        fn send<T: Send>() {}
        send::<Stream>();
        send::<Batch>();
        send::<StreamState>();
    }

    /// On the only worker of a one-thread pool (`--threads 1`, `taskset -c
    /// 0`), the prefetch thread needs that worker: receiving and dropping
    /// must run the pool's work instead of blocking.
    #[test]
    fn a_one_thread_pool_does_not_deadlock() {
        let (_dir, corpus) = testing::corpus();
        let (want, _) = engine_rows(&corpus, EngineOptions::default());
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let (first, all) = pool.install(|| {
            let mut s = Stream::open(&corpus, &mix(), StreamOptions::default()).unwrap();
            let first: Vec<Vec<u32>> = (0..5)
                .flat_map(|_| {
                    let b = s.next_batch(8).unwrap().unwrap();
                    (0..b.rows())
                        .map(|r| b.row(r).unwrap().to_vec())
                        .collect::<Vec<_>>()
                })
                .collect();
            // Dropping early joins the prefetch thread from the worker.
            drop(s);
            let mut s = Stream::open(&corpus, &mix(), StreamOptions::default()).unwrap();
            (first, rows(&mut s, &[8, 13]))
        });
        assert_eq!(first, want[..40].to_vec());
        assert_eq!(all, want);
    }
}
