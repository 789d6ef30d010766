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
//! pinned answers (they describe the data, not the format).

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
    std::fs::write(tmp.path().join(corpusql::catalog::CATALOG_FILE), catalog).unwrap();
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
    let (n, _) = corpusql::maintain::delete(dir, "id = g/07").unwrap();
    assert_eq!(n, 1);
}

#[test]
#[ignore = "writes tests/data/golden-vN; run by hand when the format version changes"]
fn regenerate_golden() {
    let version = corpusql::format::FORMAT_VERSION;
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
    std::fs::remove_file(out.join(corpusql::catalog::CATALOG_FILE)).unwrap();
    let catalog = std::fs::read(tmp.path().join(corpusql::catalog::CATALOG_FILE)).unwrap();
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
    use corpusql::schema::FieldKind::*;
    let fields: Vec<(&str, corpusql::schema::FieldKind)> = c
        .state()
        .schema
        .fields
        .iter()
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
    let st = corpusql::stats::stats(c, &c.all(), &["lang".into()]).unwrap();
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
    let v = corpusql::maintain::verify(dir).unwrap();
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
    let rep = corpusql::maintain::compact(tmp.path(), 1 << 20).unwrap();
    assert_eq!((rep.docs, rep.dropped), (29, 1));
    let c = Corpus::open(tmp.path()).unwrap();
    assert_eq!(count(&c, "*"), 29);
    for (q, docs, _) in PINNED {
        assert_eq!(count(&c, q), docs, "`{q}` after compaction");
    }
}

/// The build is deterministic in what matters: a fresh build of the golden
/// input answers the pinned queries the same way as the committed corpus.
#[test]
fn fresh_build_matches_the_pins() {
    let tmp = tempfile::tempdir().unwrap();
    build(tmp.path());
    let c = Corpus::open(tmp.path()).unwrap();
    check_golden(&c, tmp.path());
}
