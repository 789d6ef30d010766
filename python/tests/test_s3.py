"""A corpus on S3: a local S3 server (moto's, from PyPI) started by the test,
configured through the usual environment variables (``AWS_ENDPOINT_URL``,
``AWS_ALLOW_HTTP``, ...). ``corpusql copy`` both ways; every read command
gives the same answer on the S3 copy as on the local corpus; the Python
package and ``TokenDataset`` read it; ``torchrun`` ranks stream from it;
every write command commits a version to it; concurrent writers all land;
a killed writer leaves the previous version; a store that ignores
conditional writes is refused."""

from __future__ import annotations

import http.client
import http.server
import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Dict, List

import pytest

from conftest import BUCKET, cli, cli_json, cli_path

pytest.importorskip("moto.server", reason="moto[server] is in python/requirements-test.txt")
boto3 = pytest.importorskip("boto3")

import corpusql  # noqa: E402
from test_torch import check_torchrun, mix, ref  # noqa: E402,F401  (fixtures used by name)

@pytest.fixture(scope="module")
def real_on_s3(s3, real_corpus):
    uri = f"s3://{BUCKET}/real"
    r = json.loads(cli("copy", str(real_corpus), uri, "--json").stdout)
    assert r["transferred"] == r["files"]
    return uri


@pytest.fixture(scope="module")
def demo_on_s3(s3, demo_corpus):
    uri = f"s3://{BUCKET}/demo"
    cli("copy", str(demo_corpus), uri)
    return uri


def test_every_read_command_answers_on_s3_as_locally(real_corpus, real_on_s3, tmp_path):
    (tmp_path / "mix.toml").write_text(
        'seed = 3\ntokens = 300_000\nseq_len = 1024\ntokenizer = "bytes"\n'
        '[[component]]\nname = "fr"\nquery = "lang = fr"\nweight = 0.7\n'
        '[[component]]\nname = "code"\nquery = "lang = code"\nweight = 0.3\n'
    )
    m = str(tmp_path / "mix.toml")
    key = json.loads(cli("query", "*", "--fields", "id", "--limit", "1", corpus=real_corpus).stdout)["id"]
    for args in (
        ["count", "lang = fr and license_class in (public-domain, permissive)"],
        ["stats", "--by", "license_id,source", "--json"],
        ["query", "lang = de", "--fields", "id,license_id,bytes"],
        ["get", key],
        ["export", "source = debian-manpages", "-o", "-"],
        ["mix", "plan", m, "--json"],
        ["stream", m, "-o", "-"],
        ["stream", m, "-o", "-", "--rank", "1", "--world", "3"],
        ["trace", m, "--sequence", "7", "--offset", "100"],
    ):
        want = cli(*args, corpus=real_corpus).stdout
        got = cli(*args, corpus=real_on_s3).stdout
        assert want == got, f"{args}: the S3 copy answers differently"
        assert want, args
    assert cli("verify", corpus=real_on_s3).returncode == 0
    rep = cli_json("report", m, "--json", corpus=real_on_s3)
    assert rep["corpus"] == real_on_s3


def test_python_reads_s3(real_corpus, real_on_s3, tmp_path):
    local = corpusql.open(real_corpus)
    remote = corpusql.open(real_on_s3)
    for q in ("*", "lang = fr", "license_class = public-domain and bytes > 1000"):
        assert remote.count(q) == local.count(q), q
    back = tmp_path / "back"
    r = json.loads(cli("copy", real_on_s3, str(back), "--json").stdout)
    assert r["generation"] == corpusql.open(real_corpus).generation
    assert corpusql.open(back).count("lang = en") == local.count("lang = en")


def _versions(uri: str) -> List[str]:
    bucket, _, prefix = uri[len("s3://"):].partition("/")
    c = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    pages = c.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/versions/")
    return sorted(o["Key"] for p in pages for o in p.get("Contents", []))


def _docs(n: int, prefix: str, seed: int) -> List[Dict[str, str]]:
    langs = ["fr", "en", "de", "it"]
    licenses = ["cc-by-4.0", "pd", "mit", "cc-by-sa-4.0"]
    return [
        {
            "id": f"{prefix}{i}",
            "text": f"document {prefix}{i} " + " ".join(f"w{(i * 7 + j * seed) % 97}" for j in range(40)),
            "lang": langs[(i + seed) % 4],
            "license": licenses[(i * seed) % 4],
        }
        for i in range(n)
    ]


def _jsonl(path: Path, docs: List[Dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(d) + "\n" for d in docs))
    return path


def test_every_write_commits_a_version_on_s3(s3, tmp_path):
    """ingest (CLI and Python), delete, tag, compact and policy on an S3 URI
    do to it what they do to a local corpus, one version each."""
    uri = f"s3://{BUCKET}/writes"
    local = tmp_path / "local"
    a = _jsonl(tmp_path / "a.jsonl", _docs(300, "a-", 3))
    b = _docs(200, "b-", 5)
    steps = [
        lambda c: cli("ingest", "-q", str(a), corpus=c),
        lambda c: corpusql.ingest(c, records=b),
        lambda c: cli("delete", "lang = de", corpus=c),
        lambda c: corpusql.open(c).tag(["quality", "pii"]),
        lambda c: cli("compact", corpus=c),
        lambda c: cli("policy", "allow", "public-domain,permissive", corpus=c),
    ]
    for i, step in enumerate(steps, start=1):
        step(local)
        step(uri)
        assert len(_versions(uri)) == i, i
        for args in (["count", "*"], ["stats", "--by", "lang,license_id", "--json"], ["policy", "--json"]):
            assert cli(*args, corpus=local).stdout == cli(*args, corpus=uri).stdout, (i, args)
    ex = ["export", "*", "--fields", "id,lang,rps_doc_word_count", "-o", "-", "--override-policy"]
    assert sorted(cli(*ex, corpus=local).stdout.splitlines()) == sorted(cli(*ex, corpus=uri).stdout.splitlines())
    assert cli("verify", corpus=uri).returncode == 0


def test_concurrent_ingests_into_one_s3_corpus_all_land(s3, tmp_path):
    """Three ingests started at once into one S3 corpus: every one commits
    its own version (the losers of a race run again on top of the winner);
    no document is lost."""
    uri = f"s3://{BUCKET}/concurrent"
    files = [_jsonl(tmp_path / f"w{i}.jsonl", _docs(400 + 50 * i, f"w{i}-", i + 2)) for i in range(3)]
    procs = [
        subprocess.Popen(
            [str(cli_path()), "--corpus", uri, "ingest", "-q", "--threads", "1", str(f)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            # Two "nodes": two caches.
            env=dict(os.environ, CORPUSQL_CACHE=str(tmp_path / f"node{i % 2}")),
        )
        for i, f in enumerate(files)
    ]
    errs = [p.communicate()[1].decode() for p in procs]
    assert all(p.returncode == 0 for p in procs), errs
    assert cli("count", "*", corpus=uri).stdout.strip() == str(sum(400 + 50 * i for i in range(3))).encode()
    assert len(_versions(uri)) == 3
    for i in range(3):
        assert cli("count", f"id = w{i}-0", corpus=uri).stdout.strip() == b"1"


def test_a_writer_killed_mid_commit_leaves_the_previous_version(s3, tmp_path):
    """A writer killed while it uploads (after its first object is in the
    bucket, before its version): readers see the previous version, whole;
    the next write works."""
    uri = f"s3://{BUCKET}/killed"
    cli("ingest", "-q", str(_jsonl(tmp_path / "first.jsonl", _docs(100, "f-", 7))), corpus=uri)
    big = _jsonl(tmp_path / "big.jsonl", _docs(20000, "big-", 11))
    bucket, _, prefix = uri[len("s3://"):].partition("/")
    c = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])

    def objects() -> int:
        r = c.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/objects/")
        return r.get("KeyCount", 0)

    before = objects()
    p = subprocess.Popen(
        [str(cli_path()), "--corpus", uri, "ingest", "-q", str(big)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=dict(os.environ, CORPUSQL_CACHE=str(tmp_path / "writer")),
    )
    deadline = time.time() + 60
    while objects() == before and p.poll() is None:
        assert time.time() < deadline
        time.sleep(0.002)
    p.send_signal(signal.SIGKILL)
    p.wait()
    n = int(cli("count", "*", corpus=uri).stdout)
    if len(_versions(uri)) == 1:
        assert n == 100
    else:
        assert n == 20100, "a version holds all of a write or nothing"
    assert cli("verify", corpus=uri).returncode == 0
    cli("ingest", "-q", str(big), corpus=uri)
    assert cli("count", "*", corpus=uri).stdout.strip() == b"20100"


class _StripConditionalWrites(http.server.BaseHTTPRequestHandler):
    """A proxy in front of the S3 server that drops ``If-None-Match``: a
    store that ignores conditional writes."""

    upstream = ""
    protocol_version = "HTTP/1.1"

    def _forward(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        host, port = self.upstream.split(":")
        conn = http.client.HTTPConnection(host, int(port))
        headers = {k: v for k, v in self.headers.items() if k.lower() != "if-none-match"}
        conn.request(self.command, self.path, body=body, headers=headers)
        r = conn.getresponse()
        data = r.read()
        self.send_response(r.status)
        for k, v in r.getheaders():
            if k.lower() not in ("transfer-encoding", "content-length", "connection"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

    def log_message(self, *args) -> None:  # quiet
        pass


def test_a_store_that_ignores_conditional_writes_is_refused(s3, tmp_path):
    upstream = os.environ["AWS_ENDPOINT_URL"][len("http://"):]
    handler = type("H", (_StripConditionalWrites,), {"upstream": upstream})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        uri = f"s3://{BUCKET}/unconditional"
        env = dict(os.environ, AWS_ENDPOINT_URL=f"http://127.0.0.1:{server.server_address[1]}")
        f = _jsonl(tmp_path / "x.jsonl", _docs(10, "x-", 1))
        r = subprocess.run(
            [str(cli_path()), "--corpus", uri, "ingest", str(f)], capture_output=True, env=env
        )
        assert r.returncode != 0
        assert b"ignores conditional writes" in r.stderr, r.stderr
        assert _versions(uri) == []
        # Reads through it still work (the same bucket, a version written
        # through the real server).
        cli("ingest", "-q", str(f), corpus=uri)
        r = subprocess.run([str(cli_path()), "--corpus", uri, "count", "*"], capture_output=True, env=env)
        assert r.stdout.strip() == b"10", r.stderr
    finally:
        server.shutdown()


def test_torchrun_ranks_stream_from_s3(demo_corpus, demo_on_s3, mix, ref, tmp_path):
    """`torchrun --nproc_per_node 2` (gloo, CPU): each rank streams its own
    sequences from the S3 copy; together they are the world=1 stream of the
    local corpus."""
    check_torchrun(demo_on_s3, demo_corpus, mix, ref, tmp_path)
