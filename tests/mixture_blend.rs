//! Mixtures blended at sequence granularity: exact shares whatever the
//! document sizes, phases, weight changes recorded in the state and
//! replayed, a component per sequence, and provenance pieces that rebuild
//! every streamed token.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::Command;

use corpusql::{
    ingest, Corpus, IngestOptions, Input, Mixture, ReportOf, ReportOptions, StreamOptions,
    StreamState,
};

const SEQ: usize = 256;

/// Three sources: four "novels" of 120,000 bytes (each more than a quarter
/// of the 400,000-token budget below), 3,000 short notes and 600 articles.
fn corpus_jsonl() -> Vec<u8> {
    let mut s = String::new();
    let mut add = |id: String, kind: &str, len: usize, seed: usize| {
        let words = [
            "lorem ", "ipsum ", "dolor ", "sit ", "amet ", "novel ", "chapter ",
        ];
        let mut text = format!("{id} ");
        let mut i = seed;
        while text.len() < len {
            text.push_str(words[i % words.len()]);
            i = i.wrapping_mul(31).wrapping_add(7) % 1_000_003;
        }
        text.truncate(len);
        s.push_str(&format!(
            "{{\"id\": \"{id}\", \"kind\": \"{kind}\", \"source\": \"{kind}-{}\", \"license\": \"{}\", \"text\": \"{text}\"}}\n",
            seed % 3,
            ["cc-by-4.0", "pd", "cc-by-sa-4.0"][seed % 3]
        ));
    };
    for i in 0..4 {
        add(format!("novel{i}"), "novel", 120_000, i);
    }
    for i in 0..3000 {
        add(format!("note{i:04}"), "note", 40 + i * 13 % 300, i);
    }
    for i in 0..600 {
        add(format!("art{i:03}"), "article", 800 + i * 37 % 2500, i);
    }
    s.into_bytes()
}

fn build(dir: &Path) -> Corpus {
    let opts = IngestOptions {
        segment_bytes: 300_000,
        ..Default::default()
    };
    let input = Input::Reader(
        "blend.jsonl".into(),
        Box::new(std::io::Cursor::new(corpus_jsonl())),
    );
    ingest(dir, vec![input], &opts).unwrap();
    Corpus::open(dir).unwrap()
}

const PHASED: &str = r#"
seed = 11
seq_len = 256
shuffle_window_sequences = 64

[[component]]
name = "novels"
query = "kind = novel"

[[component]]
name = "notes"
query = "kind = note"

[[component]]
name = "articles"
query = "kind = article"

[[phase]]
name = "main"
tokens = 300_000
weights = { novels = 30, notes = 40, articles = 30 }

[[phase]]
name = "anneal"
tokens = 100_000
weights = { novels = 10, notes = 80, articles = 10 }
"#;

/// Every row of a stream: (global sequence, component, tokens, pieces).
type Row = (u64, u32, Vec<u32>, Vec<(String, u64, u64)>);

fn rows(
    corpus: &Corpus,
    m: &Mixture,
    opts: StreamOptions,
    batch: usize,
) -> (Vec<Row>, StreamState) {
    let mut s = corpus.stream(m, opts).unwrap();
    let mut out = Vec::new();
    while let Some(b) = s.next_batch(batch).unwrap() {
        let mut pieces = b.pieces().iter().peekable();
        for r in 0..b.rows() {
            let mut p = Vec::new();
            while let Some(x) = pieces.next_if(|x| x.row == r) {
                let key = x.key.as_deref().unwrap_or_default().to_string();
                p.push((key, x.doc_offset, x.tokens));
            }
            out.push((
                b.sequences()[r],
                b.components()[r],
                b.row(r).unwrap().to_vec(),
                p,
            ));
        }
    }
    (out, s.state())
}

/// Runs the CLI on the corpus at `dir`; its stdout, after checking it
/// succeeded.
fn cli(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new(env!("CARGO_BIN_EXE_corpusql"))
        .arg("-C")
        .arg(dir)
        .args(args)
        .env_remove("CORPUSQL_DIR")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn provenance() -> StreamOptions {
    StreamOptions {
        provenance: true,
        ..StreamOptions::default()
    }
}

#[test]
fn every_phase_holds_its_shares_whatever_the_document_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = build(dir.path());
    let m = Mixture::parse(PHASED).unwrap();
    let plan = corpus.plan(&m).unwrap();
    assert_eq!(plan.phases.len(), 2);
    assert_eq!(plan.sequences, 300_000 / 256 + 100_000 / 256);
    assert_eq!(plan.phases[1].first_sequence, 300_000 / 256);
    // A novel is more than a quarter of the budget.
    let novel = plan.components[0].tokens_available / 4;
    assert!(novel * 4 > plan.tokens, "{novel} vs {}", plan.tokens);
    let (got, _) = rows(&corpus, &m, StreamOptions::default(), 100);
    assert_eq!(got.len() as u64, plan.sequences);
    for (p, phase) in plan.phases.iter().enumerate() {
        let part =
            &got[phase.first_sequence as usize..(phase.first_sequence + phase.sequences) as usize];
        let mut by = [0u64; 3];
        for r in part {
            by[r.1 as usize] += 1;
        }
        for (c, name) in ["novels", "notes", "articles"].iter().enumerate() {
            let want = phase.shares.get(*name).copied().unwrap_or(0.0);
            let share = by[c] as f64 / part.len() as f64;
            assert!(
                (share - want).abs() <= 0.005,
                "phase {p} `{name}`: {:.2}% of its sequences, weight {:.2}%",
                100.0 * share,
                100.0 * want
            );
        }
    }
    // Token shares of the whole run follow (every sequence is whole).
    let mut tokens = [0u64; 3];
    for r in &got {
        tokens[r.1 as usize] += SEQ as u64;
    }
    let total: u64 = tokens.iter().sum();
    for (c, want) in m.shares().iter().enumerate() {
        let share = tokens[c] as f64 / total as f64;
        assert!(
            (share - want).abs() <= 0.005,
            "component {c}: {share} vs {want}"
        );
    }
    // A novel is spread over its component's window: the global sequences
    // holding one novel are not one consecutive run.
    let (with_keys, _) = rows(&corpus, &m, provenance(), 100);
    let mut runs = 0;
    let mut seen: HashMap<String, Vec<u64>> = HashMap::new();
    for r in &with_keys {
        for (k, _, _) in &r.3 {
            if k.starts_with("novel") {
                seen.entry(k.clone()).or_default().push(r.0);
            }
        }
    }
    for (k, s) in &seen {
        assert!(s.len() > 20, "{k} in {} sequences", s.len());
        let longest = s
            .windows(2)
            .fold((1, 1), |(best, cur), w| {
                let cur = if w[1] == w[0] + 1 { cur + 1 } else { 1 };
                (best.max(cur), cur)
            })
            .0;
        assert!(
            longest < s.len() / 2,
            "{k}: {longest} consecutive of {}",
            s.len()
        );
        runs += 1;
    }
    assert!(runs >= 1);
    // Provenance does not change the tokens.
    assert!(with_keys
        .iter()
        .zip(&got)
        .all(|(a, b)| a.2 == b.2 && a.1 == b.1));
}

#[test]
fn provenance_pieces_rebuild_every_streamed_token() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = build(dir.path());
    let m = Mixture::parse(PHASED).unwrap();
    let (got, _) = rows(&corpus, &m, provenance(), 37);
    let mut texts: HashMap<String, Vec<u8>> = HashMap::new();
    for r in &got {
        let mut rebuilt: Vec<u32> = Vec::new();
        for (key, off, n) in &r.3 {
            let text = texts.entry(key.clone()).or_insert_with(|| {
                corpus
                    .get(key)
                    .unwrap()
                    .expect("a piece names a live document")
                    .text
                    .into_bytes()
            });
            let mut ids: Vec<u32> = text.iter().map(|&b| b as u32).collect();
            ids.push(256);
            rebuilt.extend_from_slice(&ids[*off as usize..(*off + *n) as usize]);
        }
        assert_eq!(rebuilt, r.2, "sequence {}", r.0);
    }
}

fn weights(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

#[test]
fn a_weight_change_is_recorded_and_replayed_on_resume() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = build(dir.path());
    let m = Mixture::parse(PHASED).unwrap();
    let (base, _) = rows(&corpus, &m, StreamOptions::default(), 50);
    // The trainer moves to notes only from sequence 600 (inside `main`).
    let mut s = corpus.stream(&m, StreamOptions::default()).unwrap();
    let mut first = Vec::new();
    for _ in 0..5 {
        let b = s.next_batch(100).unwrap().unwrap();
        first.extend((0..b.rows()).map(|r| (b.components()[r], b.row(r).unwrap().to_vec())));
    }
    // Not before what was handed out.
    let e = s
        .set_weights(weights(&[("notes", 1.0)]), 499)
        .unwrap_err()
        .to_string();
    assert!(e.contains("reached sequence 500"), "{e}");
    let e = s
        .set_weights(weights(&[("poems", 1.0)]), 600)
        .unwrap_err()
        .to_string();
    assert!(e.contains("poems"), "{e}");
    s.set_weights(weights(&[("notes", 1.0)]), 600).unwrap();
    let mut after = first.clone();
    let mut state_at_800 = None;
    while let Some(b) = s.next_batch(100).unwrap() {
        after.extend((0..b.rows()).map(|r| (b.components()[r], b.row(r).unwrap().to_vec())));
        if after.len() == 800 {
            state_at_800 = Some(s.state());
        }
    }
    assert_eq!(after.len(), base.len());
    // Before the change: the same stream; from 600 to the end of `main`
    // (1171): notes only; `anneal` keeps its own weights.
    for (i, (c, t)) in after.iter().enumerate() {
        if i < 600 {
            assert_eq!((c, t), (&base[i].1, &base[i].2), "sequence {i}");
        } else if i < 1171 {
            assert_eq!(*c, 1, "sequence {i} is a note");
        }
    }
    let anneal_notes = after[1171..].iter().filter(|x| x.0 == 1).count() as f64;
    assert!((anneal_notes / (after.len() - 1171) as f64 - 0.8).abs() < 0.005);
    // The state carries the change; resuming from it (on two ranks too)
    // continues the same stream.
    let st = state_at_800.unwrap();
    assert_eq!(st.weight_changes.len(), 1);
    assert_eq!(st.weight_changes[0].from_sequence, 600);
    let json = serde_json::to_string(&st).unwrap();
    assert!(json.contains("weight_changes"), "{json}");
    let opts = StreamOptions {
        resume: Some(st.clone()),
        ..StreamOptions::default()
    };
    let (rest, _) = rows(&corpus, &m, opts, 64);
    assert_eq!(rest.len(), after.len() - 800);
    for (r, (c, t)) in rest.iter().zip(&after[800..]) {
        assert_eq!((&r.1, &r.2), (c, t), "sequence {}", r.0);
    }
    for rank in 0..2 {
        let opts = StreamOptions {
            resume: Some(st.clone()),
            rank,
            world: 2,
            ..StreamOptions::default()
        };
        let (part, _) = rows(&corpus, &m, opts, 33);
        for r in &part {
            assert_eq!(r.2, after[r.0 as usize].1, "rank {rank} sequence {}", r.0);
        }
    }
    // A replay from the start with the state's changes gives the same run.
    let st0 = StreamState {
        next_sequence: 0,
        ..st.clone()
    };
    let opts = StreamOptions {
        resume: Some(st0),
        ..StreamOptions::default()
    };
    let (replay, _) = rows(&corpus, &m, opts, 200);
    assert!(replay
        .iter()
        .zip(&after)
        .all(|(r, (c, t))| (&r.1, &r.2) == (c, t)));
    // `corpusql trace --state` replays the change too.
    let state_file = dir.path().join("state.json");
    st.save(&state_file).unwrap();
    let mix_file = dir.path().join("mix.toml");
    std::fs::write(&mix_file, PHASED).unwrap();
    let out = cli(
        dir.path(),
        &[
            "trace",
            mix_file.to_str().unwrap(),
            "--sequence",
            "700",
            "--state",
            state_file.to_str().unwrap(),
        ],
    );
    for line in String::from_utf8(out).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["component"], "notes", "{line}");
    }
}

#[test]
fn the_cli_writes_provenance_per_sequence() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let mix_file = dir.path().join("mix.toml");
    std::fs::write(&mix_file, PHASED).unwrap();
    let prov = dir.path().join("prov.jsonl");
    let tokens = dir.path().join("tokens.u16");
    cli(
        dir.path(),
        &[
            "stream",
            mix_file.to_str().unwrap(),
            "--rank",
            "1",
            "--world",
            "2",
            "-o",
            tokens.to_str().unwrap(),
            "--provenance",
            prov.to_str().unwrap(),
        ],
    );
    let bytes = std::fs::read(&tokens).unwrap();
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&prov)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), bytes.len() / 2 / SEQ);
    for (i, v) in lines.iter().enumerate() {
        assert_eq!(v["sequence"], 1 + 2 * i as u64);
        let n: u64 = v["pieces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p[2].as_u64().unwrap())
            .sum();
        assert_eq!(n, SEQ as u64);
        assert!(["novels", "notes", "articles"].contains(&v["component"].as_str().unwrap()));
        let first = &v["pieces"][0];
        assert!(first[0].as_str().unwrap().len() > 3, "{first}");
    }
}

#[test]
fn the_mixture_datasheet_counts_what_the_stream_emits() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = build(dir.path());
    let m = Mixture::parse(PHASED).unwrap();
    let opts = StreamOptions {
        track_facets: true,
        ..StreamOptions::default()
    };
    let mut s = corpus.stream(&m, opts).unwrap();
    let mut docs = std::collections::HashSet::new();
    while let Some(b) = s.next_batch(128).unwrap() {
        for p in b.pieces() {
            docs.insert((p.part, p.ord));
        }
    }
    let em = s.emitted();
    let d = corpus
        .report(ReportOf::Mixture(&m), &ReportOptions::default())
        .unwrap();
    assert_eq!(d.totals.tokens, Some(em.tokens));
    assert_eq!(
        d.totals.docs,
        docs.len() as u64,
        "each emitted document once"
    );
    let t = d
        .training
        .as_ref()
        .expect("a mixture's datasheet has its training set");
    assert_eq!(t.tokens, em.tokens);
    for c in &t.components {
        assert_eq!(c.tokens, em.by_component[&c.name], "{}", c.name);
    }
    assert_eq!(t.phases.len(), 2);
    assert_eq!(
        t.phases.iter().map(|p| p.sequences).sum::<u64>(),
        em.sequences
    );
    let by = |facet: &str| -> BTreeMap<String, u64> {
        d.breakdowns
            .iter()
            .find(|b| b.facet == facet)
            .unwrap()
            .rows
            .iter()
            .map(|r| (r.value.clone(), r.counts.tokens.unwrap()))
            .collect()
    };
    assert_eq!(by("source"), em.by_source);
    assert_eq!(by("license_id"), em.by_license);
    // The Markdown shows it.
    let md = corpusql::report::to_markdown(&d);
    assert!(md.contains("## Training set"), "{md}");
    assert!(md.contains("anneal"), "{md}");
}
