"""Copies of the pruner and the sampler wrapper (pickle, ``copy.deepcopy``), as Optuna's own
pruners and samplers allow: Dask, joblib's process backends and ``multiprocessing`` with the
spawn or forkserver start method send a study, with its pruner and sampler, to another process
that way."""

from __future__ import annotations

import copy
import multiprocessing
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from optuna_lcpred import LCPredictionPruner
from optuna_lcpred import PredictedFinalSampler
from optuna_lcpred import pruner as pruner_module
from optuna_lcpred._trials import flush_annotations
from tests.conftest import make_table
from tests.test_pruner import curve_for
from tests.test_pruner import curve_objective
from tests.test_pruner import make_study
from tests.test_pruner import running


def _pickled(obj: Any) -> Any:
    return pickle.loads(pickle.dumps(obj))


COPIES = [pytest.param(_pickled, id="pickle"), pytest.param(copy.deepcopy, id="deepcopy")]


@pytest.mark.parametrize("make_copy", COPIES)
def test_a_copy_of_a_pruner_in_use_decides_as_the_original(
    make_copy: Callable[[Any], Any],
) -> None:
    # Two identical studies; in the second, the pruner is replaced by its copy halfway through
    # a trial, after it had read the trials, fitted models and annotated that trial.
    defaults = {"confirm_prob": 0.25, "keep_top": 0.1}  # two looks, the rank guard
    a, _ = make_study(**defaults)
    b, twin = make_study(**defaults)
    values = [*curve_for(0.05)[:3], 3.0, 3.0, 3.0, 3.0]  # the best so far, then stuck
    ta, tb = a.ask(), b.ask()
    for t in (ta, tb):
        for step, value in enumerate(values[:3]):
            t.report(value, step)
            assert not t.should_prune()
    assert twin._models and twin._written_once  # fitted, and a milestone written
    b.pruner = make_copy(twin)
    assert b.pruner is not twin and not b.pruner._models and b.pruner._written_once
    decisions = []
    for step, value in enumerate(values[3:], start=3):
        ta.report(value, step)
        tb.report(value, step)
        decisions.append(ta.should_prune())
        assert tb.should_prune() == decisions[-1]
        flush_annotations()
        assert a.trials[ta.number].user_attrs == b.trials[tb.number].user_attrs
    assert True in decisions  # a run that stays above every finished one is stopped
    # Later trials too.
    for values in ([3.1, 2.4, 2.2], [2.0, 1.7, 1.5]):
        ta, da = running(a, 0.5, values)
        tb, db = running(b, 0.5, values)
        assert da == db
        flush_annotations()
        assert a.trials[ta.number].user_attrs == b.trials[tb.number].user_attrs


def test_a_copy_keeps_the_arguments_and_the_prior_and_leaves_the_original_alone() -> None:
    prior = make_table(60, 12, seed=3)
    lr = {"lr": optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True)}
    fallback = optuna.pruners.SuccessiveHalvingPruner(reduction_factor=2, min_resource=2)
    pruner = LCPredictionPruner(min_prob=0.08, fallback=fallback, prior=prior, audit_fraction=0.2)

    def replay(study: optuna.Study) -> list[bool]:
        """One trial that finishes (the anchor), then two hopeless ones; their decisions."""
        decisions = []
        for values in (prior.curves[0].tolist(), [50.0, 49.0, 48.0, 47.0], [9.0] * 11):
            trial = study.ask(lr)
            pruned = False
            for step, value in enumerate(values):
                trial.report(float(value), step)
                if pruned := trial.should_prune():
                    study.tell(trial, state=TrialState.PRUNED)
                    break
            else:
                study.tell(trial, float(values[-1]))
            decisions.append(pruned)
        return decisions

    a = optuna.create_study(pruner=pruner, sampler=optuna.samplers.RandomSampler(seed=0))
    decisions = replay(a)
    assert decisions == [False, True, True]  # audit_fraction=0.2 spares none of these
    assert pruner._prior is not None and pruner._prior._checks  # the prior was weighed
    copied = _pickled(pruner)
    assert copied._prior is not None and not copied._prior._checks
    assert copied._prior.prior.digest == pruner._prior.prior.digest
    assert copied._min_prob == 0.08 and copied._audit_fraction == 0.2
    assert isinstance(copied._fallback, optuna.pruners.SuccessiveHalvingPruner)
    assert pruner._models and pruner._prior._checks  # the original keeps what it fitted
    b = optuna.create_study(pruner=copied, sampler=optuna.samplers.RandomSampler(seed=0))
    assert replay(b) == decisions
    flush_annotations()
    assert [t.user_attrs for t in a.trials] == [t.user_attrs for t in b.trials]


def test_the_process_state_is_what_a_copy_leaves_out() -> None:
    # Everything _start_process_state sets is left out of a copy, and nothing else.
    names = pruner_module._process_state_names()
    assert {"_lock", "_fits", "_cache", "_models", "_last_look", "_anchor", "_store"} <= names
    state = LCPredictionPruner().__getstate__()
    assert not set(state) & names
    assert {"_min_prob", "_prior", "_written_once", "_kept_rules", "selections"} <= set(state)


@pytest.mark.parametrize("make_copy", COPIES)
def test_a_copied_sampler_and_pruner_continue_as_the_originals(
    make_copy: Callable[[Any], Any],
) -> None:
    def study() -> optuna.Study:
        sampler = PredictedFinalSampler(optuna.samplers.TPESampler(seed=0, n_startup_trials=5))
        return optuna.create_study(sampler=sampler, pruner=LCPredictionPruner(3))

    a, b = study(), study()
    a.optimize(curve_objective, n_trials=15)
    b.optimize(curve_objective, n_trials=15)
    assert any(t.state == TrialState.PRUNED for t in b.trials)  # the view has work to do
    b.sampler = make_copy(b.sampler)
    b.pruner = make_copy(b.pruner)
    assert isinstance(b.sampler, PredictedFinalSampler) and not b.sampler._views
    a.optimize(curve_objective, n_trials=15)
    b.optimize(curve_objective, n_trials=15)
    assert [t.params for t in a.trials] == [t.params for t in b.trials]
    assert [t.state for t in a.trials] == [t.state for t in b.trials]


def _optimize_in_this_process(study: optuna.Study, n_trials: int) -> None:
    study.optimize(curve_objective, n_trials=n_trials)


def test_a_study_sent_to_a_spawned_process_prunes_there(tmp_path: Path) -> None:
    # What Dask's client.submit(study.optimize, ...) does: the whole study, pruner and sampler
    # included, is pickled for the worker process.
    study = optuna.create_study(
        study_name="copied",
        storage=f"sqlite:///{tmp_path / 'copied.db'}",
        sampler=PredictedFinalSampler(optuna.samplers.TPESampler(seed=0, n_startup_trials=5)),
        pruner=LCPredictionPruner(3),
    )
    study.optimize(curve_objective, n_trials=5)  # the parent's pruner and sampler are in use
    process = multiprocessing.get_context("spawn").Process(
        target=_optimize_in_this_process, args=(study, 25)
    )
    process.start()
    process.join(timeout=120)
    assert process.exitcode == 0
    trials = study.get_trials()
    assert len(trials) == 30
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert pruned and all(isinstance(t.user_attrs["lcpred:pred_final"], float) for t in pruned)
