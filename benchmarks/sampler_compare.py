"""Two ``optuna-lcpred bench --json`` runs of the same pruner, table by table, seed by seed.

The sampler issue's target is "equal or lower regret at equal epochs on at least two thirds of
the tables" for ``--sampler tpe+predicted`` against ``--sampler tpe``. This prints, per table,
both runs' epochs fraction (median over seeds) and regret (mean), whether the second run's
regret is no worse (as printed, 3 decimals) and its epochs no more than 5 % above the first's,
and a paired Wilcoxon signed-rank test on the per-seed regrets (the same seed draws the same
first trials in both runs), so a reader can tell a difference from seed-to-seed noise; the same
test over every (table, seed) pair together says whether the second run does better overall.

"At equal epochs" is also measured exactly, where the files hold each run's regret as it went
(``regret_trace_per_seed`` in the bench JSON): for each seed both runs are stopped at
the smaller of their two epoch counts, and their regrets there are compared (mean over seeds,
the same paired test). A one-worker replay stopped after N steps is exactly a study given a
budget of N epochs, so this compares the two samplers at the same cost without a tolerance.

Usage::

    optuna-lcpred bench TABLES --pruners lcpred --sampler tpe --seeds 10 --json a.json
    optuna-lcpred bench TABLES --pruners lcpred --sampler tpe+predicted --seeds 10 --json b.json
    python benchmarks/sampler_compare.py a.json b.json [--pruner lcpred] [--tolerance 0.05]

Runs split over seeds (``--first-seed``) merge: ``a0.json,a5.json b0.json,b5.json``.
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


def _results(paths: list[Path], pruner: str) -> dict[str, dict[str, Any]]:
    """Per table: seeds, per-seed epochs and regrets, merged over ``paths`` (other seeds)."""
    out: dict[str, dict[str, Any]] = {}
    for path in paths:
        tables = json.loads(path.read_text())["tables"]
        for table, entry in tables.items():
            if pruner not in entry["results"]:
                raise SystemExit(f"{path}: table {table!r} has no results for pruner {pruner!r}")
            result = entry["results"][pruner]
            merged = out.setdefault(
                table,
                {
                    "seeds": [],
                    "epochs_fraction_per_seed": [],
                    "regret_per_seed": [],
                    "steps_trained_per_seed": [],
                    "regret_trace_per_seed": [],
                },
            )
            if set(merged["seeds"]) & set(entry["seed_values"]):
                raise SystemExit(f"{path}: table {table!r} repeats seeds of an earlier file")
            merged["seeds"] += entry["seed_values"]
            merged["epochs_fraction_per_seed"] += result["epochs_fraction_per_seed"]
            merged["regret_per_seed"] += result["regret_per_seed"]
            if "regret_trace_per_seed" in result:  # bench files before the traces lack them
                merged["steps_trained_per_seed"] += result["steps_trained_per_seed"]
                merged["regret_trace_per_seed"] += read_regret_traces(result)
    for merged in out.values():  # as the bench reports: median epochs, mean regret
        merged["epochs_fraction"] = float(np.median(merged["epochs_fraction_per_seed"]))
        merged["regret"] = float(np.mean(merged["regret_per_seed"]))
    return out


def compare(
    first: dict[str, dict[str, Any]], second: dict[str, dict[str, Any]], tolerance: float
) -> list[dict[str, Any]]:
    """One row per table both runs hold, in the first run's order."""
    rows = []
    for table, a in first.items():
        b = second.get(table)
        if b is None:
            continue
        if a["seeds"] != b["seeds"]:
            raise SystemExit(
                f"table {table!r}: the runs used other seeds ({a['seeds']} and {b['seeds']})"
            )
        diff = np.asarray(b["regret_per_seed"], float) - np.asarray(a["regret_per_seed"], float)
        row = {
            "table": table,
            "first": (a["epochs_fraction"], a["regret"]),
            "second": (b["epochs_fraction"], b["regret"]),
            "regret_no_worse": round(b["regret"], 3) <= round(a["regret"], 3),
            "epochs_no_more": b["epochs_fraction"] <= (1 + tolerance) * a["epochs_fraction"],
            "p": _paired_p(diff),
            "seeds_better": int((diff < 0).sum()),
            "seeds_worse": int((diff > 0).sum()),
            "diff": diff,
        }
        if len(a["regret_trace_per_seed"]) == len(b["regret_trace_per_seed"]) == len(a["seeds"]):
            row["equal_epochs"] = _at_equal_epochs(a, b)
        rows.append(row)
    return rows


def _paired_p(diff: np.ndarray) -> float:
    finite = diff[np.isfinite(diff)]
    return float(wilcoxon(finite).pvalue) if np.count_nonzero(finite) else 1.0


def _at_equal_epochs(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Both runs of each seed stopped at the smaller of their epoch counts: mean regrets there,
    whether the second's is no worse (3 decimals), and the paired test on the seeds."""
    first, second = [], []
    for trace_a, trace_b, steps_a, steps_b in zip(
        a["regret_trace_per_seed"],
        b["regret_trace_per_seed"],
        a["steps_trained_per_seed"],
        b["steps_trained_per_seed"],
        strict=True,
    ):
        budget = min(steps_a, steps_b)
        first.append(regret_at(trace_a, budget))
        second.append(regret_at(trace_b, budget))
    diff = np.asarray(second) - np.asarray(first)
    mean_a, mean_b = float(np.mean(first)), float(np.mean(second))
    return {
        "regrets": (mean_a, mean_b),
        "no_worse": round(mean_b, 3) <= round(mean_a, 3),
        "p": _paired_p(diff),
        "seeds_better": int((diff < 0).sum()),
        "seeds_worse": int((diff > 0).sum()),
        "diff": diff,
    }


def _pooled(diffs: list[np.ndarray]) -> str:
    """The paired test over every (table, seed) pair: does the second run do better overall?"""
    diff = np.concatenate(diffs)
    return (
        f"Over all {diff.size} table-seed pairs: lower regret on {int((diff < 0).sum())}, "
        f"higher on {int((diff > 0).sum())}, paired p = {_paired_p(diff):.2f}."
    )


def markdown(rows: list[dict[str, Any]], names: tuple[str, str], tolerance: float) -> str:
    percent = f"{tolerance:.0%}".replace("%", " %")
    lines = [
        f"| table | {names[0]} epochs / regret | {names[1]} epochs / regret | regret no worse "
        f"| epochs no more (+{percent}) | seeds better / worse | paired p |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['table']} | {r['first'][0]:.3f} / {r['first'][1]:.3f} | "
            f"{r['second'][0]:.3f} / {r['second'][1]:.3f} | "
            f"{'yes' if r['regret_no_worse'] else 'no'} | "
            f"{'yes' if r['epochs_no_more'] else 'no'} | "
            f"{r['seeds_better']} / {r['seeds_worse']} | {r['p']:.2f} |"
        )
    both = sum(r["regret_no_worse"] and r["epochs_no_more"] for r in rows)
    first = np.array([r["first"] for r in rows])
    second = np.array([r["second"] for r in rows])
    lines.append("")
    lines.append(
        f"Equal or lower regret at equal epochs on {both} of {len(rows)} tables; "
        f"regret no worse on {sum(r['regret_no_worse'] for r in rows)}; "
        f"paired p < 0.05 on {sum(r['p'] < 0.05 for r in rows)}. "
        f"Median epochs {np.median(first[:, 0]):.3f} -> {np.median(second[:, 0]):.3f}, "
        f"mean regret {first[:, 1].mean():.3f} -> {second[:, 1].mean():.3f}. "
        + _pooled([r["diff"] for r in rows])
    )
    exact = [r for r in rows if "equal_epochs" in r]
    if not exact:
        lines.append("")
        lines.append("(The files hold no regret traces: no comparison at exactly equal epochs.)")
        return "\n".join(lines)
    lines += [
        "",
        "At exactly equal epochs (each seed's two runs stopped at the smaller of their epoch "
        "counts):",
        "",
        f"| table | {names[0]} regret | {names[1]} regret | no worse | seeds better / worse "
        "| paired p |",
        "|---|---|---|---|---|---|",
    ]
    for r in exact:
        e = r["equal_epochs"]
        lines.append(
            f"| {r['table']} | {e['regrets'][0]:.3f} | {e['regrets'][1]:.3f} | "
            f"{'yes' if e['no_worse'] else 'no'} | {e['seeds_better']} / {e['seeds_worse']} | "
            f"{e['p']:.2f} |"
        )
    means = np.array([r["equal_epochs"]["regrets"] for r in exact])
    lines.append("")
    lines.append(
        f"Equal or lower regret at exactly equal epochs on "
        f"{sum(r['equal_epochs']['no_worse'] for r in exact)} of {len(exact)} tables; "
        f"paired p < 0.05 on {sum(r['equal_epochs']['p'] < 0.05 for r in exact)}. "
        f"Mean regret {means[:, 0].mean():.3f} -> {means[:, 1].mean():.3f}. "
        + _pooled([r["equal_epochs"]["diff"] for r in exact])
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "first", help="bench JSON of the reference run (several, comma-separated, merge seeds)"
    )
    parser.add_argument("second", help="bench JSON of the run compared with it (likewise)")
    parser.add_argument("--pruner", default="lcpred", help="the pruner spec in both files")
    parser.add_argument(
        "--tolerance", type=float, default=0.05, help="epochs count as equal within this share"
    )
    parser.add_argument("--names", nargs=2, default=None, metavar=("FIRST", "SECOND"))
    args = parser.parse_args(argv)
    first_paths = [Path(p) for p in args.first.split(",")]
    second_paths = [Path(p) for p in args.second.split(",")]
    first, second = _results(first_paths, args.pruner), _results(second_paths, args.pruner)
    rows = compare(first, second, args.tolerance)
    if not rows:
        raise SystemExit("the two files have no table in common")
    names = tuple(args.names) if args.names else (first_paths[0].stem, second_paths[0].stem)
    print(markdown(rows, names, args.tolerance))  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    sys.exit(main())
