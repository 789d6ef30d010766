"""PyTorch datasets over a corpusql corpus.

:class:`TokenDataset` yields the packed token sequences of a mixture (the
sequences ``corpusql stream`` writes), split across data-parallel ranks and
DataLoader workers, deterministic and resumable through
``torchdata.stateful_dataloader.StatefulDataLoader``. :class:`DocumentDataset`
yields the records of a query, split the same way.

How the work is split. Global sequence ``s`` of the stream belongs to rank
``s mod world``. A rank's sequences are cut into blocks of ``batch_size``
(the DataLoader's batch size; 1 when not given) and block ``b`` goes to
worker ``b mod num_workers``; a DataLoader takes one batch from each worker
in turn, so with ``batch_size`` set its batches are exactly the rank's
stream, in order, whatever the number of workers.

Resume. Each worker's state records the run's first global sequence and how
many of its sequences it delivered; ``StatefulDataLoader.state_dict()``
gathers them. Loading that state into a loader of the same shape continues
exactly. To continue on another world size or number of workers, give the
whole loader state (from any rank: ranks step in lockstep) to
:meth:`TokenDataset.load_state_dict` of a fresh dataset and build a fresh
loader on it: the delivered sequences form a prefix of the global stream,
and the new job continues after it.

Neither dataset holds an open corpus, a thread or a file handle when it is
pickled or forked: each process opens the corpus on its first iteration.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from . import Corpus, Mixture, MixtureLike, PathLike, _dtype, _records, as_mixture, set_threads

__all__ = ["TokenDataset", "DocumentDataset", "resolve_rank_world", "job_state"]

_STATE_KEY = "corpusql_state"
_STATE_VERSION = 1


def resolve_rank_world(rank: Optional[int] = None, world_size: Optional[int] = None) -> Tuple[int, int]:
    """Rank and world size: the arguments, else ``torch.distributed`` when
    initialized, else the ``RANK``/``WORLD_SIZE`` environment variables
    (what ``torchrun`` sets), else 0 of 1."""
    if rank is None or world_size is None:
        r, w = 0, 1
        dist = getattr(torch, "distributed", None)
        if dist is not None and dist.is_available() and dist.is_initialized():
            r, w = dist.get_rank(), dist.get_world_size()
        elif "WORLD_SIZE" in os.environ:
            r, w = int(os.environ.get("RANK", "0")), int(os.environ["WORLD_SIZE"])
        rank = r if rank is None else rank
        world_size = w if world_size is None else world_size
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} of world size {world_size} is not a valid rank")
    return rank, world_size


def _worker() -> Tuple[int, int]:
    info = get_worker_info()
    return (info.id, info.num_workers) if info is not None else (0, 1)


def _count_of(n: int, worker: int, workers: int, block: int) -> int:
    """How many of a rank's first ``n`` sequences go to ``worker`` (as
    ``WorkerSplit::count_of`` in Rust)."""
    full, rest = divmod(n, block)
    blocks = (full - worker - 1) // workers + 1 if full > worker else 0
    return blocks * block + (rest if full % workers == worker else 0)


_FIELDS = {"stream": (dict, type(None)), "rank": int, "world": int, "worker": int, "workers": int,
           "block": int, "delivered": int}


def _check_state(st: Any) -> Mapping[str, Any]:
    """Refuses, with ValueError, what is not a corpusql dataset state."""
    if not isinstance(st, Mapping):
        raise ValueError(f"not a corpusql dataset state: a {type(st).__name__}")
    if st.get(_STATE_KEY) != _STATE_VERSION:
        raise ValueError(f"corpusql dataset state version {st.get(_STATE_KEY)!r}; this build reads {_STATE_VERSION}")
    for k, t in _FIELDS.items():
        if k not in st:
            raise ValueError(f"corpusql dataset state without `{k}`")
        if not isinstance(st[k], t) or isinstance(st[k], bool):
            raise ValueError(f"corpusql dataset state: `{k}` is {st[k]!r}")
    if st["delivered"] < 0 or st["world"] < 1 or st["workers"] < 1 or st["block"] < 1:
        raise ValueError("corpusql dataset state: negative or zero counts")
    if not 0 <= st["rank"] < st["world"] or not 0 <= st["worker"] < st["workers"]:
        raise ValueError("corpusql dataset state: rank or worker out of range")
    if st["stream"] is not None and not isinstance(st["stream"].get("next_sequence"), int):
        raise ValueError("corpusql dataset state: the stream state has no next_sequence")
    return st


def _worker_states(sd: Any) -> List[Mapping[str, Any]]:
    """The corpusql states inside a state dict: ours, or those a
    StatefulDataLoader gathered from its workers (or its main process)."""
    if not isinstance(sd, Mapping):
        raise ValueError(f"not a corpusql dataset state nor a StatefulDataLoader state: a {type(sd).__name__}")
    if _STATE_KEY in sd:
        return [_check_state(sd)]
    found: List[Mapping[str, Any]] = []
    snap = sd.get("_snapshot")
    if isinstance(snap, Mapping):
        for ws in (snap.get("_worker_snapshots") or {}).values():
            ds = ws.get("dataset_state") if isinstance(ws, Mapping) else None
            if isinstance(ds, Mapping) and _STATE_KEY in ds:
                found.append(_check_state(ds))
    ds = sd.get("dataset_state")
    if isinstance(ds, Mapping) and _STATE_KEY in ds:
        found.append(_check_state(ds))
    if not found:
        raise ValueError("not a corpusql dataset state nor a StatefulDataLoader state holding one")
    return found


def _position(stream: Optional[Mapping[str, Any]], exhausted: bool = False) -> Dict[str, Any]:
    """A global position: every rank delivered every sequence before
    `stream["next_sequence"]` (None: the start)."""
    return {
        _STATE_KEY: _STATE_VERSION,
        "global": True,
        "stream": None if stream is None else dict(stream),
        "rank": 0,
        "world": 1,
        "worker": 0,
        "workers": 1,
        "block": 1,
        "delivered": 0,
        "exhausted": exhausted,
    }


def job_state(sd: Mapping[str, Any]) -> Dict[str, Any]:
    """The global position of the whole job from one rank's state (a
    dataset state or a ``StatefulDataLoader.state_dict()``): ranks step in
    lockstep, so every rank has delivered what this one did. Returns a
    state any dataset of the same corpus and mixture resumes from, on any
    world size and number of workers."""
    states = _worker_states(sd)
    # A worker that has not started yet reports where it would start: a
    # global position (the run's start), or nothing.
    real = [st for st in states if not st.get("global")]
    if not real:
        starts = [st for st in states if st["stream"] is not None]
        return _position(starts[0]["stream"] if starts else None, any(st.get("exhausted") for st in states))
    first = real[0]
    base = first["stream"]
    rank, world, workers, block = first["rank"], first["world"], first["workers"], first["block"]
    for st in real:
        if (st["stream"], st["world"], st["workers"], st["block"]) != (base, world, workers, block):
            raise ValueError("the worker states come from different runs")
    for st in states:
        if st.get("global") and st["stream"] is not None and st["stream"] != base:
            raise ValueError("the worker states come from different runs")
    counts = {st["worker"]: st["delivered"] for st in real}
    if len(states) < workers:
        raise ValueError(
            f"the state holds {len(states)} of the {workers} workers' positions: give the whole "
            "StatefulDataLoader.state_dict(), not one worker's dataset state"
        )
    delivered = sum(counts.values())
    for w in range(workers):
        c = counts.get(w, 0)
        if _count_of(delivered, w, workers, block) != c:
            raise ValueError(
                f"the workers' positions ({[counts.get(i, 0) for i in range(workers)]} sequences) are not a "
                f"prefix of the rank's stream, so another world size or number of workers cannot "
                f"continue it exactly: create the dataset with batch_size equal to the DataLoader's "
                f"(the workers then deliver whole batches in turn), or resume with the same loader shape"
            )
    if all(st.get("exhausted") for st in real) and len(real) == workers:
        return _position(None, True)
    stream = dict(base)
    stream["next_sequence"] = base["next_sequence"] + delivered * world
    return _position(stream)


class _Split:
    """Who this process is and where it starts: shared by both datasets."""

    def __init__(self, rank: Optional[int], world_size: Optional[int], batch_size: Optional[int]) -> None:
        self.rank, self.world = resolve_rank_world(rank, world_size)
        if batch_size is not None and batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.block = batch_size or 1
        # Where the next iteration starts: this process's own state (used
        # when the process has the shape it was saved in), else a global
        # position. Both are consumed by the iteration that starts from them.
        self.resume_own: Optional[Mapping[str, Any]] = None
        self.resume: Optional[Dict[str, Any]] = None
        self.delivered = 0
        self.exhausted = False
        self.base: Optional[Dict[str, Any]] = None
        self.shape: Tuple[int, int] = (0, 1)

    def load(self, sd: Mapping[str, Any]) -> None:
        states = _worker_states(sd)
        self.resume_own, self.resume = None, None
        self.base = None
        if len(states) == 1 and not states[0].get("global"):
            st = states[0]
            same = (st["rank"], st["world"], st["block"]) == (self.rank, self.world, self.block)
            if same and (st["workers"] == 1 or (st["worker"], st["workers"]) == _worker()):
                # Its own state; a whole rank's (one worker) also serves a
                # loader with workers (checked when iteration starts).
                self.resume_own = st
                return
        pos = job_state(sd)
        if not pos.get("exhausted"):
            self.resume = pos["stream"]

    def start(self) -> Tuple[Optional[str], int, int, int]:
        """(resume state JSON, worker, workers, skip) for the iteration that
        starts now in this process; the resume point is consumed."""
        worker, workers = _worker()
        self.shape = (worker, workers)
        resume, skip = self.resume, 0
        own = self.resume_own
        if own is not None:
            if (own["worker"], own["workers"]) == (worker, workers):
                if own.get("exhausted"):
                    resume = None  # a new epoch, as StatefulDataLoader starts one
                else:
                    resume, skip = own["stream"], own["delivered"]
            else:
                pos = job_state(own)  # raises unless the state was a whole rank's
                resume = None if pos.get("exhausted") else pos["stream"]
        self.resume_own, self.resume = None, None
        return (json.dumps(resume) if resume is not None else None, worker, workers, skip)

    def state(self) -> Dict[str, Any]:
        if self.base is None:
            # Not iterated in this process (yet): where it would start.
            if self.resume_own is not None:
                return dict(self.resume_own)
            return _position(self.resume)
        worker, workers = self.shape
        return {
            _STATE_KEY: _STATE_VERSION,
            "stream": dict(self.base),
            "rank": self.rank,
            "world": self.world,
            "worker": worker,
            "workers": workers,
            "block": self.block,
            "delivered": self.delivered,
            "exhausted": self.exhausted,
        }


def _threads_for_worker() -> None:
    """In a DataLoader worker, share the CPUs among the workers."""
    info = get_worker_info()
    if info is not None:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        set_threads(max(1, cpus // max(1, info.num_workers)))


class _Lazy:
    """A corpus opened on first use in each process, never pickled."""

    def __init__(self, path: PathLike) -> None:
        self.path = os.fspath(path)
        self._pid = -1
        self._corpus: Optional[Corpus] = None

    def get(self) -> Corpus:
        if self._corpus is None or self._pid != os.getpid():
            _threads_for_worker()
            self._corpus = Corpus(self.path)
            self._pid = os.getpid()
        return self._corpus

    def __getstate__(self) -> Dict[str, Any]:
        return {"path": self.path}

    def __setstate__(self, st: Dict[str, Any]) -> None:
        self.__init__(st["path"])  # type: ignore[misc]


def _looks_like_file(s: str) -> bool:
    return s.endswith(".toml") or os.path.isfile(s)


class TokenDataset(IterableDataset):
    """The packed token sequences of a mixture, as ``corpusql stream``
    writes them: each item is ``{"input_ids": LongTensor[seq_len]}`` (plus
    ``"position_ids"``, restarting at 0 at each document, when
    ``position_ids=True``, and ``"component"``, the index of the mixture
    component the sequence comes from, when ``components=True``: every
    sequence belongs to one component, for per-component loss).

    ``mixture`` is a mixture file, a :class:`corpusql.Mixture`, a dict, or a
    query (then ``tokenizer`` and ``seq_len`` say how to stream it; every
    match is streamed once). ``seq_len`` overrides the mixture's. ``rank``
    and ``world_size`` default to ``torch.distributed``, then
    ``RANK``/``WORLD_SIZE``. ``batch_size`` should be the DataLoader's:
    workers then deliver whole batches in turn, so the loader's order is
    the rank's stream order and a state resumes on any number of workers.
    The corpus policy holds back its classes unless ``override_policy``.
    ``batched=True`` yields whole batches of ``batch_size`` rows instead of
    rows (use ``DataLoader(ds, batch_size=None)``): no per-row Python work
    and no collate, the fastest way in; states and resume are the same.
    """

    def __init__(
        self,
        corpus: PathLike,
        mixture: Union[MixtureLike, str],
        seq_len: Optional[int] = None,
        rank: Optional[int] = None,
        world_size: Optional[int] = None,
        *,
        batch_size: Optional[int] = None,
        tokenizer: str = "bytes",
        position_ids: bool = False,
        override_policy: bool = False,
        prefetch: int = 2,
        seed: int = 0,
        batched: bool = False,
        components: bool = False,
    ) -> None:
        super().__init__()
        if batched and batch_size is None:
            raise ValueError("batched=True needs batch_size (each item is then one batch)")
        self.batched = batched
        if isinstance(mixture, str) and not _looks_like_file(mixture):
            m = Mixture.query(mixture, tokenizer=tokenizer, seq_len=seq_len or 2048, seed=seed)
        else:
            m = as_mixture(mixture)
            if seq_len is not None and seq_len != m.seq_len:
                d = m.to_dict()
                d["seq_len"] = seq_len
                m = Mixture.from_dict(d)
        self.mixture = m
        self.seq_len = m.seq_len
        self.position_ids = position_ids
        self.components = components
        self.override_policy = override_policy
        self.prefetch = prefetch
        self._corpus = _Lazy(corpus)
        self._split = _Split(rank, world_size, batch_size)

    @property
    def rank(self) -> int:
        return self._split.rank

    @property
    def world_size(self) -> int:
        return self._split.world

    @property
    def batch_size(self) -> int:
        return self._split.block

    def __iter__(self) -> Iterator[Dict[str, torch.Tensor]]:
        sp = self._split
        resume, worker, workers, skip = sp.start()
        corpus = self._corpus.get()
        s = corpus._c.stream(
            self.mixture._m,
            sp.rank,
            sp.world,
            resume,
            self.override_policy,
            worker=worker,
            workers=workers,
            block=sp.block,
            skip=skip,
            prefetch=self.prefetch,
        )
        base = json.loads(s.state_json())
        base["next_sequence"] = json.loads(resume)["next_sequence"] if resume is not None else 0
        sp.base = base
        sp.delivered = skip
        sp.exhausted = False
        dtype = _dtype(s.width)
        # Many rows per call: each call into Rust has a fixed cost.
        rows = max(sp.block, 256)
        try:
            while True:
                got = s.next_batch(rows, self.position_ids)
                if got is None:
                    sp.exhausted = True
                    return
                tok, pos, n, seq_len, _, comps = got[:6]
                ids = torch.from_numpy(np.frombuffer(tok, dtype=dtype).reshape(n, seq_len).astype(np.int64))
                p = None
                if pos is not None:
                    p = torch.from_numpy(np.frombuffer(pos, dtype="<u4").reshape(n, seq_len).astype(np.int64))
                comp = torch.tensor(comps, dtype=torch.int64) if self.components else None

                def item(sl: Any) -> Dict[str, Any]:
                    out = {"input_ids": ids[sl]}
                    if p is not None:
                        out["position_ids"] = p[sl]
                    if comp is not None:
                        out["component"] = comp[sl]
                    return out

                if self.batched:
                    # Whole batches (the worker's blocks): one item per loader step.
                    for i in range(0, n, sp.block):
                        j = min(n, i + sp.block)
                        sp.delivered += j - i
                        yield item(slice(i, j))
                    continue
                for i in range(n):
                    sp.delivered += 1
                    yield item(i)
        finally:
            s.close()

    def state_dict(self) -> Dict[str, Any]:
        """This process's position: in a DataLoader worker, the worker's
        (``StatefulDataLoader.state_dict()`` gathers them all); with
        ``num_workers=0``, the rank's."""
        return self._split.state()

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Continues from a state: this dataset's own (a worker's, in a
        loader of the same shape), or a whole ``StatefulDataLoader`` state or
        :func:`job_state` (then on any world size and number of workers).
        A state of another corpus generation, mixture or tokenizer is
        refused when iteration starts (``corpusql.ResumeError``)."""
        self._split.load(state_dict)

    def __getstate__(self) -> Dict[str, Any]:
        return self.__dict__.copy()


class DocumentDataset(IterableDataset):
    """The records matching a query (dicts, as ingested, or only
    ``fields``), split across ranks and workers as :class:`TokenDataset`
    splits sequences: record ``i`` (storage order) goes to rank
    ``i mod world``, a rank's records go to workers in blocks of
    ``batch_size``. Resumable the same way. A query is a read: the policy
    does not apply (filter on ``license_class`` in the query)."""

    def __init__(
        self,
        corpus: PathLike,
        query: str = "*",
        fields: Optional[Sequence[str]] = None,
        rank: Optional[int] = None,
        world_size: Optional[int] = None,
        *,
        batch_size: Optional[int] = None,
        signals: bool = False,
    ) -> None:
        super().__init__()
        self.query = query
        self.fields = list(fields) if fields is not None else None
        self.signals = signals
        self._corpus = _Lazy(corpus)
        self._split = _Split(rank, world_size, batch_size)

    def __iter__(self) -> Iterator[Dict[str, Any]]:
        sp = self._split
        resume, worker, workers, skip = sp.start()
        corpus = self._corpus.get()
        st = json.loads(resume) if resume is not None else None
        start = st["next_sequence"] if st is not None else 0
        if st is not None and st.get("records") != self.query:
            raise ValueError("this state is of another DocumentDataset (another query) or another kind of dataset")
        if st is not None and st.get("generation") != corpus.generation:
            from . import ResumeError

            raise ResumeError(
                f"this state is of generation {st.get('generation')}; the corpus is at "
                f"generation {corpus.generation}: records are not numbered the same"
            )
        sp.base = {"records": self.query, "generation": corpus.generation, "next_sequence": start}
        sp.delivered = skip
        sp.exhausted = False
        chunks = corpus._c.records(
            self.query, self.fields, None, self.signals, (start, sp.rank, sp.world, worker, workers, sp.block, skip)
        )
        for rec in _records(chunks):
            sp.delivered += 1
            yield rec
        sp.exhausted = True

    def state_dict(self) -> Dict[str, Any]:
        """As :meth:`TokenDataset.state_dict`."""
        return self._split.state()

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """As :meth:`TokenDataset.load_state_dict`."""
        self._split.load(state_dict)
