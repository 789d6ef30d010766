//! `corpusql stream MIX.toml|QUERY`: packed token sequences for a trainer,
//! as raw little-endian u16/u32 or `.npy`, sharded by rank, resumable.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::bail;
use corpusql::raw::export::Output;
use corpusql::Corpus;
use corpusql::{npy_header, Encoding, Mixture, StreamOptions, StreamState};

/// Arguments of `stream`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A mixture file (.toml) or a query (streams every match once).
    pub source: String,
    /// Tokenizer for a query: `bytes` or a tokenizer.json.
    #[arg(long, default_value = "bytes")]
    pub tokenizer: String,
    /// Sequence length for a query.
    #[arg(long, default_value_t = 2048, value_parser = super::usize_in(1, super::MAX_SEQ_LEN))]
    pub seq_len: usize,
    /// Seed for a query's order.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// This process's rank.
    #[arg(long, default_value_t = 0)]
    pub rank: u64,
    /// Number of ranks (1 to 2^32: sequence numbers stay within u64).
    #[arg(long, default_value_t = 1, value_parser = super::u64_in(1, 1 << 32))]
    pub world: u64,
    /// Continue from this state file.
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Write the state here every --state-every sequences and at the end.
    #[arg(long)]
    pub state_out: Option<PathBuf>,
    /// Sequences between state writes.
    #[arg(long, default_value_t = 1000, value_parser = super::u64_from(1))]
    pub state_every: u64,
    /// Stop after this many sequences (of this rank).
    #[arg(long)]
    pub stop_after: Option<u64>,
    /// Write a JSON report of the tokens emitted per component, license and source.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Output encoding.
    #[arg(long, value_enum, default_value = "u16")]
    pub format: Format,
    /// Output file (`-` or none: stdout).
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Replace personal data in the text with placeholders before tokenizing.
    #[arg(long)]
    pub redact_pii: bool,
    /// Stream documents the corpus policy holds back.
    #[arg(long)]
    pub override_policy: bool,
    /// Write, per emitted sequence, its component and the (document key,
    /// token offset, token count) pieces it holds, one JSON line each.
    #[arg(long, value_name = "FILE")]
    pub provenance: Option<PathBuf>,
}

/// Token encodings.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Little-endian u16 (vocabularies up to 65,536).
    U16,
    /// Little-endian u32.
    U32,
    /// NumPy .npy, shape [sequences, seq_len], dtype <u2 or <u4 by vocabulary size.
    Npy,
}

/// Loads a mixture file or builds an inline one from a query.
pub fn mixture_of(
    source: &str,
    tokenizer: &str,
    seq_len: usize,
    seed: u64,
) -> anyhow::Result<Mixture> {
    if source.ends_with(".toml") || Path::new(source).is_file() {
        Ok(Mixture::from_file(source)?)
    } else {
        Ok(Mixture::inline(source, tokenizer, seq_len, seed))
    }
}

/// Whether `stream` must refuse to run: its binary tokens would go to a
/// terminal (no `-o FILE`, or `-o -`, and stdout is one).
pub fn refuses_terminal(output: Option<&Path>, stdout_is_terminal: bool) -> bool {
    stdout_is_terminal && output.is_none_or(|p| p.as_os_str() == "-")
}

/// One JSON line per row of `b`: `sequence`, `component`,
/// `component_sequence` and `pieces` (`[key, token offset in the document,
/// tokens]`, in the row's order; they add up to `seq_len`).
fn write_provenance(
    w: &mut impl Write,
    b: &corpusql::Batch,
    names: &[String],
) -> anyhow::Result<()> {
    let mut pieces = b.pieces().iter().peekable();
    for r in 0..b.rows() {
        let mut row = Vec::new();
        while let Some(p) = pieces.next_if(|p| p.row == r) {
            row.push(serde_json::json!([
                p.key.as_deref().unwrap_or_default(),
                p.doc_offset,
                p.tokens
            ]));
        }
        let c = b.components()[r] as usize;
        serde_json::to_writer(
            &mut *w,
            &serde_json::json!({
                "sequence": b.sequences()[r],
                "component": names.get(c).map_or("", |s| s.as_str()),
                "component_sequence": b.component_sequences()[r],
                "pieces": row,
            }),
        )?;
        w.write_all(b"\n")?;
    }
    Ok(())
}

/// Runs `stream`.
pub fn run(dir: &Path, a: Args) -> anyhow::Result<ExitCode> {
    if refuses_terminal(a.output.as_deref(), std::io::stdout().is_terminal()) {
        bail!("refusing to write binary tokens to a terminal; use -o FILE or redirect");
    }
    if a.rank >= a.world {
        bail!(
            "--rank {} is not below --world {}: ranks are 0 to world - 1",
            a.rank,
            a.world
        );
    }
    let corpus = Corpus::open(dir)?;
    let mut m = mixture_of(&a.source, &a.tokenizer, a.seq_len, a.seed)?;
    m.redact_pii = a.redact_pii;
    let resume = match &a.resume {
        Some(p) => Some(StreamState::load(p)?),
        None => None,
    };
    let opts = StreamOptions {
        rank: a.rank,
        world: a.world,
        resume,
        stop_after: a.stop_after,
        track_facets: a.report.is_some(),
        override_policy: a.override_policy,
        provenance: a.provenance.is_some(),
        ..StreamOptions::default()
    };
    let mut stream = match (corpus.stream(&m, opts), &a.resume) {
        (Err(e @ corpusql::Error::ResumeMismatch { .. }), Some(p)) => {
            return Err(anyhow::Error::new(e).context(p.display().to_string()))
        }
        (r, _) => r?,
    };
    super::print_policy(stream.policy(), "include them");
    let vocab = stream.tokenizer().vocab_size();
    let enc = match a.format {
        Format::U16 => {
            Encoding::U16.check(vocab)?;
            Encoding::U16
        }
        Format::U32 => Encoding::U32,
        Format::Npy => Encoding::for_vocab(vocab),
    };
    // A file appears at its path only when the stream ends well; on an
    // error its temporary is removed (a file already there stays).
    let mut file = match &a.output {
        Some(p) if p.as_os_str() != "-" => Some(Output::create_uncompressed(p)?),
        _ => None,
    };
    let mut out: Box<dyn Write + '_> = match file.as_mut() {
        Some(f) => Box::new(std::io::BufWriter::with_capacity(1 << 22, f)),
        None => Box::new(std::io::BufWriter::with_capacity(
            1 << 22,
            std::io::stdout().lock(),
        )),
    };
    if a.format == Format::Npy {
        out.write_all(&npy_header(stream.total_sequences(), m.seq_len, enc))?;
    }
    // About 4 MiB of tokens per batch; the library computes the next batch
    // on its prefetch thread while this one is written.
    let rows = ((4 << 20) / m.seq_len.max(1)).max(1);
    let mut buf = Vec::new();
    let mut since_state = 0;
    let mut prov_file = match &a.provenance {
        Some(p) => Some(Output::create_uncompressed(p)?),
        None => None,
    };
    let mut prov = prov_file
        .as_mut()
        .map(|f| std::io::BufWriter::with_capacity(1 << 20, f));
    let names: Vec<String> = stream
        .mixture()
        .components
        .iter()
        .map(|c| c.name.clone())
        .collect();
    while let Some(b) = stream.next_batch(rows)? {
        b.encode(enc, &mut buf)?;
        out.write_all(&buf)?;
        if let Some(w) = prov.as_mut() {
            write_provenance(w, &b, &names)?;
        }
        since_state += b.rows() as u64;
        stream.recycle(b);
        if let Some(p) = &a.state_out {
            if since_state >= a.state_every {
                out.flush()?;
                stream.state().save(p)?;
                since_state = 0;
            }
        }
    }
    out.flush()?;
    drop(out);
    if let Some(f) = file {
        f.finish()?;
    }
    if let Some(w) = prov.as_mut() {
        w.flush()?;
    }
    drop(prov);
    if let Some(f) = prov_file {
        f.finish()?;
    }
    let state = stream.state();
    if let Some(p) = &a.state_out {
        state.save(p)?;
    }
    if let Some(p) = &a.report {
        let e = stream.emitted();
        let rep = serde_json::json!({
            "generation": corpus.generation(),
            "mixture_hash": m.hash(),
            "tokenizer": stream.tokenizer().id(),
            "seq_len": m.seq_len,
            "rank": a.rank, "world": a.world,
            "start_sequence": stream.start_sequence(),
            "sequences": e.sequences,
            "tokens": e.tokens,
            "checksum_emitted": e.checksum,
            "tokens_by_component": e.by_component,
            "components": e.by_component.iter().map(|(k, v)| (k.clone(), serde_json::json!({
                "tokens": v,
                "share": if e.tokens > 0 { *v as f64 / e.tokens as f64 } else { 0.0 },
            }))).collect::<serde_json::Map<String, serde_json::Value>>(),
            "tokens_by_license": e.by_license,
            "tokens_by_source": e.by_source,
            "state": state,
        });
        corpusql::raw::storage::write_file_atomic(p, &serde_json::to_vec_pretty(&rep)?)?;
    }
    Ok(ExitCode::SUCCESS)
}
