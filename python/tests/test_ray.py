"""corpusql on a real two-node Ray cluster (``ray start --head`` plus a second
``ray start --address``, one CPU each, on this machine): distributed ingest
through the Ray Data sink and distributed tagging equal a local ingest and a
local tagging run, also into and on a corpus on S3; a job whose task fails
leaves no visible change."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

import pytest

from conftest import SHARED, cli, cli_json

ray = pytest.importorskip("ray", reason="ray is in python/requirements-test.txt")
import corpusql  # noqa: E402
import corpusql.ray  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.json as paj  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

RAY = str(Path(sys.executable).parent / "ray")
DOCS = 4000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster():
    """A head node and a worker node, one CPU each, started by the CLI."""
    port = _free_port()
    # Ray's socket paths must stay short: a temp dir of its own under /tmp.
    tmp = tempfile.mkdtemp(prefix="cqray", dir="/tmp")
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0")
    common = ["--num-cpus=1", "--object-store-memory=200000000", "--disable-usage-stats"]
    subprocess.run(
        [RAY, "start", "--head", f"--port={port}", f"--temp-dir={tmp}",
         "--include-dashboard=false", *common],
        check=True, env=env, capture_output=True,
    )
    try:
        subprocess.run(
            [RAY, "start", f"--address=127.0.0.1:{port}", *common],
            check=True, env=env, capture_output=True,
        )
        ray.init(address=f"127.0.0.1:{port}", log_to_driver=False)
        deadline = time.time() + 60
        while sum(1 for n in ray.nodes() if n["Alive"]) < 2:
            assert time.time() < deadline, "the second Ray node did not join"
            time.sleep(0.5)
        yield
    finally:
        ray.shutdown()
        subprocess.run([RAY, "stop", "--force"], env=env, capture_output=True)


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    """The first DOCS documents of the shared corpus as 4 Parquet shards."""
    src = SHARED / "realcorpus-dev.jsonl.zst"
    if not src.exists():
        pytest.skip(f"shared data absent ({src})")
    out = tmp_path_factory.mktemp("shards")
    lines: List[bytes] = []
    with pa.input_stream(str(src), compression="zstd") as f:
        for line in io.BufferedReader(f):
            lines.append(line)
            if len(lines) == DOCS:
                break
    per = DOCS // 4
    for i in range(4):
        chunk = b"".join(lines[i * per:(i + 1) * per])
        table = paj.read_json(io.BytesIO(chunk), read_options=paj.ReadOptions(block_size=256 << 20))
        pq.write_table(table, out / f"part-{i}.parquet")
    return out


def _facets(corpus: Path) -> Dict[str, object]:
    return {
        by: cli_json("stats", "--by", by, "--json", corpus=corpus)
        for by in ("license_id", "lang", "source")
    }


def _texts(corpus: Path) -> Dict[str, str]:
    out = cli("export", "*", "--fields", "id,text", "-o", "-", corpus=corpus).stdout
    return {r["id"]: r["text"] for r in map(json.loads, out.splitlines())}


def test_distributed_ingest_equals_a_local_ingest(cluster, shards: Path, tmp_path: Path):
    local = tmp_path / "local"
    cli("ingest", str(shards), "--quiet", corpus=local)
    dist = tmp_path / "dist"
    # Four blocks, four write tasks, spread over the two nodes.
    ds = ray.data.read_parquet(str(shards)).repartition(4)
    r = corpusql.ray.write(ds, dist)
    assert r["kind"] == "ingest" and r["generation"] == 1, r
    assert r["tasks"] == 4
    assert r["ingested"] == DOCS
    assert not (dist / "jobs").exists()
    assert _facets(dist) == _facets(local)
    assert _texts(dist) == _texts(local)
    assert cli("verify", corpus=dist).returncode == 0


def test_distributed_ingest_into_s3_equals_a_local_ingest(cluster, s3, shards: Path, tmp_path: Path):
    """The Ray sink writing straight to S3 (moto's server): each write task
    stages its blocks at the URI, the driver commits them as one version;
    then a distributed tagging of the S3 corpus."""
    from conftest import BUCKET

    local = tmp_path / "local"
    cli("ingest", str(shards), "--quiet", corpus=local)
    uri = f"s3://{BUCKET}/ray"
    # The workers reach the S3 server through the job's environment.
    address = ray.get_runtime_context().gcs_address
    ray.shutdown()
    ray.init(address=address, log_to_driver=False, runtime_env={"env_vars": dict(s3)})
    try:
        ds = ray.data.read_parquet(str(shards)).repartition(4)
        r = corpusql.ray.write(ds, uri)
        assert r["tasks"] == 4 and r["ingested"] == DOCS, r
        assert _facets(uri) == _facets(local)
        assert _texts(uri) == _texts(local)
        t = corpusql.ray.tag(uri, "quality", tasks=2)
        assert t["kind"] == "tag", t
    finally:
        ray.shutdown()
        ray.init(address=address, log_to_driver=False)
    cli("tag", "--taggers", "quality", "-q", corpus=local)
    q = ("export", "*", "--fields", "id,rps_doc_word_count,c4_has_lorem_ipsum", "-o", "-")
    assert sorted(cli(*q, corpus=local).stdout.splitlines()) == sorted(cli(*q, corpus=uri).stdout.splitlines())
    assert cli("verify", corpus=uri).returncode == 0


def test_distributed_tagging_equals_local_tagging(cluster, shards: Path, tmp_path: Path):
    local = tmp_path / "local"
    dist = tmp_path / "dist"
    for d in (local, dist):
        cli("ingest", str(shards), "--quiet", "--segment-mb", "2", corpus=d)
    taggers = "language,quality,dedup"
    cli("tag", "--taggers", taggers, "--quiet", corpus=local)
    r = corpusql.ray.tag(dist, taggers, tasks=2)
    assert r["kind"] == "tag" and r["generation"] == 2, r
    nodes = {t["node"] for t in r["task_reports"]}
    assert len(r["task_reports"]) == 2
    dedup = [t for t in r["taggers"] if t["tagger"] == "dedup"]
    assert dedup and dedup[0]["docs"] == DOCS
    fields = "id,lang_detected,lang_score,rps_doc_word_count,is_dup,dup_of,near_dup_cluster,near_dup_rep"
    a = cli("export", "*", "--fields", fields, "-o", "-", corpus=local).stdout.splitlines()
    b = cli("export", "*", "--fields", fields, "-o", "-", corpus=dist).stdout.splitlines()
    assert sorted(a) == sorted(b)
    assert cli("count", "is_dup = true", corpus=dist).stdout.strip() != b"0"
    # Both nodes can run tasks (the scheduler may still put both on one).
    assert 1 <= len(nodes) <= 2


class _Boom(Exception):
    pass


def test_a_failed_task_leaves_no_visible_change(cluster, shards: Path, tmp_path: Path):
    dist = tmp_path / "dist"
    cli("ingest", str(shards / "part-0.parquet"), "--quiet", corpus=dist)
    before = cli_json("stats", "--json", corpus=dist)
    gen = cli_json("log", "--json", corpus=dist)

    def explode(batch):
        if any(str(i).endswith("7") for i in batch["id"]):
            raise _Boom("a task dies mid-job")
        return batch

    ds = ray.data.read_parquet(str(shards)).repartition(4).map_batches(explode, max_retries=0)
    with pytest.raises(Exception):
        corpusql.ray.write(ds, dist)
    assert cli_json("stats", "--json", corpus=dist) == before
    assert cli_json("log", "--json", corpus=dist) == gen
    assert not (dist / "jobs").exists() or not any((dist / "jobs").iterdir())
    assert cli("verify", corpus=dist).returncode == 0
