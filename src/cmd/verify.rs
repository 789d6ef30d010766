//! `corpusql verify`: checks every checksum; exit 1 when anything is wrong.

use std::path::Path;
use std::process::ExitCode;

/// Arguments of `verify`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `verify`.
pub fn run(dir: &Path, a: Args) -> anyhow::Result<ExitCode> {
    let r = corpusql::Corpus::verify_dir(dir)?;
    if a.json {
        super::print_json(&r)?;
    } else {
        for s in &r.segments {
            match &s.error {
                None => println!(
                    "ok      {}  {} documents, {}",
                    s.file,
                    s.docs,
                    super::human_bytes(s.bytes)
                ),
                Some(e) => println!("FAILED  {}  {e}", s.file),
            }
        }
        for p in &r.problems {
            println!("FAILED  {p}");
        }
        let bad = r.segments.iter().filter(|s| s.error.is_some()).count() + r.problems.len();
        println!(
            "{} segments checked at generation {}: {}",
            r.segments.len(),
            r.generation,
            if bad == 0 {
                "all checksums match".to_string()
            } else {
                format!("{bad} problems")
            }
        );
    }
    Ok(if r.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
