"""The evaluation question set: a JSONL file, one question per line, validated with pydantic.

Gold papers are named by a record's own id where the collection gives one ("MED-10" of a .jsonl
record, a BibTeX key), else by a title, else by a distinctive substring of the abstract ("7,526
well-labeled"), so a set survives changes to the corpus that leave those papers alone; each must
name exactly one paper of the corpus evaluated. Required facts are lists of accepted
variants ("7,526" or "7526"). A follow-up carries the earlier questions of its conversation.
"""

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from qa_bot.collection.corpus import Corpus, Paper
from qa_bot.errors import BadInputError

DEFAULT_QUESTIONS = Path(__file__).resolve().parent.parent / "data" / "questions.jsonl"
# chatty: a long question that first describes the asker's situation; not_stated: about a paper of the
# corpus that its abstract cannot answer (authors, year, a metric it does not report).
Kind = Literal["fact", "chatty", "paraphrase", "multi", "followup", "unanswerable", "not_stated"]
KINDS: tuple[str, ...] = Kind.__args__


class Question(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    question: str = Field(min_length=1)
    lang: Literal["en", "zh"]
    kind: Kind
    gold: list[str] = Field(default_factory=list, description="Each gold paper's record id, title, or a distinctive substring of its abstract.")
    facts: list[list[str]] = Field(default_factory=list, description="Each required fact's accepted variants.")
    context: list[str] = Field(default_factory=list, description="The earlier questions of the conversation.")

    @model_validator(mode="after")
    def consistent(self) -> "Question":
        if not self.question.strip():
            raise ValueError("question is blank")
        if (self.kind == "unanswerable") != (not self.gold):
            raise ValueError("gold papers are required, except for an unanswerable question, which has none")
        if (self.kind == "followup") != bool(self.context):
            raise ValueError("a followup question needs its context (earlier questions), and only it")
        if self.kind == "not_stated" and self.facts:
            raise ValueError("a not_stated question has no required facts: its abstract does not hold them")
        if any(not variants or not all(v.strip() for v in variants) for variants in self.facts):
            raise ValueError("each required fact is a non-empty list of non-blank variants")
        return self

    @property
    def answerable(self) -> bool:
        """The collection holds the answer (an unanswerable or not-stated question should be declined)."""
        return self.expected_outcome == "answered"

    @property
    def has_gold(self) -> bool:
        """Some paper of the collection is what the question is about (retrieval can be scored)."""
        return self.kind != "unanswerable"

    @property
    def expected_outcome(self) -> str:
        return {"unanswerable": "out_of_corpus", "not_stated": "not_stated"}.get(self.kind, "answered")

    def facts_present(self, text: str) -> bool:
        """Every required fact appears in `text`, in one of its variants (case ignored)."""
        lowered = text.lower()
        return all(any(variant.lower() in lowered for variant in variants) for variants in self.facts)


@dataclass(frozen=True)
class QuestionSet:
    path: Path
    questions: list[Question]
    lines: dict[str, int]  # question id -> line number, for messages
    sha256: str

    def gold_papers(self, corpus: Corpus) -> dict[str, list[str]]:
        """Each question's gold paper ids in `corpus`; a key that names no paper, or several, is an
        error naming its line (the set does not fit this corpus)."""
        papers, resolved = corpus.papers, {}
        for question in self.questions:
            resolved[question.id] = []
            for key in question.gold:
                found = papers_named(papers, key)
                if len(found) != 1:
                    raise BadInputError(
                        f"{self.path}:{self.lines[question.id]}: gold {key!r} of {question.id} names "
                        f"{len(found)} papers of the corpus, not one"
                    )
                resolved[question.id].append(found[0].paper_id)
            # Two records of one abstract (ids of duplicates) are one paper.
            resolved[question.id] = list(dict.fromkeys(resolved[question.id]))
        return resolved


def papers_named(papers: list[Paper], key: str) -> list[Paper]:
    """The papers a gold key names: by a record's id, else by title, else by a substring of the abstract."""
    for names in (lambda paper: any(location.key == key for location in paper.locations),
                  lambda paper: key in (paper.title, paper.given_title),
                  lambda paper: key in paper.text):
        if found := [paper for paper in papers if names(paper)]:
            return found
    return []


def load_questions(path: Path = DEFAULT_QUESTIONS) -> QuestionSet:
    """The question set of `path`; a malformed line is an error naming the file and line."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise BadInputError(f"cannot read question file {path}: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadInputError(f"{path}: not UTF-8") from None
    questions, lines = [], {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        question = parse_question(line, f"{path}:{number}")
        if question.id in lines:
            raise BadInputError(f"{path}:{number}: id {question.id!r} repeats line {lines[question.id]}")
        questions.append(question)
        lines[question.id] = number
    if not questions:
        raise BadInputError(f"{path}: no questions (one JSON object per line)")
    return QuestionSet(path, questions, lines, hashlib.sha256(raw).hexdigest())


def parse_question(line: str, where: str) -> Question:
    try:
        return Question.model_validate(json.loads(line))
    except json.JSONDecodeError as exc:
        raise BadInputError(f"{where}: not valid JSON ({exc.msg})") from None
    except ValidationError as exc:
        problem = exc.errors()[0]
        field = ".".join(str(part) for part in problem["loc"])
        raise BadInputError(f"{where}: {field + ': ' if field else ''}{problem['msg']}") from None


class CheckCase(BaseModel):
    """A labelled answer sentence for measuring the citation check: a question, the evidence shown
    to the model as source [1] (verbatim sentences of the gold paper), a claim, and what it is."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    question: str = Field(min_length=1)
    lang: Literal["en", "zh"]
    gold: str = Field(min_length=1)
    evidence: list[str] = Field(min_length=1)
    claim: str = Field(min_length=1)
    label: Literal["supported", "unsupported", "non_answer"]


def load_check_cases(path: Path, corpus: Corpus) -> list[tuple[CheckCase, Paper]]:
    """The cases of a JSONL file with their papers; each evidence sentence must be in its paper."""
    path = Path(path)
    try:
        lines = path.read_text("utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInputError(f"cannot read check cases {path}: {exc}") from None
    cases, papers = [], corpus.papers
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            case = CheckCase.model_validate(json.loads(line))
        except (json.JSONDecodeError, ValidationError) as exc:
            raise BadInputError(f"{where}: not a check case ({str(exc).splitlines()[0]})") from None
        named = papers_named(papers, case.gold)
        if len(named) != 1 or not all(sentence in named[0].text for sentence in case.evidence):
            raise BadInputError(f"{where}: gold must name one paper, and its evidence must be verbatim sentences of it")
        cases.append((case, named[0]))
    return cases
