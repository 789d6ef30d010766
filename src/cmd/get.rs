//! `corpusql get KEY`: one document as JSON.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use corpusql::raw::export::{write_jsonl, Projection};
use corpusql::Corpus;

/// Arguments of `get`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The document key.
    pub key: String,
    /// Print only the text.
    #[arg(long)]
    pub text: bool,
    /// Follow the record with its derived license facets and tag signals.
    #[arg(long, conflicts_with = "text")]
    pub signals: bool,
}

/// Runs `get`.
pub fn run(dir: &Path, a: Args) -> anyhow::Result<ExitCode> {
    let corpus = Corpus::open(dir)?;
    let sel = corpus.key_selection(&a.key);
    if sel.count() == 0 {
        eprintln!("error: no document with key `{}`", a.key);
        return Ok(ExitCode::from(1));
    }
    let mut out = std::io::stdout().lock();
    if a.text {
        if let Some(d) = sel.documents().next().transpose()? {
            out.write_all(d.text.as_bytes())?;
            writeln!(out)?;
        }
    } else {
        let proj = Projection::parse_with(None, a.signals);
        write_jsonl(&sel, &proj, &mut out)?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
