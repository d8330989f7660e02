import numpy as np
import pytest
import rank_bm25

from qa_bot.bilingual import document_terms, query_terms
from qa_bot.corpus import load_corpus
from qa_bot.index import build_index, index_from_terms
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
