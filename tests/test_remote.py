"""A model server as the writer (qa_bot/answer/remote.py), against the fake server of tests/fake_server.py:
the requests it is sent, and one clear error for each way a server fails."""

import json
import socket
import subprocess
import sys
import threading

import pytest

from qa_bot.answer.assistant import Assistant
from qa_bot.answer.llm import open_model
from qa_bot.answer.messages import BASE_MODEL_STOPS, plain_fields
from qa_bot.answer.prompts import render_prompt
from qa_bot.answer.remote import ModelServerError, RemoteModel, shown_url
from qa_bot.settings import Settings
from tests.fake_server import MODEL_ID, FakeModelServer

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is TinyMIM?"}]
TINYMIM_QUESTION = "What accuracy does TinyMIM reach on ImageNet?"
TINYMIM_ANSWER = "TinyMIM reaches 79.6% top-1 accuracy on ImageNet-1K [1]."
SECRET = "sk-very-secret-key"


def remote(url: str, **fields) -> RemoteModel:
    return RemoteModel(Settings(llm_url=url, **fields))


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_chat_requests_are_greedy_streamed_and_carry_the_key():
    with FakeModelServer("TinyMIM is a small model.") as server:
        model = remote(server.url, llm_model="big-model", llm_api_key=SECRET)
        assert "".join(model.stream(MESSAGES, 50)) == "TinyMIM is a small model."
    request = server.requests[0]
    assert request["path"] == "/v1/chat/completions"
    assert request["authorization"] == f"Bearer {SECRET}"
    body = request["body"]
    assert body["messages"] == MESSAGES and body["model"] == "big-model"
    assert body["stream"] is True and body["temperature"] == 0 and body["max_tokens"] == 50
    assert body["repeat_penalty"] == 1.0  # llama.cpp servers default to 1.1, the in-process model uses 1.0


def test_a_chat_template_without_a_system_turn_gets_the_system_text_in_the_user_turn():
    with FakeModelServer("Small.", mode="no-system") as server:
        assert "".join(remote(server.url, llm_model="m").stream(MESSAGES, 20)) == "Small."
    assert server.requests[-1]["body"]["messages"] == [{"role": "user", "content": "Be brief.\n\nWhat is TinyMIM?"}]


def test_a_base_model_gets_the_same_prompt_text_as_in_process():
    settings = Settings(llm_url="http://unused", llm_api="completions")
    with FakeModelServer("It is small.") as server:
        model = RemoteModel(settings.model_copy(update={"llm_url": server.url}))
        assert "".join(model.stream(MESSAGES, 20)) == "It is small."
    body = server.requests[0]["body"]
    assert server.requests[0]["path"] == "/v1/completions"
    assert body["prompt"] == render_prompt(settings.prompts_dir, "base_model", **plain_fields(MESSAGES))
    assert body["stop"] == BASE_MODEL_STOPS


def test_the_model_is_the_first_the_server_lists_and_the_name_hides_credentials():
    with FakeModelServer("x") as server:
        url = server.url.replace("http://", "http://user:pass@")
        model = remote(url)
        assert model.name == f"{MODEL_ID} @ {server.url}"
    assert shown_url("https://me:pw@gpu.lab:8000/v1/") == "https://gpu.lab:8000/v1"


@pytest.mark.parametrize("mode, message", [
    ("unauthorized", "refused the API key"),
    ("slow", "did not answer within 0.5 s"),
    ("garbage", "not a completion"),
    ("garbage-json", "not a completion"),
    ("die", "stopped before finishing"),
])
def test_each_server_failure_is_one_clear_error_without_the_key(mode, message):
    with FakeModelServer("TinyMIM reaches 79.6% accuracy today.", mode=mode, delay=2) as server:
        model = remote(server.url, llm_model="m", llm_api_key=SECRET, llm_read_timeout=0.5, llm_max_retries=0)
        with pytest.raises(ModelServerError, match=message) as failure:
            "".join(model.stream(MESSAGES, 20))
    assert SECRET not in str(failure.value) and "\n" not in str(failure.value)


def test_a_server_that_is_not_running_is_one_clear_error():
    model = remote(f"http://127.0.0.1:{unused_port()}/v1", llm_model="m", llm_max_retries=0)
    with pytest.raises(ModelServerError, match="cannot reach the model server .*Connection refused"):
        list(model.stream(MESSAGES, 20))


def test_the_cap_makes_a_request_wait_and_says_the_model_is_busy():
    with FakeModelServer("one two three") as server:
        model = remote(server.url, llm_model="m", llm_max_concurrency=1)
        pieces = model.stream(MESSAGES, 20)
        next(pieces)
        assert model.busy()
        finished = threading.Event()
        threading.Thread(target=lambda: (list(model.stream(MESSAGES, 20)), finished.set()), daemon=True).start()
        assert not finished.wait(0.5)  # waits for the first request's slot
        list(pieces)
        assert finished.wait(10) and not model.busy()


def test_the_pipeline_answers_through_a_server_with_citations(seeds_retriever):
    with FakeModelServer(TINYMIM_ANSWER) as server:
        settings = Settings(llm_url=server.url, llm_model="m")
        answer = Assistant(seeds_retriever, open_model(settings), settings).answer(TINYMIM_QUESTION)
    assert answer.path == "generated" and "79.6%" in answer.text and answer.citations
    assert answer.model == f"m @ {server.url}"


def qa_bot(*args, env=None):
    return subprocess.run([sys.executable, "-m", "qa_bot", *args], capture_output=True, text=True, timeout=120, env=env)


def test_ask_through_a_server_prints_the_contract_json():
    with FakeModelServer(TINYMIM_ANSWER) as server:
        run = qa_bot("ask", "--json", "--llm-url", server.url, "--llm-model", "m", TINYMIM_QUESTION)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["model"] == f"m @ {server.url}"


@pytest.mark.parametrize("mode", ["unauthorized", "not running"])
def test_ask_with_a_failing_server_is_one_line_and_exit_1_without_the_key(mode, monkeypatch):
    monkeypatch.setenv("QA_BOT_LLM_API_KEY", SECRET)
    with FakeModelServer("x", mode=mode) as server:
        url = server.url if mode != "not running" else f"http://127.0.0.1:{unused_port()}/v1"
        run = qa_bot("ask", "--llm-url", url, "--llm-model", "m", TINYMIM_QUESTION)
    assert run.returncode == 1
    assert len(run.stderr.strip().splitlines()) == 1 and "Traceback" not in run.stderr
    assert "model server" in run.stderr and SECRET not in run.stderr + run.stdout


def test_models_shows_the_server_backend_without_the_key(monkeypatch):
    monkeypatch.setenv("QA_BOT_LLM_API_KEY", SECRET)
    with FakeModelServer("x") as server:
        run = qa_bot("models", "--llm-url", server.url)
    assert run.returncode == 0, run.stderr
    assert f"model server {server.url}" in run.stdout and MODEL_ID in run.stdout and SECRET not in run.stdout


def test_a_url_without_its_scheme_is_a_bad_setting():
    run = qa_bot("ask", "--llm-url", "localhost:8080/v1", TINYMIM_QUESTION)
    assert run.returncode == 2 and "llm_url" in run.stderr and len(run.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("api", ["chat", "completions"])
@pytest.mark.parametrize("judgment, expected", [(0.9, 0.9), (0.2, 0.2)])
def test_a_judgment_is_read_from_the_servers_log_probabilities(api, judgment, expected):
    with FakeModelServer(judgment=judgment) as server:
        model = remote(server.url, llm_model="m", llm_api=api)
        assert model.yes_probability([{"role": "user", "content": "Answer sentence: it is so. Is it so? Reply yes or no."}]) == pytest.approx(expected)
    request = server.requests[-1]["body"]
    assert request["max_tokens"] == 1 and not request.get("stream") and request["logprobs"]


@pytest.mark.parametrize("api", ["chat", "completions"])
@pytest.mark.parametrize("judgment, expected", [(0.9, 1.0), (0.2, 0.0)])
def test_a_server_that_gives_no_log_probabilities_is_read_from_the_token_it_chose(api, judgment, expected):
    with FakeModelServer(mode="no-logprobs", judgment=judgment) as server:
        model = remote(server.url, llm_model="m", llm_api=api, llm_max_retries=0)
        assert model.yes_probability([{"role": "user", "content": "Answer sentence: it is so. Is it so? Reply yes or no."}]) == expected
    assert [bool(request["body"].get("logprobs")) for request in server.requests] == [True, False]
