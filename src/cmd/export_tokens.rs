//! `corpusql export QUERY --format megatron|nanotron --tokenizer T -o PREFIX`:
//! token files a trainer reads, with their provenance sidecar.

use std::path::Path;
use std::process::ExitCode;

/// Runs `export` for a token format.
pub fn run(_dir: &Path, _a: super::export::Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("export: token formats not yet")
}
