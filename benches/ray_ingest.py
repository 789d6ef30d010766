"""Distributed ingest and tagging throughput on a real Ray cluster of 1 and
2 nodes (one CPU each, started with `ray start` on this machine), same run:
the shared real corpus as 8 Parquet shards -> `corpusql.ray.write`, then
`corpusql.ray.tag(..., "language,quality", tasks=nodes)`. Prints each run
and the medians.

    python benches/ray_ingest.py [RUNS]    (the venv with corpusql and ray)
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.json as paj
import pyarrow.parquet as pq
import ray

import corpusql.ray

REPO = Path(__file__).resolve().parents[1]
SRC = REPO.parent / "shared" / "data" / "realcorpus-dev.jsonl.zst"
RAY = str(Path(sys.executable).parent / "ray")


def shards(out: Path, n: int = 8) -> int:
    with pa.input_stream(str(SRC), compression="zstd") as f:
        lines = list(io.BufferedReader(f))
    per = (len(lines) + n - 1) // n
    for i in range(n):
        t = paj.read_json(io.BytesIO(b"".join(lines[i * per:(i + 1) * per])),
                          read_options=paj.ReadOptions(block_size=256 << 20))
        pq.write_table(t, out / f"part-{i}.parquet")
    return sum(len(l) for l in lines)


def start(nodes: int) -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0")
    args = ["--num-cpus=1", "--object-store-memory=400000000", "--disable-usage-stats"]
    tmp = tempfile.mkdtemp(prefix="cqray", dir="/tmp")
    subprocess.run([RAY, "start", "--head", f"--port={port}", f"--temp-dir={tmp}",
                    "--include-dashboard=false", *args], check=True, env=env, capture_output=True)
    for _ in range(nodes - 1):
        subprocess.run([RAY, "start", f"--address=127.0.0.1:{port}", *args],
                       check=True, env=env, capture_output=True)
    ray.init(address=f"127.0.0.1:{port}", log_to_driver=False)
    while sum(1 for n in ray.nodes() if n["Alive"]) < nodes:
        time.sleep(0.2)
    return port


def stop() -> None:
    ray.shutdown()
    subprocess.run([RAY, "stop", "--force"], capture_output=True)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    work = Path(tempfile.mkdtemp(prefix="cq-ray-bench"))
    try:
        sh = work / "shards"
        sh.mkdir()
        nbytes = shards(sh)
        results = {}
        for nodes in (1, 2):
            start(nodes)
            try:
                w, t = [], []
                for r in range(runs):
                    dest = work / f"c-{nodes}-{r}"
                    s = time.perf_counter()
                    rep = corpusql.ray.write(ray.data.read_parquet(str(sh)).repartition(8), dest)
                    w.append(time.perf_counter() - s)
                    s = time.perf_counter()
                    corpusql.ray.tag(dest, "language,quality", tasks=nodes)
                    t.append(time.perf_counter() - s)
                    print(f"{nodes} node(s), run {r + 1}: write {w[-1]:.2f} s "
                          f"({rep['ingested']} docs), tag {t[-1]:.2f} s", flush=True)
                    shutil.rmtree(dest)
                results[nodes] = (statistics.median(w), statistics.median(t))
            finally:
                stop()
        mb = nbytes / 2**20
        for nodes, (w, t) in results.items():
            print(f"median, {nodes} node(s): write {w:.2f} s ({mb / w:.1f} MiB/s of JSONL), "
                  f"tag {t:.2f} s ({mb / t:.1f} MiB/s)")
        print(json.dumps({str(k): v for k, v in results.items()}))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
