"""How well the coverage threshold separates answerable from unanswerable questions.

For every question of qa_bot/data/questions.jsonl that stands alone (follow-ups need their
conversation), the coverage of the best retrieved paper; then, for a range of thresholds on its
share (with the shared-words and short-question rules of the settings on), the share of unanswerable questions
declined and of answerable ones wrongly declined. Run:
    .venv/bin/python scripts/calibrate_abstention.py
"""

from qa_bot.evaluation.questions import load_questions
from qa_bot.search.retrieve import Coverage, Retriever
from qa_bot.settings import Settings


def main() -> None:
    settings = Settings()
    retriever = Retriever.open(settings)
    answerable, unanswerable = [], []
    for question in load_questions().questions:
        if question.context:
            continue
        hits = retriever.search(question.question, 1).hits
        coverage = retriever.coverage(question.question, hits[0].paper) if hits else None
        (answerable if question.answerable else unanswerable).append((coverage, question.question))
    print("| threshold | unanswerable declined | answerable declined |")
    print("|---|---|---|")
    for threshold in [0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6]:
        declined = sum(not covers(c, threshold, settings) for c, _ in unanswerable) / len(unanswerable)
        false = sum(not covers(c, threshold, settings) for c, _ in answerable) / len(answerable)
        print(f"| {threshold:.2f} | {declined:.2f} | {false:.2f} |")
    print("\nlowest answerable:", *[shown(c, q) for c, q in sorted(answerable, key=share)[:6]], sep="\n  ")
    print("highest unanswerable:", *[shown(c, q) for c, q in sorted(unanswerable, key=share)[-6:]], sep="\n  ")


def covers(coverage: Coverage | None, threshold: float, settings: Settings) -> bool:
    return coverage is not None and coverage.enough(threshold, settings.min_shared_words, settings.short_question_words)


def share(item: tuple[Coverage | None, str]) -> float:
    return item[0].share if item[0] else 0.0


def shown(coverage: Coverage | None, question: str) -> str:
    if coverage is None:
        return f"(no match) {question}"
    return f"{coverage.share:.2f} ({coverage.shared_words}/{coverage.query_words} words) {question}"


if __name__ == "__main__":
    main()
