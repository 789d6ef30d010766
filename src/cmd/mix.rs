//! `corpusql mix plan MIX.toml`: what a mixture takes from the corpus;
//! `corpusql mix export MIX.toml --format megatron|nanotron -o DIR`: one
//! token file set per component, the blending weights and a datasheet.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use corpusql::Corpus;

/// Arguments of `mix`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: MixCommand,
}

#[derive(clap::Subcommand, Debug)]
enum MixCommand {
    /// Per component: documents, tokens available and targeted, epochs, breakdowns.
    Plan(PlanArgs),
    /// One token file set per component (Megatron or nanotron), the
    /// blending weights (`data-path.txt`) and a datasheet.
    Export(ExportArgs),
}

/// Arguments of `mix export`.
#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// A mixture file, or a query for a one-component export.
    pub source: String,
    /// Token-file layout.
    #[arg(long, value_enum)]
    pub format: TokenFormatArg,
    /// Output directory (created if missing).
    #[arg(long, short)]
    pub output: PathBuf,
    /// Tokenizer for a query: `bytes` or a tokenizer.json.
    #[arg(long, default_value = "bytes")]
    pub tokenizer: String,
    /// Sequence length for a query.
    #[arg(long, default_value_t = 2048, value_parser = super::usize_in(1, super::MAX_SEQ_LEN))]
    pub seq_len: usize,
    /// Export documents the corpus policy holds back.
    #[arg(long)]
    pub override_policy: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Token-file layouts of `mix export`.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum TokenFormatArg {
    /// Megatron-LM indexed datasets: `DIR/NAME.bin` and `DIR/NAME.idx`.
    Megatron,
    /// nanotron/datatrove token files: `DIR/NAME/NAME.ds`, `.ds.index`, `.ds.metadata`.
    Nanotron,
}

/// Arguments of `mix plan`.
#[derive(clap::Args, Debug)]
pub struct PlanArgs {
    /// A mixture file, or a query for a one-component plan.
    pub source: String,
    /// Tokenizer for a query.
    #[arg(long, default_value = "bytes")]
    pub tokenizer: String,
    /// Sequence length for a query.
    #[arg(long, default_value_t = 2048, value_parser = super::usize_in(1, super::MAX_SEQ_LEN))]
    pub seq_len: usize,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Plan as if the corpus policy allowed every license class.
    #[arg(long)]
    pub override_policy: bool,
}

fn human(n: u64) -> String {
    match n {
        0..=9_999 => n.to_string(),
        10_000..=9_999_999 => format!("{:.1}K", n as f64 / 1e3),
        10_000_000..=9_999_999_999 => format!("{:.1}M", n as f64 / 1e6),
        _ => format!("{:.2}B", n as f64 / 1e9),
    }
}

/// Runs `mix`.
pub fn run(dir: &Path, a: Args) -> anyhow::Result<ExitCode> {
    use std::io::Write;
    let p = match a.command {
        MixCommand::Plan(p) => p,
        MixCommand::Export(e) => return run_export(dir, e),
    };
    let corpus = Corpus::open(dir)?;
    let m = super::stream::mixture_of(&p.source, &p.tokenizer, p.seq_len, 0)?;
    let plan = corpus.plan_with(&m, p.override_policy)?;
    super::print_policy(&plan.policy, "include them");
    if p.json {
        super::print_json(&plan)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut so = std::io::stdout().lock();
    writeln!(
        so,
        "budget {} tokens of {} = {} sequences of {} (generation {}, mixture {})\n",
        human(plan.tokens),
        plan.tokenizer,
        plan.sequences,
        plan.seq_len,
        plan.generation,
        plan.mixture_hash
    )?;
    let mut rows = vec![[
        "component",
        "share",
        "docs",
        "tokens available",
        "tokens target",
        "epochs",
        "max",
    ]
    .map(String::from)
    .to_vec()];
    for c in &plan.components {
        rows.push(vec![
            c.name.clone(),
            format!("{:.1}%", 100.0 * c.share),
            c.docs.to_string(),
            human(c.tokens_available),
            human(c.tokens_target),
            format!(
                "{:.2}{}",
                c.epochs,
                if c.epochs > 1.0 { " (upsampled)" } else { "" }
            ),
            c.max_epochs
                .map(|x| x.to_string())
                .unwrap_or_else(|| "-".into()),
        ]);
    }
    drop(so);
    super::print_table(&rows, 1)?;
    if !plan.phases.is_empty() {
        println!();
        let mut rows = vec![vec![
            "phase".to_string(),
            "tokens".to_string(),
            "sequences".to_string(),
            "from sequence".to_string(),
        ]];
        rows[0].extend(plan.components.iter().map(|c| c.name.clone()));
        for ph in &plan.phases {
            let mut row = vec![
                ph.name.clone(),
                human(ph.tokens),
                ph.sequences.to_string(),
                ph.first_sequence.to_string(),
            ];
            row.extend(plan.components.iter().map(|c| {
                ph.shares
                    .get(&c.name)
                    .map_or_else(|| "-".to_string(), |s| format!("{:.1}%", 100.0 * s))
            }));
            rows.push(row);
        }
        super::print_table(&rows, 1)?;
    }
    let mut so = std::io::stdout().lock();
    for c in &plan.components {
        writeln!(so, "\n{} ({}):", c.name, c.query)?;
        for (field, slices) in &c.by {
            let shown: Vec<String> = slices
                .iter()
                .take(6)
                .map(|s| {
                    format!(
                        "{} {:.1}%",
                        s.value,
                        100.0 * s.tokens as f64 / c.tokens_available.max(1) as f64
                    )
                })
                .collect();
            let more = if slices.len() > 6 {
                format!(", +{} more", slices.len() - 6)
            } else {
                String::new()
            };
            writeln!(so, "  by {field:<8} {}{more}", shown.join(", "))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `mix export`.
fn run_export(dir: &Path, a: ExportArgs) -> anyhow::Result<ExitCode> {
    use corpusql::raw::export::tokens::{MixExportOptions, TokenFormat};
    let corpus = Corpus::open(dir)?;
    let m = super::stream::mixture_of(&a.source, &a.tokenizer, a.seq_len, 0)?;
    let opts = MixExportOptions {
        format: match a.format {
            TokenFormatArg::Megatron => TokenFormat::Megatron,
            TokenFormatArg::Nanotron => TokenFormat::Nanotron,
        },
        override_policy: a.override_policy,
    };
    let r = corpus.export_mixture_tokens(&m, &opts, &a.output)?;
    super::print_policy(&r.policy, "include them");
    if a.json {
        super::print_json(&r)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut rows = vec![["component", "weight", "documents", "tokens", "dtype"]
        .map(String::from)
        .to_vec()];
    for c in &r.components {
        rows.push(vec![
            c.name.clone(),
            format!("{:.4}", c.weight),
            c.files.documents.to_string(),
            human(c.files.tokens),
            c.files.dtype.name().to_string(),
        ]);
    }
    super::print_table(&rows, 1)?;
    let extra = match opts.format {
        TokenFormat::Megatron => "data-path.txt",
        _ => "nanotron-data.yaml",
    };
    eprintln!(
        "wrote {} components to {} ({extra}, datasheet.md, datasheet.json)",
        r.components.len(),
        a.output.display()
    );
    Ok(ExitCode::SUCCESS)
}
