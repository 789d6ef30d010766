//! The command line guides a user who got something wrong: a mistyped
//! command, an unknown `--fields` name, a signal never computed, a value no
//! document has, a zero where a size is needed, a binary stream aimed at a
//! terminal. And a failed `export` or `stream` leaves no partial file.
//! Each test drives the real `corpusql` binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_corpusql");
const LANGS: [&str; 3] = ["fr", "en", "de"];

fn cmd(dir: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.arg("-C").arg(dir).env_remove("CORPUSQL_DIR");
    c
}

fn run(c: &mut Command) -> Output {
    c.stdin(Stdio::null()).output().expect("run corpusql")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
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

/// Runs and requires a failure that is not a panic (exit 101).
fn fails(c: &mut Command) -> Output {
    let o = run(c);
    assert!(!o.status.success(), "{c:?} succeeded: {}", stdout(&o));
    assert_ne!(o.status.code(), Some(101), "{c:?} panicked: {}", stderr(&o));
    o
}

struct Fixture {
    tmp: tempfile::TempDir,
    dir: PathBuf,
}

/// A corpus of `n` documents of about 1 KiB each (several blocks when `n`
/// is in the hundreds), ingested by the binary.
fn fixture(n: usize) -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = String::new();
    for i in 0..n {
        let words: String = (0..160)
            .map(|k| format!("w{} ", (i * 7919 + k * 104729) % 100_003))
            .collect();
        let rec = serde_json::json!({
            "id": format!("doc/{i:04}"),
            "lang": LANGS[i % 3],
            "license": "cc-by-4.0",
            "text": format!("Document {i}. {words}"),
        });
        s.push_str(&rec.to_string());
        s.push('\n');
    }
    let jsonl = tmp.path().join("in.jsonl");
    std::fs::write(&jsonl, s).unwrap();
    let dir = tmp.path().join("corpus");
    // Small blocks, so that a failure can come after the first ones.
    ok(cmd(&dir)
        .args(["ingest", "-q"])
        .arg(&jsonl)
        .env("CORPUSQL_BLOCK_KB", "64"));
    Fixture { tmp, dir }
}

/// Flips a byte in the middle of the first segment's compressed blocks.
fn corrupt_a_middle_block(dir: &Path) {
    let o = ok(cmd(dir).args(["inspect", "--json"]));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let seg = &v["segments"][0];
    assert!(seg["blocks"].as_u64().unwrap() >= 3, "want several blocks");
    let blocks = seg["sections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["section"] == "blocks")
        .unwrap();
    let off = blocks["offset"].as_u64().unwrap() + blocks["bytes"].as_u64().unwrap() * 2 / 3;
    let path = dir.join(seg["file"].as_str().unwrap());
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[off as usize] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
}

/// Names in `dir` other than `keep` (temporaries left behind).
fn leftovers(dir: &Path, keep: &[&str]) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !keep.contains(&n.as_str()))
        .collect()
}

#[test]
fn a_mistyped_command_is_named_with_the_nearest_command() {
    let f = fixture(12);
    for (typed, meant, rest) in [
        ("coutn", "count", Some("lang=fr")),
        ("stat", "stats", None),
        ("exprot", "export", Some("*")),
        ("tokenise", "tokenize", None),
    ] {
        let mut c = cmd(&f.dir);
        c.arg(typed);
        c.args(rest);
        let o = fails(&mut c);
        assert_eq!(o.status.code(), Some(2), "{typed}");
        let e = stderr(&o);
        assert!(
            e.contains(&format!(
                "unknown command `{typed}`; did you mean `{meant}`?"
            )),
            "{typed}: {e}"
        );
        assert!(!e.contains("Usage: corpusql query"), "{typed}: {e}");
    }
    // The bare-query shortcut still runs a query, with or without spaces.
    for q in ["lang=fr", "lang = fr", "not lang=fr"] {
        let o = ok(cmd(&f.dir).args([q, "--fields", "id"]));
        let n = stdout(&o).lines().count();
        assert_eq!(n, if q.starts_with("not") { 8 } else { 4 }, "{q}");
    }
}

#[test]
fn unknown_fields_names_are_refused_with_a_suggestion() {
    let f = fixture(12);
    let o = fails(cmd(&f.dir).args(["query", "*", "--fields", "id,langg"]));
    let e = stderr(&o);
    assert!(
        e.contains("`langg`") && e.contains("did you mean `lang`"),
        "{e}"
    );
    assert!(o.stdout.is_empty(), "printed documents: {}", stdout(&o));

    let out = f.tmp.path().join("out.jsonl");
    let o = fails(
        cmd(&f.dir)
            .args(["export", "*", "--fields", "id,lisense", "-o"])
            .arg(&out),
    );
    let e = stderr(&o);
    assert!(
        e.contains("`lisense`") && e.contains("did you mean `license`"),
        "{e}"
    );
    assert!(!out.exists(), "export wrote a file");

    // Every kind of known name passes: stored, key, text, derived, `bytes`.
    let o = ok(cmd(&f.dir).args([
        "query",
        "lang=de",
        "--fields",
        "id,text,lang,license_id,license_class,bytes",
        "--limit",
        "1",
    ]));
    let v: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(v["license_class"], "attribution", "{v}");
    assert!(v["bytes"].as_u64().unwrap() > 0, "{v}");
}

#[test]
fn a_signal_never_computed_names_its_tagger_and_command() {
    let f = fixture(12);
    for (field, tagger, q) in [
        ("ocr_noise", "ocr", "ocr_noise < 0.2"),
        ("lang_score", "language", "lang_score > 0.9"),
        ("is_dup", "dedup", "is_dup = false"),
        ("rps_doc_word_count", "quality", "rps_doc_word_count >= 50"),
        ("pii_email", "pii", "pii_email = 0"),
    ] {
        let o = fails(cmd(&f.dir).args(["count", q]));
        let e = stderr(&o);
        let want = format!(
            "field `{field}` is a signal of the {tagger} tagger, not computed in this corpus: run `corpusql tag --taggers {tagger}`"
        );
        assert!(e.contains(&want), "{q}: {e}");
        let o = fails(cmd(&f.dir).args(["query", "*", "--fields", &format!("id,{field}")]));
        assert!(
            stderr(&o).contains(&want),
            "--fields {field}: {}",
            stderr(&o)
        );
    }
    let o = fails(cmd(&f.dir).args(["stats", "--by", "lang_detected"]));
    assert!(
        stderr(&o).contains("signal of the language tagger"),
        "{}",
        stderr(&o)
    );
    // Once computed, the same query runs.
    ok(cmd(&f.dir).args(["tag", "-q", "--taggers", "language"]));
    ok(cmd(&f.dir).args(["count", "lang_score > 0.9"]));
}

#[test]
fn delete_of_a_misspelt_value_hints_like_count() {
    let f = fixture(12);
    let o = ok(cmd(&f.dir).args(["delete", "lang=frr"]));
    assert!(
        stderr(&o).contains("no document has lang = frr; did you mean `fr`?"),
        "{}",
        stderr(&o)
    );
    assert!(stdout(&o).contains("deleted 0 documents"), "{}", stdout(&o));
    let o = ok(cmd(&f.dir).args(["delete", "lang=frr", "--dry-run"]));
    assert!(stderr(&o).contains("did you mean `fr`?"), "{}", stderr(&o));
}

/// Runs with `--json` and parses stdout as exactly one JSON value.
fn json_of(c: &mut Command) -> Value {
    let o = ok(c);
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{c:?}: not one JSON object ({e}): {}", stdout(&o)))
}

#[test]
fn policy_delete_tag_and_compact_take_json() {
    let f = fixture(12);
    let v = json_of(cmd(&f.dir).args(["delete", "lang=de", "--dry-run", "--json"]));
    assert_eq!(v["would_delete"], 4, "{v}");
    let v = json_of(cmd(&f.dir).args(["delete", "lang=de", "--json"]));
    assert_eq!(v["deleted"], 4, "{v}");
    assert_eq!(v["generation"], 2, "{v}");
    let v = json_of(cmd(&f.dir).args(["delete", "lang=frr", "--json"]));
    assert_eq!(v["deleted"], 0, "{v}");
    assert_eq!(
        v["notes"][0],
        "no document has lang = frr; did you mean `fr`?"
    );

    let v = json_of(cmd(&f.dir).args(["policy", "--json"]));
    assert!(v["allow"].is_null(), "{v}");
    assert_eq!(v["held_back"]["docs"], 0, "{v}");
    let v = json_of(cmd(&f.dir).args(["policy", "allow", "public-domain", "--json"]));
    assert_eq!(v["allow"], serde_json::json!(["public-domain"]), "{v}");
    assert_eq!(v["held_back"]["docs"], 8, "{v}");
    assert_eq!(v["held_back"]["by_license"][0]["license_id"], "cc-by-4.0");

    let v = json_of(cmd(&f.dir).args(["tag", "-q", "--taggers", "language", "--json"]));
    assert_eq!(v["taggers"][0]["tagger"], "language", "{v}");
    assert_eq!(v["taggers"][0]["docs"], 8, "{v}");
    assert!(v["generation"].as_u64().is_some(), "{v}");

    let v = json_of(cmd(&f.dir).args(["compact", "--json"]));
    assert_eq!(v["docs"], 8, "{v}");
}

#[test]
fn stream_refuses_to_write_binary_to_a_terminal() {
    let f = fixture(12);
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("SKIPPED: no `script` (util-linux) to give the stream a terminal");
        return;
    }
    // `script` runs the command with a pseudo-terminal as its stdout.
    let line = format!(
        "{BIN} -C {} stream 'lang=fr' --seq-len 16; echo exit=$?",
        f.dir.display()
    );
    let o = run(Command::new("script").args(["-qec", &line, "/dev/null"]));
    let out = stdout(&o);
    assert!(
        out.contains("refusing to write binary tokens to a terminal; use -o FILE or redirect"),
        "{out}"
    );
    assert!(out.contains("exit=2"), "{out}");
    // Redirected, the same command streams.
    let o = ok(cmd(&f.dir).args(["stream", "lang=fr", "--seq-len", "16"]));
    assert!(!o.stdout.is_empty());
}

#[test]
fn a_failed_export_or_stream_leaves_no_file_and_keeps_an_old_one() {
    let f = fixture(600);
    let out_dir = f.tmp.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    // Before the damage, both succeed and write whole files.
    let good = out_dir.join("good.jsonl");
    ok(cmd(&f.dir).args(["export", "*", "-o"]).arg(&good));
    assert_eq!(std::fs::read_to_string(&good).unwrap().lines().count(), 600);
    corrupt_a_middle_block(&f.dir);

    let fresh = out_dir.join("fresh.jsonl.zst");
    let old = out_dir.join("old.jsonl");
    std::fs::write(&old, "old content\n").unwrap();
    for p in [&fresh, &old] {
        let o = fails(cmd(&f.dir).args(["export", "*", "-o"]).arg(p));
        assert!(stderr(&o).contains("corrupt"), "{}", stderr(&o));
    }
    assert!(!fresh.exists(), "a failed export left {}", fresh.display());
    assert_eq!(std::fs::read_to_string(&old).unwrap(), "old content\n");

    let tokens = out_dir.join("tokens.u16");
    let report = out_dir.join("report.json");
    let o = fails(
        cmd(&f.dir)
            .args(["stream", "*", "--seq-len", "64", "-o"])
            .arg(&tokens)
            .arg("--report")
            .arg(&report),
    );
    assert!(stderr(&o).contains("corrupt"), "{}", stderr(&o));
    assert!(
        !tokens.exists(),
        "a failed stream left {}",
        tokens.display()
    );
    assert!(
        !report.exists(),
        "a failed stream left {}",
        report.display()
    );
    assert_eq!(
        leftovers(&out_dir, &["good.jsonl", "old.jsonl"]),
        Vec::<String>::new(),
        "temporaries left behind"
    );
}

#[test]
fn zero_and_out_of_range_numbers_are_option_errors_not_panics() {
    let f = fixture(12);
    let mix = f.tmp.path().join("m.toml");
    let tok = f.tmp.path().join("tok.json");
    let cases: &[(&[&str], &str)] = &[
        (&["mix", "plan", "lang=fr", "--seq-len", "0"], "--seq-len"),
        (&["stream", "lang=fr", "--seq-len", "0"], "--seq-len"),
        (
            &["trace", "lang=fr", "--sequence", "0", "--seq-len", "0"],
            "--seq-len",
        ),
        (
            &["stream", "lang=fr", "--seq-len", "99999999999"],
            "--seq-len",
        ),
        (&["stream", "lang=fr", "--world", "0"], "--world"),
        (
            &["stream", "lang=fr", "--world", "18446744073709551615"],
            "--world",
        ),
        (
            &["stream", "lang=fr", "--rank", "3", "--world", "2"],
            "--rank",
        ),
        (
            &["stream", "lang=fr", "--state-every", "0"],
            "--state-every",
        ),
        (&["stream", "lang=fr", "--seed", "-1"], "-1"),
        (&["--threads", "0", "count", "*"], "--threads"),
        (&["count", "*", "--threads", "0"], "--threads"),
        (&["compact", "--segment-mb", "0"], "--segment-mb"),
        (
            &["compact", "--segment-mb", "18446744073709551615"],
            "--segment-mb",
        ),
        (&["ingest", "x.jsonl", "--segment-mb", "0"], "--segment-mb"),
        (
            &["tag", "--taggers", "dedup", "--dedup-memory-mb", "0"],
            "--dedup-memory-mb",
        ),
        (
            &["tag", "--dedup-memory-mb", "18446744073709551615"],
            "--dedup-memory-mb",
        ),
        (
            &[
                "tokenizer",
                "train",
                "*",
                "--vocab-size",
                "0",
                "-o",
                "t.json",
            ],
            "--vocab-size",
        ),
        (&["demo", "--docs", "0"], "--docs"),
        (&["query", "*", "--limit", "x"], "--limit"),
        (&["export", "*", "--limit", "-3"], "-3"),
        (
            &["trace", "lang=fr", "--sequence", "0", "--offset", "5000"],
            "offset",
        ),
    ];
    for (args, named) in cases {
        let o = fails(cmd(&f.dir).args(*args).current_dir(f.tmp.path()));
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(named), "{args:?}: {}", stderr(&o));
    }
    // A mixture file's seq_len is checked the same way.
    std::fs::write(
        &mix,
        "seq_len = 0\n[[component]]\nname = \"fr\"\nquery = \"lang=fr\"\nweight = 1.0\n",
    )
    .unwrap();
    let o = fails(cmd(&f.dir).args(["mix", "plan"]).arg(&mix));
    assert!(stderr(&o).contains("seq_len"), "{}", stderr(&o));
    assert!(!tok.exists());
}

#[test]
fn tokenize_progress_counts_text_bytes() {
    let f = fixture(60);
    let tok = f.tmp.path().join("tok.json");
    ok(cmd(&f.dir)
        .args(["tokenizer", "train", "*", "--vocab-size", "300", "-o"])
        .arg(&tok));
    let corpus = corpusql::Corpus::open(&f.dir).unwrap();
    let t = corpusql::raw::tokenize::Tokenizer::load(tok.to_str().unwrap()).unwrap();
    let seen = std::sync::atomic::AtomicU64::new(0);
    let mut total = 0;
    for s in corpus.segments() {
        total += s.segment.meta().text_bytes;
        corpusql::raw::tokenize::segment_counts_with(
            corpus.dir(),
            &s.entry.file,
            &s.segment,
            &t,
            &|b| {
                seen.fetch_add(b, std::sync::atomic::Ordering::Relaxed);
            },
        )
        .unwrap();
    }
    assert!(total > 0);
    assert_eq!(
        seen.into_inner(),
        total,
        "progress must add up to the text bytes"
    );
    let o = ok(cmd(&f.dir).args(["tokenize", "--tokenizer"]).arg(&tok));
    assert!(stdout(&o).contains("60 live documents"), "{}", stdout(&o));
}
