"""Replay simulator: learning curves from a table, reported to a real Optuna study.

Each drawn trial is an Optuna trial (its hyperparameters fixed to the table row through
``enqueue_trial``) that reports its curve step by step with ``trial.report`` and asks
``trial.should_prune()`` after every step but the last, exactly as a training loop would. ``W``
simulated workers run trials asynchronously on a simulated clock: one step takes one time unit,
and a worker starts the next drawn trial as soon as its trial ends. Events at the same instant
run in worker order, so a replay is deterministic.

A step whose value is NaN (a diverged run) is reported as NaN; a trial that reaches its last step
with a non-finite value ends as FAIL, like an objective that returned NaN.

With a sampler (``bench --sampler``), trials are not drawn: the sampler proposes each trial's
parameters and the table row nearest to them (numeric parameters standardised over their range,
on a log scale where the distribution is) is replayed, so the sampler's choices matter; rows may
repeat, and regret is measured against the whole table.

A pruner that fits its models in the background (``LCPredictionPruner`` with the annealer-trained
SVR) decides with the model it has, as in a real study; the replay then waits for the fit
before the next simulated step, as if each fit took less than one epoch. So results do not
depend on this machine's speed.
"""

from __future__ import annotations

import contextlib
import heapq
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import optuna
from optuna.trial import TrialState

from optuna_lcpred.bench.metrics import epochs_fraction
from optuna_lcpred.bench.metrics import regret
from optuna_lcpred.curves import CurveTable


__all__ = ["ReplayResult", "ReplayTrial", "draw_rows", "replay"]


@dataclass(frozen=True)
class ReplayTrial:
    """One replayed trial.

    Attributes:
        number: Its Optuna trial number.
        row: Its table row.
        worker: The simulated worker that ran it.
        start: Simulated time it started.
        end: Simulated time its last trained step finished.
        steps_trained: Steps it trained (reported).
        state: ``"COMPLETE"``, ``"PRUNED"`` or ``"FAIL"``.
        final: Its true final value from the table (NaN if diverged), known to the benchmark only.
        cumulative_steps: Steps trained by all workers together when it ended.
    """

    number: int
    row: int
    worker: int
    start: int
    end: int
    steps_trained: int
    state: str
    final: float
    cumulative_steps: int


@dataclass(frozen=True)
class ReplayResult:
    """The outcome of one replay (one table, one pruner, one seed)."""

    table: str
    pruner: str
    seed: int
    workers: int
    n_steps: int
    trials: tuple[ReplayTrial, ...]
    drawn_finals: tuple[float, ...]

    @property
    def n_trials(self) -> int:
        """Number of trials replayed."""
        return len(self.trials)

    @property
    def steps_trained(self) -> int:
        """Steps trained by all trials together."""
        return sum(t.steps_trained for t in self.trials)

    @property
    def completed_finals(self) -> list[float]:
        """Final values of the trials that ran to completion."""
        return [t.final for t in self.trials if t.state == "COMPLETE"]

    @property
    def epochs_fraction(self) -> float:
        """Steps trained over ``n_trials * n_steps``."""
        return epochs_fraction(self.steps_trained, self.n_trials, self.n_steps)

    @property
    def regret(self) -> float:
        """Normalised regret of the best completed trial (see :func:`~.metrics.regret`)."""
        return regret(self.completed_finals, self.drawn_finals)

    def early_epochs_fraction(self, n: int) -> float:
        """Steps trained by the first ``n`` drawn trials over ``n * n_steps``."""
        n = min(n, self.n_trials)
        steps = sum(t.steps_trained for t in self.trials if t.number < n)
        return epochs_fraction(steps, n, self.n_steps)

    @property
    def makespan(self) -> int:
        """Simulated time until the last trial ended."""
        return max((t.end for t in self.trials), default=0)


def draw_rows(table: CurveTable, n_trials: int, seed: int) -> np.ndarray:
    """The table rows a seed draws, without replacement, in replay order."""
    if not 1 <= n_trials <= table.n_trials:
        raise ValueError(
            f"n_trials must be in [1, {table.n_trials}] (the rows of table {table.name!r}), "
            f"got {n_trials}"
        )
    return np.random.default_rng(seed).choice(table.n_trials, size=n_trials, replace=False)


@dataclass
class _Running:
    trial: optuna.Trial
    row: int
    start: int
    next_index: int = 0


def replay(
    table: CurveTable,
    pruner: optuna.pruners.BasePruner,
    *,
    n_trials: int,
    seed: int,
    workers: int = 1,
    label: str = "",
    storage: str | optuna.storages.BaseStorage | None = None,
    quiet: bool = True,
    sampler: optuna.samplers.BaseSampler | None = None,
    unique_rows: bool = False,
) -> ReplayResult:
    """Replay ``n_trials`` rows drawn with ``seed`` through a real Optuna study under ``pruner``.

    Args:
        table: The learning curves.
        pruner: A fresh pruner (it may keep state across trials of this study).
        n_trials: Rows to draw, without replacement.
        seed: Seeds the draw and the study's sampler.
        workers: Simulated workers running trials at once.
        label: The pruner's name in the result.
        storage: Optuna storage for the study; in memory by default.
        quiet: Hold Optuna's per-trial log lines back during the replay.
        sampler: Let this sampler choose the parameters (the nearest row is replayed) instead
            of drawing rows.
        unique_rows: With a sampler, replay the nearest row not yet replayed in this study,
            so that no row runs twice (as when rows are drawn).

    Returns:
        The replayed trials, in the order they ended.

    Example:
        >>> import numpy as np, optuna
        >>> from optuna_lcpred.curves import CurveTable
        >>> table = CurveTable({"x": np.arange(4.0)}, np.arange(3),
        ...                    np.array([[3, 2, 1], [4, 3, 2], [5, 4, 3], [6, 5, 4.0]]))
        >>> result = replay(table, optuna.pruners.NopPruner(), n_trials=4, seed=0, workers=2)
        >>> result.epochs_fraction, result.regret
        (1.0, 0.0)
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if unique_rows and n_trials > table.n_trials:
        raise ValueError(
            f"table {table.name!r} has {table.n_trials} rows; cannot replay n_trials={n_trials} "
            "without repeating one"
        )
    nearest = None
    used: set[int] = set()
    if sampler is None:
        rows = draw_rows(table, n_trials, seed)
    else:
        from optuna_lcpred.bench.objective import ReplayObjective

        nearest = ReplayObjective(table)
        rows = np.zeros(n_trials, dtype=np.int64)  # filled as the sampler proposes
    steps = [int(s) for s in table.steps]
    ends = table.end_indices  # a row that stopped itself completes there, with its value
    finals = table.final_values
    distributions = table.distributions()
    study = optuna.create_study(
        storage=storage,
        sampler=sampler if sampler is not None else optuna.samplers.RandomSampler(seed=seed),
        pruner=pruner,
        direction="minimize",
        study_name=f"replay-{table.name}-{label or type(pruner).__name__}-seed{seed}",
    )
    settle = getattr(pruner, "wait_for_fits", None)
    finished: list[ReplayTrial] = []
    running: dict[int, _Running] = {}
    events: list[tuple[int, int]] = []
    next_draw = 0
    total_steps = 0

    def start(worker: int, now: int) -> None:
        nonlocal next_draw
        if nearest is None:
            row = int(rows[next_draw])
            params = table.row_params(row)
            study.enqueue_trial(params)
            trial = study.ask({k: distributions[k] for k in params if k in distributions})
        else:
            trial = study.ask(distributions)
            row = nearest.nearest_row(trial.params, used if unique_rows else ())
            used.add(row)
            rows[next_draw] = row
        next_draw += 1
        running[worker] = _Running(trial=trial, row=row, start=now)
        heapq.heappush(events, (now + 1, worker))

    with _optuna_quiet(quiet), _without_startup_hint():
        for worker in range(min(workers, n_trials)):
            start(worker, 0)
        while events:
            now, worker = heapq.heappop(events)
            run = running[worker]
            index = run.next_index
            value = float(table.curves[run.row, index])
            run.trial.report(value, steps[index])
            total_steps += 1
            state: TrialState | None = None
            if index == ends[run.row]:
                final = float(finals[run.row])
                state = TrialState.COMPLETE if math.isfinite(final) else TrialState.FAIL
            else:
                prune = run.trial.should_prune()
                if settle is not None:
                    settle()
                if prune:
                    state = TrialState.PRUNED
            if state is None:
                run.next_index += 1
                heapq.heappush(events, (now + 1, worker))
                continue
            if state == TrialState.COMPLETE:
                study.tell(run.trial, float(finals[run.row]))
            else:
                study.tell(run.trial, state=state)
            finished.append(
                ReplayTrial(
                    number=run.trial.number,
                    row=run.row,
                    worker=worker,
                    start=run.start,
                    end=now,
                    steps_trained=index + 1,
                    state=state.name,
                    final=float(finals[run.row]),
                    cumulative_steps=total_steps,
                )
            )
            del running[worker]
            if next_draw < n_trials:
                start(worker, now)
    return ReplayResult(
        table=table.name,
        pruner=label or type(pruner).__name__,
        seed=seed,
        workers=workers,
        n_steps=table.n_steps,
        trials=tuple(finished),
        drawn_finals=tuple(float(v) for v in (finals if nearest is not None else finals[rows])),
    )


@contextlib.contextmanager
def _without_startup_hint() -> Iterator[None]:
    """Hold back the pruner's advice to add a startup fallback: a replay measures the pruner
    as it was configured, and the advice would repeat for every replay with many workers."""
    from optuna_lcpred.pruner import is_startup_hint

    def keep(record: logging.LogRecord) -> bool:
        return not is_startup_hint(record)

    logger = logging.getLogger("optuna.lcpred.pruner")
    logger.addFilter(keep)
    try:
        yield
    finally:
        logger.removeFilter(keep)


@contextlib.contextmanager
def _optuna_quiet(enabled: bool) -> Iterator[None]:
    if not enabled:
        yield
        return
    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(previous)
