//! Format constants and the one file framing: the home of every magic number,
//! version and section id corpusql writes, and of the frame that wraps every
//! file it writes (specified byte by byte in `docs/format.md`).
//!
//! Every file corpusql writes — segments, tag sidecars, token-count files,
//! token-id files and `CURRENT` — is one [`FileKind`] framed the same way: a 16-byte header
//! (the kind's magic, a `u16` format version, a reserved `u16` and `u32`
//! flags, all zero today) at the start, the kind's payload, and a 24-byte
//! trailer at the end (payload length, CRC32C of everything before the
//! trailer, the version and the magic again). A truncated or unfinished file
//! lacks its trailer and is refused; a file of another kind, or of a newer
//! version, is refused with an error that says what was found, what this
//! build reads, and what to do. [`encode`] frames a payload; [`decode`]
//! checks the header and trailer (for segments, which are memory-mapped and
//! whose checksums are checked section by section); [`decode_whole`] also
//! checks the CRC32C of the whole file.
//!
//! The layouts written before this framing (segment format 1, sidecar 1,
//! token counts 1, `CURRENT` 1 and 2) are still read; their constants live
//! in [`v1`]. Every multi-byte integer is little-endian; offsets are derived
//! from the previous field so that a layout reads top to bottom.

use std::path::Path;

use crate::error::Error;

/// The kinds of file corpusql writes, each framed by this module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FileKind {
    /// An immutable segment (`seg-*.cqs`).
    Segment,
    /// A tag sidecar: one tagger's signal columns for one segment (`*.cqt`).
    Sidecar,
    /// Exact per-document token counts of one segment for one tokenizer (`*.cqc`).
    TokenCounts,
    /// The token ids of one segment's documents for one tokenizer (`*.cqi`).
    TokenIds,
    /// `CURRENT`: the readers' copy of the committed catalog state.
    Current,
}

impl FileKind {
    /// Every kind.
    pub const ALL: [FileKind; 5] = [
        FileKind::Segment,
        FileKind::Sidecar,
        FileKind::TokenCounts,
        FileKind::TokenIds,
        FileKind::Current,
    ];

    /// The 8 magic bytes opening (and closing) a file of this kind.
    pub const fn magic(self) -> [u8; 8] {
        match self {
            FileKind::Segment => SEGMENT_MAGIC,
            FileKind::Sidecar => SIDECAR_MAGIC,
            FileKind::TokenCounts => COUNTS_MAGIC,
            FileKind::TokenIds => IDS_MAGIC,
            FileKind::Current => CURRENT_MAGIC,
        }
    }

    /// The format version this build writes, which is also the newest it reads.
    pub const fn version(self) -> u16 {
        match self {
            FileKind::Segment => SEGMENT_VERSION,
            FileKind::Sidecar => SIDECAR_VERSION,
            FileKind::TokenCounts => COUNTS_VERSION,
            FileKind::TokenIds => IDS_VERSION,
            FileKind::Current => CURRENT_VERSION,
        }
    }

    /// The oldest framed version of the kind this build still reads
    /// ([`decode`] takes any from it to [`FileKind::version`]): token-count
    /// files of version 2 (every document counted) read as they are.
    pub const fn oldest_framed(self) -> u16 {
        match self {
            FileKind::TokenCounts => 2,
            k => k.version(),
        }
    }

    /// A human name for the kind ("segment", "tag sidecar", ...).
    pub const fn name(self) -> &'static str {
        match self {
            FileKind::Segment => "segment",
            FileKind::Sidecar => "tag sidecar",
            FileKind::TokenCounts => "token-count file",
            FileKind::TokenIds => "token-id file",
            FileKind::Current => "CURRENT manifest",
        }
    }

    /// The kind whose magic `magic` is, if any.
    pub fn from_magic(magic: &[u8]) -> Option<FileKind> {
        FileKind::ALL.into_iter().find(|k| k.magic() == magic)
    }
}

impl std::fmt::Display for FileKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Magic of a segment (unchanged since format 1).
pub const SEGMENT_MAGIC: [u8; 8] = *b"CORPUSQL";
/// Magic of a tag sidecar (format 2 on; format 1 opened with [`v1::SIDECAR_MAGIC`]).
pub const SIDECAR_MAGIC: [u8; 8] = *b"CQLTAGSC";
/// Magic of a token-count file (format 2 on; format 1 opened with [`v1::COUNTS_MAGIC`]).
pub const COUNTS_MAGIC: [u8; 8] = *b"CQLTOKCT";
/// Magic of a token-id file (format 1 on).
pub const IDS_MAGIC: [u8; 8] = *b"CQLTOKID";
/// Magic of `CURRENT` (format 3 on; formats 1 and 2 opened with [`v1::CURRENT_MAGIC_V1`]
/// and [`v1::CURRENT_MAGIC_V2`]).
pub const CURRENT_MAGIC: [u8; 8] = *b"CQLCURNT";

/// The segment format version this build writes.
pub const SEGMENT_VERSION: u16 = 2;
/// The tag sidecar format version this build writes.
pub const SIDECAR_VERSION: u16 = 2;
/// The token-count file format version this build writes (3: a count of
/// `u32::MAX` marks a document not counted yet, for files that hold only
/// the documents a mixture selected).
pub const COUNTS_VERSION: u16 = 3;
/// The token-id file format version this build writes.
pub const IDS_VERSION: u16 = 1;
/// The `CURRENT` format version this build writes.
pub const CURRENT_VERSION: u16 = 3;

/// The segment format version this build writes (the corpus format version).
pub const FORMAT_VERSION: u32 = SEGMENT_VERSION as u32;
/// The newest segment format version this build reads.
pub const MAX_READ_VERSION: u32 = FORMAT_VERSION;

/// Frame header: magic (8) + format version `u16` (2) + reserved `u16` (2,
/// zero) + flags `u32` (4, zero). A format-1 segment header (magic, `u32`
/// version, `u32` flags) reads as the same fields.
pub const HEADER_LEN: usize = 16;
/// Offset of the format version inside the header.
pub const HEADER_VERSION_OFFSET: usize = 8;
/// Offset of the reserved `u16` inside the header (the high half of format
/// 1's `u32` version).
pub const HEADER_RESERVED_OFFSET: usize = HEADER_VERSION_OFFSET + 2;
/// Offset of the flags inside the header.
pub const HEADER_FLAGS_OFFSET: usize = HEADER_RESERVED_OFFSET + 2;

/// Frame trailer: payload length `u64` (8) + CRC32C `u32` of everything
/// before the trailer (4) + format version `u16` (2) + reserved `u16` (2,
/// zero) + magic (8).
pub const TRAILER_LEN: usize = 24;
/// Offset, inside the trailer, of the payload length.
pub const TRAILER_PAYLOAD_LEN: usize = 0;
/// Offset, inside the trailer, of the CRC32C.
pub const TRAILER_CRC: usize = TRAILER_PAYLOAD_LEN + 8;
/// Offset, inside the trailer, of the format version (repeated from the header).
pub const TRAILER_VERSION: usize = TRAILER_CRC + 4;
/// Offset, inside the trailer, of the reserved `u16`.
pub const TRAILER_RESERVED: usize = TRAILER_VERSION + 2;
/// Offset, inside the trailer, of the magic (repeated from the header).
pub const TRAILER_MAGIC: usize = TRAILER_RESERVED + 2;

/// A frame's payload, as [`decode`] and [`decode_whole`] found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The kind.
    pub kind: FileKind,
    /// The format version (always the kind's current one).
    pub version: u16,
    /// The bytes between header and trailer.
    pub payload: &'a [u8],
    /// The CRC32C the trailer stores (of the header and the payload).
    pub crc: u32,
}

/// What is wrong with a framed file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// Shorter than a header (and trailer).
    Short {
        /// The kind expected.
        kind: FileKind,
        /// The file's length.
        len: usize,
    },
    /// The magic is no corpusql file's.
    NotCorpusql {
        /// The kind expected.
        kind: FileKind,
        /// The first 8 bytes found.
        magic: [u8; 8],
    },
    /// The file is another kind of corpusql file.
    WrongKind {
        /// The kind expected.
        expected: FileKind,
        /// The kind found.
        found: FileKind,
    },
    /// Written by a newer format than this build reads.
    Future {
        /// The kind.
        kind: FileKind,
        /// The version in the file.
        found: u32,
        /// The newest version this build reads.
        supported: u32,
    },
    /// A version this framing does not define (0, or an older version that
    /// had another layout and was not recognised as such).
    BadVersion {
        /// The kind.
        kind: FileKind,
        /// The version in the file.
        found: u32,
    },
    /// Header flags this version does not define.
    Flags {
        /// The flags.
        flags: u32,
        /// The version in the header.
        version: u32,
    },
    /// No trailer: truncated, or never finished.
    Incomplete,
    /// The trailer disagrees with the header on the version.
    VersionMismatch {
        /// The header's version.
        header: u16,
        /// The trailer's version (and reserved half).
        trailer: u32,
    },
    /// The trailer's payload length is not what the file holds.
    Length {
        /// The length the trailer states.
        stored: u64,
        /// The payload bytes the file holds.
        actual: u64,
    },
    /// The CRC32C does not match.
    Checksum {
        /// The CRC32C the trailer stores.
        stored: u32,
        /// The CRC32C of the bytes.
        computed: u32,
    },
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Short { kind, len } => write!(
                f,
                "file is {len} bytes, shorter than a {kind}'s header and trailer (truncated)"
            ),
            FrameError::NotCorpusql { kind, magic } => write!(
                f,
                "not a corpusql {kind} (bad magic \"{}\")",
                magic.escape_ascii()
            ),
            FrameError::WrongKind { expected, found } => write!(
                f,
                "this is a corpusql {found} (magic \"{}\"), not a {expected}",
                found.magic().escape_ascii()
            ),
            FrameError::Future {
                kind,
                found,
                supported,
            } => write!(
                f,
                "{kind} written by format version {found}; this corpusql reads up to {supported}: upgrade corpusql or re-ingest"
            ),
            FrameError::BadVersion { kind, found } => {
                write!(f, "unknown {kind} format version {found}")
            }
            FrameError::Flags { flags, version } => write!(
                f,
                "unknown header flags {flags:#x} (format v{version} defines none)"
            ),
            FrameError::Incomplete => {
                f.write_str("trailer missing: the file is truncated or was never finished")
            }
            FrameError::VersionMismatch { header, trailer } => {
                write!(f, "header says version {header}, trailer {trailer}")
            }
            FrameError::Length { stored, actual } => write!(
                f,
                "trailer says {stored} payload bytes, the file holds {actual} (truncated or extended)"
            ),
            FrameError::Checksum { stored, computed } => write!(
                f,
                "checksum mismatch (stored {stored:08x}, computed {computed:08x})"
            ),
        }
    }
}

impl std::error::Error for FrameError {}

impl FrameError {
    /// The library error for this problem in file `path`: [`Error::Version`]
    /// for a newer format ("upgrade corpusql or re-ingest"), else
    /// [`Error::Corrupt`].
    pub fn into_error(self, path: &Path) -> Error {
        match self {
            FrameError::Future {
                found, supported, ..
            } => Error::Version {
                path: path.into(),
                found,
                supported,
            },
            e => Error::corrupt(path, e.to_string()),
        }
    }
}

fn le_u16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(x)
}

/// The header of a new file of `kind` (current version, no flags).
pub fn header(kind: FileKind) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(&kind.magic());
    h[HEADER_VERSION_OFFSET..HEADER_VERSION_OFFSET + 2]
        .copy_from_slice(&kind.version().to_le_bytes());
    h
}

/// The trailer closing a file of `kind` whose payload is `payload_len`
/// bytes and whose header and payload have CRC32C `crc`.
pub fn trailer(kind: FileKind, payload_len: u64, crc: u32) -> [u8; TRAILER_LEN] {
    let mut t = [0u8; TRAILER_LEN];
    t[TRAILER_PAYLOAD_LEN..TRAILER_CRC].copy_from_slice(&payload_len.to_le_bytes());
    t[TRAILER_CRC..TRAILER_VERSION].copy_from_slice(&crc.to_le_bytes());
    t[TRAILER_VERSION..TRAILER_RESERVED].copy_from_slice(&kind.version().to_le_bytes());
    t[TRAILER_MAGIC..].copy_from_slice(&kind.magic());
    t
}

/// Frames `payload` as a file of `kind`: header, payload, trailer.
pub fn encode(kind: FileKind, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len() + TRAILER_LEN);
    out.extend_from_slice(&header(kind));
    out.extend_from_slice(payload);
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&trailer(kind, payload.len() as u64, crc));
    out
}

/// Checks the header of a file of `kind` and returns its format version.
/// A version newer than this build's is [`FrameError::Future`]; an older one
/// is returned as it is (the caller reads older layouts, or refuses them).
pub fn check_header(kind: FileKind, bytes: &[u8]) -> Result<u16, FrameError> {
    if bytes.len() < HEADER_LEN {
        return Err(FrameError::Short {
            kind,
            len: bytes.len(),
        });
    }
    let mut magic = [0u8; 8];
    magic.copy_from_slice(&bytes[..8]);
    if magic != kind.magic() {
        return Err(match FileKind::from_magic(&magic) {
            Some(found) => FrameError::WrongKind {
                expected: kind,
                found,
            },
            None => FrameError::NotCorpusql { kind, magic },
        });
    }
    // Read as format 1's u32, so that any version above this build's,
    // reserved half included, is reported as a newer format.
    let version = le_u32(bytes, HEADER_VERSION_OFFSET);
    if version > kind.version() as u32 {
        return Err(FrameError::Future {
            kind,
            found: version,
            supported: kind.version() as u32,
        });
    }
    if version == 0 {
        return Err(FrameError::BadVersion { kind, found: 0 });
    }
    let flags = le_u32(bytes, HEADER_FLAGS_OFFSET);
    if flags != 0 {
        return Err(FrameError::Flags { flags, version });
    }
    Ok(le_u16(bytes, HEADER_VERSION_OFFSET))
}

/// Checks the header and trailer of a whole file of `kind` at a version it
/// reads (the current one, or from [`FileKind::oldest_framed`]; not the
/// CRC32C: see [`decode_whole`]) and returns its payload.
pub fn decode(kind: FileKind, bytes: &[u8]) -> Result<Frame<'_>, FrameError> {
    let version = check_header(kind, bytes)?;
    if version < kind.oldest_framed() || version > kind.version() {
        return Err(FrameError::BadVersion {
            kind,
            found: version as u32,
        });
    }
    let n = bytes.len();
    if n < HEADER_LEN + TRAILER_LEN {
        return Err(FrameError::Short { kind, len: n });
    }
    let t = &bytes[n - TRAILER_LEN..];
    if t[TRAILER_MAGIC..] != kind.magic() {
        return Err(FrameError::Incomplete);
    }
    let tversion = le_u32(t, TRAILER_VERSION);
    if tversion != version as u32 {
        return Err(FrameError::VersionMismatch {
            header: version,
            trailer: tversion,
        });
    }
    let stored = le_u64(t, TRAILER_PAYLOAD_LEN);
    let actual = (n - HEADER_LEN - TRAILER_LEN) as u64;
    if stored != actual {
        return Err(FrameError::Length { stored, actual });
    }
    Ok(Frame {
        kind,
        version,
        payload: &bytes[HEADER_LEN..n - TRAILER_LEN],
        crc: le_u32(t, TRAILER_CRC),
    })
}

/// [`decode`], then checks the CRC32C of everything before the trailer.
pub fn decode_whole(kind: FileKind, bytes: &[u8]) -> Result<Frame<'_>, FrameError> {
    let frame = decode(kind, bytes)?;
    let computed = crc32c::crc32c(&bytes[..bytes.len() - TRAILER_LEN]);
    if computed != frame.crc {
        return Err(FrameError::Checksum {
            stored: frame.crc,
            computed,
        });
    }
    Ok(frame)
}

/// The CRC32C of `bytes[..end]` computed from `parts`, ranges `(offset,
/// len, crc)` whose CRC32C is known already (a segment's sections, a
/// sidecar's columns), without reading them, and the bytes around them; to
/// compare with a trailer's CRC32C when the parts are too big to read on
/// open. `None` when parts overlap or end past `end`.
pub fn crc_from_parts(bytes: &[u8], end: usize, parts: &mut [(u64, u64, u32)]) -> Option<u32> {
    if end > bytes.len() {
        return None;
    }
    parts.sort_unstable_by_key(|p| p.0);
    let mut crc = 0;
    let mut at = 0u64;
    for &(offset, len, part_crc) in parts.iter() {
        let part_end = offset.checked_add(len)?;
        if offset < at || part_end > end as u64 {
            return None;
        }
        crc = crc32c::crc32c_append(crc, &bytes[at as usize..offset as usize]);
        crc = crc32c::crc32c_combine(crc, part_crc, len as usize);
        at = part_end;
    }
    Some(crc32c::crc32c_append(crc, &bytes[at as usize..end]))
}

/// The segment footer, inside the payload just before the trailer (format
/// 2), or the first 24 bytes of format 1's 32-byte footer: table offset (8)
/// + section count (4) + table CRC32C (4) + document count (8).
pub const SEGMENT_FOOTER_LEN: usize = 24;
/// Offset, inside the footer, of the section table's file offset.
pub const FOOTER_TABLE_OFFSET: usize = 0;
/// Offset, inside the footer, of the number of sections.
pub const FOOTER_SECTION_COUNT: usize = FOOTER_TABLE_OFFSET + 8;
/// Offset, inside the footer, of the section table's CRC32C.
pub const FOOTER_TABLE_CRC: usize = FOOTER_SECTION_COUNT + 4;
/// Offset, inside the footer, of the segment's document count.
pub const FOOTER_DOC_COUNT: usize = FOOTER_TABLE_CRC + 4;

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

/// The end of a tag sidecar's payload (format 2), after the column blobs
/// and the postcard `SidecarMeta`: the meta's length `u32` and CRC32C `u32`.
pub const SIDECAR_TAIL_LEN: usize = 8;

/// The layouts written before the common framing, still read: segment
/// format 1, tag sidecar format 1, token counts format 1 and `CURRENT`
/// formats 1 and 2.
pub mod v1 {
    /// Format-1 segment version (its header is a frame header; its footer is
    /// not a frame trailer).
    pub const SEGMENT_VERSION: u16 = 1;
    /// Format-1 segment footer: the 24-byte segment footer + format version
    /// `u32` + footer magic.
    pub const FOOTER_LEN: usize = 32;
    /// Offset, inside the format-1 footer, of the format version.
    pub const FOOTER_VERSION: usize = super::SEGMENT_FOOTER_LEN;
    /// Offset, inside the format-1 footer, of the footer magic.
    pub const FOOTER_MAGIC_OFFSET: usize = FOOTER_VERSION + 4;
    /// Magic closing a format-1 segment.
    pub const FOOTER_MAGIC: [u8; 4] = *b"CQSF";

    /// Magic opening a format-1 tag sidecar.
    pub const SIDECAR_MAGIC: [u8; 8] = *b"CQLTAG01";
    /// Magic closing a format-1 tag sidecar.
    pub const SIDECAR_FOOTER: [u8; 4] = *b"CQTF";
    /// Format-1 sidecar trailer: meta length `u32` + meta CRC32C `u32` + footer magic.
    pub const SIDECAR_TRAILER_LEN: usize = 12;

    /// Magic opening a format-1 token-count file.
    pub const COUNTS_MAGIC: [u8; 4] = *b"CQTC";
    /// The version a format-1 token-count file holds after its magic.
    pub const COUNTS_VERSION: u32 = 1;
    /// Format-1 token-count header: magic + version `u32` + count `u32`.
    pub const COUNTS_HEADER_LEN: usize = 12;

    /// Magic of a format-1 `CURRENT` (a bare `Manifest`).
    pub const CURRENT_MAGIC_V1: [u8; 8] = *b"CQLCUR01";
    /// Magic of a format-2 `CURRENT` (a `Manifest2`: tags, signals, license field).
    pub const CURRENT_MAGIC_V2: [u8; 8] = *b"CQLCUR02";
    /// Format-1 and -2 `CURRENT` header: magic + body length `u32` + body CRC32C `u32`.
    pub const CURRENT_HEADER_LEN: usize = 16;
}

/// The payload of a token-id file (`seg-*.ids-*.cqi`, format 1, read and
/// written by `src/token_ids.rs`): a fixed part, the tokenizer id, the
/// per-document counts, the chunk table, then the chunks. Offsets in the
/// fixed part are relative to the payload; chunk offsets are file offsets.
pub mod ids {
    /// Offset of the `u32` number of documents (the segment's `doc_count`).
    pub const DOCS: usize = 0;
    /// Offset of the `u32` number of chunks.
    pub const CHUNKS: usize = DOCS + 4;
    /// Offset of the `u8` id width in bytes: 2 (`u16` ids) or 4 (`u32` ids).
    pub const WIDTH: usize = CHUNKS + 4;
    /// Offset of a reserved `u8`, zero.
    pub const RESERVED: usize = WIDTH + 1;
    /// Offset of the `u16` length of the tokenizer id that follows the fixed part.
    pub const ID_LEN: usize = RESERVED + 1;
    /// Offset of the `u32` vocabulary size of the tokenizer (largest id + 1).
    pub const VOCAB: usize = ID_LEN + 2;
    /// Offset of the `u64` text bytes of the segment (a second identity check).
    pub const TEXT_BYTES: usize = VOCAB + 4;
    /// Offset of the `u64` number of ids stored (end-of-document ids excluded).
    pub const TOKENS: usize = TEXT_BYTES + 8;
    /// Length of the fixed part.
    pub const FIXED_LEN: usize = TOKENS + 8;

    /// Offset, inside a chunk entry, of the `u32` first document ordinal.
    pub const CHUNK_FIRST_DOC: usize = 0;
    /// Offset, inside a chunk entry, of the `u32` number of documents.
    pub const CHUNK_DOCS: usize = CHUNK_FIRST_DOC + 4;
    /// Offset, inside a chunk entry, of the `u64` file offset of the chunk.
    pub const CHUNK_OFFSET: usize = CHUNK_DOCS + 4;
    /// Offset, inside a chunk entry, of the `u32` compressed length.
    pub const CHUNK_LEN: usize = CHUNK_OFFSET + 8;
    /// Offset, inside a chunk entry, of the `u32` number of ids in the chunk.
    pub const CHUNK_TOKENS: usize = CHUNK_LEN + 4;
    /// Offset, inside a chunk entry, of the `u32` CRC32C of the compressed bytes.
    pub const CHUNK_CRC: usize = CHUNK_TOKENS + 4;
    /// Offset, inside a chunk entry, of a reserved `u32`, zero.
    pub const CHUNK_RESERVED: usize = CHUNK_CRC + 4;
    /// Length of a chunk entry.
    pub const CHUNK_ENTRY_LEN: usize = CHUNK_RESERVED + 4;

    /// The count of a document whose ids the file does not hold.
    pub const NOT_COVERED: u32 = u32::MAX;
    /// zstd level of the chunks (level 3: 10% smaller than level 1 on BPE
    /// ids, decoding as fast; see docs/decisions.md).
    pub const ZSTD_LEVEL: i32 = 3;
}

/// Version prefix of the postcard-encoded segment metadata.
pub const META_VERSION: u16 = 1;
/// Version of the catalog layout (stored in the catalog's `meta` table).
pub const CATALOG_VERSION: u32 = 1;

/// Separator between a field name and a value in the term dictionary.
pub const TERM_SEP: u8 = 0;

/// Appends the term dictionary's key of `value` in `field` to `out`:
/// `field TERM_SEP value`.
pub fn push_term_key(out: &mut Vec<u8>, field: &str, value: &str) {
    out.reserve(field.len() + value.len() + 1);
    out.extend_from_slice(field.as_bytes());
    out.push(TERM_SEP);
    out.extend_from_slice(value.as_bytes());
}

/// Default target uncompressed size of a document block.
pub const BLOCK_TARGET_BYTES: usize = 512 * 1024;
/// Default zstd level for blocks (level 1 compresses about twice as fast as
/// level 3 for 6% more bytes on the peers' corpus; see docs/decisions.md).
pub const ZSTD_LEVEL: i32 = 1;

/// Longest facet value that is indexed (longer values are rejected at ingest).
pub const MAX_FACET_VALUE_BYTES: usize = 4096;

/// Name of the built-in numeric field holding the UTF-8 length of `text`.
pub const BYTES_FIELD: &str = "bytes";

#[cfg(test)]
mod tests {
    use super::*;

    const PAYLOAD: &[u8] = b"a payload of some bytes \x00\x01\xff";

    #[test]
    fn magics_are_distinct_and_layout_adds_up() {
        for a in FileKind::ALL {
            assert_eq!(FileKind::from_magic(&a.magic()), Some(a));
            for b in FileKind::ALL {
                assert_eq!(a == b, a.magic() == b.magic());
            }
        }
        assert_eq!(HEADER_FLAGS_OFFSET + 4, HEADER_LEN);
        assert_eq!(TRAILER_MAGIC + 8, TRAILER_LEN);
        assert_eq!(FOOTER_DOC_COUNT + 8, SEGMENT_FOOTER_LEN);
        assert_eq!(v1::FOOTER_MAGIC_OFFSET + 4, v1::FOOTER_LEN);
        assert_eq!(ids::FIXED_LEN, 32);
        assert_eq!(ids::CHUNK_ENTRY_LEN, 32);
    }

    #[test]
    fn round_trip_every_kind() {
        for kind in FileKind::ALL {
            for payload in [&b""[..], PAYLOAD] {
                let b = encode(kind, payload);
                assert_eq!(b.len(), HEADER_LEN + payload.len() + TRAILER_LEN);
                assert_eq!(&b[..8], &kind.magic());
                assert_eq!(&b[b.len() - 8..], &kind.magic());
                let f = decode_whole(kind, &b).unwrap();
                assert_eq!(f.payload, payload);
                assert_eq!(f.version, kind.version());
                assert_eq!(f.kind, kind);
                assert_eq!(check_header(kind, &b), Ok(kind.version()));
            }
        }
    }

    #[test]
    fn every_truncation_is_refused() {
        for kind in FileKind::ALL {
            let b = encode(kind, PAYLOAD);
            for n in 0..b.len() {
                let e = decode(kind, &b[..n]).unwrap_err();
                assert!(
                    matches!(
                        e,
                        FrameError::Short { .. }
                            | FrameError::Incomplete
                            | FrameError::Length { .. }
                    ),
                    "{kind} cut at {n}: {e}"
                );
            }
            // Cut, then extended back to size with zeros or with a copy of the trailer.
            let mut cut = b[..b.len() - 5].to_vec();
            cut.extend_from_slice(&b[b.len() - TRAILER_LEN..]);
            assert!(matches!(decode(kind, &cut), Err(FrameError::Length { .. })));
        }
    }

    #[test]
    fn every_bit_flip_is_refused() {
        for kind in FileKind::ALL {
            let b = encode(kind, PAYLOAD);
            for at in 0..b.len() {
                for bit in 0..8 {
                    let mut bad = b.clone();
                    bad[at] ^= 1 << bit;
                    assert!(
                        decode_whole(kind, &bad).is_err(),
                        "{kind}: flip of bit {bit} at {at} not detected"
                    );
                }
            }
        }
    }

    #[test]
    fn wrong_kind_and_foreign_files_name_what_they_are() {
        let b = encode(FileKind::TokenCounts, PAYLOAD);
        let e = decode(FileKind::Sidecar, &b).unwrap_err();
        assert_eq!(
            e,
            FrameError::WrongKind {
                expected: FileKind::Sidecar,
                found: FileKind::TokenCounts
            }
        );
        let msg = e.to_string();
        assert!(
            msg.contains("token-count file") && msg.contains("not a tag sidecar"),
            "{msg}"
        );
        let e = decode(FileKind::Segment, b"{\"id\": 1, \"text\": \"x\"}\n").unwrap_err();
        assert!(matches!(e, FrameError::NotCorpusql { .. }), "{e}");
        assert!(e.to_string().contains("not a corpusql segment"), "{e}");
    }

    #[test]
    fn a_future_version_says_what_it_found_and_what_to_do() {
        for kind in FileKind::ALL {
            let mut b = encode(kind, PAYLOAD);
            let next = kind.version() + 1;
            b[HEADER_VERSION_OFFSET..HEADER_VERSION_OFFSET + 2]
                .copy_from_slice(&next.to_le_bytes());
            let e = decode_whole(kind, &b).unwrap_err();
            assert_eq!(
                e,
                FrameError::Future {
                    kind,
                    found: next as u32,
                    supported: kind.version() as u32
                }
            );
            let msg = e.clone().into_error(Path::new("x")).to_string();
            assert!(
                msg.contains(&format!("format version {next}"))
                    && msg.contains(&format!("reads up to {}", kind.version()))
                    && msg.contains("upgrade corpusql"),
                "{msg}"
            );
            // A newer format may change anything after the header: the
            // version is reported even when the rest does not parse.
            assert_eq!(decode(kind, &b[..HEADER_LEN]).unwrap_err(), e);
            // The reserved half of the version counts as a newer format too.
            let mut b = encode(kind, PAYLOAD);
            b[HEADER_RESERVED_OFFSET] = 1;
            assert!(matches!(decode(kind, &b), Err(FrameError::Future { .. })));
        }
    }

    #[test]
    fn flags_older_versions_and_version_mismatch_are_refused() {
        let mut b = encode(FileKind::Current, PAYLOAD);
        b[HEADER_FLAGS_OFFSET] = 1;
        assert!(matches!(
            decode(FileKind::Current, &b),
            Err(FrameError::Flags { flags: 1, .. })
        ));
        let mut b = encode(FileKind::Current, PAYLOAD);
        b[HEADER_VERSION_OFFSET] = 2;
        assert_eq!(check_header(FileKind::Current, &b), Ok(2));
        assert!(matches!(
            decode(FileKind::Current, &b),
            Err(FrameError::BadVersion { found: 2, .. })
        ));
        b[HEADER_VERSION_OFFSET] = 0;
        assert!(matches!(
            check_header(FileKind::Current, &b),
            Err(FrameError::BadVersion { found: 0, .. })
        ));
        let mut b = encode(FileKind::Segment, PAYLOAD);
        let t = b.len() - TRAILER_LEN;
        b[t + TRAILER_VERSION] = 1;
        assert!(matches!(
            decode(FileKind::Segment, &b),
            Err(FrameError::VersionMismatch {
                header: 2,
                trailer: 1
            })
        ));
    }

    #[test]
    fn crc_from_parts_equals_the_crc_of_the_bytes() {
        let b: Vec<u8> = (0..200u32).map(|i| (i * 37 % 251) as u8).collect();
        let part = |o: u64, l: u64| (o, l, crc32c::crc32c(&b[o as usize..(o + l) as usize]));
        let mut parts = [part(100, 50), part(16, 60), part(76, 0), part(150, 10)];
        assert_eq!(
            crc_from_parts(&b, 180, &mut parts),
            Some(crc32c::crc32c(&b[..180]))
        );
        assert_eq!(
            crc_from_parts(&b, 180, &mut []),
            Some(crc32c::crc32c(&b[..180]))
        );
        let mut overlap = [part(16, 60), part(70, 10)];
        assert_eq!(crc_from_parts(&b, 180, &mut overlap), None);
        let mut past = [part(170, 20)];
        assert_eq!(crc_from_parts(&b, 180, &mut past), None);
        let mut wrong = [(16, 60, 0)];
        assert_ne!(
            crc_from_parts(&b, 180, &mut wrong),
            Some(crc32c::crc32c(&b[..180]))
        );
    }

    #[test]
    fn a_format_1_segment_header_reads_as_a_frame_header() {
        let mut h = Vec::new();
        h.extend_from_slice(&SEGMENT_MAGIC);
        h.extend_from_slice(&1u32.to_le_bytes());
        h.extend_from_slice(&0u32.to_le_bytes());
        assert_eq!(check_header(FileKind::Segment, &h), Ok(1));
    }
}
