"""The BM25 index: term frequencies stored per segment, rank-bm25's formulas applied at query time.

A segment holds the postings of a run of consecutive document positions, term-major (a CSR of
terms x documents: for each term, the documents that hold it and how often). A collection is built
as one segment and grows by one segment per update (`qa_bot.search.indexing`); a document that was changed
or removed is marked dead instead of being rewritten. The statistics BM25 needs (document count,
average length, each term's document frequency) are those of the live documents, so the scores
of an updated index equal those of a full rebuild. What a query adds up is the formula of
rank-bm25 for the chosen variant (okapi, plus, l), term by term, over the query terms' postings
only: the IDF follows rank-bm25's `_calc_idf`, the per-document part its `get_scores`, and what a
document that lacks a term still gets (BM25Plus adds `delta * idf` to every document) is kept per
term as `floor`. tests/test_index.py checks the scores against rank-bm25 itself for all three.

Computing the formula per query instead of storing weights costs about as much as reading stored
weights (both are dominated by scattering into the score array: measured 18 against 16 ms at a
million abstracts), and it is what lets an update avoid rewriting every weight when the average
length changes.
"""

import copy
from bisect import bisect_left
from collections import ChainMap
from functools import cached_property
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from qa_bot.search.bilingual import document_terms
from qa_bot.collection.corpus import Corpus
from qa_bot.settings import Settings

# Bump when tokenization changes in a way the package versions do not show.
TERMS_VERSION = "4"  # 3: a given title is indexed with the abstract (Paper.indexed_text); 4: stored collections


@dataclass(frozen=True)
class Segment:
    """The postings of the documents at positions start .. start + count - 1."""

    start: int
    indptr: np.ndarray  # per term known when the segment was written, + 1
    documents: np.ndarray  # positions relative to start, ascending within a term
    frequencies: np.ndarray  # how often the term occurs in the document (float32)

    def postings(self, term: int) -> tuple[np.ndarray, np.ndarray]:
        documents, frequencies = self.local_postings(term)
        return (documents + self.start if self.start else documents), frequencies

    def local_postings(self, term: int) -> tuple[np.ndarray, np.ndarray]:
        """The same, positions relative to the segment's start (views: nothing copied)."""
        if term + 1 >= len(self.indptr):
            return _NO_DOCUMENTS, _NO_FREQUENCIES
        begin, end = self.indptr[term], self.indptr[term + 1]
        return self.documents[begin:end], self.frequencies[begin:end]


_NO_DOCUMENTS = np.zeros(0, dtype=np.int64)
RAREST_SHARE = 10  # the rarest word's documents are scored alone when at most a tenth of all
SAMPLE_STEP = 16
_NO_FREQUENCIES = np.zeros(0, dtype=np.float32)


@dataclass(frozen=True)
class Counts:
    """Term counts of a batch of documents, document-major: what tokenizing produces."""

    matrix: sparse.csr_matrix  # documents x terms
    lengths: np.ndarray  # tokens per document, repeats included (rank-bm25's doc_len)

    def __len__(self) -> int:
        return len(self.lengths)

    def widened(self, vocabulary_size: int) -> "Counts":
        """The same counts over a vocabulary that has grown since."""
        m = self.matrix
        return Counts(sparse.csr_matrix((m.data, m.indices, m.indptr), shape=(m.shape[0], vocabulary_size)),
                      self.lengths)

    def rows(self, selected) -> "Counts":
        return Counts(self.matrix[selected], self.lengths[selected])


@dataclass(frozen=True)
class Statistics:
    """What BM25 needs of a collection for a query: its live documents, their total length in terms,
    and the document frequency of each of the query's terms. Those of shards add up to those of the
    whole collection (`qa_bot.search.shards`)."""

    documents: int
    total_length: int
    frequency: dict[str, int]

    def __add__(self, other: "Statistics") -> "Statistics":
        frequency = dict(self.frequency)
        for term, count in other.frequency.items():
            frequency[term] = frequency.get(term, 0) + count
        return Statistics(self.documents + other.documents, self.total_length + other.total_length, frequency)


def count_terms(documents: list[list[str]], vocabulary: dict[str, int]) -> Counts:
    """The documents' term counts; new terms are added to `vocabulary`."""
    ids = numbered([term for terms in documents for term in terms], vocabulary)
    lengths = np.array([len(terms) for terms in documents], dtype=np.int32)
    rows = np.repeat(np.arange(len(lengths), dtype=np.int32), lengths.astype(np.int64))
    matrix = sparse.csr_matrix((np.ones(len(ids), dtype=np.float32), (rows, ids)),
                               shape=(len(lengths), len(vocabulary)))
    matrix.sum_duplicates()
    return Counts(matrix, lengths)


def numbered(terms: list[str], vocabulary: dict[str, int]) -> np.ndarray:
    """The terms' ids; new terms are added, numbered in order of first appearance (once per
    distinct term: a lookup per token was a fifth of the time of indexing a file)."""
    for term in dict.fromkeys(terms):
        if term not in vocabulary:
            vocabulary[term] = len(vocabulary)
    return np.fromiter(map(vocabulary.__getitem__, terms), dtype=np.int32, count=len(terms))


def joined_counts(parts: list[Counts], vocabulary_size: int) -> Counts:
    """The parts' counts one after the other. `parts` is emptied as it is copied, so that a
    million abstracts' counts (a gigabyte) are not held twice."""
    entries, documents = sum(part.matrix.nnz for part in parts), sum(len(part) for part in parts)
    terms, counts = np.empty(entries, dtype=np.int32), np.empty(entries, dtype=np.float32)
    # scipy gives the matrix 32-bit index arrays while the entries allow, 64-bit ones beyond
    indptr, lengths = np.zeros(documents + 1, dtype=np.int64), np.empty(documents, dtype=np.int32)
    entry = document = 0
    parts.reverse()
    while parts:
        part = parts.pop()
        matrix, size = part.matrix, len(part)
        terms[entry : entry + matrix.nnz], counts[entry : entry + matrix.nnz] = matrix.indices, matrix.data
        indptr[document + 1 : document + size + 1] = matrix.indptr[1:] + entry
        lengths[document : document + size] = part.lengths
        entry, document = entry + matrix.nnz, document + size
        del part, matrix
    return Counts(sparse.csr_matrix((counts, terms, indptr), shape=(documents, vocabulary_size)), lengths)


def segment_from_counts(counts: Counts, start: int) -> Segment:
    """The batch's postings, term-major (a transpose done by scipy in C)."""
    by_term = counts.matrix.tocsc()
    by_term.sort_indices()
    return Segment(start, by_term.indptr.astype(np.int64), by_term.indices.astype(np.int32, copy=False),
                   by_term.data.astype(np.float32, copy=False))


def document_frequency(counts: Counts, vocabulary_size: int) -> np.ndarray:
    return np.bincount(counts.matrix.indices, minlength=vocabulary_size).astype(np.int64)


class Index:
    """BM25 over the live documents of its segments."""

    missing_shards: tuple[str, ...] = ()  # one index is never partial (`qa_bot.search.shards.ShardSet`)

    def __init__(self, vocabulary: dict[str, int], segments: list[Segment], lengths: np.ndarray,
                 live: np.ndarray, frequency: np.ndarray, settings: Settings, keys: np.ndarray | None = None):
        self.vocabulary = vocabulary
        self.segments = segments
        self.live = live
        self.all_live = bool(live.all())
        self.size = len(lengths)  # positions, dead ones included
        self.lengths = lengths
        self.keys = keys  # per position, what orders equal scores (the paper id as a number), else the position
        self.frequency = np.pad(frequency, (0, max(0, len(vocabulary) - len(frequency))))
        self.settings = settings
        self.documents = int(live.sum())
        self.total_length = int(lengths[live].sum())
        self.idf = rank_bm25_idf(self.frequency, self.documents, settings)
        self.floor = self.idf * self.floor_share
        self.length_norm, self.saturation = self.normalised(self.documents, self.total_length)

    @property
    def floor_share(self) -> float:
        """What every document gets of a term's IDF whether it holds the term or not (BM25Plus's delta)."""
        return self.settings.bm25_delta if self.settings.bm25_variant == "plus" else 0.0

    def normalised(self, documents: int, total_length: int) -> tuple[np.ndarray, np.ndarray]:
        """Each document's length over the average length of `documents` of `total_length` terms (as
        rank-bm25's b weighs it), and the saturation in Okapi's and Plus's denominator."""
        average_length = total_length / documents if documents else 0.0
        b = self.settings.bm25_b
        length_norm = 1 - b + b * self.lengths / average_length if average_length else np.ones(self.size)
        return length_norm, self.settings.bm25_k1 * length_norm

    def statistics(self, terms) -> Statistics:
        """This index's share of the statistics of the terms (`Statistics`)."""
        frequency = {term: int(self.frequency[self.vocabulary[term]]) if term in self.vocabulary else 0
                     for term in dict.fromkeys(terms)}
        return Statistics(self.documents, self.total_length, frequency)

    def scoring(self, statistics: Statistics) -> "Index":
        """This index scoring with the statistics of a larger collection it is a shard of: the IDF of
        each of the statistics' terms from its collection-wide document frequency, the lengths
        normalised by the collection's average. The query's terms that this shard lacks are numbered
        beyond its vocabulary (no postings, but their floor and IDF count, as in one index of the
        whole). The same formulas, so the same scores to the last bit. Only the statistics' terms
        can be scored."""
        if self.settings.bm25_variant == "okapi":
            raise ValueError("BM25Okapi's IDF floor needs the mean IDF of the whole vocabulary")
        view = copy.copy(self)
        terms = list(statistics.frequency)
        extra = {term: len(self.vocabulary) + i for i, term in enumerate(t for t in terms if t not in self.vocabulary)}
        view.vocabulary = ChainMap(extra, self.vocabulary) if extra else self.vocabulary
        ids = np.array([view.vocabulary[term] for term in terms], dtype=np.int64)
        size = len(self.vocabulary) + len(extra)
        view.frequency, view.idf, view.floor = np.zeros(size, dtype=np.int64), np.zeros(size), np.zeros(size)
        view.frequency[ids] = [statistics.frequency[term] for term in terms]
        view.idf[ids] = rank_bm25_idf(view.frequency[ids], statistics.documents, self.settings)
        view.floor[ids] = view.idf[ids] * self.floor_share
        view.documents, view.total_length = statistics.documents, statistics.total_length
        if (statistics.documents, statistics.total_length) != (self.documents, self.total_length):
            view.length_norm, view.saturation = self._normalised_for(statistics.documents, statistics.total_length)
        return view

    def _normalised_for(self, documents: int, total_length: int) -> tuple[np.ndarray, np.ndarray]:
        """`normalised`, kept for the last collection size asked (it changes only with an update)."""
        cached = getattr(self, "_last_normalised", None)
        if cached is None or cached[0] != (documents, total_length):
            cached = ((documents, total_length), self.normalised(documents, total_length))
            self._last_normalised = cached
        return cached[1]

    def weight(self, term: str) -> float:
        """The term's IDF; 0 for a term no document holds."""
        position = self.vocabulary.get(term)
        return float(self.idf[position]) if position is not None else 0.0

    @property
    def max_weight(self) -> float:
        """The largest IDF (that of the rarest term): what a word the collection never uses weighs."""
        return float(self.idf.max()) if len(self.idf) else 1.0

    def term_ids(self, terms) -> list[int]:
        """The ids of the terms some live document holds."""
        ids = (self.vocabulary.get(term) for term in terms)
        return [term for term in ids if term is not None and self.frequency[term] > 0]

    def knows(self, term: str) -> bool:
        return bool(self.term_ids([term]))

    def knows_beginning(self, prefix: str) -> bool:
        """Whether a live document holds a term that begins with `prefix`."""
        terms = self._sorted_terms
        for term in terms[bisect_left(terms, prefix):]:
            if not term.startswith(prefix):
                return False
            if self.knows(term):
                return True
        return False

    @cached_property
    def _sorted_terms(self) -> list[str]:
        # Sorted once, when a question first asks (seconds for the vocabulary of a million abstracts).
        return sorted(self.vocabulary)

    def postings(self, term: int) -> tuple[np.ndarray, np.ndarray]:
        """The live documents holding the term (ascending) and how often it occurs in each."""
        found = [segment.postings(term) for segment in self.segments]
        documents = np.concatenate([documents for documents, _ in found]) if len(found) > 1 else found[0][0]
        frequencies = np.concatenate([freq for _, freq in found]) if len(found) > 1 else found[0][1]
        if self.all_live:
            return documents, frequencies
        alive = self.live[documents]
        return documents[alive], frequencies[alive]

    def term_scores(self, term: int) -> tuple[np.ndarray, np.ndarray]:
        """rank-bm25's score of the term in each document that holds it, beyond the floor."""
        documents, stored = self.postings(term)
        return documents, self.part(term, documents, stored)

    def part(self, term: int, documents: np.ndarray, stored: np.ndarray) -> np.ndarray:
        tf = stored.astype(np.float64)  # stored as float32; the formula in float64, as rank-bm25's
        k1, delta = self.settings.bm25_k1, self.settings.bm25_delta
        if self.settings.bm25_variant == "l":
            ctd = tf / self.length_norm[documents]
            return self.idf[term] * (tf * (k1 + 1) * (ctd + delta) / (k1 + ctd + delta))
        return (self.idf[term] * (k1 + 1)) * tf / (tf + self.saturation[documents])

    def term_scores_at(self, term: int, candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The term's scores in those of the (ascending, live) candidates that hold it: where they
        are among the candidates, and the scores. Found by binary search in the term's postings,
        so a term in most documents costs the candidates, not its postings."""
        found, frequencies = [], []
        ends = [segment.start for segment in self.segments[1:]] + [self.size]
        for segment, end in zip(self.segments, ends):
            documents, stored = segment.local_postings(term)
            low, high = np.searchsorted(candidates, [segment.start, end])
            wanted = candidates[low:high] - segment.start
            if not len(documents) or not len(wanted):
                continue
            at = np.minimum(np.searchsorted(documents, wanted), len(documents) - 1)
            held = documents[at] == wanted
            found.append(low + np.flatnonzero(held))
            frequencies.append(stored[at[held]])
        if not found:
            return _NO_DOCUMENTS, np.zeros(0)
        where = np.concatenate(found)
        return where, self.part(term, candidates[where], np.concatenate(frequencies))

    def unit_scores(self, units: list[list[str]]) -> np.ndarray:
        """For every document, the sum over `units` of the best score of the unit's terms: the
        glosses of a Chinese word ("attack", "assault", "accuse") count as one word, so a Chinese
        abstract, indexed with all of them, does not score one word eight times. With one term per
        unit, these are rank-bm25's `get_scores(terms)`."""
        ids = [found for unit in units if (found := self.term_ids(unit))]
        return self.summed(ids, self.size, self.term_scores)

    def summed(self, ids: list[list[int]], size: int, scores_of) -> np.ndarray:
        """The units' scores added up over `size` documents, `scores_of(term)` giving where the
        term is held and its score there (all documents, or a set of candidates)."""
        scores, floor = np.zeros(size), 0.0
        for unit in ids:
            if len(unit) == 1:  # the common case: no second array the size of the collection
                where, part = scores_of(unit[0])
                scores[where] += part
                floor += self.floor[unit[0]]
            else:
                best = np.full(size, float(self.floor[unit].max()))
                for term in unit:
                    where, part = scores_of(term)
                    best[where] = np.maximum(best[where], self.floor[term] + part)
                scores += best
        # What every document gets for the words it lacks, added once (an add over a million
        # documents per word cost more than the word's postings).
        return scores + floor if floor else scores

    def best(self, units: list[list[str]], k: int, carried: list[int] = ()) -> tuple[np.ndarray, np.ndarray]:
        """The k best live documents that hold a term of the units (or are carried in), best first
        (ties in position order), with their `unit_scores`. When the documents holding the rarest
        word are enough to know the k best (`_best_of_rarest`), only they are scored."""
        found = None if len(carried) else self._best_of_rarest(units, k)
        if found is not None:
            return found
        scores = self.unit_scores(units)
        candidates = self.matching([term for unit in units for term in unit])
        if len(carried):
            candidates = np.union1d(candidates, carried).astype(np.int64)
        top = top_k(candidates, scores, k, self.keys)
        return top, scores[top]

    def _best_of_rarest(self, units: list[list[str]], k: int) -> tuple[np.ndarray, np.ndarray] | None:
        """The k best, scored among the documents that hold the rarest word only, when that is
        exact: a document without it gets less from the other words than their bound (idf x
        (k1 + 1), what BM25's saturation approaches), so when the k-th best such document beats
        that bound none other can come in. None when it does not (or for BM25L, unbounded)."""
        ids = [found for unit in units if (found := self.term_ids(unit))]
        if len(ids) < 2 or self.settings.bm25_variant == "l":
            return None
        rarest = min(range(len(ids)), key=lambda i: sum(self.frequency[term] for term in ids[i]))
        others = [unit for i, unit in enumerate(ids) if i != rarest]
        if any(len(unit) > 1 for unit in others):
            return None  # a word of several glosses: its bound is not one term's
        bound = sum(max(float(self.idf[unit[0]]), 0.0) for unit in others) * (self.settings.bm25_k1 + 1)
        if sum(int(self.frequency[term]) for term in ids[rarest]) > self.documents // RAREST_SHARE:
            return None  # too many to score one by one: scoring every document is as fast
        held = [self.postings(term)[0] for term in ids[rarest]]
        candidates = held[0] if len(held) == 1 else np.unique(np.concatenate(held))
        if len(candidates) <= k:
            return None
        # The same sums as unit_scores, over the candidates only (so equal to the last bit).
        scores = self.summed(ids, len(candidates), lambda term: self.term_scores_at(term, candidates))
        # What a document holding none of the words gets.
        floor = (sum(self.floor[unit[0]] for unit in ids if len(unit) == 1)
                 + sum(float(self.floor[unit].max()) for unit in ids if len(unit) > 1))
        top = top_k(np.arange(len(candidates)), scores, k, None if self.keys is None else self.keys[candidates])
        if scores[top[-1]] - floor < bound:
            return None
        return candidates[top], scores[top]

    def holding_all(self, terms: list[str]) -> frozenset[int]:
        """Positions of the live documents that contain every one of the terms."""
        ids = self.term_ids(terms)
        if len(ids) < len(terms):
            return frozenset()
        rows = sorted((self.postings(term)[0] for term in ids), key=len)
        found = rows[0]
        for row in rows[1:]:
            found = np.intersect1d(found, row, assume_unique=True)
        return frozenset(found.tolist())

    def matching(self, terms: list[str]) -> np.ndarray:
        """Positions of the live documents that contain at least one of the terms, ascending."""
        found = np.zeros(self.size, dtype=bool)
        for term in self.term_ids(terms):
            found[self.postings(term)[0]] = True
        return np.flatnonzero(found)


def top_k(candidates: np.ndarray, scores: np.ndarray, k: int, keys: np.ndarray | None = None) -> np.ndarray:
    """The k candidates with the highest scores, best first; ties in the order of their `keys` (the
    paper ids, so that shards and one index agree), else of the candidates, at the k-th place too (every candidate as good as the k-th is kept until the ties are ordered). Among
    many, the k-th best of every SAMPLE_STEP-th first sets a bar the k best all clear, so the
    exact selection runs on the few above it."""
    values = scores[candidates]
    if len(candidates) > SAMPLE_STEP * k * 4:
        sample = values[::SAMPLE_STEP]
        kept = -values <= np.partition(-sample, k - 1)[k - 1]
        candidates, values = candidates[kept], values[kept]
    if len(candidates) > k:
        kept = -values <= np.partition(-values, k - 1)[k - 1]
        candidates, values = candidates[kept], values[kept]
    return candidates[np.lexsort((candidates if keys is None else keys[candidates], -values))][:k]


def rank_bm25_idf(frequency: np.ndarray, corpus_size: int, settings: Settings) -> np.ndarray:
    """rank-bm25's `_calc_idf` of each variant over the terms some document holds (0 elsewhere)."""
    held = frequency > 0
    df = frequency[held].astype(np.float64)
    if settings.bm25_variant == "okapi":
        values = np.log(corpus_size - df + 0.5) - np.log(df + 0.5)
        # rank-bm25 lifts negative IDFs (terms in more than half the documents) to epsilon x the mean.
        if len(values):
            values = np.where(values < 0, settings.bm25_epsilon * values.mean(), values)
    elif settings.bm25_variant == "l":
        values = np.log(corpus_size + 1) - np.log(df + 0.5)
    else:
        values = np.log(corpus_size + 1) - np.log(df)
    idf = np.zeros(len(frequency))
    idf[held] = values
    return idf


def index_from_terms(documents: list[list[str]], settings: Settings) -> Index:
    """An index of the documents, one segment, every document live."""
    vocabulary: dict[str, int] = {}
    counts = count_terms(documents, vocabulary)
    return Index(vocabulary, [segment_from_counts(counts, 0)], counts.lengths.astype(np.float64),
                 np.ones(len(documents), dtype=bool), document_frequency(counts, len(vocabulary)), settings)


def build_index(corpus: Corpus, settings: Settings) -> Index:
    """The index of a corpus held in memory (`qa_bot.collection.corpus.load_corpus`)."""
    return index_from_terms([document_terms(paper.indexed_text) for paper in corpus.papers], settings)
