"""The stored form of a collection: papers and postings in segment folders, read through memory maps.

A segment folder holds, for its run of positions, each paper's text (one UTF-8 blob and its
offsets), its records (where it stands and what metadata each record has, one JSON array each),
its id, language and length in terms, and the postings of its terms (`qa_bot.search.index.Segment`) with
the terms it added to the vocabulary. Nothing in a segment changes once written; opening one maps
its arrays without reading them, so a collection of a million abstracts opens in a fraction of a
second and a paper is decoded only when it is shown.

Every file written here is listed in the collection's manifest with its size, modification time
and SHA-256 (`FileCheck`): a file whose size differs is damaged; one whose time differs is hashed
again (hashing a million abstracts' postings on every open would cost seconds).
"""

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from qa_bot.collection.corpus import LANGUAGES, Paper, add_record, title_source
from qa_bot.search.index import Segment
from qa_bot.collection.readers import Location, Record
from qa_bot.collection.titles import derive_title

SEGMENT_ARRAYS = ("text_offsets", "record_offsets", "ids", "languages", "lengths",
                  "postings_indptr", "postings_documents", "postings_frequencies")
SEGMENT_FILES = ("texts.bin", "records.bin", "terms.json", *(f"{name}.npy" for name in SEGMENT_ARRAYS))
PAPER_CACHE = 4096  # papers kept decoded: a conversation shows the same ones again


class DamagedStore(Exception):
    """A stored file failed its check (`path`: that file, or the folder whose files disagree)."""

    def __init__(self, path: Path):
        super().__init__(str(path))
        self.path = path


@dataclass
class SegmentPapers:
    """What a segment holds for each of its positions, to be written: texts and records encoded
    (`records_json`), so that gathering segments copies bytes without decoding them. They are made
    while written (a million abstracts' texts are a gigabyte), by a fresh iterator each time."""

    texts: Callable[[], Iterable[bytes]]
    records: Callable[[], Iterable[bytes]]
    ids: np.ndarray
    languages: np.ndarray
    lengths: np.ndarray


def file_check(path: Path) -> list:
    """[size, modification time, SHA-256] of a written file, as the manifest keeps it."""
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns, file_sha256(path)]


def verify(path: Path, check: list) -> None:
    """Raise DamagedStore unless the file is as it was written (hashed again only when touched)."""
    size, mtime_ns, checksum = check
    try:
        stat = path.stat()
    except OSError as exc:
        raise DamagedStore(path) from exc
    if stat.st_size != size or (stat.st_mtime_ns != mtime_ns and file_sha256(path) != checksum):
        raise DamagedStore(path)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_segment(folder: Path, papers: SegmentPapers, segment: Segment, new_terms: list[str]) -> dict:
    """Write a segment's files into `folder`; returns their checks for the manifest."""
    text_offsets = _write_blob(folder / "texts.bin", papers.texts())
    record_offsets = _write_blob(folder / "records.bin", papers.records())
    arrays = {"text_offsets": text_offsets, "record_offsets": record_offsets, "ids": papers.ids,
              "languages": papers.languages, "lengths": papers.lengths, "postings_indptr": segment.indptr,
              "postings_documents": segment.documents, "postings_frequencies": segment.frequencies}
    for name, array in arrays.items():
        np.save(folder / f"{name}.npy", array)
    (folder / "terms.json").write_text(json.dumps(new_terms, ensure_ascii=False), "utf-8")
    return {name: file_check(folder / name) for name in SEGMENT_FILES}


def _write_blob(path: Path, pieces) -> np.ndarray:
    offsets = [0]
    with open(path, "wb") as handle:
        for piece in pieces:
            handle.write(piece)
            offsets.append(offsets[-1] + len(piece))
    return np.array(offsets, dtype=np.int64)


def records_json(records: list[Record]) -> bytes:
    rows = [[r.location.file, r.location.line, r.location.key, r.title, list(r.authors), r.year, r.venue, r.doi, r.url]
            for r in records]
    return json.dumps(rows, ensure_ascii=False).encode("utf-8")


def _record_from_row(row: list) -> Record:
    file, line, key, title, authors, year, venue, doi, url = row
    return Record("", Location(file, line, key), title, tuple(authors), year, venue, doi, url)


class StoredSegment:
    """A written segment, mapped: its papers' texts and records are decoded on demand."""

    def __init__(self, folder: Path, start: int, checks: dict):
        for name, check in checks.items():
            verify(folder / name, check)
        try:
            arrays = {name: np.load(folder / f"{name}.npy", mmap_mode="r") for name in SEGMENT_ARRAYS}
            self.texts, self.records = _mapped(folder / "texts.bin"), _mapped(folder / "records.bin")
            self.new_terms = json.loads((folder / "terms.json").read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise DamagedStore(folder) from exc
        self.start = start
        self.text_offsets, self.record_offsets = arrays["text_offsets"], arrays["record_offsets"]
        self.ids, self.languages, self.lengths = arrays["ids"], arrays["languages"], arrays["lengths"]
        self.postings = Segment(start, arrays["postings_indptr"], arrays["postings_documents"],
                                arrays["postings_frequencies"])
        if not (len(self.ids) + 1 == len(self.text_offsets) == len(self.record_offsets)
                and len(self.ids) == len(self.languages) == len(self.lengths)):
            raise DamagedStore(folder)

    def __len__(self) -> int:
        return len(self.ids)

    def text(self, offset: int) -> str:
        return self.raw_text(offset).decode("utf-8")

    def raw_text(self, offset: int) -> bytes:
        return bytes(self.texts[self.text_offsets[offset] : self.text_offsets[offset + 1]])

    def records_at(self, offset: int) -> list[Record]:
        return [_record_from_row(row) for row in json.loads(self.raw_records(offset))]

    def raw_records(self, offset: int) -> bytes:
        return bytes(self.records[self.record_offsets[offset] : self.record_offsets[offset + 1]])


class StoredPapers:
    """The papers of a stored collection, by position, across its segments."""

    def __init__(self, segments: list[StoredSegment], live: np.ndarray, name_frequency, files=None):
        self.segments = segments
        self.files = files or {}  # file name -> the positions of its records
        self.starts = np.array([segment.start for segment in segments], dtype=np.int64)
        self.live = live
        self.ids = joined([segment.ids for segment in segments], np.uint64)
        self.languages = joined([segment.languages for segment in segments], np.uint8)
        self.name_frequency = name_frequency  # called when a title must be derived
        self.paper_at = lru_cache(maxsize=PAPER_CACHE)(self._paper_at)

    def positions_in(self, file: str) -> list[int]:
        return sorted(set(np.asarray(self.files.get(file, ())).tolist()))

    def locate(self, position: int) -> tuple[StoredSegment, int]:
        segment = self.segments[int(np.searchsorted(self.starts, position, side="right")) - 1]
        return segment, position - segment.start

    def text_at(self, position: int) -> str:
        segment, offset = self.locate(position)
        return segment.text(offset)

    def records_of(self, position: int) -> list[Record]:
        segment, offset = self.locate(position)
        return segment.records_at(offset)

    def _paper_at(self, position: int) -> Paper:
        return titled(self.untitled_paper_at(position), self.name_frequency)

    def untitled_paper_at(self, position: int) -> Paper:
        """The paper without a derived title (a shard's names are not the collection's)."""
        segment, offset = self.locate(position)
        paper = Paper(f"{int(self.ids[position]):016x}", segment.text(offset), LANGUAGES[int(self.languages[position])])
        for record in segment.records_at(offset):
            add_record(paper, record)
        return paper


def titled(paper: Paper, name_frequency: Callable[[], dict]) -> Paper:
    """The paper with its given title, or one derived from its abstract by how many papers use each name."""
    paper.title = paper.given_title or derive_title(title_source(paper.text), name_frequency())
    return paper


def joined(arrays: list[np.ndarray], dtype) -> np.ndarray:
    """The segments' arrays end to end (a first build starts from none)."""
    return np.concatenate(arrays).astype(dtype, copy=False) if arrays else np.zeros(0, dtype=dtype)


def _mapped(path: Path):
    """The file's bytes, mapped (an empty file cannot be mapped, and has none)."""
    return np.memmap(path, dtype=np.uint8, mode="r") if path.stat().st_size else b""
