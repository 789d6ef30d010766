"""`corpusql export --format parquet` read by pyarrow, DuckDB and Hugging
Face `datasets`: the same rows as the JSONL export of the same query and
options (compared as Python dicts), under the same policy, and a Parquet
file of every common type ingested and exported back value for value.

CLI only (the `cli` helper of conftest.py); needs pyarrow and duckdb,
`datasets` optionally.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, List

import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
duckdb = pytest.importorskip("duckdb")

from conftest import cli  # noqa: E402

ENCODING_KEY = b"corpusql.encoding"


def normal(v: Any) -> Any:
    """A value as compared: null members left out (Parquet holds an absent
    field as null), containers normalised recursively."""
    if isinstance(v, dict):
        return {k: normal(x) for k, x in v.items() if x is not None}
    if isinstance(v, (list, tuple)):
        return [normal(x) for x in v]
    return v


def decode_json(v: Any, ty: "pa.DataType", field: "pa.Field | None" = None) -> Any:
    """Parses back the values of fields marked `corpusql.encoding = json`."""
    if v is None:
        return None
    if field is not None and (field.metadata or {}).get(ENCODING_KEY) == b"json":
        return json.loads(v)
    if pa.types.is_struct(ty):
        return {
            k: decode_json(x, ty.field(k).type, ty.field(k)) if ty.get_field_index(k) >= 0 else x
            for k, x in v.items()
        }
    if pa.types.is_list(ty):
        return [decode_json(x, ty.value_type, ty.value_field) for x in v]
    return v


def rows_of_table(table: "pa.Table", rows: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    schema = table.schema
    out = []
    for r in rows:
        out.append(
            normal({k: decode_json(x, schema.field(k).type, schema.field(k)) for k, x in r.items()})
        )
    return out


def jsonl_rows(corpus: Path, *args: str) -> List[Dict[str, Any]]:
    out = cli("export", *args, corpus=corpus).stdout
    return [normal(json.loads(l)) for l in out.splitlines() if l.strip()]


def export_parquet(corpus: Path, path: Path, *args: str):
    return cli("export", *args, "--format", "parquet", "-o", str(path), corpus=corpus)


def pyarrow_rows(path: Path) -> List[Dict[str, Any]]:
    t = pq.read_table(path)
    return rows_of_table(t, t.to_pylist())


def duckdb_rows(path: Path) -> List[Dict[str, Any]]:
    t = pq.read_table(path)
    rel = duckdb.sql(f"select * from read_parquet('{path}')")
    names = rel.columns
    rows = [dict(zip(names, r)) for r in rel.fetchall()]
    return rows_of_table(t, rows)


CASES = [
    ("*",),
    ("*", "--signals"),
    ("lang = fr", "--fields", "id,lang,meta,license_class,bytes", "--limit", "100"),
    ("lang = en", "--limit", "7"),
]


@pytest.mark.parametrize("args", CASES, ids=lambda a: " ".join(a))
def test_pyarrow_and_duckdb_read_the_jsonl_rows(demo_corpus: Path, tmp_path: Path, args):
    path = tmp_path / "out.parquet"
    r = export_parquet(demo_corpus, path, *args)
    want = jsonl_rows(demo_corpus, *args)
    assert f"exported {len(want)} documents".encode() in r.stderr
    assert pyarrow_rows(path) == want
    assert duckdb_rows(path) == want
    md = pq.ParquetFile(path).metadata
    assert md.num_rows == len(want)
    for g in range(md.num_row_groups):
        rg = md.row_group(g)
        for c in range(rg.num_columns):
            assert rg.column(c).compression == "ZSTD"


def test_nested_meta_is_a_struct(demo_corpus: Path, tmp_path: Path):
    path = tmp_path / "m.parquet"
    export_parquet(demo_corpus, path, "*", "--limit", "50")
    t = pq.read_table(path)
    assert pa.types.is_struct(t.schema.field("meta").type)
    n = duckdb.sql(f"select count(*) from read_parquet('{path}') where meta.url is not null").fetchall()[0][0]
    assert n == sum(1 for r in t.to_pylist() if (r["meta"] or {}).get("url") is not None)


def stderr_lines(r) -> List[str]:
    return [l for l in r.stderr.decode().splitlines() if not l.startswith("exported ")]


def test_policy_as_for_jsonl(policy_corpus: Path, tmp_path: Path):
    path = tmp_path / "p.parquet"
    held = export_parquet(policy_corpus, path, "*")
    jsonl = cli("export", "*", corpus=policy_corpus)
    want = [normal(json.loads(l)) for l in jsonl.stdout.splitlines() if l.strip()]
    assert pyarrow_rows(path) == want
    assert stderr_lines(held) == stderr_lines(jsonl)
    assert any("--override-policy" in l for l in stderr_lines(held))
    total = int(cli("count", "*", corpus=policy_corpus).stdout.split()[0])
    assert len(want) < total

    over = export_parquet(policy_corpus, path, "*", "--override-policy")
    assert pq.read_table(path).num_rows == total
    assert stderr_lines(over) == stderr_lines(cli("export", "*", "--override-policy", corpus=policy_corpus))


def typed_rows() -> List[Dict[str, Any]]:
    rows = []
    for i in range(40):
        rows.append(
            {
                "id": f"doc-{i:03}",
                "text": f"document {i} " + "é" * (i % 7),
                "n": i * 3 - 20,
                "score": i / 8 + 0.25,
                "ok": i % 3 == 0,
                "label": None if i % 5 == 0 else f"l{i % 4}",
                "tags": [f"t{j}" for j in range(i % 4)],
                "meta": {
                    "lang": "en" if i % 2 else "fr",
                    "weight": i * 0.5,
                    "inner": {"k": i, "note": None if i % 3 else "three"},
                },
                "maybe": None if i % 2 else i,
            }
        )
    return rows


def typed_table(rows: List[Dict[str, Any]]) -> "pa.Table":
    schema = pa.schema(
        [
            ("id", pa.string()),
            ("text", pa.string()),
            ("n", pa.int64()),
            ("score", pa.float64()),
            ("ok", pa.bool_()),
            ("label", pa.string()),
            ("tags", pa.list_(pa.string())),
            (
                "meta",
                pa.struct(
                    [
                        ("lang", pa.string()),
                        ("weight", pa.float64()),
                        ("inner", pa.struct([("k", pa.int64()), ("note", pa.string())])),
                    ]
                ),
            ),
            ("maybe", pa.int64()),
        ]
    )
    return pa.Table.from_pylist(rows, schema=schema)


def check_round_trip(corpus: Path, tmp_path: Path, rows: List[Dict[str, Any]]):
    out = tmp_path / "back.parquet"
    export_parquet(corpus, out, "*")
    t = pq.read_table(out)
    want = [normal(r) for r in rows]
    assert pyarrow_rows(out) == want
    assert duckdb_rows(out) == want
    types = {f.name: f.type for f in t.schema}
    assert types["n"] == pa.int64() and types["maybe"] == pa.int64()
    assert types["score"] == pa.float64() and types["ok"] == pa.bool_()
    assert types["tags"] == pa.list_(pa.string()) or pa.types.is_list(types["tags"])
    assert pa.types.is_struct(types["meta"])
    assert pa.types.is_struct(types["meta"].field("inner").type)


def test_typed_rows_ingested_as_jsonl_export_back(tmp_path: Path):
    rows = typed_rows()
    src = tmp_path / "typed.jsonl"
    src.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    corpus = tmp_path / "c"
    cli("ingest", str(src), "--quiet", corpus=corpus)
    check_round_trip(corpus, tmp_path, rows)


def test_parquet_written_by_pyarrow_ingested_and_exported_back(tmp_path: Path):
    rows = typed_rows()
    src = tmp_path / "typed.parquet"
    pq.write_table(typed_table(rows), src)
    corpus = tmp_path / "c"
    cli("ingest", str(src), "--quiet", corpus=corpus)
    check_round_trip(corpus, tmp_path, rows)


def test_empty_selection_is_a_valid_file(demo_corpus: Path, tmp_path: Path):
    path = tmp_path / "e.parquet"
    export_parquet(demo_corpus, path, "lang = xx")
    t = pq.read_table(path)
    assert t.num_rows == 0
    assert {"id", "text", "lang"} <= set(t.column_names)
    assert duckdb.sql(f"select count(*) from read_parquet('{path}')").fetchall()[0][0] == 0


def test_parquet_needs_an_output_file(demo_corpus: Path):
    r = cli("export", "*", "--format", "parquet", corpus=demo_corpus, check=False)
    assert r.returncode != 0
    assert b"-o FILE.parquet" in r.stderr


def test_datasets_loads_the_file(demo_corpus: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    datasets = pytest.importorskip("datasets")
    path = tmp_path / "d.parquet"
    args = ("*", "--limit", "300", "--signals")
    export_parquet(demo_corpus, path, *args)
    ds = datasets.load_dataset("parquet", data_files=str(path), split="train", cache_dir=str(tmp_path / "hf"))
    t = pq.read_table(path)
    got = rows_of_table(t, [dict(r) for r in ds])
    assert got == jsonl_rows(demo_corpus, *args)
