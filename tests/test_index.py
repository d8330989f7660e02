import os

import numpy as np
import pytest
import rank_bm25

from qa_bot.bilingual import document_terms, query_terms
from qa_bot.corpus import load_corpus
from qa_bot.index import build_index, cache_key, index_from_terms, load_or_build
from qa_bot.retrieve import Retriever
from qa_bot.settings import Settings
from tests.conftest import SEEDS, write_corpus

TINY = [
    ["graph", "neural", "network"],
    ["graph", "cluster", "graph", "contrast"],
    ["imag", "transform", "distil"],
    ["dataset", "distil", "backdoor", "attack", "distil"],
]
REFERENCE = {
    "okapi": lambda docs, s: rank_bm25.BM25Okapi(docs, k1=s.bm25_k1, b=s.bm25_b, epsilon=s.bm25_epsilon),
    "plus": lambda docs, s: rank_bm25.BM25Plus(docs, k1=s.bm25_k1, b=s.bm25_b, delta=s.bm25_delta),
    "l": lambda docs, s: rank_bm25.BM25L(docs, k1=s.bm25_k1, b=s.bm25_b, delta=s.bm25_delta),
}
QUERIES = ["graph", "distil graph graph", "unknown", "dataset backdoor transform neural", ""]


def each_alone(index, terms):
    """Scores with every term a word of its own: what rank-bm25 computes."""
    return index.unit_scores([[term] for term in terms])


def test_a_word_with_several_terms_scores_its_best_term_once():
    index = index_from_terms([str(i) for i in range(len(TINY))], TINY, Settings())
    best = np.maximum(each_alone(index, ["graph"]), each_alone(index, ["distil"]))
    assert np.allclose(index.unit_scores([["graph", "distil"]]), best)
    assert np.allclose(index.unit_scores([["graph", "distil"], ["graph"]]), best + each_alone(index, ["graph"]))
    assert np.allclose(index.unit_scores([["unknown", "graph"]]), each_alone(index, ["graph"]))


@pytest.mark.parametrize("variant", ["okapi", "plus", "l"])
def test_scores_equal_rank_bm25_on_a_tiny_corpus(variant):
    settings = Settings(bm25_variant=variant)
    index = index_from_terms([str(i) for i in range(len(TINY))], TINY, settings)
    reference = REFERENCE[variant](TINY, settings)
    for query in QUERIES:
        terms = query.split()
        assert np.allclose(each_alone(index, terms), reference.get_scores(terms), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("variant", ["okapi", "plus", "l"])
def test_rankings_equal_rank_bm25_on_the_seeds(variant, retrieval_queries):
    settings = Settings(bm25_variant=variant)
    corpus = load_corpus(SEEDS)
    documents = [document_terms(paper.text) for paper in corpus.papers]
    index = build_index(corpus, settings)
    reference = REFERENCE[variant](documents, settings)
    for case in retrieval_queries:
        terms = query_terms(case["query"])
        ours, theirs = each_alone(index, terms), reference.get_scores(terms)
        assert np.allclose(ours, theirs, rtol=1e-9, atol=1e-9)
        assert list(np.argsort(-ours, kind="stable")) == list(np.argsort(-theirs, kind="stable"))


def test_index_is_saved_and_reused(isolated_cache):
    settings = Settings(corpus=SEEDS)
    corpus = load_corpus(SEEDS)
    first, cached = load_or_build(corpus, settings)
    assert not cached
    second, cached = load_or_build(corpus, settings)
    assert cached
    assert second.paper_ids == first.paper_ids and second.vocabulary == first.vocabulary
    assert (second.weights != first.weights).nnz == 0


def test_changed_content_rebuilds_even_with_the_same_timestamps(tmp_path):
    folder = write_corpus(tmp_path / "c", {"a.txt": "Graph clustering with contrastive learning.\n"})
    settings = Settings(corpus=folder)
    before, _ = load_or_build(load_corpus(folder), settings)
    stat = (folder / "a.txt").stat()
    (folder / "a.txt").write_text("Backdoor attacks on dataset distillation.\n", "utf-8")
    os.utime(folder / "a.txt", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    after, cached = load_or_build(load_corpus(folder), settings)
    assert not cached
    assert "backdoor" in after.vocabulary and "backdoor" not in before.vocabulary


def test_changed_settings_use_another_index():
    corpus = load_corpus(SEEDS)
    assert cache_key(corpus, Settings(bm25_b=0.5)) != cache_key(corpus, Settings(bm25_b=0.75))


@pytest.mark.parametrize("damage", ["arrays.npz", "vocabulary.json", "manifest.json"])
def test_a_corrupt_cache_is_rebuilt(isolated_cache, damage):
    settings = Settings(corpus=SEEDS)
    corpus = load_corpus(SEEDS)
    good, _ = load_or_build(corpus, settings)
    folder = next(isolated_cache.glob("index-*"))
    target = folder / damage
    target.write_bytes(target.read_bytes()[: len(target.read_bytes()) // 2] + b"garbage")
    rebuilt, cached = load_or_build(corpus, settings)
    assert not cached
    assert np.allclose(each_alone(rebuilt, ["graph"]), each_alone(good, ["graph"]))
    assert load_or_build(corpus, settings)[1]


def test_retriever_reports_whether_the_index_came_from_the_cache():
    settings = Settings(corpus=SEEDS)
    assert not Retriever.open(settings).from_cache
    assert Retriever.open(settings).from_cache
