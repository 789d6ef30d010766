//! Tagger `dedup` (being written).
