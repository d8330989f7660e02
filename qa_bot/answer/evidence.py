"""The model's evidence: the sentences of the retrieved papers that best match a question (those
that hold what it asks for favoured), numbered, within a budget of model tokens.

The sentences and their choice are `qa_bot.text.sentences`'s: a sentence scores the summed IDF of
the distinct query terms it contains, through the same bilingual terms as retrieval, so an English
question picks the right sentence of a Chinese abstract.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass

from qa_bot.collection.corpus import Paper
from qa_bot.answer.query import NAME, Part, Query, states_metadata

# A number, in digits or words ("7", "seven", "六种", "一亿"): what a quantity question asks for.
# Not "一种", "一组" ("a kind of", "a set of"), nor "one", which count nothing, nor the word of a
# compound ("a two-level scheme" does not answer "how much faster").
NUMERAL = re.compile(
    r"\d|(?!一[^十百千万亿])[一二两三四五六七八九十百千万亿]+\s*(?:倍|个|种|项|类|次|位|篇|名|台|年|天|组|层|部|张|块|亿|万|%)|"
    r"\b(?:two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|hundreds?|thousands?|millions?|"
    r"billions?|dozens?|twice|double|half)\b(?!-)",
    re.IGNORECASE,
)


def asked_for(part: Part | Query, name: str | None, named: tuple[str, ...] = ()) -> Callable[[str, float], bool] | None:
    """What a question (or one part of it) asks for, as a test of a sentence and of how much of
    the question it matches: a number, for a quantity, in a sentence that matches the question too;
    for "which method or model", the paper's name; for "which dataset" (or "which method" when the
    question already names the paper), another name (ERA5 for "On which dataset was KoopmanLab
    validated?"); for what abstracts rarely
    hold (code, hardware), a sentence that states it. None: nothing such."""
    if part.asks == "number":
        return lambda sentence, matched: matched > 0 and NUMERAL.search(sentence) is not None
    if part.asks == "entity" or (part.asks == "name" and name in named):
        known = {*named, name}
        return lambda sentence, matched: matched > 0 and any(found not in known for found in NAME.findall(sentence))
    if part.asks == "name" and name is not None:
        return lambda sentence, matched: name in sentence
    if part.asks == "metadata":
        return lambda sentence, matched: states_metadata(part.metadata, sentence)
    return None


def answer_bonus(
    part: Part | Query, name: str | None, weight: float, named: tuple[str, ...] = ()
) -> Callable[[str, float], float] | None:
    """`weight` more for a sentence that holds what the question asks for (so "Faith achieves a
    2.6x speedup" beats "we propose Faith, a framework for GPUs", and the sentence that introduces
    "RELIANT" answers "which method ...?")."""
    states = asked_for(part, name, named)
    return None if states is None else (lambda sentence, matched: weight if states(sentence, matched) else 0.0)


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
