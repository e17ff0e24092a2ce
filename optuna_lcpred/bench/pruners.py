"""Pruner specs for the benchmark: ``name[:option=value,...]`` to an Optuna pruner.

Built-in names: ``nop``, ``median``, ``percentile`` (or ``percentileNN``, e.g. ``percentile25``),
``sha`` (alias ``asha``), ``hyperband``, ``threshold``, ``patient`` (wraps a median pruner).
Options are the pruner's own keyword arguments. Values read as int, float, bool (``true``/
``false``), ``none`` or text; a step-valued option (``n_warmup_steps``, ``interval_steps``,
``min_resource``, ``max_resource``, ``patience``) may be given as a percentage of the table's
steps, e.g. ``n_warmup_steps=10%`` (of the last step number + 1; ``patience``, which counts
reports, of the number of reports). A dotted key fills a mapping option:
``lcpred:predictor=qsvr,qsvr_options.num_reads=10`` passes ``qsvr_options={"num_reads": 10}``.
``lcpred``'s ``fallback`` (the pruner deciding until its model is ready) is a name
(``lcpred:fallback=sha``) or a name with options (``lcpred:fallback.name=median,
fallback.n_startup_trials=2,fallback.n_warmup_steps=10%``; a median or percentile fallback must
wait for fewer finished trials than ``lcpred`` itself, or it never prunes).
Other packages (the prediction pruner) add names with :func:`register_pruner`.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from typing import TYPE_CHECKING
from typing import Any

import optuna

from optuna_lcpred.bench._spec_text import parse_scalar
from optuna_lcpred.bench._spec_text import split_spec
from optuna_lcpred.pruner import LCPredictionPruner


if TYPE_CHECKING:
    from optuna_lcpred.curves import CurveTable


__all__ = [
    "PrunerSpec",
    "PrunerSpecError",
    "available_pruners",
    "has_step_percentages",
    "make_pruner",
    "make_pruner_from_options",
    "make_table_pruner",
    "parse_pruner_list",
    "parse_pruner_spec",
    "register_pruner",
]

PrunerFactory = Callable[..., optuna.pruners.BasePruner]

_STEP_OPTIONS = frozenset(
    {"n_warmup_steps", "interval_steps", "min_resource", "max_resource", "patience"}
)
_REPORT_COUNT_OPTIONS = frozenset({"patience"})  # counts reports, not step numbers
_NAME = re.compile(r"^[a-z][a-z0-9_+\-]*$")
_PERCENTILE_ALIAS = re.compile(r"^percentile(\d+(?:\.\d+)?)$")


class PrunerSpecError(ValueError):
    """A pruner spec that names no known pruner or passes an option it does not take."""


@dataclass(frozen=True)
class PrunerSpec:
    """A parsed pruner spec.

    Attributes:
        text: The spec as written; the key of its results.
        name: The pruner name.
        options: Option values as written (text).
    """

    text: str
    name: str
    options: dict[str, str] = field(default_factory=dict)


_REGISTRY: dict[str, PrunerFactory] = {}


def register_pruner(name: str, factory: PrunerFactory) -> None:
    """Make ``name`` usable in specs; ``factory(**options)`` returns a pruner.

    Args:
        name: Lower-case name, letters, digits, ``_``, ``+`` and ``-``.
        factory: A callable taking the spec's options as keyword arguments.
    """
    if not _NAME.match(name) or name == "oracle":
        raise ValueError(
            f"pruner name must match {_NAME.pattern} and not be 'oracle', got {name!r}"
        )
    _REGISTRY[name] = factory


def available_pruners() -> list[str]:
    """Registered pruner names (``percentileNN`` aliases not listed)."""
    return sorted(_REGISTRY)


def parse_pruner_spec(text: str) -> PrunerSpec:
    """Parse one ``name[:key=value,...]`` spec."""
    text = text.strip()
    name, options = split_spec(text, "pruner", PrunerSpecError)
    return PrunerSpec(text=text, name=name, options=options)


def parse_pruner_list(texts: str | Iterable[str]) -> list[PrunerSpec]:
    """Parse a comma-separated list of specs, e.g. ``"nop,median,percentile:percentile=25,
    n_warmup_steps=5"``: a ``key=value`` item without ``:`` continues the spec before it.

    ``oracle`` may be listed but is dropped: the benchmark always computes it. Duplicates are an
    error.
    """
    if isinstance(texts, str):
        texts = [texts]
    pieces: list[str] = []
    for text in texts:
        for item in text.split(","):
            item = item.strip()
            if not item:
                continue
            if "=" in item and ":" not in item.split("=", 1)[0]:
                if not pieces:
                    raise PrunerSpecError(f"option {item!r} comes before any pruner name")
                joiner = "," if ":" in pieces[-1] else ":"
                pieces[-1] = f"{pieces[-1]}{joiner}{item}"
            else:
                pieces.append(item)
    specs = [parse_pruner_spec(piece) for piece in pieces]
    specs = [s for s in specs if not (s.name == "oracle" and not s.options)]
    seen: set[str] = set()
    for spec in specs:
        if spec.text in seen:
            raise PrunerSpecError(f"pruner spec {spec.text!r} is listed twice")
        seen.add(spec.text)
        _factory_for(spec)  # fail early on unknown names
    return specs


def make_pruner(
    spec: PrunerSpec | str,
    n_steps: int,
    extra: dict[str, Any] | None = None,
    *,
    last_step: int | None = None,
) -> optuna.pruners.BasePruner:
    """A fresh pruner for a spec, on a table with ``n_steps`` report steps.

    ``extra`` options (a prior, say) go to the pruners that take them; the others ignore them.
    A percentage of an option compared with step numbers (``n_warmup_steps=10%``) is taken of
    ``last_step + 1`` (default ``n_steps``: steps 0 .. n_steps - 1), so that a table whose
    steps are sparse (10, 20, ...) gets the same fraction of training; ``patience``, which
    counts reports, is taken of ``n_steps``.

    Raises:
        PrunerSpecError: Unknown name, an option the pruner does not take, or a value it rejects.
    """
    if isinstance(spec, str):
        spec = parse_pruner_spec(spec)
    factory, fixed = _factory_for(spec)
    options: dict[str, Any] = dict(fixed)
    for key, text in spec.options.items():
        *path, leaf = key.split(".")
        node = options
        for part in path:
            child = node.setdefault(part, {})
            if not isinstance(child, dict) or not part:
                raise PrunerSpecError(f"pruner spec {spec.text!r}: {key!r} mixes a value and keys")
            node = child
        span = n_steps if leaf in _REPORT_COUNT_OPTIONS or last_step is None else last_step + 1
        node[leaf] = _parse_value(leaf, text, span, spec)
    where = f"pruner spec {spec.text!r}: "
    accepted = _check_options(factory, options, f"{where}{spec.name!r}")
    for key, value in (extra or {}).items():
        if accepted is None or key in accepted:
            options.setdefault(key, value)
    return _build(factory, options, where)


def make_table_pruner(
    spec: PrunerSpec | str, table: CurveTable, extra: dict[str, Any] | None = None
) -> optuna.pruners.BasePruner:
    """:func:`make_pruner` for replays of ``table`` (its number of reports and last step)."""
    return make_pruner(spec, table.n_steps, extra, last_step=int(table.steps[-1]))


def _factory_for(spec: PrunerSpec) -> tuple[PrunerFactory, dict[str, Any]]:
    if spec.name in _REGISTRY:
        return _REGISTRY[spec.name], {}
    match = _PERCENTILE_ALIAS.match(spec.name)
    if match:
        if "percentile" in spec.options:
            raise PrunerSpecError(
                f"pruner spec {spec.text!r}: the name already fixes percentile={match.group(1)}"
            )
        return _REGISTRY["percentile"], {"percentile": float(match.group(1))}
    raise PrunerSpecError(
        f"unknown pruner {spec.name!r} in spec {spec.text!r}; known: "
        f"{', '.join(available_pruners())}, percentileNN"
    )


def _accepted_options(factory: PrunerFactory) -> set[str] | None:
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    return {
        p.name
        for p in parameters
        if p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    }


def _check_options(
    factory: PrunerFactory, options: Mapping[str, Any], who: str
) -> set[str] | None:
    """The options ``factory`` takes (``None``: any); an error naming ``who`` for any other."""
    accepted = _accepted_options(factory)
    if accepted is not None:
        unknown = sorted(set(options) - accepted)
        if unknown:
            raise PrunerSpecError(
                f"{who} does not take option(s) {', '.join(unknown)}; "
                f"it takes {', '.join(sorted(accepted)) or 'none'}"
            )
    return accepted


def _build(
    factory: PrunerFactory, options: dict[str, Any], where: str
) -> optuna.pruners.BasePruner:
    """``factory(**options)``; a value it rejects is an error prefixed with ``where``."""
    try:
        return factory(**options)
    except (TypeError, ValueError) as error:
        raise PrunerSpecError(f"{where}{error}") from None


def _parse_value(key: str, text: str, n_steps: int, spec: PrunerSpec) -> Any:
    if key in _STEP_OPTIONS and text.endswith("%"):
        return _percent_of(key, text, n_steps, f"pruner spec {spec.text!r}: ")
    return parse_scalar(text)


def _patient(*, patience: int = 3, min_delta: float = 0.0, **median_options: Any) -> Any:
    return optuna.pruners.PatientPruner(
        optuna.pruners.MedianPruner(**median_options), patience=patience, min_delta=min_delta
    )


register_pruner("nop", optuna.pruners.NopPruner)
register_pruner("median", optuna.pruners.MedianPruner)
register_pruner("percentile", optuna.pruners.PercentilePruner)
register_pruner("sha", optuna.pruners.SuccessiveHalvingPruner)
register_pruner("asha", optuna.pruners.SuccessiveHalvingPruner)
register_pruner("hyperband", optuna.pruners.HyperbandPruner)
register_pruner("threshold", optuna.pruners.ThresholdPruner)
register_pruner("patient", _patient)


def _lcpred(**options: Any) -> LCPredictionPruner:
    """``LCPredictionPruner`` whose ``fallback`` may also be a registered pruner's name, or a
    mapping of a ``name`` and that pruner's options (what specs and study files can write)."""
    fallback = options.get("fallback")
    if isinstance(fallback, (str, Mapping)):
        fallback_options = {} if isinstance(fallback, str) else dict(fallback)
        name = fallback if isinstance(fallback, str) else fallback_options.pop("name", None)
        if not isinstance(name, str):
            raise ValueError(
                f"fallback {fallback!r} must name a pruner: fallback=NAME, or fallback.name=NAME "
                "with fallback.OPTION=VALUE for its options"
            )
        if name.strip().lower() == "lcpred":
            raise ValueError("fallback cannot be 'lcpred' (it decides while lcpred cannot)")
        try:
            options["fallback"] = make_pruner_from_options(name, fallback_options)
        except PrunerSpecError as error:
            raise ValueError(f"fallback: {error}") from None
    return LCPredictionPruner(**options)


_lcpred.__wrapped__ = LCPredictionPruner  # type: ignore[attr-defined]  # its options, for checks

register_pruner("lcpred", _lcpred)


def make_pruner_from_options(
    name: str, options: dict[str, Any], *, n_steps: int | None = None
) -> optuna.pruners.BasePruner:
    """A pruner by registered ``name`` with typed ``options`` (as a study file gives them).

    A step-valued option written as a percentage (``n_warmup_steps = "10%"``, also inside a
    ``fallback`` mapping) is taken of ``n_steps``, the number of steps each trial reports
    (steps 0 .. n_steps - 1).

    Raises:
        PrunerSpecError: Unknown name, an option the pruner does not take, a value it rejects,
            or a percentage without ``n_steps``.
    """
    spec = PrunerSpec(text=name, name=name.strip().lower(), options={})
    factory, fixed = _factory_for(spec)
    merged = {**fixed, **_resolve_step_percentages(options, n_steps)}
    _check_options(factory, merged, repr(name))
    return _build(factory, merged, f"{name!r}: ")


def has_step_percentages(options: Mapping[str, Any]) -> bool:
    """Whether a step-valued option of ``options`` (or of a nested mapping) is a percentage."""
    return any(
        has_step_percentages(value)
        if isinstance(value, Mapping)
        else key in _STEP_OPTIONS and isinstance(value, str) and value.strip().endswith("%")
        for key, value in options.items()
    )


def _resolve_step_percentages(options: Mapping[str, Any], n_steps: int | None) -> dict[str, Any]:
    """A copy of ``options`` whose step-valued percentages (``"10%"``) are step counts.

    Nested mappings (a ``fallback`` with its options) are resolved too; ``n_steps`` is the
    number of steps each trial reports.

    Raises:
        PrunerSpecError: A percentage that is not a number or not in 0-100 %, or one given
            without ``n_steps``.
    """
    out: dict[str, Any] = {}
    for key, value in options.items():
        if isinstance(value, Mapping):
            out[key] = _resolve_step_percentages(value, n_steps)
        elif key in _STEP_OPTIONS and isinstance(value, str) and value.strip().endswith("%"):
            if n_steps is None:
                raise PrunerSpecError(
                    f"{key} = {value!r} is a fraction of training: give the number of steps "
                    "each trial reports ([pruner] steps = N in a study file, or an objective "
                    "with an n_steps attribute)"
                )
            out[key] = _percent_of(key, value.strip(), n_steps, "")
        else:
            out[key] = value
    return out


def _percent_of(key: str, text: str, n_steps: int, where: str) -> int:
    try:
        percent = float(text[:-1])
    except ValueError:
        raise PrunerSpecError(f"{where}{key}={text!r} is not a percentage") from None
    if not 0.0 <= percent <= 100.0:
        raise PrunerSpecError(f"{where}{key}={text!r} must be between 0% and 100%")
    return max(0, round(percent / 100.0 * n_steps))
