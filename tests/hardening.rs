//! Regression tests for issue 10's silent losses and stray writes: an
//! ingest whose inputs are wrong creates nothing; a corpus is never created
//! among another directory's files; `compact` keeps the duplicate signals
//! that saved cleaning queries rely on; and a query on a signal that some
//! documents lack says so and names the command that computes it.

use std::path::Path;
use std::process::{Command, Output};

mod common;

const BIN: &str = env!("CARGO_BIN_EXE_corpusql");

fn corpusql(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .expect("run corpusql")
}

fn ok(dir: &Path, args: &[&str]) -> Output {
    let o = corpusql(dir, args);
    assert!(
        o.status.success(),
        "`corpusql {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn count(dir: &Path, q: &str) -> (u64, String) {
    let o = ok(dir, &["count", q]);
    let n = String::from_utf8_lossy(&o.stdout).trim().parse().unwrap();
    (n, String::from_utf8_lossy(&o.stderr).into_owned())
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn a_wrong_input_creates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = common::demo_jsonl(&tmp.path().join("docs.jsonl"), 50, 1, "");

    // A mistyped input name: the new corpus directory is not even created.
    let fresh = tmp.path().join("fresh");
    let o = corpusql(&fresh, &["ingest", "missing.jsonl"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("missing.jsonl"), "{err}");
    assert!(
        !fresh.exists(),
        "a failed ingest created {}",
        fresh.display()
    );

    // A directory without input files, or a pattern that matches
    // nothing: named, and nothing created.
    let no_input = tmp.path().join("no-input");
    std::fs::create_dir_all(no_input.join("sub")).unwrap();
    std::fs::write(no_input.join("_SUCCESS"), b"").unwrap();
    let o = corpusql(&fresh, &["ingest", no_input.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("holds no input file"), "{err}");
    assert!(!fresh.exists());
    let pattern = tmp.path().join("nothing-*.jsonl");
    let o = corpusql(&fresh, &["ingest", pattern.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no file matches"), "{err}");
    assert!(!fresh.exists());

    // A valid input into a directory that holds other files (`-C /etc`):
    // refused, and the directory is left exactly as it was.
    let busy = tmp.path().join("busy");
    std::fs::create_dir(&busy).unwrap();
    std::fs::write(busy.join("passwd"), "root:x:0:0\n").unwrap();
    std::fs::write(busy.join("hosts"), "127.0.0.1 localhost\n").unwrap();
    let before = listing(&busy);
    let o = corpusql(&busy, &["ingest", data.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("is not a corpus and is not empty"), "{err}");
    assert!(err.contains("hosts"), "{err}");
    assert_eq!(listing(&busy), before);

    // An empty existing directory and an existing corpus both take ingests.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    ok(&empty, &["ingest", "--quiet", data.to_str().unwrap()]);
    ok(&empty, &["ingest", "--quiet", data.to_str().unwrap()]);
    assert_eq!(count(&empty, "*").0, 50);
}

#[test]
fn compact_keeps_duplicate_signals() {
    let tmp = tempfile::tempdir().unwrap();
    let a = common::demo_jsonl(&tmp.path().join("a.jsonl"), 1500, 3, "");
    let dir = tmp.path().join("c");
    ok(
        &dir,
        &[
            "ingest",
            "--quiet",
            "--segment-mb",
            "1",
            a.to_str().unwrap(),
        ],
    );
    ok(&dir, &["tag", "--taggers", "dedup,language"]);
    let (kept, _) = count(&dir, "is_dup = false");
    let (dups, _) = count(&dir, "is_dup = true");
    assert_eq!(kept + dups, 1500);
    assert!(kept > 0);

    ok(&dir, &["delete", "lang = de"]);
    let (live, _) = count(&dir, "*");
    let (kept_live, _) = count(&dir, "is_dup = false");
    ok(&dir, &["compact"]);
    // Before the fix, `is_dup = false` matched nothing after a compaction.
    let (kept_after, note) = count(&dir, "is_dup = false");
    let (dups_after, _) = count(&dir, "is_dup = true");
    assert_eq!(
        kept_after + dups_after,
        live,
        "every live document has is_dup"
    );
    assert!(kept_after >= kept_live, "{kept_after} < {kept_live}");
    assert!(!note.contains("not computed"), "{note}");
    // The per-document signal was carried in the same commit.
    let (scored, _) = count(&dir, "lang_score >= 0");
    assert_eq!(scored, live);
    ok(&dir, &["verify"]);
}

#[test]
fn a_signal_some_documents_lack_is_named_with_its_tagger() {
    let tmp = tempfile::tempdir().unwrap();
    let a = common::demo_jsonl(&tmp.path().join("a.jsonl"), 300, 5, "");
    let b = common::demo_jsonl(&tmp.path().join("b.jsonl"), 200, 6, "b-");
    let dir = tmp.path().join("c");
    ok(&dir, &["ingest", "--quiet", a.to_str().unwrap()]);
    ok(&dir, &["tag", "--taggers", "dedup"]);
    let (_, quiet) = count(&dir, "is_dup = false");
    assert!(!quiet.contains("not computed"), "{quiet}");
    // New documents have no duplicate signal until the next tag.
    ok(&dir, &["ingest", "--quiet", b.to_str().unwrap()]);
    let (_, note) = count(&dir, "is_dup = false and lang = fr");
    assert!(
        note.contains("signal `is_dup` is not computed for 200 of 500 live documents"),
        "{note}"
    );
    assert!(note.contains("corpusql tag --taggers dedup"), "{note}");
    ok(&dir, &["tag", "--taggers", "dedup"]);
    let (n, note) = count(&dir, "is_dup = false or is_dup = true");
    assert_eq!(n, 500);
    assert!(!note.contains("not computed"), "{note}");
}
