//! The training side: what leaves the corpus for a trainer, and how.
//!
//! - [`mixture`]: a mixture (components, weights, budget, seed, tokenizer,
//!   sequence length) read from TOML, and its plan on a corpus snapshot.
//! - [`schedule`]: which component and document come next, from token
//!   counts alone, and how sequences split across ranks.
//! - [`engine`]: reads and tokenizes the scheduled documents and packs them
//!   into sequences.
//! - [`stream`]: the public streamer ([`Stream`]), with its prefetch thread.
//! - [`state`]: the resume state ([`StreamState`]) and the check that
//!   refuses a foreign one.
//! - [`encode`]: token ids as `u16`/`u32` bytes and `.npy` headers.
//! - [`mod@trace`]: the documents behind a position of a stream.
//! - [`training`]: the training set a stream emits (documents, tokens per
//!   component and phase), for its datasheet.
//!
//! Data flows mixture → schedule → engine → stream → encode; `state` and
//! `trace` read the schedule.

pub mod encode;
pub mod engine;
pub mod mixture;
pub mod schedule;
pub mod state;
pub mod stream;
pub mod trace;
pub mod training;

pub use encode::{npy_header, Encoding};
pub use engine::{Emitted, Engine, EngineOptions};
pub use mixture::{Mixture, Phase, Plan, WeightChange};
pub use schedule::{Blend, Piece, Placed, Schedule, WorkerSplit};
pub use state::{StreamState, STATE_VERSION};
pub use stream::{Batch, Span, Stream, StreamOptions};
pub use trace::{trace, TraceHit};

/// A small corpus for the unit tests of this module: 600 documents in
/// French, English and German over four segments of one block each.
#[cfg(test)]
pub(crate) mod testing {
    use crate::{ingest, Corpus, IngestOptions, Input};

    /// The corpus's documents, as JSONL.
    pub fn jsonl() -> Vec<u8> {
        let mut s = String::new();
        for i in 0..600u32 {
            let lang = ["fr", "en", "de"][(i % 3) as usize];
            let lic = ["pd", "cc-by-4.0", "mit", "gpl-3.0"][(i % 4) as usize];
            let n = 20 + (i * 37 % 1500) as usize;
            let text: String = format!("document {i} ")
                .chars()
                .chain("abcdefghij klmnop ".chars().cycle())
                .take(n)
                .collect();
            s.push_str(&format!(
                "{{\"id\": \"d{i:04}\", \"lang\": \"{lang}\", \"license\": \"{lic}\", \"source\": \"s{}\", \"text\": \"{text}\"}}\n",
                i % 7
            ));
        }
        s.into_bytes()
    }

    /// Ingests [`jsonl`] into a new directory.
    pub fn corpus() -> (tempfile::TempDir, Corpus) {
        let dir = tempfile::tempdir().unwrap();
        let opts = IngestOptions {
            segment_bytes: 200_000,
            ..Default::default()
        };
        let input = Input::Reader("pin.jsonl".into(), Box::new(std::io::Cursor::new(jsonl())));
        ingest(dir.path(), vec![input], &opts).unwrap();
        let corpus = Corpus::open(dir.path()).unwrap();
        (dir, corpus)
    }

    /// Two components, 60 % French; French runs a little over one epoch.
    pub const MIX: &str = "seed = 42\ntokens = 300000\nseq_len = 64\nshuffle_window_blocks = 2\n\
        [[component]]\nname = \"fr\"\nquery = \"lang=fr\"\nweight = 0.6\n\
        [[component]]\nname = \"rest\"\nquery = \"not lang=fr\"\nweight = 0.4\n";
}
