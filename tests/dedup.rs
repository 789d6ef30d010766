//! Tests of the `dedup` tagger: recall and false positives on planted near
//! duplicates of known Jaccard similarity, exact-duplicate groups,
//! determinism under shuffled add order and spilling, out-of-core operation.
//! `cargo test --release --test dedup -- --ignored --nocapture` runs the
//! throughput measurements.

use std::collections::HashSet;
use std::path::Path;
use std::time::Instant;

use corpusql::raw::tag::dedup::{
    lsh_probability, signature, Builder, DedupConfig, DedupResult, Signature,
};
use rayon::prelude::*;

/// splitmix64, so that tests need no random-number crate.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        corpusql::raw::hash::splitmix64(&mut self.0)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            v.swap(i, self.below(i + 1));
        }
    }
}

/// `n` distinct synthetic lowercase words (normalization leaves them alone).
fn vocabulary(n: usize, rng: &mut Rng) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let len = 3 + rng.below(8);
        let w: String = (0..len)
            .map(|_| (b'a' + rng.below(26) as u8) as char)
            .collect();
        if seen.insert(w.clone()) {
            out.push(w);
        }
    }
    out
}

fn shingles(words: &[usize], n: usize) -> HashSet<&[usize]> {
    if words.len() < n {
        return std::iter::once(words).collect();
    }
    words.windows(n).collect()
}

fn jaccard(a: &[usize], b: &[usize]) -> f64 {
    let (sa, sb) = (shingles(a, 5), shingles(b, 5));
    let inter = sa.intersection(&sb).count();
    inter as f64 / (sa.len() + sb.len() - inter) as f64
}

fn text(words: &[usize], vocab: &[String]) -> String {
    let v: Vec<&str> = words.iter().map(|&w| vocab[w].as_str()).collect();
    v.join(" ")
}

fn build(cfg: &DedupConfig, sigs: &[Signature], order: &[usize]) -> DedupResult {
    let mut b = Builder::new(cfg.clone(), sigs.len() as u64).unwrap();
    for &r in order {
        b.add(r as u64, &sigs[r]).unwrap();
    }
    b.finish().unwrap()
}

fn same_cluster(r: &DedupResult, a: u64, b: u64) -> bool {
    matches!((r.cluster_rep(a), r.cluster_rep(b)), (Some(x), Some(y)) if x == y)
}

/// Base documents and one variant each whose true shingle Jaccard with its
/// base spans 0.25..1: recall at 0.85..0.9 and false positives below 0.5.
#[test]
fn planted_near_duplicates() {
    let mut rng = Rng(42);
    let vocab = vocabulary(20_000, &mut rng);
    let n_pairs = 3000;
    let mut docs: Vec<Vec<usize>> = Vec::with_capacity(2 * n_pairs);
    let mut truth = Vec::with_capacity(n_pairs);
    for _ in 0..n_pairs {
        let len = 200 + rng.below(801);
        let base: Vec<usize> = (0..len).map(|_| rng.below(vocab.len())).collect();
        // Fraction of changed shingles for a target similarity t, and the
        // number of edits that changes about that many.
        let t = 0.25 + 0.75 * rng.unit();
        let f = (1.0 - t) / (1.0 + t);
        let edits = (len as f64 * (1.0 - (1.0 - f).powf(0.2))).round() as usize;
        let mut var = base.clone();
        for _ in 0..edits {
            let at = rng.below(var.len());
            match rng.below(4) {
                0 => var.insert(at, rng.below(vocab.len())),
                1 if var.len() > 5 => {
                    var.remove(at);
                }
                _ => var[at] = rng.below(vocab.len()),
            }
        }
        truth.push(jaccard(&base, &var));
        docs.push(base);
        docs.push(var);
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = DedupConfig::new(dir.path().to_owned());
    let texts: Vec<String> = docs.iter().map(|d| text(d, &vocab)).collect();
    let sigs: Vec<Signature> = texts.par_iter().map(|t| signature(t, &cfg)).collect();
    let order: Vec<usize> = (0..sigs.len()).collect();
    let verified = build(&cfg, &sigs, &order);
    let mut raw_cfg = cfg.clone();
    raw_cfg.verify_threshold = None;
    let raw = build(&raw_cfg, &sigs, &order);

    // Per bucket of true similarity: pairs, flagged with and without
    // verification, and the LSH S-curve at the bucket's middle.
    let mut rows = vec![(0usize, 0usize, 0usize); 20];
    let (mut low, mut low_flagged) = (0, 0);
    let (mut hi, mut hi_found) = (0, 0);
    for (i, &j) in truth.iter().enumerate() {
        let (a, b) = (2 * i as u64, 2 * i as u64 + 1);
        let f = same_cluster(&verified, a, b);
        let bucket = ((j * 20.0).floor() as usize).min(19);
        rows[bucket].0 += 1;
        rows[bucket].1 += f as usize;
        rows[bucket].2 += same_cluster(&raw, a, b) as usize;
        if j < 0.5 {
            low += 1;
            low_flagged += f as usize;
        }
        if (0.85..0.9).contains(&j) {
            hi += 1;
            hi_found += f as usize;
        }
        // A cluster never spans two planted pairs (bases are independent).
        for r in [a, b] {
            if let Some(rep) = verified.cluster_rep(r) {
                assert_eq!(rep, a, "doc {r} clustered outside its pair");
            }
        }
    }
    println!("J bucket     pairs  flagged(verify)  flagged(LSH only)  S-curve");
    for (k, (n, f, r)) in rows.iter().enumerate().skip(6) {
        if *n > 0 {
            let mid = (k as f64 + 0.5) / 20.0;
            println!(
                "[{:.2},{:.2})  {n:5}  {:15.3}  {:17.3}  {:7.3}",
                k as f64 / 20.0,
                (k + 1) as f64 / 20.0,
                *f as f64 / *n as f64,
                *r as f64 / *n as f64,
                lsh_probability(mid, 14, 8)
            );
        }
    }
    let s = verified.stats();
    println!("{s:?}");
    assert!(hi >= 100 && low >= 500, "too few pairs: {hi} / {low}");
    let recall = hi_found as f64 / hi as f64;
    let fp = low_flagged as f64 / low as f64;
    println!(
        "recall at [0.85,0.9): {recall:.3} ({hi} pairs); flagged below 0.5: {fp:.4} ({low} pairs)"
    );
    assert!(recall >= 0.9, "recall {recall}");
    assert!(fp < 0.01, "false positives {fp}");
    // Without verification the raw LSH flags more low-similarity pairs.
    assert!(raw.stats().verified_pairs >= s.verified_pairs);
}

/// Texts with exact duplicates (after normalization), near duplicates and
/// clusters; used by the determinism and out-of-core tests.
fn mixed_corpus(n: usize, seed: u64) -> Vec<String> {
    let mut rng = Rng(seed);
    let vocab = vocabulary(5000, &mut rng);
    let mut docs: Vec<String> = Vec::with_capacity(n);
    let mut bases: Vec<Vec<usize>> = Vec::new();
    while docs.len() < n {
        match rng.below(10) {
            // Exact copy of an earlier document with case and punctuation changed.
            0 if !docs.is_empty() => {
                let d = docs[rng.below(docs.len())]
                    .to_uppercase()
                    .replace(' ', ",  ");
                docs.push(d);
            }
            // A light edit of an earlier base: a near duplicate.
            1 | 2 if !bases.is_empty() => {
                let mut v = bases[rng.below(bases.len())].clone();
                for _ in 0..1 + v.len() / 100 {
                    let at = rng.below(v.len());
                    v[at] = rng.below(vocab.len());
                }
                docs.push(text(&v, &vocab));
            }
            _ => {
                let len = 50 + rng.below(150);
                let b: Vec<usize> = (0..len).map(|_| rng.below(vocab.len())).collect();
                docs.push(text(&b, &vocab));
                bases.push(b);
            }
        }
    }
    docs.push(String::new());
    docs.push(" ... ".into());
    docs.push("short".into());
    docs
}

fn results(r: &DedupResult) -> Vec<(Option<u64>, Option<u64>)> {
    (0..r.len())
        .map(|i| (r.dup_of(i), r.cluster_rep(i)))
        .collect()
}

fn without_spill(
    mut s: corpusql::raw::tag::dedup::DedupStats,
) -> corpusql::raw::tag::dedup::DedupStats {
    s.spilled_runs = 0;
    s.spilled_bytes = 0;
    s
}

#[test]
fn deterministic_and_out_of_core() {
    let texts = mixed_corpus(20_000, 7);
    let dir = tempfile::tempdir().unwrap();
    let cfg = DedupConfig::new(dir.path().to_owned());
    let sigs: Vec<Signature> = texts.par_iter().map(|t| signature(t, &cfg)).collect();
    // Signatures do not depend on the thread that computes them.
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let seq: Vec<Signature> =
        one.install(|| texts.par_iter().map(|t| signature(t, &cfg)).collect());
    assert!(sigs == seq);

    let order: Vec<usize> = (0..sigs.len()).collect();
    let base = build(&cfg, &sigs, &order);
    assert_eq!(base.stats().spilled_runs, 0);
    let expect = results(&base);
    let s = base.stats();
    assert!(s.exact_dups > 1000 && s.clusters > 1000, "{s:?}");

    let mut rng = Rng(99);
    for budget in [4 << 10, 64 << 10] {
        let mut shuffled = order.clone();
        rng.shuffle(&mut shuffled);
        let mut c = cfg.clone();
        c.memory_budget = budget;
        let r = build(&c, &sigs, &shuffled);
        assert!(r.stats().spilled_runs > 10, "{:?}", r.stats());
        if budget == 4 << 10 {
            assert!(
                r.stats().spilled_runs > 2 * 64,
                "multi-pass merge not exercised"
            );
        }
        assert_eq!(without_spill(r.stats()), without_spill(s));
        assert!(results(&r) == expect, "budget {budget}: results differ");
    }
    // Nothing left in the work directory.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn exact_duplicate_groups() {
    let texts = [
        "The quick brown fox.",      // 0
        "something else entirely",   // 1
        "the QUICK   brown\tfox",    // 2 dup of 0
        "Something-else, entirely!", // 3 dup of 1
        "the quick brown fox jumps", // 4
        "THE QUICK BROWN FOX",       // 5 dup of 0
        "",                          // 6
        "?!",                        // 7 dup of 6 (both normalize to nothing)
    ];
    let dir = tempfile::tempdir().unwrap();
    let cfg = DedupConfig::new(dir.path().to_owned());
    let sigs: Vec<Signature> = texts.iter().map(|t| signature(t, &cfg)).collect();
    for order in [vec![5, 3, 1, 7, 0, 2, 4, 6], (0..8).collect()] {
        let r = build(&cfg, &sigs, &order);
        let dups: Vec<_> = (0..8).map(|i| r.dup_of(i)).collect();
        assert_eq!(
            dups,
            [None, None, Some(0), Some(1), None, Some(0), None, Some(6)]
        );
        assert_eq!(r.stats().exact_dups, 4);
        // Exact duplicates with words are also near duplicates; empty ones are not.
        assert_eq!(r.cluster_rep(5), Some(0));
        assert_eq!(r.cluster_rep(0), Some(0));
        assert_eq!(r.cluster_rep(3), Some(1));
        assert_eq!(r.cluster_rep(6), None);
        assert_eq!(r.cluster_rep(7), None);
        assert_eq!(r.dup_of(100), None);
    }
}

#[test]
fn clusters_take_smallest_rank_and_chain() {
    // d1 ~ d2 ~ d3 each one word apart in 200; 0 and 4 unrelated.
    let mut rng = Rng(3);
    let vocab = vocabulary(1000, &mut rng);
    let a: Vec<usize> = (0..200).map(|_| rng.below(1000)).collect();
    let mut b = a.clone();
    b[100] = (b[100] + 1) % 1000;
    let mut c = b.clone();
    c[10] = (c[10] + 1) % 1000;
    let other = |rng: &mut Rng| -> Vec<usize> { (0..200).map(|_| rng.below(1000)).collect() };
    let docs = [other(&mut rng), c, b, a, other(&mut rng)];
    let dir = tempfile::tempdir().unwrap();
    let cfg = DedupConfig::new(dir.path().to_owned());
    let sigs: Vec<Signature> = docs
        .iter()
        .map(|d| signature(&text(d, &vocab), &cfg))
        .collect();
    let r = build(&cfg, &sigs, &[4, 3, 2, 1, 0]);
    let reps: Vec<_> = (0..5).map(|i| r.cluster_rep(i)).collect();
    assert_eq!(reps, [None, Some(1), Some(1), Some(1), None]);
    assert_eq!(r.stats().clusters, 1);
    assert_eq!(r.stats().docs_in_clusters, 3);
}

fn real_texts(limit: usize) -> Vec<String> {
    use std::io::BufRead;
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/realcorpus-dev.jsonl.zst");
    let f = std::fs::File::open(path).unwrap();
    let r = std::io::BufReader::new(zstd::Decoder::new(f).unwrap());
    r.lines()
        .take(limit)
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(&l.unwrap()).unwrap();
            v["text"].as_str().unwrap_or("").to_owned()
        })
        .collect()
}

/// Single-thread signature throughput on the real corpus, and the pipeline
/// (signatures, adds, finish) on it.
#[test]
#[ignore]
fn throughput_realcorpus() {
    let texts = real_texts(usize::MAX);
    let bytes: usize = texts.iter().map(|t| t.len()).sum();
    let dir = tempfile::tempdir().unwrap();
    let cfg = DedupConfig::new(dir.path().to_owned());
    let t = Instant::now();
    let sigs: Vec<Signature> = texts.iter().map(|t| signature(t, &cfg)).collect();
    let secs = t.elapsed().as_secs_f64();
    println!(
        "signature, 1 thread: {} docs, {:.1} MiB in {secs:.2} s: {:.0} docs/s, {:.1} MiB/s",
        texts.len(),
        bytes as f64 / (1 << 20) as f64,
        texts.len() as f64 / secs,
        bytes as f64 / (1 << 20) as f64 / secs
    );
    let t = Instant::now();
    let order: Vec<usize> = (0..sigs.len()).collect();
    let r = build(&cfg, &sigs, &order);
    println!(
        "build+finish: {:.2} s; {:?}",
        t.elapsed().as_secs_f64(),
        r.stats()
    );
}

/// The whole pipeline on 100k synthetic documents.
#[test]
#[ignore]
fn pipeline_100k() {
    let texts = mixed_corpus(100_000, 11);
    let bytes: usize = texts.iter().map(|t| t.len()).sum();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = DedupConfig::new(dir.path().to_owned());
    for (threads, budget) in [(1, 256 << 20), (0, 256 << 20), (0, 1 << 20)] {
        cfg.memory_budget = budget;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let t = Instant::now();
        let sigs: Vec<Signature> =
            pool.install(|| texts.par_iter().map(|t| signature(t, &cfg)).collect());
        let ts = t.elapsed().as_secs_f64();
        let order: Vec<usize> = (0..sigs.len()).collect();
        let t = Instant::now();
        let r = build(&cfg, &sigs, &order);
        let tb = t.elapsed().as_secs_f64();
        println!(
            "100k docs ({:.0} MiB), {} threads, budget {budget}: signatures {ts:.2} s, build+finish {tb:.2} s; {:?}",
            bytes as f64 / (1 << 20) as f64,
            pool.current_num_threads(),
            r.stats()
        );
    }
}
