//! The `corpusql` command line. Each subcommand lives in `cmd/<name>.rs`
//! with a `run()`; a bare query (`corpusql "lang=fr"`) means `query`.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;

/// mimalloc: fewer cycles than glibc malloc for ingest's many small, short-lived
/// allocations (see docs/decisions.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// An embedded corpus store for language-model training data.
#[derive(Parser, Debug)]
#[command(name = "corpusql", version, about, long_about = None)]
pub struct Cli {
    /// Corpus directory.
    #[arg(
        long,
        short = 'C',
        global = true,
        env = "CORPUSQL_DIR",
        default_value = "./corpus"
    )]
    corpus: PathBuf,
    /// Worker threads (default: all cores).
    #[arg(long, global = true)]
    threads: Option<usize>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Build a generated multilingual demo corpus and query it.
    Demo(cmd::demo::Args),
    /// Ingest JSONL files (plain, .gz, .zst; `-` for stdin).
    Ingest(cmd::ingest::Args),
    /// Print matching documents as JSONL.
    Query(cmd::query::Args),
    /// Print the number of matching documents.
    Count(cmd::count::Args),
    /// Documents, bytes and shares grouped by fields.
    Stats(cmd::stats::Args),
    /// Print one document by key.
    Get(cmd::get::Args),
    /// Write matching documents to a file.
    Export(cmd::export::Args),
    /// Delete matching documents (tombstones; `compact` reclaims space).
    Delete(cmd::delete::Args),
    /// Rewrite segments: drop deleted documents, re-cluster.
    Compact(cmd::compact::Args),
    /// Check every checksum and structure of the corpus.
    Verify(cmd::verify::Args),
    /// Fields, kinds, documents holding each, distinct values.
    Schema(cmd::schema::Args),
    /// Segments, sections, blocks and sizes.
    Inspect(cmd::inspect::Args),
    /// The ingest log and the generations (provenance).
    Log(cmd::log::Args),
    /// Training mixtures: `mix plan MIX.toml`.
    Mix(cmd::mix::Args),
    /// Packed token sequences of a mixture or a query, for a trainer.
    Stream(cmd::stream::Args),
    /// Precompute exact token counts for a tokenizer.
    Tokenize(cmd::tokenize::Args),
    /// Tokenizers: `tokenizer train QUERY --vocab-size N -o tokenizer.json`.
    Tokenizer(cmd::tokenizer::Args),
    /// The documents, sources and licenses behind a position of a stream.
    Trace(cmd::trace::Args),
    /// Show or set which license classes export and stream may use.
    Policy(cmd::policy::Args),
    /// A datasheet of a query or mixture: licenses, sources, languages, provenance, attribution, withdrawals.
    Report(cmd::report::Args),
    /// Compute signals (language, quality, OCR, PII, toxicity, duplicates) as sidecar columns.
    Tag(cmd::tag::Args),
}

/// Inserts `query` before a bare query: the first positional argument that
/// is not a subcommand.
fn with_default_subcommand(args: Vec<OsString>) -> Vec<OsString> {
    let mut i = 1;
    while i < args.len() {
        let a = args[i].to_string_lossy();
        if a == "--corpus" || a == "-C" || a == "--threads" {
            i += 2;
            continue;
        }
        if a.starts_with('-') {
            i += 1;
            continue;
        }
        let cmd = <Cli as clap::CommandFactory>::command();
        let known = a == "help" || cmd.get_subcommands().any(|c| c.get_name() == a);
        if !known {
            let mut v = args;
            v.insert(i, "query".into());
            return v;
        }
        break;
    }
    args
}

fn main() -> ExitCode {
    let cli = Cli::parse_from(with_default_subcommand(std::env::args_os().collect()));
    if let Some(n) = cli.threads {
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global();
    }
    let dir = cli.corpus.clone();
    let r = match cli.command {
        Command::Demo(a) => cmd::demo::run(&dir, a),
        Command::Ingest(a) => cmd::ingest::run(&dir, a),
        Command::Query(a) => cmd::query::run(&dir, a),
        Command::Count(a) => cmd::count::run(&dir, a),
        Command::Stats(a) => cmd::stats::run(&dir, a),
        Command::Get(a) => cmd::get::run(&dir, a),
        Command::Export(a) => cmd::export::run(&dir, a),
        Command::Delete(a) => cmd::delete::run(&dir, a),
        Command::Compact(a) => cmd::compact::run(&dir, a),
        Command::Verify(a) => cmd::verify::run(&dir, a),
        Command::Schema(a) => cmd::schema::run(&dir, a),
        Command::Inspect(a) => cmd::inspect::run(&dir, a),
        Command::Log(a) => cmd::log::run(&dir, a),
        Command::Mix(a) => cmd::mix::run(&dir, a),
        Command::Stream(a) => cmd::stream::run(&dir, a),
        Command::Tokenize(a) => cmd::tokenize::run(&dir, a),
        Command::Tokenizer(a) => cmd::tokenizer::run(&dir, a),
        Command::Trace(a) => cmd::trace::run(&dir, a),
        Command::Policy(a) => cmd::policy::run(&dir, a),
        Command::Report(a) => cmd::report::run(&dir, a),
        Command::Tag(a) => cmd::tag::run(&dir, a),
    };
    match r {
        Ok(code) => code,
        Err(e) => {
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                if io.kind() == std::io::ErrorKind::BrokenPipe {
                    return ExitCode::SUCCESS;
                }
            }
            if let Some(corpusql::Error::Io { error: source, .. }) =
                e.downcast_ref::<corpusql::Error>()
            {
                if source.kind() == std::io::ErrorKind::BrokenPipe {
                    return ExitCode::SUCCESS;
                }
            }
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
