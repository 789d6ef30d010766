//! Deleting by query: every live document a query matches gets a
//! tombstone in one commit, which also records what the deletion withdrew
//! (documents and bytes by license and source) for the datasheets'
//! withdrawal log. `compact` reclaims the space later.

use std::path::Path;

use roaring::RoaringBitmap;

use crate::catalog::{Catalog, Commit, WithdrawnSummary};
use crate::corpus::{Corpus, WriteLock};
use crate::error::Result;

/// Tombstones every live document matching `query`; returns (count, generation).
pub fn delete(dir: &Path, query: &str) -> Result<(u64, u64)> {
    let _lock = WriteLock::acquire(dir)?;
    Catalog::new(dir).refresh_current()?;
    let corpus = Corpus::open(dir)?;
    let sel = corpus.query(query)?;
    let n = sel.count();
    if n == 0 {
        return Ok((0, corpus.generation()));
    }
    let tombstones: Vec<(u64, RoaringBitmap)> = corpus
        .segments()
        .iter()
        .zip(sel.parts())
        .filter(|(_, (_, bm))| !bm.is_empty())
        .map(|(s, (_, bm))| (s.entry.id, bm.clone()))
        .collect();
    let commit = Commit {
        tombstones,
        op: "delete".into(),
        detail: query.to_string(),
        next_segment_id: corpus.state().next_segment_id,
        withdrawn: Some(withdrawn_summary(&corpus, &sel)?),
        ..Default::default()
    };
    let g = corpus
        .catalog()
        .commit(corpus.generation(), commit, corpus.len() - n)?;
    Ok((n, g))
}

/// Documents and bytes of a selection by license id and by source (as
/// `stats --by` groups them; `(none)` without a value), for the record a
/// delete keeps of what it withdrew.
fn withdrawn_summary(corpus: &Corpus, sel: &crate::select::Selection) -> Result<WithdrawnSummary> {
    let (docs, bytes) = (sel.count(), sel.text_bytes()?);
    let by = |field: &str| -> Result<Vec<(String, u64, u64)>> {
        if corpus.schema().resolve(field).is_none() {
            // A corpus without the field: every document has none.
            return Ok(vec![("(none)".into(), docs, bytes)]);
        }
        let st = crate::stats::stats(corpus, sel, &[field.to_string()])?;
        Ok(st
            .groups
            .into_iter()
            .map(|g| {
                let v = g.values.into_iter().next().flatten();
                (v.unwrap_or_else(|| "(none)".into()), g.docs, g.bytes)
            })
            .collect())
    };
    Ok(WithdrawnSummary {
        docs,
        bytes,
        by_license: by(crate::segment::overlay::LICENSE_ID)?,
        by_source: by("source")?,
    })
}
