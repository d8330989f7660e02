"""The contract's JSON shapes (shared/CONTRACT.md) of a search and an answer, one place for every
front end: the CLI prints them, an HTTP service returns them."""

import json

from qa_bot.answer.assistant import Answer
from qa_bot.collection.corpus import Location, Paper
from qa_bot.app.display import paper_link
from qa_bot.text.hygiene import shown_answer
from qa_bot.search.retrieve import SearchResult


def to_json(value: dict) -> str:
    """One line of UTF-8 JSON; NaN or Infinity, which JSON cannot hold, is an error, never output."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def locations_json(locations: list[Location]) -> list[dict]:
    """File and line; and a BibTeX entry's key where there is one."""
    return [{"file": loc.file, "line": loc.line, **({"key": loc.key} if loc.key else {})} for loc in locations]


def metadata_json(paper: Paper) -> dict:
    """The record's metadata, null when it has none (shared/CONTRACT.md, additions)."""
    return {"authors": list(paper.authors) or None, "year": paper.year, "venue": paper.venue, "doi": paper.doi,
            "url": paper.url}


def metadata_line(paper: Paper) -> str:
    """"Smith, Lee et al. · 2021 · VLDB · https://doi.org/...": what the record knows, for plain
    text ("" when it knows nothing)."""
    parts = (short_authors(paper.authors), str(paper.year or ""), paper.venue or "", paper_link(paper) or "")
    return " · ".join(part for part in parts if part)


def short_authors(authors: tuple[str, ...]) -> str:
    """The family names of the first two authors (the last word of "Jörg Müller"), then "et al."."""
    families = [name.split()[-1] for name in authors[:2]]
    return ", ".join(families) + (" et al." if len(authors) > 2 else "")


def answer_dict(answer: Answer) -> dict:
    timings = answer.timings
    return {
        "question": answer.question,
        # Plain text: no markup from the corpus or the model, no marker without its citation.
        "answer": shown_answer(answer.text, {c.marker for c in answer.citations}),
        "abstained": answer.abstained,
        "outcome": answer.outcome,
        "path": answer.path,
        "citations": [
            {
                "marker": c.marker,
                "paper_id": c.paper.paper_id,
                "title": c.paper.title,
                "lang": c.paper.lang,
                "locations": locations_json(c.paper.locations),
                "evidence": c.evidence,
                **metadata_json(c.paper),
            }
            for c in answer.citations
        ],
        "sources": [
            {
                "rank": hit.rank,
                "paper_id": hit.paper.paper_id,
                "title": hit.paper.title,
                "score": round(hit.score, 4),
                "locations": locations_json(hit.paper.locations),
                **metadata_json(hit.paper),
            }
            for hit in answer.hits
        ],
        "model": answer.model,
        "timings_ms": {
            "retrieval": round(timings.retrieval_ms, 1),
            "first_token": round(timings.first_token_ms, 1) if timings.first_token_ms is not None else None,
            "total": round(timings.total_ms, 1),
        },
        "query": answer.query,
        "dropped": answer.dropped,
        "truncated": answer.truncated,
        **({"partial": list(answer.missing_shards)} if answer.missing_shards else {}),
    }


def search_dict(result: SearchResult) -> dict:
    return {
        "query": result.query,
        "results": [
            {
                "rank": hit.rank,
                "paper_id": hit.paper.paper_id,
                "title": hit.paper.title,
                "lang": hit.paper.lang,
                "score": round(hit.score, 4),
                "locations": locations_json(hit.paper.locations),
                "snippet": hit.snippet,
                **metadata_json(hit.paper),
            }
            for hit in result.hits
        ],
        **({"partial": list(result.missing_shards)} if result.missing_shards else {}),
    }


def answer_json(answer: Answer) -> str:
    return to_json(answer_dict(answer))


def search_json(result: SearchResult) -> str:
    return to_json(search_dict(result))
