"""The report of `make mutation`: killed / survived / timed out per module, the share of the
non-equivalent mutants killed, and every survivor's diff, from the results mutmut left in mutants/.

Equivalent mutants (no test can tell them from the original) are listed in docs/development.md's "Mutation
testing" section as "- `mutant name`: why", or several alike as "- `name`, `name`: why"; they are
left out of the share.

    .venv/bin/python scripts/mutation_report.py [--out artifacts/mutation]
"""

import argparse
import json
import re
import sys
from collections import Counter
from pathlib import Path

from mutmut.mutation.data import SourceFileMutationData
from mutmut.mutation.diff_apply import get_diff_for_mutant
from mutmut.stats import status_by_exit_code

PROJECT = Path(__file__).resolve().parent.parent
MUTANT_NAME = r"`qa_bot\.[^`]+__mutmut_\d+`"
EQUIVALENT_LINE = re.compile(rf"^- ({MUTANT_NAME}(?:, {MUTANT_NAME})*): (.+)$", re.MULTILINE)
TARGET = 0.85  # issue 14: at least 85% of the non-equivalent mutants killed in each module


def equivalent_mutants(readme: Path) -> dict[str, str]:
    return {name.strip("`"): why for names, why in EQUIVALENT_LINE.findall(readme.read_text("utf-8"))
            for name in names.split(", ")}


def module_results(source: Path) -> dict[str, str]:
    """Mutant name -> mutmut's status for one mutated source file."""
    data = SourceFileMutationData(path=source)
    data.load()
    return {name: status_by_exit_code[code] for name, code in data.exit_code_by_key.items()}


def summary_row(module: str, results: dict[str, str], equivalent: dict[str, str]) -> dict:
    counts = Counter(results.values())
    equivalent_survivors = [name for name, status in results.items() if status == "survived" and name in equivalent]
    judged = len(results) - len(equivalent_survivors) - counts["not checked"]
    killed = counts["killed"] + counts["timeout"]  # a timeout is a mutant the tests notice (it hangs)
    return {
        "module": module, "mutants": len(results), "killed": counts["killed"], "survived": counts["survived"],
        "timeout": counts["timeout"], "no_tests": counts["no tests"], "not_checked": counts["not checked"],
        "equivalent": len(equivalent_survivors),
        "killed_share": killed / judged if judged else None,
    }


def markdown(rows: list[dict], survivors: list[tuple[str, str, str | None]]) -> str:
    lines = ["# Mutation testing (mutmut)", "",
             "| module | mutants | killed | survived | no test | timeout | not checked | equivalent | killed of non-equivalent |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        share = "–" if row["killed_share"] is None else f"{row['killed_share']:.0%}"
        lines.append(f"| {row['module']} | {row['mutants']} | {row['killed']} | {row['survived']} | {row['no_tests']} | {row['timeout']} "
                     f"| {row['not_checked']} | {row['equivalent']} | {share} |")
    lines += ["", "## Survivors", ""]
    for name, diff, why in survivors:
        lines += [f"### {name}" + (f" (equivalent: {why})" if why else ""), "", "```diff", diff, "```", ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=PROJECT / "artifacts" / "mutation")
    out = parser.parse_args().out
    if not (PROJECT / "mutants").is_dir():
        print("mutation_report: no mutants/ folder: run `make mutation` first", file=sys.stderr)
        return 2
    equivalent = equivalent_mutants(PROJECT / "docs" / "development.md")
    rows, survivors = [], []
    for meta in sorted((PROJECT / "mutants").rglob("*.py.meta")):
        source = meta.relative_to(PROJECT / "mutants").with_suffix("")
        results = module_results(source)
        if not results:
            continue
        rows.append(summary_row(str(source), results, equivalent))
        survivors += [(name, get_diff_for_mutant(name, path=source), equivalent.get(name))
                      for name, status in results.items() if status in ("survived", "no tests")]
    out.mkdir(parents=True, exist_ok=True)
    (out / "mutation.md").write_text(markdown(rows, survivors), "utf-8")
    (out / "mutation.json").write_text(json.dumps({"modules": rows, "survivors": [
        {"mutant": name, "diff": diff, "equivalent": why} for name, diff, why in survivors]}, indent=2), "utf-8")
    for row in rows:
        share = "–" if row["killed_share"] is None else f"{row['killed_share']:.0%}"
        print(f"{row['module']}: {row['killed']} killed, {row['survived']} survived ({row['equivalent']} equivalent), "
              f"{row['no_tests']} with no test, "
              f"{row['timeout']} timed out, {row['not_checked']} not checked; {share} of non-equivalent killed")
    print(f"wrote {out / 'mutation.md'} and {out / 'mutation.json'}", file=sys.stderr)
    below = [row["module"] for row in rows if row["killed_share"] is not None and row["killed_share"] < TARGET]
    return 1 if below else 0


if __name__ == "__main__":
    sys.exit(main())
