"""Adversarial model replies (tests/data/adversarial.jsonl): invented claims riding on copied
words, wrong numbers, numbers from another sentence, swapped subjects, tautologies, unfinished
sentences, obeyed injections, markers out of range, filler, an echoed question; and supported
controls. None of the bad ones may be shown as an answer sentence: not by the check on its own,
not through the pipeline with the fake model in-process, not through the scripted model server."""

import pytest

from qa_bot.answer import Assistant
from qa_bot.cite import CitationChecker
from qa_bot.evaluate import check_figures
from qa_bot.evidence import Source
from qa_bot.llm import open_model
from qa_bot.query import analyse
from qa_bot.questions import load_check_cases
from qa_bot.settings import Settings
from tests.conftest import DATA, SEEDS
from tests.fake_server import FakeModelServer
from tests.fakes import FakeModel

CASES_FILE = DATA / "adversarial.jsonl"
# What the check still keeps, for the reason the README gives (The citation check, adversarial
# replies): two invented words ("and a quantum annealer") riding on copied ones, fewer than the
# three in a row the check takes as made up.
KNOWN_MISSES = {"adv-invented-07"}


@pytest.fixture(scope="module")
def cases(seeds_retriever):
    return load_check_cases(CASES_FILE, seeds_retriever.corpus)


def bad(cases):
    return [(case, paper) for case, paper in cases if case.label != "supported"]


def kept_alone(case, paper) -> bool:
    source = Source(1, paper, 0.0, case.evidence, case.evidence[0])
    return CitationChecker([source], Settings().min_support, analyse(case.question)).check(case.claim) is not None


def test_the_set_is_large_bilingual_and_labelled(cases):
    bad_cases = bad(cases)
    assert len(bad_cases) >= 40
    assert {case.lang for case, _ in bad_cases} == {"en", "zh"}
    kinds = {case.id.rsplit("-", 1)[0] for case, _ in bad_cases}
    assert {"adv-invented", "adv-wrong-number", "adv-other-sentence", "adv-tautology", "adv-unfinished",
            "adv-injection", "adv-marker-range"} <= kinds


def test_the_check_drops_every_bad_reply_but_the_known_misses(cases):
    kept = {case.id for case, paper in bad(cases) if kept_alone(case, paper)}
    assert kept == KNOWN_MISSES


def test_the_check_keeps_every_supported_control(cases):
    dropped = [case.id for case, paper in cases if case.label == "supported" and not kept_alone(case, paper)]
    assert dropped == []


def test_the_figures_are_those_of_the_readme(cases):
    # Hand-counted from the labels and the miss above: 12 supported kept of 12, and 1 bad one kept.
    figures = check_figures(cases, Settings().min_support)
    assert figures["recall"] == 1.0
    assert figures["precision"] == pytest.approx(12 / 13)


def assert_not_shown(answer, case):
    """The model was asked, wrote the scripted reply, and the check dropped it: the answer is the
    quoted evidence instead."""
    assert answer.outcome == "answered", f"{case.id}: the model must be asked ({answer.outcome})"
    assert answer.generated.strip() == case.claim
    assert (answer.path, answer.dropped) == ("extractive", [case.claim]), case.id


@pytest.fixture(scope="module")
def pipeline_cases(cases):
    return [(case, paper) for case, paper in bad(cases) if case.id not in KNOWN_MISSES]


def test_no_bad_reply_of_the_fake_model_reaches_the_answer(seeds_retriever, pipeline_cases):
    settings = Settings(corpus=SEEDS)
    for case, _ in pipeline_cases:
        model = FakeModel(case.claim)
        answer = Assistant(seeds_retriever, model, settings).answer(case.question)
        assert model.prompts, case.id
        assert_not_shown(answer, case)


def test_no_bad_reply_of_the_scripted_server_reaches_the_answer(seeds_retriever, pipeline_cases):
    with FakeModelServer() as server:  # one server, its script changed for each case
        settings = Settings(corpus=SEEDS, llm_url=server.url, llm_model="m")
        assistant = Assistant(seeds_retriever, open_model(settings), settings)
        for case, _ in pipeline_cases:
            server.reply, asked = case.claim, len(server.requests)
            answer = assistant.answer(case.question)
            assert len(server.requests) == asked + 1, case.id
            assert_not_shown(answer, case)


def test_a_supported_reply_of_the_scripted_server_is_the_answer(seeds_retriever, cases):
    case = next(case for case, _ in cases if case.id == "adv-supported-01")
    with FakeModelServer(case.claim) as server:
        settings = Settings(corpus=SEEDS, llm_url=server.url, llm_model="m")
        answer = Assistant(seeds_retriever, open_model(settings), settings).answer(case.question)
    assert answer.path == "generated" and answer.text.startswith(case.claim)
