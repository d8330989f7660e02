"""The browser chat: `qa-bot ui` runs `streamlit run` on this file.

A thin layer over the library. The retriever and the model are loaded once per server
(`st.cache_resource`) and shared by every tab; each tab keeps its own conversation in
`st.session_state`. The local model serves one generation at a time (its lock), so a question from
a second tab waits for the first, and the page says so: each tab sees the shared model through a
`TabModel`, which notices, at the moment the tab's answer needs the model, that another holds it;
with `--llm-url` a model server writes (its queue orders the tabs' questions, and the page says so
when this process's cap is reached). Everything that comes from the corpus or
the model is shown through `qa_bot.app.display`, which escapes it.
"""

import threading
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources

import streamlit as st
from pydantic import SecretStr, ValidationError

from qa_bot.app import display
from qa_bot.answer.assistant import Answer, Assistant
from qa_bot.answer.conversation import Conversation
from qa_bot.errors import QaBotError
from qa_bot.app.export import cited_papers, conversation_markdown, references_bibtex
from qa_bot.search.indexing import folder_changed
from qa_bot.answer.llm import LanguageModel, open_model
from qa_bot.search.retrieve import Retriever
from qa_bot.settings import Settings, describe_error

MAX_TOP_K = 20


@dataclass
class ChatTurn:
    question: str
    answer: Answer | None = None  # None while it is written, or if it was interrupted
    error: str | None = None
    notice: str | None = None  # the corpus changed before this question was answered


@dataclass
class ChatSession:
    turns: list[ChatTurn] = field(default_factory=list)
    conversation: Conversation = field(default_factory=Conversation)
    seen: str | None = None  # the content hash of the corpus this tab last answered from

    def answers(self) -> list[Answer]:
        return [turn.answer for turn in self.turns if turn.answer is not None]


class Library:
    """The collection every tab reads, opened again when its folder has changed (by the first tab
    to notice: the others find it updated)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.retriever = Retriever.open(settings)
        self.lock = threading.Lock()

    def current(self) -> Retriever:
        with self.lock:
            if folder_changed(self.retriever.corpus):
                self.retriever = Retriever.open(self.settings)
            return self.retriever


@st.cache_resource(show_spinner="Loading the papers and the model (once for every tab)…")
def load_pipeline(settings_json: str, llm_api_key: str | None) -> tuple[Library, LanguageModel]:
    # The JSON masks the model server's key (it is a secret): it comes alongside.
    key = SecretStr(llm_api_key) if llm_api_key else None
    settings = Settings.model_validate_json(settings_json).model_copy(update={"llm_api_key": key})
    return Library(settings), open_model(settings)


def main() -> None:
    st.set_page_config(page_title="qa-bot · ask the papers", layout="centered")
    st.html(f"<style>{resources.files('qa_bot').joinpath('data/ui.css').read_text('utf-8')}</style>")
    settings, library, model, model_name = start_or_explain()
    chat = session()
    chat.seen = chat.seen or library.retriever.corpus.content_hash
    top_k, show_scores, retriever = sidebar(library, model_name, settings, chat)
    st.title("Ask the papers")
    if not chat.turns:
        st.caption(
            f"Ask about the {retriever.corpus.paper_count:,} abstracts of this collection, in English or Chinese. "
            "Each answer cites its sources: click a marker such as [1] to see the evidence."
        )
    for position, turn in enumerate(chat.turns):
        show_turn(turn, position, show_scores)
    if question := st.chat_input("Ask about the papers, in English or 中文"):
        answer_new_question(library, model, settings.model_copy(update={"top_k": top_k}), chat, question)


def start_or_explain() -> tuple[Settings, Library, LanguageModel, str]:
    """The settings, the shared pipeline and the model's name; a problem the user must fix stops the page with a
    readable message (no model, empty corpus, a bad QA_BOT_* value)."""
    try:
        settings = Settings()
        key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
        library, model = load_pipeline(settings.model_dump_json(), key)
        # Named here: a model server is asked for its model, and one that is down stops the page with its message.
        return settings, library, model, model.name
    except ValidationError as exc:
        stop_with(describe_error(exc))
    except QaBotError as exc:
        stop_with(str(exc))


def stop_with(message: str) -> None:
    st.title("qa-bot cannot start")
    st.error(display.escape_markdown(message))
    st.caption("Fix this, then reload the page. `qa-bot ui --help` lists the options.")
    st.stop()


def session() -> ChatSession:
    if "chat" not in st.session_state:
        st.session_state.chat = ChatSession()
    return st.session_state.chat


def sidebar(library: Library, model_name: str, settings: Settings,
            chat: ChatSession) -> tuple[int, bool, Retriever]:
    """Corpus (with Reload corpus) and model in use, the retrieval options, New chat, the Markdown
    export and the cited papers as BibTeX. Returns the options and the retriever to use."""
    with st.sidebar:
        st.header("qa-bot")
        st.caption("Offline answers from paper abstracts, with citations.")
        st.subheader("Corpus")
        retriever = library.retriever
        if st.button("Reload corpus", width="stretch"):
            retriever = reloaded(library)
            st.caption(display.escape_markdown(change_notice(chat.seen, retriever) or "The corpus folder is unchanged."))
            chat.seen = retriever.corpus.content_hash
        corpus = retriever.corpus
        st.markdown(display.escape_markdown(corpus_summary(retriever)))
        st.subheader("Model")
        st.markdown(display.escape_markdown(model_name))
        st.subheader("Options")
        top_k = st.slider("Papers to retrieve (top-k)", 1, MAX_TOP_K, min(settings.top_k, MAX_TOP_K))
        show_scores = st.toggle("Show retrieval scores")
        if st.button("New chat", width="stretch", disabled=not chat.turns):
            st.session_state.chat = ChatSession()
            st.rerun()
        answers, now = chat.answers(), datetime.now()
        st.download_button(
            "Export chat (Markdown)",
            data=conversation_markdown(answers, corpus.folder.name, model_name, now),
            file_name=f"qa-bot-chat-{now:%Y%m%d-%H%M}.md",
            mime="text/markdown",
            width="stretch",
            disabled=not answers,
        )
        cited = cited_papers(answers)
        st.download_button(
            "Export references (BibTeX)",
            data=references_bibtex(cited),
            file_name=f"qa-bot-references-{now:%Y%m%d-%H%M}.bib",
            mime="application/x-bibtex",
            width="stretch",
            disabled=not cited,
        )
    return top_k, show_scores, retriever


def reloaded(library: Library) -> Retriever:
    """The library's retriever, opened again if the folder changed (errors shown as a message)."""
    try:
        return library.current()
    except QaBotError as exc:
        st.error(display.escape_markdown(str(exc)))
        return library.retriever


def change_notice(seen: str | None, retriever: Retriever) -> str | None:
    """What changed in the corpus since this tab last looked, if it did."""
    corpus = retriever.corpus
    if seen is None or seen == corpus.content_hash:
        return None
    added, removed = retriever.changes
    return (f"The corpus folder changed: {added:,} papers added and {removed:,} removed; "
            f"{corpus.paper_count:,} papers now.")


def corpus_summary(retriever: Retriever) -> str:
    corpus = retriever.corpus
    languages = corpus.language_counts()
    return (
        f"{corpus.paper_count:,} papers ({languages['en']:,} English, {languages['zh']:,} Chinese) "
        f"from {corpus.record_count:,} records in {corpus.file_count:,} files of {corpus.folder.name}/"
    )


def show_turn(turn: ChatTurn, position: int, show_scores: bool) -> None:
    with st.chat_message("user"):
        st.html(display.text_html(turn.question, "qa-question"))
    with st.chat_message("assistant"):
        if turn.notice is not None:
            st.info(display.escape_markdown(turn.notice))
        if turn.error is not None:
            st.error(display.escape_markdown(turn.error))
        elif turn.answer is None:
            st.caption("Stopped before the answer was finished: ask again to get it.")
        else:
            st.html(display.answer_block_html(turn.answer, position, show_scores))
            if show_scores and not turn.answer.abstained:
                with st.expander(f"All {len(turn.answer.hits)} retrieved papers"):
                    st.html(display.retrieved_table_html(turn.answer))


class TabModel:
    """The shared model as one tab uses it: when the tab's answer needs the model while another
    tab's generation holds it, `on_wait` is called first (the page says so). Checked then, not when
    the question is sent: eight questions sent at once all found the model free, and then waited."""

    def __init__(self, model: LanguageModel, on_wait):
        self.model, self.on_wait = model, on_wait
        self.name, self.follows_instructions = model.name, model.follows_instructions

    def count_tokens(self, text: str) -> int:
        return self.model.count_tokens(text)

    def busy(self) -> bool:
        return self.model.busy()

    def stream(self, messages: list[dict[str, str]], max_tokens: int):
        if self.model.busy():
            self.on_wait()
        yield from self.model.stream(messages, max_tokens)

    def yes_probability(self, messages: list[dict[str, str]]) -> float:
        if self.model.busy():  # the judgments of another tab's answer hold the model too
            self.on_wait()
        return self.model.yes_probability(messages)


WAITING_NOTICE = "Waiting for the model: another tab's question is being answered. Yours is next."


def answer_new_question(library: Library, model: LanguageModel, settings: Settings, chat: ChatSession,
                        question: str) -> None:
    """Stream the answer as the citation check passes it, then show the page again with the
    finished turn (linked markers, source cards). A changed corpus folder is read first, and the
    turn says what changed."""
    turn = ChatTurn(question)
    chat.turns.append(turn)
    with st.chat_message("user"):
        st.html(display.text_html(question, "qa-question"))
    with st.chat_message("assistant"):
        status = st.empty()
        status.caption("Reading the papers…")
        retriever = reloaded(library)
        turn.notice = change_notice(chat.seen, retriever)
        chat.seen = retriever.corpus.content_hash
        assistant = Assistant(retriever, TabModel(model, lambda: status.info(WAITING_NOTICE)), settings)
        try:
            stream = assistant.ask(question, chat.conversation)
            st.write_stream(escaped_as_shown(stream, status))
            turn.answer = stream.answer
        except QaBotError as exc:
            turn.error = str(exc)
        except Exception as exc:  # noqa: BLE001 - a readable line in the page, never a stack trace
            turn.error = f"unexpected {type(exc).__name__}: {exc}"
    st.rerun()


def escaped_as_shown(pieces, status):
    """The checked pieces as literal Markdown text; the status line goes once the first arrives."""
    for piece in pieces:
        status.empty()
        yield display.escape_markdown(piece)


if __name__ == "__main__":
    main()
