"""All configuration in one place: defaults, then `QA_BOT_*` environment variables, then flags.

The CLI builds a `Settings` from the environment and overrides the fields the user passed as
flags (`Settings(**overrides)`); library code receives the object and never reads the environment.
"""

import hashlib
import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "qa-bot"


def _available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="QA_BOT_", extra="forbid", validate_assignment=True)

    corpus: Path = Field(
        default=PROJECT_ROOT / "seeds",
        description="Folder of seed-format .txt and/or .jsonl files (searched recursively).",
    )
    strict: bool = Field(
        default=False,
        description="Fail on the first malformed line or file instead of skipping it with a warning.",
    )
    cache_dir: Path = Field(
        default_factory=_default_cache_dir,
        description="Where built indexes are kept, one folder per corpus content and index settings.",
    )
    top_k: int = Field(default=5, ge=1, le=1000, description="How many papers retrieval returns.")
    bm25_variant: Literal["okapi", "plus", "l"] = Field(
        default="plus",
        description="rank-bm25 class whose scores the index reproduces: BM25Okapi, BM25Plus or BM25L.",
    )
    bm25_k1: float = Field(default=1.2, gt=0, description="BM25 term-frequency saturation.")
    bm25_b: float = Field(default=0.5, ge=0, le=1, description="BM25 length normalisation.")
    bm25_delta: float = Field(default=1.0, ge=0, description="Lower bound added by BM25Plus / BM25L.")
    bm25_epsilon: float = Field(default=0.25, ge=0, description="BM25Okapi floor for negative IDF.")

    model: str | None = Field(
        default=None,
        description="A GGUF file, or the name of a packaged model (smollm2, gemma3-270m). "
        "Default: the first *.gguf in models_dir, else the default packaged model placed there.",
    )
    models_dir: Path = Field(default=PROJECT_ROOT / "models", description="Where GGUF files are looked for.")
    default_model: Literal["smollm2", "gemma3-270m"] = Field(
        default="gemma3-270m", description="Packaged model used when no GGUF is named or found (see README)."
    )
    prompts_dir: Path = Field(default=PROJECT_ROOT / "prompts", description="Prompt template files.")
    n_threads: int = Field(default_factory=_available_cores, ge=1, description="CPU threads for generation.")
    n_ctx: int = Field(default=2048, ge=512, description="Model context window in tokens.")
    max_answer_tokens: int = Field(default=160, ge=8, le=4096, description="Longest answer the model may write.")
    evidence_papers: int = Field(default=3, ge=1, le=20, description="Retrieved papers whose sentences are evidence.")
    evidence_sentences: int = Field(default=2, ge=1, le=10, description="Sentences taken from each evidence paper.")
    evidence_min_score_share: float = Field(
        default=0.75, ge=0, le=1,
        description="A paper after the first is evidence only if its score is at least this share of the first's.",
    )
    evidence_tokens: int = Field(default=400, ge=50, description="Model-token budget for the evidence block.")
    min_coverage: float = Field(
        default=0.30, ge=0, le=1,
        description="Abstain when the best paper holds less than this share of the question's weight "
        "(calibrated with scripts/calibrate_abstention.py).",
    )
    min_shared_words: int = Field(
        default=2, ge=1,
        description="Abstain when the best paper shares fewer of the question's words than this "
        "(or than the question has): one shared word is not enough evidence.",
    )
    short_question_words: int = Field(
        default=4, ge=0,
        description="In a question of at most this many words, the best paper must hold its most "
        "specific word (the one the corpus uses least), or the question is declined.",
    )
    min_support: float = Field(
        default=0.5, ge=0, le=1,
        description="Share of a sentence's content words its evidence must hold for the sentence to stay.",
    )

    llm_url: str | None = Field(
        default=None, pattern=r"^https?://",
        description="Base URL of an OpenAI-compatible model server (e.g. http://127.0.0.1:8080/v1) that writes "
        "the answers instead of the local GGUF.",
    )
    llm_model: str | None = Field(
        default=None, description="Model name to ask the model server for (default: the first it lists)."
    )
    llm_api_key: SecretStr | None = Field(
        default=None, description="API key for the model server; never printed, logged or exported."
    )
    llm_api: Literal["chat", "completions"] = Field(
        default="chat",
        description="chat: the chat-completions endpoint (instruct models); completions: the plain endpoint with "
        "the base_model prompt, for a base model without a chat template.",
    )
    llm_connect_timeout: float = Field(default=5.0, gt=0, description="Seconds to wait for the model server to accept.")
    llm_read_timeout: float = Field(
        default=60.0, gt=0,
        description="Seconds to wait for the model server's next bytes (its queue counts: keep it generous).",
    )
    llm_max_concurrency: int = Field(
        default=4, ge=1, description="Requests one qa-bot process sends the model server at once; more wait here."
    )
    llm_max_retries: int = Field(
        default=1, ge=0, le=5, description="Retries of a request the model server refused before it began (429, 5xx)."
    )
    llm_repeat_penalty: float = Field(
        default=1.0, gt=0,
        description="Sent as llama.cpp's repeat_penalty (its server defaults to 1.1; 1.0 is what the in-process "
        "model uses, so answers match). Servers that do not know the field ignore it.",
    )
    api_token: SecretStr | None = Field(
        default=None, description="Bearer token that `qa-bot serve` requires of its clients (none: no check)."
    )
    max_request_bytes: int = Field(
        default=65536, ge=1024, description="Largest request body `qa-bot serve` accepts (larger: HTTP 413)."
    )

    def index_fingerprint(self) -> str:
        """Hash of every setting that changes what the index contains."""
        relevant = (self.bm25_variant, self.bm25_k1, self.bm25_b, self.bm25_delta, self.bm25_epsilon)
        return hashlib.sha256(repr(relevant).encode()).hexdigest()[:16]
