#!/usr/bin/env bash
# Peak memory of `corpusql tag --taggers dedup` as the corpus grows.
#
# Generates corpora of short documents (25-45 words from a 20,000-word
# vocabulary, 10% exact copies of earlier documents; short texts so that
# millions of documents fit a small disk), ingests them, and runs dedup with
# --dedup-memory-mb 16 on a copy of each store, polling /proc/PID/status
# every 10 ms for the peak anonymous (heap) and file-backed (mapped
# segments and work files) resident memory. Prints one JSON line per run.
#
#   benches/dedup_memory.sh [BIN...]       (default: target/release/corpusql)
#
# Environment: SIZES (default "300000 3000000"), RUNS (3), WORK (a temp dir).
# Several BIN give a same-run comparison (e.g. two builds).
set -euo pipefail
BINS=("$@")
[ ${#BINS[@]} -eq 0 ] && BINS=(target/release/corpusql)
SIZES=${SIZES:-"300000 3000000"}
RUNS=${RUNS:-3}
WORK=${WORK:-$(mktemp -d)}
mkdir -p "$WORK"

gen() {
  python3 - "$1" "$2" <<'PY'
import json, random, sys
n, path = int(sys.argv[1]), sys.argv[2]
rnd = random.Random(7)
words = ["w%d" % i for i in range(20000)]
prev = []
with open(path, "w") as out:
    for i in range(n):
        if prev and rnd.random() < 0.1:
            t = rnd.choice(prev)
        else:
            t = " ".join(rnd.choice(words) for _ in range(rnd.randint(25, 45)))
            if len(prev) < 10000:
                prev.append(t)
            elif rnd.random() < 0.01:
                prev[rnd.randrange(10000)] = t
        out.write(json.dumps({"id": "d%09d" % i, "text": t, "lang": "en"}) + "\n")
PY
}

probe() {
  python3 - "$@" <<'PY'
import json, shutil, subprocess, sys, time
store, binary, docs = sys.argv[1], sys.argv[2], int(sys.argv[3])
w = store + ".work"
shutil.rmtree(w, ignore_errors=True)
shutil.copytree(store, w)
cmd = [binary, "tag", "-C", w, "--taggers", "dedup", "-q", "--dedup-memory-mb", "16"]
peak = {"RssAnon": 0, "RssFile": 0, "VmHWM": 0}
t0 = time.perf_counter()
p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
while p.poll() is None:
    try:
        for line in open(f"/proc/{p.pid}/status"):
            k, _, v = line.partition(":")
            if k in peak:
                peak[k] = max(peak[k], int(v.split()[0]))
    except OSError:
        break
    time.sleep(0.01)
rc = p.wait()
print(json.dumps({"bin": binary, "docs": docs, "rc": rc,
                  "wall_s": round(time.perf_counter() - t0, 2),
                  "hwm_mib": peak["VmHWM"] // 1024, "anon_mib": peak["RssAnon"] // 1024,
                  "file_mib": peak["RssFile"] // 1024}))
shutil.rmtree(w, ignore_errors=True)
PY
}

for n in $SIZES; do
  [ -f "$WORK/c$n.jsonl" ] || gen "$n" "$WORK/c$n.jsonl"
  [ -d "$WORK/s$n" ] || "${BINS[0]}" -C "$WORK/s$n" ingest -q "$WORK/c$n.jsonl"
done
for _ in $(seq "$RUNS"); do
  for n in $SIZES; do
    for b in "${BINS[@]}"; do
      probe "$WORK/s$n" "$b" "$n"
    done
  done
done
