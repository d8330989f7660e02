import json

import pytest

from qa_bot.errors import BadInputError
from qa_bot.retrieve import Retriever
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
