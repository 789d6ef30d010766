//! Builds a segment file from documents: clusters them by their main facets,
//! compresses blocks in parallel, builds the key and term `fst`s, postings
//! and numeric columns, and writes everything with per-section CRC32C inside
//! the common frame ([`crate::raw::format`]) to a temporary name, fsynced, then
//! renamed ([`storage::AtomicFile`]). The footer and the frame trailer are
//! written last, so an abandoned file is detectably incomplete. Block size
//! and zstd level come from [`WriterOptions`], never from the environment.

use std::collections::HashMap;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use roaring::RoaringBitmap;

use crate::error::{Error, Result};
use crate::format::{self, section, FileKind};
use crate::schema::FieldKind;
use crate::segment::{block, DocRecord, FieldMeta, NumericMeta, SegmentMeta};
use crate::storage;

/// The hasher of the writer's per-segment maps.
type FoldHash = foldhash::fast::RandomState;

/// One field's terms being built: value -> (ordinals, text bytes).
type ValueTerms<'a> = HashMap<&'a str, (Vec<u32>, u64), FoldHash>;

/// A numeric column being built: values, min, max.
type Column = (Vec<f64>, f64, f64);

/// What was written.
#[derive(Debug, Clone)]
pub struct WrittenSegment {
    /// Final path of the segment file.
    pub path: PathBuf,
    /// Documents written.
    pub docs: u32,
    /// Sum of text bytes.
    pub text_bytes: u64,
    /// Size of the file.
    pub file_bytes: u64,
}

/// How a segment is written: knobs that change the bytes, not the format
/// (readers need neither). The library never reads them from the
/// environment; the command line maps `CORPUSQL_BLOCK_KB` and
/// `CORPUSQL_ZSTD_LEVEL` onto them for `corpusql ingest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterOptions {
    /// zstd level of the document blocks and numeric columns
    /// (default [`format::ZSTD_LEVEL`]).
    pub zstd_level: i32,
    /// Target uncompressed size of a document block, in bytes (default
    /// [`format::BLOCK_TARGET_BYTES`]); a block closes once its documents
    /// reach it.
    pub block_bytes: usize,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            zstd_level: format::ZSTD_LEVEL,
            block_bytes: format::BLOCK_TARGET_BYTES,
        }
    }
}

/// A writer that tracks its offset, the CRC32C of the current section and
/// that of the whole file so far (for the frame trailer).
struct SectionWriter<W: Write> {
    inner: W,
    offset: u64,
    crc: u32,
    file_crc: u32,
    sections: Vec<(u32, u64, u64, u32)>,
    start: u64,
}

impl<W: Write> SectionWriter<W> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.inner.write_all(b)?;
        self.crc = crc32c::crc32c_append(self.crc, b);
        self.file_crc = crc32c::crc32c_append(self.file_crc, b);
        self.offset += b.len() as u64;
        Ok(())
    }
    fn begin(&mut self) {
        self.start = self.offset;
        self.crc = 0;
    }
    fn end(&mut self, id: u32) {
        self.sections
            .push((id, self.start, self.offset - self.start, self.crc));
    }
}

/// Order in which documents are laid out: clustered by the first value of
/// each cluster field (documents lacking one sort first), stable otherwise.
fn cluster_order(docs: &[DocRecord], cluster_fields: &[String]) -> Vec<usize> {
    let keys: Vec<Vec<&str>> = docs
        .iter()
        .map(|d| {
            cluster_fields
                .iter()
                .map(|f| {
                    d.facets
                        .iter()
                        .find(|(n, _)| n == f)
                        .map(|(_, v)| v.as_str())
                        .unwrap_or("")
                })
                .collect()
        })
        .collect();
    let mut order: Vec<usize> = (0..docs.len()).collect();
    order.sort_by(|&a, &b| keys[a].cmp(&keys[b]));
    order
}

/// Writes `docs` as a new segment at `path` (via `path.tmp`), clustered by
/// `cluster_fields`, with the default [`WriterOptions`]. The caller commits
/// it to the catalog afterwards.
pub fn write_segment(
    path: &Path,
    docs: Vec<DocRecord>,
    cluster_fields: &[String],
) -> Result<WrittenSegment> {
    write_segment_with(path, docs, cluster_fields, &WriterOptions::default())
}

/// [`write_segment`] with the given block size and zstd level.
pub fn write_segment_with(
    path: &Path,
    mut docs: Vec<DocRecord>,
    cluster_fields: &[String],
    options: &WriterOptions,
) -> Result<WrittenSegment> {
    let level = options.zstd_level;
    if docs.len() > u32::MAX as usize / 2 {
        return Err(Error::Invalid("too many documents for one segment".into()));
    }
    let order = cluster_order(&docs, cluster_fields);
    let mut slots: Vec<Option<DocRecord>> = docs.drain(..).map(Some).collect();
    let mut docs: Vec<DocRecord> = order.iter().map(|&i| slots[i].take().unwrap()).collect();
    drop(slots);
    let n = docs.len();
    // What the index needs of the stored parts, taken before they are freed.
    let text_lens: Vec<u64> = docs.iter().map(|d| d.text.len() as u64).collect();
    let raw_bytes: u64 = docs.iter().map(|d| d.raw_len() as u64).sum();

    // Blocks: contiguous ranges of about BLOCK_TARGET_BYTES.
    let mut ranges = Vec::new();
    let mut start = 0;
    let mut acc = 0;
    let target = options.block_bytes;
    for (i, d) in docs.iter().enumerate() {
        acc += d.raw_len();
        if acc >= target {
            ranges.push(start..i + 1);
            start = i + 1;
            acc = 0;
        }
    }
    if start < n {
        ranges.push(start..n);
    }
    // Each block frees the texts and records it compressed: the rest of the
    // segment (terms, columns) needs only the facets, and ingest fills the
    // next segment meanwhile, so the memory is handed back early.
    let mut slices: Vec<&mut [DocRecord]> = Vec::with_capacity(ranges.len());
    let mut rest: &mut [DocRecord] = &mut docs;
    for r in &ranges {
        let (block, tail) = rest.split_at_mut(r.len());
        slices.push(block);
        rest = tail;
    }
    let compressed: Vec<(Vec<u8>, u32)> = slices
        .into_par_iter()
        .map(|block_docs| {
            // Into this thread's reused buffer: a fresh one per block grew
            // by doubling (copying) and was faulted in page by page.
            RAW_BLOCK.with(|raw| {
                let mut raw = raw.borrow_mut();
                raw.clear();
                raw.reserve(block_docs.iter().map(|d| d.raw_len()).sum::<usize>() + 4);
                block::encode(block_docs, &mut raw);
                for d in block_docs.iter_mut() {
                    d.text = String::new();
                    d.prefix = Vec::new();
                    d.suffix = Vec::new();
                }
                let c = compress(&raw, level).map_err(|e| Error::io(path, e))?;
                let len = raw.len() as u32;
                // A block far larger than usual (one huge document) does
                // not keep its memory in every worker.
                if raw.capacity() > 4 * options.block_bytes.max(1 << 20) {
                    *raw = Vec::new();
                }
                Ok((c, len))
            })
        })
        .collect::<Result<_>>()?;

    // Keys.
    let mut keyed: Vec<(&str, u64)> = docs
        .iter()
        .enumerate()
        .map(|(i, d)| (d.key.as_str(), i as u64))
        .collect();
    keyed.par_sort_unstable_by(|a, b| a.0.cmp(b.0));
    if let Some(w) = keyed.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(Error::Invalid(format!(
            "duplicate key `{}` in one segment",
            w[0].0
        )));
    }
    let mut kb = fst::MapBuilder::memory();
    for (k, v) in &keyed {
        kb.insert(k, *v)
            .map_err(|e| Error::Invalid(e.to_string()))?;
    }
    let keys_fst = kb.into_inner().map_err(|e| Error::Invalid(e.to_string()))?;
    drop(keyed);

    // Terms, presence and numeric columns.
    // - Postings are gathered as sorted ordinal lists and turned into
    //   bitmaps once: `RoaringBitmap::push` looks for the bitmap's maximum
    //   first, which for a dense container scans its words from the top
    //   (6% of an ingest profile).
    // - Terms are kept per field (a field's index in `by_field`, then its
    //   values), so a lookup hashes the value alone and each field's values
    //   sort alone.
    // - foldhash rather than SipHash or streaming xxh3: a lookup per facet
    //   value of every document, on short keys, in maps that live for one
    //   segment.
    let mut field_ix: HashMap<&str, usize, FoldHash> = HashMap::default();
    let mut by_field: Vec<(&str, ValueTerms)> = Vec::new();
    let mut presence: HashMap<&str, (FieldKind, Vec<u32>), FoldHash> = HashMap::default();
    let mut numeric: HashMap<&str, (Vec<f64>, f64, f64), FoldHash> = HashMap::default();
    let mut text_bytes = 0u64;
    for (i, d) in docs.iter().enumerate() {
        let ord = i as u32;
        let tb = text_lens[i];
        text_bytes += tb;
        for (f, v) in &d.facets {
            let f: &str = f.as_ref();
            let fi = match field_ix.get(f) {
                Some(&fi) => fi,
                None => {
                    field_ix.insert(f, by_field.len());
                    by_field.push((f, HashMap::default()));
                    by_field.len() - 1
                }
            };
            let e = by_field[fi].1.entry(v.as_str()).or_default();
            if e.0.last() != Some(&ord) {
                e.0.push(ord);
                e.1 += tb;
            }
        }
        for (f, k) in &d.present {
            let e = &mut presence
                .entry(f.as_ref())
                .or_insert_with(|| (*k, Vec::new()))
                .1;
            if e.last() != Some(&ord) {
                e.push(ord);
            }
        }
        for (f, x) in &d.numbers {
            let e = numeric
                .entry(f.as_ref())
                .or_insert_with(|| (vec![0.0; n], f64::INFINITY, f64::NEG_INFINITY));
            e.0[i] = *x;
            e.1 = e.1.min(*x);
            e.2 = e.2.max(*x);
        }
    }
    let bytes_col: Vec<f64> = text_lens.iter().map(|&b| b as f64).collect();
    drop(text_lens);

    drop(field_ix);
    // The dictionary's keys are `field TERM_SEP value`, in byte order: the
    // fields in order, each with its values in order, unless a field name
    // holds the separator byte itself (then fields interleave: one sort of
    // the whole keys).
    by_field.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut term_counts: HashMap<&str, u32> = HashMap::new();
    let mut term_list: Vec<(&str, &str, Vec<u32>, u64)> =
        Vec::with_capacity(by_field.iter().map(|(_, m)| m.len()).sum());
    let sep_in_name = by_field
        .iter()
        .any(|(f, _)| f.as_bytes().contains(&format::TERM_SEP));
    for (f, m) in by_field {
        term_counts.insert(f, m.len() as u32);
        let start = term_list.len();
        term_list.extend(m.into_iter().map(|(v, (ords, b))| (f, v, ords, b)));
        term_list[start..].sort_unstable_by(|a, b| a.1.cmp(b.1));
    }
    if sep_in_name {
        term_list.sort_by_cached_key(|t| {
            let mut k = Vec::new();
            format::push_term_key(&mut k, t.0, t.1);
            k
        });
    }
    let mut tb = fst::MapBuilder::memory();
    let mut k = Vec::new();
    for (i, (f, v, _, _)) in term_list.iter().enumerate() {
        k.clear();
        format::push_term_key(&mut k, f, v);
        // Keys collide only when a field name holds the separator (NUL),
        // which ingest refuses; a segment of an older corpus may still.
        tb.insert(&k, i as u64).map_err(|e| {
            Error::Invalid(format!(
                "{}: facet `{}` = `{}`: {e} (a field name holds a NUL character)",
                path.display(),
                f.escape_debug(),
                v.escape_debug()
            ))
        })?;
    }
    let terms_fst = tb.into_inner().map_err(|e| Error::Invalid(e.to_string()))?;

    let mut postings = Vec::new();
    let mut term_index = Vec::with_capacity(term_list.len() * format::TERM_ENTRY_LEN);
    for (_, _, ords, bytes) in &term_list {
        let off = postings.len() as u64;
        posting(ords)
            .serialize_into(&mut postings)
            .map_err(|e| Error::io(path, e))?;
        term_index.extend_from_slice(&off.to_le_bytes());
        term_index.extend_from_slice(&((postings.len() as u64 - off) as u32).to_le_bytes());
        term_index.extend_from_slice(&(ords.len() as u32).to_le_bytes());
        term_index.extend_from_slice(&bytes.to_le_bytes());
    }
    let mut fields: Vec<FieldMeta> = Vec::new();
    let mut pres_list: Vec<(&str, (FieldKind, Vec<u32>))> = presence.into_iter().collect();
    pres_list.sort_by(|a, b| a.0.cmp(b.0));
    for (name, (kind, ords)) in pres_list {
        let off = postings.len() as u64;
        let bm = posting(&ords);
        bm.serialize_into(&mut postings)
            .map_err(|e| Error::io(path, e))?;
        fields.push(FieldMeta {
            name: name.to_string(),
            kind,
            presence_offset: off,
            presence_len: (postings.len() as u64 - off) as u32,
            docs: bm.len() as u32,
            terms: term_counts.get(name).copied().unwrap_or(0),
        });
    }

    let mut numeric_sec = Vec::new();
    let mut numeric_meta = Vec::new();
    let mut num_list: Vec<(&str, Column)> = numeric.into_iter().collect();
    num_list.sort_by(|a, b| a.0.cmp(b.0));
    let (bmin, bmax) = bytes_col
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
            (a.min(x), b.max(x))
        });
    let mut all_cols: Vec<(&str, Vec<f64>, f64, f64)> =
        vec![(format::BYTES_FIELD, bytes_col, bmin, bmax)];
    all_cols.extend(num_list.into_iter().map(|(n, (v, a, b))| (n, v, a, b)));
    for (name, col, min, max) in all_cols {
        let mut raw = Vec::with_capacity(col.len() * 8);
        for x in &col {
            raw.extend_from_slice(&x.to_le_bytes());
        }
        let c = compress(&raw, level).map_err(|e| Error::io(path, e))?;
        numeric_meta.push(NumericMeta {
            name: name.to_string(),
            offset: numeric_sec.len() as u64,
            len: c.len() as u32,
            min,
            max,
        });
        numeric_sec.extend_from_slice(&c);
    }
    // The documents are freed by the pool threads that parsed (allocated)
    // most of them: freeing another thread's memory costs the allocator
    // an atomic hand-back, and was 6% of an ingest profile here.
    docs.into_par_iter().for_each(drop);

    let meta = SegmentMeta {
        doc_count: n as u32,
        text_bytes,
        raw_bytes,
        fields,
        numeric: numeric_meta,
        cluster_fields: cluster_fields.to_vec(),
    };
    let mut meta_bytes = format::META_VERSION.to_le_bytes().to_vec();
    meta_bytes.extend(postcard::to_stdvec(&meta).map_err(|e| Error::Invalid(e.to_string()))?);

    // Write the file: frame header, sections, section table, footer, frame
    // trailer.
    let file = storage::AtomicFile::create(path)?;
    let tmp = file.tmp_path().to_path_buf();
    let mut w = SectionWriter {
        // Blocks (larger than the buffer) go to the file without a copy.
        inner: BufWriter::with_capacity(64 << 10, file),
        offset: 0,
        crc: 0,
        file_crc: 0,
        sections: Vec::new(),
        start: 0,
    };
    let io = |e| Error::io(&tmp, e);
    w.write(&format::header(FileKind::Segment)).map_err(io)?;

    w.begin();
    let mut block_index = Vec::with_capacity(compressed.len() * format::BLOCK_ENTRY_LEN);
    for ((c, raw_len), r) in compressed.iter().zip(&ranges) {
        block_index.extend_from_slice(&w.offset.to_le_bytes());
        block_index.extend_from_slice(&(c.len() as u32).to_le_bytes());
        block_index.extend_from_slice(&raw_len.to_le_bytes());
        block_index.extend_from_slice(&(r.start as u32).to_le_bytes());
        block_index.extend_from_slice(&(r.len() as u32).to_le_bytes());
        block_index.extend_from_slice(&crc32c::crc32c(c).to_le_bytes());
        block_index.extend_from_slice(&0u32.to_le_bytes());
        w.write(c).map_err(io)?;
    }
    w.end(section::BLOCKS);
    for (id, bytes) in [
        (section::BLOCK_INDEX, &block_index),
        (section::KEYS, &keys_fst),
        (section::TERMS, &terms_fst),
        (section::TERM_INDEX, &term_index),
        (section::POSTINGS, &postings),
        (section::NUMERIC, &numeric_sec),
        (section::META, &meta_bytes),
    ] {
        w.begin();
        w.write(bytes).map_err(io)?;
        w.end(id);
    }
    let mut table = Vec::with_capacity(w.sections.len() * format::SECTION_ENTRY_LEN);
    for (id, off, len, crc) in &w.sections {
        table.extend_from_slice(&id.to_le_bytes());
        table.extend_from_slice(&0u32.to_le_bytes());
        table.extend_from_slice(&off.to_le_bytes());
        table.extend_from_slice(&len.to_le_bytes());
        table.extend_from_slice(&crc.to_le_bytes());
        table.extend_from_slice(&0u32.to_le_bytes());
    }
    let table_offset = w.offset;
    let nsec = w.sections.len() as u32;
    w.write(&table).map_err(io)?;
    let mut footer = Vec::with_capacity(format::SEGMENT_FOOTER_LEN);
    footer.extend_from_slice(&table_offset.to_le_bytes());
    footer.extend_from_slice(&nsec.to_le_bytes());
    footer.extend_from_slice(&crc32c::crc32c(&table).to_le_bytes());
    footer.extend_from_slice(&(n as u64).to_le_bytes());
    w.write(&footer).map_err(io)?;
    let payload_len = w.offset - format::HEADER_LEN as u64;
    let trailer = format::trailer(FileKind::Segment, payload_len, w.file_crc);
    w.write(&trailer).map_err(io)?;
    let file_bytes = w.offset;
    let file = w
        .inner
        .into_inner()
        .map_err(|e| Error::io(&tmp, e.into_error()))?;
    file.commit()?;
    Ok(WrittenSegment {
        path: path.to_path_buf(),
        docs: n as u32,
        text_bytes,
        file_bytes,
    })
}

/// The bitmap of a sorted, duplicate-free list of ordinals.
fn posting(ords: &[u32]) -> RoaringBitmap {
    let mut bm = RoaringBitmap::new();
    // Strictly increasing by construction (documents are visited in order
    // and each ordinal is pushed once per list), so `append` cannot fail.
    let appended = bm.append(ords.iter().copied());
    debug_assert_eq!(appended.ok(), Some(ords.len() as u64));
    bm
}

type LevelCompressor = (i32, zstd::bulk::Compressor<'static>, Vec<u8>);

thread_local! {
    /// A block's uncompressed bytes, reused by each worker.
    static RAW_BLOCK: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    static COMPRESSOR: std::cell::RefCell<Option<LevelCompressor>> =
        const { std::cell::RefCell::new(None) };
}

/// Compresses a block at `level` with this thread's reusable zstd context
/// (a fresh context per block costs a table reset that dominated ingest
/// profiles), made anew when the level changes.
fn compress(raw: &[u8], level: i32) -> std::io::Result<Vec<u8>> {
    COMPRESSOR.with(|c| {
        let mut c = c.borrow_mut();
        let (_, z, buf) = match &mut *c {
            Some((l, _, _)) if *l == level => c.as_mut().expect("matched"),
            slot => slot.insert((level, zstd::bulk::Compressor::new(level)?, Vec::new())),
        };
        // Into this thread's scratch buffer (sized for the worst case once),
        // then copied out at its real size: a fresh worst-case buffer per
        // block was faulted in and zeroed by the kernel every time.
        buf.clear();
        buf.reserve(zstd::zstd_safe::compress_bound(raw.len()));
        z.compress_to_buffer(raw, buf)?;
        Ok(buf.as_slice().to_vec())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::{field_name, FieldName};

    fn doc(i: usize, facets: &[(&str, String)]) -> DocRecord {
        DocRecord {
            key: format!("k{i:06}"),
            text: format!("text {i}"),
            prefix: b"{\"text\":".to_vec(),
            suffix: b"}".to_vec(),
            facets: facets
                .iter()
                .map(|(f, v)| (field_name(f), v.clone()))
                .collect(),
            present: facets
                .iter()
                .map(|(f, _)| (field_name(f), FieldKind::Facet))
                .collect(),
            ..DocRecord::default()
        }
    }

    #[test]
    fn postings_and_term_counts_match_the_documents() {
        // 10,000 documents: `all` in every one (a dense bitmap container),
        // `odd` in half, `one` unique per document, `rare` in every 997th;
        // a value repeated within a document counts it once.
        let n = 10_000;
        let docs: Vec<DocRecord> = (0..n)
            .map(|i| {
                let mut f = vec![
                    ("all", "x".to_string()),
                    ("odd", (i % 2).to_string()),
                    ("one", format!("v{i}")),
                ];
                if i % 997 == 0 {
                    f.push(("rare", "r".into()));
                    f.push(("rare", "r".into()));
                }
                doc(i, &f)
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seg.cqs");
        write_segment(&path, docs, &[]).unwrap();
        let seg = crate::segment::Segment::open(&path).unwrap();
        let ord_of = |i: usize| seg.key_ordinal(&format!("k{i:06}")).unwrap();
        assert_eq!(seg.postings("all", "x").unwrap().len(), n as u64);
        let odd = seg.postings("odd", "1").unwrap();
        assert_eq!(odd.len(), n as u64 / 2);
        for i in 0..100 {
            assert_eq!(odd.contains(ord_of(i)), i % 2 == 1);
        }
        let rare = seg.postings("rare", "r").unwrap();
        let rare_docs: Vec<usize> = (0..n).filter(|i| i % 997 == 0).collect();
        assert_eq!(rare.len(), rare_docs.len() as u64);
        let (_, rare_id) = seg.terms_with_prefix("rare", "")[0];
        let rare_bytes: usize = rare_docs.iter().map(|i| format!("text {i}").len()).sum();
        assert_eq!(
            seg.term_counts(rare_id).unwrap(),
            (rare_docs.len() as u32, rare_bytes as u64)
        );
        let ones = seg.terms_with_prefix("one", "");
        assert_eq!(ones.len(), n);
        for (v, id) in ones.iter().step_by(331) {
            let (docs, _) = seg.term_counts(*id).unwrap();
            assert_eq!(docs, 1);
            let i: usize = v[1..].parse().unwrap();
            let p = seg.postings_of(*id).unwrap();
            assert_eq!(p.iter().collect::<Vec<_>>(), vec![ord_of(i)]);
        }
        assert_eq!(seg.presence("one").unwrap().len(), n as u64);
    }

    #[test]
    fn a_field_name_holding_the_separator_keeps_the_dictionary_sorted() {
        let docs = vec![
            doc(0, &[("a", "b".into()), ("a\0b", "c".into())]),
            doc(1, &[("a", "z".into()), ("a\0", "y".into())]),
            doc(2, &[("a", "\u{1}".into())]),
        ];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seg.cqs");
        write_segment(&path, docs, &[]).unwrap();
        let seg = crate::segment::Segment::open(&path).unwrap();
        assert_eq!(seg.postings("a", "z").unwrap().len(), 1);
        assert_eq!(seg.postings("a\0b", "c").unwrap().len(), 1);
        assert_eq!(seg.postings("a\0", "y").unwrap().len(), 1);
    }

    #[test]
    fn colliding_term_keys_fail_naming_the_file_and_the_term() {
        // `a` = `\0b` and `a\0` = `b` both make the key `a \0 \0 b`. Ingest
        // refuses NUL in field names; a segment of an older corpus being
        // compacted could still hold both.
        let docs = vec![
            doc(0, &[("a", "\0b".into())]),
            doc(1, &[("a\0", "b".into())]),
        ];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seg.cqs");
        let e = write_segment(&path, docs, &[]).unwrap_err().to_string();
        assert!(e.contains("seg.cqs"), "{e}");
        assert!(e.contains("a field name holds a NUL character"), "{e}");
        assert!(e.contains(r"facet `a\0` = `b`"), "{e}");
    }

    #[test]
    fn field_names_are_shared_up_to_the_bound() {
        let a = field_name("meta.language");
        let b = field_name("meta.language");
        assert!(
            matches!((&a, &b), (FieldName::Borrowed(x), FieldName::Borrowed(y)) if std::ptr::eq(*x, *y))
        );
        let long = "x".repeat(crate::segment::MAX_INTERNED_LEN + 1);
        assert!(matches!(field_name(&long), FieldName::Owned(_)));
        // Past the bound, new names are owned (and still equal to the input).
        for i in 0..crate::segment::MAX_INTERNED + 10 {
            let name = format!("writer-test-{i}");
            assert_eq!(field_name(&name), name.as_str());
        }
        assert!(matches!(
            field_name("writer-test-never-seen"),
            FieldName::Owned(_)
        ));
    }
}
