"""Where do the runs of a sampler with and without ``PredictedFinalSampler`` part, and why?

    python benchmarks/sampler_parting.py ../shared/data/mlpf_delphes.csv \
        ../shared/data/lcbench ../shared/data/taskset [--sampler tpe] [--spec lcpred] \
        [--seeds 10] [--trials 150] [--unique-rows] [--jobs 2]

Runs the replays of ``optuna-lcpred bench --pruners SPEC --sampler S`` and ``--sampler
S+predicted`` (same seeds, same rows) and finds, for each seed, the first trial whose proposal
differs between the two: before it both runs saw the same trials and took the same decisions.
At that trial it looks at the group of trials that TPE models as good (the best
``min(ceil(0.1 n), 25)`` of the ``n`` finished trials, its default ``gamma``) as the wrapper
shows them: COMPLETE trials at their value, PRUNED ones that carry a prediction at that
prediction. A PRUNED member of that group is what the wrapper changed. For each such member:
its prediction against its true final (in units of the regret's scale), and whether its row is
one a COMPLETE trial before it had already run (with rows that repeat, a re-run of a finished
row) and, if so, whether the prediction ranks it ahead of that finished run of the same curve.
Last, on how many seeds the wrapper's run ended with lower, equal or higher regret.
"""

from __future__ import annotations

import math
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
import optuna
from _replay_cli import replay_parser

from optuna_lcpred._trials import predicted_final_value
from optuna_lcpred.bench.pruners import make_table_pruner
from optuna_lcpred.bench.replay import ReplayResult
from optuna_lcpred.bench.replay import replay
from optuna_lcpred.bench.samplers import make_bench_sampler
from optuna_lcpred.curves import CurveTable
from optuna_lcpred.curves import read_curve_tables
from optuna_lcpred.sampler import ATTR_PRED_FINAL


def _run(
    table: CurveTable, spec: str, sampler: str, seed: int, trials: int, unique_rows: bool
) -> tuple[ReplayResult, list[optuna.trial.FrozenTrial]]:
    storage = optuna.storages.InMemoryStorage()
    result = replay(
        table,
        make_table_pruner(spec, table),
        n_trials=trials,
        seed=seed,
        sampler=make_bench_sampler(sampler, seed),
        unique_rows=unique_rows,
        storage=storage,
    )
    (name,) = optuna.study.get_all_study_names(storage)
    study = optuna.load_study(study_name=name, storage=storage)
    return result, sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)


def parting(
    table: CurveTable,
    spec: str,
    sampler: str,
    seed: int,
    trials: int = 150,
    unique_rows: bool = False,
) -> dict[str, Any]:
    """One seed: where the two runs part, the wrapper's good group there, both regrets."""
    plain, _ = _run(table, spec, sampler, seed, trials, unique_rows)
    wrapped, frozen = _run(table, spec, f"{sampler}+predicted", seed, trials, unique_rows)
    rows_plain = {t.number: t.row for t in plain.trials}
    rows_wrapped = {t.number: t.row for t in wrapped.trials}
    part = next((n for n in range(trials) if rows_plain[n] != rows_wrapped[n]), None)
    finals = np.asarray(wrapped.drawn_finals, dtype=np.float64)
    finite = finals[np.isfinite(finals)]
    scale = float(np.median(finite) - finite.min())
    members: list[dict[str, Any]] = []
    if part is not None:
        seen = [t for t in frozen if t.number < part and t.state.is_finished()]
        shown: list[tuple[float, int, bool]] = []  # (value shown, trial number, pruned)
        for t in seen:
            if t.state == optuna.trial.TrialState.COMPLETE and t.value is not None:
                shown.append((float(t.value), t.number, False))
            else:
                value = predicted_final_value(t, ATTR_PRED_FINAL)
                if value is not None:
                    shown.append((value, t.number, True))
        shown.sort()
        good = shown[: min(math.ceil(0.1 * len(seen)), 25)]
        finished_rows = {
            rows_wrapped[number]: value for value, number, pruned in shown if not pruned
        }
        for value, number, pruned in good:
            if not pruned:
                continue
            row = rows_wrapped[number]
            twin = finished_rows.get(row)
            members.append(
                {
                    "error": (value - float(table.curves[row, -1])) / scale,
                    "rerun": twin is not None,
                    "ahead_of_twin": twin is not None and value < twin,
                }
            )
    return {
        "table": table.name,
        "seed": seed,
        "part": part,
        "members": members,
        "regrets": (plain.regret, wrapped.regret),
        "rows": ([rows_plain[n] for n in range(trials)], [rows_wrapped[n] for n in range(trials)]),
    }


def _packed(args: tuple[Any, ...]) -> dict[str, Any]:
    return parting(*args)


def summary_rows(records: list[dict[str, Any]]) -> list[str]:
    """Markdown rows, one per table and one for all tables together."""
    by_table: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_table.setdefault(record["table"], []).append(record)
    lines = []
    for name, group in [*by_table.items(), ("all tables", records)]:
        parts = [r["part"] for r in group if r["part"] is not None]
        members = [m for r in group for m in r["members"]]
        reruns = [m for m in members if m["rerun"]]
        errors = [abs(m["error"]) for m in members]
        diffs = [r["regrets"][1] - r["regrets"][0] for r in group]
        lines.append(
            f"| {name} | {len(parts)} / {len(group)} "
            f"| {np.median(parts) if parts else float('nan'):.0f} "
            f"| {len(members)} | {len(reruns)} | {sum(m['ahead_of_twin'] for m in reruns)} "
            f"| {np.median(errors) if errors else float('nan'):.3f} "
            f"| {sum(d < 0 for d in diffs)} / {sum(d == 0 for d in diffs)} "
            f"/ {sum(d > 0 for d in diffs)} |"
        )
    return lines


def main() -> None:
    parser = replay_parser(__doc__ or "")
    parser.add_argument("--sampler", default="tpe", help="the sampler without +predicted")
    parser.add_argument("--unique-rows", action="store_true", help="as bench --unique-rows")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    started = time.perf_counter()
    tables = read_curve_tables(args.tables)
    jobs = [
        (table, args.spec, args.sampler, seed, args.trials, args.unique_rows)
        for table in tables
        for seed in range(args.seeds)
    ]
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        records = list(pool.map(_packed, jobs))
    print(
        "| table | seeds parted | median parting trial | pruned in the good group there "
        "| re-runs of a finished row | ranked ahead of it | median abs(pred - final) "
        "| wrapper's regret lower / equal / higher |"
    )
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(summary_rows(records)))
    print(f"\n{len(jobs)} seed pairs in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
