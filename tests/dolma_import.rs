//! `tag import-dolma`: Dolma attribute files (plain and gzip, written here
//! the way Dolma's tagger pipeline writes them: msgspec-encoded
//! `{"id","attributes","source"}` lines, character offsets, attributes with
//! no span omitted) become signal columns equal to what the files say —
//! the whole-document span's score, the maximum span score, the covered
//! fraction and the span count — that queries, `stats` and `export
//! --signals` see. Documents without a line have no value; unknown ids are
//! counted; a malformed line names its file, line and field and commits
//! nothing; re-importing an attribute replaces it.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{count, ingest_bytes};
use corpusql::raw::export::write_jsonl;
use corpusql::raw::tag::dolma::{DolmaOptions, Level, OnUnknownId};
use corpusql::{Corpus, IngestOptions, Projection};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_corpusql");

/// Documents of the corpus: (id, text). Non-ASCII text checks that offsets
/// count characters, not bytes.
const DOCS: &[(&str, &str)] = &[
    ("d0", "Hello world, write to bob@example.com today."),
    (
        "d1",
        "Ça coûte très cher, écrivez à zoé@exemple.fr ou à léa@exemple.fr.",
    ),
    ("d2", "No address here at all."),
    ("d3", "日本語のテキストです。"),
    ("d4", "Short."),
    ("d5", "This one has no attribute line."),
];

fn chars(id: &str) -> usize {
    DOCS.iter()
        .find(|(i, _)| *i == id)
        .map(|(_, t)| t.chars().count())
        .unwrap()
}

/// A corpus of DOCS in two segments (two ingests).
fn corpus() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    for half in [&DOCS[..3], &DOCS[3..]] {
        let mut data = String::new();
        for (id, text) in half {
            data.push_str(&json!({"id": id, "text": text, "source": "web"}).to_string());
            data.push('\n');
        }
        ingest_bytes(
            &dir,
            "docs.jsonl",
            data.as_bytes(),
            &IngestOptions::default(),
        )
        .unwrap();
    }
    (tmp, dir)
}

/// Spans of one attribute: (start, end, score).
type Spans = Vec<(usize, usize, f64)>;

/// One attribute line as Dolma's `OutputSpec` encodes it (msgspec: fields
/// in declaration order, no spaces, scores as floats).
fn dolma_line(id: &str, attrs: &[(&str, Spans)]) -> String {
    let a: Vec<String> = attrs
        .iter()
        .map(|(k, spans)| {
            let s: Vec<String> = spans
                .iter()
                .map(|(b, e, x)| format!("[{b},{e},{x:?}]"))
                .collect();
            format!("\"{k}\":[{}]", s.join(","))
        })
        .collect();
    format!(
        "{{\"id\":\"{id}\",\"attributes\":{{{}}},\"source\":\"web\"}}\n",
        a.join(",")
    )
}

/// The span of `needle` in DOCS[id], in characters.
fn span_of(id: &str, needle: &str) -> (usize, usize) {
    let text = DOCS.iter().find(|(i, _)| *i == id).unwrap().1;
    let b = text.find(needle).unwrap();
    let s = text[..b].chars().count();
    (s, s + needle.chars().count())
}

const QUALITY: &str = "exp1__quality__score";
const EMAIL: &str = "exp1__pii__EMAIL_ADDRESS";
const LANG: &str = "exp2__cld2.v1__en-doc";

/// exp1 (plain): a document-level score and e-mail spans (omitted where a
/// document has none, as Dolma does); an unknown id; no line for d5.
fn exp1(dir: &Path, quality: &[f64]) -> PathBuf {
    let p = dir.join("exp1.jsonl");
    let mut s = String::new();
    let e0 = span_of("d0", "bob@example.com");
    let e1a = span_of("d1", "zoé@exemple.fr");
    let e1b = span_of("d1", "léa@exemple.fr");
    for (i, id) in ["d0", "d1", "d2", "d3", "d4"].iter().enumerate() {
        let mut attrs = vec![(QUALITY, vec![(0, chars(id), quality[i])])];
        match *id {
            "d0" => attrs.push((EMAIL, vec![(e0.0, e0.1, 1.0)])),
            "d1" => attrs.push((EMAIL, vec![(e1a.0, e1a.1, 0.5), (e1b.0, e1b.1, 0.75)])),
            _ => {}
        }
        s.push_str(&dolma_line(id, &attrs));
        if i == 2 {
            s.push_str(&dolma_line(
                "not-in-corpus",
                &[(QUALITY, vec![(0, 3, 0.1)])],
            ));
        }
    }
    std::fs::write(&p, s).unwrap();
    p
}

/// exp2 (gzip): a document-level attribute whose name has a dot and a dash.
fn exp2(dir: &Path) -> PathBuf {
    let p = dir.join("exp2.jsonl.gz");
    let mut g = flate2::write::GzEncoder::new(
        std::fs::File::create(&p).unwrap(),
        flate2::Compression::default(),
    );
    for (i, id) in ["d0", "d1", "d2", "d3", "d4"].iter().enumerate() {
        let line = if *id == "d3" {
            // A Dolma line whose tagger emitted nothing.
            dolma_line(id, &[])
        } else {
            dolma_line(id, &[(LANG, vec![(0, chars(id), 0.2 * i as f64)])])
        };
        g.write_all(line.as_bytes()).unwrap();
    }
    g.finish().unwrap();
    p
}

/// Every document's signals, by id, from `export --signals`.
fn signals(corpus: &Corpus) -> BTreeMap<String, Value> {
    let mut out = Vec::new();
    write_jsonl(&corpus.all(), &Projection::WithSignals, &mut out).unwrap();
    common::parse_jsonl(&out)
        .into_iter()
        .map(|v| (v["id"].as_str().unwrap().to_string(), v))
        .collect()
}

fn num(v: &Value, field: &str) -> Option<f64> {
    let f = v.get(field)?;
    assert!(f.is_number() || f.is_null(), "{field}: {f}");
    f.as_f64()
}

fn close(a: Option<f64>, b: f64, what: &str) {
    let a = a.unwrap_or_else(|| panic!("{what}: no value"));
    assert!((a - b).abs() < 1e-9, "{what}: {a} != {b}");
}

fn cqt_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".cqt"))
        .collect();
    v.sort();
    v
}

#[test]
fn import_writes_what_the_files_say() {
    let (tmp, dir) = corpus();
    let quality = [0.9, 0.3, 0.6, 0.5, 0.1];
    let f1 = exp1(tmp.path(), &quality);
    let f2 = exp2(tmp.path());
    let mut c = Corpus::open(&dir).unwrap();
    let g0 = c.generation();
    let r = c.import_dolma(&[f1, f2], &DolmaOptions::default()).unwrap();
    assert_eq!(r.generation, Some(g0 + 1), "one commit");
    assert_eq!(c.generation(), g0 + 1);
    assert_eq!(r.files, 2);
    assert_eq!(r.lines, 11);
    assert_eq!(r.matched_docs, 5);
    assert_eq!(r.unknown_ids, 1);
    assert_eq!(r.unknown_examples, vec!["not-in-corpus".to_string()]);
    let by: BTreeMap<&str, _> = r
        .attributes
        .iter()
        .map(|a| (a.attribute.as_str(), a))
        .collect();
    assert_eq!(by[QUALITY].level, Level::Document);
    assert_eq!(by[QUALITY].columns, vec!["dolma_exp1__quality__score"]);
    assert_eq!(by[LANG].level, Level::Document);
    assert_eq!(by[LANG].columns, vec!["dolma_exp2__cld2_v1__en_doc"]);
    assert_eq!(by[EMAIL].level, Level::Span);
    assert_eq!(
        by[EMAIL].columns,
        vec![
            "dolma_exp1__pii__EMAIL_ADDRESS",
            "dolma_exp1__pii__EMAIL_ADDRESS_frac",
            "dolma_exp1__pii__EMAIL_ADDRESS_spans"
        ]
    );
    assert_eq!(by[EMAIL].docs, 2);
    assert!(r.attributes.iter().all(|a| a.out_of_range_docs == 0));

    let s = signals(&c);
    for (i, id) in ["d0", "d1", "d2", "d3", "d4"].iter().enumerate() {
        close(num(&s[*id], "dolma_exp1__quality__score"), quality[i], id);
    }
    // Span attribute: max score, covered fraction (characters), count.
    let e = "dolma_exp1__pii__EMAIL_ADDRESS";
    close(num(&s["d0"], e), 1.0, "d0 max");
    close(num(&s["d1"], e), 0.75, "d1 max");
    let frac0 = "bob@example.com".chars().count() as f64 / chars("d0") as f64;
    close(num(&s["d0"], &format!("{e}_frac")), frac0, "d0 frac");
    let frac1 = ("zoé@exemple.fr".chars().count() + "léa@exemple.fr".chars().count()) as f64
        / chars("d1") as f64;
    close(num(&s["d1"], &format!("{e}_frac")), frac1, "d1 frac");
    close(num(&s["d1"], &format!("{e}_spans")), 2.0, "d1 spans");
    // A line without the attribute: no score, nothing covered, no span.
    assert_eq!(num(&s["d2"], e), None);
    close(num(&s["d2"], &format!("{e}_frac")), 0.0, "d2 frac");
    close(num(&s["d2"], &format!("{e}_spans")), 0.0, "d2 spans");
    // exp2 (gzip): d3's line had no attribute.
    let l = "dolma_exp2__cld2_v1__en_doc";
    close(num(&s["d4"], l), 0.8, "d4 lang");
    assert_eq!(num(&s["d3"], l), None);
    // No line at all: no value anywhere.
    for col in [
        "dolma_exp1__quality__score",
        e,
        &format!("{e}_frac"),
        &format!("{e}_spans"),
        l,
    ] {
        assert_eq!(num(&s["d5"], col), None, "d5 {col}");
    }

    // Queries.
    assert_eq!(count(&c, "dolma_exp1__quality__score >= 0.5"), 3);
    assert_eq!(count(&c, "dolma_exp1__quality__score < 0.5"), 2);
    assert_eq!(count(&c, "not dolma_exp1__quality__score exists"), 1);
    assert_eq!(count(&c, "dolma_exp1__pii__EMAIL_ADDRESS_spans = 0"), 3);
    assert_eq!(count(&c, "dolma_exp1__pii__EMAIL_ADDRESS_frac > 0.1"), 2);
    assert_eq!(
        count(
            &c,
            "dolma_exp1__quality__score >= 0.5 and dolma_exp1__pii__EMAIL_ADDRESS_spans = 0"
        ),
        2
    );
    let sel = c.query("dolma_exp1__quality__score >= 0.5").unwrap();
    assert!(sel.notes.is_empty(), "{:?}", sel.notes);

    // schema and stats know them.
    let schema = c.describe_schema(5).unwrap();
    let f = schema
        .fields
        .iter()
        .find(|f| f.name == "dolma_exp1__quality__score")
        .expect("in the schema");
    assert_eq!(
        f.tagger.as_deref(),
        Some("dolma-dolma_exp1__quality__score")
    );
    assert_eq!(f.docs, 5);
    let sel = c.query("dolma_exp1__quality__score >= 0.5").unwrap();
    let st = c.stats(&sel, &["source".to_string()]).unwrap();
    assert_eq!(st.docs, 3);
    assert_eq!(st.groups[0].values, vec![Some("web".to_string())]);
}

#[test]
fn unknown_ids_can_be_refused() {
    let (tmp, dir) = corpus();
    let f1 = exp1(tmp.path(), &[0.5; 5]);
    let mut c = Corpus::open(&dir).unwrap();
    let g0 = c.generation();
    let opts = DolmaOptions {
        on_unknown_id: OnUnknownId::Error,
        ..Default::default()
    };
    let e = c
        .import_dolma(std::slice::from_ref(&f1), &opts)
        .unwrap_err()
        .to_string();
    assert!(e.contains("exp1.jsonl:4:"), "{e}");
    assert!(e.contains("not-in-corpus"), "{e}");
    assert_eq!(Corpus::open(&dir).unwrap().generation(), g0);
    assert!(cqt_files(&dir).is_empty());
}

#[test]
fn a_malformed_line_names_file_line_field_and_commits_nothing() {
    let (tmp, dir) = corpus();
    let f2 = exp2(tmp.path());
    let mut c = Corpus::open(&dir).unwrap();
    c.import_dolma(std::slice::from_ref(&f2), &DolmaOptions::default())
        .unwrap();
    let g1 = c.generation();
    let before = cqt_files(&dir);
    let cases: &[(&str, &str)] = &[
        (
            r#"{"id":"d1","attributes":{"a__b__c":[[0,5]]}}"#,
            "attributes.a__b__c",
        ),
        (
            r#"{"id":"d1","attributes":{"a__b__c":[[5,2,1.0]]}}"#,
            "attributes.a__b__c",
        ),
        (
            r#"{"id":"d1","attributes":{"a__b__c":[[0,2,"high"]]}}"#,
            "attributes.a__b__c",
        ),
        (
            r#"{"id":"d1","attributes":{"a__b__c":0.5}}"#,
            "attributes.a__b__c",
        ),
        (r#"{"id":"d1","attributes":[]}"#, "attributes"),
        (r#"{"attributes":{}}"#, "id"),
        (r#"{"id":"d1","attributes":{"#, "not JSON"),
    ];
    for (bad, what) in cases {
        let p = tmp.path().join("bad.jsonl");
        let g0 = dolma_line("d0", &[("a__b__c", vec![(0, 3, 0.5)])]);
        let g2 = dolma_line("d2", &[("a__b__c", vec![(0, 3, 0.5)])]);
        std::fs::write(&p, format!("{g0}\n{g2}{bad}\n")).unwrap();
        let e = c
            .import_dolma(&[f2.clone(), p], &DolmaOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("bad.jsonl:4:"), "{bad}: {e}");
        assert!(e.contains(what), "{bad}: {e}");
        assert_eq!(Corpus::open(&dir).unwrap().generation(), g1, "{bad}");
        assert_eq!(cqt_files(&dir), before, "{bad}");
    }
    // The same attribute twice for one document is refused too.
    let p = tmp.path().join("twice.jsonl");
    let line = dolma_line("d0", &[("a__b__c", vec![(0, 3, 0.5)])]);
    std::fs::write(&p, format!("{line}{line}")).unwrap();
    let e = c
        .import_dolma(&[p], &DolmaOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("twice.jsonl:2:"), "{e}");
    assert_eq!(Corpus::open(&dir).unwrap().generation(), g1);
}

#[test]
fn reimport_replaces_and_attributes_filter() {
    let (tmp, dir) = corpus();
    let mut c = Corpus::open(&dir).unwrap();
    let f1 = exp1(tmp.path(), &[0.9, 0.3, 0.6, 0.5, 0.1]);
    let only = DolmaOptions {
        attributes: Some(vec![QUALITY.to_string()]),
        ..Default::default()
    };
    let r = c.import_dolma(&[f1], &only).unwrap();
    assert_eq!(r.attributes.len(), 1);
    assert_eq!(count(&c, "dolma_exp1__quality__score >= 0.5"), 3);
    assert!(c.query("dolma_exp1__pii__EMAIL_ADDRESS exists").is_err());
    let files = cqt_files(&dir);
    assert_eq!(files.len(), 2, "one sidecar per segment: {files:?}");

    // Same attribute, new scores: replaced, not added.
    let f1 = exp1(tmp.path(), &[0.1, 0.1, 0.1, 0.1, 0.9]);
    c.import_dolma(std::slice::from_ref(&f1), &only).unwrap();
    assert_eq!(count(&c, "dolma_exp1__quality__score >= 0.5"), 1);
    assert_eq!(count(&c, "dolma_exp1__quality__score exists"), 5);
    let after = cqt_files(&dir);
    assert_eq!(after.len(), 2, "old sidecars collected: {after:?}");
    assert!(after.iter().all(|f| !files.contains(f)));

    // Another prefix makes other columns; a missing attribute is an error.
    let other = DolmaOptions {
        prefix: "d_".into(),
        attributes: Some(vec![QUALITY.to_string()]),
        ..Default::default()
    };
    c.import_dolma(std::slice::from_ref(&f1), &other).unwrap();
    assert_eq!(count(&c, "d_exp1__quality__score >= 0.5"), 1);
    assert_eq!(count(&c, "dolma_exp1__quality__score >= 0.5"), 1);
    let nope = DolmaOptions {
        attributes: Some(vec!["exp9__x__y".to_string()]),
        ..Default::default()
    };
    let e = c
        .import_dolma(std::slice::from_ref(&f1), &nope)
        .unwrap_err()
        .to_string();
    assert!(e.contains("exp9__x__y"), "{e}");
    let bad_prefix = DolmaOptions {
        prefix: "a.b".into(),
        ..Default::default()
    };
    assert!(c.import_dolma(&[f1], &bad_prefix).is_err());
}

#[test]
fn a_stored_field_is_not_shadowed() {
    let (tmp, dir) = corpus();
    let p = tmp.path().join("src.jsonl");
    std::fs::write(&p, dolma_line("d0", &[("source", vec![(0, 3, 0.5)])])).unwrap();
    let opts = DolmaOptions {
        prefix: String::new(),
        ..Default::default()
    };
    let e = Corpus::open(&dir)
        .unwrap()
        .import_dolma(&[p], &opts)
        .unwrap_err()
        .to_string();
    assert!(e.contains("`source`"), "{e}");
}

#[test]
fn cli_import_query_and_export() {
    let (tmp, dir) = corpus();
    let f1 = exp1(tmp.path(), &[0.9, 0.3, 0.6, 0.5, 0.1]);
    let f2 = exp2(tmp.path());
    let run = |args: &[&str]| {
        let o = Command::new(BIN)
            .arg("-C")
            .arg(&dir)
            .args(args)
            .env_remove("CORPUSQL_DIR")
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (code, out, err) = run(&[
        "tag",
        "import-dolma",
        f1.to_str().unwrap(),
        f2.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["unknown_ids"], 1);
    assert_eq!(v["attributes"].as_array().unwrap().len(), 3);
    let (code, out, err) = run(&["count", "dolma_exp1__quality__score >= 0.5"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.trim().starts_with('3'), "{out}");
    let (code, out, err) = run(&["export", "dolma_exp1__quality__score >= 0.85", "--signals"]);
    assert_eq!(code, Some(0), "{err}");
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["id"], "d0");
    assert_eq!(v["dolma_exp1__quality__score"], 0.9);
    let (code, out, err) = run(&[
        "stats",
        "dolma_exp1__pii__EMAIL_ADDRESS_spans > 0",
        "--by",
        "source",
        "--json",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["docs"], 2, "{out}");
    // A malformed file: the error names file, line and field; exit non-zero.
    let bad = tmp.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"id\":\"d0\",\"attributes\":{\"x\":[[0,1]]}}\n").unwrap();
    let (code, _, err) = run(&["tag", "import-dolma", bad.to_str().unwrap()]);
    assert_ne!(code, Some(0));
    assert!(
        err.contains("bad.jsonl:1:") && err.contains("attributes.x"),
        "{err}"
    );
    let (code, _, err) = run(&[
        "tag",
        "import-dolma",
        f1.to_str().unwrap(),
        "--on-unknown-id",
        "error",
    ]);
    assert_ne!(code, Some(0));
    assert!(err.contains("not-in-corpus"), "{err}");
}
