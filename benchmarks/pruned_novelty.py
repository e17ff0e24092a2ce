"""Are the runs whose pruning cost regret unlike the finished runs, in the hyperparameters?

    python benchmarks/pruned_novelty.py ../shared/data/mlpf_delphes.csv \
        ../shared/data/lcbench ../shared/data/taskset [--spec lcpred] [--seeds 5] \
        [--trials 150] [--workers 1] [--jobs 2]

A check made before building a spread that widens with a trial's distance from the runs its
model learned from (as a Gaussian process's does): such a rule can only keep the runs it should
keep if those runs lie further from the finished ones than pruned runs in general.

Runs the same replays as ``optuna-lcpred bench --pruners SPEC``. For every PRUNED trial stopped
once at least three trials had COMPLETED, it measures the distance from its hyperparameters to
the nearest of those COMPLETE trials' (each numeric parameter as its rank in the table, scaled
to [0, 1]; each categorical one one-hot, scaled so that a different choice counts 1). A prune
is *costly* when the trial's final value is better than the best final the replay completed:
the run would have beaten what the study found. Per table: the costly prunes, the median
distance of the costly and of all prunes, and where the costly ones' distances rank among all
prunes of the table (0.5: as far as a pruned trial picked at random; 1: the furthest). The last
lines pool the tables (ranks are taken within each table, whose distances have different
scales) and test whether costly prunes rank higher than 0.5 (one-sided Wilcoxon signed-rank
test on rank - 0.5).
"""

from __future__ import annotations

import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import optuna
from _replay_cli import replay_parser
from scipy.stats import rankdata
from scipy.stats import wilcoxon

from optuna_lcpred.bench.pruners import make_table_pruner
from optuna_lcpred.bench.pruners import parse_pruner_spec
from optuna_lcpred.bench.replay import ReplayResult
from optuna_lcpred.bench.replay import replay
from optuna_lcpred.curves import CurveTable
from optuna_lcpred.curves import read_curve_tables
from optuna_lcpred.features import encode_hyperparameters


_MIN_COMPLETE = 3


def hyperparameter_matrix(table: CurveTable) -> np.ndarray:
    """One row per table row: the predictors' encoding (:func:`encode_hyperparameters`), with
    each numeric parameter as its rank in [0, 1] and each one-hot block scaled so that a
    different choice counts 1."""
    columns = []
    for name, values in table.params.items():
        values = np.asarray(values)
        if values.dtype.kind not in "fiu":  # text of any dtype is a categorical
            values = values.astype(object)
        block = encode_hyperparameters({name: values})
        if values.dtype == object:
            columns.append(block / np.sqrt(2.0))
        else:  # one column, missing values already at the mean
            columns.append(((rankdata(block[:, 0]) - 1.0) / max(len(block) - 1, 1))[:, None])
    return np.hstack(columns)


def prune_distances(result: ReplayResult, X: np.ndarray) -> list[tuple[float, bool]]:
    """(distance to the nearest COMPLETE trial finished before it, costly) per pruned trial."""
    trials = sorted(result.trials, key=lambda t: (t.end, t.number))
    completed = [t.final for t in trials if t.state == "COMPLETE"]
    best_found = min(completed) if completed else np.inf
    out = []
    for trial in trials:
        if trial.state != "PRUNED":
            continue
        before = [t.row for t in trials if t.state == "COMPLETE" and t.end <= trial.end]
        if len(before) < _MIN_COMPLETE:
            continue
        distance = float(np.min(np.linalg.norm(X[before] - X[trial.row], axis=1)))
        out.append((distance, bool(trial.final < best_found)))
    return out


def _one(args: tuple[CurveTable, str, int, int, int]) -> tuple[str, list[tuple[float, bool]]]:
    table, spec_text, seed, n_trials, workers = args
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    pruner = make_table_pruner(parse_pruner_spec(spec_text), table)
    result = replay(table, pruner, n_trials=n_trials, seed=seed, workers=workers)
    return table.name, prune_distances(result, hyperparameter_matrix(table))


def costly_ranks(prunes: list[tuple[float, bool]]) -> np.ndarray:
    """Each costly prune's distance as a rank among all prunes, in [0, 1] (ties: midrank)."""
    distances = np.array([d for d, _ in prunes])
    costly = np.array([c for _, c in prunes], dtype=bool)
    if len(distances) < 2:
        return np.full(int(costly.sum()), 0.5)
    ranks = (rankdata(distances) - 1.0) / (len(distances) - 1)
    return ranks[costly]


def main() -> None:
    parser = replay_parser(__doc__)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    tables = read_curve_tables(args.tables)
    jobs = [
        (t, args.spec, s, args.trials, args.workers) for t in tables for s in range(args.seeds)
    ]
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(_one, jobs))
    print(f"{args.spec}, {args.trials} trials, {args.workers} worker(s), seeds 0-{args.seeds - 1}")
    print(
        f"{'table':40s}{'costly / prunes':>17s}{'distance: costly':>18s}{'all':>7s}"
        f"{'rank of costly':>16s}"
    )
    pooled: list[float] = []
    for table in tables:
        prunes = [p for name, out in results if name == table.name for p in out]
        ranks = costly_ranks(prunes)
        pooled.extend(ranks)
        distances = np.array([d for d, _ in prunes]) if prunes else np.array([np.nan])
        costly = np.array([d for d, c in prunes if c])
        costly_text = f"{np.median(costly):.3f}" if costly.size else "-"
        rank_text = f"{np.mean(ranks):.2f}" if ranks.size else "-"
        print(
            f"{table.name:40s}{f'{costly.size} / {len(prunes)}':>17s}{costly_text:>18s}"
            f"{np.median(distances):7.3f}{rank_text:>16s}"
        )
    if pooled:
        ranks = np.array(pooled)
        test = (
            f", one-sided Wilcoxon p = {wilcoxon(ranks - 0.5, alternative='greater').pvalue:.2f}"
            if np.any(ranks != 0.5)
            else ""
        )
        print(
            f"all tables: {len(ranks)} costly prunes, rank mean {ranks.mean():.2f}, "
            f"median {np.median(ranks):.2f}, above 0.5: {int((ranks > 0.5).sum())}{test}"
        )
    else:
        print("all tables: no costly prunes")
    print(f"{time.perf_counter() - start:.0f} s wall")


if __name__ == "__main__":
    main()
