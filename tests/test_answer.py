"""The answer pipeline with a fake model: paths, the contract, abstention, follow-ups, bad output."""

import json

import pytest

from qa_bot.answer.assistant import ABSTENTION, Assistant
from qa_bot.answer.prompts import render_prompt
from qa_bot.answer.query import analyse
from qa_bot.search import bilingual
from qa_bot.search.retrieve import Retriever
from qa_bot.app.output import answer_json
from qa_bot.answer.conversation import Conversation
from qa_bot.errors import BadInputError
from qa_bot.settings import Settings
from tests.conftest import SEEDS, paper_with
from tests.contract import assert_contract
from tests.fakes import FakeModel
from tests.test_cite import answer_line

MGTAB = "10,199 expert-annotated"
MGG = "MGG探讨了"


@pytest.fixture
def settings(tmp_path):
    return Settings(corpus=SEEDS, cache_dir=tmp_path / "cache")


def ask(retriever, settings, model, question, conversation=None):
    assistant = Assistant(retriever, model, settings)
    stream = assistant.ask(question, conversation)
    streamed = "".join(stream)
    answer = stream.answer
    contract = json.loads(answer_json(answer))
    assert_contract(contract, {p.paper_id: p.text for p in retriever.corpus.papers})
    assert streamed == answer.text, "what streams is what the answer says"
    return answer, contract


def test_a_supported_answer_is_kept_with_its_citation(seeds_retriever, settings):
    model = FakeModel("MGTAB contains 10,199 expert-annotated users [1].")
    answer, contract = ask(seeds_retriever, settings, model, "How many expert-annotated users does MGTAB contain?")
    assert answer.path == "generated"
    assert contract["answer"] == "MGTAB contains 10,199 expert-annotated users [1]."
    assert contract["citations"][0]["paper_id"] == paper_with(seeds_retriever, MGTAB).paper_id
    assert "10,199" in contract["citations"][0]["evidence"]


def test_the_model_sees_numbered_evidence_sentences_not_whole_abstracts(seeds_retriever, settings):
    model = FakeModel("MGTAB contains 10,199 expert-annotated users [1].")
    ask(seeds_retriever, settings, model, "How many expert-annotated users does MGTAB contain?")
    prompt = model.prompts[0][-1]["content"]
    assert "[1] " in prompt and "10,199 expert-annotated users" in prompt
    assert paper_with(seeds_retriever, MGTAB).text not in prompt


@pytest.mark.parametrize(
    "reply",
    [
        "MGTAB contains 99,999 expert-annotated users [1].",  # a number the evidence does not hold
        "",  # nothing at all
        "%%% ### ... 1.1.1 @@",  # garbage
    ],
)
def test_an_unusable_reply_falls_back_to_quoting_the_evidence(seeds_retriever, settings, reply):
    answer, contract = ask(seeds_retriever, settings, FakeModel(reply), "How many expert-annotated users does MGTAB contain?")
    assert answer.path == "extractive" and contract["path"] == "extractive"
    assert "99,999" not in contract["answer"]
    quoted = contract["answer"].removesuffix(" [1].")
    assert quoted.rstrip(".") in paper_with(seeds_retriever, MGTAB).text


def test_endless_repetition_is_stopped_early(seeds_retriever, settings):
    model = FakeModel("MGTAB contains 10,199 expert-annotated users [1].", endless=True)
    answer, _ = ask(seeds_retriever, settings, model, "How many expert-annotated users does MGTAB contain?")
    assert model.pieces_sent < settings.max_answer_tokens / 2
    assert answer.text == "MGTAB contains 10,199 expert-annotated users [1]."


def test_every_whole_sentence_of_a_looping_answer_is_checked(seeds_retriever, settings):
    first, second = "MGTAB contains 10,199 expert-annotated users [1].", "MGTAB contains 7 types of relationships [1]."
    model = FakeModel(f"{first} {second}", endless=True)
    answer, _ = ask(seeds_retriever, settings, model, "How many users and relationship types does MGTAB contain?")
    assert answer.text == f"{first} {second}"


def test_an_english_question_cites_a_chinese_only_paper(seeds_retriever, settings):
    model = FakeModel("MGG is 7.38 times faster than the DGCL framework [1].")
    answer, contract = ask(seeds_retriever, settings, model, "How much faster is MGG than the DGCL framework?")
    assert answer.path == "generated"
    assert contract["citations"][0]["paper_id"] == paper_with(seeds_retriever, MGG).paper_id
    assert contract["citations"][0]["lang"] == "zh"


@pytest.mark.parametrize(
    "question, language, judged",
    [
        # Names (France, FIFA) and words (coral reef, moon, aspirin) that no abstract uses in any
        # form: declined before the model judges.
        ("What is the capital of France?", "en", False),
        ("Who won the 2018 FIFA World Cup?", "en", False),
        ("气候变化对珊瑚礁有什么影响？", "zh", False),
        # One word shared with a paper ("big"), which is half of the question's weight: not enough.
        ("How big is the moon?", "en", False),
        ("月球有多大？", "zh", False),
        # "paper", "proposes", "new" frame the question; only "algorithm" is about a topic. Every
        # word is used somewhere ("sorted"), so the model judges.
        ("Which paper proposes a new sorting algorithm?", "en", True),
        ("How does climate change affect image classification?", "en", True),
        # A short question whose most specific word no paper holds.
        ("What are the side effects of aspirin?", "en", False),
    ],
)
def test_what_no_paper_answers_nor_is_about_is_declined_whatever_the_model_wrote(seeds_retriever, settings, question,
                                                                                  language, judged):
    model = FakeModel("Paris is the capital of France [1].", coverage=0.0)
    answer, contract = ask(seeds_retriever, settings, model, question)
    assert contract["abstained"] is True and contract["citations"] == [] and contract["outcome"] == "out_of_corpus"
    assert contract["answer"] == ABSTENTION[language] and answer.generated == ""
    # Every evidence paper was asked whether it answers, then the best whether it is about the subject.
    asked = [messages[-1]["content"].splitlines()[-1] for messages in model.judged]
    assert bool(asked) == judged
    assert not asked or ("about the subject" in asked[-1] and all("answer this question" in line for line in asked[:-1])
                         and len(asked) > 1)


def test_a_word_no_abstract_uses_declines_what_the_papers_do_not_cover_whatever_the_judge_says(seeds_retriever, settings):
    """The judge of a small model finds the ERA5 abstract answers '气候变化对珊瑚礁有什么影响？'
    (P 0.55): no abstract says "coral reef" in any form, and the papers' words do not cover it."""
    model = FakeModel("Coral reefs bleach [1].", coverage=1.0)
    answer, contract = ask(seeds_retriever, settings, model, "气候变化对珊瑚礁有什么影响？")
    assert contract["outcome"] == "out_of_corpus" and contract["citations"] == []
    assert model.prompts == [] == model.judged
    # A word no abstract uses, in a question the papers' words cover, is left to the judge.
    question = CHATTY + "how many expert-annotated users does MGTAB contain?"
    assert seeds_retriever.unused_words(question)
    answer, _ = ask(seeds_retriever, settings, FakeModel("MGTAB contains 10,199 expert-annotated users [1].", coverage=1.0), question)
    assert answer.outcome == "answered" and answer.path == "generated"


def test_the_questions_words_are_found_once_when_it_is_analysed(seeds_retriever, settings, monkeypatch):
    """Retrieval, coverage, evidence and the check read the words the query carries (issue 22)."""
    seen, found = [], bilingual.content_words
    monkeypatch.setattr(bilingual, "content_words", lambda text: seen.append(text) or found(text))
    question = "How many expert-annotated users does MGTAB contain?"
    answer, _ = ask(seeds_retriever, settings, FakeModel("MGTAB contains 10,199 expert-annotated users [1]."), question)
    assert answer.outcome == "answered"
    assert seen.count(question) == 3  # the whole question, the part that asks and its one part, by `analyse`


def test_the_paper_the_best_source_is_about_but_does_not_answer_is_not_stated(seeds_retriever, settings):
    def judged(messages):  # about the subject, but no source answers
        return 1.0 if "about the subject" in messages[-1]["content"] else 0.0

    question = "How does climate change affect image classification?"
    answer, contract = ask(seeds_retriever, settings, FakeModel("x [1].", coverage=judged), question)
    assert contract["outcome"] == "not_stated" and contract["citations"] == []
    assert answer.evidence[0].paper.title in contract["answer"]


def test_the_paper_a_question_names_does_not_state_what_no_source_answers_even_off_its_subject(seeds_retriever,
                                                                                                 settings):
    """Named, the paper is what the question is about, whatever the judge says of its subject."""
    question = "How many expert-annotated users does MGTAB contain?"
    answer, contract = ask(seeds_retriever, settings, FakeModel("x [1].", coverage=0.0), question)
    assert contract["outcome"] == "not_stated" and contract["citations"] == []
    assert answer.evidence[0].paper == paper_with(seeds_retriever, MGTAB)


def test_each_evidence_source_is_judged_on_the_question_as_asked(seeds_retriever, settings):
    question = "How many expert-annotated users does MGTAB contain?"

    def first_answers(messages):
        content = messages[-1]["content"]
        return 1.0 if f"Question: {question}\n" in content and "Does source [1] answer" in content else 0.0

    answer, _ = ask(seeds_retriever, settings, FakeModel("MGTAB contains 10,199 expert-annotated users [1].",
                                                         coverage=first_answers), question)
    assert answer.outcome == "answered" and [citation.marker for citation in answer.citations] == [1]


def test_the_best_source_alone_is_judged_about_the_subject_on_the_question_as_asked(seeds_retriever, settings):
    question = "How does climate change affect image classification?"

    def first_about(messages):
        content = messages[-1]["content"]
        return 1.0 if f"Question: {question}\n" in content and "Is source [1] about the subject" in content else 0.0

    answer, contract = ask(seeds_retriever, settings, FakeModel("x [1].", coverage=first_about), question)
    assert len(answer.evidence) > 1 and contract["outcome"] == "not_stated"


@pytest.mark.parametrize("question, judged, outcome", [
    ("How many expert-annotated users does MGTAB contain?", "answer this question", "answered"),
    ("How does climate change affect image classification?", "about the subject", "not_stated"),
])
def test_a_judgment_at_its_threshold_passes(seeds_retriever, settings, question, judged, outcome):
    thresholds = {"answer this question": settings.answers_threshold, "about the subject": settings.about_threshold}

    def at_threshold(messages):
        return thresholds[judged] if judged in messages[-1]["content"] else 0.0

    answer, _ = ask(seeds_retriever, settings, FakeModel("MGTAB contains 10,199 expert-annotated users [1].",
                                                         coverage=at_threshold), question)
    assert answer.outcome == outcome


def test_what_abstracts_rarely_hold_is_not_the_judges_to_decide(seeds_retriever, settings):
    """Whether the code is available is found by a pattern ("Code is available at"), not judged."""
    model = FakeModel("Code is available at https://github.com/OliverRensu/TinyMIM [1].", coverage=0.0)
    answer, _ = ask(seeds_retriever, settings, model, "Is TinyMIM's source code available?")
    assert answer.outcome == "answered" and "github.com/OliverRensu/TinyMIM" in answer.text
    assert all("Answer sentence:" in messages[-1]["content"] for messages in model.judged)


def test_a_sentence_may_cite_only_a_source_the_judge_finds_answering(seeds_retriever, settings):
    """Source [2] (GMM) states what the model wrote, but the judge finds only [1] answering."""
    question = "What R@1 retrieval score does the diverse image captioning method reach?"

    def second_states(messages):
        return 1.0 if "Does source [2] state" in messages[-1]["content"] else 0.0

    model = FakeModel("The method improves accuracy by up to 1.1% and diversity by up to 4.8% [2].", judgment=second_states,
                      coverage=lambda messages: 1.0 if "Does source [1] answer" in messages[-1]["content"] else 0.0)
    answer, _ = ask(seeds_retriever, settings, model, question)
    assert any("4.8%" in sentence for sentence in answer.evidence[1].sentences)
    assert answer.outcome == "answered" and answer.path == "extractive"
    assert {citation.marker for citation in answer.citations} == {1}


def test_a_question_naming_what_no_abstract_mentions_is_declined_without_the_model(seeds_retriever, settings):
    model = FakeModel("FooBarNet reaches 99% [1].")
    answer, contract = ask(seeds_retriever, settings, model, "What accuracy does FooBarNet reach?")
    assert contract["outcome"] == "out_of_corpus" and model.prompts == [] and model.judged == []


def test_a_name_no_abstract_mentions_is_out_of_the_collection_by_the_word_rules(seeds_retriever, settings):
    """"GraphSketch" begins as words the abstracts use ("graph"), and the rest of the question is covered:
    the name decides."""
    question = "How does GraphSketch speed up graph neural network training?"
    model = FakeModel("GraphSketch samples the graph [1].")
    found = Assistant(seeds_retriever, model, settings).retrieve(analyse(question))
    assert found.unknown_names is True and found.outcome == "out_of_corpus" and found.unused_words == ()
    answer, _ = ask(seeds_retriever, settings, model, question)
    assert answer.outcome == "out_of_corpus" and model.prompts == [] == model.judged


@pytest.mark.parametrize("question", ["Which papers study climate change in image classification?",
                                      "Which papers study coral reef bleaching?"])
def test_a_list_of_papers_on_what_the_collection_does_not_cover_is_declined(seeds_retriever, settings, question):
    answer, _ = ask(seeds_retriever, settings, FakeModel("x [1].", coverage=0.0), question)
    assert answer.outcome == "out_of_corpus" and answer.path != "listed" and answer.citations == []


def test_what_the_word_rules_find_uncovered_is_declined_before_a_model_that_cannot_judge_writes(seeds_retriever,
                                                                                              settings):
    model = FakeModel("Climate change blurs images [1].", follows_instructions=False)
    answer, _ = ask(seeds_retriever, settings, model, "How does climate change affect image classification?")
    assert answer.outcome == "out_of_corpus" and model.prompts == []


def test_a_model_that_cannot_judge_leaves_coverage_to_the_word_rules(seeds_retriever, settings):
    model = FakeModel("MGTAB contains 10,199 expert-annotated users [1].", coverage=0.0, follows_instructions=False)
    answer, _ = ask(seeds_retriever, settings, model, "How many expert-annotated users does MGTAB contain?")
    assert answer.outcome == "answered" and answer.path == "generated"
    answer, _ = ask(seeds_retriever, settings, model, "How big is the moon?")
    assert answer.outcome == "out_of_corpus" and len(model.prompts) == 1  # declined before it wrote
    assert all("Answer sentence:" in messages[-1]["content"] for messages in model.judged)


def test_only_a_source_the_judge_finds_answering_is_cited(seeds_retriever, settings):
    def answering_first(messages):
        return 1.0 if "Does source [1] answer" in messages[-1]["content"] else 0.0

    model = FakeModel("MGTAB contains 10,199 expert-annotated users [2]. MGTAB has 7 types of relationships [1].",
                      coverage=answering_first)
    answer, _ = ask(seeds_retriever, settings, model, "How many expert-annotated users does MGTAB contain?")
    assert {citation.marker for citation in answer.citations} == {1}


def test_a_followup_is_answered_from_the_paper_of_the_previous_turn(seeds_retriever, settings):
    conversation = Conversation()
    model = FakeModel(
        "MGTAB is a graph-based Twitter account detection benchmark [1].",
        "It contains 10,199 expert-annotated users [1].",
    )
    ask(seeds_retriever, settings, model, "What is MGTAB?", conversation)
    answer, contract = ask(seeds_retriever, settings, model, "How many expert-annotated users does it contain?", conversation)
    assert answer.query != answer.question  # searched together with the earlier turn
    assert contract["citations"][0]["paper_id"] == paper_with(seeds_retriever, MGTAB).paper_id
    assert "10,199" in model.prompts[1][-1]["content"]


def test_a_new_topic_in_a_conversation_is_not_mixed_with_the_previous_one(seeds_retriever, settings):
    conversation = Conversation()
    model = FakeModel("MGTAB is a graph-based Twitter account detection benchmark [1].")
    ask(seeds_retriever, settings, model, "What is MGTAB?", conversation)
    answer, _ = ask(seeds_retriever, settings, model, "What is the capital of France?", conversation)
    assert answer.abstained


def test_an_empty_question_is_bad_input(seeds_retriever, settings):
    with pytest.raises(BadInputError):
        Assistant(seeds_retriever, FakeModel("x"), settings).ask("   ")


def test_a_followup_that_points_back_is_answered_from_the_sentence_its_own_words_pick(seeds_retriever, settings):
    """"How much faster is it?" names nothing the corpus could cover alone; with the earlier turn
    it is about MGG, and of MGG's sentences the one about speed is the evidence."""
    conversation = Conversation()
    model = FakeModel("unusable", judgment=0.0)
    ask(seeds_retriever, settings, model, "MGG用什么方法在多GPU平台上加速GNN？", conversation)
    answer, contract = ask(seeds_retriever, settings, model, "How much faster is it than the state of the art?", conversation)
    assert contract["citations"][0]["paper_id"] == paper_with(seeds_retriever, MGG).paper_id
    assert "3.65" in model.prompts[1][-1]["content"] and "3.65" in answer.text


def test_a_question_that_asks_two_things_gets_the_sentence_for_each(seeds_retriever, settings):
    """The model's reply is unusable, so the answer is quoted: the sentence introducing the module
    and, for the second part, the one naming the climate dataset (ERA5), not only the first."""
    question = "Is there a PyTorch module for Koopman neural operators? On which global climate dataset was it validated?"
    answer, contract = ask(seeds_retriever, settings, FakeModel("unusable", judgment=0.0), question)
    assert answer.outcome == "answered"
    assert "PyTorch module" in contract["answer"] and "ERA5" in contract["answer"]


@pytest.mark.parametrize(
    "question, key",
    [
        ("What NMI score does CCGC achieve on the Cora dataset?", "CCGC"),  # a dataset the abstract does not name
        ("Who are the authors of the DFME paper?", "DFME"),
    ],
)
def test_what_the_named_papers_abstract_does_not_hold_is_not_stated(seeds_retriever, settings, question, key):
    model = FakeModel("It reaches 99.9 [1].")
    answer, contract = ask(seeds_retriever, settings, model, question)
    paper = paper_with(seeds_retriever, key)
    assert contract["outcome"] == "not_stated" and contract["abstained"] is True and contract["citations"] == []
    assert paper.title in contract["answer"]
    assert contract["sources"][0]["paper_id"] == paper.paper_id
    # Found by the rules (a dataset the abstract does not name; authors), before anything is written or judged.
    assert model.prompts == [] == model.judged


def test_which_papers_is_answered_with_every_paper_that_qualifies_each_cited(seeds_retriever, settings):
    """RELIANT and KD-CI-CAM use knowledge distillation (so does TinyMIM, in other words); a list
    comes from retrieval, so the model is not asked, and a pronoun inside the question ("its") does
    not make it a follow-up."""
    model = FakeModel("unusable", judgment=0.0)
    answer, contract = ask(seeds_retriever, settings, model, "Which papers use knowledge distillation to train their models?")
    cited = {citation["paper_id"] for citation in contract["citations"]}
    assert answer.path == "listed" and model.prompts == []
    assert {paper_with(seeds_retriever, "RELIANT").paper_id, paper_with(seeds_retriever, "KD-CI-CAM").paper_id} <= cited
    assert len(contract["citations"]) == len(answer.text.splitlines()) - 1  # one cited line per paper


def test_a_kept_number_that_is_not_the_one_asked_for_gets_the_right_sentence_quoted(seeds_retriever, settings):
    """"two types of attacks" holds a number, but the question asks for the success rate."""
    model = FakeModel("We propose two types of backdoor attacks, namely NAIVEATTACK and DOORPING [1].")
    answer, contract = ask(seeds_retriever, settings, model, "What attack success rate does DOORPING come close to?")
    assert "two types of backdoor attacks" in contract["answer"] and "close to 1.0" in contract["answer"]


def test_a_kept_sentence_that_answers_the_question_is_the_whole_answer(seeds_retriever, settings):
    model = FakeModel("TinyMIM reaches 79.6% top-1 accuracy on ImageNet-1K [1].")
    answer, contract = ask(seeds_retriever, settings, model, "What accuracy does TinyMIM reach on ImageNet?")
    assert contract["answer"] == "TinyMIM reaches 79.6% top-1 accuracy on ImageNet-1K [1]."
    assert contract["citations"][0]["evidence"].startswith("Our TinyMIM model of tiny size achieves 79.6%")


def test_a_number_word_inside_a_compound_is_no_quantity():
    from qa_bot.answer.evidence import NUMERAL

    assert NUMERAL.search("We propose a two-level scheme for partitioning.") is None
    assert NUMERAL.search("It uses two levels, and is 1.8 times faster.") is not None
    assert NUMERAL.search("设计了六种不同的攻击") is not None and NUMERAL.search("一种新的方法") is None


def test_not_stated_says_what_is_missing_in_the_askers_language(seeds_retriever, settings):
    dfme = paper_with(seeds_retriever, "DFME")
    answer, _ = ask(seeds_retriever, settings, FakeModel("x"), "Who are the authors of the DFME paper?")
    assert answer.text == f'The abstract of "{dfme.title}" does not state who wrote it.'
    answer, _ = ask(seeds_retriever, settings, FakeModel("x"), "DFME数据集的作者是谁？")
    assert answer.text == f"“{dfme.title}”的摘要没有提到作者是谁。"


def test_a_list_of_papers_is_one_line_each_numbered_from_one(seeds_retriever, settings):
    answer, _ = ask(seeds_retriever, settings, FakeModel("x"), "Which papers use knowledge distillation to train their models?")
    lines = answer.text.split("\n- ")
    assert lines[0] == "Papers in this collection that match:" and len(lines) == len(answer.citations) + 1
    assert [citation.marker for citation in answer.citations] == list(range(1, len(answer.citations) + 1))
    scores = {hit.paper.paper_id: hit.score for hit in seeds_retriever.search(
        "Which papers use knowledge distillation to train their models?", 20).hits}
    assert all(source.score == scores[source.paper.paper_id] for source in answer.evidence)


def test_each_sentence_streams_as_soon_as_the_judge_keeps_it(seeds_retriever, settings):
    first, second = "MGTAB contains 10,199 expert-annotated users [1].", "MGTAB contains 7 types of relationships [1]."
    model = FakeModel(f"{first} {second}")
    stream = Assistant(seeds_retriever, model, settings).ask("How many users and relationship types does MGTAB contain?")
    pieces = iter(stream)
    assert next(pieces) == first
    # The answer was written whole (the judge is the same model), and only its first sentence judged yet.
    assert model.pieces_sent == len(f"{first} {second}".split())
    supports = [messages for messages in model.judged if "Answer sentence:" in messages[-1]["content"]]
    assert [answer_line(messages) for messages in supports] == [f"Answer sentence: {first.replace(' [1]', '')}"]
    list(pieces)
    assert stream.answer.dropped == [] and stream.answer.timings.first_token_ms > 0


def test_nothing_the_check_keeps_means_the_best_evidence_sentence_is_quoted(seeds_retriever, settings):
    answer, _ = ask(seeds_retriever, settings, FakeModel("Dogs are loyal animals [1]."),
                    "How many expert-annotated users does MGTAB contain?")
    assert answer.path == "extractive" and answer.text.startswith(answer.evidence[0].best_sentence.rstrip("."))


def test_a_turn_is_remembered_with_its_question_and_search(seeds_retriever, settings):
    conversation = Conversation()
    model = FakeModel("MGTAB contains 10,199 expert-annotated users [1].")
    Assistant(seeds_retriever, model, settings).answer("How many expert-annotated users does MGTAB contain?", conversation)
    (turn,) = conversation.turns
    assert turn.question == "How many expert-annotated users does MGTAB contain?" == turn.query
    assert turn.cited_paper_ids == (paper_with(seeds_retriever, MGTAB).paper_id,)


def test_the_model_is_given_the_system_prompt_and_the_question_with_its_evidence(seeds_retriever, settings):
    from qa_bot.answer.prompts import render_prompt

    model = FakeModel("MGTAB contains 10,199 expert-annotated users [1].")
    answer, _ = ask(seeds_retriever, settings, model, "How many expert-annotated users does MGTAB contain?")
    (system, user), = model.prompts
    assert system == {"role": "system", "content": render_prompt(settings.prompts_dir, "system")}
    assert user["role"] == "user" and "How many expert-annotated users does MGTAB contain?" in user["content"]
    assert f"[1] {answer.evidence[0].text}" in user["content"] and "English" in user["content"]
    citation, = answer.citations
    assert citation.answer_spans == ("10,199", "MGTAB")
    assert citation.evidence == next(s for s in answer.evidence[0].sentences if "10,199" in s)


def test_sentences_are_joined_by_a_space_and_chinese_ones_by_nothing(seeds_retriever, settings):
    first, second = "MGTAB contains 10,199 expert-annotated users [1].", "MGTAB contains 7 types of relationships [1]."
    answer, _ = ask(seeds_retriever, settings, FakeModel(f"{first} {second}"),
                    "How many users and relationship types does MGTAB contain?")
    assert answer.text == f"{first} {second}"
    answer, _ = ask(seeds_retriever, settings, FakeModel("MGG平均比DGCL框架快7.38倍[1]。MGG平均比具有统一虚拟内存设计的多GPU系统快3.65倍[1]。"),
                    "MGG比DGCL框架快多少倍？")
    assert answer.text == "MGG平均比DGCL框架快7.38倍[1]。MGG平均比具有统一虚拟内存设计的多GPU系统快3.65倍[1]。"


@pytest.mark.parametrize("translation", ["DFME includes 7,526 well-labeled ME videos.", "DFME 包含 7,000 个微表情视频。"],
                         ids=["not-translated", "number-changed"])
def test_a_sentence_in_the_other_language_is_quoted_from_its_evidence_exactly(seeds_retriever, settings, translation):
    model = FakeModel("DFME includes 7,526 well-labeled ME videos [1].", translation)
    answer, _ = ask(seeds_retriever, settings, model, "DFME数据集有多少个微表情视频？")
    evidence = next(s for s in answer.evidence[0].sentences if "7,526" in s)
    assert answer.text.startswith(f"据英文摘要[1]：“{evidence.rstrip('.')}”。")
    assert "Translate this sentence" in model.prompts[1][-1]["content"]  # the model was asked to translate it


def test_a_translation_the_check_keeps_is_the_answer_in_the_askers_language(seeds_retriever, settings):
    model = FakeModel("DFME includes 7,526 well-labeled ME videos [1].", "DFME 包含 7,526 个标注良好的微表情视频。")
    answer, _ = ask(seeds_retriever, settings, model, "DFME数据集有多少个微表情视频？")
    assert answer.text == "DFME 包含 7,526 个标注良好的微表情视频[1]。"
    assert answer.citations[0].answer_spans == ("7,526", "DFME")
    # The translation was judged like any sentence: against the source it cites.
    assert "Answer sentence: DFME 包含 7,526 个标注良好的微表情视频" in model.judged[-1][-1]["content"]


DFME_QUESTION = "DFME数据集有多少个微表情视频？"


def test_the_kept_sentence_is_translated_and_judged_on_the_question_as_asked(seeds_retriever, settings):
    def with_question(messages):
        return 1.0 if f"Question: {DFME_QUESTION}\n" in messages[-1]["content"] else 0.0

    model = FakeModel("DFME includes 7,526 well-labeled ME videos [1].", "DFME 包含 7,526 个标注良好的微表情视频。",
                      judgment=with_question)
    answer, _ = ask(seeds_retriever, settings, model, DFME_QUESTION)
    asked = render_prompt(settings.prompts_dir, "translate", sentence="DFME includes 7,526 well-labeled ME videos.",
                          language="Chinese")
    assert model.prompts[1] == [{"role": "user", "content": asked}]
    assert answer.text == "DFME 包含 7,526 个标注良好的微表情视频[1]。"


def test_a_translation_in_two_sentences_is_kept_as_one(seeds_retriever, settings):
    model = FakeModel("DFME includes 7,526 well-labeled ME videos [1].", "DFME 包含 7,526 个微表情视频。它们都标注良好。")
    answer, _ = ask(seeds_retriever, settings, model, DFME_QUESTION)
    assert answer.text == "DFME 包含 7,526 个微表情视频。 它们都标注良好[1]。"


def test_a_translation_is_cut_at_the_answers_token_limit(seeds_retriever, settings):
    model = FakeModel("DFME has 7,526 videos [1].", "DFME 包含 7,526 个 标注 良好 的 微表情视频 它们 来自 671 名 参与者 。")
    limited = Settings(corpus=SEEDS, cache_dir=settings.cache_dir, max_answer_tokens=8)
    answer, _ = ask(seeds_retriever, limited, model, DFME_QUESTION)
    assert answer.text == "DFME 包含 7,526 个 标注 良好 的 微表情视频[1]。"


def test_a_base_model_is_not_asked_to_translate(seeds_retriever, settings):
    model = FakeModel("DFME includes 7,526 well-labeled ME videos [1].", follows_instructions=False)
    answer, _ = ask(seeds_retriever, settings, model, "DFME数据集有多少个微表情视频？")
    assert answer.text.startswith("据英文摘要[1]：“") and len(model.prompts) == 1


class CountingModel(FakeModel):
    """A fake model whose tokenizer counts every text as `tokens` tokens, and keeps the texts."""

    def __init__(self, *replies, tokens=100):
        super().__init__(*replies)
        self.tokens, self.counted = tokens, []

    def count_tokens(self, text):
        self.counted.append(text)
        return self.tokens


def test_the_question_gets_the_context_window_less_the_answer_the_evidence_and_the_prompt(seeds_retriever, tmp_path):
    settings = Settings(corpus=SEEDS, cache_dir=tmp_path, n_ctx=2048, max_answer_tokens=160, evidence_tokens=400,
                        max_question_tokens=2048)
    model = CountingModel(tokens=100)
    assert Assistant(seeds_retriever, model, settings).question_budget() == 2048 - 160 - 400 - 100 - 48
    (frame,) = model.counted  # the prompt files around an empty question and empty evidence
    assert "Answer in English, citing" in frame and "Question: \n" in frame
    assert "None" not in frame and "XXXX" not in frame and "$" not in frame


def test_a_context_window_that_leaves_fewer_than_16_tokens_for_the_question_is_bad_input(seeds_retriever, tmp_path):
    # 724 - 160 - 400 - 100 - 48 = 16 tokens: just enough.
    enough = Settings(corpus=SEEDS, cache_dir=tmp_path, n_ctx=724, max_answer_tokens=160, evidence_tokens=400)
    assert Assistant(seeds_retriever, CountingModel(), enough).question_budget() == 16
    short = Settings(corpus=SEEDS, cache_dir=tmp_path, n_ctx=723, max_answer_tokens=160, evidence_tokens=400)
    with pytest.raises(BadInputError, match="n_ctx 723 leaves no room"):
        Assistant(seeds_retriever, CountingModel(), short).question_budget()


def test_without_a_model_the_question_is_not_cut(seeds_retriever, settings):
    assert Assistant(seeds_retriever, None, settings).fitted("How many users does MGTAB contain?") == (
        "How many users does MGTAB contain?", False)


def test_the_answer_is_known_only_once_the_stream_has_run(seeds_retriever, settings):
    stream = Assistant(seeds_retriever, FakeModel("x"), settings).ask("What is MGTAB?")
    assert stream.answer is None
    list(stream)
    assert stream.answer.question == "What is MGTAB?"


def test_a_declined_question_says_so_and_keeps_what_was_searched(seeds_retriever, settings):
    # Nothing covers it; a word and a name no paper uses.
    for question in ("Which paper proposes a new sorting algorithm?", "How big is the moon?", "What is FooBarNet?"):
        answer, _ = ask(seeds_retriever, settings, FakeModel("x", name="tiny.gguf", coverage=0.0), question)
        assert (answer.outcome, answer.path, answer.text) == ("out_of_corpus", "abstained", ABSTENTION["en"])
        assert answer.query == question and answer.model == "tiny.gguf"
        assert answer.generated == "" and answer.dropped == []
        # The model wrote before the judge declined; a word or a name no paper has is declined before it writes.
        assert (answer.timings.first_token_ms is None) == (question != "Which paper proposes a new sorting algorithm?")


def test_a_not_stated_answer_is_an_abstention_that_keeps_its_evidence(seeds_retriever, settings):
    answer, _ = ask(seeds_retriever, settings, FakeModel("x", name="tiny.gguf"), "Who are the authors of the DFME paper?")
    assert (answer.outcome, answer.path, answer.citations, answer.model) == ("not_stated", "abstained", [], "tiny.gguf")
    assert answer.evidence[0].paper == paper_with(seeds_retriever, "DFME") and answer.generated == ""


def test_the_model_is_asked_for_at_most_max_answer_tokens(seeds_retriever, tmp_path):
    settings = Settings(corpus=SEEDS, cache_dir=tmp_path, max_answer_tokens=8)
    model = FakeModel("MGTAB contains 10,199 expert-annotated users [1]. MGTAB contains 7 types of relationships [1].")
    ask(seeds_retriever, settings, model, "How many expert-annotated users does MGTAB contain?")
    assert model.pieces_sent == 8


def test_an_unusable_reply_to_what_is_a_paper_quotes_the_sentence_that_introduces_it(seeds_retriever, settings):
    answer, _ = ask(seeds_retriever, settings, FakeModel("unusable", judgment=0.0), "What is MGTAB?")
    assert answer.path == "extractive"
    assert answer.text == ("To address these issues, we propose a Multi-Relational Graph-Based Twitter Account Detection "
                           "Benchmark (MGTAB), the first standardized graph-based benchmark for account detection [1].")


def test_evidence_sentences_keep_the_abstracts_order(seeds_retriever, settings):
    """"To our knowledge ..." comes before "MGTAB contains ..." in the abstract (not in the alphabet)."""
    answer, _ = ask(seeds_retriever, settings, FakeModel("x"), "How many expert-annotated users does MGTAB contain?")
    assert answer.evidence[0].sentences == [
        "To our knowledge, MGTAB was built based on the largest original data in the field, with over 1.55 million users "
        "and 130 million tweets.",
        "MGTAB contains 10,199 expert-annotated users and 7 types of relationships, ensuring high-quality annotation and "
        "diversified relations.",
    ]


def test_a_list_of_papers_looks_past_the_top_k_papers(seeds_retriever, tmp_path):
    settings = Settings(corpus=SEEDS, cache_dir=tmp_path, top_k=2)
    # Through the contract: every cited paper is among the JSON's "sources", however long the list.
    answer, contract = ask(seeds_retriever, settings, FakeModel("x"), "Which papers use graph neural networks?")
    titles = [citation.paper.title.split(":")[0] for citation in answer.citations]
    assert titles == ["GANExplainer", "RELIANT", "CCGC"]
    sources = contract["sources"]
    assert [source["rank"] for source in sources] == list(range(1, len(sources) + 1))
    assert sources[-1]["paper_id"] == answer.citations[-1].paper.paper_id  # down to the last paper listed


def test_the_prompt_of_an_answer_is_the_one_the_model_was_given(seeds_retriever, settings):
    model = FakeModel("MGTAB contains 10,199 expert-annotated users [1].")
    assistant = Assistant(seeds_retriever, model, settings)
    answer = assistant.answer("How many expert-annotated users does MGTAB contain?")
    assert assistant.prompt_messages(answer) == model.prompts[0]


def test_an_empty_question_is_told_to_ask_something(seeds_retriever, settings):
    with pytest.raises(BadInputError) as raised:
        Assistant(seeds_retriever, FakeModel("x"), settings).ask(" \n ")
    assert str(raised.value) == "empty question: ask something about the papers"


def test_times_are_in_milliseconds(monkeypatch):
    from qa_bot.answer import assistant as answer_module

    monkeypatch.setattr(answer_module.time, "perf_counter", lambda: 12.5)
    assert answer_module.elapsed_ms(10.0) == 2500.0


def test_a_sentence_an_abstract_repeats_is_cited_where_it_first_appears():
    from qa_bot.answer.assistant import enclosing_span

    text = "A is one. B is two. A is one. C is three."
    assert enclosing_span(text, ["B is two.", "A is one."]) == "A is one. B is two."
    assert enclosing_span(text, ["C is three.", "B is two."]) == "B is two. A is one. C is three."


CHATTY = "I work at a hospital in the evenings and my cousin grows tomatoes, apples, pears and roses in her garden near the lake, so "


@pytest.mark.parametrize(
    "question, outcome, key",
    [
        ("How many expert-annotated users does MGTAB contain?", "answer", MGTAB),  # names its paper
        ("How many expert-annotated users does the Twitter account detection benchmark contain?", "answer", MGTAB),
        # The paper is found, but none of its sentences with a number is about stance detection methods.
        ("How many stance detection methods does MGTAB evaluate?", "not_stated", MGTAB),
        ("How many stance detection methods does the Twitter account detection benchmark evaluate?", "not_stated", MGTAB),
        # No name at all: found by its words.
        ("How many expert-annotated users does the account detection benchmark contain?", "answer", MGTAB),
        ("How many stance detection methods does the account detection benchmark evaluate?", "not_stated", MGTAB),
        ("Who are the authors of the account detection benchmark?", "not_stated", MGTAB),
        ("Who are the authors of the DFME paper?", "not_stated", "DFME"),
        # Only the part that asks is about a paper; the asker's situation is not.
        (CHATTY + "how many expert-annotated users does MGTAB contain?", "answer", MGTAB),
        ("How big is the moon?", "out_of_corpus", None),
        (CHATTY + "how big is the moon?", "out_of_corpus", None),
    ],
)
def test_what_retrieval_says_can_be_answered(seeds_retriever, settings, question, outcome, key):
    found = Assistant(seeds_retriever, None, settings).retrieve(analyse(question))
    assert (found.outcome, found.search.text) == (outcome, question)
    if key:
        assert found.hits[0].paper == paper_with(seeds_retriever, key)


@pytest.mark.parametrize(
    "first, second, outcome, joined",
    [
        # Points back: searched with the earlier turn, and answered, or not stated, from its paper.
        ("What is MGTAB?", "How many expert-annotated users does it contain?", "answer", True),
        ("What is DFME?", "Who are the authors of it?", "not_stated", True),
        # A new question covered on its own is searched alone; one that is covered by nothing is declined.
        ("What is MGTAB?", "How many expert-annotated users does the account detection benchmark contain?", "answer", False),
        ("What is MGTAB?", "How big is the moon?", "out_of_corpus", False),
        # Even when, joined with the earlier turn, it would be covered.
        ("How many expert-annotated users does MGTAB contain?", "How big is the moon?", "out_of_corpus", False),
    ],
)
def test_what_retrieval_says_of_a_followup(seeds_retriever, settings, first, second, outcome, joined):
    conversation = Conversation()
    assistant = Assistant(seeds_retriever, FakeModel("unusable", judgment=0.0), settings)
    assistant.answer(first, conversation)
    found = assistant.retrieve(analyse(second), conversation)
    assert (found.outcome, found.search.text) == (outcome, f"{second} {first}" if joined else second)


def test_a_chatty_question_is_answered_from_the_part_that_asks(seeds_retriever, settings):
    answer, _ = ask(seeds_retriever, settings, FakeModel("unusable", judgment=0.0), CHATTY + "how many expert-annotated users does MGTAB contain?")
    assert answer.outcome == "answered" and "10,199 expert-annotated users" in answer.text


def followup(retriever, settings, first: str, second: str):
    """The second question's answer and contract, asked after the first in one conversation, when
    the model's replies are unusable (so the answers are quoted evidence)."""
    conversation, model = Conversation(), FakeModel("unusable", judgment=0.0)
    ask(retriever, settings, model, first, conversation)
    return ask(retriever, settings, model, second, conversation)


def test_a_followup_with_no_words_of_its_own_is_answered_from_the_earlier_paper(seeds_retriever, settings):
    answer, contract = followup(seeds_retriever, settings, "What is MGTAB?", "What about it?")
    # The earlier turn's words choose the sentence: the one that introduces MGTAB.
    assert answer.text == ("To address these issues, we propose a Multi-Relational Graph-Based Twitter Account Detection "
                           "Benchmark (MGTAB), the first standardized graph-based benchmark for account detection [1].")
    assert [citation["paper_id"] for citation in contract["citations"]] == [paper_with(seeds_retriever, MGTAB).paper_id]


KOOPMAN_MODULE = ("Here we present KoopmanLab, a self-contained and user-friendly PyTorch module of the Koopman neural "
                  "operator family for solving partial differential equations [1].")
KOOPMAN_ERA5 = ("These variants are validated by mesh-independent and long-term prediction experiments implemented on "
                "representative PDEs (e.g., the Navier-Stokes equation and the Bateman-Burgers equation) and ERA5 (i.e., "
                "one of the largest high-resolution data sets of global-scale climate fields) [1].")


KOOPMAN_CLIMATE = ("These variants are validated on ERA5, one of the largest high-resolution data sets of global-scale "
                   "climate fields [1].")


@pytest.mark.parametrize("question, reply, quoted", [
    # The reply answers the second part (the climate dataset) only: the sentence that answers the
    # first (is there such a module?) follows it.
    ("Is there a PyTorch module for Koopman neural operators? On which global climate dataset was it validated?",
     KOOPMAN_CLIMATE, KOOPMAN_MODULE),
    # "What is KoopmanLab?" has no word but the name to look for; the dataset it asks next is quoted.
    ("What is KoopmanLab? On which global climate dataset was it validated?", KOOPMAN_MODULE, KOOPMAN_ERA5),
    # "Which dataset" asks for another name than those of the question: a kept sentence naming only
    # KoopmanLab does not answer it, so the sentence naming ERA5 is quoted.
    ("On which global climate dataset was the PyTorch module KoopmanLab validated?",
     "KoopmanLab is validated on one of the largest high-resolution data sets of global-scale climate fields [1].",
     KOOPMAN_ERA5),
], ids=["part-left-out", "part-asking-nothing", "reply-naming-only-the-module"])
def test_the_part_a_reply_leaves_unanswered_is_quoted_after_it(seeds_retriever, settings, question, reply, quoted):
    answer, _ = ask(seeds_retriever, settings, FakeModel(reply), question)
    assert answer.path == "generated" and answer.text == f"{reply} {quoted}"


def test_which_framework_gets_the_sentence_that_names_it_when_the_reply_does_not(seeds_retriever, settings):
    reply = "The student model usually inherits and even exaggerates the bias from the teacher GNN [1]."
    answer, _ = ask(seeds_retriever, settings, FakeModel(reply),
                    "Which framework mitigates the bias a student GNN inherits from its teacher?")
    assert answer.text == (f"{reply} Then we propose a principled framework named RELIANT to mitigate the bias exhibited "
                           "by the student model [1].")


def test_a_kept_reply_to_a_question_that_asks_one_open_thing_is_the_whole_answer(seeds_retriever, settings):
    reply = ("NAIVEATTACK simply adds triggers to the raw data at the initial distillation phase, while DOORPING "
             "iteratively updates the triggers during the entire distillation procedure [1].")
    answer, _ = ask(seeds_retriever, settings, FakeModel(reply), "What does DOORPING do with the triggers during distillation?")
    assert answer.path == "generated" and answer.text == reply


def test_each_number_asked_for_gets_the_first_sentence_that_states_one(seeds_retriever, settings):
    """"How many users" matches four sentences alike: of the three with a number, the first (1.55
    million users) is quoted for it; "how many relationship types" gets the one with 7 types."""
    answer, _ = ask(seeds_retriever, settings, FakeModel("unusable", judgment=0.0),
                    "How many users, and how many relationship types does MGTAB contain?")
    assert answer.path == "extractive"
    assert answer.text == (
        "To our knowledge, MGTAB was built based on the largest original data in the field, with over 1.55 million "
        "users and 130 million tweets [1]. MGTAB contains 10,199 expert-annotated users and 7 types of relationships, "
        "ensuring high-quality annotation and diversified relations [1].")


@pytest.mark.parametrize("reply", ["MGTAB contains <b>10,199</b> expert-annotated users [1].",
                                   "MGTAB contains 10,199 expert-annotated users [1][2]."])
def test_a_kept_sentence_is_shown_without_markup_or_markers_of_no_source(seeds_retriever, settings, reply):
    answer, _ = ask(seeds_retriever, settings, FakeModel(reply), "How many expert-annotated users does MGTAB contain?")
    assert answer.text == "MGTAB contains 10,199 expert-annotated users [1]."


def test_a_chinese_followup_asking_how_many_is_answered_with_the_earlier_papers_number(seeds_retriever, settings):
    answer, _ = followup(seeds_retriever, settings, "MGTAB包含多少个专家标注的用户？", "它有多少？")
    assert answer.text == ("据英文摘要[1]：“MGTAB contains 10,199 expert-annotated users and 7 types of relationships, "
                           "ensuring high-quality annotation and diversified relations”。")


def test_the_model_sees_the_sentence_that_names_the_framework_asked_for(seeds_retriever, settings):
    model = FakeModel("unusable", judgment=0.0)
    answer, _ = ask(seeds_retriever, settings, model, "Which framework mitigates the bias a student GNN inherits from its teacher?")
    assert answer.evidence[0].sentences == [
        "As a consequence, the student model usually inherits and even exaggerates the bias from the teacher GNN.",
        "Then we propose a principled framework named RELIANT to mitigate the bias exhibited by the student model.",
    ]


def test_a_paper_that_covers_the_question_but_scores_under_three_quarters_of_the_best_is_no_evidence(seeds_retriever, settings):
    """MDM covers "graph neural networks explained" too, but scores 12.9 to GANExplainer's 18.2."""
    answer, _ = ask(seeds_retriever, settings, FakeModel("unusable", judgment=0.0), "How are graph neural networks explained?")
    assert [source.paper.title.split(":")[0] for source in answer.evidence] == ["GANExplainer"]
    answer, _ = ask(seeds_retriever, settings, FakeModel("unusable", judgment=0.0), "What does knowledge distillation transfer from the teacher?")
    assert [source.paper.title.split(":")[0] for source in answer.evidence] == ["RELIANT", "TinyMIM", "KD-CI-CAM"]


def test_a_quoted_sentence_loses_the_abstracts_own_reference_markers(tmp_path):
    from tests.conftest import write_corpus

    records = [
        {"title": "Quokkanet: sparse attention for genomes",
         "abstract": "Long genomes strain the memory of attention models. Quokkanet cuts the memory of long-sequence "
                     "models by 40% on three genome benchmarks [2]. It keeps their accuracy."},
        {"title": "Wombat: routing with quantum annealing",
         "abstract": "We route delivery trucks with quantum annealing. Wombat is 3 times faster than a greedy baseline."},
    ]
    folder = write_corpus(tmp_path / "c", {"a.jsonl": "".join(json.dumps(record) + "\n" for record in records)})
    settings = Settings(corpus=folder, cache_dir=tmp_path / "cache")
    answer = Assistant(Retriever.open(settings), FakeModel("unusable", judgment=0.0), settings).answer(
        "How much memory does Quokkanet save on genomes?")
    assert answer.path == "extractive"
    assert answer.text == "Quokkanet cuts the memory of long-sequence models by 40% on three genome benchmarks [1]."


def test_a_second_paper_scoring_exactly_the_required_share_of_the_first_is_evidence(tmp_path):
    """Two abstracts alike but for one word score the same: at a required share of 1.0, both are evidence."""
    from tests.conftest import write_corpus

    records = [
        {"title": "Quokka routing with widgets", "abstract": "Quokka routing sends parcels through widgets. It is fast on city maps."},
        {"title": "Quokka routing with gadgets", "abstract": "Quokka routing sends parcels through gadgets. It is slow on city maps."},
        {"title": "Wombat: routing with quantum annealing",
         "abstract": "We route delivery trucks with quantum annealing. Wombat is 3 times faster than a greedy baseline."},
    ]
    folder = write_corpus(tmp_path / "c", {"a.jsonl": "".join(json.dumps(record) + "\n" for record in records)})
    settings = Settings(corpus=folder, cache_dir=tmp_path / "cache", evidence_min_score_share=1.0)
    answer = Assistant(Retriever.open(settings), FakeModel("unusable", judgment=0.0), settings).answer(
        "How does quokka routing send parcels on city maps?")
    assert sorted(source.paper.title for source in answer.evidence) == ["Quokka routing with gadgets", "Quokka routing with widgets"]


def test_a_sentence_is_shown_as_plain_text_with_its_own_marker_only(seeds_retriever):
    from qa_bot.answer.assistant import Draft
    from qa_bot.answer.cite import CheckedSentence
    from qa_bot.answer.evidence import Source

    paper = paper_with(seeds_retriever, MGTAB)
    sentence = "MGTAB contains 10,199 expert-annotated users and 7 types of relationships."
    draft = Draft(analyse("What is MGTAB?"), "What is MGTAB?", [], "fake.gguf", 0.0, 0.0)
    shown = CheckedSentence("MGTAB contains <b>10,199</b> expert-annotated users [1] [2].", sentence, 1, sentence)
    assert list(draft.present(shown, [Source(1, paper, 1.0, [sentence], sentence)])) == [
        "MGTAB contains 10,199 expert-annotated users [1]."]


def test_which_toolbox_gives_the_model_the_sentences_that_name_it(seeds_retriever, settings):
    """"Which toolbox ...?" asks for the paper's name: the sentences holding "KoopmanLab" outrank the
    opening one about partial differential equations, which matches the question's words as well."""
    answer, _ = ask(seeds_retriever, settings, FakeModel("unusable", judgment=0.0),
                    "Which toolbox solves partial differential equations with Koopman neural operators?")
    assert answer.evidence[0].sentences == [
        KOOPMAN_MODULE.removesuffix(" [1].") + ".",
        "These demonstrations suggest the potential of KoopmanLab to be considered in diverse applications of partial "
        "differential equations.",
    ]


def test_which_model_a_named_paper_starts_from_is_answered_with_another_models_sentence(seeds_retriever, settings):
    """The question names TinyMIM, so "which model" asks for another one than TinyMIM: the sentence
    about the large MIM-based pre-trained models, not one that only reports TinyMIM's scores."""
    answer, _ = ask(seeds_retriever, settings, FakeModel("unusable", judgment=0.0), "Which model is TinyMIM distilled from?")
    assert answer.text == ("In this paper, we explore distillation techniques to transfer the success of large MIM-based "
                           "pre-trained models to smaller ones [1].")


def test_a_second_open_part_is_answered_by_a_sentence_sharing_even_a_common_word(seeds_retriever, settings):
    """"How does it perform?" asks nothing in particular: the sentence sharing its one word
    ("performed", a word most abstracts use) is quoted after the kept answer to "What is MGTAB?"."""
    reply = "MGTAB is the first standardized graph-based benchmark for account detection [1]."
    answer, _ = ask(seeds_retriever, settings, FakeModel(reply), "What is MGTAB? How does it perform?")
    assert answer.path == "generated"
    assert answer.text == f"{reply} In addition, we performed a thorough evaluation of MGTAB and other public datasets [1]."


def test_which_dataset_a_named_module_was_validated_on_is_quoted_from_the_sentence_naming_it(seeds_retriever, settings):
    """The question names PyTorch and KoopmanLab; the dataset asked for is another name (ERA5), so the
    sentence introducing "KoopmanLab, a ... PyTorch module" is not the one quoted."""
    answer, _ = ask(seeds_retriever, settings, FakeModel("unusable", judgment=0.0),
                    "On which global climate dataset was the PyTorch module KoopmanLab validated?")
    assert answer.path == "extractive" and answer.text == KOOPMAN_ERA5


def test_a_followup_that_names_something_ranks_the_papers_holding_it_first(seeds_retriever, settings):
    """"the GNN": of the papers found with the earlier turn, those that hold "GNN" come before
    R2RISE, which scores well on "explain" but never says GNN."""
    conversation = Conversation()
    assistant = Assistant(seeds_retriever, FakeModel("unusable", judgment=0.0), settings)
    assistant.answer("What is GANExplainer?", conversation)
    found = assistant.retrieve(analyse("How does it explain the GNN?"), conversation)
    assert found.search.text == "How does it explain the GNN? What is GANExplainer?"
    titles = [hit.paper.title.split(":")[0] for hit in found.hits]
    assert titles[0] == "GANExplainer" and titles[-1] == "R2RISE"
    assert all(seeds_retriever.holds("GNN", hit.paper) for hit in found.hits[:-1])


def test_a_followup_to_a_declined_question_is_searched_on_its_own_words(seeds_retriever, settings):
    """The earlier turn cited nothing, and the best paper for both questions together does not cover
    them: the follow-up is searched alone, and found."""
    conversation = Conversation()
    assistant = Assistant(seeds_retriever, FakeModel("unusable", judgment=0.0), settings)
    assistant.answer("Who won the 2018 FIFA World Cup?", conversation)
    found = assistant.retrieve(analyse("How does it explain graph neural networks?"), conversation)
    assert (found.outcome, found.search.text) == ("answer", "How does it explain graph neural networks?")
    assert found.hits[0].paper.title.startswith("GANExplainer")


def test_an_answer_from_a_collection_missing_shards_says_which(seeds_retriever, settings, monkeypatch):
    """A sharded collection with a shard down (allow_partial) answers from the others and says so."""
    monkeypatch.setattr(seeds_retriever.index, "missing_shards", ("shard 2 of 3",), raising=False)
    model = FakeModel("MGTAB contains 10,199 expert-annotated users [1].")
    answer, contract = ask(seeds_retriever, settings, model, "How many expert-annotated users does MGTAB contain?")
    assert answer.missing_shards == ("shard 2 of 3",)
    assert contract["partial"] == ["shard 2 of 3"]
