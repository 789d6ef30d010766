//! `corpusql tag` end to end, driven through the binary on samples of the
//! real dev corpus (`../shared/data/realcorpus-dev.jsonl.zst`): the stored
//! signals equal the taggers' pure functions on the same texts, tagging is
//! incremental, deduplication is deterministic and recomputed after
//! deletions, `export --redact-pii` rewrites only the text, `schema` and
//! `tag report` describe the signals, and crashes, corrupt sidecars and name
//! clashes fail cleanly. Without `../shared/data` the tests that need it
//! print `SKIPPED: ...` and pass.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use corpusql::raw::tag::{dedup, language, ocr, pii, quality, toxicity};
use rayon::prelude::*;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_corpusql");
const CORPUS: &str = "realcorpus-dev.jsonl.zst";
const DICT_DIR: &str = "/usr/share/dict";
/// Languages the OCR tagger loads word lists for (see `src/tag/run.rs`).
const OCR_LANGS: [&str; 5] = ["fr", "en", "de", "es", "it"];

// ---------------------------------------------------------------------------
// Running the binary

fn cmd(dir: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.arg("-C").arg(dir).env_remove("CORPUSQL_DIR");
    c
}

fn run(c: &mut Command) -> Output {
    c.stdin(Stdio::null()).output().expect("run corpusql")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("stdout is UTF-8")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs and requires exit 0.
fn ok(c: &mut Command) -> Output {
    let o = run(c);
    assert!(
        o.status.success(),
        "{c:?} failed ({:?}):\nstdout: {}\nstderr: {}",
        o.status,
        stdout(&o),
        stderr(&o)
    );
    o
}

/// Runs and requires exit 2 (an error); returns stderr.
fn fails(c: &mut Command) -> String {
    let o = run(c);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{c:?} should fail:\nstdout: {}\nstderr: {}",
        stdout(&o),
        stderr(&o)
    );
    stderr(&o)
}

fn count(dir: &Path, q: &str) -> u64 {
    let s = stdout(&ok(cmd(dir).args(["count", q])));
    s.trim_end()
        .parse()
        .unwrap_or_else(|_| panic!("count {q}: {s:?}"))
}

/// Exported records of `q` (every field, policy overridden).
fn export(dir: &Path, q: &str, extra: &[&str]) -> Vec<String> {
    let o = ok(cmd(dir)
        .args(["export", q, "--override-policy"])
        .args(extra));
    stdout(&o).lines().map(str::to_string).collect()
}

/// Keys of the documents matching `q`, through `export --fields id`.
fn ids(dir: &Path, q: &str) -> BTreeSet<String> {
    export(dir, q, &["--fields", "id"])
        .iter()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["id"].as_str().unwrap().to_string()
        })
        .collect()
}

fn ingest(dir: &Path, file: &Path) {
    ok(cmd(dir).args(["ingest", "-q"]).arg(file));
}

/// `corpusql tag ARGS -q`; stdout.
fn tag(dir: &Path, args: &[&str]) -> String {
    stdout(&ok(cmd(dir).arg("tag").args(args).arg("-q")))
}

/// The `<tagger> N documents tagged` lines of a `tag` run.
fn tagged_counts(out: &str) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for line in out.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        if w.len() >= 4 && w[2] == "documents" && w[3] == "tagged," {
            let n = w[1].parse().unwrap_or_else(|_| panic!("bad line {line:?}"));
            assert!(m.insert(w[0].to_string(), n).is_none(), "{out}");
        }
    }
    m
}

/// `stats --by FIELD --json` as value (None for documents without one) -> docs.
fn stats_by(dir: &Path, field: &str) -> BTreeMap<Option<String>, u64> {
    let o = ok(cmd(dir).args(["stats", "--by", field, "--json", "--top", "1000000"]));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let mut m = BTreeMap::new();
    for g in v["groups"].as_array().unwrap() {
        let val = g["values"][0].as_str().map(str::to_string);
        assert!(m.insert(val, g["docs"].as_u64().unwrap()).is_none());
    }
    m
}

// ---------------------------------------------------------------------------
// Samples of the real corpus

/// One input record.
#[derive(Clone, Debug)]
struct Doc {
    id: String,
    text: String,
    lang: Option<String>,
    source: Option<String>,
    /// The JSONL line as read.
    line: String,
}

impl Doc {
    fn parse(line: &str) -> Doc {
        let v: Value = serde_json::from_str(line).unwrap();
        let s = |k: &str| v[k].as_str().map(str::to_string);
        Doc {
            id: s("id").unwrap(),
            text: s("text").unwrap(),
            lang: s("lang"),
            source: s("source"),
            line: line.to_string(),
        }
    }

    fn new(id: &str, text: &str, lang: &str) -> Doc {
        let line = serde_json::json!({"id": id, "text": text, "lang": lang}).to_string();
        Doc::parse(&line)
    }
}

/// Lines of the real corpus whose index is kept by [`keep`], with their index.
fn real_lines() -> Option<&'static Vec<(usize, String)>> {
    static L: OnceLock<Option<Vec<(usize, String)>>> = OnceLock::new();
    L.get_or_init(|| {
        use std::io::BufRead;
        let path = common::shared_file(CORPUS)?;
        let dec = zstd::stream::read::Decoder::new(std::fs::File::open(path).unwrap()).unwrap();
        let mut out = Vec::new();
        for (i, line) in std::io::BufReader::new(dec).lines().enumerate() {
            let line = line.unwrap();
            if keep(i) && !line.is_empty() {
                out.push((i, line));
            }
        }
        Some(out)
    })
    .as_ref()
}

/// The samples the tests use, by line index.
fn keep(i: usize) -> bool {
    i.is_multiple_of(12) || matches!(i % 48, 5 | 17 | 29) || i % 96 == 41
}

/// Records of the real corpus whose line index satisfies `pick` (which must
/// imply [`keep`]).
fn sample(pick: impl Fn(usize) -> bool) -> Option<Vec<Doc>> {
    Some(
        real_lines()?
            .iter()
            .filter(|(i, _)| pick(*i))
            .map(|(_, l)| Doc::parse(l))
            .collect(),
    )
}

fn write_jsonl(path: &Path, docs: &[Doc]) {
    let mut s = String::new();
    for d in docs {
        s.push_str(&d.line);
        s.push('\n');
    }
    std::fs::write(path, s).unwrap();
}

/// Whether the OCR word lists are installed.
fn have_dicts() -> bool {
    let ok = ocr::Dictionaries::load(Path::new(DICT_DIR), &OCR_LANGS).is_ok();
    if !ok {
        eprintln!("SKIPPED: OCR checks ({DICT_DIR} lacks the word lists)");
    }
    ok
}

/// Every 12th record of the real corpus (2,938 documents, 17 MiB of text),
/// ingested and tagged by every tagger of `all` (OCR when its word lists are
/// installed).
struct Tagged {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    docs: Vec<Doc>,
    ocr: bool,
    out: String,
}

fn tagged() -> Option<&'static Tagged> {
    static T: OnceLock<Option<Tagged>> = OnceLock::new();
    T.get_or_init(|| {
        let docs = sample(|i| i.is_multiple_of(12))?;
        let tmp = tempfile::tempdir().unwrap();
        let jsonl = tmp.path().join("sample.jsonl");
        write_jsonl(&jsonl, &docs);
        let dir = tmp.path().join("corpus");
        ingest(&dir, &jsonl);
        let ocr = have_dicts();
        let taggers = if ocr {
            "all"
        } else {
            "language,quality,pii,dedup"
        };
        let out = tag(&dir, &["--taggers", taggers]);
        Some(Tagged {
            _tmp: tmp,
            dir,
            docs,
            ocr,
            out,
        })
    })
    .as_ref()
}

macro_rules! or_skip {
    ($e:expr) => {
        match $e {
            Some(x) => x,
            None => return,
        }
    };
}

fn ids_where(docs: &[Doc], f: impl Fn(&Doc) -> bool) -> BTreeSet<String> {
    docs.iter().filter(|d| f(d)).map(|d| d.id.clone()).collect()
}

/// `rps_doc_word_count` of each document, computed by the quality scorer
/// with the document's `lang` (as the tagger does).
fn word_counts(docs: &[Doc]) -> Vec<Option<f64>> {
    let col = quality::column_names()
        .iter()
        .position(|c| *c == "rps_doc_word_count")
        .expect("rps_doc_word_count is a quality column");
    docs.par_iter()
        .map_init(
            || (quality::Scorer::new(), Vec::new()),
            |(s, out), d| {
                s.score(&d.text, d.lang.as_deref(), out);
                out[col]
            },
        )
        .collect()
}

// ---------------------------------------------------------------------------
// 1. Stored values equal the pure functions

#[test]
fn all_taggers_tag_every_document_once() {
    let t = or_skip!(tagged());
    let n = t.docs.len() as u64;
    let mut want: BTreeMap<String, u64> = ["language", "quality", "pii", "dedup"]
        .iter()
        .map(|s| (s.to_string(), n))
        .collect();
    if t.ocr {
        want.insert("ocr".into(), n);
    }
    assert_eq!(tagged_counts(&t.out), want, "{}", t.out);
    assert!(t.out.contains("-> generation 2"), "{}", t.out);
    assert_eq!(count(&t.dir, "*"), n);
}

#[test]
fn pii_counts_match_pii_counts() {
    let t = or_skip!(tagged());
    let direct: HashMap<&str, [u32; 7]> = t
        .docs
        .iter()
        .map(|d| (d.id.as_str(), pii::counts(&d.text)))
        .collect();
    let mut nonzero_kinds = 0;
    for kind in pii::PiiKind::ALL {
        let col = kind.column();
        let k = kind.index();
        let want = ids_where(&t.docs, |d| direct[d.id.as_str()][k] > 0);
        assert_eq!(
            count(&t.dir, &format!("{col} > 0")),
            want.len() as u64,
            "{col}"
        );
        assert_eq!(ids(&t.dir, &format!("{col} > 0")), want, "{col} > 0");
        // Every document has a count: zero or more.
        assert_eq!(
            count(&t.dir, &format!("{col} >= 0")),
            t.docs.len() as u64,
            "{col}"
        );
        if !want.is_empty() {
            nonzero_kinds += 1;
        }
        // Exact counts, for a few values.
        for v in 1..=3u32 {
            let want = ids_where(&t.docs, |d| direct[d.id.as_str()][k] == v);
            assert_eq!(
                count(&t.dir, &format!("{col} = {v}")),
                want.len() as u64,
                "{col} = {v}"
            );
        }
    }
    assert!(
        nonzero_kinds >= 2,
        "the sample holds personal data of several kinds"
    );
    // The exported texts of `pii_email > 0` are the texts that hold e-mails.
    let recs = export(&t.dir, "pii_email > 0", &["--fields", "id,text"]);
    assert!(!recs.is_empty(), "the sample holds e-mail addresses");
    for r in &recs {
        let v: Value = serde_json::from_str(r).unwrap();
        let text = v["text"].as_str().unwrap();
        let c = pii::counts(text);
        assert!(
            c[pii::PiiKind::Email.index()] > 0,
            "{} has no e-mail",
            v["id"]
        );
        assert_eq!(v.as_object().unwrap().len(), 2, "--fields id,text: {r}");
    }
}

#[test]
fn quality_word_count_matches_scorer() {
    let t = or_skip!(tagged());
    let wc = word_counts(&t.docs);
    for (q, f) in [
        (
            "rps_doc_word_count >= 50",
            (|x: f64| x >= 50.0) as fn(f64) -> bool,
        ),
        ("rps_doc_word_count < 50", |x| x < 50.0),
        ("rps_doc_word_count = 0", |x| x == 0.0),
        ("rps_doc_word_count > 1000", |x| x > 1000.0),
    ] {
        let want: BTreeSet<String> = t
            .docs
            .iter()
            .zip(&wc)
            .filter(|(_, w)| w.is_some_and(f))
            .map(|(d, _)| d.id.clone())
            .collect();
        assert_eq!(count(&t.dir, q), want.len() as u64, "{q}");
        assert_eq!(ids(&t.dir, q), want, "{q}");
    }
    let with = wc.iter().filter(|w| w.is_some()).count() as u64;
    assert_eq!(count(&t.dir, "rps_doc_word_count exists"), with);
}

#[test]
fn detected_language_matches_detector() {
    let t = or_skip!(tagged());
    let det = language::Detector::new(&Default::default()).unwrap();
    let got: Vec<(&'static str, f64)> = t.docs.par_iter().map(|d| det.detect(&d.text)).collect();
    let mut seen = BTreeSet::new();
    for code in ["fr", "en", "de", "es", "it", language::UNDETERMINED] {
        let want: BTreeSet<String> = t
            .docs
            .iter()
            .zip(&got)
            .filter(|(_, g)| g.0 == code)
            .map(|(d, _)| d.id.clone())
            .collect();
        let q = format!("lang_detected = {code}");
        assert_eq!(count(&t.dir, &q), want.len() as u64, "{q}");
        if code == "fr" {
            assert!(want.len() > 100, "the sample holds French: {}", want.len());
            assert_eq!(ids(&t.dir, &q), want, "{q}");
            // The score is stored as computed: the same documents pass a threshold.
            let want: BTreeSet<String> = t
                .docs
                .iter()
                .zip(&got)
                .filter(|(_, g)| g.0 == "fr" && g.1 > 0.9)
                .map(|(d, _)| d.id.clone())
                .collect();
            let q = "lang_detected = fr and lang_score > 0.9";
            assert_eq!(ids(&t.dir, q), want, "{q}");
        }
        seen.extend(want);
    }
    assert_eq!(seen.len(), t.docs.len(), "every document gets a language");
    let code = t
        .docs
        .iter()
        .filter(|d| language::code_score(&d.text) > 0.5)
        .count() as u64;
    assert_eq!(count(&t.dir, "code_score > 0.5"), code);
}

#[test]
fn ocr_noise_matches_ocr_score() {
    let t = or_skip!(tagged());
    if !t.ocr {
        return;
    }
    let dicts = ocr::Dictionaries::load(Path::new(DICT_DIR), &OCR_LANGS).unwrap();
    let det = language::Detector::new(&Default::default()).unwrap();
    let got: Vec<ocr::OcrSignals> = t
        .docs
        .par_iter()
        .map(|d| {
            let lang = match d.lang.as_deref() {
                Some(l) if OCR_LANGS.contains(&l) => l,
                _ => det.detect(&d.text).0,
            };
            ocr::score(&d.text, lang, &dicts, &det)
        })
        .collect();
    let sel = |f: &dyn Fn(&ocr::OcrSignals) -> bool| -> BTreeSet<String> {
        t.docs
            .iter()
            .zip(&got)
            .filter(|(_, s)| f(s))
            .map(|(d, _)| d.id.clone())
            .collect()
    };
    let q = "ocr_noise < 0.2";
    assert_eq!(ids(&t.dir, q), sel(&|s| s.noise < 0.2), "{q}");
    let q = "ocr_noise >= 0.5";
    assert_eq!(
        count(&t.dir, q),
        sel(&|s| s.noise >= 0.5).len() as u64,
        "{q}"
    );
    let q = "ocr_dict_ratio exists";
    assert_eq!(
        count(&t.dir, q),
        sel(&|s| s.dict_ratio.is_some()).len() as u64
    );
    let q = "ocr_dict_ratio > 0.8";
    let want = sel(&|s| s.dict_ratio.is_some_and(|x| x > 0.8));
    assert_eq!(count(&t.dir, q), want.len() as u64, "{q}");
}

#[test]
fn exact_duplicates_match_exact_hashes() {
    let t = or_skip!(tagged());
    let work = tempfile::tempdir().unwrap();
    let cfg = dedup::DedupConfig::new(work.path().to_path_buf());
    let hashes: Vec<u128> = t
        .docs
        .par_iter()
        .map(|d| dedup::signature(&d.text, &cfg).exact_hash())
        .collect();
    // First occurrence of each hash: the smallest key.
    let mut first: HashMap<u128, &str> = HashMap::new();
    for (d, h) in t.docs.iter().zip(&hashes) {
        let e = first.entry(*h).or_insert(&d.id);
        if d.id.as_str() < *e {
            *e = &d.id;
        }
    }
    let n = t.docs.len() as u64;
    let dups = n - first.len() as u64;
    assert!(dups > 0, "the sample holds exact duplicates");
    assert_eq!(count(&t.dir, "is_dup = true"), dups);
    assert_eq!(count(&t.dir, "is_dup = false"), first.len() as u64);
    // dup_of names the first occurrence, for every duplicate.
    let mut want: BTreeMap<Option<String>, u64> = BTreeMap::new();
    for (d, h) in t.docs.iter().zip(&hashes) {
        let f = first[h];
        let v = (f != d.id).then(|| f.to_string());
        *want.entry(v).or_default() += 1;
    }
    assert_eq!(stats_by(&t.dir, "dup_of"), want);
}

// ---------------------------------------------------------------------------
// 2. Incremental tagging

#[test]
fn tagging_is_incremental() {
    let first = or_skip!(sample(|i| i % 48 == 5));
    let second = or_skip!(sample(|i| i % 48 == 29));
    let tmp = tempfile::tempdir().unwrap();
    let (f1, f2) = (tmp.path().join("a.jsonl"), tmp.path().join("b.jsonl"));
    write_jsonl(&f1, &first);
    write_jsonl(&f2, &second);
    let dir = tmp.path().join("corpus");
    let (n1, n2) = (first.len() as u64, second.len() as u64);
    ingest(&dir, &f1);
    let out = tag(&dir, &["--taggers", "language,pii"]);
    let want = |n| BTreeMap::from([("language".to_string(), n), ("pii".to_string(), n)]);
    assert_eq!(tagged_counts(&out), want(n1), "{out}");
    ingest(&dir, &f2);
    let out = tag(&dir, &["--taggers", "language,pii"]);
    assert_eq!(
        tagged_counts(&out),
        want(n2),
        "only the new documents: {out}"
    );
    let out = tag(&dir, &["--taggers", "language,pii"]);
    assert!(out.contains("nothing to tag"), "{out}");
    assert_eq!(
        tagged_counts(&out),
        want(0),
        "a third run tags nothing: {out}"
    );
    // Values of both batches are there and right.
    let all: Vec<Doc> = first.iter().chain(&second).cloned().collect();
    let det = language::Detector::new(&Default::default()).unwrap();
    for code in ["fr", "en", "de"] {
        let want = ids_where(&all, |d| det.detect(&d.text).0 == code);
        assert_eq!(
            ids(&dir, &format!("lang_detected = {code}")),
            want,
            "{code}"
        );
    }
    assert_eq!(count(&dir, "lang_score exists"), n1 + n2);
    let want = ids_where(&all, |d| pii::counts(&d.text).iter().any(|&c| c > 0));
    let q = "pii_email > 0 or pii_ip > 0 or pii_phone > 0 or pii_nir > 0 or pii_iban > 0 or pii_card > 0 or pii_siret > 0";
    assert_eq!(ids(&dir, q), want);
    // A query restricts the documents tagged.
    let fr = count(&dir, "lang = fr");
    assert!(fr > 20 && fr < n1 + n2, "{fr}");
    let out = tag(&dir, &["lang = fr", "--taggers", "quality"]);
    assert_eq!(
        tagged_counts(&out),
        BTreeMap::from([("quality".to_string(), fr)]),
        "{out}"
    );
    let wc = word_counts(&all);
    let want: BTreeSet<String> = all
        .iter()
        .zip(&wc)
        .filter(|(d, w)| d.lang.as_deref() == Some("fr") && w.is_some())
        .map(|(d, _)| d.id.clone())
        .collect();
    assert_eq!(ids(&dir, "rps_doc_word_count exists"), want);
    assert_eq!(
        count(&dir, "not lang = fr and rps_doc_word_count exists"),
        0
    );
    // Then the rest; the French documents are not tagged again.
    let out = tag(&dir, &["--taggers", "quality"]);
    assert_eq!(
        tagged_counts(&out),
        BTreeMap::from([("quality".to_string(), n1 + n2 - fr)]),
        "{out}"
    );
    let with = wc.iter().filter(|w| w.is_some()).count() as u64;
    assert_eq!(count(&dir, "rps_doc_word_count exists"), with);
    // --force recomputes what exists.
    let out = tag(&dir, &["lang = fr", "--taggers", "pii", "--force"]);
    assert_eq!(
        tagged_counts(&out),
        BTreeMap::from([("pii".to_string(), fr)]),
        "{out}"
    );
}

// ---------------------------------------------------------------------------
// 3, 4. Deduplication: deterministic, smallest keys, recomputed after deletes

/// Ids of the planted documents.
const EXACT_LOW: &str = "000-exact/copy";
const EXACT_HIGH: &str = "zzz-exact/copy";
const EXACT2_HIGH: &str = "zzz-exact2/copy";
const NEAR_LOW: &str = "000-near/copy";

/// What the dedup tagger should find, computed with the library: the key of
/// each document's first exact copy and of its near-duplicate cluster's
/// representative (keys in byte order are the ranks).
fn dedup_truth(
    docs: &[Doc],
) -> (
    BTreeMap<String, Option<String>>,
    BTreeMap<String, Option<String>>,
) {
    let mut sorted: Vec<&Doc> = docs.iter().collect();
    sorted.sort_by(|a, b| a.id.cmp(&b.id));
    let work = tempfile::tempdir().unwrap();
    let cfg = dedup::DedupConfig::new(work.path().join("w"));
    let sigs: Vec<dedup::Signature> = sorted
        .par_iter()
        .map(|d| dedup::signature(&d.text, &cfg))
        .collect();
    let mut b = dedup::Builder::new(cfg.clone(), sorted.len() as u64).unwrap();
    // In reverse: the result must not depend on the order of `add`.
    for (r, s) in sigs.iter().enumerate().rev() {
        b.add(r as u64, s).unwrap();
    }
    let res = b.finish().unwrap();
    let key = |r: u64| sorted[r as usize].id.clone();
    let mut dup_of = BTreeMap::new();
    let mut cluster = BTreeMap::new();
    for (r, d) in sorted.iter().enumerate() {
        dup_of.insert(d.id.clone(), res.dup_of(r as u64).map(key));
        cluster.insert(d.id.clone(), res.cluster_rep(r as u64).map(key));
    }
    (dup_of, cluster)
}

fn histogram(m: &BTreeMap<String, Option<String>>) -> BTreeMap<Option<String>, u64> {
    let mut h = BTreeMap::new();
    for v in m.values() {
        *h.entry(v.clone()).or_default() += 1;
    }
    h
}

/// A long document of `docs` (at least `words` words) whose normalized text
/// no other document shares, other than those in `not`.
fn pick_long<'a>(docs: &'a [Doc], words: usize, not: &[&str]) -> &'a Doc {
    let work = tempfile::tempdir().unwrap();
    let cfg = dedup::DedupConfig::new(work.path().to_path_buf());
    let mut seen: HashMap<u128, usize> = HashMap::new();
    let hs: Vec<u128> = docs
        .iter()
        .map(|d| dedup::signature(&d.text, &cfg).exact_hash())
        .collect();
    for h in &hs {
        *seen.entry(*h).or_default() += 1;
    }
    docs.iter()
        .zip(&hs)
        .find(|(d, h)| {
            seen[h] == 1
                && !not.contains(&d.id.as_str())
                && d.text.split_whitespace().count() >= words
                && d.text.split_whitespace().count() <= 5 * words
                && d.lang.as_deref() != Some("code")
        })
        .map(|(d, _)| d)
        .expect("a long unique document")
}

/// The dedup sample plus planted copies; returns (docs, O1, O2, O3).
fn dedup_docs() -> Option<(Vec<Doc>, String, String, String)> {
    let mut docs = sample(|i| i % 48 == 17)?;
    let o1 = pick_long(&docs, 300, &[]).clone();
    let o2 = pick_long(&docs, 300, &[&o1.id]).clone();
    let o3 = pick_long(&docs, 300, &[&o1.id, &o2.id]).clone();
    docs.push(Doc::new(EXACT_LOW, &o1.text, "xx"));
    docs.push(Doc::new(EXACT_HIGH, &o1.text, "xx"));
    docs.push(Doc::new(EXACT2_HIGH, &o2.text, "xx"));
    // The near copy: three words changed, far apart.
    let mut words: Vec<String> = o3.text.split(' ').map(str::to_string).collect();
    let n = words.len();
    for (k, at) in [n / 4, n / 2, 3 * n / 4].into_iter().enumerate() {
        words[at] = format!("changé{k}");
    }
    let near = words.join(" ");
    assert_ne!(near, o3.text);
    docs.push(Doc::new(NEAR_LOW, &near, "xx"));
    Some((docs, o1.id, o2.id, o3.id))
}

#[test]
fn dedup_is_deterministic_and_points_at_smallest_keys() {
    let (docs, o1, o2, o3) = or_skip!(dedup_docs());
    let tmp = tempfile::tempdir().unwrap();
    let all = tmp.path().join("all.jsonl");
    write_jsonl(&all, &docs);
    // Copy 1: one file, one thread.
    let d1 = tmp.path().join("c1");
    ingest(&d1, &all);
    let out1 = stdout(&ok(cmd(&d1).env("RAYON_NUM_THREADS", "1").args([
        "tag",
        "--taggers",
        "dedup",
        "-q",
    ])));
    // Copy 2: two files (two segments, other order), two threads, a tiny
    // memory budget.
    let d2 = tmp.path().join("c2");
    let (a, b) = (tmp.path().join("a.jsonl"), tmp.path().join("b.jsonl"));
    let half = docs.len() / 2;
    let mut tail = docs[half..].to_vec();
    tail.reverse();
    write_jsonl(&a, &tail);
    write_jsonl(&b, &docs[..half]);
    ingest(&d2, &a);
    ingest(&d2, &b);
    let out2 = stdout(&ok(cmd(&d2).env("RAYON_NUM_THREADS", "2").args([
        "tag",
        "--taggers",
        "dedup",
        "--dedup-memory-mb",
        "1",
        "-q",
    ])));
    let n = docs.len() as u64;
    for out in [&out1, &out2] {
        assert_eq!(
            tagged_counts(out),
            BTreeMap::from([("dedup".to_string(), n)]),
            "{out}"
        );
    }
    // Identical answers.
    for q in [
        "is_dup = true",
        "near_dup_rep = false",
        "near_dup_cluster exists",
    ] {
        assert_eq!(ids(&d1, q), ids(&d2, q), "{q}");
    }
    for f in ["near_dup_cluster", "dup_of", "is_dup", "near_dup_rep"] {
        assert_eq!(stats_by(&d1, f), stats_by(&d2, f), "stats --by {f}");
    }
    // ... equal to the library's.
    let (dup_of, cluster) = dedup_truth(&docs);
    assert_eq!(stats_by(&d1, "dup_of"), histogram(&dup_of));
    assert_eq!(stats_by(&d1, "near_dup_cluster"), histogram(&cluster));
    let want: BTreeSet<String> = dup_of
        .iter()
        .filter(|(_, v)| v.is_some())
        .map(|(k, _)| k.clone())
        .collect();
    assert_eq!(ids(&d1, "is_dup = true"), want);
    let want: BTreeSet<String> = cluster
        .iter()
        .filter(|(k, v)| v.as_ref().is_some_and(|v| v != *k))
        .map(|(k, _)| k.clone())
        .collect();
    assert_eq!(ids(&d1, "near_dup_rep = false"), want);
    // The planted copies.
    let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(
        ids(&d1, &format!("dup_of = \"{EXACT_LOW}\"")),
        set(&[&o1, EXACT_HIGH])
    );
    assert_eq!(ids(&d1, &format!("dup_of = \"{o2}\"")), set(&[EXACT2_HIGH]));
    assert_eq!(
        count(&d1, &format!("id = \"{EXACT_LOW}\" and is_dup = false")),
        1
    );
    let q = format!("near_dup_cluster = \"{NEAR_LOW}\"");
    let members = ids(&d1, &q);
    assert!(
        members.contains(NEAR_LOW) && members.contains(&o3),
        "{q}: {members:?}"
    );
    assert_eq!(
        ids(&d1, &format!("{q} and near_dup_rep = true")),
        set(&[NEAR_LOW])
    );
    assert_eq!(count(&d1, &format!("id = \"{o3}\" and is_dup = false")), 1);
    // 4. Delete the first occurrences: dedup recomputes.
    let o = ok(cmd(&d1).args(["delete", &format!("id = \"{EXACT_LOW}\" or id = \"{o2}\"")]));
    assert!(
        stdout(&o).starts_with("deleted 2 documents"),
        "{}",
        stdout(&o)
    );
    let out = tag(&d1, &["--taggers", "dedup"]);
    assert_eq!(
        tagged_counts(&out),
        BTreeMap::from([("dedup".to_string(), n - 2)]),
        "{out}"
    );
    assert_eq!(count(&d1, &format!("dup_of = \"{EXACT_LOW}\"")), 0);
    assert_eq!(count(&d1, &format!("dup_of = \"{o2}\"")), 0);
    assert_eq!(
        count(&d1, &format!("id = \"{EXACT2_HIGH}\" and is_dup = false")),
        1,
        "the copy of a deleted document is no longer a duplicate"
    );
    assert_eq!(ids(&d1, &format!("dup_of = \"{o1}\"")), set(&[EXACT_HIGH]));
    let live: Vec<Doc> = docs
        .iter()
        .filter(|d| d.id != EXACT_LOW && d.id != o2)
        .cloned()
        .collect();
    let (dup_of, cluster) = dedup_truth(&live);
    assert_eq!(stats_by(&d1, "dup_of"), histogram(&dup_of));
    assert_eq!(stats_by(&d1, "near_dup_cluster"), histogram(&cluster));
    // Nothing changed since: nothing to do.
    let out = tag(&d1, &["--taggers", "dedup"]);
    assert!(out.contains("nothing to tag"), "{out}");
}

/// Exact duplicates among `docs`: documents minus distinct exact hashes.
fn exact_dups(docs: &[Doc]) -> u64 {
    let work = tempfile::tempdir().unwrap();
    let cfg = dedup::DedupConfig::new(work.path().to_path_buf());
    let distinct: std::collections::HashSet<u128> = docs
        .par_iter()
        .map(|d| dedup::signature(&d.text, &cfg).exact_hash())
        .collect();
    docs.len() as u64 - distinct.len() as u64
}

#[test]
fn compaction_keeps_per_document_signals_and_dedup_is_recomputed() {
    let t = or_skip!(tagged());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("copy");
    common::copy_corpus(&t.dir, &dir);
    let de = count(&dir, "lang = de");
    assert!(de > 50, "{de}");
    ok(cmd(&dir).args(["delete", "lang = de"]));
    ok(cmd(&dir).args(["compact"]));
    let live: Vec<Doc> = t
        .docs
        .iter()
        .filter(|d| d.lang.as_deref() != Some("de"))
        .cloned()
        .collect();
    assert_eq!(count(&dir, "*"), live.len() as u64);
    // Per-document signals survive compaction, on the right documents.
    let det = language::Detector::new(&Default::default()).unwrap();
    let want = ids_where(&live, |d| det.detect(&d.text).0 == "fr");
    assert_eq!(ids(&dir, "lang_detected = fr"), want);
    let wc = word_counts(&live);
    let want: BTreeSet<String> = live
        .iter()
        .zip(&wc)
        .filter(|(_, w)| w.is_some_and(|x| x >= 50.0))
        .map(|(d, _)| d.id.clone())
        .collect();
    assert_eq!(ids(&dir, "rps_doc_word_count >= 50"), want);
    let want = ids_where(&live, |d| {
        pii::counts(&d.text)[pii::PiiKind::Email.index()] > 0
    });
    assert_eq!(ids(&dir, "pii_email > 0"), want);
    // Dedup, which depends on the whole corpus, ran again inside compact:
    // nothing is left to do.
    let out = tag(&dir, &["--taggers", "language,quality,pii,dedup"]);
    let n = live.len() as u64;
    assert_eq!(
        tagged_counts(&out),
        BTreeMap::from([
            ("language".to_string(), 0),
            ("quality".to_string(), 0),
            ("pii".to_string(), 0),
            ("dedup".to_string(), 0),
        ]),
        "{out}"
    );
    assert_eq!(count(&dir, "is_dup = true"), exact_dups(&live));
    assert_eq!(count(&dir, "is_dup exists"), n);
    let o = ok(cmd(&dir).args(["verify"]));
    assert!(stdout(&o).contains("all checksums match"), "{}", stdout(&o));
}

// ---------------------------------------------------------------------------
// 5. export --redact-pii

/// `body` with its IBAN check digits computed (ISO 13616 mod 97).
fn iban(country: &str, bban: &str) -> String {
    let digits: String = format!("{bban}{country}00")
        .chars()
        .map(|c| match c {
            '0'..='9' => c.to_string(),
            _ => (c as u32 - 'A' as u32 + 10).to_string(),
        })
        .collect();
    let m = digits
        .bytes()
        .fold(0u64, |m, b| (m * 10 + (b - b'0') as u64) % 97);
    format!("{country}{:02}{bban}", 98 - m)
}

/// A NIR with its key (97 - n mod 97).
fn nir(first13: &str) -> String {
    let n: u64 = first13.parse().unwrap();
    format!("{first13}{:02}", 97 - n % 97)
}

fn spaced(s: &str, groups: &[usize]) -> String {
    let mut out = Vec::new();
    let mut at = 0;
    for g in groups {
        out.push(&s[at..(at + g).min(s.len())]);
        at += g;
    }
    if at < s.len() {
        out.push(&s[at..]);
    }
    out.join(" ")
}

#[test]
fn redact_pii_rewrites_only_the_text() {
    let tmp = tempfile::tempdir().unwrap();
    let iban1 = iban("FR", "20041010050500013M02606");
    let iban2 = iban("FR", "30006000011234567890189");
    let nir1 = nir("1850578006084");
    let nir2 = nir("2690149123456");
    let texts = [
        "Écrivez à jean.dupont@exemple.fr ou à « marie-ève@société.fr » ; merci !".to_string(),
        "Tél. : 06 12 34 56 78\nFax : +33 1 23 45 67 89\t(bureau)".to_string(),
        format!(
            "IBAN {} — virement reçu. Ancien compte : {iban2}",
            spaced(&iban1, &[4, 4, 4, 4, 4, 4, 3])
        ),
        format!(
            "NIR {nir1} et « {} » : données sensibles 🔒",
            spaced(&nir2, &[1, 2, 2, 2, 3, 3])
        ),
        format!("Mélange \"cité\" : contact@corpus.example.org, 07.98.76.54.32, {iban1}\n\\ fin ☃"),
        "Aucune donnée personnelle ici : 12 rue des Lilas, 1984, «\u{a0}ok\u{a0}».".to_string(),
        "日本語のテキスト、メールは a.b@example.jp です。電話 01 45 67 89 10。".to_string(),
        "Numéros qui ne sont pas des NIR : 1850578006084 00, 123 456 789 000 00.".to_string(),
    ];
    let mut jsonl = String::new();
    for (i, t) in texts.iter().enumerate() {
        let rec = serde_json::json!({
            "id": format!("doc/{i:02}"),
            "lang": "fr",
            "title": format!("Titre « {i} » \"cité\"\nligne 2"),
            "meta": {"n": i, "email": "pas.redigé@exemple.fr", "list": [1, "deux", null]},
            "text": t,
            "year": 2000 + i,
        });
        jsonl.push_str(&rec.to_string());
        jsonl.push('\n');
    }
    // A record with escapes serde_json would not write (\u escapes, \/).
    jsonl.push_str(
        r#"{"id":"doc\/raw","title":"Caf\u00e9 \"noir\" \ud83d\ude00","text":"\u00c9crire \u00e0 x.y@exemple.fr\r\nou au 06\u00a012\u00a034\u00a056\u00a078 \"vite\"","tags":["a\/b","\u2603"],"n":1.50}"#,
    );
    jsonl.push('\n');
    let f = tmp.path().join("pii.jsonl");
    std::fs::write(&f, &jsonl).unwrap();
    let dir = tmp.path().join("corpus");
    ingest(&dir, &f);
    // The detectors do find each kind in these texts.
    let mut found = [0u32; 7];
    for t in &texts {
        for (k, c) in pii::counts(t).iter().enumerate() {
            found[k] += c;
        }
    }
    for kind in [
        pii::PiiKind::Email,
        pii::PiiKind::Phone,
        pii::PiiKind::Iban,
        pii::PiiKind::Nir,
    ] {
        assert!(found[kind.index()] >= 2, "{kind:?}: {found:?}");
    }
    let plain = export(&dir, "*", &[]);
    let red = export(&dir, "*", &["--redact-pii"]);
    assert_eq!(plain.len(), texts.len() + 1);
    assert_eq!(red.len(), plain.len());
    let mut changed = 0;
    for (p, r) in plain.iter().zip(&red) {
        let pv: BTreeMap<String, &serde_json::value::RawValue> = serde_json::from_str(p).unwrap();
        let rv: BTreeMap<String, &serde_json::value::RawValue> = serde_json::from_str(r).unwrap();
        assert_eq!(
            pv.keys().collect::<Vec<_>>(),
            rv.keys().collect::<Vec<_>>(),
            "{p}"
        );
        for (k, v) in &pv {
            if k != "text" {
                assert_eq!(v.get(), rv[k].get(), "field {k} of {p}");
            }
        }
        let orig: String = serde_json::from_str(pv["text"].get()).unwrap();
        let got: String = serde_json::from_str(rv["text"].get()).unwrap();
        assert_eq!(got, pii::redact(&orig), "redacted text of {p}");
        if got != orig {
            changed += 1;
        }
        // Byte for byte: the same record around the text value.
        let raw = pv["text"].get();
        let at = raw.as_ptr() as usize - p.as_ptr() as usize;
        assert!(r.starts_with(&p[..at]), "before the text: {p}\n{r}");
        assert!(
            r.ends_with(&p[at + raw.len()..]),
            "after the text: {p}\n{r}"
        );
        // And the plain export gives the input text back.
        assert!(jsonl.lines().any(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["text"].as_str() == Some(orig.as_str())
        }));
    }
    assert!(changed >= 6, "{changed} texts redacted");
    let all = red.join("\n");
    for ph in ["<EMAIL>", "<PHONE>", "<IBAN>", "<NIR>"] {
        assert!(all.contains(ph), "{ph} in {all}");
    }
    for secret in [
        nir1.as_str(),
        iban2.as_str(),
        "jean.dupont@exemple.fr",
        "06 12 34 56 78",
    ] {
        assert!(
            !all.contains(secret),
            "{secret} left in the redacted export"
        );
    }
    // The e-mail in `meta` is not text: it is kept.
    assert!(all.contains("pas.redigé@exemple.fr"));
    // With --fields: the projected text is the redacted one.
    let proj = export(&dir, "*", &["--redact-pii", "--fields", "id,text"]);
    for (line, r) in proj.iter().zip(&red) {
        let a: Value = serde_json::from_str(line).unwrap();
        let b: Value = serde_json::from_str(r).unwrap();
        assert_eq!(a["text"], b["text"]);
        assert_eq!(a["id"], b["id"]);
    }
}

// ---------------------------------------------------------------------------
// 6. schema and tag report

#[test]
fn schema_lists_each_signal_with_tagger_and_version() {
    let t = or_skip!(tagged());
    let o = ok(cmd(&t.dir).args(["schema", "--json"]));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let rows: HashMap<&str, &Value> = v["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["name"].as_str().unwrap(), r))
        .collect();
    let mut want: Vec<(String, &str, String)> = Vec::new();
    let lang_v = format!("{}[fr,en,de,es,it;2000]", language::VERSION);
    for c in ["lang_detected", "lang_score", "code_score"] {
        want.push((c.into(), "language", lang_v.clone()));
    }
    for c in quality::column_names() {
        want.push((c.to_string(), "quality", quality::VERSION.into()));
    }
    for k in pii::PiiKind::ALL {
        want.push((k.column().into(), "pii", pii::VERSION.into()));
    }
    for c in ["is_dup", "dup_of", "near_dup_cluster", "near_dup_rep"] {
        want.push((c.into(), "dedup", dedup::VERSION.into()));
    }
    if t.ocr {
        let v = format!("{}[fr,en,de,es,it]", ocr::VERSION);
        for c in ["ocr_dict_ratio", "ocr_window_agree", "ocr_noise"] {
            want.push((c.into(), "ocr", v.clone()));
        }
    }
    for (name, tagger, version) in &want {
        let r = rows
            .get(name.as_str())
            .unwrap_or_else(|| panic!("schema lacks {name}"));
        assert_eq!(r["tagger"], *tagger, "{name}");
        // The OCR version also names the detector's languages and the word lists' sizes.
        let got = r["signal_version"].as_str().unwrap();
        assert!(
            got == version || (*tagger == "ocr" && got.starts_with(&format!("{version}[det:"))),
            "{name}: {got} vs {version}"
        );
    }
    let signals = rows.values().filter(|r| r.get("tagger").is_some()).count();
    assert_eq!(signals, want.len(), "no other signal");
    for user in ["lang", "source", "license"] {
        assert!(rows[user].get("tagger").is_none(), "{user}");
    }
    assert_eq!(rows["is_dup"]["kind"], "bool");
    assert_eq!(rows["rps_doc_word_count"]["kind"], "number");
    assert_eq!(rows["lang_detected"]["kind"], "facet");
    assert_eq!(rows["is_dup"]["docs"], t.docs.len() as u64);
}

#[test]
fn query_export_and_get_print_signals() {
    let t = or_skip!(tagged());
    // --fields names signals, derived facets and `bytes` beside stored fields
    // (an unknown name is refused: tests/cli_guide.rs).
    let fields = "id,rps_doc_word_count,is_dup,lang_detected,license_class,bytes";
    let o = ok(cmd(&t.dir).args(["query", "*", "--fields", fields]));
    let rows: Vec<Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), t.docs.len());
    let by_id: HashMap<&str, &Value> = rows
        .iter()
        .map(|r| (r["id"].as_str().unwrap(), r))
        .collect();
    let want_words = word_counts(&t.docs);
    for (d, w) in t.docs.iter().zip(&want_words) {
        let r = by_id[d.id.as_str()];
        assert_eq!(r["bytes"].as_u64(), Some(d.text.len() as u64), "{}", d.id);
        match w {
            Some(w) => assert_eq!(r["rps_doc_word_count"].as_f64(), Some(*w), "{}", d.id),
            None => assert!(r.get("rps_doc_word_count").is_none(), "{r}"),
        }
        assert!(r["is_dup"].is_boolean(), "{r}");
    }
    // The printed values agree with the queries on the same columns.
    let tally = |f: &dyn Fn(&Value) -> bool| rows.iter().filter(|r| f(r)).count() as u64;
    assert_eq!(
        tally(&|r| r["rps_doc_word_count"].as_f64().is_some_and(|x| x >= 50.0)),
        count(&t.dir, "rps_doc_word_count >= 50")
    );
    assert_eq!(
        tally(&|r| r["is_dup"] == true),
        count(&t.dir, "is_dup = true")
    );
    for (field, values) in [
        ("lang_detected", ["fr", "en", "und"]),
        ("license_class", ["public-domain", "share-alike", "unknown"]),
    ] {
        for v in values {
            assert_eq!(
                tally(&|r| r[field] == v),
                count(&t.dir, &format!("{field} = {v}")),
                "{field} = {v}"
            );
        }
    }

    // --signals: the record exactly as ingested, then every derived column.
    let lines = export(&t.dir, "*", &["--signals"]);
    let plain = export(&t.dir, "*", &[]);
    assert_eq!(lines.len(), plain.len());
    let schema: Value =
        serde_json::from_str(&stdout(&ok(cmd(&t.dir).args(["schema", "--json"])))).unwrap();
    let signal_names: BTreeSet<&str> = schema["fields"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r.get("tagger").is_some())
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    for (with, without) in lines.iter().zip(&plain) {
        let stored = without.strip_suffix('}').unwrap();
        assert!(with.starts_with(stored), "{with}");
        let rest = &with[stored.len()..];
        assert!(rest.starts_with(",\"license_id\":"), "{rest}");
        let v: Value = serde_json::from_str(with).unwrap();
        let extra: Vec<&str> = v
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .filter(|k| !without.contains(&format!("\"{k}\":")))
            .collect();
        for k in &extra {
            assert!(
                signal_names.contains(k) || *k == "license_id" || *k == "license_class",
                "{k} is neither a signal nor a derived facet"
            );
        }
        assert!(
            extra.contains(&"lang_detected") && extra.contains(&"is_dup"),
            "{with}"
        );
    }
    // get --signals prints the same line as export --signals.
    let first: Value = serde_json::from_str(&lines[0]).unwrap();
    let key = first["id"].as_str().unwrap();
    let o = ok(cmd(&t.dir).args(["get", key, "--signals"]));
    assert_eq!(stdout(&o).trim_end(), lines[0]);
    // Without --signals, the record as stored; an unknown key exits 1.
    let o = ok(cmd(&t.dir).args(["get", key]));
    assert_eq!(stdout(&o).trim_end(), plain[0]);
    let o = run(cmd(&t.dir).args(["get", "no/such/key", "--signals"]));
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no document with key `no/such/key`"));
}

/// Linearly interpolated quantile of sorted values.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

#[test]
fn tag_report_quantiles_and_thresholds() {
    let t = or_skip!(tagged());
    let o = ok(cmd(&t.dir).args(["tag", "report", "--json", "--sources", "3"]));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let sigs: Vec<&Value> = v["signals"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["name"] == "rps_doc_word_count")
        .collect();
    assert_eq!(sigs.len(), 4, "all documents and the 3 largest sources");
    let wc = word_counts(&t.docs);
    for s in &sigs {
        let source = s["source"].as_str();
        let mut vals: Vec<f64> = t
            .docs
            .iter()
            .zip(&wc)
            .filter(|(d, _)| source.is_none() || d.source.as_deref() == source)
            .filter_map(|(_, w)| *w)
            .collect();
        vals.sort_by(f64::total_cmp);
        assert!(vals.len() > 50, "{source:?}");
        assert_eq!(s["tagged"], vals.len() as u64, "{source:?}");
        assert_eq!(s["version"], quality::VERSION);
        let qs = s["quantiles"].as_array().unwrap();
        assert!(qs.len() >= 5, "{s}");
        for pair in qs {
            let (q, x) = (pair[0].as_f64().unwrap(), pair[1].as_f64().unwrap());
            let want = quantile(&vals, q);
            assert!(
                (x - want).abs() <= 1e-9 * want.abs().max(1.0),
                "{source:?} q{q}: {x} vs {want}"
            );
        }
        let th = s["thresholds"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["rule"] == "rps_doc_word_count < 50")
            .unwrap_or_else(|| panic!("no `< 50` rule: {s}"));
        let q = match source {
            None => "rps_doc_word_count < 50".to_string(),
            Some(src) => format!("rps_doc_word_count < 50 and source = \"{src}\""),
        };
        let removed = count(&t.dir, &q);
        assert!(removed > 0, "{q}");
        assert_eq!(th["removed_docs"], removed, "{q}");
        assert_eq!(
            removed,
            vals.iter().filter(|&&x| x < 50.0).count() as u64,
            "{q}"
        );
    }
    // Bool signals are summarized as 0/1: the mean of is_dup is the share of duplicates.
    let dup = v["signals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "is_dup" && s["source"].is_null())
        .expect("is_dup summary");
    assert_eq!(dup["tagged"], t.docs.len() as u64);
}

// ---------------------------------------------------------------------------
// 7. Crashes and corruption

/// Column `name`'s blob in the sidecar at `path`: (offset, len).
fn column_span(path: &Path, name: &str) -> (u64, u64) {
    let sc = corpusql::raw::segment::sidecar::Sidecar::open(path, Vec::new()).unwrap();
    let (meta, _) = sc.meta().unwrap();
    let c = meta
        .columns
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("{} lacks {name}", path.display()));
    (c.offset, c.len)
}

fn files_matching(dir: &Path, f: impl Fn(&str) -> bool) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| f(n))
        .collect();
    v.sort();
    v
}

#[test]
fn stray_sidecars_and_dedup_work_dirs_are_collected() {
    let t = or_skip!(tagged());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("copy");
    common::copy_corpus(&t.dir, &dir);
    let n = t.docs.len() as u64;
    let fr = count(&t.dir, "lang_detected = fr");
    let segs = files_matching(&dir, |f| f.ends_with(".cqs"));
    let stem = segs[0].split('.').next().unwrap().to_string();
    let stray = dir.join(format!("{stem}.tag-quality-99.cqt"));
    let stray_tmp = dir.join(format!("{stem}.tag-pii-98.cqt.tmp"));
    let work = dir.join("dedup.tmp.d");
    let plant = || {
        std::fs::write(&stray, b"CQLTAG01 half-written sidecar").unwrap();
        std::fs::write(&stray_tmp, b"CQLTAG01").unwrap();
        std::fs::create_dir_all(&work).unwrap();
        std::fs::write(work.join("run-0000.bin"), vec![7u8; 4096]).unwrap();
    };
    plant();
    // Readers do not mind.
    assert_eq!(count(&dir, "*"), n);
    assert_eq!(count(&dir, "lang_detected = fr"), fr);
    assert_eq!(
        count(&dir, "rps_doc_word_count >= 0"),
        count(&t.dir, "rps_doc_word_count >= 0")
    );
    // A tagging run that commits removes the strays; a dedup run its work folder.
    plant();
    let out = tag(&dir, &["--taggers", "pii,dedup", "--force"]);
    assert!(out.contains("-> generation 3"), "{out}");
    assert!(!stray.exists(), "{} left behind", stray.display());
    assert!(!stray_tmp.exists(), "{} left behind", stray_tmp.display());
    assert!(!work.exists(), "{} left behind", work.display());
    // Superseded sidecars of the forced taggers are gone too; one per tagger remains.
    for tagger in ["pii", "dedup", "quality", "language"] {
        let n_files = files_matching(&dir, |f| f.contains(&format!(".tag-{tagger}-"))).len();
        assert_eq!(n_files, segs.len(), "{tagger} sidecars");
    }
    assert_eq!(count(&dir, "is_dup = true"), count(&t.dir, "is_dup = true"));
    assert_eq!(count(&dir, "pii_email > 0"), count(&t.dir, "pii_email > 0"));
    let dups = ok(cmd(&dir).args(["verify"]));
    assert!(
        stdout(&dups).contains("all checksums match"),
        "{}",
        stdout(&dups)
    );
}

#[test]
fn corrupt_sidecar_fails_the_queries_that_read_it() {
    let t = or_skip!(tagged());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("copy");
    common::copy_corpus(&t.dir, &dir);
    let files = files_matching(&dir, |f| f.contains(".tag-quality-"));
    let victim = dir.join(&files[0]);
    let (off, len) = column_span(&victim, "rps_doc_word_count");
    let mut bytes = std::fs::read(&victim).unwrap();
    bytes[(off + len / 2) as usize] ^= 0x5a;
    std::fs::write(&victim, &bytes).unwrap();
    let err = fails(cmd(&dir).args(["count", "rps_doc_word_count >= 50"]));
    assert!(err.contains(&files[0]), "the error names the file: {err}");
    assert!(err.contains("rps_doc_word_count"), "and the column: {err}");
    assert!(
        err.contains("corpusql tag --force --taggers quality"),
        "and the command that recomputes it: {err}"
    );
    let err = fails(cmd(&dir).args(["export", "rps_doc_word_count < 50", "--fields", "id"]));
    assert!(err.contains(&files[0]), "{err}");
    // Other signals, of that sidecar and of others, and stored fields still work.
    for q in [
        "lang = fr",
        "pii_email > 0",
        "lang_detected = fr and is_dup = false",
        "rps_doc_mean_word_length > 3",
    ] {
        assert_eq!(count(&dir, q), count(&t.dir, q), "{q}");
    }
    // verify names the file and exits 1.
    let o = run(cmd(&dir).args(["verify"]));
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let report = stdout(&o);
    assert!(
        report
            .lines()
            .any(|l| l.starts_with("FAILED") && l.contains(&files[0])),
        "{report}"
    );
    // Retagging with --force rewrites the sidecar.
    let out = tag(&dir, &["--taggers", "quality", "--force"]);
    assert_eq!(
        tagged_counts(&out),
        BTreeMap::from([("quality".to_string(), t.docs.len() as u64)]),
        "{out}"
    );
    let q = "rps_doc_word_count >= 50";
    assert_eq!(count(&dir, q), count(&t.dir, q), "{q}");
    assert!(!victim.exists(), "the damaged sidecar is collected");
    let o = ok(cmd(&dir).args(["verify"]));
    assert!(stdout(&o).contains("all checksums match"), "{}", stdout(&o));
}

#[test]
fn tagging_on_ingest_runs_the_saved_taggers_with_their_options() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("corpus");
    let file = |name: &str, docs: &[Doc]| {
        let p = tmp.path().join(name);
        write_jsonl(&p, docs);
        p
    };
    let fr = "Le chat dort sur le canapé du salon depuis ce matin, et personne ne le dérange.";
    let de = "Der Hund schläft im Garten unter dem großen Baum, und niemand stört ihn heute.";
    let mail = "Écrire à jean.dupont@exemple.fr pour toute question sur le dossier en cours.";
    ingest(&dir, &file("1.jsonl", &[Doc::new("a", fr, "fr")]));
    // Save language (restricted to fr, en) and pii as the ingest taggers.
    let out = tag(
        &dir,
        &[
            "--taggers",
            "language,pii",
            "--languages",
            "fr,en",
            "--on-ingest",
        ],
    );
    assert!(out.contains("ingest will run language,pii"), "{out}");
    assert!(dir.join("tagging.toml").exists());
    let schema = |dir: &Path| -> Value {
        serde_json::from_str(&stdout(&ok(cmd(dir).args(["schema", "--json"])))).unwrap()
    };
    assert_eq!(
        schema(&dir)["tag_on_ingest"],
        serde_json::json!(["language", "pii"])
    );
    // The next ingest tags the new documents with the saved options: German
    // is not among the saved languages, so `und`.
    ingest(&dir, &file("2.jsonl", &[Doc::new("b", de, "de")]));
    assert_eq!(count(&dir, "lang_detected = und"), 1);
    assert_eq!(count(&dir, "lang_detected = fr"), 1);
    assert_eq!(count(&dir, "pii_email = 0"), 2);
    // --no-tag skips them; --tag LIST runs LIST with the saved options.
    ok(cmd(&dir)
        .args(["ingest", "-q", "--no-tag"])
        .arg(file("3.jsonl", &[Doc::new("c", mail, "fr")])));
    assert_eq!(count(&dir, "pii_email exists"), 2);
    let o = ok(cmd(&dir)
        .args(["ingest", "-q", "--tag", "pii", "--json"])
        .arg(file("4.jsonl", &[Doc::new("d", de, "de")])));
    let j: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(j["tagged"][0]["tagger"], "pii", "{j}");
    assert_eq!(j["tagged"][0]["docs"], 2, "d and the untagged c: {j}");
    assert_eq!(j["tag_generation"], j["generation"].as_u64().unwrap() + 1);
    assert_eq!(
        count(&dir, "pii_email exists"),
        4,
        "pii caught up, c included"
    );
    assert_eq!(count(&dir, "pii_email = 1"), 1);
    assert_eq!(
        count(&dir, "lang_detected exists"),
        2,
        "language was not in --tag"
    );
    // Stopping removes the settings: the next ingest tags nothing.
    let out = stdout(&ok(cmd(&dir).args(["tag", "--stop-on-ingest"])));
    assert!(out.contains("no longer tags"), "{out}");
    assert!(schema(&dir)["tag_on_ingest"].is_null());
    ingest(&dir, &file("5.jsonl", &[Doc::new("e", fr, "fr")]));
    assert_eq!(count(&dir, "pii_email exists"), 4);
    assert_eq!(count(&dir, "*"), 5);
    // A damaged settings file is an error naming it, not a silent skip.
    std::fs::write(dir.join("tagging.toml"), "taggers = [\"langage\"]\n").unwrap();
    let err = fails(
        cmd(&dir)
            .args(["ingest", "-q"])
            .arg(file("6.jsonl", &[Doc::new("f", fr, "fr")])),
    );
    assert!(err.contains("tagging.toml"), "{err}");
    assert_eq!(count(&dir, "*"), 5, "nothing was ingested");
}

// ---------------------------------------------------------------------------
// 8. Name clashes and word lists

#[test]
fn user_field_named_like_a_signal_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("a.jsonl");
    let docs = [
        Doc::new(
            "a",
            "Bonjour tout le monde, ceci est un texte en français.",
            "fr",
        ),
        Doc::new("b", "Hello world, this is a text written in English.", "en"),
    ];
    let mut s = String::new();
    for (i, d) in docs.iter().enumerate() {
        let mut v: Value = serde_json::from_str(&d.line).unwrap();
        v["lang_score"] = (0.25 * i as f64).into();
        s.push_str(&v.to_string());
        s.push('\n');
    }
    std::fs::write(&f, s).unwrap();
    let dir = tmp.path().join("corpus");
    ingest(&dir, &f);
    let err = fails(cmd(&dir).args(["tag", "--taggers", "language", "-q"]));
    assert!(err.contains("`lang_score`"), "names the field: {err}");
    assert!(err.contains("language"), "names the tagger: {err}");
    let err = fails(cmd(&dir).args(["tag", "--taggers", "all", "-q"]));
    assert!(err.contains("`lang_score`"), "{err}");
    // Nothing was committed; the user's field is intact; other taggers run.
    assert_eq!(count(&dir, "lang_score = 0.25"), 1);
    assert!(files_matching(&dir, |f| f.ends_with(".cqt")).is_empty());
    let out = tag(&dir, &["--taggers", "pii"]);
    assert_eq!(
        tagged_counts(&out),
        BTreeMap::from([("pii".to_string(), 2)])
    );
}

/// A field ingested after tagging must not silently mix with a signal of
/// the same name: the record is rejected, naming the field.
#[test]
fn ingest_refuses_a_field_named_like_a_signal() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a.jsonl"), tmp.path().join("b.jsonl"));
    write_jsonl(
        &a,
        &[Doc::new(
            "a",
            "Bonjour tout le monde, ceci est un texte en français.",
            "fr",
        )],
    );
    std::fs::write(
        &b,
        "{\"id\":\"b\",\"text\":\"Un autre texte.\",\"lang\":\"fr\",\"lang_score\":0.1}\n",
    )
    .unwrap();
    let dir = tmp.path().join("corpus");
    ingest(&dir, &a);
    tag(&dir, &["--taggers", "language"]);
    // The record is rejected (exit 1, like any bad record), naming the field.
    let o = run(cmd(&dir).args(["ingest", "-q"]).arg(&b));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("lang_score") && err.contains("signal"),
        "{err}"
    );
}

#[test]
fn toxicity_needs_lists_and_counts_like_the_library() {
    let mut docs = or_skip!(sample(|i| i % 96 == 41));
    docs.push(Doc::new(
        "t/1",
        "Ce fichier est un FICHIER ; le mot de passe du fichier.",
        "fr",
    ));
    docs.push(Doc::new(
        "t/2",
        "Open the file from the command line, then the file menu.",
        "en",
    ));
    docs.push(Doc::new(
        "t/3",
        "Fichiers et file : mélange de langues, mot de passe.",
        "xx",
    ));
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("docs.jsonl");
    write_jsonl(&f, &docs);
    let dir = tmp.path().join("corpus");
    ingest(&dir, &f);
    // Missing lists: clear errors, nothing written.
    let err = fails(cmd(&dir).args(["tag", "--taggers", "toxicity", "-q"]));
    assert!(err.contains("--toxicity-lists"), "{err}");
    let missing = tmp.path().join("no-such-lists");
    let err = fails(
        cmd(&dir)
            .args(["tag", "--taggers", "toxicity", "-q", "--toxicity-lists"])
            .arg(&missing),
    );
    assert!(err.contains(&missing.display().to_string()), "{err}");
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    std::fs::write(empty.join("README.md"), "lists go here\n").unwrap();
    let err = fails(
        cmd(&dir)
            .args(["tag", "--taggers", "toxicity", "-q", "--toxicity-lists"])
            .arg(&empty),
    );
    assert!(err.contains("no word lists"), "{err}");
    assert!(files_matching(&dir, |f| f.ends_with(".cqt")).is_empty());
    // A tiny list.
    let lists = tmp.path().join("lists");
    std::fs::create_dir(&lists).unwrap();
    std::fs::write(
        lists.join("fr"),
        "# test list\nfichier\nmot de passe\ndossier\n",
    )
    .unwrap();
    std::fs::write(lists.join("en"), "file\ncommand line\nfolder\n").unwrap();
    std::fs::write(lists.join("en.allow"), "file menu\n").unwrap();
    let out = stdout(&ok(cmd(&dir)
        .args(["tag", "--taggers", "toxicity", "-q", "--toxicity-lists"])
        .arg(&lists)));
    assert_eq!(
        tagged_counts(&out),
        BTreeMap::from([("toxicity".to_string(), docs.len() as u64)]),
        "{out}"
    );
    let wl = toxicity::WordLists::load(&lists).unwrap();
    let got: Vec<u32> = docs
        .iter()
        .map(|d| wl.count(&d.text, d.lang.as_deref()))
        .collect();
    assert_eq!(
        got[docs.len() - 3],
        4,
        "fr: fichier, FICHIER, mot de passe, fichier - {got:?}"
    );
    assert!(got.iter().filter(|&&c| c > 0).count() > 5, "{got:?}");
    for th in [1u32, 2, 3, 5, 10, 20] {
        let want: BTreeSet<String> = docs
            .iter()
            .zip(&got)
            .filter(|(_, &c)| c >= th)
            .map(|(d, _)| d.id.clone())
            .collect();
        let q = format!("toxicity_matches >= {th}");
        assert_eq!(ids(&dir, &q), want, "{q}");
    }
    let zero = got.iter().filter(|&&c| c == 0).count() as u64;
    assert_eq!(count(&dir, "toxicity_matches = 0"), zero);
    // The lists are part of the version: changing them retags everything.
    std::fs::write(lists.join("fr"), "fichier\n").unwrap();
    let out = stdout(&ok(cmd(&dir)
        .args(["tag", "--taggers", "toxicity", "-q", "--toxicity-lists"])
        .arg(&lists)));
    assert_eq!(
        tagged_counts(&out),
        BTreeMap::from([("toxicity".to_string(), docs.len() as u64)]),
        "{out}"
    );
    let wl = toxicity::WordLists::load(&lists).unwrap();
    let want = docs
        .iter()
        .filter(|d| wl.count(&d.text, d.lang.as_deref()) >= 2)
        .count() as u64;
    assert_eq!(count(&dir, "toxicity_matches >= 2"), want);
}
