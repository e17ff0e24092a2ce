"""Baselines that every learned predictor must beat (DESIGN section 4).

- :class:`LastValuePredictor`: the last observed value is the final value.
- :class:`LinearLastValuePredictor`: a linear map of the last observed value, fitted across
  trials.
- :class:`PowerLawPredictor`: each curve's own power law ``y(s) = a + b s^(-c)`` extrapolated to
  the last step; fitted per curve, nothing learned across trials.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from optuna_lcpred.features import last_finite
from optuna_lcpred.predictors.base import CurvePredictor


__all__ = ["LastValuePredictor", "LinearLastValuePredictor", "PowerLawPredictor"]


def _filled_last(curves: np.ndarray) -> np.ndarray:
    last = last_finite(curves)
    if np.isnan(last).any():
        raise ValueError("every row of X needs at least one finite curve value")
    return last


class _Baseline(CurvePredictor):
    """A baseline: predicts from the curve alone, so it scores poorly on arbitrary data."""

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.regressor_tags.poor_score = True
        return tags


class LastValuePredictor(_Baseline):
    """Predicts the final value as the last finite observed value.

    Parameters
    ----------
    n_steps : int or None, default=None
        How many leading columns of ``X`` are the observed curve; None means all of them.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[3.0, 2.0], [4.0, np.nan]])
    >>> LastValuePredictor().fit(X, [1.0, 2.0]).predict(X)
    array([2., 4.])
    """

    _per_curve = True

    def _fit(self, curves: np.ndarray, extra: np.ndarray, y: np.ndarray) -> None:
        self.fitted_ = True

    def _predict(self, curves: np.ndarray, extra: np.ndarray) -> np.ndarray:
        return _filled_last(curves)


class LinearLastValuePredictor(_Baseline):
    """Predicts the final value as ``intercept_ + coef_ * last observed value``.

    Parameters
    ----------
    n_steps : int or None, default=None
        How many leading columns of ``X`` are the observed curve; None means all of them.

    Attributes
    ----------
    coef_ : float
        Slope of the least-squares fit across training trials.
    intercept_ : float
        Its intercept.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[3.0, 2.0], [5.0, 4.0], [7.0, 6.0]])
    >>> LinearLastValuePredictor().fit(X, [1.0, 2.0, 3.0]).predict([[0.0, 8.0]])
    array([4.])
    """

    def _fit(self, curves: np.ndarray, extra: np.ndarray, y: np.ndarray) -> None:
        last = _filled_last(curves)
        spread = last - last.mean()
        denominator = float(spread @ spread)
        self.coef_ = float(spread @ (y - y.mean()) / denominator) if denominator > 0 else 0.0
        self.intercept_ = float(y.mean() - self.coef_ * last.mean())

    def _predict(self, curves: np.ndarray, extra: np.ndarray) -> np.ndarray:
        return self.intercept_ + self.coef_ * _filled_last(curves)


class PowerLawPredictor(_Baseline):
    """Extrapolates each curve's power law ``y(s) = a + b s^(-c)`` to the last step.

    Positions are 1-based (``s = step index + 1``) and the target is ``s = horizon``. For each
    exponent ``c`` on a fixed geometric grid, ``a`` and ``b`` come from a closed-form least-squares
    fit over the finite observed points, all curves at once; each curve keeps the ``c`` with the
    smallest squared error. A curve with fewer than three finite points predicts its last value,
    and every prediction is clipped to the observed range widened by that range on each side, so
    a wild fit cannot produce an absurd value.

    Parameters
    ----------
    horizon : int, default=100
        The number of steps of a full curve; the prediction is for position ``horizon``.
    n_steps : int or None, default=None
        How many leading columns of ``X`` are the observed curve; None means all of them.

    Examples
    --------
    >>> import numpy as np
    >>> s = np.arange(1, 11)
    >>> X = (1.0 + 2.0 * s ** -0.5)[None, :]
    >>> round(float(PowerLawPredictor(horizon=100).fit(X, [1.2]).predict(X)[0]), 3)
    1.2
    """

    _EXPONENTS = np.geomspace(0.02, 4.0, 80)
    _FINE_POINTS = 9  # each pass shrinks the bracket to 2/8 of its width ...
    _FINE_PASSES = 5  # ... to 1e-3 of two grid cells after five passes (45 exponents a curve)
    _per_curve = True

    def __init__(self, *, horizon: int = 100, n_steps: int | None = None) -> None:
        super().__init__(n_steps=n_steps)
        self.horizon = horizon

    def _fit(self, curves: np.ndarray, extra: np.ndarray, y: np.ndarray) -> None:
        if int(self.horizon) < curves.shape[1]:
            raise ValueError(
                f"horizon must be at least the observed length {curves.shape[1]}, "
                f"got {self.horizon!r}"
            )
        self.fitted_ = True

    def _predict(self, curves: np.ndarray, extra: np.ndarray) -> np.ndarray:
        last = _filled_last(curves)
        mask = np.isfinite(curves)
        y = np.where(mask, curves, 0.0)
        m = mask.astype(np.float64)
        s = np.arange(1, curves.shape[1] + 1, dtype=np.float64)
        grid = self._EXPONENTS
        # Coarse: every exponent on the grid for every curve, as matrix products.
        _, _, sse = _power_law_grid(y, m, s, grid)
        k = np.argmin(sse, axis=1)
        # Fine: narrow the bracket between the grid neighbours of the best exponent in a few
        # passes of _FINE_POINTS exponents each, every curve at once: five array calls where
        # a golden-section search of the same cost makes twenty (for the one curve of a
        # running trial, the calls are the cost).
        lo = grid[np.maximum(k - 1, 0)]
        hi = grid[np.minimum(k + 1, len(grid) - 1)]
        t = np.linspace(0.0, 1.0, self._FINE_POINTS)[None, :]
        rows = np.arange(len(lo))
        for _ in range(self._FINE_PASSES):
            c = lo[:, None] + (hi - lo)[:, None] * t  # (rows, points)
            _, _, sse = _power_law_fit(y, m, s, c)
            j = np.argmin(sse, axis=1)
            lo = c[rows, np.maximum(j - 1, 0)]
            hi = c[rows, np.minimum(j + 1, self._FINE_POINTS - 1)]
        c = ((lo + hi) / 2.0)[:, None]
        a, b, sse = _power_law_fit(y, m, s, c)
        pred = a[:, 0] + b[:, 0] * float(self.horizon) ** -c[:, 0]
        usable = (m.sum(axis=1) >= 3) & np.isfinite(sse[:, 0]) & np.isfinite(pred)
        pred = np.where(usable, pred, last)
        with np.errstate(invalid="ignore"):
            low = np.nanmin(np.where(mask, curves, np.nan), axis=1)
            high = np.nanmax(np.where(mask, curves, np.nan), axis=1)
        span = high - low
        return np.clip(pred, low - span, high + span)


def _power_law_grid(
    y: np.ndarray, m: np.ndarray, s: np.ndarray, grid: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_power_law_fit` for exponents shared by every row: (rows, len(grid)) arrays."""
    u = s[None, :] ** -grid[:, None]  # (grid, steps)
    n = m.sum(axis=1)[:, None]
    su = m @ u.T
    suu = m @ (u * u).T
    sy = y.sum(axis=1)[:, None]
    suy = y @ u.T
    syy = (y * y).sum(axis=1)[:, None]
    return _solve(n, su, suu, sy, suy, syy)


def _solve(
    n: np.ndarray,
    su: np.ndarray,
    suu: np.ndarray,
    sy: np.ndarray,
    suy: np.ndarray,
    syy: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    det = n * suu - su * su
    with np.errstate(divide="ignore", invalid="ignore"):
        b = (n * suy - su * sy) / det
        a = (sy - b * su) / n
        sse = syy - a * sy - b * suy
    ok = np.isfinite(sse) & (det > 1e-12 * np.maximum(n * n, 1.0))
    return a, b, np.where(ok, sse, np.inf)


def _power_law_fit(
    y: np.ndarray, m: np.ndarray, s: np.ndarray, c: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares ``a, b`` of ``y = a + b s^-c`` and its squared error, per row and exponent.

    ``y`` (rows, steps) is zero where ``m`` (the mask of finite points) is zero; ``c`` has shape
    (rows, k). Returns three (rows, k) arrays; the error is inf where the fit is degenerate.
    """
    u = s[None, None, :] ** -c[:, :, None]  # (rows, k, steps)
    mu = u * m[:, None, :]
    n = m.sum(axis=1)[:, None]
    su = mu.sum(axis=2)
    suu = (mu * u).sum(axis=2)
    sy = y.sum(axis=1)[:, None]
    suy = (mu * y[:, None, :]).sum(axis=2)
    syy = (y * y).sum(axis=1)[:, None]
    return _solve(n, su, suu, sy, suy, syy)
