//! The storage layer: every write corpusql makes to a corpus directory goes
//! through here — creating and writing a file, fsyncing it, renaming,
//! removing, fsyncing the directory, taking the `LOCK` file, and the
//! catalog's own page writes (redb runs on [`CatalogBackend`], a
//! `redb::StorageBackend` over the same calls). By default each call is the
//! plain `std::fs` operation and costs one relaxed atomic load more. It is
//! also the one home of the atomic file replacement every writer uses
//! ([`write_file_atomic`], [`AtomicFile`]: temporary name in the same
//! directory, fsync of the file, rename, fsync of the directory).
//!
//! It exists so that tests can inject what a `kill -9` cannot show.
//! [`Injection`] registers a fault plan for one directory (every path under
//! it): it counts the write operations made there, and at operation `n`
//! fails with `EIO`, fills the disk (`ENOSPC` from then on), writes only
//! part of a buffer, fails a rename, or simulates a power loss: from
//! operation `n` on every call fails, and [`Injection::crash`] then puts the
//! directory in the state a machine would find after rebooting, keeping only
//! what was made durable: a file's contents as of its last fsync, and the
//! names (creations, renames, removals) as of the last fsync of their
//! directory. Reads are not faulted, and scratch files that do not decide
//! what the corpus holds (deduplication work files, the rejects file,
//! exports) are not routed here.
//!
//! The model is "every unsynced write is lost": it does not reorder or tear
//! writes that happened before an fsync, nor lose some unsynced writes while
//! keeping others.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::{IoContext, Result};

#[cfg(unix)]
use std::os::unix::fs::FileExt;

/// A kind of write operation, as [`Injection::ops`] lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpKind {
    /// Creating (or truncating) a file, or opening the catalog or `LOCK`.
    Create,
    /// Writing bytes to a file.
    Write,
    /// Changing a file's length (the catalog).
    SetLen,
    /// fsync of a file.
    Sync,
    /// Renaming a file.
    Rename,
    /// Removing a file.
    Remove,
    /// fsync of a directory.
    SyncDir,
}

/// The fault an [`Injection`] makes at its operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// Power loss: the operation and every later one fail; then
    /// [`Injection::crash`] drops what was not durable.
    Crash,
    /// The operation fails with `EIO` (once).
    Eio,
    /// The disk is full: this and every later write or growth fails with `ENOSPC`.
    NoSpace,
    /// A write stores only the first half of its buffer: a stream write
    /// reports the shorter length, a positioned (catalog) write then fails.
    ShortWrite,
    /// A rename fails with `EIO` and renames nothing.
    RenameFails,
}

impl Fault {
    /// Whether the fault applies to an operation of this kind.
    pub fn applies_to(self, op: OpKind) -> bool {
        match self {
            Fault::Crash | Fault::Eio => true,
            Fault::NoSpace => matches!(op, OpKind::Write | OpKind::SetLen),
            Fault::ShortWrite => op == OpKind::Write,
            Fault::RenameFails => op == OpKind::Rename,
        }
    }
}

/// One inode of the model: its contents as of its last fsync.
#[derive(Debug, Default)]
struct Inode {
    durable: Option<Vec<u8>>,
}

#[derive(Debug, Default)]
struct Model {
    /// Operations made so far, in order.
    ops: Vec<(OpKind, PathBuf)>,
    /// The fault and the operation it fires at (`None`: only count).
    plan: Option<(u64, Fault)>,
    /// Whether the fault fired.
    fired: bool,
    /// No more faults (tracking goes on).
    disarmed: bool,
    inodes: Vec<Inode>,
    /// Names touched, bound to an inode now.
    live: HashMap<PathBuf, Option<usize>>,
    /// Names touched, bound as of the last fsync of their directory.
    durable: HashMap<PathBuf, Option<usize>>,
}

impl Model {
    /// Starts tracking `path` (its current state counts as durable).
    fn touch(&mut self, path: &Path) {
        if self.live.contains_key(path) {
            return;
        }
        let id = std::fs::read(path).ok().map(|b| {
            self.inodes.push(Inode { durable: Some(b) });
            self.inodes.len() - 1
        });
        self.live.insert(path.to_path_buf(), id);
        self.durable.insert(path.to_path_buf(), id);
    }

    /// The inode `path` names now, a new empty one when it names none.
    fn inode_of(&mut self, path: &Path) -> usize {
        if let Some(i) = self.live.get(path).copied().flatten() {
            return i;
        }
        self.inodes.push(Inode::default());
        let i = self.inodes.len() - 1;
        self.live.insert(path.to_path_buf(), Some(i));
        i
    }

    /// Counts an operation and says whether (and how) it fails.
    fn decide(&mut self, op: OpKind, path: &Path) -> Decision {
        let n = self.ops.len() as u64;
        self.ops.push((op, path.to_path_buf()));
        let Some((at, fault)) = self.plan else {
            return Decision::Go;
        };
        if self.disarmed {
            return Decision::Go;
        }
        if self.fired && fault == Fault::Crash {
            return Decision::Fail(crashed());
        }
        if self.fired && fault == Fault::NoSpace && fault.applies_to(op) {
            return Decision::Fail(no_space());
        }
        if self.fired || n < at || !fault.applies_to(op) {
            return Decision::Go;
        }
        self.fired = true;
        match fault {
            Fault::Crash => Decision::Fail(crashed()),
            Fault::Eio | Fault::RenameFails => Decision::Fail(eio()),
            Fault::NoSpace => Decision::Fail(no_space()),
            Fault::ShortWrite => Decision::Short,
        }
    }
}

enum Decision {
    Go,
    Short,
    Fail(io::Error),
}

fn crashed() -> io::Error {
    io::Error::other("simulated power loss (fault injection)")
}

fn eio() -> io::Error {
    io::Error::from_raw_os_error(5)
}

fn no_space() -> io::Error {
    io::Error::from_raw_os_error(28)
}

#[derive(Debug, Default)]
struct Injector {
    dir: PathBuf,
    model: Mutex<Model>,
}

impl Injector {
    fn lock(&self) -> MutexGuard<'_, Model> {
        self.model.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Number of registered injections: 0 keeps every call on the fast path.
static ACTIVE: AtomicUsize = AtomicUsize::new(0);
static REGISTRY: Mutex<Vec<Arc<Injector>>> = Mutex::new(Vec::new());

fn injector_for(path: &Path) -> Option<Arc<Injector>> {
    if ACTIVE.load(Ordering::Relaxed) == 0 {
        return None;
    }
    let reg = REGISTRY.lock().unwrap_or_else(|p| p.into_inner());
    reg.iter().find(|i| path.starts_with(&i.dir)).cloned()
}

/// A fault plan for one directory, active until dropped (test support).
#[doc(hidden)]
#[derive(Debug)]
pub struct Injection {
    inj: Arc<Injector>,
}

impl Injection {
    /// Counts the operations under `dir` without failing any.
    pub fn count(dir: &Path) -> Injection {
        Self::register(dir, None)
    }

    /// Makes `fault` at operation `at` (0-based) under `dir`.
    pub fn fail(dir: &Path, at: u64, fault: Fault) -> Injection {
        Self::register(dir, Some((at, fault)))
    }

    fn register(dir: &Path, plan: Option<(u64, Fault)>) -> Injection {
        let inj = Arc::new(Injector {
            dir: dir.to_path_buf(),
            model: Mutex::new(Model {
                plan,
                ..Default::default()
            }),
        });
        let mut reg = REGISTRY.lock().unwrap_or_else(|p| p.into_inner());
        assert!(
            !reg.iter()
                .any(|i| i.dir.starts_with(dir) || dir.starts_with(&i.dir)),
            "overlapping fault injections on {}",
            dir.display()
        );
        reg.push(inj.clone());
        ACTIVE.fetch_add(1, Ordering::Relaxed);
        Injection { inj }
    }

    /// The operations made so far.
    pub fn ops(&self) -> Vec<(OpKind, PathBuf)> {
        self.inj.lock().ops.clone()
    }

    /// Whether the fault fired.
    pub fn fired(&self) -> bool {
        self.inj.lock().fired
    }

    /// Stops making faults; operations are still tracked, so that a later
    /// [`crash`](Self::crash) also drops what they did not make durable.
    pub fn disarm(&self) {
        self.inj.lock().disarmed = true;
    }

    /// Power loss: puts every file and name touched back to its durable
    /// state (contents as of the last fsync, names as of the last directory
    /// fsync), then disarms. Call it when no file is open.
    pub fn crash(&self) -> io::Result<()> {
        let mut m = self.inj.lock();
        m.disarmed = true;
        let names: Vec<(PathBuf, Option<usize>)> =
            m.durable.iter().map(|(p, i)| (p.clone(), *i)).collect();
        for (path, id) in names {
            match id {
                None => match std::fs::remove_file(&path) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                },
                Some(i) => {
                    let bytes = m.inodes[i].durable.clone().unwrap_or_default();
                    // A folder removed without the storage layer (a job's
                    // staging once committed) comes back with the name.
                    if let Some(parent) = path.parent() {
                        std::fs::create_dir_all(parent)?;
                    }
                    std::fs::write(&path, bytes)?;
                }
            }
        }
        // What is on disk now is durable, with new inodes.
        m.live.clear();
        m.durable.clear();
        m.inodes.clear();
        Ok(())
    }
}

impl Drop for Injection {
    fn drop(&mut self) {
        let mut reg = REGISTRY.lock().unwrap_or_else(|p| p.into_inner());
        reg.retain(|i| !Arc::ptr_eq(i, &self.inj));
        ACTIVE.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Runs `f` when no injection covers `path`, else asks the injector first
/// and lets `model` record the effect of a successful operation.
fn guarded<T>(
    op: OpKind,
    path: &Path,
    f: impl FnOnce() -> io::Result<T>,
    model: impl FnOnce(&mut Model, &T),
) -> io::Result<T> {
    let Some(inj) = injector_for(path) else {
        return f();
    };
    let mut m = inj.lock();
    match m.decide(op, path) {
        Decision::Fail(e) => Err(e),
        Decision::Go | Decision::Short => {
            let r = f()?;
            model(&mut m, &r);
            Ok(r)
        }
    }
}

/// A file being written through the storage layer.
#[derive(Debug)]
pub struct StoredFile {
    file: File,
    path: PathBuf,
    /// The injector covering the file and its inode in the model.
    inj: Option<(Arc<Injector>, usize)>,
}

/// Creates (or truncates) `path` for writing.
pub fn create(path: &Path) -> io::Result<StoredFile> {
    let open = || {
        File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
    };
    let Some(inj) = injector_for(path) else {
        return Ok(StoredFile {
            file: open()?,
            path: path.to_path_buf(),
            inj: None,
        });
    };
    let mut m = inj.lock();
    m.touch(path);
    if let Decision::Fail(e) = m.decide(OpKind::Create, path) {
        return Err(e);
    }
    let file = open()?;
    let id = m.inode_of(path);
    drop(m);
    Ok(StoredFile {
        file,
        path: path.to_path_buf(),
        inj: Some((inj, id)),
    })
}

impl StoredFile {
    /// fsyncs the file (`File::sync_all`).
    pub fn sync_all(&self) -> io::Result<()> {
        let Some((inj, id)) = &self.inj else {
            return self.file.sync_all();
        };
        let mut m = inj.lock();
        if let Decision::Fail(e) = m.decide(OpKind::Sync, &self.path) {
            return Err(e);
        }
        self.file.sync_all()?;
        m.inodes[*id].durable = Some(read_all(&self.file)?);
        Ok(())
    }
}

fn read_all(f: &File) -> io::Result<Vec<u8>> {
    let len = f.metadata()?.len() as usize;
    let mut b = vec![0; len];
    f.read_exact_at(&mut b, 0)?;
    Ok(b)
}

impl Write for StoredFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let Some((inj, _)) = &self.inj else {
            return self.file.write(buf);
        };
        let mut m = inj.lock();
        match m.decide(OpKind::Write, &self.path) {
            Decision::Fail(e) => Err(e),
            Decision::Short if buf.len() > 1 => self.file.write(&buf[..buf.len() / 2]),
            _ => self.file.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Writes `bytes` to a new file `path` and fsyncs it (no rename).
pub fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// The temporary name a file is written under before its rename to `path`:
/// `<name>.tmp` in the same directory, or, when `private`, a name of this
/// process and call alone, `<name>.<pid>-<n>.tmp`.
fn temporary_name(path: &Path, private: bool) -> PathBuf {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    if private {
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        name.push(format!(".{}-{n}.tmp", std::process::id()));
    } else {
        name.push(".tmp");
    }
    path.with_file_name(name)
}

/// The directory holding `path` (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// A file that replaces `path` atomically: written under a temporary name
/// in the same directory, then [`commit`](AtomicFile::commit)ted: fsync of
/// the file, rename over `path`, fsync of the directory. A crash (or an
/// error, or a writer that never commits) leaves the old file or the new
/// one under `path`, never part of one; the temporary file may be left
/// behind.
#[derive(Debug)]
pub struct AtomicFile {
    file: StoredFile,
    tmp: PathBuf,
    path: PathBuf,
}

impl AtomicFile {
    /// Starts replacing `path`, writing `<name>.tmp` (for writers that hold
    /// the corpus `LOCK`, or files only one process writes).
    pub fn create(path: &Path) -> Result<AtomicFile> {
        Self::create_as(path, temporary_name(path, false))
    }

    /// Starts replacing `path` under a temporary name private to this
    /// process and call (for files written without the `LOCK` by whichever
    /// process needs them first; the last rename wins).
    pub fn create_private(path: &Path) -> Result<AtomicFile> {
        Self::create_as(path, temporary_name(path, true))
    }

    fn create_as(path: &Path, tmp: PathBuf) -> Result<AtomicFile> {
        let file = create(&tmp).at(&tmp)?;
        Ok(AtomicFile {
            file,
            tmp,
            path: path.to_path_buf(),
        })
    }

    /// The temporary name being written.
    pub fn tmp_path(&self) -> &Path {
        &self.tmp
    }

    /// Makes the new contents durable and puts them in place: fsync the
    /// file, rename it over the final name, fsync the directory.
    pub fn commit(self) -> Result<()> {
        self.file.sync_all().at(&self.tmp)?;
        drop(self.file);
        rename(&self.tmp, &self.path).at(&self.path)?;
        let dir = parent_dir(&self.path);
        sync_dir(dir).at(dir)
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Replaces `path` with `bytes` atomically ([`AtomicFile::create`]: write
/// `<name>.tmp`, fsync it, rename it over `path`, fsync the directory).
pub fn write_file_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = AtomicFile::create(path)?;
    f.write_all(bytes).at(f.tmp_path())?;
    f.commit()
}

/// [`write_file_atomic`] under a temporary name private to this process and
/// call ([`AtomicFile::create_private`]).
pub fn write_file_atomic_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = AtomicFile::create_private(path)?;
    f.write_all(bytes).at(f.tmp_path())?;
    f.commit()
}

/// Opens (creating it when missing, never truncating) the writers' `LOCK` file.
pub fn open_lock(path: &Path) -> io::Result<File> {
    let open = || {
        File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
    };
    if path.exists() {
        // Opening an existing lock file writes nothing.
        return open();
    }
    let Some(inj) = injector_for(path) else {
        return open();
    };
    let mut m = inj.lock();
    m.touch(path);
    if let Decision::Fail(e) = m.decide(OpKind::Create, path) {
        return Err(e);
    }
    let f = open()?;
    m.inodes.push(Inode::default());
    let i = m.inodes.len() - 1;
    m.live.insert(path.to_path_buf(), Some(i));
    Ok(f)
}

/// Renames `from` to `to` (atomic within a directory; durable after
/// [`sync_dir`]).
pub fn rename(from: &Path, to: &Path) -> io::Result<()> {
    let Some(inj) = injector_for(to) else {
        return std::fs::rename(from, to);
    };
    let mut m = inj.lock();
    m.touch(from);
    m.touch(to);
    if let Decision::Fail(e) = m.decide(OpKind::Rename, to) {
        return Err(e);
    }
    std::fs::rename(from, to)?;
    let id = m.live.insert(from.to_path_buf(), None).flatten();
    m.live.insert(to.to_path_buf(), id);
    Ok(())
}

/// Gives the file `from` a second name `to` (a job's staged file entering
/// the corpus directory), or copies it where the file system has no hard
/// links (the copy is fsynced). The new name is durable after [`sync_dir`].
pub fn link_or_copy(from: &Path, to: &Path) -> io::Result<()> {
    if let Some(inj) = injector_for(to) {
        let mut m = inj.lock();
        m.touch(from);
        m.touch(to);
        if let Decision::Fail(e) = m.decide(OpKind::Create, to) {
            return Err(e);
        }
        std::fs::hard_link(from, to)?;
        let id = m.live.get(from).copied().flatten();
        m.live.insert(to.to_path_buf(), id);
        return Ok(());
    }
    match std::fs::hard_link(from, to) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(e),
        Err(_) => {
            std::fs::copy(from, to)?;
            File::open(to)?.sync_all()
        }
    }
}

/// Removes a file (durable after [`sync_dir`]).
pub fn remove_file(path: &Path) -> io::Result<()> {
    let Some(inj) = injector_for(path) else {
        return std::fs::remove_file(path);
    };
    let mut m = inj.lock();
    m.touch(path);
    if let Decision::Fail(e) = m.decide(OpKind::Remove, path) {
        return Err(e);
    }
    std::fs::remove_file(path)?;
    m.live.insert(path.to_path_buf(), None);
    Ok(())
}

/// fsyncs a directory, making the creations, renames and removals in it durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    guarded(
        OpKind::SyncDir,
        dir,
        || File::open(dir).and_then(|f| f.sync_all()),
        |m, _| {
            let names: Vec<(PathBuf, Option<usize>)> = m
                .live
                .iter()
                .filter(|(p, _)| p.parent() == Some(dir))
                .map(|(p, i)| (p.clone(), *i))
                .collect();
            m.durable.extend(names);
        },
    )
}

/// The catalog's redb storage: its file, with every write, length change
/// and sync going through the storage layer.
#[derive(Debug)]
pub struct CatalogBackend {
    inner: redb::backends::FileBackend,
    path: PathBuf,
    inj: Option<(Arc<Injector>, usize)>,
}

impl CatalogBackend {
    /// Opens the catalog file `path`, creating an empty one when `create`
    /// (redb initializes it); fails with `DatabaseAlreadyOpen` while another
    /// process holds it.
    pub fn open(path: &Path, create: bool) -> Result<CatalogBackend, redb::DatabaseError> {
        let open = || {
            File::options()
                .read(true)
                .write(true)
                .create(create)
                .truncate(false)
                .open(path)
        };
        let Some(inj) = injector_for(path) else {
            return Ok(CatalogBackend {
                inner: redb::backends::FileBackend::new(open()?)?,
                path: path.to_path_buf(),
                inj: None,
            });
        };
        let mut m = inj.lock();
        m.touch(path);
        let new = !path.exists();
        if new {
            if let Decision::Fail(e) = m.decide(OpKind::Create, path) {
                return Err(e.into());
            }
        }
        let file = open()?;
        let id = m.inode_of(path);
        drop(m);
        Ok(CatalogBackend {
            inner: redb::backends::FileBackend::new(file)?,
            path: path.to_path_buf(),
            inj: Some((inj, id)),
        })
    }

    fn decide(&self, op: OpKind) -> io::Result<Option<(MutexGuard<'_, Model>, bool)>> {
        let Some((inj, _)) = &self.inj else {
            return Ok(None);
        };
        let mut m = inj.lock();
        match m.decide(op, &self.path) {
            Decision::Fail(e) => Err(e),
            Decision::Go => Ok(Some((m, false))),
            Decision::Short => Ok(Some((m, true))),
        }
    }
}

impl redb::StorageBackend for CatalogBackend {
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }

    fn read(&self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        self.inner.read(offset, len)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let _m = self.decide(OpKind::SetLen)?;
        self.inner.set_len(len)
    }

    fn sync_data(&self, eventual: bool) -> io::Result<()> {
        let m = self.decide(OpKind::Sync)?;
        self.inner.sync_data(eventual)?;
        if let (Some((mut m, _)), Some((_, id))) = (m, &self.inj) {
            let len = self.inner.len()?;
            m.inodes[*id].durable = Some(self.inner.read(0, len as usize)?);
        }
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        match self.decide(OpKind::Write)? {
            Some((_m, true)) if data.len() > 1 => {
                self.inner.write(offset, &data[..data.len() / 2])?;
                Err(eio())
            }
            _ => self.inner.write(offset, data),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_writes_replace_the_file_and_leave_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("CURRENT");
        assert_eq!(temporary_name(&p, false), dir.path().join("CURRENT.tmp"));
        let private = temporary_name(&p, true);
        let name = private.file_name().unwrap().to_str().unwrap();
        assert!(
            name.starts_with(&format!("CURRENT.{}-", std::process::id())) && name.ends_with(".tmp"),
            "{name}"
        );
        assert_ne!(
            temporary_name(&p, true),
            private,
            "private names differ per call"
        );
        write_file_atomic(&p, b"one").unwrap();
        write_file_atomic_private(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("CURRENT")]);
        // The operations, in order, as the fault injector counts them.
        let inj = Injection::count(dir.path());
        write_file_atomic(&p, b"three").unwrap();
        let ops: Vec<OpKind> = inj.ops().into_iter().map(|(op, _)| op).collect();
        assert_eq!(
            ops,
            vec![
                OpKind::Create,
                OpKind::Write,
                OpKind::Sync,
                OpKind::Rename,
                OpKind::SyncDir
            ]
        );
    }
}
