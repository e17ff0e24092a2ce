"""An objective that trains nothing: it replays learning curves from a curve table.

Lets ``run``/``worker``, storages, crash handling and pruners be exercised and measured at the
speed of a database, without GPUs (``studies/replay_mlpf.toml``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Collection
from pathlib import Path

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution

from optuna_lcpred.checkpoint import TrialCheckpoint
from optuna_lcpred.curves import CurveTable
from optuna_lcpred.curves import read_curve_table
from optuna_lcpred.curves import resolve_table_path


__all__ = ["ReplayObjective"]


class ReplayObjective:
    """Replay a curve table's rows as if they were training runs.

    Each trial lets the study's sampler propose hyperparameters from the table's distributions
    (so the sampler's choices matter), replays the table row nearest to them (numeric
    parameters standardised over their range, on a log scale where the distribution is; a
    categorical mismatch counts as a full range), reports its curve step by step with
    ``trial.report`` and ``trial.should_prune()``, and returns its final value (the table's
    ``value`` where it has one, else the last step's). A row that stopped itself before the
    last step (a ``value`` and a curve that ends early) stops there too. A NaN step is
    reported like any other; a curve that ends non-finite returns NaN (Optuna marks it FAIL).
    With ``checkpoint_dir``, the steps replayed so far are checkpointed after each report
    (:class:`~optuna_lcpred.checkpoint.TrialCheckpoint`), so a retried trial resumes its row
    where the interrupted one stopped, as a training objective with checkpoints would.

    Args:
        table: a curve table CSV or a bundled table name (``mlpf_delphes``).
        step_seconds: wall-clock seconds each step takes (0: as fast as the storage allows).
        checkpoint_dir: folder for per-trial checkpoints; None keeps none.

    Example:
        >>> import optuna
        >>> optuna.logging.set_verbosity(optuna.logging.WARNING)
        >>> objective = ReplayObjective("mlpf_delphes")
        >>> study = optuna.create_study()
        >>> study.optimize(objective, n_trials=2)
        >>> len(study.trials[0].intermediate_values)
        100
    """

    def __init__(
        self,
        table: str | Path | CurveTable,
        *,
        step_seconds: float = 0.0,
        checkpoint_dir: str | Path | None = None,
    ) -> None:
        if step_seconds < 0:
            raise ValueError(f"step_seconds must be >= 0, got {step_seconds!r}")
        self._table = (
            table if isinstance(table, CurveTable) else read_curve_table(resolve_table_path(table))
        )
        self._step_seconds = step_seconds
        self._checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self._ends = self._table.end_indices
        self._finals = self._table.final_values
        self._distributions = self._table.distributions()
        self._encoded = {
            name: self._encode(name, values)
            for name, values in self._table.params.items()
            if name in self._distributions
        }

    @property
    def table(self) -> CurveTable:
        """The replayed table."""
        return self._table

    @property
    def n_steps(self) -> int:
        """Steps each trial reports (the table's): a study file's ``"10%"`` options use it."""
        return len(self._table.steps)

    def nearest_row(self, params: dict[str, object], exclude: Collection[int] = ()) -> int:
        """The table row closest to ``params`` (first of equals), leaving out ``exclude``.

        Raises:
            ValueError: Every row is excluded.
        """
        if len(exclude) >= self._table.n_trials:
            raise ValueError(f"all {self._table.n_trials} rows of the table are excluded")
        distance = np.zeros(self._table.n_trials)
        for name, encoded in self._encoded.items():
            if name not in params:
                continue
            point = self._encode(name, np.array([params[name]], dtype=encoded.dtype))
            if encoded.dtype == object:
                distance += (encoded != point[0]).astype(float)
            else:
                diff = encoded - point[0]
                distance += np.where(np.isfinite(diff), diff**2, 1.0)
        if exclude:
            distance[np.fromiter(exclude, dtype=np.int64)] = np.inf
        return int(np.argmin(distance))

    def __call__(self, trial: optuna.Trial) -> float:
        params = {
            name: self._suggest(trial, name, dist) for name, dist in self._distributions.items()
        }
        row = self.nearest_row(params)
        trial.set_user_attr("lcpred:row", row)
        end = int(self._ends[row])
        curve = self._table.curves[row, : end + 1]
        steps = [int(step) for step in self._table.steps[: end + 1]]
        checkpoint = (
            TrialCheckpoint(self._checkpoint_dir, trial)
            if self._checkpoint_dir is not None
            else None
        )
        done = 0
        if checkpoint is not None and (saved := checkpoint.load()) is not None:
            done = int(saved[1]["replayed"])
            checkpoint.report([float(v) for v in curve[:done]], steps[:done])
        for index in range(done, len(steps)):
            if self._step_seconds:
                time.sleep(self._step_seconds)
            trial.report(float(curve[index]), steps[index])
            if checkpoint is not None:
                checkpoint.save(steps[index], {"replayed": index + 1})
            if index < len(steps) - 1 and trial.should_prune():
                if checkpoint is not None:
                    checkpoint.remove()
                raise optuna.TrialPruned(f"pruned at step {steps[index]}")
        if checkpoint is not None:
            checkpoint.remove()
        return float(self._finals[row])

    def _encode(self, name: str, values: np.ndarray) -> np.ndarray:
        dist = self._distributions[name]
        if isinstance(dist, CategoricalDistribution):
            return values.astype(object)
        assert isinstance(dist, (FloatDistribution, IntDistribution))
        x = values.astype(float)
        low, high = float(dist.low), float(dist.high)
        if dist.log:
            x, low, high = np.log(np.maximum(x, 1e-300)), math.log(low), math.log(high)
        return (x - low) / (high - low) if high > low else np.zeros_like(x)

    @staticmethod
    def _suggest(trial: optuna.Trial, name: str, dist: object) -> object:
        if isinstance(dist, CategoricalDistribution):
            return trial.suggest_categorical(name, dist.choices)
        if isinstance(dist, IntDistribution):
            return trial.suggest_int(name, dist.low, dist.high, log=dist.log)
        assert isinstance(dist, FloatDistribution)
        return trial.suggest_float(name, dist.low, dist.high, log=dist.log)
