//! Tagger `dedup`: exact and near-duplicate detection, out of core.
//!
//! Exact duplicates share the xxh3-128 hash of their normalized text
//! ([`normalize_for_exact`]); every member of a group but the first (smallest
//! rank, which is key order) is a duplicate of the first. Near duplicates are
//! found by MinHash over word 5-gram shingles with LSH banding (14 bands of 8
//! rows by default); candidate pairs are verified by the fraction of equal
//! MinHash values before they are joined by union-find, and a cluster is
//! represented by its smallest rank.
//!
//! The work is split in two: [`signature`] is a pure function of the text and
//! the configuration, safe to call from any number of threads; a single
//! [`Builder`] receives the signatures (in any order), spills sorted runs to
//! `work_dir` when `memory_budget` is reached, and [`Builder::finish`] merges
//! the runs into a [`DedupResult`] indexed by rank. Results depend only on the
//! set of `(rank, text)`, never on the order of `add` calls, the thread count
//! or the memory budget. The exact definitions, the S-curve and the memory and
//! disk use are in `docs/taggers.md` (section dedup).

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::{self, File};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use memmap2::MmapMut;
use unicode_general_category::{get_general_category, GeneralCategory};
use unicode_normalization::{is_nfkc_quick, IsNormalized, UnicodeNormalization};
use xxhash_rust::xxh3::{xxh3_128, xxh3_64_with_seed};

use crate::error::IoContext;
use crate::{Error, Result};

/// Returns [`Error::Invalid`] with the formatted message unless the
/// condition holds: a misuse of the builder by its caller.
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(Error::Invalid(format!($($msg)+)));
        }
    };
}

/// Version of the definitions (normalization, shingles, hash family, banding).
/// Any change that can change a result changes this string.
pub const VERSION: &str = "dedup-2:nfkc-lower-lnm-cjk1:minhash-5gram-14x8-fmix32:xxh3";

/// Default threshold on the estimated Jaccard similarity (fraction of equal
/// MinHash values) that a candidate pair must reach to be joined.
pub const DEFAULT_VERIFY_THRESHOLD: f64 = 0.7;

/// Default bytes of in-memory run buffers before a sorted run is spilled.
pub const DEFAULT_MEMORY_BUDGET: usize = 256 << 20;

/// In a bucket (documents sharing one band hash), each document is compared
/// with at most this many earlier members: the first
/// [`BUCKET_EARLY_MEMBERS`] of the bucket, then only documents that joined
/// none of the kept members (so one large cluster cannot take every slot
/// and hide a second cluster that shares the bucket).
pub const MAX_BUCKET_COMPARE: usize = 64;

/// Members of a bucket kept for comparison whatever they joined.
pub const BUCKET_EARLY_MEMBERS: usize = 16;

/// Number of run files merged at once; more runs are merged in several passes.
const FAN_IN: usize = 64;

/// Configuration of the dedup tagger.
#[derive(Clone, Debug)]
pub struct DedupConfig {
    /// Words per shingle (default 5).
    pub ngram: usize,
    /// LSH bands (default 14).
    pub bands: usize,
    /// Rows (MinHash values) per band (default 8).
    pub rows: usize,
    /// Seed of every hash function but the exact one (default 0x5eed).
    pub seed: u64,
    /// Candidate pairs are joined only when the fraction of equal MinHash
    /// values reaches this threshold; `None` joins every LSH candidate.
    pub verify_threshold: Option<f64>,
    /// Directory for run files and per-document arrays (created if missing).
    pub work_dir: PathBuf,
    /// Bytes of in-memory buffers before a sorted run is spilled to disk.
    pub memory_budget: usize,
}

impl DedupConfig {
    /// The default configuration, with temporary files under `work_dir`.
    pub fn new(work_dir: PathBuf) -> Self {
        DedupConfig {
            ngram: 5,
            bands: 14,
            rows: 8,
            seed: 0x5eed,
            verify_threshold: Some(DEFAULT_VERIFY_THRESHOLD),
            work_dir,
            memory_budget: DEFAULT_MEMORY_BUDGET,
        }
    }

    /// Number of MinHash functions (`bands * rows`).
    pub fn num_hashes(&self) -> usize {
        self.bands * self.rows
    }
}

/// Per-document signature: the exact hash, one hash per LSH band and, when
/// verification is on, the MinHash values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature {
    exact: u128,
    bands: Vec<u64>,
    minhash: Vec<u32>,
}

impl Signature {
    /// xxh3-128 of the normalized text.
    pub fn exact_hash(&self) -> u128 {
        self.exact
    }
    /// One hash per band; empty when the document has no word.
    pub fn band_hashes(&self) -> &[u64] {
        &self.bands
    }
    /// The `bands * rows` MinHash values; empty when verification is off.
    pub fn minhashes(&self) -> &[u32] {
        &self.minhash
    }
}

/// Normalizes `text` into `buf` for hashing: NFKC, lowercase, words are the
/// maximal runs of letters, marks and digits (Unicode categories L, M, N);
/// format characters (Cf: soft hyphen, zero-width space, ...) are dropped; a
/// Han, Hiragana or Katakana character is a word by itself; everything else
/// (whitespace, punctuation, symbols, controls) separates words. Words are
/// joined by a single ASCII space, with none at either end.
pub fn normalize_for_exact(text: &str, buf: &mut String) {
    let mut v = std::mem::take(buf).into_bytes();
    normalize_into(text, &mut v, None);
    *buf = String::from_utf8(v).expect("normalization writes whole characters");
}

/// [`normalize_for_exact`] into bytes; with `words`, also pushes the
/// xxh3-64 (with the given seed) of every word as it is completed.
fn normalize_into(text: &str, out: &mut Vec<u8>, words: Option<(&mut Vec<u64>, u64)>) {
    out.clear();
    out.reserve(text.len());
    let mut w = WordWriter {
        out,
        in_word: false,
        start: 0,
        words,
    };
    if text.is_ascii() {
        for &b in text.as_bytes() {
            w.ascii(b);
        }
    } else {
        // NFKC by segments: a character of combining class 0 that is NFKC in
        // any context (quick check Yes) is a normalization boundary, so each
        // segment from one such character to the next normalizes on its own;
        // a segment of one safe character is itself.
        let mut seg_start = 0;
        let mut seg_unsafe = false;
        let mut pending = None;
        let flush = |w: &mut WordWriter, range: std::ops::Range<usize>, unsafe_, pending| {
            if unsafe_ {
                for c in text[range].nfkc() {
                    w.char(c);
                }
            } else if let Some(p) = pending {
                w.char(p);
            }
        };
        for (i, c) in text.char_indices() {
            if c.is_ascii() || info(c) & NFKC_SAFE != 0 {
                flush(&mut w, seg_start..i, seg_unsafe, pending);
                seg_start = i;
                seg_unsafe = false;
                pending = Some(c);
            } else {
                seg_unsafe = true;
            }
        }
        flush(&mut w, seg_start..text.len(), seg_unsafe, pending);
    }
    w.end_word();
}

struct WordWriter<'a> {
    out: &'a mut Vec<u8>,
    in_word: bool,
    /// Offset in `out` of the current word.
    start: usize,
    words: Option<(&'a mut Vec<u64>, u64)>,
}

impl WordWriter<'_> {
    #[inline]
    fn begin_word(&mut self) {
        if !self.in_word {
            if !self.out.is_empty() {
                self.out.push(b' ');
            }
            self.start = self.out.len();
            self.in_word = true;
        }
    }

    #[inline]
    fn end_word(&mut self) {
        if self.in_word {
            self.in_word = false;
            if let Some((words, seed)) = &mut self.words {
                words.push(xxh3_64_with_seed(&self.out[self.start..], *seed));
            }
        }
    }

    #[inline]
    fn ascii(&mut self, b: u8) {
        if b.is_ascii_alphanumeric() {
            self.begin_word();
            self.out.push(b.to_ascii_lowercase());
        } else {
            self.end_word();
        }
    }

    #[inline]
    fn push(&mut self, c: char) {
        let mut b = [0u8; 4];
        self.out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
    }

    #[inline]
    fn char(&mut self, c: char) {
        if c.is_ascii() {
            return self.ascii(c as u8);
        }
        let i = info(c);
        match i & CLASS {
            WORD => {
                self.begin_word();
                if i & LOWER_SELF != 0 {
                    self.push(c);
                } else {
                    for l in c.to_lowercase() {
                        self.push(l);
                    }
                }
            }
            CJK => {
                self.end_word();
                self.begin_word();
                self.push(c);
                self.end_word();
            }
            DROP => {}
            _ => self.end_word(),
        }
    }
}

// Character properties used by normalization, tabulated for the BMP.
const CLASS: u8 = 3;
const SEP: u8 = 0;
const WORD: u8 = 1;
const DROP: u8 = 2;
const CJK: u8 = 3;
/// Canonical combining class 0 and NFKC quick check Yes.
const NFKC_SAFE: u8 = 4;
/// `to_lowercase` is the character itself.
const LOWER_SELF: u8 = 8;

fn compute_info(c: char) -> u8 {
    use GeneralCategory as G;
    let class = match get_general_category(c) {
        G::UppercaseLetter
        | G::LowercaseLetter
        | G::TitlecaseLetter
        | G::ModifierLetter
        | G::OtherLetter
        | G::NonspacingMark
        | G::SpacingMark
        | G::EnclosingMark
        | G::DecimalNumber
        | G::LetterNumber
        | G::OtherNumber => {
            if is_cjk(c) {
                CJK
            } else {
                WORD
            }
        }
        G::Format => DROP,
        _ => SEP,
    };
    let safe = unicode_normalization::char::canonical_combining_class(c) == 0
        && is_nfkc_quick(std::iter::once(c)) == IsNormalized::Yes;
    let mut lower = c.to_lowercase();
    let lower_self = lower.next() == Some(c) && lower.next().is_none();
    class | if safe { NFKC_SAFE } else { 0 } | if lower_self { LOWER_SELF } else { 0 }
}

#[inline]
fn info(c: char) -> u8 {
    static BMP: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let t = BMP.get_or_init(|| {
        (0..=0xFFFFu32)
            .map(|u| char::from_u32(u).map_or(SEP, compute_info))
            .collect()
    });
    match t.get(c as usize) {
        Some(&i) => i,
        None => compute_info(c),
    }
}

/// Scripts written without spaces whose characters are words by themselves.
fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF   // Hiragana, Katakana
        | 0x3400..=0x4DBF // CJK Extension A
        | 0x4E00..=0x9FFF // CJK Unified Ideographs
        | 0xF900..=0xFAFF // CJK Compatibility Ideographs
        | 0xFF66..=0xFF9F // Halfwidth Katakana
        | 0x20000..=0x3134F) // CJK Extensions B..G
}

// splitmix64: the seed expansion of every derived parameter.
use crate::hash::splitmix64;

/// murmur3's 32-bit finalizer: a bijection of `u32` with full avalanche.
#[inline(always)]
fn fmix32(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85EB_CA6B);
    h ^= h >> 13;
    h = h.wrapping_mul(0xC2B2_AE35);
    h ^ (h >> 16)
}

/// Parameters derived from a configuration: permutation keys and the
/// per-position multipliers of the shingle hash.
struct Params {
    seed: u64,
    ngram: usize,
    perm: Vec<u32>,
    mult: Vec<u64>,
}

impl Params {
    fn new(cfg: &DedupConfig) -> Params {
        let mut st = cfg.seed;
        let perm = (0..cfg.num_hashes())
            .map(|_| splitmix64(&mut st) as u32)
            .collect();
        let mult = (0..cfg.ngram.max(1))
            .map(|_| splitmix64(&mut st) | 1)
            .collect();
        Params {
            seed: cfg.seed,
            ngram: cfg.ngram,
            perm,
            mult,
        }
    }
    fn matches(&self, cfg: &DedupConfig) -> bool {
        self.seed == cfg.seed && self.ngram == cfg.ngram && self.perm.len() == cfg.num_hashes()
    }
}

struct Scratch {
    params: Option<Params>,
    norm: Vec<u8>,
    words: Vec<u64>,
    shingles: Vec<u32>,
    mins: Vec<u32>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = const { RefCell::new(Scratch {
        params: None,
        norm: Vec::new(),
        words: Vec::new(),
        shingles: Vec::new(),
        mins: Vec::new(),
    }) };
}

/// Computes the signature of one document. Pure and thread-safe (buffers are
/// per thread); this is the hot path.
pub fn signature(text: &str, cfg: &DedupConfig) -> Signature {
    SCRATCH.with(|s| {
        let s = &mut *s.borrow_mut();
        if !s.params.as_ref().is_some_and(|p| p.matches(cfg)) {
            s.params = Some(Params::new(cfg));
        }
        let p = s.params.as_ref().expect("set above");
        s.words.clear();
        normalize_into(text, &mut s.norm, Some((&mut s.words, cfg.seed)));
        let exact = xxh3_128(&s.norm);
        s.shingles.clear();
        let n = cfg.ngram.max(1);
        if !s.words.is_empty() {
            let shingle = |ws: &[u64]| -> u32 {
                let mut h = 0u64;
                for (w, m) in ws.iter().zip(&p.mult) {
                    h = h.wrapping_add(w.wrapping_mul(*m));
                }
                h = (h ^ (h >> 29)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                (h >> 32) as u32
            };
            if s.words.len() < n {
                s.shingles.push(shingle(&s.words));
            } else {
                s.shingles.extend(s.words.windows(n).map(shingle));
            }
        }
        let k = cfg.num_hashes();
        if s.shingles.is_empty() {
            return Signature {
                exact,
                bands: Vec::new(),
                minhash: Vec::new(),
            };
        }
        s.mins.clear();
        s.mins.resize(k, u32::MAX);
        minhash(&s.shingles, &p.perm, &mut s.mins);
        let mut bytes = Vec::with_capacity(cfg.rows * 4);
        let bands = (0..cfg.bands)
            .map(|b| {
                bytes.clear();
                for v in &s.mins[b * cfg.rows..(b + 1) * cfg.rows] {
                    bytes.extend_from_slice(&v.to_le_bytes());
                }
                let mut st = cfg.seed ^ (b as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                xxh3_64_with_seed(&bytes, splitmix64(&mut st))
            })
            .collect();
        let minhash = if cfg.verify_threshold.is_some() {
            s.mins.clone()
        } else {
            Vec::new()
        };
        Signature {
            exact,
            bands,
            minhash,
        }
    })
}

/// `mins[i] = min over shingles x of fmix32(x ^ perm[i])`, dispatched to an
/// AVX2 build of the same code when the CPU has it (results are identical).
fn minhash(xs: &[u32], perm: &[u32], mins: &mut [u32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            unsafe { minhash_avx2(xs, perm, mins) };
            return;
        }
    }
    minhash_generic(xs, perm, mins)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn minhash_avx2(xs: &[u32], perm: &[u32], mins: &mut [u32]) {
    minhash_generic(xs, perm, mins)
}

#[inline(always)]
fn minhash_generic(xs: &[u32], perm: &[u32], mins: &mut [u32]) {
    const L: usize = 16;
    let mut pc = perm.chunks_exact(L);
    let mut mc = mins.chunks_exact_mut(L);
    for (p, m) in (&mut pc).zip(&mut mc) {
        let p: &[u32; L] = p.try_into().expect("chunk of L");
        let mut acc = [u32::MAX; L];
        for &x in xs {
            for j in 0..L {
                acc[j] = acc[j].min(fmix32(x ^ p[j]));
            }
        }
        m.copy_from_slice(&acc);
    }
    for (p, m) in pc.remainder().iter().zip(mc.into_remainder()) {
        *m = xs.iter().map(|&x| fmix32(x ^ p)).min().unwrap_or(u32::MAX);
    }
}

// ---------------------------------------------------------------------------
// Sorted runs on disk.

/// A fixed-size record of a sorted run.
trait Rec: Copy + Ord {
    const SIZE: usize;
    fn put(&self, out: &mut [u8]);
    fn get(b: &[u8]) -> Self;
}

/// `(band hash, rank)`; the band index is folded into the hash by its seed.
type BandRec = (u64, u64);
/// `(exact hash, rank)`.
type ExactRec = (u128, u64);

fn le_u64(b: &[u8]) -> u64 {
    u64::from_le_bytes(b[..8].try_into().expect("8 bytes"))
}

impl Rec for BandRec {
    const SIZE: usize = 16;
    fn put(&self, out: &mut [u8]) {
        out[..8].copy_from_slice(&self.0.to_le_bytes());
        out[8..16].copy_from_slice(&self.1.to_le_bytes());
    }
    fn get(b: &[u8]) -> Self {
        (le_u64(b), le_u64(&b[8..]))
    }
}

impl Rec for ExactRec {
    const SIZE: usize = 24;
    fn put(&self, out: &mut [u8]) {
        out[..16].copy_from_slice(&self.0.to_le_bytes());
        out[16..24].copy_from_slice(&self.1.to_le_bytes());
    }
    fn get(b: &[u8]) -> Self {
        let h = u128::from_le_bytes(b[..16].try_into().expect("16 bytes"));
        (h, le_u64(&b[16..]))
    }
}

/// A directory of temporary files, removed with everything in it on drop.
struct WorkDir {
    path: PathBuf,
    next: u64,
}

impl WorkDir {
    fn create(parent: &Path) -> Result<WorkDir> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        fs::create_dir_all(parent).at(parent)?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!(
            "dedup-{}-{}-{nanos}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let path = parent.join(name);
        fs::create_dir(&path).at(&path)?;
        Ok(WorkDir { path, next: 0 })
    }

    fn file(&mut self, what: &str) -> PathBuf {
        self.next += 1;
        self.path.join(format!("{what}-{:06}", self.next))
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// Bytes of a read or write buffer for one run file.
fn io_buf(budget: usize) -> usize {
    (budget / (FAN_IN + 1)).clamp(4 << 10, 1 << 20)
}

fn write_run<R: Rec>(
    dir: &mut WorkDir,
    what: &str,
    recs: impl Iterator<Item = Result<R>>,
    budget: usize,
) -> Result<(PathBuf, u64)> {
    let path = dir.file(what);
    let file = File::create(&path).at(&path)?;
    let mut w = BufWriter::with_capacity(io_buf(budget), file);
    let mut b = [0u8; 32];
    let mut bytes = 0u64;
    for r in recs {
        r?.put(&mut b[..R::SIZE]);
        w.write_all(&b[..R::SIZE]).at(&path)?;
        bytes += R::SIZE as u64;
    }
    w.flush().at(&path)?;
    Ok((path, bytes))
}

struct RunReader<R> {
    r: BufReader<File>,
    path: PathBuf,
    _rec: std::marker::PhantomData<R>,
}

impl<R: Rec> RunReader<R> {
    fn open(path: &Path, budget: usize) -> Result<Self> {
        let f = File::open(path).at(path)?;
        Ok(RunReader {
            r: BufReader::with_capacity(io_buf(budget), f),
            path: path.to_owned(),
            _rec: std::marker::PhantomData,
        })
    }
    fn next(&mut self) -> Result<Option<R>> {
        let mut b = [0u8; 32];
        let b = &mut b[..R::SIZE];
        match self.r.read_exact(b) {
            Ok(()) => Ok(Some(R::get(b))),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
            Err(e) => Err(Error::io(&self.path, e)),
        }
    }
}

/// K-way merge of sorted runs and one sorted in-memory buffer.
struct Merger<R: Rec> {
    runs: Vec<RunReader<R>>,
    mem: std::vec::IntoIter<R>,
    heap: BinaryHeap<Reverse<(R, usize)>>,
}

impl<R: Rec> Merger<R> {
    fn new(runs: Vec<RunReader<R>>, mem: Vec<R>) -> Result<Self> {
        let mut m = Merger {
            runs,
            mem: mem.into_iter(),
            heap: BinaryHeap::new(),
        };
        for i in 0..=m.runs.len() {
            if let Some(r) = m.pull(i)? {
                m.heap.push(Reverse((r, i)));
            }
        }
        Ok(m)
    }
    fn pull(&mut self, i: usize) -> Result<Option<R>> {
        if i == self.runs.len() {
            Ok(self.mem.next())
        } else {
            self.runs[i].next()
        }
    }
    fn next(&mut self) -> Result<Option<R>> {
        let Some(Reverse((r, i))) = self.heap.pop() else {
            return Ok(None);
        };
        if let Some(n) = self.pull(i)? {
            self.heap.push(Reverse((n, i)));
        }
        Ok(Some(r))
    }
}

impl<R: Rec> Iterator for Merger<R> {
    type Item = Result<R>;
    fn next(&mut self) -> Option<Self::Item> {
        Merger::next(self).transpose()
    }
}

/// Merges runs (deleting them) until at most `FAN_IN` remain, then returns a
/// merger over them and the sorted in-memory buffer.
fn merge_all<R: Rec>(
    dir: &mut WorkDir,
    what: &str,
    mut runs: Vec<PathBuf>,
    mem: Vec<R>,
    budget: usize,
) -> Result<Merger<R>> {
    while runs.len() > FAN_IN {
        let mut next = Vec::with_capacity(runs.len() / FAN_IN + 1);
        for group in runs.chunks(FAN_IN) {
            let readers = group
                .iter()
                .map(|p| RunReader::open(p, budget))
                .collect::<Result<Vec<_>>>()?;
            let merger = Merger::<R>::new(readers, Vec::new())?;
            let (path, _) = write_run(dir, what, merger, budget)?;
            for p in group {
                let _ = fs::remove_file(p);
            }
            next.push(path);
        }
        runs = next;
    }
    let readers = runs
        .iter()
        .map(|p| RunReader::open(p, budget))
        .collect::<Result<Vec<_>>>()?;
    Merger::new(readers, mem)
}

// ---------------------------------------------------------------------------
// Per-document arrays in memory-mapped files.

/// A zero-initialized array of little-endian `u64`, memory-mapped from a file
/// that is unlinked right after mapping (the pages live as long as the map
/// and are written back by the kernel under memory pressure).
struct DiskArray {
    map: Option<MmapMut>,
}

impl DiskArray {
    fn new(dir: &mut WorkDir, what: &str, bytes: u64) -> Result<Self> {
        if bytes == 0 {
            return Ok(DiskArray { map: None });
        }
        DiskArray::at(dir.file(what), bytes)
    }
    fn at(path: PathBuf, bytes: u64) -> Result<Self> {
        if bytes == 0 {
            return Ok(DiskArray { map: None });
        }
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .at(&path)?;
        // Allocated by writing zeros, not by a sparse `set_len`: on a full
        // disk a store through the map into a hole raises SIGBUS and kills
        // the process, where this write returns ENOSPC.
        let zeros = vec![0u8; 1 << 20];
        let mut left = bytes;
        while left > 0 {
            let n = left.min(zeros.len() as u64) as usize;
            (&file).write_all(&zeros[..n]).at(&path)?;
            left -= n as u64;
        }
        // SAFETY: the file was just created by this process under a private
        // directory and is unlinked below; nothing else maps or writes it.
        let map = unsafe { MmapMut::map_mut(&file) }.at(&path)?;
        let _ = fs::remove_file(&path);
        Ok(DiskArray { map: Some(map) })
    }
    fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }
    fn bytes_mut(&mut self) -> &mut [u8] {
        self.map.as_deref_mut().unwrap_or(&mut [])
    }
    #[inline]
    fn get(&self, i: u64) -> u64 {
        let o = i as usize * 8;
        le_u64(&self.bytes()[o..o + 8])
    }
    #[inline]
    fn set(&mut self, i: u64, v: u64) {
        let o = i as usize * 8;
        self.bytes_mut()[o..o + 8].copy_from_slice(&v.to_le_bytes());
    }
}

/// A zero-initialized array of `u64` in a memory-mapped file, unlinked as
/// soon as it is mapped: per-document arrays of any length whose pages the
/// kernel writes back under memory pressure instead of holding them in
/// anonymous memory. The dedup runner keeps its document-to-rank and
/// rank-to-key arrays in such files.
pub struct DiskU64(DiskArray);

impl DiskU64 {
    /// Creates the backing file at `path` (which must not exist) with `len`
    /// zeros, maps it and unlinks it.
    pub fn create(path: &Path, len: u64) -> Result<DiskU64> {
        Ok(DiskU64(DiskArray::at(path.to_path_buf(), len * 8)?))
    }

    /// Value `i` (0 until set).
    #[inline]
    pub fn get(&self, i: u64) -> u64 {
        self.0.get(i)
    }

    /// Sets value `i`.
    #[inline]
    pub fn set(&mut self, i: u64, v: u64) {
        self.0.set(i, v)
    }
}

/// Union-find over ranks, stored as `parent + 1` (0: a root) with bit 63
/// set, after [`Forest::finalize`], on every member of a cluster of two or
/// more. Union links the larger root under the smaller, so a parent is
/// always smaller than its child and a root is the smallest rank of its set.
struct Forest {
    a: DiskArray,
}

const IN_CLUSTER: u64 = 1 << 63;

impl Forest {
    #[inline]
    fn parent(&self, x: u64) -> u64 {
        match self.a.get(x) & !IN_CLUSTER {
            0 => x,
            p => p - 1,
        }
    }
    fn find(&mut self, mut x: u64) -> u64 {
        loop {
            let p = self.parent(x);
            if p == x {
                return x;
            }
            let g = self.parent(p);
            if g != p {
                self.a.set(x, g + 1); // path halving
            }
            x = g;
        }
    }
    /// Joins the sets of two roots; returns the new root.
    fn link(&mut self, ra: u64, rb: u64) -> u64 {
        let (lo, hi) = if ra < rb { (ra, rb) } else { (rb, ra) };
        if lo != hi {
            self.a.set(hi, lo + 1);
        }
        lo
    }
    /// Points every rank at its root and flags the members of clusters of two
    /// or more. Returns (clusters, documents in clusters).
    fn finalize(&mut self, n: u64) -> (u64, u64) {
        let (mut clusters, mut members) = (0, 0);
        for x in 0..n {
            let p = self.parent(x);
            if p != x {
                // p < x, so p already points at its root.
                let root = self.parent(p);
                let rv = self.a.get(root);
                if rv & IN_CLUSTER == 0 {
                    self.a.set(root, rv | IN_CLUSTER);
                    clusters += 1;
                    members += 1;
                }
                self.a.set(x, (root + 1) | IN_CLUSTER);
                members += 1;
            }
        }
        (clusters, members)
    }
}

// ---------------------------------------------------------------------------
// Builder and result.

/// Accumulates signatures, spilling sorted runs of `(band hash, rank)` and
/// `(exact hash, rank)` to files in `work_dir` when `memory_budget` is
/// reached; MinHash values go to a memory-mapped file indexed by rank.
pub struct Builder {
    cfg: DedupConfig,
    n_docs: u64,
    dir: WorkDir,
    seen: Vec<u64>,
    minhash: Option<DiskArray>,
    docs_per_run: usize,
    band_buf: Vec<BandRec>,
    exact_buf: Vec<ExactRec>,
    band_runs: Vec<PathBuf>,
    exact_runs: Vec<PathBuf>,
    docs: u64,
    spilled_bytes: u64,
}

impl Builder {
    /// Starts a build for documents of ranks `0..n_docs`.
    pub fn new(cfg: DedupConfig, n_docs: u64) -> Result<Self> {
        ensure!(
            cfg.ngram >= 1 && cfg.bands >= 1 && cfg.rows >= 1,
            "dedup: ngram, bands and rows must be at least 1"
        );
        ensure!(n_docs < IN_CLUSTER - 1, "dedup: too many documents");
        if let Some(t) = cfg.verify_threshold {
            ensure!(
                (0.0..=1.0).contains(&t),
                "dedup: verify_threshold {t} is not in [0, 1]"
            );
        }
        let mut dir = WorkDir::create(&cfg.work_dir)?;
        let minhash = match cfg.verify_threshold {
            Some(_) => Some(DiskArray::new(
                &mut dir,
                "minhash",
                n_docs * cfg.num_hashes() as u64 * 4,
            )?),
            None => None,
        };
        let per_doc = cfg.bands * BandRec::SIZE + ExactRec::SIZE;
        let docs_per_run = (cfg.memory_budget / per_doc).max(1);
        Ok(Builder {
            seen: vec![0; n_docs.div_ceil(64) as usize],
            minhash,
            band_buf: Vec::with_capacity(docs_per_run.min(1 << 16) * cfg.bands),
            exact_buf: Vec::with_capacity(docs_per_run.min(1 << 16)),
            docs_per_run,
            band_runs: Vec::new(),
            exact_runs: Vec::new(),
            docs: 0,
            spilled_bytes: 0,
            cfg,
            n_docs,
            dir,
        })
    }

    /// Adds the signature of the document of rank `rank` (each rank at most
    /// once, in any order).
    pub fn add(&mut self, rank: u64, sig: &Signature) -> Result<()> {
        ensure!(
            rank < self.n_docs,
            "dedup: rank {rank} out of range (n_docs = {})",
            self.n_docs
        );
        let (w, bit) = ((rank / 64) as usize, 1u64 << (rank % 64));
        ensure!(self.seen[w] & bit == 0, "dedup: rank {rank} added twice");
        ensure!(
            sig.bands.is_empty() || sig.bands.len() == self.cfg.bands,
            "dedup: signature has {} bands, the configuration {}",
            sig.bands.len(),
            self.cfg.bands
        );
        if let Some(mh) = &mut self.minhash {
            let k = self.cfg.num_hashes();
            if !sig.bands.is_empty() {
                ensure!(
                    sig.minhash.len() == k,
                    "dedup: signature computed without verification but verify_threshold is set"
                );
                let o = rank as usize * k * 4;
                let out = &mut mh.bytes_mut()[o..o + k * 4];
                for (o, v) in out.chunks_exact_mut(4).zip(&sig.minhash) {
                    o.copy_from_slice(&v.to_le_bytes());
                }
            }
        }
        self.seen[w] |= bit;
        self.docs += 1;
        self.exact_buf.push((sig.exact, rank));
        self.band_buf.extend(sig.bands.iter().map(|&h| (h, rank)));
        if self.exact_buf.len() >= self.docs_per_run {
            self.spill()?;
        }
        Ok(())
    }

    fn spill(&mut self) -> Result<()> {
        let budget = self.cfg.memory_budget;
        if !self.band_buf.is_empty() {
            self.band_buf.sort_unstable();
            let it = self.band_buf.drain(..).map(Ok);
            let (p, b) = write_run(&mut self.dir, "bands", it, budget)?;
            self.band_runs.push(p);
            self.spilled_bytes += b;
        }
        if !self.exact_buf.is_empty() {
            self.exact_buf.sort_unstable();
            let it = self.exact_buf.drain(..).map(Ok);
            let (p, b) = write_run(&mut self.dir, "exact", it, budget)?;
            self.exact_runs.push(p);
            self.spilled_bytes += b;
        }
        Ok(())
    }

    /// Merges the runs and computes exact-duplicate groups and near-duplicate
    /// clusters.
    pub fn finish(mut self) -> Result<DedupResult> {
        let budget = self.cfg.memory_budget;
        let n = self.n_docs;
        let mut stats = DedupStats {
            docs: self.docs,
            spilled_runs: (self.band_runs.len() + self.exact_runs.len()) as u64,
            spilled_bytes: self.spilled_bytes,
            ..DedupStats::default()
        };

        // Exact duplicates: groups of equal hash, ranks ascending.
        let mut dup = DiskArray::new(&mut self.dir, "dup", n * 8)?;
        let mut mem = std::mem::take(&mut self.exact_buf);
        mem.sort_unstable();
        let runs = std::mem::take(&mut self.exact_runs);
        let mut m = merge_all::<ExactRec>(&mut self.dir, "exact", runs, mem, budget)?;
        let mut cur: Option<(u128, u64)> = None;
        while let Some((h, rank)) = m.next()? {
            match cur {
                Some((ch, first)) if ch == h => {
                    dup.set(rank, first + 1);
                    stats.exact_dups += 1;
                }
                _ => cur = Some((h, rank)),
            }
        }
        drop(m);

        // Near duplicates: buckets of equal band hash, ranks ascending.
        let mut forest = Forest {
            a: DiskArray::new(&mut self.dir, "forest", n * 8)?,
        };
        let k = self.cfg.num_hashes();
        let min_equal = self
            .cfg
            .verify_threshold
            .map(|t| (0..=k).find(|&e| e as f64 / k as f64 >= t).unwrap_or(k));
        let mut mem = std::mem::take(&mut self.band_buf);
        mem.sort_unstable();
        let runs = std::mem::take(&mut self.band_runs);
        let mut m = merge_all::<BandRec>(&mut self.dir, "bands", runs, mem, budget)?;
        let mut key = None;
        let mut members: Vec<u64> = Vec::with_capacity(MAX_BUCKET_COMPARE);
        let mh = self.minhash.as_ref();
        let sig_of = |r: u64| {
            let b = mh.expect("verification on").bytes();
            let o = r as usize * k * 4;
            &b[o..o + k * 4]
        };
        while let Some((h, x)) = m.next()? {
            if key != Some(h) {
                key = Some(h);
                members.clear();
            }
            let mut rx = forest.find(x);
            let mut joined = false;
            for &y in &members {
                let ry = forest.find(y);
                if ry == rx {
                    joined = true;
                    continue;
                }
                stats.candidate_pairs += 1;
                let ok = match min_equal {
                    None => true,
                    Some(e) => {
                        let (a, b) = (sig_of(x), sig_of(y));
                        let eq = a
                            .chunks_exact(4)
                            .zip(b.chunks_exact(4))
                            .filter(|(p, q)| p == q)
                            .count();
                        eq >= e
                    }
                };
                if ok {
                    stats.verified_pairs += 1;
                    rx = forest.link(rx, ry);
                    joined = true;
                }
            }
            if members.len() < MAX_BUCKET_COMPARE
                && (members.len() < BUCKET_EARLY_MEMBERS || !joined)
            {
                members.push(x);
            }
        }
        drop(m);
        let (clusters, in_clusters) = forest.finalize(n);
        stats.clusters = clusters;
        stats.docs_in_clusters = in_clusters;
        Ok(DedupResult {
            n_docs: n,
            dup,
            forest,
            stats,
        })
    }
}

/// Counters of a dedup run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DedupStats {
    /// Documents added.
    pub docs: u64,
    /// Documents that are exact duplicates of an earlier one.
    pub exact_dups: u64,
    /// Near-duplicate clusters of two or more documents.
    pub clusters: u64,
    /// Documents in those clusters (representatives included).
    pub docs_in_clusters: u64,
    /// Pairs sharing a band hash that were checked (pairs already in one
    /// cluster are not counted).
    pub candidate_pairs: u64,
    /// Candidate pairs that passed verification and were joined.
    pub verified_pairs: u64,
    /// Sorted run files written before the final merge.
    pub spilled_runs: u64,
    /// Bytes written to those runs.
    pub spilled_bytes: u64,
}

/// Results indexed by rank.
pub struct DedupResult {
    n_docs: u64,
    dup: DiskArray,
    forest: Forest,
    stats: DedupStats,
}

impl DedupResult {
    /// `Some(first)` when the document is an exact duplicate of the document
    /// of rank `first` (the smallest rank with the same normalized text).
    pub fn dup_of(&self, rank: u64) -> Option<u64> {
        if rank >= self.n_docs {
            return None;
        }
        self.dup.get(rank).checked_sub(1)
    }

    /// `Some(rep)`, the smallest rank of the document's near-duplicate
    /// cluster, when the cluster has two or more members (`rep` may be `rank`
    /// itself).
    pub fn cluster_rep(&self, rank: u64) -> Option<u64> {
        if rank >= self.n_docs {
            return None;
        }
        let v = self.forest.a.get(rank);
        if v & IN_CLUSTER == 0 {
            return None;
        }
        match v & !IN_CLUSTER {
            0 => Some(rank),
            p => Some(p - 1),
        }
    }

    /// Counters.
    pub fn stats(&self) -> DedupStats {
        self.stats
    }

    /// Number of ranks (`n_docs` of the builder).
    pub fn len(&self) -> u64 {
        self.n_docs
    }

    /// True when `n_docs` was 0.
    pub fn is_empty(&self) -> bool {
        self.n_docs == 0
    }
}

/// Probability that a pair of Jaccard similarity `j` shares at least one band
/// (`1 - (1 - j^rows)^bands`).
pub fn lsh_probability(j: f64, bands: usize, rows: usize) -> f64 {
    1.0 - (1.0 - j.powi(rows as i32)).powi(bands as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        let mut b = String::new();
        normalize_for_exact(s, &mut b);
        b
    }

    /// A signature with one band hash `shared` and the others unique to
    /// `rank`, all MinHash values equal to `mh`.
    fn sig(rank: u64, shared: u64, mh: u32) -> Signature {
        let mut bands = vec![shared];
        bands.extend((1..14).map(|b| (rank << 8) | b));
        Signature {
            exact: rank as u128,
            bands,
            minhash: vec![mh; 112],
        }
    }

    #[test]
    fn a_large_cluster_does_not_hide_another_in_its_bucket() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = DedupConfig::new(dir.path().to_path_buf());
        // Ranks 0..100: cluster A; 100..110: cluster B, sharing A's band.
        let mut b = Builder::new(cfg, 110).unwrap();
        for r in 0..110u64 {
            let mh = if r < 100 { 1 } else { 2 };
            b.add(r, &sig(r, 0xfeed, mh)).unwrap();
        }
        let res = b.finish().unwrap();
        for r in 0..100 {
            assert_eq!(res.cluster_rep(r), Some(0), "A member {r}");
        }
        for r in 100..110 {
            assert_eq!(res.cluster_rep(r), Some(100), "B member {r}");
        }
        assert_eq!(res.stats().clusters, 2);
    }

    #[test]
    fn normalization() {
        assert_eq!(norm("  Hello,   World!\n"), "hello world");
        assert_eq!(norm("don't-stop"), "don t stop");
        assert_eq!(norm("Straße ÉCOLE"), "straße école");
        // NFKC: ligature and full-width letters.
        assert_eq!(norm("ﬁne ＡＢＣ"), "fine abc");
        // Combining accent composes; soft hyphen and zero-width space vanish.
        assert_eq!(norm("e\u{301}t\u{e9}"), "\u{e9}t\u{e9}");
        assert_eq!(
            norm("co\u{ad}operate zero\u{200b}width"),
            "cooperate zerowidth"
        );
        // CJK characters are words by themselves.
        assert_eq!(norm("日本語のテキスト"), "日 本 語 の テ キ ス ト");
        assert_eq!(norm("a+b = c"), "a b c");
        assert_eq!(norm("...!!!"), "");
    }

    /// Segment-wise NFKC equals NFKC of the whole text.
    #[test]
    fn segmented_nfkc() {
        let pool = [
            'a',
            'E',
            'e',
            '\u{301}',
            '\u{327}',
            '\u{316}',
            '\u{a0}',
            '\u{fb01}',
            '\u{1100}',
            '\u{1161}',
            '\u{11a8}',
            '\u{ac00}',
            '\u{212b}',
            '\u{344}',
            '\u{2460}',
            '\u{ff71}',
            '\u{3099}',
            '\u{304b}',
            ' ',
            '.',
            '\u{130}',
            '\u{3a3}',
            '\u{200b}',
            '\u{1e9b}',
            '\u{323}',
            '\u{fdfa}',
            '\u{1f600}',
            '\u{2126}',
        ];
        let mut st = 1u64;
        for _ in 0..20_000 {
            let len = 1 + splitmix64(&mut st) as usize % 12;
            let t: String = (0..len)
                .map(|_| pool[splitmix64(&mut st) as usize % pool.len()])
                .collect();
            let whole: String = t.nfkc().collect();
            assert_eq!(norm(&t), norm(&whole), "{t:?}");
            let mut w = Vec::new();
            let mut wr = WordWriter {
                out: &mut w,
                in_word: false,
                start: 0,
                words: None,
            };
            for c in t.nfkc() {
                wr.char(c);
            }
            wr.end_word();
            assert_eq!(norm(&t).as_bytes(), &w[..], "{t:?}");
        }
    }

    #[test]
    fn signature_shape_and_purity() {
        let cfg = DedupConfig::new(std::env::temp_dir());
        let s = signature("one two three four five six seven", &cfg);
        assert_eq!(s.band_hashes().len(), 14);
        assert_eq!(s.minhashes().len(), 112);
        assert_eq!(s, signature("One, two; THREE four five six seven.", &cfg));
        assert_ne!(s, signature("one two three four five six eight", &cfg));
        let e = signature("  ", &cfg);
        assert!(e.band_hashes().is_empty());
        let short = signature("just three words", &cfg);
        assert_eq!(short.band_hashes().len(), 14);
        let mut c2 = cfg.clone();
        c2.seed = 1;
        assert_ne!(
            s.band_hashes(),
            signature("one two three four five six seven", &c2).band_hashes()
        );
    }

    #[test]
    fn kernel_matches_scalar() {
        let xs: Vec<u32> = (0..1000u32).map(|i| fmix32(i.wrapping_mul(7))).collect();
        let perm: Vec<u32> = (0..37u32).map(|i| fmix32(i + 99)).collect();
        let mut a = vec![u32::MAX; perm.len()];
        minhash(&xs, &perm, &mut a);
        let b: Vec<u32> = perm
            .iter()
            .map(|&p| xs.iter().map(|&x| fmix32(x ^ p)).min().unwrap())
            .collect();
        assert_eq!(a, b);
    }

    #[test]
    fn forest_unions_by_min() {
        let mut dir = WorkDir::create(&std::env::temp_dir()).unwrap();
        let mut f = Forest {
            a: DiskArray::new(&mut dir, "f", 10 * 8).unwrap(),
        };
        let (a, b) = (f.find(7), f.find(3));
        f.link(a, b);
        let (a, b) = (f.find(9), f.find(7));
        f.link(a, b);
        let (a, b) = (f.find(5), f.find(6));
        f.link(a, b);
        assert_eq!(f.finalize(10), (2, 5));
        let d = DedupResult {
            n_docs: 10,
            dup: DiskArray::new(&mut dir, "d", 80).unwrap(),
            forest: f,
            stats: DedupStats::default(),
        };
        let reps: Vec<_> = (0..10).map(|r| d.cluster_rep(r)).collect();
        assert_eq!(
            reps,
            [
                None,
                None,
                None,
                Some(3),
                None,
                Some(5),
                Some(5),
                Some(3),
                None,
                Some(3)
            ]
        );
    }

    #[test]
    fn rejects_bad_adds() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = DedupConfig::new(dir.path().to_owned());
        let s = signature("a b c d e f", &cfg);
        let mut b = Builder::new(cfg.clone(), 2).unwrap();
        b.add(0, &s).unwrap();
        assert!(b.add(0, &s).is_err());
        assert!(b.add(2, &s).is_err());
        let mut off = cfg.clone();
        off.verify_threshold = None;
        assert!(b.add(1, &signature("a b c d e f", &off)).is_err());
        let r = b.finish().unwrap();
        assert_eq!(r.stats().docs, 1);
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            0,
            "work dir cleaned"
        );
    }
}
