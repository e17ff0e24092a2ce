"""Support-vector regression of the final value: the shared kernel front end, and the classical
backend (scikit-learn ``NuSVR``). The annealer-trained backend is in
:mod:`optuna_lcpred.predictors.qsvr`."""

from __future__ import annotations

import numpy as np
from sklearn.svm import NuSVR

from optuna_lcpred.features import RobustScale
from optuna_lcpred.features import curve_summary
from optuna_lcpred.predictors.base import CurvePredictor


__all__ = ["FeatureScaler", "KernelRegressor", "SVRPredictor", "rbf_kernel"]


class FeatureScaler:
    """Standardises columns to zero mean and unit variance (a constant column keeps scale 1).

    What ``StandardScaler`` does, without its input validation: the pruner fits thousands of
    these during cross-validation, on arrays it has already checked.

    Attributes:
        mean_: Column means of the fitting data.
        scale_: Column standard deviations (1 where a column is constant).
    """

    def __init__(self, mean: np.ndarray, scale: np.ndarray) -> None:
        self.mean_ = np.asarray(mean, dtype=np.float64)
        self.scale_ = np.asarray(scale, dtype=np.float64)

    @classmethod
    def fit(cls, features: np.ndarray) -> FeatureScaler:
        """Fitted on ``features`` (rows are samples)."""
        std = features.std(axis=0)
        return cls(features.mean(axis=0), np.where(std > 0, std, 1.0))

    def transform(self, features: np.ndarray) -> np.ndarray:
        """``(features - mean_) / scale_``."""
        return np.asarray((features - self.mean_) / self.scale_)


def rbf_kernel(a: np.ndarray, b: np.ndarray, gamma: float) -> np.ndarray:
    """``exp(-gamma |a_i - b_j|^2)`` for every row pair, shape ``(len(a), len(b))``.

    Example:
        >>> rbf_kernel(np.zeros((1, 2)), np.ones((1, 2)), 0.5).round(4)
        array([[0.3679]])
    """
    sq = (a**2).sum(1)[:, None] + (b**2).sum(1)[None, :] - 2.0 * a @ b.T
    return np.asarray(np.exp(-gamma * np.maximum(sq, 0.0)))


class KernelRegressor(CurvePredictor):
    """What both SVRs share: features, target scale and kernel width; the backend that learns
    on them is a subclass's ``_fit_scaled`` / ``_predict_scaled``.

    The observed curve and the target are first put on a robust scale: centred on the median of
    the training targets, divided by their interquartile range, then passed through ``arcsinh``,
    which is linear near the bulk and logarithmic for runs whose loss exploded. Features (see
    :func:`~optuna_lcpred.features.curve_summary`): the curve resampled at ``n_points`` evenly
    spaced steps, its last first and second differences, then any hyperparameter columns of
    ``X``; all standardised on the training rows.
    """

    def __init__(
        self,
        *,
        n_steps: int | None = None,
        n_points: int = 6,
        gamma: float | str = "scale",
        max_samples: int = 300,
    ) -> None:
        super().__init__(n_steps=n_steps)
        self.n_points = n_points
        self.gamma = gamma
        self.max_samples = max_samples

    def _transform(self, values: np.ndarray) -> np.ndarray:
        return RobustScale(self.center_, self.scale_).forward(values)

    def _features(self, curves: np.ndarray, extra: np.ndarray) -> np.ndarray:
        summary = curve_summary(self._transform(curves), int(self.n_points))
        return np.hstack([summary, extra])

    def _fit(self, curves: np.ndarray, extra: np.ndarray, y: np.ndarray) -> None:
        robust = RobustScale.fit(y)
        self.center_, self.scale_ = robust.center, robust.scale
        self.sample_index_ = np.arange(len(y))
        if len(y) > self.max_samples:
            order = np.argsort(y, kind="stable")
            keep = order[np.round(np.linspace(0, len(y) - 1, self.max_samples)).astype(int)]
            curves, extra, y = curves[keep], extra[keep], y[keep]
            self.sample_index_ = keep
        features = self._features(curves, extra)
        self.scaler_ = FeatureScaler.fit(features)
        scaled = self.scaler_.transform(features)
        # The kernel width as a number (NuSVR's own rule for "scale" and "auto"), so that a
        # fitted model can be written out and evaluated elsewhere (optuna_lcpred.sharing).
        if self.gamma == "scale":
            variance = float(scaled.var())
            self.gamma_ = 1.0 / (scaled.shape[1] * variance) if variance > 0 else 1.0
        elif self.gamma == "auto":
            self.gamma_ = 1.0 / scaled.shape[1]
        else:
            self.gamma_ = float(self.gamma)
        self._fit_scaled(scaled, self._transform(y))

    def _predict(self, curves: np.ndarray, extra: np.ndarray) -> np.ndarray:
        scaled = self.scaler_.transform(self._features(curves, extra))
        return RobustScale(self.center_, self.scale_).inverse(self._predict_scaled(scaled))

    def _fit_scaled(self, features: np.ndarray, target: np.ndarray) -> None:
        raise NotImplementedError

    def _predict_scaled(self, features: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class SVRPredictor(KernelRegressor):
    """``NuSVR`` with an RBF kernel on curve features and hyperparameters.

    The features and the robust target scale are :class:`KernelRegressor`'s.

    Parameters
    ----------
    n_steps : int or None, default=None
        How many leading columns of ``X`` are the observed curve; None means all of them.
    n_points : int, default=6
        Points at which the observed curve is resampled.
    nu : float, default=0.5
        ``NuSVR``'s bound on the fraction of support vectors.
    C : float, default=1.0
        ``NuSVR``'s regularisation.
    gamma : float or {"scale", "auto"}, default="scale"
        RBF kernel width, as in ``NuSVR``.
    max_samples : int, default=300
        Fit on at most this many rows: beyond it, rows evenly spaced in the order of their
        targets (every part of the range stays represented; the fit cost grows with the square
        of the rows).

    Attributes
    ----------
    svr_ : NuSVR
        The fitted regressor (on scaled features and targets).
    center_, scale_ : float
        The robust scale of the targets.
    scaler_ : FeatureScaler
        Standardises the features.
    gamma_ : float
        The RBF kernel width used (``gamma`` resolved to a number).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = np.sort(rng.uniform(1, 2, (40, 5)), axis=1)[:, ::-1]
    >>> y = X[:, -1] - 0.1
    >>> model = SVRPredictor().fit(X, y)
    >>> float(np.corrcoef(model.predict(X), y)[0, 1]) > 0.95
    True
    """

    def __init__(
        self,
        *,
        n_steps: int | None = None,
        n_points: int = 6,
        nu: float = 0.5,
        C: float = 1.0,
        gamma: float | str = "scale",
        max_samples: int = 300,
    ) -> None:
        super().__init__(n_steps=n_steps, n_points=n_points, gamma=gamma, max_samples=max_samples)
        self.nu = nu
        self.C = C

    def _fit_scaled(self, features: np.ndarray, target: np.ndarray) -> None:
        self.svr_ = NuSVR(nu=self.nu, C=self.C, gamma=self.gamma_, kernel="rbf")
        self.svr_.fit(features, target)

    def _predict_scaled(self, features: np.ndarray) -> np.ndarray:
        return np.asarray(self.svr_.predict(features))
