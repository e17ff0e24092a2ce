"""Retries of failed trials that start clean: the same parameters, none of the pruner's notes.

A trial whose worker died is failed and queued again. Optuna's own heartbeat retry copies every
user attribute of the failed trial, so the copy would carry the pruner's predictions for the
dead run as if they were its own; the callback here copies only the user's attributes.
"""

from __future__ import annotations

from typing import Any

import optuna
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from optuna_lcpred._trials import ANNOTATION_PREFIX
from optuna_lcpred.checkpoint import RETRY_OF_ATTR
from optuna_lcpred.checkpoint import original_trial_number


__all__ = ["RetryStaleTrialCallback", "retry_user_attrs"]


class RetryStaleTrialCallback:
    """Retry a trial whose worker died (heartbeats), without the pruner's annotations.

    Does what Optuna's ``RetryFailedTrialCallback`` (``RetryHeartbeatStaleTrialCallback`` in
    Optuna 5) does, and stores the same ``failed_trial`` and ``retry_history`` system
    attributes, so ``RetryFailedTrialCallback.retried_trial_number`` works on its retries: a
    failed trial comes back as a WAITING trial with the same parameters, at most ``max_retry``
    times along a chain of retries. Unlike it, the retry does not inherit the failed run's
    ``lcpred:`` user attributes (predictions, milestones, the audit mark, the checkpoint
    bookkeeping), which would otherwise read as the retry's own in the dashboard, in
    ``optuna-lcpred report`` and in :class:`~optuna_lcpred.PredictedFinalSampler`'s view;
    it gets ``lcpred:retry_of`` (the first trial of the chain) instead. ``optuna-lcpred
    worker`` sets it up on PostgreSQL and MySQL storages.

    Args:
        max_retry: How many times one trial may be retried (None: without limit).

    Example:
        >>> import optuna
        >>> from optuna_lcpred import RetryStaleTrialCallback
        >>> study = optuna.create_study()
        >>> trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
        >>> trial.set_user_attr("lcpred:pred_final", 0.5)
        >>> study.tell(trial, state=optuna.trial.TrialState.FAIL)
        FrozenTrial(...)
        >>> RetryStaleTrialCallback(max_retry=1)(study, study.trials[0])
        >>> retry = study.trials[1]
        >>> retry.state.name, retry.params == study.trials[0].params, retry.user_attrs
        ('WAITING', True, {'lcpred:retry_of': 0})

    The storage of a cluster study, as ``optuna-lcpred worker`` opens it::

        optuna.storages.RDBStorage(
            url, heartbeat_interval=60, grace_period=180,
            heartbeat_stale_trial_callback=RetryStaleTrialCallback(max_retry=3),
        )  # Optuna 4: failed_trial_callback=...
    """

    def __init__(self, max_retry: int | None = None) -> None:
        if max_retry is not None and (
            isinstance(max_retry, bool) or not isinstance(max_retry, int) or max_retry < 0
        ):
            raise ValueError(f"max_retry must be None or an int >= 0, got {max_retry!r}")
        self.max_retry = max_retry

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        history = [*trial.system_attrs.get("retry_history", []), trial.number]
        if self.max_retry is not None and len(history) > self.max_retry:
            return
        system_attrs = {
            "failed_trial": trial.number,
            **trial.system_attrs,
            "retry_history": history,
        }
        study.add_trial(
            optuna.trial.create_trial(
                state=TrialState.WAITING,
                params=trial.params,
                distributions=trial.distributions,
                user_attrs=retry_user_attrs(trial),
                system_attrs=system_attrs,
            )
        )

    def __repr__(self) -> str:
        return f"RetryStaleTrialCallback(max_retry={self.max_retry!r})"


def retry_user_attrs(trial: FrozenTrial) -> dict[str, Any]:
    """A retry's user attributes: the user's own of ``trial``, and ``lcpred:retry_of``."""
    own = {k: v for k, v in trial.user_attrs.items() if not k.startswith(ANNOTATION_PREFIX)}
    return {**own, RETRY_OF_ATTR: original_trial_number(trial)}
