//! Format constants: the one home for every magic number, version and section
//! id of the segment file format (specified byte by byte in `docs/format.md`).
//!
//! Every multi-byte integer in a segment is little-endian; offsets are derived
//! from the previous field so that the layout reads top to bottom.

/// Magic bytes at offset 0 of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"CORPUSQL";
/// Magic bytes closing the footer (the last 4 bytes of a finished segment).
pub const FOOTER_MAGIC: [u8; 4] = *b"CQSF";
/// The segment format version this build writes.
pub const FORMAT_VERSION: u32 = 1;
/// The newest segment format version this build reads.
pub const MAX_READ_VERSION: u32 = 1;

/// Header: magic (8) + format version (4) + flags (4).
pub const HEADER_LEN: usize = 16;
/// Offset of the format version inside the header.
pub const HEADER_VERSION_OFFSET: usize = SEGMENT_MAGIC.len();
/// Offset of the flags inside the header.
pub const HEADER_FLAGS_OFFSET: usize = HEADER_VERSION_OFFSET + 4;

/// Footer: table offset (8) + section count (4) + table CRC32C (4) +
/// document count (8) + format version (4) + footer magic (4).
pub const FOOTER_LEN: usize = 32;
/// Offset, inside the footer, of the section table's file offset.
pub const FOOTER_TABLE_OFFSET: usize = 0;
/// Offset, inside the footer, of the number of sections.
pub const FOOTER_SECTION_COUNT: usize = FOOTER_TABLE_OFFSET + 8;
/// Offset, inside the footer, of the section table's CRC32C.
pub const FOOTER_TABLE_CRC: usize = FOOTER_SECTION_COUNT + 4;
/// Offset, inside the footer, of the segment's document count.
pub const FOOTER_DOC_COUNT: usize = FOOTER_TABLE_CRC + 4;
/// Offset, inside the footer, of the format version (repeated from the header).
pub const FOOTER_VERSION: usize = FOOTER_DOC_COUNT + 8;
/// Offset, inside the footer, of the footer magic.
pub const FOOTER_MAGIC_OFFSET: usize = FOOTER_VERSION + 4;

/// One section-table entry: id (4) + reserved (4) + offset (8) + length (8) +
/// CRC32C (4) + reserved (4).
pub const SECTION_ENTRY_LEN: usize = 32;

/// One block-index entry: file offset (8) + compressed length (4) + raw
/// length (4) + first document ordinal (4) + document count (4) + CRC32C of
/// the compressed bytes (4) + reserved (4).
pub const BLOCK_ENTRY_LEN: usize = 32;

/// One term-index entry: postings offset (8, relative to the postings
/// section) + postings length (4) + document count (4) + text bytes of those
/// documents (8).
pub const TERM_ENTRY_LEN: usize = 24;

/// Section ids. A segment holds each exactly once.
pub mod section {
    /// zstd-compressed document blocks.
    pub const BLOCKS: u32 = 1;
    /// Fixed-size block index entries.
    pub const BLOCK_INDEX: u32 = 2;
    /// `fst::Map` from document key to ordinal.
    pub const KEYS: u32 = 3;
    /// `fst::Map` from `field \0 value` to term id.
    pub const TERMS: u32 = 4;
    /// Fixed-size term index entries (postings location and per-term counts).
    pub const TERM_INDEX: u32 = 5;
    /// Roaring bitmaps (standard portable serialization), back to back.
    pub const POSTINGS: u32 = 6;
    /// zstd-compressed numeric columns, back to back.
    pub const NUMERIC: u32 = 7;
    /// postcard-encoded segment metadata, prefixed by its own u16 version.
    pub const META: u32 = 8;
    /// Every section id, in the order the writer emits them.
    pub const ALL: [u32; 8] = [
        BLOCKS,
        BLOCK_INDEX,
        KEYS,
        TERMS,
        TERM_INDEX,
        POSTINGS,
        NUMERIC,
        META,
    ];
    /// A human name for a section id.
    pub fn name(id: u32) -> &'static str {
        match id {
            BLOCKS => "blocks",
            BLOCK_INDEX => "block_index",
            KEYS => "keys",
            TERMS => "terms",
            TERM_INDEX => "term_index",
            POSTINGS => "postings",
            NUMERIC => "numeric",
            META => "meta",
            _ => "unknown",
        }
    }
}

/// Version prefix of the postcard-encoded segment metadata.
pub const META_VERSION: u16 = 1;
/// Version of the catalog layout (stored in the catalog's `meta` table).
pub const CATALOG_VERSION: u32 = 1;

/// Separator between a field name and a value in the term dictionary.
pub const TERM_SEP: u8 = 0;

/// Target uncompressed size of a document block.
pub const BLOCK_TARGET_BYTES: usize = 512 * 1024;
/// zstd level used for blocks (level 1 compresses about twice as fast as
/// level 3 for 6% more bytes on the peers' corpus; see docs/decisions.md).
pub const ZSTD_LEVEL: i32 = 1;

/// Longest facet value that is indexed (longer values are rejected at ingest).
pub const MAX_FACET_VALUE_BYTES: usize = 4096;

/// Name of the built-in numeric field holding the UTF-8 length of `text`.
pub const BYTES_FIELD: &str = "bytes";
