"""Adversarial model replies (tests/data/adversarial.jsonl): invented claims riding on copied
words, wrong numbers, numbers from another sentence, swapped subjects, tautologies, unfinished
sentences, obeyed injections, markers out of range, filler, an echoed question; and supported
controls. The cheap filters must drop every bad reply of the kinds they are for; the rest (invented
claims on copied words, a number from another sentence, swapped subjects) is the judge's to drop.
With a judge that says no to them, none may be shown: not by the check on its own, not through the
pipeline with the fake model in-process, not through the scripted model server. What the real
model's judgment does with them is measured by the slow test at the end."""

import pytest

from qa_bot.answer.assistant import Assistant
from qa_bot.answer.cite import CitationChecker
from qa_bot.evaluation.evaluate import check_figures
from qa_bot.answer.evidence import Source
from qa_bot.answer.judge import Judge
from qa_bot.answer.llm import open_model
from qa_bot.answer.query import analyse
from qa_bot.evaluation.questions import load_check_cases
from qa_bot.settings import PROJECT_ROOT, Settings
from tests.conftest import DATA, SEEDS
from tests.fake_server import FakeModelServer
from tests.fakes import FakeModel

CASES_FILE = DATA / "adversarial.jsonl"
# The kinds no cheap rule sees: what they get wrong is meaning, not a number or a name.
JUDGED_KINDS = {"adv-invented", "adv-other-sentence", "adv-swapped"}
# Never reaches the model: "What does GANExplainer consist of?" is taken as not stated by the word
# rules of coverage (its abstract says "composed of").
NOT_ASKED = {"adv-invented-07"}
# The default model as the judge, measured (README, Answers): of the 19 bad replies the filters leave
# it keeps 2 (a number from another sentence of the source, twice), of the 12 supported ones 10.
REAL_JUDGE_BAD_KEPT, REAL_JUDGE_SUPPORTED_KEPT = 2, 10


@pytest.fixture(scope="module")
def cases(seeds_retriever):
    return load_check_cases(CASES_FILE, seeds_retriever.corpus)


def bad(cases):
    return [(case, paper) for case, paper in cases if case.label != "supported"]


def kind(case) -> str:
    return case.id.rsplit("-", 1)[0]


def kept_alone(case, paper, judge=None) -> bool:
    source = Source(1, paper, 0.0, case.evidence, case.evidence[0])
    return CitationChecker([source], analyse(case.question), judge).check(case.claim) is not None


def scripted_judge(refuses: bool) -> Judge:
    return Judge.of(FakeModel(judgment=0.0 if refuses else 1.0), Settings())


def test_the_set_is_large_bilingual_and_labelled(cases):
    bad_cases = bad(cases)
    assert len(bad_cases) >= 40
    assert {case.lang for case, _ in bad_cases} == {"en", "zh"}
    kinds = {kind(case) for case, _ in bad_cases}
    assert {"adv-invented", "adv-wrong-number", "adv-other-sentence", "adv-tautology", "adv-unfinished",
            "adv-injection", "adv-marker-range"} <= kinds


def test_the_filters_drop_every_bad_reply_of_the_kinds_they_are_for(cases):
    passed = {kind(case) for case, paper in bad(cases) if kept_alone(case, paper, scripted_judge(refuses=False))}
    assert passed == JUDGED_KINDS


def test_a_judge_that_refuses_them_drops_the_rest_and_keeps_every_supported_control(cases):
    assert not any(kept_alone(case, paper, scripted_judge(refuses=True)) for case, paper in bad(cases))
    dropped = [case.id for case, paper in cases if case.label == "supported" and not kept_alone(case, paper, scripted_judge(False))]
    assert dropped == []


def test_the_figures_count_what_was_kept(cases):
    # 12 supported controls; with a judge that says yes, the bad replies of the judged kinds pass the filters.
    figures = check_figures(cases, scripted_judge(refuses=False))
    passed = sum(kept_alone(case, paper, scripted_judge(refuses=False)) for case, paper in bad(cases))
    assert figures["recall"] == 1.0
    assert figures["precision"] == pytest.approx(12 / (12 + passed))


def assert_not_shown(answer, case):
    """The model was asked, wrote the scripted reply, and the check dropped it: the answer is the
    quoted evidence instead."""
    assert answer.outcome == "answered", f"{case.id}: the model must be asked ({answer.outcome})"
    assert answer.generated.strip() == case.claim
    assert (answer.path, answer.dropped) == ("extractive", [case.claim]), case.id


@pytest.fixture(scope="module")
def pipeline_cases(cases):
    return [(case, paper) for case, paper in bad(cases) if case.id not in NOT_ASKED]


def test_no_bad_reply_of_the_fake_model_reaches_the_answer(seeds_retriever, pipeline_cases):
    settings = Settings(corpus=SEEDS)
    for case, _ in pipeline_cases:
        model = FakeModel(case.claim, judgment=0.0 if kind(case) in JUDGED_KINDS else 1.0)
        answer = Assistant(seeds_retriever, model, settings).answer(case.question)
        assert model.prompts, case.id
        assert_not_shown(answer, case)


def test_no_bad_reply_of_the_scripted_server_reaches_the_answer(seeds_retriever, pipeline_cases):
    with FakeModelServer() as server:  # one server, its script changed for each case
        settings = Settings(corpus=SEEDS, llm_url=server.url, llm_model="m")
        assistant = Assistant(seeds_retriever, open_model(settings), settings)
        for case, _ in pipeline_cases:
            server.reply, asked = case.claim, len(server.requests)
            server.judgment = 0.0 if kind(case) in JUDGED_KINDS else 1.0
            answer = assistant.answer(case.question)
            assert server.requests[asked]["body"]["stream"], case.id  # the answer was written
            assert_not_shown(answer, case)


def test_a_supported_reply_of_the_scripted_server_is_the_answer(seeds_retriever, cases):
    case = next(case for case, _ in cases if case.id == "adv-supported-01")
    with FakeModelServer(case.claim) as server:
        settings = Settings(corpus=SEEDS, llm_url=server.url, llm_model="m")
        answer = Assistant(seeds_retriever, open_model(settings), settings).answer(case.question)
    assert answer.path == "generated" and answer.text.startswith(case.claim)


@pytest.mark.slow
def test_the_real_judge_drops_the_bad_replies_the_filters_leave(cases):
    """The default model as the judge, on the replies only meaning tells apart (figures: README)."""
    settings = Settings(corpus=SEEDS)
    judge = Judge.of(open_model(settings), settings)
    judged = [(case, paper) for case, paper in cases if case.label == "supported" or kind(case) in JUDGED_KINDS]
    kept = {case.id for case, paper in judged if kept_alone(case, paper, judge)}
    bad_kept = [case_id for case_id in kept if not case_id.startswith("adv-supported")]
    supported = [case.id for case, _ in judged if case.label == "supported"]
    assert len(bad_kept) <= REAL_JUDGE_BAD_KEPT, bad_kept
    assert len(kept & set(supported)) >= REAL_JUDGE_SUPPORTED_KEPT
