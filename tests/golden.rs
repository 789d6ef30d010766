//! Golden corpora: corpus directories written by earlier builds, committed
//! under `tests/data/golden-vN/`, that every later build must still open,
//! query, export and verify with the same answers. `golden-v1` is segment
//! format version 1, built from `tests/data/golden.jsonl` (30 hand-written
//! records: facets, an array facet, booleans, numbers written in several
//! ways, objects, a null, an integer id, a record without id, an empty
//! text, escapes, non-ASCII) in three generations: lines 1-20 ingested,
//! lines 21-30 ingested, then `id = g/07` deleted (a tombstone). It was
//! written before the `CURRENT` manifest existed, so it also checks that
//! such corpora still open.
//!
//! When the format version changes, do NOT regenerate golden-v1: run
//!
//! ```text
//! cargo test --release --test golden -- --ignored regenerate_golden
//! ```
//!
//! which writes `tests/data/golden-v{FORMAT_VERSION}/` (segment files as
//! written, the catalog as `catalog.redb.zst`; it refuses to
//! overwrite an existing directory unless `CORPUSQL_REGEN_GOLDEN=force`),
//! commit it, and add a `golden_v2` test next to `golden_v1` with the same
//! pinned answers (they describe the data, not the format). `golden-v2` is
//! segment format version 2 (the common file framing), built the same way;
//! it also holds a `CURRENT` of format 3.
//!
//! `tests/data/golden-frames/` holds one small file of every kind corpusql
//! frames (see `docs/format.md`), as written today and as written before the
//! common framing: `segment-v2.cqs` and `CURRENT-v3` (an ingest of the first
//! ten golden lines), `sidecar-v2.cqt` and `counts-v3.cqc` (fixed values; `counts-v2.cqc`, the
//! same counts before a count could mark a document not counted, reads too);
//! `sidecar-v1.cqt`, `counts-v1.cqc` and `CURRENT-v2` were written by the
//! code before it and must read forever. The tests check what each holds and
//! that today's writers produce the committed bytes exactly; when a framing
//! changes on purpose (or zstd compresses differently), bump the version,
//! keep the old files, and write the new ones with
//!
//! ```text
//! cargo test --release --test golden -- --ignored regenerate_golden_frames
//! ```

mod common;

use std::path::{Path, PathBuf};

use common::count;
use corpusql::{ingest, Corpus, IngestOptions, Input};

fn golden_dir(version: u32) -> PathBuf {
    common::test_data().join(format!("golden-v{version}"))
}

/// The catalog is stored zstd-compressed: redb preallocates ~2.6 MB that
/// are nearly all zeros (2 KB compressed), and tests/data stays small.
const CATALOG_ZST: &str = "catalog.redb.zst";

/// A private copy of a golden corpus, catalog decompressed (opening may
/// create the lock file and a writer may collect orphans: never in place).
fn open_copy(version: u32) -> (tempfile::TempDir, Corpus) {
    let src = golden_dir(version);
    let zst = src.join(CATALOG_ZST);
    assert!(
        zst.is_file(),
        "{} is missing; see the comment at the top of tests/golden.rs",
        zst.display()
    );
    let tmp = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(&src).unwrap() {
        let name = e.unwrap().file_name();
        if name != CATALOG_ZST {
            std::fs::copy(src.join(&name), tmp.path().join(&name)).unwrap();
        }
    }
    let catalog = zstd::decode_all(std::fs::File::open(&zst).unwrap()).unwrap();
    std::fs::write(
        tmp.path().join(corpusql::raw::catalog::CATALOG_FILE),
        catalog,
    )
    .unwrap();
    let c = Corpus::open(tmp.path()).unwrap();
    (tmp, c)
}

/// Builds the golden corpus into `dir` (see the module comment).
fn build(dir: &Path) {
    let src = std::fs::read_to_string(common::test_data().join("golden.jsonl")).unwrap();
    let lines: Vec<&str> = src.lines().collect();
    assert_eq!(lines.len(), 30);
    let part = |name: &str, ls: &[&str]| {
        let data = ls.join("\n") + "\n";
        Input::Reader(name.into(), Box::new(std::io::Cursor::new(data)))
    };
    let o = IngestOptions::default();
    let r = ingest(dir, vec![part("golden-a.jsonl", &lines[..20])], &o).unwrap();
    assert_eq!((r.ingested, r.rejected), (20, 0));
    let r = ingest(dir, vec![part("golden-b.jsonl", &lines[20..])], &o).unwrap();
    assert_eq!((r.ingested, r.rejected), (10, 0));
    let (n, _) = corpusql::raw::maintain::delete(dir, "id = g/07").unwrap();
    assert_eq!(n, 1);
}

#[test]
#[ignore = "writes tests/data/golden-vN; run by hand when the format version changes"]
fn regenerate_golden() {
    let version = corpusql::raw::format::FORMAT_VERSION;
    let out = golden_dir(version);
    if out.exists() {
        assert_eq!(
            std::env::var("CORPUSQL_REGEN_GOLDEN").as_deref(),
            Ok("force"),
            "{} exists; golden corpora of released formats must not change \
             (set CORPUSQL_REGEN_GOLDEN=force to overwrite)",
            out.display()
        );
        std::fs::remove_dir_all(&out).unwrap();
    }
    let tmp = tempfile::tempdir().unwrap();
    build(tmp.path());
    // Every file of the corpus (segments, manifests) but the lock; the
    // catalog compressed.
    std::fs::create_dir_all(&out).unwrap();
    common::copy_corpus(tmp.path(), &out);
    std::fs::remove_file(out.join(corpusql::raw::catalog::CATALOG_FILE)).unwrap();
    let catalog = std::fs::read(tmp.path().join(corpusql::raw::catalog::CATALOG_FILE)).unwrap();
    std::fs::write(
        out.join(CATALOG_ZST),
        zstd::encode_all(&catalog[..], 19).unwrap(),
    )
    .unwrap();
    let total: u64 = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    eprintln!("wrote {} ({total} bytes)", out.display());
}

/// (query, documents, text bytes), computed from golden.jsonl by hand (a
/// script independent of corpusql), over the 29 live documents.
const PINNED: [(&str, u64, u64); 22] = [
    ("*", 29, 972),
    ("lang=fr", 3, 107),
    ("lang=pt", 1, 34),
    ("lang in (de, es) and not license = mit", 7, 251),
    ("license=pd and source=gutenberg", 8, 293),
    ("source = wikipedia-*", 15, 483),
    ("year >= 1950", 5, 195),
    ("not year exists", 19, 651),
    ("quality > 0.5", 4, 135),
    ("tags = a", 3, 96),
    ("tags = b", 5, 177),
    ("reviewed = true", 3, 104),
    ("reviewed = false", 3, 42),
    ("meta exists", 4, 135),
    ("prog_lang = rust and lang = code", 3, 113),
    ("id = g/07", 0, 0),
    ("id = 1234", 1, 31),
    ("id = xxh3:*", 1, 34),
    ("bytes = 0", 1, 0),
    ("score = 2.5", 1, 28),
    ("big > 1e20", 1, 28),
    ("title exists", 1, 36),
];

/// Exported records, byte for byte: keys re-serialized without spaces,
/// values (numbers included) as the input wrote them, the text re-escaped.
const PINNED_RECORDS: [(&str, &str); 3] = [
    (
        "g/16",
        r#"{"id":"g/16","source":"gutenberg","lang":"en","license":"pd","score":2.50,"big":1E21,"nothing":null,"text":"Ligne 1\nLigne 2\tavec tab #16"}"#,
    ),
    (
        "g/20",
        r#"{"id":"g/20","source":"gutenberg","lang":"fr","license":"pd","tags":["b"],"text":"Il était une fois une bergère. #20","title":"Title after text"}"#,
    ),
    (
        "1234",
        r#"{"id":1234,"source":"crates-io","lang":"es","license":"apache-2.0_or_mit","text":"Érase una vez una pastora. #23"}"#,
    ),
];

fn check_golden(c: &Corpus, dir: &Path) {
    assert_eq!(c.generation(), 3, "ingest, ingest, delete");
    assert_eq!(c.segments().len(), 2);
    assert_eq!(c.len(), 29);
    let tomb: Vec<u64> = c.state().tombstones.values().map(|t| t.len()).collect();
    assert_eq!(tomb, vec![1], "one tombstone, in the first segment");
    use corpusql::raw::schema::FieldKind::*;
    // Leaves of nested objects (`meta.pages`) are indexed by builds since
    // issue 13; the golden corpora predate it, so they are checked apart.
    let fields: Vec<(&str, corpusql::raw::schema::FieldKind)> = c
        .state()
        .schema
        .fields
        .iter()
        .filter(|(k, _)| !k.contains('.'))
        .map(|(k, v)| (k.as_str(), *v))
        .collect();
    assert_eq!(
        fields,
        vec![
            ("big", Number),
            ("lang", Facet),
            ("license", Facet),
            ("meta", Json),
            ("prog_lang", Facet),
            ("quality", Number),
            ("reviewed", Bool),
            ("score", Number),
            ("source", Facet),
            ("tags", Facet),
            ("title", Facet),
            ("year", Number),
        ]
    );
    for (q, docs, bytes) in PINNED {
        let sel = c.query(q).unwrap_or_else(|e| panic!("`{q}`: {e}"));
        assert_eq!(sel.count(), docs, "docs of `{q}`");
        assert_eq!(sel.text_bytes().unwrap(), bytes, "bytes of `{q}`");
        assert_eq!(common::keys(&sel).len() as u64, docs, "documents of `{q}`");
    }
    for (key, line) in PINNED_RECORDS {
        let d = c.get(key).unwrap().unwrap_or_else(|| panic!("get {key}"));
        assert_eq!(std::str::from_utf8(&d.json).unwrap(), line, "record {key}");
        let q = format!("id = {key}");
        let out = common::export_bytes(&c.query(&q).unwrap());
        assert_eq!(out, format!("{line}\n").into_bytes(), "export of {key}");
    }
    assert!(c.get("g/07").unwrap().is_none(), "deleted");
    // Every live record exports as its input line says.
    let src = std::fs::read_to_string(common::test_data().join("golden.jsonl")).unwrap();
    let mut want: Vec<serde_json::Value> = common::parse_jsonl(src.as_bytes())
        .into_iter()
        .filter(|v| v["id"] != "g/07")
        .collect();
    let mut got = common::parse_jsonl(&common::export_bytes(&c.all()));
    let by_text = |v: &serde_json::Value| v["text"].as_str().unwrap().to_string();
    want.sort_by_key(by_text);
    got.sort_by_key(by_text);
    assert_eq!(got, want);
    // Stats by lang (normalized) over the live documents.
    let st = corpusql::raw::stats::stats(c, &c.all(), &["lang".into()]).unwrap();
    let table: Vec<(String, u64)> = st
        .groups
        .iter()
        .map(|g| (g.values[0].clone().unwrap(), g.docs))
        .collect();
    // i % 5 picks the language; i % 10 == 5 is code, line 12 is PT-br and
    // g/07 (de) is deleted. Largest first, ties by value.
    let want = [
        ("en", 6),
        ("es", 6),
        ("it", 6),
        ("de", 4),
        ("code", 3),
        ("fr", 3),
        ("pt", 1),
    ];
    let want: Vec<(String, u64)> = want.iter().map(|(v, n)| (v.to_string(), *n)).collect();
    assert_eq!(table, want);
    let v = corpusql::raw::maintain::verify(dir).unwrap();
    assert!(v.ok(), "{v:?}");
    assert_eq!(v.generation, 3);
    assert_eq!(v.segments.len(), 2);
}

#[test]
fn golden_v1() {
    let (tmp, c) = open_copy(1);
    check_golden(&c, tmp.path());
    // A corpus written before derived license facets existed has them, with
    // no migration: they are computed from its `license` terms.
    let pd = count(&c, "license = pd");
    assert!(pd > 0);
    assert_eq!(count(&c, "license_id = pd"), pd);
    assert_eq!(count(&c, "license_class = public-domain"), pd);
    assert_eq!(
        count(&c, "license_id = \"apache-2.0 or mit\""),
        count(&c, "license = apache-2.0_or_mit")
    );
    assert_eq!(
        count(&c, "license_class exists"),
        count(&c, "*"),
        "every document has a class (unknown without a license)"
    );
    // The segments really are format version 1.
    for s in c.segments() {
        let bytes = std::fs::read(s.segment.path()).unwrap();
        assert_eq!(&bytes[..8], b"CORPUSQL");
        assert_eq!(u32::from_le_bytes(bytes[8..12].try_into().unwrap()), 1);
        assert_eq!(s.segment.format_version(), 1);
    }
    // Still writable: an ingest and a compaction on top keep the answers.
    let r = common::ingest_bytes(
        tmp.path(),
        "more.jsonl",
        b"{\"id\": \"g/00\", \"text\": \"dup\"}\n",
        &IngestOptions::default(),
    )
    .unwrap();
    assert_eq!((r.ingested, r.skipped), (0, 1));
    let rep = corpusql::raw::maintain::compact(tmp.path(), 1 << 20).unwrap();
    assert_eq!((rep.docs, rep.dropped), (29, 1));
    let c = Corpus::open(tmp.path()).unwrap();
    assert_eq!(count(&c, "*"), 29);
    for (q, docs, _) in PINNED {
        assert_eq!(count(&c, q), docs, "`{q}` after compaction");
    }
}

#[test]
fn golden_v2() {
    let (tmp, c) = open_copy(2);
    check_golden(&c, tmp.path());
    // The segments really are format version 2, framed, and CURRENT is
    // format 3 (read as it is: the copy has no orphan to collect).
    for s in c.segments() {
        let bytes = std::fs::read(s.segment.path()).unwrap();
        assert_eq!(&bytes[..8], b"CORPUSQL");
        assert_eq!(&bytes[bytes.len() - 8..], b"CORPUSQL");
        assert_eq!(u16::from_le_bytes([bytes[8], bytes[9]]), 2);
        assert_eq!(s.segment.format_version(), 2);
    }
    let current = std::fs::read(golden_dir(2).join("CURRENT")).unwrap();
    assert_eq!(&current[..8], b"CQLCURNT");
    let st = corpusql::raw::catalog::Catalog::new(&golden_dir(2))
        .current()
        .expect("CURRENT v3 reads");
    assert_eq!(st.generation, 3);
    assert_eq!(st.segments, c.state().segments);
}

/// The build is deterministic in what matters: a fresh build of the golden
/// input answers the pinned queries the same way as the committed corpus.
#[test]
fn fresh_build_matches_the_pins() {
    let tmp = tempfile::tempdir().unwrap();
    build(tmp.path());
    let c = Corpus::open(tmp.path()).unwrap();
    check_golden(&c, tmp.path());
    use corpusql::raw::schema::FieldKind::*;
    let nested: Vec<(&str, corpusql::raw::schema::FieldKind)> = c
        .state()
        .schema
        .fields
        .iter()
        .filter(|(k, _)| k.contains('.'))
        .map(|(k, v)| (k.as_str(), *v))
        .collect();
    assert_eq!(
        nested,
        vec![
            ("meta.authors", Facet),
            ("meta.nested", Json),
            ("meta.pages", Number)
        ]
    );
    assert_eq!(count(&c, "meta.pages exists"), count(&c, "meta.pages >= 0"));
    assert!(count(&c, "meta.nested exists") > 0);
}

// ---------------------------------------------------------------- frames

use corpusql::raw::format::FileKind;
use corpusql::raw::segment::sidecar::{self, Column, ColumnValues, Sidecar};
use corpusql::raw::segment::Segment;

fn frames_dir() -> PathBuf {
    common::test_data().join("golden-frames")
}

/// The token counts of the golden token-count files.
const GOLDEN_COUNTS: [u32; 8] = [3, 1, 4, 1, 5, 9, 2, 6];

/// Files of today's formats, written by [`write_frames`].
const NEW_FRAMES: [&str; 4] = [
    "segment-v2.cqs",
    "CURRENT-v3",
    "sidecar-v2.cqt",
    "counts-v3.cqc",
];

/// The tagged set and columns of the golden sidecars (5 documents).
fn golden_sidecar() -> (roaring::RoaringBitmap, Vec<(String, ColumnValues)>) {
    let tagged = [0u32, 1, 2, 4].into_iter().collect();
    let cols = vec![
        (
            "score".to_string(),
            ColumnValues::Number(vec![0.5, f64::NAN, 2.0, -1.0, 1e300]),
        ),
        (
            "label".to_string(),
            ColumnValues::Facet(vec![
                Some("fr".into()),
                None,
                Some("en".into()),
                Some("fr".into()),
                None,
            ]),
        ),
        (
            "flag".to_string(),
            ColumnValues::Bool(vec![Some(true), Some(false), None, None, Some(true)]),
        ),
    ];
    (tagged, cols)
}

/// The first ten golden lines.
fn golden_10() -> String {
    let src = std::fs::read_to_string(common::test_data().join("golden.jsonl")).unwrap();
    src.lines().take(10).collect::<Vec<_>>().join("\n") + "\n"
}

/// Writes today's golden frames into `out` (see the module comment).
fn write_frames(out: &Path) {
    let tmp = tempfile::tempdir().unwrap();
    let input = Input::Reader(
        "golden-10.jsonl".into(),
        Box::new(std::io::Cursor::new(golden_10())),
    );
    let r = ingest(tmp.path(), vec![input], &IngestOptions::default()).unwrap();
    assert_eq!(r.ingested, 10);
    std::fs::copy(
        tmp.path().join("seg-0000000001.cqs"),
        out.join("segment-v2.cqs"),
    )
    .unwrap();
    std::fs::copy(tmp.path().join("CURRENT"), out.join("CURRENT-v3")).unwrap();
    let (tagged, cols) = golden_sidecar();
    sidecar::write(
        &out.join("sidecar-v2.cqt"),
        "golden",
        "golden-1",
        5,
        &tagged,
        &cols,
    )
    .unwrap();
    std::fs::write(
        out.join("counts-v3.cqc"),
        corpusql::raw::tokenize::encode_counts(&GOLDEN_COUNTS),
    )
    .unwrap();
}

#[test]
#[ignore = "rewrites the current-format files of tests/data/golden-frames; run by hand when a framing changes"]
fn regenerate_golden_frames() {
    let out = frames_dir();
    std::fs::create_dir_all(&out).unwrap();
    write_frames(&out);
    eprintln!("wrote {:?} under {}", NEW_FRAMES, out.display());
}

#[test]
fn golden_frames_are_what_todays_writers_write() {
    let tmp = tempfile::tempdir().unwrap();
    write_frames(tmp.path());
    for name in NEW_FRAMES {
        let want = std::fs::read(frames_dir().join(name)).unwrap();
        let got = std::fs::read(tmp.path().join(name)).unwrap();
        assert!(
            got == want,
            "{name}: today's writer differs from the golden file ({} vs {} bytes); \
             see the comment at the top of tests/golden.rs",
            got.len(),
            want.len()
        );
    }
}

#[test]
fn golden_frames_are_framed_as_documented() {
    let kinds = [
        ("segment-v2.cqs", FileKind::Segment),
        ("CURRENT-v3", FileKind::Current),
        ("sidecar-v2.cqt", FileKind::Sidecar),
        ("counts-v3.cqc", FileKind::TokenCounts),
    ];
    for (name, kind) in kinds {
        let b = std::fs::read(frames_dir().join(name)).unwrap();
        let f =
            corpusql::raw::format::decode_whole(kind, &b).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(f.version, kind.version(), "{name}");
        assert_eq!(&b[..8], &kind.magic(), "{name}");
        assert_eq!(&b[b.len() - 8..], &kind.magic(), "{name}");
        for other in FileKind::ALL.into_iter().filter(|k| *k != kind) {
            let e = corpusql::raw::format::decode(other, &b)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(kind.name()) && e.contains(other.name()),
                "{name}: {e}"
            );
        }
    }
    // The old layouts carry their own magics.
    let old = [
        ("sidecar-v1.cqt", &b"CQLTAG01"[..]),
        ("counts-v1.cqc", b"CQTC"),
        ("CURRENT-v2", b"CQLCUR02"),
    ];
    for (name, magic) in old {
        let b = std::fs::read(frames_dir().join(name)).unwrap();
        assert!(b.starts_with(magic), "{name}");
    }
}

#[test]
fn golden_segment_frame_reads() {
    let path = frames_dir().join("segment-v2.cqs");
    let seg = Segment::open(&path).unwrap();
    assert_eq!(seg.format_version(), 2);
    assert_eq!(seg.doc_count(), 10);
    seg.verify().unwrap();
    let want: Vec<serde_json::Value> = common::parse_jsonl(golden_10().as_bytes());
    let mut got = Vec::new();
    for i in 0..seg.blocks().len() {
        let b = seg.read_block(i).unwrap();
        for d in 0..b.len() {
            let mut json = Vec::new();
            b.write_json(d, &mut json);
            got.push(serde_json::from_slice::<serde_json::Value>(&json).unwrap());
        }
    }
    let by_id = |v: &serde_json::Value| v["id"].to_string();
    let mut want = want;
    want.sort_by_key(by_id);
    got.sort_by_key(by_id);
    assert_eq!(got, want);
    assert!(seg.key_ordinal("g/07").is_some());
}

#[test]
fn golden_current_frames_read_the_same_state() {
    let mut states = Vec::new();
    for name in ["CURRENT-v2", "CURRENT-v3"] {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::copy(frames_dir().join(name), tmp.path().join("CURRENT")).unwrap();
        let st = corpusql::raw::catalog::Catalog::new(tmp.path())
            .current()
            .unwrap_or_else(|| panic!("{name} does not read"));
        assert_eq!(st.generation, 1, "{name}");
        assert_eq!(st.segments.len(), 1, "{name}");
        assert_eq!(st.segments[0].file, "seg-0000000001.cqs", "{name}");
        assert_eq!(st.segments[0].docs, 10, "{name}");
        assert_eq!(st.next_segment_id, 2, "{name}");
        assert!(st.tombstones.is_empty(), "{name}");
        states.push(st);
    }
    let (a, b) = (&states[0], &states[1]);
    // Today's writer also indexes the leaves of nested objects (`meta.pages`,
    // issue 13); the v2 manifest predates that and lists only top-level fields.
    let top =
        |s: &corpusql::raw::schema::Schema| -> Vec<(String, corpusql::raw::schema::FieldKind)> {
            s.fields
                .iter()
                .filter(|(k, _)| !k.contains('.'))
                .map(|(k, v)| (k.clone(), *v))
                .collect()
        };
    assert_eq!(top(&a.schema), top(&b.schema));
    assert!(b.schema.fields.keys().any(|k| k.contains('.')));
    assert_eq!(a.cluster_fields, b.cluster_fields);
    assert_eq!(a.segments[0].text_bytes, b.segments[0].text_bytes);
    // The v3 manifest lists the golden v2 segment.
    let seg_len = std::fs::metadata(frames_dir().join("segment-v2.cqs"))
        .unwrap()
        .len();
    assert_eq!(b.segments[0].file_bytes, seg_len);
}

#[test]
fn golden_sidecar_frames_read() {
    for name in ["sidecar-v1.cqt", "sidecar-v2.cqt"] {
        let (tagged, cols) = golden_sidecar();
        let names = cols.iter().map(|(n, v)| (n.clone(), v.kind())).collect();
        let s = Sidecar::open(&frames_dir().join(name), names).unwrap();
        let (meta, t) = s.meta().unwrap();
        assert_eq!(
            (meta.tagger.as_str(), meta.version.as_str()),
            ("golden", "golden-1")
        );
        assert_eq!(meta.doc_count, 5);
        assert_eq!(*t, tagged, "{name}");
        match &*s.column(0).unwrap() {
            Column::Number(v, present) => {
                assert_eq!((v[0], v[2], v[3], v[4]), (0.5, 2.0, -1.0, 1e300), "{name}");
                assert!(v[1].is_nan());
                assert_eq!(present.iter().collect::<Vec<_>>(), vec![0, 2, 3, 4]);
            }
            _ => panic!("{name}: score is not a number column"),
        }
        match &*s.column(1).unwrap() {
            Column::Facet(vals, _) => {
                let vals: Vec<(&str, Vec<u32>)> = vals
                    .iter()
                    .map(|(v, b)| (v.as_str(), b.iter().collect()))
                    .collect();
                assert_eq!(vals, vec![("en", vec![2]), ("fr", vec![0, 3])], "{name}");
            }
            _ => panic!("{name}: label is not a facet column"),
        }
        match &*s.column(2).unwrap() {
            Column::Facet(vals, _) => {
                let vals: Vec<(&str, Vec<u32>)> = vals
                    .iter()
                    .map(|(v, b)| (v.as_str(), b.iter().collect()))
                    .collect();
                assert_eq!(
                    vals,
                    vec![("false", vec![1]), ("true", vec![0, 4])],
                    "{name}"
                );
            }
            _ => panic!("{name}: flag is not a bool column"),
        }
        s.verify().unwrap();
    }
}

#[test]
fn golden_token_count_frames_read() {
    for name in ["counts-v1.cqc", "counts-v2.cqc", "counts-v3.cqc"] {
        let path = frames_dir().join(name);
        let b = std::fs::read(&path).unwrap();
        let c = corpusql::raw::tokenize::decode_counts(&path, &b, 8).unwrap();
        assert_eq!(c, GOLDEN_COUNTS, "{name}");
        let e = corpusql::raw::tokenize::decode_counts(&path, &b, 7)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("another segment") || e.contains("malformed"),
            "{name}: {e}"
        );
    }
}

/// A file of another kind, or of a newer format, is refused with an error
/// that says what it is, what this build reads, and what to do.
#[test]
fn frames_of_another_kind_or_a_newer_format_are_refused_plainly() {
    let tmp = tempfile::tempdir().unwrap();
    let sidecar = std::fs::read(frames_dir().join("sidecar-v2.cqt")).unwrap();
    let path = tmp.path().join("seg-0000000001.tok-hf-0.cqc");
    let e = corpusql::raw::tokenize::decode_counts(&path, &sidecar, 5)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("tag sidecar") && e.contains("not a token-count file"),
        "{e}"
    );
    let seg = tmp.path().join("seg-0000000009.cqs");
    std::fs::write(&seg, &sidecar).unwrap();
    let e = Segment::open(&seg).unwrap_err().to_string();
    assert!(
        e.contains("tag sidecar") && e.contains("not a segment"),
        "{e}"
    );

    let mut counts = std::fs::read(frames_dir().join("counts-v3.cqc")).unwrap();
    counts[corpusql::raw::format::HEADER_VERSION_OFFSET] = 4;
    let e = corpusql::raw::tokenize::decode_counts(&path, &counts, 8)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("written by format version 4; this corpusql reads up to 3: upgrade corpusql"),
        "{e}"
    );
    let mut segment = std::fs::read(frames_dir().join("segment-v2.cqs")).unwrap();
    segment[corpusql::raw::format::HEADER_VERSION_OFFSET] = 3;
    std::fs::write(&seg, &segment).unwrap();
    let e = Segment::open(&seg).unwrap_err().to_string();
    assert!(
        e.contains("written by format version 3; this corpusql reads up to 2: upgrade corpusql or re-ingest"),
        "{e}"
    );
    let mut sc = sidecar.clone();
    sc[corpusql::raw::format::HEADER_VERSION_OFFSET] = 3;
    let p = tmp.path().join("seg-0000000001.tag-golden-1.cqt");
    std::fs::write(&p, &sc).unwrap();
    let e = Sidecar::open(&p, Vec::new())
        .unwrap()
        .meta()
        .unwrap_err()
        .to_string();
    assert!(e.contains("written by format version 3"), "{e}");
    // A truncated frame says it is incomplete.
    segment[corpusql::raw::format::HEADER_VERSION_OFFSET] = 2;
    std::fs::write(&seg, &segment[..segment.len() - 3]).unwrap();
    let e = Segment::open(&seg).unwrap_err().to_string();
    assert!(e.contains("truncated"), "{e}");
}
