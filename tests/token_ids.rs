//! Stored token ids (`corpusql tokenize --keep-ids`, `src/token_ids.rs`):
//! the ids read back equal a fresh tokenization of every document plus its
//! end-of-document id, the counts equal `segment_counts`, a partial file
//! holds exactly the documents asked for, damage is a clear error naming the
//! file (never a panic or wrong ids), compaction carries the ids of the
//! documents it keeps and orphan collection removes the files of segments
//! that are gone.
//!
//! The corpus is generated (a few hundred documents in several segments of
//! several small blocks, some of them non-ASCII) and the tokenizer is a
//! byte-level BPE trained on it by `train_bpe`, so the tests need no data.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use corpusql::raw::segment::{Segment, WriterOptions};
use corpusql::raw::token_ids::{ids_path, keep_ids, write_segment_ids, SegmentIds};
use corpusql::raw::tokenize::{counts_path, segment_counts, Tokenizer};
use corpusql::{Corpus, Error, IngestOptions};
use roaring::RoaringBitmap;

const WORDS: [&str; 24] = [
    "the",
    "corpus",
    "stores",
    "documents",
    "tokens",
    "segment",
    "bonjour",
    "été",
    "über",
    "straße",
    "données",
    "日本語",
    "テキスト",
    "модель",
    "données",
    "🙂",
    "train",
    "language",
    "model",
    "license",
    "source",
    "query",
    "stream",
    "mixture",
];
const LANGS: [&str; 3] = ["fr", "en", "de"];

/// `n` JSONL documents of 20 to 400 words, deterministic.
fn jsonl(n: usize) -> Vec<u8> {
    let mut s = String::new();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for i in 0..n {
        let len = 20 + next() % 380;
        let mut text = format!("Document {i}.");
        for _ in 0..len {
            text.push(' ');
            text.push_str(WORDS[(next() % WORDS.len() as u64) as usize]);
            if next() % 11 == 0 {
                text.push_str(&format!(" {}", next() % 1000));
            }
        }
        let rec = serde_json::json!({
            "id": format!("doc/{i:04}"),
            "lang": LANGS[i % 3],
            "license": "cc-by-4.0",
            "text": text,
        });
        s.push_str(&rec.to_string());
        s.push('\n');
    }
    s.into_bytes()
}

struct Fixture {
    tmp: tempfile::TempDir,
    dir: PathBuf,
    tokenizer: PathBuf,
}

/// A corpus of `n` documents in segments of about 96 KiB of 8 KiB blocks,
/// and a BPE tokenizer of 400 ids trained on it.
fn fixture(n: usize) -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("corpus");
    let opts = IngestOptions {
        segment_bytes: 96 << 10,
        writer: WriterOptions {
            block_bytes: 8 << 10,
            ..Default::default()
        },
        ..Default::default()
    };
    let rep = common::ingest_bytes(&dir, "gen.jsonl", &jsonl(n), &opts).unwrap();
    assert_eq!(rep.ingested, n as u64);
    let corpus = Corpus::open(&dir).unwrap();
    assert!(corpus.segments().len() >= 2, "want several segments");
    assert!(
        corpus.segments()[0].segment.blocks().len() >= 3,
        "want several blocks"
    );
    let tokenizer = tmp.path().join("tokenizer.json");
    corpusql::raw::tokenize::train_bpe(&corpus.query("*").unwrap(), 400, &tokenizer).unwrap();
    Fixture {
        tmp,
        dir,
        tokenizer,
    }
}

fn load(f: &Fixture) -> Tokenizer {
    Tokenizer::load(f.tokenizer.to_str().unwrap()).unwrap()
}

/// Every document of `seg`: (ordinal, key, text).
fn documents(seg: &Segment) -> Vec<(u32, String, String)> {
    let mut v = Vec::new();
    for (b, be) in seg.blocks().iter().enumerate() {
        let block = seg.read_block(b).unwrap();
        for i in 0..block.len() {
            v.push((
                be.first_doc + i as u32,
                block.key(i).to_string(),
                block.text(i).to_string(),
            ));
        }
    }
    v
}

fn fresh(tok: &Tokenizer, text: &str) -> Vec<u32> {
    let mut ids = Vec::new();
    tok.encode(text, &mut ids).unwrap();
    ids.push(tok.eos());
    ids
}

fn cqi_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".cqi") || n.contains(".cqi."))
        .collect();
    v.sort();
    v
}

/// Checks that `ids` holds exactly the documents of `seg` in `covered`,
/// each equal to a fresh tokenization plus end-of-document.
fn check_ids(ids: &SegmentIds, seg: &Segment, tok: &Tokenizer, covered: &RoaringBitmap) {
    let docs = documents(seg);
    let mut ords = Vec::new();
    let mut want = Vec::new();
    for (ord, key, text) in &docs {
        let mut out = vec![7u32];
        let held = ids.read(*ord, tok.eos(), &mut out).unwrap();
        assert_eq!(held, covered.contains(*ord), "{key}");
        if held {
            let f = fresh(tok, text);
            assert_eq!(&out[1..], &f[..], "ids of {key}");
            assert_eq!(ids.count(*ord), Some(f.len() as u32), "count of {key}");
            want.push(f);
        } else {
            assert_eq!(out, vec![7], "nothing appended for {key}");
            assert_eq!(ids.count(*ord), None);
            want.push(Vec::new());
        }
        ords.push(*ord);
    }
    // The bulk form, in storage order and reversed.
    let mut many = Vec::new();
    ids.read_many(&ords, tok.eos(), &mut many).unwrap();
    assert_eq!(many, want);
    ords.reverse();
    want.reverse();
    let mut many = vec![vec![1u32]];
    ids.read_many(&ords, tok.eos(), &mut many).unwrap();
    assert_eq!(&many[1..], &want[..]);
    assert_eq!(ids.covered(), *covered);
    assert_eq!(ids.covered_count() as u64, covered.len());
    assert_eq!(ids.is_complete(), covered.len() == seg.doc_count() as u64);
    assert!(!ids.covers(seg.doc_count()));
    let stored: u64 = want.iter().map(|v| v.len().saturating_sub(1) as u64).sum();
    assert_eq!(ids.stored_tokens(), stored);
    assert_eq!(ids.verify().unwrap(), stored);
}

#[test]
fn stored_ids_equal_a_fresh_tokenization() {
    let f = fixture(300);
    let corpus = Corpus::open(&f.dir).unwrap();
    let bpe = load(&f);
    for tok in [bpe, Tokenizer::Bytes] {
        for s in corpus.segments() {
            let (seg, file) = (&*s.segment, s.entry.file.as_str());
            assert!(SegmentIds::open(&f.dir, file, seg, &tok.id())
                .unwrap()
                .is_none());
            let seen = std::sync::atomic::AtomicU64::new(0);
            let counts = write_segment_ids(&f.dir, file, seg, &tok, None, &|b| {
                seen.fetch_add(b, std::sync::atomic::Ordering::Relaxed);
            })
            .unwrap();
            assert_eq!(seen.into_inner(), seg.meta().text_bytes, "progress");
            let path = ids_path(&f.dir, file, &tok.id());
            assert!(path.is_file(), "{}", path.display());
            let ids = SegmentIds::open(&f.dir, file, seg, &tok.id())
                .unwrap()
                .expect("written");
            assert_eq!(ids.path(), path);
            assert_eq!(ids.tokenizer_id(), tok.id());
            assert_eq!(ids.width(), 2);
            check_ids(&ids, seg, &tok, &seg.all());
            // The counts are those of the token-count files.
            let kept = segment_counts(&f.dir, file, seg, &tok).unwrap();
            assert_eq!(counts, *kept);
            assert_eq!(ids.counts(), counts);
        }
    }
}

#[test]
fn a_partial_file_holds_exactly_the_documents_asked_for() {
    let f = fixture(200);
    let corpus = Corpus::open(&f.dir).unwrap();
    let tok = load(&f);
    let s = &corpus.segments()[0];
    let (seg, file) = (&*s.segment, s.entry.file.as_str());
    // Every third document, and none of the second block's.
    let second = &seg.blocks()[1];
    let docs: RoaringBitmap = (0..seg.doc_count())
        .filter(|o| o % 3 == 0 && !(second.first_doc..second.first_doc + second.docs).contains(o))
        .collect();
    let counts = write_segment_ids(&f.dir, file, seg, &tok, Some(&docs), &|_| {}).unwrap();
    for (o, c) in counts.iter().enumerate() {
        assert_eq!(*c == u32::MAX, !docs.contains(o as u32), "document {o}");
    }
    let ids = SegmentIds::open(&f.dir, file, seg, &tok.id())
        .unwrap()
        .unwrap();
    check_ids(&ids, seg, &tok, &docs);
    assert_eq!(ids.counts(), counts);
    // Nothing covered at all is a valid file too.
    write_segment_ids(
        &f.dir,
        file,
        seg,
        &tok,
        Some(&RoaringBitmap::new()),
        &|_| {},
    )
    .unwrap();
    let ids = SegmentIds::open(&f.dir, file, seg, &tok.id())
        .unwrap()
        .unwrap();
    check_ids(&ids, seg, &tok, &RoaringBitmap::new());
}

/// Opens the file and reads every document: `Ok` only when all of it is sound.
fn open_and_read_all(
    dir: &Path,
    file: &str,
    seg: &Segment,
    tok: &Tokenizer,
) -> corpusql::Result<()> {
    let ids = SegmentIds::open(dir, file, seg, &tok.id())?.expect("present");
    let mut out = Vec::new();
    for o in 0..seg.doc_count() {
        ids.read(o, tok.eos(), &mut out)?;
    }
    Ok(())
}

fn assert_corrupt_naming(e: Error, path: &Path, what: &str) {
    let msg = e.to_string();
    match &e {
        Error::Corrupt { path: p, .. } => assert_eq!(p, path, "{what}: {msg}"),
        other => panic!("{what}: expected Corrupt, got {other:?}"),
    }
    assert!(
        msg.contains(path.file_name().unwrap().to_str().unwrap()),
        "{what}: {msg}"
    );
}

#[test]
fn damage_is_a_clear_error_never_a_panic() {
    let f = fixture(120);
    let corpus = Corpus::open(&f.dir).unwrap();
    let tok = load(&f);
    let s = &corpus.segments()[0];
    let (seg, file) = (&*s.segment, s.entry.file.as_str());
    write_segment_ids(&f.dir, file, seg, &tok, None, &|_| {}).unwrap();
    let path = ids_path(&f.dir, file, &tok.id());
    let good = std::fs::read(&path).unwrap();
    open_and_read_all(&f.dir, file, seg, &tok).unwrap();
    // A flipped byte anywhere: every one in the header, tables and
    // trailer, and a spread of them in the chunks.
    let tables_end =
        16 + 32 + tok.id().len() + 4 * seg.doc_count() as usize + 32 * seg.blocks().len();
    let positions: Vec<usize> = (0..good.len())
        .filter(|&i| i < tables_end || i + 24 >= good.len() || i % 13 == 0)
        .collect();
    for &at in &positions {
        let mut bad = good.clone();
        bad[at] ^= 0x10;
        std::fs::write(&path, &bad).unwrap();
        let e = open_and_read_all(&f.dir, file, seg, &tok)
            .expect_err(&format!("flip at {at} of {} not detected", good.len()));
        if (8..12).contains(&at) {
            // The header's version: a newer format, which says so.
            assert!(matches!(e, Error::Version { .. }), "flip at {at}: {e}");
            continue;
        }
        assert_corrupt_naming(e, &path, &format!("flip at {at}"));
    }
    // A flip in a chunk opens fine and fails on the read of that chunk,
    // saying which chunk and what to do.
    let mut bad = good.clone();
    let at = good.len() - 24 - 5;
    bad[at] ^= 0x01;
    std::fs::write(&path, &bad).unwrap();
    let ids = SegmentIds::open(&f.dir, file, seg, &tok.id())
        .unwrap()
        .unwrap();
    let last = seg.doc_count() - 1;
    let e = ids.read(last, tok.eos(), &mut Vec::new()).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("checksum mismatch") && msg.contains("delete it to recompute"),
        "{msg}"
    );
    // Truncated anywhere, or extended.
    for cut in [
        0,
        1,
        15,
        16,
        40,
        tables_end - 1,
        tables_end,
        good.len() / 2,
        good.len() - 1,
    ] {
        std::fs::write(&path, &good[..cut]).unwrap();
        let e = open_and_read_all(&f.dir, file, seg, &tok)
            .expect_err(&format!("cut at {cut} not detected"));
        assert_corrupt_naming(e, &path, &format!("cut at {cut}"));
    }
    let mut longer = good.clone();
    longer.extend_from_slice(&[0; 7]);
    std::fs::write(&path, &longer).unwrap();
    assert_corrupt_naming(
        open_and_read_all(&f.dir, file, seg, &tok).unwrap_err(),
        &path,
        "extended",
    );
    // Another segment's file under this one's name is refused.
    let other = &corpus.segments()[1];
    write_segment_ids(
        &f.dir,
        &other.entry.file,
        &other.segment,
        &tok,
        None,
        &|_| {},
    )
    .unwrap();
    std::fs::copy(ids_path(&f.dir, &other.entry.file, &tok.id()), &path).unwrap();
    let e = SegmentIds::open(&f.dir, file, seg, &tok.id()).unwrap_err();
    assert!(e.to_string().contains("another segment"), "{e}");
    assert_corrupt_naming(e, &path, "another segment");
    // Another tokenizer's file under this tokenizer's name is refused.
    write_segment_ids(&f.dir, file, seg, &Tokenizer::Bytes, None, &|_| {}).unwrap();
    std::fs::copy(ids_path(&f.dir, file, "bytes"), &path).unwrap();
    let e = SegmentIds::open(&f.dir, file, seg, &tok.id()).unwrap_err();
    assert!(e.to_string().contains("written for tokenizer bytes"), "{e}");
    // keep_ids rewrites a damaged file.
    std::fs::write(&path, &good[..good.len() / 2]).unwrap();
    let r = keep_ids(&corpus, &tok, &|_| {}).unwrap();
    assert_eq!(r.written, corpus.segments().len() - 1);
    assert_eq!(r.kept, 1);
    open_and_read_all(&f.dir, file, seg, &tok).unwrap();
    // Nothing was left behind.
    assert!(cqi_files(&f.dir).iter().all(|n| n.ends_with(".cqi")));
}

#[test]
fn keep_ids_then_compaction_carries_the_ids_of_the_documents_kept() {
    let f = fixture(300);
    let mut corpus = Corpus::open(&f.dir).unwrap();
    let tok = load(&f);
    let n0 = corpus.segments().len();
    let r = keep_ids(&corpus, &tok, &|_| {}).unwrap();
    assert_eq!((r.segments, r.written, r.kept), (n0, n0, 0));
    assert_eq!(r.documents, 300);
    let total: u64 = corpusql::raw::tokenize::corpus_counts(&corpus, &tok)
        .unwrap()
        .iter()
        .map(|c| c.iter().map(|&x| x as u64).sum::<u64>())
        .sum();
    assert_eq!(r.tokens, total);
    assert!(r.bytes_written > 0 && r.ids_bytes > 0);
    for s in corpus.segments() {
        assert!(counts_path(&f.dir, &s.entry.file, &tok.id()).is_file());
    }
    // A second run has nothing to do.
    let again = keep_ids(&corpus, &tok, &|_| {}).unwrap();
    assert_eq!((again.written, again.kept, again.bytes_written), (0, n0, 0));
    assert_eq!(again.tokens, r.tokens);
    // The byte tokenizer's ids for the first segment only, half its documents.
    let first = &corpus.segments()[0];
    let half: RoaringBitmap = (0..first.segment.doc_count())
        .filter(|o| o % 2 == 1)
        .collect();
    write_segment_ids(
        &f.dir,
        &first.entry.file,
        &first.segment,
        &Tokenizer::Bytes,
        Some(&half),
        &|_| {},
    )
    .unwrap();
    let mut bytes_kept = std::collections::BTreeSet::new();
    for (o, key, _) in documents(&first.segment) {
        if half.contains(o) {
            bytes_kept.insert(key);
        }
    }
    let old_files = cqi_files(&f.dir);
    assert_eq!(old_files.len(), n0 + 1);

    let deleted = corpus.delete("lang=de").unwrap();
    assert_eq!(deleted, 100);
    let rep = corpus.compact(128 << 10).unwrap();
    assert_eq!(rep.dropped, 100);
    corpus.reload().unwrap();
    assert!(corpus.segments().len() >= 2);
    // The old segments' files are gone; each new segment has its own.
    let files = cqi_files(&f.dir);
    assert!(old_files.iter().all(|o| !files.contains(o)), "{files:?}");
    let mut seen = 0;
    let mut bytes_seen = std::collections::BTreeSet::new();
    for s in corpus.segments() {
        let (seg, file) = (&*s.segment, s.entry.file.as_str());
        let ids = SegmentIds::open(&f.dir, file, seg, &tok.id())
            .unwrap()
            .expect("carried");
        check_ids(&ids, seg, &tok, &seg.all());
        seen += seg.doc_count();
        // Complete, so its token-count file came with it.
        let c = segment_counts(&f.dir, file, seg, &tok).unwrap();
        assert_eq!(*c, ids.counts());
        assert!(counts_path(&f.dir, file, &tok.id()).is_file());
        for (_, key, text) in documents(seg) {
            assert!(!text.is_empty());
            assert!(!key.is_empty());
        }
        // The partial byte-tokenizer ids: exactly the surviving documents
        // of those it held.
        let want: RoaringBitmap = documents(seg)
            .into_iter()
            .filter(|(_, key, _)| bytes_kept.contains(key))
            .map(|(o, _, _)| o)
            .collect();
        match SegmentIds::open(&f.dir, file, seg, "bytes").unwrap() {
            Some(b) => {
                check_ids(&b, seg, &Tokenizer::Bytes, &want);
                for o in want.iter() {
                    bytes_seen.insert(documents(seg)[o as usize].1.clone());
                }
            }
            None => assert!(want.is_empty(), "{file} lacks its byte ids"),
        }
    }
    assert_eq!(seen as u64, 200, "deleted documents are gone");
    let survivors: std::collections::BTreeSet<String> = bytes_kept
        .iter()
        .filter(|k| {
            let i: usize = k.trim_start_matches("doc/").parse().unwrap();
            i % 3 != 2
        })
        .cloned()
        .collect();
    assert_eq!(bytes_seen, survivors);
}

#[test]
fn sidecars_of_removed_segments_are_collected() {
    let f = fixture(120);
    let corpus = Corpus::open(&f.dir).unwrap();
    let tok = load(&f);
    keep_ids(&corpus, &tok, &|_| {}).unwrap();
    drop(corpus);
    // A sidecar of a segment that never was, and a temporary left by a crash.
    let stray = f.dir.join("seg-0000099999.ids-hf-0000000000000000.cqi");
    std::fs::write(&stray, b"anything").unwrap();
    let tmp = f
        .dir
        .join("seg-0000000001.ids-hf-0000000000000000.cqi.12-0.tmp");
    std::fs::write(&tmp, b"half").unwrap();
    let before = cqi_files(&f.dir).len();
    let corpus = Corpus::open(&f.dir).unwrap();
    assert!(!stray.exists() && !tmp.exists());
    assert_eq!(cqi_files(&f.dir).len(), before - 2);
    // Files of live segments stay and still read.
    for s in corpus.segments() {
        let ids = SegmentIds::open(&f.dir, &s.entry.file, &s.segment, &tok.id())
            .unwrap()
            .unwrap();
        assert!(ids.is_complete());
    }
}

#[test]
fn cli_tokenize_keep_ids_end_to_end() {
    let f = fixture(150);
    let run = |extra: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_corpusql"))
            .arg("-C")
            .arg(&f.dir)
            .env_remove("CORPUSQL_DIR")
            .args(["tokenize", "--tokenizer"])
            .arg(&f.tokenizer)
            .args(extra)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(
            o.status.success(),
            "{out}\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
        out
    };
    // Without --keep-ids: counts only, as before.
    let out = run(&[]);
    assert!(out.contains("150 live documents"), "{out}");
    assert!(cqi_files(&f.dir).is_empty());
    let corpus = Corpus::open(&f.dir).unwrap();
    let n = corpus.segments().len();
    let out = run(&["--keep-ids", "-q"]);
    assert!(out.contains("150 live documents"), "{out}");
    assert!(
        out.contains(&format!(
            "token ids kept for {n} segments ({n} written now, 0 kept already)"
        )),
        "{out}"
    );
    assert_eq!(cqi_files(&f.dir).len(), n);
    let tok = load(&f);
    for s in corpus.segments() {
        let ids = SegmentIds::open(&f.dir, &s.entry.file, &s.segment, &tok.id())
            .unwrap()
            .unwrap();
        check_ids(&ids, &s.segment, &tok, &s.segment.all());
    }
    let out = run(&["--keep-ids", "-q"]);
    assert!(
        out.contains(&format!(
            "(0 written now, {n} kept already): 0 bytes written"
        )),
        "{out}"
    );
    // `verify` checks every chunk: a flipped byte near the end of a file
    // (inside its last chunk) is reported, naming the file.
    let verify = || {
        Command::new(env!("CARGO_BIN_EXE_corpusql"))
            .arg("-C")
            .arg(&f.dir)
            .env_remove("CORPUSQL_DIR")
            .arg("verify")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    assert!(verify().status.success());
    let name = cqi_files(&f.dir).remove(0);
    let path = f.dir.join(&name);
    let mut b = std::fs::read(&path).unwrap();
    let at = b.len() - 40;
    b[at] ^= 0x5a;
    std::fs::write(&path, &b).unwrap();
    let o = verify();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!o.status.success(), "{text}");
    assert!(text.contains(&name), "{text}");
    drop(f.tmp);
}

// ---------------------------------------------------------------- golden

/// The golden segment (`tests/data/golden-frames/segment-v2.cqs`, ten
/// documents) under a segment's name in a temporary directory.
fn golden_segment() -> (tempfile::TempDir, Segment) {
    let tmp = tempfile::tempdir().unwrap();
    let frames = common::test_data().join("golden-frames");
    let seg_path = tmp.path().join("seg-0000000001.cqs");
    std::fs::copy(frames.join("segment-v2.cqs"), &seg_path).unwrap();
    let seg = Segment::open(&seg_path).unwrap();
    (tmp, seg)
}

/// Writes the golden token-id file (format 1): the byte tokenizer's ids of
/// every document of the golden segment.
fn write_golden_ids(out: &Path) {
    let (tmp, seg) = golden_segment();
    write_segment_ids(
        tmp.path(),
        "seg-0000000001.cqs",
        &seg,
        &Tokenizer::Bytes,
        None,
        &|_| {},
    )
    .unwrap();
    std::fs::copy(
        ids_path(tmp.path(), "seg-0000000001.cqs", "bytes"),
        out.join("ids-v1.cqi"),
    )
    .unwrap();
}

#[test]
#[ignore = "rewrites tests/data/golden-frames/ids-v1.cqi; run by hand when the format changes"]
fn regenerate_golden_ids() {
    write_golden_ids(&common::test_data().join("golden-frames"));
}

#[test]
fn the_golden_file_reads_forever_and_is_what_todays_writer_writes() {
    use corpusql::raw::format::{self, FileKind};
    let golden = std::fs::read(common::test_data().join("golden-frames/ids-v1.cqi")).unwrap();
    // Framed as documented, and refused as any other kind.
    let f = format::decode_whole(FileKind::TokenIds, &golden).unwrap();
    assert_eq!((f.version, &golden[..8]), (1, &b"CQLTOKID"[..]));
    for other in FileKind::ALL
        .into_iter()
        .filter(|k| *k != FileKind::TokenIds)
    {
        let e = format::decode(other, &golden).unwrap_err().to_string();
        assert!(e.contains("token-id file"), "{e}");
    }
    // It reads: the ids of the byte tokenizer are the texts' bytes.
    let (tmp, seg) = golden_segment();
    std::fs::write(ids_path(tmp.path(), "seg-0000000001.cqs", "bytes"), &golden).unwrap();
    let ids = SegmentIds::open(tmp.path(), "seg-0000000001.cqs", &seg, "bytes")
        .unwrap()
        .unwrap();
    check_ids(&ids, &seg, &Tokenizer::Bytes, &seg.all());
    assert_eq!(seg.doc_count(), 10);
    // Today's writer writes the same bytes.
    let out = tempfile::tempdir().unwrap();
    write_golden_ids(out.path());
    let today = std::fs::read(out.path().join("ids-v1.cqi")).unwrap();
    assert!(
        today == golden,
        "today's writer differs from tests/data/golden-frames/ids-v1.cqi ({} vs {} bytes): \
         a format change needs a new version (see docs/format.md)",
        today.len(),
        golden.len()
    );
}

// ---------------------------------------------------------------- faults

/// The `seg-*` names in `dir`, sorted.
fn seg_names(dir: &Path) -> Vec<String> {
    common::segment_files(dir)
}

/// Token-id or token-count files in `dir` whose segment `corpus` does not list.
fn stray_sidecars(dir: &Path, corpus: &Corpus) -> Vec<String> {
    let listed: Vec<String> = corpus
        .segments()
        .iter()
        .map(|s| s.entry.file.trim_end_matches(".cqs").to_string())
        .collect();
    seg_names(dir)
        .into_iter()
        .filter(|n| n.ends_with(".cqi") || n.ends_with(".cqc") || n.ends_with(".tmp"))
        .filter(|n| n.ends_with(".tmp") || !listed.iter().any(|l| n.split('.').next() == Some(l)))
        .collect()
}

#[test]
fn a_failed_compaction_leaves_no_stray_token_id_file() {
    use corpusql::raw::storage::{Fault, Injection};
    let f = fixture(150);
    let mut corpus = Corpus::open(&f.dir).unwrap();
    let tok = load(&f);
    keep_ids(&corpus, &tok, &|_| {}).unwrap();
    corpus.delete("lang=de").unwrap();
    let generation = corpus.generation();
    drop(corpus);
    let template = f.tmp.path().join("template");
    common::copy_corpus(&f.dir, &template);
    let compact = |d: &Path| corpusql::raw::maintain::compact(d, 64 << 10);
    let counted = f.tmp.path().join("counted");
    common::copy_corpus(&template, &counted);
    let ops = {
        let inj = Injection::count(&counted);
        compact(&counted).unwrap();
        inj.ops()
    };
    let first = ops
        .iter()
        .position(|(_, p)| p.to_string_lossy().contains(".cqi"))
        .expect("compaction writes token-id files");
    let mut runs = 0;
    for fault in [Fault::Eio, Fault::NoSpace, Fault::RenameFails, Fault::Crash] {
        let at: Vec<u64> = (first..ops.len())
            .filter(|&i| fault.applies_to(ops[i].0))
            .map(|i| i as u64)
            .collect();
        // Every token-id operation, and a spread of the later ones (the commit).
        let at: Vec<u64> = at
            .iter()
            .enumerate()
            .filter(|&(k, &i)| ops[i as usize].1.to_string_lossy().contains(".cq") || k % 15 == 0)
            .map(|(_, &i)| i)
            .collect();
        for n in at {
            runs += 1;
            let d = f.tmp.path().join(format!("run-{runs}"));
            common::copy_corpus(&template, &d);
            let what = format!(
                "{fault:?} at op {n} ({:?} {})",
                ops[n as usize].0,
                ops[n as usize].1.display()
            );
            let inj = Injection::fail(&d, n, fault);
            let r = compact(&d);
            if !inj.fired() {
                continue;
            }
            if fault == Fault::Crash {
                inj.crash().unwrap();
            } else {
                inj.disarm();
            }
            drop(inj);
            // Token-id and token-count files (a segment writer's own
            // temporary is its business, collected as an orphan).
            let ours = |d: &Path| -> Vec<String> {
                seg_names(d)
                    .into_iter()
                    .filter(|n| n.contains(".cqi") || n.contains(".cqc"))
                    .collect()
            };
            let names = ours(&d);
            let corpus = Corpus::open(&d).unwrap_or_else(|e| panic!("{what}: {e}"));
            let before_commit = matches!(&r, Err(e) if !matches!(e, Error::Catalog { .. }));
            if before_commit && fault != Fault::Crash && corpus.generation() == generation {
                // Failed before its commit: the files written were removed
                // by the compaction itself. (After a failed commit whose
                // database no longer reads, they are orphans, collected
                // by the open below, as the new segments are.)
                assert_eq!(names, ours(&template), "{what}: {r:?}");
            }
            // Whatever happened, nothing stray once the corpus is open.
            assert_eq!(stray_sidecars(&d, &corpus), Vec::<String>::new(), "{what}");
            for s in corpus.segments() {
                if let Some(ids) = SegmentIds::open(&d, &s.entry.file, &s.segment, &tok.id())
                    .unwrap_or_else(|e| panic!("{what}: {e}"))
                {
                    ids.verify().unwrap_or_else(|e| panic!("{what}: {e}"));
                }
            }
            let _ = std::fs::remove_dir_all(&d);
        }
    }
    assert!(runs > 5, "{runs} runs");
}
