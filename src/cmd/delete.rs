//! `corpusql delete QUERY`: tombstones the matching documents.

use std::path::Path;
use std::process::ExitCode;

/// Arguments of `delete`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The query selecting documents to delete.
    pub query: String,
    /// Only report how many documents would be deleted.
    #[arg(long)]
    pub dry_run: bool,
}

/// Runs `delete`.
pub fn run(dir: &Path, a: Args) -> anyhow::Result<ExitCode> {
    if a.dry_run {
        let c = corpusql::Corpus::open(dir)?;
        println!("would delete {} documents", c.query(&a.query)?.count());
        return Ok(ExitCode::SUCCESS);
    }
    let (n, g) = corpusql::maintain::delete(dir, &a.query)?;
    println!("deleted {n} documents -> generation {g}");
    Ok(ExitCode::SUCCESS)
}
