"""Prediction quality: how well each predictor guesses the final value from part of the curve.

For each fraction ``f`` of the curve observed (the first ``max(1, round(f * T))`` steps), grouped
K-fold cross-validation (a group = trials with identical hyperparameters, so a repeated
configuration is never on both sides of a split) predicts every trial's final value from a model
fitted on the other folds. The out-of-fold predictions of all folds are pooled and scored with
R^2 (``r2_score(y_true, y_pred)``), Spearman's rho and the mean absolute error.

Trials whose final value is not finite (diverged) have no target and are left out, as are trials
with no finite value in the observed part.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.stats import spearmanr
from sklearn.base import clone
from sklearn.metrics import mean_absolute_error
from sklearn.metrics import r2_score
from sklearn.model_selection import GroupKFold

from optuna_lcpred.curves import CurveTable
from optuna_lcpred.features import encode_hyperparameters
from optuna_lcpred.features import observed_prefix
from optuna_lcpred.predictors import LastValuePredictor
from optuna_lcpred.predictors import LinearLastValuePredictor
from optuna_lcpred.predictors import PowerLawPredictor
from optuna_lcpred.predictors import SVRPredictor
from optuna_lcpred.predictors.base import CurvePredictor
from optuna_lcpred.predictors.qsvr import QSVRPredictor


__all__ = [
    "available_predictors",
    "evaluate_table",
    "observed_steps",
    "prediction_scores",
    "register_predictor",
]

PredictorFactory = Callable[[int], CurvePredictor]

_REGISTRY: dict[str, PredictorFactory] = {
    "last": lambda horizon: LastValuePredictor(),
    "linear": lambda horizon: LinearLastValuePredictor(),
    "powerlaw": lambda horizon: PowerLawPredictor(horizon=horizon),
    "svr": lambda horizon: SVRPredictor(),
    "qsvr": lambda horizon: QSVRPredictor(random_state=0),
}


def register_predictor(name: str, factory: PredictorFactory) -> None:
    """Make ``name`` usable in ``evaluate --predictors``; ``factory(T)`` returns an unfitted
    :class:`~optuna_lcpred.predictors.base.CurvePredictor` for curves of ``T`` steps."""
    if not name or "," in name:
        raise ValueError(f"predictor name must be non-empty without commas, got {name!r}")
    _REGISTRY[name] = factory


def available_predictors() -> list[str]:
    """Registered predictor names."""
    return sorted(_REGISTRY)


def observed_steps(fraction: float, n_steps: int) -> int:
    """Steps observed at ``fraction`` of a ``n_steps`` curve: ``max(1, round(fraction * T))``.

    Raises:
        ValueError: ``fraction`` is not in (0, 1), or leaves the final step observed.
    """
    if not (isinstance(fraction, (int, float)) and 0.0 < fraction < 1.0):
        raise ValueError(f"fraction must be in (0, 1), got {fraction!r}")
    observed = max(1, round(fraction * n_steps))
    if observed >= n_steps:
        raise ValueError(
            f"fraction {fraction} observes {observed} of {n_steps} steps, the final value "
            "included; use a smaller fraction"
        )
    return observed


def prediction_scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """R^2, Spearman's rho and MAE of predictions (NaN where undefined, e.g. constant input)."""
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    if y_true.shape != y_pred.shape or y_true.ndim != 1 or y_true.size < 2:
        raise ValueError(
            f"need two 1-D arrays of equal length >= 2, got {y_true.shape} and {y_pred.shape}"
        )
    constant = np.ptp(y_true) == 0 or np.ptp(y_pred) == 0
    rho = math.nan if constant else float(spearmanr(y_true, y_pred).statistic)
    r2 = math.nan if np.ptp(y_true) == 0 else float(r2_score(y_true, y_pred))
    return {"r2": r2, "spearman": rho, "mae": float(mean_absolute_error(y_true, y_pred))}


def evaluate_table(
    table: CurveTable,
    predictors: Sequence[str],
    fractions: Sequence[float],
    *,
    folds: int = 5,
    seed: int = 0,
) -> dict[str, dict[str, dict[str, float]]]:
    """Scores of each predictor at each observed fraction, by grouped K-fold CV.

    A fraction scores the runs that have a final value and reported up to it: a diverged run
    is left out, and so, from the fractions it did not reach, is a run that stopped itself
    (a table's ``value`` with a curve that ends early).

    Args:
        table: The learning curves.
        predictors: Registered predictor names (see :func:`available_predictors`).
        fractions: Fractions of the curve observed, each in (0, 1).
        folds: Number of folds (at most the number of distinct configurations).
        seed: Seeds the assignment of groups to folds.

    Returns:
        ``{predictor: {fraction_text: {"r2", "spearman", "mae"}}}``; ``fraction_text`` is
        ``str(float(fraction))``.
    """
    unknown = [p for p in predictors if p not in _REGISTRY]
    if unknown:
        raise ValueError(
            f"unknown predictor(s) {', '.join(map(repr, unknown))}; known: "
            f"{', '.join(available_predictors())}"
        )
    if folds < 2:
        raise ValueError(f"folds must be >= 2, got {folds}")
    for fraction in fractions:
        observed_steps(fraction, table.n_steps)
    finals = table.final_values
    ends = table.end_indices  # a run that stopped itself says nothing about later fractions
    hyper = encode_hyperparameters(table.params)
    groups = table.config_groups()
    results: dict[str, dict[str, dict[str, float]]] = {p: {} for p in predictors}
    for fraction in fractions:
        n_obs = observed_steps(fraction, table.n_steps)
        prefix = observed_prefix(table.curves, n_obs)
        usable = np.isfinite(finals) & np.isfinite(prefix).any(axis=1) & (ends >= n_obs - 1)
        n_groups = len(np.unique(groups[usable]))
        if n_groups < 2:
            raise ValueError(
                f"table {table.name!r} has {n_groups} usable configuration(s) at fraction "
                f"{fraction}; cross-validation needs at least 2"
            )
        X = np.hstack([prefix, hyper])[usable]
        y = finals[usable]
        splitter = GroupKFold(n_splits=min(folds, n_groups), shuffle=True, random_state=seed)
        splits = list(splitter.split(X, y, groups[usable]))
        for name in predictors:
            template = _REGISTRY[name](table.n_steps).set_params(n_steps=n_obs)
            predicted = _cross_val_predict(template, X, y, splits)
            results[name][str(float(fraction))] = prediction_scores(y, predicted)
    return results


def _cross_val_predict(
    template: Any, X: np.ndarray, y: np.ndarray, splits: list[tuple[np.ndarray, np.ndarray]]
) -> np.ndarray:
    predicted = np.full(y.shape, np.nan)
    for train, test in splits:
        model = clone(template).fit(X[train], y[train])
        predicted[test] = model.predict(X[test])
    return predicted
