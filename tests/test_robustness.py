"""Bad input as a hostile or careless user gives it, through the real command line (subprocesses):
every case ends in its exit status with one line on stderr, never "unexpected" or a traceback, and
every JSON line parses. The model is not needed here (see test_robustness_model.py)."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import SEEDS, write_corpus

UNEXPECTED = ("unexpected", "Traceback")


def qa_bot(*args, stdin: bytes | None = None, env: dict | None = None, cwd=None) -> subprocess.CompletedProcess:
    """Run `qa-bot`, bytes in and out: what a script sees, invalid UTF-8 included."""
    return subprocess.run([sys.executable, "-m", "qa_bot", *args], input=stdin, capture_output=True, timeout=180,
                          env={**os.environ, **(env or {})}, cwd=cwd)


def errors_of(run: subprocess.CompletedProcess) -> list[str]:
    return run.stderr.decode("utf-8").strip().splitlines()


def assert_one_line_error(run, code: int, message: str) -> None:
    lines = errors_of(run)
    assert run.returncode == code, lines
    assert len(lines) == 1 and message in lines[0], lines
    assert not any(word in lines[0] for word in UNEXPECTED)
    assert run.stdout == b""


def json_lines(run) -> list[dict]:
    """stdout as JSONL: valid UTF-8, each line JSON without NaN or Infinity."""
    def no_constants(name):
        raise AssertionError(f"{name} in JSON output")

    return [json.loads(line, parse_constant=no_constants) for line in run.stdout.decode("utf-8").splitlines()]


EMPTY_QUESTIONS = ["", "   ", "\x01\x02\x1b", "\u200b\u200c\u200d\ufeff", "\u2066\u2069\u200e", "\x7f\t\x1b"]


@pytest.mark.parametrize("command, message", [("search", "empty query"), ("ask", "empty question")])
@pytest.mark.parametrize("text", EMPTY_QUESTIONS, ids=lambda text: repr(text)[:20])
def test_a_question_of_nothing_visible_is_empty(command, message, text):
    assert_one_line_error(qa_bot(command, text), 2, message)


def test_invalid_utf8_bytes_are_empty_alone():
    assert_one_line_error(qa_bot(b"ask", b"\xff\xfe\x80"), 2, "empty question")


def test_invalid_utf8_in_argv_never_reaches_the_json():
    run = qa_bot(b"search", b"--json", b"DOORPING \xff\xfe backdoor")
    assert run.returncode == 0, errors_of(run)
    [result] = json_lines(run)
    assert result["query"] == "DOORPING \ufffd\ufffd backdoor"
    assert result["results"][0]["title"].startswith("DOORPING")


def test_invalid_utf8_and_control_characters_on_stdin():
    run = qa_bot("search", "--json", "-k", "1", stdin=b"DOOR\xffPING\n\x00\x1b\n\xe4\xb8\nMGTAB\x1b[2J\n")
    assert run.returncode == 0, errors_of(run)
    assert [line["query"] for line in json_lines(run)] == ["DOOR\ufffdPING", "MGTAB[2J"]
    assert b"\x1b" not in run.stdout


def test_text_output_of_a_bad_byte_query_is_valid_utf8():
    run = qa_bot(b"search", b"-k", b"1", b"MGTAB \xff")
    assert run.returncode == 0 and "MGTAB" in run.stdout.decode("utf-8")


def test_bare_qa_bot_prints_the_help_without_an_error():
    run = qa_bot()
    assert run.returncode == 2
    help_text = run.stderr.decode("utf-8")
    assert "Usage:" in help_text and "search" in help_text and "error" not in help_text


@pytest.mark.parametrize("variable, value, message", [
    ("QA_BOT_BM25_K1", "inf", "bm25_k1"),
    ("QA_BOT_BM25_K1", "nan", "bm25_k1"),
    ("QA_BOT_BM25_K1", "1e400", "bm25_k1"),
    ("QA_BOT_BM25_K1", "1e300", "at most"),
    ("QA_BOT_BM25_DELTA", "inf", "bm25_delta"),
    ("QA_BOT_BM25_EPSILON", "-Infinity", "bm25_epsilon"),
    ("QA_BOT_BM25_B", "nan", "bm25_b"),
    ("QA_BOT_MIN_COVERAGE", "nan", "min_coverage"),
    ("QA_BOT_CORPUS", "", "empty path"),
    ("QA_BOT_CACHE_DIR", "", "empty path"),
    ("QA_BOT_MODELS_DIR", " ", "empty path"),
    ("QA_BOT_CACHE_DIR", "FILE", "is a file"),
    ("QA_BOT_CACHE_DIR", "FILE/inside", "is a file"),
    ("QA_BOT_CORPUS", "FILE", "is a file"),
    ("QA_BOT_N_CTX", "1000000000", "n_ctx"),
    ("QA_BOT_TOP_K", "0", "top_k"),
])
def test_a_setting_that_makes_no_sense_is_one_line_and_exit_2(tmp_path, variable, value, message):
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    run = qa_bot("search", "--json", "graph", env={variable: value.replace("FILE", str(a_file))})
    assert_one_line_error(run, 2, message)


def test_a_corpus_flag_naming_a_file_is_one_line():
    assert_one_line_error(qa_bot("search", "--corpus", str(next(SEEDS.glob("*.txt"))), "graph"), 2, "is a file")


def test_an_empty_folder_setting_never_means_the_current_folder(tmp_path):
    (tmp_path / "here.txt").write_text("Backdoor attacks on graph clustering in the current folder.\n")
    run = qa_bot("search", "backdoor", env={"QA_BOT_CORPUS": ""}, cwd=tmp_path)
    assert run.returncode == 2 and not list(tmp_path.rglob("collection-*"))  # nothing indexed


def test_a_context_window_beyond_the_models_training_is_refused_before_loading():
    started = time.perf_counter()
    run = qa_bot("ask", "What is MGTAB?", env={"QA_BOT_N_CTX": "65536"})
    assert_one_line_error(run, 2, "trained with")
    assert time.perf_counter() - started < 30


def test_a_new_models_folder_outside_the_project_is_announced(tmp_path):
    run = qa_bot("models", env={"QA_BOT_MODELS_DIR": str(tmp_path / "new-models"), "QA_BOT_DEFAULT_MODEL": "smollm2"})
    assert run.returncode == 0
    assert "did not exist: creating it" in run.stderr.decode("utf-8")


def test_an_unknown_setting_is_one_warning_naming_the_closest():
    run = qa_bot("search", "-k", "1", "graph", env={"QA_BOT_TOPK": "3"})
    assert run.returncode == 0
    assert errors_of(run) == ["qa-bot: warning: unknown setting QA_BOT_TOPK is ignored (did you mean QA_BOT_TOP_K?)"]


GOOD_LINE = "Backdoor attacks on dataset distillation poison the distilled images.\n"


@pytest.mark.parametrize("name, content, message", [
    ("deep.jsonl", "[" * 100_000 + "\n", "deep.jsonl:1: JSON nested too deeply"),
    ("deep-object.jsonl", '{"abstract": ' + '{"a": ' * 50_000 + "\n", "deep-object.jsonl:1:"),
    ("escape.jsonl", '{"abstract": "Backdoor \\u001b[2J attack"}\n', "escape.jsonl:1: control character U+001B"),
    ("nul.jsonl", '{"abstract": "Backdoor \\u0000 attack"}\n', "nul.jsonl:1: control character U+0000"),
    ("surrogate.jsonl", '{"abstract": "Backdoor \\ud800 attack"}\n', "surrogate.jsonl:1: control character U+D800"),
    ("title.jsonl", '{"abstract": "Backdoor attack", "title": "x\\u0007"}\n', "title.jsonl:1: control character"),
    ("escape.txt", "Backdoor \x1b[2J attacks.\n", "escape.txt:1: control character U+001B"),
    ("c1.txt", "Backdoor \u009b attacks.\n", "c1.txt:1: control character U+009B"),
    ("latin1.txt", "Backdoor caf\xe9".encode("latin-1"), "latin1.txt:1: not valid UTF-8"),
    ("number.jsonl", "7\n", "number.jsonl:1: not a JSON object"),
])
def test_a_bad_corpus_line_is_a_warning_naming_file_and_line(tmp_path, name, content, message):
    folder = write_corpus(tmp_path / "corpus", {"good.txt": GOOD_LINE, name: content})
    run = qa_bot("search", "--json", "--corpus", str(folder), "backdoor")
    assert run.returncode == 0, errors_of(run)
    [warning] = errors_of(run)
    assert warning.startswith(f"qa-bot: warning: {message}"), warning
    assert [hit["locations"] for hit in json_lines(run)[0]["results"]] == [[{"file": "good.txt", "line": 1}]]
    assert b"\x1b" not in run.stdout
    strict = qa_bot("search", "--strict", "--corpus", str(folder), "backdoor")
    assert strict.returncode == 2 and message.split(":")[0] in strict.stderr.decode("utf-8")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_an_unreadable_file_or_folder_is_a_warning(tmp_path):
    folder = write_corpus(tmp_path / "corpus", {"good.txt": GOOD_LINE, "secret.txt": GOOD_LINE, "locked/a.txt": "x\n"})
    (folder / "secret.txt").chmod(0)
    (folder / "locked").chmod(0)
    try:
        run = qa_bot("search", "--corpus", str(folder), "backdoor")
    finally:
        (folder / "locked").chmod(0o755)
    assert run.returncode == 0
    assert any("secret.txt: cannot be read" in line for line in errors_of(run))
    assert any("locked: folder cannot be read" in line for line in errors_of(run))


def first_search(cache: Path, *extra) -> subprocess.CompletedProcess:
    return qa_bot("search", "--json", "-k", "1", "DOORPING", *extra, env={"QA_BOT_CACHE_DIR": str(cache)})


@pytest.mark.parametrize("damage", ["collection folder is a file", "manifest is a folder", "manifest edited",
                                    "manifest wrong type"])
def test_a_damaged_cache_is_rebuilt_with_one_warning(tmp_path, damage):
    cache = tmp_path / "cache"
    expected = json_lines(first_search(cache))
    [collection] = cache.glob("collection-*")
    manifest = collection / "manifest.json"
    if damage == "collection folder is a file":
        shutil.rmtree(collection)
        collection.write_text("not a collection")
    elif damage == "manifest is a folder":
        manifest.unlink()
        manifest.mkdir()
    else:
        envelope = json.loads(manifest.read_text("utf-8"))
        if damage == "manifest edited":
            envelope["payload"]["files"][0][4] += 1
        else:
            envelope["payload"] = 6
        manifest.write_text(json.dumps(envelope), "utf-8")
    run = first_search(cache)
    assert run.returncode == 0
    [warning] = errors_of(run)
    assert warning.startswith("qa-bot: warning: the cached ") and "failed its check and is rebuilt" in warning
    assert json_lines(run) == expected
    again = first_search(cache)
    assert errors_of(again) == [] and json_lines(again) == expected


def test_16_first_runs_at_once_on_a_fresh_cache_all_succeed(tmp_path):
    cache = tmp_path / "fresh-cache"
    command = [sys.executable, "-m", "qa_bot", "search", "--json", "-k", "1", "DOORPING"]
    env = {**os.environ, "QA_BOT_CACHE_DIR": str(cache)}
    runs = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(16)]
    results = [(run.wait(timeout=300), *run.communicate()) for run in runs]
    assert [code for code, _, _ in results] == [0] * 16, [err.decode() for _, _, err in results if err]
    assert {err for _, _, err in results} == {b""}
    assert len({out for _, out, _ in results}) == 1
    [collection] = cache.glob("collection-*")
    assert not [path.name for path in collection.iterdir() if path.name.startswith(".")]  # no staging left
    again = subprocess.run(command, env=env, capture_output=True)
    assert again.returncode == 0 and again.stderr == b"" and again.stdout == results[0][1]
