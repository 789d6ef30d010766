//! Signals survive compaction: the per-document taggers' columns are
//! carried into the rewritten segments (same documents, same values), and
//! deduplication, which depends on the whole corpus, is recomputed by the
//! next `tag` run.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use corpusql::raw::tag::{tag, TagOptions, Tagger};
use corpusql::{ingest, Corpus, IngestOptions, Input};

fn keys(dir: &Path, q: &str) -> BTreeSet<String> {
    let c = Corpus::open(dir).unwrap();
    c.query(q)
        .unwrap()
        .documents()
        .map(|d| d.unwrap().key)
        .collect()
}

#[test]
fn compaction_keeps_signals_and_dedup_is_recomputed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    // Two ingests, so compaction merges segments.
    for (i, seed) in [(0, 3u64), (1, 4)] {
        let buf = common::demo_bytes(1500, seed as u32);
        // Distinct keys per file.
        let text = String::from_utf8(buf)
            .unwrap()
            .replace("{\"id\": \"", &format!("{{\"id\": \"f{i}-"));
        let f = tmp.path().join(format!("in{i}.jsonl"));
        std::fs::write(&f, text).unwrap();
        ingest(&dir, vec![Input::Path(f)], &IngestOptions::default()).unwrap();
    }
    let opts = TagOptions {
        taggers: vec![
            Tagger::Language,
            Tagger::Pii,
            Tagger::Quality,
            Tagger::Dedup,
        ],
        ..Default::default()
    };
    tag(&dir, &opts).unwrap();
    corpusql::raw::maintain::delete(&dir, "lang = de").unwrap();
    // The delete changed the live set: dedup (only) is recomputed.
    let r = tag(&dir, &opts).unwrap();
    for o in &r.outcomes {
        assert_eq!(o.docs > 0, o.tagger == "dedup", "{}: {}", o.tagger, o.docs);
    }
    let queries = [
        "lang_detected = fr",
        "lang_score > 0.8",
        "rps_doc_word_count >= 50",
        "pii_email = 0 and rps_doc_frac_chars_top_2gram > 0.05",
        "code_score > 0.5",
    ];
    let before: Vec<BTreeSet<String>> = queries.iter().map(|q| keys(&dir, q)).collect();
    let sizes: Vec<usize> = before.iter().map(|s| s.len()).collect();
    assert!(sizes.iter().all(|&n| n > 0), "{sizes:?}");
    let dups_before = keys(&dir, "is_dup = true");
    corpusql::raw::maintain::compact(&dir, 64 << 20).unwrap();
    let c = Corpus::open(&dir).unwrap();
    assert_eq!(c.segments().len(), 1, "compaction merged the two segments");
    for (q, b) in queries.iter().zip(&before) {
        assert!(&keys(&dir, q) == b, "{q} changed across compaction");
    }
    // Deduplication is not carried but recomputed by compact itself (issue
    // 10: `is_dup = false` matched nothing after a compaction): same live
    // documents, deterministic dedup, the same duplicates; the next run has
    // nothing left to do.
    assert!(keys(&dir, "is_dup = true") == dups_before, "dedup changed");
    let r = tag(&dir, &opts).unwrap();
    for o in &r.outcomes {
        assert_eq!(o.docs, 0, "{}", o.tagger);
    }
    assert!(corpusql::raw::maintain::verify(&dir).unwrap().ok());
}
