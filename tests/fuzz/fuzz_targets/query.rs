//! The query parser on arbitrary text: no panic, no stack overflow (the
//! depth limit), and a tree that prints to a query parsing to the same text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(q) = std::str::from_utf8(data) else {
        return;
    };
    match corpusql::raw::query::parse(q) {
        Ok(expr) => {
            let canon = expr.to_string();
            let again = corpusql::raw::query::parse(&canon).unwrap_or_else(|e| {
                panic!("{q:?} printed as {canon:?}, which does not parse: {e}")
            });
            assert_eq!(
                again.to_string(),
                canon,
                "printing is not a fixed point for {q:?}"
            );
        }
        Err(e) => {
            // Rendering the diagnostic slices the query by the error's span.
            assert!(e.span.start <= e.span.end && e.span.end <= q.len(), "{e:?}");
            let _ = e.to_string();
            let _ = corpusql::raw::query::suggest(q, ["lang", "license", "source", "year"]);
        }
    }
});
