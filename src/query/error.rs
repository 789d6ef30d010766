//! Query diagnostics: an error message tied to a span of the query, shown
//! with a caret under that span, and the "did you mean" helper.

use std::fmt;

use super::Span;

/// An error in a query: a parse error, or a problem the planner found (an
/// unknown field, a value of the wrong kind), with the part of the query it
/// concerns.
///
/// Its [`Display`](fmt::Display) shows the message, the query line and a caret
/// under the span, and the suggestion if there is one:
///
/// ```text
/// unknown field `lnag`
///   lnag=fr and year >= 1950
///   ^^^^
///   did you mean `lang`?
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct QueryError {
    /// The whole query text.
    pub query: String,
    /// The offending part of the query (byte offsets; may be empty, e.g. at
    /// the end of the query).
    pub span: Span,
    /// A plain-English description, without trailing punctuation.
    pub message: String,
    /// A replacement for the text under the span, if one is likely.
    pub suggestion: Option<String>,
}

impl QueryError {
    /// An error about `span` of `query`, without a suggestion.
    pub fn new(query: &str, span: Span, message: impl Into<String>) -> Self {
        QueryError {
            query: query.to_owned(),
            span,
            message: message.into(),
            suggestion: None,
        }
    }

    /// The same error with `suggestion` (usually the result of [`suggest`]).
    pub fn with_suggestion(self, suggestion: Option<String>) -> Self {
        QueryError { suggestion, ..self }
    }
}

/// The largest char boundary of `s` at or before `i`.
fn floor_boundary(s: &str, i: usize) -> usize {
    let mut i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let q = self.query.as_str();
        let start = floor_boundary(q, self.span.start);
        let end = floor_boundary(q, self.span.end.max(start));
        // Show only the line holding the start of the span.
        let line_start = q[..start].rfind('\n').map_or(0, |p| p + 1);
        let line_end = q[start..].find('\n').map_or(q.len(), |p| start + p);
        let line: String = q[line_start..line_end]
            .trim_end_matches('\r')
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let pad = q[line_start..start].chars().count();
        let width = q[start..end.min(line_end)].chars().count().max(1);
        write!(
            f,
            "{}\n  {}\n  {}{}",
            self.message,
            line,
            " ".repeat(pad),
            "^".repeat(width)
        )?;
        if let Some(s) = &self.suggestion {
            write!(f, "\n  did you mean `{s}`?")?;
        }
        Ok(())
    }
}

impl std::error::Error for QueryError {}

/// The candidate nearest to `word`, for "did you mean" hints.
///
/// Distance is the optimal-string-alignment distance (Levenshtein plus
/// transposition of neighbours) between the lowercased strings, counted in
/// chars. A candidate qualifies only within `max(1, chars(word) / 3)`; among
/// the nearest, the lexicographically smallest wins. Returns `None` when
/// nothing qualifies.
///
/// ```
/// use corpusql::raw::query::suggest;
/// assert_eq!(suggest("lnag", ["lang", "license", "source"]), Some("lang"));
/// assert_eq!(suggest("zzz", ["lang", "license"]), None);
/// ```
pub fn suggest<'a, I: IntoIterator<Item = &'a str>>(word: &str, candidates: I) -> Option<&'a str> {
    let w: Vec<char> = word.to_lowercase().chars().collect();
    let max = (w.len() / 3).max(1);
    let mut best: Option<(usize, &'a str)> = None;
    let mut buf = Vec::new();
    for cand in candidates {
        buf.clear();
        buf.extend(cand.to_lowercase().chars());
        if buf.len().abs_diff(w.len()) > max {
            continue;
        }
        let d = osa_distance(&w, &buf);
        if d > max {
            continue;
        }
        let better = match best {
            None => true,
            Some((bd, bs)) => d < bd || (d == bd && cand < bs),
        };
        if better {
            best = Some((d, cand));
        }
    }
    best.map(|(_, s)| s)
}

/// Optimal string alignment distance, in O(len(a) * len(b)) time and
/// O(len(b)) space.
fn osa_distance(a: &[char], b: &[char]) -> usize {
    let n = b.len();
    let mut prev2 = vec![0; n + 1];
    let mut prev: Vec<usize> = (0..=n).collect();
    let mut cur = vec![0; n + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=n {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(prev2[j - 2] + 1);
            }
            cur[j] = d;
        }
        std::mem::swap(&mut prev2, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[n]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chars(s: &str) -> Vec<char> {
        s.chars().collect()
    }

    #[test]
    fn osa() {
        assert_eq!(osa_distance(&chars(""), &chars("abc")), 3);
        assert_eq!(osa_distance(&chars("lnag"), &chars("lang")), 1);
        assert_eq!(osa_distance(&chars("kitten"), &chars("sitting")), 3);
        assert_eq!(osa_distance(&chars("ca"), &chars("abc")), 3);
        assert_eq!(osa_distance(&chars("same"), &chars("same")), 0);
    }

    #[test]
    fn display_clamps_bad_spans() {
        let e = QueryError::new("añb", Span::new(2, 99), "x");
        assert_eq!(e.to_string(), "x\n  añb\n   ^^");
    }

    #[test]
    fn display_multiline_query_shows_one_line() {
        let e = QueryError::new(
            "lang=fr\nand lnag=de",
            Span::new(12, 16),
            "unknown field `lnag`",
        )
        .with_suggestion(Some("lang".into()));
        assert_eq!(
            e.to_string(),
            "unknown field `lnag`\n  and lnag=de\n      ^^^^\n  did you mean `lang`?"
        );
    }
}
