//! `corpusql demo`: generates the bundled multilingual demo corpus, ingests
//! it, and shows a few queries with their counts and timings.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

mod gen;

use anyhow::bail;
use corpusql::{ingest, Corpus, IngestOptions, Input};

/// Arguments of `demo`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Documents to generate.
    #[arg(long, default_value_t = gen::DEFAULT_DOCS, value_parser = super::usize_in(1, 1 << 32))]
    pub docs: usize,
    /// Generator seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Where to build the demo corpus (replaced if it holds an older demo).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Only write the generated JSONL here and stop.
    #[arg(long)]
    pub jsonl: Option<PathBuf>,
}

const QUERIES: &[&str] = &[
    "*",
    "lang=fr",
    "lang=fr and license in (cc-by-4.0, pd)",
    "lang=fr and not source=gallica",
    "license=pd and year < 1900",
    "lang in (de, es, it) and bytes > 2000",
    "lang=code and prog_lang=rust",
    "source=wikipedia-* and year >= 2015",
    "not year exists",
    "license_class in (public-domain, permissive, attribution)",
];

/// Cleaning queries on the signals the demo computes.
const SIGNAL_QUERIES: &[&str] = &[
    "lang=fr and lang_detected = fr and lang_score > 0.9",
    "lang=fr and rps_doc_word_count >= 50 and rps_doc_frac_chars_dupe_5grams < 0.15",
    "code_score > 0.5",
    "is_dup = false and near_dup_rep = true",
];

/// Runs `demo`.
pub fn run(_corpus_dir: &Path, a: Args) -> anyhow::Result<ExitCode> {
    let t = Instant::now();
    let mut jsonl = Vec::new();
    gen::generate(a.docs, a.seed, &mut jsonl)?;
    if let Some(p) = &a.jsonl {
        std::fs::write(p, &jsonl)?;
        eprintln!("wrote {} documents to {}", a.docs, p.display());
        return Ok(ExitCode::SUCCESS);
    }
    let dir = a
        .dir
        .unwrap_or_else(|| std::env::temp_dir().join("corpusql-demo"));
    if dir.exists() {
        if !dir.join(corpusql::raw::catalog::CATALOG_FILE).exists()
            && std::fs::read_dir(&dir)?.next().is_some()
        {
            bail!(
                "{} exists and is not a corpus; choose another --dir",
                dir.display()
            );
        }
        std::fs::remove_dir_all(&dir)?;
    }
    let gen_s = t.elapsed().as_secs_f64();
    println!(
        "generated {} documents ({}) of French, English, German, Spanish, Italian and code in {:.2}s",
        a.docs,
        super::human_bytes(jsonl.len() as u64),
        gen_s
    );
    let input = Input::Reader("demo.jsonl".into(), Box::new(std::io::Cursor::new(jsonl)));
    let r = ingest(&dir, vec![input], &IngestOptions::default())?;
    println!(
        "ingested {} documents into {} in {:.2}s ({} segment, generation {})\n",
        r.ingested,
        dir.display(),
        r.seconds,
        r.segments,
        r.generation
    );
    let corpus = Corpus::open(&dir)?;
    let mut rows = vec![vec![
        "query".to_string(),
        "docs".into(),
        "text".into(),
        "time".into(),
    ]];
    for q in QUERIES {
        let t = Instant::now();
        let sel = corpus.query(q)?;
        let n = sel.count();
        let b = sel.text_bytes()?;
        rows.push(vec![
            q.to_string(),
            n.to_string(),
            super::human_bytes(b),
            format!("{:.2} ms", t.elapsed().as_secs_f64() * 1000.0),
        ]);
    }
    super::print_table(&rows, 1)?;
    // Signals: language, quality, personal data and duplicates as columns.
    let t = Instant::now();
    let tr = corpusql::Corpus::open(&dir)?.tag(&corpusql::TagOptions {
        taggers: vec![
            corpusql::Tagger::Language,
            corpusql::Tagger::Quality,
            corpusql::Tagger::Pii,
            corpusql::Tagger::Dedup,
        ],
        ..Default::default()
    })?;
    println!(
        "\ntagged {} documents (language, quality, pii, dedup) in {:.2}s; queries on the signals:",
        tr.outcomes.iter().map(|o| o.docs).max().unwrap_or(0),
        t.elapsed().as_secs_f64()
    );
    let corpus = Corpus::open(&dir)?;
    let mut rows = vec![vec![
        "query".to_string(),
        "docs".into(),
        "text".into(),
        "time".into(),
    ]];
    for q in SIGNAL_QUERIES {
        let t = Instant::now();
        let sel = corpus.query(q)?;
        rows.push(vec![
            q.to_string(),
            sel.count().to_string(),
            super::human_bytes(sel.text_bytes()?),
            format!("{:.2} ms", t.elapsed().as_secs_f64() * 1000.0),
        ]);
    }
    super::print_table(&rows, 1)?;
    let sel = corpus.query("lang=fr and license in (cc-by-4.0, pd)")?;
    let st = corpus.stats(&sel, &["source".to_string(), "license".to_string()])?;
    println!("\nlang=fr and license in (cc-by-4.0, pd), by source and license:");
    for g in st.groups.iter().take(8) {
        let v: Vec<String> = g
            .values
            .iter()
            .map(|v| v.clone().unwrap_or_default())
            .collect();
        println!(
            "  {:<40} {:>6} docs  {:>5.1}%",
            v.join(" / "),
            g.docs,
            100.0 * g.doc_share
        );
    }
    println!("\ntry it yourself:");
    println!("  export CORPUSQL_DIR={}", dir.display());
    println!("  corpusql count \"lang=fr and license in (cc-by-4.0, pd)\"");
    println!("  corpusql \"lang=de and year >= 2000\" --fields id,title --limit 3");
    println!(
        "  corpusql \"lang=fr and is_dup = false\" --fields id,license_class,lang_score,rps_doc_word_count --limit 3"
    );
    println!("  corpusql stats --by lang,license_class");
    println!("  corpusql report -o datasheet.html; corpusql tag report -o signals.html");
    println!("  corpusql schema; corpusql verify");
    Ok(ExitCode::SUCCESS)
}
