//! Taggers: per-document signals (language, quality, OCR noise, personal data,
//! toxicity, duplicates) stored as sidecar columns beside the segments, so
//! that cleaning a corpus is a query (`lang_score > 0.9 and is_dup = false`).
//!
//! [`tag`] owns the run: it works out, per segment and tagger, which
//! documents still lack values of the tagger's current version (tagging is
//! incremental), reads each needed block once, runs the per-document
//! taggers in parallel, writes one new sidecar per (segment, tagger) and
//! commits them all in one catalog transaction, so a crash leaves the old
//! state or the new one. Deduplication is corpus-wide: it is recomputed
//! whenever the live documents changed since it last ran.
//!
//! The signal definitions live in the submodules; `docs/taggers.md`
//! documents each one. [`dolma`] imports the attribute files of taggers run
//! with Dolma (`dolma tag`) as signal columns of the same kind
//! (`docs/dolma.md`).

pub mod dedup;
pub mod dolma;
pub mod language;
pub mod ocr;
pub mod pii;
pub mod quality;
pub mod settings;
pub mod toxicity;

mod run;

pub use dolma::{DolmaOptions, DolmaReport, OnUnknownId};
pub(crate) use run::commit_tag_job;
pub use run::{dedup_columns, tag, tag_task, TagOptions, TagOutcome, TagReport, Tagger};
pub use settings::TagSettings;

/// MurmurHash3's 64-bit finalizer: spreads every input bit over the output.
#[inline]
pub(crate) fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}
