//! A corpus directory: the catalog plus immutable segment files, opened as a
//! consistent snapshot. Writers (ingest, delete, compact) hold the directory's
//! `LOCK` file for their whole run and commit through the catalog in one
//! transaction; readers take no lock and never see a half-done change.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use roaring::RoaringBitmap;

use crate::catalog::{Catalog, CatalogState, SegmentEntry};
use crate::error::{Error, IoContext, Result};
use crate::schema::{FieldKind, Schema};
use crate::segment::Segment;

/// File name of the writers' lock.
pub const LOCK_FILE: &str = "LOCK";

/// Default facets documents are clustered by inside segments: language,
/// then license (what a training selection filters on first), then source.
pub const DEFAULT_CLUSTER_FIELDS: [&str; 3] = ["lang", "license", "source"];

/// One segment of a snapshot with its live documents.
#[derive(Debug, Clone)]
pub struct LiveSegment {
    /// The catalog entry.
    pub entry: SegmentEntry,
    /// The open segment.
    pub segment: Arc<Segment>,
    /// Ordinals not deleted.
    pub live: RoaringBitmap,
}

/// An open corpus: a snapshot of one generation.
#[derive(Debug, Clone)]
pub struct Corpus {
    dir: PathBuf,
    catalog: Catalog,
    state: CatalogState,
    schema: Schema,
    segments: Vec<LiveSegment>,
}

/// The writers' exclusive lock on a corpus directory, released on drop.
#[derive(Debug)]
pub struct WriteLock {
    _file: File,
}

impl WriteLock {
    /// Takes the lock, waiting for another writer to finish (silently:
    /// a program that wants to say so checks [`WriteLock::is_held`] first).
    pub fn acquire(dir: &Path) -> Result<WriteLock> {
        crate::remote::refuse_write(dir)?;
        let path = dir.join(LOCK_FILE);
        let file = crate::storage::open_lock(&path).at(&path)?;
        file.lock().at(&path)?;
        Ok(WriteLock { _file: file })
    }

    /// Whether another writer holds the lock of the corpus in `dir` now.
    pub fn is_held(dir: &Path) -> bool {
        let path = dir.join(LOCK_FILE);
        if !path.exists() {
            return false;
        }
        match crate::storage::open_lock(&path) {
            Ok(f) => matches!(f.try_lock(), Err(std::fs::TryLockError::WouldBlock)),
            Err(_) => false,
        }
    }

    fn try_acquire(dir: &Path) -> Option<WriteLock> {
        let path = dir.join(LOCK_FILE);
        let file = crate::storage::open_lock(&path).ok()?;
        file.try_lock().ok()?;
        Some(WriteLock { _file: file })
    }
}

/// The file name of segment `id`.
pub fn segment_file_name(id: u64) -> String {
    format!("seg-{id:010}.cqs")
}

impl Corpus {
    /// Opens the corpus in `dir` at its current generation.
    pub fn open(dir: impl AsRef<Path>) -> Result<Corpus> {
        if let Some(uri) = crate::remote::as_uri(dir.as_ref()) {
            // A corpus on object storage: its node-local mirror, refreshed.
            let m = crate::remote::mirror(uri)?;
            return Corpus::open(&m.dir);
        }
        let dir = dir.as_ref().to_path_buf();
        let catalog = Catalog::new(&dir);
        if !catalog.exists() {
            return Err(Error::NoCorpus { path: dir });
        }
        let current = catalog.current();
        let first = match &current {
            Some(st) => st.clone(),
            None => catalog.state_from_db()?,
        };
        if current.is_none() || has_orphans(&dir, &first)? {
            if let Some(_lock) = WriteLock::try_acquire(&dir) {
                let st = catalog.refresh_current()?;
                collect_orphans(&dir, &st)?;
            }
        }
        // A compaction may remove files between reading the catalog and
        // opening them: read the catalog again then.
        let mut tries = 0;
        loop {
            // After a failed try, trust only the database.
            let state = if tries == 0 {
                catalog.state()?
            } else {
                catalog.state_from_db()?
            };
            match Self::open_segments(&dir, &state) {
                Ok(segments) => {
                    return Ok(Corpus {
                        dir,
                        catalog,
                        schema: effective_schema(&state),
                        state,
                        segments,
                    })
                }
                Err(Error::Io { error, .. })
                    if error.kind() == std::io::ErrorKind::NotFound && tries < 5 =>
                {
                    tries += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Creates an empty corpus in `dir` (or opens it when one exists).
    pub fn create(dir: impl AsRef<Path>, schema: Schema) -> Result<Corpus> {
        let dir = dir.as_ref();
        crate::remote::refuse_write(dir)?;
        std::fs::create_dir_all(dir).at(dir)?;
        let catalog = Catalog::new(dir);
        if !catalog.exists() {
            let _lock = WriteLock::acquire(dir)?;
            let cluster: Vec<String> = DEFAULT_CLUSTER_FIELDS
                .iter()
                .map(|s| s.to_string())
                .collect();
            catalog.create(&schema, &cluster)?;
        }
        Corpus::open(dir)
    }

    fn open_segments(dir: &Path, state: &CatalogState) -> Result<Vec<LiveSegment>> {
        use rayon::prelude::*;
        state
            .segments
            .par_iter()
            .map(|e| {
                let mut seg = Segment::open(&dir.join(&e.file))?;
                let mut sidecars = Vec::new();
                for t in state.tags.get(&e.id).into_iter().flatten() {
                    let sc = crate::segment::sidecar::Sidecar::open(
                        &dir.join(&t.file),
                        t.columns.clone(),
                    )?;
                    sidecars.push(Arc::new(sc));
                }
                let o = {
                    let own = |f: &str| seg.has_stored_field(f);
                    crate::segment::overlay::Overlay::new(
                        Some(state.license_field()),
                        &own,
                        sidecars,
                    )
                };
                seg.attach(o);
                if seg.doc_count() != e.docs {
                    return Err(Error::corrupt(
                        seg.path(),
                        format!(
                            "catalog lists {} documents, the file holds {}",
                            e.docs,
                            seg.doc_count()
                        ),
                    ));
                }
                let mut live = seg.all();
                if let Some(t) = state.tombstones.get(&e.id) {
                    live -= t;
                }
                Ok(LiveSegment {
                    entry: e.clone(),
                    segment: Arc::new(seg),
                    live,
                })
            })
            .collect()
    }

    /// Re-reads the catalog (a new snapshot).
    pub fn reload(&mut self) -> Result<()> {
        *self = Corpus::open(&self.dir)?;
        Ok(())
    }

    /// The corpus directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The catalog handle.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// How reports name the corpus: the URI a mirror mirrors (see
    /// [`crate::remote`]), else the directory.
    pub fn label(&self) -> String {
        self.origin()
            .unwrap_or_else(|| self.dir().display().to_string())
    }

    /// The URI this corpus is the node-local mirror of, when it was opened
    /// from one (see [`crate::remote`]).
    pub fn origin(&self) -> Option<String> {
        let uri = std::fs::read_to_string(self.dir().join(crate::remote::ORIGIN_FILE)).ok()?;
        let uri = uri.trim();
        crate::remote::as_uri(Path::new(uri)).map(str::to_string)
    }

    /// The catalog snapshot this corpus was opened at.
    pub fn state(&self) -> &CatalogState {
        &self.state
    }

    /// The generation of this snapshot.
    pub fn generation(&self) -> u64 {
        self.state.generation
    }

    /// The schema queries see: stored fields plus the derived license
    /// facets and signal columns (see [`effective_schema`]). The stored
    /// fields alone are `state().schema`.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The segments with their live documents.
    pub fn segments(&self) -> &[LiveSegment] {
        &self.segments
    }

    /// Number of live documents.
    pub fn len(&self) -> u64 {
        self.segments.iter().map(|s| s.live.len()).sum()
    }

    /// Whether the corpus holds no live document.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The schema queries see: the stored fields, the derived license facets
/// and the signal columns of taggers (stored fields win on a name clash).
pub fn effective_schema(st: &CatalogState) -> Schema {
    let mut s = st.schema.clone();
    for name in [
        crate::segment::overlay::LICENSE_ID,
        crate::segment::overlay::LICENSE_CLASS,
    ] {
        s.fields.entry(name.into()).or_insert(FieldKind::Facet);
    }
    for (name, info) in &st.signals {
        s.fields.entry(name.clone()).or_insert(info.kind);
    }
    s
}

/// Whether the directory holds files the snapshot does not reference.
fn has_orphans(dir: &Path, st: &CatalogState) -> Result<bool> {
    for e in std::fs::read_dir(dir).at(dir)? {
        let e = e.at(dir)?;
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if is_orphan(name, st) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A file of ours that `st` does not reference: a segment, a temporary, or
/// a token-count (`.cqc`) or token-id (`.cqi`) sidecar of a segment that is
/// gone.
fn is_orphan(name: &str, st: &CatalogState) -> bool {
    if !name.starts_with("seg-") {
        return false;
    }
    if name.ends_with(".tmp") {
        return true;
    }
    if name.ends_with(".cqt") {
        return !st.tags.values().flatten().any(|t| t.file == name);
    }
    let stem = name.split('.').next().unwrap_or(name);
    (name.ends_with(".cqs") || name.ends_with(".cqc") || name.ends_with(".cqi"))
        && !st
            .segments
            .iter()
            .any(|s| s.file.split('.').next() == Some(stem))
}

/// After a failed commit, deletes the files written for it unless the
/// catalog lists them: a commit can fail after redb applied it (its last
/// fsync failed, say), and then the new generation, visible to every
/// reader, references them. Best effort; called with the write lock held.
pub(crate) fn remove_unless_committed(dir: &Path, catalog: &Catalog) {
    if let Ok(st) = catalog.state_from_db() {
        let _ = collect_orphans(dir, &st);
    }
}

/// Deletes segment files and temporaries the catalog does not reference
/// (left by a crash). Called with the write lock held.
pub(crate) fn collect_orphans(dir: &Path, st: &CatalogState) -> Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    let rd = std::fs::read_dir(dir).at(dir)?;
    for e in rd {
        let e = e.at(dir)?;
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if is_orphan(name, st) {
            let p = e.path();
            crate::storage::remove_file(&p).at(&p)?;
            removed.push(p);
        }
    }
    Ok(removed)
}
