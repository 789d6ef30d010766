//! # corpusql
//!
//! An embedded corpus store for language-model training data. Documents carry
//! license / source / language facets and live in zstd-compressed immutable
//! segments with `fst` dictionaries and roaring-bitmap postings; a small
//! query language selects what may be trained on.
//!
//! ## The main types
//! - [`Corpus`]: a directory of segments plus a redb catalog, opened as a
//!   consistent snapshot ([`Corpus::open`], [`Corpus::create`]).
//! - [`ingest()`]: JSONL (plain, gzip, zstd, any reader) into a corpus, in one
//!   atomic commit, with bad records reported and kept out.
//! - [`Corpus::query`] -> [`Selection`]: counts, byte totals and documents.
//! - [`export`]: matching documents as JSONL, exactly as ingested.
//! - [`Error`] / [`Result`].
//!
//! ## Example
//! ```
//! use corpusql::{ingest, Corpus, IngestOptions, Input};
//!
//! let dir = tempfile::tempdir()?;
//! let jsonl = br#"{"id": "a", "text": "Bonjour", "lang": "fr", "license": "pd"}
//! {"id": "b", "text": "Hello", "lang": "en", "license": "cc-by-4.0"}
//! {"id": "c", "text": "Salut", "lang": "fr", "license": "cc-by-4.0", "year": 1998}
//! "#;
//! let input = Input::Reader("example.jsonl".into(), Box::new(&jsonl[..]));
//! let report = ingest(dir.path(), vec![input], &IngestOptions::default())?;
//! assert_eq!(report.ingested, 3);
//!
//! let corpus = Corpus::open(dir.path())?;
//! let sel = corpus.query("lang=fr and license in (cc-by-4.0, pd)")?;
//! assert_eq!(sel.count(), 2);
//! assert_eq!(corpus.query("year >= 1990")?.count(), 1);
//!
//! let mut out = Vec::new();
//! corpusql::export::write_jsonl(&sel, &corpusql::export::Projection::All, &mut out)?;
//! assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]
#![warn(clippy::host_endian_bytes, clippy::dbg_macro)]

pub mod catalog;
pub mod corpus;
/// The datasheet computation's former path; it lives in [`report::datasheet`].
pub use report::datasheet;
pub mod demo;
pub mod error;
pub mod export;
mod facade;
pub mod format;
pub mod hash;
pub mod ingest;
pub mod json;
pub mod lang;
pub mod license;
pub mod maintain;
pub mod plan;
pub mod policy;
mod pool;
pub mod progress;
pub mod query;
pub mod report;
pub mod schema;
pub mod segment;
pub mod select;
pub mod stats;
#[doc(hidden)]
pub mod storage;
pub mod stream;
pub mod tag;
pub mod tokenize;
pub mod train;

/// Former path of [`train::mixture`], kept while callers move.
pub use train::mixture;

/// The README's examples, compiled and run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

pub use corpus::Corpus;
pub use error::{Error, Result, ResumeField};
pub use facade::{
    ExportOptions, ExportReport, ReportOf, ReportOptions, TokenizerReport, Trace, TraceOptions,
};
pub use ingest::{ingest, IngestOptions, IngestReport, Input, OnDuplicate};
pub use policy::PolicyOutcome;
pub use select::{Document, Selection};
pub use train::mixture::Plan as MixturePlan;
pub use train::{
    npy_header, Batch, Emitted, Encoding, Mixture, Stream, StreamOptions, StreamState, TraceHit,
};
