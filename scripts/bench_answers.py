"""Answer speed and quality of a model, next to raw llama-cpp-python on the same prompts.

For every question of qa_bot/data/questions.jsonl that stands alone (no follow-ups):
  pipeline: time to first model token, total time, generated tokens per second (answers the model
            wrote); which path the answer took (generated / extractive / listed / abstained);
            whether every required fact appears.
  raw:      the same messages through the model's own stream, no retrieval and no check, to show
            what the pipeline adds.
Prints a Markdown table for the README. Run (2 threads, the machine's cores):
    .venv/bin/python scripts/bench_answers.py [--model smollm2|gemma3-270m|PATH] [--limit N]
"""

import argparse
import statistics
import time

from qa_bot.answer.assistant import Assistant
from qa_bot.evaluation.evaluate import percentile
from qa_bot.answer.llm import open_model
from qa_bot.evaluation.questions import load_questions
from qa_bot.search.retrieve import Retriever
from qa_bot.settings import Settings


def timed_raw(model, messages, max_tokens) -> tuple[float, float]:
    started = time.perf_counter()
    first = None
    for _ in model.stream(messages, max_tokens):
        first = first or time.perf_counter() - started
    return (first or 0.0) * 1000, (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=None)
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args()
    settings = Settings(model=args.model)
    model = open_model(settings)
    assistant = Assistant(Retriever.open(settings), model, settings)
    questions = [q for q in load_questions().questions if not q.context][: args.limit]

    rows = []
    for question in questions:
        answer = assistant.answer(question.question)
        rows.append((question, answer))
    # Answers the model wrote (a list of papers or a decline never calls it).
    answered = [(q, a) for q, a in rows if a.timings.first_token_ms is not None]
    raw = [timed_raw(model, assistant.prompt_messages(a), settings.max_answer_tokens) for _, a in answered]

    first = [a.timings.first_token_ms for _, a in answered]
    total = [a.timings.total_ms for _, a in answered]
    speeds = [
        model.count_tokens(a.generated) / ((a.timings.total_ms - a.timings.first_token_ms) / 1000)
        for _, a in answered
        if a.timings.total_ms > a.timings.first_token_ms and a.generated
    ]
    answerable = [(q, a) for q, a in rows if q.answerable]
    unanswerable = [(q, a) for q, a in rows if not q.answerable]
    print(f"model {model.name}, {settings.n_threads} threads, {len(rows)} questions ({len(answered)} answered)\n")
    print("| figure | median | p95 |")
    print("|---|---|---|")
    print(f"| pipeline time to first token | {statistics.median(first):.0f} ms | {percentile(first, 0.95):.0f} ms |")
    print(f"| pipeline total per answer | {statistics.median(total):.0f} ms | {percentile(total, 0.95):.0f} ms |")
    print(f"| raw llama-cpp-python first token | {statistics.median([r[0] for r in raw]):.0f} ms | {percentile([r[0] for r in raw], 0.95):.0f} ms |")
    print(f"| raw llama-cpp-python total | {statistics.median([r[1] for r in raw]):.0f} ms | {percentile([r[1] for r in raw], 0.95):.0f} ms |")
    print(f"| generation speed | {statistics.median(speeds):.1f} tokens/s | |")
    overhead = (sum(total) - sum(r[1] for r in raw)) / sum(r[1] for r in raw)
    print(f"\npipeline time over raw generation time, summed: {overhead:+.1%}")
    paths = [a.path for _, a in answerable]
    print(f"answerable: {len(answerable)}; generated {paths.count('generated')}, extractive {paths.count('extractive')}, "
          f"listed {paths.count('listed')}, abstained {paths.count('abstained')}")
    print(f"required facts all present: {sum(q.facts_present(a.text) for q, a in answerable) / len(answerable):.2f}")
    print(f"unanswerable declined: {sum(a.abstained for _, a in unanswerable)}/{len(unanswerable)}")


if __name__ == "__main__":
    main()
