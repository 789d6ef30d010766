//! Taggers: per-document signals (language, quality, OCR noise, personal data,
//! toxicity, duplicates) stored as sidecar columns beside the segments.

pub mod dedup;
pub mod language;
pub mod ocr;
pub mod pii;
pub mod quality;
pub mod toxicity;
