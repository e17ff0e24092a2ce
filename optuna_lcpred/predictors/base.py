"""The predictor protocol: scikit-learn regressors over partial learning curves."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.base import RegressorMixin
from sklearn.utils.validation import check_is_fitted
from sklearn.utils.validation import validate_data


__all__ = ["CurvePredictor"]


class CurvePredictor(RegressorMixin, BaseEstimator):  # type: ignore[misc]
    """Base of the learning-curve predictors: predicts a trial's final value.

    ``X`` holds one row per trial: the observed curve for report steps ``0 .. n_steps-1``
    (NaN where a value is missing), then any hyperparameter features. ``y`` is the final value.
    Subclasses implement ``_fit(curves, extra, y)`` and ``_predict(curves, extra)``.

    Parameters
    ----------
    n_steps : int or None, default=None
        How many leading columns of ``X`` are the observed curve; None means all of them.

    Examples
    --------
    A predictor of the best value seen so far, as a subclass (it learns nothing across trials,
    so ``_fit`` only marks it fitted):

    >>> import numpy as np
    >>> class BestSoFar(CurvePredictor):
    ...     def _fit(self, curves, extra, y):
    ...         self.fitted_ = True
    ...
    ...     def _predict(self, curves, extra):
    ...         return np.nanmin(curves, axis=1)
    >>> X = np.array([[3.0, 2.0, 2.5], [4.0, 3.5, np.nan]])
    >>> BestSoFar().fit(X, [2.0, 3.0]).predict(X)
    array([2. , 3.5])
    """

    #: True when predictions depend on each curve alone (nothing is learned across trials), so
    #: cross-validation may predict every row with one fit.
    _per_curve = False
    #: True when ``fit`` leaves ``oob_prediction_``: each training row predicted by models that
    #: did not see it, so model selection needs no K-fold refits.
    _held_out_predictions = False

    def __init__(self, *, n_steps: int | None = None) -> None:
        self.n_steps = n_steps

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    def fit(self, X: Any, y: Any) -> CurvePredictor:
        """Fit on observed curves ``X`` and final values ``y``; returns the fitted predictor."""
        X, y = validate_data(
            self, X, y, dtype=np.float64, ensure_all_finite="allow-nan", y_numeric=True
        )
        if not np.all(np.isfinite(y)):
            raise ValueError("y (the final values) must be finite; drop diverged trials first")
        return self.fit_arrays(X, y)

    def predict(self, X: Any) -> np.ndarray:
        """Predicted final value for each row of ``X``, shape ``(n_samples,)``."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan", reset=False)
        return self.predict_arrays(X)

    def fit_arrays(self, X: np.ndarray, y: np.ndarray) -> CurvePredictor:
        """``fit`` without input validation, for callers that pass checked float arrays
        (cross-validation in the pruner runs it thousands of times)."""
        self.n_features_in_ = X.shape[1]
        curves, extra = self._split(X)
        self._fit(curves, extra, y)
        return self

    def predict_arrays(self, X: np.ndarray) -> np.ndarray:
        """``predict`` without input validation (see :meth:`fit_arrays`)."""
        curves, extra = self._split(X)
        return np.asarray(self._predict(curves, extra), dtype=np.float64)

    def _split(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n_steps = X.shape[1] if self.n_steps is None else int(self.n_steps)
        if not 1 <= n_steps <= X.shape[1]:
            raise ValueError(
                f"n_steps must be in [1, {X.shape[1]}] (the columns of X), got {self.n_steps!r}"
            )
        return X[:, :n_steps], X[:, n_steps:]

    def _fit(self, curves: np.ndarray, extra: np.ndarray, y: np.ndarray) -> None:
        raise NotImplementedError

    def _predict(self, curves: np.ndarray, extra: np.ndarray) -> np.ndarray:
        raise NotImplementedError
