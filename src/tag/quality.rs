//! Tagger `quality`: the RedPajama-V2 (RPv2) text-quality signals under RPv2's
//! names, computed exactly as RPv2's reference code computes them, plus
//! per-document summaries of RPv2's line-level signals, corrected variants of
//! RPv2's odd definitions and the FineWeb / C4 ratios that filters use.
//!
//! The definitions are in `docs/taggers.md` (section "quality"); the RPv2 ones
//! follow the note `shared/data/signals-rpv2.md`, which the oracle test
//! `tests/quality_rpv2.rs` checks value by value. Character classes are those of
//! Python 3.11 / Unicode 14 (module `unicode`), not Rust's.
//!
//! One pass over the text computes everything that does not need the word
//! list: lines, raw words, sentences, symbol counts and the normalized words
//! (which are appended to one reusable buffer, never allocated one by one).
//! Words get integer ids through an open-addressing table, and the repetition
//! signals count n-grams of ids, examining at size n only the positions whose
//! (n-1)-grams repeat.
//!
//! The stop-word lists (`stopwords-rpv2.json`) come from RPv2, which took them
//! from <https://github.com/6/stopwords-json> — MIT License, Copyright (c) 2013
//! Peter Graham. They are data, shipped with this notice.

#[path = "unicode.rs"]
mod unicode;

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use unicode::{
    flags, ALPHA, ASSIGNED, CASED, CASE_IGNORABLE, LOWER, NUMERIC, TITLE, UPPER, WORD, WS,
};
use unicode_normalization::char::{canonical_combining_class, decompose_canonical};
use unicode_normalization::UnicodeNormalization;
use xxhash_rust::xxh3::{xxh3_64, Xxh3DefaultBuilder};

/// Version recorded with every value (bump when a definition changes).
pub const VERSION: &str = "rpv2-2023.10+cq1";

/// The 27 RPv2 signal names, in RPv2's registration order.
pub const RPV2_SIGNALS: [&str; 27] = [
    "rps_doc_curly_bracket",
    "rps_doc_lorem_ipsum",
    "rps_doc_stop_word_fraction",
    "rps_doc_frac_chars_dupe_10grams",
    "rps_doc_frac_chars_dupe_5grams",
    "rps_doc_frac_chars_dupe_6grams",
    "rps_doc_frac_chars_dupe_7grams",
    "rps_doc_frac_chars_dupe_8grams",
    "rps_doc_frac_chars_dupe_9grams",
    "rps_doc_frac_chars_top_2gram",
    "rps_doc_frac_chars_top_3gram",
    "rps_doc_frac_chars_top_4gram",
    "rps_doc_frac_all_caps_words",
    "rps_doc_frac_lines_end_with_ellipsis",
    "rps_doc_frac_no_alph_words",
    "rps_doc_frac_unique_words",
    "rps_doc_mean_word_length",
    "rps_doc_num_sentences",
    "rps_doc_symbol_to_word_ratio",
    "rps_doc_unigram_entropy",
    "rps_doc_word_count",
    "rps_lines_ending_with_terminal_punctution_mark",
    "rps_lines_javascript_counts",
    "rps_lines_num_words",
    "rps_lines_numerical_chars_fraction",
    "rps_lines_start_with_bulletpoint",
    "rps_lines_uppercase_letter_fraction",
];

/// One span of an RPv2 signal: `[start, end)` in code points and the score
/// (`None` for RPv2's `None`).
pub type Span = (usize, usize, Option<f64>);

/// One RPv2 signal: its name and its spans.
pub type Signal = (&'static str, Vec<Span>);

/// Number of RPv2 document-level signals (the first 21 of [`RPV2_SIGNALS`]).
const N_RPV2_DOC: usize = 21;

static COLUMNS: [&str; 37] = [
    // RPv2 document-level signals, same order as RPV2_SIGNALS.
    "rps_doc_curly_bracket",
    "rps_doc_lorem_ipsum",
    "rps_doc_stop_word_fraction",
    "rps_doc_frac_chars_dupe_10grams",
    "rps_doc_frac_chars_dupe_5grams",
    "rps_doc_frac_chars_dupe_6grams",
    "rps_doc_frac_chars_dupe_7grams",
    "rps_doc_frac_chars_dupe_8grams",
    "rps_doc_frac_chars_dupe_9grams",
    "rps_doc_frac_chars_top_2gram",
    "rps_doc_frac_chars_top_3gram",
    "rps_doc_frac_chars_top_4gram",
    "rps_doc_frac_all_caps_words",
    "rps_doc_frac_lines_end_with_ellipsis",
    "rps_doc_frac_no_alph_words",
    "rps_doc_frac_unique_words",
    "rps_doc_mean_word_length",
    "rps_doc_num_sentences",
    "rps_doc_symbol_to_word_ratio",
    "rps_doc_unigram_entropy",
    "rps_doc_word_count",
    // Per-document summaries of the RPv2 line-level signals.
    "rps_lines_count",
    "rps_lines_frac_terminal_punct",
    "rps_lines_frac_javascript",
    "rps_lines_mean_num_words",
    "rps_lines_mean_numerical_chars_fraction",
    "rps_lines_frac_start_with_bulletpoint",
    "rps_lines_mean_uppercase_letter_fraction",
    // Corrected variants.
    "cq_doc_frac_no_alph_words",
    "cq_doc_mean_word_length",
    "cq_doc_stop_word_fraction",
    // FineWeb and C4.
    "fineweb_line_punct_ratio",
    "fineweb_short_line_ratio",
    "fineweb_char_dup_ratio",
    "fineweb_list_ratio",
    "c4_has_curly_bracket",
    "c4_has_lorem_ipsum",
];

/// Names of the document-level columns this tagger produces, in a fixed order:
/// the 21 RPv2 document signals, 7 summaries of the RPv2 line-level signals,
/// 3 corrected variants (`cq_*`), then the FineWeb and C4 ratios.
pub fn column_names() -> &'static [&'static str] {
    &COLUMNS
}

/// RPv2's rounding `round(x, 8)`: the double nearest to x rounded to a multiple
/// of 10⁻⁸, ties to even on the exact binary value of x.
pub fn round8(x: f64) -> f64 {
    let y = x * 1e8;
    // y carries at most half an ulp of error; below 2^40 that is < 2^-13, so
    // away from a tie the integer nearest to y is the correctly rounded one and
    // the (correctly rounded) division gives the double nearest to k/10^8.
    if y.abs() < (1u64 << 40) as f64 {
        let f = y - y.floor();
        if (f - 0.5).abs() > 1e-3 {
            return y.round() / 1e8;
        }
    }
    format!("{x:.8}").parse().unwrap_or(x)
}

/// The stop-word lists of RPv2 (MIT, see the module documentation).
fn stop_words() -> &'static HashMap<String, HashSet<String, Xxh3DefaultBuilder>> {
    static SETS: OnceLock<HashMap<String, HashSet<String, Xxh3DefaultBuilder>>> = OnceLock::new();
    SETS.get_or_init(|| {
        let lists: HashMap<String, Vec<String>> =
            serde_json::from_str(include_str!("stopwords-rpv2.json"))
                .expect("stopwords-rpv2.json is valid");
        lists
            .into_iter()
            .map(|(lang, words)| (lang, words.into_iter().collect()))
            .collect()
    })
}

/// Per-line results (code-point spans and counts).
#[derive(Clone, Copy, Default)]
struct Line {
    start: usize,
    end: usize,
    num_words: u32,
    javascript: u32,
    norm_len: u32,
    numeric: u32,
    upper: u32,
    terminal: bool,
    bullet: bool,
}

impl Line {
    fn numerical_fraction(&self) -> f64 {
        if self.norm_len == 0 {
            0.0
        } else {
            round8(self.numeric as f64 / self.norm_len as f64)
        }
    }
    fn uppercase_fraction(&self) -> f64 {
        round8(self.upper as f64 / (self.end - self.start) as f64)
    }
}

/// Counts of one document.
#[derive(Default)]
struct Counts {
    len: usize,
    raw_words: u64,
    ascii_alpha_words: u64,
    alpha_words: u64,
    caps_words: u64,
    stop_words: u64,
    stop_words_ci: u64,
    symbols: u64,
    curly: u64,
    open_curly: bool,
    sentences: u64,
    ellipsis_lines: u64,
    newlines: u64,
    ws_tokens: u64,
    nfc_chars: u64,
    fw_lines: u64,
    fw_terminal: u64,
    fw_short: u64,
    fw_dup_chars: u64,
}

/// One entry of an open-addressing table: a hash, the first position where the
/// key occurs and its number of occurrences.
#[derive(Clone, Copy)]
struct Entry {
    hash: u64,
    first: u32,
    count: u32,
}

/// Open-addressing hash table of [`Entry`]s; key equality is checked by the
/// caller through the `first` position, so collisions of the 64-bit hash
/// cannot merge different keys.
#[derive(Default)]
struct Table {
    slots: Vec<u32>,
    entries: Vec<Entry>,
}

impl Table {
    fn reset(&mut self, n: usize) {
        let cap = (n * 2).next_power_of_two().max(16);
        if self.slots.len() == cap {
            self.slots.fill(u32::MAX);
        } else {
            self.slots.clear();
            self.slots.resize(cap, u32::MAX);
        }
        self.entries.clear();
    }

    /// Finds the entry for `hash` whose key equals the key at `pos` (as judged
    /// by `eq(first_pos)`), inserting it if absent; returns the entry index.
    #[inline]
    fn insert(&mut self, hash: u64, pos: u32, mut eq: impl FnMut(u32) -> bool) -> u32 {
        let mask = self.slots.len() - 1;
        let mut i = (hash as usize) & mask;
        loop {
            let s = self.slots[i];
            if s == u32::MAX {
                let e = self.entries.len() as u32;
                self.entries.push(Entry {
                    hash,
                    first: pos,
                    count: 1,
                });
                self.slots[i] = e;
                return e;
            }
            let entry = &mut self.entries[s as usize];
            if entry.hash == hash && eq(entry.first) {
                entry.count += 1;
                return s;
            }
            i = (i + 1) & mask;
        }
    }
}

use super::fmix64 as mix64;

/// The document-level values of the RPv2 signals, in [`RPV2_SIGNALS`] order
/// (`stop_word_fraction` is `None` when the language has no list).
type DocValues = [Option<f64>; N_RPV2_DOC];

/// A reusable scorer: holds the buffers of one thread; create one per thread.
pub struct Scorer {
    lines: Vec<Line>,
    /// Normalized content N(text): the normalized words joined by one space.
    nc: String,
    /// Byte range of each normalized word in `nc`.
    words: Vec<(u32, u32)>,
    /// Length of each normalized word in code points (NFD).
    word_len: Vec<u32>,
    /// Word ids, in first-occurrence order.
    ids: Vec<u32>,
    nfd: Vec<(char, u8)>,
    lowered: String,
    word_table: Table,
    ngram_table: Table,
    hashes: Vec<u64>,
    cand: Vec<u32>,
    next_cand: Vec<u32>,
    cand_entry: Vec<u32>,
    dup: Vec<bool>,
    prefix: Vec<u64>,
    fw_seen: HashMap<u64, u32, BuildNoHash>,
    fw_pieces: Vec<(u32, u32)>,
    counts: Counts,
    doc: DocValues,
}

/// A hasher for keys that are already hashes.
#[derive(Default, Clone, Copy)]
struct NoHash(u64);

impl std::hash::Hasher for NoHash {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | b as u64;
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type BuildNoHash = std::hash::BuildHasherDefault<NoHash>;

impl Default for Scorer {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Sentence {
    Seek,
    Body,
    Punct,
}

/// Raw-word accumulator.
#[derive(Clone, Copy, Default)]
struct Token {
    kind: u8,
    start: usize,
    ascii_alpha: bool,
    alpha: bool,
    lower_or_title: bool,
    upper: bool,
    title: bool,
}

impl Scorer {
    /// A scorer with empty buffers.
    pub fn new() -> Self {
        Scorer {
            lines: Vec::new(),
            nc: String::new(),
            words: Vec::new(),
            word_len: Vec::new(),
            ids: Vec::new(),
            nfd: Vec::new(),
            lowered: String::new(),
            word_table: Table::default(),
            ngram_table: Table::default(),
            hashes: Vec::new(),
            cand: Vec::new(),
            next_cand: Vec::new(),
            cand_entry: Vec::new(),
            dup: Vec::new(),
            prefix: Vec::new(),
            fw_seen: HashMap::default(),
            fw_pieces: Vec::new(),
            counts: Counts::default(),
            doc: [None; N_RPV2_DOC],
        }
    }

    /// Scores one document. `lang` selects the stop-word list (`bg de en es
    /// fi fr it`; others give `None` for the stop-word columns). After the
    /// call `out` holds one value per [`column_names`] entry.
    pub fn score(&mut self, text: &str, lang: Option<&str>, out: &mut Vec<Option<f64>>) {
        self.analyze(text, lang);
        out.clear();
        out.extend_from_slice(&self.doc);
        let c = &self.counts;
        let n_lines = self.lines.len();
        let frac =
            |k: usize| -> Option<f64> { (n_lines > 0).then(|| round8(k as f64 / n_lines as f64)) };
        let mean =
            |sum: f64| -> Option<f64> { (n_lines > 0).then(|| round8(sum / n_lines as f64)) };
        let lines = &self.lines;
        out.push(Some(n_lines as f64));
        out.push(frac(lines.iter().filter(|l| l.terminal).count()));
        out.push(frac(lines.iter().filter(|l| l.javascript > 0).count()));
        out.push(mean(lines.iter().map(|l| l.num_words as f64).sum()));
        out.push(mean(lines.iter().map(|l| l.numerical_fraction()).sum()));
        out.push(frac(lines.iter().filter(|l| l.bullet).count()));
        out.push(mean(lines.iter().map(|l| l.uppercase_fraction()).sum()));
        // Corrected variants.
        let nrw = c.raw_words as f64;
        out.push((c.raw_words > 0).then(|| round8(1.0 - c.alpha_words as f64 / nrw)));
        let nw = self.words.len();
        out.push((nw > 0).then(|| round8(c.nfc_chars as f64 / nw as f64)));
        let has_list = lang.is_some_and(|l| stop_words().contains_key(l));
        out.push(if !has_list {
            None
        } else if c.raw_words == 0 {
            Some(0.0)
        } else {
            Some(round8(c.stop_words_ci as f64 / nrw))
        });
        // FineWeb.
        let fl = c.fw_lines as f64;
        out.push(Some(round8(c.fw_terminal as f64 / fl)));
        out.push(Some(round8(c.fw_short as f64 / fl)));
        let chars = c.len - c.newlines as usize;
        out.push((chars > 0).then(|| round8(c.fw_dup_chars as f64 / chars as f64)));
        out.push((c.ws_tokens > 0).then(|| round8(c.newlines as f64 / c.ws_tokens as f64)));
        // C4.
        out.push(Some(if c.open_curly { 1.0 } else { 0.0 }));
        out.push(Some(if has_lorem_ipsum_ci(text) { 1.0 } else { 0.0 }));
        debug_assert_eq!(out.len(), COLUMNS.len());
    }

    /// The full RPv2 output for `text`: every signal with its spans
    /// `(start, end, score)` in code points, as RPv2 returns them.
    pub fn rpv2_spans(&mut self, text: &str, lang: Option<&str>) -> Vec<Signal> {
        self.analyze(text, lang);
        let len = self.counts.len;
        let mut out = Vec::with_capacity(RPV2_SIGNALS.len());
        for (i, name) in RPV2_SIGNALS.iter().enumerate().take(N_RPV2_DOC) {
            if i == 2 && self.doc[i].is_none() {
                continue;
            }
            out.push((*name, vec![(0, len, self.doc[i])]));
        }
        let spans = |f: &dyn Fn(&Line) -> f64| -> Vec<Span> {
            self.lines
                .iter()
                .map(|l| (l.start, l.end, Some(f(l))))
                .collect()
        };
        let flag = |b: bool| if b { 1.0 } else { 0.0 };
        out.push((RPV2_SIGNALS[21], spans(&|l| flag(l.terminal))));
        out.push((RPV2_SIGNALS[22], spans(&|l| l.javascript as f64)));
        out.push((RPV2_SIGNALS[23], spans(&|l| l.num_words as f64)));
        out.push((RPV2_SIGNALS[24], spans(&|l| l.numerical_fraction())));
        let bullets = if self.lines.is_empty() {
            vec![(0, 0, None)]
        } else {
            spans(&|l| flag(l.bullet))
        };
        out.push((RPV2_SIGNALS[25], bullets));
        out.push((RPV2_SIGNALS[26], spans(&|l| l.uppercase_fraction())));
        out
    }

    /// The single pass, then the word-level signals.
    fn analyze(&mut self, text: &str, lang: Option<&str>) {
        self.lines.clear();
        self.nc.clear();
        self.words.clear();
        self.word_len.clear();
        self.nfd.clear();
        self.fw_seen.clear();
        self.fw_pieces.clear();
        self.counts = Counts::default();
        let stop = lang.and_then(|l| stop_words().get(l));

        let bytes = text.as_bytes();
        let mut cp = 0usize;
        let mut line = Line::default();
        let mut line_start_byte = 0usize;
        let mut tok = Token::default();
        let mut sent = Sentence::Seek;
        let mut dots = 0u64;
        let mut prev_cased = false;
        let mut in_ws_token = false;
        let mut word_non_ascii = false;

        for (pos, c) in text.char_indices() {
            let f = flags(c);
            // Raw characters.
            match c {
                '#' => self.counts.symbols += 1,
                '{' => {
                    self.counts.curly += 1;
                    self.counts.open_curly = true;
                }
                '}' => self.counts.curly += 1,
                '\u{2026}' => self.counts.symbols += 1,
                _ => {}
            }
            if c == '.' {
                dots += 1;
            } else if dots > 0 {
                self.counts.symbols += dots / 3;
                dots = 0;
            }
            if f & UPPER != 0 {
                line.upper += 1;
            }
            // Sentences.
            match sent {
                Sentence::Seek => {
                    if f & WORD != 0 {
                        self.counts.sentences += 1;
                        sent = Sentence::Body;
                    }
                }
                Sentence::Body => {
                    if matches!(c, '.' | '!' | '?') {
                        sent = Sentence::Punct;
                    }
                }
                Sentence::Punct => {
                    if !matches!(c, '.' | '!' | '?') {
                        if f & WORD != 0 {
                            self.counts.sentences += 1;
                            sent = Sentence::Body;
                        } else {
                            sent = Sentence::Seek;
                        }
                    }
                }
            }
            // Raw words.
            let kind = if f & WS != 0 {
                0
            } else if f & WORD != 0 {
                1
            } else {
                2
            };
            if kind != tok.kind {
                if tok.kind != 0 {
                    self.end_token(&text[tok.start..pos], tok, stop);
                }
                tok = Token {
                    kind,
                    start: pos,
                    ..Token::default()
                };
            }
            if kind != 0 {
                tok.ascii_alpha |= c.is_ascii_alphabetic();
                tok.alpha |= f & ALPHA != 0;
                tok.lower_or_title |= f & (LOWER | TITLE) != 0;
                tok.upper |= f & UPPER != 0;
                tok.title |= f & TITLE != 0;
                if !in_ws_token {
                    self.counts.ws_tokens += 1;
                    in_ws_token = true;
                }
            } else {
                in_ws_token = false;
            }
            // Normalization: delete ASCII punctuation, lowercase, split on
            // whitespace, NFD.
            if !c.is_ascii_punctuation() {
                if f & WS != 0 {
                    if !self.nfd.is_empty() {
                        self.end_word(&mut line, word_non_ascii);
                        word_non_ascii = false;
                    }
                } else if c.is_ascii() {
                    self.nfd.push((c.to_ascii_lowercase(), 0));
                } else {
                    word_non_ascii = true;
                    let (l1, l2) = if c == 'Σ' {
                        let fin = prev_cased && final_sigma_ahead(&text[pos + 2..]);
                        (if fin { 'ς' } else { 'σ' }, None)
                    } else {
                        unicode::lower(c)
                    };
                    if f & ASSIGNED == 0 {
                        self.nfd.push((l1, 0));
                    } else {
                        let nfd = &mut self.nfd;
                        for l in std::iter::once(l1).chain(l2) {
                            decompose_canonical(l, |d| nfd.push((d, canonical_combining_class(d))));
                        }
                    }
                }
                if f & CASE_IGNORABLE == 0 {
                    prev_cased = f & CASED != 0;
                }
            }
            cp += 1;
            if c == '\n' {
                line.end = cp;
                self.end_line(&mut line, text, line_start_byte, pos + 1, true);
                line = Line {
                    start: cp,
                    ..Line::default()
                };
                line_start_byte = pos + 1;
                self.counts.newlines += 1;
                prev_cased = false;
            }
        }
        if tok.kind != 0 {
            self.end_token(&text[tok.start..], tok, stop);
        }
        self.counts.symbols += dots / 3;
        if !self.nfd.is_empty() {
            self.end_word(&mut line, word_non_ascii);
        }
        if line_start_byte < bytes.len() {
            line.end = cp;
            self.end_line(&mut line, text, line_start_byte, text.len(), false);
        } else {
            // The empty piece after a final newline (or of the empty text)
            // is a line for FineWeb's `split("\n")`: short, blank, unpunctuated.
            self.counts.fw_lines += 1;
            self.counts.fw_short += 1;
        }
        self.counts.len = cp;
        self.word_signals(stop.is_some());
    }

    #[inline]
    fn end_token(
        &mut self,
        tok_text: &str,
        tok: Token,
        stop: Option<&HashSet<String, Xxh3DefaultBuilder>>,
    ) {
        let c = &mut self.counts;
        c.raw_words += 1;
        c.ascii_alpha_words += tok.ascii_alpha as u64;
        c.alpha_words += tok.alpha as u64;
        c.caps_words += (tok.upper && !tok.lower_or_title) as u64;
        // No stop word is longer than 20 bytes, and lowercasing shrinks a
        // character at most from 3 bytes to 1 (KELVIN SIGN to `k`).
        if let Some(set) = stop.filter(|_| tok_text.len() <= 64) {
            if set.contains(tok_text) {
                c.stop_words += 1;
                c.stop_words_ci += 1;
            } else if tok.upper || tok.title {
                lower_str(tok_text, &mut self.lowered);
                if self.lowered != tok_text && set.contains(self.lowered.as_str()) {
                    c.stop_words_ci += 1;
                }
            }
        }
    }

    /// Ends the normalized word held (as decomposed characters) in `self.nfd`.
    fn end_word(&mut self, line: &mut Line, non_ascii: bool) {
        // Canonical ordering: stable sort of each run of non-starters.
        let nfd = &mut self.nfd;
        if non_ascii {
            let mut i = 0;
            while i < nfd.len() {
                if nfd[i].1 == 0 {
                    i += 1;
                    continue;
                }
                let mut j = i;
                while j < nfd.len() && nfd[j].1 != 0 {
                    j += 1;
                }
                if j - i > 1 {
                    nfd[i..j].sort_by_key(|&(_, ccc)| ccc);
                }
                i = j;
            }
        }
        if !self.words.is_empty() {
            self.nc.push(' ');
        }
        let start = self.nc.len();
        let mut numeric = 0u32;
        for &(ch, _) in nfd.iter() {
            self.nc.push(ch);
            if ch.is_ascii() {
                numeric += ch.is_ascii_digit() as u32;
            } else {
                numeric += (flags(ch) & NUMERIC != 0) as u32;
            }
        }
        let len = nfd.len() as u32;
        nfd.clear();
        let end = self.nc.len();
        self.words.push((start as u32, end as u32));
        self.word_len.push(len);
        self.counts.nfc_chars += if non_ascii {
            self.nc[start..end].chars().nfc().count() as u64
        } else {
            len as u64
        };
        if line.num_words > 0 {
            line.norm_len += 1;
        }
        line.num_words += 1;
        line.norm_len += len;
        line.numeric += numeric;
        line.javascript += (&self.nc[start..end] == "javascript") as u32;
    }

    /// Ends a line: `text[start..end]` is its raw text, which ends with a
    /// newline if `newline`.
    fn end_line(&mut self, line: &mut Line, text: &str, start: usize, end: usize, newline: bool) {
        let raw = &text[start..end];
        let trimmed = raw.trim_end_matches(unicode::is_ws);
        if trimmed.ends_with("...") || trimmed.ends_with('\u{2026}') {
            self.counts.ellipsis_lines += 1;
        }
        line.terminal = matches!(
            trimmed.chars().next_back(),
            Some('.' | '!' | '?' | '\u{201D}')
        );
        line.bullet = matches!(
            raw.trim_start_matches(unicode::is_ws).chars().next(),
            Some(
                '\u{2022}'
                    | '\u{2023}'
                    | '\u{25B6}'
                    | '\u{25C0}'
                    | '\u{25E6}'
                    | '\u{25A0}'
                    | '\u{25A1}'
                    | '\u{25AA}'
                    | '\u{25AB}'
                    | '\u{2013}'
            )
        );
        // FineWeb's view of the line: the piece of `split("\n")`.
        let piece = if newline { &raw[..raw.len() - 1] } else { raw };
        let c = &mut self.counts;
        c.fw_lines += 1;
        if matches!(
            piece.as_bytes().last(),
            Some(b'.' | b'\'' | b'"' | b'!' | b'?')
        ) {
            c.fw_terminal += 1;
        }
        let piece_len = line.end - line.start - newline as usize;
        if piece_len <= 30 {
            c.fw_short += 1;
        }
        if !trimmed.is_empty() {
            let piece_range = (start as u32, (end - newline as usize) as u32);
            let h = xxh3_64(piece.as_bytes());
            let pieces = &self.fw_pieces;
            let same = |&(s, e): &(u32, u32)| &text[s as usize..e as usize] == piece;
            let dup = match self.fw_seen.get(&h) {
                None => {
                    self.fw_seen.insert(h, pieces.len() as u32);
                    false
                }
                // On a 64-bit hash collision fall back to comparing with every
                // earlier line.
                Some(&k) => same(&pieces[k as usize]) || pieces.iter().any(same),
            };
            if dup {
                c.fw_dup_chars += piece_len as u64;
            } else {
                self.fw_pieces.push(piece_range);
            }
        }
        self.lines.push(*line);
    }

    /// Word-level signals: everything computed on the normalized words.
    fn word_signals(&mut self, has_stop_list: bool) {
        let c = &self.counts;
        let n = self.words.len();
        let nrw = c.raw_words as f64;
        let raw_ratio = |k: u64| (c.raw_words > 0).then(|| round8(k as f64 / nrw));
        let mut doc: DocValues = [None; N_RPV2_DOC];
        let len = c.len;
        // rps_doc_curly_bracket
        doc[0] = Some(if len == 0 || c.curly == 0 {
            0.0
        } else {
            round8(c.curly as f64 / len as f64)
        });
        // rps_doc_lorem_ipsum
        doc[1] = Some(lorem_ipsum(&self.nc));
        // rps_doc_stop_word_fraction
        doc[2] = has_stop_list.then(|| {
            if n == 0 {
                0.0
            } else {
                round8(c.stop_words as f64 / nrw)
            }
        });
        doc[12] = raw_ratio(c.caps_words);
        doc[13] = (!self.lines.is_empty())
            .then(|| round8(c.ellipsis_lines as f64 / self.lines.len() as f64));
        doc[14] = (c.raw_words > 0).then(|| round8(1.0 - c.ascii_alpha_words as f64 / nrw));
        doc[17] = Some(c.sentences as f64);
        doc[18] = raw_ratio(c.symbols);
        doc[20] = Some(n as f64);
        let total: u64 = self.word_len.iter().map(|&l| l as u64).sum();
        if n > 0 {
            doc[16] = Some(round8(total as f64 / n as f64));
        }
        // Word ids.
        self.word_table.reset(n);
        self.ids.clear();
        for (i, &(s, e)) in self.words.iter().enumerate() {
            let w = &self.nc.as_bytes()[s as usize..e as usize];
            let words = &self.words;
            let nc = self.nc.as_bytes();
            let id = self.word_table.insert(xxh3_64(w), i as u32, |first| {
                let (fs, fe) = words[first as usize];
                &nc[fs as usize..fe as usize] == w
            });
            self.ids.push(id);
        }
        if n > 0 {
            let entries = &self.word_table.entries;
            doc[15] = Some(round8(entries.len() as f64 / n as f64));
            let t = n as f64;
            let mut entropy = 0.0f64;
            for e in entries {
                let c = e.count as f64;
                entropy += (-c / t) * (c / t).ln();
            }
            doc[19] = Some(round8(entropy));
        }
        // N-grams.
        for v in &mut doc[3..12] {
            *v = Some(0.0);
        }
        if n >= 2 {
            self.ngrams(total, &mut doc);
        }
        self.doc = doc;
    }

    /// The top-n-gram and duplicated-n-gram signals.
    fn ngrams(&mut self, total: u64, doc: &mut DocValues) {
        let n = self.ids.len();
        self.prefix.clear();
        self.prefix.push(0);
        let mut acc = 0u64;
        for &l in &self.word_len {
            acc += l as u64;
            self.prefix.push(acc);
        }
        self.hashes.clear();
        self.hashes
            .extend(self.ids.iter().map(|&id| mix64(id as u64 + 1)));
        self.dup.clear();
        let counts = &self.word_table.entries;
        self.dup
            .extend(self.ids.iter().map(|&id| counts[id as usize].count >= 2));
        self.cand.clear();
        self.cand.extend(0..n as u32);
        let ctotal = total as f64;
        for size in 2..=10usize {
            // Candidates: positions i whose (size-1)-grams at i and i+1 repeat.
            self.next_cand.clear();
            for &i in &self.cand {
                let i = i as usize;
                if i + size <= n && self.dup[i] && self.dup[i + 1] {
                    self.next_cand.push(i as u32);
                }
            }
            std::mem::swap(&mut self.cand, &mut self.next_cand);
            if self.cand.is_empty() {
                break;
            }
            self.ngram_table.reset(self.cand.len());
            self.cand_entry.clear();
            let ids = &self.ids;
            for &i in &self.cand {
                let i = i as usize;
                let h = mix64(
                    self.hashes[i].wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ ids[i + size - 1] as u64,
                );
                self.hashes[i] = h;
                let e = self.ngram_table.insert(h, i as u32, |first| {
                    let f = first as usize;
                    ids[f..f + size] == ids[i..i + size]
                });
                self.cand_entry.push(e);
            }
            let entries = &self.ngram_table.entries;
            // Mark repeated n-grams (dup[i] now refers to size-grams).
            for d in &mut self.dup[..] {
                *d = false;
            }
            for (k, &i) in self.cand.iter().enumerate() {
                self.dup[i as usize] = entries[self.cand_entry[k] as usize].count >= 2;
            }
            if size <= 4 {
                let mut best: Option<Entry> = None;
                for e in entries {
                    if e.count >= 2 && best.is_none_or(|b| e.count > b.count) {
                        best = Some(*e);
                    }
                }
                if let Some(b) = best {
                    let f = b.first as usize;
                    let chars = self.prefix[f + size] - self.prefix[f];
                    doc[9 + size - 2] = Some(round8((chars * b.count as u64) as f64 / ctotal));
                }
            }
            if size >= 5 {
                let mut covered = 0u64;
                let mut reach = 0usize;
                for &i in &self.cand {
                    let i = i as usize;
                    if self.dup[i] {
                        let from = i.max(reach);
                        let to = i + size;
                        if to > from {
                            covered += self.prefix[to] - self.prefix[from];
                            reach = to;
                        }
                    }
                }
                let slot = if size == 10 { 3 } else { size - 1 };
                doc[slot] = Some(round8(covered as f64 / ctotal));
            }
        }
    }
}

/// True if a capital sigma followed by `rest` is word-final for Python's
/// `str.lower` (deleted ASCII punctuation is skipped, as it is gone by then).
fn final_sigma_ahead(rest: &str) -> bool {
    for c in rest.chars() {
        if c.is_ascii_punctuation() {
            continue;
        }
        let f = flags(c);
        if f & CASE_IGNORABLE != 0 {
            continue;
        }
        return f & CASED == 0;
    }
    true
}

/// Python `str.lower` of `s` into `out`.
fn lower_str(s: &str, out: &mut String) {
    out.clear();
    let mut prev_cased = false;
    for (pos, c) in s.char_indices() {
        let f = flags(c);
        if c == 'Σ' {
            let fin = prev_cased && {
                let rest = &s[pos + 2..];
                rest.chars()
                    .map(flags)
                    .find(|f| f & CASE_IGNORABLE == 0)
                    .is_none_or(|f| f & CASED == 0)
            };
            out.push(if fin { 'ς' } else { 'σ' });
        } else {
            let (a, b) = unicode::lower(c);
            out.push(a);
            if let Some(b) = b {
                out.push(b);
            }
        }
        if f & CASE_IGNORABLE == 0 {
            prev_cased = f & CASED != 0;
        }
    }
}

/// `rps_doc_lorem_ipsum` on the normalized content.
fn lorem_ipsum(nc: &str) -> f64 {
    if nc.is_empty() || memchr::memmem::find(nc.as_bytes(), b"lorem ipsum").is_none() {
        return 0.0;
    }
    // Python's case-insensitive `re` also matches `ı` for `i` and `ſ` for `s`
    // (everything else in NC is already lowercase).
    let chars: Vec<char> = nc.chars().collect();
    let pat: Vec<char> = "lorem ipsum".chars().collect();
    let eq = |c: char, p: char| c == p || (p == 'i' && c == 'ı') || (p == 's' && c == 'ſ');
    let mut k = 0usize;
    let mut i = 0usize;
    while i + pat.len() <= chars.len() {
        if pat.iter().zip(&chars[i..]).all(|(&p, &c)| eq(c, p)) {
            k += 1;
            i += pat.len();
        } else {
            i += 1;
        }
    }
    round8(k as f64 / chars.len() as f64)
}

/// C4's test: `"lorem ipsum"` in the lowercased text.
fn has_lorem_ipsum_ci(text: &str) -> bool {
    let b = text.as_bytes();
    let mut from = 0;
    while let Some(p) = memchr::memchr2(b'l', b'L', &b[from..]) {
        let s = from + p;
        if b.len() >= s + 11 && b[s..s + 11].eq_ignore_ascii_case(b"lorem ipsum") {
            return true;
        }
        from = s + 1;
    }
    false
}

/// The full RPv2 output for `text`: every signal with its spans
/// `(start, end, score)` in code points, exactly like the oracle file
/// (`rps_doc_stop_word_fraction` only for languages with a stop-word list).
pub fn rpv2_spans(text: &str, lang: Option<&str>) -> Vec<Signal> {
    Scorer::new().rpv2_spans(text, lang)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The document-level value of `name` (first span's score).
    fn doc(text: &str, lang: Option<&str>, name: &str) -> Option<f64> {
        let spans = rpv2_spans(text, lang);
        let s = &spans.iter().find(|(n, _)| *n == name).expect(name).1;
        s[0].2
    }

    fn line_values(text: &str, name: &str) -> Vec<Span> {
        let spans = rpv2_spans(text, None);
        spans.into_iter().find(|(n, _)| *n == name).expect(name).1
    }

    #[test]
    fn empty_text_matches_rpv2() {
        let spans = rpv2_spans("", Some("en"));
        assert_eq!(spans.len(), 27);
        for (name, s) in &spans {
            let expect_null = [
                "rps_doc_mean_word_length",
                "rps_doc_frac_unique_words",
                "rps_doc_unigram_entropy",
                "rps_doc_frac_all_caps_words",
                "rps_doc_frac_no_alph_words",
                "rps_doc_symbol_to_word_ratio",
                "rps_doc_frac_lines_end_with_ellipsis",
            ];
            if *name == "rps_lines_start_with_bulletpoint" {
                assert_eq!(s, &vec![(0, 0, None)]);
            } else if name.starts_with("rps_lines_") {
                assert!(s.is_empty(), "{name}");
            } else if expect_null.contains(name) {
                assert_eq!(s, &vec![(0, 0, None)], "{name}");
            } else {
                assert_eq!(s, &vec![(0, 0, Some(0.0))], "{name}");
            }
        }
    }

    #[test]
    fn blank_lines_and_ellipsis() {
        let t = "   \n\t\n";
        assert_eq!(
            doc(t, None, "rps_doc_frac_lines_end_with_ellipsis"),
            Some(0.0)
        );
        assert_eq!(doc(t, None, "rps_doc_frac_unique_words"), None);
        assert_eq!(
            line_values(t, "rps_lines_num_words"),
            vec![(0, 4, Some(0.0)), (4, 6, Some(0.0))]
        );
        let t = "...\n";
        assert_eq!(doc(t, Some("en"), "rps_doc_frac_no_alph_words"), Some(1.0));
        assert_eq!(
            doc(t, Some("en"), "rps_doc_symbol_to_word_ratio"),
            Some(1.0)
        );
        assert_eq!(
            doc(t, Some("en"), "rps_doc_frac_lines_end_with_ellipsis"),
            Some(1.0)
        );
        assert_eq!(doc(t, Some("en"), "rps_doc_stop_word_fraction"), Some(0.0));
        assert_eq!(doc(t, Some("en"), "rps_doc_frac_unique_words"), None);
    }

    #[test]
    fn french_example_uses_nfd_lengths_and_raw_tokens() {
        let t = "Été à l'école... Déjà vu!\n";
        let fr = Some("fr");
        assert_eq!(doc(t, fr, "rps_doc_word_count"), Some(5.0));
        assert_eq!(doc(t, fr, "rps_doc_mean_word_length"), Some(4.4));
        assert_eq!(doc(t, fr, "rps_doc_frac_no_alph_words"), Some(0.44444444));
        assert_eq!(doc(t, fr, "rps_doc_symbol_to_word_ratio"), Some(0.11111111));
        assert_eq!(doc(t, fr, "rps_doc_num_sentences"), Some(2.0));
        assert_eq!(doc(t, fr, "rps_doc_stop_word_fraction"), Some(0.33333333));
        assert_eq!(doc(t, fr, "rps_doc_unigram_entropy"), Some(1.60943791));
        assert_eq!(
            line_values(t, "rps_lines_uppercase_letter_fraction"),
            vec![(0, 26, Some(0.07692308))]
        );
        // The corrected variants: NFC lengths (3+1+6+4+2)/5; 3 of the 9 raw
        // tokens (', ..., !) have no Unicode letter.
        let mut s = Scorer::new();
        let mut out = Vec::new();
        s.score(t, fr, &mut out);
        let col = |name: &str| out[COLUMNS.iter().position(|c| *c == name).unwrap()];
        assert_eq!(col("cq_doc_mean_word_length"), Some(3.2));
        assert_eq!(col("cq_doc_frac_no_alph_words"), Some(0.33333333));
    }

    #[test]
    fn repetition_and_caps() {
        let t = "The cat. The cat. The dog?!\nTHE END\n";
        let en = Some("en");
        assert_eq!(doc(t, en, "rps_doc_frac_chars_top_2gram"), Some(0.5));
        assert_eq!(doc(t, en, "rps_doc_frac_chars_top_3gram"), Some(0.75));
        assert_eq!(doc(t, en, "rps_doc_frac_chars_top_4gram"), Some(0.0));
        assert_eq!(doc(t, en, "rps_doc_frac_all_caps_words"), Some(0.18181818));
        assert_eq!(doc(t, en, "rps_doc_stop_word_fraction"), Some(0.0));
        assert_eq!(doc(t, en, "rps_doc_num_sentences"), Some(4.0));
        assert_eq!(
            line_values(t, "rps_lines_uppercase_letter_fraction"),
            vec![(0, 28, Some(0.10714286)), (28, 36, Some(0.75))]
        );
        let t = "a b c d e a b c d e\n";
        assert_eq!(doc(t, None, "rps_doc_frac_chars_dupe_5grams"), Some(1.0));
        assert_eq!(doc(t, None, "rps_doc_frac_chars_dupe_6grams"), Some(0.0));
        assert_eq!(doc(t, None, "rps_doc_frac_chars_top_2gram"), Some(0.4));
        assert_eq!(doc(t, None, "rps_doc_frac_chars_top_4gram"), Some(0.8));
    }

    #[test]
    fn python_character_classes() {
        let t = "3.14 is pi\n";
        assert_eq!(doc(t, None, "rps_doc_word_count"), Some(3.0));
        assert_eq!(doc(t, None, "rps_doc_num_sentences"), Some(2.0));
        assert_eq!(
            line_values(t, "rps_lines_numerical_chars_fraction"),
            vec![(0, 11, Some(0.33333333))]
        );
        let t = "一二三 四\n";
        assert_eq!(
            line_values(t, "rps_lines_numerical_chars_fraction"),
            vec![(0, 6, Some(0.8))]
        );
        assert_eq!(doc(t, None, "rps_doc_mean_word_length"), Some(2.0));
        let t = "ΤΙ ΕΊΝΑΙ\u{37e}\n";
        assert_eq!(
            doc(t, None, "rps_doc_frac_all_caps_words"),
            Some(0.66666667)
        );
        assert_eq!(doc(t, None, "rps_doc_mean_word_length"), Some(4.5));
        assert_eq!(
            line_values(t, "rps_lines_ending_with_terminal_punctution_mark"),
            vec![(0, 10, Some(0.0))]
        );
        let t = "x\r\n– item\r\n";
        assert_eq!(
            line_values(t, "rps_lines_start_with_bulletpoint"),
            vec![(0, 3, Some(0.0)), (3, 11, Some(1.0))]
        );
        assert_eq!(doc(t, None, "rps_doc_word_count"), Some(3.0));
    }

    #[test]
    fn final_sigma_and_lorem_ipsum() {
        // ΟΔΟΣ lowercases to οδος (final sigma), so the two spellings are
        // the same normalized word.
        let t = "ΟΔΟΣ οδος";
        assert_eq!(doc(t, None, "rps_doc_frac_unique_words"), Some(0.5));
        let t = "ΟΔΟΣΑ οδοσα";
        assert_eq!(doc(t, None, "rps_doc_frac_unique_words"), Some(0.5));
        let t = "Lorem Ipsum dolor\nlorem\nipsum";
        // NC = "lorem ipsum dolor lorem ipsum" (29 code points), 2 matches.
        assert_eq!(
            doc(t, None, "rps_doc_lorem_ipsum"),
            Some(round8(2.0 / 29.0))
        );
    }

    #[test]
    fn round8_matches_decimal_formatting() {
        let mut x = 0.123_456_789_f64;
        for i in 0..200_000u64 {
            x = (x * 3.7 + i as f64 * 1e-3).fract() * (1 + i % 7) as f64;
            let want: f64 = format!("{x:.8}").parse().unwrap();
            assert_eq!(round8(x), want, "{x}");
        }
        assert_eq!(round8(0.298828125), 0.29882812);
        assert_eq!(round8(2.0 / 3.0), 0.66666667);
    }

    #[test]
    fn columns_fineweb_and_reuse() {
        let text =
            "Hello world.\nHello world.\nshort\n\nA longer line without a stop mark at all\n";
        let mut s = Scorer::new();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        s.score(text, Some("en"), &mut a);
        s.score("{ other } text lorem IPSUM", Some("de"), &mut b);
        assert_eq!(a.len(), column_names().len());
        let col =
            |v: &[Option<f64>], name: &str| v[COLUMNS.iter().position(|c| *c == name).unwrap()];
        // split("\n") gives 6 pieces: 2 end in '.', 5 are short (<= 30).
        assert_eq!(col(&a, "fineweb_line_punct_ratio"), Some(round8(2.0 / 6.0)));
        assert_eq!(col(&a, "fineweb_short_line_ratio"), Some(round8(5.0 / 6.0)));
        // The second "Hello world." (12 chars) of 69 non-newline chars.
        assert_eq!(col(&a, "fineweb_char_dup_ratio"), Some(round8(12.0 / 69.0)));
        // 5 newlines, 14 whitespace-separated words.
        assert_eq!(col(&a, "fineweb_list_ratio"), Some(round8(5.0 / 14.0)));
        assert_eq!(col(&a, "rps_lines_count"), Some(5.0));
        assert_eq!(col(&a, "rps_lines_frac_terminal_punct"), Some(0.4));
        assert_eq!(col(&a, "c4_has_curly_bracket"), Some(0.0));
        assert_eq!(col(&b, "c4_has_curly_bracket"), Some(1.0));
        assert_eq!(col(&b, "c4_has_lorem_ipsum"), Some(1.0));
        // Reusing the scorer gives the same values as a fresh one.
        let mut fresh = Vec::new();
        Scorer::new().score(text, Some("en"), &mut fresh);
        s.score(text, Some("en"), &mut b);
        assert_eq!(format!("{fresh:?}"), format!("{b:?}"));
        // Languages without a stop-word list give no stop-word columns.
        s.score(text, Some("ru"), &mut b);
        assert_eq!(col(&b, "rps_doc_stop_word_fraction"), None);
        assert_eq!(col(&b, "cq_doc_stop_word_fraction"), None);
        // The case-insensitive variant counts sentence-initial "The".
        s.score("The cat and the dog", Some("en"), &mut b);
        assert_eq!(col(&b, "rps_doc_stop_word_fraction"), Some(0.4));
        assert_eq!(col(&b, "cq_doc_stop_word_fraction"), Some(0.6));
    }
}
