//! The Markdown rendering of a [`Datasheet`]: GitHub-flavoured tables with
//! human units, readable as plain text in a terminal.

use std::fmt::Write;

use super::*;

/// Tables longer than this are cut, saying how many rows the JSON has.
const MAX_TABLE_ROWS: usize = 500;

/// The datasheet as GitHub-flavoured Markdown: the same sections as the HTML
/// page, as tables with human units (KiB/MiB, thousands separators) and
/// percentages.
pub fn to_markdown(d: &Datasheet) -> String {
    let mut out = String::new();
    let o = &mut out;
    let _ = writeln!(o, "# {}\n", text(&d.title));
    let _ = writeln!(
        o,
        "Corpus {} · generation {} · selection {} · tokens counted with {} · generated {}\n",
        code(&d.corpus),
        d.generation,
        code(&d.selection),
        code(&d.tokenizer),
        fmt_time(d.generated_unix)
    );

    if !d.notes.is_empty() {
        let _ = writeln!(o, "## Notes\n");
        for note in &d.notes {
            let _ = writeln!(o, "- **Note:** {}", text(note));
        }
        o.push('\n');
    }

    totals(o, d);
    if let Some(t) = &d.training {
        training(o, t);
    }
    if let Some(p) = &d.policy {
        policy(o, d, p);
    }
    if let Some(w) = &d.withdrawal {
        withdrawal(o, w);
    }
    if !d.withdrawal_log.is_empty() {
        withdrawal_log(o, &d.withdrawal_log);
    }
    if !d.signals.is_empty() {
        signals(o, &d.signals);
    }
    for b in &d.breakdowns {
        breakdown(o, d, b);
    }
    attributions(o, &d.attributions);
    ingest_log(o, &d.ingest_log);
    out
}

fn totals(o: &mut String, d: &Datasheet) {
    let _ = writeln!(o, "## Totals\n");
    table_head(
        o,
        &["", "Documents", "Bytes", "Tokens"],
        &[false, true, true, true],
    );
    let t = &d.totals;
    let _ = writeln!(
        o,
        "| Selected | {} | {} ({}) | {} |",
        fmt_int(t.docs),
        fmt_bytes(t.bytes),
        fmt_int(t.bytes),
        fmt_tokens(t.tokens)
    );
    let distinct: Vec<String> = d
        .breakdowns
        .iter()
        .map(|b| {
            format!(
                "{} {}",
                fmt_int(b.rows.len() as u64),
                plural_facet(&b.facet, b.rows.len())
            )
        })
        .collect();
    if !distinct.is_empty() {
        let _ = writeln!(o, "\n{}.", distinct.join(", "));
    }
    o.push('\n');
}

/// A mixture's training set: tokens, share, documents and epochs per
/// component, and per phase the tokens of each component.
fn training(o: &mut String, t: &crate::train::training::TrainingSummary) {
    let _ = writeln!(
        o,
        "## Training set
"
    );
    let _ = writeln!(
        o,
        "The stream emits {} sequences of {} tokens ({} tokens); the totals and breakdowns below count exactly its documents and the tokens it takes from them, repeats included.\n",
        fmt_int(t.sequences),
        fmt_int(t.seq_len as u64),
        fmt_int(t.tokens)
    );
    table_head(
        o,
        &[
            "Component",
            "Tokens",
            "Share",
            "Documents",
            "Epochs",
            "Query",
        ],
        &[false, true, true, true, true, false],
    );
    for c in &t.components {
        let _ = writeln!(
            o,
            "| {} | {} | {:.2}% | {} | {:.2} | {} |",
            cell(&c.name),
            fmt_int(c.tokens),
            100.0 * c.share,
            fmt_int(c.docs),
            c.epochs,
            code(&c.query)
        );
    }
    if t.phases.len() > 1 || !t.weight_changes.is_empty() {
        o.push('\n');
        let mut head = vec!["Phase", "First sequence", "Sequences"];
        head.extend(t.components.iter().map(|c| c.name.as_str()));
        let mut right = vec![false, true, true];
        right.extend(t.components.iter().map(|_| true));
        table_head(o, &head, &right);
        for p in &t.phases {
            let cols: Vec<String> = t
                .components
                .iter()
                .map(|c| fmt_int(p.tokens_by_component.get(&c.name).copied().unwrap_or(0)))
                .collect();
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} |",
                cell(&p.name),
                fmt_int(p.first_sequence),
                fmt_int(p.sequences),
                cols.join(" | ")
            );
        }
    }
    for w in &t.weight_changes {
        let ws: Vec<String> = w
            .weights
            .iter()
            .map(|(k, v)| format!("{k} = {v}"))
            .collect();
        let _ = writeln!(
            o,
            "\nFrom sequence {} the weights were changed to {} (to the end of its phase).",
            fmt_int(w.from_sequence),
            text(&ws.join(", "))
        );
    }
    o.push('\n');
}

/// "3 licenses", "1 source", "2 languages".
pub(crate) fn plural_facet(facet: &str, n: usize) -> String {
    let noun = facet_noun(facet).to_lowercase();
    let noun = match noun.as_str() {
        "class" => "license class".to_string(),
        _ => noun,
    };
    match (n, noun.as_str()) {
        (1, _) => noun,
        (_, n) if n.ends_with("ss") => format!("{n}es"),
        (_, n) => format!("{n}s"),
    }
}

fn policy(o: &mut String, d: &Datasheet, p: &PolicySummary) {
    let _ = writeln!(o, "## License policy\n");
    if !p.set {
        let _ = writeln!(
            o,
            "No license policy is set: every license class is allowed.\n"
        );
    } else {
        let classes: Vec<String> = p.allowed_classes.iter().map(|c| code(c)).collect();
        let _ = writeln!(o, "Allowed classes: {}.\n", classes.join(", "));
    }
    let held = &p.held_back;
    if held.docs == 0 {
        let _ = writeln!(o, "The policy held nothing back.\n");
        return;
    }
    if p.overridden {
        let _ = writeln!(
            o,
            "**Policy overridden** (`--override-policy`): the {} documents it would hold back are counted in this datasheet.\n",
            fmt_int(held.docs)
        );
    }
    let matched = d.totals.docs + if p.overridden { 0 } else { held.docs };
    let _ = writeln!(
        o,
        "**{}:** {} documents ({} of what the selection matched), {}, {} tokens.\n",
        if p.overridden {
            "Held back without the override"
        } else {
            "Held back"
        },
        fmt_int(held.docs),
        fmt_pct(held.docs, matched),
        fmt_bytes(held.bytes),
        fmt_tokens(held.tokens)
    );
    if !p.held_back_licenses.is_empty() {
        table_head(
            o,
            &["License", "Class", "Documents", "Bytes", "Tokens"],
            &[false, false, true, true, true],
        );
        for r in &p.held_back_licenses {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} |",
                cell(&r.value),
                cell(r.class.as_deref().unwrap_or("")),
                fmt_int(r.counts.docs),
                fmt_bytes(r.counts.bytes),
                fmt_tokens(r.counts.tokens)
            );
        }
        o.push('\n');
    }
}

fn breakdown(o: &mut String, d: &Datasheet, b: &Breakdown) {
    let _ = writeln!(o, "## {}\n", facet_title(&b.facet));
    if b.rows.is_empty() {
        let _ = writeln!(o, "Nothing to show.\n");
        return;
    }
    let with_class = b.rows.iter().any(|r| r.class.is_some());
    let mut head = vec![facet_noun(&b.facet)];
    let mut right = vec![false];
    if with_class {
        head.push("Class".into());
        right.push(false);
    }
    head.extend(
        [
            "Documents",
            "% docs",
            "Bytes",
            "% bytes",
            "Tokens",
            "% tokens",
        ]
        .map(String::from),
    );
    right.extend([true; 6]);
    let head: Vec<&str> = head.iter().map(String::as_str).collect();
    table_head(o, &head, &right);
    let t = &d.totals;
    for r in b.rows.iter().take(MAX_TABLE_ROWS) {
        let c = &r.counts;
        let _ = write!(o, "| {} |", cell(&r.value));
        if with_class {
            let _ = write!(o, " {} |", cell(r.class.as_deref().unwrap_or("")));
        }
        let _ = writeln!(
            o,
            " {} | {} | {} | {} | {} | {} |",
            fmt_int(c.docs),
            fmt_pct(c.docs, t.docs),
            fmt_bytes(c.bytes),
            fmt_pct(c.bytes, t.bytes),
            fmt_tokens(c.tokens),
            match (c.tokens, t.tokens) {
                (Some(a), Some(b)) => fmt_pct(a, b),
                _ => "\u{2013}".into(),
            }
        );
    }
    cut_note(o, b.rows.len());
    o.push('\n');
}

fn attributions(o: &mut String, a: &[Attribution]) {
    let _ = writeln!(o, "## Attributions\n");
    if a.is_empty() {
        let _ = writeln!(
            o,
            "No source in this selection has a license that requires attribution.\n"
        );
        return;
    }
    let _ = writeln!(
        o,
        "These sources' licenses require attribution: credit them when you distribute data or models made from this selection.\n"
    );
    table_head(
        o,
        &[
            "Source",
            "License",
            "Documents",
            "Attribution",
            "Without attribution",
        ],
        &[false, false, true, false, true],
    );
    for e in a.iter().take(MAX_TABLE_ROWS) {
        let credits: Vec<String> = e.attributions.iter().map(|s| cell(s)).collect();
        let credits = if credits.is_empty() {
            "*(none given)*".to_string()
        } else {
            credits.join("<br>")
        };
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} |",
            cell(&e.source),
            cell(&e.license_id),
            fmt_int(e.docs),
            credits,
            if e.missing > 0 {
                format!("**{}**", fmt_int(e.missing))
            } else {
                "0".into()
            }
        );
    }
    cut_note(o, a.len());
    o.push('\n');
}

fn ingest_log(o: &mut String, log: &[IngestEntry]) {
    let _ = writeln!(o, "## Ingest log\n");
    if log.is_empty() {
        let _ = writeln!(o, "No ingest log was recorded.\n");
        return;
    }
    table_head(
        o,
        &[
            "File",
            "Size",
            "XXH3-128",
            "Started",
            "Took",
            "Added",
            "Rejected",
            "Generation",
        ],
        &[false, true, false, false, true, true, true, true],
    );
    for e in log.iter().take(MAX_TABLE_ROWS) {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            cell(&e.file),
            fmt_bytes(e.size),
            code(&e.xxh3_128),
            fmt_time(e.started_unix),
            fmt_duration(e.finished_unix.saturating_sub(e.started_unix)),
            fmt_int(e.docs_added),
            fmt_int(e.rejected),
            e.generation
        );
    }
    cut_note(o, log.len());
    o.push('\n');
}

fn withdrawal_log(o: &mut String, log: &[WithdrawalLogEntry]) {
    let _ = writeln!(o, "## Withdrawal log\n");
    let _ = writeln!(
        o,
        "Every `delete` of the corpus, with what it withdrew from the whole corpus (kept after `compact`).\n"
    );
    table_head(
        o,
        &[
            "Generation",
            "Date",
            "Delete",
            "Documents",
            "Bytes",
            "Licenses",
            "Sources",
            "Documents in the files",
        ],
        &[true, false, false, true, true, false, false, false],
    );
    for e in log.iter().take(MAX_TABLE_ROWS) {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            e.generation,
            fmt_time(e.unix),
            code(&e.query),
            fmt_int(e.withdrawn.docs),
            fmt_bytes(e.withdrawn.bytes),
            cell(&top_values(&e.by_license, 5)),
            cell(&top_values(&e.by_source, 5)),
            if e.compacted {
                "dropped by compact"
            } else {
                "tombstoned"
            }
        );
    }
    cut_note(o, log.len());
    o.push('\n');
}

fn withdrawal(o: &mut String, w: &Withdrawal) {
    let _ = writeln!(
        o,
        "## Withdrawal: generation {} → {}\n",
        w.from_generation, w.to_generation
    );
    table_head(
        o,
        &["", "Before", "After", "Change", "%"],
        &[false, true, true, true, true],
    );
    let (b, a) = (&w.before, &w.after);
    let _ = writeln!(
        o,
        "| Documents | {} | {} | {} | {} |",
        fmt_int(b.docs),
        fmt_int(a.docs),
        fmt_delta(b.docs, a.docs),
        pct_change(b.docs, a.docs)
    );
    let _ = writeln!(
        o,
        "| Bytes | {} | {} | {} | {} |",
        fmt_bytes(b.bytes),
        fmt_bytes(a.bytes),
        fmt_delta(b.bytes, a.bytes),
        pct_change(b.bytes, a.bytes)
    );
    if let (Some(tb), Some(ta)) = (b.tokens, a.tokens) {
        let _ = writeln!(
            o,
            "| Tokens | {} | {} | {} | {} |",
            fmt_int(tb),
            fmt_int(ta),
            fmt_delta(tb, ta),
            pct_change(tb, ta)
        );
    }
    o.push('\n');
    for (title, noun, rows) in [
        ("By license", "License", &w.by_license),
        ("By source", "Source", &w.by_source),
    ] {
        if rows.is_empty() {
            continue;
        }
        let _ = writeln!(o, "### {title}\n");
        table_head(
            o,
            &[
                noun,
                "Docs before",
                "Docs after",
                "Change",
                "Bytes change",
                "Tokens before",
                "Tokens after",
                "Tokens change",
            ],
            &[false, true, true, true, true, true, true, true],
        );
        for r in diff_order(rows).into_iter().take(MAX_TABLE_ROWS) {
            let tokens_change = match (r.before.tokens, r.after.tokens) {
                (Some(x), Some(y)) => fmt_delta(x, y),
                _ => "\u{2013}".into(),
            };
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                cell(&r.value),
                fmt_int(r.before.docs),
                fmt_int(r.after.docs),
                fmt_delta(r.before.docs, r.after.docs),
                fmt_delta(r.before.bytes, r.after.bytes),
                fmt_tokens(r.before.tokens),
                fmt_tokens(r.after.tokens),
                tokens_change
            );
        }
        cut_note(o, rows.len());
        o.push('\n');
    }
}

/// Diff rows with the largest change in documents first, then the largest.
pub(crate) fn diff_order(rows: &[DiffRow]) -> Vec<&DiffRow> {
    let mut v: Vec<&DiffRow> = rows.iter().collect();
    v.sort_by(|x, y| {
        let dx = x.before.docs.abs_diff(x.after.docs);
        let dy = y.before.docs.abs_diff(y.after.docs);
        dy.cmp(&dx)
            .then(y.before.docs.cmp(&x.before.docs))
            .then(x.value.cmp(&y.value))
    });
    v
}

/// `−12.3%` change from `before` to `after`.
pub(crate) fn pct_change(before: u64, after: u64) -> String {
    if before == 0 {
        return if after == 0 {
            "0%".into()
        } else {
            "new".into()
        };
    }
    let s = fmt_share(before.abs_diff(after) as f64 / before as f64);
    match after.cmp(&before) {
        std::cmp::Ordering::Less => format!("\u{2212}{s}"),
        std::cmp::Ordering::Greater => format!("+{s}"),
        std::cmp::Ordering::Equal => "0%".into(),
    }
}

fn signals(o: &mut String, signals: &[SignalSummary]) {
    let _ = writeln!(o, "## Signals\n");
    for s in signals {
        let scope = s
            .source
            .as_deref()
            .map_or_else(|| "all sources".to_string(), text);
        let _ = writeln!(
            o,
            "### {} (version {}) — {}\n",
            text(&s.name),
            text(&s.version),
            scope
        );
        let total = s.tagged + s.missing;
        let _ = writeln!(
            o,
            "{} documents tagged, {} without a value ({}).\n",
            fmt_int(s.tagged),
            fmt_int(s.missing),
            fmt_pct(s.missing, total)
        );
        if !s.quantiles.is_empty() {
            let head: Vec<String> = s.quantiles.iter().map(|(q, _)| fmt_quantile(*q)).collect();
            let head: Vec<&str> = head.iter().map(String::as_str).collect();
            table_head(o, &head, &vec![true; head.len()]);
            let values: Vec<String> = s.quantiles.iter().map(|(_, v)| fmt_num(*v)).collect();
            let _ = writeln!(o, "| {} |\n", values.join(" | "));
        }
        if !s.thresholds.is_empty() {
            table_head(
                o,
                &["Rule", "From", "Removes", "Share"],
                &[false, false, true, true],
            );
            for t in &s.thresholds {
                let _ = writeln!(
                    o,
                    "| {} | {} | {} | {} |",
                    code(&t.rule),
                    cell(&t.source),
                    fmt_int(t.removed_docs),
                    fmt_share(t.removed_share)
                );
            }
            o.push('\n');
        }
    }
}

fn cut_note(o: &mut String, len: usize) {
    if len > MAX_TABLE_ROWS {
        let _ = writeln!(
            o,
            "\n*… and {} more rows in the JSON report.*",
            fmt_int((len - MAX_TABLE_ROWS) as u64)
        );
    }
}

fn table_head(o: &mut String, head: &[&str], right: &[bool]) {
    let _ = writeln!(o, "| {} |", head.join(" | "));
    let align: Vec<&str> = right
        .iter()
        .map(|&r| if r { "---:" } else { "---" })
        .collect();
    let _ = writeln!(o, "|{}|", align.join("|"));
}

/// Text safe to put in Markdown: characters that would start markup,
/// raw HTML or a link are backslash-escaped; line breaks become spaces.
pub(crate) fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' | '`' | '*' | '<' | '>' | '[' | ']' | '#' | '|' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' | '\t' => out.push(' '),
            c if c.is_control() => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// A table cell: like [`text`], and never empty-looking.
fn cell(s: &str) -> String {
    if s.is_empty() {
        "\u{2013}".into()
    } else {
        text(s)
    }
}

/// Inline code that holds any text (even backticks); pipes escaped for tables.
fn code(s: &str) -> String {
    let s: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let s = s.replace('|', "\\|");
    let mut fence = "`".to_string();
    while s.contains(fence.as_str()) {
        fence.push('`');
    }
    let pad = if s.starts_with('`') || s.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{s}{pad}{fence}")
}

#[cfg(test)]
mod tests {
    use super::super::tests::sample;
    use super::*;

    #[test]
    fn every_section_with_the_right_numbers() {
        let md = to_markdown(&sample());
        for heading in [
            "# Datasheet: lang=fr",
            "## Notes",
            "## Totals",
            "## License policy",
            "## Withdrawal: generation 6 → 7",
            "## Signals",
            "## By license",
            "## By source",
            "## Attributions",
            "## Ingest log",
        ] {
            assert!(
                md.lines()
                    .any(|l| l == heading || l.starts_with(&format!("{heading} "))),
                "missing {heading}:\n{md}"
            );
        }
        // Totals with human units and exact bytes.
        assert!(
            md.contains("| Selected | 12,345 | 43.6 MiB (45,678,901) | 9,876,543 |"),
            "{md}"
        );
        // License rows with shares: 10,000 of 12,345 docs is 81.0%.
        assert!(md.contains("| cc-by-4.0 | attribution | 10,000 | 81.0% | 38.1 MiB | 87.6% | 8,000,000 | 81.0% |"), "{md}");
        // Escaping: the pipe in a source name cannot split the table, nor HTML leak.
        assert!(md.contains("wiki\\|pedia"), "{md}");
        assert!(!md.contains("<script>"), "{md}");
        // Policy, withdrawal, attribution, ingest log, signal.
        assert!(
            md.contains("**Held back:** 55 documents (0.4% of what the selection matched)"),
            "{md}"
        );
        assert!(
            md.contains("| Documents | 12,400 | 12,345 | \u{2212}55 | \u{2212}0.4% |"),
            "{md}"
        );
        assert!(md.contains("Wikipedia contributors & \"friends\""), "{md}");
        assert!(md.contains("| **3** |"), "{md}");
        assert!(md.contains("`0123456789abcdef0123456789abcdef`"), "{md}");
        assert!(
            md.contains("2024-03-01 12:26 UTC | 1 min 40 s | 12,400 | 2 | 6 |"),
            "{md}"
        );
        assert!(md.contains("| min | p50 | max |"), "{md}");
        assert!(md.contains("| 3 | 420 | 98,765 |"), "{md}");
        assert!(
            md.contains("| `rps_doc_word_count < 50` | Gopher | 700 | 5.8% |"),
            "{md}"
        );
        // Every table row has as many cells as its header.
        let mut width = None;
        for line in md.lines() {
            if line.starts_with('|') {
                let cells = line.replace("\\|", "").matches('|').count();
                let w = *width.get_or_insert(cells);
                assert_eq!(cells, w, "ragged table row: {line}");
            } else {
                width = None;
            }
        }
    }

    #[test]
    fn empty_datasheet_renders() {
        let md = to_markdown(&Datasheet::default());
        assert!(md.contains("## Totals"));
        assert!(md.contains("No source in this selection has a license that requires attribution."));
        assert!(md.contains("No ingest log was recorded."));
        assert!(!md.contains("## Signals"));
    }

    #[test]
    fn code_spans_hold_backticks() {
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(code("x|y"), "`x\\|y`");
        assert_eq!(text("<b>*x*</b>"), "\\<b\\>\\*x\\*\\</b\\>");
    }
}
