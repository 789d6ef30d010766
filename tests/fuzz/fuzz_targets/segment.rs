//! A segment file of arbitrary bytes (checksums fixed up so mutations reach
//! past them) opened by the reader, then read the way queries and exports
//! do: document count, key lookups, terms and postings, presence, numeric
//! columns, every block and every document, and `verify`.
#![no_main]

use corpusql::raw::segment::Segment;
use libfuzzer_sys::fuzz_target;

/// Keep each input's work bounded: a damaged file may claim many terms.
const MAX_TERMS: usize = 256;

fuzz_target!(|data: &[u8]| {
    let mut bytes = data.to_vec();
    corpusql_fuzz::fix_segment_crcs(&mut bytes);
    let path = corpusql_fuzz::write_scratch("seg-0000000001.cqs", &bytes);
    let Ok(seg) = Segment::open(&path) else {
        return;
    };
    let n = seg.doc_count();
    let _ = seg.all();
    let _ = seg.key_ordinal("g/00");
    let _ = seg.keys_with_prefix("g/");
    let mut terms = Vec::new();
    seg.for_each_term(|f, v, id| {
        if terms.len() < MAX_TERMS {
            terms.push((f.to_string(), v.to_string(), id));
        }
    });
    for (f, v, id) in &terms {
        let _ = seg.postings(f, v);
        let _ = seg.postings_of(*id);
        let _ = seg.term_counts(*id);
        let _ = seg.terms_with_prefix(f, "");
    }
    let fields: Vec<String> = seg.meta().fields.iter().map(|f| f.name.clone()).collect();
    for f in &fields {
        let _ = seg.presence(f);
    }
    let numeric: Vec<String> = seg.meta().numeric.iter().map(|c| c.name.clone()).collect();
    for c in &numeric {
        let _ = seg.numeric(c);
    }
    let mut json = Vec::new();
    for i in 0..seg.blocks().len() {
        let Ok(b) = seg.read_block(i) else {
            continue;
        };
        for d in 0..b.len() {
            let _ = b.key(d);
            let _ = b.text(d);
            json.clear();
            b.write_json(d, &mut json);
        }
    }
    if n > 0 {
        let _ = seg.block_of(n - 1);
    }
    let _ = seg.verify();
});
