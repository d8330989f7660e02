import warnings

import numpy as np
import pytest
import rank_bm25
from scipy import sparse

from qa_bot.search.bilingual import document_terms, query_terms
from qa_bot.collection.corpus import load_corpus
from qa_bot.search.index import (Index, Statistics, build_index, count_terms, index_from_terms, joined_counts, numbered,
                          segment_from_counts, top_k)
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
    from qa_bot.search.bilingual import query_units

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


def reference_unit_scores(reference, units):
    """What `unit_scores` must give, from rank-bm25 alone: per unit the best of its terms' scores."""
    return sum(np.max([reference.get_scores([term]) for term in unit], axis=0) for unit in units)


def reference_ranking(scores, held, k):
    """The k best of the documents in `held`, best first, ties in position order."""
    return sorted(held, key=lambda position: (-scores[position], position))[:k]


def segmented_index(batches, dead, settings):
    """An index of one segment per batch with the documents at `dead` removed, as updates leave it
    (the live documents' frequencies counted here); with all documents and the live positions."""
    vocabulary: dict[str, int] = {}
    counts = [count_terms(batch, vocabulary) for batch in batches]
    starts = np.cumsum([0] + [len(batch) for batch in batches])
    segments = [segment_from_counts(part, int(start)) for part, start in zip(counts, starts)]
    documents = [document for batch in batches for document in batch]
    live = np.ones(len(documents), dtype=bool)
    live[list(dead)] = False
    frequency = np.zeros(len(vocabulary), dtype=np.int64)
    for position, document in enumerate(documents):
        if live[position]:
            for term in set(document):
                frequency[vocabulary[term]] += 1
    lengths = np.array([len(document) for document in documents], dtype=np.float64)
    index = Index(vocabulary, segments, lengths, live, frequency, settings)
    return index, documents, np.flatnonzero(live).tolist()


def random_batches(seed):
    """Three batches of abstracts: common words, one in most abstracts (a negative Okapi IDF), rare
    words of which rare2 and rare3 first come in the second batch, rare4 and rare5 in the third, and
    lengths that vary."""
    rng = np.random.default_rng(seed)
    batches = []
    for batch in range(3):
        documents = []
        for _ in range(40):
            terms = [f"pad{rng.integers(0, 60)}" for _ in range(rng.integers(0, 12))]
            terms += [f"common{c}" for c in range(4) if rng.random() < 0.45 - 0.1 * c]
            terms += ["everywhere"] * int(rng.random() < 0.85)
            terms += [f"rare{r}" for r in range(batch * 2 + 2) if rng.random() < 0.08] * int(rng.integers(1, 3))
            documents.append(terms or ["pad0"])
        batches.append(documents)
    batches[1][5] = ["ghost", "rare0", "common0"]  # a word only a removed abstract held
    return batches


@pytest.mark.parametrize("variant", ["okapi", "plus", "l"])
def test_an_updated_index_of_several_segments_scores_its_live_documents_as_rank_bm25_over_them_alone(variant):
    settings = Settings(bm25_variant=variant)
    batches = random_batches(7)
    index, documents, live = segmented_index(batches, {3, 45, 85, 119}, settings)
    reference = REFERENCE[variant]([documents[position] for position in live], settings)
    words = sorted(index.vocabulary)
    assert len(index.segments) == 3 and "rare5" in words and "ghost" in words
    for word in words:  # every word, those first met in a later batch and each batch's last one too
        if word == "ghost":
            continue
        ours = each_alone(index, [word])[live]
        assert np.allclose(ours, reference.get_scores([word]), rtol=1e-12, atol=1e-12), word
    assert not index.knows("ghost") and index.matching(["ghost"]).tolist() == []
    assert np.allclose(each_alone(index, ["ghost", "common1"])[live], reference.get_scores(["common1"]))
    query = ["rare0", "common1", "everywhere", "rare6"]
    assert np.allclose(each_alone(index, query)[live], reference.get_scores(query), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("variant", ["okapi", "plus", "l"])
def test_the_best_of_an_updated_index_are_those_of_scoring_every_live_document_with_rank_bm25(variant):
    settings = Settings(bm25_variant=variant)
    index, documents, live = segmented_index(random_batches(11), {2, 41, 42, 100}, settings)
    reference = REFERENCE[variant]([documents[position] for position in live], settings)
    pruned = 0
    words = [f"rare{r}" for r in range(6)] + [f"common{c}" for c in range(4)] + ["everywhere"]
    for first in words:
        for second in words:
            if first == second:
                continue
            units = [[first], [second]]
            scores = np.zeros(len(documents))
            scores[live] = reference_unit_scores(reference, units)
            held = [p for p in live if first in documents[p] or second in documents[p]]
            for k in (1, 2, 3):
                top, found = index.best(units, k)
                assert top.tolist() == reference_ranking(scores, held, k), (first, second, k)
                assert np.allclose(found, scores[top], rtol=1e-12, atol=1e-12)
                pruned += index._best_of_rarest(units, k) is not None
    # the rarest word's documents alone were scored in many of those (never for BM25L: unbounded)
    assert pruned > 50 if variant != "l" else pruned == 0


def best_and_expected(documents, units, k, variant="okapi"):
    settings = Settings(bm25_variant=variant)
    index = index_from_terms(documents, settings)
    scores = reference_unit_scores(REFERENCE[variant](documents, settings), units)
    held = [p for p, document in enumerate(documents) if any(term in document for unit in units for term in unit)]
    top, found = index.best(units, k)
    return top.tolist(), reference_ranking(scores, held, k), np.allclose(found, scores[top])


def test_the_best_for_a_rarest_word_of_two_glosses_come_from_the_documents_of_either():
    documents = ([["r1"]] * 3 + [["r2"]] * 2 + [["w", "pad"]] * 100 + [["filler"]] * 220)
    top, expected, same_scores = best_and_expected(documents, [["r1", "r2"], ["w"]], 2)
    assert top == expected == [3, 4] and same_scores  # the two abstracts of the rarer gloss, r2


def test_the_best_under_bm25_plus_count_what_an_abstract_lacking_a_word_of_two_glosses_still_gets():
    long = ["pad"] * 30
    documents = ([["r1", *long]] * 3 + [["r2", *long]] * 2 + [["w", "w", "w"]] + [["w", "pad"]] * 99
                 + [["filler"]] * 220)
    top, expected, same_scores = best_and_expected(documents, [["r1", "r2"], ["w"]], 2, "plus")
    assert top == expected and same_scores
    assert top[0] == 5  # "w" three times in a short abstract beats the long ones holding r1 or r2


def test_the_best_count_every_gloss_of_an_other_word():
    documents = [["rare"]] * 3 + [["g2"]] + [["g1", "pad"]] * 120 + [["filler"]] * 200
    top, expected, same_scores = best_and_expected(documents, [["rare"], ["g1", "g2"]], 2)
    assert top == expected and same_scores
    assert top[0] == 3  # the one abstract holding g2, rarer than "rare"


def test_counts_and_postings_keep_32_bit_ids_and_counts_that_can_index_arrays():
    """A million abstracts' counts are a gigabyte in 32 bits (the stored segment files hold these
    arrays as they are); ids index arrays, so they are integers."""
    vocabulary = {"graph": 0}
    ids = numbered(["network", "graph", "network", "cluster"], vocabulary)
    assert ids.tolist() == [1, 0, 1, 2] and ids.dtype == np.int32
    assert np.array(["graph", "network", "cluster"])[ids].tolist() == ["network", "graph", "network", "cluster"]
    counts = count_terms(TINY, vocabulary)
    assert counts.matrix.dtype == np.float32 and counts.matrix.indices.dtype == np.int32
    assert counts.lengths.dtype == np.int32 and counts.lengths.tolist() == [3, 4, 3, 5]
    joined = joined_counts([counts.rows([1, 2]), counts.rows([0]), counts.rows([3])], len(vocabulary))
    assert joined.matrix.dtype == np.float32 and joined.lengths.dtype == np.int32
    assert joined.matrix.indices.dtype == joined.matrix.indptr.dtype == np.int32
    postings = segment_from_counts(joined, 0)
    assert postings.documents.dtype == np.int32 and postings.frequencies.dtype == np.float32
    assert postings.indptr.dtype == np.int64


def test_joined_counts_are_the_parts_one_after_the_other_and_the_parts_are_let_go():
    vocabulary: dict[str, int] = {}
    first, second = count_terms(TINY[:3], vocabulary), count_terms(TINY[3:] + [["graph", "new"]], vocabulary)
    parts = [first.widened(len(vocabulary)), second]
    joined = joined_counts(parts, len(vocabulary))
    assert parts == []
    assert joined.matrix.shape == (5, len(vocabulary))
    expected = sparse.vstack([first.widened(len(vocabulary)).matrix, second.matrix]).toarray()
    assert np.array_equal(joined.matrix.toarray(), expected)
    assert joined.lengths.tolist() == [3, 4, 3, 5, 2]
    assert joined_counts([], 4).matrix.shape == (0, 4)


def test_counts_widened_over_a_grown_vocabulary_keep_their_entries():
    vocabulary: dict[str, int] = {}
    counts = count_terms(TINY, vocabulary)
    widened = counts.widened(len(vocabulary) + 5)
    assert widened.matrix.shape == (4, len(vocabulary) + 5)
    assert np.array_equal(widened.matrix.toarray()[:, : len(vocabulary)], counts.matrix.toarray())
    assert not widened.matrix.toarray()[:, len(vocabulary):].any()
    assert widened.lengths.tolist() == counts.lengths.tolist()


def test_the_documents_holding_every_word_are_the_live_ones_that_hold_each():
    index, documents, live = segmented_index(random_batches(3), {0, 44, 90}, Settings())
    words = [f"common{c}" for c in range(4)] + ["everywhere", "rare0", "rare3", "rare5", "ghost"]
    for first in words:
        for second in words:
            for third in (None, "common0", "rare2"):
                terms = [first, second] + ([third] if third else [])
                expected = {p for p in live if all(term in documents[p] for term in terms)}
                assert index.holding_all(terms) == expected, terms
                assert index.matching(terms).tolist() == sorted(
                    p for p in live if any(term in documents[p] for term in terms))
    assert index.holding_all(["common0", "unknown"]) == frozenset()


def test_the_k_best_when_the_sampled_scores_are_the_highest_or_every_score_is_negative():
    size = 2_000
    for k in (1, 2, 3, 5):
        for sign in (1, -1):
            for rotation in range(4):
                scores = np.full(size, 1.0 * sign) + np.arange(size) * 1e-6 * sign
                sampled = np.arange(0, size, 16)  # the candidates the first pass samples
                scores[sampled] = sign * 10 + np.roll(np.arange(len(sampled)), rotation * 7) * 1e-3
                candidates = np.arange(size)
                for chosen in (candidates, candidates[: 64 * k], candidates[: 64 * k + 1]):
                    expected = sorted(chosen.tolist(), key=lambda position: (-scores[position], position))[:k]
                    assert top_k(chosen, scores, k).tolist() == expected, (k, sign, rotation, len(chosen))


@pytest.mark.parametrize("documents", [[], [[]], [[], []]])
def test_a_collection_without_words_finds_nothing_and_warns_of_nothing(documents):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's warnings of an empty mean or 0 / 0 would reach the user
        index = index_from_terms(documents, Settings())
    top, scores = index.best([["graph"], ["network"]], 3)
    assert top.tolist() == scores.tolist() == [] and not index.knows("graph")
    assert index.unit_scores([["graph"]]).tolist() == [0.0] * len(documents)


def test_the_k_best_when_a_quarter_of_the_sampled_candidates_are_asked_for_and_only_those_score():
    sampled, k = 329, 79  # every 16th candidate is sampled: more than 64 k candidates
    for seed in (21, 225, 328, 518):
        scores = np.zeros(16 * sampled)
        scores[::16] = 1000.0 - np.random.default_rng(seed).permutation(sampled)
        candidates = np.arange(len(scores))
        expected = sorted(candidates.tolist(), key=lambda position: (-scores[position], position))[:k]
        assert top_k(candidates, scores, k).tolist() == expected, seed


def test_a_beginning_is_known_when_a_live_document_holds_a_term_that_begins_so():
    index, _, _ = segmented_index([[["mitochondri", "cell"], ["okra"]]], dead=[1], settings=Settings())
    assert index.knows_beginning("mitoc") and index.knows_beginning("cell")
    assert not index.knows_beginning("okra")  # only a removed document held it
    assert not index.knows_beginning("ce1") and not index.knows_beginning("zzz")


# A shard scoring with its collection's statistics (qa_bot.search.shards): the Ray tests compare whole
# collections; these check the pieces in this process.

def test_the_statistics_of_two_shards_add_up_term_by_term():
    added = Statistics(4, 40, {"graph": 2, "distil": 1}) + Statistics(3, 20, {"graph": 1, "attack": 2})
    assert added == Statistics(7, 60, {"graph": 3, "distil": 1, "attack": 2})


@pytest.mark.parametrize("variant", ["plus", "l"])
def test_an_index_scoring_with_its_own_statistics_scores_as_itself(variant):
    index = index_from_terms(TINY, Settings(bm25_variant=variant, bm25_delta=0.5))
    terms = ["graph", "distil", "unknown"]
    view = index.scoring(index.statistics(terms))
    known = [index.vocabulary[term] for term in terms[:2]]
    assert np.array_equal(view.idf[known], index.idf[known]) and np.array_equal(view.floor[known], index.floor[known])
    assert np.array_equal(view.unit_scores([[term] for term in terms]), index.unit_scores([[term] for term in terms]))


def test_a_shard_scores_with_each_collection_size_it_is_given_and_normalises_once_for_each():
    index = index_from_terms(TINY, Settings())
    statistics = index.statistics(["graph"])
    larger = Statistics(statistics.documents + 6, statistics.total_length + 30, {"graph": 5})
    first, second = index.scoring(larger), index.scoring(statistics + Statistics(2, 4, {"graph": 0}))
    for view, stats in ((first, larger), (second, statistics + Statistics(2, 4, {"graph": 0}))):
        assert np.array_equal(view.length_norm, index.normalised(stats.documents, stats.total_length)[0])
    assert index.scoring(larger).length_norm is index.scoring(larger).length_norm  # computed once for a size


def test_a_shard_refuses_bm25_okapi():
    with pytest.raises(ValueError, match=r"^BM25Okapi's IDF floor needs the mean IDF of the whole vocabulary$"):
        index_from_terms(TINY, Settings(bm25_variant="okapi")).scoring(Statistics(1, 1, {"graph": 1}))
