//! `corpusql copy SRC DST`: a corpus between a local directory and a URI
//! (`s3://`, `gs://`, `az://`, `file://`), either way, checksums verified.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Arguments of `copy`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The corpus to copy: a directory or a URI.
    pub src: PathBuf,
    /// Where to: a URI (from a directory) or a directory (from a URI).
    pub dst: PathBuf,
    /// Print the outcome as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `copy` (the `--corpus` directory is not used).
pub fn run(_dir: &Path, a: Args) -> anyhow::Result<ExitCode> {
    let r = corpusql::remote::copy(&a.src, &a.dst)?;
    if a.json {
        super::print_json(&serde_json::json!({
            "generation": r.generation, "files": r.files, "transferred": r.transferred,
            "bytes": r.bytes, "requests": r.requests, "removed": r.removed,
        }))?;
    } else {
        println!(
            "copied generation {} of {} to {}: {} files, {} transferred ({}), {} requests",
            r.generation,
            a.src.display(),
            a.dst.display(),
            r.files,
            r.transferred,
            super::human_bytes(r.bytes),
            r.requests
        );
    }
    Ok(ExitCode::SUCCESS)
}
