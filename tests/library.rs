//! The library facade as an embedding program uses it: `Corpus` alone, the
//! corpus policy applied inside the library by every path that lets
//! documents leave the corpus, and overriding it explicit and reported.

mod common;

use corpusql::policy::Policy;
use corpusql::{Corpus, ExportOptions, IngestOptions, Input};

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
        projection: corpusql::export::Projection::Fields(vec!["id".into(), "license_class".into()]),
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
