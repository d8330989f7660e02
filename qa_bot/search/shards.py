"""A collection split into shards by paper id, held in this process or by Ray actors, scored exactly.

`qa-bot index --shards N` stores N collections of the corpus folder (`indexing.Shard`: the papers
whose id leaves the shard's number divided by N), each in today's format and each updated as
today. With a Ray address (`--ray`, QA_BOT_RAY_ADDRESS) each shard is built by a Ray task and held
for queries by a Ray actor that maps it; without one, the shards are built one after the other and
held in this process (what the tests compare, and a way to try sharding on one machine).

BM25 needs statistics of the whole collection (live documents, their total length, each query
term's document frequency), so a query takes two rounds: every shard gives its share of the
statistics of the query's terms (`Index.statistics`), the shares are added up, and every shard
returns its k best scored with the sums (`Index.scoring`: the same formulas, so the same scores as
one index of the whole collection, to the last bit). The k best of all are among the shards' k
best, so the merge is exact; equal scores are ordered by paper id, in one index too. What the
answer stage asks beyond ranking (a term's weight, whether the collection knows a term, which
papers hold a name, the largest weight) is answered from the same statistics, so a sharded
collection gives the answers one index gives.

A shard whose actor is down is an error naming the shard (`ShardDown`), or with `allow_partial`
the shards that answer are used and the result says which were missing. Not handled: BM25Okapi
(its IDF floor is a mean over the whole vocabulary; refused), moving a shard between machines
(each node must see the corpus folder and its cache folder at the same paths).
"""

import logging
import os
import socket
import time
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from qa_bot.collection.corpus import Corpus, Paper, check_records
from qa_bot.errors import BadInputError, QaBotError
from qa_bot.search.index import Index, Statistics, rank_bm25_idf
from qa_bot.search.indexing import Collection, Shard, collection_folder, open_collection
from qa_bot.search.store import PAPER_CACHE, titled
from qa_bot.settings import Settings

RARE_SAMPLE = 64  # terms of the rarest each shard offers when the largest weight is asked
ACTOR_PREFIX = "qa-bot-shard"


class ShardDown(QaBotError):
    """A shard did not answer (its actor died, or its node is gone); exit status 1."""


class ShardHolder:
    """One shard's collection, opened (updated first if its files changed): what a Ray actor holds,
    or the set itself in this process. Its methods answer the set's questions about the shard."""

    def __init__(self, values: dict, number: int, count: int, build: bool = False, parallel: bool = True):
        self.shard = Shard(number, count)
        settings = Settings(**values)
        self.folder = collection_folder(settings, self.shard)
        if not build and not self.folder.is_dir():
            self.collection = None  # reported by `describe`: an actor that fails to start says less
            return
        started = time.perf_counter()
        self.collection: Collection | None = open_collection(settings, shard=self.shard, parallel=parallel)
        self.seconds = time.perf_counter() - started
        self.index: Index = self.collection.index
        self.papers = self.collection.corpus.source

    def describe(self) -> dict:
        """What the set needs to know of the shard once: its positions' ids, liveness and languages,
        where each file's records are, and how it was opened."""
        if self.collection is None:
            raise BadInputError(f"{self.shard} is missing ({self.folder}): build the shards with "
                                f"qa-bot index --shards {self.shard.count}")
        corpus = self.collection.corpus
        return {"ids": np.asarray(self.papers.ids), "live": np.asarray(self.papers.live),
                "languages": np.asarray(self.papers.languages), "files": dict(self.papers.files),
                "issues": corpus.issues, "content_hash": corpus.content_hash, "records": corpus.record_count,
                "stamp": corpus.stamp, "from_cache": self.collection.from_cache, "added": self.collection.added,
                "removed": self.collection.removed, "folder": str(self.folder), "seconds": self.seconds}

    def statistics(self, terms: list[str]) -> Statistics:
        return self.index.statistics(terms)

    def best(self, statistics: Statistics, units: list[list[str]], k: int, carried: list[int]):
        """The shard's k best with the collection's statistics: positions, scores, paper ids."""
        top, scores = self.index.scoring(statistics).best(units, k, carried)
        return top, scores, np.asarray(self.papers.ids[top])

    def holding_all(self, terms: list[str]) -> np.ndarray:
        return np.array(sorted(self.index.holding_all(terms)), dtype=np.int64)

    def knows_beginning(self, prefix: str) -> bool:
        return self.index.knows_beginning(prefix)

    def papers_at(self, positions: list[int]) -> list[Paper]:
        """The papers, without derived titles (those need the names of the whole collection)."""
        return [self.papers.untitled_paper_at(position) for position in positions]

    def names(self) -> Counter:
        return self.papers.name_frequency()

    def rare_terms(self, at_most: int | None) -> dict[str, int]:
        """The terms held by at most `at_most` live documents here with their counts; None: a few
        of the rarest."""
        frequency, vocabulary = self.index.frequency, list(self.index.vocabulary)
        held = np.flatnonzero(frequency > 0)
        if not len(held):
            return {}
        if at_most is None:
            at_most = int(frequency[held].min())
            chosen = held[frequency[held] == at_most][:RARE_SAMPLE]
        else:
            chosen = held[frequency[held] <= at_most]
        return {vocabulary[term]: int(frequency[term]) for term in chosen.tolist()}

    def memory(self) -> dict:
        return process_memory()


def process_memory() -> dict:
    """This process's resident memory now and at its peak, in MiB (Linux's /proc; 0 elsewhere)."""
    fields = {}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                fields[name] = int(value.split()[0]) / 1024
    except OSError:
        pass
    return {"rss_mib": fields.get("VmRSS", 0.0), "peak_mib": fields.get("VmHWM", 0.0)}


@dataclass
class ShardedPapers:
    """The papers of every shard at global positions: a shard's positions follow the previous
    shard's (`PaperSource`). Papers are fetched from their shard and titled here."""

    shards: "ShardSet"
    described: list[dict]
    ids: np.ndarray = field(init=False)
    live: np.ndarray = field(init=False)
    languages: np.ndarray = field(init=False)

    def __post_init__(self):
        self.ids = np.concatenate([d["ids"] for d in self.described]).astype(np.uint64, copy=False)
        self.live = np.concatenate([d["live"] for d in self.described]).astype(bool, copy=False)
        self.languages = np.concatenate([d["languages"] for d in self.described]).astype(np.uint8, copy=False)
        self.paper_at = lru_cache(maxsize=PAPER_CACHE)(self._paper_at)

    def _paper_at(self, position: int) -> Paper:
        number, local = self.shards.locate(position)
        paper = self.shards.ask_one(number, "papers_at", [local])[0]
        return titled(paper, self.shards.names)

    def positions_in(self, file: str) -> list[int]:
        return sorted(int(start) + int(local) for start, d in zip(self.shards.starts, self.described)
                      for local in d["files"].get(file, ()))


class ShardSet:
    """The shards of a collection, each a `ShardHolder` in this process or a Ray actor holding one.
    It answers what the retriever asks of an index (`best`, `knows`, `knows_beginning`, `weight`,
    `max_weight`, `holding_all`) for the whole collection."""

    def __init__(self, holders: list, settings: Settings, remote: bool, names: list[str] = ()):
        self.holders, self.settings, self.remote = holders, settings, remote
        self.actor_names = list(names) or [f"in-process shard {n}" for n in range(len(holders))]
        self.count = len(holders)
        self.missing_shards: tuple[str, ...] = ()  # those that did not answer the last question
        self._down: dict[str, str] = {}  # why each shard that did not answer did not
        self._names: Counter | None = None
        self._max_weight: float | None = None
        self.described = [self.ask_one(number, "describe") for number in range(self.count)]  # every shard, partial or not
        sizes = [len(d["ids"]) for d in self.described]
        self.starts = np.cumsum([0, *sizes[:-1]]).astype(np.int64)
        self._frequency: dict[str, int] = {}
        self._documents: int | None = None

    # Asking the shards

    def ask(self, method: str, *args, each=None) -> list:
        """Every shard's answer (`each(number)` gives a shard's own arguments instead of `args`);
        a shard that does not answer is ShardDown, or with allow_partial None and named in
        `missing_shards`."""
        calls = [(number, each(number) if each else args) for number in range(self.count)]
        if self.remote:
            futures = [getattr(self.holders[number], method).remote(*call) for number, call in calls]
            answers = [self._remote_answer(number, future) for number, future in enumerate(futures)]
        else:
            answers = [getattr(self.holders[number], method)(*call) for number, call in calls]
        missing = tuple(str(Shard(number, self.count)) for number, answer in enumerate(answers) if answer is _DOWN)
        if missing and (not self.settings.allow_partial or len(missing) == self.count):
            raise self._down_error(missing[0], ", or pass --allow-partial to answer from the other shards")
        self.missing_shards = missing
        return [None if answer is _DOWN else answer for answer in answers]

    def _down_error(self, name: str, hint: str = "") -> ShardDown:
        return ShardDown(f"{name} is down ({self._down[name]}): restart qa-bot to start its actor again{hint}")

    def ask_one(self, number: int, method: str, *args):
        """One shard's answer; a shard that does not answer is ShardDown whatever allow_partial says
        (a paper asked for must be shown)."""
        if not self.remote:
            return getattr(self.holders[number], method)(*args)
        answer = self._remote_answer(number, getattr(self.holders[number], method).remote(*args))
        if answer is _DOWN:
            raise self._down_error(str(Shard(number, self.count)))
        return answer

    def _remote_answer(self, number: int, future):
        import ray
        from ray.exceptions import RayActorError, RayTaskError

        try:
            return ray.get(future)
        except RayTaskError as exc:
            raise task_error(exc, Shard(number, self.count)) from None
        except RayActorError as exc:
            self._down[str(Shard(number, self.count))] = f"Ray actor {self.actor_names[number]}: {type(exc).__name__}"
            return _DOWN

    def locate(self, position: int) -> tuple[int, int]:
        number = int(np.searchsorted(self.starts, position, side="right")) - 1
        return number, position - int(self.starts[number])

    # What the retriever asks of an index

    def statistics(self, terms: list[str]) -> Statistics:
        """The statistics of the terms over the whole collection (of the shards that answer)."""
        shares = [share for share in self.ask("statistics", list(dict.fromkeys(terms))) if share is not None]
        total = sum(shares[1:], shares[0])
        if not self.missing_shards:
            self._frequency.update(total.frequency)
            self._documents = total.documents
        return total

    def best(self, units: list[list[str]], k: int, carried=()) -> tuple[np.ndarray, np.ndarray]:
        """The k best papers of the whole collection at global positions, and their scores: each
        shard's k best scored with the collection's statistics, merged (ties by paper id)."""
        statistics = self.statistics([term for unit in units for term in unit])
        local = [[] for _ in range(self.count)]
        for position in carried:
            number, offset = self.locate(int(position))
            local[number].append(offset)
        found = [answer for answer in zip(range(self.count), self.ask(
            "best", each=lambda number: (statistics, units, k, np.array(local[number], dtype=np.int64))))
            if answer[1] is not None]
        positions = np.concatenate([top + self.starts[number] for number, (top, _, _) in found])
        scores = np.concatenate([scores for _, (_, scores, _) in found])
        ids = np.concatenate([ids for _, (_, _, ids) in found]).astype(np.uint64, copy=False)
        order = np.lexsort((ids, -scores))[:k]
        return positions[order], scores[order]

    def _term(self, term: str) -> tuple[int, int]:
        """The term's document frequency and the collection's documents (kept while every shard answers)."""
        if term in self._frequency and self._documents is not None:
            return self._frequency[term], self._documents
        statistics = self.statistics([term])
        return statistics.frequency[term], statistics.documents

    def knows(self, term: str) -> bool:
        return self._term(term)[0] > 0

    def knows_beginning(self, prefix: str) -> bool:
        return any(self.ask("knows_beginning", prefix))

    def weight(self, term: str) -> float:
        """The term's IDF in the whole collection, as one index gives it; 0 for a term none holds."""
        frequency, documents = self._term(term)
        return self.idf_of(frequency, documents) if frequency else 0.0

    def idf_of(self, frequency: int, documents: int) -> float:
        return float(rank_bm25_idf(np.array([frequency], dtype=np.int64), documents, self.settings)[0])

    @property
    def max_weight(self) -> float:
        """The IDF of the collection's rarest term. The rarest of each shard give an upper bound on
        the least document frequency; the terms no shard holds more often than that bound are then
        all the candidates, and their totals are exact."""
        if self._max_weight is None:
            offered = [terms for terms in self.ask("rare_terms", None) if terms]
            if not offered:
                return 1.0
            candidates = {term for terms in offered for term in terms}
            statistics = self.statistics(sorted(candidates))
            bound = min(statistics.frequency.values())
            if bound > min(min(terms.values()) for terms in offered):
                # every term held by at most `bound` documents is held so rarely in each shard
                candidates = {term for terms in self.ask("rare_terms", bound) if terms for term in terms}
                statistics = self.statistics(sorted(candidates))
                bound = min(statistics.frequency.values())
            self._max_weight = self.idf_of(bound, statistics.documents)
        return self._max_weight

    def holding_all(self, terms: list[str]) -> frozenset[int]:
        found = self.ask("holding_all", terms)
        return frozenset(int(start) + local for start, held in zip(self.starts, found) if held is not None
                         for local in held.tolist())

    def names(self) -> Counter:
        """How many papers of the whole collection use each name (for derived titles)."""
        if self._names is None:
            total = Counter()
            for names in self.ask("names"):
                total.update(names or {})
            self._names = total
        return self._names

    def corpus(self) -> Corpus:
        first = self.described[0]
        records = sum(d["records"] for d in self.described)
        check_records(Path(self.settings.corpus), records, [], False)
        files = {file for d in self.described for file, positions in d["files"].items() if len(positions)}
        return Corpus(Path(self.settings.corpus), ShardedPapers(self, self.described), first["issues"],
                      first["content_hash"], records, len(files), first["stamp"])

    def opened(self) -> tuple[bool, tuple[int, int]]:
        """Whether every shard came from its cache, and the papers its update added and removed."""
        return (all(d["from_cache"] for d in self.described),
                (sum(d["added"] for d in self.described), sum(d["removed"] for d in self.described)))


_DOWN = object()


def require_shardable(settings: Settings) -> None:
    if settings.bm25_variant == "okapi":
        raise BadInputError("bm25_variant okapi cannot be sharded: its IDF floor needs the mean IDF of the "
                            "whole vocabulary; use plus (the default) or l")


def open_shards(settings: Settings) -> ShardSet:
    """The built shards of the corpus folder (`settings.shards` of them), held in this process or,
    with `settings.ray_address`, by one Ray actor each."""
    require_shardable(settings)
    values = shard_settings(settings)
    if not settings.ray_address:
        missing = [Shard(n, settings.shards) for n in range(settings.shards)
                   if not collection_folder(settings, Shard(n, settings.shards)).is_dir()]
        if missing:
            raise BadInputError(f"{missing[0]} is missing ({collection_folder(settings, missing[0])}): build the "
                                f"shards with qa-bot index --shards {settings.shards}")
        return ShardSet([ShardHolder(values, n, settings.shards) for n in range(settings.shards)], settings, False)
    ray = connect(settings.ray_address)
    actor = ray.remote(num_cpus=0)(ShardHolder)
    names = [f"{ACTOR_PREFIX}-{n + 1}-of-{settings.shards}-{os.getpid()}-{id(values):x}" for n in range(settings.shards)]
    holders = [actor.options(name=name).remote(values, n, settings.shards) for n, name in enumerate(names)]
    return ShardSet(holders, settings, True, names)


def shard_settings(settings: Settings) -> dict:
    """The settings a shard is opened with, sent to its actor or task: not the keys, which it does not use."""
    return settings.model_dump(exclude={"llm_api_key", "api_token"})


def build_shards(settings: Settings) -> list[dict]:
    """Build or update every shard (a Ray task each with a Ray address; else one after the other
    here): each shard's summary."""
    require_shardable(settings)
    values = shard_settings(settings)
    if not settings.ray_address:
        return [built_summary(ShardHolder(values, n, settings.shards, build=True)) for n in range(settings.shards)]
    ray = connect(settings.ray_address)
    task = ray.remote(num_cpus=1)(_build_task)
    futures = [task.remote(values, n, settings.shards) for n in range(settings.shards)]
    summaries = []
    for number, future in enumerate(futures):
        try:
            summaries.append(ray.get(future))
        except ray.exceptions.RayTaskError as exc:
            raise task_error(exc, Shard(number, settings.shards)) from None
    return summaries


def task_error(exc: Exception, shard: Shard) -> QaBotError:
    """What a shard's Ray task or actor method raised: qa-bot's own error as it was, any other named
    with the shard."""
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, QaBotError) else QaBotError(f"{shard}: {type(cause or exc).__name__}: {cause or exc}")


def _build_task(values: dict, number: int, count: int) -> dict:
    return built_summary(ShardHolder(values, number, count, build=True, parallel=False))


def built_summary(holder: ShardHolder) -> dict:
    """What building a shard did: its papers and records, what changed, where, how long it took."""
    summary = holder.describe()
    return {key: summary[key] for key in ("records", "from_cache", "added", "removed", "folder", "seconds", "files")} \
        | {"papers": int(np.asarray(summary["live"]).sum())}


def cluster_messages_to_stderr() -> None:
    """Ray prints what the cluster pushes to the driver ("(raylet) WARNING: 8 PYTHON worker processes
    have been started ...", on a busy machine) on stdout, from a thread of its own, whatever
    log_to_driver says: in the middle of `ask --json`'s output. Ray has no setting for it, so its
    printer is wrapped once to send them to stderr (ray is locked at 2.60, where it is
    `ray._private.worker.print_to_stdstream`)."""
    from ray._private import worker

    printer = worker.print_to_stdstream
    if getattr(printer, "to_stderr", False):
        return

    def to_stderr(data, ignore_prefix: bool):
        printer({**data, "is_err": True}, ignore_prefix)

    to_stderr.to_stderr = True
    worker.print_to_stdstream = to_stderr


def connect(address: str):
    """Ray, connected to the cluster at `address` (host:port of its head), or to a cluster started
    here for this process with "local". An address nothing listens at is one line, not Ray's minute
    of retries."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # nothing leaves the machine
    # `ray start` clusters ask for a token since Ray 2.59, and a driver sends it only in this mode.
    os.environ.setdefault("RAY_AUTH_MODE", "token")
    import ray

    cluster_messages_to_stderr()
    if ray.is_initialized():
        return ray
    options = {"logging_level": logging.WARNING, "log_to_driver": False, "configure_logging": True}
    if address == "local":
        # Ray gives a node the address other machines reach it at; a local cluster stays on loopback.
        ray.init(include_dashboard=False, _node_ip_address="127.0.0.1", **options)
        return ray
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise BadInputError(f"bad Ray address {address!r}: give host:port of the cluster's head (ray start --head "
                            "prints it), or local")
    try:
        socket.create_connection((host, int(port)), timeout=3).close()
    except OSError as exc:
        raise QaBotError(f"cannot reach the Ray cluster at {address}: {exc.strerror or exc} (start one with "
                         "ray start --head, or pass the address it printed)") from None
    try:
        ray.init(address=address, **options)
    except ConnectionError as exc:
        raise QaBotError(f"cannot connect to the Ray cluster at {address}: {exc} (a cluster with token "
                         "authentication, Ray's default, needs its token here: RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token; "
                         "RAY_AUTH_MODE=disabled for one started without)") from None
    return ray
