"""LCPredictionPruner: prune a trial when its predicted final value is unlikely to win."""

from __future__ import annotations

import functools
import json
import logging
import math
import threading
import warnings
from collections import Counter
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any

import numpy as np
import optuna
from scipy.special import stdtr
from scipy.stats import binom
from scipy.stats import mannwhitneyu

from optuna_lcpred import _trials
from optuna_lcpred._background import BackgroundFits
from optuna_lcpred._search_space import ParamEncoder
from optuna_lcpred.features import forward_fill
from optuna_lcpred.predictors.base import CurvePredictor
from optuna_lcpred.predictors.baselines import LastValuePredictor
from optuna_lcpred.predictors.baselines import LinearLastValuePredictor
from optuna_lcpred.predictors.baselines import PowerLawPredictor
from optuna_lcpred.predictors.qsvr import QSVRPredictor
from optuna_lcpred.predictors.selection import SelectedPredictor
from optuna_lcpred.predictors.selection import select_predictor
from optuna_lcpred.predictors.svr import SVRPredictor
from optuna_lcpred.prior import PriorTrainingSet
from optuna_lcpred.prior import load_prior


if TYPE_CHECKING:
    from optuna.trial import FrozenTrial


__all__ = ["PREDICTORS", "LCPredictionPruner"]

_logger = logging.getLogger("optuna.lcpred.pruner")

#: Named predictors. "auto" lets the classical ones compete at every decision step; "qsvr"
#: (annealer-trained, slower) is used only when asked for.
PREDICTORS: tuple[str, ...] = ("last", "linear", "powerlaw", "svr", "qsvr")
_AUTO: tuple[str, ...] = ("last", "linear", "powerlaw", "svr")

#: User-attribute keys written on each decision (floats).
ATTR_PRED_FINAL = "lcpred:pred_final"
ATTR_PRED_STD = "lcpred:pred_std"
ATTR_PROB_IMPROVE = "lcpred:prob_improve"
ATTR_STEP = "lcpred:step"
ATTR_THRESHOLD = "lcpred:threshold"
ATTR_N_TRAIN = "lcpred:n_train"
ATTR_PRIOR_WEIGHT = "lcpred:prior_weight"
#: With a prior, where the threshold came from (a string): :data:`THRESHOLD_FROM_STUDY`, or
#: the prior's runs when they set it (no trial of the study had finished, or the study's own
#: finals had not reached the prior's top decile).
ATTR_THRESHOLD_FROM = "lcpred:threshold_from"
THRESHOLD_FROM_STUDY = "study"
THRESHOLD_FROM_PRIOR_MEDIAN = "prior median run"
THRESHOLD_FROM_PRIOR_TOP = "prior top decile"
ATTR_AUDIT_WOULD_PRUNE = "lcpred:audit_would_prune_at"
#: The step at which the pruner stopped the trial for its prediction (written with the prune).
ATTR_PRUNED_AT = _trials.PRUNED_AT_ATTR
#: 1.0 on an audit trial (written at its first decision), so reports find the audit trials
#: without knowing ``audit_fraction``.
ATTR_AUDIT = "lcpred:audit"
#: Where the annealer-trained model called a trial hopeless: the classical choice's probability,
#: which must be below ``min_prob`` too for the trial to stop.
ATTR_CLASSICAL_PROB = "lcpred:classical_prob_improve"
#: Where the model called a trial hopeless: the probability it gave one step earlier, which must
#: be below ``confirm_prob`` too for the trial to stop.
ATTR_PROB_BEFORE = "lcpred:prob_improve_before"
#: Where the model called a trial hopeless (probability below ``min_prob``) and a rule kept it
#: all the same: the rule (a string, one of :data:`KEEP_RULES`) and the step, for the last time
#: that happened. The dashboard shows them with the trial's other attributes.
ATTR_KEPT_BY = "lcpred:kept_by"
ATTR_KEPT_AT = "lcpred:kept_at"
#: Every rule that kept the trial so far (a string: the rules in :data:`KEEP_RULES` order,
#: joined by ``"; "``), where ``lcpred:kept_by`` holds only the last.
ATTR_KEPT_BY_RULES = "lcpred:kept_by_rules"
#: The rules that can keep a trial the model called hopeless, as written in ``lcpred:kept_by``.
KEPT_CLASSICAL = "classical model"  # predictor="qsvr": the classical choice did not call it so
KEPT_TWO_LOOKS = "two looks"  # the look one step earlier gave it at least confirm_prob
KEPT_TOP = "top of its step"  # among the best keep_top of the finished values at its step
KEPT_FEW_PEERS = "better than every finished trial"  # the few-peers rule of keep_top
KEPT_OUTSIDE = "outside the training runs"  # better than every run the model learned from
KEEP_RULES = (KEPT_CLASSICAL, KEPT_TWO_LOOKS, KEPT_TOP, KEPT_FEW_PEERS, KEPT_OUTSIDE)
#: Study user attribute (a string) recording the advice to add a startup ``fallback``, given
#: once when more trials trained in parallel than the startup needs.
ATTR_STARTUP_HINT = "lcpred:startup_hint"
#: Fractions of training at which a trial's prediction is also kept for good, under
#: ``lcpred:pred_at_<p>pct`` and ``lcpred:std_at_<p>pct`` (calibration plots, the dashboard).
MILESTONES: tuple[int, ...] = (10, 25, 50)

_MIN_TRAIN_TRIALS = 3
_MIN_PEERS = 20  # keep_top needs this many finished trials at a step to rank a trial there
_REFIT_GROWTH = 0.1  # refit a step's model once its training set grew by this fraction
_NEIGHBOURS = 30  # runs behind a local probability (used from 3 x this many cross-validated runs)
_PRIOR_THRESHOLD_QUANTILE = 0.1  # a trial must be able to reach the prior's top decile
_WRITTEN_ONCE_TRIM = 256  # trials remembered in the written-once record before finished ones go
_PRIOR_MATCH_P = 0.05  # ... unless the study's finals are significantly worse than the prior's
_STARTUP_HINT_EXTRA = {"lcpred_hint": "startup"}  # marks the one-time startup warning


def is_startup_hint(record: logging.LogRecord) -> bool:
    """Whether a log record is the pruner's one-time advice to add a startup ``fallback``
    (the benchmark replays, which compare pruners as configured, filter it out)."""
    return getattr(record, "lcpred_hint", None) == _STARTUP_HINT_EXTRA["lcpred_hint"]


def kept_rules(user_attrs: Mapping[str, Any]) -> list[str]:
    """The rules that kept a trial the model called hopeless, from its user attributes
    (``lcpred:kept_by_rules``, or ``lcpred:kept_by`` where a trial has only that); empty if
    none did."""
    rules = user_attrs.get(ATTR_KEPT_BY_RULES)
    if isinstance(rules, str) and rules:
        return rules.split("; ")
    last = user_attrs.get(ATTR_KEPT_BY)
    return [last] if isinstance(last, str) and last else []


def milestone_keys(percent: int) -> tuple[str, str]:
    """The user-attribute keys of the prediction and its spread kept at ``percent`` of training."""
    return f"lcpred:pred_at_{percent}pct", f"lcpred:std_at_{percent}pct"


def is_audit_number(number: int, audit_fraction: float) -> bool:
    """Whether trial ``number`` is an audit trial of a pruner with ``audit_fraction``.

    A fixed multiplicative hash of the trial number spreads audit trials evenly, so every
    worker (and a report read later) agrees on which trials they are.
    """
    if audit_fraction <= 0.0:
        return False
    return ((number * 2654435761) % 2**32) / 2**32 < audit_fraction


def _make_candidate(name: str, n_observed: int, horizon: int) -> CurvePredictor:
    if name == "qsvr":
        raise ValueError("qsvr candidates are built by the pruner (they need its annealer)")
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
    prior_rows: int = 0  # the prior rows in use when it was fitted (its cache identity)
    n_prior: int = 0  # of them, the runs that reached its step and trained it
    anchors: np.ndarray | None = None  # (rows, 2) level and slope of each training row
    # The best (lowest, loss orientation) value any training row had at the step: a trial
    # below it lies outside what the model was fitted on.
    low: float = -math.inf
    # The worst value any training row had at the step, and the largest improvement any of
    # them made from there to its final (on the model's robust scale): a trial above ``high``
    # is predicted to improve by at most ``best_recovery``.
    high: float = math.inf
    best_recovery: float = -math.inf


@dataclass(frozen=True)
class _Decision:
    prune: bool
    attrs: dict[str, float | str]


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
        if raw.shape[1]:
            bad = np.isinf(raw) | _trailing_nan(raw)
            first_bad = np.where(bad.any(axis=1), bad.argmax(axis=1), len(self.grid))
        else:  # no step reported yet (or no finished trial at all)
            first_bad = np.zeros(len(new_curves), dtype=np.int64)
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
    that could have won (final at most the median), on a robust ``arcsinh`` scale fitted to the
    finals (so decisions do not depend on the loss's unit or offset); the probability uses a
    Student t with as many degrees of freedom as those residuals allow, so a model fitted on
    few trials decides cautiously. A trial worse at its step than every run the model was
    fitted on is predicted to improve by at most as much as the training run that improved most
    from that step (far from all of them an RBF SVR would predict their mean final, however bad
    the trial). A step's model is refitted only when new
    COMPLETE trials exist; RUNNING trials are never read.

    With ``predictor="qsvr"`` an SVR trained as QUBOs on a D-Wave sampler
    (:class:`~optuna_lcpred.predictors.qsvr.QSVRPredictor`; simulated annealing by default, a
    QPU with ``annealer="qpu"``) joins the candidates, the classical SVR among them, and decides
    where it cross-validates best (:attr:`selections` counts the choices). These
    fits run in a background thread: while a step's latest annealer fit is missing or was
    trained on fewer runs than have finished since, the classical models (refitted at once,
    in milliseconds) decide, so a worker never waits for an annealer between epochs and never
    decides on a stale model. Where the annealer-trained ensemble decides and its members
    disagree more than the cross-validated spread, their spread is used. It can keep a trial
    that the classical choice would stop, but it stops one only if the classical choice would
    too: on a few finished runs it reverts to their mean, which cost the best run of some
    studies (docs/benchmarks.md, "Inside the pruner").

    Each decision is written on the running trial as float user attributes:
    ``lcpred:pred_final``, ``lcpred:pred_std``, ``lcpred:prob_improve``, ``lcpred:step``,
    ``lcpred:threshold`` and ``lcpred:n_train`` (and ``lcpred:prior_weight`` with a prior,
    with the string ``lcpred:threshold_from``: whether the prior's runs set the threshold).
    The predictions at 10, 25 and 50 % of training are also kept for good as
    ``lcpred:pred_at_<p>pct`` and ``lcpred:std_at_<p>pct``, so finished trials show how well
    they were predicted early (:mod:`optuna_lcpred.dashboard` plots them). A trial stopped for
    its prediction also gets ``lcpred:pruned_at`` (the step), which tells it from one that
    diverged or was stopped by the fallback (:func:`optuna_lcpred.study_report`). One that the
    model called hopeless and a rule kept (two looks, ``keep_top``) gets ``lcpred:kept_by``, the
    rule as text, and ``lcpred:kept_at``, the step (the last time it happened);
    ``lcpred:kept_by_rules`` lists every rule that kept it.

    A NaN or infinite report prunes the trial at once (it diverged). Audit trials (a
    deterministic ``audit_fraction`` of trial numbers) are predicted and annotated like the
    others but never pruned for a prediction: they keep the training set honest, since pruning
    leaves only good trials to learn from, and ``lcpred:audit_would_prune_at`` records the step
    at which one would have been stopped, so the live false-prune rate can be read off them
    (``lcpred:audit``, 1.0, marks them; ``optuna-lcpred report`` counts them).

    The pruner can be pickled and deep-copied, as Optuna's pruners can (Dask's
    ``client.submit(study.optimize, ...)``, joblib's process backends and ``multiprocessing``
    with the spawn start method send it to other processes that way): a copy keeps its
    arguments, its prior and what it wrote on running trials, and rebuilds its models from the
    study's storage at its first decision. One pruner object may also serve several studies
    in turn; it starts afresh on each.

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
        n_warmup_steps: No pruning before this step of a trial (as in ``MedianPruner``). The
            default 1 never stops a trial on its first report when steps count from 0 (as in
            Optuna's examples and the curve tables; a loop that reports from step 1 wants 2):
            on 9 of the 12 public tables the first value carries no rank information about
            the final (Spearman -0.46 to 0.26), and 0 left 1.6 times the regret for 6 % fewer
            epochs (docs/benchmarks.md). With a ``prior`` from the same task, whose many
            curves measure how little the first value says, 0 is the cheaper setting: on
            those tables 15 % fewer epochs at 1.1-1.2 times the regret with one worker (7 %
            at 1.25 times with 8), a better trade than a higher ``min_prob``.
        interval_steps: Decide at most once per this many steps after the warm-up (as in
            ``MedianPruner``).
        max_resource: The step of the final value; ``"auto"`` takes the largest last step among
            COMPLETE trials. Nothing is pruned at or beyond it.
        min_prob: Prune when P(final beats the threshold) is below this. 0.06 was chosen on
            the public tables (seeds 0-9, one worker): from 0.05 to 0.07 the regret stays level
            while the epochs fall (median 0.148 -> 0.136 at 0.06), and from 0.08 on it rises
            (docs/benchmarks.md).
        confirm_prob: A trial is pruned for a prediction only if the prediction one step
            earlier (the previous step the finished trials reported: that step's model on
            the curve up to there) also gave it a probability below this
            (``lcpred:prob_improve_before``): two looks must agree.
            Each step's model is fitted anew on few finished runs, so one look can be
            overconfident, or a trial's last value a noisy outlier; a trial that is hopeless
            stays so from one step to the next. 0.25 kept the epochs and the regret of the
            public tables (one worker, seeds 0-4: 0.132 / 0.052 against 0.131 / 0.056 without)
            and cut the regret where curves are noisy or a schedule jumps (docs/benchmarks.md,
            "Two looks"). ``None`` or 1 (in a study file) decides on one look, as does a
            trial's first step.
        threshold: ``"best"`` (the best COMPLETE value) or a quantile in (0, 1) of the COMPLETE
            values (e.g. 0.25; for a maximised study the quantile counts from the best end).
            With a ``prior``, the final value of the prior's top decile (the ``0.1 / weight``
            quantile of its runs, those it stopped early ranked last) joins them while the
            study's finished trials, pruned ones at their predicted final value, are not
            significantly worse than the prior's runs (one-sided Mann-Whitney test, p >=
            0.05) and not significantly fewer of them reached it than the quantile says (one-
            sided binomial test, p >= 0.05).
        predictor: ``"auto"``, one of ``"last"``, ``"linear"``, ``"powerlaw"``, ``"svr"``,
            ``"qsvr"``, or an unfitted :class:`~optuna_lcpred.predictors.CurvePredictor`.
        audit_fraction: Fraction of trials, chosen from the trial number, never pruned for a
            prediction: an unbiased measure of the false-prune rate. Each trains to the end,
            so it costs about that fraction of the epochs of training every trial fully (0.1
            raised the epochs from 0.138 to 0.232 on the public tables); it does not make the
            decisions cheaper (docs/benchmarks.md, "Where the epochs go").
        fallback: A pruner that decides while the model is not ready (too few usable COMPLETE
            trials); by default nothing is pruned then. Study files and ``bench`` specs name
            it: ``fallback = "sha"``, or ``{ name = "sha", reduction_factor = 2, min_resource =
            2 }``. With 8 workers the latter gave fewer epochs at the same regret as no
            fallback on the public tables (seeds 0-9: 0.144 of the epochs at regret 0.036,
            against 0.169 at 0.036), with one worker the same epochs at a little less regret
            (0.138 at 0.045 against 0.138 at 0.048), and stopped at any fixed budget of epochs
            it had found a model at least as good on average; ``min_resource = 1`` is cheaper
            at more regret (0.114 at 0.059 with 8 workers; docs/benchmarks.md). Set
            ``min_resource``: with ``"auto"`` successive halving waits for a COMPLETE trial to
            size its rungs, too late with many workers. It counts steps, and those tables'
            curves have 51-100: scale it for much longer ones. A
            ``MedianPruner`` or ``PercentilePruner`` prunes only after its own
            ``n_startup_trials`` COMPLETE trials (default 5, as here), so it must be given fewer
            or it never prunes (a warning says so); with 1 or 2 it measured close to the
            default (docs/benchmarks.md). Without a fallback, the pruner logs a hint once (and
            records it in the study's user attribute ``lcpred:startup_hint``) when more trials
            train at once in the startup than ``n_startup_trials``.
        n_folds: Cross-validation folds for the model choice and the spread.
        refit_every: Refit a step's model once at least this many new COMPLETE trials exist.
        seed: Seeds the cross-validation folds.
        share: Publish each fitted step model in the study's storage and reuse one that another
            worker fitted on the same finished trials (see :mod:`optuna_lcpred.sharing`);
            useful with many workers on an RDB or journal storage.
        share_key: Secret that signs shared models (HMAC-SHA256); default
            ``$OPTUNA_LCPRED_SHARE_KEY``. Without one, records carry a SHA-256 digest.
        annealer: The sampler of ``predictor="qsvr"``: ``"sa"`` (simulated annealing),
            ``"tabu"``, ``"exact"`` (tiny problems), ``"qpu"`` (a D-Wave QPU, configured by
            D-Wave's own config file or environment) or a ``dimod.Sampler``.
        annealer_options: Keyword arguments for ``annealer="qpu"`` (see
            :class:`~optuna_lcpred.annealers.QPUSampler`: ``solver``, ``chain_strength``,
            ``annealing_time``, ``timeout``, ``cache_dir``).
        qsvr_options: Keyword arguments of
            :class:`~optuna_lcpred.predictors.qsvr.QSVRPredictor` (``num_reads``,
            ``sampler_params``, ``max_qubits``, ...).
        fit_in_background: Fit step models in a background thread; default: only for the
            annealer-trained SVR, where the classical models refitted at once decide while an
            annealer fit is missing or stale. With classical predictors the last model decides
            meanwhile, one refit behind: on two LCBench tables that lost the best trial in one
            more seed (``docs/benchmarks.md``), so leave it off unless refits are too slow.
        keep_top: A trial whose current value is among the best ``keep_top`` fraction of the
            values that finished trials (COMPLETE or PRUNED) reported at the same step is never
            pruned for a prediction: a model fitted on few survivors is least reliable for the
            trials that look best. Where fewer than 20 finished trials reached the step (and no
            prior is in use), a trial better than every one of them is kept; so is a trial
            better at its step than every run its model was trained on, the prior's included
            (the model would extrapolate, and an RBF SVR reverts to the mean of those runs).
            0 switches all three off.
        prior: Learning curves of earlier campaigns that train the models from the first
            trial on: curve tables (CSV paths or :class:`~optuna_lcpred.curves.CurveTable`),
            studies (``optuna.Study`` or ``"STORAGE_URL:STUDY_NAME"``), or a list of them
            (:mod:`optuna_lcpred.prior`); an earlier study that was pruned itself serves as it
            is (its PRUNED runs train nothing, but count when the ``threshold`` takes the
            prior's top decile). Parameters with the same name and kind are used as
            features, the rest of the search space is left out while the prior is in use;
            steps are matched by fraction of training. The prior's weight falls when the
            study's own COMPLETE trials contradict it, and below 0.2 it is switched off
            (:class:`~optuna_lcpred.prior.PriorTrainingSet`). Until a trial of the study has
            finished, one trial (the anchor) is never stopped on the prior's word, so that a
            prior from another task is found out; with a heartbeat storage (``run`` and
            ``worker`` on PostgreSQL or MySQL) one anchor serves all worker processes,
            otherwise each process keeps its own. A prior that cannot be used at all raises
            :class:`~optuna_lcpred.prior.PriorError`.
        prior_size: At most this many prior runs join each step's training set (at weight 1).
    """

    def __init__(
        self,
        n_startup_trials: int = 5,
        n_warmup_steps: int = 1,
        interval_steps: int = 1,
        *,
        max_resource: int | str = "auto",
        min_prob: float = 0.06,
        confirm_prob: float | None = 0.25,
        threshold: str | float = "best",
        predictor: str | CurvePredictor = "auto",
        audit_fraction: float = 0.0,
        fallback: optuna.pruners.BasePruner | None = None,
        n_folds: int = 5,
        refit_every: int = 1,
        seed: int = 0,
        share: bool = False,
        share_key: str | None = None,
        annealer: Any = "sa",
        annealer_options: Mapping[str, Any] | None = None,
        qsvr_options: Mapping[str, Any] | None = None,
        fit_in_background: bool | None = None,
        keep_top: float = 0.1,
        prior: Any = None,
        prior_size: int = 300,
    ) -> None:
        _check_int("n_startup_trials", n_startup_trials, 0)
        _check_int("n_warmup_steps", n_warmup_steps, 0)
        _check_int("interval_steps", interval_steps, 1)
        _check_int("n_folds", n_folds, 2)
        _check_int("refit_every", refit_every, 1)
        _check_int("prior_size", prior_size, 1)
        _check_int("seed", seed, 0)
        if max_resource != "auto":
            _check_int("max_resource", max_resource, 1, also='or "auto"')
        if not isinstance(min_prob, (int, float)) or not 0.0 <= min_prob < 1.0:
            raise ValueError(f"min_prob must be a number in [0, 1), got {min_prob!r}")
        if confirm_prob is not None and (
            isinstance(confirm_prob, bool)
            or not isinstance(confirm_prob, (int, float))
            or not 0.0 < confirm_prob <= 1.0
        ):
            raise ValueError(
                f"confirm_prob must be a number in (0, 1] or None, got {confirm_prob!r}"
            )
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
        if not isinstance(keep_top, (int, float)) or not 0.0 <= keep_top < 1.0:
            raise ValueError(f"keep_top must be a fraction in [0, 1), got {keep_top!r}")
        if not isinstance(audit_fraction, (int, float)) or not 0.0 <= audit_fraction <= 1.0:
            raise ValueError(f"audit_fraction must be in [0, 1], got {audit_fraction!r}")
        if fallback is not None and not isinstance(fallback, optuna.pruners.BasePruner):
            raise TypeError(
                f"fallback must be an optuna pruner or None, got {type(fallback).__name__}"
            )
        uses_annealer = predictor == "qsvr" or isinstance(predictor, QSVRPredictor)
        self._qsvr_options = _check_qsvr_options(qsvr_options)
        self._sampler = _make_annealer(annealer, annealer_options) if uses_annealer else None
        if fit_in_background is not None and not isinstance(fit_in_background, bool):
            raise TypeError(
                f"fit_in_background must be True, False or None, got {fit_in_background!r}"
            )
        self._n_startup_trials = n_startup_trials
        self._n_warmup_steps = n_warmup_steps
        self._interval_steps = interval_steps
        self._max_resource = max_resource
        self._min_prob = float(min_prob)
        self._confirm_prob = (
            None if confirm_prob is None or confirm_prob >= 1.0 else float(confirm_prob)
        )
        self._threshold = threshold
        self._predictor = predictor
        self._audit_fraction = float(audit_fraction)
        self._keep_top = float(keep_top)
        self._prior: PriorTrainingSet | None = None
        if prior is not None:
            self._prior = PriorTrainingSet(load_prior(prior), size=prior_size)
        # Keys written once per trial (the audit's would-prune step, the milestone predictions),
        # by trial number, in the study ``_records_for`` (its name and id, the same in every
        # process). Remembered here because the trial handed to ``prune`` is Optuna's cached
        # copy, which never shows what the pruner wrote to the storage itself; a copy of the
        # pruner keeps them for that study.
        self._written_once: dict[int, set[str]] = {}
        self._kept_rules: dict[int, set[str]] = {}  # the rules that kept each trial so far
        self._records_for: tuple[str, int] | None = None
        self._trim_at = _WRITTEN_ONCE_TRIM
        self._fallback = fallback
        needed = _trials.completed_trials_needed(fallback)
        if needed is not None and needed >= n_startup_trials:
            # The fallback decides only before this pruner has n_startup_trials COMPLETE trials,
            # and this one would wait for as many: it would never prune anything.
            warnings.warn(
                f"fallback {type(fallback).__name__} waits for n_startup_trials={needed} "
                f"COMPLETE trials, and this pruner decides itself from n_startup_trials="
                f"{n_startup_trials} on, so the fallback cannot prune before this pruner takes "
                "over; give it fewer "
                "(e.g. MedianPruner(n_startup_trials=2)) or use one that needs none "
                "(SuccessiveHalvingPruner)",
                UserWarning,
                stacklevel=2,
            )
        self._n_folds = n_folds
        self._refit_every = refit_every
        self._seed = seed
        self._share = bool(share)
        self._share_key = share_key.encode() if share_key else None
        self.n_shared_loads = 0
        self.n_shared_rejects = 0
        #: How many step fits chose each predictor (the classical stand-ins that decide while
        #: a background fit runs are counted too), e.g. ``{"svr": 12, "qsvr": 3}``.
        self.selections: Counter[str] = Counter()
        self._background = uses_annealer if fit_in_background is None else fit_in_background
        self._start_process_state()

    def _start_process_state(self) -> None:
        """What this process derives from the storage: read trials, fitted models, threads.

        All of it is rebuilt from the study when needed, so a copy of the pruner (``pickle``,
        ``copy.deepcopy``: Dask, joblib's process backends or ``multiprocessing`` with spawn
        send it to another process that way) starts here afresh and refits its models on its
        first decision, as a new pruner with the same arguments would.
        """
        self._cache = _trials.FinishedTrialCache(predicted_key=ATTR_PRED_FINAL)
        self._matrix = _CompletedMatrix()
        self._models: dict[int, _StepModel] = {}
        self._classical: dict[int, _StepModel] = {}  # decide while a background fit runs
        self._layout = 0  # counts feature-layout changes; a fit for an older layout is dropped
        self._fits = BackgroundFits()
        self._lock = threading.Lock()  # Optuna's n_jobs > 1 shares one pruner across threads
        self._study_count = 0  # the cache's count of fresh reads, as ``_meet`` last saw it
        # Each running trial's latest look (step index, model, threshold, probability): the
        # next step's decision to prune reuses it instead of predicting that step again.
        self._last_look: dict[int, tuple[int, _StepModel, float, float]] = {}
        self._anchor: int | None = None  # the trial that finishes, so the prior can be checked
        self._startup_hinted = False
        self._start_reading()

    def _start_reading(self) -> None:
        """Forget what was derived from the trials read before the cache started afresh (the
        models go stale by themselves: the cache hands over new data)."""
        self._prior_version = -1
        self._prior_checked = (-1, 0)
        self._prior_good_final: float | None = None  # joins the threshold (loss orientation)
        self._hyper_cache: tuple[tuple[int, bool], list[str], np.ndarray] | None = None
        self._store: Any = None
        self._store_for: tuple[Any, int] | None = None

    def _meet(self, study: optuna.Study) -> None:
        """Called when the cache started reading ``study`` afresh: on this process's first
        decision, or for another study (a pruner object may serve several in turn). The same
        study met through another storage object (``optuna.load_study`` in two threads) is
        read on where the cache stood, unless it cannot be told from another study."""
        self._study_count = self._cache.n_studies
        self._start_reading()
        if _trials.study_name_and_id(study) == self._records_for:
            return  # the same study: its running trials' records still hold
        self._records_for = _trials.study_name_and_id(study)
        self._written_once.clear()
        self._kept_rules.clear()
        self._last_look.clear()
        self._anchor = None
        self._startup_hinted = False
        if self._prior is not None:
            self._prior.reset_weight()  # another study checks the prior anew

    def __getstate__(self) -> dict[str, Any]:
        """The arguments, the prior and the per-trial records, without what
        :meth:`_start_process_state` rebuilds (threads and locks cannot be copied)."""
        with self._lock:
            state = dict(self.__dict__)
        for name in _process_state_names():
            state.pop(name, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._start_process_state()

    def is_audit_trial(self, number: int) -> bool:
        """Whether trial ``number`` is an audit trial (never pruned for a prediction)."""
        return is_audit_number(number, self._audit_fraction)

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        """Decide for ``trial`` at its last reported step (called by ``trial.should_prune``)."""
        sign = _trials.direction_sign(study)
        step = trial.last_step
        if step is None:
            return False
        if not math.isfinite(trial.intermediate_values[step]):
            return True  # diverged
        if step < self._n_warmup_steps:
            return False
        # An audit trial is predicted like any other, but never stopped for a prediction.
        audit = self.is_audit_trial(trial.number)
        if not _is_first_in_interval(step, trial, self._n_warmup_steps, self._interval_steps):
            return False
        decision: _Decision | None = None
        with self._lock:
            data = self._cache.refresh(study)
            if self._cache.n_studies != self._study_count:
                self._meet(study)
            records = (self._written_once, self._last_look, self._kept_rules)
            if max(len(record) for record in records) > self._trim_at:
                # Finished trials are never decided again: forget what was kept for them,
                # so a long-running worker's records stay the size of its running trials. The
                # next trim waits until a record has doubled, so records of many running
                # trials are not scanned on every decision.
                for record in records:
                    for number in [n for n in record if self._cache.is_finished(n)]:
                        del record[number]
                self._trim_at = max(_WRITTEN_ONCE_TRIM, 2 * max(len(record) for record in records))
            if self._matrix.update(data):
                # New steps or parameters: every model is stale.
                self._models.clear()
                self._classical.clear()
                self._layout += 1
            if self._prior is not None:
                if self._prior_version != data.version:
                    self._prior_version = data.version
                    self._update_prior_weight()
                if self._prior_checked != (data.version, len(data.predicted)):
                    self._prior_checked = (data.version, len(data.predicted))
                    self._update_prior_threshold(data.predicted)
            n_prior = self._prior.n_used if self._prior is not None else 0
            if (
                n_prior
                and not data.values
                and trial.number == self._anchor_number(study, trial.number)
            ):
                # Nothing of this study's own has finished, so nothing can show whether the
                # prior fits it: one trial, the anchor, is never stopped on the prior's word
                # and becomes the first check. (A prior from another task would otherwise
                # stop every trial, and no trial would ever show it wrong.)
                return False
            if len(data.values) + n_prior >= self._n_startup_trials:
                target = self._target_step()
                if target is not None and step >= target:
                    return False  # the final step: nothing left to save
                if target is not None:
                    decision = self._decide(study, trial, step, sign, target)
            else:
                self._hint_startup(study, trial.number, len(data.values) + n_prior)
        if decision is None:
            return False if audit else self._fallback_prune(study, trial)
        attrs = decision.attrs
        prune = decision.prune and not audit
        if prune:
            attrs = {**attrs, ATTR_PRUNED_AT: float(step)}
        if audit:
            with self._lock:  # the record is trimmed under the lock by other threads' decisions
                if self._first_write(trial, ATTR_AUDIT):
                    attrs = {**attrs, ATTR_AUDIT: 1.0}
                if decision.prune and self._first_write(trial, ATTR_AUDIT_WOULD_PRUNE):
                    # Where the pruner would have stopped it: with the trial's final value,
                    # this is the live false-prune rate.
                    attrs = {**attrs, ATTR_AUDIT_WOULD_PRUNE: float(step)}
        # A decision to prune is written before the trial ends, so the pruned trial shows why;
        # the others go to a background writer and cost the training loop no database commit.
        _trials.set_annotations(study, trial, attrs, wait=prune)
        return prune

    def _anchor_number(self, study: optuna.Study, number: int) -> int:
        """The trial kept on the prior's word until one of the study's own has finished.

        Where the storage fails the trials of dead processes (heartbeats), one anchor serves
        every worker process: the lowest-numbered trial not yet finished, which each process
        reads from its own record of finished trials, so they agree without writing anything;
        if its process dies, heartbeats fail it and the next one takes over. Elsewhere a dead
        process's trial may stay RUNNING for good, and an anchor that never finishes would
        leave the prior unchecked, so each process keeps its own first trial (the next one if
        that finished without completing).
        """
        if _trials.dead_trials_are_failed(study):
            return self._cache.first_unfinished
        if self._anchor is None or self._cache.is_finished(self._anchor):
            self._anchor = number
        return self._anchor

    def _first_write(self, trial: FrozenTrial, key: str) -> bool:
        """True the first time ``key`` is to be written on ``trial`` (and remembers it)."""
        written = self._written_once.setdefault(trial.number, set())
        if key in written or key in trial.user_attrs:
            return False
        written.add(key)
        return True

    def _hint_startup(self, study: optuna.Study, number: int, n_ready: int) -> None:
        """Say once if more trials train unpruned in the startup than it needs.

        Trials are numbered as they are created, so about ``number + 1`` have started, and
        those not finished are training (or queued). More of them than ``n_startup_trials``
        means parallel workers train runs to the end that no pruner looks at, which a
        ``fallback`` would rank meanwhile. The hint is logged once per process and recorded in
        the study (:data:`ATTR_STARTUP_HINT`), which also keeps other workers that see the
        record from repeating it.
        """
        if self._fallback is not None or self._startup_hinted:
            return
        unfinished = number + 1 - self._cache.n_finished
        if unfinished <= self._n_startup_trials:
            return
        self._startup_hinted = True
        if ATTR_STARTUP_HINT in study.user_attrs:
            return  # another worker said it
        message = (
            f"At least {unfinished} trials were training and none is pruned until "
            f"n_startup_trials={self._n_startup_trials} are COMPLETE ({n_ready} were). "
            "With this many parallel workers, "
            "fallback=SuccessiveHalvingPruner(reduction_factor=2, min_resource=2) (in a study "
            'file: fallback = { name = "sha", reduction_factor = 2, min_resource = 2 }) stops '
            "the bad ones meanwhile; with 8 and 16 workers it gave fewer epochs at no more regret "
            "on the public benchmark tables, whose curves have 51-100 steps (min_resource "
            "counts steps; docs/benchmarks.md)."
        )
        study.set_user_attr(ATTR_STARTUP_HINT, message)
        _logger.warning(message, extra=_STARTUP_HINT_EXTRA)

    def _fallback_prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        return self._fallback.prune(study, trial) if self._fallback is not None else False

    def _target_step(self) -> int | None:
        if self._max_resource != "auto":
            return int(self._max_resource)
        if self._matrix.last_steps.size:
            return int(self._matrix.last_steps.max())
        if self._prior is not None:  # no trial of its own has finished: the prior's length
            return self._prior.prior.n_steps - 1
        return None

    def _grid(self, target: int) -> np.ndarray:
        """The steps models work on: the finished trials' steps, or every step up to the
        target while only the prior has finished runs."""
        return self._matrix.grid if len(self._matrix.grid) else np.arange(target + 1)

    def _prior_finals(self) -> np.ndarray:
        return self._prior.prior.finals if self._prior is not None else np.zeros(0)

    def _threshold_pool(self) -> np.ndarray:
        """The finals the threshold is taken from (loss orientation).

        The study's own finished trials, joined by the prior runs in use: a prior from the
        same task says what a good run reaches long before the study has found one. Until a
        trial of its own has finished, nothing has checked the prior, so a study with a prior
        must only beat the prior's median run (only clearly hopeless trials stop that early).
        """
        own = self._matrix.finals
        if not len(own):
            return np.array([np.median(self._prior_finals())])
        if self._prior_good_final is None:
            return own
        return np.append(own, self._prior_good_final)

    def _threshold_of(self, finals: np.ndarray) -> float:
        if self._threshold == "best":
            return float(finals.min())
        return float(np.quantile(finals, float(self._threshold)))

    def _threshold_source(self, threshold_raw: float) -> str:
        """Whether the prior's runs set ``threshold_raw`` (see :data:`ATTR_THRESHOLD_FROM`)."""
        own = self._matrix.finals
        if not len(own):
            return THRESHOLD_FROM_PRIOR_MEDIAN
        if self._prior_good_final is not None and threshold_raw != self._threshold_of(own):
            return THRESHOLD_FROM_PRIOR_TOP
        return THRESHOLD_FROM_STUDY

    def _update_prior_threshold(self, predicted: list[float]) -> None:
        """What a good run of the prior reached, if the study's finals look like the prior's.

        The prior's top decile (a weaker quantile as its weight falls) joins the threshold
        while a one-sided Mann-Whitney test does not find the study's finished trials worse
        than the prior's runs (p >= 0.05). The study's side is every finished trial: COMPLETE
        ones at their final value, pruned ones at their predicted final value (the survivors
        alone would look better than the study is). The weight alone cannot guard this: a
        prior from another task may map partial curves to finals well (so it keeps its
        weight) while its finals lie where this study never gets, and a threshold there would
        stop every trial.

        Nor can that test alone: a study whose runs are a little worse than the prior's
        (another dataset version, a harder detector) looks like the prior to it, above all
        when its sampler keeps to good regions, while the prior's top decile lies out of its
        reach; every trial that could become its best is then stopped, and with no new
        COMPLETE trial nothing changes. So the bar is also dropped when too few of the
        study's finished trials reached it: a fraction q of the prior's runs do, and a
        binomial test finds fewer of the study's COMPLETE finals below it than that among
        all its finished trials (p < 0.05; with none below it, from 29 finished trials at
        q = 0.1).

        The top decile is that of all the prior's runs, those without a final (a campaign
        exported from a pruned study holds mostly these) ranked below every finished one: its
        finished runs are its survivors, and their own top decile is about that campaign's
        best run. When the top decile reaches into the runs without a final, there is no
        bar.
        """
        self._prior_good_final = None
        own = np.concatenate([self._matrix.finals, predicted])
        own = own[np.isfinite(own)]
        if self._prior is None or not self._prior.n_used or not len(own):
            return
        prior = self._prior.prior.finals[self._prior.rows()]
        if mannwhitneyu(own, prior, alternative="greater").pvalue < _PRIOR_MATCH_P:
            return
        q = min(0.5, _PRIOR_THRESHOLD_QUANTILE / self._prior.weight)
        # The runs of the prior without a final count as worse than every one with a final
        # (a pruner stopped them), in the proportion of the rows in use.
        share = len(prior) / self._prior.prior.n_rows
        unfinished = round(self._prior.prior.n_without_final * share)
        ranked = np.concatenate([np.sort(prior), np.full(unfinished, np.inf)])
        with np.errstate(invalid="ignore"):
            bar = float(np.quantile(ranked, q))
        if not math.isfinite(bar):
            return  # the top q of the prior's runs includes runs it never finished
        reached = int(np.count_nonzero(self._matrix.finals <= bar))
        if binom.cdf(reached, len(own), q) < _PRIOR_MATCH_P:
            return  # a q of the prior's runs reach the bar; too few of the study's did
        self._prior_good_final = bar

    def _prior_in_use(self) -> bool:
        return self._prior is not None and self._prior.n_used > 0

    def _hyper_names(self) -> list[str]:
        """Parameters used as features: those the prior also has while it is in use."""
        return self._hyper_features()[0]

    def _hyper_features(self) -> tuple[list[str], np.ndarray]:
        """Parameters used as features (those the prior also has while it is in use) and
        their encoded columns; worked out once per feature layout, not per decision."""
        key = (self._layout, self._prior_in_use())
        if self._hyper_cache is None or self._hyper_cache[0] != key:
            space = self._matrix.encoder.space
            names = (
                self._prior.prior.matching_params(space)
                if self._prior is not None and key[1]
                else list(space)
            )
            self._hyper_cache = (key, names, self._matrix.encoder.columns(names))
        return self._hyper_cache[1], self._hyper_cache[2]

    def _update_prior_weight(self) -> None:
        assert self._prior is not None
        m = self._matrix
        target = self._target_step()
        if target is None or not len(m.finals):
            return
        names = self._prior.prior.matching_params(m.encoder.space)
        columns = m.encoder.columns(names)
        target_index = int(np.searchsorted(m.grid, target, side="right"))

        def fit(X: np.ndarray, y: np.ndarray, groups: np.ndarray) -> SelectedPredictor:
            n_observed = X.shape[1] - len(columns)
            candidates = self._classical_candidates(n_observed, max(target_index, n_observed))
            return select_predictor(
                candidates, X, y, groups, n_folds=self._n_folds, seed=self._seed
            )

        before = self._prior.weight
        weight = self._prior.update_weight(
            m.curves, m.hyper[:, columns], m.finals, m.first_bad, m.grid, target,
            m.encoder, names, fit,
        )  # fmt: skip
        if abs(weight - before) >= 0.1:
            _logger.info(
                "Prior weight %.2f after %d finished trials of this study (%d prior runs in use).",
                weight,
                self._prior.n_checked,
                self._prior.n_used,
            )

    def _decide(
        self, study: optuna.Study, trial: FrozenTrial, step: int, sign: float, target: int
    ) -> _Decision | None:
        m = self._matrix
        grid = self._grid(target)
        k = int(np.searchsorted(grid, step, side="right")) - 1
        if k < 0:
            return None
        model = self._model_for(study, k, target)
        if model is None:
            return None
        curve = _trials.current_curve(trial, sign)
        row = np.array([[curve.get(int(s), np.nan) for s in grid[: k + 1]]])
        if not np.isfinite(row).any():
            return None
        _, columns = self._hyper_features()
        hyper = m.encoder.encode(trial.params)[columns][None, :]
        X = np.hstack([forward_fill(row), hyper])
        threshold_raw = self._threshold_of(self._threshold_pool())
        mu_raw, mu, spread, prob = self._probability(model, X, k, threshold_raw)
        previous_look = self._last_look.get(trial.number)
        self._last_look[trial.number] = (k, model, threshold_raw, prob)
        scale = model.selected.scale
        attrs: dict[str, float | str] = {
            ATTR_PRED_FINAL: sign * mu_raw,
            ATTR_PRED_STD: spread * scale.derivative_of_inverse(mu),
            ATTR_PROB_IMPROVE: prob,
            ATTR_STEP: float(step),
            ATTR_THRESHOLD: sign * threshold_raw,
            ATTR_N_TRAIN: float(model.n_rows + model.n_prior),
        }
        if self._prior is not None:
            attrs[ATTR_PRIOR_WEIGHT] = self._prior.weight
            attrs[ATTR_THRESHOLD_FROM] = self._threshold_source(threshold_raw)
        for percent in MILESTONES:
            key, std_key = milestone_keys(percent)
            if step + 1 >= percent / 100 * (target + 1) and self._first_write(trial, key):
                attrs[key] = attrs[ATTR_PRED_FINAL]
                attrs[std_key] = attrs[ATTR_PRED_STD]
        prune = prob < self._min_prob
        kept_by: str | None = None
        if prune and model.selected.name == "qsvr":
            # The annealer's model may keep a trial the classical choice would stop, never stop
            # one it would keep: fitted on 20-row members, it reverts to the mean of the few
            # runs finished early in a study (docs/benchmarks.md, "Inside the pruner").
            classical = self._step_model(
                study, k, target, self._classical, self._classical_candidates, False, False
            )
            if classical is not None:
                classical_prob = self._probability(classical, X, k, threshold_raw)[3]
                attrs[ATTR_CLASSICAL_PROB] = classical_prob
                prune = classical_prob < self._min_prob
                kept_by = None if prune else KEPT_CLASSICAL
        if prune and self._confirm_prob is not None and k > 0:
            before = self._probability_one_step_earlier(
                study, previous_look, row, hyper, k, target, threshold_raw
            )
            if before is not None:
                attrs[ATTR_PROB_BEFORE] = before
                prune = before < self._confirm_prob
                kept_by = None if prune else KEPT_TWO_LOOKS
        peers = self._cache.steps.peers(step)
        if prune and self._keep_top > 0.0 and peers:
            # A trial among the best of its peers at this step is kept whatever the model says:
            # a model fitted on few finished trials is least reliable for the best ones.
            better = self._cache.steps.n_better(
                step, sign * float(trial.intermediate_values[step])
            )
            if peers >= _MIN_PEERS:
                prune = better >= self._keep_top * peers
                kept_by = None if prune else KEPT_TOP
            elif not self._prior_in_use():
                # Too few peers for a rank (a late step that only survivors reached): a trial
                # better than every one of them is kept. A model of a handful of finished runs
                # extrapolates worst for a run unlike all of them (an RBF SVR reverts to their
                # mean), and one better than all is what the study is looking for. With a prior
                # its runs train the model too: the rule below then asks for better than them
                # as well.
                prune = better > 0
                kept_by = None if prune else KEPT_FEW_PEERS
        if prune and self._keep_top > 0.0 and X[0, k] < model.low:
            # Better at this step than every run the model was fitted on, the prior's included:
            # the model would extrapolate, and an RBF SVR reverts to the training runs' mean
            # (a prior of runs at 0.3-1.2 predicted 0.7 for a run far below all of them). The
            # few-peers rule above does this for a study without a prior; with one, it is the
            # guard that a trial better than every earlier campaign's run is not stopped.
            prune = False
            kept_by = KEPT_OUTSIDE
        if kept_by is not None:
            attrs[ATTR_KEPT_BY] = kept_by
            attrs[ATTR_KEPT_AT] = float(step)
            # Remembered here, as the keys written once are: the trial handed to ``prune`` need
            # not show what the pruner wrote on it (Optuna's cached copy, background writes).
            rules = self._kept_rules.setdefault(trial.number, set())
            rules.update(kept_rules(trial.user_attrs))
            if kept_by not in rules:
                rules.add(kept_by)
                attrs[ATTR_KEPT_BY_RULES] = "; ".join(r for r in KEEP_RULES if r in rules)
        return _Decision(prune=prune, attrs=attrs)

    def _probability(
        self, model: _StepModel, X: np.ndarray, k: int, threshold_raw: float
    ) -> tuple[float, float, float, float]:
        """``model``'s prediction for the feature row ``X`` (raw and on the robust scale), its
        spread on that scale, and the probability that the final beats ``threshold_raw``."""
        selected = model.selected
        mu_raw = float(selected.model.predict_arrays(X)[0])
        scale = selected.scale
        mu = float(scale.forward(mu_raw))
        spread = max(selected.spread, 1e-9)
        member_spread = getattr(selected.model, "predict_spread", None)
        if member_spread is not None:  # an ensemble: wider where its members disagree
            spread = max(spread, float(member_spread(X)[0]))
        if X[0, k] > model.high:
            # Worse at this step than every run the model was fitted on: an RBF SVR reverts to
            # the training runs' mean there (a run at 18.5 predicted to end at 0.12 when the
            # worst training run stood at 2.3), so the prediction is bounded by the largest
            # recovery from this step that any training run made.
            bound = float(scale.forward(X[0, k])) + model.best_recovery
            if mu < bound:
                mu, mu_raw = bound, float(scale.inverse(bound))
        dof = max(1, selected.residuals.size - 1)
        needed = float(scale.forward(threshold_raw)) - mu  # the residual that would beat it
        z = needed / spread
        prob = float(stdtr(dof, z)) if math.isfinite(z) else float(z > 0)
        residuals = selected.row_residuals
        if (
            model.anchors is not None
            and residuals is not None
            and np.isfinite(residuals).sum() >= 3 * _NEIGHBOURS
        ):
            # Enough training runs to ask the ones that stood where this trial stands (level
            # and recent slope): how many of them beat their prediction by what this trial
            # needs? No parametric tail: late bloomers and runs escaping a plateau count.
            point = _anchors(X[:, : k + 1], scale)[0]
            nearest = _nearest(model.anchors, residuals, point, _NEIGHBOURS)
            # Both views must call the trial hopeless: its neighbours, and the spread of all
            # cross-validated contenders (the neighbours alone miss the best trial of a study
            # when it is unlike every earlier run).
            local = (1.0 + float(np.sum(nearest <= needed))) / (len(nearest) + 1.0)
            prob = max(prob, local)
        return mu_raw, mu, spread, prob

    def _probability_one_step_earlier(
        self,
        study: optuna.Study,
        previous_look: tuple[int, _StepModel, float, float] | None,
        row: np.ndarray,
        hyper: np.ndarray,
        k: int,
        target: int,
        threshold_raw: float,
    ) -> float | None:
        """The probability that step index ``k - 1``'s model gives the trial from its curve up
        to that step (``row`` holds it up to ``k``); None where it cannot say. The trial's
        ``previous_look`` is reused when it was at that step, with the same model and
        threshold."""
        earlier = row[:, :k]
        if not np.isfinite(earlier).any():
            return None
        model = self._model_for(study, k - 1, target)
        if model is None:
            return None
        if previous_look is not None:
            step_index, earlier_model, threshold, prob = previous_look
            if step_index == k - 1 and earlier_model is model and threshold == threshold_raw:
                return prob
        X = np.hstack([forward_fill(earlier), hyper])
        return self._probability(model, X, k - 1, threshold_raw)[3]

    def _model_for(self, study: optuna.Study, k: int, target: int) -> _StepModel | None:
        model = self._step_model(
            study, k, target, self._models, self._candidates, self._background, self._share
        )
        if self._background and (model is None or self._sampler is not None):
            # The step's first background fit is still running, or (annealer) the latest one
            # was trained on fewer runs than are now finished: the classical models, refitted
            # at once as the classical pruner would (milliseconds), decide. A model one refit
            # behind costs more than the annealer gains (docs/benchmarks.md, "Inside the
            # pruner").
            classical = self._step_model(
                study, k, target, self._classical, self._classical_candidates, False, False
            )
            if model is None or (
                classical is not None
                and classical.n_rows + classical.n_prior > model.n_rows + model.n_prior
            ):
                model = classical
        return model

    def _step_model(
        self,
        study: optuna.Study,
        k: int,
        target: int,
        store: dict[int, _StepModel],
        make_candidates: Callable[[int, int], dict[str, CurvePredictor]],
        background: bool,
        share: bool,
    ) -> _StepModel | None:
        """The model of step index ``k`` kept in ``store``: the cached one while it is current,
        else a new fit (done now, or queued in the background while the cached one decides)."""
        m = self._matrix
        grid = self._grid(target)
        cached = store.get(k)
        usable = m.first_bad > k
        n_rows = int(usable.sum())
        prior_rows = self._prior.n_used if self._prior is not None else 0
        if (
            cached is not None
            and cached.prior_rows == prior_rows
            and (
                cached.version == m.version
                or n_rows - cached.n_rows
                < max(self._refit_every, _REFIT_GROWTH * (cached.n_rows + prior_rows))
            )
        ):
            return cached
        # A model fitted while the prior was in use (and so on curve features and the prior's
        # parameters only) cannot stand in once the prior is switched off, nor the other way
        # round: its features differ, and the prior it learned from was found wrong.
        stand_in = (
            cached if cached is not None and (cached.prior_rows > 0) == (prior_rows > 0) else None
        )
        if background and self._fits.is_pending(k):
            return stand_in
        names, columns = self._hyper_features()
        X = np.hstack([m.curves[usable, : k + 1], m.hyper[usable][:, columns]])
        y = m.finals[usable]
        groups = m.groups[usable]
        n_prior = 0
        if prior_rows:
            assert self._prior is not None
            curves, hyper = self._prior.features(grid, target, m.encoder, names)
            rows = self._prior.rows()
            rows = rows[np.isfinite(curves[rows, k])]  # a run that stopped itself ends there
            n_prior = len(rows)
            prior_X = np.hstack([curves[rows, : k + 1], hyper[rows]])
            X = np.vstack([X.reshape(-1, prior_X.shape[1]), prior_X])
            y = np.concatenate([y, self._prior.prior.finals[rows]])
            offset = int(groups.max()) + 1 if len(groups) else 0
            groups = np.concatenate([groups, self._prior.prior.groups[rows] + offset])
        if len(y) < _MIN_TRAIN_TRIALS or len(np.unique(groups)) < 2:
            return stand_in
        target_index = int(np.searchsorted(grid, target, side="right"))
        candidates = make_candidates(k + 1, max(target_index, k + 1))
        key = self._training_key(k, target, usable) if share else ""
        step, version, layout = int(grid[k]), m.version, self._layout

        def fit() -> _StepModel:
            selected = self._load_shared(study, step, key, X.shape[1]) if share else None
            if selected is None:
                selected = select_predictor(
                    candidates, X, y, groups, n_folds=self._n_folds, seed=self._seed
                )
                if share:
                    self._publish(study, step, key, selected)
            _logger.debug(
                "Step %d: %s chosen on %d trials (CV errors %s).",
                step,
                selected.name,
                n_rows,
                {name: round(err, 4) for name, err in selected.cv_error.items()},
            )
            return _StepModel(
                version=version,
                n_rows=n_rows,
                selected=selected,
                prior_rows=prior_rows,
                n_prior=n_prior,
                anchors=_anchors(X[:, : k + 1], selected.scale),
                low=_lowest(X[:, k]),
                high=_highest(X[:, k]),
                best_recovery=_best_recovery(X[:, k], y, selected.scale),
            )

        if not background:
            model = store[k] = fit()
            self.selections[model.selected.name] += 1  # the caller holds the lock
            return model

        def job() -> None:
            model = fit()
            with self._lock:
                self.selections[model.selected.name] += 1
                current = store.get(k)
                if self._layout == layout and (
                    current is None
                    or current.version < version
                    or current.prior_rows != prior_rows
                ):
                    store[k] = model

        self._fits.submit(k, job)
        return stand_in

    def wait_for_fits(self, timeout: float | None = None) -> bool:
        """Block until no background fit is queued or running (False if ``timeout`` passed).

        Deciding never waits for a fit; this is for tests and for replays that must not depend
        on how fast this machine fits (``optuna-lcpred bench`` calls it between steps).
        """
        return self._fits.wait(timeout)

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
                json.dumps(self._qsvr_options, sort_keys=True, default=repr),
                self._n_folds,
                self._seed,
                target,
                self._grid(target)[: k + 1],
                self._prior.prior.digest if self._prior is not None else "",
                self._prior.n_used if self._prior is not None else 0,
                self._hyper_names(),
                [[n, distribution_to_json(d)] for n, d in m.encoder.space.items()],
                np.sort(numbers),
            ]
        )

    def _model_store(self, study: optuna.Study) -> Any:
        # The storage object itself (as the trial cache holds it; storages compare by
        # identity), not its id: a freed storage's id may be reused by another one.
        key = (study._storage, study._study_id)
        if self._store_for != key:
            self._store_for, self._store = key, _trials.model_store(study)
        return self._store

    def _load_shared(
        self, study: optuna.Study, step: int, key: str, n_features: int
    ) -> SelectedPredictor | None:
        from optuna_lcpred.sharing import SharedModelError
        from optuna_lcpred.sharing import decode_selected
        from optuna_lcpred.sharing import share_key_from_env

        store = self._model_store(study)
        if store is None:
            return None
        name = f"step-{step}"
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

    def _publish(
        self, study: optuna.Study, step: int, key: str, selected: SelectedPredictor
    ) -> None:
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
            f"step-{step}",
            payload,
            sign(payload, self._share_key or share_key_from_env()),
        )

    def _candidates(self, n_observed: int, horizon: int) -> dict[str, CurvePredictor]:
        if isinstance(self._predictor, CurvePredictor):
            from sklearn.base import clone

            custom = clone(self._predictor).set_params(n_steps=n_observed)
            if isinstance(custom, QSVRPredictor):
                custom.set_params(sampler=self._sampler)
            return {"custom": custom}
        if self._predictor == "qsvr":
            # The annealer-trained SVR joins the classical candidates, the classical SVR
            # included: it decides at the steps where it cross-validates best (typically few
            # finished trials, where each QUBO sees most of them), and never where one SVR on
            # hundreds of rows beats an ensemble of 20-row QUBOs.
            qsvr = QSVRPredictor(
                n_steps=n_observed, sampler=self._sampler, random_state=self._seed
            ).set_params(**self._qsvr_options)
            return {**self._classical_candidates(n_observed, horizon), "qsvr": qsvr}
        if self._predictor == "auto":
            return self._classical_candidates(n_observed, horizon)
        return {self._predictor: _make_candidate(self._predictor, n_observed, horizon)}

    def _classical_candidates(self, n_observed: int, horizon: int) -> dict[str, CurvePredictor]:
        names = _AUTO if n_observed >= 3 else tuple(n for n in _AUTO if n != "powerlaw")
        return {n: _make_candidate(n, n_observed, horizon) for n in names}


@functools.cache
def _process_state_names() -> frozenset[str]:
    """The attributes :meth:`LCPredictionPruner._start_process_state` sets: what a copy of
    the pruner leaves out and rebuilds."""
    probe = LCPredictionPruner.__new__(LCPredictionPruner)
    probe._start_process_state()
    return frozenset(vars(probe))


def _anchors(curves: np.ndarray, scale: Any) -> np.ndarray:
    """Where each curve stands: its last value and its change over the last 3 steps, on the
    model's robust scale."""
    phi = scale.forward(forward_fill(curves))
    last = phi[:, -1]
    back = phi[:, max(0, phi.shape[1] - 4)]
    return np.column_stack([last, last - back])


def _lowest(column: np.ndarray) -> float:
    finite = column[np.isfinite(column)]
    return float(finite.min()) if finite.size else -math.inf


def _highest(column: np.ndarray) -> float:
    finite = column[np.isfinite(column)]
    return float(finite.max()) if finite.size else math.inf


def _best_recovery(column: np.ndarray, finals: np.ndarray, scale: Any) -> float:
    """The largest improvement (most negative change, on ``scale``) from a training row's
    value at the step (``column``) to its final; ``-inf`` (no bound) without a finite pair."""
    change = scale.forward(finals) - scale.forward(column)
    finite = change[np.isfinite(change)]
    return float(finite.min()) if finite.size else -math.inf


def _nearest(anchors: np.ndarray, residuals: np.ndarray, point: np.ndarray, k: int) -> np.ndarray:
    """Residuals of the ``k`` training rows whose anchors are nearest ``point``
    (standardised distance)."""
    known = np.isfinite(residuals)
    a = anchors[known]
    scale = a.std(axis=0)
    scale[scale == 0] = 1.0
    distance = (((a - point) / scale) ** 2).sum(axis=1)
    return np.asarray(residuals[known][np.argsort(distance, kind="stable")[:k]])


def _is_first_in_interval(
    step: int, trial: FrozenTrial, n_warmup_steps: int, interval_steps: int
) -> bool:
    """True if ``step`` is the first reported step of its interval after the warm-up."""
    interval_start = (step - n_warmup_steps) // interval_steps * interval_steps + n_warmup_steps
    previous = max((s for s in trial.intermediate_values if s < step), default=-1)
    return previous < interval_start


def _check_qsvr_options(options: Mapping[str, Any] | None) -> dict[str, Any]:
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise TypeError(f"qsvr_options must be a mapping, got {type(options).__name__}")
    reserved = {"n_steps", "sampler", "random_state"} & set(options)
    if reserved:
        raise ValueError(
            f"qsvr_options may not set {', '.join(sorted(reserved))} (the pruner sets them; "
            "choose the sampler with annealer=...)"
        )
    known = set(QSVRPredictor().get_params())
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(
            f"qsvr_options has unknown key(s) {', '.join(unknown)}; QSVRPredictor takes "
            f"{', '.join(sorted(known - {'n_steps', 'sampler', 'random_state'}))}"
        )
    QSVRPredictor(**options)._validate_params()  # a bad value fails here, not mid-study
    return dict(options)


def _make_annealer(annealer: Any, options: Mapping[str, Any] | None) -> Any:
    from optuna_lcpred.annealers import SAMPLERS
    from optuna_lcpred.annealers import make_sampler

    if isinstance(annealer, str) and annealer not in SAMPLERS:
        raise ValueError(
            f"annealer must be one of {', '.join(SAMPLERS)} or a dimod sampler, got {annealer!r}"
        )
    if not isinstance(annealer, str) and not hasattr(annealer, "sample"):
        raise TypeError(f"annealer must be a name or a dimod sampler, got {type(annealer)}")
    return make_sampler(annealer, **dict(options or {}))


def _check_int(name: str, value: Any, minimum: int, also: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        extra = f" {also}" if also else ""
        raise ValueError(f"{name} must be an integer >= {minimum}{extra}, got {value!r}")
