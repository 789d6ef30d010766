//! `corpusql tag` (being written).

use std::path::Path;
use std::process::ExitCode;

/// Arguments of `tag`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs `tag`.
pub fn run(_dir: &Path, _a: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not yet")
}
