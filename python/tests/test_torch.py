"""corpusql.torch against the CLI, with real torch and torchdata.

Every dataset result is compared with what ``corpusql stream`` (or
``corpusql query``) writes for the same corpus, mixture, rank and world:
the CLI is the reference. The mixture is small (400 sequences of 64 byte
tokens over two components) so that the whole file runs in a minute or two
on two cores. DataLoaders with workers get a ``timeout`` and the tests that
fork after the parent used the library run in a subprocess with a deadline,
so a hang fails a test instead of the run.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchdata")

import torch.distributed as dist  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402
from torchdata.stateful_dataloader import StatefulDataLoader  # noqa: E402

import corpusql  # noqa: E402
from corpusql.torch import DocumentDataset, TokenDataset, job_state, resolve_rank_world  # noqa: E402

from conftest import cli, cli_path  # noqa: E402

pytestmark = [
    pytest.mark.filterwarnings("ignore:This DataLoader will create"),
    pytest.mark.filterwarnings("ignore:'set_vital' is deprecated"),
]

SEQ_LEN = 64
SEQUENCES = 400  # tokens / seq_len
B = 8  # batch size, for the dataset and the loader
EOS = 256  # the bytes tokenizer's end of document
LOADER_TIMEOUT = 60  # seconds a loader with workers waits for a batch

MIX = f"""\
seed = 7
tokens = {SEQ_LEN * SEQUENCES}
seq_len = {SEQ_LEN}
tokenizer = "bytes"

[[component]]
name = "fr"
query = "lang=fr"
weight = 0.6

[[component]]
name = "code"
query = "lang=code"
weight = 0.4
"""

# A few short documents streamed whole: many document boundaries.
SMALL_QUERY = "lang=it and license_class=unknown"


# --- fixtures and helpers ---------------------------------------------------


@pytest.fixture(autouse=True)
def _deadline():
    """No test may hang the run: SIGALRM fails it after 180 s."""

    def expired(signum, frame):
        raise TimeoutError("test took over 180 s (a hang?)")

    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(180)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture(scope="session")
def mix(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("mix") / "mix.toml"
    p.write_text(MIX)
    return p


@pytest.fixture(scope="session")
def other_mix(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same mixture with another seed: another stream identity."""
    p = tmp_path_factory.mktemp("mix2") / "mix.toml"
    p.write_text(MIX.replace("seed = 7", "seed = 8"))
    return p


@pytest.fixture(scope="session")
def ref(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., np.ndarray]:
    """``ref(corpus, source, rank, world, *flags)``: the sequences
    ``corpusql stream`` writes, as int64 ``[n, seq_len]`` (cached)."""
    out_dir = tmp_path_factory.mktemp("ref")
    cache: Dict[Tuple[Any, ...], np.ndarray] = {}

    def get(corpus: Path, source: Any, rank: int = 0, world: int = 1, *flags: str) -> np.ndarray:
        key = (str(corpus), str(source), rank, world, flags)
        if key not in cache:
            out = out_dir / f"s{len(cache)}.npy"
            cli("stream", str(source), "--rank", str(rank), "--world", str(world),
                "--format", "npy", "-o", str(out), *flags, corpus=corpus)
            cache[key] = np.load(out).astype(np.int64)
        return cache[key]

    return get


def loader(ds, workers: int = 0, stateful: bool = False, batch_size: int = B, **kw):
    cls = StatefulDataLoader if stateful else DataLoader
    if workers:
        kw.setdefault("timeout", LOADER_TIMEOUT)
    return cls(ds, batch_size=batch_size, num_workers=workers, **kw)


def tokens(batches) -> np.ndarray:
    """The ``input_ids`` of batches, concatenated, as numpy."""
    got = [b["input_ids"] for b in batches]
    if not got:
        return np.zeros((0, SEQ_LEN), dtype=np.int64)
    return torch.cat(got).numpy()


def take(it, n: int) -> list:
    return [next(it) for _ in range(n)]


def assert_rows(got: np.ndarray, want: np.ndarray) -> None:
    assert got.shape == want.shape, f"{got.shape} sequences, expected {want.shape}"
    bad = np.nonzero((got != want).any(axis=1))[0]
    assert bad.size == 0, f"{bad.size} sequences differ, first at row {bad[:5].tolist()}"


def rows_multiset(a: np.ndarray) -> Counter:
    return Counter(r.tobytes() for r in a)


def save_state(sd: Dict[str, Any]) -> Dict[str, Any]:
    """A state through a checkpoint file (torch.save / torch.load)."""
    buf = io.BytesIO()
    torch.save(sd, buf)
    buf.seek(0)
    return torch.load(buf)


def run_script(script: str, args: List[str], timeout: float, cwd: Path, python: Optional[List[str]] = None):
    """Runs a script in a new session; on timeout, kills the whole group
    (DataLoader workers included) and fails."""
    cmd = (python or [sys.executable]) + [script] + args
    env = dict(os.environ, CORPUSQL_BIN=str(cli_path()))
    p = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         start_new_session=True, env=env)
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, _ = p.communicate()
        pytest.fail(f"{' '.join(cmd)} hung (killed after {timeout} s); output:\n{out.decode(errors='replace')[-3000:]}")
    text = out.decode(errors="replace")
    assert p.returncode == 0, f"{' '.join(cmd)} failed ({p.returncode}):\n{text[-3000:]}"
    return text


# --- 1. num_workers=0: the CLI's rank streams -------------------------------


@pytest.mark.parametrize("world", [1, 2, 4])
def test_single_process_equals_cli_rank_streams(demo_corpus, mix, ref, world):
    whole = ref(demo_corpus, mix)
    assert whole.shape == (SEQUENCES, SEQ_LEN)
    for rank in range(world):
        ds = TokenDataset(demo_corpus, mix, rank=rank, world_size=world, batch_size=B)
        batches = list(loader(ds))
        assert all(b["input_ids"].dtype == torch.int64 for b in batches)
        assert [len(b["input_ids"]) for b in batches[:-1]] == [B] * (len(batches) - 1)
        got = tokens(batches)
        assert_rows(got, ref(demo_corpus, mix, rank, world))
        # Global sequence s is rank s mod world's (s div world)-th.
        assert_rows(got, whole[rank::world])


def test_components_name_each_sequence(demo_corpus, mix, ref, tmp_path):
    """``components=True``: each item says which mixture component its
    sequence comes from, as the CLI's provenance file does."""
    prov = tmp_path / "prov.jsonl"
    cli("stream", str(mix), "-o", str(tmp_path / "t.u16"), "--provenance", str(prov), corpus=demo_corpus)
    names = [json.loads(l)["component"] for l in prov.read_text().splitlines()]
    ds = TokenDataset(demo_corpus, mix, batch_size=B, components=True)
    batches = list(loader(ds))
    comps = torch.cat([b["component"] for b in batches]).tolist()
    order = corpusql.Mixture.from_file(mix).components
    assert [order[c] for c in comps] == names
    assert len(set(comps)) > 1


def test_dataset_without_loader_and_seq_len_override(demo_corpus, mix, ref, tmp_path):
    """Iterated directly (no DataLoader), with seq_len overriding the
    mixture's: the stream of the same mixture file with that seq_len."""
    m32 = tmp_path / "mix32.toml"
    m32.write_text(MIX.replace(f"seq_len = {SEQ_LEN}", "seq_len = 32"))
    ds = TokenDataset(demo_corpus, mix, seq_len=32)
    assert ds.seq_len == 32
    items = list(ds)
    assert all(set(it) == {"input_ids"} and it["input_ids"].shape == (32,) for it in items)
    got = np.stack([it["input_ids"].numpy() for it in items])
    want = ref(demo_corpus, m32)
    assert want.shape == (2 * SEQUENCES, 32)
    assert_rows(got, want)


def test_query_source_equals_cli(demo_corpus, ref):
    """A query instead of a mixture streams every match once, as
    ``corpusql stream QUERY --seq-len L``."""
    ds = TokenDataset(demo_corpus, SMALL_QUERY, seq_len=SEQ_LEN, batch_size=B)
    got = tokens(loader(ds))
    want = ref(demo_corpus, SMALL_QUERY, 0, 1, "--seq-len", str(SEQ_LEN))
    assert len(want) > 100
    assert_rows(got, want)
    # Every document once, in full sequences: the partial last sequence is
    # dropped (docs/mixtures.md), and with it the last document's end.
    c = corpusql.open(demo_corpus)
    available = c.plan(corpusql.Mixture.query(SMALL_QUERY, seq_len=SEQ_LEN))["components"][0]["tokens_available"]
    assert got.size == available // SEQ_LEN * SEQ_LEN
    docs = c.count(SMALL_QUERY)
    assert (got == EOS).sum() == docs - (1 if available % SEQ_LEN else 0)


# --- 2. DataLoader workers ---------------------------------------------------


@pytest.mark.parametrize("workers", [2, 3])
def test_workers_with_batch_size_keep_the_rank_order(demo_corpus, mix, ref, workers):
    for rank in range(2):
        ds = TokenDataset(demo_corpus, mix, rank=rank, world_size=2, batch_size=B)
        batches = list(loader(ds, workers))
        assert all(len(b["input_ids"]) == B for b in batches[:-1])
        assert_rows(tokens(batches), ref(demo_corpus, mix, rank, 2))


@pytest.mark.parametrize("workers", [2, 3])
def test_workers_without_batch_size_deliver_each_sequence_once(demo_corpus, mix, ref, workers):
    want = ref(demo_corpus, mix, 1, 2)
    ds = TokenDataset(demo_corpus, mix, rank=1, world_size=2)  # blocks of 1
    got = tokens(loader(ds, workers))
    assert got.shape == want.shape
    assert rows_multiset(got) == rows_multiset(want)
    # Blocks of one sequence, one loader batch per worker in turn: the
    # loader's first batch holds the rank's sequences 0, w, 2w, ...
    assert_rows(got[:B], want[0: B * workers: workers])


@pytest.mark.parametrize("workers", [0, 2])
def test_batched_items_are_the_rank_stream_and_resume(demo_corpus, mix, ref, workers):
    """batched=True: each item is one whole batch (DataLoader batch_size=None),
    the loader's order is the rank's stream, and a loader state taken after
    n steps resumes exactly, also with another number of workers."""
    want = ref(demo_corpus, mix, 1, 2)
    ds = TokenDataset(demo_corpus, mix, rank=1, world_size=2, batch_size=B, batched=True)
    batches = list(loader(ds, workers, batch_size=None))
    assert all(b["input_ids"].shape == (B, SEQ_LEN) for b in batches[:-1])
    assert_rows(tokens(batches), want)
    dl = loader(TokenDataset(demo_corpus, mix, rank=1, world_size=2, batch_size=B, batched=True),
                workers, stateful=True, batch_size=None)
    it = iter(dl)
    first = take(it, 5)
    sd = dl.state_dict()
    del it, dl
    ds2 = TokenDataset(demo_corpus, mix, rank=1, world_size=2, batch_size=B, batched=True)
    ds2.load_state_dict(sd)
    rest = list(loader(ds2, 3 - workers // 2 * 2 if workers else 2, batch_size=None))
    assert_rows(tokens(first + rest), want)
    with pytest.raises(ValueError, match="batch_size"):
        TokenDataset(demo_corpus, mix, batched=True)


# --- 3. StatefulDataLoader: resume on the same shape ------------------------


@pytest.mark.parametrize("workers,n", [(0, 5), (2, 5), (2, 4), (3, 7), (2, 1)])
def test_resume_same_shape(demo_corpus, mix, ref, workers, n):
    want = ref(demo_corpus, mix, 1, 2)  # 200 sequences, 25 batches
    ds = TokenDataset(demo_corpus, mix, rank=1, world_size=2, batch_size=B)
    dl = loader(ds, workers, stateful=True)
    it = iter(dl)
    first = take(it, n)
    sd = save_state(dl.state_dict())
    del it, dl

    ds2 = TokenDataset(demo_corpus, mix, rank=1, world_size=2, batch_size=B)
    dl2 = loader(ds2, workers, stateful=True)
    dl2.load_state_dict(sd)
    rest = list(dl2)
    assert len(rest) == len(want) // B - n
    assert_rows(tokens(first + rest), want)


def test_resume_twice_then_a_new_epoch(demo_corpus, mix, ref):
    """Interrupt, resume, interrupt again, resume again: still the rank's
    stream; the loader's next epoch starts the stream over."""
    want = ref(demo_corpus, mix, 0, 2)
    got: List[dict] = []
    sd = None
    for n in (3, 6, None):
        ds = TokenDataset(demo_corpus, mix, rank=0, world_size=2, batch_size=B)
        dl = loader(ds, 2, stateful=True)
        if sd is not None:
            dl.load_state_dict(sd)
        it = iter(dl)
        if n is None:
            got += list(it)
            again = tokens(dl)  # the next epoch of the same loader
            assert_rows(again, want)
        else:
            got += take(it, n)
            sd = save_state(dl.state_dict())
        del it, dl
    assert_rows(tokens(got), want)


@pytest.mark.parametrize(
    "workers,persistent",
    [
        pytest.param(2, False, id="fresh-workers"),
        pytest.param(0, False, id="no-workers"),
        pytest.param(2, True, id="persistent-workers"),
    ],
)
def test_epochs_after_a_resume_are_whole(demo_corpus, mix, ref, workers, persistent):
    """A resumed loader finishes the interrupted epoch, then the next
    epochs of the same loader are the whole stream again."""
    want = ref(demo_corpus, mix)
    ds = TokenDataset(demo_corpus, mix, batch_size=B)
    dl = loader(ds, workers, stateful=True, persistent_workers=persistent)
    it = iter(dl)
    first = take(it, 5)
    sd = dl.state_dict()
    del it, dl
    ds2 = TokenDataset(demo_corpus, mix, batch_size=B)
    dl2 = loader(ds2, workers, stateful=True, persistent_workers=persistent)
    dl2.load_state_dict(sd)
    assert_rows(tokens(first + list(dl2)), want)
    assert_rows(tokens(dl2), want)
    assert_rows(tokens(dl2), want)


@pytest.mark.parametrize(
    "workers",
    [
        pytest.param(0),
        2,
    ],
)
def test_checkpoint_at_the_end_of_an_epoch_resumes_into_a_whole_epoch(demo_corpus, mix, ref, workers):
    want = ref(demo_corpus, mix)
    ds = TokenDataset(demo_corpus, mix, batch_size=B)
    dl = loader(ds, workers, stateful=True)
    assert_rows(tokens(dl), want)
    sd = save_state(dl.state_dict())
    ds2 = TokenDataset(demo_corpus, mix, batch_size=B)
    dl2 = loader(ds2, workers, stateful=True)
    dl2.load_state_dict(sd)
    assert_rows(tokens(dl2), want)


# --- 4. resume on another world size or number of workers -------------------


def _global_rows(rows: np.ndarray, start: int, rank: int, world: int) -> Dict[int, np.ndarray]:
    return {start + rank + world * i: r for i, r in enumerate(rows)}


@pytest.mark.parametrize(
    "world_a,workers_a,n,world_b,workers_b,via",
    [
        (4, 0, 3, 2, 0, "loader"),  # world 4 -> 2
        (4, 0, 3, 2, 2, "job_state"),
        (1, 2, 3, 1, 3, "loader"),  # 2 workers -> 3
        (2, 2, 4, 3, 0, "loader"),  # 2 ranks x 2 workers -> 3 ranks x 1
        (2, 3, 5, 1, 2, "job_state"),
        pytest.param(2, 0, 3, 2, 2, "loader"),
    ],
)
def test_resume_on_another_shape(demo_corpus, mix, ref, world_a, workers_a, n, world_b, workers_b, via):
    whole = ref(demo_corpus, mix)
    seen: Dict[int, np.ndarray] = {}
    states = {}
    # The first job: every rank takes n batches (lockstep), then stops.
    for rank in range(world_a):
        ds = TokenDataset(demo_corpus, mix, rank=rank, world_size=world_a, batch_size=B)
        dl = loader(ds, workers_a, stateful=True)
        it = iter(dl)
        got = tokens(take(it, n))
        states[rank] = save_state(dl.state_dict())
        del it, dl
        for s, r in _global_rows(got, 0, rank, world_a).items():
            assert s not in seen
            seen[s] = r
    start = n * B * world_a
    assert sorted(seen) == list(range(start))

    # The second job, from one rank's loader state alone.
    sd = states[world_a - 1 if world_a > 1 else 0]
    if via == "job_state":
        sd = job_state(sd)
        assert sd["stream"]["next_sequence"] == start
    for rank in range(world_b):
        ds = TokenDataset(demo_corpus, mix, rank=rank, world_size=world_b, batch_size=B)
        ds.load_state_dict(sd)
        got = tokens(loader(ds, workers_b))
        assert_rows(got, whole[start + rank:: world_b])
        for s, r in _global_rows(got, start, rank, world_b).items():
            assert s not in seen, f"global sequence {s} delivered twice"
            seen[s] = r
    assert sorted(seen) == list(range(SEQUENCES)), "sequences lost"
    assert_rows(np.stack([seen[s] for s in range(SEQUENCES)]), whole)


def test_resume_on_another_shape_before_every_worker_delivered(demo_corpus, mix, ref):
    whole = ref(demo_corpus, mix)
    ds = TokenDataset(demo_corpus, mix, batch_size=B)
    dl = loader(ds, 2, stateful=True)
    it = iter(dl)
    first = tokens(take(it, 1))  # only worker 0 has delivered
    sd = dl.state_dict()
    del it, dl
    ds2 = TokenDataset(demo_corpus, mix, batch_size=B)
    ds2.load_state_dict(sd)
    rest = tokens(loader(ds2, 3))
    assert_rows(np.concatenate([first, rest]), whole)


# --- 5. fork, spawn, forkserver ---------------------------------------------

FORK_SCRIPT = r'''
import sys, numpy as np, torch
from torch.utils.data import DataLoader
import corpusql
from corpusql.torch import TokenDataset

def main():
    corpus, mix, out, ctx = sys.argv[1:5]
    # The parent uses the library before its workers start: its pool's
    # threads and a stream's prefetch thread exist when it forks.
    c = corpusql.open(corpus)
    assert c.count("lang=fr") > 0
    with c.stream(mix, rank=0, world=1, batch_size=8) as s:
        next(iter(s))
    inproc = DataLoader(TokenDataset(corpus, mix, rank=1, world_size=2, batch_size=8), batch_size=8)
    np.save(f"{out}/inproc.npy", torch.cat([b["input_ids"] for b in inproc]).numpy())
    ds = TokenDataset(corpus, mix, rank=1, world_size=2, batch_size=8)
    dl = DataLoader(ds, batch_size=8, num_workers=2, multiprocessing_context=ctx, timeout=60)
    np.save(f"{out}/{ctx}.npy", torch.cat([b["input_ids"] for b in dl]).numpy())
    print(ctx, "ok", flush=True)

if __name__ == "__main__":
    main()
'''


@pytest.mark.parametrize("ctx", ["fork", "spawn", "forkserver"])
def test_fork_spawn_forkserver_after_the_parent_used_the_library(demo_corpus, mix, ref, tmp_path, ctx):
    script = tmp_path / "fork_check.py"
    script.write_text(FORK_SCRIPT)
    run_script(str(script), [str(demo_corpus), str(mix), str(tmp_path), ctx], timeout=120, cwd=tmp_path)
    want = ref(demo_corpus, mix, 1, 2)
    assert_rows(np.load(tmp_path / "inproc.npy"), want)
    assert_rows(np.load(tmp_path / f"{ctx}.npy"), want)


def test_fork_in_this_process_after_use(demo_corpus, mix, ref):
    """The same in the test process itself, which has iterated datasets
    in-process by now (a fork must not inherit a dead pool)."""
    ds0 = TokenDataset(demo_corpus, mix, rank=0, world_size=2, batch_size=B)
    assert_rows(tokens(loader(ds0)), ref(demo_corpus, mix, 0, 2))
    ds = TokenDataset(demo_corpus, mix, rank=1, world_size=2, batch_size=B)
    assert_rows(tokens(loader(ds, 2, multiprocessing_context="fork")), ref(demo_corpus, mix, 1, 2))


# --- 6. position_ids ---------------------------------------------------------


def _expected_positions(ids: np.ndarray) -> np.ndarray:
    """0 at the start of each sequence and after each end-of-document id,
    counting up otherwise."""
    n, length = ids.shape
    j = np.broadcast_to(np.arange(length), (n, length))
    start = np.zeros_like(ids, dtype=bool)
    start[:, 0] = True
    start[:, 1:] = ids[:, :-1] == EOS
    last_start = np.maximum.accumulate(np.where(start, j, 0), axis=1)
    return j - last_start


@pytest.mark.parametrize("source", ["mix", "query"])
def test_position_ids_restart_at_document_starts(demo_corpus, mix, ref, source):
    if source == "mix":
        ds = TokenDataset(demo_corpus, mix, batch_size=B, position_ids=True)
        want = ref(demo_corpus, mix)
    else:
        ds = TokenDataset(demo_corpus, SMALL_QUERY, seq_len=SEQ_LEN, batch_size=B, position_ids=True)
        want = ref(demo_corpus, SMALL_QUERY, 0, 1, "--seq-len", str(SEQ_LEN))
    batches = list(loader(ds))
    assert all(set(b) == {"input_ids", "position_ids"} for b in batches)
    ids = tokens(batches)
    pos = torch.cat([b["position_ids"] for b in batches]).numpy()
    assert pos.dtype == np.int64 and pos.shape == ids.shape
    assert_rows(ids, want)
    assert (ids[:, :-1] == EOS).sum() >= 5, "too few document boundaries to test"
    np.testing.assert_array_equal(pos, _expected_positions(ids))
    # Contiguous inside a document: +1 at every position but a start.
    steps = np.diff(pos, axis=1)
    inside = ids[:, :-1] != EOS
    assert (steps[inside] == 1).all()
    assert (pos[:, 1:][~inside] == 0).all()


def test_position_ids_with_workers(demo_corpus, mix):
    one = list(loader(TokenDataset(demo_corpus, mix, rank=1, world_size=2, batch_size=B, position_ids=True)))
    two = list(loader(TokenDataset(demo_corpus, mix, rank=1, world_size=2, batch_size=B, position_ids=True), 2))
    assert len(one) == len(two)
    for a, b in zip(one, two):
        assert torch.equal(a["input_ids"], b["input_ids"])
        assert torch.equal(a["position_ids"], b["position_ids"])


# --- 7. the corpus policy ----------------------------------------------------


def test_policy_holds_back_by_default(policy_corpus, mix, ref):
    held = ref(policy_corpus, mix)
    over = ref(policy_corpus, mix, 0, 1, "--override-policy")
    assert held.shape == over.shape
    assert (held != over).any(axis=1).sum() > SEQUENCES // 2, "the policy changed little: weak test"
    got = tokens(loader(TokenDataset(policy_corpus, mix, batch_size=B)))
    assert_rows(got, held)
    got = tokens(loader(TokenDataset(policy_corpus, mix, batch_size=B, override_policy=True)))
    assert_rows(got, over)
    # Ranks too.
    got = tokens(loader(TokenDataset(policy_corpus, mix, rank=1, world_size=2, batch_size=B), 2))
    assert_rows(got, ref(policy_corpus, mix, 1, 2))


def test_policy_state_is_refused_when_overridden(policy_corpus, mix):
    """The policy is part of the stream's identity: a state of the policed
    stream does not resume the overridden one."""
    ds = TokenDataset(policy_corpus, mix, batch_size=B)
    it = iter(ds)
    take(it, 10)
    st = ds.state_dict()
    del it
    ds2 = TokenDataset(policy_corpus, mix, batch_size=B, override_policy=True)
    ds2.load_state_dict(st)
    with pytest.raises(corpusql.ResumeError):
        next(iter(ds2))


# --- 8. rank and world ---------------------------------------------------------


def test_rank_world_from_args_and_env(demo_corpus, mix, ref, monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert not dist.is_initialized()
    assert resolve_rank_world() == (0, 1)
    ds = TokenDataset(demo_corpus, mix, batch_size=B)
    assert (ds.rank, ds.world_size, ds.batch_size) == (0, 1, B)

    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert resolve_rank_world() == (1, 2)
    ds = TokenDataset(demo_corpus, mix, batch_size=B)
    assert (ds.rank, ds.world_size) == (1, 2)
    assert_rows(tokens(loader(ds)), ref(demo_corpus, mix, 1, 2))
    # Arguments win over the environment.
    ds = TokenDataset(demo_corpus, mix, rank=3, world_size=4, batch_size=B)
    assert (ds.rank, ds.world_size) == (3, 4)
    assert_rows(tokens(loader(ds)), ref(demo_corpus, mix, 3, 4))
    ds = TokenDataset(demo_corpus, mix, rank=0, batch_size=B)  # world from the environment
    assert (ds.rank, ds.world_size) == (0, 2)

    for rank, world in [(2, 2), (-1, 2), (0, 0)]:
        with pytest.raises(ValueError, match="not a valid rank"):
            TokenDataset(demo_corpus, mix, rank=rank, world_size=world)
    monkeypatch.setenv("RANK", "5")
    with pytest.raises(ValueError, match="not a valid rank"):
        TokenDataset(demo_corpus, mix)
    with pytest.raises(ValueError, match="batch_size"):
        TokenDataset(demo_corpus, mix, rank=0, world_size=1, batch_size=0)


def test_rank_world_from_torch_distributed(demo_corpus, mix, ref, tmp_path, monkeypatch):
    # The environment says otherwise: an initialized process group wins.
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        assert dist.is_initialized()
        assert resolve_rank_world() == (0, 1)
        ds = TokenDataset(demo_corpus, mix, batch_size=B)
        assert (ds.rank, ds.world_size) == (0, 1)
        assert_rows(tokens(loader(ds)), ref(demo_corpus, mix))
        dd = DocumentDataset(demo_corpus, "lang=de", fields=["id"])
        assert (dd._split.rank, dd._split.world) == (0, 1)
    finally:
        dist.destroy_process_group()


# --- 9. errors ------------------------------------------------------------------


def _partial_state(corpus: Path, mix: Path, n: int = 10) -> Dict[str, Any]:
    ds = TokenDataset(corpus, mix, batch_size=B)
    it = iter(ds)
    take(it, n)
    st = ds.state_dict()
    del it
    return st


EXC_PICKLE_BUG = (
    "BUG (src/python/mod.rs): the exception classes are made by create_exception!(_corpusql, ...), "
    "so their __module__ is '_corpusql', which is not importable: pickling one fails "
    "(PicklingError: import of module '_corpusql' failed). A DataLoader worker sends its exception "
    "to the main process pickled; the send fails in the queue's feeder thread, the worker then "
    "reports its iterator as exhausted, and the loader ends the epoch silently (StopIteration, no "
    "error) instead of raising ResumeError. Fix: create_exception!(corpusql._corpusql, ...) or, in "
    "corpusql/__init__.py, set __module__ = 'corpusql' on CorpusqlError and its subclasses."
)


@pytest.mark.parametrize("workers", [0, pytest.param(2)])
def test_state_of_another_mixture_is_refused(demo_corpus, mix, other_mix, workers):
    st = _partial_state(demo_corpus, mix)
    ds = TokenDataset(demo_corpus, other_mix, batch_size=B)
    ds.load_state_dict(st)
    with pytest.raises(corpusql.ResumeError, match="(?i)mixture"):
        next(iter(loader(ds, workers)))
    # A job state too.
    ds = TokenDataset(demo_corpus, other_mix, batch_size=B)
    ds.load_state_dict(job_state(st))
    with pytest.raises(corpusql.ResumeError):
        next(iter(ds))


def test_corpusql_exceptions_pickle():
    """DataLoader workers send their exceptions to the main process
    pickled: the classes must be importable where they say they live."""
    import pickle

    for cls in (corpusql.ResumeError, corpusql.QueryError, corpusql.CorpusError, corpusql.CorpusqlError):
        e = pickle.loads(pickle.dumps(cls("boom")))
        assert type(e) is cls and str(e) == "boom"


def test_one_workers_state_into_another_shape_is_a_clear_error(demo_corpus, mix):
    ds = TokenDataset(demo_corpus, mix, batch_size=B)
    dl = loader(ds, 2, stateful=True)
    it = iter(dl)
    take(it, 4)
    sd = dl.state_dict()
    del it, dl
    one = sd["_snapshot"]["_worker_snapshots"]["worker_0"]["dataset_state"]
    assert one["workers"] == 2
    ds2 = TokenDataset(demo_corpus, mix, batch_size=B)
    with pytest.raises(ValueError, match="whole"):
        ds2.load_state_dict(one)
    with pytest.raises(ValueError, match="whole"):
        job_state(one)
    # The whole state is fine.
    ds2.load_state_dict(sd)
    assert len(tokens(loader(ds2))) == SEQUENCES - 4 * B


def test_states_without_batch_size_cannot_change_shape_mid_block(demo_corpus, mix):
    """Without batch_size the workers interleave single sequences and a
    loader batch comes from one worker: after an odd number of batches, the
    delivered sequences are no prefix of the stream, and the refusal says
    what to do."""
    ds = TokenDataset(demo_corpus, mix)
    dl = loader(ds, 2, stateful=True)
    it = iter(dl)
    take(it, 3)
    sd = dl.state_dict()
    del it, dl
    ds2 = TokenDataset(demo_corpus, mix)
    with pytest.raises(ValueError, match="batch_size"):
        ds2.load_state_dict(sd)


def _garbage_cases():
    good = {"corpusql_state": 1, "stream": {"version": 2, "generation": 2, "mixture_hash": "0",
            "tokenizer": "bytes", "seq_len": SEQ_LEN, "next_sequence": 0, "selection": "0"},
            "rank": 0, "world": 1, "worker": 0, "workers": 1, "block": B, "delivered": 8}

    return [
        pytest.param({}, id="empty"),
        pytest.param({"step": 3}, id="unrelated"),
        pytest.param({"_snapshot": {"_worker_snapshots": {"worker_0": 5}}}, id="loader-garbage"),
        pytest.param(dict(good, stream="x"), id="stream-not-a-dict"),
        pytest.param({"corpusql_state": 1}, id="truncated"),
        pytest.param(dict(good, corpusql_state=99), id="future-version"),
        pytest.param(dict(good, delivered=-3), id="negative-count"),
        pytest.param("garbage", id="a-string"),
    ]


@pytest.mark.parametrize("state", _garbage_cases())
def test_garbage_state_is_a_value_error(demo_corpus, mix, state):
    ds = TokenDataset(demo_corpus, mix, batch_size=B)
    with pytest.raises(ValueError):
        ds.load_state_dict(state)
        next(iter(ds))


def test_errors_leave_the_interpreter_usable(demo_corpus, mix, other_mix, ref):
    """After every refusal above, the same process still streams right."""
    st = _partial_state(demo_corpus, mix)
    for _ in range(3):
        ds = TokenDataset(demo_corpus, other_mix, batch_size=B)
        ds.load_state_dict(st)
        with pytest.raises(corpusql.ResumeError):
            next(iter(ds))
    with pytest.raises(corpusql.CorpusqlError, match="expected a value"):
        next(iter(TokenDataset(demo_corpus, "lang=", seq_len=SEQ_LEN)))
    assert_rows(tokens(loader(TokenDataset(demo_corpus, mix, batch_size=B))), ref(demo_corpus, mix))


def test_bad_query_in_a_dataset_is_a_query_error(demo_corpus):
    with pytest.raises(corpusql.QueryError):
        next(iter(TokenDataset(demo_corpus, "lang=", seq_len=SEQ_LEN)))


# --- 10. DocumentDataset ------------------------------------------------------------


@pytest.fixture(scope="module")
def fr_ids(demo_corpus) -> List[str]:
    out = cli("query", "lang=fr", "--fields", "id", corpus=demo_corpus).stdout.decode()
    ids = [json.loads(line)["id"] for line in out.splitlines() if line]
    assert len(ids) == len(set(ids)) > 1000
    return ids


def _ids(batches) -> List[str]:
    return [i for b in batches for i in b["id"]]


def test_document_dataset_ranks_and_workers(demo_corpus, fr_ids):
    everything: List[str] = []
    for rank in range(2):
        ds = DocumentDataset(demo_corpus, "lang=fr", fields=["id"], rank=rank, world_size=2, batch_size=B)
        batches = list(loader(ds, 2))
        assert set(batches[0]) == {"id"}
        got = _ids(batches)
        # Record i is rank i mod 2's; the loader keeps the rank's order.
        assert got == fr_ids[rank::2]
        everything += got
    assert Counter(everything) == Counter(fr_ids)


def test_document_dataset_without_batch_size_and_with_three_workers(demo_corpus, fr_ids):
    ds = DocumentDataset(demo_corpus, "lang=fr", fields=["id"], rank=1, world_size=2)
    got = _ids(loader(ds, 3))
    assert Counter(got) == Counter(fr_ids[1::2])


@pytest.mark.parametrize("workers", [0, 2])
def test_document_dataset_resume(demo_corpus, fr_ids, workers):
    want = fr_ids[0::2]
    ds = DocumentDataset(demo_corpus, "lang=fr", fields=["id"], rank=0, world_size=2, batch_size=B)
    dl = loader(ds, workers, stateful=True)
    it = iter(dl)
    first = _ids(take(it, 9))
    sd = save_state(dl.state_dict())
    del it, dl
    ds2 = DocumentDataset(demo_corpus, "lang=fr", fields=["id"], rank=0, world_size=2, batch_size=B)
    dl2 = loader(ds2, workers, stateful=True)
    dl2.load_state_dict(sd)
    rest = _ids(dl2)
    assert first + rest == want


def test_document_dataset_resume_on_another_shape(demo_corpus, fr_ids):
    """Two ranks x two workers, then one rank with three workers."""
    seen: List[str] = []
    states = []
    for rank in range(2):
        ds = DocumentDataset(demo_corpus, "lang=fr", fields=["id"], rank=rank, world_size=2, batch_size=B)
        dl = loader(ds, 2, stateful=True)
        it = iter(dl)
        seen += _ids(take(it, 4))
        states.append(dl.state_dict())
        del it, dl
    ds = DocumentDataset(demo_corpus, "lang=fr", fields=["id"], world_size=1, rank=0, batch_size=B)
    ds.load_state_dict(states[1])
    rest = _ids(loader(ds, 3))
    assert sorted(seen) == sorted(fr_ids[: 2 * 4 * B])
    assert rest == fr_ids[2 * 4 * B:]
    # A state of another query is refused.
    other = DocumentDataset(demo_corpus, "lang=de", fields=["id"], batch_size=B)
    other.load_state_dict(states[0])
    with pytest.raises(ValueError, match="another DocumentDataset"):
        next(iter(other))


def test_document_dataset_full_records(demo_corpus):
    ds = DocumentDataset(demo_corpus, SMALL_QUERY)
    recs = list(ds)
    want = list(corpusql.open(demo_corpus).query(SMALL_QUERY))
    assert recs == want and len(recs) == 20
    assert all("text" in r for r in recs)


# --- 11. torchrun ------------------------------------------------------------------

TORCHRUN_SCRIPT = r'''
import os, sys, numpy as np, torch
import torch.distributed as dist
from torch.utils.data import DataLoader
from corpusql.torch import TokenDataset

corpus, mix, out = sys.argv[1:4]
dist.init_process_group("gloo")
ds = TokenDataset(corpus, mix, batch_size=8, position_ids=True)  # rank and world from the group
assert (ds.rank, ds.world_size) == (dist.get_rank(), dist.get_world_size()) == (int(os.environ["RANK"]), 2)
dl = DataLoader(ds, batch_size=8, num_workers=1, timeout=60)
got = []
for i, b in enumerate(dl):
    got.append(b["input_ids"])
    # Ranks step in lockstep, as a trainer would.
    t = torch.tensor([len(b["input_ids"])])
    dist.all_reduce(t)
    assert t.item() == 16, t
    if i == 5:
        break
np.save(f"{out}/rank{dist.get_rank()}.npy", torch.cat(got).numpy())
dist.barrier()
dist.destroy_process_group()
'''


def test_torchrun_two_ranks(demo_corpus, mix, ref, tmp_path):
    try:
        import torch.distributed.run  # noqa: F401
    except ImportError:  # pragma: no cover
        pytest.skip("torch.distributed.run (torchrun) is not available in this torch build")
    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("torch.distributed with gloo is not available in this torch build")
    check_torchrun(str(demo_corpus), demo_corpus, mix, ref, tmp_path)


def check_torchrun(source: str, local, mix, ref, tmp_path) -> None:
    """`torchrun --nproc-per-node 2` (gloo, CPU) streams `mix` from `source`
    (a directory or a URI): each rank gets its stripe of the stream of the
    `local` corpus, and together they are its world=1 stream."""
    script = tmp_path / "train.py"
    script.write_text(TORCHRUN_SCRIPT)
    run_script(
        str(script), [source, str(mix), str(tmp_path)], timeout=150, cwd=tmp_path,
        python=[sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"],
    )
    whole = ref(local, mix)
    union = {}
    for rank in range(2):
        got = np.load(tmp_path / f"rank{rank}.npy").astype(np.int64)
        assert_rows(got, ref(local, mix, rank, 2)[: 6 * B])
        union.update(_global_rows(got, 0, rank, 2))
    assert sorted(union) == list(range(2 * 6 * B))
    assert_rows(np.stack([union[s] for s in range(2 * 6 * B)]), whole[: 2 * 6 * B])
