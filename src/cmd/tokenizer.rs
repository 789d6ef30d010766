//! `corpusql tokenizer train QUERY --vocab-size N -o tokenizer.json`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use corpusql::Corpus;

/// Arguments of `tokenizer`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: TokCommand,
}

#[derive(clap::Subcommand, Debug)]
enum TokCommand {
    /// Train a byte-level BPE tokenizer on the selected documents.
    Train(TrainArgs),
}

/// Arguments of `tokenizer train`.
#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    /// The documents to train on.
    pub query: String,
    /// Vocabulary size (at least 257: the 256 bytes and the end-of-text token).
    #[arg(long, default_value_t = 32000, value_parser = super::usize_in(257, 1 << 24))]
    pub vocab_size: usize,
    /// Output tokenizer.json.
    #[arg(long, short)]
    pub output: PathBuf,
    /// Train on documents the corpus policy holds back too.
    #[arg(long)]
    pub override_policy: bool,
}

/// Runs `tokenizer`.
pub fn run(dir: &Path, a: Args) -> anyhow::Result<ExitCode> {
    let TokCommand::Train(t) = a.command;
    let corpus = Corpus::open(dir)?;
    let sel = corpus.query(&t.query)?;
    let start = std::time::Instant::now();
    super::print_notes(&sel);
    let r = corpus.train_tokenizer(&sel, t.vocab_size, &t.output, t.override_policy)?;
    super::print_policy(&r.policy, "train on them too");
    println!(
        "trained a {}-id BPE tokenizer on {} documents in {:.1}s -> {}",
        r.vocab_size,
        r.documents,
        start.elapsed().as_secs_f64(),
        t.output.display()
    );
    Ok(ExitCode::SUCCESS)
}
