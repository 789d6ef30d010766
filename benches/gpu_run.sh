#!/usr/bin/env bash
# GPU benchmark: `corpusql stream` piped into a small GPT trained in PyTorch
# (benches/gpu_train.py). Prints one JSON object: tokens/s consumed, mean
# step time, fraction of step time spent waiting for data, device, torch.
#
# usage: benches/gpu_run.sh CORPUSQL_BIN CORPUS_DIR [MIX.toml]
#
#   CORPUSQL_BIN  the x86-64 corpusql binary carried to the GPU machine
#   CORPUS_DIR    a corpus directory; if it does not exist, the binary
#                 builds the demo corpus there (`corpusql demo`, no network)
#   MIX.toml      optional mixture; its seq_len must be SEQ+1 and its
#                 tokenizer must give ids below VOCAB. By default a
#                 Lucie-like byte-level blend of the corpus is used.
#
# Environment (defaults): STEPS=300 WARMUP=20 BATCH=16 SEQ=1024 (model
# context; the stream's sequences are SEQ+1 tokens) VOCAB=257 LAYERS=6
# D=384 HEADS=6 DEMO_DOCS=20000 PYTHON=python3 TRAIN_FLAGS="" (e.g. --sync
# or --compile), OUT=<file to also write the JSON to>.
#
# Needs: CUDA + PyTorch + NumPy on the machine; no Rust, no network.
set -euo pipefail

BIN=$(realpath "${1:?usage: gpu_run.sh CORPUSQL_BIN CORPUS_DIR [MIX.toml]}")
CORPUS=${2:?usage: gpu_run.sh CORPUSQL_BIN CORPUS_DIR [MIX.toml]}
MIX=${3:-}
HERE=$(cd "$(dirname "$0")" && pwd)
STEPS=${STEPS:-300}
WARMUP=${WARMUP:-20}
BATCH=${BATCH:-16}
SEQ=${SEQ:-1024}
VOCAB=${VOCAB:-257}
LAYERS=${LAYERS:-6}
D=${D:-384}
HEADS=${HEADS:-6}
PYTHON=${PYTHON:-python3}
TRAIN_FLAGS=${TRAIN_FLAGS:-}
ROW=$((SEQ + 1))
ROWS=$(((STEPS + WARMUP) * BATCH))
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

if [ ! -e "$CORPUS" ]; then
    echo "building the demo corpus in $CORPUS (${DEMO_DOCS:-20000} documents)" >&2
    "$BIN" demo --dir "$CORPUS" --docs "${DEMO_DOCS:-20000}" >/dev/null
fi

if [ -z "$MIX" ]; then
    MIX=$WORK/mix.toml
    # Budget: exactly the sequences the run consumes (upsampled if needed).
    cat >"$MIX" <<EOF
seed = 1
tokens = $((ROWS * ROW))
seq_len = $ROW
tokenizer = "bytes"

[[component]]
name = "fr"
query = "lang=fr"
weight = 45

[[component]]
name = "en"
query = "lang=en"
weight = 45

[[component]]
name = "code"
query = "lang=code"
weight = 8

[[component]]
name = "de-es"
query = "lang in (de, es)"
weight = 2
EOF
fi

echo "== plan" >&2
"$BIN" -C "$CORPUS" mix plan "$MIX" >&2

# The producer alone, to /dev/null: how fast corpusql can feed.
echo "== producer alone: $ROWS sequences of $ROW" >&2
t0=$(date +%s.%N)
"$BIN" -C "$CORPUS" stream "$MIX" --format u16 --stop-after "$ROWS" -o /dev/null
t1=$(date +%s.%N)
PRODUCER_S=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }')
PRODUCER_TPS=$(awk -v s="$PRODUCER_S" -v n=$((ROWS * ROW)) 'BEGIN { printf "%.0f", n / s }')
echo "   $PRODUCER_S s, $PRODUCER_TPS tokens/s" >&2

# The pipe: corpusql -> trainer. --stop-after makes corpusql end exactly
# when the trainer has read what it needs.
echo "== training: $STEPS steps (+$WARMUP warm-up) of $BATCH x $SEQ" >&2
EXTRA=$(printf '{"producer_alone_s": %s, "producer_alone_tokens_per_s": %s, "corpus": "%s", "corpusql_stream_sequences": %s}' \
    "$PRODUCER_S" "$PRODUCER_TPS" "$CORPUS" "$ROWS")
# shellcheck disable=SC2086
"$BIN" -C "$CORPUS" stream "$MIX" --format u16 --stop-after "$ROWS" -o - \
    --report "$WORK/report.json" |
    "$PYTHON" "$HERE/gpu_train.py" --batch "$BATCH" --seq "$ROW" --steps "$STEPS" \
        --warmup "$WARMUP" --vocab "$VOCAB" --layers "$LAYERS" --d "$D" --heads "$HEADS" \
        --extra "$EXTRA" $TRAIN_FLAGS | tee "$WORK/result.json"
if [ -n "${OUT:-}" ]; then
    cp "$WORK/result.json" "$OUT"
fi
echo "== corpusql report" >&2
cat "$WORK/report.json" >&2 || true
