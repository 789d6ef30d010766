//! # corpusql
//!
//! An embedded corpus store for language-model training data. Documents carry
//! license / source / language facets and live in zstd-compressed immutable
//! segments with `fst` dictionaries and roaring-bitmap postings; a small
//! query language selects what may be trained on, mixtures say how it is
//! mixed, and a streamer feeds tokenized, packed, shuffled, resumable
//! batches to a trainer. The license policy of a corpus holds inside the
//! library: nothing leaves the corpus in a class the policy holds back
//! unless the caller says so, and what was held back is always reported.
//!
//! ## The main types
//! - [`Corpus`]: the one entry point, a directory of segments plus a redb
//!   catalog opened as a consistent snapshot ([`Corpus::open`],
//!   [`Corpus::create`]). Reading: [`Corpus::count`], [`Corpus::query`] ->
//!   [`Selection`] -> [`Document`]s, [`Corpus::get`], [`Corpus::stats`],
//!   [`Corpus::schema`]. Writing, under the corpus write lock:
//!   [`Corpus::ingest`] (or [`ingest()`] into a directory that may not exist
//!   yet), [`Corpus::delete`], [`Corpus::compact`], [`Corpus::tag`],
//!   [`Corpus::set_policy`]; checking: [`Corpus::verify`].
//! - Leaving the corpus, under its [`Policy`] ([`PolicyOutcome`] says what
//!   was held back): [`Corpus::export`] (JSONL), [`Corpus::plan`] and
//!   [`Corpus::stream`] of a [`Mixture`] ([`Stream`] -> [`Batch`]es,
//!   resumable from a [`StreamState`]), [`Corpus::trace`],
//!   [`Corpus::report`] (a [`report::Datasheet`]) and
//!   [`Corpus::train_tokenizer`].
//! - [`Error`] / [`Result`]: typed errors that carry what went wrong and
//!   where; [`progress`]: progress of long operations for a caller to show.
//! - [`raw`]: unstable internals for tools that inspect corpusql itself.
//!
//! `docs/library.md` is the manual (stable and unstable parts, threads,
//! errors); the README's "As a library" section streams a mixture.
//!
//! ## Example
//! ```
//! use corpusql::{Corpus, ExportOptions, IngestOptions, Input, Policy};
//!
//! let dir = tempfile::tempdir()?;
//! let jsonl = br#"{"id": "a", "text": "Bonjour", "lang": "fr", "license": "pd"}
//! {"id": "b", "text": "Hello", "lang": "en", "license": "cc-by-4.0"}
//! {"id": "c", "text": "Salut", "lang": "fr", "license": "cc-by-nc-4.0", "year": 1998}
//! "#;
//! let mut corpus = Corpus::create(dir.path(), Default::default())?;
//! let input = Input::Reader("example.jsonl".into(), Box::new(&jsonl[..]));
//! let report = corpus.ingest(vec![input], &IngestOptions::default())?;
//! assert_eq!(report.ingested, 3);
//!
//! let sel = corpus.query("lang=fr")?;
//! assert_eq!(sel.count(), 2);
//! assert_eq!(corpus.count("year >= 1990")?, 1);
//!
//! // A policy: only public-domain and attribution licenses may leave.
//! corpus.set_policy(&Policy {
//!     allow: Some(vec!["public-domain".into(), "attribution".into()]),
//!     note: None,
//! })?;
//! let mut out = Vec::new();
//! let r = corpus.export(&sel, &ExportOptions::default(), &mut out)?;
//! assert_eq!(r.documents, 1); // "c" is non-commercial: held back, and said so
//! assert_eq!(r.policy.held_back.docs, 1);
//! assert_eq!(String::from_utf8(out)?.lines().count(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]
#![warn(clippy::host_endian_bytes, clippy::dbg_macro)]

mod catalog;
mod corpus;
mod error;
mod export;
mod facade;
mod format;
mod hash;
mod ingest;
pub mod job;
mod json;
mod lang;
mod license;
mod maintain;
mod plan;
mod policy;
mod pool;
pub mod progress;
#[cfg(feature = "python")]
mod python;
mod query;
pub mod remote;
pub mod report;
mod schema;
mod segment;
mod select;
mod stats;
mod storage;
mod tag;
mod token_ids;
mod tokenize;
mod train;

pub mod raw {
    //! **Unstable internals**, for tools that inspect or test corpusql
    //! itself: the CLI's `inspect` and `log`, the benchmarks, the fuzz
    //! targets and the tests. Nothing here is covered by semver: names,
    //! signatures and behaviour change whenever the implementation does.
    //! Embedding programs use the crate root ([`crate::Corpus`] and the
    //! types it takes and returns); `docs/library.md` says what is stable.
    //!
    //! Each module re-exports one internal module whole, as `fst::raw`
    //! does; their own docs say what they own.

    /// Unstable: the redb catalog (generations, segments, tombstones, logs).
    pub mod catalog {
        pub use crate::catalog::*;
    }
    /// Unstable: the corpus snapshot and its write lock.
    pub mod corpus {
        pub use crate::corpus::*;
    }
    /// Unstable: the one datasheet computation behind `Corpus::report`.
    pub mod datasheet {
        pub use crate::report::datasheet::*;
    }
    /// Unstable: JSONL output, projections and the atomic output file.
    pub mod export {
        pub use crate::export::*;
    }
    /// Unstable: magic numbers, versions and the file framing.
    pub mod format {
        pub use crate::format::*;
    }
    /// Unstable: the SplitMix64 mixing that orders streams.
    pub mod hash {
        pub use crate::hash::*;
    }
    /// Unstable: record parsing and input readers.
    pub mod ingest {
        pub use crate::ingest::*;
    }
    /// Unstable: JSON string escaping.
    pub mod json {
        pub use crate::json::*;
    }
    /// Unstable: language-code normalization.
    pub mod lang {
        pub use crate::lang::*;
    }
    /// Unstable: license ids, classes and the alias table.
    pub mod license {
        pub use crate::license::*;
    }
    /// Unstable: delete, compact and verify on a corpus directory.
    pub mod maintain {
        pub use crate::maintain::*;
    }
    /// Unstable: query plans and their evaluation into bitmaps.
    pub mod plan {
        pub use crate::plan::*;
    }
    /// Unstable: the policy file and its application to a selection.
    pub mod policy {
        pub use crate::policy::*;
    }
    /// Unstable: the query language's parser and diagnostics.
    pub mod query {
        pub use crate::query::*;
    }
    /// Unstable: the schema and field kinds.
    pub mod schema {
        pub use crate::schema::*;
    }
    /// Unstable: segment files (writer, reader, blocks, sidecars, overlays).
    pub mod segment {
        pub use crate::segment::*;
    }
    /// Unstable: selections and block reads.
    pub mod select {
        pub use crate::select::*;
    }
    /// Unstable: grouped counts.
    pub mod stats {
        pub use crate::stats::*;
    }
    /// Unstable: the storage layer every write goes through, with fault
    /// injection.
    pub mod storage {
        pub use crate::storage::*;
    }
    /// Unstable: taggers and their runner.
    pub mod tag {
        pub use crate::tag::*;
    }
    /// Unstable: stored token ids (`corpusql tokenize --keep-ids`).
    pub mod token_ids {
        pub use crate::token_ids::*;
    }
    /// Unstable: tokenizers and per-document token counts.
    pub mod tokenize {
        pub use crate::tokenize::*;
    }
    /// Unstable: mixtures, schedule, engine, stream, state, encoders, trace.
    pub mod train {
        pub use crate::train::*;
    }
}

/// The README's examples, compiled and run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

pub use corpus::Corpus;
pub use error::{Error, Result, ResumeField};
pub use export::parquet::ParquetOptions;
pub use export::tokens::{
    ComponentExport, MixExportOptions, MixExportReport, TokenDtype, TokenExportOptions,
    TokenExportReport, TokenFormat,
};
pub use export::Projection;
pub use facade::{
    ExportOptions, ExportReport, FieldSummary, ReportOf, ReportOptions, SchemaSummary,
    TokenizerReport, Trace, TraceOptions,
};
pub use ingest::{
    ingest, ingest_task, IngestOptions, IngestReport, Input, OnDuplicate, RecordOptions, Reject,
    WriterOptions,
};
pub use license::LicenseClass;
pub use maintain::{CompactReport, SegmentCheck, VerifyReport};
pub use policy::{HeldBack, Policy, PolicyOutcome};
pub use schema::{FieldKind, Schema};
pub use select::{Document, Selection};
pub use stats::{Group, Stats};
pub use tag::dolma::{DolmaOptions, DolmaReport};
pub use tag::{tag_task, TagOptions, TagOutcome, TagReport, TagSettings, Tagger};
pub use tokenize::Tokenizer;
pub use train::mixture::{ComponentPlan, PhasePlan, Plan as MixturePlan, Slice};
pub use train::{
    npy_header, Batch, Emitted, Encoding, Mixture, Phase, Span, Stream, StreamOptions, StreamState,
    TraceHit, WeightChange, WorkerSplit,
};
