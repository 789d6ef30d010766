//! License normalization and classes (being written).
