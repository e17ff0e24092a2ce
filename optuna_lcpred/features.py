"""Feature matrices for learning-curve predictors (pure NumPy, no Optuna).

A predictor's input ``X`` is the observed part of each curve, ``n_steps`` columns for report
steps ``0 .. n_steps-1`` (NaN where a value is missing), optionally followed by encoded
hyperparameters (:func:`encode_hyperparameters`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np


__all__ = [
    "RobustScale",
    "curve_summary",
    "encode_hyperparameters",
    "forward_fill",
    "last_finite",
    "observed_prefix",
]


def last_finite(curves: np.ndarray) -> np.ndarray:
    """The last finite value of each row (NaN for a row with none).

    Example:
        >>> last_finite(np.array([[3.0, 2.0, np.nan], [np.nan, np.nan, np.nan]]))
        array([ 2., nan])
    """
    curves = np.asarray(curves, dtype=np.float64)
    if curves.ndim != 2:
        raise ValueError(f"curves must be 2-D (trials, steps), got shape {curves.shape}")
    finite = np.isfinite(curves)
    if curves.shape[1] == 0:
        return np.full(curves.shape[0], np.nan)
    last = curves.shape[1] - 1 - np.argmax(finite[:, ::-1], axis=1)
    out: np.ndarray = curves[np.arange(curves.shape[0]), last]
    out[~finite.any(axis=1)] = np.nan
    return out


def observed_prefix(curves: np.ndarray, n_steps: int) -> np.ndarray:
    """The first ``n_steps`` columns of ``curves`` (a copy), checked for shape.

    Example:
        >>> observed_prefix(np.arange(6.0).reshape(2, 3), 2)
        array([[0., 1.],
               [3., 4.]])
    """
    curves = np.asarray(curves, dtype=np.float64)
    if curves.ndim != 2:
        raise ValueError(f"curves must be 2-D (trials, steps), got shape {curves.shape}")
    if not 1 <= n_steps <= curves.shape[1]:
        raise ValueError(f"n_steps must be in [1, {curves.shape[1]}], got {n_steps}")
    return curves[:, :n_steps].copy()


def encode_hyperparameters(params: Mapping[str, np.ndarray]) -> np.ndarray:
    """Hyperparameters as a numeric matrix, one row per trial.

    Numeric columns pass through, on a log10 scale when all values are positive and span at
    least two decades; missing values take the column mean. Text columns become one-hot
    blocks (a missing value is all zeros). Column order follows ``params``.

    Example:
        >>> encode_hyperparameters({"lr": np.array([1e-4, 1e-2]), "act": np.array(["a", "b"],
        ...     dtype=object)})
        array([[-4.,  1.,  0.],
               [-2.,  0.,  1.]])
    """
    blocks: list[np.ndarray] = []
    n_rows: int | None = None
    for key, values in params.items():
        values = np.asarray(values)
        if n_rows is None:
            n_rows = values.shape[0]
        elif values.shape[0] != n_rows:
            raise ValueError(f"parameter {key!r} has {values.shape[0]} rows, expected {n_rows}")
        if values.dtype == object:
            choices = sorted({v for v in values.tolist() if v is not None}, key=str)
            block = np.array([[v == c for c in choices] for v in values.tolist()], dtype=float)
            blocks.append(block.reshape(values.shape[0], len(choices)))
            continue
        column = values.astype(np.float64)
        finite = np.isfinite(column)
        if finite.any():
            low, high = column[finite].min(), column[finite].max()
            if low > 0 and high / low >= 100.0:
                column = np.where(finite, np.log10(np.where(finite, column, 1.0)), np.nan)
            column = np.where(finite, column, column[finite].mean())
        else:
            column = np.zeros_like(column)
        blocks.append(column[:, None])
    if not blocks:
        return np.zeros((0 if n_rows is None else n_rows, 0))
    return np.hstack(blocks)


def forward_fill(curves: np.ndarray) -> np.ndarray:
    """Each NaN replaced by the last finite value before it in its row; a leading NaN by the
    first finite value after it (rows with no finite value stay NaN).

    Example:
        >>> forward_fill(np.array([[np.nan, 2.0, np.nan, 1.0]]))
        array([[2., 2., 2., 1.]])
    """
    curves = np.array(curves, dtype=np.float64, copy=True)
    if curves.ndim != 2:
        raise ValueError(f"curves must be 2-D (trials, steps), got shape {curves.shape}")
    finite = np.isfinite(curves)
    index = np.where(finite, np.arange(curves.shape[1])[None, :], 0)
    np.maximum.accumulate(index, axis=1, out=index)
    filled = np.take_along_axis(curves, index, axis=1)
    first = np.argmax(finite, axis=1)
    lead = np.take_along_axis(curves, first[:, None], axis=1)
    filled = np.where(np.isfinite(filled), filled, lead)
    return filled


def curve_summary(curves: np.ndarray, n_points: int) -> np.ndarray:
    """Fixed-length features of partial curves of any length.

    The curve (missing values forward-filled) resampled at ``min(n_points, length)`` evenly
    spaced steps, the last step always included, padded to ``n_points`` by repeating the first
    point; then the last first difference and the last second difference (0 when too short).
    Shape ``(n_trials, n_points + 2)``.

    Example:
        >>> curve_summary(np.array([[4.0, 3.0, 2.5, 2.25]]), 3)
        array([[ 4.  ,  2.5 ,  2.25, -0.25,  0.25]])
    """
    if n_points < 1:
        raise ValueError(f"n_points must be >= 1, got {n_points}")
    filled = forward_fill(curves)
    length = filled.shape[1]
    index = np.unique(np.round(np.linspace(0, length - 1, min(n_points, length))).astype(int))
    points = filled[:, index]
    if points.shape[1] < n_points:
        pad = np.repeat(points[:, :1], n_points - points.shape[1], axis=1)
        points = np.hstack([pad, points])
    d1 = filled[:, -1] - filled[:, -2] if length >= 2 else np.zeros(len(filled))
    d2 = (
        filled[:, -1] - 2 * filled[:, -2] + filled[:, -3] if length >= 3 else np.zeros(len(filled))
    )
    return np.column_stack([points, d1, d2])


@dataclass(frozen=True)
class RobustScale:
    """``phi(v) = arcsinh((v - center) / scale)``: linear near the bulk of the training targets,
    logarithmic for runs far from it. Residuals and decisions live on this scale, so that a few
    exploded runs do not set the error spread for everyone."""

    center: float
    scale: float

    @classmethod
    def fit(cls, y: np.ndarray) -> RobustScale:
        """Centre on the median of ``y``; scale by its interquartile range.

        The range has a floor of ``1e-12`` of the targets' typical magnitude (the median of
        ``|y|``, or their largest if most are zero), below which differences are rounding: so
        the scale follows the loss's unit, and a loss measured in units a trillion times
        smaller is scaled, and decided on, as the same loss.

        Example:
            >>> RobustScale.fit(np.array([1.0, 2.0, 3.0, 4.0, 5.0]))
            RobustScale(center=3.0, scale=2.0)
            >>> RobustScale.fit(np.array([2e-30, 4e-30, 6e-30])).scale
            2e-30
        """
        y = np.asarray(y, dtype=np.float64)
        center = float(np.median(y))
        q25, q75 = np.percentile(y, [25, 75])
        magnitude = float(np.median(np.abs(y))) or float(np.max(np.abs(y))) or 1.0
        return cls(center, float(max(q75 - q25, 1e-12 * magnitude, np.finfo(np.float64).tiny)))

    def forward(self, values: np.ndarray | float) -> np.ndarray:
        """``phi(values)``."""
        return np.arcsinh((np.asarray(values, dtype=np.float64) - self.center) / self.scale)

    def inverse(self, phi: np.ndarray | float) -> np.ndarray:
        """``phi^-1``."""
        return self.center + self.scale * np.sinh(np.asarray(phi, dtype=np.float64))

    def derivative_of_inverse(self, phi: float) -> float:
        """``d phi^-1 / d phi`` at ``phi``, to carry a spread back to the original units."""
        return float(self.scale * np.cosh(phi))
