//! Crash consistency, with real processes: the `corpusql` binary ingests a
//! few MB of JSONL (`--segment-mb 1`, so several segments are written) and is
//! killed with SIGKILL after a seeded random delay (early, mid and late in
//! the run). Reopened, the corpus must be exactly as before the ingest or
//! exactly as after it, verify clean, hold no orphan segment file, and take a
//! further ingest. A second test counts from this process while another
//! process ingests batch after batch: every count must be a committed total,
//! and counts never go down.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use corpusql::{ingest, Corpus, IngestOptions, Input};

const BIN: &str = env!("CARGO_BIN_EXE_corpusql");

/// Queries whose counts identify a state.
const QUERIES: &[&str] = &[
    "*",
    "lang = fr",
    "src = web/* and year >= 2000",
    "not tags = b",
];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Writes `n` small documents with keys `{prefix}{i}` to `path`.
fn write_jsonl(path: &Path, prefix: &str, n: usize, seed: u64) {
    let langs = ["fr", "en", "de", "es", "it"];
    let srcs = ["web/a", "web/b", "books", "code/rust"];
    let words = [
        "alpha", "beta", "gamma", "delta", "été", "über", "中文", "x",
    ];
    let mut rng = Rng(seed | 1);
    let mut out = String::with_capacity(n * 220);
    for i in 0..n {
        let mut text = String::new();
        for _ in 0..(10 + rng.below(25)) {
            text.push_str(words[rng.below(words.len() as u64) as usize]);
            text.push(' ');
        }
        let tag = ["b", "c"][rng.below(2) as usize];
        let rec = serde_json::json!({
            "id": format!("{prefix}{i}"),
            "text": text,
            "lang": langs[rng.below(5) as usize],
            "src": srcs[rng.below(4) as usize],
            "year": 1950 + rng.below(75),
            "tags": ["a", tag],
        });
        out.push_str(&rec.to_string());
        out.push('\n');
    }
    std::fs::write(path, out).unwrap();
}

fn ingest_cmd(dir: &Path, file: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.arg("--corpus")
        .arg(dir)
        .arg("ingest")
        .arg(file)
        .args(["--segment-mb", "1", "--quiet"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

/// The observable state: generation and the counts of [`QUERIES`].
fn state(dir: &Path) -> (u64, Vec<u64>) {
    let c = Corpus::open(dir).unwrap_or_else(|e| panic!("open {}: {e}", dir.display()));
    let counts = QUERIES
        .iter()
        .map(|q| c.query(q).unwrap().count())
        .collect();
    assert_eq!(c.len(), c.query("*").unwrap().count());
    (c.generation(), counts)
}

/// Every segment file (and temporary) of the directory is a listed segment.
fn assert_no_orphans(dir: &Path) {
    let c = Corpus::open(dir).unwrap();
    let listed: BTreeSet<&str> = c.state().segments.iter().map(|s| s.file.as_str()).collect();
    for e in std::fs::read_dir(dir).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        if name.starts_with("seg-") || name.ends_with(".tmp") {
            assert!(
                listed.contains(name.as_str()),
                "orphan {name} in {}",
                dir.display()
            );
        }
    }
    for f in &listed {
        assert!(dir.join(f).exists(), "listed {f} missing");
    }
}

fn assert_verifies(dir: &Path) {
    let v = corpusql::raw::maintain::verify(dir).unwrap();
    assert!(v.ok(), "verify {}: {v:?}", dir.display());
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

fn library_ingest(dir: &Path, file: &Path) -> u64 {
    let opts = IngestOptions {
        segment_bytes: 1 << 20,
        ..IngestOptions::default()
    };
    ingest(dir, vec![Input::Path(file.to_path_buf())], &opts)
        .unwrap()
        .ingested
}

fn wait_or_kill(mut child: Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("child ran past {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn killed_ingest_leaves_the_before_or_after_state() {
    const BASE: usize = 500;
    const BIG: usize = 20_000;
    const EXTRA: usize = 1_000;
    let tmp = tempfile::tempdir().unwrap();
    let big = tmp.path().join("big.jsonl");
    let base_file = tmp.path().join("base.jsonl");
    let extra = tmp.path().join("extra.jsonl");
    write_jsonl(&big, "big-", BIG, 11);
    write_jsonl(&base_file, "base-", BASE, 12);
    write_jsonl(&extra, "extra-", EXTRA, 13);
    assert!(std::fs::metadata(&big).unwrap().len() > 3_000_000);

    // The state before: a corpus of BASE documents.
    let template = tmp.path().join("template");
    assert_eq!(library_ingest(&template, &base_file), BASE as u64);
    let before = state(&template);
    assert_eq!(before.1[0], BASE as u64);

    // The state after, from an uninterrupted run, timed from spawn to its
    // commit (seen by polling the catalog) to place the kills.
    let full = tmp.path().join("full");
    copy_dir(&template, &full);
    let catalog = corpusql::raw::catalog::Catalog::new(&full);
    let t0 = Instant::now();
    let mut child = ingest_cmd(&full, &big).spawn().unwrap();
    let mut to_commit = None;
    while t0.elapsed() < Duration::from_secs(60) {
        if to_commit.is_none() && catalog.state().unwrap().generation > before.0 {
            to_commit = Some(t0.elapsed());
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let st = wait_or_kill(child, Duration::from_secs(1));
    assert!(st.success(), "uninterrupted ingest failed: {st}");
    let duration = to_commit.unwrap_or_else(|| t0.elapsed());
    let after = state(&full);
    assert_eq!(after.1[0], (BASE + BIG) as u64);
    let segs = Corpus::open(&full).unwrap().segments().len();
    assert!(segs >= 4, "only {segs} segments: raise the input size");
    assert_verifies(&full);
    assert_no_orphans(&full);

    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut seen = [0usize; 2];
    let mut left_orphans = 0;
    let iterations = 15;
    for i in 0..iterations {
        // Early, mid and late thirds of the run up to its commit (late goes
        // a little past it).
        let third = (i % 3) as u64;
        let span = duration.as_micros() as u64;
        let lo = span * third / 3;
        let hi = span * (third + 1) / 3 + if third == 2 { span / 10 } else { 0 };
        let delay = Duration::from_micros(lo + rng.below((hi - lo).max(1)));

        let dir = tmp.path().join(format!("it-{i}"));
        copy_dir(&template, &dir);
        let mut child = ingest_cmd(&dir, &big).spawn().unwrap();
        std::thread::sleep(delay);
        let _ = child.kill();
        let status = child.wait().unwrap();
        // Segment files written before the kill and not committed.
        let listed: Vec<String> = corpusql::raw::catalog::Catalog::new(&dir)
            .state()
            .unwrap()
            .segments
            .into_iter()
            .map(|s| s.file)
            .collect();
        let orphans = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("seg-") && !listed.contains(n))
            .count();
        left_orphans += (orphans > 0) as usize;

        let now = state(&dir);
        let committed = if now == before {
            false
        } else if now.1 == after.1 && now.0 == before.0 + 1 {
            true
        } else {
            panic!(
                "iteration {i} (killed after {delay:?}, {status}): state {now:?} is neither \
                 before {before:?} nor after {after:?}"
            );
        };
        seen[committed as usize] += 1;
        assert_verifies(&dir);
        assert_no_orphans(&dir);

        // The corpus takes further ingests.
        let base = now.1[0];
        if i % 5 == 4 {
            // A full ingest of the interrupted input (duplicates are skipped).
            library_ingest(&dir, &big);
            assert_eq!(state(&dir).1, after.1, "iteration {i}: full re-ingest");
        } else {
            assert_eq!(library_ingest(&dir, &extra), EXTRA as u64);
            assert_eq!(state(&dir).1[0], base + EXTRA as u64);
        }
        assert_verifies(&dir);
        assert_no_orphans(&dir);
        std::fs::remove_dir_all(&dir).unwrap();
    }
    eprintln!(
        "ingest committed after {duration:?}; killed runs: {} before commit ({left_orphans} \
         leaving segment files), {} after",
        seen[0], seen[1]
    );
    assert!(seen[0] > 0, "no run was killed before its commit");
    assert!(left_orphans > 0, "no killed run left a segment file behind");
}

#[test]
fn readers_only_see_committed_states() {
    const BATCH: usize = 2_000;
    const BATCHES: usize = 8;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    let files: Vec<PathBuf> = (0..BATCHES)
        .map(|b| {
            let p = tmp.path().join(format!("batch-{b}.jsonl"));
            write_jsonl(&p, &format!("b{b}-"), BATCH, 100 + b as u64);
            p
        })
        .collect();
    // The first batch creates the corpus, so that readers always find one.
    assert_eq!(library_ingest(&dir, &files[0]), BATCH as u64);

    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let done = done.clone();
        let dir = dir.clone();
        let files = files.clone();
        std::thread::spawn(move || {
            let mut ok = true;
            for f in &files[1..] {
                let st = wait_or_kill(
                    ingest_cmd(&dir, f).spawn().unwrap(),
                    Duration::from_secs(60),
                );
                ok &= st.success();
            }
            done.store(true, Ordering::SeqCst);
            ok
        })
    };
    let mut last = 0u64;
    let mut observed = BTreeSet::new();
    let mut reads = 0;
    while !done.load(Ordering::SeqCst) {
        let c = Corpus::open(&dir).unwrap();
        let n = c.len();
        assert_eq!(n, c.query("*").unwrap().count());
        assert_eq!(
            n % BATCH as u64,
            0,
            "read {n} documents: not a committed total"
        );
        assert!(n >= last, "count went down: {last} -> {n}");
        // What the snapshot says is readable.
        assert_eq!(c.query("lang exists").unwrap().count(), n);
        last = n;
        observed.insert(n);
        reads += 1;
    }
    assert!(writer.join().unwrap(), "an ingest failed");
    assert_eq!(state(&dir).1[0], (BATCH * BATCHES) as u64);
    assert_verifies(&dir);
    assert_no_orphans(&dir);
    eprintln!("{reads} reads; counts seen: {observed:?}");
    assert!(observed.len() >= 2, "the reader saw only {observed:?}");
}

/// A crash between the catalog commit and the rename of the readers'
/// `CURRENT` manifest leaves the manifest one generation behind. Simulated
/// by putting back the previous manifest after a delete, and after a
/// compaction (whose old segment files are gone): readers see the state
/// before or after, and the next writer builds on the committed state.
#[test]
fn stale_current_manifest_is_before_or_after() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a.jsonl");
    let extra = tmp.path().join("b.jsonl");
    write_jsonl(&file, "a-", 3_000, 21);
    write_jsonl(&extra, "b-", 500, 22);
    let current = |d: &Path| d.join(corpusql::raw::catalog::CURRENT_FILE);
    for op in ["delete", "compact"] {
        let dir = tmp.path().join(op);
        library_ingest(&dir, &file);
        let before = state(&dir);
        let old = std::fs::read(current(&dir)).unwrap();
        match op {
            "delete" => {
                corpusql::raw::maintain::delete(&dir, "lang = fr").unwrap();
            }
            _ => {
                corpusql::raw::maintain::compact(&dir, 1 << 20).unwrap();
            }
        }
        let after = state(&dir);
        std::fs::write(current(&dir), &old).unwrap();
        let now = state(&dir);
        assert!(
            now == before || now == after,
            "{op}: {now:?} is neither {before:?} nor {after:?}"
        );
        assert_verifies(&dir);
        assert_eq!(library_ingest(&dir, &extra), 500);
        let last = state(&dir);
        assert_eq!(last.1[0], after.1[0] + 500, "{op}: next ingest");
        // Deleted documents stay deleted; compacted ones stay.
        let fr_a = Corpus::open(&dir)
            .unwrap()
            .query("lang = fr and id = a-*")
            .unwrap()
            .count();
        assert_eq!(
            fr_a, after.1[1],
            "{op}: lang = fr among the first documents"
        );
        assert_verifies(&dir);
        assert_no_orphans(&dir);
    }
}
