"""The judgment: whether a source answers a question, and whether it states what an answer sentence
says, decided by a language model from meaning rather than shared words.

The model is asked a yes/no question (`prompts/judge_*.txt`) and scored from its next-token
probabilities (`LanguageModel.yes_probability`): P(yes) / (P(yes) + P(no)). Every question asked
about one answer starts with the same system turn, evidence block and question as the writer's
prompt, so a model that keeps its context (the in-process llama.cpp one) evaluates them once; only
the question about a source or a sentence is new each time. The thresholds are calibrated on the
tuning halves (`scripts/calibrate_judge.py`, `scripts/calibrate_coverage.py`; docs/answers.md).
"""

from dataclasses import dataclass
from pathlib import Path

from qa_bot.answer.evidence import Source, numbered_evidence
from qa_bot.answer.llm import LanguageModel
from qa_bot.answer.prompts import render_prompt
from qa_bot.settings import Settings


@dataclass(frozen=True)
class Judge:
    model: LanguageModel
    prompts_dir: Path
    threshold: float  # the least P(yes) that a source states an answer sentence
    answers_threshold: float  # the least P(yes) that a source answers the question
    about_threshold: float  # the least P(yes) that a source is about what the question asks of

    @classmethod
    def of(cls, model: LanguageModel, settings: Settings) -> "Judge":
        return cls(model, settings.prompts_dir, settings.judge_threshold, settings.answers_threshold, settings.about_threshold)

    def support(self, sources: list[Source], marker: int, claim: str, question: str) -> float:
        """P(yes) that source `marker`, shown among `sources` as the writer saw them, states `claim`."""
        return self._probability("judge_support", sources, question, marker=str(marker), claim=claim)

    def supports(self, sources: list[Source], marker: int, claim: str, question: str) -> bool:
        return self.support(sources, marker, claim, question) >= self.threshold

    def answers(self, sources: list[Source], marker: int, question: str) -> float:
        """P(yes) that source `marker` answers the question: states what it asks for."""
        return self._probability("judge_answers", sources, question, marker=str(marker))

    def about(self, sources: list[Source], marker: int, question: str) -> float:
        """P(yes) that source `marker` is about what the question asks of (its study, method or
        subject), whether or not it gives the answer."""
        return self._probability("judge_about", sources, question, marker=str(marker))

    def _probability(self, prompt: str, sources: list[Source], question: str, **fields: str) -> float:
        user = render_prompt(self.prompts_dir, prompt, evidence=numbered_evidence(sources), question=question, **fields)
        system = render_prompt(self.prompts_dir, "judge_system")
        return self.model.yes_probability([{"role": "system", "content": system}, {"role": "user", "content": user}])
