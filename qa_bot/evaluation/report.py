"""Evaluation reports: the JSON record of a run, its Markdown report and PNG chart, the terminal
table, the gates, and the comparison of two runs.

The JSON names the model file (with its SHA-256), the corpus hash and the question-set hash, so
that two runs can be told apart and compared (`qa-bot eval --compare A.json B.json`).
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path

from qa_bot.collection.corpus import Corpus
from qa_bot.errors import BadInputError, QaBotError
from qa_bot.evaluation.evaluate import DIRECTIONS, QuestionResult, breakdown, summarize
from qa_bot.evaluation.questions import KINDS, QuestionSet
from qa_bot.settings import Settings

# (key in the summary, column heading); ratios print as 0.00, times as whole milliseconds
FIGURES = [
    ("recall@1", "R@1"), ("recall@5", "R@5"), ("mrr", "MRR"), ("ndcg@10", "nDCG@10"),
    ("citation_precision", "cite P"), ("citation_recall", "cite R"), ("cited_sentences", "cited sent"),
    ("supported_citations", "supported"), ("facts_present", "facts"), ("asker_language", "language"), ("generated", "generated"),
    ("outcome_accuracy", "outcome"), ("not_stated_recall", "not-stated R"), ("not_stated_precision", "not-stated P"),
    ("refusal_recall", "declined"), ("refusal_precision", "refusal P"), ("false_refusals", "false ref"),
    ("first_token_ms_median", "1st tok med"), ("first_token_ms_p95", "1st tok p95"),
    ("total_ms_median", "total med"), ("total_ms_p95", "total p95"),
]
CHART_FIGURES = [("recall@5", "Recall@5"), ("citation_precision", "citation precision"),
                 ("facts_present", "facts present"), ("refusal_recall", "unanswerable declined")]
NOT_ANSWERABLE = ("unanswerable", "not_stated")
SETTINGS_RECORDED = (
    "top_k", "bm25_variant", "bm25_k1", "bm25_b", "min_coverage", "min_shared_words", "short_question_words", "judge_threshold",
    "evidence_papers", "evidence_sentences", "evidence_min_score_share", "evidence_tokens", "max_answer_tokens", "n_threads",
)


def run_meta(settings: Settings, model: dict | None, corpus: Corpus, questions: QuestionSet) -> dict:
    """`model`: `model_meta` of the GGUF, `server_meta` of a model server, None for retrieval only."""
    return {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "qa_bot": version("qa-bot"),
        "retrieval_only": model is None,
        "model": model,
        "corpus": {"folder": str(corpus.folder), "hash": corpus.content_hash, "papers": corpus.paper_count,
                   "records": corpus.record_count},
        "questions": {"file": str(questions.path), "sha256": questions.sha256, "count": len(questions.questions)},
        "settings": {name: getattr(settings, name) for name in SETTINGS_RECORDED},
    }


def model_meta(path: Path) -> dict:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 22), b""):
            digest.update(block)
    return {"file": path.name, "path": str(path), "bytes": path.stat().st_size, "sha256": digest.hexdigest()}


def server_meta(name: str, url: str) -> dict:
    """A model server's model: its weights are not here to hash."""
    return {"file": name, "server": url}


def build_report(results: list[QuestionResult], meta: dict) -> dict:
    return {
        "meta": meta,
        "overall": summarize(results),
        "by_kind": breakdown(results, lambda r: r.question.kind, KINDS),
        "by_direction": breakdown(results, lambda r: r.direction, DIRECTIONS),
        "questions": [question_record(result) for result in results],
    }


def question_record(result: QuestionResult) -> dict:
    question, answer = result.question, result.answer
    record = {
        "id": question.id, "question": question.question, "kind": question.kind, "lang": question.lang,
        "direction": result.direction, "context": question.context, "gold": result.gold, "query": result.query,
        "ranking": [{"rank": hit.rank, "paper_id": hit.paper.paper_id, "title": hit.paper.title,
                     "score": round(hit.score, 4), "gold": hit.paper.paper_id in result.gold} for hit in result.ranking],
        "retrieval": result.retrieval, "abstained": result.abstained, "outcome": result.outcome,
    }
    if answer is None:
        return record
    checks = result.checks
    return record | {
        "answer": answer.text, "path": answer.path, "dropped": answer.dropped,
        "citations": [{"marker": c.marker, "paper_id": c.paper.paper_id, "title": c.paper.title,
                       "gold": c.paper.paper_id in result.gold, "evidence": c.evidence} for c in answer.citations],
        "sentences": checks.sentences, "cited_sentences": checks.cited_sentences,
        "citations_checked": checks.citations, "citations_supported": checks.supported,
        "facts": question.facts, "facts_present": checks.facts_present, "in_asker_language": checks.in_asker_language,
        "timings_ms": {"retrieval": round(answer.timings.retrieval_ms, 1),
                       "first_token": None if answer.timings.first_token_ms is None else round(answer.timings.first_token_ms, 1),
                       "total": round(answer.timings.total_ms, 1)},
    }


def formatted(key: str, value) -> str:
    if value is None:
        return "–"
    if key.endswith("_ms_median") or key.endswith("_ms_p95"):
        return f"{value:.0f} ms"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def figures_table(report: dict, markdown: bool) -> str:
    """One row per group (all, each kind, each direction), one column per figure measured."""
    rows = [("all", report["overall"])] + list(report["by_kind"].items()) + list(report["by_direction"].items())
    keys = [(key, heading) for key, heading in FIGURES if any(group.get(key) is not None for _, group in rows)]
    header = ["group", "n"] + [heading for _, heading in keys]
    body = [[name, str(group["questions"])] + [formatted(key, group.get(key)) for key, _ in keys] for name, group in rows]
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in body])
    widths = [max(len(row[i]) for row in [header] + body) for i in range(len(header))]
    return "\n".join("  ".join(cell.rjust(width) for cell, width in zip(row, widths)) for row in [header] + body)


def text_report(report: dict) -> str:
    """The terminal table, and the citation check's figures when labelled cases were given."""
    lines = [figures_table(report, markdown=False)]
    if "citation_check" in report:
        lines.append(check_line(report["citation_check"]))
    return "\n".join(lines)


def check_line(check: dict) -> str:
    kept = ", ".join(f"{label} {check['kept'][label]}/{check['totals'][label]}" for label in check["totals"])
    return (f"citation check on {check['cases']} labelled sentences ({check['file']}): precision "
            f"{formatted('precision', check['precision'])}, recall {formatted('recall', check['recall'])}; kept: {kept}")


def markdown_report(report: dict) -> str:
    meta = report["meta"]
    model = meta["model"]
    lines = [
        "# qa-bot evaluation", "",
        f"- created: {meta['created']} · qa-bot {meta['qa_bot']}",
        "- model: none (retrieval only)" if not model else f"- model: {model['file']} (a model server)"
        if "server" in model else f"- model: {model['file']} (sha256 {model['sha256'][:16]}…, {model['bytes']:,} bytes)",
        f"- corpus: {meta['corpus']['folder']} · {meta['corpus']['papers']} papers · hash {meta['corpus']['hash'][:16]}…",
        f"- questions: {meta['questions']['file']} · {meta['questions']['count']} · sha256 {meta['questions']['sha256'][:16]}…",
        "- settings: " + ", ".join(f"{name} {value}" for name, value in meta["settings"].items()),
        "", "## Figures", "",
        "Ratios are shares (0 to 1); R@k, MRR and nDCG@10 at paper level over answerable questions; "
        "cite P/R against the gold papers; 'declined' is the share of unanswerable questions declined, "
        "'false ref' the share of answerable ones declined.", "",
        figures_table(report, markdown=True), "",
    ]
    if "citation_check" in report:
        lines += [check_line(report["citation_check"]), ""]
    lines += misses(report["questions"])
    return "\n".join(lines) + "\n"


def misses(records: list[dict]) -> list[str]:
    """The questions behind the figures that fell short, so a change can be traced to them."""
    sections = {
        "Gold paper not in the top 5": [r for r in records if r["retrieval"].get("recall@5", 1.0) < 1.0],
        "Answerable but declined": [r for r in records if r["kind"] not in NOT_ANSWERABLE and r["abstained"]],
        "Unanswerable but answered": [r for r in records if r["kind"] == "unanswerable" and not r["abstained"]],
        "Not stated, but not said so": [r for r in records if r["kind"] == "not_stated" and r["outcome"] != "not_stated"],
        "Answer not in the asker's language": [r for r in records if r.get("in_asker_language") is False],
        "Required facts missing": [r for r in records if r.get("facts_present") is False],
        "Citing a paper that is not gold": [r for r in records if any(not c["gold"] for c in r.get("citations", []))],
    }
    lines = []
    for title, found in sections.items():
        lines += [f"## {title} ({len(found)})", ""]
        for record in found:
            said = f" → {record['answer'][:160]}" if "answer" in record else ""
            lines.append(f"- {record['id']} ({record['kind']}, {record['direction']}): {record['question']}{said}")
        lines.append("")
    return lines


def chart(report: dict, path: Path) -> None:
    """Bars of the main figures for each kind of question."""
    import matplotlib

    matplotlib.use("Agg")  # no display; here, so that commands without a chart skip the import
    from matplotlib import pyplot

    kinds = list(report["by_kind"])
    shown = [(key, label) for key, label in CHART_FIGURES if any(report["by_kind"][k].get(key) is not None for k in kinds)]
    figure, axes = pyplot.subplots(figsize=(10, 5.2), dpi=120)
    width = 0.8 / len(shown)
    for position, (key, label) in enumerate(shown):
        values = [report["by_kind"][kind].get(key) or 0.0 for kind in kinds]
        axes.bar([i + position * width for i in range(len(kinds))], values, width, label=label)
    axes.set_xticks([i + width * (len(shown) - 1) / 2 for i in range(len(kinds))])
    axes.set_xticklabels([f"{kind}\n({report['by_kind'][kind]['questions']})" for kind in kinds])
    axes.set_ylim(0, 1.05)
    axes.set_ylabel("share")
    model = report["meta"]["model"]
    axes.set_title(f"qa-bot evaluation · {model['file'] if model else 'retrieval only'}")
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=len(shown), fontsize=8, frameon=False)
    axes.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path)
    pyplot.close(figure)


def prepare_folder(folder: Path) -> Path:
    """The report folder, made before the evaluation runs, so that a bad --out fails at once."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInputError(f"cannot create the report folder {folder}: {exc.strerror}") from None
    return folder


def write_report(report: dict, folder: Path) -> list[Path]:
    paths = [folder / "eval.json", folder / "eval.md", folder / "eval-by-kind.png"]
    try:
        paths[0].write_text(json.dumps(report, ensure_ascii=False, indent=1), "utf-8")
        paths[1].write_text(markdown_report(report), "utf-8")
        chart(report, paths[2])
    except OSError as exc:
        raise QaBotError(f"cannot write the report in {folder}: {exc.strerror}") from None
    return paths


@dataclass(frozen=True)
class Gate:
    """A figure that must reach a bound: `figure` of `group` ("all" or a direction) at least (or at
    most) `bound`."""

    figure: str
    bound: float
    at_least: bool = True
    group: str = "all"

    def failure(self, report: dict) -> str | None:
        groups = {"all": report["overall"]} | report["by_direction"] | report["by_kind"]
        if "citation_check" in report:
            groups["citation_check"] = report["citation_check"]
        if self.group not in groups:
            return None  # no question of that direction in the set: nothing to hold to the bound
        value = groups[self.group].get(self.figure)
        name = self.figure if self.group == "all" else f"{self.figure} ({self.group})"
        if value is None:
            return f"{name} was not measured (the full evaluation measures it, not --retrieval-only)"
        if (value < self.bound) if self.at_least else (value > self.bound):
            return f"{name} {value:.3f} is {'below' if self.at_least else 'above'} {self.bound}"
        return None


def load_report(path: Path) -> dict:
    try:
        report = json.loads(Path(path).read_text("utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInputError(f"cannot read {path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise BadInputError(f"{path}: not a JSON evaluation report ({exc.msg})") from None
    if not isinstance(report, dict) or not {"meta", "overall", "questions"} <= report.keys():
        raise BadInputError(f"{path}: not an evaluation report of qa-bot eval (no meta/overall/questions)")
    return report


def compare(a: dict, b: dict) -> str:
    """What changed from run A to run B: their differences of set-up, every figure, and the
    questions whose outcome changed."""
    lines = [f"A: {describe(a)}", f"B: {describe(b)}"]
    for label, part in (("corpus", ("corpus", "hash")), ("question set", ("questions", "sha256"))):
        if a["meta"][part[0]][part[1]] != b["meta"][part[0]][part[1]]:
            lines.append(f"note: the {label} differs between the runs; figures are not strictly comparable")
    lines += ["", f"{'figure':<22}{'A':>10}{'B':>10}{'change':>10}"]
    for key, _ in FIGURES:
        old, new = a["overall"].get(key), b["overall"].get(key)
        if old is None and new is None:
            continue
        change = f"{new - old:+.2f}" if old is not None and new is not None else ""
        if change and key.endswith(("_median", "_p95")):
            change = f"{new - old:+.0f} ms"
        lines.append(f"{key:<22}{formatted(key, old):>10}{formatted(key, new):>10}{change:>10}")
    changed = changed_questions(a["questions"], b["questions"])
    lines += ["", f"questions whose outcome changed: {len(changed)}"] + [f"  {line}" for line in changed]
    return "\n".join(lines)


def describe(report: dict) -> str:
    meta = report["meta"]
    model = meta["model"]["file"] if meta.get("model") else "retrieval only"
    return f"{model} · {meta['questions']['count']} questions · {meta['created']}"


def changed_questions(a: list[dict], b: list[dict]) -> list[str]:
    before = {record["id"]: record for record in a}
    lines = []
    for record in b:
        old = before.get(record["id"])
        if old is None:
            continue
        changes = [
            f"{name} {old_value} → {new_value}"
            for name, old_value, new_value in (
                ("recall@5", old["retrieval"].get("recall@5"), record["retrieval"].get("recall@5")),
                ("declined", old["abstained"], record["abstained"]),
                ("outcome", old.get("outcome"), record.get("outcome")),
                ("facts", old.get("facts_present"), record.get("facts_present")),
                ("path", old.get("path"), record.get("path")),
            )
            if old_value != new_value
        ]
        if changes:
            lines.append(f"{record['id']}: " + "; ".join(changes) + f" · {record['question']}")
    return lines
