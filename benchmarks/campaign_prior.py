"""Warm start from a realistic earlier campaign: a pruned study, and a task that got harder.

    python benchmarks/campaign_prior.py ../shared/data/mlpf_delphes.csv \
        ../shared/data/lcbench ../shared/data/taskset [--seeds 5] [--trials 100] [--jobs 2] \
        [--shift 0.5] [--spec lcpred]

``bench --prior-split`` gives the pruner half of a table's rows as its prior, every curve
complete. A real earlier campaign is not like that: it was itself pruned, so the study it
leaves (``optuna-lcpred export-curves``) holds a few complete curves, the survivors, and many
partial ones; and the task may have changed since (a new dataset version, another detector),
so the new study's runs do not reach what the old ones did. Per seed, with the rows split as
``bench --prior-split 0.5`` splits them, this script builds three priors from the prior half:

- ``pruned``: the curves of an earlier study of ``--trials`` trials replayed on the prior half
  under the same pruner without a prior (PRUNED trials up to where they stopped);
- ``harder``: the prior half with every curve lowered by ``--shift`` times the distance from
  its median final to its best final (the old task was that much easier);
- ``pruned+harder``: the pruned study of the lowered prior half.

and replays the other half under the pruner with each prior and without one (``none``).
It prints, per table and prior, the median epochs fraction and mean regret over the seeds (the
``bench`` cells), then the same over all tables.

``--priors`` picks others too: ``split``, the prior half as it is (``bench --prior-split``);
``values-dropped``, the prior half without the table's ``value`` column. With
``--self-stopping P`` every table is first turned into what an objective with its own early
stopping leaves (both halves, the prior's and the replayed one): a run stops once its best loss
has not improved for ``P`` of the steps, and returns that best loss as its value (the
``value`` column, as ``export-curves`` writes a study's values). ``values-dropped`` is then the
prior as this package read it before curve tables carried values: only the runs that reached
the last step had a final.
"""

from __future__ import annotations

import argparse
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace

import numpy as np
import optuna

from optuna_lcpred.bench.pruners import make_table_pruner
from optuna_lcpred.bench.pruners import parse_pruner_spec
from optuna_lcpred.bench.replay import ReplayResult
from optuna_lcpred.bench.replay import replay
from optuna_lcpred.bench.runner import split_for_prior
from optuna_lcpred.curves import CurveTable
from optuna_lcpred.curves import read_curve_tables


PRIORS = ("none", "pruned", "harder", "pruned+harder")
MORE_PRIORS = ("split", "values-dropped")


def lowered(table: CurveTable, shift: float) -> CurveTable:
    """``table`` with every value lowered by ``shift`` times (median final - best final)."""
    finals = table.final_values
    finals = finals[np.isfinite(finals)]
    delta = shift * float(np.median(finals) - finals.min())
    return replace(
        table,
        curves=table.curves - delta,
        finals=None if table.finals is None else table.finals - delta,
        name=f"{table.name}-lowered",
    )


def self_stopped(table: CurveTable, patience: float) -> CurveTable:
    """``table`` as an objective with its own early stopping would have left it: each run
    stops after ``max(2, round(patience * n_steps))`` steps without a new best loss and returns
    its best loss; a run that diverges (a non-finite value) stops there without a value."""
    wait = max(2, round(patience * table.n_steps))
    curves = table.curves.copy()
    finals = np.full(table.n_trials, np.nan)
    for i, curve in enumerate(table.curves):
        best, since = np.inf, 0
        for j, value in enumerate(curve):
            if not np.isfinite(value):
                curves[i, j + 1 :] = np.nan
                best = np.nan
                break
            if value < best:
                best, since = float(value), 0
            else:
                since += 1
                if since >= wait:
                    curves[i, j + 1 :] = np.nan
                    break
        finals[i] = best
    return replace(table, curves=curves, finals=finals, name=f"{table.name}-self-stopped")


def pruned_study(table: CurveTable, spec_text: str, n_trials: int, seed: int) -> CurveTable:
    """The curves an earlier study on ``table`` leaves: each replayed row up to where it
    stopped (NaN after), as ``export-curves`` writes them."""
    pruner = make_table_pruner(parse_pruner_spec(spec_text), table, {"prior": None})
    result = replay(table, pruner, n_trials=min(n_trials, table.n_trials), seed=seed + 1000)
    return _as_exported(table, result)


def _as_exported(table: CurveTable, result: ReplayResult) -> CurveTable:
    rows = np.array([t.row for t in result.trials])
    made = table.subset(rows, name=f"{table.name}-study")
    curves = made.curves.copy()
    for i, trial in enumerate(result.trials):
        curves[i, trial.steps_trained :] = np.nan
    return replace(made, curves=curves)


def _prior(name: str, half: CurveTable, args: argparse.Namespace, seed: int) -> CurveTable | None:
    if name == "none":
        return None
    if name == "pruned":
        return pruned_study(half, args.spec, args.trials, seed)
    if name == "harder":
        return lowered(half, args.shift)
    if name == "pruned+harder":
        return pruned_study(lowered(half, args.shift), args.spec, args.trials, seed)
    return half if name == "split" else replace(half, finals=None)


def _one(
    job: tuple[CurveTable, int, argparse.Namespace],
) -> tuple[str, dict[str, ReplayResult]]:
    table, seed, args = job
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if args.self_stopping is not None:
        table = replace(self_stopped(table, args.self_stopping), name=table.name)
    rows, half = split_for_prior(table, seed, None, 0.5)
    assert half is not None
    priors = {name: _prior(name, half, args, seed) for name in args.priors}
    spec = parse_pruner_spec(args.spec)
    results = {}
    n_trials = args.trials
    for name, prior in priors.items():
        pruner = make_table_pruner(spec, rows, {"prior": prior})
        results[name] = replay(rows, pruner, n_trials=n_trials, seed=seed, label=name)
    return table.name, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tables", nargs="+", help="curve tables (CSV files or folders)")
    parser.add_argument("--spec", default="lcpred", help="the pruner, as bench --pruners")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--shift", type=float, default=0.5)
    parser.add_argument("--self-stopping", type=float, default=None, metavar="P")
    known = PRIORS + MORE_PRIORS
    parser.add_argument("--priors", default=",".join(PRIORS), help="some of " + ", ".join(known))
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    args.priors = [name.strip() for name in args.priors.split(",") if name.strip()]
    unknown = sorted(set(args.priors) - set(known))
    if unknown or not args.priors:
        parser.error(f"--priors: {', '.join(unknown) or 'none given'}; expected some of {known}")
    if args.self_stopping is not None and not 0 < args.self_stopping < 1:
        parser.error(f"--self-stopping must be in (0, 1), got {args.self_stopping}")
    tables = read_curve_tables(args.tables)
    jobs = [(t, s, args) for t in tables for s in range(args.seeds)]
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        done = list(pool.map(_one, jobs))
    print(
        f"{args.spec}, {args.trials} trials, seeds 0-{args.seeds - 1}, shift {args.shift:g}"
        + ("" if args.self_stopping is None else f", self-stopping {args.self_stopping:g}")
        + "; cells: median epochs fraction / mean regret over the seeds"
    )
    width = max(17, *(len(name) + 2 for name in args.priors))
    print(f"{'table':40s}" + "".join(f"{name:>{width}s}" for name in args.priors))
    cells: dict[str, list[tuple[float, float]]] = {name: [] for name in args.priors}
    for table in tables:
        mine = [results for name, results in done if name == table.name]
        line = f"{table.name:40s}"
        for name in args.priors:
            epochs = statistics.median(r[name].epochs_fraction for r in mine)
            regret = statistics.mean(r[name].regret for r in mine)
            cells[name].append((epochs, regret))
            line += f"{epochs:>{width - 7}.3f} /{regret:>5.3f}"
        print(line)
    line = f"{'median epochs / mean regret':40s}"
    for name in args.priors:
        epochs = statistics.median(e for e, _ in cells[name])
        regret = statistics.mean(r for _, r in cells[name])
        line += f"{epochs:>{width - 7}.3f} /{regret:>5.3f}"
    print(line)
    line = f"{'tables at regret <= 0.02':40s}"
    for name in args.priors:
        line += f"{sum(r <= 0.02 for _, r in cells[name]):>{width}d}"
    print(line)
    print(f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
