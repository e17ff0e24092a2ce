"""Optuna samplers by name with keyword options, as study files and ``bench --sampler`` give them.

One place for the names both accept, so ``[sampler] name = "cmaes"`` in a study file and
``bench --sampler cmaes`` build the same sampler, and an option a sampler does not take is an
error that names it and lists the ones it does take (instead of Python's bare ``TypeError``).
"""

from __future__ import annotations

import importlib.util
import inspect
from collections.abc import Callable
from collections.abc import Mapping
from typing import Any

import optuna

from optuna_lcpred._tpe import tpe_sampler


__all__ = ["SAMPLER_NAMES", "make_named_sampler", "sampler_options"]

#: The names, in the order error messages list them.
SAMPLER_NAMES: tuple[str, ...] = ("tpe", "random", "gp", "cmaes", "qmc")


def _classes() -> dict[str, type[optuna.samplers.BaseSampler]]:
    return {
        "tpe": optuna.samplers.TPESampler,
        "random": optuna.samplers.RandomSampler,
        "gp": optuna.samplers.GPSampler,
        "cmaes": optuna.samplers.CmaEsSampler,
        "qmc": optuna.samplers.QMCSampler,
    }


def sampler_options(name: str) -> list[str]:
    """The keyword options the sampler called ``name`` takes, sorted.

    Raises:
        ValueError: ``name`` is not one of :data:`SAMPLER_NAMES`.

    Example:
        >>> "n_startup_trials" in sampler_options("tpe")
        True
    """
    return sorted(p.name for p in _parameters(name))


def _parameters(name: str) -> list[inspect.Parameter]:
    """The keyword parameters of the sampler class called ``name``."""
    cls = _classes().get(name)
    if cls is None:
        raise ValueError(f"unknown sampler {name!r}; expected one of {', '.join(SAMPLER_NAMES)}")
    return [
        p
        for p in inspect.signature(cls.__init__).parameters.values()
        if p.name != "self"
        and p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]


_SCALARS: dict[str, tuple[type, ...]] = {
    "bool": (bool,),
    "int": (int,),
    "float": (int, float),
    "str": (str,),
    "None": (type(None),),
}


def _scalar_annotations(name: str) -> dict[str, tuple[str, ...]]:
    """Options annotated with scalar types only (``int``, ``bool | None``...), by name.

    Many samplers check their values only when they first sample, which in ``bench`` is in a
    worker process after other work; checking the annotation fails before anything runs. The
    annotations are strings (``from __future__ import annotations`` in Optuna), read as text.
    """
    found: dict[str, tuple[str, ...]] = {}
    for p in _parameters(name):
        annotation = p.annotation
        if not isinstance(annotation, str):
            annotation = getattr(annotation, "__name__", "")
        parts = tuple(part.strip() for part in annotation.split("|"))
        if parts and all(part in _SCALARS for part in parts):
            found[p.name] = parts
    return found


def _matches(value: Any, kinds: tuple[str, ...]) -> bool:
    for kind in kinds:
        if kind in ("int", "float") and isinstance(value, bool):
            continue
        if isinstance(value, _SCALARS[kind]):
            return True
    return False


def make_named_sampler(name: str, options: Mapping[str, Any]) -> optuna.samplers.BaseSampler:
    """A fresh sampler by name. ``tpe`` has Optuna 5's defaults on Optuna 4 too (see
    ``optuna_lcpred._tpe``).

    Raises:
        ValueError: An unknown name, an option the sampler does not take, or a value it rejects;
            the message names them.

    Example:
        >>> sampler = make_named_sampler("tpe", {"seed": 0, "n_startup_trials": 5})
        >>> type(sampler).__name__
        'TPESampler'
    """
    accepted = sampler_options(name)
    if name == "cmaes" and importlib.util.find_spec("cmaes") is None:
        # Optuna would fail only at the first sampled trial, inside a running worker.
        raise ValueError(
            "sampler 'cmaes' needs the cmaes package: pip install \"optuna-lcpred[cmaes]\""
        )
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(
            f"sampler {name!r} does not take option(s) {', '.join(unknown)}; "
            f"it takes {', '.join(accepted)}"
        )
    scalars = _scalar_annotations(name)
    for key, value in options.items():
        kinds = scalars.get(key)
        if kinds is not None and not _matches(value, kinds):
            raise ValueError(
                f"sampler {name!r}: option {key}={value!r} must be {' or '.join(kinds)}"
            )
    factory: Callable[..., optuna.samplers.BaseSampler] = (
        tpe_sampler if name == "tpe" else _classes()[name]
    )
    try:
        return factory(**options)
    except (TypeError, ValueError) as error:
        shown = ", ".join(f"{k}={v!r}" for k, v in options.items())
        raise ValueError(f"sampler {name!r} with {shown}: {error}") from None
