//! Selections and readers: the documents a query matched, per segment, and
//! the ways to read them — counts and byte totals from columns (no text
//! touched), documents in storage order with each needed block decompressed
//! once, projections of fields, and single-key lookups.

use std::sync::Arc;

use rayon::prelude::*;
use roaring::RoaringBitmap;

use crate::corpus::Corpus;
use crate::error::Result;
use crate::plan::{self, Plan};
use crate::segment::{Block, Segment};

/// The documents matched by a query in one snapshot.
#[derive(Debug, Clone)]
pub struct Selection {
    /// Per segment of the snapshot (same order as [`Corpus::segments`]).
    pub(crate) parts: Vec<(Arc<Segment>, RoaringBitmap)>,
    /// Hints about the query (values no document has, with suggestions).
    pub notes: Vec<String>,
}

/// One stored document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// The key.
    pub key: String,
    /// The text.
    pub text: String,
    /// The whole record as JSON, field order as ingested.
    pub json: Vec<u8>,
}

impl Document {
    /// The document key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The whole record as JSON (one line, fields in ingest order).
    pub fn json(&self) -> &[u8] {
        &self.json
    }
}

impl Corpus {
    /// Evaluates a query on this snapshot (segments in parallel).
    pub fn query(&self, q: &str) -> Result<Selection> {
        let plan = plan::plan(q, self.schema())?;
        self.select(&plan)
    }

    /// Evaluates a plan on this snapshot.
    pub fn select(&self, plan: &Plan) -> Result<Selection> {
        let parts = self
            .segments()
            .par_iter()
            .map(|s| {
                Ok((
                    s.segment.clone(),
                    plan::eval(plan, &s.segment, &s.live, &s.live)?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut sel = Selection {
            parts,
            notes: Vec::new(),
        };
        sel.notes = self.notes(plan);
        sel.notes.extend(self.untagged_notes(plan));
        Ok(sel)
    }

    /// Hints for signals the plan names that some live documents lack (new
    /// documents, or duplicates after a `compact`): those documents match no
    /// condition on the signal, not even `is_dup = false`, so a cleaning
    /// query would silently lose them.
    fn untagged_notes(&self, plan: &Plan) -> Vec<String> {
        let fields: std::collections::BTreeSet<&str> =
            plan.leaves().filter_map(Plan::field).collect();
        let mut out = Vec::new();
        for f in fields {
            let Some(info) = self.state().signals.get(f) else {
                continue;
            };
            let (mut missing, mut live) = (0u64, 0u64);
            for s in self.segments() {
                live += s.live.len();
                let sc = s
                    .segment
                    .overlay()
                    .sidecars()
                    .iter()
                    .find(|sc| sc.position(f).is_some());
                missing += match sc.map(|sc| sc.tagged()) {
                    Some(Ok(tagged)) => s.live.difference_len(tagged),
                    _ => s.live.len(),
                };
            }
            if missing > 0 {
                // Imported attributes cannot be recomputed: import again.
                let fix = if info.tagger.starts_with("dolma-") {
                    "import the Dolma attribute files again (`corpusql tag import-dolma`)"
                        .to_string()
                } else {
                    format!("run `corpusql tag --taggers {}`", info.tagger)
                };
                out.push(format!(
                    "signal `{f}` is not computed for {missing} of {live} live documents (ingested or compacted since the {} tagger ran): they match no condition on it; {fix}",
                    info.tagger
                ));
            }
        }
        out
    }

    /// Hints for `field = value` terms that no segment holds.
    fn notes(&self, plan: &Plan) -> Vec<String> {
        let mut out = Vec::new();
        for p in plan.leaves() {
            let Plan::Terms { field, values } = p else {
                continue;
            };
            for v in values {
                let known = self.segments().iter().any(|s| {
                    s.segment
                        .postings(field, v)
                        .map(|b| !b.is_empty())
                        .unwrap_or(false)
                });
                if !known {
                    let vals = self.values_of(field);
                    let hint = crate::query::suggest(v, vals.iter().map(|s| s.as_str()))
                        .map(|s| format!("; did you mean `{s}`?"))
                        .unwrap_or_default();
                    out.push(format!("no document has {field} = {v}{hint}"));
                }
            }
        }
        out
    }

    /// Distinct indexed values of a facet across segments (sorted).
    pub fn values_of(&self, field: &str) -> Vec<String> {
        let mut set = std::collections::BTreeSet::new();
        for s in self.segments() {
            for (v, _) in s.segment.terms_with_prefix(field, "") {
                set.insert(v);
            }
        }
        set.into_iter().collect()
    }

    /// The live document with `key`.
    pub fn get(&self, key: &str) -> Result<Option<Document>> {
        self.key_selection(key).documents().next().transpose()
    }

    /// The live document with `key` as a selection (empty when none): what
    /// [`Corpus::get`] reads, and what exporters print with its derived and
    /// signal columns.
    pub fn key_selection(&self, key: &str) -> Selection {
        let parts = self
            .segments()
            .iter()
            .map(|s| {
                let mut bm = RoaringBitmap::new();
                if let Some(o) = s.segment.key_ordinal(key).filter(|&o| s.live.contains(o)) {
                    bm.insert(o);
                }
                (s.segment.clone(), bm)
            })
            .collect();
        Selection {
            parts,
            notes: Vec::new(),
        }
    }

    /// Every live document.
    pub fn all(&self) -> Selection {
        Selection {
            parts: self
                .segments()
                .iter()
                .map(|s| (s.segment.clone(), s.live.clone()))
                .collect(),
            notes: Vec::new(),
        }
    }
}

fn document(block: &Block, i: usize) -> Document {
    let mut json = Vec::new();
    block.write_json(i, &mut json);
    Document {
        key: block.key(i).to_string(),
        text: block.text(i).to_string(),
        json,
    }
}

/// Work unit of a reader: one block and the matched documents in it.
#[derive(Debug, Clone)]
pub struct BlockJob {
    /// Index into the selection's parts.
    pub part: usize,
    /// Block index in the segment.
    pub block: usize,
    /// Matched positions inside the block.
    pub docs: Vec<u32>,
}

impl Selection {
    /// Number of matched documents.
    pub fn count(&self) -> u64 {
        self.parts.iter().map(|(_, b)| b.len()).sum()
    }

    /// Sum of UTF-8 text bytes of the matched documents (from the `bytes` column).
    pub fn text_bytes(&self) -> Result<u64> {
        let mut total = 0u64;
        for (seg, bm) in &self.parts {
            if bm.is_empty() {
                continue;
            }
            if bm.len() == seg.doc_count() as u64 {
                total += seg.meta().text_bytes;
                continue;
            }
            if let Some(col) = seg.numeric(crate::format::BYTES_FIELD)? {
                total += bm.iter().map(|o| col[o as usize] as u64).sum::<u64>();
            }
        }
        Ok(total)
    }

    /// The matched ordinals per segment.
    pub fn parts(&self) -> &[(Arc<Segment>, RoaringBitmap)] {
        &self.parts
    }

    /// Keeps at most the first `n` documents (in storage order).
    pub fn truncate(&mut self, mut n: u64) {
        for (_, bm) in &mut self.parts {
            let len = bm.len();
            if len <= n {
                n -= len;
            } else {
                *bm = bm.iter().take(n as usize).collect();
                n = 0;
            }
        }
    }

    /// The blocks to read, in storage order, with the matched documents of
    /// each. Blocks of lazily fetched segments (a corpus at a URI) that the
    /// node lacks are fetched first, nearby ones coalesced, segments in
    /// parallel; a failed fetch is reported when the block is read.
    pub fn jobs(&self) -> Vec<BlockJob> {
        let jobs = self.plan_jobs();
        if self.parts.iter().any(|(seg, _)| seg.is_lazy()) {
            use rayon::prelude::*;
            (0..self.parts.len()).into_par_iter().for_each(|p| {
                let wanted: Vec<usize> = jobs
                    .iter()
                    .filter(|j| j.part == p)
                    .map(|j| j.block)
                    .collect();
                let _ = self.parts[p].0.prefetch(&wanted);
            });
        }
        jobs
    }

    fn plan_jobs(&self) -> Vec<BlockJob> {
        let mut jobs = Vec::new();
        for (p, (seg, bm)) in self.parts.iter().enumerate() {
            let blocks = seg.blocks();
            let mut cur: Option<BlockJob> = None;
            let mut bi = 0usize;
            for o in bm.iter() {
                while blocks[bi].first_doc + blocks[bi].docs <= o {
                    bi += 1;
                }
                match &mut cur {
                    Some(j) if j.block == bi => j.docs.push(o - blocks[bi].first_doc),
                    _ => {
                        if let Some(j) = cur.take() {
                            jobs.push(j);
                        }
                        cur = Some(BlockJob {
                            part: p,
                            block: bi,
                            docs: vec![o - blocks[bi].first_doc],
                        });
                    }
                }
            }
            if let Some(j) = cur {
                jobs.push(j);
            }
        }
        jobs
    }

    /// Reads the block of a job.
    pub fn read(&self, job: &BlockJob) -> Result<Block> {
        self.parts[job.part].0.read_block(job.block)
    }

    /// Processes matched documents block by block, in parallel, handing the
    /// results to `sink` in storage order. `map` turns one block's matched
    /// documents into an output buffer.
    pub fn map_blocks<T: Send>(
        &self,
        map: impl Fn(&Block, &[u32]) -> Result<T> + Sync,
        sink: impl FnMut(T) -> Result<()>,
    ) -> Result<()> {
        self.map_jobs(|j, b| map(b, &j.docs), sink)
    }

    /// Like [`Selection::map_blocks`], with the whole job (segment part,
    /// block index, matched positions) handed to `map`.
    pub fn map_jobs<T: Send>(
        &self,
        map: impl Fn(&BlockJob, &Block) -> Result<T> + Sync,
        mut sink: impl FnMut(T) -> Result<()>,
    ) -> Result<()> {
        let jobs = self.jobs();
        let window = rayon::current_num_threads().max(1) * 4;
        for chunk in jobs.chunks(window) {
            let outs: Vec<Result<T>> = chunk
                .par_iter()
                .map(|j| {
                    let b = self.read(j)?;
                    map(j, &b)
                })
                .collect();
            for o in outs {
                sink(o?)?;
            }
        }
        Ok(())
    }

    /// Iterates the matched documents in storage order.
    pub fn documents(&self) -> impl Iterator<Item = Result<Document>> + '_ {
        self.jobs().into_iter().flat_map(move |j| {
            let r: Vec<Result<Document>> = match self.read(&j) {
                Ok(b) => j
                    .docs
                    .iter()
                    .map(|&i| Ok(document(&b, i as usize)))
                    .collect(),
                Err(e) => vec![Err(e)],
            };
            r
        })
    }
}
