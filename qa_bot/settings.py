"""All configuration in one place: defaults, then `QA_BOT_*` environment variables, then flags.

The CLI builds a `Settings` from the environment and overrides the fields the user passed as
flags (`Settings(**overrides)`); library code receives the object and never reads the environment.
"""

import hashlib
import os
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "qa-bot"


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

    def index_fingerprint(self) -> str:
        """Hash of every setting that changes what the index contains."""
        relevant = (self.bm25_variant, self.bm25_k1, self.bm25_b, self.bm25_delta, self.bm25_epsilon)
        return hashlib.sha256(repr(relevant).encode()).hexdigest()[:16]
