//! One file per subcommand, each with its `Args` and a `run()`; shared
//! helpers for output formatting live here.

pub mod commit;
pub mod compact;
pub mod copy;
pub mod count;
pub mod delete;
pub mod demo;
pub mod export;
pub mod export_tokens;
pub mod get;
pub mod ingest;
pub mod inspect;
pub mod log;
pub mod mix;
pub mod policy;
pub mod query;
pub mod report;
pub mod schema;
pub mod stats;
pub mod stream;
pub mod tag;
pub mod tokenize;
pub mod tokenizer;
pub mod trace;
pub mod vacuum;
pub mod verify;

use std::io::Write;

use clap::builder::RangedU64ValueParser;

/// Largest `--seq-len`: 16,777,216 tokens (one batch row must fit in memory).
pub const MAX_SEQ_LEN: u64 = 1 << 24;

/// Largest `--segment-mb`: 64 GiB of documents per segment.
pub const MAX_SEGMENT_MB: u64 = 1 << 16;

/// A `usize` option in `lo..=hi`: anything else is clap's error naming the
/// option and the range, exit 2 (a zero that would divide, a size that
/// would overflow).
pub fn usize_in(lo: u64, hi: u64) -> RangedU64ValueParser<usize> {
    RangedU64ValueParser::<usize>::new().range(lo..=hi)
}

/// A `u64` option in `lo..=hi`.
pub fn u64_in(lo: u64, hi: u64) -> RangedU64ValueParser<u64> {
    RangedU64ValueParser::<u64>::new().range(lo..=hi)
}

/// A `u64` option of at least `lo`.
pub fn u64_from(lo: u64) -> RangedU64ValueParser<u64> {
    RangedU64ValueParser::<u64>::new().range(lo..)
}

/// Prints query notes ("no document has lang = frr; did you mean fr?") to stderr.
pub fn print_notes(sel: &corpusql::Selection) {
    for n in &sel.notes {
        eprintln!("note: {n}");
    }
}

/// Tells on stderr what the corpus policy held back (and how to include
/// it: `--override-policy` to `anyway`), or that the override let it through.
pub fn print_policy(p: &corpusql::PolicyOutcome, anyway: &str) {
    if p.held_back.docs == 0 {
        return;
    }
    if p.overridden {
        eprintln!(
            "policy overridden (--override-policy): {} documents the policy would hold back are included",
            p.held_back.docs
        );
    } else {
        eprintln!("{}", p.held_back.summary());
        eprintln!("(use --override-policy to {anyway}; `corpusql policy` shows the policy)");
    }
}

/// A progress bar on stderr, drawn only when `show` (a terminal, no
/// `--quiet`): the command line's receiver of the library's progress.
pub fn progress_bar(show: bool) -> Option<corpusql::progress::ProgressSink> {
    show.then(|| corpusql::progress::ProgressSink::new(Bar(indicatif::ProgressBar::hidden())))
}

struct Bar(indicatif::ProgressBar);

impl corpusql::progress::Progress for Bar {
    fn start(&self, what: &str, total: u64, unit: corpusql::progress::Unit) {
        use corpusql::progress::Unit;
        let template = match unit {
            Unit::Bytes => "{spinner} {msg} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            Unit::Documents => {
                "{msg} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} docs ({rate}, eta {eta})"
            }
        };
        let style = indicatif::ProgressStyle::with_template(template)
            .map(|s| {
                // Whole documents per second: `{per_sec}` shows `2,985.239/s`.
                s.with_key(
                    "rate",
                    |st: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                        let _ = write!(w, "{}/s", indicatif::HumanCount(st.per_sec() as u64));
                    },
                )
            })
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
        self.0
            .set_draw_target(indicatif::ProgressDrawTarget::stderr());
        self.0.set_style(style);
        self.0.set_length(total);
        self.0.set_position(0);
        self.0.reset_elapsed();
        self.0.set_message(what.to_string());
    }

    fn set(&self, done: u64) {
        self.0.set_position(done);
    }

    fn advance(&self, n: u64) {
        self.0.inc(n);
    }

    fn finish(&self) {
        self.0.finish_and_clear();
        self.0
            .set_draw_target(indicatif::ProgressDrawTarget::hidden());
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
    serde_json::to_writer_pretty(&mut out, v).map_err(std::io::Error::from)?;
    writeln!(out)?;
    Ok(())
}
