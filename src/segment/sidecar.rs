//! Tag sidecars: the signal columns one tagger computed for one segment,
//! in a checksummed file beside the segment (`seg-<id>.tag-<tagger>-<gen>.cqt`).
//!
//! Segments are never rewritten to add signals. A tagger writes a new
//! sidecar under a new name (temporary name, fsync, rename) and the catalog
//! commit that lists it is what makes it visible; a crash before the commit
//! leaves an orphan file that the next writer removes.
//!
//! Layout (format 2, little-endian): the common frame of kind
//! [`FileKind::Sidecar`] around the column blobs, the postcard
//! [`SidecarMeta`], the `u32` meta length and the meta's `u32` CRC32C. Each
//! column blob has its own CRC32C in the meta, checked when the column is
//! first decoded (so damage to one column fails only the queries that read
//! it); the frame's CRC32C is checked against the column and meta checksums
//! when the meta is first read, and over every byte by [`Sidecar::verify`].
//! A number column is zstd-compressed
//! `f64`s, one per ordinal, NaN where a document has no value; a facet or
//! bool column is zstd-compressed postcard `(value, roaring postings)`
//! pairs. Format 1 (magic `CQLTAG01`, the same blobs and meta, then meta
//! length, meta CRC32C and `CQTF`) is still read.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use roaring::RoaringBitmap;
use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};
use crate::format::{self, v1, FileKind, FrameError};
use crate::schema::FieldKind;

/// The file name of a sidecar of `segment_file` written by `tagger` at `generation`.
pub fn file_name(segment_file: &str, tagger: &str, generation: u64) -> String {
    let stem = segment_file.split('.').next().unwrap_or(segment_file);
    format!("{stem}.tag-{tagger}-{generation}.cqt")
}

/// The tagger of a sidecar file name made by [`file_name`].
pub fn tagger_of(file_name: &str) -> Option<&str> {
    let rest = file_name.split_once(".tag-")?.1;
    Some(rest.rsplit_once('-')?.0)
}

/// One column's place in the file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ColumnMeta {
    /// Column (signal) name.
    pub name: String,
    /// Number, facet or bool.
    pub kind: FieldKind,
    /// Offset of the blob from the start of the file.
    pub offset: u64,
    /// Blob length.
    pub len: u64,
    /// CRC32C of the blob.
    pub crc: u32,
}

/// What a sidecar holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SidecarMeta {
    /// Tagger name.
    pub tagger: String,
    /// Tagger version the values were computed with.
    pub version: String,
    /// Documents in the segment.
    pub doc_count: u32,
    /// Serialized roaring bitmap of the ordinals the tagger has seen.
    pub tagged: Vec<u8>,
    /// Columns.
    pub columns: Vec<ColumnMeta>,
}

/// Values of one column, by ordinal, to write.
#[derive(Debug, Clone)]
pub enum ColumnValues {
    /// Numbers (NaN = no value).
    Number(Vec<f64>),
    /// Strings (None = no value).
    Facet(Vec<Option<String>>),
    /// Booleans (None = no value).
    Bool(Vec<Option<bool>>),
}

impl ColumnValues {
    /// The schema kind of the column.
    pub fn kind(&self) -> FieldKind {
        match self {
            ColumnValues::Number(_) => FieldKind::Number,
            ColumnValues::Facet(_) => FieldKind::Facet,
            ColumnValues::Bool(_) => FieldKind::Bool,
        }
    }
}

fn postings_of<'a>(vals: impl Iterator<Item = Option<&'a str>>) -> Vec<(String, Vec<u8>)> {
    let mut map: std::collections::BTreeMap<&str, RoaringBitmap> = Default::default();
    for (i, v) in vals.enumerate() {
        if let Some(v) = v {
            map.entry(v).or_default().insert(i as u32);
        }
    }
    map.into_iter()
        .map(|(v, bm)| {
            let mut b = Vec::new();
            bm.serialize_into(&mut b).expect("Vec write");
            (v.to_string(), b)
        })
        .collect()
}

/// Writes a sidecar atomically ([`crate::storage::write_file_atomic`]).
/// Every column must hold `doc_count` values.
pub fn write(
    path: &Path,
    tagger: &str,
    version: &str,
    doc_count: u32,
    tagged: &RoaringBitmap,
    columns: &[(String, ColumnValues)],
) -> Result<u64> {
    // The payload; column offsets count from the start of the file.
    let mut out = Vec::new();
    let mut metas = Vec::new();
    for (name, vals) in columns {
        let raw = match vals {
            ColumnValues::Number(v) => {
                assert_eq!(v.len(), doc_count as usize, "column {name}");
                v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>()
            }
            ColumnValues::Facet(v) => {
                assert_eq!(v.len(), doc_count as usize, "column {name}");
                postcard::to_stdvec(&postings_of(v.iter().map(|x| x.as_deref())))
                    .map_err(|e| Error::Invalid(format!("encoding column {name}: {e}")))?
            }
            ColumnValues::Bool(v) => {
                assert_eq!(v.len(), doc_count as usize, "column {name}");
                let strs = v
                    .iter()
                    .map(|x| x.map(|b| if b { "true" } else { "false" }));
                postcard::to_stdvec(&postings_of(strs))
                    .map_err(|e| Error::Invalid(format!("encoding column {name}: {e}")))?
            }
        };
        let blob = zstd::bulk::compress(&raw, 3).at(path)?;
        metas.push(ColumnMeta {
            name: name.clone(),
            kind: vals.kind(),
            offset: (format::HEADER_LEN + out.len()) as u64,
            len: blob.len() as u64,
            crc: crc32c::crc32c(&blob),
        });
        out.extend_from_slice(&blob);
    }
    let mut tb = Vec::new();
    tagged.serialize_into(&mut tb).expect("Vec write");
    let meta = SidecarMeta {
        tagger: tagger.into(),
        version: version.into(),
        doc_count,
        tagged: tb,
        columns: metas,
    };
    let mb = postcard::to_stdvec(&meta)
        .map_err(|e| Error::Invalid(format!("encoding sidecar meta: {e}")))?;
    out.extend_from_slice(&mb);
    out.extend_from_slice(&(mb.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(&mb).to_le_bytes());
    let file = format::encode(FileKind::Sidecar, &out);
    crate::storage::write_file_atomic(path, &file)?;
    Ok(file.len() as u64)
}

/// Why a sidecar's meta cannot be read.
#[derive(Debug)]
enum MetaError {
    /// The frame is wrong (kind, version, truncation, checksum).
    Frame(FrameError),
    /// Anything else.
    Other(String),
}

/// The checked meta bytes of a format-1 sidecar: magic `CQLTAG01`, blobs,
/// meta, `u32` meta length, `u32` meta CRC32C, `CQTF`.
fn meta_v1(b: &[u8]) -> std::result::Result<&[u8], MetaError> {
    let bad = |d: &str| Err(MetaError::Other(d.into()));
    let n = b.len();
    if n < v1::SIDECAR_MAGIC.len() + v1::SIDECAR_TRAILER_LEN {
        return bad("sidecar footer missing: truncated file");
    }
    if b[n - 4..] != v1::SIDECAR_FOOTER {
        return bad("sidecar footer missing: truncated file");
    }
    let len = u32::from_le_bytes([b[n - 12], b[n - 11], b[n - 10], b[n - 9]]) as usize;
    let crc = u32::from_le_bytes([b[n - 8], b[n - 7], b[n - 6], b[n - 5]]);
    if len > n - v1::SIDECAR_MAGIC.len() - v1::SIDECAR_TRAILER_LEN {
        return bad("sidecar meta length out of bounds");
    }
    let mb = &b[n - 12 - len..n - 12];
    if crc32c::crc32c(mb) != crc {
        return bad("sidecar meta checksum mismatch");
    }
    Ok(mb)
}

/// A decoded column.
#[derive(Debug)]
pub enum Column {
    /// Numbers by ordinal (NaN = none) and the ordinals that have one.
    Number(Arc<Vec<f64>>, RoaringBitmap),
    /// Values with their postings (sorted by value), and the ordinals that
    /// have one. Shared: lookups hand out the `Arc`, never a copy.
    Facet(Arc<Vec<(String, RoaringBitmap)>>, RoaringBitmap),
}

/// An open sidecar. The file is opened eagerly (so a later unlink by
/// another writer does not pull it from under a reader) and read on first use.
#[derive(Debug)]
pub struct Sidecar {
    path: PathBuf,
    file: File,
    bytes: OnceLock<std::result::Result<Vec<u8>, String>>,
    meta: OnceLock<std::result::Result<(SidecarMeta, RoaringBitmap), MetaError>>,
    cols: Vec<OnceLock<Arc<Column>>>,
    /// Column names and kinds, as the catalog lists them.
    names: Vec<(String, FieldKind)>,
}

impl Sidecar {
    /// Opens `path`, whose columns are `names` (from the catalog's signal table).
    pub fn open(path: &Path, names: Vec<(String, FieldKind)>) -> Result<Sidecar> {
        let file = File::open(path).at(path)?;
        Ok(Sidecar {
            path: path.into(),
            file,
            bytes: OnceLock::new(),
            meta: OnceLock::new(),
            cols: names.iter().map(|_| OnceLock::new()).collect(),
            names,
        })
    }

    /// Path of the file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Column names and kinds.
    pub fn columns(&self) -> &[(String, FieldKind)] {
        &self.names
    }

    fn corrupt(&self, d: impl Into<String>) -> Error {
        let tagger = self
            .path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(tagger_of)
            .unwrap_or("all");
        Error::CorruptSignals {
            path: self.path.clone(),
            tagger: tagger.to_string(),
            detail: d.into(),
        }
    }

    fn bytes(&self) -> Result<&[u8]> {
        let r = self.bytes.get_or_init(|| {
            use std::io::Read;
            let mut b = Vec::new();
            (&self.file)
                .read_to_end(&mut b)
                .map(|_| b)
                .map_err(|e| e.to_string())
        });
        r.as_deref()
            .map_err(|e| Error::corrupt(&self.path, format!("reading: {e}")))
    }

    /// The header, checked (with the whole file's CRC32C, format 2 on).
    pub fn meta(&self) -> Result<(&SidecarMeta, &RoaringBitmap)> {
        match self.meta.get_or_init(|| self.read_meta()) {
            Ok((m, t)) => Ok((m, t)),
            Err(MetaError::Frame(e @ FrameError::Future { .. })) => {
                Err(e.clone().into_error(&self.path))
            }
            Err(MetaError::Frame(e)) => Err(self.corrupt(e.to_string())),
            Err(MetaError::Other(e)) => Err(self.corrupt(e.clone())),
        }
    }

    /// The checked header, or what is wrong with it.
    fn read_meta(&self) -> std::result::Result<(SidecarMeta, RoaringBitmap), MetaError> {
        let b = match self.bytes.get_or_init(|| {
            use std::io::Read;
            let mut b = Vec::new();
            (&self.file)
                .read_to_end(&mut b)
                .map(|_| b)
                .map_err(|e| e.to_string())
        }) {
            Ok(b) => b,
            Err(e) => return Err(MetaError::Other(format!("reading: {e}"))),
        };
        let (mb, frame) = if b.starts_with(&v1::SIDECAR_MAGIC) {
            (meta_v1(b)?, None)
        } else {
            let frame = format::decode(FileKind::Sidecar, b).map_err(MetaError::Frame)?;
            let p = frame.payload;
            let Some(at) = p.len().checked_sub(format::SIDECAR_TAIL_LEN) else {
                return Err(MetaError::Other("sidecar meta length missing".into()));
            };
            let len = u32::from_le_bytes([p[at], p[at + 1], p[at + 2], p[at + 3]]) as usize;
            let crc = u32::from_le_bytes([p[at + 4], p[at + 5], p[at + 6], p[at + 7]]);
            if len > at {
                return Err(MetaError::Other("sidecar meta length out of bounds".into()));
            }
            let mb = &p[at - len..at];
            if crc32c::crc32c(mb) != crc {
                return Err(MetaError::Other("sidecar meta checksum mismatch".into()));
            }
            let meta_at = (format::HEADER_LEN + at - len) as u64;
            (mb, Some((frame.crc, (meta_at, len as u64, crc))))
        };
        let meta: SidecarMeta =
            postcard::from_bytes(mb).map_err(|e| MetaError::Other(format!("sidecar meta: {e}")))?;
        if let Some((stored, meta_part)) = frame {
            // The frame CRC32C from the column and meta checksums, without
            // decoding the columns (each is checked when read).
            let mut parts: Vec<(u64, u64, u32)> = meta
                .columns
                .iter()
                .map(|c| (c.offset, c.len, c.crc))
                .chain([meta_part])
                .collect();
            match format::crc_from_parts(b, b.len() - format::TRAILER_LEN, &mut parts) {
                None => {
                    return Err(MetaError::Other(
                        "sidecar columns overlap or lie outside the payload".into(),
                    ))
                }
                Some(computed) if computed != stored => {
                    return Err(MetaError::Frame(FrameError::Checksum { stored, computed }))
                }
                Some(_) => {}
            }
        }
        let tagged = RoaringBitmap::deserialize_from(&meta.tagged[..])
            .map_err(|e| MetaError::Other(format!("sidecar tagged set: {e}")))?;
        Ok((meta, tagged))
    }

    /// Ordinals the tagger has seen.
    pub fn tagged(&self) -> Result<&RoaringBitmap> {
        Ok(self.meta()?.1)
    }

    /// Index of column `name`.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|(n, _)| n == name)
    }

    /// Column `i` (of [`Sidecar::columns`]), decoded once.
    pub fn column(&self, i: usize) -> Result<Arc<Column>> {
        if let Some(c) = self.cols[i].get() {
            return Ok(c.clone());
        }
        let (meta, _) = self.meta()?;
        let name = &self.names[i].0;
        let Some(cm) = meta.columns.iter().find(|c| &c.name == name) else {
            return Err(self.corrupt(format!("sidecar lacks column {name}")));
        };
        let b = self.bytes()?;
        let end = cm
            .offset
            .checked_add(cm.len)
            .filter(|&e| e <= b.len() as u64);
        let Some(end) = end else {
            return Err(self.corrupt(format!("column {name} out of bounds")));
        };
        let blob = &b[cm.offset as usize..end as usize];
        if crc32c::crc32c(blob) != cm.crc {
            return Err(self.corrupt(format!("column {name}: checksum mismatch")));
        }
        let n = meta.doc_count as usize;
        let raw = zstd::stream::decode_all(blob)
            .map_err(|e| self.corrupt(format!("column {name}: {e}")))?;
        let col = match cm.kind {
            FieldKind::Number => {
                if raw.len() != n * 8 {
                    return Err(self.corrupt(format!("column {name} has the wrong length")));
                }
                let v: Vec<f64> = raw
                    .chunks_exact(8)
                    .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
                    .collect();
                let present = RoaringBitmap::from_sorted_iter(
                    v.iter()
                        .enumerate()
                        .filter(|(_, x)| !x.is_nan())
                        .map(|(i, _)| i as u32),
                )
                .unwrap_or_default();
                Column::Number(Arc::new(v), present)
            }
            _ => {
                let pairs: Vec<(String, Vec<u8>)> = postcard::from_bytes(&raw)
                    .map_err(|e| self.corrupt(format!("column {name}: {e}")))?;
                let mut all = RoaringBitmap::new();
                let mut out = Vec::with_capacity(pairs.len());
                for (v, pb) in pairs {
                    let bm = RoaringBitmap::deserialize_from(&pb[..])
                        .map_err(|e| self.corrupt(format!("column {name}: {e}")))?;
                    if bm.max().is_some_and(|m| m as usize >= n) {
                        return Err(self.corrupt(format!(
                            "column {name} names a document beyond the segment"
                        )));
                    }
                    all |= &bm;
                    out.push((v, bm));
                }
                Column::Facet(Arc::new(out), all)
            }
        };
        let col = Arc::new(col);
        let _ = self.cols[i].set(col.clone());
        Ok(col)
    }

    /// Checks the whole file: header, every column's checksum and shape,
    /// and (format 2 on) the frame CRC32C of every byte.
    pub fn verify(&self) -> Result<()> {
        for i in 0..self.names.len() {
            self.column(i)?;
        }
        let b = self.bytes()?;
        if !b.starts_with(&v1::SIDECAR_MAGIC) {
            format::decode_whole(FileKind::Sidecar, b).map_err(|e| self.corrupt(e.to_string()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_name_their_tagger() {
        let f = file_name("seg-0000000007.cqs", "quality", 12);
        assert_eq!(f, "seg-0000000007.tag-quality-12.cqt");
        assert_eq!(tagger_of(&f), Some("quality"));
        assert_eq!(tagger_of("seg-0000000007.cqs"), None);
    }

    #[test]
    fn round_trip_and_damage() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("seg-0000000001.tag-x-3.cqt");
        let tagged: RoaringBitmap = (0..4).collect();
        let cols = vec![
            (
                "score".to_string(),
                ColumnValues::Number(vec![0.5, f64::NAN, 2.0, -1.0]),
            ),
            (
                "label".to_string(),
                ColumnValues::Facet(vec![
                    Some("fr".into()),
                    None,
                    Some("en".into()),
                    Some("fr".into()),
                ]),
            ),
            (
                "flag".to_string(),
                ColumnValues::Bool(vec![Some(true), Some(false), None, Some(true)]),
            ),
        ];
        write(&p, "x", "x-1", 4, &tagged, &cols).unwrap();
        let names = cols.iter().map(|(n, v)| (n.clone(), v.kind())).collect();
        let s = Sidecar::open(&p, names).unwrap();
        assert_eq!(s.meta().unwrap().0.version, "x-1");
        match &*s.column(0).unwrap() {
            Column::Number(v, present) => {
                assert_eq!(v[0], 0.5);
                assert!(v[1].is_nan());
                assert_eq!(present.iter().collect::<Vec<_>>(), vec![0, 2, 3]);
            }
            _ => panic!(),
        }
        match &*s.column(1).unwrap() {
            Column::Facet(vals, present) => {
                assert_eq!(vals[0].0, "en");
                assert_eq!(vals[1].1.iter().collect::<Vec<_>>(), vec![0, 3]);
                assert_eq!(present.len(), 3);
            }
            _ => panic!(),
        }
        match &*s.column(2).unwrap() {
            Column::Facet(vals, _) => {
                assert_eq!(vals.len(), 2);
                assert_eq!(
                    vals[1],
                    ("true".to_string(), [0u32, 3].into_iter().collect())
                );
            }
            _ => panic!(),
        }
        // Any flipped byte is detected.
        let good = std::fs::read(&p).unwrap();
        for at in [3usize, 12, good.len() / 2, good.len() - 14, good.len() - 2] {
            let mut bad = good.clone();
            bad[at] ^= 0x40;
            std::fs::write(&p, &bad).unwrap();
            let names = cols.iter().map(|(n, v)| (n.clone(), v.kind())).collect();
            let s = Sidecar::open(&p, names).unwrap();
            assert!(s.verify().is_err(), "flip at {at} not detected");
        }
    }
}
