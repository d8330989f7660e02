"""Sentences of an abstract that best match a question: the search snippet and the model's evidence.

Sentences are verbatim substrings of the abstract (so they can be quoted and checked). A sentence
scores the summed IDF of the distinct query terms it contains, through the same bilingual terms
as retrieval, so an English question picks the right sentence of a Chinese abstract. Not handled:
abbreviations such as "e.g." or "Fig. 2" end an English sentence early.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass

from qa_bot.corpus import Paper

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
    """The `limit` sentences with most query weight, in the order they appear in the text; only
    sentences holding some query term, unless none does (then the first sentence)."""
    wanted = set(query_terms)
    sentences = split_sentences(text)
    scored = [
        (sum(term_weight(term) for term in wanted.intersection(sentence_terms(sentence))), -position)
        for position, sentence in enumerate(sentences)
    ]
    matching = [i for i in range(len(sentences)) if scored[i][0] > 0] or [0]
    chosen = sorted(matching, key=lambda i: scored[i], reverse=True)[:limit]
    return [sentences[i] for i in sorted(chosen)]


@dataclass(frozen=True)
class Source:
    """One numbered piece of evidence: a retrieved paper and the sentences of it the model sees."""

    marker: int
    paper: Paper
    score: float
    sentences: list[str]  # in the abstract's order
    best_sentence: str  # the one with most question weight

    @property
    def text(self) -> str:
        return " ".join(self.sentences)


def numbered_evidence(sources: list[Source]) -> str:
    return "\n".join(f"[{source.marker}] {source.text}" for source in sources)


def select_evidence(
    ranked: list[tuple[Paper, float]],
    best: Callable[[Paper, int], list[str]],
    count_tokens: Callable[[str], int],
    max_sentences: int,
    token_budget: int,
) -> list[Source]:
    """The best sentences of the ranked papers, numbered from 1, within a model-token budget.

    A paper gets up to `max_sentences`, or fewer when that is what fits; the first paper that
    cannot fit even one sentence ends the evidence (a lower-ranked paper is less useful than room).
    The best paper always gets its best sentence, whatever its length.
    """
    sources: list[Source] = []
    used = 0
    for paper, score in ranked:
        marker = len(sources) + 1
        for count in range(max_sentences, 0, -1):
            sentences = best(paper, count)
            cost = count_tokens(f"[{marker}] " + " ".join(sentences))
            if used + cost <= token_budget or (not sources and count == 1):
                sources.append(Source(marker, paper, score, sentences, best(paper, 1)[0]))
                used += cost
                break
        else:
            break
    return sources
