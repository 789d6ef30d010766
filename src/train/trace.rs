//! Tracing a stream position back to its documents: which documents, with
//! which sources and licenses, fill a given sequence (or one token of it).
//! A replay of the schedule from token counts, then one block read per
//! document named; nothing is tokenized.

use serde::Serialize;

use super::mixture::{self, Mixture};
use super::schedule::Schedule;
use crate::corpus::Corpus;
use crate::error::{Error, Result};

/// One document behind a stretch of a sequence (what `corpusql trace` prints).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TraceHit {
    /// Global sequence index.
    pub sequence: u64,
    /// First token of the stretch, as an offset in the sequence.
    pub from: u64,
    /// One past its last token.
    pub to: u64,
    /// Offset of the stretch's first token inside the document's tokens.
    pub doc_offset: u64,
    /// Tokens of the document (end-of-document included).
    pub doc_tokens: u32,
    /// The component that scheduled the document.
    pub component: String,
    /// The document key.
    pub key: String,
    /// Its `license`, `source` and `lang` as ingested (when present), and
    /// the derived `license_id` and `license_class`.
    pub facets: std::collections::BTreeMap<String, serde_json::Value>,
}

/// The documents behind global sequence `sequence` of the stream of `m`
/// (only the one at token `offset`, when given): a replay of the schedule
/// from token counts, then one block read per document named.
pub fn trace(
    corpus: &Corpus,
    m: &Mixture,
    sequence: u64,
    offset: Option<u64>,
) -> Result<Vec<TraceHit>> {
    Ok(trace_with_policy(corpus, m, sequence, offset, &[])?.0)
}

/// [`trace`], with what the corpus policy held back from the stream traced
/// (from the same plan, so the components are not queried twice).
pub(crate) fn trace_with_policy(
    corpus: &Corpus,
    m: &Mixture,
    sequence: u64,
    offset: Option<u64>,
    changes: &[super::mixture::WeightChange],
) -> Result<(Vec<TraceHit>, crate::policy::PolicyOutcome)> {
    let m = &m.bound(corpus)?;
    let (plan, resolved) = mixture::plan(corpus, m)?;
    let mut sched = Schedule::new(corpus, m, &resolved, changes);
    if sequence >= sched.end() {
        return Err(Error::Invalid(format!(
            "sequence {sequence} is beyond the stream, which has {} sequences",
            sched.end()
        )));
    }
    let l = m.seq_len as u64;
    if offset.is_some_and(|k| k >= l) {
        return Err(Error::Invalid(format!(
            "offset must be below seq_len = {l}"
        )));
    }
    let (lo, hi) = match offset {
        Some(k) => (k, k + 1),
        None => (0, l),
    };
    let placed = sched.place(sequence).ok_or_else(|| {
        Error::Invalid(format!(
            "internal: sequence {sequence} lies past the schedule"
        ))
    })?;
    let mut hits = Vec::new();
    for s in &placed.pieces {
        let (a, b) = (s.at as u64, s.at as u64 + s.len as u64);
        if a >= hi || b <= lo {
            continue;
        }
        let seg = &corpus.segments()[s.part as usize].segment;
        let bi = seg.block_of(s.ord);
        let block = seg.read_block(bi)?;
        let i = (s.ord - seg.blocks()[bi].first_doc) as usize;
        let mut json = Vec::new();
        block.write_json(i, &mut json);
        let record: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&json).unwrap_or_default();
        let lic_field = corpus.state().license_field();
        let mut facets: std::collections::BTreeMap<String, serde_json::Value> =
            [lic_field, "source", "lang"]
                .iter()
                .filter_map(|f| record.get(*f).map(|v| (f.to_string(), v.clone())))
                .collect();
        // The derived license facets, as queries and reports see them.
        let id = record
            .get(lic_field)
            .and_then(|v| v.as_str())
            .and_then(crate::license::normalize)
            .unwrap_or_else(|| crate::license::UNKNOWN.to_string());
        facets.insert(
            "license_class".into(),
            crate::license::class_of(&id).as_str().into(),
        );
        facets.insert("license_id".into(), id.into());
        let (x, y) = (a.max(lo), b.min(hi));
        hits.push(TraceHit {
            sequence,
            from: x,
            to: y,
            doc_offset: s.doc_offset as u64 + (x - a),
            doc_tokens: s.doc_tokens,
            component: m.components[placed.component as usize].name.clone(),
            key: block.key(i).to_string(),
            facets,
        });
    }
    Ok((hits, plan.policy))
}

#[cfg(test)]
mod tests {
    use super::super::testing;
    use super::*;
    use crate::train::schedule::Schedule;

    #[test]
    fn a_sequence_is_traced_to_the_documents_that_fill_it() {
        let (_dir, corpus) = testing::corpus();
        let m = Mixture::parse(testing::MIX).unwrap();
        let (_, resolved) = mixture::plan(&corpus, &m).unwrap();
        let mut sched = Schedule::new(&corpus, &m, &resolved, &[]);
        // Every sequence of the first hundreds: the hits are its pieces, in
        // order, covering it.
        let mut several = 0;
        for s in 0..400 {
            let placed = sched.place(s).unwrap();
            let hits = trace(&corpus, &m, s, None).unwrap();
            assert_eq!(hits.len(), placed.pieces.len());
            several += usize::from(hits.len() > 1);
            let mut at = 0;
            for (h, p) in hits.iter().zip(&placed.pieces) {
                assert_eq!(h.sequence, s);
                assert_eq!((h.from, h.to), (at, at + p.len as u64));
                at = h.to;
                assert_eq!(h.doc_offset, p.doc_offset as u64);
                assert_eq!(h.doc_tokens, p.doc_tokens);
                assert_eq!(h.component, m.components[placed.component as usize].name);
                assert_eq!(h.facets["lang"] == "fr", h.component == "fr");
            }
            assert_eq!(at, 64);
            // One token: the hit holding it.
            let one = trace(&corpus, &m, s, Some(50)).unwrap();
            assert_eq!(one.len(), 1);
            let h = hits.iter().find(|h| h.from <= 50 && 50 < h.to).unwrap();
            assert_eq!(one[0].key, h.key);
            assert_eq!((one[0].from, one[0].to), (50, 51));
            assert_eq!(one[0].doc_offset, h.doc_offset + 50 - h.from);
        }
        assert!(several > 10, "few sequences hold two documents: {several}");
    }

    #[test]
    fn positions_outside_the_stream_are_refused() {
        let (_dir, corpus) = testing::corpus();
        let m = Mixture::parse(testing::MIX).unwrap();
        let e = trace(&corpus, &m, 4687, None).unwrap_err().to_string();
        assert!(e.contains("4687 sequences"), "{e}");
        let e = trace(&corpus, &m, 0, Some(64)).unwrap_err().to_string();
        assert!(e.contains("seq_len = 64"), "{e}");
    }
}
