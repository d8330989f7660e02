"""Retrieval benchmark: build, incremental update, cached open and query latency, next to rank-bm25.

Runs on the bundled seeds and on synthetic corpora of N abstracts (default 100,000 and
1,000,000) that it generates deterministically under bench-data/ from the seeds' own words: 80%
English (120-220 words), 20% Chinese (60-120 words), in seed format, 1,000 a file. For each:
the first build on an empty cache (worker processes on every core), a cached open, the update
that adds one file of 1,000 new abstracts and the one that removes it again, query latency
(search with its snippet, top 5), and peak resident memory (each corpus is measured in a process of
its own: that process, and its largest indexing worker).
rank-bm25's BM25Plus on the same terms is timed where it fits (--reference-max). Prints a
Markdown table (the README quotes it). Usage:

    .venv/bin/python scripts/bench_retrieval.py [--sizes 100000 1000000] [--queries 200]
"""

import argparse
import multiprocessing
import random
import re
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import rank_bm25

from qa_bot.search.bilingual import document_terms, query_terms
from qa_bot.collection.corpus import load_corpus
from qa_bot.search.retrieve import Retriever
from qa_bot.settings import PROJECT_ROOT, Settings

BENCH_DATA = PROJECT_ROOT / "bench-data"
LINES_PER_FILE = 1000
ADDED_FILE = "zz-added.txt"


def timed(function, *args):
    started = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - started


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def seed_vocabularies(seeds: Path):
    corpus = load_corpus(seeds)
    english = re.findall(r"[A-Za-z][A-Za-z-]+", " ".join(p.text for p in corpus.papers if p.lang == "en"))
    chinese = re.findall(r"[\u4e00-\u9fff]{2,4}", " ".join(p.text for p in corpus.papers if p.lang == "zh"))
    return english, chinese


def synthetic_abstracts(size: int, seed: int):
    """size abstracts made from the seeds' words, with made-up method names and rare words for the
    long tail of a real collection's vocabulary."""
    rng = random.Random(seed)
    english, chinese = seed_vocabularies(PROJECT_ROOT / "seeds")
    rare = ["".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=rng.randint(5, 10))) for _ in range(40000)]
    names = ["".join(rng.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZ", k=rng.randint(3, 6))) for _ in range(20000)]
    for _ in range(size):
        name = rng.choice(names)
        if rng.random() < 0.2:
            words = rng.choices(chinese, k=rng.randint(60, 120)) + [name] * 3
            rng.shuffle(words)
            yield "，".join("".join(words[i : i + 8]) for i in range(0, len(words), 8)) + "。"
        else:
            words = rng.choices(english, k=rng.randint(120, 220)) + rng.choices(rare, k=8) + [name] * 3
            rng.shuffle(words)
            yield ". ".join(" ".join(words[i : i + 18]).capitalize() for i in range(0, len(words), 18)) + "."


def synthetic_corpus(size: int, seed: int = 7) -> Path:
    """The corpus of `size` abstracts, made once and reused (the folder name holds size and seed)."""
    folder = BENCH_DATA / f"synthetic-{size}-{seed}"
    if folder.is_dir():
        (folder / ADDED_FILE).unlink(missing_ok=True)  # left by an interrupted run
        return folder
    BENCH_DATA.mkdir(exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=BENCH_DATA))
    lines = []
    for number, abstract in enumerate(synthetic_abstracts(size, seed)):
        lines.append(abstract)
        if len(lines) == LINES_PER_FILE or number == size - 1:
            (staging / f"{number // LINES_PER_FILE:04d}.txt").write_text("\n".join(lines) + "\n", "utf-8")
            lines = []
    staging.rename(folder)
    return folder


def sample_queries(corpus, count: int, seed: int = 11) -> list[str]:
    """Queries of 2 to 5 words taken from random abstracts, a fifth of them Chinese when the corpus has any."""
    rng = random.Random(seed)
    queries = []
    for position in rng.sample(range(corpus.paper_count), min(count, corpus.paper_count)):
        paper = corpus.paper_at(position)
        if paper.lang == "zh":
            words = re.findall(r"[\u4e00-\u9fff]{2,4}", paper.text)
            queries.append(" ".join(rng.sample(words, min(len(words), rng.randint(2, 4)))))
        else:
            words = re.findall(r"[A-Za-z]{3,}", paper.text)
            queries.append(" ".join(rng.sample(words, min(len(words), rng.randint(2, 5)))))
    return queries


def measured_apart(label: str, folder: Path, query_count: int, reference_max: int) -> dict:
    """`measure` in a process of its own, so that its row has its own peak memory: the measuring
    process's (rank-bm25's reference included) and its largest indexing worker's."""
    context = multiprocessing.get_context("fork")
    receiving, sending = context.Pipe(duplex=False)
    # Not a Pool: its processes are daemons, which may not start the indexing workers.
    process = context.Process(target=lambda: sending.send(measure(label, folder, query_count, reference_max)))
    process.start()
    row = receiving.recv()
    process.join()
    return row


def measure(label: str, folder: Path, query_count: int, reference_max: int) -> dict:
    settings = Settings(corpus=folder, cache_dir=Path(tempfile.mkdtemp(prefix="qa-bot-bench-")))
    try:
        _, build_seconds = timed(Retriever.open, settings)
        retriever, open_seconds = timed(Retriever.open, settings)
        added = folder / ADDED_FILE
        added.write_text("\n".join(synthetic_abstracts(1000, seed=99)) + "\n", "utf-8")
        updated, add_seconds = timed(Retriever.open, settings)
        added.unlink()
        _, remove_seconds = timed(Retriever.open, settings)
        queries = sample_queries(retriever.corpus, query_count)
        latencies = [timed(retriever.search, query, 5)[1] * 1000 for query in queries]
        row = {
            "label": label, "papers": retriever.corpus.paper_count, "build": build_seconds, "open": open_seconds,
            "add": add_seconds, "added": updated.changes[0], "remove": remove_seconds,
            "median": statistics.median(latencies), "p95": percentile(latencies, 0.95), "queries": len(latencies),
        }
        if retriever.corpus.paper_count <= reference_max:
            row.update(reference(retriever, queries[:20], settings))
        row["peak"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        row["worker_peak"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        return row
    finally:
        shutil.rmtree(settings.cache_dir, ignore_errors=True)


def reference(retriever, queries: list[str], settings: Settings) -> dict:
    documents = [document_terms(paper.indexed_text) for paper in retriever.corpus.papers]
    model, seconds = timed(lambda: rank_bm25.BM25Plus(documents, k1=settings.bm25_k1, b=settings.bm25_b,
                                                      delta=settings.bm25_delta))
    latencies = [timed(model.get_scores, query_terms(query))[1] * 1000 for query in queries]
    return {"reference_build": seconds, "reference_median": statistics.median(latencies),
            "reference_p95": percentile(latencies, 0.95), "reference_queries": len(latencies)}


def print_table(rows: list[dict]) -> None:
    print("| corpus | papers | first build | cached open | add 1,000 | remove them | query median / p95 "
          "| peak memory (worker) | rank-bm25 BM25Plus init | rank-bm25 get_scores median / p95 |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        bm25 = (f"{r['reference_build']:.2f} s | {r['reference_median']:.1f} / {r['reference_p95']:.1f} ms "
                f"({r['reference_queries']} queries)") if "reference_build" in r else "not run | not run"
        print(f"| {r['label']} | {r['papers']:,} | {r['build']:.2f} s | {r['open']:.2f} s | {r['add']:.2f} s "
              f"| {r['remove']:.2f} s | {r['median']:.2f} / {r['p95']:.2f} ms ({r['queries']} queries) "
              f"| {r['peak']:,.0f} MiB ({r['worker_peak']:,.0f} MiB) | {bm25} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[100_000, 1_000_000], help="synthetic corpus sizes")
    parser.add_argument("--queries", type=int, default=200, help="queries timed for qa-bot")
    parser.add_argument("--reference-max", type=int, default=100_000,
                        help="largest corpus rank-bm25 is timed on (it holds every document's terms in Python)")
    args = parser.parse_args()
    seeds = Path(tempfile.mkdtemp(prefix="qa-bot-seeds-")) / "seeds"  # a copy: the update adds a file to it
    shutil.copytree(PROJECT_ROOT / "seeds", seeds)
    rows = [measured_apart("seeds", seeds, args.queries, args.reference_max)]
    shutil.rmtree(seeds.parent)
    for size in args.sizes:
        rows.append(measured_apart(f"synthetic {size:,}", synthetic_corpus(size), args.queries, args.reference_max))
    print_table(rows)


if __name__ == "__main__":
    main()
