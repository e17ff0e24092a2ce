"""LCPredictionPruner: prune a trial when its predicted final value is unlikely to win."""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any

import numpy as np
import optuna
from scipy.stats import t as student_t

from optuna_lcpred import _trials
from optuna_lcpred._search_space import ParamEncoder
from optuna_lcpred.features import forward_fill
from optuna_lcpred.predictors.base import CurvePredictor
from optuna_lcpred.predictors.baselines import LastValuePredictor
from optuna_lcpred.predictors.baselines import LinearLastValuePredictor
from optuna_lcpred.predictors.baselines import PowerLawPredictor
from optuna_lcpred.predictors.selection import SelectedPredictor
from optuna_lcpred.predictors.selection import select_predictor
from optuna_lcpred.predictors.svr import SVRPredictor


if TYPE_CHECKING:
    from optuna.trial import FrozenTrial


__all__ = ["PREDICTORS", "LCPredictionPruner"]

_logger = logging.getLogger("optuna.lcpred.pruner")

#: Named predictors; "auto" lets them compete at every decision step.
PREDICTORS: tuple[str, ...] = ("last", "linear", "powerlaw", "svr")

#: User-attribute keys written on each decision (floats).
ATTR_PRED_FINAL = "lcpred:pred_final"
ATTR_PRED_STD = "lcpred:pred_std"
ATTR_PROB_IMPROVE = "lcpred:prob_improve"
ATTR_STEP = "lcpred:step"
ATTR_THRESHOLD = "lcpred:threshold"
ATTR_N_TRAIN = "lcpred:n_train"

_MIN_TRAIN_TRIALS = 3


def _make_candidate(name: str, n_observed: int, horizon: int) -> CurvePredictor:
    if name == "last":
        return LastValuePredictor(n_steps=n_observed)
    if name == "linear":
        return LinearLastValuePredictor(n_steps=n_observed)
    if name == "powerlaw":
        return PowerLawPredictor(n_steps=n_observed, horizon=max(horizon, n_observed))
    if name == "svr":
        return SVRPredictor(n_steps=n_observed)
    raise ValueError(f"unknown predictor {name!r}; expected one of {', '.join(PREDICTORS)}")


@dataclass
class _StepModel:
    version: int
    n_rows: int
    selected: SelectedPredictor


@dataclass(frozen=True)
class _Decision:
    prune: bool
    attrs: dict[str, float]


class _CompletedMatrix:
    """COMPLETE trials as aligned arrays: curves on the union of their steps (forward-filled),
    finals, encoded hyperparameters and config groups. New trials are appended; everything is
    rebuilt only when a new step or a new parameter appears (or the study changes)."""

    def __init__(self) -> None:
        self.version = -1
        self.encoder = ParamEncoder()
        self.grid = np.zeros(0, dtype=np.int64)
        self.curves = np.zeros((0, 0))
        self.first_bad = np.zeros(0, dtype=np.int64)
        self.finals = np.zeros(0)
        self.hyper = np.zeros((0, 0))
        self.groups = np.zeros(0, dtype=np.int64)
        self.last_steps = np.zeros(0, dtype=np.int64)
        self.numbers: list[int] = []
        self._source: _trials.CompletedCurves | None = None
        self._n_rows = 0
        self._group_ids: dict[bytes, int] = {}

    def update(self, data: _trials.CompletedCurves) -> bool:
        """Bring the arrays up to date; True if the feature layout (the step grid or the
        encoded hyperparameters) changed, which makes every fitted step model stale."""
        if data is self._source and data.version == self.version:
            return False
        start = self._n_rows if data is self._source else 0
        if start == 0:
            self.encoder = ParamEncoder()
        widened = self.encoder.update([t.distributions for t in data.trials[start:]])
        known = set(self.grid.tolist()) if start else set()
        new_steps = {s for curve in data.curves[start:] for s in curve} - known
        rebuild = start == 0 or widened or bool(new_steps)
        if rebuild:
            start = 0
            self._group_ids = {}
            self.grid = np.asarray(sorted(known | new_steps), dtype=np.int64)
        self._source, self.version, self._n_rows = data, data.version, len(data.trials)
        curves, first_bad, hyper, groups, last_steps = self._rows(data, start)
        if rebuild:
            self.curves, self.first_bad, self.hyper = curves, first_bad, hyper
            self.groups, self.last_steps = groups, last_steps
        else:
            self.curves = np.vstack([self.curves, curves])
            self.first_bad = np.concatenate([self.first_bad, first_bad])
            self.hyper = np.vstack([self.hyper, hyper])
            self.groups = np.concatenate([self.groups, groups])
            self.last_steps = np.concatenate([self.last_steps, last_steps])
        self.finals = np.asarray(data.values, dtype=np.float64)
        self.numbers = list(data.numbers)
        return rebuild

    def _rows(
        self, data: _trials.CompletedCurves, start: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        column = {int(s): j for j, s in enumerate(self.grid)}
        new_curves = data.curves[start:]
        raw = np.full((len(new_curves), len(self.grid)), np.nan)
        for i, curve in enumerate(new_curves):
            for s, v in curve.items():
                raw[i, column[s]] = v
        # A row trains a step's model only if its values up to that step are finite: an infinite
        # value or the NaN tail of a diverged (or shorter) run blocks it from there on.
        bad = np.isinf(raw) | _trailing_nan(raw)
        first_bad = np.where(bad.any(axis=1), bad.argmax(axis=1), len(self.grid))
        filled = forward_fill(raw) if len(self.grid) else raw
        hyper = np.array([self.encoder.encode(t.params) for t in data.trials[start:]])
        hyper = hyper.reshape(len(new_curves), self.encoder.width)
        groups = np.array(
            [self._group_ids.setdefault(row.tobytes(), len(self._group_ids)) for row in hyper],
            dtype=np.int64,
        )
        last_steps = np.array([max(c) if c else -1 for c in new_curves], dtype=np.int64)
        return filled, first_bad, hyper, groups, last_steps


def _trailing_nan(raw: np.ndarray) -> np.ndarray:
    """NaN cells after a row's last finite value (a NaN between finite values is only a step
    the trial did not report, and is forward-filled)."""
    finite = np.isfinite(raw)
    last = raw.shape[1] - 1 - finite[:, ::-1].argmax(axis=1)
    last_finite = np.where(finite.any(axis=1), last, -1)
    columns = np.arange(raw.shape[1])[None, :]
    return np.asarray(np.isnan(raw) & (columns > last_finite[:, None]))


class LCPredictionPruner(optuna.pruners.BasePruner):
    """Prune a trial when its predicted final value is unlikely to beat the best so far.

    At each decision step the pruner predicts the trial's final value from its partial learning
    curve and its hyperparameters, with a model trained on the study's COMPLETE trials, and
    prunes when the probability that the final value beats the threshold (the best COMPLETE
    value, or a quantile of them) falls below ``min_prob`` (Baker et al. 2017, "Accelerating
    neural architecture search using performance prediction").

    The model for a step is chosen by grouped cross-validation among the last observed value, a
    linear map of it, a power-law extrapolation and an RBF ``NuSVR`` (``predictor="auto"``), or
    fixed to one of them. Its spread comes from the out-of-fold residuals of the finished trials
    that could have won (final at most the median), on a robust ``arcsinh`` scale; the
    probability uses a Student t with as many degrees of freedom as those residuals allow, so a
    model fitted on few trials decides cautiously. A step's model is refitted only when new
    COMPLETE trials exist; RUNNING trials are never read.

    Each decision is written on the running trial as float user attributes:
    ``lcpred:pred_final``, ``lcpred:pred_std``, ``lcpred:prob_improve``, ``lcpred:step``,
    ``lcpred:threshold`` and ``lcpred:n_train``.

    A NaN or infinite report prunes the trial at once (it diverged). Audit trials (a
    deterministic ``audit_fraction`` of trial numbers) are never pruned for a prediction: they
    keep the training set honest, since pruning leaves only good trials to learn from.

    .. note::
        Experimental: defaults may change as the benchmark (``optuna-lcpred bench``) improves.

    Example:
        >>> import optuna
        >>> from optuna_lcpred import LCPredictionPruner
        >>> def objective(trial):
        ...     lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        ...     for epoch in range(20):
        ...         loss = abs(lr - 1e-2) + 1.0 / (epoch + 1)
        ...         trial.report(loss, epoch)
        ...         if trial.should_prune():
        ...             raise optuna.TrialPruned()
        ...     return loss
        >>> sampler = optuna.samplers.RandomSampler(seed=0)
        >>> study = optuna.create_study(sampler=sampler, pruner=LCPredictionPruner(4))
        >>> study.optimize(objective, n_trials=30)
        >>> pruned = study.get_trials(states=[optuna.trial.TrialState.PRUNED])
        >>> len(pruned) > 0 and all("lcpred:prob_improve" in t.user_attrs for t in pruned)
        True

    Args:
        n_startup_trials: No pruning until this many trials are COMPLETE (``fallback`` decides
            meanwhile).
        n_warmup_steps: No pruning before this step of a trial (as in ``MedianPruner``).
        interval_steps: Decide at most once per this many steps after the warm-up (as in
            ``MedianPruner``).
        max_resource: The step of the final value; ``"auto"`` takes the largest last step among
            COMPLETE trials. Nothing is pruned at or beyond it.
        min_prob: Prune when P(final beats the threshold) is below this.
        threshold: ``"best"`` (the best COMPLETE value) or a quantile in (0, 1) of the COMPLETE
            values (e.g. 0.25; for a maximised study the quantile counts from the best end).
        predictor: ``"auto"``, one of ``"last"``, ``"linear"``, ``"powerlaw"``, ``"svr"``, or an
            unfitted :class:`~optuna_lcpred.predictors.CurvePredictor`.
        audit_fraction: Fraction of trials, chosen from the trial number, never pruned for a
            prediction.
        fallback: A pruner that decides while the model is not ready (too few usable COMPLETE
            trials); by default nothing is pruned then.
        n_folds: Cross-validation folds for the model choice and the spread.
        refit_every: Refit a step's model once at least this many new COMPLETE trials exist.
        seed: Seeds the cross-validation folds.
        share: Publish each fitted step model in the study's storage and reuse one that another
            worker fitted on the same finished trials (see :mod:`optuna_lcpred.sharing`);
            useful with many workers on an RDB or journal storage.
        share_key: Secret that signs shared models (HMAC-SHA256); default
            ``$OPTUNA_LCPRED_SHARE_KEY``. Without one, records carry a SHA-256 digest.
    """

    def __init__(
        self,
        n_startup_trials: int = 5,
        n_warmup_steps: int = 0,
        interval_steps: int = 1,
        *,
        max_resource: int | str = "auto",
        min_prob: float = 0.05,
        threshold: str | float = "best",
        predictor: str | CurvePredictor = "auto",
        audit_fraction: float = 0.0,
        fallback: optuna.pruners.BasePruner | None = None,
        n_folds: int = 5,
        refit_every: int = 1,
        seed: int = 0,
        share: bool = False,
        share_key: str | None = None,
    ) -> None:
        _check_int("n_startup_trials", n_startup_trials, 0)
        _check_int("n_warmup_steps", n_warmup_steps, 0)
        _check_int("interval_steps", interval_steps, 1)
        _check_int("n_folds", n_folds, 2)
        _check_int("refit_every", refit_every, 1)
        if max_resource != "auto":
            _check_int("max_resource", max_resource, 1, also='or "auto"')
        if not isinstance(min_prob, (int, float)) or not 0.0 <= min_prob < 1.0:
            raise ValueError(f"min_prob must be a number in [0, 1), got {min_prob!r}")
        if threshold != "best" and (
            not isinstance(threshold, (int, float)) or not 0.0 < threshold < 1.0
        ):
            raise ValueError(
                f'threshold must be "best" or a quantile in (0, 1), got {threshold!r}'
            )
        if isinstance(predictor, str):
            if predictor != "auto" and predictor not in PREDICTORS:
                raise ValueError(
                    f"predictor must be 'auto', one of {', '.join(PREDICTORS)}, or a "
                    f"CurvePredictor, got {predictor!r}"
                )
        elif not isinstance(predictor, CurvePredictor):
            raise TypeError(
                f"predictor must be a name or a CurvePredictor, got {type(predictor).__name__}"
            )
        if not isinstance(audit_fraction, (int, float)) or not 0.0 <= audit_fraction <= 1.0:
            raise ValueError(f"audit_fraction must be in [0, 1], got {audit_fraction!r}")
        if fallback is not None and not isinstance(fallback, optuna.pruners.BasePruner):
            raise TypeError(
                f"fallback must be an optuna pruner or None, got {type(fallback).__name__}"
            )
        self._n_startup_trials = n_startup_trials
        self._n_warmup_steps = n_warmup_steps
        self._interval_steps = interval_steps
        self._max_resource = max_resource
        self._min_prob = float(min_prob)
        self._threshold = threshold
        self._predictor = predictor
        self._audit_fraction = float(audit_fraction)
        self._fallback = fallback
        self._n_folds = n_folds
        self._refit_every = refit_every
        self._seed = seed
        self._share = bool(share)
        self._share_key = share_key.encode() if share_key else None
        self._store: Any = None
        self._store_for: tuple[int, int] | None = None
        self.n_shared_loads = 0
        self.n_shared_rejects = 0
        self._cache = _trials.FinishedTrialCache()
        self._matrix = _CompletedMatrix()
        self._models: dict[int, _StepModel] = {}
        self._lock = threading.Lock()  # Optuna's n_jobs > 1 shares one pruner across threads

    def is_audit_trial(self, number: int) -> bool:
        """Whether trial ``number`` is an audit trial (never pruned for a prediction)."""
        if self._audit_fraction <= 0.0:
            return False
        # A fixed multiplicative hash spreads audit trials evenly over trial numbers.
        return ((number * 2654435761) % 2**32) / 2**32 < self._audit_fraction

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        """Decide for ``trial`` at its last reported step (called by ``trial.should_prune``)."""
        sign = _trials.direction_sign(study)
        step = trial.last_step
        if step is None:
            return False
        if not math.isfinite(trial.intermediate_values[step]):
            return True  # diverged
        if self.is_audit_trial(trial.number) or step < self._n_warmup_steps:
            return False
        if not _is_first_in_interval(step, trial, self._n_warmup_steps, self._interval_steps):
            return False
        decision: _Decision | None = None
        with self._lock:
            data = self._cache.refresh(study)
            if len(data.values) >= self._n_startup_trials:
                if self._matrix.update(data):
                    self._models.clear()  # new steps or parameters: every model is stale
                target = self._target_step()
                if target is not None and step >= target:
                    return False  # the final step: nothing left to save
                if target is not None:
                    decision = self._decide(study, trial, step, sign, target)
        if decision is None:
            return self._fallback_prune(study, trial)
        # A decision to prune is written before the trial ends, so the pruned trial shows why;
        # the others go to a background writer and cost the training loop no database commit.
        _trials.set_float_user_attrs(study, trial, decision.attrs, wait=decision.prune)
        return decision.prune

    def _fallback_prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        return self._fallback.prune(study, trial) if self._fallback is not None else False

    def _target_step(self) -> int | None:
        if self._max_resource != "auto":
            return int(self._max_resource)
        return int(self._matrix.last_steps.max()) if self._matrix.last_steps.size else None

    def _decide(
        self, study: optuna.Study, trial: FrozenTrial, step: int, sign: float, target: int
    ) -> _Decision | None:
        m = self._matrix
        k = int(np.searchsorted(m.grid, step, side="right")) - 1
        if k < 0:
            return None
        model = self._model_for(study, k, target)
        if model is None:
            return None
        selected = model.selected
        curve = _trials.current_curve(trial, sign)
        row = np.array([[curve.get(int(s), np.nan) for s in m.grid[: k + 1]]])
        if not np.isfinite(row).any():
            return None
        hyper = self._matrix.encoder.encode(trial.params)[None, :]
        X = np.hstack([forward_fill(row), hyper])
        mu_raw = float(selected.model.predict_arrays(X)[0])
        scale = selected.scale
        mu = float(scale.forward(mu_raw))
        finals = m.finals
        threshold_raw = (
            float(finals.min())
            if self._threshold == "best"
            else float(np.quantile(finals, float(self._threshold)))
        )
        spread = max(selected.spread, 1e-9)
        dof = max(1, selected.residuals.size - 1)
        z = (float(scale.forward(threshold_raw)) - mu) / spread
        prob = float(student_t.cdf(z, dof)) if math.isfinite(z) else float(z > 0)
        attrs = {
            ATTR_PRED_FINAL: sign * mu_raw,
            ATTR_PRED_STD: spread * scale.derivative_of_inverse(mu),
            ATTR_PROB_IMPROVE: prob,
            ATTR_STEP: float(step),
            ATTR_THRESHOLD: sign * threshold_raw,
            ATTR_N_TRAIN: float(model.n_rows),
        }
        return _Decision(prune=prob < self._min_prob, attrs=attrs)

    def _model_for(self, study: optuna.Study, k: int, target: int) -> _StepModel | None:
        m = self._matrix
        cached = self._models.get(k)
        usable = m.first_bad > k
        n_rows = int(usable.sum())
        if cached is not None and (
            cached.version == m.version or n_rows - cached.n_rows < self._refit_every
        ):
            return cached
        if n_rows < _MIN_TRAIN_TRIALS or len(np.unique(m.groups[usable])) < 2:
            return cached
        X = np.hstack([m.curves[usable, : k + 1], m.hyper[usable]])
        y = m.finals[usable]
        target_index = int(np.searchsorted(m.grid, target, side="right"))
        candidates = self._candidates(k + 1, max(target_index, k + 1))
        key = self._training_key(k, target, usable) if self._share else ""
        selected = self._load_shared(study, k, key, X.shape[1]) if self._share else None
        if selected is None:
            selected = select_predictor(
                candidates, X, y, m.groups[usable], n_folds=self._n_folds, seed=self._seed
            )
            if self._share:
                self._publish(study, k, key, selected)
        model = _StepModel(version=m.version, n_rows=n_rows, selected=selected)
        self._models[k] = model
        _logger.debug(
            "Step %d: %s chosen on %d trials (CV errors %s).",
            int(m.grid[k]),
            selected.name,
            n_rows,
            {name: round(err, 4) for name, err in selected.cv_error.items()},
        )
        return model

    def _training_key(self, k: int, target: int, usable: np.ndarray) -> str:
        from optuna.distributions import distribution_to_json

        from optuna_lcpred.sharing import SCHEMA
        from optuna_lcpred.sharing import training_key

        m = self._matrix
        numbers = np.asarray(m.numbers)[usable]
        predictor = self._predictor if isinstance(self._predictor, str) else "custom"
        return training_key(
            [
                SCHEMA,
                predictor,
                self._n_folds,
                self._seed,
                target,
                m.grid[: k + 1],
                [[n, distribution_to_json(d)] for n, d in m.encoder.space.items()],
                np.sort(numbers),
            ]
        )

    def _model_store(self, study: optuna.Study) -> Any:
        ident = _trials.study_identity(study)
        if self._store_for != ident:
            self._store_for, self._store = ident, _trials.model_store(study)
        return self._store

    def _load_shared(
        self, study: optuna.Study, k: int, key: str, n_features: int
    ) -> SelectedPredictor | None:
        from optuna_lcpred.sharing import SharedModelError
        from optuna_lcpred.sharing import decode_selected
        from optuna_lcpred.sharing import share_key_from_env

        store = self._model_store(study)
        if store is None:
            return None
        name = f"step-{int(self._matrix.grid[k])}"
        try:
            record = store.load(name)
            if record is None:
                return None
            selected = decode_selected(
                record[0],
                record[1],
                key=key,
                n_features=n_features,
                share_key=self._share_key or share_key_from_env(),
            )
        except SharedModelError as exc:
            if "other trials" not in str(exc):
                self.n_shared_rejects += 1
                _logger.warning("Shared model %s refused (%s); fitting locally.", name, exc)
            return None
        self.n_shared_loads += 1
        return selected

    def _publish(self, study: optuna.Study, k: int, key: str, selected: SelectedPredictor) -> None:
        from optuna_lcpred.sharing import SharedModelError
        from optuna_lcpred.sharing import encode_selected
        from optuna_lcpred.sharing import share_key_from_env
        from optuna_lcpred.sharing import sign

        store = self._model_store(study)
        if store is None:
            return
        try:
            payload = encode_selected(selected, key=key)
        except SharedModelError as exc:
            _logger.debug("Step model not shared: %s", exc)
            return
        store.save(
            f"step-{int(self._matrix.grid[k])}",
            payload,
            sign(payload, self._share_key or share_key_from_env()),
        )

    def _candidates(self, n_observed: int, horizon: int) -> dict[str, CurvePredictor]:
        if isinstance(self._predictor, CurvePredictor):
            from sklearn.base import clone

            return {"custom": clone(self._predictor).set_params(n_steps=n_observed)}
        names = PREDICTORS if self._predictor == "auto" else (self._predictor,)
        if self._predictor == "auto" and n_observed < 3:
            names = tuple(n for n in names if n != "powerlaw")  # it needs three points
        return {n: _make_candidate(n, n_observed, horizon) for n in names}


def _is_first_in_interval(
    step: int, trial: FrozenTrial, n_warmup_steps: int, interval_steps: int
) -> bool:
    """True if ``step`` is the first reported step of its interval after the warm-up."""
    interval_start = (step - n_warmup_steps) // interval_steps * interval_steps + n_warmup_steps
    previous = max((s for s in trial.intermediate_values if s < step), default=-1)
    return previous < interval_start


def _check_int(name: str, value: Any, minimum: int, also: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        extra = f" {also}" if also else ""
        raise ValueError(f"{name} must be an integer >= {minimum}{extra}, got {value!r}")
