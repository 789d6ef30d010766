#!/usr/bin/env bash
# Peak memory of `corpusql tag --taggers dedup` as the corpus grows.
#
# Generates corpora of short documents (25-45 words from a 20,000-word
# vocabulary, 10% exact copies of earlier documents; short texts so that
# millions of documents fit a small disk), ingests them, and runs dedup with
# --dedup-memory-mb 16 on a copy of each store, polling /proc/PID/status
# every 10 ms (benches/peak_rss.py) for the peak anonymous (heap) and
# file-backed (mapped segments and work files) resident memory, in KiB.
# Prints one JSON line per run.
#
#   benches/dedup_memory.sh [BIN...]       (default: target/release/corpusql)
#
# Environment: SIZES (default "300000 3000000"), RUNS (3), WORK (a temp dir).
# Several BIN give a same-run comparison (e.g. two builds).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
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

probe() { # STORE BIN DOCS: dedup on a copy of STORE
  local w="$1.work"
  rm -rf "$w"
  cp -a "$1" "$w"
  python3 "$HERE/peak_rss.py" --extra "{\"bin\": \"$2\", \"docs\": $3}" -- \
    "$2" tag -C "$w" --taggers dedup -q --dedup-memory-mb 16
  rm -rf "$w"
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
