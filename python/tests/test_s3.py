"""A corpus on S3: a local S3 server (moto's, from PyPI) started by the test,
configured through the usual environment variables (``AWS_ENDPOINT_URL``,
``AWS_ALLOW_HTTP``, ...). ``corpusql copy`` both ways; every read command
gives the same answer on the S3 copy as on the local corpus; the Python
package and ``TokenDataset`` read it; ``torchrun`` ranks stream from it;
writes to it are refused."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from conftest import cli, cli_json

moto_server = pytest.importorskip("moto.server", reason="moto[server] is in python/requirements-test.txt")
boto3 = pytest.importorskip("boto3")

import corpusql  # noqa: E402
from test_torch import check_torchrun, mix, ref  # noqa: E402,F401  (fixtures used by name)

BUCKET = "corpora"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """A moto S3 server on a free port, a bucket, and the environment that
    points corpusql (the CLI and the extension) at it."""
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


def test_writes_to_s3_are_refused(s3, real_on_s3, tmp_path):
    f = tmp_path / "x.jsonl"
    f.write_text('{"id": "x", "text": "x"}\n')
    for args in (["ingest", str(f)], ["delete", "lang = fr"], ["compact"], ["tag", "--taggers", "pii"]):
        r = cli(*args, corpus=real_on_s3, check=False)
        assert r.returncode != 0, args
        assert b"corpusql copy" in r.stderr, (args, r.stderr)
    with pytest.raises(corpusql.CorpusqlError, match="corpusql copy"):
        corpusql.ingest(real_on_s3, [str(f)])


def test_torchrun_ranks_stream_from_s3(demo_corpus, demo_on_s3, mix, ref, tmp_path):
    """`torchrun --nproc_per_node 2` (gloo, CPU): each rank streams its own
    sequences from the S3 copy; together they are the world=1 stream of the
    local corpus."""
    check_torchrun(demo_on_s3, demo_corpus, mix, ref, tmp_path)
