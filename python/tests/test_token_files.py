"""Token files written by ``corpusql export --format megatron|nanotron`` and
``corpusql mix export``, read by the trainers' own code: Megatron-LM's
``IndexedDataset`` (megatron-core) and its compiled blending helper, and
datatrove's ``DocumentTokenizer`` writing the same documents for
comparison. Every document must read back as the tokenizer's encoding of
its text plus the end-of-document id; the blended sample shares must match
the mixture's weights. CLI only: the Python module is not needed.

Needs: numpy, megatron-core (with torch), datatrove, tokenizers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
import pytest
from megatron.core.datasets import helpers_cpp
from megatron.core.datasets.indexed_dataset import IndexedDataset
from tokenizers import Tokenizer

from conftest import cli

EOT = "<|endoftext|>"


def records(corpus: Path, query: str) -> List[dict]:
    """The selection's records, in export (storage) order."""
    out = cli("export", query, corpus=corpus).stdout
    return [json.loads(line) for line in out.splitlines() if line]


def provenance(prefix: Path) -> List[dict]:
    text = Path(f"{prefix}.provenance.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines()]


@pytest.fixture(scope="module")
def bpe(demo_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small byte-level BPE trained on the demo corpus by the CLI."""
    p = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    cli("tokenizer", "train", "*", "--vocab-size", "600", "-o", str(p), corpus=demo_corpus)
    return p


def encoders(bpe: Path) -> Dict[str, Tuple[str, object]]:
    tok = Tokenizer.from_file(str(bpe))
    eos = tok.token_to_id(EOT)
    return {
        "bytes": ("bytes", lambda t: list(t.encode("utf-8")) + [256]),
        "bpe": (str(bpe), lambda t: tok.encode(t, add_special_tokens=False).ids + [eos]),
    }


@pytest.mark.parametrize("which", ["bytes", "bpe"])
def test_megatron_files_read_with_indexed_dataset(demo_corpus: Path, bpe: Path, tmp_path: Path, which: str) -> None:
    spec, encode = encoders(bpe)[which]
    query = "lang=fr or lang=de"
    prefix = tmp_path / "out"
    cli("export", query, "--format", "megatron", "--tokenizer", spec, "-o", str(prefix), corpus=demo_corpus)
    recs = records(demo_corpus, query)
    ds = IndexedDataset(str(prefix), mmap=True)
    assert len(ds) == len(recs) > 1000
    assert ds.index.dtype == np.uint16
    assert list(ds.document_indices) == list(range(len(recs) + 1))
    prov = provenance(prefix)
    offset = 0
    for i, rec in enumerate(recs):
        want = encode(rec["text"])
        got = ds[i]
        assert got.tolist() == want, f"document {i} ({rec['id']})"
        assert prov[i]["key"] == rec["id"]
        assert (prov[i]["doc"], prov[i]["offset"], prov[i]["tokens"]) == (i, offset, len(want))
        assert prov[i]["license"] == rec.get("license")
        offset += len(want)
    assert offset == int(ds.sequence_lengths.sum())


@pytest.mark.parametrize("which", ["bytes", "bpe"])
def test_nanotron_files_read_with_numpy(demo_corpus: Path, bpe: Path, tmp_path: Path, which: str) -> None:
    spec, encode = encoders(bpe)[which]
    prefix = tmp_path / "out"
    cli("export", "lang=en", "--format", "nanotron", "--tokenizer", spec, "-o", str(prefix), corpus=demo_corpus)
    recs = records(demo_corpus, "lang=en")
    tokens = np.fromfile(f"{prefix}.ds", dtype="<u2")
    ends = np.fromfile(f"{prefix}.ds.index", dtype="<u8")
    meta = Path(f"{prefix}.ds.metadata").read_text().split("\n")
    assert meta[0] == f"{spec}|2" and int(meta[1]) == len(tokens)
    assert len(ends) == len(recs) and ends[-1] == len(tokens)
    start = 0
    for i, rec in enumerate(recs):
        assert tokens[start : ends[i]].tolist() == encode(rec["text"]), f"document {i}"
        start = int(ends[i])


def test_nanotron_files_equal_datatrove_document_tokenizer(demo_corpus: Path, bpe: Path, tmp_path: Path) -> None:
    """datatrove's DocumentTokenizer (no shuffling) writes the same bytes."""
    from datatrove.data import Document
    from datatrove.pipeline.tokens.tokenizer import DocumentTokenizer

    prefix = tmp_path / "ours"
    cli("export", "lang=de", "--format", "nanotron", "--tokenizer", str(bpe), "-o", str(prefix), corpus=demo_corpus)
    recs = records(demo_corpus, "lang=de")
    out = tmp_path / "datatrove"
    step = DocumentTokenizer(
        output_folder=str(out),
        tokenizer_name_or_path=str(bpe),
        eos_token=EOT,
        shuffle_documents=False,
        save_filename="dt",
    )
    step.run((Document(text=r["text"], id=r["id"]) for r in recs), rank=0, world_size=1)
    (ds,) = sorted(out.glob("*.ds"))
    assert ds.read_bytes() == Path(f"{prefix}.ds").read_bytes()
    assert Path(f"{ds}.index").read_bytes() == Path(f"{prefix}.ds.index").read_bytes()
    theirs = Path(f"{ds}.metadata").read_text().split("\n")
    ours = Path(f"{prefix}.ds.metadata").read_text().split("\n")
    assert theirs == ours


def test_mix_export_blends_to_the_mixture_weights(demo_corpus: Path, tmp_path: Path) -> None:
    mix = tmp_path / "mix.toml"
    mix.write_text(
        "seed = 3\ntokens = 2000000\nseq_len = 256\n"
        '[[component]]\nname = "fr"\nquery = "lang=fr"\nweight = 0.7\n'
        '[[component]]\nname = "en"\nquery = "lang=en"\nweight = 0.2\n'
        '[[component]]\nname = "de"\nquery = "lang=de"\nweight = 0.1\n'
    )
    out = tmp_path / "out"
    cli("mix", "export", str(mix), "--format", "megatron", "-o", str(out), corpus=demo_corpus)
    words = (out / "data-path.txt").read_text().split()
    weights = [float(w) for w in words[0::2]]
    prefixes = words[1::2]
    assert weights == pytest.approx([0.7, 0.2, 0.1])
    sheet = json.loads((out / "datasheet.json").read_text())
    assert sheet["train_samples"] == 2000000 // 256
    for c, p in zip(sheet["components"], prefixes):
        ds = IndexedDataset(p, mmap=True)
        assert len(ds) == c["files"]["documents"]
        assert int(ds.sequence_lengths.sum()) == c["files"]["tokens"]
        assert [r["key"] for r in provenance(Path(p))] == [r["id"] for r in records(demo_corpus, c["query"])]
    # Megatron's BlendedDataset draws samples (sequences of seq_length
    # tokens) with build_blending_indices over the normalized weights:
    # sample shares are token shares.
    n = 10_000
    w = np.array(weights, dtype=np.float64)
    w /= w.sum()
    dataset_index = np.zeros(n, dtype=np.int16)
    dataset_sample_index = np.zeros(n, dtype=np.int64)
    helpers_cpp.build_blending_indices(dataset_index, dataset_sample_index, w, len(w), n, False)
    shares = np.bincount(dataset_index, minlength=len(w)) / n
    for got, want in zip(shares, [0.7, 0.2, 0.1]):
        assert abs(got - want) < 0.005, (shares, weights)
    md = (out / "datasheet.md").read_text()
    assert "--data-path" in md and "| fr |" in md


def test_failed_exports_leave_no_file(demo_corpus: Path, tmp_path: Path) -> None:
    prefix = tmp_path / "out"
    r = cli(
        "export", "*", "--format", "megatron", "--tokenizer", str(tmp_path / "missing.json"),
        "-o", str(prefix), corpus=demo_corpus, check=False,
    )
    assert r.returncode != 0 and b"missing.json" in r.stderr
    assert list(tmp_path.iterdir()) == []
