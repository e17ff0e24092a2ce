"""LCPredictionPruner on randomised studies: whatever the settings and the reports, a decision
is a boolean with its reasons written down, never an exception from ``should_prune``.

Each case is drawn from a fixed seed, so a failure names the case that reproduces it. The
settings cover what the hand-written tests take one at a time: both directions, reports at
every step or every second or third, NaN and inf reports, a parameter that appears late, a
prior (with parameters in common or not, some of its runs diverged), background fits, and
each predictor.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import optuna
import pytest
from optuna.study import StudyDirection
from optuna.trial import TrialState

from optuna_lcpred import LCPredictionPruner
from optuna_lcpred._trials import flush_annotations
from optuna_lcpred.curves import CurveTable
from optuna_lcpred.pruner import KEEP_RULES
from tests.conftest import make_table


N_CASES = 40


def _settings(rng: np.random.Generator) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "n_startup_trials": int(rng.integers(1, 6)),
        "n_warmup_steps": int(rng.integers(0, 3)),
        "interval_steps": int(rng.integers(1, 3)),
        "confirm_prob": [None, 0.25][int(rng.integers(2))],
        "threshold": ["best", 0.25][int(rng.integers(2))],
        "keep_top": [0.0, 0.1][int(rng.integers(2))],
        "fit_in_background": bool(rng.integers(2)),
        "predictor": ["auto", "svr", "last", "linear", "powerlaw"][int(rng.integers(5))],
    }
    if rng.random() < 0.5:
        prior = make_table(
            int(rng.integers(5, 60)),
            int(rng.integers(2, 20)),
            seed=int(rng.integers(1000)),
            diverged=int(rng.integers(0, 3)),
        )
        if rng.random() < 0.5:  # nothing in common with the study's parameters
            prior = CurveTable(
                params={"momentum": prior.params["lr"]},
                steps=prior.steps,
                curves=prior.curves,
                name="other",
            )
        settings["prior"] = prior
    return settings


def _drive(case: int) -> tuple[optuna.Study, LCPredictionPruner, list[tuple[int, bool]]]:
    """Run one randomised study with ask/tell; returns it, its pruner and, for every
    decision, the trial number and ``should_prune``'s answer."""
    rng = np.random.default_rng(case)
    direction = [StudyDirection.MINIMIZE, StudyDirection.MAXIMIZE][int(rng.integers(2))]
    sign = 1.0 if direction == StudyDirection.MINIMIZE else -1.0
    n_steps, stride = int(rng.integers(2, 30)), int(rng.integers(1, 4))
    pruner = LCPredictionPruner(**_settings(rng))
    study = optuna.create_study(direction=direction, pruner=pruner)
    decisions: list[tuple[int, bool]] = []
    for number in range(int(rng.integers(5, 35))):
        trial = study.ask()
        x = trial.suggest_float("x", 0.0, 1.0)
        if number > 10 and rng.random() < 0.5:
            trial.suggest_int("late", 1, 5)
        level = 0.2 + abs(x - 0.3) + rng.uniform(0.0, 0.5)
        value = math.nan
        state = TrialState.COMPLETE
        for step in range(0, n_steps * stride, stride):
            value = sign * (level + rng.uniform(0.1, 2.0) / (step + 1))
            value += sign * 0.05 * rng.standard_normal()
            if rng.random() < 0.03:
                value = [math.nan, math.inf][int(rng.integers(2))]
            trial.report(value, step)
            pruned = trial.should_prune()
            decisions.append((trial.number, pruned))
            if pruned:
                state = TrialState.PRUNED
                break
        if state == TrialState.PRUNED:
            study.tell(trial, state=TrialState.PRUNED)
        elif math.isfinite(value):
            study.tell(trial, value)
        else:
            study.tell(trial, state=TrialState.FAIL)
    assert pruner.wait_for_fits(timeout=60)
    flush_annotations()
    return study, pruner, decisions


@pytest.mark.parametrize("case", range(N_CASES))
def test_randomised_studies_decide_and_explain(case: int) -> None:
    study, pruner, decisions = _drive(case)
    assert decisions and all(isinstance(pruned, bool) for _, pruned in decisions)
    for trial in study.get_trials(states=[TrialState.PRUNED]):
        last = trial.intermediate_values[trial.last_step]  # type: ignore[index]
        if not math.isfinite(last):
            continue  # a diverged report is pruned without a prediction
        # No fallback pruner here: a trial stopped at a finite report was stopped for a
        # prediction, and the step and the reasons are on it.
        attrs = trial.user_attrs
        assert attrs["lcpred:pruned_at"] == float(trial.last_step)  # type: ignore[arg-type]
        assert attrs["lcpred:step"] == float(trial.last_step)  # type: ignore[arg-type]
        assert attrs["lcpred:prob_improve"] < pruner._min_prob
        for key in ("lcpred:pred_final", "lcpred:pred_std", "lcpred:threshold"):
            assert isinstance(attrs[key], float) and math.isfinite(attrs[key])
    for trial in study.trials:
        # A rule that kept a trial is listed once among all that did, in their fixed order.
        last = trial.user_attrs.get("lcpred:kept_by")
        rules = trial.user_attrs.get("lcpred:kept_by_rules", "")
        assert (last is None) == (rules == "")
        listed = rules.split("; ") if rules else []
        assert last is None or last in listed
        assert listed == [rule for rule in KEEP_RULES if rule in listed]
