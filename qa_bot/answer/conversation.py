"""Follow-up questions: what a question refers to when it only makes sense after earlier turns.

Rules, not the model: a question that points back ("How many users does it have?", "它用了哪些
数据集?") or that the corpus barely covers on its own (Chinese often drops the pronoun: "用了哪些
数据集?") is searched together with the previous turn's search text, and the papers the previous
answer cited stay candidates. A question that stands on its own starts a new topic. The model
sees the user's own question: the evidence already comes from the resolved search.
"""

import re
from dataclasses import dataclass, field

ANAPHOR = re.compile(
    r"\b(it|its|they|them|their|this|these|those|the (?:method|model|paper|dataset|approach|system|"
    r"framework|benchmark|authors?))\b|它|它们|其|该|这个|这种|这篇|此|那个|上述|他们",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Turn:
    question: str
    query: str  # what was searched for it
    cited_paper_ids: tuple[str, ...]


@dataclass
class Conversation:
    turns: list[Turn] = field(default_factory=list)

    @property
    def last(self) -> Turn | None:
        return self.turns[-1] if self.turns else None


def refers_back(question: str) -> bool:
    return ANAPHOR.search(question) is not None


def followup_query(question: str, conversation: Conversation | None) -> tuple[str, tuple[str, ...]] | None:
    """The search text for a follow-up, with the papers the previous answer cited; None when there
    is no earlier turn to refer to."""
    previous = conversation.last if conversation else None
    if previous is None:
        return None
    return f"{question} {previous.query}", previous.cited_paper_ids
