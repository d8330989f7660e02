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

from qa_bot.bilingual import content_words, document_terms, term_units, unit_terms
from qa_bot.evidence import NUMERAL, Source
from qa_bot.hygiene import looks_like_instruction, plain_text
from qa_bot.query import NAME, Part, Query
from qa_bot.titles import name_in_title
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
# A count written in words is a number too: "five tasks" is not what "three ... tasks" says, and
# "seven types" is what "7 types" says. Chinese counts need their classifier (九种, 三个), as in NUMERAL.
ENGLISH_COUNTS = {word: str(value) for value, word in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve".split()) if value >= 2}
ENGLISH_COUNT = re.compile(rf"\b({'|'.join(ENGLISH_COUNTS)})\b(?!-)", re.IGNORECASE)
CHINESE_DIGITS = {char: value for value, char in enumerate("零一二三四五六七八九")} | {"两": 2}
CHINESE_COUNT = re.compile(
    r"(?<![一二两三四五六七八九十百千万亿])([二两三四五六七八九]?十[一二三四五六七八九]?|[二两三四五六七八九])(?=[个种项类次位篇名台层部张块倍])"
)
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
# A comparison's subject: "DOORPING reaches higher ASR" is not "NAIVEATTACK reaches a higher ASR".
COMPARATIVE = re.compile(
    r"\b(?:higher|lower|better|worse|faster|slower|larger|smaller|more|less|fewer|outperforms?|surpass(?:es)?|beats?)\b",
    re.IGNORECASE,
)

# A fact said of something else: "DFME was performed by four participants" where the evidence says
# "671 participants" (and "four ... models"); "NAIVEATTACK iteratively updates the triggers" where it
# says "DOORPING iteratively updates the triggers". What is said of a fact is the content words next
# to it in its clause: for a number, up to two on each side (not past a neighbouring number); for a
# name, up to three after it (what it does) before the next name.
CLAUSE_BREAK = re.compile(r"[,;，；、:：()（）\[\]]|\b(?:while|whereas|but|which)\b", re.IGNORECASE)
RESPECTIVELY = re.compile(r"\brespectively\b|分别|各自", re.IGNORECASE)  # pairs facts by order, not by place
JOINED_FACTS = re.compile(r"\s*[/／]\s*\+?\s*")  # "+8.2/+9.4", "10/30-shot": one context for both
GLUED_WORD = re.compile(r"-([A-Za-z]+)")  # "10-shot": the word is said of its number
NUMBER_CONTEXT, NAME_CONTEXT = 2, 3
# "users recruited from hospitals and prisons" riding on "users": an answer that paraphrases its
# evidence changes a word or two; three content words in a row that no sentence of the source holds
# are taken as made up. The price on check-tune: "It took first place" (for "ranks 1st") is dropped,
# and the answer quotes the evidence instead.
INVENTED_RUN = 3
SHARED_TO_MISATTRIBUTE = {"number": 1, "name": 2}  # a name's predicate must match in more than one word


@dataclass(frozen=True)
class FactSpan:
    start: int
    end: int
    kind: str  # "number" or "name"
    value: str  # as facts_of normalises it
    glued: str = ""  # the word written onto it ("shot" of "10-shot")


@dataclass(frozen=True)
class StatedFact:
    kind: str
    value: str
    context: frozenset[str]  # the content words said of it


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
    """The numbers, names and proper nouns a claim states: what a small model most often gets wrong."""
    names = [strip_plural(n) for n in NAME.findall(claim)]
    nouns = [noun for noun in PROPER_NOUN.findall(claim) if noun not in COMMON_CAPITALISED]
    return numbers_of(claim) + names + nouns


def numbers_of(text: str) -> list[str]:
    """The numbers a text states, in digits ("7,526" as "7526") or as a count in words."""
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
    if not same_comparison(claim, evidence):
        missing += ("(the subject of the comparison)",)
    # Names are facts, checked above; counted as words too, any name the evidence holds (the paper's
    # own above all) made half of "MGTAB has dogs" supported. The overlap is of the other words.
    names = unit_terms(" ".join([*NAME.findall(claim), own_name or ""]))
    units = [unit for unit in term_units(claim) if not unit & names]
    if sum(1 for unit in units if not all(term.isdigit() for term in unit)) < MIN_WORDS:
        return Support(missing, 0.0)
    return Support(missing, sum(1 for unit in units if unit & evidence_terms) / len(units))


def fact_spans(text: str) -> list[FactSpan]:
    """Where the text states its numbers (not the 1 of top-1) and names, in order."""
    spans = []
    for found in NUMBER_SPAN.finditer(text):
        glued = GLUED_WORD.match(text, found.end())
        value = normalize_number(NUMBER.match(found.group(0)).group(0))
        spans.append(FactSpan(found.start(), glued.end() if glued else found.end(), "number", value,
                              glued.group(1) if glued else ""))
    spans += [FactSpan(*found.span(), "number", ENGLISH_COUNTS[found.group(1).lower()])
              for found in ENGLISH_COUNT.finditer(text)]
    spans += [FactSpan(*found.span(), "number", str(chinese_count(found.group(1)))) for found in CHINESE_COUNT.finditer(text)]
    spans += [FactSpan(*found.span(), "name", strip_plural(found.group(0))) for found in NAME.finditer(text)]
    return sorted(spans, key=lambda span: span.start)


def fact_groups(text: str) -> list[list[FactSpan]]:
    """The facts, those of one kind written together ("10/30") in one group."""
    groups: list[list[FactSpan]] = []
    for span in fact_spans(text):
        last = groups[-1][-1] if groups else None
        if last and last.kind == span.kind and JOINED_FACTS.fullmatch(text[last.end : span.start]):
            groups[-1].append(span)
        else:
            groups.append([span])
    return groups


def plain_words(text: str) -> list[str]:
    return [word for word, _ in content_words(text) if not word[0].isdigit()]


@lru_cache(maxsize=4096)
def stated_facts(text: str) -> tuple[StatedFact, ...]:
    """Each number and name of the text with what the text says of it."""
    groups = fact_groups(text)
    facts = []
    for group in groups:
        kind, start, end = group[0].kind, group[0].start, group[-1].end
        same_kind = [other for other in groups if other[0].kind == kind and other is not group]
        left = max([found.end() for found in CLAUSE_BREAK.finditer(text, 0, start)]
                   + [other[-1].end for other in same_kind if other[-1].end <= start], default=0)
        clause_end = CLAUSE_BREAK.search(text, end)
        right = min([clause_end.start() if clause_end else len(text)]
                    + [other[0].start for other in same_kind if other[0].start >= end])
        before = plain_words(text[left:start])[-NUMBER_CONTEXT:] if kind == "number" else []
        after = plain_words(text[end:right])[: NUMBER_CONTEXT if kind == "number" else NAME_CONTEXT]
        context = frozenset([*before, *after, *(word for span in group for word in plain_words(span.glued))])
        facts += [StatedFact(kind, span.value, context) for span in group]
    return tuple(facts)


def misattributed(claim: str, sentences: list[str]) -> str | None:
    """A number or name of the claim that the evidence states, but says what the claim says of it
    of another number or name: the claim's fact, else None."""
    if RESPECTIVELY.search(claim):
        return None
    said = [fact for sentence in sentences for fact in stated_facts(sentence)]
    for fact in stated_facts(claim):
        same = [len(fact.context & other.context) for other in said if (other.kind, other.value) == (fact.kind, fact.value)]
        others = [len(fact.context & other.context) for other in said if other.kind == fact.kind and other.value != fact.value]
        if same and others and max(others) > max(same) and max(others) >= SHARED_TO_MISATTRIBUTE[fact.kind]:
            return fact.value
    return None


def holds_name(name: str, evidence_lower: str, own_name: str | None) -> bool:
    """The name is the paper's own, or the evidence writes it, whole or in parts ("EMO-2M" of
    "EMO-1M/2M/5M")."""
    lowered = name.lower()
    if name == own_name or lowered in evidence_lower:
        return True
    parts = [part for part in re.split(r"[-/]", lowered) if part]
    return len(parts) > 1 and all(len(part) > 1 and part in evidence_lower for part in parts)


def same_comparison(claim: str, evidence: str) -> bool:
    """A claim that compares ("X reaches a higher ASR than Y") has the subject the evidence gives
    the same comparison: the nearest name before the comparative word."""
    found = COMPARATIVE.search(claim)
    if not found:
        return True
    in_evidence = re.search(rf"\b{re.escape(found.group(0))}\b", evidence, re.IGNORECASE)
    if not in_evidence:
        return True
    claimed, stated = NAME.findall(claim[: found.start()]), NAME.findall(evidence[: in_evidence.start()])
    return not claimed or not stated or strip_plural(claimed[-1]) == strip_plural(stated[-1])


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
    (a small model echoes the prompt), not filler or an unfinished sentence, not a tautology, not
    the question's own words, and holding what the question asks for (a number, a name)."""
    body = TRAILING_PUNCTUATION.sub("", claim)
    if QUESTION_END.search(claim) or FILLER.search(body) or DANGLING.search(body) or is_tautology(body):
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
    asked = unit_terms(query.text) | question_frame_terms()
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
    ("7,526 participants" from "7,526 videos" and "671 participants"); nor does a fact the source
    says something else of."""
    found = support(claim, best_evidence(claim, source), name_in_title(source.paper.title))
    return Support(found.missing_facts + source_doubts(claim, source.sentences), found.overlap)


def source_doubts(claim: str, sentences: list[str]) -> tuple[str, ...]:
    """What the source as a whole contradicts: a fact it says of something else, a phrase it never uses."""
    doubts = []
    if fact := misattributed(claim, sentences):
        doubts.append(f"({fact}: said of something else)")
    if phrase := invented_phrase(claim, sentences):
        doubts.append(f"({phrase}: not in the source)")
    return tuple(doubts)


def invented_phrase(claim: str, sentences: list[str]) -> str | None:
    """INVENTED_RUN or more content words in a row (names and numbers aside: they are facts) that
    no sentence of the source holds, as one string; else None."""
    held = frozenset().union(*(evidence_profile(sentence)[2] for sentence in sentences))
    names = {name.lower() for name in NAME.findall(claim)}
    run: list[str] = []
    for word, glosses in content_words(claim):
        if word[0].isdigit() or word in names or word in held or not held.isdisjoint(glosses):
            if len(run) >= INVENTED_RUN:
                break
            run = []
        else:
            run.append(word)
    return " ".join(run) if len(run) >= INVENTED_RUN else None


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
