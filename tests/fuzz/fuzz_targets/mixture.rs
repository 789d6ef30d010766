//! A mixture file: TOML parse and checks, then (tokenizer forced to `bytes`,
//! so no file is read) its hash, shares and a plan against a tiny corpus.
#![no_main]

use corpusql::raw::train::mixture::{plan, Mixture};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(mut m) = Mixture::from_toml(text, "fuzz.toml") else {
        return;
    };
    let _ = m.hash();
    let _ = m.shares();
    m.tokenizer = "bytes".into();
    if let Ok((p, _)) = plan(corpusql_fuzz::corpus(), &m) {
        let _ = p.sequences;
    }
});
