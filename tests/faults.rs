//! Fault injection through the storage layer (`corpusql::storage`): what a
//! `kill -9` cannot show. For each write operation (ingest into an existing
//! corpus, the first ingest that creates one, delete, compact, tag, policy)
//! a counting run learns the storage operations it makes; then, for every
//! operation `n` (a seeded sample when there are many), each fault is made
//! at `n`: a power loss (every later call fails, then whatever was not
//! fsynced is dropped), `EIO`, a full disk (`ENOSPC` from `n` on), a short
//! write, a failing rename. Afterwards the corpus must open at the state
//! before or after the operation (after, when the operation reported
//! success, also once the unsynced data are dropped), `verify` must pass,
//! every committed document must be there, and a next ingest must succeed
//! and leave no orphan segment. A last test fills a real (tmpfs) disk.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use corpusql::raw::policy::Policy;
use corpusql::raw::storage::{Fault, Injection};
use corpusql::raw::tag::{TagOptions, Tagger};
use corpusql::{ingest, Corpus, IngestOptions, Input};

const FAULTS: [Fault; 5] = [
    Fault::Crash,
    Fault::Eio,
    Fault::NoSpace,
    Fault::ShortWrite,
    Fault::RenameFails,
];

/// Queries whose counts identify a state (signals count as unknown, -1, before tagging).
const QUERIES: &[&str] = &[
    "*",
    "lang = fr",
    "year >= 2000",
    "not tags = b",
    "rps_doc_word_count >= 0",
    "is_dup = false",
];

/// Faults made per (operation, fault kind) at most; `CORPUSQL_FAULTS_ALL=1` makes them all.
const SAMPLE: usize = 40;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn jsonl(prefix: &str, n: usize, seed: u64) -> Vec<u8> {
    let langs = ["fr", "en", "de"];
    let words = ["alpha", "beta", "gamma", "delta", "été", "über", "x"];
    let mut rng = Rng(seed | 1);
    let mut out = String::new();
    for i in 0..n {
        let text: Vec<&str> = (0..(8 + rng.next() % 20))
            .map(|_| words[(rng.next() % 7) as usize])
            .collect();
        let license = ["cc-by-4.0", "pd", "proprietary"][(rng.next() % 3) as usize];
        let tag = ["b", "c"][(rng.next() % 2) as usize];
        let rec = serde_json::json!({
            "id": format!("{prefix}{i}"),
            "text": text.join(" "),
            "lang": langs[(rng.next() % 3) as usize],
            "license": license,
            "year": 1950 + rng.next() % 75,
            "tags": ["a", tag],
        });
        out.push_str(&rec.to_string());
        out.push('\n');
    }
    out.into_bytes()
}

fn ingest_bytes(dir: &Path, name: &str, bytes: Vec<u8>) -> corpusql::Result<u64> {
    let opts = IngestOptions {
        segment_bytes: 40 << 10,
        ..Default::default()
    };
    let input = Input::Reader(name.into(), Box::new(std::io::Cursor::new(bytes)));
    ingest(dir, vec![input], &opts).map(|r| r.ingested)
}

/// What a reader sees: generation, keys, query counts, the policy.
#[derive(Debug, Clone, PartialEq)]
struct Observed {
    generation: u64,
    keys: BTreeSet<String>,
    counts: Vec<i64>,
    policy: Option<Vec<String>>,
}

fn observe(dir: &Path) -> Result<Observed, String> {
    let c = match Corpus::open(dir) {
        Ok(c) => c,
        // Before the first ingest: no corpus is the empty corpus.
        Err(corpusql::Error::NoCorpus { .. }) => {
            return Ok(Observed {
                generation: 0,
                keys: BTreeSet::new(),
                counts: Vec::new(),
                policy: None,
            })
        }
        Err(e) => return Err(format!("open: {e}")),
    };
    let mut keys = BTreeSet::new();
    for d in c.query("*").map_err(|e| e.to_string())?.documents() {
        keys.insert(d.map_err(|e| format!("read: {e}"))?.key);
    }
    let counts = QUERIES
        .iter()
        .map(|q| c.query(q).map(|s| s.count() as i64).unwrap_or(-1))
        .collect();
    let v = corpusql::raw::maintain::verify(dir).map_err(|e| format!("verify: {e}"))?;
    if !v.ok() {
        return Err(format!("verify: {v:?}"));
    }
    let policy = Policy::load(dir).map_err(|e| format!("policy: {e}"))?.allow;
    Ok(Observed {
        generation: c.generation(),
        keys,
        counts,
        policy,
    })
}

/// Copies a corpus directory, a job's staging folders included.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let t = e.file_type().unwrap();
        if t.is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        } else if t.is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        }
    }
}

/// Segment files and sidecars the catalog does not list.
fn orphans(dir: &Path) -> Vec<String> {
    let Ok(c) = Corpus::open(dir) else {
        return vec!["(cannot open)".into()];
    };
    let st = c.state();
    let mut listed: BTreeSet<&str> = st.segments.iter().map(|s| s.file.as_str()).collect();
    listed.extend(st.tags.values().flatten().map(|t| t.file.as_str()));
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("seg-") && !listed.contains(n.as_str()))
        .collect()
}

type Op = dyn Fn(&Path) -> corpusql::Result<()>;

/// Checks that `now` is `before` or `after` (exactly `after` when `must_be_after`).
fn judge(
    now: &Observed,
    before: &Observed,
    after: &Observed,
    must_be_after: bool,
) -> Option<String> {
    if now == after || (now == before && !must_be_after) {
        return None;
    }
    let empty = |o: &Observed| o.generation == 0 && o.keys.is_empty();
    if empty(now) && empty(before) && !must_be_after {
        return None;
    }
    let missing = before.keys.difference(&now.keys).count();
    Some(format!(
        "state is neither before nor after{}: generation {} (before {}, after {}), counts {:?} (before {:?}, after {:?}), policy {:?}, {missing} committed keys missing",
        if must_be_after { " (the operation succeeded)" } else { "" },
        now.generation, before.generation, after.generation, now.counts, before.counts, after.counts, now.policy
    ))
}

/// Faults every sampled operation of `op` on a copy of `template`; returns
/// (faults made, failures).
fn run_faults(name: &str, template: &Path, work: &Path, op: &Op) -> (usize, Vec<String>) {
    let all = std::env::var("CORPUSQL_FAULTS_ALL").is_ok();
    let base = work.join(format!("{name}-base"));
    copy_dir(template, &base);
    let before = observe(&base).unwrap_or_else(|e| panic!("{name}: before: {e}"));
    let counted = work.join(format!("{name}-count"));
    copy_dir(template, &counted);
    let ops = {
        let inj = Injection::count(&counted);
        op(&counted).unwrap_or_else(|e| panic!("{name}: {e}"));
        inj.ops()
    };
    let after = observe(&counted).unwrap_or_else(|e| panic!("{name}: after: {e}"));
    assert_ne!(before, after, "{name} changes nothing");
    let extra = jsonl("z-", 30, 99);
    let mut failures = Vec::new();
    let mut made = 0;
    let mut rng = Rng(0x5eed ^ name.len() as u64);
    let mut run = 0;
    for fault in FAULTS {
        let mut at: Vec<u64> = (0..ops.len() as u64)
            .filter(|&i| fault.applies_to(ops[i as usize].0))
            .collect();
        while !all && at.len() > SAMPLE {
            at.remove((rng.next() % at.len() as u64) as usize);
        }
        for n in at {
            run += 1;
            let d = work.join(format!("{name}-{run}"));
            copy_dir(template, &d);
            let what = format!(
                "{name}: {fault:?} at op {n} ({:?} {})",
                ops[n as usize].0,
                ops[n as usize]
                    .1
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default()
            );
            let inj = Injection::fail(&d, n, fault);
            let r = op(&d);
            if !inj.fired() {
                // The run made fewer operations than the counting run.
                drop(inj);
                let _ = std::fs::remove_dir_all(&d);
                continue;
            }
            made += 1;
            if fault != Fault::Crash {
                inj.disarm();
                match observe(&d) {
                    Ok(now) => {
                        if let Some(f) = judge(&now, &before, &after, r.is_ok()) {
                            failures.push(format!("{what}, no crash: {f}"));
                        }
                    }
                    Err(e) => failures.push(format!("{what}, no crash: {e} (op: {r:?})")),
                }
            }
            // Then the power goes: what was not made durable is lost.
            inj.crash().unwrap();
            drop(inj);
            let now = match observe(&d) {
                Ok(now) => now,
                Err(e) => {
                    failures.push(format!("{what}: after the crash: {e} (op: {r:?})"));
                    continue;
                }
            };
            if let Some(f) = judge(&now, &before, &after, r.is_ok()) {
                failures.push(format!("{what}: after the crash: {f} (op: {r:?})"));
                continue;
            }
            // The next writer succeeds and builds on the committed state.
            match ingest_bytes(&d, "next.jsonl", extra.clone()) {
                Ok(30) => {}
                other => {
                    failures.push(format!("{what}: next ingest: {other:?}"));
                    continue;
                }
            }
            match observe(&d) {
                Ok(next) => {
                    let want = now.keys.len() + 30;
                    if next.keys.len() != want || !now.keys.is_subset(&next.keys) {
                        failures.push(format!(
                            "{what}: after the next ingest {} keys, want {want}",
                            next.keys.len()
                        ));
                    }
                }
                Err(e) => failures.push(format!("{what}: after the next ingest: {e}")),
            }
            let o = orphans(&d);
            if !o.is_empty() {
                failures.push(format!("{what}: orphans after the next ingest: {o:?}"));
            }
            let _ = std::fs::remove_dir_all(&d);
        }
    }
    eprintln!(
        "faults: {name}: {} storage operations, {made} faults injected ({} kinds), {} failures",
        ops.len(),
        FAULTS.len(),
        failures.len()
    );
    (made, failures)
}

fn assert_no_failures(name: &str, made: usize, failures: &[String]) {
    assert!(made > 0, "{name}: no fault was made");
    assert!(
        failures.is_empty(),
        "{name}: {} of {made} faults broke the corpus; first ones:\n{}",
        failures.len(),
        failures
            .iter()
            .take(12)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// A corpus of two ingests (several segments) with some documents deleted.
fn template(work: &Path) -> PathBuf {
    let t = work.join("template");
    ingest_bytes(&t, "a.jsonl", jsonl("a-", 300, 1)).unwrap();
    ingest_bytes(&t, "b.jsonl", jsonl("b-", 200, 2)).unwrap();
    corpusql::raw::maintain::delete(&t, "year < 1960").unwrap();
    t
}

fn check_op(name: &str, op: &Op) {
    let tmp = tempfile::tempdir().unwrap();
    let t = template(tmp.path());
    let (made, failures) = run_faults(name, &t, tmp.path(), op);
    assert_no_failures(name, made, &failures);
}

#[test]
fn faults_during_ingest() {
    check_op("ingest", &|d| {
        ingest_bytes(d, "c.jsonl", jsonl("c-", 250, 3)).map(|_| ())
    });
}

#[test]
fn faults_during_the_first_ingest() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path().join("empty");
    std::fs::create_dir_all(&t).unwrap();
    let (made, failures) = run_faults("first-ingest", &t, tmp.path(), &|d| {
        ingest_bytes(d, "c.jsonl", jsonl("c-", 250, 3)).map(|_| ())
    });
    assert_no_failures("first-ingest", made, &failures);
}

#[test]
fn faults_during_delete() {
    check_op("delete", &|d| {
        corpusql::raw::maintain::delete(d, "lang = fr").map(|_| ())
    });
}

#[test]
fn faults_during_compact() {
    check_op("compact", &|d| {
        corpusql::raw::maintain::compact(d, 30 << 10).map(|_| ())
    });
}

#[test]
fn faults_during_tag() {
    check_op("tag", &|d| {
        let opts = TagOptions {
            taggers: vec![Tagger::Quality, Tagger::Dedup],
            dedup_memory: 1 << 20,
            ..Default::default()
        };
        corpusql::raw::tag::tag(d, &opts).map(|_| ())
    });
}

#[test]
fn faults_during_a_job_commit() {
    // Two staged ingest tasks, one file overlapping the corpus's keys: the
    // commit links the staged segments in and commits one generation.
    let tmp = tempfile::tempdir().unwrap();
    let t = template(tmp.path());
    let opts = IngestOptions {
        segment_bytes: 40 << 10,
        ..Default::default()
    };
    let files: Vec<PathBuf> = [("c-", 150, 3), ("a-", 120, 4), ("d-", 150, 5)]
        .iter()
        .enumerate()
        .map(|(i, (prefix, n, seed))| {
            let p = tmp.path().join(format!("in-{i}.jsonl"));
            std::fs::write(&p, jsonl(prefix, *n, *seed)).unwrap();
            p
        })
        .collect();
    for i in 0..2 {
        let task = corpusql::job::TaskId::new(i, 2).unwrap();
        let inputs = files.iter().map(|p| Input::Path(p.clone())).collect();
        corpusql::ingest_task(&t, "j", task, inputs, &opts).unwrap();
    }
    let (made, failures) = run_faults("job-commit", &t, tmp.path(), &|d| {
        corpusql::job::commit(d, "j", &TagOptions::default()).map(|_| ())
    });
    assert_no_failures("job-commit", made, &failures);
}

#[test]
fn faults_during_policy() {
    check_op("policy", &|d| {
        Policy {
            allow: Some(vec!["public-domain".into(), "permissive".into()]),
            note: Some("fault test".into()),
        }
        .save(d)
    });
}

/// Unmounts a tmpfs when dropped.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// Fills the file system of `dir` with `fill`, then frees `free` bytes of it.
fn fill_disk(fill: &Path, free: u64) {
    use std::io::Write;
    let mut f = std::fs::File::create(fill).unwrap();
    let chunk = vec![0x5au8; 4096];
    let mut len = 0u64;
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(n) => len += n as u64,
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(28), "filling the disk: {e}");
                break;
            }
        }
    }
    f.set_len(len.saturating_sub(free)).unwrap();
}

/// The real thing: a small tmpfs (8 MiB) filled up, leaving from nothing to
/// 512 KiB free, while each operation runs. Skipped, with the reason, where
/// mounting is not permitted (not root, no tmpfs).
#[test]
fn a_real_full_disk_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let mnt = tmp.path().join("disk");
    std::fs::create_dir_all(&mnt).unwrap();
    let out = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=8m", "tmpfs"])
        .arg(&mnt)
        .output();
    match &out {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            eprintln!(
                "SKIPPED: a_real_full_disk_loses_nothing: cannot mount a tmpfs ({})",
                String::from_utf8_lossy(&o.stderr).trim()
            );
            return;
        }
        Err(e) => {
            eprintln!("SKIPPED: a_real_full_disk_loses_nothing: cannot run mount ({e})");
            return;
        }
    }
    let _mounted = Mounted(mnt.clone());
    let dir = mnt.join("corpus");
    let fill = mnt.join("fill");
    ingest_bytes(&dir, "a.jsonl", jsonl("a-", 300, 1)).unwrap();
    ingest_bytes(&dir, "b.jsonl", jsonl("b-", 200, 2)).unwrap();
    let mut made = 0;
    let mut failed_ops = 0;
    let ops: Vec<(&str, Box<Op>)> = vec![
        (
            "ingest",
            Box::new(|d: &Path| ingest_bytes(d, "c.jsonl", jsonl("c-", 3000, 3)).map(|_| ())),
        ),
        (
            "delete",
            Box::new(|d: &Path| corpusql::raw::maintain::delete(d, "year < 1970").map(|_| ())),
        ),
        (
            "compact",
            Box::new(|d: &Path| corpusql::raw::maintain::compact(d, 30 << 10).map(|_| ())),
        ),
        (
            "tag",
            Box::new(|d: &Path| {
                let opts = TagOptions {
                    taggers: vec![Tagger::Quality, Tagger::Dedup],
                    dedup_memory: 1 << 20,
                    force: true,
                    ..Default::default()
                };
                corpusql::raw::tag::tag(d, &opts).map(|_| ())
            }),
        ),
        (
            "policy",
            Box::new(|d: &Path| {
                Policy {
                    allow: Some(vec!["public-domain".into()]),
                    note: Some("x".repeat(100_000)),
                }
                .save(d)
            }),
        ),
    ];
    let mut next = 0;
    for (name, op) in &ops {
        for free in [0u64, 8 << 10, 32 << 10, 128 << 10, 512 << 10] {
            let before = observe(&dir).unwrap_or_else(|e| panic!("{name}: before: {e}"));
            fill_disk(&fill, free);
            eprintln!("full disk: {name} with {free} bytes free");
            let r = op(&dir);
            made += 1;
            failed_ops += r.is_err() as usize;
            let what = format!("full disk, {name} with {free} bytes free ({r:?})");
            // While the disk is still full, and after it is freed.
            for phase in ["full", "freed"] {
                if phase == "freed" {
                    std::fs::remove_file(&fill).unwrap();
                }
                let now = observe(&dir).unwrap_or_else(|e| panic!("{what}, {phase}: {e}"));
                let g = now.generation;
                assert!(
                    g == before.generation || g == before.generation + 1,
                    "{what}, {phase}: generation {g} after {}",
                    before.generation
                );
                if r.is_ok() && *name != "policy" {
                    assert_eq!(g, before.generation + 1, "{what}, {phase}");
                }
                if *name == "delete" {
                    assert!(now.keys.is_subset(&before.keys), "{what}, {phase}");
                } else {
                    assert!(
                        before.keys.is_subset(&now.keys),
                        "{what}, {phase}: lost keys"
                    );
                }
                if *name == "compact" || *name == "tag" || *name == "policy" {
                    assert_eq!(now.keys, before.keys, "{what}, {phase}");
                }
            }
            // The next writer succeeds.
            next += 1;
            let n = ingest_bytes(&dir, "next.jsonl", jsonl(&format!("n{next}-"), 20, next))
                .unwrap_or_else(|e| panic!("{what}: next ingest: {e}"));
            assert_eq!(n, 20);
            let o = orphans(&dir);
            assert!(o.is_empty(), "{what}: orphans {o:?}");
            if *name == "ingest" && r.is_ok() {
                // Make room for the next round.
                corpusql::raw::maintain::delete(&dir, "id = c-*").unwrap();
                corpusql::raw::maintain::compact(&dir, 1 << 20).unwrap();
            }
        }
    }
    eprintln!(
        "faults: real full disk (tmpfs 8 MiB): {made} operations on a full disk, {failed_ops} failed with an error, none lost a document"
    );
}
