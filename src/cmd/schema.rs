//! `corpusql schema`: fields, kinds, documents holding each, distinct values.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::ExitCode;

use corpusql::Corpus;
use serde::Serialize;

/// Arguments of `schema`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Show up to this many example values per facet.
    #[arg(long, default_value_t = 5)]
    pub values: usize,
}

#[derive(Serialize)]
struct FieldRow {
    name: String,
    kind: String,
    docs: u64,
    distinct: Option<u64>,
    top_values: Vec<(String, u64)>,
    /// For signal columns: the tagger and its version (`signal_version`).
    #[serde(skip_serializing_if = "Option::is_none")]
    tagger: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signal_version: Option<String>,
    /// For derived facets: what they derive from.
    #[serde(skip_serializing_if = "Option::is_none")]
    derived_from: Option<String>,
}

/// Runs `schema`.
pub fn run(dir: &Path, a: Args) -> anyhow::Result<ExitCode> {
    let corpus = Corpus::open(dir)?;
    let schema = corpus.schema().clone();
    let mut rows = vec![
        FieldRow {
            name: schema.key_field.clone(),
            kind: "key".into(),
            docs: corpus.len(),
            distinct: Some(corpus.len()),
            top_values: vec![],
            tagger: None,
            signal_version: None,
            derived_from: None,
        },
        FieldRow {
            name: schema.text_field.clone(),
            kind: "text".into(),
            docs: corpus.len(),
            distinct: None,
            top_values: vec![],
            tagger: None,
            signal_version: None,
            derived_from: None,
        },
        FieldRow {
            name: "bytes".into(),
            kind: "number (built-in)".into(),
            docs: corpus.len(),
            distinct: None,
            top_values: vec![],
            tagger: None,
            signal_version: None,
            derived_from: None,
        },
    ];
    for (name, kind) in &schema.fields {
        let mut docs = 0u64;
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        let mut distinct: BTreeSet<String> = BTreeSet::new();
        for s in corpus.segments() {
            docs += (s.segment.presence(name)? & &s.live).len();
            for (v, id) in s.segment.terms_with_prefix(name, "") {
                let n = (s.segment.postings_of(id)? & &s.live).len();
                if n > 0 {
                    *counts.entry(v.clone()).or_default() += n;
                    distinct.insert(v);
                }
            }
        }
        let mut top: Vec<(String, u64)> = counts.into_iter().collect();
        top.sort_by(|x, y| y.1.cmp(&x.1).then_with(|| x.0.cmp(&y.0)));
        top.truncate(a.values);
        let facet = matches!(kind, corpusql::FieldKind::Facet | corpusql::FieldKind::Bool);
        rows.push(FieldRow {
            name: name.clone(),
            kind: kind.name().into(),
            docs,
            distinct: facet.then_some(distinct.len() as u64),
            top_values: top,
            tagger: corpus.state().signals.get(name).map(|i| i.tagger.clone()),
            signal_version: corpus.state().signals.get(name).map(|i| i.version.clone()),
            derived_from: (name == "license_id" || name == "license_class")
                .then(|| corpus.state().license_field().to_string()),
        });
    }
    let on_ingest = corpusql::TagSettings::load(dir)?;
    if a.json {
        let taggers = on_ingest.map(|t| t.taggers);
        super::print_json(
            &serde_json::json!({"generation": corpus.generation(), "documents": corpus.len(), "fields": rows, "tag_on_ingest": taggers}),
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{} documents at generation {}",
        corpus.len(),
        corpus.generation()
    );
    let mut table = vec![vec![
        "field".to_string(),
        "kind".into(),
        "docs".into(),
        "distinct".into(),
        "top values".into(),
    ]];
    let mut taggers: BTreeMap<String, (String, usize)> = BTreeMap::new();
    for r in &rows {
        if let (Some(t), Some(v)) = (&r.tagger, &r.signal_version) {
            let e = taggers.entry(t.clone()).or_insert((v.clone(), 0));
            e.1 += 1;
        }
    }
    for r in rows {
        let kind = match (&r.tagger, &r.derived_from) {
            (Some(t), _) => format!("{} ({t})", r.kind),
            (_, Some(f)) => format!("{} (from {f})", r.kind),
            _ => r.kind,
        };
        table.push(vec![
            r.name,
            kind,
            r.docs.to_string(),
            r.distinct
                .map(|d| d.to_string())
                .unwrap_or_else(|| "-".into()),
            r.top_values
                .iter()
                .map(|(v, n)| format!("{v} ({n})"))
                .collect::<Vec<_>>()
                .join(", "),
        ]);
    }
    super::print_table(&table, 99)?;
    if !taggers.is_empty() {
        println!("\nsignals (signal_version per tagger):");
        for (t, (v, n)) in taggers {
            println!("  {t:<10} {n:>3} columns  {v}");
        }
    }
    if let Some(t) = on_ingest {
        println!(
            "\ntagging on ingest ({}): {} (languages {})",
            corpusql::raw::tag::settings::SETTINGS_FILE,
            t.taggers.join(","),
            t.languages.join(",")
        );
    }
    Ok(ExitCode::SUCCESS)
}
