//! `train::trace` and `corpusql trace`: the document behind a position of
//! a stream is the one whose bytes are there.

mod common;

use std::io::Cursor;

use corpusql::raw::train::{trace, Engine, EngineOptions, Mixture};
use corpusql::{ingest, Corpus, IngestOptions, Input};

const MIX: &str = r#"
seed = 7
tokens = 300_000
seq_len = 256
tokenizer = "bytes"
[[component]]
name = "fr"
query = "lang=fr"
weight = 0.5
[[component]]
name = "rest"
query = "not lang=fr"
weight = 0.5
"#;

#[test]
fn traced_documents_hold_the_streamed_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let jsonl = common::demo_bytes(800, 3);
    let opts = IngestOptions {
        segment_bytes: 1 << 20,
        ..Default::default()
    };
    ingest(
        tmp.path(),
        vec![Input::Reader("demo".into(), Box::new(Cursor::new(jsonl)))],
        &opts,
    )
    .unwrap();
    let corpus = Corpus::open(tmp.path()).unwrap();
    let m = Mixture::from_toml(MIX, "mix").unwrap();
    let mut e = Engine::new(&corpus, &m, EngineOptions::default()).unwrap();
    let mut rows = Vec::new();
    while let Some(b) = e.next_batch(64).unwrap() {
        rows.extend(b.tokens().chunks(256).map(|r| r.to_vec()));
    }
    assert!(rows.len() > 1000);
    // A few pseudo-random positions, plus the edges.
    let mut x = 12345u64;
    let mut positions = vec![(0u64, 0u64), (rows.len() as u64 - 1, 255)];
    for _ in 0..40 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        positions.push(((x >> 33) % rows.len() as u64, (x >> 13) % 256));
    }
    for (seq, off) in positions {
        let hits = trace(&corpus, &m, seq, Some(off)).unwrap();
        assert_eq!(hits.len(), 1, "one document at a position");
        let h = &hits[0];
        assert_eq!((h.from, h.to), (off, off + 1));
        let doc = corpus.get(&h.key).unwrap().expect("traced key exists");
        let token = rows[seq as usize][off as usize];
        if h.doc_offset == h.doc_tokens as u64 - 1 {
            assert_eq!(token, 256, "the last token of a document is EOS");
        } else {
            assert_eq!(token as u8, doc.text.as_bytes()[h.doc_offset as usize]);
            // The stretch of the sequence from this token matches the text.
            let row = &rows[seq as usize];
            let n = (doc.text.len() - h.doc_offset as usize).min(256 - off as usize);
            let streamed: Vec<u8> = row[off as usize..off as usize + n]
                .iter()
                .map(|&t| t as u8)
                .collect();
            assert_eq!(
                &streamed[..],
                &doc.text.as_bytes()[h.doc_offset as usize..h.doc_offset as usize + n]
            );
        }
        assert!(h.facets.contains_key("license") && h.facets.contains_key("source"));
    }
    // A whole sequence: the documents tile it.
    let hits = trace(&corpus, &m, 5, None).unwrap();
    assert_eq!(hits.first().unwrap().from, 0);
    assert_eq!(hits.last().unwrap().to, 256);
    for w in hits.windows(2) {
        assert_eq!(w[0].to, w[1].from);
    }
    assert!(trace(&corpus, &m, rows.len() as u64, None).is_err());
}

#[test]
fn cli_trace_prints_json_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    let bin = env!("CARGO_BIN_EXE_corpusql");
    let st = std::process::Command::new(bin)
        .args(["demo", "--docs", "300", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(st.status.success());
    let out = std::process::Command::new(bin)
        .arg("-C")
        .arg(&dir)
        .args(["trace", "lang=en", "--seq-len", "128", "--sequence", "3"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!lines.is_empty());
    assert_eq!(lines[0]["sequence"], 3);
    assert!(lines.iter().all(|l| l["facets"]["lang"] == "en"));
}
