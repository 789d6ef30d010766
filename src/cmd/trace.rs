//! `corpusql trace MIX.toml|QUERY --sequence N [--offset K]`: the documents,
//! sources and licenses behind a position of a stream, one JSON line each.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use corpusql::Corpus;

/// Arguments of `trace`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A mixture file (.toml) or a query, as given to `stream`.
    pub source: String,
    /// Global sequence index (as counted by `stream` with world 1).
    #[arg(long)]
    pub sequence: u64,
    /// Token offset inside the sequence (default: every document in it).
    #[arg(long)]
    pub offset: Option<u64>,
    /// Tokenizer for a query.
    #[arg(long, default_value = "bytes")]
    pub tokenizer: String,
    /// Sequence length for a query.
    #[arg(long, default_value_t = 2048, value_parser = super::usize_in(1, super::MAX_SEQ_LEN))]
    pub seq_len: usize,
    /// Seed for a query's order.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The stream was run with --redact-pii.
    #[arg(long)]
    pub redact_pii: bool,
    /// The stream was run with --override-policy.
    #[arg(long)]
    pub override_policy: bool,
    /// A state of the stream traced: its weight changes (`set_weights`)
    /// are replayed.
    #[arg(long, value_name = "STATE")]
    pub state: Option<std::path::PathBuf>,
}

/// Runs `trace`.
pub fn run(dir: &Path, a: Args) -> anyhow::Result<ExitCode> {
    let corpus = Corpus::open(dir)?;
    let mut m = super::stream::mixture_of(&a.source, &a.tokenizer, a.seq_len, a.seed)?;
    m.redact_pii = a.redact_pii;
    let trace = corpus.trace(
        &m,
        &corpusql::TraceOptions {
            sequence: a.sequence,
            offset: a.offset,
            override_policy: a.override_policy,
            weight_changes: match &a.state {
                Some(p) => corpusql::StreamState::load(p)?.weight_changes,
                None => Vec::new(),
            },
        },
    )?;
    let mut out = std::io::stdout().lock();
    for h in trace.hits {
        serde_json::to_writer(&mut out, &h)?;
        writeln!(out)?;
    }
    Ok(ExitCode::SUCCESS)
}
