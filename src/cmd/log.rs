//! `corpusql log`: the ingest log (what came from where) and the generations.

use std::path::Path;
use std::process::ExitCode;

use corpusql::raw::catalog::Catalog;

/// Arguments of `log`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `log`.
pub fn run(dir: &Path, a: Args) -> anyhow::Result<ExitCode> {
    let cat = Catalog::new(dir);
    if !cat.exists() {
        return Err(corpusql::Error::NoCorpus { path: dir.into() }.into());
    }
    let ingests = cat.ingest_log()?;
    let gens = cat.generations()?;
    if a.json {
        super::print_json(&serde_json::json!({
            "ingests": ingests.iter().map(|e| serde_json::json!({
                "generation": e.generation, "source": e.source, "size": e.size, "content_hash": e.content_hash,
                "started_unix": e.started_unix, "committed_unix": e.committed_unix, "ingested": e.ingested,
                "skipped": e.skipped, "replaced": e.replaced, "rejected": e.rejected, "set": e.set,
            })).collect::<Vec<_>>(),
            "generations": gens.iter().map(|g| serde_json::json!({
                "generation": g.generation, "op": g.op, "unix": g.unix, "detail": g.detail, "live_docs": g.live_docs,
            })).collect::<Vec<_>>(),
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    println!("generations:");
    for g in &gens {
        println!(
            "  {:>5}  {:<8} {:>10} live  {}",
            g.generation, g.op, g.live_docs, g.detail
        );
    }
    println!("ingests:");
    for e in &ingests {
        println!(
            "  gen {:>4}  {}  {} bytes  {}  ingested {} skipped {} replaced {} rejected {}",
            e.generation,
            e.source,
            e.size,
            e.content_hash,
            e.ingested,
            e.skipped,
            e.replaced,
            e.rejected
        );
    }
    Ok(ExitCode::SUCCESS)
}
