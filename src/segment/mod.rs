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

/// A field name as documents carry it: a corpus has few distinct names,
/// interned as shared `'static` strings by [`field_name`], so that the
/// dozens of names of each document cost no allocation (allocating and
/// freeing them on different threads was 10% of an ingest profile).
pub type FieldName = std::borrow::Cow<'static, str>;

/// How many distinct field names the process interns; names beyond (input
/// whose keys never repeat) are owned strings, so the interned memory stays
/// bounded (at most this many names of at most [`MAX_INTERNED_LEN`] bytes).
/// The set lives as long as the process: once full, names it does not hold
/// stay owned for later ingests too (correct, only slower).
pub const MAX_INTERNED: usize = 4096;

/// The longest field name that is interned.
pub const MAX_INTERNED_LEN: usize = 256;

/// The [`FieldName`] of `name`: the interned copy when there is or may be
/// one, else an owned copy.
pub fn field_name(name: &str) -> FieldName {
    use std::cell::RefCell;
    use std::collections::HashSet;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Mutex;
    type Names = HashSet<&'static str, foldhash::fast::RandomState>;
    static GLOBAL: Mutex<Option<Names>> = Mutex::new(None);
    // Set once the bound is reached: from then on a name no thread cached
    // is owned without taking the lock (input whose keys never repeat
    // would otherwise lock it for every field of every record).
    static FULL: AtomicBool = AtomicBool::new(false);
    thread_local! {
        static LOCAL: RefCell<Names> = RefCell::new(Names::default());
    }
    if let Some(hit) = LOCAL.with(|l| l.borrow().get(name).copied()) {
        return FieldName::Borrowed(hit);
    }
    if name.len() > MAX_INTERNED_LEN || FULL.load(Ordering::Relaxed) {
        return FieldName::Owned(name.to_string());
    }
    let interned = {
        let Ok(mut g) = GLOBAL.lock() else {
            return FieldName::Owned(name.to_string());
        };
        let set = g.get_or_insert_with(Names::default);
        match set.get(name).copied() {
            Some(s) => s,
            None if set.len() < MAX_INTERNED => {
                let s: &'static str = Box::leak(name.to_string().into_boxed_str());
                set.insert(s);
                s
            }
            None => {
                FULL.store(true, Ordering::Relaxed);
                return FieldName::Owned(name.to_string());
            }
        }
    };
    LOCAL.with(|l| l.borrow_mut().insert(interned));
    FieldName::Borrowed(interned)
}

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
    pub facets: Vec<(FieldName, String)>,
    /// Numeric values: (field, value).
    pub numbers: Vec<(FieldName, f64)>,
    /// Every non-null field of the record (other than key and text) with its kind.
    pub present: Vec<(FieldName, FieldKind)>,
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
