//! `corpusql export QUERY --format megatron|nanotron --tokenizer T -o PREFIX`:
//! token files a trainer reads, with their provenance sidecar.

use std::path::Path;
use std::process::ExitCode;

use anyhow::bail;
use corpusql::raw::export::tokens::{TokenExportOptions, TokenFormat};
use corpusql::Corpus;

use super::export::{Args, Format};

/// Runs `export` for a token format.
pub fn run(dir: &Path, a: Args) -> anyhow::Result<ExitCode> {
    let format = match a.format {
        Format::Megatron => TokenFormat::Megatron,
        Format::Nanotron => TokenFormat::Nanotron,
        other => bail!("export: {other:?} is not a token format"),
    };
    let name = format.name();
    let Some(tokenizer) = a.tokenizer.clone() else {
        bail!("--format {name} needs --tokenizer (`bytes` or a tokenizer.json)");
    };
    let Some(prefix) = a.output.clone().filter(|p| p.as_os_str() != "-") else {
        bail!(
            "--format {name} writes files: give -o PREFIX (PREFIX{} ... are written)",
            format.suffixes()[0]
        );
    };
    if a.fields.is_some() || a.signals {
        bail!("--format {name} writes token ids only: --fields and --signals do not apply (the provenance sidecar lists key, source and license)");
    }
    let corpus = Corpus::open(dir)?;
    let sel = corpus.query(&a.query)?;
    super::print_notes(&sel);
    let opts = TokenExportOptions {
        format,
        tokenizer,
        limit: a.limit,
        redact_pii: a.redact_pii,
        override_policy: a.override_policy,
    };
    let report = corpus.export_tokens(&sel, &opts, &prefix)?;
    super::print_policy(&report.policy, "export them anyway");
    let f = &report.files;
    eprintln!(
        "exported {} documents, {} tokens ({}, {}) to {}",
        f.documents,
        f.tokens,
        name,
        f.dtype.name(),
        f.files
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(ExitCode::SUCCESS)
}
