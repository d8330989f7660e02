"""Readers for the formats researchers export, one function per format, each turning a file's text
into typed `Record`s (an abstract, where it stands, and the metadata the record has) and the
`CorpusIssue`s met on the way. `qa_bot.collection.corpus` picks the reader by suffix and makes the papers.

- `.txt`: one abstract per non-empty line; `translated by ...` marker lines are ignored.
- `.jsonl`: one object a line: `abstract`, and `title`, `url`, `id` (the record's key), `authors` (a list, or one
  string "A and B"), `year` or `published`, `doi`, `venue` (arXiv-style dumps); and OpenAlex works:
  `abstract_inverted_index` rebuilt into the text, `display_name`, `publication_year`,
  `authorships[].author.display_name`, `primary_location.source.display_name`.
- `.bib`: BibTeX (bibtexparser 2); LaTeX accents and braces become plain text, `@string` macros,
  `#` joins and month names resolve; the entry's key and first line are its location.
- `.ris`: RIS (rispy), entries cut at their `TY` lines so a broken entry costs only itself.
- `.json`: CSL-JSON, a list of items (Zotero's "Export Collection").
- `.csv` / `.tsv`: a header row naming title/abstract/authors/year/doi/url/venue in any case;
  authors separated by ";" (or by "," when every part is a whole name, as Google Scholar writes).

One rule for every format: a record with a control character in any field is rejected
(`qa_bot.text.hygiene.corpus_control_character`), titles lose markup (`plain_text`). A record without an
abstract is no error: such records are counted, one note per file. Not handled: RIS/CSV in other
encodings than UTF-8.
"""

import calendar
import csv
import io
import json
import logging
import re
from dataclasses import dataclass, field

import bibtexparser
import rispy
from bibtexparser.middlewares import LatexDecodingMiddleware

from qa_bot.text.hygiene import corpus_control_character, plain_text

MARKER_LINE = re.compile(r"^translated by\b", re.IGNORECASE)
YEAR = re.compile(r"(?<!\d)(1[5-9]\d\d|20\d\d)(?!\d)")
DOI_PREFIX = re.compile(r"^(?:https?://(?:dx\.)?doi\.org/|doi:\s*)", re.IGNORECASE)
BIBTEX_AND = re.compile(r"\s+and\s+")
RIS_START = re.compile(r"^TY  -", re.MULTILINE)
CSV_VENUES = ("venue", "journal", "source", "booktitle")
# BibTeX's predefined month macros: `month = jan`.
MONTHS = {name[:3].lower(): name for name in calendar.month_name[1:]}
# bibtexparser logs each failed block itself, as several lines with 0-based line numbers; each is
# reported here as one CorpusIssue instead.
logging.getLogger("bibtexparser").setLevel(logging.CRITICAL)


@dataclass(frozen=True, slots=True)
class Location:
    file: str
    line: int
    key: str | None = None  # a BibTeX entry's key, for the user to find it in a reference manager


@dataclass(frozen=True, slots=True)
class CorpusIssue:
    file: str
    line: int | None  # None: the whole file or folder
    message: str
    malformed: bool = True  # False for a note (records without an abstract): --strict lets it pass

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}" if self.line is not None else f"{self.file}: {self.message}"


@dataclass(frozen=True, slots=True)
class Record:
    text: str
    location: Location
    title: str | None = None
    authors: tuple[str, ...] = ()
    year: int | None = None
    venue: str | None = None
    doi: str | None = None
    url: str | None = None


@dataclass(slots=True)
class Reading:
    """What one file gave: its records, its problems, and the lines of records without an abstract."""

    name: str
    records: list[Record] = field(default_factory=list)
    issues: list[CorpusIssue] = field(default_factory=list)
    without_abstract: list[int] = field(default_factory=list)

    def problem(self, line: int | None, message: str) -> None:
        self.issues.append(CorpusIssue(self.name, line, message))

    def add(self, line: int, abstract, key: str | None = None, **metadata) -> None:
        """One record, checked by the rules every format shares."""
        if not isinstance(abstract, str) or not abstract.strip():
            self.without_abstract.append(line)
            return
        values = [abstract, *(value for value in metadata.values() if isinstance(value, str)),
                  *metadata.get("authors", ())]
        if found := next(filter(None, map(corpus_control_character, values)), None):
            self.problem(line, f"control character {found} in the record; skipped")
            return
        title = metadata.pop("title", None)
        self.records.append(Record(abstract.strip(), Location(self.name, line, key),
                                   title=plain_text(title) or None if title else None, **metadata))

    def finished(self) -> "Reading":
        if count := len(self.without_abstract):
            noun = "record" if count == 1 else "records"
            self.issues.append(CorpusIssue(self.name, None, f"{count} {noun} without an abstract skipped "
                                           f"(the first at line {self.without_abstract[0]})", malformed=False))
        return self


def read_txt(name: str, text: str) -> Reading:
    reading = Reading(name)
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.strip()
        if not line or MARKER_LINE.match(line):
            continue
        if found := corpus_control_character(line):
            reading.problem(number, f"control character {found} in the line; skipped")
            continue
        reading.records.append(Record(line, Location(name, number)))
    return reading


def read_jsonl(name: str, text: str) -> Reading:
    reading = Reading(name)
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            reading.problem(number, f"not valid JSON ({exc.msg}); skipped")
            continue
        except RecursionError:
            reading.problem(number, "JSON nested too deeply; skipped")
            continue
        if not isinstance(obj, dict):
            reading.problem(number, "not a JSON object; skipped")
            continue
        if bad := next((key for key in ("title", "display_name", "url", "doi") if not _optional_string(obj.get(key))), None):
            reading.problem(number, f'"{bad}" must be a string; skipped')
            continue
        try:
            abstract = obj.get("abstract") or inverted_abstract(obj.get("abstract_inverted_index"))
        except ValueError as exc:
            reading.problem(number, f"{exc}; skipped")
            continue
        reading.add(number, abstract, key=record_key(obj.get("id")), title=obj.get("title") or obj.get("display_name"),
                    authors=_names(obj.get("authors")) or openalex_authors(obj.get("authorships")),
                    year=year_of(obj.get("year") or obj.get("published") or obj.get("publication_year")),
                    venue=_text(obj.get("venue")) or openalex_venue(obj.get("primary_location")),
                    doi=doi_of(obj.get("doi")), url=obj.get("url") or None)
    return reading.finished()


def record_key(value) -> str | None:
    """A record's own id ("MED-10", 42), by which an evaluation or the user names it."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    return str(value).strip() or None


def inverted_abstract(index) -> str | None:
    """OpenAlex's `abstract_inverted_index` ({"We": [0], "propose": [1], ...}) as the text it was
    made from; None when there is none. ValueError when it is not a map of words to positions."""
    if index is None:
        return None
    if not isinstance(index, dict):
        raise ValueError('"abstract_inverted_index" is not an object of words and positions')
    words: dict[int, str] = {}
    for word, positions in index.items():
        if not isinstance(positions, list) or not all(_position(p) for p in positions):
            raise ValueError(f'"abstract_inverted_index" gives "{word}" no list of positions')
        words.update(dict.fromkeys(positions, word))
    return " ".join(words[position] for position in sorted(words))


def openalex_authors(authorships) -> tuple[str, ...]:
    """`authorships[].author.display_name` of an OpenAlex work."""
    if not isinstance(authorships, list):
        return ()
    return tuple(filter(None, (_nested(item, "author", "display_name") for item in authorships)))


def openalex_venue(location) -> str | None:
    """`primary_location.source.display_name` of an OpenAlex work: its journal or conference."""
    return _nested(location, "source", "display_name")


def _nested(value, *keys) -> str | None:
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return _text(value)


def _position(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def read_bib(name: str, text: str) -> Reading:
    reading = Reading(name)
    # Values are taken raw (no parse stack), so that `@string` macros and `#` joins resolve here.
    library = bibtexparser.parse_string(text, parse_stack=[])
    for block in library.failed_blocks:
        reading.problem(block.start_line + 1, f"malformed BibTeX entry ({bibtex_failure(block)}); skipped")
    resolve_macros(library, reading)
    library = LatexDecodingMiddleware().transform(library)
    for entry in library.entries:
        fields = {key.lower(): value.value for key, value in entry.fields_dict.items() if isinstance(value.value, str)}
        reading.add(entry.start_line + 1, fields.get("abstract"), key=entry.key, title=fields.get("title"),
                    authors=tuple(filter(None, map(person_name, BIBTEX_AND.split(fields.get("author", ""))))),
                    year=year_of(fields.get("year") or fields.get("date")),
                    venue=fields.get("journal") or fields.get("booktitle") or None,
                    doi=doi_of(fields.get("doi")), url=fields.get("url") or None)
    return reading.finished()


def resolve_macros(library, reading: Reading) -> None:
    """Every field as its text: `journal = jmlr` with `@string{jmlr = "Journal of ..."}` is that
    journal, `"Proc. " # conf` is joined, `month = jan` is January. A name no `@string` defines
    is kept as written, with a warning naming the entry's line."""
    strings: dict[str, str] = {}
    for macro in library.strings:
        strings[macro.key.lower()] = bibtex_value(macro.value, strings)[0]
    for entry in library.entries:
        for bib_field in entry.fields:
            if not isinstance(bib_field.value, str):
                continue
            bib_field.value, undefined = bibtex_value(bib_field.value, strings)
            for macro in undefined:
                reading.problem(entry.start_line + 1,
                                f'"{macro}" in {bib_field.key} is not a defined @string; kept as written')


def bibtex_value(raw: str, strings: dict[str, str]) -> tuple[str, list[str]]:
    """A raw BibTeX value's text, and the macro names in it that `strings` does not define: its
    `{...}` and `"..."` parts without their delimiters, numbers as written, macros replaced."""
    text, undefined = [], []
    for part in top_level_parts(raw):
        name = part.lower()
        if part[0] in '{"':
            text.append(part[1:-1])
        elif name in strings:
            text.append(strings[name])
        elif name in MONTHS or part.isdigit():
            text.append(MONTHS.get(name, part))
        else:
            undefined.append(part)
            text.append(part)
    return "".join(text), undefined


def top_level_parts(raw: str) -> list[str]:
    """The parts of a value joined by `#` outside braces and quotes: `pre # "ICML"` is two."""
    parts, start, depth, quoted = [], 0, 0, False
    for position, char in enumerate(raw):
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
        elif char == '"' and depth == 0:
            quoted = not quoted
        elif char == "#" and depth == 0 and not quoted:
            parts.append(raw[start:position])
            start = position + 1
    parts.append(raw[start:])
    return [part.strip() for part in parts if part.strip()]


def bibtex_failure(block) -> str:
    """What went wrong, without bibtexparser's own 0-based line numbers: "Unexpected block start ..."."""
    error = getattr(block, "error", None)
    reason = (getattr(error, "abort_reason", None) or str(error or "")).strip()
    return reason.splitlines()[-1].strip().rstrip(".") if reason else "cannot be parsed"


def read_ris(name: str, text: str) -> Reading:
    reading = Reading(name)
    starts = [match.start() for match in RIS_START.finditer(text)]
    if not starts:
        reading.problem(None, "no RIS entry (a line starting with 'TY  -'); skipped")
    for start, end in zip(starts, starts[1:] + [len(text)]):
        line = text.count("\n", 0, start) + 1
        try:
            entries = rispy.loads(text[start:end])
        except (IOError, ValueError, KeyError) as exc:  # rispy raises IOError for a missing ER line
            reading.problem(line, f"malformed RIS entry ({exc}); skipped")
            continue
        for entry in entries:
            reading.add(line, entry.get("abstract") or entry.get("notes_abstract"),
                        title=entry.get("title") or entry.get("primary_title"),
                        authors=tuple(map(person_name, entry.get("authors") or entry.get("first_authors") or [])),
                        year=year_of(entry.get("year") or entry.get("publication_year") or entry.get("date")),
                        venue=entry.get("journal_name") or entry.get("secondary_title") or None,
                        doi=doi_of(entry.get("doi")), url=next(iter(entry.get("urls") or []), None))
    return reading.finished()


def read_csl_json(name: str, text: str) -> Reading:
    """Items are decoded one by one, so that each keeps its line and a broken one keeps those before."""
    reading = Reading(name)
    decoder, position = json.JSONDecoder(), _skip(text, 0)
    if not text.startswith("[", position):
        reading.problem(1, "not a CSL-JSON list of items; skipped")
        return reading
    position = _skip(text, position + 1)
    while position < len(text) and text[position] != "]":
        line = text.count("\n", 0, position) + 1
        try:
            item, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError as exc:
            reading.problem(exc.lineno, f"not valid JSON ({exc.msg}); the rest of the file was skipped")
            break
        except RecursionError:
            reading.problem(line, "JSON nested too deeply; the rest of the file was skipped")
            break
        if isinstance(item, dict):
            _add_csl_item(reading, line, item)
        else:
            reading.problem(line, "not a CSL-JSON item (an object); skipped")
        position = _skip(text, position)
        position = _skip(text, position + 1) if text.startswith(",", position) else position
    return reading.finished()


def _add_csl_item(reading: Reading, line: int, item: dict) -> None:
    authors = tuple(
        " ".join(filter(None, (_text(person.get("given")), _text(person.get("family"))))) or _text(person.get("literal"))
        for person in item.get("author") or [] if isinstance(person, dict)
    )
    parts = (item.get("issued") or {}).get("date-parts") if isinstance(item.get("issued"), dict) else None
    year = parts[0][0] if parts and isinstance(parts[0], list) and parts[0] else None
    reading.add(line, item.get("abstract"), title=_text(item.get("title")), authors=tuple(filter(None, authors)),
                year=year_of(year), venue=_text(item.get("container-title")), doi=doi_of(item.get("DOI")),
                url=_text(item.get("URL")))


def read_csv(name: str, text: str) -> Reading:
    reading = Reading(name)
    rows = csv.reader(io.StringIO(text, newline=""), delimiter="\t" if name.endswith(".tsv") else ",")
    try:
        header = [cell.strip().lower() for cell in next(rows)]
    except StopIteration:
        return reading
    if "abstract" not in header:
        reading.problem(1, 'no "abstract" column in the header; skipped')
        return reading
    line = rows.line_num + 1
    try:
        for row in rows:
            cells = dict(zip(header, row))
            venue = next((cells[column] for column in CSV_VENUES if cells.get(column)), None)
            reading.add(line, cells.get("abstract"), title=cells.get("title"),
                        authors=csv_authors(cells.get("authors") or cells.get("author") or ""),
                        year=year_of(cells.get("year")), venue=venue, doi=doi_of(cells.get("doi")),
                        url=cells.get("url") or None)
            line = rows.line_num + 1
    except csv.Error as exc:
        reading.problem(line, f"malformed CSV ({exc}); the rest of the file was skipped")
    return reading.finished()


READERS = {".txt": read_txt, ".jsonl": read_jsonl, ".bib": read_bib, ".ris": read_ris, ".json": read_csl_json,
           ".csv": read_csv, ".tsv": read_csv}


def person_name(name: str) -> str:
    """"Müller, Jörg" as "Jörg Müller"; a name without a comma as it is."""
    family, comma, given = " ".join(name.split()).partition(", ")
    return f"{given} {family}" if comma and given else family.rstrip(",")


def csv_authors(cell: str) -> tuple[str, ...]:
    """"Garcia, L; Patel, R" or "L Garcia, R Patel" as two names; "Ivanova, M" as one."""
    names = [name for name in cell.split(";") if name.strip()]
    if len(names) == 1 and all(" " in part.strip() for part in cell.split(",")):
        names = cell.split(",")  # every part a whole name: a comma-separated list
    return tuple(person_name(name) for name in names if name.strip())


def year_of(value) -> int | None:
    """2021 from 2021, "2021", "2021-05-03" or "May 2021"; None when no year is there."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if 1500 <= value <= 2099 else None
    found = YEAR.search(value) if isinstance(value, str) else None
    return int(found.group()) if found else None


def doi_of(value) -> str | None:
    """The bare DOI ("10.1145/3571885") of "https://doi.org/10.1145/3571885" or "doi:10.1145/..."."""
    if not isinstance(value, str) or not value.strip():
        return None
    return DOI_PREFIX.sub("", value.strip()) or None


def _names(value) -> tuple[str, ...]:
    """Authors of a JSONL record: a list of strings, a list of {"name": ...}, or "A and B"."""
    if isinstance(value, str):
        return tuple(filter(None, map(person_name, BIBTEX_AND.split(value.strip()))))
    if isinstance(value, list):
        names = (item if isinstance(item, str) else item.get("name") if isinstance(item, dict) else None for item in value)
        return tuple(person_name(name) for name in names if isinstance(name, str) and name.strip())
    return ()


def _text(value) -> str | None:
    """A string field of a JSON record, or None (CSL-JSON may hold a list where a string belongs)."""
    if isinstance(value, list):
        value = next((item for item in value if isinstance(item, str)), None)
    return value.strip() or None if isinstance(value, str) else None


def _optional_string(value) -> bool:
    return value is None or isinstance(value, str)


def _skip(text: str, position: int) -> int:
    while position < len(text) and text[position].isspace():
        position += 1
    return position
