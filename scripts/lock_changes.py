"""The packages whose locked version would change: `make check-latest` prints them before testing.

Usage: python scripts/lock_changes.py LOCK NEWER_LOCK (both written by `uv pip compile`).
"""

import re
import sys
from pathlib import Path

PINNED = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)", re.MULTILINE)


def pinned_versions(path: Path) -> dict[str, str]:
    return {name.lower(): version for name, version in PINNED.findall(path.read_text("utf-8"))}


def changes(locked: dict[str, str], newer: dict[str, str]) -> list[str]:
    lines = []
    for name in sorted(locked.keys() | newer.keys()):
        before, after = locked.get(name), newer.get(name)
        if before != after:
            lines.append(f"{name}: {before or '(not locked)'} -> {after or '(no longer needed)'}")
    return lines


def main() -> None:
    locked, newer = (pinned_versions(Path(argument)) for argument in sys.argv[1:3])
    lines = changes(locked, newer)
    print(f"{len(lines)} of {len(locked)} locked packages would change" + (":" if lines else ""))
    for line in lines:
        print("  " + line)


if __name__ == "__main__":
    main()
