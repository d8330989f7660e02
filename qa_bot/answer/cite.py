"""The citation check: every sentence of an answer must be stated by the source it cites.

Two stages. Cheap filters first, for what a small model most often gets wrong and a rule sees at
once: the sentence must say something (not a question echoing the prompt, not filler or an
unfinished sentence, not the question's own words, holding what the question asks for), and every
number and name it states (acronym, CamelCase or letter-digit token) must appear in the cited
source. Then the judgment (`qa_bot.answer.judge`): the model is asked whether the source states what the
sentence says, and decides by meaning: a paraphrase sharing few words passes, a sentence that
copies the evidence's words but swaps who did what, or adds a claim, does not. Without a judge
(no model: retrieval-only evaluation) only the filters run.

Repairs, in order: a marker naming a source that was not given is removed; a sentence that its
markers do not support but another source does gets that source's marker instead (the other
source sharing most of its words is the one judged); a supported sentence with no marker gets the
marker of its best-supporting source; any other sentence is dropped, as are repeats of a sentence
already kept.
"""

import re
from dataclasses import dataclass
from functools import lru_cache

from qa_bot.search.bilingual import content_words, document_terms, term_units, unit_terms
from qa_bot.answer.evidence import NUMERAL, Source
from qa_bot.text.hygiene import looks_like_instruction, plain_text
from qa_bot.answer.judge import Judge
from qa_bot.answer.query import NAME, Part, Query
from qa_bot.collection.titles import name_in_title
from qa_bot.search.tokenize import question_frame_terms
from qa_bot.text.markers import MARKER, MARKER_TEXT, markers_of

# A sentence ends at . ! ? (not inside 93.1), at Chinese end punctuation, or at a line break; the
# markers written right after the end, on the same line, belong to it ("... users. [1]").
ANSWER_SENTENCE = re.compile(
    rf"\S.*?(?:(?:[.!?](?=[\s\[【]|$)|[。！？；])(?:[ \t]*{MARKER_TEXT})*|(?=\n)|$)", re.DOTALL
)
NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
# A count written in words is a number too: "five tasks" is not what "three ... tasks" says, and
# "seven types" is what "7 types" says. Chinese counts need their classifier (九种, 三个), as in NUMERAL.
ENGLISH_COUNTS = {word: str(value) for value, word in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve".split()) if value >= 2} | {
    "twice": "2", "double": "2", "doubled": "2", "triple": "3", "tripled": "3", "thrice": "3"}  # 两倍 is "twice"
ENGLISH_COUNT = re.compile(rf"\b({'|'.join(ENGLISH_COUNTS)})\b(?!-)", re.IGNORECASE)
CHINESE_DIGITS = {char: value for value, char in enumerate("零一二三四五六七八九")} | {"两": 2}
CHINESE_COUNT = re.compile(
    r"(?<![一二两三四五六七八九十百千万亿])([二两三四五六七八九]?十[一二三四五六七八九]?|[二两三四五六七八九])(?=[个种项类次位篇名台层部张块倍])"
)
# A Chinese decade names its century: 20 世纪 50 年代 is the 1950s, not 20 and 50.
CHINESE_DECADE = re.compile(r"(\d{1,2})\s*世纪\s*(\d)0\s*年代")
NUMBER_SPAN = re.compile(r"(?<![A-Za-z0-9.-])\d+(?:[.,]\d+)*(?:\s?%|×|倍)?(?![A-Za-z])")  # not the 1 of top-1 or 1K
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
    r"refer to (?:the )?(?:table|figure|paper|abstract)|for (?:more )?details|the following|"
    r"(?:more|further|additional) (?:details|information)|as (?:mentioned|stated|described|discussed|noted) "
    r"(?:above|earlier|before|previously)|(?:does|do|did) not (?:say|mention|specify|state|provide|report|give)|"
    r"(?:is|are) not (?:known|specified|mentioned|given|reported))|如下表|见表|下表|如下所示|详见|请参阅|参见|以下|"
    r"如上所述|更多(?:细节|信息)|(?:没有|未)(?:提到|提及|说明|给出|报告)",
    re.IGNORECASE,
)
DANGLING = re.compile(
    r"(?:\b(?:a|an|the|of|to|in|on|for|with|by|and|or|as|than|is|are|was|were|be|been|that|which|from|at|its|their|"
    r"include|includes|including|such as|like|between|into|using|via)|[的是了和与及在为对从把被将即如：:,，、])$",
    re.IGNORECASE,
)
# A proper noun the model may invent ("on the Waymo benchmark"): a capitalised word inside a sentence.
PROPER_NOUN = re.compile(r"(?<=[a-z0-9,;:)\u3400-\u9fff]\s)[A-Z][a-z]{2,}\b|(?<=[\u3400-\u9fff])[A-Z][a-z]{2,}\b")
COMMON_CAPITALISED = frozenset(
    "English Chinese Transformer Transformers Markov Gaussian Bayesian Euclidean Fourier Laplacian Boolean Monte Carlo "
    "Yes No The This That These Those It Its They Their".split()
)

@dataclass(frozen=True)
class Support:
    missing_facts: tuple[str, ...]  # numbers and names of the claim that the evidence lacks
    overlap: float  # share of the claim's content words the evidence holds: which sentence is quoted


@dataclass(frozen=True)
class CheckedSentence:
    text: str  # as shown: the claim with its (repaired) marker
    claim: str  # the sentence without markers
    marker: int
    evidence: str  # the source sentence that supports it best


def answer_sentences(text: str) -> list[str]:
    """The answer's sentences, each with the markers written after it ("... users. [1]" included)."""
    return [s.strip() for s in ANSWER_SENTENCE.findall(text) if s.strip()]


def claim_of(sentence: str) -> str:
    return LEAD_IN.sub("", MARKER.sub("", plain_text(sentence)).strip()).strip()


def facts_of(claim: str) -> list[str]:
    """The numbers, names and proper nouns a claim states: what a small model most often gets wrong."""
    names = [strip_plural(n) for n in NAME.findall(claim)]
    nouns = [noun for noun in PROPER_NOUN.findall(claim) if noun not in COMMON_CAPITALISED]
    return numbers_of(claim) + names + nouns


def numbers_of(text: str) -> list[str]:
    """The numbers a text states, in digits ("7,526" as "7526") or as a count in words."""
    text = CHINESE_DECADE.sub(lambda decade: f"{int(decade[1]) - 1}{decade[2]}0", text)
    digits = [normalize_number(n) for n in NUMBER.findall(text)]
    english = [ENGLISH_COUNTS[word.lower()] for word in ENGLISH_COUNT.findall(text)]
    return digits + english + [str(chinese_count(count)) for count in CHINESE_COUNT.findall(text)]


def chinese_count(numeral: str) -> int:
    """二 -> 2, 十 -> 10, 十二 -> 12, 二十 -> 20, 二十三 -> 23 (what CHINESE_COUNT matches)."""
    if "十" not in numeral:
        return CHINESE_DIGITS[numeral]
    tens, _, units = numeral.partition("十")
    return CHINESE_DIGITS.get(tens, 1) * 10 + CHINESE_DIGITS.get(units, 0)


def answer_spans(claim: str, evidence: str) -> list[str]:
    """The numbers (with a unit sign) and names a claim states, as its evidence writes them: what
    the source card highlights inside the evidence sentence."""
    wanted = set(facts_of(claim))
    numbers = [span for span in NUMBER_SPAN.findall(evidence) if normalize_number(NUMBER.match(span).group(0)) in wanted]
    return list(dict.fromkeys(numbers + [name for name in NAME.findall(evidence) if strip_plural(name) in wanted]))


def normalize_number(number: str) -> str:
    """"7,526" and "7526" are the same number; "1.5" keeps its decimal point."""
    return re.sub(r",(?=\d{3}\b)", "", number)


def strip_plural(name: str) -> str:
    return name[:-1] if re.fullmatch(r"[A-Z0-9-]+s", name) else name


@lru_cache(maxsize=1024)
def evidence_profile(evidence: str) -> tuple[frozenset[str], str, frozenset[str]]:
    """The evidence's numbers, lower-cased text and terms: the same few sources are checked against
    every sentence of an answer, so they are tokenized once."""
    numbers = frozenset(numbers_of(evidence))
    return numbers, evidence.lower(), frozenset(document_terms(evidence))


def support(claim: str, evidence: str, own_name: str | None = None) -> Support:
    """How well one evidence sentence supports a claim; `own_name` is the cited paper's name,
    which a claim may state though the sentence says "we" ("BOLT adds an auxiliary task")."""
    evidence_numbers, evidence_lower, evidence_terms = evidence_profile(evidence)
    missing = tuple(
        fact
        for fact in facts_of(claim)
        if (fact not in evidence_numbers if fact[0].isdigit() else not holds_name(fact, evidence_lower, own_name))
    )
    # Names are facts, checked above; counted as words too, any name the evidence holds (the paper's
    # own above all) made half of "MGTAB has dogs" supported. The overlap is of the other words.
    names = unit_terms(" ".join([*NAME.findall(claim), own_name or ""]))
    units = [unit for unit in term_units(claim) if not unit & names]
    return Support(missing, sum(1 for unit in units if unit & evidence_terms) / len(units) if units else 0.0)


def holds_name(name: str, evidence_lower: str, own_name: str | None) -> bool:
    """The name is the paper's own, or the evidence writes it, whole or in parts ("EMO-2M" of
    "EMO-1M/2M/5M")."""
    lowered = name.lower()
    if name == own_name or lowered in evidence_lower:
        return True
    parts = [part for part in re.split(r"[-/]", lowered) if part]
    return len(parts) > 1 and all(len(part) > 1 and part in evidence_lower for part in parts)


class CitationChecker:
    """Checks an answer's sentences one at a time (so an answer can be checked while it streams),
    keeping the supported ones with repaired markers."""

    def __init__(self, sources: list[Source], query: Query | None = None, judge: Judge | None = None,
                 citable: set[int] | None = None):
        self.sources = sources  # as the writer saw them: the judge is shown the same
        # Only these may be cited (all, when None): the sources judged to answer the question.
        self.by_marker = {source.marker: source for source in sources if citable is None or source.marker in citable}
        self.query = query
        self.judge = judge
        self.kept: list[CheckedSentence] = []
        self.dropped: list[str] = []

    def check(self, sentence: str) -> CheckedSentence | None:
        claim = claim_of(sentence)
        marker = None
        if says_something(claim, self.query) and all(claim != earlier.claim for earlier in self.kept):
            marker = self.supporting_marker(claim, markers_of(sentence))
        if marker is None:
            self.dropped.append(sentence)
            return None
        checked = CheckedSentence(with_marker(claim, marker), claim, marker, best_evidence(claim, self.by_marker[marker]))
        self.kept.append(checked)
        return checked

    def supporting_marker(self, claim: str, markers: list[int]) -> int | None:
        """The first cited source that states the claim; else, of the others holding its numbers and
        names, the one sharing most of its words, if it states it."""
        cited = [marker for marker in dict.fromkeys(markers) if marker in self.by_marker]
        for marker in cited:
            if not missing_facts(claim, self.by_marker[marker]) and self.judged(claim, marker):
                return marker
        found = {marker: source_support(claim, source) for marker, source in self.by_marker.items() if marker not in cited}
        others = [(support.overlap, -marker) for marker, support in found.items() if not support.missing_facts]
        if not others:
            return None
        best = -max(others)[1]
        return best if self.judged(claim, best) else None

    def judged(self, claim: str, marker: int) -> bool:
        """The judge finds that the source states the claim (always, without a judge)."""
        question = self.query.text if self.query else ""
        return self.judge is None or self.judge.supports(self.sources, marker, claim, question)


def says_something(claim: str, query: Query | None) -> bool:
    """Whether a claim could answer the question at all, whatever its evidence: not a question
    (a small model echoes the prompt), not filler or an unfinished sentence, not a tautology, not a
    bare number, not the question's own words, and holding what the question asks for (a number,
    a name)."""
    body = TRAILING_PUNCTUATION.sub("", claim)
    if QUESTION_END.search(claim) or FILLER.search(body) or DANGLING.search(body) or is_tautology(body):
        return False
    if sum(1 for word, _ in content_words(body) if not word[0].isdigit()) < MIN_WORDS:
        return False
    if looks_like_instruction(body):  # the model obeying (or repeating) an instruction from the corpus
        return False
    return query is None or (answers(body, query) and not restates(body, query))


def is_tautology(claim: str) -> bool:
    """A claim that says one thing of itself ("It is a model that can model language models"):
    a content word it repeats makes up a third or more of what it says."""
    words = [word for word, _ in content_words(claim) if not word.isdigit()]
    repeated = max((words.count(word) for word in words), default=0)
    # Three different words, each once, are no tautology ("MGTAB has 7 types of relationships").
    return len(words) >= 3 and repeated >= 2 and repeated * 3 >= len(words)


def restates(claim: str, query: Query) -> bool:
    """A claim made only of the question's own words ("MDM is based on an assumption" for "What
    assumption is MDM based on?") answers nothing; for a yes/no question it is the answer."""
    if any(part.asks == "yes_no" for part in query.parts):
        return False
    if set(numbers_of(claim)) - set(numbers_of(query.text)):  # a number the question lacks is an answer ("7 types")
        return False
    asked = query.words.every_term | question_frame_terms()
    return all(unit & asked for unit in term_units(claim))


def answers(claim: str, query: Query) -> bool:
    """Whether the claim holds what some part of the question asks for."""
    return any(answers_part(claim, part) for part in query.parts)


def answers_part(claim: str, part: Part) -> bool:
    """A number for "how many", a name for "which method"; for a question that asks for no such
    thing, any claim its evidence supports. (Requiring a word of the question too dropped 1 of 16
    labelled supported sentences of check-tune and kept no fewer unsupported ones: an answer to
    "how does X deal with Y?" need not repeat "deal".)"""
    if part.asks == "number":
        return NUMERAL.search(claim) is not None
    if part.asks in ("name", "entity"):
        return NAME.search(claim) is not None
    return True


def check_answer(text: str, sources: list[Source], query: Query | None = None, judge: Judge | None = None) -> CitationChecker:
    checker = CitationChecker(sources, query, judge)
    for sentence in answer_sentences(text):
        checker.check(sentence)
    return checker


def source_support(claim: str, source: Source) -> Support:
    """How well the source's best sentence for the claim supports it: one sentence at a time, so the
    number of one and the words of another do not make a claim the paper states."""
    return support(claim, best_evidence(claim, source), name_in_title(source.paper.title))


def missing_facts(claim: str, source: Source) -> tuple[str, ...]:
    """The claim's numbers and names that the source's best sentence for it lacks."""
    return source_support(claim, source).missing_facts


def best_evidence(claim: str, source: Source) -> str:
    """The source sentence that supports the claim best (all its facts first, then most of its
    words): what the citation quotes."""
    own_name = name_in_title(source.paper.title)

    def backing(sentence: str) -> tuple[bool, float]:
        found = support(claim, sentence, own_name)
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
