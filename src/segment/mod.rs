//! Immutable segment files: the unit of storage.
//!
//! A segment holds documents in zstd-compressed blocks with a block index, an
//! `fst` of keys, an `fst` term dictionary pointing at roaring postings with
//! per-term counts, numeric columns, and a footer with a checksummed section
//! table, all inside the common file frame (byte layout in
//! `docs/format.md`, constants and framing in [`crate::format`]). [`writer`]
//! builds one from documents ([`WriterOptions`]: block size, zstd level);
//! [`reader`] opens and queries one; [`sidecar`] holds a tagger's columns.

pub mod block;
pub mod overlay;
pub mod reader;
pub mod sidecar;
pub mod writer;

use serde::{Deserialize, Serialize};

use crate::schema::FieldKind;

pub use block::Block;
pub use reader::Segment;
pub use writer::{write_segment, write_segment_with, WriterOptions, WrittenSegment};

/// A document as the segment writer receives it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DocRecord {
    /// Unique key (the `id` field, or derived from the content hash).
    pub key: String,
    /// The text, as UTF-8.
    pub text: String,
    /// The record's JSON up to and including `"text":` (original field order).
    pub prefix: Vec<u8>,
    /// The record's JSON after the text value, through the closing `}`.
    pub suffix: Vec<u8>,
    /// Indexed facet values: (field, value); several per field for arrays.
    pub facets: Vec<(String, String)>,
    /// Numeric values: (field, value).
    pub numbers: Vec<(String, f64)>,
    /// Every non-null field of the record (other than key and text) with its kind.
    pub present: Vec<(String, FieldKind)>,
    /// How many of the last `present` entries are leaves of nested objects
    /// under dotted names (`meta.language`): a kind that disagrees with the
    /// schema drops such a leaf from the index instead of rejecting the record.
    pub nested: usize,
}

impl DocRecord {
    /// Bytes this document occupies in a block before compression.
    pub fn raw_len(&self) -> usize {
        self.key.len() + self.text.len() + self.prefix.len() + self.suffix.len() + 16
    }

    /// Approximate heap bytes held by this record (for memory budgets).
    pub fn heap_size(&self) -> usize {
        self.raw_len()
            + self.key.len()
            + self
                .facets
                .iter()
                .map(|(f, v)| f.len() + v.len() + 48)
                .sum::<usize>()
            + self.numbers.len() * 32
            + self.present.len() * 32
            + 160
    }
}

/// Per-field metadata kept in a segment's META section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldMeta {
    /// Field name.
    pub name: String,
    /// Field kind.
    pub kind: FieldKind,
    /// Offset of the presence bitmap inside the POSTINGS section.
    pub presence_offset: u64,
    /// Length of the presence bitmap.
    pub presence_len: u32,
    /// Documents holding the field.
    pub docs: u32,
    /// Distinct indexed values in this segment.
    pub terms: u32,
}

/// Per-column metadata of a numeric column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NumericMeta {
    /// Field name (`bytes` for the built-in text length).
    pub name: String,
    /// Offset of the zstd-compressed column inside the NUMERIC section.
    pub offset: u64,
    /// Compressed length.
    pub len: u32,
    /// Smallest value present (NaN-free).
    pub min: f64,
    /// Largest value present.
    pub max: f64,
}

/// A segment's META section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentMeta {
    /// Documents in the segment (tombstones are kept in the catalog).
    pub doc_count: u32,
    /// Sum of UTF-8 text lengths.
    pub text_bytes: u64,
    /// Sum of uncompressed block payloads.
    pub raw_bytes: u64,
    /// Fields present in this segment.
    pub fields: Vec<FieldMeta>,
    /// Numeric columns.
    pub numeric: Vec<NumericMeta>,
    /// Facets documents were clustered by, in priority order.
    pub cluster_fields: Vec<String>,
}
