"""The robustness helpers in-process: unreadable corpus parts, cache collisions, the GGUF header,
the question budget. (Through the command line: test_robustness.py.)"""

import json
import os
from pathlib import Path

import pytest

from qa_bot.search import cache, indexing
from qa_bot.answer.assistant import Assistant
from qa_bot.collection.corpus import load_corpus
from qa_bot.errors import BadInputError, CorpusError
from qa_bot.answer.gguf import trained_context
from qa_bot.text.hygiene import cut_to_tokens, normalize_question
from qa_bot.answer.llm import resolve_model_path
from qa_bot.settings import Settings
from tests.conftest import SEEDS, write_corpus
from tests.fakes import FakeModel

GOOD = "Backdoor attacks on dataset distillation poison the distilled images.\n"


def test_an_unreadable_file_is_a_warning_and_strict_makes_it_an_error(tmp_path, monkeypatch):
    folder = write_corpus(tmp_path / "c", {"good.txt": GOOD, "secret.txt": "Another abstract.\n"})
    real_read = Path.read_bytes

    def read_bytes(path):
        if path.name == "secret.txt":
            raise PermissionError(13, "Permission denied", str(path))
        return real_read(path)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    corpus = load_corpus(folder)
    assert [str(issue) for issue in corpus.issues] == ["secret.txt: cannot be read (Permission denied); skipped"]
    assert len(corpus.papers) == 1
    with pytest.raises(CorpusError, match="secret.txt: cannot be read"):
        load_corpus(folder, strict=True)


def test_an_unreadable_subfolder_is_a_warning(tmp_path, monkeypatch):
    folder = write_corpus(tmp_path / "c", {"good.txt": GOOD, "locked/inside.txt": "Hidden abstract.\n"})
    real_scandir = os.scandir

    def scandir(path="."):
        if Path(path).name == "locked":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    corpus = load_corpus(folder)
    assert [str(issue) for issue in corpus.issues] == ["locked: folder cannot be read (Permission denied); skipped"]
    assert [paper.locations[0].file for paper in corpus.papers] == ["good.txt"]


def test_a_folder_in_the_way_of_a_checked_file_is_replaced(tmp_path):
    path = tmp_path / "manifest.json"
    path.mkdir()
    (path / "part").write_text("in the way")
    cache.write_checked(path, "built-from-A", {"a": 1})
    assert cache.load_checked(path, "built-from-A", lambda payload: True) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json"]  # nothing set aside left


def test_a_checked_file_round_trips_and_a_changed_input_is_not_trusted(tmp_path):
    path = tmp_path / "manifest.json"
    cache.write_checked(path, "built-from-A", ["a", "b"])
    assert cache.load_checked(path, "built-from-A", lambda payload: True) == ["a", "b"]
    with pytest.warns(cache.QaBotWarning, match="failed its check"):
        assert cache.load_checked(path, "built-from-B", lambda payload: True) is None
    envelope = json.loads(path.read_text("utf-8"))
    envelope["payload"] = ["a", "c"]
    path.write_text(json.dumps(envelope), "utf-8")
    with pytest.warns(cache.QaBotWarning, match="failed its check"):
        assert cache.load_checked(path, "built-from-A", lambda payload: True) is None
    assert cache.load_checked(tmp_path / "missing.json", "x", lambda payload: True) is None


def test_a_cache_that_cannot_be_written_is_one_warning_and_the_collection_still_opens(tmp_path, monkeypatch):
    real = indexing.write_checked

    def full_disk(path, built_from, payload):
        if tmp_path / "cache" in path.parents:
            raise OSError(28, "No space left on device", str(path))
        real(path, built_from, payload)

    monkeypatch.setattr(indexing, "write_checked", full_disk)
    with pytest.warns(cache.QaBotWarning, match=r"cannot write the cache .*\(No space left on device\)"):
        collection = indexing.open_collection(Settings(corpus=SEEDS, cache_dir=tmp_path / "cache"))
    assert collection.corpus.paper_count == 32 and collection.index.unit_scores([["doorp"]]).max() > 0
    assert collection.corpus.paper(collection.corpus.papers[0].paper_id).text  # read from the removed scratch copy


def test_the_gguf_header_gives_the_trained_context(tmp_path):
    path = resolve_model_path(Settings())
    assert trained_context(path) == 32768
    truncated = tmp_path / "cut.gguf"
    truncated.write_bytes(path.read_bytes()[:40])
    assert trained_context(truncated) is None
    assert trained_context(tmp_path / "missing.gguf") is None


def test_a_question_is_cut_to_its_token_budget():
    count = FakeModel().count_tokens
    question = "How many expert-annotated users does MGTAB contain? " * 100
    cut = cut_to_tokens(question, count, 40)
    assert count(cut) <= 40 < count(cut + " users") and question.startswith(cut) and not cut.endswith(" ")
    assert cut_to_tokens("short question", count, 40) == "short question"
    assert count(cut_to_tokens("数据集" * 200, count, 30)) <= 30


def test_settings_that_leave_no_room_for_a_question_are_bad_input(seeds_retriever):
    settings = Settings(n_ctx=512, max_answer_tokens=400, evidence_tokens=100)
    with pytest.raises(BadInputError, match="leaves no room for a question"):
        Assistant(seeds_retriever, FakeModel("x"), settings).ask("What is MGTAB?")


def test_a_long_question_is_answered_with_truncated_set(seeds_retriever):
    assistant = Assistant(seeds_retriever, FakeModel("MGTAB contains 10,199 expert-annotated users [1]."),
                          Settings(max_question_tokens=30))
    answer = assistant.answer("How many expert-annotated users does MGTAB contain? " * 50)
    assert answer.truncated and "10,199" in answer.text
    assert not assistant.answer("How many expert-annotated users does MGTAB contain?").truncated


def test_the_normaliser_on_named_cases():
    assert normalize_question("  e\u0301t\u00e9\u200b \x00 GNN\tGPU\n") == "\u00e9t\u00e9 GNN GPU"
    assert normalize_question("MGTAB \udcff") == "MGTAB \ufffd"  # an argv byte that was not UTF-8
