"""The MLPF hyperparameter search space, and how a study file describes one.

A space maps each hyperparameter to a distribution or a constant. In a study file (TOML)::

    [objective.options.search_space]
    lr = { type = "float", low = 1e-4, high = 3e-2, log = true }
    num_layers = { type = "int", low = 1, high = 3 }
    width = { type = "categorical", choices = [16, 32, 64] }
    dropout = 0.0          # a constant: not searched
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution


__all__ = ["DEFAULT_SEARCH_SPACE", "HYPERPARAMETERS", "parse_search_space", "suggest"]

#: The hyperparameters the MLPF objective reads (the published MLPF HPO tuned these).
HYPERPARAMETERS: tuple[str, ...] = (
    "lr",
    "weight_decay",
    "dropout",
    "width",
    "num_heads",
    "num_layers",
    "batch_size",
)

DEFAULT_SEARCH_SPACE: dict[str, Any] = {
    "lr": {"type": "float", "low": 1e-4, "high": 3e-2, "log": True},
    "weight_decay": {"type": "float", "low": 1e-6, "high": 1e-1, "log": True},
    "dropout": {"type": "float", "low": 0.0, "high": 0.4},
    "width": {"type": "categorical", "choices": [16, 32, 64]},
    "num_heads": {"type": "categorical", "choices": [1, 2, 4]},
    "num_layers": {"type": "int", "low": 1, "high": 3},
    "batch_size": {"type": "categorical", "choices": [16, 32, 64, 128]},
}

Space = dict[str, BaseDistribution | int | float | str | bool]


def parse_search_space(spec: Mapping[str, Any] | None, *, source: str = "search_space") -> Space:
    """Distributions (or constants) from a mapping as a study file writes it.

    Unknown hyperparameters are an error, as are missing ones once the defaults are merged in:
    ``spec`` entries replace the entries of :data:`DEFAULT_SEARCH_SPACE` of the same name.

    Raises:
        ValueError: naming ``source`` and the key, for an unknown name, type or field, or a
            range Optuna rejects.
    """
    merged: dict[str, Any] = dict(DEFAULT_SEARCH_SPACE)
    for name, entry in (spec or {}).items():
        if name not in HYPERPARAMETERS:
            raise ValueError(
                f"{source}: unknown hyperparameter {name!r}; expected one of "
                f"{', '.join(HYPERPARAMETERS)}"
            )
        merged[name] = entry
    return {name: _distribution(entry, f"{source}.{name}") for name, entry in merged.items()}


def suggest(trial: optuna.Trial, space: Space) -> dict[str, Any]:
    """Draw every hyperparameter of ``space`` for ``trial`` (constants are taken as they are)."""
    values: dict[str, Any] = {}
    for name, entry in space.items():
        if isinstance(entry, FloatDistribution):
            values[name] = trial.suggest_float(
                name, entry.low, entry.high, log=entry.log, step=entry.step
            )
        elif isinstance(entry, IntDistribution):
            values[name] = trial.suggest_int(
                name, entry.low, entry.high, log=entry.log, step=entry.step
            )
        elif isinstance(entry, CategoricalDistribution):
            values[name] = trial.suggest_categorical(name, entry.choices)
        else:
            values[name] = entry
    return values


_FIELDS = {
    "float": {"type", "low", "high", "log", "step"},
    "int": {"type", "low", "high", "log", "step"},
    "categorical": {"type", "choices"},
}


def _distribution(entry: Any, key: str) -> BaseDistribution | int | float | str | bool:
    if isinstance(entry, (int, float, str, bool)):
        return entry
    if not isinstance(entry, Mapping):
        raise ValueError(f"{key}: expected a table with 'type' or a constant, got {entry!r}")
    kind = entry.get("type")
    if kind not in _FIELDS:
        raise ValueError(f"{key}.type: expected 'float', 'int' or 'categorical', got {kind!r}")
    unknown = set(entry) - _FIELDS[kind]
    if unknown:
        raise ValueError(
            f"{key}: unknown field(s) {sorted(unknown)} for type {kind!r}; "
            f"expected {sorted(_FIELDS[kind])}"
        )
    try:
        if kind == "categorical":
            return CategoricalDistribution(list(entry["choices"]))
        low, high = entry["low"], entry["high"]
        if kind == "float":
            return FloatDistribution(
                float(low), float(high), log=bool(entry.get("log", False)), step=entry.get("step")
            )
        return IntDistribution(
            int(low), int(high), log=bool(entry.get("log", False)), step=int(entry.get("step", 1))
        )
    except KeyError as exc:
        raise ValueError(f"{key}: missing field {exc.args[0]!r}") from None
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{key}: {exc}") from None
