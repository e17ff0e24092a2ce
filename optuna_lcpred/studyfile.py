"""Study files: one TOML file says what a study optimises, with what, and where it is stored.

Layout (every table but ``[study]`` and ``[objective]`` is optional)::

    [study]
    name = "mlpf-demo"            # required
    direction = "minimize"        # or "maximize"
    n_trials = 20                 # trials the study should hold (COMPLETE, PRUNED or running)
    timeout = 3600                # seconds; a worker takes no new trial after it
    storage = "postgresql://..."  # default: an embedded file next to where you run

    [objective]
    target = "mlpf_objective:MLPFObjective"   # module:attribute; called with options, it
    [objective.options]                        # returns the callable that takes a trial
    epochs = 20

    [sampler]
    name = "tpe"                  # tpe (multivariate, constant liar), random, gp, cmaes, qmc
    seed = 0                      # worker i uses seed + i
    [sampler.options]             # the sampler's keyword arguments (checked: names, types)
    n_startup_trials = 5

    [pruner]
    name = "lcpred"               # any name `optuna-lcpred bench --pruners` knows
    steps = 20                    # steps each trial reports (0 .. 19), for "10%"; default:
                                  # the objective's n_steps (MLPFObjective: its epochs)
    [pruner.options]
    min_prob = 0.06
    confirm_prob = 0.25           # the look one step earlier must agree (1: decide on one)
    prior = ["old-campaign.csv", "sqlite:///old.db:mlpf-v1"]   # warm start (optional)
    fallback = "sha"              # decides until the model is ready (optional; default: none;
                                  # with options, cheaper with many workers:
                                  # { name = "sha", reduction_factor = 2, min_resource = 2 })
    n_warmup_steps = "10%"        # a step-valued option may be a percentage of `steps`

    [dashboard]                   # notes on pruned trials, a calibration figure (optional)
    every = 10                    # publish the figure every 10 finished trials
    notes = true

    [rdb]                         # PostgreSQL / MySQL only
    heartbeat_interval = 60       # seconds; 0 switches heartbeats off
    grace_period = 180            # a trial silent this long is failed ...
    max_retry = 1                 # ... and retried this many times
    pool_size = 2
    pool_recycle = 3600

Unknown keys and wrong types are errors that name the key and the file. ``--set key.path=value``
on the command line overrides any entry before validation (the value is read as TOML, or as
text when it is not valid TOML).
"""

from __future__ import annotations

import copy
import importlib
import sys
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

from optuna_lcpred._sampler_names import SAMPLER_NAMES


if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib


__all__ = ["StudyConfig", "StudyFileError", "apply_overrides", "load_study_file"]


class StudyFileError(ValueError):
    """A study file that cannot be read, or holds an unknown key or a value of the wrong type."""


@dataclass(frozen=True)
class RDBOptions:
    """Settings for a PostgreSQL or MySQL storage."""

    heartbeat_interval: int = 60
    grace_period: int | None = None
    max_retry: int = 1
    pool_size: int = 2
    max_overflow: int = 2
    pool_recycle: int = 3600


@dataclass(frozen=True)
class StudyConfig:
    """A validated study file.

    Attributes:
        source: Where it was read from (for messages).
        name: Study name.
        direction: ``"minimize"`` or ``"maximize"``.
        n_trials: Trials the study should hold, or None for no limit (then ``timeout`` is set).
        timeout: Seconds after which a worker starts no new trial, or None.
        storage: Storage URL from the file, or None for the embedded default.
        objective: Import path ``module:attribute`` of the objective factory.
        objective_options: Keyword arguments for the factory.
        sampler: Sampler name; ``sampler_seed`` and ``sampler_options`` configure it.
        pruner: Pruner name; ``pruner_options`` configure it.
        pruner_steps: Steps each trial reports, for step-valued options given as percentages
            (None: the objective's ``n_steps``, see :meth:`make_pruner`).
        rdb: Settings used when the storage is an RDB URL.
        dashboard: ``{"every": N, "notes": bool}`` when the file has a ``[dashboard]`` table.
    """

    source: str
    name: str
    objective: str
    direction: str = "minimize"
    n_trials: int | None = None
    timeout: float | None = None
    storage: str | None = None
    objective_options: dict[str, Any] = field(default_factory=dict)
    sampler: str = "tpe"
    sampler_seed: int | None = None
    sampler_options: dict[str, Any] = field(default_factory=dict)
    pruner: str = "lcpred"
    pruner_options: dict[str, Any] = field(default_factory=dict)
    pruner_steps: int | None = None
    rdb: RDBOptions = field(default_factory=RDBOptions)
    dashboard: dict[str, Any] | None = None

    def make_dashboard_callback(self) -> Any:
        """The :class:`~optuna_lcpred.dashboard.DashboardCallback` asked for, or None."""
        if self.dashboard is None:
            return None
        from optuna_lcpred.dashboard import DashboardCallback

        try:
            return DashboardCallback(**self.dashboard)
        except (ImportError, ValueError) as exc:
            raise StudyFileError(f"{self.source}: dashboard: {exc}") from None

    def objective_factory(self) -> Callable[..., Any]:
        """Import the objective factory (``objective.target``) without calling it, so that a
        wrong target is reported before a study is created for it."""
        module_name, _, attribute = self.objective.partition(":")
        try:
            target: Any = importlib.import_module(module_name)
            for part in attribute.split("."):
                target = getattr(target, part)
        except (ImportError, AttributeError) as exc:
            raise StudyFileError(
                f"{self.source}: objective.target {self.objective!r} cannot be imported ({exc})"
            ) from None
        if not callable(target):
            raise StudyFileError(
                f"{self.source}: objective.target {self.objective!r} is a "
                f"{type(target).__name__}, expected a class or function that makes the objective"
            )
        return target  # type: ignore[no-any-return]

    def make_objective(self) -> Callable[..., float]:
        """Import the objective factory and call it with the options."""
        target = self.objective_factory()
        try:
            objective = target(**self.objective_options)
        except (TypeError, ValueError) as exc:  # an unknown option, or a bad value
            raise StudyFileError(f"{self.source}: objective.options: {exc}") from None
        if not callable(objective):
            raise StudyFileError(
                f"{self.source}: objective.target {self.objective!r} returned "
                f"{type(objective).__name__}, expected a callable taking a trial"
            )
        return objective  # type: ignore[no-any-return]

    def make_sampler(self, worker_index: int = 0) -> Any:
        """A fresh sampler; worker ``i`` gets ``seed + i`` so workers do not propose alike.

        ``tpe`` has Optuna 5's defaults on Optuna 4 too (multivariate, and the constant liar
        that keeps parallel workers from proposing alike) unless the options set them.
        """
        from optuna_lcpred._sampler_names import make_named_sampler

        options = dict(self.sampler_options)
        if self.sampler_seed is not None:
            options["seed"] = self.sampler_seed + worker_index
        try:
            return make_named_sampler(self.sampler, options)
        except ValueError as exc:
            raise StudyFileError(f"{self.source}: sampler.options: {exc}") from None

    def make_pruner(self, objective: Any = None) -> Any:
        """A fresh pruner from the bench registry (``lcpred``, ``median``, ``hyperband``...).

        Step-valued options given as percentages are taken of ``[pruner] steps`` or, without
        it, of the ``n_steps`` attribute of ``objective`` (the steps each trial reports, as
        ``MLPFObjective`` and ``ReplayObjective`` have), so a study file that sets the epochs
        once (and a ``--set`` that changes them) needs no ``steps``.

        Raises:
            StudyFileError: A bad pruner option, or ``[pruner] steps`` that differs from the
                objective's ``n_steps``.
        """
        from optuna_lcpred.bench.pruners import PrunerSpecError
        from optuna_lcpred.bench.pruners import make_pruner_from_options

        options = dict(self.pruner_options)
        if "prior" in options:
            options["prior"] = self._beside_file(options["prior"])
        try:
            return make_pruner_from_options(self.pruner, options, n_steps=self._steps(objective))
        except PrunerSpecError as exc:
            raise StudyFileError(f"{self.source}: pruner: {exc}") from None

    @property
    def pruner_needs_steps(self) -> bool:
        """Whether a pruner option is a percentage and ``[pruner] steps`` is not given (then
        :meth:`make_pruner` needs the objective's ``n_steps``)."""
        from optuna_lcpred.bench.pruners import has_step_percentages

        return self.pruner_steps is None and has_step_percentages(self.pruner_options)

    def _steps(self, objective: Any) -> int | None:
        reported = getattr(objective, "n_steps", None) if objective is not None else None
        if isinstance(reported, bool) or not isinstance(reported, int) or reported < 1:
            return self.pruner_steps
        if self.pruner_steps is not None and self.pruner_steps != reported:
            raise StudyFileError(
                f"{self.source}: pruner.steps = {self.pruner_steps}, but the objective reports "
                f"{reported} steps per trial (its n_steps); drop pruner.steps or make them agree"
            )
        return reported

    def _beside_file(self, value: Any) -> Any:
        """A relative path (or a list of them) that exists next to the study file, as seen
        from here; storage URLs, bundled table names and anything else pass unchanged."""
        if isinstance(value, list):
            return [self._beside_file(v) for v in value]
        if isinstance(value, str) and ":" not in value:
            candidate = Path(self.source).parent / value
            if not Path(value).is_absolute() and candidate.exists():
                return str(candidate)
        return value


_SCHEMA: dict[str, dict[str, tuple[type, ...]]] = {
    "study": {
        "name": (str,),
        "direction": (str,),
        "n_trials": (int,),
        "timeout": (int, float),
        "storage": (str,),
    },
    "objective": {"target": (str,), "options": (dict,)},
    "sampler": {"name": (str,), "seed": (int,), "options": (dict,)},
    "pruner": {"name": (str,), "steps": (int,), "options": (dict,)},
    "dashboard": {"every": (int,), "notes": (bool,)},
    "rdb": {
        "heartbeat_interval": (int,),
        "grace_period": (int,),
        "max_retry": (int,),
        "pool_size": (int,),
        "max_overflow": (int,),
        "pool_recycle": (int,),
    },
}


def load_study_file(path: str | Path, overrides: Sequence[str] = ()) -> StudyConfig:
    """Read, override (``key.path=value`` strings) and validate a study file.

    Raises:
        StudyFileError: the file is missing or not TOML, or a key or value is wrong; the
            message names the file and the key.
    """
    source = str(path)
    try:
        with open(path, "rb") as handle:
            raw = tomllib.load(handle)
    except FileNotFoundError:
        raise StudyFileError(f"{source}: no such study file") from None
    except tomllib.TOMLDecodeError as exc:
        raise StudyFileError(f"{source}: not valid TOML ({exc})") from None
    return parse_study(apply_overrides(raw, overrides, source=source), source=source)


def apply_overrides(
    raw: Mapping[str, Any], overrides: Sequence[str], *, source: str = "study file"
) -> dict[str, Any]:
    """A copy of ``raw`` with each ``a.b.c=value`` set (tables created as needed)."""
    out = copy.deepcopy(dict(raw))
    for item in overrides:
        key, eq, text = item.partition("=")
        key = key.strip()
        if not eq or not key or any(not part for part in key.split(".")):
            raise StudyFileError(f"--set {item!r}: expected key.path=value")
        value = _parse_value(text.strip())
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise StudyFileError(f"{source}: --set {key}: {part!r} is not a table")
            node = child
        node[parts[-1]] = value
    return out


def parse_study(raw: Mapping[str, Any], *, source: str = "study file") -> StudyConfig:
    """Validate the tables of a study file (already parsed from TOML)."""
    unknown = sorted(set(raw) - set(_SCHEMA))
    if unknown:
        raise StudyFileError(
            f"{source}: unknown table {unknown[0]!r}; expected {', '.join(_SCHEMA)}"
        )
    tables: dict[str, dict[str, Any]] = {}
    for table, keys in _SCHEMA.items():
        entries = raw.get(table, {})
        if not isinstance(entries, dict):
            raise StudyFileError(f"{source}: {table} must be a table, got {entries!r}")
        for key, value in entries.items():
            if key not in keys:
                raise StudyFileError(
                    f"{source}: unknown key {table}.{key}; expected one of {', '.join(keys)}"
                )
            wanted = keys[key]
            if (isinstance(value, bool) and bool not in wanted) or not isinstance(value, wanted):
                names = " or ".join(t.__name__ for t in wanted)
                raise StudyFileError(f"{source}: {table}.{key} must be {names}, got {value!r}")
        tables[table] = entries
    study, objective = tables["study"], tables["objective"]
    for prefix, required in (("study", "name"), ("objective", "target")):
        if required not in tables[prefix]:
            raise StudyFileError(f"{source}: {prefix}.{required} is required")
    if ":" not in objective["target"]:
        raise StudyFileError(
            f"{source}: objective.target must look like module:attribute, "
            f"got {objective['target']!r}"
        )
    direction = study.get("direction", "minimize")
    if direction not in ("minimize", "maximize"):
        raise StudyFileError(
            f"{source}: study.direction must be 'minimize' or 'maximize', got {direction!r}"
        )
    n_trials = study.get("n_trials")
    timeout = study.get("timeout")
    if n_trials is not None and n_trials < 1:
        raise StudyFileError(f"{source}: study.n_trials must be >= 1, got {n_trials!r}")
    if timeout is not None and timeout <= 0:
        raise StudyFileError(f"{source}: study.timeout must be > 0 seconds, got {timeout!r}")
    if n_trials is None and timeout is None:
        raise StudyFileError(f"{source}: give study.n_trials, study.timeout or both")
    sampler = tables["sampler"].get("name", "tpe")
    if sampler not in SAMPLER_NAMES:
        raise StudyFileError(
            f"{source}: sampler.name must be one of {', '.join(SAMPLER_NAMES)}, got {sampler!r}"
        )
    steps = tables["pruner"].get("steps")
    if steps is not None and steps < 1:
        raise StudyFileError(f"{source}: pruner.steps must be >= 1, got {steps!r}")
    rdb_values = tables["rdb"]
    for key, value in rdb_values.items():
        if value < 0 or (key in ("pool_size", "grace_period") and value == 0):
            raise StudyFileError(f"{source}: rdb.{key} must be positive, got {value!r}")
    return StudyConfig(
        source=source,
        name=study["name"],
        objective=objective["target"],
        direction=direction,
        n_trials=n_trials,
        timeout=float(timeout) if timeout is not None else None,
        storage=study.get("storage") or None,
        objective_options=dict(objective.get("options", {})),
        sampler=sampler,
        sampler_seed=tables["sampler"].get("seed"),
        sampler_options=dict(tables["sampler"].get("options", {})),
        pruner=tables["pruner"].get("name", "lcpred"),
        pruner_options=dict(tables["pruner"].get("options", {})),
        pruner_steps=steps,
        rdb=RDBOptions(**rdb_values),
        dashboard=dict(tables["dashboard"]) if "dashboard" in raw else None,
    )


def _parse_value(text: str) -> Any:
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text
