//! `corpusql tag [QUERY] [--taggers ...]`: compute signals as sidecar
//! columns (incremental: only documents without values of the taggers'
//! current versions); `corpusql tag report [QUERY]`: their distributions;
//! `corpusql tag import-dolma FILE...`: Dolma attribute files as signals.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use corpusql::raw::datasheet::{signal_datasheet, Scope};
use corpusql::raw::tag::settings::SETTINGS_FILE;
use corpusql::Corpus;
use corpusql::Tokenizer;
use corpusql::{TagOptions, TagSettings, Tagger};

/// Arguments of `tag`.
#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    command: Option<TagCommand>,
    /// Tag only documents matching this query (dedup always covers the whole corpus).
    pub query: Option<String>,
    /// Taggers: language, quality, ocr, pii, toxicity, dedup, or `all` (all but toxicity).
    #[arg(long, default_value = "language,quality,pii")]
    pub taggers: String,
    /// Languages `lang_detected` may take (others give `und`).
    #[arg(long, default_value = "fr,en,de,es,it")]
    pub languages: String,
    /// Where the OCR word lists are (Debian's wfrench, wamerican, ... packages).
    #[arg(long, default_value = "/usr/share/dict")]
    pub dict_dir: PathBuf,
    /// Word lists for the toxicity tagger: one file per language (`fr`, `en`, ...), allowlists `<lang>.allow`.
    #[arg(long)]
    pub toxicity_lists: Option<PathBuf>,
    /// Recompute values that exist already.
    #[arg(long)]
    pub force: bool,
    /// Memory for deduplication buffers before spilling to disk, in MiB.
    #[arg(long, default_value_t = 256, value_parser = super::usize_in(1, 1 << 20))]
    pub dedup_memory_mb: usize,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
    /// Also run these taggers, with these options, after every future
    /// `ingest` (saved in the corpus as `tagging.toml`).
    #[arg(long)]
    pub on_ingest: bool,
    /// Stop tagging on ingest (removes `tagging.toml`); tags nothing.
    #[arg(long, conflicts_with = "on_ingest")]
    pub stop_on_ingest: bool,
    /// Run as task I of N of a tagging job (a Slurm array, from 0): the
    /// task tags its contiguous share of the segments and stages the
    /// sidecars; `corpusql commit --job NAME` commits them all (and runs
    /// `dedup`, which needs every document, once).
    #[arg(long, value_name = "I/N", requires = "job", conflicts_with_all = ["on_ingest", "stop_on_ingest"])]
    pub task: Option<corpusql::job::TaskId>,
    /// The job a `--task` belongs to (a folder name under DIR/jobs/).
    #[arg(long, value_name = "NAME", requires = "task")]
    pub job: Option<String>,
    /// Print the result as one JSON object (`taggers`, `generation`,
    /// `seconds`, `bytes`, `on_ingest`).
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Subcommand, Debug)]
enum TagCommand {
    /// Per signal and source: quantiles, histograms and what common thresholds remove.
    Report(ReportArgs),
    /// Import Dolma attribute files (`dolma tag` output) as signal columns.
    ImportDolma(ImportDolmaArgs),
}

/// Arguments of `tag import-dolma` (see `docs/dolma.md`).
#[derive(clap::Args, Debug)]
pub struct ImportDolmaArgs {
    /// Attribute files: JSONL, plain, `.gz` or `.zst`, one line per document.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Put before every column name (`exp__tagger__attr` -> `dolma_exp__tagger__attr`).
    #[arg(long, default_value = corpusql::raw::tag::dolma::DEFAULT_PREFIX)]
    pub prefix: String,
    /// Import only these attributes (comma-separated, as named in the files).
    #[arg(long)]
    pub attributes: Option<String>,
    /// Lines whose id the corpus lacks: count them (skip) or fail (error).
    #[arg(long, value_enum, default_value = "skip", alias = "on-missing")]
    pub on_unknown_id: OnUnknown,
    /// Print the result as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// `--on-unknown-id`.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum OnUnknown {
    /// Count the line and go on.
    Skip,
    /// Fail, naming the file, line and id; nothing is committed.
    Error,
}

/// Arguments of `tag report`.
#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// The documents to describe (a query or a mixture file).
    #[arg(default_value = "*")]
    pub source: String,
    /// Output file: `.html` (with `.md` and `.json` beside it), `.md` or `.json`.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Print JSON instead of Markdown on stdout.
    #[arg(long)]
    pub json: bool,
    /// Per-source summaries for this many of the largest sources.
    #[arg(long, default_value_t = 8)]
    pub sources: usize,
}

impl Args {
    /// Whether this changes the corpus (`tag report` does not).
    pub fn changes(&self) -> bool {
        !matches!(self.command, Some(TagCommand::Report(_)))
    }
}

/// Runs `tag`.
pub fn run(dir: &Path, a: Args) -> anyhow::Result<ExitCode> {
    if let Some(TagCommand::Report(r)) = a.command {
        let corpus = Corpus::open(dir)?;
        let (plan, label, _) = super::report::scope_of(&corpus, &r.source)?;
        let scope = Scope {
            corpus: &corpus,
            plan,
            label,
            tokenizer: Tokenizer::Bytes,
            override_policy: false,
            training: None,
        };
        let d = signal_datasheet(&scope, r.sources)?;
        super::report::emit(&d, r.output.as_deref(), r.json)?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(TagCommand::ImportDolma(d)) = a.command {
        return import_dolma(dir, d);
    }
    if a.stop_on_ingest {
        let stopped = TagSettings::clear(dir)?;
        if a.json {
            super::print_json(&serde_json::json!({ "stopped_on_ingest": stopped }))?;
        } else if stopped {
            println!("ingest no longer tags (removed {SETTINGS_FILE})");
        } else {
            println!("ingest was not tagging: nothing to stop");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let opts = TagOptions {
        taggers: Tagger::parse_list(&a.taggers)?,
        query: a.query.clone(),
        languages: corpusql::raw::tag::language::LangConfig {
            allowed: a
                .languages
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            ..Default::default()
        },
        dict_dir: a.dict_dir.clone(),
        toxicity_lists: a.toxicity_lists.clone(),
        progress: super::progress_bar(!a.quiet && std::io::stderr().is_terminal()),
        dedup_memory: a.dedup_memory_mb.max(1) << 20,
        force: a.force,
    };
    if let (Some(task), Some(job)) = (a.task, &a.job) {
        let r = corpusql::tag_task(dir, job, task, &opts)?;
        if a.json {
            super::print_json(&serde_json::json!({
                "task": task.to_string(), "job": job,
                "taggers": r.outcomes.iter().map(|o| serde_json::json!({
                    "tagger": o.tagger, "version": o.version, "docs": o.docs, "sidecars": o.sidecars,
                })).collect::<Vec<_>>(),
                "seconds": r.seconds,
            }))?;
        } else {
            let what: Vec<String> = r
                .outcomes
                .iter()
                .map(|o| format!("{} ({} docs)", o.tagger, o.docs))
                .collect();
            println!(
                "task {task} of job {job}: staged {} in {:.2}s; `corpusql commit --job {job}` once every task has finished",
                if what.is_empty() { "nothing to tag".to_string() } else { what.join(", ") },
                r.seconds
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let r = Corpus::open(dir)?.tag(&opts)?;
    let mut on_ingest = None;
    if a.on_ingest {
        let settings = TagSettings::from_options(&opts);
        settings.save(dir)?;
        on_ingest = Some(settings.taggers.clone());
    }
    if a.json {
        super::print_json(&serde_json::json!({
            "taggers": r.outcomes.iter().map(|o| serde_json::json!({
                "tagger": o.tagger, "version": o.version, "docs": o.docs, "sidecars": o.sidecars,
            })).collect::<Vec<_>>(),
            "generation": r.generation,
            "seconds": r.seconds,
            "bytes": r.bytes,
            "on_ingest": on_ingest,
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(taggers) = &on_ingest {
        println!(
            "ingest will run {} after every commit, with these options ({SETTINGS_FILE}; `corpusql tag --stop-on-ingest` stops it)",
            taggers.join(",")
        );
    }
    for o in &r.outcomes {
        println!(
            "{:<9} {:>9} documents tagged, {:>4} sidecars  ({})",
            o.tagger, o.docs, o.sidecars, o.version
        );
    }
    match r.generation {
        Some(g) if r.bytes == 0 => println!("done in {:.2}s -> generation {g}", r.seconds),
        Some(g) => println!(
            "{:.1} MiB of text in {:.2}s ({:.1} MiB/s) -> generation {g}",
            r.bytes as f64 / 1048576.0,
            r.seconds,
            r.bytes as f64 / 1048576.0 / r.seconds.max(1e-9)
        ),
        None => println!("nothing to tag: every selected document has current values"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `tag import-dolma`.
fn import_dolma(dir: &Path, a: ImportDolmaArgs) -> anyhow::Result<ExitCode> {
    use corpusql::raw::tag::dolma::{DolmaOptions, Level, OnUnknownId};
    let opts = DolmaOptions {
        prefix: a.prefix,
        attributes: a.attributes.map(|s| {
            s.split(',')
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty())
                .collect()
        }),
        on_unknown_id: match a.on_unknown_id {
            OnUnknown::Skip => OnUnknownId::Skip,
            OnUnknown::Error => OnUnknownId::Error,
        },
    };
    let r = Corpus::open(dir)?.import_dolma(&a.files, &opts)?;
    if a.json {
        super::print_json(&serde_json::to_value(&r)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    for at in &r.attributes {
        let level = match at.level {
            Level::Document => "document",
            _ => "span",
        };
        println!(
            "{:<40} {level:<8} {:>9} documents  <- {}",
            at.columns.join(", "),
            at.docs,
            at.attribute
        );
        if at.out_of_range_docs > 0 {
            println!(
                "  warning: {} documents have spans past the end of their text (other texts, or byte offsets?)",
                at.out_of_range_docs
            );
        }
    }
    println!(
        "{} lines from {} files: {} documents matched, {} ids not in the corpus{}",
        r.lines,
        r.files,
        r.matched_docs,
        r.unknown_ids,
        if r.unknown_examples.is_empty() {
            String::new()
        } else {
            format!(" (e.g. {})", r.unknown_examples.join(", "))
        }
    );
    match r.generation {
        Some(g) => println!("done in {:.2}s -> generation {g}", r.seconds),
        None => println!("no attribute to import: nothing committed"),
    }
    Ok(ExitCode::SUCCESS)
}
