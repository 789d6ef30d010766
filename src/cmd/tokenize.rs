//! `corpusql tokenize --tokenizer F [--keep-ids]`: precomputes exact token
//! counts, and with `--keep-ids` stores every document's token ids beside
//! the segments (`*.cqi`), so streams, plans and exports read them instead
//! of tokenizing.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

use corpusql::raw::token_ids::keep_ids;
use corpusql::raw::tokenize::{segment_counts_with, Tokenizer};
use corpusql::Corpus;

/// Arguments of `tokenize`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// `bytes` or a tokenizer.json.
    #[arg(long)]
    pub tokenizer: String,
    /// Also store each document's token ids (one `.cqi` file per segment,
    /// compressed and checksummed), tokenizing each document once; segments
    /// whose ids are kept already are skipped.
    #[arg(long)]
    pub keep_ids: bool,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Runs `tokenize`.
pub fn run(dir: &Path, a: Args) -> anyhow::Result<ExitCode> {
    let corpus = Corpus::open(dir)?;
    let tok = Tokenizer::load(&a.tokenizer)?;
    // Progress in text bytes, block by block: a segment can take minutes.
    let total: u64 = corpus
        .segments()
        .iter()
        .map(|s| s.segment.meta().text_bytes)
        .sum();
    let bar = if a.quiet || !std::io::stderr().is_terminal() {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(total)
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:30} {binary_bytes}/{binary_total_bytes} of text, {binary_bytes_per_sec}, {elapsed} eta {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let t = std::time::Instant::now();
    if a.keep_ids {
        let r = keep_ids(&corpus, &tok, &|b| bar.inc(b))?;
        bar.finish_and_clear();
        println!(
            "{} tokens of {} (end-of-document included) in {} live documents, {:.2}s",
            r.tokens,
            r.tokenizer,
            r.documents,
            t.elapsed().as_secs_f64()
        );
        println!(
            "token ids kept for {} segments ({} written now, {} kept already): {} bytes written, {} bytes of token ids in all",
            r.segments, r.written, r.kept, r.bytes_written, r.ids_bytes
        );
        return Ok(ExitCode::SUCCESS);
    }
    let mut tokens = 0u64;
    for s in corpus.segments() {
        let c = segment_counts_with(corpus.dir(), &s.entry.file, &s.segment, &tok, &|b| {
            bar.inc(b)
        })?;
        tokens += s.live.iter().map(|o| c[o as usize] as u64).sum::<u64>();
    }
    bar.finish_and_clear();
    println!(
        "{} tokens of {} (end-of-document included) in {} live documents, {:.2}s",
        tokens,
        tok.id(),
        corpus.len(),
        t.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}
