"""Retrieval quality of the design choices on tests/data/retrieval_queries.jsonl (README, Retrieval).

Each row indexes the seeds with one setting and reports MRR, Recall@1 and, per language
direction, Recall@1 / Recall@5. A gold paper is named by a string only its abstract contains.

    .venv/bin/python scripts/measure_retrieval.py
"""

import json

import numpy as np

from qa_bot.search.bilingual import document_terms, query_terms, query_units
from qa_bot.collection.corpus import load_corpus
from qa_bot.search.index import index_from_terms
from qa_bot.settings import PROJECT_ROOT, Settings
from qa_bot.search.tokenize import chinese_terms, chinese_words, split_runs


def words_beside_glosses(text: str) -> list[str]:
    """The rejected query form: a Chinese query indexed like a Chinese document."""
    return document_terms(text)


def words_only(text: str) -> list[str]:
    """No bridge at all: Chinese words stay Chinese."""
    terms = []
    for is_chinese, run in split_runs(text):
        terms.extend(chinese_terms(chinese_words(run)) if is_chinese else query_terms(run))
    return terms


def each_term_alone(make_terms):
    """Every term counts on its own: the glosses of one Chinese word add up."""
    return lambda text: [[term] for term in make_terms(text)]


CONFIGURATIONS = [
    ("Chinese query words only, no glosses, BM25Plus k1 1.2 b 0.5", each_term_alone(words_only), {}),
    ("Chinese query words kept beside glosses, BM25Plus k1 1.2 b 0.75", each_term_alone(words_beside_glosses), {"bm25_b": 0.75}),
    ("Chinese query words kept beside glosses, BM25Plus k1 1.2 b 0.5", each_term_alone(words_beside_glosses), {}),
    ("glosses instead of words, BM25Okapi k1 1.2 b 0.5", each_term_alone(query_terms), {"bm25_variant": "okapi"}),
    ("glosses instead of words, BM25Okapi k1 1.5 b 0.75 (rank-bm25 defaults)", each_term_alone(query_terms),
     {"bm25_variant": "okapi", "bm25_k1": 1.5, "bm25_b": 0.75}),
    ("glosses instead of words, BM25L k1 1.2 b 0.5", each_term_alone(query_terms), {"bm25_variant": "l"}),
    ("glosses instead of words, BM25Plus k1 1.2 b 0.75", each_term_alone(query_terms), {"bm25_b": 0.75}),
    ("glosses instead of words, each gloss alone, BM25Plus k1 1.2 b 0.5", each_term_alone(query_terms), {}),
    ("**glosses instead of words, a word's glosses scored as one (best), BM25Plus k1 1.2 b 0.5 (default)**",
     query_units, {}),
]
DIRECTIONS = ["en-en", "en-zh", "zh-en", "zh-zh"]


def gold_rank(scores: np.ndarray, gold: int) -> int:
    order = list(np.argsort(-scores, kind="stable"))
    return order.index(gold) + 1


def main() -> None:
    corpus = load_corpus(PROJECT_ROOT / "seeds")
    queries_file = PROJECT_ROOT / "tests" / "data" / "retrieval_queries.jsonl"
    queries = [json.loads(line) for line in queries_file.read_text("utf-8").splitlines() if line]
    documents = [document_terms(paper.text) for paper in corpus.papers]
    print("| setting | MRR | R@1 | " + " | ".join(d.replace("-", "→") for d in DIRECTIONS) + " |")
    print("|---" * (3 + len(DIRECTIONS)) + "|")
    for label, make_units, overrides in CONFIGURATIONS:
        index = index_from_terms(documents, Settings(**overrides))
        ranks: dict[str, list[int]] = {d: [] for d in DIRECTIONS}
        for case in queries:
            gold = next(i for i, paper in enumerate(corpus.papers) if case["gold"] in paper.text)
            ranks[case["direction"]].append(gold_rank(index.unit_scores(make_units(case["query"])), gold))
        every = [r for found in ranks.values() for r in found]
        cells = [f"{np.mean([r == 1 for r in ranks[d]]):.2f} / {np.mean([r <= 5 for r in ranks[d]]):.2f}"
                 for d in DIRECTIONS]
        print(f"| {label} | {np.mean([1 / r for r in every]):.3f} | {np.mean([r == 1 for r in every]):.2f} | "
              + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
