"""Errors meant for the user: each message says what is wrong and how to fix it.

The CLI prints `qa-bot: error: <message>` on one line and exits with `exit_code`.
"""


class QaBotError(Exception):
    """Any failure the user can act on; exit status 1."""

    exit_code = 1


class BadInputError(QaBotError):
    """Bad usage or bad input (empty question, unreadable corpus, malformed file); exit status 2."""

    exit_code = 2


class CorpusError(BadInputError):
    """The corpus folder is missing, empty, or (in strict mode) holds a malformed file or line."""


class QaBotWarning(UserWarning):
    """Something the user should know that does not stop the command (a cache rebuilt, a setting
    ignored); the CLI prints `qa-bot: warning: <message>` on one line."""
