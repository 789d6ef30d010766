//! `corpusql report QUERY|MIX.toml [-o report.html]`: a datasheet of what a
//! selection holds — documents, bytes and tokens by license, class, source
//! and language, the policy, attribution lists, the ingest log and what
//! deletions withdrew — as Markdown (default), JSON or self-contained HTML.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use corpusql::raw::plan::Plan;
use corpusql::{Corpus, Mixture, ReportOf, ReportOptions};

/// Arguments of `report`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A query, or a mixture file (.toml): the union of its components.
    #[arg(default_value = "*")]
    pub source: String,
    /// Output file: `.html` (with `.md` and `.json` beside it), `.md` or `.json`; stdout (Markdown) when absent.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Print JSON instead of Markdown on stdout.
    #[arg(long)]
    pub json: bool,
    /// Tokenizer for token counts (default: the mixture's, or `bytes`).
    #[arg(long)]
    pub tokenizer: Option<String>,
    /// Show what deletions after this generation withdrew (default: every deletion on record).
    #[arg(long)]
    pub since: Option<u64>,
    /// Count what the corpus policy holds back in the totals too (by default it is only listed as held back).
    #[arg(long)]
    pub override_policy: bool,
    /// For a mixture: a state of its stream, whose weight changes
    /// (`set_weights`) the training set replays.
    #[arg(long, value_name = "STATE")]
    pub state: Option<PathBuf>,
}

/// Whether a report's source names a mixture file rather than a query.
fn is_mixture_file(source: &str) -> bool {
    source.ends_with(".toml") || (Path::new(source).is_file() && source != "*")
}

/// The selection's plan, label and tokenizer spec of a query or mixture file.
pub fn scope_of(corpus: &Corpus, source: &str) -> anyhow::Result<(Plan, String, String)> {
    if is_mixture_file(source) {
        let text = std::fs::read_to_string(source).with_context(|| format!("reading {source}"))?;
        let m = corpusql::raw::train::mixture::Mixture::from_toml(&text, source)?;
        let plans = m
            .components
            .iter()
            .map(|c| corpusql::raw::plan::plan(&c.query, corpus.schema()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((Plan::Or(plans), source.to_string(), m.tokenizer))
    } else {
        let q = if source == "*" { "*" } else { source };
        Ok((
            corpusql::raw::plan::plan(q, corpus.schema())?,
            q.to_string(),
            "bytes".into(),
        ))
    }
}

/// Writes a datasheet where `output` says (by extension), or prints it.
pub fn emit(
    d: &corpusql::report::Datasheet,
    output: Option<&Path>,
    json: bool,
) -> anyhow::Result<()> {
    use corpusql::report::{to_html, to_json, to_markdown};
    let write = |p: &Path, s: String| -> anyhow::Result<()> {
        std::fs::write(p, s).with_context(|| format!("writing {}", p.display()))
    };
    match output {
        None if json => println!("{}", to_json(d)),
        None => print!("{}", to_markdown(d)),
        Some(p) => match p.extension().and_then(|e| e.to_str()) {
            Some("json") => write(p, to_json(d))?,
            Some("md") => write(p, to_markdown(d))?,
            Some("html") | Some("htm") => {
                write(p, to_html(d))?;
                write(&p.with_extension("md"), to_markdown(d))?;
                write(&p.with_extension("json"), to_json(d))?;
                eprintln!(
                    "wrote {} (and {}, {})",
                    p.display(),
                    p.with_extension("md").display(),
                    p.with_extension("json").display()
                );
            }
            _ => anyhow::bail!(
                "{}: give the report a .html, .md or .json name",
                p.display()
            ),
        },
    }
    Ok(())
}

/// Runs `report`.
pub fn run(dir: &Path, a: Args) -> anyhow::Result<ExitCode> {
    let corpus = Corpus::open(dir)?;
    let opts = ReportOptions {
        label: Some(a.source.clone()),
        tokenizer: a.tokenizer.clone(),
        since_generation: a.since,
        override_policy: a.override_policy,
        weight_changes: match &a.state {
            Some(p) => corpusql::StreamState::load(p)?.weight_changes,
            None => Vec::new(),
        },
    };
    let d = if is_mixture_file(&a.source) {
        let m = Mixture::from_file(&a.source)?;
        corpus.report(ReportOf::Mixture(&m), &opts)?
    } else {
        corpus.report(ReportOf::Query(&a.source), &opts)?
    };
    emit(&d, a.output.as_deref(), a.json)?;
    Ok(ExitCode::SUCCESS)
}
