"""End to end with real processes on loopback: `qa-bot serve-model` (llama_cpp.server with the
packaged Gemma GGUF) writes the answers for `qa-bot ask`, `chat` and `serve`; `serve` is called with
the official `openai` client and with plain HTTP (httpx)."""

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest

from qa_bot.collection.corpus import load_corpus
from tests.conftest import SEEDS
from tests.contract import assert_contract
from tests.processes import free_port, qa_bot_server

# The real model, browser or served processes: left out of `make check-latest`'s fast run.
pytestmark = pytest.mark.slow

MGTAB_QUESTION = "How many expert-annotated users does MGTAB contain?"
MGTAB_KEY = "10,199 expert-annotated"


@pytest.fixture(scope="module")
def model_server():
    """The model server's --llm-url: the fast packaged model (Gemma 270M), since what is tested here is the
    serving, and the default model would make these runs several times longer."""
    with qa_bot_server("serve-model", "--model", "fast", ready_path="/v1/models", port=free_port()) as base:
        yield base + "/v1"


@pytest.fixture(scope="module")
def service(model_server):
    with qa_bot_server("serve", "--llm-url", model_server, "--llm-api", "completions",
                       ready_path="/healthz", port=free_port()) as base:
        yield base


@pytest.fixture(scope="module")
def papers():
    return {paper.paper_id: paper.text for paper in load_corpus(SEEDS).papers}


def cites(answer: dict, key: str, papers: dict) -> bool:
    return any(key in papers[citation["paper_id"]] for citation in answer["citations"])


def qa_bot(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "qa_bot", *args], input=stdin, capture_output=True, text=True,
                          timeout=900)  # generous: a busy machine slows llama.cpp down many times over


def test_ask_through_the_model_server_answers_as_in_process(model_server, papers):
    remote = qa_bot("ask", "--json", "--llm-url", model_server, "--llm-api", "completions", MGTAB_QUESTION)
    assert remote.returncode == 0, remote.stderr
    answer = json.loads(remote.stdout)
    assert_contract(answer, papers)
    assert cites(answer, MGTAB_KEY, papers)
    assert answer["model"] == f"gemma-3-270m-q4_k_m.gguf @ {model_server}"
    # In-process, the same packaged model answers from the same evidence. (The texts may differ: a
    # server that gives no log-probabilities is judged from the token it chose, not from P(yes).)
    local = json.loads(qa_bot("ask", "--json", "--model", "fast", MGTAB_QUESTION).stdout)
    assert cites(local, MGTAB_KEY, papers) and local["model"] == "gemma-3-270m-q4_k_m.gguf"


def test_chat_through_the_model_server_follows_up(model_server, papers):
    run = qa_bot("chat", "--json", "--llm-url", model_server, "--llm-api", "completions",
                 stdin=f"{MGTAB_QUESTION}\nHow many types of relationships does it have?\n")
    assert run.returncode == 0, run.stderr
    turns = [json.loads(line) for line in run.stdout.splitlines()]
    assert len(turns) == 2
    for turn in turns:
        assert_contract(turn, papers)
        assert cites(turn, MGTAB_KEY, papers)


def test_search_and_ask_over_http(service, papers):
    with httpx.Client(base_url=service, timeout=120) as http:
        assert http.get("/healthz").json()["backend"].startswith("model server http://127.0.0.1:")
        found = http.post("/v1/search", json={"query": "MGTAB bot detection", "k": 3}).json()
        assert found["results"][0]["title"].startswith("MGTAB")
        answer = http.post("/v1/ask", json={"question": MGTAB_QUESTION}).json()
        assert_contract(answer, papers)
        assert cites(answer, MGTAB_KEY, papers)
        with http.stream("POST", "/v1/ask", json={"question": "DFME数据集有多少个微表情视频？", "stream": True}) as reply:
            lines = [line for line in reply.iter_lines() if line]
    assert lines[-2] == "event: answer"
    streamed = json.loads(lines[-1].removeprefix("data: "))
    assert_contract(streamed, papers)
    assert cites(streamed, "7,526 well-labeled", papers)


def test_chat_completions_with_the_openai_client(service, papers):
    client = openai.OpenAI(base_url=service + "/v1", api_key="unused", timeout=120)
    messages = [{"role": "user", "content": MGTAB_QUESTION}]
    whole = client.chat.completions.create(model="qa-bot", messages=messages)
    assert_contract(whole.model_extra["qa_bot"], papers)
    assert "[1]" in whole.choices[0].message.content and "003_312e2e590661b8c3.txt:9" in whole.choices[0].message.content
    chunks = list(client.chat.completions.create(model="qa-bot", messages=messages, stream=True))
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks)
    assert text == whole.choices[0].message.content
    assert_contract(chunks[-1].model_extra["qa_bot"], papers)


def test_processes_that_start_together_share_one_index_cache(tmp_path):
    """Several qa-bot processes on one empty cache: each builds or loads the index, none fails."""
    env = {**os.environ, "QA_BOT_CACHE_DIR": str(tmp_path / "shared-cache")}
    starts = [subprocess.Popen([sys.executable, "-m", "qa_bot", "search", "--json", "-k", "1", "MGTAB bot detection"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    outputs = [process.communicate(timeout=120) for process in starts]
    assert [process.returncode for process in starts] == [0] * 4, [err for _, err in outputs]
    assert len({out for out, _ in outputs}) == 1


def test_eval_runs_through_the_model_server(model_server):
    run = qa_bot("eval", "--json", "--limit", "6", "--llm-url", model_server, "--llm-api", "completions")
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["meta"]["model"] == {"file": f"gemma-3-270m-q4_k_m.gguf @ {model_server}", "server": model_server}
    assert report["meta"]["retrieval_only"] is False and report["overall"]["questions"] == 6


def test_questions_asked_at_once_queue_at_the_model_server_instead_of_cutting_each_other_off(service, papers):
    """llama_cpp.server ends the answer being streamed when another request arrives, unless told
    not to (serve-model does)."""
    questions = [MGTAB_QUESTION, "What NDS does CMT obtain on nuScenes?", "How many micro-expression videos does DFME include?"]
    with httpx.Client(base_url=service, timeout=600) as http, ThreadPoolExecutor(len(questions)) as pool:
        replies = list(pool.map(lambda question: http.post("/v1/ask", json={"question": question}), questions))
    assert [reply.status_code for reply in replies] == [200] * len(questions), [reply.text for reply in replies]
    for reply in replies:
        assert_contract(reply.json(), papers)


def test_serve_model_requires_the_key_it_was_given(monkeypatch):
    monkeypatch.setenv("QA_BOT_LLM_API_KEY", "sk-e2e-secret")
    with qa_bot_server("serve-model", "--model", "fast", ready_path="/docs", port=free_port()) as base:
        allowed = qa_bot("models", "--llm-url", base + "/v1")
        monkeypatch.setenv("QA_BOT_LLM_API_KEY", "sk-wrong")
        refused = qa_bot("models", "--llm-url", base + "/v1")
    assert allowed.returncode == 0 and "gemma-3-270m-q4_k_m.gguf" in allowed.stdout, allowed.stderr
    assert refused.returncode == 1 and "refused the API key" in refused.stderr
    assert "sk-" not in allowed.stdout + allowed.stderr + refused.stdout + refused.stderr
