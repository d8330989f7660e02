"""Monolingual terms for mixed English and Chinese text, the same for documents and queries.

Text is split into runs of Chinese characters and runs of everything else. English runs are
lower-cased, stop words removed and stemmed with Snowball (PyStemmer); an acronym's plural
("GNNs") becomes the acronym. Chinese runs are segmented into words with jieba (the rjieba
binding, about 25 times faster than pure-Python jieba here) and stop words removed. Latin words
inside Chinese text (GNN, GPU, MGG) go through the English path, so they match English text.
Not handled: other scripts (they are dropped), traditional Chinese as a variant of simplified.
"""

import re
from functools import cache, lru_cache
from importlib import resources

import rjieba
import Stemmer

CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
LATIN_WORD = re.compile(r"[A-Za-z0-9]+(?:\.[0-9]+)?")
HYPHENATED = re.compile(r"(?<![A-Za-z])[A-Za-z]+(?:-[A-Za-z]+)+")  # from a word's start: 10x faster, same matches
ACRONYM_PLURAL = re.compile(r"^([A-Z][A-Z0-9]+)s$")
CJK_CHAR = re.compile(r"[\u3400-\u9fff]")

_stemmer = Stemmer.Stemmer("english")


@cache
def stop_words(lang: str) -> frozenset[str]:
    return word_list(f"stopwords_{lang}.txt")


@cache
def question_frame_terms() -> frozenset[str]:
    """The terms of data/question_frame.txt: English words stemmed, Chinese words as they are."""
    words = word_list("question_frame.txt")
    return frozenset(_stemmer.stemWords([w for w in words if not CJK_CHAR.match(w)])) | {w for w in words if CJK_CHAR.match(w)}


def word_list(name: str) -> frozenset[str]:
    """A data file's words, one per line; lines starting with # are comments."""
    text = resources.files("qa_bot").joinpath(f"data/{name}").read_text("utf-8")
    return frozenset(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def split_runs(text: str) -> list[tuple[bool, str]]:
    """(is_chinese, run) pieces of the text, in order."""
    runs, position = [], 0
    for match in CJK_RUN.finditer(text):
        if match.start() > position:
            runs.append((False, text[position : match.start()]))
        runs.append((True, match.group()))
        position = match.end()
    if position < len(text):
        runs.append((False, text[position:]))
    return runs


def english_terms(text: str) -> list[str]:
    """Stemmed words; a hyphenated compound also counts joined ("micro-expressions" -> microexpress),
    since writers and translators spell the same term both ways."""
    compounds = [match.replace("-", "") for match in HYPHENATED.findall(text)] if "-" in text else []
    return [term for term in map(english_term, LATIN_WORD.findall(text) + compounds) if term is not None]


@lru_cache(maxsize=1 << 19)
def english_term(word: str) -> str | None:
    """The stemmed term of one word, or None for a stop word or a lone letter. Cached: a
    collection repeats its words, and this per-word work was most of the cost of indexing."""
    word = ACRONYM_PLURAL.sub(r"\1", word).lower()
    if word in stop_words("en") or (len(word) <= 1 and not word.isdigit()):
        return None
    return _stemmer.stemWord(word)


def chinese_words(run: str) -> list[str]:
    """jieba's words of a Chinese run, stop words included (the bilingual bridge needs them)."""
    return rjieba.cut(run)


def chinese_terms(words: list[str]) -> list[str]:
    stops = stop_words("zh")
    return [word for word in words if word not in stops and CJK_CHAR.match(word)]
