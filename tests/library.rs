//! The library facade as an embedding program uses it: `Corpus` alone, the
//! corpus policy applied inside the library by every path that lets
//! documents leave the corpus, and overriding it explicit and reported.

mod common;

use corpusql::raw::policy::Policy;
use corpusql::{
    Corpus, ExportOptions, IngestOptions, Input, Mixture, ReportOf, ReportOptions, ResumeField,
    StreamOptions, TraceOptions,
};

const ALLOWED: &str = "license_class in (public-domain, permissive)";

/// A demo corpus of several license classes with a policy that allows
/// public-domain and permissive documents only.
fn corpus_under_policy() -> (tempfile::TempDir, Corpus) {
    let tmp = tempfile::tempdir().unwrap();
    let jsonl = common::demo_jsonl(&tmp.path().join("demo.jsonl"), 600, 7, "");
    let dir = tmp.path().join("c");
    let mut corpus = Corpus::create(&dir, Default::default()).unwrap();
    let r = corpus
        .ingest(vec![Input::Path(jsonl)], &IngestOptions::default())
        .unwrap();
    assert_eq!(r.ingested, 600);
    assert_eq!(
        corpus.len(),
        600,
        "ingest moves the handle to the new generation"
    );
    corpus
        .set_policy(&Policy {
            allow: Some(vec!["public-domain".into(), "permissive".into()]),
            note: Some("test".into()),
        })
        .unwrap();
    let allowed = corpus.count(ALLOWED).unwrap();
    assert!(allowed > 0 && allowed < 600, "{allowed} allowed of 600");
    (tmp, corpus)
}

fn exported_classes(
    corpus: &Corpus,
    opts: &ExportOptions,
) -> (Vec<String>, corpusql::ExportReport) {
    let mut out = Vec::new();
    let opts = ExportOptions {
        projection: corpusql::raw::export::Projection::Fields(vec![
            "id".into(),
            "license_class".into(),
        ]),
        ..opts.clone()
    };
    let report = corpus
        .export(&corpus.query("*").unwrap(), &opts, &mut out)
        .unwrap();
    let classes = common::parse_jsonl(&out)
        .iter()
        .map(|v| v["license_class"].as_str().unwrap().to_string())
        .collect();
    (classes, report)
}

#[test]
fn export_holds_back_by_default_and_reports_an_override() {
    let (_tmp, corpus) = corpus_under_policy();
    let allowed = corpus.count(ALLOWED).unwrap();
    let (classes, r) = exported_classes(&corpus, &ExportOptions::default());
    assert_eq!(r.documents, allowed);
    assert_eq!(classes.len() as u64, allowed);
    assert!(
        classes
            .iter()
            .all(|c| c == "public-domain" || c == "permissive"),
        "{classes:?}"
    );
    assert!(r.policy.set && !r.policy.overridden && r.policy.withheld());
    assert_eq!(r.policy.held_back.docs, 600 - allowed);
    let by_license: u64 = r.policy.held_back.by_license.iter().map(|l| l.2).sum();
    assert_eq!(by_license, 600 - allowed);

    let (classes, r) = exported_classes(
        &corpus,
        &ExportOptions {
            override_policy: true,
            ..Default::default()
        },
    );
    assert_eq!(r.documents, 600);
    assert_eq!(classes.len(), 600);
    assert!(r.policy.overridden && !r.policy.withheld());
    assert_eq!(
        r.policy.held_back.docs,
        600 - allowed,
        "what the override let through"
    );

    // The limit counts documents the policy allows.
    let (classes, r) = exported_classes(
        &corpus,
        &ExportOptions {
            limit: Some(5),
            ..Default::default()
        },
    );
    assert_eq!((r.documents, classes.len()), (5, 5));
    assert!(classes
        .iter()
        .all(|c| c == "public-domain" || c == "permissive"));
}

#[test]
fn removing_the_policy_lets_everything_through() {
    let (_tmp, corpus) = corpus_under_policy();
    corpus.set_policy(&Policy::default()).unwrap();
    assert!(!corpus.dir().join("policy.toml").exists());
    let (classes, r) = exported_classes(&corpus, &ExportOptions::default());
    assert_eq!(classes.len(), 600);
    assert_eq!(r.policy, corpusql::PolicyOutcome::default());
    let e = corpus
        .set_policy(&Policy {
            allow: Some(vec!["permisive".into()]),
            note: None,
        })
        .unwrap_err();
    assert!(e.to_string().contains("permisive"), "{e}");
}

#[test]
fn tokenizer_training_sees_only_what_the_policy_allows() {
    let (tmp, corpus) = corpus_under_policy();
    let allowed = corpus.count(ALLOWED).unwrap();
    let out = tmp.path().join("tok.json");
    let r = corpus
        .train_tokenizer(&corpus.query("*").unwrap(), 300, &out, false)
        .unwrap();
    assert_eq!(r.documents, allowed);
    assert_eq!(r.policy.held_back.docs, 600 - allowed);
    assert!(out.is_file());
    let r = corpus
        .train_tokenizer(&corpus.query("*").unwrap(), 300, &out, true)
        .unwrap();
    assert_eq!(r.documents, 600);
    assert!(r.policy.overridden);
}

/// Licenses (raw `license` values) whose documents are all of an allowed
/// class, checked by query.
fn all_allowed(corpus: &Corpus, licenses: impl IntoIterator<Item = String>) -> Vec<String> {
    licenses
        .into_iter()
        .filter(|l| {
            let q = format!("license = {l:?}");
            corpus.count(&q).unwrap() != corpus.count(&format!("{q} and {ALLOWED}")).unwrap()
        })
        .collect()
}

const MIX: &str = r#"
seed = 3
seq_len = 64
[[component]]
name = "all"
query = "*"
weight = 1.0
"#;

#[test]
fn streams_hold_back_by_default_and_report_an_override() {
    let (_tmp, corpus) = corpus_under_policy();
    let allowed = corpus.count(ALLOWED).unwrap();
    let mix = Mixture::parse(MIX).unwrap();
    for rank in 0..2 {
        let mut s = corpus
            .stream(
                &mix,
                StreamOptions {
                    rank,
                    world: 2,
                    track_facets: true,
                    ..Default::default()
                },
            )
            .unwrap();
        assert!(s.policy().set && !s.policy().overridden);
        assert_eq!(s.policy().held_back.docs, 600 - allowed);
        let mut rows = 0;
        while let Some(b) = s.next_batch(7).unwrap() {
            rows += b.rows();
        }
        assert!(rows > 0);
        let e = s.emitted();
        let bad = all_allowed(&corpus, e.by_license.keys().cloned());
        assert!(
            bad.is_empty(),
            "rank {rank} streamed held-back licenses {bad:?}"
        );
    }
    // Overridden: the held-back licenses are streamed, and it is reported.
    let mut s = corpus
        .stream(
            &mix,
            StreamOptions {
                override_policy: true,
                track_facets: true,
                ..Default::default()
            },
        )
        .unwrap();
    assert!(s.policy().overridden && !s.policy().withheld());
    while s.next_batch(64).unwrap().is_some() {}
    let bad = all_allowed(&corpus, s.emitted().by_license.keys().cloned());
    assert!(!bad.is_empty(), "the override streams held-back licenses");

    // The plan and the trace are of the same streams.
    let plan = corpus.plan(&mix).unwrap();
    assert_eq!(plan.components[0].docs, allowed);
    assert_eq!(plan.policy.held_back.docs, 600 - allowed);
    let over = corpus.plan_with(&mix, true).unwrap();
    assert_eq!(over.components[0].docs, 600);
    assert!(over.policy.overridden);
    assert!(over.tokens > plan.tokens);
    for sequence in [0, plan.sequences / 2, plan.sequences - 1] {
        let t = corpus
            .trace(
                &mix,
                &TraceOptions {
                    sequence,
                    ..Default::default()
                },
            )
            .unwrap();
        assert!(!t.hits.is_empty());
        for h in &t.hits {
            let class = h.facets["license_class"].as_str().unwrap();
            assert!(class == "public-domain" || class == "permissive", "{h:?}");
        }
        assert_eq!(t.policy.held_back.docs, 600 - allowed);
    }
}

/// [`MIX`] with a component of held-back documents only.
fn held_back_only() -> String {
    MIX.replace(
        "query = \"*\"",
        "query = \"not license_class in (public-domain, permissive)\"",
    )
}

#[test]
fn a_mixture_cannot_smuggle_a_held_back_class_past_the_policy() {
    // A component that selects only held-back documents gets none of them.
    let (_tmp, corpus) = corpus_under_policy();
    let mix = Mixture::parse(&held_back_only()).unwrap();
    let plan = corpus.plan(&mix).unwrap();
    assert_eq!((plan.components[0].docs, plan.sequences), (0, 0));
    let mut s = corpus.stream(&mix, StreamOptions::default()).unwrap();
    assert!(s.next_batch(1).unwrap().is_none());
    assert!(s.policy().withheld());
    // With a budget, the plan is refused.
    let budget = Mixture::parse(&format!("tokens = 1000\n{}", held_back_only())).unwrap();
    let e = corpus.plan(&budget).unwrap_err().to_string();
    assert!(e.contains("matches no document"), "{e}");
    assert!(corpus.stream(&budget, StreamOptions::default()).is_err());
    assert!(corpus.plan_with(&budget, true).unwrap().sequences > 0);
}

#[test]
fn reports_count_what_may_leave_unless_overridden() {
    let (_tmp, corpus) = corpus_under_policy();
    let allowed = corpus.count(ALLOWED).unwrap();
    let d = corpus
        .report(ReportOf::Query("*"), &ReportOptions::default())
        .unwrap();
    assert_eq!(d.totals.docs, allowed);
    let p = d.policy.as_ref().unwrap();
    assert!(p.set && !p.overridden);
    assert_eq!(p.held_back.docs, 600 - allowed);
    let classes: Vec<&str> = d
        .breakdowns
        .iter()
        .find(|b| b.facet == "license_class")
        .unwrap()
        .rows
        .iter()
        .map(|r| r.value.as_str())
        .collect();
    assert!(
        classes
            .iter()
            .all(|c| *c == "public-domain" || *c == "permissive"),
        "{classes:?}"
    );
    let d = corpus
        .report(
            ReportOf::Mixture(&Mixture::parse(MIX).unwrap()),
            &ReportOptions {
                override_policy: true,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(d.totals.docs, 600);
    assert!(d.policy.unwrap().overridden);
}

#[test]
fn resume_is_refused_naming_what_differs() {
    let (tmp, corpus) = corpus_under_policy();
    let mix = Mixture::parse(MIX).unwrap();
    let mut s = corpus.stream(&mix, StreamOptions::default()).unwrap();
    s.next_batch(3).unwrap().unwrap();
    let state = s.state();
    drop(s);
    // Same stream: resumes where it stopped.
    let mut again = corpus
        .stream(
            &mix,
            StreamOptions {
                resume: Some(state.clone()),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(again.next_batch(1).unwrap().unwrap().sequences(), &[3]);
    // Another mixture.
    let other = Mixture::parse(&MIX.replace("seed = 3", "seed = 4")).unwrap();
    let resume = |m: &Mixture, c: &Corpus, o: bool| {
        c.stream(
            m,
            StreamOptions {
                resume: Some(state.clone()),
                override_policy: o,
                ..Default::default()
            },
        )
        .err()
        .expect("refused")
    };
    match resume(&other, &corpus, false) {
        corpusql::Error::ResumeMismatch {
            what,
            state: was,
            current,
        } => {
            assert_eq!(what, ResumeField::Mixture);
            assert_eq!(was, state.mixture_hash);
            assert_ne!(was, current);
        }
        e => panic!("{e}"),
    }
    // The same mixture with the policy overridden selects other documents.
    let e = resume(&mix, &corpus, true);
    assert!(matches!(e, corpusql::Error::ResumeMismatch { .. }), "{e}");
    // New documents: the selection differs.
    let mut c2 = Corpus::open(corpus.dir()).unwrap();
    let extra = tmp.path().join("extra.jsonl");
    std::fs::write(
        &extra,
        "{\"id\": \"new\", \"text\": \"a new public-domain document\", \"license\": \"pd\"}\n",
    )
    .unwrap();
    c2.ingest(vec![Input::Path(extra)], &IngestOptions::default())
        .unwrap();
    match resume(&mix, &c2, false) {
        corpusql::Error::ResumeMismatch { what, .. } => {
            assert_eq!(what, ResumeField::Documents, "{what:?}")
        }
        e => panic!("{e}"),
    }
}

#[test]
fn the_facade_types_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<Corpus>();
    send_sync::<corpusql::Selection>();
    send_sync::<corpusql::Document>();
    send_sync::<Mixture>();
    send_sync::<corpusql::StreamState>();
    send_sync::<corpusql::Error>();
    send::<corpusql::Stream>();
    send::<corpusql::Batch>();
    // One snapshot, queried from several threads at once.
    let (_tmp, corpus) = corpus_under_policy();
    let counts: Vec<u64> = std::thread::scope(|s| {
        let hs: Vec<_> = ["lang=fr", "lang=en", "*"]
            .map(|q| s.spawn(|| corpus.count(q).unwrap()))
            .into_iter()
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(counts[2], 600);
    assert_eq!(counts[0], corpus.count("lang=fr").unwrap());
}

#[test]
fn the_report_command_counts_held_back_documents_only_when_overridden() {
    let (_tmp, corpus) = corpus_under_policy();
    let allowed = corpus.count(ALLOWED).unwrap();
    let totals = |extra: &[&str]| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_corpusql"))
            .arg("-C")
            .arg(corpus.dir())
            .args(["report", "*", "--json"])
            .args(extra)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        (
            v["totals"]["docs"].as_u64().unwrap(),
            v["policy"]["overridden"].as_bool().unwrap(),
        )
    };
    assert_eq!(totals(&[]), (allowed, false));
    assert_eq!(totals(&["--override-policy"]), (600, true));
}

/// The lazy JSONL reader (what Python's `Corpus.query` and
/// `DocumentDataset` pull from) gives the records `write_jsonl` writes, in
/// order, whatever the chunk size; its filter keeps exactly the records of
/// the indices it accepts.
#[test]
fn the_lazy_reader_gives_the_records_write_jsonl_writes() {
    use corpusql::raw::export::{write_jsonl, JsonlReader, Projection};
    let (_tmp, corpus) = corpus_under_policy();
    let sel = corpus.query("lang in (fr, en)").unwrap();
    let mut whole = Vec::new();
    write_jsonl(&sel, &Projection::All, &mut whole).unwrap();
    let lines: Vec<&[u8]> = whole.split_inclusive(|&b| b == b'\n').collect();
    assert!(lines.len() > 50);
    for blocks in [1, 3, 64] {
        let mut r = JsonlReader::new(sel.clone(), Projection::All).unwrap();
        let mut got = Vec::new();
        let mut chunks = 0;
        while let Some(c) = r.next_chunk(blocks).unwrap() {
            got.extend(c);
            chunks += 1;
        }
        assert_eq!(got, whole, "blocks {blocks}");
        assert!(chunks >= 1);
    }
    let r = JsonlReader::new(sel.clone(), Projection::All).unwrap();
    let mut r = r.keep(|i| i % 3 == 1);
    let mut got = Vec::new();
    while let Some(c) = r.next_chunk(2).unwrap() {
        got.extend(c);
    }
    let want: Vec<u8> = lines
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 3 == 1)
        .flat_map(|(_, l)| l.iter().copied())
        .collect();
    assert_eq!(got, want);
}

/// Workers of a rank (`StreamOptions::split`) stream, block by block in
/// turn, exactly the rank's sequences; a worker resumed after `skip` of its
/// sequences continues with the next.
#[test]
fn workers_split_a_rank_and_resume_from_their_counts() {
    let (_tmp, corpus) = corpus_under_policy();
    let mix =
        Mixture::parse("seq_len = 64\n[[component]]\nname = \"all\"\nquery = \"*\"\nweight = 1")
            .unwrap();
    let rows = |split: corpusql::WorkerSplit| {
        let opts = StreamOptions {
            rank: 1,
            world: 2,
            split,
            ..Default::default()
        };
        let mut s = corpus.stream(&mix, opts).unwrap();
        let mut out: Vec<Vec<u32>> = Vec::new();
        while let Some(b) = s.next_batch(5).unwrap() {
            out.extend((0..b.rows()).map(|r| b.row(r).unwrap().to_vec()));
        }
        out
    };
    let rank = rows(corpusql::WorkerSplit::default());
    assert!(rank.len() > 40, "{} sequences", rank.len());
    let block = 4usize;
    let parts: Vec<Vec<Vec<u32>>> = (0..3u64)
        .map(|worker| {
            rows(corpusql::WorkerSplit {
                worker,
                workers: 3,
                block: block as u64,
                skip: 0,
            })
        })
        .collect();
    let mut merged = Vec::new();
    let mut taken = [0usize; 3];
    for b in 0.. {
        let w = b % 3;
        let part = &parts[w][taken[w]..(taken[w] + block).min(parts[w].len())];
        if part.is_empty() {
            break;
        }
        taken[w] += part.len();
        merged.extend(part.iter().cloned());
    }
    assert_eq!(merged, rank);
    let resumed = rows(corpusql::WorkerSplit {
        worker: 2,
        workers: 3,
        block: block as u64,
        skip: 5,
    });
    assert_eq!(resumed, parts[2][5..].to_vec());
}
