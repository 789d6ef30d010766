//! The query grammar, tested from outside: replays `grammar/valid.txt` and
//! `grammar/invalid.txt`, pins the trees of a few queries, and checks
//! precedence, the depth limit, error rendering and `suggest`.

use corpusql::raw::query::{
    parse, suggest, CmpOp, Expr, Ident, QueryError, Span, Value, MAX_DEPTH,
};

const NO_SPAN: Span = Span { start: 0, end: 0 };

/// The tree with every span zeroed, to compare trees parsed from different
/// texts.
fn strip(e: &Expr) -> Expr {
    fn ident(i: &Ident) -> Ident {
        Ident {
            name: i.name.clone(),
            span: NO_SPAN,
        }
    }
    fn value(v: &Value) -> Value {
        match v {
            Value::Str { text, quoted, .. } => Value::Str {
                text: text.clone(),
                quoted: *quoted,
                span: NO_SPAN,
            },
            Value::Num { value, raw, .. } => Value::Num {
                value: *value,
                raw: raw.clone(),
                span: NO_SPAN,
            },
            Value::Glob { pattern, .. } => Value::Glob {
                pattern: pattern.clone(),
                span: NO_SPAN,
            },
        }
    }
    match e {
        Expr::All { .. } => Expr::All { span: NO_SPAN },
        Expr::Cmp {
            field,
            op,
            value: v,
            ..
        } => Expr::Cmp {
            field: ident(field),
            op: *op,
            value: value(v),
            span: NO_SPAN,
        },
        Expr::In { field, values, .. } => Expr::In {
            field: ident(field),
            values: values.iter().map(value).collect(),
            span: NO_SPAN,
        },
        Expr::Exists { field, .. } => Expr::Exists {
            field: ident(field),
            span: NO_SPAN,
        },
        Expr::Not { expr, .. } => Expr::Not {
            expr: Box::new(strip(expr)),
            span: NO_SPAN,
        },
        Expr::And { exprs, .. } => Expr::And {
            exprs: exprs.iter().map(strip).collect(),
            span: NO_SPAN,
        },
        Expr::Or { exprs, .. } => Expr::Or {
            exprs: exprs.iter().map(strip).collect(),
            span: NO_SPAN,
        },
    }
}

/// A compact s-expression of the tree, for pinning: `(and (= lang fr) ...)`,
/// with values tagged `"quoted"`, `#num`, `~glob`.
fn sexpr(e: &Expr) -> String {
    fn value(v: &Value) -> String {
        match v {
            Value::Str {
                text, quoted: true, ..
            } => format!("{text:?}"),
            Value::Str { text, .. } => text.clone(),
            Value::Num { raw, .. } => format!("#{raw}"),
            Value::Glob { pattern, .. } => format!("~{pattern}"),
        }
    }
    fn list(kw: &str, exprs: &[Expr]) -> String {
        let inner: Vec<String> = exprs.iter().map(sexpr).collect();
        format!("({kw} {})", inner.join(" "))
    }
    match e {
        Expr::All { .. } => "*".to_owned(),
        Expr::Cmp {
            field,
            op,
            value: v,
            ..
        } => format!("({op} {} {})", field.name, value(v)),
        Expr::In { field, values, .. } => {
            let vs: Vec<String> = values.iter().map(value).collect();
            format!("(in {} [{}])", field.name, vs.join(" "))
        }
        Expr::Exists { field, .. } => format!("(exists {})", field.name),
        Expr::Not { expr, .. } => format!("(not {})", sexpr(expr)),
        Expr::And { exprs, .. } => list("and", exprs),
        Expr::Or { exprs, .. } => list("or", exprs),
    }
}

/// The queries of a grammar example file: non-blank lines not starting
/// with `#`.
fn example_lines(name: &str) -> Vec<String> {
    let path = format!("{}/grammar/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

fn sx(q: &str) -> String {
    sexpr(&parse(q).unwrap_or_else(|e| panic!("{q:?} should parse:\n{e}")))
}

fn err(q: &str) -> QueryError {
    match parse(q) {
        Ok(e) => panic!("{q:?} should not parse, got {}", sexpr(&e)),
        Err(e) => e,
    }
}

#[test]
fn valid_examples_parse_and_round_trip() {
    let lines = example_lines("valid.txt");
    assert!(lines.len() >= 40, "only {} valid examples", lines.len());
    for q in &lines {
        let e = parse(q).unwrap_or_else(|err| panic!("{q:?} should parse:\n{err}"));
        let printed = e.to_string();
        let again = parse(&printed)
            .unwrap_or_else(|err| panic!("{q:?} printed as {printed:?}, which fails:\n{err}"));
        assert_eq!(strip(&e), strip(&again), "{q:?} printed as {printed:?}");
        assert_eq!(
            again.to_string(),
            printed,
            "Display is not canonical for {q:?}"
        );
        let span = e.span();
        assert!(
            span.start <= span.end && span.end <= q.len(),
            "{q:?}: span {span:?}"
        );
    }
}

#[test]
fn truth_file_queries_are_in_valid_examples() {
    // Keep grammar/valid.txt in step with the dev truth file when it is there.
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/data/realcorpus-dev.truth.json"
    );
    let Ok(text) = std::fs::read_to_string(path) else {
        return;
    };
    let lines = example_lines("valid.txt");
    for part in text.split("\"query\":").skip(1) {
        let q = part.trim_start().trim_start_matches('"');
        let q = &q[..q.find('"').unwrap()];
        assert!(lines.iter().any(|l| l == q), "{q:?} missing from valid.txt");
    }
}

#[test]
fn invalid_examples_fail_with_their_message() {
    let lines = example_lines("invalid.txt");
    assert!(lines.len() >= 25, "only {} invalid examples", lines.len());
    for line in &lines {
        let (q, fragment) = line
            .rsplit_once(" ## ")
            .unwrap_or_else(|| panic!("{line:?}: no ` ## ` separator"));
        let e = err(q);
        assert!(
            e.message.contains(fragment),
            "{q:?}: message {:?} lacks {fragment:?}",
            e.message
        );
        assert!(
            e.span.start <= e.span.end && e.span.end <= q.len(),
            "{q:?}: span {:?}",
            e.span
        );
        assert!(q.is_char_boundary(e.span.start) && q.is_char_boundary(e.span.end));
        let _ = e.to_string(); // renders without panicking
    }
}

#[test]
fn pinned_trees() {
    let cases = [
        ("lang=fr", "(= lang fr)"),
        (
            "lang=fr and license in (cc-by-4.0, pd)",
            "(and (= lang fr) (in license [cc-by-4.0 pd]))",
        ),
        (
            "source=src_27 and year >= 1950 and quality > 0.8",
            "(and (= source src_27) (>= year #1950) (> quality #0.8))",
        ),
        (
            "id = \"crates-io/foo/src/lib.rs\"",
            "(= id \"crates-io/foo/src/lib.rs\")",
        ),
        ("id = crates-io/*", "(= id ~crates-io/*)"),
        ("title = \"a*\"", "(= title \"a*\")"),
        ("*", "*"),
        ("not lang exists", "(not (exists lang))"),
        (
            "NOT (lang=en OR lang=fr) AND year != 1998",
            "(and (not (or (= lang en) (= lang fr))) (!= year #1998))",
        ),
        ("x in (1, a?c, 'q',)", "(in x [#1 ~a?c \"q\"])"),
        ("`my field` = Ünïcödé", "(= my field Ünïcödé)"),
        ("s = \"\\u00e9\\t\\\"\"", "(= s \"é\\t\\\"\")"),
        ("lang = or", "(= lang or)"),
        ("n = -1e3", "(= n #-1e3)"),
        ("n = 1-2", "(= n 1-2)"),
    ];
    for (q, want) in cases {
        assert_eq!(sx(q), want, "{q:?}");
    }
}

#[test]
fn pinned_spans() {
    let q = "(lang=fr or lang=de)and not x in (a, \"b\")";
    let e = parse(q).unwrap();
    let span = |s: usize, e: usize| Span { start: s, end: e };
    let ident = |name: &str, s, e| Ident {
        name: name.into(),
        span: span(s, e),
    };
    let str_ = |text: &str, quoted, s, e| Value::Str {
        text: text.into(),
        quoted,
        span: span(s, e),
    };
    let want = Expr::And {
        exprs: vec![
            Expr::Or {
                exprs: vec![
                    Expr::Cmp {
                        field: ident("lang", 1, 5),
                        op: CmpOp::Eq,
                        value: str_("fr", false, 6, 8),
                        span: span(1, 8),
                    },
                    Expr::Cmp {
                        field: ident("lang", 12, 16),
                        op: CmpOp::Eq,
                        value: str_("de", false, 17, 19),
                        span: span(12, 19),
                    },
                ],
                span: span(0, 20),
            },
            Expr::Not {
                expr: Box::new(Expr::In {
                    field: ident("x", 28, 29),
                    values: vec![str_("a", false, 34, 35), str_("b", true, 37, 40)],
                    span: span(28, 41),
                }),
                span: span(24, 41),
            },
        ],
        span: span(0, 41),
    };
    assert_eq!(e, want);

    let e = parse("  year >= 1950 ").unwrap();
    assert_eq!(
        e,
        Expr::Cmp {
            field: ident("year", 2, 6),
            op: CmpOp::Ge,
            value: Value::Num {
                value: 1950.0,
                raw: "1950".into(),
                span: span(10, 14)
            },
            span: span(2, 14),
        }
    );
    assert_eq!(e.span(), span(2, 14));
}

#[test]
fn precedence_not_and_or() {
    assert_eq!(
        sx("a=1 or b=2 and c=3"),
        "(or (= a #1) (and (= b #2) (= c #3)))"
    );
    assert_eq!(
        sx("a=1 and b=2 or c=3"),
        "(or (and (= a #1) (= b #2)) (= c #3))"
    );
    assert_eq!(sx("not a=1 and b=2"), "(and (not (= a #1)) (= b #2))");
    assert_eq!(sx("not a=1 or b=2"), "(or (not (= a #1)) (= b #2))");
    assert_eq!(sx("not (a=1 or b=2)"), "(not (or (= a #1) (= b #2)))");
    assert_eq!(
        sx("(a=1 or b=2) and c=3"),
        "(and (or (= a #1) (= b #2)) (= c #3))"
    );
    // Chains flatten, through parentheses too.
    assert_eq!(
        sx("a=1 and b=2 and c=3"),
        "(and (= a #1) (= b #2) (= c #3))"
    );
    assert_eq!(
        sx("a=1 and (b=2 and c=3)"),
        "(and (= a #1) (= b #2) (= c #3))"
    );
    assert_eq!(sx("(a=1 or b=2) or c=3"), "(or (= a #1) (= b #2) (= c #3))");
    // Display adds exactly the parentheses precedence needs.
    let show = |q: &str| parse(q).unwrap().to_string();
    assert_eq!(show("(a=1 or b=2)and c=3"), "(a = 1 or b = 2) and c = 3");
    assert_eq!(show("a=1 or (b=2 and c=3)"), "a = 1 or b = 2 and c = 3");
    assert_eq!(show("not (a=1 and b=2)"), "not (a = 1 and b = 2)");
    assert_eq!(show("NOT NOT a EXISTS"), "not not a exists");
    assert_eq!(show("x IN(a,'b c',*)"), "x in (a, \"b c\", *)");
    assert_eq!(show("`a b`=1"), "`a b` = 1");
    assert_eq!(show("`in`=1"), "`in` = 1");
}

#[test]
fn depth_limit() {
    let nest = |n: usize| format!("{}a=1{}", "(".repeat(n), ")".repeat(n));
    assert!(parse(&nest(MAX_DEPTH)).is_ok());
    let e = err(&nest(MAX_DEPTH + 1));
    assert!(e.message.contains("nested too deeply"), "{}", e.message);
    assert_eq!(
        e.span,
        Span {
            start: MAX_DEPTH,
            end: MAX_DEPTH + 1
        }
    );

    let nots = |n: usize| format!("{}a=1", "not ".repeat(n));
    assert!(parse(&nots(MAX_DEPTH)).is_ok());
    assert!(err(&nots(MAX_DEPTH + 1))
        .message
        .contains("nested too deeply"));
    assert!(parse(&format!("{}a=1{}", "(not ".repeat(32), ")".repeat(32))).is_ok());
    assert!(parse(&format!("{}a=1{}", "(not ".repeat(33), ")".repeat(33))).is_err());

    // Hostile input fails fast, without overflowing the stack.
    let e = err(&"(".repeat(100_000));
    assert!(e.message.contains("nested too deeply"));
    assert!(err(&"not ".repeat(100_000))
        .message
        .contains("nested too deeply"));
    // Long flat chains are not nesting.
    let long = vec!["a=1"; 10_000].join(" and ");
    assert!(matches!(parse(&long), Ok(Expr::And { exprs, .. }) if exprs.len() == 10_000));
}

#[test]
fn caret_rendering() {
    assert_eq!(
        err("lang=fr and").to_string(),
        "expected an expression after `and`, found the end of the query\n  lang=fr and\n             ^"
    );
    // Non-ASCII text before the error: the caret counts chars, not bytes.
    assert_eq!(
        err("titre = \"«été»\" and year >= abc").to_string(),
        "expected a number after `>=`, found `abc`\n  titre = \"«été»\" and year >= abc\n                              ^^^"
    );
    assert_eq!(
        err("lang in (fr, ").to_string(),
        "unclosed `(`: the `in` list has no `)` before the end of the query\n  lang in (fr, \n          ^"
    );
    // What the planner builds for an unknown field.
    let q = "lnag=fr and year >= 1950";
    let e = QueryError::new(q, Span { start: 0, end: 4 }, "unknown field `lnag`")
        .with_suggestion(suggest("lnag", ["lang", "license", "year"]).map(str::to_owned));
    assert_eq!(
        e.to_string(),
        "unknown field `lnag`\n  lnag=fr and year >= 1950\n  ^^^^\n  did you mean `lang`?"
    );
}

#[test]
fn error_spans() {
    fn span(q: &str) -> &str {
        let e = err(q);
        &q[e.span.start..e.span.end]
    }
    assert_eq!(span("lang="), "");
    assert_eq!(span("lang == fr"), "==");
    assert_eq!(span("year >= abc"), "abc");
    assert_eq!(span("x < 5*"), "5*");
    assert_eq!(span("lang=fr lang=de"), "lang");
    assert_eq!(span("((lang=fr)"), "(");
    assert_eq!(span("lang=fr)"), ")");
    assert_eq!(span("t = \"abc"), "\"abc");
    assert_eq!(span("t = \"a\\qb\""), "\\q");
    assert_eq!(span("größe = 1"), "größe");
    assert_eq!(span("  "), "  ");
}

#[test]
fn values() {
    let value = |q: &str| match parse(q).unwrap() {
        Expr::Cmp { value, .. } => value,
        e => panic!("{e:?}"),
    };
    assert!(
        matches!(value("y = 1998"), Value::Num { value, ref raw, .. } if value == 1998.0 && raw == "1998")
    );
    assert_eq!(value("y = 1998").as_text(), "1998");
    assert_eq!(value("y = 007").as_text(), "007");
    assert!(matches!(
        value("y = \"1998\""),
        Value::Str { quoted: true, .. }
    ));
    assert!(matches!(value("y = nan"), Value::Str { quoted: false, .. }));
    assert!(matches!(value("y = 1e999"), Value::Str { .. }));
    assert!(matches!(value("y = 19?8"), Value::Glob { .. }));
    assert_eq!(value("id = 'it\\'s'").as_text(), "it's");
    let v = value("id = src/a.rs");
    assert_eq!(v.as_text(), "src/a.rs");
    assert_eq!(v.span(), Span { start: 5, end: 13 });
}

#[test]
fn suggestions() {
    let fields = ["lang", "license", "source", "prog_lang", "year", "quality"];
    assert_eq!(suggest("lnag", fields), Some("lang"));
    assert_eq!(suggest("LANG", fields), Some("lang"));
    assert_eq!(suggest("licence", fields), Some("license"));
    assert_eq!(suggest("sorce", fields), Some("source"));
    assert_eq!(suggest("proglang", fields), Some("prog_lang"));
    assert_eq!(suggest("x", fields), None);
    assert_eq!(suggest("qualities", fields), Some("quality"));
    // Ties go to the lexicographically smallest candidate.
    assert_eq!(suggest("ab", ["ac", "aa", "bb"]), Some("aa"));
    // Threshold is max(1, chars/3): one edit for short words...
    assert_eq!(suggest("fr", ["de", "fi"]), Some("fi"));
    assert_eq!(suggest("fr", ["de"]), None);
    // ...two for a six-char word, counted in chars not bytes.
    assert_eq!(suggest("éèéèéè", ["éèéèxx"]), Some("éèéèxx"));
    assert_eq!(suggest("éèéèéè", ["éèéxxx"]), None);
    assert_eq!(suggest("anything", std::iter::empty()), None);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn ident() -> impl Strategy<Value = Ident> {
        prop_oneof![
            4 => "[a-zA-Z_][a-zA-Z0-9_.]{0,6}",
            1 => any::<String>(),
        ]
        .prop_map(|name| Ident {
            name,
            span: NO_SPAN,
        })
    }

    fn number() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<i32>().prop_map(|n| n.to_string()),
            (-1e9f64..1e9).prop_map(|v| v.to_string()),
            any::<f64>()
                .prop_filter("finite", |v| v.is_finite())
                .prop_map(|v| format!("{v:e}")),
        ]
        .prop_map(|raw| Value::Num {
            value: raw.parse().unwrap(),
            raw,
            span: NO_SPAN,
        })
    }

    fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            "[a-zA-Zéß中][a-zA-Z0-9_./:+-]{0,8}".prop_map(|text| Value::Str {
                text,
                quoted: false,
                span: NO_SPAN
            }),
            any::<String>().prop_map(|text| Value::Str {
                text,
                quoted: true,
                span: NO_SPAN
            }),
            number(),
            "[a-z0-9]{0,3}[*?][a-z0-9*?/.-]{0,4}".prop_map(|pattern| Value::Glob {
                pattern,
                span: NO_SPAN
            }),
        ]
    }

    fn leaf() -> impl Strategy<Value = Expr> {
        let cmp = (ident(), 0..6usize, value(), number()).prop_map(|(field, op, v, n)| {
            let op = [
                CmpOp::Eq,
                CmpOp::Ne,
                CmpOp::Lt,
                CmpOp::Le,
                CmpOp::Gt,
                CmpOp::Ge,
            ][op];
            let value = if op.is_ordering() { n } else { v };
            Expr::Cmp {
                field,
                op,
                value,
                span: NO_SPAN,
            }
        });
        prop_oneof![
            1 => Just(Expr::All { span: NO_SPAN }),
            4 => cmp,
            2 => (ident(), prop::collection::vec(value(), 1..4)).prop_map(|(field, values)| {
                Expr::In {
                    field,
                    values,
                    span: NO_SPAN,
                }
            }),
            1 => ident().prop_map(|field| Expr::Exists {
                field,
                span: NO_SPAN
            }),
        ]
    }

    fn expr() -> impl Strategy<Value = Expr> {
        leaf().prop_recursive(6, 48, 4, |inner| {
            prop_oneof![
                inner.clone().prop_map(|e| Expr::Not {
                    expr: Box::new(e),
                    span: NO_SPAN
                }),
                prop::collection::vec(inner.clone(), 2..4).prop_map(|exprs| Expr::And {
                    exprs,
                    span: NO_SPAN
                }),
                prop::collection::vec(inner, 2..4).prop_map(|exprs| Expr::Or {
                    exprs,
                    span: NO_SPAN
                }),
            ]
        })
    }

    /// What the parser makes of a hand-built tree: nested chains flattened.
    fn flatten(e: &Expr) -> Expr {
        let chain = |exprs: &[Expr], and: bool| {
            let mut out = Vec::new();
            for c in exprs.iter().map(flatten) {
                match c {
                    Expr::And { exprs, .. } if and => out.extend(exprs),
                    Expr::Or { exprs, .. } if !and => out.extend(exprs),
                    c => out.push(c),
                }
            }
            out
        };
        match e {
            Expr::Not { expr, span } => Expr::Not {
                expr: Box::new(flatten(expr)),
                span: *span,
            },
            Expr::And { exprs, span } => Expr::And {
                exprs: chain(exprs, true),
                span: *span,
            },
            Expr::Or { exprs, span } => Expr::Or {
                exprs: chain(exprs, false),
                span: *span,
            },
            e => e.clone(),
        }
    }

    proptest! {
        #[test]
        fn display_round_trips(e in expr()) {
            let text = e.to_string();
            let parsed = parse(&text).map_err(|err| TestCaseError::fail(format!("{text:?}:\n{err}")))?;
            prop_assert_eq!(strip(&parsed), flatten(&e), "{:?}", text);
        }

        #[test]
        fn never_panics(q in "[a-z =!<>()*?,'\"`\\\\né.-]{0,40}|\\PC{0,20}") {
            match parse(&q) {
                Ok(e) => {
                    let again = parse(&e.to_string()).expect("display re-parses");
                    prop_assert_eq!(strip(&again), strip(&e));
                }
                Err(err) => {
                    prop_assert!(err.span.start <= err.span.end && err.span.end <= q.len());
                    prop_assert!(q.is_char_boundary(err.span.start) && q.is_char_boundary(err.span.end));
                    prop_assert!(!err.message.is_empty());
                    let _ = err.to_string();
                }
            }
        }
    }
}
