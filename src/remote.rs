//! Corpora at a URI (`s3://bucket/prefix`, `gs://`, `az://`, `file://`),
//! through the `object_store` crate, configured by the usual environment
//! variables (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, `AWS_REGION`,
//! `AWS_ALLOW_HTTP`, `GOOGLE_SERVICE_ACCOUNT`, `AZURE_STORAGE_ACCOUNT_NAME`,
//! ...). This module owns the layout of a corpus on object storage, its
//! commit protocol and the node-local mirror reads go through.
//!
//! **Layout.** A corpus at a URI is a series of numbered **versions**
//! (`versions/00000000000000000007.json`), each a manifest naming every file
//! of one corpus generation (segments, sidecars, token counts and ids, the
//! catalog, `CURRENT`, the policy) with its size and xxh3-128, and
//! content-addressed **objects** (`objects/<file name>.<xxh3-128>`) holding
//! the bytes. Objects are never overwritten with other bytes, so a writer
//! that loses a race or dies leaves only unreferenced objects.
//!
//! **Commits** are one conditional write: a writer uploads the objects of its
//! new generation, then creates `versions/<latest + 1>.json` with put-if-absent
//! (`If-None-Match: *` on S3; native on GCS, Azure and local files). Of two
//! writers racing for one version exactly one wins; the loser refreshes to
//! the winner's version and runs its whole change again on top of it
//! ([`write`]), so neither loses documents. A store that ignores conditional
//! writes is detected by a probe before the first commit and refused.
//! Readers take the highest version a LIST shows; every version is complete
//! when it appears.
//!
//! **Reads** go through a node-local mirror: an ordinary corpus directory
//! under the cache (`CORPUSQL_CACHE`, else `$XDG_CACHE_HOME/corpusql`, else
//! `~/.cache/corpusql`), one per URI, shared by the processes of a node (a
//! lock file serializes refreshes), so every read command, the Rust facade
//! and the Python package work on it unchanged. A refresh LISTs the versions
//! after the one it has, GETs the newest manifest and every object whose
//! file the mirror lacks (several at a time, each checked against its
//! xxh3-128), writes `CURRENT` last and removes files the version no longer
//! lists. A mirror that is up to date costs one LIST. Not done yet: range
//! requests for only the blocks a query needs and a bounded cache
//! (`docs/scale.md`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::StreamExt;
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};

use crate::catalog::{CatalogState, CATALOG_FILE, CURRENT_FILE};
use crate::error::{Error, IoContext, Result};

/// Files beside the segments that belong to a corpus when present.
const EXTRA_FILES: [&str; 2] = ["policy.toml", "tagging.toml"];
/// GETs or PUTs in flight at once.
const CONCURRENCY: usize = 8;
/// The folder of numbered version manifests under a corpus URI.
pub const VERSIONS_DIR: &str = "versions";
/// The folder of content-addressed objects under a corpus URI.
pub const OBJECTS_DIR: &str = "objects";
/// The folder of conditional-write probes under a corpus URI.
const PROBES_DIR: &str = "probes";
/// In a mirror, the manifest of the version it holds (written last).
pub const MIRROR_VERSION_FILE: &str = "REMOTE_VERSION.json";
/// In a mirror, the file holding the URI it mirrors.
pub const ORIGIN_FILE: &str = "ORIGIN";
/// How many times a write runs before it gives up on concurrent writers.
pub const MAX_ATTEMPTS: u32 = 10;
/// `format` of a version manifest.
const MANIFEST_FORMAT: &str = "corpusql-version";
/// `format_version` of a version manifest.
const MANIFEST_VERSION: u32 = 1;

/// The URI in `dir`, when it names one (`scheme://...`).
pub fn as_uri(dir: &Path) -> Option<&str> {
    let s = dir.to_str()?;
    let (scheme, rest) = s.split_once("://")?;
    let ok = !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '-' || c == '.')
        && !rest.is_empty();
    ok.then_some(s)
}

/// Refuses a write to a URI, or to the node-local mirror of one, from code
/// that writes a local directory: a remote corpus changes through [`write`]
/// (the CLI and the Python package route their writes there).
pub fn refuse_write(dir: &Path) -> Result<()> {
    let uri = match as_uri(dir) {
        Some(uri) => uri.to_string(),
        None => match std::fs::read_to_string(dir.join(ORIGIN_FILE)) {
            Ok(u) => u.trim().to_string(),
            Err(_) => return Ok(()),
        },
    };
    Err(Error::Invalid(format!(
        "{uri}: a corpus on object storage changes by a commit to the URI (`corpusql --corpus {uri} ingest ...`, `corpusql::remote::write`), not in {}",
        dir.display()
    )))
}

/// The cache directory mirrors live under: `CORPUSQL_CACHE`, else
/// `$XDG_CACHE_HOME/corpusql`, else `$HOME/.cache/corpusql`, else a folder
/// in the temporary directory.
pub fn default_cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CORPUSQL_CACHE") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(d).join("corpusql");
    }
    if let Some(d) = std::env::var_os("HOME") {
        return PathBuf::from(d).join(".cache").join("corpusql");
    }
    std::env::temp_dir().join("corpusql-cache")
}

/// What a mirror refresh, a copy or a commit moved.
#[derive(Debug, Clone, Default)]
pub struct SyncReport {
    /// The version of the corpus at the URI now in the target (0: none).
    pub version: u64,
    /// The corpus generation now in the target.
    pub generation: u64,
    /// Files of that generation.
    pub files: u64,
    /// Files transferred (the others were already there).
    pub transferred: u64,
    /// Bytes transferred.
    pub bytes: u64,
    /// Of `transferred`: segment files and their sidecars (immutable; a
    /// refresh that finds them all in place transfers none).
    pub segment_files: u64,
    /// Requests made (LIST pages, GETs, PUTs).
    pub requests: u64,
    /// Files removed from the target (no longer in the generation).
    pub removed: u64,
    /// Segments whose fetched blocks were dropped to keep the mirror
    /// within `CORPUSQL_CACHE_MAX_GB`.
    pub evicted: u64,
    /// Where the corpus now is (the mirror's directory, or the copy's target).
    pub dir: PathBuf,
}

/// One file of a version: its size and xxh3-128 (32 hex digits), which
/// name its object (`objects/<name>.<xxh3>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Bytes.
    pub size: u64,
    /// xxh3-128 of the bytes, 32 lowercase hex digits.
    pub xxh3: String,
    /// For a segment: its BLOCKS section, `[offset, length]`. A mirror
    /// fetches the rest of the file at once and blocks when first read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocks: Option<[u64; 2]>,
}

/// Where a lazily fetched segment's bytes are (`seg-N.cqs.lazy` in a
/// mirror, JSON).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LazySource {
    /// The corpus URI.
    pub uri: String,
    /// The object under `objects/`.
    pub object: String,
    /// The file's size and digest.
    pub entry: FileEntry,
}

/// Range requests made by this process for blocks of lazily fetched
/// segments, and the bytes they returned.
pub fn block_fetches() -> (u64, u64) {
    (
        RANGE_REQUESTS.load(std::sync::atomic::Ordering::Relaxed),
        RANGE_BYTES.load(std::sync::atomic::Ordering::Relaxed),
    )
}

static RANGE_REQUESTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static RANGE_BYTES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

thread_local! {
    /// One store client (and I/O runtime) per URI and thread: readers on
    /// several threads fetch blocks in parallel.
    static REMOTES: std::cell::RefCell<BTreeMap<String, std::rc::Rc<Remote>>> =
        const { std::cell::RefCell::new(BTreeMap::new()) };
}

/// `len` bytes at `start` of the object `src` names (one range request).
pub(crate) fn fetch_range(src: &LazySource, start: u64, len: u64) -> Result<Vec<u8>> {
    let r = REMOTES.with(|m| -> Result<std::rc::Rc<Remote>> {
        if let Some(r) = m.borrow().get(&src.uri) {
            return Ok(r.clone());
        }
        let r = std::rc::Rc::new(Remote::open(&src.uri)?);
        m.borrow_mut().insert(src.uri.clone(), r.clone());
        Ok(r)
    })?;
    let path = r.path(OBJECTS_DIR, &src.object);
    let bytes =
        r.rt.block_on(r.store.get_range(&path, start..start + len))
            .map_err(|e| r.err(&format!("{OBJECTS_DIR}/{}", src.object), e))?;
    RANGE_REQUESTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    RANGE_BYTES.fetch_add(bytes.len() as u64, std::sync::atomic::Ordering::Relaxed);
    if bytes.len() as u64 != len {
        return Err(Error::corrupt(
            PathBuf::from(format!("{}/{OBJECTS_DIR}/{}", r.uri, src.object)),
            format!("asked {len} bytes at {start}, got {}", bytes.len()),
        ));
    }
    Ok(bytes.to_vec())
}

/// The lazy-fetch source of the mirror's segment file at `path`, if its
/// blocks are fetched on first read.
fn read_lazy(path: &Path) -> Option<LazySource> {
    serde_json::from_slice(&std::fs::read(with_suffix(path, ".lazy")).ok()?).ok()
}

/// The stems (`seg-0000000001`) of the segments version `m` lists.
fn segment_stems(m: &VersionManifest) -> std::collections::HashSet<&str> {
    m.files
        .keys()
        .filter(|n| n.ends_with(".cqs"))
        .filter_map(|n| n.split('.').next())
        .collect()
}

/// Whether `name` is a file the node made for one of the segments `stems`
/// names, not part of any version: token counts and ids a reader computed,
/// a lazy segment's source and presence.
fn node_side(name: &str, stems: &std::collections::HashSet<&str>) -> bool {
    let side = name.ends_with(".cqc")
        || name.ends_with(".cqi")
        || name.ends_with(".cqs.lazy")
        || name.ends_with(".cqs.present");
    side && name.split('.').next().is_some_and(|x| stems.contains(x))
}

/// The manifest of one version of a corpus at a URI
/// (`versions/<version:020>.json`, JSON; see `docs/format.md`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VersionManifest {
    /// Always `corpusql-version`.
    pub format: String,
    /// The manifest format's version (1).
    pub format_version: u32,
    /// This version's number (1, 2, ...; gapless).
    pub version: u64,
    /// The corpus generation it holds.
    pub generation: u64,
    /// The version it was built on (`None`: the first, or a copy that
    /// replaced the corpus).
    pub parent: Option<u64>,
    /// What made it (`ingest`, `delete`, `copy`, ...).
    pub command: String,
    /// Host and process that committed it.
    pub writer: String,
    /// Seconds since the Unix epoch at the commit.
    pub time_unix: u64,
    /// Every file of the generation, by name.
    pub files: BTreeMap<String, FileEntry>,
}

impl VersionManifest {
    fn object(name: &str, e: &FileEntry) -> String {
        format!("{name}.{}", e.xxh3)
    }
}

fn version_file(v: u64) -> String {
    format!("{v:020}.json")
}

/// xxh3-128 of `bytes` as 32 hex digits.
fn digest(bytes: &[u8]) -> String {
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(bytes))
}

/// xxh3-128 and size of the file at `path`.
fn file_entry(path: &Path) -> Result<FileEntry> {
    let f = std::fs::File::open(path).at(path)?;
    let size = f.metadata().at(path)?.len();
    if size == 0 {
        return Ok(FileEntry {
            size,
            xxh3: digest(&[]),
            blocks: None,
        });
    }
    // SAFETY: the files hashed are a corpus's immutable files or files this
    // process wrote and no longer changes; a concurrent truncation would at
    // worst give a digest the readers' check then refuses.
    let map = unsafe { memmap2::Mmap::map(&f) }.at(path)?;
    let blocks = if path.extension().is_some_and(|e| e == "cqs") {
        let seg = crate::segment::reader::Segment::open(path)?;
        seg.sections()
            .iter()
            .find(|s| s.id == crate::format::section::BLOCKS)
            .map(|s| [s.offset, s.len])
    } else {
        None
    };
    Ok(FileEntry {
        size,
        xxh3: digest(&map),
        blocks,
    })
}

/// An object store and the prefix a corpus lives under.
struct Remote {
    uri: String,
    store: Arc<dyn ObjectStore>,
    prefix: ObjPath,
    rt: tokio::runtime::Runtime,
}

/// A commit lost the race for its version to another writer.
struct Conflict(u64);

impl Remote {
    fn open(uri: &str) -> Result<Remote> {
        let bad = |e: String| Error::Invalid(format!("{uri}: {e}"));
        let url = url::Url::parse(uri).map_err(|e| bad(format!("not a URI ({e})")))?;
        let prefix = ObjPath::from_url_path(url.path()).map_err(|e| bad(e.to_string()))?;
        let store: Arc<dyn ObjectStore> = match url.scheme() {
            "s3" | "s3a" => Arc::new(
                object_store::aws::AmazonS3Builder::from_env()
                    .with_url(uri)
                    .build()
                    .map_err(|e| bad(e.to_string()))?,
            ),
            "gs" => Arc::new(
                object_store::gcp::GoogleCloudStorageBuilder::from_env()
                    .with_url(uri)
                    .build()
                    .map_err(|e| bad(e.to_string()))?,
            ),
            "az" | "abfs" | "abfss" | "azure" => Arc::new(
                object_store::azure::MicrosoftAzureBuilder::from_env()
                    .with_url(uri)
                    .build()
                    .map_err(|e| bad(e.to_string()))?,
            ),
            "file" => Arc::new(object_store::local::LocalFileSystem::new()),
            other => {
                return Err(bad(format!(
                    "unknown scheme `{other}` (s3://, gs://, az://, file://)"
                )))
            }
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| bad(format!("cannot start the I/O runtime: {e}")))?;
        Ok(Remote {
            uri: uri.trim_end_matches('/').to_string(),
            store,
            prefix,
            rt,
        })
    }

    fn path(&self, dir: &str, name: &str) -> ObjPath {
        self.prefix.child(dir).child(name)
    }

    /// The object of file `name` with entry `e`: its name under
    /// `objects/`, its path, and how messages show it.
    fn object(&self, name: &str, e: &FileEntry) -> (String, ObjPath, String) {
        let obj = VersionManifest::object(name, e);
        let path = self.path(OBJECTS_DIR, &obj);
        let shown = format!("{}/{OBJECTS_DIR}/{obj}", self.uri);
        (obj, path, shown)
    }

    /// The object at `rel` (parts separated by `/`) under the prefix.
    fn at(&self, rel: &str) -> ObjPath {
        rel.split('/')
            .filter(|p| !p.is_empty())
            .fold(self.prefix.clone(), |p, part| p.child(part))
    }

    fn err(&self, name: &str, e: object_store::Error) -> Error {
        Error::Invalid(format!("{}/{name}: {e}", self.uri))
    }

    /// The newest version number (`after` when none is newer; `None`: no
    /// version at all). One LIST request per 1,000 versions after `after`.
    fn latest_version(&self, after: u64, requests: &mut u64) -> Result<Option<u64>> {
        let dir = self.prefix.child(VERSIONS_DIR);
        let offset = dir.child(version_file(after));
        let metas: Vec<object_store::Result<object_store::ObjectMeta>> = self.rt.block_on(
            self.store
                .list_with_offset(Some(&dir), &offset)
                .collect::<Vec<_>>(),
        );
        let mut latest = (after > 0).then_some(after);
        let mut n = 0u64;
        for m in metas {
            let m = m.map_err(|e| self.err(VERSIONS_DIR, e))?;
            n += 1;
            let v = m
                .location
                .filename()
                .and_then(|f| f.strip_suffix(".json"))
                .filter(|f| f.len() == 20)
                .and_then(|f| f.parse::<u64>().ok());
            if let Some(v) = v {
                latest = latest.max(Some(v));
            }
        }
        *requests += 1 + n / 1000;
        Ok(latest)
    }

    fn get(&self, path: &ObjPath) -> std::result::Result<Vec<u8>, object_store::Error> {
        self.rt
            .block_on(async { self.store.get(path).await?.bytes().await })
            .map(|b| b.to_vec())
    }

    fn manifest(&self, v: u64) -> Result<VersionManifest> {
        let name = format!("{VERSIONS_DIR}/{}", version_file(v));
        let bytes = self
            .get(&self.path(VERSIONS_DIR, &version_file(v)))
            .map_err(|e| self.err(&name, e))?;
        let m: VersionManifest = serde_json::from_slice(&bytes).map_err(|e| {
            Error::corrupt(
                PathBuf::from(format!("{}/{name}", self.uri)),
                format!("unreadable version manifest ({e})"),
            )
        })?;
        if m.format != MANIFEST_FORMAT || m.format_version != MANIFEST_VERSION || m.version != v {
            return Err(Error::corrupt(
                PathBuf::from(format!("{}/{name}", self.uri)),
                format!(
                    "a {} manifest, format version {}, version {} (this corpusql reads {MANIFEST_FORMAT} {MANIFEST_VERSION})",
                    m.format, m.format_version, m.version
                ),
            ));
        }
        Ok(m)
    }

    fn no_corpus(&self) -> Error {
        // A corpus published by the first object-storage layout (files at
        // their names, `CURRENT` at the top) is named as such.
        if self.get(&self.prefix.child(CURRENT_FILE)).is_ok() {
            return Error::Invalid(format!(
                "{}: a corpus in the earlier object-storage layout (CURRENT at the top, no versions/); copy its directory again with `corpusql copy DIR {}`",
                self.uri, self.uri
            ));
        }
        Error::NoCorpus {
            path: PathBuf::from(&self.uri),
        }
    }

    /// Refuses a store that does not honour put-if-absent: two creates of
    /// one probe object must give one success and one "already exists".
    fn require_conditional_writes(&self) -> Result<()> {
        let name = format!(
            "{}-{}-{}",
            hostname(),
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        );
        let path = self.path(PROBES_DIR, &name);
        let create = || {
            self.rt.block_on(self.store.put_opts(
                &path,
                PutPayload::from_static(b"probe"),
                PutOptions::from(PutMode::Create),
            ))
        };
        let refuse = |why: String| {
            Error::Invalid(format!(
                "{}: {why}; corpusql commits to object storage by put-if-absent (If-None-Match: *), which S3 (since 2024), GCS, Azure, MinIO and recent moto honour; the store was not changed",
                self.uri
            ))
        };
        let first = create();
        let second = first.as_ref().ok().map(|_| create());
        let _ = self.rt.block_on(self.store.delete(&path));
        match (first, second) {
            (Err(object_store::Error::NotImplemented), _) => Err(refuse(
                "conditional writes are turned off for this store (AWS_CONDITIONAL_PUT?)".into(),
            )),
            (Err(e), _) => Err(self.err(&format!("{PROBES_DIR}/{name}"), e)),
            (Ok(_), Some(Err(object_store::Error::AlreadyExists { .. }))) => Ok(()),
            (Ok(_), Some(Ok(_))) => Err(refuse(
                "the store accepted a second put-if-absent of an object that existed (it ignores conditional writes)".into(),
            )),
            (Ok(_), Some(Err(e))) => Err(self.err(&format!("{PROBES_DIR}/{name}"), e)),
            (Ok(_), None) => unreachable!("a second create follows a first success"),
        }
    }
}

/// This host's name, for manifests and probe names.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "host".into())
}

/// Runs `op` on every name, [`CONCURRENCY`] at a time, on `rt`; returns
/// the sum of what they return (bytes moved), or the first error.
fn each_concurrently<'a, F, Fut>(
    rt: &tokio::runtime::Runtime,
    names: &'a [String],
    op: F,
) -> Result<u64>
where
    F: FnMut(&'a String) -> Fut,
    Fut: std::future::Future<Output = Result<u64>>,
{
    let results: Vec<Result<u64>> = rt.block_on(
        futures::stream::iter(names.iter().map(op))
            .buffer_unordered(CONCURRENCY)
            .collect(),
    );
    results.into_iter().sum()
}

/// The whole object at `path`; errors name it as `shown`.
async fn get_all(
    store: Arc<dyn ObjectStore>,
    path: ObjPath,
    shown: String,
) -> Result<impl std::ops::Deref<Target = [u8]> + AsRef<[u8]>> {
    let got = match store.get(&path).await {
        Ok(g) => g.bytes().await,
        Err(e) => Err(e),
    };
    got.map_err(|e| Error::Invalid(format!("{shown}: {e}")))
}

/// Uploads each local file to its object (`rel` under the prefix),
/// [`CONCURRENCY`] at a time; returns the bytes sent.
fn put_all(r: &Remote, uploads: &[(PathBuf, String)]) -> Result<u64> {
    let idx: Vec<usize> = (0..uploads.len()).collect();
    let results: Vec<Result<u64>> = r.rt.block_on(
        futures::stream::iter(idx.into_iter().map(|i| {
            let (file, rel) = &uploads[i];
            let store = r.store.clone();
            let path = r.at(rel);
            let shown = format!("{}/{rel}", r.uri);
            async move {
                let bytes = std::fs::read(file).at(file)?;
                let n = bytes.len() as u64;
                store
                    .put(&path, PutPayload::from(bytes))
                    .await
                    .map_err(|e| Error::Invalid(format!("{shown}: {e}")))?;
                Ok(n)
            }
        }))
        .buffer_unordered(CONCURRENCY)
        .collect(),
    );
    results.into_iter().sum()
}

/// The files a corpus state consists of, among the `present` ones: its
/// segments and tag sidecars, the token counts and ids of its segments,
/// the catalog, `CURRENT`, the policy and tagging settings.
fn files_of(st: &CatalogState, present: &BTreeMap<String, u64>) -> Vec<String> {
    let stems: std::collections::HashSet<&str> = st
        .segments
        .iter()
        .filter_map(|s| s.file.split('.').next())
        .collect();
    let mut out: Vec<String> = st.segments.iter().map(|s| s.file.clone()).collect();
    out.extend(st.tags.values().flatten().map(|t| t.file.clone()));
    for name in present.keys() {
        let side = (name.ends_with(".cqc") || name.ends_with(".cqi"))
            && name
                .split('.')
                .next()
                .is_some_and(|stem| stems.contains(stem));
        if side
            || name == CATALOG_FILE
            || name == CURRENT_FILE
            || EXTRA_FILES.contains(&name.as_str())
        {
            out.push(name.clone());
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Whether a file's content can change under the same name.
fn mutable(name: &str) -> bool {
    name == CATALOG_FILE || name == CURRENT_FILE || EXTRA_FILES.contains(&name)
}

/// Regular files directly in `dir`, with their sizes.
fn local_files(dir: &Path) -> Result<BTreeMap<String, u64>> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir).at(dir)? {
        let e = e.at(dir)?;
        let p = e.path();
        if e.file_type().at(&p)?.is_file() {
            out.insert(
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().at(&p)?.len(),
            );
        }
    }
    Ok(out)
}

/// The manifest a mirror or copy recorded last, if readable.
fn recorded(dir: &Path) -> Option<VersionManifest> {
    let b = std::fs::read(dir.join(MIRROR_VERSION_FILE)).ok()?;
    serde_json::from_slice(&b).ok()
}

/// Brings `dir` (created when missing) to the newest version at `r`: GETs
/// the objects of the files it lacks, checking each one's digest, writes
/// `CURRENT` last, removes files of other versions, records the manifest.
fn fetch_from(r: &Remote, dir: &Path, lazy: bool) -> Result<(SyncReport, VersionManifest)> {
    std::fs::create_dir_all(dir).at(dir)?;
    let mut rep = SyncReport {
        dir: dir.to_path_buf(),
        ..Default::default()
    };
    let had = recorded(dir);
    let after = had.as_ref().map_or(0, |m| m.version);
    let latest = r.latest_version(after, &mut rep.requests)?;
    let Some(latest) = latest else {
        return Err(r.no_corpus());
    };
    let up_to_date =
        had.as_ref().is_some_and(|m| m.version == latest) && dir.join(CURRENT_FILE).exists();
    let m = match had {
        Some(m) if up_to_date => m,
        _ => {
            rep.requests += 1;
            r.manifest(latest)?
        }
    };
    rep.version = m.version;
    rep.generation = m.generation;
    rep.files = m.files.len() as u64;
    if up_to_date {
        return Ok((rep, m));
    }
    // From here the files change: the record goes first, so that an
    // interrupted refresh trusts no file it cannot check.
    let before = recorded(dir);
    let _ = std::fs::remove_file(dir.join(MIRROR_VERSION_FILE));
    let mut todo: Vec<String> = Vec::new();
    for (name, e) in &m.files {
        let path = dir.join(name);
        let size = std::fs::metadata(&path).map(|x| x.len()).ok();
        let same = size == Some(e.size)
            && match before.as_ref().and_then(|b| b.files.get(name)) {
                Some(was) => was == e,
                None => match read_lazy(&path) {
                    Some(l) => &l.entry == e,
                    None => file_entry(&path).is_ok_and(|f| &f == e),
                },
            };
        if !same {
            todo.push(name.clone());
        }
    }
    // CURRENT goes last, after every file it names is in place.
    let current_last = todo.iter().any(|n| n == CURRENT_FILE);
    todo.retain(|n| n != CURRENT_FILE);
    // Segments whose blocks wait for their first read.
    let (lazy_todo, todo): (Vec<String>, Vec<String>) = todo
        .into_iter()
        .partition(|n| lazy && n.ends_with(".cqs") && m.files[n].blocks.is_some());
    let get_lazy = |name: &String| {
        let e = m.files[name].clone();
        let (obj, path, shown) = r.object(name, &e);
        let store = r.store.clone();
        let target = dir.join(name);
        let source = LazySource {
            uri: r.uri.clone(),
            object: obj.clone(),
            entry: e.clone(),
        };
        async move {
            let [off, len] = e.blocks.unwrap_or([0, 0]);
            let end = off.saturating_add(len);
            let (head, tail) = (0..off, end..e.size);
            if head.end < crate::format::HEADER_LEN as u64 || tail.start > e.size {
                return Err(Error::corrupt(
                    PathBuf::from(&shown),
                    format!(
                        "the manifest's blocks {off}+{len} do not fit {} bytes",
                        e.size
                    ),
                ));
            }
            // Two requests (`get_ranges` would merge them across the
            // blocks of a small segment).
            let ranges = [
                store.get_range(&path, head.clone()).await,
                store.get_range(&path, tail.clone()).await,
            ];
            let [Ok(h), Ok(t)] = ranges else {
                let e = ranges.into_iter().find_map(|r| r.err());
                return Err(Error::Invalid(format!(
                    "{shown}: {}",
                    e.map(|e| e.to_string()).unwrap_or_default()
                )));
            };
            let ranges = [h, t];
            let tmp = target.with_extension("part");
            let f = std::fs::File::create(&tmp).at(&tmp)?;
            f.set_len(e.size).at(&tmp)?;
            use std::os::unix::fs::FileExt;
            f.write_all_at(&ranges[0], head.start).at(&tmp)?;
            f.write_all_at(&ranges[1], tail.start).at(&tmp)?;
            drop(f);
            let blocks = crate::segment::reader::Segment::open(&tmp)
                .map_err(|x| Error::corrupt(PathBuf::from(&shown), x.to_string()))?
                .blocks()
                .len();
            let (present, side) = (
                with_suffix(&target, ".present"),
                with_suffix(&target, ".lazy"),
            );
            std::fs::write(&present, vec![0u8; blocks]).at(&present)?;
            let json = serde_json::to_vec(&source).map_err(|x| Error::Invalid(x.to_string()))?;
            std::fs::write(&side, json).at(&side)?;
            std::fs::rename(&tmp, &target).at(&target)?;
            Ok((ranges[0].len() + ranges[1].len()) as u64)
        }
    };
    rep.bytes += each_concurrently(&r.rt, &lazy_todo, get_lazy)?;
    rep.transferred += lazy_todo.len() as u64;
    rep.requests += 2 * lazy_todo.len() as u64;
    rep.segment_files += lazy_todo.len() as u64;
    let get_one = |name: &String| {
        let e = m.files[name].clone();
        let (_, path, shown) = r.object(name, &e);
        let store = r.store.clone();
        let target = dir.join(name);
        async move {
            let bytes = get_all(store, path, shown.clone()).await?;
            if bytes.len() as u64 != e.size || digest(&bytes) != e.xxh3 {
                return Err(Error::corrupt(
                    PathBuf::from(&shown),
                    format!(
                        "{} bytes with xxh3-128 {}, the manifest says {} bytes, {}",
                        bytes.len(),
                        digest(&bytes),
                        e.size,
                        e.xxh3
                    ),
                ));
            }
            let tmp = target.with_extension("part");
            std::fs::write(&tmp, &bytes).at(&tmp)?;
            // A whole file: no blocks to fetch on read any more.
            for ext in [".lazy", ".present"] {
                let _ = std::fs::remove_file(with_suffix(&target, ext));
            }
            std::fs::rename(&tmp, &target).at(&target)?;
            Ok(bytes.len() as u64)
        }
    };
    rep.bytes += each_concurrently(&r.rt, &todo, get_one)?;
    rep.transferred += todo.len() as u64;
    rep.requests += todo.len() as u64;
    rep.segment_files += todo.iter().filter(|n| !mutable(n)).count() as u64;
    crate::storage::sync_dir(dir).at(dir)?;
    if current_last {
        let last = [CURRENT_FILE.to_string()];
        rep.bytes += each_concurrently(&r.rt, &last, get_one)?;
        rep.transferred += 1;
        rep.requests += 1;
    }
    rep.removed += prune(dir, &m)?;
    record(dir, &m)?;
    Ok((rep, m))
}

/// Removes the files of other versions from the mirror `dir` (a reader
/// that mapped one keeps it); token counts and ids a reader computed for
/// listed segments, and lazy segments' sidecars, stay. Returns how many.
fn prune(dir: &Path, m: &VersionManifest) -> Result<u64> {
    let stems = segment_stems(m);
    let mut n = 0;
    for name in local_files(dir)?.keys() {
        let ours = (name.starts_with("seg-") && !node_side(name, &stems)) || mutable(name);
        if ours && !m.files.contains_key(name) {
            let _ = std::fs::remove_file(dir.join(name));
            n += 1;
        }
    }
    Ok(n)
}

/// Records in the mirror `dir` that it holds version `m` (written last).
fn record(dir: &Path, m: &VersionManifest) -> Result<()> {
    let json = serde_json::to_vec_pretty(m).map_err(|e| Error::Invalid(e.to_string()))?;
    crate::storage::write_file_atomic(&dir.join(MIRROR_VERSION_FILE), &json)
}

/// After a commit of version `m` from the working copy `work`: when the
/// node's mirror still holds the version the change was built on, it is
/// brought to `m` with the working copy's files (hard links), so that the
/// writer's node does not fetch what it has just uploaded.
fn adopt(
    r: &Remote,
    cache: &Path,
    work: &Path,
    base: Option<&VersionManifest>,
    m: &VersionManifest,
) -> Result<()> {
    let (dir, lock_path) = mirror_paths(&r.uri, cache);
    std::fs::create_dir_all(&dir).at(&dir)?;
    let lock = crate::storage::open_lock(&lock_path).at(&lock_path)?;
    lock.lock().at(&lock_path)?;
    let had = recorded(&dir);
    if had.as_ref().map(|h| h.version) != base.map(|b| b.version) {
        return Ok(());
    }
    let _ = std::fs::remove_file(dir.join(MIRROR_VERSION_FILE));
    // CURRENT last.
    let mut names: Vec<&String> = m.files.keys().filter(|n| *n != CURRENT_FILE).collect();
    names.extend(m.files.keys().filter(|n| *n == CURRENT_FILE));
    for name in names {
        let target = dir.join(name);
        let same = had.as_ref().and_then(|h| h.files.get(name)) == Some(&m.files[name]);
        if same && target.exists() {
            continue;
        }
        let part = target.with_extension("part");
        let _ = std::fs::remove_file(&part);
        crate::storage::link_or_copy(&work.join(name), &part).at(&part)?;
        // A whole file: no blocks to fetch on read.
        for ext in [".lazy", ".present"] {
            let _ = std::fs::remove_file(with_suffix(&target, ext));
        }
        std::fs::rename(&part, &target).at(&target)?;
    }
    prune(&dir, m)?;
    let _ = std::fs::write(dir.join(ORIGIN_FILE), &r.uri);
    record(&dir, m)
}

/// Fetches the corpus at `uri` into `dir` (created when missing): the
/// newest version's files `dir` lacks, `CURRENT` last; files of `dir` the
/// version does not list are removed.
pub fn fetch(uri: &str, dir: &Path) -> Result<SyncReport> {
    let r = Remote::open(uri)?;
    Ok(fetch_from(&r, dir, false)?.0)
}

/// The mirror folder and lock file of `uri` in `cache`.
fn mirror_paths(uri: &str, cache: &Path) -> (PathBuf, PathBuf) {
    let key = xxhash_rust::xxh3::xxh3_64(uri.trim_end_matches('/').as_bytes());
    let readable: String = uri
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .take(60)
        .collect();
    (
        cache.join(format!("{readable}-{key:016x}")),
        cache.join(format!("{readable}-{key:016x}.lock")),
    )
}

/// Refreshes the mirror of `r` in `cache` and runs `then` on it, holding
/// the mirror's lock throughout (so that no other process of the node
/// changes it meanwhile).
fn with_mirror<T>(
    r: &Remote,
    cache: &Path,
    then: impl FnOnce(&SyncReport, &VersionManifest) -> Result<T>,
) -> Result<T> {
    let (dir, lock_path) = mirror_paths(&r.uri, cache);
    std::fs::create_dir_all(cache).at(cache)?;
    let lock = crate::storage::open_lock(&lock_path).at(&lock_path)?;
    lock.lock().at(&lock_path)?;
    // Segments' blocks are fetched when first read, unless
    // CORPUSQL_FETCH=whole asks for whole files.
    let lazy = std::env::var("CORPUSQL_FETCH").map_or(true, |v| v != "whole");
    let (mut rep, m) = fetch_from(r, &dir, lazy)?;
    if let Some(max) = cache_limit()? {
        rep.evicted = bound_cache(&dir, max)?;
    }
    // Reports name the corpus by its URI, not by the mirror's folder.
    let _ = std::fs::write(dir.join(ORIGIN_FILE), &r.uri);
    then(&rep, &m)
}

/// A fresh, empty folder beside the mirror of `uri` in `cache` for one
/// piece of work of this process (`kind`: `write`, `task`, `status`):
/// working copies live on the mirror's file system, so they can hard-link
/// its files.
fn scratch(uri: &str, cache: &Path, kind: &str) -> Result<PathBuf> {
    let (mirror_dir, _) = mirror_paths(uri, cache);
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dir = PathBuf::from(format!(
        "{}.{kind}-{}-{nonce}",
        mirror_dir.display(),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).at(&dir)?;
    Ok(dir)
}

/// `CORPUSQL_CACHE_MAX_GB` in bytes, if set.
fn cache_limit() -> Result<Option<u64>> {
    let Ok(v) = std::env::var("CORPUSQL_CACHE_MAX_GB") else {
        return Ok(None);
    };
    match v.trim().parse::<f64>() {
        Ok(gb) if gb >= 0.0 && gb.is_finite() => Ok(Some((gb * 1e9) as u64)),
        _ => Err(Error::Invalid(format!(
            "CORPUSQL_CACHE_MAX_GB={v}: not a number of gigabytes"
        ))),
    }
}

/// `path` with `ext` appended (`seg-1.cqs` -> `seg-1.cqs.present`).
fn with_suffix(path: &Path, ext: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(ext);
    PathBuf::from(p)
}

/// Keeps the blocks the mirror in `dir` holds within `max` bytes: when
/// over, drops the fetched blocks of the segments fetched from least
/// recently (by their presence file's time) until under 80% of `max`.
/// A segment's file is replaced by one holding only its indexes (its
/// presence file first), so a process that mapped the old one keeps it.
/// Returns how many segments were evicted.
fn bound_cache(dir: &Path, max: u64) -> Result<u64> {
    use std::os::unix::fs::MetadataExt;
    let mut held: Vec<(std::time::SystemTime, PathBuf, LazySource, u64)> = Vec::new();
    for name in local_files(dir)?.keys().filter(|n| n.ends_with(".cqs")) {
        let path = dir.join(name);
        let Some(src) = read_lazy(&path) else {
            continue;
        };
        let Some([_, len]) = src.entry.blocks else {
            continue;
        };
        let present = with_suffix(&path, ".present");
        let Ok(flags) = std::fs::read(&present) else {
            continue;
        };
        if !flags.iter().any(|b| *b != 0) {
            continue;
        }
        let md = std::fs::metadata(&path).at(&path)?;
        let blocks = (md.blocks() * 512).saturating_sub(src.entry.size.saturating_sub(len));
        let when = std::fs::metadata(&present)
            .and_then(|m| m.modified())
            .unwrap_or(std::time::UNIX_EPOCH);
        held.push((when, path, src, blocks));
    }
    let mut total: u64 = held.iter().map(|h| h.3).sum();
    if total <= max {
        return Ok(0);
    }
    held.sort_by_key(|h| h.0);
    let mut n = 0;
    for (_, path, src, blocks) in held {
        if total <= max / 10 * 8 {
            break;
        }
        evict(&path, &src)?;
        total = total.saturating_sub(blocks);
        n += 1;
    }
    Ok(n)
}

/// Replaces the lazily fetched segment at `path` with a file holding only
/// what is outside its blocks, and its presence file with zeros.
fn evict(path: &Path, src: &LazySource) -> Result<()> {
    use std::os::unix::fs::FileExt;
    let [off, len] = src.entry.blocks.unwrap_or([0, 0]);
    let size = src.entry.size;
    if off.checked_add(len).is_none_or(|end| end > size) {
        return Err(Error::corrupt(
            with_suffix(path, ".lazy"),
            format!("blocks {off}+{len} do not fit {size} bytes"),
        ));
    }
    let old = std::fs::File::open(path).at(path)?;
    let mut head = vec![0u8; off as usize];
    old.read_exact_at(&mut head, 0).at(path)?;
    let mut tail = vec![0u8; (size - off - len) as usize];
    old.read_exact_at(&mut tail, off + len).at(path)?;
    let tmp = with_suffix(path, ".evict");
    let f = std::fs::File::create(&tmp).at(&tmp)?;
    f.set_len(size).at(&tmp)?;
    f.write_all_at(&head, 0).at(&tmp)?;
    f.write_all_at(&tail, off + len).at(&tmp)?;
    drop(f);
    let present = with_suffix(path, ".present");
    let blocks = std::fs::metadata(&present).at(&present)?.len();
    let ptmp = with_suffix(path, ".present.evict");
    std::fs::write(&ptmp, vec![0u8; blocks as usize]).at(&ptmp)?;
    // Presence first: a process that opens the new segment file reads the
    // new (all missing) presence; one that opened the old file and then
    // reads the new presence fetches blocks again into the old file.
    std::fs::rename(&ptmp, &present).at(&present)?;
    std::fs::rename(&tmp, path).at(path)?;
    Ok(())
}

/// The node-local mirror of the corpus at `uri` in `cache`, refreshed to
/// the URI's newest version (see the module docs).
pub fn mirror_in(uri: &str, cache: &Path) -> Result<SyncReport> {
    let r = Remote::open(uri)?;
    with_mirror(&r, cache, |rep, _| Ok(rep.clone()))
}

/// [`mirror_in`] the default cache ([`default_cache_dir`]).
pub fn mirror(uri: &str) -> Result<SyncReport> {
    mirror_in(uri, &default_cache_dir())
}

/// Copies a corpus between a local directory and a URI, either way. To a
/// URI: the source is verified (every checksum), the objects the URI lacks
/// are uploaded and the source's state becomes the URI's next version
/// (replacing what it held; refused when another writer commits that
/// version first). From a URI: the newest version is fetched into `dst`
/// (each object checked against its digest), then every checksum of the
/// copy is verified.
pub fn copy(src: &Path, dst: &Path) -> Result<SyncReport> {
    match (as_uri(src), as_uri(dst)) {
        (Some(_), Some(_)) => Err(Error::Invalid(
            "copy between two URIs: copy to a local directory, then from it".into(),
        )),
        (None, None) => Err(Error::Invalid(
            "copy: one side must be a URI (s3://, gs://, az://, file://)".into(),
        )),
        (Some(uri), None) => {
            let rep = fetch(uri, dst)?;
            // A copy is an ordinary directory: no trace of the URI.
            let _ = std::fs::remove_file(dst.join(MIRROR_VERSION_FILE));
            check_verified(dst)?;
            Ok(rep)
        }
        (None, Some(uri)) => upload(src, uri),
    }
}

fn check_verified(dir: &Path) -> Result<()> {
    let v = crate::maintain::verify(dir)?;
    if !v.ok() {
        let mut all: Vec<String> = v
            .segments
            .iter()
            .filter_map(|s| Some(format!("{}: {}", s.file, s.error.as_ref()?)))
            .collect();
        all.extend(v.problems);
        return Err(Error::corrupt(
            dir,
            format!("verify found problems: {}", all.join("; ")),
        ));
    }
    Ok(())
}

/// The committed state of the local corpus in `dir`, with `CURRENT`
/// rewritten when a crash left it behind (readers of the URI read it).
fn settled_state(dir: &Path) -> Result<CatalogState> {
    let catalog = crate::catalog::Catalog::new(dir);
    let st = catalog.state_from_db()?;
    let cur_path = dir.join(CURRENT_FILE);
    let fresh = std::fs::read(&cur_path)
        .ok()
        .and_then(|b| crate::catalog::decode_current(&cur_path, &b).map(|c| c.generation))
        == Some(st.generation);
    if !fresh {
        let _lock = crate::corpus::WriteLock::acquire(dir)?;
        return catalog.refresh_current();
    }
    Ok(st)
}

fn upload(src: &Path, uri: &str) -> Result<SyncReport> {
    check_verified(src)?;
    let st = settled_state(src)?;
    let r = Remote::open(uri)?;
    r.require_conditional_writes()?;
    let mut requests = 3;
    let latest = r.latest_version(0, &mut requests)?;
    let base = match latest {
        Some(v) => {
            requests += 1;
            Some(r.manifest(v)?)
        }
        None => None,
    };
    match publish(&r, src, &st, base.as_ref(), None, "copy", false)? {
        Ok((mut rep, _)) => {
            rep.requests += requests;
            Ok(rep)
        }
        Err(Conflict(v)) => Err(Error::Invalid(format!(
            "{uri}: another writer committed version {v} while this copy ran; nothing of this copy is visible; run it again"
        ))),
    }
}

/// Uploads the objects of the corpus state `st` in `dir` that `base` lacks
/// and creates the next version's manifest with put-if-absent. `parent`:
/// the version the state was built on (`None` for a copy that replaces the
/// corpus). With `trust_base`, segment files `base` lists at the same size
/// are its own (a working copy of it) and are not hashed again.
fn publish(
    r: &Remote,
    dir: &Path,
    st: &CatalogState,
    base: Option<&VersionManifest>,
    parent: Option<u64>,
    command: &str,
    trust_base: bool,
) -> Result<std::result::Result<(SyncReport, VersionManifest), Conflict>> {
    let present = local_files(dir)?;
    let wanted = files_of(st, &present);
    let mut files = BTreeMap::new();
    for name in &wanted {
        let size = present[name];
        let known = base
            .and_then(|b| b.files.get(name))
            .filter(|e| trust_base && !mutable(name) && e.size == size);
        let e = match known {
            Some(e) => e.clone(),
            None => file_entry(&dir.join(name))?,
        };
        files.insert(name.clone(), e);
    }
    let todo: Vec<String> = files
        .iter()
        .filter(|(n, e)| base.and_then(|b| b.files.get(*n)) != Some(*e))
        .map(|(n, _)| n.clone())
        .collect();
    let version = base.map_or(0, |b| b.version) + 1;
    let mut rep = SyncReport {
        version,
        generation: st.generation,
        files: files.len() as u64,
        dir: PathBuf::from(&r.uri),
        ..Default::default()
    };
    let uploads: Vec<(PathBuf, String)> = todo
        .iter()
        .map(|name| {
            let obj = VersionManifest::object(name, &files[name]);
            (dir.join(name), format!("{OBJECTS_DIR}/{obj}"))
        })
        .collect();
    rep.bytes += put_all(r, &uploads)?;
    rep.transferred = todo.len() as u64;
    rep.segment_files = todo.iter().filter(|n| !mutable(n)).count() as u64;
    rep.requests += todo.len() as u64 + 1;
    let m = VersionManifest {
        format: MANIFEST_FORMAT.into(),
        format_version: MANIFEST_VERSION,
        version,
        generation: st.generation,
        parent,
        command: command.into(),
        writer: format!("{} pid {}", hostname(), std::process::id()),
        time_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        files,
    };
    let json = serde_json::to_vec_pretty(&m).map_err(|e| Error::Invalid(e.to_string()))?;
    let name = version_file(version);
    match r.rt.block_on(r.store.put_opts(
        &r.path(VERSIONS_DIR, &name),
        PutPayload::from(json),
        PutOptions::from(PutMode::Create),
    )) {
        Ok(_) => Ok(Ok((rep, m))),
        Err(object_store::Error::AlreadyExists { .. }) => Ok(Err(Conflict(version))),
        Err(e) => Err(r.err(&format!("{VERSIONS_DIR}/{name}"), e)),
    }
}

/// What a [`write`] committed.
#[derive(Debug, Clone, Default)]
pub struct Commit {
    /// The version it created (`None`: the change left the corpus as it
    /// was, and nothing was committed).
    pub version: Option<u64>,
    /// How many times the change ran (more than one when other writers
    /// committed first).
    pub attempts: u32,
    /// What the commit uploaded.
    pub upload: SyncReport,
}

/// Changes the corpus at `uri` (creating it when the URI holds none):
/// `change` runs on a private working copy of the newest version (hard
/// links into the node's mirror), then the result is committed as the next
/// version with one conditional write. When another writer commits that
/// version first, the working copy is refreshed to the winner's version
/// and `change` runs again on top of it (at most [`MAX_ATTEMPTS`] times),
/// so that no writer's change is lost. `command` names the change in the
/// version's manifest. A store that ignores conditional writes is refused
/// before anything is written.
pub fn write<T>(
    uri: &str,
    command: &str,
    change: impl FnMut(&Path) -> Result<T>,
) -> Result<(T, Commit)> {
    write_in(uri, &default_cache_dir(), command, change)
}

/// [`write`] with the mirror and working copies in `cache`.
pub fn write_in<T>(
    uri: &str,
    cache: &Path,
    command: &str,
    mut change: impl FnMut(&Path) -> Result<T>,
) -> Result<(T, Commit)> {
    let r = Remote::open(uri)?;
    r.require_conditional_writes()?;
    let mut lost = Vec::new();
    for attempt in 1..=MAX_ATTEMPTS {
        let work = scratch(&r.uri, cache, "write")?;
        let base = match with_mirror(&r, cache, |rep, m| {
            clone_into(&rep.dir, m, &work)?;
            Ok(m.clone())
        }) {
            Ok(m) => Some(m),
            Err(Error::NoCorpus { .. }) => None,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&work);
                return Err(e);
            }
        };
        // Messages name the URI, not the working copy.
        let shown = work.display().to_string();
        let outcome = change(&work)
            .map_err(|e| match e {
                Error::Invalid(m) => Error::Invalid(m.replace(&shown, uri)),
                e => e,
            })
            .and_then(|out| {
                let catalog = crate::catalog::Catalog::new(&work);
                if !catalog.exists() {
                    return Ok((out, None));
                }
                let st = settled_state(&work)?;
                if let Some(b) = &base {
                    // The policy and tagging settings change without a new
                    // generation.
                    let mut same = b.generation == st.generation;
                    for name in EXTRA_FILES {
                        let path = work.join(name);
                        let now = path.exists().then(|| file_entry(&path)).transpose()?;
                        same &= now.as_ref() == b.files.get(name);
                    }
                    if same {
                        return Ok((out, None));
                    }
                }
                let parent = base.as_ref().map(|b| b.version);
                let p = publish(&r, &work, &st, base.as_ref(), parent, command, true)?;
                if let Ok((_, m)) = &p {
                    // Best effort: a failure only costs the next read a fetch.
                    let _ = adopt(&r, cache, &work, base.as_ref(), m);
                }
                Ok((out, Some(p.map(|(rep, _)| rep))))
            });
        let _ = std::fs::remove_dir_all(&work);
        match outcome? {
            (out, None) => {
                return Ok((
                    out,
                    Commit {
                        version: None,
                        attempts: attempt,
                        upload: SyncReport::default(),
                    },
                ))
            }
            (out, Some(Ok(rep))) => {
                return Ok((
                    out,
                    Commit {
                        version: Some(rep.version),
                        attempts: attempt,
                        upload: rep,
                    },
                ))
            }
            (_, Some(Err(Conflict(v)))) => {
                eprintln!(
                    "{uri}: another writer committed version {v} first; running {command} again on top of it"
                );
                lost.push(v);
            }
        }
    }
    Err(Error::Invalid(format!(
        "{uri}: other writers committed first {MAX_ATTEMPTS} times (versions {lost:?}); nothing of this {command} is visible; run it again"
    )))
}

/// Fills the empty `work` with the corpus files of the mirror in `mirror`
/// at version `m`: hard links of the immutable ones (copies where links
/// are not possible), copies of those a writer changes in place.
fn clone_into(mirror: &Path, m: &VersionManifest, work: &Path) -> Result<()> {
    let stems = segment_stems(m);
    for name in local_files(mirror)?.keys() {
        // Token counts and ids the node computed for listed segments are
        // valid for them: they travel with the change (and the lazy
        // segments' presence, shared through the links).
        if !m.files.contains_key(name) && !node_side(name, &stems) {
            continue;
        }
        let (from, to) = (mirror.join(name), work.join(name));
        if mutable(name) {
            std::fs::copy(&from, &to).at(&to)?;
        } else {
            crate::storage::link_or_copy(&from, &to).at(&to)?;
        }
    }
    crate::storage::sync_dir(work).at(work)?;
    Ok(())
}

/// Runs a task of `job` for the corpus at `uri`: `task_fn` stages the
/// task's files in a working copy of the newest version (as it does in a
/// local corpus), then they are uploaded to `jobs/<job>/<task>/` at the
/// URI, the earlier run's `MANIFEST.json` removed first and the new one
/// uploaded last, so that a commit sees the task finished only once all
/// its files are there. Nothing is committed; [`commit_job`] does that.
pub fn run_task<T>(
    uri: &str,
    job: &str,
    task: crate::job::TaskId,
    task_fn: impl FnOnce(&Path) -> Result<T>,
) -> Result<T> {
    crate::job::check_name(job)?;
    let r = Remote::open(uri)?;
    let cache = default_cache_dir();
    let work = scratch(&r.uri, &cache, "task")?;
    let result = (|| {
        match with_mirror(&r, &cache, |rep, m| clone_into(&rep.dir, m, &work)) {
            Ok(()) | Err(Error::NoCorpus { .. }) => {}
            Err(e) => return Err(e),
        }
        let out = task_fn(&work)?;
        let name = task.dir_name();
        let staged = crate::job::job_dir(&work, job).join(&name);
        let files: Vec<String> = local_files(&staged)?
            .into_keys()
            .filter(|f| f != crate::job::MANIFEST_FILE)
            .collect();
        let prefix = format!("{}/{job}/{name}", crate::job::JOBS_DIR);
        let manifest = r.at(&format!("{prefix}/{}", crate::job::MANIFEST_FILE));
        match r.rt.block_on(r.store.delete(&manifest)) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(r.err(&prefix, e)),
        }
        let at = |f: &String| (staged.join(f), format!("{prefix}/{f}"));
        put_all(&r, &files.iter().map(at).collect::<Vec<_>>())?;
        put_all(&r, &[at(&crate::job::MANIFEST_FILE.to_string())])?;
        Ok(out)
    })();
    let _ = std::fs::remove_dir_all(&work);
    result
}

/// Fetches the finished tasks of `job` at `uri` (those with a
/// `MANIFEST.json`; only the manifests when `manifests_only`) into
/// `dir/jobs/<job>/`.
pub fn fetch_job(uri: &str, job: &str, dir: &Path, manifests_only: bool) -> Result<()> {
    crate::job::check_name(job)?;
    let r = Remote::open(uri)?;
    let prefix = r.prefix.child(crate::job::JOBS_DIR).child(job);
    let metas: Vec<object_store::Result<object_store::ObjectMeta>> =
        r.rt.block_on(r.store.list(Some(&prefix)).collect::<Vec<_>>());
    // task folder -> its files
    let mut tasks: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for m in metas {
        let m = m.map_err(|e| r.err(&format!("{}/{job}", crate::job::JOBS_DIR), e))?;
        let rel: Vec<String> = m
            .location
            .prefix_match(&prefix)
            .map(|p| p.map(|x| x.as_ref().to_string()).collect())
            .unwrap_or_default();
        if let [task, file] = rel.as_slice() {
            tasks.entry(task.clone()).or_default().push(file.clone());
        }
    }
    let jd = crate::job::job_dir(dir, job);
    let mut wanted: Vec<String> = Vec::new();
    for (task, files) in &tasks {
        if !files.iter().any(|f| f == crate::job::MANIFEST_FILE) {
            continue;
        }
        std::fs::create_dir_all(jd.join(task)).at(&jd)?;
        for f in files {
            if !manifests_only || f == crate::job::MANIFEST_FILE {
                wanted.push(format!("{task}/{f}"));
            }
        }
    }
    each_concurrently(&r.rt, &wanted, |rel| {
        let store = r.store.clone();
        let path = ObjPath::from(format!("{prefix}/{rel}"));
        let target = jd.join(rel);
        let shown = format!("{}/{}/{job}/{rel}", r.uri, crate::job::JOBS_DIR);
        async move {
            let bytes = get_all(store, path, shown).await?;
            std::fs::write(&target, &bytes).at(&target)?;
            Ok(bytes.len() as u64)
        }
    })?;
    Ok(())
}

/// Where `job` staged at `uri` stands: its tasks' manifests, fetched
/// into a scratch folder of the node cache, read as a local job's.
pub fn job_status(uri: &str, job: &str) -> Result<crate::job::JobStatus> {
    let dir = scratch(uri.trim_end_matches('/'), &default_cache_dir(), "status")?;
    let st = fetch_job(uri, job, &dir, true).and_then(|()| crate::job::status(&dir, job));
    let _ = std::fs::remove_dir_all(&dir);
    st
}

/// Removes the staging of `job` at `uri`; returns whether there was any.
pub fn remove_job(uri: &str, job: &str) -> Result<bool> {
    crate::job::check_name(job)?;
    let r = Remote::open(uri)?;
    let prefix = r.prefix.child(crate::job::JOBS_DIR).child(job);
    let metas: Vec<object_store::Result<object_store::ObjectMeta>> =
        r.rt.block_on(r.store.list(Some(&prefix)).collect::<Vec<_>>());
    let mut paths = Vec::new();
    for m in metas {
        paths.push(
            m.map_err(|e| r.err(&format!("{}/{job}", crate::job::JOBS_DIR), e))?
                .location
                .to_string(),
        );
    }
    delete_all(&r, &paths)?;
    Ok(!paths.is_empty())
}

/// Deletes the objects at `paths` (full paths in the store),
/// [`CONCURRENCY`] at a time; one already gone is not an error.
fn delete_all(r: &Remote, paths: &[String]) -> Result<()> {
    each_concurrently(&r.rt, paths, |p| {
        let store = r.store.clone();
        let path = ObjPath::from(p.as_str());
        let shown = format!("{}: {p}", r.uri);
        async move {
            match store.delete(&path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(0),
                Err(e) => Err(Error::Invalid(format!("{shown}: {e}"))),
            }
        }
    })?;
    Ok(())
}

/// Commits the staged tasks of `job` at `uri` (all of them, or exactly
/// `expect`) as the URI's next version: each attempt fetches the staging
/// into a working copy and runs the local commit there
/// ([`crate::job::commit_tasks`]); the staging is removed after the commit.
pub fn commit_job(
    uri: &str,
    job: &str,
    expect: Option<&[u32]>,
    opts: &crate::tag::TagOptions,
) -> Result<crate::job::JobReport> {
    let (rep, _) = write(uri, "commit", |work| {
        fetch_job(uri, job, work, false)?;
        crate::job::commit_tasks(work, job, expect, opts)
    })?;
    remove_job(uri, job)?;
    Ok(rep)
}

/// What [`vacuum`] removed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VacuumReport {
    /// The newest version (always kept).
    pub newest: u64,
    /// Version manifests kept (the newest and those younger than the
    /// retention).
    pub versions_kept: u64,
    /// Older version manifests removed.
    pub versions_removed: u64,
    /// Objects no kept version lists, older than the retention, removed.
    pub objects_removed: u64,
    /// Their bytes.
    pub bytes_removed: u64,
    /// Objects kept.
    pub objects_kept: u64,
    /// Whether this was a dry run (nothing removed).
    pub dry_run: bool,
}

/// Removes from the corpus at `uri` what no reader needs: version manifests
/// older than `retain` but the newest, then objects that no remaining
/// version lists and that are older than `retain` (an object a writer has
/// just uploaded for a version it is about to commit is younger than that),
/// and conditional-write probes a killed writer left. Readers and writers
/// that started within `retain` are safe; a reader that has held an older
/// version longer may find its blocks gone and must open the URI again.
pub fn vacuum(uri: &str, retain: std::time::Duration, dry_run: bool) -> Result<VacuumReport> {
    let r = Remote::open(uri)?;
    let mut requests = 0;
    let Some(newest) = r.latest_version(0, &mut requests)? else {
        return Err(r.no_corpus());
    };
    // Unix seconds `retain` ago: what is newer stays.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let cutoff = now.saturating_sub(retain.as_secs().min(i64::MAX as u64) as i64);
    let list = |dir: &str| -> Result<Vec<object_store::ObjectMeta>> {
        let prefix = r.prefix.child(dir);
        r.rt.block_on(r.store.list(Some(&prefix)).collect::<Vec<_>>())
            .into_iter()
            .map(|m| m.map_err(|e| r.err(dir, e)))
            .collect()
    };
    let mut rep = VacuumReport {
        newest,
        dry_run,
        ..Default::default()
    };
    let mut keep: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut drop_versions: Vec<String> = Vec::new();
    let mut drop_objects: Vec<String> = Vec::new();
    for meta in list(VERSIONS_DIR)? {
        let v = meta
            .location
            .filename()
            .and_then(|f| f.strip_suffix(".json"))
            .and_then(|f| f.parse::<u64>().ok());
        let Some(v) = v else { continue };
        if v == newest || meta.last_modified.timestamp() > cutoff {
            let m = r.manifest(v)?;
            keep.extend(m.files.iter().map(|(n, e)| VersionManifest::object(n, e)));
            rep.versions_kept += 1;
        } else {
            drop_versions.push(meta.location.to_string());
            rep.versions_removed += 1;
        }
    }
    for meta in list(OBJECTS_DIR)? {
        let name = meta.location.filename().unwrap_or_default().to_string();
        if keep.contains(&name) || meta.last_modified.timestamp() > cutoff {
            rep.objects_kept += 1;
        } else {
            rep.objects_removed += 1;
            rep.bytes_removed += meta.size;
            drop_objects.push(meta.location.to_string());
        }
    }
    for meta in list(PROBES_DIR)? {
        if meta.last_modified.timestamp() <= cutoff {
            drop_objects.push(meta.location.to_string());
        }
    }
    if !dry_run {
        // Manifests first: no remaining version may list a removed object.
        delete_all(&r, &drop_versions)?;
        delete_all(&r, &drop_objects)?;
    }
    Ok(rep)
}
