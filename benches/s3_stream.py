"""Reading a corpus on S3 (a local moto server, started here) vs the local
corpus, same run: the shared real corpus copied to S3, then a
bytes-tokenizer mixture of 200M tokens (about one pass) streamed to
/dev/null with a cold node cache (segments without their blocks, blocks
fetched as read: the default), a cold cache fetching whole files
(CORPUSQL_FETCH=whole), a warm cache (nothing fetched), and locally; and a
`count` on a cold cache (no block needed), lazily and whole.
Prints seconds, requests and bytes fetched (per GB of tokens streamed).

    python benches/s3_stream.py [RUNS]     (CORPUSQL=target/release/corpusql)
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3
from moto.server import ThreadedMotoServer

REPO = Path(__file__).resolve().parents[1]
BIN = os.environ.get("CORPUSQL", str(REPO / "target" / "release" / "corpusql"))
SRC = REPO.parent / "shared" / "data" / "realcorpus-dev.jsonl.zst"
TOKENS = 200_000_000
MIX = f"""seed = 1
tokens = {TOKENS}
seq_len = 2048
tokenizer = "bytes"
[[component]]
name = "fr"
query = "lang = fr"
weight = 0.5
[[component]]
name = "rest"
query = "not lang = fr"
weight = 0.5
"""


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    work = Path(tempfile.mkdtemp(prefix="cq-s3-bench"))
    env = dict(os.environ, AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}", AWS_ALLOW_HTTP="true",
               AWS_ACCESS_KEY_ID="t", AWS_SECRET_ACCESS_KEY="t", AWS_REGION="us-east-1",
               CORPUSQL_CACHE=str(work / "cache"))
    try:
        boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                     aws_access_key_id="t", aws_secret_access_key="t").create_bucket(Bucket="bench")
        local = work / "local"
        subprocess.run([BIN, "-C", str(local), "ingest", str(SRC), "-q"], check=True, env=env,
                       capture_output=True)
        subprocess.run([BIN, "copy", str(local), "s3://bench/real"], check=True, env=env,
                       capture_output=True)
        (work / "mix.toml").write_text(MIX)

        def run(corpus: str, *args: str, whole: bool = False):
            e = dict(env, CORPUSQL_FETCH="whole") if whole else env
            s = time.perf_counter()
            r = subprocess.run([BIN, "-C", corpus, *args], env=e, capture_output=True, text=True)
            assert r.returncode == 0, r.stderr
            t = time.perf_counter() - s
            req, mib = 0, 0.0
            m = re.search(r"fetched (\d+) files \(([\d.]+) MiB, (\d+) requests\)", r.stderr)
            if m:
                req, mib = int(m.group(3)), float(m.group(2))
            m = re.search(r"fetched blocks: (\d+) range requests \(([\d.]+) MiB\)", r.stderr)
            if m:
                req, mib = req + int(m.group(1)), mib + float(m.group(2))
            return t, (req, mib)

        stream = ("stream", str(work / "mix.toml"), "-o", "/dev/null")
        count = ("count", "lang = fr and license_class = public-domain")
        modes = ("stream cold", "stream cold whole", "stream warm", "stream local",
                 "count cold", "count cold whole")
        res = {k: [] for k in modes}
        fetched = {}

        def record(k, tf):
            res[k].append(tf[0])
            fetched[k] = tf[1]

        for r in range(runs):
            shutil.rmtree(work / "cache", ignore_errors=True)
            record("stream cold", run("s3://bench/real", *stream))
            record("stream warm", run("s3://bench/real", *stream))
            shutil.rmtree(work / "cache", ignore_errors=True)
            record("stream cold whole", run("s3://bench/real", *stream, whole=True))
            record("stream local", run(str(local), *stream))
            shutil.rmtree(work / "cache", ignore_errors=True)
            record("count cold", run("s3://bench/real", *count))
            shutil.rmtree(work / "cache", ignore_errors=True)
            record("count cold whole", run("s3://bench/real", *count, whole=True))
            print(f"run {r + 1}: " + ", ".join(f"{k} {res[k][-1]:.2f} s" for k in modes), flush=True)
        # Writes: one ingest of the corpus into a new S3 prefix vs a new
        # local directory; two concurrent ingests of its halves (different
        # keys) into one new prefix (one of them loses the first race and
        # runs again on top of the other's version).
        halves = [work / "half-a.jsonl", work / "half-b.jsonl"]
        subprocess.run(f"zstdcat {SRC} | head -n 17600 > {halves[0]}; "
                       f"zstdcat {SRC} | tail -n +17601 > {halves[1]}", shell=True, check=True)
        writes = {"ingest local": [], "ingest s3": [], "2 concurrent ingests s3": []}
        for r in range(runs):
            shutil.rmtree(work / "w", ignore_errors=True)
            s = time.perf_counter()
            subprocess.run([BIN, "-C", str(work / "w"), "ingest", "-q", str(SRC)], env=env,
                           check=True, capture_output=True)
            writes["ingest local"].append(time.perf_counter() - s)
            s = time.perf_counter()
            subprocess.run([BIN, "-C", f"s3://bench/w{r}", "ingest", "-q", str(SRC)], env=env,
                           check=True, capture_output=True)
            writes["ingest s3"].append(time.perf_counter() - s)
            s = time.perf_counter()
            ps = [subprocess.Popen([BIN, "-C", f"s3://bench/c{r}", "ingest", "-q", str(h)], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                  for h in halves]
            errs = [p.communicate()[1] for p in ps]
            assert all(p.returncode == 0 for p in ps), errs
            writes["2 concurrent ingests s3"].append(time.perf_counter() - s)
            retried = sum("running ingest again" in e for e in errs)
            n = subprocess.run([BIN, "-C", f"s3://bench/c{r}", "count", "*"], env=env,
                               capture_output=True, text=True, check=True).stdout.strip()
            print(f"writes run {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in writes.items())
                  + f"; {retried} writer ran again; {n} documents", flush=True)
        for k, v in writes.items():
            print(f"median {k}: {statistics.median(v):.2f} s")
        gb = TOKENS * 2 / 1e9  # u16 tokens
        for k in modes:
            med = statistics.median(res[k])
            req, mib = fetched.get(k, (0, 0.0))
            line = f"median {k}: {med:.3f} s; {req} requests, {mib:.1f} MiB fetched"
            if k.startswith("stream"):
                line += (f"; {TOKENS / med / 1e6:.0f} M tokens/s, {req / gb:.0f} requests and "
                         f"{mib / 1024 / gb:.3f} GiB per GB of tokens")
            print(line)
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
