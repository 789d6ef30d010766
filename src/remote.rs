//! Corpora at a URI (`s3://bucket/prefix`, `gs://`, `az://`, `file://`),
//! through the `object_store` crate, configured by the usual environment
//! variables (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, `AWS_REGION`,
//! `AWS_ALLOW_HTTP`, `GOOGLE_SERVICE_ACCOUNT`, `AZURE_STORAGE_ACCOUNT_NAME`,
//! ...).
//!
//! This version reads a remote corpus through a **node-local mirror**: the
//! corpus's `CURRENT` is fetched, then every file of that generation the
//! mirror lacks (segments, sidecars, token counts and ids, the catalog, the
//! policy), each with one GET, several at a time; files already there
//! (immutable names, same size) are not fetched again, and files the
//! generation no longer lists are removed. The mirror is an ordinary corpus
//! directory under the cache (`CORPUSQL_CACHE`, else
//! `$XDG_CACHE_HOME/corpusql`, else `~/.cache/corpusql`), one per URI,
//! shared by the processes of a node (a lock file serializes refreshes), so
//! every read command, the Rust facade and the Python package work on it
//! unchanged. `CURRENT` is written into the mirror last: a reader sees the
//! previous complete generation or the new one.
//!
//! Writing to a remote corpus is [`copy`] of a local one: its files first,
//! `CURRENT` last, so readers of the URI see the previous generation until
//! the new one is complete. Other writes to a URI are refused. Not done yet:
//! range requests for only the blocks a query needs, a bounded cache, and
//! commits by conditional writes from concurrent writers (`docs/scale.md`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::StreamExt;
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, PutPayload};

use crate::catalog::{CatalogState, CATALOG_FILE, CURRENT_FILE};
use crate::error::{Error, IoContext, Result};

/// Files beside the segments that belong to a corpus when present.
const EXTRA_FILES: [&str; 2] = ["policy.toml", "tagging.toml"];
/// GETs or PUTs in flight at once.
const CONCURRENCY: usize = 8;

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

/// Refuses a write to a URI, or to the node-local mirror of one: remote
/// corpora change by [`copy`].
pub fn refuse_write(dir: &Path) -> Result<()> {
    let uri = match as_uri(dir) {
        Some(uri) => uri.to_string(),
        None => match std::fs::read_to_string(dir.join(ORIGIN_FILE)) {
            Ok(u) => u.trim().to_string(),
            Err(_) => return Ok(()),
        },
    };
    Err(Error::Invalid(format!(
        "{uri}: a corpus on object storage is written by `corpusql copy LOCAL_DIR {uri}` (ingest, tag, delete, compact into a local or shared directory, then copy); it cannot be changed in place yet"
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

/// What a mirror refresh or a copy moved.
#[derive(Debug, Clone, Default)]
pub struct SyncReport {
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
    /// Where the corpus now is (the mirror's directory, or the copy's target).
    pub dir: PathBuf,
}

/// An object store and the prefix a corpus lives under.
struct Remote {
    uri: String,
    store: Arc<dyn ObjectStore>,
    prefix: ObjPath,
    rt: tokio::runtime::Runtime,
}

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

    fn path(&self, name: &str) -> ObjPath {
        self.prefix.child(name)
    }

    fn err(&self, name: &str, e: object_store::Error) -> Error {
        Error::Invalid(format!("{}/{name}: {e}", self.uri))
    }

    /// Files directly under the prefix, with their sizes; one request per
    /// page of 1,000.
    fn list(&self, requests: &mut u64) -> Result<BTreeMap<String, u64>> {
        let metas: Vec<object_store::ObjectMeta> = self
            .rt
            .block_on(self.store.list_with_delimiter(Some(&self.prefix)))
            .map_err(|e| self.err("", e))?
            .objects;
        *requests += 1 + metas.len() as u64 / 1000;
        Ok(metas
            .into_iter()
            .filter_map(|m| Some((m.location.filename()?.to_string(), m.size)))
            .collect())
    }

    fn get(&self, name: &str) -> Result<Option<Vec<u8>>> {
        match self
            .rt
            .block_on(async { self.store.get(&self.path(name)).await?.bytes().await })
        {
            Ok(b) => Ok(Some(b.to_vec())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.err(name, e)),
        }
    }
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

/// The files a corpus state consists of, among the `present` ones: its
/// segments and tag sidecars, the token counts and ids of its segments,
/// the catalog, the policy and tagging settings.
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
        if side || name == CATALOG_FILE || EXTRA_FILES.contains(&name.as_str()) {
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

/// Fetches the corpus at `uri` into `dir` (created when missing): every
/// file of its current generation `dir` lacks, then `CURRENT`; files of
/// `dir` the generation does not list are removed.
pub fn fetch(uri: &str, dir: &Path) -> Result<SyncReport> {
    let r = Remote::open(uri)?;
    std::fs::create_dir_all(dir).at(dir)?;
    let mut rep = SyncReport {
        dir: dir.to_path_buf(),
        ..Default::default()
    };
    // A copy may publish a new generation between the GET of CURRENT and
    // the LIST: the files of the generation read are then looked for again.
    let mut attempt = 0;
    let (current, st, listing) = loop {
        attempt += 1;
        rep.requests += 1;
        let Some(current) = r.get(CURRENT_FILE)? else {
            return Err(Error::NoCorpus {
                path: PathBuf::from(uri),
            });
        };
        let bytes = current;
        let st = crate::catalog::decode_current(Path::new(uri), &bytes).ok_or_else(|| {
            Error::corrupt(
                Path::new(&format!("{uri}/{CURRENT_FILE}")),
                "unreadable CURRENT manifest",
            )
        })?;
        let listing = r.list(&mut rep.requests)?;
        let missing: Vec<&String> = st
            .segments
            .iter()
            .map(|s| &s.file)
            .filter(|f| !listing.contains_key(*f))
            .collect();
        if missing.is_empty() {
            break (bytes, st, listing);
        }
        if attempt >= 3 {
            return Err(Error::corrupt(
                Path::new(uri),
                format!(
                    "generation {} lists {} files the store does not have (first: {})",
                    st.generation,
                    missing.len(),
                    missing[0]
                ),
            ));
        }
    };
    let wanted = files_of(&st, &listing);
    rep.generation = st.generation;
    rep.files = wanted.len() as u64 + 1;
    let todo: Vec<String> = wanted
        .iter()
        .filter(|n| {
            mutable(n)
                || std::fs::metadata(dir.join(n)).map(|m| m.len()).ok() != listing.get(*n).copied()
        })
        .cloned()
        .collect();
    let store = r.store.clone();
    rep.bytes += each_concurrently(&r.rt, &todo, |name| {
        let store = store.clone();
        let path = r.path(name);
        let target = dir.join(name);
        let uri = r.uri.clone();
        async move {
            let got = store.get(&path).await;
            let bytes = match got {
                Ok(g) => g.bytes().await,
                Err(e) => Err(e),
            }
            .map_err(|e| Error::Invalid(format!("{uri}/{}: {e}", path.filename().unwrap_or(""))))?;
            let tmp = target.with_extension("part");
            std::fs::write(&tmp, &bytes).at(&tmp)?;
            std::fs::rename(&tmp, &target).at(&target)?;
            Ok(bytes.len() as u64)
        }
    })?;
    rep.transferred += todo.len() as u64;
    rep.requests += todo.len() as u64;
    rep.segment_files = todo.iter().filter(|n| !mutable(n)).count() as u64;
    crate::storage::sync_dir(dir).at(dir)?;
    crate::storage::write_file_atomic(&dir.join(CURRENT_FILE), &current)?;
    rep.transferred += 1;
    rep.bytes += current.len() as u64;
    // Files of other generations go (a reader that mapped one keeps it);
    // token counts and ids a reader computed here for listed segments stay.
    let keep: std::collections::HashSet<&str> = wanted.iter().map(|s| s.as_str()).collect();
    let stems: std::collections::HashSet<&str> = st
        .segments
        .iter()
        .filter_map(|s| s.file.split('.').next())
        .collect();
    for e in std::fs::read_dir(dir).at(dir)? {
        let e = e.at(dir)?;
        let name = e.file_name().to_string_lossy().into_owned();
        let local_side = (name.ends_with(".cqc") || name.ends_with(".cqi"))
            && name.split('.').next().is_some_and(|x| stems.contains(x));
        let ours = (name.starts_with("seg-") && !local_side) || mutable(&name);
        if ours && name != CURRENT_FILE && !keep.contains(name.as_str()) {
            let _ = std::fs::remove_file(e.path());
            rep.removed += 1;
        }
    }
    Ok(rep)
}

/// The node-local mirror of the corpus at `uri` in `cache`, refreshed to
/// the URI's current generation (see the module docs).
pub fn mirror_in(uri: &str, cache: &Path) -> Result<SyncReport> {
    let key = xxhash_rust::xxh3::xxh3_64(uri.trim_end_matches('/').as_bytes());
    let readable: String = uri
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .take(60)
        .collect();
    let dir = cache.join(format!("{readable}-{key:016x}"));
    std::fs::create_dir_all(cache).at(cache)?;
    let lock_path = cache.join(format!("{readable}-{key:016x}.lock"));
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .at(&lock_path)?;
    lock.lock().at(&lock_path)?;
    let r = fetch(uri, &dir);
    if r.is_ok() {
        // Reports name the corpus by its URI, not by the mirror's folder.
        let _ = std::fs::write(dir.join(ORIGIN_FILE), uri);
    }
    drop(lock);
    r
}

/// In a mirror, the file holding the URI it mirrors.
pub const ORIGIN_FILE: &str = "ORIGIN";

/// [`mirror_in`] the default cache ([`default_cache_dir`]).
pub fn mirror(uri: &str) -> Result<SyncReport> {
    mirror_in(uri, &default_cache_dir())
}

/// Copies a corpus between a local directory and a URI, either way. To a
/// URI: the source is verified (every checksum), its files the URI lacks
/// are uploaded, `CURRENT` last. From a URI: [`fetch`] into `dst`, then
/// every checksum of the copy is verified.
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

fn upload(src: &Path, uri: &str) -> Result<SyncReport> {
    check_verified(src)?;
    let corpus = crate::Corpus::open(src)?;
    let st = corpus.state().clone();
    // CURRENT is what readers of the URI will read: it must be this
    // generation's (a crashed writer may have left it behind).
    let cur_path = src.join(CURRENT_FILE);
    let current = match std::fs::read(&cur_path) {
        Ok(b)
            if crate::catalog::decode_current(&cur_path, &b).map(|c| c.generation)
                == Some(st.generation) =>
        {
            b
        }
        _ => {
            let _lock = crate::corpus::WriteLock::acquire(src)?;
            crate::catalog::Catalog::new(src).refresh_current()?;
            std::fs::read(&cur_path).at(&cur_path)?
        }
    };
    let r = Remote::open(uri)?;
    let mut rep = SyncReport {
        generation: st.generation,
        dir: PathBuf::from(uri),
        ..Default::default()
    };
    let mut local: BTreeMap<String, u64> = BTreeMap::new();
    for e in std::fs::read_dir(src).at(src)? {
        let e = e.at(src)?;
        let p = e.path();
        if e.file_type().at(&p)?.is_file() {
            local.insert(
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().at(&p)?.len(),
            );
        }
    }
    let wanted = files_of(&st, &local);
    rep.files = wanted.len() as u64 + 1;
    let there = r.list(&mut rep.requests)?;
    let todo: Vec<String> = wanted
        .iter()
        .filter(|n| mutable(n) || there.get(*n) != local.get(*n))
        .cloned()
        .collect();
    let store = r.store.clone();
    rep.bytes += each_concurrently(&r.rt, &todo, |name| {
        let store = store.clone();
        let path = r.path(name);
        let file = src.join(name);
        let uri = r.uri.clone();
        let name = name.clone();
        async move {
            let bytes = std::fs::read(&file).at(&file)?;
            let n = bytes.len() as u64;
            store
                .put(&path, PutPayload::from(bytes))
                .await
                .map_err(|e| Error::Invalid(format!("{uri}/{name}: {e}")))?;
            Ok(n)
        }
    })?;
    rep.transferred += todo.len() as u64;
    rep.requests += todo.len() as u64;
    // What was uploaded is there, at its size, before CURRENT names it.
    let after = r.list(&mut rep.requests)?;
    for n in &wanted {
        if after.get(n) != local.get(n) {
            return Err(Error::Invalid(format!(
                "{uri}/{n}: the store has {:?} bytes after the upload, the source {:?}; CURRENT was not updated",
                after.get(n),
                local.get(n)
            )));
        }
    }
    r.rt.block_on(
        r.store
            .put(&r.path(CURRENT_FILE), PutPayload::from(current.clone())),
    )
    .map_err(|e| r.err(CURRENT_FILE, e))?;
    rep.requests += 1;
    rep.transferred += 1;
    rep.bytes += current.len() as u64;
    Ok(rep)
}
