//! The streamer against issue 3: byte-identical output on reruns (library,
//! prefetching `Stream` and CLI), ranks that interleave into the world=1
//! stream, resume at arbitrary points (also onto another number of ranks),
//! token shares and epochs as planned, a query stream that visits every
//! match exactly once, refusals (stale state, changed mixture, max_epochs,
//! u16 for big vocabularies), the `.npy` header, and deletion.
//!
//! Corpora are the deterministic demo corpus (`corpusql demo`),
//! ingested with 1 MiB segments so that every stream spans several segments
//! and many blocks. The byte tokenizer makes the stream checkable by hand:
//! text bytes are ids 0..255 and 256 ends a document.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use corpusql::raw::tokenize::BYTES_EOS;
use corpusql::raw::train::mixture::{self, Mixture};
use corpusql::raw::train::{
    Emitted, Engine, EngineOptions, Schedule, Stream, StreamOptions, StreamState,
};
use corpusql::{Corpus, IngestOptions};
use serde_json::Value;

const DOCS: usize = 3000;
const GEN_SEED: u64 = 7;
const SEQ: usize = 128;

/// Four components, every one downsampled; small windows so that the
/// window logic is exercised.
const MIX: &str = r#"
seed = 42
tokens = 600_000
seq_len = 128
tokenizer = "bytes"
shuffle_window_blocks = 2

[[component]]
name = "fr"
query = "lang=fr and license in (cc-by-4.0, cc-by-sa-4.0, pd, etalab-2.0)"
weight = 0.5

[[component]]
name = "en"
query = "lang=en"
weight = 0.3

[[component]]
name = "code"
query = "lang=code"
weight = 0.15
max_epochs = 4

[[component]]
name = "de"
query = "lang=de"
weight = 0.05
"#;

// ---------------------------------------------------------------------------
// Fixtures and helpers
// ---------------------------------------------------------------------------

struct Fixture {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    mix_file: PathBuf,
}

fn build_corpus(dir: &Path, docs: usize, seed: u64) {
    build_corpus_with(dir, docs, seed, 1 << 20)
}

fn build_corpus_with(dir: &Path, docs: usize, seed: u64, segment_bytes: usize) {
    let jsonl = common::demo_bytes(docs as u32, seed as u32);
    let opts = IngestOptions {
        segment_bytes,
        ..Default::default()
    };
    let rep = common::ingest_bytes(dir, "demo.jsonl", &jsonl, &opts).unwrap();
    assert_eq!(rep.ingested, docs as u64);
}

/// The shared, read-only demo corpus (only the byte tokenizer is used on
/// it, so no test writes token-count files into it).
fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("corpus");
        build_corpus(&dir, DOCS, GEN_SEED);
        let c = Corpus::open(&dir).unwrap();
        assert!(
            c.segments().len() >= 4,
            "the fixture should span several segments, has {}",
            c.segments().len()
        );
        let mix_file = tmp.path().join("mix.toml");
        std::fs::write(&mix_file, MIX).unwrap();
        Fixture {
            _tmp: tmp,
            dir,
            mix_file,
        }
    })
}

/// A private copy of the fixture (for tests that change the corpus).
fn private_copy() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("corpus");
    common::copy_corpus(&fixture().dir, &dir);
    (tmp, dir)
}

fn mix() -> Mixture {
    Mixture::from_toml(MIX, "MIX").unwrap()
}

fn opts(rank: u64, world: u64, start: u64, stop_after: Option<u64>) -> EngineOptions {
    EngineOptions {
        rank,
        world,
        start,
        stop_after,
        ..EngineOptions::default()
    }
}

/// What one library run produced.
struct Run {
    /// One entry per sequence, in emission order.
    seqs: Vec<Vec<u32>>,
    /// Global sequence index of each.
    ids: Vec<u64>,
    /// Document starts per sequence, as the batches gave them.
    doc_starts: Vec<Vec<u32>>,
    /// Component and the component's own sequence index of each.
    comps: Vec<(u32, u64)>,
    emitted: Emitted,
    state: StreamState,
}

/// Runs an [`Engine`] to its end in batches of `rows`.
fn run_engine(dir: &Path, m: &Mixture, o: EngineOptions, rows: usize) -> Run {
    let corpus = Corpus::open(dir).unwrap();
    let mut e = Engine::new(&corpus, m, o).unwrap();
    let total = e.total();
    let mut run = Run {
        seqs: Vec::new(),
        ids: Vec::new(),
        doc_starts: Vec::new(),
        comps: Vec::new(),
        emitted: Emitted::default(),
        state: e.state(),
    };
    while let Some(b) = e.next_batch(rows).unwrap() {
        assert!(b.rows() >= 1 && b.rows() <= rows);
        assert_eq!(b.seq_len(), m.seq_len);
        assert_eq!(b.tokens().len(), b.rows() * b.seq_len());
        assert_eq!(b.sequences().len(), b.rows());
        assert_eq!(b.document_starts().len(), b.rows());
        for r in 0..b.rows() {
            let k = run.seqs.len() as u64;
            assert_eq!(
                b.sequences()[r],
                o.start + o.rank + k * o.world,
                "rank {} of {} emits global sequences start+rank, +world, ...",
                o.rank,
                o.world
            );
            run.seqs.push(b.row(r).unwrap().to_vec());
            run.ids.push(b.sequences()[r]);
            run.doc_starts.push(b.document_starts()[r].clone());
            run.comps
                .push((b.components()[r], b.component_sequences()[r]));
        }
    }
    assert_eq!(
        run.seqs.len() as u64,
        total,
        "Engine::total() is what it emits"
    );
    run.emitted = e.emitted().clone();
    run.state = e.state();
    run
}

fn cli(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_corpusql"))
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .expect("running corpusql")
}

fn cli_ok(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = cli(dir, args);
    assert!(
        out.status.success(),
        "corpusql {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Runs a command that must fail; returns its stderr.
fn cli_err(dir: &Path, args: &[&str]) -> String {
    let out = cli(dir, args);
    assert!(
        !out.status.success(),
        "corpusql {args:?} should have failed; stdout {} bytes",
        out.stdout.len()
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn u32s(b: &[u8]) -> Vec<u32> {
    assert_eq!(b.len() % 4, 0);
    b.chunks_exact(4)
        .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

fn u16s(b: &[u8]) -> Vec<u32> {
    assert_eq!(b.len() % 2, 0);
    b.chunks_exact(2)
        .map(|c| u16::from_le_bytes(c.try_into().unwrap()) as u32)
        .collect()
}

fn rows_of(tokens: &[u32], seq_len: usize) -> Vec<Vec<u32>> {
    assert_eq!(tokens.len() % seq_len, 0, "output is whole sequences");
    tokens.chunks_exact(seq_len).map(|c| c.to_vec()).collect()
}

/// Sequence-by-sequence interleaving of ranks 0..w.
fn interleave(ranks: &[Vec<Vec<u32>>]) -> Vec<Vec<u32>> {
    let mut out = Vec::new();
    for k in 0.. {
        let before = out.len();
        for (i, r) in ranks.iter().enumerate() {
            if let Some(s) = r.get(k) {
                assert_eq!(
                    out.len() - before,
                    i,
                    "a later rank has a sequence an earlier rank lacks"
                );
                out.push(s.clone());
            }
        }
        if out.len() == before {
            break;
        }
    }
    out
}

/// The sequences of a run in each component's own order (by component,
/// then the component's sequence index), each with its component's
/// sequence index and whether it directly follows the previous one in its
/// component's stream.
fn component_order(run: &Run) -> Vec<(u64, bool, usize)> {
    let mut idx: Vec<usize> = (0..run.seqs.len()).collect();
    idx.sort_by_key(|&i| run.comps[i]);
    let mut prev: Option<(u32, u64)> = None;
    idx.into_iter()
        .map(|i| {
            let (c, j) = run.comps[i];
            let follows = prev.is_some_and(|(pc, pj)| pc == c && pj + 1 == j);
            prev = Some((c, j));
            (j, follows, i)
        })
        .collect()
}

/// The documents of a byte stream, rebuilt from each component's own
/// sequences: complete documents (each ended by an end-of-document) and
/// the trailing fragment of the last component (the start of the document
/// the budget or the dropped last sequence cut). Where a component's
/// sequences skip some (the budget ends inside a shuffle window), the
/// fragments around the gap are dropped.
fn split_docs(run: &Run) -> (Vec<String>, Vec<u8>) {
    let mut docs = Vec::new();
    let mut cur: Vec<u8> = Vec::new();
    let mut partial = false;
    for (j, follows, i) in component_order(run) {
        if !follows {
            cur.clear();
            // A component's sequence 0 starts with a document.
            partial = j != 0;
        }
        for &t in &run.seqs[i] {
            if t == BYTES_EOS {
                let d = std::mem::take(&mut cur);
                if !partial {
                    docs.push(String::from_utf8(d).expect("utf-8 document"));
                }
                partial = false;
            } else {
                assert!(t < 256, "byte tokens are 0..=256, got {t}");
                cur.push(t as u8);
            }
        }
    }
    (docs, cur)
}

/// Texts of a query's matches, with multiplicity (the demo corpus repeats
/// about 1% of texts under other ids).
fn texts_of(dir: &Path, query: &str) -> HashMap<String, u64> {
    let c = Corpus::open(dir).unwrap();
    let sel = c.query(query).unwrap();
    let mut m = HashMap::new();
    for d in sel.documents() {
        *m.entry(d.unwrap().text).or_default() += 1;
    }
    m
}

fn multiset(v: &[String]) -> HashMap<String, u64> {
    let mut m = HashMap::new();
    for s in v {
        *m.entry(s.clone()).or_default() += 1;
    }
    m
}

fn parse_state(path: &Path) -> StreamState {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

// ---------------------------------------------------------------------------
// Mixture files
// ---------------------------------------------------------------------------

#[test]
fn mixture_file_defaults_and_refusals() {
    let m = Mixture::from_toml(
        "[[component]]\nname = \"all\"\nquery = \"lang=fr\"\nweight = 1\n",
        "min.toml",
    )
    .unwrap();
    assert_eq!(m.seed, 0);
    assert_eq!(m.tokens, None, "no budget: every document once");
    assert_eq!(m.seq_len, 2048);
    assert_eq!(m.tokenizer, "bytes");
    assert_eq!(m.shuffle_window_blocks, 16);
    assert_eq!(m.components[0].max_epochs, None);
    // The issue's example file, verbatim (underscored integers included).
    let example = r#"
        seed = 42
        tokens = 50_000_000        # budget, in tokens of this tokenizer
        seq_len = 2048
        tokenizer = "bytes"        # or a path to a tokenizer.json
        [[component]]
        name = "fr"
        query = "lang=fr and license in (cc-by-4.0, pd)"   # any query
        weight = 0.5
        max_epochs = 4             # optional
        [[component]]
        name = "code"
        query = "lang=code"
        weight = 0.5
    "#;
    let m = Mixture::from_toml(example, "issue.toml").unwrap();
    assert_eq!(m.tokens, Some(50_000_000));
    assert_eq!(m.components[0].max_epochs, Some(4.0));
    assert_eq!(m.shares(), vec![0.5, 0.5]);
    for (bad, needle) in [
        ("seed = 1\n", "component"),
        (
            "[[component]]\nname=\"a\"\nquery=\"x\"\nweight=0\n",
            "weight",
        ),
        (
            "[[component]]\nname=\"a\"\nquery=\"x\"\nweight=1\n[[component]]\nname=\"a\"\nquery=\"y\"\nweight=1\n",
            "twice",
        ),
        (
            "seq_len = 0\n[[component]]\nname=\"a\"\nquery=\"x\"\nweight=1\n",
            "seq_len",
        ),
        (
            "sequence_length = 10\n[[component]]\nname=\"a\"\nquery=\"x\"\nweight=1\n",
            "sequence_length",
        ),
    ] {
        let e = Mixture::from_toml(bad, "bad.toml").unwrap_err().to_string();
        assert!(e.contains("bad.toml"), "{e}");
        assert!(e.contains(needle), "`{needle}` not in: {e}");
    }
}

// ---------------------------------------------------------------------------
// Determinism
// ---------------------------------------------------------------------------

#[test]
fn same_mixture_same_corpus_is_byte_identical_library() {
    let f = fixture();
    let m = mix();
    let a = run_engine(&f.dir, &m, EngineOptions::default(), 64);
    let b = run_engine(&f.dir, &m, EngineOptions::default(), 64);
    let plan = mixture::plan(&Corpus::open(&f.dir).unwrap(), &m).unwrap().0;
    assert_eq!(a.seqs.len() as u64, plan.sequences);
    assert_eq!(plan.sequences, 600_000 / SEQ as u64);
    assert!(a.seqs == b.seqs, "two runs differ");
    assert_eq!(a.emitted, b.emitted);
    // The batch size does not change the stream.
    let c = run_engine(&f.dir, &m, EngineOptions::default(), 1000);
    assert!(a.seqs == c.seqs, "batch size changed the stream");
    let d = run_engine(&f.dir, &m, EngineOptions::default(), 1);
    assert!(a.seqs == d.seqs, "batch size 1 changed the stream");
    // The prefetching Stream gives the same batches.
    let corpus = Corpus::open(&f.dir).unwrap();
    let o = StreamOptions {
        prefetch: 3,
        ..StreamOptions::default()
    };
    let mut s = Stream::open(&corpus, &m, o).unwrap();
    let mut flat = Vec::new();
    while let Some(b) = s.next_batch(37).unwrap() {
        flat.extend(b.into_tokens());
    }
    assert!(flat == a.seqs.concat(), "Stream differs from Engine");
    assert_eq!(s.emitted(), a.emitted, "Stream and Engine count alike");
    // A different seed gives a different order (the seed is used).
    let mut m2 = m.clone();
    m2.seed += 1;
    let e = run_engine(&f.dir, &m2, EngineOptions::default(), 64);
    assert_eq!(e.seqs.len(), a.seqs.len());
    assert!(e.seqs != a.seqs, "the seed does not change the order");
}

#[test]
fn document_boundaries_match_end_of_document_ids() {
    let f = fixture();
    let run = run_engine(&f.dir, &mix(), EngineOptions::default(), 50);
    // In each component's own order, a document starts at the sequence's
    // start after an end-of-document (or at a component's start), and
    // after each end-of-document inside it.
    let mut prev_eos = None;
    let mut checked = 0;
    for (j, follows, i) in component_order(&run) {
        if !follows {
            prev_eos = (j == 0).then_some(true);
        }
        let seq = &run.seqs[i];
        let mut want: Vec<u32> = (1..seq.len())
            .filter(|&k| seq[k - 1] == BYTES_EOS)
            .map(|k| k as u32)
            .collect();
        let starts = &run.doc_starts[i];
        match prev_eos {
            Some(true) => want.insert(0, 0),
            Some(false) => {}
            // After a gap: whatever the first token is.
            None => {
                if starts.first() == Some(&0) {
                    want.insert(0, 0)
                }
            }
        }
        assert_eq!(starts, &want, "doc_starts disagree with the EOS ids");
        checked += 1;
        prev_eos = Some(seq[seq.len() - 1] == BYTES_EOS);
    }
    assert_eq!(checked, run.seqs.len());
}

#[test]
fn same_mixture_same_corpus_is_byte_identical_cli() {
    let f = fixture();
    let mix_file = f.mix_file.to_str().unwrap();
    let a = cli_ok(&f.dir, &["stream", mix_file, "--format", "u32", "-o", "-"]);
    let b = cli_ok(&f.dir, &["stream", mix_file, "--format", "u32"]);
    assert_eq!(a.len(), 600_000 / SEQ * SEQ * 4);
    assert!(a == b, "two CLI runs differ");
    // u16 carries the same ids.
    let c = cli_ok(&f.dir, &["stream", mix_file]);
    assert_eq!(
        u16s(&c),
        u32s(&a),
        "u16 is the default and holds the same ids"
    );
    // To a file too, and equal to the library's stream.
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("s.bin");
    cli_ok(
        &f.dir,
        &[
            "stream",
            mix_file,
            "--format",
            "u32",
            "-o",
            out.to_str().unwrap(),
        ],
    );
    assert!(
        std::fs::read(&out).unwrap() == a,
        "-o FILE differs from stdout"
    );
    let lib = run_engine(&f.dir, &mix(), EngineOptions::default(), 64);
    assert!(u32s(&a) == lib.seqs.concat(), "CLI and library differ");
}

// ---------------------------------------------------------------------------
// Ranks and resume
// ---------------------------------------------------------------------------

#[test]
fn ranks_interleave_into_the_world_1_stream_library() {
    let f = fixture();
    let m = mix();
    let one = run_engine(&f.dir, &m, EngineOptions::default(), 64);
    for world in [2u64, 3, 4, 7] {
        let ranks: Vec<Vec<Vec<u32>>> = (0..world)
            .map(|r| run_engine(&f.dir, &m, opts(r, world, 0, None), 13).seqs)
            .collect();
        let total: usize = ranks.iter().map(|r| r.len()).sum();
        assert_eq!(total, one.seqs.len(), "world {world}: sequences lost");
        assert!(
            interleave(&ranks) == one.seqs,
            "world {world}: interleaved ranks differ from world=1"
        );
    }
    // Attribution adds up across ranks.
    let ranks: Vec<Run> = (0..4)
        .map(|r| run_engine(&f.dir, &m, opts(r, 4, 0, None), 64))
        .collect();
    let mut by = BTreeMap::new();
    for r in &ranks {
        for (k, v) in &r.emitted.by_component {
            *by.entry(k.clone()).or_insert(0u64) += v;
        }
    }
    assert_eq!(by, one.emitted.by_component);
    // Bad ranks are refused.
    let c = Corpus::open(&f.dir).unwrap();
    assert!(Engine::new(&c, &m, opts(4, 4, 0, None)).is_err());
    assert!(Engine::new(&c, &m, opts(0, 0, 0, None)).is_err());
}

#[test]
fn ranks_interleave_into_the_world_1_stream_cli() {
    let f = fixture();
    let mix_file = f.mix_file.to_str().unwrap();
    let one = rows_of(
        &u32s(&cli_ok(&f.dir, &["stream", mix_file, "--format", "u32"])),
        SEQ,
    );
    let ranks: Vec<Vec<Vec<u32>>> = (0..4)
        .map(|r| {
            let r = r.to_string();
            let out = cli_ok(
                &f.dir,
                &[
                    "stream", mix_file, "--rank", &r, "--world", "4", "--format", "u32",
                ],
            );
            rows_of(&u32s(&out), SEQ)
        })
        .collect();
    assert!(
        interleave(&ranks) == one,
        "CLI ranks 0..3 of 4 interleaved differ from world=1"
    );
    let e = cli_err(&f.dir, &["stream", mix_file, "--rank", "4", "--world", "4"]);
    assert!(e.contains("rank 4"), "{e}");
}

#[test]
fn resume_at_arbitrary_points_equals_the_uninterrupted_stream_library() {
    let f = fixture();
    let m = mix();
    let full = run_engine(&f.dir, &m, EngineOptions::default(), 64).seqs;
    let n = full.len() as u64;
    for cut in [0, 1, 63, 64, 65, 1234, n - 1, n] {
        let a = run_engine(&f.dir, &m, opts(0, 1, 0, Some(cut)), 64);
        assert_eq!(a.seqs.len() as u64, cut);
        assert_eq!(a.state.next_sequence, cut);
        assert_eq!(a.state.version, corpusql::raw::train::STATE_VERSION);
        let b = run_engine(&f.dir, &m, opts(0, 1, a.state.next_sequence, None), 17);
        assert_eq!(b.ids.first().copied().unwrap_or(n), cut);
        let mut joined = a.seqs.clone();
        joined.extend(b.seqs);
        assert!(joined == full, "resume at {cut} differs");
    }
    // From world 4 (each rank stopped after k sequences) to world 2.
    for k in [1u64, 5, 301] {
        let first: Vec<Run> = (0..4)
            .map(|r| run_engine(&f.dir, &m, opts(r, 4, 0, Some(k)), 8))
            .collect();
        for r in &first {
            assert_eq!(r.state, first[0].state, "ranks agree on the state");
            assert_eq!(r.state.next_sequence, 4 * k, "start + emitted * world");
        }
        let start = first[0].state.next_sequence;
        let second: Vec<Vec<Vec<u32>>> = (0..2)
            .map(|r| run_engine(&f.dir, &m, opts(r, 2, start, None), 8).seqs)
            .collect();
        let mut joined = interleave(&first.iter().map(|r| r.seqs.clone()).collect::<Vec<_>>());
        joined.extend(interleave(&second));
        assert!(joined == full, "world 4 -> 2 resume after {k} each differs");
    }
    // And from 2 back to 3, twice in a row.
    let a: Vec<Run> = (0..2)
        .map(|r| run_engine(&f.dir, &m, opts(r, 2, 0, Some(100)), 8))
        .collect();
    let s1 = a[0].state.next_sequence;
    let b: Vec<Run> = (0..3)
        .map(|r| run_engine(&f.dir, &m, opts(r, 3, s1, Some(77)), 8))
        .collect();
    let s2 = b[0].state.next_sequence;
    assert_eq!(s2, 200 + 3 * 77);
    let c: Vec<Vec<Vec<u32>>> = (0..1)
        .map(|r| run_engine(&f.dir, &m, opts(r, 1, s2, None), 8).seqs)
        .collect();
    let mut joined = interleave(&a.iter().map(|r| r.seqs.clone()).collect::<Vec<_>>());
    joined.extend(interleave(
        &b.iter().map(|r| r.seqs.clone()).collect::<Vec<_>>(),
    ));
    joined.extend(interleave(&c));
    assert!(joined == full, "2 -> 3 -> 1 resume differs");
}

#[test]
fn resume_with_the_cli_equals_the_uninterrupted_stream() {
    let f = fixture();
    let mix_file = f.mix_file.to_str().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let full = cli_ok(&f.dir, &["stream", mix_file, "--format", "u32"]);
    // world 1: stop after 333, resume.
    let st = tmp.path().join("state.json");
    let st_s = st.to_str().unwrap();
    let a = cli_ok(
        &f.dir,
        &[
            "stream",
            mix_file,
            "--format",
            "u32",
            "--stop-after",
            "333",
            "--state-out",
            st_s,
        ],
    );
    assert_eq!(a.len(), 333 * SEQ * 4);
    let state: Value = serde_json::from_slice(&std::fs::read(&st).unwrap()).unwrap();
    for key in [
        "version",
        "generation",
        "mixture_hash",
        "tokenizer",
        "seq_len",
        "next_sequence",
    ] {
        assert!(state.get(key).is_some(), "state lacks `{key}`: {state}");
    }
    assert_eq!(state["next_sequence"], 333);
    assert_eq!(state["tokenizer"], "bytes");
    assert_eq!(state["seq_len"], SEQ);
    assert_eq!(state["mixture_hash"], mix().hash());
    let b = cli_ok(
        &f.dir,
        &["stream", mix_file, "--format", "u32", "--resume", st_s],
    );
    assert!([a, b].concat() == full, "CLI resume at 333 differs");

    // world 4 -> world 2, each rank of 4 stopping after 50 (state-every 7
    // also writes intermediate states; the last write wins).
    let mut first = Vec::new();
    let mut states = Vec::new();
    for r in 0..4 {
        let p = tmp.path().join(format!("r{r}.json"));
        let out = cli_ok(
            &f.dir,
            &[
                "stream",
                mix_file,
                "--format",
                "u32",
                "--rank",
                &r.to_string(),
                "--world",
                "4",
                "--stop-after",
                "50",
                "--state-every",
                "7",
                "--state-out",
                p.to_str().unwrap(),
            ],
        );
        first.push(rows_of(&u32s(&out), SEQ));
        states.push(parse_state(&p));
    }
    for s in &states {
        assert_eq!(s, &states[0]);
        assert_eq!(s.next_sequence, 200);
    }
    let p0 = tmp.path().join("r0.json");
    let second: Vec<Vec<Vec<u32>>> = (0..2)
        .map(|r| {
            let out = cli_ok(
                &f.dir,
                &[
                    "stream",
                    mix_file,
                    "--format",
                    "u32",
                    "--rank",
                    &r.to_string(),
                    "--world",
                    "2",
                    "--resume",
                    p0.to_str().unwrap(),
                ],
            );
            rows_of(&u32s(&out), SEQ)
        })
        .collect();
    let mut joined = interleave(&first);
    joined.extend(interleave(&second));
    assert!(
        joined.concat() == u32s(&full),
        "CLI world 4 -> world 2 resume differs"
    );
}

#[test]
fn stream_state_counts_only_received_batches() {
    let f = fixture();
    let m = mix();
    let corpus = Corpus::open(&f.dir).unwrap();
    let o = StreamOptions {
        prefetch: 4,
        ..StreamOptions::default()
    };
    let mut s = Stream::open(&corpus, &m, o).unwrap();
    let got: Vec<_> = (0..2).map(|_| s.next_batch(4).unwrap().unwrap()).collect();
    assert_eq!(got[1].sequences(), &[4, 5, 6, 7]);
    // Let the prefetch thread fill its queue.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let st = s.state();
    assert_eq!(
        st.next_sequence, 8,
        "the state must resume right after the 8 sequences received"
    );
}

// ---------------------------------------------------------------------------
// Shares, epochs, once-streams
// ---------------------------------------------------------------------------

#[test]
fn token_shares_are_within_half_a_point_of_the_target() {
    let f = fixture();
    let tmp = tempfile::tempdir().unwrap();
    // A budget of 4M tokens over a ~6M-token corpus: fr and de are
    // upsampled, code and en downsampled.
    let text = MIX.replace("tokens = 600_000", "tokens = 4_000_000");
    let m = Mixture::from_toml(&text, "big").unwrap();
    let plan = mixture::plan(&Corpus::open(&f.dir).unwrap(), &m).unwrap().0;
    let run = run_engine(&f.dir, &m, EngineOptions::default(), 512);
    let total: u64 = run.emitted.by_component.values().sum();
    assert_eq!(total, run.emitted.tokens);
    assert_eq!(total, plan.sequences * SEQ as u64);
    for c in &plan.components {
        let got = run.emitted.by_component[&c.name] as f64 / total as f64;
        assert!(
            (got - c.share).abs() < 0.005,
            "component {}: {:.4} of the tokens, target {:.4}",
            c.name,
            got,
            c.share
        );
    }
    // The CLI report says the same.
    let mix_file = tmp.path().join("big.toml");
    std::fs::write(&mix_file, &text).unwrap();
    let rep_file = tmp.path().join("report.json");
    cli_ok(
        &f.dir,
        &[
            "stream",
            mix_file.to_str().unwrap(),
            "-o",
            tmp.path().join("out.bin").to_str().unwrap(),
            "--report",
            rep_file.to_str().unwrap(),
        ],
    );
    let rep: Value = serde_json::from_slice(&std::fs::read(&rep_file).unwrap()).unwrap();
    assert_eq!(rep["tokens"], total);
    assert_eq!(rep["sequences"], plan.sequences);
    for c in &plan.components {
        assert_eq!(
            rep["tokens_by_component"][&c.name],
            run.emitted.by_component[&c.name]
        );
        let rc = &rep["components"][&c.name];
        assert_eq!(rc["tokens"], run.emitted.by_component[&c.name]);
        let share = rc["share"].as_f64().expect("components.<name>.share");
        assert!(
            (share - c.share).abs() < 0.005,
            "{}: report share {share}",
            c.name
        );
    }
    for key in ["tokens_by_license", "tokens_by_source"] {
        let sum: u64 = rep[key]
            .as_object()
            .unwrap_or_else(|| panic!("report lacks {key}"))
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum();
        assert_eq!(sum, total, "{key} adds up to the tokens emitted");
    }
    assert_eq!(rep["state"]["next_sequence"], plan.sequences);
}

#[test]
fn components_are_interleaved_smoothly() {
    // Every sequence belongs to one component, and any 1,000 consecutive
    // sequences hold each component within 0.5 points of its share (the
    // deficit rule keeps each within one sequence of its share at every
    // point), whatever the documents' sizes.
    let f = fixture();
    let text = MIX
        .replace("tokens = 600_000", "tokens = 40_000_000")
        .replace("max_epochs = 4\n", "");
    let m = Mixture::from_toml(&text, "big").unwrap();
    let corpus = Corpus::open(&f.dir).unwrap();
    let (plan, resolved) = mixture::plan(&corpus, &m).unwrap();
    let mut sched = Schedule::new(&corpus, &m, &resolved, &[]);
    let comps: Vec<u32> = (0..plan.sequences)
        .map(|s| {
            let p = sched.place(s).unwrap();
            let len: u32 = p.pieces.iter().map(|x| x.len).sum();
            assert_eq!(len as usize, SEQ, "sequence {s} is filled exactly");
            p.component
        })
        .collect();
    assert!(sched.place(plan.sequences).is_none());
    let shares = m.shares();
    let n = m.components.len();
    let win = 1000;
    assert!(comps.len() > 5 * win);
    let mut worst = 0f64;
    for start in (0..comps.len() - win).step_by(97) {
        let mut c = vec![0u64; n];
        for &x in &comps[start..start + win] {
            c[x as usize] += 1;
        }
        for i in 0..n {
            worst = worst.max((c[i] as f64 / win as f64 - shares[i]).abs());
        }
    }
    assert!(
        worst <= 0.005,
        "worst window of {win} sequences is {:.2} points off its share",
        100.0 * worst
    );
}

const EPOCHS_MIX: &str = r#"
seed = 3
tokens = 2_000_000
seq_len = 128
shuffle_window_blocks = 1
shuffle_window_sequences = 16

[[component]]
name = "it"
query = "lang=it"
weight = 0.5

[[component]]
name = "es"
query = "lang=es"
weight = 0.3

[[component]]
name = "fr"
query = "lang=fr"
weight = 0.2
"#;

#[test]
fn epochs_are_as_planned() {
    let f = fixture();
    let m = Mixture::from_toml(EPOCHS_MIX, "epochs").unwrap();
    let plan = mixture::plan(&Corpus::open(&f.dir).unwrap(), &m).unwrap().0;
    let it = &plan.components[0];
    let es = &plan.components[1];
    let fr = &plan.components[2];
    assert!(
        it.epochs > 2.0 && it.epochs < 4.0,
        "it epochs {}",
        it.epochs
    );
    assert!(
        es.epochs > 1.0 && es.epochs < 2.0,
        "es epochs {}",
        es.epochs
    );
    assert!(fr.epochs < 1.0, "fr epochs {}", fr.epochs);
    for c in &plan.components {
        assert_eq!(c.tokens_target, (c.share * 2_000_000f64).round() as u64);
        assert!((c.epochs - c.tokens_target as f64 / c.tokens_available as f64).abs() < 1e-12);
    }
    let run = run_engine(&f.dir, &m, EngineOptions::default(), 256);
    let (docs, _tail) = split_docs(&run);
    let seen = multiset(&docs);
    for c in &plan.components {
        let texts = texts_of(&f.dir, &c.query);
        assert_eq!(texts.values().sum::<u64>(), c.docs);
        let (lo, hi) = (c.epochs.floor() as u64, c.epochs.ceil() as u64);
        let mut tokens = 0u64;
        for (t, &mult) in &texts {
            let n = seen.get(t).copied().unwrap_or(0);
            // Every document of a component appears floor(epochs) or
            // ceil(epochs) times (the one cut by the budget may lack one).
            assert!(
                n >= mult * lo.saturating_sub(1) && n <= mult * hi,
                "{}: a document appears {n} times (x{mult}), epochs {:.3}",
                c.name,
                c.epochs
            );
            tokens += n * (t.len() as u64 + 1);
        }
        // The complete documents emitted make up epochs * available tokens,
        // give or take the documents the budget cut.
        let expect = c.epochs * c.tokens_available as f64;
        assert!(
            (tokens as f64 - expect).abs() < 0.01 * expect + 40_000.0,
            "{}: {tokens} tokens in complete documents, planned {expect:.0}",
            c.name
        );
        // Whole epochs first: below the floor only for documents the last
        // partial epoch did not reach, never twice more than the rest.
        let counts: Vec<u64> = texts
            .iter()
            .map(|(t, &mult)| seen.get(t).copied().unwrap_or(0) / mult)
            .collect();
        let min = *counts.iter().min().unwrap();
        let max = *counts.iter().max().unwrap();
        assert!(max - min <= 1, "{}: counts range {min}..{max}", c.name);
    }
    // Every streamed document belongs to one of the components.
    let all: HashMap<String, u64> = plan
        .components
        .iter()
        .flat_map(|c| texts_of(&f.dir, &c.query))
        .collect();
    for d in seen.keys() {
        assert!(
            all.contains_key(d),
            "a streamed document is in no component"
        );
    }
}

#[test]
fn a_query_stream_visits_every_match_exactly_once() {
    let f = fixture();
    let out = cli_ok(
        &f.dir,
        &[
            "stream",
            "lang=fr",
            "--tokenizer",
            "bytes",
            "--seq-len",
            "128",
            "--format",
            "u32",
        ],
    );
    let seqs = rows_of(&u32s(&out), 128);
    let texts = texts_of(&f.dir, "lang=fr");
    let total: u64 = texts.iter().map(|(t, m)| m * (t.len() as u64 + 1)).sum();
    let emitted = seqs.len() as u64 * 128;
    assert_eq!(
        emitted,
        total / 128 * 128,
        "only the partial last sequence is dropped"
    );
    let m = Mixture::inline("lang=fr", "bytes", 128, 0);
    let lib = run_engine(&f.dir, &m, EngineOptions::default(), 100);
    let (docs, tail) = split_docs(&lib);
    let mut rest = texts.clone();
    for d in &docs {
        let n = rest
            .get_mut(d)
            .unwrap_or_else(|| panic!("a streamed document is not a match (or came twice)"));
        assert!(*n > 0, "a document was streamed twice");
        *n -= 1;
    }
    rest.retain(|_, n| *n > 0);
    // What is left: the document cut by the dropped sequence (it starts with
    // the tail fragment) and any documents wholly inside the dropped part.
    let left: u64 = rest.iter().map(|(t, m)| m * (t.len() as u64 + 1)).sum();
    assert_eq!(left, total - emitted + tail.len() as u64);
    assert!(total - emitted < 128);
    if !tail.is_empty() {
        assert!(
            rest.keys().any(|t| t.as_bytes().starts_with(&tail)),
            "the tail fragment starts a remaining document"
        );
    }
    // Deterministic, and the same as the library's inline mixture.
    assert!(
        out == cli_ok(
            &f.dir,
            &["stream", "lang=fr", "--seq-len", "128", "--format", "u32"]
        )
    );
    assert!(
        lib.seqs == seqs,
        "library inline mixture differs from the CLI query stream"
    );
    // Nothing is dropped when the sequence length is 1.
    let m1 = Mixture::inline("lang=de", "bytes", 1, 5);
    let r1 = run_engine(&f.dir, &m1, EngineOptions::default(), 4096);
    let (d1, t1) = split_docs(&r1);
    assert!(t1.is_empty());
    assert_eq!(multiset(&d1), texts_of(&f.dir, "lang=de"));
}

// ---------------------------------------------------------------------------
// Refusals
// ---------------------------------------------------------------------------

#[test]
fn a_state_is_refused_when_the_corpus_or_the_mixture_changed() {
    let (tmp, dir) = private_copy();
    let mix_file = tmp.path().join("mix.toml");
    std::fs::write(&mix_file, MIX).unwrap();
    let mix_s = mix_file.to_str().unwrap();
    let st = tmp.path().join("state.json");
    let st_s = st.to_str().unwrap();
    cli_ok(
        &dir,
        &["stream", mix_s, "--stop-after", "10", "--state-out", st_s],
    );
    // The mixture changed.
    let changed = tmp.path().join("changed.toml");
    std::fs::write(&changed, MIX.replace("weight = 0.3", "weight = 0.31")).unwrap();
    let e = cli_err(
        &dir,
        &["stream", changed.to_str().unwrap(), "--resume", st_s],
    );
    assert!(e.contains("mixture"), "{e}");
    assert!(e.contains("state.json"), "names the state file: {e}");
    // The seed is part of the mixture.
    std::fs::write(&changed, MIX.replace("seed = 42", "seed = 43")).unwrap();
    let e = cli_err(
        &dir,
        &["stream", changed.to_str().unwrap(), "--resume", st_s],
    );
    assert!(e.contains("mixture"), "{e}");
    // Not a state at all.
    let junk = tmp.path().join("junk.json");
    std::fs::write(&junk, b"{\"hello\": 1}").unwrap();
    let e = cli_err(&dir, &["stream", mix_s, "--resume", junk.to_str().unwrap()]);
    assert!(e.contains("not a stream state"), "{e}");
    // What resuming continues with, on the corpus the state was written on.
    let resume = [
        "stream",
        mix_s,
        "--resume",
        st_s,
        "--stop-after",
        "20",
        "-o",
        "-",
    ];
    let continued = cli_ok(&dir, &resume);
    assert_eq!(continued.len(), 20 * 128 * 2);
    let g0 = Corpus::open(&dir).unwrap().generation();
    // Tagging makes a new generation but changes no document this mixture
    // selects: the stream resumes, byte for byte the same.
    cli_ok(&dir, &["tag", "--taggers", "pii", "-q"]);
    let g_tag = Corpus::open(&dir).unwrap().generation();
    assert!(g_tag > g0);
    assert_eq!(cli_ok(&dir, &resume), continued, "resumed after tagging");
    // So does deleting documents no component selects (Italian).
    let (n, g_it) = corpusql::raw::maintain::delete(&dir, "lang=it and year < 1900").unwrap();
    assert!(n > 0 && g_it > g_tag);
    assert_eq!(
        cli_ok(&dir, &resume),
        continued,
        "resumed after an unrelated delete"
    );
    // Deleting documents a component selects changes the stream: refused.
    let (n, g1) = corpusql::raw::maintain::delete(&dir, "lang=de and year < 1900").unwrap();
    assert!(n > 0 && g1 > g_it);
    let e = cli_err(&dir, &["stream", mix_s, "--resume", st_s]);
    assert!(e.contains("generation") && e.contains("changed"), "{e}");
    assert!(
        e.contains(&g0.to_string()) && e.contains(&g1.to_string()),
        "{e}"
    );
    // The library says the same.
    let state = parse_state(&st);
    assert_eq!(state.version, corpusql::raw::train::STATE_VERSION);
    let f0 = state
        .selection
        .clone()
        .expect("a version 3 state has a fingerprint");
    let m = mix();
    assert!(state.check(g0, &f0, &m, "bytes").is_ok());
    assert!(
        state.check(g1, &f0, &m, "bytes").is_ok(),
        "same documents, later generation"
    );
    let e = state
        .check(g1, "0123", &m, "bytes")
        .unwrap_err()
        .to_string();
    assert!(e.contains("generation"), "{e}");
    let e = state.check(g0, &f0, &m, "hf-0123").unwrap_err().to_string();
    assert!(e.contains("tokenizer"), "{e}");
    let mut m2 = m.clone();
    m2.seq_len = 64;
    assert!(state.check(g0, &f0, &m2, "bytes").is_err());
    // States of versions 1 and 2 (whole documents blended) point into
    // another stream; a future version is not read either.
    for v in [1, 2, 4] {
        let mut old = state.clone();
        old.version = v;
        let e = old.check(g0, &f0, &m, "bytes").unwrap_err().to_string();
        assert!(e.contains("version"), "{e}");
    }
}

#[test]
fn deleting_documents_drops_them_without_reordering_the_rest() {
    // Delete every French document of three whole blocks (by id), so that
    // those blocks drop out of the `lang=fr` selection.
    let (_tmp, dir) = private_copy();
    let mut m = Mixture::inline("lang=fr", "bytes", 1, 9);
    m.shuffle_window_blocks = 3;
    let before = split_docs(&run_engine(&dir, &m, EngineOptions::default(), 4096)).0;
    let corpus = Corpus::open(&dir).unwrap();
    let sel = corpus.query("lang=fr").unwrap();
    let jobs = sel.jobs();
    assert!(jobs.len() >= 6, "{} blocks", jobs.len());
    let keys: Vec<String> = sel.documents().map(|d| d.unwrap().key).collect();
    let n_del: usize = jobs[..3].iter().map(|j| j.docs.len()).sum();
    let deleted = format!(
        "id in ({})",
        keys[..n_del]
            .iter()
            .map(|k| format!("\"{k}\""))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let gone = texts_of(&dir, &deleted);
    assert_eq!(gone.values().sum::<u64>(), n_del as u64);
    let (n, _) = corpusql::raw::maintain::delete(&dir, &deleted).unwrap();
    assert_eq!(n, n_del as u64);
    let blocks_after = Corpus::open(&dir)
        .unwrap()
        .query("lang=fr")
        .unwrap()
        .jobs()
        .len();
    assert_eq!(blocks_after, jobs.len() - 3, "three blocks emptied");
    let after = split_docs(&run_engine(&dir, &m, EngineOptions::default(), 4096)).0;
    // (A deleted text may also be the text of a kept document: compare
    // the documents whose texts were not deleted at all.)
    let after: Vec<String> = after
        .into_iter()
        .filter(|t| !gone.contains_key(t))
        .collect();
    let expect: Vec<String> = before
        .into_iter()
        .filter(|t| !gone.contains_key(t))
        .collect();
    assert_eq!(after.len(), expect.len());
    assert!(after == expect, "the remaining documents were reordered");
}

#[test]
fn deleting_scattered_documents_keeps_the_order_of_the_rest() {
    // Documents deleted here are scattered (a few per block), so no block
    // of the selection empties: the rest keeps its order.
    let (_tmp, dir) = private_copy();
    let mut m = Mixture::inline("lang=en", "bytes", 1, 9);
    m.shuffle_window_blocks = 3;
    let before = split_docs(&run_engine(&dir, &m, EngineOptions::default(), 4096)).0;
    let q = "lang=en and year >= 2000 and year <= 2004";
    let gone = texts_of(&dir, q);
    assert!(!gone.is_empty());
    let (n, _) = corpusql::raw::maintain::delete(&dir, q).unwrap();
    assert!(n > 0);
    let after = split_docs(&run_engine(&dir, &m, EngineOptions::default(), 4096)).0;
    // (A deleted text may also be the text of a kept document: compare
    // the documents whose texts were not deleted at all.)
    let after: Vec<String> = after
        .into_iter()
        .filter(|t| !gone.contains_key(t))
        .collect();
    let expect: Vec<String> = before
        .into_iter()
        .filter(|t| !gone.contains_key(t))
        .collect();
    let first = after.iter().zip(&expect).position(|(a, b)| a != b);
    assert!(
        after == expect,
        "the remaining documents were reordered: {} vs {} documents, first difference at {first:?}",
        after.len(),
        expect.len()
    );
}

#[test]
fn max_epochs_refusal_names_the_component() {
    let f = fixture();
    let tmp = tempfile::tempdir().unwrap();
    // code is ~10% of the corpus; 60% of 5M tokens needs ~5 epochs of it.
    let text = MIX
        .replace("tokens = 600_000", "tokens = 5_000_000")
        .replace("weight = 0.15", "weight = 1.5");
    let m = Mixture::from_toml(&text, "capped").unwrap();
    let e = mixture::plan(&Corpus::open(&f.dir).unwrap(), &m)
        .unwrap_err()
        .to_string();
    assert!(e.contains("component `code`"), "{e}");
    assert!(e.contains("max_epochs = 4"), "{e}");
    assert!(e.contains("short by"), "says by how much: {e}");
    let file = tmp.path().join("capped.toml");
    std::fs::write(&file, &text).unwrap();
    let f_s = file.to_str().unwrap();
    for args in [vec!["mix", "plan", f_s], vec!["stream", f_s]] {
        let e = cli_err(&f.dir, &args);
        assert!(e.contains("component `code`"), "{args:?}: {e}");
    }
    // Within the cap it plans, and reports the epochs.
    let ok = MIX.replace("tokens = 600_000", "tokens = 5_000_000");
    std::fs::write(&file, &ok).unwrap();
    let plan: Value =
        serde_json::from_slice(&cli_ok(&f.dir, &["mix", "plan", f_s, "--json"])).unwrap();
    let code = plan["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "code")
        .unwrap();
    assert!(code["epochs"].as_f64().unwrap() < 4.0);
    assert_eq!(code["max_epochs"], 4.0);
    for key in [
        "docs",
        "tokens_available",
        "tokens_target",
        "epochs",
        "share",
        "by",
    ] {
        assert!(code.get(key).is_some(), "plan JSON lacks {key}");
    }
    for field in ["license", "source", "lang"] {
        let slices = code["by"][field].as_array().unwrap();
        let docs: u64 = slices.iter().map(|s| s["docs"].as_u64().unwrap()).sum();
        assert_eq!(docs, code["docs"].as_u64().unwrap(), "by {field} adds up");
    }
    // A component that matches nothing is refused by name too.
    let none = MIX.replace("query = \"lang=de\"", "query = \"lang=xx\"");
    let m = Mixture::from_toml(&none, "none").unwrap();
    let e = mixture::plan(&Corpus::open(&f.dir).unwrap(), &m)
        .unwrap_err()
        .to_string();
    assert!(e.contains("component `de`"), "{e}");
}

// ---------------------------------------------------------------------------
// Formats
// ---------------------------------------------------------------------------

/// Parses a .npy v1/v2 header: (descr, fortran_order, shape, data offset).
fn parse_npy(b: &[u8]) -> (String, bool, Vec<u64>, usize) {
    assert_eq!(&b[..6], b"\x93NUMPY", "npy magic");
    let (hlen, off) = match b[6] {
        1 => (u16::from_le_bytes([b[8], b[9]]) as usize, 10),
        2 | 3 => (
            u32::from_le_bytes(b[8..12].try_into().unwrap()) as usize,
            12,
        ),
        v => panic!("npy version {v}"),
    };
    let data = off + hlen;
    assert_eq!(data % 64, 0, "npy data is 64-byte aligned");
    let h = std::str::from_utf8(&b[off..data]).unwrap();
    assert!(h.ends_with('\n'), "header ends with a newline");
    let h = h.trim_end();
    assert!(h.starts_with('{') && h.ends_with('}'), "{h}");
    let field = |k: &str| -> String {
        let i = h
            .find(&format!("'{k}':"))
            .unwrap_or_else(|| panic!("no {k}: {h}"));
        h[i + k.len() + 3..].trim_start().to_string()
    };
    let descr = field("descr");
    let descr = descr[1..descr[1..].find('\'').unwrap() + 1].to_string();
    let fortran = field("fortran_order").starts_with("True");
    let shape = field("shape");
    let shape = &shape[1..shape.find(')').unwrap()];
    let shape = shape
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    (descr, fortran, shape, data)
}

#[test]
fn npy_output_has_a_valid_header_and_shape() {
    let f = fixture();
    let mix_file = f.mix_file.to_str().unwrap();
    let raw = cli_ok(&f.dir, &["stream", mix_file, "--format", "u16"]);
    let npy = cli_ok(&f.dir, &["stream", mix_file, "--format", "npy"]);
    let (descr, fortran, shape, off) = parse_npy(&npy);
    assert_eq!(descr, "<u2", "257 ids fit u2");
    assert!(!fortran);
    let rows = (600_000 / SEQ) as u64;
    assert_eq!(shape, vec![rows, SEQ as u64]);
    assert_eq!(npy.len() - off, rows as usize * SEQ * 2);
    assert!(npy[off..] == raw[..], "npy data equals the u16 stream");
    // The shape of one rank's share (and of a stopped run).
    let r = cli_ok(
        &f.dir,
        &[
            "stream", mix_file, "--format", "npy", "--rank", "3", "--world", "4",
        ],
    );
    let (_, _, shape, off) = parse_npy(&r);
    assert_eq!(shape, vec![(rows - 3).div_ceil(4), SEQ as u64]);
    assert_eq!(r.len() - off, shape[0] as usize * SEQ * 2);
    let s = cli_ok(
        &f.dir,
        &["stream", mix_file, "--format", "npy", "--stop-after", "11"],
    );
    let (_, _, shape, off) = parse_npy(&s);
    assert_eq!(shape, vec![11, SEQ as u64]);
    assert!(s[off..] == raw[..11 * SEQ * 2]);
}

/// A word-level tokenizer.json with `words` entries and no end-of-document
/// token among them (so the end-of-document id is `words`).
fn wordlevel_tokenizer(words: usize) -> String {
    let mut vocab = serde_json::Map::new();
    vocab.insert("[UNK]".into(), 0.into());
    for i in 1..words {
        vocab.insert(format!("w{i}"), i.into());
    }
    serde_json::json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [],
        "normalizer": null,
        "pre_tokenizer": {"type": "Whitespace"},
        "post_processor": null,
        "decoder": null,
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "[UNK]"}
    })
    .to_string()
}

#[test]
fn u16_is_refused_for_vocabularies_above_65536() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("corpus");
    build_corpus(&dir, 200, 1);
    let fits = tmp.path().join("fits.json");
    let big = tmp.path().join("big.json");
    // 65,535 words: ids 0..65534, end-of-document 65535 -> 65,536 ids.
    std::fs::write(&fits, wordlevel_tokenizer(65_535)).unwrap();
    // 65,536 words: end-of-document 65536 -> 65,537 ids.
    std::fs::write(&big, wordlevel_tokenizer(65_536)).unwrap();
    let t = corpusql::raw::tokenize::Tokenizer::load(big.to_str().unwrap()).unwrap();
    assert_eq!(t.eos(), 65_536);
    assert_eq!(t.vocab_size(), 65_537);
    let args = |tok: &Path, format: &str| -> Vec<String> {
        [
            "stream",
            "lang=fr",
            "--tokenizer",
            tok.to_str().unwrap(),
            "--seq-len",
            "64",
            "--format",
            format,
        ]
        .map(String::from)
        .to_vec()
    };
    let run = |a: Vec<String>| cli(&dir, &a.iter().map(String::as_str).collect::<Vec<_>>());
    let e = run(args(&big, "u16"));
    assert!(!e.status.success());
    let msg = String::from_utf8_lossy(&e.stderr);
    assert!(msg.contains("65537") || msg.contains("65,537"), "{msg}");
    assert!(msg.contains("u32"), "suggests u32: {msg}");
    // u32 and npy (as <u4) work, and hold the end-of-document id.
    let o = run(args(&big, "u32"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let ids = u32s(&o.stdout);
    assert!(ids.contains(&65_536));
    let o = run(args(&big, "npy"));
    assert!(o.status.success());
    let (descr, _, shape, off) = parse_npy(&o.stdout);
    assert_eq!(descr, "<u4");
    assert_eq!(shape, vec![ids.len() as u64 / 64, 64]);
    assert_eq!(u32s(&o.stdout[off..]), ids);
    // 65,536 ids still fit u16.
    let o = run(args(&fits, "u16"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(u16s(&o.stdout).contains(&65_535));
    let o = run(args(&fits, "npy"));
    assert_eq!(parse_npy(&o.stdout).0, "<u2");
}

#[test]
fn concurrent_first_use_of_a_tokenizer_does_not_fail() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("corpus");
    build_corpus_with(&dir, 1500, 2, 256 << 10);
    let tok_file = tmp.path().join("words.json");
    std::fs::write(&tok_file, wordlevel_tokenizer(1000)).unwrap();
    let tok = corpusql::raw::tokenize::Tokenizer::load(tok_file.to_str().unwrap()).unwrap();
    let corpus = Corpus::open(&dir).unwrap();
    assert!(corpus.segments().len() >= 4);
    for round in 0..20 {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.to_string_lossy().contains(".cqc") {
                std::fs::remove_file(p).unwrap();
            }
        }
        let barrier = std::sync::Barrier::new(4);
        let errors: Vec<String> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        barrier.wait();
                        corpusql::raw::tokenize::corpus_counts(&corpus, &tok).err()
                    })
                })
                .collect();
            hs.into_iter()
                .filter_map(|h| h.join().unwrap())
                .map(|e| e.to_string())
                .collect()
        });
        assert!(errors.is_empty(), "round {round}: {errors:?}");
    }
}
