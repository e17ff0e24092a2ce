"""PredictedFinalSampler: a sampler learns from pruned trials as if they had finished."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any

from optuna.samplers import BaseSampler

from optuna_lcpred import _trials
from optuna_lcpred.pruner import ATTR_PRED_FINAL


if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution
    from optuna.study import Study
    from optuna.trial import FrozenTrial
    from optuna.trial import TrialState


__all__ = ["PredictedFinalSampler"]

_MAX_VIEWS = 8  # views of different studies kept at once


class PredictedFinalSampler(BaseSampler):
    """Wrap a sampler so that it sees pruned trials at their predicted final value.

    Optuna's TPE ranks PRUNED trials below every COMPLETE one by their last reported value, and
    GP and CMA-ES ignore them; yet :class:`~optuna_lcpred.LCPredictionPruner` stopped each of
    them with a prediction of its final value (``lcpred:pred_final``). This wrapper hands its
    base sampler a view of the study (the same storage) in which those trials read as COMPLETE
    with that value, so it learns from them as from finished trials. The study itself keeps
    them PRUNED. Trials stopped otherwise stay PRUNED in the view too: by another pruner (no
    prediction), for a NaN or inf report, or by anything else after a prediction had kept them
    (only a prediction that stopped the trial, marked ``lcpred:pruned_at`` at its last step,
    stands in for its final value).
    Everything the base sampler writes (TPE's constant-liar parameters, say) goes to the real
    storage. Every hook is forwarded, as Optuna's ``PartialFixedSampler`` does.

    Example:
        >>> import optuna
        >>> from optuna_lcpred import LCPredictionPruner, PredictedFinalSampler
        >>> sampler = PredictedFinalSampler(optuna.samplers.TPESampler(seed=0))
        >>> study = optuna.create_study(sampler=sampler, pruner=LCPredictionPruner())
        >>> def objective(trial):
        ...     x = trial.suggest_float("x", -3, 3)
        ...     for step in range(10):
        ...         trial.report((x - 1) ** 2 + 1 / (step + 1), step)
        ...         if trial.should_prune():
        ...             raise optuna.TrialPruned()
        ...     return (x - 1) ** 2 + 0.1
        >>> study.optimize(objective, n_trials=25)
        >>> abs(study.best_params["x"] - 1) < 1
        True

    Args:
        base_sampler: The sampler that proposes parameters (TPE, GP, CMA-ES, ...).
        key: The user attribute holding the predicted final value.
    """

    def __init__(self, base_sampler: BaseSampler, *, key: str = ATTR_PRED_FINAL) -> None:
        if not isinstance(base_sampler, BaseSampler):
            raise TypeError(
                f"base_sampler must be an optuna sampler, got {type(base_sampler).__name__}"
            )
        if isinstance(base_sampler, PredictedFinalSampler):
            raise ValueError("base_sampler is already a PredictedFinalSampler")
        self._base = base_sampler
        self._key = key
        self._views: dict[tuple[int, int], Study] = {}
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        """The base sampler and the key; a copy (pickle, ``copy.deepcopy``) makes its own
        views of the study, as Optuna's samplers can be sent to other processes."""
        return {"_base": self._base, "_key": self._key}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._views = {}
        self._lock = threading.Lock()

    @property
    def base_sampler(self) -> BaseSampler:
        """The wrapped sampler."""
        return self._base

    def _view(self, study: Study) -> Study:
        ident = _trials.study_identity(study)
        with self._lock:
            view = self._views.get(ident)
            if view is None:
                # A view holds its study's storage, so a cached id cannot be reused by another
                # storage; only the latest few are kept, so that a sampler reused for study
                # after study does not keep every finished one in memory.
                if len(self._views) >= _MAX_VIEWS:
                    del self._views[next(iter(self._views))]
                view = self._views[ident] = _trials.sampler_view(study, self._key, self._base)
            return view

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self._base.infer_relative_search_space(self._view(study), trial)

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self._base.sample_relative(self._view(study), trial, search_space)

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return self._base.sample_independent(
            self._view(study), trial, param_name, param_distribution
        )

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        view = self._view(study)
        _trials.forget_cached_trials(view)  # each trial samples from up-to-date trials
        self._base.before_trial(view, trial)

    def after_trial(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self._base.after_trial(self._view(study), trial, state, values)

    def reseed_rng(self) -> None:
        self._base.reseed_rng()
