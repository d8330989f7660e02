"""The judgment: whether a source states what an answer sentence says, decided by a language model
from meaning rather than shared words.

The model is asked a yes/no question (`prompts/judge_system.txt`, `judge_support.txt`) and scored
from its next-token probabilities (`LanguageModel.yes_probability`): P(yes) / (P(yes) + P(no)).
Its own system turn, not the writer's: under the writer's instructions the same model told a right
number from a wrong one far less well. Every judgment of one answer starts with the same system
turn, evidence block and question, so a model that keeps its context (the in-process llama.cpp one)
evaluates them once; only the sentence and the question about it are new each time. The threshold is calibrated on
labelled sentences (`scripts/calibrate_judge.py`, README Answers).
"""

from dataclasses import dataclass
from pathlib import Path

from qa_bot.evidence import Source, numbered_evidence
from qa_bot.llm import LanguageModel
from qa_bot.prompts import render_prompt


@dataclass(frozen=True)
class Judge:
    model: LanguageModel
    prompts_dir: Path
    threshold: float  # the least P(yes) that counts as supported

    def support(self, sources: list[Source], marker: int, claim: str, question: str) -> float:
        """P(yes) that source `marker`, shown among `sources` as the writer saw them, states `claim`."""
        user = render_prompt(self.prompts_dir, "judge_support", evidence=numbered_evidence(sources),
                             question=question, claim=claim, marker=str(marker))
        system = render_prompt(self.prompts_dir, "judge_system")
        return self.model.yes_probability([{"role": "system", "content": system}, {"role": "user", "content": user}])

    def supports(self, sources: list[Source], marker: int, claim: str, question: str) -> bool:
        return self.support(sources, marker, claim, question) >= self.threshold
