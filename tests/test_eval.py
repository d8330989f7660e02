"""The evaluation: the question set and its validation, the figures (retrieval cross-checked by hand
against ir-measures), the command, its reports, gates and comparison."""

import json
import math
from collections import Counter
from pathlib import Path

import pytest

from qa_bot.answer.assistant import Assistant
from qa_bot.collection.corpus import load_corpus
from qa_bot.errors import BadInputError
from qa_bot.evaluation.evaluate import evaluate, summarize
from qa_bot.evaluation.questions import load_questions
from qa_bot.evaluation.report import build_report, compare
from qa_bot.settings import Settings
from tests.conftest import SEEDS, paper_with, write_corpus
from tests.fakes import FakeModel
from tests.test_cli import qa_bot

MGTAB = "10,199 expert-annotated"


def write_questions(folder: Path, *records) -> Path:
    path = folder / "questions.jsonl"
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in records) + "\n", "utf-8")
    return path


def fact(id_, question, gold, facts=(), lang="en", kind="fact", **extra):
    return {"id": id_, "question": question, "lang": lang, "kind": kind, "gold": list(gold), "facts": list(facts)} | extra


def test_the_bundled_question_set_covers_what_the_evaluation_must_measure(seeds_retriever):
    question_set = load_questions()
    questions = question_set.questions
    kinds = Counter(q.kind for q in questions)
    assert len(questions) >= 80 and kinds["unanswerable"] >= 0.15 * len(questions)
    assert all(kinds[kind] >= 5 for kind in ("fact", "paraphrase", "multi", "followup"))
    gold = question_set.gold_papers(seeds_retriever.corpus)  # every key names exactly one paper
    languages = {paper.paper_id: paper.lang for paper in seeds_retriever.corpus.papers}
    directions = Counter(f"{q.lang}→{languages[gold[q.id][0]]}" for q in questions if q.kind == "fact")
    assert directions["en→zh"] >= 5 and directions["zh→en"] >= 5
    assert any("," in variant for q in questions for variants in q.facts for variant in variants)


@pytest.mark.parametrize(
    "bad_line, message",
    [
        ('{"id": "x", "question": "Q?"', "not valid JSON"),
        ('{"id": "x", "question": "Q?", "kind": "fact", "gold": ["a"]}', "lang: Field required"),
        ('{"id": "x", "question": "Q?", "lang": "fr", "kind": "fact", "gold": ["a"]}', "lang: Input should be"),
        ('{"id": "x", "question": "Q?", "lang": "en", "kind": "followup", "gold": ["a"]}', "needs its context"),
        ('{"id": "x", "question": "Q?", "lang": "en", "kind": "unanswerable", "gold": ["a"]}', "gold papers are required"),
        ('{"id": "x", "question": "Q?", "lang": "en", "kind": "fact", "gold": ["a"], "facts": [[]]}', "non-empty list"),
        ('{"id": "q1", "question": "Q?", "lang": "en", "kind": "unanswerable"}', "id 'q1' repeats line 1"),
    ],
)
def test_a_malformed_line_is_an_error_naming_the_line(tmp_path, bad_line, message):
    path = write_questions(tmp_path, fact("q1", "What is MGTAB?", [MGTAB]), bad_line)
    with pytest.raises(BadInputError, match=f"questions.jsonl:2: .*{message}"):
        load_questions(path)


def test_a_gold_key_must_name_exactly_one_paper(tmp_path, seeds_retriever):
    path = write_questions(tmp_path, fact("q1", "What is MGTAB?", [MGTAB]), fact("q2", "Which one?", ["graph"]))
    with pytest.raises(BadInputError, match=r"questions.jsonl:2: gold 'graph' of q2 names \d+ papers"):
        load_questions(path).gold_papers(seeds_retriever.corpus)


def test_a_gold_key_may_be_a_record_id_or_a_title(tmp_path):
    folder = write_corpus(tmp_path / "c", {"a.jsonl": "\n".join(json.dumps(record) for record in [
        {"abstract": "Statins may delay breast cancer recurrence.", "id": "MED-10", "title": "Statin use"},
        {"abstract": "Statins may delay breast cancer recurrence.", "id": "MED-11"},  # the same abstract again
        {"abstract": "Soy intake and bone density in women.", "id": "MED-12", "title": "Soy and bone"},
        {"abstract": "Green tea and MED-10 in a sentence.", "id": "MED-13"},
    ]) + "\n"})
    corpus = load_corpus(folder)
    path = write_questions(tmp_path, fact("q1", "Do statins help?", ["MED-10", "MED-11"]),
                           fact("q2", "Soy?", ["Soy and bone"]), fact("q3", "Tea?", ["Green tea"]))
    ids = {paper.locations[0].key: paper.paper_id for paper in corpus.papers}
    # An id names its record's paper before any abstract that happens to contain it.
    assert load_questions(path).gold_papers(corpus) == {"q1": [ids["MED-10"]], "q2": [ids["MED-12"]], "q3": [ids["MED-13"]]}


def by_hand(ranking: list[str], gold: set[str]) -> dict[str, float]:
    """The textbook definitions, to check what ir-measures computes from the pipeline's ranking."""
    relevant = [position for position, paper_id in enumerate(ranking[:10], start=1) if paper_id in gold]
    ideal = sum(1 / math.log2(position + 1) for position in range(1, min(len(gold), 10) + 1))
    return {
        "recall@1": sum(paper_id in gold for paper_id in ranking[:1]) / len(gold),
        "recall@5": sum(paper_id in gold for paper_id in ranking[:5]) / len(gold),
        "mrr": 1 / relevant[0] if relevant else 0.0,
        "ndcg@10": sum(1 / math.log2(position + 1) for position in relevant) / ideal,
    }


def test_retrieval_figures_agree_with_the_definitions_on_every_question(seeds_retriever, tmp_path):
    question_set = load_questions()
    assistant = Assistant(seeds_retriever, None, Settings(corpus=SEEDS, cache_dir=tmp_path, top_k=10))
    results = evaluate(assistant, question_set, question_set.gold_papers(seeds_retriever.corpus), retrieval_only=True)
    answerable = [r for r in results if r.question.answerable]
    assert any(r.retrieval["mrr"] < 1 for r in answerable), "a set where everything ranks first checks little"
    expected = {}
    for result in answerable:
        expected[result.question.id] = by_hand([hit.paper.paper_id for hit in result.ranking], set(result.gold))
        assert result.retrieval == pytest.approx(expected[result.question.id]), result.question.id
    overall = summarize(results)
    # The overall figure is the mean of the hand-computed ones, not of what the code computed.
    assert overall["recall@5"] == pytest.approx(sum(e["recall@5"] for e in expected.values()) / len(answerable))
    assert overall["mrr"] == pytest.approx(sum(e["mrr"] for e in expected.values()) / len(answerable))
    assert "citation_precision" not in overall  # no model, no answer figures


def test_answer_figures_follow_what_the_answers_say(seeds_retriever, tmp_path):
    questions = [
        fact("right", "How many expert-annotated users does MGTAB contain?", [MGTAB], [["10,199", "10199"]]),
        # A required fact no answer can state (the abstract does not), so that one must fail.
        fact("wrong", "How many micro-expression videos does the DFME dataset include?", ["7,526 well-labeled"], [["9,999"]]),
        fact("none", "What is the capital of France?", [], kind="unanswerable"),
        fact("follow", "How many expert-annotated users does it contain?", [MGTAB], [["10,199"]], kind="followup",
             context=["What is MGTAB?"]),
    ]
    question_set = load_questions(write_questions(tmp_path, *questions))
    model = FakeModel(
        "MGTAB contains 10,199 expert-annotated users [1].",
        "DFME is a dataset of micro-expression videos [1].",
        "MGTAB is a benchmark for Twitter account detection [1].",
        "It contains 10,199 expert-annotated users [1].",
    )
    assistant = Assistant(seeds_retriever, model, Settings(corpus=SEEDS, cache_dir=tmp_path, top_k=10))
    results = evaluate(assistant, question_set, question_set.gold_papers(seeds_retriever.corpus), retrieval_only=False)
    by_id = {r.question.id: r for r in results}
    assert by_id["right"].checks.facts_present is True and by_id["wrong"].checks.facts_present is False
    assert by_id["none"].abstained and by_id["follow"].checks.cited_papers == (paper_with(seeds_retriever, MGTAB).paper_id,)
    overall = summarize(results)
    assert overall["facts_present"] == pytest.approx(2 / 3)
    assert overall["citation_precision"] == 1.0 and overall["cited_sentences"] == 1.0
    assert overall["refusal_recall"] == 1.0 and overall["false_refusals"] == 0.0
    assert overall["first_token_ms_median"] is not None and overall["total_ms_p95"] >= overall["total_ms_median"]
    report = build_report(results, {"model": None})
    assert report["by_kind"]["followup"]["questions"] == 1 and "en→en" in report["by_direction"]


def test_eval_writes_its_reports_and_names_what_it_ran_on(tmp_path):
    out = tmp_path / "out"
    run = qa_bot("eval", "--retrieval-only", "--limit", "12", "--out", str(out), "--json")
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["meta"]["retrieval_only"] is True and len(report["questions"]) == 12
    assert len(report["meta"]["corpus"]["hash"]) == 64 and len(report["meta"]["questions"]["sha256"]) == 64
    assert json.loads((out / "eval.json").read_text("utf-8"))["overall"] == report["overall"]
    assert "| all | 12 |" in (out / "eval.md").read_text("utf-8")
    assert (out / "eval-by-kind.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_gates_make_eval_fail_when_a_figure_falls_short(tmp_path):
    passing = qa_bot("eval", "--retrieval-only", "--min-recall5", "0.5", "--max-false-refusals", "0.5")
    assert passing.returncode == 0, passing.stderr
    failing = qa_bot("eval", "--retrieval-only", "--min-mrr", "1.0", "--min-recall5-cross", "1.0")
    assert failing.returncode == 1
    assert "qa-bot: gate failed: mrr" in failing.stderr and "Traceback" not in failing.stderr
    unmeasured = qa_bot("eval", "--retrieval-only", "--min-citation-precision", "0.9")
    assert unmeasured.returncode == 1 and "citation_precision was not measured" in unmeasured.stderr


def test_a_malformed_question_file_is_a_one_line_error(tmp_path):
    path = write_questions(tmp_path, fact("q1", "What is MGTAB?", [MGTAB]), "{oops")
    run = qa_bot("eval", "--retrieval-only", "--questions", str(path))
    assert run.returncode == 2
    assert run.stderr.strip().count("\n") == 0 and "questions.jsonl:2: not valid JSON" in run.stderr


def test_compare_shows_the_figures_and_the_questions_that_changed(tmp_path):
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    run = qa_bot("eval", "--retrieval-only", "--json")
    report = json.loads(run.stdout)
    first.write_text(run.stdout, "utf-8")
    moved = next(q for q in report["questions"] if q["kind"] == "unanswerable")
    moved["abstained"] = not moved["abstained"]
    report["overall"]["refusal_recall"] -= 0.1
    second.write_text(json.dumps(report), "utf-8")
    shown = compare(json.loads(first.read_text("utf-8")), report)
    assert "refusal_recall" in shown and "-0.10" in shown
    assert f"{moved['id']}: declined" in shown
    run = qa_bot("eval", "--compare", str(first), str(tmp_path / "missing.json"))
    assert run.returncode == 2 and "cannot read" in run.stderr


def test_an_unusable_report_folder_fails_before_the_questions_run(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    run = qa_bot("eval", "--retrieval-only", "--out", str(blocker / "out"))
    assert run.returncode == 2 and "cannot create the report folder" in run.stderr
    assert "evaluating" not in run.stderr
