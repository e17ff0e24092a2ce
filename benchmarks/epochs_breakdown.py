"""Where a pruner's epochs go: startup trials, later COMPLETE trials, and pruned trials by how
far they trained before they were stopped.

    python benchmarks/epochs_breakdown.py ../shared/data/mlpf_delphes.csv \
        ../shared/data/lcbench ../shared/data/taskset [--spec lcpred] [--seeds 5] \
        [--trials 150] [--jobs 2] [--startup 5] [--prior-split F]

Runs the same replays as ``optuna-lcpred bench --pruners SPEC`` (same rows, seeds and
decisions) and prints, per table, each part as a fraction of the steps of training every drawn
trial fully (the parts add up to the bench's epochs fraction; mean over seeds):

- ``startup``: the first ``n_startup_trials`` COMPLETE trials (5 for ``lcpred``), which a
  pruner without a prior must train before any prediction;
- ``complete``: the COMPLETE trials after those;
- ``pruned <10%`` ... ``pruned >=60%``: PRUNED trials, by the fraction of the training they
  had done when they were stopped.

The last column, ``startup ends``, is the median over seeds of the trial number (counted from
1) of the last startup trial: how long the study waited for its model (``never``: seeds in
which fewer trials completed).

With ``--prior-split F`` each seed's replay draws from the rows that ``bench --prior-split F``
leaves it and the pruner gets the rest as its ``prior`` (the same split, seed by seed); pass
``--startup 1`` then, since a prior stands in for the startup and only the first trial (the
anchor) is always trained to the end.
"""

from __future__ import annotations

import statistics
import time
from concurrent.futures import ProcessPoolExecutor

import optuna
from _replay_cli import replay_parser

from optuna_lcpred.bench.pruners import make_table_pruner
from optuna_lcpred.bench.pruners import parse_pruner_spec
from optuna_lcpred.bench.replay import ReplayResult
from optuna_lcpred.bench.replay import replay
from optuna_lcpred.bench.runner import split_for_prior
from optuna_lcpred.curves import CurveTable
from optuna_lcpred.curves import read_curve_tables


_PARTS = ("startup", "complete", "pruned <10%", "10-30%", "30-60%", ">=60%")
_BOUNDS = ((0.1, "pruned <10%"), (0.3, "10-30%"), (0.6, "30-60%"))


def breakdown(result: ReplayResult, n_startup: int) -> dict[str, float]:
    """Each part's steps over the steps of training every drawn trial fully."""
    parts = dict.fromkeys(_PARTS, 0.0)
    n_complete = 0
    for trial in sorted(result.trials, key=lambda t: t.number):
        if trial.state == "COMPLETE":
            n_complete += 1
            parts["startup" if n_complete <= n_startup else "complete"] += trial.steps_trained
            continue
        fraction = trial.steps_trained / result.n_steps
        key = next((name for bound, name in _BOUNDS if fraction < bound), ">=60%")
        parts[key] += trial.steps_trained
    total = float(len(result.trials) * result.n_steps)
    return {name: steps / total for name, steps in parts.items()}


def startup_length(result: ReplayResult, n_startup: int) -> int | None:
    """Trials up to the ``n_startup``-th COMPLETE one, in trial-number order (None: fewer
    completed)."""
    n_complete = 0
    for trial in sorted(result.trials, key=lambda t: t.number):
        n_complete += trial.state == "COMPLETE"
        if n_complete == n_startup:
            return trial.number + 1
    return None


def _one(
    args: tuple[CurveTable, str, int, int, int, float | None],
) -> tuple[str, dict[str, float], int | None]:
    table, spec_text, seed, n_trials, n_startup, prior_split = args
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rows, prior = split_for_prior(table, seed, None, prior_split)
    options = {"prior": prior} if prior is not None else None
    pruner = make_table_pruner(parse_pruner_spec(spec_text), rows, options)
    result = replay(rows, pruner, n_trials=n_trials, seed=seed, label=spec_text)
    return table.name, breakdown(result, n_startup), startup_length(result, n_startup)


def main() -> None:
    parser = replay_parser(__doc__)
    parser.add_argument(
        "--startup", type=int, default=5, help="the pruner's n_startup_trials (lcpred: 5)"
    )
    parser.add_argument(
        "--prior-split",
        type=float,
        default=None,
        help="as bench --prior-split: this fraction of each table's rows becomes the prior",
    )
    args = parser.parse_args()
    if args.prior_split is not None and not 0.0 < args.prior_split < 1.0:
        parser.error(f"--prior-split must be in (0, 1), got {args.prior_split}")
    tables = read_curve_tables(args.tables)
    jobs = [
        (t, args.spec, s, args.trials, args.startup, args.prior_split)
        for t in tables
        for s in range(args.seeds)
    ]
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(_one, jobs))
    split = f", prior split {args.prior_split:g}" if args.prior_split is not None else ""
    print(f"{args.spec}, {args.trials} trials, seeds 0-{args.seeds - 1}{split}")
    print(
        f"{'table':40s}"
        + "".join(f"{name:>13s}" for name in _PARTS)
        + f"{'total':>8s}{'startup ends':>16s}"
    )
    for table in [*tables, None]:
        mine = [(p, n) for name, p, n in results if table is None or name == table.name]
        means = [statistics.mean(p[name] for p, _ in mine) for name in _PARTS]
        ends = [n for _, n in mine if n is not None]
        never = len(mine) - len(ends)
        median = f"{statistics.median(ends):.0f}" if ends else "-"
        ended = median + (f" ({never} never)" if never else "")
        label = "all tables" if table is None else table.name
        print(
            f"{label:40s}"
            + "".join(f"{m:13.3f}" for m in means)
            + f"{sum(means):8.3f}{ended:>16s}"
        )
    print(f"{time.perf_counter() - start:.0f} s wall")


if __name__ == "__main__":
    main()
