"""Hyperparameters as numbers, from each trial's Optuna distributions."""

from __future__ import annotations

import math
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution


__all__ = ["ParamEncoder"]


class ParamEncoder:
    """Encodes parameters on the union of the distributions seen so far.

    Float and int parameters map to [0, 1] over their distribution's range, on a log scale for
    log distributions; categorical ones become one-hot blocks. A parameter a trial lacks encodes
    as 0.5 (numeric) or all zeros (categorical).
    """

    def __init__(self) -> None:
        self.space: dict[str, BaseDistribution] = {}

    @property
    def width(self) -> int:
        """Number of encoded columns."""
        return sum(
            len(d.choices) if isinstance(d, CategoricalDistribution) else 1
            for d in self.space.values()
        )

    def update(self, distributions: Sequence[Mapping[str, BaseDistribution]]) -> bool:
        """Add parameters not seen before; True if the encoding changed."""
        changed = False
        for dists in distributions:
            for name, dist in dists.items():
                if name not in self.space:
                    self.space[name] = dist
                    changed = True
        if changed:
            self.space = dict(sorted(self.space.items()))
        return changed

    def columns(self, names: Sequence[str]) -> np.ndarray:
        """Indices of the encoded columns of parameters ``names`` (in encoding order)."""
        wanted = set(names)
        out: list[int] = []
        start = 0
        for name, dist in self.space.items():
            width = len(dist.choices) if isinstance(dist, CategoricalDistribution) else 1
            if name in wanted:
                out.extend(range(start, start + width))
            start += width
        return np.asarray(out, dtype=np.int64)

    def encode(self, params: Mapping[str, Any]) -> np.ndarray:
        """One row of encoded parameters."""
        out: list[float] = []
        for name, dist in self.space.items():
            value = params.get(name)
            if isinstance(dist, CategoricalDistribution):
                block = [0.0] * len(dist.choices)
                if value is not None and value in dist.choices:
                    block[dist.choices.index(value)] = 1.0
                out.extend(block)
            elif isinstance(dist, (FloatDistribution, IntDistribution)):
                out.append(_unit(float(value), dist) if value is not None else 0.5)
            else:  # pragma: no cover - Optuna has no other distribution kinds
                out.append(0.5)
        return np.asarray(out, dtype=np.float64)


def _unit(value: float, dist: FloatDistribution | IntDistribution) -> float:
    low, high = float(dist.low), float(dist.high)
    if dist.log and low > 0 and value > 0:
        low, high, value = math.log(low), math.log(high), math.log(value)
    return 0.5 if high == low else (value - low) / (high - low)
