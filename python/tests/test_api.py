"""The Python API against the CLI.

Every expected value here comes from the `corpusql` binary run on the same
corpus (or from another call of the API whose meaning is independent, such
as a count of the documents a policy holds back): the binding must give what
the CLI gives. Corpora are built once per session (conftest.py); tests that
write use their own copies.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
import pytest

import corpusql
from conftest import POLICY_ALLOW, SHARED, cli, cli_json

ALLOWED = "license_class in ({})".format(", ".join(POLICY_ALLOW))


def jsonl(data: bytes) -> List[Dict[str, Any]]:
    """JSONL as the CLI prints it (split on newlines only: a JSON string may
    hold U+2028 and the like unescaped)."""
    return [json.loads(line) for line in data.decode().split("\n") if line]


def same_records(got: List[Dict[str, Any]], want: List[Dict[str, Any]]) -> None:
    """Equal records, fields in the same order."""
    assert len(got) == len(want)
    assert got == want
    assert [list(r) for r in got] == [list(r) for r in want]


def cli_error(*args: str, corpus: Path) -> str:
    """The CLI's stderr for a command that must fail."""
    r = cli(*args, corpus=corpus, check=False)
    assert r.returncode != 0, f"corpusql {' '.join(args)} succeeded"
    return r.stderr.decode()


# ---------------------------------------------------------------------------
# 1. count, query, stats, get and schema on the real corpus
# ---------------------------------------------------------------------------

REAL_QUERIES = [
    "lang=fr",  # facet equality
    "lang in (de, es, it)",  # in
    "bytes >= 2000 and bytes < 3000",  # numeric range
    "not lang=code and source=debian-manpages",  # not
    "license_class in (public-domain, permissive)",  # derived facet
    "prog_lang=rust or source=gimp-*",  # a field some documents lack, a glob
]


@pytest.fixture(scope="module")
def real(real_corpus: Path) -> corpusql.Corpus:
    return corpusql.open(real_corpus)


def test_real_corpus_opens_as_the_cli_sees_it(real: corpusql.Corpus, real_corpus: Path) -> None:
    assert len(real) == int(cli("count", "*", corpus=real_corpus).stdout)
    assert real.generation == cli_json("schema", "--json", corpus=real_corpus)["generation"]
    assert Path(real.path).resolve() == real_corpus.resolve()


@pytest.mark.parametrize("q", REAL_QUERIES)
def test_count_matches_cli(real: corpusql.Corpus, real_corpus: Path, q: str) -> None:
    n = real.count(q)
    assert n == int(cli("count", q, corpus=real_corpus).stdout)
    assert 0 < n < len(real)


@pytest.mark.parametrize("q", REAL_QUERIES)
def test_query_fields_limit_matches_cli(real: corpusql.Corpus, real_corpus: Path, q: str) -> None:
    fields = ["id", "license", "license_class", "prog_lang", "bytes"]
    got = list(real.query(q, fields=fields, limit=40))
    want = jsonl(cli("query", q, "--fields", ",".join(fields), "--limit", "40", corpus=real_corpus).stdout)
    same_records(got, want)
    assert len(got) == min(40, real.count(q))


@pytest.mark.parametrize("q", ["source=sword", "lang=fr and bytes < 3000"])
def test_query_full_records_match_cli(real: corpusql.Corpus, real_corpus: Path, q: str) -> None:
    got = list(real.query(q))
    same_records(got, jsonl(cli("query", q, corpus=real_corpus).stdout))
    assert len(got) == real.count(q)


def test_query_signals_match_cli(real: corpusql.Corpus, real_corpus: Path) -> None:
    q = "lang=de and bytes < 2000"
    got = list(real.query(q, signals=True, limit=200))
    same_records(got, jsonl(cli("query", q, "--signals", "--limit", "200", corpus=real_corpus).stdout))
    assert all("license_class" in r for r in got)


def test_query_limit_zero_and_no_match(real: corpusql.Corpus, real_corpus: Path) -> None:
    assert list(real.query("lang=fr", limit=0)) == jsonl(
        cli("query", "lang=fr", "--limit", "0", corpus=real_corpus).stdout
    )
    assert list(real.query("lang=fr and lang=de")) == []


STATS_CASES = [
    ("*", ["lang", "license_class"]),
    ("lang=fr", ["source"]),
    ("lang in (de, es, it)", ["lang", "license"]),
    ("bytes >= 2000 and bytes < 3000", ["prog_lang"]),
    ("not lang=code", []),
    ("license_class in (public-domain, permissive)", ["license_id", "source"]),
]


@pytest.mark.parametrize("q,by", STATS_CASES)
def test_stats_match_cli(real: corpusql.Corpus, real_corpus: Path, q: str, by: List[str]) -> None:
    args = ["stats", q, "--json"] + (["--by", ",".join(by)] if by else [])
    want = cli_json(*args, corpus=real_corpus)
    assert real.stats_summary(q, by=by) == want
    rows = real.stats(q, by=by)
    assert rows == [
        {**dict(zip(want["by"], g["values"])), **{k: v for k, v in g.items() if k != "values"}}
        for g in want["groups"]
    ]
    assert sum(r["docs"] for r in rows) == real.count(q) == want["docs"]


def test_get_matches_cli(real: corpusql.Corpus, real_corpus: Path) -> None:
    keys = [r["id"] for q in REAL_QUERIES for r in real.query(q, fields=["id"], limit=2)]
    assert len(set(keys)) >= 6
    for key in keys:
        got = real.get(key)
        want = json.loads(cli("get", key, corpus=real_corpus).stdout)
        assert got == want and list(got) == list(want)
        assert got["id"] == key
        assert real.get(key, signals=True) == json.loads(cli("get", key, "--signals", corpus=real_corpus).stdout)
    assert real.get("no-such-key") is None
    assert "no-such-key" in cli_error("get", "no-such-key", corpus=real_corpus)


@pytest.mark.parametrize("values", [5, 2])
def test_schema_matches_cli(real: corpusql.Corpus, real_corpus: Path, values: int) -> None:
    want = cli_json("schema", "--json", "--values", str(values), corpus=real_corpus)
    got = real.schema(values=values)
    for d in (got, want):
        d.pop("tag_on_ingest", None)
    assert got == want
    assert got["documents"] == len(real)


# ---------------------------------------------------------------------------
# 2. plan, report, trace of a mixture (demo corpus, with and without policy)
# ---------------------------------------------------------------------------

MIX_TOML = """\
seed = 7
tokens = 200_000
seq_len = 256

[[component]]
name = "fr"
query = "lang=fr"
weight = 0.6

[[component]]
name = "code"
query = "lang=code"
weight = 0.4
"""

MIX_DICT = {
    "seed": 7,
    "tokens": 200_000,
    "seq_len": 256,
    "components": [
        {"name": "fr", "query": "lang=fr", "weight": 0.6},
        {"name": "code", "query": "lang=code", "weight": 0.4},
    ],
}
MIX_QUERY = "(lang=fr or lang=code)"
SEQ_LEN = 256
EOS = 256  # the bytes tokenizer's end-of-document id


@pytest.fixture(scope="session")
def mix_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("mix") / "mix.toml"
    p.write_text(MIX_TOML)
    return p


@pytest.fixture(params=["demo_corpus", "policy_corpus"])
def mix_corpus(request: pytest.FixtureRequest) -> Path:
    return request.getfixturevalue(request.param)


def test_mixture_forms_agree(mix_file: Path) -> None:
    a = corpusql.Mixture.from_file(mix_file)
    b = corpusql.Mixture.parse(MIX_TOML)
    c = corpusql.Mixture.from_dict(MIX_DICT)
    assert a.hash == b.hash == c.hash
    assert a.components == ["fr", "code"] and a.seq_len == SEQ_LEN and a.tokenizer == "bytes"
    assert corpusql.Mixture.from_dict(a.to_dict()).hash == a.hash


def test_plan_matches_cli(mix_corpus: Path, mix_file: Path) -> None:
    c = corpusql.open(mix_corpus)
    want = cli_json("mix", "plan", str(mix_file), "--json", corpus=mix_corpus)
    for m in (mix_file, str(mix_file), corpusql.Mixture.parse(MIX_TOML), MIX_DICT):
        assert c.plan(m) == want
    if not (mix_corpus / "policy.toml").exists():
        assert want["mixture_hash"] == corpusql.Mixture.from_file(mix_file).hash
    over = cli_json("mix", "plan", str(mix_file), "--json", "--override-policy", corpus=mix_corpus)
    assert c.plan(mix_file, override_policy=True) == over


def test_plan_under_policy_counts_allowed_documents(policy_corpus: Path, mix_file: Path) -> None:
    c = corpusql.open(policy_corpus)
    plan = c.plan(mix_file)
    over = c.plan(mix_file, override_policy=True)
    for comp, comp_over in zip(plan["components"], over["components"]):
        q = comp["query"]
        assert comp["docs"] == c.count(f"({q}) and {ALLOWED}")
        assert comp_over["docs"] == c.count(q)
        assert comp["docs"] < comp_over["docs"]


def _report_body(d: Dict[str, Any]) -> Dict[str, Any]:
    """A datasheet without its time stamp and labels."""
    return {k: v for k, v in d.items() if k not in ("generated_unix", "title", "selection")}


@pytest.mark.parametrize("override", [False, True])
def test_report_of_mixture_matches_cli(mix_corpus: Path, mix_file: Path, override: bool) -> None:
    c = corpusql.open(mix_corpus)
    extra = ["--override-policy"] if override else []
    want = cli_json("report", str(mix_file), "--json", *extra, corpus=mix_corpus)
    got = c.report(mix_file, override_policy=override)
    assert set(got) == set(want)
    assert _report_body(got) == _report_body(want)
    held_back = (mix_corpus / "policy.toml").exists() and not override
    # The training set the stream emits: some of the components' documents
    # (the budget is below one pass), its tokens those of the stream.
    selected = c.count(f"{MIX_QUERY} and {ALLOWED}" if held_back else MIX_QUERY)
    assert 0 < got["totals"]["docs"] <= selected
    plan = c.plan(mix_file, override_policy=override)
    assert got["totals"]["tokens"] == got["training"]["tokens"] == plan["sequences"] * SEQ_LEN


def test_report_of_mixture_file_is_labelled_like_cli(demo_corpus: Path, mix_file: Path) -> None:
    want = cli_json("report", str(mix_file), "--json", corpus=demo_corpus)
    got = corpusql.open(demo_corpus).report(mix_file)
    assert (got["title"], got["selection"]) == (want["title"], want["selection"])


@pytest.mark.parametrize("override", [False, True])
def test_report_of_query_matches_cli(mix_corpus: Path, override: bool) -> None:
    c = corpusql.open(mix_corpus)
    q = "lang in (de, es)"
    extra = ["--override-policy"] if override else []
    want = cli_json("report", q, "--json", *extra, corpus=mix_corpus)
    got = c.report(query=q, override_policy=override)
    want.pop("generated_unix")
    got.pop("generated_unix")
    assert got == want
    with pytest.raises(corpusql.CorpusqlError, match="not both"):
        c.report(corpusql.Mixture.parse(MIX_TOML), query=q)


def _stream_rows(c: corpusql.Corpus, mix: Any, override: bool = False) -> np.ndarray:
    return np.concatenate(list(c.stream(mix, batch_size=64, override_policy=override)))


@pytest.mark.parametrize("sequence,offset", [(3, 17), (3, None), (0, 0), (400, 255), (780, None)])
def test_trace_matches_cli_and_the_stream(mix_corpus: Path, mix_file: Path, sequence: int, offset: Any) -> None:
    c = corpusql.open(mix_corpus)
    args = ["trace", str(mix_file), "--sequence", str(sequence)]
    if offset is not None:
        args += ["--offset", str(offset)]
    t = c.trace(mix_file, sequence=sequence, offset=offset)
    assert t["hits"] == jsonl(cli(*args, corpus=mix_corpus).stdout)
    assert t["policy"]["set"] == (mix_corpus / "policy.toml").exists()
    # The hits are the documents whose tokens the stream holds there.
    row = _stream_rows(c, mix_file)[sequence]
    lo, hi = (0, SEQ_LEN) if offset is None else (offset, offset + 1)
    assert [h["from"] for h in t["hits"]][0] == lo and t["hits"][-1]["to"] == hi
    for h, nxt in zip(t["hits"], t["hits"][1:]):
        assert h["to"] == nxt["from"]
    for h in t["hits"]:
        assert h["sequence"] == sequence
        doc = c.get(h["key"], signals=True)
        assert doc is not None and h["facets"]["license_class"] == doc["license_class"]
        toks = list(doc["text"].encode()) + [EOS]
        assert h["doc_tokens"] == len(toks)
        n = h["to"] - h["from"]
        assert row[h["from"]:h["to"]].tolist() == toks[h["doc_offset"]:h["doc_offset"] + n]


# ---------------------------------------------------------------------------
# 3. stream: the CLI's bytes, ranks, resume
# ---------------------------------------------------------------------------


def cli_stream(corpus: Path, mix: Any, out: Path, *args: str) -> bytes:
    cli("stream", str(mix), "--format", "u16", "-o", str(out), *args, corpus=corpus)
    return out.read_bytes()


def py_stream(c: corpusql.Corpus, mix: Any, **kw: Any) -> bytes:
    with c.stream(mix, **kw) as s:
        batches = list(s)
    for b in batches:
        assert b.dtype == np.dtype("<u2") and b.ndim == 2 and b.shape[1] == SEQ_LEN
    return b"".join(b.tobytes() for b in batches)


@pytest.mark.parametrize("world", [1, 3])
def test_stream_matches_cli(demo_corpus: Path, mix_file: Path, tmp_path: Path, world: int) -> None:
    c = corpusql.open(demo_corpus)
    ranks = []
    for rank in range(world):
        want = cli_stream(demo_corpus, mix_file, tmp_path / f"r{rank}.bin", "--rank", str(rank), "--world", str(world))
        s = c.stream(mix_file, rank=rank, world=world, batch_size=7)
        batches = list(s)
        got = b"".join(b.tobytes() for b in batches)
        assert got == want
        assert len(got) == s.total_sequences * SEQ_LEN * 2
        assert all(b.shape[0] == 7 for b in batches[:-1]) and 1 <= batches[-1].shape[0] <= 7
        assert s.global_sequences == c.plan(mix_file)["sequences"]
        assert s.emitted()["sequences"] == s.total_sequences
        ranks.append(np.frombuffer(got, dtype="<u2").reshape(-1, SEQ_LEN))
    # Interleaving the ranks gives the world-1 stream.
    whole = np.frombuffer(py_stream(c, mix_file, batch_size=64), dtype="<u2").reshape(-1, SEQ_LEN)
    for rank, rows in enumerate(ranks):
        assert np.array_equal(whole[rank::world], rows)


def test_inline_mixture_matches_cli(demo_corpus: Path, tmp_path: Path) -> None:
    c = corpusql.open(demo_corpus)
    m = corpusql.Mixture.query("lang=de", seq_len=128, seed=3)
    assert m.components and m.seq_len == 128
    inline = ["--seq-len", "128", "--seed", "3"]
    want = cli_stream(demo_corpus, "lang=de", tmp_path / "de.bin", *inline)
    with c.stream(m, batch_size=16) as s:
        assert b"".join(b.tobytes() for b in s) == want
    assert c.trace(m, 5, offset=3)["hits"] == jsonl(
        cli("trace", "lang=de", "--sequence", "5", "--offset", "3", *inline, corpus=demo_corpus).stdout
    )
    plain = corpusql.Mixture.query("lang=de", seq_len=128)
    assert c.plan(plain) == cli_json("mix", "plan", "lang=de", "--seq-len", "128", "--json", corpus=demo_corpus)


def test_stream_emitted_matches_cli_report(demo_corpus: Path, mix_file: Path, tmp_path: Path) -> None:
    cli_stream(demo_corpus, mix_file, tmp_path / "s.bin", "--rank", "1", "--world", "3", "--report", str(tmp_path / "r.json"))
    rep = json.loads((tmp_path / "r.json").read_text())
    s = corpusql.open(demo_corpus).stream(mix_file, rank=1, world=3, batch_size=16)
    for _ in s:
        pass
    e = s.emitted()
    assert (e["sequences"], e["tokens"], e["checksum"]) == (rep["sequences"], rep["tokens"], rep["checksum_emitted"])
    assert e["by_component"] == rep["tokens_by_component"]
    assert s.state() == rep["state"]


@pytest.mark.parametrize("k", [1, 5])
def test_stream_resume_continues_exactly(demo_corpus: Path, mix_file: Path, tmp_path: Path, k: int) -> None:
    c = corpusql.open(demo_corpus)
    whole = py_stream(c, mix_file, batch_size=8)
    s = c.stream(mix_file, batch_size=8)
    head = b"".join(next(s).tobytes() for _ in range(k))
    state = s.state()
    s.close()
    assert state["next_sequence"] == 8 * k
    # The CLI writes the same state after as many sequences.
    cli_stream(demo_corpus, mix_file, tmp_path / "h.bin", "--stop-after", str(8 * k), "--state-out", str(tmp_path / "st.json"))
    assert json.loads((tmp_path / "st.json").read_text()) == state
    # Resumed from the dict or its JSON text, the stream continues where it stopped.
    tail = py_stream(c, mix_file, batch_size=8, resume=state)
    assert head + tail == whole
    with c.stream(mix_file, resume=state) as s:
        assert s.total_sequences == len(tail) // (2 * SEQ_LEN) == s.global_sequences - 8 * k
    assert py_stream(c, mix_file, batch_size=5, resume=json.dumps(state), prefetch=0) == tail
    # The CLI resumes from the Python state to the same bytes.
    (tmp_path / "py-state.json").write_text(json.dumps(state))
    assert cli_stream(demo_corpus, mix_file, tmp_path / "t.bin", "--resume", str(tmp_path / "py-state.json")) == tail
    # Resumed on 3 ranks, interleaved, it is the same tail.
    rows = [np.frombuffer(py_stream(c, mix_file, rank=r, world=3, batch_size=4, resume=state), dtype="<u2").reshape(-1, SEQ_LEN)
            for r in range(3)]
    tail_rows = np.frombuffer(tail, dtype="<u2").reshape(-1, SEQ_LEN)
    for r in range(3):
        assert np.array_equal(tail_rows[r::3], rows[r])


def test_stream_next_batch_details(demo_corpus: Path, mix_file: Path) -> None:
    c = corpusql.open(demo_corpus)
    s = c.stream(mix_file, rank=2, world=3, batch_size=4)
    b = s.next_batch(positions=True)
    assert b is not None
    assert b["sequences"] == [2, 5, 8, 11]
    assert b["tokens"].shape == b["positions"].shape == (4, SEQ_LEN)
    assert (s.vocab_size, s.eos, s.seq_len) == (257, EOS, SEQ_LEN)
    # Positions restart at 0 just after each end-of-document id.
    for toks, pos in zip(b["tokens"], b["positions"]):
        for j in range(1, SEQ_LEN):
            if toks[j - 1] == EOS:
                assert pos[j] == 0
            elif pos[j] != 0:
                assert pos[j] == pos[j - 1] + 1
    s.close()
    with pytest.raises(corpusql.CorpusqlError):
        next(s)


def test_batches_name_components_and_provenance_rebuilds_tokens(demo_corpus: Path, mix_file: Path) -> None:
    c = corpusql.open(demo_corpus)
    s = c.stream(mix_file, batch_size=16, provenance=True)
    names = s.component_names
    assert names == ["fr", "code"]
    texts: Dict[str, bytes] = {}
    seen = set()
    for _ in range(20):
        b = s.next_batch(provenance=True)
        assert b is not None
        assert b["components"].shape == (16,)
        seen.update(int(x) for x in b["components"])
        for row, pieces in zip(b["tokens"], b["provenance"]):
            rebuilt: List[int] = []
            for key, off, n in pieces:
                if key not in texts:
                    texts[key] = c.get(key)["text"].encode()
                ids = list(texts[key]) + [EOS]
                rebuilt.extend(ids[off : off + n])
            assert rebuilt == row.tolist()
    assert seen == set(range(len(names))), "every component shows up"
    s.close()


def test_set_weights_is_recorded_and_resumed(demo_corpus: Path, mix_file: Path) -> None:
    c = corpusql.open(demo_corpus)
    s = c.stream(mix_file, batch_size=10)
    for _ in range(3):
        s.next_batch()
    with pytest.raises(corpusql.CorpusqlError, match="reached sequence 30"):
        s.set_weights({"fr": 1.0}, from_sequence=20)
    s.set_weights({"fr": 1.0}, from_sequence=40)
    rows = [s.next_batch() for _ in range(4)]
    comps = np.concatenate([r["components"] for r in rows])
    assert comps[10:].tolist() == [0] * 30, "fr only from sequence 40"
    st = s.state()
    assert st["weight_changes"] == [{"from_sequence": 40, "weights": {"fr": 1.0}}]
    tail = np.concatenate([r["tokens"] for r in rows[2:]])
    s.close()
    # Resuming from a state taken at 50 replays the change.
    s = c.stream(mix_file, batch_size=10, resume={**st, "next_sequence": 50})
    again = np.concatenate([s.next_batch()["tokens"], s.next_batch()["tokens"]])
    assert np.array_equal(again, tail)
    s.close()


# ---------------------------------------------------------------------------
# 4. the corpus policy: stream and export hold back, override includes
# ---------------------------------------------------------------------------


def _held_back_classes(policy_corpus: Path) -> set:
    return set(cli_json("policy", "--json", corpus=policy_corpus)["held_back_classes"])


def test_stream_holds_back_by_policy(policy_corpus: Path, mix_file: Path, tmp_path: Path) -> None:
    c = corpusql.open(policy_corpus)
    held = _held_back_classes(policy_corpus)
    assert held and not held & set(POLICY_ALLOW)

    s = c.stream(mix_file, batch_size=32)
    got = b"".join(b.tobytes() for b in s)
    assert got == cli_stream(policy_corpus, mix_file, tmp_path / "p.bin")
    pol = s.policy
    assert pol["set"] is True and pol["overridden"] is False
    assert pol["held_back"]["docs"] == c.count(f"{MIX_QUERY} and not {ALLOWED}") > 0
    assert {cls for _, cls, _, _ in pol["held_back"]["by_license"]} <= held
    assert sum(n for _, _, n, _ in pol["held_back"]["by_license"]) == pol["held_back"]["docs"]

    o = c.stream(mix_file, batch_size=32, override_policy=True)
    over = b"".join(b.tobytes() for b in o)
    assert over == cli_stream(policy_corpus, mix_file, tmp_path / "o.bin", "--override-policy")
    assert over != got
    assert o.policy["overridden"] is True and o.policy["held_back"] == pol["held_back"]

    # What the streams hold: traced, only allowed classes, unless overridden.
    n = len(got) // (2 * SEQ_LEN)
    seen, seen_over = set(), set()
    for seq in range(0, n, 13):
        seen |= {h["facets"]["license_class"] for h in c.trace(mix_file, seq)["hits"]}
        seen_over |= {h["facets"]["license_class"] for h in c.trace(mix_file, seq, override_policy=True)["hits"]}
    assert seen and seen <= set(POLICY_ALLOW)
    assert seen_over & held


def test_a_state_from_another_policy_is_refused(policy_corpus: Path, mix_file: Path) -> None:
    c = corpusql.open(policy_corpus)
    s = c.stream(mix_file, batch_size=4)
    next(s)
    with pytest.raises(corpusql.ResumeError):
        c.stream(mix_file, resume=s.state(), override_policy=True)


def test_export_holds_back_by_policy(policy_corpus: Path, tmp_path: Path) -> None:
    c = corpusql.open(policy_corpus)
    held = _held_back_classes(policy_corpus)
    q = "lang in (fr, de)"

    r = c.export(q, tmp_path / "py.jsonl")
    cli("export", q, "-o", str(tmp_path / "cli.jsonl"), corpus=policy_corpus)
    assert (tmp_path / "py.jsonl").read_bytes() == (tmp_path / "cli.jsonl").read_bytes()
    assert r["documents"] == c.count(f"({q}) and {ALLOWED}") == len(jsonl((tmp_path / "py.jsonl").read_bytes()))
    assert r["policy"]["set"] is True and r["policy"]["overridden"] is False
    assert r["policy"]["held_back"]["docs"] == c.count(f"({q}) and not {ALLOWED}") > 0
    assert {cls for _, cls, _, _ in r["policy"]["held_back"]["by_license"]} <= held

    # Exported ids, with their class: none held back, all the allowed ones.
    r2 = c.export(q, tmp_path / "ids.jsonl", fields=["id", "license_class"])
    recs = jsonl((tmp_path / "ids.jsonl").read_bytes())
    assert r2["documents"] == len(recs) == r["documents"]
    assert {x["license_class"] for x in recs} <= set(POLICY_ALLOW)
    assert {x["id"] for x in recs} == {x["id"] for x in c.query(f"({q}) and {ALLOWED}", fields=["id"])}

    # Overridden: everything, and it says so.
    r3 = c.export(q, tmp_path / "all.jsonl", fields=["id", "license_class"], override_policy=True)
    cli("export", q, "--fields", "id,license_class", "--override-policy", "-o", str(tmp_path / "all-cli.jsonl"),
        corpus=policy_corpus)
    assert (tmp_path / "all.jsonl").read_bytes() == (tmp_path / "all-cli.jsonl").read_bytes()
    recs = jsonl((tmp_path / "all.jsonl").read_bytes())
    assert r3["documents"] == len(recs) == c.count(q)
    assert r3["policy"]["overridden"] is True
    assert {x["license_class"] for x in recs} & held

    # A limit counts exported documents, as the CLI's; compressed by extension.
    r4 = c.export(q, tmp_path / "py.jsonl.gz", limit=50)
    cli("export", q, "--limit", "50", "-o", str(tmp_path / "lim.jsonl"), corpus=policy_corpus)
    assert r4["documents"] == 50
    assert gzip.decompress((tmp_path / "py.jsonl.gz").read_bytes()) == (tmp_path / "lim.jsonl").read_bytes()
    assert len(jsonl((tmp_path / "lim.jsonl").read_bytes())) == 50


def test_export_without_policy_holds_nothing_back(demo_corpus: Path, tmp_path: Path) -> None:
    c = corpusql.open(demo_corpus)
    r = c.export("lang=es", tmp_path / "es.jsonl", fields=["id"])
    assert r["documents"] == c.count("lang=es")
    assert r["policy"]["set"] is False and r["policy"]["held_back"]["docs"] == 0


# ---------------------------------------------------------------------------
# 5. ingest and tag
# ---------------------------------------------------------------------------

VOLATILE = ("seconds", "rejects", "tagged", "tag_generation")


def _report(r: Dict[str, Any]) -> Dict[str, Any]:
    """A report without timings; per-file lines without the file's name
    (records are named `<records>`, the CLI names its file)."""
    out = {k: v for k, v in r.items() if k not in VOLATILE}
    out["files"] = [{k: v for k, v in f.items() if k != "file"} for f in r.get("files", [])]
    return out


def _cli_ingest(corpus: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return cli("ingest", "--json", "-q", "--allow-rejects", *args, corpus=corpus, check=check)


def _cli_rejects(r: subprocess.CompletedProcess) -> List[str]:
    return [line[len("rejected "):] for line in r.stderr.decode().splitlines() if line.startswith("rejected ")]


@pytest.fixture(scope="session")
def small_jsonl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """300 generated documents as JSONL."""
    p = tmp_path_factory.mktemp("small") / "small.jsonl"
    cli("demo", "--jsonl", str(p), "--docs", "300", "--seed", "3")
    return p


def _all(corpus: Path) -> List[Dict[str, Any]]:
    return list(corpusql.open(corpus).query("*"))


def test_ingest_files_matches_cli(small_jsonl: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "cli", tmp_path / "py"
    want = json.loads(_cli_ingest(a, str(small_jsonl)).stdout)
    got = corpusql.ingest(b, [small_jsonl])
    assert _report(got) == _report(want)
    assert got["ingested"] == 300 and got["rejects"] == []
    same_records(_all(b), _all(a))

    # Again, under each on_duplicate: the CLI's counts, and the same corpus.
    for mode in ("skip", "replace"):
        want = json.loads(_cli_ingest(a, str(small_jsonl), "--on-duplicate", mode).stdout)
        got = corpusql.ingest(b, str(small_jsonl), on_duplicate=mode)
        assert _report(got) == _report(want)
        assert (got["skipped"], got["replaced"]) == ((300, 0) if mode == "skip" else (0, 300))
        same_records(_all(b), _all(a))

    before = corpusql.open(b)
    err = _cli_ingest(a, str(small_jsonl), "--on-duplicate", "error", check=False)
    assert err.returncode != 0
    with pytest.raises(corpusql.IngestError) as e:
        corpusql.ingest(b, small_jsonl, on_duplicate="error")
    # The CLI's message, naming the Python argument instead of the flag.
    msg = str(e.value)
    assert "duplicate key" in msg and 'on_duplicate="skip" or "replace"' in msg
    assert msg.replace('on_duplicate="skip" or "replace"', "--on-duplicate skip or replace") in err.stderr.decode()
    after = corpusql.open(b)
    assert (len(after), after.generation) == (len(before), before.generation) == (300, corpusql.open(a).generation)


def _records_with_defects() -> List[Any]:
    good = [{"id": f"r{i}", "text": f"document {i} \u00e9t\u00e9 \u2014 ok", "license": "mit", "n": i} for i in range(6)]
    return [
        good[0],
        {"id": "no-text"},  # line 2: missing text
        good[1],
        [1, 2, 3],  # line 4: not an object
        {"id": "obj-text", "text": {"a": 1}},  # line 5: text is an object
        good[2],
        {"id": "r0", "text": "a duplicate of line 1"},  # line 7: duplicate in the batch
        good[3],
        {"id": "nolicense", "text": "x", "meta": {"k": [1, None, True]}},
    ]


def _as_jsonl(records: List[Any]) -> bytes:
    # What corpusql.ingest sends for records.
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode()


@pytest.mark.parametrize("mode", ["skip", "replace"])
def test_ingest_records_matches_cli(tmp_path: Path, mode: str) -> None:
    recs = _records_with_defects()
    f = tmp_path / "recs.jsonl"
    f.write_bytes(_as_jsonl(recs))
    a, b = tmp_path / "cli", tmp_path / "py"
    r = _cli_ingest(a, str(f), "--on-duplicate", mode)
    want = json.loads(r.stdout)
    got = corpusql.ingest(b, records=(x for x in recs), on_duplicate=mode)  # any iterable
    assert _report(got) == _report(want)
    assert got["rejected"] == 3
    assert [x["file"] for x in got["files"]] == ["<records>"]
    assert got["rejects"] == [x.replace(str(f), "<records>") for x in _cli_rejects(r)]
    assert [x.split(":")[1] for x in got["rejects"]] == ["2", "4", "5"]
    same_records(_all(b), _all(a))
    # As the positional argument, a list of dicts is records too.
    dicts = [x for x in recs if isinstance(x, dict)]
    pos = corpusql.ingest(tmp_path / "pos", dicts, on_duplicate=mode)
    kw = corpusql.ingest(tmp_path / "kw", records=dicts, on_duplicate=mode)
    assert _report(pos) == _report(kw) and pos["rejects"] == kw["rejects"]
    assert pos["rejected"] == 2


def test_ingest_rejects_a_record_with_a_lone_surrogate(tmp_path: Path) -> None:
    r = corpusql.ingest(tmp_path / "c", records=[{"id": "a", "text": "ok"}, {"id": "b", "text": "bad \udc80"},
                                                 {"id": "c", "text": "ok"}])
    assert (r["ingested"], r["rejected"]) == (2, 1)
    assert r["rejects"][0].startswith("<records>:2:")


def test_ingest_bad_file_matches_cli(tmp_path: Path) -> None:
    bad = SHARED / "bad.jsonl"
    if not bad.exists():
        pytest.skip(f"shared data absent ({bad})")
    a, b = tmp_path / "cli", tmp_path / "py"
    r = _cli_ingest(a, str(bad))
    got = corpusql.ingest(b, [bad])
    assert _report(got) == _report(json.loads(r.stdout))
    assert got["rejected"] > 0 and got["rejects"] == _cli_rejects(r)
    assert all(x.startswith(f"{bad}:") for x in got["rejects"])
    same_records(_all(b), _all(a))


def test_ingest_refusals(tmp_path: Path) -> None:
    d = tmp_path / "c"
    corpusql.ingest(d, records=[{"id": "a", "text": "one"}])
    # allow_rejects=False raises after committing the good records.
    with pytest.raises(corpusql.IngestError) as e:
        corpusql.ingest(d, records=[{"id": "b", "text": "two"}, {"id": "c"}], allow_rejects=False)
    assert "<records>:2" in str(e.value)
    assert corpusql.open(d).count() == 2
    # A bad on_duplicate is refused before anything is written.
    with pytest.raises(corpusql.CorpusqlError, match="on_duplicate"):
        corpusql.ingest(d, records=[{"id": "z", "text": "new"}], on_duplicate="overwrite")
    with pytest.raises(corpusql.CorpusqlError):
        corpusql.ingest(d)  # nothing to ingest
    c = corpusql.open(d)
    assert (len(c), c.generation) == (2, 2)


def test_reload_moves_to_the_new_generation(tmp_path: Path) -> None:
    d = tmp_path / "c"
    corpusql.ingest(d, records=[{"id": "a", "text": "one"}])
    c = corpusql.open(d)
    corpusql.ingest(d, records=[{"id": "b", "text": "two"}])
    assert (len(c), c.count("*")) == (1, 1)
    c.reload()
    assert (len(c), c.generation) == (2, 2)


def test_tag_adds_signals_to_the_schema(small_jsonl: Path, tmp_path: Path) -> None:
    d = tmp_path / "c"
    corpusql.ingest(d, small_jsonl)
    c = corpusql.open(d)
    names = {f["name"] for f in c.schema()["fields"]}
    assert "lang_detected" not in names
    r = c.tag(["language"])
    assert [t["tagger"] for t in r["taggers"]] == ["language"]
    assert r["taggers"][0]["docs"] == 300 and c.generation == r["generation"] > 1
    fields = {f["name"]: f for f in c.schema()["fields"]}
    assert fields["lang_detected"].get("tagger") == "language"
    assert c.count("lang_detected exists") == 300
    want = cli_json("schema", "--json", corpus=d)
    got = c.schema()
    for s in (got, want):
        s.pop("tag_on_ingest", None)
    assert got == want
    q = "lang_detected=fr and lang_score > 0.5"
    assert c.count(q) == int(cli("count", q, corpus=d).stdout) > 0
    key = next(c.query(q, fields=["id"]))["id"]
    assert c.get(key, signals=True) == json.loads(cli("get", key, "--signals", corpus=d).stdout)
    assert c.get(key, signals=True)["lang_detected"] == "fr"


# ---------------------------------------------------------------------------
# 6. errors
# ---------------------------------------------------------------------------

BAD_QUERIES = ["lang = = fr", "lang=fr and (bytes >", "lnag=fr", "lang in (fr, de", "nosuchfield=3"]


@pytest.mark.parametrize("q", BAD_QUERIES)
def test_bad_query_raises_query_error_with_the_cli_message(demo_corpus: Path, tmp_path: Path, q: str) -> None:
    c = corpusql.open(demo_corpus)
    stderr = cli_error("count", q, corpus=demo_corpus)
    caret = [line for line in stderr.splitlines() if line.strip() and set(line.strip()) == {"^"}]
    assert len(caret) == 1
    calls = [
        lambda: c.count(q),
        lambda: c.query(q, limit=1),
        lambda: c.stats(q, by=["lang"]),
        lambda: c.export(q, tmp_path / "x.jsonl"),
        lambda: c.report(query=q),
    ]
    for call in calls:
        with pytest.raises(corpusql.QueryError) as e:
            call()
        assert isinstance(e.value, corpusql.CorpusqlError)
        assert caret[0] in str(e.value).splitlines()
        assert "error: " + str(e.value) in stderr
    assert not (tmp_path / "x.jsonl").exists()


def test_missing_corpus_raises_corpus_error(tmp_path: Path) -> None:
    d = tmp_path / "nope"
    with pytest.raises(corpusql.CorpusError) as e:
        corpusql.open(d)
    assert str(e.value) in cli_error("count", "*", corpus=d)
    assert not d.exists()


def test_damaged_segment_raises_corpus_error(demo_copy: Path) -> None:
    seg = next(demo_copy.glob("seg-*.cqs"))
    data = bytearray(seg.read_bytes())
    for i in range(len(data) // 3, len(data) // 3 + 4096):
        data[i] ^= 0x5A
    seg.write_bytes(bytes(data))
    with pytest.raises(corpusql.CorpusError):
        c = corpusql.open(demo_copy)
        for _ in c.query("*"):
            pass
    assert cli("query", "*", corpus=demo_copy, check=False).returncode != 0


@pytest.fixture()
def state(demo_corpus: Path, mix_file: Path) -> Dict[str, Any]:
    s = corpusql.open(demo_corpus).stream(mix_file, batch_size=4)
    next(s)
    st = s.state()
    s.close()
    return st


@pytest.mark.parametrize(
    "change,message",
    [
        ({"mixture_hash": "0000000000000000"}, "cannot resume: the mixture differs"),
        ({"seq_len": 128}, "cannot resume: the seq_len differs"),
        ({"selection": "0" * 32}, "cannot resume: the selected documents differ"),
        ({"version": 99}, "cannot resume: the state format version differs"),
    ],
)
def test_tampered_state_raises_resume_error(demo_corpus: Path, mix_file: Path, tmp_path: Path,
                                            state: Dict[str, Any], change: Dict[str, Any], message: str) -> None:
    bad = {**state, **change}
    with pytest.raises(corpusql.ResumeError) as e:
        corpusql.open(demo_corpus).stream(mix_file, resume=bad)
    assert str(e.value).startswith(message)
    f = tmp_path / "bad.json"
    f.write_text(json.dumps(bad))
    stderr = cli_error("stream", str(mix_file), "--resume", str(f), "-o", str(tmp_path / "x.bin"), corpus=demo_corpus)
    assert str(e.value) in stderr


def test_state_before_new_documents_is_refused(demo_copy: Path, mix_file: Path, tmp_path: Path) -> None:
    c = corpusql.open(demo_copy)
    s = c.stream(mix_file, batch_size=4)
    next(s)
    state = s.state()
    s.close()
    corpusql.ingest(demo_copy, records=[{"id": "new-fr", "text": "Un document de plus.", "lang": "fr", "license": "pd"}])
    with pytest.raises(corpusql.ResumeError) as e:
        corpusql.open(demo_copy).stream(mix_file, resume=state)
    assert str(e.value).startswith("cannot resume: the selected documents differ")
    f = tmp_path / "st.json"
    f.write_text(json.dumps(state))
    assert str(e.value) in cli_error("stream", str(mix_file), "--resume", str(f), "-o", str(tmp_path / "x.bin"),
                                     corpus=demo_copy)
    # The handle opened before the ingest still reads its own generation: the state resumes there.
    assert c.stream(mix_file, resume=state).total_sequences > 0


def test_state_of_another_mixture_raises_resume_error(demo_corpus: Path, mix_file: Path, state: Dict[str, Any]) -> None:
    other = corpusql.Mixture.parse(MIX_TOML.replace("seed = 7", "seed = 8"))
    with pytest.raises(corpusql.ResumeError) as e:
        corpusql.open(demo_corpus).stream(other, resume=state)
    assert state["mixture_hash"] in str(e.value) and other.hash in str(e.value)


@pytest.mark.parametrize("garbage", ["not json", "", "{}", "null", "[1, 2]", '{"version": 2}', {"next_sequence": -1}])
def test_garbage_state_raises(demo_corpus: Path, mix_file: Path, garbage: Any) -> None:
    with pytest.raises(corpusql.ResumeError):
        corpusql.open(demo_corpus).stream(mix_file, resume=garbage)


def test_bad_arguments_raise(demo_corpus: Path, mix_file: Path) -> None:
    c = corpusql.open(demo_corpus)
    with pytest.raises(corpusql.CorpusqlError) as e:
        c.query("lang=fr", fields=["id", "nosuch"])
    assert "error: " + str(e.value) in cli_error("query", "lang=fr", "--fields", "id,nosuch", corpus=demo_corpus)
    with pytest.raises(corpusql.CorpusqlError):
        c.stream(mix_file, rank=3, world=3)
    with pytest.raises(corpusql.CorpusqlError):
        c.trace(mix_file, sequence=10**9)
    with pytest.raises(corpusql.CorpusqlError):
        c.trace(mix_file, sequence=0, offset=SEQ_LEN)
    with pytest.raises(corpusql.CorpusqlError):
        corpusql.Mixture.parse(MIX_TOML.replace("seq_len", "sequence_length"))
    with pytest.raises(ValueError):
        c.stream(mix_file, batch_size=0)


ERRORS_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import corpusql
    corpus, mix, missing = sys.argv[1:4]
    c = corpusql.open(corpus)
    m = corpusql.Mixture.from_file(mix)
    def expect(kind, f):
        try:
            f()
        except kind as e:
            print(kind.__name__)
        else:
            print("no error")
    expect(corpusql.ResumeError, lambda: c.stream(m, resume="not json"))
    expect(corpusql.ResumeError, lambda: c.stream(m, resume={"version": 2}))
    st = c.stream(m).state()
    expect(corpusql.ResumeError, lambda: c.stream(m, resume={**st, "mixture_hash": "0" * 16}))
    expect(corpusql.QueryError, lambda: c.count("lang = = fr"))
    expect(corpusql.CorpusError, lambda: corpusql.open(missing))
    expect(corpusql.CorpusqlError, lambda: corpusql.ingest(missing, records=[{"id": "a", "text": "x"}], on_duplicate="bogus"))
    print(c.count("lang=fr"))
    """
)


def test_errors_leave_the_interpreter_alive(demo_corpus: Path, mix_file: Path, tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-c", ERRORS_SCRIPT, str(demo_corpus), str(mix_file), str(tmp_path / "missing")],
        capture_output=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout.decode().split() == [
        "ResumeError", "ResumeError", "ResumeError", "QueryError", "CorpusError", "CorpusqlError",
        cli("count", "lang=fr", corpus=demo_corpus).stdout.decode().strip(),
    ]


# ---------------------------------------------------------------------------
# 7. threads
# ---------------------------------------------------------------------------


def test_threads_share_one_corpus(real: corpusql.Corpus) -> None:
    queries = ["lang in (de, fr) and bytes < 20000", "license_class in (public-domain, permissive)"]
    fields = ["id", "license", "bytes"]

    def work(q: str) -> Any:
        return (real.count(q), list(real.query(q, fields=fields)), real.stats(q, by=["lang"]))

    want = {q: work(q) for q in queries}
    results: Dict[int, List[Any]] = {}
    errors: List[BaseException] = []
    barrier = threading.Barrier(4)

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = [work(queries[(i + j) % 2]) for j in range(3)]
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    for i in range(4):
        for j, got in enumerate(results[i]):
            assert got == want[queries[(i + j) % 2]]


def test_interleaved_readers_of_one_corpus(real: corpusql.Corpus) -> None:
    qa, qb = "lang=es", "source=dictd"
    a, b = list(real.query(qa, fields=["id"])), list(real.query(qb, fields=["id"]))
    ia, ib = real.query(qa, fields=["id"]), real.query(qb, fields=["id"])
    got_a: List[Dict[str, Any]] = []
    got_b: List[Dict[str, Any]] = []
    live = [(ia, got_a), (ib, got_b)]
    while live:  # one record of each in turn
        for it, out in list(live):
            x = next(it, None)
            if x is None:
                live.remove((it, out))
            else:
                out.append(x)
    assert (got_a, got_b) == (a, b)
    assert len(a) == real.count(qa) and len(b) == real.count(qb)


def test_an_open_reader_keeps_its_snapshot(demo_copy: Path) -> None:
    want = list(corpusql.open(demo_copy).query("lang=es", fields=["id", "text"]))
    it = corpusql.open(demo_copy).query("lang=es", fields=["id", "text"])  # the handle is dropped
    head = [next(it) for _ in range(10)]
    recs = [{"id": r["id"], "text": "replaced", "lang": "es"} for r in want]
    assert corpusql.ingest(demo_copy, records=recs, on_duplicate="replace")["replaced"] == len(want)
    cli("compact", corpus=demo_copy)
    assert head + list(it) == want
    assert {r["text"] for r in corpusql.open(demo_copy).query("lang=es")} == {"replaced"}


def test_reload_while_another_thread_queries(real_corpus: Path) -> None:
    c = corpusql.open(real_corpus)
    stop = threading.Event()
    errors: List[BaseException] = []

    def reader() -> None:
        try:
            while not stop.is_set():
                c.stats("lang in (de, fr) or bytes > 100", by=["title"])
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    t = threading.Thread(target=reader)
    t.start()
    try:
        for _ in range(150):
            c.reload()
    except BaseException as e:  # noqa: BLE001 - reported below
        errors.append(e)
    finally:
        stop.set()
        t.join(timeout=300)
    assert not errors, errors


def test_query_text_with_unicode_line_separators(tmp_path: Path) -> None:
    d = tmp_path / "c"
    text = "line\u2028separator\u2029paragraph\x85next"
    corpusql.ingest(d, records=[{"id": "a", "text": text}])
    c = corpusql.open(d)
    assert c.get("a")["text"] == text
    assert [r["text"] for r in c.query("*")] == [text]


def test_ingest_refuses_inputs_mixing_records_and_files(tmp_path: Path, small_jsonl: Path) -> None:
    with pytest.raises(TypeError, match="records="):
        corpusql.ingest(tmp_path / "c", [small_jsonl, {"id": "x", "text": "y"}])
    assert not (tmp_path / "c" / "CURRENT").exists()


def test_a_slurm_style_job_commits_from_python(tmp_path):
    """Tasks run by the CLI (as a Slurm array's would), committed from Python."""
    shards = tmp_path / "shards"
    shards.mkdir()
    for i in range(3):
        rows = [{"id": f"s{i}-{j}", "text": f"document {j} of shard {i}", "license": "pd"} for j in range(20)]
        rows.append({"id": "shared-key", "text": f"copy from shard {i}", "license": "pd"})
        (shards / f"part-{i}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    c = tmp_path / "c"
    cli("ingest", str(shards), "--job", "j", "--task", "0/2", "--quiet", corpus=c)
    with pytest.raises(corpusql.CorpusqlError, match="have not finished"):
        corpusql.commit_job(c, "j")
    cli("ingest", str(shards), "--job", "j", "--task", "1/2", "--quiet", corpus=c)
    r = corpusql.commit_job(c, "j")
    assert r["kind"] == "ingest" and r["tasks"] == 2 and r["generation"] == 1
    assert r["ingested"] == 61 and r["skipped"] == 2
    corpus = corpusql.open(c)
    assert corpus.count("*") == 61
    assert corpus.get("shared-key")["text"] == "copy from shard 0"
