//! Tagger `language` (being written).
