"""Short human titles for abstracts that have none.

A title is the method or dataset the abstract names (TinyMIM, DOORPING, MGTAB) followed by its
clipped first sentence, or only that sentence when no name stands out. A name is a token with
capitals inside it (an acronym or a CamelCase word) that the abstract repeats or introduces
("we propose X", "called X", "提出了X") and that few other abstracts of the corpus use: GNN or GPU
are topics, not names. Not handled: names in lower case, or names the translation replaced.
"""

import math
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

NAME_TOKEN = re.compile(r"(?<![A-Za-z0-9-])([A-Za-z0-9][A-Za-z0-9-]*[A-Z][A-Za-z0-9-]*)(?![A-Za-z0-9-])")
PROPOSAL_CUE = re.compile(r"\b(propos|present|introduc)|提出|引入", re.IGNORECASE)
NAMING_CUE = re.compile(r"\b(called|named|dubbed|termed|namely)\s+(\S+\s+){0,3}$|(称为|名为|命名为)\S{0,4}$", re.IGNORECASE)
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9])|(?<=[。！？])")
# Part of what a cached title was built from: bump when the derivation changes.
TITLES_VERSION = "3"
CUE_WINDOW = 100
NAMED_BONUS = 3.0
PROPOSED_BONUS = 1.0
FIRST_SENTENCE_PENALTY = 0.5
MIN_NAME_SCORE = 2.0
ZH_CLIP = 36
EN_CLIP = 80


def derive_titles(texts: list[str], sources: list[str] | None = None) -> list[str]:
    """The title of each text, its name picked from `sources` (the text without what may not be
    shown, by default the text itself) and weighed by how many of the texts use it."""
    frequency = name_frequency(texts)
    return [derive_title(source, frequency) for source in (sources or texts)]


def name_frequency(texts) -> Counter:
    """How many of the texts use each name: a name many abstracts use is a topic."""
    return Counter(name for text in texts for name in names_in(text))


def names_in(text: str) -> set[str]:
    return {name for match in NAME_TOKEN.findall(text) if _looks_like_name(name := _singular(match))}


def derive_title(text: str, frequency: Mapping[str, int]) -> str:
    return make_title(text, pick_name(name_candidates(text), frequency))


@dataclass
class _Evidence:
    count: int = 0
    named: bool = False
    proposed: bool = False
    in_first_sentence: bool = False
    last_position: int = 0

    def score(self) -> float:
        # Repetition counts with diminishing returns; being introduced by name counts most.
        return (
            1.0
            + math.log(self.count)
            + NAMED_BONUS * self.named
            + PROPOSED_BONUS * self.proposed
            - FIRST_SENTENCE_PENALTY * self.in_first_sentence
        )


def name_candidates(text: str) -> dict[str, _Evidence]:
    """Each name-like token with its evidence of being this abstract's own name."""
    first_sentence_end = len(first_sentence(text))
    found: dict[str, _Evidence] = {}
    for match in NAME_TOKEN.finditer(text):
        name = _singular(match.group(1))
        if not _looks_like_name(name):
            continue
        evidence = found.setdefault(name, _Evidence())
        before = text[max(0, match.start() - CUE_WINDOW) : match.start()]
        evidence.count += 1
        evidence.named |= bool(NAMING_CUE.search(before))
        evidence.proposed |= bool(PROPOSAL_CUE.search(before))
        evidence.in_first_sentence |= match.start() < first_sentence_end
        evidence.last_position = match.start()
    return found


def pick_name(found: dict[str, _Evidence], document_frequency: Mapping[str, int]) -> str | None:
    """The most distinctive name, if any is distinctive enough; ties go to the one mentioned last,
    since abstracts list baselines before the method they are about."""
    ranked = sorted(
        ((evidence.score() / (1.0 + math.log(max(1, document_frequency.get(name, 0)))), evidence.last_position, name)
         for name, evidence in found.items()),
        reverse=True,
    )
    if ranked and ranked[0][0] >= MIN_NAME_SCORE:
        return ranked[0][2]
    return None


def make_title(text: str, name: str | None) -> str:
    sentence = first_sentence(text)
    limit = ZH_CLIP if re.search(r"[\u3400-\u9fff]", sentence) else EN_CLIP
    clipped = clip(sentence.rstrip("。.!?！？"), limit)
    return f"{name}: {clipped}" if name else clipped


def name_in_title(title: str) -> str | None:
    """The name a derived title starts with ("TinyMIM" of "TinyMIM: Masked image ..."), if any."""
    head, separator, _ = title.partition(": ")
    return head if separator and NAME_TOKEN.fullmatch(head) else None


def first_sentence(text: str) -> str:
    return SENTENCE_END.split(text.strip(), maxsplit=1)[0]


def clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[:limit]
    if " " in cut and not re.search(r"[\u3400-\u9fff]", cut):
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:，；：") + "…"


def _singular(name: str) -> str:
    # "GNNs" and "ViTs" are the plural of a name, not a name of their own.
    return name[:-1] if len(name) > 2 and name.endswith("s") and name[-2].isupper() else name


def _looks_like_name(name: str) -> bool:
    letters = sum(ch.isalpha() for ch in name)
    # "Spatio-Temporal" is capitalised words; a name has two capitals in one part (TinyMIM, KD-CI).
    has_inner_capital = any(sum(ch.isupper() for ch in part) >= 2 for part in name.split("-"))
    # "ResNet-like" or "MIM-based" describe, they do not name.
    descriptive = re.search(r"-[a-z]+$", name) is not None
    return letters >= 3 and has_inner_capital and not descriptive and not name.startswith("http")
