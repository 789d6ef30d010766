//! Tagger `toxicity` (being written).
