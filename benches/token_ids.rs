//! Stored token ids (`src/token_ids.rs`): reading a corpus's ids back from
//! its `.cqi` files, per document ([`SegmentIds::read`]), per block
//! ([`SegmentIds::read_many`]) and cold (every chunk decompressed and
//! checked, [`SegmentIds::verify`]), next to what the byte tokenizer does
//! for the same documents (blocks decompressed, text bytes widened to ids)
//! and to writing the ids (BPE tokenization, compression, write) of a few
//! blocks. One thread for the reads; throughput in tokens (elements), the
//! end-of-document ids included where documents are read.
//!
//! The corpus is the ingest bench's seeded one; the tokenizer a byte-level
//! BPE of 8,000 ids trained on a tenth of it (`train_bpe`), so nothing is
//! downloaded.
//!
//! ```sh
//! cargo bench --bench token_ids
//! ```

use std::io::Cursor;
use std::time::Duration;

use corpusql::raw::token_ids::{keep_ids, write_segment_ids, SegmentIds};
use corpusql::raw::tokenize::train_bpe;
use corpusql::{ingest, Corpus, IngestOptions, Input, Tokenizer};
use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use roaring::RoaringBitmap;

#[path = "ingest.rs"]
#[allow(dead_code)]
mod ingest_bench;

use ingest_bench::corpus_gen;

fn bench_token_ids(c: &mut Criterion) {
    let data = corpus_gen::generate(corpus_gen::DOCS, corpus_gen::SEED);
    let dir = tempfile::tempdir().expect("tempdir");
    let input = Input::Reader("bench.jsonl".into(), Box::new(Cursor::new(data)));
    ingest(dir.path(), vec![input], &IngestOptions::default()).expect("ingest");
    let corpus = Corpus::open(dir.path()).expect("open");
    let tokenizer = dir.path().join("tokenizer.json");
    let sample = corpus.query("lang=fr").expect("query");
    train_bpe(&sample, 8000, &tokenizer).expect("train");
    let tok = Tokenizer::load(tokenizer.to_str().expect("utf-8")).expect("tokenizer");
    let kept = keep_ids(&corpus, &tok, &|_| {}).expect("keep ids");
    let ids: Vec<(SegmentIds, u32)> = corpus
        .segments()
        .iter()
        .map(|s| {
            let ids = SegmentIds::open(corpus.dir(), &s.entry.file, &s.segment, &tok.id())
                .expect("open")
                .expect("kept");
            (ids, s.segment.doc_count())
        })
        .collect();
    let tokens: u64 = ids
        .iter()
        .map(|(i, _)| i.counts().iter().map(|&c| c as u64).sum::<u64>())
        .sum();
    let stored: u64 = ids.iter().map(|(i, _)| i.stored_tokens()).sum();
    let text_bytes: u64 = corpus
        .segments()
        .iter()
        .map(|s| s.segment.meta().text_bytes)
        .sum();
    eprintln!(
        "{} documents, {text_bytes} text bytes, {tokens} tokens ({:.2} bytes of text per token), \
         {} bytes of ids ({:.3} bytes per id)",
        kept.documents,
        text_bytes as f64 / tokens as f64,
        kept.ids_bytes,
        kept.ids_bytes as f64 / stored as f64
    );
    let eos = tok.eos();

    let mut g = c.benchmark_group("token_ids");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));

    g.throughput(Throughput::Elements(tokens));
    g.bench_function("read_per_document", |b| {
        let mut out = Vec::with_capacity(1 << 16);
        b.iter(|| {
            let mut n = 0u64;
            for (ids, docs) in &ids {
                for o in 0..*docs {
                    out.clear();
                    ids.read(o, eos, &mut out).expect("read");
                    n += out.len() as u64;
                }
            }
            assert_eq!(n, tokens);
        })
    });
    g.bench_function("read_many_per_block", |b| {
        let mut out = Vec::new();
        b.iter(|| {
            let mut n = 0u64;
            for ((ids, _), s) in ids.iter().zip(corpus.segments()) {
                for be in s.segment.blocks() {
                    let ords: Vec<u32> = (be.first_doc..be.first_doc + be.docs).collect();
                    out.clear();
                    ids.read_many(&ords, eos, &mut out).expect("read");
                    n += out.iter().map(|v| v.len() as u64).sum::<u64>();
                }
            }
            assert_eq!(n, tokens);
        })
    });
    g.throughput(Throughput::Elements(stored));
    g.bench_function("decode_cold", |b| {
        b.iter(|| {
            let n: u64 = ids.iter().map(|(i, _)| i.verify().expect("verify")).sum();
            assert_eq!(n, stored);
        })
    });
    // The byte tokenizer on the same documents: one id per text byte.
    g.throughput(Throughput::Elements(text_bytes + kept.documents));
    g.bench_function("bytes_tokenizer_from_text", |b| {
        let mut out: Vec<u32> = Vec::with_capacity(1 << 16);
        b.iter(|| {
            let mut n = 0u64;
            for s in corpus.segments() {
                for i in 0..s.segment.blocks().len() {
                    let block = s.segment.read_block(i).expect("block");
                    for d in 0..block.len() {
                        out.clear();
                        out.extend(block.text(d).bytes().map(u32::from));
                        out.push(256);
                        n += out.len() as u64;
                    }
                }
            }
            assert_eq!(n, text_bytes + kept.documents);
        })
    });
    // Writing: the first four blocks of the first segment tokenized by the
    // BPE tokenizer (in rayon's pool), compressed and written.
    let s = &corpus.segments()[0];
    let blocks = &s.segment.blocks()[..4.min(s.segment.blocks().len())];
    let docs: RoaringBitmap = blocks
        .iter()
        .flat_map(|be| be.first_doc..be.first_doc + be.docs)
        .collect();
    let block_tokens: u64 = docs
        .iter()
        .map(|o| ids[0].0.count(o).expect("covered") as u64)
        .sum();
    let out = tempfile::tempdir().expect("tempdir");
    g.throughput(Throughput::Elements(block_tokens));
    g.bench_function("write_four_blocks_bpe", |b| {
        b.iter(|| {
            write_segment_ids(
                out.path(),
                &s.entry.file,
                &s.segment,
                &tok,
                Some(&docs),
                &|_| {},
            )
            .expect("write")
        })
    });
    g.finish();
}

criterion_group!(benches, bench_token_ids);
criterion_main!(benches);
