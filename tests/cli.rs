//! The `corpusql` binary's contracts, driven with `std::process::Command`:
//! what each subcommand prints on stdout (so that scripts can rely on it),
//! exit codes, error messages on stderr, and the corpus they leave behind.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_corpusql");
const LANGS: [&str; 4] = ["fr", "en", "de", "es"];
const LICENSES: [&str; 3] = ["pd", "cc-by-4.0", "mit"];

/// 40 records: lang, license, year on even ids, meta on every fifth.
fn sample_jsonl() -> String {
    let mut s = String::new();
    for i in 0..40 {
        let mut rec = serde_json::Map::new();
        rec.insert("id".into(), format!("doc/{i:02}").into());
        rec.insert("lang".into(), LANGS[i % 4].into());
        rec.insert("license".into(), LICENSES[i % 3].into());
        if i.is_multiple_of(2) {
            rec.insert("year".into(), (1900 + i).into());
        }
        if i.is_multiple_of(5) {
            rec.insert("meta".into(), serde_json::json!({"n": i, "tags": ["a", 1]}));
        }
        rec.insert(
            "text".into(),
            format!("Document {i}: {}", "mot ".repeat(i + 1)).into(),
        );
        s.push_str(&Value::Object(rec).to_string());
        s.push('\n');
    }
    s
}

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

struct Fixture {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    jsonl: PathBuf,
}

/// A fresh corpus built by `corpusql ingest` from `sample_jsonl()`.
fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let jsonl = tmp.path().join("sample.jsonl");
    std::fs::write(&jsonl, sample_jsonl()).unwrap();
    let dir = tmp.path().join("corpus");
    let o = ok(cmd(&dir).args(["ingest", "-q", "--json"]).arg(&jsonl));
    let v: Value = serde_json::from_str(&stdout(&o)).expect("ingest --json is JSON");
    assert_eq!(v["ingested"], 40);
    assert_eq!(v["rejected"], 0);
    assert_eq!(v["generation"], 1);
    Fixture {
        _tmp: tmp,
        dir,
        jsonl,
    }
}

fn count(dir: &Path, q: &str) -> u64 {
    let o = ok(cmd(dir).args(["count", q]));
    let s = stdout(&o);
    assert!(s.ends_with('\n') && s.lines().count() == 1, "count: {s:?}");
    s.trim_end()
        .parse()
        .unwrap_or_else(|_| panic!("count: {s:?}"))
}

#[test]
fn count_prints_exactly_one_integer_line() {
    let f = fixture();
    for (q, want) in [
        ("*", 40),
        ("lang=fr", 10),
        ("lang=fr and license=pd", 4),
        ("year exists", 20),
        ("year >= 1930", 5),
        ("meta exists", 8),
        ("not lang in (fr, en)", 20),
        ("lang=xx", 0),
    ] {
        let o = ok(cmd(&f.dir).args(["count", q]));
        assert_eq!(stdout(&o), format!("{want}\n"), "count {q}");
    }
    // A value nobody has: the count is still the only stdout line; the hint
    // goes to stderr.
    let o = ok(cmd(&f.dir).args(["count", "lang=frr"]));
    assert_eq!(stdout(&o), "0\n");
    assert!(stderr(&o).contains("did you mean `fr`"), "{}", stderr(&o));
}

#[test]
fn bare_query_is_query() {
    let f = fixture();
    let q = ok(cmd(&f.dir).args(["query", "lang=fr"]));
    let bare = ok(cmd(&f.dir).arg("lang=fr"));
    assert_eq!(bare.stdout, q.stdout);
    // -C after the bare query, and --threads before it.
    let after = ok(Command::new(BIN)
        .env_remove("CORPUSQL_DIR")
        .args(["--threads", "1", "lang=fr", "-C"])
        .arg(&f.dir));
    assert_eq!(after.stdout, q.stdout);
    let lines = common::parse_jsonl(&q.stdout);
    assert_eq!(lines.len(), 10);
    let input: Vec<Value> = common::parse_jsonl(sample_jsonl().as_bytes());
    for v in &lines {
        assert_eq!(v["lang"], "fr");
        let id = v["id"].as_str().unwrap();
        let want = input.iter().find(|x| x["id"] == id).unwrap();
        assert_eq!(v, want, "query prints whole records as ingested");
    }
    assert!(stdout(&q).ends_with('\n'));
}

#[test]
fn fields_restricts_keys_and_limit_truncates() {
    let f = fixture();
    let o = ok(cmd(&f.dir).args(["query", "*", "--fields", "id,lang,year"]));
    let recs = common::parse_jsonl(&o.stdout);
    assert_eq!(recs.len(), 40);
    for r in &recs {
        let keys: Vec<&str> = r.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        let id = r["id"].as_str().unwrap();
        let i: usize = id[4..].parse().unwrap();
        if i.is_multiple_of(2) {
            assert_eq!(keys, ["id", "lang", "year"], "{id}");
        } else {
            assert_eq!(keys, ["id", "lang"], "{id}: a missing field is left out");
        }
    }
    // In the order asked for, on the raw line.
    let first = stdout(&o).lines().next().unwrap().to_string();
    assert!(first.starts_with("{\"id\":"), "{first}");
    let o2 = ok(cmd(&f.dir).args(["query", "*", "--fields", "lang,id"]));
    assert!(stdout(&o2).lines().all(|l| l.starts_with("{\"lang\":")));

    let all = ok(cmd(&f.dir).args(["query", "lang=en"]));
    let lim = ok(cmd(&f.dir).args(["query", "lang=en", "--limit", "3"]));
    let all_lines: Vec<&str> = std::str::from_utf8(&all.stdout).unwrap().lines().collect();
    let lim_lines: Vec<&str> = std::str::from_utf8(&lim.stdout).unwrap().lines().collect();
    assert_eq!(lim_lines.len(), 3);
    assert_eq!(lim_lines, all_lines[..3]);
    let zero = ok(cmd(&f.dir).args(["query", "*", "--limit", "0"]));
    assert!(zero.stdout.is_empty());
    let big = ok(cmd(&f.dir).args(["query", "lang=en", "--limit", "1000"]));
    assert_eq!(big.stdout, all.stdout);
}

#[test]
fn get_prints_a_record_or_fails() {
    let f = fixture();
    let o = ok(cmd(&f.dir).args(["get", "doc/07"]));
    let s = stdout(&o);
    assert_eq!(s.lines().count(), 1);
    let v: Value = serde_json::from_str(&s).unwrap();
    assert_eq!(v["id"], "doc/07");
    assert_eq!(v["lang"], "es");
    let t = ok(cmd(&f.dir).args(["get", "doc/07", "--text"]));
    assert_eq!(stdout(&t), format!("{}\n", v["text"].as_str().unwrap()));

    let o = run(cmd(&f.dir).args(["get", "doc/99"]));
    assert!(!o.status.success());
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty(), "nothing on stdout: {}", stdout(&o));
    assert!(stderr(&o).contains("doc/99"), "{}", stderr(&o));
}

#[test]
fn stats_json_parses_and_sums_to_the_count() {
    let f = fixture();
    let o = ok(cmd(&f.dir).args(["stats", "--by", "lang,license", "--json"]));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["docs"], 40);
    assert_eq!(v["corpus_docs"], 40);
    assert_eq!(v["by"], serde_json::json!(["lang", "license"]));
    let groups = v["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 12, "4 langs x 3 licenses");
    let docs: u64 = groups.iter().map(|g| g["docs"].as_u64().unwrap()).sum();
    let bytes: u64 = groups.iter().map(|g| g["bytes"].as_u64().unwrap()).sum();
    assert_eq!(docs, count(&f.dir, "*"));
    assert_eq!(Some(bytes), v["bytes"].as_u64());
    let text_bytes: u64 = common::parse_jsonl(sample_jsonl().as_bytes())
        .iter()
        .map(|r| r["text"].as_str().unwrap().len() as u64)
        .sum();
    assert_eq!(bytes, text_bytes);
    for g in groups {
        let vals = g["values"].as_array().unwrap();
        let q = format!(
            "lang={} and license={}",
            vals[0].as_str().unwrap(),
            vals[1].as_str().unwrap()
        );
        assert_eq!(g["docs"].as_u64(), Some(count(&f.dir, &q)), "{q}");
    }
    // A query and a numeric field with missing values.
    let o = ok(cmd(&f.dir).args(["stats", "lang=fr", "--by", "year", "--json"]));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["docs"], 10);
    let groups = v["groups"].as_array().unwrap();
    // fr documents are ids 0, 4, 8, ...: all even, each with its own year.
    assert_eq!(groups.len(), 10);
    assert!(groups
        .iter()
        .all(|g| g["docs"] == 1 && g["values"][0].is_string()));
    assert_eq!(
        groups.iter().filter(|g| g["values"][0] == "1904").count(),
        1
    );
    // en documents are odd: no year, one group of documents lacking it.
    let o = ok(cmd(&f.dir).args(["stats", "lang=en", "--by", "year", "--json"]));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["groups"].as_array().unwrap().len(), 1);
    assert!(v["groups"][0]["values"][0].is_null());
    assert_eq!(v["groups"][0]["docs"], 10);
}

#[test]
fn schema_and_inspect_json() {
    let f = fixture();
    let o = ok(cmd(&f.dir).args(["schema", "--json"]));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["documents"], 40);
    assert_eq!(v["generation"], 1);
    let fields = v["fields"].as_array().unwrap();
    let get = |name: &str| {
        fields
            .iter()
            .find(|x| x["name"] == name)
            .unwrap_or_else(|| panic!("no field {name}: {fields:?}"))
    };
    assert_eq!(get("id")["kind"], "key");
    assert_eq!(get("text")["kind"], "text");
    assert_eq!(get("lang")["kind"], "facet");
    assert_eq!(get("lang")["docs"], 40);
    assert_eq!(get("lang")["distinct"], 4);
    assert_eq!(get("license")["distinct"], 3);
    assert_eq!(get("year")["kind"], "number");
    assert_eq!(get("year")["docs"], 20);
    assert_eq!(get("meta")["kind"], "json");
    assert_eq!(get("meta")["docs"], 8);
    let top = get("lang")["top_values"].as_array().unwrap();
    assert_eq!(top.len(), 4);
    assert!(top.iter().all(|t| t[1] == 10));

    let o = ok(cmd(&f.dir).args(["inspect", "--json"]));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["documents"], 40);
    assert_eq!(v["generation"], 1);
    let segs = v["segments"].as_array().unwrap();
    assert!(!segs.is_empty());
    let live: u64 = segs.iter().map(|s| s["live"].as_u64().unwrap()).sum();
    assert_eq!(live, 40);
    for s in segs {
        let file = s["file"].as_str().unwrap();
        let len = std::fs::metadata(f.dir.join(file)).unwrap().len();
        assert_eq!(s["file_bytes"].as_u64(), Some(len), "{file}");
        assert!(s["sections"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["section"] == "blocks"));
    }
}

/// Offset of some byte inside the compressed blocks of the first segment.
fn blocks_byte(dir: &Path) -> (String, u64) {
    let o = ok(cmd(dir).args(["inspect", "--json"]));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let seg = &v["segments"][0];
    let blocks = seg["sections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["section"] == "blocks")
        .unwrap();
    let off = blocks["offset"].as_u64().unwrap() + blocks["bytes"].as_u64().unwrap() / 2;
    (seg["file"].as_str().unwrap().to_string(), off)
}

#[test]
fn verify_passes_then_names_a_corrupted_segment() {
    let f = fixture();
    let o = ok(cmd(&f.dir).arg("verify"));
    assert!(stdout(&o).contains("all checksums match"), "{}", stdout(&o));
    let o = ok(cmd(&f.dir).args(["verify", "--json"]));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["segments"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["error"].is_null()));

    let (file, off) = blocks_byte(&f.dir);
    let path = f.dir.join(&file);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[off as usize] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();

    let o = run(cmd(&f.dir).arg("verify"));
    assert!(!o.status.success(), "verify accepted a flipped byte");
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o) + &stderr(&o);
    assert!(
        out.lines()
            .any(|l| l.contains("FAILED") && l.contains(&file)),
        "{out}"
    );
    let o = run(cmd(&f.dir).args(["verify", "--json"]));
    assert_eq!(o.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let bad: Vec<&Value> = v["segments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| !s["error"].is_null())
        .collect();
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0]["file"], file.as_str());
    // Reading the damaged block fails loudly rather than returning garbage.
    let o = run(cmd(&f.dir).args(["query", "*"]));
    assert!(!o.status.success(), "query over a corrupt block succeeded");
    assert!(stderr(&o).contains(&file), "{}", stderr(&o));
}

#[test]
fn export_writes_compressed_files() {
    let f = fixture();
    let all = ok(cmd(&f.dir).args(["query", "*"]));
    let out = f.dir.parent().unwrap().join("out.jsonl.zst");
    let o = ok(cmd(&f.dir).args(["export", "*", "-o"]).arg(&out));
    assert!(o.stdout.is_empty(), "export -o writes nothing to stdout");
    assert!(
        stderr(&o).contains("exported 40 documents"),
        "{}",
        stderr(&o)
    );
    let raw = std::fs::read(&out).unwrap();
    assert_eq!(&raw[..4], &[0x28, 0xb5, 0x2f, 0xfd], "zstd magic");
    let dec = zstd::decode_all(&raw[..]).unwrap();
    assert_eq!(dec, all.stdout, "export = query output");
    // And the system's zstd reads it, when installed.
    if let Ok(z) = Command::new("zstd").arg("-dc").arg(&out).output() {
        assert!(z.status.success());
        assert_eq!(z.stdout, all.stdout);
    }

    let gz = f.dir.parent().unwrap().join("out.jsonl.gz");
    ok(cmd(&f.dir)
        .args(["export", "lang=fr", "--fields", "id", "-o"])
        .arg(&gz));
    let mut dec = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(std::fs::File::open(&gz).unwrap()),
        &mut dec,
    )
    .unwrap();
    assert_eq!(dec.lines().count(), 10);
    assert!(dec
        .lines()
        .all(|l| l.starts_with("{\"id\":\"doc/") && l.ends_with('}')));

    // Re-ingesting the export into a new corpus gives the same records.
    let dir2 = f.dir.parent().unwrap().join("again");
    ok(cmd(&dir2).args(["ingest", "-q"]).arg(&out));
    let again = ok(cmd(&dir2).args(["query", "*"]));
    let mut a = common::parse_jsonl(&again.stdout);
    let mut b = common::parse_jsonl(&all.stdout);
    a.sort_by_key(|v| v["id"].to_string());
    b.sort_by_key(|v| v["id"].to_string());
    assert_eq!(a, b);
}

#[test]
fn delete_reports_the_count() {
    let f = fixture();
    let o = ok(cmd(&f.dir).args(["delete", "--dry-run", "lang=de"]));
    assert_eq!(stdout(&o), "would delete 10 documents\n");
    assert_eq!(count(&f.dir, "*"), 40);
    let o = ok(cmd(&f.dir).args(["delete", "lang=de"]));
    assert_eq!(stdout(&o), "deleted 10 documents -> generation 2\n");
    assert_eq!(count(&f.dir, "*"), 30);
    assert_eq!(count(&f.dir, "lang=de"), 0);
    let o = ok(cmd(&f.dir).args(["delete", "lang=de"]));
    assert!(
        stdout(&o).starts_with("deleted 0 documents"),
        "{}",
        stdout(&o)
    );
    let o = run(cmd(&f.dir).args(["get", "doc/02"]));
    assert_eq!(o.status.code(), Some(1), "deleted documents are gone");
    // The delete's record: this corpus has no `source` field, so all ten
    // are under `(none)`.
    let o = ok(cmd(&f.dir).args(["report", "--json"]));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let log = &v["withdrawal_log"][0];
    assert_eq!(log["withdrawn"]["docs"], 10, "{v}");
    assert_eq!(log["by_source"][0]["value"], "(none)", "{log}");
    assert_eq!(log["by_source"][0]["counts"]["docs"], 10, "{log}");
    // compact keeps the count.
    let o = ok(cmd(&f.dir).args(["compact", "--json"]));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (v["docs"].as_u64(), v["dropped"].as_u64()),
        (Some(30), Some(10))
    );
    assert_eq!(count(&f.dir, "*"), 30);
    ok(cmd(&f.dir).arg("verify"));
}

#[test]
fn query_errors_show_a_caret_and_a_suggestion() {
    let f = fixture();
    let o = run(cmd(&f.dir).args(["count", "lnag=fr and year >= 1950"]));
    assert!(!o.status.success());
    assert!(o.stdout.is_empty(), "{}", stdout(&o));
    let e = stderr(&o);
    assert!(e.contains("unknown field `lnag`"), "{e}");
    assert!(e.contains("did you mean `lang`"), "{e}");
    let lines: Vec<&str> = e.lines().collect();
    let qi = lines
        .iter()
        .position(|l| l.contains("lnag=fr and year >= 1950"))
        .expect("the query is shown");
    let caret = lines[qi + 1];
    let col = lines[qi].find("lnag").unwrap();
    assert_eq!(caret.find('^'), Some(col), "caret under the field:\n{e}");
    assert_eq!(caret.trim(), "^^^^", "{e}");
    // A parse error, with the caret at the problem.
    let o = run(cmd(&f.dir).args(["count", "lang=fr and"]));
    assert!(!o.status.success());
    assert!(stderr(&o).contains('^'), "{}", stderr(&o));
    // stats --by an unknown field suggests too.
    let o = run(cmd(&f.dir).args(["stats", "--by", "licence"]));
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("did you mean `license`"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn corpusql_dir_env_var_selects_the_corpus() {
    let f = fixture();
    let o = ok(Command::new(BIN)
        .env("CORPUSQL_DIR", &f.dir)
        .args(["count", "lang=en"]));
    assert_eq!(stdout(&o), "10\n");
    // -C wins over the environment.
    let other = tempfile::tempdir().unwrap();
    let o = run(Command::new(BIN)
        .env("CORPUSQL_DIR", &f.dir)
        .arg("-C")
        .arg(other.path())
        .args(["count", "*"]));
    assert!(!o.status.success(), "no corpus in the -C directory");
    assert!(stderr(&o).contains("no corpus"), "{}", stderr(&o));
}

#[test]
fn ingest_exit_codes_follow_rejects() {
    let f = fixture();
    let bad = f.jsonl.with_file_name("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"id\": \"n1\", \"text\": \"ok\", \"lang\": \"fr\"}\n{broken\n{\"id\": \"n2\"}\n",
    )
    .unwrap();
    let rejects = f.jsonl.with_file_name("rejects.jsonl");
    let o = run(cmd(&f.dir)
        .args(["ingest", "-q", "--rejects"])
        .arg(&rejects)
        .arg(&bad));
    assert_eq!(o.status.code(), Some(1), "rejects without --allow-rejects");
    let e = stderr(&o);
    assert!(e.contains("bad.jsonl:2:"), "{e}");
    assert!(e.contains("bad.jsonl:3:"), "{e}");
    let r = common::parse_jsonl(&std::fs::read(&rejects).unwrap());
    let lines: Vec<u64> = r.iter().map(|x| x["line"].as_u64().unwrap()).collect();
    assert_eq!(lines, vec![2, 3]);
    // The good line is committed all the same.
    assert_eq!(count(&f.dir, "*"), 41);

    let bad2 = f.jsonl.with_file_name("bad2.jsonl");
    std::fs::write(&bad2, "{\"id\": \"n3\", \"text\": \"ok\"}\n[1]\n").unwrap();
    let o = run(cmd(&f.dir)
        .args(["ingest", "-q", "--allow-rejects", "--json"])
        .arg(&bad2));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (v["ingested"].as_u64(), v["rejected"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(count(&f.dir, "*"), 42);

    // Re-ingesting the sample skips everything and exits 0.
    let o = ok(cmd(&f.dir).args(["ingest", "-q", "--json"]).arg(&f.jsonl));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (v["ingested"].as_u64(), v["skipped"].as_u64()),
        (Some(0), Some(40))
    );

    // A missing input file is an error (exit 2) and commits nothing.
    let o = run(cmd(&f.dir).args(["ingest", "-q", "/nonexistent/x.jsonl"]));
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("/nonexistent/x.jsonl"),
        "{}",
        stderr(&o)
    );
    assert_eq!(count(&f.dir, "*"), 42);
}

#[test]
fn ingest_from_stdin_with_options() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    let mut child = cmd(&dir)
        .args([
            "ingest",
            "-q",
            "--json",
            "--set",
            "license=pd",
            "--text-field",
            "body",
            "--id-field",
            "key",
            "--on-duplicate",
            "replace",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(
            b"{\"key\": \"k1\", \"body\": \"one\"}\n{\"key\": \"k2\", \"body\": \"two\", \"license\": \"mit\"}\n{\"key\": \"k1\", \"body\": \"uno\"}\n",
        )
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["replaced"], 1);
    assert_eq!(count(&dir, "*"), 2);
    assert_eq!(count(&dir, "license=pd"), 1);
    let g = ok(cmd(&dir).args(["get", "k1", "--text"]));
    assert_eq!(stdout(&g), "uno\n");
    let o = ok(cmd(&dir).args(["log", "--json"]));
    let log: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(log["ingests"][0]["source"], "-");
    assert_eq!(
        log["ingests"][0]["set"],
        serde_json::json!([["license", "pd"]])
    );
    // --set on the key field is refused, named here or saved with the corpus.
    let o = run(cmd(&dir).args(["ingest", "-q", "--id-field", "key", "--set", "key=x", "-"]));
    assert_eq!(o.status.code(), Some(2));
    let o = run(cmd(&dir).args(["ingest", "-q", "--set", "key=x", "-"]));
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("`key` is the corpus's text or key field"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn demo_builds_a_corpus_of_what_it_printed() {
    let tmp = tempfile::tempdir().unwrap();
    let jsonl = tmp.path().join("demo.jsonl");
    ok(Command::new(BIN)
        .args(["demo", "--docs", "300", "--jsonl"])
        .arg(&jsonl));
    let generated = std::fs::read(&jsonl).unwrap();
    if generated.is_empty() {
        eprintln!("SKIPPED: the demo generator produces no documents yet");
        return;
    }
    let dir = tmp.path().join("demo");
    let o = ok(Command::new(BIN)
        .env_remove("CORPUSQL_DIR")
        .args(["demo", "--docs", "300", "--dir"])
        .arg(&dir));
    let s = stdout(&o);
    let line = s
        .lines()
        .find(|l| l.starts_with("ingested "))
        .unwrap_or_else(|| panic!("no `ingested N documents` line:\n{s}"));
    let n: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(n > 0);
    assert_eq!(count(&dir, "*"), n);
    assert_eq!(n, common::parse_jsonl(&generated).len() as u64);
    ok(cmd(&dir).arg("verify"));
}

#[test]
fn errors_are_printed_once() {
    let f = fixture();
    let o = run(cmd(&f.dir).args(["count", "lnag=fr"]));
    let e = stderr(&o);
    assert_eq!(e.matches("unknown field `lnag`").count(), 1, "{e}");
    assert_eq!(e.matches("did you mean").count(), 1, "{e}");
    let o = run(cmd(&f.dir).args(["ingest", "-q", "/nonexistent/x.jsonl"]));
    let e = stderr(&o);
    assert_eq!(e.matches("No such file or directory").count(), 1, "{e}");
}
