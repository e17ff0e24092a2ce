"""TPE with Optuna 5's defaults on every Optuna version that ``pyproject.toml`` admits.

Optuna 5 made the multivariate TPE and the constant liar the defaults; Optuna 4 has both off (and
calls them experimental). Study files and ``bench --sampler tpe`` ask for TPE by name, so without
this the same file would sample differently under Optuna 4, and parallel workers there would
propose alike while their trials run (the constant liar counts running trials as bad results).
"""

from __future__ import annotations

import warnings
from typing import Any

import optuna


__all__ = ["tpe_sampler"]

#: What Optuna 5 does when these options are not given.
_OPTUNA5_DEFAULTS: dict[str, Any] = {"multivariate": True, "constant_liar": True}


def tpe_sampler(**options: Any) -> optuna.samplers.TPESampler:
    """``TPESampler(**options)``, with ``multivariate`` and ``constant_liar`` on unless given.

    Example:
        >>> sampler = tpe_sampler(seed=0, n_startup_trials=5)
        >>> isinstance(sampler, optuna.samplers.TPESampler)
        True
    """
    filled = {**_OPTUNA5_DEFAULTS, **options}
    with warnings.catch_warnings():
        # Optuna 4 calls both experimental; the user did not ask for the ones filled in here.
        for name in set(_OPTUNA5_DEFAULTS) - set(options):
            warnings.filterwarnings("ignore", f".*`{name}`", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(**filled)
