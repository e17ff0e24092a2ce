"""Per-table comparison of one pruner against others, from ``optuna-lcpred bench --json`` files.

The pruner issue's multi-worker target is "fewer epochs at equal or lower regret than every
built-in, on every table". This prints, for each other pruner, on how many tables the chosen one
is better in that sense, dominated (the other has no more epochs and no more regret, and differs),
or neither (a trade-off), and the per-table cells. Numbers are compared as the reports print
them (3 decimals).

Usage::

    optuna-lcpred bench TABLES --pruners lcpred --workers 8 --json ours.json
    optuna-lcpred bench TABLES --pruners median,sha,hyperband --workers 8 --json builtins.json
    python benchmarks/dominance.py ours.json builtins.json [--pruner lcpred]

Every file must hold the same tables, seeds and settings; several files merge (a spec listed in
two files is an error).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def _load(paths: list[Path]) -> dict[str, dict[str, tuple[float, float]]]:
    """``{table: {spec: (epochs fraction, regret)}}`` merged over the files."""
    merged: dict[str, dict[str, tuple[float, float]]] = {}
    settings: dict[str, tuple[Any, ...]] = {}
    for path in paths:
        data = json.loads(path.read_text())
        for table, entry in data["tables"].items():
            key = (entry["T"], entry["n_trials"], tuple(entry["seed_values"]), entry["workers"])
            if settings.setdefault(table, key) != key:
                raise SystemExit(
                    f"{path}: table {table!r} was run with other settings than in an earlier "
                    f"file (steps, trials, seeds, workers: {key} against {settings[table]})"
                )
            cells = merged.setdefault(table, {})
            for spec, result in entry["results"].items():
                if spec == "oracle":
                    continue
                if spec in cells:
                    raise SystemExit(f"{path}: {spec!r} on {table!r} is in two files")
                cells[spec] = (
                    round(float(result["epochs_fraction"]), 3),
                    round(float(result["regret"]), 3),
                )
    return merged


def _verdict(ours: tuple[float, float], theirs: tuple[float, float]) -> str:
    if ours[0] < theirs[0] and ours[1] <= theirs[1]:
        return "better"
    if theirs[0] <= ours[0] and theirs[1] <= ours[1] and theirs != ours:
        return "dominated"
    return "trade-off"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("json", nargs="+", type=Path, help="bench --json files")
    parser.add_argument("--pruner", default="lcpred", help="the spec to compare (default lcpred)")
    args = parser.parse_args(argv)
    merged = _load(args.json)
    tables = sorted(merged)
    missing = [t for t in tables if args.pruner not in merged[t]]
    if missing:
        raise SystemExit(f"{args.pruner!r} is not in the results of {', '.join(missing)}")
    others = sorted({spec for t in tables for spec in merged[t]} - {args.pruner})
    print(f"| table | `{args.pruner}` | " + " | ".join(f"`{o}`" for o in others) + " |")
    print("|---" * (len(others) + 2) + "|")
    for table in tables:
        cells = [merged[table].get(o) for o in others]
        shown = [f"{c[0]:.3f} / {c[1]:.3f}" if c else "" for c in cells]
        ours = merged[table][args.pruner]
        print(f"| {table} | {ours[0]:.3f} / {ours[1]:.3f} | " + " | ".join(shown) + " |")
    print()
    print(f"| against | `{args.pruner}` better | trade-off | dominated |")
    print("|---|---|---|---|")
    for other in others:
        counts = {"better": 0, "trade-off": 0, "dominated": 0}
        for table in tables:
            if other in merged[table]:
                counts[_verdict(merged[table][args.pruner], merged[table][other])] += 1
        print(
            f"| `{other}` | {counts['better']} | {counts['trade-off']} | {counts['dominated']} |"
        )
    beaten = [
        table
        for table in tables
        if any(
            other in merged[table]
            and _verdict(merged[table][args.pruner], merged[table][other]) == "dominated"
            for other in others
        )
    ]
    print(f"\ndominated by at least one of them on {len(beaten)} of {len(tables)} tables", end="")
    print(f": {', '.join(beaten)}" if beaten else "")
    return 0


if __name__ == "__main__":
    sys.exit(main())
