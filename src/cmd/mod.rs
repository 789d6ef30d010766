//! One file per subcommand, each with its `Args` and a `run()`; shared
//! helpers for output formatting live here.

pub mod compact;
pub mod count;
pub mod delete;
pub mod demo;
pub mod export;
pub mod get;
pub mod ingest;
pub mod inspect;
pub mod log;
pub mod mix;
pub mod query;
pub mod schema;
pub mod stats;
pub mod stream;
pub mod tokenize;
pub mod tokenizer;
pub mod trace;
pub mod verify;

use std::io::Write;

/// Prints query notes ("no document has lang = frr; did you mean fr?") to stderr.
pub fn print_notes(sel: &corpusql::Selection) {
    for n in &sel.notes {
        eprintln!("note: {n}");
    }
}

/// Human-readable byte count.
pub fn human_bytes(b: u64) -> String {
    const U: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut x = b as f64;
    let mut i = 0;
    while x >= 1024.0 && i < U.len() - 1 {
        x /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{b} B")
    } else {
        format!("{x:.1} {}", U[i])
    }
}

/// Prints rows as an aligned text table (first row is the header).
pub fn print_table(rows: &[Vec<String>], right_align_from: usize) -> std::io::Result<()> {
    let cols = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    let mut width = vec![0usize; cols];
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            width[i] = width[i].max(c.chars().count());
        }
    }
    let mut out = std::io::stdout().lock();
    for (ri, r) in rows.iter().enumerate() {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            let pad = width[i] - c.chars().count();
            if i > 0 {
                line.push_str("  ");
            }
            if i >= right_align_from {
                line.push_str(&" ".repeat(pad));
                line.push_str(c);
            } else {
                line.push_str(c);
                if i + 1 < r.len() {
                    line.push_str(&" ".repeat(pad));
                }
            }
        }
        writeln!(out, "{line}")?;
        if ri == 0 {
            writeln!(
                out,
                "{}",
                "-".repeat(width.iter().sum::<usize>() + 2 * cols.saturating_sub(1))
            )?;
        }
    }
    Ok(())
}

/// Writes `v` as pretty JSON to stdout.
pub fn print_json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, v)?;
    writeln!(out)?;
    Ok(())
}
