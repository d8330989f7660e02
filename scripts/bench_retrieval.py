"""Retrieval benchmark: index build, cached load and query latency, next to plain rank-bm25.

Runs on the bundled seeds and on a synthetic corpus of N abstracts (default 100,000) that it
generates deterministically under bench-data/ from the seeds' own words: 80% English, 20% Chinese,
in seed format. Prints a Markdown table (the README quotes it). Usage:

    .venv/bin/python scripts/bench_retrieval.py [--size 100000] [--queries 200] [--reference-queries 20]
"""

import argparse
import random
import re
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import rank_bm25

from qa_bot.bilingual import document_terms, query_terms
from qa_bot.corpus import load_corpus
from qa_bot.index import load_or_build
from qa_bot.retrieve import Retriever
from qa_bot.settings import PROJECT_ROOT, Settings

BENCH_DATA = PROJECT_ROOT / "bench-data"
LINES_PER_FILE = 1000


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


def synthetic_corpus(size: int, seed: int = 7) -> Path:
    """size abstracts in seed format, made once and reused (the folder name holds size and seed)."""
    folder = BENCH_DATA / f"synthetic-{size}-{seed}"
    if folder.is_dir():
        return folder
    rng = random.Random(seed)
    english, chinese = seed_vocabularies(PROJECT_ROOT / "seeds")
    # Made-up method names and rare words give the long tail of a real collection's vocabulary.
    rare = ["".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=rng.randint(5, 10))) for _ in range(40000)]
    names = ["".join(rng.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZ", k=rng.randint(3, 6))) for _ in range(20000)]
    BENCH_DATA.mkdir(exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=BENCH_DATA))
    lines = []
    for number in range(size):
        name = rng.choice(names)
        if rng.random() < 0.2:
            words = rng.choices(chinese, k=rng.randint(60, 120)) + [name] * 3
            rng.shuffle(words)
            lines.append("，".join("".join(words[i : i + 8]) for i in range(0, len(words), 8)) + "。")
        else:
            words = rng.choices(english, k=rng.randint(120, 220)) + rng.choices(rare, k=8) + [name] * 3
            rng.shuffle(words)
            lines.append(". ".join(" ".join(words[i : i + 18]).capitalize() for i in range(0, len(words), 18)) + ".")
        if len(lines) == LINES_PER_FILE or number == size - 1:
            (staging / f"{number // LINES_PER_FILE:04d}.txt").write_text("\n".join(lines) + "\n", "utf-8")
            lines = []
    staging.rename(folder)
    return folder


def sample_queries(corpus, count: int, seed: int = 11) -> list[str]:
    """Queries of 2 to 5 words taken from random abstracts, a fifth of them Chinese when the corpus has any."""
    rng = random.Random(seed)
    queries = []
    for paper in rng.sample(corpus.papers, min(count, len(corpus.papers))):
        if paper.lang == "zh":
            words = re.findall(r"[\u4e00-\u9fff]{2,4}", paper.text)
            queries.append(" ".join(rng.sample(words, min(len(words), rng.randint(2, 4)))))
        else:
            words = re.findall(r"[A-Za-z]{3,}", paper.text)
            queries.append(" ".join(rng.sample(words, min(len(words), rng.randint(2, 5)))))
    return queries


def measure(label: str, folder: Path, query_count: int, reference_count: int) -> dict:
    settings = Settings(corpus=folder, cache_dir=Path(tempfile.mkdtemp(prefix="qa-bot-bench-")))
    try:
        corpus, load_seconds = timed(load_corpus, folder)
        _, build_seconds = timed(load_or_build, corpus, settings)
        Retriever.open(settings)  # the first open saves the derived titles beside the index
        retriever, open_seconds = timed(Retriever.open, settings)
        _, cached_index_seconds = timed(load_or_build, corpus, settings)
        queries = sample_queries(corpus, query_count)
        latencies = [timed(retriever.search, query, 5)[1] * 1000 for query in queries]
        documents = [document_terms(paper.text) for paper in corpus.papers]
        reference, reference_build = timed(
            lambda: rank_bm25.BM25Plus(documents, k1=settings.bm25_k1, b=settings.bm25_b, delta=settings.bm25_delta)
        )
        reference_latencies = [
            timed(reference.get_scores, query_terms(query))[1] * 1000 for query in queries[:reference_count]
        ]
        return {
            "label": label,
            "papers": len(corpus.papers),
            "parse": load_seconds,
            "build": build_seconds,
            "open": open_seconds,
            "index_load": cached_index_seconds,
            "median": statistics.median(latencies),
            "p95": percentile(latencies, 0.95),
            "reference_build": reference_build,
            "reference_median": statistics.median(reference_latencies),
            "reference_p95": percentile(reference_latencies, 0.95),
            "queries": len(latencies),
            "reference_queries": len(reference_latencies),
        }
    finally:
        shutil.rmtree(settings.cache_dir, ignore_errors=True)


def print_table(rows: list[dict]) -> None:
    print("| corpus | papers | parse corpus | build index (incl. parse of terms) | cached open (corpus + index) "
          "| cached index load | query median / p95 | rank-bm25 BM25Plus init | rank-bm25 get_scores median / p95 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['label']} | {r['papers']:,} | {r['parse']:.2f} s | {r['build']:.2f} s | {r['open']:.2f} s "
              f"| {r['index_load']:.2f} s | {r['median']:.2f} / {r['p95']:.2f} ms ({r['queries']} queries) "
              f"| {r['reference_build']:.2f} s "
              f"| {r['reference_median']:.1f} / {r['reference_p95']:.1f} ms ({r['reference_queries']} queries) |")
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nPeak resident memory of the whole run (rank-bm25's reference included): {peak_mib:,.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000, help="synthetic corpus size")
    parser.add_argument("--queries", type=int, default=200, help="queries timed for qa-bot")
    parser.add_argument("--reference-queries", type=int, default=20, help="queries timed for rank-bm25")
    args = parser.parse_args()
    rows = [measure("seeds", PROJECT_ROOT / "seeds", args.queries, args.reference_queries)]
    synthetic = synthetic_corpus(args.size)
    rows.append(measure(f"synthetic {args.size:,}", synthetic, args.queries, args.reference_queries))
    print_table(rows)


if __name__ == "__main__":
    main()
