//! Parses one JSONL line into a [`DocRecord`]: validates UTF-8 and JSON,
//! finds the key and the text, classifies every other field (facet, bool,
//! number, json) and keeps the record's JSON around the text exactly as the
//! input wrote it, so that export round-trips.

use std::borrow::Cow;

use serde_json::value::RawValue;

use crate::format;
use crate::json::{self, RawObject};
use crate::schema::FieldKind;
use crate::segment::{field_name, DocRecord};

/// How records are read.
#[derive(Debug, Clone, Default)]
pub struct RecordOptions {
    /// Field holding the text; `None`: the corpus's saved mapping (set by
    /// its first ingest), else `text`.
    pub text_field: Option<String>,
    /// Field holding the key; `None`: the corpus's saved mapping, else `id`.
    pub id_field: Option<String>,
    /// Constant facets added to records that lack the field.
    pub set: Vec<(String, String)>,
}

impl RecordOptions {
    /// The field holding the text.
    pub fn text_field(&self) -> &str {
        self.text_field.as_deref().unwrap_or("text")
    }

    /// The field holding the key.
    pub fn id_field(&self) -> &str {
        self.id_field.as_deref().unwrap_or("id")
    }
}

/// Outcome of parsing one line.
#[derive(Debug)]
pub enum Parsed {
    /// A document.
    Doc(Box<DocRecord>),
    /// An empty or whitespace-only line, skipped.
    Blank,
    /// A rejected line, with the reason.
    Reject(String),
}

/// Facets that name one language, license or source per document: arrays
/// are rejected rather than read as several values.
pub const SINGLE_VALUED: [&str; 3] = ["lang", "license", "source"];

/// A readable reason for a string that failed to parse.
fn string_error(field: &str, raw: &str, e: &serde_json::Error) -> String {
    if let Some(i) = lone_surrogate(raw) {
        return format!(
            "field `{field}`: lone UTF-16 surrogate escape `{}` (not a Unicode character)",
            &raw[i..i + 6]
        );
    }
    format!("field `{field}`: {}", json::describe_error(e))
}

/// Position of a `\uD800`-`\uDFFF` escape not part of a valid pair.
fn lone_surrogate(raw: &str) -> Option<usize> {
    let b = raw.as_bytes();
    let hex = |i: usize| -> Option<u32> { u32::from_str_radix(raw.get(i + 2..i + 6)?, 16).ok() };
    let mut i = 0;
    while i + 6 <= b.len() {
        if b[i] == b'\\' {
            if b[i + 1] == b'u' {
                if let Some(c) = hex(i) {
                    if (0xD800..0xDC00).contains(&c) {
                        let low = (i + 12 <= b.len() && b[i + 6] == b'\\' && b[i + 7] == b'u')
                            .then(|| hex(i + 6))
                            .flatten();
                        if low.is_some_and(|l| (0xDC00..0xE000).contains(&l)) {
                            i += 12;
                            continue;
                        }
                        return Some(i);
                    }
                    if (0xDC00..0xE000).contains(&c) {
                        return Some(i);
                    }
                }
            }
            i += 2;
            continue;
        }
        i += 1;
    }
    None
}

fn push_key(out: &mut Vec<u8>, k: &str) {
    json::write_str(out, k);
    out.push(b':');
}

/// Parses one line (without its `\n`). `first` strips a UTF-8 BOM.
pub fn parse_line(line: &[u8], first: bool, opts: &RecordOptions) -> Parsed {
    let mut line = line;
    if first && line.starts_with(b"\xEF\xBB\xBF") {
        line = &line[3..];
    }
    if line.iter().all(|b| b.is_ascii_whitespace()) {
        return Parsed::Blank;
    }
    // SIMD validation (simdutf8: 6% of an ingest profile went to the
    // standard library's, which leaves its ASCII fast path at every accent);
    // the standard one only to say where a bad line goes wrong.
    let s = match simdutf8::basic::from_utf8(line) {
        Ok(s) => s,
        Err(_) => {
            let at = std::str::from_utf8(line)
                .err()
                .map_or(0, |e| e.valid_up_to());
            return Parsed::Reject(format!("invalid UTF-8 at byte {at}"));
        }
    };
    match parse_str(s, opts) {
        Ok(d) => Parsed::Doc(Box::new(d)),
        Err(r) => Parsed::Reject(r),
    }
}

fn parse_str(s: &str, opts: &RecordOptions) -> Result<DocRecord, String> {
    let trimmed = s.trim_start();
    if !trimmed.starts_with('{') {
        let what = match trimmed.as_bytes().first() {
            Some(b'[') => "an array",
            Some(b'"') => "a string",
            _ => "something else",
        };
        if serde_json::from_str::<serde::de::IgnoredAny>(s).is_ok() {
            return Err(format!("expected a JSON object, found {what}"));
        }
    }
    let obj: RawObject = serde_json::from_str(s)
        .map_err(|e| format!("invalid JSON: {}", json::describe_error(&e)))?;
    let mut d = DocRecord::default();
    let mut text: Option<String> = None;
    let mut key: Option<String> = None;
    let mut prefix = Vec::with_capacity(256);
    let mut suffix = Vec::with_capacity(256);
    prefix.push(b'{');
    let mut seen_text = false;
    let mut first_field = true;
    let mut objects = Vec::new();
    for (i, (k, raw)) in obj.0.iter().enumerate() {
        if obj.0[..i].iter().any(|(k2, _)| k2 == k) {
            return Err(format!("field `{k}` appears twice"));
        }
        if k.contains('\0') {
            return Err(nul_in_name(k));
        }
        let out = if seen_text { &mut suffix } else { &mut prefix };
        if !first_field {
            out.push(b',');
        }
        first_field = false;
        push_key(out, k);
        let r = raw.get();
        if *k == opts.text_field() {
            if !r.starts_with('"') {
                return Err(format!(
                    "field `{}` must be a string, found {}",
                    opts.text_field(),
                    json::type_name(r)
                ));
            }
            let t = json::parse_str(raw).map_err(|e| string_error(k, r, &e))?;
            text = Some(t.into_owned());
            seen_text = true;
            continue;
        }
        out.extend_from_slice(r.as_bytes());
        if *k == opts.id_field() {
            key = Some(parse_key(raw, k)?);
            continue;
        }
        if *k == crate::format::BYTES_FIELD {
            // The built-in `bytes` (text length) owns the name in queries;
            // the record's own value is kept and exported, not indexed.
            continue;
        }
        classify(k, raw, &mut d, &mut objects)?;
    }
    for (f, v) in &opts.set {
        if obj.0.iter().any(|(k, _)| k == f) {
            continue;
        }
        let out = if seen_text { &mut suffix } else { &mut prefix };
        out.push(b',');
        push_key(out, f);
        json::write_str(out, v);
        let v = if f == "lang" {
            crate::lang::normalize(v).into_owned()
        } else {
            v.clone()
        };
        d.facets.push((field_name(f), v));
        d.present.push((field_name(f), FieldKind::Facet));
    }
    let Some(text) = text else {
        return Err(missing_text(&obj, opts));
    };
    let top = d.present.len();
    for (k, m) in objects {
        flatten(&k, &m, 1, &mut d);
    }
    d.nested = d.present.len() - top;
    suffix.push(b'}');
    d.key = match key {
        Some(k) => k,
        None => format!("xxh3:{:032x}", xxhash_rust::xxh3::xxh3_128(text.as_bytes())),
    };
    d.text = text;
    d.prefix = prefix;
    d.suffix = suffix;
    Ok(d)
}

/// The reason a record with a NUL character in a field name is rejected:
/// the term dictionary separates a field from its value by that byte, so
/// such a name could not be told apart from another field's value
/// (`"a": "\u0000b"` against `"a\u0000": "b"`).
pub(crate) fn nul_in_name(k: &str) -> String {
    format!(
        "field name `{}` contains a NUL character (\\u0000), which corpusql cannot index; \
         rename the field",
        k.escape_debug()
    )
}

/// The reason a record without its text field is rejected, naming the
/// string fields it does have (longest value first: the likely text).
fn missing_text(obj: &RawObject, opts: &RecordOptions) -> String {
    let mut strings: Vec<(&str, usize)> = obj
        .0
        .iter()
        .filter(|(k, v)| v.get().starts_with('"') && *k != opts.id_field())
        .map(|(k, v)| (k.as_ref(), v.get().len()))
        .collect();
    strings.sort_by_key(|s| std::cmp::Reverse(s.1));
    let tf = opts.text_field();
    if strings.is_empty() {
        return format!(
            "missing field `{tf}` (the document text), and the record has no string field"
        );
    }
    let names: Vec<String> = strings
        .iter()
        .take(8)
        .map(|(k, _)| format!("`{k}`"))
        .collect();
    format!(
        "missing field `{tf}` (the document text); its string fields are {}: name the text field with --text-field {}",
        names.join(", "),
        strings[0].0
    )
}

fn parse_key(raw: &RawValue, field: &str) -> Result<String, String> {
    let r = raw.get();
    if r.starts_with('"') {
        let k = json::parse_str(raw)
            .map_err(|e| format!("field `{field}`: {}", json::describe_error(&e)))?;
        if k.is_empty() {
            return Err(format!("field `{field}` (the key) is empty"));
        }
        if k.len() > 4096 {
            return Err(format!(
                "field `{field}` (the key) is longer than 4096 bytes"
            ));
        }
        return Ok(k.into_owned());
    }
    if r.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        if let Ok(i) = r.parse::<i64>() {
            return Ok(i.to_string());
        }
    }
    Err(format!(
        "field `{field}` (the key) must be a string or an integer, found {}",
        if r.starts_with(|c: char| c.is_ascii_digit() || c == '-') {
            "a non-integer number"
        } else {
            json::type_name(r)
        }
    ))
}

/// Classifies one top-level field into `d`; objects are also kept in
/// `objects` for [`flatten`].
fn classify(
    k: &str,
    raw: &RawValue,
    d: &mut DocRecord,
    objects: &mut Vec<(String, Object)>,
) -> Result<(), String> {
    let r = raw.get();
    let bad = |e: serde_json::Error| string_error(k, r, &e);
    match r.as_bytes()[0] {
        b'"' => {
            let v = json::parse_str(raw).map_err(bad)?;
            check_len(k, &v)?;
            let v = if k == "lang" {
                crate::lang::normalize(&v).into_owned()
            } else {
                v.into_owned()
            };
            d.facets.push((field_name(k), v));
            d.present.push((field_name(k), FieldKind::Facet));
        }
        b't' | b'f' => {
            d.facets.push((field_name(k), r.to_string()));
            d.present.push((field_name(k), FieldKind::Bool));
        }
        b'n' => {}
        b'[' if SINGLE_VALUED.contains(&k) => {
            return Err(format!(
                "field `{k}` must be a single string, found an array"
            ));
        }
        b'[' => match serde_json::from_str::<Vec<Cow<str>>>(r) {
            Ok(vals) => {
                for v in vals {
                    check_len(k, &v)?;
                    if !d.facets.iter().any(|(f, x)| f == k && *x == v) {
                        d.facets.push((field_name(k), v.into_owned()));
                    }
                }
                d.present.push((field_name(k), FieldKind::Facet));
            }
            Err(_) => {
                check_json(r).map_err(bad)?;
                d.present.push((field_name(k), FieldKind::Json));
            }
        },
        b'{' => {
            let v: serde_json::Value = serde_json::from_str(r).map_err(bad)?;
            d.present.push((field_name(k), FieldKind::Json));
            if let serde_json::Value::Object(m) = v {
                objects.push((k.to_string(), m));
            }
        }
        _ => {
            let x: f64 = r
                .parse()
                .map_err(|_| format!("field `{k}`: unreadable number `{r}`"))?;
            if !x.is_finite() {
                return Err(format!("field `{k}`: number `{r}` is out of range"));
            }
            d.numbers.push((field_name(k), x));
            d.present.push((field_name(k), FieldKind::Number));
        }
    }
    Ok(())
}

/// A parsed JSON object.
type Object = serde_json::Map<String, serde_json::Value>;

/// How deep nested objects are indexed (`a.b.c.d.e.f.g.h`); deeper leaves
/// are stored and exported but not queryable.
pub const MAX_NESTED_DEPTH: usize = 8;

/// Indexes the leaves of a nested object under dotted names (`meta.language`,
/// `meta.year`), like top-level fields: strings and arrays of strings are
/// facets, numbers numeric columns, booleans bool facets, objects `json`
/// (for `exists`) and recursed into. A leaf that could not be indexed (a
/// string longer than a facet value, a mixed array, a name taken by an
/// earlier field, a name holding a NUL character, and what is below it) is
/// skipped: nested values never reject a record.
fn flatten(prefix: &str, obj: &Object, depth: usize, d: &mut DocRecord) {
    use serde_json::Value;
    for (k, v) in obj {
        if k.contains('\0') {
            continue;
        }
        let name = field_name(&[prefix, k.as_str()].join("."));
        if matches!(v, Value::Null) || d.present.iter().any(|(f, _)| *f == name) {
            continue;
        }
        match v {
            Value::String(s) if s.len() <= format::MAX_FACET_VALUE_BYTES => {
                d.facets.push((name.clone(), s.clone()));
                d.present.push((name, FieldKind::Facet));
            }
            Value::Bool(b) => {
                d.facets.push((name.clone(), b.to_string()));
                d.present.push((name, FieldKind::Bool));
            }
            Value::Number(n) => {
                if let Some(x) = n.as_f64().filter(|x| x.is_finite()) {
                    d.numbers.push((name.clone(), x));
                    d.present.push((name, FieldKind::Number));
                }
            }
            Value::Array(a) => {
                let strings: Option<Vec<&str>> = a.iter().map(Value::as_str).collect();
                match strings {
                    Some(vals)
                        if vals
                            .iter()
                            .all(|s| s.len() <= format::MAX_FACET_VALUE_BYTES) =>
                    {
                        for s in vals {
                            if !d.facets.iter().any(|(f, x)| *f == name && x == s) {
                                d.facets.push((name.clone(), s.to_string()));
                            }
                        }
                        d.present.push((name, FieldKind::Facet));
                    }
                    _ => d.present.push((name, FieldKind::Json)),
                }
            }
            Value::Object(m) => {
                d.present.push((name.clone(), FieldKind::Json));
                if depth < MAX_NESTED_DEPTH {
                    flatten(&name, m, depth + 1, d);
                }
            }
            _ => {}
        }
    }
}

/// Checks that a nested value is JSON every parser reads, escapes included:
/// `IgnoredAny` skips strings without decoding their `\u` escapes, so a lone
/// surrogate (`"\ud830__"`) would be stored and exported verbatim, and the
/// exported line refused by the next reader (a fuzz finding).
fn check_json(r: &str) -> Result<(), serde_json::Error> {
    serde_json::from_str::<serde_json::Value>(r).map(|_| ())
}

fn check_len(k: &str, v: &str) -> Result<(), String> {
    if v.len() > format::MAX_FACET_VALUE_BYTES {
        return Err(format!(
            "field `{k}`: a facet value of {} bytes is longer than the {} indexed; store long strings inside an object",
            v.len(),
            format::MAX_FACET_VALUE_BYTES
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(s: &str) -> DocRecord {
        match parse_line(s.as_bytes(), false, &RecordOptions::default()) {
            Parsed::Doc(d) => *d,
            other => panic!("{other:?}"),
        }
    }

    fn reject(s: &[u8]) -> String {
        match parse_line(s, false, &RecordOptions::default()) {
            Parsed::Reject(r) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn fields_are_classified_and_json_is_kept_around_the_text() {
        let d = doc(
            r#"{"id": 7, "lang": "FR-fr", "text": "a\"b", "year": 1998, "ok": true, "tags": ["x", "y"], "meta": {"u": 1}, "n": null}"#,
        );
        assert_eq!(d.key, "7");
        assert_eq!(d.text, "a\"b");
        assert_eq!(
            d.facets,
            vec![
                ("lang".into(), "fr".into()),
                ("ok".into(), "true".into()),
                ("tags".into(), "x".into()),
                ("tags".into(), "y".into())
            ]
        );
        assert_eq!(
            d.numbers,
            vec![("year".into(), 1998.0), ("meta.u".into(), 1.0)]
        );
        assert_eq!(d.nested, 1);
        assert_eq!(
            d.present.last(),
            Some(&("meta.u".into(), FieldKind::Number))
        );
        let mut out = d.prefix.clone();
        crate::json::write_str(&mut out, &d.text);
        out.extend_from_slice(&d.suffix);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["lang"], "FR-fr");
        assert_eq!(v["meta"]["u"], 1);
        assert_eq!(v["text"], "a\"b");
    }

    #[test]
    fn bad_records_say_why() {
        assert!(reject(br#"{"id": "a"}"#).contains("missing field `text`"));
        assert!(reject(br#"{"id": "a", "text": {"x": 1}}"#)
            .contains("must be a string, found an object"));
        assert!(reject(br#"[1, 2]"#).contains("expected a JSON object, found an array"));
        assert!(reject(br#"{"id": "a", "text": "x"#).contains("invalid JSON"));
        assert!(reject(b"{\"id\": \"a\", \"text\": \"\xff\"}").contains("invalid UTF-8"));
        assert!(reject(br#"{"id": "a", "text": "\ud800"}"#).contains("surrogate"));
        assert!(reject(br#"{"id": 1.5, "text": "x"}"#).contains("must be a string or an integer"));
        assert!(reject(br#"{"id": "a", "id": "b", "text": "x"}"#).contains("twice"));
        let r = reject(br#"{"id": "a", "text": "x", "a\u0000": "b"}"#);
        assert!(
            r.contains(r"field name `a\0` contains a NUL character"),
            "{r}"
        );
    }

    #[test]
    fn nested_names_with_nul_are_stored_not_indexed() {
        let line = r#"{"text": "x", "m": {"a\u0000": "b", "c": {"d\u0000e": 1}, "f": "g"}}"#;
        let d = doc(line);
        assert_eq!(d.facets, vec![("m.f".into(), "g".into())]);
        assert!(d.numbers.is_empty());
        let names: Vec<&str> = d.present.iter().map(|(f, _)| f.as_ref()).collect();
        assert_eq!(names, ["m", "m.c", "m.f"]);
        let mut out = d.prefix.clone();
        crate::json::write_str(&mut out, &d.text);
        out.extend_from_slice(&d.suffix);
        let out = String::from_utf8(out).unwrap();
        assert!(
            out.contains(r#"{"a\u0000": "b", "c": {"d\u0000e": 1}, "f": "g"}"#),
            "{out}"
        );
        let v = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap();
        assert_eq!(v(&out), v(line));
    }

    #[test]
    fn key_defaults_to_content_hash() {
        let a = doc(r#"{"text": "same"}"#);
        let b = doc(r#"{"text": "same", "lang": "fr"}"#);
        assert_eq!(a.key, b.key);
        assert!(a.key.starts_with("xxh3:"));
    }

    #[test]
    fn blank_and_bom() {
        assert!(matches!(
            parse_line(b"  \r", false, &RecordOptions::default()),
            Parsed::Blank
        ));
        assert!(matches!(
            parse_line(
                b"\xEF\xBB\xBF{\"text\": \"x\"}",
                true,
                &RecordOptions::default()
            ),
            Parsed::Doc(_)
        ));
    }
}
