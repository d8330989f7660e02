"""Load a folder of abstracts into deduplicated papers with stable ids and every location.

Formats (see shared/CONTRACT.md and `qa_bot.readers`, one reader each): seed `.txt` files, `.jsonl`,
BibTeX `.bib`, `.ris`, CSL-JSON `.json`, `.csv` and `.tsv`. Files are found recursively and read in
path order; the records of every format become papers here, with the metadata their records have
(title, authors, year, venue, DOI, URL) and a derived title (`qa_bot.titles`) when none has a title.

A file that is not UTF-8 is skipped whole, because decoding only its valid lines would load a
misleading part of it; a malformed record is skipped alone (a line the JSON parser cannot take, a
broken BibTeX or RIS entry, and, in every format, a record holding a control character:
`qa_bot.hygiene.corpus_control_character`); a file or subfolder that cannot be read is skipped.
Each is reported as a `CorpusIssue` naming file and line, or raised at once in strict mode; records
without an abstract are counted in one note per file, which strict mode lets pass. Not handled:
other encodings, and near-duplicate abstracts (only texts equal up to white space are merged).
"""

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from qa_bot.cache import FORMAT as CACHE_FORMAT
from qa_bot.cache import load_checked, save_checked
from qa_bot.errors import CorpusError
from qa_bot.hygiene import looks_like_instruction, printable_name
from qa_bot.readers import READERS, CorpusIssue, Location, Record
from qa_bot.titles import TITLES_VERSION, derive_titles

CJK_RUN = re.compile(r"[\u3400-\u9fff]+")
LATIN_RUN = re.compile(r"[A-Za-z]+")
SUFFIXES = tuple(READERS)
KNOWN_FORMATS = ", ".join(SUFFIXES)


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
        """What the index holds: a given title with the abstract, as BEIR indexes title + text (on
        NFCorpus nDCG@10 0.318 -> 0.324; README, Retrieval). A derived title adds nothing new."""
        return f"{self.given_title}\n{self.text}" if self.given_title else self.text


@dataclass(slots=True)
class Corpus:
    folder: Path
    papers: list[Paper]
    issues: list[CorpusIssue]
    content_hash: str
    record_count: int
    positions: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self):
        self.positions = {paper.paper_id: position for position, paper in enumerate(self.papers)}

    def position(self, paper_id: str) -> int:
        return self.positions[paper_id]

    def paper(self, paper_id: str) -> Paper:
        return self.papers[self.positions[paper_id]]


def normalize_text(text: str) -> str:
    return " ".join(text.split())


def paper_id_for(text: str) -> str:
    """Stable id: a hash of the abstract with white space normalised."""
    return hashlib.sha256(normalize_text(text).encode("utf-8")).hexdigest()[:16]


def detect_language(text: str) -> str:
    """`zh` when Chinese characters make up a fifth of the letters, else `en`."""
    if text.isascii():
        return "en"
    # Runs, not characters: ten times fewer matches to build on a long abstract.
    cjk = sum(map(len, CJK_RUN.findall(text)))
    latin = sum(map(len, LATIN_RUN.findall(text)))
    return "zh" if cjk and cjk >= 0.2 * (cjk + latin) else "en"


def load_corpus(folder: Path, strict: bool = False, cache_dir: Path | None = None) -> Corpus:
    """All papers of the folder. With `cache_dir`, derived titles are kept there by content hash,
    since deriving them costs more than parsing (about 4 s for 100,000 abstracts)."""
    folder = Path(folder)
    files, issues = corpus_files(folder)
    digest = hashlib.sha256()
    records: list[Record] = []
    for path in files:
        name = printable_name(path.relative_to(folder).as_posix())
        try:
            raw = path.read_bytes()
        except OSError as exc:
            issues.append(CorpusIssue(name, None, f"cannot be read ({exc.strerror}); skipped"))
            continue
        digest.update(f"{name}\0{len(raw)}\0".encode("utf-8", "surrogatepass"))
        digest.update(raw)
        file_records, file_issues = parse_file(name, raw)
        records.extend(file_records)
        issues.extend(file_issues)
    malformed = [issue for issue in issues if issue.malformed]
    if strict and malformed:
        raise CorpusError(f"{malformed[0]} (strict mode; fix the line or drop --strict)")
    if not records:
        raise CorpusError(f"no abstracts found in {folder}: it needs corpus files ({KNOWN_FORMATS}) whose records have abstracts")
    papers = merge_records(records)
    content_hash = digest.hexdigest()
    for paper, title in zip(papers, titles_for(papers, content_hash, cache_dir)):
        paper.title = paper.given_title or title
    return Corpus(folder, papers, issues, content_hash, len(records))


def titles_for(papers: list[Paper], content_hash: str, cache_dir: Path | None) -> list[str]:
    """Derived titles, from the cache when its file passes its checks (built from these papers,
    content unchanged, a list of strings, one per paper)."""
    path = Path(cache_dir) / f"titles-v{CACHE_FORMAT}-{content_hash[:24]}.json" if cache_dir else None
    ids = [paper.paper_id for paper in papers]
    built_from = hashlib.sha256("\0".join([TITLES_VERSION, *ids]).encode()).hexdigest()
    if path is not None:
        saved = load_checked(path, built_from, lambda titles: _titles_fit(titles, len(ids)))
        if saved is not None:
            return saved
    titles = derive_titles([title_source(paper.text) for paper in papers])
    if path is not None:
        save_checked(path, built_from, titles)
    return titles


def title_source(text: str) -> str:
    """The abstract without markup, markers or instructions to the assistant: a title is shown
    with every answer, so it must not carry them."""
    from qa_bot.evidence import split_sentences  # here: evidence uses this module

    return " ".join(sentence for sentence in split_sentences(text) if not looks_like_instruction(sentence)) or text


def _titles_fit(titles, count: int) -> bool:
    return isinstance(titles, list) and len(titles) == count and all(isinstance(title, str) for title in titles)


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
        if Path(name).suffix.lower() in SUFFIXES and (Path(root) / name).is_file()
    )
    if not files:
        raise CorpusError(f"no corpus files ({KNOWN_FORMATS}) in {folder}")
    return files, issues


def parse_file(name: str, raw: bytes) -> tuple[list[Record], list[CorpusIssue]]:
    """The file's records by the reader of its suffix (`qa_bot.readers`), once it decodes as UTF-8."""
    text = raw.removeprefix(b"\xef\xbb\xbf")
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = text.count(b"\n", 0, exc.start) + 1
        return [], [CorpusIssue(name, line, "not valid UTF-8; the whole file was skipped")]
    reading = READERS[Path(name).suffix.lower()](name, decoded.replace("\r\n", "\n"))
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
        paper.locations.append(record.location)
        take_metadata(paper, record)
    return list(papers.values())


def take_metadata(paper: Paper, record: Record) -> None:
    """What the record knows and the paper does not yet: the first record that has a field gives it."""
    paper.given_title = paper.given_title or record.title
    paper.authors = paper.authors or record.authors
    paper.year = paper.year or record.year
    paper.venue = paper.venue or record.venue
    paper.doi = paper.doi or record.doi
    paper.url = paper.url or record.url
