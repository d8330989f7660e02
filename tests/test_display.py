"""What the chat shows and exports: escaped text, linked markers, source cards, the Markdown export."""

import re
from datetime import datetime

import pytest

from qa_bot.answer.assistant import Assistant
from qa_bot.answer.conversation import Conversation
from qa_bot.app.display import (
    answer_block_html,
    answer_html,
    escape_markdown,
    highlighted,
    source_card_html,
    translation_note,
)
from qa_bot.app.export import conversation_markdown
from qa_bot.settings import Settings
from tests.conftest import SEEDS, paper_with
from tests.fakes import FakeModel, declining

TINYMIM = "TinyMIM model of tiny size"
MGTAB = "10,199 expert-annotated"
QUANTUM = "How do quantum computers factor large integers?"  # no paper answers it, nor is about it
HOSTILE = 'Widgets <script>alert("x")</script> see [click](javascript:alert(1)) at http://evil.example :red[now] $x$.'


@pytest.fixture
def assistant(seeds_retriever, tmp_path):
    def make(*replies):
        model = FakeModel(*replies, coverage=declining(QUANTUM))
        return Assistant(seeds_retriever, model, Settings(corpus=SEEDS, cache_dir=tmp_path))

    return make


def test_escaped_markdown_is_every_character_as_written():
    escaped = escape_markdown(HOSTILE)
    assert re.sub(r"\\(.)", r"\1", escaped) == HOSTILE
    for special in "<>[]():$*_`#":
        assert not re.search(rf"(?<!\\){re.escape(special)}", escaped), special


def test_markers_link_to_their_cards_and_the_text_is_escaped(assistant, seeds_retriever):
    answer = assistant("TinyMIM reaches 79.6% top-1 accuracy on ImageNet-1K [1].").answer(
        "What accuracy does <b>TinyMIM</b> reach on ImageNet?"
    )
    html = answer_html(answer, turn=2)
    assert '<a class="qa-marker" href="#qa-t2-c1"' in html
    tinymim = paper_with(seeds_retriever, TINYMIM)
    assert f'title="{tinymim.title}' in html and "“Our TinyMIM model of tiny size achieves 79.6%" in html
    block = answer_block_html(answer, 2, show_scores=False)
    assert 'id="qa-t2-c1"' in block and "000_a261c613d12b610b.txt:11" in block
    # The evidence sentence is marked, and in it what the answer states (the number and the names).
    assert ('<mark>Our <strong class="qa-span">TinyMIM</strong> model of tiny size achieves '
            '<strong class="qa-span">79.6%</strong> top-1 accuracy on <strong class="qa-span">ImageNet-1K</strong>') in block
    assert "rank 1 · score" not in block
    assert "rank 1 · score" in answer_block_html(answer, 2, show_scores=True)


def test_an_abstained_answer_lists_the_closest_papers_without_citing_them(assistant):
    answer = assistant("unused").answer(QUANTUM)
    block = answer_block_html(answer, 0, show_scores=True)
    assert "do not cover this question" in block
    assert "Closest papers found" in block and "score " in block
    assert "qa-card" not in block and "qa-marker" not in block


def test_corpus_and_model_text_is_shown_as_text_never_as_markup(assistant, seeds_retriever):
    answer = assistant("TinyMIM reaches 79.6% top-1 accuracy on ImageNet-1K [1].").answer(
        "What accuracy does TinyMIM reach on ImageNet?"
    )
    citation = answer.citations[0]
    hostile_paper = type(citation.paper)(paper_id="x", text=f"{HOSTILE} {citation.evidence}", lang="en", title=HOSTILE)
    card = source_card_html(type(citation)(1, hostile_paper, citation.evidence), "en", 0, None)
    assert "<script>" not in card and "&lt;script&gt;" in card
    assert "<a " not in card  # neither the Markdown link nor the bare URL becomes a link


def test_the_evidence_is_highlighted_in_a_window_cut_at_words():
    text = " ".join(f"word{i}" for i in range(100)) + " The key finding is here. " + " ".join(f"tail{i}" for i in range(100))
    shown = highlighted(text, "The key finding is here.", context=60)
    assert "<mark>The key finding is here.</mark>" in shown
    before, after = shown.split("<mark>")[0], shown.split("</mark>")[1]
    assert before.startswith("…word") and after.rstrip("…").endswith(tuple(f"tail{i}" for i in range(100)))
    assert len(before) <= 62 and len(after) <= 62
    assert highlighted(text, "The key finding is here.") == highlighted(text, "The key finding is here.", context=10_000)


def test_a_source_in_the_other_language_says_it_is_a_translation(seeds_retriever):
    chinese = paper_with(seeds_retriever, "MGG探讨了")
    english = paper_with(seeds_retriever, TINYMIM)
    assert "Machine-translated" in translation_note(chinese, "en")
    assert translation_note(english, "zh").startswith("英文摘要")
    assert translation_note(chinese, "zh") == translation_note(english, "en") == ""


def test_the_export_renumbers_markers_across_the_conversation(assistant, seeds_retriever):
    conversation = Conversation()
    bot = assistant(
        "TinyMIM reaches 79.6% top-1 accuracy on ImageNet-1K [1].",
        "MGTAB contains 10,199 expert-annotated users [1].",
    )
    first = bot.answer("What accuracy does TinyMIM reach on ImageNet?", conversation)
    second = bot.answer("How many expert-annotated users does MGTAB contain?", conversation)
    third = bot.answer(QUANTUM, conversation)
    markdown = conversation_markdown([first, second, third], "seeds", "fake.gguf", datetime(2026, 11, 22, 9, 30))
    tinymim, mgtab = paper_with(seeds_retriever, TINYMIM), paper_with(seeds_retriever, MGTAB)
    assert "Exported 2026-11-22 09:30 · corpus: seeds · model: fake.gguf" in markdown
    assert "## 1. What accuracy does TinyMIM reach on ImageNet?" in markdown
    assert "## 2. How many expert-annotated users does MGTAB contain?" in markdown
    assert "MGTAB contains 10,199 expert-annotated users [2]." in markdown  # its own [1] is reference 2
    references = markdown.split("## References")[1]
    assert f"1. {tinymim.title}" in references and "000_a261c613d12b610b.txt:11" in references
    assert f"2. {mgtab.title}" in references and mgtab.paper_id in references
    assert "The papers in this collection do not cover this question.\n\nClosest papers (not cited):\n- " in markdown
    assert "> [1] Our TinyMIM model of tiny size achieves 79.6%" in markdown


def test_the_export_escapes_markup_from_the_corpus_and_the_model(assistant):
    answer = assistant("TinyMIM reaches 79.6% top-1 accuracy on ImageNet-1K [1].").answer(
        "Is <script>alert(1)</script> [x](http://evil.example) TinyMIM accurate on ImageNet?"
    )
    markdown = conversation_markdown([answer], "seeds", "fake.gguf", datetime(2026, 1, 1))
    assert "<script>" not in markdown and not re.search(r"(?<!\\)\]\(", markdown)
    assert r"\<script\>" in markdown
