//! `corpusql policy`: show or set which license classes `export` and
//! `stream` may use (the corpus's `policy.toml`).

use std::path::Path;
use std::process::ExitCode;

use corpusql::Corpus;
use corpusql::LicenseClass;
use corpusql::Policy;

/// Arguments of `policy`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: Option<PolicyCommand>,
    /// Print the policy and what it holds back as one JSON object.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(clap::Subcommand, Debug)]
enum PolicyCommand {
    /// Show the policy and what it holds back (the default).
    Show,
    /// Allow exactly these license classes (comma-separated).
    Allow {
        /// Classes, e.g. `public-domain,permissive,attribution`.
        classes: String,
        /// Why (kept in the policy file, shown in reports).
        #[arg(long)]
        note: Option<String>,
    },
    /// Remove the policy: every class may be exported and streamed.
    AllowAll,
}

impl Args {
    /// Whether this changes the policy (rather than show it).
    pub fn changes(&self) -> bool {
        matches!(
            self.command,
            Some(PolicyCommand::Allow { .. } | PolicyCommand::AllowAll)
        )
    }
}

/// Runs `policy`.
pub fn run(dir: &Path, a: Args) -> anyhow::Result<ExitCode> {
    match a.command.unwrap_or(PolicyCommand::Show) {
        PolicyCommand::Show => {}
        PolicyCommand::Allow { classes, note } => {
            let list: Vec<String> = classes
                .split(',')
                .map(|c| c.trim().to_string())
                .filter(|c| !c.is_empty())
                .collect();
            Corpus::open(dir)?.set_policy(&Policy {
                allow: Some(list),
                note,
            })?;
        }
        PolicyCommand::AllowAll => Corpus::open(dir)?.set_policy(&Policy::default())?,
    }
    let corpus = Corpus::open(dir)?;
    let p = corpus.policy()?;
    let held = corpus.under_policy(&corpus.all(), false)?.1.held_back;
    let denied: Vec<&str> = LicenseClass::ALL
        .iter()
        .map(|c| c.as_str())
        .filter(|c| !p.allows(c))
        .collect();
    if a.json {
        super::print_json(&serde_json::json!({
            "allow": p.is_set().then(|| p.allowed()),
            "held_back_classes": denied,
            "note": p.note,
            "documents": corpus.len(),
            "held_back": {
                "docs": held.docs,
                "bytes": held.bytes,
                "by_license": held.by_license.iter().map(|(id, class, docs, bytes)| serde_json::json!({
                    "license_id": id, "license_class": class, "docs": docs, "bytes": bytes,
                })).collect::<Vec<_>>(),
            },
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    if !p.is_set() {
        println!("no policy: every license class may be exported and streamed");
    } else {
        println!("allowed license classes: {}", p.allowed().join(", "));
        println!("held back: {}", denied.join(", "));
        if let Some(n) = &p.note {
            println!("note: {n}");
        }
    }
    println!("{} of {} documents held back", held.docs, corpus.len());
    for (id, class, docs, bytes) in &held.by_license {
        println!(
            "  {id:<40} {class:<15} {docs:>9} docs {:>12}",
            super::human_bytes(*bytes)
        );
    }
    Ok(ExitCode::SUCCESS)
}
