"""Two ``optuna-lcpred bench --json`` runs of the same pruner, table by table, seed by seed.

The sampler issue's target is "equal or lower regret at equal epochs on at least two thirds of
the tables" for ``--sampler tpe+predicted`` against ``--sampler tpe``. This prints, per table,
both runs' epochs fraction (median over seeds) and regret (mean), whether the second run's
regret is no worse (as printed, 3 decimals) and its epochs no more than 5 % above the first's,
and a paired Wilcoxon signed-rank test on the per-seed regrets (the same seed draws the same
first trials in both runs), so a reader can tell a difference from seed-to-seed noise.

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
                table, {"seeds": [], "epochs_fraction_per_seed": [], "regret_per_seed": []}
            )
            if set(merged["seeds"]) & set(entry["seed_values"]):
                raise SystemExit(f"{path}: table {table!r} repeats seeds of an earlier file")
            merged["seeds"] += entry["seed_values"]
            merged["epochs_fraction_per_seed"] += result["epochs_fraction_per_seed"]
            merged["regret_per_seed"] += result["regret_per_seed"]
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
        p = float(wilcoxon(diff).pvalue) if np.count_nonzero(diff) else 1.0
        rows.append(
            {
                "table": table,
                "first": (a["epochs_fraction"], a["regret"]),
                "second": (b["epochs_fraction"], b["regret"]),
                "regret_no_worse": round(b["regret"], 3) <= round(a["regret"], 3),
                "epochs_no_more": b["epochs_fraction"] <= (1 + tolerance) * a["epochs_fraction"],
                "p": p,
                "seeds_better": int((diff < 0).sum()),
                "seeds_worse": int((diff > 0).sum()),
            }
        )
    return rows


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
        f"mean regret {first[:, 1].mean():.3f} -> {second[:, 1].mean():.3f}."
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
