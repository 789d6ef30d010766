//! `corpusql report` (being written).

use std::path::Path;
use std::process::ExitCode;

/// Arguments of `report`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs `report`.
pub fn run(_dir: &Path, _a: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not yet")
}
