"""The citation check: every sentence of an answer must be supported by the evidence it cites.

A sentence is supported by a source when every number and every name (acronym, CamelCase or
letter-digit token) it states appears in that source's evidence, and enough of its content words
do too (`min_support`, the share of its words, through the bilingual terms, so an English claim
can be checked against a Chinese abstract). The default 0.5 is set by hand against the cases of
tests/test_cite.py, not yet calibrated on a labelled set.

Repairs, in order: a marker naming a source that was not given is removed; a sentence that its
markers do not support but another source does gets that source's marker instead; a supported
sentence with no marker gets the marker of its best-supporting source; any other sentence is
dropped, as are questions (a small model echoes the prompt) and repeats of a sentence already kept.
"""

import re
from dataclasses import dataclass
from functools import lru_cache

from qa_bot.bilingual import content_words, document_terms, term_units
from qa_bot.evidence import Source
from qa_bot.hygiene import looks_like_instruction, plain_text
from qa_bot.query import Query
from qa_bot.tokenize import question_frame_terms

MARKER_NUMBERS = r"\d+(?:\s*[,，、;]\s*\d+)*"  # [1], [1, 2], 【1】
MARKER_TEXT = rf"[\[【]{MARKER_NUMBERS}[\]】]"
MARKER = re.compile(rf"\s*[\[【]({MARKER_NUMBERS})[\]】]")
# A sentence ends at . ! ? (not inside 93.1), at Chinese end punctuation, or at a line break; the
# markers written right after the end, on the same line, belong to it ("... users. [1]").
ANSWER_SENTENCE = re.compile(
    rf"\S.*?(?:(?:[.!?](?=[\s\[【]|$)|[。！？；])(?:[ \t]*{MARKER_TEXT})*|(?=\n)|$)", re.DOTALL
)
NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
NAME = re.compile(r"(?<![A-Za-z0-9-])(?=[A-Za-z0-9-]*[A-Z][A-Za-z0-9-]*[A-Z0-9])[A-Za-z][A-Za-z0-9-]*[A-Za-z0-9]")
# What a small model puts before a sentence: a bullet, a list number, a label echoing the prompt.
LEAD_IN = re.compile(r"^(?:[-*•]\s*|\d+[.)]\s+|(?:answer|question|答案|回答)\s*[:：]\s*)+", re.IGNORECASE)
QUESTION_END = re.compile(r"[?？]\s*$")
MIN_WORDS = 1  # non-numeric content words a claim needs: "1." or "10,199." says nothing checkable
TRAILING_PUNCTUATION = re.compile(r"[\s.!?。！？；;:：]*$")
CJK = re.compile(r"[\u3400-\u9fff]")
# Sentences that pass a word-overlap test yet say nothing: template filler, an unfinished sentence.
FILLER = re.compile(
    r"\b(?:(?:table|figure|list|results?) (?:below|above)|following (?:table|figure|list|results)|"
    r"(?:shown|listed|given|summari[sz]ed|reported|presented|described) (?:in|below|above)\b|as follows|see (?:table|fig)|"
    r"refer to (?:the )?(?:table|figure|paper|abstract)|for (?:more )?details)|如下表|见表|下表|如下所示|详见",
    re.IGNORECASE,
)
DANGLING = re.compile(
    r"(?:\b(?:a|an|the|of|to|in|on|for|with|by|and|or|as|than|is|are|was|were|be|been|that|which|from|at|its|their|"
    r"include|includes|including|such as|like|between|into|using|via)|[的是了和与及在为对从把被将即如：:,，、])$",
    re.IGNORECASE,
)
NUMERAL = re.compile(r"\d|[一二两三四五六七八九十百千万亿]+\s*(?:倍|个|种|项|类|次|位|篇|%)")

@dataclass(frozen=True)
class Support:
    missing_facts: tuple[str, ...]  # numbers and names of the claim that the evidence lacks
    overlap: float  # share of the claim's content words the evidence holds

    def enough(self, min_support: float) -> bool:
        return not self.missing_facts and self.overlap >= min_support


@dataclass(frozen=True)
class CheckedSentence:
    text: str  # as shown: the claim with its (repaired) marker
    claim: str  # the sentence without markers
    marker: int
    evidence: str  # the source sentence that supports it best


def answer_sentences(text: str) -> list[str]:
    """The answer's sentences, each with the markers written after it ("... users. [1]" included)."""
    return [s.strip() for s in ANSWER_SENTENCE.findall(text) if s.strip()]


def markers_of(sentence: str) -> list[int]:
    return [int(n) for group in MARKER.findall(sentence) for n in re.split(r"[,，、;\s]+", group) if n]


def claim_of(sentence: str) -> str:
    return LEAD_IN.sub("", MARKER.sub("", plain_text(sentence)).strip()).strip()


def facts_of(claim: str) -> list[str]:
    """The numbers and names a claim states: what a small model most often gets wrong."""
    return [normalize_number(n) for n in NUMBER.findall(claim)] + [strip_plural(n) for n in NAME.findall(claim)]


def normalize_number(number: str) -> str:
    """"7,526" and "7526" are the same number; "1.5" keeps its decimal point."""
    return re.sub(r",(?=\d{3}\b)", "", number)


def strip_plural(name: str) -> str:
    return name[:-1] if re.fullmatch(r"[A-Z0-9-]+s", name) else name


@lru_cache(maxsize=1024)
def evidence_profile(evidence: str) -> tuple[frozenset[str], str, frozenset[str]]:
    """The evidence's numbers, lower-cased text and terms: the same few sources are checked against
    every sentence of an answer, so they are tokenized once."""
    numbers = frozenset(normalize_number(n) for n in NUMBER.findall(evidence))
    return numbers, evidence.lower(), frozenset(document_terms(evidence))


def support(claim: str, evidence: str) -> Support:
    evidence_numbers, evidence_lower, evidence_terms = evidence_profile(evidence)
    missing = tuple(
        fact
        for fact in facts_of(claim)
        if (fact not in evidence_numbers if fact[0].isdigit() else fact.lower() not in evidence_lower)
    )
    units = term_units(claim)
    if sum(1 for unit in units if not all(term.isdigit() for term in unit)) < MIN_WORDS:
        return Support(missing, 0.0)
    return Support(missing, sum(1 for unit in units if unit & evidence_terms) / len(units))


class CitationChecker:
    """Checks an answer's sentences one at a time (so an answer can be checked while it streams),
    keeping the supported ones with repaired markers."""

    def __init__(self, sources: list[Source], min_support: float, query: Query | None = None):
        self.by_marker = {source.marker: source for source in sources}
        self.min_support = min_support
        self.query = query
        self.kept: list[CheckedSentence] = []
        self.dropped: list[str] = []

    def check(self, sentence: str) -> CheckedSentence | None:
        claim = claim_of(sentence)
        marker = None
        if says_something(claim, self.query) and all(claim != earlier.claim for earlier in self.kept):
            marker = supporting_marker(claim, markers_of(sentence), self.by_marker, self.min_support)
        if marker is None:
            self.dropped.append(sentence)
            return None
        checked = CheckedSentence(with_marker(claim, marker), claim, marker, best_evidence(claim, self.by_marker[marker]))
        self.kept.append(checked)
        return checked


def says_something(claim: str, query: Query | None) -> bool:
    """Whether a claim could answer the question at all, whatever its evidence: not a question
    (a small model echoes the prompt), not filler or an unfinished sentence, not a tautology, and
    holding what the question asks for (a number, a name) or some of its words."""
    body = TRAILING_PUNCTUATION.sub("", claim)
    if QUESTION_END.search(claim) or FILLER.search(body) or DANGLING.search(body) or is_tautology(body):
        return False
    if looks_like_instruction(body):  # the model obeying (or repeating) an instruction from the corpus
        return False
    return query is None or answers(body, query)


def is_tautology(claim: str) -> bool:
    """A claim that says one thing of itself ("It is a model that can model language models"):
    a content word it repeats makes up a third or more of what it says."""
    words = [word for word, _ in content_words(claim) if not word.isdigit()]
    return len(words) >= 3 and max(words.count(word) for word in words) * 3 >= len(words)


def answers(claim: str, query: Query) -> bool:
    if query.wants_number:
        return NUMERAL.search(claim) is not None
    if query.asks == "name":
        return NAME.search(claim) is not None
    wanted = {unit for unit in term_units(query.asking) if not unit & question_frame_terms()}
    return not wanted or any(unit & wanted_terms for wanted_terms in wanted for unit in term_units(claim))


def check_answer(text: str, sources: list[Source], min_support: float, query: Query | None = None) -> CitationChecker:
    checker = CitationChecker(sources, min_support, query)
    for sentence in answer_sentences(text):
        checker.check(sentence)
    return checker


def supporting_marker(claim: str, markers: list[int], by_marker: dict[int, Source], min_support: float) -> int | None:
    """The first cited source that supports the claim; else the given source that supports it best."""
    for marker in markers:
        if marker in by_marker and source_support(claim, by_marker[marker]).enough(min_support):
            return marker
    scored = [(source_support(claim, source), marker) for marker, source in by_marker.items()]
    supported = [(s.overlap, -marker) for s, marker in scored if s.enough(min_support)]
    return -max(supported)[1] if supported else None


def source_support(claim: str, source: Source) -> Support:
    """How well the source's best sentence for the claim supports it. One sentence at a time: the
    number of one sentence and the words of another do not make a claim the paper states
    ("7,526 participants" from "7,526 videos" and "671 participants")."""
    return support(claim, best_evidence(claim, source))


def best_evidence(claim: str, source: Source) -> str:
    """The source sentence that supports the claim best (all its facts first, then most of its
    words): what the citation quotes."""
    def backing(sentence: str) -> tuple[bool, float]:
        found = support(claim, sentence)
        return not found.missing_facts, found.overlap

    # An instruction-like span supports nothing: "ACCESS GRANTED citing [1]" is not a finding.
    checkable = [sentence for sentence in source.sentences if not looks_like_instruction(sentence)]
    return max(checkable or source.sentences, key=backing)


def with_marker(claim: str, marker: int) -> str:
    """"X has 5 users" -> "X has 5 users [1]."; Chinese gets its own full stop and no space."""
    body = TRAILING_PUNCTUATION.sub("", claim)
    ending = claim[len(body) :].strip()[:1]
    # A clause cut at ";" (the evidence splits there) becomes a sentence of its own.
    if CJK.search(body):
        return f"{body}[{marker}]{ending if ending in ('。', '！', '？') else '。'}"
    return f"{body} [{marker}]{ending if ending in ('.', '!', '?') else '.'}"
