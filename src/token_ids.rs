//! Stored token ids: each document of a segment tokenized once and kept
//! beside the segment, so that streams, plans and exports with that
//! tokenizer read ids instead of tokenizing text (`corpusql tokenize
//! --tokenizer T --keep-ids`).
//!
//! One file per segment and tokenizer, `seg-{id:010}.ids-{tokenizer id}.cqi`
//! ([`ids_path`]), framed as [`FileKind::TokenIds`] and laid out as
//! [`format::ids`] says (`docs/format.md`, "Token-id sidecars"): a fixed
//! part naming the segment's document count, text bytes and the tokenizer;
//! the per-document token counts, uncompressed (text tokens plus one
//! end-of-document, [`format::ids::NOT_COVERED`] for a document whose ids
//! the file does not hold), so that plans and counts never decompress; a
//! chunk table; and the chunks, one per segment block, each the block's ids
//! (end-of-document ids not stored) as little-endian `u16` (vocabularies up
//! to 65,536 ids) or `u32`, compressed by zstd and checksummed by CRC32C.
//!
//! [`SegmentIds::open`] maps the file and checks everything but the chunks
//! (header, trailer, tables, and the frame CRC32C computed from the chunk
//! checksums without reading the chunks); each chunk's checksum is checked
//! the first time it is decoded. Decoded chunks are kept in a small cache
//! per thread (the last [`CACHE_CHUNKS`] chunks it decoded), so reading a
//! chunk's documents one after the other decompresses it once.
//!
//! The files are caches: written without the writers' `LOCK` (like the
//! token-count files, to a temporary name private to the process, then
//! renamed), recomputed when damaged, removed with their segment by orphan
//! collection, and carried by compaction (`carry`, called by
//! `maintain::compact`) for the documents it keeps.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use memmap2::Mmap;
use rayon::prelude::*;
use roaring::RoaringBitmap;
use serde::Serialize;

use crate::corpus::Corpus;
use crate::error::{Error, IoContext, Result};
use crate::format::{self, ids as layout, FileKind, FrameError};
use crate::segment::Segment;
use crate::tokenize::{counts_path, encode_counts, Tokenizer};

/// Decoded chunks each thread keeps (least recently used first out).
pub const CACHE_CHUNKS: usize = 4;

/// Path of the token-id sidecar of `segment_file` for `tokenizer_id`:
/// `dir/seg-{id:010}.ids-{tokenizer id}.cqi`, next to the segment (and to
/// its token-count file, [`counts_path`]).
pub fn ids_path(dir: &Path, segment_file: &str, tokenizer_id: &str) -> PathBuf {
    let stem = segment_file.strip_suffix(".cqs").unwrap_or(segment_file);
    dir.join(format!("{stem}.ids-{tokenizer_id}.cqi"))
}

/// The segment stem and tokenizer id of a token-id file name
/// (`seg-0000000001.ids-hf-0123456789abcdef.cqi` -> `("seg-0000000001",
/// "hf-0123456789abcdef")`), or `None` for another name.
pub fn parse_ids_name(name: &str) -> Option<(&str, &str)> {
    let rest = name.strip_suffix(".cqi")?;
    let (stem, tokenizer) = rest.split_once(".ids-")?;
    (stem.starts_with("seg-") && !stem.contains('.') && !tokenizer.is_empty())
        .then_some((stem, tokenizer))
}

/// The id width (bytes per stored id) for a vocabulary of `vocab` ids.
fn width_for(vocab: u32) -> u8 {
    if vocab <= 1 << 16 {
        2
    } else {
        4
    }
}

/// Largest output zstd can produce from `compressed` bytes (a 3-byte block
/// header can announce a 128 KiB run), to refuse absurd claims before
/// allocating.
fn zstd_max_output(compressed: u64) -> u64 {
    (compressed / 3 + 1) * (128 << 10)
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    b.get(at..at + 2)
        .map_or(0, |s| u16::from_le_bytes([s[0], s[1]]))
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8).map_or(0, |s| {
        u64::from_le_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]])
    })
}

/// [`crate::storage::write_file_atomic_private`] that removes its temporary
/// file when it fails (a full disk, an I/O error), so that a failed write
/// leaves nothing behind for orphan collection to find.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut f = crate::storage::AtomicFile::create_private(path)?;
    let tmp = f.tmp_path().to_path_buf();
    let r = f.write_all(bytes).at(&tmp).and_then(|()| f.commit());
    if r.is_err() {
        let _ = crate::storage::remove_file(&tmp);
    }
    r
}

/// One chunk, compressed and ready to be written.
struct EncodedChunk {
    first_doc: u32,
    docs: u32,
    tokens: u32,
    crc: u32,
    bytes: Vec<u8>,
}

/// Compresses the ids of documents `first_doc..first_doc + docs` (the
/// covered ones, back to back, without end-of-document ids).
fn encode_chunk(first_doc: u32, docs: u32, ids: &[u32], width: u8) -> Result<EncodedChunk> {
    let tokens = u32::try_from(ids.len())
        .map_err(|_| Error::Invalid(format!("{} token ids in one block", ids.len())))?;
    if ids.is_empty() {
        return Ok(EncodedChunk {
            first_doc,
            docs,
            tokens,
            crc: 0,
            bytes: Vec::new(),
        });
    }
    let mut raw = Vec::with_capacity(ids.len() * width as usize);
    if width == 2 {
        for &id in ids {
            let id = u16::try_from(id).map_err(|_| Error::TokenWidth {
                ids: u64::from(id) + 1,
            })?;
            raw.extend_from_slice(&id.to_le_bytes());
        }
    } else {
        for &id in ids {
            raw.extend_from_slice(&id.to_le_bytes());
        }
    }
    let bytes = zstd::bulk::compress(&raw, layout::ZSTD_LEVEL)
        .map_err(|e| Error::Invalid(format!("zstd compression of token ids: {e}")))?;
    Ok(EncodedChunk {
        first_doc,
        docs,
        tokens,
        crc: crc32c::crc32c(&bytes),
        bytes,
    })
}

/// What a token-id file says about itself (the fixed part and tables).
struct Head<'a> {
    tokenizer_id: &'a str,
    vocab: u32,
    width: u8,
    text_bytes: u64,
    counts: &'a [u32],
}

/// The bytes of a token-id file: frame header, payload (fixed part,
/// tokenizer id, counts, chunk table, chunks), frame trailer.
fn assemble(head: &Head<'_>, chunks: &[EncodedChunk]) -> Result<Vec<u8>> {
    let id = head.tokenizer_id.as_bytes();
    let id_len = u16::try_from(id.len())
        .map_err(|_| Error::Invalid(format!("tokenizer id of {} bytes", id.len())))?;
    let n = u32::try_from(head.counts.len())
        .map_err(|_| Error::Invalid("more than 2^32 documents in a segment".into()))?;
    let c =
        u32::try_from(chunks.len()).map_err(|_| Error::Invalid("more than 2^32 chunks".into()))?;
    let tables = layout::FIXED_LEN
        + id.len()
        + 4 * head.counts.len()
        + layout::CHUNK_ENTRY_LEN * chunks.len();
    let data: usize = chunks.iter().map(|c| c.bytes.len()).sum();
    let payload_len = tables + data;
    let tokens: u64 = chunks.iter().map(|c| u64::from(c.tokens)).sum();
    let mut out = Vec::with_capacity(format::HEADER_LEN + payload_len + format::TRAILER_LEN);
    out.extend_from_slice(&format::header(FileKind::TokenIds));
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(&c.to_le_bytes());
    out.push(head.width);
    out.push(0);
    out.extend_from_slice(&id_len.to_le_bytes());
    out.extend_from_slice(&head.vocab.to_le_bytes());
    out.extend_from_slice(&head.text_bytes.to_le_bytes());
    out.extend_from_slice(&tokens.to_le_bytes());
    out.extend_from_slice(id);
    for count in head.counts {
        out.extend_from_slice(&count.to_le_bytes());
    }
    let mut offset = (format::HEADER_LEN + tables) as u64;
    for ch in chunks {
        let len = u32::try_from(ch.bytes.len())
            .map_err(|_| Error::Invalid("a compressed chunk of 4 GiB or more".into()))?;
        out.extend_from_slice(&ch.first_doc.to_le_bytes());
        out.extend_from_slice(&ch.docs.to_le_bytes());
        out.extend_from_slice(&offset.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&ch.tokens.to_le_bytes());
        out.extend_from_slice(&ch.crc.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        offset += u64::from(len);
    }
    for ch in chunks {
        out.extend_from_slice(&ch.bytes);
    }
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&format::trailer(
        FileKind::TokenIds,
        payload_len as u64,
        crc,
    ));
    Ok(out)
}

/// Tokenizes the documents `docs` of `seg` (`None`: every document) with
/// `tok`, block by block in parallel (in the current rayon pool), calling
/// `progress` with the text bytes of each block's documents as they are
/// tokenized, and writes the token-id sidecar of segment file `file`
/// atomically (under a temporary name private to this process and call,
/// then renamed: ranks may write the same file at once, the last rename
/// wins). Returns the per-document token counts of the whole segment (text
/// tokens plus one end-of-document; `u32::MAX` for documents not covered).
pub fn write_segment_ids(
    dir: &Path,
    file: &str,
    seg: &Segment,
    tok: &Tokenizer,
    docs: Option<&RoaringBitmap>,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Vec<u32>> {
    write_ids(dir, file, seg, tok, docs, progress).map(|(counts, _)| counts)
}

/// [`write_segment_ids`], also returning the bytes written.
fn write_ids(
    dir: &Path,
    file: &str,
    seg: &Segment,
    tok: &Tokenizer,
    docs: Option<&RoaringBitmap>,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<(Vec<u32>, u64)> {
    let vocab = tok.vocab_size();
    let width = width_for(vocab);
    let per_block: Vec<(Vec<u32>, EncodedChunk)> = seg
        .blocks()
        .par_iter()
        .enumerate()
        .map(|(b, be)| {
            let covered = |i: u32| docs.is_none_or(|d| d.contains(be.first_doc + i));
            let mut counts = vec![layout::NOT_COVERED; be.docs as usize];
            let mut ids = Vec::new();
            if (0..be.docs).any(covered) {
                let block = seg.read_block(b)?;
                let mut text_bytes = 0u64;
                for i in 0..be.docs.min(block.len() as u32) {
                    if !covered(i) {
                        continue;
                    }
                    let text = block.text(i as usize);
                    let before = ids.len();
                    tok.encode(text, &mut ids)?;
                    counts[i as usize] = u32::try_from(ids.len() - before + 1).map_err(|_| {
                        Error::Invalid(format!("a document of {} tokens", ids.len() - before))
                    })?;
                    text_bytes += text.len() as u64;
                }
                progress(text_bytes);
            }
            let chunk = encode_chunk(be.first_doc, be.docs, &ids, width)?;
            Ok((counts, chunk))
        })
        .collect::<Result<_>>()?;
    let mut counts = Vec::with_capacity(seg.doc_count() as usize);
    let mut chunks = Vec::with_capacity(per_block.len());
    for (c, ch) in per_block {
        counts.extend(c);
        chunks.push(ch);
    }
    let id = tok.id();
    let bytes = assemble(
        &Head {
            tokenizer_id: &id,
            vocab,
            width,
            text_bytes: seg.meta().text_bytes,
            counts: &counts,
        },
        &chunks,
    )?;
    write_private(&ids_path(dir, file, &id), &bytes)?;
    Ok((counts, bytes.len() as u64))
}

/// A chunk-table entry, as checked on open.
#[derive(Debug, Clone, Copy)]
struct ChunkEntry {
    first_doc: u32,
    docs: u32,
    offset: usize,
    len: usize,
    tokens: u32,
    crc: u32,
}

/// A decoded chunk: its ids, and where each of its documents starts.
struct Decoded {
    ids: Vec<u32>,
    /// `starts[k]..starts[k + 1]`: the ids of the chunk's `k`-th document
    /// (empty when not covered).
    starts: Vec<u32>,
}

impl Decoded {
    fn doc(&self, k: usize) -> &[u32] {
        let (Some(&a), Some(&b)) = (self.starts.get(k), self.starts.get(k + 1)) else {
            return &[];
        };
        self.ids.get(a as usize..b as usize).unwrap_or(&[])
    }
}

thread_local! {
    /// Chunks this thread decoded last: (file instance, chunk, ids).
    static CACHE: RefCell<Vec<(u64, usize, Rc<Decoded>)>> = const { RefCell::new(Vec::new()) };
    /// This thread's zstd context and decompression buffer.
    static SCRATCH: RefCell<(Option<zstd::bulk::Decompressor<'static>>, Vec<u8>)> =
        const { RefCell::new((None, Vec::new())) };
}

/// Instance numbers of opened files, keying the per-thread cache.
static NEXT_UID: AtomicU64 = AtomicU64::new(0);

/// An opened token-id sidecar: memory-mapped, checked but for the chunks
/// (each checked on first decode), cheap to open, `Send + Sync` (share it
/// through an `Arc`).
pub struct SegmentIds {
    uid: u64,
    path: PathBuf,
    map: Mmap,
    tokenizer_id: String,
    docs: u32,
    covered: u32,
    width: u8,
    vocab: u32,
    tokens: u64,
    counts_at: usize,
    chunks: Vec<ChunkEntry>,
    verified: Vec<AtomicBool>,
}

impl std::fmt::Debug for SegmentIds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentIds")
            .field("path", &self.path)
            .field("tokenizer_id", &self.tokenizer_id)
            .field("docs", &self.docs)
            .field("covered", &self.covered)
            .field("width", &self.width)
            .field("tokens", &self.tokens)
            .field("chunks", &self.chunks.len())
            .finish()
    }
}

impl SegmentIds {
    /// Opens the token-id sidecar of segment `seg` (file `segment_file` in
    /// `dir`) for `tokenizer_id`: `None` when there is none. A damaged file
    /// is [`Error::Corrupt`] naming it ("delete it to recompute"), one of a
    /// newer format [`Error::Version`]; a file written for another segment
    /// (its document count or text bytes differ) or another tokenizer is
    /// refused as corrupt too.
    pub fn open(
        dir: &Path,
        segment_file: &str,
        seg: &Segment,
        tokenizer_id: &str,
    ) -> Result<Option<SegmentIds>> {
        let path = ids_path(dir, segment_file, tokenizer_id);
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(&path, e)),
        };
        let len = file.metadata().at(&path)?.len();
        if len < (format::HEADER_LEN + format::TRAILER_LEN) as u64 {
            return Err(Error::corrupt(
                &path,
                format!("token-id file of {len} bytes, shorter than its frame (truncated; delete it to recompute)"),
            ));
        }
        // SAFETY: token-id files are written to a temporary name and renamed
        // into place, never modified afterwards.
        let map = unsafe { Mmap::map(&file) }.at(&path)?;
        SegmentIds::parse(
            path,
            map,
            seg.doc_count(),
            seg.meta().text_bytes,
            tokenizer_id,
        )
        .map(Some)
    }

    fn parse(
        path: PathBuf,
        map: Mmap,
        want_docs: u32,
        want_text_bytes: u64,
        want_tokenizer: &str,
    ) -> Result<SegmentIds> {
        let bad = |d: String| {
            Error::corrupt(
                &path,
                format!("token-id file: {d} (delete it to recompute)"),
            )
        };
        let b: &[u8] = &map;
        let frame = format::decode(FileKind::TokenIds, b).map_err(|e| match e {
            FrameError::Future { .. } => e.into_error(&path),
            e => bad(e.to_string()),
        })?;
        let p = frame.payload;
        let base = format::HEADER_LEN;
        if p.len() < layout::FIXED_LEN {
            return Err(bad(format!(
                "payload of {} bytes, shorter than its fixed part",
                p.len()
            )));
        }
        let docs = u32_at(p, layout::DOCS);
        let nchunks = u32_at(p, layout::CHUNKS);
        let width = p[layout::WIDTH];
        let reserved = p[layout::RESERVED];
        let id_len = u16_at(p, layout::ID_LEN) as usize;
        let vocab = u32_at(p, layout::VOCAB);
        let text_bytes = u64_at(p, layout::TEXT_BYTES);
        let tokens = u64_at(p, layout::TOKENS);
        if width != 2 && width != 4 {
            return Err(bad(format!("id width {width} (2 or 4 expected)")));
        }
        if reserved != 0 {
            return Err(bad(format!("reserved byte is {reserved}, not 0")));
        }
        let id_at = layout::FIXED_LEN;
        let counts_at = id_at + id_len;
        let table_at = counts_at as u64 + 4 * u64::from(docs);
        let data_at = table_at + layout::CHUNK_ENTRY_LEN as u64 * u64::from(nchunks);
        if data_at > p.len() as u64 {
            return Err(bad(format!(
                "tables of {data_at} bytes in a payload of {} (truncated)",
                p.len()
            )));
        }
        let (table_at, data_at) = (table_at as usize, data_at as usize);
        let mut chunks = Vec::with_capacity(nchunks as usize);
        for i in 0..nchunks as usize {
            let e = table_at + i * layout::CHUNK_ENTRY_LEN;
            chunks.push(ChunkEntry {
                first_doc: u32_at(p, e + layout::CHUNK_FIRST_DOC),
                docs: u32_at(p, e + layout::CHUNK_DOCS),
                offset: usize::try_from(u64_at(p, e + layout::CHUNK_OFFSET)).unwrap_or(usize::MAX),
                len: u32_at(p, e + layout::CHUNK_LEN) as usize,
                tokens: u32_at(p, e + layout::CHUNK_TOKENS),
                crc: u32_at(p, e + layout::CHUNK_CRC),
            });
        }
        // The frame CRC32C from the chunks' checksums and the bytes around
        // them: checks the fixed part, the counts and the table without
        // reading the chunks.
        let end = b.len() - format::TRAILER_LEN;
        let mut parts: Vec<(u64, u64, u32)> = chunks
            .iter()
            .map(|c| (c.offset as u64, c.len as u64, c.crc))
            .collect();
        if chunks
            .iter()
            .any(|c| c.offset < base + data_at || c.offset.saturating_add(c.len) > end)
        {
            return Err(bad("a chunk lies outside the chunk area".into()));
        }
        match format::crc_from_parts(b, end, &mut parts) {
            None => return Err(bad("chunks overlap".into())),
            Some(crc) if crc != frame.crc => {
                return Err(bad(format!(
                    "checksum mismatch (stored {:08x}, computed {crc:08x})",
                    frame.crc
                )))
            }
            Some(_) => {}
        }
        let tokenizer_id = std::str::from_utf8(&p[id_at..counts_at])
            .map_err(|_| bad("tokenizer id is not UTF-8".into()))?;
        if docs != want_docs || text_bytes != want_text_bytes {
            return Err(Error::corrupt(
                &path,
                format!(
                    "token-id file is for another segment ({docs} documents, {text_bytes} text bytes; \
                     the segment has {want_docs} and {want_text_bytes}): delete it to recompute"
                ),
            ));
        }
        if tokenizer_id != want_tokenizer {
            return Err(bad(format!(
                "written for tokenizer {tokenizer_id}, not {want_tokenizer}"
            )));
        }
        // Chunks tile the ordinals in order; their token counts add up.
        let count = |ord: u32| u32_at(p, counts_at + 4 * ord as usize);
        let mut next = 0u64;
        let mut total = 0u64;
        let mut covered = 0u32;
        for (i, c) in chunks.iter().enumerate() {
            if u64::from(c.first_doc) != next || c.docs == 0 {
                return Err(bad(format!(
                    "chunk {i} covers documents {}+{}, expected to start at {next}",
                    c.first_doc, c.docs
                )));
            }
            next += u64::from(c.docs);
            if next > u64::from(docs) {
                return Err(bad(format!("chunk {i} ends past document {docs}")));
            }
            let mut sum = 0u64;
            for ord in c.first_doc..c.first_doc + c.docs {
                match count(ord) {
                    layout::NOT_COVERED => {}
                    0 => return Err(bad(format!("document {ord} has 0 tokens"))),
                    k => {
                        sum += u64::from(k - 1);
                        covered += 1;
                    }
                }
            }
            let raw = u64::from(c.tokens) * u64::from(width);
            if sum != u64::from(c.tokens)
                || (c.len == 0) != (c.tokens == 0)
                || raw > zstd_max_output(c.len as u64)
            {
                return Err(bad(format!(
                    "chunk {i} holds {} ids in {} bytes, its documents' counts say {sum}",
                    c.tokens, c.len
                )));
            }
            total += sum;
        }
        if next != u64::from(docs) {
            return Err(bad(format!(
                "chunks cover {next} documents, the file {docs}"
            )));
        }
        if total != tokens {
            return Err(bad(format!(
                "chunks hold {total} ids, the header says {tokens}"
            )));
        }
        let tokenizer_id = tokenizer_id.to_string();
        let verified = chunks.iter().map(|_| AtomicBool::new(false)).collect();
        Ok(SegmentIds {
            uid: NEXT_UID.fetch_add(1, Ordering::Relaxed),
            path,
            tokenizer_id,
            docs,
            covered,
            width,
            vocab,
            tokens,
            counts_at: base + counts_at,
            chunks,
            verified,
            map,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The tokenizer id the ids are of.
    pub fn tokenizer_id(&self) -> &str {
        &self.tokenizer_id
    }

    /// The vocabulary size of that tokenizer when the file was written.
    pub fn vocab_size(&self) -> u32 {
        self.vocab
    }

    /// Bytes per stored id: 2 or 4.
    pub fn width(&self) -> u8 {
        self.width
    }

    /// Documents of the segment (covered or not).
    pub fn doc_count(&self) -> u32 {
        self.docs
    }

    /// Documents whose ids the file holds.
    pub fn covered_count(&self) -> u32 {
        self.covered
    }

    /// Whether the file holds the ids of every document of the segment.
    pub fn is_complete(&self) -> bool {
        self.covered == self.docs
    }

    /// The documents whose ids the file holds.
    pub fn covered(&self) -> RoaringBitmap {
        (0..self.docs).filter(|&o| self.covers(o)).collect()
    }

    /// Ids stored (end-of-document ids not included).
    pub fn stored_tokens(&self) -> u64 {
        self.tokens
    }

    /// The file's size in bytes.
    pub fn file_len(&self) -> u64 {
        self.map.len() as u64
    }

    /// Whether the file holds the ids of document `ord`.
    pub fn covers(&self, ord: u32) -> bool {
        self.count(ord).is_some()
    }

    /// Tokens of document `ord` including the end-of-document id (`None`
    /// if not covered). Reads the uncompressed counts: no decompression.
    pub fn count(&self, ord: u32) -> Option<u32> {
        if ord >= self.docs {
            return None;
        }
        match u32_at(&self.map, self.counts_at + 4 * ord as usize) {
            layout::NOT_COVERED => None,
            c => Some(c),
        }
    }

    /// Per-document counts of the whole segment (`u32::MAX` where not
    /// covered), as [`crate::tokenize::segment_counts`] gives them.
    pub fn counts(&self) -> Vec<u32> {
        (0..self.docs)
            .map(|o| u32_at(&self.map, self.counts_at + 4 * o as usize))
            .collect()
    }

    fn chunk_of(&self, ord: u32) -> usize {
        self.chunks.partition_point(|c| c.first_doc + c.docs <= ord)
    }

    fn corrupt(&self, detail: String) -> Error {
        Error::corrupt(
            &self.path,
            format!("token-id file: {detail} (delete it to recompute)"),
        )
    }

    /// Decompresses chunk `i`, checking its checksum the first time.
    fn decode(&self, i: usize, reuse: Option<Decoded>) -> Result<Decoded> {
        let c = *self
            .chunks
            .get(i)
            .ok_or_else(|| self.corrupt(format!("no chunk {i}")))?;
        let bytes = self
            .map
            .get(c.offset..c.offset + c.len)
            .ok_or_else(|| self.corrupt(format!("chunk {i} lies outside the file")))?;
        if !self.verified[i].load(Ordering::Relaxed) {
            let crc = crc32c::crc32c(bytes);
            if crc != c.crc {
                return Err(self.corrupt(format!(
                    "chunk {i} checksum mismatch (stored {:08x}, computed {crc:08x})",
                    c.crc
                )));
            }
            self.verified[i].store(true, Ordering::Relaxed);
        }
        let (mut ids, mut starts) = match reuse {
            Some(d) => (d.ids, d.starts),
            None => (Vec::new(), Vec::new()),
        };
        ids.clear();
        starts.clear();
        let n = c.tokens as usize;
        if n > 0 {
            let raw_len = n * self.width as usize;
            SCRATCH.with(|s| -> Result<()> {
                let mut s = s.borrow_mut();
                let (dctx, raw) = &mut *s;
                if dctx.is_none() {
                    *dctx = Some(
                        zstd::bulk::Decompressor::new().map_err(|e| Error::io(&self.path, e))?,
                    );
                }
                let Some(dctx) = dctx.as_mut() else {
                    return Ok(());
                };
                raw.clear();
                raw.reserve(raw_len);
                let got = dctx
                    .decompress_to_buffer(bytes, raw)
                    .map_err(|e| self.corrupt(format!("chunk {i}: {e}")))?;
                if got != raw_len || raw.len() != raw_len {
                    return Err(self.corrupt(format!(
                        "chunk {i} decompressed to {got} bytes, not {raw_len}"
                    )));
                }
                ids.reserve(n);
                if self.width == 2 {
                    ids.extend(
                        raw.chunks_exact(2)
                            .map(|b| u32::from(u16::from_le_bytes([b[0], b[1]]))),
                    );
                } else {
                    ids.extend(
                        raw.chunks_exact(4)
                            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                    );
                }
                Ok(())
            })?;
        }
        starts.reserve(c.docs as usize + 1);
        let mut at = 0u32;
        for ord in c.first_doc..c.first_doc + c.docs {
            starts.push(at);
            if let Some(k) = self.count(ord) {
                at += k - 1;
            }
        }
        starts.push(at);
        if at as usize != ids.len() {
            return Err(self.corrupt(format!(
                "chunk {i} holds {} ids, its documents' counts say {at}",
                ids.len()
            )));
        }
        Ok(Decoded { ids, starts })
    }

    /// Chunk `i` decoded, from this thread's cache or decompressed into it.
    fn decoded(&self, i: usize) -> Result<Rc<Decoded>> {
        let hit = CACHE.with(|c| {
            let mut c = c.borrow_mut();
            let at = c.iter().position(|e| e.0 == self.uid && e.1 == i)?;
            let e = c.remove(at);
            let d = e.2.clone();
            c.insert(0, e);
            Some(d)
        });
        if let Some(d) = hit {
            return Ok(d);
        }
        // Reuse the buffers of the entry about to be evicted when no one
        // holds it any more.
        let reuse = CACHE.with(|c| {
            let mut c = c.borrow_mut();
            if c.len() >= CACHE_CHUNKS {
                c.pop().and_then(|e| Rc::try_unwrap(e.2).ok())
            } else {
                None
            }
        });
        let d = Rc::new(self.decode(i, reuse)?);
        CACHE.with(|c| {
            let mut c = c.borrow_mut();
            c.insert(0, (self.uid, i, d.clone()));
            c.truncate(CACHE_CHUNKS);
        });
        Ok(d)
    }

    /// Appends document `ord`'s ids (without end-of-document) to `out`;
    /// `Ok(false)` if the file does not hold them.
    pub(crate) fn read_raw(&self, ord: u32, out: &mut Vec<u32>) -> Result<bool> {
        if !self.covers(ord) {
            return Ok(false);
        }
        let i = self.chunk_of(ord);
        let d = self.decoded(i)?;
        let first = self.chunks.get(i).map_or(0, |c| c.first_doc);
        out.extend_from_slice(d.doc((ord - first) as usize));
        Ok(true)
    }

    /// Appends document `ord`'s ids followed by `eos` to `out`; `Ok(false)`
    /// (and nothing appended) if the file does not hold them. Checks the
    /// chunk's checksum on its first decode (a mismatch is
    /// [`Error::Corrupt`] naming the file).
    pub fn read(&self, ord: u32, eos: u32, out: &mut Vec<u32>) -> Result<bool> {
        let held = self.read_raw(ord, out)?;
        if held {
            out.push(eos);
        }
        Ok(held)
    }

    /// Pushes to `out` one vector per ordinal of `ords`, in order: the
    /// document's ids followed by `eos`, or an empty vector for a document
    /// the file does not hold. Consecutive ordinals of one chunk share one
    /// decompression (and the per-thread cache lookup).
    pub fn read_many(&self, ords: &[u32], eos: u32, out: &mut Vec<Vec<u32>>) -> Result<()> {
        let mut cur: Option<(usize, Rc<Decoded>)> = None;
        for &ord in ords {
            let Some(count) = self.count(ord) else {
                out.push(Vec::new());
                continue;
            };
            let i = self.chunk_of(ord);
            let d = match &cur {
                Some((j, d)) if *j == i => d.clone(),
                _ => {
                    let d = self.decoded(i)?;
                    cur = Some((i, d.clone()));
                    d
                }
            };
            let first = self.chunks.get(i).map_or(0, |c| c.first_doc);
            let mut v = Vec::with_capacity(count as usize);
            v.extend_from_slice(d.doc((ord - first) as usize));
            v.push(eos);
            out.push(v);
        }
        Ok(())
    }

    /// Checks every chunk: checksum, decompression, size. Returns the ids
    /// checked.
    pub fn verify(&self) -> Result<u64> {
        for v in &self.verified {
            v.store(false, Ordering::Relaxed);
        }
        let mut reuse = None;
        let mut n = 0;
        for i in 0..self.chunks.len() {
            let d = self.decode(i, reuse.take())?;
            n += d.ids.len() as u64;
            reuse = Some(d);
        }
        Ok(n)
    }
}

/// What [`keep_ids`] did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct KeepIdsReport {
    /// The tokenizer id.
    pub tokenizer: String,
    /// Segments of the corpus.
    pub segments: usize,
    /// Segments whose token-id file was written now.
    pub written: usize,
    /// Segments whose token-id file held every document already.
    pub kept: usize,
    /// Live documents.
    pub documents: u64,
    /// Tokens of the live documents (end-of-document ids included).
    pub tokens: u64,
    /// Bytes written (token-id and token-count files).
    pub bytes_written: u64,
    /// Bytes of the token-id files of the corpus for this tokenizer, after.
    pub ids_bytes: u64,
}

/// Keeps the token ids of every document of `corpus` for `tok`: writes the
/// token-id file of each segment that lacks a complete one (a damaged one
/// is rewritten), and the token-count file beside it (not for the byte
/// tokenizer, whose counts come from the segment), tokenizing each document
/// once. `progress` gets the text bytes tokenized, or a segment's text
/// bytes at once when its ids were kept already.
pub fn keep_ids(
    corpus: &Corpus,
    tok: &Tokenizer,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<KeepIdsReport> {
    let id = tok.id();
    let mut r = KeepIdsReport {
        tokenizer: id.clone(),
        segments: corpus.segments().len(),
        ..Default::default()
    };
    for s in corpus.segments() {
        let (dir, file, seg) = (corpus.dir(), s.entry.file.as_str(), &*s.segment);
        let existing = match SegmentIds::open(dir, file, seg, &id) {
            Ok(x) => x,
            Err(Error::Corrupt { .. }) => None,
            Err(e) => return Err(e),
        };
        let (counts, fresh) = match existing {
            Some(ids) if ids.is_complete() => {
                progress(seg.meta().text_bytes);
                r.kept += 1;
                r.ids_bytes += ids.file_len();
                (ids.counts(), false)
            }
            _ => {
                let (counts, bytes) = write_ids(dir, file, seg, tok, None, progress)?;
                r.written += 1;
                r.bytes_written += bytes;
                r.ids_bytes += bytes;
                (counts, true)
            }
        };
        if !matches!(tok, Tokenizer::Bytes) {
            let cp = counts_path(dir, file, &id);
            if fresh || !cp.exists() {
                let b = encode_counts(&counts);
                write_private(&cp, &b)?;
                r.bytes_written += b.len() as u64;
            }
        }
        r.documents += s.live.len();
        r.tokens += s
            .live
            .iter()
            .map(|o| counts.get(o as usize).map_or(0, |&c| u64::from(c)))
            .sum::<u64>();
    }
    Ok(r)
}

/// The token-id files of the segments being compacted, by tokenizer id:
/// one entry per part (`None` where that segment has none, or a damaged
/// one, whose documents then stay uncovered).
pub(crate) type CarrySources = BTreeMap<String, Vec<Option<SegmentIds>>>;

/// Finds and opens the token-id files of the segments of `parts`.
pub(crate) fn carry_sources(
    dir: &Path,
    parts: &[(std::sync::Arc<Segment>, RoaringBitmap)],
) -> Result<CarrySources> {
    let files: Vec<String> = parts
        .iter()
        .map(|(s, _)| {
            s.path()
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    let mut tokenizers = std::collections::BTreeSet::new();
    for e in std::fs::read_dir(dir).at(dir)? {
        let e = e.at(dir)?;
        let name = e.file_name();
        let Some((stem, tokenizer)) = name.to_str().and_then(parse_ids_name) else {
            continue;
        };
        if files.iter().any(|f| f.strip_suffix(".cqs") == Some(stem)) {
            tokenizers.insert(tokenizer.to_string());
        }
    }
    let mut out = CarrySources::new();
    for t in tokenizers {
        let opened = parts
            .iter()
            .zip(&files)
            .map(|((seg, _), f)| SegmentIds::open(dir, f, seg, &t).ok().flatten())
            .collect();
        out.insert(t, opened);
    }
    Ok(out)
}

/// Writes the token-id files of `seg`, a segment compaction just wrote as
/// `file`, from the old segments' (`sources`): document `new_ord[i]` of the
/// new segment is document `origin[i].1` of part `origin[i].0`. Documents
/// an old file did not hold (or could not be read from) stay uncovered; a
/// tokenizer none of whose sources holds a document of `seg` gets no file.
/// A complete file also gets its token-count file. Each path written is
/// pushed to `written` at once, for the caller to remove on failure.
pub(crate) fn carry(
    dir: &Path,
    file: &str,
    seg: &Segment,
    origin: &[(usize, u32)],
    new_ord: &[u32],
    sources: &CarrySources,
    written: &mut Vec<PathBuf>,
) -> Result<()> {
    let n = seg.doc_count() as usize;
    let mut from: Vec<Option<(usize, u32)>> = vec![None; n];
    for (&o, &to) in origin.iter().zip(new_ord) {
        if let Some(slot) = from.get_mut(to as usize) {
            *slot = Some(o);
        }
    }
    for (tokenizer, srcs) in sources {
        let present = |p: usize| srcs.get(p).and_then(|s| s.as_ref());
        if !origin
            .iter()
            .any(|&(p, o)| present(p).is_some_and(|s| s.covers(o)))
        {
            continue;
        }
        let vocab = srcs
            .iter()
            .flatten()
            .map(|s| s.vocab_size())
            .max()
            .unwrap_or(0);
        let width = srcs.iter().flatten().map(|s| s.width()).max().unwrap_or(2);
        let width = width.max(width_for(vocab));
        let mut counts = vec![layout::NOT_COVERED; n];
        let mut chunks = Vec::with_capacity(seg.blocks().len());
        let mut ids = Vec::new();
        for be in seg.blocks() {
            ids.clear();
            for ord in be.first_doc..be.first_doc + be.docs {
                let Some(Some((p, o))) = from.get(ord as usize) else {
                    continue;
                };
                let Some(src) = present(*p) else { continue };
                let before = ids.len();
                match src.read_raw(*o, &mut ids) {
                    Ok(true) => {
                        if let Some(c) = counts.get_mut(ord as usize) {
                            *c = (ids.len() - before + 1) as u32;
                        }
                    }
                    Ok(false) | Err(_) => ids.truncate(before),
                }
            }
            chunks.push(encode_chunk(be.first_doc, be.docs, &ids, width)?);
        }
        let bytes = assemble(
            &Head {
                tokenizer_id: tokenizer,
                vocab,
                width,
                text_bytes: seg.meta().text_bytes,
                counts: &counts,
            },
            &chunks,
        )?;
        let path = ids_path(dir, file, tokenizer);
        written.push(path.clone());
        write_private(&path, &bytes)?;
        if tokenizer != "bytes" && counts.iter().all(|&c| c != layout::NOT_COVERED) {
            let cp = counts_path(dir, file, tokenizer);
            written.push(cp.clone());
            write_private(&cp, &encode_counts(&counts))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let p = ids_path(Path::new("/c"), "seg-0000000007.cqs", "hf-00ff+redact-pii");
        assert_eq!(p, Path::new("/c/seg-0000000007.ids-hf-00ff+redact-pii.cqi"));
        let name = p.file_name().unwrap().to_str().unwrap();
        assert_eq!(
            parse_ids_name(name),
            Some(("seg-0000000007", "hf-00ff+redact-pii"))
        );
        assert_eq!(parse_ids_name("seg-0000000007.ids-x.cqi.1-2.tmp"), None);
        assert_eq!(parse_ids_name("seg-0000000007.tok-x.cqc"), None);
        assert_eq!(parse_ids_name("seg-0000000007.ids-.cqi"), None);
    }

    #[test]
    fn chunks_round_trip_at_both_widths() {
        for (width, ids) in [
            (2u8, vec![0u32, 1, 65535, 7, 7, 7]),
            (4, vec![0, 1 << 20, u32::MAX - 1, 3]),
            (2, vec![]),
        ] {
            let c = encode_chunk(0, 1, &ids, width).unwrap();
            assert_eq!(c.tokens as usize, ids.len());
            assert_eq!(c.bytes.is_empty(), ids.is_empty());
        }
        assert!(matches!(
            encode_chunk(0, 1, &[65536], 2),
            Err(Error::TokenWidth { ids: 65537 })
        ));
        assert_eq!(width_for(257), 2);
        assert_eq!(width_for(65536), 2);
        assert_eq!(width_for(65537), 4);
    }
}
