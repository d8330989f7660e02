"""The `qa-bot` command: a thin layer over the library that prints results and one-line errors.

Exit status (shared/CONTRACT.md): 0 success, 2 bad usage or bad input, 1 any other failure.
"""

import json
import os
import shutil
import sys
import textwrap

import click
from pydantic import ValidationError

from qa_bot.corpus import CorpusIssue
from qa_bot.errors import BadInputError, QaBotError
from qa_bot.retrieve import Retriever, SearchResult, require_query
from qa_bot.settings import Settings

MAX_WARNINGS_SHOWN = 10


def make_settings(**flags) -> Settings:
    """Settings from the environment, overridden by the flags the user passed."""
    try:
        return Settings(**{name: value for name, value in flags.items() if value is not None})
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(part) for part in problem["loc"]) or "settings"
        raise BadInputError(f"invalid setting {where}: {problem['msg']}") from None


def open_retriever(settings: Settings) -> Retriever:
    retriever = Retriever.open(settings)
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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli():
    """qa-bot: ask questions about a collection of paper abstracts, offline."""


@cli.command()
@click.argument("query", required=False)
@click.option("-k", "top_k", type=click.IntRange(1, 1000), default=None, help="How many papers (default 5).")
@click.option("--json", "as_json", is_flag=True, help="Print the contract's JSON instead of text.")
@corpus_option
@strict_option
def search(query, top_k, as_json, corpus, strict):
    """Rank papers for QUERY (no model needed). Without QUERY, read one query per line."""
    settings = make_settings(corpus=corpus, top_k=top_k, strict=strict)
    if query is not None:
        require_query(query)  # before the corpus is read, so a typo costs nothing
    retriever = open_retriever(settings)
    queries = [query] if query is not None else read_queries()
    for text in queries:
        if text.strip():
            result = retriever.search(text, settings.top_k)
            click.echo(search_json(result) if as_json else format_search(result))


def read_queries():
    """Queries typed at a prompt on a terminal, or one per line from a pipe."""
    if sys.stdin.isatty():
        click.echo("Type a query and press Enter; an empty line or Ctrl-D quits.", err=True)
        while True:
            try:
                line = input("search> ")
            except EOFError:
                return
            if not line.strip():
                return
            yield line
    else:
        yield from (line.rstrip("\r\n") for line in sys.stdin)


def search_json(result: SearchResult) -> str:
    return json.dumps(
        {
            "query": result.query,
            "results": [
                {
                    "rank": hit.rank,
                    "paper_id": hit.paper.paper_id,
                    "title": hit.paper.title,
                    "lang": hit.paper.lang,
                    "score": round(hit.score, 4),
                    "locations": [{"file": loc.file, "line": loc.line} for loc in hit.paper.locations],
                    "snippet": hit.snippet,
                }
                for hit in result.hits
            ],
        },
        ensure_ascii=False,
    )


def format_search(result: SearchResult) -> str:
    if not result.hits:
        return f"No paper matches {result.query!r}."
    width = min(shutil.get_terminal_size((100, 24)).columns, 120)
    blocks = []
    for hit in result.hits:
        places = ", ".join(f"{loc.file}:{loc.line}" for loc in hit.paper.locations)
        blocks.append(
            "\n".join(
                [
                    f"{hit.rank:>2}. {hit.paper.title}",
                    f"    [{hit.paper.lang}] score {hit.score:.2f} · {places}",
                    textwrap.fill(hit.snippet, width=width, initial_indent="    > ", subsequent_indent="      "),
                ]
            )
        )
    return "\n\n".join(blocks)


def main() -> None:
    """Console entry point: every failure becomes one line on stderr and an exit status."""
    try:
        cli.main(standalone_mode=False)
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
