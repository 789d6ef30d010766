#!/usr/bin/env bash
# Writes the fuzz targets' seed inputs under tests/fuzz/seeds/<target>/ from
# the test data: queries of grammar/*.txt, lines of tests/data/golden.jsonl,
# mixture files, and (with the corpusql binary) a real stream state, the
# golden segments (formats 1 and 2), real tag sidecars and the golden
# sidecars of both formats. The text seeds are committed; the
# binary ones (segment, sidecar) are made here at run time.
# Usage: tests/fuzz/make_seeds.sh [path/to/corpusql]   (default: cargo run --release)
set -euo pipefail
cd "$(dirname "$0")/../.."
S=tests/fuzz/seeds
if [ $# -ge 1 ]; then CQ=("$1"); else CQ=(cargo run --release -q --); fi
mkdir -p $S/query $S/record $S/mixture $S/stream_state $S/segment $S/sidecar

# query: every valid query, and the query part of every invalid one.
i=0
while IFS= read -r line; do
  case "$line" in ''|'#'*) continue ;; esac
  printf '%s' "$line" > "$S/query/valid-$i"; i=$((i+1))
done < grammar/valid.txt
i=0
while IFS= read -r line; do
  case "$line" in ''|'#'*) continue ;; esac
  printf '%s' "${line% ## *}" > "$S/query/invalid-$i"; i=$((i+1))
done < grammar/invalid.txt

# record: each golden line.
i=0
while IFS= read -r line; do
  printf '%s' "$line" > "$S/record/golden-$i"; i=$((i+1))
done < tests/data/golden.jsonl

# mixture: the documented forms.
cat > $S/mixture/full.toml <<'TOML'
seed = 42
tokens = 50_000_000
seq_len = 2048
tokenizer = "bytes"
shuffle_window_blocks = 4
[[component]]
name = "fr"
query = "lang=fr and license in (cc-by-4.0, pd)"
weight = 0.5
max_epochs = 4
[[component]]
name = "code"
query = "lang=code"
weight = 0.5
TOML
printf '[[component]]\nname = "all"\nquery = "lang=fr"\nweight = 1\n' > $S/mixture/min.toml
printf 'seq_len = 16\ntokens = 100\n[[component]]\nname = "a"\nquery = "year >= 1900"\nweight = 1e-9\nmax_epochs = 0.5\n[[component]]\nname = "b"\nquery = "*"\nweight = 3\n' > $S/mixture/tiny.toml

# stream_state, segment, sidecar: from a tiny corpus built by the binary.
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
"${CQ[@]}" --corpus "$tmp/c" ingest tests/data/golden.jsonl >/dev/null
"${CQ[@]}" --corpus "$tmp/c" tag --taggers quality,pii >/dev/null
printf 'seed = 7\nseq_len = 16\ntokens = 4000\n[[component]]\nname = "fr"\nquery = "lang=fr"\nweight = 0.5\n[[component]]\nname = "rest"\nquery = "not lang=fr"\nweight = 0.5\n' > "$tmp/mix.toml"
"${CQ[@]}" --corpus "$tmp/c" stream "$tmp/mix.toml" --rank 0 --world 1 --stop-after 3 \
  --format u16 -o "$tmp/out.u16" --state-out $S/stream_state/real.json >/dev/null
python3 - "$S/stream_state" <<'PY'
import json, sys
d = sys.argv[1]
st = json.load(open(f"{d}/real.json"))
st["version"] = 1
st.pop("selection", None)
json.dump(st, open(f"{d}/v1.json", "w"))
st.update(version=2, next_sequence=18446744073709551615, selection="")
json.dump(st, open(f"{d}/far.json", "w"))
PY
for v in 1 2; do
  for f in tests/data/golden-v$v/seg-*.cqs; do cp "$f" "$S/segment/golden-v$v-$(basename "$f")"; done
done
cp tests/data/golden-frames/segment-v2.cqs $S/segment/golden-frame.cqs
for f in "$tmp"/c/seg-*.cqs; do cp "$f" "$S/segment/new-$(basename "$f")"; done
for f in "$tmp"/c/*.cqt; do cp "$f" $S/sidecar/; done
cp tests/data/golden-frames/sidecar-v*.cqt $S/sidecar/
echo "seeds: $(find $S -type f | wc -l) files under $S"
