#!/usr/bin/env bash
# corpusql tag vs datatrove, same run, same synthetic documents.
#
#   benches/tag_vs_datatrove.sh                  # 100k docs, 3 runs, medians
#   RUNS=1 DT_QUALITY_DOCS=5000 DT_DEDUP_DOCS=10000 benches/tag_vs_datatrove.sh
#
# Workloads (each one a fresh process under /usr/bin/time -v, page cache warm):
#   corpusql  `tag --taggers quality -q` and `tag --taggers dedup -q` on a fresh
#             copy of a corpus ingested from the JSONL, all cores and
#             `--threads 1` (+ RAYON_NUM_THREADS=1);
#   datatrove benches/datatrove_tag.py quality|dedup on the same JSONL (its
#             docstring says exactly what runs).
# Runs are the outer loop (run 1 of everything, then run 2, ...); the table
# gives medians. docs/s per core = docs / (user + sys CPU seconds).
# datatrove is ~100x slower: DT_QUALITY_DOCS / DT_DEDUP_DOCS run it on the
# first N documents of the same file (corpusql is then also run on that
# prefix, so one row compares exactly the same documents).
#
# Environment (defaults):
#   CORPUSQL   target/release/corpusql (copied to $DATA first, so a rebuild
#              by someone else in the middle of the run changes nothing)
#   PY         /tmp/dt-venv/bin/python  (pip install 'datatrove[processing]' spacy orjson)
#   DATA       /tmp/tagbench-data       (corpora, stores, results; never the repo)
#   DOCS       100000                   (gen_corpus.py --docs, --seed 1)
#   RUNS       3
#   DT_QUALITY_DOCS, DT_DEDUP_DOCS   $DOCS
#   MEM_DOCS   300000  (memory check: dedup peak RSS, anonymous and file-backed,
#              at DOCS vs MEM_DOCS docs, --dedup-memory-mb 256 and 16; 0 skips it)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
GEN="$REPO/../shared/peers/gen_corpus.py"
DATA="${DATA:-/tmp/tagbench-data}"
PY="${PY:-/tmp/dt-venv/bin/python}"
DOCS="${DOCS:-100000}"
RUNS="${RUNS:-3}"
DT_QUALITY_DOCS="${DT_QUALITY_DOCS:-$DOCS}"
DT_DEDUP_DOCS="${DT_DEDUP_DOCS:-$DOCS}"
MEM_DOCS="${MEM_DOCS:-300000}"
TIME=/usr/bin/time

[ -x "$TIME" ] || { echo "needs GNU time (apt-get install time)" >&2; exit 1; }
"$PY" -c "import datatrove, spacy, orjson" 2>/dev/null || {
  echo "needs $PY with datatrove: python3.11 -m venv /tmp/dt-venv &&" \
       "/tmp/dt-venv/bin/pip install 'datatrove[processing]' spacy orjson" >&2
  exit 1
}
mkdir -p "$DATA"
CQ="$DATA/corpusql"
cp "${CORPUSQL:-$REPO/target/release/corpusql}" "$CQ"
RES="$DATA/results-$(date +%Y%m%d-%H%M%S).jsonl"
: >"$RES"

# corpus_N.jsonl (generated once) and a store ingested from it
corpus() { # N -> path of the JSONL
  local n=$1 f="$DATA/corpus_$1.jsonl"
  [ -s "$f" ] || python3 "$GEN" --docs "$n" --seed 1 --out "$f" --workers 2 >&2
  echo "$f"
}
prefix() { # FILE N -> path of the first N lines
  local out="${1%.jsonl}_first$2.jsonl"
  [ -s "$out" ] || head -n "$2" "$1" >"$out"
  echo "$out"
}
store() { # JSONL -> store directory (fresh ingest)
  local d="$DATA/store_$(basename "${1%.jsonl}")"
  rm -rf "$d"
  "$CQ" ingest -C "$d" "$1" >/dev/null 2>&1
  echo "$d"
}

# record TOOL TASK VARIANT DOCS RUN EXTRA_JSON -- CMD...: one JSON line in $RES
record() {
  local tool=$1 task=$2 variant=$3 docs=$4 run=$5 extra=$6
  shift 7
  local tf="$DATA/time.txt" out="$DATA/out.txt"
  local load; load=$(cut -d' ' -f1 /proc/loadavg)
  "$TIME" -v -o "$tf" "$@" >"$out" 2>"$DATA/err.txt" || {
    echo "FAILED: $*" >&2; tail -20 "$DATA/err.txt" >&2; exit 1; }
  python3 - "$tf" "$out" "$tool" "$task" "$variant" "$docs" "$run" "$load" "$extra" >>"$RES" <<'EOF'
import json, re, sys
tf, out, tool, task, variant, docs, run, load, extra = sys.argv[1:]
t = open(tf).read()
el = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", t).group(1).split(":")
wall = sum(float(x) * 60 ** i for i, x in enumerate(reversed(el)))
r = {
    "tool": tool, "task": task, "variant": variant, "docs": int(docs), "run": int(run),
    "wall_s": wall,
    "user_s": float(re.search(r"User time \(seconds\): (\S+)", t).group(1)),
    "sys_s": float(re.search(r"System time \(seconds\): (\S+)", t).group(1)),
    "maxrss_kb": int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1)),
    "loadavg_1m": float(load),
}
r.update(json.loads(extra or "{}"))
lines = open(out).read().strip().splitlines()
if tool == "datatrove":
    r["dt"] = json.loads(lines[-1])
else:
    r["stdout"] = lines
print(json.dumps(r))
EOF
}

cq_tag() { # STORE TASK VARIANT DOCS RUN [extra tag args...]
  local store=$1 task=$2 variant=$3 docs=$4 run=$5
  shift 5
  local w="$DATA/work_store"
  rm -rf "$w"
  cp -a "$store" "$w"
  local env=() thr=()
  if [ "$variant" = "1thread" ]; then env=(env RAYON_NUM_THREADS=1); thr=(--threads 1); fi
  record corpusql "$task" "$variant" "$docs" "$run" "" -- \
    "${env[@]}" "$CQ" "${thr[@]}" tag -C "$w" --taggers "$task" -q "$@"
  if [ "$task" = dedup ]; then
    echo "  corpusql dedup: $("$CQ" count -C "$w" 'is_dup = true' 2>/dev/null) duplicates" >&2
  fi
  rm -rf "$w"
}

echo "== corpora" >&2
C=$(corpus "$DOCS")
cat "$C" >/dev/null
S=$(store "$C")
QC=$C; QS=$S; DC=$C; DS=$S
if [ "$DT_QUALITY_DOCS" -lt "$DOCS" ]; then QC=$(prefix "$C" "$DT_QUALITY_DOCS"); QS=$(store "$QC"); fi
if [ "$DT_DEDUP_DOCS" -lt "$DOCS" ]; then DC=$(prefix "$C" "$DT_DEDUP_DOCS"); DS=$(store "$DC"); fi

for run in $(seq 1 "$RUNS"); do
  echo "== run $run/$RUNS (load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
  for v in all 1thread; do
    cq_tag "$S" quality "$v" "$DOCS" "$run"
    cq_tag "$S" dedup "$v" "$DOCS" "$run"
  done
  if [ "$QS" != "$S" ]; then cq_tag "$QS" quality all "$DT_QUALITY_DOCS" "$run"; fi
  if [ "$DS" != "$S" ]; then cq_tag "$DS" dedup all "$DT_DEDUP_DOCS" "$run"; fi
  echo "  datatrove quality ($DT_QUALITY_DOCS docs)" >&2
  record datatrove quality "" "$DT_QUALITY_DOCS" "$run" "" -- \
    "$PY" "$REPO/benches/datatrove_tag.py" quality "$QC"
  echo "  datatrove dedup ($DT_DEDUP_DOCS docs)" >&2
  record datatrove dedup "" "$DT_DEDUP_DOCS" "$run" "" -- \
    "$PY" "$REPO/benches/datatrove_tag.py" dedup "$DC" --work "$DATA/dt_dedup"
  rm -rf "$DATA/dt_dedup"
done

# cq_mem STORE DOCS MB: dedup with --dedup-memory-mb MB, peak RSS split into
# anonymous (heap: what the budget bounds) and file-backed (mmapped segments
# and work files), by benches/peak_rss.py.
cq_mem() {
  local w="$DATA/work_store"
  rm -rf "$w"
  cp -a "$1" "$w"
  local extra
  extra=$(printf '{"tool": "corpusql", "task": "dedup", "variant": "mem%s", "docs": %s, "run": 1, "user_s": 0, "sys_s": 0, "loadavg_1m": %s}' \
    "$3" "$2" "$(cut -d' ' -f1 /proc/loadavg)")
  python3 "$REPO/benches/peak_rss.py" --require-ok --extra "$extra" -- \
    "$CQ" tag -C "$w" --taggers dedup -q --dedup-memory-mb "$3" >>"$RES"
  rm -rf "$w"
}

if [ "$MEM_DOCS" -gt 0 ]; then
  echo "== memory: corpusql dedup at $DOCS and $MEM_DOCS docs" >&2
  M=$(corpus "$MEM_DOCS")
  MS=$(store "$M")
  echo "  store sizes: $(du -sh "$S" | cut -f1) ($DOCS docs), $(du -sh "$MS" | cut -f1) ($MEM_DOCS docs)" >&2
  for mb in 256 16; do
    cq_mem "$S" "$DOCS" "$mb"
    cq_mem "$MS" "$MEM_DOCS" "$mb"
  done
  rm -rf "$MS"
fi

echo "== results in $RES" >&2
python3 "$REPO/benches/datatrove_tag.py" render "$RES"
