"""The whole workflow on randomised studies: the sampler wrapper proposes, the pruner decides,
the dashboard callback publishes, ``study_report`` explains, the study is exported as a curve
table and that table warm-starts the next study.

Each case is drawn from a fixed seed (storage, base sampler, direction, steps, settings), so a
failure names the case that reproduces it.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.study import StudyDirection
from optuna.trial import TrialState

from optuna_lcpred import LCPredictionPruner
from optuna_lcpred import PredictedFinalSampler
from optuna_lcpred import read_curve_table
from optuna_lcpred import study_report
from optuna_lcpred import study_to_curve_table
from optuna_lcpred import write_curve_table
from optuna_lcpred.dashboard import pruning_note
from optuna_lcpred.prior import PriorError


N_CASES = 12


def _storage(kind: int, tmp_path: Path) -> optuna.storages.BaseStorage | str | None:
    if kind == 0:
        return None
    if kind == 1:
        return f"sqlite:///{tmp_path / 'db.sqlite3'}"
    from optuna.storages.journal import JournalFileBackend

    return optuna.storages.JournalStorage(JournalFileBackend(str(tmp_path / "journal.log")))


@pytest.mark.parametrize("case", range(N_CASES))
def test_randomised_workflow(case: int, tmp_path: Path) -> None:
    rng = np.random.default_rng(1000 + case)
    direction = [StudyDirection.MINIMIZE, StudyDirection.MAXIMIZE][int(rng.integers(2))]
    sign = 1.0 if direction == StudyDirection.MINIMIZE else -1.0
    n_steps, stride = int(rng.integers(2, 20)), int(rng.integers(1, 4))
    base = [
        optuna.samplers.RandomSampler(seed=case),
        optuna.samplers.TPESampler(seed=case, constant_liar=True),
        optuna.samplers.TPESampler(seed=case),
    ][int(rng.integers(3))]
    pruner = LCPredictionPruner(
        n_startup_trials=int(rng.integers(1, 6)),
        n_warmup_steps=int(rng.integers(0, 3)),
        audit_fraction=[0.0, 0.2][int(rng.integers(2))],
    )
    study = optuna.create_study(
        direction=direction,
        pruner=pruner,
        sampler=PredictedFinalSampler(base),
        storage=_storage(case % 3, tmp_path),
    )

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        if rng.random() < 0.5:
            trial.suggest_categorical("c", ["a", "b", "c"])
        n = trial.suggest_int("n", 1, 4)
        value = math.nan
        for step in range(0, n_steps * stride, stride):
            value = sign * (0.2 + abs(x - 0.3) + 0.1 * n + rng.uniform(0.1, 2.0) / (step + 1))
            if rng.random() < 0.02:
                value = math.nan
            trial.report(value, step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        if not math.isfinite(value):
            raise ArithmeticError("diverged")
        return value

    n_trials = int(rng.integers(3, 25))
    study.optimize(objective, n_trials=n_trials, catch=(ArithmeticError,))

    report = study_report(study)
    assert sum(report.counts.values()) == n_trials
    assert report.counts.get("pruned", 0) == len(report.pruned)
    assert str(report)
    for trial in study.get_trials(states=[TrialState.PRUNED]):
        # Every trial this pruner stopped (no fallback here) says why.
        assert pruning_note(trial, direction.name.lower()) is not None

    # Exported, read back, and used as the prior of the next campaign.
    table = study_to_curve_table(study)
    assert table.n_trials == sum(1 for t in study.trials if t.intermediate_values)
    path = tmp_path / "campaign.csv"
    write_curve_table(table, path)
    back = read_curve_table(path)
    assert back.n_trials == table.n_trials
    try:
        warm = LCPredictionPruner(prior=str(path), n_startup_trials=2)
    except PriorError as exc:  # a campaign without a finished run cannot be a prior
        assert not np.isfinite(back.final_values).any(), exc
        return
    second = optuna.create_study(direction=direction, pruner=warm)
    second.optimize(objective, n_trials=int(rng.integers(2, 10)), catch=(ArithmeticError,))
    assert str(study_report(second))
