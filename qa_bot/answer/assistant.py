"""From a question to a checked answer: retrieval, evidence, generation, citation check, output.

`Assistant.ask` returns an `AnswerStream`: iterating it runs the pipeline and yields the answer's
text one checked sentence at a time (a sentence is shown only once the citation check has kept
it, so what streams is what the final answer says); `.answer` then holds the whole `Answer`.
Three paths: "generated" (the model's checked sentences), "extractive" (the model wrote nothing
the evidence supports, so the best evidence sentence is quoted), "abstained" (retrieval found
nothing relevant enough, and the model is not called).
"""

import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, replace
from typing import Literal

from qa_bot.search.bilingual import Words, document_terms
from qa_bot.answer.cite import (
    TRAILING_PUNCTUATION, CheckedSentence, CitationChecker, answer_sentences, answer_spans, claim_of, with_marker,
)
from qa_bot.answer.conversation import Conversation, Turn, followup_query, refers_back
from qa_bot.collection.corpus import Paper
from qa_bot.errors import BadInputError
from qa_bot.answer.evidence import (
    NUMERAL, Source, answer_bonus, asked_for, numbered_evidence, select_evidence,
)
from qa_bot.text.hygiene import cut_to_tokens, require_text, shown_answer
from qa_bot.answer.judge import Judge
from qa_bot.answer.llm import LanguageModel, is_looping, until_repetition
from qa_bot.answer.prompts import render_prompt
from qa_bot.answer.query import Part, Query, analyse, states_metadata
from qa_bot.search.retrieve import Hit, Retriever
from qa_bot.settings import Settings
from qa_bot.collection.titles import name_in_title
from qa_bot.search.tokenize import question_frame_terms
from qa_bot.text.language import detect_language
from qa_bot.text.sentences import matched_weight, split_sentences

ABSTENTION = {
    "en": "The papers in this collection do not cover this question.",
    "zh": "这批论文没有涉及这个问题。",
}
NOT_STATED = {"en": 'The abstract of "{title}" does not state {what}.', "zh": "“{title}”的摘要没有提到{what}。"}
NOT_STATED_WHAT = {
    None: ("this", "这一点"),
    "authors": ("who wrote it", "作者是谁"),
    "date": ("when it was published", "发表时间"),
    "venue": ("where it was published", "发表在哪里"),
    "code": ("whether its code is available", "代码是否公开"),
    "funding": ("how it was funded", "资助来源"),
    "hardware": ("the hardware it used", "所用的硬件"),
    "time": ("how long it took to train", "训练所用的时间"),
}
# A sentence in the other language than the question's is shown as a marked quotation of its evidence.
QUOTED_FRAME = {
    "en": {"zh": 'The Chinese abstract [{marker}] states: "{quote}".', "en": '"{quote}" [{marker}].'},
    "zh": {"en": "据英文摘要[{marker}]：“{quote}”。", "zh": "“{quote}”[{marker}]。"},
}
CHINESE_ENDS = ("。", "！", "？", "；")
ANSWERED_SHARE = 0.75  # a shown sentence answers a part when its source matches it this well, of the best
LIST_DEPTH = 20  # papers a "which papers ...?" question is answered with, at most
LIST_INTRO = {"en": "Papers in this collection that match:", "zh": "符合条件的论文："}
LANGUAGE_NAMES = {"en": "English", "zh": "Chinese"}
# Tokens a chat template or the base-model layout adds around the prompt files' text.
TEMPLATE_TOKENS = 48
MIN_QUESTION_TOKENS = 16


@dataclass(frozen=True)
class Citation:
    marker: int
    paper: Paper
    evidence: str  # verbatim from the paper's abstract
    answer_spans: tuple[str, ...] = ()  # the numbers and names of the answer, as the evidence writes them


@dataclass(frozen=True)
class Timings:
    retrieval_ms: float
    first_token_ms: float | None  # None when the model was not called
    total_ms: float


@dataclass(frozen=True)
class Answer:
    question: str
    text: str
    outcome: Literal["answered", "not_stated", "out_of_corpus"]
    path: Literal["generated", "extractive", "listed", "abstained"]
    citations: list[Citation]
    hits: list[Hit]
    evidence: list[Source]
    model: str
    timings: Timings
    query: str  # what was searched (the question, joined with earlier turns for a follow-up)
    generated: str  # what the model wrote, before the check
    dropped: list[str]  # the model's sentences the check removed
    truncated: bool = False  # the question was cut to fit the model's context window
    missing_shards: tuple[str, ...] = ()  # shards that were down (allow_partial): answered from the others

    @property
    def abstained(self) -> bool:
        return self.outcome != "answered"


@dataclass(frozen=True)
class Found:
    """What retrieval found for a question, and what can be said from it."""

    search: Words  # what was searched (the question, joined with earlier turns for a follow-up)
    hits: list[Hit]
    outcome: Literal["answer", "not_stated", "out_of_corpus"]
    named: Paper | None = None  # the paper the question names, when it names one
    unknown_names: bool = False  # the question names something no abstract mentions
    # Words of the question no abstract uses in any form, when the papers found do not cover it
    # either: what the collection never mentions, the judgment does not find answered.
    unused_words: tuple[str, ...] = ()


@dataclass(frozen=True)
class Judged:
    """What the model's judgment of the evidence decided, and from which sources."""

    outcome: Literal["answer", "not_stated", "out_of_corpus"]
    answering: tuple[Source, ...] = ()  # the sources that answer the question: the only ones an answer may cite


@dataclass(frozen=True)
class Searched:
    words: Words
    hits: list[Hit]
    named: Paper | None = None
    unknown_names: bool = False
    followed: bool = False  # a follow-up, searched with the earlier turn


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
        # The writer judges its own sentences: no second model to load or keep in memory.
        self.judge = Judge.of(model, settings) if model is not None else None

    def ask(self, question: str, conversation: Conversation | None = None) -> AnswerStream:
        question, truncated = self.fitted(require_question(question))
        return AnswerStream(self._answer(analyse(question), conversation, truncated))

    def fitted(self, question: str) -> tuple[str, bool]:
        """The question cut to the model tokens its prompt leaves for it, and whether it was cut: a
        question longer than the context window failed inside llama.cpp."""
        if self.model is None:
            return question, False
        budget = self.question_budget()
        cut = cut_to_tokens(question, self.model.count_tokens, budget)
        return cut, cut != question

    def question_budget(self) -> int:
        """The context window less the answer, the evidence and the prompt around them."""
        settings, folder = self.settings, self.settings.prompts_dir
        frame = render_prompt(folder, "system") + render_prompt(
            folder, "answer", evidence="", question="", language="English") + render_prompt(
            folder, "base_model", system="", user="")
        budget = (settings.n_ctx - settings.max_answer_tokens - settings.evidence_tokens
                  - self.model.count_tokens(frame) - TEMPLATE_TOKENS)
        if budget < MIN_QUESTION_TOKENS:
            raise BadInputError(f"n_ctx {settings.n_ctx} leaves no room for a question after max_answer_tokens "
                                f"{settings.max_answer_tokens} and evidence_tokens {settings.evidence_tokens}; raise QA_BOT_N_CTX")
        return min(budget, settings.max_question_tokens)

    def answer(self, question: str, conversation: Conversation | None = None) -> Answer:
        """The whole answer at once (no streaming)."""
        stream = self.ask(question, conversation)
        for _ in stream:
            pass
        return stream.answer

    def _answer(self, query: Query, conversation: Conversation | None, truncated: bool) -> Generator[str, None, Answer]:
        """The pipeline; the finished turn is recorded in `conversation`, when one is given."""
        answer = replace((yield from self._pipeline(query, conversation)), truncated=truncated)
        if conversation is not None:
            remember(conversation, answer)
        return answer

    def _pipeline(self, query: Query, conversation: Conversation | None) -> Generator[str, None, Answer]:
        started = time.perf_counter()
        found = self.retrieve(query, conversation)
        draft = Draft(query, found.search.text, found.hits, self.model.name, started, elapsed_ms(started))
        draft.missing_shards = self.retriever.index.missing_shards
        if query.asks == "papers" and found.search == query.words and found.outcome != "out_of_corpus":
            return (yield from self._paper_list(draft))  # not a follow-up about earlier papers
        if found.unknown_names or found.unused_words or not found.hits:
            return (yield from draft.declined("out_of_corpus", []))
        sources = self._evidence(query, found.search, found.hits)
        if found.outcome == "not_stated" or found.outcome == "out_of_corpus" and not self._judges_coverage(query):
            return (yield from draft.declined(found.outcome, sources))
        # The writer goes first: every judgment after it then shares one evaluated prefix (the
        # judge's turn, the evidence and the question), where judging first would make the model
        # read the evidence a third time.
        generated = self._generated(draft, sources)
        judged = self._judged(query, found, sources)
        if judged.outcome != "answer":
            return (yield from draft.declined(judged.outcome, sources))
        return (yield from self._written(draft, sources, judged, generated))

    def _generated(self, draft: "Draft", sources: list[Source]) -> str:
        generated = ""
        messages = self._messages(draft.query, sources)
        for piece in until_repetition(self.model.stream(messages, self.settings.max_answer_tokens)):
            draft.first_token_ms = draft.first_token_ms or elapsed_ms(draft.started)
            generated += piece
        return generated

    def _judged(self, query: Query, found: "Found", sources: list[Source]) -> "Judged":
        """Whether the evidence answers the question, by the model's judgment: the sources that
        answer it, when any does (the only ones the answer may cite); else the paper asked about
        (named, or the best found when it is about the question's subject) does not state it; else
        the collection does not cover it. What the word rules already found not stated (a number no
        sentence of the named paper holds, authors, venue) never gets here; what they found
        answered stays so when the question is not the model's to judge (`_judges_coverage`)."""
        if not self._judges_coverage(query):
            return Judged("answer", tuple(sources))
        judge, question = self.judge, query.text
        answering = [source for source in sources if judge.answers(sources, source.marker, question) >= judge.answers_threshold]
        if answering:
            return Judged("answer", tuple(answering))
        if found.named or judge.about(sources, sources[0].marker, question) >= judge.about_threshold:
            return Judged("not_stated")
        return Judged("out_of_corpus")

    def _judges_coverage(self, query: Query) -> bool:
        """Whether the model decides if the evidence answers the question: not for what abstracts
        rarely hold (authors, venue, date: a pattern finds it), nor when the model cannot judge (the
        word rules of `retrieve` decide then)."""
        return query.asks != "metadata" and self.model.follows_instructions

    def _written(self, draft: "Draft", sources: list[Source], judged: "Judged", generated: str) -> Generator[str, None, Answer]:
        """The model's answer, each sentence shown once the judge finds that a source answering the
        question states it; the best answering evidence sentence quoted when none is kept, or when
        the kept ones leave out what was asked."""
        query, best = draft.query, judged.answering[0]
        citable = {source.marker for source in judged.answering}
        checker = CitationChecker(sources, query, self.judge, citable=citable)
        if self.model.follows_instructions:
            draft.translate = lambda sentence: self._translated(sentence, sources, query)
        sentences = answer_sentences(generated)
        for sentence in sentences[:-1] if is_looping(generated) else sentences:  # a loop's last sentence is cut off
            yield from draft.present(checker.check(sentence), sources)
        path = "generated" if draft.shown else "extractive"
        if not draft.shown:
            yield from draft.present(quote(best, best.best_sentence), sources)
        for asked in self._unanswered_parts(query, draft.shown, best):
            yield from draft.present(quote(best, asked), sources)
        return draft.finish(draft.text(), "answered", path, sources, generated, checker.dropped)

    def _translated(self, sentence: CheckedSentence, sources: list[Source], query: Query) -> CheckedSentence | None:
        """The sentence in the asker's language, translated by the model and kept only when it
        passes the citation check against the same source (numbers and names exactly, then the
        judgment); None when it does not."""
        prompt = render_prompt(self.settings.prompts_dir, "translate", sentence=sentence.claim,
                               language=LANGUAGE_NAMES[query.lang])
        pieces = self.model.stream([{"role": "user", "content": prompt}], self.settings.max_answer_tokens)
        translation = " ".join(answer_sentences("".join(until_repetition(pieces))))
        checker = CitationChecker(sources, query, self.judge, citable={sentence.marker})
        checked = checker.check(with_marker(claim_of(translation), sentence.marker))  # an empty one says nothing: None
        return checked if checked is not None and detect_language(checked.claim) == query.lang else None

    def _paper_list(self, draft: "Draft") -> Generator[str, None, Answer]:
        """Every retrieved paper that covers what the question asks for, each a cited line with its
        best sentence: a list of papers comes from retrieval, not from a small model's prose."""
        query = draft.query
        topic = query.asking_words
        # Every paper that qualifies, not only the top k: a list is as long as the collection makes it.
        candidates = self.retriever.search(topic, max(self.settings.top_k, LIST_DEPTH)).hits or draft.hits
        papers = [hit for hit in candidates if self._covers(topic, hit.paper)][:LIST_DEPTH] or candidates[:1]
        # The answer's sources are this search's papers down to the last one listed (at least the top
        # k): every cited paper is among the sources (shared/CONTRACT.md), however long the list.
        depth = max(position for position, hit in enumerate(candidates, start=1) if hit in papers)
        draft.hits = candidates[: max(self.settings.top_k, depth)]
        terms = topic.terms
        sources = [Source(marker, hit.paper, hit.score, [sentence := self.retriever.snippet(terms, hit.paper)], sentence)
                   for marker, hit in enumerate(papers, start=1)]
        yield LIST_INTRO[query.lang]
        for source in sources:
            line = quote(source, source.best_sentence)
            line = CheckedSentence(f"{source.paper.title}: {line.text}", line.claim, line.marker, line.evidence)
            yield from draft.present(line, sources, separator="\n- ")
        return draft.finish(LIST_INTRO[query.lang] + draft.text(), "answered", "listed", sources)

    def retrieve(self, query: Query, conversation: Conversation | None = None) -> "Found":
        """The search text, the papers found (best first), and what can be said from them without a
        model: an answer, that the paper asked about does not state it, or that the collection does
        not cover the question (then the papers are only the closest ones). With a model, the
        judgment decides instead (`_judged`); these word rules are what `qa-bot eval
        --retrieval-only` and a conversation replayed without the model go by."""
        searched = self._search(query, conversation)
        outcome = self._lexical_outcome(query, searched)
        unused = tuple(self.retriever.unused_words(query.words)) if outcome == "out_of_corpus" else ()
        return Found(searched.words, searched.hits, outcome, searched.named, searched.unknown_names, unused)

    def _search(self, query: Query, conversation: Conversation | None) -> "Searched":
        """What to search for the question, and what it found: the question alone, or, for a
        follow-up, the question joined with the earlier turn's search and its cited papers."""
        k = self.settings.top_k
        question = query.words
        known = tuple(name for name in query.names if self.retriever.knows(name))
        alone = self.retriever.search(question, k, names=known).hits
        if bool(alone) and any(self.retriever.identifies(name, alone[0].paper) for name in known):
            return Searched(question, alone, named=alone[0].paper)
        if len(known) < len(query.names):
            return Searched(question, alone, unknown_names=True)
        followup = followup_query(query.text, conversation)
        pointing_back = refers_back(query.text)
        if followup and (pointing_back or not (alone and self._covers_question(query, alone[0].paper))):
            search, carried_ids = Words.of(followup[0]), followup[1]
            hits = self.retriever.search(search, k, include=carried_ids, names=known).hits
            # A question that points back is incomplete by design: it is covered with what it points
            # to. One that does not must be covered on its own, or it is not about that topic.
            wanted = search if pointing_back else question
            if any(self._covers(wanted, paper) for paper in self._papers(hits[:1], carried_ids)):
                return Searched(search, hits, followed=True)
        return Searched(question, alone)

    def _lexical_outcome(self, query: Query, searched: "Searched") -> str:
        if searched.unknown_names or not searched.hits:
            return "out_of_corpus"
        paper = searched.hits[0].paper
        if searched.named:
            # The question names its paper: what that abstract lacks is not stated, not out of scope;
            # so is a dataset or metric it names that the abstract does not ("NMI on Cora").
            holds_names = all(self.retriever.holds(name, paper) for name in query.names)
            covered = holds_names and self._covers_question(query, paper) and states(query, paper)
            return "answer" if covered else "not_stated"
        if not (searched.followed or self._covers_question(query, paper)):
            return "out_of_corpus"
        return "answer" if states(query, paper) else "not_stated"

    def _evidence(self, query: Query, search: Words, hits: list[Hit]) -> list[Source]:
        own_terms, search_terms = query.words.terms, search.terms
        weight = max(map(self.retriever.term_weight, own_terms), default=0.0)

        def best_sentences(paper: Paper, count: int) -> list[str]:
            # A follow-up's sentences answer its own words ("how much faster"); the earlier turn's
            # words only choose among sentences that hold none of them. Each part of the question
            # gets the sentence that answers it as well (the one quoted if the model leaves it out).
            name = name_in_title(paper.title)
            bonus = answer_bonus(query, name, weight, query.names)
            chosen = self.retriever.best_sentences(own_terms, paper, count, search_terms, bonus)
            chosen += [self._part_sentence(part, paper, query) for part in query.parts]
            return sorted(set(chosen) - {None}, key=paper.text.index)

        papers = [(hit.paper, hit.score) for hit in self._evidence_papers(hits)]
        return select_evidence(
            papers, best_sentences, self.model.count_tokens, self.settings.evidence_sentences, self.settings.evidence_tokens
        )

    def _part_sentence(self, part: Part, paper: Paper, query: Query) -> str | None:
        """The sentence of the paper that best answers one part of the question: of those that hold
        what it asks for (a number for "how many"), the one that matches it most; else the best
        match; None when no sentence holds any of its words."""
        terms = part.topic_terms
        states = asked_for(part, name_in_title(paper.title), query.names)
        sentences = split_sentences(paper.text)
        weights = [self._matched(terms, sentence) for sentence in sentences]
        answering = [i for i, sentence in enumerate(sentences) if states and states(sentence, weights[i])]
        best = max(answering or range(len(sentences)), key=lambda i: (weights[i], -i))
        return sentences[best] if weights[best] > 0 else None

    def _unanswered_parts(self, query: Query, shown: list[CheckedSentence], best: Source) -> list[str]:
        """For each part of the question, the best source's sentence that answers it (a number for
        "how many", another name for "which dataset"), to be quoted after the shown sentences unless
        one of them answers it too: holds what it asks for and comes from a sentence that matches
        the part nearly as well. A kept "two types of attacks" holds a number, but not the success
        rate asked for. A part that asks for nothing in particular is answered by a sentence sharing
        its words, and only looked for when the question asks more than one thing."""
        name = name_in_title(best.paper.title)
        quoted: list[str] = []
        for part in query.parts:
            states = asked_for(part, name, query.names)
            if states is None and len(query.parts) == 1:
                continue
            holds = states or (lambda sentence, matched: matched > 0)
            terms = part.topic_terms
            candidate = self._part_sentence(part, best.paper, query)
            if not candidate or not holds(candidate, needed := self._matched(terms, candidate)):
                continue
            answered = [(sentence.claim, sentence.evidence) for sentence in shown] + [(q, q) for q in quoted]
            if not any(holds(claim, matched := self._matched(terms, evidence)) and matched >= ANSWERED_SHARE * needed
                       for claim, evidence in answered):
                quoted.append(candidate)
        return quoted

    def _matched(self, terms: frozenset[str], sentence: str) -> float:
        return matched_weight(terms, sentence, self.retriever.term_weight, document_terms)

    def _evidence_papers(self, hits: list[Hit]) -> list[Hit]:
        """The best paper, and those of the next that score close to it (the judge decides which of
        them answer the question)."""
        best = hits[: self.settings.evidence_papers]
        return best[:1] + [hit for hit in best[1:] if hit.score >= self.settings.evidence_min_score_share * best[0].score]

    def _covers_question(self, query: Query, paper: Paper) -> bool:
        """A chatty question is covered when the part that asks is, or the whole of it is: the
        asker's situation adds words no abstract holds ("we only have two GPUs")."""
        return self._covers(query.words, paper) or (query.asking != query.text and self._covers(query.asking_words, paper))

    def _covers(self, words: Words, paper: Paper) -> bool:
        coverage = self.retriever.coverage(words, paper)
        settings = self.settings
        return coverage.enough(settings.min_coverage, settings.min_shared_words, settings.short_question_words)

    def _papers(self, hits: list[Hit], paper_ids: tuple[str, ...]) -> list[Paper]:
        return [hit.paper for hit in hits] + [corpus.paper(paper_id) for paper_id in paper_ids if (corpus := self.retriever.corpus).has(paper_id)]

    def _messages(self, query: Query, sources: list[Source]) -> list[dict[str, str]]:
        folder = self.settings.prompts_dir
        user = render_prompt(
            folder, "answer", evidence=numbered_evidence(sources), question=query.text, language=LANGUAGE_NAMES[query.lang],
        )
        return [{"role": "system", "content": render_prompt(folder, "system")}, {"role": "user", "content": user}]

    def prompt_messages(self, answer: "Answer") -> list[dict[str, str]]:
        """The messages the model was given for `answer` (for benchmarks against the raw model)."""
        return self._messages(analyse(answer.question), answer.evidence)


class Draft:
    """An answer being put together: what is known of it so far, and the sentences shown."""

    def __init__(self, query: Query, search: str, hits: list[Hit], model: str, started: float, retrieval_ms: float):
        self.query, self.search, self.hits, self.model = query, search, hits, model
        self.started, self.retrieval_ms = started, retrieval_ms
        self.first_token_ms: float | None = None
        self.missing_shards: tuple[str, ...] = ()
        self.shown: list[CheckedSentence] = []
        self.separators: list[str] = []
        # Puts a sentence into the asker's language (None: it could not), when the model can.
        self.translate: Callable[[CheckedSentence], CheckedSentence | None] | None = None

    def present(self, sentence: CheckedSentence | None, sources: list[Source], separator: str | None = None):
        """Show a kept sentence, in the asker's language: a sentence in the other language becomes a
        marked quotation of its evidence. The same text twice is shown once."""
        if sentence is None:
            return
        source = next(source for source in sources if source.marker == sentence.marker)
        if self.translate and detect_language(sentence.claim) != self.query.lang:
            sentence = self.translate(sentence) or sentence
        sentence = in_language(sentence, source, self.query.lang)
        sentence = replace(sentence, text=shown_answer(sentence.text, {sentence.marker}))
        if any(sentence.text == earlier.text for earlier in self.shown):
            return
        if separator is None:
            separator = "" if not self.shown or self.shown[-1].text.endswith(CHINESE_ENDS) else " "
        self.shown.append(sentence)
        self.separators.append(separator)
        yield separator + sentence.text

    def text(self) -> str:
        return "".join(separator + sentence.text for separator, sentence in zip(self.separators, self.shown))

    def declined(self, outcome: str, sources: list[Source]) -> Generator[str, None, Answer]:
        """That the collection does not cover the question (no sources), or that the abstract of the
        paper asked about, the first source, does not state it."""
        if outcome == "out_of_corpus":
            yield ABSTENTION[self.query.lang]
            return self.finish(ABSTENTION[self.query.lang], "out_of_corpus", "abstained")
        text = not_stated_text(self.query, sources[0].paper)
        yield text
        return self.finish(text, "not_stated", "abstained", sources=sources)

    def finish(self, text, outcome, path, sources=(), generated="", dropped=()) -> Answer:
        citations = citations_for(self.shown, list(sources))  # none shown, none cited: a decline shows nothing
        timings = Timings(self.retrieval_ms, self.first_token_ms, elapsed_ms(self.started))
        return Answer(self.query.text, text, outcome, path, citations, self.hits, list(sources), self.model, timings,
                      self.search, generated, list(dropped), missing_shards=self.missing_shards)


def quote(source: Source, sentence: str) -> CheckedSentence:
    """An evidence sentence quoted with its marker: the answer when the model's is unusable, or
    what it left out."""
    return CheckedSentence(with_marker(sentence, source.marker), sentence, source.marker, sentence)


def in_language(sentence: CheckedSentence, source: Source, lang: str) -> CheckedSentence:
    """The sentence if it is in the asker's language; else its evidence, quoted verbatim and marked
    as a quotation from an abstract in the other language (the small models cannot translate)."""
    if detect_language(sentence.claim) == lang:
        return sentence
    quoted = TRAILING_PUNCTUATION.sub("", sentence.evidence)
    frame = QUOTED_FRAME[lang][source.paper.lang]
    return CheckedSentence(frame.format(marker=sentence.marker, quote=quoted), sentence.claim, sentence.marker, sentence.evidence)


def states(query: Query, paper: Paper) -> bool:
    """Whether the paper's abstract can hold what is asked: for what abstracts rarely say (who
    wrote it, when, where, on what hardware), a sentence that says it; for a number, a sentence
    with a number and some of the words of the part that asks for it, the paper's name aside."""
    sentences = split_sentences(paper.text)
    if query.asks == "metadata":
        return any(states_metadata(query.metadata, sentence) for sentence in sentences)
    numbered = [frozenset(document_terms(sentence)) for sentence in sentences if NUMERAL.search(sentence)]
    ignored = question_frame_terms() | query.name_terms
    for part in query.parts:
        focus = {unit for unit in part.words.term_units if not unit & ignored}
        if part.asks == "number" and focus and not any(unit & terms for unit in focus for terms in numbered):
            return False
    return True


def not_stated_text(query: Query, paper: Paper) -> str:
    english, chinese = NOT_STATED_WHAT[query.metadata]
    return NOT_STATED[query.lang].format(title=paper.title, what=english if query.lang == "en" else chinese)


def citations_for(kept: list[CheckedSentence], sources: list[Source]) -> list[Citation]:
    """One citation per marker used, quoting the stretch of the abstract that holds its evidence."""
    by_marker = {source.marker: source for source in sources}
    citations = []
    for marker in sorted({sentence.marker for sentence in kept}):
        paper = by_marker[marker].paper
        cited = [sentence for sentence in kept if sentence.marker == marker]
        spans = tuple(dict.fromkeys(span for sentence in cited for span in answer_spans(sentence.claim, sentence.evidence)))
        citations.append(Citation(marker, paper, enclosing_span(paper.text, [s.evidence for s in cited]), spans))
    return citations


def enclosing_span(text: str, parts: list[str]) -> str:
    """The part of `text` from the first to the last of `parts` (each a substring of it)."""
    starts = [text.index(part) for part in parts]
    ends = [start + len(part) for start, part in zip(starts, parts)]
    return text[min(starts) : max(ends)]


def remember(conversation: Conversation, answer: Answer) -> None:
    cited = tuple(citation.paper.paper_id for citation in answer.citations)
    conversation.turns.append(Turn(answer.question, answer.query, cited))


def require_question(question: str) -> str:
    """The question normalised once (qa_bot.text.hygiene); nothing left of it is bad input."""
    return require_text(question, "empty question: ask something about the papers")


def elapsed_ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
