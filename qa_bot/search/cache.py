"""Cached files that are checked before they are trusted, and written safely by concurrent processes.

Every cached JSON file is an envelope: what it was built from (a hash the caller computes from its
inputs), the SHA-256 of its payload, and the payload. A file that is missing is built; one that
fails a check (not JSON, wrong type, checksum, built from something else, a folder where a file
should be) is rebuilt with one warning. Writers stage under a unique name and rename into place:
several processes may build the same entry at once, each rename is atomic, and whoever is last wins
with an equal result. (The stored collection's folders are named uniquely and never replaced:
`qa_bot.search.indexing`.)
"""

import errno
import hashlib
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

from qa_bot.errors import QaBotWarning

# Part of every cached name: a build of another format (an older checkout) keeps its own files
# instead of failing this one's checks on every run.
FORMAT = "3"  # 3: a .jsonl record's id is its location's key
ATTEMPTS = 5  # renames tried while other writers keep replacing a stale entry


def payload_checksum(payload) -> str:
    return hashlib.sha256(json.dumps(payload, ensure_ascii=False, sort_keys=True).encode()).hexdigest()


def load_checked(path: Path, built_from: str, valid: Callable[[object], bool]):
    """The payload saved at `path` for `built_from`, or None (missing, or failed a check: warned)."""
    if not os.path.lexists(path):
        return None
    try:
        envelope = json.loads(path.read_text("utf-8"))
        payload = envelope["payload"]
        if envelope["built_from"] == built_from and envelope["checksum"] == payload_checksum(payload) and valid(payload):
            return payload
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        pass
    warn_rebuilt(path.name)
    return None


def write_checked(path: Path, built_from: str, payload) -> None:
    """Write the envelope under a unique name and rename it into place (OSError when it cannot)."""
    envelope = {"built_from": built_from, "checksum": payload_checksum(payload), "payload": payload}
    text = json.dumps(envelope, ensure_ascii=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, staging = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(handle, "w", encoding="utf-8") as file:
        file.write(text)
    for _ in range(ATTEMPTS):
        try:
            os.replace(staging, path)
            return
        except IsADirectoryError:
            set_aside(path)  # a folder where the file belongs
    os.unlink(staging)
    raise OSError(errno.EBUSY, "other writers keep replacing it", str(path))


def set_aside(path: Path) -> None:
    """Move a broken entry out of the way (atomically, under a unique name), then delete it."""
    trash = Path(tempfile.mkdtemp(prefix=".stale-", dir=path.parent))
    try:
        os.replace(path, trash / "entry")
    except FileNotFoundError:
        pass  # another writer already moved it
    shutil.rmtree(trash, ignore_errors=True)


def warn_rebuilt(name: str) -> None:
    """`name`: the entry, or the file within it, as the cache folder names it."""
    warnings.warn(QaBotWarning(f"the cached {name} failed its check and is rebuilt"))


def warn_not_saved(path: Path, exc: OSError) -> None:
    warnings.warn(QaBotWarning(f"cannot write the cache at {path.parent} ({exc.strerror}); continuing without it"))
