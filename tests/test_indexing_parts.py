"""The stored collection's parts: what the manifest and the cache folder hold, what an opening
reports about the corpus, the progress line, the choice of worker processes, damaged or stale
leftovers. The oracle is the corpus read into memory (`load_corpus`), the files on disk, or
numbers worked out by hand."""

import errno
import hashlib
import json
import os
import tempfile
import time
import warnings
from io import StringIO
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from qa_bot.search import indexing
from qa_bot.search.bilingual import query_units
from qa_bot.search.cache import write_checked
from qa_bot.collection.corpus import load_corpus
from qa_bot.errors import CorpusError
from qa_bot.search.indexing import (MANIFEST, FileEntry, FileReading, Progress, ScannedFile, built_from, collection_folder,
                             folder_changed, open_collection)
from qa_bot.collection.readers import CorpusIssue
from qa_bot.settings import Settings
from qa_bot.search.store import file_check
from tests.conftest import write_corpus

A1 = "Graph clustering with contrastive views improves accuracy on five citation benchmarks."
A2 = "Backdoor attacks on dataset distillation hide a trigger inside the distilled images."
A3 = "Sparse attention for long documents cuts memory use by forty percent."
A4 = "我们提出一种新的数据集蒸馏方法，在六个基准上提高了准确率。"
A5 = "Federated learning with secure aggregation protects the updates of hospitals."
A6 = "Quantum annealing schedules help portfolio optimisation under budget limits."
OTHERS = [A2, A3, A4, A5, A6,
          "Bot detection on Twitter users relies on the timing of their posts.",
          "Image transformers learn from masked patches in self-supervised pretraining.",
          "Multi-GPU training of language models overlaps communication with compute."]


def settings_for(folder: Path, cache: Path, **more) -> Settings:
    return Settings(corpus=folder, cache_dir=cache, **more)


def described(corpus):
    """What a user can learn of a corpus: every paper with its metadata, the issues, the counts
    and the content hash (sorted by id: positions differ between a collection and memory)."""
    papers = sorted((p.paper_id, p.text, p.lang, p.title, tuple(p.locations), p.authors, p.year, p.venue, p.doi, p.url)
                    for p in corpus.papers)
    return papers, list(corpus.issues), corpus.content_hash, corpus.record_count, corpus.file_count


def located(corpus):
    """Each record's location, and the paper the corpus finds standing there."""
    return sorted((location.file, location.line, corpus.paper_at_location(location.file, location.line).paper_id)
                  for paper in corpus.papers for location in paper.locations)


def scores_by_paper(collection, words):
    """Each word's BM25 score in every live paper, by paper id (positions differ between builds)."""
    corpus, index = collection.corpus, collection.index
    found = {}
    for word in words:
        scores = index.unit_scores(query_units(word))
        found[word] = {corpus.paper_at(int(p)).paper_id: round(float(scores[p]), 9) for p in np.flatnonzero(index.live)}
    return found


def manifest_of(settings: Settings) -> dict:
    return json.loads((collection_folder(settings) / MANIFEST).read_text("utf-8"))["payload"]


def rewrite_manifest(settings: Settings, payload: dict) -> None:
    write_checked(collection_folder(settings) / MANIFEST, built_from(), payload)


def aged(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then), follow_symlinks=False)


class Counting(Progress):
    """A progress that keeps, instead of showing, which files an opening reads."""

    def __init__(self):
        super().__init__(StringIO())
        self.read = []

    def start(self, files):
        super().start(files)
        self.read = [file.name for file in files]


# The corpus the collection reports -----------------------------------------------------------------

MIXED = {
    "a.txt": f"{A1}\n{A4}\n",
    "b.jsonl": json.dumps({"title": "Trigger hiding in distilled data", "abstract": A2, "authors": ["Ann Lee"],
                           "year": 2023}) + "\nnot json\n" + json.dumps({"title": "No abstract here"}) + "\n",
    "c.jsonl": json.dumps({"title": "Only a title"}) + "\n",  # no record: an issue, and not a file with records
    "d.txt": f"{A3}\n",  # exactly one record
}


def test_the_collection_reports_the_corpus_as_reading_it_into_memory_does(tmp_path):
    folder = write_corpus(tmp_path / "c", MIXED)
    settings = settings_for(folder, tmp_path / "cache")
    first = open_collection(settings)
    assert first.from_cache is False and (first.added, first.removed) == (4, 0)
    assert described(first.corpus) == described(load_corpus(folder))
    assert located(first.corpus) == located(load_corpus(folder))
    again = open_collection(settings)
    assert again.from_cache is True and described(again.corpus) == described(load_corpus(folder))
    (folder / "d.txt").write_text(f"{A3}\n{A5}\n", "utf-8")
    updated = open_collection(settings)
    assert updated.from_cache is False and (updated.added, updated.removed) == (1, 0)
    assert described(updated.corpus) == described(load_corpus(folder))
    assert located(updated.corpus) == located(load_corpus(folder))


def test_an_unchanged_folder_is_opened_without_reading_a_file(tmp_path):
    folder = write_corpus(tmp_path / "c", MIXED)
    settings = settings_for(folder, tmp_path / "cache")
    first = Counting()
    open_collection(settings, first)
    assert first.read == ["a.txt", "b.jsonl", "c.jsonl", "d.txt"]
    second = Counting()
    assert open_collection(settings, second).from_cache and second.read == []
    (folder / "d.txt").write_text(f"{A3}\n{A5}\n", "utf-8")
    third = Counting()
    open_collection(settings, third)
    assert third.read == ["d.txt"]


def test_the_manifest_lists_each_file_as_it_is_on_disk(tmp_path):
    folder = write_corpus(tmp_path / "c", MIXED)
    settings = settings_for(folder, tmp_path / "cache")
    open_collection(settings)

    def on_disk(name, records, issues):
        path = folder / name
        return [name, path.stat().st_size, path.stat().st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest(),
                records, issues]

    malformed = [2, "not valid JSON (Expecting value); skipped", True]
    noted = [None, "1 record without an abstract skipped (the first at line 3)", False]
    assert manifest_of(settings)["files"] == [
        on_disk("a.txt", 2, []), on_disk("b.jsonl", 1, [malformed, noted]),
        on_disk("c.jsonl", 0, [[None, "1 record without an abstract skipped (the first at line 1)", False]]),
        on_disk("d.txt", 1, [])]
    later = time.time_ns() + 5_000_000_000
    os.utime(folder / "a.txt", ns=(later, later))  # touched: same content, a new time
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        touched = open_collection(settings)
        assert touched.from_cache is True
        assert manifest_of(settings)["files"][0] == on_disk("a.txt", 2, [])
        reading = Counting()
        assert open_collection(settings, reading).from_cache and reading.read == []  # the new time was noted
    assert described(touched.corpus) == described(load_corpus(folder))


def test_an_opened_corpus_knows_when_its_folder_changes(tmp_path):
    folder = write_corpus(tmp_path / "c", {"a.txt": f"{A1}\n", "b.txt": f"{A2}\n"})
    settings = settings_for(folder, tmp_path / "cache")
    built = open_collection(settings).corpus
    assert folder_changed(built) is False
    assert folder_changed(open_collection(settings).corpus) is False  # opened from the cache
    later = time.time_ns() + 5_000_000_000
    os.utime(folder / "a.txt", ns=(later, later))
    assert folder_changed(built) is True
    touched = open_collection(settings).corpus
    assert folder_changed(touched) is False  # the touched file's new time is the one it knows
    (folder / "c.txt").write_text(f"{A3}\n", "utf-8")
    assert folder_changed(touched) is True
    updated = open_collection(settings).corpus
    assert folder_changed(updated) is False
    for path in folder.iterdir():
        path.unlink()
    folder.rmdir()
    assert folder_changed(updated) is True  # gone: opening again says so


def test_the_first_build_and_an_opening_from_the_cache_say_so_as_booleans(tmp_path):
    folder = write_corpus(tmp_path / "c", {"a.txt": f"{A1}\n"})
    settings = settings_for(folder, tmp_path / "cache")
    assert open_collection(settings).from_cache is False  # `qa-bot index --json` prints it
    assert open_collection(settings).from_cache is True


def test_strict_mode_refuses_a_malformed_record_and_an_empty_corpus_names_its_folder(tmp_path):
    folder = write_corpus(tmp_path / "c", {"a.jsonl": json.dumps({"abstract": A1}) + "\nnot json\n"})
    with pytest.raises(CorpusError, match=r"a.jsonl:2: not valid JSON .*strict mode"):
        open_collection(settings_for(folder, tmp_path / "cache", strict=True))
    assert open_collection(settings_for(folder, tmp_path / "cache")).corpus.paper_count == 1
    empty = write_corpus(tmp_path / "empty", {"a.jsonl": json.dumps({"title": "Only a title"}) + "\n"})
    with pytest.raises(CorpusError, match=f"no abstracts found in {empty}"):
        open_collection(settings_for(empty, tmp_path / "cache"))


def test_each_corpus_folder_has_a_collection_of_its_own(tmp_path, monkeypatch):
    one = write_corpus(tmp_path / "one", {"a.txt": f"{A1}\n"})
    two = write_corpus(tmp_path / "two", {"a.txt": f"{A1}\n"})
    cache = tmp_path / "cache"
    first = collection_folder(settings_for(one, cache))
    assert first != collection_folder(settings_for(two, cache))
    monkeypatch.chdir(tmp_path)
    assert collection_folder(settings_for(Path("one"), cache)) == first  # the folder, however it is named
    assert first.parent == cache and first.name.startswith("collection-") and len(first.name) == len("collection-") + 24
    int(first.name.removeprefix("collection-"), 16)


def test_a_corpus_without_an_indexable_word_opens_is_updated_and_finds_nothing(tmp_path):
    folder = write_corpus(tmp_path / "c", {"a.txt": "!!! ...\n", "b.txt": "?? !!\n"})
    settings = settings_for(folder, tmp_path / "cache")
    collection = open_collection(settings)
    assert collection.corpus.paper_count == 2
    assert not collection.index.unit_scores(query_units("graph")).any()
    (folder / "b.txt").write_text("... ???\n", "utf-8")  # 1 of 3 positions dead: gathered, with no postings
    updated = open_collection(settings)
    assert segment_count(settings) == 1 and described(updated.corpus) == described(load_corpus(folder))


# Updates ---------------------------------------------------------------------------------------------------


def test_an_update_writing_stored_and_new_papers_interleaved_scores_as_a_rebuild(tmp_path):
    """The new segment holds, in path order, a stored paper, a new one, a stored one: their counts
    come from two sources and must be put back in that order."""
    folder = write_corpus(tmp_path / "c", {"b.txt": f"{A1}\n", "c.txt": f"{A2}\n", "d.txt": f"{A3}\n",
                                           "f.txt": f"{A6}\n"})
    settings = settings_for(folder, tmp_path / "cache")
    open_collection(settings)
    (folder / "c.txt").write_text(f"{A5}\n", "utf-8")
    (folder / "e.txt").write_text(f"{A1}\n{A3}\n", "utf-8")  # repeats the papers of b.txt and d.txt
    updated = open_collection(settings)
    fresh = open_collection(settings_for(folder, tmp_path / "fresh"))
    words = {word for text in (A1, A2, A3, A5, A6) for word in text.lower().rstrip(".").split()}
    assert scores_by_paper(updated, words) == scores_by_paper(fresh, words)
    assert described(updated.corpus) == described(load_corpus(folder))
    assert located(updated.corpus) == located(load_corpus(folder))
    assert (updated.added, updated.removed) == (1, 1)


def test_a_stored_abstract_repeated_first_in_path_order_takes_the_new_records_text(tmp_path):
    spaced = A1.replace(" ", "  ")  # the same paper (ids ignore white space), written otherwise
    folder = write_corpus(tmp_path / "c", {"b.txt": f"{A1}\n{A2}\n"})
    settings = settings_for(folder, tmp_path / "cache")
    open_collection(settings)
    (folder / "a.txt").write_text(f"{spaced}\n", "utf-8")
    updated = open_collection(settings)
    assert (updated.added, updated.removed) == (0, 0)
    [paper] = [p for p in updated.corpus.papers if len(p.locations) == 2]
    assert paper.text == spaced
    assert described(updated.corpus) == described(load_corpus(folder))


def test_a_new_file_repeating_every_stored_abstract_adds_locations_not_papers(tmp_path):
    folder = write_corpus(tmp_path / "c", {"a.txt": "\n".join(OTHERS[:4]) + "\n"})
    settings = settings_for(folder, tmp_path / "cache")
    open_collection(settings)
    (folder / "z.txt").write_text("\n".join(OTHERS[:4]) + "\n", "utf-8")
    updated = open_collection(settings)
    assert updated.corpus.paper_count == 4 and (updated.added, updated.removed) == (0, 0)
    assert all(len(paper.locations) == 2 for paper in updated.corpus.papers)
    assert described(updated.corpus) == described(load_corpus(folder))
    assert located(updated.corpus) == located(load_corpus(folder))


def single_paper_files(tmp_path: Path, count: int) -> Path:
    return write_corpus(tmp_path / "c", {f"{number}.txt": f"{OTHERS[number]}\n" for number in range(count)})


def segment_count(settings: Settings) -> int:
    return len(manifest_of(settings)["segments"])


def test_removing_a_file_writes_no_segment(tmp_path):
    folder = single_paper_files(tmp_path, 6)
    settings = settings_for(folder, tmp_path / "cache")
    open_collection(settings)
    (folder / "2.txt").unlink()
    updated = open_collection(settings)
    assert (updated.added, updated.removed) == (0, 1) and segment_count(settings) == 1
    assert described(updated.corpus) == described(load_corpus(folder))
    assert open_collection(settings).from_cache


def test_segments_are_gathered_once_there_are_more_than_max_segments(tmp_path, monkeypatch):
    monkeypatch.setattr("qa_bot.search.indexing.MAX_SEGMENTS", 3)
    folder = single_paper_files(tmp_path, 2)
    settings = settings_for(folder, tmp_path / "cache")
    open_collection(settings)
    counts = [segment_count(settings)]
    for number in range(2, 5):
        (folder / f"{number}.txt").write_text(f"{OTHERS[number]}\n", "utf-8")
        updated = open_collection(settings)
        counts.append(segment_count(settings))
    assert counts == [1, 2, 3, 1]  # a fourth segment is one too many
    assert described(updated.corpus) == described(load_corpus(folder))
    assert len(updated.index.segments) == 1 and updated.index.live.all()


def test_segments_are_gathered_once_more_than_a_quarter_of_the_positions_are_dead(tmp_path):
    folder = single_paper_files(tmp_path, 6)
    settings = settings_for(folder, tmp_path / "cache")
    open_collection(settings)
    (folder / "0.txt").write_text(f"{A1}\n", "utf-8")
    (folder / "1.txt").write_text(f"{OTHERS[6]}\n", "utf-8")
    updated = open_collection(settings)
    assert updated.index.size == 8 and int(updated.index.live.sum()) == 6  # 2 of 8 dead: a quarter, kept
    assert segment_count(settings) == 2
    (folder / "2.txt").write_text(f"{OTHERS[7]}\n", "utf-8")
    updated = open_collection(settings)  # 3 of 9 dead: gathered
    assert segment_count(settings) == 1 and updated.index.size == 6 and updated.index.live.all()
    assert described(updated.corpus) == described(load_corpus(folder))
    assert located(updated.corpus) == located(load_corpus(folder))


# The progress line -----------------------------------------------------------------------------------------


class Clock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


class Terminal(StringIO):
    def isatty(self) -> bool:
        return True


def clocked(monkeypatch, now: float) -> Clock:
    clock = Clock(now)
    monkeypatch.setattr(indexing, "time", SimpleNamespace(monotonic=clock, time=time.time))
    return clock


def files_of(count: int, size: int) -> list[ScannedFile]:
    return [ScannedFile(f"{n}.txt", Path(f"{n}.txt"), size, 0) for n in range(count)]


def reading(size: int, records: int) -> FileReading:
    return FileReading(FileEntry("x.txt", size, 0, "x", records))


def test_the_progress_log_is_silent_for_a_second_then_a_line_every_five_seconds_and_the_last(monkeypatch):
    clock = clocked(monkeypatch, 100.0)
    log = StringIO()
    progress = Progress(log)
    progress.start(files_of(4, 1000))
    for now in (100.5, 101.0, 106.0, 107.0):
        clock.now = now
        progress.advance(reading(1000, 250))
    progress.finish()
    assert log.getvalue() == (
        "qa-bot: reading files 2/4, 500 records, 500 records/s, 1s left\n"  # one second in: 500 records a second
        "qa-bot: reading files 3/4, 750 records, 125 records/s, 2s left\n"  # five seconds later
        "qa-bot: reading files 4/4, 1,000 records, 143 records/s, 0s left\n")  # the last file, as a line was shown


def test_the_progress_on_a_terminal_is_one_line_redrawn(monkeypatch):
    clock = clocked(monkeypatch, 50.0)
    screen = Terminal()
    progress = Progress(screen)
    progress.start(files_of(3, 1000))
    for now in (50.2, 52.0, 53.0):
        clock.now = now
        progress.advance(reading(1000, 10))
    progress.finish()
    assert screen.getvalue() == ("\rqa-bot: reading files 2/3, 20 records, 10 records/s, 1s left   "
                                 "\rqa-bot: reading files 3/3, 30 records, 10 records/s, 0s left   \n")


def test_a_reading_done_within_a_second_shows_no_progress(monkeypatch):
    clock = clocked(monkeypatch, 10.0)
    for stream in (StringIO(), Terminal()):
        progress = Progress(stream)
        progress.start(files_of(2, 1000))
        for now in (10.3, 10.9):
            clock.now = now
            progress.advance(reading(1000, 10))
        progress.finish()
        assert stream.getvalue() == ""


def test_the_progress_line_before_any_file_is_read():
    progress = Progress(StringIO())
    progress.start(files_of(3, 1000))
    assert progress.line(0.0) == "qa-bot: reading files 0/3, 0 records, 0 records/s, 0s left"


@pytest.mark.parametrize("seconds, shown", [(0.4, "0s"), (2.5, "3s"), (59.4, "59s"), (59.6, "1m 00s"), (125, "2m 05s"),
                                            (3599.5, "60m 00s")])
def test_the_time_left_is_rounded_to_the_second_and_given_in_minutes_past_one(seconds, shown):
    assert indexing._duration(seconds) == shown


def test_an_opening_shows_the_progress_of_the_files_it_reads(tmp_path, monkeypatch):
    monkeypatch.setattr(Progress, "QUIET_SECONDS", 0.0)
    folder = write_corpus(tmp_path / "c", {"a.txt": f"{A1}\n{A2}\n", "b.txt": f"{A3}\n"})
    settings = settings_for(folder, tmp_path / "cache")
    log = StringIO()
    open_collection(settings, Progress(log))
    lines = log.getvalue().splitlines()
    assert [line.split(", ")[:2] for line in lines] == [["qa-bot: reading files 1/2", "2 records"],
                                                       ["qa-bot: reading files 2/2", "3 records"]]
    later = time.time_ns() + 5_000_000_000
    os.utime(folder / "b.txt", ns=(later, later))
    log = StringIO()
    assert open_collection(settings, Progress(log)).from_cache
    # the touched file is read and hashed, not parsed: no record is counted
    shown = [line.split(", ")[:2] for line in log.getvalue().splitlines()]
    assert shown == [["qa-bot: reading files 1/1", "0 records"]]


# Worker processes ------------------------------------------------------------------------------------------


class SerialPool:
    """Stands for ProcessPoolExecutor: runs the tasks here, in order, and records that it was started."""

    started: list = []

    def __init__(self, max_workers=None):
        SerialPool.started.append(max_workers)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def map(self, function, tasks, chunksize=1):
        return [function(task) for task in tasks]


@pytest.fixture
def pool(monkeypatch):
    SerialPool.started = []
    monkeypatch.setattr(indexing, "ProcessPoolExecutor", SerialPool)
    monkeypatch.setattr(indexing, "PARALLEL_BYTES", 200)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    return SerialPool


def test_a_large_reading_of_several_files_uses_one_worker_per_core(tmp_path, monkeypatch, pool):
    monkeypatch.setattr(Progress, "QUIET_SECONDS", 0.0)
    folder = write_corpus(tmp_path / "c", {"a.txt": f"{A1}\n{A2}\n{A4}\n", "b.txt": f"{A3}\n{A5}\n"})  # > 200 bytes
    log = StringIO()
    collection = open_collection(settings_for(folder, tmp_path / "cache"), Progress(log))
    assert pool.started == [2]
    assert described(collection.corpus) == described(load_corpus(folder))
    assert located(collection.corpus) == located(load_corpus(folder))
    assert "reading files 2/2, 5 records" in log.getvalue()
    monkeypatch.setattr(indexing, "PARALLEL_BYTES", 1 << 30)
    serial = open_collection(settings_for(folder, tmp_path / "serial"))
    assert pool.started == [2]
    words = {word for text in (A1, A2, A3, A5) for word in text.lower().rstrip(".").split()}
    assert scores_by_paper(collection, words) == scores_by_paper(serial, words)


def test_worker_processes_read_as_this_process_does(tmp_path, monkeypatch):
    monkeypatch.setattr(indexing, "PARALLEL_BYTES", 200)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    folder = write_corpus(tmp_path / "c", {"a.txt": f"{A1}\n{A2}\n{A4}\n", "b.jsonl": MIXED["b.jsonl"],
                                           "c.txt": f"{A3}\n{A5}\n"})
    collection = open_collection(settings_for(folder, tmp_path / "cache"))  # real processes
    assert described(collection.corpus) == described(load_corpus(folder))
    assert located(collection.corpus) == located(load_corpus(folder))


@pytest.mark.parametrize("case", ["one large file", "two files of exactly the threshold", "one core", "cores unknown"])
def test_a_small_reading_or_a_single_core_needs_no_worker_processes(tmp_path, monkeypatch, pool, case):
    if case == "one large file":
        files = {"a.txt": f"{A1}\n{A2}\n{A3}\n"}
    else:
        files = {"a.txt": f"{A1}\n{A2}\n{A4}\n", "b.txt": f"{A3}\n{A5}\n"}
    folder = write_corpus(tmp_path / "c", files)
    total = sum(path.stat().st_size for path in folder.iterdir())
    assert total > 200
    if case == "two files of exactly the threshold":
        monkeypatch.setattr(indexing, "PARALLEL_BYTES", total)
    elif case == "one core":
        monkeypatch.setattr(os, "cpu_count", lambda: 1)
    elif case == "cores unknown":
        monkeypatch.setattr(os, "cpu_count", lambda: None)
    collection = open_collection(settings_for(folder, tmp_path / "cache"))
    assert pool.started == []
    assert described(collection.corpus) == described(load_corpus(folder))


# Unreadable files --------------------------------------------------------------------------------------------


def test_a_file_that_cannot_be_read_is_reported_and_read_once_it_can(tmp_path, monkeypatch):
    folder = write_corpus(tmp_path / "c", {"a.txt": f"{A1}\n", "b.txt": f"{A2}\n{A3}\n"})
    settings = settings_for(folder, tmp_path / "cache")
    read_bytes = Path.read_bytes

    def refused(path):
        if path.name == "b.txt":
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return read_bytes(path)

    monkeypatch.setattr(Path, "read_bytes", refused)
    first = open_collection(settings)
    issue = CorpusIssue("b.txt", None, "cannot be read (Permission denied); skipped")
    assert first.corpus.issues == [issue] and first.corpus.paper_count == 1
    assert described(first.corpus) == described(load_corpus(folder))  # read in memory under the same refusal
    stat = (folder / "b.txt").stat()
    assert manifest_of(settings)["files"][1] == ["b.txt", stat.st_size, stat.st_mtime_ns, "", 0,
                                                 [[None, issue.message, True]]]
    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    second = open_collection(settings)  # nothing changed on disk, but the file was never read
    assert second.from_cache is False and second.corpus.issues == [] and second.corpus.paper_count == 3
    assert described(second.corpus) == described(load_corpus(folder))


# Leftovers, failed writes, a cache that cannot be written ---------------------------------------------------


def test_folders_no_manifest_names_are_removed_once_stale_and_nothing_else(tmp_path, monkeypatch):
    folder = single_paper_files(tmp_path, 3)
    settings = settings_for(folder, tmp_path / "cache")
    open_collection(settings)
    home = collection_folder(settings)
    before = manifest_of(settings)
    for entry in home.iterdir():  # the named folders too: age alone does not remove them
        aged(entry, 3600)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("mine", "utf-8")
    for name in ("seg-old", "gen-old", ".building-old", "notes"):
        (home / name).mkdir()
        aged(home / name, 3600)
    (home / "seg-fresh").mkdir()  # another process may be about to name it
    (home / "seg-boundary").mkdir()
    (home / "seg-file").write_text("not a folder", "utf-8")
    aged(home / "seg-file", 3600)
    (home / "seg-link").symlink_to(outside)
    (home / "gen-dangling").symlink_to(tmp_path / "nowhere")
    for name in ("seg-link", "gen-dangling"):
        aged(home / name, 3600)
    now = float(int(time.time()))  # whole seconds: the age below is exact
    boundary = int(now - indexing.STALE_SECONDS) * 1_000_000_000
    os.utime(home / "seg-boundary", ns=(boundary, boundary))
    monkeypatch.setattr(indexing, "time", SimpleNamespace(time=lambda: now, monotonic=time.monotonic))
    (folder / "3.txt").write_text(f"{OTHERS[3]}\n", "utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        updated = open_collection(settings)
    after = manifest_of(settings)
    named = {segment["folder"] for segment in after["segments"]} | {after["generation"]["folder"]}
    assert before["segments"][0]["folder"] in named and before["generation"]["folder"] not in named
    assert sorted(entry.name for entry in home.iterdir()) == sorted(
        {MANIFEST, *named, "seg-fresh", "seg-boundary", "notes", "seg-file", "seg-link", "gen-dangling"})
    assert (outside / "keep.txt").read_text("utf-8") == "mine"  # a link is not followed
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = open_collection(settings)
    assert again.from_cache and described(again.corpus) == described(updated.corpus) == described(load_corpus(folder))


def test_each_folder_is_written_under_a_staging_name_in_the_collection_folder(tmp_path, monkeypatch):
    folder = single_paper_files(tmp_path, 2)
    settings = settings_for(folder, tmp_path / "cache")
    staged = []
    for name in ("write_segment", "write_generation"):
        real = getattr(indexing, name)

        def spy(staging, *args, real=real):
            staged.append(staging)
            return real(staging, *args)

        monkeypatch.setattr(indexing, name, spy)
    open_collection(settings)
    home = collection_folder(settings)
    assert len(staged) == 2 and all(path.parent == home and path.name.startswith(".building-") for path in staged)
    assert not any(path.exists() for path in staged)
    payload = manifest_of(settings)
    assert [segment["folder"][:4] for segment in payload["segments"]] == ["seg-"]
    assert payload["generation"]["folder"][:4] == "gen-"


def test_a_write_that_fails_leaves_no_staging_folder_and_the_collection_still_opens(tmp_path, monkeypatch):
    folder = single_paper_files(tmp_path, 2)
    settings = settings_for(folder, tmp_path / "cache")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    real = indexing.write_generation
    calls = []

    def full_disk(staging, state):
        calls.append(staging)
        real(staging, state)
        if len(calls) == 1:  # the cache's copy; the temporary one is written
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(staging, state)

    monkeypatch.setattr(indexing, "write_generation", full_disk)
    with pytest.warns(UserWarning, match=f"cannot write the cache at {tmp_path / 'cache'} "
                                         r"\(No space left on device\); continuing without it"):
        collection = open_collection(settings)
    assert described(collection.corpus) == described(load_corpus(folder))
    home = collection_folder(settings)
    assert not [entry.name for entry in home.iterdir() if entry.name.startswith(".building-")]
    assert list(scratch.iterdir()) == []  # the temporary collection is removed once opened


def test_a_cache_that_cannot_be_written_gives_a_collection_from_a_temporary_folder(tmp_path, monkeypatch):
    folder = write_corpus(tmp_path / "c", MIXED)
    cache = tmp_path / "cache"
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    real = indexing.write_checked

    def read_only_cache(path, *args):
        if path.is_relative_to(cache):
            raise OSError(errno.EROFS, "Read-only file system")
        return real(path, *args)

    monkeypatch.setattr(indexing, "write_checked", read_only_cache)
    with pytest.warns(UserWarning, match=f"cannot write the cache at {cache} "):
        collection = open_collection(settings_for(folder, cache))
    assert described(collection.corpus) == described(load_corpus(folder))
    assert located(collection.corpus) == located(load_corpus(folder))
    assert list(scratch.iterdir()) == []


def test_a_touched_file_whose_time_cannot_be_noted_still_opens_from_the_cache(tmp_path, monkeypatch):
    folder = write_corpus(tmp_path / "c", MIXED)
    settings = settings_for(folder, tmp_path / "cache")
    open_collection(settings)
    later = time.time_ns() + 5_000_000_000
    os.utime(folder / "a.txt", ns=(later, later))

    def read_only(*args):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(indexing, "write_checked", read_only)
    with pytest.warns(UserWarning, match=f"cannot write the cache at {tmp_path / 'cache'} "
                                         r"\(Read-only file system\); continuing without it"):
        touched = open_collection(settings)
    assert touched.from_cache and described(touched.corpus) == described(load_corpus(folder))
    assert folder_changed(touched.corpus) is False


# Damaged caches --------------------------------------------------------------------------------------------


def rebuilt_with_a_warning(settings: Settings, folder: Path) -> None:
    name = collection_folder(settings).name
    with pytest.warns(UserWarning, match=f"the cached {name} failed its check and is rebuilt"):
        collection = open_collection(settings)
    assert collection.from_cache is False and described(collection.corpus) == described(load_corpus(folder))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert open_collection(settings).from_cache


def replaced_array(settings: Settings, name: str, change) -> None:
    """The generation's array `name` changed, written with a valid check: a store whose files are
    sound but disagree with each other."""
    payload = manifest_of(settings)
    generation = collection_folder(settings) / payload["generation"]["folder"]
    np.save(generation / f"{name}.npy", change(np.load(generation / f"{name}.npy")))
    payload["generation"]["files"][f"{name}.npy"] = file_check(generation / f"{name}.npy")
    rewrite_manifest(settings, payload)


@pytest.mark.parametrize("damage", ["a record position short", "a record position past the end",
                                    "a frequency too many", "a live flag too many", "a segment's start moved",
                                    "no generation"])
def test_a_store_whose_parts_disagree_is_rebuilt_with_one_warning(tmp_path, damage):
    folder = write_corpus(tmp_path / "c", {"a.txt": f"{A1}\n{A2}\n", "b.txt": f"{A3}\n"})
    settings = settings_for(folder, tmp_path / "cache")
    open_collection(settings)
    if damage == "a record position short":
        replaced_array(settings, "record_positions", lambda positions: positions[:-1])
    elif damage == "a record position past the end":
        replaced_array(settings, "record_positions", lambda positions: np.array([*positions[:-1], 3]))
    elif damage == "a frequency too many":
        replaced_array(settings, "frequency", lambda frequency: np.pad(frequency, (0, 1)))
    elif damage == "a live flag too many":
        replaced_array(settings, "live", lambda live: np.pad(live, (0, 1)))
    elif damage == "a segment's start moved":
        payload = manifest_of(settings)
        payload["segments"][0]["start"] = 1
        rewrite_manifest(settings, payload)
    else:
        payload = manifest_of(settings)
        del payload["generation"]
        rewrite_manifest(settings, payload)
    rebuilt_with_a_warning(settings, folder)


def test_a_file_where_the_collection_folder_belongs_is_set_aside(tmp_path):
    folder = write_corpus(tmp_path / "c", {"a.txt": f"{A1}\n"})
    settings = settings_for(folder, tmp_path / "cache")
    home = collection_folder(settings)
    home.parent.mkdir(parents=True)
    home.write_text("not a collection", "utf-8")
    rebuilt_with_a_warning(settings, folder)
    assert home.is_dir() and (home / MANIFEST).is_file()


def test_a_file_removed_while_the_folder_is_scanned_is_reported(tmp_path, monkeypatch):
    folder = write_corpus(tmp_path / "c", {"a.txt": f"{A1}\n", "b.txt": f"{A2}\n"})
    stat = Path.stat
    seen = []

    def vanishing(path, **kwargs):
        if path.name == "b.txt":
            seen.append(path)
            if len(seen) > 1:  # listed as a file, then gone
                raise FileNotFoundError(errno.ENOENT, "No such file or directory", str(path))
        return stat(path, **kwargs)

    monkeypatch.setattr(Path, "stat", vanishing)
    collection = open_collection(settings_for(folder, tmp_path / "cache"))
    gone = CorpusIssue("b.txt", None, "cannot be read (No such file or directory); skipped")
    assert collection.corpus.issues == [gone]
    assert [paper.text for paper in collection.corpus.papers] == [A1]
