//! Query latency on a 20k-document corpus built once per run: facet-only
//! counts, a selective numeric query, `not`, globs, byte totals from the
//! `bytes` column, opening a snapshot, and parsing alone; and, on the same
//! corpus plus 3,000 exact copies, tagged with language, pii and dedup,
//! queries and `stats` on signal columns (`dup_of` has one value per
//! duplicated text: a high-cardinality sidecar facet).
//!
//! Throughput is the corpus's JSONL bytes answered per second (what a scan
//! of the input would have to read), except for parsing, where it is the
//! query's own bytes. Documents come from the ingest bench's seeded
//! generator.
//!
//! ```sh
//! cargo bench --bench query
//! ```

use std::io::Cursor;
use std::time::Duration;

use corpusql::{ingest, Corpus, IngestOptions, Input};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

#[path = "ingest.rs"]
#[allow(dead_code)]
mod ingest_bench;

use ingest_bench::corpus_gen::{self, Q1, Q2};

fn bench_query(c: &mut Criterion) {
    let data = corpus_gen::generate(corpus_gen::DOCS, corpus_gen::SEED);
    let input_bytes = data.len() as u64;
    let dir = tempfile::tempdir().expect("tempdir");
    let input = Input::Reader("bench.jsonl".into(), Box::new(Cursor::new(data)));
    ingest(dir.path(), vec![input], &IngestOptions::default()).expect("ingest");
    let corpus = Corpus::open(dir.path()).expect("open");

    let mut g = c.benchmark_group("query");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Bytes(input_bytes));
    let cases = [
        ("count_q1_facets", Q1),
        ("count_q2_numeric", Q2),
        (
            "count_not",
            "not (lang=fr or lang=en) and license != unknown",
        ),
        ("count_glob_prefix", "license = cc-by-*"),
        ("count_glob_inner", "source = src_?7 and lang = code"),
    ];
    for (name, q) in cases {
        assert!(
            corpus.query(q).expect("query").count() > 0,
            "{q} matches nothing"
        );
        g.bench_function(name, |b| b.iter(|| corpus.query(q).expect("query").count()));
    }
    g.bench_function("text_bytes_q1", |b| {
        b.iter(|| {
            corpus
                .query(Q1)
                .expect("query")
                .text_bytes()
                .expect("bytes")
        })
    });
    g.bench_function("open_snapshot", |b| {
        b.iter(|| Corpus::open(dir.path()).expect("open").len())
    });
    g.finish();
    drop(corpus);

    // Signals: copies of 3,000 documents under new keys, then tagging.
    let extra: Vec<u8> = corpus_gen::generate(corpus_gen::DOCS, corpus_gen::SEED)
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .take(3000)
        .flat_map(|l| {
            let mut v: serde_json::Value = serde_json::from_slice(l).expect("json");
            let id = format!("copy-{}", v["id"]);
            v["id"] = serde_json::Value::String(id);
            let mut line = serde_json::to_vec(&v).expect("json");
            line.push(b'\n');
            line
        })
        .collect();
    let input = Input::Reader("copies.jsonl".into(), Box::new(Cursor::new(extra)));
    ingest(dir.path(), vec![input], &IngestOptions::default()).expect("ingest copies");
    let opts = corpusql::raw::tag::TagOptions {
        taggers: vec![
            corpusql::raw::tag::Tagger::Language,
            corpusql::raw::tag::Tagger::Pii,
            corpusql::raw::tag::Tagger::Dedup,
        ],
        ..Default::default()
    };
    corpusql::raw::tag::tag(dir.path(), &opts).expect("tag");
    let corpus = Corpus::open(dir.path()).expect("open");
    let mut g = c.benchmark_group("signals");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    let q = "is_dup = false and pii_email = 0 and lang_score > 0.5";
    assert!(corpus.query(q).expect("query").count() > 0);
    g.bench_function("count_signals", |b| {
        b.iter(|| corpus.query(q).expect("query").count())
    });
    let dups = corpus.query("is_dup = true").expect("query");
    assert!(dups.count() >= 3000, "{} duplicates", dups.count());
    let by = vec!["dup_of".to_string()];
    g.bench_function("stats_by_dup_of", |b| {
        b.iter(|| {
            corpusql::raw::stats::stats(&corpus, &dups, &by)
                .expect("stats")
                .groups
                .len()
        })
    });
    g.finish();

    let mut g = c.benchmark_group("parse");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(1));
    for (name, q) in [("q1", Q1), ("q2", Q2)] {
        g.throughput(Throughput::Bytes(q.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| corpusql::raw::query::parse(std::hint::black_box(q)).expect("parse"))
        });
    }
    g.finish();
}

criterion_group!(benches, bench_query);
criterion_main!(benches);
