//! `corpusql tokenize --tokenizer F`: precomputes exact token counts.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

use corpusql::raw::tokenize::{segment_counts_with, Tokenizer};
use corpusql::Corpus;

/// Arguments of `tokenize`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// `bytes` or a tokenizer.json.
    #[arg(long)]
    pub tokenizer: String,
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
