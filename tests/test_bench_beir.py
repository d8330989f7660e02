"""The BEIR benchmark's measures (scripts/bench_beir.py): hand-computed examples, and trec_eval's."""

import gzip
import importlib.util
import json
import math
import random

import ir_measures
import pytest
from ir_measures import R, nDCG

from qa_bot.settings import PROJECT_ROOT

spec = importlib.util.spec_from_file_location("bench_beir", PROJECT_ROOT / "scripts" / "bench_beir.py")
bench_beir = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench_beir)


def test_ndcg_of_a_hand_computed_ranking():
    # Ranked: a (grade 2), x (unjudged), b (grade 1): 2/1 + 1/2 = 2.5. Ideal 2, 1, 1: 2 + 1/log2(3) + 1/2.
    grades = {"a": 2, "b": 1, "c": 1}
    dcg = 2 / math.log2(2) + 1 / math.log2(4)
    ideal = 2 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    assert bench_beir.ndcg_at(["a", "x", "b"], grades) == pytest.approx(dcg / ideal)
    assert dcg / ideal == pytest.approx(2.5 / 3.1309, abs=1e-4)


def test_ndcg_counts_only_the_first_k():
    grades = {"a": 1}
    assert bench_beir.ndcg_at(["x"] * 10 + ["a"], grades) == 0.0
    assert bench_beir.ndcg_at(["a", "x"], grades) == 1.0
    assert bench_beir.ndcg_at(["x", "a"], grades, k=1) == 0.0


def test_recall_of_a_hand_computed_ranking():
    grades = {"a": 2, "b": 1, "c": 1, "d": 0}
    assert bench_beir.recall_at(["a", "x", "c", "d"], grades) == pytest.approx(2 / 3)
    assert bench_beir.recall_at(["x", "a"], grades, k=1) == 0.0


def test_measures_equal_trec_eval_on_random_runs():
    rng = random.Random(7)
    docs = [f"d{i}" for i in range(60)]
    qrels = {f"q{q}": {doc: rng.choice((1, 2)) for doc in rng.sample(docs, rng.randint(1, 15))} for q in range(20)}
    runs = {qid: rng.sample(docs, 40) for qid in qrels}
    trec_run = {qid: {doc: float(len(ranking) - rank) for rank, doc in enumerate(ranking)} for qid, ranking in runs.items()}
    expected = {(str(m.measure), m.query_id): m.value for m in ir_measures.iter_calc([nDCG @ 10, R @ 100], qrels, trec_run)}
    for qid, ranking in runs.items():
        assert bench_beir.ndcg_at(ranking, qrels[qid]) == pytest.approx(expected[("nDCG@10", qid)])
        assert bench_beir.recall_at(ranking, qrels[qid]) == pytest.approx(expected[("R@100", qid)])


def test_halves_are_stable_and_split_the_queries():
    ids = [f"PLAIN-{i}" for i in range(200)]
    halves = [bench_beir.half_of(qid) for qid in ids]
    assert halves == [bench_beir.half_of(qid) for qid in ids]
    assert 70 < halves.count("tune") < 130


def test_a_tiny_benchmark_runs_through_qa_bot(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    docs = [{"id": "D1", "title": "Statins and breast cancer", "abstract": "Statin use lowers breast cancer mortality."},
            {"id": "D2", "title": "Coffee", "abstract": "Coffee drinking and sleep quality in adults."},
            {"id": "D3", "title": "Copy", "abstract": "Statin use lowers breast cancer mortality."}]
    with gzip.open(data / "corpus.jsonl.gz", "wt", encoding="utf-8") as handle:
        handle.write("".join(json.dumps(doc) + "\n" for doc in docs))
    (data / "queries.tsv").write_text("Q1\tDo statins cause breast cancer?\nQ2\tunjudged\n", "utf-8")
    (data / "qrels.tsv").write_text("Q1\tD1\t2\nQ1\tD3\t1\n", "utf-8")
    bench = bench_beir.load_benchmark(data)
    assert list(bench.queries) == ["Q1"]
    (tmp_path / "corpus").mkdir()
    bench_beir.write_corpus(bench, tmp_path / "corpus")
    runs, _ = bench_beir.qa_bot_runs(bench, tmp_path / "corpus", tmp_path / "cache")
    # D1 and D3 share their abstract: one paper, standing for both documents.
    assert runs == {"Q1": ["D1", "D3"]}
    assert bench_beir.figures(runs, bench)["all"] == (pytest.approx(1.0), pytest.approx(1.0))
