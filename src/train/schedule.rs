//! Which document comes next: the global schedule of a stream, computed
//! from token counts alone, and the split of its sequences across ranks.
//!
//! ## Order
//! For each component and epoch, the blocks holding its documents are
//! ordered by a keyed hash of (seed, component, epoch, segment id, block);
//! consecutive groups of `shuffle_window_blocks` blocks form windows inside
//! which documents are ordered by a hash of (seed, component, epoch,
//! segment id, ordinal). Nothing is shuffled in memory beyond one window,
//! and a deleted document simply drops out without moving the others.
//! Components are interleaved by deficit: the next document comes from the
//! component furthest below its token share. The hashes are
//! [`crate::hash::mix64`] and the constants below; changing either
//! reorders every stream (the known-answer tests pin them).
//!
//! ## Ranks
//! The global token stream is cut into sequences of `seq_len`; sequence `s`
//! goes to rank `s mod world` counted from the resume point ([`Shard`]), so
//! the global order never depends on the number of ranks.

use std::collections::HashMap;
use std::sync::Arc;

use super::mixture::{Mixture, Resolved};
use crate::corpus::Corpus;
use crate::hash::{mix64, GOLDEN_GAMMA};

/// Added to the epoch before hashing it into the block-order key.
const EPOCH_BLOCKS: u64 = GOLDEN_GAMMA;
/// Added to the epoch before hashing it into the window (document) key.
const EPOCH_WINDOW: u64 = 0x0051_afd7_ed55_8ccd;
/// Multiplies a segment id in the block-order hash (the 64-bit FNV prime).
const SEGMENT_BLOCKS: u64 = 0x0100_0000_01b3;
/// Multiplies a segment id in the document-order hash.
const SEGMENT_DOCS: u64 = 0xff51_afd7_ed55_8ccd;

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

/// One component's walk over its documents, epoch after epoch.
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
    fn new(
        all: Arc<Vec<(u32, u64, u32)>>,
        matched: HashMap<(u32, u32), Vec<u32>>,
        key: u64,
        once: bool,
        window_blocks: usize,
    ) -> Cursor {
        let mut cur = Cursor {
            all,
            matched,
            key,
            epoch: 0,
            order: Vec::new(),
            next_window: 0,
            window: Vec::new(),
            pos: 0,
            once,
            done: false,
            // A zero window would never advance (mixtures refuse it).
            window_blocks: window_blocks.max(1),
        };
        cur.start_epoch();
        cur
    }

    fn is_empty(&self) -> bool {
        self.matched.is_empty()
    }

    fn start_epoch(&mut self) {
        let key = self.key ^ mix64(self.epoch.wrapping_add(EPOCH_BLOCKS));
        let mut order: Vec<(u64, usize)> = self
            .all
            .iter()
            .enumerate()
            .map(|(i, (_, seg, b))| {
                (
                    mix64(key ^ mix64(seg.wrapping_mul(SEGMENT_BLOCKS) ^ *b as u64)),
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
            let key = self.key ^ mix64(self.epoch.wrapping_add(EPOCH_WINDOW));
            let lo = self.next_window * self.window_blocks;
            let hi = (lo + self.window_blocks).min(self.order.len());
            let mut w: Vec<(u64, u32, u32)> = Vec::new();
            for &bi in &self.order[lo..hi] {
                let (part, seg, block) = self.all[bi];
                let Some(ords) = self.matched.get(&(part, block)) else {
                    continue;
                };
                let sk = mix64(seg.wrapping_mul(SEGMENT_DOCS));
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
                let key = mix64(m.seed ^ xxhash_rust::xxh3::xxh3_64(c.name.as_bytes()));
                Cursor::new(all.clone(), matched, key, once, m.shuffle_window_blocks)
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

/// How a rank's sequences are split among the workers that read them (the
/// processes of a PyTorch `DataLoader`, say): the rank's sequences are cut
/// into blocks of `block` consecutive sequences, and block `b` goes to worker
/// `b mod workers`. With `block` equal to the loader's batch size, the
/// loader (which takes one batch from each worker in turn) hands out the
/// rank's sequences in the rank's own order. `skip` is how many of this
/// worker's sequences were delivered before (its resume point).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerSplit {
    /// This worker, below `workers`.
    pub worker: u64,
    /// Number of workers of the rank (at least 1).
    pub workers: u64,
    /// Consecutive sequences of the rank per block (at least 1).
    pub block: u64,
    /// This worker's sequences delivered before: the stream starts after them.
    pub skip: u64,
}

impl Default for WorkerSplit {
    fn default() -> Self {
        WorkerSplit {
            worker: 0,
            workers: 1,
            block: 1,
            skip: 0,
        }
    }
}

impl WorkerSplit {
    /// Refuses a split that is not one.
    pub fn check(&self) -> crate::error::Result<()> {
        if self.workers == 0 || self.worker >= self.workers || self.block == 0 {
            return Err(crate::error::Error::Invalid(format!(
                "worker {} of {} with blocks of {} sequences is not a valid split",
                self.worker, self.workers, self.block
            )));
        }
        Ok(())
    }

    /// Whether the split is the whole rank from its start.
    pub fn is_whole(&self) -> bool {
        self.workers == 1 && self.skip == 0
    }

    /// The rank's index of this worker's `k`-th sequence (after `skip`).
    fn rank_index(&self, k: u64) -> u64 {
        let kk = k + self.skip;
        let (j, o) = (kk / self.block, kk % self.block);
        (self.worker + j * self.workers) * self.block + o
    }

    /// This worker's `k` (after `skip`) of the rank's sequence `r`, if its.
    fn own_index(&self, r: u64) -> Option<u64> {
        let (b, o) = (r / self.block, r % self.block);
        if b % self.workers != self.worker {
            return None;
        }
        (b / self.workers * self.block + o).checked_sub(self.skip)
    }

    /// How many of the rank's first `n` sequences are this worker's (before
    /// `skip` is taken off).
    pub fn count_of(&self, n: u64) -> u64 {
        let (full, rest) = (n / self.block, n % self.block);
        let blocks = if full > self.worker {
            (full - self.worker - 1) / self.workers + 1
        } else {
            0
        };
        blocks * self.block
            + if full % self.workers == self.worker {
                rest
            } else {
                0
            }
    }
}

/// One rank's (or one worker's) share of a stream's global sequences: from
/// global sequence `start` (the resume point) on, sequence
/// `start + rank + r * world` is the rank's `r`-th, and the worker takes the
/// rank's sequences its [`WorkerSplit`] gives it. Every piece of rank,
/// worker and resume arithmetic goes through it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// First global sequence of the run, for every rank.
    pub start: u64,
    /// This rank.
    pub rank: u64,
    /// Number of ranks (at least 1).
    pub world: u64,
    /// This worker's part of the rank's sequences.
    pub split: WorkerSplit,
}

impl Shard {
    /// Global index of this worker's `k`-th sequence.
    pub fn global(&self, k: u64) -> u64 {
        self.start + self.rank + self.split.rank_index(k) * self.world
    }

    /// The `k` of global sequence `s` if it is this worker's.
    pub fn local(&self, s: u64) -> Option<u64> {
        let first = self.start.checked_add(self.rank)?;
        if s < first || !(s - first).is_multiple_of(self.world) {
            return None;
        }
        self.split.own_index((s - first) / self.world)
    }

    /// How many of the global sequences below `end` this worker emits, at
    /// most `stop_after` (a start past the end leaves none).
    pub fn total(&self, end: u64, stop_after: Option<u64>) -> u64 {
        let first = self.start.saturating_add(self.rank);
        let rank_total = if first < end {
            (end - first).div_ceil(self.world)
        } else {
            0
        };
        let total = self
            .split
            .count_of(rank_total)
            .saturating_sub(self.split.skip);
        stop_after.map_or(total, |n| total.min(n))
    }

    /// The `next_sequence` of the resume state after this rank emitted
    /// `done` sequences: each rank has then emitted all before it. Only
    /// meaningful for a whole rank (one worker; a worker's position is its
    /// [`WorkerSplit::skip`] and is merged by the caller).
    pub fn next_sequence(&self, done: u64) -> u64 {
        if self.split.workers == 1 {
            self.start + (self.split.skip + done) * self.world
        } else {
            self.start
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cursor(once: bool) -> Cursor {
        let all = Arc::new(vec![
            (0, 10, 0),
            (0, 10, 1),
            (1, 11, 0),
            (1, 11, 1),
            (2, 12, 0),
        ]);
        let matched: HashMap<(u32, u32), Vec<u32>> = [
            ((0, 0), vec![0, 1, 2]),
            ((0, 1), vec![3, 4]),
            ((1, 0), vec![0, 1]),
            ((1, 1), vec![5]),
            ((2, 0), vec![0, 2]),
        ]
        .into_iter()
        .collect();
        Cursor::new(all, matched, 0x1234, once, 2)
    }

    /// The order of two epochs over five blocks in windows of two, computed
    /// by the arithmetic streams have always been written with: a change
    /// here reorders every stream and invalidates every saved state.
    #[test]
    fn cursor_order_known_answer() {
        let mut c = cursor(false);
        let got: Vec<(u32, u32)> = (0..20).map(|_| c.next().unwrap()).collect();
        assert_eq!(
            got,
            vec![
                (2, 2),
                (2, 0),
                (0, 3),
                (0, 4),
                (1, 0),
                (1, 1),
                (1, 5),
                (0, 1),
                (0, 0),
                (0, 2),
                // Epoch 1.
                (1, 5),
                (1, 1),
                (1, 0),
                (0, 2),
                (0, 3),
                (0, 4),
                (0, 0),
                (0, 1),
                (2, 2),
                (2, 0),
            ]
        );
    }

    #[test]
    fn each_epoch_visits_every_document_once() {
        let mut c = cursor(false);
        for _ in 0..3 {
            let mut epoch: Vec<(u32, u32)> = (0..10).map(|_| c.next().unwrap()).collect();
            epoch.sort_unstable();
            let mut want: Vec<(u32, u32)> = c
                .matched
                .iter()
                .flat_map(|(&(p, _), ords)| ords.iter().map(move |&o| (p, o)))
                .collect();
            want.sort_unstable();
            assert_eq!(epoch, want);
        }
        // Once: one epoch, then done.
        let mut c = cursor(true);
        assert_eq!((0..10).filter_map(|_| c.next()).count(), 10);
        assert_eq!(c.next(), None);
        assert!(c.done);
    }

    #[test]
    fn a_dropped_document_leaves_the_order_of_the_others() {
        let mut full = cursor(true);
        let full: Vec<_> = std::iter::from_fn(|| full.next()).collect();
        let mut c = cursor(true);
        c.matched.get_mut(&(0, 1)).unwrap().retain(|&o| o != 3);
        // An emptied block keeps the windows of the others in place.
        c.matched.remove(&(1, 1));
        let fewer: Vec<_> = std::iter::from_fn(|| c.next()).collect();
        let want: Vec<_> = full
            .into_iter()
            .filter(|&d| d != (0, 3) && d != (1, 5))
            .collect();
        assert_eq!(fewer, want);
    }

    #[test]
    fn the_order_is_deterministic_and_keyed() {
        let run = |key| {
            let mut c = cursor(false);
            c.key = key;
            c.start_epoch();
            (0..30).map(|_| c.next().unwrap()).collect::<Vec<_>>()
        };
        assert_eq!(run(0x1234), run(0x1234));
        assert_ne!(run(0x1234), run(0x1235));
    }

    #[test]
    fn shards_partition_the_sequences_disjointly() {
        for start in [0u64, 5, 17] {
            for end in [0u64, 1, 16, 17, 40] {
                for world in 1..=5u64 {
                    let mut seen = vec![0u32; end as usize];
                    let mut totals = 0;
                    for rank in 0..world {
                        let sh = Shard {
                            start,
                            rank,
                            world,
                            split: WorkerSplit::default(),
                        };
                        let total = sh.total(end, None);
                        totals += total;
                        for k in 0..total {
                            let s = sh.global(k);
                            assert!(s >= start && s < end, "{sh:?} {k} -> {s}");
                            assert_eq!(sh.local(s), Some(k));
                            seen[s as usize] += 1;
                        }
                        assert_eq!(sh.total(end, Some(2)), total.min(2));
                        // After every rank emitted `done`, all before the
                        // resume point were emitted by someone.
                        assert_eq!(sh.next_sequence(total), start + total * world);
                    }
                    assert_eq!(totals, end.saturating_sub(start));
                    for (s, n) in seen.iter().enumerate() {
                        assert_eq!(*n, u32::from(s as u64 >= start), "sequence {s}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_shard_past_the_end_is_empty() {
        let sh = Shard {
            start: u64::MAX,
            rank: 3,
            world: 4,
            split: WorkerSplit::default(),
        };
        assert_eq!(sh.total(1000, Some(4)), 0);
        assert_eq!(sh.local(5), None);
    }

    #[test]
    fn workers_partition_a_rank_in_blocks_and_resume_from_their_counts() {
        for end in [0u64, 1, 7, 40, 97] {
            for world in [1u64, 2, 3] {
                for workers in 1..=4u64 {
                    for block in [1u64, 2, 5] {
                        for rank in 0..world {
                            let whole = Shard {
                                start: 3,
                                rank,
                                world,
                                split: WorkerSplit::default(),
                            };
                            let n = whole.total(end, None);
                            let mut seen = vec![0u32; n as usize];
                            let mut sum = 0;
                            for worker in 0..workers {
                                let split = WorkerSplit {
                                    worker,
                                    workers,
                                    block,
                                    skip: 0,
                                };
                                let sh = Shard { split, ..whole };
                                let total = sh.total(end, None);
                                assert_eq!(total, split.count_of(n));
                                sum += total;
                                let mut last = None;
                                for k in 0..total {
                                    let s = sh.global(k);
                                    assert!(last < Some(s), "increasing");
                                    last = Some(s);
                                    assert_eq!(sh.local(s), Some(k));
                                    let r = whole.local(s).unwrap();
                                    assert_eq!((r / block) % workers, worker);
                                    seen[r as usize] += 1;
                                }
                                // Resuming after `skip` of its sequences
                                // continues with the next of them.
                                for skip in [0, 1.min(total), total / 2, total] {
                                    let resumed = Shard {
                                        split: WorkerSplit { skip, ..split },
                                        ..whole
                                    };
                                    assert_eq!(resumed.total(end, None), total - skip);
                                    for k in 0..total - skip {
                                        assert_eq!(resumed.global(k), sh.global(k + skip));
                                        assert_eq!(resumed.local(sh.global(k + skip)), Some(k));
                                    }
                                    if skip > 0 {
                                        assert_eq!(resumed.local(sh.global(skip - 1)), None);
                                    }
                                }
                            }
                            assert_eq!(sum, n);
                            assert!(seen.iter().all(|&c| c == 1));
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_split_that_is_not_one_is_refused() {
        let ok = WorkerSplit::default();
        assert!(ok.check().is_ok());
        for bad in [
            WorkerSplit { workers: 0, ..ok },
            WorkerSplit {
                worker: 3,
                workers: 3,
                ..ok
            },
            WorkerSplit { block: 0, ..ok },
        ] {
            let e = bad.check().unwrap_err().to_string();
            assert!(e.contains("not a valid split"), "{e}");
        }
    }
}
