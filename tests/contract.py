"""The rules of ../shared/CONTRACT.md that every `ask --json` / `chat --json` answer must keep."""

import re

MARKER = re.compile(r"\[(\d+)\]")


def assert_contract(answer: dict, abstracts: dict[str, str]) -> None:
    """`abstracts` maps paper_id to abstract text for the corpus the answer came from."""
    assert set(answer) >= {"question", "answer", "abstained", "citations", "sources", "model", "timings_ms"}
    assert set(answer["timings_ms"]) >= {"retrieval", "first_token", "total"}
    markers = [c["marker"] for c in answer["citations"]]
    assert len(markers) == len(set(markers)), "one citation per marker"
    used = {int(n) for n in MARKER.findall(answer["answer"])}
    assert used <= set(markers), f"markers {used - set(markers)} have no citation"
    source_ids = {s["paper_id"] for s in answer["sources"]}
    for citation in answer["citations"]:
        assert citation["paper_id"] in source_ids
        assert citation["evidence"] and citation["evidence"] in abstracts[citation["paper_id"]]
        assert citation["locations"] and citation["title"] and citation["lang"] in {"en", "zh"}
    if answer["abstained"]:
        assert answer["citations"] == []
        assert answer["answer"]
    else:
        assert used == set(markers), "every citation is used in the answer"
