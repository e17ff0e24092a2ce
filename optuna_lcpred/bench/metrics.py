"""Benchmark metrics of DESIGN section 8 and the oracle pruner."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


__all__ = [
    "OracleOutcome",
    "epochs_fraction",
    "oracle_outcome",
    "regret",
    "regret_at",
    "regret_trace",
]


def epochs_fraction(steps_trained: int, n_trials: int, n_steps: int) -> float:
    """Steps trained over the steps of training every trial fully (``n_trials * n_steps``)."""
    if n_trials <= 0 or n_steps <= 0:
        raise ValueError(f"n_trials and n_steps must be positive, got {n_trials}, {n_steps}")
    return steps_trained / float(n_trials * n_steps)


def regret(completed_finals: Sequence[float] | np.ndarray, drawn_finals: Sequence[float]) -> float:
    """Normalised regret of the best completed trial.

    ``(best completed final - best drawn final) / (median drawn final - best drawn final)``, over
    the finite finals (a diverged trial has none). 0 means the best drawn model was found; 1 means
    the model found is only as good as the median trial. If no trial completed with a finite
    final, the result is the regret of the worst drawn trial (finding nothing is no better). If
    no drawn trial has a finite final, there was nothing to find and the regret is 0.

    Example:
        >>> regret([3.0, 2.0], [1.0, 2.0, 3.0, 5.0, 9.0])
        0.5
    """
    drawn = np.asarray(drawn_finals, dtype=np.float64)
    drawn = drawn[np.isfinite(drawn)]
    if drawn.size == 0:
        return 0.0
    best = float(drawn.min())
    scale = float(np.median(drawn)) - best
    completed = np.asarray(completed_finals, dtype=np.float64)
    completed = completed[np.isfinite(completed)]
    found = float(completed.min()) if completed.size else float(drawn.max())
    gap = found - best
    if gap <= 0.0:
        return 0.0
    if scale <= 0.0:
        return 1.0  # half or more of the trials tie with the best: any gap is a full miss
    return gap / scale


def regret_trace(
    completions: Sequence[tuple[int, float]], drawn_finals: Sequence[float]
) -> list[tuple[int, float]]:
    """The regret of a run as it goes: where it stands after each number of steps trained.

    Args:
        completions: ``(cumulative steps trained when it finished, final value)`` of each trial
            that ran to completion.
        drawn_finals: The final values regret is measured against (see :func:`regret`).

    Returns:
        ``(steps, regret)`` pairs with strictly increasing steps: ``(0, regret of finding
        nothing)``, then one pair at each completion that changed the regret.

    Example:
        >>> regret_trace([(10, 3.0), (25, 5.0), (40, 1.0)], [1.0, 2.0, 3.0, 5.0, 9.0])
        [(0, 4.0), (10, 1.0), (40, 0.0)]
    """
    trace = [(0, regret([], drawn_finals))]
    best = math.inf
    for steps, final in sorted(completions):
        if not final < best:
            continue
        best = float(final)
        value = regret([best], drawn_finals)
        if value != trace[-1][1]:  # a trial trains at least one step: steps > 0 here
            trace.append((int(steps), value))
    return trace


def regret_at(trace: Sequence[Sequence[float]], steps: float) -> float:
    """The regret of a run stopped once it had trained ``steps`` steps, from its
    :func:`regret_trace` (a trial counts if it finished within those steps).

    Example:
        >>> trace = regret_trace([(10, 3.0), (40, 1.0)], [1.0, 2.0, 3.0, 5.0, 9.0])
        >>> regret_at(trace, 39), regret_at(trace, 40)
        (1.0, 0.0)
    """
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    value = float(trace[0][1])
    for at, regret_then in trace:
        if at > steps:
            break
        value = float(regret_then)
    return value


@dataclass(frozen=True)
class OracleOutcome:
    """What the oracle does with a draw.

    Attributes:
        completed: Draw positions of the trials it trains to the end (each a new best).
        steps_trained: Total steps: ``n_steps`` per completed trial, 1 per other trial.
        completion_steps: Cumulative steps trained when each completed trial finished.
    """

    completed: tuple[int, ...]
    steps_trained: int
    completion_steps: tuple[int, ...]


def oracle_outcome(
    finals_in_draw_order: Sequence[float] | np.ndarray,
    n_steps: int,
    lengths: Sequence[int] | np.ndarray | None = None,
) -> OracleOutcome:
    """The oracle: trains only the trials that become a new best, prunes the rest at step 0.

    Trials run one after another in draw order; a diverged trial (non-finite final) is never a
    new best. The oracle's regret is 0 by construction. A trial it trains costs ``n_steps``, or
    its entry of ``lengths`` (the steps of a trial that stopped itself earlier).

    Example:
        >>> oracle_outcome([5.0, 6.0, 4.0, 4.0, 1.0], n_steps=10).completed
        (0, 2, 4)
    """
    best = math.inf
    completed: list[int] = []
    completion_steps: list[int] = []
    total = 0
    for position, value in enumerate(np.asarray(finals_in_draw_order, dtype=np.float64)):
        if math.isfinite(value) and value < best:
            best = float(value)
            total += n_steps if lengths is None else int(lengths[position])
            completed.append(position)
            completion_steps.append(total)
        else:
            total += 1
    return OracleOutcome(tuple(completed), total, tuple(completion_steps))
