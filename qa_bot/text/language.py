"""The language of a text: `zh` or `en`."""

import re

CJK_RUN = re.compile(r"[\u3400-\u9fff]+")
LATIN_RUN = re.compile(r"[A-Za-z]+")


def detect_language(text: str) -> str:
    """`zh` when Chinese characters make up a fifth of the letters, else `en`."""
    if text.isascii():
        return "en"
    # Runs, not characters: ten times fewer matches to build on a long abstract.
    cjk = sum(map(len, CJK_RUN.findall(text)))
    latin = sum(map(len, LATIN_RUN.findall(text)))
    return "zh" if cjk and cjk >= 0.2 * (cjk + latin) else "en"
