//! `corpusql export QUERY -o FILE`: matching documents to a file
//! (compressed by extension: .zst, .gz).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use corpusql::export::{open_output, write_jsonl_with, Projection};
use corpusql::policy::{self, Policy};
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
    let sel = corpus.query(&a.query)?;
    super::print_notes(&sel);
    let pol = Policy::load(dir)?;
    let (kept, held) = policy::apply(&corpus, &sel, &pol)?;
    let mut sel = if held.docs > 0 {
        if a.override_policy {
            eprintln!(
                "policy overridden (--override-policy): exporting {} documents the policy would hold back",
                held.docs
            );
            sel
        } else {
            eprintln!("{}", held.summary());
            eprintln!(
                "(use --override-policy to export them anyway; `corpusql policy` shows the policy)"
            );
            kept
        }
    } else {
        sel
    };
    if let Some(n) = a.limit {
        sel.truncate(n);
    }
    let proj = Projection::parse_with(a.fields.as_deref(), a.signals);
    proj.check(corpus.schema())?;
    // A file appears at its path only when every document is written.
    let mut out = open_output(a.output.as_deref())?;
    let Format::Jsonl = a.format;
    let n = write_jsonl_with(&sel, &proj, a.redact_pii, &mut out)?;
    out.finish()?;
    if let Some(p) = &a.output {
        eprintln!("exported {n} documents to {}", p.display());
    }
    Ok(ExitCode::SUCCESS)
}
