"""Answers and their sources as HTML and Markdown that are safe to show.

Everything that comes from the corpus or the model goes through `html.escape` (HTML) or
`escape_markdown` (Markdown) before it is shown, so a line holding `<script>`, an `<img onerror>`
or a Markdown link is displayed as the characters it is made of: nothing runs, nothing navigates.
The only markup is what this module writes itself: citation markers that link to their source
card, the cards, highlighted evidence.
"""

import re
from html import escape
from urllib.parse import quote

from qa_bot.answer.assistant import Answer, Citation
from qa_bot.collection.corpus import Paper, places
from qa_bot.search.retrieve import Hit
from qa_bot.text.language import detect_language
from qa_bot.text.markers import MARKER

# Every ASCII punctuation character can be backslash-escaped in CommonMark and then shows as
# itself; escaping all of them also stops Streamlit's extensions (":red[...]", "$math$") and
# bare-URL autolinks ("http\://", "www\.").
MARKDOWN_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")
LANGUAGE_LABELS = {"en": "English", "zh": "Chinese"}
CLOSEST_SHOWN = 3
CONTEXT_CHARS = 160  # abstract text shown on each side of the evidence before the card is expanded
HINT_CHARS = 240  # evidence shown when the pointer rests on a marker
AUTHORS_SHOWN = 3  # then "et al."
WEB_LINK = re.compile(r"^https?://[^\s\"'<>]+$", re.IGNORECASE)


def escape_markdown(text: str, characters: re.Pattern = MARKDOWN_PUNCTUATION) -> str:
    return characters.sub(r"\\\1", text)


def anchor(turn: int, marker: int) -> str:
    """The id of a source card: unique in the page, since every turn has its own markers."""
    return f"qa-t{turn}-c{marker}"


def answer_block_html(answer: Answer, turn: int, show_scores: bool) -> str:
    """One finished answer as the chat shows it: the text with linked markers, how it was made,
    and its source cards; an abstained answer says so and lists the closest papers."""
    question_lang = detect_language(answer.question)
    if answer.abstained:
        return text_html(answer.text, "qa-answer qa-abstained") + closest_papers_html(answer.hits[:CLOSEST_SHOWN], show_scores)
    hits = {hit.paper.paper_id: hit for hit in answer.hits} if show_scores else {}
    cards = "".join(
        source_card_html(citation, question_lang, turn, hits.get(citation.paper.paper_id))
        for citation in answer.citations
    )
    return (
        answer_html(answer, turn)
        + f'<div class="qa-meta-line">{escape(how_answered(answer))}</div>'
        + f'<div class="qa-sources-head">Sources</div>{cards}'
    )


def how_answered(answer: Answer) -> str:
    seconds = f"{answer.timings.total_ms / 1000:.1f} s"
    if answer.path == "extractive":
        return f"Quoted from the best source: the model's own sentences did not pass the citation check · {seconds}"
    return f"Written by {answer.model}, every sentence checked against its source · {seconds}"


def answer_html(answer: Answer, turn: int) -> str:
    """The answer's text with each marker a link to its source card (its title on hover)."""
    cited = {citation.marker: citation for citation in answer.citations}
    body = render_markers(answer.text, escape, lambda numbers: marker_links(numbers, cited, turn))
    return f'<div class="qa-answer" lang="{detect_language(answer.text)}">{body}</div>'


def render_markers(text: str, escape_text, render_numbers) -> str:
    """`text` with its plain parts escaped and each citation marker replaced by
    `render_numbers(the marker's numbers)`."""
    parts, end = [], 0
    for match in MARKER.finditer(text):
        parts.append(escape_text(text[end : match.start()]))
        parts.append(" " if match.group(0)[:1].isspace() else "")
        parts.append(render_numbers([int(n) for n in re.findall(r"\d+", match.group(1))]))
        end = match.end()
    parts.append(escape_text(text[end:]))
    return "".join(parts)


def marker_links(numbers: list[int], cited: dict[int, Citation], turn: int) -> str:
    links = []
    for number in numbers:
        citation = cited.get(number)
        if citation is None:  # the checker keeps only cited markers; show a stray one as text
            links.append(f"[{number}]")
            continue
        evidence = citation.evidence if len(citation.evidence) <= HINT_CHARS else citation.evidence[:HINT_CHARS] + "…"
        hint = escape(f"{citation.paper.title} · {places(citation.paper.locations)}\n“{evidence}”", quote=True)
        links.append(f'<a class="qa-marker" href="#{anchor(turn, number)}" title="{hint}">[{number}]</a>')
    return "".join(links)


def source_card_html(citation: Citation, question_lang: str, turn: int, hit: Hit | None) -> str:
    """A cited paper: marker, title, language, file:line, the evidence highlighted in its context,
    the whole abstract behind a "show" toggle; the retrieval score when `hit` is given."""
    paper = citation.paper
    meta = [LANGUAGE_LABELS.get(paper.lang, paper.lang), escape(places(paper.locations))]
    if hit is not None:
        meta.append(f"rank {hit.rank} · score {hit.score:.2f}")
    note = translation_note(paper, question_lang)
    return (
        f'<div class="qa-card" id="{anchor(turn, citation.marker)}">'
        f'<div class="qa-card-title"><span class="qa-badge">[{citation.marker}]</span> {escape(paper.title)}</div>'
        + bibliographic_html(paper)
        + f'<div class="qa-meta">{" · ".join(meta)}</div>'
        + (f'<div class="qa-note">{escape(note)}</div>' if note else "")
        + f'<blockquote class="qa-evidence" lang="{paper.lang}">'
        f'{highlighted(paper.text, citation.evidence, CONTEXT_CHARS, citation.answer_spans)}</blockquote>'
        f'<details><summary>Whole abstract</summary>'
        f'<p lang="{paper.lang}">{highlighted(paper.text, citation.evidence, spans=citation.answer_spans)}</p></details>'
        "</div>"
    )


def bibliographic_html(paper: Paper) -> str:
    """Authors, year, venue and a link to the paper, as far as its record has them ("" if nothing)."""
    authors = list(paper.authors[:AUTHORS_SHOWN]) + (["et al."] if len(paper.authors) > AUTHORS_SHOWN else [])
    parts = [escape(text) for text in (", ".join(authors), str(paper.year or ""), paper.venue or "") if text]
    if link := paper_link(paper):
        parts.append(f'<a class="qa-link" href="{escape(link, quote=True)}" target="_blank" rel="noopener">'
                     f'{escape("doi:" + paper.doi if paper.doi else link)}</a>')
    return f'<div class="qa-biblio">{" · ".join(parts)}</div>' if parts else ""


def paper_link(paper: Paper) -> str | None:
    """https://doi.org/<DOI> when the paper has a DOI, else its URL if it is a web address (never a
    javascript: or data: one), else None."""
    if paper.doi:
        return "https://doi.org/" + quote(paper.doi, safe="/:;()._-")
    return paper.url if paper.url and WEB_LINK.match(paper.url) else None


def highlighted(text: str, evidence: str, context: int | None = None, spans: tuple[str, ...] = ()) -> str:
    """`text` with `evidence` marked, and in it the `spans` that answer the question in bold; with
    `context`, only that many characters around it."""
    start = text.find(evidence)
    if start < 0:  # evidence always comes from the text; if not, show the text unmarked
        return escape(text)
    end = start + len(evidence)
    before, after = text[:start], text[end:]
    if context is not None:
        before = "…" + tail_at_word(before, context) if len(before) > context else before
        after = head_at_word(after, context) + "…" if len(after) > context else after
    return f"{escape(before)}<mark>{with_spans(evidence, spans)}</mark>{escape(after)}"


def with_spans(evidence: str, spans: tuple[str, ...]) -> str:
    """The evidence escaped, each answer span (a number, a name) in <strong class="qa-span">."""
    if not spans:
        return escape(evidence)
    pattern = "|".join(re.escape(span) for span in sorted(spans, key=len, reverse=True))
    pieces = re.split(f"({pattern})", evidence)
    return "".join(f'<strong class="qa-span">{escape(piece)}</strong>' if i % 2 else escape(piece)
                   for i, piece in enumerate(pieces))


def tail_at_word(text: str, size: int) -> str:
    """About the last `size` characters of `text`, starting at a word if a space is near."""
    window = text[-size:]
    space = window.find(" ")
    return window[space + 1 :] if 0 <= space < size // 3 else window


def head_at_word(text: str, size: int) -> str:
    window = text[:size]
    space = window.rfind(" ")
    return window[:space] if space > size * 2 // 3 else window


def translation_note(paper: Paper, question_lang: str) -> str:
    """Said when a source is in the other language than the question: the Chinese abstracts of
    such collections are machine translations, so their wording is not the authors'."""
    if paper.lang == question_lang:
        return ""
    if paper.lang == "zh":
        return "Machine-translated Chinese abstract: its wording is a translation, not the authors' own."
    return "英文摘要：证据是英文原文，问题是中文。"


def closest_papers_html(hits: list[Hit], show_scores: bool) -> str:
    """What an abstained answer found: the closest papers, not cited because none covers the question."""
    if not hits:
        return '<div class="qa-closest">No paper shares a word with the question.</div>'
    items = []
    for hit in hits:
        meta = [LANGUAGE_LABELS.get(hit.paper.lang, hit.paper.lang), escape(places(hit.paper.locations))]
        if show_scores:
            meta.append(f"score {hit.score:.2f}")
        items.append(
            f'<li><span class="qa-closest-title">{escape(hit.paper.title)}</span>'
            + bibliographic_html(hit.paper)
            + f'<div class="qa-meta">{" · ".join(meta)}</div>'
            f'<div class="qa-snippet" lang="{hit.paper.lang}">{escape(hit.snippet)}</div></li>'
        )
    return (
        '<div class="qa-closest"><div class="qa-closest-head">Closest papers found (not cited: none covers '
        f'the question well enough)</div><ol>{"".join(items)}</ol></div>'
    )


def retrieved_table_html(answer: Answer) -> str:
    """Every retrieved paper with its rank and score, the cited ones marked."""
    cited = {citation.paper.paper_id: citation.marker for citation in answer.citations}
    rows = "".join(
        f"<tr><td>{hit.rank}</td><td>{hit.score:.2f}</td>"
        f"<td>{f'[{cited[hit.paper.paper_id]}]' if hit.paper.paper_id in cited else ''}</td>"
        f"<td>{escape(hit.paper.title)}</td><td>{hit.paper.lang}</td></tr>"
        for hit in answer.hits
    )
    return (
        '<table class="qa-scores"><thead><tr><th>Rank</th><th>BM25</th><th>Cited</th><th>Paper</th>'
        f"<th>Lang</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def text_html(text: str, css_class: str) -> str:
    return f'<div class="{css_class}" lang="{detect_language(text)}">{escape(text)}</div>'
