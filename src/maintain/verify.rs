//! Verification: the catalog, every checksum and structure of every
//! segment and sidecar (tag sidecars and stored token ids), and tombstones
//! that stay within their segments, reported segment by segment.

use std::path::Path;

use serde::Serialize;

use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::segment::Segment;

/// The outcome of checking one segment.
#[derive(Debug, Clone, Serialize)]
pub struct SegmentCheck {
    /// File name.
    pub file: String,
    /// Documents.
    pub docs: u32,
    /// Bytes checked.
    pub bytes: u64,
    /// `None` when everything checked out, else the problem.
    pub error: Option<String>,
}

/// The outcome of `verify`.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// Generation checked.
    pub generation: u64,
    /// Per segment.
    pub segments: Vec<SegmentCheck>,
    /// Problems outside segments (catalog, tombstones, stray files).
    pub problems: Vec<String>,
}

impl VerifyReport {
    /// True when nothing is wrong.
    pub fn ok(&self) -> bool {
        self.problems.is_empty() && self.segments.iter().all(|s| s.error.is_none())
    }
}

/// Checks the catalog, every segment's every checksum and structure, and
/// that tombstones stay within their segments.
pub fn verify(dir: &Path) -> Result<VerifyReport> {
    let catalog = Catalog::new(dir);
    if !catalog.exists() {
        return Err(Error::NoCorpus { path: dir.into() });
    }
    let st = catalog.state_from_db()?;
    let mut segments = Vec::new();
    let mut problems = Vec::new();
    let checks: Vec<SegmentCheck> = {
        use rayon::prelude::*;
        st.segments
            .par_iter()
            .map(|e| {
                let r = Segment::open(&dir.join(&e.file)).and_then(|s| {
                    if s.doc_count() != e.docs {
                        return Err(Error::corrupt(
                            s.path(),
                            format!(
                                "catalog lists {} documents, the file holds {}",
                                e.docs,
                                s.doc_count()
                            ),
                        ));
                    }
                    s.verify()
                });
                SegmentCheck {
                    file: e.file.clone(),
                    docs: e.docs,
                    bytes: *r.as_ref().unwrap_or(&0),
                    error: r.err().map(|e| e.to_string()),
                }
            })
            .collect()
    };
    segments.extend(checks);
    for (id, t) in &st.tombstones {
        match st.segments.iter().find(|s| s.id == *id) {
            None => problems.push(format!(
                "tombstones for segment {id}, which the catalog does not list"
            )),
            Some(s) => {
                if t.max().is_some_and(|m| m >= s.docs) {
                    problems.push(format!("tombstones of {} name documents beyond it", s.file));
                }
            }
        }
    }
    // Tag sidecars: every listed file, every column's checksum and shape.
    for (id, list) in &st.tags {
        let Some(seg) = st.segments.iter().find(|s| s.id == *id) else {
            problems.push(format!(
                "tag sidecars for segment {id}, which the catalog does not list"
            ));
            continue;
        };
        for t in list {
            let path = dir.join(&t.file);
            let r =
                crate::segment::sidecar::Sidecar::open(&path, t.columns.clone()).and_then(|sc| {
                    sc.verify()?;
                    let (m, tagged) = sc.meta()?;
                    if m.doc_count != seg.docs {
                        return Err(Error::corrupt(
                            &path,
                            format!(
                                "sidecar holds {} documents, its segment {}",
                                m.doc_count, seg.docs
                            ),
                        ));
                    }
                    if tagged.len() != t.tagged_docs as u64 {
                        return Err(Error::corrupt(
                            &path,
                            format!(
                                "catalog says {} documents tagged, the file {}",
                                t.tagged_docs,
                                tagged.len()
                            ),
                        ));
                    }
                    Ok(())
                });
            if let Err(e) = r {
                problems.push(e.to_string());
            }
        }
    }
    // Stored token ids (`tokenize --keep-ids`): every chunk of the files of
    // listed segments (a file of a segment that is gone is an orphan,
    // collected by the next writer).
    let rd = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut ids_files: Vec<(String, String, String)> = Vec::new();
    for ent in rd.flatten() {
        let name = ent.file_name().to_string_lossy().into_owned();
        if let Some((stem, tok)) = crate::token_ids::parse_ids_name(&name) {
            if let Some(e) = st
                .segments
                .iter()
                .find(|e| e.file.split('.').next() == Some(stem))
            {
                ids_files.push((e.file.clone(), tok.to_string(), name.clone()));
            }
        }
    }
    ids_files.sort();
    for (file, tok, name) in ids_files {
        let r =
            Segment::open(&dir.join(&file)).and_then(
                |seg| match crate::token_ids::SegmentIds::open(dir, &file, &seg, &tok)? {
                    Some(ids) => ids.verify().map(|_| ()),
                    None => Ok(()),
                },
            );
        if let Err(e) = r {
            problems.push(format!("{name}: {e}"));
        }
    }
    Ok(VerifyReport {
        generation: st.generation,
        segments,
        problems,
    })
}
