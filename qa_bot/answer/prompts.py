"""Prompt templates: plain files in `prompts/`, loaded by name, filled with `$field` placeholders.

`string.Template` rather than `str.format`, so templates may contain braces (JSON, code) freely;
a field the caller does not supply is an error, not a silent blank.
"""

from functools import cache
from pathlib import Path
from string import Template

from qa_bot.errors import QaBotError


@cache
def load_prompt(folder: Path, name: str) -> Template:
    path = folder / f"{name}.txt"
    try:
        return Template(path.read_text("utf-8"))
    except OSError as exc:
        raise QaBotError(f"cannot read prompt template {path}: {exc.strerror}") from None


def render_prompt(folder: Path, name: str, **fields: str) -> str:
    try:
        return load_prompt(folder, name).substitute(fields).strip()
    except (KeyError, ValueError) as exc:
        raise QaBotError(f"prompt template {name!r} needs a field it was not given: {exc}") from None
