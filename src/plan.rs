//! Plans a parsed query against a corpus schema, then evaluates it per
//! segment as set algebra on roaring bitmaps.
//!
//! Planning resolves every field (unknown fields are errors with a "did you
//! mean"), checks that comparisons target numeric fields, and turns `!=`
//! into "exists and not =". Evaluation narrows a universe through `and`
//! (short-circuiting on empty), computes `not` as live minus the child, and
//! answers numeric predicates from columns; no text is decompressed.

use std::ops::Bound;

use fst::Automaton;
use roaring::RoaringBitmap;

use crate::error::Result;
use crate::query::{self, CmpOp, Expr, QueryError, Span, Value};
use crate::schema::{FieldKind, Resolved, Schema};
use crate::segment::Segment;

/// A validated, storage-level query plan.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Every live document.
    All,
    /// Documents whose facet `field` has any of `values`.
    Terms {
        /// Field name.
        field: String,
        /// Values (union).
        values: Vec<String>,
    },
    /// Facet values matching a glob.
    TermGlob {
        /// Field name.
        field: String,
        /// Pattern with `*` and `?`.
        pattern: String,
    },
    /// Documents with any of these keys.
    Keys(Vec<String>),
    /// Keys matching a glob.
    KeyGlob(String),
    /// Numeric range on a column (`bytes` or a number field).
    Range {
        /// Column name.
        field: String,
        /// Lower bound.
        lo: Bound<f64>,
        /// Upper bound.
        hi: Bound<f64>,
    },
    /// Numeric equality with any of `values`.
    NumIn {
        /// Column name.
        field: String,
        /// Values.
        values: Vec<f64>,
    },
    /// Documents holding `field`.
    Exists(String),
    /// Every live document not matched by the child.
    Not(Box<Plan>),
    /// Intersection.
    And(Vec<Plan>),
    /// Union.
    Or(Vec<Plan>),
}

impl Plan {
    /// Every node that is not `Not`, `And` or `Or`, depth first.
    pub fn leaves(&self) -> impl Iterator<Item = &Plan> {
        let mut stack = vec![self];
        std::iter::from_fn(move || {
            while let Some(p) = stack.pop() {
                match p {
                    Plan::Not(c) => stack.push(c),
                    Plan::And(cs) | Plan::Or(cs) => stack.extend(cs.iter()),
                    leaf => return Some(leaf),
                }
            }
            None
        })
    }

    /// The field a leaf tests, if it tests one.
    pub fn field(&self) -> Option<&str> {
        match self {
            Plan::Terms { field, .. }
            | Plan::TermGlob { field, .. }
            | Plan::Range { field, .. }
            | Plan::NumIn { field, .. }
            | Plan::Exists(field) => Some(field),
            _ => None,
        }
    }
}

/// Plans `q` for `schema`.
pub fn plan(q: &str, schema: &Schema) -> Result<Plan, QueryError> {
    let expr = query::parse(q)?;
    plan_expr(q, &expr, schema)
}

fn unknown_field(q: &str, name: &str, span: Span, schema: &Schema) -> QueryError {
    if let Some(hint) = crate::tag::Tagger::not_computed_hint(name) {
        return QueryError::new(q, span, hint);
    }
    let known = schema.known_names();
    QueryError::new(q, span, format!("unknown field `{name}`"))
        .with_suggestion(query::suggest(name, known.iter().copied()).map(|s| s.to_string()))
}

fn num_of(q: &str, field: &str, v: &Value) -> Result<f64, QueryError> {
    match v {
        Value::Num { value, .. } => Ok(*value),
        other => Err(QueryError::new(
            q,
            other.span(),
            format!(
                "field `{field}` is numeric; `{}` is not a number",
                other.as_text()
            ),
        )),
    }
}

fn facet_value(q: &str, field: &str, kind: FieldKind, v: &Value) -> Result<String, QueryError> {
    let s = v.as_text().to_string();
    if kind == FieldKind::Bool && s != "true" && s != "false" {
        return Err(QueryError::new(
            q,
            v.span(),
            format!("field `{field}` is boolean; use true or false"),
        ));
    }
    Ok(if field == "lang" {
        crate::lang::normalize(&s).into_owned()
    } else {
        s
    })
}

fn plan_expr(q: &str, e: &Expr, schema: &Schema) -> Result<Plan, QueryError> {
    Ok(match e {
        Expr::All { .. } => Plan::All,
        Expr::Not { expr, .. } => Plan::Not(Box::new(plan_expr(q, expr, schema)?)),
        Expr::And { exprs, .. } => Plan::And(
            exprs
                .iter()
                .map(|x| plan_expr(q, x, schema))
                .collect::<Result<_, _>>()?,
        ),
        Expr::Or { exprs, .. } => Plan::Or(
            exprs
                .iter()
                .map(|x| plan_expr(q, x, schema))
                .collect::<Result<_, _>>()?,
        ),
        Expr::Exists { field, .. } => match schema.resolve(&field.name) {
            None => return Err(unknown_field(q, &field.name, field.span, schema)),
            Some(Resolved::Key) | Some(Resolved::Bytes) => Plan::All,
            Some(Resolved::Field(_)) => Plan::Exists(field.name.clone()),
        },
        Expr::In { field, values, .. } => {
            let r = schema
                .resolve(&field.name)
                .ok_or_else(|| unknown_field(q, &field.name, field.span, schema))?;
            let parts: Vec<Plan> = values
                .iter()
                .map(|v| plan_cmp(q, &field.name, field.span, r, CmpOp::Eq, v))
                .collect::<Result<_, _>>()?;
            merge_or(parts)
        }
        Expr::Cmp {
            field, op, value, ..
        } => {
            let r = schema
                .resolve(&field.name)
                .ok_or_else(|| unknown_field(q, &field.name, field.span, schema))?;
            plan_cmp(q, &field.name, field.span, r, *op, value)?
        }
    })
}

/// Folds `a = x or a = y` into one `Terms`/`Keys`/`NumIn`.
fn merge_or(parts: Vec<Plan>) -> Plan {
    let mut out: Vec<Plan> = Vec::new();
    for p in parts {
        match (out.last_mut(), p) {
            (
                Some(Plan::Terms {
                    field: f1,
                    values: v1,
                }),
                Plan::Terms { field, values },
            ) if *f1 == field => v1.extend(values),
            (Some(Plan::Keys(k1)), Plan::Keys(k)) => k1.extend(k),
            (
                Some(Plan::NumIn {
                    field: f1,
                    values: v1,
                }),
                Plan::NumIn { field, values },
            ) if *f1 == field => v1.extend(values),
            (_, p) => out.push(p),
        }
    }
    if out.len() == 1 {
        out.pop().unwrap()
    } else {
        Plan::Or(out)
    }
}

fn plan_cmp(
    q: &str,
    name: &str,
    fspan: Span,
    r: Resolved,
    op: CmpOp,
    v: &Value,
) -> Result<Plan, QueryError> {
    let numeric = matches!(r, Resolved::Bytes | Resolved::Field(FieldKind::Number));
    if numeric {
        if let Value::Glob { span, .. } = v {
            return Err(QueryError::new(
                q,
                *span,
                format!("field `{name}` is numeric; globs apply to facets"),
            ));
        }
        let x = num_of(q, name, v)?;
        let col = if r == Resolved::Bytes {
            crate::format::BYTES_FIELD
        } else {
            name
        }
        .to_string();
        let range = |lo, hi| Plan::Range {
            field: col.clone(),
            lo,
            hi,
        };
        return Ok(match op {
            CmpOp::Eq => Plan::NumIn {
                field: col.clone(),
                values: vec![x],
            },
            CmpOp::Ne => Plan::And(vec![
                Plan::Exists(col.clone()),
                Plan::Not(Box::new(Plan::NumIn {
                    field: col.clone(),
                    values: vec![x],
                })),
            ]),
            CmpOp::Lt => range(Bound::Unbounded, Bound::Excluded(x)),
            CmpOp::Le => range(Bound::Unbounded, Bound::Included(x)),
            CmpOp::Gt => range(Bound::Excluded(x), Bound::Unbounded),
            CmpOp::Ge => range(Bound::Included(x), Bound::Unbounded),
        });
    }
    if !matches!(op, CmpOp::Eq | CmpOp::Ne) {
        let what = match r {
            Resolved::Key => "the key".to_string(),
            Resolved::Field(k) => format!("a {} field", k.name()),
            _ => "not numeric".into(),
        };
        return Err(QueryError::new(
            q,
            fspan,
            format!("`{name}` is {what}; comparisons need a numeric field"),
        ));
    }
    let eq = match (r, v) {
        (Resolved::Key, Value::Glob { pattern, .. }) => Plan::KeyGlob(pattern.clone()),
        (Resolved::Key, v) => Plan::Keys(vec![v.as_text().to_string()]),
        (Resolved::Field(FieldKind::Json), _) => {
            return Err(QueryError::new(
                q,
                fspan,
                format!(
                    "field `{name}` holds objects or mixed arrays; only `{name} exists` applies"
                ),
            ))
        }
        (Resolved::Field(_), Value::Glob { pattern, .. }) => Plan::TermGlob {
            field: name.to_string(),
            pattern: pattern.clone(),
        },
        (Resolved::Field(k), v) => Plan::Terms {
            field: name.to_string(),
            values: vec![facet_value(q, name, k, v)?],
        },
        (Resolved::Bytes, _) => unreachable!("numeric handled above"),
    };
    Ok(if op == CmpOp::Ne {
        let exists = match r {
            Resolved::Key => Plan::All,
            _ => Plan::Exists(name.to_string()),
        };
        Plan::And(vec![exists, Plan::Not(Box::new(eq))])
    } else {
        eq
    })
}

/// Matches `text` against a glob with `*` (any run) and `?` (one char).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            pi += 1;
            mark = ti;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// The literal prefix of a glob (before its first wildcard).
fn glob_prefix(pattern: &str) -> &str {
    let i = pattern.find(['*', '?']).unwrap_or(pattern.len());
    &pattern[..i]
}

/// Evaluates `plan` on one segment, restricted to `within` (a subset of
/// the live documents).
pub fn eval(
    plan: &Plan,
    seg: &Segment,
    live: &RoaringBitmap,
    within: &RoaringBitmap,
) -> Result<RoaringBitmap> {
    if within.is_empty() {
        return Ok(RoaringBitmap::new());
    }
    Ok(match plan {
        Plan::All => within.clone(),
        Plan::Terms { field, values } => {
            let mut acc = RoaringBitmap::new();
            for v in values {
                acc |= seg.postings(field, v)?;
            }
            acc & within
        }
        Plan::TermGlob { field, pattern } => {
            let pure_prefix =
                pattern.ends_with('*') && !pattern[..pattern.len() - 1].contains(['*', '?']);
            let mut acc = RoaringBitmap::new();
            for (value, id) in seg.terms_with_prefix(field, glob_prefix(pattern)) {
                if pure_prefix || glob_match(pattern, &value) {
                    acc |= seg.postings_of(id)?;
                }
            }
            acc & within
        }
        Plan::Keys(keys) => {
            let mut acc = RoaringBitmap::new();
            for k in keys {
                if let Some(o) = seg.key_ordinal(k) {
                    acc.insert(o);
                }
            }
            acc & within
        }
        Plan::KeyGlob(pattern) => {
            let prefix = glob_prefix(pattern);
            let pure_prefix = pattern.ends_with('*') && prefix.len() == pattern.len() - 1;
            let acc = if pure_prefix {
                seg.keys_matching(fst::automaton::Str::new(prefix).starts_with())
            } else {
                let mut acc = RoaringBitmap::new();
                for (k, o) in seg.keys_with_prefix(prefix) {
                    if glob_match(pattern, &k) {
                        acc.insert(o);
                    }
                }
                acc
            };
            acc & within
        }
        Plan::Range { field, lo, hi } => {
            let (lo, hi) = (*lo, *hi);
            numeric_filter(seg, field, within, |x| {
                (match lo {
                    Bound::Included(a) => x >= a,
                    Bound::Excluded(a) => x > a,
                    Bound::Unbounded => true,
                }) && (match hi {
                    Bound::Included(b) => x <= b,
                    Bound::Excluded(b) => x < b,
                    Bound::Unbounded => true,
                })
            })?
        }
        Plan::NumIn { field, values } => {
            numeric_filter(seg, field, within, |x| values.contains(&x))?
        }
        Plan::Exists(field) => {
            if field == crate::format::BYTES_FIELD && seg.field(field).is_none() {
                within.clone()
            } else {
                seg.presence(field)? & within
            }
        }
        Plan::Not(child) => {
            let c = eval(child, seg, live, live)?;
            within - c
        }
        Plan::And(children) => {
            let mut acc = within.clone();
            let mut order: Vec<&Plan> = children.iter().collect();
            order.sort_by_key(|p| cost(p));
            for c in order {
                acc = eval(c, seg, live, &acc)?;
                if acc.is_empty() {
                    break;
                }
            }
            acc
        }
        Plan::Or(children) => {
            let mut acc = RoaringBitmap::new();
            for c in children {
                acc |= eval(c, seg, live, within)?;
            }
            acc
        }
    })
}

/// Rough evaluation cost, to run cheap, selective predicates first.
fn cost(p: &Plan) -> u8 {
    match p {
        Plan::Keys(_) => 0,
        Plan::Terms { .. } => 1,
        Plan::Exists(_) | Plan::All => 2,
        Plan::TermGlob { .. } | Plan::KeyGlob(_) => 3,
        Plan::Range { .. } | Plan::NumIn { .. } => 4,
        Plan::And(_) | Plan::Or(_) | Plan::Not(_) => 5,
    }
}

fn numeric_filter(
    seg: &Segment,
    field: &str,
    within: &RoaringBitmap,
    pred: impl Fn(f64) -> bool,
) -> Result<RoaringBitmap> {
    let Some(col) = seg.numeric(field)? else {
        return Ok(RoaringBitmap::new());
    };
    let candidates = if field == crate::format::BYTES_FIELD {
        within.clone()
    } else {
        seg.presence(field)? & within
    };
    Ok(
        RoaringBitmap::from_sorted_iter(candidates.iter().filter(|&o| pred(col[o as usize])))
            .unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("crates-io/*", "crates-io/foo/src/lib.rs"));
        assert!(glob_match("*.rs", "a/b.rs"));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "ac"));
        assert!(glob_match("*", ""));
        assert!(glob_match("é*", "été"));
        assert!(!glob_match("cc-by-*", "cc0-1.0"));
        assert_eq!(glob_prefix("cc-by-*-4.0"), "cc-by-");
    }
}
