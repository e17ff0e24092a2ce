"""Regret at fixed training budgets, from ``optuna-lcpred bench --json`` files.

The bench tables give each pruner two numbers (epochs trained, regret found), so two pruners
are often a trade-off: one trains less, the other finds a better model. This script puts them on
one axis: the regret each run had when it had trained a given fraction B of the epochs of
training every drawn trial fully (``--budgets``). With one worker a replay stopped there is
exactly the study given that budget; with several workers it counts the steps all workers had
trained together when a trial finished (the GPU-hours spent). A run that ended below B counts
with its final regret (it had found all it would). A run that has completed nothing by then
has found nothing ("none in k/N" runs; the bench would score it as the worst drawn trial, a
number that can dwarf every other on tables with diverged runs); in the paired test it loses to
any run that found something and ties with another that found nothing.

It prints, per budget, the mean regret over tables (each table the mean over its seeds), on how
many tables each pruner has the lowest mean regret (ties count for each), and, for the pruner
named by ``--pruner``, the tables where it is better and worse than each other one with a paired
Wilcoxon signed-rank test over all (table, seed) pairs. ``--table-at B`` adds the per-table
cells at one budget.

Usage::

    optuna-lcpred bench TABLES --pruners lcpred,median,sha,hyperband --seeds 10 --json all.json
    python benchmarks/anytime.py all.json [--pruner lcpred] [--budgets 0.05,0.1,0.2]

Several files merge: the same seeds with other pruners (``ours.json builtins.json``), or the
same pruners with other seeds (``a0.json,a5.json``, comma-joined, as in ``sampler_compare.py``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import wilcoxon

from optuna_lcpred.bench.metrics import regret_at
from optuna_lcpred.bench.runner import read_regret_traces


def _load_group(paths: list[Path]) -> dict[str, dict[str, Any]]:
    """``{table: {"seeds", "total", "settings", "runs": {spec: [trace per seed]}}}`` of files
    that split one run's seeds."""
    out: dict[str, dict[str, Any]] = {}
    for path in paths:
        for table, entry in json.loads(path.read_text())["tables"].items():
            merged = out.setdefault(
                table,
                {
                    "seeds": [],
                    "total": entry["n_trials"] * entry["T"],
                    "settings": (entry["n_trials"], entry["T"], entry["workers"]),
                    "runs": {},
                },
            )
            settings = (entry["n_trials"], entry["T"], entry["workers"])
            if settings != merged["settings"]:
                raise SystemExit(
                    f"{path}: table {table!r} was run with other settings than in an earlier "
                    f"file (trials, steps, workers: {settings} against {merged['settings']})"
                )
            if set(merged["seeds"]) & set(entry["seed_values"]):
                raise SystemExit(f"{path}: table {table!r} repeats seeds of an earlier file")
            merged["seeds"] += entry["seed_values"]
            for spec, result in entry["results"].items():
                if "regret_trace_per_seed" not in result:
                    raise SystemExit(
                        f"{path}: {spec!r} on {table!r} has no regret traces (bench files "
                        "written before 2026-12-06 lack them); re-run the bench"
                    )
                merged["runs"].setdefault(spec, []).extend(read_regret_traces(result))
    return out


def load(groups: list[str]) -> dict[str, dict[str, Any]]:
    """Merge the groups (each a comma-joined list of files): ``{table: {"seeds", "total",
    "settings", "runs": {spec: [trace per seed]}}}``."""
    merged: dict[str, dict[str, Any]] = {}
    for group in groups:
        for table, entry in _load_group([Path(p) for p in group.split(",")]).items():
            known = merged.setdefault(table, {**entry, "runs": {}})
            if (entry["seeds"], entry["settings"]) != (known["seeds"], known["settings"]):
                raise SystemExit(
                    f"{group}: table {table!r} has other seeds or settings than an earlier file "
                    f"({entry['seeds']} {entry['settings']} against {known['seeds']} "
                    f"{known['settings']})"
                )
            for spec, runs in entry["runs"].items():
                if spec == "oracle" and known["runs"].get(spec) == runs:
                    continue  # the same draws give the same oracle in every file
                if spec in known["runs"]:
                    raise SystemExit(f"{group}: {spec!r} on {table!r} is in two files")
                known["runs"][spec] = runs
    return merged


def _regret_by(trace: list[tuple[float, float]], steps: float) -> float:
    """The run's regret after ``steps`` steps; ``inf`` while it has completed no trial that
    beats finding nothing (whose regret, the worst drawn trial's, can be any size)."""
    value = regret_at(trace, steps)
    return np.inf if value == trace[0][1] and value > 0 else value


def regrets_at(data: dict[str, dict[str, Any]], budget: float) -> dict[str, dict[str, np.ndarray]]:
    """``{table: {spec: per-seed regret when the run had trained budget * total steps}}``.

    A run that ended below the budget counts with its final regret (the end of its trace); one
    that had found nothing yet reads ``inf``."""
    if budget <= 0:
        raise SystemExit(f"budgets must be positive fractions of the full epochs, got {budget}")
    return {
        table: {
            spec: np.array([_regret_by(trace, budget * entry["total"]) for trace in traces])
            for spec, traces in entry["runs"].items()
        }
        for table, entry in data.items()
    }


def _paired_p(ours: np.ndarray, theirs: np.ndarray) -> float:
    """Wilcoxon on the differences; a run that found nothing loses to any that found something
    (by more than any regret differs) and ties with another that found nothing."""
    finite = np.concatenate([ours[np.isfinite(ours)], theirs[np.isfinite(theirs)]])
    big = 1.0 + 2.0 * float(np.max(np.abs(finite), initial=0.0))
    diff = np.where(np.isinf(ours), big, ours) - np.where(np.isinf(theirs), big, theirs)
    return float(wilcoxon(diff).pvalue) if np.count_nonzero(diff) else 1.0


def _fmt(values: np.ndarray) -> str:
    """The mean, or how many of the runs had found nothing yet."""
    missing = int(np.isinf(values).sum())
    return f"{np.mean(values):.3f}" if not missing else f"none in {missing}/{values.size}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("json", nargs="+", help="bench --json files (a,b joins seed halves)")
    parser.add_argument("--pruner", default="lcpred", help="the spec to compare (default lcpred)")
    parser.add_argument(
        "--budgets",
        default="0.05,0.1,0.15,0.2,0.3",
        help="fractions of the full epochs, comma-separated (default 0.05,0.1,0.15,0.2,0.3)",
    )
    parser.add_argument("--table-at", type=float, help="also print every table at this budget")
    args = parser.parse_args(argv)
    try:
        budgets = [float(b) for b in args.budgets.split(",")]
    except ValueError:
        raise SystemExit(
            f"--budgets must be comma-separated numbers, got {args.budgets!r}"
        ) from None
    data = load(args.json)
    tables = sorted(data)
    specs = list(dict.fromkeys(s for t in tables for s in data[t]["runs"]))  # as the bench ran
    specs.sort(key=lambda s: s == "oracle")  # the oracle last
    incomplete = [s for s in specs if any(s not in data[t]["runs"] for t in tables)]
    if incomplete:
        raise SystemExit(f"not every table has results for {', '.join(incomplete)}")
    if args.pruner not in specs:
        raise SystemExit(f"{args.pruner!r} is not in the results (have {', '.join(specs)})")
    at = {b: regrets_at(data, b) for b in budgets}
    means = {b: {t: {s: float(np.mean(at[b][t][s])) for s in specs} for t in tables} for b in at}

    head = " | ".join(f"B = {b:g}" for b in budgets)
    print(f"Mean regret over the {len(tables)} tables at each budget B (fraction of full epochs)")
    print(f"\n| pruner | {head} |\n|---" + "|---" * len(budgets) + "|")
    for spec in specs:
        cells = [_fmt(np.concatenate([at[b][t][spec] for t in tables])) for b in budgets]
        print(f"| `{spec}` | " + " | ".join(cells) + " |")

    print("\nTables where each has the lowest mean regret (ties count for each; oracle aside)")
    print(f"\n| pruner | {head} |\n|---" + "|---" * len(budgets) + "|")
    contenders = [s for s in specs if s != "oracle"]
    best = {b: {t: min(round(means[b][t][s], 3) for s in contenders) for t in tables} for b in at}
    for spec in contenders:
        counts = []
        for b in budgets:
            lowest = [round(means[b][t][spec], 3) <= best[b][t] < np.inf for t in tables]
            counts.append(str(sum(lowest)))
        print(f"| `{spec}` | " + " | ".join(counts) + " |")

    print(
        f"\n`{args.pruner}` against each: tables with lower / higher mean regret (3 decimals), "
        "and the paired Wilcoxon p over all (table, seed) pairs"
    )
    print(f"\n| against | {head} |\n|---" + "|---" * len(budgets) + "|")
    for other in (s for s in contenders if s != args.pruner):
        cells = []
        for b in budgets:
            ours = [round(means[b][t][args.pruner], 3) for t in tables]
            theirs = [round(means[b][t][other], 3) for t in tables]
            better = sum(o < x for o, x in zip(ours, theirs, strict=True))
            worse = sum(o > x for o, x in zip(ours, theirs, strict=True))
            p = _paired_p(
                np.concatenate([at[b][t][args.pruner] for t in tables]),
                np.concatenate([at[b][t][other] for t in tables]),
            )
            cells.append(f"{better} / {worse}, p = {p:.2f}")
        print(f"| `{other}` | " + " | ".join(cells) + " |")

    if args.table_at is not None:
        per_table = regrets_at(data, args.table_at)
        print(f"\nMean regret at B = {args.table_at:g}, per table")
        print("\n| table | " + " | ".join(f"`{s}`" for s in specs) + " |")
        print("|---" * (len(specs) + 1) + "|")
        for table in tables:
            cells = [_fmt(per_table[table][s]) for s in specs]
            print(f"| {table} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
