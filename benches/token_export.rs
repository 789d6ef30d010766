//! Token-file export throughput: every document of a Q1-like selection of
//! the ingest bench's seeded corpus written as Megatron `.bin`/`.idx` and
//! as nanotron `.ds` files (with provenance) by the byte tokenizer, so the
//! reading, encoding and writing around a tokenizer are what is measured.
//! Throughput is the text bytes tokenized.
//!
//! ```sh
//! cargo bench --bench token_export
//! ```

use std::io::Cursor;
use std::time::Duration;

use corpusql::raw::export::tokens::{write_token_files, TokenFormat};
use corpusql::{ingest, Corpus, IngestOptions, Input, Tokenizer};
use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};

#[path = "ingest.rs"]
#[allow(dead_code)]
mod ingest_bench;

use ingest_bench::corpus_gen::{self, Q1};

fn bench_token_export(c: &mut Criterion) {
    let data = corpus_gen::generate(corpus_gen::DOCS, corpus_gen::SEED);
    let dir = tempfile::tempdir().expect("tempdir");
    let input = Input::Reader("bench.jsonl".into(), Box::new(Cursor::new(data)));
    ingest(dir.path(), vec![input], &IngestOptions::default()).expect("ingest");
    let corpus = Corpus::open(dir.path()).expect("open");
    let sel = corpus.query(Q1).expect("query");
    let bytes = sel.text_bytes().expect("bytes");
    let tok = Tokenizer::load("bytes").expect("tokenizer");
    let out = tempfile::tempdir().expect("tempdir");

    let mut g = c.benchmark_group("token_export");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Bytes(bytes));
    for format in [TokenFormat::Megatron, TokenFormat::Nanotron] {
        let prefix = out.path().join(format.name());
        g.bench_function(format!("{}_q1_bytes", format.name()), |b| {
            b.iter(|| {
                let f = write_token_files(&sel, &tok, "bytes", format, &prefix, "license")
                    .expect("export");
                assert_eq!(f.documents, sel.count());
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_token_export);
criterion_main!(benches);
