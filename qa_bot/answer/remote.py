"""A model server as the writer: any OpenAI-compatible server (llama.cpp's llama-server,
llama-cpp-python's llama_cpp.server, vLLM, Ollama, LM Studio) streams the answer instead of the
local GGUF. Only the writing moves: retrieval, evidence, the citation check and the outcomes stay
qa-bot's, and the messages are the same as in-process.

Through the official `openai` client (its SSE parsing, retries and typed errors), greedy
(temperature 0), with a connect and a read timeout. There is no lock here: the server queues
requests, and `RequestCap` only bounds how many one qa-bot process has in flight. Every failure
of the server (down, slow, refusing the key, answering with something that is not a completion)
becomes one `ModelServerError` line; the API key never appears in a message or a name.

`count_tokens` is an estimate, since the server's tokenizer is not at hand: 4 characters per token
outside Chinese (OpenAI's rule of thumb, on the side of more tokens than the packaged Gemma's 5.3
on the seeds) and 0.7 per Chinese character (Gemma's, measured on the seeds). It only sizes the
evidence block, which is far below any server's context window.
"""

import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import openai

from qa_bot.errors import QaBotError
from qa_bot.answer.messages import BASE_MODEL_STOPS, NO_WORDS, YES_WORDS, plain_fields, system_folded_into_user
from qa_bot.answer.prompts import render_prompt
from qa_bot.settings import Settings

CHARS_PER_TOKEN = 4.0
TOKENS_PER_CHINESE_CHAR = 0.7
LONGEST_SERVER_MESSAGE = 200
TOP_LOGPROBS = 10  # first-token alternatives asked for a yes/no judgment
# Without a key the openai client refuses to start; local servers accept any.
NO_KEY = "none"


class ModelServerError(QaBotError):
    """The model server is down, slow, refused the key, or did not answer with a completion (exit 1)."""


def shown_url(url: str) -> str:
    """The URL without any user:password part, as it may appear in names and messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


class RequestCap:
    """At most `limit` requests in flight from this process; `full()` says a new one would wait."""

    def __init__(self, limit: int):
        self._slots = threading.Semaphore(limit)
        self._limit = limit
        self._in_flight = 0
        self._count_lock = threading.Lock()

    @contextmanager
    def slot(self):
        with self._slots:
            with self._count_lock:
                self._in_flight += 1
            try:
                yield
            finally:
                with self._count_lock:
                    self._in_flight -= 1

    def full(self) -> bool:
        return self._in_flight >= self._limit


class RemoteModel:
    """The `LanguageModel` of an OpenAI-compatible server at `settings.llm_url`."""

    def __init__(self, settings: Settings):
        self.url = shown_url(settings.llm_url)
        self._settings = settings
        self.follows_instructions = settings.llm_api == "chat"  # the completions endpoint is for base models
        key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else NO_KEY
        # The client's own Timeout: it runs on its own HTTP package, whose types may not be httpx's.
        timeout = openai.Timeout(settings.llm_read_timeout, connect=settings.llm_connect_timeout)
        self._client = openai.OpenAI(
            base_url=settings.llm_url, api_key=key, timeout=timeout, max_retries=settings.llm_max_retries
        )
        self._cap = RequestCap(settings.llm_max_concurrency)
        self._model_id = settings.llm_model

    @property
    def name(self) -> str:
        """What every JSON answer's `model` says: the server's model and where it runs."""
        return f"{self.model_id()} @ {self.url}"

    def model_id(self) -> str:
        """`--llm-model`, else the first model the server lists (asked once)."""
        if self._model_id is None:
            with self._errors_explained():
                listed = self._client.models.list().data
            if not listed or not getattr(listed[0], "id", None):
                raise ModelServerError(f"the model server at {self.url} lists no model: pass --llm-model NAME")
            self._model_id = listed[0].id
        return self._model_id

    def count_tokens(self, text: str) -> int:
        chinese = sum(1 for char in text if ord(char) > 0x2E80)
        return math.ceil((len(text) - chinese) / CHARS_PER_TOKEN + chinese * TOKENS_PER_CHINESE_CHAR)

    def busy(self) -> bool:
        return self._cap.full()

    def stream(self, messages: list[dict[str, str]], max_tokens: int) -> Iterator[str]:
        with self._cap.slot(), self._errors_explained():
            if self._settings.llm_api == "chat":
                yield from self._pieces(self._chat_request(messages, max_tokens), chat=True)
            else:
                yield from self._pieces(self._completion_request(messages, max_tokens), chat=False)

    def yes_probability(self, messages: list[dict[str, str]]) -> float:
        """From the server's top log-probabilities of the reply's first token. A server that gives
        none, or refuses to (llama-cpp-python's keeps no logits by default), is read from the token
        it chose: 1 for yes, 0 otherwise."""
        with self._cap.slot(), self._errors_explained():
            try:
                return yes_share(self._first_token_candidates(messages, TOP_LOGPROBS))
            except (openai.BadRequestError, openai.InternalServerError):
                return yes_share(self._first_token_candidates(messages, None))

    def _first_token_candidates(self, messages: list[dict[str, str]], top: int | None) -> dict[str, float]:
        """The first token's alternatives with their log-probabilities (the chosen one alone, at 0,
        when `top` is None or the server gives none)."""
        if self._settings.llm_api == "chat":
            wanted = {"logprobs": True, "top_logprobs": top} if top else {}
            choice = self._client.chat.completions.create(
                model=self.model_id(), messages=messages, max_tokens=1, **wanted, **self._greedy()).choices[0]
            content = choice.logprobs.content if choice.logprobs else None
            return ({token.token: token.logprob for token in content[0].top_logprobs} if content
                    else {choice.message.content or "": 0.0})
        prompt = render_prompt(self._settings.prompts_dir, "base_model", **plain_fields(messages))
        wanted = {"logprobs": top} if top else {}
        choice = self._client.completions.create(
            model=self.model_id(), prompt=prompt, max_tokens=1, **wanted, **self._greedy()).choices[0]
        alternatives = choice.logprobs.top_logprobs if choice.logprobs else None
        return dict(alternatives[0]) if alternatives else {choice.text or "": 0.0}

    def _chat_request(self, messages, max_tokens):
        create = self._client.chat.completions.create
        try:
            return create(model=self.model_id(), messages=messages, max_tokens=max_tokens, stream=True, **self._greedy())
        except openai.BadRequestError:  # some chat templates (Mistral's, for one) refuse a system turn, as in-process
            folded = system_folded_into_user(messages)
            return create(model=self.model_id(), messages=folded, max_tokens=max_tokens, stream=True, **self._greedy())

    def _completion_request(self, messages, max_tokens):
        # The same prompt text the in-process model gets for a base model (llm.LlamaModel).
        prompt = render_prompt(self._settings.prompts_dir, "base_model", **plain_fields(messages))
        return self._client.completions.create(
            model=self.model_id(), prompt=prompt, max_tokens=max_tokens, stop=BASE_MODEL_STOPS, stream=True,
            **self._greedy(),
        )

    def _greedy(self) -> dict:
        return {"temperature": 0.0, "extra_body": {"repeat_penalty": self._settings.llm_repeat_penalty}}

    def _pieces(self, chunks, chat: bool) -> Iterator[str]:
        """The text of each streamed chunk. A stream without a single chunk was not a completion; one
        that ends before a chunk says why it finished was cut off."""
        finished = started = False
        with chunks, self._cut_off_explained():
            for chunk in chunks:
                started = True
                choices = getattr(chunk, "choices", None)
                if not isinstance(choices, list):
                    raise self._not_a_completion()
                for choice in choices:
                    piece = getattr(getattr(choice, "delta", None), "content", None) if chat else getattr(choice, "text", None)
                    if piece:
                        yield piece
                    finished = finished or bool(getattr(choice, "finish_reason", None))
        if not started:
            raise self._not_a_completion()
        if not finished:
            raise ModelServerError(f"the model server at {self.url} stopped before finishing the answer")

    def _not_a_completion(self) -> ModelServerError:
        return ModelServerError(f"the model server at {self.url} answered with something that is not a completion")

    @contextmanager
    def _cut_off_explained(self):
        """Once the answer has begun, a lost connection means the server stopped (killed, crashed)."""
        try:
            yield
        except openai.APITimeoutError:
            raise
        except openai.APIConnectionError as exc:
            raise ModelServerError(
                f"the model server at {self.url} stopped before finishing the answer: {cause_of(exc)}"
            ) from None

    @contextmanager
    def _errors_explained(self):
        """Each way a server fails, as one line that says what to check."""
        try:
            yield
        except (openai.AuthenticationError, openai.PermissionDeniedError):
            raise ModelServerError(
                f"the model server at {self.url} refused the API key (check QA_BOT_LLM_API_KEY)"
            ) from None
        except openai.APITimeoutError:
            raise ModelServerError(
                f"the model server at {self.url} did not answer within {self._settings.llm_read_timeout:g} s "
                "(QA_BOT_LLM_READ_TIMEOUT)"
            ) from None
        except openai.APIConnectionError as exc:
            raise ModelServerError(f"cannot reach the model server at {self.url}: {cause_of(exc)} "
                                   "(is it running? check --llm-url)") from None
        except openai.NotFoundError:
            raise ModelServerError(
                f"the model server at {self.url} has no such model or endpoint (check --llm-model and --llm-api)"
            ) from None
        except openai.APIStatusError as exc:
            raise ModelServerError(
                f"the model server at {self.url} answered HTTP {exc.status_code}: {one_line(exc.message)}"
            ) from None
        except openai.APIError as exc:
            raise ModelServerError(f"the model server at {self.url} broke off the answer: {one_line(str(exc))}") from None
        except ValueError:  # an event whose data is not JSON
            raise self._not_a_completion() from None


def yes_share(candidates: dict[str, float]) -> float:
    """P(yes) / (P(yes) + P(no)) over first tokens with their log-probabilities; 0 when neither is there."""
    yes = sum(math.exp(logprob) for token, logprob in candidates.items() if token.strip() in YES_WORDS)
    no = sum(math.exp(logprob) for token, logprob in candidates.items() if token.strip() in NO_WORDS)
    return yes / (yes + no) if yes + no else 0.0


def cause_of(error: Exception) -> str:
    """The innermost reason ("Connection refused"), not the client's generic "Connection error."."""
    while error.__cause__ is not None:
        error = error.__cause__
    return one_line(str(error)) or type(error).__name__


def one_line(text: str) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= LONGEST_SERVER_MESSAGE else line[: LONGEST_SERVER_MESSAGE - 1] + "…"


_opened: dict[tuple, RemoteModel] = {}
_opening = threading.Lock()


def open_remote_model(settings: Settings) -> RemoteModel:
    """One client (one connection pool, one request cap) per server settings per process."""
    key = (settings.model_dump_json(), settings.llm_api_key.get_secret_value() if settings.llm_api_key else None)
    with _opening:
        if key not in _opened:
            _opened[key] = RemoteModel(settings)
        return _opened[key]
