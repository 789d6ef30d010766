//! Export throughput: every document of a Q1-like selection (about 19 % of
//! a 20k-document corpus) written as JSONL into memory, whole records, a
//! projection, and records followed by their derived license facets and
//! pii/quality signals (`--signals`) or a projection naming signals.
//! Throughput is the bytes of JSONL produced. Documents come from the ingest
//! bench's seeded generator.
//!
//! ```sh
//! cargo bench --bench export
//! ```

use std::io::Cursor;
use std::time::Duration;

use corpusql::raw::export::{write_jsonl, Projection};
use corpusql::{ingest, Corpus, IngestOptions, Input};
use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};

#[path = "ingest.rs"]
#[allow(dead_code)]
mod ingest_bench;

use ingest_bench::corpus_gen::{self, Q1};

fn bench_export(c: &mut Criterion) {
    let data = corpus_gen::generate(corpus_gen::DOCS, corpus_gen::SEED);
    let dir = tempfile::tempdir().expect("tempdir");
    let input = Input::Reader("bench.jsonl".into(), Box::new(Cursor::new(data)));
    ingest(dir.path(), vec![input], &IngestOptions::default()).expect("ingest");
    let opts = corpusql::raw::tag::TagOptions {
        taggers: vec![
            corpusql::raw::tag::Tagger::Quality,
            corpusql::raw::tag::Tagger::Pii,
        ],
        ..Default::default()
    };
    corpusql::raw::tag::tag(dir.path(), &opts).expect("tag");
    let corpus = Corpus::open(dir.path()).expect("open");
    let sel = corpus.query(Q1).expect("query");

    let mut g = c.benchmark_group("export");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    let projections = [
        ("jsonl_q1_whole_records", Projection::All),
        ("jsonl_q1_id_license", Projection::parse(Some("id,license"))),
        ("jsonl_q1_with_signals", Projection::WithSignals),
        (
            "jsonl_q1_id_signals",
            Projection::parse(Some("id,license_class,rps_doc_word_count,pii_email")),
        ),
    ];
    for (name, proj) in projections {
        let mut out = Vec::new();
        let n = write_jsonl(&sel, &proj, &mut out).expect("export");
        assert_eq!(n, sel.count());
        let len = out.len();
        g.throughput(Throughput::Bytes(len as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                write_jsonl(&sel, &proj, &mut out).expect("export");
                assert_eq!(out.len(), len);
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_export);
criterion_main!(benches);
