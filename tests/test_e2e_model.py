"""End to end with the real default GGUF model on the real seeds, through the command line."""

import json
import subprocess
import sys

import pytest

from qa_bot.collection.corpus import load_corpus
from tests.conftest import SEEDS
from tests.contract import assert_contract

# The real model, browser or served processes: left out of `make check-latest`'s fast run.
pytestmark = pytest.mark.slow

CONVERSATION = [
    # (question, a substring of the paper it must cite, or None when it must be declined)
    ("How many expert-annotated users does MGTAB contain?", "10,199 expert-annotated"),
    ("How many types of relationships does it have?", "10,199 expert-annotated"),  # a follow-up
    ("What is the capital of France?", None),
    ("How much faster is MGG than the DGCL framework?", "MGG探讨了"),  # English question, Chinese paper
    ("DFME数据集有多少个微表情视频？", "7,526 well-labeled"),  # Chinese question, English paper
    ("气候变化对珊瑚礁有什么影响？", None),
]


@pytest.fixture(scope="module")
def turns():
    lines = "".join(question + "\n" for question, _ in CONVERSATION)
    done = subprocess.run(
        [sys.executable, "-m", "qa_bot", "chat", "--json"], input=lines, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_every_answer_keeps_the_contract(turns):
    abstracts = {paper.paper_id: paper.text for paper in load_corpus(SEEDS).papers}
    assert len(turns) == len(CONVERSATION)
    for turn in turns:
        assert_contract(turn, abstracts)
        assert turn["model"].endswith(".gguf")


@pytest.mark.parametrize("position", range(len(CONVERSATION)))
def test_each_answer_cites_the_right_paper_or_declines(turns, position):
    question, key = CONVERSATION[position]
    turn = turns[position]
    assert turn["question"] == question
    if key is None:
        assert turn["abstained"] and turn["citations"] == []
    else:
        papers = {paper.paper_id: paper.text for paper in load_corpus(SEEDS).papers}
        assert not turn["abstained"]
        assert any(key in papers[c["paper_id"]] for c in turn["citations"]), turn


# Questions the packaged model answers in a sentence of its own that the check keeps (measured: it
# copies the figure from the evidence): a build that loses what the model writes answers them by
# quoting the evidence instead ("extractive"), with no first token.
# The follow-up's "It has 7 types of relationships [1]" is no longer kept since the judge decides (it
# finds "It" unsupported below its 0.8 threshold), so its answer quotes the evidence.
MODEL_WRITES = [0]


@pytest.mark.parametrize("position", MODEL_WRITES)
def test_the_models_own_sentence_is_the_answer(turns, position):
    turn = turns[position]
    assert turn["outcome"] == "answered" and turn["path"] == "generated", turn
    assert turn["timings_ms"]["first_token"] is not None


def test_a_declined_chinese_question_is_answered_in_chinese(turns):
    assert any("\u4e00" <= char <= "\u9fff" for char in turns[-1]["answer"])


def test_ask_streams_text_then_lists_the_sources():
    done = subprocess.run(
        [sys.executable, "-m", "qa_bot", "ask", "What NDS does CMT obtain on nuScenes?"],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    answer, _, sources = done.stdout.partition("Sources")
    assert "[1]" in answer
    assert "CMT" in sources and ".txt:" in sources
