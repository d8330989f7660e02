"""Evidence selection: which papers and sentences the model sees, within a token budget."""

import pytest

from qa_bot.answer import Assistant
from qa_bot.evidence import select_evidence
from qa_bot.retrieve import Retriever
from qa_bot.settings import Settings
from tests.conftest import write_corpus
from tests.fakes import FakeModel

# Stand-ins for papers: select_evidence only hands them to `best`. Each "token" is a word.
SENTENCES = {
    "A": ["a1 a1 a1", "a2 a2 a2"],  # 6 tokens for two sentences
    "B": ["b1 b1", "b2 b2"],  # 4
    "C": ["c1 c1 c1 c1"],  # 4
    "D": ["d1"],  # 1: would fit after C, but C ends the evidence
}
RANKED = [(paper, 4.0 - rank) for rank, paper in enumerate(SENTENCES)]


def best(paper, count):
    return SENTENCES[paper][:count]


def tokens_without_marker(text):
    return len(text.split()) - 1


def chosen(budget):
    sources = select_evidence(RANKED, best, tokens_without_marker, max_sentences=2, token_budget=budget)
    return [(source.marker, source.paper, source.sentences) for source in sources]


def test_papers_fill_the_budget_exactly_and_the_first_that_cannot_fit_ends_it():
    assert chosen(10) == [(1, "A", SENTENCES["A"]), (2, "B", SENTENCES["B"])]  # 6 + 4 = 10
    assert chosen(13) == chosen(10)  # C (4 more) does not fit, and D, which would, is not reached


def test_a_paper_gets_fewer_sentences_when_that_is_what_fits():
    assert chosen(8) == [(1, "A", SENTENCES["A"]), (2, "B", ["b1 b1"])]


def test_the_best_paper_always_gets_its_best_sentence():
    assert chosen(2) == [(1, "A", ["a1 a1 a1"])]
    assert chosen(0) == [(1, "A", ["a1 a1 a1"])]


def test_each_source_records_its_best_sentence_and_score():
    sources = select_evidence(RANKED, best, tokens_without_marker, max_sentences=2, token_budget=100)
    assert [(s.best_sentence, s.score) for s in sources] == [("a1 a1 a1", 4.0), ("b1 b1", 3.0), ("c1 c1 c1 c1", 2.0),
                                                              ("d1", 1.0)]


TOPIC = "Graph neural networks are accelerated on multiple GPUs by pipelining communication and computation"


@pytest.fixture
def three_close_papers(tmp_path):
    lines = [
        f"{TOPIC}; AlphaPipe reaches a 3.1 times speedup.",
        f"{TOPIC}; BetaPipe reaches a 2.2 times speedup.",
        f"{TOPIC}; GammaPipe reaches a 1.4 times speedup.",
        "Coral reefs bleach when the ocean warms; we survey 40 reefs.",
    ]
    corpus = write_corpus(tmp_path / "corpus", {"papers.txt": "\n".join(lines) + "\n"})
    settings = Settings(corpus=corpus, cache_dir=tmp_path / "cache")
    return Retriever.open(settings), settings


def test_papers_that_score_close_to_the_best_are_evidence_too(three_close_papers):
    retriever, settings = three_close_papers
    model = FakeModel("AlphaPipe reaches a 3.1 times speedup [1].")
    answer = Assistant(retriever, model, settings).answer("How are graph neural networks accelerated on multiple GPUs?")
    assert len(answer.evidence) == settings.evidence_papers == 3
    prompt = model.prompts[0][-1]["content"]
    assert all(f"[{marker}] " in prompt for marker in (1, 2, 3)) and "Coral" not in prompt


def test_the_evidence_budget_leaves_out_the_papers_that_do_not_fit(three_close_papers):
    retriever, settings = three_close_papers
    model = FakeModel("AlphaPipe reaches a 3.1 times speedup [1].")
    one_paper = FakeModel().count_tokens(f"[1] {TOPIC}; AlphaPipe reaches a 3.1 times speedup.")
    settings = settings.model_copy(update={"evidence_tokens": one_paper + 5})
    answer = Assistant(retriever, model, settings).answer("How are graph neural networks accelerated on multiple GPUs?")
    assert len(answer.evidence) == 1
    assert "[2]" not in model.prompts[0][-1]["content"]
