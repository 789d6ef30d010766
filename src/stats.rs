//! Statistics of a selection: documents and text bytes grouped by facets
//! (or numeric values), with shares — computed from postings and columns,
//! never from text.

use std::collections::BTreeMap;

use roaring::RoaringBitmap;
use serde::Serialize;

use crate::corpus::Corpus;
use crate::error::{Error, Result};
use crate::schema::{FieldKind, Resolved};
use crate::segment::Segment;
use crate::select::Selection;

/// One group of a stats table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    /// Values of the `by` fields (`None` where a document lacks the field).
    pub values: Vec<Option<String>>,
    /// Documents.
    pub docs: u64,
    /// UTF-8 text bytes.
    pub bytes: u64,
    /// Share of the selection's documents.
    pub doc_share: f64,
    /// Share of the selection's bytes.
    pub byte_share: f64,
}

/// A stats table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stats {
    /// Fields grouped by.
    pub by: Vec<String>,
    /// Documents selected.
    pub docs: u64,
    /// Text bytes selected.
    pub bytes: u64,
    /// Live documents of the corpus.
    pub corpus_docs: u64,
    /// Groups, largest first.
    pub groups: Vec<Group>,
}

fn partition(
    corpus: &Corpus,
    seg: &Segment,
    field: &str,
    bm: &RoaringBitmap,
) -> Result<Vec<(Option<String>, RoaringBitmap)>> {
    let kind = corpus.schema().resolve(field);
    let mut out = Vec::new();
    match kind {
        Some(Resolved::Field(FieldKind::Facet | FieldKind::Bool)) => {
            let (values, _) = seg.split_by_values(field, bm, false)?;
            out.extend(values.into_iter().map(|(v, b)| (Some(v), b)));
        }
        Some(Resolved::Field(FieldKind::Number)) | Some(Resolved::Bytes) => {
            let col_name = if kind == Some(Resolved::Bytes) {
                crate::format::BYTES_FIELD
            } else {
                field
            };
            if let Some(col) = seg.numeric(col_name)? {
                let present = if kind == Some(Resolved::Bytes) {
                    bm.clone()
                } else {
                    seg.presence(field)? & bm
                };
                let mut groups: BTreeMap<String, RoaringBitmap> = BTreeMap::new();
                for o in present.iter() {
                    groups
                        .entry(format_num(col[o as usize]))
                        .or_default()
                        .insert(o);
                }
                out.extend(groups.into_iter().map(|(k, v)| (Some(k), v)));
            }
        }
        Some(Resolved::Key) => {
            return Err(Error::Invalid(
                "cannot group by the key: every group would hold one document".into(),
            ))
        }
        Some(Resolved::Field(_)) => {
            return Err(Error::Invalid(format!(
                "cannot group by `{field}`: it holds objects"
            )))
        }
        None => {
            if let Some(hint) = crate::tag::Tagger::not_computed_hint(field) {
                return Err(Error::Invalid(hint));
            }
            let known = corpus.schema().known_names();
            let hint = crate::query::suggest(field, known.iter().copied())
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_default();
            return Err(Error::Invalid(format!("unknown field `{field}`{hint}")));
        }
    }
    let missing = if kind == Some(Resolved::Bytes) {
        RoaringBitmap::new()
    } else {
        bm - seg.presence(field)?
    };
    if !missing.is_empty() {
        out.push((None, missing));
    }
    Ok(out)
}

/// Formats a number the way JSON would (integers without a fraction).
pub fn format_num(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

fn bytes_of(seg: &Segment, bm: &RoaringBitmap) -> Result<u64> {
    Ok(match seg.numeric(crate::format::BYTES_FIELD)? {
        Some(col) => bm.iter().map(|o| col[o as usize] as u64).sum(),
        None => 0,
    })
}

/// Groups `sel` by the fields `by` (the cross product of their values).
pub fn stats(corpus: &Corpus, sel: &Selection, by: &[String]) -> Result<Stats> {
    let mut acc: BTreeMap<Vec<Option<String>>, (u64, u64)> = BTreeMap::new();
    for (seg, bm) in sel.parts() {
        let mut frontier: Vec<(Vec<Option<String>>, RoaringBitmap)> =
            vec![(Vec::new(), bm.clone())];
        for f in by {
            let mut next = Vec::new();
            for (vals, b) in frontier {
                for (v, sub) in partition(corpus, seg, f, &b)? {
                    let mut nv = vals.clone();
                    nv.push(v);
                    next.push((nv, sub));
                }
            }
            frontier = next;
        }
        for (vals, b) in frontier {
            if b.is_empty() {
                continue;
            }
            let e = acc.entry(vals).or_default();
            e.0 += b.len();
            e.1 += bytes_of(seg, &b)?;
        }
    }
    let docs = sel.count();
    let bytes = sel.text_bytes()?;
    let mut groups: Vec<Group> = acc
        .into_iter()
        .map(|(values, (d, b))| Group {
            values,
            docs: d,
            bytes: b,
            doc_share: if docs > 0 {
                d as f64 / docs as f64
            } else {
                0.0
            },
            byte_share: if bytes > 0 {
                b as f64 / bytes as f64
            } else {
                0.0
            },
        })
        .collect();
    groups.sort_by(|a, b| b.docs.cmp(&a.docs).then_with(|| a.values.cmp(&b.values)));
    Ok(Stats {
        by: by.to_vec(),
        docs,
        bytes,
        corpus_docs: corpus.len(),
        groups,
    })
}
