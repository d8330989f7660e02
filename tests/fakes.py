"""Test doubles for the pipeline's stages."""

import itertools
import threading
from collections.abc import Callable, Iterator


def declining(*questions: str) -> Callable[[list[dict[str, str]]], float]:
    """A coverage judgment that finds no source answering, or about, the given questions, and every
    source answering any other."""
    return lambda messages: 0.0 if any(f"Question: {q}\n" in messages[-1]["content"] for q in questions) else 1.0


class FakeModel:
    """A stand-in for the language model: replies with scripted texts in turn (the last one again
    once they run out), word by word, and keeps the messages it was given. `endless=True` repeats
    each reply forever, as a looping small model does."""

    def __init__(self, *replies: str, name: str = "fake.gguf", endless: bool = False,
                 judgment: float | Callable[[list[dict[str, str]]], float] = 1.0,
                 coverage: float | Callable[[list[dict[str, str]]], float] = 1.0, follows_instructions: bool = True):
        self.name = name
        self.replies = list(replies)
        self.endless = endless
        self.judgment = judgment  # P(yes) that a source states an answer sentence, or a function of the messages
        self.coverage = coverage  # P(yes) that a source answers the question, or is about it
        self.follows_instructions = follows_instructions
        self.prompts: list[list[dict[str, str]]] = []
        self.judged: list[list[dict[str, str]]] = []
        self.pieces_sent = 0
        self.lock = threading.Lock()

    def busy(self) -> bool:
        return self.lock.locked()

    def count_tokens(self, text: str) -> int:
        return len(text.split()) + sum(1 for char in text if ord(char) > 0x2E80)

    def stream(self, messages: list[dict[str, str]], max_tokens: int) -> Iterator[str]:
        with self.lock:
            self.prompts.append(messages)
            yield from self._reply(max_tokens)

    def yes_probability(self, messages: list[dict[str, str]]) -> float:
        with self.lock:
            self.judged.append(messages)
            probability = self.judgment if "Answer sentence:" in messages[-1]["content"] else self.coverage
            return probability(messages) if callable(probability) else probability

    def _reply(self, max_tokens: int) -> Iterator[str]:
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        words = reply.split(" ")
        pieces = itertools.cycle(words) if self.endless else iter(words)
        for piece in itertools.islice(pieces, max_tokens):
            self.pieces_sent += 1
            yield piece if self.pieces_sent == 1 else " " + piece
