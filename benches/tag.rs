//! Tagger throughput on real texts: quality signals, PII counts, language
//! detection, OCR noise and the MinHash signature, one thread, bytes of text
//! per second. Texts are a stride sample of `realcorpus-dev.jsonl.zst` (every
//! 25th document: 55 languages and code, as the file is grouped by source).
//! The comparison with datatrove is `benches/tag_vs_datatrove.sh`.
//!
//! ```sh
//! cargo bench --bench tag
//! ```

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::Duration;

use corpusql::raw::tag::dedup::{self, DedupConfig};
use corpusql::raw::tag::language::{Detector, LangConfig};
use corpusql::raw::tag::ocr::{self, Dictionaries};
use corpusql::raw::tag::{pii, quality};
use criterion::{black_box, criterion_group, criterion_main, Criterion, SamplingMode, Throughput};

const CORPUS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/data/realcorpus-dev.jsonl.zst"
);
/// Every `STRIDE`-th document of the file is used.
const STRIDE: usize = 25;

/// `(text, lang)` of the sampled documents.
fn sample() -> Vec<(String, String)> {
    let f = std::fs::File::open(CORPUS).unwrap_or_else(|e| panic!("{CORPUS}: {e}"));
    let r = BufReader::new(zstd::Decoder::new(f).expect("zstd"));
    let mut docs = Vec::new();
    for (i, line) in r.lines().enumerate() {
        let line = line.expect("read");
        if i % STRIDE != 0 {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(&line).expect("json");
        let text = v["text"].as_str().unwrap_or_default().to_string();
        let lang = v["lang"].as_str().unwrap_or("und").to_string();
        docs.push((text, lang));
    }
    docs
}

fn bench_taggers(c: &mut Criterion) {
    let docs = sample();
    let bytes: u64 = docs.iter().map(|(t, _)| t.len() as u64).sum();
    eprintln!(
        "tag bench: {} documents, {:.1} MiB of text",
        docs.len(),
        bytes as f64 / 1048576.0
    );
    let mut g = c.benchmark_group("tag");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Bytes(bytes));

    let mut scorer = quality::Scorer::new();
    let mut out = Vec::new();
    g.bench_function("quality_score", |b| {
        b.iter(|| {
            for (t, l) in &docs {
                scorer.score(t, Some(l), &mut out);
                black_box(&out);
            }
        })
    });

    g.bench_function("pii_counts", |b| {
        b.iter(|| {
            let mut n = 0u64;
            for (t, _) in &docs {
                n += pii::counts(t).iter().map(|&x| x as u64).sum::<u64>();
            }
            black_box(n)
        })
    });

    let det = Detector::new(&LangConfig::default()).expect("detector");
    g.bench_function("language_detect", |b| {
        b.iter(|| {
            for (t, _) in &docs {
                black_box(det.detect(t));
            }
        })
    });

    match Dictionaries::load_all(Path::new(ocr::DEFAULT_DICT_DIR)) {
        Ok(dicts) => {
            g.bench_function("ocr_score", |b| {
                b.iter(|| {
                    for (t, l) in &docs {
                        black_box(ocr::score(t, l, &dicts, &det));
                    }
                })
            });
        }
        Err(e) => eprintln!("tag/ocr_score skipped: {e:#}"),
    }

    let work = tempfile::tempdir().expect("tempdir");
    let cfg = DedupConfig::new(work.path().to_path_buf());
    g.bench_function("dedup_signature", |b| {
        b.iter(|| {
            for (t, _) in &docs {
                black_box(dedup::signature(t, &cfg));
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench_taggers);
criterion_main!(benches);
