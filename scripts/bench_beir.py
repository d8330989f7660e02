"""Retrieval quality on a BEIR test set (NFCorpus): qa-bot next to bm25s's defaults, in one run.

The benchmark data stays where it is (default `../shared/bench/nfcorpus`, next to the project);
this script writes it as a qa-bot corpus (`.jsonl`: id, title, abstract) into a temporary folder,
opens it through qa-bot's own path (`Retriever.open`: corpus loading, index build, search) and
runs every test query. Measures, with BEIR's definitions (trec_eval's, graded gains):

- nDCG@10: sum of grade / log2(rank + 1) over the first 10, divided by the same sum for the ideal
  order of all judged documents;
- Recall@100: the share of the documents judged relevant (grade > 0) among the first 100.

A paper is one distinct abstract, so the few NFCorpus documents with the same abstract are one
paper; each retrieved paper stands for all of its documents, in file order.

Queries are split into halves by a hash of their id (`tune`, `test`), so settings chosen on one
half are graded on the other. `--tune` scores every candidate setting (variant, k1, b, BM25L's
delta, with and without the title) on the same terms and reports the best on the tuning half,
graded on both. Usage:

    .venv/bin/python scripts/bench_beir.py [--data DIR] [--tune]
"""

import argparse
import gzip
import hashlib
import importlib.util
import itertools
import json
import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qa_bot.search.bilingual import document_terms, query_units
from qa_bot.search.index import index_from_terms, top_k
from qa_bot.search.retrieve import Retriever
from qa_bot.settings import PROJECT_ROOT, Settings

DEFAULT_DATA = PROJECT_ROOT.parent / "shared" / "bench" / "nfcorpus"
DEPTH = 100  # documents ranked per query: what Recall@100 needs
HALVES = ("tune", "test")
K1S, BS = (1.2, 1.5, 2.0, 3.0), (0.3, 0.4, 0.5, 0.75, 0.9)
# rank-bm25's BM25Plus adds delta * idf to every document, a constant per query: only BM25L's delta ranks.
GRID = {
    "okapi": {"bm25_k1": K1S, "bm25_b": BS, "bm25_delta": (1.0,)},
    "plus": {"bm25_k1": K1S, "bm25_b": BS, "bm25_delta": (1.0,)},
    "l": {"bm25_k1": K1S, "bm25_b": BS, "bm25_delta": (0.5, 1.0)},
}
SHOWN = 10  # best rows of the grid printed


@dataclass(frozen=True)
class Benchmark:
    docs: list[dict]  # {"id", "title", "abstract"}, in corpus order
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]  # query id -> document id -> grade


def load_benchmark(folder: Path) -> Benchmark:
    with gzip.open(folder / "corpus.jsonl.gz", "rt", encoding="utf-8") as handle:
        docs = [json.loads(line) for line in handle]
    queries = dict(line.split("\t", 1) for line in (folder / "queries.tsv").read_text("utf-8").splitlines() if line)
    qrels: dict[str, dict[str, int]] = {}
    for line in (folder / "qrels.tsv").read_text("utf-8").splitlines():
        if line:
            query_id, doc_id, grade = line.split("\t")
            qrels.setdefault(query_id, {})[doc_id] = int(grade)
    return Benchmark(docs, {qid: text.strip() for qid, text in queries.items() if qid in qrels}, qrels)


def half_of(query_id: str) -> str:
    """"tune" or "test", the same on every machine (not Python's salted hash)."""
    return HALVES[hashlib.sha256(query_id.encode()).digest()[0] % 2]


def ndcg_at(ranking: list[str], grades: dict[str, int], k: int = 10) -> float:
    gain = sum(grades.get(doc, 0) / math.log2(rank + 1) for rank, doc in enumerate(ranking[:k], start=1))
    ideal = sorted(grades.values(), reverse=True)[:k]
    best = sum(grade / math.log2(rank + 1) for rank, grade in enumerate(ideal, start=1))
    return gain / best if best else 0.0


def recall_at(ranking: list[str], grades: dict[str, int], k: int = 100) -> float:
    relevant = {doc for doc, grade in grades.items() if grade > 0}
    return len(relevant.intersection(ranking[:k])) / len(relevant) if relevant else 0.0


def figures(runs: dict[str, list[str]], bench: Benchmark) -> dict[str, tuple[float, float]]:
    """Per half and over all queries: (mean nDCG@10, mean Recall@100); a half without queries is left out."""
    groups = {"all": list(runs), **{half: [qid for qid in runs if half_of(qid) == half] for half in HALVES}}
    return {
        name: (float(np.mean([ndcg_at(runs[qid], bench.qrels[qid]) for qid in ids])),
               float(np.mean([recall_at(runs[qid], bench.qrels[qid]) for qid in ids])))
        for name, ids in groups.items() if ids
    }


def write_corpus(bench: Benchmark, folder: Path) -> None:
    """The documents as one qa-bot `.jsonl` file; a paper's locations (lines) name its documents."""
    lines = (json.dumps({"id": doc["id"], "title": doc["title"], "abstract": doc["abstract"]}) for doc in bench.docs)
    (folder / "nfcorpus.jsonl").write_text("\n".join(lines) + "\n", "utf-8")


def qa_bot_runs(bench: Benchmark, corpus_folder: Path, cache_dir: Path) -> tuple[dict[str, list[str]], Settings]:
    """Every query through `Retriever.open` and `search`, with the settings qa-bot would use."""
    settings = Settings(corpus=corpus_folder, cache_dir=cache_dir)
    retriever = Retriever.open(settings)
    runs = {}
    for qid, text in bench.queries.items():
        hits = retriever.search(text, DEPTH).hits
        runs[qid] = [bench.docs[loc.line - 1]["id"] for hit in hits for loc in hit.paper.locations][:DEPTH]
    return runs, settings


def bm25s_runs(bench: Benchmark, stemmer) -> dict[str, list[str]]:
    """bm25s as its README shows it: `tokenize(corpus, stopwords="en")` (with a PyStemmer stemmer
    or without), a default `BM25()` (method "lucene", k1 1.5, b 0.75); BEIR's title + text."""
    import bm25s  # the bench extra: not a dependency of qa-bot

    texts = [f"{doc['title']} {doc['abstract']}" for doc in bench.docs]
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False), show_progress=False)
    ids = list(bench.queries)
    tokens = bm25s.tokenize([bench.queries[qid] for qid in ids], stopwords="en", stemmer=stemmer,
                            return_ids=False, show_progress=False)
    results, _ = retriever.retrieve(tokens, k=DEPTH, show_progress=False)
    return {qid: [bench.docs[i]["id"] for i in row] for qid, row in zip(ids, results.tolist())}


def grid_runs(bench: Benchmark, documents: list[list[str]], settings: Settings) -> dict[str, list[str]]:
    """The same scoring as `Retriever.search` (its units, `unit_scores`, `top_k` of the matching
    documents), on terms computed once, so every setting of the grid costs only an index build.
    Documents are not merged here; NFCorpus's 40 repeated abstracts tie, in corpus order."""
    index = index_from_terms(documents, settings)
    runs = {}
    for qid, text in bench.queries.items():
        units = query_units(text)
        scores = index.unit_scores(units)
        candidates = index.matching([term for unit in units for term in unit])
        runs[qid] = [bench.docs[i]["id"] for i in top_k(candidates, scores, DEPTH)]
    return runs


def candidate_settings():
    for variant, grid in GRID.items():
        names = list(grid)
        for values in itertools.product(*grid.values()):
            yield {"bm25_variant": variant, **dict(zip(names, values))}


def tune(bench: Benchmark) -> list[tuple[str, dict]]:
    """Every candidate, with and without the title indexed; best nDCG@10 on the tuning half first."""
    texts = {"abstract": [doc["abstract"] for doc in bench.docs],
             "title + abstract": [f"{doc['title']}\n{doc['abstract']}" for doc in bench.docs]}
    rows = []
    for indexed, documents in texts.items():
        terms = [document_terms(text) for text in documents]
        for values in candidate_settings():
            result = figures(grid_runs(bench, terms, Settings(**values)), bench)
            rows.append((f"{indexed}, {describe(values)}", result))
    return sorted(rows, key=lambda row: -row[1]["tune"][0])


def print_tuning(rows: list[tuple[str, dict]], chosen: str) -> None:
    """The best rows, then the best with the abstract alone and the row of qa-bot's settings."""
    print(f"\nGrid of {len(rows)}, best on the tuning half first (qa-bot's terms and scoring):\n")
    print("| indexed, setting | all | tune half | test half |\n|---|---|---|---|")
    best_abstract_only = next(name for name, _ in rows if name.startswith("abstract,"))
    for rank, (name, result) in enumerate(rows, start=1):
        if rank <= SHOWN or name in (chosen, best_abstract_only):
            print(table_row(f"{rank}. {name}", result))


def describe(values) -> str:
    variant = {"okapi": "BM25Okapi", "plus": "BM25Plus", "l": "BM25L"}[values["bm25_variant"]]
    delta = f" delta {values['bm25_delta']:g}" if values["bm25_variant"] != "okapi" else ""
    return f"{variant} k1 {values['bm25_k1']:g} b {values['bm25_b']:g}{delta}"


def table_row(name: str, result: dict[str, tuple[float, float]]) -> str:
    cells = " | ".join(f"{result[group][0]:.3f} / {result[group][1]:.3f}" if group in result else "–"
                       for group in ("all", *HALVES))
    return f"| {name} | {cells} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="BEIR folder: corpus.jsonl.gz, queries.tsv, qrels.tsv")
    parser.add_argument("--tune", action="store_true", help="also score the grid of settings (variant, k1, b, delta, title)")
    args = parser.parse_args()
    if not (args.data / "corpus.jsonl.gz").is_file():
        parser.error(f"no corpus.jsonl.gz in {args.data} (pass --data DIR)")
    if importlib.util.find_spec("bm25s") is None:
        parser.error("bm25s is not installed: it is the bench extra (pip install -e '.[bench]', or make .venv/.installed)")
    import Stemmer

    try:
        bench = load_benchmark(args.data)
    except (OSError, ValueError, KeyError) as exc:  # a line without its tabs or fields, a bad grade or JSON
        parser.error(f"cannot read the benchmark in {args.data}: {exc!r}")
    counts = {half: sum(half_of(qid) == half for qid in bench.queries) for half in HALVES}
    print(f"{args.data.name}: {len(bench.docs)} documents, {len(bench.queries)} queries "
          f"(tune {counts['tune']}, test {counts['test']})\n")
    print("| system | all: nDCG@10 / R@100 | tune half | test half |\n|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="qa-bot-beir-") as temp:
        (Path(temp) / "corpus").mkdir()
        write_corpus(bench, Path(temp) / "corpus")
        started = time.perf_counter()
        runs, settings = qa_bot_runs(bench, Path(temp) / "corpus", Path(temp) / "cache")
        elapsed = time.perf_counter() - started
    print(table_row(f"qa-bot ({describe(settings.model_dump())}; {elapsed:.1f} s)", figures(runs, bench)))
    print(table_row("bm25s defaults (stopwords en, no stemmer)", figures(bm25s_runs(bench, None), bench)))
    print(table_row("bm25s defaults + PyStemmer english", figures(bm25s_runs(bench, Stemmer.Stemmer("english")), bench)))
    if args.tune:
        print_tuning(tune(bench), f"title + abstract, {describe(settings.model_dump())}")


if __name__ == "__main__":
    main()
