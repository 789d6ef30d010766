//! `corpusql query QUERY` (or a bare query): matching documents as JSONL.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use corpusql::raw::export::{write_jsonl, Projection};
use corpusql::Corpus;

/// Arguments of `query`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The query, e.g. `lang=fr and license in (cc-by-4.0, pd)`.
    pub query: String,
    /// Print only these fields, e.g. `id,license` (stored fields, derived
    /// facets such as `license_class`, signals such as `lang_score`, `bytes`).
    #[arg(long)]
    pub fields: Option<String>,
    /// Follow each record with its derived license facets (`license_id`,
    /// `license_class`) and tag signals (`--fields` may also name them).
    #[arg(long)]
    pub signals: bool,
    /// Print at most this many documents.
    #[arg(long)]
    pub limit: Option<u64>,
}

/// Runs `query`.
pub fn run(dir: &Path, a: Args) -> anyhow::Result<ExitCode> {
    let corpus = Corpus::open(dir)?;
    let mut sel = corpus.query(&a.query)?;
    let proj = Projection::parse_with(a.fields.as_deref(), a.signals);
    proj.check(corpus.schema())?;
    super::print_notes(&sel);
    if let Some(n) = a.limit {
        sel.truncate(n);
    }
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
    write_jsonl(&sel, &proj, &mut out)?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
