"""Load a folder of abstracts into deduplicated papers with stable ids and every location.

Formats (see shared/CONTRACT.md and `qa_bot.collection.readers`, one reader each): seed `.txt` files, `.jsonl`,
BibTeX `.bib`, `.ris`, CSL-JSON `.json`, `.csv` and `.tsv`, each also gzip-compressed (`corpus.jsonl.gz`:
large exports are often shipped so). Files are found recursively and read in
path order; the records of every format become papers here, with the metadata their records have
(title, authors, year, venue, DOI, URL) and a derived title (`qa_bot.collection.titles`) when none has a title.

A file that is not UTF-8 is skipped whole, because decoding only its valid lines would load a
misleading part of it; a malformed record is skipped alone (a line the JSON parser cannot take, a
broken BibTeX or RIS entry, and, in every format, a record holding a control character:
`qa_bot.text.hygiene.corpus_control_character`); a file or subfolder that cannot be read is skipped.
Each is reported as a `CorpusIssue` naming file and line, or raised at once in strict mode; records
without an abstract are counted in one note per file, which strict mode lets pass. Not handled:
other encodings, and near-duplicate abstracts (only texts equal up to white space are merged).
"""

import gzip
import hashlib
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from qa_bot.errors import CorpusError
from qa_bot.text.hygiene import printable_name
from qa_bot.collection.readers import READERS, CorpusIssue, Location, Record
from qa_bot.collection.titles import derive_titles
from qa_bot.text.language import detect_language
from qa_bot.text.sentences import split_sentences, without_instructions

SUFFIXES = tuple(READERS)
COMPRESSED = ".gz"
KNOWN_FORMATS = ", ".join(SUFFIXES) + ", each also as .gz"


def places(locations: list[Location]) -> str:
    """"a.txt:3, b.txt:7": where a paper's abstract stands, as the user can look it up."""
    return ", ".join(f"{loc.file}:{loc.line}" for loc in locations)


@dataclass(slots=True)
class Paper:
    paper_id: str
    text: str
    lang: str
    title: str = ""
    locations: list[Location] = field(default_factory=list)
    url: str | None = None
    given_title: str | None = None
    authors: tuple[str, ...] = ()
    year: int | None = None
    venue: str | None = None
    doi: str | None = None

    @property
    def indexed_text(self) -> str:
        return indexed_text(self.text, self.given_title)


class PaperSource(Protocol):
    """The papers at each position, as a corpus in memory or a stored collection holds them."""

    ids: np.ndarray  # uint64 per position: the paper id as a number
    live: np.ndarray  # bool per position: False where an update changed or removed the paper
    languages: np.ndarray  # uint8 per position, an index into LANGUAGES

    def paper_at(self, position: int) -> Paper: ...

    def positions_in(self, file: str) -> list[int]:
        """The positions of the papers that have a record in the file."""


LANGUAGES = ("en", "zh")


class Corpus:
    """The papers of a folder, each at a position: the index's document number. A position whose
    paper an update changed or removed is dead and holds no paper (`qa_bot.search.indexing`)."""

    def __init__(self, folder: Path, source: PaperSource, issues: list[CorpusIssue], content_hash: str,
                 record_count: int, file_count: int, stamp: tuple = ()):
        self.folder = Path(folder)
        self.stamp = stamp  # (name, size, modification time) of each file read: to notice a change
        self.source = source
        self.issues = issues
        self.content_hash = content_hash
        self.record_count = record_count
        self.file_count = file_count
        self._live_positions = np.flatnonzero(source.live)
        self._by_id = self._live_positions[np.argsort(source.ids[self._live_positions], kind="stable")]
        self._sorted_ids = source.ids[self._by_id]

    @property
    def paper_count(self) -> int:
        return len(self._live_positions)

    @property
    def papers(self) -> list[Paper]:
        """Every paper, in position order (made on demand: for small collections and evaluations)."""
        return [self.source.paper_at(position) for position in self._live_positions.tolist()]

    def paper_at(self, position: int) -> Paper:
        return self.source.paper_at(position)

    def position(self, paper_id: str) -> int:
        """The position of the paper with this id (KeyError when the collection has none)."""
        key = paper_number(paper_id)
        found = int(np.searchsorted(self._sorted_ids, np.uint64(key)))
        if found < len(self._by_id) and self._sorted_ids[found] == key:
            return int(self._by_id[found])
        raise KeyError(paper_id)

    def paper(self, paper_id: str) -> Paper:
        return self.paper_at(self.position(paper_id))

    def has(self, paper_id: str) -> bool:
        """Whether the collection holds the paper (one cited before an update may be gone)."""
        try:
            self.position(paper_id)
        except KeyError:
            return False
        return True

    def paper_at_location(self, file: str, line: int) -> Paper | None:
        """The paper whose record stands at file:line, if any."""
        for position in self.source.positions_in(file):
            paper = self.paper_at(position)
            if any(location.file == file and location.line == line for location in paper.locations):
                return paper
        return None

    def language_counts(self) -> dict[str, int]:
        counts = np.bincount(self.source.languages[self._live_positions], minlength=len(LANGUAGES))
        return dict(zip(LANGUAGES, counts.tolist()))


class MemoryPapers:
    """The papers of a corpus read whole into memory."""

    def __init__(self, papers: list[Paper]):
        self.papers = papers
        self.ids = np.array([paper_number(paper.paper_id) for paper in papers], dtype=np.uint64)
        self.live = np.ones(len(papers), dtype=bool)
        self.languages = np.array([LANGUAGES.index(paper.lang) for paper in papers], dtype=np.uint8)

    def paper_at(self, position: int) -> Paper:
        return self.papers[position]

    def positions_in(self, file: str) -> list[int]:
        return [position for position, paper in enumerate(self.papers)
                if any(location.file == file for location in paper.locations)]


def paper_number(paper_id: str) -> int:
    """The id as the unsigned 64-bit number the stored collections keep."""
    return int(paper_id, 16)


def indexed_text(text: str, given_title: str | None) -> str:
    """What the index holds: a given title with the abstract, as BEIR indexes title + text (on
    NFCorpus nDCG@10 0.318 -> 0.324; README, Retrieval). A derived title adds nothing new."""
    return f"{given_title}\n{text}" if given_title else text


def given_title(records: list[Record]) -> str | None:
    """A paper's title: that of its first record (in path order) that has one."""
    return next((record.title for record in records if record.title), None)


def normalize_text(text: str) -> str:
    return " ".join(text.split())


def paper_id_for(text: str) -> str:
    """Stable id: a hash of the abstract with white space normalised."""
    return hashlib.sha256(normalize_text(text).encode("utf-8")).hexdigest()[:16]


def load_corpus(folder: Path, strict: bool = False) -> Corpus:
    """All papers of the folder, read into memory (a large collection is opened through
    `qa_bot.search.indexing`, which reads only the files that changed)."""
    folder = Path(folder)
    files, issues = corpus_files(folder)
    digest = hashlib.sha256()
    records: list[Record] = []
    for name, _, raw in each_readable(folder, files, issues, Path.read_bytes):
        digest.update(f"{name}\0{hashlib.sha256(raw).hexdigest()}\0".encode("utf-8", "surrogatepass"))
        file_records, file_issues = parse_file(name, raw)
        records.extend(file_records)
        issues.extend(file_issues)
    check_records(folder, len(records), issues, strict)
    papers = merge_records(records)
    for paper, title in zip(papers, derive_titles([p.text for p in papers], [title_source(p.text) for p in papers])):
        paper.title = paper.given_title or title
    file_count = len({record.location.file for record in records})
    return Corpus(folder, MemoryPapers(papers), issues, digest.hexdigest(), len(records), file_count)


def file_name(folder: Path, path: Path) -> str:
    """A corpus file's name as locations give it: its path in the folder, fit for output."""
    return printable_name(path.relative_to(folder).as_posix())


def unreadable(name: str, exc: OSError) -> CorpusIssue:
    return CorpusIssue(name, None, f"cannot be read ({exc.strerror}); skipped")


def each_readable(folder: Path, paths: list[Path], issues: list[CorpusIssue], access):
    """(name, path, access(path)) for each file that `access` can read; the others are issues."""
    for path in paths:
        name = file_name(folder, path)
        try:
            found = access(path)
        except OSError as exc:
            issues.append(unreadable(name, exc))
            continue
        yield name, path, found


def check_records(folder: Path, record_count: int, issues: list[CorpusIssue], strict: bool) -> None:
    """Strict mode fails on the first malformed record; no abstract at all is always an error."""
    malformed = [issue for issue in issues if issue.malformed]
    if strict and malformed:
        raise CorpusError(f"{malformed[0]} (strict mode; fix the line or drop --strict)")
    if not record_count:
        raise CorpusError(f"no abstracts found in {folder}: it needs corpus files ({KNOWN_FORMATS}) whose records have abstracts")


def title_source(text: str) -> str:
    """The abstract without markup, markers or instructions to the assistant: a title is shown
    with every answer, so it must not carry them."""
    return " ".join(without_instructions(split_sentences(text))) or text


def corpus_files(folder: Path) -> tuple[list[Path], list[CorpusIssue]]:
    """The corpus files under `folder`, in path order, and the subfolders that could not be read."""
    if folder.exists() and not folder.is_dir():
        raise CorpusError(f"the corpus must be a folder, and {folder} is a file (pass --corpus DIR)")
    if not folder.is_dir():
        raise CorpusError(f"corpus folder not found: {folder} (pass --corpus DIR or set QA_BOT_CORPUS)")
    issues: list[CorpusIssue] = []

    def unreadable(exc: OSError) -> None:
        where = Path(exc.filename).relative_to(folder).as_posix() if exc.filename else folder.name
        issues.append(CorpusIssue(printable_name(where or "."), None, f"folder cannot be read ({exc.strerror}); skipped"))

    files = sorted(
        Path(root) / name
        for root, _, names in os.walk(folder, onerror=unreadable)
        for name in names
        if format_suffix(name) in SUFFIXES and (Path(root) / name).is_file()
    )
    if not files:
        raise CorpusError(f"no corpus files ({KNOWN_FORMATS}) in {folder}")
    return files, issues


def format_suffix(name: str) -> str:
    """The suffix that names a file's format: "corpus.jsonl.gz" is JSONL, compressed."""
    lowered = name.lower()
    return Path(lowered.removesuffix(COMPRESSED) if lowered.endswith(COMPRESSED) else lowered).suffix


def parse_file(name: str, raw: bytes) -> tuple[list[Record], list[CorpusIssue]]:
    """The file's records by the reader of its suffix (`qa_bot.collection.readers`), once it decodes as UTF-8
    (after decompressing a .gz)."""
    if name.lower().endswith(COMPRESSED):
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error):
            return [], [CorpusIssue(name, None, "not a valid gzip file; the whole file was skipped")]
    text = raw.removeprefix(b"\xef\xbb\xbf")
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = text.count(b"\n", 0, exc.start) + 1
        return [], [CorpusIssue(name, line, "not valid UTF-8; the whole file was skipped")]
    reading = READERS[format_suffix(name)](name, decoded.replace("\r\n", "\n"))
    return reading.records, reading.issues


def merge_records(records: list[Record]) -> list[Paper]:
    """One paper per distinct abstract, in order of first appearance, with all its locations."""
    papers: dict[str, Paper] = {}
    for record in records:
        paper_id = paper_id_for(record.text)
        paper = papers.get(paper_id)
        if paper is None:
            paper = Paper(paper_id, record.text, detect_language(record.text))
            papers[paper_id] = paper
        add_record(paper, record)
    return list(papers.values())


def add_record(paper: Paper, record: Record) -> None:
    """The record's location, and what it knows that the paper does not yet: the first record
    (in path order) that has a field gives it."""
    paper.locations.append(record.location)
    paper.given_title = paper.given_title or record.title
    paper.authors = paper.authors or record.authors
    paper.year = paper.year or record.year
    paper.venue = paper.venue or record.venue
    paper.doi = paper.doi or record.doi
    paper.url = paper.url or record.url
