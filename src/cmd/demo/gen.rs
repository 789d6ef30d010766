//! The deterministic demo corpus.
//!
//! This module owns the synthetic, multilingual JSONL corpus that
//! `corpusql demo` writes and that tests and benchmarks ingest. It needs no
//! data files and no dependencies beyond `std`: a small SplitMix64 generator
//! drives sentence templates over a few hundred real words per language
//! (French, English, German, Spanish, Italian) and code templates (Rust,
//! Python, JavaScript).
//!
//! The output is a pure function of `(n_docs, seed)`: byte-identical on every
//! machine (no hash-map iteration, no platform maths), and the output for `n`
//! documents is a prefix of the output for any larger `n` with the same seed.
//!
//! Each line is one JSON object, keys in this order (`prog_lang` only on code,
//! `year` missing on about 2% of documents):
//!
//! ```text
//! {"id": "gallica/fr/000042", "text": "...", "lang": "fr", "license": "pd",
//!  "source": "gallica", "year": 1843, "title": "...",
//!  "meta": {"url": "https://...", "tags": ["ocr", "book"]}}
//! ```
//!
//! Shares by document: fr 35%, en 30%, de 10%, es 8%, it 7%, code 10%.
//! Text lengths are log-normal (median about 1.5 KB, a few documents of
//! 10-30 KB, none under about 100 bytes); about 1% of natural-language
//! documents repeat an earlier document's text under another id.

use std::fmt::Write as _;
use std::io;

/// Number of documents `corpusql demo` generates unless told otherwise.
pub const DEFAULT_DOCS: usize = 5000;

/// What [`generate`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GenSummary {
    /// Number of documents (JSONL lines) written.
    pub docs: usize,
    /// Sum of the UTF-8 byte lengths of the documents' `text` values.
    pub bytes: u64,
}

/// Writes `n_docs` demo documents as JSONL to `out`, one object per line.
///
/// The bytes written depend only on `n_docs` and `seed`; the output for `n`
/// documents is a prefix of the output for `n + k`. Output is buffered
/// internally in chunks of about 64 KiB and `out` is flushed at the end.
pub fn generate<W: io::Write>(n_docs: usize, seed: u64, out: &mut W) -> io::Result<GenSummary> {
    let mut gen = Generator::new(seed);
    let mut buf = String::with_capacity(1 << 17);
    let mut summary = GenSummary::default();
    for index in 0..n_docs {
        let doc = gen.doc(index);
        summary.docs += 1;
        summary.bytes += doc.text.len() as u64;
        doc.write_json(&mut buf);
        if buf.len() >= 1 << 16 {
            out.write_all(buf.as_bytes())?;
            buf.clear();
        }
    }
    if !buf.is_empty() {
        out.write_all(buf.as_bytes())?;
    }
    out.flush()?;
    Ok(summary)
}

// ---------------------------------------------------------------------------
// Random numbers
// ---------------------------------------------------------------------------

/// SplitMix64: tiny, fast, and the same on every platform.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed ^ 0x6A09_E667_F3BC_C908)
    }

    fn next_u64(&mut self) -> u64 {
        corpusql::raw::hash::splitmix64(&mut self.0)
    }

    /// Uniform in `0..n` (`n` > 0, below 2^32).
    fn below(&mut self, n: usize) -> usize {
        (((self.next_u64() >> 32) * n as u64) >> 32) as usize
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u32, hi: u32) -> u32 {
        lo + self.below((hi - lo + 1) as usize) as u32
    }

    /// True with probability `num / den`.
    fn chance(&mut self, num: usize, den: usize) -> bool {
        self.below(den) < num
    }

    /// Uniform in `[0, 1)`, exact in IEEE arithmetic.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / 9_007_199_254_740_992.0)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn word<'a, S: AsRef<str>>(&mut self, items: &'a [S]) -> &'a str {
        self.pick(items).as_ref()
    }

    fn weighted<'a, T>(&mut self, items: &'a [(T, u32)]) -> &'a T {
        let total: u32 = items.iter().map(|i| i.1).sum();
        let mut x = self.below(total as usize) as u32;
        for (item, w) in items {
            if x < *w {
                return item;
            }
            x -= w;
        }
        &items[items.len() - 1].0
    }
}

/// `e^x` from basic IEEE operations only (correctly rounded everywhere),
/// so lengths do not depend on the platform's libm. Fine for |x| < 8.
fn exp_det(x: f64) -> f64 {
    let y = x / 64.0;
    let mut term = 1.0;
    let mut sum = 1.0;
    for k in 1..=8 {
        term = term * y / k as f64;
        sum += term;
    }
    for _ in 0..6 {
        sum *= sum;
    }
    sum
}

/// Log-normal text length: median 1500 bytes, clamped to 120..=30000.
fn target_len(r: &mut Rng) -> usize {
    let mut z = -6.0;
    for _ in 0..12 {
        z += r.unit();
    }
    ((1500.0 * exp_det(0.85 * z)) as usize).clamp(120, 30_000)
}

// ---------------------------------------------------------------------------
// Documents and JSON
// ---------------------------------------------------------------------------

struct Doc {
    id: String,
    text: String,
    lang: &'static str,
    prog_lang: Option<&'static str>,
    license: &'static str,
    source: &'static str,
    year: Option<u32>,
    title: String,
    url: String,
    tags: Vec<&'static str>,
}

impl Doc {
    fn write_json(&self, out: &mut String) {
        out.push_str("{\"id\": \"");
        escape_json(out, &self.id);
        out.push_str("\", \"text\": \"");
        escape_json(out, &self.text);
        out.push_str("\", \"lang\": \"");
        escape_json(out, self.lang);
        if let Some(p) = self.prog_lang {
            out.push_str("\", \"prog_lang\": \"");
            escape_json(out, p);
        }
        out.push_str("\", \"license\": \"");
        escape_json(out, self.license);
        out.push_str("\", \"source\": \"");
        escape_json(out, self.source);
        out.push('"');
        if let Some(y) = self.year {
            let _ = write!(out, ", \"year\": {y}");
        }
        out.push_str(", \"title\": \"");
        escape_json(out, &self.title);
        out.push_str("\", \"meta\": {\"url\": \"");
        escape_json(out, &self.url);
        out.push_str("\", \"tags\": [");
        for (i, t) in self.tags.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push('"');
            escape_json(out, t);
            out.push('"');
        }
        out.push_str("]}}\n");
    }
}

/// For each byte: 0 if it is copied as is, else the letter after the
/// backslash of its escape (`u` for `\u00XX`).
const ESCAPES: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = b'u';
        b += 1;
    }
    t[b'\n' as usize] = b'n';
    t[b'\r' as usize] = b'r';
    t[b'\t' as usize] = b't';
    t[0x08] = b'b';
    t[0x0c] = b'f';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

/// Appends `s` as the inside of a JSON string: quotes, backslashes and all
/// control characters escaped, everything else (UTF-8 included) verbatim.
fn escape_json(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + bytes.len() / 16);
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let e = ESCAPES[b as usize];
        if e == 0 {
            continue;
        }
        out.push_str(&s[start..i]);
        out.push('\\');
        out.push(e as char);
        if e == b'u' {
            out.push_str("00");
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 0xf) as usize] as char);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
}

// ---------------------------------------------------------------------------
// Provenance
// ---------------------------------------------------------------------------

#[derive(Clone, Copy)]
enum Url {
    Wikipedia(&'static str),
    Wikisource(&'static str),
    Gallica,
    Legifrance,
    DataGouv,
    TheatreClassique,
    Persee,
    AssembleeNationale,
    CommonCrawl,
    Gutenberg,
    Arxiv,
    StackExchange,
    Govinfo,
    Dta,
    Bundestag,
    Bne,
    LiberLiber,
    Github,
    CratesIo,
    Pypi,
    Npm,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum TitleKind {
    Wiki,
    Book,
    Academic,
    Legal,
    Data,
    Session,
    Web,
    Question,
}

struct Dialogue {
    header: &'static str,
    speakers: &'static str,
    sep: &'static str,
    asides: &'static str,
}

#[derive(Clone, Copy)]
enum TextKind {
    Prose,
    Wiki,
    Web,
    Question,
    Academic {
        latex: bool,
    },
    Legal {
        preamble: &'static str,
        article: &'static str,
    },
    Dialogue(&'static Dialogue),
    Book {
        gutenberg: bool,
        chapters: bool,
        wrap: bool,
        ocr_gap: usize,
    },
}

struct Source {
    name: &'static str,
    weight: u32,
    licenses: &'static [(&'static str, u32)],
    years: (u32, u32),
    url: Url,
    title: TitleKind,
    text: TextKind,
    tags: &'static [&'static str],
    extra: &'static [&'static str],
    /// For code sources: the only programming language served ("" = any).
    prog: &'static str,
}

fn pick_source<'a>(r: &mut Rng, sources: &'a [Source], prog: &str) -> &'a Source {
    let ok = |s: &&Source| s.prog.is_empty() || s.prog == prog;
    let total: u32 = sources.iter().filter(ok).map(|s| s.weight).sum();
    let mut x = r.below(total as usize) as u32;
    for s in sources.iter().filter(ok) {
        if x < s.weight {
            return s;
        }
        x -= s.weight;
    }
    &sources[0]
}

const PD: &[(&str, u32)] = &[("pd", 1)];
const UNKNOWN: &[(&str, u32)] = &[("unknown", 1)];
const WIKI_LIC: &[(&str, u32)] = &[("cc-by-sa-4.0", 85), ("cc-by-sa-3.0", 15)];
const WEB_TAGS: &[&str] = &["web"];
const WEB_EXTRA: &[&str] = &["news", "blog", "forum"];
const WIKI_TAGS: &[&str] = &["encyclopedia"];
const WIKI_EXTRA: &[&str] = &["wikipedia", "reference"];

const fn wikipedia(host: &'static str, weight: u32) -> Source {
    Source {
        name: match host.as_bytes() {
            b"fr" => "wikipedia-fr",
            b"en" => "wikipedia-en",
            b"de" => "wikipedia-de",
            b"es" => "wikipedia-es",
            _ => "wikipedia-it",
        },
        weight,
        licenses: WIKI_LIC,
        years: (2003, 2025),
        url: Url::Wikipedia(host),
        title: TitleKind::Wiki,
        text: TextKind::Wiki,
        tags: WIKI_TAGS,
        extra: WIKI_EXTRA,
        prog: "",
    }
}

const fn common_crawl(weight: u32) -> Source {
    Source {
        name: "common-crawl",
        weight,
        licenses: UNKNOWN,
        years: (2013, 2025),
        url: Url::CommonCrawl,
        title: TitleKind::Web,
        text: TextKind::Web,
        tags: WEB_TAGS,
        extra: WEB_EXTRA,
        prog: "",
    }
}

const fn wikisource(host: &'static str, weight: u32, years: (u32, u32)) -> Source {
    Source {
        name: match host.as_bytes() {
            b"de" => "wikisource-de",
            b"es" => "wikisource-es",
            _ => "wikisource-it",
        },
        weight,
        licenses: PD,
        years,
        url: Url::Wikisource(host),
        title: TitleKind::Book,
        text: TextKind::Book {
            gutenberg: false,
            chapters: false,
            wrap: false,
            ocr_gap: 0,
        },
        tags: &["book", "literature"],
        extra: &["transcription"],
        prog: "",
    }
}

static THEATRE: Dialogue = Dialogue {
    header: "ACTE PREMIER\n\nSCÈNE PREMIÈRE",
    speakers: "ALCESTE|PHILINTE|CÉLIMÈNE|ORONTE|ÉLIANTE|ARSINOÉ|DORINE|ORGON|ELMIRE|VALÈRE|\
               CLÉANTE|AGNÈS|ARNOLPHE|HENRIETTE",
    sep: "\n",
    asides: "(Il sort.)|(À part.)|(Elle s'assoit.)|(Bas, à Dorine.)|(Il se lève.)",
};

static ASSEMBLEE: Dialogue = Dialogue {
    header: "La séance est ouverte à quinze heures.",
    speakers: "M. le président|Mme la présidente|M. Jean Moreau|Mme Claire Dubois|\
               M. Paul Garnier|Mme la ministre|M. le rapporteur|Mme Sophie Laurent|\
               M. Luc Fontaine|M. Alain Perrin",
    sep: ". ",
    asides: "(Applaudissements.)|(Exclamations sur plusieurs bancs.)|(Sourires.)|\
             (Protestations.)|(Applaudissements sur les bancs du groupe.)",
};

static BUNDESTAG: Dialogue = Dialogue {
    header: "Die Sitzung ist eröffnet.",
    speakers: "Präsidentin Dr. Helga Brandt|Vizepräsident Klaus Berger|Dr. Anna Becker (SPD)|\
               Thomas Wagner (CDU/CSU)|Julia Hoffmann (BÜNDNIS 90/DIE GRÜNEN)|\
               Markus Schulz (FDP)|Petra Neumann (DIE LINKE)|Stefan Krüger (AfD)",
    sep: ":\n",
    asides: "(Beifall bei der SPD)|(Heiterkeit)|(Zuruf von der FDP: Das stimmt doch nicht!)|\
             (Beifall im ganzen Hause)|(Widerspruch)",
};

static FR_SOURCES: [Source; 8] = [
    Source {
        name: "gallica",
        weight: 28,
        licenses: PD,
        years: (1700, 1950),
        url: Url::Gallica,
        title: TitleKind::Book,
        text: TextKind::Book {
            gutenberg: false,
            chapters: false,
            wrap: true,
            ocr_gap: 250,
        },
        tags: &["ocr", "book"],
        extra: &["press", "periodical", "monograph"],
        prog: "",
    },
    wikipedia("fr", 24),
    Source {
        name: "persee",
        weight: 10,
        licenses: &[
            ("cc-by-nc-4.0", 60),
            ("cc-by-nc-sa-4.0", 25),
            ("cc-by-nc-nd-4.0", 15),
        ],
        years: (1950, 2020),
        url: Url::Persee,
        title: TitleKind::Academic,
        text: TextKind::Academic { latex: false },
        tags: &["academic", "article"],
        extra: &["humanities", "history"],
        prog: "",
    },
    Source {
        name: "legifrance",
        weight: 8,
        licenses: &[("etalab-2.0", 1)],
        years: (1995, 2025),
        url: Url::Legifrance,
        title: TitleKind::Legal,
        text: TextKind::Legal {
            preamble: "Le Premier ministre,\n\nSur le rapport du ministre de l'intérieur,\n\n\
                       Vu le code général des collectivités territoriales ;\n\nDécrète :",
            article: "Article",
        },
        tags: &["legal", "government"],
        extra: &["decree", "official-journal"],
        prog: "",
    },
    Source {
        name: "assemblee-nationale",
        weight: 8,
        licenses: &[("etalab-2.0", 1)],
        years: (1995, 2025),
        url: Url::AssembleeNationale,
        title: TitleKind::Session,
        text: TextKind::Dialogue(&ASSEMBLEE),
        tags: &["parliament", "transcript"],
        extra: &["debate"],
        prog: "",
    },
    Source {
        name: "data.gouv.fr",
        weight: 5,
        licenses: &[("etalab-2.0", 80), ("odbl-1.0", 20)],
        years: (2012, 2025),
        url: Url::DataGouv,
        title: TitleKind::Data,
        text: TextKind::Prose,
        tags: &["government", "dataset-description"],
        extra: &["open-data"],
        prog: "",
    },
    Source {
        name: "theatre-classique",
        weight: 7,
        licenses: PD,
        years: (1630, 1900),
        url: Url::TheatreClassique,
        title: TitleKind::Book,
        text: TextKind::Dialogue(&THEATRE),
        tags: &["theatre", "dialogue"],
        extra: &["verse", "comedy", "tragedy"],
        prog: "",
    },
    common_crawl(3),
];

static EN_SOURCES: [Source; 6] = [
    wikipedia("en", 32),
    Source {
        name: "gutenberg",
        weight: 22,
        licenses: PD,
        years: (1600, 1930),
        url: Url::Gutenberg,
        title: TitleKind::Book,
        text: TextKind::Book {
            gutenberg: true,
            chapters: true,
            wrap: true,
            ocr_gap: 0,
        },
        tags: &["book", "literature"],
        extra: &["fiction", "classic"],
        prog: "",
    },
    Source {
        name: "arxiv",
        weight: 15,
        licenses: &[
            ("cc-by-4.0", 60),
            ("cc-by-sa-4.0", 15),
            ("cc0-1.0", 10),
            ("cc-by-nc-sa-4.0", 15),
        ],
        years: (2008, 2025),
        url: Url::Arxiv,
        title: TitleKind::Academic,
        text: TextKind::Academic { latex: true },
        tags: &["academic", "preprint"],
        extra: &["science", "math", "cs"],
        prog: "",
    },
    Source {
        name: "stackexchange",
        weight: 10,
        licenses: &[("cc-by-sa-4.0", 70), ("cc-by-sa-3.0", 30)],
        years: (2009, 2025),
        url: Url::StackExchange,
        title: TitleKind::Question,
        text: TextKind::Question,
        tags: &["qa", "forum"],
        extra: &["community"],
        prog: "",
    },
    Source {
        name: "govinfo",
        weight: 8,
        licenses: PD,
        years: (1995, 2025),
        url: Url::Govinfo,
        title: TitleKind::Legal,
        text: TextKind::Legal {
            preamble: "AGENCY: Department of the Interior.\n\nACTION: Final rule.\n\n\
                       SUMMARY: This document amends the regulations described below.",
            article: "Sec.",
        },
        tags: &["legal", "government"],
        extra: &["federal-register"],
        prog: "",
    },
    common_crawl(3),
];

static DE_SOURCES: [Source; 5] = [
    wikipedia("de", 55),
    wikisource("de", 20, (1600, 1920)),
    Source {
        name: "deutsches-textarchiv",
        weight: 8,
        licenses: &[("cc-by-sa-4.0", 1)],
        years: (1650, 1900),
        url: Url::Dta,
        title: TitleKind::Book,
        text: TextKind::Book {
            gutenberg: false,
            chapters: false,
            wrap: true,
            ocr_gap: 0,
        },
        tags: &["book", "historical"],
        extra: &["transcription"],
        prog: "",
    },
    Source {
        name: "bundestag",
        weight: 12,
        licenses: &[("dl-de-by-2.0", 1)],
        years: (1995, 2025),
        url: Url::Bundestag,
        title: TitleKind::Session,
        text: TextKind::Dialogue(&BUNDESTAG),
        tags: &["parliament", "transcript"],
        extra: &["debate"],
        prog: "",
    },
    common_crawl(5),
];

static ES_SOURCES: [Source; 4] = [
    wikipedia("es", 55),
    Source {
        name: "bne",
        weight: 25,
        licenses: PD,
        years: (1600, 1940),
        url: Url::Bne,
        title: TitleKind::Book,
        text: TextKind::Book {
            gutenberg: false,
            chapters: false,
            wrap: true,
            ocr_gap: 400,
        },
        tags: &["ocr", "book"],
        extra: &["press", "monograph"],
        prog: "",
    },
    wikisource("es", 12, (1600, 1930)),
    common_crawl(8),
];

static IT_SOURCES: [Source; 4] = [
    wikipedia("it", 55),
    Source {
        name: "liberliber",
        weight: 25,
        licenses: PD,
        years: (1800, 1940),
        url: Url::LiberLiber,
        title: TitleKind::Book,
        text: TextKind::Book {
            gutenberg: false,
            chapters: true,
            wrap: false,
            ocr_gap: 0,
        },
        tags: &["book", "literature"],
        extra: &["fiction", "classic"],
        prog: "",
    },
    wikisource("it", 12, (1600, 1930)),
    common_crawl(8),
];

const CODE_TAGS: &[&str] = &["code"];
const CODE_EXTRA: &[&str] = &["library", "cli", "tests", "example"];

static CODE_SOURCES: [Source; 4] = [
    Source {
        name: "github",
        weight: 55,
        licenses: &[
            ("mit", 40),
            ("apache-2.0", 25),
            ("bsd-3-clause", 10),
            ("gpl-3.0-or-later", 10),
            ("mpl-2.0", 5),
            ("unknown", 10),
        ],
        years: (2008, 2025),
        url: Url::Github,
        title: TitleKind::Book,
        text: TextKind::Prose,
        tags: CODE_TAGS,
        extra: CODE_EXTRA,
        prog: "",
    },
    Source {
        name: "crates-io",
        weight: 45,
        licenses: &[
            ("mit", 40),
            ("apache-2.0", 45),
            ("mpl-2.0", 5),
            ("bsd-3-clause", 5),
            ("gpl-3.0-or-later", 5),
        ],
        years: (2015, 2025),
        url: Url::CratesIo,
        title: TitleKind::Book,
        text: TextKind::Prose,
        tags: CODE_TAGS,
        extra: CODE_EXTRA,
        prog: "rust",
    },
    Source {
        name: "pypi",
        weight: 45,
        licenses: &[
            ("mit", 45),
            ("bsd-3-clause", 25),
            ("apache-2.0", 20),
            ("gpl-3.0-or-later", 10),
        ],
        years: (2005, 2025),
        url: Url::Pypi,
        title: TitleKind::Book,
        text: TextKind::Prose,
        tags: CODE_TAGS,
        extra: CODE_EXTRA,
        prog: "python",
    },
    Source {
        name: "npm",
        weight: 40,
        licenses: &[("mit", 70), ("isc", 20), ("apache-2.0", 10)],
        years: (2011, 2025),
        url: Url::Npm,
        title: TitleKind::Book,
        text: TextKind::Prose,
        tags: CODE_TAGS,
        extra: CODE_EXTRA,
        prog: "javascript",
    },
];

/// Document shares per mille, by index into [`LEXICONS`] (fr, en, de, es,
/// it); index [`CODE`] is code.
const LANG_SHARES: [(usize, u32); 6] =
    [(0, 350), (1, 300), (2, 100), (3, 80), (4, 70), (CODE, 100)];
const CODE: usize = 5;
const PROGS: [(&str, u32); 3] = [("rust", 35), ("python", 40), ("javascript", 25)];

// ---------------------------------------------------------------------------
// Lexicons
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Lang {
    Fr,
    En,
    De,
    Es,
    It,
}

/// Grammatical gender (index into the German tables).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum G {
    M = 0,
    F = 1,
    N = 2,
}

/// German case (index into the German tables); other languages ignore it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Case {
    Nom = 0,
    Acc = 1,
    Dat = 2,
}

/// Raw word lists of one language. Word lists are whitespace-separated,
/// phrase lists `|`-separated; adjectives are `masculine/feminine` or one
/// invariable form. English verbs are base forms.
struct LexData {
    lang: Lang,
    code: &'static str,
    tld: &'static str,
    nouns_m: &'static str,
    nouns_f: &'static str,
    nouns_n: &'static str,
    adjs: &'static str,
    verbs_t: &'static str,
    verbs_i: &'static str,
    advs: &'static str,
    intens: &'static str,
    openers: &'static str,
    preps: &'static str,
    conjs: &'static str,
    names_m: &'static str,
    names_f: &'static str,
    places: &'static str,
    pron_m: &'static str,
    pron_f: &'static str,
    copula: &'static str,
    say: &'static str,
    say_sep: &'static str,
    qopen: &'static str,
    qclose: &'static str,
    rel: &'static str,
    year_in: &'static str,
    and: &'static str,
    excl: &'static str,
    chapter: &'static str,
    /// Wikipedia-style title: `§N` noun, `§P` place.
    wiki: &'static str,
    headings: &'static str,
    /// Title prefixes for Book, Academic, Legal and Data titles.
    prefixes: [&'static str; 4],
    boiler: &'static str,
    months: &'static str,
    sources: &'static [Source],
}

static LEXICONS: [&LexData; 5] = [&FR, &EN, &DE, &ES, &IT];

static FR: LexData = LexData {
    lang: Lang::Fr,
    code: "fr",
    tld: "fr",
    nouns_m: "roi château village jardin fleuve pont chemin marché port navire soldat paysan médecin \
              prêtre juge peuple pays royaume siècle hiver été automne printemps matin soir livre \
              journal tableau portrait poème roman chant silence regard visage cœur esprit voyage \
              projet travail commerce moulin clocher mur toit champ bois rocher ciel vent soleil feu \
              nuage orage lac océan oiseau cheval chien loup arbre vin pain sel fer bateau quartier \
              conseil ministre règlement décret tribunal contrat budget service musée théâtre récit \
              auteur lecteur homme enfant ouvrage escalier hôpital couvent domaine voisin marchand",
    nouns_f: "maison ville église rue rivière forêt montagne mer plaine vallée route porte fenêtre \
              chambre table lettre histoire langue voix nuit journée saison guerre paix loi \
              république nation armée foule famille femme fille mère reine servante cathédrale \
              abbaye bibliothèque lumière ombre pluie neige fleur herbe terre pierre source fontaine \
              école université commune région assemblée commission société science méthode étude \
              question réponse idée mémoire pensée gloire fortune promesse chanson musique peinture \
              collection place cour tour île côte frontière campagne récolte vigne cuisine",
    nouns_n: "",
    adjs: "ancien/ancienne sombre clair/claire profond/profonde étroit/étroite large \
           lointain/lointaine paisible silencieux/silencieuse heureux/heureuse triste fidèle \
           célèbre public/publique royal/royale national/nationale rural/rurale humide froid/froide \
           chaud/chaude blanc/blanche noir/noire rouge vert/verte bleu/bleue doré/dorée immense \
           fragile solide étrange obscur/obscure riche pauvre modeste élégant/élégante \
           discret/discrète sévère généreux/généreuse curieux/curieuse nécessaire \
           important/importante inconnu/inconnue oublié/oubliée désert/déserte tranquille vaste \
           brillant/brillante léger/légère lourd/lourde doux/douce amer/amère secret/secrète \
           naturel/naturelle moderne classique municipal/municipale littéraire politique économique",
    verbs_t: "regarde observe construit traverse découvre quitte rejoint décrit raconte défend \
              protège garde ouvre ferme porte cherche trouve perd aime admire connaît visite dirige \
              prépare répare vend achète reçoit envoie écrit lit publie examine étudie présente \
              remplace transforme domine entoure éclaire habite cultive attend suit accompagne \
              annonce signe modifie abandonne rappelle conserve illustre menace",
    verbs_i: "arrive|part|revient|dort|passe|tombe|disparaît|demeure|reste|travaille|marche|attend|\
              hésite|s'éloigne|se repose|s'arrête|chante|pleure|sourit|avance|recule|grandit|\
              vieillit|change|brille",
    advs: "souvent|toujours|encore|parfois|rarement|lentement|doucement|vivement|enfin|aussitôt|\
           déjà|longtemps|volontiers|sans doute|peut-être|certainement|simplement|naturellement|\
           tranquillement|également",
    intens: "très fort assez bien trop si plutôt",
    openers: "Le lendemain|Ce matin-là|Depuis longtemps|Au bout d'un moment|Pendant la nuit|\
              Dès l'aube|Cependant|Pourtant|Ensuite|Alors|Peu à peu|Autrefois|Aujourd'hui|\
              En revanche|Selon la tradition|Au début du siècle|Dans la soirée|Par ailleurs|De plus|\
              En effet|Au printemps|Après la guerre",
    preps: "dans|sur|sous|avec|pour|sans|vers|derrière|devant|près de|loin de|au milieu de|\
            le long de|à travers|auprès de|à",
    conjs: " et|, mais|, car|, puis|, tandis que|, alors que",
    names_m: "Jean|Pierre|Jacques|Étienne|Antoine|Victor|François|Henri|Monsieur Durand|Louis",
    names_f: "Marie|Louise|Hélène|Madeleine|Claire|Jeanne|Élise|Camille|Madame Lefèvre|Adèle",
    places: "Paris|Lyon|Marseille|Bordeaux|Rouen|Nantes|Toulouse|Lille|Strasbourg|Grenoble|\
             Avignon|Reims|Dijon|Brest|Orléans|Versailles",
    pron_m: "il|on",
    pron_f: "elle",
    copula: "est",
    say: "dit",
    say_sep: " : ",
    qopen: "« ",
    qclose: " »",
    rel: "qui",
    year_in: "En ",
    and: "et",
    excl: " !",
    chapter: "CHAPITRE",
    wiki: "§N de §P",
    headings: "Histoire|Géographie|Description|Architecture|Économie|Culture|Patrimoine|\
               Postérité|Toponymie|Démographie",
    prefixes: [
        "Histoire de|Essai sur|Mémoires sur|Voyage à|Lettres sur|Souvenirs de|Éloge de|\
         Considérations sur",
        "Recherches sur|Étude sur|Remarques sur|Note sur|Contribution à l'étude de|\
         Nouvelles observations sur",
        "Décret relatif à|Arrêté relatif à|Loi relative à|Circulaire relative à|\
         Ordonnance portant réforme de",
        "Données relatives à|Inventaire de|Répertoire de|Recensement de|Statistiques sur",
    ],
    boiler: "Partager sur Facebook|Tous droits réservés.|Inscrivez-vous à notre lettre d'information|\
             Lire aussi|Ce site utilise des cookies.",
    months: "janvier février mars avril mai juin juillet août septembre octobre novembre décembre",
    sources: &FR_SOURCES,
};

static EN: LexData = LexData {
    lang: Lang::En,
    code: "en",
    tld: "com",
    nouns_m: "",
    nouns_f: "",
    nouns_n: "house city church street river forest mountain sea plain valley road door window \
              room table letter history language voice night day season war peace law republic \
              nation army crowd family woman girl mother queen servant cathedral abbey library light \
              shadow rain snow flower grass earth stone spring fountain school university region \
              assembly committee society science method study question answer idea memory thought \
              glory fortune promise song music painting collection square court tower island coast \
              border harvest vineyard kitchen king castle village garden bridge path market harbour \
              ship soldier farmer doctor priest judge people country kingdom century winter summer \
              autumn morning evening book newspaper portrait poem novel silence face heart mind \
              journey project mill wall roof field wood rock sky wind sun fire cloud storm lake ocean \
              bird horse dog wolf tree wine bread iron boat council minister regulation museum \
              theatre story author reader model algorithm dataset network experiment theory \
              framework equation result estimate sample process system",
    adjs: "old new dark bright deep narrow wide distant quiet silent happy sad faithful famous \
           public royal national rural damp cold warm white black red green blue golden immense \
           fragile solid strange obscure rich poor modest elegant discreet severe generous curious \
           necessary important unknown forgotten empty peaceful vast brilliant heavy gentle bitter \
           secret natural modern classical simple robust efficient large small recent early \
           ancient open effective general novel",
    verbs_t: "watch observe build cross discover leave join describe tell defend protect keep open \
              close carry seek find lose love admire know visit lead prepare repair sell buy receive \
              send write read publish examine study present replace transform dominate surround \
              inhabit cultivate await follow accompany announce sign modify abandon recall preserve \
              illustrate threaten improve reduce estimate measure propose evaluate extend predict",
    verbs_i: "arrive|return|sleep|pass|fall|disappear|remain|stay|work|walk|wait|hesitate|rest|stop|\
              sing|weep|smile|advance|grow|change|shine|wander|linger|appear",
    advs: "often|always|still|sometimes|rarely|slowly|gently|quickly|finally|immediately|already|\
           gladly|certainly|simply|naturally|quietly|also|never|usually|carefully",
    intens: "very rather quite too so remarkably surprisingly",
    openers: "The next day|That morning|For a long time|After a while|During the night|At dawn|\
              However|Yet|Then|Gradually|In those days|Today|On the other hand|\
              According to tradition|At the beginning of the century|In the evening|Moreover|\
              Indeed|In the spring|After the war|In practice|As a result|In contrast",
    preps: "in|on|with|near|under|across|beyond|behind|towards|without|along|through|around|above|\
            inside|for",
    conjs: ", and|, but|, while|, for|, so|, although|, whereas",
    names_m: "John|Thomas|William|Henry|Edward|Robert|Mr. Hale|Dr. Carter|George|Arthur",
    names_f: "Mary|Elizabeth|Anne|Margaret|Alice|Catherine|Mrs. Grant|Emily|Jane|Charlotte",
    places: "London|Oxford|Manchester|Edinburgh|Bristol|York|Boston|Chicago|Dublin|Liverpool|\
             Cambridge|Glasgow|Bath|Leeds|Philadelphia|Baltimore",
    pron_m: "he",
    pron_f: "she",
    copula: "is",
    say: "says",
    say_sep: ": ",
    qopen: "\"",
    qclose: "\"",
    rel: "which",
    year_in: "In ",
    and: "and",
    excl: "!",
    chapter: "CHAPTER",
    wiki: "§P §N",
    headings: "History|Geography|Description|Architecture|Economy|Culture|Heritage|Legacy|\
               Etymology|Reception",
    prefixes: [
        "A History of|An Essay on|Memoirs of|A Journey to|Letters on|Recollections of|\
         In Praise of|Reflections on|The Tale of",
        "On|Towards|Revisiting|A Study of|Notes on|Estimating|Learning|Rethinking",
        "Regulation concerning|Act relating to|Notice regarding|Rule on|Order concerning",
        "Records of|Survey of|Statistics on|Register of",
    ],
    boiler: "Share this article|All rights reserved.|Subscribe to our newsletter|Read more|\
             This website uses cookies.",
    months: "January February March April May June July August September October November December",
    sources: &EN_SOURCES,
};

static DE: LexData = LexData {
    lang: Lang::De,
    code: "de",
    tld: "de",
    nouns_m: "König Fluss Weg Markt Hafen Berg Wald Garten Turm Brunnen Himmel Wind Regen Schnee \
              Sturm See Baum Vogel Hund Wolf Wein Stein Tisch Brief Roman Dichter Maler Lehrer Arzt \
              Richter Pfarrer Kaufmann Winter Sommer Herbst Frühling Morgen Abend Tag Monat Krieg \
              Staat Rat Vertrag Bericht Plan Zug Wagen Keller Saal Platz Palast Dom Friedhof Acker \
              Bach Strand Mantel Schlüssel Spiegel Vater Bruder Freund Gast Kaiser Bürgermeister",
    nouns_f: "Stadt Kirche Straße Brücke Mauer Tür Küche Stube Schule Universität Bibliothek \
              Sprache Geschichte Stimme Nacht Woche Zeit Ernte Welt Erde Sonne Wolke Blume Wiese \
              Insel Küste Grenze Mutter Schwester Tochter Frau Königin Magd Familie Gesellschaft \
              Regierung Verwaltung Kommission Versammlung Wissenschaft Methode Frage Antwort Idee \
              Erinnerung Hoffnung Freude Musik Malerei Sammlung Kapelle Burg Mühle Quelle \
              Landschaft Reise Arbeit Zeitung Kerze Lampe",
    nouns_n: "Haus Dorf Schloss Land Feld Tal Meer Ufer Fenster Zimmer Dach Tor Buch Bild Gedicht \
              Lied Licht Feuer Wasser Gras Pferd Schiff Boot Volk Reich Gericht Gesetz Amt Museum \
              Theater Kloster Gebirge Jahrhundert Kind Mädchen Gespräch Geheimnis Werk Brot Gold \
              Eisen Leben Glück Rathaus Denkmal",
    adjs: "alt neu groß klein hell still schön weit tief kalt warm stark leise müde fremd reich arm \
           froh traurig treu berühmt öffentlich königlich ländlich feucht weiß schwarz rot grün blau \
           golden riesig zart fest seltsam bescheiden elegant streng großzügig neugierig notwendig \
           wichtig unbekannt vergessen leer ruhig schwer sanft bitter geheim natürlich modern \
           klassisch einfach breit schmal lang kurz heiter",
    verbs_t: "sieht betrachtet baut überquert entdeckt verlässt erreicht beschreibt erzählt \
              verteidigt schützt bewahrt öffnet schließt trägt sucht findet verliert liebt bewundert \
              kennt besucht leitet repariert verkauft kauft erhält schickt schreibt liest \
              veröffentlicht untersucht studiert präsentiert ersetzt verwandelt beherrscht umgibt \
              bewohnt pflegt erwartet begleitet verkündet unterschreibt verändert malt hört zeichnet \
              bemerkt vergisst erkennt beobachtet fürchtet",
    verbs_i: "kommt|geht|schläft|bleibt|wartet|arbeitet|wandert|ruht|steht|liegt|sitzt|lebt|wohnt|\
              singt|weint|lächelt|zögert|verschwindet|erscheint|wächst|schweigt|träumt|spielt|reist|\
              eilt",
    advs: "oft|immer|noch|manchmal|selten|langsam|schnell|endlich|sofort|schon|gern|sicherlich|\
           einfach|natürlich|ruhig|auch|wieder|kaum|bald|heimlich",
    intens: "sehr ziemlich recht zu so überaus besonders",
    openers: "Am nächsten Tag|An jenem Morgen|Seit langer Zeit|Nach einer Weile|In der Nacht|\
              Bei Tagesanbruch|Dennoch|Trotzdem|Dann|Allmählich|Damals|Heute|Andererseits|\
              Der Überlieferung nach|Zu Beginn des Jahrhunderts|Am Abend|Außerdem|Tatsächlich|\
              Im Frühling|Nach dem Krieg|Später|Zunächst",
    preps: "mit|bei|von|aus|in|unter|hinter|vor|neben|zu|über",
    conjs: " und|, aber|, denn|, doch| oder",
    names_m: "Johann|Friedrich|Karl|Heinrich|Wilhelm|Georg|Herr Müller|Doktor Weber|Ludwig|Paul",
    names_f: "Maria|Anna|Elisabeth|Margarete|Luise|Katharina|Frau Schneider|Sophie|Charlotte|Emma",
    places: "Berlin|Hamburg|München|Köln|Frankfurt|Leipzig|Dresden|Wien|Zürich|Bremen|Nürnberg|\
             Weimar|Heidelberg|Stuttgart|Salzburg|Bonn",
    pron_m: "er",
    pron_f: "sie",
    copula: "ist",
    say: "sagt",
    say_sep: ": ",
    qopen: "„",
    qclose: "“",
    rel: "",
    year_in: "Im Jahr ",
    and: "und",
    excl: "!",
    chapter: "KAPITEL",
    wiki: "§N (§P)",
    headings: "Geschichte|Geographie|Beschreibung|Architektur|Wirtschaft|Kultur|Rezeption|\
               Etymologie|Bevölkerung|Persönlichkeiten",
    prefixes: [
        "Über|Gedanken über|Briefe über|Betrachtungen über|Erinnerungen an|Reise durch",
        "Untersuchungen über|Bemerkungen über|Studien über|Neue Beobachtungen über",
        "Verordnung über|Gesetz über|Bekanntmachung über|Richtlinie für",
        "Daten über|Statistik über|Erhebung über|Verzeichnis für",
    ],
    boiler: "Auf Facebook teilen|Alle Rechte vorbehalten.|Newsletter abonnieren|Weiterlesen|\
             Diese Website verwendet Cookies.",
    months: "Januar Februar März April Mai Juni Juli August September Oktober November Dezember",
    sources: &DE_SOURCES,
};

static ES: LexData = LexData {
    lang: Lang::Es,
    code: "es",
    tld: "es",
    nouns_m: "rey castillo pueblo jardín río puente camino mercado puerto barco soldado campesino \
              médico sacerdote juez país reino siglo invierno verano otoño libro periódico cuadro \
              retrato poema cuento canto silencio rostro corazón espíritu viaje proyecto trabajo \
              comercio molino campanario muro tejado campo bosque cielo viento sol fuego lago océano \
              pájaro caballo perro lobo árbol vino pan hierro barrio consejo ministro reglamento \
              decreto tribunal contrato museo teatro relato autor lector hombre niño monasterio \
              convento valle mar monte palacio capitán maestro",
    nouns_f: "casa ciudad iglesia calle montaña llanura carretera puerta ventana habitación mesa \
              carta historia lengua voz noche jornada estación guerra paz ley república nación \
              multitud familia mujer niña madre reina criada catedral abadía biblioteca luz sombra \
              lluvia nieve flor hierba tierra piedra fuente escuela universidad región asamblea \
              comisión sociedad ciencia idea memoria gloria fortuna promesa canción música pintura \
              colección plaza corte torre isla costa frontera cosecha viña cocina mañana tarde selva \
              aldea provincia",
    nouns_n: "",
    adjs: "antiguo/antigua nuevo/nueva oscuro/oscura claro/clara profundo/profunda \
           estrecho/estrecha ancho/ancha lejano/lejana tranquilo/tranquila silencioso/silenciosa \
           feliz triste fiel célebre público/pública real nacional rural húmedo/húmeda frío/fría \
           cálido/cálida blanco/blanca negro/negra rojo/roja verde azul dorado/dorada \
           inmenso/inmensa frágil sólido/sólida extraño/extraña rico/rica pobre modesto/modesta \
           elegante discreto/discreta severo/severa generoso/generosa curioso/curiosa \
           necesario/necesaria importante desconocido/desconocida olvidado/olvidada \
           desierto/desierta vasto/vasta brillante ligero/ligera pesado/pesada dulce amargo/amarga \
           secreto/secreta natural moderno/moderna clásico/clásica municipal político/política \
           español/española",
    verbs_t: "mira observa construye atraviesa descubre abandona alcanza describe cuenta defiende \
              protege guarda abre cierra lleva busca encuentra pierde ama admira conoce visita \
              dirige prepara repara vende compra recibe envía escribe lee publica examina estudia \
              presenta reemplaza transforma domina rodea ilumina habita cultiva espera sigue \
              acompaña anuncia firma modifica recuerda conserva ilustra amenaza",
    verbs_i: "llega|parte|vuelve|duerme|pasa|cae|desaparece|permanece|se queda|trabaja|camina|\
              espera|duda|descansa|se detiene|canta|llora|sonríe|avanza|crece|cambia|brilla|vive|\
              sueña|regresa",
    advs: "a menudo|siempre|todavía|a veces|rara vez|lentamente|suavemente|rápidamente|finalmente|\
           enseguida|ya|de buena gana|sin duda|quizás|simplemente|naturalmente|tranquilamente|\
           también|otra vez|con cuidado",
    intens: "muy bastante demasiado tan sumamente realmente",
    openers: "Al día siguiente|Aquella mañana|Desde hace tiempo|Al cabo de un rato|\
              Durante la noche|Al amanecer|Sin embargo|No obstante|Luego|Poco a poco|Antiguamente|\
              Hoy|Por otra parte|Según la tradición|A principios de siglo|Por la tarde|Además|\
              En efecto|En primavera|Después de la guerra|Entonces",
    preps: "en|con|sobre|desde|hacia|sin|cerca de|lejos de|junto a|para|detrás de|delante de|bajo|\
            a través de|dentro de|frente a",
    conjs: " y|, pero|, porque|, mientras|, aunque",
    names_m: "Juan|Pedro|Diego|Francisco|Miguel|Antonio|don Alonso|Rafael|Manuel|Carlos",
    names_f: "María|Carmen|Lucía|Teresa|Ana|Elena|doña Juana|Dolores|Rosa|Pilar",
    places: "Madrid|Sevilla|Barcelona|Valencia|Toledo|Granada|Salamanca|Bilbao|Córdoba|Zaragoza|\
             Cádiz|Burgos|Málaga|Oviedo|León|Segovia",
    pron_m: "él",
    pron_f: "ella",
    copula: "es",
    say: "dice",
    say_sep: ": ",
    qopen: "«",
    qclose: "»",
    rel: "que",
    year_in: "En ",
    and: "y",
    excl: "!",
    chapter: "CAPÍTULO",
    wiki: "§N de §P",
    headings: "Historia|Geografía|Descripción|Arquitectura|Economía|Cultura|Patrimonio|Legado|\
               Etimología|Demografía",
    prefixes: [
        "Historia de|Ensayo sobre|Memorias de|Viaje a|Cartas sobre|Recuerdos de|Elogio de|\
         Consideraciones sobre",
        "Estudio sobre|Notas sobre|Aproximación a|Análisis de|Contribución al estudio de",
        "Real Decreto sobre|Ley relativa a|Orden sobre|Resolución sobre",
        "Estadística de|Registro de|Censo de|Datos sobre",
    ],
    boiler: "Compartir en Facebook|Todos los derechos reservados.|Suscríbete a nuestro boletín|\
             Leer más|Este sitio web utiliza cookies.",
    months: "enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre diciembre",
    sources: &ES_SOURCES,
};

static IT: LexData = LexData {
    lang: Lang::It,
    code: "it",
    tld: "it",
    nouns_m: "re castello villaggio giardino fiume ponte sentiero mercato porto soldato contadino \
              medico prete giudice paese regno secolo inverno autunno mattino libro giornale quadro \
              ritratto poema romanzo canto silenzio volto cuore spirito viaggio progetto lavoro \
              commercio mulino campanile muro tetto campo bosco cielo vento sole fuoco lago oceano \
              uccello cavallo cane lupo albero vino pane ferro quartiere consiglio ministro \
              regolamento decreto tribunale contratto museo teatro racconto autore lettore uomo \
              bambino monastero convento mare monte palazzo capitano maestro specchio studente \
              scrittore spazio stato fiore",
    nouns_f: "casa città chiesa strada montagna pianura via porta finestra camera tavola lettera \
              storia lingua voce notte giornata stagione guerra pace legge repubblica nazione folla \
              famiglia donna ragazza madre regina serva cattedrale abbazia biblioteca luce ombra \
              pioggia neve erba terra pietra fonte scuola università regione assemblea commissione \
              società scienza idea memoria gloria fortuna promessa canzone musica pittura collezione \
              piazza corte torre isola costa frontiera vendemmia vigna cucina mattina sera valle \
              provincia campagna stella spiaggia",
    nouns_n: "",
    adjs: "antico/antica nuovo/nuova oscuro/oscura chiaro/chiara profondo/profonda stretto/stretta \
           largo/larga lontano/lontana tranquillo/tranquilla silenzioso/silenziosa felice triste \
           fedele celebre pubblico/pubblica reale nazionale rurale umido/umida freddo/fredda \
           caldo/calda bianco/bianca nero/nera rosso/rossa verde azzurro/azzurra dorato/dorata \
           immenso/immensa fragile solido/solida strano/strana ricco/ricca povero/povera \
           modesto/modesta elegante discreto/discreta severo/severa generoso/generosa \
           curioso/curiosa necessario/necessaria importante sconosciuto/sconosciuta \
           dimenticato/dimenticata deserto/deserta vasto/vasta brillante leggero/leggera pesante \
           dolce amaro/amara segreto/segreta naturale moderno/moderna classico/classica comunale \
           politico/politica italiano/italiana",
    verbs_t: "guarda osserva costruisce attraversa scopre lascia raggiunge descrive racconta \
              difende protegge custodisce apre chiude porta cerca trova perde ama ammira conosce \
              visita dirige prepara ripara vende compra riceve manda scrive legge pubblica esamina \
              studia presenta sostituisce trasforma domina circonda illumina abita coltiva aspetta \
              segue accompagna annuncia firma modifica ricorda conserva illustra minaccia",
    verbs_i: "arriva|parte|ritorna|dorme|passa|cade|scompare|rimane|resta|lavora|cammina|attende|\
              esita|riposa|si ferma|canta|piange|sorride|avanza|cresce|cambia|brilla|vive|sogna|\
              viaggia",
    advs: "spesso|sempre|ancora|talvolta|raramente|lentamente|dolcemente|rapidamente|finalmente|\
           subito|già|volentieri|senza dubbio|forse|semplicemente|naturalmente|tranquillamente|\
           anche|di nuovo|con cura",
    intens: "molto piuttosto assai troppo così davvero estremamente",
    openers: "Il giorno dopo|Quella mattina|Da molto tempo|Dopo un poco|Durante la notte|All'alba|\
              Tuttavia|Eppure|Poi|A poco a poco|Un tempo|Oggi|D'altra parte|\
              Secondo la tradizione|All'inizio del secolo|La sera|Inoltre|Infatti|In primavera|\
              Dopo la guerra|Allora",
    preps: "con|per|tra|verso|senza|a|da|in|su|vicino a|lontano da|sotto|sopra|dietro|davanti a|\
            attraverso|presso",
    conjs: " e|, ma|, perché|, mentre|, poi|, quindi",
    names_m: "Giovanni|Pietro|Francesco|Marco|Antonio|Giuseppe|Don Abbondio|Lorenzo|Carlo|Luigi",
    names_f: "Maria|Lucia|Giulia|Chiara|Elena|Anna|Donna Prassede|Beatrice|Teresa|Caterina",
    places: "Roma|Milano|Firenze|Venezia|Napoli|Torino|Bologna|Genova|Palermo|Siena|Verona|Pisa|\
             Padova|Bari|Trieste|Ravenna",
    pron_m: "egli|lui",
    pron_f: "ella|lei",
    copula: "è",
    say: "dice",
    say_sep: ": ",
    qopen: "«",
    qclose: "»",
    rel: "che",
    year_in: "Nel ",
    and: "e",
    excl: "!",
    chapter: "CAPITOLO",
    wiki: "§N di §P",
    headings: "Storia|Geografia|Descrizione|Architettura|Economia|Cultura|Patrimonio|Eredità|\
               Etimologia|Società",
    prefixes: [
        "Storia di|Saggio su|Memorie di|Viaggio in|Lettere su|Ricordi di|Elogio di|\
         Considerazioni su",
        "Studi su|Note su|Ricerche su|Analisi di|Contributo allo studio di",
        "Decreto relativo a|Legge su|Regolamento per|Circolare su",
        "Dati su|Censimento di|Registro di|Statistiche su",
    ],
    boiler: "Condividi su Facebook|Tutti i diritti riservati.|Iscriviti alla newsletter|\
             Leggi anche|Questo sito utilizza cookie.",
    months: "gennaio febbraio marzo aprile maggio giugno luglio agosto settembre ottobre novembre \
             dicembre",
    sources: &IT_SOURCES,
};

const LATEX_SENTENCES: &[&str] = &[
    r"We obtain a bound of $\mathcal{O}(n \log n)$ on the running time.",
    r"The estimate holds for all $\epsilon > 0$ and every $\delta \in (0, 1)$.",
    r"In all experiments we set $\lambda = 0.1$ and $\beta_1 = 0.9$.",
    r"Hence $f(x) \leq C \|x\|^2$ for some constant $C > 0$.",
    r"The training objective is $\mathcal{L} = -\sum_i \log p(y_i \mid x_i)$.",
    r"Table 2 reports the mean and the standard deviation over 5 runs.",
    r"Let $G = (V, E)$ be a finite graph with $|V| = n$.",
    r"The proof follows from Lemma 3 and the triangle inequality.",
];

const QUESTION_SENTENCES: &[&str] = &[
    "I tried calling `§F()` but it always returns an empty list.",
    "Calling `§F(§a)` raises an error since version §m.",
    "Is there a way to avoid `§F` here?",
    "The `§f` field is set to `null` after the first call.",
    "Edit: wrapping the call in `try`/`except` did not help.",
];

// ---------------------------------------------------------------------------
// Sentence generation
// ---------------------------------------------------------------------------

const DE_DEF: [[&str; 3]; 3] = [
    ["der", "die", "das"],
    ["den", "die", "das"],
    ["dem", "der", "dem"],
];
const DE_INDEF: [[&str; 3]; 3] = [
    ["ein", "eine", "ein"],
    ["einen", "eine", "ein"],
    ["einem", "einer", "einem"],
];
const DE_END_DEF: [[&str; 3]; 3] = [["e", "e", "e"], ["en", "e", "e"], ["en", "en", "en"]];
const DE_END_INDEF: [[&str; 3]; 3] = [["er", "e", "es"], ["en", "e", "es"], ["en", "en", "en"]];

/// A lexicon parsed into lists once per [`generate`] call.
struct Lex {
    d: &'static LexData,
    nouns: Vec<(&'static str, G)>,
    adjs: Vec<(&'static str, &'static str)>,
    vt: Vec<String>,
    vt_base: Vec<&'static str>,
    vi: Vec<String>,
    advs: Vec<&'static str>,
    intens: Vec<&'static str>,
    openers: Vec<&'static str>,
    preps: Vec<&'static str>,
    conjs: Vec<&'static str>,
    names: Vec<(&'static str, G)>,
    places: Vec<&'static str>,
    prons: Vec<(&'static str, G)>,
    headings: Vec<&'static str>,
    prefixes: [Vec<&'static str>; 4],
    boiler: Vec<&'static str>,
    months: Vec<&'static str>,
}

fn words(s: &'static str) -> Vec<&'static str> {
    s.split_whitespace().collect()
}

fn phrases(s: &'static str) -> Vec<&'static str> {
    s.split('|')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect()
}

fn tagged(
    s: &'static str,
    g: G,
    split: fn(&'static str) -> Vec<&'static str>,
) -> Vec<(&'static str, G)> {
    split(s).into_iter().map(|w| (w, g)).collect()
}

/// English third person singular present.
fn en_3sg(base: &str) -> String {
    let b = base.as_bytes();
    let n = b.len();
    if n >= 2 && b[n - 1] == b'y' && !b"aeiou".contains(&b[n - 2]) {
        format!("{}ies", &base[..n - 1])
    } else if ["s", "sh", "ch", "x", "z", "o"]
        .iter()
        .any(|e| base.ends_with(e))
    {
        format!("{base}es")
    } else {
        format!("{base}s")
    }
}

/// Whether English takes "an" before `w`.
fn en_an(w: &str) -> bool {
    match w.as_bytes()[0].to_ascii_lowercase() {
        b'a' | b'i' | b'o' => true,
        b'e' => !w.starts_with("eu"),
        b'u' => !["uni", "use", "usu", "uti"]
            .iter()
            .any(|p| w.starts_with(p)),
        b'h' => ["hour", "honest", "heir"].iter().any(|p| w.starts_with(p)),
        _ => false,
    }
}

/// Whether a French word elides a preceding "le", "la" or "que" (the
/// word lists hold no aspirated h).
fn fr_elides(w: &str) -> bool {
    matches!(
        w.chars().next(),
        Some(
            'a' | 'e'
                | 'i'
                | 'o'
                | 'u'
                | 'y'
                | 'â'
                | 'à'
                | 'é'
                | 'è'
                | 'ê'
                | 'î'
                | 'ô'
                | 'û'
                | 'œ'
                | 'h'
                | 'A'
                | 'E'
                | 'I'
                | 'O'
                | 'U'
                | 'É'
                | 'È'
                | 'Ê'
                | 'À'
                | 'Â'
                | 'Î'
                | 'Ô'
        )
    )
}

fn it_vowel(w: &str) -> bool {
    matches!(
        w.chars().next(),
        Some('a' | 'e' | 'i' | 'o' | 'u' | 'à' | 'è' | 'é' | 'ì' | 'ò' | 'ù')
    )
}

/// Italian words that take "lo"/"uno".
fn it_lo(w: &str) -> bool {
    let b = w.as_bytes();
    matches!(b[0], b'z' | b'x' | b'y')
        || w.starts_with("gn")
        || w.starts_with("ps")
        || w.starts_with("pn")
        || (b[0] == b's' && b.len() > 1 && !b"aeiou".contains(&b[1]))
}

/// Splits a preposition into everything up to its last word and that word.
fn split_last(p: &str) -> (&str, &str) {
    match p.rfind(' ') {
        Some(i) => (&p[..=i], &p[i + 1..]),
        None => ("", p),
    }
}

/// Upper-cases the character starting at byte `at`, if there is one.
fn capitalize_at(s: &mut String, at: usize) {
    if let Some(c) = s[at..].chars().next() {
        if c.is_lowercase() {
            let up: String = c.to_uppercase().collect();
            s.replace_range(at..at + c.len_utf8(), &up);
        }
    }
}

fn capitalized(w: &str) -> String {
    let mut s = w.to_string();
    capitalize_at(&mut s, 0);
    s
}

impl Lex {
    fn new(d: &'static LexData) -> Lex {
        let en = d.lang == Lang::En;
        let vt_base = words(d.verbs_t);
        let vi_base = phrases(d.verbs_i);
        let conj = |v: &[&str]| -> Vec<String> {
            v.iter()
                .map(|w| if en { en_3sg(w) } else { w.to_string() })
                .collect()
        };
        let mut nouns = tagged(d.nouns_m, G::M, words);
        nouns.extend(tagged(d.nouns_f, G::F, words));
        nouns.extend(tagged(d.nouns_n, G::N, words));
        let mut names = tagged(d.names_m, G::M, phrases);
        names.extend(tagged(d.names_f, G::F, phrases));
        let mut prons = tagged(d.pron_m, G::M, phrases);
        prons.extend(tagged(d.pron_f, G::F, phrases));
        let adjs = words(d.adjs)
            .into_iter()
            .map(|a| match a.split_once('/') {
                Some((m, f)) => (m, f),
                None => (a, a),
            })
            .collect();
        Lex {
            d,
            nouns,
            adjs,
            vt: conj(&vt_base),
            vt_base,
            vi: conj(&vi_base),
            advs: phrases(d.advs),
            intens: words(d.intens),
            openers: phrases(d.openers),
            preps: phrases(d.preps),
            conjs: d.conjs.split('|').collect(),
            names,
            places: phrases(d.places),
            prons,
            headings: phrases(d.headings),
            prefixes: d.prefixes.map(phrases),
            boiler: phrases(d.boiler),
            months: words(d.months),
        }
    }

    fn lang(&self) -> Lang {
        self.d.lang
    }

    /// Writes a noun phrase (with `prep` in front, contracted where the
    /// language contracts) and returns the noun's gender.
    fn np(
        &self,
        r: &mut Rng,
        s: &mut String,
        case: Case,
        prep: Option<&str>,
        def: bool,
        adj: bool,
    ) -> G {
        let (noun, g) = *r.pick(&self.nouns);
        let a = if adj { Some(*r.pick(&self.adjs)) } else { None };
        let fem = g == G::F;
        match self.lang() {
            Lang::Fr => {
                let art = match (def, fem) {
                    (true, _) if fr_elides(noun) => "l'",
                    (true, true) => "la",
                    (true, false) => "le",
                    (false, true) => "une",
                    (false, false) => "un",
                };
                match prep {
                    None => s.push_str(art),
                    Some(p) => {
                        let (head, last) = split_last(p);
                        s.push_str(head);
                        match (last, art) {
                            ("de", "le") => s.push_str("du"),
                            ("à", "le") => s.push_str("au"),
                            ("de", "un" | "une") => {
                                s.push_str("d'");
                                s.push_str(art);
                            }
                            _ => {
                                s.push_str(last);
                                s.push(' ');
                                s.push_str(art);
                            }
                        }
                    }
                }
                if !s.ends_with('\'') {
                    s.push(' ');
                }
                s.push_str(noun);
                if let Some((m, f)) = a {
                    s.push(' ');
                    s.push_str(if fem { f } else { m });
                }
            }
            Lang::En => {
                if let Some(p) = prep {
                    s.push_str(p);
                    s.push(' ');
                }
                let first = a.map_or(noun, |x| x.0);
                s.push_str(if def {
                    "the"
                } else if en_an(first) {
                    "an"
                } else {
                    "a"
                });
                s.push(' ');
                if let Some((w, _)) = a {
                    s.push_str(w);
                    s.push(' ');
                }
                s.push_str(noun);
            }
            Lang::De => {
                let c = if prep.is_some() { Case::Dat } else { case } as usize;
                let gi = g as usize;
                let art = if def { DE_DEF[c][gi] } else { DE_INDEF[c][gi] };
                match (prep, art) {
                    (None, _) => s.push_str(art),
                    (Some("in"), "dem") => s.push_str("im"),
                    (Some("von"), "dem") => s.push_str("vom"),
                    (Some("bei"), "dem") => s.push_str("beim"),
                    (Some("zu"), "dem") => s.push_str("zum"),
                    (Some("zu"), "der") => s.push_str("zur"),
                    (Some(p), _) => {
                        s.push_str(p);
                        s.push(' ');
                        s.push_str(art);
                    }
                }
                s.push(' ');
                if let Some((stem, _)) = a {
                    s.push_str(stem);
                    let end = if def {
                        DE_END_DEF[c][gi]
                    } else {
                        DE_END_INDEF[c][gi]
                    };
                    s.push_str(if stem.ends_with('e') { &end[1..] } else { end });
                    s.push(' ');
                }
                s.push_str(noun);
            }
            Lang::Es => {
                let art = match (def, fem) {
                    (true, true) => "la",
                    (true, false) => "el",
                    (false, true) => "una",
                    (false, false) => "un",
                };
                match prep {
                    None => s.push_str(art),
                    Some(p) => {
                        let (head, last) = split_last(p);
                        s.push_str(head);
                        match (last, art) {
                            ("de", "el") => s.push_str("del"),
                            ("a", "el") => s.push_str("al"),
                            _ => {
                                s.push_str(last);
                                s.push(' ');
                                s.push_str(art);
                            }
                        }
                    }
                }
                s.push(' ');
                s.push_str(noun);
                if let Some((m, f)) = a {
                    s.push(' ');
                    s.push_str(if fem { f } else { m });
                }
            }
            Lang::It => {
                let art = match (def, fem) {
                    (true, _) if it_vowel(noun) => "l'",
                    (true, true) => "la",
                    (true, false) if it_lo(noun) => "lo",
                    (true, false) => "il",
                    (false, true) if it_vowel(noun) => "un'",
                    (false, true) => "una",
                    (false, false) if it_lo(noun) => "uno",
                    (false, false) => "un",
                };
                match prep {
                    None => s.push_str(art),
                    Some(p) => {
                        let (head, last) = split_last(p);
                        s.push_str(head);
                        let base = match last {
                            _ if !def => None,
                            "di" => Some("de"),
                            "a" => Some("a"),
                            "da" => Some("da"),
                            "in" => Some("ne"),
                            "su" => Some("su"),
                            _ => None,
                        };
                        match base {
                            Some(b) => {
                                s.push_str(b);
                                s.push_str(match art {
                                    "il" => "l",
                                    "lo" => "llo",
                                    "l'" => "ll'",
                                    _ => "lla",
                                });
                            }
                            None => {
                                s.push_str(last);
                                s.push(' ');
                                s.push_str(art);
                            }
                        }
                    }
                }
                if !s.ends_with('\'') {
                    s.push(' ');
                }
                s.push_str(noun);
                if let Some((m, f)) = a {
                    s.push(' ');
                    s.push_str(if fem { f } else { m });
                }
            }
        }
        g
    }

    /// Writes a sentence subject; returns its gender.
    fn subject(&self, r: &mut Rng, s: &mut String) -> G {
        let k = r.below(100);
        if k < 50 {
            let adj = r.chance(3, 10);
            self.np(r, s, Case::Nom, None, true, adj)
        } else if k < 62 {
            let adj = r.chance(4, 10);
            self.np(r, s, Case::Nom, None, false, adj)
        } else if k < 87 {
            let (name, g) = *r.pick(&self.names);
            s.push_str(name);
            g
        } else {
            let (p, g) = *r.pick(&self.prons);
            s.push_str(p);
            g
        }
    }

    fn object(&self, r: &mut Rng, s: &mut String) {
        let def = r.chance(6, 10);
        let adj = r.chance(35, 100);
        self.np(r, s, Case::Acc, None, def, adj);
    }

    fn pp(&self, r: &mut Rng, s: &mut String) {
        let prep = *r.pick(&self.preps);
        let def = r.chance(7, 10);
        let adj = r.chance(25, 100);
        self.np(r, s, Case::Dat, Some(prep), def, adj);
    }

    /// Subject, transitive verb, object; verb first when `inverted`
    /// (German verb-second after a fronted adverbial).
    fn clause(&self, r: &mut Rng, s: &mut String, inverted: bool) {
        if inverted {
            s.push_str(r.word(&self.vt));
            s.push(' ');
            self.subject(r, s);
        } else {
            self.subject(r, s);
            s.push(' ');
            s.push_str(r.word(&self.vt));
        }
        s.push(' ');
        self.object(r, s);
    }

    /// Writes a fronted adverbial; returns whether the verb must come next.
    fn opener(&self, r: &mut Rng, s: &mut String) -> bool {
        s.push_str(r.word(&self.openers));
        if self.lang() == Lang::De {
            s.push(' ');
            true
        } else {
            s.push_str(", ");
            false
        }
    }

    fn adjective(&self, r: &mut Rng, s: &mut String, g: G) {
        let (m, f) = *r.pick(&self.adjs);
        s.push_str(if g == G::F { f } else { m });
    }

    /// Writes one sentence, capitalised and punctuated.
    fn sentence(&self, r: &mut Rng, s: &mut String) {
        let es_excl = self.lang() == Lang::Es && r.chance(1, 40);
        if es_excl {
            s.push('¡');
        }
        let start = s.len();
        let mut closed = false;
        match r.below(100) {
            0..=29 => {
                let inv = r.chance(1, 3) && self.opener(r, s);
                self.clause(r, s, inv);
                if r.chance(1, 3) {
                    s.push(' ');
                    self.pp(r, s);
                }
            }
            30..=41 => {
                let g = self.subject(r, s);
                s.push(' ');
                s.push_str(self.d.copula);
                s.push(' ');
                if r.chance(4, 10) {
                    s.push_str(r.word(&self.intens));
                    s.push(' ');
                }
                self.adjective(r, s, g);
            }
            42..=53 => {
                let inv = r.chance(1, 3) && self.opener(r, s);
                if inv {
                    s.push_str(r.word(&self.vi));
                    s.push(' ');
                    self.subject(r, s);
                } else {
                    self.subject(r, s);
                    s.push(' ');
                    s.push_str(r.word(&self.vi));
                }
                s.push(' ');
                self.pp(r, s);
            }
            54..=69 => {
                self.clause(r, s, false);
                let conj = r.word(&self.conjs);
                s.push_str(conj);
                let at = s.len();
                s.push(' ');
                self.clause(r, s, false);
                // French elision: "alors que elle" -> "alors qu'elle".
                if self.lang() == Lang::Fr && conj.ends_with("que") && fr_elides(&s[at + 1..]) {
                    s.replace_range(at - 1..at + 1, "'");
                }
            }
            70..=79 => {
                let adj = r.chance(1, 4);
                let g = self.np(r, s, Case::Nom, None, true, adj);
                s.push_str(", ");
                if self.lang() == Lang::De {
                    s.push_str(DE_DEF[0][g as usize]);
                    s.push(' ');
                    self.object(r, s);
                    s.push(' ');
                    s.push_str(r.word(&self.vt));
                } else {
                    s.push_str(self.d.rel);
                    s.push(' ');
                    s.push_str(r.word(&self.vt));
                    s.push(' ');
                    self.object(r, s);
                }
                s.push_str(", ");
                s.push_str(r.word(&self.vt));
                s.push(' ');
                self.object(r, s);
            }
            80..=89 => {
                self.subject(r, s);
                s.push(' ');
                let adv = *r.pick(&self.advs);
                let verb = r.pick(&self.vt);
                if self.lang() == Lang::En {
                    s.push_str(adv);
                    s.push(' ');
                    s.push_str(verb);
                } else {
                    s.push_str(verb);
                    s.push(' ');
                    s.push_str(adv);
                }
                s.push(' ');
                self.object(r, s);
            }
            90..=95 => {
                s.push_str(self.d.year_in);
                let _ = write!(s, "{}", r.range(1500, 2020));
                let inv = self.lang() == Lang::De;
                s.push_str(if inv { " " } else { ", " });
                self.clause(r, s, inv);
            }
            _ => {
                self.subject(r, s);
                s.push(' ');
                s.push_str(self.d.say);
                s.push_str(self.d.say_sep);
                s.push_str(self.d.qopen);
                let inner = s.len();
                self.clause(r, s, false);
                capitalize_at(s, inner);
                s.push('.');
                s.push_str(self.d.qclose);
                closed = true;
            }
        }
        capitalize_at(s, start);
        if es_excl {
            s.push('!');
        } else if !closed {
            if self.lang() != Lang::Es && r.chance(1, 50) {
                s.push_str(self.d.excl);
            } else {
                s.push('.');
            }
        }
    }

    /// Writes 2-7 sentences, stopping early once `s` reaches `target` bytes.
    fn paragraph(&self, r: &mut Rng, s: &mut String, target: usize) {
        let n = 2 + r.below(6);
        for k in 0..n {
            if k > 0 {
                s.push(' ');
            }
            self.sentence(r, s);
            if s.len() >= target {
                break;
            }
        }
    }

    /// A title-like noun phrase, after `prefix` when given.
    fn title_np(&self, r: &mut Rng, s: &mut String, prefix: Option<&str>) {
        let def = r.chance(8, 10);
        let adj = r.chance(3, 10);
        if self.lang() == Lang::De {
            if let Some(p) = prefix {
                s.push_str(p);
                s.push(' ');
            }
            self.np(r, s, Case::Acc, None, def, adj);
        } else {
            self.np(r, s, Case::Nom, prefix, def, adj);
        }
    }

    fn title(&self, r: &mut Rng, kind: TitleKind, year: Option<u32>) -> String {
        let mut s = String::with_capacity(64);
        let prefix_list = match kind {
            TitleKind::Academic => 1,
            TitleKind::Legal => 2,
            TitleKind::Data => 3,
            _ => 0,
        };
        match kind {
            TitleKind::Wiki => {
                let noun = capitalized(r.pick(&self.nouns).0);
                if r.chance(6, 10) {
                    let place = *r.pick(&self.places);
                    s = self.d.wiki.replace("§N", &noun).replace("§P", place);
                } else {
                    s = noun;
                }
            }
            TitleKind::Session if self.lang() == Lang::Fr => {
                let y = year.unwrap_or(2010);
                let _ = write!(
                    s,
                    "Compte rendu de la séance du {} {} {y}",
                    r.range(1, 28),
                    r.pick(&self.months)
                );
            }
            TitleKind::Session => {
                let y = year.unwrap_or(2010);
                let _ = write!(
                    s,
                    "Plenarprotokoll {}/{}",
                    (y.max(1949) - 1949) / 4 + 1,
                    r.range(1, 240)
                );
            }
            TitleKind::Question if self.lang() == Lang::En => {
                match r.below(3) {
                    0 => {
                        s.push_str("Why does ");
                        self.np(r, &mut s, Case::Nom, None, true, false);
                        s.push(' ');
                        s.push_str(r.word(&self.vt_base));
                        s.push(' ');
                        self.np(r, &mut s, Case::Acc, None, true, false);
                    }
                    1 => {
                        s.push_str("How can I ");
                        s.push_str(r.word(&self.vt_base));
                        s.push(' ');
                        self.np(r, &mut s, Case::Acc, None, false, true);
                        s.push(' ');
                        self.pp(r, &mut s);
                    }
                    _ => {
                        s.push_str("What is the difference between ");
                        self.np(r, &mut s, Case::Acc, None, true, false);
                        s.push_str(" and ");
                        self.np(r, &mut s, Case::Acc, None, true, false);
                    }
                }
                s.push('?');
            }
            _ => {
                let roll = r.below(10);
                let forced = matches!(kind, TitleKind::Legal | TitleKind::Data);
                if forced || (roll < 6 && kind != TitleKind::Web) {
                    let prefix = *r.pick(&self.prefixes[prefix_list]);
                    self.title_np(r, &mut s, Some(prefix));
                } else if roll < 8 {
                    self.np(r, &mut s, Case::Nom, None, true, false);
                    s.push(' ');
                    s.push_str(self.d.and);
                    s.push(' ');
                    self.np(r, &mut s, Case::Nom, None, true, false);
                } else {
                    self.np(r, &mut s, Case::Nom, None, true, true);
                }
            }
        }
        capitalize_at(&mut s, 0);
        if self.lang() == Lang::En && kind != TitleKind::Question {
            s = title_case(&s);
        }
        s
    }

    /// A natural-language text for `src`, about `target` bytes long.
    fn text(&self, r: &mut Rng, src: &Source, title: &str, target: usize) -> String {
        let mut s = String::with_capacity(target + 512);
        match src.text {
            TextKind::Prose
            | TextKind::Wiki
            | TextKind::Web
            | TextKind::Question
            | TextKind::Academic { .. } => {
                while s.len() < target {
                    if !s.is_empty() {
                        s.push_str("\n\n");
                        if matches!(src.text, TextKind::Wiki) && r.chance(1, 4) {
                            s.push_str(r.word(&self.headings));
                            s.push_str("\n\n");
                        }
                    }
                    self.paragraph(r, &mut s, target);
                    match src.text {
                        TextKind::Academic { latex: true } if r.chance(35, 100) => {
                            s.push(' ');
                            s.push_str(r.word(LATEX_SENTENCES));
                        }
                        TextKind::Question if r.chance(3, 10) => {
                            s.push(' ');
                            let names = CodeNames::new(r, "python");
                            names.expand(r.word(QUESTION_SENTENCES), &mut s);
                        }
                        _ => {}
                    }
                }
                if matches!(src.text, TextKind::Web) {
                    s.push_str("\n\n");
                    s.push_str(r.word(&self.boiler));
                }
            }
            TextKind::Legal { preamble, article } => {
                s.push_str(preamble);
                let mut k = 1;
                while s.len() < target {
                    s.push_str("\n\n");
                    s.push_str(article);
                    let _ = write!(s, " {k}");
                    if self.lang() == Lang::Fr && k == 1 {
                        s.push_str("er");
                    } else if self.lang() == Lang::En {
                        s.push('.');
                    }
                    s.push_str("\n\n");
                    self.paragraph(r, &mut s, target);
                    k += 1;
                }
            }
            TextKind::Dialogue(d) => {
                let all = phrases(d.speakers);
                let asides = phrases(d.asides);
                let cast_size = 2 + r.below(3);
                let start = r.below(all.len());
                let cast: Vec<&str> = (0..cast_size)
                    .map(|i| all[(start + i * 3) % all.len()])
                    .collect();
                s.push_str(d.header);
                let mut last = usize::MAX;
                while s.len() < target {
                    let mut who = r.below(cast.len());
                    if who == last {
                        who = (who + 1) % cast.len();
                    }
                    last = who;
                    s.push_str("\n\n");
                    s.push_str(cast[who]);
                    s.push_str(d.sep);
                    let n = 1 + r.below(3);
                    for i in 0..n {
                        if i > 0 {
                            s.push(' ');
                        }
                        self.sentence(r, &mut s);
                    }
                    if r.chance(12, 100) {
                        s.push_str(if r.chance(1, 2) { " " } else { "\n\n" });
                        s.push_str(r.word(&asides));
                    }
                }
            }
            TextKind::Book {
                gutenberg,
                chapters,
                wrap: wrap_lines,
                ocr_gap,
            } => {
                if gutenberg {
                    s.push_str("The Project Gutenberg eBook of ");
                    s.push_str(title);
                    s.push_str("\n\n");
                }
                let mut chapter = 1;
                let mut until_next = 4 + r.below(8);
                if chapters {
                    let _ = write!(s, "{} {}", self.d.chapter, roman(chapter));
                }
                while s.len() < target {
                    if !s.is_empty() {
                        s.push_str("\n\n");
                    }
                    if chapters && until_next == 0 {
                        chapter += 1;
                        until_next = 4 + r.below(8);
                        let _ = write!(s, "{} {}\n\n", self.d.chapter, roman(chapter));
                    }
                    until_next = until_next.saturating_sub(1);
                    self.paragraph(r, &mut s, target);
                }
                if wrap_lines {
                    let width = 60 + r.below(13);
                    s = wrap(&s, width, r, ocr_gap > 0);
                }
                if ocr_gap > 0 {
                    s = ocr_noise(&s, r, ocr_gap);
                }
            }
        }
        s
    }
}

fn title_case(s: &str) -> String {
    const SMALL: &[&str] = &[
        "a", "an", "the", "of", "on", "in", "to", "and", "for", "with", "at", "by", "or",
    ];
    let mut out = String::with_capacity(s.len());
    for (i, w) in s.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        if i > 0 && SMALL.contains(&w) {
            out.push_str(w);
        } else {
            out.push_str(&capitalized(w));
        }
    }
    out
}

fn roman(mut n: usize) -> String {
    const TABLE: [(usize, &str); 13] = [
        (1000, "M"),
        (900, "CM"),
        (500, "D"),
        (400, "CD"),
        (100, "C"),
        (90, "XC"),
        (50, "L"),
        (40, "XL"),
        (10, "X"),
        (9, "IX"),
        (5, "V"),
        (4, "IV"),
        (1, "I"),
    ];
    let mut s = String::new();
    for &(v, sym) in &TABLE {
        while n >= v {
            s.push_str(sym);
            n -= v;
        }
    }
    s
}

/// Hard-wraps every paragraph at `width` characters, as printed books and
/// their OCR are; with `hyphenate`, sometimes splits long words at the end
/// of a line.
fn wrap(text: &str, width: usize, r: &mut Rng, hyphenate: bool) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 32);
    for (pi, para) in text.split("\n\n").enumerate() {
        if pi > 0 {
            out.push_str("\n\n");
        }
        let mut col = 0;
        for (wi, word) in para.split(' ').enumerate() {
            let wl = word.chars().count();
            if wi > 0 {
                if col + 1 + wl > width {
                    let room = width.saturating_sub(col + 2);
                    if hyphenate && wl >= 8 && room >= 3 && r.chance(1, 3) {
                        let k = room.min(wl - 3);
                        let cut = word.char_indices().nth(k).map_or(word.len(), |(i, _)| i);
                        out.push(' ');
                        out.push_str(&word[..cut]);
                        out.push_str("-\n");
                        out.push_str(&word[cut..]);
                        col = wl - k;
                        continue;
                    }
                    out.push('\n');
                    col = 0;
                } else {
                    out.push(' ');
                    col += 1;
                }
            }
            out.push_str(word);
            col += wl;
        }
    }
    out
}

/// Sprinkles typical OCR confusions, about one per `gap` characters.
fn ocr_noise(text: &str, r: &mut Rng, gap: usize) -> String {
    const JUNK: [&str; 5] = ["■", "¬", "|", "'", "^"];
    let mut out = String::with_capacity(text.len() + text.len() / gap + 16);
    let mut next = 1 + r.below(2 * gap);
    for c in text.chars() {
        if next > 0 || c == '\n' {
            out.push(c);
            next = next.saturating_sub(1);
            continue;
        }
        next = 1 + r.below(2 * gap);
        let rep = match c {
            'e' => "c",
            'c' => "e",
            'l' => "1",
            'i' => "l",
            'n' => "u",
            'u' => "n",
            'm' => "rn",
            's' => "ſ",
            'é' => "e",
            'è' => "é",
            'o' => "0",
            'a' => "à",
            'h' => "b",
            'r' => "t",
            't' => "l",
            ',' => ".",
            '.' => ",",
            _ => {
                out.push_str(r.word(&JUNK));
                out.push(c);
                continue;
            }
        };
        out.push_str(rep);
    }
    out
}

// ---------------------------------------------------------------------------
// URLs and slugs
// ---------------------------------------------------------------------------

/// Lower-case ASCII slug: accents folded, other characters become `sep`.
fn slugify(s: &str, sep: char) -> String {
    let mut out = String::with_capacity(s.len());
    let mut pending = false;
    for c in s.chars() {
        let folded: &str = match c {
            'à' | 'â' | 'ä' | 'á' | 'À' | 'Á' | 'Â' | 'Ä' => "a",
            'ç' | 'Ç' => "c",
            'é' | 'è' | 'ê' | 'ë' | 'É' | 'È' | 'Ê' => "e",
            'î' | 'ï' | 'í' | 'ì' | 'Î' | 'Í' => "i",
            'ô' | 'ö' | 'ó' | 'ò' | 'Ô' | 'Ö' | 'Ó' => "o",
            'ù' | 'û' | 'ü' | 'ú' | 'Ü' | 'Ú' => "u",
            'ñ' | 'Ñ' => "n",
            'ß' => "ss",
            'œ' | 'Œ' => "oe",
            _ => "",
        };
        if !folded.is_empty() || c.is_ascii_alphanumeric() {
            if pending && !out.is_empty() {
                out.push(sep);
            }
            pending = false;
            if folded.is_empty() {
                out.push(c.to_ascii_lowercase());
            } else {
                out.push_str(folded);
            }
        } else {
            pending = true;
        }
    }
    out
}

/// A Wikipedia page name as it appears in URLs.
fn wiki_path(title: &str) -> String {
    let mut out = String::with_capacity(title.len() * 2);
    for &b in title.as_bytes() {
        match b {
            b' ' => out.push('_'),
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'_'
            | b'-'
            | b'.'
            | b','
            | b'('
            | b')'
            | b'\'' => out.push(b as char),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Code
// ---------------------------------------------------------------------------

const CODE_VERBS: &[&str] = &[
    "parse",
    "load",
    "build",
    "compute",
    "update",
    "render",
    "merge",
    "split",
    "read",
    "write",
    "find",
    "count",
    "check",
    "normalize",
    "encode",
    "decode",
    "flush",
    "collect",
    "filter",
    "sort",
    "resolve",
    "apply",
    "reset",
    "fetch",
    "format",
    "scan",
    "emit",
    "index",
    "group",
    "sum",
    "validate",
];
const CODE_NOUNS: &[&str] = &[
    "config", "buffer", "token", "record", "entry", "node", "edge", "block", "segment", "header",
    "row", "column", "batch", "chunk", "file", "path", "request", "response", "user", "session",
    "item", "value", "key", "score", "document", "page", "cache", "queue", "event", "matrix",
    "vector", "graph", "tree", "frame", "packet", "offset", "window", "cursor", "schema", "field",
    "query", "result",
];
const DOC_VERBS: &[&str] = &[
    "Returns",
    "Computes",
    "Builds",
    "Parses",
    "Updates",
    "Collects",
    "Normalizes",
    "Counts",
    "Merges",
    "Loads",
    "Validates",
    "Splits",
    "Formats",
    "Resolves",
];
const DOC_TAILS: &[&str] = &[
    "from the given input",
    "for each record",
    "without allocating",
    "in place",
    "and returns the result",
    "using the current configuration",
    "if it is not empty",
    "in a single pass",
    "for the current session",
    "with the default options",
];
const GITHUB_USERS: &[&str] = &[
    "acme-labs",
    "ferris-works",
    "octo-org",
    "datakit",
    "opensci",
    "bytefield",
    "northwind-dev",
    "lumen-ai",
    "corpus-tools",
    "tinycode",
    "jdupont",
    "mkowalski",
    "asmith",
    "lgarcia",
];

/// Identifiers for one code template (`§X` placeholders).
struct CodeNames {
    f: String,
    g: String,
    t: String,
    u: String,
    a: &'static str,
    b: &'static str,
    c: &'static str,
    fa: &'static str,
    fb: &'static str,
    n: u32,
    m: u32,
    s: &'static str,
    d: String,
}

fn distinct<const K: usize>(r: &mut Rng, from: &'static [&'static str]) -> [&'static str; K] {
    let mut out = [""; K];
    let mut i = 0;
    while i < K {
        let w = *r.pick(from);
        if !out[..i].contains(&w) {
            out[i] = w;
            i += 1;
        }
    }
    out
}

impl CodeNames {
    fn new(r: &mut Rng, prog: &str) -> CodeNames {
        let camel = prog == "javascript";
        let func = |r: &mut Rng| {
            let v = *r.pick(CODE_VERBS);
            let n = *r.pick(CODE_NOUNS);
            if camel {
                format!("{v}{}", capitalized(n))
            } else {
                format!("{v}_{n}")
            }
        };
        let f = func(r);
        let mut g = func(r);
        if g == f {
            g.push('2');
        }
        let [t1, t2] = distinct::<2>(r, CODE_NOUNS);
        let [a, b, c, fa, fb] = distinct::<5>(r, CODE_NOUNS);
        let s = *r.pick(CODE_NOUNS);
        let d = format!(
            "{} the {} {}",
            r.pick(DOC_VERBS),
            r.pick(CODE_NOUNS),
            r.pick(DOC_TAILS)
        );
        CodeNames {
            f,
            g,
            t: format!("{}{}", capitalized(t1), capitalized(t2)),
            u: t1.to_ascii_uppercase(),
            a,
            b,
            c,
            fa,
            fb,
            n: r.range(2, 1024),
            m: r.range(2, 99),
            s,
            d,
        }
    }

    fn expand(&self, tpl: &str, out: &mut String) {
        let mut rest = tpl;
        while let Some(i) = rest.find('§') {
            out.push_str(&rest[..i]);
            let key = rest.as_bytes().get(i + 2).copied().unwrap_or(b' ');
            match key {
                b'F' => out.push_str(&self.f),
                b'G' => out.push_str(&self.g),
                b'T' => out.push_str(&self.t),
                b'U' => out.push_str(&self.u),
                b'a' => out.push_str(self.a),
                b'b' => out.push_str(self.b),
                b'c' => out.push_str(self.c),
                b'f' => out.push_str(self.fa),
                b'g' => out.push_str(self.fb),
                b'n' => {
                    let _ = write!(out, "{}", self.n);
                }
                b'm' => {
                    let _ = write!(out, "{}", self.m);
                }
                b's' => out.push_str(self.s),
                b'D' => out.push_str(&self.d),
                _ => {}
            }
            rest = &rest[(i + 3).min(rest.len())..];
        }
        out.push_str(rest);
    }
}

const RUST_ITEMS: &[&str] = &[
    r##"/// §D.
pub fn §F(§a: &[u64]) -> u64 {
    let mut §b = 0;
    for §c in §a {
        if *§c > §n {
            §b += *§c;
        }
    }
    §b
}
"##,
    r##"/// §D.
#[derive(Debug, Clone, Default)]
pub struct §T {
    §f: Vec<String>,
    §g: usize,
}

impl §T {
    /// Creates an empty `§T`.
    pub fn new() -> Self {
        Self::default()
    }

    /// §D.
    pub fn §F(&mut self, §a: &str) -> usize {
        self.§g += 1;
        self.§f.push(§a.to_string());
        self.§f.len()
    }
}
"##,
    r##"/// Errors returned while handling a §s.
#[derive(Debug)]
pub enum §TError {
    /// The §s was not found.
    NotFound(String),
    /// The input was malformed.
    Invalid { line: usize },
}

impl fmt::Display for §TError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound(§a) => write!(f, "§s not found: {}", §a),
            Self::Invalid { line } => write!(f, "invalid §s at line {line}"),
        }
    }
}

impl std::error::Error for §TError {}
"##,
    r##"/// §D.
pub fn §F(§a: &str) -> Result<Vec<(String, i64)>, String> {
    let mut §b = Vec::new();
    for (i, line) in §a.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (§c, value) = line
            .split_once('=')
            .ok_or_else(|| format!("line {}: expected `key = value`", i + 1))?;
        let value: i64 = value.trim().parse().map_err(|e| format!("line {}: {e}", i + 1))?;
        §b.push((§c.trim().to_string(), value));
    }
    Ok(§b)
}
"##,
    r##"fn §F(§a: &[u8]) -> String {
    let mut §b = String::with_capacity(§a.len() + 2);
    §b.push('"');
    for &§c in §a {
        match §c {
            b'\n' => §b.push_str("\\n"),
            b'"' => §b.push_str("\\\""),
            b'\\' => §b.push_str("\\\\"),
            _ => §b.push(§c as char),
        }
    }
    §b.push('"');
    §b
}
"##,
    r##"/// §D.
pub fn §F(§a: &[&str]) -> BTreeMap<String, usize> {
    let mut §b = BTreeMap::new();
    for §c in §a {
        *§b.entry(§c.to_lowercase()).or_insert(0) += 1;
    }
    §b
}
"##,
    r##"pub struct §TIter<'a> {
    §f: &'a [u32],
    pos: usize,
}

impl<'a> Iterator for §TIter<'a> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        let §a = *self.§f.get(self.pos)?;
        self.pos += 1;
        // TODO: handle overflow of the §s counter
        Some(§a.wrapping_mul(§n))
    }
}
"##,
    r##"pub fn §F(§a: Option<&str>) -> u32 {
    match §a {
        Some("") | None => 0,
        Some(§b) if §b.starts_with('-') => {
            // negative values are clamped
            0
        }
        Some(§b) => §b.parse().unwrap_or(§n),
    }
}
"##,
    r##"/// Default capacity of a §s.
pub const MAX_§U: usize = §n;
"##,
];

const RUST_FOOTERS: &[&str] = &[
    r##"#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn §F_works() {
        let §a = vec![§n, §m, 3];
        assert_eq!(§a.len(), 3);
        assert!(§a.iter().any(|&x| x == §m));
    }
}
"##,
    r##"fn main() -> io::Result<()> {
    let mut §a = String::new();
    io::stdin().read_to_string(&mut §a)?;
    let §b = §F(&§a);
    println!("{} §s(s)", §b.len());
    Ok(())
}
"##,
];

const PY_ITEMS: &[&str] = &[
    r##"def §F(§a, §b=§n):
    """§D."""
    §c = []
    for item in §a:
        if item is None:
            continue
        §c.append(item * §b)
    return §c
"##,
    r##"@dataclass
class §T:
    §f: str
    §g: int = 0

    def §F(self, §a: int) -> int:
        """§D."""
        self.§g += §a
        return self.§g
"##,
    r##"class §T:
    """§D."""

    def __init__(self, §f=None):
        self.§f = §f or {}
        self._§g = 0

    def __len__(self):
        return len(self.§f)

    def §F(self, key, default=None):
        try:
            return self.§f[key]
        except KeyError:
            self._§g += 1
            return default
"##,
    r##"def §F(path, encoding="utf-8"):
    """§D."""
    §a = {}
    with open(path, encoding=encoding) as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            key, _, value = line.partition("=")
            if not value:
                raise ValueError(f"{path}:{lineno}: expected key=value")
            §a[key.strip()] = value.strip()
    return §a
"##,
    r##"def §F(§a, limit=§n):
    # keep only the §s entries with a positive score
    §b = [x for x in §a if x.get("score", 0) > 0]
    §b.sort(key=lambda x: (-x["score"], x["§f"]))
    return §b[:limit]
"##,
    r##"def §F(§a, size=§m):
    """§D."""
    §b = 0
    while §b < len(§a):
        yield §a[§b:§b + size]
        §b += size
"##,
    r##"def §F(text):
    """§D."""
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
"##,
    r##"§U_LIMIT = §n
DEFAULT_§U = "§s"
"##,
];

const PY_FOOTERS: &[&str] = &[r##"def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        print("usage: §s FILE", file=sys.stderr)
        return 2
    §a = §F(argv[0])
    print(f"{len(§a)} §s entries")
    return 0


if __name__ == "__main__":
    sys.exit(main())
"##];

const JS_ITEMS: &[&str] = &[
    r##"/**
 * §D.
 * @param {Array<number>} §a
 * @returns {number}
 */
function §F(§a) {
  let §b = 0;
  for (let i = 0; i < §a.length; i++) {
    if (§a[i] > §n) {
      §b += §a[i];
    }
  }
  return §b;
}
"##,
    r##"class §T {
  constructor(§f = []) {
    this.§f = §f;
    this.§g = new Map();
  }

  §F(§a) {
    if (!this.§g.has(§a)) {
      this.§g.set(§a, this.§f.length);
      this.§f.push(§a);
    }
    return this.§g.get(§a);
  }
}
"##,
    r##"async function §F(url, options = {}) {
  const response = await fetch(url, { ...options, headers: { Accept: 'application/json' } });
  if (!response.ok) {
    throw new Error(`§s request failed: ${response.status}`);
  }
  const §a = await response.json();
  return §a.items ?? [];
}
"##,
    r##"const §F = (§a) =>
  §a
    .filter((x) => x.§f !== undefined)
    .map((x) => ({ ...x, §g: String(x.§f).trim() }))
    .sort((a, b) => a.§g.localeCompare(b.§g));
"##,
    r##"document.querySelectorAll('.§s').forEach((el) => {
  el.addEventListener('click', (event) => {
    event.preventDefault();
    el.classList.toggle('is-active');
  });
});
"##,
    r##"function §F(§a) {
  // §D
  switch (§a.type) {
    case '§s':
      return { ...§a, count: §a.count + 1 };
    case 'reset':
      return { ...§a, count: 0 };
    default:
      return §a;
  }
}
"##,
    r##"const MAX_§U = §n;
"##,
];

/// SPDX spelling of a lowercase license id, for file headers.
fn spdx(license: &str) -> Option<&'static str> {
    Some(match license {
        "mit" => "MIT",
        "apache-2.0" => "Apache-2.0",
        "bsd-3-clause" => "BSD-3-Clause",
        "gpl-3.0-or-later" => "GPL-3.0-or-later",
        "mpl-2.0" => "MPL-2.0",
        "isc" => "ISC",
        _ => return None,
    })
}

/// A source file in `prog` of about `target` bytes.
fn code_text(r: &mut Rng, prog: &str, license: &str, target: usize) -> String {
    let mut s = String::with_capacity(target + 1024);
    let header = CodeNames::new(r, prog);
    let spdx_line = spdx(license).filter(|_| r.chance(1, 2));
    let (items, sep) = match prog {
        "rust" => {
            if let Some(id) = spdx_line {
                let _ = writeln!(s, "// SPDX-License-Identifier: {id}\n");
            }
            let _ = writeln!(s, "//! {}.\n", header.d);
            s.push_str("use std::collections::BTreeMap;\nuse std::fmt;\n");
            if r.chance(1, 2) {
                s.push_str("use std::io::{self, Read};\n");
            }
            if r.chance(1, 3) {
                s.push_str("use std::path::Path;\n");
            }
            s.push('\n');
            (RUST_ITEMS, "\n")
        }
        "python" => {
            if r.chance(3, 10) {
                s.push_str("#!/usr/bin/env python3\n");
            }
            if let Some(id) = spdx_line {
                let _ = writeln!(s, "# SPDX-License-Identifier: {id}");
            }
            let _ = writeln!(s, "\"\"\"{}.\"\"\"\n", header.d);
            s.push_str("import os\nimport sys\nfrom dataclasses import dataclass\n");
            s.push_str("from typing import Iterable, Optional\n\n\n");
            (PY_ITEMS, "\n\n")
        }
        _ => {
            if let Some(id) = spdx_line {
                let _ = writeln!(s, "// SPDX-License-Identifier: {id}");
            }
            if r.chance(1, 2) {
                s.push_str(
                    "'use strict';\n\nconst fs = require('fs');\nconst path = require('path');\n\n",
                );
            } else {
                let _ = writeln!(
                    s,
                    "// {}.\nimport {{ readFile }} from 'node:fs/promises';\n",
                    header.d
                );
            }
            (JS_ITEMS, "\n")
        }
    };
    let mut first: Option<CodeNames> = None;
    let mut k = 0;
    while s.len() < target {
        if k > 0 {
            s.push_str(sep);
        }
        let names = CodeNames::new(r, prog);
        names.expand(r.word(items), &mut s);
        first.get_or_insert(names);
        k += 1;
    }
    let first = first.unwrap_or(header);
    let footer = match prog {
        "rust" if r.chance(1, 2) => Some(*r.pick(RUST_FOOTERS)),
        "python" if r.chance(4, 10) => Some(PY_FOOTERS[0]),
        "javascript" => Some(if s.contains("require(") {
            "module.exports = { §F };\n"
        } else {
            "export { §F };\n"
        }),
        _ => None,
    };
    if let Some(f) = footer {
        s.push_str(sep);
        first.expand(f, &mut s);
    }
    s
}

// ---------------------------------------------------------------------------
// The generator
// ---------------------------------------------------------------------------

/// Most recent texts kept per language as candidates for exact duplicates.
const RECENT: usize = 64;

struct Generator {
    rng: Rng,
    lexes: Vec<Lex>,
    recent: Vec<Vec<String>>,
}

impl Generator {
    fn new(seed: u64) -> Self {
        Generator {
            rng: Rng::new(seed),
            lexes: LEXICONS.iter().copied().map(Lex::new).collect(),
            recent: vec![Vec::new(); LEXICONS.len()],
        }
    }

    fn doc(&mut self, index: usize) -> Doc {
        let li = *self.rng.weighted(&LANG_SHARES);
        if li == CODE {
            return self.code_doc(index);
        }
        let r = &mut self.rng;
        let lex = &self.lexes[li];
        let src = pick_source(r, lex.d.sources, "");
        let license = *r.weighted(src.licenses);
        let year = if r.chance(2, 100) {
            None
        } else {
            Some(r.range(src.years.0, src.years.1))
        };
        let title = lex.title(r, src.title, year);
        let recent = &mut self.recent[li];
        let text = if !recent.is_empty() && r.chance(1, 100) {
            r.pick(recent).clone()
        } else {
            let target = target_len(r);
            let text = lex.text(r, src, &title, target);
            if text.len() <= 16 * 1024 && r.chance(1, 8) {
                if recent.len() < RECENT {
                    recent.push(text.clone());
                } else {
                    let slot = r.below(RECENT);
                    recent[slot] = text.clone();
                }
            }
            text
        };
        let url = natural_url(r, src, lex, &title, year);
        Doc {
            id: format!("{}/{}/{:06}", src.name, lex.d.code, index),
            text,
            lang: lex.d.code,
            prog_lang: None,
            license,
            source: src.name,
            year,
            title,
            url,
            tags: tags(r, src, None),
        }
    }

    fn code_doc(&mut self, index: usize) -> Doc {
        let r = &mut self.rng;
        let prog = *r.weighted(&PROGS);
        let src = pick_source(r, &CODE_SOURCES, prog);
        let license = *r.weighted(src.licenses);
        let year = if r.chance(2, 100) {
            None
        } else {
            Some(r.range(src.years.0, src.years.1))
        };
        let [n1, n2, n3] = distinct::<3>(r, CODE_NOUNS);
        let title = match prog {
            "rust" => match r.below(10) {
                0..=5 => format!("src/{n1}.rs"),
                6 | 7 => format!("src/{n1}/{n2}.rs"),
                8 => "src/lib.rs".to_string(),
                _ => format!("src/bin/{n1}_{n2}.rs"),
            },
            "python" => match r.below(3) {
                0 => format!("{n1}.py"),
                _ => format!("{n3}/{n1}_{n2}.py"),
            },
            _ => match r.below(3) {
                0 => format!("src/{n1}{}.js", capitalized(n2)),
                1 => format!("lib/{n1}-{n2}.js"),
                _ => "index.js".to_string(),
            },
        };
        let target = target_len(r);
        let text = code_text(r, prog, license, target);
        let repo = match r.below(3) {
            0 => format!("{n3}-{n2}"),
            1 => format!(
                "{n3}{}",
                match prog {
                    "rust" => "-rs",
                    "python" => "py",
                    _ => "js",
                }
            ),
            _ => n3.to_string(),
        };
        let version = format!("{}.{}.{}", r.below(4), r.below(20), r.below(10));
        let url = match src.url {
            Url::CratesIo => format!("https://docs.rs/crate/{repo}/{version}/source/{title}"),
            Url::Pypi => format!("https://pypi.org/project/{repo}/{version}/"),
            Url::Npm => format!("https://unpkg.com/{repo}@{version}/{title}"),
            _ => format!(
                "https://github.com/{}/{repo}/blob/{}/{title}",
                r.pick(GITHUB_USERS),
                if r.chance(7, 10) { "main" } else { "master" }
            ),
        };
        Doc {
            id: format!("{}/code/{:06}", src.name, index),
            text,
            lang: "code",
            prog_lang: Some(prog),
            license,
            source: src.name,
            year,
            title,
            url,
            tags: tags(r, src, Some(prog)),
        }
    }
}

fn tags(r: &mut Rng, src: &Source, prog: Option<&'static str>) -> Vec<&'static str> {
    let mut t: Vec<&'static str> = src.tags.to_vec();
    if let Some(p) = prog {
        t.push(p);
    }
    if t.len() < 3 && !src.extra.is_empty() && r.chance(1, 2) {
        t.push(*r.pick(src.extra));
    }
    t
}

fn natural_url(r: &mut Rng, src: &Source, lex: &Lex, title: &str, year: Option<u32>) -> String {
    let y = year.unwrap_or(2010);
    match src.url {
        Url::Wikipedia(host) => format!("https://{host}.wikipedia.org/wiki/{}", wiki_path(title)),
        Url::Wikisource(host) => format!("https://{host}.wikisource.org/wiki/{}", wiki_path(title)),
        Url::Gallica => {
            const CHECK: &[u8] = b"0123456789bcdfghjkmnpqrstvwxz";
            format!(
                "https://gallica.bnf.fr/ark:/12148/bpt6k{}{}",
                r.range(100_000, 9_999_999),
                *r.pick(CHECK) as char
            )
        }
        Url::Legifrance => {
            format!(
                "https://www.legifrance.gouv.fr/jorf/id/JORFTEXT{:012}",
                r.range(10_000_000, 49_999_999)
            )
        }
        Url::DataGouv => format!(
            "https://www.data.gouv.fr/fr/datasets/{}/",
            slugify(title, '-')
        ),
        Url::TheatreClassique => {
            const AUTHORS: &[&str] = &[
                "MOLIERE",
                "RACINE",
                "CORNEILLE",
                "MARIVAUX",
                "REGNARD",
                "DANCOURT",
                "BEAUMARCHAIS",
                "LESAGE",
            ];
            format!(
                "https://www.theatre-classique.fr/pages/programmes/edition.php?t=../documents/{}_{}.xml",
                r.pick(AUTHORS),
                slugify(title, '_').to_ascii_uppercase()
            )
        }
        Url::Persee => {
            const JOURNALS: &[(&str, &str)] = &[
                ("ahess", "0395-2649"),
                ("bec", "0373-6237"),
                ("rhef", "0300-9505"),
                ("geo", "0003-4010"),
                ("roma", "0035-8029"),
                ("mefr", "0223-5102"),
                ("lfr", "0023-8368"),
            ];
            let (j, issn) = *r.pick(JOURNALS);
            format!(
                "https://www.persee.fr/doc/{j}_{issn}_{y}_num_{}_{}_{}",
                r.range(1, 80),
                r.range(1, 4),
                r.range(1000, 9999)
            )
        }
        Url::AssembleeNationale => format!(
            "https://www.assemblee-nationale.fr/{}/cri/{y}-{}/{}{:04}.asp",
            (y.max(1958) - 1958) / 5 + 1,
            y + 1,
            y + 1,
            r.below(10_000)
        ),
        Url::CommonCrawl => {
            let [w1, w2] = distinct::<2>(r, CODE_NOUNS);
            let host = slugify(r.pick(&lex.nouns).0, '-');
            format!(
                "https://www.{host}-{w1}.{}/{y}/{w2}/{}.html",
                lex.d.tld,
                slugify(title, '-')
            )
        }
        Url::Gutenberg => format!("https://www.gutenberg.org/ebooks/{}", r.range(10, 72_000)),
        Url::Arxiv => {
            let (yy, mm) = (y.max(2008) % 100, r.range(1, 12));
            if y >= 2015 {
                format!(
                    "https://arxiv.org/abs/{yy:02}{mm:02}.{:05}",
                    r.below(30_000)
                )
            } else {
                format!(
                    "https://arxiv.org/abs/{yy:02}{mm:02}.{:04}",
                    r.below(10_000)
                )
            }
        }
        Url::StackExchange => {
            const SITES: &[&str] = &[
                "english",
                "history",
                "physics",
                "math",
                "cooking",
                "travel",
                "literature",
            ];
            format!(
                "https://{}.stackexchange.com/questions/{}/{}",
                r.pick(SITES),
                r.range(1000, 999_999),
                slugify(title, '-')
            )
        }
        Url::Govinfo => format!(
            "https://www.govinfo.gov/content/pkg/FR-{y}-{:02}-{:02}/html/{y}-{:05}.htm",
            r.range(1, 12),
            r.range(1, 28),
            r.below(30_000)
        ),
        Url::Dta => {
            const AUTHORS: &[&str] = &[
                "goethe", "schiller", "lessing", "kleist", "fontane", "humboldt", "novalis",
            ];
            let word = slugify(title, '-');
            let word = word.split('-').find(|w| w.len() > 3).unwrap_or("werk");
            format!(
                "https://www.deutschestextarchiv.de/book/show/{}_{word}_{y}",
                r.pick(AUTHORS)
            )
        }
        Url::Bundestag => {
            let wp = (y.max(1949) - 1949) / 4 + 1;
            format!(
                "https://dserver.bundestag.de/btp/{wp}/{wp}{:03}.pdf",
                r.range(1, 240)
            )
        }
        Url::Bne => format!(
            "https://bdh-rd.bne.es/viewer.vm?id=0000{:06}",
            r.below(1_000_000)
        ),
        Url::LiberLiber => {
            const AUTHORS: &[&str] = &[
                "giovanni-verga",
                "alessandro-manzoni",
                "luigi-pirandello",
                "grazia-deledda",
                "italo-svevo",
                "carlo-collodi",
                "matilde-serao",
                "edmondo-de-amicis",
            ];
            let author = *r.pick(AUTHORS);
            format!(
                "https://www.liberliber.it/online/autori/autori-{}/{author}/{}/",
                &author[..1],
                slugify(title, '-')
            )
        }
        Url::Github | Url::CratesIo | Url::Pypi | Url::Npm => {
            format!("https://github.com/{}", slugify(title, '-'))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    fn corpus(n: usize, seed: u64) -> (Vec<u8>, GenSummary) {
        let mut out = Vec::new();
        let summary = generate(n, seed, &mut out).unwrap();
        (out, summary)
    }

    fn parse(out: &[u8]) -> Vec<serde_json::Value> {
        std::str::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    #[test]
    fn deterministic_and_seed_dependent() {
        let (a, sa) = corpus(300, 7);
        let (b, sb) = corpus(300, 7);
        assert_eq!(a, b);
        assert_eq!(sa, sb);
        let (c, _) = corpus(300, 8);
        assert_ne!(a, c);
    }

    #[test]
    fn shorter_run_is_a_prefix() {
        let (short, _) = corpus(120, 3);
        let (long, _) = corpus(250, 3);
        assert!(long.starts_with(&short));
    }

    #[test]
    fn summary_matches_output() {
        let (out, summary) = corpus(500, 11);
        let docs = parse(&out);
        assert_eq!(summary.docs, 500);
        assert_eq!(docs.len(), 500);
        let bytes: u64 = docs
            .iter()
            .map(|d| d["text"].as_str().unwrap().len() as u64)
            .sum();
        assert_eq!(summary.bytes, bytes);
        assert_eq!(corpus(0, 1), (Vec::new(), GenSummary::default()));
    }

    #[test]
    fn lines_are_valid_json_with_keys_in_order() {
        let (out, _) = corpus(DEFAULT_DOCS, 0);
        let text = std::str::from_utf8(&out).unwrap();
        let keys = [
            "\"id\": \"",
            "\", \"text\": \"",
            "\", \"lang\": \"",
            "\", \"license\": \"",
        ];
        let tail = [
            "\", \"source\": \"",
            ", \"title\": \"",
            "\", \"meta\": {\"url\": \"",
            "\", \"tags\": [",
        ];
        let langs = ["fr", "en", "de", "es", "it", "code"];
        for line in text.lines() {
            assert!(
                line.starts_with("{\"id\": \"") && line.ends_with("]}}"),
                "{line}"
            );
            let mut at = 0;
            for k in keys.iter().chain(&tail) {
                // Inside strings every quote is escaped, so the first unescaped
                // match is the key itself.
                let pos = line[at..]
                    .find(k)
                    .unwrap_or_else(|| panic!("{k} missing: {line}"));
                at += pos + k.len();
            }
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let o = v.as_object().unwrap();
            let lang = o["lang"].as_str().unwrap();
            assert!(langs.contains(&lang));
            assert_eq!(o.contains_key("prog_lang"), lang == "code", "{line}");
            if let Some(p) = o.get("prog_lang") {
                assert!(["rust", "python", "javascript"].contains(&p.as_str().unwrap()));
                assert!(line.contains("\"lang\": \"code\", \"prog_lang\": \""));
            }
            let license = o["license"].as_str().unwrap();
            assert!(!license.is_empty());
            assert!(license
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.".contains(&b)));
            let source = o["source"].as_str().unwrap();
            let id = o["id"].as_str().unwrap();
            assert!(id.starts_with(&format!("{source}/{lang}/")), "{id}");
            if let Some(y) = o.get("year") {
                let y = y.as_u64().unwrap();
                assert!((1600..=2025).contains(&y), "{y}");
            }
            assert!(!o["title"].as_str().unwrap().is_empty());
            let url = o["meta"]["url"].as_str().unwrap();
            assert!(url.starts_with("https://") && !url.contains(' '), "{url}");
            let tags = o["meta"]["tags"].as_array().unwrap();
            assert!((1..=3).contains(&tags.len()));
            let text = o["text"].as_str().unwrap();
            assert!(text.len() >= 100, "{}", text.len());
            assert!(text.len() <= 32 * 1024, "{}", text.len());
        }
    }

    #[test]
    fn language_shares_and_field_rates() {
        let (out, _) = corpus(DEFAULT_DOCS, 0);
        let docs = parse(&out);
        let n = docs.len() as f64;
        let mut langs: BTreeMap<&str, usize> = BTreeMap::new();
        for d in &docs {
            *langs.entry(d["lang"].as_str().unwrap()).or_default() += 1;
        }
        for (lang, target) in [
            ("fr", 35.0),
            ("en", 30.0),
            ("de", 10.0),
            ("es", 8.0),
            ("it", 7.0),
            ("code", 10.0),
        ] {
            let share = langs[lang] as f64 * 100.0 / n;
            assert!(
                (share - target).abs() < 3.0,
                "{lang}: {share:.1}% vs {target}%"
            );
        }
        let no_year = docs.iter().filter(|d| d.get("year").is_none()).count() as f64 * 100.0 / n;
        assert!((0.5..4.0).contains(&no_year), "{no_year}");
        let unknown = docs.iter().filter(|d| d["license"] == "unknown").count();
        assert!(unknown > 0 && (unknown as f64) < n * 0.1, "{unknown}");
    }

    #[test]
    fn ids_are_unique() {
        let (out, _) = corpus(2000, 5);
        let docs = parse(&out);
        let ids: BTreeSet<&str> = docs.iter().map(|d| d["id"].as_str().unwrap()).collect();
        assert_eq!(ids.len(), docs.len());
    }

    #[test]
    fn lengths_and_duplicates_look_like_a_real_corpus() {
        let (out, _) = corpus(DEFAULT_DOCS, 2);
        let docs = parse(&out);
        let mut lens: Vec<usize> = docs
            .iter()
            .map(|d| d["text"].as_str().unwrap().len())
            .collect();
        lens.sort_unstable();
        let median = lens[lens.len() / 2];
        assert!((1000..=2200).contains(&median), "median {median}");
        assert!(lens.iter().any(|&l| l > 10_000));
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        let mut natural = 0;
        for d in docs.iter().filter(|d| d["lang"] != "code") {
            natural += 1;
            *seen.entry(d["text"].as_str().unwrap()).or_default() += 1;
        }
        let dups: usize = seen.values().map(|c| c - 1).sum();
        let rate = dups as f64 * 100.0 / natural as f64;
        assert!((0.3..2.5).contains(&rate), "duplicate rate {rate:.2}%");
    }

    #[test]
    fn text_has_the_languages_accents_and_code_has_structure() {
        let (out, _) = corpus(1000, 9);
        let docs = parse(&out);
        let all = |lang: &str| -> String {
            docs.iter()
                .filter(|d| d["lang"] == lang)
                .map(|d| d["text"].as_str().unwrap())
                .collect::<Vec<_>>()
                .join("\n")
        };
        for (lang, marks) in [("fr", "éèàç"), ("de", "üöß"), ("es", "ñá"), ("it", "àè")]
        {
            let t = all(lang);
            for c in marks.chars() {
                assert!(t.contains(c), "{lang} lacks {c}");
            }
            assert!(t.contains("\n\n") && t.contains(". "));
        }
        assert!(all("en").contains(" the "));
        assert!(all("fr").contains(" le ") && all("de").contains(" die "));
        let code = all("code");
        assert!(code.contains("fn ") && code.contains("def ") && code.contains("function "));
        assert!(code.contains("    ") && code.contains('{'));
    }

    #[test]
    fn escaper_round_trips_through_serde() {
        let mut raw = String::from("quote \" backslash \\ slash / é ß 😀 ");
        for b in 0u8..0x20 {
            raw.push(b as char);
        }
        raw.push('\u{7f}');
        let mut json = String::from("\"");
        escape_json(&mut json, &raw);
        json.push('"');
        let back: String = serde_json::from_str(&json).unwrap();
        assert_eq!(back, raw);
        assert!(json.contains("\\n") && json.contains("\\u0001") && json.contains("\\\\"));
    }

    #[test]
    fn grammar_helpers() {
        assert_eq!(en_3sg("watch"), "watches");
        assert_eq!(en_3sg("carry"), "carries");
        assert_eq!(en_3sg("buy"), "buys");
        assert!(en_an("old") && en_an("hour") && !en_an("university") && !en_an("house"));
        assert!(it_lo("specchio") && it_lo("zio") && !it_lo("sole"));
        assert!(fr_elides("église") && fr_elides("homme") && !fr_elides("roi"));
        assert_eq!(roman(14), "XIV");
        assert_eq!(
            slugify("Château de Köln, 1843", '-'),
            "chateau-de-koln-1843"
        );
        assert_eq!(wiki_path("Château de Lyon"), "Ch%C3%A2teau_de_Lyon");
        let w = wrap("aaaa bbbb cccc dddd", 9, &mut Rng::new(1), false);
        assert_eq!(w, "aaaa bbbb\ncccc dddd");
    }

    #[test]
    fn lengths_are_platform_independent() {
        // exp_det uses only correctly rounded IEEE operations; pin a few values.
        assert!((exp_det(1.0) - std::f64::consts::E).abs() < 1e-9);
        assert!((exp_det(-2.5) - 0.082_084_998_623_898_8).abs() < 1e-10);
        let mut r = Rng::new(42);
        let lens: Vec<usize> = (0..5).map(|_| target_len(&mut r)).collect();
        let mut r2 = Rng::new(42);
        assert_eq!(
            lens,
            (0..5).map(|_| target_len(&mut r2)).collect::<Vec<_>>()
        );
    }
}
