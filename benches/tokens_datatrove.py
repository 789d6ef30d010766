"""Times datatrove's DocumentTokenizer writing nanotron token files from
the same documents `corpusql export --format nanotron` reads, for
docs/token-files.md.

    corpusql export '*' -o docs.jsonl
    python benches/tokens_datatrove.py docs.jsonl tokenizer.json OUT_DIR

Prints documents, tokens, seconds and tokens/s (reading the JSONL is
timed apart and not counted). RAYON_NUM_THREADS bounds the tokenizer's
threads (encode_batch is parallel in Rust). The documents are held in
memory: on the 187 MiB shared corpus the process peaked far above that
(it was killed by the OOM killer after writing its files), so give it a
machine with room or a smaller input.
"""

import json
import struct
import sys
import time
from pathlib import Path

from datatrove.data import Document
from datatrove.pipeline.tokens.tokenizer import DocumentTokenizer


def main() -> None:
    src, tokenizer, out = sys.argv[1:4]
    t0 = time.perf_counter()
    docs = []
    with open(src) as f:
        for line in f:
            r = json.loads(line)
            docs.append(Document(text=r["text"], id=r["id"]))
    t1 = time.perf_counter()
    step = DocumentTokenizer(
        output_folder=out,
        tokenizer_name_or_path=tokenizer,
        eos_token="<|endoftext|>",
        shuffle_documents=False,
        save_filename="datatrove",
    )
    step.run(iter(docs), rank=0, world_size=1)
    t2 = time.perf_counter()
    # The token count from the index (the last document end), not the step's stats.
    (index,) = sorted(Path(out).glob("*.ds.index"))
    with open(index, "rb") as f:
        f.seek(-8, 2)
        tokens = struct.unpack("<Q", f.read(8))[0]
    print(json.dumps({"documents": len(docs), "tokens": tokens, "read_s": round(t1 - t0, 2),
                      "seconds": round(t2 - t1, 2), "tokens_per_s": round(tokens / (t2 - t1))}))


if __name__ == "__main__":
    main()
