//! Streamer throughput: packed byte-token sequences of a Q1-like selection
//! (every match once) and of a 60/30/10 mixture by tokens, measured in
//! tokens (reported as bytes: one u32 token id each) per second; plus the
//! scheduler alone (order and interleaving from token counts, no text);
//! one DataLoader worker's share of the mixture (worker 1 of 4, blocks of
//! 16 sequences: what each `TokenDataset` worker computes), and the u16
//! encoding of a batch (what crosses to Python).
//!
//! ```sh
//! cargo bench --bench stream
//! ```

use std::io::Cursor;
use std::time::Duration;

use corpusql::raw::train::mixture::{self, Mixture};
use corpusql::raw::train::{Encoding, Engine, EngineOptions, Schedule, WorkerSplit};
use corpusql::{ingest, Corpus, IngestOptions, Input};
use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};

#[path = "ingest.rs"]
#[allow(dead_code)]
mod ingest_bench;

use ingest_bench::corpus_gen::{self, Q1};

const MIX: &str = r#"
seed = 1234
tokens = 8_000_000
seq_len = 2048
tokenizer = "bytes"
[[component]]
name = "fr"
query = "lang=fr"
weight = 0.6
[[component]]
name = "en"
query = "lang=en"
weight = 0.3
[[component]]
name = "code"
query = "lang=code"
weight = 0.1
"#;

fn drain(corpus: &Corpus, m: &Mixture) -> u64 {
    drain_with(corpus, m, EngineOptions::default())
}

fn drain_with(corpus: &Corpus, m: &Mixture, opts: EngineOptions) -> u64 {
    let mut e = Engine::new(corpus, m, opts).expect("engine");
    let mut tokens = 0u64;
    while let Some(b) = e.next_batch(256).expect("batch") {
        tokens += b.tokens().len() as u64;
    }
    tokens
}

fn bench_stream(c: &mut Criterion) {
    let data = corpus_gen::generate(corpus_gen::DOCS, corpus_gen::SEED);
    let dir = tempfile::tempdir().expect("tempdir");
    let input = Input::Reader("bench.jsonl".into(), Box::new(Cursor::new(data)));
    ingest(dir.path(), vec![input], &IngestOptions::default()).expect("ingest");
    let corpus = Corpus::open(dir.path()).expect("open");

    let mut g = c.benchmark_group("stream");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    let cases = [
        (
            "bytes_q1_every_match_once",
            Mixture::inline(Q1, "bytes", 2048, 0),
        ),
        (
            "bytes_mix_60_30_10",
            Mixture::from_toml(MIX, "bench").expect("mixture"),
        ),
    ];
    for (name, m) in cases {
        let tokens = drain(&corpus, &m);
        assert!(tokens > 0);
        g.throughput(Throughput::Bytes(tokens * 4));
        g.bench_function(name, |b| b.iter(|| assert_eq!(drain(&corpus, &m), tokens)));
    }
    let m = Mixture::from_toml(MIX, "bench").expect("mixture");
    let worker = EngineOptions {
        split: WorkerSplit {
            worker: 1,
            workers: 4,
            block: 16,
            skip: 0,
        },
        ..EngineOptions::default()
    };
    let tokens = drain_with(&corpus, &m, worker);
    assert!(tokens > 0);
    g.throughput(Throughput::Bytes(tokens * 4));
    g.bench_function("bytes_mix_worker_1_of_4_blocks_16", |b| {
        b.iter(|| assert_eq!(drain_with(&corpus, &m, worker), tokens))
    });
    let batch = Engine::new(&corpus, &m, EngineOptions::default())
        .expect("engine")
        .next_batch(256)
        .expect("batch")
        .expect("a batch");
    g.throughput(Throughput::Bytes(batch.tokens().len() as u64 * 4));
    let mut out = Vec::new();
    g.bench_function("encode_u16_batch_256x2048", |b| {
        b.iter(|| batch.encode(Encoding::U16, &mut out).expect("encode"))
    });
    let (_, resolved) = mixture::plan(&corpus, &m).expect("plan");
    g.bench_function("schedule_only_mix", |b| {
        b.iter(|| {
            let mut s = Schedule::new(&corpus, &m, &resolved, &[]);
            (0..s.end()).filter_map(|i| s.place(i)).count()
        })
    });
    g.finish();
}

criterion_group!(benches, bench_stream);
criterion_main!(benches);
