"""From a question to a checked answer: retrieval, evidence, generation, citation check, output.

`Assistant.ask` returns an `AnswerStream`: iterating it runs the pipeline and yields the answer's
text one checked sentence at a time (a sentence is shown only once the citation check has kept
it, so what streams is what the final answer says); `.answer` then holds the whole `Answer`.
Three paths: "generated" (the model's checked sentences), "extractive" (the model wrote nothing
the evidence supports, so the best evidence sentence is quoted), "abstained" (retrieval found
nothing relevant enough, and the model is not called).
"""

import time
from collections.abc import Generator
from dataclasses import dataclass
from typing import Literal

from qa_bot.bilingual import query_terms
from qa_bot.cite import CheckedSentence, CitationChecker, answer_sentences, with_marker
from qa_bot.conversation import Conversation, Turn, followup_query, refers_back
from qa_bot.corpus import Paper, detect_language
from qa_bot.errors import BadInputError
from qa_bot.evidence import Source, answer_bonus, asked_for, numbered_evidence, select_evidence
from qa_bot.llm import LanguageModel, is_looping, until_repetition
from qa_bot.prompts import render_prompt
from qa_bot.retrieve import Hit, Retriever
from qa_bot.settings import Settings
from qa_bot.titles import name_in_title

ABSTENTION = {
    "en": "The papers in this collection do not cover this question.",
    "zh": "这批论文没有涉及这个问题。",
}
LANGUAGE_NAMES = {"en": "English", "zh": "Chinese"}


@dataclass(frozen=True)
class Citation:
    marker: int
    paper: Paper
    evidence: str  # verbatim from the paper's abstract


@dataclass(frozen=True)
class Timings:
    retrieval_ms: float
    first_token_ms: float | None  # None when the model was not called
    total_ms: float


@dataclass(frozen=True)
class Answer:
    question: str
    text: str
    path: Literal["generated", "extractive", "abstained"]
    citations: list[Citation]
    hits: list[Hit]
    evidence: list[Source]
    model: str
    timings: Timings
    query: str  # what was searched (the question, joined with earlier turns for a follow-up)
    generated: str  # what the model wrote, before the check
    dropped: list[str]  # the model's sentences the check removed

    @property
    def abstained(self) -> bool:
        return self.path == "abstained"


class AnswerStream:
    """The answer's checked text, piece by piece; `.answer` is set once iteration has finished."""

    def __init__(self, pieces: Generator[str, None, Answer]):
        self._pieces = pieces
        self.answer: Answer | None = None

    def __iter__(self):
        self.answer = yield from self._pieces


class Assistant:
    """The pipeline, shared by the CLI and the UI: one retriever, one model, one settings object.
    Without a model (`qa-bot eval --retrieval-only`) only `retrieve` can be used."""

    def __init__(self, retriever: Retriever, model: LanguageModel | None, settings: Settings):
        self.retriever = retriever
        self.model = model
        self.settings = settings

    def ask(self, question: str, conversation: Conversation | None = None) -> AnswerStream:
        require_question(question)
        return AnswerStream(self._answer(question.strip(), conversation))

    def answer(self, question: str, conversation: Conversation | None = None) -> Answer:
        """The whole answer at once (no streaming)."""
        stream = self.ask(question, conversation)
        for _ in stream:
            pass
        return stream.answer

    def _answer(self, question: str, conversation: Conversation | None) -> Generator[str, None, Answer]:
        """The pipeline; the finished turn is recorded in `conversation`, when one is given."""
        answer = yield from self._pipeline(question, conversation)
        if conversation is not None:
            remember(conversation, answer)
        return answer

    def _pipeline(self, question: str, conversation: Conversation | None) -> Generator[str, None, Answer]:
        started = time.perf_counter()
        query, hits, relevant = self.retrieve(question, conversation)
        retrieval_ms = elapsed_ms(started)
        language = detect_language(question)
        if not relevant:
            yield ABSTENTION[language]
            return Answer(
                question, ABSTENTION[language], "abstained", [], hits, [], self.model.name,
                Timings(retrieval_ms, None, elapsed_ms(started)), query, "", [],
            )
        sources = self._evidence(question, query, hits)
        messages = self._messages(question, sources)
        checker = CitationChecker(sources, self.settings.min_support)
        generated, checked_count, first_token_ms = "", 0, None
        for piece in until_repetition(self.model.stream(messages, self.settings.max_answer_tokens)):
            first_token_ms = first_token_ms or elapsed_ms(started)
            generated += piece
            # The last sentence may still grow (or gain its marker) until the next one begins.
            complete = answer_sentences(generated)[:-1]
            for sentence in complete[checked_count:]:
                yield from shown(checker.check(sentence), checker.kept)
            checked_count = max(checked_count, len(complete))
        rest = answer_sentences(generated)[checked_count:]
        for sentence in rest[:-1] if is_looping(generated) else rest:  # a loop's last sentence is cut off
            yield from shown(checker.check(sentence), checker.kept)
        path, kept = "generated", checker.kept
        if not kept:
            path, kept = "extractive", [quote(sources[0], sources[0].best_sentence)]
            yield kept[0].text
        if asked := sentence_with_what_is_asked(question, kept, sources[0]):
            kept = kept + [quote(sources[0], asked)]
            yield separator_before(kept, len(kept) - 1) + kept[-1].text
        text = "".join(separator_before(kept, i) + sentence.text for i, sentence in enumerate(kept))
        return Answer(
            question, text, path, citations_for(kept, sources), hits, sources, self.model.name,
            Timings(retrieval_ms, first_token_ms, elapsed_ms(started)), query, generated, checker.dropped,
        )

    def retrieve(self, question: str, conversation: Conversation | None = None) -> tuple[str, list[Hit], bool]:
        """The search text, the papers found (best first), and whether they cover the question
        well enough to answer it (if not, they are only the closest papers). Needs no model."""
        k = self.settings.top_k
        alone = self.retriever.search(question, k).hits
        covered = bool(alone) and self._covers(question, alone[0].paper)
        followup = followup_query(question, conversation)
        pointing_back = refers_back(question)
        if followup and (pointing_back or not covered):
            query, carried_ids = followup
            hits = self.retriever.search(query, k, include=carried_ids).hits
            # A question that points back is incomplete by design: it is covered with what it points
            # to. One that does not must be covered on its own, or it is not about that topic.
            wanted = query if pointing_back else question
            if any(self._covers(wanted, paper) for paper in self._papers(hits[:1], carried_ids)):
                return query, hits, True
        return question, alone, covered

    def _evidence(self, question: str, query: str, hits: list[Hit]) -> list[Source]:
        own_terms, query_terms_ = query_terms(question), query_terms(query)
        weight = max(map(self.retriever.term_weight, own_terms), default=0.0)

        def best_sentences(paper: Paper, count: int) -> list[str]:
            # A follow-up's sentences answer its own words ("how much faster"); the earlier turn's
            # words only choose among sentences that hold none of them.
            bonus = answer_bonus(question, name_in_title(paper.title), weight)
            return self.retriever.best_sentences(own_terms, paper, count, query_terms_, bonus)

        papers = [(hit.paper, hit.score) for hit in self._evidence_papers(query, hits)]
        return select_evidence(
            papers, best_sentences, self.model.count_tokens, self.settings.evidence_sentences, self.settings.evidence_tokens
        )

    def _evidence_papers(self, query: str, hits: list[Hit]) -> list[Hit]:
        """The best paper, and those of the next that score close to it and cover the question too:
        a paper that shares a word or two with it is noise the model would cite."""
        best = hits[: self.settings.evidence_papers]
        close = [hit for hit in best[1:] if hit.score >= self.settings.evidence_min_score_share * best[0].score]
        return best[:1] + [hit for hit in close if self._covers(query, hit.paper)]

    def _covers(self, question: str, paper: Paper) -> bool:
        coverage = self.retriever.coverage(question, paper)
        settings = self.settings
        return coverage.enough(settings.min_coverage, settings.min_shared_words, settings.short_question_words)

    def _papers(self, hits: list[Hit], paper_ids: tuple[str, ...]) -> list[Paper]:
        return [hit.paper for hit in hits] + [self.retriever.corpus.paper(paper_id) for paper_id in paper_ids]

    def _messages(self, question: str, sources: list[Source]) -> list[dict[str, str]]:
        folder = self.settings.prompts_dir
        user = render_prompt(
            folder, "answer", evidence=numbered_evidence(sources), question=question,
            language=LANGUAGE_NAMES[detect_language(question)],
        )
        return [{"role": "system", "content": render_prompt(folder, "system")}, {"role": "user", "content": user}]

    def prompt_messages(self, answer: "Answer") -> list[dict[str, str]]:
        """The messages the model was given for `answer` (for benchmarks against the raw model)."""
        return self._messages(answer.question, answer.evidence)


def shown(sentence: CheckedSentence | None, kept: list[CheckedSentence]):
    """A sentence the check kept, as it is streamed (the last of `kept`)."""
    if sentence is not None:
        yield separator_before(kept, len(kept) - 1) + sentence.text


def separator_before(kept: list[CheckedSentence], position: int) -> str:
    """No space at the start, nor after a sentence that ends in Chinese punctuation."""
    if position == 0 or kept[position - 1].text.endswith(("。", "！", "？", "；")):
        return ""
    return " "


def quote(source: Source, sentence: str) -> CheckedSentence:
    """An evidence sentence quoted with its marker: the answer when the model's is unusable, or
    what it left out."""
    return CheckedSentence(with_marker(sentence, source.marker), sentence, source.marker, sentence)


def sentence_with_what_is_asked(question: str, kept: list[CheckedSentence], best: Source) -> str | None:
    """When the question asks for a number (or a name) that no sentence of the answer states, the
    best source's evidence sentence that states it, to be quoted after them."""
    states = asked_for(question, name_in_title(best.paper.title))
    # Evidence sentences were chosen for matching the question, so each counts as matching.
    if states is None or any(states(sentence.claim, 1.0) for sentence in kept):
        return None
    return next((sentence for sentence in best.sentences if states(sentence, 1.0)), None)


def citations_for(kept: list[CheckedSentence], sources: list[Source]) -> list[Citation]:
    """One citation per marker used, quoting the stretch of the abstract that holds its evidence."""
    by_marker = {source.marker: source for source in sources}
    citations = []
    for marker in sorted({sentence.marker for sentence in kept}):
        paper = by_marker[marker].paper
        quoted = [sentence.evidence for sentence in kept if sentence.marker == marker]
        citations.append(Citation(marker, paper, enclosing_span(paper.text, quoted)))
    return citations


def enclosing_span(text: str, parts: list[str]) -> str:
    """The part of `text` from the first to the last of `parts` (each a substring of it)."""
    starts = [text.index(part) for part in parts]
    ends = [start + len(part) for start, part in zip(starts, parts)]
    return text[min(starts) : max(ends)]


def remember(conversation: Conversation, answer: Answer) -> None:
    cited = tuple(citation.paper.paper_id for citation in answer.citations)
    conversation.turns.append(Turn(answer.question, answer.query, cited))


def require_question(question: str) -> None:
    if not question.strip():
        raise BadInputError("empty question: ask something about the papers")


def elapsed_ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
