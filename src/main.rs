//! The `corpusql` command line. Each subcommand lives in `cmd/<name>.rs`
//! with a `run()`; a bare query (`corpusql "lang=fr"`) means `query`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;

/// mimalloc: fewer cycles than glibc malloc for ingest's many small, short-lived
/// allocations (see docs/decisions.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

extern "C" {
    /// mimalloc's option setter (compiled into the allocator `mimalloc`
    /// links; `libmimalloc-sys` declares it only under a feature).
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
}

/// `mi_option_purge_delay`: the same index in mimalloc v2 and v3 (the two
/// versions `mimalloc` 0.1 builds).
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;

/// Keeps the memory the process frees for its own reuse for 300 ms
/// instead of handing it back to the OS after 10 ms (mimalloc's default).
/// An ingest frees a segment's records (tens of MiB) while it fills the
/// next one; handed back, every page returned as a fresh fault the kernel
/// zeroes (2 MiB at a time with transparent huge pages). W1 ingest,
/// `perf stat -e page-faults,task-clock corpusql ingest -q corpus_N.jsonl`:
/// at 100k documents 18,372 faults and 4.06 s of CPU before, 5,546 and
/// 2.94 s after; at 1M 200,668 faults and 33.2 s of CPU before, 159,927
/// and 28.0 s after, peak RSS 541–548 MB against 565–570 MB before. Never
/// handing memory back (`-1`) cut faults to 1,173 at 100k but raised the
/// 1M peak to 643–670 MB. The delay was 1 s until the ingest's own work
/// per byte shrank (December 5): then the Parquet decoder's freed batches,
/// kept a second, set the peak. 1M W1 ingest, two runs each, `/usr/bin/time
/// -f %M` (KiB): 1 s gave JSONL 445–455k and Parquet 528–555k (over 512
/// MiB); 300 ms gives 391–421k and 501–507k (under 495 MiB), JSONL in the
/// same time (11.96–11.98 s against 12.11–12.25 s), Parquet 0.2–0.6 s
/// (3%) slower; 100 ms and 10 ms cut the Parquet peak to 467 and 411 MB
/// but cost 2 and 4.6 s of system CPU in page faults.
/// `MIMALLOC_PURGE_DELAY` in the environment (milliseconds, mimalloc's own
/// variable) wins: the allocator has read it already.
fn keep_freed_memory() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: a plain setter of an integer option, called once at the top
    // of `main` before any thread is started (the mimalloc docs ask for
    // options to be set early; it is not thread safe).
    unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, 300) }
}

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
    /// Worker threads (default: all cores; 1 to 1024).
    #[arg(long, global = true, value_parser = cmd::usize_in(1, 1024))]
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
    /// Commit every task of a job (`ingest`/`tag --job NAME --task I/N`) as one generation.
    Commit(cmd::commit::Args),
    /// Copy a corpus between a directory and a URI (s3://, gs://, az://, file://), checksums verified.
    Copy(cmd::copy::Args),
    /// Remove from a corpus at a URI the old versions and objects no reader needs.
    Vacuum(cmd::vacuum::Args),
}

/// Inserts `query` before a bare query: the first positional argument that
/// is not a subcommand. A first argument that is one bare word, close to a
/// command name and not a valid query (`coutn`, `stat`) is a mistyped
/// command: the error says so and names the command it is close to.
fn with_default_subcommand(args: Vec<OsString>) -> Result<Vec<OsString>, String> {
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
        let names: Vec<&str> = cmd
            .get_subcommands()
            .map(|c| c.get_name())
            .chain(["help"])
            .collect();
        if names.contains(&a.as_ref()) {
            break;
        }
        if let Some(near) = mistyped_command(&a, &names) {
            return Err(format!("unknown command `{a}`; did you mean `{near}`?"));
        }
        let mut v = args;
        v.insert(i, "query".into());
        return Ok(v);
    }
    Ok(args)
}

/// The command `word` is probably a misspelling of: `word` is one bare word
/// (letters, digits, `-`, `_`), not a valid query, and near a command name.
fn mistyped_command<'a>(word: &str, names: &[&'a str]) -> Option<&'a str> {
    let bare = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !bare || corpusql::raw::query::parse(word).is_ok() {
        return None;
    }
    corpusql::raw::query::suggest(word, names.iter().copied())
}

/// Runs one command on the corpus in `dir`.
fn run_command(dir: &Path, command: Command) -> anyhow::Result<ExitCode> {
    let dir = dir.to_path_buf();
    match command {
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
        Command::Commit(a) => cmd::commit::run(&dir, a),
        Command::Copy(a) => cmd::copy::run(&dir, a),
        Command::Vacuum(a) => cmd::vacuum::run(&dir, a),
    }
}

/// The command's name, for version manifests.
fn command_name(c: &Command) -> &'static str {
    match c {
        Command::Ingest(_) => "ingest",
        Command::Delete(_) => "delete",
        Command::Compact(_) => "compact",
        Command::Tag(_) => "tag",
        Command::Commit(_) => "commit",
        Command::Policy(_) => "policy",
        _ => "change",
    }
}

fn main() -> ExitCode {
    keep_freed_memory();
    let args = match with_default_subcommand(std::env::args_os().collect()) {
        Ok(args) => args,
        Err(msg) => {
            eprintln!("error: {msg}");
            return ExitCode::from(2);
        }
    };
    let cli = Cli::parse_from(args.clone());
    if let Some(n) = cli.threads {
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global();
    }
    let dir = cli.corpus.clone();
    let writes = matches!(
        cli.command,
        Command::Ingest(cmd::ingest::Args { task: None, .. })
            | Command::Delete(_)
            | Command::Compact(_)
            | Command::Tag(cmd::tag::Args { task: None, .. })
            | Command::Commit(_)
            | Command::Policy(_)
    );
    if writes && corpusql::raw::corpus::WriteLock::is_held(&dir) {
        eprintln!(
            "waiting for another corpusql writer on {} ...",
            dir.display()
        );
    }
    // A corpus at a URI: read commands work on its node-local mirror,
    // refreshed now; commands that change a corpus refuse the URI (the
    // library says how to write one).
    let changes = (writes && !matches!(&cli.command, Command::Tag(t) if !t.changes()))
        || matches!(&cli.command, Command::Policy(p) if p.changes());
    let uri = corpusql::remote::as_uri(&dir).map(str::to_string);
    let task = matches!(
        &cli.command,
        Command::Ingest(cmd::ingest::Args { task: Some(_), .. })
            | Command::Tag(cmd::tag::Args { task: Some(_), .. })
    );
    let r = match uri {
        // A change to a corpus at a URI: the command runs on a working
        // copy of its newest version, committed as the next version (run
        // again on top of another writer's version when one wins the race).
        Some(uri) if changes && !task && !matches!(cli.command, Command::Commit(_)) => {
            let what = command_name(&cli.command);
            let write = corpusql::remote::write(&uri, what, |work| {
                let again = Cli::parse_from(args.clone());
                run_command(work, again.command)
                    .map_err(|e| corpusql::Error::Invalid(error_chain(e.chain())))
            });
            write.map_err(anyhow::Error::from).map(|(code, commit)| {
                match commit.version {
                    Some(v) => eprintln!(
                        "committed version {v} of {uri}: generation {}, {} files uploaded ({:.1} MiB){}",
                        commit.upload.generation,
                        commit.upload.transferred,
                        commit.upload.bytes as f64 / 1048576.0,
                        if commit.attempts > 1 {
                            format!(", after {} attempts", commit.attempts)
                        } else {
                            String::new()
                        }
                    ),
                    None => eprintln!("{uri}: nothing changed, no version committed"),
                }
                code
            })
        }
        // Read commands work on the URI's node-local mirror, refreshed now.
        // Job tasks and commits at a URI stage and commit there themselves.
        Some(uri)
            if !task
                && !matches!(
                    cli.command,
                    Command::Copy(_) | Command::Demo(_) | Command::Commit(_) | Command::Vacuum(_)
                ) =>
        {
            match corpusql::remote::mirror(&uri) {
                Ok(m) => {
                    if m.segment_files > 0 {
                        eprintln!(
                            "fetched {} files ({:.1} MiB, {} requests) of version {} (generation {}) from {uri} into {}",
                            m.transferred,
                            m.bytes as f64 / 1048576.0,
                            m.requests,
                            m.version,
                            m.generation,
                            m.dir.display()
                        );
                    }
                    let r = run_command(&m.dir, cli.command);
                    let (requests, bytes) = corpusql::remote::block_fetches();
                    if requests > 0 {
                        eprintln!(
                            "fetched blocks: {requests} range requests ({:.1} MiB) from {uri}",
                            bytes as f64 / 1048576.0
                        );
                    }
                    r
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(1);
                }
            }
        }
        _ => run_command(&dir, cli.command),
    };
    match r {
        Ok(code) => code,
        Err(e) => {
            let broken_pipe = e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            });
            if broken_pipe {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {}", error_chain(e.chain()));
            ExitCode::from(2)
        }
    }
}

/// The message of an error and of each of its causes, outermost first,
/// joined by `: `. A cause whose text the message already ends with is not
/// repeated: [`corpusql::Error::Io`] shows its I/O error and also gives it
/// as its source.
fn error_chain<'a>(chain: impl Iterator<Item = &'a (dyn std::error::Error + 'static)>) -> String {
    let mut msg = String::new();
    for cause in chain {
        let text = cause.to_string();
        if msg.is_empty() {
            msg = text;
        } else if !msg.ends_with(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn a_bare_word_near_a_command_is_a_mistyped_command() {
        let e = with_default_subcommand(args(&["corpusql", "coutn", "lang=fr"])).unwrap_err();
        assert_eq!(e, "unknown command `coutn`; did you mean `count`?");
        let e = with_default_subcommand(args(&["corpusql", "-C", "x", "stat"])).unwrap_err();
        assert_eq!(e, "unknown command `stat`; did you mean `stats`?");
        // Queries keep the shortcut; known commands pass through.
        for q in ["lang=fr", "lang = fr", "*", "not lang=fr"] {
            let v = with_default_subcommand(args(&["corpusql", q])).unwrap();
            assert_eq!(v[1], "query", "{q}");
        }
        let v = with_default_subcommand(args(&["corpusql", "count", "*"])).unwrap();
        assert_eq!(v, args(&["corpusql", "count", "*"]));
    }

    #[test]
    fn the_error_chain_names_each_cause_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        let e = anyhow::Error::new(corpusql::Error::io("/x/y", io)).context("reading the mixture");
        assert_eq!(error_chain(e.chain()), "reading the mixture: /x/y: gone");
        let e = anyhow::anyhow!("outer").context("top");
        assert_eq!(error_chain(e.chain()), "top: outer");
    }

    #[test]
    fn stream_refuses_only_a_terminal_stdout() {
        use cmd::stream::refuses_terminal;
        assert!(refuses_terminal(None, true));
        assert!(refuses_terminal(Some("-".as_ref()), true));
        assert!(!refuses_terminal(Some("out.u16".as_ref()), true));
        assert!(!refuses_terminal(None, false));
    }
}
