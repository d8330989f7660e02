"""Load a folder of abstracts into deduplicated papers with stable ids and every location.

Formats (see shared/CONTRACT.md): seed `.txt` files, one abstract per non-empty line, with
`translated by ...` marker lines ignored; and `.jsonl` files, one object per line with at least
`abstract` (`id`, `title`, `url` optional). Files are found recursively and read in path order.

A file that is not UTF-8 is skipped whole, because decoding only its valid lines would load a
misleading part of it; a malformed line is skipped alone (any line the JSON parser cannot take,
nesting too deep included, and, in both formats, a line holding a control character:
`qa_bot.hygiene.corpus_control_character`); a file or subfolder that cannot be read is skipped.
Each is reported as a `CorpusIssue` naming file and line, or raised at once in strict mode. Not handled: other encodings, and
near-duplicate abstracts (only texts equal up to white space are merged).
"""

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from qa_bot.cache import FORMAT as CACHE_FORMAT
from qa_bot.cache import load_checked, save_checked
from qa_bot.errors import CorpusError
from qa_bot.hygiene import corpus_control_character, looks_like_instruction, plain_text, printable_name
from qa_bot.titles import TITLES_VERSION, derive_titles

MARKER_LINE = re.compile(r"^translated by\b", re.IGNORECASE)
CJK_RUN = re.compile(r"[\u3400-\u9fff]+")
LATIN_RUN = re.compile(r"[A-Za-z]+")
SUFFIXES = (".txt", ".jsonl")


@dataclass(frozen=True, slots=True)
class Location:
    file: str
    line: int


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


@dataclass(frozen=True, slots=True)
class CorpusIssue:
    file: str
    line: int | None  # None: the whole file or folder
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}" if self.line is not None else f"{self.file}: {self.message}"


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


@dataclass(frozen=True, slots=True)
class _Record:
    text: str
    location: Location
    title: str | None = None
    url: str | None = None


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
    records: list[_Record] = []
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
    if strict and issues:
        raise CorpusError(f"{issues[0]} (strict mode; fix the line or drop --strict)")
    if not records:
        raise CorpusError(f"no abstracts found in {folder}: it needs .txt or .jsonl files with one abstract per line")
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
        if Path(name).suffix in SUFFIXES and (Path(root) / name).is_file()
    )
    if not files:
        raise CorpusError(f"no .txt or .jsonl files in {folder}")
    return files, issues


def parse_file(name: str, raw: bytes) -> tuple[list[_Record], list[CorpusIssue]]:
    lines = raw.removeprefix(b"\xef\xbb\xbf").split(b"\n")
    decoded: list[str] = []
    for number, line in enumerate(lines, start=1):
        try:
            decoded.append(line.decode("utf-8").rstrip("\r"))
        except UnicodeDecodeError:
            return [], [CorpusIssue(name, number, "not valid UTF-8; the whole file was skipped")]
    parse_line = _parse_jsonl_line if name.endswith(".jsonl") else _parse_txt_line
    records, issues = [], []
    for number, text in enumerate(decoded, start=1):
        if not text.strip():
            continue
        location = Location(name, number)
        try:
            record = parse_line(text, location)
        except ValueError as exc:
            issues.append(CorpusIssue(name, number, str(exc)))
            continue
        if record is not None:
            records.append(record)
    return records, issues


def _parse_txt_line(text: str, location: Location) -> _Record | None:
    if MARKER_LINE.match(text.strip()):
        return None
    _require_no_control_character(text)
    return _Record(text.strip(), location)


def _require_no_control_character(text: str) -> None:
    """The one rule for `.txt` and `.jsonl` text: a control character rejects the line."""
    if found := corpus_control_character(text):
        raise ValueError(f"control character {found} in the line; skipped")


def _parse_jsonl_line(text: str, location: Location) -> _Record:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg}); skipped") from exc
    except RecursionError:
        raise ValueError("JSON nested too deeply; skipped") from None
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object; skipped")
    abstract = obj.get("abstract")
    if not isinstance(abstract, str) or not abstract.strip():
        raise ValueError('no "abstract" text; skipped')
    for key in ("title", "url"):
        if obj.get(key) is not None and not isinstance(obj[key], str):
            raise ValueError(f'"{key}" must be a string; skipped')
    for value in (abstract, obj.get("title"), obj.get("url")):
        _require_no_control_character(value or "")
    return _Record(abstract.strip(), location, plain_text(obj.get("title") or "") or None, obj.get("url") or None)


def merge_records(records: list[_Record]) -> list[Paper]:
    """One paper per distinct abstract, in order of first appearance, with all its locations."""
    papers: dict[str, Paper] = {}
    for record in records:
        paper_id = paper_id_for(record.text)
        paper = papers.get(paper_id)
        if paper is None:
            paper = Paper(paper_id, record.text, detect_language(record.text))
            papers[paper_id] = paper
        paper.locations.append(record.location)
        paper.given_title = paper.given_title or record.title
        paper.url = paper.url or record.url
    return list(papers.values())
