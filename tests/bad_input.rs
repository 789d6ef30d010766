//! Broken and unusual input: `../shared/data/bad.jsonl` against its manifest
//! (each line's outcome must be one the manifest accepts, rejects carry line
//! numbers and reasons, good lines are never lost), and our own cases:
//! compressed inputs, trickling readers, schema conflicts, `set`, field
//! mapping, keys, duplicate policies, empty inputs and very long lines.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;

use common::{count, ingest_bytes, shared_file};
use corpusql::raw::ingest::RecordOptions;
use corpusql::{ingest, Corpus, Error, IngestOptions, IngestReport, Input, OnDuplicate};
use serde_json::Value;

fn opts() -> IngestOptions {
    IngestOptions::default()
}

fn ingest_str(dir: &Path, data: &str) -> IngestReport {
    ingest_bytes(dir, "test.jsonl", data.as_bytes(), &opts()).unwrap()
}

// ---------------------------------------------------------------- bad.jsonl

/// What happened to one line of bad.jsonl.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Accepted,
    Rejected(String),
    Skipped,
    Blank,
}

struct BadRun {
    _tmp: tempfile::TempDir,
    dir: std::path::PathBuf,
    lines: Vec<Vec<u8>>,
    manifest: Vec<Value>,
    report: IngestReport,
    rejects_file: Vec<Value>,
}

fn bad_run() -> Option<BadRun> {
    let bad = shared_file("bad.jsonl")?;
    let manifest = shared_file("bad_manifest.json")?;
    let manifest: Vec<Value> = serde_json::from_slice(&std::fs::read(manifest).unwrap()).unwrap();
    let raw = std::fs::read(&bad).unwrap();
    let lines: Vec<Vec<u8>> = raw.split(|&b| b == b'\n').map(|l| l.to_vec()).collect();
    assert_eq!(lines.len(), 22, "22 lines, the last without a newline");
    assert!(!raw.ends_with(b"\n"));
    for (m, l) in manifest.iter().zip(&lines) {
        let with_nl = l.len() as u64 + u64::from(m["line"] != 22);
        assert_eq!(
            m["bytes"].as_u64(),
            Some(with_nl),
            "manifest line {}",
            m["line"]
        );
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    let rejects = tmp.path().join("rejects.jsonl");
    let o = IngestOptions {
        rejects: Some(rejects.clone()),
        ..opts()
    };
    let report = ingest(&dir, vec![Input::Path(bad)], &o).unwrap();
    let rejects_file = common::parse_jsonl(&std::fs::read(&rejects).unwrap());
    Some(BadRun {
        _tmp: tmp,
        dir,
        lines,
        manifest,
        report,
        rejects_file,
    })
}

/// The id a line of bad.jsonl carries (parsed leniently, by hand).
fn line_id(line: &[u8]) -> Option<String> {
    let s = String::from_utf8_lossy(line);
    let start = s.find("\"id\": \"")? + 7;
    let end = s[start..].find('"')? + start;
    Some(s[start..end].to_string())
}

fn outcomes(run: &BadRun) -> BTreeMap<u64, Outcome> {
    let mut out = BTreeMap::new();
    for r in &run.report.rejects {
        assert!(
            out.insert(r.line, Outcome::Rejected(r.reason.clone()))
                .is_none(),
            "line {} rejected twice",
            r.line
        );
    }
    let c = Corpus::open(&run.dir).unwrap();
    for (i, l) in run.lines.iter().enumerate() {
        let n = i as u64 + 1;
        if out.contains_key(&n) {
            continue;
        }
        if l.iter().all(|b| b.is_ascii_whitespace()) {
            out.insert(n, Outcome::Blank);
            continue;
        }
        let id = line_id(l).unwrap_or_else(|| panic!("line {n} neither rejected nor keyed"));
        assert!(
            c.get(&id).unwrap().is_some(),
            "line {n} ({id}) was neither rejected nor stored"
        );
        // A later line with the same key is the one skipped.
        let first_with_id = run
            .lines
            .iter()
            .position(|x| line_id(x).as_deref() == Some(id.as_str()))
            .unwrap() as u64
            + 1;
        if first_with_id != n {
            out.insert(n, Outcome::Skipped);
        } else {
            out.insert(n, Outcome::Accepted);
        }
    }
    out
}

#[test]
fn bad_jsonl_each_line_is_handled_as_the_manifest_allows() {
    let Some(run) = bad_run() else { return };
    let out = outcomes(&run);
    let c = Corpus::open(&run.dir).unwrap();
    for m in &run.manifest {
        let n = m["line"].as_u64().unwrap();
        let defect = m["defect"].as_str().unwrap();
        let got = &out[&n];
        let reason = match got {
            Outcome::Rejected(r) => r.to_lowercase(),
            _ => String::new(),
        };
        let rejected = matches!(got, Outcome::Rejected(_));
        let accepted = *got == Outcome::Accepted;
        let ok = match defect {
            "utf8-bom" => accepted || rejected,
            "crlf" | "crlf-trailing-ws" | "bare-cr-inside" | "no-final-newline" | "huge-5mb"
            | "dup-id-a" => accepted,
            "invalid-utf8" => rejected && reason.contains("utf-8"),
            "truncated-json" => rejected && reason.contains("json"),
            "missing-text" => rejected && reason.contains("text") && reason.contains("missing"),
            "empty-text" => accepted || rejected,
            "license-int" => rejected && reason.contains("license"),
            // Checked on its own below (see license_list_is_rejected).
            "license-list" => true,
            // Accepting is "treat as unknown" only if no license value matches.
            "license-null" => {
                rejected
                    || (accepted
                        && count(
                            &c,
                            "id = bad/license-null and license exists and not license = unknown",
                        ) == 0)
            }
            // Keep-first (skipped, counted) or last-wins; never both stored.
            "dup-id-b" => *got == Outcome::Skipped || rejected,
            // Loaded alone, this id is new.
            "dup-id-corpus" => accepted,
            // The wording is serde_json's; see lone_surrogate_reason_names_it.
            "lone-surrogate" => {
                rejected && (reason.contains("surrogate") || reason.contains("escape"))
            }
            "nul-char" => accepted || rejected,
            "text-not-string" => rejected && reason.contains("text") && reason.contains("string"),
            "lang-unnormalized" => {
                rejected || (accepted && count(&c, "id = bad/lang-unnormalized and lang = fr") == 1)
            }
            "blank-line" => *got == Outcome::Blank,
            "json-array" => rejected && reason.contains("object"),
            other => panic!("unknown defect {other} in the manifest"),
        };
        assert!(
            ok,
            "line {n} ({defect}): got {got:?}; acceptable: {}",
            m["expected_handling"]
        );
    }
    // The report adds up.
    let r = &run.report;
    let n = |o: &dyn Fn(&Outcome) -> bool| out.values().filter(|x| o(x)).count() as u64;
    assert_eq!(r.rejected, n(&|o| matches!(o, Outcome::Rejected(_))));
    assert_eq!(r.blank, n(&|o| *o == Outcome::Blank));
    assert_eq!(r.blank, 1);
    assert_eq!(r.skipped, n(&|o| *o == Outcome::Skipped));
    assert_eq!(r.ingested, n(&|o| *o == Outcome::Accepted));
    assert_eq!(c.len(), r.ingested);
    assert_eq!(r.rejects.len() as u64, r.rejected);
    assert!(r.rejects.iter().all(|x| x.file.ends_with("bad.jsonl")));
    // The current policy, pinned: these lines are rejected, these accepted.
    let rejected: Vec<u64> = r.rejects.iter().map(|x| x.line).collect();
    for must in [3, 4, 5, 7, 14, 16, 19] {
        assert!(
            rejected.contains(&must),
            "line {must} rejected: {rejected:?}"
        );
    }
    let v = corpusql::raw::maintain::verify(&run.dir).unwrap();
    assert!(v.ok(), "{v:?}");
}

#[test]
fn license_list_is_rejected() {
    let Some(run) = bad_run() else { return };
    let out = outcomes(&run);
    match &out[&8] {
        Outcome::Rejected(r) => assert!(r.contains("license"), "{r}"),
        other => panic!("line 8 (license-list): {other:?}, the manifest wants a reject"),
    }
}

#[test]
fn bad_jsonl_good_lines_round_trip() {
    let Some(run) = bad_run() else { return };
    let c = Corpus::open(&run.dir).unwrap();
    let rejected: Vec<u64> = run.report.rejects.iter().map(|x| x.line).collect();
    for (i, l) in run.lines.iter().enumerate() {
        let n = i as u64 + 1;
        if rejected.contains(&n) || l.is_empty() || n == 11 {
            continue;
        }
        let mut l = l.as_slice();
        if n == 1 {
            l = l.strip_prefix(b"\xEF\xBB\xBF").unwrap();
        }
        let want: Value = serde_json::from_slice(l).unwrap();
        let id = want["id"].as_str().unwrap();
        let d = c.get(id).unwrap().unwrap();
        assert_eq!(d.text, want["text"].as_str().unwrap(), "line {n}: text");
        let got: Value = serde_json::from_slice(&d.json).unwrap();
        assert_eq!(got, want, "line {n}: record");
    }
    // The 5 MiB document, byte for byte.
    let huge: Value = serde_json::from_slice(&run.lines[12]).unwrap();
    let want = huge["text"].as_str().unwrap();
    assert!(want.len() > 5_000_000);
    let d = c.get("bad/huge-5mb").unwrap().unwrap();
    assert_eq!(d.text.len(), want.len());
    assert!(d.text.as_bytes() == want.as_bytes(), "5 MiB text differs");
    let sel = c.query("id = bad/huge-5mb").unwrap();
    assert_eq!(sel.text_bytes().unwrap(), want.len() as u64);
    // NUL survives storage and export.
    let nul = c.get("bad/nul-char").unwrap().unwrap();
    assert_eq!(nul.text, "avant \u{0} après");
    let exported = common::export_by_id(&c.query("id = bad/nul-char").unwrap());
    assert_eq!(exported["bad/nul-char"]["text"], "avant \u{0} après");
    // Duplicate in the file: the first wins under the default policy.
    assert_eq!(
        c.get("bad/dup-1").unwrap().unwrap().text,
        "Première version."
    );
    assert_eq!(run.report.skipped, 1);
    // CRLF lines are accepted and the CR is not part of the record.
    for id in ["bad/crlf", "bad/crlf-trailing-ws", "bad/bare-cr"] {
        let d = c.get(id).unwrap().unwrap();
        assert!(!d.text.contains('\r'), "{id}");
        assert_eq!(d.json.last(), Some(&b'}'), "{id}");
    }
    // The unnormalized tag is indexed as `fr` and stored as written.
    let d = c.get("bad/lang-unnormalized").unwrap().unwrap();
    let v: Value = serde_json::from_slice(&d.json).unwrap();
    assert_eq!(v["lang"], "FR-fr");
    assert_eq!(count(&c, "lang = fr"), run.report.ingested);
    assert_eq!(count(&c, "lang = FR-fr"), run.report.ingested);
}

#[test]
fn bad_jsonl_rejects_carry_line_numbers_and_reasons() {
    let Some(run) = bad_run() else { return };
    let r = &run.report;
    assert_eq!(run.rejects_file.len() as u64, r.rejected);
    for (x, rec) in r.rejects.iter().zip(&run.rejects_file) {
        assert_eq!(rec["line"].as_u64(), Some(x.line));
        assert_eq!(rec["reason"].as_str(), Some(x.reason.as_str()));
        assert!(rec["file"].as_str().unwrap().ends_with("bad.jsonl"));
        let raw = String::from_utf8_lossy(&run.lines[x.line as usize - 1]).into_owned();
        assert_eq!(
            rec["raw"].as_str(),
            Some(raw.as_str()),
            "raw of line {}",
            x.line
        );
        assert!(!x.reason.is_empty());
        // Display: file:line: reason.
        assert!(x.to_string().contains(&format!("bad.jsonl:{}: ", x.line)));
    }
    let lines: Vec<u64> = r.rejects.iter().map(|x| x.line).collect();
    let mut sorted = lines.clone();
    sorted.sort();
    assert_eq!(lines, sorted, "rejects in line order");
    let reason = |n: u64| {
        r.rejects
            .iter()
            .find(|x| x.line == n)
            .map(|x| x.reason.clone())
            .unwrap_or_else(|| panic!("line {n} not rejected"))
    };
    assert!(reason(3).contains("invalid UTF-8"), "{}", reason(3));
    assert!(reason(4).contains("invalid JSON"), "{}", reason(4));
    assert!(reason(5).contains("missing field `text`"), "{}", reason(5));
    assert!(reason(7).contains("`license`"), "{}", reason(7));
    assert!(reason(14).contains("`text`"), "{}", reason(14));
    assert!(
        reason(16).contains("`text` must be a string"),
        "{}",
        reason(16)
    );
    assert!(reason(19).contains("array"), "{}", reason(19));
}

#[test]
fn lone_surrogate_reason_names_it() {
    let tmp = tempfile::tempdir().unwrap();
    let data = "{\"id\": \"s\", \"text\": \"avant \\ud800 apr\\u00e8s\"}\n";
    let r = ingest_str(tmp.path(), data);
    assert_eq!(r.rejected, 1);
    assert!(
        r.rejects[0].reason.contains("surrogate"),
        "{}",
        r.rejects[0]
    );
}

#[test]
fn nul_in_a_field_name_rejects_that_record_only() {
    // `"a": "\u0000b"` and `"a\u0000": "b"` would make the same term key
    // (field, NUL, value): this used to fail the whole ingest with a bare
    // "FST error". The record with the NUL in its field name is rejected,
    // the others are ingested, a nested such name is stored, not indexed.
    let tmp = tempfile::tempdir().unwrap();
    let data = concat!(
        r#"{"id": "1", "text": "one", "a": "\u0000b"}"#,
        "\n",
        r#"{"id": "2", "text": "two", "a\u0000": "b"}"#,
        "\n",
        r#"{"id": "3", "text": "three", "m": {"a\u0000": "b", "c": "d"}}"#,
        "\n",
    );
    let r = ingest_str(tmp.path(), data);
    assert_eq!((r.ingested, r.rejected), (2, 1), "{:?}", r.rejects);
    assert_eq!(r.rejects[0].line, 2);
    let why = r.rejects[0].to_string();
    assert!(why.contains("test.jsonl:2: "), "{why}");
    assert!(why.contains(r"field name `a\0` contains a NUL"), "{why}");
    let c = Corpus::open(tmp.path()).unwrap();
    assert_eq!(count(&c, "m.c = d"), 1);
    assert_eq!(count(&c, "exists a"), 1);
    let schema = c.schema();
    assert!(
        schema.fields.keys().all(|f| !f.contains('\0')),
        "{schema:?}"
    );
    drop(c);

    // `--set` (library and Python; an argv cannot hold NUL) refuses such a
    // name before anything is read.
    let mut o = opts();
    o.record = RecordOptions {
        set: vec![("a\0".into(), "b".into())],
        ..RecordOptions::default()
    };
    let e = ingest_bytes(
        tmp.path(),
        "more.jsonl",
        b"{\"id\": \"4\", \"text\": \"x\"}\n",
        &o,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains(r"--set: field name `a\0` contains a NUL"), "{e}");
    assert_eq!(Corpus::open(tmp.path()).unwrap().len(), 2);
}

// ------------------------------------------------------------- our own cases

const SMALL: &str = r#"{"id": "a", "text": "alpha", "lang": "en", "license": "mit"}
{"id": "b", "text": "beta", "lang": "fr", "license": "pd", "year": 1998}
{"id": "c", "text": "gamma\nwith \"quotes\"", "lang": "de", "meta": {"k": [1, 2.50, null]}}
"#;

fn check_small(dir: &Path) {
    let c = Corpus::open(dir).unwrap();
    assert_eq!(c.len(), 3);
    assert_eq!(count(&c, "lang = fr"), 1);
    assert_eq!(count(&c, "year = 1998"), 1);
    assert_eq!(count(&c, "meta exists"), 1);
    assert_eq!(c.get("c").unwrap().unwrap().text, "gamma\nwith \"quotes\"");
    let want = common::parse_jsonl(SMALL.as_bytes());
    let got = common::export_by_id(&c.all());
    for w in want {
        assert_eq!(got[w["id"].as_str().unwrap()], w);
    }
}

fn gz(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn gzip_input_file() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("in.jsonl.gz");
    std::fs::write(&f, gz(SMALL.as_bytes())).unwrap();
    let r = ingest(&tmp.path().join("c"), vec![Input::Path(f.clone())], &opts()).unwrap();
    assert_eq!(r.ingested, 3);
    assert_eq!(r.input_bytes, std::fs::metadata(&f).unwrap().len());
    check_small(&tmp.path().join("c"));
}

#[test]
fn multi_member_gzip_and_zstd_frames() {
    let (first, second) = SMALL.split_at(SMALL.find("{\"id\": \"b\"").unwrap());
    let tmp = tempfile::tempdir().unwrap();
    let mut g = gz(first.as_bytes());
    g.extend(gz(second.as_bytes()));
    let d1 = tmp.path().join("gz");
    let r = ingest_bytes(&d1, "two-members.gz", &g, &opts()).unwrap();
    assert_eq!(r.ingested, 3, "both gzip members are read");
    check_small(&d1);
    let mut z = zstd::encode_all(first.as_bytes(), 3).unwrap();
    z.extend(zstd::encode_all(second.as_bytes(), 19).unwrap());
    let d2 = tmp.path().join("zst");
    let r = ingest_bytes(&d2, "two-frames.zst", &z, &opts()).unwrap();
    assert_eq!(r.ingested, 3, "both zstd frames are read");
    check_small(&d2);
}

#[test]
fn zstd_input_file_by_content_not_name() {
    let tmp = tempfile::tempdir().unwrap();
    // Named .jsonl: compression is recognized from the magic bytes.
    let f = tmp.path().join("in.jsonl");
    std::fs::write(&f, zstd::encode_all(SMALL.as_bytes(), 3).unwrap()).unwrap();
    let r = ingest(&tmp.path().join("c"), vec![Input::Path(f)], &opts()).unwrap();
    assert_eq!(r.ingested, 3);
    check_small(&tmp.path().join("c"));
}

/// A reader that hands out at most `step` bytes per call, like a slow pipe.
struct Trickle {
    data: Vec<u8>,
    pos: usize,
    step: usize,
}

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.step.min(buf.len()).min(self.data.len() - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

fn trickle(data: Vec<u8>, step: usize) -> Input {
    Input::Reader("stdin".into(), Box::new(Trickle { data, pos: 0, step }))
}

#[test]
fn reader_input_that_trickles_plain_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let mut data = b"\xEF\xBB\xBF".to_vec();
    data.extend_from_slice(SMALL.as_bytes());
    let r = ingest(tmp.path(), vec![trickle(data, 3)], &opts()).unwrap();
    assert_eq!(r.ingested, 3);
    assert_eq!(r.rejected, 0, "{:?}", r.rejects);
    check_small(tmp.path());
    let log = Corpus::open(tmp.path())
        .unwrap()
        .catalog()
        .ingest_log()
        .unwrap();
    assert_eq!(log[0].source, "stdin");
}

#[test]
fn reader_input_that_trickles_compressed_bytes() {
    for (name, data) in [
        ("zstd", zstd::encode_all(SMALL.as_bytes(), 3).unwrap()),
        ("gzip", gz(SMALL.as_bytes())),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let r = ingest(tmp.path(), vec![trickle(data, 1)], &opts()).unwrap();
        assert_eq!(r.ingested, 3, "{name}: {:?}", r.rejects);
        check_small(tmp.path());
    }
}

#[test]
fn several_inputs_in_one_commit_number_lines_per_input() {
    let tmp = tempfile::tempdir().unwrap();
    let a = "{\"id\": \"x1\", \"text\": \"one\"}\nnot json\n";
    let b = "\n\n{\"id\": \"x2\", \"text\": \"two\"}\n[1]\n";
    let inputs = vec![
        Input::Reader("a.jsonl".into(), Box::new(std::io::Cursor::new(a))),
        Input::Reader("b.jsonl".into(), Box::new(std::io::Cursor::new(b))),
    ];
    let r = ingest(tmp.path(), inputs, &opts()).unwrap();
    assert_eq!((r.ingested, r.rejected, r.blank), (2, 2, 2));
    let where_: Vec<(String, u64)> = r.rejects.iter().map(|x| (x.file.clone(), x.line)).collect();
    assert_eq!(where_, vec![("a.jsonl".into(), 2), ("b.jsonl".into(), 4)]);
    assert_eq!(r.generation, 1, "one commit for all inputs");
    let log = Corpus::open(tmp.path())
        .unwrap()
        .catalog()
        .ingest_log()
        .unwrap();
    let per: Vec<(String, u64, u64)> = log
        .iter()
        .map(|e| (e.source.clone(), e.ingested, e.rejected))
        .collect();
    assert_eq!(
        per,
        vec![("a.jsonl".into(), 1, 1), ("b.jsonl".into(), 1, 1)]
    );
}

#[test]
fn schema_conflict_number_then_string_is_rejected_with_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    let data = r#"{"id": "a", "text": "x", "year": 1998}
{"id": "b", "text": "y", "year": "1999"}
{"id": "c", "text": "z", "year": 2001}
"#;
    let r = ingest_str(tmp.path(), data);
    assert_eq!(r.ingested, 2);
    assert_eq!(r.rejected, 1);
    assert_eq!(r.rejects[0].line, 2);
    assert!(r.rejects[0].reason.contains("`year`"), "{}", r.rejects[0]);
    assert!(r.rejects[0].reason.contains("number"), "{}", r.rejects[0]);
    let c = Corpus::open(tmp.path()).unwrap();
    assert!(c.get("b").unwrap().is_none());
    assert_eq!(count(&c, "year >= 1998"), 2);
    // The schema persists: a later ingest with a string year is rejected too.
    let r = ingest_str(tmp.path(), r#"{"id": "d", "text": "w", "year": "2002"}"#);
    assert_eq!((r.ingested, r.rejected), (0, 1));
    assert!(r.rejects[0].reason.contains("`year`"));
    // And a boolean where a facet was.
    let r = ingest_str(
        tmp.path(),
        "{\"id\": \"e\", \"text\": \"v\", \"lang\": \"en\"}\n{\"id\": \"f\", \"text\": \"u\", \"lang\": true}\n",
    );
    assert_eq!((r.ingested, r.rejected), (1, 1));
    assert!(r.rejects[0].reason.contains("`lang`"));
    assert_eq!(r.rejects[0].line, 2);
}

#[test]
fn set_adds_constant_facets_only_where_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = "{\"id\": \"a\", \"text\": \"x\"}\n{\"id\": \"b\", \"text\": \"y\", \"license\": \"mit\"}\n";
    let o = IngestOptions {
        record: RecordOptions {
            set: vec![
                ("license".into(), "pd".into()),
                ("source".into(), "batch-7".into()),
            ],
            ..RecordOptions::default()
        },
        ..opts()
    };
    let r = ingest_bytes(tmp.path(), "s.jsonl", data.as_bytes(), &o).unwrap();
    assert_eq!(r.ingested, 2);
    let c = Corpus::open(tmp.path()).unwrap();
    assert_eq!(count(&c, "license = pd"), 1);
    assert_eq!(count(&c, "license = mit"), 1);
    assert_eq!(count(&c, "source = batch-7"), 2);
    let e = common::export_by_id(&c.all());
    assert_eq!(e["a"]["license"], "pd");
    assert_eq!(e["a"]["source"], "batch-7");
    assert_eq!(e["b"]["license"], "mit");
    assert_eq!(e["b"]["text"], "y");
    let log = c.catalog().ingest_log().unwrap();
    assert_eq!(log[0].set, o.record.set);
}

#[test]
fn set_lang_is_normalized_like_record_lang() {
    let tmp = tempfile::tempdir().unwrap();
    let o = IngestOptions {
        record: RecordOptions {
            set: vec![("lang".into(), "FR".into())],
            ..RecordOptions::default()
        },
        ..opts()
    };
    let data =
        "{\"id\": \"a\", \"text\": \"x\"}\n{\"id\": \"b\", \"text\": \"y\", \"lang\": \"FR\"}\n";
    ingest_bytes(tmp.path(), "s.jsonl", data.as_bytes(), &o).unwrap();
    let c = Corpus::open(tmp.path()).unwrap();
    assert_eq!(count(&c, "lang = fr"), 2);
}

#[test]
fn text_and_id_fields_can_be_mapped() {
    let tmp = tempfile::tempdir().unwrap();
    let data = r#"{"doc_id": "k1", "content": "first", "id": "not-the-key", "lang": "en"}
{"doc_id": "k2", "content": "second", "text": "not the text"}
{"doc_id": "k3", "text": "no content field"}
"#;
    let o = IngestOptions {
        record: RecordOptions {
            text_field: Some("content".into()),
            id_field: Some("doc_id".into()),
            set: vec![],
        },
        ..opts()
    };
    let r = ingest_bytes(tmp.path(), "m.jsonl", data.as_bytes(), &o).unwrap();
    assert_eq!((r.ingested, r.rejected), (2, 1));
    assert_eq!(r.rejects[0].line, 3);
    assert!(
        r.rejects[0].reason.contains("`content`"),
        "{}",
        r.rejects[0]
    );
    let c = Corpus::open(tmp.path()).unwrap();
    assert_eq!(c.schema().key_field, "doc_id");
    assert_eq!(c.schema().text_field, "content");
    assert_eq!(c.get("k1").unwrap().unwrap().text, "first");
    assert_eq!(c.get("k2").unwrap().unwrap().text, "second");
    assert!(c.get("not-the-key").unwrap().is_none());
    assert_eq!(count(&c, "doc_id = k2"), 1);
    assert_eq!(c.query("*").unwrap().text_bytes().unwrap(), 11);
    let v: Value = serde_json::from_slice(&c.get("k2").unwrap().unwrap().json).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"doc_id": "k2", "content": "second", "text": "not the text"})
    );
}

#[test]
fn integer_ids_become_string_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let data = r#"{"id": 42, "text": "forty-two"}
{"id": -7, "text": "minus seven"}
{"id": 1.5, "text": "float id"}
{"id": 42, "text": "again"}
{"id": "", "text": "empty id"}
{"id": true, "text": "bool id"}
"#;
    let r = ingest_str(tmp.path(), data);
    assert_eq!(r.ingested, 2);
    assert_eq!(r.skipped, 1, "42 twice");
    let rej: Vec<u64> = r.rejects.iter().map(|x| x.line).collect();
    assert_eq!(rej, vec![3, 5, 6]);
    assert!(
        r.rejects.iter().all(|x| x.reason.contains("`id`")),
        "{:?}",
        r.rejects
    );
    let c = Corpus::open(tmp.path()).unwrap();
    assert_eq!(c.get("42").unwrap().unwrap().text, "forty-two");
    assert_eq!(c.get("-7").unwrap().unwrap().text, "minus seven");
    // The record keeps the number as written.
    let v: Value = serde_json::from_slice(&c.get("42").unwrap().unwrap().json).unwrap();
    assert_eq!(v["id"], 42);
}

#[test]
fn missing_id_uses_a_content_hash_key() {
    let tmp = tempfile::tempdir().unwrap();
    let data = r#"{"text": "same text", "lang": "en"}
{"text": "other text"}
{"text": "same text", "lang": "fr"}
"#;
    let r = ingest_str(tmp.path(), data);
    assert_eq!((r.ingested, r.skipped), (2, 1), "same text, same key");
    let key = format!(
        "xxh3:{:032x}",
        xxhash_rust::xxh3::xxh3_128("same text".as_bytes())
    );
    let c = Corpus::open(tmp.path()).unwrap();
    let d = c.get(&key).unwrap().unwrap();
    assert_eq!(d.text, "same text");
    let v: Value = serde_json::from_slice(&d.json).unwrap();
    assert_eq!(v, serde_json::json!({"text": "same text", "lang": "en"}));
    assert_eq!(count(&c, &format!("id = \"{key}\"")), 1);
    assert_eq!(count(&c, "id = xxh3:*"), 2);
}

const V1: &str = "{\"id\": \"a\", \"text\": \"old a\", \"lang\": \"en\"}\n{\"id\": \"b\", \"text\": \"old b\", \"lang\": \"en\"}\n";
const V2: &str = "{\"id\": \"c\", \"text\": \"new c\", \"lang\": \"de\"}\n{\"id\": \"a\", \"text\": \"new a\", \"lang\": \"fr\"}\n";

fn dup_opts(d: OnDuplicate) -> IngestOptions {
    IngestOptions {
        on_duplicate: d,
        ..opts()
    }
}

#[test]
fn on_duplicate_skip_keeps_the_first() {
    let tmp = tempfile::tempdir().unwrap();
    ingest_str(tmp.path(), V1);
    let r = ingest_bytes(
        tmp.path(),
        "v2",
        V2.as_bytes(),
        &dup_opts(OnDuplicate::Skip),
    )
    .unwrap();
    assert_eq!((r.ingested, r.skipped, r.replaced), (1, 1, 0));
    let c = Corpus::open(tmp.path()).unwrap();
    assert_eq!(c.len(), 3);
    assert_eq!(c.get("a").unwrap().unwrap().text, "old a");
    assert_eq!(count(&c, "lang = fr"), 0);
}

#[test]
fn on_duplicate_replace_across_ingests() {
    let tmp = tempfile::tempdir().unwrap();
    ingest_str(tmp.path(), V1);
    let r = ingest_bytes(
        tmp.path(),
        "v2",
        V2.as_bytes(),
        &dup_opts(OnDuplicate::Replace),
    )
    .unwrap();
    assert_eq!(r.replaced, 1);
    assert_eq!(r.skipped, 0);
    let c = Corpus::open(tmp.path()).unwrap();
    assert_eq!(c.len(), 3, "a replaced, c added");
    assert_eq!(c.get("a").unwrap().unwrap().text, "new a");
    assert_eq!(count(&c, "lang = en"), 1);
    assert_eq!(count(&c, "lang = fr"), 1);
    assert_eq!(count(&c, "id = a"), 1);
    assert_eq!(
        c.all().text_bytes().unwrap(),
        ("new a".len() + "old b".len() + "new c".len()) as u64
    );
    let all = common::export_by_id(&c.all());
    assert_eq!(all.len(), 3);
    assert_eq!(all["a"]["text"], "new a");
    let st = corpusql::raw::stats::stats(&c, &c.all(), &["lang".into()]).unwrap();
    assert_eq!(st.docs, 3);
    assert!(corpusql::raw::maintain::verify(tmp.path()).unwrap().ok());
    // A compaction drops the replaced version for good.
    let rep = corpusql::raw::maintain::compact(tmp.path(), 1 << 20).unwrap();
    assert_eq!((rep.docs, rep.dropped), (3, 1));
    let c = Corpus::open(tmp.path()).unwrap();
    assert_eq!(c.get("a").unwrap().unwrap().text, "new a");
}

#[test]
fn on_duplicate_replace_within_one_file_and_across_flushed_segments() {
    for segment_bytes in [1usize, 256 << 20] {
        let tmp = tempfile::tempdir().unwrap();
        ingest_str(tmp.path(), V1);
        let data = "{\"id\": \"a\", \"text\": \"a2\"}\n{\"id\": \"z\", \"text\": \"z1\"}\n{\"id\": \"a\", \"text\": \"a3\"}\n{\"id\": \"z\", \"text\": \"z2\"}\n";
        let o = IngestOptions {
            segment_bytes,
            ..dup_opts(OnDuplicate::Replace)
        };
        let r = ingest_bytes(tmp.path(), "r", data.as_bytes(), &o).unwrap();
        assert_eq!(r.replaced, 3, "segment_bytes {segment_bytes}");
        let c = Corpus::open(tmp.path()).unwrap();
        assert_eq!(c.len(), 3, "segment_bytes {segment_bytes}");
        assert_eq!(c.get("a").unwrap().unwrap().text, "a3");
        assert_eq!(c.get("z").unwrap().unwrap().text, "z2");
        assert_eq!(c.get("b").unwrap().unwrap().text, "old b");
        let texts: Vec<String> = c.all().documents().map(|d| d.unwrap().text).collect();
        let mut texts = texts;
        texts.sort();
        assert_eq!(texts, vec!["a3", "old b", "z2"]);
        assert!(corpusql::raw::maintain::verify(tmp.path()).unwrap().ok());
    }
}

#[test]
fn on_duplicate_skip_across_flushed_segments() {
    let tmp = tempfile::tempdir().unwrap();
    let mut data = String::new();
    for i in 0..200 {
        data.push_str(&format!("{{\"id\": \"k{i}\", \"text\": \"first {i}\"}}\n"));
    }
    for i in (0..200).rev() {
        data.push_str(&format!("{{\"id\": \"k{i}\", \"text\": \"second {i}\"}}\n"));
    }
    let o = IngestOptions {
        segment_bytes: 2000,
        ..opts()
    };
    let r = ingest_bytes(tmp.path(), "s", data.as_bytes(), &o).unwrap();
    assert_eq!((r.ingested, r.skipped), (200, 200));
    assert!(r.segments > 5);
    let c = Corpus::open(tmp.path()).unwrap();
    assert_eq!(c.len(), 200);
    assert_eq!(c.get("k0").unwrap().unwrap().text, "first 0");
    assert_eq!(c.get("k199").unwrap().unwrap().text, "first 199");
}

#[test]
fn on_duplicate_error_commits_nothing() {
    for segment_bytes in [1usize, 256 << 20] {
        let tmp = tempfile::tempdir().unwrap();
        ingest_str(tmp.path(), V1);
        let before = Corpus::open(tmp.path()).unwrap();
        let files = common::segment_files(tmp.path());
        let o = IngestOptions {
            segment_bytes,
            ..dup_opts(OnDuplicate::Error)
        };
        let e = ingest_bytes(tmp.path(), "v2.jsonl", V2.as_bytes(), &o).unwrap_err();
        match &e {
            Error::DuplicateKey { file, line, key } => {
                assert_eq!((file.as_str(), *line, key.as_str()), ("v2.jsonl", 2, "a"));
            }
            other => panic!("expected DuplicateKey, got {other:?}"),
        }
        assert!(e.to_string().contains("v2.jsonl:2"), "{e}");
        let c = Corpus::open(tmp.path()).unwrap();
        assert_eq!(c.generation(), before.generation());
        assert_eq!(c.len(), 2);
        assert!(c.get("c").unwrap().is_none(), "nothing of v2 is visible");
        assert_eq!(c.get("a").unwrap().unwrap().text, "old a");
        assert_eq!(
            common::segment_files(tmp.path()),
            files,
            "segments written before the error are removed (segment_bytes {segment_bytes})"
        );
        assert_eq!(c.catalog().ingest_log().unwrap().len(), 1);
    }
    // Within one file, too.
    let tmp = tempfile::tempdir().unwrap();
    let data = "{\"id\": \"a\", \"text\": \"1\"}\n{\"id\": \"a\", \"text\": \"2\"}\n";
    let e = ingest_bytes(
        tmp.path(),
        "f",
        data.as_bytes(),
        &dup_opts(OnDuplicate::Error),
    );
    assert!(
        matches!(e, Err(Error::DuplicateKey { line: 2, .. })),
        "{e:?}"
    );
    let c = Corpus::open(tmp.path()).unwrap();
    assert_eq!(c.len(), 0);
}

#[test]
fn empty_inputs() {
    let tmp = tempfile::tempdir().unwrap();
    let r = ingest_bytes(tmp.path(), "empty", b"", &opts()).unwrap();
    assert_eq!((r.ingested, r.rejected, r.blank, r.segments), (0, 0, 0, 0));
    let c = Corpus::open(tmp.path()).unwrap();
    assert_eq!(c.len(), 0);
    assert!(c.is_empty());
    assert_eq!(count(&c, "*"), 0);
    assert!(corpusql::raw::maintain::verify(tmp.path()).unwrap().ok());
    let blanks = b"\n\n   \n\t\r\n\r\n\n";
    let r = ingest_bytes(tmp.path(), "blank", blanks, &opts()).unwrap();
    assert_eq!((r.ingested, r.rejected, r.blank), (0, 0, 6));
    let c = Corpus::open(tmp.path()).unwrap();
    assert_eq!(c.len(), 0);
    let mut out = Vec::new();
    let n = corpusql::raw::export::write_jsonl(
        &c.all(),
        &corpusql::raw::export::Projection::All,
        &mut out,
    )
    .unwrap();
    assert_eq!((n, out.len()), (0, 0));
    // An empty gzip stream is an empty input too.
    let r = ingest_bytes(tmp.path(), "empty.gz", &gz(b""), &opts()).unwrap();
    assert_eq!((r.ingested, r.rejected), (0, 0));
}

#[test]
fn a_line_longer_than_16_mib() {
    let tmp = tempfile::tempdir().unwrap();
    // Varied content, with escapes, longer than two read chunks.
    let mut text = String::with_capacity(17 << 20);
    let mut i = 0u64;
    while text.len() < (16 << 20) + 12345 {
        text.push_str(&format!("ligne {i} — «é» \"q\" \\ tab\t"));
        if i.is_multiple_of(97) {
            text.push('\n');
        }
        i += 1;
    }
    let mut line = Vec::new();
    line.extend_from_slice(b"{\"id\": \"huge\", \"lang\": \"fr\", \"text\": ");
    corpusql::raw::json::write_str(&mut line, &text);
    line.extend_from_slice(b"}");
    assert!(line.len() > 16 << 20);
    let mut data = b"{\"id\": \"before\", \"text\": \"b\"}\n".to_vec();
    data.extend_from_slice(&line);
    data.extend_from_slice(b"\nnot json\n{\"id\": \"after\", \"text\": \"a\"}\n");
    for (name, bytes) in [
        ("plain", data.clone()),
        ("zstd", zstd::encode_all(&data[..], 1).unwrap()),
    ] {
        let dir = tmp.path().join(name);
        let r = ingest_bytes(&dir, name, &bytes, &opts()).unwrap();
        assert_eq!((r.ingested, r.rejected), (3, 1), "{name}");
        assert_eq!(
            r.rejects[0].line, 3,
            "{name}: line numbers survive the long line"
        );
        let c = Corpus::open(&dir).unwrap();
        let d = c.get("huge").unwrap().unwrap();
        assert!(d.text == text, "{name}: 16 MiB text differs");
        assert_eq!(c.get("after").unwrap().unwrap().text, "a");
        assert_eq!(c.get("before").unwrap().unwrap().text, "b");
        assert_eq!(
            c.query("lang = fr").unwrap().text_bytes().unwrap(),
            text.len() as u64
        );
    }
}

#[test]
fn rejected_lines_do_not_change_the_schema() {
    let tmp = tempfile::tempdir().unwrap();
    let data = r#"{"id": "a", "text": "x", "tag": 5, "other": [1]}
{"id": "a", "text": "y", "other": "s"}
{"id": "b", "text": "z", "tag": "five"}
"#;
    // Line 1: tag number, other json. Line 2: duplicate (skipped, but
    // `other` is json so it would conflict anyway -> rejected first).
    let r = ingest_str(tmp.path(), data);
    assert_eq!(r.ingested, 1);
    assert_eq!(r.rejected, 2, "{:?}", r.rejects);
    let c = Corpus::open(tmp.path()).unwrap();
    use corpusql::raw::schema::FieldKind;
    assert_eq!(c.schema().fields.get("tag"), Some(&FieldKind::Number));
    assert_eq!(c.schema().fields.get("other"), Some(&FieldKind::Json));
}

#[test]
fn a_line_rejected_for_one_field_adds_none_of_its_fields() {
    let tmp = tempfile::tempdir().unwrap();
    let data = r#"{"id": "a", "text": "x", "tag": 5}
{"id": "b", "text": "y", "tag": "five", "fresh": "s"}
{"id": "c", "text": "z", "fresh": 7}
"#;
    let r = ingest_str(tmp.path(), data);
    assert_eq!((r.ingested, r.rejected), (2, 1), "{:?}", r.rejects);
    assert_eq!(r.rejects[0].line, 2);
    let c = Corpus::open(tmp.path()).unwrap();
    assert_eq!(count(&c, "fresh = 7"), 1);
}

#[test]
fn a_skipped_duplicate_does_not_shape_the_schema() {
    let tmp = tempfile::tempdir().unwrap();
    ingest_str(tmp.path(), "{\"id\": \"a\", \"text\": \"x\"}\n");
    let data = r#"{"id": "a", "text": "x", "extra": 1}
{"id": "b", "text": "y", "extra": "a string"}
"#;
    let r = ingest_str(tmp.path(), data);
    assert_eq!(r.skipped, 1);
    assert_eq!((r.ingested, r.rejected), (1, 0), "{:?}", r.rejects);
    let c = Corpus::open(tmp.path()).unwrap();
    assert_eq!(count(&c, "extra = \"a string\""), 1);
}
