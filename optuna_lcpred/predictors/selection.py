"""Choosing a predictor per decision step by grouped cross-validation, and its error spread."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import GroupKFold

from optuna_lcpred.features import RobustScale
from optuna_lcpred.predictors.base import CurvePredictor


__all__ = ["SelectedPredictor", "select_predictor"]


@dataclass(frozen=True)
class SelectedPredictor:
    """The predictor chosen for one decision step.

    Attributes:
        name: Its name among the candidates.
        model: Fitted on all training rows.
        scale: The robust scale residuals are measured on.
        residuals: Out-of-fold residuals ``phi(y) - phi(prediction)`` of the contenders
            (training trials whose final is at most the median final).
        cv_error: Mean absolute contender residual of each candidate.
    """

    name: str
    model: CurvePredictor
    scale: RobustScale
    residuals: np.ndarray
    cv_error: dict[str, float]
    row_residuals: np.ndarray | None = None  # every training row's residual (NaN if none)

    @property
    def spread(self) -> float:
        """Root-mean-square contender residual (bias included), on the robust scale."""
        return float(np.sqrt(np.mean(self.residuals**2))) if self.residuals.size else np.inf


def select_predictor(
    candidates: Mapping[str, CurvePredictor],
    X: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    *,
    n_folds: int = 5,
    seed: int = 0,
) -> SelectedPredictor:
    """Cross-validate each candidate and keep the one that errs least on the contenders.

    The error that matters for pruning is on trials that could win, so candidates are ranked by
    the mean absolute out-of-fold residual, on the robust scale, of the training trials whose
    final is at most the median final. Ties go to the candidate listed first (list the simpler
    ones first). The winner is refitted on every row. A candidate that makes its own held-out
    predictions while fitting (``oob_prediction_``, e.g. the bagged annealer-trained SVR) is
    fitted once, and those predictions replace K-fold cross-validation.

    Args:
        candidates: Unfitted predictors by name.
        X: Features (observed curve, then hyperparameters), one row per finished trial.
        y: Final values (smaller is better).
        groups: Trials with equal group ids never straddle a fold.
        n_folds: Folds (at most the number of distinct groups).
        seed: Seeds the assignment of groups to folds.

    Raises:
        ValueError: Fewer than 2 groups, or no candidate.
    """
    if not candidates:
        raise ValueError("candidates must not be empty")
    n_groups = len(np.unique(groups))
    if n_groups < 2:
        raise ValueError(f"cross-validation needs at least 2 groups, got {n_groups}")
    scale = RobustScale.fit(y)
    contenders = y <= np.median(y)
    splits = list(
        GroupKFold(n_splits=min(n_folds, n_groups), shuffle=True, random_state=seed).split(
            X, y, groups
        )
    )
    errors: dict[str, float] = {}
    residuals: dict[str, np.ndarray] = {}
    by_row: dict[str, np.ndarray] = {}
    target = scale.forward(y)
    X = np.ascontiguousarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    fitted: dict[str, CurvePredictor] = {}
    for name, template in candidates.items():
        if template._per_curve:
            predicted = clone(template).fit_arrays(X, y).predict_arrays(X)
        elif template._held_out_predictions:
            # One fit on all rows; its own held-out predictions stand in for K-fold CV.
            fitted[name] = clone(template).fit_arrays(X, y)
            predicted = np.asarray(fitted[name].oob_prediction_, dtype=np.float64)
        else:
            predicted = np.empty_like(y)
            for train, test in splits:
                model = clone(template).fit_arrays(X[train], y[train])
                predicted[test] = model.predict_arrays(X[test])
        r = target - scale.forward(predicted)
        known = ~np.isnan(predicted)  # rows no held-out model saw are left out
        by_row[name] = np.where(known, np.where(np.isfinite(r), r, np.inf), np.nan)
        r = np.where(np.isfinite(r), r, np.inf)[contenders & known]
        residuals[name] = r
        errors[name] = float(np.mean(np.abs(r))) if r.size else np.inf
    best = min(errors, key=lambda n: (errors[n], list(candidates).index(n)))
    model = fitted.get(best) or clone(candidates[best]).fit_arrays(X, y)
    return SelectedPredictor(best, model, scale, residuals[best], errors, by_row[best])
