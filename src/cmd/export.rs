//! `corpusql export QUERY -o FILE`: matching documents to a file
//! (compressed by extension: .zst, .gz).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use corpusql::export::{open_output, write_jsonl, Projection};
use corpusql::Corpus;

/// Arguments of `export`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The query (`*` for everything).
    pub query: String,
    /// Output format.
    #[arg(long, value_enum, default_value = "jsonl")]
    pub format: Format,
    /// Output file (`-` or none: stdout).
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Only these fields.
    #[arg(long)]
    pub fields: Option<String>,
    /// At most this many documents.
    #[arg(long)]
    pub limit: Option<u64>,
}

/// Export formats.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Format {
    /// One JSON object per line, fields as ingested.
    Jsonl,
}

/// Runs `export`.
pub fn run(dir: &Path, a: Args) -> anyhow::Result<ExitCode> {
    let corpus = Corpus::open(dir)?;
    let mut sel = corpus.query(&a.query)?;
    super::print_notes(&sel);
    if let Some(n) = a.limit {
        sel.truncate(n);
    }
    let mut out = open_output(a.output.as_deref())?;
    let Format::Jsonl = a.format;
    let n = write_jsonl(&sel, &Projection::parse(a.fields.as_deref()), &mut out)?;
    out.flush()?;
    drop(out);
    if let Some(p) = &a.output {
        eprintln!("exported {n} documents to {}", p.display());
    }
    Ok(ExitCode::SUCCESS)
}
