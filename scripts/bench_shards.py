"""Shards benchmark: a generated collection in one index and in N shards on a local Ray cluster.

The corpus is scripts/bench_retrieval.py's synthetic one (1,000,000 abstracts by default, made
once under bench-data/). One index: first build, cached open, queries (search with snippets and
titles, top 5), peak memory, in a process of its own. Shards, on a Ray cluster started here (this
machine's cores): the build as one Ray task per shard, the open (an actor per shard maps its
shard), the same queries, each ranking checked equal to the single index's (ids and scores), each
actor's memory, one shard's own cost of a query (its two rounds, timed in this process on the
collection's statistics), and the bytes each round sends and receives. Then the estimate for
--target abstracts in shards of the measured size. Prints Markdown (docs/retrieval.md quotes it)
and, with --json FILE, the figures. Usage:

    .venv/bin/python scripts/bench_shards.py [--size 1000000] [--shards 4] [--queries 200] [--target 36000000]
"""

import argparse
import json
import multiprocessing
import pickle
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_retrieval import percentile, sample_queries, synthetic_corpus, timed  # noqa: E402

from qa_bot.search.bilingual import query_units  # noqa: E402
from qa_bot.search.index import Statistics  # noqa: E402
from qa_bot.search.retrieve import Retriever  # noqa: E402
from qa_bot.search.shards import build_shards, process_memory  # noqa: E402
from qa_bot.settings import Settings  # noqa: E402

K = 5


def rankings(retriever: Retriever, queries: list[str]) -> tuple[list, list[float]]:
    found, latencies = [], []
    for query in queries:
        result, seconds = timed(retriever.search, query, K)
        found.append([(hit.paper.paper_id, hit.score) for hit in result.hits])
        latencies.append(seconds * 1000)
    return found, latencies


def single_build(folder: Path, cache: Path) -> dict:
    _, build = timed(Retriever.open, Settings(corpus=folder, cache_dir=cache))
    return {"build": build, "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "worker_peak_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
            "disk_mib": folder_mib(cache)}


def single_queries(folder: Path, cache: Path, query_count: int, target: int) -> dict:
    """The cached index opened and queried, in a fresh process (what a machine holding it uses);
    then the same index as one of target/size shards alike: each query scored with statistics
    that many times its own (the shard's own cost of both rounds, and the bytes they carry)."""
    retriever, opened = timed(Retriever.open, Settings(corpus=folder, cache_dir=cache))
    queries = sample_queries(retriever.corpus, query_count)
    found, latencies = rankings(retriever, queries)
    rss = process_memory()
    index, times = retriever.index, max(1, target // retriever.corpus.paper_count)
    rounds, sizes = [], []
    for query in queries:
        units = query_units(query)
        terms = [term for unit in units for term in unit]
        share, first = timed(index.statistics, terms)
        total = Statistics(share.documents * times, share.total_length * times,
                           {term: count * times for term, count in share.frequency.items()})
        (top, scores), second = timed(lambda: index.scoring(total).best(units, K, np.zeros(0, dtype=np.int64)))
        rounds.append((first * 1000, second * 1000))
        answer = (top, scores, np.asarray(index.keys[top]))
        sizes.append((len(pickle.dumps(terms)), len(pickle.dumps(share)),
                      len(pickle.dumps((total, units, K, np.zeros(0, dtype=np.int64)))), len(pickle.dumps(answer))))
    return {"open": opened, "queries": queries, "found": found, "latencies": latencies, "rss_mib": rss["rss_mib"],
            "rounds": rounds, "sizes": sizes, "times": times}


def folder_mib(folder: Path) -> float:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file()) / 2**20


def apart(function, *args):
    """`function(*args)` in a process of its own (its own peak memory, freed after)."""
    context = multiprocessing.get_context("fork")
    receiving, sending = context.Pipe(duplex=False)
    process = context.Process(target=lambda: sending.send(function(*args)))
    process.start()
    result = receiving.recv()
    process.join()
    return result


def sharded(folder: Path, cache: Path, shard_count: int, queries: list[str]) -> dict:
    settings = Settings(corpus=folder, cache_dir=cache, shards=shard_count, ray_address="local")
    built, build = timed(build_shards, settings)
    retriever, opened = timed(Retriever.open, settings)
    found, latencies = rankings(retriever, queries)
    return {"build": build, "open": opened, "found": found, "latencies": latencies, "memory": retriever.index.ask("memory"),
            "papers": [shard["papers"] for shard in built], "task_seconds": [shard["seconds"] for shard in built],
            "folders_mib": [folder_mib(Path(shard["folder"])) for shard in built],
            "coordinator_mib": process_memory()["rss_mib"]}


def same(one: list, many: list) -> int:
    """How many queries ranked the same papers with the same scores (exactly)."""
    return sum(a == b for a, b in zip(one, many))


def report(size: int, shard_count: int, target: int, built: dict, single: dict, shards: dict) -> dict:
    shard_query = [first + second for first, second in single["rounds"]]
    sizes = np.array(single["sizes"], dtype=float)
    bytes_median = [float(np.median(sizes[:, i])) for i in range(4)]
    count = single["times"]
    figures = {
        "size": size, "shards": shard_count, "queries": len(single["queries"]), "target": target,
        "single": {"build": built["build"], "open": single["open"], "median_ms": statistics.median(single["latencies"]),
                   "p95_ms": percentile(single["latencies"], 0.95), "peak_mib": built["peak_mib"],
                   "worker_peak_mib": built["worker_peak_mib"], "rss_mib": single["rss_mib"], "disk_mib": built["disk_mib"]},
        "sharded": {"build": shards["build"], "open": shards["open"], "median_ms": statistics.median(shards["latencies"]),
                    "p95_ms": percentile(shards["latencies"], 0.95), "papers": shards["papers"],
                    "task_seconds": shards["task_seconds"], "folders_mib": shards["folders_mib"],
                    "actor_rss_mib": [m["rss_mib"] for m in shards["memory"]],
                    "actor_peak_mib": [m["peak_mib"] for m in shards["memory"]],
                    "coordinator_rss_mib": shards["coordinator_mib"],
                    "identical": same(single["found"], shards["found"])},
        "shard_of_target": {"shards": count, "per_shard": size, "query_median_ms": statistics.median(shard_query),
                            "query_p95_ms": percentile(shard_query, 0.95),
                            "round1_median_ms": statistics.median(r[0] for r in single["rounds"]),
                            "round2_median_ms": statistics.median(r[1] for r in single["rounds"]),
                            "bytes_median": bytes_median,
                            "bytes_per_query": count * sum(bytes_median),
                            "coordinator_ids_mib": count * size * 10 / 2**20},
    }
    return figures


def print_report(f: dict) -> None:
    s, m, e = f["single"], f["sharded"], f["shard_of_target"]
    print(f"| {f['size']:,} abstracts | first build | cached open | query median / p95 ({f['queries']} queries, top {K}) "
          f"| memory |")
    print("|---|---|---|---|---|")
    print(f"| one index | {s['build']:.1f} s | {s['open']:.2f} s | {s['median_ms']:.1f} / {s['p95_ms']:.1f} ms "
          f"| build peak {s['peak_mib']:,.0f} MiB (worker {s['worker_peak_mib']:,.0f} MiB); opened and queried "
          f"{s['rss_mib']:,.0f} MiB resident; {s['disk_mib']:,.0f} MiB on disk |")
    tasks = ", ".join(f"{t:.0f}" for t in m["task_seconds"])
    actors = ", ".join(f"{r:,.0f}" for r in m["actor_rss_mib"])
    disks = ", ".join(f"{d:,.0f}" for d in m["folders_mib"])
    print(f"| {f['shards']} shards on Ray, this machine | {m['build']:.1f} s (tasks {tasks} s) | {m['open']:.2f} s "
          f"| {m['median_ms']:.1f} / {m['p95_ms']:.1f} ms | actors {actors} MiB resident, driver {m['coordinator_rss_mib']:,.0f} MiB; "
          f"{disks} MiB on disk |")
    print()
    print(f"Rankings identical to the single index's (ids and scores, exactly): {m['identical']} of {f['queries']} queries.")
    print(f"Shards: {', '.join(f'{p:,}' for p in m['papers'])} papers.")
    b = e["bytes_median"]
    print(f"The {f['size']:,}-abstract index as one of {e['shards']} alike ({f['target']:,} abstracts; statistics x{e['shards']}): "
          f"its own cost of a query median {e['query_median_ms']:.2f} ms, p95 {e['query_p95_ms']:.2f} ms "
          f"(round 1 {e['round1_median_ms']:.3f} ms, round 2 {e['round2_median_ms']:.2f} ms); bytes per shard "
          f"(median, pickled) round 1 {b[0]:.0f} out, {b[1]:.0f} back, round 2 {b[2]:.0f} out, {b[3]:.0f} back: "
          f"{e['bytes_per_query']:,.0f} bytes a query for all {e['shards']}; the driver's position arrays "
          f"{e['coordinator_ids_mib']:,.0f} MiB.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000, help="generated abstracts")
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--target", type=int, default=36_000_000, help="abstracts of the estimate")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    folder = synthetic_corpus(args.size)
    cache = Path(tempfile.mkdtemp(prefix="qa-bot-bench-shards-"))
    try:
        built = apart(single_build, folder, cache / "single")
        single = apart(single_queries, folder, cache / "single", args.queries, args.target)
        shutil.rmtree(cache / "single", ignore_errors=True)
        shards = sharded(folder, cache / "shards", args.shards, single["queries"])
    finally:
        shutil.rmtree(cache, ignore_errors=True)
        if "ray" in sys.modules:
            sys.modules["ray"].shutdown()  # the local cluster started for the shards
    figures = report(args.size, args.shards, args.target, built, single, shards)
    print_report(figures)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=1) + "\n", "utf-8")


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"\n(bench took {time.perf_counter() - started:.0f} s)")
