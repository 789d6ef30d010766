#!/usr/bin/env bash
# Ingest of the same documents as JSONL and as Parquet, corpusql against
# DuckDB (a table in its own file, CHECKPOINT) and Hugging Face `datasets`
# (its Arrow cache), in one run, REPS times each, in turns; prints one JSON
# line per run (wall, peak RSS from benches/peak_rss.py) and the medians.
#
#   python3 ../shared/peers/gen_corpus.py --docs 100000 --out /tmp/peers-data/corpus_100k.jsonl
#   python3 -c "import pyarrow.json as pj, pyarrow.parquet as pq; \
#     pq.write_table(pj.read_json('/tmp/peers-data/corpus_100k.jsonl'), \
#     '/tmp/peers-data/corpus_100k.parquet', compression='zstd', row_group_size=10000)"
#   PY=/path/to/venv/bin/python REPS=3 benches/ingest_peers.sh \
#     /tmp/peers-data/corpus_100k.jsonl /tmp/peers-data/corpus_100k.parquet
#
# CORPUSQL (default target/release/corpusql) is the binary; PY a Python
# with duckdb and datasets; THREADS, when set, is given to every tool.
set -euo pipefail
cd "$(dirname "$0")/.."
JSONL="$1"
PARQUET="$2"
REPS="${REPS:-3}"
PY="${PY:-python3}"
BIN="$(realpath "${CORPUSQL:-target/release/corpusql}")"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
RESULTS="$WORK/results.jsonl"
THREADS_ARG=()
if [ -n "${THREADS:-}" ]; then THREADS_ARG=(--threads "$THREADS"); fi

# The peers' programs, run directly (not under a shell) so that
# peak_rss.py measures the process that does the work.
cat > "$WORK/duck.py" <<'PYEOF'
import duckdb, os, sys
con = duckdb.connect(sys.argv[1])
if os.environ.get("THREADS"):
    con.execute(f"SET threads = {int(os.environ['THREADS'])}")
reader = "read_parquet('%s')" if sys.argv[2] == "parquet" else "read_json('%s', format='newline_delimited')"
con.execute("CREATE TABLE docs AS SELECT * FROM " + reader % sys.argv[3].replace("'", "''"))
con.execute("CHECKPOINT")
con.close()
PYEOF
cat > "$WORK/hf.py" <<'PYEOF'
import sys
from datasets import load_dataset
ds = load_dataset("json" if sys.argv[2] == "jsonl" else "parquet", data_files=sys.argv[3],
                  split="train", cache_dir=sys.argv[1])
assert len(ds) > 0
PYEOF
export THREADS="${THREADS:-}" HF_DATASETS_DISABLE_PROGRESS_BARS=1

for rep in $(seq 1 "$REPS"); do
  for fmt in jsonl parquet; do
    if [ "$fmt" = jsonl ]; then f="$JSONL"; else f="$PARQUET"; fi
    for peer in corpusql duckdb hf; do
      rm -rf "$WORK/store" "$WORK/store.duckdb" "$WORK/store.duckdb.wal" "$WORK/hf-cache"
      case $peer in
        corpusql) cmd=("$BIN" "${THREADS_ARG[@]}" --corpus "$WORK/store" ingest --quiet "$f") ;;
        duckdb) cmd=("$PY" "$WORK/duck.py" "$WORK/store.duckdb" "$fmt" "$f") ;;
        hf) cmd=("$PY" "$WORK/hf.py" "$WORK/hf-cache" "$fmt" "$f") ;;
      esac
      "$PY" benches/peak_rss.py --require-ok \
        --extra "{\"peer\": \"$peer\", \"format\": \"$fmt\", \"rep\": $rep}" -- "${cmd[@]}" \
        | tee -a "$RESULTS"
    done
  done
done
"$PY" - "$RESULTS" <<'PYEOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print(f"{'format':8} {'peer':9} {'wall s (median)':>16} {'peak RSS MiB':>13} {'vs fastest':>11}")
for fmt in ("jsonl", "parquet"):
    med = {}
    for peer in ("corpusql", "duckdb", "hf"):
        rs = [r for r in rows if r["format"] == fmt and r["peer"] == peer]
        med[peer] = (statistics.median(r["wall_s"] for r in rs),
                     statistics.median(r["maxrss_kb"] for r in rs) / 1024)
    best = min(w for w, _ in med.values())
    for peer, (w, m) in med.items():
        print(f"{fmt:8} {peer:9} {w:16.2f} {m:13.0f} {w / best:10.2f}x")
PYEOF
