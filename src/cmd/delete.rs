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
    /// Print the result as one JSON object: `deleted` (or `would_delete`
    /// with --dry-run), `generation`, `notes`.
    #[arg(long)]
    pub json: bool,
}

/// Runs `delete`.
pub fn run(dir: &Path, a: Args) -> anyhow::Result<ExitCode> {
    // The query's notes ("no document has lang = frr; did you mean `fr`?"),
    // as `count` prints them: a misspelt value deletes nothing, and says why.
    let mut c = corpusql::Corpus::open(dir)?;
    let sel = c.query(&a.query)?;
    super::print_notes(&sel);
    if a.dry_run {
        if a.json {
            super::print_json(&serde_json::json!({
                "would_delete": sel.count(), "generation": c.generation(), "notes": sel.notes,
            }))?;
        } else {
            println!("would delete {} documents", sel.count());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let notes = sel.notes;
    let n = c.delete(&a.query)?;
    let g = c.generation();
    if a.json {
        super::print_json(&serde_json::json!({
            "deleted": n, "generation": g, "notes": notes,
        }))?;
    } else {
        println!("deleted {n} documents -> generation {g}");
    }
    Ok(ExitCode::SUCCESS)
}
