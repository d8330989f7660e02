"""Bad input that reaches the real default model, through the real command line: a question far
longer than the context window, a prompt that cannot fit, bytes that are not UTF-8."""

import pytest
import json
import subprocess
import sys

from tests.conftest import write_corpus

# The real model, browser or served processes: left out of `make check-latest`'s fast run.
pytestmark = pytest.mark.slow

LONG_QUESTION = "How many expert-annotated users does MGTAB contain? " * 160  # about 8,000 characters


def qa_bot(*args, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "qa_bot", *args], input=stdin, capture_output=True, timeout=600)


def test_a_question_longer_than_the_context_is_cut_and_answered():
    run = qa_bot("ask", "--json", LONG_QUESTION)
    assert run.returncode == 0, run.stderr.decode()
    answer = json.loads(run.stdout)
    assert answer["truncated"] is True and len(answer["question"]) < len(LONG_QUESTION.strip())
    assert "10,199" in answer["answer"] and not answer["abstained"]


def test_chat_goes_on_after_a_turn_that_cannot_fit_the_model(tmp_path):
    """One abstract is a single sentence longer than the context window, so its evidence cannot fit:
    that turn is one error line (and a JSON line of its own), and the next turn is answered."""
    endless = "The GiantNet survey covers " + ", ".join(f"benchmark number {n} with graph models" for n in range(900))
    folder = write_corpus(tmp_path / "corpus", {
        "giant.txt": endless + ".\n",
        "small.txt": "The MiniBench dataset contains 4,321 labelled chest X-ray images from 12 hospitals.\n",
    })
    questions = "Which benchmarks does the GiantNet survey cover?\nHow many images does MiniBench contain?\n"
    run = qa_bot("chat", "--json", "--corpus", str(folder), stdin=(LONG_QUESTION + "\n" + questions).encode())
    errors = run.stderr.decode().strip().splitlines()
    turns = [json.loads(line) for line in run.stdout.decode().splitlines()]
    assert len(turns) == 3
    assert turns[1]["error"].startswith("the prompt does not fit the model's context window")
    assert errors == [f"qa-bot: error: {turns[1]['error']}"] and run.returncode == 2
    assert "4,321" in turns[2]["answer"]


def test_bytes_that_are_not_utf8_never_break_the_text_output():
    run = qa_bot(b"ask", b"How many expert-annotated users does MGTAB contain? \xff\xfe")
    assert run.returncode == 0, run.stderr.decode()
    assert "10,199" in run.stdout.decode("utf-8")
    chat = qa_bot("chat", stdin=b"What is MGTAB? \xff\n\x00\x1b\nHow many users does it contain?\n")
    assert chat.returncode == 0, chat.stderr.decode()
    assert chat.stdout.decode("utf-8").count("Sources") == 2
