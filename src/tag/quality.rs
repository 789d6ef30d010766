//! Tagger `quality` (being written).
