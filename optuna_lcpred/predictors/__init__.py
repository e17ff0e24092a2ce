"""Learning-curve predictors: scikit-learn regressors of a trial's final value."""

from __future__ import annotations

from optuna_lcpred.predictors.base import CurvePredictor
from optuna_lcpred.predictors.baselines import LastValuePredictor
from optuna_lcpred.predictors.baselines import LinearLastValuePredictor
from optuna_lcpred.predictors.baselines import PowerLawPredictor
from optuna_lcpred.predictors.svr import SVRPredictor


__all__ = [
    "CurvePredictor",
    "LastValuePredictor",
    "LinearLastValuePredictor",
    "PowerLawPredictor",
    "SVRPredictor",
]
