"""Retries of failed trials: same parameters, the user's attributes, none of the pruner's."""

from __future__ import annotations

import optuna
import pytest
from optuna import storages
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from optuna_lcpred import RetryStaleTrialCallback
from optuna_lcpred import original_trial_number
from optuna_lcpred.worker import requeue_trial


SPACE = {"x": FloatDistribution(0.0, 1.0)}
# Optuna's own callback: RetryHeartbeatStaleTrialCallback from Optuna 5 (4.9), before that
# RetryFailedTrialCallback.
OptunaRetry = getattr(storages, "RetryHeartbeatStaleTrialCallback", None) or (
    storages.RetryFailedTrialCallback
)


def _failed(study: optuna.Study) -> optuna.trial.FrozenTrial:
    """A trial the pruner had annotated, whose worker then died."""
    trial = study.ask(SPACE)
    trial.report(0.7, 0)
    for key, value in {"lcpred:pred_final": 0.4, "lcpred:audit": 1.0, "owner": "ana"}.items():
        trial.set_user_attr(key, value)
    trial.set_user_attr("lcpred:worker", "node7:123")
    study.tell(trial, state=TrialState.FAIL)
    return study.trials[trial.number]


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_a_retry_keeps_the_parameters_and_the_users_attributes_only() -> None:
    study = optuna.create_study()
    failed = _failed(study)
    RetryStaleTrialCallback()(study, failed)
    retry = study.trials[-1]
    assert retry.state == TrialState.WAITING
    assert retry.params == failed.params and retry.distributions == failed.distributions
    assert retry.intermediate_values == {}
    assert retry.user_attrs == {"owner": "ana", "lcpred:retry_of": failed.number}
    # The same bookkeeping as Optuna's own callback, so its helper and ours read it.
    assert OptunaRetry.retried_trial_number(retry) == failed.number
    assert retry.system_attrs["retry_history"] == [failed.number]
    assert original_trial_number(retry) == failed.number
    # The retry runs with the failed trial's parameters.
    trial = study.ask()
    assert trial.number == retry.number
    assert trial.suggest_float("x", 0.0, 1.0) == failed.params["x"]


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_max_retry_bounds_a_chain_as_optunas_callback_does() -> None:
    ours, theirs = optuna.create_study(), optuna.create_study()
    for study, callback in (
        (ours, RetryStaleTrialCallback(max_retry=2)),
        (theirs, OptunaRetry(max_retry=2)),
    ):
        callback(study, _failed(study))
        while study.get_trials(states=(TrialState.WAITING,)):  # each retry dies too
            trial = study.ask()
            study.tell(trial, state=TrialState.FAIL)
            callback(study, study.trials[trial.number])
    assert [t.state for t in ours.trials] == [t.state for t in theirs.trials]
    assert len(ours.trials) == 3  # the first run and two retries
    last = ours.trials[-1]
    assert last.system_attrs["retry_history"] == theirs.trials[-1].system_attrs["retry_history"]
    assert last.system_attrs["failed_trial"] == 0 and last.user_attrs["lcpred:retry_of"] == 0


def test_a_stopped_workers_requeue_leaves_the_annotations_behind_too() -> None:
    study = optuna.create_study()
    failed = _failed(study)
    requeue_trial(study, failed)
    retry = study.trials[-1]
    assert retry.state == TrialState.WAITING
    assert retry.user_attrs == {
        "owner": "ana",
        "lcpred:retry_of": failed.number,
        "lcpred:queued": True,
    }


@pytest.mark.parametrize("bad", [-1, 1.5, True, "3"])
def test_bad_max_retry_is_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="max_retry"):
        RetryStaleTrialCallback(max_retry=bad)  # type: ignore[arg-type]


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_worker_storages_retry_with_it(pg_url: str) -> None:
    from optuna_lcpred.studyfile import parse_study
    from optuna_lcpred.worker import make_storage

    raw = {
        "study": {"name": "s", "n_trials": 4},
        "objective": {"target": "optuna_lcpred.bench:ReplayObjective"},
        "rdb": {"heartbeat_interval": 5, "max_retry": 2},
    }
    config = parse_study(raw)
    storage = make_storage(pg_url, config)
    callback = getattr(storage, "heartbeat_stale_trial_callback", None) or getattr(
        storage, "failed_trial_callback", None
    )
    assert isinstance(callback, RetryStaleTrialCallback)
    assert callback.max_retry == 2
