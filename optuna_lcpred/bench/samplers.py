"""Sampler specs for ``bench --sampler``: ``name[+predicted][:option=value,...]`` to a sampler.

Names: ``random``, ``tpe``, ``gp``, ``cmaes``, ``qmc`` (as in study files), and ``tpe``, ``gp``,
``cmaes`` with ``+predicted``, which wraps the sampler in
:class:`~optuna_lcpred.PredictedFinalSampler`. Options are the sampler's own keyword arguments,
read as for pruner specs (int, float, ``true``/``false``, ``none`` or text):
``tpe:n_startup_trials=5,multivariate=false`` or ``gp+predicted:n_startup_trials=20``. The
benchmark seeds every replay's sampler with the replay's seed, so ``seed`` is not an option.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from typing import Any

import optuna

from optuna_lcpred._sampler_names import SAMPLER_NAMES
from optuna_lcpred._sampler_names import make_named_sampler
from optuna_lcpred.bench._spec_text import parse_scalar
from optuna_lcpred.bench._spec_text import split_spec


__all__ = ["SAMPLERS", "SamplerSpec", "make_bench_sampler", "parse_sampler_spec"]

_PREDICTED = "+predicted"

#: Samplers that ignore finished trials, which ``+predicted`` could not change.
_WITHOUT_HISTORY = frozenset({"random", "qmc"})

#: Every name ``bench --sampler`` takes (options aside).
SAMPLERS: tuple[str, ...] = tuple(
    variant
    for name in SAMPLER_NAMES
    for variant in ((name,) if name in _WITHOUT_HISTORY else (name, name + _PREDICTED))
)


@dataclass(frozen=True)
class SamplerSpec:
    """A parsed, checked sampler spec.

    Attributes:
        text: The spec as given (reports and JSON name the sampler by it).
        name: The sampler's name, one of ``SAMPLER_NAMES`` in ``optuna_lcpred._sampler_names``.
        predicted: Wrap the sampler in ``PredictedFinalSampler``.
        options: The sampler's keyword options, typed.

    Example:
        >>> spec = parse_sampler_spec("tpe+predicted:n_startup_trials=5")
        >>> spec.name, spec.predicted, spec.options
        ('tpe', True, {'n_startup_trials': 5})
    """

    text: str
    name: str
    predicted: bool = False
    options: dict[str, Any] = field(default_factory=dict)


def parse_sampler_spec(text: str) -> SamplerSpec:
    """Parse and check one ``name[+predicted][:key=value,...]`` spec.

    Raises:
        ValueError: An unknown name, ``+predicted`` on a sampler that ignores finished trials,
            ``seed``, an option the sampler does not take or a value of the wrong type; the
            message names the spec.
    """
    text = text.strip()
    full_name, raw = split_spec(text, "sampler", ValueError)
    name, plus, extra = full_name.partition("+")
    if full_name not in SAMPLERS:
        hint = (
            f" ({name} ignores finished trials, so {_PREDICTED} would change nothing)"
            if name in _WITHOUT_HISTORY and plus + extra == _PREDICTED
            else ""
        )
        raise ValueError(
            f"unknown sampler {full_name!r} in spec {text!r}{hint}; expected one of "
            f"{', '.join(SAMPLERS)}"
        )
    if "seed" in raw:
        raise ValueError(
            f"sampler spec {text!r}: bench seeds each replay's sampler with the replay's seed "
            "(--seeds, --first-seed); leave out seed"
        )
    options = {key: parse_scalar(value) for key, value in raw.items()}
    spec = SamplerSpec(text=text, name=name, predicted=bool(plus), options=options)
    try:
        make_bench_sampler(spec, 0)  # a bad option fails here, before any replay
    except ValueError as error:
        raise ValueError(f"sampler spec {text!r}: {error}") from None
    return spec


def make_bench_sampler(spec: SamplerSpec | str, seed: int) -> optuna.samplers.BaseSampler:
    """A fresh sampler for a spec, seeded with the replay's seed.

    Example:
        >>> type(make_bench_sampler("gp+predicted", seed=0)).__name__
        'PredictedFinalSampler'
    """
    from optuna_lcpred.sampler import PredictedFinalSampler

    if isinstance(spec, str):
        spec = parse_sampler_spec(spec)
    base = make_named_sampler(spec.name, {**spec.options, "seed": seed})
    return PredictedFinalSampler(base) if spec.predicted else base
