"""The rules of ../shared/CONTRACT.md that every `ask --json` / `chat --json` answer must keep."""

import re

MARKER = re.compile(r"\[(\d+)\]")
METADATA = ("authors", "year", "venue", "doi", "url")


def assert_metadata(item: dict) -> None:
    """A result, source or citation carries the record's metadata, null when unknown."""
    assert set(item) >= set(METADATA)
    assert item["authors"] is None or (item["authors"] and all(isinstance(a, str) and a for a in item["authors"]))
    assert item["year"] is None or (isinstance(item["year"], int) and not isinstance(item["year"], bool))
    for key in ("venue", "doi", "url"):
        assert item[key] is None or (isinstance(item[key], str) and item[key])


def assert_contract(answer: dict, abstracts: dict[str, str]) -> None:
    """`abstracts` maps paper_id to abstract text for the corpus the answer came from."""
    assert set(answer) >= {"question", "answer", "abstained", "citations", "sources", "model", "timings_ms"}
    assert set(answer["timings_ms"]) >= {"retrieval", "first_token", "total"}
    markers = [c["marker"] for c in answer["citations"]]
    assert len(markers) == len(set(markers)), "one citation per marker"
    used = {int(n) for n in MARKER.findall(answer["answer"])}
    assert used <= set(markers), f"markers {used - set(markers)} have no citation"
    source_ids = {s["paper_id"] for s in answer["sources"]}
    for item in answer["sources"] + answer["citations"]:
        assert_metadata(item)
    for citation in answer["citations"]:
        assert citation["paper_id"] in source_ids
        assert citation["evidence"] and citation["evidence"] in abstracts[citation["paper_id"]]
        assert citation["locations"] and citation["title"] and citation["lang"] in {"en", "zh"}
    if answer["abstained"]:
        assert answer["citations"] == []
        assert answer["answer"]
    else:
        assert used == set(markers), "every citation is used in the answer"
