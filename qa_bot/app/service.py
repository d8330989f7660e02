"""qa-bot as an HTTP service (`qa-bot serve`): a thin FastAPI layer over the same `Assistant` as
the CLI and the UI, returning the JSON of output.py (exactly what `qa-bot ask --json` prints).

- `GET /healthz`: up, with the corpus size and the backend.
- `POST /v1/search`, `POST /v1/ask`: the contract's JSON; `ask` with `"stream": true` is server-sent
  events: `delta` events with the checked text as it is kept, then one `answer` event with the whole
  answer object (or one `error` event).
- `GET /v1/models`, `POST /v1/chat/completions`: OpenAI-compatible, so existing chat clients can
  use qa-bot as a "model". The earlier user turns are the follow-up context (replayed through retrieval only; the
  papers an earlier reply cited are read back from its reference list); the reply is the answer with
  its `[n]` markers and a reference list; the whole answer object rides in the extra field `qa_bot`.

Errors are one line in `{"error": {"message", "type"}}` (the shape OpenAI clients read): 400 bad
input, 401 a missing or wrong bearer token (only when `QA_BOT_API_TOKEN` is set), 413 a body over
`QA_BOT_MAX_REQUEST_BYTES`, 422 a request of the wrong shape, 502 the model server failed, 500
anything else; never a traceback. Requests run in the server's thread pool; the local model's lock,
or the model server's queue, orders the generations.
"""

import hmac
import re
import time
import uuid
from collections.abc import Iterator
from typing import Literal

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from qa_bot.answer.assistant import Answer, AnswerStream, Assistant
from qa_bot.answer.conversation import Conversation, Turn
from qa_bot.collection.corpus import places
from qa_bot.errors import BadInputError, QaBotError
from qa_bot.app.output import answer_dict, search_dict, to_json
from qa_bot.answer.query import analyse
from qa_bot.answer.remote import ModelServerError
from qa_bot.search.retrieve import require_query
from qa_bot.settings import Settings

SERVICE_MODEL = "qa-bot"  # what /v1/chat/completions answers as, to an OpenAI client
LOCATION = re.compile(r"(\S+):(\d+)")
LONGEST_TEXT = 4000  # characters of a question or query


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: str = Field(max_length=LONGEST_TEXT)
    k: int | None = Field(default=None, ge=1, le=1000, description="How many papers (default: QA_BOT_TOP_K).")


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str = Field(max_length=LONGEST_TEXT)
    k: int | None = Field(default=None, ge=1, le=1000, description="How many papers to retrieve.")
    stream: bool = Field(default=False, description="Server-sent events instead of one JSON object.")
    history: list[str] = Field(default=[], max_length=50, description="Earlier questions of the conversation.")


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict] | None = None

    def text(self) -> str:
        """The message's text (OpenAI clients may send a list of typed parts)."""
        if isinstance(self.content, list):
            return " ".join(str(part.get("text", "")) for part in self.content if part.get("type") == "text")
        return self.content or ""


class ChatRequest(BaseModel):
    # OpenAI clients send options qa-bot has no use for (temperature, top_p, user...): accepted, ignored.
    model_config = ConfigDict(extra="allow")
    model: str = SERVICE_MODEL
    messages: list[ChatMessage] = Field(min_length=1, max_length=100)
    stream: bool = False


def error_response(status: int, message: str, kind: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind}}, status_code=status)


def status_of(error: QaBotError) -> tuple[int, str]:
    if isinstance(error, BadInputError):
        return 400, "bad_input"
    if isinstance(error, ModelServerError):
        return 502, "model_server_error"
    return 500, "qa_bot_error"


def one_line_problem(error: RequestValidationError) -> str:
    problem = error.errors()[0]
    where = ".".join(str(part) for part in problem["loc"] if part != "body") or "body"
    return f"invalid request: {where}: {problem['msg']}"


class BodyTooLarge(Exception):
    pass


class BodySizeLimit:
    """ASGI middleware: a request body over `limit` bytes is refused with 413, whether it says its
    length up front (Content-Length) or streams it in chunks."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await self.refuse(scope, receive, send)
        received, refused = 0, False

        async def counted_receive():
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                raise BodyTooLarge
            return message

        async def guarded_send(message):
            # FastAPI turns the failed read into its own 400: the client gets the 413 instead.
            nonlocal refused
            if received <= self.limit:
                return await send(message)
            if not refused:
                refused = True
                await self.refuse(scope, receive, send)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except BodyTooLarge:
            if not refused:
                await self.refuse(scope, receive, send)

    async def refuse(self, scope, receive, send):
        response = error_response(413, f"request body over {self.limit} bytes", "request_too_large")
        await response(scope, receive, send)


def create_app(assistant: Assistant) -> FastAPI:
    settings = assistant.settings
    app = FastAPI(title="qa-bot", summary="Cited answers from a collection of paper abstracts.", version="1")
    app.add_middleware(BodySizeLimit, limit=settings.max_request_bytes)
    add_error_handlers(app)
    authorized = bearer_check(settings)

    def assistant_for(k: int | None) -> Assistant:
        return assistant if k is None else Assistant(assistant.retriever, assistant.model,
                                                     settings.model_copy(update={"top_k": k}))

    @app.get("/healthz")
    def healthz() -> dict:
        model = assistant.model
        backend = f"model server {model.url}" if hasattr(model, "url") else f"in-process {model.name}"
        return {"status": "ok", "papers": assistant.retriever.corpus.paper_count, "backend": backend}

    @app.post("/v1/search", dependencies=[Depends(authorized)])
    def search(request: SearchRequest) -> dict:
        require_query(request.query)
        return search_dict(assistant.retriever.search(request.query, request.k or settings.top_k))

    @app.post("/v1/ask", dependencies=[Depends(authorized)])
    def ask(request: AskRequest):
        asking = assistant_for(request.k)
        conversation = replayed(asking, [(question, "") for question in request.history])
        stream = asking.ask(request.question, conversation)
        if request.stream:
            return event_stream(ask_events(stream))
        return answer_dict(finished(stream))

    @app.get("/v1/models", dependencies=[Depends(authorized)])
    def models() -> dict:
        """The one "model" qa-bot is to an OpenAI client (chat front-ends list these to choose from)."""
        return {"object": "list", "data": [{"id": SERVICE_MODEL, "object": "model", "created": 0, "owned_by": "qa-bot"}]}

    @app.post("/v1/chat/completions", dependencies=[Depends(authorized)])
    def chat_completions(request: ChatRequest):
        earlier, question = split_chat(request.messages)
        conversation = replayed(assistant, earlier)
        stream = assistant.ask(question, conversation)
        reply = ChatReply()
        if request.stream:
            return event_stream(reply.chunks(stream), done_marker=True)
        return reply.completion(finished(stream))

    return app


def add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(QaBotError)
    async def qa_bot_error(request: Request, error: QaBotError):
        status, kind = status_of(error)
        return error_response(status, str(error), kind)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError):
        return error_response(422, one_line_problem(error), "invalid_request")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException):
        return error_response(error.status_code, str(error.detail), "http_error")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception):
        return error_response(500, f"unexpected {type(error).__name__}", "internal_error")


def bearer_check(settings: Settings):
    """A dependency that refuses a request without `Authorization: Bearer QA_BOT_API_TOKEN`."""
    token = settings.api_token.get_secret_value().encode() if settings.api_token else None

    def authorized(request: Request) -> None:
        if token is None:
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token):
            raise HTTPException(401, "missing or wrong bearer token (send Authorization: Bearer <QA_BOT_API_TOKEN>)")

    return authorized


def finished(stream: AnswerStream) -> Answer:
    for _ in stream:
        pass
    return stream.answer


def split_chat(messages: list[ChatMessage]) -> tuple[list[tuple[str, str]], str]:
    """The earlier user turns, each with the assistant reply that followed it, and the question
    (the last user message)."""
    turns: list[tuple[str, str]] = []
    for message in messages:
        if message.role == "user":
            turns.append((message.text(), ""))
        elif message.role == "assistant" and turns:
            turns[-1] = (turns[-1][0], message.text())
    if not turns or messages[-1].role != "user":
        raise BadInputError("the last message must be the user's question")
    *earlier, (question, _) = turns
    return earlier, question


def replayed(assistant: Assistant, turns: list[tuple[str, str]]) -> Conversation:
    """The conversation so far, rebuilt without the model: each earlier question's search (retrieval
    only), and the papers its reply cited (read from the reply's file:line references; without a
    reply, the best paper found)."""
    conversation = Conversation()
    for question, reply in turns:
        if not question.strip():
            continue
        found = assistant.retrieve(analyse(question), conversation)
        corpus = assistant.retriever.corpus
        at = (corpus.paper_at_location(file, int(line)) for file, line in LOCATION.findall(reply))
        cited = tuple(dict.fromkeys(paper.paper_id for paper in at if paper is not None))
        if not cited and not reply and found.outcome == "answer" and found.hits:
            cited = (found.hits[0].paper.paper_id,)
        conversation.turns.append(Turn(question, found.search.text, cited))
    return conversation


def event_stream(events: Iterator[str], done_marker: bool = False) -> StreamingResponse:
    def framed():
        yield from events
        if done_marker:
            yield "data: [DONE]\n\n"

    return StreamingResponse(framed(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


def sse(data: dict, event: str | None = None) -> str:
    return (f"event: {event}\n" if event else "") + f"data: {to_json(data)}\n\n"


def ask_events(stream: AnswerStream) -> Iterator[str]:
    """`delta` events as the answer is checked, then the `answer`; a failure is an `error` event."""
    try:
        for piece in stream:
            yield sse({"text": piece}, "delta")
        yield sse(answer_dict(stream.answer), "answer")
    except Exception as error:  # noqa: BLE001 - the response has begun: the client gets one error event
        yield sse({"error": error_message(error)}, "error")


def error_message(error: Exception) -> str:
    return str(error) if isinstance(error, QaBotError) else f"unexpected {type(error).__name__}"


def references(answer: Answer) -> str:
    """The reply's reference list: marker, title, file:line of each citation."""
    if not answer.citations:
        return ""
    lines = [f"[{c.marker}] {c.paper.title} — {places(c.paper.locations)}" for c in answer.citations]
    return "\n\nReferences:\n" + "\n".join(lines)


class ChatReply:
    """An answer as an OpenAI chat completion, whole or as chunks."""

    def __init__(self):
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())

    def completion(self, answer: Answer) -> dict:
        message = {"role": "assistant", "content": answer.text + references(answer)}
        return {**self._envelope("chat.completion"), "qa_bot": answer_dict(answer),
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}

    def chunks(self, stream: AnswerStream) -> Iterator[str]:
        try:
            yield self._chunk({"role": "assistant", "content": ""})
            for piece in stream:
                yield self._chunk({"content": piece})
            yield self._chunk({"content": references(stream.answer)}, "stop", answer_dict(stream.answer))
        except Exception as error:  # noqa: BLE001 - mid-stream: the OpenAI client raises on an error chunk
            yield sse({"error": {"message": error_message(error), "type": "model_server_error"}})

    def _chunk(self, delta: dict, finish_reason: str | None = None, answer: dict | None = None) -> str:
        chunk = {**self._envelope("chat.completion.chunk"),
                 "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}
        if answer is not None:
            chunk["qa_bot"] = answer
        return sse(chunk)

    def _envelope(self, kind: str) -> dict:
        return {"id": self.id, "object": kind, "created": self.created, "model": SERVICE_MODEL}
