//! Tagger `toxicity`: counts the words and phrases of a text that appear in
//! word lists the user supplies (for instance the LDNOOBW lists, CC-BY-4.0),
//! per language, with allowlists that always win.
//!
//! Both sides, list entries and text, go through the same [`normalize_word`]
//! (lower case, diacritics stripped, apostrophes unified) and the same
//! tokenizer, so `Connard` in a list matches `CONNARD` in a text and
//! `enculé` matches `encule`: pipelines that compare raw strings silently
//! miss accented and capitalized entries. Matches are whole tokens and whole
//! phrases: `ass` never matches inside `class`.
//!
//! The count is a signal to look at and to select on, never a default
//! filter: word lists remove text by and about minorities (reclaimed slurs,
//! health and sexuality vocabulary) far more often than they remove abuse.
//! No list ships with corpusql.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use unicode_normalization::char::{decompose_canonical, is_combining_mark};

use crate::{Error, Result};

/// Version of the normalization and matching rules; the signal's identity is
/// this plus the lists' [`WordLists::fingerprint`].
pub const VERSION: &str = "toxicity-1";

/// A fast hash for short keys (multiply-rotate over 8-byte words, as in
/// rustc's FxHash). Lookups of text tokens never insert, so a text cannot
/// degrade the tables.
#[derive(Clone, Copy, Default)]
struct FxHasher(u64);

impl std::hash::Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes(c.try_into().expect("8 bytes"));
            self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type Build = std::hash::BuildHasherDefault<FxHasher>;
type Set = HashSet<String, Build>;
type Map<V> = HashMap<String, V, Build>;

/// Entries of one list, tokenized.
#[derive(Clone, Debug)]
struct Entries {
    /// One-token entries.
    words: Set,
    /// Entries of several tokens, by first token: the tokens after it.
    phrases: Map<Vec<Vec<String>>>,
    /// For each first byte of an entry's first token, a bit per token length
    /// (31 for 31 bytes and more): most text tokens are ruled out without
    /// hashing.
    starts: Box<[u32; 256]>,
}

impl Default for Entries {
    fn default() -> Self {
        Entries {
            words: Set::default(),
            phrases: Map::default(),
            starts: Box::new([0; 256]),
        }
    }
}

fn start_bit(tok: &str) -> (usize, u32) {
    let first = tok.as_bytes().first().copied().unwrap_or(0);
    (usize::from(first), 1 << tok.len().min(31))
}

impl Entries {
    fn may_start(&self, tok: &str) -> bool {
        let (k, bit) = start_bit(tok);
        self.starts[k] & bit != 0
    }

    fn mark_start(&mut self, tok: &str) {
        let (k, bit) = start_bit(tok);
        self.starts[k] |= bit;
    }

    fn insert(&mut self, mut tokens: Vec<String>) {
        if let Some(first) = tokens.first() {
            let first = first.clone();
            self.mark_start(&first);
        }
        if tokens.len() == 1 {
            self.words.extend(tokens.pop());
        } else if !tokens.is_empty() {
            let first = tokens.remove(0);
            let rest = self.phrases.entry(first).or_default();
            if !rest.contains(&tokens) {
                rest.push(tokens);
            }
        }
    }

    fn extend(&mut self, other: &Entries) {
        for (k, bits) in other.starts.iter().enumerate() {
            self.starts[k] |= bits;
        }
        self.words.extend(other.words.iter().cloned());
        for (first, rests) in &other.phrases {
            let mine = self.phrases.entry(first.clone()).or_default();
            for r in rests {
                if !mine.contains(r) {
                    mine.push(r.clone());
                }
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.words.is_empty() && self.phrases.is_empty()
    }

    /// Length in tokens of the longest entry matching at `toks[i..]`, 0 if none.
    fn longest_at(&self, toks: &[Token<'_>], i: usize) -> usize {
        let t = &toks[i];
        if !t.forms().any(|f| self.may_start(f)) {
            return 0;
        }
        let mut best = usize::from(t.forms().any(|f| self.words.contains(f)));
        for f in t.forms() {
            let Some(rests) = self.phrases.get(f) else {
                continue;
            };
            for rest in rests {
                let n = rest.len() + 1;
                if n > best
                    && i + n <= toks.len()
                    && rest
                        .iter()
                        .zip(&toks[i + 1..])
                        .all(|(w, t)| t.forms().any(|f| f == w))
                {
                    best = n;
                }
            }
        }
        best
    }

    /// Every entry, each as its tokens joined by one space.
    fn canonical(&self) -> Vec<String> {
        let mut v: Vec<String> = self.words.iter().cloned().collect();
        for (first, rests) in &self.phrases {
            for r in rests {
                v.push(format!("{first} {}", r.join(" ")));
            }
        }
        v.sort_unstable();
        v
    }
}

/// Block and allow lists of one language (or of all together).
#[derive(Clone, Debug, Default)]
struct Lists {
    block: Entries,
    allow: Entries,
}

/// Word lists by language, ready to count matches in texts.
#[derive(Clone, Debug, Default)]
pub struct WordLists {
    /// By primary language subtag (`fr` for `fr` and `fr-CA-u-sd-caqc`).
    langs: BTreeMap<String, Lists>,
    /// Every language's lists together: for texts of no or another language.
    all: Lists,
    fingerprint: u64,
}

impl WordLists {
    /// Load from a directory in the LDNOOBW layout: one file per language
    /// named by its code (`fr`, `en`, `de`...; also accept `<code>.txt`), one
    /// entry per line (entries may be multi-word phrases), plus optional
    /// allowlists `<code>.allow` / `<code>.allow.txt`. Blank lines and lines
    /// starting with `#` are skipped; other files (`README.md`, `LICENSE`)
    /// are ignored. Errors name the file and line.
    pub fn load(dir: &Path) -> Result<Self> {
        let read = std::fs::read_dir(dir).map_err(|e| list_error(dir, e))?;
        let mut files = Vec::new();
        for entry in read {
            let entry = entry.map_err(|e| list_error(dir, e))?;
            let path = entry.path();
            if !path.is_file() {
                continue;
            }
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let stem = name.strip_suffix(".txt").unwrap_or(name);
            let (lang, allow) = match stem.strip_suffix(".allow") {
                Some(lang) => (lang, true),
                None => (stem, false),
            };
            if crate::lang::is_well_formed(lang) {
                files.push((lang.to_string(), allow, path));
            }
        }
        if !files.iter().any(|(_, allow, _)| !allow) {
            return Err(Error::WordList {
                tagger: "toxicity".into(),
                path: dir.to_path_buf(),
                line: None,
                detail: "no word lists in this directory: expected files named by language \
                         code (`en`, `fr`, `fr.txt`), with optional allowlists `fr.allow`"
                    .into(),
                source: None,
            });
        }
        files.sort();
        let (mut block, mut allow) = (Vec::new(), Vec::new());
        for (lang, is_allow, path) in files {
            let entries = read_list(&path)?;
            if is_allow { &mut allow } else { &mut block }.push((lang, entries));
        }
        Ok(Self::from_lists(block, allow))
    }

    /// Build from lists in memory: `(language code, entries)` pairs for the
    /// blocklists and the allowlists. Entries without a letter or digit are
    /// skipped; several lists of one language are merged.
    pub fn from_lists(
        block: Vec<(String, Vec<String>)>,
        allow: Vec<(String, Vec<String>)>,
    ) -> Self {
        let mut me = WordLists::default();
        for (is_allow, lists) in [(false, block), (true, allow)] {
            for (lang, entries) in lists {
                let lists = me
                    .langs
                    .entry(crate::lang::primary_subtag(&lang))
                    .or_default();
                let target = if is_allow {
                    &mut lists.allow
                } else {
                    &mut lists.block
                };
                for e in entries {
                    target.insert(entry_tokens(&e));
                }
            }
        }
        me.langs
            .retain(|_, l| !(l.block.is_empty() && l.allow.is_empty()));
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        for (lang, lists) in &me.langs {
            me.all.block.extend(&lists.block);
            me.all.allow.extend(&lists.allow);
            for (tag, entries) in [("block", &lists.block), ("allow", &lists.allow)] {
                hasher.update(format!("{lang}\0{tag}\0").as_bytes());
                for e in entries.canonical() {
                    hasher.update(e.as_bytes());
                    hasher.update(b"\n");
                }
            }
        }
        me.fingerprint = hasher.digest();
        me
    }

    /// Stable fingerprint of the lists (xxh3 of normalized entries) so the signal version changes when lists do.
    /// It ignores the order of files and entries, duplicates, case and
    /// accents: lists that match the same texts have the same fingerprint.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// Language codes (primary subtags) that have lists, sorted.
    pub fn languages(&self) -> impl Iterator<Item = &str> {
        self.langs.keys().map(String::as_str)
    }

    /// Matches in text for a language (None or unknown language: use every list). Whole-word (and whole-phrase) matches after normalization; allowlisted words never count.
    ///
    /// Matches do not overlap: at each token the longest entry wins and
    /// counting resumes after it. A match that shares a token with an
    /// allowlisted word or phrase does not count.
    pub fn count(&self, text: &str, lang: Option<&str>) -> u32 {
        let lists = lang
            .and_then(|l| self.langs.get(crate::lang::primary_subtag(l).as_str()))
            .unwrap_or(&self.all);
        if lists.block.is_empty() {
            return 0;
        }
        let norm = normalize_text(text);
        let toks = tokens(&norm);
        let allowed = if lists.allow.is_empty() {
            Vec::new()
        } else {
            let mut covered = vec![false; toks.len()];
            for i in 0..toks.len() {
                let n = lists.allow.longest_at(&toks, i);
                covered[i..i + n].iter_mut().for_each(|c| *c = true);
            }
            covered
        };
        let mut count = 0;
        let mut i = 0;
        while i < toks.len() {
            let n = lists.block.longest_at(&toks, i);
            if n > 0 && !allowed.get(i..i + n).is_some_and(|c| c.contains(&true)) {
                count += 1;
                i += n;
            } else {
                i += 1;
            }
        }
        count
    }
}

/// The [`Error::WordList`] of an I/O error on a list file or directory.
fn list_error(path: &Path, e: std::io::Error) -> Error {
    Error::WordList {
        tagger: "toxicity".into(),
        path: path.to_path_buf(),
        line: None,
        detail: format!("cannot read it: {e}"),
        source: Some(e),
    }
}

/// Reads one list file: entries, one a line.
fn read_list(path: &Path) -> Result<Vec<String>> {
    let bytes = std::fs::read(path).map_err(|e| list_error(path, e))?;
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    let mut out = Vec::new();
    let bad_line = |k: usize, detail: String| Error::WordList {
        tagger: "toxicity".into(),
        path: path.to_path_buf(),
        line: Some(k as u64 + 1),
        detail,
        source: None,
    };
    for (k, line) in bytes.split(|&c| c == b'\n').enumerate() {
        let Ok(line) = std::str::from_utf8(line) else {
            return Err(bad_line(k, "not valid UTF-8".into()));
        };
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if entry_tokens(line).is_empty() {
            return Err(bad_line(
                k,
                format!("entry {line:?} has no letter or digit"),
            ));
        }
        out.push(line.to_string());
    }
    Ok(out)
}

/// Lower case, diacritics stripped (canonical decomposition, combining
/// marks dropped), `œ`/`æ` spelled out, and every apostrophe-like character
/// (’ ‘ ʼ ` ´ ′) turned into `'`. Used for list entries and texts alike.
pub fn normalize_word(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\u{2019}' | '\u{2018}' | '\u{02bc}' | '`' | '\u{00b4}' | '\u{2032}' => out.push('\''),
            'œ' | 'Œ' => out.push_str("oe"),
            'æ' | 'Æ' => out.push_str("ae"),
            c if c.is_ascii() => out.push(c.to_ascii_lowercase()),
            c => {
                for l in c.to_lowercase() {
                    decompose_canonical(l, |d| {
                        if !is_combining_mark(d) {
                            out.push(d);
                        }
                    });
                }
            }
        }
    }
    out
}

/// [`normalize_word`], with a fast path for ASCII text.
fn normalize_text(text: &str) -> String {
    if text.is_ascii() {
        // Apostrophes need no unifying here: every kind separates tokens.
        text.to_ascii_lowercase()
    } else {
        normalize_word(text)
    }
}

/// A token of normalized text: the run itself, and the run without the
/// symbols at its ends (`merde!!` → `merde`, while `f*ck` stays whole).
#[derive(Clone, Copy, Debug)]
struct Token<'a> {
    raw: &'a str,
    trimmed: &'a str,
}

impl<'a> Token<'a> {
    fn forms(&self) -> impl Iterator<Item = &'a str> {
        let second = (self.trimmed != self.raw && !self.trimmed.is_empty()).then_some(self.trimmed);
        std::iter::once(self.raw).chain(second)
    }
}

/// Characters that may sit inside a token besides letters and digits, as in
/// the obfuscated spellings lists carry (`f*ck`, `a$$`, `sh!t`).
fn is_token_symbol(c: char) -> bool {
    matches!(c, '*' | '$' | '@' | '!' | '#' | '&')
}

/// Splits normalized text at everything that is not a letter, a digit or a
/// token symbol: spaces, punctuation, apostrophes (`l'enculé` is `l` +
/// `encule`), hyphens.
fn tokens(norm: &str) -> Vec<Token<'_>> {
    let b = norm.as_bytes();
    let mut out = Vec::with_capacity(b.len() / 6);
    let mut start = None;
    let mut i = 0;
    while i <= b.len() {
        let (inside, len) = match b.get(i) {
            None => (false, 1),
            Some(&c) if c < 0x80 => (
                c.is_ascii_alphanumeric() || is_token_symbol(char::from(c)),
                1,
            ),
            Some(_) => {
                let c = norm[i..].chars().next().expect("char boundary");
                (c.is_alphanumeric(), c.len_utf8())
            }
        };
        match (inside, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                let raw = &norm[s..i];
                out.push(Token {
                    raw,
                    trimmed: raw.trim_matches(is_token_symbol),
                });
                start = None;
            }
            _ => {}
        }
        i += len;
    }
    out
}

/// The tokens of a list entry.
fn entry_tokens(entry: &str) -> Vec<String> {
    let norm = normalize_word(entry.trim());
    let toks = tokens(&norm);
    if !toks
        .iter()
        .any(|t| t.raw.chars().any(char::is_alphanumeric))
    {
        return Vec::new();
    }
    toks.iter().map(|t| t.raw.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lists(block: &[(&str, &[&str])], allow: &[(&str, &[&str])]) -> WordLists {
        let conv = |v: &[(&str, &[&str])]| {
            v.iter()
                .map(|(l, e)| (l.to_string(), e.iter().map(|s| s.to_string()).collect()))
                .collect()
        };
        WordLists::from_lists(conv(block), conv(allow))
    }

    #[test]
    fn normalization_is_shared() {
        assert_eq!(normalize_word("Enculé"), "encule");
        assert_eq!(normalize_word("CONNARD"), "connard");
        assert_eq!(normalize_word("l’ÉTÉ"), "l'ete");
        assert_eq!(normalize_word("Œuvre Ça"), "oeuvre ca");
        assert_eq!(normalize_word("Straße İ"), "straße i");
        let w = lists(&[("fr", &["Connard", "enculé"])], &[]);
        assert_eq!(w.count("Quel CONNARD, cet encule !", Some("fr")), 2);
        assert_eq!(w.count("Quel connard, cet ENCULÉ !", Some("fr")), 2);
        assert_eq!(w.count("l’enculé, l'Enculé", Some("fr")), 2);
    }

    #[test]
    fn whole_words_and_phrases() {
        let w = lists(&[("en", &["ass", "kiss my ass", "f*ck", "a$$"])], &[]);
        assert_eq!(w.count("class, assistant, bass, passé", Some("en")), 0);
        assert_eq!(w.count("What an ass.", Some("en")), 1);
        assert_eq!(w.count("ASS-hat", Some("en")), 1);
        // The longest entry wins and counts once.
        assert_eq!(w.count("Kiss my ass!", Some("en")), 1);
        assert_eq!(w.count("kiss my   \n ass", Some("en")), 1);
        assert_eq!(w.count("kiss my", Some("en")), 0);
        // Symbols inside entries match as written; around words they are punctuation.
        assert_eq!(w.count("F*CK this, *ass*", Some("en")), 2);
        assert_eq!(w.count("a$$ and a", Some("en")), 1);
    }

    #[test]
    fn allowlist_beats_blocklist() {
        let w = lists(
            &[("en", &["dick", "cock"])],
            &[("en", &["Moby Dick", "cock"])],
        );
        assert_eq!(w.count("Moby-Dick is a novel; dick is not", Some("en")), 1);
        assert_eq!(w.count("the cock crowed", Some("en")), 0);
    }

    #[test]
    fn language_selection() {
        let w = lists(
            &[
                ("fr", &["con"]),
                ("en", &["twat"]),
                ("fr-CA-u-sd-caqc", &["tabarnak"]),
            ],
            &[],
        );
        let text = "Con, twat, tabarnak.";
        assert_eq!(w.count(text, Some("fr")), 2);
        assert_eq!(w.count(text, Some("fr-FR")), 2);
        assert_eq!(w.count(text, Some("en")), 1);
        assert_eq!(w.count(text, Some("de")), 3, "unknown language: every list");
        assert_eq!(w.count(text, None), 3);
        assert_eq!(w.languages().collect::<Vec<_>>(), ["en", "fr"]);
        assert_eq!(WordLists::default().count(text, None), 0);
    }

    #[test]
    fn fingerprint_follows_the_lists() {
        let a = lists(&[("fr", &["con", "connard"])], &[("fr", &["conne"])]);
        let same = lists(&[("fr", &["CONNARD", "Con", "con"])], &[("fr", &["conne"])]);
        assert_eq!(a.fingerprint(), same.fingerprint());
        let more = lists(
            &[("fr", &["con", "connard", "salaud"])],
            &[("fr", &["conne"])],
        );
        let other_lang = lists(&[("en", &["con", "connard"])], &[("fr", &["conne"])]);
        let no_allow = lists(&[("fr", &["con", "connard"])], &[]);
        let moved = lists(&[("fr", &["con"])], &[("fr", &["conne", "connard"])]);
        let fps = [
            a.fingerprint(),
            more.fingerprint(),
            other_lang.fingerprint(),
            no_allow.fingerprint(),
            moved.fingerprint(),
        ];
        for i in 0..fps.len() {
            for j in i + 1..fps.len() {
                assert_ne!(fps[i], fps[j], "{i} {j}");
            }
        }
    }

    #[test]
    fn load_ldnoobw_layout() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::write(
            p.join("fr"),
            "connard\r\nEnculé\n\n# commentaire\nfils de pute\n",
        )
        .unwrap();
        std::fs::write(p.join("en.txt"), "\u{feff}ass\n").unwrap();
        std::fs::write(p.join("en.allow.txt"), "kick ass\n").unwrap();
        std::fs::write(p.join("README.md"), "not a list: connard\n").unwrap();
        std::fs::write(p.join("LICENSE"), "CC-BY-4.0\n").unwrap();
        let w = WordLists::load(p).unwrap();
        assert_eq!(w.languages().collect::<Vec<_>>(), ["en", "fr"]);
        assert_eq!(w.count("Ce fils de pute d'encule", Some("fr")), 2);
        assert_eq!(w.count("kick ass, ass", Some("en")), 1);
        let from_mem = lists(
            &[
                ("fr", &["connard", "enculé", "fils de pute"]),
                ("en", &["ass"]),
            ],
            &[("en", &["kick ass"])],
        );
        assert_eq!(w.fingerprint(), from_mem.fingerprint());
    }

    #[test]
    fn load_errors_name_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        let err = WordLists::load(p).unwrap_err().to_string();
        assert!(err.contains("no word lists"), "{err}");
        std::fs::write(p.join("de"), b"arsch\n\xff\xfe\n").unwrap();
        let err = format!("{:#}", WordLists::load(p).unwrap_err());
        assert!(err.contains("de:2:") && err.contains("UTF-8"), "{err}");
        std::fs::write(p.join("de"), "arsch\nok\n!!!\n").unwrap();
        let err = format!("{:#}", WordLists::load(p).unwrap_err());
        assert!(err.contains("de:3:") && err.contains("\"!!!\""), "{err}");
        let err = format!("{:#}", WordLists::load(&p.join("missing")).unwrap_err());
        assert!(err.contains("missing"), "{err}");
    }

    /// Counts over the real dev corpus with a small list in several
    /// languages: throughput, and no match inside words.
    #[test]
    fn real_corpus_throughput() {
        use std::io::BufRead;
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/data/realcorpus-dev.jsonl.zst"
        );
        let Ok(file) = std::fs::File::open(path) else {
            eprintln!("skipped: {path} not found");
            return;
        };
        let limit = if cfg!(debug_assertions) {
            1_000
        } else {
            usize::MAX
        };
        let reader = std::io::BufReader::new(zstd::Decoder::new(file).unwrap());
        let mut docs = Vec::new();
        for line in reader.lines().take(limit) {
            let v: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
            if let (Some(t), Some(l)) = (v["text"].as_str(), v["lang"].as_str()) {
                docs.push((t.to_string(), l.to_string()));
            }
        }
        let w = lists(
            &[
                (
                    "en",
                    &["shit", "fuck", "bastard", "ass", "damn", "kill yourself"],
                ),
                (
                    "fr",
                    &[
                        "merde",
                        "putain",
                        "connard",
                        "enculé",
                        "salaud",
                        "fils de pute",
                    ],
                ),
                ("de", &["scheiße", "arschloch", "fick"]),
            ],
            &[("en", &["kick ass"])],
        );
        let bytes: usize = docs.iter().map(|(t, _)| t.len()).sum();
        let t0 = std::time::Instant::now();
        let mut total = 0u64;
        let mut docs_with = 0;
        for (t, l) in &docs {
            let n = w.count(t, Some(l));
            total += u64::from(n);
            docs_with += usize::from(n > 0);
        }
        let secs = t0.elapsed().as_secs_f64();
        eprintln!(
            "toxicity: {} docs, {:.1} MB in {:.2}s = {:.0} MB/s; {total} matches in {docs_with} docs",
            docs.len(),
            bytes as f64 / 1e6,
            secs,
            bytes as f64 / 1e6 / secs
        );
        // Every match is a whole word: recount naively on the lower-cased
        // words and compare the single-word entries.
        let single = lists(&[("en", &["shit", "ass"])], &[]);
        for (t, _) in docs.iter().take(3_000) {
            let naive = t
                .split(|c: char| !(c.is_alphanumeric() || is_token_symbol(c)))
                .map(|w| w.trim_matches(is_token_symbol).to_lowercase())
                .filter(|w| w == "shit" || w == "ass")
                .count();
            assert_eq!(single.count(t, Some("en")) as usize, naive);
        }
    }
}
