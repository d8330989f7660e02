import json

import pytest
import rank_bm25

from qa_bot.errors import BadInputError
from qa_bot.search.bilingual import document_terms
from qa_bot.search.retrieve import Coverage, Retriever
from qa_bot.settings import Settings
from tests.conftest import paper_with, write_corpus


def ranks(retriever, query, k=32):
    return [hit.paper.paper_id for hit in retriever.search(query, k).hits]


@pytest.mark.parametrize("query, key", [
    ("DOORPING backdoor", "DOORPING"),
    ("transformer verification on GPUs", "变压器验证"),
    ("数据集蒸馏 后门攻击", "DOORPING"),
    ("多GPU平台 图神经网络", "MGG"),
])
def test_issue_examples_rank_first(seeds_retriever, query, key):
    assert ranks(seeds_retriever, query)[0] == paper_with(seeds_retriever, key).paper_id


@pytest.mark.parametrize("direction", ["en-en", "en-zh", "zh-en", "zh-zh"])
def test_every_direction_finds_the_paper_in_the_top_five(seeds_retriever, retrieval_queries, direction):
    cases = [q for q in retrieval_queries if q["direction"] == direction]
    assert len(cases) >= 8
    found_first = 0
    for case in cases:
        ranking = ranks(seeds_retriever, case["query"])
        gold = paper_with(seeds_retriever, case["gold"]).paper_id
        assert gold in ranking[:5], case["query"]
        found_first += ranking[0] == gold
    assert found_first / len(cases) >= 0.75


def test_a_query_finds_papers_in_both_languages_and_each_says_its_language(seeds_retriever):
    zh_paper = paper_with(seeds_retriever, "变压器验证")
    en_paper = paper_with(seeds_retriever, "DOORPING")
    assert seeds_retriever.search("变压器验证", 1).hits[0].paper == zh_paper
    assert seeds_retriever.search("backdoor attack on dataset distillation", 1).hits[0].paper == en_paper
    assert (zh_paper.lang, en_paper.lang) == ("zh", "en")


def test_hits_are_ranked_by_score_and_limited_to_k(seeds_retriever):
    hits = seeds_retriever.search("graph neural networks", 4).hits
    assert [hit.rank for hit in hits] == [1, 2, 3, 4]
    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)


def test_snippet_is_the_best_matching_sentence(seeds_retriever):
    hit = seeds_retriever.search("DOORPING iteratively updates the triggers", 1).hits[0]
    assert hit.snippet in hit.paper.text
    assert "DOORPING iteratively updates the triggers" in hit.snippet
    assert len(hit.snippet) < len(hit.paper.text) / 3


def test_english_question_picks_a_sentence_of_a_chinese_abstract(seeds_retriever):
    hit = seeds_retriever.search("transformer verification on GPUs", 1).hits[0]
    assert hit.snippet in hit.paper.text and "GPU" in hit.snippet


def test_unknown_words_find_nothing(seeds_retriever):
    assert seeds_retriever.search("xyzzy plugh", 5).hits == []


def test_the_words_no_abstract_uses_in_any_form_are_the_unused_ones(seeds_retriever):
    # "coral reef" in neither language; "climatology" is not indexed but "climate" is, so it is used.
    assert seeds_retriever.unused_words("气候变化对珊瑚礁有什么影响？") == ["珊瑚礁"]
    assert seeds_retriever.unused_words("Which climatology models coral reefs?") == ["coral", "reef"]
    # Numbers, and a Chinese run with no gloss (here a cut across two words), are never unused.
    assert seeds_retriever.unused_words("How many of the 424242 videos?") == []
    assert seeds_retriever.unused_words("数据集有多少个微表情视频？") == []


def test_empty_query_is_bad_input(seeds_retriever):
    with pytest.raises(BadInputError):
        seeds_retriever.search("   ", 5)


def test_coverage_counts_the_question_words_a_paper_shares(seeds_retriever):
    paper = paper_with(seeds_retriever, "TinyMIM model of tiny size")
    covered = seeds_retriever.coverage("What accuracy does TinyMIM reach on ImageNet?", paper)
    assert (covered.shared_words, covered.query_words) == (3, 4)  # "reach" is not in the abstract
    assert 0.5 < covered.share < 1.0
    assert covered.enough(0.32, 2, 4)
    lucky = seeds_retriever.coverage("How tall is TinyMIM's moon?", paper)
    assert lucky.shared_words == 1 and lucky.query_words == 3
    assert not lucky.enough(0.0, 2, 0)
    single = seeds_retriever.coverage("TinyMIM", paper)
    assert single.enough(0.32, 2, 4), "a one-word question needs only its word"


def test_words_that_frame_a_question_do_not_count_as_covered(seeds_retriever):
    paper = paper_with(seeds_retriever, "DOORPING")
    framed = seeds_retriever.coverage("Which paper proposes a new method for backdoor attacks?", paper)
    plain = seeds_retriever.coverage("backdoor attacks?", paper)
    assert (framed.shared_words, framed.query_words) == (plain.shared_words, plain.query_words) == (2, 2)
    assert framed.share == plain.share
    chinese = seeds_retriever.coverage("哪篇论文提出了新的后门攻击方法？", paper)
    assert chinese.query_words == 2


def test_a_short_question_is_covered_only_with_its_most_specific_word(seeds_retriever):
    paper = paper_with(seeds_retriever, "TinyMIM model of tiny size")
    without = seeds_retriever.coverage("Image classification accuracy of aspirin?", paper)  # no paper says aspirin
    assert (without.shared_words, without.query_words) == (3, 4) and not without.holds_most_specific
    assert not without.enough(0.0, 2, 4) and without.enough(0.0, 2, 3)  # longer than 3 words: rule off
    holding = seeds_retriever.coverage("TinyMIM accuracy?", paper)
    assert holding.holds_most_specific and holding.enough(0.30, 2, 4)


def test_a_word_of_the_given_title_counts_as_covered(tmp_path):
    record = {"title": "Quokkanet: sparse attention for genomes",
              "abstract": "We cut the memory of long-sequence models by 40% on three benchmarks."}
    folder = write_corpus(tmp_path / "c", {"a.jsonl": json.dumps(record) + "\n"})
    retriever = Retriever.open(Settings(corpus=folder))
    paper = retriever.search("Quokkanet genomes", 1).hits[0].paper
    coverage = retriever.coverage("How much memory does Quokkanet save on genomes?", paper)
    assert coverage.holds_most_specific and coverage.shared_words >= 3


def paper_of(retriever, word):
    return next(paper for paper in retriever.corpus.papers if word in paper.text)


def opened(tmp_path, abstracts, **settings):
    lines = "".join(json.dumps({"abstract": abstract}) + "\n" for abstract in abstracts)
    folder = write_corpus(tmp_path / "corpus", {"a.jsonl": lines})
    return Retriever.open(Settings(corpus=folder, cache_dir=tmp_path / "cache", **settings)), folder


class Recorded:
    """A progress display that notes what it was told."""

    def __init__(self):
        self.calls = []

    def start(self, files):
        self.calls.append(("start", len(files)))

    def advance(self, reading):
        self.calls.append(("advance", reading.entry.records))

    def finish(self):
        self.calls.append(("finish",))


def test_opening_says_whether_the_index_came_from_the_cache_and_what_the_update_changed(tmp_path):
    progress = Recorded()
    first, folder = opened(tmp_path, ["Quokka graphs are sparse.", "Wombat burrows are deep."])
    assert (first.from_cache, first.changes) == (False, (2, 0))
    settings = Settings(corpus=folder, cache_dir=tmp_path / "cache")
    again = Retriever.open(settings, progress)
    assert (again.from_cache, again.changes, progress.calls) == (True, (0, 0), [("start", 0), ("finish",)])
    progress.calls.clear()
    (folder / "b.jsonl").write_text(json.dumps({"abstract": "Numbat termites are small."}) + "\n", "utf-8")
    (folder / "a.jsonl").write_text(json.dumps({"abstract": "Quokka graphs are sparse."}) + "\n", "utf-8")
    updated = Retriever.open(settings, progress)
    assert (updated.from_cache, updated.changes) == (False, (1, 1))
    assert progress.calls[0] == ("start", 2) and sorted(progress.calls[1:3]) == [("advance", 1), ("advance", 1)]
    assert progress.calls[3:] == [("finish",)]


def test_a_paper_carried_in_is_a_candidate_whatever_its_words(tmp_path):
    retriever, _ = opened(tmp_path, ["Quokka graphs are sparse.", "Wombat burrows are deep.",
                                     "Numbat termites are small."])
    carried = paper_of(retriever, "Wombat")
    hits = retriever.search("quokka graphs", 5, include=(carried.paper_id, "0123456789abcdef")).hits
    assert [hit.paper.paper_id for hit in hits] == [paper_of(retriever, "Quokka").paper_id, carried.paper_id]
    assert hits[0].score > hits[1].score and [hit.rank for hit in hits] == [1, 2]
    assert [hit.paper for hit in retriever.search("quokka graphs", 5).hits] == [paper_of(retriever, "Quokka")]


def test_a_paper_holding_a_named_method_comes_first_though_others_score_more(tmp_path):
    abstracts = [f"Graph networks {i}: graph networks for graph networks." for i in range(5)]
    retriever, _ = opened(tmp_path, abstracts + ["Graph methods with QUOKKANET."])
    named = paper_of(retriever, "QUOKKANET")
    plain = retriever.search("graph networks", 6).hits
    assert plain[-1].paper == named  # it has the least of the query's words
    hits = retriever.search("graph networks", 2, names=("QUOKKANET",)).hits
    assert [hit.paper for hit in hits][:1] == [named] and len(hits) == 2
    assert hits[1].paper == plain[0].paper


def test_a_search_says_its_query_and_how_long_it_took(seeds_retriever, monkeypatch):
    import qa_bot.search.retrieve as retrieve

    clock = iter([100.0, 100.25])
    monkeypatch.setattr(retrieve, "time", type("Clock", (), {"perf_counter": staticmethod(lambda: next(clock))}))
    result = seeds_retriever.search("DOORPING backdoor", 3)
    assert result.query == "DOORPING backdoor" and result.elapsed_ms == 250.0


def test_empty_query_says_what_to_give(seeds_retriever):
    with pytest.raises(BadInputError, match="^empty query: give a few words to search for$"):
        seeds_retriever.search(" \n ", 5)


def test_sentences_of_the_fallback_terms_only_when_the_paper_holds_none_of_the_terms(tmp_path):
    retriever, _ = opened(tmp_path, ["Quokka graphs are sparse. Wombat burrows are deep. Numbat termites are small.",
                                     "Graphs of burrows.", "Termites in graphs."])
    paper = paper_of(retriever, "Quokka")
    wombat, numbat, unknown = (document_terms(word) for word in ("wombat", "numbat", "xyzzy"))
    assert retriever.best_sentences(wombat, paper, 1, numbat) == ["Wombat burrows are deep."]
    assert retriever.best_sentences(unknown, paper, 1, numbat) == ["Numbat termites are small."]
    assert retriever.best_sentences(unknown, paper, 1) == ["Quokka graphs are sparse."]
    favoured = lambda sentence, weight: 100.0 if sentence.startswith("Numbat") else 0.0  # noqa: E731
    assert retriever.best_sentences(wombat, paper, 1, (), favoured) == ["Numbat termites are small."]
    assert retriever.term_weight("xyzzy") == 0.0 and retriever.term_weight(wombat[0]) > 0


def test_coverage_is_the_share_of_the_query_words_weight_by_rank_bm25s_idf(tmp_path):
    abstracts = ["Quokka graphs are sparse.", "Wombat graphs are deep.", "Numbat termites are small.",
                 "Graphs of burrows."]
    retriever, _ = opened(tmp_path, abstracts, bm25_variant="okapi")
    documents = [document_terms(paper.indexed_text) for paper in retriever.corpus.papers]
    idf = rank_bm25.BM25Okapi(documents, epsilon=Settings().bm25_epsilon).idf
    quokka, graph, numbat = (document_terms(word)[0] for word in ("quokka", "graphs", "numbat"))
    covered = retriever.coverage("quokka graphs numbat xyzzy", paper_of(retriever, "Quokka"))
    total = idf[quokka] + idf[graph] + idf[numbat] + max(idf.values())  # a word no paper uses weighs the most
    assert (covered.shared_words, covered.query_words) == (2, 4)
    assert covered.share == pytest.approx((idf[quokka] + idf[graph]) / total, rel=1e-12)


def test_in_a_collection_of_one_paper_an_unknown_word_weighs_as_much_as_a_known_one(tmp_path):
    retriever, _ = opened(tmp_path, ["Quokka graphs are sparse."], bm25_variant="okapi")
    covered = retriever.coverage("quokka xyzzy", retriever.corpus.papers[0])
    assert covered.share == pytest.approx(0.5) and covered.holds_most_specific


def test_a_word_in_every_paper_is_the_most_specific_of_a_query_of_known_words(tmp_path):
    # Okapi's IDF of a word every abstract holds is epsilon x the mean IDF: here below -1.
    retriever, _ = opened(tmp_path, [f"Quokka wombat{'!' * (i + 1)}" for i in range(30)], bm25_variant="okapi")
    assert max(retriever.index.idf) < -1
    covered = retriever.coverage("quokka", retriever.corpus.papers[0])
    assert covered.holds_most_specific and covered.enough(0.3, 2, 4)


def test_a_question_of_question_words_only_covers_nothing(seeds_retriever):
    covered = seeds_retriever.coverage("Which paper proposes a new method?", paper_with(seeds_retriever, "DOORPING"))
    assert (covered.share, covered.shared_words, covered.query_words, covered.holds_most_specific) == (0.0, 0, 0, False)
    assert not covered.enough(0.0, 2, 4)


def test_a_share_just_at_the_minimum_is_enough():
    assert Coverage(0.5, 2, 5, True).enough(0.5, 2, 4)
    assert not Coverage(0.49, 2, 5, True).enough(0.5, 2, 4)


def test_a_name_identifies_a_paper_that_holds_it_when_at_most_three_papers_do(tmp_path):
    abstracts = ([f"QUOKKANET sparse graphs {i}." for i in range(3)]
                 + [f"WOMBATNET deep burrows {i}." for i in range(4)] + ["Numbat termites are small."])
    retriever, _ = opened(tmp_path, abstracts)
    quokka, wombat, numbat = (paper_of(retriever, word) for word in ("QUOKKANET", "WOMBATNET", "Numbat"))
    assert retriever.identifies("QUOKKANET", quokka) and not retriever.identifies("QUOKKANET", numbat)
    assert not retriever.identifies("WOMBATNET", wombat) and retriever.holds("WOMBATNET", wombat)
    assert retriever.knows("QUOKKANET") and not retriever.knows("XYZZYNET") and not retriever.knows("数据集")


def test_in_a_large_collection_a_name_identifies_a_paper_when_at_most_a_thousandth_of_the_papers_hold_it(tmp_path):
    abstracts = [f"Paper {i} on topic{i % 97}." + (" With QUOKKANET." if i < 4 else "") for i in range(4_000)]
    retriever, _ = opened(tmp_path, abstracts)
    holder = paper_of(retriever, "QUOKKANET")
    assert retriever.corpus.paper_count == 4_000 and len(retriever.papers_holding("QUOKKANET")) == 4
    assert retriever.identifies("QUOKKANET", holder)


def test_a_search_of_a_collection_missing_shards_says_which(seeds_retriever, monkeypatch):
    monkeypatch.setattr(seeds_retriever.index, "missing_shards", ("shard 2 of 3",), raising=False)
    result = seeds_retriever.search("graph neural network", 3)
    assert result.hits and result.missing_shards == ("shard 2 of 3",)
