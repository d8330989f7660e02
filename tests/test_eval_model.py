"""`qa-bot eval` with the real default model on the first dozen questions of the bundled set, in a
real process: the report files, what they name, and that the model's own sentences are in it."""

import hashlib
import json
import subprocess
import sys

import pytest

from qa_bot.settings import PROJECT_ROOT

# The real model, browser or served processes: left out of `make check-latest`'s fast run.
pytestmark = pytest.mark.slow

QUESTIONS = 12


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("eval")
    done = subprocess.run(
        [sys.executable, "-m", "qa_bot", "eval", "--limit", str(QUESTIONS), "--out", str(out)],
        capture_output=True, text=True, timeout=900,
    )
    assert done.returncode == 0, done.stderr
    return out, done.stdout, json.loads((out / "eval.json").read_text("utf-8"))


def test_the_three_report_files_are_written(report):
    out, table, result = report
    assert (out / "eval-by-kind.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    markdown = (out / "eval.md").read_text("utf-8")
    assert f"model: {result['meta']['model']['file']}" in markdown
    assert f"| all | {QUESTIONS} |" in markdown
    assert table.splitlines()[1].split()[:2] == ["all", str(QUESTIONS)]


def test_the_report_names_the_model_file_by_its_hash(report):
    _, _, result = report
    model = result["meta"]["model"]
    digest = hashlib.sha256((PROJECT_ROOT / "models" / model["file"]).read_bytes()).hexdigest()
    assert model["sha256"] == digest
    assert result["meta"]["questions"]["count"] == QUESTIONS == len(result["questions"])


def test_the_model_writes_some_answers_and_the_figures_count_them(report):
    _, _, result = report
    paths = [question["path"] for question in result["questions"]]
    answered = [path for path in paths if path != "abstained"]
    assert "generated" in paths, paths  # a build that loses the model's output only quotes
    assert result["overall"]["generated"] == pytest.approx(paths.count("generated") / len(answered))
    facts = [question["facts_present"] for question in result["questions"] if question["facts_present"] is not None]
    assert result["overall"]["facts_present"] == pytest.approx(sum(facts) / len(facts))
    assert result["overall"]["first_token_ms_median"] is not None
