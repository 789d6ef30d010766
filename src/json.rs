//! Small JSON helpers on hot paths: string escaping for export and raw
//! object scanning for ingest (the field values are kept as the input wrote
//! them, so export round-trips numbers and objects exactly).

use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Whether `b` needs escaping inside a JSON string.
#[inline]
fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// Appends `s` as a JSON string literal (with quotes) to `out`, escaped
/// as serde_json escapes it (`\"`, `\\`, `\n`, `\r`, `\t`, `\b`, `\f`,
/// other control characters as `\u00xx`).
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        // 32 bytes at a time while none needs escaping (the compiler turns
        // the fixed-size test into vector compares): prose rarely does.
        if let Some(chunk) = bytes[i..].first_chunk::<32>() {
            let hit = chunk.iter().fold(0u8, |acc, &b| {
                acc | u8::from(b < 0x20) | u8::from(b == b'"') | u8::from(b == b'\\')
            });
            if hit == 0 {
                i += 32;
                continue;
            }
        }
        let end = (i + 32).min(bytes.len());
        while i < end {
            let b = bytes[i];
            if needs_escape(b) {
                out.extend_from_slice(&bytes[start..i]);
                match b {
                    b'"' => out.extend_from_slice(b"\\\""),
                    b'\\' => out.extend_from_slice(b"\\\\"),
                    b'\n' => out.extend_from_slice(b"\\n"),
                    b'\r' => out.extend_from_slice(b"\\r"),
                    b'\t' => out.extend_from_slice(b"\\t"),
                    0x08 => out.extend_from_slice(b"\\b"),
                    0x0c => out.extend_from_slice(b"\\f"),
                    _ => {
                        out.extend_from_slice(b"\\u00");
                        out.push(HEX[(b >> 4) as usize]);
                        out.push(HEX[(b & 0xf) as usize]);
                    }
                }
                start = i + 1;
            }
            i += 1;
        }
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Appends `x` as a JSON number: integral values without a fraction
/// (`12`, not `12.0`), others in the shortest form that reads back the same
/// `f64`; non-finite values (which JSON lacks) as `null`.
pub fn write_f64(out: &mut Vec<u8>, x: f64) {
    if !x.is_finite() {
        out.extend_from_slice(b"null");
    } else if x.fract() == 0.0 && x.abs() < 9_007_199_254_740_992.0 {
        out.extend_from_slice((x as i64).to_string().as_bytes());
    } else {
        serde_json::to_writer(&mut *out, &x).expect("Vec write");
    }
}

/// A JSON object's top-level fields in input order, values left raw.
pub struct RawObject<'a>(pub Vec<(std::borrow::Cow<'a, str>, &'a RawValue)>);

impl<'de> serde::Deserialize<'de> for RawObject<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawObject<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut fields = Vec::with_capacity(8);
                while let Some(k) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    let v: &'de RawValue = map.next_value()?;
                    fields.push((k, v));
                }
                Ok(RawObject(fields))
            }
        }
        d.deserialize_map(V)
    }
}

/// Describes the JSON type of a raw value for error messages.
pub fn type_name(raw: &str) -> &'static str {
    match raw.as_bytes().first() {
        Some(b'"') => "a string",
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b't') | Some(b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

/// Rejects any error from serde about the input shape with a readable reason.
pub fn describe_error(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    // serde_json appends " at line 1 column N"; keep the column, drop the line.
    match msg.rfind(" at line ") {
        Some(i) => {
            let tail = &msg[i..];
            let col = tail.rsplit("column ").next().unwrap_or("");
            format!("{} (column {col})", &msg[..i])
        }
        None => msg,
    }
}

/// Parses a string literal (with escapes) into an owned or borrowed string.
pub fn parse_str(raw: &RawValue) -> Result<std::borrow::Cow<'_, str>, serde_json::Error> {
    let s = raw.get();
    if s.len() >= 2 && !s.as_bytes()[1..s.len() - 1].contains(&b'\\') {
        return Ok(std::borrow::Cow::Borrowed(&s[1..s.len() - 1]));
    }
    match unescape(s) {
        Some(t) => Ok(std::borrow::Cow::Owned(t)),
        // serde_json says what is wrong (a lone surrogate, a bad escape).
        None => serde_json::from_str::<String>(s).map(std::borrow::Cow::Owned),
    }
}

/// Decodes a JSON string literal, quotes included, that has escapes: the
/// runs between escapes are copied whole into a string allocated once at
/// the literal's size (the decoded text is never longer). The literal comes
/// from a `RawValue`, which serde_json has checked (no raw control
/// character or quote inside); `None` for a bad escape or a lone surrogate,
/// and the caller then asks serde_json for the error. The input is `&str`,
/// so the runs need no UTF-8 check: this is what makes it faster than
/// serde_json's own path for long texts (11% of an ingest profile went to
/// decoding texts).
fn unescape(lit: &str) -> Option<String> {
    let inner = lit.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut rest = inner;
    while let Some(i) = memchr::memchr(b'\\', rest.as_bytes()) {
        out.push_str(&rest[..i]);
        let mut used = 2;
        match *rest.as_bytes().get(i + 1)? {
            b'"' => out.push('"'),
            b'\\' => out.push('\\'),
            b'/' => out.push('/'),
            b'b' => out.push('\u{8}'),
            b'f' => out.push('\u{c}'),
            b'n' => out.push('\n'),
            b'r' => out.push('\r'),
            b't' => out.push('\t'),
            b'u' => {
                let hi = hex4(rest.get(i + 2..i + 6)?)?;
                used = 6;
                let c = match hi {
                    0xD800..=0xDBFF => {
                        if rest.get(i + 6..i + 8)? != "\\u" {
                            return None;
                        }
                        let lo = hex4(rest.get(i + 8..i + 12)?)?;
                        if !(0xDC00..=0xDFFF).contains(&lo) {
                            return None;
                        }
                        used = 12;
                        0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                    }
                    0xDC00..=0xDFFF => return None,
                    c => c,
                };
                out.push(char::from_u32(c)?);
            }
            _ => return None,
        }
        rest = rest.get(i + used..)?;
    }
    out.push_str(rest);
    Some(out)
}

/// Four hex digits.
fn hex4(s: &str) -> Option<u32> {
    if s.len() != 4 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(s, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescape_agrees_with_serde_json() {
        let cases = [
            r#""a\nb""#,
            r#""\"q\" \\ \/ \b\f\n\r\t""#,
            r#""caf\u00e9 \u20ac \ud83d\ude00 end""#,
            r#""\u0000x""#,
            r#""héllo\n wörld 😀""#,
        ];
        for c in cases {
            let want: String = serde_json::from_str(c).unwrap();
            assert_eq!(unescape(c).as_deref(), Some(want.as_str()), "{c}");
        }
        // Generated texts with every kind of character, encoded by serde_json.
        let mut x = 7u64;
        for _ in 0..500 {
            let n = (crate::hash::splitmix64(&mut x) % 40) as usize;
            let t: String = (0..n)
                .map(|_| {
                    let r = crate::hash::splitmix64(&mut x);
                    let c = match r % 5 {
                        0 => (r >> 8) % 0x20,
                        1 => b'"' as u64 + (r >> 8) % 2 * (b'\\' - b'"') as u64,
                        2 => 0x80 + (r >> 8) % 0x700,
                        3 => 0x10000 + (r >> 8) % 0x1000,
                        _ => 0x20 + (r >> 8) % 0x5f,
                    };
                    char::from_u32(c as u32).unwrap_or('?')
                })
                .collect();
            let lit = serde_json::to_string(&t).unwrap();
            assert_eq!(unescape(&lit).as_deref(), Some(t.as_str()), "{lit}");
        }
        // Malformed literals: None, so that serde_json names the error.
        for bad in [
            r#""\ud800""#,
            r#""\udc00x""#,
            r#""\ud800\u0041""#,
            r#""\x""#,
            r#""\u12""#,
            r#""\u+123""#,
            r#""abc\"#,
        ] {
            assert_eq!(unescape(bad), None, "{bad}");
        }
    }

    #[test]
    fn f64_as_json_numbers() {
        let w = |x: f64| {
            let mut o = Vec::new();
            write_f64(&mut o, x);
            String::from_utf8(o).unwrap()
        };
        assert_eq!(w(12.0), "12");
        assert_eq!(w(-3.0), "-3");
        assert_eq!(w(0.1), "0.1");
        assert_eq!(w(0.123456789), "0.123456789");
        assert_eq!(w(1e300), "1e+300");
        assert_eq!(w(f64::NAN), "null");
        for x in [0.1, 1.0 / 3.0, 2.5e-9, 123456.789] {
            assert_eq!(w(x).parse::<f64>().unwrap(), x);
        }
    }

    #[test]
    fn escape_round_trips_through_serde() {
        for s in [
            "",
            "plain",
            "quote \" back \\ nl \n tab \t",
            "\u{0}\u{1f}é🎉",
            "\r\u{8}\u{c}",
        ] {
            let mut out = Vec::new();
            write_str(&mut out, s);
            let back: String = serde_json::from_slice(&out).unwrap();
            assert_eq!(back, s);
        }
    }

    #[test]
    fn escape_writes_what_serde_json_writes_at_every_position() {
        // Every byte that needs escaping, at each offset around the 32-byte
        // steps, inside prose with accents.
        let base = "Le théâtre de Molière, acte premier. ".repeat(4);
        let specials: Vec<char> = (0u8..0x20)
            .map(char::from)
            .chain(['"', '\\', '\u{7f}', 'é'])
            .collect();
        for at in 0..70 {
            for &c in &specials {
                let mut s: String = base.chars().take(at).collect();
                s.push(c);
                s.push_str(&base);
                let mut out = Vec::new();
                write_str(&mut out, &s);
                assert_eq!(
                    String::from_utf8(out).unwrap(),
                    serde_json::to_string(&s).unwrap(),
                    "{c:?} at {at}"
                );
            }
        }
    }

    #[test]
    fn raw_object_keeps_order_and_raw_values() {
        let o: RawObject =
            serde_json::from_str(r#"{"b": 1.50, "a": {"x": [1, 2]}, "t": "x\ny"}"#).unwrap();
        let names: Vec<&str> = o.0.iter().map(|(k, _)| k.as_ref()).collect();
        assert_eq!(names, ["b", "a", "t"]);
        assert_eq!(o.0[0].1.get(), "1.50");
        assert_eq!(o.0[1].1.get(), r#"{"x": [1, 2]}"#);
        assert_eq!(parse_str(o.0[2].1).unwrap(), "x\ny");
    }
}
