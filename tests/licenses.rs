//! Traceable licenses on the real dev corpus: the derived `license_id` and
//! `license_class` facets against the truth file's license table, policy
//! refusals and overrides through the CLI (export, stream, stats, mix
//! plan), the withdrawal diff of `report` after a delete with the stream
//! order of the remaining documents unchanged, and the datasheet rendered
//! in headless Chromium. Without `../shared/data` every test prints
//! `SKIPPED` and passes.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use common::{copy_corpus, count, shared_file};
use corpusql::raw::license::{class_of, normalize, UNKNOWN};
use corpusql::{ingest, Corpus, IngestOptions, Input};
use serde_json::Value;

struct Fixture {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    truth: Value,
}

fn fixture() -> Option<&'static Fixture> {
    static F: OnceLock<Option<Fixture>> = OnceLock::new();
    F.get_or_init(|| {
        let corpus_file = shared_file("realcorpus-dev.jsonl.zst")?;
        let truth: Value = serde_json::from_slice(
            &std::fs::read(shared_file("realcorpus-dev.truth.json")?).unwrap(),
        )
        .unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("corpus");
        let opts = IngestOptions {
            segment_bytes: 64 << 20,
            ..IngestOptions::default()
        };
        ingest(&dir, vec![Input::Path(corpus_file)], &opts).unwrap();
        Some(Fixture {
            _tmp: tmp,
            dir,
            truth,
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

fn private_copy(f: &Fixture) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("corpus");
    copy_corpus(&f.dir, &dir);
    (tmp, dir)
}

fn cli(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_corpusql"))
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .expect("running corpusql")
}

fn cli_ok(dir: &Path, args: &[&str]) -> Output {
    let out = cli(dir, args);
    assert!(
        out.status.success(),
        "corpusql {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Documents per value of a facet in the corpus (first value per document).
fn facet_counts(dir: &Path, field: &str) -> BTreeMap<String, u64> {
    let c = Corpus::open(dir).unwrap();
    let mut out = BTreeMap::new();
    for s in c.segments() {
        let (groups, _) = s.segment.split_by_values(field, &s.live, true).unwrap();
        for (v, bm) in groups {
            *out.entry(v).or_default() += bm.len();
        }
    }
    out
}

#[test]
fn derived_license_facets_match_the_truth_files_license_table() {
    let f = fixture_or_skip!();
    // Expected: the truth file's documents per `license` value, mapped
    // through the alias table and the class table here, independently of
    // the segment overlay.
    let mut ids: BTreeMap<String, u64> = BTreeMap::new();
    let mut classes: BTreeMap<String, u64> = BTreeMap::new();
    let mut total = 0;
    for (lic, v) in f.truth["by_license"].as_object().unwrap() {
        let n = v["docs"].as_u64().unwrap();
        total += n;
        let id = normalize(lic).unwrap_or_else(|| UNKNOWN.to_string());
        if lic != UNKNOWN {
            assert_ne!(id, UNKNOWN, "the real corpus's `{lic}` is not recognized");
        }
        *classes
            .entry(class_of(&id).as_str().to_string())
            .or_default() += n;
        *ids.entry(id).or_default() += n;
    }
    assert_eq!(total, 35_247);
    assert_eq!(facet_counts(&f.dir, "license_id"), ids);
    assert_eq!(facet_counts(&f.dir, "license_class"), classes);
    // Every document has exactly one class.
    assert_eq!(classes.values().sum::<u64>(), total);
    // The query, as a query.
    let c = Corpus::open(&f.dir).unwrap();
    let open: u64 = ["public-domain", "permissive", "attribution"]
        .iter()
        .map(|k| classes.get(*k).copied().unwrap_or(0))
        .sum();
    assert!(open > 5_000, "{classes:?}");
    assert_eq!(
        count(
            &c,
            "license_class in (public-domain, permissive, attribution)"
        ),
        open
    );
    // `license_id` of a compound expression answers for its dataset form.
    assert_eq!(
        count(&c, "license_id = \"apache-2.0 or mit\""),
        f.truth["by_license"]["apache-2.0_or_mit"]["docs"]
            .as_u64()
            .unwrap()
    );
    // The user's own field is untouched.
    assert_eq!(
        count(&c, "license = apache-2.0_or_mit"),
        f.truth["by_license"]["apache-2.0_or_mit"]["docs"]
            .as_u64()
            .unwrap()
    );
    // stats --by license_class shows the same numbers.
    let out = cli_ok(&f.dir, &["stats", "--by", "license_class", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let groups = v["groups"].as_array().unwrap();
    for g in groups {
        let k = g["values"][0].as_str().unwrap();
        assert_eq!(g["docs"].as_u64().unwrap(), classes[k], "{k}");
    }
}

/// Texts of a stream of `query` (bytes tokenizer, one token per sequence,
/// so nothing is cut), in stream order.
/// The documents a query stream emits, in the stream's document order:
/// the sequences (of one token each) put back in the component's own order
/// with `--provenance` (the stream shuffles sequences within windows).
fn streamed_texts(dir: &Path, query: &str, extra: &[&str]) -> Vec<String> {
    let out = tempfile::NamedTempFile::new().unwrap();
    let prov = tempfile::NamedTempFile::new().unwrap();
    let mut args = vec![
        "stream",
        query,
        "--seq-len",
        "1",
        "--seed",
        "5",
        "--format",
        "u16",
        "-o",
        out.path().to_str().unwrap(),
        "--provenance",
        prov.path().to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    cli_ok(dir, &args);
    let b = std::fs::read(out.path()).unwrap();
    let order: Vec<u64> = std::fs::read_to_string(prov.path())
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["component_sequence"].as_u64().unwrap()
        })
        .collect();
    let mut tokens: Vec<(u64, u16)> = b
        .chunks_exact(2)
        .zip(&order)
        .map(|(c, &j)| (j, u16::from_le_bytes([c[0], c[1]])))
        .collect();
    assert_eq!(tokens.len(), order.len());
    tokens.sort_unstable();
    let mut docs = Vec::new();
    let mut cur = Vec::new();
    for (_, t) in tokens {
        if t == 256 {
            docs.push(String::from_utf8(std::mem::take(&mut cur)).unwrap());
        } else {
            cur.push(t as u8);
        }
    }
    assert!(cur.is_empty());
    docs
}

fn multiset<'a>(v: impl IntoIterator<Item = &'a String>) -> HashMap<&'a str, u64> {
    let mut m = HashMap::new();
    for s in v {
        *m.entry(s.as_str()).or_default() += 1;
    }
    m
}

fn texts_of(dir: &Path, q: &str) -> Vec<String> {
    let c = Corpus::open(dir).unwrap();
    c.query(q)
        .unwrap()
        .documents()
        .map(|d| d.unwrap().text)
        .collect()
}

#[test]
fn a_policy_holds_back_disallowed_classes_until_overridden() {
    let f = fixture_or_skip!();
    let (_t, dir) = private_copy(f);
    let q = "lang=it";
    let c = Corpus::open(&dir).unwrap();
    let all = count(&c, q);
    let allowed_q = format!("{q} and license_class in (public-domain, permissive, share-alike)");
    let allowed = count(&c, &allowed_q);
    assert!(allowed > 0 && allowed < all, "{allowed} of {all}");
    // No policy: nothing changes.
    let out = cli_ok(&dir, &["export", q]);
    assert_eq!(
        out.stdout
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .count() as u64,
        all
    );
    let out = cli_ok(
        &dir,
        &[
            "policy",
            "allow",
            "public-domain,permissive,share-alike",
            "--note",
            "test",
        ],
    );
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.contains("held back: attribution, copyleft"),
        "{shown}"
    );
    // export: only allowed documents, and stderr says what was held back.
    let out = cli_ok(&dir, &["export", q]);
    let lines: Vec<Value> = out
        .stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(lines.len() as u64, allowed);
    for l in &lines {
        let lic = l["license"].as_str().unwrap();
        let class = class_of(&normalize(lic).unwrap_or_else(|| UNKNOWN.into()));
        assert!(
            ["public-domain", "permissive", "share-alike"].contains(&class.as_str()),
            "{lic} exported"
        );
    }
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{} documents", all - allowed)) && err.contains("held back"),
        "{err}"
    );
    // The held-back licenses are named with their classes.
    let held_q = format!("{q} and not license_class in (public-domain, permissive, share-alike)");
    let sel = c.query(&held_q).unwrap();
    let held_ids: Vec<String> = sel
        .documents()
        .map(|d| {
            let v: Value = serde_json::from_slice(&d.unwrap().json).unwrap();
            normalize(v["license"].as_str().unwrap()).unwrap_or_else(|| UNKNOWN.into())
        })
        .collect();
    let top = held_ids
        .iter()
        .max_by_key(|id| held_ids.iter().filter(|x| x == id).count())
        .unwrap();
    assert!(err.contains(top.as_str()), "{top} missing from {err}");
    // --override-policy: everything, said loudly.
    let out = cli_ok(&dir, &["export", q, "--override-policy"]);
    assert_eq!(
        out.stdout
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .count() as u64,
        all
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("--override-policy"));
    // stream: the same documents as the allowed selection.
    let streamed = streamed_texts(&dir, q, &[]);
    assert_eq!(multiset(&streamed), multiset(&texts_of(&dir, &allowed_q)));
    let streamed = streamed_texts(&dir, q, &["--override-policy"]);
    assert_eq!(streamed.len() as u64, all);
    // stats and mix plan tell what the policy would hold back.
    let out = cli_ok(&dir, &["stats", q]);
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("{} documents", all - allowed)));
    let out = cli_ok(&dir, &["mix", "plan", q, "--json"]);
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["components"][0]["docs"].as_u64().unwrap(), allowed);
    assert!(String::from_utf8_lossy(&out.stderr).contains("held back"));
    // A bad class name is refused with the list of classes.
    let out = cli(&dir, &["policy", "allow", "permisive"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("public-domain"));
    // allow-all removes the policy.
    cli_ok(&dir, &["policy", "allow-all"]);
    assert_eq!(streamed_texts(&dir, q, &[]).len() as u64, all);
}

#[test]
fn withdrawal_is_reported_and_the_rest_keeps_its_order() {
    let f = fixture_or_skip!();
    let (_t, dir) = private_copy(f);
    let q = "lang in (fr, it)";
    let before = streamed_texts(&dir, q, &[]);
    let gone_source = "libreoffice-help";
    let withdrawn_q = format!("({q}) and source = {gone_source}");
    let gone = texts_of(&dir, &withdrawn_q);
    assert!(!gone.is_empty());
    let c = Corpus::open(&dir).unwrap();
    let all_gone = count(&c, &format!("source = {gone_source}"));
    assert_eq!(
        all_gone,
        f.truth["by_source"][gone_source]["docs"].as_u64().unwrap()
    );
    let gen_before = c.generation();
    let out = cli_ok(&dir, &["delete", &format!("source = {gone_source}")]);
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("deleted {all_gone}")));
    // The report on the whole corpus: the source is gone, by license too.
    let out = cli_ok(&dir, &["report", "--json"]);
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let w = &r["withdrawal"];
    assert_eq!(w["from_generation"].as_u64().unwrap(), gen_before);
    assert_eq!(w["to_generation"].as_u64().unwrap(), gen_before + 1);
    let docs = |v: &Value| v["docs"].as_u64().unwrap();
    assert_eq!(docs(&w["before"]) - docs(&w["after"]), all_gone);
    assert_eq!(docs(&w["after"]), 35_247 - all_gone);
    let src = w["by_source"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["value"] == gone_source)
        .unwrap();
    assert_eq!(docs(&src["before"]), all_gone);
    assert_eq!(docs(&src["after"]), 0);
    assert_eq!(
        src["before"]["bytes"].as_u64().unwrap(),
        f.truth["by_source"][gone_source]["bytes"].as_u64().unwrap()
    );
    let lic_removed: u64 = w["by_license"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| docs(&x["before"]) - docs(&x["after"]))
        .sum();
    assert_eq!(lic_removed, all_gone);
    // Tokens of the byte tokenizer: bytes plus one end-of-document each.
    let tok = |v: &Value| v["tokens"].as_u64().unwrap();
    assert_eq!(
        tok(&w["before"]) - tok(&w["after"]),
        src["before"]["bytes"].as_u64().unwrap() + all_gone
    );
    // A report on a query counts only that query's withdrawn documents.
    let out = cli_ok(&dir, &["report", q, "--json"]);
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let w = &r["withdrawal"];
    assert_eq!(docs(&w["before"]) - docs(&w["after"]), gone.len() as u64);
    // Same mixture, same seed: the remaining documents in the same order.
    let after = streamed_texts(&dir, q, &[]);
    let gone_set: HashMap<&str, u64> = multiset(&gone);
    let expect: Vec<&String> = before
        .iter()
        .filter(|t| !gone_set.contains_key(t.as_str()))
        .collect();
    let after: Vec<&String> = after
        .iter()
        .filter(|t| !gone_set.contains_key(t.as_str()))
        .collect();
    assert_eq!(after.len(), expect.len());
    assert!(after == expect, "the remaining documents were reordered");
    // Markdown shows the same section.
    let md = String::from_utf8(cli_ok(&dir, &["report"]).stdout).unwrap();
    assert!(
        md.contains("Withdrawal") && md.contains(gone_source),
        "{md}"
    );
    // The withdrawal log: the delete, its query and what it withdrew from
    // the whole corpus, whatever the report's selection.
    let log_of = |args: &[&str]| -> Value {
        let out = cli_ok(&dir, args);
        let r: Value = serde_json::from_slice(&out.stdout).unwrap();
        let log = r["withdrawal_log"].as_array().unwrap().clone();
        assert_eq!(log.len(), 1, "{r}");
        log[0].clone()
    };
    let check = |e: &Value, compacted: bool| {
        assert_eq!(e["generation"].as_u64().unwrap(), gen_before + 1);
        assert_eq!(e["query"], format!("source = {gone_source}"));
        assert_eq!(docs(&e["withdrawn"]), all_gone);
        assert_eq!(
            e["withdrawn"]["bytes"].as_u64().unwrap(),
            f.truth["by_source"][gone_source]["bytes"].as_u64().unwrap()
        );
        let by_source = e["by_source"].as_array().unwrap();
        assert_eq!(by_source.len(), 1);
        assert_eq!(by_source[0]["value"], gone_source);
        let lic: u64 = e["by_license"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| docs(&x["counts"]))
            .sum();
        assert_eq!(lic, all_gone);
        assert_eq!(e["compacted"], compacted);
    };
    check(&log_of(&["report", "--json"]), false);
    check(&log_of(&["report", q, "--json"]), false);
    // After compact the documents are gone from the files: no before/after
    // comparison any more, the log entry stays.
    cli_ok(&dir, &["compact"]);
    let out = cli_ok(&dir, &["report", "--json"]);
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(r["withdrawal"].is_null(), "{}", r["withdrawal"]);
    check(&log_of(&["report", "--json"]), true);
    let md = String::from_utf8(cli_ok(&dir, &["report"]).stdout).unwrap();
    assert!(
        md.contains("## Withdrawal log") && md.contains("dropped by compact"),
        "{md}"
    );
    // --since after the delete leaves it out.
    let out = cli_ok(
        &dir,
        &["report", "--json", "--since", &(gen_before + 1).to_string()],
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(r["withdrawal_log"].as_array().unwrap().is_empty());
}

#[test]
fn the_datasheet_renders_in_chromium() {
    let f = fixture_or_skip!();
    const CHROMIUM: &str = "/usr/bin/chromium";
    let (_t, dir) = private_copy(f);
    // Attribution strings given at ingest show up in the attribution list.
    let extra = dir.parent().unwrap().join("extra.jsonl");
    std::fs::write(
        &extra,
        "{\"id\":\"wiki/1\",\"text\":\"Bonjour <b>\",\"lang\":\"fr\",\"license\":\"CC BY 4.0\",\"source\":\"wiki\",\"attribution\":\"Wikipédia contributors <https://fr.wikipedia.org>\"}\n",
    )
    .unwrap();
    cli_ok(&dir, &["ingest", extra.to_str().unwrap()]);
    cli_ok(&dir, &["delete", "source = fortunes"]);
    let html = dir.parent().unwrap().join("report.html");
    cli_ok(&dir, &["report", "-o", html.to_str().unwrap()]);
    let md = std::fs::read_to_string(html.with_extension("md")).unwrap();
    let js: Value =
        serde_json::from_slice(&std::fs::read(html.with_extension("json")).unwrap()).unwrap();
    let att = js["attributions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["source"] == "wiki")
        .expect("wiki attribution");
    assert_eq!(att["license_id"], "cc-by-4.0");
    assert_eq!(
        att["attributions"][0],
        "Wikipédia contributors <https://fr.wikipedia.org>"
    );
    assert!(md.contains("Wikipédia contributors"));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(!page.contains("<https://fr"), "attribution not escaped");
    if !Path::new(CHROMIUM).exists() {
        if std::env::var("CORPUSQL_SKIP_BROWSER").as_deref() == Ok("1") {
            eprintln!("note: CORPUSQL_SKIP_BROWSER=1 and no {CHROMIUM}: skipping");
            return;
        }
        panic!("{CHROMIUM} is missing: install Debian's `chromium` package (.ci/run does)");
    }
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1200,3000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", html.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        dom.contains("data-rendered=\"1\""),
        "the page script did not run"
    );
    assert!(
        dom.contains("data-clipped=\"\""),
        "chart content outside its box"
    );
    for id in [
        "totals",
        "license_id",
        "license_class",
        "source",
        "lang",
        "attributions",
        "ingest-log",
        "withdrawal",
        "policy",
    ] {
        assert!(
            dom.contains(&format!("id=\"{id}\"")),
            "section {id} missing"
        );
    }
    // The rendered numbers are the corpus's.
    let live = 35_247 - 55 + 1;
    assert!(
        dom.contains(&format!("{},{:03}", live / 1000, live % 1000)),
        "total {live} not shown"
    );
    assert!(dom.contains("cc-by-sa-3.0") && dom.contains("fortunes"));
}
