//! Tagger `pii` (being written).
