#!/usr/bin/env bash
# Ingest of the shared real corpus (35k documents, 187 MiB, cut into 7
# JSONL shards) three ways, same run: one `ingest` on all cores, a job of
# N tasks run as N concurrent processes of one thread each (what a Slurm
# array does on N nodes) plus its `commit`, and the same with N=1.
# Prints each run and the medians.
#   benches/jobs.sh [RUNS]          (CORPUSQL=target/release/corpusql)
set -euo pipefail
cd "$(dirname "$0")/.."
B="${CORPUSQL:-target/release/corpusql}"
RUNS="${1:-5}"
SRC="../shared/data/realcorpus-dev.jsonl.zst"
W="$(mktemp -d)"
trap 'rm -rf "$W"' EXIT
mkdir -p "$W/shards"
# The corpus's own export writes the records back as JSONL.
"$B" -C "$W/src" ingest "$SRC" -q > /dev/null 2>&1
"$B" -C "$W/src" export '*' -o "$W/all.jsonl" > /dev/null 2>&1
rm -rf "$W/src"
split -n l/7 -d --additional-suffix=.jsonl "$W/all.jsonl" "$W/shards/part-"
rm "$W/all.jsonl"
now() { date +%s.%N; }
med() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
: > "$W/plain"; : > "$W/job1"; : > "$W/job2"; : > "$W/commit2"
for r in $(seq "$RUNS"); do
  rm -rf "$W/p" "$W/j1" "$W/j2"
  s=$(now); "$B" -C "$W/p" ingest "$W/shards" -q > /dev/null 2>&1; e=$(now)
  echo "$e - $s" | bc >> "$W/plain"
  s=$(now); "$B" --threads 1 -C "$W/j1" ingest "$W/shards" --job a --task 0/1 -q > /dev/null 2>&1
  "$B" -C "$W/j1" commit --job a > /dev/null; e=$(now)
  echo "$e - $s" | bc >> "$W/job1"
  s=$(now)
  for i in 0 1; do "$B" --threads 1 -C "$W/j2" ingest "$W/shards" --job a --task $i/2 -q > /dev/null 2>&1 & done
  wait; m=$(now); "$B" -C "$W/j2" commit --job a > /dev/null; e=$(now)
  echo "$e - $s" | bc >> "$W/job2"; echo "$e - $m" | bc >> "$W/commit2"
  echo "run $r: ingest (all cores) $(tail -1 "$W/plain") s, job 1 task $(tail -1 "$W/job1") s, job 2 tasks $(tail -1 "$W/job2") s (commit $(tail -1 "$W/commit2") s)"
done
echo "median: ingest (all cores) $(med < "$W/plain") s, job of 1 task $(med < "$W/job1") s, job of 2 tasks $(med < "$W/job2") s, of which commit $(med < "$W/commit2") s; $(nproc) cores"
