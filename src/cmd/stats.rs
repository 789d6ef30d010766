//! `corpusql stats [QUERY] --by f1,f2`: documents, bytes and shares by group.

use std::path::Path;
use std::process::ExitCode;

use corpusql::Corpus;

/// Arguments of `stats`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The query (default: every document).
    #[arg(default_value = "*")]
    pub query: String,
    /// Group by these fields (comma-separated; groups are their combinations).
    #[arg(long, value_delimiter = ',')]
    pub by: Vec<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Show at most this many groups (the rest are summed in one line).
    #[arg(long, default_value_t = 50)]
    pub top: usize,
}

/// Runs `stats`.
pub fn run(dir: &Path, a: Args) -> anyhow::Result<ExitCode> {
    let corpus = Corpus::open(dir)?;
    let sel = corpus.query(&a.query)?;
    super::print_notes(&sel);
    let by: Vec<String> =
        a.by.iter()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
    let st = corpus.stats(&sel, &by)?;
    let held = corpus.under_policy(&sel, false)?.1.held_back;
    if held.docs > 0 {
        eprintln!(
            "policy: export and stream would hold back {}",
            held.summary()
        );
    }
    if a.json {
        super::print_json(&st)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{} documents ({:.2}% of {}), {} of text",
        st.docs,
        if st.corpus_docs > 0 {
            100.0 * st.docs as f64 / st.corpus_docs as f64
        } else {
            0.0
        },
        st.corpus_docs,
        super::human_bytes(st.bytes)
    );
    if by.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    println!();
    let mut rows = vec![{
        let mut h = by.clone();
        h.extend(["docs", "docs %", "bytes", "bytes %"].map(String::from));
        h
    }];
    let fmt_row = |vals: Vec<String>, d: u64, ds: f64, b: u64, bs: f64| {
        let mut r = vals;
        r.extend([
            d.to_string(),
            format!("{:.2}", 100.0 * ds),
            super::human_bytes(b),
            format!("{:.2}", 100.0 * bs),
        ]);
        r
    };
    for g in st.groups.iter().take(a.top) {
        let vals = g
            .values
            .iter()
            .map(|v| v.clone().unwrap_or_else(|| "(none)".into()))
            .collect();
        rows.push(fmt_row(vals, g.docs, g.doc_share, g.bytes, g.byte_share));
    }
    if st.groups.len() > a.top {
        let rest = &st.groups[a.top..];
        let mut vals = vec![format!("({} more groups)", rest.len())];
        vals.resize(by.len(), String::new());
        rows.push(fmt_row(
            vals,
            rest.iter().map(|g| g.docs).sum(),
            rest.iter().map(|g| g.doc_share).sum(),
            rest.iter().map(|g| g.bytes).sum(),
            rest.iter().map(|g| g.byte_share).sum(),
        ));
    }
    super::print_table(&rows, by.len())?;
    Ok(ExitCode::SUCCESS)
}
