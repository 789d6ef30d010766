//! Hugging Face tokenizers in the streamer, on the shared real corpus
//! (`../shared/data/realcorpus-dev.jsonl.zst`): a byte-level BPE tokenizer
//! trained on its French documents, a mixture streamed with it whose
//! documents decode back to their exact texts, and the token-count sidecars
//! (`*.tok-hf-<hash>.cqc`) written once and then reused.
//!
//! To stay fast, only the French and German documents of three help/chat
//! sources (about 2.5 MB of text) are ingested, once per test binary, with
//! 1 MiB segments. Without `../shared/data` every test prints a visible
//! `SKIPPED` notice and passes.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::SystemTime;

use corpusql::raw::tokenize::{corpus_counts, Tokenizer};
use corpusql::raw::train::mixture::{self, Mixture};
use corpusql::raw::train::{Engine, EngineOptions};
use corpusql::{ingest, Corpus, IngestOptions, Input};

const CORPUS: &str = "realcorpus-dev.jsonl.zst";
const LANGS: [&str; 2] = ["fr", "de"];
const SOURCES: [&str; 3] = ["gnome-help", "gimp-help", "chatterbot-corpus"];
const VOCAB: usize = 2000;

struct Fixture {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    tokenizer: PathBuf,
    /// Sidecar files and their modification times right after the first
    /// (and only) count.
    sidecars: Vec<(PathBuf, SystemTime)>,
}

#[derive(serde::Deserialize)]
struct Head<'a> {
    #[serde(borrow)]
    lang: Option<&'a str>,
    #[serde(borrow)]
    source: Option<&'a str>,
}

fn sidecars(dir: &Path) -> Vec<(PathBuf, SystemTime)> {
    let mut v: Vec<(PathBuf, SystemTime)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "cqc"))
        .map(|p| {
            let t = std::fs::metadata(&p).unwrap().modified().unwrap();
            (p, t)
        })
        .collect();
    v.sort();
    v
}

fn fixture() -> Option<&'static Fixture> {
    static F: OnceLock<Option<Fixture>> = OnceLock::new();
    F.get_or_init(|| {
        let file = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/data")
            .join(CORPUS);
        if !file.is_file() {
            eprintln!("SKIPPED: ../shared/data absent (no {CORPUS})");
            return None;
        }
        let raw = zstd::decode_all(std::fs::File::open(&file).unwrap()).unwrap();
        let mut keep = Vec::new();
        for line in raw.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let h: Head = serde_json::from_slice(line).unwrap();
            if h.lang.is_some_and(|l| LANGS.contains(&l))
                && h.source.is_some_and(|s| SOURCES.contains(&s))
            {
                keep.extend_from_slice(line);
                keep.push(b'\n');
            }
        }
        drop(raw);
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("corpus");
        let opts = IngestOptions {
            segment_bytes: 1 << 20,
            ..Default::default()
        };
        let input = Input::Reader(
            "real-fr-de.jsonl".into(),
            Box::new(std::io::Cursor::new(keep)),
        );
        let rep = ingest(&dir, vec![input], &opts).unwrap();
        assert!(rep.ingested > 1000, "{} documents", rep.ingested);
        assert_eq!(rep.rejected, 0);
        let corpus = Corpus::open(&dir).unwrap();
        assert!(corpus.segments().len() >= 2);
        // Train on the French documents.
        let tokenizer = tmp.path().join("tokenizer.json");
        let sel = corpus.query("lang=fr").unwrap();
        assert!(sel.count() > 500);
        corpusql::raw::tokenize::train_bpe(&sel, VOCAB, &tokenizer).unwrap();
        // No counts before the first use, one sidecar per segment after.
        assert!(sidecars(&dir).is_empty());
        let tok = Tokenizer::load(tokenizer.to_str().unwrap()).unwrap();
        corpus_counts(&corpus, &tok).unwrap();
        let sidecars = sidecars(&dir);
        assert_eq!(sidecars.len(), corpus.segments().len());
        for (p, _) in &sidecars {
            let name = p.file_name().unwrap().to_str().unwrap();
            assert!(
                name.contains(&format!(".tok-{}.", tok.id())),
                "sidecar named by the tokenizer hash: {name}"
            );
        }
        Some(Fixture {
            _tmp: tmp,
            dir,
            tokenizer,
            sidecars,
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

fn load(f: &Fixture) -> Tokenizer {
    Tokenizer::load(f.tokenizer.to_str().unwrap()).unwrap()
}

fn texts_of(dir: &Path, q: &str) -> HashMap<String, u64> {
    let c = Corpus::open(dir).unwrap();
    let mut m = HashMap::new();
    for d in c.query(q).unwrap().documents() {
        *m.entry(d.unwrap().text).or_default() += 1;
    }
    m
}

#[test]
fn the_trained_tokenizer_is_a_byte_level_bpe_with_an_end_of_text_id() {
    let f = fixture_or_skip!();
    let tok = load(f);
    let Tokenizer::Hf { tok: hf, eos, .. } = &tok else {
        panic!("a tokenizer.json loads as Hf")
    };
    assert_eq!(hf.token_to_id("<|endoftext|>"), Some(*eos));
    assert!(tok.vocab_size() as usize <= VOCAB && tok.vocab_size() > 256 + 100);
    assert!(tok.id().starts_with("hf-"));
    // Loading the same file again gives the same id (content hash).
    assert_eq!(load(f).id(), tok.id());
    // BPE compresses French text well below one token per byte.
    let texts = texts_of(&f.dir, "lang=fr");
    let bytes: usize = texts.keys().map(|t| t.len()).sum();
    let mut ids = Vec::new();
    for t in texts.keys() {
        tok.encode(t, &mut ids).unwrap();
    }
    assert!(
        (ids.len() as f64) < 0.5 * bytes as f64,
        "{} tokens for {bytes} bytes",
        ids.len()
    );
    // Every text of both languages round-trips through encode/decode.
    for (t, _) in texts.iter().chain(texts_of(&f.dir, "lang=de").iter()) {
        let mut ids = Vec::new();
        tok.encode(t, &mut ids).unwrap();
        assert!(!ids.contains(&tok.eos()));
        assert_eq!(&tok.decode(&ids).unwrap(), t);
        assert_eq!(tok.count(t).unwrap() as usize, ids.len() + 1);
    }
}

const MIX: &str = r#"
seed = 5
tokens = 300_000
seq_len = 256
tokenizer = "TOKENIZER"
shuffle_window_blocks = 2
shuffle_window_sequences = 64

[[component]]
name = "fr"
query = "lang=fr"
weight = 0.7

[[component]]
name = "de"
query = "lang=de"
weight = 0.3
"#;

fn mix(f: &Fixture) -> Mixture {
    Mixture::from_toml(
        &MIX.replace("TOKENIZER", f.tokenizer.to_str().unwrap()),
        "mix.toml",
    )
    .unwrap()
}

#[test]
fn streamed_documents_decode_to_their_texts() {
    let f = fixture_or_skip!();
    let m = mix(f);
    let corpus = Corpus::open(&f.dir).unwrap();
    let (plan, _) = mixture::plan(&corpus, &m).unwrap();
    let tok = load(f);
    assert_eq!(plan.tokenizer, tok.id());
    let mut e = Engine::new(&corpus, &m, EngineOptions::default()).unwrap();
    // Rows by (component, the component's own sequence): each component's
    // documents, end to end.
    let mut rows: Vec<(u32, u64, Vec<u32>)> = Vec::new();
    while let Some(b) = e.next_batch(64).unwrap() {
        for r in 0..b.rows() {
            rows.push((
                b.components()[r],
                b.component_sequences()[r],
                b.row(r).unwrap().to_vec(),
            ));
        }
    }
    assert_eq!(rows.len() as u64, plan.sequences);
    rows.sort_by_key(|r| (r.0, r.1));
    let vocab = tok.vocab_size(); // (not in the loop: it walks the vocabulary)
    assert!(rows.iter().all(|r| r.2.iter().all(|&t| t < vocab)));
    let fr = texts_of(&f.dir, "lang=fr");
    let de = texts_of(&f.dir, "lang=de");
    let eos = tok.eos();
    // Complete documents of each component: skip the pieces around a gap
    // in its sequences (the budget ends inside a shuffle window).
    let mut complete: Vec<(u32, Vec<u32>)> = Vec::new();
    let mut cur: Vec<u32> = Vec::new();
    let mut partial = false;
    let mut prev: Option<(u32, u64)> = None;
    for (c, j, row) in &rows {
        if prev != Some((*c, j.wrapping_sub(1))) {
            cur.clear();
            partial = *j != 0;
        }
        prev = Some((*c, *j));
        for &t in row {
            if t == eos {
                let d = std::mem::take(&mut cur);
                if !partial {
                    complete.push((*c, d));
                }
                partial = false;
            } else {
                cur.push(t);
            }
        }
    }
    assert!(complete.len() > 50, "{} documents", complete.len());
    let (mut n_fr, mut n_de) = (0u64, 0u64);
    for (i, (c, p)) in complete.iter().enumerate() {
        let text = tok.decode(p).unwrap();
        if *c == 0 && fr.contains_key(&text) {
            n_fr += p.len() as u64 + 1;
        } else if *c == 1 && de.contains_key(&text) {
            n_de += p.len() as u64 + 1;
        } else {
            panic!(
                "streamed document {i} ({} tokens) does not decode to a text of its component: {:?}",
                p.len(),
                text.chars().take(80).collect::<String>()
            );
        }
        // The exact tokens are the tokenizer's encoding of that text.
        let mut ids = Vec::new();
        tok.encode(&text, &mut ids).unwrap();
        assert_eq!(&ids[..], &p[..]);
    }
    // The report attributes tokens as the decoded documents say (the
    // budget-cut last document aside).
    let by = &e.emitted().by_component;
    assert!(
        by["fr"] >= n_fr && by["fr"] - n_fr < 40_000,
        "{by:?} vs fr {n_fr}"
    );
    assert!(
        by["de"] >= n_de && by["de"] - n_de < 40_000,
        "{by:?} vs de {n_de}"
    );
    for (name, share) in [("fr", 0.7), ("de", 0.3)] {
        let got = by[name] as f64 / e.emitted().tokens as f64;
        assert!((got - share).abs() < 0.02, "{name}: {got:.4}");
    }
}

#[test]
fn token_count_sidecars_are_written_once_and_reused() {
    let f = fixture_or_skip!();
    let m = mix(f);
    let tok = load(f);
    // Planning, streaming and `corpusql tokenize` read the sidecars; none
    // is rewritten (same files, same modification times).
    let corpus = Corpus::open(&f.dir).unwrap();
    let (plan, resolved) = mixture::plan(&corpus, &m).unwrap();
    let (plan2, _) = mixture::plan(&corpus, &m).unwrap();
    assert_eq!(plan, plan2);
    let mut e = Engine::new(&corpus, &m, EngineOptions::default()).unwrap();
    e.next_batch(8).unwrap().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_corpusql"))
        .arg("-C")
        .arg(&f.dir)
        .args(["tokenize", "--tokenizer", f.tokenizer.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_corpusql"))
        .arg("-C")
        .arg(&f.dir)
        .args([
            "mix",
            "plan",
            "lang=de",
            "--tokenizer",
            f.tokenizer.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(sidecars(&f.dir), f.sidecars, "sidecars rewritten or added");
    // The counts are exact: text tokens + 1 per document.
    let mut checked = 0;
    for (i, s) in corpus.segments().iter().enumerate() {
        let block = s.segment.read_block(0).unwrap();
        let first = s.segment.blocks()[0].first_doc as usize;
        for d in 0..block.len().min(20) {
            let want = tok.count(block.text(d)).unwrap();
            assert_eq!(resolved.counts[i][first + d], want);
            checked += 1;
        }
    }
    assert!(checked > 0);
    let fr_tokens: u64 = texts_of(&f.dir, "lang=fr")
        .iter()
        .map(|(t, m)| m * tok.count(t).unwrap() as u64)
        .sum();
    assert_eq!(plan.components[0].tokens_available, fr_tokens);
}

#[test]
fn a_corrupt_sidecar_is_reported_not_trusted() {
    let f = fixture_or_skip!();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("corpus");
    std::fs::create_dir_all(&dir).unwrap();
    for e in std::fs::read_dir(&f.dir).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() && e.file_name() != corpusql::raw::corpus::LOCK_FILE {
            std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
        }
    }
    let (victim, _) = &sidecars(&dir)[0];
    let mut b = std::fs::read(victim).unwrap();
    let i = b.len() / 2;
    b[i] ^= 0x40;
    std::fs::write(victim, &b).unwrap();
    let corpus = Corpus::open(&dir).unwrap();
    let e = mixture::plan(&corpus, &mix(f)).unwrap_err().to_string();
    assert!(e.contains("token-count"), "{e}");
    // Deleting it recomputes it.
    std::fs::remove_file(victim).unwrap();
    mixture::plan(&corpus, &mix(f)).unwrap();
    assert!(victim.is_file());
}

#[test]
fn the_cli_trains_a_tokenizer_too() {
    let f = fixture_or_skip!();
    let tmp = tempfile::tempdir().unwrap();
    let out_file = tmp.path().join("small.json");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_corpusql"))
        .arg("-C")
        .arg(&f.dir)
        .args([
            "tokenizer",
            "train",
            "lang=de and source=gnome-help",
            "--vocab-size",
            "400",
            "-o",
            out_file.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tok = Tokenizer::load(out_file.to_str().unwrap()).unwrap();
    assert!(tok.vocab_size() <= 400);
    let de: HashSet<String> = texts_of(&f.dir, "lang=de").into_keys().collect();
    for t in de.iter().take(50) {
        let mut ids = Vec::new();
        tok.encode(t, &mut ids).unwrap();
        assert_eq!(&tok.decode(&ids).unwrap(), t);
    }
}

#[test]
#[ignore = "bug: a document whose text contains the literal `<|endoftext|>` gets the end-of-document id inside it (src/tokenize.rs Tokenizer::encode: encode_fast splits on special added tokens), so document boundaries in the stream are wrong"]
fn a_literal_end_of_text_in_a_document_is_not_an_end_of_document() {
    let f = fixture_or_skip!();
    let tok = load(f);
    let text = "Le jeton <|endoftext|> apparaît dans ce document.";
    let mut ids = Vec::new();
    tok.encode(text, &mut ids).unwrap();
    assert!(
        !ids.contains(&tok.eos()),
        "the text's own `<|endoftext|>` became the end-of-document id"
    );
    assert_eq!(tok.decode(&ids).unwrap(), text);
}

/// The fast path (special tokens, normalizer, pre-tokenizer, model with a
/// word cache) gives exactly the ids of `tokenizers`' own `encode_fast`, on
/// every document of the corpus and on text holding special tokens.
#[test]
fn the_word_cached_encoder_equals_the_library_encoder() {
    let f = fixture_or_skip!();
    let ours = load(f);
    let lib = tokenizers::Tokenizer::from_file(&f.tokenizer).unwrap();
    let c = Corpus::open(&f.dir).unwrap();
    let mut n = 0;
    let mut texts: Vec<String> = c
        .query("*")
        .unwrap()
        .documents()
        .take(3000)
        .map(|d| d.unwrap().text)
        .collect();
    texts.push("a <|endoftext|> b<|endoftext|><|endoftext|>c  \u{00e9}\u{0301} \t\n ".to_string());
    texts.push(String::new());
    // Twice: the second pass reads the word cache.
    for _ in 0..2 {
        for t in &texts {
            let mut got = Vec::new();
            ours.encode(t, &mut got).unwrap();
            let want = lib.encode_fast(t.as_str(), false).unwrap();
            assert_eq!(
                got,
                want.get_ids(),
                "{:?}",
                t.chars().take(60).collect::<String>()
            );
            n += 1;
        }
    }
    assert!(n > 1000, "{n} texts");
}

/// A stream reading stored ids (`tokenize --keep-ids`) is the stream that
/// tokenizes: same rows, same pieces, on a private copy of the corpus.
#[test]
fn a_stream_from_stored_ids_equals_a_tokenizing_stream() {
    let f = fixture_or_skip!();
    let m = mix(f);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    std::fs::create_dir(&dir).unwrap();
    for e in std::fs::read_dir(&f.dir).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            // Not the count files: the first stream counts from scratch.
            if !name.ends_with(".cqc") && name != "LOCK" {
                std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
            }
        }
    }
    let rows = |dir: &Path| {
        let corpus = Corpus::open(dir).unwrap();
        let mut e = Engine::new(&corpus, &m, EngineOptions::default()).unwrap();
        let mut out = Vec::new();
        while let Some(b) = e.next_batch(100).unwrap() {
            out.push((b.tokens().to_vec(), b.components().to_vec()));
        }
        out
    };
    let tokenized = rows(&dir);
    let export = |out: &Path| {
        let corpus = Corpus::open(&dir).unwrap();
        let opts = corpusql::TokenExportOptions {
            format: corpusql::TokenFormat::Megatron,
            tokenizer: f.tokenizer.to_str().unwrap().to_string(),
            limit: None,
            redact_pii: false,
            override_policy: false,
        };
        let sel = corpus.query("lang=fr").unwrap();
        corpus.export_tokens(&sel, &opts, out).unwrap();
        std::fs::read(out.with_extension("bin")).unwrap()
    };
    let exported = export(&tmp.path().join("a"));
    let corpus = Corpus::open(&dir).unwrap();
    let rep = corpusql::raw::token_ids::keep_ids(&corpus, &load(f), &|_| {}).unwrap();
    assert!(rep.segments > 0);
    assert!(std::fs::read_dir(&dir).unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .ends_with(".cqi")));
    assert!(rows(&dir) == tokenized, "stored ids change the stream");
    assert!(
        export(&tmp.path().join("b")) == exported,
        "stored ids change the export"
    );
}
