"""All configuration in one place: defaults, then `QA_BOT_*` environment variables, then flags.

The CLI builds a `Settings` from the environment and overrides the fields the user passed as
flags (`Settings(**overrides)`); library code receives the object and never reads the environment.
"""

import difflib
import os
import warnings
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from qa_bot.errors import QaBotWarning

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ENV_PREFIX = "QA_BOT_"
# Variables the program reads that are not settings: they must not be reported as unknown.
NOT_SETTINGS = frozenset({"QA_BOT_DEBUG"})
# Beyond these a BM25 parameter only overflows (inf, then NaN scores): rank-bm25 uses 0.5-3.
BM25_MAX = 1000.0
# Far beyond any GGUF this project runs (Gemma 3 270M was trained with 32,768); the model's own
# trained context is checked when it is loaded.
N_CTX_MAX = 1 << 20


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "qa-bot"


def _available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class Settings(BaseSettings):
    # allow_inf_nan=False: an inf k1 or delta made "score": NaN, which JSON cannot hold.
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", validate_assignment=True,
                                      allow_inf_nan=False)

    corpus: Path = Field(
        default=PROJECT_ROOT / "seeds",
        description="Folder of corpus files: .txt, .jsonl, .bib, .ris, CSL-JSON .json, .csv, .tsv (searched recursively).",
    )
    strict: bool = Field(
        default=False,
        description="Fail on the first malformed line or file instead of skipping it with a warning.",
    )
    cache_dir: Path = Field(
        default_factory=_default_cache_dir,
        description="Where built indexes are kept, one folder per corpus content and index settings.",
    )
    shards: int | None = Field(
        default=None, ge=1, le=4096,
        description="Split the collection into this many shards by paper id (built by qa-bot index --shards N); "
        "queries gather the statistics of every shard, so scores equal one index's.",
    )
    ray_address: str | None = Field(
        default=None,
        description="host:port of a Ray cluster's head (or local: a cluster for this process only): shards are "
        "built by Ray tasks and held by Ray actors.",
    )
    allow_partial: bool = Field(
        default=False,
        description="When a shard is down, answer from the others and mark the result partial (else: an error).",
    )
    top_k: int = Field(default=5, ge=1, le=1000, description="How many papers retrieval returns.")
    bm25_variant: Literal["okapi", "plus", "l"] = Field(
        default="plus",
        description="rank-bm25 class whose scores the index reproduces: BM25Okapi, BM25Plus or BM25L.",
    )
    # Chosen on the seeds; on NFCorpus (3,633 abstracts) every k1 1.2-3 and b 0.3-0.9 is within
    # noise, and k1 2, b 0.4 (best on the tuning sets) did worse on held-out questions (README, Retrieval).
    bm25_k1: float = Field(default=1.2, gt=0, description="BM25 term-frequency saturation.")
    bm25_b: float = Field(default=0.5, ge=0, le=1, description="BM25 length normalisation.")
    bm25_delta: float = Field(default=1.0, ge=0, description="Lower bound added by BM25Plus / BM25L.")
    bm25_epsilon: float = Field(default=0.25, ge=0, description="BM25Okapi floor for negative IDF.")

    model: str | None = Field(
        default=None,
        description="A GGUF file, or the name of a packaged model (qwen2.5-coder-1.5b, qwen2.5-coder-0.5b, "
        "gemma3-270m, smollm2; fast: gemma3-270m). Default: the first *.gguf in models_dir, else the default "
        "packaged model placed there.",
    )
    models_dir: Path = Field(default=PROJECT_ROOT / "models", description="Where GGUF files are looked for.")
    # Chosen by measurement (README, Which model): the only packaged model whose judgment of its own
    # sentences separates supported from unsupported ones; the smaller ones answer faster, worse.
    default_model: Literal["qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b", "gemma3-270m", "smollm2"] = Field(
        default="qwen2.5-coder-1.5b", description="Packaged model used when no GGUF is named or found (see README)."
    )
    prompts_dir: Path = Field(default=PROJECT_ROOT / "prompts", description="Prompt template files.")
    n_threads: int = Field(default_factory=_available_cores, ge=1, description="CPU threads for generation.")
    n_ctx: int = Field(default=2048, ge=512, description="Model context window in tokens.")
    max_answer_tokens: int = Field(default=160, ge=8, le=4096, description="Longest answer the model may write.")
    max_question_tokens: int = Field(
        default=512, ge=16, le=N_CTX_MAX,
        description="Longer questions are cut to this many model tokens (or to what the context window leaves).",
    )
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
    # The most supported sentences kept at a precision of 0.9 on the two tuning halves' labelled
    # sentences, with Qwen2.5-Coder 1.5B judging (scripts/calibrate_judge.py; README, Answers).
    judge_threshold: float = Field(
        default=0.8, ge=0, le=1,
        description="The model's least P(yes) that a source states an answer sentence for the sentence to stay "
        "(calibrated with scripts/calibrate_judge.py).",
    )

    answers_threshold: float = Field(
        default=0.45, ge=0, le=1,
        description="The model's least P(yes) that an evidence paper answers the question, for it to be answered "
        "from that paper (calibrated with scripts/calibrate_coverage.py).",
    )
    about_threshold: float = Field(
        default=0.7, ge=0, le=1,
        description="When no paper answers: the model's least P(yes) that the best one is about the question's "
        "subject, for the answer to be that its abstract does not state it (else: not covered).",
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

    @field_validator("corpus", "cache_dir", "models_dir", "prompts_dir", mode="before")
    @classmethod
    def _path_not_empty(cls, value):
        # Path("") is ".": an empty QA_BOT_CORPUS read the current folder, QA_BOT_CACHE_DIR wrote there.
        if isinstance(value, str) and not value.strip():
            raise ValueError("an empty path; unset the variable for the default, or give a folder")
        return value

    @field_validator("corpus", "cache_dir", "models_dir", "prompts_dir")
    @classmethod
    def _folder_not_file(cls, value: Path) -> Path:
        """A folder setting naming a file, or inside one, is refused now, not at the first write."""
        for place in (value, *value.parents):
            if place.exists():
                if not place.is_dir():
                    raise ValueError(f"{place} is a file, and this must be a folder")
                break
        return value

    @model_validator(mode="after")
    def _ray_needs_shards(self) -> "Settings":
        if self.ray_address and not self.shards:
            raise ValueError("a Ray address needs shards: pass --shards N (or set QA_BOT_SHARDS) too")
        return self

    @field_validator("bm25_k1", "bm25_delta", "bm25_epsilon")
    @classmethod
    def _bm25_bounded(cls, value: float) -> float:
        if value > BM25_MAX:
            raise ValueError(f"at most {BM25_MAX:g} (typical values are 0.5 to 3)")
        return value

    @field_validator("n_ctx")
    @classmethod
    def _n_ctx_bounded(cls, value: int) -> int:
        if value > N_CTX_MAX:
            raise ValueError(f"at most {N_CTX_MAX} tokens (the packaged models were trained with 32,768 or less)")
        return value

    @model_validator(mode="after")
    def _warn_unknown_variables(self) -> "Settings":
        warn_unknown_variables(os.environ, type(self).model_fields)
        return self


def warn_unknown_variables(environ, fields) -> None:
    """One warning per QA_BOT_* variable that is no setting, naming the closest one: a typo such as
    QA_BOT_TOPK would otherwise be ignored without a word."""
    known = [ENV_PREFIX + name.upper() for name in fields]
    for name in sorted(environ):
        if name.startswith(ENV_PREFIX) and name not in known and name not in NOT_SETTINGS:
            closest = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {closest[0]}?)" if closest else ""
            warnings.warn(QaBotWarning(f"unknown setting {name} is ignored{hint}"), stacklevel=2)


def describe_error(exc: ValidationError) -> str:
    """The first problem of a rejected setting, as one line: "invalid setting top_k: ..."."""
    problem = exc.errors()[0]
    where = ".".join(str(part) for part in problem["loc"]) or "settings"
    return f"invalid setting {where}: {problem['msg'].removeprefix('Value error, ')}"
