import numpy as np
import pytest
import rank_bm25

from qa_bot.bilingual import document_terms, query_terms
from qa_bot.corpus import load_corpus
from qa_bot.index import build_index, index_from_terms, top_k
from qa_bot.settings import Settings
from tests.conftest import SEEDS

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
    index = index_from_terms(TINY, Settings())
    best = np.maximum(each_alone(index, ["graph"]), each_alone(index, ["distil"]))
    assert np.allclose(index.unit_scores([["graph", "distil"]]), best)
    assert np.allclose(index.unit_scores([["graph", "distil"], ["graph"]]), best + each_alone(index, ["graph"]))
    assert np.allclose(index.unit_scores([["unknown", "graph"]]), each_alone(index, ["graph"]))


@pytest.mark.parametrize("variant", ["okapi", "plus", "l"])
def test_scores_equal_rank_bm25_on_a_tiny_corpus(variant):
    settings = Settings(bm25_variant=variant)
    index = index_from_terms(TINY, settings)
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


def full_ranking(index, units, k):
    """The k best by scoring every document: what `best` must return, however it gets there."""
    scores = index.unit_scores(units)
    candidates = index.matching([term for unit in units for term in unit])
    order = sorted(candidates.tolist(), key=lambda position: (-scores[position], position))[:k]
    return order, [scores[position] for position in order]


@pytest.mark.parametrize("variant", ["okapi", "plus", "l"])
def test_the_best_documents_equal_a_full_ranking_with_or_without_scoring_every_document(variant, retrieval_queries):
    from qa_bot.bilingual import query_units

    index = build_index(load_corpus(SEEDS), Settings(bm25_variant=variant))
    queries = [case["query"] for case in retrieval_queries] + ["DOORPING graph", "TinyMIM model training data"]
    for query in queries:
        for k in (1, 3, 5):
            top, scores = index.best(query_units(query), k)
            expected, expected_scores = full_ranking(index, query_units(query), k)
            assert top.tolist() == expected and scores.tolist() == expected_scores


def test_a_rare_word_lets_the_best_be_found_among_its_documents_only():
    documents = [["rare", "common"]] + [["rare"]] * 2 + [["common", "other"]] * 40 + [["filler"]] * 200
    index = index_from_terms(documents, Settings())
    pruned = index._best_of_rarest([["rare"], ["common"]], 2)
    assert pruned is not None  # the documents with "rare" are enough to know the two best
    assert pruned[0].tolist() == full_ranking(index, [["rare"], ["common"]], 2)[0] == [0, 1]
    assert index._best_of_rarest([["other"], ["common"]], 2) is None  # 40 documents tie: the bound is not beaten


def test_the_k_best_of_many_candidates_with_ties_are_those_of_a_full_sort():
    rng = np.random.default_rng(5)
    for size, k in ((20_000, 5), (50_000, 50), (3_000, 1)):
        scores = rng.integers(0, 40, size).astype(float)  # many ties, at the k-th place too
        candidates = np.sort(rng.choice(size, size // 2, replace=False))
        expected = sorted(candidates.tolist(), key=lambda position: (-scores[position], position))[:k]
        assert top_k(candidates, scores, k).tolist() == expected
