import json
import os
import sys
import tomllib
from pathlib import Path

import pytest

from qa_bot.search.retrieve import Retriever
from qa_bot.settings import PROJECT_ROOT, Settings

SEEDS = PROJECT_ROOT / "seeds"
DATA = Path(__file__).parent / "data"


def pytest_configure(config):
    """Under `make mutation`, each mutant's tests run in a fork of mutmut's process, which has run
    the whole suite: the lru caches of the mutated modules hold what the unmutated code computed,
    and a mutant of a cached function (cite.evidence_profile) would be tested against them. The other
    modules' caches stay (the dictionary's among them): no unmutated module calls a mutated one."""
    if "__mutmut_" in os.environ.get("MUTANT_UNDER_TEST", ""):
        for module in mutated_modules():
            for value in vars(module).values():
                if callable(getattr(value, "cache_clear", None)):
                    value.cache_clear()


def mutated_modules() -> list:
    paths = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text("utf-8"))["tool"]["mutmut"]["only_mutate"]
    names = [path.removesuffix(".py").replace("/", ".") for path in paths]
    return [sys.modules[name] for name in names if name in sys.modules]


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own index cache, and no QA_BOT_* variable of the developer leaks in."""
    for name in list(os.environ):
        if name.startswith("QA_BOT_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("QA_BOT_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="session")
def seeds_retriever(tmp_path_factory):
    settings = Settings(corpus=SEEDS, cache_dir=tmp_path_factory.mktemp("seeds-cache"))
    return Retriever.open(settings)


@pytest.fixture(scope="session")
def retrieval_queries():
    return [json.loads(line) for line in (DATA / "retrieval_queries.jsonl").read_text("utf-8").splitlines() if line]


def paper_with(retriever, key):
    """The one paper whose abstract contains `key`: a stable way to name a paper in a test."""
    found = [paper for paper in retriever.corpus.papers if key in paper.text]
    assert len(found) == 1, f"{key!r} names {len(found)} papers"
    return found[0]


def write_corpus(folder: Path, files: dict[str, str | bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, "utf-8")
    return folder
