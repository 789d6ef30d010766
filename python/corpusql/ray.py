"""Distributed ingest and tagging with Ray (``docs/scale.md``).

Both use corpusql's jobs: every Ray task stages its work in the corpus's
``jobs/`` folder (a folder all nodes mount: a parallel file system, NFS)
without committing, and the driver commits all of it in one generation.
A job that fails leaves no visible change: its staging is removed.

    import ray, corpusql.ray
    ds = ray.data.read_parquet("shards/")
    corpusql.ray.write(ds, "/lustre/corpus", text_field="content")
    corpusql.ray.tag("/lustre/corpus", taggers="language,quality,dedup", tasks=64)

``write`` goes through a Ray Data ``Datasink`` (:class:`CorpusqlDatasink`):
each write task turns its blocks into one Parquet file (pyarrow) and
ingests it as a task of an *open* job (one task per write task, numbered
by Ray's task index); ``on_write_complete`` on the driver commits exactly
the tasks that reported back; ``on_write_failed`` removes the staging.
Duplicate keys are decided in task order, as one ingest of the blocks in
dataset order would (``write`` asks Ray Data to preserve order).

``tag`` runs ``tasks`` Ray tasks, each tagging its contiguous share of the
segments with the per-document taggers; deduplication, which compares every
document with every other, runs once at the commit on the driver.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from typing import Any, Dict, Iterable, List, Optional, Union

import ray
from ray.data import Datasink
from ray.data.block import BlockAccessor

from . import _corpusql

PathLike = Union[str, "os.PathLike[str]"]

__all__ = ["CorpusqlDatasink", "write", "tag"]


def _use_assigned_cpus() -> None:
    """corpusql in a Ray task uses the CPUs Ray gave the task, not the node's."""
    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1)
    _corpusql.set_threads(max(1, int(round(cpus))))


def _new_job(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


class CorpusqlDatasink(Datasink):
    """Ray Data sink that ingests a dataset into the corpus at ``path`` in
    one commit. Options are ``corpusql.ingest``'s. After
    ``dataset.write_datasink(sink)``, ``sink.result`` is the commit's report
    (the shape of ``corpusql commit --json``)."""

    def __init__(
        self,
        path: PathLike,
        *,
        text_field: Optional[str] = None,
        id_field: Optional[str] = None,
        on_duplicate: str = "skip",
        license_field: Optional[str] = None,
        job: Optional[str] = None,
    ) -> None:
        self.path = _target(path)
        self.job = job or _new_job("ray-write")
        self.options = dict(
            on_duplicate=on_duplicate,
            text_field=text_field,
            id_field=id_field,
            license_field=license_field,
        )
        self.result: Optional[Dict[str, Any]] = None

    def on_write_start(self, schema=None) -> None:  # noqa: D102 (Ray's docs)
        if "://" not in self.path:
            os.makedirs(self.path, exist_ok=True)

    def write(self, blocks: Iterable[Any], ctx) -> Dict[str, Any]:
        """One write task: its blocks as one Parquet file, ingested as task
        ``ctx.task_idx`` of the job (staged, not committed)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        _use_assigned_cpus()
        tables = [BlockAccessor.for_block(b).to_arrow() for b in blocks]
        tables = [t for t in tables if t.num_rows > 0]
        index = int(ctx.task_idx)
        tmp = tempfile.mkdtemp(prefix="corpusql-ray-")
        try:
            inputs: List[str] = []
            if tables:
                table = pa.concat_tables(tables, promote_options="default")
                f = os.path.join(tmp, f"block-{index:05d}.parquet")
                pq.write_table(table, f, compression="zstd")
                inputs.append(f)
            else:
                # An empty task still reports: the driver commits the tasks
                # that finished, and this one finished with nothing.
                f = os.path.join(tmp, f"block-{index:05d}.jsonl")
                open(f, "wb").close()
                inputs.append(f)
            report = json.loads(
                _corpusql.ingest_task_json(
                    self.path, self.job, index, 0, inputs, **self.options
                )
            )
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        report["task"] = index
        report["node"] = ray.get_runtime_context().get_node_id()
        return report

    def on_write_complete(self, write_result) -> None:
        """On the driver: commits exactly the tasks that reported."""
        returns = getattr(write_result, "write_returns", write_result)
        tasks = sorted(r["task"] for r in returns)
        if not tasks:
            self.result = {"job": self.job, "tasks": 0, "generation": None, "ingested": 0}
            return
        self.result = json.loads(_corpusql.commit_job_json(self.path, self.job, tasks))

    def on_write_failed(self, error: Exception) -> None:
        """A task failed for good: nothing is committed, the staging goes."""
        _corpusql.abort_job(self.path, self.job)


def _target(path: PathLike) -> str:
    """A corpus URI as given (``s3://...``: every task and the commit reach
    the same store), a directory as an absolute path (tasks may run in
    other working directories)."""
    p = os.fspath(path)
    return p if "://" in p else os.path.abspath(p)


def write(dataset: "ray.data.Dataset", path: PathLike, **options: Any) -> Dict[str, Any]:
    """Ingests ``dataset`` into the corpus at ``path`` (created if absent) in
    one commit; returns the commit's report. ``options``: ``text_field``,
    ``id_field``, ``on_duplicate``, ``license_field``, ``job``."""
    ctx = ray.data.DataContext.get_current()
    keep = ctx.execution_options.preserve_order
    ctx.execution_options.preserve_order = True
    try:
        sink = CorpusqlDatasink(path, **options)
        dataset.write_datasink(sink)
    finally:
        ctx.execution_options.preserve_order = keep
    assert sink.result is not None
    return sink.result


@ray.remote(num_cpus=1, max_retries=2)
def _tag_task(path: str, job: str, index: int, count: int, taggers: str) -> Dict[str, Any]:
    _use_assigned_cpus()
    r = json.loads(_corpusql.tag_task_json(path, job, index, count, taggers))
    r["task"] = index
    r["node"] = ray.get_runtime_context().get_node_id()
    return r


def tag(
    path: PathLike,
    taggers: Union[str, List[str]] = "language,quality,pii",
    *,
    tasks: Optional[int] = None,
    job: Optional[str] = None,
) -> Dict[str, Any]:
    """Tags the corpus at ``path`` with ``tasks`` Ray tasks (default: the
    cluster's CPUs) and commits once; returns the commit's report, with
    ``task_reports`` (each task's outcome and the node it ran on). A task
    that fails for good leaves the corpus unchanged."""
    path = _target(path)
    if not isinstance(taggers, str):
        taggers = ",".join(taggers)
    n = tasks or max(1, int(ray.cluster_resources().get("CPU", 1)))
    job = job or _new_job("ray-tag")
    refs = [_tag_task.remote(path, job, i, n, taggers) for i in range(n)]
    try:
        reports = ray.get(refs)
    except BaseException:
        for r in refs:
            ray.cancel(r, force=True)
        _corpusql.abort_job(path, job)
        raise
    result = json.loads(_corpusql.commit_job_json(path, job))
    result["task_reports"] = sorted(reports, key=lambda r: r["task"])
    return result
