"""Classical support-vector regression of the final value (scikit-learn ``NuSVR``)."""

from __future__ import annotations

import numpy as np
from sklearn.preprocessing import StandardScaler
from sklearn.svm import NuSVR

from optuna_lcpred.features import RobustScale
from optuna_lcpred.features import curve_summary
from optuna_lcpred.predictors.base import CurvePredictor


__all__ = ["SVRPredictor"]


class SVRPredictor(CurvePredictor):
    """``NuSVR`` with an RBF kernel on curve features and hyperparameters.

    The observed curve and the target are first put on a robust scale: centred on the median of
    the training targets, divided by their interquartile range, then passed through ``arcsinh``,
    which is linear near the bulk and logarithmic for runs whose loss exploded. Features (see
    :func:`~optuna_lcpred.features.curve_summary`): the curve resampled at ``n_points`` evenly
    spaced steps, its last first and second differences, then any hyperparameter columns of
    ``X``; all standardised on the training rows.

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
    scaler_ : StandardScaler
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
        super().__init__(n_steps=n_steps)
        self.n_points = n_points
        self.nu = nu
        self.C = C
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
        if len(y) > self.max_samples:
            order = np.argsort(y, kind="stable")
            keep = order[np.round(np.linspace(0, len(y) - 1, self.max_samples)).astype(int)]
            curves, extra, y = curves[keep], extra[keep], y[keep]
        features = self._features(curves, extra)
        self.scaler_ = StandardScaler().fit(features)
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
        self.svr_ = NuSVR(nu=self.nu, C=self.C, gamma=self.gamma_, kernel="rbf")
        self.svr_.fit(scaled, self._transform(y))

    def _predict(self, curves: np.ndarray, extra: np.ndarray) -> np.ndarray:
        scaled = self.scaler_.transform(self._features(curves, extra))
        return RobustScale(self.center_, self.scale_).inverse(self.svr_.predict(scaled))
