//! Tagger `ocr` (being written).
