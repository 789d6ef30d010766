//! Records as public corpora ship them: nested metadata queryable by dotted
//! path (`meta.language`), a field mapping saved with the corpus, a clear
//! error when the text field is missing everywhere, directories and glob
//! patterns of shards, and ingests that add nothing making no generation.

mod common;

use std::path::Path;

use common::{count, ingest_bytes};
use corpusql::raw::ingest::RecordOptions;
use corpusql::{ingest, Corpus, IngestOptions, Input};
use serde_json::Value;

const HF: &str = r#"{"doc_id": "a", "content": "Bonjour le monde", "meta": {"language": "fr", "license": "cc-by-4.0", "year": 1901, "tags": ["ocr", "book"], "ok": true, "sub": {"depth": 2, "note": null}}}
{"doc_id": "b", "content": "Hello world", "meta": {"language": "en", "license": "CC0-1.0", "year": 2001, "tags": ["web"], "ok": false}}
{"doc_id": "c", "content": "Hallo Welt", "meta": {"language": "de", "year": "unknown", "scores": [1, "x"]}}
"#;

fn mapped() -> IngestOptions {
    IngestOptions {
        record: RecordOptions {
            text_field: Some("content".into()),
            id_field: Some("doc_id".into()),
            set: vec![],
        },
        license_field: Some("meta.license".into()),
        ..IngestOptions::default()
    }
}

fn corpusql(dir: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_corpusql"))
        .arg("--corpus")
        .arg(dir)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn nested_fields_are_queryable_by_dotted_path_and_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let r = ingest_bytes(tmp.path(), "hf.jsonl", HF.as_bytes(), &mapped()).unwrap();
    assert_eq!((r.ingested, r.rejected), (3, 0));
    // `meta.year` was a number first: the string of `c` is stored, not indexed.
    assert_eq!(r.unindexed.get("meta.year"), Some(&1));
    let c = Corpus::open(tmp.path()).unwrap();
    assert_eq!(count(&c, "meta.language = fr"), 1);
    assert_eq!(count(&c, "meta.language in (fr, de)"), 2);
    assert_eq!(count(&c, "meta.year >= 1900"), 2);
    assert_eq!(count(&c, "meta.year > 2000"), 1);
    assert_eq!(count(&c, "meta.tags = ocr"), 1);
    assert_eq!(count(&c, "meta.ok = true"), 1);
    assert_eq!(count(&c, "meta.sub exists"), 1);
    assert_eq!(count(&c, "meta.sub.depth = 2"), 1);
    // A leaf that is null in every record is missing, as a top-level null
    // field is: not in the schema.
    let Err(e) = c.query("meta.sub.note exists") else {
        panic!("meta.sub.note is not a field")
    };
    assert!(
        e.to_string().contains("unknown field `meta.sub.note`"),
        "{e}"
    );
    assert_eq!(count(&c, "meta.license exists"), 2);
    assert_eq!(count(&c, "exists meta.license"), 2);
    assert_eq!(count(&c, "not exists meta.license"), 1);
    assert_eq!(count(&c, "meta.scores exists"), 1);
    // The license field may be nested: derived facets follow it.
    assert_eq!(count(&c, "license_id = cc-by-4.0"), 1);
    assert_eq!(count(&c, "license_id = cc0-1.0"), 1);
    assert_eq!(count(&c, "license_class = public-domain"), 1);
    let kinds: Vec<(String, String)> = c
        .schema()
        .fields
        .iter()
        .map(|(f, k)| (f.clone(), k.name().to_string()))
        .collect();
    for (f, k) in [
        ("meta", "json"),
        ("meta.language", "facet"),
        ("meta.year", "number"),
        ("meta.tags", "facet"),
        ("meta.ok", "bool"),
        ("meta.sub", "json"),
        ("meta.sub.depth", "number"),
        ("meta.scores", "json"),
    ] {
        assert!(kinds.contains(&(f.into(), k.into())), "{f}: {kinds:?}");
    }
    // Stored records are the input lines, byte for byte.
    let sel = c.query("*").unwrap();
    let out = common::export_bytes(&sel);
    // Every value comes back as ingested, the nested objects byte for byte
    // (only the spacing between top-level fields is the writer's).
    let got: Vec<&str> = std::str::from_utf8(&out).unwrap().lines().collect();
    assert_eq!(got.len(), HF.lines().count());
    for line in HF.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let back = got
            .iter()
            .find(|g| serde_json::from_str::<Value>(g).unwrap()["doc_id"] == v["doc_id"])
            .expect("exported");
        assert_eq!(serde_json::from_str::<Value>(back).unwrap(), v);
        let meta = &line[line.find("\"meta\": ").unwrap() + 8..line.len() - 1];
        assert!(back.contains(meta), "{back} lacks {meta}");
    }
    // stats --by and --fields take dotted paths.
    let o = corpusql(
        tmp.path(),
        &["stats", "*", "--by", "meta.language", "--json"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(s.contains("\"de\"") && s.contains("\"fr\""), "{s}");
    let o = corpusql(
        tmp.path(),
        &[
            "query",
            "meta.language = fr",
            "--fields",
            "doc_id,meta.language,meta.sub.depth",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"doc_id": "a", "meta.language": "fr", "meta.sub.depth": 2})
    );
}

#[test]
fn the_field_mapping_is_saved_and_used_by_later_ingests() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    // Without the mapping: one clear error naming the fields, no commit.
    let e = ingest_bytes(&dir, "hf.jsonl", HF.as_bytes(), &IngestOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("hf.jsonl: none of its 3 records has the text field"),
        "{e}"
    );
    assert!(e.contains("--text-field content"), "{e}");
    assert!(e.contains("`doc_id`"), "{e}");
    // The first ingest that adds documents sets the mapping...
    ingest_bytes(&dir, "hf.jsonl", HF.as_bytes(), &mapped()).unwrap();
    let more = r#"{"doc_id": "d", "content": "Ciao mondo", "meta": {"language": "it"}}"#;
    // ... which later ingests use without naming it.
    let r = ingest_bytes(
        &dir,
        "more.jsonl",
        more.as_bytes(),
        &IngestOptions::default(),
    )
    .unwrap();
    assert_eq!((r.ingested, r.rejected), (1, 0));
    let c = Corpus::open(&dir).unwrap();
    assert_eq!(c.get("d").unwrap().unwrap().text, "Ciao mondo");
    assert_eq!(c.schema().text_field, "content");
    assert_eq!(c.schema().key_field, "doc_id");
    let o = corpusql(&dir, &["schema"]);
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(s.contains("doc_id") && s.contains("content"), "{s}");
}

#[test]
fn an_ingest_that_adds_nothing_makes_no_generation() {
    let tmp = tempfile::tempdir().unwrap();
    let r = ingest_bytes(tmp.path(), "hf.jsonl", HF.as_bytes(), &mapped()).unwrap();
    assert!(r.committed);
    let g = r.generation;
    let again = ingest_bytes(tmp.path(), "hf.jsonl", HF.as_bytes(), &mapped()).unwrap();
    assert_eq!((again.ingested, again.skipped), (0, 3));
    assert!(!again.committed);
    assert_eq!(again.generation, g);
    assert_eq!(Corpus::open(tmp.path()).unwrap().generation(), g);
    let empty = ingest_bytes(tmp.path(), "empty.jsonl", b"\n\n", &mapped()).unwrap();
    assert!(!empty.committed);
    assert_eq!(Corpus::open(tmp.path()).unwrap().generation(), g);
}

#[test]
fn directories_and_globs_expand_in_sorted_order_and_report_per_file() {
    let tmp = tempfile::tempdir().unwrap();
    let shards = tmp.path().join("shards");
    std::fs::create_dir_all(shards.join("b")).unwrap();
    let line = |k: &str| format!("{{\"id\": \"{k}\", \"text\": \"text of {k}\"}}\n");
    std::fs::write(shards.join("b/2.jsonl"), line("k2")).unwrap();
    std::fs::write(shards.join("a.jsonl"), line("k1") + &line("k1b")).unwrap();
    std::fs::write(shards.join("_SUCCESS"), b"").unwrap();
    std::fs::write(shards.join(".hidden.jsonl"), b"not json").unwrap();
    let more = tmp.path().join("more");
    std::fs::create_dir_all(&more).unwrap();
    std::fs::write(more.join("x-2.jsonl"), line("k4")).unwrap();
    std::fs::write(more.join("x-1.jsonl"), line("k3")).unwrap();
    std::fs::write(more.join("y.txt"), b"not json").unwrap();
    let dir = tmp.path().join("c");
    let r = ingest(
        &dir,
        vec![
            Input::Path(shards.clone()),
            Input::Path(more.join("x-*.jsonl")),
            Input::Path(shards.join("a.jsonl")),
        ],
        &IngestOptions::default(),
    )
    .unwrap();
    let files: Vec<(String, u64)> = r
        .files
        .iter()
        .map(|f| {
            let p = Path::new(&f.source);
            let rel = p.strip_prefix(tmp.path()).unwrap_or(p);
            (rel.display().to_string(), f.ingested)
        })
        .collect();
    assert_eq!(
        files,
        vec![
            ("shards/a.jsonl".to_string(), 2),
            ("shards/b/2.jsonl".to_string(), 1),
            ("more/x-1.jsonl".to_string(), 1),
            ("more/x-2.jsonl".to_string(), 1),
        ]
    );
    assert_eq!((r.ingested, r.rejected), (5, 0));
    let o = corpusql(&dir, &["ingest", more.join("z-*").to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("no file matches"));
}
