//! `corpusql count QUERY`: prints one integer and nothing else.

use std::path::Path;
use std::process::ExitCode;

use corpusql::Corpus;

/// Arguments of `count`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The query.
    pub query: String,
}

/// Runs `count`.
pub fn run(dir: &Path, a: Args) -> anyhow::Result<ExitCode> {
    let corpus = Corpus::open(dir)?;
    let sel = corpus.query(&a.query)?;
    super::print_notes(&sel);
    println!("{}", sel.count());
    Ok(ExitCode::SUCCESS)
}
