//! Opens a segment file (memory-mapped), checks its frame (magic, version,
//! trailer), section table and checksums, and answers lookups: keys, terms,
//! postings, numeric columns and blocks. Only blocks are decompressed on
//! demand; each carries its own CRC32C, checked before decompression.
//! Format 1 segments (no frame trailer, a `CQSF` footer) are read as well.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use fst::{Automaton, IntoStreamer, Streamer};
use memmap2::Mmap;
use roaring::RoaringBitmap;

use crate::error::{Error, IoContext, Result};
use crate::format::{self, section, v1, FileKind};
use crate::segment::overlay::{self, Overlay};
use crate::segment::{Block, FieldMeta, NumericMeta, SegmentMeta};

/// A byte range of the mapped file that `fst` can read from.
#[derive(Clone)]
pub struct MappedSlice {
    map: Arc<Mmap>,
    start: usize,
    end: usize,
}

impl AsRef<[u8]> for MappedSlice {
    fn as_ref(&self) -> &[u8] {
        &self.map[self.start..self.end]
    }
}

/// Location of one block.
#[derive(Debug, Clone, Copy)]
pub struct BlockEntry {
    /// File offset of the compressed bytes.
    pub offset: u64,
    /// Compressed length.
    pub len: u32,
    /// Uncompressed length.
    pub raw_len: u32,
    /// Ordinal of the block's first document.
    pub first_doc: u32,
    /// Documents in the block.
    pub docs: u32,
    /// CRC32C of the compressed bytes.
    pub crc: u32,
}

/// One entry of the section table.
#[derive(Debug, Clone, Copy)]
pub struct SectionEntry {
    /// Section id ([`format::section`]).
    pub id: u32,
    /// File offset.
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
    /// CRC32C of the section's bytes.
    pub crc: u32,
}

/// An open, checked segment.
pub struct Segment {
    path: PathBuf,
    map: Arc<Mmap>,
    version: u16,
    /// The frame trailer's CRC32C of everything before it (format 2 on).
    frame_crc: Option<u32>,
    sections: Vec<SectionEntry>,
    blocks: Vec<BlockEntry>,
    keys: fst::Map<MappedSlice>,
    terms: fst::Map<MappedSlice>,
    meta: SegmentMeta,
    numeric_cache: Vec<OnceLock<Arc<Vec<f64>>>>,
    overlay: Overlay,
    /// Blocks fetched on first read (a segment in the node-local mirror of
    /// a corpus at a URI, see [`crate::remote`]).
    lazy: Option<LazyBlocks>,
}

/// A segment file in a mirror whose blocks are fetched from object storage
/// on first read: `seg-N.cqs.lazy` (JSON: where the object is) and
/// `seg-N.cqs.present` (one byte per block, 1 once the block's bytes are in
/// the file; shared by the processes of a node through a shared mapping).
/// Everything but the BLOCKS section is in the file from the start.
struct LazyBlocks {
    source: crate::remote::LazySource,
    state: Mutex<LazyState>,
    file: File,
    /// The presence file: its modification time says when the segment was
    /// last fetched from (what a bounded cache evicts by).
    present_file: File,
}

/// The presence bytes, and the read-ahead of the last miss.
struct LazyState {
    present: memmap2::MmapMut,
    /// The block after the last fetch: a miss there is a sequential read.
    next: usize,
    /// Bytes the next sequential miss fetches.
    window: u64,
}

/// The most bytes one request fetches (read-ahead of a scan, a run of
/// blocks a selection needs).
const READ_AHEAD: u64 = 8 << 20;
/// Needed blocks at most this far apart are fetched by one request (the
/// bytes between cost less than another round trip).
const GAP: u64 = 256 << 10;

impl LazyBlocks {
    fn open(path: &Path, blocks: usize) -> Result<Option<LazyBlocks>> {
        let mut side = path.as_os_str().to_owned();
        side.push(".lazy");
        let side = PathBuf::from(side);
        let bytes = match std::fs::read(&side) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(&side, e)),
        };
        let source: crate::remote::LazySource = serde_json::from_slice(&bytes)
            .map_err(|e| Error::corrupt(&side, format!("unreadable ({e})")))?;
        let mut pp = path.as_os_str().to_owned();
        pp.push(".present");
        let present_path = PathBuf::from(pp);
        let pf = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&present_path)
            .at(&present_path)?;
        if pf.metadata().at(&present_path)?.len() != blocks as u64 {
            return Err(Error::corrupt(
                &present_path,
                format!("not {blocks} bytes, one per block"),
            ));
        }
        // SAFETY: the presence file is only ever written one byte at a time
        // with 0 -> 1 (a block's bytes are in the segment file); a torn or
        // stale read makes a reader fetch a block again, never skip one.
        let present = unsafe { memmap2::MmapMut::map_mut(&pf) }.at(&present_path)?;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .at(path)?;
        Ok(Some(LazyBlocks {
            source,
            state: Mutex::new(LazyState {
                present,
                next: usize::MAX,
                window: 0,
            }),
            file,
            present_file: pf,
        }))
    }

    fn lock(&self, path: &Path) -> Result<std::sync::MutexGuard<'_, LazyState>> {
        self.state
            .lock()
            .map_err(|_| Error::Invalid(format!("{}: a reader panicked", path.display())))
    }

    /// Fetches blocks `i..j` with one range request and marks them present.
    fn fetch(
        &self,
        st: &mut LazyState,
        i: usize,
        j: usize,
        blocks: &[BlockEntry],
        path: &Path,
    ) -> Result<()> {
        let start = blocks[i].offset;
        let end = blocks[j - 1].offset + blocks[j - 1].len as u64;
        let bytes = crate::remote::fetch_range(&self.source, start, end - start)?;
        use std::os::unix::fs::FileExt;
        self.file.write_all_at(&bytes, start).at(path)?;
        for p in st.present[i..j].iter_mut() {
            *p = 1;
        }
        let _ = self.present_file.set_modified(std::time::SystemTime::now());
        Ok(())
    }

    /// Makes block `i`'s bytes present in the file. A miss right after the
    /// previous fetch is a scan: it fetches the missing blocks ahead too,
    /// twice as many bytes each time (up to [`READ_AHEAD`]); any other miss
    /// fetches the block alone.
    fn ensure(&self, i: usize, blocks: &[BlockEntry], path: &Path) -> Result<()> {
        let mut st = self.lock(path)?;
        if st.present[i] != 0 {
            return Ok(());
        }
        st.window = if i == st.next {
            (st.window * 2).clamp(GAP, READ_AHEAD)
        } else {
            0
        };
        let start = blocks[i].offset;
        let mut j = i + 1;
        while j < blocks.len()
            && st.present[j] == 0
            && blocks[j].offset + blocks[j].len as u64 - start <= st.window
        {
            j += 1;
        }
        st.next = j;
        self.fetch(&mut st, i, j, blocks, path)
    }

    /// Fetches block `i` again, present or not.
    fn refetch(&self, i: usize, blocks: &[BlockEntry], path: &Path) -> Result<()> {
        let mut st = self.lock(path)?;
        self.fetch(&mut st, i, i + 1, blocks, path)
    }

    /// Fetches the missing blocks among `wanted` (ascending), runs of them
    /// at most [`GAP`] apart in one request of at most [`READ_AHEAD`].
    fn prefetch(&self, wanted: &[usize], blocks: &[BlockEntry], path: &Path) -> Result<()> {
        let mut st = self.lock(path)?;
        let missing: Vec<usize> = wanted
            .iter()
            .copied()
            .filter(|&b| b < blocks.len() && st.present[b] == 0)
            .collect();
        let mut k = 0;
        while k < missing.len() {
            let (first, mut last) = (missing[k], missing[k]);
            k += 1;
            while k < missing.len() {
                let b = missing[k];
                let run_end = blocks[last].offset + blocks[last].len as u64;
                let near = blocks[b].offset.saturating_sub(run_end) <= GAP;
                let small =
                    blocks[b].offset + blocks[b].len as u64 - blocks[first].offset <= READ_AHEAD;
                if !(near && small) {
                    break;
                }
                last = b;
                k += 1;
            }
            self.fetch(&mut st, first, last + 1, blocks, path)?;
        }
        Ok(())
    }
}

/// The most bytes `compressed` bytes of zstd can decompress to: every zstd
/// block starts with a 3-byte header and holds at most 128 KiB. A length
/// claimed beyond this is damage, refused before allocating for it.
fn zstd_max_output(compressed: u64) -> u64 {
    (compressed / 3 + 1) * (128 << 10)
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
fn le_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

impl std::fmt::Debug for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segment")
            .field("path", &self.path)
            .field("docs", &self.meta.doc_count)
            .finish()
    }
}

impl Segment {
    /// Opens and checks a segment: frame header and trailer, footer, section
    /// table and the checksum of every section but the blocks (each block is
    /// checked when read, and all of them by [`Segment::verify`]). The frame
    /// CRC32C is checked against the section checksums, without reading the
    /// blocks.
    pub fn open(path: &Path) -> Result<Segment> {
        let file = File::open(path).at(path)?;
        // SAFETY: segment files are immutable once renamed into place; they
        // are only ever replaced by new files under new names.
        let map = unsafe { Mmap::map(&file) }.at(path)?;
        let map = Arc::new(map);
        let corrupt = |d: String| Error::corrupt(path, d);
        let b: &[u8] = &map;
        let version = format::check_header(FileKind::Segment, b).map_err(|e| e.into_error(path))?;
        // Where the footer starts; the frame CRC32C (format 2 on).
        let (footer_at, frame_crc) = if version == v1::SEGMENT_VERSION {
            if b.len() < format::HEADER_LEN + v1::FOOTER_LEN {
                return Err(corrupt(format!(
                    "file is {} bytes, shorter than header and footer",
                    b.len()
                )));
            }
            let f = &b[b.len() - v1::FOOTER_LEN..];
            if f[v1::FOOTER_MAGIC_OFFSET..] != v1::FOOTER_MAGIC {
                return Err(corrupt(
                    "footer missing: the file is truncated or was never finished".into(),
                ));
            }
            let fversion = le_u32(f, v1::FOOTER_VERSION);
            if fversion != version as u32 {
                return Err(corrupt(format!(
                    "header says version {version}, footer {fversion}"
                )));
            }
            (b.len() - v1::FOOTER_LEN, None)
        } else {
            let frame = format::decode(FileKind::Segment, b).map_err(|e| e.into_error(path))?;
            if frame.payload.len() < format::SEGMENT_FOOTER_LEN {
                return Err(corrupt(format!(
                    "payload is {} bytes, shorter than the footer",
                    frame.payload.len()
                )));
            }
            let at = b.len() - format::TRAILER_LEN - format::SEGMENT_FOOTER_LEN;
            (at, Some(frame.crc))
        };
        let f = &b[footer_at..footer_at + format::SEGMENT_FOOTER_LEN];
        let table_off = le_u64(f, format::FOOTER_TABLE_OFFSET) as usize;
        let nsec = le_u32(f, format::FOOTER_SECTION_COUNT) as usize;
        let table_crc = le_u32(f, format::FOOTER_TABLE_CRC);
        let doc_count = le_u64(f, format::FOOTER_DOC_COUNT);
        let table_end = table_off.checked_add(nsec.saturating_mul(format::SECTION_ENTRY_LEN));
        if table_end != Some(footer_at) || nsec > 64 {
            return Err(corrupt("section table out of bounds".into()));
        }
        let table = &b[table_off..table_off + nsec * format::SECTION_ENTRY_LEN];
        if crc32c::crc32c(table) != table_crc {
            return Err(corrupt("section table checksum mismatch".into()));
        }
        let mut sections = Vec::with_capacity(nsec);
        for i in 0..nsec {
            let e = &table[i * format::SECTION_ENTRY_LEN..];
            let s = SectionEntry {
                id: le_u32(e, 0),
                offset: le_u64(e, 8),
                len: le_u64(e, 16),
                crc: le_u32(e, 24),
            };
            let end = s.offset.checked_add(s.len);
            if s.offset < format::HEADER_LEN as u64 || end.is_none_or(|e| e > table_off as u64) {
                return Err(corrupt(format!(
                    "section {} out of bounds",
                    section::name(s.id)
                )));
            }
            sections.push(s);
        }
        for id in section::ALL {
            if sections.iter().filter(|s| s.id == id).count() != 1 {
                return Err(corrupt(format!(
                    "section {} missing or repeated",
                    section::name(id)
                )));
            }
        }
        let get = |id: u32| -> SectionEntry { *sections.iter().find(|s| s.id == id).unwrap() };
        for id in section::ALL {
            if id == section::BLOCKS {
                continue;
            }
            let s = get(id);
            let bytes = &b[s.offset as usize..(s.offset + s.len) as usize];
            if crc32c::crc32c(bytes) != s.crc {
                return Err(corrupt(format!(
                    "section {} checksum mismatch",
                    section::name(id)
                )));
            }
        }
        if let Some(crc) = frame_crc {
            // Checked against the section checksums, without reading the
            // blocks (verify reads them all).
            let mut parts: Vec<(u64, u64, u32)> =
                sections.iter().map(|s| (s.offset, s.len, s.crc)).collect();
            match format::crc_from_parts(b, b.len() - format::TRAILER_LEN, &mut parts) {
                None => return Err(corrupt("sections overlap".into())),
                Some(c) if c != crc => return Err(corrupt("frame checksum mismatch".into())),
                Some(_) => {}
            }
        }
        let slice = |id: u32| {
            let s = get(id);
            MappedSlice {
                map: map.clone(),
                start: s.offset as usize,
                end: (s.offset + s.len) as usize,
            }
        };
        let meta_sec = slice(section::META);
        let mb = meta_sec.as_ref();
        if mb.len() < 2 {
            return Err(corrupt("meta section too short".into()));
        }
        let mv = u16::from_le_bytes([mb[0], mb[1]]);
        if mv != format::META_VERSION {
            return Err(Error::Version {
                path: path.into(),
                found: mv as u32,
                supported: format::META_VERSION as u32,
            });
        }
        let meta: SegmentMeta =
            postcard::from_bytes(&mb[2..]).map_err(|e| corrupt(format!("meta section: {e}")))?;
        if meta.doc_count as u64 != doc_count {
            return Err(corrupt(
                "footer and meta disagree on the document count".into(),
            ));
        }
        let bi = slice(section::BLOCK_INDEX);
        let bi = bi.as_ref();
        if bi.len() % format::BLOCK_ENTRY_LEN != 0 {
            return Err(corrupt(
                "block index length is not a multiple of its entry".into(),
            ));
        }
        let bsec = get(section::BLOCKS);
        let mut blocks = Vec::with_capacity(bi.len() / format::BLOCK_ENTRY_LEN);
        let mut next_doc = 0u32;
        for e in bi.chunks_exact(format::BLOCK_ENTRY_LEN) {
            let be = BlockEntry {
                offset: le_u64(e, 0),
                len: le_u32(e, 8),
                raw_len: le_u32(e, 12),
                first_doc: le_u32(e, 16),
                docs: le_u32(e, 20),
                crc: le_u32(e, 24),
            };
            // Checked sums: a damaged entry must not wrap past the bounds
            // (a fuzz finding: `offset + len` overflowed).
            let end = be.offset.checked_add(be.len as u64);
            let sec_end = bsec.offset.checked_add(bsec.len);
            let next = next_doc.checked_add(be.docs);
            let (Some(end), Some(sec_end), Some(next)) = (end, sec_end, next) else {
                return Err(corrupt(format!(
                    "block index entry {} out of range",
                    blocks.len()
                )));
            };
            if be.offset < bsec.offset || end > sec_end || be.first_doc != next_doc || be.docs == 0
            {
                return Err(corrupt(format!(
                    "block index entry {} inconsistent",
                    blocks.len()
                )));
            }
            next_doc = next;
            blocks.push(be);
        }
        if next_doc != meta.doc_count {
            return Err(corrupt("block index does not cover every document".into()));
        }
        let keys =
            fst::Map::new(slice(section::KEYS)).map_err(|e| corrupt(format!("keys fst: {e}")))?;
        let terms =
            fst::Map::new(slice(section::TERMS)).map_err(|e| corrupt(format!("terms fst: {e}")))?;
        if keys.len() != meta.doc_count as usize {
            return Err(corrupt("key count differs from document count".into()));
        }
        let tlen = get(section::TERM_INDEX).len as usize;
        if tlen != terms.len() * format::TERM_ENTRY_LEN {
            return Err(corrupt(
                "term index size differs from the term dictionary".into(),
            ));
        }
        let numeric_cache = (0..meta.numeric.len()).map(|_| OnceLock::new()).collect();
        let nblocks = blocks.len();
        Ok(Segment {
            path: path.to_path_buf(),
            map,
            version,
            frame_crc,
            sections,
            blocks,
            keys,
            terms,
            meta,
            numeric_cache,
            overlay: Overlay::default(),
            lazy: LazyBlocks::open(path, nblocks)?,
        })
    }

    fn section(&self, id: u32) -> &[u8] {
        let s = self
            .sections
            .iter()
            .find(|s| s.id == id)
            .expect("checked on open");
        &self.map[s.offset as usize..(s.offset + s.len) as usize]
    }

    fn corrupt(&self, d: impl Into<String>) -> Error {
        Error::corrupt(&self.path, d)
    }

    /// The file this segment was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The segment format version of the file (1 or 2).
    pub fn format_version(&self) -> u16 {
        self.version
    }

    /// Documents in the segment.
    pub fn doc_count(&self) -> u32 {
        self.meta.doc_count
    }

    /// The segment's metadata.
    pub fn meta(&self) -> &SegmentMeta {
        &self.meta
    }

    /// The section table.
    pub fn sections(&self) -> &[SectionEntry] {
        &self.sections
    }

    /// The block index.
    pub fn blocks(&self) -> &[BlockEntry] {
        &self.blocks
    }

    /// Size of the mapped file.
    pub fn file_len(&self) -> u64 {
        self.map.len() as u64
    }

    /// All ordinals.
    pub fn all(&self) -> RoaringBitmap {
        let mut b = RoaringBitmap::new();
        if self.meta.doc_count > 0 {
            b.insert_range(0..self.meta.doc_count);
        }
        b
    }

    /// The ordinal of `key`, if present.
    pub fn key_ordinal(&self, key: &str) -> Option<u32> {
        self.keys.get(key).map(|v| v as u32)
    }

    /// Ordinals of keys matching an `fst` automaton.
    pub fn keys_matching<A: fst::Automaton>(&self, aut: A) -> RoaringBitmap {
        let mut out = RoaringBitmap::new();
        let mut s = self.keys.search(aut).into_stream();
        while let Some((_, v)) = s.next() {
            out.insert(v as u32);
        }
        out
    }

    /// Keys starting with `prefix`, with their ordinals, in key order.
    pub fn keys_with_prefix(&self, prefix: &str) -> Vec<(String, u32)> {
        let mut s = self
            .keys
            .search(fst::automaton::Str::new(prefix).starts_with())
            .into_stream();
        let mut out = Vec::new();
        while let Some((k, v)) = s.next() {
            out.push((String::from_utf8_lossy(k).into_owned(), v as u32));
        }
        out
    }

    /// Keys in key order with their ordinals.
    pub fn key_stream(&self) -> fst::map::Stream<'_> {
        self.keys.stream()
    }

    fn term_entry(&self, term_id: u64) -> Result<(u64, u32, u32, u64)> {
        let ti = self.section(section::TERM_INDEX);
        let at = term_id as usize * format::TERM_ENTRY_LEN;
        if at + format::TERM_ENTRY_LEN > ti.len() {
            return Err(self.corrupt("term id beyond the term index"));
        }
        Ok((
            le_u64(ti, at),
            le_u32(ti, at + 8),
            le_u32(ti, at + 12),
            le_u64(ti, at + 16),
        ))
    }

    fn bitmap_at(&self, offset: u64, len: u32) -> Result<RoaringBitmap> {
        let p = self.section(section::POSTINGS);
        let end = offset
            .checked_add(len as u64)
            .filter(|&e| e <= p.len() as u64);
        let Some(end) = end else {
            return Err(self.corrupt("postings entry out of bounds"));
        };
        let bm = RoaringBitmap::deserialize_from(&p[offset as usize..end as usize])
            .map_err(|e| self.corrupt(format!("postings: {e}")))?;
        if bm.max().is_some_and(|m| m >= self.meta.doc_count) {
            return Err(self.corrupt("postings name a document beyond the segment"));
        }
        Ok(bm)
    }

    fn term_key(field: &str, value: &str) -> Vec<u8> {
        let mut k = Vec::new();
        format::push_term_key(&mut k, field, value);
        k
    }

    /// Attaches derived facets and tag sidecars (see [`Overlay`]).
    pub fn attach(&mut self, o: Overlay) {
        self.overlay = o;
    }

    /// The attached overlay.
    pub fn overlay(&self) -> &Overlay {
        &self.overlay
    }

    /// Whether the segment itself stores field `name`.
    pub fn has_stored_field(&self, name: &str) -> bool {
        self.field(name).is_some() || self.numeric_meta(name).is_some()
    }

    /// Postings of `field = value` (empty when absent).
    pub fn postings(&self, field: &str, value: &str) -> Result<RoaringBitmap> {
        if let Some(i) = self.overlay_facet(field) {
            let vals = self.overlay.facet_values(i, self)?;
            return Ok(
                match vals.binary_search_by(|(v, _)| v.as_str().cmp(value)) {
                    Ok(j) => vals[j].1.clone(),
                    Err(_) => RoaringBitmap::new(),
                },
            );
        }
        match self.terms.get(Self::term_key(field, value)) {
            Some(id) => {
                let (off, len, _, _) = self.term_entry(id)?;
                self.bitmap_at(off, len)
            }
            None => Ok(RoaringBitmap::new()),
        }
    }

    fn overlay_facet(&self, field: &str) -> Option<usize> {
        if self.field(field).is_some() {
            return None;
        }
        self.overlay.facet_index(field)
    }

    /// Every (value, term id) of `field` whose value starts with `prefix`
    /// (stored or overlay facets).
    pub fn terms_with_prefix(&self, field: &str, prefix: &str) -> Vec<(String, u64)> {
        if let Some(i) = self.overlay_facet(field) {
            let Ok(vals) = self.overlay.facet_values(i, self) else {
                return Vec::new();
            };
            return vals
                .iter()
                .enumerate()
                .filter(|(_, (v, _))| v.starts_with(prefix))
                .map(|(j, (v, _))| (v.clone(), overlay::term_id(i, j)))
                .collect();
        }
        self.stored_terms_with_prefix(field, prefix)
    }

    /// Like [`Segment::terms_with_prefix`], stored terms only.
    pub fn stored_terms_with_prefix(&self, field: &str, prefix: &str) -> Vec<(String, u64)> {
        let lo = Self::term_key(field, prefix);
        let mut hi = Self::term_key(field, "");
        let hi_last = hi.len() - 1;
        hi[hi_last] = format::TERM_SEP + 1;
        let mut s = self.terms.range().ge(&lo).lt(&hi).into_stream();
        let mut out = Vec::new();
        let skip = field.len() + 1;
        while let Some((k, v)) = s.next() {
            if !k[skip..].starts_with(prefix.as_bytes()) {
                break;
            }
            out.push((String::from_utf8_lossy(&k[skip..]).into_owned(), v));
        }
        out
    }

    /// Splits `bm` by the values of facet `field`: each value with the
    /// documents of `bm` that hold it, and the documents holding none. A
    /// document with several values is listed under each of them, or, with
    /// `first_only`, under the first in value order only.
    pub fn split_by_values(
        &self,
        field: &str,
        bm: &RoaringBitmap,
        first_only: bool,
    ) -> Result<(Vec<(String, RoaringBitmap)>, RoaringBitmap)> {
        let mut rest = bm.clone();
        let mut groups = Vec::new();
        for (v, id) in self.terms_with_prefix(field, "") {
            let sub = self.postings_of(id)? & if first_only { &rest } else { bm };
            if !sub.is_empty() {
                rest -= &sub;
                groups.push((v, sub));
            }
        }
        Ok((groups, rest))
    }

    /// Postings of a term id returned by [`Segment::terms_with_prefix`].
    pub fn postings_of(&self, term_id: u64) -> Result<RoaringBitmap> {
        if term_id >= overlay::OVERLAY_BIT {
            let (f, v) = overlay::split_term_id(term_id);
            let vals = self.overlay.facet_values(f, self)?;
            return Ok(vals.get(v).map(|x| x.1.clone()).unwrap_or_default());
        }
        let (off, len, _, _) = self.term_entry(term_id)?;
        self.bitmap_at(off, len)
    }

    /// Document count and text bytes of a term id.
    pub fn term_counts(&self, term_id: u64) -> Result<(u32, u64)> {
        if term_id >= overlay::OVERLAY_BIT {
            let bm = self.postings_of(term_id)?;
            let bytes = match self.numeric(format::BYTES_FIELD)? {
                Some(col) => bm.iter().map(|o| col[o as usize] as u64).sum(),
                None => 0,
            };
            return Ok((bm.len() as u32, bytes));
        }
        let (_, _, docs, bytes) = self.term_entry(term_id)?;
        Ok((docs, bytes))
    }

    /// Metadata of a field present in this segment.
    pub fn field(&self, name: &str) -> Option<&FieldMeta> {
        self.meta.fields.iter().find(|f| f.name == name)
    }

    /// Documents holding `field` (empty when the segment lacks it).
    pub fn presence(&self, field: &str) -> Result<RoaringBitmap> {
        match self.field(field) {
            Some(f) => self.bitmap_at(f.presence_offset, f.presence_len),
            None => {
                if let Some(i) = self.overlay.facet_index(field) {
                    return self.overlay.facet_presence(i, self);
                }
                if let Some((s, c)) = self.overlay.number_source(field) {
                    return Ok(self.overlay.number(s, c)?.1);
                }
                Ok(RoaringBitmap::new())
            }
        }
    }

    /// Metadata of a numeric column.
    pub fn numeric_meta(&self, name: &str) -> Option<&NumericMeta> {
        self.meta.numeric.iter().find(|c| c.name == name)
    }

    /// The decoded numeric column `name` (values of absent documents are 0;
    /// combine with [`Segment::presence`]). Decoded once per open segment.
    pub fn numeric(&self, name: &str) -> Result<Option<Arc<Vec<f64>>>> {
        let Some(i) = self.meta.numeric.iter().position(|c| c.name == name) else {
            if let Some((s, c)) = self.overlay.number_source(name) {
                return Ok(Some(self.overlay.number(s, c)?.0));
            }
            return Ok(None);
        };
        if let Some(c) = self.numeric_cache[i].get() {
            return Ok(Some(c.clone()));
        }
        let c = &self.meta.numeric[i];
        let sec = self.section(section::NUMERIC);
        let end = c
            .offset
            .checked_add(c.len as u64)
            .filter(|&e| e <= sec.len() as u64);
        let Some(end) = end else {
            return Err(self.corrupt(format!("numeric column {name} out of bounds")));
        };
        let n = self.meta.doc_count as usize;
        if n as u64 * 8 > zstd_max_output(c.len as u64) {
            return Err(self.corrupt(format!("numeric column {name} has the wrong length")));
        }
        let raw = zstd::bulk::decompress(&sec[c.offset as usize..end as usize], n * 8)
            .map_err(|e| self.corrupt(format!("numeric column {name}: {e}")))?;
        if raw.len() != n * 8 {
            return Err(self.corrupt(format!("numeric column {name} has the wrong length")));
        }
        let col: Vec<f64> = raw
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
            .collect();
        let col = Arc::new(col);
        let _ = self.numeric_cache[i].set(col.clone());
        Ok(Some(col))
    }

    /// Index of the block holding ordinal `ord`.
    pub fn block_of(&self, ord: u32) -> usize {
        self.blocks.partition_point(|b| b.first_doc + b.docs <= ord)
    }

    /// Whether blocks are fetched on first read (a segment of the
    /// node-local mirror of a corpus at a URI).
    pub fn is_lazy(&self) -> bool {
        self.lazy.is_some()
    }

    /// For a segment whose blocks are fetched on first read: fetches the
    /// missing blocks among `wanted` (ascending indices) now, nearby ones
    /// coalesced into one request. A no-op for other segments.
    pub fn prefetch(&self, wanted: &[usize]) -> Result<()> {
        match &self.lazy {
            Some(l) => l.prefetch(wanted, &self.blocks, &self.path),
            None => Ok(()),
        }
    }

    /// Reads, checks and decompresses block `i`.
    pub fn read_block(&self, i: usize) -> Result<Block> {
        let be = self
            .blocks
            .get(i)
            .ok_or_else(|| self.corrupt("block index out of range"))?;
        if let Some(l) = &self.lazy {
            l.ensure(i, &self.blocks, &self.path)?;
        }
        let bytes = &self.map[be.offset as usize..(be.offset + be.len as u64) as usize];
        if crc32c::crc32c(bytes) != be.crc {
            // A lazily fetched block whose presence byte was set for
            // another copy of the file (an eviction raced this open) or
            // whose bytes a crash lost: fetched once more before the block
            // is called corrupt.
            let again = match &self.lazy {
                Some(l) => {
                    l.refetch(i, &self.blocks, &self.path)?;
                    crc32c::crc32c(bytes) == be.crc
                }
                None => false,
            };
            if !again {
                return Err(self.corrupt(format!("block {i} checksum mismatch")));
            }
        }
        if be.raw_len as u64 > zstd_max_output(be.len as u64) {
            return Err(self.corrupt(format!(
                "block {i} claims {} bytes from {} compressed",
                be.raw_len, be.len
            )));
        }
        let raw = zstd::bulk::decompress(bytes, be.raw_len as usize)
            .map_err(|e| self.corrupt(format!("block {i}: {e}")))?;
        if raw.len() != be.raw_len as usize {
            return Err(self.corrupt(format!("block {i} decompressed to the wrong size")));
        }
        let block = Block::decode(raw).map_err(|d| self.corrupt(format!("block {i}: {d}")))?;
        if block.len() != be.docs as usize {
            return Err(self.corrupt(format!(
                "block {i} holds {} documents, index says {}",
                block.len(),
                be.docs
            )));
        }
        Ok(block)
    }

    /// Checks everything: every section checksum, every block, every
    /// postings list and numeric column. Returns the number of bytes checked.
    pub fn verify(&self) -> Result<u64> {
        let all: Vec<usize> = (0..self.blocks.len()).collect();
        self.prefetch(&all)?;
        if let Some(crc) = self.frame_crc {
            let n = self.map.len() - format::TRAILER_LEN;
            if crc32c::crc32c(&self.map[..n]) != crc {
                return Err(self.corrupt("frame checksum mismatch"));
            }
        }
        for s in &self.sections {
            let bytes = &self.map[s.offset as usize..(s.offset + s.len) as usize];
            if crc32c::crc32c(bytes) != s.crc {
                return Err(
                    self.corrupt(format!("section {} checksum mismatch", section::name(s.id)))
                );
            }
        }
        for i in 0..self.blocks.len() {
            self.read_block(i)?
                .check_text()
                .map_err(|d| self.corrupt(format!("block {i}: {d}")))?;
        }
        let mut s = self.terms.stream();
        while let Some((_, id)) = s.next() {
            self.postings_of(id)?;
        }
        for f in &self.meta.fields {
            self.bitmap_at(f.presence_offset, f.presence_len)?;
        }
        for c in &self.meta.numeric {
            self.numeric(&c.name)?;
        }
        Ok(self.map.len() as u64)
    }

    /// Streams every term `(field, value, term id)` of the dictionary.
    pub fn for_each_term(&self, mut f: impl FnMut(&str, &str, u64)) {
        let mut s = self.terms.stream();
        while let Some((k, id)) = s.next() {
            let Some(p) = k.iter().position(|&b| b == format::TERM_SEP) else {
                continue;
            };
            let field = std::str::from_utf8(&k[..p]).unwrap_or("");
            let value = std::str::from_utf8(&k[p + 1..]).unwrap_or("");
            f(field, value, id);
        }
    }
}
