"""The `qa-bot` command: a thin layer over the library that prints results and one-line errors.

Exit status (shared/CONTRACT.md): 0 success, 2 bad usage or bad input, 1 any other failure.
"""

import json
import os
import shutil
import socket
import sys
import textwrap
import time
import warnings
from dataclasses import replace
from pathlib import Path

import click
from pydantic import ValidationError

from qa_bot.evaluation import evaluate, report
from qa_bot.answer.assistant import Answer, Assistant, require_question
from qa_bot.answer.conversation import Conversation
from qa_bot.collection.corpus import CorpusIssue, places
from qa_bot.errors import BadInputError, QaBotError, QaBotWarning
from qa_bot.app.export import cited_papers, references_bibtex
from qa_bot.text.hygiene import is_blank, normalize_question
from qa_bot.search.indexing import Progress, collection_folder
from qa_bot.search.shards import build_shards
from qa_bot.answer.llm import MODEL_ALIASES, PACKAGED_MODELS, LanguageModel, has_chat_template, open_model, resolve_model_path
from qa_bot.app.output import answer_json, metadata_line, search_json, to_json
from qa_bot.evaluation.questions import DEFAULT_QUESTIONS, load_check_cases, load_questions
from qa_bot.search.retrieve import Retriever, SearchResult, require_query
from qa_bot.settings import Settings, describe_error

MAX_WARNINGS_SHOWN = 10
LOOPBACK = ("127.0.0.1", "localhost", "::1")
UI_APP = Path(__file__).with_name("ui.py")  # a path, not an import: only `ui` needs Streamlit


def make_settings(**flags) -> Settings:
    """Settings from the environment, overridden by the flags the user passed."""
    try:
        return Settings(**{name: value for name, value in flags.items() if value is not None})
    except ValidationError as exc:
        raise BadInputError(describe_error(exc)) from None


def open_retriever(settings: Settings, progress: Progress | None = None) -> Retriever:
    """The corpus's retriever, its corpus problems reported; the progress of reading files shown on
    a terminal (a script reading stderr gets only warnings and errors), or always with `progress`."""
    retriever = Retriever.open(settings, progress or (Progress() if sys.stderr.isatty() else None))
    report_corpus_issues(retriever.corpus.issues)
    return retriever


def report_corpus_issues(issues: list[CorpusIssue]) -> None:
    for issue in issues[:MAX_WARNINGS_SHOWN]:
        click.echo(f"qa-bot: warning: {issue}", err=True)
    if len(issues) > MAX_WARNINGS_SHOWN:
        click.echo(f"qa-bot: warning: ... and {len(issues) - MAX_WARNINGS_SHOWN} more problems in the corpus", err=True)


def corpus_option(command):
    return click.option(
        "--corpus", type=click.Path(file_okay=False), default=None,
        help="Folder of .txt/.jsonl abstracts (default: the bundled seeds; env QA_BOT_CORPUS).",
    )(command)


def strict_option(command):
    return click.option(
        "--strict", is_flag=True, default=None, help="Stop at the first malformed corpus line instead of skipping it."
    )(command)


def shard_options(command):
    """A collection split into shards, on a Ray cluster or in this process (docs/retrieval.md, Shards)."""
    options = [
        click.option("--shards", type=int, default=None, metavar="N",
                     help="The collection's N shards, built by qa-bot index --shards N (env QA_BOT_SHARDS)."),
        click.option("--ray", "ray_address", default=None, metavar="ADDRESS",
                     help="host:port of a Ray cluster's head that holds the shards, or local (env QA_BOT_RAY_ADDRESS)."),
        click.option("--allow-partial", is_flag=True, default=None,
                     help="When a shard is down, answer from the others and mark the result partial."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def model_option(command):
    return click.option(
        "--model", default=None,
        help="A GGUF file, or a packaged model: smollm2, gemma3-270m (default: models/*.gguf; env QA_BOT_MODEL).",
    )(command)


def llm_options(command):
    """Where the answers are written: a model server instead of the local GGUF."""
    options = [
        click.option("--llm-url", default=None, metavar="URL",
                     help="An OpenAI-compatible model server writes the answers, e.g. http://127.0.0.1:8080/v1 "
                          "(env QA_BOT_LLM_URL; its key from QA_BOT_LLM_API_KEY)."),
        click.option("--llm-model", default=None, metavar="NAME",
                     help="Model to ask the server for (default: the first it lists; env QA_BOT_LLM_MODEL)."),
        click.option("--llm-api", type=click.Choice(["chat", "completions"]), default=None,
                     help="chat (default): chat completions; completions: the plain endpoint with qa-bot's "
                          "base-model prompt, for a model without a chat template (env QA_BOT_LLM_API)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, no_args_is_help=True)
def cli():
    """qa-bot: ask questions about a collection of paper abstracts, offline."""


@cli.command()
@click.argument("query", required=False)
@click.option("-k", "top_k", type=click.IntRange(1, 1000), default=None, help="How many papers (default 5).")
@click.option("--json", "as_json", is_flag=True, help="Print the contract's JSON instead of text.")
@corpus_option
@strict_option
@shard_options
def search(query, top_k, as_json, corpus, strict, **shards):
    """Rank papers for QUERY (no model needed). Without QUERY, read one query per line."""
    settings = make_settings(corpus=corpus, top_k=top_k, strict=strict, **shards)
    if query is not None:
        require_query(query)  # before the corpus is read, so a typo costs nothing
    retriever = open_retriever(settings)
    queries = [query] if query is not None else read_queries()
    for text in queries:
        result = retriever.search(text, settings.top_k)
        warn_partial(result.missing_shards)
        click.echo(search_json(result) if as_json else format_search(result))


def warn_partial(missing: tuple[str, ...]) -> None:
    if missing:
        click.echo(f"qa-bot: warning: partial result: {', '.join(missing)} did not answer", err=True)


@cli.command("index")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
@corpus_option
@strict_option
@shard_options
def index_command(as_json, corpus, strict, **shards):
    """Build or update the cached index of the corpus folder: only files whose size or time
    changed are read (every command does this; here with a summary). With --shards N, its N
    shards by paper id (as Ray tasks with --ray)."""
    settings = make_settings(corpus=corpus, strict=strict, **shards)
    started = time.perf_counter()
    if settings.shards:
        summary = shards_summary(build_shards(settings), settings, time.perf_counter() - started)
    else:
        retriever = open_retriever(settings, Progress())
        summary = index_summary(retriever, collection_folder(settings), time.perf_counter() - started)
    click.echo(json.dumps(summary, ensure_ascii=False) if as_json else format_index_summary(summary))


def shards_summary(built: list[dict], settings: Settings, seconds: float) -> dict:
    """`index_summary` for a set of shards, with each shard's papers and folder."""
    records = sum(shard["records"] for shard in built)
    if not records:
        raise BadInputError(f"no abstracts found in {settings.corpus}: it needs corpus files whose records have abstracts")
    files = {name for shard in built for name, positions in shard["files"].items() if len(positions)}
    return {"papers": sum(shard["papers"] for shard in built), "added": sum(shard["added"] for shard in built),
            "removed": sum(shard["removed"] for shard in built), "records": records, "files": len(files),
            "from_cache": all(shard["from_cache"] for shard in built), "seconds": round(seconds, 3),
            "cache": str(Path(built[0]["folder"]).parent),
            "shards": [{"papers": shard["papers"], "folder": shard["folder"]} for shard in built]}


def index_summary(retriever: Retriever, cache: Path, seconds: float) -> dict:
    corpus = retriever.corpus
    added, removed = retriever.changes
    return {"papers": corpus.paper_count, "added": added, "removed": removed, "records": corpus.record_count,
            "files": corpus.file_count, "from_cache": retriever.from_cache, "seconds": round(seconds, 3),
            "cache": str(cache)}


def format_index_summary(summary: dict) -> str:
    change = "unchanged" if summary["from_cache"] else f"{summary['added']:,} added, {summary['removed']:,} removed"
    shards = summary.get("shards")
    sizes = ", ".join(f"{shard['papers']:,}" for shard in shards or ())
    where = f"{len(shards)} shards ({sizes} papers) in {summary['cache']}" if shards else f"index in {summary['cache']}"
    return (f"{summary['papers']:,} papers ({change}) from {summary['records']:,} records in {summary['files']:,} "
            f"files, in {summary['seconds']:.1f} s; {where}")


@cli.command()
@click.argument("question")
@click.option("-k", "top_k", type=click.IntRange(1, 1000), default=None, help="How many papers to retrieve (default 5).")
@click.option("--json", "as_json", is_flag=True, help="Print the contract's JSON instead of streaming text.")
@click.option("--bibtex", is_flag=True, help="Print only the cited papers, as BibTeX (for a reference manager).")
@corpus_option
@model_option
@llm_options
@strict_option
@shard_options
def ask(question, top_k, as_json, bibtex, corpus, model, strict, **llm):
    """Answer QUESTION from the papers, citing them, with a local model (or a model server)."""
    if as_json and bibtex:
        raise click.UsageError("--json and --bibtex each choose the output: pass one of them")
    settings = make_settings(corpus=corpus, top_k=top_k, model=model, strict=strict, **llm)
    require_question(question)
    assistant = open_assistant(settings)
    if bibtex:
        print_cited_bibtex(assistant, question)
    else:
        answer_once(assistant, question, None, as_json)


@cli.command()
@click.option("-k", "top_k", type=click.IntRange(1, 1000), default=None, help="How many papers to retrieve (default 5).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per turn (JSONL) instead of text.")
@corpus_option
@model_option
@llm_options
@strict_option
@shard_options
def chat(top_k, as_json, corpus, model, strict, **llm):
    """A conversation: follow-up questions refer to earlier turns. On a terminal, a prompt; from a
    pipe, one question per line."""
    settings = make_settings(corpus=corpus, top_k=top_k, model=model, strict=strict, **llm)
    assistant = open_assistant(settings)
    conversation = Conversation()
    worst = 0
    for question in read_queries("you> ", "Ask about the papers; an empty line or Ctrl-D quits."):
        try:
            answer_once(assistant, question, conversation, as_json)
        except QaBotError as exc:
            # One bad turn (a prompt too long for the model, say) must not end the conversation.
            worst = max(worst, exc.exit_code)
            report_turn_error(question, exc, as_json)
    if worst:
        sys.exit(worst)


def report_turn_error(question: str, exc: QaBotError, as_json: bool) -> None:
    """The failed turn: one line on stderr, and in JSONL a line of its own, so that lines and turns
    still correspond."""
    click.echo(f"qa-bot: error: {exc}", err=True)
    if as_json:
        click.echo(to_json({"question": question, "error": str(exc)}))


@cli.command()
@model_option
@llm_options
def models(model, **llm):
    """Show the backend and model that ask/chat would use: a model server (which it is asked for
    its model), or the local GGUF, placing the default packaged model in models/ first if no model
    is there (the set-up command runs this)."""
    settings = make_settings(model=model, **llm)
    if settings.llm_url:
        server = open_model(settings)
        click.echo(f"backend: model server {server.url} (api {settings.llm_api})")
        click.echo(f"model: {server.model_id()}")
    else:
        click.echo("backend: in-process llama.cpp")
        click.echo(f"model: {resolve_model_path(settings)}")
    aliases = [f"{alias} ({name})" for alias, name in MODEL_ALIASES.items()]
    click.echo("packaged (use with --model NAME): " + ", ".join([*PACKAGED_MODELS, *aliases]))


def gate_option(flag: str, help_text: str):
    return click.option(flag, type=click.FloatRange(0, 1), default=None, help=help_text)


@cli.command("eval")
@click.option("--questions", "questions_file", type=click.Path(dir_okay=False), default=None,
              help="Question set, JSONL (default: the bundled qa_bot/data/questions.jsonl).")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Folder for eval.json (every question), eval.md and eval-by-kind.png.")
@click.option("--json", "as_json", is_flag=True, help="Print the whole report as JSON instead of the table.")
@click.option("--limit", type=click.IntRange(1), default=None, help="Only the first N questions.")
@click.option("--retrieval-only", is_flag=True, help="No model: retrieval and abstention figures only.")
@click.option("--check-cases", type=click.Path(dir_okay=False), default=None,
              help="Labelled answer sentences (JSONL): the citation check's precision and recall on them.")
@click.option("--compare", nargs=2, type=click.Path(dir_okay=False), default=None, metavar="A.json B.json",
              help="Show what changed between two saved reports (nothing is run).")
@gate_option("--min-recall5", "Fail (exit 1) if Recall@5 over all questions is lower.")
@gate_option("--min-recall5-cross", "Fail if Recall@5 of either cross-language direction (en→zh, zh→en) is lower.")
@gate_option("--min-mrr", "Fail if MRR is lower.")
@gate_option("--min-citation-precision", "Fail if citation precision is lower.")
@gate_option("--min-facts", "Fail if the share of answers with all required facts is lower.")
@gate_option("--min-refusal-recall", "Fail if the share of unanswerable questions declined is lower.")
@gate_option("--max-false-refusals", "Fail if the share of answerable questions declined is higher.")
@gate_option("--min-not-stated-recall", "Fail if the share of not-stated questions said to be not stated is lower.")
@gate_option("--min-multi-recall", "Fail if the citation recall of multi-paper questions is lower.")
@gate_option("--min-language", "Fail if the share of answers in the asker's language is lower.")
@gate_option("--min-check-precision", "Fail if the citation check's precision on --check-cases is lower.")
@corpus_option
@model_option
@llm_options
@strict_option
@shard_options
def evaluate_command(questions_file, out, as_json, limit, retrieval_only, check_cases, compare, corpus, model, strict,
                     llm_url, llm_model, llm_api, shards, ray_address, allow_partial, **gates):
    """Run the question set through the pipeline and report retrieval, citation, answer,
    abstention and speed figures, overall, by kind and by language direction."""
    if compare:
        click.echo(report.compare(report.load_report(compare[0]), report.load_report(compare[1])))
        return
    settings = make_settings(corpus=corpus, model=model, strict=strict, llm_url=llm_url, llm_model=llm_model,
                             llm_api=llm_api, shards=shards, ray_address=ray_address, allow_partial=allow_partial)
    settings = settings.model_copy(update={"top_k": max(settings.top_k, evaluate.RANKING_DEPTH)})
    out_folder = report.prepare_folder(Path(out)) if out else None
    question_set = load_questions(Path(questions_file) if questions_file else DEFAULT_QUESTIONS)
    if limit:
        question_set = replace(question_set, questions=question_set.questions[:limit])
    retriever = open_retriever(settings)
    gold = question_set.gold_papers(retriever.corpus)
    writer = None if retrieval_only else open_model(settings)
    assistant = Assistant(retriever, writer, settings)
    with click.progressbar(length=len(question_set.questions), label="evaluating", file=sys.stderr,
                           item_show_func=lambda question_id: question_id) as bar:
        results = evaluate.evaluate(assistant, question_set, gold, retrieval_only,
                                    lambda question: bar.update(1, question.id))
    result = report.build_report(results, report.run_meta(settings, writer_meta(settings, writer), retriever.corpus,
                                                          question_set))
    if check_cases:
        cases = load_check_cases(Path(check_cases), retriever.corpus)
        result["citation_check"] = evaluate.check_figures(cases, assistant.judge) | {"file": check_cases}
    click.echo(json.dumps(result, ensure_ascii=False) if as_json else report.text_report(result))
    if out_folder:
        for path in report.write_report(result, out_folder):
            click.echo(f"wrote {path}", err=True)
    failures = [failure for gate in gates_of(**gates) if (failure := gate.failure(result))]
    for failure in failures:
        click.echo(f"qa-bot: gate failed: {failure}", err=True)
    if failures:
        sys.exit(1)


def writer_meta(settings: Settings, writer: LanguageModel | None) -> dict | None:
    """What the report records of the model: the GGUF (hashed), or the model server's model."""
    if writer is None:
        return None
    if settings.llm_url:
        return report.server_meta(writer.name, writer.url)
    return report.model_meta(resolve_model_path(settings).resolve())


def gates_of(min_recall5, min_recall5_cross, min_mrr, min_citation_precision, min_facts, min_refusal_recall,
             max_false_refusals, min_not_stated_recall, min_multi_recall, min_language,
             min_check_precision) -> list[report.Gate]:
    wanted = [
        ("recall@5", min_recall5, True), ("mrr", min_mrr, True), ("citation_precision", min_citation_precision, True),
        ("facts_present", min_facts, True), ("refusal_recall", min_refusal_recall, True),
        ("false_refusals", max_false_refusals, False), ("not_stated_recall", min_not_stated_recall, True),
        ("asker_language", min_language, True),
    ]
    gates = [report.Gate(figure, bound, at_least) for figure, bound, at_least in wanted if bound is not None]
    if min_check_precision is not None:
        gates.append(report.Gate("precision", min_check_precision, True, "citation_check"))
    if min_multi_recall is not None:
        gates.append(report.Gate("citation_recall", min_multi_recall, True, "multi"))
    if min_recall5_cross is not None:
        gates += [report.Gate("recall@5", min_recall5_cross, True, direction) for direction in evaluate.CROSS_LANGUAGE]
    return gates


@cli.command()
@click.option("--port", type=click.IntRange(1, 65535), default=8501, show_default=True, help="Port to serve the chat on.")
@click.option(
    "--host", default="127.0.0.1", show_default=True,
    help="Address to listen on; 0.0.0.0 also lets other machines reach the chat.",
)
@corpus_option
@model_option
@llm_options
@strict_option
@shard_options
def ui(port, host, corpus, model, strict, **llm):
    """Start the chat in the browser (Streamlit) and print the address to open. Ctrl-C stops it."""
    settings = make_settings(corpus=corpus, model=model, strict=strict, **llm)
    require_free_port(host, port)
    shown_host = "localhost" if host in ("127.0.0.1", "localhost") else host
    click.echo(f"qa-bot: the chat is starting at http://{shown_host}:{port}  (open it in a browser; Ctrl-C stops it)")
    sys.stdout.flush()  # exec replaces the process: what is buffered would be lost
    command = [sys.executable, "-m", "streamlit", "run", str(UI_APP), *streamlit_flags(host, port)]
    os.execve(sys.executable, command, ui_environment(settings, corpus, model, strict, llm))


@cli.command()
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True, help="Port to serve on.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; 0.0.0.0 lets other machines in (set QA_BOT_API_TOKEN then).")
@corpus_option
@model_option
@llm_options
@strict_option
@shard_options
def serve(port, host, corpus, model, strict, **llm):
    """Serve qa-bot over HTTP: /v1/search, /v1/ask, an OpenAI-compatible /v1/chat/completions, API
    docs at /docs. Ctrl-C stops it."""
    import uvicorn  # here, so that the other commands do not pay for the web stack

    from qa_bot.app.service import create_app

    settings = make_settings(corpus=corpus, model=model, strict=strict, **llm)
    require_free_port(host, port)
    app = create_app(open_assistant(settings))
    if host not in LOOPBACK and settings.api_token is None:
        click.echo(f"qa-bot: warning: serving on {host} without QA_BOT_API_TOKEN: anyone who reaches it can ask", err=True)
    click.echo(f"qa-bot: serving at http://{host}:{port}  (API docs at /docs; Ctrl-C stops it)")
    sys.stdout.flush()
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


@cli.command("serve-model")
@model_option
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True, help="Port to serve on.")
def serve_model(model, port):
    """Run llama-cpp-python's OpenAI-compatible server for a GGUF (default: the one ask would use)
    on 127.0.0.1, and print the --llm-url to point qa-bot at it. QA_BOT_LLM_API_KEY, when set, is the
    key it requires. Ctrl-C stops it."""
    settings = make_settings(model=model)
    path = resolve_model_path(settings).resolve()
    api = "chat" if has_chat_template(path) else "completions"
    require_free_port("127.0.0.1", port)
    flags = "" if api == "chat" else " --llm-api completions  (a base model: no chat template)"
    click.echo(f"qa-bot: model server for {path.name} starting; use --llm-url http://127.0.0.1:{port}/v1{flags}")
    sys.stdout.flush()  # exec replaces the process: what is buffered would be lost
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(path), "--model_alias", path.name,
        "--host", "127.0.0.1", "--port", str(port), "--n_threads", str(settings.n_threads),
        "--n_ctx", str(settings.n_ctx), "--verbose", "false",
        # By default a request that arrives cuts off the one being answered (its stream just ends):
        # qa-bot sends several at once, so they queue instead.
        "--interrupt_requests", "false",
    ]
    env = dict(os.environ)
    if settings.llm_api_key:  # the server reads its key from API_KEY: not on the command line, where ps shows it
        env["API_KEY"] = settings.llm_api_key.get_secret_value()
    os.execve(sys.executable, command, env)


def streamlit_flags(host: str, port: int) -> list[str]:
    """Serve on `host:port` with nothing that reaches the network (usage statistics off) and no
    developer tools or stack traces in the page."""
    options = {
        "server.address": host,
        "server.port": port,
        "server.headless": "true",
        "server.fileWatcherType": "none",
        "browser.gatherUsageStats": "false",
        "client.toolbarMode": "viewer",
        "client.showErrorDetails": "none",
    }
    return [f"--{name}={value}" for name, value in options.items()]


def ui_environment(settings: Settings, corpus, model, strict, llm: dict) -> dict[str, str]:
    """The environment of the Streamlit server: the flags the user passed become QA_BOT_*
    variables, which the app's `Settings()` reads."""
    env = dict(os.environ)
    if corpus is not None:
        env["QA_BOT_CORPUS"] = str(settings.corpus.resolve())
    if model is not None:
        env["QA_BOT_MODEL"] = str(Path(model).resolve()) if Path(model).exists() else model
    if strict:
        env["QA_BOT_STRICT"] = "true"
    for name, value in llm.items():  # the model server's, and the shards' (--shards, --ray, --allow-partial)
        if value is not None:
            env[f"QA_BOT_{name.upper()}"] = str(value).lower() if isinstance(value, bool) else str(value)
    return env


def require_free_port(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server will
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise QaBotError(f"cannot serve on {host}:{port}: {exc.strerror} (pass --port N or --host ADDRESS)") from None


def open_assistant(settings: Settings) -> Assistant:
    return Assistant(open_retriever(settings), open_model(settings), settings)


def answer_once(assistant: Assistant, question: str, conversation: Conversation | None, as_json: bool) -> None:
    """Answer one question: the contract's JSON, or the text streamed as it is checked, then its sources."""
    stream = assistant.ask(question, conversation)
    for piece in stream:
        if not as_json:
            click.echo(piece, nl=False)
    warn_partial(stream.answer.missing_shards)
    click.echo(answer_json(stream.answer) if as_json else "\n" + format_sources(stream.answer))


def print_cited_bibtex(assistant: Assistant, question: str) -> None:
    """The answer's cited papers as BibTeX on stdout; a warning when it cites none."""
    stream = assistant.ask(question, None)
    for _ in stream:
        pass  # the BibTeX needs the checked answer, not its text
    papers = cited_papers([stream.answer])
    if papers:
        click.echo(references_bibtex(papers), nl=False)
    else:
        click.echo("qa-bot: warning: the answer cites no paper, so there is no BibTeX to print", err=True)


def read_queries(prompt: str = "search> ", hint: str = "Type a query and press Enter; an empty line or Ctrl-D quits."):
    """Lines typed at a prompt on a terminal, or one per line from a pipe, normalised; blank ones
    (nothing but white space, control or zero-width characters) are skipped, or end a terminal
    session. Bytes that are not UTF-8 arrive as U+FFFD, never as themselves."""
    sys.stdin.reconfigure(errors="replace")
    if sys.stdin.isatty():
        click.echo(hint, err=True)
        while True:
            try:
                line = normalize_question(input(prompt))
            except EOFError:
                return
            if is_blank(line):
                return
            yield line
    else:
        lines = (normalize_question(line) for line in sys.stdin)
        yield from (line for line in lines if not is_blank(line))


def format_sources(answer: Answer) -> str:
    if answer.abstained:
        if not answer.hits:
            return ""
        lines = ["Closest papers (not cited):"]
        for hit in answer.hits[:3]:
            lines += [f"  - {hit.paper.title} · {places(hit.paper.locations)}", *metadata_lines(hit.paper, "    ")]
        return "\n".join(lines) + "\n"
    lines = ["Sources:" if answer.path == "generated" else "Sources (quoted: the model's answer did not pass the check):"]
    for c in answer.citations:
        lines.append(f"  [{c.marker}] {c.paper.title} [{c.paper.lang}] · {places(c.paper.locations)}")
        lines += metadata_lines(c.paper, "      ")
    return "\n".join(lines) + "\n"


def metadata_lines(paper, indent: str) -> list[str]:
    """The record's authors, year, venue and link as one indented line, or none when it has none."""
    line = metadata_line(paper)
    return [indent + line] if line else []


def format_search(result: SearchResult) -> str:
    if not result.hits:
        return f"No paper matches {result.query!r}."
    width = min(shutil.get_terminal_size((100, 24)).columns, 120)
    blocks = []
    for hit in result.hits:
        blocks.append(
            "\n".join(
                [
                    f"{hit.rank:>2}. {hit.paper.title}",
                    f"    [{hit.paper.lang}] score {hit.score:.2f} · {places(hit.paper.locations)}",
                    *metadata_lines(hit.paper, "    "),
                    textwrap.fill(hit.snippet, width=width, initial_indent="    > ", subsequent_indent="      "),
                ]
            )
        )
    return "\n\n".join(blocks)


def show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """qa-bot's own warnings as one line each; any other as Python shows it."""
    if issubclass(category, QaBotWarning):
        click.echo(f"qa-bot: warning: {message}", err=True)
    else:
        SHOW_PYTHON_WARNING(message, category, filename, lineno, file, line)


SHOW_PYTHON_WARNING = warnings.showwarning


def main() -> None:
    """Console entry point: every failure becomes one line on stderr and an exit status."""
    warnings.showwarning = show_warning
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:
        # Bare `qa-bot`: the help, as `qa-bot --help` prints it, but on stderr and with exit status
        # 2, since no command is a usage error to a script (shared/CONTRACT.md), not a success.
        click.echo(exc.ctx.get_help(), err=True)
        sys.exit(2)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("qa-bot: interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        click.echo(f"qa-bot: error: {exc.format_message()} (see qa-bot --help)", err=True)
        sys.exit(2)
    except QaBotError as exc:
        click.echo(f"qa-bot: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("qa-bot: interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        # The reader (`| head`) has gone; stop quietly, as other Unix tools do.
        sys.stderr.close()
        sys.exit(0)
    except Exception as exc:  # noqa: BLE001 - the contract promises no traceback
        if os.environ.get("QA_BOT_DEBUG"):
            raise
        click.echo(f"qa-bot: error: unexpected {type(exc).__name__}: {exc} (set QA_BOT_DEBUG=1 for details)", err=True)
        sys.exit(1)
