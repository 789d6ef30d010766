#!/usr/bin/env bash
# The first stream with a new Hugging Face tokenizer against Hugging Face
# `tokenizers` `encode_batch` called from Python, on the same documents, one
# core each (`taskset -c 0`): tokens per second per core. Then the second
# stream (counts kept) and, when the build has it, a stream reading stored
# ids (`tokenize --keep-ids`) next to the byte tokenizer's stream.
#
#   PY=/work/venv/bin/python benches/tokenize_peers.sh [QUERY]
#
# Needs the shared real corpus (../shared/data) and a Python with
# `tokenizers`. Prints one line per measurement and a summary.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${CORPUSQL:-target/release/corpusql}"
PY="${PY:-python3}"
Q="${1:-lang=fr}"
W="${WORK:-/tmp/cq-tokbench}"
CPU="${CPU:-0}"
mkdir -p "$W"
C="$W/corpus"
if [ ! -d "$C" ]; then
  zstd -dc ../shared/data/realcorpus-dev.jsonl.zst > "$W/real.jsonl"
  "$BIN" -C "$C" ingest -q "$W/real.jsonl"
fi
TOK="$W/tokenizer.json"
if [ ! -s "$TOK" ]; then
  "$BIN" -C "$C" tokenizer train "lang in (fr, en)" --vocab-size 32000 -o "$TOK"
fi
"$BIN" -C "$C" export "$Q" --fields text -o "$W/sel.jsonl"
SEL_MB=$(du -m "$W/sel.jsonl" | cut -f1)
now() { date +%s.%N; }

# 1. corpusql: first stream (no counts beside the segments), one core.
rm -f "$C"/*.tok-hf-*.cqc "$C"/*.ids-*.cqi
t0=$(now)
taskset -c "$CPU" "$BIN" -C "$C" --threads 1 stream "$Q" --tokenizer "$TOK" --seq-len 2048 \
  --format u32 -o "$W/out.u32" --report "$W/first.json"
t1=$(now)
# 2. Second stream: counts kept.
taskset -c "$CPU" "$BIN" -C "$C" --threads 1 stream "$Q" --tokenizer "$TOK" --seq-len 2048 \
  --format u32 -o "$W/out2.u32"
t2=$(now)
# 3. The byte tokenizer's stream of the same query.
taskset -c "$CPU" "$BIN" -C "$C" --threads 1 stream "$Q" --tokenizer bytes --seq-len 2048 \
  --format u16 -o "$W/bytes.u16"
t3=$(now)
KEEP=""
if "$BIN" tokenize --help 2>/dev/null | grep -q -- --keep-ids; then
  "$BIN" -C "$C" tokenize --tokenizer "$TOK" --keep-ids -q >/dev/null
  t4=$(now)
  taskset -c "$CPU" "$BIN" -C "$C" --threads 1 stream "$Q" --tokenizer "$TOK" --seq-len 2048 \
    --format u32 -o "$W/out3.u32"
  t5=$(now)
  KEEP="$(echo "$t5 - $t4" | bc)"
fi
TOKENS=$("$PY" -c "import json,sys; print(json.load(open(sys.argv[1]))['tokens'])" "$W/first.json")
BYTES_TOKENS=$(( $(stat -c %s "$W/bytes.u16") / 2 ))

# 4. Hugging Face tokenizers from Python, one core, the same texts.
PEER=$(taskset -c "$CPU" env RAYON_NUM_THREADS=1 "$PY" - "$TOK" "$W/sel.jsonl" <<'EOF'
import json, sys, time
from tokenizers import Tokenizer
tok = Tokenizer.from_file(sys.argv[1])
texts = [json.loads(l)["text"] for l in open(sys.argv[2], encoding="utf-8")]
t = time.perf_counter()
encs = tok.encode_batch(texts, add_special_tokens=False)
n = sum(len(e.ids) for e in encs) + len(texts)
print(f"{time.perf_counter() - t:.3f} {n}")
EOF
)
PEER_S=${PEER% *}; PEER_TOK=${PEER#* }
FIRST="$(echo "$t1 - $t0" | bc)"; SECOND="$(echo "$t2 - $t1" | bc)"; BYTES="$(echo "$t3 - $t2" | bc)"
echo "selection: $Q, ${SEL_MB} MB of JSONL, $TOKENS tokens streamed (of $PEER_TOK in its documents)"
echo "corpusql first stream, 1 core:   ${FIRST} s, $(echo "$TOKENS / $FIRST" | bc) tokens/s"
echo "corpusql second stream, 1 core:  ${SECOND} s, $(echo "$TOKENS / $SECOND" | bc) tokens/s"
echo "tokenizers encode_batch, 1 core: ${PEER_S} s, $(echo "$PEER_TOK / $PEER_S" | bc) tokens/s"
echo "ratio (first stream / encode_batch, tokens/s): $(echo "scale=2; ($TOKENS / $FIRST) / ($PEER_TOK / $PEER_S)" | bc)"
echo "bytes stream, 1 core:            ${BYTES} s, $(echo "$BYTES_TOKENS / $BYTES" | bc) tokens/s"
if [ -n "$KEEP" ]; then
  echo "stored-ids stream, 1 core:       ${KEEP} s, $(echo "$TOKENS / $KEEP" | bc) tokens/s"
  echo "stored ids vs bytes, same documents (bytes wall / ids wall): $(echo "scale=2; $BYTES / $KEEP" | bc)"
  # The whole corpus, where the stream's own work outweighs opening it:
  # median of 3 walls each.
  med() { sort -n | sed -n 2p; }
  run() {
    for _ in 1 2 3; do
      a=$(now)
      taskset -c "$CPU" "$BIN" -C "$C" --threads 1 stream '*' --tokenizer "$1" --seq-len 2048 \
        --format u32 -o "$W/all.u32"
      echo "$(now) - $a" | bc
    done | med
  }
  AB=$(run bytes); AI=$(run "$TOK")
  echo "whole corpus, 1 core, median of 3: bytes ${AB} s, stored ids ${AI} s; bytes wall / ids wall: $(echo "scale=2; $AB / $AI" | bc)"
fi
