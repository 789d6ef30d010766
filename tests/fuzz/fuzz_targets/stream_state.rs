//! A stream state file (`--resume`): JSON load, the checks against a
//! mixture, and an engine started at the state's `next_sequence` on a tiny
//! corpus, as `corpusql stream --resume` does, emitting a first batch.
#![no_main]

use std::sync::OnceLock;

use corpusql::raw::train::mixture::Mixture;
use corpusql::raw::train::{Engine, EngineOptions, StreamState};
use libfuzzer_sys::fuzz_target;

fn mixture() -> &'static Mixture {
    static M: OnceLock<Mixture> = OnceLock::new();
    M.get_or_init(|| {
        Mixture::from_toml(
            "seed = 7\nseq_len = 16\ntokens = 4000\n\
             [[component]]\nname = \"fr\"\nquery = \"lang=fr\"\nweight = 0.5\n\
             [[component]]\nname = \"rest\"\nquery = \"not lang=fr\"\nweight = 0.5\n",
            "fuzz.toml",
        )
        .expect("the fuzz mixture")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(st) = serde_json::from_slice::<StreamState>(data) else {
        return;
    };
    let corpus = corpusql_fuzz::corpus();
    let m = mixture();
    let _ = st.check(corpus.generation(), "", m, "bytes");
    for (rank, world) in [(0, 1), (1, 2), (3, 4)] {
        let opts = EngineOptions {
            rank,
            world,
            start: st.next_sequence,
            stop_after: Some(4),
            ..EngineOptions::default()
        };
        let Ok(mut engine) = Engine::new(corpus, m, opts) else {
            continue;
        };
        let _ = engine.check_resume(&st);
        let _ = engine.next_batch(2);
        let _ = engine.state();
    }
});
