//! The real dev corpus (`../shared/data/realcorpus-dev.jsonl.zst`, 35,247
//! documents) against its independently computed truth file: totals, facet
//! tables, the example queries (counts, bytes and id hashes), an export
//! round-trip of every record, lookups, re-ingest as duplicates, delete and
//! compact. The corpus is ingested once per test binary; tests that change
//! it work on a copy. Without `../shared/data` every test prints
//! `SKIPPED: ../shared/data absent` and passes.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::OnceLock;

use common::{copy_corpus, count, ids_sha256, keys, shared_file};
use corpusql::{ingest, Corpus, IngestOptions, Input};
use serde_json::Value;

const CORPUS: &str = "realcorpus-dev.jsonl.zst";
const TRUTH: &str = "realcorpus-dev.truth.json";
const TOTAL_DOCS: u64 = 35_247;
/// Small segments, so that every query spans several of them.
const SEGMENT_BYTES: usize = 48 << 20;

struct Fixture {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    corpus_file: PathBuf,
    truth: Value,
    /// Every input record, by id, as parsed by serde_json.
    records: HashMap<String, Value>,
    /// Input ids in file order.
    order: Vec<String>,
    report: corpusql::IngestReport,
}

fn fixture() -> Option<&'static Fixture> {
    static F: OnceLock<Option<Fixture>> = OnceLock::new();
    F.get_or_init(|| {
        let corpus_file = shared_file(CORPUS)?;
        let truth_file = shared_file(TRUTH)?;
        let truth: Value = serde_json::from_slice(&std::fs::read(truth_file).unwrap()).unwrap();
        let raw = zstd::decode_all(std::fs::File::open(&corpus_file).unwrap()).unwrap();
        let mut records = HashMap::new();
        let mut order = Vec::new();
        for line in raw.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let v: Value = serde_json::from_slice(line).unwrap();
            let id = v["id"].as_str().unwrap().to_string();
            order.push(id.clone());
            assert!(
                records.insert(id, v).is_none(),
                "ids are unique in the input"
            );
        }
        drop(raw);
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("corpus");
        let opts = IngestOptions {
            segment_bytes: SEGMENT_BYTES,
            ..IngestOptions::default()
        };
        let report = ingest(&dir, vec![Input::Path(corpus_file.clone())], &opts).unwrap();
        Some(Fixture {
            _tmp: tmp,
            dir,
            corpus_file,
            truth,
            records,
            order,
            report,
        })
    })
    .as_ref()
}

macro_rules! fixture_or_skip {
    () => {
        match fixture() {
            Some(f) => f,
            None => return,
        }
    };
}

fn open(f: &Fixture) -> Corpus {
    Corpus::open(&f.dir).unwrap()
}

fn text_len(v: &Value) -> u64 {
    v["text"].as_str().unwrap().len() as u64
}

/// `(docs, bytes)` per value of `field` computed from the input records;
/// records without the field are left out.
fn input_table<'a>(
    records: impl Iterator<Item = &'a Value>,
    field: &str,
) -> BTreeMap<String, (u64, u64)> {
    let mut t: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for r in records {
        if let Some(v) = r[field].as_str() {
            let e = t.entry(v.to_string()).or_default();
            e.0 += 1;
            e.1 += text_len(r);
        }
    }
    t
}

fn truth_table(truth: &Value, key: &str) -> BTreeMap<String, (u64, u64)> {
    truth[key]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                (v["docs"].as_u64().unwrap(), v["bytes"].as_u64().unwrap()),
            )
        })
        .collect()
}

/// The stats table of the whole corpus by `field`: value -> (docs, bytes),
/// with `None` for documents lacking the field.
fn stats_table(corpus: &Corpus, field: &str) -> BTreeMap<Option<String>, (u64, u64)> {
    let st = corpusql::raw::stats::stats(corpus, &corpus.all(), &[field.to_string()]).unwrap();
    assert_eq!(st.by, vec![field.to_string()]);
    let mut t = BTreeMap::new();
    for g in &st.groups {
        assert_eq!(g.values.len(), 1);
        assert!(
            t.insert(g.values[0].clone(), (g.docs, g.bytes)).is_none(),
            "group {:?} of {field} appears twice",
            g.values
        );
    }
    // Groups come largest first.
    assert!(st.groups.windows(2).all(|w| w[0].docs >= w[1].docs));
    t
}

#[test]
fn ingest_report_and_totals_match_the_truth() {
    let f = fixture_or_skip!();
    let total = &f.truth["total"];
    assert_eq!(total["docs"].as_u64(), Some(TOTAL_DOCS));
    assert_eq!(f.order.len() as u64, TOTAL_DOCS);
    let r = &f.report;
    assert_eq!(r.ingested, TOTAL_DOCS);
    assert_eq!((r.skipped, r.replaced, r.rejected, r.blank), (0, 0, 0, 0));
    assert!(r.rejects.is_empty(), "{:?}", r.rejects);
    assert_eq!(Some(r.text_bytes), total["bytes"].as_u64());
    assert_eq!(
        r.input_bytes,
        std::fs::metadata(&f.corpus_file).unwrap().len(),
        "input_bytes counts the raw (compressed) file"
    );
    assert!(
        r.segments > 1,
        "{SEGMENT_BYTES} B segments: expected several"
    );
    assert_eq!(r.generation, 1);

    let c = open(f);
    assert_eq!(c.generation(), 1);
    assert_eq!(c.segments().len(), r.segments);
    assert_eq!(c.len(), TOTAL_DOCS);
    let all = c.query("*").unwrap();
    assert_eq!(all.count(), TOTAL_DOCS);
    assert_eq!(Some(all.text_bytes().unwrap()), total["bytes"].as_u64());
    let st = corpusql::raw::stats::stats(&c, &all, &[]).unwrap();
    assert_eq!((st.docs, st.corpus_docs), (TOTAL_DOCS, TOTAL_DOCS));
    assert_eq!(Some(st.bytes), total["bytes"].as_u64());

    // The id hash convention, pinned on the total: sorted ids joined by "\n".
    let ids = keys(&all);
    assert_eq!(ids.len() as u64, TOTAL_DOCS);
    assert_eq!(
        Some(ids_sha256(&ids).as_str()),
        f.truth["ids_sha256"].as_str()
    );
    assert_eq!(ids_sha256(&f.order), ids_sha256(&ids));
}

#[test]
fn the_catalog_and_schema_describe_the_ingest() {
    let f = fixture_or_skip!();
    let c = open(f);
    let schema = &c.state().schema;
    assert_eq!(
        (schema.key_field.as_str(), schema.text_field.as_str()),
        ("id", "text")
    );
    let fields: Vec<(&str, corpusql::raw::schema::FieldKind)> = schema
        .fields
        .iter()
        .map(|(k, v)| (k.as_str(), *v))
        .collect();
    use corpusql::raw::schema::FieldKind::Facet;
    assert_eq!(
        fields,
        vec![
            ("lang", Facet),
            ("license", Facet),
            ("license_raw", Facet),
            ("license_via", Facet),
            ("origin", Facet),
            ("prog_lang", Facet),
            ("source", Facet),
            ("title", Facet),
        ]
    );
    let seg_docs: u64 = c.segments().iter().map(|s| s.entry.docs as u64).sum();
    assert_eq!(seg_docs, TOTAL_DOCS);
    let seg_bytes: u64 = c.segments().iter().map(|s| s.entry.text_bytes).sum();
    assert_eq!(Some(seg_bytes), f.truth["total"]["bytes"].as_u64());
    let log = c.catalog().ingest_log().unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].ingested, TOTAL_DOCS);
    assert_eq!(log[0].generation, 1);
    assert!(
        log[0].content_hash.starts_with("xxh3-128:"),
        "{}",
        log[0].content_hash
    );
    let v = corpusql::raw::maintain::verify(&f.dir).unwrap();
    assert!(v.ok(), "{v:?}");
    assert_eq!(v.segments.len(), f.report.segments);
}

fn check_facet_table(f: &Fixture, field: &str, truth_key: &str) {
    let c = open(f);
    let want = truth_table(&f.truth, truth_key);
    // The truth file agrees with the input (guards the test itself).
    assert_eq!(
        want,
        input_table(f.records.values(), field),
        "truth vs input"
    );
    let got = stats_table(&c, field);
    let mut expect: BTreeMap<Option<String>, (u64, u64)> =
        want.iter().map(|(k, v)| (Some(k.clone()), *v)).collect();
    let (with_docs, with_bytes) = want.values().fold((0, 0), |(d, b), (x, y)| (d + x, b + y));
    if with_docs < TOTAL_DOCS {
        let total_bytes = f.truth["total"]["bytes"].as_u64().unwrap();
        expect.insert(None, (TOTAL_DOCS - with_docs, total_bytes - with_bytes));
    }
    assert_eq!(got, expect, "stats by {field}");
    // Each value through the query path too.
    for (v, (docs, bytes)) in &want {
        let sel = c.query(&format!("{field} = \"{v}\"")).unwrap();
        assert_eq!(sel.count(), *docs, "{field}={v}");
        assert_eq!(sel.text_bytes().unwrap(), *bytes, "{field}={v} bytes");
    }
    let present = c.query(&format!("{field} exists")).unwrap();
    assert_eq!(present.count(), with_docs, "{field} exists");
}

#[test]
fn by_lang_matches_the_truth() {
    let f = fixture_or_skip!();
    check_facet_table(f, "lang", "by_lang");
}

#[test]
fn by_license_matches_the_truth() {
    let f = fixture_or_skip!();
    check_facet_table(f, "license", "by_license");
}

#[test]
fn by_source_matches_the_truth() {
    let f = fixture_or_skip!();
    check_facet_table(f, "source", "by_source");
}

#[test]
fn by_prog_lang_matches_the_truth() {
    let f = fixture_or_skip!();
    check_facet_table(f, "prog_lang", "by_prog_lang");
}

#[test]
fn two_field_stats_are_the_cross_product() {
    let f = fixture_or_skip!();
    let c = open(f);
    let st =
        corpusql::raw::stats::stats(&c, &c.all(), &["source".into(), "license".into()]).unwrap();
    let mut want: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
    for r in f.records.values() {
        let k = (
            r["source"].as_str().unwrap().to_string(),
            r["license"].as_str().unwrap().to_string(),
        );
        let e = want.entry(k).or_default();
        e.0 += 1;
        e.1 += text_len(r);
    }
    let got: BTreeMap<(String, String), (u64, u64)> = st
        .groups
        .iter()
        .map(|g| {
            (
                (
                    g.values[0].clone().expect("every doc has a source"),
                    g.values[1].clone().expect("every doc has a license"),
                ),
                (g.docs, g.bytes),
            )
        })
        .collect();
    assert_eq!(got, want);
    let share: f64 = st.groups.iter().map(|g| g.doc_share).sum();
    assert!((share - 1.0).abs() < 1e-9, "{share}");
}

#[test]
fn every_truth_query_matches_docs_bytes_and_ids() {
    let f = fixture_or_skip!();
    let c = open(f);
    let queries = f.truth["queries"].as_array().unwrap();
    assert_eq!(queries.len(), 16);
    for q in queries {
        let text = q["query"].as_str().unwrap();
        let sel = c
            .query(text)
            .unwrap_or_else(|e| panic!("query `{text}`: {e}"));
        assert!(sel.notes.is_empty(), "`{text}`: {:?}", sel.notes);
        assert_eq!(Some(sel.count()), q["docs"].as_u64(), "docs of `{text}`");
        assert_eq!(
            Some(sel.text_bytes().unwrap()),
            q["bytes"].as_u64(),
            "bytes of `{text}`"
        );
        let ids = keys(&sel);
        assert_eq!(ids.len() as u64, sel.count(), "documents() of `{text}`");
        assert_eq!(
            Some(ids_sha256(&ids).as_str()),
            q["ids_sha256"].as_str(),
            "ids of `{text}`"
        );
        let set: std::collections::HashSet<&str> = ids.iter().map(|s| s.as_str()).collect();
        for ex in q["example_ids"].as_array().unwrap() {
            let ex = ex.as_str().unwrap();
            assert!(set.contains(ex), "`{text}` lacks example {ex}");
            let key_q = format!("({text}) and id = \"{ex}\"");
            assert_eq!(count(&c, &key_q), 1, "{key_q}");
        }
    }
}

#[test]
fn export_round_trips_every_record() {
    let f = fixture_or_skip!();
    let c = open(f);
    let sel = c.all();
    let out = common::export_bytes(&sel);
    let mut seen = 0u64;
    for line in out.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let v: Value = serde_json::from_slice(line).unwrap();
        let id = v["id"].as_str().expect("exported record has its id");
        let want = f
            .records
            .get(id)
            .unwrap_or_else(|| panic!("exported unknown id {id}"));
        if &v != want {
            panic!(
                "record {id} differs:\n exported {}\n input    {}",
                truncate(&v.to_string()),
                truncate(&want.to_string())
            );
        }
        seen += 1;
    }
    assert_eq!(seen, TOTAL_DOCS);
    assert_eq!(
        out.iter().filter(|&&b| b == b'\n').count() as u64,
        TOTAL_DOCS
    );
}

/// `serde_json::Value` sorts object keys, so the round-trip above cannot see
/// field order; this checks the raw exported text keeps the input's order.
#[test]
fn export_keeps_field_order_as_ingested() {
    let f = fixture_or_skip!();
    let c = open(f);
    let mut sel = c.query("prog_lang = rust").unwrap();
    sel.truncate(50);
    let out = common::export_bytes(&sel);
    for line in out.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let s = std::str::from_utf8(line).unwrap();
        let pos = |k: &str| {
            s.find(&format!("\"{k}\":"))
                .unwrap_or_else(|| panic!("{k} missing"))
        };
        let order = [
            "id",
            "source",
            "lang",
            "license",
            "prog_lang",
            "origin",
            "license_raw",
            "license_via",
        ];
        for w in order.windows(2) {
            assert!(
                pos(w[0]) < pos(w[1]),
                "{} before {} in {s:.300}",
                w[0],
                w[1]
            );
        }
        assert!(s.ends_with('}'));
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(400).collect()
}

#[test]
fn get_returns_the_input_records() {
    let f = fixture_or_skip!();
    let c = open(f);
    let mut ids: Vec<&str> = vec![
        f.order[0].as_str(),
        f.order[f.order.len() / 2].as_str(),
        f.order[f.order.len() - 1].as_str(),
    ];
    for q in f.truth["queries"].as_array().unwrap().iter().take(6) {
        ids.extend(
            q["example_ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_str().unwrap()),
        );
    }
    // The largest document.
    let largest = f.records.values().max_by_key(|v| text_len(v)).unwrap();
    ids.push(largest["id"].as_str().unwrap());
    for id in ids {
        let want = &f.records[id];
        let d = c.get(id).unwrap().unwrap_or_else(|| panic!("get {id}"));
        assert_eq!(d.key, id);
        assert_eq!(d.text, want["text"].as_str().unwrap(), "text of {id}");
        let v: Value = serde_json::from_slice(&d.json).unwrap();
        assert_eq!(&v, want, "record of {id}");
    }
    assert!(c.get("no/such/id").unwrap().is_none());
    assert!(c.get("").unwrap().is_none());
    // A prefix of an existing key is not a key.
    let first = &f.order[0];
    assert!(c.get(&first[..first.len() - 1]).unwrap().is_none());
}

#[test]
fn reingesting_the_same_file_skips_everything() {
    let f = fixture_or_skip!();
    let tmp = tempfile::tempdir().unwrap();
    copy_corpus(&f.dir, tmp.path());
    let before = Corpus::open(tmp.path()).unwrap();
    let files_before = common::segment_files(tmp.path());
    let r = ingest(
        tmp.path(),
        vec![Input::Path(f.corpus_file.clone())],
        &IngestOptions::default(),
    )
    .unwrap();
    assert_eq!(r.skipped, TOTAL_DOCS);
    assert_eq!((r.ingested, r.replaced, r.rejected), (0, 0, 0));
    assert_eq!(r.text_bytes, 0);
    assert_eq!(r.segments, 0);
    // An ingest that adds nothing makes no generation (issue 13): the
    // corpus, its segments and its ingest log are as they were.
    assert!(!r.committed);
    assert_eq!(r.generation, before.generation());
    let after = Corpus::open(tmp.path()).unwrap();
    assert_eq!(after.generation(), before.generation());
    assert_eq!(after.len(), TOTAL_DOCS);
    assert_eq!(common::segment_files(tmp.path()), files_before);
    let log = after.catalog().ingest_log().unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(
        log[0].content_hash, r.files[0].content_hash,
        "same bytes, same content hash"
    );
}

#[test]
fn bad_lines_ingested_into_the_real_corpus() {
    let f = fixture_or_skip!();
    let Some(bad) = shared_file("bad.jsonl") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    copy_corpus(&f.dir, tmp.path());
    let r = ingest(
        tmp.path(),
        vec![Input::Path(bad)],
        &IngestOptions::default(),
    )
    .unwrap();
    // Line 11 repeats line 10's id; line 12 repeats an id of the corpus.
    assert_eq!(r.skipped, 2);
    let c = Corpus::open(tmp.path()).unwrap();
    let id = "debian-manpages/manpages-fr/fr/man8/agetty.8";
    let d = c.get(id).unwrap().unwrap();
    assert_eq!(
        d.text,
        f.records[id]["text"].as_str().unwrap(),
        "corpus wins"
    );
    assert_eq!(c.len(), TOTAL_DOCS + r.ingested);
    assert_eq!(count(&c, "source = bad"), r.ingested);
    // The rest of the corpus is untouched.
    assert_eq!(count(&c, "lang = fr and not source = bad"), 2937);
}

#[test]
fn delete_then_compact_keeps_every_count() {
    let f = fixture_or_skip!();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    copy_corpus(&f.dir, dir);
    let c0 = Corpus::open(dir).unwrap();
    let total_bytes = f.truth["total"]["bytes"].as_u64().unwrap();
    let fortunes: Vec<&Value> = f
        .records
        .values()
        .filter(|r| r["source"] == "fortunes")
        .collect();
    assert_eq!(fortunes.len(), 55);
    let fortune_bytes: u64 = fortunes.iter().map(|r| text_len(r)).sum();
    assert_eq!(fortune_bytes, 3_506_290);

    let (n, g) = corpusql::raw::maintain::delete(dir, "source=fortunes").unwrap();
    assert_eq!(n, 55);
    assert_eq!(g, c0.generation() + 1);
    // Deleting again deletes nothing and commits nothing.
    let (n2, g2) = corpusql::raw::maintain::delete(dir, "source=fortunes").unwrap();
    assert_eq!((n2, g2), (0, g));

    let kept = || f.records.values().filter(|r| r["source"] != "fortunes");
    let check = |c: &Corpus, when: &str| {
        assert_eq!(c.len(), TOTAL_DOCS - 55, "{when}");
        let all = c.all();
        assert_eq!(all.count(), TOTAL_DOCS - 55, "{when}");
        assert_eq!(
            all.text_bytes().unwrap(),
            total_bytes - fortune_bytes,
            "{when}"
        );
        assert_eq!(count(c, "source = fortunes"), 0, "{when}");
        for field in ["lang", "license", "source", "prog_lang"] {
            let mut want: BTreeMap<Option<String>, (u64, u64)> = input_table(kept(), field)
                .into_iter()
                .map(|(k, v)| (Some(k), v))
                .collect();
            let (d, b) = want.values().fold((0, 0), |(d, b), (x, y)| (d + x, b + y));
            if d < TOTAL_DOCS - 55 {
                want.insert(None, (TOTAL_DOCS - 55 - d, total_bytes - fortune_bytes - b));
            }
            assert_eq!(stats_table(c, field), want, "{when}: stats by {field}");
        }
        for q in f.truth["queries"].as_array().unwrap() {
            let text = q["query"].as_str().unwrap();
            let want = f.truth["queries"]
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["query"] == text)
                .unwrap()["docs"]
                .as_u64()
                .unwrap();
            let in_fortunes = c0
                .query(&format!("({text}) and source = fortunes"))
                .unwrap()
                .count();
            assert_eq!(count(c, text), want - in_fortunes, "{when}: `{text}`");
        }
        for r in fortunes.iter().take(5) {
            assert!(
                c.get(r["id"].as_str().unwrap()).unwrap().is_none(),
                "{when}"
            );
        }
        let v = corpusql::raw::maintain::verify(dir).unwrap();
        assert!(v.ok(), "{when}: {v:?}");
    };
    let c1 = Corpus::open(dir).unwrap();
    assert_eq!(c1.generation(), g);
    check(&c1, "after delete");
    let ids_before = ids_sha256(&keys(&c1.all()));
    drop(c1);

    let segs_before = common::segment_files(dir);
    let rep = corpusql::raw::maintain::compact(dir, 64 << 20).unwrap();
    assert_eq!(rep.docs, TOTAL_DOCS - 55);
    assert_eq!(rep.dropped, 55);
    assert_eq!(rep.segments_before, segs_before.len());
    assert_eq!(rep.generation, g + 1);
    assert!(rep.bytes_after < rep.bytes_before);
    let segs_after = common::segment_files(dir);
    assert_eq!(segs_after.len(), rep.segments_after);
    assert!(
        segs_after.iter().all(|s| !segs_before.contains(s)),
        "old segment files are removed: {segs_before:?} -> {segs_after:?}"
    );
    let c2 = Corpus::open(dir).unwrap();
    assert_eq!(c2.generation(), g + 1);
    assert!(c2.state().tombstones.values().all(|t| t.is_empty()));
    check(&c2, "after compact");
    assert_eq!(ids_sha256(&keys(&c2.all())), ids_before);
    // Compacted records still export exactly as ingested.
    let mut sel = c2.query("lang = ja").unwrap();
    sel.truncate(200);
    for (id, v) in common::export_by_id(&sel) {
        assert_eq!(&v, &f.records[&id], "{id} after compact");
    }
}
