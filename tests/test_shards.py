"""A collection in shards (qa_bot/search/shards.py) gives what one index gives: the same ranking, the
same scores to the last bit, the same weights and names, in this process and on a real local Ray
cluster (one per module, on 127.0.0.1, its session files in a temp folder, shut down after); a
killed shard is one clear error, or a result marked partial."""

import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pytest

from qa_bot.answer.assistant import Assistant
from qa_bot.app.output import answer_json, search_json
from qa_bot.collection.corpus import load_corpus
from qa_bot.search.bilingual import query_units
from qa_bot.search.retrieve import Retriever
from qa_bot.search.shards import ShardDown, build_shards, connect
from qa_bot.search.tokenize import LATIN_WORD
from qa_bot.settings import Settings
from tests.conftest import DATA, SEEDS
from tests.fake_server import FakeModelServer
from tests.fakes import FakeModel

QUESTIONS = [json.loads(line)["question"] for line in (DATA.parent.parent / "qa_bot" / "data" / "questions.jsonl")
             .read_text("utf-8").splitlines() if line.strip()]
EVERY = 100_000  # a k beyond any collection here: every matching paper is ranked and compared


def seed_queries() -> list[str]:
    queries = [json.loads(line)["query"] for line in (DATA / "retrieval_queries.jsonl").read_text("utf-8").splitlines()
               if line.strip()]
    return queries + QUESTIONS + ["the of model", "GNN GPU 图神经网络", "ADE20K segmentation", "zzzz unknownword"]


def assert_same_search(single: Retriever, sharded: Retriever, query: str, k: int, **how) -> None:
    one, many = single.search(query, k, **how), sharded.search(query, k, **how)
    assert [h.paper.paper_id for h in many.hits] == [h.paper.paper_id for h in one.hits], query
    # every score, to the last bit (np.array_equal: no tolerance)
    assert np.array_equal([h.score for h in many.hits], [h.score for h in one.hits]), query
    assert [(h.paper.title, h.snippet, h.paper.locations) for h in many.hits] == \
           [(h.paper.title, h.snippet, h.paper.locations) for h in one.hits], query
    assert not many.missing_shards


def assert_same_answers_stage(single: Retriever, sharded: Retriever, query: str) -> None:
    """What the answer stage asks beyond the ranking: weights, known terms, coverage, names."""
    terms = [term for unit in query_units(query) for term in unit]
    assert [sharded.term_weight(t) for t in terms] == [single.term_weight(t) for t in terms], query
    assert [sharded.index.knows(t) for t in terms] == [single.index.knows(t) for t in terms], query
    beginnings = [term[:3] for term in terms]
    assert [sharded.index.knows_beginning(b) for b in beginnings] == [single.index.knows_beginning(b) for b in beginnings]
    assert sharded.unused_words(query) == single.unused_words(query), query
    for hit in single.search(query, 3).hits:
        paper = sharded.corpus.paper(hit.paper.paper_id)
        assert sharded.coverage(query, paper) == single.coverage(query, hit.paper), query
        assert sharded.best_sentences(terms, paper, 2) == single.best_sentences(terms, hit.paper, 2)
        for name in LATIN_WORD.findall(query):
            assert sharded.identifies(name, paper) == single.identifies(name, hit.paper), (query, name)
    for name in LATIN_WORD.findall(query):
        ids = lambda retriever: sorted(retriever.corpus.paper_at(p).paper_id for p in retriever.papers_holding(name))
        assert ids(sharded) == ids(single), name


def assert_same_collection(single: Retriever, sharded: Retriever, queries: list[str], k: int = EVERY) -> None:
    assert sharded.corpus.paper_count == single.corpus.paper_count
    assert sharded.corpus.record_count == single.corpus.record_count
    assert sharded.max_weight == single.max_weight
    for query in queries:
        assert_same_search(single, sharded, query, k)
        assert_same_search(single, sharded, query, 3)
    # a follow-up's search: earlier papers carried in, papers holding the names first
    carried = tuple(h.paper.paper_id for h in single.search(queries[0], 2).hits)
    assert_same_search(single, sharded, queries[1], 5, include=carried, names=("GNN",))


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    return Retriever.open(Settings(corpus=SEEDS, cache_dir=tmp_path_factory.mktemp("single")))


def test_three_shards_in_this_process_rank_and_weigh_as_one_index(single, tmp_path):
    settings = Settings(corpus=SEEDS, cache_dir=tmp_path / "shards", shards=3)
    built = build_shards(settings)
    assert sum(shard["papers"] for shard in built) == single.corpus.paper_count
    assert all(shard["papers"] for shard in built)  # the id hash spreads 32 papers over all 3
    sharded = Retriever.open(settings)
    assert_same_collection(single, sharded, seed_queries())
    for query in seed_queries():
        assert_same_answers_stage(single, sharded, query)


def test_shards_follow_an_update_of_the_corpus_as_one_index_does(tmp_path):
    corpus = tmp_path / "corpus"
    shutil.copytree(SEEDS, corpus)
    settings = Settings(corpus=corpus, cache_dir=tmp_path / "cache", shards=2)
    build_shards(settings)
    first = sorted(corpus.glob("*.txt"))[0]
    first.unlink()  # a removed file: its papers leave every shard
    (corpus / "new.txt").write_text("GraphSketch compresses graph neural network training on one GPU.\n", "utf-8")
    sharded = Retriever.open(settings)  # opening updates each shard, as a single index updates
    single = Retriever.open(Settings(corpus=corpus, cache_dir=tmp_path / "single"))
    assert not sharded.from_cache and sharded.changes[0] >= 1
    assert_same_collection(single, sharded, ["GraphSketch GPU", "graph neural network", "数据集蒸馏 后门攻击"])


def test_the_largest_weight_is_the_collections_when_no_term_is_rare_in_it(tmp_path):
    """Every term in two papers or more, each shard's rarest held once there: the rarest of the
    shards are not the collection's, and the weight of a word it never uses is still one index's."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "theta", "kappa"]
    lines = [f"{a} {b} study." for a in words for b in words if a < b] + [f"{a} {a} {b} paper." for a in words
                                                                           for b in words if a < b]
    (corpus / "a.txt").write_text("\n".join(lines) + "\n", "utf-8")
    single = Retriever.open(Settings(corpus=corpus, cache_dir=tmp_path / "single"))
    for count in (2, 3, 5):
        settings = Settings(corpus=corpus, cache_dir=tmp_path / f"shards-{count}", shards=count)
        build_shards(settings)
        assert Retriever.open(settings).max_weight == single.max_weight


# A real local Ray cluster, one for the module.

@pytest.fixture(scope="module")
def cluster():
    """ray.init's own local cluster: 2 CPUs, on 127.0.0.1 (Ray otherwise gives the node the address
    other machines reach), its session files in a temp folder; every Ray process ends with it."""
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # read when ray is imported
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    import ray

    session = tempfile.mkdtemp(prefix="qa-ray-", dir="/tmp")  # short: Ray's socket paths have a limit
    ray.init(num_cpus=2, include_dashboard=False, _temp_dir=session, log_to_driver=False, logging_level="WARNING")
    address = ray.get_runtime_context().gcs_address
    assert address.startswith("127.0.0.1:")
    try:
        yield address
    finally:
        ray.shutdown()
        shutil.rmtree(session, ignore_errors=True)


@pytest.fixture(scope="module")
def ray_shards(cluster, tmp_path_factory):
    """The seeds in 4 shards, built by Ray tasks, then held by Ray actors."""
    settings = Settings(corpus=SEEDS, cache_dir=tmp_path_factory.mktemp("ray-shards"), shards=4, ray_address=cluster)
    built = build_shards(settings)
    assert len(built) == 4 and sum(shard["papers"] for shard in built) == 32
    return settings


def test_shards_on_ray_rank_and_weigh_as_one_index(single, ray_shards):
    sharded = Retriever.open(ray_shards)
    assert sharded.index.remote
    assert_same_collection(single, sharded, seed_queries())
    for query in QUESTIONS[:10]:
        assert_same_answers_stage(single, sharded, query)


def test_a_killed_shard_is_one_error_naming_it_or_a_partial_result(single, ray_shards):
    import ray

    sharded = Retriever.open(ray_shards)
    query = "graph neural network training GPU"
    assert_same_search(single, sharded, query, 5)
    ray.kill(sharded.index.holders[2])  # mid-run: the retriever is open and has answered
    with pytest.raises(ShardDown, match=r"^shard 3 of 4 is down \(Ray actor qa-bot-shard-3-of-4-"):
        sharded.search(query, 5)
    partial_settings = ray_shards.model_copy(update={"allow_partial": True})
    partial = Retriever.open(partial_settings)
    ray.kill(partial.index.holders[0])
    result = partial.search(query, 5)
    assert result.missing_shards == ("shard 1 of 4",)
    # the papers come from the other three shards only
    shard_of = lambda paper_id: int(paper_id, 16) % 4
    assert result.hits and all(shard_of(hit.paper.paper_id) != 0 for hit in result.hits)
    # an answer from them says it is partial, in the contract's JSON too
    stream = Assistant(partial, FakeModel("It is trained on GPUs [1]."), partial_settings).ask(query, None)
    "".join(stream)
    assert json.loads(answer_json(stream.answer))["partial"] == ["shard 1 of 4"]
    assert json.loads(search_json(result))["partial"] == ["shard 1 of 4"]
    assert "partial" not in json.loads(search_json(single.search(query, 5)))


def qa_bot(*args, env=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "qa_bot", *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def test_what_the_cluster_pushes_to_the_driver_goes_to_stderr_not_into_the_output(cluster, capsys):
    """Ray's warnings from the raylet ("8 PYTHON worker processes have been started", on a busy
    machine) were printed on stdout, in the middle of `ask --json`'s JSON."""
    from ray._private import worker

    connect(cluster)
    connect(cluster)  # wrapped once
    worker.print_to_stdstream({"lines": ["WARNING: many workers"], "pid": "raylet", "is_err": False}, ignore_prefix=False)
    out, err = capsys.readouterr()
    assert out == "" and err.count("WARNING: many workers") == 1


def test_ask_and_search_answer_through_the_cluster(ray_shards, cluster, single):
    env = {"QA_BOT_CACHE_DIR": str(ray_shards.cache_dir)}
    question = "What accuracy does TinyMIM reach on ImageNet?"
    with FakeModelServer("TinyMIM reaches 79.6% top-1 accuracy on ImageNet-1K [1].") as server:
        run = qa_bot("ask", "--json", "--ray", cluster, "--shards", "4", "--llm-url", server.url, "--llm-model", "m",
                     question, env=env)
    assert run.returncode == 0, run.stderr
    answer = json.loads(run.stdout)
    assert answer["outcome"] == "answered" and "79.6%" in answer["answer"] and "partial" not in answer
    assert answer["sources"][0]["paper_id"] == single.search(question, 1).hits[0].paper.paper_id
    run = qa_bot("search", "--json", "-k", "3", "--ray", cluster, "--shards", "4", "数据集蒸馏 后门攻击", env=env)
    assert run.returncode == 0, run.stderr
    expected = single.search("数据集蒸馏 后门攻击", 3).hits
    assert [(r["paper_id"], r["score"]) for r in json.loads(run.stdout)["results"]] == \
           [(h.paper.paper_id, round(h.score, 4)) for h in expected]


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("args, code, message", [
    (["--shards", "0"], 2, "invalid setting shards: Input should be greater than or equal to 1"),
    (["--shards", "5"], 2, "shard 1 of 5 is missing ("),
    (["--shards", "2", "--ray", "nonsense"], 2, "bad Ray address 'nonsense'"),
    (["--shards", "2", "--ray", "127.0.0.1:PORT"], 1, "cannot reach the Ray cluster at 127.0.0.1:"),
    (["--ray", "127.0.0.1:PORT"], 2, "a Ray address needs shards"),
])
def test_bad_shard_settings_are_one_line(args, code, message):
    args = [arg.replace("PORT", str(free_port())) for arg in args]
    run = qa_bot("search", *args, "graph")
    assert run.returncode == code, run.stderr
    assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr
    assert message in run.stderr


def test_index_builds_the_shards_and_says_where(tmp_path):
    run = qa_bot("index", "--json", "--shards", "3", env={"QA_BOT_CACHE_DIR": str(tmp_path)})
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert summary["papers"] == 32 and len(summary["shards"]) == 3
    assert sum(shard["papers"] for shard in summary["shards"]) == 32
    run = qa_bot("search", "--json", "--shards", "3", "DOORPING", env={"QA_BOT_CACHE_DIR": str(tmp_path)})
    assert run.returncode == 0 and json.loads(run.stdout)["results"]


# 100,000 generated abstracts: every score of every matching paper compared

def generated_corpus(folder, size: int, seed: int = 5) -> None:
    """size short abstracts (a fifth Chinese) from the seeds' words, with rare words and made-up
    names, so that document frequencies range from one paper to most of them."""
    papers = load_corpus(SEEDS).papers
    english = re.findall(r"[A-Za-z][A-Za-z-]+", " ".join(p.text for p in papers if p.lang == "en"))
    chinese = re.findall(r"[\u4e00-\u9fff]{2,4}", " ".join(p.text for p in papers if p.lang == "zh"))
    rng = random.Random(seed)
    rare = ["".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=7)) for _ in range(20000)]
    names = ["".join(rng.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZ", k=4)) for _ in range(5000)]
    folder.mkdir()
    for start in range(0, size, 5000):
        lines = []
        for _ in range(min(5000, size - start)):
            if rng.random() < 0.2:
                lines.append("，".join(rng.choices(chinese, k=rng.randint(10, 30))) + rng.choice(names) + "。")
            else:
                words = rng.choices(english, k=rng.randint(20, 50)) + rng.choices(rare, k=2) + [rng.choice(names)]
                rng.shuffle(words)
                lines.append(" ".join(words).capitalize() + ".")
        (folder / f"{start // 5000:03d}.txt").write_text("\n".join(lines) + "\n", "utf-8")


@pytest.mark.slow
def test_100k_generated_abstracts_in_4_shards_score_as_one_index(tmp_path):
    corpus = tmp_path / "generated"
    generated_corpus(corpus, 100_000)
    single = Retriever.open(Settings(corpus=corpus, cache_dir=tmp_path / "single"))
    settings = Settings(corpus=corpus, cache_dir=tmp_path / "shards", shards=4)
    build_shards(settings)
    sharded = Retriever.open(settings)
    rng = random.Random(3)
    queries = []
    for position in rng.sample(range(single.corpus.paper_count), 60):
        words = single.corpus.paper_at(position).text.replace("，", " ").replace("。", " ").split()
        queries.append(" ".join(rng.sample(words, min(len(words), rng.randint(1, 4)))))
    assert_same_collection(single, sharded, queries[:6])  # every matching paper of these
    for query in queries[6:]:
        assert_same_search(single, sharded, query, 100)
    for query in queries[:20]:
        assert_same_answers_stage(single, sharded, query)
