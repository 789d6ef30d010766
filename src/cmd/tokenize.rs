//! `corpusql tokenize --tokenizer F`: precomputes exact token counts.

use std::path::Path;
use std::process::ExitCode;

use corpusql::tokenize::{segment_counts, Tokenizer};
use corpusql::Corpus;

/// Arguments of `tokenize`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// `bytes` or a tokenizer.json.
    #[arg(long)]
    pub tokenizer: String,
}

/// Runs `tokenize`.
pub fn run(dir: &Path, a: Args) -> anyhow::Result<ExitCode> {
    let corpus = Corpus::open(dir)?;
    let tok = Tokenizer::load(&a.tokenizer)?;
    let bar = indicatif::ProgressBar::new(corpus.segments().len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:30} {pos}/{len} segments {elapsed} eta {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let t = std::time::Instant::now();
    let mut tokens = 0u64;
    for s in corpus.segments() {
        let c = segment_counts(corpus.dir(), &s.entry.file, &s.segment, &tok)?;
        tokens += s.live.iter().map(|o| c[o as usize] as u64).sum::<u64>();
        bar.inc(1);
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
