//! The query language: text in, abstract syntax tree out.
//!
//! This module owns the corpusql filter language — its grammar
//! (`grammar/corpusql.ebnf` is the source of truth), the parser that follows
//! it, the syntax tree ([`Expr`], [`Value`], [`Ident`]) with byte [`Span`]s
//! into the query text, the canonical text form of a tree (its [`Display`]
//! impl), and the diagnostics ([`QueryError`], [`suggest`]) that point at the
//! offending part of a query. It knows nothing of storage: whether a field
//! exists, what its values are and which documents match are the planner's
//! business, which reports such problems with the same [`QueryError`].
//!
//! ```
//! use corpusql::raw::query::{parse, CmpOp, Expr};
//!
//! let expr = parse("lang=fr and year >= 1950").unwrap();
//! let Expr::And { exprs, .. } = &expr else { panic!() };
//! assert!(matches!(&exprs[1], Expr::Cmp { op: CmpOp::Ge, .. }));
//! assert_eq!(expr.to_string(), "lang = fr and year >= 1950");
//!
//! let err = parse("lang=fr and").unwrap_err();
//! assert_eq!(err.message, "expected an expression after `and`, found the end of the query");
//! ```
//!
//! [`Display`]: std::fmt::Display

use std::fmt;

mod error;
mod parse;

pub use error::{suggest, QueryError};
pub use parse::parse;

/// How deeply parentheses and `not` may nest before [`parse`] gives up with
/// an error (instead of overflowing the stack).
pub const MAX_DEPTH: usize = 64;

/// The keywords of the language; matched case-insensitively, never field names.
pub(crate) const KEYWORDS: [&str; 5] = ["and", "or", "not", "in", "exists"];

/// A byte range `start..end` in the query text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Offset of the first byte.
    pub start: usize,
    /// Offset one past the last byte.
    pub end: usize,
}

impl Span {
    /// The span `start..end`.
    pub fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }
}

/// A field name, as written in the query.
#[derive(Debug, Clone, PartialEq)]
pub struct Ident {
    /// The name, with backquotes and escapes removed.
    pub name: String,
    /// Where the name (including any backquotes) appears in the query.
    pub span: Span,
}

/// A literal on the right of an operator or in an `in` list.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A string: a bareword that is neither a number nor a glob, or a quoted
    /// string (escapes already decoded).
    Str {
        /// The text of the string.
        text: String,
        /// Whether it was written in quotes.
        quoted: bool,
        /// Where the literal (including quotes) appears in the query.
        span: Span,
    },
    /// A bareword that parses completely as a finite number.
    Num {
        /// The number.
        value: f64,
        /// The text as written (`1998`, `0.80`), usable as a facet value.
        raw: String,
        /// Where the literal appears in the query.
        span: Span,
    },
    /// A bareword containing `*` (any run of characters) or `?` (any one
    /// character).
    Glob {
        /// The pattern as written.
        pattern: String,
        /// Where the literal appears in the query.
        span: Span,
    },
}

impl Value {
    /// Where the literal appears in the query.
    pub fn span(&self) -> Span {
        match self {
            Value::Str { span, .. } | Value::Num { span, .. } | Value::Glob { span, .. } => *span,
        }
    }

    /// The literal as text: a string's text, a number's raw text or a glob's
    /// pattern.
    pub fn as_text(&self) -> &str {
        match self {
            Value::Str { text, .. } => text,
            Value::Num { raw, .. } => raw,
            Value::Glob { pattern, .. } => pattern,
        }
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `=`: equal, or matching a glob.
    Eq,
    /// `!=`: the field exists and is not equal (or does not match a glob).
    Ne,
    /// `<` (numbers only).
    Lt,
    /// `<=` (numbers only).
    Le,
    /// `>` (numbers only).
    Gt,
    /// `>=` (numbers only).
    Ge,
}

impl CmpOp {
    /// The operator as written in a query.
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }

    /// Whether this is an ordering (`<`, `<=`, `>`, `>=`), which takes only
    /// numbers.
    pub fn is_ordering(self) -> bool {
        matches!(self, CmpOp::Lt | CmpOp::Le | CmpOp::Gt | CmpOp::Ge)
    }
}

impl fmt::Display for CmpOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A parsed query.
///
/// The parser flattens chains: `a and b and c` and `a and (b and c)` are both
/// one [`Expr::And`] with three children, so an `And` never has an `And`
/// child directly (nor an `Or` an `Or` child). A parenthesised expression's
/// span includes its parentheses.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// `*`: every live document.
    All {
        /// Where the `*` is.
        span: Span,
    },
    /// `field op value`.
    Cmp {
        /// The field on the left.
        field: Ident,
        /// The operator.
        op: CmpOp,
        /// The literal on the right; a [`Value::Num`] when `op` is an ordering.
        value: Value,
        /// The whole predicate.
        span: Span,
    },
    /// `field in (v1, v2, ...)`: the field equals (or matches) one of the values.
    In {
        /// The field on the left.
        field: Ident,
        /// The values, at least one, in query order.
        values: Vec<Value>,
        /// The whole predicate.
        span: Span,
    },
    /// `field exists`: the document has the field.
    Exists {
        /// The field.
        field: Ident,
        /// The whole predicate.
        span: Span,
    },
    /// `not expr`: live documents that `expr` does not match.
    Not {
        /// The negated expression.
        expr: Box<Expr>,
        /// From `not` to the end of `expr`.
        span: Span,
    },
    /// `a and b and ...`: at least two children.
    And {
        /// The children, in query order.
        exprs: Vec<Expr>,
        /// From the first child to the last.
        span: Span,
    },
    /// `a or b or ...`: at least two children.
    Or {
        /// The children, in query order.
        exprs: Vec<Expr>,
        /// From the first child to the last.
        span: Span,
    },
}

impl Expr {
    /// Where the expression appears in the query.
    pub fn span(&self) -> Span {
        match self {
            Expr::All { span }
            | Expr::Cmp { span, .. }
            | Expr::In { span, .. }
            | Expr::Exists { span, .. }
            | Expr::Not { span, .. }
            | Expr::And { span, .. }
            | Expr::Or { span, .. } => *span,
        }
    }

    pub(crate) fn span_mut(&mut self) -> &mut Span {
        match self {
            Expr::All { span }
            | Expr::Cmp { span, .. }
            | Expr::In { span, .. }
            | Expr::Exists { span, .. }
            | Expr::Not { span, .. }
            | Expr::And { span, .. }
            | Expr::Or { span, .. } => span,
        }
    }
}

/// Whether `c` may appear in a bareword value.
pub(crate) fn is_bare_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | ':' | '+' | '*' | '?')
}

/// Whether `s` is a plain field name: `[A-Za-z_][A-Za-z0-9_.]*`, not a keyword.
pub(crate) fn is_plain_field(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        && !is_keyword(s)
}

/// Whether `s` is a keyword, in any case.
pub(crate) fn is_keyword(s: &str) -> bool {
    KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(s))
}

/// Parses a bareword as a number if all of it is a finite number.
pub(crate) fn bare_number(s: &str) -> Option<f64> {
    s.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Writes `text` between `quote`s, escaping what the grammar requires.
fn write_quoted(f: &mut fmt::Formatter<'_>, text: &str, quote: char) -> fmt::Result {
    use fmt::Write;
    f.write_char(quote)?;
    for c in text.chars() {
        match c {
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\t' => f.write_str("\\t")?,
            '\r' => f.write_str("\\r")?,
            c if c == quote => {
                f.write_char('\\')?;
                f.write_char(c)?;
            }
            c if c.is_control() && (c as u32) <= 0xFFFF => write!(f, "\\u{:04x}", c as u32)?,
            c => f.write_char(c)?,
        }
    }
    f.write_char(quote)
}

/// The canonical form: a plain name as is, anything else in backquotes.
impl fmt::Display for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if is_plain_field(&self.name) {
            f.write_str(&self.name)
        } else {
            write_quoted(f, &self.name, '`')
        }
    }
}

/// The canonical form: numbers and globs as written, quoted strings in double
/// quotes, barewords as is (quoted if the text could not be a bareword).
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Str { text, quoted, .. } => {
                let bare_ok = !*quoted
                    && !text.is_empty()
                    && text
                        .chars()
                        .all(|c| is_bare_char(c) && c != '*' && c != '?')
                    && bare_number(text).is_none();
                if bare_ok {
                    f.write_str(text)
                } else {
                    write_quoted(f, text, '"')
                }
            }
            Value::Num { value, raw, .. } => {
                if raw.chars().all(is_bare_char) && bare_number(raw) == Some(*value) {
                    f.write_str(raw)
                } else {
                    write!(f, "{value}")
                }
            }
            Value::Glob { pattern, .. } => f.write_str(pattern),
        }
    }
}

/// The canonical text form, which [`parse`] turns back into an equal tree
/// (spans aside): single spaces around operators and keywords, lowercase
/// keywords, parentheses only where precedence needs them.
///
/// A tree built by hand may not round-trip exactly: a nested `And` in an
/// `And` is printed in parentheses and re-parses flattened, and a glob
/// pattern containing characters outside barewords cannot be written at all.
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn child(f: &mut fmt::Formatter<'_>, e: &Expr, parens: bool) -> fmt::Result {
            if parens {
                write!(f, "({e})")
            } else {
                write!(f, "{e}")
            }
        }
        match self {
            Expr::All { .. } => f.write_str("*"),
            Expr::Cmp {
                field, op, value, ..
            } => write!(f, "{field} {op} {value}"),
            Expr::In { field, values, .. } => {
                write!(f, "{field} in (")?;
                for (i, v) in values.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str(")")
            }
            Expr::Exists { field, .. } => write!(f, "{field} exists"),
            Expr::Not { expr, .. } => {
                f.write_str("not ")?;
                child(
                    f,
                    expr,
                    matches!(**expr, Expr::And { .. } | Expr::Or { .. }),
                )
            }
            Expr::And { exprs, .. } => {
                for (i, e) in exprs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" and ")?;
                    }
                    child(f, e, matches!(e, Expr::And { .. } | Expr::Or { .. }))?;
                }
                Ok(())
            }
            Expr::Or { exprs, .. } => {
                for (i, e) in exprs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" or ")?;
                    }
                    child(f, e, matches!(e, Expr::Or { .. }))?;
                }
                Ok(())
            }
        }
    }
}
