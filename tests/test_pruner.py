"""LCPredictionPruner, tested through real studies with ask/tell."""

from __future__ import annotations

import functools
import gc
import logging
import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from optuna_lcpred import LCPredictionPruner
from optuna_lcpred import LinearLastValuePredictor
from optuna_lcpred import pruner as pruner_module
from optuna_lcpred._trials import flush_annotations
from optuna_lcpred.predictors import selection


KEYS = ("lcpred:pred_final", "lcpred:pred_std", "lcpred:prob_improve", "lcpred:step")
SPACE = {"x": FloatDistribution(0.0, 1.0)}
STEPS = 10


def curve_for(x: float, sign: float = 1.0) -> list[float]:
    """A smooth decreasing curve whose level grows with x (final about 1 + x)."""
    return [sign * (1.0 + x + 2.0 / (s + 1)) for s in range(STEPS)]


def add_complete(study: optuna.Study, x: float) -> None:
    sign = -1.0 if study.direction == optuna.study.StudyDirection.MAXIMIZE else 1.0
    study.enqueue_trial({"x": x})
    trial = study.ask(SPACE)
    values = curve_for(x, sign)
    for step, value in enumerate(values):
        trial.report(value, step)
    study.tell(trial, values[-1])


def make_study(
    xs: Sequence[float] = (0.1, 0.3, 0.5, 0.7, 0.9, 0.2, 0.6, 0.4),
    direction: str = "minimize",
    storage: Any = None,
    **pruner_options: Any,
) -> tuple[optuna.Study, LCPredictionPruner]:
    # The decision rule alone: a decision at every step on one look, no rank guard (each has
    # its own test).
    options = {
        "n_startup_trials": 3,
        "n_warmup_steps": 0,
        "keep_top": 0.0,
        "confirm_prob": None,
        **pruner_options,
    }
    pruner = LCPredictionPruner(**options)
    study = optuna.create_study(direction=direction, pruner=pruner, storage=storage)
    for x in xs:
        add_complete(study, x)
    return study, pruner


def running(study: optuna.Study, x: float, values: Sequence[float]) -> tuple[optuna.Trial, bool]:
    """A new trial at x reporting ``values`` from step 0; the decision after the last one."""
    study.enqueue_trial({"x": x})
    trial = study.ask(SPACE)
    for step, value in enumerate(values):
        trial.report(value, step)
    return trial, trial.should_prune()


def curve_objective(trial: optuna.Trial, offset: float = 0.0) -> float:
    """An objective that reports ``curve_for(x) + offset`` and stops when told."""
    x = trial.suggest_float("x", 0.0, 1.0)
    for step, value in enumerate(curve_for(x)):
        trial.report(value + offset, step)
        if trial.should_prune():
            raise optuna.TrialPruned()
    return curve_for(x)[-1] + offset


def test_far_worse_is_pruned_and_better_than_all_is_not() -> None:
    study, _ = make_study()
    _, pruned = running(study, 0.95, [50.0, 49.0, 48.0])
    assert pruned  # far above every finished curve
    _, pruned = running(study, 0.0, [0.5, 0.4, 0.3])
    assert not pruned  # below every finished curve: likely the new best


def test_a_trial_worse_than_every_training_run_is_not_predicted_back_among_them() -> None:
    # An RBF SVR reverts to its training runs' mean far from all of them; a run far above every
    # finished curve must not be predicted to end among them.
    study, _ = make_study(predictor="svr")
    finals = [t.value for t in study.trials]
    trial, pruned = running(study, 0.5, [50.0])
    flush_annotations()
    attrs = study.trials[trial.number].user_attrs
    assert attrs["lcpred:pred_final"] > max(finals)  # no better than the best recovery seen
    assert pruned  # and so hopeless at its first report
    # Inside the finished curves' range the model's own prediction stands: a run on the worst
    # finished curve is predicted as the SVR predicts it, among the finished finals.
    trial, _ = running(study, 0.9, curve_for(0.9)[:1])
    flush_annotations()
    assert min(finals) <= study.trials[trial.number].user_attrs["lcpred:pred_final"] < max(finals)


@pytest.mark.parametrize(
    ("max_resource", "last_step", "pruned"),
    [
        (5, 4, True),  # before the final step
        (5, 5, False),  # at it: nothing left to save
        (5, 7, False),  # beyond it
        ("auto", 5, True),  # "auto": the finished trials' last step, 9
        ("auto", 9, False),
        (20, 9, True),  # a longer training than the finished trials': step 9 is not final
    ],
)
def test_max_resource_is_the_step_of_the_final_value(
    max_resource: int | str, last_step: int, pruned: bool
) -> None:
    study, _ = make_study(max_resource=max_resource)  # finished curves of steps 0-9
    _, decision = running(study, 0.95, [50.0] * (last_step + 1))  # far above all of them
    assert decision is pruned


def test_two_looks_must_agree_before_a_trial_is_pruned() -> None:
    good = curve_for(0.0)[:4]  # below every finished curve
    spike = [*good, 40.0]  # then one far-off value (a noisy evaluation, a bad batch)
    study, _ = make_study(confirm_prob=0.25)
    trial, pruned = running(study, 0.0, spike)
    attrs = study.trials[trial.number].user_attrs
    # This step's look calls it hopeless, the look one step earlier did not: it goes on.
    assert attrs["lcpred:prob_improve"] < 0.06
    assert isinstance(attrs["lcpred:prob_improve_before"], float)
    assert attrs["lcpred:prob_improve_before"] >= 0.25
    assert not pruned
    assert attrs["lcpred:kept_by"] == "two looks"
    assert attrs["lcpred:kept_at"] == float(len(spike) - 1)
    trial.report(40.0, len(spike))
    assert trial.should_prune()  # hopeless at two steps in a row
    # Deciding on one look (None, or 1 as a study file says it) stops it at the spike.
    for one_look in (None, 1.0):
        study, _ = make_study(confirm_prob=one_look)
        _, pruned = running(study, 0.0, spike)
        assert pruned


def test_the_second_look_reuses_the_trial_s_previous_decision(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    study, pruner = make_study(confirm_prob=0.25)
    trial, pruned = running(study, 0.95, [50.0])  # decided at step 0 on one look
    assert pruned
    calls: list[int] = []
    original = pruner._probability

    def spy(model: Any, X: Any, k: int, threshold: float) -> Any:
        calls.append(k)
        return original(model, X, k, threshold)

    monkeypatch.setattr(pruner, "_probability", spy)
    trial.report(49.0, 1)
    assert trial.should_prune()  # two looks agree ...
    assert calls == [1]  # ... and the look at step 0 was not made again
    assert study.trials[trial.number].user_attrs["lcpred:prob_improve_before"] < 0.06


def test_a_trial_s_first_step_needs_no_second_look() -> None:
    study, _ = make_study(confirm_prob=0.25)  # n_warmup_steps=0: decisions from step 0
    trial, pruned = running(study, 0.95, [50.0])
    assert pruned
    assert "lcpred:prob_improve_before" not in study.trials[trial.number].user_attrs


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_direction(direction: str) -> None:
    sign = -1.0 if direction == "maximize" else 1.0
    study, _ = make_study(direction=direction)
    # In the study's own units: a maximised study's good trial reports large values.
    _, pruned = running(study, 0.95, [sign * 50.0] * 3)
    assert pruned
    trial, pruned = running(study, 0.0, [sign * 0.5] * 3)
    assert not pruned
    attrs = study.trials[trial.number].user_attrs
    assert np.sign(attrs["lcpred:pred_final"]) == sign  # annotations in the study's units


def test_annotations_are_floats_under_the_documented_keys() -> None:
    study, _ = make_study()
    trial, _ = running(study, 0.5, [3.0, 2.5, 2.2])
    attrs = study.trials[trial.number].user_attrs
    for key in KEYS:
        assert isinstance(attrs[key], float), key  # the dashboard plots only numeric values
    assert attrs["lcpred:step"] == 2.0
    assert 0.0 <= attrs["lcpred:prob_improve"] <= 1.0
    assert attrs["lcpred:pred_std"] > 0.0


def test_no_pruning_before_n_startup_trials_exactly() -> None:
    study, _ = make_study(xs=(0.1, 0.3, 0.5, 0.7), n_startup_trials=5)
    _, pruned = running(study, 0.95, [50.0] * 3)
    assert not pruned  # 4 COMPLETE trials: still starting up
    add_complete(study, 0.9)
    _, pruned = running(study, 0.95, [50.0] * 3)
    assert pruned  # the fifth COMPLETE trial opens the gate


def test_no_pruning_before_n_warmup_steps_exactly() -> None:
    study, _ = make_study(n_warmup_steps=3)
    _, pruned = running(study, 0.95, [50.0] * 3)
    assert not pruned  # last step 2 < 3
    _, pruned = running(study, 0.95, [50.0] * 4)
    assert pruned  # step 3 is the first allowed


def test_interval_steps() -> None:
    study, _ = make_study(n_warmup_steps=1, interval_steps=3)
    study.enqueue_trial({"x": 0.95})
    trial = study.ask(SPACE)
    decisions = []
    for step in range(8):
        trial.report(50.0, step)
        decisions.append(trial.should_prune())
    # Decisions only at steps 1, 4, 7 (the first step of each interval after the warm-up).
    assert decisions == [False, True, False, False, True, False, False, True]


def test_non_finite_reports_prune_at_once() -> None:
    study, _ = make_study(n_warmup_steps=5)
    for bad in (math.nan, math.inf, -math.inf):
        _, pruned = running(study, 0.1, [3.0, bad])
        assert pruned  # a diverged run is stopped even in the warm-up


def test_nan_curves_never_train_a_model(monkeypatch: pytest.MonkeyPatch) -> None:
    study, _ = make_study(xs=(0.1, 0.3, 0.5))
    # A COMPLETE trial whose curve went NaN at step 1 (its final is finite).
    study.enqueue_trial({"x": 0.2})
    trial = study.ask(SPACE)
    trial.report(3.0, 0)
    trial.report(math.nan, 1)
    study.tell(trial, 1.2)
    seen: list[int] = []
    original = selection.select_predictor

    def spy(candidates: Any, X: np.ndarray, y: np.ndarray, *args: Any, **kwargs: Any) -> Any:
        assert np.isfinite(X[:, :2]).all()
        seen.append(len(y))
        return original(candidates, X, y, *args, **kwargs)

    monkeypatch.setattr("optuna_lcpred.pruner.select_predictor", spy)
    running(study, 0.5, [3.0])  # step 0: the NaN trial's step 0 is finite, it may train
    running(study, 0.5, [3.0, 2.5])  # step 1: it must not
    assert seen == [4, 3]


def test_audit_trials_are_never_pruned() -> None:
    study, pruner = make_study(audit_fraction=0.5)
    audited = 0
    for _ in range(12):
        study.enqueue_trial({"x": 0.95})
        trial = study.ask(SPACE)
        pruned = False
        for step in range(5):
            trial.report(50.0, step)
            pruned = pruned or trial.should_prune()
        attrs = study.trials[trial.number].user_attrs
        if pruner.is_audit_trial(trial.number):
            audited += 1
            assert not pruned  # never pruned for a prediction ...
            # ... but predicted like the others, with the step it would have been stopped at.
            assert set(KEYS) <= set(attrs)
            assert attrs["lcpred:audit_would_prune_at"] == 0.0
        else:
            assert pruned
            assert "lcpred:audit_would_prune_at" not in attrs
        study.tell(trial, state=TrialState.PRUNED if pruned else TrialState.FAIL)
    assert 2 <= audited <= 10  # about half of the trial numbers


def test_fallback_decides_until_the_model_is_ready() -> None:
    always = optuna.pruners.ThresholdPruner(upper=10.0)
    study, _ = make_study(xs=(0.1, 0.3), n_startup_trials=3, fallback=always)
    _, pruned = running(study, 0.95, [50.0])
    assert pruned  # startup: the fallback pruned on its own rule
    _, pruned = running(study, 0.0, [5.0])
    assert not pruned


def test_a_fallback_that_waits_as_long_as_the_pruner_is_flagged() -> None:
    # MedianPruner's own default startup (5 COMPLETE trials) equals the pruner's: it is never
    # asked while it could prune, which the pruner says when it is built ...
    with pytest.warns(UserWarning, match=r"MedianPruner waits for n_startup_trials=5"):
        waits = optuna.pruners.MedianPruner()
        study, _ = make_study(xs=(0.1, 0.3, 0.5), n_startup_trials=5, fallback=waits)
    _, pruned = running(study, 0.95, [50.0, 49.0])
    assert not pruned  # 3 of 5 runs finished: neither the model nor the fallback prunes
    # ... while one that needs fewer finished runs decides in the startup, and is not flagged.
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        early = optuna.pruners.MedianPruner(n_startup_trials=2)
        study, _ = make_study(xs=(0.1, 0.3, 0.5), n_startup_trials=5, fallback=early)
        LCPredictionPruner(fallback=optuna.pruners.SuccessiveHalvingPruner())
    _, pruned = running(study, 0.95, [50.0, 49.0])
    assert pruned
    with pytest.warns(UserWarning, match=r"n_startup_trials=3 COMPLETE"):  # also when wrapped
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            patient = optuna.pruners.PatientPruner(
                optuna.pruners.PercentilePruner(25.0, n_startup_trials=3), patience=1
            )
        LCPredictionPruner(n_startup_trials=3, fallback=patient)


def _startup_hints(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "none is pruned until n_startup_trials" in r.message]


def test_many_trials_training_in_the_startup_get_one_hint(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="optuna.lcpred.pruner")
    storage = optuna.storages.InMemoryStorage()
    study, _ = make_study(xs=(0.1,), n_startup_trials=3, storage=storage)
    # As with 4 parallel workers: 4 trials run at once, more than the 3 the startup needs.
    trials = [study.ask(SPACE) for _ in range(3)]
    for trial in trials:
        trial.report(5.0, 0)
        assert not trial.should_prune()
    assert _startup_hints(caplog) == []  # 3 training: no more than the startup needs
    assert "lcpred:startup_hint" not in study.user_attrs
    trials.append(study.ask(SPACE))
    trials[-1].report(5.0, 0)
    assert not trials[-1].should_prune()  # nothing is pruned in the startup: only advice
    (hint,) = _startup_hints(caplog)
    assert hint.levelno == logging.WARNING
    assert hint.message.startswith("At least 4 trials were training")
    assert "n_startup_trials=3 are COMPLETE (1 were)" in hint.message
    assert "SuccessiveHalvingPruner(reduction_factor=2, min_resource=2)" in hint.message
    assert study.user_attrs["lcpred:startup_hint"] == hint.message  # in the study, for all
    for trial in trials:  # once per pruner, not per decision
        trial.report(4.0, 1)
        trial.should_prune()
    assert len(_startup_hints(caplog)) == 1
    # Another worker's pruner on the same storage finds the record and does not repeat it.
    other = optuna.load_study(
        study_name=study.study_name,
        storage=storage,
        pruner=LCPredictionPruner(n_startup_trials=3, n_warmup_steps=0),
    )
    trial = other.ask(SPACE)
    trial.report(5.0, 0)
    assert not trial.should_prune()  # it decides (no warm-up), and would say it again
    assert len(_startup_hints(caplog)) == 1


def test_no_startup_hint_with_a_fallback_or_one_trial_at_a_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="optuna.lcpred.pruner")
    never = optuna.pruners.ThresholdPruner(upper=1e9)
    study, _ = make_study(xs=(0.1,), n_startup_trials=3, fallback=never)
    for _ in range(6):
        trial = study.ask(SPACE)
        trial.report(5.0, 0)
        assert not trial.should_prune()
    # One at a time, each stopped (here by divergence) before the next starts.
    study, _ = make_study(xs=(0.1,), n_startup_trials=3)
    for _ in range(8):
        trial = study.ask(SPACE)
        trial.report(float("nan"), 0)
        assert trial.should_prune()
        study.tell(trial, state=TrialState.PRUNED)
    assert _startup_hints(caplog) == []


def test_same_reports_same_decision() -> None:
    a, _ = make_study()
    b, _ = make_study()
    for values in ([4.0, 3.0, 2.9], [3.1, 2.4, 2.2], [2.0, 1.7, 1.5]):
        ta, da = running(a, 0.5, values)
        tb, db = running(b, 0.5, values)
        assert da == db
        assert a.trials[ta.number].user_attrs == b.trials[tb.number].user_attrs


def _decisions_at_scale(unit: float, offset: float = 0.0) -> list[tuple[int, str, float]]:
    """A study of noisy curves with the pruner's defaults, every loss multiplied by ``unit``
    and shifted by ``offset``: each trial's state and its last probability of beating the
    threshold."""
    rng = np.random.default_rng(0)
    study = optuna.create_study(
        pruner=LCPredictionPruner(), sampler=optuna.samplers.RandomSampler(seed=0)
    )
    for _ in range(30):
        trial = study.ask(SPACE)
        x = trial.params["x"]
        for step in range(STEPS):
            value = offset + unit * ((x + 0.1) * (1 + 5 / (1 + step)) + rng.normal(0, 0.01))
            trial.report(value, step)
            if trial.should_prune():
                study.tell(trial, state=TrialState.PRUNED)
                break
        else:
            study.tell(trial, value)
    return [
        (t.number, t.state.name, float(t.user_attrs.get("lcpred:prob_improve", -1.0)))
        for t in study.trials
    ]


def test_decisions_do_not_depend_on_the_loss_s_unit_or_offset() -> None:
    reference = _decisions_at_scale(1.0)
    assert sum(state == "PRUNED" for _, state, _ in reference) >= 10  # the test can fail
    for unit, offset in ((1e-30, 0.0), (1e-12, 0.0), (1e12, 0.0), (1.0, 1e3), (1.0, -100.0)):
        decisions = _decisions_at_scale(unit, offset)
        assert [d[:2] for d in decisions] == [r[:2] for r in reference], (unit, offset)
        probs = [d[2] for d in decisions]
        assert probs == pytest.approx([r[2] for r in reference], abs=1e-6), (unit, offset)


def test_refit_only_when_new_complete_trials(monkeypatch: pytest.MonkeyPatch) -> None:
    study, _ = make_study()
    calls: list[int] = []
    original = selection.select_predictor

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr("optuna_lcpred.pruner.select_predictor", spy)
    running(study, 0.5, [3.0, 2.5])
    running(study, 0.6, [3.1, 2.6])
    assert len(calls) == 1  # the step-1 model is fitted once and reused by the second trial
    add_complete(study, 0.8)
    running(study, 0.6, [3.1, 2.6])
    assert len(calls) == 2  # a new COMPLETE trial: refitted once


class _RecordingStorage(optuna.storages.InMemoryStorage):
    def __init__(self) -> None:
        super().__init__()
        self.states_asked: list[Any] = []

    def get_all_trials(self, study_id: int, deepcopy: bool = True, states: Any = None) -> Any:
        self.states_asked.append(states)
        return super().get_all_trials(study_id, deepcopy=deepcopy, states=states)


def test_should_prune_never_reads_running_trials() -> None:
    storage = _RecordingStorage()
    study, _ = make_study(storage=storage)
    study.enqueue_trial({"x": 0.5})
    trial = study.ask(SPACE)
    trial.report(3.0, 0)
    storage.states_asked.clear()
    trial.should_prune()
    # Every query made while deciding asks for finished trials only, never RUNNING ones.
    assert storage.states_asked
    finished = {TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL}
    assert all(set(s) <= finished for s in storage.states_asked)


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_works_on_persistent_storages(tmp_path: Path, kind: str) -> None:
    if kind == "sqlite":
        storage: Any = f"sqlite:///{tmp_path / 's.db'}"
    else:
        from optuna.storages.journal import JournalFileBackend

        storage = optuna.storages.JournalStorage(JournalFileBackend(str(tmp_path / "j.log")))
    study, _ = make_study(storage=storage)
    trial, pruned = running(study, 0.95, [50.0, 49.0])
    assert pruned
    attrs = study.trials[trial.number].user_attrs
    assert set(KEYS) <= set(attrs)


def test_named_and_custom_predictors() -> None:
    for predictor in ("last", "linear", "powerlaw", "svr", LinearLastValuePredictor()):
        study, _ = make_study(predictor=predictor)
        _, pruned = running(study, 0.95, [50.0, 49.0, 48.0])
        assert pruned, predictor


def test_a_new_parameter_after_models_were_fitted() -> None:
    study, _ = make_study(refit_every=10)  # models would otherwise be reused for 10 trials
    _, pruned = running(study, 0.95, [50.0, 49.0])
    assert pruned  # a step-1 model is fitted on the x-only encoding
    # A conditional parameter appears: the encoding widens, the fitted models must not be reused.
    wider = {**SPACE, "depth": optuna.distributions.IntDistribution(1, 8)}
    for x, depth in ((0.15, 2), (0.35, 7), (0.55, 4)):
        study.enqueue_trial({"x": x, "depth": depth})
        trial = study.ask(wider)
        for step, value in enumerate(curve_for(x)):
            trial.report(value, step)
        study.tell(trial, curve_for(x)[-1])
    study.enqueue_trial({"x": 0.95, "depth": 3})
    trial = study.ask(wider)
    trial.report(50.0, 0)
    trial.report(49.0, 1)
    assert trial.should_prune()
    assert study.trials[trial.number].user_attrs["lcpred:n_train"] == 11.0


def test_threads_share_one_pruner() -> None:
    study = optuna.create_study(
        sampler=optuna.samplers.RandomSampler(seed=0), pruner=LCPredictionPruner(3)
    )
    study.optimize(curve_objective, n_trials=40, n_jobs=2)
    states = {t.state for t in study.trials}
    assert states <= {TrialState.COMPLETE, TrialState.PRUNED} and TrialState.PRUNED in states


def test_multi_objective_is_a_clear_error() -> None:
    study = optuna.create_study(directions=["minimize", "minimize"])
    trial = study.ask()
    frozen = study.trials[trial.number]
    with pytest.raises(ValueError, match=r"single-objective.*2 objectives"):
        LCPredictionPruner().prune(study, frozen)


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        ({"n_startup_trials": -1}, "n_startup_trials must be an integer >= 0, got -1"),
        ({"n_warmup_steps": -1}, "n_warmup_steps must be an integer >= 0, got -1"),
        ({"interval_steps": 0}, "interval_steps must be an integer >= 1, got 0"),
        ({"max_resource": 0}, 'max_resource must be an integer >= 1 or "auto", got 0'),
        ({"max_resource": "big"}, "got 'big'"),
        ({"min_prob": 1.0}, "min_prob must be a number in [0, 1), got 1.0"),
        ({"min_prob": -0.1}, "got -0.1"),
        ({"confirm_prob": 0.0}, "confirm_prob must be a number in (0, 1] or None, got 0.0"),
        ({"confirm_prob": 1.5}, "got 1.5"),
        ({"confirm_prob": "yes"}, "got 'yes'"),
        ({"confirm_prob": True}, "got True"),
        ({"threshold": 1.5}, 'threshold must be "best" or a quantile in (0, 1), got 1.5'),
        ({"threshold": "median"}, "got 'median'"),
        ({"predictor": "gp"}, "got 'gp'"),
        ({"audit_fraction": 1.5}, "audit_fraction must be in [0, 1], got 1.5"),
        ({"n_folds": 1}, "n_folds must be an integer >= 2, got 1"),
        ({"seed": "x"}, "seed must be an integer >= 0, got 'x'"),
        ({"seed": 1.5}, "got 1.5"),
    ],
)
def test_bad_arguments_name_the_value(options: dict[str, Any], needle: str) -> None:
    with pytest.raises(ValueError) as info:
        LCPredictionPruner(**options)
    assert needle in str(info.value)


def test_wrong_types_are_type_errors() -> None:
    with pytest.raises(TypeError, match="predictor must be a name or a CurvePredictor"):
        LCPredictionPruner(predictor=object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="fallback must be an optuna pruner"):
        LCPredictionPruner(fallback="median")  # type: ignore[arg-type]


def test_boundary_values_are_accepted() -> None:
    LCPredictionPruner(0, 0, 1, min_prob=0.0, audit_fraction=1.0, max_resource=1)
    LCPredictionPruner(threshold=0.25, min_prob=0.999)


def test_incremental_matrix_equals_a_rebuild() -> None:
    from optuna_lcpred._trials import FinishedTrialCache
    from optuna_lcpred.pruner import _CompletedMatrix

    study = optuna.create_study()
    cache, incremental = FinishedTrialCache(), _CompletedMatrix()
    wider = {**SPACE, "depth": optuna.distributions.IntDistribution(1, 8)}
    plan = [
        (0.1, SPACE, 10),
        (0.2, SPACE, 10),
        (0.3, wider, 10),
        (0.4, wider, 12),
        (0.5, wider, 12),
    ]
    for x, space, n_steps in plan:  # a new parameter, then a longer curve, force rebuilds
        study.enqueue_trial({"x": x, "depth": 3})
        trial = study.ask(space)
        for step in range(n_steps):
            trial.report(1.0 + x + 1.0 / (step + 1), step)
        study.tell(trial, 1.0 + x)
        incremental.update(cache.refresh(study))
    fresh = _CompletedMatrix()
    fresh.update(FinishedTrialCache().refresh(study))
    for name in ("grid", "curves", "first_bad", "finals", "hyper", "groups", "last_steps"):
        np.testing.assert_array_equal(getattr(incremental, name), getattr(fresh, name), name)


def test_the_cache_keeps_the_predicted_finals_of_pruned_trials() -> None:
    from optuna_lcpred._trials import FinishedTrialCache

    study = optuna.create_study(direction="maximize")
    for state, attrs in [
        (TrialState.COMPLETE, {}),
        (TrialState.PRUNED, {"lcpred:pred_final": 0.25, "lcpred:pruned_at": 0.0}),
        (TrialState.PRUNED, {}),  # pruned by another pruner: no prediction
        # kept by a prediction, then stopped by something else: not the pruner's verdict
        (TrialState.PRUNED, {"lcpred:pred_final": 0.75}),
        (TrialState.PRUNED, {"lcpred:pred_final": float("nan")}),
        (TrialState.FAIL, {"lcpred:pred_final": 0.5}),
    ]:
        trial = study.ask(SPACE)
        trial.report(0.1, 0)
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        study.tell(trial, 0.3 if state == TrialState.COMPLETE else None, state=state)
    data = FinishedTrialCache(predicted_key="lcpred:pred_final").refresh(study)
    # Direction-normalised like the finals: a maximised study's values are negated.
    assert data.values == [-0.3] and data.predicted == [-0.25]
    assert FinishedTrialCache().refresh(study).predicted == []


def test_annotations_are_overwritten_in_one_batch_on_rdb(tmp_path: Path) -> None:
    study, _ = make_study(storage=f"sqlite:///{tmp_path / 's.db'}")
    study.enqueue_trial({"x": 0.5})
    trial = study.ask(SPACE)
    trial.set_user_attr("note", "mine")
    trial.report(2.0, 0)
    trial.should_prune()
    flush_annotations()  # a decision not to prune is written in the background
    first = dict(study.trials[trial.number].user_attrs)
    trial.report(1.9, 1)
    trial.should_prune()
    flush_annotations()
    second = study.trials[trial.number].user_attrs
    # Each decision replaces the previous annotations (no duplicate keys, latest step wins)...
    assert first["lcpred:step"] == 0.0 and second["lcpred:step"] == 1.0
    assert all(isinstance(second[k], float) for k in KEYS)
    # ... and leaves the user's own attributes alone.
    assert second["note"] == "mine"


def test_a_late_background_annotation_never_touches_a_finished_trial(tmp_path: Path) -> None:
    from optuna_lcpred import _trials

    study, _ = make_study(storage=f"sqlite:///{tmp_path / 's.db'}")
    trial = study.ask(SPACE)
    frozen = study._storage.get_trial(trial._trial_id)
    study.tell(trial, 1.0)
    _trials.set_annotations(study, frozen, {"lcpred:step": 3.0}, wait=False)
    flush_annotations()
    # The queued write arrived after the trial finished: finished trials stay as they were.
    assert "lcpred:step" not in study.trials[trial.number].user_attrs


def _add_pruned(study: optuna.Study, value: float, n: int, steps: int = 3) -> None:
    from optuna.trial import create_trial

    for _ in range(n):
        study.add_trial(
            create_trial(
                state=TrialState.PRUNED,
                params={"x": 0.99},
                distributions=SPACE,
                intermediate_values={s: value for s in range(steps)},
            )
        )


@pytest.mark.parametrize(("keep_top", "pruned"), [(0.4, True), (0.41, False), (0.0, True)])
def test_keep_top_guards_the_best_of_their_step_at_its_boundary(
    keep_top: float, pruned: bool
) -> None:
    study, _ = make_study(keep_top=keep_top)
    _add_pruned(study, 100.0, 12)  # 12 finished peers far worse at steps 0-2
    # Worse than all 8 COMPLETE curves at step 2, so the model prunes it; but of the 20 finished
    # trials that reported step 2 only 8 are better: 8 / 20 = 0.4 of its peers.
    trial, decision = running(study, 0.95, [3.5, 3.4, 3.3])
    assert decision is pruned  # kept only when 8 < keep_top * 20
    # A trial the model called hopeless and a rule kept says which rule, and when.
    attrs = study.trials[trial.number].user_attrs
    if pruned:
        assert "lcpred:kept_by" not in attrs
    else:
        assert attrs["lcpred:kept_by"] == "top of its step" and attrs["lcpred:kept_at"] == 2.0


@pytest.mark.parametrize(("keep_top", "pruned"), [(0.1, False), (0.0, True)])
def test_with_few_peers_a_trial_better_than_all_of_them_is_kept(
    keep_top: float, pruned: bool
) -> None:
    # 8 finished trials reached step 2, too few to rank by keep_top. The SVR fitted on them
    # reverts to their mean final for a curve far below all of theirs, and would prune it.
    study, _ = make_study(keep_top=keep_top, predictor="svr")
    trial, decision = running(study, 0.95, [0.3, 0.2, 0.1])
    assert study.trials[trial.number].user_attrs["lcpred:prob_improve"] < 0.06
    assert decision is pruned
    if not pruned:
        kept_by = study.trials[trial.number].user_attrs["lcpred:kept_by"]
        assert kept_by == "better than every finished trial"
    # One that is not better than every finished trial at its step is still pruned.
    _, decision = running(study, 0.95, [3.5, 3.4, 3.3])
    assert decision


def _plateau_study(n_smooth: int, n_plateau: int) -> optuna.Study:
    """A study with finished runs of two kinds, 12 steps each: smooth curves settling at
    0.4-1.2, and runs flat at 2.0 of which every second one drops to 0.25-0.35 at its last
    step (a run escaping a plateau, which nothing before that step announces)."""
    from optuna.trial import create_trial

    rng = np.random.default_rng(0)
    steps = np.arange(12)
    study = optuna.create_study(
        sampler=optuna.samplers.RandomSampler(seed=1),
        # The escapes land below the quarter quantile of the finals (about 0.62).
        pruner=LCPredictionPruner(threshold=0.25),
    )
    trials = []
    for i in range(n_smooth + n_plateau):
        if i < n_smooth:
            final = rng.uniform(0.4, 1.2)
            curve = final + np.exp(-steps / 3.0) + rng.normal(0.0, 0.005, steps.size)
        else:
            curve = 2.0 + rng.normal(0.0, 0.005, steps.size)
            if i % 2:
                curve[-1] = rng.uniform(0.25, 0.35)
        trials.append(
            create_trial(
                params={"x": rng.uniform()},
                distributions=SPACE,
                value=float(curve[-1]),
                intermediate_values={int(s): float(v) for s, v in enumerate(curve)},
            )
        )
    study.add_trials(trials)
    return study


@pytest.mark.parametrize("neighbours", [True, False])
def test_runs_that_stood_where_a_trial_stands_vouch_for_it(
    monkeypatch: pytest.MonkeyPatch, neighbours: bool
) -> None:
    # 300 smooth runs make the cross-validated spread small, so the spread alone calls a run
    # on the plateau hopeless; but half of the 40 finished runs that stood there (same level,
    # flat) escaped below the threshold. From 3 x 30 cross-validated runs on, the 30 nearest by
    # level and slope give a probability of their own, and the larger of the two decides.
    if not neighbours:
        monkeypatch.setattr(pruner_module, "_NEIGHBOURS", 10**6)  # never enough runs
    study = _plateau_study(300, 40)
    trial = study.ask(SPACE)
    pruned_at = None
    for step in range(6):
        trial.report(2.0, step)
        if trial.should_prune():
            pruned_at = step
            break
    prob = study.trials[trial.number].user_attrs["lcpred:prob_improve"]
    if neighbours:
        # About half the 30 neighbours escaped: (1 + escaped) / 31.
        assert pruned_at is None and 0.3 < prob < 0.7
    else:
        assert pruned_at is not None and prob < 0.06
    # A smooth run far above every finished one has neighbours that never beat their
    # prediction by what it needs: the local view agrees with the spread, and it is stopped.
    trial = study.ask(SPACE)
    pruned = False
    for step, value in enumerate(4.0 + np.exp(-np.arange(6) / 3.0)):
        trial.report(float(value), step)
        if pruned := trial.should_prune():
            break
    assert pruned
    assert study.trials[trial.number].user_attrs["lcpred:prob_improve"] < 0.06


def test_keep_top_must_be_a_fraction() -> None:
    for bad in (-0.1, 1.0, "10%"):
        with pytest.raises(
            ValueError, match=f"keep_top must be a fraction in \\[0, 1\\), got {bad!r}"
        ):
            LCPredictionPruner(keep_top=bad)  # type: ignore[arg-type]


def test_default_warm_up_never_stops_a_trial_on_its_first_report() -> None:
    study, _ = make_study(n_warmup_steps=1)
    assert LCPredictionPruner()._n_warmup_steps == 1  # the default
    # Hopeless from its first report, yet not stopped there; stopped at the next step.
    _, pruned = running(study, 0.95, [50.0])
    assert not pruned
    _, pruned = running(study, 0.95, [50.0, 49.0])
    assert pruned


def test_milestone_predictions_keep_the_prediction_made_at_the_milestone() -> None:
    # Optuna hands the pruner a cached copy of the trial that never shows the attributes the
    # pruner itself wrote, so the pruner must remember which milestones it has written.
    study, _ = make_study()
    study.enqueue_trial({"x": 0.5})
    trial = study.ask(SPACE)
    predictions = []
    for step in range(STEPS - 1):
        trial.report(0.5 + 2.0 / (step + 1) + 0.05 * step, step)  # below every finished curve
        assert not trial.should_prune()
        predictions.append(study.trials[trial.number].user_attrs["lcpred:pred_final"])
    attrs = study.trials[trial.number].user_attrs
    # 10 % of 10 steps is reached after step 0, 25 % after step 2, 50 % after step 4.
    assert attrs["lcpred:pred_at_10pct"] == predictions[0]
    assert attrs["lcpred:pred_at_25pct"] == predictions[2]
    assert attrs["lcpred:pred_at_50pct"] == predictions[4]
    assert len({predictions[0], predictions[2], predictions[4], predictions[-1]}) == 4


def test_written_once_record_forgets_finished_trials(monkeypatch: pytest.MonkeyPatch) -> None:
    # A worker that runs for weeks must not remember every trial it ever annotated.
    monkeypatch.setattr(pruner_module, "_WRITTEN_ONCE_TRIM", 3)
    study, pruner = make_study()
    annotated = []
    for _ in range(6):
        trial, pruned = running(study, 0.95, [50.0, 49.0, 48.0])  # past the 10 % milestone
        assert pruned
        study.tell(trial, state=TrialState.PRUNED)
        annotated.append(trial.number)
    live, _ = running(study, 0.0, [0.5, 0.4, 0.3])  # still running: its record stays
    assert set(pruner._written_once) <= {*annotated[-3:], live.number}
    assert live.number in pruner._written_once
    # Forgetting finished trials does not write a milestone twice on a running one.
    first = study.trials[live.number].user_attrs["lcpred:pred_at_10pct"]
    live.report(0.2, 3)
    assert not live.should_prune()
    assert study.trials[live.number].user_attrs["lcpred:pred_at_10pct"] == first


def test_a_pruner_reused_for_another_study_starts_afresh() -> None:
    # One pruner object, two in-memory studies one after the other: the second must not
    # inherit the first's finished trials, though its storage may sit where the first one's
    # was freed (and once did, giving it the same id), nor its per-trial records, though its
    # trial numbers repeat.
    pruner = LCPredictionPruner(3)
    for offset in (0.0, 5.0):  # the second study is worse than the first everywhere
        study = optuna.create_study(pruner=pruner, sampler=optuna.samplers.RandomSampler(seed=0))
        study.optimize(functools.partial(curve_objective, offset=offset), n_trials=12)
        states = [t.state for t in study.trials]
        assert states[:3] == [TrialState.COMPLETE] * 3  # its own startup trials
        assert TrialState.PRUNED in states
        decided = [t for t in study.trials[3:] if "lcpred:n_train" in t.user_attrs]
        assert decided[0].user_attrs["lcpred:n_train"] == 3.0
        # Milestone predictions are written in each study, on the same trial numbers.
        assert all("lcpred:pred_at_10pct" in t.user_attrs for t in decided)
        del study
        gc.collect()


def _alternate(studies: Sequence[optuna.Study]) -> list[dict[str, Any]]:
    """Four trials asked in turn from ``studies``, each reporting a flat 1.0 for 6 steps, a
    decision after each report; the annotations of each trial at the end."""
    trials = [studies[i % len(studies)].ask(SPACE) for i in range(4)]
    for step in range(6):
        for trial in trials:
            trial.report(1.0 + 0.01 * step, step)
            trial.should_prune()
    return [studies[0].trials[t.number].user_attrs for t in trials]


def test_two_study_objects_of_one_study_do_not_refit_at_each_switch(tmp_path: Path) -> None:
    # optuna.load_study in two threads gives two Study objects (two storage objects) for one
    # study. A pruner shared by them reads on where it stood at each switch: it decides and
    # fits as it would through one Study object, instead of refitting every model.
    fits = []
    attrs = []
    for n_objects in (1, 2):
        url = f"sqlite:///{tmp_path / f'{n_objects}.db'}"
        study, pruner = make_study(storage=url)
        opened = [
            optuna.load_study(study_name=study.study_name, storage=url, pruner=pruner)
            for _ in range(n_objects)
        ]
        assert len({id(s._storage) for s in opened}) == n_objects
        attrs.append(_alternate(opened))
        fits.append(sum(pruner.selections.values()))
        assert pruner._cache.n_studies == 1
    assert fits[0] == fits[1] > 0
    assert attrs[0] == attrs[1]


def test_a_study_created_again_under_the_same_name_and_id_is_read_afresh(
    tmp_path: Path,
) -> None:
    # A deleted SQLite study's name and id come back with the next study created there (and
    # a database file deleted and made again at one path looks the same): its finished
    # trials, not those of the first, must train the pruner.
    url = f"sqlite:///{tmp_path / 'again.db'}"
    first, pruner = make_study(xs=(0.1, 0.3, 0.5), storage=url)
    _alternate([first])
    optuna.delete_study(study_name=first.study_name, storage=url)
    again = optuna.create_study(study_name=first.study_name, storage=url, pruner=pruner)
    assert again._study_id == first._study_id
    for x in (0.1, 0.3, 0.5):  # worse by 5 than every trial of the first study
        again.enqueue_trial({"x": x})
        trial = again.ask(SPACE)
        for step, value in enumerate(curve_for(x)):
            trial.report(value + 5.0, step)
        again.tell(trial, curve_for(x)[-1] + 5.0)
    _, pruned = running(again, 0.0, [v + 4.5 for v in curve_for(0.0)[:3]])
    assert not pruned  # better than every finished curve of *this* study
    assert pruner._cache.n_studies == 2
    assert pruner._cache.data.values == [curve_for(x)[-1] + 5.0 for x in (0.1, 0.3, 0.5)]
