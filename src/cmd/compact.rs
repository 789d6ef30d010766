//! `corpusql compact`: rewrites segments without deleted documents, clustered.

use std::path::Path;
use std::process::ExitCode;

/// Arguments of `compact`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Target size of the new segments' documents, in MiB.
    #[arg(long, default_value_t = 192, value_parser = super::usize_in(1, super::MAX_SEGMENT_MB))]
    pub segment_mb: usize,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `compact`.
pub fn run(dir: &Path, a: Args) -> anyhow::Result<ExitCode> {
    let r = corpusql::Corpus::open(dir)?.compact(a.segment_mb.max(1) << 20)?;
    if a.json {
        super::print_json(&r)?;
    } else {
        println!(
            "compacted {} segments into {} ({} documents kept, {} deleted dropped; {} -> {}) -> generation {}",
            r.segments_before,
            r.segments_after,
            r.docs,
            r.dropped,
            super::human_bytes(r.bytes_before),
            super::human_bytes(r.bytes_after),
            r.generation
        );
    }
    if let (Some(g), false) = (r.dedup_generation, a.json) {
        println!("recomputed duplicate signals (is_dup, dup_of, near_dup_*) -> generation {g}");
    }
    Ok(ExitCode::SUCCESS)
}
