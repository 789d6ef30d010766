#!/usr/bin/env python3
"""Tokens/s delivered to a training loop, and peak memory, of corpusql's
PyTorch `TokenDataset` against the `corpusql stream` CLI and the data
loaders of MosaicML `streaming` and LitData. A benchmark, not a test.

Usage (from the repository root, with the venv of benches/python/README.md):

    /tmp/venv-pybench/bin/python benches/python/loader_bench.py            # 100k docs, 3 runs (~6 min + ~3 min setup once)
    /tmp/venv-pybench/bin/python benches/python/loader_bench.py --runs 5   # what README.md's table is
    /tmp/venv-pybench/bin/python benches/python/loader_bench.py --quick    # 20k docs, 1 run, 5M-token mix
    /tmp/venv-pybench/bin/python benches/python/loader_bench.py --profile  # where TokenDataset's time goes
    /tmp/venv-pybench/bin/python benches/python/loader_bench.py --render RESULTS.json   # table again

Options: --data DIR (default /tmp/pybench: corpus, stores, results), --runs N,
--docs N, --batch-size B (16), --configs cli,clihot,td0,td2,tdb0,tdb2,mosaic0,mosaic2,litdata0,litdata2,
--workloads w4,w5, --corpusql BIN (default target/release/corpusql), --peers-dir
(default ../shared/peers next to the repository: gen_corpus.py, peers.py, mix.toml).

Workloads (../shared/peers/README.md): W4 = every text of
`lang=fr and license in (cc-by-4.0, pd)` as byte tokens (0-255, EOS 256), rows
of 2048; W5 = the mixture mix.toml (50M tokens, 60/30/10 % fr/en/code).

Configurations, each measured in a fresh process (runs are the outer loop):
  cli        corpusql stream SOURCE --format u16 -o /dev/null --report R
  clihot     the same, run once untimed just before: the reference for "vs CLI"
             (on this VM a native process that starts after a pause pays up to
             0.4 s of system time faulting fresh memory; the Python configurations
             pay that during their imports, outside the timed loop)
  td0, td2   corpusql.torch.TokenDataset(batch_size=B) in DataLoader(batch_size=B, num_workers=0|2)
  tdb0, tdb2 TokenDataset(batch_size=B, batched=True) in DataLoader(batch_size=None, num_workers=0|2)
  mosaic0/2  streaming.StreamingDataset(batch_size=B) in DataLoader(batch_size=B, num_workers=0|2)
  litdata0/2 litdata.StreamingDataset(item_loader=TokensLoader(2048)) in StreamingDataLoader(B, 0|2)

The training loop: for every batch, take its token tensor, make it a LongTensor
[B, 2048] if it is not one, add its sum to a checksum and count its tokens; W5
stops at the budget. tokens/s = tokens / loop time, the loop running from just
before the dataset is built (after imports; the corpus is opened, the indexes
read and the DataLoader workers started inside it) to the last batch. For the
CLI it is tokens / process wall time. Peak memory: the parent polls the process
tree every 10 ms (children re-scanned every 50 ms) and keeps the largest sum of
VmRSS over main + workers (at least the main process's VmHWM, which makes it
exact for the single-process CLI); also the sum of PSS (shared pages counted
once, split among the processes; sampled every 50 ms) and of RssAnon (heap and
other anonymous memory: RSS less mapped files, which are page cache the kernel
can drop).

Before each process the harness syncs (the previous process's decompressed
files are written back) and reads the configuration's store into the page
cache: every configuration reads a warm, compressed-at-rest store.

Peer ingest (not timed; their "convert the corpus to our format", as peers.py):
the peers read pre-tokenized, pre-packed rows of 2048 uint16 tokens, stored
zstd-compressed (MDS `ndarray:uint16:2048` column; LitData `optimize` with
TokensLoader), made from the JSONL by the peers' own code. W4: the Q1 documents
in file order. W5: one store per component, holding all of that language's
documents in a seeded order; the mixture is made at load time by the peer's
native mechanism (Mosaic `Stream(choose=rows)`, shuffled; LitData
`CombinedStreamingDataset(weights)`). corpusql instead stores text and
queries, tokenizes and packs while it loads.
"""

import argparse
import datetime
import glob
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
Q1 = "lang=fr and license in (cc-by-4.0, pd)"
SEQ, EOS, SEED = 2048, 256, 1234
MIX = {"fr": 0.6, "en": 0.3, "code": 0.1}
ALL_CONFIGS = ["cli", "clihot", "td0", "td2", "tdb0", "tdb2", "mosaic0", "mosaic2", "litdata0", "litdata2"]
PEERS = ("mosaic", "litdata")


# ------------------------------------------------------------------ helpers
def log(*a):
    print(*a, file=sys.stderr, flush=True)


def tag_of(docs):
    return f"{docs // 1000}k" if docs % 1000 == 0 else str(docs)


def mix_budget(mix_path):
    import tomllib
    with open(mix_path, "rb") as f:
        return int(tomllib.load(f)["tokens"])


def pack(blist):
    """Byte tokens of the docs, EOS after each, cut into full rows (as peers.py Packer)."""
    t = np.frombuffer(b"\xff".join(blist) + b"\xff", np.uint8).astype(np.uint16)
    t[t == 255] = EOS   # 0xFF never occurs in UTF-8
    n = len(t) // SEQ
    return t[: n * SEQ].reshape(n, SEQ)


def _lit_rows(item):
    """LitData optimize fn: rows [a, b) of an .npy of packed rows, one row per item."""
    path, a, b = item
    rows = np.load(path, mmap_mode="r")
    for i in range(a, b):
        yield np.array(rows[i])


def paths(a):
    d = os.path.join(a.data, tag_of(a.docs))
    return {
        "dir": d,
        "cq": os.path.join(d, "cq"),
        "mix": a.mix_path,
        "meta": os.path.join(d, "prepared.json"),
        "mosaic": os.path.join(d, "mosaic"),
        "litdata": os.path.join(d, "litdata"),        # pristine stores
        "litrun": os.path.join(d, "litdata-run"),     # per-run hard-linked copies
    }


# ------------------------------------------------------------------ prepare (not timed)
def prepare(a):
    P = paths(a)
    os.makedirs(P["dir"], exist_ok=True)
    if os.path.exists(P["meta"]) and not a.reprepare:
        meta = json.load(open(P["meta"]))
        if meta.get("mix_budget") == mix_budget(a.mix_path):
            return meta
    sys.path.insert(0, a.peers_dir)
    import peers  # noqa: E402  (peers.py: q1, iter_jsonl)

    # corpus
    if not os.path.exists(a.corpus):
        log(f"generating {a.corpus}")
        subprocess.run([sys.executable, os.path.join(a.peers_dir, "gen_corpus.py"), "--docs", str(a.docs),
                        "--seed", "1", "--out", a.corpus], check=True)
    # corpusql
    shutil.rmtree(P["cq"], ignore_errors=True)
    log("corpusql ingest")
    subprocess.run([a.corpusql, "-C", P["cq"], "ingest", a.corpus], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    q1_count = int(subprocess.run([a.corpusql, "-C", P["cq"], "count", Q1], check=True,
                                  capture_output=True, text=True).stdout.split()[-1])
    # peers' rows, from the JSONL with peers.py's code
    log("packing rows for the peers")
    w4_docs, by_lang = [], {l: [] for l in MIX}
    for d in peers.iter_jsonl(a.corpus):
        if peers.q1(d):
            w4_docs.append(d["text"].encode())
        if d["lang"] in by_lang:
            by_lang[d["lang"]].append(d["text"].encode())
    meta = {"docs": a.docs, "q1_docs": len(w4_docs), "q1_count_corpusql": q1_count,
            "mix_budget": mix_budget(a.mix_path), "w5": {}}
    rows_dir = os.path.join(P["dir"], "rows")
    os.makedirs(rows_dir, exist_ok=True)
    sets = {"w4": pack(w4_docs)}
    for i, (l, docs) in enumerate(by_lang.items()):
        perm = np.random.default_rng(SEED + i).permutation(len(docs))
        sets["w5-" + l] = pack([docs[j] for j in perm])
    del w4_docs, by_lang
    for k, rows in sets.items():
        np.save(os.path.join(rows_dir, k + ".npy"), rows)
        info = {"rows": int(rows.shape[0]), "checksum": int(rows.sum(dtype=np.uint64))}
        if k == "w4":
            meta["w4"] = info
        else:
            meta["w5"][k[3:]] = info
    # MosaicML MDS
    log("MosaicML MDSWriter")
    from streaming import MDSWriter
    shutil.rmtree(P["mosaic"], ignore_errors=True)
    for k, rows in sets.items():
        with MDSWriter(out=os.path.join(P["mosaic"], k), columns={"tokens": f"ndarray:uint16:{SEQ}"},
                       compression="zstd") as w:
            for r in rows:
                w.write({"tokens": r})
    del sets
    # LitData optimize (TokensLoader)
    log("LitData optimize")
    import litdata
    from litdata import TokensLoader
    shutil.rmtree(P["litdata"], ignore_errors=True)
    for k in ["w4"] + ["w5-" + l for l in MIX]:
        npy = os.path.join(rows_dir, k + ".npy")
        n = meta["w4"]["rows"] if k == "w4" else meta["w5"][k[3:]]["rows"]
        step = max(1, -(-n // 32))
        litdata.optimize(fn=_lit_rows, inputs=[(npy, i, min(n, i + step)) for i in range(0, n, step)],
                         output_dir=os.path.join(P["litdata"], k), chunk_bytes="64MB", compression="zstd",
                         compression_level="chunk", num_workers=2, item_loader=TokensLoader(),
                         mode="overwrite", verbose=False)
    sizes = {}
    for name in ("cq", "mosaic", "litdata"):
        sizes[name] = int(subprocess.run(["du", "-sb", P[name]], capture_output=True, text=True).stdout.split()[0])
    meta["store_bytes"] = sizes
    json.dump(meta, open(P["meta"], "w"), indent=1)
    return meta


# ------------------------------------------------------------------ the measured child process
class Loop:
    """The training loop's side: every batch becomes a LongTensor [B, SEQ] and
    every token is summed."""

    def __init__(self, torch, budget_rows):
        self.torch = torch
        self.budget = budget_rows
        self.rows = self.tokens = self.checksum = self.batches = 0
        self.converted = 0

    def add(self, batch):
        torch = self.torch
        if isinstance(batch, dict):
            batch = batch["input_ids"] if "input_ids" in batch else batch["tokens"]
        if not (isinstance(batch, torch.Tensor) and batch.dtype == torch.int64):
            batch = torch.as_tensor(batch).long()
            self.converted += 1
        assert batch.dim() == 2 and batch.shape[1] == SEQ, tuple(batch.shape)
        if self.budget is not None and self.rows + batch.shape[0] > self.budget:
            batch = batch[: self.budget - self.rows]
        self.checksum += int(batch.sum())
        self.rows += batch.shape[0]
        self.tokens += batch.numel()
        self.batches += 1
        return self.budget is not None and self.rows >= self.budget


def child(spec):
    t_start = time.perf_counter()
    import warnings
    warnings.filterwarnings("ignore")
    import logging
    logging.disable(logging.WARNING)
    import torch
    from torch.utils.data import DataLoader
    cfg, w, B = spec["cfg"], spec["workload"], spec["batch_size"]
    kind, nw = cfg.rstrip("0123456789"), int(cfg[len(cfg.rstrip("0123456789")):])
    P = spec["paths"]
    budget = spec["budget_rows"]
    if kind in ("td", "tdb"):
        from corpusql.torch import TokenDataset
        t_imp = time.perf_counter()
        t0 = time.perf_counter()
        batched = kind == "tdb"
        ds = TokenDataset(P["cq"], Q1 if w == "w4" else P["mix"], seq_len=SEQ, batch_size=B, batched=batched)
        dl = DataLoader(ds, batch_size=None if batched else B, num_workers=nw)
    elif kind == "mosaic":
        from streaming import Stream, StreamingDataset
        from streaming.base.util import clean_stale_shared_memory
        clean_stale_shared_memory()
        # read compressed-at-rest shards: drop what an earlier process decompressed
        for f in glob.glob(os.path.join(P["mosaic"], "*", "shard.*.mds")):
            os.remove(f)
        t_imp = time.perf_counter()
        t0 = time.perf_counter()
        if w == "w4":
            ds = StreamingDataset(local=os.path.join(P["mosaic"], "w4"), batch_size=B, shuffle=False)
        else:
            n = {l: int(round(s * budget)) for l, s in MIX.items()}
            n["fr"] += budget - sum(n.values())
            streams = [Stream(local=os.path.join(P["mosaic"], "w5-" + l), choose=n[l]) for l in MIX]
            ds = StreamingDataset(streams=streams, batch_size=B, shuffle=True, shuffle_seed=SEED)
        dl = DataLoader(ds, batch_size=B, num_workers=nw)
    elif kind == "litdata":
        from litdata import CombinedStreamingDataset, StreamingDataLoader, StreamingDataset, TokensLoader
        # litdata decompresses chunks next to a local store and deletes the .zstd.bin:
        # give every process a fresh hard-linked copy of the compressed store
        shutil.rmtree(P["litrun"], ignore_errors=True)
        subprocess.run(["cp", "-al", P["litdata"], P["litrun"]], check=True)
        t_imp = time.perf_counter()
        t0 = time.perf_counter()
        if w == "w4":
            ds = StreamingDataset(os.path.join(P["litrun"], "w4"), item_loader=TokensLoader(block_size=SEQ),
                                  shuffle=False)
        else:
            parts = [StreamingDataset(os.path.join(P["litrun"], "w5-" + l), item_loader=TokensLoader(block_size=SEQ),
                                      shuffle=False) for l in MIX]
            ds = CombinedStreamingDataset(parts, seed=SEED, weights=list(MIX.values()), iterate_over_all=False)
        dl = StreamingDataLoader(ds, batch_size=B, num_workers=nw)
    else:
        raise SystemExit(f"unknown config {cfg}")
    import_rss_kb = _status("self")[0]   # this process after the imports: torch & co, no data yet
    loop = Loop(torch, budget)
    first = None
    for batch in dl:
        if first is None:
            first = time.perf_counter() - t0
        if loop.add(batch):
            break
    t1 = time.perf_counter()
    out = {"rows": loop.rows, "tokens": loop.tokens, "checksum": loop.checksum, "batches": loop.batches,
           "converted_batches": loop.converted, "loop_s": t1 - t0, "first_batch_s": first,
           "import_s": t_imp - t_start, "import_rss_kb": import_rss_kb}
    del dl
    print(json.dumps(out), flush=True)


# ------------------------------------------------------------------ the parent: one measured process
def _status(pid):
    """(VmRSS, VmHWM, RssAnon) of a process, KiB."""
    rss = hwm = anon = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
            elif line.startswith("RssAnon:"):
                anon = int(line.split()[1])
    return rss, hwm, anon


def _pss(pid):
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


def measured(cmd, env, timeout):
    """Runs cmd; returns (wall_s, rc, stdout, stderr, mem) with mem the peaks
    (KiB) of the summed RSS / PSS of the process tree."""
    import psutil
    out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
    # posix_spawn (vfork-like): no copy of this process's page tables in the timed span
    t0 = time.perf_counter()
    pid = os.posix_spawn(cmd[0], cmd, env, file_actions=[(os.POSIX_SPAWN_DUP2, out.fileno(), 1),
                                                         (os.POSIX_SPAWN_DUP2, err.fileno(), 2)])
    done, res = threading.Event(), {}

    def waiter():
        _, status, ru = os.wait4(pid, 0)
        res["t1"] = time.perf_counter()
        res["rc"] = os.waitstatus_to_exitcode(status)
        res["ru_maxrss"] = ru.ru_maxrss
        done.set()
    th = threading.Thread(target=waiter, daemon=True)
    th.start()
    root = psutil.Process(pid)
    kids, last_scan, polls = [], -1.0, 0
    peak_rss = peak_pss = peak_anon = nmax = 0
    hwm = {}
    while not done.wait(0.01):
        now = time.perf_counter()
        if now - t0 > timeout:
            os.kill(pid, 9)
            continue
        if now - last_scan >= 0.05:
            try:
                kids = root.children(recursive=True)
            except psutil.Error:
                kids = []
            last_scan = now
        pids = [pid] + [k.pid for k in kids]
        tot = anon = live = 0
        for q in pids:
            try:
                r, h, an = _status(q)
            except OSError:
                continue
            tot += r
            anon += an
            live += 1
            hwm[q] = max(hwm.get(q, 0), h)
        peak_rss = max(peak_rss, tot)
        peak_anon = max(peak_anon, anon)
        nmax = max(nmax, live)
        if polls % 5 == 0:
            s = 0
            for q in pids:
                try:
                    s += _pss(q)
                except OSError:
                    pass
            peak_pss = max(peak_pss, s)
        polls += 1
    th.join()
    out.seek(0)
    err.seek(0)
    # ru_maxrss is not used: a spawned child's counts this process's RSS from before
    # its exec (the kernel keeps the old mm's high-water mark). The root's own VmHWM
    # (polled) is exact for a single process such as the CLI.
    mem = {"peak_rss_sum_kb": max(peak_rss, hwm.get(pid, 0)), "peak_pss_sum_kb": peak_pss,
           "peak_anon_sum_kb": peak_anon,
           "sum_hwm_kb": sum(hwm.values()), "ru_maxrss_kb": res.get("ru_maxrss", 0), "procs": nmax, "polls": polls}
    return res["t1"] - t0, res["rc"], out.read().decode(), err.read().decode(), mem


def settle(a, cfg):
    """Before each measured process (not timed): write back what the previous
    one left dirty (decompressed shards and chunks), and read the store this
    configuration uses into the page cache again (this VM's kernel reclaims
    cold pages; a store read from disk would make the run an I/O benchmark)."""
    os.sync()
    P = paths(a)
    root = P["cq"] if cfg.startswith(("cli", "td")) else P[cfg.rstrip("0123456789")]
    for dp, _, fs in os.walk(root):
        for fn in fs:
            try:
                with open(os.path.join(dp, fn), "rb") as f:
                    while f.read(1 << 24):
                        pass
            except OSError:
                pass
    time.sleep(0.5)


def run_one(a, meta, cfg, w, run):
    P = paths(a)
    budget = meta["mix_budget"] // SEQ if w == "w5" else meta["w4"]["rows"]
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env["PYTHONWARNINGS"] = "ignore"
    rec = {"workload": w, "config": cfg, "run": run}
    if cfg in ("cli", "clihot"):
        rep = os.path.join(P["dir"], f"cli-{w}.report.json")
        src = [Q1, "--tokenizer", "bytes", "--seq-len", str(SEQ)] if w == "w4" else [P["mix"]]
        cmd = [a.corpusql, "-C", P["cq"], "stream", *src, "--format", "u16", "-o", "/dev/null", "--report", rep]
        if cfg == "clihot":   # the same command once, untimed, just before
            subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wall, rc, so, se, mem = measured(cmd, env, a.timeout)
        rec.update(rc=rc, wall_s=wall, loop_s=wall, **mem)
        if rc == 0:
            r = json.load(open(rep))
            rec.update(tokens=r["tokens"], rows=r["sequences"], checksum=r["checksum_emitted"])
            if w == "w5":
                rec["shares"] = {k: round(v / r["tokens"], 4) for k, v in r["tokens_by_component"].items()}
    else:
        spec = {"cfg": cfg, "workload": w, "batch_size": a.batch_size, "budget_rows": budget,
                "paths": {k: P[k] for k in ("cq", "mix", "mosaic", "litdata", "litrun")}}
        cmd = [sys.executable, os.path.abspath(__file__), "--child", json.dumps(spec)]
        wall, rc, so, se, mem = measured(cmd, env, a.timeout)
        rec.update(rc=rc, wall_s=wall, **mem)
        got = None
        for line in reversed(so.strip().splitlines()):
            try:
                got = json.loads(line)
                break
            except ValueError:
                continue
        if rc == 0 and got:
            rec.update(got)
        else:
            rec["error"] = (se or so)[-2000:]
    if rec.get("tokens"):
        rec["tok_s"] = rec["tokens"] / rec["loop_s"]
        rec["tok_s_wall"] = rec["tokens"] / rec["wall_s"]
    return rec


# ------------------------------------------------------------------ table
def summarize(results, meta):
    rows = []
    by = {}
    for r in results:
        by.setdefault((r["workload"], r["config"]), []).append(r)
    for w in ("w4", "w5"):
        med = {}
        for (ww, cfg), rs in by.items():
            ok = [r for r in rs if r.get("tok_s")]
            if ww == w and ok:
                med[cfg] = statistics.median(r["tok_s"] for r in ok)
        peer_best = max((v for c, v in med.items() if c.startswith(PEERS)), default=None)
        ref = "clihot" if "clihot" in med else "cli"   # the reference for "vs CLI"
        cli = med.get(ref)
        cli_sum = next((r["checksum"] for c in ("cli", "clihot") for r in by.get((w, c), [])
                        if r.get("checksum") is not None), None)
        for cfg in ALL_CONFIGS:
            rs = by.get((w, cfg))
            if not rs:
                continue
            ok = [r for r in rs if r.get("tok_s")]
            if not ok:
                rows.append({"workload": w, "config": cfg, "failed": True, "runs": len(rs)})
                continue
            sums = {r["checksum"] for r in ok}
            toks = {r["tokens"] for r in ok}
            if cfg.startswith(("cli", "td")):
                want, what = cli_sum, "= CLI"
            elif w == "w4":
                want, what = meta["w4"]["checksum"], "= its store"
            else:
                want, what = None, "differs (own selection)"
            check = ("ok " + what if want is not None and sums == {want} else
                     ("MISMATCH" if want is not None else what))
            if len(sums) > 1:
                check += f" ({len(sums)} distinct over runs)"
            m = med[cfg]
            cli_run = {r["run"]: r["tok_s"] for r in by.get((w, ref), []) if r.get("tok_s")}
            paired = [r["tok_s"] / cli_run[r["run"]] for r in ok if r["run"] in cli_run]
            rows.append({
                "vs_cli_paired": statistics.median(paired) if paired else None,
                "workload": w, "config": cfg, "runs": len(ok), "failed_runs": len(rs) - len(ok),
                "tok_s": m, "tok_s_min": min(r["tok_s"] for r in ok), "tok_s_max": max(r["tok_s"] for r in ok),
                "vs_cli": m / cli if cli else None, "vs_best_peer": m / peer_best if peer_best else None,
                "tok_s_wall": statistics.median(r["tok_s_wall"] for r in ok),
                "loop_s": statistics.median(r["loop_s"] for r in ok),
                "wall_s": statistics.median(r["wall_s"] for r in ok),
                "first_batch_s": statistics.median(r.get("first_batch_s") or 0 for r in ok),
                "peak_rss_mb": statistics.median(r["peak_rss_sum_kb"] for r in ok) / 1024,
                "peak_pss_mb": statistics.median(r["peak_pss_sum_kb"] for r in ok) / 1024,
                "import_rss_mb": statistics.median(r.get("import_rss_kb", 0) for r in ok) / 1024,
                "peak_anon_mb": statistics.median(r.get("peak_anon_sum_kb", 0) for r in ok) / 1024,
                "procs": max(r["procs"] for r in ok),
                "tokens": sorted(toks)[0], "rows": ok[0]["rows"], "checksum": sorted(sums)[0], "check": check,
            })
    return rows


def render(doc):
    meta, rows = doc["meta"], doc["summary"]
    names = {"cli": "corpusql stream (CLI)", "clihot": "corpusql stream (CLI), after an untimed run", "td0": "TokenDataset, 0 workers", "td2": "TokenDataset, 2 workers", "tdb0": "TokenDataset(batched=True), 0 workers", "tdb2": "TokenDataset(batched=True), 2 workers",
             "mosaic0": "Mosaic StreamingDataset, 0 workers", "mosaic2": "Mosaic StreamingDataset, 2 workers",
             "litdata0": "LitData TokensLoader, 0 workers", "litdata2": "LitData TokensLoader, 2 workers"}
    env = doc["env"]
    out = [f"{env['date']}, {env['machine']}; corpus {tag_of(meta['docs'])} docs; batch size "
           f"{doc['args']['batch_size']}; medians of {doc['args']['runs']} run(s)", ""]
    for w, title in (("w4", f"W4 `stream_q1`: {meta['w4']['rows']:,} rows of 2048 (every Q1 text)"),
                     ("w5", f"W5 `mix`: {meta['mix_budget'] // SEQ:,} rows of 2048 (60/30/10 fr/en/code)")):
        if not any(r["workload"] == w for r in rows):
            continue
        out += [f"### {title}", "",
                "| config | Mtok/s (median) | min-max | vs CLI | vs CLI, same run | vs best peer | peak RSS MB (sum) | "
                "peak PSS MB | peak anon MB | RSS after imports MB | procs | loop s | 1st batch s | process s | "
                "tokens | checksum |",
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
        for r in rows:
            if r["workload"] != w:
                continue
            if r.get("failed"):
                out.append(f"| {names[r['config']]} | failed |" + " |" * 14)
                continue
            f = lambda x, fmt="{:.2f}x": "" if x is None else fmt.format(x)  # noqa: E731
            imp = "-" if r["config"].startswith("cli") else f"{r['import_rss_mb']:.0f}"
            out.append(
                f"| {names[r['config']]} | {r['tok_s'] / 1e6:.1f} | {r['tok_s_min'] / 1e6:.0f}-{r['tok_s_max'] / 1e6:.0f} | "
                f"{f(r['vs_cli'])} | {f(r.get('vs_cli_paired'))} | {f(r['vs_best_peer'])} | {r['peak_rss_mb']:.0f} | "
                f"{r['peak_pss_mb']:.0f} | {r.get('peak_anon_mb', 0):.0f} | {imp} | "
                f"{r['procs']} | {r['loop_s']:.2f} | {r['first_batch_s']:.2f} | {r['wall_s']:.2f} | "
                f"{r['tokens']:,} | {r['check']} |")
        out.append("")
    return "\n".join(out)


def environment(a):
    import importlib.metadata as md
    v = {}
    for p in ("torch", "numpy", "mosaicml-streaming", "litdata", "psutil", "corpusql"):
        try:
            v[p] = md.version(p)
        except md.PackageNotFoundError:
            v[p] = None
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    try:
        commit = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip()
    except OSError:
        commit = None
    cli_v = subprocess.run([a.corpusql, "--version"], capture_output=True, text=True).stdout.strip()
    return {"date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
            "machine": f"{os.cpu_count()} cores ({cpu}), {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') >> 30} GiB",
            "python": platform.python_version(), "versions": v, "git": commit, "corpusql_cli": cli_v}


# ------------------------------------------------------------------ profile (in process)
def _native_stream(cq, mix, block, worker=0, workers=1):
    import corpusql
    c = corpusql.open(cq)
    return c._c.stream(mix._m, 0, 1, None, False, worker=worker, workers=workers, block=block, skip=0, prefetch=2)


def _rust_batches(cq, mix, fetch, block, convert):
    """The native stream's batches of `fetch` rows: raw bytes, or int64 tensors."""
    import torch
    s = _native_stream(cq, mix, block)
    try:
        while True:
            got = s.next_batch(fetch, False)
            if got is None:
                return
            tok, _, n, L, _ = got
            if convert:
                yield torch.from_numpy(np.frombuffer(tok, dtype="<u2").reshape(n, L).astype(np.int64))
            else:
                yield n
    finally:
        s.close()


def _make_proto_datasets():
    """IterableDatasets for the profile: two proposed TokenDataset variants and a
    dummy that only measures the DataLoader's worker transport."""
    import torch
    from torch.utils.data import IterableDataset, get_worker_info

    class PerSample(IterableDataset):
        """TokenDataset.__iter__ as it is (per-sample dicts, the DataLoader
        collates), but fetching `fetch` rows per native next_batch call."""

        def __init__(self, cq, mix, block, fetch):
            self.args = (cq, mix, block, fetch)

        def __iter__(self):
            cq, mix, block, fetch = self.args
            delivered = 0
            for ids in _rust_batches(cq, mix, fetch, block, True):
                for i in range(ids.shape[0]):
                    delivered += 1
                    yield {"input_ids": ids[i]}

    class Batched(IterableDataset):
        """Yields whole batches {"input_ids": LongTensor[B, L]} (slices of a
        `fetch`-row native batch); used with DataLoader(batch_size=None)."""

        def __init__(self, cq, mix, block, fetch):
            self.args = (cq, mix, block, fetch)

        def __iter__(self):
            cq, mix, block, fetch = self.args
            for ids in _rust_batches(cq, mix, fetch, block, True):
                for i in range(0, ids.shape[0], block):
                    yield {"input_ids": ids[i: i + block]}

    class Dummy(IterableDataset):
        """No data work at all: `rows` zero rows as per-sample dicts, split among
        the workers by blocks of B. Measures the DataLoader's own cost."""

        def __init__(self, rows, block, dtype):
            self.rows, self.block, self.dtype = rows, block, dtype

        def __iter__(self):
            info = get_worker_info()
            w, k = (info.id, info.num_workers) if info is not None else (0, 1)
            x = torch.zeros(self.block, SEQ, dtype=self.dtype)
            for _ in range(w, self.rows // self.block, k):
                for i in range(self.block):
                    yield {"input_ids": x[i]}

    return PerSample, Batched, Dummy


def profile(a, meta):
    """Where TokenDataset's time goes: the native stream alone, then each layer
    the DataLoader path adds, then proposed variants and the DataLoader's worker
    transport alone. Everything in this one process (workers forked from it),
    best of 3 repetitions."""
    import cProfile
    import io
    import pstats
    import torch
    from torch.utils.data import DataLoader
    import corpusql
    from corpusql.torch import TokenDataset
    P = paths(a)
    B = a.batch_size
    w = a.profile_workload
    cq = P["cq"]
    src = Q1 if w == "w4" else P["mix"]
    mix = corpusql.Mixture.query(Q1, seq_len=SEQ) if w == "w4" else corpusql.Mixture.from_file(P["mix"])
    rows = meta["w4"]["rows"] if w == "w4" else meta["mix_budget"] // SEQ
    PerSample, Batched, Dummy = _make_proto_datasets()
    td_fetch = max(B, 16)   # what TokenDataset asks the native stream for (torch.py)
    cli_fetch = (4 << 20) // SEQ   # what the CLI asks for (src/cmd/stream.rs): 4 MiB of tokens

    def rust(fetch, convert=False, consume=False):
        n = cs = 0
        for x in _rust_batches(cq, mix, fetch, B, convert):
            if convert:
                n += x.shape[0]
                if consume:
                    for j in range(0, x.shape[0], B):   # the loop sums batches of B
                        cs += int(x[j: j + B].sum())
            else:
                n += x
        return n

    def loop(dl):
        n = cs = 0
        for b in dl:
            x = b["input_ids"]
            if x.dtype != torch.int64:
                x = x.long()
            n += x.shape[0]
            cs += int(x.sum())
        return n

    def td_iter():
        return sum(1 for _ in TokenDataset(cq, src, seq_len=SEQ, batch_size=B))

    def td_loader(nw, consume=True):
        dl = DataLoader(TokenDataset(cq, src, seq_len=SEQ, batch_size=B), batch_size=B, num_workers=nw)
        if consume:
            return loop(dl)
        return sum(b["input_ids"].shape[0] for b in dl)

    def collate_only():
        from torch.utils.data import default_collate
        x = torch.zeros(B, SEQ, dtype=torch.int64)
        items = [{"input_ids": x[i]} for i in range(B)]
        for _ in range(-(-rows // B)):
            default_collate(items)
        return rows

    stages = [
        ("R16", f"native next_batch({td_fetch}) only: TokenDataset's fetch size", lambda: rust(td_fetch)),
        ("R256", "native next_batch(256) only", lambda: rust(256)),
        ("R2048", f"native next_batch({cli_fetch}) only: the CLI's fetch size", lambda: rust(cli_fetch)),
        ("C16", f"next_batch({td_fetch}) + frombuffer/astype(int64)/from_numpy", lambda: rust(td_fetch, True)),
        ("S16", "C16 + the loop's sum per batch of B (a batch-yielding dataset at fetch 16)",
         lambda: rust(td_fetch, True, True)),
        ("S2048", f"next_batch({cli_fetch}) + int64 + the loop's sum per batch of B", lambda: rust(cli_fetch, True, True)),
        ("TDI", "TokenDataset iterated without a DataLoader (per-sample dicts)", td_iter),
        ("TD0-", "DataLoader(TokenDataset, B, num_workers=0), no sum", lambda: td_loader(0, False)),
        ("TD0", "DataLoader(TokenDataset, B, num_workers=0) + sum: the benchmark's td0", lambda: td_loader(0)),
        ("COL", "default_collate alone, same number of batches", collate_only),
        ("PA", "proposal A: TokenDataset as is but next_batch(256), DataLoader(B, 0) + sum",
         lambda: loop(DataLoader(PerSample(cq, mix, B, 256), batch_size=B))),
        ("PB", "proposal B: yield [B, L] batches cut from next_batch(256), DataLoader(batch_size=None) + sum",
         lambda: loop(DataLoader(Batched(cq, mix, B, 256), batch_size=None))),
        ("PB2048", f"proposal B with next_batch({cli_fetch})",
         lambda: loop(DataLoader(Batched(cq, mix, B, cli_fetch), batch_size=None))),
        ("TD2", "DataLoader(TokenDataset, B, num_workers=2) + sum: the benchmark's td2", lambda: td_loader(2)),
        ("IPC", "dummy dataset (no data work), int64 rows, DataLoader(B, num_workers=2) + sum",
         lambda: loop(DataLoader(Dummy(rows, B, torch.int64), batch_size=B, num_workers=2))),
        ("IPC16", "dummy dataset, uint16 rows (.long() in the loop), DataLoader(B, num_workers=2) + sum",
         lambda: loop(DataLoader(Dummy(rows, B, torch.uint16), batch_size=B, num_workers=2))),
    ]
    res = []
    for key, name, fn in stages:
        ts, n = [], 0
        for _ in range(3):
            t = time.perf_counter()
            n = fn()
            ts.append(time.perf_counter() - t)
        best = min(ts)
        res.append({"key": key, "stage": name, "rows": n, "best_s": best, "median_s": statistics.median(ts),
                    "mtok_s": n * SEQ / best / 1e6})
        log(f"{key:6s} {name}: best {best:.3f} s (median {statistics.median(ts):.3f}), {n} rows, "
            f"{n * SEQ / best / 1e6:.0f} Mtok/s")
    pr = cProfile.Profile()
    pr.enable()
    td_loader(0)
    pr.disable()
    sio = io.StringIO()
    pstats.Stats(pr, stream=sio).sort_stats("tottime").print_stats(12)
    text = sio.getvalue()
    lines = [f"## TokenDataset profile, {w} ({rows:,} rows of {SEQ}), batch size {B}: best of 3, in one process", "",
             "| | stage | s (best) | s (median) | Mtok/s |", "|---|---|---:|---:|---:|"]
    for r in res:
        lines.append(f"| {r['key']} | {r['stage']} | {r['best_s']:.3f} | {r['median_s']:.3f} | {r['mtok_s']:.0f} |")
    lines += ["", "cProfile of TD0 (tottime; cProfile's own overhead inflates the Python parts):", "", "```",
              "\n".join(l for l in text.strip().splitlines() if l.strip()), "```"]
    return {"stages": res, "cprofile": text}, "\n".join(lines)


# ------------------------------------------------------------------ main
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--data", default="/tmp/pybench")
    ap.add_argument("--docs", type=int)
    ap.add_argument("--quick", action="store_true", help="20k docs, 1 run, 5M-token mixture")
    ap.add_argument("--runs", type=int)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--configs", default=",".join(ALL_CONFIGS))
    ap.add_argument("--workloads", default="w4,w5")
    ap.add_argument("--corpusql", default=os.path.join(REPO, "target", "release", "corpusql"))
    ap.add_argument("--peers-dir", default=os.environ.get("PEERS_DIR", os.path.join(REPO, "..", "shared", "peers")))
    ap.add_argument("--corpus", help="JSONL (default DATA/corpus_<docs>.jsonl, generated if missing)")
    ap.add_argument("--reprepare", action="store_true", help="rebuild the corpusql corpus and the peer stores")
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--json", help="results file (default DATA/loader_bench-<stamp>.json)")
    ap.add_argument("--render", help="print the table of a results JSON and exit")
    ap.add_argument("--profile", action="store_true", help="profile TokenDataset in process instead")
    ap.add_argument("--profile-workload", default="w4", choices=["w4", "w5"])
    a = ap.parse_args()
    if a.child:
        return child(json.loads(a.child))
    if a.render:
        print(render(json.load(open(a.render))))
        return
    a.docs = a.docs or (20_000 if a.quick else 100_000)
    a.runs = a.runs or (1 if a.quick else 3)
    a.peers_dir = os.path.abspath(a.peers_dir)
    a.corpusql = os.path.abspath(a.corpusql)
    tag = tag_of(a.docs)
    if not a.corpus:
        a.corpus = os.path.join(a.data, f"corpus_{tag}.jsonl")
        alt = f"/tmp/peers-data/corpus_{tag}.jsonl"
        if not os.path.exists(a.corpus) and os.path.exists(alt):
            a.corpus = alt
    a.mix_path = os.path.join(a.peers_dir, "mix.toml")
    if a.quick or a.docs < 100_000:
        # a smaller corpus cannot fill 50M tokens at 60 % fr: scale the budget
        d = os.path.join(a.data, tag)
        os.makedirs(d, exist_ok=True)
        a.mix_path = os.path.join(d, "mix.toml")
        src = open(os.path.join(a.peers_dir, "mix.toml")).read()
        budget = 5_000_000 * max(1, a.docs // 20_000)
        with open(a.mix_path, "w") as f:
            f.write(src.replace("tokens = 50_000_000", f"tokens = {budget}"))
    if not os.path.exists(a.corpusql):
        raise SystemExit(f"no corpusql binary at {a.corpusql}: cargo build --release first")
    os.makedirs(a.data, exist_ok=True)
    meta = prepare(a)
    env = environment(a)
    if a.profile:
        got, text = profile(a, meta)
        print(text)
        out = a.json or os.path.join(a.data, f"loader_profile-{a.profile_workload}-{time.strftime('%Y%m%d-%H%M%S')}.json")
        json.dump({"env": env, "meta": meta, "args": vars(a), **got}, open(out, "w"), indent=1)
        log(f"wrote {out}")
        return
    configs = [c for c in a.configs.split(",") if c]
    workloads = [w for w in a.workloads.split(",") if w]
    for c in configs:
        if c not in ALL_CONFIGS:
            raise SystemExit(f"unknown config {c}; known: {ALL_CONFIGS}")
    results = []
    out = a.json or os.path.join(a.data, f"loader_bench-{tag}-{time.strftime('%Y%m%d-%H%M%S')}.json")
    for run in range(1, a.runs + 1):
        for w in workloads:
            for c in configs:
                settle(a, c)
                r = run_one(a, meta, c, w, run)
                results.append(r)
                log(f"run {run} {w} {c}: " + (f"{r['tok_s'] / 1e6:.1f} Mtok/s, loop {r['loop_s']:.2f} s, "
                                              f"peak RSS {r['peak_rss_sum_kb'] / 1024:.0f} MB, "
                                              f"{r.get('rows')} rows, sum {r.get('checksum')}"
                                              if r.get("tok_s") else f"FAILED rc={r.get('rc')}: {r.get('error', '')[-600:]}"))
                doc = {"env": env, "meta": meta, "args": {k: v for k, v in vars(a).items()},
                       "results": results, "summary": summarize(results, meta)}
                json.dump(doc, open(out, "w"), indent=1)
    shutil.rmtree(paths(a)["litrun"], ignore_errors=True)
    print(render(doc))
    print(f"\nversions: {json.dumps(env['versions'])}; python {env['python']}; git {env['git']}")
    log(f"wrote {out}")


if __name__ == "__main__":
    main()
