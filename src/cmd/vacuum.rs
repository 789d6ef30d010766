//! `corpusql vacuum`: removes from a corpus at a URI the versions and
//! objects no reader needs any more (see `corpusql::remote::vacuum`).

use std::path::Path;
use std::process::ExitCode;

/// Arguments of `vacuum`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Keep every version and object younger than this many hours (readers
    /// and writers that started within it are safe).
    #[arg(long, default_value_t = 168.0)]
    pub retain_hours: f64,
    /// Say what would be removed; remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the outcome as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `vacuum` on the corpus at the URI `dir`.
pub fn run(dir: &Path, a: Args) -> anyhow::Result<ExitCode> {
    let Some(uri) = corpusql::remote::as_uri(dir) else {
        anyhow::bail!(
            "{}: vacuum is for a corpus at a URI (a local corpus removes the files no generation lists itself)",
            dir.display()
        );
    };
    if !(a.retain_hours.is_finite() && a.retain_hours >= 0.0) {
        anyhow::bail!("--retain-hours {}: not a number of hours", a.retain_hours);
    }
    let retain = std::time::Duration::from_secs_f64(a.retain_hours * 3600.0);
    let r = corpusql::remote::vacuum(uri, retain, a.dry_run)?;
    if a.json {
        super::print_json(&r)?;
    } else {
        println!(
            "{}{uri}: newest version {}; {} older versions and {} objects ({}) {}; {} versions and {} objects kept",
            if r.dry_run { "dry run: " } else { "" },
            r.newest,
            r.versions_removed,
            r.objects_removed,
            super::human_bytes(r.bytes_removed),
            if r.dry_run { "would be removed" } else { "removed" },
            r.versions_kept,
            r.objects_kept
        );
    }
    Ok(ExitCode::SUCCESS)
}
