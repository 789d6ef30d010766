//! Compaction: every live document rewritten into new segments, clustered
//! across the whole corpus by its cluster fields, deleted documents dropped,
//! swapped in by one commit; signal columns carried over where they stay
//! valid, stored token ids (`.cqi`) carried for the documents kept,
//! deduplication recomputed.

use std::path::Path;

use roaring::RoaringBitmap;
use serde::Serialize;

use crate::catalog::{Catalog, Commit, SegmentEntry};
use crate::corpus::{collect_orphans, segment_file_name, Corpus, WriteLock};
use crate::error::{Error, Result};
use crate::ingest::record::{parse_line, Parsed, RecordOptions};
use crate::segment::{write_segment, DocRecord, Segment};

/// What a compaction did.
#[derive(Debug, Clone, Serialize)]
pub struct CompactReport {
    /// Segments before.
    pub segments_before: usize,
    /// Segments after.
    pub segments_after: usize,
    /// Live documents rewritten.
    pub docs: u64,
    /// Deleted documents dropped.
    pub dropped: u64,
    /// Bytes of segment files before.
    pub bytes_before: u64,
    /// Bytes of segment files after.
    pub bytes_after: u64,
    /// New generation.
    pub generation: u64,
    /// The generation of the deduplication run that followed, when the
    /// corpus had duplicate signals (they depend on the whole corpus, so
    /// they are recomputed rather than carried).
    pub dedup_generation: Option<u64>,
}

/// Rewrites every live document into new segments of about `segment_bytes`,
/// clustered across the whole corpus by its cluster fields; deleted
/// documents are dropped. One commit swaps old for new. Per-document
/// signals are carried in that commit; when the corpus had duplicate
/// signals, deduplication then runs again (a second commit), so
/// `is_dup = false` selects after a compaction what it selected before,
/// less the dropped documents.
pub fn compact(dir: &Path, segment_bytes: usize) -> Result<CompactReport> {
    let lock = WriteLock::acquire(dir)?;
    Catalog::new(dir).refresh_current()?;
    let corpus = Corpus::open(dir)?;
    let st = corpus.state().clone();
    let bytes_before: u64 = st.segments.iter().map(|s| s.file_bytes).sum();
    let total_docs: u64 = st.segments.iter().map(|s| s.docs as u64).sum();
    let opts = RecordOptions {
        text_field: Some(st.schema.text_field.clone()),
        id_field: Some(st.schema.key_field.clone()),
        set: Vec::new(),
    };
    // Cluster groups across all segments, in cluster-key order.
    let all = corpus.all();
    let by: Vec<String> = st
        .cluster_fields
        .iter()
        .filter(|f| st.schema.fields.contains_key(*f))
        .cloned()
        .collect();
    let mut groups: std::collections::BTreeMap<Vec<Option<String>>, Vec<RoaringBitmap>> =
        Default::default();
    for (p, (seg, bm)) in all.parts().iter().enumerate() {
        let mut frontier: Vec<(Vec<Option<String>>, RoaringBitmap)> =
            vec![(Vec::new(), bm.clone())];
        for f in &by {
            let mut next = Vec::new();
            for (vals, b) in frontier {
                // First value per document decides its cluster (as at ingest).
                let (values, rest) = seg.split_by_values(f, &b, true)?;
                for (v, sub) in values
                    .into_iter()
                    .map(|(v, b)| (Some(v), b))
                    .chain([(None, rest)])
                {
                    if !sub.is_empty() {
                        let mut nv = vals.clone();
                        nv.push(v);
                        next.push((nv, sub));
                    }
                }
            }
            frontier = next;
        }
        for (vals, b) in frontier {
            let e = groups
                .entry(vals)
                .or_insert_with(|| vec![RoaringBitmap::new(); all.parts().len()]);
            e[p] |= b;
        }
    }
    let mut next_id = st.next_segment_id;
    let mut written: Vec<SegmentEntry> = Vec::new();
    let mut builder: Vec<DocRecord> = Vec::new();
    let mut builder_bytes = 0usize;
    let mut docs = 0u64;
    // Where each document of the builder comes from: (part, ordinal).
    let mut origin: Vec<(usize, u32)> = Vec::new();
    let mut carried: Vec<(u64, Vec<crate::catalog::TagEntry>)> = Vec::new();
    let generation = st.generation + 1;
    // Token-id files of the old segments, carried into the new ones.
    let id_sources = crate::token_ids::carry_sources(dir, all.parts())?;
    let mut ids_written: Vec<std::path::PathBuf> = Vec::new();
    let mut flush = |builder: &mut Vec<DocRecord>,
                     origin: &mut Vec<(usize, u32)>,
                     written: &mut Vec<SegmentEntry>,
                     carried: &mut Vec<(u64, Vec<crate::catalog::TagEntry>)>,
                     ids_written: &mut Vec<std::path::PathBuf>|
     -> Result<()> {
        if builder.is_empty() {
            return Ok(());
        }
        let id = next_id;
        next_id += 1;
        let file = segment_file_name(id);
        let keys: Vec<String> = builder.iter().map(|d| d.key.clone()).collect();
        let w = write_segment(
            &dir.join(&file),
            std::mem::take(builder),
            &st.cluster_fields,
        )?;
        written.push(SegmentEntry {
            id,
            file: file.clone(),
            docs: w.docs,
            text_bytes: w.text_bytes,
            file_bytes: w.file_bytes,
            added_generation: 0,
        });
        let seg = Segment::open(&dir.join(&file))?;
        let new_ord: Vec<u32> = keys
            .iter()
            .map(|k| {
                seg.key_ordinal(k).ok_or_else(|| {
                    Error::corrupt(seg.path(), format!("compacted segment lacks `{k}`"))
                })
            })
            .collect::<Result<_>>()?;
        let origin = std::mem::take(origin);
        let tags = carry_signals(dir, &all, &seg, &new_ord, &origin, &file, generation)?;
        if !tags.is_empty() {
            carried.push((id, tags));
        }
        crate::token_ids::carry(
            dir,
            &file,
            &seg,
            &origin,
            &new_ord,
            &id_sources,
            ids_written,
        )
    };
    let result = (|| -> Result<()> {
        for bms in groups.values() {
            for (p, bm) in bms.iter().enumerate() {
                if bm.is_empty() {
                    continue;
                }
                let seg: &Segment = &all.parts()[p].0;
                let sub = crate::select::Selection {
                    parts: vec![(all.parts()[p].0.clone(), bm.clone())],
                    notes: vec![],
                };
                for job in sub.jobs() {
                    let block = seg.read_block(job.block)?;
                    for &i in &job.docs {
                        let mut json = Vec::new();
                        block.write_json(i as usize, &mut json);
                        let mut d = match parse_line(&json, false, &opts) {
                            Parsed::Doc(d) => *d,
                            _ => {
                                return Err(Error::corrupt(
                                    seg.path(),
                                    format!(
                                        "stored record of `{}` does not parse",
                                        block.key(i as usize)
                                    ),
                                ))
                            }
                        };
                        d.key = block.key(i as usize).to_string();
                        builder_bytes += d.heap_size();
                        builder.push(d);
                        origin.push((p, seg.blocks()[job.block].first_doc + i));
                        docs += 1;
                        if builder_bytes >= segment_bytes {
                            flush(
                                &mut builder,
                                &mut origin,
                                &mut written,
                                &mut carried,
                                &mut ids_written,
                            )?;
                            builder_bytes = 0;
                        }
                    }
                }
            }
        }
        flush(
            &mut builder,
            &mut origin,
            &mut written,
            &mut carried,
            &mut ids_written,
        )
    })();
    let cleanup = |w: &[SegmentEntry]| {
        for e in w {
            for t in carried.iter().filter(|c| c.0 == e.id).flat_map(|c| &c.1) {
                let _ = crate::storage::remove_file(&dir.join(&t.file));
            }
            let _ = crate::storage::remove_file(&dir.join(&e.file));
        }
        for p in &ids_written {
            let _ = crate::storage::remove_file(p);
        }
    };
    if let Err(e) = result {
        cleanup(&written);
        return Err(e);
    }
    let bytes_after: u64 = written.iter().map(|s| s.file_bytes).sum();
    let commit = Commit {
        add: written.clone(),
        remove: st.segments.iter().map(|s| s.id).collect(),
        op: "compact".into(),
        detail: format!("{} segments -> {}", st.segments.len(), written.len()),
        next_segment_id: next_id,
        tags: carried.clone(),
        ..Default::default()
    };
    let g = match corpus.catalog().commit(st.generation, commit, docs) {
        Ok(g) => g,
        Err(e) => {
            crate::corpus::remove_unless_committed(dir, corpus.catalog());
            return Err(e);
        }
    };
    drop(corpus);
    // The old files are no longer referenced: remove them now (readers that
    // still map them keep their view until they close).
    let new_state = Catalog::new(dir).state_from_db()?;
    collect_orphans(dir, &new_state)?;
    drop(lock);
    let had_dedup = st.signals.values().any(|s| s.tagger == "dedup");
    let dedup_generation = if had_dedup {
        let opts = crate::tag::TagOptions {
            taggers: vec![crate::tag::Tagger::Dedup],
            ..Default::default()
        };
        crate::tag::tag(dir, &opts)?.generation
    } else {
        None
    };
    Ok(CompactReport {
        dedup_generation,
        segments_before: st.segments.len(),
        segments_after: written.len(),
        docs,
        dropped: total_docs - docs,
        bytes_before,
        bytes_after,
        generation: g,
    })
}

/// Carries the signal columns of the old segments into `seg`, a new one
/// written by compaction as `file`: its document `new_ord[i]` came from
/// `origin[i]` (part, ordinal). A tagger
/// is carried when every contributing segment has it at one version;
/// deduplication is not (it depends on the whole corpus and is recomputed
/// by the next `corpusql tag`).
fn carry_signals(
    dir: &Path,
    all: &crate::select::Selection,
    seg: &Segment,
    new_ord: &[u32],
    origin: &[(usize, u32)],
    file: &str,
    generation: u64,
) -> Result<Vec<crate::catalog::TagEntry>> {
    use crate::segment::sidecar::{self, Column, ColumnValues, Sidecar};
    use std::collections::{BTreeMap, BTreeSet, HashMap};
    use std::sync::Arc;
    let n = seg.doc_count() as usize;
    let parts: BTreeSet<usize> = origin.iter().map(|o| o.0).collect();
    // tagger -> (version, columns, sidecar per part); None when not carried.
    type Carry = Option<(
        String,
        Vec<(String, crate::schema::FieldKind)>,
        HashMap<usize, Arc<Sidecar>>,
    )>;
    let mut taggers: BTreeMap<String, Carry> = BTreeMap::new();
    for &p in &parts {
        let old = &all.parts()[p].0;
        let present: BTreeSet<String> = old
            .overlay()
            .sidecars()
            .iter()
            .filter_map(|sc| sc.meta().ok().map(|m| m.0.tagger.clone()))
            .collect();
        for sc in old.overlay().sidecars() {
            let (m, _) = sc.meta()?;
            if m.tagger == "dedup" {
                continue;
            }
            let e = taggers.entry(m.tagger.clone()).or_insert_with(|| {
                Some((m.version.clone(), sc.columns().to_vec(), HashMap::new()))
            });
            match e {
                Some((v, cols, map)) if *v == m.version && cols.as_slice() == sc.columns() => {
                    map.insert(p, sc.clone());
                }
                _ => *e = None,
            }
        }
        // A tagger missing from one contributing segment is not carried.
        for (t, e) in taggers.iter_mut() {
            if !present.contains(t) {
                *e = None;
            }
        }
    }
    let mut out = Vec::new();
    for (tagger, e) in taggers {
        let Some((version, cols, map)) = e else {
            continue;
        };
        if map.len() != parts.len() {
            continue;
        }
        let mut tagged = RoaringBitmap::new();
        for (i, &(p, o)) in origin.iter().enumerate() {
            if map[&p].tagged()?.contains(o) {
                tagged.insert(new_ord[i]);
            }
        }
        let mut columns = Vec::new();
        for (ci, (name, kind)) in cols.iter().enumerate() {
            let mut num = vec![f64::NAN; n];
            let mut strs: Vec<Option<String>> = vec![None; n];
            for &p in &parts {
                let col = map[&p].column(ci)?;
                // Ordinal -> value for facet columns of this part.
                let lookup: HashMap<u32, &str> = match &*col {
                    Column::Facet(vals, _) => vals
                        .iter()
                        .flat_map(|(v, bm)| bm.iter().map(move |o| (o, v.as_str())))
                        .collect(),
                    Column::Number(..) => HashMap::new(),
                };
                for (i, &(q, o)) in origin.iter().enumerate() {
                    if q != p {
                        continue;
                    }
                    let to = new_ord[i] as usize;
                    match &*col {
                        Column::Number(v, _) => num[to] = v[o as usize],
                        Column::Facet(..) => strs[to] = lookup.get(&o).map(|s| s.to_string()),
                    }
                }
            }
            let values = match kind {
                crate::schema::FieldKind::Number => ColumnValues::Number(num),
                crate::schema::FieldKind::Bool => {
                    ColumnValues::Bool(strs.into_iter().map(|s| s.map(|s| s == "true")).collect())
                }
                _ => ColumnValues::Facet(strs),
            };
            columns.push((name.clone(), values));
        }
        let sfile = sidecar::file_name(file, &tagger, generation);
        let bytes = sidecar::write(
            &dir.join(&sfile),
            &tagger,
            &version,
            n as u32,
            &tagged,
            &columns,
        )?;
        out.push(crate::catalog::TagEntry {
            tagger,
            version,
            file: sfile,
            tagged_docs: tagged.len() as u32,
            columns: cols,
            file_bytes: bytes,
        });
    }
    Ok(out)
}
