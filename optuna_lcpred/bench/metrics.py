"""Benchmark metrics of DESIGN section 8 and the oracle pruner."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


__all__ = ["OracleOutcome", "epochs_fraction", "oracle_outcome", "regret"]


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
    finals_in_draw_order: Sequence[float] | np.ndarray, n_steps: int
) -> OracleOutcome:
    """The oracle: trains only the trials that become a new best, prunes the rest at step 0.

    Trials run one after another in draw order; a diverged trial (non-finite final) is never a
    new best. The oracle's regret is 0 by construction.

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
            total += n_steps
            completed.append(position)
            completion_steps.append(total)
        else:
            total += 1
    return OracleOutcome(tuple(completed), total, tuple(completion_steps))
