"""The coverage judgment's thresholds, chosen on question sets (docs/answers.md: outcomes).

For each question of the sets given (each with its collection), what the model judges of the
evidence retrieval found for it: P(yes) that each evidence paper answers the question, and P(yes)
that the best one is about its subject. Earlier turns of a follow-up are replayed without the model.
Then, for each pair of thresholds, how many questions would get the outcome their kind expects
(answered, not stated, out of corpus), and the false refusals; prints the pair that gets most right.
Choose on tuning halves; report test halves with `qa-bot eval`.
    .venv/bin/python scripts/calibrate_coverage.py [--model NAME|PATH] CORPUS=QUESTIONS.jsonl ...
"""

import argparse
import json
from pathlib import Path

from qa_bot.answer.assistant import Assistant
from qa_bot.answer.conversation import Conversation
from qa_bot.evaluation.evaluate import remember_retrieval
from qa_bot.answer.llm import open_model
from qa_bot.answer.query import analyse
from qa_bot.evaluation.questions import load_questions
from qa_bot.search.retrieve import Retriever
from qa_bot.settings import Settings

THRESHOLDS = [round(0.025 * step, 3) for step in range(12, 40)]


def scored_questions(model, settings: Settings, corpus: Path, questions_file: Path) -> list[dict]:
    settings = settings.model_copy(update={"corpus": corpus})
    assistant = Assistant(Retriever.open(settings), model, settings)
    rows = []
    for question in load_questions(questions_file).questions:
        conversation = Conversation()
        for earlier in question.context:
            remember_retrieval(assistant, earlier, conversation)
        query = analyse(question.question)
        found = assistant.retrieve(query, conversation)
        if query.asks in ("papers", "metadata") or found.unknown_names or found.unused_words or not found.hits or found.outcome == "not_stated":
            continue  # decided by the word rules, without the judgment (Assistant._pipeline)
        sources = assistant._evidence(query, found.search, found.hits)
        judge = assistant.judge
        answers = [judge.answers(sources, source.marker, query.text) for source in sources]
        rows.append({"id": question.id, "expected": question.expected_outcome, "named": found.named is not None,
                     "answers": answers, "about": judge.about(sources, sources[0].marker, query.text)})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def outcome(row: dict, answers_threshold: float, about_threshold: float) -> str:
    if max(row["answers"]) >= answers_threshold:
        return "answered"
    return "not_stated" if row["named"] or row["about"] >= about_threshold else "out_of_corpus"


def figures(rows: list[dict], answers_threshold: float, about_threshold: float) -> dict:
    outcomes = [outcome(row, answers_threshold, about_threshold) for row in rows]
    answerable = [o for row, o in zip(rows, outcomes) if row["expected"] == "answered"]
    return {"answers": answers_threshold, "about": about_threshold,
            "right": sum(o == row["expected"] for row, o in zip(rows, outcomes)), "of": len(rows),
            "false_refusals": sum(o != "answered" for o in answerable) / max(len(answerable), 1),
            **{kind: sum(o == kind == row["expected"] for row, o in zip(rows, outcomes)) /
               max(sum(row["expected"] == kind for row in rows), 1) for kind in ("not_stated", "out_of_corpus")}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("pairs", nargs="+", help="CORPUS_DIR=QUESTIONS.jsonl")
    parser.add_argument("--model", default=None)
    parser.add_argument("--out", type=Path, default=None, help="Write every question's scores here (JSON).")
    parser.add_argument("--scores", type=Path, default=None, help="Read the scores from an earlier --out instead.")
    args = parser.parse_args()
    if args.scores:
        rows = json.loads(args.scores.read_text())
    else:
        settings = Settings(model=args.model)
        model = open_model(settings)
        rows = [row for pair in args.pairs for row in scored_questions(model, settings, *map(Path, pair.split("=")))]
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))
    table = [figures(rows, a, b) for a in THRESHOLDS for b in THRESHOLDS]
    for line in table:
        print(json.dumps(line))
    print("chosen:", json.dumps(max(table, key=lambda line: (line["right"], -line["false_refusals"]))))


if __name__ == "__main__":
    main()
