//! The byte-level pre-tokenizer of GPT-2 style tokenizers (Hugging Face
//! `ByteLevel` with `use_regex`), by hand: the split of its pattern
//! `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
//! (leftmost-first, as the regex engines run it) as a scan over characters,
//! and the byte -> character alphabet its words are spelt in before the
//! model sees them. The character classes are regex-syntax's own Unicode
//! tables (the crate the `tokenizers` regex is built on), so a split here
//! is the library's split; `tests/tokenizer.rs` holds the two side by side.

use std::sync::LazyLock;

/// A character in none of the classes below.
const OTHER: u8 = 0;
/// `\p{L}`.
const LETTER: u8 = 1;
/// `\p{N}`.
const NUMBER: u8 = 2;
/// `\s` (Unicode White_Space).
const SPACE: u8 = 3;

/// Character classes: one byte per code point of the Basic Multilingual
/// Plane, sorted ranges above it.
struct Classes {
    bmp: Box<[u8]>,
    astral: Vec<(u32, u32, u8)>,
}

static CLASSES: LazyLock<Classes> = LazyLock::new(|| {
    let mut bmp = vec![OTHER; 0x10000].into_boxed_slice();
    let mut astral = Vec::new();
    for (pattern, class) in [(r"\p{L}", LETTER), (r"\p{N}", NUMBER), (r"\s", SPACE)] {
        for (lo, hi) in unicode_ranges(pattern) {
            for c in lo..=hi.min(0xFFFF) {
                bmp[c as usize] = class;
            }
            if hi > 0xFFFF {
                astral.push((lo.max(0x10000), hi, class));
            }
        }
    }
    astral.sort_unstable();
    Classes { bmp, astral }
});

/// The code point ranges of a one-class pattern, from regex-syntax.
fn unicode_ranges(pattern: &str) -> Vec<(u32, u32)> {
    use regex_syntax::hir::{Class, HirKind};
    // The three patterns are constants regex-syntax knows; no input reaches here.
    let hir = regex_syntax::parse(pattern).expect("a Unicode class pattern");
    match hir.kind() {
        HirKind::Class(Class::Unicode(c)) => c
            .ranges()
            .iter()
            .map(|r| (r.start() as u32, r.end() as u32))
            .collect(),
        _ => Vec::new(),
    }
}

/// The class of `c`.
#[inline]
fn class(c: char) -> u8 {
    let c = c as u32;
    let t = &*CLASSES;
    if c < 0x10000 {
        return t.bmp[c as usize];
    }
    match t.astral.binary_search_by(|&(lo, hi, _)| {
        if hi < c {
            std::cmp::Ordering::Less
        } else if lo > c {
            std::cmp::Ordering::Greater
        } else {
            std::cmp::Ordering::Equal
        }
    }) {
        Ok(i) => t.astral[i].2,
        Err(_) => OTHER,
    }
}

/// The character starting at byte `i` of `s` (a char boundary below its length).
#[inline]
fn char_at(s: &str, i: usize) -> char {
    s[i..].chars().next().unwrap_or('\0')
}

/// The end of the run of characters of class `k` that starts at `i`.
#[inline]
fn run_end(s: &str, mut i: usize, k: u8) -> usize {
    let b = s.as_bytes();
    while i < b.len() {
        let c = char_at(s, i);
        if class(c) != k {
            break;
        }
        i += c.len_utf8();
    }
    i
}

/// The end of the piece that starts at byte `i` (a char boundary below `s.len()`).
fn piece_end(s: &str, i: usize) -> usize {
    let b = s.as_bytes();
    let c = char_at(s, i);
    if c == '\'' {
        match &b[i + 1..] {
            [b's' | b't' | b'm' | b'd', ..] => return i + 2,
            [b'r', b'e', ..] | [b'v', b'e', ..] | [b'l', b'l', ..] => return i + 3,
            _ => {}
        }
    }
    // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`: a space joins the run after it.
    if c == ' ' && i + 1 < b.len() {
        let k = class(char_at(s, i + 1));
        if k != SPACE {
            return run_end(s, i + 1, k);
        }
    }
    let k = class(c);
    if k != SPACE {
        return run_end(s, i, k);
    }
    // `\s+(?!\S)`: a run of white space not followed by anything else, so a
    // run before a word leaves its last character to that word; `\s+` when
    // that leaves nothing.
    let end = run_end(s, i, SPACE);
    if end == b.len() {
        return end;
    }
    let last = s[..end].chars().next_back().map_or(0, char::len_utf8);
    if end - last > i {
        end - last
    } else {
        end
    }
}

/// Calls `f` with each piece of `s` the GPT-2 pattern matches, in order
/// (they cover `s`: every character is in one of the pattern's classes).
pub(super) fn split<'a, E>(
    s: &'a str,
    mut f: impl FnMut(&'a str) -> Result<(), E>,
) -> Result<(), E> {
    let mut i = 0;
    while i < s.len() {
        let end = piece_end(s, i);
        f(&s[i..end])?;
        i = end;
    }
    Ok(())
}

/// GPT-2's byte alphabet: printable Latin-1 bytes stand for themselves,
/// the others for U+0100 on, in byte order.
static BYTE_CHARS: LazyLock<[char; 256]> = LazyLock::new(|| {
    let keep = |b: u8| matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
    let mut out = ['\0'; 256];
    let mut n = 0u32;
    for b in 0..=255u8 {
        out[b as usize] = if keep(b) {
            char::from(b)
        } else {
            n += 1;
            char::from_u32(0xFF + n).unwrap_or('\0')
        };
    }
    out
});

/// `word` spelt in the byte alphabet (each UTF-8 byte one character), into `out`.
pub(super) fn byte_spelling(word: &str, out: &mut String) {
    let t = &*BYTE_CHARS;
    out.clear();
    out.extend(word.bytes().map(|b| t[b as usize]));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(s: &str) -> Vec<&str> {
        let mut v = Vec::new();
        split::<()>(s, |p| {
            v.push(p);
            Ok(())
        })
        .unwrap();
        v
    }

    #[test]
    fn splits_as_the_pattern_does() {
        assert_eq!(
            pieces("Hello world's 12ab  \n x!! 'll"),
            ["Hello", " world", "'s", " 12", "ab", "  \n", " x", "!!", " '", "ll"]
        );
        assert_eq!(pieces("a   b  "), ["a", "  ", " b", "  "]);
        assert_eq!(pieces("\n\nb"), ["\n", "\n", "b"]);
        assert_eq!(pieces(" "), [" "]);
        assert_eq!(pieces("\u{3000}x"), ["\u{3000}", "x"]);
        assert_eq!(pieces("é\u{301}"), ["é", "\u{301}"]);
        // Above the Basic Multilingual Plane: a letter, a digit, an emoji.
        assert_eq!(
            pieces("x\u{1D400} \u{1D7D9}\u{1F600}"),
            ["x\u{1D400}", " \u{1D7D9}", "\u{1F600}"]
        );
    }

    #[test]
    fn byte_alphabet_is_gpt2s() {
        let mut s = String::new();
        byte_spelling(" a\n", &mut s);
        assert_eq!(s, "\u{120}a\u{10A}");
        byte_spelling("é", &mut s);
        assert_eq!(s, "Ã©");
        let distinct: std::collections::HashSet<char> = BYTE_CHARS.iter().copied().collect();
        assert_eq!(distinct.len(), 256);
    }
}
