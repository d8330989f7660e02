"""A conversation as a Markdown document: each question and answer, the evidence each answer
cites, and one reference list for the whole conversation (every cited paper, its authors, year,
venue and DOI/URL when known, and where it is); and the cited papers as BibTeX.

Markers are renumbered across the conversation: the [1] of the second answer may be another
paper than the [1] of the first, so each paper gets one number in the reference list and the
answers are rewritten to use it. Text from the corpus and the model is Markdown-escaped, so a
viewer shows it as written (no links, no HTML).
"""

import re
from datetime import datetime

import bibtexparser
from bibtexparser.library import Library
from bibtexparser.middlewares import LatexEncodingMiddleware
from bibtexparser.model import Entry, Field
from pylatexenc.latexencode import UnicodeToLatexEncoder

from qa_bot.answer.assistant import Answer
from qa_bot.collection.corpus import Paper, places
from qa_bot.app.display import CLOSEST_SHOWN, LANGUAGE_LABELS, escape_markdown, paper_link, render_markers

# Fewer characters than for the UI, so that the file stays readable as plain text too.
EXPORT_PUNCTUATION = re.compile(r"([\\`*_\[\]<>|~$#])")


def conversation_markdown(answers: list[Answer], corpus_label: str, model: str, exported: datetime) -> str:
    references: dict[str, tuple[int, Paper]] = {}
    lines = ["# qa-bot conversation", "", f"Exported {exported:%Y-%m-%d %H:%M} · corpus: {corpus_label} · model: {model}"]
    for turn, answer in enumerate(answers, start=1):
        numbers = {c.marker: reference_number(references, c.paper) for c in answer.citations}
        lines += ["", f"## {turn}. {safe(answer.question)}", ""]
        lines.append(render_markers(answer.text, safe, lambda found: "".join(f"[{numbers.get(n, '?')}]" for n in found)))
        lines += [""] + turn_sources(answer, numbers)
    lines += ["", "## References", ""]
    lines += [
        f"{number}. {safe(paper.title)} ({LANGUAGE_LABELS.get(paper.lang, paper.lang)}) · {citation_line(paper)}"
        f"{code(places(paper.locations))} · id {paper.paper_id}"
        for number, paper in references.values()
    ] or ["No paper was cited."]
    return "\n".join(lines) + "\n"


def citation_line(paper: Paper) -> str:
    """"Ann Smith, Jörg Müller · 2021 · VLDB · <https://doi.org/...> · ": what the record knows."""
    link = paper_link(paper)
    parts = [safe(text) for text in (", ".join(paper.authors), str(paper.year or ""), paper.venue or "") if text]
    return "".join(f"{part} · " for part in parts + ([f"<{link}>"] if link else []))


def cited_papers(answers: list[Answer]) -> list[Paper]:
    """Every paper the answers cite, once, in order of first citation."""
    papers = {c.paper.paper_id: c.paper for answer in answers for c in answer.citations}
    return list(papers.values())


def references_bibtex(papers: list[Paper]) -> str:
    """The papers as BibTeX entries, special characters LaTeX-escaped (Chinese kept as UTF-8); a paper
    read from a .bib keeps its key, another is keyed by its id."""
    entries = [Entry("article" if paper.venue else "misc", bibtex_key(paper), bibtex_fields(paper)) for paper in papers]
    encoder = UnicodeToLatexEncoder(unknown_char_policy="keep", unknown_char_warning=False, non_ascii_only=False)
    return bibtexparser.write_string(Library(entries), prepend_middleware=[LatexEncodingMiddleware(encoder=encoder)])


def bibtex_key(paper: Paper) -> str:
    return next((loc.key for loc in paper.locations if loc.key and loc.file.endswith(".bib")), f"qa{paper.paper_id}")


def bibtex_fields(paper: Paper) -> list[Field]:
    values = {"title": paper.title, "author": " and ".join(paper.authors), "year": str(paper.year or ""),
              "journal": paper.venue, "doi": paper.doi, "url": paper.url, "abstract": paper.text}
    return [Field(name, value) for name, value in values.items() if value]


def reference_number(references: dict[str, tuple[int, Paper]], paper: Paper) -> int:
    if paper.paper_id not in references:
        references[paper.paper_id] = (len(references) + 1, paper)
    return references[paper.paper_id][0]


def turn_sources(answer: Answer, numbers: dict[int, int]) -> list[str]:
    if answer.abstained:
        closest = [f"- {safe(hit.paper.title)} · {code(places(hit.paper.locations))}" for hit in answer.hits[:CLOSEST_SHOWN]]
        return ["Closest papers (not cited):"] + closest if closest else []
    quoted = "" if answer.path == "generated" else " (quoted: the model's own answer did not pass the citation check)"
    lines = [f"Evidence{quoted}:", ""]
    for citation in answer.citations:
        lines += [f"> [{numbers[citation.marker]}] {safe(citation.evidence)}", ""]
    return lines[:-1]


def safe(text: str) -> str:
    return escape_markdown(text, EXPORT_PUNCTUATION)


def code(text: str) -> str:
    """File names as code, so that their underscores stay as they are."""
    return f"`{text}`" if "`" not in text else safe(text)
