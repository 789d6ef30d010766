//! Tagger `ocr`: how much a document looks like bad OCR output
//! (`ocr_dict_ratio`, `ocr_window_agree`, `ocr_noise`).
//!
//! The dictionary signal uses the word lists of Debian's `wfrench`,
//! `wamerican`, `wngerman`, `wspanish` and `witalian` packages, read at run
//! time from `/usr/share/dict` (they are never copied into the repository);
//! a missing list is an error that names the package to install. The other
//! parts need no data: language agreement of short windows (through the
//! [`language`](super::language) detector), stray symbols and one-character
//! tokens. The formulas are on [`score`]; thresholds and known weaknesses are
//! in `docs/taggers.md`.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};
use std::path::{Path, PathBuf};

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::{is_nfc_quick, IsNormalized, UnicodeNormalization};
use xxhash_rust::xxh3::xxh3_64;

use super::language::Detector;
use crate::{Error, Result};

/// Version of the `ocr` signals; bump when a value can change for the same
/// input (formula, weights, word lists' handling, window size).
pub const VERSION: &str = "ocr-1";

/// Where Debian installs its word lists.
pub const DEFAULT_DICT_DIR: &str = "/usr/share/dict";

/// Number of words in a language-agreement window.
pub const WINDOW_WORDS: usize = 7;

/// At most this many windows are checked per document; longer documents use
/// a larger (still fixed) stride between windows.
pub const MAX_WINDOWS: usize = 32;

/// Only the first this-many characters of a document are scored, so a long
/// book costs the same as a long article.
pub const PREFIX_CHARS: usize = 32_768;

/// The word list file (under the dictionary directory) and the Debian package
/// that ships it, for each language with a dictionary.
const LISTS: &[(&str, &str, &str)] = &[
    ("fr", "french", "wfrench"),
    ("en", "american-english", "wamerican"),
    ("de", "ngerman", "wngerman"),
    ("es", "spanish", "wspanish"),
    ("it", "italian", "witalian"),
];

/// Words the Debian lists lack that are frequent in clean text: Italian's
/// one-letter words (`e`, `è`, `a`, `i`, `o`).
const EXTRA_WORDS: &[(&str, &str)] = &[
    ("it", "a"),
    ("it", "e"),
    ("it", "è"),
    ("it", "i"),
    ("it", "o"),
];

/// The language codes that have a word list: fr, en, de, es, it.
pub fn dictionary_languages() -> impl Iterator<Item = &'static str> {
    LISTS.iter().map(|(code, _, _)| *code)
}

/// Hasher for keys that are already xxh3 hashes: passes the `u64` through.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0 = xxh3_64(bytes);
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// A set of words stored as their 64-bit xxh3 hashes (one false positive in
/// about 10^13 lookups for a list of a million words).
type WordSet = HashSet<u64, BuildHasherDefault<PassThrough>>;

/// The word lists of some languages, loaded once and shared between threads.
#[derive(Clone)]
pub struct Dictionaries {
    sets: Vec<(&'static str, WordSet)>,
}

impl std::fmt::Debug for Dictionaries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.sets.iter().map(|(lang, set)| (lang, set.len())))
            .finish()
    }
}

impl Dictionaries {
    /// Load the lists for the given languages from a dir (default
    /// [`DEFAULT_DICT_DIR`]), mapping fr->french, en->american-english,
    /// de->ngerman, es->spanish, it->italian. A missing list is a clear error
    /// naming the file and the Debian package to install (wfrench, ...); a
    /// language with no known list is an error too. Lists may be UTF-8 or
    /// ISO-8859-1 (older Debian releases); words are stored in NFC.
    pub fn load(dir: &Path, langs: &[&str]) -> Result<Self> {
        let mut sets = Vec::with_capacity(langs.len());
        for lang in langs {
            let Some(&(code, file, package)) = LISTS.iter().find(|(c, _, _)| c == lang) else {
                return Err(Error::UnknownLanguage {
                    code: lang.to_string(),
                    context: "for the OCR tagger's word lists".into(),
                    expected: format!(
                        "one of {}",
                        dictionary_languages().collect::<Vec<_>>().join(", ")
                    ),
                });
            };
            if sets.iter().any(|(c, _)| *c == code) {
                continue;
            }
            let path: PathBuf = dir.join(file);
            let bytes = match std::fs::read(&path) {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(Error::WordList {
                        tagger: "ocr".into(),
                        path,
                        line: None,
                        detail: format!(
                            "the list for language {code} is missing: install the Debian \
                             package {package} (apt-get install {package}) or point the OCR \
                             tagger at a directory that holds `{file}`"
                        ),
                        source: None,
                    })
                }
                Err(e) => {
                    return Err(Error::WordList {
                        tagger: "ocr".into(),
                        path,
                        line: None,
                        detail: format!("cannot read it (Debian package {package}): {e}"),
                        source: Some(e),
                    })
                }
            };
            let mut set = parse_list(&bytes);
            for (l, w) in EXTRA_WORDS {
                if *l == code {
                    set.insert(xxh3_64(w.as_bytes()));
                }
            }
            sets.push((code, set));
        }
        Ok(Dictionaries { sets })
    }

    /// Loads every known list ([`dictionary_languages`]) from `dir`.
    pub fn load_all(dir: &Path) -> Result<Self> {
        let langs: Vec<&str> = dictionary_languages().collect();
        Self::load(dir, &langs)
    }

    /// Whether a list for `lang` is loaded.
    pub fn has(&self, lang: &str) -> bool {
        self.set(lang).is_some()
    }

    /// Number of distinct words loaded for `lang` (0 when none).
    pub fn len(&self, lang: &str) -> usize {
        self.set(lang).map_or(0, |s| s.len())
    }

    /// A fingerprint of the words loaded for `lang` (0 when none),
    /// independent of their order in the file: a list whose words change
    /// gets another fingerprint even when its size stays the same.
    pub fn fingerprint(&self, lang: &str) -> u64 {
        self.set(lang).map_or(0, |s| {
            // fmix64 of each word hash, summed: commutative, and a changed
            // word changes the sum.
            s.iter()
                .fold(0u64, |acc, &h| acc.wrapping_add(super::fmix64(h)))
        })
    }

    /// Whether no list is loaded.
    pub fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }

    /// Whether `word` counts as a dictionary word of `lang` for [`score`]:
    /// case variants, apostrophes, hyphens, the English list as a fallback
    /// (when loaded), Spanish plurals, German compounds. False when `lang`
    /// has no list.
    pub fn contains(&self, lang: &str, word: &str) -> bool {
        let mut scratch = Scratch::default();
        self.lexicon(lang)
            .is_some_and(|lex| known(lex, word, &mut scratch))
    }

    fn set(&self, lang: &str) -> Option<&WordSet> {
        self.sets.iter().find(|(c, _)| *c == lang).map(|(_, s)| s)
    }

    fn lexicon(&self, lang: &str) -> Option<Lexicon<'_>> {
        let main = self.set(lang)?;
        Some(Lexicon {
            main,
            fallback: if lang == "en" { None } else { self.set("en") },
            plurals_es: lang == "es",
            compounds_de: lang == "de",
        })
    }
}

/// One word a line; UTF-8, or ISO-8859-1 when the bytes are not UTF-8.
fn parse_list(bytes: &[u8]) -> WordSet {
    let latin1: String;
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(_) => {
            latin1 = bytes.iter().map(|&b| b as char).collect();
            &latin1
        }
    };
    let mut set = WordSet::with_capacity_and_hasher(text.len() / 9, Default::default());
    let mut buf = String::new();
    for line in text.lines() {
        let word = line.trim();
        if word.is_empty() {
            continue;
        }
        let word = normalize(word, &mut buf);
        set.insert(xxh3_64(word.as_bytes()));
    }
    set
}

/// `word` with `’` as `'` and in NFC; borrows `word` when it already is.
fn normalize<'a>(word: &'a str, buf: &'a mut String) -> &'a str {
    let curly = word.contains('\u{2019}');
    if word.is_ascii() || (!curly && is_nfc_quick(word.chars()) == IsNormalized::Yes) {
        return word;
    }
    buf.clear();
    buf.extend(word.nfc().map(|c| if c == '\u{2019}' { '\'' } else { c }));
    buf
}

/// Reused buffers for lookups, so scoring a document allocates little.
#[derive(Default)]
struct Scratch {
    norm: String,
    case: String,
    elided: String,
}

/// What a word is looked up in: the document language's list, then the
/// English list (technical terms and untranslated strings are everywhere;
/// they are not OCR errors).
#[derive(Clone, Copy)]
struct Lexicon<'a> {
    main: &'a WordSet,
    fallback: Option<&'a WordSet>,
    /// Spanish: the list has no plurals, so also try the singular.
    plurals_es: bool,
    /// German: the list has few compounds, so also try splitting the word.
    compounds_de: bool,
}

impl Lexicon<'_> {
    fn has_exact(&self, w: &str) -> bool {
        let h = xxh3_64(w.as_bytes());
        self.main.contains(&h) || self.fallback.is_some_and(|f| f.contains(&h))
    }

    fn has(&self, w: &str) -> bool {
        if self.has_exact(w) {
            return true;
        }
        // Spanish plurals: `-s` (datos), `-es` (valores), `-ones` (opciones ->
        // opción).
        if self.plurals_es && w.len() > 3 {
            if let Some(stem) = w.strip_suffix('s') {
                if self.main.contains(&xxh3_64(stem.as_bytes())) {
                    return true;
                }
                if let Some(stem) = stem.strip_suffix('e') {
                    if self.main.contains(&xxh3_64(stem.as_bytes())) {
                        return true;
                    }
                    if let Some(root) = stem.strip_suffix("on") {
                        let sing = format!("{root}ón");
                        return self.main.contains(&xxh3_64(sing.as_bytes()));
                    }
                }
            }
        }
        false
    }
}

/// English clitics after an apostrophe (`don't`, `it's`, `we'll`).
const CLITICS: &[&str] = &["s", "t", "ll", "re", "ve", "d", "m"];

/// Dictionary lookup: the word as written, in lower case, or title-cased
/// (`PARIS` -> `Paris`), in the language's list or the English one; Spanish
/// plurals by their singular; German compounds by their parts; then, for a word with apostrophes, every elided part
/// as `part'` or `part` and the last as a word or an English clitic
/// (`l'école`, `dell'anno`); for a hyphenated word, every part.
fn known(lex: Lexicon<'_>, word: &str, s: &mut Scratch) -> bool {
    let Scratch { norm, case, elided } = s;
    let w = normalize(word, norm);
    if any_case(lex, w, case) {
        return true;
    }
    if w.contains('-') {
        return w
            .split('-')
            .filter(|p| !p.is_empty())
            .all(|p| known_apostrophe(lex, p, case, elided));
    }
    known_apostrophe(lex, w, case, elided)
}

fn known_apostrophe(lex: Lexicon<'_>, w: &str, case: &mut String, elided: &mut String) -> bool {
    if !w.contains('\'') {
        return any_case(lex, w, case);
    }
    if any_case(lex, w, case) {
        return true;
    }
    let mut parts = w.split('\'').filter(|p| !p.is_empty()).peekable();
    while let Some(p) = parts.next() {
        let ok = if parts.peek().is_some() {
            elided.clear();
            elided.push_str(p);
            elided.push('\'');
            any_case(lex, elided, case) || any_case(lex, p, case)
        } else {
            any_case(lex, p, case) || CLITICS.iter().any(|c| c.eq_ignore_ascii_case(p))
        };
        if !ok {
            return false;
        }
    }
    true
}

fn any_case(lex: Lexicon<'_>, w: &str, case: &mut String) -> bool {
    if lex.has(w) || (w.chars().any(char::is_uppercase) && other_case(lex, w, case)) {
        return true;
    }
    lex.compounds_de && compound(lex.main, &w.to_lowercase(), case, 0)
}

/// `w` lower-cased, then title-cased (`PARIS` -> `Paris`).
fn other_case(lex: Lexicon<'_>, w: &str, case: &mut String) -> bool {
    case.clear();
    case.extend(w.chars().flat_map(char::to_lowercase));
    if lex.has(case) {
        return true;
    }
    let mut chars = w.chars();
    let first = chars.next().unwrap_or_default();
    case.clear();
    case.extend(first.to_uppercase());
    case.extend(chars.flat_map(char::to_lowercase));
    case != w && lex.has(case)
}

/// German links between compound parts (`Verkehr-s-ministerium`).
const FUGEN: &[&str] = &["", "s", "es", "n", "en", "er", "e"];

/// Whether `w` splits into known German parts of at least 3 characters each,
/// at most 4 parts, each but the last optionally followed by a linking
/// element (`Bundesausbildungsförderung` = `Bund·es·ausbildung·s·förderung`).
/// `w` is lower-case; parts are looked up title-cased, then as they are.
fn compound(set: &WordSet, w: &str, case: &mut String, depth: usize) -> bool {
    const MIN: usize = 3;
    let n = w.chars().count();
    if depth >= 4 || n < 2 * MIN {
        return false;
    }
    for (k, (at, _)) in w.char_indices().enumerate().skip(MIN) {
        if n - k < MIN {
            break;
        }
        let (head, rest) = w.split_at(at);
        if !german_part(set, head, case) {
            continue;
        }
        for fuge in FUGEN {
            let Some(tail) = rest.strip_prefix(fuge) else {
                continue;
            };
            if tail.chars().count() < MIN {
                continue;
            }
            if german_part(set, tail, case) || compound(set, tail, case, depth + 1) {
                return true;
            }
        }
    }
    false
}

fn german_part(set: &WordSet, part: &str, case: &mut String) -> bool {
    let mut chars = part.chars();
    let first = chars.next().unwrap_or_default();
    case.clear();
    case.extend(first.to_uppercase());
    case.extend(chars.flat_map(char::to_lowercase));
    set.contains(&xxh3_64(case.as_bytes())) || set.contains(&xxh3_64(part.as_bytes()))
}

/// The OCR signals of one document.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OcrSignals {
    /// `ocr_dict_ratio`: characters inside dictionary words / non-space
    /// characters; `None` when the document's language has no word list or
    /// the text has no non-space character.
    pub dict_ratio: Option<f64>,
    /// `ocr_window_agree`: share of 7-word windows whose detected language is
    /// the document's; `None` when the document's language is not one the
    /// detector answers or no window holds a letter.
    pub window_agree: Option<f64>,
    /// `ocr_noise` in `[0, 1]`: the weighted combination defined on [`score`].
    pub noise: f64,
}

/// Characters counted as ordinary punctuation by the symbol ratio.
fn is_common_punct(c: char) -> bool {
    matches!(
        c,
        '.' | ','
            | ';'
            | ':'
            | '!'
            | '?'
            | '\''
            | '\u{2019}'
            | '"'
            | '('
            | ')'
            | '-'
            | '«'
            | '»'
            | '\u{201C}'
            | '\u{201D}'
            | '%'
            | '/'
            | '…'
    )
}

/// Raw counts over the scored prefix of a document.
#[derive(Debug, Default)]
struct Counts {
    nonspace: usize,
    dict_chars: usize,
    symbols: usize,
    tokens: usize,
    short_tokens: usize,
}

/// Score one document.
///
/// `lang`: the document's language (the user's `lang` if it is one of the
/// dictionary languages, else the detected one). Only the first
/// [`PREFIX_CHARS`] characters are read.
///
/// Parts, each in `[0, 1]`:
///
/// - `dict_ratio` = characters of words found in `lang`'s list / non-space
///   characters. A word is a run of letters (and combining marks) possibly
///   joined by `'`, `’` or `-`; see [`Dictionaries::contains`] for matching.
/// - `window_agree` = over windows of [`WINDOW_WORDS`] whitespace-separated
///   words taken at a fixed stride (7 words, or more so that at most
///   [`MAX_WINDOWS`] windows are read; a text shorter than 7 words is one
///   window), skipping windows without a letter: the share whose
///   [`Detector::detect_within`] answer is `lang`.
/// - `symbol_ratio` = non-space characters that are neither letters, digits,
///   combining marks nor common punctuation (`.,;:!?'’"()-«»“”%/…`) /
///   non-space characters.
/// - `short_ratio` = whitespace-separated tokens of exactly one character /
///   tokens.
///
/// `ocr_noise` = weighted mean, over the parts that are defined, of
///
/// | part | value | weight |
/// | --- | --- | --- |
/// | words | `clamp((R(lang) − dict_ratio) / 0.5)` | 0.4 |
/// | windows | `clamp((0.9 − window_agree) / 0.6)` | 0.2 |
/// | symbols | `clamp((symbol_ratio − 0.01) / 0.10)` | 0.2 |
/// | short tokens | `clamp((short_ratio − 0.05) / 0.20)` | 0.2 |
///
/// where `clamp` bounds to `[0, 1]` and `R(lang)` is 0.85 for `es` (its
/// list lacks verb forms) and 0.90 otherwise: each part
/// is 0 on clean prose and 1 on text that is plainly garbage, and the offsets
/// absorb what clean text has anyway (proper nouns, numbers, `à` and `a`).
/// A text with no non-space character scores 0.
pub fn score(text: &str, lang: &str, dicts: &Dictionaries, det: &Detector) -> OcrSignals {
    let p = parts(text, lang, dicts, det);
    let noise = match (p.symbol_ratio, p.short_ratio) {
        (Some(sym), Some(short)) => combine(
            p.dict_ratio,
            p.window_agree,
            sym,
            short,
            clean_dict_ratio(lang),
        ),
        _ => 0.0,
    };
    OcrSignals {
        dict_ratio: p.dict_ratio,
        window_agree: p.window_agree,
        noise,
    }
}

/// The four parts of [`score`] before they are combined.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Parts {
    pub(crate) dict_ratio: Option<f64>,
    pub(crate) window_agree: Option<f64>,
    /// `None` when the text has no non-space character.
    pub(crate) symbol_ratio: Option<f64>,
    pub(crate) short_ratio: Option<f64>,
}

pub(crate) fn parts(text: &str, lang: &str, dicts: &Dictionaries, det: &Detector) -> Parts {
    let text = head(text, PREFIX_CHARS);
    let lex = dicts.lexicon(lang);
    let mut scratch = Scratch::default();
    let mut c = Counts::default();

    // Words for the dictionary and symbols, in one pass over characters.
    let mut word_start: Option<usize> = None;
    let mut last_letter_end = 0usize;
    let mut word_chars = 0usize;
    let mut chars_since_letter = 0usize;
    let flush = |start: usize, end: usize, nchars: usize, c: &mut Counts, s: &mut Scratch| {
        if let Some(lex) = lex {
            if known(lex, &text[start..end], s) {
                c.dict_chars += nchars;
            }
        }
    };
    for (i, ch) in text.char_indices() {
        if ch.is_whitespace() {
            if let Some(st) = word_start.take() {
                flush(
                    st,
                    last_letter_end,
                    word_chars - chars_since_letter,
                    &mut c,
                    &mut scratch,
                );
            }
            continue;
        }
        c.nonspace += 1;
        let letter = ch.is_alphabetic() || is_combining_mark(ch);
        let joiner = matches!(ch, '\'' | '\u{2019}' | '-');
        if !letter && !ch.is_numeric() && !is_common_punct(ch) {
            c.symbols += 1;
        }
        if letter {
            if word_start.is_none() {
                word_start = Some(i);
                word_chars = 0;
            }
            word_chars += 1;
            chars_since_letter = 0;
            last_letter_end = i + ch.len_utf8();
        } else if joiner && word_start.is_some() {
            word_chars += 1;
            chars_since_letter += 1;
        } else if let Some(st) = word_start.take() {
            flush(
                st,
                last_letter_end,
                word_chars - chars_since_letter,
                &mut c,
                &mut scratch,
            );
        }
    }
    if let Some(st) = word_start.take() {
        flush(
            st,
            last_letter_end,
            word_chars - chars_since_letter,
            &mut c,
            &mut scratch,
        );
    }

    // Tokens: short-token share and the windows' positions.
    let mut spans: Vec<(usize, usize)> = Vec::new();
    let mut pos = 0usize;
    for tok in text.split_whitespace() {
        // split_whitespace yields subslices of `text`: recover their offsets.
        let start = tok.as_ptr() as usize - text.as_ptr() as usize;
        debug_assert!(start >= pos);
        pos = start + tok.len();
        c.tokens += 1;
        let mut it = tok.chars();
        if it.next().is_some() && it.next().is_none() {
            c.short_tokens += 1;
        }
        spans.push((start, pos));
    }

    let dict_ratio = match (lex, c.nonspace) {
        (Some(_), n) if n > 0 => Some(c.dict_chars as f64 / n as f64),
        _ => None,
    };
    let window_agree = if det.allows(lang) {
        window_agreement(text, &spans, lang, det)
    } else {
        None
    };
    let nonempty = c.nonspace > 0;
    Parts {
        dict_ratio,
        window_agree,
        symbol_ratio: nonempty.then(|| c.symbols as f64 / c.nonspace as f64),
        short_ratio: nonempty.then(|| c.short_tokens as f64 / c.tokens.max(1) as f64),
    }
}

fn clamp01(x: f64) -> f64 {
    x.clamp(0.0, 1.0)
}

/// `R(lang)` of [`score`]: the dictionary ratio from which clean text of
/// `lang` counts as noise-free. Lower for Spanish (`wspanish` has no
/// conjugated verbs).
fn clean_dict_ratio(lang: &str) -> f64 {
    match lang {
        "es" => 0.85,
        _ => 0.90,
    }
}

/// The `ocr_noise` formula documented on [`score`]; `reference` is `R(lang)`.
fn combine(dict: Option<f64>, agree: Option<f64>, sym: f64, short: f64, reference: f64) -> f64 {
    let mut num = 0.2 * clamp01((sym - 0.01) / 0.10) + 0.2 * clamp01((short - 0.05) / 0.20);
    let mut den = 0.4;
    if let Some(d) = dict {
        num += 0.4 * clamp01((reference - d) / 0.5);
        den += 0.4;
    }
    if let Some(a) = agree {
        num += 0.2 * clamp01((0.9 - a) / 0.6);
        den += 0.2;
    }
    clamp01(num / den)
}

fn window_agreement(
    text: &str,
    spans: &[(usize, usize)],
    lang: &str,
    det: &Detector,
) -> Option<f64> {
    if spans.is_empty() {
        return None;
    }
    let n = spans.len();
    let full = n / WINDOW_WORDS;
    let stride = WINDOW_WORDS * full.div_ceil(MAX_WINDOWS).max(1);
    let (mut checked, mut agree) = (0usize, 0usize);
    let mut check = |from: usize, to: usize| {
        let window = &text[spans[from].0..spans[to - 1].1];
        if !window.chars().any(char::is_alphabetic) {
            return;
        }
        checked += 1;
        if det.detect_within(window) == lang {
            agree += 1;
        }
    };
    if full == 0 {
        check(0, n);
    } else {
        let mut start = 0;
        while start + WINDOW_WORDS <= n {
            check(start, start + WINDOW_WORDS);
            start += stride;
        }
    }
    (checked > 0).then(|| agree as f64 / checked as f64)
}

/// The first `max_chars` characters of `text`.
fn head(text: &str, max_chars: usize) -> &str {
    match text.char_indices().nth(max_chars) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tag::language::LangConfig;

    fn tiny_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("french"),
            "l'\nd'\nécole\nle\nchat\ndort\nsur\ncanapé\nParis\naujourd'hui\nporte-monnaie\nla\n",
        )
        .unwrap();
        // ISO-8859-1 bytes: "été\nmaïs\n"
        std::fs::write(dir.path().join("spanish"), b"\xe9t\xe9\nma\xefs\n").unwrap();
        dir
    }

    #[test]
    fn fingerprint_follows_the_words_not_their_order() {
        let fp = |words: &str| {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("french"), words).unwrap();
            let d = Dictionaries::load(dir.path(), &["fr"]).unwrap();
            (d.len("fr"), d.fingerprint("fr"))
        };
        let a = fp("chat\nchien\nloup\n");
        assert_eq!(a, fp("loup\nchat\nchien\n"), "order does not matter");
        let b = fp("chat\nchien\nlynx\n");
        assert_eq!(a.0, b.0);
        assert_ne!(a.1, b.1, "same size, another word");
        assert_ne!(a.1, fp("chat\nchien\n").1);
        let d = Dictionaries::load(tiny_dir().path(), &["fr"]).unwrap();
        assert_eq!(d.fingerprint("es"), 0, "no list");
    }

    #[test]
    fn matching_rules() {
        let dir = tiny_dir();
        let d = Dictionaries::load(dir.path(), &["fr", "es"]).unwrap();
        assert_eq!(d.len("fr"), 12);
        for w in [
            "école",
            "École",
            "ÉCOLE",
            "l'école",
            "L’école",
            "d'école",
            "aujourd'hui",
            "PARIS",
            "Paris",
            "porte-monnaie",
            "chat-école",
        ] {
            assert!(d.contains("fr", w), "{w}");
        }
        for w in ["paris-x", "ecole", "xl'école", "chats", ""] {
            assert!(!d.contains("fr", w), "{w}");
        }
        // NFD text matches NFC list; Latin-1 list decoded.
        std::fs::write(
            dir.path().join("ngerman"),
            "Verkehr\nMinisterium\nschnell\nZug\n",
        )
        .unwrap();
        let de = Dictionaries::load(dir.path(), &["de"]).unwrap();
        for w in [
            "Verkehrsministerium",
            "Schnellzug",
            "VERKEHRSMINISTERIUM",
            "Zugverkehr",
        ] {
            assert!(de.contains("de", w), "{w}");
        }
        for w in ["Verkehrsx", "Zugzu", "Verkehrxyzministerium"] {
            assert!(!de.contains("de", w), "{w}");
        }
        assert!(d.contains("fr", "e\u{301}cole"));
        assert!(d.contains("es", "été") && d.contains("es", "maïs"));
        assert!(!d.contains("de", "école"));
    }

    #[test]
    fn missing_and_unknown_lists() {
        let dir = tiny_dir();
        let err = Dictionaries::load(dir.path(), &["de"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("ngerman") && err.contains("wngerman"), "{err}");
        let err = Dictionaries::load(dir.path(), &["pt"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"pt\""), "{err}");
    }

    #[test]
    fn counts_characters_of_known_words() {
        let dir = tiny_dir();
        let d = Dictionaries::load(dir.path(), &["fr"]).unwrap();
        let det = Detector::new(&LangConfig::default()).unwrap();
        // 26 non-space characters, of which "xyz", "," and "!" are outside
        // known words.
        let s = score("Le chat dort, xyz sur le canapé!", "fr", &d, &det);
        let expected = (2 + 4 + 4 + 3 + 2 + 6) as f64 / 26.0;
        assert!((s.dict_ratio.unwrap() - expected).abs() < 1e-9, "{s:?}");
        // No list for English here: None, noise still defined.
        let s = score("The cat sleeps on the sofa.", "en", &d, &det);
        assert!(s.dict_ratio.is_none() && (0.0..=1.0).contains(&s.noise));
        let s = score("  \n ", "fr", &d, &det);
        assert_eq!(s.noise, 0.0);
        assert_eq!(s.dict_ratio, None);
    }

    #[test]
    fn shareable_between_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Dictionaries>();
        send_sync::<Detector>();
    }

    #[test]
    fn combine_bounds() {
        assert_eq!(combine(Some(1.0), Some(1.0), 0.0, 0.0, 0.9), 0.0);
        assert_eq!(combine(Some(0.0), Some(0.0), 1.0, 1.0, 0.9), 1.0);
        assert_eq!(combine(None, None, 0.0, 1.0, 0.9), 0.5);
        // Words alone at 0.65: (0.9 - 0.65) / 0.5 = 0.5, weight 0.4 of 1.0.
        assert!((combine(Some(0.65), Some(1.0), 0.0, 0.0, 0.9) - 0.2).abs() < 1e-12);
    }
}
