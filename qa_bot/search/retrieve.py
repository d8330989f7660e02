"""Bilingual retrieval: a query in, the top papers with scores and their best sentence out."""

import math
import time
from dataclasses import dataclass

from qa_bot.search.bilingual import Words, document_terms, sentence_terms
from qa_bot.collection.corpus import Corpus, Paper
from qa_bot.text.sentences import best_sentences
from qa_bot.text.hygiene import require_text
from qa_bot.search.index import Index
from qa_bot.search.indexing import Progress, open_collection
from qa_bot.search.shards import ShardSet, open_shards
from qa_bot.settings import Settings
from qa_bot.search.tokenize import LATIN_WORD, english_terms, question_frame_terms


NAMED_FIRST_DEPTH = 50  # papers re-ordered by the names they hold
WORD_BEGINNING = 5  # letters a word shares with its other forms ("mitochondrion", "mitochondrial")


@dataclass(frozen=True)
class Hit:
    rank: int
    paper: Paper
    score: float
    snippet: str


@dataclass(frozen=True)
class SearchResult:
    query: str
    hits: list[Hit]
    elapsed_ms: float
    missing_shards: tuple[str, ...] = ()  # the shards that did not answer (allow_partial): a partial result


@dataclass(frozen=True)
class Coverage:
    share: float  # of the query's weight
    shared_words: int
    query_words: int
    holds_most_specific: bool  # the query word the corpus uses least (or never)

    def enough(self, min_share: float, min_shared_words: int, short_query_words: int) -> bool:
        """Whether the paper covers the query: enough of its weight, more than one lucky word ("How
        big is the moon?" shares only "big" with a paper, which is half its weight), and, for a
        short query, its most specific word ("What are the side effects of aspirin?" needs "aspirin")."""
        if self.query_words <= short_query_words and not self.holds_most_specific:
            return False
        return self.share >= min_share and self.shared_words >= min(min_shared_words, self.query_words)


class Retriever:
    """Search and the collection-wide weights the answer stage asks for, over one index or a set of
    shards (`qa_bot.search.shards.ShardSet`), which answer the same questions with the same values."""

    def __init__(self, corpus: Corpus, index: "Index | ShardSet", from_cache: bool, changes: tuple[int, int]):
        self.corpus = corpus
        self.index = index
        self.from_cache = from_cache
        self.changes = changes  # papers added and removed by the update this opening made

    @classmethod
    def open(cls, settings: Settings, progress: Progress | None = None) -> "Retriever":
        """The corpus folder's papers and index, from the cache, updated with the files that changed;
        with `settings.shards`, its built shards (held by Ray actors with `settings.ray_address`)."""
        if settings.shards:
            shards = open_shards(settings)
            return cls(shards.corpus(), shards, *shards.opened())
        collection = open_collection(settings, progress)
        return cls(collection.corpus, collection.index, collection.from_cache, (collection.added, collection.removed))

    def search(self, query: "str | Words", k: int, include: tuple[str, ...] = (), names: tuple[str, ...] = ()) -> SearchResult:
        """The k best papers that share at least one term with the query, best first; the papers
        named in `include` (a follow-up's earlier citations) are candidates whatever their terms.
        Of the best, those that hold more of `names` (the methods, datasets the question names) come
        first: a name says which paper is meant better than the words around it ("Under what licence
        is the DESTA code released?" ranked a paper about code above DESTA)."""
        started = time.perf_counter()
        words = words_of(query)
        units, terms = words.units, words.terms
        carried = [self.corpus.position(pid) for pid in include if self.corpus.has(pid)]
        top, scores = self.index.best(units, max(k, NAMED_FIRST_DEPTH) if names else k, carried)
        ranked = list(zip(top.tolist(), scores.tolist()))
        if names:
            held = [self.papers_holding(name) for name in names]
            ranked = sorted(ranked, key=lambda found: -sum(found[0] in papers for papers in held))[:k]
        hits = [
            Hit(rank, self.corpus.paper_at(i), score, self.snippet(terms, self.corpus.paper_at(i)))
            for rank, (i, score) in enumerate(ranked, start=1)
        ]
        return SearchResult(words.text, hits, (time.perf_counter() - started) * 1000, self.index.missing_shards)

    def snippet(self, terms: list[str], paper: Paper) -> str:
        return self.best_sentences(terms, paper, 1)[0]

    def best_sentences(
        self, terms: list[str], paper: Paper, limit: int, fallback_terms: list[str] = (), bonus=None
    ) -> list[str]:
        """The sentences with most weight of `terms`, or of `fallback_terms` if none holds any;
        `bonus(sentence, weight)` is added to a sentence's weight."""
        if fallback_terms and not set(terms) & set(document_terms(paper.text)):
            terms = fallback_terms
        return best_sentences(terms, paper.text, self.term_weight, sentence_terms, limit, bonus)

    def coverage(self, query: "str | Words", paper: Paper) -> "Coverage":
        """How much of the query the paper holds: each query word weighs the IDF of its most common
        known term (so 论文 weighs no more than its gloss "paper"; a word the corpus never uses
        weighs the most) and counts when the paper contains one of its terms. Near 0 for a
        question about something the papers never mention."""
        paper_terms = set(document_terms(paper.indexed_text))  # a given title is the paper's words too
        total = held = 0.0
        frame = question_frame_terms()
        units = [unit for unit in words_of(query).term_units if not unit & frame]
        shared, most_specific = 0, (-math.inf, False)  # BM25Okapi's IDFs can be below -1
        for unit in units:
            weight = min((self.term_weight(term) for term in unit if self.index.knows(term)), default=None)
            weight = self.max_weight if weight is None else weight
            total += weight
            holds = bool(unit & paper_terms)
            if holds:
                held += weight
                shared += 1
            if (weight, holds) > most_specific:  # of equally specific words, one held is enough
                most_specific = (weight, holds)
        return Coverage(held / total if total else 0.0, shared, len(units), most_specific[1])

    def unused_words(self, query: "str | Words") -> list[str]:
        """The query's content words that no abstract uses in any form: neither the word (a Chinese
        word, nor any of its glosses) nor a word that begins as it does. A Chinese run with no gloss
        is left out (as often as not a cut across two words), and so are numbers."""
        frame = question_frame_terms()
        return [word for word, glosses in words_of(query).pairs
                if (glosses or word.isascii()) and not frame & {word, *glosses} and not self._uses(word, glosses)]

    def _uses(self, word: str, glosses: tuple[str, ...]) -> bool:
        # An English term some abstract holds begins as it does, so the beginnings answer for them.
        english = [term for term in glosses or (word,) if term.isascii()]
        return (not all(term.isalpha() for term in english)
                or self.index.knows(word)
                or any(self.index.knows_beginning(term[:WORD_BEGINNING]) for term in english))

    def knows(self, name: str) -> bool:
        """Whether some abstract holds the name."""
        return len(self.papers_holding(name)) > 0

    def identifies(self, name: str, paper: Paper) -> bool:
        """Whether the name is the paper's: it holds it, and few other papers do (a copy in the other
        language counts as another paper)."""
        papers = self.papers_holding(name)
        return self.holds(name, paper) and len(papers) <= max(3, self.corpus.paper_count // 1000)

    def holds(self, name: str, paper: Paper) -> bool:
        return self.corpus.position(paper.paper_id) in self.papers_holding(name)

    def papers_holding(self, name: str) -> frozenset[int]:
        """Positions of the papers whose abstract holds every word of the name ("ADE20K", "multi-GPU")."""
        terms = [term for word in LATIN_WORD.findall(name) for term in english_terms(word)]
        return self.index.holding_all(terms) if terms else frozenset()

    @property
    def max_weight(self) -> float:
        return self.index.max_weight

    def term_weight(self, term: str) -> float:
        return self.index.weight(term)


def require_query(query: str) -> str:
    """The query normalised once (qa_bot.text.hygiene); nothing left of it is bad input."""
    return require_text(query, "empty query: give a few words to search for")


def words_of(query: "str | Words") -> Words:
    """The query's words: as the answer stage analysed them, or found now in the text given."""
    return query if isinstance(query, Words) else Words.of(require_query(query))
