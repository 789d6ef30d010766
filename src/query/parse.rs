//! The parser: query text to [`Expr`], following `grammar/corpusql.ebnf`.
//!
//! ```text
//! query      = expr , EOF ;
//! expr       = and_expr , { "or" , and_expr } ;
//! and_expr   = unary , { "and" , unary } ;
//! unary      = "not" , unary | primary ;
//! primary    = "(" , expr , ")" | "*" | predicate ;
//! predicate  = field , ( cmp_op , value | "in" , list | "exists" ) | "exists" , field ;
//! cmp_op     = "=" | "!=" | "<=" | ">=" | "<" | ">" ;
//! list       = "(" , value , { "," , value } , [ "," ] , ")" ;
//! field      = ident | backquoted ;
//! value      = string | bareword ;
//! ```
//!
//! Every parse function quotes the rule it implements. Parsers are nom
//! parsers over the remaining input; the position of a slice in the query is
//! `query.len() - rest.len()`, which is how spans are computed. Errors carry a
//! message only once the parser is committed (a nom `Failure`, made with
//! [`Parser::expect`] after keywords and operators); a plain `Error` means
//! "this alternative does not apply" and gets its message from the caller
//! that knows what it expected.

use nom::branch::alt;
use nom::bytes::complete::{tag, tag_no_case, take_while, take_while1};
use nom::character::complete::{char, satisfy};
use nom::combinator::{not, value};
use nom::error::{ErrorKind, ParseError};
use nom::multi::many0;
use nom::sequence::{pair, preceded, terminated};
use nom::IResult;

use super::{
    bare_number, is_bare_char, is_keyword, is_plain_field, CmpOp, Expr, Ident, QueryError, Span,
    Value, MAX_DEPTH,
};

/// Parses a query.
///
/// Returns the tree, or an error whose span points at the offending part of
/// the query. Parsing takes time linear in the query's length and never
/// recurses deeper than [`MAX_DEPTH`] levels of parentheses and `not`.
///
/// ```
/// use corpusql::raw::query::parse;
///
/// assert!(parse("lang in (de, es) and not source=debian-manpages").is_ok());
/// let err = parse("year >= abc").unwrap_err();
/// assert_eq!(err.message, "expected a number after `>=`, found `abc`");
/// assert_eq!((err.span.start, err.span.end), (8, 11));
/// ```
pub fn parse(query: &str) -> Result<Expr, QueryError> {
    let p = Parser { query };
    match p.query(query) {
        Ok((_, expr)) => Ok(expr),
        Err(nom::Err::Error(e) | nom::Err::Failure(e)) => Err(p.to_query_error(e)),
        // Only streaming parsers report Incomplete; all ours are complete.
        Err(nom::Err::Incomplete(_)) => Err(QueryError::new(
            query,
            Span::new(query.len(), query.len()),
            "incomplete query",
        )),
    }
}

/// A parse error: where (as the remaining input), how long, and, once the
/// parser is committed, what went wrong.
#[derive(Debug)]
struct PErr<'q> {
    at: &'q str,
    len: usize,
    message: Option<String>,
}

impl<'q> ParseError<&'q str> for PErr<'q> {
    fn from_error_kind(input: &'q str, _kind: ErrorKind) -> Self {
        PErr {
            at: input,
            len: 0,
            message: None,
        }
    }

    fn append(_input: &'q str, _kind: ErrorKind, other: Self) -> Self {
        other
    }

    fn or(self, other: Self) -> Self {
        if other.message.is_some() {
            other
        } else {
            self
        }
    }
}

type Res<'q, T> = IResult<&'q str, T, PErr<'q>>;

/// A committed error with `message` about the `len` bytes at `at`.
fn failure<T>(at: &str, len: usize, message: String) -> Res<'_, T> {
    Err(nom::Err::Failure(PErr {
        at,
        len,
        message: Some(message),
    }))
}

/// An uncommitted error: this alternative does not apply at `at`.
fn backtrack<T>(at: &str) -> Res<'_, T> {
    Err(nom::Err::Error(PErr::from_error_kind(
        at,
        ErrorKind::Verify,
    )))
}

/// Skips white space (any Unicode white space).
fn ws(i: &str) -> Res<'_, &str> {
    take_while(char::is_whitespace)(i)
}

/// `keyword = "and" | "or" | "not" | "in" | "exists" ;` — case-insensitive,
/// and not followed by a bareword character (`notable` is no keyword).
fn keyword<'q>(kw: &'static str) -> impl FnMut(&'q str) -> Res<'q, &'q str> {
    terminated(tag_no_case(kw), not(satisfy(is_bare_char)))
}

/// The length in bytes of the token at the start of `i`, for error spans: a
/// quoted string, a run of bareword characters, a run of operator characters,
/// or one character.
fn token_len(i: &str) -> usize {
    let Some(first) = i.chars().next() else {
        return 0;
    };
    let run = |pred: fn(char) -> bool| i.find(|c: char| !pred(c)).unwrap_or(i.len());
    match first {
        '"' | '\'' | '`' => i[1..].find(first).map_or(i.len(), |p| p + 2).min(i.len()),
        c if is_bare_char(c) => run(is_bare_char),
        '=' | '!' | '<' | '>' => run(|c| matches!(c, '=' | '!' | '<' | '>')),
        c => c.len_utf8(),
    }
}

/// How an error message names the token at the start of `i`.
fn describe(i: &str) -> String {
    let len = token_len(i);
    if len == 0 {
        return "the end of the query".to_owned();
    }
    let tok = &i[..len];
    if tok.chars().count() > 40 {
        let short: String = tok.chars().take(37).collect();
        format!("`{short}...`")
    } else {
        format!("`{tok}`")
    }
}

/// The parser's context: the whole query, to turn slices into offsets.
struct Parser<'q> {
    query: &'q str,
}

impl<'q> Parser<'q> {
    /// The byte offset of `rest` (a suffix of the query) in the query.
    fn offset(&self, rest: &str) -> usize {
        self.query.len() - rest.len()
    }

    /// The span from the start of `from` to the start of `to`.
    fn span(&self, from: &str, to: &str) -> Span {
        Span::new(self.offset(from), self.offset(to))
    }

    fn to_query_error(&self, e: PErr<'q>) -> QueryError {
        let start = self.offset(e.at);
        let message = e.message.unwrap_or_else(|| {
            format!("unexpected {}", describe(e.at)) // not reached: all errors that escape have messages
        });
        QueryError::new(self.query, Span::new(start, start + e.len), message)
    }

    /// Runs `p` and commits: if it does not apply, fails with
    /// `what(found)` at the (whitespace-skipped) input, where `found`
    /// names the token there. Failures of `p` itself pass through.
    fn expect<T>(
        &self,
        mut p: impl FnMut(&'q str) -> Res<'q, T>,
        what: impl Fn(&str) -> String,
    ) -> impl FnMut(&'q str) -> Res<'q, T> {
        move |i| match p(i) {
            Err(nom::Err::Error(_)) => {
                let at = i.trim_start();
                failure(at, token_len(at), what(&describe(at)))
            }
            other => other,
        }
    }

    /// Fails if entering one more level from `depth` would pass [`MAX_DEPTH`].
    fn check_depth(&self, at: &'q str, len: usize, depth: usize) -> Res<'q, ()> {
        if depth >= MAX_DEPTH {
            return failure(
                at,
                len,
                format!(
                    "query nested too deeply: more than {MAX_DEPTH} levels of parentheses and `not`"
                ),
            );
        }
        Ok((at, ()))
    }

    /// `query = expr , EOF ;` (white space allowed around `expr`; an empty
    /// query is an error)
    fn query(&self, i: &'q str) -> Res<'q, Expr> {
        let (i, _) = ws(i)?;
        if i.is_empty() {
            return failure(
                self.query,
                self.query.len(),
                "empty query; use * for every document".to_owned(),
            );
        }
        let (i, expr) = self.expect(
            |i| self.expr(i, 0),
            |found| format!("expected an expression, found {found}"),
        )(i)?;
        let (i, _) = ws(i)?;
        if i.starts_with(')') {
            return failure(i, 1, "unmatched `)`: there is no `(` before it".to_owned());
        }
        if !i.is_empty() {
            return failure(
                i,
                token_len(i),
                format!(
                    "unexpected {} after a complete expression; expected `and`, `or` or the end of the query",
                    describe(i)
                ),
            );
        }
        Ok((i, expr))
    }

    /// `expr = and_expr , { "or" , and_expr } ;`
    fn expr(&self, i: &'q str, depth: usize) -> Res<'q, Expr> {
        let (i, first) = self.and_expr(i, depth)?;
        let (i, rest) = many0(preceded(
            pair(ws, keyword("or")),
            self.expect(
                |i| self.and_expr(i, depth),
                |found| format!("expected an expression after `or`, found {found}"),
            ),
        ))(i)?;
        Ok((i, join(first, rest, false)))
    }

    /// `and_expr = unary , { "and" , unary } ;`
    fn and_expr(&self, i: &'q str, depth: usize) -> Res<'q, Expr> {
        let (i, first) = self.unary(i, depth)?;
        let (i, rest) = many0(preceded(
            pair(ws, keyword("and")),
            self.expect(
                |i| self.unary(i, depth),
                |found| format!("expected an expression after `and`, found {found}"),
            ),
        ))(i)?;
        Ok((i, join(first, rest, true)))
    }

    /// `unary = "not" , unary | primary ;`
    fn unary(&self, i: &'q str, depth: usize) -> Res<'q, Expr> {
        let (start, _) = ws(i)?;
        if let Ok((i, _)) = keyword("not")(start) {
            self.check_depth(start, 3, depth)?;
            let (i, expr) = self.expect(
                |i| self.unary(i, depth + 1),
                |found| format!("expected an expression after `not`, found {found}"),
            )(i)?;
            let span = Span::new(self.offset(start), expr.span().end);
            return Ok((
                i,
                Expr::Not {
                    expr: Box::new(expr),
                    span,
                },
            ));
        }
        self.primary(start, depth)
    }

    /// `primary = "(" , expr , ")" | "*" | predicate ;`
    fn primary(&self, start: &'q str, depth: usize) -> Res<'q, Expr> {
        if let Ok((i, _)) = char::<_, PErr>('(')(start) {
            self.check_depth(start, 1, depth)?;
            let (i, mut expr) = self.expect(
                |i| self.expr(i, depth + 1),
                |found| format!("expected an expression after `(`, found {found}"),
            )(i)?;
            let (i, _) = ws(i)?;
            return match char::<_, PErr>(')')(i) {
                Ok((i, _)) => {
                    *expr.span_mut() = self.span(start, i);
                    Ok((i, expr))
                }
                Err(_) if i.is_empty() => failure(
                    start,
                    1,
                    "unclosed `(`: no `)` before the end of the query".to_owned(),
                ),
                Err(_) => failure(
                    i,
                    token_len(i),
                    format!("expected `)`, `and` or `or`, found {}", describe(i)),
                ),
            };
        }
        if let Ok((i, _)) = terminated(char::<_, PErr>('*'), not(satisfy(is_bare_char)))(start) {
            return Ok((
                i,
                Expr::All {
                    span: self.span(start, i),
                },
            ));
        }
        self.predicate(start)
    }

    /// `predicate = field , ( cmp_op , value | "in" , list | "exists" ) | "exists" , field ;`
    fn predicate(&self, start: &'q str) -> Res<'q, Expr> {
        // `exists meta.license`, the prefix form (SQL's and Elasticsearch's
        // order); the same predicate as `meta.license exists`.
        if let Ok((i, _)) = keyword("exists")(start) {
            let (i, _) = ws(i)?;
            let (i, field) = self.expect(
                |i| self.field(i),
                |found| format!("expected a field after `exists`, found {found}"),
            )(i)?;
            let span = self.span(start, i);
            return Ok((i, Expr::Exists { field, span }));
        }
        let (i, field) = self.field(start)?;
        let (i, _) = ws(i)?;
        if let Ok((i, _)) = keyword("exists")(i) {
            let span = self.span(start, i);
            return Ok((i, Expr::Exists { field, span }));
        }
        if let Ok((i, _)) = keyword("in")(i) {
            let (i, values) = self.list(i)?;
            let span = self.span(start, i);
            return Ok((
                i,
                Expr::In {
                    field,
                    values,
                    span,
                },
            ));
        }
        let (i, op) = self.expect(cmp_op, |found| {
            format!(
                "expected an operator after field `{}` (one of = != < <= > >= in exists), found {found}",
                field.name
            )
        })(i)?;
        let (i, _) = ws(i)?;
        let what = if op.is_ordering() {
            "a number"
        } else {
            "a value"
        };
        let (end, value) = self.expect(
            |i| self.value(i),
            |found| format!("expected {what} after `{op}`, found {found}"),
        )(i)?;
        if op.is_ordering() && !matches!(value, Value::Num { .. }) {
            let kind = match value {
                Value::Str { quoted: true, .. } => "the string ",
                Value::Glob { .. } => "the glob ",
                _ => "",
            };
            let span = value.span();
            return failure(
                i,
                span.end - span.start,
                format!(
                    "expected a number after `{op}`, found {kind}{}",
                    describe(i)
                ),
            );
        }
        let span = self.span(start, end);
        Ok((
            end,
            Expr::Cmp {
                field,
                op,
                value,
                span,
            },
        ))
    }

    /// `list = "(" , value , { "," , value } , [ "," ] , ")" ;`
    fn list(&self, i: &'q str) -> Res<'q, Vec<Value>> {
        let (open, _) = ws(i)?;
        let (mut i, _) = self.expect(char('('), |found| {
            format!("expected `(` after `in`, found {found}")
        })(open)?;
        let unclosed = || {
            failure(
                open,
                1,
                "unclosed `(`: the `in` list has no `)` before the end of the query".to_owned(),
            )
        };
        let mut values = Vec::new();
        loop {
            (i, _) = ws(i)?;
            if let Some(rest) = i.strip_prefix(')') {
                if values.is_empty() {
                    return failure(
                        open,
                        self.offset(rest) - self.offset(open),
                        "empty `in` list: give at least one value".to_owned(),
                    );
                }
                return Ok((rest, values));
            }
            if i.is_empty() {
                return unclosed();
            }
            let v;
            (i, v) = self.expect(
                |i| self.value(i),
                |found| format!("expected a value or `)` in the `in` list, found {found}"),
            )(i)?;
            values.push(v);
            (i, _) = ws(i)?;
            if let Some(rest) = i.strip_prefix(',') {
                i = rest;
            } else if i.is_empty() {
                return unclosed();
            } else if !i.starts_with(')') {
                return failure(
                    i,
                    token_len(i),
                    format!(
                        "expected `,` or `)` after a value in the `in` list, found {}",
                        describe(i)
                    ),
                );
            }
        }
    }

    /// `field = ident | backquoted ;`
    /// `ident = ( ascii_letter | "_" ) , { ascii_letter | digit | "_" | "." } - keyword ;`
    fn field(&self, start: &'q str) -> Res<'q, Ident> {
        if start.starts_with('`') {
            let (i, name) = self.quoted(start)?;
            let span = self.span(start, i);
            return Ok((i, Ident { name, span }));
        }
        // Read a whole bareword so that `größe` or `lang:fr` is reported as
        // one token rather than split at the first odd character.
        let (i, word) = take_while1(is_bare_char)(start)?;
        if is_keyword(word) {
            return backtrack(start);
        }
        if !is_plain_field(word) {
            let mut message = format!(
                "`{word}` is not a valid field name: a field name is ASCII letters, digits, `_` and `.`, not starting with a digit, or any text in backquotes"
            );
            if let Some((name, value)) = word.split_once(':').filter(|(n, _)| is_plain_field(n)) {
                message += &format!("; to compare a field with a value, write `{name} = {value}`");
            }
            return failure(start, word.len(), message);
        }
        let span = self.span(start, i);
        Ok((
            i,
            Ident {
                name: word.to_owned(),
                span,
            },
        ))
    }

    /// `value = string | bareword ;` — a bareword with `*` or `?` is a glob,
    /// else one that is a finite number is a number, else a string.
    fn value(&self, start: &'q str) -> Res<'q, Value> {
        if start.starts_with(['"', '\'']) {
            let (i, text) = self.quoted(start)?;
            let span = self.span(start, i);
            return Ok((
                i,
                Value::Str {
                    text,
                    quoted: true,
                    span,
                },
            ));
        }
        let (i, word) = take_while1(is_bare_char)(start)?;
        let span = self.span(start, i);
        let value = if word.contains(['*', '?']) {
            Value::Glob {
                pattern: word.to_owned(),
                span,
            }
        } else if let Some(value) = bare_number(word) {
            Value::Num {
                value,
                raw: word.to_owned(),
                span,
            }
        } else {
            Value::Str {
                text: word.to_owned(),
                quoted: false,
                span,
            }
        };
        Ok((i, value))
    }

    /// `string     = '"' , { char - ( '"' | "\" ) | escape } , '"'
    ///              | "'" , { char - ( "'" | "\" ) | escape } , "'" ;`
    /// `backquoted = "`" , { char - ( "`" | "\" ) | escape } , "`" ;`
    /// `escape     = "\" , ( '"' | "'" | "`" | "\" | "n" | "t" | "r" | "u" , 4 * hex ) ;`
    fn quoted(&self, start: &'q str) -> Res<'q, String> {
        let Some(quote) = start.chars().next() else {
            return backtrack(start);
        };
        let body = &start[1..];
        let mut text = String::new();
        let mut chars = body.char_indices();
        while let Some((pos, c)) = chars.next() {
            match c {
                c if c == quote => return Ok((&body[pos + 1..], text)),
                '\\' => {
                    let esc = &body[pos..];
                    let decoded = match chars.next().map(|(_, e)| e) {
                        Some('"') => '"',
                        Some('\'') => '\'',
                        Some('`') => '`',
                        Some('\\') => '\\',
                        Some('n') => '\n',
                        Some('t') => '\t',
                        Some('r') => '\r',
                        Some('u') => {
                            let hex = esc.get(2..6).unwrap_or("");
                            let code = (hex.len() == 4
                                && hex.bytes().all(|b| b.is_ascii_hexdigit()))
                            .then(|| u32::from_str_radix(hex, 16).ok())
                            .flatten()
                            .and_then(char::from_u32);
                            match code {
                                Some(c) => {
                                    chars.nth(3);
                                    c
                                }
                                None => {
                                    let digits = esc[2..]
                                        .bytes()
                                        .take(4)
                                        .take_while(u8::is_ascii_hexdigit)
                                        .count();
                                    return failure(
                                        esc,
                                        2 + digits,
                                        "invalid `\\u` escape: write exactly four hex digits naming a character, as in `\\u00e9`".to_owned(),
                                    );
                                }
                            }
                        }
                        Some(e) => {
                            return failure(
                                esc,
                                1 + e.len_utf8(),
                                format!(
                                    "unknown escape `\\{e}` in a quoted string; the escapes are \\\" \\' \\` \\\\ \\n \\t \\r \\uXXXX"
                                ),
                            );
                        }
                        None => break,
                    };
                    text.push(decoded);
                }
                c => text.push(c),
            }
        }
        failure(
            start,
            start.len(),
            format!("unclosed quoted string: no closing {quote} before the end of the query"),
        )
    }
}

/// `cmp_op = "=" | "!=" | "<=" | ">=" | "<" | ">" ;` — also catches `==` and
/// `<>` to say what to write instead.
fn cmp_op(i: &str) -> Res<'_, CmpOp> {
    if let Ok((_, wrong)) = alt((tag::<_, _, PErr>("=="), tag("<>"), tag("=<"), tag("=>")))(i) {
        let right = match wrong {
            "==" => "=",
            "<>" => "!=",
            "=<" => "<=",
            _ => ">=",
        };
        return failure(
            i,
            wrong.len(),
            format!("`{wrong}` is not an operator; write `{right}`"),
        );
    }
    alt((
        value(CmpOp::Ne, tag("!=")),
        value(CmpOp::Le, tag("<=")),
        value(CmpOp::Ge, tag(">=")),
        value(CmpOp::Lt, tag("<")),
        value(CmpOp::Gt, tag(">")),
        value(CmpOp::Eq, tag("=")),
    ))(i)
}

/// Joins `first` and `rest` into an `And` (or `Or`), flattening children of
/// the same kind (from parentheses); a single expression is returned as is.
fn join(first: Expr, rest: Vec<Expr>, and: bool) -> Expr {
    if rest.is_empty() {
        return first;
    }
    let span = Span::new(first.span().start, rest.last().map_or(0, |e| e.span().end));
    let mut exprs = Vec::with_capacity(rest.len() + 1);
    for e in std::iter::once(first).chain(rest) {
        match e {
            Expr::And { exprs: inner, .. } if and => exprs.extend(inner),
            Expr::Or { exprs: inner, .. } if !and => exprs.extend(inner),
            e => exprs.push(e),
        }
    }
    if and {
        Expr::And { exprs, span }
    } else {
        Expr::Or { exprs, span }
    }
}
