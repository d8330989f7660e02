import pytest

from qa_bot.search.bilingual import dictionary_words, document_terms, gloss_terms, query_terms
from qa_bot.search.tokenize import chinese_terms, chinese_words, english_terms, split_runs


def test_english_is_lowercased_stemmed_and_stop_words_go():
    assert english_terms("The Networks are distilling the Datasets") == ["network", "distil", "dataset"]


def test_acronym_plurals_become_the_acronym():
    assert english_terms("GNNs and PLMs") == ["gnn", "plm"]


def test_hyphenated_compounds_also_count_joined():
    assert set(english_terms("micro-expressions")) == {"micro", "express", "microexpress"}


@pytest.mark.parametrize("text", ["", "   ", "。，！", "😀🎉"])
def test_text_without_words_has_no_terms(text):
    assert document_terms(text) == [] and query_terms(text) == []


def test_chinese_is_segmented_and_stop_words_go():
    words = chinese_words("我们提出了一种新的数据集蒸馏方法")
    assert "蒸馏" in words
    terms = chinese_terms(words)
    assert "蒸馏" in terms and "我们" not in terms and "了" not in terms


def test_latin_runs_inside_chinese_stay_english_terms():
    runs = split_runs("我们提出了MGG,在多GPU平台上加速GNN")
    assert [is_chinese for is_chinese, _ in runs] == [True, False, True, False, True, False]
    terms = document_terms("我们提出了MGG,在多GPU平台上加速GNN")
    assert {"mgg", "gpu", "gnn"} <= set(terms)


def test_split_dictionary_words_are_joined_again():
    assert chinese_words("数据集蒸馏")[:2] == ["数据", "集"]
    assert dictionary_words(chinese_words("数据集蒸馏")) == ["数据集", "蒸馏"]


def test_technical_senses_come_first():
    assert gloss_terms("后门")[0] == "backdoor"
    assert gloss_terms("变压器") == ("transform",)
    assert gloss_terms("图") == ()


def test_chinese_documents_carry_english_glosses():
    terms = document_terms("变压器验证")
    assert {"变压器", "验证", "transform", "verif"} <= set(terms)


def test_chinese_queries_use_glosses_instead_of_words():
    terms = query_terms("数据集蒸馏 后门攻击")
    assert {"dataset", "distil", "backdoor", "attack"} <= set(terms)
    assert "蒸馏" not in terms


def test_documents_and_queries_share_english_terms():
    assert query_terms("transformer verification") == document_terms("transformer verification")


def test_mixed_query_keeps_both_parts():
    # CC-CEDICT's senses of 加速, stemmed: "to speed up; to expedite" (acceler-ate first).
    assert query_terms("GNN 加速") == ["gnn", "acceler", "speed", "expedit"]
