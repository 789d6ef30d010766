//! `corpusql stream MIX.toml|QUERY`: packed token sequences for a trainer,
//! as raw little-endian u16/u32 or `.npy`, sharded by rank, resumable.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use corpusql::export::Output;
use corpusql::mixture::Mixture;
use corpusql::stream::{Engine, StreamOptions, StreamState};
use corpusql::Corpus;
use rayon::prelude::*;

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
        let text = std::fs::read_to_string(source).with_context(|| format!("reading {source}"))?;
        Ok(Mixture::from_toml(&text, source)?)
    } else {
        Ok(Mixture::inline(source, tokenizer, seq_len, seed))
    }
}

/// Whether `stream` must refuse to run: its binary tokens would go to a
/// terminal (no `-o FILE`, or `-o -`, and stdout is one).
pub fn refuses_terminal(output: Option<&Path>, stdout_is_terminal: bool) -> bool {
    stdout_is_terminal && output.is_none_or(|p| p.as_os_str() == "-")
}

/// Writes `bytes` to `path` under a temporary name renamed over it, so a
/// reader never sees half a file.
pub fn write_file_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut f = Output::create_uncompressed(path)?;
    f.write_all(bytes)
        .with_context(|| format!("writing {}", path.display()))?;
    f.finish()?;
    Ok(())
}

fn write_state(path: &Path, st: &StreamState) -> anyhow::Result<()> {
    write_file_atomic(path, &serde_json::to_vec_pretty(st)?)
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
    let m = super::mixture_under_policy(&corpus, dir, m, a.override_policy)?;
    let mut start = 0;
    let mut resume = None;
    if let Some(p) = &a.resume {
        let st: StreamState = serde_json::from_slice(
            &std::fs::read(p).with_context(|| format!("reading {}", p.display()))?,
        )
        .with_context(|| format!("{}: not a stream state", p.display()))?;
        start = st.next_sequence;
        resume = Some((p, st));
    }
    let opts = StreamOptions {
        rank: a.rank,
        world: a.world,
        start,
        stop_after: a.stop_after,
    };
    let mut engine = Engine::new(&corpus, &m, opts)?;
    if let Some((p, st)) = resume {
        engine
            .check_resume(&st)
            .with_context(|| format!("cannot resume from {}", p.display()))?;
    }
    if a.report.is_some() {
        engine.track_facets()?;
    }
    let vocab = engine.tokenizer().vocab_size();
    let wide = match a.format {
        Format::U16 => {
            if vocab > 65536 {
                bail!("the tokenizer has {vocab} ids; u16 holds 65,536: use --format u32");
            }
            false
        }
        Format::U32 => true,
        Format::Npy => vocab > 65536,
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
        write_npy_header(&mut out, engine.total(), m.seq_len, wide)?;
    }
    let rows = ((4 << 20) / m.seq_len.max(1)).max(1);
    // The engine runs on its own thread, one batch ahead of the writes, so
    // producing the next batch overlaps writing this one.
    let template = engine.state();
    let state_at = |rows_written: u64| StreamState {
        next_sequence: start + rows_written * a.world,
        ..template.clone()
    };
    let (tx, rx) = std::sync::mpsc::sync_channel::<corpusql::Result<(Vec<u8>, u64)>>(2);
    let producer = std::thread::spawn(move || {
        loop {
            let msg = match engine.next_batch(rows) {
                Ok(Some(b)) => {
                    let width = if wide { 4 } else { 2 };
                    let mut buf = vec![0u8; b.tokens.len() * width];
                    let rows = buf
                        .par_chunks_mut(b.seq_len * width)
                        .zip(b.tokens.par_chunks(b.seq_len));
                    if wide {
                        rows.for_each(|(out, ids)| {
                            for (d, t) in out.chunks_exact_mut(4).zip(ids) {
                                d.copy_from_slice(&t.to_le_bytes());
                            }
                        });
                    } else {
                        rows.for_each(|(out, ids)| {
                            for (d, t) in out.chunks_exact_mut(2).zip(ids) {
                                d.copy_from_slice(&(*t as u16).to_le_bytes());
                            }
                        });
                    }
                    Ok((buf, b.rows as u64))
                }
                Ok(None) => break,
                Err(e) => Err(e),
            };
            let stop = msg.is_err();
            if tx.send(msg).is_err() || stop {
                break;
            }
        }
        engine
    });
    let mut written = 0u64;
    let mut since_state = 0;
    for msg in rx {
        let (buf, n) = msg?;
        out.write_all(&buf)?;
        written += n;
        since_state += n;
        if let Some(p) = &a.state_out {
            if since_state >= a.state_every {
                out.flush()?;
                write_state(p, &state_at(written))?;
                since_state = 0;
            }
        }
    }
    let engine = producer
        .join()
        .map_err(|_| anyhow::anyhow!("stream producer thread panicked"))?;
    out.flush()?;
    drop(out);
    if let Some(f) = file {
        f.finish()?;
    }
    if let Some(p) = &a.state_out {
        write_state(p, &state_at(written))?;
    }
    if let Some(p) = &a.report {
        let e = engine.emitted();
        let rep = serde_json::json!({
            "generation": corpus.generation(),
            "mixture_hash": m.hash(),
            "tokenizer": engine.tokenizer().id(),
            "seq_len": m.seq_len,
            "rank": a.rank, "world": a.world,
            "start_sequence": start,
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
            "state": state_at(written),
        });
        write_file_atomic(p, &serde_json::to_vec_pretty(&rep)?)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes a .npy v1 header for a C-order [rows, cols] array of u16/u32.
fn write_npy_header(w: &mut dyn Write, rows: u64, cols: usize, wide: bool) -> std::io::Result<()> {
    let descr = if wide { "<u4" } else { "<u2" };
    let mut dict =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    let total = 10 + dict.len() + 1;
    let pad = (64 - total % 64) % 64;
    dict.push_str(&" ".repeat(pad));
    dict.push('\n');
    w.write_all(b"\x93NUMPY\x01\x00")?;
    w.write_all(&(dict.len() as u16).to_le_bytes())?;
    w.write_all(dict.as_bytes())
}
