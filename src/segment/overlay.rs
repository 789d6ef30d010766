//! Columns a segment answers for without storing them: the derived license
//! facets (`license_id`, `license_class`, computed from the license field's
//! term dictionary, so corpora ingested before they existed get them with no
//! migration) and the signal columns of tag sidecars.
//!
//! The overlay is attached when a corpus opens a segment; lookups on
//! [`crate::segment::Segment`] consult the segment's own fields first, then
//! the overlay. Derived facets get term ids with the top bit set so that
//! `terms_with_prefix` / `postings_of` work on them like on stored terms.

use std::sync::{Arc, OnceLock};

use roaring::RoaringBitmap;

use crate::error::Result;
use crate::schema::FieldKind;
use crate::segment::sidecar::{Column, Sidecar};

/// Name of the derived canonical license facet.
pub const LICENSE_ID: &str = "license_id";
/// Name of the derived license class facet.
pub const LICENSE_CLASS: &str = "license_class";

/// Term ids at or above this are overlay terms.
pub(crate) const OVERLAY_BIT: u64 = 1 << 63;

/// Values of one facet with their postings, sorted by value.
pub type FacetValues = Arc<Vec<(String, RoaringBitmap)>>;

#[derive(Debug)]
enum Source {
    License { class: bool },
    Sidecar { s: usize, col: usize },
}

#[derive(Debug)]
struct FacetEntry {
    name: String,
    source: Source,
}

/// What is attached to one segment.
#[derive(Debug, Default)]
pub struct Overlay {
    license_field: Option<String>,
    license: OnceLock<(FacetValues, FacetValues)>,
    facets: Vec<FacetEntry>,
    numbers: Vec<(String, usize, usize)>,
    sidecars: Vec<Arc<Sidecar>>,
}

impl Overlay {
    /// An overlay deriving license facets from `license_field` (unless the
    /// segment stores fields of those names itself) plus `sidecars`.
    pub fn new(
        license_field: Option<&str>,
        own_fields: &dyn Fn(&str) -> bool,
        sidecars: Vec<Arc<Sidecar>>,
    ) -> Overlay {
        let mut o = Overlay {
            license_field: license_field.map(str::to_string),
            ..Default::default()
        };
        if license_field.is_some() {
            for (name, class) in [(LICENSE_ID, false), (LICENSE_CLASS, true)] {
                if !own_fields(name) {
                    o.facets.push(FacetEntry {
                        name: name.into(),
                        source: Source::License { class },
                    });
                }
            }
        }
        for (s, sc) in sidecars.iter().enumerate() {
            for (col, (name, kind)) in sc.columns().iter().enumerate() {
                if own_fields(name) {
                    continue;
                }
                match kind {
                    FieldKind::Number => o.numbers.push((name.clone(), s, col)),
                    _ => o.facets.push(FacetEntry {
                        name: name.clone(),
                        source: Source::Sidecar { s, col },
                    }),
                }
            }
        }
        o.sidecars = sidecars;
        o
    }

    /// The attached sidecars.
    pub fn sidecars(&self) -> &[Arc<Sidecar>] {
        &self.sidecars
    }

    /// Every column the overlay answers for, in a stable order: the derived
    /// license facets, then each sidecar's columns as the catalog lists them.
    pub fn columns(&self) -> Vec<(String, FieldKind)> {
        let mut out = Vec::new();
        for f in &self.facets {
            if let Source::License { .. } = f.source {
                out.push((f.name.clone(), FieldKind::Facet));
            }
        }
        for (s, sc) in self.sidecars.iter().enumerate() {
            for (col, (name, kind)) in sc.columns().iter().enumerate() {
                let attached = match kind {
                    FieldKind::Number => self.number_source(name) == Some((s, col)),
                    _ => self.facet_index(name).is_some_and(|i| {
                        matches!(self.facets[i].source, Source::Sidecar { s: s2, col: c2 } if s2 == s && c2 == col)
                    }),
                };
                if attached {
                    out.push((name.clone(), *kind));
                }
            }
        }
        out
    }

    /// Index of overlay facet `field`.
    pub(crate) fn facet_index(&self, field: &str) -> Option<usize> {
        self.facets.iter().position(|f| f.name == field)
    }

    /// Whether `field` is an overlay number column.
    pub(crate) fn number_source(&self, field: &str) -> Option<(usize, usize)> {
        self.numbers
            .iter()
            .find(|(n, _, _)| n == field)
            .map(|(_, s, c)| (*s, *c))
    }

    /// Values of overlay facet `i`. `seg` computes the license derivation.
    pub(crate) fn facet_values(
        &self,
        i: usize,
        seg: &crate::segment::Segment,
    ) -> Result<FacetValues> {
        match self.facets[i].source {
            Source::License { class } => {
                let d = match self.license.get() {
                    Some(d) => d.clone(),
                    None => {
                        let d = self.derive_license(seg)?;
                        let _ = self.license.set(d.clone());
                        d
                    }
                };
                Ok(if class { d.1 } else { d.0 })
            }
            Source::Sidecar { s, col } => match &*self.sidecars[s].column(col)? {
                Column::Facet(v, _) => Ok(v.clone()),
                Column::Number(..) => Ok(Arc::new(Vec::new())),
            },
        }
    }

    /// Presence of overlay facet `i`.
    pub(crate) fn facet_presence(
        &self,
        i: usize,
        seg: &crate::segment::Segment,
    ) -> Result<RoaringBitmap> {
        match self.facets[i].source {
            // Every document has a license id: `unknown` when it has no license.
            Source::License { .. } => Ok(seg.all()),
            Source::Sidecar { s, col } => match &*self.sidecars[s].column(col)? {
                Column::Facet(_, p) => Ok(p.clone()),
                Column::Number(_, p) => Ok(p.clone()),
            },
        }
    }

    /// An overlay number column and its presence.
    pub(crate) fn number(&self, s: usize, col: usize) -> Result<(Arc<Vec<f64>>, RoaringBitmap)> {
        match &*self.sidecars[s].column(col)? {
            Column::Number(v, p) => Ok((v.clone(), p.clone())),
            Column::Facet(..) => Ok((Arc::new(Vec::new()), RoaringBitmap::new())),
        }
    }

    fn derive_license(&self, seg: &crate::segment::Segment) -> Result<(FacetValues, FacetValues)> {
        use std::collections::BTreeMap;
        let field = self.license_field.as_deref().unwrap_or("license");
        let mut ids: BTreeMap<String, RoaringBitmap> = BTreeMap::new();
        let mut has = RoaringBitmap::new();
        for (value, id) in seg.stored_terms_with_prefix(field, "") {
            let bm = seg.postings_of(id)?;
            has |= &bm;
            let canon =
                crate::license::normalize(&value).unwrap_or_else(|| crate::license::UNKNOWN.into());
            *ids.entry(canon).or_default() |= bm;
        }
        let none = seg.all() - has;
        if !none.is_empty() {
            *ids.entry(crate::license::UNKNOWN.into()).or_default() |= none;
        }
        let mut classes: BTreeMap<&'static str, RoaringBitmap> = BTreeMap::new();
        for (id, bm) in &ids {
            *classes
                .entry(crate::license::class_of(id).as_str())
                .or_default() |= bm;
        }
        Ok((
            Arc::new(ids.into_iter().collect()),
            Arc::new(
                classes
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
            ),
        ))
    }
}

/// Overlay term id of value `v` of overlay facet `f`.
pub(crate) fn term_id(f: usize, v: usize) -> u64 {
    OVERLAY_BIT | ((f as u64) << 32) | v as u64
}

/// (facet, value) of an overlay term id.
pub(crate) fn split_term_id(id: u64) -> (usize, usize) {
    (
        ((id & !OVERLAY_BIT) >> 32) as usize,
        (id & 0xffff_ffff) as usize,
    )
}
