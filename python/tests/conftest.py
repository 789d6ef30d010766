"""Fixtures shared by the Python tests: the CLI binary (to compare with),
a generated demo corpus, and the shared real corpus (../shared/data) when
present. Corpora are built once per session with the CLI itself."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from pathlib import Path
from typing import List

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"


def cli_path() -> Path:
    p = Path(os.environ.get("CORPUSQL_BIN", REPO / "target" / "release" / "corpusql"))
    if not p.exists():
        pytest.exit(f"no corpusql binary at {p} (run `cargo build --release`, or set CORPUSQL_BIN)")
    return p


def cli(*args: str, corpus: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Runs the CLI; returns the completed process (stdout as bytes)."""
    cmd: List[str] = [str(cli_path())]
    if corpus is not None:
        cmd += ["--corpus", str(corpus)]
    cmd += list(args)
    r = subprocess.run(cmd, capture_output=True)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.decode(errors='replace')}")
    return r


def cli_json(*args: str, corpus: Path) -> object:
    return json.loads(cli(*args, corpus=corpus).stdout)


@pytest.fixture(scope="session")
def demo_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated demo corpus (5,000 documents, several languages and
    license classes, tagged). It has no policy: `policy_corpus` adds one."""
    d = tmp_path_factory.mktemp("demo") / "corpus"
    cli("demo", "--dir", str(d))
    return d


# The license classes `policy_corpus` allows; the others are held back.
POLICY_ALLOW = ("public-domain", "permissive", "attribution")


@pytest.fixture(scope="session")
def policy_corpus(demo_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the demo corpus with a policy that allows only
    `POLICY_ALLOW` (share-alike, copyleft, non-commercial, ... held back)."""
    d = tmp_path_factory.mktemp("policy") / "corpus"
    shutil.copytree(demo_corpus, d)
    cli("policy", "allow", ",".join(POLICY_ALLOW), "--note", "tests", corpus=d)
    return d


@pytest.fixture(scope="session")
def real_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared real corpus (35k documents, 55 languages and code)."""
    src = SHARED / "realcorpus-dev.jsonl.zst"
    if not src.exists():
        pytest.skip(f"shared data absent ({src})")
    d = tmp_path_factory.mktemp("real") / "corpus"
    cli("ingest", str(src), "--quiet", corpus=d)
    return d


@pytest.fixture()
def demo_copy(demo_corpus: Path, tmp_path: Path) -> Path:
    """A private copy of the demo corpus, for tests that write."""
    d = tmp_path / "corpus"
    shutil.copytree(demo_corpus, d)
    return d


# A local S3 server for the object-storage tests (test_s3.py, test_ray.py).
BUCKET = "corpora"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def s3(tmp_path_factory):
    """A moto S3 server on a free port, a bucket, and the environment that
    points corpusql (the CLI and the extension) at it."""
    moto_server = pytest.importorskip("moto.server", reason="moto[server] is in python/requirements-test.txt")
    boto3 = pytest.importorskip("boto3")
    port = _free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ALLOW_HTTP": "true",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": "us-east-1",
        "CORPUSQL_CACHE": str(tmp_path_factory.mktemp("node-cache")),
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"]).create_bucket(Bucket=BUCKET)
        yield env
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        server.stop()
