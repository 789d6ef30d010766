//! Tagger `language`: the detected natural language of a document
//! (`lang_detected`, a facet, and `lang_score`) and a score of how much it
//! looks like source code (`code_score`).
//!
//! Detection uses [`whatlang`] restricted to a configurable set of languages
//! (default fr, en, de, es, it) and reads only a bounded prefix of the text, so
//! a long book costs the same as a page. Anything outside the set, and text
//! with no letters, is `und`. The user's own `lang` field is never touched:
//! the tagger writes `lang_detected` beside it.
//!
//! `code_score` is a cheap evidence sum, not a classifier; its formula is on
//! [`code_score`]. See `docs/taggers.md` for thresholds and known weaknesses.

use whatlang::Lang;

use crate::{Error, Result};

/// Version of the `language` signals; bump when a value can change for the
/// same input (detector, prefix, formula), so stored columns can be recomputed.
pub const VERSION: &str = "language-1";

/// The code written for a text whose language is not in the allowed set, or
/// that has no detectable language.
pub const UNDETERMINED: &str = "und";

/// ISO 639-1 code of every language whatlang 0.16 knows, with its whatlang
/// variant. Codes are `&'static str` so [`Detector::detect`] allocates nothing.
const ISO1: &[(&str, Lang)] = &[
    ("af", Lang::Afr),
    ("ak", Lang::Aka),
    ("am", Lang::Amh),
    ("ar", Lang::Ara),
    ("az", Lang::Aze),
    ("be", Lang::Bel),
    ("bg", Lang::Bul),
    ("bn", Lang::Ben),
    ("ca", Lang::Cat),
    ("cs", Lang::Ces),
    ("da", Lang::Dan),
    ("de", Lang::Deu),
    ("el", Lang::Ell),
    ("en", Lang::Eng),
    ("eo", Lang::Epo),
    ("es", Lang::Spa),
    ("et", Lang::Est),
    ("fa", Lang::Pes),
    ("fi", Lang::Fin),
    ("fr", Lang::Fra),
    ("gu", Lang::Guj),
    ("he", Lang::Heb),
    ("hi", Lang::Hin),
    ("hr", Lang::Hrv),
    ("hu", Lang::Hun),
    ("hy", Lang::Hye),
    ("id", Lang::Ind),
    ("it", Lang::Ita),
    ("ja", Lang::Jpn),
    ("jv", Lang::Jav),
    ("ka", Lang::Kat),
    ("km", Lang::Khm),
    ("kn", Lang::Kan),
    ("ko", Lang::Kor),
    ("la", Lang::Lat),
    ("lt", Lang::Lit),
    ("lv", Lang::Lav),
    ("mk", Lang::Mkd),
    ("ml", Lang::Mal),
    ("mr", Lang::Mar),
    ("my", Lang::Mya),
    ("nb", Lang::Nob),
    ("ne", Lang::Nep),
    ("nl", Lang::Nld),
    ("or", Lang::Ori),
    ("pa", Lang::Pan),
    ("pl", Lang::Pol),
    ("pt", Lang::Por),
    ("ro", Lang::Ron),
    ("ru", Lang::Rus),
    ("si", Lang::Sin),
    ("sk", Lang::Slk),
    ("sl", Lang::Slv),
    ("sn", Lang::Sna),
    ("sr", Lang::Srp),
    ("sv", Lang::Swe),
    ("ta", Lang::Tam),
    ("te", Lang::Tel),
    ("th", Lang::Tha),
    ("tk", Lang::Tuk),
    ("tl", Lang::Tgl),
    ("tr", Lang::Tur),
    ("uk", Lang::Ukr),
    ("ur", Lang::Urd),
    ("uz", Lang::Uzb),
    ("vi", Lang::Vie),
    ("yi", Lang::Yid),
    ("zh", Lang::Cmn),
    ("zu", Lang::Zul),
];

fn iso1_of(lang: Lang) -> Option<&'static str> {
    ISO1.iter().find(|(_, l)| *l == lang).map(|(c, _)| *c)
}

/// Settings of the language detector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LangConfig {
    /// ISO 639-1 codes the detector may answer; anything else is `und`.
    /// Default: `fr`, `en`, `de`, `es`, `it`.
    pub allowed: Vec<String>,
    /// Only the first `prefix_chars` characters of a text are read (cut back
    /// to a whitespace when one is near). Default: 2000.
    pub prefix_chars: usize,
}

impl Default for LangConfig {
    fn default() -> Self {
        LangConfig {
            allowed: ["fr", "en", "de", "es", "it"].map(String::from).to_vec(),
            prefix_chars: 2000,
        }
    }
}

/// A language detector whose answers are restricted to
/// [`LangConfig::allowed`]. Cheap to share
/// between threads (`Send + Sync`); build it once per run.
#[derive(Debug, Clone)]
pub struct Detector {
    /// Every language whatlang knows: a text in a language outside the set is
    /// recognised as such and becomes `und`.
    all: whatlang::Detector,
    /// Only the allowed languages: for short windows of a text already known
    /// to be in one of them.
    within: whatlang::Detector,
    allowed: Vec<Lang>,
    prefix_chars: usize,
}

impl Detector {
    /// Builds a detector; fails on an empty set or on a code that is not an
    /// ISO 639-1 code whatlang knows, naming it.
    pub fn new(cfg: &LangConfig) -> Result<Self> {
        let mut allowed = Vec::with_capacity(cfg.allowed.len());
        for code in &cfg.allowed {
            let norm = crate::lang::fold(code);
            match ISO1.iter().find(|(c, _)| *c == norm) {
                Some((_, lang)) => {
                    if !allowed.contains(lang) {
                        allowed.push(*lang)
                    }
                }
                None => {
                    return Err(Error::UnknownLanguage {
                        code: code.clone(),
                        context: "in the language tagger's allowed set".into(),
                        expected: format!(
                            "an ISO 639-1 code that whatlang detects (one of {})",
                            ISO1.iter().map(|(c, _)| *c).collect::<Vec<_>>().join(", ")
                        ),
                    })
                }
            }
        }
        if allowed.is_empty() {
            return Err(Error::Invalid(
                "the language tagger's allowed set is empty: give at least one ISO 639-1 code"
                    .into(),
            ));
        }
        if cfg.prefix_chars == 0 {
            return Err(Error::Invalid(
                "the language tagger's prefix_chars is 0: give a positive number of characters"
                    .into(),
            ));
        }
        Ok(Detector {
            all: whatlang::Detector::new(),
            within: whatlang::Detector::with_allowlist(allowed.clone()),
            allowed,
            prefix_chars: cfg.prefix_chars,
        })
    }

    /// The detected language of `text` (ISO 639-1 code from the allowed set,
    /// or `und`) and whatlang's confidence in it, in `[0, 1]` (0 for `und`).
    ///
    /// Only a prefix of [`LangConfig::prefix_chars`] characters is read.
    /// whatlang weighs every language it knows and the answer is kept only
    /// when it is in the allowed set: Portuguese is `und`, not Spanish.
    pub fn detect(&self, text: &str) -> (&'static str, f64) {
        Self::answer(&self.all, &self.allowed, prefix(text, self.prefix_chars))
    }

    /// The allowed language `text` is most like, or `und` when it has no
    /// letters or is in a script none of them uses; for short spans of a text
    /// already known to be in the allowed set (the OCR tagger's windows).
    /// Reads the whole of `text`.
    pub fn detect_within(&self, text: &str) -> &'static str {
        Self::answer(&self.within, &self.allowed, text).0
    }

    fn answer(det: &whatlang::Detector, allowed: &[Lang], text: &str) -> (&'static str, f64) {
        let info = match det.detect(text) {
            Some(info) => info,
            None => return (UNDETERMINED, 0.0),
        };
        // whatlang answers a single-language script (Greek, Hebrew, ...) without
        // consulting an allowlist, so check it here.
        if !allowed.contains(&info.lang()) {
            return (UNDETERMINED, 0.0);
        }
        match iso1_of(info.lang()) {
            Some(code) => (code, info.confidence().clamp(0.0, 1.0)),
            None => (UNDETERMINED, 0.0),
        }
    }

    /// Whether `code` is one of the allowed languages.
    pub fn allows(&self, code: &str) -> bool {
        self.allowed.iter().any(|l| iso1_of(*l) == Some(code))
    }
}

/// The first `max_chars` characters of `text`, cut back to the last
/// whitespace in the final 10% when there is one, so no word is split.
fn prefix(text: &str, max_chars: usize) -> &str {
    let end = match text.char_indices().nth(max_chars) {
        Some((i, _)) => i,
        None => return text,
    };
    let head = &text[..end];
    match head.rfind(char::is_whitespace) {
        Some(ws) if ws >= end - end / 10 => &head[..ws],
        _ => head,
    }
}

/// Keywords of common programming languages that are rare as whole tokens in
/// prose (`if`, `for`, `class`, `this` are left out: they are English words).
const CODE_KEYWORDS: &[&str] = &[
    "async",
    "await",
    "bool",
    "boolean",
    "const",
    "def",
    "elif",
    "endif",
    "enum",
    "esac",
    "fn",
    "func",
    "impl",
    "import",
    "int",
    "lambda",
    "let",
    "mut",
    "namespace",
    "nil",
    "null",
    "printf",
    "println",
    "return",
    "self",
    "std",
    "struct",
    "typedef",
    "undefined",
    "unsigned",
    "var",
    "void",
];

/// How much `text` looks like source code, in `[0, 1]`.
///
/// Over the first 64 KiB of the text (lines trimmed, blank lines skipped):
///
/// - `ends` = share of lines whose last character is `;`, `{`, `}` or `)`;
/// - `indent` = share of lines indented by a tab or at least two spaces;
/// - `sym` = share of non-space characters that are one of `{}[]();=<>&|*_#/\`;
/// - `kw` = share of identifier-like tokens that are in a list of about
///   thirty programming keywords (`fn`, `def`, `const`, `return`, `null`, ...);
///
/// `code_score = 0.35·min(1, ends/0.4) + 0.15·min(1, indent/0.4) +
/// 0.25·min(1, sym/0.12) + 0.25·min(1, kw/0.08)`.
///
/// Prose scores near 0 (a few indented lines or a parenthesis per line at
/// most); code in a braces-and-semicolons language near 1; Python and shell,
/// with no `;` line endings, about 0.5 to 0.7. Text with no non-space
/// character scores 0.
pub fn code_score(text: &str) -> f64 {
    let text = prefix(text, 65_536);
    let (mut lines, mut ends, mut indented) = (0usize, 0usize, 0usize);
    let (mut nonspace, mut sym) = (0usize, 0usize);
    let (mut words, mut kw) = (0usize, 0usize);
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        lines += 1;
        if line.starts_with('\t') || line.starts_with("  ") {
            indented += 1;
        }
        if matches!(
            trimmed.as_bytes()[trimmed.len() - 1],
            b';' | b'{' | b'}' | b')'
        ) {
            ends += 1;
        }
        for b in trimmed.bytes() {
            if b.is_ascii_whitespace() {
                continue;
            }
            // Count bytes that start a character (not UTF-8 continuations).
            if b & 0xC0 != 0x80 {
                nonspace += 1;
            }
            if matches!(
                b,
                b'{' | b'}'
                    | b'['
                    | b']'
                    | b'('
                    | b')'
                    | b';'
                    | b'='
                    | b'<'
                    | b'>'
                    | b'&'
                    | b'|'
                    | b'*'
                    | b'_'
                    | b'#'
                    | b'/'
                    | b'\\'
            ) {
                sym += 1;
            }
        }
        for tok in trimmed.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if tok.is_empty() || tok.as_bytes()[0].is_ascii_digit() {
                continue;
            }
            words += 1;
            if tok.len() <= 9 && is_keyword(tok) {
                kw += 1;
            }
        }
    }
    if nonspace == 0 {
        return 0.0;
    }
    let share = |n: usize, d: usize| if d == 0 { 0.0 } else { n as f64 / d as f64 };
    let sat = |x: f64, at: f64| (x / at).min(1.0);
    let score = 0.35 * sat(share(ends, lines), 0.4)
        + 0.15 * sat(share(indented, lines), 0.4)
        + 0.25 * sat(share(sym, nonspace), 0.12)
        + 0.25 * sat(share(kw, words), 0.08);
    score.clamp(0.0, 1.0)
}

fn is_keyword(tok: &str) -> bool {
    let mut buf = [0u8; 9];
    let lower = &mut buf[..tok.len()];
    lower.copy_from_slice(tok.as_bytes());
    lower.make_ascii_lowercase();
    CODE_KEYWORDS.iter().any(|k| k.as_bytes() == lower)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_set_and_unknown_code() {
        let det = Detector::new(&LangConfig::default()).unwrap();
        assert!(det.allows("fr") && det.allows("it") && !det.allows("pt"));
        let bad = LangConfig {
            allowed: vec!["fr".into(), "xx".into()],
            ..LangConfig::default()
        };
        let err = Detector::new(&bad).unwrap_err().to_string();
        assert!(err.contains("\"xx\""), "{err}");
        let empty = LangConfig {
            allowed: vec![],
            ..LangConfig::default()
        };
        assert!(Detector::new(&empty).is_err());
    }

    #[test]
    fn detects_allowed_and_und() {
        let det = Detector::new(&LangConfig::default()).unwrap();
        let fr = "Le chat dort sur le canapé pendant que la pluie tombe doucement sur la ville.";
        let de = "Die Katze schläft auf dem Sofa, während der Regen leise auf die Stadt fällt.";
        assert_eq!(det.detect(fr).0, "fr");
        assert_eq!(det.detect(de).0, "de");
        let (code, score) = det.detect(fr);
        assert!(code == "fr" && (0.0..=1.0).contains(&score));
        // Greek is a one-language script in whatlang: must still be `und`.
        assert_eq!(
            det.detect("Η γάτα κοιμάται στον καναπέ ενώ βρέχει.").0,
            "und"
        );
        assert_eq!(
            det.detect("Кошка спит на диване, пока идёт дождь.").0,
            "und"
        );
        assert_eq!(det.detect("1234 5678 ---").0, "und");
        assert_eq!(det.detect(""), ("und", 0.0));
        // Portuguese is recognised as such, hence `und`; forced into the set,
        // it is Spanish.
        let pt = "O gato dorme no sofá enquanto a chuva cai devagar sobre a cidade, \
                  e as crianças não querem sair de casa hoje à noite.";
        assert_eq!(det.detect(pt).0, "und");
        assert_eq!(det.detect_within(pt), "es");
        assert_eq!(det.detect_within("Le chat dort sur le canapé."), "fr");
    }

    #[test]
    fn prefix_is_bounded_and_on_char_boundary() {
        let s = "é".repeat(5000);
        assert_eq!(prefix(&s, 2000).chars().count(), 2000);
        let words = "mot ".repeat(1000);
        let p = prefix(&words, 2001);
        assert!(p.len() <= 2001 && p.ends_with("mot"), "{p:?}");
        assert_eq!(prefix("court", 2000), "court");
    }

    #[test]
    fn code_score_separates_code_and_prose() {
        let rust = "fn main() {\n    let x = vec![1, 2, 3];\n    for i in &x {\n        println!(\"{}\", i);\n    }\n}\n";
        let prose = "Il était une fois une petite fille qui vivait au bord de la forêt.\nElle aimait les fleurs, les oiseaux et les longues promenades (surtout le dimanche).\n";
        let c = code_score(rust);
        let p = code_score(prose);
        assert!(c > 0.7, "code {c}");
        assert!(p < 0.15, "prose {p}");
        assert_eq!(code_score("   \n\n"), 0.0);
    }
}
