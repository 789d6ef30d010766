//! `corpusql get KEY`: one document as JSON.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use corpusql::export::{write_jsonl, Projection};
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
    if a.signals {
        let sel = corpus.key_selection(&a.key);
        if sel.count() == 1 {
            let mut out = std::io::stdout().lock();
            write_jsonl(&sel, &Projection::WithSignals, &mut out)?;
            out.flush()?;
            return Ok(ExitCode::SUCCESS);
        }
    }
    match corpus.get(&a.key)? {
        Some(d) => {
            let mut out = std::io::stdout().lock();
            if a.text {
                out.write_all(d.text.as_bytes())?;
            } else {
                out.write_all(&d.json)?;
            }
            writeln!(out)?;
            Ok(ExitCode::SUCCESS)
        }
        None => {
            eprintln!("error: no document with key `{}`", a.key);
            Ok(ExitCode::from(1))
        }
    }
}
