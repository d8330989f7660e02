"""End to end in a real browser: `qa-bot ui` on a free port, with the real default model and the
bundled corpus, driven in Debian's headless Chromium by Playwright. Screenshots of each state go
to artifacts/ (see the README)."""

import re
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from qa_bot.settings import PROJECT_ROOT
from qa_bot.app.ui import WAITING_NOTICE
from tests.conftest import DATA, paper_with
from tests.fake_server import MODEL_ID, FakeModelServer
from tests.processes import free_port, qa_bot_server

# The real model, browser or served processes: left out of `make check-latest`'s fast run.
pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
# No connection to the outside: without these flags Chromium keeps dialling Google's hosts.
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
    "--no-first-run", "--disable-component-update", "--disable-sync",
]
ARTIFACTS = PROJECT_ROOT / "artifacts"
ANSWER_TIMEOUT_MS = 120_000


@pytest.fixture
def chat_url():
    yield from started_chat()


@pytest.fixture
def chat_url_with_model_server():
    """The chat with its answers written by `qa-bot serve-model` (the fast packaged model: what is
    tested is the serving)."""
    with qa_bot_server("serve-model", "--model", "fast", ready_path="/v1/models", port=free_port()) as model_server:
        yield from started_chat("--llm-url", model_server + "/v1", "--llm-api", "completions")


def started_chat(*options: str):
    """`qa-bot ui` started as a user starts it; its printed address, once the server answers."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "qa_bot", "ui", "--port", str(port), *options],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        printed = server.stdout.readline()
        assert f"http://localhost:{port}" in printed, printed
        wait_until_healthy(port, server)
        yield f"http://localhost:{port}"
    finally:
        server.terminate()
        server.wait(timeout=30)


def wait_until_healthy(port: int, server: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.poll() is None, f"qa-bot ui exited: {server.stdout.read()}"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as reply:
                if reply.read() == b"ok":
                    return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"qa-bot ui did not answer on port {port} within {timeout} s")


@pytest.fixture
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: the README's test command installs Debian's chromium")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    return new_tab(browser)


def new_tab(browser) -> Page:
    return browser.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=True)


def ask(page: Page, question: str) -> None:
    answers = page.locator(".qa-answer").count()
    send(page, question)
    expect(page.locator(".qa-answer")).to_have_count(answers + 1, timeout=ANSWER_TIMEOUT_MS)
    # The chat follows the newest message (so it is what a screenshot shows).
    expect(page.locator("[data-testid='stChatMessage']").last).to_be_in_viewport(timeout=10_000)


def send(page: Page, question: str) -> None:
    box = page.get_by_placeholder("Ask about the papers")
    box.fill(question)
    box.press("Enter")


def snapshot(page: Page, name: str) -> None:
    page.wait_for_timeout(500)  # the page's own scrolling animation, for a legible picture
    page.screenshot(path=ARTIFACTS / f"ui-{name}.png")


def test_a_new_user_asks_in_english_and_chinese_follows_up_and_exports(chat_url, page, seeds_retriever):
    tinymim = paper_with(seeds_retriever, "TinyMIM model of tiny size")
    mgg = paper_with(seeds_retriever, "MGG探讨了")
    page.goto(chat_url)
    expect(page.get_by_placeholder("Ask about the papers")).to_be_visible(timeout=ANSWER_TIMEOUT_MS)
    snapshot(page, "0-start")

    ask(page, "What accuracy does TinyMIM reach on ImageNet?")
    card = page.locator("#qa-t0-c1")
    expect(card).to_contain_text(tinymim.title.rstrip("…"))
    expect(card).to_contain_text("000_a261c613d12b610b.txt:11")
    expect(card.locator(".qa-evidence mark")).to_contain_text("79.6%")
    expect(card.locator(".qa-evidence mark strong.qa-span", has_text="79.6%")).to_have_count(1)  # the answer itself
    # The packaged model writes this answer itself; a build that loses its output quotes the evidence.
    expect(page.locator(".qa-meta-line").first).to_contain_text("Written by qwen2.5-coder-1.5b")
    page.locator(".qa-marker").first.click()
    assert page.url.endswith("#qa-t0-c1")
    snapshot(page, "1-english")

    ask(page, "MGG用什么方法在多GPU平台上加速GNN？")
    expect(page.locator(".qa-card[id^='qa-t1-']").first).to_contain_text(mgg.title.rstrip("…"))
    snapshot(page, "2-chinese")

    ask(page, "How much faster is it than the state of the art?")
    expect(page.locator(".qa-card[id^='qa-t2-']").first).to_contain_text(mgg.title.rstrip("…"))
    snapshot(page, "3-followup")

    ask(page, "What is the boiling point of water?")
    expect(page.locator(".qa-abstained")).to_contain_text("do not cover this question")
    expect(page.locator(".qa-closest").last).to_be_visible()
    snapshot(page, "4-declined")

    with page.expect_download() as download:
        page.get_by_role("button", name="Export chat (Markdown)").click()
    exported = Path(download.value.path()).read_text("utf-8")
    assert "## 1. What accuracy does TinyMIM reach on ImageNet?" in exported
    assert "## 4. What is the boiling point of water?" in exported
    references = exported.split("## References")[1]
    assert tinymim.paper_id in references and mgg.paper_id in references
    (ARTIFACTS / "ui-export.md").write_text(exported, "utf-8")


def test_the_chat_answers_through_a_model_server(chat_url_with_model_server, page, seeds_retriever):
    tinymim = paper_with(seeds_retriever, "TinyMIM model of tiny size")
    page.goto(chat_url_with_model_server)
    expect(page.get_by_text("gemma-3-270m-q4_k_m.gguf @ http://127.0.0.1:")).to_be_visible(timeout=ANSWER_TIMEOUT_MS)
    ask(page, "What accuracy does TinyMIM reach on ImageNet?")
    card = page.locator("#qa-t0-c1")
    expect(card).to_contain_text(tinymim.title.rstrip("…"))
    expect(card.locator(".qa-evidence mark")).to_contain_text("ImageNet-1K")  # the TinyMIM card; which sentence depends on the judge
    # Written by the served model, or quoted when its sentence did not pass the check: either way one meta line.
    expect(page.locator(".qa-meta-line").first).to_contain_text(re.compile("Written by gemma-3-270m|Quoted from the best source"))
    snapshot(page, "5-model-server")


@pytest.fixture
def chat_url_on_a_bibtex_export(tmp_path):
    """The chat on a corpus that is one reference-manager export, with its metadata."""
    corpus = tmp_path / "library"
    corpus.mkdir()
    (corpus / "zotero.bib").write_bytes((DATA / "exports" / "zotero.bib").read_bytes())
    yield from started_chat("--corpus", str(corpus))


def test_a_source_card_shows_the_records_authors_year_and_doi_link(chat_url_on_a_bibtex_export, page):
    page.goto(chat_url_on_a_bibtex_export)
    expect(page.get_by_placeholder("Ask about the papers")).to_be_visible(timeout=ANSWER_TIMEOUT_MS)
    ask(page, "How much faster does the two-level partitioning make a training epoch of graph neural networks?")
    expect(page.locator(".qa-answer").last).to_contain_text("1.8")
    card = page.locator("#qa-t0-c1")
    expect(card).to_contain_text("GNNs on Sparse Graphs: Müller's Partitioning Revisited")
    expect(card).to_contain_text("Müller")
    expect(card).to_contain_text("2021")
    link = card.locator('a[href="https://doi.org/10.5555/jgc.2021.0142"]')
    expect(link).to_have_attribute("target", "_blank")
    expect(link).to_have_attribute("rel", re.compile(r"\bnoopener\b"))
    snapshot(page, "6-metadata")


def test_a_second_tab_is_told_it_waits_while_the_first_holds_the_model(browser, monkeypatch):
    """Two tabs of one `qa-bot ui`, whose model server takes one request at a time (a scripted
    server on 127.0.0.1 that is slow to begin each answer)."""
    question = "How many users does MGTAB contain?"
    reply = "MGTAB contains 10,199 expert-annotated users and 7 types of relationships [1]."
    monkeypatch.setenv("QA_BOT_LLM_MAX_CONCURRENCY", "1")
    with FakeModelServer(reply, mode="slow", delay=5) as model_server, \
            contextmanager(started_chat)("--llm-url", model_server.url) as url:
        first, second = new_tab(browser), new_tab(browser)
        for tab in (first, second):
            tab.goto(url)
            expect(tab.get_by_placeholder("Ask about the papers")).to_be_visible(timeout=ANSWER_TIMEOUT_MS)
        send(first, question)
        deadline = time.monotonic() + 60
        while not model_server.requests and time.monotonic() < deadline:
            time.sleep(0.1)
        assert model_server.requests, "the first tab's question never reached the model server"
        send(second, question)
        expect(second.get_by_text(WAITING_NOTICE)).to_be_visible(timeout=ANSWER_TIMEOUT_MS)
        expect(first.get_by_text(WAITING_NOTICE)).to_have_count(0)
        snapshot(second, "7-waiting")
        for tab in (first, second):
            expect(tab.locator(".qa-answer")).to_contain_text("10,199", timeout=ANSWER_TIMEOUT_MS)
            expect(tab.locator(".qa-meta-line").first).to_contain_text(f"Written by {MODEL_ID}")
        expect(second.get_by_text(WAITING_NOTICE)).to_have_count(0)  # gone once the answer began
        assert sum(bool(request["body"].get("stream")) for request in model_server.requests) == 2  # one answer each
