"""Evaluation: every question of a question set through the pipeline `ask` and `chat` use, scored.

- retrieval, at paper level, from the pipeline's own ranking: Recall@1, Recall@5, MRR, nDCG@10,
  computed by ir-measures (the maintained IR-metrics library; trec_eval's definitions);
- citations: precision and recall against the gold papers, the share of answer sentences that
  carry a marker, the share of citations whose evidence supports their sentence (the checker's
  own test, re-run on the final answer);
- answers: the share of questions whose required facts all appear, generated vs quoted;
- abstention: refusal precision and recall on unanswerable questions, false refusals;
- speed: time to first token and total, median and p95.
Every figure for all questions, by kind, and by language direction (the question's language →
its gold papers' language). A follow-up is asked after its earlier questions, in one conversation.
With `retrieval_only`, no model is loaded: the answer figures are absent, abstention is the
retrieval's decision, and an earlier turn "cites" its best paper.
"""

import math
import re
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import ir_measures
from ir_measures import RR, R, nDCG

from qa_bot.answer.assistant import Answer, Assistant
from qa_bot.answer.cite import CitationChecker, answer_sentences, claim_of, missing_facts
from qa_bot.answer.conversation import Conversation, Turn
from qa_bot.collection.corpus import Corpus, Paper
from qa_bot.answer.evidence import Source
from qa_bot.answer.judge import Judge
from qa_bot.answer.query import analyse
from qa_bot.evaluation.questions import CheckCase, Question, QuestionSet
from qa_bot.search.retrieve import Hit
from qa_bot.text.language import detect_language
from qa_bot.text.markers import MARKER, markers_of

QUOTATION = re.compile(r"“[^”]*”|\"[^\"]*\"|「[^」]*」")
RANKING_DEPTH = 10  # papers ranked per question: what nDCG@10 needs
RETRIEVAL_MEASURES = {"recall@1": R @ 1, "recall@5": R @ 5, "mrr": RR, "ndcg@10": nDCG @ 10}
DIRECTIONS = ("en→en", "en→zh", "zh→en", "zh→zh")
CROSS_LANGUAGE = ("en→zh", "zh→en")
CHECK_LABELS = ("supported", "unsupported", "non_answer")


@dataclass(frozen=True)
class AnswerChecks:
    sentences: int
    cited_sentences: int
    citations: int  # (sentence, marker) pairs
    supported: int  # of those, the ones whose source supports the sentence
    cited_papers: tuple[str, ...]
    facts_present: bool | None  # None when the question requires no fact
    in_asker_language: bool | None  # the answer's own words (quotes and titles aside); None when declined


@dataclass
class QuestionResult:
    question: Question
    direction: str
    gold: list[str]  # paper ids
    query: str
    ranking: list[Hit]
    abstained: bool
    outcome: str  # answered, not_stated, out_of_corpus (retrieval only: answered or out_of_corpus)
    answer: Answer | None  # None in a retrieval-only run
    checks: AnswerChecks | None
    retrieval: dict[str, float]  # per-question retrieval measures (answerable questions only)


def evaluate(
    assistant: Assistant,
    question_set: QuestionSet,
    gold: dict[str, list[str]],
    retrieval_only: bool,
    progress: Callable[[Question], None] = lambda question: None,
) -> list[QuestionResult]:
    results = []
    for question in question_set.questions:
        results.append(evaluate_question(assistant, question, gold[question.id], retrieval_only))
        progress(question)
    score_retrieval(results)
    return results


def evaluate_question(assistant: Assistant, question: Question, gold: list[str], retrieval_only: bool) -> QuestionResult:
    conversation = Conversation()
    for earlier in question.context:
        if retrieval_only:
            remember_retrieval(assistant, earlier, conversation)
        else:
            assistant.answer(earlier, conversation)
    direction = direction_of(question, gold, assistant.retriever.corpus)
    if retrieval_only:
        found = assistant.retrieve(analyse(question.question), conversation)
        outcome = {"answer": "answered"}.get(found.outcome, found.outcome)
        return QuestionResult(question, direction, gold, found.search.text, found.hits[:RANKING_DEPTH], outcome != "answered",
                              outcome, None, None, {})
    answer = assistant.answer(question.question, conversation)
    checks = check_answer(answer, question)
    return QuestionResult(
        question, direction, gold, answer.query, answer.hits[:RANKING_DEPTH], answer.abstained, answer.outcome, answer,
        checks, {}
    )


def remember_retrieval(assistant: Assistant, question: str, conversation: Conversation) -> None:
    """An earlier turn without a model: its search, and its best paper as what it cited."""
    found = assistant.retrieve(analyse(question), conversation)
    cited = (found.hits[0].paper.paper_id,) if found.outcome != "out_of_corpus" and found.hits else ()
    conversation.turns.append(Turn(question, found.search.text, cited))


def direction_of(question: Question, gold: list[str], corpus: Corpus) -> str:
    languages = {corpus.paper(paper_id).lang for paper_id in gold}
    target = languages.pop() if len(languages) == 1 else ("mixed" if languages else "none")
    return f"{question.lang}→{target}"


def check_answer(answer: Answer, question: Question) -> AnswerChecks:
    """What the answer shows, measured. `supported` re-runs the check's cheap filter on the final
    text (the numbers and names of each cited sentence are in its source); the judgment itself is
    measured on the labelled sentences (`check_figures`), not run twice per answer."""
    sources = {source.marker: source for source in answer.evidence}
    sentences = [] if answer.abstained else answer_sentences(answer.text)
    pairs = [(sentence, marker) for sentence in sentences for marker in markers_of(sentence)]
    supported = sum(marker in sources and not missing_facts(claim_of(sentence), sources[marker]) for sentence, marker in pairs)
    return AnswerChecks(
        sentences=len(sentences),
        cited_sentences=sum(bool(markers_of(sentence)) for sentence in sentences),
        citations=len(pairs),
        supported=supported,
        cited_papers=tuple(citation.paper.paper_id for citation in answer.citations),
        facts_present=question.facts_present(answer.text) if question.facts else None,
        in_asker_language=None if answer.abstained else own_words_language(answer) in (question.lang, None),
    )


def own_words_language(answer: Answer) -> str | None:
    """The language of what the answer says in its own words: quotations, paper titles and markers
    aside. None when nothing is left (a bare quotation)."""
    text = QUOTATION.sub(" ", answer.text)
    for citation in answer.citations:
        text = text.replace(citation.paper.title, " ")
    text = MARKER.sub(" ", text)
    return detect_language(text) if re.search(r"[A-Za-z\u3400-\u9fff]", text) else None


def score_retrieval(results: list[QuestionResult]) -> None:
    """Each answerable question's retrieval measures, by ir-measures from the pipeline's ranking."""
    answerable = [result for result in results if result.question.has_gold]
    qrels = {result.question.id: {paper_id: 1 for paper_id in result.gold} for result in answerable}
    # Scores that reproduce the pipeline's order exactly (trec_eval breaks ties its own way); a
    # question with no hit still needs a row, or trec_eval would leave it out of the means.
    run = {
        result.question.id: {hit.paper.paper_id: float(RANKING_DEPTH - position) for position, hit in enumerate(result.ranking)}
        or {"(nothing found)": 0.0}
        for result in answerable
    }
    names = {measure: name for name, measure in RETRIEVAL_MEASURES.items()}
    by_id = {result.question.id: result for result in answerable}
    for metric in ir_measures.iter_calc(list(RETRIEVAL_MEASURES.values()), qrels, run):
        by_id[metric.query_id].retrieval[names[metric.measure]] = metric.value


def summarize(results: list[QuestionResult]) -> dict[str, float | int | None]:
    """The figures of a group of questions; None where the group has nothing to measure."""
    answerable = [r for r in results if r.question.answerable]
    unanswerable = [r for r in results if r.question.kind == "unanswerable"]
    declined = [r for r in results if r.abstained]
    figures: dict[str, float | int | None] = {"questions": len(results), "answerable": len(answerable)}
    for name in RETRIEVAL_MEASURES:
        figures[name] = mean(r.retrieval[name] for r in results if r.question.has_gold)
    figures["outcome_accuracy"] = share(sum(r.outcome == r.question.expected_outcome for r in results), len(results))
    figures["refusal_recall"] = share(sum(r.abstained for r in unanswerable), len(unanswerable))
    figures["refusal_precision"] = share(sum(not r.question.answerable for r in declined), len(declined))
    figures["false_refusals"] = share(sum(r.abstained for r in answerable), len(answerable))
    not_stated = [r for r in results if r.question.kind == "not_stated"]
    said_not_stated = [r for r in results if r.outcome == "not_stated"]
    figures["not_stated_recall"] = share(sum(r.outcome == "not_stated" for r in not_stated), len(not_stated))
    figures["not_stated_precision"] = share(sum(r.question.kind == "not_stated" for r in said_not_stated), len(said_not_stated))
    if any(r.checks is None for r in results):
        return figures
    figures.update(answer_figures(results, answerable))
    return figures


def answer_figures(results: list[QuestionResult], answerable: list[QuestionResult]) -> dict[str, float | None]:
    answered = [r for r in results if not r.abstained]
    answered_answerable = [r for r in answerable if not r.abstained]
    citations = [(paper_id, r) for r in results for paper_id in r.checks.cited_papers]
    with_facts = [r for r in answerable if r.checks.facts_present is not None]
    first_tokens = [r.answer.timings.first_token_ms for r in answered if r.answer.timings.first_token_ms is not None]
    totals = [r.answer.timings.total_ms for r in answered]
    return {
        "citation_precision": share(sum(paper_id in r.gold for paper_id, r in citations), len(citations)),
        "citation_recall": mean(len(set(r.checks.cited_papers) & set(r.gold)) / len(r.gold) for r in answered_answerable),
        "cited_sentences": share(sum(r.checks.cited_sentences for r in answered), sum(r.checks.sentences for r in answered)),
        "supported_citations": share(sum(r.checks.supported for r in answered), sum(r.checks.citations for r in answered)),
        "facts_present": share(sum(bool(r.checks.facts_present) for r in with_facts), len(with_facts)),
        "asker_language": share(sum(bool(r.checks.in_asker_language) for r in answered), len(answered)),
        "generated": share(sum(r.answer.path == "generated" for r in answered), len(answered)),
        "extractive": share(sum(r.answer.path == "extractive" for r in answered), len(answered)),
        "first_token_ms_median": median(first_tokens),
        "first_token_ms_p95": percentile(first_tokens, 0.95),
        "total_ms_median": median(totals),
        "total_ms_p95": percentile(totals, 0.95),
    }


def breakdown(results: list[QuestionResult], key: Callable[[QuestionResult], str], order: Iterable[str]) -> dict[str, dict]:
    """`summarize` per group, groups in `order` first, then any other in the order met."""
    groups: dict[str, list[QuestionResult]] = {name: [] for name in order}
    for result in results:
        groups.setdefault(key(result), []).append(result)
    return {name: summarize(members) for name, members in groups.items() if members}


def mean(values: Iterable[float]) -> float | None:
    values = list(values)
    return sum(values) / len(values) if values else None


def share(count: int, total: int) -> float | None:
    return count / total if total else None


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def percentile(values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def check_figures(cases: list[tuple[CheckCase, Paper]], judge: Judge | None) -> dict:
    """The citation check on labelled sentences: a kept sentence counts as a positive; precision
    and recall of keeping the supported ones, and how many of each label were kept. Without a judge
    (retrieval only), the cheap filters alone."""
    kept = {label: 0 for label in CHECK_LABELS}
    totals = {label: 0 for label in CHECK_LABELS}
    for case, paper in cases:
        source = Source(1, paper, 0.0, case.evidence, case.evidence[0])
        checker = CitationChecker([source], analyse(case.question), judge)
        totals[case.label] += 1
        kept[case.label] += checker.check(case.claim) is not None
    positives = sum(kept.values())
    return {
        "cases": len(cases),
        "precision": share(kept["supported"], positives),
        "recall": share(kept["supported"], totals["supported"]),
        "kept": kept,
        "totals": totals,
    }
