"""Sentences of an abstract that best match a question: the search snippet, and later the evidence.

Sentences are verbatim substrings of the abstract (so they can be quoted and checked). A sentence
scores the summed IDF of the distinct query terms it contains, through the same bilingual terms
as retrieval, so an English question picks the right sentence of a Chinese abstract. Not handled:
abbreviations such as "e.g." or "Fig. 2" end an English sentence early.
"""

import re
from collections.abc import Callable

SENTENCE = re.compile(r".+?(?:[.!?](?=\s+[A-Z0-9(\"'])|[。！？!?；;](?!\d)|$)", re.DOTALL)


def split_sentences(text: str) -> list[str]:
    """The sentences of `text`, each stripped, each a substring of `text`, none empty."""
    return [s.strip() for s in SENTENCE.findall(text) if s.strip()]


def best_sentences(
    query_terms: list[str],
    text: str,
    term_weight: Callable[[str], float],
    sentence_terms: Callable[[str], list[str]],
    limit: int = 1,
) -> list[str]:
    """The `limit` sentences with most query weight, in the order they appear in the text."""
    wanted = set(query_terms)
    sentences = split_sentences(text)
    scored = [
        (sum(term_weight(term) for term in wanted.intersection(sentence_terms(sentence))), -position)
        for position, sentence in enumerate(sentences)
    ]
    chosen = sorted(range(len(sentences)), key=lambda i: scored[i], reverse=True)[:limit]
    return [sentences[i] for i in sorted(chosen)]
