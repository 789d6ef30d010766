//! The catalog: one redb database per corpus holding the format version, the
//! schema, the segment list with generation numbers, tombstones, and the
//! ingest and generation logs.
//!
//! redb allows one process at a time to hold the file, so the catalog is
//! opened only for the instant of a read or a commit (with retries while
//! another process holds it); readers then work from an immutable
//! [`CatalogState`] snapshot and memory-mapped segments. Values are
//! `postcard` prefixed by a little-endian u16 version.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use redb::{Database, DatabaseError, ReadableTable, TableDefinition};
use roaring::RoaringBitmap;
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::format;
use crate::schema::Schema;
use crate::storage;

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const SEGMENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("segments");
const TOMBSTONES: TableDefinition<u64, &[u8]> = TableDefinition::new("tombstones");
const INGEST_LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("ingest_log");
const GENERATIONS: TableDefinition<u64, &[u8]> = TableDefinition::new("generations");
/// Tag sidecars per segment id (added after format v1; absent in older catalogs).
const TAGS: TableDefinition<u64, &[u8]> = TableDefinition::new("tags");
/// Ordinals a `delete` tombstoned, per generation (for withdrawal reports).
const WITHDRAWALS: TableDefinition<u64, &[u8]> = TableDefinition::new("withdrawals");
/// What each `delete` withdrew, summed by license and source, per
/// generation: kept after `compact` drops the documents themselves.
const WITHDRAWN: TableDefinition<u64, &[u8]> = TableDefinition::new("withdrawn_summary");

/// Version prefix of every postcard value in the catalog: 2 adds a CRC32C
/// of the postcard bytes (1, without it, is still read).
const VALUE_VERSION: u16 = 2;

/// Prefix of checksummed tombstone values (older ones are bare roaring bitmaps).
const TOMB_MAGIC: [u8; 4] = *b"CQT2";

/// File name of the catalog inside a corpus directory.
pub const CATALOG_FILE: &str = "catalog.redb";

/// File name of the read-optimized manifest beside the catalog.
pub const CURRENT_FILE: &str = "CURRENT";

/// `CURRENT`: a copy of the latest committed state, written
/// ([`storage::write_file_atomic`]) after each commit, so readers need not
/// open the database. Format 3: the common frame of kind
/// [`format::FileKind::Current`] around a versioned `Manifest2`; formats 1
/// (`CQLCUR01`, a bare `Manifest`) and 2 (`CQLCUR02`, a `Manifest2`) are
/// still read.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Manifest {
    generation: u64,
    schema: Schema,
    segments: Vec<SegmentEntry>,
    tombstones: Vec<(u64, Vec<u8>)>,
    next_segment_id: u64,
    cluster_fields: Vec<String>,
}

/// `CURRENT` v2: v1 plus tag sidecars, signals and the license field.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Manifest2 {
    base: Manifest,
    tags: Vec<(u64, Vec<TagEntry>)>,
    signals: BTreeMap<String, SignalInfo>,
    license_field: Option<String>,
}

/// One tag sidecar file of a segment: the columns one tagger computed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TagEntry {
    /// Tagger name (`language`, `quality`, ...).
    pub tagger: String,
    /// The tagger's version when it wrote this file.
    pub version: String,
    /// File name inside the corpus directory.
    pub file: String,
    /// Documents of the segment that carry values.
    pub tagged_docs: u32,
    /// Its columns.
    pub columns: Vec<(String, crate::schema::FieldKind)>,
    /// File size.
    pub file_bytes: u64,
}

/// A signal column as the schema lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignalInfo {
    /// Kind of the column (number, facet or bool).
    pub kind: crate::schema::FieldKind,
    /// The tagger that computes it.
    pub tagger: String,
    /// The tagger version of the latest values (`signal_version`).
    pub version: String,
}

/// A segment as the catalog lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentEntry {
    /// Segment id (unique, increasing).
    pub id: u64,
    /// File name inside the corpus directory.
    pub file: String,
    /// Documents written in it (deleted ones included).
    pub docs: u32,
    /// Sum of text bytes.
    pub text_bytes: u64,
    /// File size.
    pub file_bytes: u64,
    /// Generation that added it.
    pub added_generation: u64,
}

/// Provenance of one ingested input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestLogEntry {
    /// Generation the ingest committed.
    pub generation: u64,
    /// Input name as given (`-` for stdin).
    pub source: String,
    /// Bytes read from the input (compressed size for compressed files).
    pub size: u64,
    /// xxh3-128 of the input bytes as read, hex.
    pub content_hash: String,
    /// Unix time the ingest started.
    pub started_unix: u64,
    /// Unix time of the commit.
    pub committed_unix: u64,
    /// Records ingested.
    pub ingested: u64,
    /// Records skipped as duplicate keys.
    pub skipped: u64,
    /// Records that replaced an older document with the same key.
    pub replaced: u64,
    /// Records rejected.
    pub rejected: u64,
    /// Constant facets added with `--set`.
    pub set: Vec<(String, String)>,
}

/// One committed change of the corpus.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenerationEntry {
    /// The generation number this commit created.
    pub generation: u64,
    /// `ingest`, `delete` or `compact`.
    pub op: String,
    /// Unix time of the commit.
    pub unix: u64,
    /// A short description (query deleted, files ingested, ...).
    pub detail: String,
    /// Live documents after the commit.
    pub live_docs: u64,
}

/// A consistent snapshot of the catalog.
#[derive(Debug, Clone, Default)]
pub struct CatalogState {
    /// Current generation (0 for an empty corpus).
    pub generation: u64,
    /// The schema.
    pub schema: Schema,
    /// Live segments in id order.
    pub segments: Vec<SegmentEntry>,
    /// Deleted ordinals per segment id.
    pub tombstones: BTreeMap<u64, RoaringBitmap>,
    /// Next free segment id.
    pub next_segment_id: u64,
    /// Facets documents are clustered by inside segments.
    pub cluster_fields: Vec<String>,
    /// Tag sidecars per segment id.
    pub tags: BTreeMap<u64, Vec<TagEntry>>,
    /// Signal columns computed by taggers, by name.
    pub signals: BTreeMap<String, SignalInfo>,
    /// The field licenses are read from (`license` unless ingest named another).
    pub license_field: Option<String>,
}

impl CatalogState {
    /// The field licenses are read from.
    pub fn license_field(&self) -> &str {
        self.license_field.as_deref().unwrap_or("license")
    }
}

/// Changes committed atomically in one transaction.
#[derive(Debug, Default)]
pub struct Commit {
    /// Segments to add.
    pub add: Vec<SegmentEntry>,
    /// Segment ids to remove (their tombstones go too).
    pub remove: Vec<u64>,
    /// Ordinals to tombstone, per segment (merged with existing ones).
    pub tombstones: Vec<(u64, RoaringBitmap)>,
    /// A new schema, when it changed.
    pub schema: Option<Schema>,
    /// Ingest provenance records.
    pub ingest_log: Vec<IngestLogEntry>,
    /// What this commit does.
    pub op: String,
    /// Its description.
    pub detail: String,
    /// The next free segment id after this commit.
    pub next_segment_id: u64,
    /// For a delete: what it withdraws, by license and source.
    pub withdrawn: Option<WithdrawnSummary>,
    /// Tag sidecars to set, per segment (replacing that segment's list).
    pub tags: Vec<(u64, Vec<TagEntry>)>,
    /// New signal columns table, when it changed.
    pub signals: Option<BTreeMap<String, SignalInfo>>,
    /// A new license field, when it changed.
    pub license_field: Option<String>,
}

/// Totals of what one `delete` withdrew, recorded with it and kept for
/// good (compaction drops the documents, not this record).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WithdrawnSummary {
    /// Documents withdrawn.
    pub docs: u64,
    /// Bytes of their text.
    pub bytes: u64,
    /// (license_id, documents, bytes), by license id.
    pub by_license: Vec<(String, u64, u64)>,
    /// (source, documents, bytes), by source (`(none)` without one).
    pub by_source: Vec<(String, u64, u64)>,
}

/// What one `delete` generation withdrew.
#[derive(Debug, Clone, Default)]
pub struct Withdrawal {
    /// The generation the delete created.
    pub generation: u64,
    /// Ordinals it tombstoned, per segment id.
    pub tombstoned: BTreeMap<u64, RoaringBitmap>,
}

fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    let body = postcard::to_stdvec(v)
        .map_err(|e| Error::Invalid(format!("encoding catalog value: {e}")))?;
    let mut out = VALUE_VERSION.to_le_bytes().to_vec();
    out.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
    out.extend(body);
    Ok(out)
}

fn encode_tombstones(bm: &RoaringBitmap) -> Vec<u8> {
    let mut body = Vec::new();
    bm.serialize_into(&mut body)
        .expect("writing to a Vec cannot fail");
    let mut out = TOMB_MAGIC.to_vec();
    out.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
    out.extend(body);
    out
}

fn decode_tombstones(path: &Path, b: &[u8]) -> Result<RoaringBitmap> {
    let body = if b.len() >= 8 && b[..4] == TOMB_MAGIC {
        let crc = u32::from_le_bytes(b[4..8].try_into().unwrap());
        if crc32c::crc32c(&b[8..]) != crc {
            return Err(Error::corrupt(
                path,
                "catalog tombstones: checksum mismatch",
            ));
        }
        &b[8..]
    } else {
        b
    };
    RoaringBitmap::deserialize_from(body)
        .map_err(|e| Error::corrupt(path, format!("catalog tombstones: {e}")))
}

/// The state in the bytes of a `CURRENT` file (format 3, or the older 1
/// and 2), `None` when they do not read (`CURRENT` is a cache: the caller
/// falls back to the database). `catalog` names the catalog in errors.
pub(crate) fn decode_current(catalog: &Path, b: &[u8]) -> Option<CatalogState> {
    let old = [format::v1::CURRENT_MAGIC_V1, format::v1::CURRENT_MAGIC_V2];
    let m2: Manifest2 = if b.len() >= 8 && old.iter().any(|m| b.starts_with(m)) {
        let h = format::v1::CURRENT_HEADER_LEN;
        if b.len() < h {
            return None;
        }
        let len = u32::from_le_bytes(b[8..12].try_into().ok()?) as usize;
        let crc = u32::from_le_bytes(b[12..16].try_into().ok()?);
        let body = b.get(h..h.checked_add(len)?)?;
        if crc32c::crc32c(body) != crc || b.len() != h + len {
            return None;
        }
        if b.starts_with(&format::v1::CURRENT_MAGIC_V2) {
            decode(catalog, "manifest", body).ok()?
        } else {
            Manifest2 {
                base: decode(catalog, "manifest", body).ok()?,
                tags: Vec::new(),
                signals: BTreeMap::new(),
                license_field: None,
            }
        }
    } else {
        let frame = format::decode_whole(format::FileKind::Current, b).ok()?;
        decode(catalog, "manifest", frame.payload).ok()?
    };
    let m = m2.base;
    let mut tombstones = BTreeMap::new();
    for (id, bytes) in m.tombstones {
        tombstones.insert(id, RoaringBitmap::deserialize_from(&bytes[..]).ok()?);
    }
    Some(CatalogState {
        generation: m.generation,
        schema: m.schema,
        segments: m.segments,
        tombstones,
        next_segment_id: m.next_segment_id,
        cluster_fields: m.cluster_fields,
        tags: m2.tags.into_iter().collect(),
        signals: m2.signals,
        license_field: m2.license_field,
    })
}

/// The bytes of a `CURRENT` file (format 3) holding `m`.
fn encode_current(m: &Manifest2) -> Result<Vec<u8>> {
    Ok(format::encode(format::FileKind::Current, &encode(m)?))
}

fn decode<T: DeserializeOwned>(path: &Path, what: &str, b: &[u8]) -> Result<T> {
    if b.len() < 2 {
        return Err(Error::corrupt(
            path,
            format!("catalog {what}: value too short"),
        ));
    }
    let v = u16::from_le_bytes([b[0], b[1]]);
    let body = match v {
        1 => &b[2..],
        2 if b.len() >= 6 => {
            let crc = u32::from_le_bytes(b[2..6].try_into().unwrap());
            if crc32c::crc32c(&b[6..]) != crc {
                return Err(Error::corrupt(
                    path,
                    format!("catalog {what}: checksum mismatch"),
                ));
            }
            &b[6..]
        }
        2 => {
            return Err(Error::corrupt(
                path,
                format!("catalog {what}: value too short"),
            ))
        }
        _ => {
            return Err(Error::Version {
                path: path.into(),
                found: v as u32,
                supported: VALUE_VERSION as u32,
            })
        }
    };
    postcard::from_bytes(body).map_err(|e| Error::corrupt(path, format!("catalog {what}: {e}")))
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Handle on a corpus's catalog file.
#[derive(Debug, Clone)]
pub struct Catalog {
    path: PathBuf,
}

impl Catalog {
    /// The catalog of the corpus in `dir`.
    pub fn new(dir: &Path) -> Catalog {
        Catalog {
            path: dir.join(CATALOG_FILE),
        }
    }

    /// Whether the catalog file exists.
    pub fn exists(&self) -> bool {
        self.path.exists()
    }

    /// The catalog file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, e: impl std::fmt::Display) -> Error {
        Error::Catalog {
            path: self.path.clone(),
            detail: e.to_string(),
        }
    }

    /// Opens the database, waiting (up to a minute) while another process holds it.
    fn db(&self, create: bool) -> Result<Database> {
        self.db_at(&self.path, create)
    }

    /// Opens (or creates) the database in `path` through the storage layer.
    /// Like `Database::open`, refuses an empty file unless creating.
    fn open_db(path: &Path, create: bool) -> std::result::Result<Database, DatabaseError> {
        let backend = storage::CatalogBackend::open(path, create)?;
        if !create && redb::StorageBackend::len(&backend)? == 0 {
            return Err(DatabaseError::Storage(redb::StorageError::Io(
                std::io::ErrorKind::InvalidData.into(),
            )));
        }
        redb::Builder::new().create_with_backend(backend)
    }

    fn db_at(&self, path: &Path, create: bool) -> Result<Database> {
        let start = Instant::now();
        let mut wait = Duration::from_millis(1);
        loop {
            let r = Self::open_db(path, create);
            match r {
                Ok(db) => return Ok(db),
                Err(DatabaseError::DatabaseAlreadyOpen)
                    if start.elapsed() < Duration::from_secs(60) =>
                {
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(Duration::from_millis(50));
                }
                Err(e) => return Err(self.err(e)),
            }
        }
    }

    /// Creates an empty catalog (idempotent).
    pub fn create(&self, schema: &Schema, cluster_fields: &[String]) -> Result<()> {
        self.guard(|| self.create_inner(schema, cluster_fields))
    }

    /// Builds the new database under a temporary name and renames it into
    /// place, so that `catalog.redb` exists only once complete: a crash
    /// while creating leaves no corpus, not an unreadable one.
    fn create_inner(&self, schema: &Schema, cluster_fields: &[String]) -> Result<()> {
        if self.path.exists() {
            self.init_db(&self.db(true)?, schema, cluster_fields)?;
        } else {
            let tmp = self.path.with_extension("redb.tmp");
            match storage::remove_file(&tmp) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(Error::io(&tmp, e))
                }
                _ => {}
            }
            self.init_db(&self.db_at(&tmp, true)?, schema, cluster_fields)?;
            storage::rename(&tmp, &self.path).map_err(|e| Error::io(&self.path, e))?;
            storage::sync_dir(self.dir()).map_err(|e| Error::io(self.dir(), e))?;
        }
        let st = self.state_from_db()?;
        self.replace_current(&st);
        Ok(())
    }

    /// Writes the initial tables and meta values (those missing) and syncs.
    fn init_db(&self, db: &Database, schema: &Schema, cluster_fields: &[String]) -> Result<()> {
        let tx = db.begin_write().map_err(|e| self.err(e))?;
        {
            let mut m = tx.open_table(META).map_err(|e| self.err(e))?;
            if m.get("format_version").map_err(|e| self.err(e))?.is_none() {
                m.insert(
                    "format_version",
                    format::CATALOG_VERSION.to_le_bytes().as_slice(),
                )
                .map_err(|e| self.err(e))?;
                m.insert("generation", 0u64.to_le_bytes().as_slice())
                    .map_err(|e| self.err(e))?;
                m.insert("next_segment_id", 1u64.to_le_bytes().as_slice())
                    .map_err(|e| self.err(e))?;
                m.insert("schema", encode(schema)?.as_slice())
                    .map_err(|e| self.err(e))?;
                m.insert(
                    "cluster_fields",
                    encode(&cluster_fields.to_vec())?.as_slice(),
                )
                .map_err(|e| self.err(e))?;
            }
            tx.open_table(SEGMENTS).map_err(|e| self.err(e))?;
            tx.open_table(TOMBSTONES).map_err(|e| self.err(e))?;
            tx.open_table(INGEST_LOG).map_err(|e| self.err(e))?;
            tx.open_table(GENERATIONS).map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))
    }

    /// Reads a consistent snapshot: from the `CURRENT` manifest when it is
    /// present and intact, else from the database.
    pub fn state(&self) -> Result<CatalogState> {
        if let Some(st) = self.read_current() {
            return Ok(st);
        }
        self.state_from_db()
    }

    /// Reads the snapshot from the database itself (the source of truth).
    pub fn state_from_db(&self) -> Result<CatalogState> {
        self.guard(|| {
            let db = self.db(false)?;
            self.read_state(&db)
        })
    }

    /// Runs a database operation, turning a panic inside redb (a damaged
    /// file) into an error that names the catalog.
    fn guard<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
            Ok(r) => r,
            Err(p) => {
                let msg = p
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                Err(Error::corrupt(
                    &self.path,
                    format!("the catalog database is damaged ({msg}); restore it from a backup"),
                ))
            }
        }
    }

    /// Rewrites `CURRENT` when it is missing or behind the database. Called
    /// by writers under the corpus lock, before collecting orphans.
    pub fn refresh_current(&self) -> Result<CatalogState> {
        let st = self.state_from_db()?;
        if self.read_current().map(|c| c.generation) != Some(st.generation) {
            self.replace_current(&st);
        }
        Ok(st)
    }

    /// The snapshot in an intact `CURRENT` manifest, if there is one.
    pub fn current(&self) -> Option<CatalogState> {
        self.read_current()
    }

    fn current_path(&self) -> PathBuf {
        self.path.with_file_name(CURRENT_FILE)
    }

    fn read_current(&self) -> Option<CatalogState> {
        let b = std::fs::read(self.current_path()).ok()?;
        decode_current(&self.path, &b)
    }

    /// Removes `CURRENT` and fsyncs the directory.
    fn invalidate_current(&self) -> Result<()> {
        let p = self.current_path();
        match storage::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(Error::io(&p, e)),
            _ => {}
        }
        storage::sync_dir(self.dir()).map_err(|e| Error::io(self.dir(), e))
    }

    /// The corpus directory.
    fn dir(&self) -> &Path {
        match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        }
    }

    /// Rewrites `CURRENT` from `st`. `CURRENT` is a cache of the database:
    /// when it cannot be rewritten it is removed, so that readers fall back
    /// to the database rather than see an older generation.
    fn replace_current(&self, st: &CatalogState) {
        if self.write_current(st).is_err() {
            let _ = storage::remove_file(&self.current_path());
        }
    }

    fn write_current(&self, st: &CatalogState) -> Result<()> {
        let mut tomb = Vec::new();
        for (id, bm) in &st.tombstones {
            let mut b = Vec::new();
            bm.serialize_into(&mut b).map_err(|e| self.err(e))?;
            tomb.push((*id, b));
        }
        let m = Manifest {
            generation: st.generation,
            schema: st.schema.clone(),
            segments: st.segments.clone(),
            tombstones: tomb,
            next_segment_id: st.next_segment_id,
            cluster_fields: st.cluster_fields.clone(),
        };
        let m = Manifest2 {
            base: m,
            tags: st.tags.iter().map(|(k, v)| (*k, v.clone())).collect(),
            signals: st.signals.clone(),
            license_field: st.license_field.clone(),
        };
        storage::write_file_atomic(&self.current_path(), &encode_current(&m)?)
    }

    fn read_state(&self, db: &Database) -> Result<CatalogState> {
        let tx = db.begin_read().map_err(|e| self.err(e))?;
        let m = tx.open_table(META).map_err(|e| self.err(e))?;
        let get = |k: &str| -> Result<Vec<u8>> {
            m.get(k)
                .map_err(|e| self.err(e))?
                .map(|v| v.value().to_vec())
                .ok_or_else(|| Error::corrupt(&self.path, format!("catalog lacks `{k}`")))
        };
        let u64_of = |k: &str| -> Result<u64> {
            let b = get(k)?;
            b.try_into()
                .map(u64::from_le_bytes)
                .map_err(|_| Error::corrupt(&self.path, format!("catalog `{k}` malformed")))
        };
        let version = get("format_version")?;
        let version = u32::from_le_bytes(
            version
                .try_into()
                .map_err(|_| Error::corrupt(&self.path, "catalog format_version malformed"))?,
        );
        if version > format::CATALOG_VERSION {
            return Err(Error::Version {
                path: self.path.clone(),
                found: version,
                supported: format::CATALOG_VERSION,
            });
        }
        let mut st = CatalogState {
            generation: u64_of("generation")?,
            next_segment_id: u64_of("next_segment_id")?,
            schema: decode(&self.path, "schema", &get("schema")?)?,
            cluster_fields: decode(&self.path, "cluster_fields", &get("cluster_fields")?)?,
            ..Default::default()
        };
        let segs = tx.open_table(SEGMENTS).map_err(|e| self.err(e))?;
        for r in segs.iter().map_err(|e| self.err(e))? {
            let (_, v) = r.map_err(|e| self.err(e))?;
            st.segments.push(decode(&self.path, "segment", v.value())?);
        }
        let tomb = tx.open_table(TOMBSTONES).map_err(|e| self.err(e))?;
        for r in tomb.iter().map_err(|e| self.err(e))? {
            let (k, v) = r.map_err(|e| self.err(e))?;
            let bm = decode_tombstones(&self.path, v.value())?;
            st.tombstones.insert(k.value(), bm);
        }
        if let Some(v) = m.get("signals").map_err(|e| self.err(e))? {
            st.signals = decode(&self.path, "signals", v.value())?;
        }
        if let Some(v) = m.get("license_field").map_err(|e| self.err(e))? {
            st.license_field = Some(decode(&self.path, "license_field", v.value())?);
        }
        match tx.open_table(TAGS) {
            Ok(tags) => {
                for r in tags.iter().map_err(|e| self.err(e))? {
                    let (k, v) = r.map_err(|e| self.err(e))?;
                    st.tags
                        .insert(k.value(), decode(&self.path, "tags", v.value())?);
                }
            }
            Err(redb::TableError::TableDoesNotExist(_)) => {}
            Err(e) => return Err(self.err(e)),
        }
        Ok(st)
    }

    /// What each `delete` withdrew, oldest first (empty for catalogs
    /// written before withdrawals were recorded).
    pub fn withdrawals(&self) -> Result<Vec<Withdrawal>> {
        // Per generation: (segment id, encoded tombstones) pairs.
        type Parts = Vec<(u64, Vec<u8>)>;
        self.read_keyed::<Parts>(WITHDRAWALS, "withdrawal")?
            .into_iter()
            .map(|(generation, parts)| {
                let mut w = Withdrawal {
                    generation,
                    ..Default::default()
                };
                for (id, b) in parts {
                    w.tombstoned.insert(id, decode_tombstones(&self.path, &b)?);
                }
                Ok(w)
            })
            .collect()
    }

    /// The summary each `delete` recorded, by the generation it created
    /// (empty for deletes made before summaries were recorded).
    pub fn withdrawn_summaries(&self) -> Result<BTreeMap<u64, WithdrawnSummary>> {
        Ok(self
            .read_keyed(WITHDRAWN, "withdrawn summary")?
            .into_iter()
            .collect())
    }

    /// Every (key, value) of a table added after format 1 (empty when this
    /// catalog predates it), oldest key first.
    fn read_keyed<T: DeserializeOwned>(
        &self,
        t: TableDefinition<u64, &[u8]>,
        what: &str,
    ) -> Result<Vec<(u64, T)>> {
        self.guard(|| {
            let db = self.db(false)?;
            let tx = db.begin_read().map_err(|e| self.err(e))?;
            let tab = match tx.open_table(t) {
                Ok(t) => t,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
                Err(e) => return Err(self.err(e)),
            };
            let mut out = Vec::new();
            for r in tab.iter().map_err(|e| self.err(e))? {
                let (k, v) = r.map_err(|e| self.err(e))?;
                out.push((k.value(), decode(&self.path, what, v.value())?));
            }
            Ok(out)
        })
    }

    /// Applies `c` atomically, creating generation `expected + 1`. Fails when
    /// the catalog moved past `expected` meanwhile (another writer).
    pub fn commit(&self, expected_generation: u64, c: Commit, live_docs: u64) -> Result<u64> {
        self.guard(|| self.commit_inner(expected_generation, c, live_docs))
    }

    fn commit_inner(&self, expected_generation: u64, c: Commit, live_docs: u64) -> Result<u64> {
        let db = self.db(false)?;
        let tx = db.begin_write().map_err(|e| self.err(e))?;
        let generation;
        {
            let mut m = tx.open_table(META).map_err(|e| self.err(e))?;
            let cur = m
                .get("generation")
                .map_err(|e| self.err(e))?
                .and_then(|v| v.value().try_into().ok().map(u64::from_le_bytes))
                .ok_or_else(|| Error::corrupt(&self.path, "catalog lacks its generation"))?;
            if cur != expected_generation {
                return Err(Error::Invalid(format!(
                    "the corpus changed during this command (generation {expected_generation} -> {cur}); run it again"
                )));
            }
            generation = cur + 1;
            m.insert("generation", generation.to_le_bytes().as_slice())
                .map_err(|e| self.err(e))?;
            m.insert(
                "next_segment_id",
                c.next_segment_id.to_le_bytes().as_slice(),
            )
            .map_err(|e| self.err(e))?;
            if let Some(s) = &c.schema {
                m.insert("schema", encode(s)?.as_slice())
                    .map_err(|e| self.err(e))?;
            }
            if let Some(s) = &c.signals {
                m.insert("signals", encode(s)?.as_slice())
                    .map_err(|e| self.err(e))?;
            }
            if let Some(f) = &c.license_field {
                m.insert("license_field", encode(f)?.as_slice())
                    .map_err(|e| self.err(e))?;
            }
            let mut tags = tx.open_table(TAGS).map_err(|e| self.err(e))?;
            for id in &c.remove {
                tags.remove(id).map_err(|e| self.err(e))?;
            }
            for (id, list) in &c.tags {
                if list.is_empty() {
                    tags.remove(id).map_err(|e| self.err(e))?;
                } else {
                    tags.insert(id, encode(list)?.as_slice())
                        .map_err(|e| self.err(e))?;
                }
            }
            if c.op == "delete" && !c.tombstones.is_empty() {
                let parts: Vec<(u64, Vec<u8>)> = c
                    .tombstones
                    .iter()
                    .map(|(id, bm)| (*id, encode_tombstones(bm)))
                    .collect();
                let mut w = tx.open_table(WITHDRAWALS).map_err(|e| self.err(e))?;
                w.insert(generation, encode(&parts)?.as_slice())
                    .map_err(|e| self.err(e))?;
                if let Some(sum) = &c.withdrawn {
                    let mut t = tx.open_table(WITHDRAWN).map_err(|e| self.err(e))?;
                    t.insert(generation, encode(sum)?.as_slice())
                        .map_err(|e| self.err(e))?;
                }
            }
            let mut segs = tx.open_table(SEGMENTS).map_err(|e| self.err(e))?;
            let mut tomb = tx.open_table(TOMBSTONES).map_err(|e| self.err(e))?;
            for id in &c.remove {
                segs.remove(id).map_err(|e| self.err(e))?;
                tomb.remove(id).map_err(|e| self.err(e))?;
            }
            for s in &c.add {
                let mut s = s.clone();
                s.added_generation = generation;
                segs.insert(s.id, encode(&s)?.as_slice())
                    .map_err(|e| self.err(e))?;
            }
            for (id, bm) in &c.tombstones {
                let mut merged = match tomb.get(id).map_err(|e| self.err(e))? {
                    Some(v) => decode_tombstones(&self.path, v.value())?,
                    None => RoaringBitmap::new(),
                };
                merged |= bm;
                tomb.insert(id, encode_tombstones(&merged).as_slice())
                    .map_err(|e| self.err(e))?;
            }
            let mut log = tx.open_table(INGEST_LOG).map_err(|e| self.err(e))?;
            let first = log
                .last()
                .map_err(|e| self.err(e))?
                .map(|(k, _)| k.value() + 1)
                .unwrap_or(1);
            for (next, mut e) in (first..).zip(c.ingest_log) {
                e.generation = generation;
                e.committed_unix = unix_now();
                log.insert(next, encode(&e)?.as_slice())
                    .map_err(|e| self.err(e))?;
            }
            let mut gens = tx.open_table(GENERATIONS).map_err(|e| self.err(e))?;
            let g = GenerationEntry {
                generation,
                op: c.op,
                unix: unix_now(),
                detail: c.detail,
                live_docs,
            };
            gens.insert(generation, encode(&g)?.as_slice())
                .map_err(|e| self.err(e))?;
        }
        // CURRENT is about to fall behind: it goes, durably, before the
        // commit, so that a crash or a failed rewrite between the commit and
        // the new CURRENT leaves readers on the database, never on a stale
        // manifest.
        self.invalidate_current()?;
        tx.commit().map_err(|e| self.err(e))?;
        // The generation is committed whatever happens to CURRENT now: a
        // CURRENT that cannot be rewritten is removed so that readers fall
        // back to the database rather than see the previous generation.
        match self.read_state(&db) {
            Ok(st) => self.replace_current(&st),
            Err(_) => {
                let _ = storage::remove_file(&self.current_path());
            }
        }
        Ok(generation)
    }

    /// The ingest log, oldest first.
    pub fn ingest_log(&self) -> Result<Vec<IngestLogEntry>> {
        self.read_all(INGEST_LOG, "ingest log")
    }

    /// The generation log, oldest first.
    pub fn generations(&self) -> Result<Vec<GenerationEntry>> {
        self.read_all(GENERATIONS, "generation log")
    }

    fn read_all<T: DeserializeOwned>(
        &self,
        t: TableDefinition<u64, &[u8]>,
        what: &str,
    ) -> Result<Vec<T>> {
        self.guard(|| self.read_all_inner(t, what))
    }

    fn read_all_inner<T: DeserializeOwned>(
        &self,
        t: TableDefinition<u64, &[u8]>,
        what: &str,
    ) -> Result<Vec<T>> {
        let db = self.db(false)?;
        let tx = db.begin_read().map_err(|e| self.err(e))?;
        let tab = tx.open_table(t).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for r in tab.iter().map_err(|e| self.err(e))? {
            let (_, v) = r.map_err(|e| self.err(e))?;
            out.push(decode(&self.path, what, v.value())?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        let mut tomb = Vec::new();
        RoaringBitmap::from_iter([3u32, 5])
            .serialize_into(&mut tomb)
            .unwrap();
        Manifest {
            generation: 7,
            schema: Schema::default(),
            segments: vec![SegmentEntry {
                id: 1,
                file: "seg-0000000001.cqs".into(),
                docs: 10,
                text_bytes: 100,
                file_bytes: 4096,
                added_generation: 1,
            }],
            tombstones: vec![(1, tomb)],
            next_segment_id: 2,
            cluster_fields: vec!["lang".into()],
        }
    }

    /// The format 1 and 2 framing: magic, body length, body CRC32C, body.
    fn old_framing(magic: [u8; 8], body: &[u8]) -> Vec<u8> {
        let mut out = magic.to_vec();
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&crc32c::crc32c(body).to_le_bytes());
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn current_formats_1_2_and_3_read_the_same_state() {
        let p = Path::new("catalog.redb");
        let m2 = Manifest2 {
            base: manifest(),
            tags: Vec::new(),
            signals: BTreeMap::new(),
            license_field: None,
        };
        let v1 = old_framing(format::v1::CURRENT_MAGIC_V1, &encode(&manifest()).unwrap());
        let v2 = old_framing(format::v1::CURRENT_MAGIC_V2, &encode(&m2).unwrap());
        let v3 = encode_current(&m2).unwrap();
        assert!(v3.starts_with(&format::CURRENT_MAGIC));
        let states: Vec<CatalogState> = [&v1, &v2, &v3]
            .iter()
            .map(|b| decode_current(p, b).expect("reads"))
            .collect();
        for st in &states {
            assert_eq!(st.generation, 7);
            assert_eq!(st.segments, manifest().segments);
            assert_eq!(st.tombstones[&1].iter().collect::<Vec<_>>(), vec![3, 5]);
            assert_eq!(st.next_segment_id, 2);
        }
        // Damage, truncation, another kind or a newer version: not read
        // (the caller falls back to the database).
        for b in [&v1, &v2, &v3] {
            for n in [0, 8, 16, b.len() - 1] {
                assert!(decode_current(p, &b[..n]).is_none());
            }
            let mut bad = b.clone();
            let mid = bad.len() / 2;
            bad[mid] ^= 0x10;
            assert!(decode_current(p, &bad).is_none());
        }
        let mut future = v3.clone();
        future[format::HEADER_VERSION_OFFSET] += 1;
        assert!(decode_current(p, &future).is_none());
        let counts = format::encode(format::FileKind::TokenCounts, &v3[16..v3.len() - 24]);
        assert!(decode_current(p, &counts).is_none());
    }
}
