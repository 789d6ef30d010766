//! `corpusql commit --job NAME`: commits every task of a job (Slurm array
//! tasks run with `--job NAME --task I/N`) as one generation; `--status`
//! says which tasks have finished.

use std::path::Path;
use std::process::ExitCode;

use corpusql::job;

/// Arguments of `commit`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The job whose tasks to commit.
    #[arg(long)]
    pub job: String,
    /// Only say which tasks have finished; commit nothing.
    #[arg(long, conflicts_with = "abort")]
    pub status: bool,
    /// Give the job up: remove its staging, commit nothing.
    #[arg(long)]
    pub abort: bool,
    /// Memory deduplication may buffer before spilling (a tagging job with
    /// `dedup` runs it at commit), in MiB.
    #[arg(long, default_value_t = 256, value_parser = super::usize_in(1, 1 << 20))]
    pub dedup_memory_mb: usize,
    /// Print the outcome as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `commit`.
pub fn run(dir: &Path, a: Args) -> anyhow::Result<ExitCode> {
    if a.status {
        let s = job::status(dir, &a.job)?;
        let kind = s.kind.map(|k| k.name());
        if a.json {
            super::print_json(&serde_json::json!({
                "job": s.job, "kind": kind, "tasks": s.count,
                "finished": s.finished, "missing": s.missing,
            }))?;
        } else {
            match s.count {
                None => println!("job {}: no task has finished", s.job),
                Some(n) => println!(
                    "job {} ({}): {} of {n} tasks finished{}",
                    s.job,
                    kind.unwrap_or_default(),
                    s.finished.len(),
                    if s.missing.is_empty() {
                        "; ready to commit".to_string()
                    } else {
                        format!(", missing {}", join(&s.missing))
                    }
                ),
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    if a.abort {
        let had = job::abort(dir, &a.job)?;
        if a.json {
            super::print_json(&serde_json::json!({ "job": a.job, "aborted": had }))?;
        } else if had {
            println!("job {}: staging removed, nothing committed", a.job);
        } else {
            println!("job {}: nothing staged", a.job);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let opts = corpusql::TagOptions {
        dedup_memory: a.dedup_memory_mb.max(1) << 20,
        ..Default::default()
    };
    let r = job::commit(dir, &a.job, &opts)?;
    if a.json {
        super::print_json(&r.to_json())?;
        return Ok(ExitCode::SUCCESS);
    }
    let to = match r.generation {
        Some(g) => format!("generation {g}"),
        None => "nothing new, no generation made".into(),
    };
    if r.already_committed {
        println!(
            "job {} was already committed ({to}); removed its leftover staging",
            r.job
        );
    } else if r.kind == Some(job::JobKind::Tag) {
        let what: Vec<String> = r
            .outcomes
            .iter()
            .map(|o| format!("{} ({} docs)", o.0, o.2))
            .collect();
        println!(
            "committed tagging job {}: {} tasks, {} segments, {} in {:.2}s -> {to}",
            r.job,
            r.tasks,
            r.segments,
            what.join(", "),
            r.seconds
        );
    } else {
        println!(
            "committed ingest job {}: {} tasks, ingested {} documents, skipped {} duplicates, replaced {}, rejected {} ({} duplicates found across tasks at commit) in {:.2}s -> {to}",
            r.job, r.tasks, r.ingested, r.skipped, r.replaced, r.rejected, r.commit_duplicates, r.seconds
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn join(v: &[u32]) -> String {
    let shown: Vec<String> = v.iter().take(20).map(|i| i.to_string()).collect();
    format!(
        "{}{}",
        shown.join(", "),
        if v.len() > 20 { ", ..." } else { "" }
    )
}
