"""The benchmark: every pruner on every table over several seeds, plus the oracle."""

from __future__ import annotations

import math
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import numpy as np

from optuna_lcpred.bench.metrics import epochs_fraction
from optuna_lcpred.bench.metrics import oracle_outcome
from optuna_lcpred.bench.metrics import regret
from optuna_lcpred.bench.metrics import regret_trace
from optuna_lcpred.bench.pruners import PrunerSpec
from optuna_lcpred.bench.pruners import make_table_pruner
from optuna_lcpred.bench.pruners import parse_pruner_spec
from optuna_lcpred.bench.replay import draw_rows
from optuna_lcpred.bench.replay import replay
from optuna_lcpred.bench.samplers import SAMPLERS
from optuna_lcpred.bench.samplers import SamplerSpec
from optuna_lcpred.bench.samplers import make_bench_sampler
from optuna_lcpred.bench.samplers import parse_sampler_spec
from optuna_lcpred.curves import CurveTable


__all__ = [
    "ORACLE",
    "SAMPLERS",
    "BenchReport",
    "RunSummary",
    "TableReport",
    "read_regret_traces",
    "run_benchmark",
    "split_for_prior",
]

ORACLE = "oracle"


@dataclass(frozen=True)
class RunSummary:
    """One (table, pruner, seed) run, reduced to what reports and plots need.

    Attributes:
        seed: The seed.
        epochs_fraction: Steps trained over ``n_trials * n_steps``.
        regret: Normalised regret of the best completed trial.
        completions: ``(cumulative steps, final value)`` of each trial that completed, in the
            order they completed.
        drawn_finals: The final values of all drawn trials.
        states: Count of trials by end state.
        makespan: Simulated time until the last trial ended.
        early_epochs_fraction: Steps trained by the first ``early`` drawn trials over
            ``early * n_steps`` (how much a pruner saves before it has learned much).
        steps_trained: Steps trained by all trials together.
    """

    seed: int
    epochs_fraction: float
    regret: float
    completions: tuple[tuple[int, float], ...]
    drawn_finals: tuple[float, ...]
    states: dict[str, int]
    makespan: int
    early_epochs_fraction: float = float("nan")
    steps_trained: int = 0


@dataclass
class TableReport:
    """Results for one table: per pruner spec (and ``oracle``), one summary per seed."""

    name: str
    n_steps: int
    n_rows: int
    n_trials: int
    seeds: list[int]
    workers: int
    runs: dict[str, list[RunSummary]] = field(default_factory=dict)
    early: int = 30
    prior: str = ""
    sampler: str = ""
    unique_rows: bool = False

    def epochs_fraction(self, pruner: str) -> float:
        """Median over seeds."""
        return float(np.median([r.epochs_fraction for r in self.runs[pruner]]))

    def early_epochs_fraction(self, pruner: str) -> float:
        """Median over seeds of the first ``early`` trials' epochs fraction."""
        return float(np.median([r.early_epochs_fraction for r in self.runs[pruner]]))

    def regret(self, pruner: str) -> float:
        """Mean over seeds."""
        return float(np.mean([r.regret for r in self.runs[pruner]]))


@dataclass
class BenchReport:
    """The whole benchmark; :meth:`to_json` gives the documented JSON layout."""

    tables: list[TableReport]

    def to_json(self) -> dict[str, Any]:
        """``{"tables": {stem: {"T", "n_trials", "seeds", "workers", "results": {...}}}}``."""
        out: dict[str, Any] = {}
        for table in self.tables:
            results: dict[str, Any] = {}
            for pruner, runs in table.runs.items():
                results[pruner] = {
                    "epochs_fraction": table.epochs_fraction(pruner),
                    "regret": _json_float(table.regret(pruner)),
                    "epochs_fraction_per_seed": [r.epochs_fraction for r in runs],
                    "regret_per_seed": [_json_float(r.regret) for r in runs],
                    "makespan_per_seed": [r.makespan for r in runs],
                    "states": _sum_states(runs),
                    "epochs_fraction_early": _json_float(table.early_epochs_fraction(pruner)),
                    "steps_trained_per_seed": [r.steps_trained for r in runs],
                    "regret_trace_per_seed": [
                        [[steps, _json_float(value)] for steps, value in trace]
                        for trace in (regret_trace(r.completions, r.drawn_finals) for r in runs)
                    ],
                }
            out[table.name] = {
                "T": table.n_steps,
                "n_trials": table.n_trials,
                "seeds": len(table.seeds),
                "workers": table.workers,
                "seed_values": table.seeds,
                "early_trials": table.early,
                "prior": table.prior,
                "sampler": table.sampler,
                "unique_rows": table.unique_rows,
                "results": results,
            }
        return {"tables": out}


def run_benchmark(
    tables: Sequence[CurveTable],
    pruners: Sequence[PrunerSpec | str],
    *,
    n_trials: int = 150,
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    workers: int = 1,
    jobs: int = 1,
    progress: Callable[[int], None] | None = None,
    prior: CurveTable | None = None,
    prior_split: float | None = None,
    early: int = 30,
    sampler: str | SamplerSpec | None = None,
    unique_rows: bool = False,
) -> BenchReport:
    """Replay every pruner on every table for every seed; the oracle is always added.

    Args:
        tables: Curve tables; each must have at least ``n_trials`` rows.
        pruners: Pruner specs (see :mod:`optuna_lcpred.bench.pruners`).
        n_trials: Trials drawn per seed, without replacement.
        seeds: The seeds; seed ``s`` draws the same rows for every pruner.
        workers: Simulated workers running trials at once.
        jobs: Processes running replays in parallel (results do not depend on it).
        progress: Called with the number of replays just finished.
        prior: Curves from another campaign, given to every pruner that takes a ``prior``.
        prior_split: For each seed, this fraction of each table's rows (drawn with the seed)
            becomes the prior of the pruners that take one and is left out of the draw, for
            every pruner and the oracle alike.
        early: The first this many drawn trials are also reported on their own.
        sampler: A sampler spec (``tpe``, ``gp+predicted:n_startup_trials=20``; names in
            :data:`SAMPLERS`, see ``optuna_lcpred.bench.samplers``): the sampler, seeded with
            the replay's seed, proposes the parameters and the nearest table row is replayed
            (rows may repeat; regret against the whole table; no oracle). By default rows are
            drawn at random without replacement.
        unique_rows: With a sampler, replay the nearest row not yet replayed in that study,
            so no row runs twice.

    Raises:
        ValueError: A table has too few rows, or a spec is invalid (checked before any replay).
    """
    specs = [parse_pruner_spec(p) if isinstance(p, str) else p for p in pruners]
    if not seeds:
        raise ValueError("seeds must not be empty")
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    if prior is not None and prior_split is not None:
        raise ValueError("give a prior table or a prior split, not both")
    if prior_split is not None and not 0.0 < prior_split < 1.0:
        raise ValueError(f"prior_split must be in (0, 1), got {prior_split!r}")
    if early < 1:
        raise ValueError(f"early must be >= 1, got {early}")
    if isinstance(sampler, str):
        sampler = parse_sampler_spec(sampler)  # a bad spec fails before any replay
    elif sampler is None and unique_rows:
        raise ValueError("unique_rows applies only with a sampler (drawn rows never repeat)")
    reports: list[TableReport] = []
    tasks: list[tuple[int, tuple[CurveTable, CurveTable | None], PrunerSpec, int]] = []
    for table in tables:  # validate everything before any work
        for spec in specs:
            make_table_pruner(spec, table)
        available = table.n_trials - _prior_rows(table, prior_split)
        if (sampler is None or unique_rows) and n_trials > available:
            raise ValueError(
                f"table {table.name!r} has {available} rows to draw from; cannot draw "
                f"n_trials={n_trials} without replacement"
            )
    for index, table in enumerate(tables):
        report = TableReport(
            name=table.name,
            n_steps=table.n_steps,
            n_rows=table.n_trials,
            n_trials=n_trials,
            seeds=list(seeds),
            workers=workers,
            early=early,
            sampler=sampler.text if sampler is not None else "",
            unique_rows=unique_rows,
            prior=(
                prior.name
                if prior is not None
                else f"{prior_split:g} of the rows"
                if prior_split is not None
                else ""
            ),
        )
        report.runs = {spec.text: [] for spec in specs}
        splits = {seed: split_for_prior(table, seed, prior, prior_split) for seed in seeds}
        if sampler is None:
            report.runs[ORACLE] = [
                _oracle_run(splits[seed][0], n_trials, seed, early) for seed in seeds
            ]
        reports.append(report)
        tasks.extend((index, splits[seed], spec, seed) for spec in specs for seed in seeds)

    def collect(results: Any) -> None:
        for (index, _split_tables, spec, _seed), summary in zip(tasks, results, strict=True):
            reports[index].runs[spec.text].append(summary)
            if progress is not None:
                progress(1)

    args = [
        (work, spec, seed, n_trials, workers, prior_table, early, sampler, unique_rows)
        for _, (work, prior_table), spec, seed in tasks
    ]
    if jobs == 1 or len(args) <= 1:
        collect(_run_one(*a) for a in args)
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            collect(pool.map(_run_one_packed, args, chunksize=1))
    for report in reports:
        report.runs = {k: sorted(v, key=lambda r: r.seed) for k, v in report.runs.items()}
        if ORACLE in report.runs:  # last
            report.runs[ORACLE] = report.runs.pop(ORACLE)
    return BenchReport(reports)


def _prior_rows(table: CurveTable, prior_split: float | None) -> int:
    return round(prior_split * table.n_trials) if prior_split is not None else 0


def split_for_prior(
    table: CurveTable, seed: int, prior: CurveTable | None, prior_split: float | None
) -> tuple[CurveTable, CurveTable | None]:
    """The rows one seed's replay draws from, and its prior.

    With ``prior_split``, that fraction of the table's rows (drawn with the seed, independently
    of the replay's own draw) becomes the prior and the rest the rows to draw from; otherwise
    the table and ``prior`` as given. ``bench --prior-split`` and the scripts in
    ``benchmarks/`` split the same way.
    """
    if prior_split is None:
        return table, prior
    rng = np.random.default_rng([seed, 7919])  # independent of the draw's own generator
    order = rng.permutation(table.n_trials)
    n_prior = _prior_rows(table, prior_split)
    prior_rows, work_rows = np.sort(order[:n_prior]), np.sort(order[n_prior:])
    return table.subset(work_rows), table.subset(prior_rows, name=f"{table.name}-prior")


def _run_one_packed(
    args: tuple[
        CurveTable, PrunerSpec, int, int, int, CurveTable | None, int, SamplerSpec | None, bool
    ],
) -> RunSummary:
    return _run_one(*args)


def _run_one(
    table: CurveTable,
    spec: PrunerSpec,
    seed: int,
    n_trials: int,
    workers: int,
    prior: CurveTable | None = None,
    early: int = 30,
    sampler: SamplerSpec | None = None,
    unique_rows: bool = False,
) -> RunSummary:
    result = replay(
        table,
        make_table_pruner(spec, table, {"prior": prior} if prior is not None else None),
        n_trials=n_trials,
        seed=seed,
        workers=workers,
        label=spec.text,
        sampler=make_bench_sampler(sampler, seed) if sampler is not None else None,
        unique_rows=unique_rows,
    )
    completions = tuple(
        (t.cumulative_steps, t.final) for t in result.trials if t.state == "COMPLETE"
    )
    states: dict[str, int] = {}
    for trial in result.trials:
        states[trial.state] = states.get(trial.state, 0) + 1
    return RunSummary(
        seed=seed,
        epochs_fraction=result.epochs_fraction,
        regret=result.regret,
        completions=completions,
        drawn_finals=result.drawn_finals,
        states=states,
        makespan=result.makespan,
        early_epochs_fraction=result.early_epochs_fraction(early),
        steps_trained=result.steps_trained,
    )


def _oracle_run(table: CurveTable, n_trials: int, seed: int, early: int = 30) -> RunSummary:
    rows = draw_rows(table, n_trials, seed)
    finals = table.final_values[rows]
    lengths = table.end_indices[rows] + 1
    outcome = oracle_outcome(finals, table.n_steps, lengths)
    completed = [float(finals[i]) for i in outcome.completed]
    n_early = min(early, n_trials)
    early_steps = oracle_outcome(finals[:n_early], table.n_steps, lengths).steps_trained
    return RunSummary(
        seed=seed,
        epochs_fraction=epochs_fraction(outcome.steps_trained, n_trials, table.n_steps),
        regret=regret(completed, finals),
        completions=tuple(zip(outcome.completion_steps, completed, strict=True)),
        drawn_finals=tuple(float(v) for v in finals),
        states={"COMPLETE": len(completed), "PRUNED": n_trials - len(completed)},
        makespan=outcome.steps_trained,
        early_epochs_fraction=epochs_fraction(early_steps, n_early, table.n_steps),
        steps_trained=outcome.steps_trained,
    )


def _sum_states(runs: Sequence[RunSummary]) -> dict[str, int]:
    total: dict[str, int] = {}
    for run in runs:
        for state, count in run.states.items():
            total[state] = total.get(state, 0) + count
    return total


def _json_float(value: float) -> float | None:
    return value if math.isfinite(value) else None


def read_regret_traces(result: Mapping[str, Any]) -> list[list[tuple[int, float]]]:
    """The per-seed regret traces of one pruner's ``results`` entry in :meth:`BenchReport.to_json`
    (a regret written as ``null``, never finite, reads back as ``inf``).

    Raises:
        KeyError: The entry has no ``regret_trace_per_seed`` (bench files before 2026-12-06).
    """
    return [
        [(int(at), math.inf if value is None else float(value)) for at, value in trace]
        for trace in result["regret_trace_per_seed"]
    ]
