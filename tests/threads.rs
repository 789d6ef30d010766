//! Every command on one CPU: the `corpusql` binary runs each subcommand with
//! `--threads 1` and again under `taskset -c 0` (where the affinity mask, not
//! a flag, gives rayon one thread) on a corpus of several segments, each
//! under a watchdog. Issue 10: ingest of more than one segment hung forever
//! on one CPU (the only pool worker waited for the segment-writer thread,
//! which waited for that same pool); a hang here fails the test instead of
//! hanging CI.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;

const BIN: &str = env!("CARGO_BIN_EXE_corpusql");

/// How long one command may take before it counts as hung. The slowest
/// command here takes a few seconds on one core.
const WATCHDOG: Duration = Duration::from_secs(120);

/// How a command is limited to one CPU.
#[derive(Clone, Copy, Debug)]
enum OneCpu {
    /// `--threads 1`.
    Flag,
    /// `taskset -c 0`: the process may run on CPU 0 only.
    Taskset,
}

fn taskset_works() -> bool {
    Command::new("taskset")
        .args(["-c", "0", "true"])
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `corpusql -C dir ARGS` on one CPU, killing it after [`WATCHDOG`].
fn run(how: OneCpu, dir: &Path, args: &[&str]) -> Output {
    let mut c = match how {
        OneCpu::Flag => {
            let mut c = Command::new(BIN);
            c.args(["--threads", "1"]);
            c
        }
        OneCpu::Taskset => {
            let mut c = Command::new("taskset");
            c.args(["-c", "0", BIN]);
            c
        }
    };
    c.arg("-C").arg(dir).args(args);
    // Output goes to files, read after the exit: a pipe nobody reads while
    // the watchdog waits would fill and stall the child.
    let out = tempfile::tempfile().expect("temp file");
    let err = tempfile::tempfile().expect("temp file");
    c.stdin(Stdio::null())
        .stdout(out.try_clone().expect("dup"))
        .stderr(err.try_clone().expect("dup"));
    let mut child = c.spawn().expect("spawn corpusql");
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if start.elapsed() > WATCHDOG {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{how:?}: `corpusql {}` did not finish in {WATCHDOG:?} (hung on one CPU)\nstderr: {}",
                args.join(" "),
                read_all(err)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let o = Output {
        status,
        stdout: read_all(out).into_bytes(),
        stderr: read_all(err).into_bytes(),
    };
    assert!(
        o.status.success(),
        "{how:?}: `corpusql {}` failed: {}\n{}",
        args.join(" "),
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn read_all(mut f: std::fs::File) -> String {
    use std::io::{Read, Seek};
    let mut s = String::new();
    f.seek(std::io::SeekFrom::Start(0)).expect("seek");
    f.read_to_string(&mut s).expect("read");
    s
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Every command of the CLI, in the order a user would run them.
fn every_command(how: OneCpu) {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let data = common::demo_jsonl(&t.join("docs.jsonl"), 6000, 42, "");
    let dir = t.join("corpus");
    let p = |name: &str| t.join(name).to_string_lossy().into_owned();
    let data = data.to_string_lossy().into_owned();

    // Several segments: 12 MiB of input at 1 MiB a segment.
    let o = run(
        how,
        &dir,
        &["ingest", "--segment-mb", "1", "--quiet", &data],
    );
    let _ = o;
    let segs = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| {
            let n = e.as_ref().unwrap().file_name();
            let n = n.to_string_lossy();
            n.starts_with("seg-") && n.ends_with(".cqs")
        })
        .count();
    assert!(
        segs >= 4,
        "{how:?}: expected several segments, found {segs}"
    );
    let total: u64 = stdout(&run(how, &dir, &["count", "*"]))
        .trim()
        .parse()
        .unwrap();
    assert_eq!(total, 6000, "{how:?}");

    let mix = p("mix.toml");
    std::fs::write(
        &mix,
        "seed = 7\ntokens = 400_000\nseq_len = 512\n\n\
         [[component]]\nname = \"fr\"\nquery = \"lang = fr\"\nweight = 0.6\n\n\
         [[component]]\nname = \"rest\"\nquery = \"not lang = fr\"\nweight = 0.4\n",
    )
    .unwrap();

    let first = stdout(&run(
        how,
        &dir,
        &["query", "*", "--fields", "id", "--limit", "1"],
    ));
    let key: serde_json::Value = serde_json::from_str(first.trim()).unwrap();
    let key = key["id"].as_str().unwrap().to_string();

    let steps: Vec<Vec<String>> = vec![
        vec![
            "query".into(),
            "lang = fr".into(),
            "--limit".into(),
            "50".into(),
        ],
        vec![
            "stats".into(),
            "*".into(),
            "--by".into(),
            "lang,license_class".into(),
        ],
        vec!["get".into(), key.clone()],
        vec![
            "export".into(),
            "lang = fr".into(),
            "-o".into(),
            p("fr.jsonl.zst"),
        ],
        vec!["schema".into()],
        vec!["inspect".into()],
        vec!["log".into()],
        vec!["verify".into()],
        vec!["mix".into(), "plan".into(), mix.clone()],
        vec![
            "stream".into(),
            mix.clone(),
            "--rank".into(),
            "1".into(),
            "--world".into(),
            "2".into(),
            "-o".into(),
            p("rank1.u16"),
            "--state-out".into(),
            p("state.json"),
        ],
        vec![
            "stream".into(),
            mix.clone(),
            "--resume".into(),
            p("state.json"),
            "-o".into(),
            p("resumed.u16"),
        ],
        vec![
            "trace".into(),
            mix.clone(),
            "--sequence".into(),
            "12".into(),
            "--offset".into(),
            "5".into(),
        ],
        vec![
            "report".into(),
            mix.clone(),
            "-o".into(),
            p("datasheet.html"),
        ],
        vec!["tokenize".into(), "--tokenizer".into(), "bytes".into()],
        vec![
            "tokenizer".into(),
            "train".into(),
            "lang = en".into(),
            "--vocab-size".into(),
            "400".into(),
            "-o".into(),
            p("tok.json"),
        ],
        vec![
            "tag".into(),
            "--taggers".into(),
            "language,quality,pii,dedup".into(),
        ],
        vec!["count".into(), "is_dup = false and lang_score > 0.5".into()],
        vec![
            "policy".into(),
            "allow".into(),
            "public-domain,permissive,attribution".into(),
        ],
        vec!["delete".into(), "source = wikipedia-de".into()],
        vec!["compact".into()],
        vec!["verify".into()],
    ];
    for s in &steps {
        let args: Vec<&str> = s.iter().map(String::as_str).collect();
        run(how, &dir, &args);
    }
    // A second ingest into the existing, compacted corpus replaces in place.
    run(
        how,
        &dir,
        &[
            "ingest",
            "--segment-mb",
            "1",
            "--quiet",
            "--on-duplicate",
            "replace",
            &data,
        ],
    );
    let after: u64 = stdout(&run(how, &dir, &["count", "*"]))
        .trim()
        .parse()
        .unwrap();
    assert_eq!(after, 6000, "{how:?}");
    run(how, &dir, &["verify"]);
}

#[test]
fn every_command_finishes_with_one_thread() {
    every_command(OneCpu::Flag);
}

#[test]
fn every_command_finishes_on_one_cpu() {
    if !taskset_works() {
        eprintln!("SKIPPED: taskset is not available here");
        return;
    }
    every_command(OneCpu::Taskset);
}

/// Runs `f` on the only worker of this test process's global rayon pool
/// (built with one thread), under the watchdog: the library's own threads
/// (segment writer, stream prefetch) then share that one worker with `f`.
fn on_the_only_worker<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    one_thread_global_pool();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (r, ()) = rayon::join(f, || ());
        let _ = tx.send(r);
    });
    rx.recv_timeout(WATCHDOG)
        .unwrap_or_else(|_| panic!("{what} on the only worker of a one-thread pool hung"))
}

/// Builds this process's global pool with one worker; every library test
/// calls it first, before anything else can start the pool with more.
fn one_thread_global_pool() {
    static ONE: std::sync::Once = std::sync::Once::new();
    ONE.call_once(|| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build_global()
            .expect("the global pool is built once, here");
    });
}

/// `ingest` called from a pool worker (a user's `par_iter`) must not wait
/// for the pool it occupies.
#[test]
fn library_ingest_on_a_pool_worker() {
    one_thread_global_pool();
    let tmp = tempfile::tempdir().unwrap();
    let data = common::demo_jsonl(&tmp.path().join("docs.jsonl"), 3000, 42, "");
    let dir = tmp.path().join("c");
    let d = dir.clone();
    let got = on_the_only_worker("ingest", move || {
        let opts = corpusql::IngestOptions {
            segment_bytes: 1 << 20,
            ..Default::default()
        };
        corpusql::ingest(&d, vec![corpusql::Input::Path(data)], &opts)
            .map(|r| (r.ingested, r.segments))
    });
    let (docs, segments) = got.unwrap();
    assert_eq!(docs, 3000);
    assert!(segments >= 3, "{segments}");
    let o = Command::new(BIN)
        .arg("-C")
        .arg(&dir)
        .args(["count", "*"])
        .output()
        .unwrap();
    assert_eq!(stdout(&o).trim(), "3000");
}

/// The streamer consumed on a pool worker: its prefetch thread needs that
/// pool, so waiting for a batch (or for the thread, in `finish`) must not
/// hold the only worker.
#[test]
fn library_stream_on_a_pool_worker() {
    one_thread_global_pool();
    let tmp = tempfile::tempdir().unwrap();
    let data = common::demo_jsonl(&tmp.path().join("docs.jsonl"), 1500, 42, "");
    let dir = tmp.path().join("c");
    let opts = corpusql::IngestOptions {
        segment_bytes: 1 << 20,
        ..Default::default()
    };
    corpusql::ingest(&dir, vec![corpusql::Input::Path(data)], &opts).unwrap();
    const MIX: &str = "seed = 3\ntokens = 300_000\nseq_len = 256\n\n\
               [[component]]\nname = \"all\"\nquery = \"*\"\nweight = 1\n";
    let d = dir.clone();
    let (first, state, all) = on_the_only_worker("stream", move || {
        let corpus = corpusql::Corpus::open(&d).unwrap();
        let m = corpusql::raw::train::mixture::Mixture::from_toml(MIX, "mix.toml").unwrap();
        let mut s = corpusql::raw::train::Stream::open(&corpus, &m, Default::default()).unwrap();
        let mut first = 0u64;
        for _ in 0..5 {
            first += s.next_batch(8).unwrap().unwrap().rows() as u64;
        }
        // Stopping early joins the prefetch thread from the worker.
        let state = s.state();
        drop(s);
        let mut s = corpusql::raw::train::Stream::open(&corpus, &m, Default::default()).unwrap();
        let mut all = 0u64;
        while let Some(b) = s.next_batch(8).unwrap() {
            all += b.rows() as u64;
        }
        (first, state.next_sequence, all)
    });
    assert_eq!(first, 40);
    assert_eq!(state, first);
    assert_eq!(all, 300_000 / 256);
}
