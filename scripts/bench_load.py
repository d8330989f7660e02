"""Load on `qa-bot serve`: 16 concurrent clients × 4 questions each, three deployments.

  one service, model server:   one `qa-bot serve --llm-url` in front of one `qa-bot serve-model`
  two services, model server:  two `qa-bot serve` processes (clients alternate between them, as a
                               load balancer would) in front of the same model server
  one service, in-process:     one `qa-bot serve` with the local GGUF (its lock orders the answers)

Every client POSTs /v1/ask with its own questions (the standalone questions of the default set,
64 distinct ones). Prints, per deployment: completed, errors, p50/p95 latency, throughput, as a
Markdown table for the README. Real processes on loopback; nothing is mocked. Run:
    .venv/bin/python scripts/bench_load.py [--clients 16] [--questions-per-client 4]
"""

import argparse
import os
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the loopback helpers of the e2e tests
from qa_bot.evaluation.evaluate import percentile  # noqa: E402
from qa_bot.evaluation.questions import load_questions  # noqa: E402
from tests.processes import free_port, qa_bot_server  # noqa: E402

REQUEST_TIMEOUT = 900.0
# A qa-bot process sends up to QA_BOT_LLM_MAX_CONCURRENCY requests at once and llama_cpp.server answers
# one at a time, so a request can wait for several answers before its first byte: the read timeout
# must cover that queue (README, Deployment). 300 s covers it on a machine shared with other work.
SERVICE_ENV = {"QA_BOT_LLM_READ_TIMEOUT": "300"}


def standalone_questions(count: int) -> list[str]:
    questions = [q.question for q in load_questions().questions if q.kind != "followup"]
    return (questions * (count // len(questions) + 1))[:count]


def client(service: str, questions: list[str], latencies: list[float], errors: list[str]) -> None:
    with httpx.Client(base_url=service, timeout=REQUEST_TIMEOUT) as http:
        for question in questions:
            started = time.perf_counter()
            try:
                reply = http.post("/v1/ask", json={"question": question})
            except httpx.HTTPError as exc:
                errors.append(f"{question[:40]}: {exc}")
                continue
            if reply.status_code == 200 and "answer" in reply.json():
                latencies.append(time.perf_counter() - started)
            else:
                errors.append(f"{question[:40]}: HTTP {reply.status_code} {reply.text[:200]}")


def run_load(services: list[str], clients: int, per_client: int) -> dict:
    questions = standalone_questions(clients * per_client)
    latencies: list[float] = []
    errors: list[str] = []
    threads = [
        threading.Thread(target=client, args=(services[number % len(services)],
                                              questions[number * per_client:(number + 1) * per_client],
                                              latencies, errors))
        for number in range(clients)
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    for error in errors[:5]:
        print(f"  error: {error}", file=sys.stderr)
    return {"completed": len(latencies), "errors": len(errors), "p50": percentile(latencies, 0.5),
            "p95": percentile(latencies, 0.95), "throughput": len(latencies) / wall, "wall": wall}


def services(stack: ExitStack, count: int, *options: str) -> list[str]:
    env = {**os.environ, **SERVICE_ENV}
    return [stack.enter_context(qa_bot_server("serve", *options, ready_path="/healthz", port=free_port(), env=env))
            for _ in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--questions-per-client", type=int, default=4)
    args = parser.parse_args()
    load = (args.clients, args.questions_per_client)
    rows = []
    with ExitStack() as model_stack:
        model_server = model_stack.enter_context(
            qa_bot_server("serve-model", ready_path="/v1/models", port=free_port())) + "/v1"
        remote = ("--llm-url", model_server, "--llm-api", "completions")
        for label, count in [("one service, model server", 1), ("two services, model server", 2)]:
            with ExitStack() as stack:
                rows.append((label, run_load(services(stack, count, *remote), *load)))
            print(f"{label}: done", file=sys.stderr)
    with ExitStack() as stack:
        rows.append(("one service, in-process", run_load(services(stack, 1), *load)))
    print(f"{args.clients} clients × {args.questions_per_client} questions, POST /v1/ask\n")
    print("| deployment | completed | errors | p50 latency | p95 latency | throughput |")
    print("|---|---|---|---|---|---|")
    for label, row in rows:
        print(f"| {label} | {row['completed']} | {row['errors']} | {row['p50']:.1f} s | {row['p95']:.1f} s "
              f"| {row['throughput']:.2f} answers/s |")


if __name__ == "__main__":
    main()
