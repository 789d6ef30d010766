//! `corpusql schema`: fields, kinds, documents holding each, distinct values.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use corpusql::Corpus;

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

/// Runs `schema`.
pub fn run(dir: &Path, a: Args) -> anyhow::Result<ExitCode> {
    let corpus = Corpus::open(dir)?;
    let d = corpus.describe_schema(a.values)?;
    let rows = d.fields.clone();
    let on_ingest = corpusql::TagSettings::load(dir)?;
    if a.json {
        let taggers = on_ingest.map(|t| t.taggers);
        super::print_json(
            &serde_json::json!({"generation": d.generation, "documents": d.documents, "fields": d.fields, "tag_on_ingest": taggers}),
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
