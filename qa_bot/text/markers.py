"""Citation markers: [1], [1, 2], 【1】. Written by the model after a sentence, read by the
citation check, kept or removed in what is shown, and a boundary no quoted sentence crosses."""

import re

MARKER_NUMBERS = r"\d+(?:\s*[,，、;]\s*\d+)*"  # [1], [1, 2], 【1】
MARKER_TEXT = rf"[\[【]{MARKER_NUMBERS}[\]】]"
MARKER = re.compile(rf"\s*[\[【]({MARKER_NUMBERS})[\]】]")


def markers_of(sentence: str) -> list[int]:
    return [int(n) for group in MARKER.findall(sentence) for n in re.split(r"[,，、;\s]+", group) if n]
