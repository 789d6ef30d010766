"""Parquet ingest of files written by pyarrow, through the CLI only (no
compiled module needed): every supported column type, every codec and
several row groups ingest with the document counts per facet value that
pyarrow's `value_counts` gives; export gives the values back; binary
columns, a missing text column and a truncated file are refused with
nothing committed."""

from __future__ import annotations

import datetime as dt
import decimal
import json
from pathlib import Path
from typing import Dict, List

import pytest

pa = pytest.importorskip("pyarrow")
pc = pytest.importorskip("pyarrow.compute")
pq = pytest.importorskip("pyarrow.parquet")

from conftest import cli  # noqa: E402

N = 97
LANGS = ["en", "fr", "de", "es"]


def count(corpus: Path, query: str) -> int:
    return int(cli("count", query, corpus=corpus).stdout.decode().strip().replace(",", ""))


def every_type_table() -> "pa.Table":
    rows = range(N)
    text = [f"doc {i}\nline two \"quoted\" é" if i != 11 else "x" * (80 * 1024) + "\n end" for i in rows]
    return pa.table(
        {
            "id": pa.array([f"d{i}" for i in rows], pa.string()),
            "text": pa.array(text, pa.large_string()),
            "lang": pa.array([LANGS[i % 4] for i in rows]).dictionary_encode(),
            "source": pa.array([None if i % 5 == 0 else f"s{i % 3}" for i in rows], pa.large_string()),
            "site": pa.array([f"w{i % 2}" if i % 3 else None for i in rows], pa.string_view()),
            "tags": pa.array(
                [None if i % 7 == 0 else (["a", None, "b"] if i % 2 else ["a"]) for i in rows],
                pa.list_(pa.string()),
            ),
            "keys": pa.array([[f"k{i % 3}"] for i in rows], pa.large_list(pa.large_string())),
            "pair": pa.array([["p", f"q{i % 2}"] for i in rows], pa.list_(pa.string(), 2)),
            "meta": pa.array(
                [{"kind": f"m{i % 2}" if i % 4 else None, "score": i} for i in rows],
                pa.struct([("kind", pa.string()), ("score", pa.int32())]),
            ),
            "year": pa.array([None if i % 6 == 0 else 1900 + i for i in rows], pa.int64()),
            "u8": pa.array([i % 200 for i in rows], pa.uint8()),
            "i16": pa.array([i - 50 for i in rows], pa.int16()),
            "big": pa.array([(1 << 40) + i for i in rows], pa.uint64()),
            "f32": pa.array([i / 2 for i in rows], pa.float32()),
            "f64": pa.array([None if i % 10 == 0 else i / 4 for i in rows], pa.float64()),
            "price": pa.array([decimal.Decimal(1000 + i) / 100 for i in rows], pa.decimal128(10, 2)),
            "ok": pa.array([None if i % 9 == 8 else i % 2 == 0 for i in rows], pa.bool_()),
            "day": pa.array([dt.date(2020, 1, 1) + dt.timedelta(days=i) for i in rows], pa.date32()),
            "at": pa.array(
                [dt.datetime(2021, 5, 6, 7, 8, 9) + dt.timedelta(seconds=i) for i in rows], pa.timestamp("ms")
            ),
            "utc": pa.array(
                [dt.datetime(2021, 5, 6, 7, 8, 9, tzinfo=dt.timezone.utc) + dt.timedelta(minutes=i) for i in rows],
                pa.timestamp("us", tz="UTC"),
            ),
            "nothing": pa.nulls(N),
        }
    )


def docs_per_value(column: "pa.ChunkedArray") -> Dict[str, int]:
    """Documents per value of a string or list-of-strings column, by pyarrow."""
    t = column.type
    if pa.types.is_dictionary(t):
        column = column.cast(t.value_type)
        t = column.type
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        # A value counts once per document: dedupe within each list.
        parents = pc.list_parent_indices(column)
        flat = pc.list_flatten(column)
        pairs = pa.table({"p": parents, "v": flat.cast(pa.string())}).filter(pc.is_valid(pc.field("v")))
        column = pairs.group_by(["p", "v"]).aggregate([]).column("v")
    else:
        column = column.cast(pa.string())
    out = {}
    for vc in pc.value_counts(column).to_pylist():
        if vc["values"] is not None:
            out[vc["values"]] = vc["counts"]
    return out


def ingest(tmp: Path, table: "pa.Table", **write_args) -> Path:
    p = tmp / "in.parquet"
    pq.write_table(table, p, **write_args)
    corpus = tmp / "corpus"
    cli("ingest", "--quiet", str(p), corpus=corpus)
    return corpus


def check(corpus: Path, table: "pa.Table") -> None:
    assert count(corpus, "*") == table.num_rows
    for field in ["lang", "source", "site", "tags", "keys", "pair"]:
        want = docs_per_value(table.column(field))
        assert want, field
        for value, n in want.items():
            assert count(corpus, f'{field} = "{value}"') == n, (field, value)
        present = table.num_rows - table.column(field).null_count
        assert count(corpus, f"{field} exists") == present, field
    assert count(corpus, "year >= 1950") == pc.sum(pc.greater_equal(table.column("year"), 1950)).as_py()
    assert count(corpus, "f64 exists") == N - table.column("f64").null_count
    assert count(corpus, "ok = true") == pc.sum(pc.equal(table.column("ok"), True)).as_py()
    assert count(corpus, "price > 10.5") == pc.sum(pc.greater(table.column("price"), decimal.Decimal("10.5"))).as_py()
    assert count(corpus, "big > 1099511627775") == N

    out = cli("export", "*", corpus=corpus).stdout.decode()
    got = {d["id"]: d for d in map(json.loads, out.splitlines())}
    assert len(got) == N
    for row in table.to_pylist():
        d = got[row["id"]]
        assert d["text"] == row["text"]
        assert d["lang"] == row["lang"]
        assert d.get("year") == row["year"]
        assert d["u8"] == row["u8"] and d["i16"] == row["i16"] and d["big"] == row["big"]
        assert d.get("f64") == row["f64"]
        assert decimal.Decimal(str(d["price"])) == row["price"]
        assert d.get("tags") == (None if row["tags"] is None else [t for t in row["tags"] if t is not None])
        assert d["meta"]["score"] == row["meta"]["score"]
        assert d["meta"].get("kind") == row["meta"]["kind"]
        assert d["day"] == row["day"].isoformat()
        assert d["at"].startswith(row["at"].isoformat())
        assert d["utc"] == row["utc"].strftime("%Y-%m-%dT%H:%M:%SZ")
        assert "nothing" not in d


def test_every_type_counts_match_pyarrow(tmp_path: Path) -> None:
    t = every_type_table()
    corpus = ingest(tmp_path, t, compression="zstd", row_group_size=20)
    check(corpus, t)


@pytest.mark.parametrize("codec", ["none", "snappy", "gzip", "lz4", "brotli", "zstd"])
def test_every_codec(tmp_path: Path, codec: str) -> None:
    t = every_type_table()
    corpus = ingest(tmp_path, t, compression=codec, row_group_size=13, use_dictionary=codec != "none")
    check(corpus, t)


def refused(tmp: Path, path: Path, *wants: str) -> None:
    corpus = tmp / "refusing"
    ok = tmp / "ok.jsonl"
    ok.write_text('{"id": "j", "text": "t"}\n')
    cli("ingest", "--quiet", str(ok), corpus=corpus)
    log = cli("log", corpus=corpus).stdout
    r = cli("ingest", "--quiet", str(path), corpus=corpus, check=False)
    err = r.stderr.decode()
    assert r.returncode != 0
    for w in (str(path),) + wants:
        assert w in err, (w, err)
    assert cli("log", corpus=corpus).stdout == log
    assert count(corpus, "*") == 1


def test_binary_column_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "bin.parquet"
    pq.write_table(pa.table({"text": ["a"], "img": pa.array([b"\x89PNG"], pa.binary())}), p)
    refused(tmp_path, p, "column `img` has type Binary", "drop the column")
    p = tmp_path / "large.parquet"
    pq.write_table(pa.table({"text": ["a"], "m": pa.array([[("k", 1)]], pa.map_(pa.string(), pa.int64()))}), p)
    refused(tmp_path, p, "column `m` has type Map")


def test_missing_text_column_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "body.parquet"
    pq.write_table(pa.table({"id": ["a"], "content": ["words"], "n": [1]}), p)
    refused(tmp_path, p, "no column `text`", "string columns are: id, content", "--text-field")
    corpus = tmp_path / "c2"
    cli("ingest", "--quiet", "--text-field", "content", str(p), corpus=corpus)
    assert count(corpus, "n = 1") == 1


def test_truncated_file_is_refused(tmp_path: Path) -> None:
    full = tmp_path / "full.parquet"
    pq.write_table(every_type_table(), full, row_group_size=10)
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size * 2 // 3])
    refused(tmp_path, cut, "not a readable Parquet file")
