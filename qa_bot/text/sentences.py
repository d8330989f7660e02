"""The sentences of a text, and those that best match a set of query terms: the search snippet
and the sentences the evidence is chosen from.

Sentences are verbatim substrings of the text (so they can be quoted and checked). Not handled:
abbreviations such as "e.g." or "Fig. 2" end an English sentence early.
"""

import math
import re
from collections.abc import Callable
from functools import lru_cache

from qa_bot.text.hygiene import has_words, looks_like_instruction, text_segments

# Left at a stretch's start by a boundary: the full stop after "... [3]" opens the next sentence.
LEADING_PUNCTUATION = re.compile(r"^[\s.,;:!?。，；：！？、]+")
SENTENCE = re.compile(r".+?(?:[.!?](?=\s+[A-Z0-9(\"'])|[。！？!?；;](?!\d)|$)", re.DOTALL)


def split_sentences(text: str) -> list[str]:
    """The sentences of `text`, each stripped, each a substring of `text`, none empty. Markup,
    markers and instructions to the assistant end a sentence (`hygiene.text_segments`); a text of
    nothing else is one sentence."""
    return list(_sentences(text))


@lru_cache(maxsize=4096)  # an abstract is split for its snippet, its title and its evidence
def _sentences(text: str) -> tuple[str, ...]:
    sentences = tuple(LEADING_PUNCTUATION.sub("", s).rstrip() for segment in text_segments(text)
                      for s in SENTENCE.findall(segment) if has_words(s))
    return sentences or (text.strip(),)


def without_instructions(sentences: list[str]) -> list[str]:
    """The sentences that do not address the assistant. A sentence that does would also match
    in the sentences joined by line breaks, so one search usually settles all of them."""
    if not looks_like_instruction("\n".join(sentences)):
        return sentences
    return [sentence for sentence in sentences if not looks_like_instruction(sentence)]


def best_sentences(
    query_terms: list[str],
    text: str,
    term_weight: Callable[[str], float],
    sentence_terms: Callable[[str], list[str]],
    limit: int = 1,
    bonus: Callable[[str, float], float] | None = None,
) -> list[str]:
    """The `limit` sentences with most query weight (plus `bonus(sentence, weight)`), in the order
    they appear in the text; only sentences with some, unless none has any (then the first)."""
    wanted = set(query_terms)
    # What addresses the assistant is never evidence (unless the abstract holds nothing else).
    sentences = without_instructions(split_sentences(text)) or split_sentences(text)
    scored = []
    for position, sentence in enumerate(sentences):
        weight = matched_weight(wanted, sentence, term_weight, sentence_terms)
        scored.append((weight + (bonus(sentence, weight) if bonus else 0.0), -position))
    matching = [i for i in range(len(sentences)) if scored[i][0] > 0] or [0]
    chosen = sorted(matching, key=lambda i: scored[i], reverse=True)[:limit]
    return [sentences[i] for i in sorted(chosen)]


def matched_weight(wanted: set[str], sentence: str, term_weight, sentence_terms) -> float:
    """The summed weight of the wanted terms a sentence holds (fsum: the same whatever order the set
    gives them in, which varies with each process's string hashing and used to tip near-ties)."""
    return math.fsum(term_weight(term) for term in wanted.intersection(sentence_terms(sentence)))
