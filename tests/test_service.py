"""`qa-bot serve`'s HTTP API (qa_bot/app/service.py) in-process, through FastAPI's test client: the
contract's JSON, server-sent events, the OpenAI-compatible chat endpoint through the official
`openai` client, bad requests, the bearer token, and model-server faults the service survives."""

import json

import openai
import pytest
from fastapi.testclient import TestClient

from qa_bot.answer.assistant import Assistant
from qa_bot.collection.corpus import load_corpus
from qa_bot.app.output import answer_dict
from qa_bot.answer.remote import RemoteModel
from qa_bot.app.service import create_app
from qa_bot.settings import Settings
from tests.conftest import SEEDS
from tests.contract import METADATA, assert_contract
from tests.fake_server import FakeModelServer
from tests.fakes import FakeModel

TINYMIM_QUESTION = "What accuracy does TinyMIM reach on ImageNet?"
TINYMIM_ANSWER = "TinyMIM reaches 79.6% top-1 accuracy on ImageNet-1K [1]."
TOKEN = "let-me-in"


@pytest.fixture(scope="module")
def abstracts():
    return {paper.paper_id: paper.text for paper in load_corpus(SEEDS).papers}


def client_for(retriever, model, **settings) -> TestClient:
    return TestClient(create_app(Assistant(retriever, model, Settings(**settings))))


@pytest.fixture
def client(seeds_retriever):
    return client_for(seeds_retriever, FakeModel(TINYMIM_ANSWER))


def sse_events(text: str) -> list[tuple[str, dict]]:
    events = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((fields.get("event", "message"), json.loads(fields["data"])))
    return events


def test_healthz_says_what_is_served(client):
    reply = client.get("/healthz")
    assert reply.status_code == 200
    assert reply.json() == {"status": "ok", "papers": 32, "backend": "in-process fake.gguf"}


def test_search_returns_the_contract_json(client):
    result = client.post("/v1/search", json={"query": "graph neural networks", "k": 2}).json()
    assert result["query"] == "graph neural networks" and [hit["rank"] for hit in result["results"]] == [1, 2]
    assert set(result["results"][0]) == {"rank", "paper_id", "title", "lang", "score", "locations", "snippet", *METADATA}


def test_ask_returns_what_ask_json_prints(seeds_retriever, client, abstracts):
    answer = client.post("/v1/ask", json={"question": TINYMIM_QUESTION}).json()
    assert_contract(answer, abstracts)
    assert "79.6%" in answer["answer"] and not answer["abstained"]
    expected = answer_dict(Assistant(seeds_retriever, FakeModel(TINYMIM_ANSWER), Settings()).answer(TINYMIM_QUESTION))
    assert {**answer, "timings_ms": None} == {**expected, "timings_ms": None}


def test_ask_streams_checked_text_then_the_whole_answer(client, abstracts):
    reply = client.post("/v1/ask", json={"question": TINYMIM_QUESTION, "stream": True})
    assert reply.headers["content-type"].startswith("text/event-stream")
    events = sse_events(reply.text)
    kinds = [kind for kind, _ in events]
    assert kinds[-1] == "answer" and set(kinds[:-1]) == {"delta"}
    answer = events[-1][1]
    assert "".join(data["text"] for _, data in events[:-1]) == answer["answer"]
    assert_contract(answer, abstracts)


def test_ask_history_gives_a_follow_up_its_context(seeds_retriever):
    client = client_for(seeds_retriever, FakeModel("MGTAB contains 10,199 expert-annotated users [1]."))
    answer = client.post("/v1/ask", json={
        "question": "How many users does it contain?",
        "history": ["How many types of relationships does MGTAB have?"],
    }).json()
    assert "MGTAB" in answer["query"] and answer["sources"][0]["title"].startswith("MGTAB")


def openai_client(client: TestClient, key: str = "unused") -> openai.OpenAI:
    return openai.OpenAI(base_url="http://testserver/v1", api_key=key, http_client=client, max_retries=0)


def test_the_openai_client_lists_qa_bot_as_its_model(client):
    assert [model.id for model in openai_client(client).models.list()] == ["qa-bot"]


def test_chat_completions_through_the_openai_client(client, abstracts):
    completion = openai_client(client).chat.completions.create(
        model="qa-bot", messages=[{"role": "user", "content": TINYMIM_QUESTION}]
    )
    text = completion.choices[0].message.content
    answer = completion.model_extra["qa_bot"]
    assert_contract(answer, abstracts)
    assert text.startswith(answer["answer"]) and "[1]" in text
    assert "References:\n[1] TinyMIM" in text and "000_a261c613d12b610b.txt:11" in text


def test_chat_completions_stream_through_the_openai_client(client, abstracts):
    chunks = list(openai_client(client).chat.completions.create(
        model="qa-bot", messages=[{"role": "user", "content": TINYMIM_QUESTION}], stream=True
    ))
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"
    answer = chunks[-1].model_extra["qa_bot"]
    assert_contract(answer, abstracts)
    assert text.startswith(answer["answer"]) and "References:" in text


def test_chat_history_carries_the_papers_an_earlier_reply_cited(seeds_retriever):
    client = client_for(seeds_retriever, FakeModel("MGTAB contains 10,199 expert-annotated users [1]."))
    first = client.post("/v1/chat/completions", json={
        "messages": [{"role": "user", "content": "How many types of relationships does MGTAB have?"}]}).json()
    reply = first["choices"][0]["message"]["content"]
    follow_up = client.post("/v1/chat/completions", json={"messages": [
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": "How many types of relationships does MGTAB have?"},
        {"role": "assistant", "content": reply},
        {"role": "user", "content": "How many users does it contain?"},
    ]}).json()
    assert follow_up["qa_bot"]["sources"][0]["title"].startswith("MGTAB")


@pytest.mark.parametrize("path, body, status, message", [
    ("/v1/ask", {"question": "  "}, 400, "empty question"),
    ("/v1/search", {"query": ""}, 400, "empty query"),
    ("/v1/ask", {}, 422, "question: Field required"),
    ("/v1/ask", {"question": "x", "k": 0}, 422, "k: Input should be greater than or equal to 1"),
    ("/v1/ask", {"question": "x", "colour": "red"}, 422, "colour: Extra inputs are not permitted"),
    ("/v1/chat/completions", {"messages": []}, 422, "messages"),
    ("/v1/chat/completions", {"messages": [{"role": "assistant", "content": "hi"}]}, 400, "last message"),
])
def test_bad_requests_get_one_line_messages(client, path, body, status, message):
    reply = client.post(path, json=body)
    assert reply.status_code == status
    error = reply.json()["error"]["message"]
    assert message in error and "\n" not in error


def test_a_body_that_is_not_json_is_422(client):
    reply = client.post("/v1/ask", content=b"{oops", headers={"content-type": "application/json"})
    assert reply.status_code == 422 and "JSON" in reply.json()["error"]["message"]


def test_a_body_over_the_limit_is_413(seeds_retriever):
    client = client_for(seeds_retriever, FakeModel(TINYMIM_ANSWER), max_request_bytes=2048)
    reply = client.post("/v1/ask", json={"question": "x" * 3000})
    assert reply.status_code == 413 and "over 2048 bytes" in reply.json()["error"]["message"]

    def chunked():  # no Content-Length: the limit counts what arrives
        yield b'{"question": "'
        yield b"x" * 3000
        yield b'"}'

    assert client.post("/v1/ask", content=chunked()).status_code == 413


def test_the_bearer_token_is_required_when_set(seeds_retriever):
    client = client_for(seeds_retriever, FakeModel(TINYMIM_ANSWER), api_token=TOKEN)
    assert client.get("/healthz").status_code == 200  # for load balancers
    refused = client.post("/v1/search", json={"query": "graph"})
    assert refused.status_code == 401 and "bearer token" in refused.json()["error"]["message"]
    assert client.post("/v1/search", json={"query": "graph"}, headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.post("/v1/search", json={"query": "graph"}, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    with pytest.raises(openai.AuthenticationError):
        openai_client(client, "nope").chat.completions.create(model="qa-bot", messages=[{"role": "user", "content": "x"}])
    assert openai_client(client, TOKEN).chat.completions.create(
        model="qa-bot", messages=[{"role": "user", "content": TINYMIM_QUESTION}]).choices[0].message.content


def test_the_openapi_docs_are_served(client):
    assert client.get("/docs").status_code == 200
    assert "/v1/chat/completions" in client.get("/openapi.json").json()["paths"]


@pytest.mark.parametrize("mode", ["unauthorized", "garbage", "die"])
def test_a_failing_model_server_is_one_error_and_the_service_answers_the_next_question(seeds_retriever, mode):
    with FakeModelServer(TINYMIM_ANSWER + " More words follow here.", mode=mode) as server:
        settings = Settings(llm_url=server.url, llm_model="m", llm_max_retries=0)
        client = TestClient(create_app(Assistant(seeds_retriever, RemoteModel(settings), settings)))
        failed = client.post("/v1/ask", json={"question": TINYMIM_QUESTION})
        assert failed.status_code == 502
        assert "model server" in failed.json()["error"]["message"]
        streamed = sse_events(client.post("/v1/ask", json={"question": TINYMIM_QUESTION, "stream": True}).text)
        assert streamed[-1][0] == "error" and "model server" in streamed[-1][1]["error"]
        with pytest.raises(openai.APIError, match="model server"):
            list(openai_client(client).chat.completions.create(
                model="qa-bot", messages=[{"role": "user", "content": TINYMIM_QUESTION}], stream=True))
        server.mode = "ok"
        answer = client.post("/v1/ask", json={"question": TINYMIM_QUESTION}).json()
        assert "79.6%" in answer["answer"]
