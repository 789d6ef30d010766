//! The library's error type: every failure carries the data needed to act on
//! it (the file, the line, the field) and, where one exists, a remedy.

use std::path::PathBuf;

use crate::query::QueryError;

/// Errors returned by corpusql.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O error on a named file. The message shows the underlying
    /// error's text, which is also its [`source`](std::error::Error::source).
    #[error("{}: {error}", path.display())]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        error: std::io::Error,
    },
    /// A segment or catalog failed a structural or checksum check.
    #[error("{}: corrupt: {detail} (run `corpusql verify`; restore the file from a backup or re-ingest its source)", path.display())]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// What was found wrong.
        detail: String,
    },
    /// A tag sidecar (signal columns) failed a check; it can be recomputed.
    #[error("{}: corrupt: {detail} (recompute it: `corpusql tag --force --taggers {tagger}`)", path.display())]
    CorruptSignals {
        /// The damaged sidecar.
        path: PathBuf,
        /// The tagger that wrote it.
        tagger: String,
        /// What was found wrong.
        detail: String,
    },
    /// A file written by a newer format than this build reads.
    #[error("{}: written by format version {found}; this corpusql reads up to {supported}: upgrade corpusql or re-ingest", path.display())]
    Version {
        /// The file concerned.
        path: PathBuf,
        /// The version found in the file.
        found: u32,
        /// The newest version this build reads.
        supported: u32,
    },
    /// The directory holds no corpus.
    #[error("no corpus at {} (create one with `corpusql --corpus {} ingest FILE`)", path.display(), path.display())]
    NoCorpus {
        /// The directory looked at.
        path: PathBuf,
    },
    /// The catalog database failed.
    #[error("catalog {}: {detail}", path.display())]
    Catalog {
        /// The catalog file.
        path: PathBuf,
        /// The database's message.
        detail: String,
    },
    /// A query failed to parse or named something that does not exist.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// A document key was ingested twice under `--on-duplicate error`.
    #[error("{file}:{line}: duplicate key `{key}` (use --on-duplicate skip or replace)")]
    DuplicateKey {
        /// The input file.
        file: String,
        /// The 1-based line.
        line: u64,
        /// The key.
        key: String,
    },
    /// A word list a tagger reads (the OCR tagger's dictionaries, the
    /// toxicity tagger's lists) is missing, unreadable or holds a bad line.
    #[error("{tagger} word list {}{}: {detail}", path.display(), line.map(|n| format!(":{n}")).unwrap_or_default())]
    WordList {
        /// The tagger that reads the list (`ocr`, `toxicity`).
        tagger: String,
        /// The list's file, or the directory of lists.
        path: PathBuf,
        /// The 1-based line at fault, when one is.
        line: Option<u64>,
        /// What is wrong, and what to do about it.
        detail: String,
        /// The I/O error behind it, when there is one (its text ends `detail`).
        #[source]
        source: Option<std::io::Error>,
    },
    /// A language code that is not one of those allowed where it was given.
    #[error("unknown language code {code:?} {context}: expected {expected}")]
    UnknownLanguage {
        /// The code as given.
        code: String,
        /// Where it was given (`in the language tagger's allowed set`).
        context: String,
        /// The codes that would have been accepted.
        expected: String,
    },
    /// Invalid arguments or input that is not about one record.
    #[error("{0}")]
    Invalid(String),
    /// A stream state does not belong to the stream it would resume: the
    /// field `what` differs between the state and the stream now.
    #[error("cannot resume: {what} {} (state: {state}, now: {current}){}", .what.verb(), .what.consequence())]
    ResumeMismatch {
        /// What differs.
        what: ResumeField,
        /// Its value in the state.
        state: String,
        /// Its value for the stream now.
        current: String,
    },
    /// Token ids do not fit the chosen token encoding (u16).
    #[error("the tokenizer has {ids} ids; u16 holds 65,536: use --format u32")]
    TokenWidth {
        /// Ids needed: the vocabulary size, or one more than the largest id met.
        ids: u64,
    },
}

/// What a stream state and the stream it would resume disagree on
/// ([`Error::ResumeMismatch`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResumeField {
    /// The state's format version is not one this build reads.
    Version,
    /// The corpus generation (a version-1 state, which has no fingerprint
    /// of the selected documents).
    Generation,
    /// The documents the mixture selects, or the segments holding them.
    Documents,
    /// The mixture (weights, queries, seed, budget, ...).
    Mixture,
    /// The tokenizer.
    Tokenizer,
    /// The sequence length.
    SeqLen,
}

impl ResumeField {
    fn verb(self) -> &'static str {
        match self {
            ResumeField::Documents => "differ",
            _ => "differs",
        }
    }

    fn consequence(self) -> &'static str {
        match self {
            ResumeField::Version => ": states before version 3 were written by a corpusql that blended whole documents, not sequences, so the stream they point into is not the one this corpusql streams; start the stream again (or finish the run with the corpusql that wrote the state)",
            ResumeField::Generation => ": the corpus changed since this version-1 state was written, and such a state resumes only on its own generation",
            ResumeField::Documents => ": the documents this mixture selects changed since the state was written (ingested, deleted, compacted or retagged), so resuming would not continue the same stream",
            ResumeField::Mixture => ": its weights, queries, seed, budget or another setting changed",
            ResumeField::Tokenizer | ResumeField::SeqLen => "",
        }
    }
}

impl std::fmt::Display for ResumeField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ResumeField::Version => "the state format version",
            ResumeField::Generation => "the corpus generation",
            ResumeField::Documents => "the selected documents",
            ResumeField::Mixture => "the mixture",
            ResumeField::Tokenizer => "the tokenizer",
            ResumeField::SeqLen => "the seq_len",
        })
    }
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            error: source,
        }
    }

    /// A corruption error on `path`.
    pub fn corrupt(path: impl Into<PathBuf>, detail: impl Into<String>) -> Self {
        Error::Corrupt {
            path: path.into(),
            detail: detail.into(),
        }
    }
}

/// Adds a path to `std::io::Result`s.
pub(crate) trait IoContext<T> {
    /// Maps the error to [`Error::Io`] naming `path`.
    fn at(self, path: &std::path::Path) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: &std::path::Path) -> Result<T> {
        self.map_err(|e| Error::io(path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn io_shows_its_error_and_gives_it_as_source() {
        let e = Error::io("/c/CURRENT", std::io::Error::other("disk on fire"));
        assert_eq!(e.to_string(), "/c/CURRENT: disk on fire");
        assert_eq!(
            e.source().map(|s| s.to_string()).as_deref(),
            Some("disk on fire")
        );
    }

    #[test]
    fn word_list_names_tagger_file_and_line() {
        let e = Error::WordList {
            tagger: "toxicity".into(),
            path: "/l/fr".into(),
            line: Some(3),
            detail: "not valid UTF-8".into(),
            source: None,
        };
        assert_eq!(e.to_string(), "toxicity word list /l/fr:3: not valid UTF-8");
        assert!(e.source().is_none());
    }
}
