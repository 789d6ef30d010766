"""corpusql: an embedded corpus store for language-model training data.

    import corpusql
    c = corpusql.open("./fr")
    c.count("lang=fr and license_class in (public-domain, permissive)")
    for rec in c.query("lang=fr", fields=["id", "license"], limit=10): ...
    mix = corpusql.Mixture.from_file("mix.toml")
    for batch in c.stream(mix, rank=0, world=8, batch_size=16): ...  # numpy [16, seq_len]

The PyTorch datasets are in :mod:`corpusql.torch`. Every call applies the
corpus license policy (``policy.toml``) as the CLI does; ``override_policy=True``
includes the classes it holds back, and the result says so.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Union

import numpy as np

from . import _corpusql
from ._corpusql import (
    CorpusError,
    CorpusqlError,
    IngestError,
    QueryError,
    ResumeError,
    __version__,
    set_threads,
)

# The native classes say they live in `_corpusql`, which is not importable
# under that name: exceptions raised in a DataLoader worker are pickled to
# the main process, which imports them from here.
for _cls in (CorpusError, CorpusqlError, IngestError, QueryError, ResumeError):
    _cls.__module__ = "corpusql"
del _cls

__all__ = [
    "Corpus",
    "CorpusError",
    "CorpusqlError",
    "IngestError",
    "Mixture",
    "QueryError",
    "ResumeError",
    "Stream",
    "__version__",
    "commit_job",
    "ingest",
    "open",
    "set_threads",
]

PathLike = Union[str, "os.PathLike[str]"]


class Mixture:
    """A training mixture: components (queries with weights), a token budget,
    a tokenizer and a sequence length, as in a mixture file
    (``docs/mixtures.md``)."""

    __slots__ = ("_m",)

    def __init__(self, native: "_corpusql.Mixture") -> None:
        self._m = native

    @staticmethod
    def from_file(path: PathLike) -> "Mixture":
        """Reads and checks a mixture file (TOML)."""
        return Mixture(_corpusql.Mixture.from_file(os.fspath(path)))

    @staticmethod
    def parse(text: str) -> "Mixture":
        """Parses and checks a mixture file's TOML text."""
        return Mixture(_corpusql.Mixture.parse(text))

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> "Mixture":
        """A mixture from a dict shaped like the TOML file; the components
        may be given as ``component`` or ``components``."""
        d = dict(d)
        if "components" in d and "component" not in d:
            d["component"] = d.pop("components")
        return Mixture(_corpusql.Mixture.from_json(json.dumps(d)))

    @staticmethod
    def query(query: str, tokenizer: str = "bytes", seq_len: int = 2048, seed: int = 0) -> "Mixture":
        """A one-component mixture that streams every match of ``query`` once
        (what ``corpusql stream QUERY --tokenizer T --seq-len L`` streams)."""
        return Mixture(_corpusql.Mixture.inline(query, tokenizer, seq_len, seed))

    def to_dict(self) -> Dict[str, Any]:
        """The mixture as a dict shaped like the TOML file."""
        return json.loads(self._m.to_json())

    @property
    def hash(self) -> str:
        """The hash a stream state records."""
        return self._m.hash

    @property
    def seq_len(self) -> int:
        return self._m.seq_len

    @property
    def tokenizer(self) -> str:
        return self._m.tokenizer

    @property
    def components(self) -> List[str]:
        return self._m.components

    def __repr__(self) -> str:
        return repr(self._m)

    def __reduce__(self):  # pickled as its dict (for DataLoader workers)
        return (Mixture.from_dict, (self.to_dict(),))


MixtureLike = Union[Mixture, PathLike, Mapping[str, Any]]


def as_mixture(m: MixtureLike) -> Mixture:
    """A :class:`Mixture` from a Mixture, a mixture file path or a dict."""
    if isinstance(m, Mixture):
        return m
    if isinstance(m, Mapping):
        return Mixture.from_dict(m)
    return Mixture.from_file(m)


def _dtype(width: int) -> "np.dtype":
    return np.dtype("<u2") if width == 2 else np.dtype("<u4")


class Stream:
    """This rank's packed token sequences of a mixture, in batches: numpy
    arrays ``[batch_size, seq_len]`` of ``uint16`` (vocabularies up to 65,536
    ids) or ``uint32``. :meth:`state` is a resume point (a dict, JSON-safe)."""

    def __init__(self, native: "_corpusql.Stream", batch_size: int) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self._s = native
        self.batch_size = batch_size

    def __iter__(self) -> Iterator[np.ndarray]:
        return self

    def __next__(self) -> np.ndarray:
        got = self._s.next_batch(self.batch_size, False)
        if got is None:
            raise StopIteration
        tok, _, rows, seq_len = got[:4]
        return np.frombuffer(tok, dtype=_dtype(self._s.width)).reshape(rows, seq_len)

    def next_batch(
        self, rows: Optional[int] = None, positions: bool = False, provenance: bool = False
    ) -> Optional[Dict[str, Any]]:
        """The next batch with what it holds, or None at the end:
        ``tokens`` (numpy [rows, seq_len]), ``sequences`` (global indices),
        ``components`` (numpy int32: the component of each row, an index
        into :attr:`component_names`, for per-component loss) and, when
        asked, ``positions`` (uint32, restarting at 0 at each document
        start) and ``provenance`` (per row, its ``[key, token offset,
        tokens]`` pieces; keys need ``Corpus.stream(..., provenance=True)``)."""
        got = self._s.next_batch(rows or self.batch_size, positions, provenance)
        if got is None:
            return None
        tok, pos, rows_, seq_len, seqs, comps, prov = got
        out: Dict[str, Any] = {
            "tokens": np.frombuffer(tok, dtype=_dtype(self._s.width)).reshape(rows_, seq_len),
            "sequences": seqs,
            "components": np.asarray(comps, dtype=np.int32),
        }
        if pos is not None:
            out["positions"] = np.frombuffer(pos, dtype="<u4").reshape(rows_, seq_len)
        if prov is not None:
            out["provenance"] = json.loads(prov)
        return out

    def set_weights(self, weights: Mapping[str, float], from_sequence: int) -> None:
        """Changes the components' weights from global sequence
        ``from_sequence`` to the end of the phase it falls in (online
        mixing; components left out get none). Every rank calls it with the
        same arguments, at or after the state's ``next_sequence``; the
        change is recorded in :meth:`state`, so a resume replays it."""
        self._s.set_weights(json.dumps(dict(weights)), int(from_sequence))

    @property
    def component_names(self) -> List[str]:
        """The mixture's component names (what ``components`` indexes)."""
        return self._s.component_names

    def state(self) -> Dict[str, Any]:
        """The resume state after the batches handed out (pass it as
        ``resume=`` to continue after them)."""
        return json.loads(self._s.state_json())

    def emitted(self) -> Dict[str, Any]:
        """Sequences, tokens and their checksum, tokens per component."""
        return json.loads(self._s.emitted_json())

    @property
    def policy(self) -> Dict[str, Any]:
        """What the corpus policy held back from this stream (or let through)."""
        return json.loads(self._s.policy_json())

    @property
    def seq_len(self) -> int:
        return self._s.seq_len

    @property
    def vocab_size(self) -> int:
        return self._s.vocab_size

    @property
    def eos(self) -> int:
        return self._s.eos

    @property
    def total_sequences(self) -> int:
        """Sequences this rank emits in all (after the resume point)."""
        return self._s.total_sequences

    @property
    def global_sequences(self) -> int:
        """Sequences of the whole stream, all ranks."""
        return self._s.global_sequences

    def close(self) -> None:
        """Stops the prefetch thread."""
        self._s.close()

    def __enter__(self) -> "Stream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _state_text(resume: Union[None, str, Mapping[str, Any]]) -> Optional[str]:
    if resume is None:
        return None
    if isinstance(resume, str):
        return resume
    return json.dumps(dict(resume))


def _names(names: Optional[Sequence[str]], what: str) -> Optional[List[str]]:
    """A list of field names; a bare string is refused (it would iterate
    as characters)."""
    if names is None:
        return None
    if isinstance(names, str):
        raise TypeError(f"{what} takes a list of field names, not a string: {what}=[{names!r}]")
    return [str(n) for n in names]


def _records(chunks: Iterable[str]) -> Iterator[Dict[str, Any]]:
    loads = json.loads
    for chunk in chunks:
        # Split on newlines only: str.splitlines would also split on
        # U+2028, U+2029 and U+0085, which JSON strings hold unescaped.
        for line in chunk.split("\n"):
            if line:
                yield loads(line)


class Corpus:
    """A corpus snapshot: the generation current when it was opened
    (:meth:`reload` moves to the newest). Safe to share between threads."""

    def __init__(self, path: PathLike) -> None:
        self._c = _corpusql.Corpus(os.fspath(path))

    @property
    def path(self) -> str:
        return self._c.path

    @property
    def generation(self) -> int:
        return self._c.generation

    def __len__(self) -> int:
        return len(self._c)

    def __repr__(self) -> str:
        return f"corpusql.Corpus({self.path!r}, generation={self.generation}, documents={len(self)})"

    def reload(self) -> None:
        """Moves to the corpus's current generation."""
        self._c.reload()

    def count(self, query: str = "*") -> int:
        """Documents matching ``query`` (no text is read)."""
        return self._c.count(query)

    def query(
        self,
        query: str = "*",
        fields: Optional[Sequence[str]] = None,
        limit: Optional[int] = None,
        signals: bool = False,
    ) -> Iterator[Dict[str, Any]]:
        """The matching records as dicts, as ingested (or only ``fields``;
        ``signals=True`` adds derived facets and tag signals), lazily, in
        storage order. A query is a read: the policy does not apply
        (export and stream apply it)."""
        return _records(self._c.records(query, _names(fields, "fields"), limit, signals))

    def get(self, key: str, signals: bool = False) -> Optional[Dict[str, Any]]:
        """The record with this key, or None."""
        s = self._c.get_json(key, signals)
        return None if s is None else json.loads(s)

    def stats(self, query: str = "*", by: Sequence[str] = ()) -> List[Dict[str, Any]]:
        """Documents and bytes per group of the ``by`` fields' values: one dict
        per group with the fields' values, ``docs``, ``bytes`` and their
        shares (``stats_summary`` gives the totals too)."""
        st = self.stats_summary(query, by)
        out = []
        for g in st["groups"]:
            row = dict(zip(st.get("by", list(by)), g["values"]))
            row.update({k: v for k, v in g.items() if k != "values"})
            out.append(row)
        return out

    def stats_summary(self, query: str = "*", by: Sequence[str] = ()) -> Dict[str, Any]:
        """As ``corpusql stats --json``."""
        return json.loads(self._c.stats_json(query, _names(by, "by") or []))

    def schema(self, values: int = 5) -> Dict[str, Any]:
        """Fields, kinds, document counts and frequent values, as
        ``corpusql schema --json``."""
        return json.loads(self._c.schema_json(values))

    def plan(self, mixture: MixtureLike, override_policy: bool = False) -> Dict[str, Any]:
        """Documents, tokens and epochs per component, as ``mix plan --json``."""
        return json.loads(self._c.plan_json(as_mixture(mixture)._m, override_policy))

    def stream(
        self,
        mixture: MixtureLike,
        rank: int = 0,
        world: int = 1,
        batch_size: int = 8,
        resume: Union[None, str, Mapping[str, Any]] = None,
        override_policy: bool = False,
        prefetch: int = 2,
        track_facets: bool = False,
        provenance: bool = False,
    ) -> Stream:
        """This rank's batches of the mixture's stream (the sequences
        ``corpusql stream --rank R --world W`` writes, in the same order).
        ``track_facets`` attributes emitted tokens to licenses and sources
        in :meth:`Stream.emitted` (one pass over the facet columns);
        ``provenance`` names the document of every piece of every row
        (:meth:`Stream.next_batch` with ``provenance=True``)."""
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        m = as_mixture(mixture)
        s = self._c.stream(
            m._m,
            rank,
            world,
            _state_text(resume),
            override_policy,
            prefetch=prefetch,
            track_facets=track_facets,
            provenance=provenance,
        )
        return Stream(s, batch_size)

    def report(
        self,
        mixture: Optional[MixtureLike] = None,
        query: Optional[str] = None,
        override_policy: bool = False,
    ) -> Dict[str, Any]:
        """The license datasheet of a mixture or a query, as ``report --json``."""
        m = as_mixture(mixture)._m if mixture is not None else None
        if m is None and query is None:
            query = "*"
        label = os.fspath(mixture) if isinstance(mixture, (str, os.PathLike)) else None
        return json.loads(self._c.report_json(m, query, override_policy, None, label))

    def trace(
        self,
        mixture: MixtureLike,
        sequence: int,
        offset: Optional[int] = None,
        override_policy: bool = False,
    ) -> Dict[str, Any]:
        """The documents (key, source, license, token range) behind a
        global sequence of the stream, or behind one token of it."""
        return json.loads(self._c.trace_json(as_mixture(mixture)._m, sequence, offset, override_policy))

    def tag(self, taggers: Sequence[str], query: Optional[str] = None, force: bool = False) -> Dict[str, Any]:
        """Runs taggers (``language``, ``quality``, ``pii``, ``dedup``, ...),
        commits their signal columns and moves to the new generation."""
        return json.loads(self._c.tag_json(list(taggers), query, force))

    def export(
        self,
        query: str,
        path: PathLike,
        fields: Optional[Sequence[str]] = None,
        limit: Optional[int] = None,
        override_policy: bool = False,
        redact_pii: bool = False,
    ) -> Dict[str, Any]:
        """Writes the matching records as JSONL (``.zst``/``.gz`` compress)
        under the policy; returns ``documents`` and ``policy``."""
        return json.loads(
            self._c.export_json(
                query,
                os.fspath(path),
                _names(fields, "fields"),
                limit,
                override_policy,
                redact_pii,
            )
        )


def open(path: PathLike) -> Corpus:  # noqa: A001 - the module's verb
    """Opens the corpus at ``path``: a directory, or a URI (``s3://``,
    ``gs://``, ``az://``, ``file://``) read through the node-local cache;
    changes to a corpus opened from a URI (``tag``) commit a new version
    there."""
    return Corpus(path)


def ingest(
    path: PathLike,
    inputs: Union[PathLike, Sequence[PathLike], Iterable[Mapping[str, Any]]] = (),
    on_duplicate: str = "skip",
    records: Optional[Iterable[Mapping[str, Any]]] = None,
    text_field: Optional[str] = None,
    id_field: Optional[str] = None,
    license_field: Optional[str] = None,
    allow_rejects: bool = True,
) -> Dict[str, Any]:
    """Ingests files (JSONL, ``.gz``, ``.zst``) and/or records (an iterable
    of dicts) into the corpus at ``path`` (a directory or a URI such as
    ``s3://bucket/corpus``), created if absent, as one new generation (at a
    URI: one new version, committed by a conditional write). Returns the report (as ``ingest --json``); rejected records
    are counted and listed (``allow_rejects=False`` raises instead, after
    committing the rest)."""
    files: List[str] = []
    if isinstance(inputs, (str, os.PathLike)):
        files = [os.fspath(inputs)]
    else:
        items = list(inputs)
        if items and all(isinstance(x, Mapping) for x in items):
            records = list(records or []) + items
        elif any(isinstance(x, Mapping) for x in items):
            raise TypeError("inputs mixes records (dicts) and files: pass the records as records=")
        else:
            files = [os.fspath(x) for x in items]
    data = None
    if records is not None:
        # A string Python holds but UTF-8 cannot (a lone surrogate) passes
        # as invalid UTF-8, which ingest rejects with its line number.
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        data = text.encode("utf-8", "surrogatepass")
    return json.loads(
        _corpusql.ingest_json(
            os.fspath(path),
            files,
            data,
            on_duplicate,
            text_field,
            id_field,
            license_field,
            allow_rejects,
        )
    )


def commit_job(path: PathLike, job: str, tasks: Optional[Sequence[int]] = None) -> Dict[str, Any]:
    """Commits every task of ``job`` (run by ``corpusql ingest/tag --job JOB
    --task I/N``, a Slurm array) as one generation, or exactly ``tasks``
    when given; returns the report (as ``corpusql commit --json``). Raises,
    naming them, while tasks are missing. ``corpusql.ray`` drives jobs on Ray."""
    return json.loads(
        _corpusql.commit_job_json(os.fspath(path), job, None if tasks is None else list(tasks))
    )
