//! `corpusql ingest FILE|DIR|GLOB...`: JSONL and Parquet into the corpus,
//! one atomic commit.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use corpusql::{IngestOptions, Input, OnDuplicate, RecordOptions, WriterOptions};

/// Arguments of `ingest`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Input files (JSONL, plain or .gz/.zst, and Parquet, recognized by
    /// content), directories (every file under them, sorted) and glob
    /// patterns (`'shards/*.parquet'`); `-` reads stdin.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Add a constant facet to records lacking the field (repeatable): `--set license=pd`.
    #[arg(long = "set", value_name = "FIELD=VALUE")]
    pub set: Vec<String>,
    /// Field holding the text (a new corpus saves it; default: the
    /// corpus's saved field, else `text`).
    #[arg(long)]
    pub text_field: Option<String>,
    /// Field holding the key (a new corpus saves it; default: the corpus's
    /// saved field, else `id`).
    #[arg(long)]
    pub id_field: Option<String>,
    /// What to do with a key that already exists.
    #[arg(long, value_enum, default_value = "skip")]
    pub on_duplicate: Dup,
    /// Write rejected lines here (JSONL: file, line, reason, raw).
    #[arg(long)]
    pub rejects: Option<PathBuf>,
    /// Exit 0 even when records were rejected.
    #[arg(long)]
    pub allow_rejects: bool,
    /// Memory budget of one segment being built, in MiB.
    #[arg(long, default_value_t = 96, value_parser = super::usize_in(1, super::MAX_SEGMENT_MB))]
    pub segment_mb: usize,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
    /// The field holding each document's license (corpus-wide; default `license`).
    #[arg(long)]
    pub license_field: Option<String>,
    /// Run these taggers on the new documents after the ingest (e.g.
    /// `language,quality,pii`), with the options `tag --on-ingest` saved if
    /// any, else the defaults. Without it, the saved taggers run.
    #[arg(long)]
    pub tag: Option<String>,
    /// Do not run the taggers `tag --on-ingest` saved.
    #[arg(long, conflicts_with = "tag")]
    pub no_tag: bool,
    /// Run as task I of N of a job (a Slurm array: `--task
    /// $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT`, from 0): every task is
    /// given the same inputs, takes its contiguous share of the files and
    /// stages its segments; `corpusql commit --job NAME` commits them all.
    #[arg(long, value_name = "I/N", requires = "job", conflicts_with = "tag")]
    pub task: Option<corpusql::job::TaskId>,
    /// The job a `--task` belongs to (a folder name under DIR/jobs/).
    #[arg(long, value_name = "NAME", requires = "task")]
    pub job: Option<String>,
}

/// Duplicate-key policy.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Dup {
    /// Keep the existing document.
    Skip,
    /// Replace the existing document.
    Replace,
    /// Abort the ingest.
    Error,
}

/// Runs `ingest`.
pub fn run(dir: &Path, a: Args) -> anyhow::Result<ExitCode> {
    let mut set = Vec::new();
    for s in &a.set {
        let Some((k, v)) = s.split_once('=') else {
            bail!("--set {s}: expected FIELD=VALUE");
        };
        if Some(k) == a.text_field.as_deref() || Some(k) == a.id_field.as_deref() {
            bail!("--set {s}: `{k}` is the text or key field");
        }
        set.push((k.trim().to_string(), v.to_string()));
    }
    let opts = IngestOptions {
        record: RecordOptions {
            text_field: a.text_field,
            id_field: a.id_field,
            set,
        },
        on_duplicate: match a.on_duplicate {
            Dup::Skip => OnDuplicate::Skip,
            Dup::Replace => OnDuplicate::Replace,
            Dup::Error => OnDuplicate::Error,
        },
        rejects: a.rejects.clone(),
        segment_bytes: a.segment_mb.max(1) << 20,
        progress: super::progress_bar(!a.quiet && std::io::stderr().is_terminal()),
        max_reported: 1000,
        license_field: a.license_field.clone(),
        writer: writer_options(),
    };
    // The taggers to run after the commit, read first: a broken
    // tagging.toml stops the ingest before it changes anything. A job's
    // task commits nothing: its tagging is a tagging job of its own.
    let saved = if a.no_tag || a.task.is_some() {
        None
    } else {
        corpusql::TagSettings::load(dir)?
    };
    let run = match (&a.tag, &saved) {
        (Some(t), s) => {
            let mut opts = match s {
                Some(s) => s.options()?,
                None => corpusql::TagOptions::default(),
            };
            opts.taggers = corpusql::Tagger::parse_list(t)?;
            Some(opts)
        }
        (None, Some(s)) => {
            eprintln!(
                "tagging on ingest ({}): {}",
                corpusql::raw::tag::settings::SETTINGS_FILE,
                s.taggers.join(",")
            );
            Some(s.options()?)
        }
        (None, None) => None,
    };
    let inputs = a.files.into_iter().map(Input::Path).collect();
    let r = match (&a.task, &a.job) {
        (Some(task), Some(job)) => corpusql::ingest_task(dir, job, *task, inputs, &opts)
            .with_context(|| format!("task {task} of ingest job {job} into {}", dir.display()))?,
        _ => corpusql::ingest(dir, inputs, &opts)
            .with_context(|| format!("ingest into {}", dir.display()))?,
    };
    for rej in &r.rejects {
        eprintln!("rejected {rej}");
    }
    if r.rejected as usize > r.rejects.len() {
        eprintln!(
            "... and {} more rejects{}",
            r.rejected as usize - r.rejects.len(),
            a.rejects
                .as_ref()
                .map(|p| format!(" (all in {})", p.display()))
                .unwrap_or_default()
        );
    }
    let none: u64 = r
        .unknown_licenses
        .iter()
        .filter(|(v, _)| v == "(none)")
        .map(|x| x.1)
        .sum();
    let unknown: Vec<&(String, u64)> = r
        .unknown_licenses
        .iter()
        .filter(|(v, _)| v != "(none)")
        .collect();
    if none > 0 {
        eprintln!(
            "note: {none} new documents have no license field (`license_id` and `license_class` are `unknown` for them; `--set license=...` gives a whole file one)"
        );
    }
    if !unknown.is_empty() {
        let docs: u64 = unknown.iter().map(|x| x.1).sum();
        let list: Vec<String> = unknown
            .iter()
            .take(20)
            .map(|(v, n)| format!("  {n:>8}  {v}"))
            .collect();
        eprintln!(
            "warning: {docs} new documents have a license corpusql does not recognize (license_id = unknown, license_class = unknown):\n{}{}",
            list.join("\n"),
            if unknown.len() > 20 {
                format!("\n  ... and {} more values", unknown.len() - 20)
            } else {
                String::new()
            }
        );
        eprintln!(
            "  (add aliases in src/license/aliases.tsv, or fix the data; see docs/licenses.md)"
        );
    }
    if !r.unindexed.is_empty() {
        let list: Vec<String> = r
            .unindexed
            .iter()
            .map(|(f, n)| format!("`{f}` ({n})"))
            .collect();
        eprintln!(
            "note: nested values of another kind than earlier records' were stored but not indexed: {}",
            list.join(", ")
        );
    }
    if r.files.len() > 1 && !a.json {
        for f in &r.files {
            eprintln!(
                "  {}: ingested {}, skipped {}, replaced {}, rejected {}",
                f.source, f.ingested, f.skipped, f.replaced, f.rejected
            );
        }
    }
    if let (Some(task), Some(job), false) = (&a.task, &a.job, a.json) {
        println!(
            "task {task} of job {job}: staged {} documents ({}) from {} files, skipped {} duplicates, replaced {}, rejected {} in {:.2}s; `corpusql commit --job {job}` once every task has finished",
            r.ingested,
            super::human_bytes(r.text_bytes),
            r.files.len(),
            r.skipped,
            r.replaced,
            r.rejected,
            r.seconds,
        );
    } else if !a.json {
        println!(
            "ingested {} documents ({}), skipped {} duplicates, replaced {}, rejected {} in {:.2}s -> {}",
            r.ingested,
            super::human_bytes(r.text_bytes),
            r.skipped,
            r.replaced,
            r.rejected,
            r.seconds,
            if r.committed {
                format!("generation {}", r.generation)
            } else {
                format!("nothing new, no generation made (still {})", r.generation)
            }
        );
    }
    // Tagging after the ingest commit, in a commit of its own.
    let mut tagged = Vec::new();
    let mut tag_generation = None;
    if let Some(mut opts) = run {
        opts.progress = super::progress_bar(!a.quiet && std::io::stderr().is_terminal());
        let tr = corpusql::Corpus::open(dir)?.tag(&opts)?;
        for o in &tr.outcomes {
            eprintln!(
                "tagged {} documents with {} ({})",
                o.docs, o.tagger, o.version
            );
            tagged.push(
                serde_json::json!({"tagger": o.tagger, "docs": o.docs, "version": o.version}),
            );
        }
        tag_generation = tr.generation;
        if let (Some(g), false) = (tr.generation, a.json) {
            println!("tagged in {:.2}s -> generation {g}", tr.seconds);
        }
    }
    if a.json {
        let mut v = serde_json::json!({
            "ingested": r.ingested, "skipped": r.skipped, "replaced": r.replaced,
            "rejected": r.rejected, "blank": r.blank, "text_bytes": r.text_bytes,
            "input_bytes": r.input_bytes, "segments": r.segments, "generation": r.generation,
            "committed": r.committed,
            "seconds": r.seconds, "unknown_licenses": r.unknown_licenses,
            "unindexed": r.unindexed,
            "files": r.files.iter().map(|f| serde_json::json!({
                "file": f.source, "ingested": f.ingested, "skipped": f.skipped,
                "replaced": f.replaced, "rejected": f.rejected, "bytes": f.size,
            })).collect::<Vec<_>>(),
            "tagged": tagged, "tag_generation": tag_generation,
        });
        // A job's task says which (a plain ingest's JSON is unchanged).
        if let (Some(t), Some(j), Some(o)) = (a.task, &a.job, v.as_object_mut()) {
            o.insert("task".into(), t.to_string().into());
            o.insert("job".into(), j.clone().into());
        }
        super::print_json(&v)?;
    }
    Ok(if r.rejected > 0 && !a.allow_rejects {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Segment writer options, with the experiment knobs the environment may
/// set (the library reads no environment): `CORPUSQL_BLOCK_KB` (target
/// block size in KiB) and `CORPUSQL_ZSTD_LEVEL`; a value that does not
/// parse is ignored.
fn writer_options() -> WriterOptions {
    let mut w = WriterOptions::default();
    let var = |name: &str| std::env::var(name).ok();
    if let Some(kb) = var("CORPUSQL_BLOCK_KB").and_then(|v| v.parse::<usize>().ok()) {
        w.block_bytes = kb.saturating_mul(1024);
    }
    if let Some(level) = var("CORPUSQL_ZSTD_LEVEL").and_then(|v| v.parse::<i32>().ok()) {
        w.zstd_level = level;
    }
    w
}
