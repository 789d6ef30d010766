//! Model-based property tests: random documents are ingested (in one or
//! several ingests, into one or many small segments, with deletes and
//! compactions in between) and random queries are checked against a naive
//! filter over a `Vec` of the same documents implementing the documented
//! semantics:
//!
//! - a document without the field matches neither `=`, `!=` nor `in`;
//! - `f != v` is "f exists and no value of f equals v" (for arrays: no element);
//! - `not` is relative to every live document;
//! - numbers compare as f64; `id` and `bytes` always exist;
//! - duplicate keys: the first live document wins (ingest default `skip`),
//!   and a skipped duplicate adds no field to the schema;
//! - a query naming a field the schema does not know is an error.
//!
//! Counts, key sets, text byte totals and exported records are compared.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use corpusql::raw::export::{write_jsonl, Projection};
use corpusql::{ingest, Corpus, IngestOptions, Input};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError};

// ---------------------------------------------------------------------------
// Documents
// ---------------------------------------------------------------------------

/// A field value as written in the JSON record.
#[derive(Debug, Clone, PartialEq)]
enum FVal {
    Null,
    Str(String),
    Bool(bool),
    Arr(Vec<String>),
    Int(i64),
    Float(f64),
}

impl FVal {
    fn to_json(&self) -> String {
        match self {
            FVal::Null => "null".into(),
            FVal::Str(s) => serde_json::to_string(s).unwrap(),
            FVal::Bool(b) => b.to_string(),
            FVal::Arr(v) => serde_json::to_string(v).unwrap(),
            FVal::Int(i) => i.to_string(),
            FVal::Float(x) => serde_json::to_string(x).unwrap(),
        }
    }
}

/// One generated record: key, text and the other fields, in record order
/// (`text` and `id` are placed at `text_at` / `id_at` among the fields).
#[derive(Debug, Clone)]
struct Doc {
    key: String,
    /// The key is written as a JSON integer.
    int_key: bool,
    text: String,
    fields: Vec<(&'static str, FVal)>,
    text_at: usize,
    id_at: usize,
    /// Spaces after `:` and `,`.
    spaced: bool,
}

impl Doc {
    fn line(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        let sep = if self.spaced { ": " } else { ":" };
        for (f, v) in &self.fields {
            parts.push(format!("\"{f}\"{sep}{}", v.to_json()));
        }
        let id = if self.int_key {
            self.key.clone()
        } else {
            serde_json::to_string(&self.key).unwrap()
        };
        let text = serde_json::to_string(&self.text).unwrap();
        let text_at = self.text_at.min(parts.len());
        parts.insert(text_at, format!("\"text\"{sep}{text}"));
        let id_at = self.id_at.min(parts.len());
        parts.insert(id_at, format!("\"id\"{sep}{id}"));
        let join = if self.spaced { ", " } else { "," };
        format!("{{{}}}", parts.join(join))
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.line()).unwrap()
    }

    fn get(&self, f: &str) -> Option<&FVal> {
        self.fields
            .iter()
            .find(|(n, _)| *n == f)
            .map(|(_, v)| v)
            .filter(|v| **v != FVal::Null)
    }

    /// Whether the field is present (non-null); `id` and `bytes` always are.
    fn has(&self, f: &str) -> bool {
        matches!(f, "id" | "bytes") || self.get(f).is_some()
    }

    /// Indexed facet values of a string / array / bool field.
    fn facet_values(&self, f: &str) -> Vec<String> {
        match self.get(f) {
            Some(FVal::Str(s)) => vec![s.clone()],
            Some(FVal::Arr(v)) => v.clone(),
            Some(FVal::Bool(b)) => vec![b.to_string()],
            _ => vec![],
        }
    }

    fn number(&self, f: &str) -> Option<f64> {
        if f == "bytes" {
            return Some(self.text.len() as f64);
        }
        match self.get(f) {
            Some(FVal::Int(i)) => Some(*i as f64),
            Some(FVal::Float(x)) => Some(*x),
            _ => None,
        }
    }
}

const KEYS: &[&str] = &[
    "k1", "k2", "k3", "k10", "k11", "k12", "k20", "k21", "ka", "kb", "a/b", "a-b.c", "doc/é",
    "été", "x?y", "1", "2", "7", "42",
];
const LANGS: &[&str] = &["fr", "en", "de", "es", "zh", "pt"];
const SRCS: &[&str] = &[
    "web-crawl",
    "web-crawl/2020",
    "books/fiction",
    "books/non-fiction",
    "a.b",
    "a-b/c.d",
    "cc-by-4.0",
    "2020",
    "é/x",
    "with space",
    "quo\"te",
    "",
];
const TAGS: &[&str] = &["news", "code", "math", "wiki", "x-y", "a.b", "fr", "ñ"];
const TEXT_CHARS: &str = "[a-zé中 \\n\\t\"\\\\\u{1F600}]{0,12}";

fn opt_field(inner: BoxedStrategy<FVal>) -> BoxedStrategy<Option<FVal>> {
    prop_oneof![
        3 => Just(None),
        1 => Just(Some(FVal::Null)),
        6 => inner.prop_map(Some),
    ]
    .boxed()
}

fn doc_strategy() -> impl Strategy<Value = Doc> {
    let key = prop_oneof![
        3 => prop::sample::select(KEYS).prop_map(String::from),
        2 => (0u32..60).prop_map(|n| format!("n{n}")),
        1 => (100u32..130).prop_map(|n| n.to_string()),
    ];
    let text = prop_oneof![
        1 => Just(String::new()),
        3 => TEXT_CHARS,
        2 => ".{0,24}",
    ];
    let lang = opt_field(
        prop::sample::select(LANGS)
            .prop_map(|s| FVal::Str(s.into()))
            .boxed(),
    );
    let src = opt_field(
        prop::sample::select(SRCS)
            .prop_map(|s| FVal::Str(s.into()))
            .boxed(),
    );
    let ok = opt_field(any::<bool>().prop_map(FVal::Bool).boxed());
    let tags = opt_field(
        prop::collection::vec(prop::sample::select(TAGS), 0..4)
            .prop_map(|v| FVal::Arr(v.into_iter().map(String::from).collect()))
            .boxed(),
    );
    let year = opt_field((1950i64..2030).prop_map(FVal::Int).boxed());
    let q = opt_field(
        prop_oneof![
            (-400i32..400).prop_map(|x| FVal::Float(x as f64 / 8.0)),
            Just(FVal::Float(-0.0)),
            Just(FVal::Float(1e-7)),
            Just(FVal::Float(0.1)),
        ]
        .boxed(),
    );
    (
        key,
        text,
        (lang, src, ok, tags, year, q),
        0usize..7,
        0usize..7,
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(
            |(key, text, (lang, src, ok, tags, year, q), text_at, id_at, spaced, seed)| {
                let mut fields: Vec<(&'static str, FVal)> = Vec::new();
                for (name, v) in [
                    ("lang", lang),
                    ("src", src),
                    ("ok", ok),
                    ("tags", tags),
                    ("year", year),
                    ("q", q),
                ] {
                    if let Some(v) = v {
                        fields.push((name, v));
                    }
                }
                // A cheap deterministic shuffle of the field order.
                let mut s = seed;
                for i in (1..fields.len()).rev() {
                    s = s
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let j = (s >> 33) as usize % (i + 1);
                    fields.swap(i, j);
                }
                let int_key = key.bytes().all(|b| b.is_ascii_digit());
                Doc {
                    key,
                    int_key,
                    text,
                    fields,
                    text_at,
                    id_at,
                    spaced,
                }
            },
        )
}

// ---------------------------------------------------------------------------
// Queries
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Lit {
    /// A string, printed quoted or (when possible) as a bareword.
    Str(String, bool),
    /// A glob pattern (a bareword with `*` or `?`).
    Glob(String),
    /// A number, printed with Rust's shortest round-trip form.
    Num(f64),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone)]
enum Q {
    All,
    Eq(&'static str, Lit),
    Ne(&'static str, Lit),
    In(&'static str, Vec<Lit>),
    Cmp(&'static str, Op, f64),
    Exists(&'static str),
    Not(Box<Q>),
    And(Vec<Q>),
    Or(Vec<Q>),
}

fn is_bare(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | ':' | '+'))
}

fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn num_text(x: f64) -> String {
    if x == x.trunc() && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

impl Lit {
    fn print(&self, field: &str) -> String {
        match self {
            Lit::Str(s, bare) => {
                // `lang` values are normalized by the planner: try upper case.
                let s = if field == "lang" && *bare {
                    s.to_ascii_uppercase()
                } else {
                    s.clone()
                };
                if *bare && is_bare(&s) {
                    s
                } else {
                    quote(&s)
                }
            }
            Lit::Glob(p) => p.clone(),
            Lit::Num(x) => num_text(*x),
        }
    }
}

impl Q {
    fn print(&self) -> String {
        fn child(q: &Q) -> String {
            match q {
                Q::And(_) | Q::Or(_) => format!("({})", q.print()),
                _ => q.print(),
            }
        }
        match self {
            Q::All => "*".into(),
            Q::Eq(f, v) => format!("{f} = {}", v.print(f)),
            Q::Ne(f, v) => format!("{f} != {}", v.print(f)),
            Q::In(f, vs) => format!(
                "{f} in ({})",
                vs.iter().map(|v| v.print(f)).collect::<Vec<_>>().join(", ")
            ),
            Q::Cmp(f, op, x) => {
                let o = match op {
                    Op::Lt => "<",
                    Op::Le => "<=",
                    Op::Gt => ">",
                    Op::Ge => ">=",
                };
                format!("{f} {o} {}", num_text(*x))
            }
            Q::Exists(f) => format!("{f} exists"),
            Q::Not(c) => format!("not {}", child(c)),
            Q::And(cs) => cs.iter().map(child).collect::<Vec<_>>().join(" and "),
            Q::Or(cs) => cs.iter().map(child).collect::<Vec<_>>().join(" or "),
        }
    }

    fn fields(&self, out: &mut BTreeSet<&'static str>) {
        match self {
            Q::All => {}
            Q::Eq(f, _) | Q::Ne(f, _) | Q::In(f, _) | Q::Cmp(f, _, _) | Q::Exists(f) => {
                out.insert(f);
            }
            Q::Not(c) => c.fields(out),
            Q::And(cs) | Q::Or(cs) => cs.iter().for_each(|c| c.fields(out)),
        }
    }
}

/// An independent glob matcher (`*` any run, `?` one char), by recursion.
fn glob(p: &[char], t: &[char]) -> bool {
    match p.first() {
        None => t.is_empty(),
        Some('*') => (0..=t.len()).any(|i| glob(&p[1..], &t[i..])),
        Some('?') => !t.is_empty() && glob(&p[1..], &t[1..]),
        Some(c) => t.first() == Some(c) && glob(&p[1..], &t[1..]),
    }
}

fn glob_str(p: &str, t: &str) -> bool {
    let p: Vec<char> = p.chars().collect();
    let t: Vec<char> = t.chars().collect();
    glob(&p, &t)
}

fn lit_eq(d: &Doc, f: &str, v: &Lit) -> bool {
    match f {
        "id" => match v {
            Lit::Str(s, _) => d.key == *s,
            Lit::Glob(p) => glob_str(p, &d.key),
            Lit::Num(x) => d.key == num_text(*x),
        },
        "year" | "q" | "bytes" => match v {
            Lit::Num(x) => d.number(f) == Some(*x),
            _ => unreachable!("numeric fields take numbers"),
        },
        _ => {
            let vals = d.facet_values(f);
            match v {
                Lit::Str(s, _) => vals.iter().any(|x| x == s),
                Lit::Glob(p) => vals.iter().any(|x| glob_str(p, x)),
                Lit::Num(x) => vals.iter().any(|s| *s == num_text(*x)),
            }
        }
    }
}

fn matches(d: &Doc, q: &Q) -> bool {
    match q {
        Q::All => true,
        Q::Eq(f, v) => lit_eq(d, f, v),
        Q::Ne(f, v) => d.has(f) && !lit_eq(d, f, v),
        Q::In(f, vs) => vs.iter().any(|v| lit_eq(d, f, v)),
        Q::Cmp(f, op, x) => match d.number(f) {
            None => false,
            Some(y) => match op {
                Op::Lt => y < *x,
                Op::Le => y <= *x,
                Op::Gt => y > *x,
                Op::Ge => y >= *x,
            },
        },
        Q::Exists(f) => d.has(f),
        Q::Not(c) => !matches(d, c),
        Q::And(cs) => cs.iter().all(|c| matches(d, c)),
        Q::Or(cs) => cs.iter().any(|c| matches(d, c)),
    }
}

fn glob_strategy(pool: &'static [&'static str]) -> BoxedStrategy<Lit> {
    prop_oneof![
        // `prefix*` from a prefix of a known value.
        (prop::sample::select(pool), 0usize..6).prop_map(|(v, n)| {
            let p: String = v.chars().take(n).collect();
            Lit::Glob(format!("{p}*"))
        }),
        // Patterns such as `a*b?`, `*-*`, `??`.
        prop::collection::vec(
            prop_oneof![
                3 => prop::sample::select(vec!["a", "b", "k", "1", "-", "/", ".", "é", "w", "o", "2"]),
                2 => Just("*"),
                2 => Just("?"),
            ],
            1..5
        )
        .prop_map(|parts| {
            let mut p: String = parts.concat();
            if !p.contains(['*', '?']) {
                p.push('?');
            }
            Lit::Glob(p)
        }),
    ]
    .prop_filter("glob must be a bareword", |l| match l {
        Lit::Glob(p) => p
            .chars()
            .all(|c| c.is_alphanumeric() || "_-./:+*?".contains(c)),
        _ => true,
    })
    .boxed()
}

fn facet_lit(pool: &'static [&'static str]) -> BoxedStrategy<Lit> {
    prop_oneof![
        4 => (prop::sample::select(pool), any::<bool>()).prop_map(|(s, b)| Lit::Str(s.into(), b)),
        1 => Just(Lit::Str("absent-value".into(), true)),
        2 => glob_strategy(pool),
    ]
    .boxed()
}

fn leaf_strategy() -> BoxedStrategy<Q> {
    let key_lit = prop_oneof![
        4 => (prop::sample::select(KEYS), any::<bool>()).prop_map(|(s, b)| {
            if b && s.bytes().all(|c| c.is_ascii_digit()) {
                Lit::Num(s.parse().unwrap())
            } else {
                Lit::Str(s.into(), b)
            }
        }),
        2 => glob_strategy(KEYS),
    ]
    .boxed();
    let facet = |f: &'static str, pool: &'static [&'static str]| -> BoxedStrategy<Q> {
        prop_oneof![
            3 => facet_lit(pool).prop_map(move |v| Q::Eq(f, v)),
            2 => facet_lit(pool).prop_map(move |v| Q::Ne(f, v)),
            2 => prop::collection::vec(facet_lit(pool), 1..4).prop_map(move |v| Q::In(f, v)),
            1 => Just(Q::Exists(f)),
        ]
        .boxed()
    };
    let bool_lit = any::<bool>().prop_map(|b| Lit::Str(b.to_string(), true));
    let bool_q = prop_oneof![
        bool_lit.clone().prop_map(|v| Q::Eq("ok", v)),
        bool_lit.clone().prop_map(|v| Q::Ne("ok", v)),
        prop::collection::vec(bool_lit, 1..3).prop_map(|v| Q::In("ok", v)),
        Just(Q::Exists("ok")),
    ];
    let numeric = |f: &'static str, vals: BoxedStrategy<f64>| -> BoxedStrategy<Q> {
        let op = prop::sample::select(vec![Op::Lt, Op::Le, Op::Gt, Op::Ge]);
        prop_oneof![
            3 => (op, vals.clone()).prop_map(move |(o, x)| Q::Cmp(f, o, x)),
            1 => vals.clone().prop_map(move |x| Q::Eq(f, Lit::Num(x))),
            1 => vals.clone().prop_map(move |x| Q::Ne(f, Lit::Num(x))),
            1 => prop::collection::vec(vals, 1..3)
                .prop_map(move |v| Q::In(f, v.into_iter().map(Lit::Num).collect())),
            1 => Just(Q::Exists(f)),
        ]
        .boxed()
    };
    prop_oneof![
        1 => Just(Q::All),
        3 => prop_oneof![
            key_lit.clone().prop_map(|v| Q::Eq("id", v)),
            key_lit.clone().prop_map(|v| Q::Ne("id", v)),
            prop::collection::vec(key_lit, 1..4).prop_map(|v| Q::In("id", v)),
        ],
        3 => facet("lang", LANGS),
        3 => facet("src", SRCS),
        3 => facet("tags", TAGS),
        2 => bool_q,
        3 => numeric("year", (1945i64..2035).prop_map(|x| x as f64).boxed()),
        3 => numeric(
            "q",
            prop_oneof![
                (-420i32..420).prop_map(|x| x as f64 / 8.0),
                Just(0.1),
                Just(1e-7),
                Just(-0.0)
            ]
            .boxed()
        ),
        2 => numeric("bytes", (0i64..40).prop_map(|x| x as f64).boxed()),
    ]
    .boxed()
}

fn query_strategy() -> BoxedStrategy<Q> {
    leaf_strategy()
        .prop_recursive(3, 16, 3, |inner| {
            prop_oneof![
                1 => inner.clone().prop_map(|q| Q::Not(Box::new(q))),
                2 => prop::collection::vec(inner.clone(), 2..4).prop_map(Q::And),
                2 => prop::collection::vec(inner, 2..4).prop_map(Q::Or),
            ]
        })
        .boxed()
}

// ---------------------------------------------------------------------------
// The scenario
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Step {
    /// One ingest of one or more inputs; `small` uses tiny segments.
    Ingest { inputs: Vec<Vec<Doc>>, small: bool },
    /// `maintain::delete` of a query.
    Delete(Q),
    /// `maintain::compact`, with tiny or default segments.
    Compact { small: bool },
}

fn step_strategy() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (
            prop::collection::vec(prop::collection::vec(doc_strategy(), 0..25), 1..3),
            prop::bool::weighted(0.7)
        )
            .prop_map(|(inputs, small)| Step::Ingest { inputs, small }),
        2 => query_strategy().prop_map(Step::Delete),
        1 => any::<bool>().prop_map(|small| Step::Compact { small }),
    ]
}

/// The naive model: live documents in ingest order, plus every field name
/// the schema has learnt.
#[derive(Default)]
struct Model {
    live: Vec<Doc>,
    schema: BTreeSet<&'static str>,
}

impl Model {
    fn ingest(&mut self, inputs: &[Vec<Doc>]) {
        for d in inputs.iter().flatten() {
            // A skipped duplicate teaches the schema nothing.
            if !self.live.iter().any(|x| x.key == d.key) {
                for (f, v) in &d.fields {
                    if *v != FVal::Null {
                        self.schema.insert(f);
                    }
                }
                self.live.push(d.clone());
            }
        }
    }

    fn knows(&self, q: &Q) -> bool {
        let mut fs = BTreeSet::new();
        q.fields(&mut fs);
        fs.iter()
            .all(|f| matches!(*f, "id" | "bytes") || self.schema.contains(f))
    }

    fn select(&self, q: &Q) -> Vec<&Doc> {
        self.live.iter().filter(|d| matches(d, q)).collect()
    }
}

fn small_opts() -> IngestOptions {
    IngestOptions {
        segment_bytes: 2_000,
        ..IngestOptions::default()
    }
}

fn run_ingest(dir: &Path, inputs: &[Vec<Doc>], small: bool) -> corpusql::Result<()> {
    let readers: Vec<Input> = inputs
        .iter()
        .enumerate()
        .map(|(i, docs)| {
            let mut buf = String::new();
            for d in docs {
                buf.push_str(&d.line());
                buf.push('\n');
            }
            Input::Reader(
                format!("input-{i}.jsonl"),
                Box::new(std::io::Cursor::new(buf)),
            )
        })
        .collect();
    let opts = if small {
        small_opts()
    } else {
        IngestOptions::default()
    };
    let report = ingest(dir, readers, &opts)?;
    assert_eq!(report.rejected, 0, "{:?}", report.rejects);
    Ok(())
}

fn fail(msg: String) -> TestCaseError {
    TestCaseError::fail(msg)
}

/// Checks one query against the model.
fn check_query(corpus: &Corpus, model: &Model, q: &Q) -> Result<(), TestCaseError> {
    let text = q.print();
    let res = corpus.query(&text);
    if !model.knows(q) {
        prop_assert!(
            res.is_err(),
            "query `{text}` names an unknown field but succeeded"
        );
        return Ok(());
    }
    let sel = res.map_err(|e| fail(format!("query `{text}` failed: {e}")))?;
    let want = model.select(q);
    let want_keys: BTreeSet<&str> = want.iter().map(|d| d.key.as_str()).collect();
    prop_assert_eq!(
        sel.count(),
        want.len() as u64,
        "count of `{}` (expected keys {:?})",
        text,
        want_keys
    );
    let mut got_keys = BTreeSet::new();
    for doc in sel.documents() {
        let doc = doc.map_err(|e| fail(format!("reading `{text}`: {e}")))?;
        let m = model
            .live
            .iter()
            .find(|d| d.key == doc.key)
            .ok_or_else(|| fail(format!("`{text}` returned unknown key {:?}", doc.key)))?;
        prop_assert_eq!(&doc.text, &m.text, "text of {}", doc.key);
        let parsed: serde_json::Value = serde_json::from_slice(&doc.json)
            .map_err(|e| fail(format!("json of {}: {e}", doc.key)))?;
        prop_assert_eq!(parsed, m.json(), "json of {}", doc.key);
        prop_assert!(got_keys.insert(doc.key.clone()), "key twice: {}", doc.key);
    }
    let got: BTreeSet<&str> = got_keys.iter().map(|s| s.as_str()).collect();
    prop_assert_eq!(got, want_keys, "keys of `{}`", text);
    let bytes: u64 = want.iter().map(|d| d.text.len() as u64).sum();
    let tb = sel
        .text_bytes()
        .map_err(|e| fail(format!("text_bytes of `{text}`: {e}")))?;
    prop_assert_eq!(tb, bytes, "text_bytes of `{}`", text);
    Ok(())
}

/// Exports everything and compares with the model's records.
fn check_export(corpus: &Corpus, model: &Model) -> Result<(), TestCaseError> {
    let mut out = Vec::new();
    let n = write_jsonl(&corpus.all(), &Projection::All, &mut out)
        .map_err(|e| fail(format!("export: {e}")))?;
    prop_assert_eq!(n, model.live.len() as u64);
    let text = String::from_utf8(out).map_err(|e| fail(format!("export not UTF-8: {e}")))?;
    let mut got: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    for line in text.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).map_err(|e| fail(format!("exported line {line:?}: {e}")))?;
        let key = match &v["id"] {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        prop_assert!(got.insert(key, v).is_none(), "key exported twice");
    }
    let want: BTreeMap<String, serde_json::Value> = model
        .live
        .iter()
        .map(|d| (d.key.clone(), d.json()))
        .collect();
    prop_assert_eq!(got, want);
    Ok(())
}

fn run_scenario(steps: &[Step], queries: &[Q]) -> Result<(), TestCaseError> {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("corpus");
    let mut model = Model::default();
    let mut created = false;
    for step in steps {
        match step {
            Step::Ingest { inputs, small } => {
                run_ingest(&dir, inputs, *small)
                    .map_err(|e| fail(format!("ingest failed: {e}")))?;
                model.ingest(inputs);
                created = true;
            }
            Step::Delete(q) if created => {
                let text = q.print();
                match corpusql::raw::maintain::delete(&dir, &text) {
                    Ok((n, _)) => {
                        prop_assert!(model.knows(q), "delete `{}` should fail", text);
                        let before = model.live.len();
                        model.live.retain(|d| !matches(d, q));
                        prop_assert_eq!(n as usize, before - model.live.len(), "delete `{}`", text);
                    }
                    Err(e) => prop_assert!(!model.knows(q), "delete `{}` failed: {}", text, e),
                }
            }
            Step::Compact { small } if created => {
                let seg = if *small { 2_000 } else { 64 << 20 };
                let r = corpusql::raw::maintain::compact(&dir, seg)
                    .map_err(|e| fail(format!("compact: {e}")))?;
                prop_assert_eq!(r.docs, model.live.len() as u64);
            }
            _ => {}
        }
        if created {
            let c = Corpus::open(&dir).map_err(|e| fail(format!("open: {e}")))?;
            prop_assert_eq!(c.len(), model.live.len() as u64, "after {:?}", step);
        }
    }
    if !created {
        return Ok(());
    }
    let corpus = Corpus::open(&dir).map_err(|e| fail(format!("open: {e}")))?;
    prop_assert_eq!(corpus.len(), model.live.len() as u64);
    let v = corpusql::raw::maintain::verify(&dir).map_err(|e| fail(format!("verify: {e}")))?;
    prop_assert!(v.ok(), "verify: {:?}", v);
    check_export(&corpus, &model)?;
    check_query(&corpus, &model, &Q::All)?;
    for q in queries {
        check_query(&corpus, &model, q)?;
    }
    // `get` agrees with the model for every key.
    let mut keys: BTreeSet<&str> = KEYS.iter().copied().collect();
    keys.extend(model.live.iter().map(|d| d.key.as_str()));
    for k in keys {
        let got = corpus
            .get(k)
            .map_err(|e| fail(format!("get {k}: {e}")))?
            .map(|d| d.text);
        let want = model
            .live
            .iter()
            .find(|d| d.key == k)
            .map(|d| d.text.clone());
        prop_assert_eq!(got, want, "get {}", k);
    }
    Ok(())
}

proptest! {
    #![proptest_config(Config {
        cases: 96,
        max_shrink_iters: 200,
        failure_persistence: None,
        ..Config::default()
    })]

    /// Ingests, deletes and compactions, then queries against the model.
    #[test]
    fn engine_matches_model(
        steps in prop::collection::vec(step_strategy(), 1..6),
        queries in prop::collection::vec(query_strategy(), 12..24),
    ) {
        run_scenario(&steps, &queries)?;
    }
}

proptest! {
    #![proptest_config(Config {
        cases: 1000,
        failure_persistence: None,
        ..Config::default()
    })]

    /// Many queries on one fixed multi-segment corpus (cheap per case).
    #[test]
    fn queries_on_fixed_corpus(q in query_strategy()) {
        FIXED.with(|f| check_query(&f.corpus, &f.model, &q))?;
    }
}

struct Fixed {
    _tmp: tempfile::TempDir,
    corpus: Corpus,
    model: Model,
}

thread_local! {
    static FIXED: Fixed = build_fixed();
}

/// A corpus of every combination-ish document, in many small segments.
fn build_fixed() -> Fixed {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{RngAlgorithm, TestRng, TestRunner};
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &[7u8; 32]),
    );
    let strat = prop::collection::vec(doc_strategy(), 150);
    let docs_a = strat.new_tree(&mut runner).unwrap().current();
    let docs_b = strat.new_tree(&mut runner).unwrap().current();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    let mut model = Model::default();
    run_ingest(&dir, std::slice::from_ref(&docs_a), true).unwrap();
    model.ingest(std::slice::from_ref(&docs_a));
    corpusql::raw::maintain::delete(&dir, "lang = de or year < 1960").unwrap();
    model.live.retain(|d| {
        !(d.facet_values("lang").contains(&"de".to_string())
            || d.number("year").is_some_and(|y| y < 1960.0))
    });
    run_ingest(&dir, std::slice::from_ref(&docs_b), true).unwrap();
    model.ingest(std::slice::from_ref(&docs_b));
    let corpus = Corpus::open(&dir).unwrap();
    assert!(corpus.segments().len() >= 3, "{}", corpus.segments().len());
    assert_eq!(corpus.len(), model.live.len() as u64);
    Fixed {
        _tmp: tmp,
        corpus,
        model,
    }
}
