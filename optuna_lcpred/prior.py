"""Learning curves from earlier campaigns, as training rows for a new study (warm start).

A prior is one or more curve tables (CSV files or :class:`~optuna_lcpred.curves.CurveTable`)
and/or earlier Optuna studies (``optuna.Study`` objects, or ``"STORAGE_URL:STUDY_NAME"`` such as
``"sqlite:///old.db:mlpf-v1"`` or ``"journal:./old.log:mlpf-v1"``). From a study, its COMPLETE
trials train the models, with their objective values as finals, as losses (a maximised study is
negated, as in ``export-curves``); its PRUNED trials, like a table's runs without a final value,
train nothing but are counted: the pruner's bar of a good prior run is the top decile of all the
prior's runs, those ranked last.

Curves are kept by *fraction of training*: a prior run of ``T_p`` steps has its step ``j`` at
fraction ``(j + 1) / T_p``. For a study whose final step is ``target`` (steps counted from 0),
study step ``s`` is fraction ``(s + 1) / (target + 1)``, and the prior's value there is
interpolated linearly between its neighbouring steps, so a prior of 100 epochs serves a study of
50. Its final value is the table's ``value`` where it has one (a study's trials, and CSV files
from ``export-curves``, carry their objective values), else its last value. A run that stopped
itself before the last step (an objective with its own early stopping) has a value and so trains
the models of the steps it reached, as the study's own finished trials do.

Hyperparameters are used where they match: a study parameter with the same name in every
prior table, numeric in both or categorical in both. Others are left out of the features while
the prior is in use (see :class:`~optuna_lcpred.pruner.LCPredictionPruner`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution

from optuna_lcpred.curves import CurveTable
from optuna_lcpred.curves import read_curve_table
from optuna_lcpred.curves import resolve_table_path


if TYPE_CHECKING:
    import optuna


__all__ = ["PriorCurves", "PriorError", "load_prior"]

PriorSpec = Any  # str | Path | CurveTable | optuna.Study, or a sequence of these


class PriorError(ValueError):
    """A prior that cannot be read or cannot be used at all."""


@dataclass(frozen=True)
class _Block:
    """One prior table: curves on its own steps 0 .. T-1."""

    name: str
    curves: np.ndarray  # (rows, T)
    finals: np.ndarray  # (rows,)
    ends: np.ndarray  # (rows,) the column where each run ended (CurveTable.end_indices)
    params: dict[str, np.ndarray]
    groups: np.ndarray  # (rows,) configuration groups, unique over all blocks


class PriorCurves:
    """Usable prior runs (a finite final and at least two finite curve values), by table.

    Args:
        tables: The prior tables.

    Raises:
        PriorError: No table has a usable run.
    """

    def __init__(self, tables: Sequence[CurveTable]) -> None:
        blocks: list[_Block] = []
        offset = 0
        problems: list[str] = []
        #: Prior runs without a finite final (stopped early, diverged, failed): a campaign
        #: exported from a pruned study holds mostly these, and its few finals are survivors'.
        self.n_without_final = 0
        for table in tables:
            finals = table.final_values
            self.n_without_final += int(np.count_nonzero(~np.isfinite(finals)))
            usable = np.isfinite(finals) & (np.isfinite(table.curves).sum(axis=1) >= 2)
            if not usable.any():
                problems.append(f"{table.name!r} has no run with a finite final value")
                continue
            groups = table.config_groups()[usable]
            _, groups = np.unique(groups, return_inverse=True)
            blocks.append(
                _Block(
                    name=table.name,
                    curves=np.asarray(table.curves[usable], dtype=np.float64),
                    finals=np.asarray(finals[usable], dtype=np.float64),
                    ends=table.end_indices[usable],
                    params={k: np.asarray(v)[usable] for k, v in table.params.items()},
                    groups=groups + offset,
                )
            )
            offset += int(groups.max()) + 1
        if not blocks:
            detail = "; ".join(problems) or "it holds no table"
            raise PriorError(f"the prior cannot be used: {detail}")
        self._blocks = blocks
        self.finals = np.concatenate([b.finals for b in blocks])
        self.groups = np.concatenate([b.groups for b in blocks])
        digest = hashlib.sha256()
        for block in blocks:
            digest.update(block.name.encode())
            digest.update(np.ascontiguousarray(block.curves).tobytes())
            digest.update(np.ascontiguousarray(block.finals).tobytes())
        self.digest = digest.hexdigest()[:16]

    @property
    def n_rows(self) -> int:
        """Usable prior runs."""
        return len(self.finals)

    @property
    def names(self) -> list[str]:
        """The prior tables' names."""
        return [b.name for b in self._blocks]

    @property
    def n_steps(self) -> int:
        """Steps of the longest prior table (the study's default length before its own
        trials finish)."""
        return int(max(b.curves.shape[1] for b in self._blocks))

    def curves_at(self, steps: np.ndarray, target: int) -> np.ndarray:
        """Each prior run at study ``steps`` when the study's final step is ``target``:
        ``(n_rows, len(steps))``, interpolated by fraction of training (NaN gaps filled from
        the neighbouring finite values), NaN past the run's last report (a run that stopped
        itself trains the steps it reached, as the study's own finished trials do)."""
        fractions = (np.asarray(steps, dtype=np.float64) + 1.0) / (float(target) + 1.0)
        out = []
        for block in self._blocks:
            length = block.curves.shape[1]
            position = np.clip(fractions * length - 1.0, 0.0, length - 1.0)
            low = np.floor(position).astype(int)
            high = np.minimum(low + 1, length - 1)
            weight = position - low
            filled = _fill_gaps(block.curves)
            values = filled[:, low] * (1.0 - weight) + filled[:, high] * weight
            past_end = position[None, :] > block.ends[:, None]
            out.append(np.where(past_end, np.nan, values))
        return np.vstack(out)

    def matching_params(self, space: Mapping[str, BaseDistribution]) -> list[str]:
        """Study parameters present, with a compatible kind, in every prior table."""
        matched = []
        for name, distribution in space.items():
            categorical = isinstance(distribution, CategoricalDistribution)
            if all(
                name in block.params and (block.params[name].dtype == object) == categorical
                for block in self._blocks
            ):
                matched.append(name)
        return matched

    def params_rows(self, names: Sequence[str]) -> list[dict[str, Any]]:
        """Each prior run's values of ``names`` (None where missing)."""
        rows: list[dict[str, Any]] = []
        for block in self._blocks:
            n = len(block.finals)
            for i in range(n):
                rows.append({k: _plain(block.params[k][i]) for k in names if k in block.params})
        return rows


def _fill_gaps(curves: np.ndarray) -> np.ndarray:
    from optuna_lcpred.features import forward_fill

    return forward_fill(curves)


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and value != value:  # NaN: missing
        return None
    return value


def load_prior(spec: PriorSpec) -> PriorCurves:
    """Read a prior: curve tables, studies, or a sequence of them (see the module docstring).

    Raises:
        PriorError: A source cannot be read, or nothing in the prior is usable.
    """
    if isinstance(spec, PriorCurves):
        return spec
    items = list(spec) if isinstance(spec, (list, tuple)) else [spec]
    if not items:
        raise PriorError("the prior is empty: give a curve table, a study, or a list of them")
    return PriorCurves([_load_one(item) for item in items])


def _load_one(item: Any) -> CurveTable:
    import optuna

    if isinstance(item, CurveTable):
        return item
    if isinstance(item, optuna.Study):
        return _from_study(item)
    if not isinstance(item, (str, Path)):
        raise PriorError(
            f"a prior item must be a curve table, a CSV path, 'STORAGE_URL:STUDY_NAME' or an "
            f"optuna.Study, got {type(item).__name__}"
        )
    text = str(item)
    path = Path(text)
    if path.suffix.lower() == ".csv" or path.is_file() or ":" not in text:
        try:
            return read_curve_table(resolve_table_path(text))
        except (OSError, ValueError) as exc:
            raise PriorError(f"prior {text!r}: {exc}") from None
    storage_url, sep, study_name = text.rpartition(":")
    if not sep or not storage_url or not study_name or study_name.startswith("//"):
        raise PriorError(
            f"prior {text!r}: expected a CSV table or STORAGE_URL:STUDY_NAME, e.g. "
            "sqlite:///old.db:mlpf-v1"
        )
    from optuna_lcpred.storage import open_storage
    from optuna_lcpred.storage import redact_url

    try:
        storage = open_storage(storage_url, must_exist=True)
        study = optuna.load_study(study_name=study_name, storage=storage)
    except ValueError as exc:
        raise PriorError(f"prior {redact_url(text)}: {exc}") from None
    except KeyError:
        raise PriorError(f"prior: no study {study_name!r} in {redact_url(storage_url)}") from None
    return _from_study(study)


def _from_study(study: optuna.Study) -> CurveTable:
    from optuna.trial import TrialState

    from optuna_lcpred.curves import study_to_curve_table

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        raise PriorError(f"prior study {study.study_name!r} has no COMPLETE trial")
    try:
        # PRUNED trials too, as export-curves writes them: no run of theirs trains a model
        # (they have no final), but they say how rare the COMPLETE runs' finals were.
        return study_to_curve_table(study, states=[TrialState.COMPLETE, TrialState.PRUNED])
    except ValueError as exc:
        raise PriorError(f"prior: {exc}") from None


class PriorTrainingSet:
    """The prior's runs as extra training rows of a study's step models.

    How many prior rows join a training set is ``round(weight * min(n_rows, size))``, chosen
    evenly in the order of their final values. The weight starts at 1 and is set by
    :meth:`update_weight` from how well models fitted on the prior alone predict the study's
    own finished trials.

    The rule: at a few check steps (10 %, 25 % and 50 % of training) a model is fitted on the
    prior alone and predicts each of the study's n COMPLETE trials from its partial curve; its
    error, divided by the model's own cross-validated spread, is ``e_ik``. With
    ``E_i = mean_k min(25, e_ik^2)`` (an error counts at most as 5 spreads), the weight is
    ``min(1, (n0 + n) / (n0 + sum_i E_i))``, in steps of 0.05: about 1 while the study's trials
    land within the prior's usual error (``E_i`` near 1), falling as they land many spreads
    away; below 0.2 the prior is switched off. ``n0`` (3) keeps one unlucky trial from
    switching it off.

    Args:
        prior: The prior runs.
        size: Prior rows in use at weight 1 (at most).
        n0: Pseudo-trials that agree with the prior.
    """

    CHECK_FRACTIONS = (0.1, 0.25, 0.5)

    def __init__(self, prior: PriorCurves, *, size: int, n0: float = 3.0) -> None:
        self.prior = prior
        self.size = int(size)
        self.n0 = float(n0)
        self.weight = 1.0
        self.n_checked = 0
        self._features: dict[Any, tuple[np.ndarray, np.ndarray]] = {}
        self._checks: dict[Any, Any] = {}
        order = np.argsort(prior.finals, kind="stable")
        self._order = order

    def reset_weight(self) -> None:
        """Full weight, as before any study's trials were checked against the prior."""
        self.weight, self.n_checked = 1.0, 0

    def __getstate__(self) -> dict[str, Any]:
        """Everything but the caches of features and fits (a copy fills its own)."""
        return {**self.__dict__, "_features": {}, "_checks": {}}

    #: Below this weight the prior is switched off (its rows would only add noise).
    MIN_WEIGHT = 0.2

    @property
    def n_used(self) -> int:
        """Prior rows in use at the current weight (none below :attr:`MIN_WEIGHT`)."""
        if self.weight < self.MIN_WEIGHT:
            return 0
        return round(self.weight * min(self.prior.n_rows, self.size))

    def rows(self, n: int | None = None) -> np.ndarray:
        """Indices of the prior rows in use: evenly spaced in the order of their finals."""
        n = self.n_used if n is None else n
        if n <= 0:
            return np.zeros(0, dtype=np.int64)
        picks = np.round(np.linspace(0, self.prior.n_rows - 1, n)).astype(int)
        return np.asarray(self._order[np.unique(picks)], dtype=np.int64)

    def features(
        self, steps: np.ndarray, target: int, encoder: Any, names: Sequence[str]
    ) -> tuple[np.ndarray, np.ndarray]:
        """All prior rows at study ``steps``: ``(curves, hyper)``, hyperparameters encoded with
        the study's ``encoder`` for ``names``."""
        key = (tuple(int(s) for s in steps), int(target), _space_key(encoder, names))
        if key not in self._features:
            if len(self._features) > 256:
                self._features.clear()
            curves = self.prior.curves_at(np.asarray(steps), target)
            columns = encoder.columns(names)
            if len(columns):
                hyper = np.array(
                    [encoder.encode(p)[columns] for p in self.prior.params_rows(names)]
                )
            else:
                hyper = np.zeros((self.prior.n_rows, 0))
            self._features[key] = (curves, hyper.reshape(self.prior.n_rows, len(columns)))
        return self._features[key]

    def update_weight(
        self,
        own_curves: np.ndarray,
        own_hyper: np.ndarray,
        own_finals: np.ndarray,
        own_first_bad: np.ndarray,
        grid: np.ndarray,
        target: int,
        encoder: Any,
        names: Sequence[str],
        fit: Any,
    ) -> float:
        """Set :attr:`weight` from the study's own COMPLETE trials (see the class docstring).

        Args:
            own_curves: ``(n, len(grid))`` own curves on ``grid`` (forward-filled).
            own_hyper: ``(n, len(columns))`` their encoded ``names``.
            own_finals: ``(n,)`` their finals.
            own_first_bad: Index of each row's first unusable step.
            grid: The study's steps.
            target: The study's final step.
            encoder: The study's parameter encoder.
            names: The matched parameter names.
            fit: ``fit(X, y, groups)`` returning a
                :class:`~optuna_lcpred.predictors.selection.SelectedPredictor`.
        """
        n = len(own_finals)
        if n == 0 or len(grid) == 0:
            self.weight, self.n_checked = 1.0, 0
            return self.weight
        checks = sorted(
            {
                int(np.searchsorted(grid, round(f * (target + 1)) - 1, side="right")) - 1
                for f in self.CHECK_FRACTIONS
            }
            - {-1}
        )
        rows = self.rows(min(self.prior.n_rows, self.size))
        squared = np.zeros(n)
        counted = np.zeros(n)
        for k in checks:
            key = (tuple(int(s) for s in grid[: k + 1]), int(target), _space_key(encoder, names))
            if key not in self._checks:
                curves, hyper = self.features(grid[: k + 1], target, encoder, names)
                reached = rows[np.isfinite(curves[rows, k])]  # the runs that reported there
                groups = self.prior.groups[reached]
                X = np.hstack([curves[reached], hyper[reached]])
                enough = len(reached) >= 3 and len(np.unique(groups)) >= 2
                self._checks[key] = fit(X, self.prior.finals[reached], groups) if enough else None
            selected = self._checks[key]
            if selected is None:  # too few prior runs went on to this step to check it
                continue
            usable = own_first_bad > k
            if not usable.any():
                continue
            X_own = np.hstack([own_curves[usable, : k + 1], own_hyper[usable]])
            predicted = selected.model.predict_arrays(X_own)
            scale = selected.scale
            error = (scale.forward(own_finals[usable]) - scale.forward(predicted)) / max(
                selected.spread, 1e-9
            )
            squared[usable] += np.minimum(np.nan_to_num(error**2, nan=25.0), 25.0)
            counted[usable] += 1
        seen = counted > 0
        total = float(np.sum(squared[seen] / counted[seen]))
        self.n_checked = int(seen.sum())
        weight = min(1.0, (self.n0 + self.n_checked) / (self.n0 + total))
        self.weight = round(weight * 20) / 20  # steps of 0.05: models refit on real changes
        return self.weight


def _space_key(encoder: Any, names: Sequence[str]) -> tuple[tuple[str, Any], ...]:
    """The parameters ``names`` with their distributions in ``encoder``: what their encoded
    columns depend on (an encoder only adds parameters, but a study's encoder is replaced when
    it is read afresh, and a new object may reuse a freed one's ``id``)."""
    return tuple((name, encoder.space.get(name)) for name in names)
