"""Which predictor decides inside ``LCPredictionPruner(predictor="qsvr")``, and what it costs.

    python benchmarks/qsvr_pruner_choices.py ../shared/data/mlpf_delphes.csv \
        ../shared/data/lcbench ../shared/data/taskset [--seeds 5] [--trials 150] [--jobs 2] \
        [--spec "lcpred:predictor=qsvr,qsvr_options.num_reads=20,..."]

Runs the same replays as ``optuna-lcpred bench --pruners SPEC`` (same rows, seeds and
decisions; the replay waits for the background fits between steps) and prints, per table, the
epochs fraction (median over seeds), the regret (mean over seeds) and how many step fits chose
each predictor (``LCPredictionPruner.selections``; the classical stand-ins that decide while
the first background fit of a step runs are counted too).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor

import optuna

from optuna_lcpred.bench.pruners import make_table_pruner
from optuna_lcpred.bench.pruners import parse_pruner_spec
from optuna_lcpred.bench.replay import replay
from optuna_lcpred.curves import CurveTable
from optuna_lcpred.curves import read_curve_tables
from optuna_lcpred.pruner import LCPredictionPruner


_DEFAULT_SPEC = (
    "lcpred:predictor=qsvr,qsvr_options.num_reads=20,qsvr_options.sampler_params.num_sweeps=200"
)


def _one(args: tuple[CurveTable, str, int, int]) -> tuple[str, float, float, dict[str, int]]:
    table, spec_text, seed, n_trials = args
    pruner = make_table_pruner(parse_pruner_spec(spec_text), table)
    assert isinstance(pruner, LCPredictionPruner)
    result = replay(table, pruner, n_trials=n_trials, seed=seed, label=spec_text)
    return table.name, result.epochs_fraction, result.regret, dict(pruner.selections)


def main() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("tables", nargs="+")
    parser.add_argument("--spec", default=_DEFAULT_SPEC)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--trials", type=int, default=150)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    tables = read_curve_tables(args.tables)
    jobs = [(t, args.spec, s, args.trials) for t in tables for s in range(args.seeds)]
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(_one, jobs))
    print(f"{args.spec}, {args.trials} trials, seeds 0-{args.seeds - 1}")
    print(f"{'table':40s} {'epochs':>7s} {'regret':>7s}  step fits chosen per predictor")
    overall: Counter[str] = Counter()
    for table in tables:
        rows = [r for r in results if r[0] == table.name]
        counts: Counter[str] = Counter()
        for _, _, _, selections in rows:
            counts.update(selections)
        overall.update(counts)
        epochs = statistics.median(r[1] for r in rows)
        regret = statistics.mean(r[2] for r in rows)
        chosen = ", ".join(f"{name} {n}" for name, n in counts.most_common())
        print(f"{table.name:40s} {epochs:7.3f} {regret:7.3f}  {chosen}")
    total = sum(overall.values())
    share = ", ".join(f"{name} {n / total:.0%}" for name, n in overall.most_common())
    print(f"all tables: {share} of {total} step fits; {time.perf_counter() - start:.0f} s wall")


if __name__ == "__main__":
    main()
