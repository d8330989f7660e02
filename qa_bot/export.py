"""A conversation as a Markdown document: each question and answer, the evidence each answer
cites, and one reference list for the whole conversation (every cited paper and where it is).

Markers are renumbered across the conversation: the [1] of the second answer may be another
paper than the [1] of the first, so each paper gets one number in the reference list and the
answers are rewritten to use it. Text from the corpus and the model is Markdown-escaped, so a
viewer shows it as written (no links, no HTML).
"""

import re
from datetime import datetime

from qa_bot.answer import Answer
from qa_bot.corpus import Paper, places
from qa_bot.display import CLOSEST_SHOWN, LANGUAGE_LABELS, escape_markdown, render_markers

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
        f"{number}. {safe(paper.title)} ({LANGUAGE_LABELS.get(paper.lang, paper.lang)}) · "
        f"{code(places(paper.locations))} · id {paper.paper_id}"
        for number, paper in references.values()
    ] or ["No paper was cited."]
    return "\n".join(lines) + "\n"


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
