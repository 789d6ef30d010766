//! Jobs (Slurm-style task arrays): tasks stage ingest or tagging work under
//! `DIR/jobs/NAME/`, run in any order, any number of times; one commit makes
//! all of it visible. Checked against one plain ingest / tag run of the same
//! inputs: same documents, same duplicates decisions, same signals.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{export_by_id, shared_file};
use corpusql::job::{self, TaskId};
use corpusql::{ingest, ingest_task, tag_task, Corpus, IngestOptions, Input, OnDuplicate};
use corpusql::{TagOptions, Tagger};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_corpusql"))
}

fn task(i: u32, n: u32) -> TaskId {
    TaskId::new(i, n).unwrap()
}

/// Writes the first `limit` lines of the shared corpus as `shards` JSONL files.
fn shared_shards(dir: &Path, shards: usize, limit: usize) -> Option<PathBuf> {
    let src = shared_file("realcorpus-dev.jsonl.zst")?;
    let raw = zstd::decode_all(std::fs::File::open(src).unwrap()).unwrap();
    let lines: Vec<&[u8]> = raw
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .take(limit)
        .collect();
    let out = dir.join("shards");
    std::fs::create_dir_all(&out).unwrap();
    let per = lines.len().div_ceil(shards);
    for (i, chunk) in lines.chunks(per).enumerate() {
        let mut b = chunk.join(&b'\n');
        b.push(b'\n');
        std::fs::write(out.join(format!("part-{i:02}.jsonl")), b).unwrap();
    }
    Some(out)
}

fn inputs(p: &Path) -> Vec<Input> {
    vec![Input::Path(p.to_path_buf())]
}

fn opts(dup: OnDuplicate) -> IngestOptions {
    IngestOptions {
        on_duplicate: dup,
        // Several segments per task: duplicates across segments of a task
        // and across tasks both get exercised.
        segment_bytes: 8 << 20,
        ..Default::default()
    }
}

#[test]
fn a_job_of_tasks_in_any_order_equals_one_ingest() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(shards) = shared_shards(tmp.path(), 7, usize::MAX) else {
        return;
    };
    let plain = tmp.path().join("plain");
    let jobbed = tmp.path().join("job");
    let o = opts(OnDuplicate::Skip);
    let r = ingest(&plain, inputs(&shards), &o).unwrap();
    // Out of order, task 1 twice (a requeued Slurm task replaces its staging).
    for i in [2, 0, 1, 1] {
        let t = ingest_task(&jobbed, "nightly", task(i, 3), inputs(&shards), &o).unwrap();
        assert!(!t.committed);
    }
    assert!(
        !jobbed.join("catalog.redb").exists() || Corpus::open(&jobbed).unwrap().is_empty(),
        "tasks commit nothing"
    );
    let st = job::status(&jobbed, "nightly").unwrap();
    assert_eq!(st.finished, vec![0, 1, 2]);
    assert!(st.missing.is_empty());
    let jr = job::commit(&jobbed, "nightly", &TagOptions::default()).unwrap();
    assert_eq!(jr.tasks, 3);
    assert_eq!(jr.ingested, r.ingested);
    assert_eq!(jr.generation, Some(1), "one generation for the whole job");
    assert!(
        !jobbed.join("jobs").exists(),
        "the staging goes once committed"
    );
    let a = Corpus::open(&plain).unwrap();
    let b = Corpus::open(&jobbed).unwrap();
    assert_eq!(a.len(), b.len());
    for q in [
        "*",
        "license_class = public-domain",
        "lang = fr",
        "exists source",
    ] {
        assert_eq!(a.count(q).unwrap(), b.count(q).unwrap(), "{q}");
    }
    let by = vec!["license_id".to_string(), "lang".to_string()];
    let sa = a.stats(&a.all(), &by).unwrap();
    let sb = b.stats(&b.all(), &by).unwrap();
    assert_eq!(format!("{:?}", sa.groups), format!("{:?}", sb.groups));
    assert!(
        export_by_id(&a.all()) == export_by_id(&b.all()),
        "same records"
    );
    // Provenance: one ingest-log entry per file, with the same counts.
    let la = a.catalog().ingest_log().unwrap();
    let lb = b.catalog().ingest_log().unwrap();
    assert_eq!(la.len(), 7);
    let key = |l: &corpusql::raw::catalog::IngestLogEntry| {
        (
            l.source.clone(),
            l.content_hash.clone(),
            l.ingested,
            l.skipped,
        )
    };
    assert_eq!(
        la.iter().map(key).collect::<Vec<_>>(),
        lb.iter().map(key).collect::<Vec<_>>()
    );
    assert!(Corpus::verify_dir(&jobbed).unwrap().problems.is_empty());
}

#[test]
fn a_missing_or_killed_task_blocks_the_commit_and_nothing_is_committed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    let input = common::demo_jsonl(&tmp.path().join("demo.jsonl"), 300, 7, "");
    let mut files = Vec::new();
    for i in 0..4 {
        let p = tmp.path().join(format!("in-{i}.jsonl"));
        std::fs::copy(&input, &p).unwrap();
        let s = std::fs::read_to_string(&p)
            .unwrap()
            .replace("{\"id\": \"", &format!("{{\"id\": \"f{i}-"));
        std::fs::write(&p, s).unwrap();
        files.push(Input::Path(p));
    }
    let o = opts(OnDuplicate::Skip);
    let all = || {
        files.iter().map(|f| match f {
            Input::Path(p) => Input::Path(p.clone()),
            _ => unreachable!(),
        })
    };
    ingest_task(&dir, "j", task(0, 4), all().collect(), &o).unwrap();
    ingest_task(&dir, "j", task(3, 4), all().collect(), &o).unwrap();
    // Task 1 was killed mid-way: its temporary folder holds a segment but
    // no manifest.
    let killed = job::job_dir(&dir, "j").join(".task-00001-of-00004.999-1.tmp");
    std::fs::create_dir_all(&killed).unwrap();
    std::fs::write(
        killed.join("seg-4611686018427387904.cqs"),
        b"half a segment",
    )
    .unwrap();
    let st = job::status(&dir, "j").unwrap();
    assert_eq!(st.missing, vec![1, 2]);
    let e = job::commit(&dir, "j", &TagOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("2 of 4 tasks") && e.contains("1, 2"), "{e}");
    assert!(e.contains("Nothing was committed"), "{e}");
    assert!(!dir.join("catalog.redb").exists(), "no corpus was created");
    // The same through the CLI: an error exit, a clear message, no panic.
    let out = bin()
        .args(["-C"])
        .arg(&dir)
        .args(["commit", "--job", "j"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("have not finished") && !err.contains("panicked"),
        "{err}"
    );
    // The missing tasks run (on one thread, through the CLI); the commit goes.
    for i in [1, 2] {
        let mut c = bin();
        c.args(["--threads", "1", "-C"]).arg(&dir).args([
            "ingest",
            "--job",
            "j",
            "--task",
            &format!("{i}/4"),
            "-q",
        ]);
        for f in all() {
            if let Input::Path(p) = f {
                c.arg(p);
            }
        }
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("task {i}/4 of job j")));
    }
    let r = job::commit(&dir, "j", &TagOptions::default()).unwrap();
    assert_eq!(r.ingested, 1200);
    assert_eq!(Corpus::open(&dir).unwrap().len(), 1200);
    assert!(!killed.exists());
}

#[test]
fn bad_task_arguments_are_refused_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    for (args, want) in [
        (vec!["--task", "3/3", "--job", "j"], "below the count"),
        (vec!["--task", "x", "--job", "j"], "expected I/N"),
        (vec!["--task", "0/2", "--job", "../up"], "job name"),
        (vec!["--task", "0/2"], "--job"),
    ] {
        let out = bin()
            .arg("-C")
            .arg(tmp.path().join("c"))
            .arg("ingest")
            .args(&args)
            .arg(tmp.path())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let out = bin()
        .arg("-C")
        .arg(tmp.path().join("c"))
        .args(["commit", "--job", "never-ran"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nothing staged"), "{err}");
}

/// Three files whose keys collide across files (and so across tasks).
fn colliding_files(dir: &Path) -> Vec<PathBuf> {
    let docs = [
        vec![("k1", "one-a"), ("k2", "two-a"), ("k5", "five-a")],
        vec![("k1", "one-b"), ("k3", "three-b")],
        vec![("k3", "three-c"), ("k4", "four-c"), ("k1", "one-c")],
    ];
    docs.iter()
        .enumerate()
        .map(|(i, d)| {
            let p = dir.join(format!("f{i}.jsonl"));
            let body: String = d
                .iter()
                .map(|(k, t)| {
                    format!("{{\"id\": \"{k}\", \"text\": \"{t}\", \"license\": \"pd\"}}\n")
                })
                .collect();
            std::fs::write(&p, body).unwrap();
            p
        })
        .collect()
}

fn texts(dir: &Path) -> Vec<(String, String)> {
    let c = Corpus::open(dir).unwrap();
    let mut v: Vec<(String, String)> = export_by_id(&c.all())
        .into_iter()
        .map(|(k, v)| (k, v["text"].as_str().unwrap().to_string()))
        .collect();
    v.sort();
    v
}

#[test]
fn duplicate_keys_across_tasks_are_decided_as_one_ingest_decides_them() {
    let tmp = tempfile::tempdir().unwrap();
    let files = colliding_files(tmp.path());
    let ins = || {
        files
            .iter()
            .map(|p| Input::Path(p.clone()))
            .collect::<Vec<_>>()
    };
    for (name, dup) in [
        ("skip", OnDuplicate::Skip),
        ("replace", OnDuplicate::Replace),
    ] {
        let plain = tmp.path().join(format!("plain-{name}"));
        let jobbed = tmp.path().join(format!("job-{name}"));
        let o = opts(dup);
        let r = ingest(&plain, ins(), &o).unwrap();
        for i in 0..3 {
            ingest_task(&jobbed, "d", task(i, 3), ins(), &o).unwrap();
        }
        let jr = job::commit(&jobbed, "d", &TagOptions::default()).unwrap();
        assert_eq!(texts(&plain), texts(&jobbed), "{name}");
        assert_eq!(jr.skipped, r.skipped, "{name}");
        assert!(
            jr.commit_duplicates >= 2,
            "{name}: found across tasks at commit"
        );
        assert_eq!(
            Corpus::open(&jobbed).unwrap().len(),
            Corpus::open(&plain).unwrap().len()
        );
    }
    // --on-duplicate error: the commit is refused and changes nothing.
    let jobbed = tmp.path().join("job-error");
    let o = opts(OnDuplicate::Error);
    for i in 0..3 {
        ingest_task(&jobbed, "d", task(i, 3), ins(), &o).unwrap();
    }
    let e = job::commit(&jobbed, "d", &TagOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("key") && e.contains("nothing was committed"),
        "{e}"
    );
    let c = Corpus::open(&jobbed).unwrap();
    assert_eq!(c.len(), 0);
    assert_eq!(common::segment_files(&jobbed), Vec::<String>::new());
}

#[test]
fn documents_committed_after_the_tasks_ran_are_checked_at_commit() {
    let tmp = tempfile::tempdir().unwrap();
    let files = colliding_files(tmp.path());
    let dir = tmp.path().join("c");
    let o = opts(OnDuplicate::Skip);
    for i in 0..2 {
        ingest_task(
            &dir,
            "late",
            task(i, 2),
            vec![Input::Path(files[2].clone())],
            &o,
        )
        .unwrap();
    }
    // Meanwhile an ingest commits k4 (which task 1 also holds).
    let k4 = tmp.path().join("k4.jsonl");
    std::fs::write(
        &k4,
        "{\"id\": \"k4\", \"text\": \"four-first\", \"license\": \"pd\"}\n",
    )
    .unwrap();
    ingest(&dir, vec![Input::Path(k4)], &o).unwrap();
    let r = job::commit(&dir, "late", &TagOptions::default()).unwrap();
    assert_eq!(r.commit_duplicates, 1);
    let t = texts(&dir);
    assert!(t.contains(&("k4".into(), "four-first".into())), "{t:?}");
    assert_eq!(t.len(), 3, "{t:?}");
    assert_eq!(Corpus::open(&dir).unwrap().generation(), 2);
}

#[test]
fn a_commit_interrupted_before_its_cleanup_is_recognized() {
    let tmp = tempfile::tempdir().unwrap();
    let files = colliding_files(tmp.path());
    let dir = tmp.path().join("c");
    let o = opts(OnDuplicate::Skip);
    let ins = || {
        files
            .iter()
            .map(|p| Input::Path(p.clone()))
            .collect::<Vec<_>>()
    };
    for i in 0..2 {
        ingest_task(&dir, "once", task(i, 2), ins(), &o).unwrap();
    }
    // What a crash between the catalog commit and the staging's removal
    // leaves: the committed generation and the staging.
    let jd = job::job_dir(&dir, "once");
    let keep = tmp.path().join("kept-staging");
    copy_tree(&jd, &keep);
    let first = job::commit(&dir, "once", &TagOptions::default()).unwrap();
    copy_tree(&keep, &jd);
    let again = job::commit(&dir, "once", &TagOptions::default()).unwrap();
    assert!(again.already_committed);
    assert_eq!(again.generation, first.generation);
    let c = Corpus::open(&dir).unwrap();
    assert_eq!(c.generation(), first.generation.unwrap());
    assert_eq!(c.len(), 5);
    assert!(!jd.exists());
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        if e.file_type().unwrap().is_dir() {
            copy_tree(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

/// Every document's record with its signal values, one JSON line each, sorted.
fn signals(dir: &Path) -> Vec<String> {
    use corpusql::raw::export::{write_jsonl, Projection};
    let c = Corpus::open(dir).unwrap();
    let mut out = Vec::new();
    write_jsonl(&c.all(), &Projection::WithSignals, &mut out).unwrap();
    common::sorted_lines(out)
}

#[test]
fn a_tagging_job_equals_one_tagging_run_dedup_included() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(shards) = shared_shards(tmp.path(), 4, 6000) else {
        return;
    };
    let plain = tmp.path().join("plain");
    let jobbed = tmp.path().join("job");
    let o = IngestOptions {
        segment_bytes: 4 << 20,
        ..Default::default()
    };
    ingest(&plain, inputs(&shards), &o).unwrap();
    ingest(&jobbed, inputs(&shards), &o).unwrap();
    let n_segs = Corpus::open(&jobbed).unwrap().segments().len();
    assert!(n_segs >= 3, "{n_segs} segments");
    let topts = TagOptions {
        taggers: vec![Tagger::Language, Tagger::Quality, Tagger::Dedup],
        ..Default::default()
    };
    Corpus::open(&plain).unwrap().tag(&topts).unwrap();
    for i in [2, 0, 1] {
        let r = tag_task(&jobbed, "tags", task(i, 3), &topts).unwrap();
        assert_eq!(r.generation, None);
    }
    let before = Corpus::open(&jobbed).unwrap().generation();
    let r = job::commit(&jobbed, "tags", &topts).unwrap();
    assert_eq!(r.generation, Some(before + 1));
    assert!(
        r.outcomes.iter().any(|o| o.0 == "dedup" && o.2 == 6000),
        "{:?}",
        r.outcomes
    );
    let a = signals(&plain);
    let b = signals(&jobbed);
    assert_eq!(a.len(), 6000);
    assert!(a == b, "signals differ");
    let c = Corpus::open(&jobbed).unwrap();
    assert!(
        c.count("is_dup = true").unwrap() > 0,
        "the sample has duplicates"
    );
    assert!(Corpus::verify_dir(&jobbed).unwrap().problems.is_empty());
}

#[test]
fn a_tagging_job_is_refused_when_its_segments_were_compacted_meanwhile() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    let input = common::demo_jsonl(&tmp.path().join("demo.jsonl"), 400, 3, "");
    let o = IngestOptions {
        segment_bytes: 64 << 10,
        ..Default::default()
    };
    ingest(&dir, vec![Input::Path(input)], &o).unwrap();
    let topts = TagOptions {
        taggers: vec![Tagger::Quality],
        ..Default::default()
    };
    for i in 0..2 {
        tag_task(&dir, "q", task(i, 2), &topts).unwrap();
    }
    let mut c = Corpus::open(&dir).unwrap();
    c.delete("lang = fr").unwrap();
    c.compact(64 << 20).unwrap();
    let g = Corpus::open(&dir).unwrap().generation();
    let e = job::commit(&dir, "q", &topts).unwrap_err().to_string();
    assert!(
        e.contains("compacted") && e.contains("run the job's tasks again"),
        "{e}"
    );
    let c = Corpus::open(&dir).unwrap();
    assert_eq!(c.generation(), g);
    assert!(
        c.count("exists rpv2_word_count").is_err()
            || c.count("exists rpv2_word_count").unwrap() == 0
    );
    assert!(Corpus::verify_dir(&dir).unwrap().problems.is_empty());
}

#[test]
fn tasks_that_disagree_are_refused_at_commit_and_nothing_is_committed() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a.jsonl");
    let b = tmp.path().join("b.jsonl");
    std::fs::write(&a, "{\"id\": \"a\", \"text\": \"x\", \"year\": 1990}\n").unwrap();
    std::fs::write(
        &b,
        "{\"id\": \"b\", \"text\": \"y\", \"year\": \"ninety\"}\n",
    )
    .unwrap();
    let ins = || vec![Input::Path(a.clone()), Input::Path(b.clone())];
    let o = opts(OnDuplicate::Skip);
    // A field that is a number in one task and a string in another.
    let dir = tmp.path().join("kinds");
    for i in 0..2 {
        ingest_task(&dir, "k", task(i, 2), ins(), &o).unwrap();
    }
    let e = job::commit(&dir, "k", &TagOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("field `year`") && e.contains("nothing was committed"),
        "{e}"
    );
    assert_eq!(Corpus::open(&dir).unwrap().len(), 0);
    assert!(
        job::job_dir(&dir, "k").exists(),
        "the staging stays for a retry"
    );
    // Tasks run with different counts.
    let dir = tmp.path().join("counts");
    ingest_task(&dir, "c", task(0, 2), ins(), &o).unwrap();
    ingest_task(&dir, "c", task(1, 3), ins(), &o).unwrap();
    let e = job::commit(&dir, "c", &TagOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("same --task count"), "{e}");
    assert!(!dir.join("catalog.redb").exists());
}
