"""The Streamlit chat, run by Streamlit's AppTest with a fake model (the real model and a real
browser are in test_ui_browser.py)."""

import re
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from qa_bot.answer import llm
from qa_bot.answer.assistant import ABSTENTION
from tests.conftest import paper_with, write_corpus
from tests.fakes import FakeModel, declining

APP = Path(__file__).resolve().parent.parent / "qa_bot" / "app" / "ui.py"
TINYMIM_ANSWER = "TinyMIM reaches 79.6% top-1 accuracy on ImageNet-1K [1]."


@pytest.fixture
def fake_model(monkeypatch):
    """The app's model, replaced by a FakeModel with the given replies."""
    st.cache_resource.clear()  # the pipeline is cached per server, here per test process

    def use(*replies: str) -> FakeModel:
        model = FakeModel(*replies, coverage=declining("How do quantum computers factor large integers?"))
        monkeypatch.setattr(llm, "open_model", lambda settings: model)
        return model

    yield use
    st.cache_resource.clear()


def start() -> AppTest:
    app = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not app.exception, app.exception
    return app


def ask(app: AppTest, question: str) -> AppTest:
    app.chat_input[0].set_value(question).run()
    assert not app.exception, app.exception
    return app


def shown_html(app: AppTest) -> str:
    return "\n".join(element.proto.body for element in app.get("html"))


def message_html(app: AppTest, position: int) -> str:
    return "\n".join(element.proto.body for element in app.chat_message[position].get("html"))


def as_rendered(markdown: str) -> str:
    """Escaped Markdown as the page shows it."""
    return re.sub(r"\\(.)", r"\1", markdown)


def test_a_question_gets_a_streamed_answer_with_source_cards(fake_model, seeds_retriever):
    model = fake_model(TINYMIM_ANSWER)
    app = ask(start(), "What accuracy does TinyMIM reach on ImageNet?")
    assert [message.name for message in app.chat_message] == ["user", "assistant"]
    assert "What accuracy does TinyMIM reach on ImageNet?" in message_html(app, 0)
    answer = message_html(app, 1)
    assert "TinyMIM reaches 79.6% top-1 accuracy on ImageNet-1K" in answer
    assert 'href="#qa-t0-c1"' in answer and 'id="qa-t0-c1"' in answer
    assert paper_with(seeds_retriever, "TinyMIM model of tiny size").title in answer
    assert "000_a261c613d12b610b.txt:11" in answer and "<mark>" in answer and "Whole abstract" in answer
    assert len(model.prompts) == 1


def test_the_history_stays_and_a_followup_uses_it(fake_model, seeds_retriever):
    fake_model(
        "MGTAB is a graph-based Twitter account detection benchmark [1].",
        "It contains 10,199 expert-annotated users [1].",
    )
    app = ask(start(), "What is MGTAB?")
    app = ask(app, "How many expert-annotated users does it contain?")
    assert [message.name for message in app.chat_message] == ["user", "assistant"] * 2
    assert "benchmark" in message_html(app, 1)
    followup = message_html(app, 3)
    assert "10,199 expert-annotated users" in followup
    assert paper_with(seeds_retriever, "10,199 expert-annotated").title in followup
    assert 'id="qa-t1-c1"' in followup  # the second turn's cards have their own anchors


def test_an_out_of_corpus_question_is_declined_and_shows_the_closest_papers(fake_model):
    model = fake_model("Paris [1].")
    app = ask(start(), "How do quantum computers factor large integers?")
    answer = message_html(app, 1)
    assert ABSTENTION["en"] in answer and "Closest papers found" in answer
    assert "qa-card" not in answer
    assert model.judged  # declined by the judgment


@pytest.fixture
def downloads(monkeypatch):
    """What the page's download buttons offer: AppTest keeps their files in a media storage of each run."""
    from streamlit.testing.v1 import app_test
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    storages = []

    class KeptStorage(MemoryMediaFileStorage):
        def __init__(self, endpoint):
            super().__init__(endpoint)
            storages.append(self)

    monkeypatch.setattr(app_test, "MemoryMediaFileStorage", KeptStorage)
    return lambda button: storages[-1].get_file(button.proto.url.rsplit("/", 1)[1]).content.decode("utf-8")


def test_the_export_holds_the_conversation_and_its_references(fake_model, seeds_retriever, downloads):
    fake_model(TINYMIM_ANSWER)
    app = start()
    assert all(button.proto.disabled for button in app.get("download_button")), "nothing to export yet"
    app = ask(app, "What accuracy does TinyMIM reach on ImageNet?")
    markdown_button, bibtex_button = app.get("download_button")
    assert bibtex_button.proto.label == "Export references (BibTeX)"
    assert not markdown_button.proto.disabled and not bibtex_button.proto.disabled
    markdown = downloads(markdown_button)  # what the button offers, not the export function's output
    assert "## 1. What accuracy does TinyMIM reach on ImageNet?" in markdown
    assert "TinyMIM reaches 79.6% top-1 accuracy on ImageNet-1K [1]." in markdown
    assert "## References" in markdown and "000_a261c613d12b610b.txt:11" in markdown
    assert paper_with(seeds_retriever, "TinyMIM model of tiny size").paper_id in markdown
    assert "@" in downloads(bibtex_button)


def test_new_chat_clears_the_conversation(fake_model):
    fake_model(TINYMIM_ANSWER)
    app = ask(start(), "What accuracy does TinyMIM reach on ImageNet?")
    next(b for b in app.button if b.label == "New chat").click().run()
    assert len(app.chat_message) == 0
    assert app.session_state["chat"].conversation.turns == []


def test_the_sidebar_shows_the_corpus_the_model_and_scores_on_request(fake_model):
    fake_model(TINYMIM_ANSWER)
    app = start()
    sidebar = as_rendered(" ".join(element.value for element in app.sidebar.markdown))
    assert "32 papers (21 English, 11 Chinese)" in sidebar and "fake.gguf" in sidebar
    app = ask(app, "What accuracy does TinyMIM reach on ImageNet?")
    assert "score" not in message_html(app, 1)
    app.toggle[0].set_value(True).run()
    assert "rank 1 · score" in message_html(app, 1)
    assert "BM25" in shown_html(app)  # the table of every retrieved paper


def test_top_k_sets_how_many_papers_are_retrieved(fake_model):
    fake_model(TINYMIM_ANSWER)
    app = start()
    app.slider[0].set_value(2).run()
    app = ask(app, "What accuracy does TinyMIM reach on ImageNet?")
    assert len(app.session_state["chat"].answers()[0].hits) == 2


def test_markup_in_the_corpus_the_model_and_the_question_is_shown_as_text(fake_model, tmp_path, monkeypatch):
    corpus = write_corpus(
        tmp_path / "corpus",
        {
            "a.txt": 'Zebra trackers <script>alert("corpus")</script> see [click me](http://evil.example) '
            "and improve zebra tracking accuracy by 12%.\n"
            "Graph neural networks for molecules reach 90% accuracy.\n",
        },
    )
    monkeypatch.setenv("QA_BOT_CORPUS", str(corpus))
    fake_model('<img src=x onerror=alert("model")> Zebra tracking accuracy improves by 12% [1].')
    app = ask(start(), "How much does <b>zebra</b> tracking accuracy improve?")
    html = shown_html(app)
    assert "&lt;script&gt;" in html and "&lt;b&gt;zebra&lt;/b&gt;" in html
    assert "<script" not in html and "<img" not in html and "<b>" not in html
    assert "evil.example" in html and 'href="http://evil.example"' not in html
    assert all("evil.example" not in element.value or "\\]\\(" in element.value for element in app.markdown)


@pytest.mark.parametrize(
    "variable, value, expected",
    [
        ("QA_BOT_MODEL", "/nowhere/model.gguf", "model file not found"),
        ("QA_BOT_CORPUS", "EMPTY", "no corpus files"),
        ("QA_BOT_TOP_K", "zero", "invalid setting top_k"),
    ],
)
def test_a_problem_the_user_must_fix_is_a_readable_message(monkeypatch, tmp_path, variable, value, expected):
    st.cache_resource.clear()
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv(variable, str(tmp_path / "empty") if value == "EMPTY" else value)
    app = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not app.exception
    assert len(app.error) == 1 and expected in as_rendered(app.error[0].value)
    assert app.title[0].value == "qa-bot cannot start" and len(app.chat_input) == 0


def test_a_bad_question_in_one_tab_leaves_another_tab_answering(fake_model):
    fake_model(TINYMIM_ANSWER)
    first, second = start(), start()  # two tabs: one server's shared model, a session each
    ask(first, "\u200b\x01\x1b")
    assert "empty question" in first.chat_message[1].error[0].value
    ask(second, "What accuracy does TinyMIM reach on ImageNet?")
    assert "79.6%" in message_html(second, 1) and not second.chat_message[1].get("alert")
    ask(first, "What accuracy does TinyMIM reach on ImageNet?")
    assert "79.6%" in message_html(first, 3)


def test_the_waiting_notice_shows_when_the_model_is_held_by_another_tab():
    import threading

    from qa_bot.app.ui import TabModel

    model, waited = FakeModel("An answer [1]."), []
    tab = TabModel(model, lambda: waited.append(True))
    assert "".join(tab.stream([], 10)) == "An answer [1]." and waited == []  # free: no notice
    with model.lock:  # another tab's generation holds the model
        mine = threading.Thread(target=lambda: "".join(tab.stream([], 10)))
        mine.start()
        mine.join(timeout=0.5)
        assert waited == [True] and mine.is_alive()  # told, and waiting
    mine.join(timeout=5)
    assert not mine.is_alive()


@pytest.fixture
def fresh_pipeline():
    st.cache_resource.clear()
    yield
    st.cache_resource.clear()


def test_a_model_server_that_is_down_is_a_readable_message(fresh_pipeline, monkeypatch):
    monkeypatch.setenv("QA_BOT_LLM_URL", "http://127.0.0.1:9/v1")  # the discard port: nothing listens
    monkeypatch.setenv("QA_BOT_LLM_MAX_RETRIES", "0")
    app = AppTest.from_file(str(APP), default_timeout=60).run()
    assert len(app.error) == 1 and "cannot reach the model server at http://127.0.0.1:9/v1" in as_rendered(app.error[0].value)


def test_a_model_server_that_fails_mid_answer_is_a_message_in_the_page(fresh_pipeline, monkeypatch):
    from tests.fake_server import FakeModelServer

    with FakeModelServer(TINYMIM_ANSWER + " And more.", mode="die") as server:
        monkeypatch.setenv("QA_BOT_LLM_URL", server.url)
        monkeypatch.setenv("QA_BOT_LLM_API_KEY", "sk-secret")
        app = ask(start(), "What accuracy does TinyMIM reach on ImageNet?")
        assert "stopped before finishing the answer" in as_rendered(app.chat_message[1].error[0].value)
        server.mode = "ok"
        app = ask(app, "What accuracy does TinyMIM reach on ImageNet?")
    assert "79.6%" in message_html(app, 3)
    assert server.requests[-1]["authorization"] == "Bearer sk-secret"  # the masked settings JSON did not lose it
    sidebar = as_rendered(" ".join(element.value for element in app.sidebar.markdown))
    assert f"fake-model @ {server.url}" in sidebar and "sk-secret" not in sidebar


def copied_seeds(folder: Path) -> Path:
    folder.mkdir()
    for path in sorted((APP.parents[2] / "seeds").glob("*.txt")):
        (folder / path.name).write_bytes(path.read_bytes())
    return folder


def sidebar_text(app: AppTest) -> str:
    return as_rendered(" ".join(element.value for element in app.sidebar.markdown))


def test_a_changed_corpus_folder_is_read_before_the_next_question_and_the_turn_says_so(fake_model, tmp_path,
                                                                                        monkeypatch):
    corpus = copied_seeds(tmp_path / "corpus")
    monkeypatch.setenv("QA_BOT_CORPUS", str(corpus))
    fake_model(TINYMIM_ANSWER, "Quokkanet cuts memory by 40% [1].")
    app = ask(start(), "What accuracy does TinyMIM reach on ImageNet?")
    assert "changed" not in message_html(app, 1)
    (corpus / "new.txt").write_text("Quokkanet, a sparse attention model, cuts memory by 40% on long documents.\n",
                                    "utf-8")
    app = ask(app, "How much memory does Quokkanet save?")
    notice = " ".join(element.value for element in app.chat_message[3].info)
    assert "The corpus folder changed: 1 papers added and 0 removed; 33 papers now." in as_rendered(notice)
    assert "Quokkanet" in message_html(app, 3) and "new.txt:1" in message_html(app, 3)
    assert "33 papers" in sidebar_text(app)


def test_reload_corpus_reads_a_changed_folder_and_says_what_changed(fake_model, tmp_path, monkeypatch):
    corpus = copied_seeds(tmp_path / "corpus")
    monkeypatch.setenv("QA_BOT_CORPUS", str(corpus))
    fake_model(TINYMIM_ANSWER)
    app = start()
    reload = next(button for button in app.sidebar.button if button.label == "Reload corpus")
    reload.click().run()
    assert "The corpus folder is unchanged." in as_rendered(" ".join(element.value for element in app.sidebar.caption))
    sorted(corpus.glob("*.txt"))[0].unlink()
    next(button for button in app.sidebar.button if button.label == "Reload corpus").click().run()
    captions = as_rendered(" ".join(element.value for element in app.sidebar.caption))
    assert "The corpus folder changed: 0 papers added and 4 removed; 28 papers now." in captions
    assert "28 papers" in sidebar_text(app)


class FailingModel(FakeModel):
    """A model that fails in a way no QaBotError describes (a bug, a crash of the backend)."""

    def stream(self, messages, max_tokens):
        yield "TinyMIM"
        raise RuntimeError("the backend crashed")


def test_an_unexpected_failure_mid_answer_is_one_line_in_the_page_and_the_chat_goes_on(fake_model, monkeypatch):
    broken = FailingModel()
    monkeypatch.setattr(llm, "open_model", lambda settings: broken)
    app = ask(start(), "What accuracy does TinyMIM reach on ImageNet?")
    assert as_rendered(app.chat_message[1].error[0].value) == "unexpected RuntimeError: the backend crashed"
    assert app.session_state["chat"].turns[0].answer is None
    broken.stream = FakeModel(TINYMIM_ANSWER).stream  # the backend is back
    app = ask(app, "What accuracy does TinyMIM reach on ImageNet?")
    assert "79.6%" in message_html(app, 3) and len(app.chat_message) == 4


def test_a_turn_interrupted_before_its_answer_says_so(fake_model):
    from qa_bot.app.ui import ChatSession, ChatTurn

    fake_model(TINYMIM_ANSWER)
    app = AppTest.from_file(str(APP), default_timeout=60)
    app.session_state["chat"] = ChatSession(turns=[ChatTurn("What accuracy does TinyMIM reach on ImageNet?")])
    app.run()
    assert not app.exception, app.exception
    assert [caption.value for caption in app.chat_message[1].caption] == [
        "Stopped before the answer was finished: ask again to get it."]
    assert not app.chat_message[1].get("html") and not app.chat_message[1].error
