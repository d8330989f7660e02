"""The judge's threshold, chosen on labelled answer sentences (README, Answers: the citation check).

For each case of the check-case files given (each with the collection its gold papers are in), the
judge's P(yes) that the evidence states the claim, and whether the cheap filters (numbers and names
present, the sentence says something) pass. Prints precision and recall of the whole check at each
threshold, and the threshold that keeps the most supported sentences at a precision of at least
--min-precision. Choose on tuning halves; report the test halves at that threshold (--threshold).
    .venv/bin/python scripts/calibrate_judge.py [--model NAME|PATH] [--threshold T] CORPUS=CASES.jsonl ...
"""

import argparse
import json
from pathlib import Path

from qa_bot.answer.cite import CitationChecker, claim_of
from qa_bot.collection.corpus import load_corpus
from qa_bot.answer.evidence import Source
from qa_bot.answer.judge import Judge
from qa_bot.answer.llm import open_model
from qa_bot.answer.query import analyse
from qa_bot.evaluation.questions import load_check_cases
from qa_bot.settings import Settings

THRESHOLDS = [round(0.05 * step, 2) for step in range(1, 20)]


def scored_cases(judge: Judge, corpus: Path, cases_file: Path) -> list[dict]:
    """Each case's label, whether the cheap filters let it through, and the judge's P(yes)."""
    rows = []
    for case, paper in load_check_cases(cases_file, load_corpus(corpus)):
        source = Source(1, paper, 0.0, case.evidence, case.evidence[0])
        query = analyse(case.question)
        filtered = CitationChecker([source], query).check(case.claim) is not None
        probability = judge.support([source], 1, claim_of(case.claim), case.question)
        rows.append({"id": case.id, "label": case.label, "filters": filtered, "p": probability})
    return rows


def figures(rows: list[dict], threshold: float) -> dict:
    kept = [row for row in rows if row["filters"] and row["p"] >= threshold]
    supported = sum(row["label"] == "supported" for row in rows)
    right = sum(row["label"] == "supported" for row in kept)
    return {"threshold": threshold, "kept": len(kept), "precision": right / len(kept) if kept else None,
            "recall": right / supported if supported else None}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("pairs", nargs="+", help="CORPUS_DIR=CHECK_CASES.jsonl")
    parser.add_argument("--model", default=None)
    parser.add_argument("--threshold", type=float, default=None, help="Report only this threshold.")
    parser.add_argument("--min-precision", type=float, default=0.9)
    parser.add_argument("--out", type=Path, default=None, help="Write every case's score here (JSON).")
    args = parser.parse_args()
    settings = Settings(model=args.model)
    judge = Judge.of(open_model(settings), settings)
    rows = []
    for pair in args.pairs:
        corpus, _, cases_file = pair.partition("=")
        rows += [row | {"file": cases_file} for row in scored_cases(judge, Path(corpus), Path(cases_file))]
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))
    thresholds = [args.threshold] if args.threshold is not None else THRESHOLDS
    table = [figures(rows, threshold) for threshold in thresholds]
    for line in table:
        print(json.dumps(line))
    eligible = [line for line in table if line["precision"] is not None and line["precision"] >= args.min_precision]
    if args.threshold is None:
        best = max(eligible, key=lambda line: (line["recall"], -line["threshold"]), default=None)
        print("chosen:", json.dumps(best))


if __name__ == "__main__":
    main()
