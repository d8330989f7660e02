"""The command line as a user's script sees it: real processes, exit codes, stdout and stderr."""

import json
import subprocess
import sys

import pytest

from tests.conftest import SEEDS, write_corpus
from tests.contract import METADATA


def qa_bot(*args, stdin=None):
    return subprocess.run(
        [sys.executable, "-m", "qa_bot", *args], input=stdin, capture_output=True, text=True, timeout=120
    )


def test_search_json_follows_the_contract():
    run = qa_bot("search", "--json", "DOORPING backdoor")
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["query"] == "DOORPING backdoor"
    assert 1 <= len(result["results"]) <= 5
    first = result["results"][0]
    assert set(first) == {"rank", "paper_id", "title", "lang", "score", "locations", "snippet", *METADATA}
    assert first["rank"] == 1 and first["lang"] == "en" and first["title"].startswith("DOORPING")
    assert len(first["locations"]) == 5
    for location in first["locations"]:
        assert set(location) == {"file", "line"}
        line = (SEEDS / location["file"]).read_text("utf-8").splitlines()[location["line"] - 1]
        assert first["snippet"] in line
    scores = [r["score"] for r in result["results"]]
    assert scores == sorted(scores, reverse=True)


def test_search_k_limits_results():
    result = json.loads(qa_bot("search", "-k", "2", "--json", "graph").stdout)
    assert [r["rank"] for r in result["results"]] == [1, 2]


def test_search_text_output_shows_title_locations_and_snippet():
    run = qa_bot("search", "-k", "1", "transformer verification on GPUs")
    assert run.returncode == 0
    assert "000_a261c613d12b610b.txt:5" in run.stdout
    assert "[zh]" in run.stdout and "GPU" in run.stdout


def test_search_reads_queries_from_a_pipe():
    run = qa_bot("search", "-k", "1", "--json", stdin="DOORPING\n\n数据集蒸馏 后门攻击\n")
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert [line["query"] for line in lines] == ["DOORPING", "数据集蒸馏 后门攻击"]
    assert lines[0]["results"][0]["paper_id"] == lines[1]["results"][0]["paper_id"]


@pytest.mark.parametrize("args, code, message", [
    (["search", ""], 2, "empty query"),
    (["search", "-k", "0", "graph"], 2, "-k"),
    (["search", "--corpus", "/no/such/folder", "graph"], 2, "corpus folder not found"),
    (["nonsense"], 2, "No such command"),
])
def test_bad_input_is_one_line_and_exit_2(args, code, message):
    run = qa_bot(*args)
    assert run.returncode == code
    assert run.stdout == ""
    assert len(run.stderr.strip().splitlines()) == 1
    assert message in run.stderr and "Traceback" not in run.stderr


def test_bad_environment_setting_is_one_line(monkeypatch):
    monkeypatch.setenv("QA_BOT_TOP_K", "many")
    run = qa_bot("search", "graph")
    assert run.returncode == 2 and "top_k" in run.stderr and len(run.stderr.strip().splitlines()) == 1


def test_corpus_problems_are_warnings_and_the_rest_loads(tmp_path):
    folder = write_corpus(tmp_path / "c", {"good.txt": "Backdoor attacks on dataset distillation.\n",
                                           "bad.jsonl": "{oops\n"})
    run = qa_bot("search", "--corpus", str(folder), "--json", "backdoor")
    assert run.returncode == 0
    assert "bad.jsonl:1" in run.stderr
    assert json.loads(run.stdout)["results"][0]["locations"] == [{"file": "good.txt", "line": 1}]
    strict = qa_bot("search", "--corpus", str(folder), "--strict", "backdoor")
    assert strict.returncode == 2 and "bad.jsonl:1" in strict.stderr


def test_corpus_from_the_environment(tmp_path, monkeypatch):
    folder = write_corpus(tmp_path / "c", {"x.jsonl": json.dumps({"abstract": "Quantum annealing for routing."})})
    monkeypatch.setenv("QA_BOT_CORPUS", str(folder))
    result = json.loads(qa_bot("search", "--json", "quantum").stdout)
    assert result["results"][0]["locations"] == [{"file": "x.jsonl", "line": 1}]


def test_ask_takes_json_or_bibtex_not_both():
    run = qa_bot("ask", "--json", "--bibtex", "What is DOORPING?")
    assert run.returncode == 2
    assert "--json and --bibtex" in run.stderr and "Traceback" not in run.stderr
