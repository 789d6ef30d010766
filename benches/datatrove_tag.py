#!/usr/bin/env python3
"""The datatrove side of `benches/tag_vs_datatrove.sh`: one task, one process.

    python datatrove_tag.py quality CORPUS.jsonl [--limit N]
    python datatrove_tag.py dedup   CORPUS.jsonl --work DIR [--limit N]
    python datatrove_tag.py render  RESULTS.jsonl   (the table; stdlib only)

Prints one JSON line of results on stdout (datatrove's own logging goes to
stderr). It installs nothing: run it with a Python that has
`datatrove[processing]` and `spacy` (datatrove tokenizes English words and
sentences with `spacy.blank("en")`, which needs no model download).

quality
    Reads the JSONL into `datatrove.data.Document`s first (timed apart as
    `read_s`), then times the four filters of the FineWeb recipe, datatrove's
    defaults, English word tokenizer, calling their `filter()` methods
    directly in FineWeb's order: GopherRepetitionFilter, GopherQualityFilter,
    C4QualityFilter, FineWebQualityFilter. Two passes over the same documents:

    - `all`: every filter on every document (what `corpusql tag --taggers
      quality` does: every signal for every document). C4QualityFilter
      rewrites `doc.text` when it keeps a document; the original text is put
      back before the next filter.
    - `chain`: a pipeline, a document stops at its first rejection (what a
      datatrove pipeline does; datatrove's best case, as the later, costlier
      filters see fewer documents).

dedup
    datatrove's MinHash deduplication on local folders under DIR (emptied
    first), `MinhashConfig(n_grams=5, num_buckets=14, hashes_per_bucket=8)`
    (its defaults; 64-bit hashes, xxhash), `LocalPipelineExecutor(workers=1)`:
    stage 1 JsonlReader + MinhashDedupSignature (1 task), stage 2
    MinhashDedupBuckets (14 tasks, one per bucket, as the step requires),
    stage 3 MinhashDedupCluster (save_cluster_id=True), stage 4 JsonlReader +
    MinhashDedupFilter + JsonlWriter (the kept documents, zstd-free JSONL).
    Each stage is timed; `find_s` = stages 1-3 (finding the duplicates,
    corpusql's `tag --taggers dedup` equivalent), `total_s` = stages 1-4.
"""

import argparse
import json
import os
import resource
import shutil
import sys
import time


def cpu_self():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def cpu_children():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def read_docs(path, limit):
    from datatrove.data import Document

    docs = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            o = json.loads(line)
            docs.append(Document(text=o["text"], id=o["id"], metadata={"lang": o.get("lang")}))
            if limit and len(docs) >= limit:
                break
    return docs


def passed(r):
    # BaseFilter.filter returns True, False or (False, reason).
    return r is True or (isinstance(r, tuple) and r[0] is True)


def run_quality(args):
    t0 = time.perf_counter()
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
    )

    filters = [
        ("gopher_repetition", GopherRepetitionFilter()),
        ("gopher_quality", GopherQualityFilter()),
        ("c4_quality", C4QualityFilter()),
        ("fineweb_quality", FineWebQualityFilter()),
    ]
    import_s = time.perf_counter() - t0
    t = time.perf_counter()
    docs = read_docs(args.corpus, args.limit)
    read_s = time.perf_counter() - t
    # Warm-up: spaCy's tokenizer is built lazily on the first call.
    for _, f in filters:
        f.filter(type(docs[0])(text=docs[0].text, id="warm"))

    out = {"task": "quality", "docs": len(docs), "import_s": import_s, "read_s": read_s}

    # every filter on every document
    per = {name: 0.0 for name, _ in filters}
    kept = {name: 0 for name, _ in filters}
    c0, t = cpu_self(), time.perf_counter()
    for d in docs:
        text = d.text
        for name, f in filters:
            s = time.perf_counter()
            r = f.filter(d)
            per[name] += time.perf_counter() - s
            kept[name] += passed(r)
            d.text = text
    out["all"] = {
        "filter_s": time.perf_counter() - t,
        "filter_cpu_s": cpu_self() - c0,
        "per_filter_s": per,
        "kept": kept,
    }

    # a pipeline: stop at the first rejection
    survivors = 0
    c0, t = cpu_self(), time.perf_counter()
    for d in docs:
        text = d.text
        ok = True
        for _, f in filters:
            if not passed(f.filter(d)):
                ok = False
                break
        survivors += ok
        d.text = text
    out["chain"] = {
        "filter_s": time.perf_counter() - t,
        "filter_cpu_s": cpu_self() - c0,
        "kept": survivors,
    }
    out["process_cpu_s"] = cpu_self()
    return out


def run_dedup(args):
    t0 = time.perf_counter()
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup import (
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.dedup.minhash import MinhashConfig
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter

    import_s = time.perf_counter() - t0
    work = args.work
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    cfg = MinhashConfig(n_grams=5, num_buckets=14, hashes_per_bucket=8)
    src_dir, src_name = os.path.split(os.path.abspath(args.corpus))

    def reader():
        return JsonlReader(src_dir, glob_pattern=src_name, limit=args.limit or -1)

    stages = [
        ("signature", [reader(), MinhashDedupSignature(output_folder=f"{work}/sigs", config=cfg)], 1),
        (
            "buckets",
            [MinhashDedupBuckets(input_folder=f"{work}/sigs", output_folder=f"{work}/buckets", config=cfg)],
            cfg.num_buckets,
        ),
        (
            "cluster",
            [
                MinhashDedupCluster(
                    input_folder=f"{work}/buckets",
                    output_folder=f"{work}/remove_ids",
                    config=cfg,
                    save_cluster_id=True,
                )
            ],
            1,
        ),
        (
            "filter",
            [
                reader(),
                MinhashDedupFilter(input_folder=f"{work}/remove_ids"),
                JsonlWriter(f"{work}/deduped", compression=None),
            ],
            1,
        ),
    ]
    out = {"task": "dedup", "import_s": import_s, "stage_s": {}, "stage_cpu_s": {}}
    for name, pipeline, tasks in stages:
        ex = LocalPipelineExecutor(
            pipeline=pipeline,
            tasks=tasks,
            workers=1,
            logging_dir=f"{work}/logs/{name}",
            skip_completed=False,
        )
        c, t = cpu_self() + cpu_children(), time.perf_counter()
        ex.run()
        out["stage_s"][name] = time.perf_counter() - t
        out["stage_cpu_s"][name] = cpu_self() + cpu_children() - c
    for k in ("s", "cpu_s"):
        st = out[f"stage_{k}"]
        out[f"find_{k}"] = st["signature"] + st["buckets"] + st["cluster"]
        out[f"total_{k}"] = out[f"find_{k}"] + st["filter"]
    kept = 0
    for root, _, files in os.walk(f"{work}/deduped"):
        for fn in files:
            with open(os.path.join(root, fn), "rb") as f:
                kept += sum(1 for _ in f)
    removed = 0
    # MinhashDedupCluster writes no folder at all when it finds no duplicates.
    if os.path.isdir(f"{work}/remove_ids"):
        for fn in os.listdir(f"{work}/remove_ids"):
            if fn.endswith(".remove"):
                removed += os.path.getsize(f"{work}/remove_ids/{fn}") // 4
    out["docs"] = kept + removed
    out["kept"] = kept
    out["removed"] = removed
    out["process_cpu_s"] = cpu_self() + cpu_children()
    return out


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def render(path):
    """Markdown tables of medians from the results of tag_vs_datatrove.sh."""
    rows = [json.loads(l) for l in open(path) if l.strip()]
    groups = {}
    for r in rows:
        groups.setdefault((r["tool"], r["task"], r["variant"], r["docs"]), []).append(r)

    def med(g, f):
        return median([f(r) for r in g])

    cpu = lambda r: r["user_s"] + r["sys_s"]  # noqa: E731
    mib = lambda r: r["maxrss_kb"] / 1024  # noqa: E731
    out = []
    per_core = {}
    for task in ("quality", "dedup"):
        out.append(f"\n### {task}\n")
        out.append("| tool | what | docs | runs | wall s | CPU s | docs/s (wall) | docs/s per core | max RSS MiB | load 1m |")
        out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")

        def line(tool, what, docs, g, wall, cpus):
            dps = docs / cpus
            out.append(
                f"| {tool} | {what} | {docs:,} | {len(g)} | {wall:.2f} | {cpus:.2f} | {docs / wall:,.0f} | "
                f"{dps:,.0f} | {med(g, mib):.0f} | {med(g, lambda r: r['loadavg_1m']):.2f} |"
            )
            return dps

        for (tool, t, variant, docs), g in sorted(groups.items()):
            if t != task or tool != "corpusql" or variant not in ("all", "1thread"):
                continue
            what = f"`tag --taggers {task}`, " + ("all cores" if variant == "all" else "`--threads 1`")
            per_core[("corpusql", task, variant, docs)] = line(tool, what, docs, g, med(g, lambda r: r["wall_s"]), med(g, cpu))
        for (tool, t, variant, docs), g in sorted(groups.items()):
            if t != task or tool != "datatrove":
                continue
            d = lambda f: med(g, lambda r: f(r["dt"]))  # noqa: E731
            if task == "quality":
                for mode, label in (("chain", "4 filters as a pipeline (stop at 1st reject)"), ("all", "4 filters, every filter on every doc")):
                    fc = d(lambda x: x[mode]["filter_cpu_s"])
                    per_core[("datatrove", task, mode, docs)] = line(
                        tool, label + ", filter time only", docs, g, d(lambda x: x[mode]["filter_s"]), fc
                    )
                    line(tool, label + ", + JSON read", docs, g,
                         d(lambda x: x[mode]["filter_s"] + x["read_s"]), d(lambda x: x[mode]["filter_cpu_s"] + x["read_s"]))
                kept = g[0]["dt"]
                ks = ", ".join(f"{k} {v}" for k, v in kept["all"]["kept"].items())
                fs = ", ".join(f"{k} {d(lambda x, k=k: x['all']['per_filter_s'][k]):.1f}" for k in kept["all"]["per_filter_s"])
                out.append(f"|  | every filter: s {fs}; kept {ks}; pipeline keeps {kept['chain']['kept']} |  |  |  |  |  |  |  |  |")
            else:
                per_core[("datatrove", task, "find", docs)] = line(
                    tool, "signature + buckets + cluster", docs, g, d(lambda x: x["find_s"]), d(lambda x: x["find_cpu_s"])
                )
                per_core[("datatrove", task, "total", docs)] = line(
                    tool, "+ filter/write, whole process", docs, g, med(g, lambda r: r["wall_s"]), med(g, cpu)
                )
                st = g[0]["dt"]
                out.append(
                    "|  | stages s: "
                    + ", ".join(f"{k} {d(lambda x, k=k: x['stage_s'][k]):.1f}" for k in st["stage_s"])
                    + f"; removed {st['removed']} of {st['docs']} |  |  |  |  |  |  |  |  |"
                )
    out.append("\n### ratios (docs/s per core, corpusql / datatrove)\n")
    out.append("| task | corpusql | datatrove | ratio | target |")
    out.append("|---|---|---|---:|---:|")
    for (tool, task, mode, docs), dt in sorted(per_core.items()):
        if tool != "datatrove":
            continue
        target = 10 if task == "quality" else 5
        for v in ("all", "1thread"):
            for cdocs in sorted({k[3] for k in per_core if k[0] == "corpusql" and k[1] == task and k[2] == v}):
                c = per_core[("corpusql", task, v, cdocs)]
                out.append(
                    f"| {task} | {v}, {cdocs:,} docs: {c:,.0f} | {mode}, {docs:,} docs: {dt:,.0f} | {c / dt:,.1f}x | {target}x |"
                )
    mem = [(k, g) for k, g in groups.items() if k[0] == "corpusql" and k[2].startswith("mem")]
    if mem:
        out.append("\n### memory: corpusql `tag --taggers dedup`, peak RSS\n")
        out.append("| --dedup-memory-mb | docs | wall s | max RSS MiB | of which anonymous | of which file-backed |")
        out.append("|---:|---:|---:|---:|---:|---:|")
        for (_, _, v, docs), g in sorted(mem, key=lambda x: (-int(x[0][2][3:]), x[0][3])):
            anon = med(g, lambda r: r.get("anon_kb", 0) / 1024)
            file = med(g, lambda r: r.get("file_kb", 0) / 1024)
            out.append(
                f"| {v[3:]} | {docs:,} | {med(g, lambda r: r['wall_s']):.2f} | {med(g, mib):.0f} | {anon:.0f} | {file:.0f} |"
            )
    dts = [r["dt"] for r in rows if r["tool"] == "datatrove"]
    if dts:
        x = dts[0]
        out.append(f"\ndatatrove {x['datatrove']}, spaCy {x['spacy']}, Python {x['python']}")
    print("\n".join(out))


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "render":
        render(sys.argv[2])
        return
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("task", choices=["quality", "dedup"])
    p.add_argument("corpus")
    p.add_argument("--work", default="/tmp/datatrove-dedup-work")
    p.add_argument("--limit", type=int, default=0)
    args = p.parse_args()
    import datatrove

    try:
        from importlib.metadata import version

        dt_version = version("datatrove")
        spacy_version = version("spacy")
    except Exception:  # pragma: no cover
        dt_version = getattr(datatrove, "__version__", "?")
        spacy_version = "?"
    load0 = os.getloadavg()[0]
    out = run_quality(args) if args.task == "quality" else run_dedup(args)
    out["datatrove"] = dt_version
    out["spacy"] = spacy_version
    out["python"] = sys.version.split()[0]
    out["loadavg_1m"] = [load0, os.getloadavg()[0]]
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
