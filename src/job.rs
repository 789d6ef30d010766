//! Jobs: one ingest or tagging run cut into tasks that run anywhere the
//! corpus directory is mounted (the tasks of a Slurm job array, the write
//! tasks of a Ray job), and one commit that makes all their work visible
//! in a single generation.
//!
//! A task never touches the catalog. It reads the corpus as of its start
//! (its *base* generation) and writes only its own staging folder,
//! `DIR/jobs/NAME/task-IIIII-of-NNNNN/`: segment or sidecar files and a
//! `MANIFEST.json` saying what they are. The folder is built under a
//! temporary name and renamed into place once the manifest is durable, so
//! a task that dies leaves nothing a commit would take, and a task run
//! again replaces its own folder (a requeued Slurm task is harmless).
//!
//! [`commit`] takes the corpus write lock, refuses while a task of the job
//! has not finished, checks every task against the corpus as it is now
//! (duplicate keys across tasks and against documents committed since a
//! task's base; segments tagged that were compacted away since), links the
//! staged files into the corpus directory under fresh names and commits
//! one generation. A crash before that commit leaves the corpus as it was
//! (the links are orphans the next writer collects) and the staging intact,
//! so the commit can simply run again; a crash after it leaves a staging
//! folder that the next commit of the job recognizes (the generation's
//! detail carries the job's digest) and removes.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

use roaring::RoaringBitmap;
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::{xxh3_128, xxh3_64};

use crate::catalog::{
    Catalog, CatalogState, Commit, IngestLogEntry, SegmentEntry, SignalInfo, TagEntry,
};
use crate::corpus::{collect_orphans, segment_file_name, WriteLock};
use crate::error::{Error, IoContext, Result};
use crate::ingest::OnDuplicate;
use crate::schema::Schema;
use crate::segment::Segment;

/// The folder of a corpus that holds the staging of its jobs.
pub const JOBS_DIR: &str = "jobs";
/// The file that marks a task as finished and says what it staged.
pub const MANIFEST_FILE: &str = "MANIFEST.json";
/// Staged segments are numbered from here, so that a task's tombstones can
/// name both corpus segments and its own without a clash.
pub const STAGED_ID_BASE: u64 = 1 << 62;
const MANIFEST_VERSION: u32 = 1;

/// Task `index` of a job of `count` tasks (`I/N` on the command line,
/// `--task $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT`; indices from 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TaskId {
    /// This task, `0..count`.
    pub index: u32,
    /// Tasks in the job.
    pub count: u32,
}

impl TaskId {
    /// The task of `index` among `count`; refuses an index out of range.
    pub fn new(index: u32, count: u32) -> Result<TaskId> {
        if count == 0 || index >= count {
            return Err(Error::Invalid(format!(
                "task {index}/{count}: the index must be below the count (tasks are numbered from 0: a Slurm array --array=0-{})",
                count.max(1) - 1
            )));
        }
        Ok(TaskId { index, count })
    }

    /// This task's contiguous share of `n` items: `[start, end)`. Contiguous
    /// shares keep the items' order across tasks, so a job decides
    /// duplicates as one ingest of the same inputs would.
    /// An open task ([`TaskId::open`]) takes every item it is given.
    pub fn share(self, n: usize) -> std::ops::Range<usize> {
        if self.is_open() {
            return 0..n;
        }
        let (i, c) = (self.index as u128, self.count as u128);
        let n128 = n as u128;
        ((n128 * i / c) as usize)..((n128 * (i + 1) / c) as usize)
    }

    /// Task `index` of a job whose size its driver alone knows (a Ray
    /// write: one task per block); [`commit`] of such a job names the
    /// tasks it takes.
    pub fn open(index: u32) -> TaskId {
        TaskId { index, count: 0 }
    }

    /// Whether the job's size is left to its driver ([`TaskId::open`]).
    pub fn is_open(self) -> bool {
        self.count == 0
    }

    pub(crate) fn dir_name(self) -> String {
        if self.is_open() {
            format!("task-{:05}", self.index)
        } else {
            format!("task-{:05}-of-{:05}", self.index, self.count)
        }
    }
}

impl std::fmt::Display for TaskId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_open() {
            write!(f, "{}", self.index)
        } else {
            write!(f, "{}/{}", self.index, self.count)
        }
    }
}

impl std::str::FromStr for TaskId {
    type Err = Error;
    fn from_str(s: &str) -> Result<TaskId> {
        let bad = || {
            Error::Invalid(format!(
                "--task {s}: expected I/N, task I of N counted from 0 (e.g. 3/8)"
            ))
        };
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let i: u32 = i.trim().parse().map_err(|_| bad())?;
        let n: u32 = n.trim().parse().map_err(|_| bad())?;
        TaskId::new(i, n)
    }
}

/// What a job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobKind {
    /// Tasks ingest shares of the inputs.
    Ingest,
    /// Tasks tag shares of the segments.
    Tag,
}

impl JobKind {
    /// `ingest` or `tag`.
    pub fn name(self) -> &'static str {
        match self {
            JobKind::Ingest => "ingest",
            JobKind::Tag => "tag",
        }
    }
}

/// Sidecars one tag task staged for one corpus segment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StagedTags {
    /// The corpus segment's id.
    pub segment: u64,
    /// Its file (checked at commit: a segment compacted away since the
    /// task ran cannot take the task's sidecars).
    pub segment_file: String,
    /// Its tag entries, `file` naming the staged sidecar.
    pub entries: Vec<TagEntry>,
}

/// A finished task's record of what it staged (`MANIFEST.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// Manifest format version.
    pub version: u32,
    /// The job's name.
    pub job: String,
    /// What the job does.
    pub kind: JobKind,
    /// This task.
    pub task: TaskId,
    /// The corpus generation the task read (0: no corpus yet).
    pub base_generation: u64,
    /// Ingest: the segments written (ids from [`STAGED_ID_BASE`]).
    #[serde(default)]
    pub segments: Vec<SegmentEntry>,
    /// Ingest: ordinals to tombstone per segment id (corpus or staged).
    #[serde(default)]
    pub tombstones: Vec<(u64, Vec<u32>)>,
    /// Ingest: the schema after the task's documents.
    #[serde(default)]
    pub schema: Option<Schema>,
    /// Ingest: the duplicate-key policy.
    #[serde(default)]
    pub on_duplicate: Option<String>,
    /// Ingest: the license field the task was given.
    #[serde(default)]
    pub license_field: Option<String>,
    /// Ingest: one entry per input file read.
    #[serde(default)]
    pub ingest_log: Vec<IngestLogEntry>,
    /// Ingest: documents written, skipped, replaced, rejected.
    #[serde(default)]
    pub counts: [u64; 4],
    /// Tag: the sidecars staged per segment.
    #[serde(default)]
    pub tags: Vec<StagedTags>,
    /// Tag: the signal columns the sidecars hold.
    #[serde(default)]
    pub signals: BTreeMap<String, SignalInfo>,
    /// Tag: what each tagger did (tagger, version, documents, sidecars).
    #[serde(default)]
    pub outcomes: Vec<(String, String, u64, u64)>,
    /// Tag: deduplication runs at commit over every segment (its
    /// signatures need the whole corpus).
    #[serde(default)]
    pub dedup: bool,
}

impl Manifest {
    /// An empty manifest of `kind` for `task`.
    pub fn new(job: &str, kind: JobKind, task: TaskId, base_generation: u64) -> Manifest {
        Manifest {
            version: MANIFEST_VERSION,
            job: job.to_string(),
            kind,
            task,
            base_generation,
            segments: Vec::new(),
            tombstones: Vec::new(),
            schema: None,
            on_duplicate: None,
            license_field: None,
            ingest_log: Vec::new(),
            counts: [0; 4],
            tags: Vec::new(),
            signals: BTreeMap::new(),
            outcomes: Vec::new(),
            dedup: false,
        }
    }
}

/// Refuses a job name that is not a plain folder name.
pub fn check_name(job: &str) -> Result<()> {
    let ok = !job.is_empty()
        && job.len() <= 100
        && !job.starts_with('.')
        && job
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "--job {job:?}: a job name is 1 to 100 letters, digits, '-', '_' or '.', not starting with '.'"
        )))
    }
}

/// The staging folder of `job` in the corpus `dir`.
pub fn job_dir(dir: &Path, job: &str) -> PathBuf {
    dir.join(JOBS_DIR).join(job)
}

/// A task's staging folder being filled: removed when dropped unless
/// [`Staging::finish`] put it in place.
pub struct Staging {
    tmp: PathBuf,
    fin: PathBuf,
    done: bool,
}

impl Staging {
    /// Starts task `task` of `job` in the corpus `dir`: a fresh temporary
    /// folder (a previous run of the same task stays in place until this
    /// one finishes).
    pub fn begin(dir: &Path, job: &str, task: TaskId) -> Result<Staging> {
        crate::remote::refuse_write(dir)?;
        check_name(job)?;
        let jd = job_dir(dir, job);
        std::fs::create_dir_all(&jd).at(&jd)?;
        let nonce = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let tmp = jd.join(format!(
            ".{}.{}-{nonce}.tmp",
            task.dir_name(),
            std::process::id()
        ));
        std::fs::create_dir_all(&tmp).at(&tmp)?;
        Ok(Staging {
            tmp,
            fin: jd.join(task.dir_name()),
            done: false,
        })
    }

    /// The folder to write the task's files in.
    pub fn path(&self) -> &Path {
        &self.tmp
    }

    /// Writes the manifest (durably, with every file it names) and puts the
    /// folder in place, replacing an earlier run of the same task.
    pub fn finish(mut self, m: &Manifest) -> Result<()> {
        for f in manifest_files(m) {
            let p = self.tmp.join(&f);
            std::fs::File::open(&p).and_then(|f| f.sync_all()).at(&p)?;
        }
        let bytes = serde_json::to_vec_pretty(m)
            .map_err(|e| Error::Invalid(format!("encoding the task manifest: {e}")))?;
        crate::storage::write_file_atomic(&self.tmp.join(MANIFEST_FILE), &bytes)?;
        if self.fin.exists() {
            // The earlier run's folder goes first: a rename does not
            // replace a folder that has files.
            let old = self.tmp.with_extension("old");
            crate::storage::rename(&self.fin, &old).at(&self.fin)?;
            std::fs::remove_dir_all(&old).at(&old)?;
        }
        crate::storage::rename(&self.tmp, &self.fin).at(&self.fin)?;
        if let Some(parent) = self.fin.parent() {
            crate::storage::sync_dir(parent).at(parent)?;
        }
        self.done = true;
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_dir_all(&self.tmp);
        }
    }
}

/// Files a manifest names inside its staging folder.
fn manifest_files(m: &Manifest) -> Vec<String> {
    let mut out: Vec<String> = m.segments.iter().map(|s| s.file.clone()).collect();
    for t in &m.tags {
        out.extend(t.entries.iter().map(|e| e.file.clone()));
    }
    out
}

/// Where a job stands: its finished tasks, and which are missing.
#[derive(Debug, Clone, Default)]
pub struct JobStatus {
    /// The job's name.
    pub job: String,
    /// What it does (None while no task finished).
    pub kind: Option<JobKind>,
    /// Tasks in the job, as the finished tasks say.
    pub count: Option<u32>,
    /// Finished tasks, by index.
    pub finished: Vec<u32>,
    /// Tasks not finished yet, by index.
    pub missing: Vec<u32>,
}

/// Reads the finished tasks of `job`, in index order; refuses tasks that
/// disagree on what the job is.
fn read_tasks(dir: &Path, job: &str) -> Result<Vec<(PathBuf, Manifest)>> {
    check_name(job)?;
    let jd = job_dir(dir, job);
    let rd = match std::fs::read_dir(&jd) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(&jd, e)),
    };
    let mut out = Vec::new();
    for e in rd {
        let e = e.at(&jd)?;
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with("task-") {
            continue;
        }
        let mp = e.path().join(MANIFEST_FILE);
        let bytes = match std::fs::read(&mp) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io(&mp, e)),
        };
        let m: Manifest = serde_json::from_slice(&bytes)
            .map_err(|e| Error::corrupt(&mp, format!("unreadable task manifest: {e}")))?;
        if m.version != MANIFEST_VERSION {
            return Err(Error::corrupt(
                &mp,
                format!(
                    "task manifest version {} (this corpusql reads {MANIFEST_VERSION}); run the task again with this version",
                    m.version
                ),
            ));
        }
        if m.job != job || name != m.task.dir_name() {
            return Err(Error::corrupt(
                &mp,
                format!("the manifest is of task {} of job {:?}", m.task, m.job),
            ));
        }
        out.push((e.path(), m));
    }
    out.sort_by_key(|(_, m)| m.task.index);
    if let Some((p0, m0)) = out.first() {
        for (p, m) in &out[1..] {
            if m.kind != m0.kind || m.task.count != m0.task.count {
                return Err(Error::Invalid(format!(
                    "job {job}: {} is task {} of a {} job, {} is task {} of a {} job; a job's tasks must all be run with the same --task count and command (remove {} to start the job over)",
                    p0.display(),
                    m0.task,
                    m0.kind.name(),
                    p.display(),
                    m.task,
                    m.kind.name(),
                    jd.display()
                )));
            }
        }
    }
    Ok(out)
}

/// Where `job` of the corpus in `dir` stands.
pub fn status(dir: &Path, job: &str) -> Result<JobStatus> {
    if let Some(uri) = crate::remote::as_uri(dir) {
        return crate::remote::job_status(uri, job);
    }
    let tasks = read_tasks(dir, job)?;
    let mut st = JobStatus {
        job: job.to_string(),
        ..Default::default()
    };
    if let Some((_, m)) = tasks.first() {
        st.kind = Some(m.kind);
        st.count = Some(m.task.count);
        st.finished = tasks.iter().map(|(_, m)| m.task.index).collect();
        st.missing = (0..m.task.count)
            .filter(|i| !st.finished.contains(i))
            .collect();
    }
    Ok(st)
}

/// What [`commit`] did.
#[derive(Debug, Clone, Default)]
pub struct JobReport {
    /// The job's name.
    pub job: String,
    /// What it does.
    pub kind: Option<JobKind>,
    /// Tasks committed.
    pub tasks: u32,
    /// The generation committed (None when the job changed nothing).
    pub generation: Option<u64>,
    /// True when an earlier commit of this job had already committed it
    /// (its staging was left behind by a crash and is now removed).
    pub already_committed: bool,
    /// Documents added (ingest).
    pub ingested: u64,
    /// Records skipped as duplicate keys, within tasks and across them.
    pub skipped: u64,
    /// Records that replaced an older document.
    pub replaced: u64,
    /// Records rejected by the tasks.
    pub rejected: u64,
    /// Of `skipped` and `replaced`: duplicates found only at commit
    /// (between tasks, or against documents committed after a task read
    /// the corpus).
    pub commit_duplicates: u64,
    /// Segments added (ingest) or tagged (tag).
    pub segments: u64,
    /// Per tagger: (tagger, version, documents tagged, sidecars).
    pub outcomes: Vec<(String, String, u64, u64)>,
    /// Wall-clock seconds of the commit.
    pub seconds: f64,
}

impl JobReport {
    /// The report as `corpusql commit --json` prints it (and Python returns it).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "job": self.job, "kind": self.kind.map(|k| k.name()),
            "tasks": self.tasks, "generation": self.generation,
            "already_committed": self.already_committed,
            "ingested": self.ingested, "skipped": self.skipped, "replaced": self.replaced,
            "rejected": self.rejected, "commit_duplicates": self.commit_duplicates,
            "segments": self.segments,
            "taggers": self.outcomes.iter().map(|o| serde_json::json!({
                "tagger": o.0, "version": o.1, "docs": o.2, "sidecars": o.3,
            })).collect::<Vec<_>>(),
            "seconds": self.seconds,
        })
    }
}

/// Commits every task of `job` in the corpus `dir` as one generation (see
/// the module docs); refuses, naming them, while tasks are missing.
pub fn commit(dir: &Path, job: &str, opts: &crate::tag::TagOptions) -> Result<JobReport> {
    commit_tasks(dir, job, None, opts)
}

/// Removes the staging of `job` (a job given up: a failed Ray write, a
/// Slurm array cancelled); the corpus is untouched. Returns whether there
/// was any.
pub fn abort(dir: &Path, job: &str) -> Result<bool> {
    check_name(job)?;
    if let Some(uri) = crate::remote::as_uri(dir) {
        return crate::remote::remove_job(uri, job);
    }
    let jd = job_dir(dir, job);
    if !jd.exists() {
        return Ok(false);
    }
    remove_job(&jd)?;
    Ok(true)
}

/// [`commit`] of exactly the tasks `expect` (by index) when given: what a
/// driver that ran an open job ([`TaskId::open`]) commits; other finished
/// tasks of the job are left out (and removed with its staging).
pub fn commit_tasks(
    dir: &Path,
    job: &str,
    expect: Option<&[u32]>,
    opts: &crate::tag::TagOptions,
) -> Result<JobReport> {
    if let Some(uri) = crate::remote::as_uri(dir) {
        return crate::remote::commit_job(uri, job, expect, opts);
    }
    let start = Instant::now();
    crate::remote::refuse_write(dir)?;
    check_name(job)?;
    let jd = job_dir(dir, job);
    if !jd.exists() {
        return Err(Error::Invalid(format!(
            "job {job}: nothing staged (no folder {}); run its tasks first",
            jd.display()
        )));
    }
    std::fs::create_dir_all(dir).at(dir)?;
    let _lock = WriteLock::acquire(dir)?;
    let mut tasks = read_tasks(dir, job)?;
    if let Some(expect) = expect {
        tasks.retain(|(_, m)| expect.contains(&m.task.index));
    }
    let digest = job_digest(&tasks)?;
    let catalog = Catalog::new(dir);
    if catalog.exists() {
        let tag = digest_tag(job, &digest);
        if let Some(g) = catalog
            .generations()?
            .into_iter()
            .find(|g| g.detail.contains(&tag))
        {
            remove_job(&jd)?;
            return Ok(JobReport {
                job: job.to_string(),
                generation: Some(g.generation),
                already_committed: true,
                seconds: start.elapsed().as_secs_f64(),
                ..Default::default()
            });
        }
    }
    let Some((_, m0)) = tasks.first() else {
        return Err(Error::Invalid(format!(
            "job {job}: no task has finished (no {MANIFEST_FILE} under {})",
            jd.display()
        )));
    };
    let wanted: Vec<u32> = match expect {
        Some(e) => e.to_vec(),
        None if m0.task.is_open() => {
            return Err(Error::Invalid(format!(
                "job {job}: its tasks were run without a task count; its driver commits the tasks it ran"
            )))
        }
        None => (0..m0.task.count).collect(),
    };
    let count = wanted.len() as u32;
    let missing: Vec<u32> = wanted
        .iter()
        .copied()
        .filter(|i| !tasks.iter().any(|(_, m)| m.task.index == *i))
        .collect();
    if !missing.is_empty() {
        let shown: Vec<String> = missing.iter().take(10).map(|i| i.to_string()).collect();
        return Err(Error::Invalid(format!(
            "job {job}: {} of {count} tasks have not finished (task{} {}{}); run them (again), then commit. Nothing was committed",
            missing.len(),
            if missing.len() == 1 { "" } else { "s" },
            shown.join(", "),
            if missing.len() > 10 { ", ..." } else { "" }
        )));
    }
    let mut report = match m0.kind {
        JobKind::Ingest => commit_ingest(dir, job, &tasks, &digest)?,
        JobKind::Tag => {
            crate::tag::commit_tag_job(dir, job, &tasks, &digest_tag(job, &digest), opts)?
        }
    };
    remove_job(&jd)?;
    report.job = job.to_string();
    report.kind = Some(m0.kind);
    report.tasks = count;
    report.seconds = start.elapsed().as_secs_f64();
    Ok(report)
}

/// Removes a job's staging folder (and `jobs/` when it is left empty).
fn remove_job(jd: &Path) -> Result<()> {
    std::fs::remove_dir_all(jd).at(jd)?;
    if let Some(parent) = jd.parent() {
        // Fails while other jobs are staged: that is fine.
        let _ = std::fs::remove_dir(parent);
    }
    Ok(())
}

/// A digest of what the tasks staged: the same job committed twice (after
/// a crash between the commit and the removal of its staging) is known.
fn job_digest(tasks: &[(PathBuf, Manifest)]) -> Result<String> {
    let mut all = Vec::new();
    for (_, m) in tasks {
        all.extend(serde_json::to_vec(m).map_err(|e| Error::Invalid(e.to_string()))?);
    }
    Ok(format!("{:016x}", xxh3_128(&all) as u64))
}

/// The mark a job's generation carries in its detail.
pub(crate) fn digest_tag(job: &str, digest: &str) -> String {
    format!("[job {job} {digest}]")
}

/// Where a staged document lives at commit: a corpus segment or the
/// `i`-th staged segment.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum At {
    Corpus(u64),
    Staged(u32),
}

struct StagedSeg {
    task: usize,
    seg: Segment,
    entry: SegmentEntry,
}

fn commit_ingest(
    dir: &Path,
    job: &str,
    tasks: &[(PathBuf, Manifest)],
    digest: &str,
) -> Result<JobReport> {
    let m0 = &tasks[0].1;
    let schema0 = m0.schema.clone().unwrap_or_default();
    let catalog = Catalog::new(dir);
    if !catalog.exists() {
        let s = Schema {
            key_field: schema0.key_field.clone(),
            text_field: schema0.text_field.clone(),
            ..Schema::default()
        };
        catalog.create(&s, &crate::ingest::default_cluster())?;
    }
    let cstate = catalog.refresh_current()?;
    collect_orphans(dir, &cstate)?;
    // One schema, one policy, one license field for every task.
    let mut schema = cstate.schema.clone();
    let mut schema_changed = false;
    if cstate.segments.is_empty()
        && (schema.text_field != schema0.text_field || schema.key_field != schema0.key_field)
    {
        schema.text_field = schema0.text_field.clone();
        schema.key_field = schema0.key_field.clone();
        schema_changed = true;
    }
    for (p, m) in tasks {
        let ms = m.schema.clone().unwrap_or_default();
        if m.segments.is_empty() && m.tombstones.is_empty() {
            continue;
        }
        if ms.text_field != schema.text_field || ms.key_field != schema.key_field {
            return Err(Error::Invalid(format!(
                "job {job}: task {} read text from `{}` and keys from `{}`, the corpus uses `{}` and `{}` ({}); run every task with the same --text-field / --id-field",
                m.task, ms.text_field, ms.key_field, schema.text_field, schema.key_field, p.display()
            )));
        }
        for (f, k) in &ms.fields {
            match schema.fields.get(f) {
                None => {
                    schema.fields.insert(f.clone(), *k);
                    schema_changed = true;
                }
                Some(k0) if k0 != k => {
                    return Err(Error::Invalid(format!(
                        "job {job}: field `{f}` is {} in task {} but {} in the corpus or an earlier task; nothing was committed",
                        k.describe(),
                        m.task,
                        k0.describe()
                    )));
                }
                Some(_) => {}
            }
        }
        if m.on_duplicate != m0.on_duplicate || m.license_field != m0.license_field {
            return Err(Error::Invalid(format!(
                "job {job}: task {} ran with other --on-duplicate / --license-field options than task {}; run every task with the same options",
                m.task, m0.task
            )));
        }
    }
    let policy = match m0.on_duplicate.as_deref() {
        Some("replace") => OnDuplicate::Replace,
        Some("error") => OnDuplicate::Error,
        _ => OnDuplicate::Skip,
    };
    // The staged segments, in task order.
    let mut staged: Vec<StagedSeg> = Vec::new();
    let mut staged_at: HashMap<(usize, u64), u32> = HashMap::new();
    for (t, (p, m)) in tasks.iter().enumerate() {
        for e in &m.segments {
            let path = p.join(&e.file);
            let seg = Segment::open(&path)?;
            if seg.doc_count() != e.docs {
                return Err(Error::corrupt(
                    &path,
                    format!(
                        "the staged segment has {} documents, its task's manifest says {}",
                        seg.doc_count(),
                        e.docs
                    ),
                ));
            }
            staged_at.insert((t, e.id), staged.len() as u32);
            staged.push(StagedSeg {
                task: t,
                seg,
                entry: e.clone(),
            });
        }
    }
    // Tombstones the tasks decided: on their own segments, and on corpus
    // documents they replaced (segments gone since are left out: their
    // documents, if compacted elsewhere, are found below).
    let mut tomb: HashMap<At, RoaringBitmap> = HashMap::new();
    for (t, (_, m)) in tasks.iter().enumerate() {
        for (id, ords) in &m.tombstones {
            let at = if *id >= STAGED_ID_BASE {
                match staged_at.get(&(t, *id)) {
                    Some(i) => At::Staged(*i),
                    None => continue,
                }
            } else if cstate.segments.iter().any(|s| s.id == *id) {
                At::Corpus(*id)
            } else {
                continue;
            };
            tomb.entry(at).or_default().extend(ords.iter().copied());
        }
    }
    // Duplicates only the commit can see: between tasks, and against
    // segments committed after a task's base generation.
    let mut opened: HashMap<u64, Segment> = HashMap::new();
    let mut seen: HashMap<u64, (u32, u32)> = HashMap::new();
    let mut seen_overflow: HashMap<Vec<u8>, (u32, u32)> = HashMap::new();
    let mut counts = [0u64; 4];
    for (_, m) in tasks {
        for (c, v) in counts.iter_mut().zip(m.counts) {
            *c += v;
        }
    }
    let mut commit_dups = 0u64;
    for si in 0..staged.len() {
        let task = staged[si].task;
        let base = tasks[task].1.base_generation;
        let newer: Vec<&SegmentEntry> = cstate
            .segments
            .iter()
            .filter(|s| s.added_generation > base)
            .collect();
        for s in &newer {
            if let std::collections::hash_map::Entry::Vacant(v) = opened.entry(s.id) {
                v.insert(Segment::open(&dir.join(&s.file))?);
            }
        }
        let dead = tomb
            .get(&At::Staged(si as u32))
            .cloned()
            .unwrap_or_default();
        let mut stream = staged[si].seg.key_stream();
        let mut pairs: Vec<(Vec<u8>, u32)> = Vec::new();
        {
            use fst::Streamer;
            while let Some((k, o)) = stream.next() {
                if !dead.contains(o as u32) {
                    pairs.push((k.to_vec(), o as u32));
                }
            }
        }
        drop(stream);
        for (key, ord) in pairs {
            let h = xxh3_64(&key);
            // An earlier staged copy?
            let mut older: Option<At> = None;
            let mut older_ord = 0;
            let hit = match seen.get(&h) {
                Some(&(s, o)) if staged_key_is(&staged, s, o, &key) => Some((s, o)),
                _ => seen_overflow.get(&key).copied(),
            };
            if let Some((s, o)) = hit {
                if !tomb.get(&At::Staged(s)).is_some_and(|t| t.contains(o)) {
                    older = Some(At::Staged(s));
                    older_ord = o;
                }
            }
            if older.is_none() {
                let k = String::from_utf8_lossy(&key);
                for s in &newer {
                    let seg = &opened[&s.id];
                    if let Some(o) = seg.key_ordinal(&k) {
                        let gone = cstate.tombstones.get(&s.id).is_some_and(|t| t.contains(o))
                            || tomb.get(&At::Corpus(s.id)).is_some_and(|t| t.contains(o));
                        if !gone {
                            older = Some(At::Corpus(s.id));
                            older_ord = o;
                            break;
                        }
                    }
                }
            }
            if let Some(at) = older {
                commit_dups += 1;
                match policy {
                    OnDuplicate::Skip => {
                        tomb.entry(At::Staged(si as u32)).or_default().insert(ord);
                        counts[0] -= 1;
                        counts[1] += 1;
                        continue;
                    }
                    OnDuplicate::Replace => {
                        tomb.entry(at).or_default().insert(older_ord);
                        counts[2] += 1;
                    }
                    OnDuplicate::Error => {
                        let whose = match at {
                            At::Staged(s) => {
                                format!("task {}", tasks[staged[s as usize].task].1.task)
                            }
                            At::Corpus(_) => "the corpus (committed after the task started)".into(),
                        };
                        return Err(Error::Invalid(format!(
                            "job {job}: key {:?} of task {} is also in {whose} (--on-duplicate error); nothing was committed",
                            String::from_utf8_lossy(&key),
                            tasks[task].1.task
                        )));
                    }
                }
            }
            let loc = (si as u32, ord);
            match seen.get(&h) {
                Some(&(s, o)) if !staged_key_is(&staged, s, o, &key) => {
                    seen_overflow.insert(key, loc);
                }
                _ => {
                    seen.insert(h, loc);
                }
            }
        }
    }
    // Fresh ids, and the staged files linked into the corpus.
    let mut next_id = cstate.next_segment_id;
    let mut add = Vec::new();
    let mut linked: Vec<PathBuf> = Vec::new();
    let mut id_of = Vec::new();
    for s in &staged {
        let mut e = s.entry.clone();
        e.id = next_id;
        e.file = segment_file_name(next_id);
        next_id += 1;
        let from = tasks[s.task].0.join(&s.entry.file);
        let to = dir.join(&e.file);
        if let Err(err) = crate::storage::link_or_copy(&from, &to) {
            for p in &linked {
                let _ = crate::storage::remove_file(p);
            }
            return Err(Error::io(&to, err));
        }
        linked.push(to);
        id_of.push(e.id);
        add.push(e);
    }
    crate::storage::sync_dir(dir).at(dir)?;
    let mut tombstones: Vec<(u64, RoaringBitmap)> = Vec::new();
    for (at, bm) in tomb {
        let id = match at {
            At::Corpus(id) => id,
            At::Staged(i) => id_of[i as usize],
        };
        tombstones.push((id, bm));
    }
    tombstones.sort_by_key(|(id, _)| *id);
    let live = live_after(&cstate, &add, &tombstones);
    let mut log: Vec<IngestLogEntry> = Vec::new();
    for (_, m) in tasks {
        log.extend(m.ingest_log.iter().cloned());
    }
    let files = log.len();
    let mut report = JobReport {
        ingested: counts[0],
        skipped: counts[1],
        replaced: counts[2],
        rejected: counts[3],
        commit_duplicates: commit_dups,
        segments: add.len() as u64,
        ..Default::default()
    };
    let license_field = m0
        .license_field
        .clone()
        .filter(|f| f != cstate.license_field());
    if add.is_empty() && tombstones.is_empty() && !schema_changed && license_field.is_none() {
        return Ok(report);
    }
    let commit = Commit {
        add,
        tombstones,
        schema: schema_changed.then_some(schema),
        ingest_log: log,
        op: "ingest".into(),
        detail: format!(
            "job {job}: {} tasks, {files} files {}",
            tasks.len(),
            digest_tag(job, digest)
        ),
        next_segment_id: next_id,
        license_field,
        ..Default::default()
    };
    match catalog.commit(cstate.generation, commit, live) {
        Ok(g) => report.generation = Some(g),
        Err(e) => {
            crate::corpus::remove_unless_committed(dir, &catalog);
            return Err(e);
        }
    }
    Ok(report)
}

/// Whether staged segment `s` holds `key` at ordinal `o`.
fn staged_key_is(staged: &[StagedSeg], s: u32, o: u32, key: &[u8]) -> bool {
    staged[s as usize]
        .seg
        .key_ordinal(&String::from_utf8_lossy(key))
        == Some(o)
}

/// Live documents once `add` and `tombstones` are committed on `st`.
fn live_after(st: &CatalogState, add: &[SegmentEntry], tombstones: &[(u64, RoaringBitmap)]) -> u64 {
    let new: HashMap<u64, &RoaringBitmap> = tombstones.iter().map(|(i, b)| (*i, b)).collect();
    let mut live = 0u64;
    for s in st.segments.iter().chain(add) {
        let mut dead = st.tombstones.get(&s.id).cloned().unwrap_or_default();
        if let Some(b) = new.get(&s.id) {
            dead |= *b;
        }
        dead.remove_range(s.docs..);
        live += s.docs as u64 - dead.len();
    }
    live
}
