//! What each sequence of a stream holds: the global schedule, computed
//! from token counts alone, and the split of its sequences across ranks.
//!
//! ## Order
//! Each component is a stream of its own documents ([`Lane`]): for each
//! epoch, the blocks holding its documents are ordered by a keyed hash of
//! (seed, component, epoch, segment id, block); consecutive groups of
//! `shuffle_window_blocks` blocks form windows inside which documents are
//! ordered by a hash of (seed, component, epoch, segment id, ordinal).
//! Nothing is shuffled in memory beyond one window, and a deleted document
//! simply drops out without moving the others. A component's documents,
//! each followed by its end-of-document id, are cut into the component's
//! own sequences of `seq_len` tokens.
//!
//! ## Blend
//! Global sequences are blended from the components' sequences, as
//! Megatron's `BlendedDataset` does ([`Blend`]): in each stretch of fixed
//! shares (a phase, or its part after a weight change), global sequence
//! `t` of the stretch goes to the component furthest below its share
//! (`share * (t + 1) - taken` largest, the first component on ties), so
//! every component is within one sequence of its share at every point, and
//! every sequence belongs to one component. A component's `k`-th sequence
//! is its sequence `permute(k)` inside its window of
//! `shuffle_window_sequences` (a keyed Feistel permutation): a long
//! document spreads over the window instead of filling consecutive
//! sequences. The hashes are [`crate::hash::mix64`] and the constants
//! below; changing either reorders every stream (the known-answer tests
//! pin them).
//!
//! ## Ranks
//! The global token stream is cut into sequences of `seq_len`; sequence `s`
//! goes to rank `s mod world` counted from the resume point ([`Shard`]), so
//! the global order never depends on the number of ranks.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use super::mixture::{Mixture, Resolved, Stretch, WeightChange};
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
/// Mixed into a component's key for the order of its sequences.
const SEQUENCE_WINDOW: u64 = 0x2545_f491_4f6c_dd1d;

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

/// A keyed permutation of `0..n`: where `i` goes. A 4-round Feistel
/// network on the smallest even number of bits holding `n - 1`, walked
/// until it lands below `n` (at most a few steps on average). No table is
/// built, so any window size costs nothing to hold.
pub fn permute(key: u64, i: u64, n: u64) -> u64 {
    if n <= 1 {
        return 0;
    }
    let bits = 64 - (n - 1).leading_zeros();
    let half = bits.div_ceil(2);
    let mask = (1u64 << half) - 1;
    let mut x = i;
    loop {
        let (mut l, mut r) = (x >> half, x & mask);
        for round in 0..4u64 {
            let f = mix64(key ^ mix64(r ^ (round << 56))) & mask;
            (l, r) = (r, l ^ f);
        }
        x = (l << half) | r;
        if x < n {
            return x;
        }
    }
}

/// Which component each global sequence comes from (see the module doc):
/// a replay from the start, cheap arithmetic per sequence.
#[derive(Debug, Clone)]
pub struct Blend {
    stretches: Vec<Stretch>,
    /// Sequences each component can give (`u64::MAX`: endless).
    limits: Vec<u64>,
    cur: usize,
    in_stretch: Vec<u64>,
    taken: Vec<u64>,
    next: u64,
}

impl Blend {
    /// A blend of `stretches`, component `c` giving at most `limits[c]`
    /// sequences.
    pub fn new(stretches: Vec<Stretch>, limits: Vec<u64>) -> Blend {
        let n = limits.len();
        Blend {
            stretches,
            limits,
            cur: 0,
            in_stretch: vec![0; n],
            taken: vec![0; n],
            next: 0,
        }
    }

    /// One past the last global sequence.
    pub fn end(&self) -> u64 {
        self.stretches.last().map_or(0, |x| x.end)
    }

    /// The next global sequence [`Blend::step`] places.
    pub fn next_sequence(&self) -> u64 {
        self.next
    }

    /// Sequences taken from each component so far.
    pub fn taken(&self) -> &[u64] {
        &self.taken
    }

    /// The stretch of the next sequence (its index among the stretches).
    pub fn stretch(&self) -> usize {
        self.cur
    }

    /// The stretches blended.
    pub fn stretches(&self) -> &[Stretch] {
        &self.stretches
    }

    /// Places the next global sequence: its component and that component's
    /// sequence count before it (`k`). `None` past the end.
    pub fn step(&mut self) -> Option<(u32, u64)> {
        loop {
            let st = self.stretches.get(self.cur)?;
            if self.next >= st.end {
                self.cur += 1;
                self.in_stretch.fill(0);
                continue;
            }
            let t = (self.next - st.start + 1) as f64;
            let mut best: Option<(usize, f64)> = None;
            for (c, &share) in st.shares.iter().enumerate() {
                if share <= 0.0 || self.taken[c] >= self.limits[c] {
                    continue;
                }
                let d = share * t - self.in_stretch[c] as f64;
                if best.is_none_or(|(_, b)| d > b) {
                    best = Some((c, d));
                }
            }
            // Every component with a share is spent (a component without
            // documents, or the end of a pass): the others fill in.
            let c = match best {
                Some((c, _)) => c,
                None => (0..self.limits.len()).find(|&c| self.taken[c] < self.limits[c])?,
            };
            self.in_stretch[c] += 1;
            let k = self.taken[c];
            self.taken[c] += 1;
            self.next += 1;
            return Some((c as u32, k));
        }
    }

    /// Steps over the global sequences before `s`.
    pub fn skip_to(&mut self, s: u64) {
        while self.next < s {
            if self.step().is_none() {
                break;
            }
        }
    }
}

/// A document of a component's stream, at its position in that stream.
#[derive(Debug, Clone, Copy)]
struct LaneDoc {
    part: u32,
    ord: u32,
    tokens: u32,
    start: u64,
}

/// One component's stream of documents, epoch after epoch, with their
/// token positions; documents are generated as sequences need them and
/// dropped once no later sequence can.
struct Lane {
    cursor: Cursor,
    docs: VecDeque<LaneDoc>,
    /// Index in the component's stream of `docs[0]`.
    first: u64,
    /// Token position after the last document generated.
    end: u64,
}

impl Lane {
    /// Generates documents until `pos` tokens are covered (or the
    /// component's documents end).
    fn extend_to(&mut self, pos: u64, counts: &[Arc<Vec<u32>>]) {
        while self.end < pos {
            let Some((part, ord)) = self.cursor.next() else {
                return;
            };
            let tokens = counts[part as usize][ord as usize];
            self.docs.push_back(LaneDoc {
                part,
                ord,
                tokens,
                start: self.end,
            });
            self.end += tokens as u64;
        }
    }

    /// Drops the documents that end at or before `pos`.
    fn drop_before(&mut self, pos: u64) {
        while self
            .docs
            .front()
            .is_some_and(|d| d.start + d.tokens as u64 <= pos)
        {
            self.docs.pop_front();
            self.first += 1;
        }
    }
}

/// A stretch of one document inside one sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    /// Index of the document in its component's stream (a document
    /// repeated in a later epoch has another index).
    pub doc: u64,
    /// Segment index in the snapshot.
    pub part: u32,
    /// Ordinal in the segment.
    pub ord: u32,
    /// Tokens of the document (end-of-document included).
    pub doc_tokens: u32,
    /// Offset of the piece's first token in the document's tokens.
    pub doc_offset: u32,
    /// Tokens of the piece.
    pub len: u32,
    /// Offset of the piece's first token in the sequence.
    pub at: u32,
}

/// One global sequence: its component, the component's own sequence it
/// is, and the pieces of documents filling it, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    /// Global sequence index.
    pub sequence: u64,
    /// Component index.
    pub component: u32,
    /// The component's sequence index.
    pub local: u64,
    /// The pieces, covering the sequence exactly.
    pub pieces: Vec<Piece>,
}

/// The schedule of a stream: what global sequence `s` holds, from token
/// counts alone (see the module doc). Sequences are asked for in
/// increasing order.
pub struct Schedule {
    blend: Blend,
    lanes: Vec<Lane>,
    keys: Vec<u64>,
    limits: Vec<u64>,
    window: u64,
    seq_len: u64,
    counts: Vec<Arc<Vec<u32>>>,
}

impl Schedule {
    /// The schedule of resolved mixture `m` with the weight changes
    /// `changes` (sorted by `from_sequence`).
    pub fn new(corpus: &Corpus, m: &Mixture, r: &Resolved, changes: &[WeightChange]) -> Schedule {
        let once = m.budget().is_none();
        let l = m.seq_len as u64;
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
        let mut lanes = Vec::new();
        let mut limits = Vec::new();
        let mut keys = Vec::new();
        for (c, sel) in m.components.iter().zip(&r.selections) {
            let matched: HashMap<(u32, u32), Vec<u32>> = sel
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
            let available: u64 = sel
                .parts()
                .iter()
                .enumerate()
                .map(|(i, (_, bm))| {
                    bm.iter()
                        .map(|o| r.counts[i][o as usize] as u64)
                        .sum::<u64>()
                })
                .sum();
            limits.push(if available == 0 {
                0
            } else if once {
                available / l
            } else {
                u64::MAX
            });
            let key = mix64(m.seed ^ xxhash_rust::xxh3::xxh3_64(c.name.as_bytes()));
            keys.push(mix64(key ^ SEQUENCE_WINDOW));
            lanes.push(Lane {
                cursor: Cursor::new(all.clone(), matched, key, once, m.shuffle_window_blocks),
                docs: VecDeque::new(),
                first: 0,
                end: 0,
            });
        }
        let once_sequences = limits.iter().filter(|&&n| n != u64::MAX).sum();
        Schedule {
            blend: Blend::new(m.stretches(once_sequences, changes), limits.clone()),
            lanes,
            keys,
            limits,
            window: m.shuffle_window_sequences.max(1),
            seq_len: l,
            counts: r.counts.clone(),
        }
    }

    /// One past the last global sequence.
    pub fn end(&self) -> u64 {
        self.blend.end()
    }

    /// The blend behind the schedule.
    pub fn blend(&self) -> &Blend {
        &self.blend
    }

    /// The component's own sequence its `k`-th sequence of the stream is.
    fn local(&self, c: usize, k: u64) -> u64 {
        let w = k / self.window;
        let base = w * self.window;
        let size = self.window.min(self.limits[c].saturating_sub(base));
        base + permute(self.keys[c] ^ mix64(w), k - base, size)
    }

    /// Index in component `c`'s stream of the oldest document still kept:
    /// no later sequence holds one before it.
    pub fn first_kept(&self, c: usize) -> u64 {
        self.lanes.get(c).map_or(0, |l| l.first)
    }

    /// Global sequence `s` (at least the previous one asked for), or `None`
    /// past the end.
    pub fn place(&mut self, s: u64) -> Option<Placed> {
        self.blend.skip_to(s);
        if self.blend.next_sequence() != s {
            return None;
        }
        let (c, k) = self.blend.step()?;
        let j = self.local(c as usize, k);
        let l = self.seq_len;
        let lane = &mut self.lanes[c as usize];
        // Every later sequence of this component lies in this window or
        // after it.
        lane.drop_before(k / self.window * self.window * l);
        let (lo, hi) = (j * l, (j + 1) * l);
        lane.extend_to(hi, &self.counts);
        let first = lane
            .docs
            .partition_point(|d| d.start + d.tokens as u64 <= lo);
        let mut pieces = Vec::new();
        for (i, d) in lane.docs.iter().enumerate().skip(first) {
            if d.start >= hi {
                break;
            }
            let (a, b) = (d.start.max(lo), (d.start + d.tokens as u64).min(hi));
            pieces.push(Piece {
                doc: lane.first + i as u64,
                part: d.part,
                ord: d.ord,
                doc_tokens: d.tokens,
                doc_offset: (a - d.start) as u32,
                len: (b - a) as u32,
                at: (a - lo) as u32,
            });
        }
        Some(Placed {
            sequence: s,
            component: c,
            local: j,
            pieces,
        })
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
    use crate::train::mixture::Stretch;

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
    fn permute_is_a_keyed_permutation() {
        for n in [1u64, 2, 3, 5, 16, 17, 255, 1000, 1024, 4099] {
            for key in [0u64, 1, 0xdead_beef] {
                let mut seen: Vec<u64> = (0..n).map(|i| permute(key, i, n)).collect();
                seen.sort_unstable();
                assert_eq!(seen, (0..n).collect::<Vec<_>>(), "n {n} key {key}");
            }
            if n > 4 {
                let a: Vec<u64> = (0..n).map(|i| permute(1, i, n)).collect();
                let b: Vec<u64> = (0..n).map(|i| permute(2, i, n)).collect();
                assert_ne!(a, b, "the key changes the order (n {n})");
                assert_ne!(a, (0..n).collect::<Vec<_>>(), "it shuffles (n {n})");
            }
        }
    }

    fn stretch(start: u64, end: u64, shares: &[f64], phase: usize) -> Stretch {
        Stretch {
            start,
            end,
            shares: shares.to_vec(),
            phase,
        }
    }

    #[test]
    fn the_blend_holds_every_share_within_one_sequence_in_each_stretch() {
        let st = vec![
            stretch(0, 7000, &[0.5, 0.3, 0.2], 0),
            stretch(7000, 10_000, &[0.0, 0.9, 0.1], 1),
        ];
        let mut b = Blend::new(st.clone(), vec![u64::MAX; 3]);
        let mut in_stretch = [0u64; 3];
        let mut ks = [0u64; 3];
        for s in 0..10_000u64 {
            let x = &st[usize::from(s >= 7000)];
            if s == 7000 {
                in_stretch = [0; 3];
            }
            let (c, k) = b.step().unwrap();
            assert_eq!(k, ks[c as usize], "k counts the component's sequences");
            ks[c as usize] += 1;
            in_stretch[c as usize] += 1;
            let t = (s - x.start + 1) as f64;
            for (i, (&n, &share)) in in_stretch.iter().zip(&x.shares).enumerate() {
                let off = n as f64 - share * t;
                assert!(
                    off.abs() < 1.0 + 1e-9,
                    "sequence {s}: component {i} off by {off}"
                );
            }
        }
        assert_eq!(b.step(), None);
        assert_eq!(b.end(), 10_000);
        // Skipping ahead lands where stepping does.
        let mut c = Blend::new(st, vec![u64::MAX; 3]);
        c.skip_to(7100);
        let mut d = Blend::new(c.stretches().to_vec(), vec![u64::MAX; 3]);
        for _ in 0..7100 {
            d.step();
        }
        assert_eq!(c.step(), d.step());
        assert_eq!(c.taken(), d.taken());
    }

    #[test]
    fn a_spent_component_leaves_its_sequences_to_the_others() {
        // Every document once: component 1 has only 10 sequences.
        let st = vec![stretch(0, 110, &[0.5, 0.5], 0)];
        let mut b = Blend::new(st, vec![100, 10]);
        let got: Vec<(u32, u64)> = std::iter::from_fn(|| b.step()).collect();
        assert_eq!(got.len(), 110);
        assert_eq!(b.taken(), &[100, 10]);
        // Interleaved while both last.
        assert!(got[..20].iter().filter(|x| x.0 == 1).count() >= 9);
        // A share of 0 for a component that still has sequences: it fills
        // in only when no other can.
        let mut b = Blend::new(vec![stretch(0, 4, &[1.0, 0.0], 0)], vec![2, 2]);
        let got: Vec<u32> = std::iter::from_fn(|| b.step()).map(|x| x.0).collect();
        assert_eq!(got, vec![0, 0, 1, 1]);
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
