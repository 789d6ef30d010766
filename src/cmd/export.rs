//! `corpusql export QUERY -o FILE`: matching documents to a file
//! (compressed by extension: .zst, .gz).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use corpusql::raw::export::{open_output, Projection};
use corpusql::{Corpus, ExportOptions};

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
    /// Only these fields (stored fields, derived facets, signals, `bytes`).
    #[arg(long)]
    pub fields: Option<String>,
    /// Follow each record with its derived license facets (`license_id`,
    /// `license_class`) and tag signals (`--fields` may also name them).
    #[arg(long)]
    pub signals: bool,
    /// At most this many documents.
    #[arg(long)]
    pub limit: Option<u64>,
    /// Replace e-mails, phone numbers, IPs, NIR, IBAN, card and SIRET numbers in the text with placeholders.
    #[arg(long)]
    pub redact_pii: bool,
    /// Export documents the corpus policy holds back (their licenses are still listed).
    #[arg(long)]
    pub override_policy: bool,
    /// Tokenizer of the token formats (`megatron`, `nanotron`): `bytes` or a tokenizer.json.
    #[arg(long)]
    pub tokenizer: Option<String>,
}

/// Export formats.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Format {
    /// One JSON object per line, fields as ingested.
    Jsonl,
    /// A Parquet file (zstd), columns as ingested, nested objects as structs.
    Parquet,
    /// Megatron-LM indexed dataset: `-o PREFIX` writes `PREFIX.bin` and `PREFIX.idx`.
    Megatron,
    /// nanotron/datatrove token files: `-o PREFIX` writes `PREFIX.ds`, `.ds.index`, `.ds.metadata`.
    Nanotron,
}

/// Runs `export`.
pub fn run(dir: &Path, a: Args) -> anyhow::Result<ExitCode> {
    match a.format {
        Format::Jsonl => {}
        Format::Parquet => return run_parquet(dir, a),
        Format::Megatron | Format::Nanotron => return super::export_tokens::run(dir, a),
    }
    let corpus = Corpus::open(dir)?;
    let sel = corpus.query(&a.query)?;
    super::print_notes(&sel);
    let opts = ExportOptions {
        projection: Projection::parse_with(a.fields.as_deref(), a.signals),
        redact_pii: a.redact_pii,
        limit: a.limit,
        override_policy: a.override_policy,
    };
    // A file appears at its path only when every document is written.
    let mut out = open_output(a.output.as_deref())?;
    let report = corpus.export(&sel, &opts, &mut out)?;
    out.finish()?;
    super::print_policy(&report.policy, "export them anyway");
    if let Some(p) = &a.output {
        eprintln!("exported {} documents to {}", report.documents, p.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `export --format parquet`: the records `export` would write as
/// JSONL (same policy, notes, projection, limit), as a Parquet file that
/// appears at its path only when complete.
fn run_parquet(dir: &Path, a: Args) -> anyhow::Result<ExitCode> {
    let Some(path) = a.output.as_deref().filter(|p| p.as_os_str() != "-") else {
        anyhow::bail!("export --format parquet: give the output file with -o FILE.parquet");
    };
    let corpus = Corpus::open(dir)?;
    let sel = corpus.query(&a.query)?;
    super::print_notes(&sel);
    let opts = ExportOptions {
        projection: Projection::parse_with(a.fields.as_deref(), a.signals),
        redact_pii: a.redact_pii,
        limit: a.limit,
        override_policy: a.override_policy,
    };
    let report = corpus.export_parquet(&sel, &opts, path)?;
    super::print_policy(&report.policy, "export them anyway");
    eprintln!(
        "exported {} documents to {}",
        report.documents,
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}
