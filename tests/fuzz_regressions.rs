//! Inputs the fuzz targets of `tests/fuzz/` found to crash, replayed as
//! plain tests (see docs/reliability.md). Each input is kept as the fuzzer
//! saved it under `tests/data/fuzz/`; segment inputs get the same checksum
//! fix-ups as in the target.

use std::path::Path;

use corpusql::raw::segment::Segment;
use corpusql::raw::train::mixture::Mixture;
use corpusql::raw::train::{Engine, EngineOptions, StreamState};
use corpusql::{ingest, Corpus, IngestOptions, Input};

#[path = "fuzz/src/fixup.rs"]
#[allow(dead_code)]
mod fixup;

fn data(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/fuzz")
            .join(name),
    )
    .unwrap()
}

/// A block index entry claiming a raw length far beyond what its compressed
/// bytes can hold made `read_block` allocate that much up front (an
/// out-of-memory abort under the fuzzer's 256 MiB bound). It is now refused.
#[test]
fn segment_block_raw_len_is_bounded_by_its_compressed_length() {
    let mut bytes = data("segment-block-raw-len.bin");
    fixup::fix_segment_crcs(&mut bytes);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("seg-0000000001.cqs");
    std::fs::write(&p, &bytes).unwrap();
    let seg = Segment::open(&p).unwrap();
    let errors: Vec<String> = (0..seg.blocks().len())
        .filter_map(|i| seg.read_block(i).err().map(|e| e.to_string()))
        .collect();
    assert!(
        errors.iter().any(|e| e.contains("compressed")),
        "the oversized block is refused as such: {errors:?}"
    );
}

/// A block index entry whose `offset + len` overflows u64 (a panic with
/// overflow checks; in release the sum wrapped and passed the bounds check).
/// It is now refused when the segment opens.
#[test]
fn segment_block_offset_overflow_is_refused() {
    let mut bytes = data("segment-block-offset-overflow.bin");
    fixup::fix_segment_crcs(&mut bytes);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("seg-0000000001.cqs");
    std::fs::write(&p, &bytes).unwrap();
    match Segment::open(&p) {
        Err(e) => assert!(e.to_string().contains("block index entry"), "{e}"),
        Ok(_) => panic!("a block index entry past u64::MAX was accepted"),
    }
}

/// A stream state whose `next_sequence` is `u64::MAX`, resumed on a rank
/// other than 0: `start + rank` overflowed (a panic with overflow checks;
/// in release it wrapped and restarted the stream from the beginning).
#[test]
fn stream_state_far_next_sequence_resumes_to_an_empty_stream() {
    let st: StreamState = serde_json::from_slice(&data("stream-state-far-next-sequence.json"))
        .expect("a well-formed state");
    let dir = tempfile::tempdir().unwrap();
    let jsonl =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/golden.jsonl"))
            .unwrap();
    let input = Input::Reader("golden.jsonl".into(), Box::new(std::io::Cursor::new(jsonl)));
    ingest(dir.path(), vec![input], &IngestOptions::default()).unwrap();
    let corpus = Corpus::open(dir.path()).unwrap();
    let m = Mixture::from_toml(
        "seed = 7\nseq_len = 16\ntokens = 4000\n\
         [[component]]\nname = \"fr\"\nquery = \"lang=fr\"\nweight = 0.5\n\
         [[component]]\nname = \"rest\"\nquery = \"not lang=fr\"\nweight = 0.5\n",
        "fuzz.toml",
    )
    .unwrap();
    for (rank, world) in [(0, 1), (1, 2), (3, 4)] {
        let opts = EngineOptions {
            rank,
            world,
            start: st.next_sequence,
            stop_after: Some(4),
            ..EngineOptions::default()
        };
        let mut engine = Engine::new(&corpus, &m, opts).unwrap();
        assert_eq!(
            engine.total(),
            0,
            "rank {rank}: nothing is left past u64::MAX"
        );
        assert!(engine.next_batch(2).unwrap().is_none());
    }
}

/// An array holding a string with a broken `\u` escape (a high surrogate
/// followed by no low one) failed to parse as strings and was then kept as
/// a JSON field, verbatim: export wrote a line that JSON parsers refuse.
/// Fixed: nested arrays and objects are decoded whole before they are kept.
#[test]
fn record_array_with_a_broken_escape_is_rejected() {
    use corpusql::raw::ingest::record::{parse_line, Parsed, RecordOptions};
    let line = data("record-array-bad-escape.jsonl");
    match parse_line(&line, true, &RecordOptions::default()) {
        Parsed::Reject(_) => {}
        other => panic!("accepted: {other:?}"),
    }
    // The same escape inside an object field.
    let obj = br#"{"id": "a", "text": "x", "meta": {"k": "\ud830____"}}"#;
    match parse_line(obj, true, &RecordOptions::default()) {
        Parsed::Reject(r) => assert!(r.contains("meta"), "{r}"),
        other => panic!("accepted: {other:?}"),
    }
}
