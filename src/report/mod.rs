//! Datasheets: what a query or mixture holds, by license, class, source and
//! language, with the ingest log, the attributions owed, what a withdrawal
//! changed and (for `tag report`) how quality signals are distributed.
//!
//! This module owns the [`Datasheet`] data structure, its computation from
//! a corpus ([`datasheet::license_datasheet`] for `corpusql report`,
//! [`datasheet::signal_datasheet`] for `corpusql tag report`) and its three
//! renderings: [`to_json`] (every number, for machines), [`to_markdown`]
//! (tables readable in a terminal or on GitHub) and [`to_html`] (one
//! self-contained page with inline SVG charts, no network access). The renderers compute nothing from
//! a corpus; [`summarize`] is the one helper that turns raw signal values
//! into quantiles and a histogram.

pub(crate) mod datasheet;
mod html;
mod markdown;

use serde::{Deserialize, Serialize};

pub use html::to_html;
pub use markdown::to_markdown;

/// Everything a report shows, filled by the caller and rendered by
/// [`to_json`], [`to_markdown`] and [`to_html`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Datasheet {
    /// Heading of the report, e.g. "Datasheet: lang=fr".
    pub title: String,
    /// When the report was made, seconds since the Unix epoch.
    pub generated_unix: u64,
    /// The corpus directory or name.
    pub corpus: String,
    /// The catalog generation the numbers were read from.
    pub generation: u64,
    /// The query text or mixture file name the report describes.
    pub selection: String,
    /// What tokens were counted with: "bytes" or a tokenizer id.
    pub tokenizer: String,
    /// Totals of the selection (after the license policy, if one is set).
    pub totals: Counts,
    /// Breakdowns by facet, rendered in this order; usually "license_id",
    /// "license_class", "source", "lang".
    pub breakdowns: Vec<Breakdown>,
    /// The license policy applied to the selection, if any.
    pub policy: Option<PolicySummary>,
    /// One entry per (source, license) whose license requires attribution.
    pub attributions: Vec<Attribution>,
    /// The files ingested into the corpus, oldest first.
    pub ingest_log: Vec<IngestEntry>,
    /// What changed between two generations after a deletion.
    pub withdrawal: Option<Withdrawal>,
    /// Every `delete` of the corpus, from the record it kept (also after
    /// `compact` dropped the documents), oldest first.
    #[serde(default)]
    pub withdrawal_log: Vec<WithdrawalLogEntry>,
    /// Signal distributions; empty for a license report, filled by `tag report`.
    pub signals: Vec<SignalSummary>,
    /// Warnings for the reader, e.g. documents with unknown licenses.
    pub notes: Vec<String>,
    /// For a mixture: its training set per component and phase (the
    /// totals and breakdowns then describe exactly the documents and tokens
    /// its stream emits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training: Option<crate::train::training::TrainingSummary>,
}

/// Documents, bytes and tokens of a set of documents.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Number of documents.
    pub docs: u64,
    /// Bytes of text.
    pub bytes: u64,
    /// Tokens, when a tokenizer was run (None: not counted).
    pub tokens: Option<u64>,
}

/// The selection split by the values of one facet.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Breakdown {
    /// The facet: "license_id", "license_class", "source", "lang" or another field.
    pub facet: String,
    /// One row per value, sorted by documents, most first.
    pub rows: Vec<BreakdownRow>,
}

/// One value of a facet and what the selection holds with it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BreakdownRow {
    /// The facet value (a license id, a class name, a source, a language).
    pub value: String,
    /// Documents, bytes and tokens with this value.
    pub counts: Counts,
    /// The license class, when the facet is "license_id".
    pub class: Option<String>,
}

/// The license policy and what it kept out of the selection.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PolicySummary {
    /// The license classes the policy allows.
    pub allowed_classes: Vec<String>,
    /// Whether a policy was set (false: the default, which allows everything).
    pub set: bool,
    /// Whether the report was asked to include what the policy holds back
    /// (`--override-policy`): the totals then count it too.
    #[serde(default)]
    pub overridden: bool,
    /// What the query matched but the policy held back (not in the totals).
    pub held_back: Counts,
    /// The held-back documents by license id, most first.
    pub held_back_licenses: Vec<BreakdownRow>,
}

/// Credit owed to one source under one license that requires attribution.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Attribution {
    /// The source.
    pub source: String,
    /// The license id that requires attribution.
    pub license_id: String,
    /// Documents of this source under this license.
    pub docs: u64,
    /// Distinct attribution strings found on those documents (capped by the caller).
    pub attributions: Vec<String>,
    /// Documents that carry no attribution string.
    pub missing: u64,
}

/// One ingested file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestEntry {
    /// The file's path or name as given to ingest.
    pub file: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its XXH3-128 hash, in hex.
    pub xxh3_128: String,
    /// When ingest of the file started, seconds since the Unix epoch.
    pub started_unix: u64,
    /// When it finished, seconds since the Unix epoch.
    pub finished_unix: u64,
    /// Documents added from it.
    pub docs_added: u64,
    /// Records rejected from it.
    pub rejected: u64,
    /// The generation its commit produced.
    pub generation: u64,
}

/// What changed between two generations, e.g. after `delete "source=X"`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Withdrawal {
    /// The earlier generation.
    pub from_generation: u64,
    /// The later generation.
    pub to_generation: u64,
    /// Totals in the earlier generation.
    pub before: Counts,
    /// Totals in the later generation.
    pub after: Counts,
    /// Before and after by license id.
    pub by_license: Vec<DiffRow>,
    /// Before and after by source.
    pub by_source: Vec<DiffRow>,
}

/// One `delete`: when, what query, and what it withdrew from the whole
/// corpus (not only from the report's selection).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WithdrawalLogEntry {
    /// The generation the delete created.
    pub generation: u64,
    /// When, seconds since the Unix epoch.
    pub unix: u64,
    /// The delete's query.
    pub query: String,
    /// Documents and bytes withdrawn (tokens are not recorded).
    pub withdrawn: Counts,
    /// Withdrawn documents and bytes by license id.
    pub by_license: Vec<BreakdownRow>,
    /// Withdrawn documents and bytes by source.
    pub by_source: Vec<BreakdownRow>,
    /// Whether a later `compact` dropped the documents from the files (the
    /// before/after comparison then no longer includes this delete).
    pub compacted: bool,
}

/// One facet value before and after a change.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DiffRow {
    /// The facet value.
    pub value: String,
    /// Counts in the earlier generation.
    pub before: Counts,
    /// Counts in the later generation.
    pub after: Counts,
}

/// The distribution of one quality signal, over all sources or one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SignalSummary {
    /// Signal name, e.g. "rps_doc_word_count".
    pub name: String,
    /// Version of the tagger that computed it.
    pub version: String,
    /// The source these numbers cover (None: all sources).
    pub source: Option<String>,
    /// Documents with a value.
    pub tagged: u64,
    /// Documents without one.
    pub missing: u64,
    /// (quantile in 0..=1, value) pairs, quantiles ascending.
    pub quantiles: Vec<(f64, f64)>,
    /// Histogram of the values.
    pub histogram: Histogram,
    /// What common thresholds on this signal would remove.
    pub thresholds: Vec<ThresholdImpact>,
}

/// Counts of values in consecutive bins.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// Bin edges, ascending: n + 1 of them for n bins.
    pub edges: Vec<f64>,
    /// Values per bin: bin `i` covers `edges[i]..edges[i + 1]` (the last bin
    /// includes its upper edge).
    pub counts: Vec<u64>,
}

/// What one filtering rule would remove.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ThresholdImpact {
    /// The rule, e.g. "rps_doc_word_count < 50"; the charts draw a line at
    /// each number that follows a comparison operator.
    pub rule: String,
    /// Where the rule comes from, e.g. "Gopher".
    pub source: String,
    /// Documents the rule would remove.
    pub removed_docs: u64,
    /// The removed documents as a share (0..=1) of the tagged ones.
    pub removed_share: f64,
}

/// The datasheet as pretty-printed JSON, every number included.
pub fn to_json(d: &Datasheet) -> String {
    // Serializing plain structs of strings and numbers cannot fail; non-finite
    // floats become `null`.
    serde_json::to_string_pretty(d).expect("a Datasheet always serializes")
}

/// The quantiles [`summarize`] reports.
pub const QUANTILES: [f64; 11] = [0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0];

/// Quantiles ([`QUANTILES`], linearly interpolated) and a histogram of
/// `bins` equal bins between the minimum and the maximum of `values`
/// (NaN-free; the slice is sorted in place). All-equal values get bins
/// centred on the value, one unit wide in all; no values give empty results.
pub fn summarize(values: &mut [f64], bins: usize) -> (Vec<(f64, f64)>, Histogram) {
    summarize_in(values, bins, None)
}

/// [`summarize`] with an optional histogram range `(lo, hi)`: values outside
/// it are counted in the first or last bin, so the counts still add up to
/// `values.len()`. Useful for fractions (0..1) or to keep a long tail from
/// squeezing every other bin into one.
pub fn summarize_in(
    values: &mut [f64],
    bins: usize,
    range: Option<(f64, f64)>,
) -> (Vec<(f64, f64)>, Histogram) {
    if values.is_empty() {
        return (Vec::new(), Histogram::default());
    }
    values.sort_unstable_by(f64::total_cmp);
    let quantiles = QUANTILES
        .iter()
        .map(|&q| (q, quantile_sorted(values, q)))
        .collect();
    let bins = bins.max(1);
    let (mut lo, mut hi) = range.unwrap_or((values[0], values[values.len() - 1]));
    if hi < lo {
        std::mem::swap(&mut lo, &mut hi);
    }
    if hi == lo {
        lo -= 0.5;
        hi += 0.5;
    }
    let width = (hi - lo) / bins as f64;
    let edges: Vec<f64> = (0..=bins)
        .map(|i| if i == bins { hi } else { lo + width * i as f64 })
        .collect();
    let mut counts = vec![0u64; bins];
    for &v in values.iter() {
        let i = ((v - lo) / width).floor();
        let i = if i.is_nan() || i < 0.0 {
            0
        } else {
            (i as usize).min(bins - 1)
        };
        counts[i] += 1;
    }
    (quantiles, Histogram { edges, counts })
}

/// The `q` quantile of sorted, non-empty values, interpolating linearly
/// between the two nearest ranks (the "type 7" definition).
fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let below = pos.floor() as usize;
    let above = pos.ceil() as usize;
    let frac = pos - below as f64;
    sorted[below] + (sorted[above] - sorted[below]) * frac
}

// ---------------------------------------------------------------------------
// Formatting shared by the Markdown and HTML renderings.

/// The license classes in display order (most to least permissive), each
/// with the colour every chart gives it.
pub(crate) const CLASS_COLOURS: [(&str, &str); 9] = [
    ("public-domain", "#0f766e"),
    ("permissive", "#16a34a"),
    ("attribution", "#84cc16"),
    ("share-alike", "#eab308"),
    ("copyleft", "#f97316"),
    ("non-commercial", "#dc2626"),
    ("no-derivatives", "#9333ea"),
    ("proprietary", "#475569"),
    ("unknown", "#a8a29e"),
];

/// The colour of a class this module does not know.
pub(crate) const OTHER_CLASS_COLOUR: &str = "#cbd5e1";

/// `public_domain`, `Public Domain` and `public-domain` all name one class.
pub(crate) fn normalize_class(class: &str) -> String {
    class
        .trim()
        .chars()
        .map(|c| {
            if c == '_' || c == ' ' {
                '-'
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

/// The chart colour of a license class.
pub(crate) fn class_colour(class: &str) -> &'static str {
    let class = normalize_class(class);
    CLASS_COLOURS
        .iter()
        .find(|(name, _)| *name == class)
        .map_or(OTHER_CLASS_COLOUR, |(_, colour)| colour)
}

/// Sort key of a class: its place in [`CLASS_COLOURS`], unknown names last.
pub(crate) fn class_rank(class: &str) -> usize {
    let class = normalize_class(class);
    CLASS_COLOURS
        .iter()
        .position(|(name, _)| *name == class)
        .unwrap_or(CLASS_COLOURS.len())
}

/// A heading for a facet's section.
pub(crate) fn facet_title(facet: &str) -> String {
    match facet {
        "license_id" | "license" => "By license".into(),
        "license_class" => "By license class".into(),
        "source" => "By source".into(),
        "lang" | "language" => "By language".into(),
        other => format!("By {}", other.replace('_', " ")),
    }
}

/// The singular noun for one value of a facet, for table headers.
pub(crate) fn facet_noun(facet: &str) -> String {
    match facet {
        "license_id" | "license" => "License".into(),
        "license_class" => "Class".into(),
        "source" => "Source".into(),
        "lang" | "language" => "Language".into(),
        other => {
            let mut s = other.replace('_', " ");
            if let Some(first) = s.get(..1) {
                s.replace_range(..1, &first.to_ascii_uppercase());
            }
            s
        }
    }
}

/// `value (docs)` for the first `n` rows, then how many more (the
/// withdrawal log's license and source cells).
pub(crate) fn top_values(rows: &[BreakdownRow], n: usize) -> String {
    let mut parts: Vec<String> = rows
        .iter()
        .take(n)
        .map(|r| format!("{} ({})", r.value, fmt_int(r.counts.docs)))
        .collect();
    if rows.len() > n {
        parts.push(format!("+{} more", rows.len() - n));
    }
    parts.join(", ")
}

/// `1234567` as `1,234,567`.
pub(crate) fn fmt_int(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A signed difference with an explicit sign (a true minus sign).
pub(crate) fn fmt_delta(before: u64, after: u64) -> String {
    match after.cmp(&before) {
        std::cmp::Ordering::Equal => "0".into(),
        std::cmp::Ordering::Greater => format!("+{}", fmt_int(after - before)),
        std::cmp::Ordering::Less => format!("\u{2212}{}", fmt_int(before - after)),
    }
}

/// A byte count in binary units: `512 B`, `1.50 KiB`, `12.3 MiB`, `456 GiB`.
pub(crate) fn fmt_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{} {}", three_digits(v), UNITS[unit])
}

/// A count in short form for chart labels: `950`, `12.3k`, `4.56M`, `1.20B`.
pub(crate) fn fmt_compact(n: u64) -> String {
    const UNITS: [(&str, f64); 4] = [("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)];
    for (unit, scale) in UNITS {
        if n as f64 >= scale {
            return format!("{}{unit}", three_digits(n as f64 / scale));
        }
    }
    n.to_string()
}

/// About three significant digits.
fn three_digits(v: f64) -> String {
    if v < 10.0 {
        format!("{v:.2}")
    } else if v < 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

/// `part` as a percentage of `whole`: `41.2%`, `<0.1%`, `100%`; `–` when
/// the whole is zero.
pub(crate) fn fmt_pct(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "\u{2013}".into();
    }
    fmt_share(part as f64 / whole as f64)
}

/// A share in 0..=1 as a percentage.
pub(crate) fn fmt_share(share: f64) -> String {
    if !share.is_finite() {
        return "\u{2013}".into();
    }
    let pct = share * 100.0;
    if pct == 0.0 || pct == 100.0 {
        format!("{pct:.0}%")
    } else if pct.abs() < 0.1 {
        "<0.1%".into()
    } else if pct > 99.9 && pct < 100.0 {
        ">99.9%".into()
    } else {
        format!("{pct:.1}%")
    }
}

/// A signal value: integers with thousands separators, other values with
/// four significant digits.
pub(crate) fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    if v == v.trunc() && v.abs() < 1e15 {
        let s = fmt_int(v.abs() as u64);
        return if v < 0.0 { format!("-{s}") } else { s };
    }
    let magnitude = v.abs().log10().floor() as i32;
    if !(-4..15).contains(&magnitude) {
        return format!("{v:.2e}");
    }
    let decimals = (3 - magnitude).clamp(0, 8) as usize;
    let s = format!("{v:.decimals$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    if v.abs() >= 1000.0 {
        // Group the integer part like fmt_int does.
        let (int, frac) = s
            .split_once('.')
            .map_or((s.as_str(), None), |(i, f)| (i, Some(f)));
        let neg = int.starts_with('-');
        let grouped = fmt_int(int.trim_start_matches('-').parse().unwrap_or(0));
        let mut out = if neg { format!("-{grouped}") } else { grouped };
        if let Some(f) = frac {
            out.push('.');
            out.push_str(f);
        }
        return out;
    }
    s
}

/// A quantile as a label: `min`, `p1`, `p50`, `max`, `p99.9`.
pub(crate) fn fmt_quantile(q: f64) -> String {
    if q <= 0.0 {
        "min".into()
    } else if q >= 1.0 {
        "max".into()
    } else {
        let p = q * 100.0;
        if (p - p.round()).abs() < 1e-9 {
            format!("p{}", p.round() as u64)
        } else {
            format!("p{}", fmt_num((p * 1000.0).round() / 1000.0))
        }
    }
}

/// Seconds since the epoch as `2024-03-01 12:34 UTC`.
pub(crate) fn fmt_time(unix: u64) -> String {
    let (date, time) = date_time(unix);
    format!("{date} {time} UTC")
}

/// Seconds since the epoch as (`YYYY-MM-DD`, `HH:MM`), UTC.
pub(crate) fn date_time(unix: u64) -> (String, String) {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    // Civil date from days since 1970-01-01 (the proleptic Gregorian
    // calendar, counted in 400-year eras of 146 097 days from 0000-03-01).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        format!("{year:04}-{month:02}-{day:02}"),
        format!("{:02}:{:02}", secs / 3600, secs % 3600 / 60),
    )
}

/// A duration in seconds as `45 s`, `3 min 20 s`, `2 h 05 min`.
pub(crate) fn fmt_duration(secs: u64) -> String {
    if secs < 60 {
        format!("{secs} s")
    } else if secs < 3600 {
        format!("{} min {:02} s", secs / 60, secs % 60)
    } else {
        format!("{} h {:02} min", secs / 3600, secs % 3600 / 60)
    }
}

/// The measure shown next to documents: tokens when every count has them,
/// else bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Measure {
    Tokens,
    Bytes,
}

impl Measure {
    /// Tokens if the totals carry them.
    pub(crate) fn of(d: &Datasheet) -> Measure {
        if d.totals.tokens.is_some() {
            Measure::Tokens
        } else {
            Measure::Bytes
        }
    }
    /// The amount of this measure in `c` (missing tokens count as zero).
    pub(crate) fn get(self, c: &Counts) -> u64 {
        match self {
            Measure::Tokens => c.tokens.unwrap_or(0),
            Measure::Bytes => c.bytes,
        }
    }
    /// "tokens" or "bytes".
    pub(crate) fn name(self) -> &'static str {
        match self {
            Measure::Tokens => "tokens",
            Measure::Bytes => "bytes",
        }
    }
    /// The amount formatted for a label.
    pub(crate) fn fmt_short(self, n: u64) -> String {
        match self {
            Measure::Tokens => fmt_compact(n),
            Measure::Bytes => fmt_bytes(n),
        }
    }
}

/// Optional tokens as text: the count, or `–`.
pub(crate) fn fmt_tokens(t: Option<u64>) -> String {
    t.map_or_else(|| "\u{2013}".into(), fmt_int)
}

/// The numbers in a threshold rule that follow a comparison operator, with
/// the operator: `"x < 50 or x > 1e5"` gives `[("<", 50), (">", 100000)]`.
pub(crate) fn rule_cuts(rule: &str) -> Vec<(&'static str, f64)> {
    const OPS: [&str; 7] = ["<=", ">=", "==", "!=", "<", ">", "="];
    let mut out = Vec::new();
    let mut rest = rule;
    while let Some(pos) = rest.find(['<', '>', '=', '!']) {
        let tail = &rest[pos..];
        let Some(op) = OPS.iter().find(|op| tail.starts_with(**op)) else {
            rest = &rest[pos + 1..];
            continue;
        };
        let after = tail[op.len()..].trim_start();
        let end = after
            .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E' | '_')))
            .unwrap_or(after.len());
        if let Ok(v) = after[..end].replace('_', "").parse::<f64>() {
            out.push((*op, v));
        }
        rest = &tail[op.len()..];
    }
    out
}

/// The top `n` rows of a breakdown and, when more remain, the sum of the rest
/// with how many values it merges.
pub(crate) fn top_rows(
    rows: &[BreakdownRow],
    n: usize,
) -> (Vec<&BreakdownRow>, Option<(usize, Counts)>) {
    if rows.len() <= n {
        return (rows.iter().collect(), None);
    }
    let (top, rest) = rows.split_at(n.saturating_sub(1));
    let other = Counts {
        docs: rest.iter().map(|r| r.counts.docs).sum(),
        bytes: rest.iter().map(|r| r.counts.bytes).sum(),
        tokens: rest.iter().map(|r| r.counts.tokens).sum(),
    };
    (top.iter().collect(), Some((rest.len(), other)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small but complete datasheet for the renderers' tests.
    pub(crate) fn sample() -> Datasheet {
        let c = |docs, bytes, tokens| Counts {
            docs,
            bytes,
            tokens: Some(tokens),
        };
        Datasheet {
            title: "Datasheet: lang=fr".into(),
            generated_unix: 1_709_296_440, // 2024-03-01 12:34 UTC
            corpus: "/data/corpus".into(),
            generation: 7,
            selection: "lang=fr".into(),
            tokenizer: "bytes".into(),
            totals: c(12_345, 45_678_901, 9_876_543),
            breakdowns: vec![
                Breakdown {
                    facet: "license_id".into(),
                    rows: vec![
                        BreakdownRow {
                            value: "cc-by-4.0".into(),
                            counts: c(10_000, 40_000_000, 8_000_000),
                            class: Some("attribution".into()),
                        },
                        BreakdownRow {
                            value: "<script>alert(1)</script>".into(),
                            counts: c(2_345, 5_678_901, 1_876_543),
                            class: Some("unknown".into()),
                        },
                    ],
                },
                Breakdown {
                    facet: "source".into(),
                    rows: vec![BreakdownRow {
                        value: "wiki|pedia".into(),
                        counts: c(12_345, 45_678_901, 9_876_543),
                        class: None,
                    }],
                },
            ],
            policy: Some(PolicySummary {
                allowed_classes: vec!["public-domain".into(), "attribution".into()],
                set: true,
                overridden: false,
                held_back: c(55, 1000, 200),
                held_back_licenses: vec![BreakdownRow {
                    value: "cc-by-nc-4.0".into(),
                    counts: c(55, 1000, 200),
                    class: Some("non-commercial".into()),
                }],
            }),
            attributions: vec![Attribution {
                source: "wiki|pedia".into(),
                license_id: "cc-by-4.0".into(),
                docs: 10_000,
                attributions: vec!["Wikipedia contributors & \"friends\"".into()],
                missing: 3,
            }],
            ingest_log: vec![IngestEntry {
                file: "fr/wiki.jsonl.zst".into(),
                size: 3_000_000,
                xxh3_128: "0123456789abcdef0123456789abcdef".into(),
                started_unix: 1_709_296_000,
                finished_unix: 1_709_296_100,
                docs_added: 12_400,
                rejected: 2,
                generation: 6,
            }],
            withdrawal: Some(Withdrawal {
                from_generation: 6,
                to_generation: 7,
                before: c(12_400, 46_000_000, 9_900_000),
                after: c(12_345, 45_678_901, 9_876_543),
                by_license: vec![DiffRow {
                    value: "cc-by-4.0".into(),
                    before: c(10_055, 40_321_099, 8_023_457),
                    after: c(10_000, 40_000_000, 8_000_000),
                }],
                by_source: vec![DiffRow {
                    value: "wiki|pedia".into(),
                    before: c(12_400, 46_000_000, 9_900_000),
                    after: c(12_345, 45_678_901, 9_876_543),
                }],
            }),
            withdrawal_log: vec![WithdrawalLogEntry {
                generation: 7,
                unix: 1_709_296_200,
                query: "source = wiki|pedia and year < 1900".into(),
                withdrawn: Counts {
                    docs: 55,
                    bytes: 321_099,
                    tokens: None,
                },
                by_license: vec![BreakdownRow {
                    value: "cc-by-4.0".into(),
                    counts: Counts {
                        docs: 55,
                        bytes: 321_099,
                        tokens: None,
                    },
                    class: None,
                }],
                by_source: vec![BreakdownRow {
                    value: "wiki|pedia".into(),
                    counts: Counts {
                        docs: 55,
                        bytes: 321_099,
                        tokens: None,
                    },
                    class: None,
                }],
                compacted: false,
            }],
            signals: vec![SignalSummary {
                name: "rps_doc_word_count".into(),
                version: "1".into(),
                source: None,
                tagged: 12_000,
                missing: 345,
                quantiles: vec![(0.0, 3.0), (0.5, 420.0), (1.0, 98_765.0)],
                histogram: Histogram {
                    edges: vec![0.0, 50.0, 100.0],
                    counts: vec![700, 11_300],
                },
                thresholds: vec![ThresholdImpact {
                    rule: "rps_doc_word_count < 50".into(),
                    source: "Gopher".into(),
                    removed_docs: 700,
                    removed_share: 700.0 / 12_000.0,
                }],
            }],
            notes: vec!["12 documents have an unknown license".into()],
            training: None,
        }
    }

    #[test]
    fn json_round_trips() {
        let d = sample();
        let json = to_json(&d);
        let back: Datasheet = serde_json::from_str(&json).unwrap();
        assert_eq!(back, d);
        assert!(
            json.contains("\n  \"title\": \"Datasheet: lang=fr\""),
            "pretty-printed: {json}"
        );
        let empty: Datasheet = serde_json::from_str(&to_json(&Datasheet::default())).unwrap();
        assert_eq!(empty, Datasheet::default());
    }

    #[test]
    fn summarize_known_data() {
        // 1..=101 shuffled: quantile q is exactly 1 + 100 q.
        let mut values: Vec<f64> = (1..=101).map(|i| ((i * 37) % 101 + 1) as f64).collect();
        let (q, h) = summarize(&mut values, 4);
        assert_eq!(q.len(), QUANTILES.len());
        for (quantile, value) in &q {
            assert!(
                (value - (1.0 + 100.0 * quantile)).abs() < 1e-9,
                "q{quantile} = {value}"
            );
        }
        assert_eq!(h.edges, vec![1.0, 26.0, 51.0, 76.0, 101.0]);
        // [1,26) [26,51) [51,76) [76,101]: 25, 25, 25, 26.
        assert_eq!(h.counts, vec![25, 25, 25, 26]);
        assert_eq!(values[0], 1.0, "sorted in place");

        // Interpolation between ranks.
        let (q, _) = summarize(&mut [10.0, 20.0], 2);
        assert_eq!(q.iter().find(|(p, _)| *p == 0.25).unwrap().1, 12.5);
        assert_eq!(q.iter().find(|(p, _)| *p == 0.5).unwrap().1, 15.0);

        // All equal: bins centred on the value.
        let (q, h) = summarize(&mut [5.0; 7], 3);
        assert!(q.iter().all(|&(_, v)| v == 5.0));
        assert_eq!(h.counts, vec![0, 7, 0]);
        assert_eq!(h.edges.first(), Some(&4.5));
        assert_eq!(h.edges.last(), Some(&5.5));

        // Empty.
        let (q, h) = summarize(&mut [], 10);
        assert!(q.is_empty() && h.edges.is_empty() && h.counts.is_empty());

        // A given range clamps outliers into the end bins.
        let (_, h) = summarize_in(&mut [-1.0, 0.1, 0.6, 0.7, 2.0], 2, Some((0.0, 1.0)));
        assert_eq!(h.edges, vec![0.0, 0.5, 1.0]);
        assert_eq!(h.counts, vec![2, 3]);
    }

    #[test]
    fn number_formats() {
        assert_eq!(fmt_int(0), "0");
        assert_eq!(fmt_int(999), "999");
        assert_eq!(fmt_int(1_000), "1,000");
        assert_eq!(fmt_int(1_234_567), "1,234,567");
        assert_eq!(fmt_bytes(512), "512 B");
        assert_eq!(fmt_bytes(1536), "1.50 KiB");
        assert_eq!(fmt_bytes(45_678_901), "43.6 MiB");
        assert_eq!(fmt_bytes(5 << 30), "5.00 GiB");
        assert_eq!(fmt_compact(950), "950");
        assert_eq!(fmt_compact(9_876_543), "9.88M");
        assert_eq!(fmt_pct(1, 3), "33.3%");
        assert_eq!(fmt_pct(1, 2), "50.0%");
        assert_eq!(fmt_pct(2, 2), "100%");
        assert_eq!(fmt_pct(9999, 10000), ">99.9%");
        assert_eq!(fmt_pct(1, 10_000), "<0.1%");
        assert_eq!(fmt_pct(0, 10), "0%");
        assert_eq!(fmt_pct(1, 0), "\u{2013}");
        assert_eq!(fmt_delta(10, 7), "\u{2212}3");
        assert_eq!(fmt_delta(7, 1007), "+1,000");
        assert_eq!(fmt_num(420.0), "420");
        assert_eq!(fmt_num(98_765.0), "98,765");
        assert_eq!(fmt_num(0.123456), "0.1235");
        assert_eq!(fmt_num(12.5), "12.5");
        assert_eq!(fmt_num(1234.5678), "1,235");
        assert_eq!(fmt_quantile(0.5), "p50");
        assert_eq!(fmt_quantile(0.999), "p99.9");
        assert_eq!(fmt_quantile(0.0), "min");
        assert_eq!(fmt_time(0), "1970-01-01 00:00 UTC");
        assert_eq!(fmt_time(1_709_296_440), "2024-03-01 12:34 UTC");
        assert_eq!(fmt_time(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(fmt_duration(200), "3 min 20 s");
    }

    #[test]
    fn rule_cuts_parse_thresholds() {
        assert_eq!(rule_cuts("rps_doc_word_count < 50"), vec![("<", 50.0)]);
        assert_eq!(
            rule_cuts("w < 50 or w > 100_000"),
            vec![("<", 50.0), (">", 100_000.0)]
        );
        assert_eq!(rule_cuts("frac >= 0.3"), vec![(">=", 0.3)]);
        assert!(rule_cuts("no numbers here").is_empty());
    }

    #[test]
    fn top_rows_merge_the_rest() {
        let rows: Vec<BreakdownRow> = (0..5)
            .map(|i| BreakdownRow {
                value: format!("v{i}"),
                counts: Counts {
                    docs: 10 - i,
                    bytes: 1,
                    tokens: Some(2),
                },
                class: None,
            })
            .collect();
        let (top, other) = top_rows(&rows, 3);
        assert_eq!(top.len(), 2);
        let (n, c) = other.unwrap();
        assert_eq!(n, 3);
        assert_eq!(
            c,
            Counts {
                docs: 8 + 7 + 6,
                bytes: 3,
                tokens: Some(6)
            }
        );
        assert!(top_rows(&rows, 5).1.is_none());
    }

    #[test]
    fn class_colours_are_fixed() {
        assert_eq!(class_colour("public_domain"), class_colour("public-domain"));
        assert_ne!(class_colour("permissive"), class_colour("copyleft"));
        assert_eq!(class_colour("weird"), OTHER_CLASS_COLOUR);
        assert!(class_rank("permissive") < class_rank("unknown"));
    }
}
