"""Why each trial of a study was stopped, and how well the pruner's predictions held up.

Everything :class:`~optuna_lcpred.LCPredictionPruner` decides is stored on the trials as float
user attributes; this module reads them back from any study (no pruner object needed), for a
terminal (``optuna-lcpred report``), for JSON, and for the dashboard's notes:

- :func:`prune_reason` says why one PRUNED trial was stopped: by a prediction (with the
  predicted final value, its spread, the threshold and the probability of beating it), by a
  non-finite report (a diverged run), or by something else (the startup ``fallback``, another
  pruner, or the objective itself).
- :func:`study_report` adds the calibration of the predictions made at 10, 25 and 50 % of
  training against the final values, and the *live false-prune rate* from the audit trials
  (``audit_fraction``): the audit trials the pruner would have stopped that went on to become
  the study's best.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field
from typing import TYPE_CHECKING
from typing import Any

import numpy as np
from optuna.trial import TrialState
from scipy.stats import spearmanr

from optuna_lcpred._trials import drop_inherited_annotations
from optuna_lcpred.pruner import ATTR_AUDIT
from optuna_lcpred.pruner import ATTR_AUDIT_WOULD_PRUNE
from optuna_lcpred.pruner import ATTR_N_TRAIN
from optuna_lcpred.pruner import ATTR_PRED_FINAL
from optuna_lcpred.pruner import ATTR_PRED_STD
from optuna_lcpred.pruner import ATTR_PRIOR_WEIGHT
from optuna_lcpred.pruner import ATTR_PROB_BEFORE
from optuna_lcpred.pruner import ATTR_PROB_IMPROVE
from optuna_lcpred.pruner import ATTR_PRUNED_AT
from optuna_lcpred.pruner import ATTR_STARTUP_HINT
from optuna_lcpred.pruner import ATTR_THRESHOLD
from optuna_lcpred.pruner import ATTR_THRESHOLD_FROM
from optuna_lcpred.pruner import MILESTONES
from optuna_lcpred.pruner import THRESHOLD_FROM_STUDY
from optuna_lcpred.pruner import kept_rules
from optuna_lcpred.pruner import milestone_keys


if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial


__all__ = [
    "Calibration",
    "PruneReason",
    "StudyReport",
    "prune_reason",
    "study_report",
]

#: Why a trial was stopped (:attr:`PruneReason.kind`).
PREDICTION = "prediction"
NON_FINITE = "non-finite"
OTHER = "other"


@dataclass(frozen=True)
class PruneReason:
    """Why one PRUNED trial was stopped.

    Attributes:
        trial: The trial number.
        kind: ``"prediction"`` (the pruner's model called it hopeless at ``step``),
            ``"non-finite"`` (it reported NaN or inf at ``step``), or ``"other"`` (no
            prediction was made at its last step: the startup ``fallback``, another pruner, or
            the objective raised ``TrialPruned`` itself).
        step: The last step it reported.
        value: The value it reported there.
        pred_final: For a prediction: the predicted final value (else None), and so on for the
            spread, the threshold to beat, the probability of beating it, the finished runs
            (with prior runs) the model was trained on, the prior's weight, and the
            probability one step earlier that confirmed it (``confirm_prob``).
        threshold_from: With a prior, where the threshold came from
            (``lcpred:threshold_from``: ``"study"``, ``"prior median run"`` or ``"prior top
            decile"``).
    """

    trial: int
    kind: str
    step: int | None
    value: float | None
    pred_final: float | None = None
    pred_std: float | None = None
    threshold: float | None = None
    prob_improve: float | None = None
    n_train: float | None = None
    prior_weight: float | None = None
    prob_improve_before: float | None = None
    threshold_from: str | None = None


@dataclass(frozen=True)
class Calibration:
    """Predictions made at one fraction of training against the final values.

    Attributes:
        percent: The fraction of training (10, 25 or 50) the predictions were made at.
        n: Trials with such a prediction and a final value.
        mae: Mean absolute error of the predicted final value.
        within_1: Share of trials whose final value lies within one predicted spread of the
            prediction (about 0.68 for a well-calibrated normal spread; less means the pruner
            is more confident than it should be).
        within_2: The same within two spreads (about 0.95 when calibrated).
        spearman: Rank correlation of predicted and final values (NaN below 3 trials).
    """

    percent: int
    n: int
    mae: float
    within_1: float
    within_2: float
    spearman: float


@dataclass(frozen=True)
class StudyReport:
    """A study's pruning decisions, their calibration and the live false-prune rate.

    Attributes:
        study: The study name.
        direction: ``"minimize"`` or ``"maximize"``.
        counts: Trials by state (lower-case state names).
        pruned: Why each PRUNED trial was stopped, in trial order.
        calibration: One row per milestone with predictions (see :class:`Calibration`).
        calibration_source: ``"audit"`` when the rows come from audit trials (never pruned, an
            unbiased sample), ``"complete"`` when from the completed trials (survivors of
            pruning, which flatter the pruner), ``"none"`` without predictions.
        n_audit: COMPLETE audit trials that the pruner got to predict (marked
            ``lcpred:audit``; those finished before its model was ready carry no prediction).
        audit_would_prune: Those the pruner would have stopped (``audit_would_prune_at``).
        false_prunes: Of those, the trials that finished better than every trial completed
            before them: runs the pruner would have lost as the study's new best.
        startup_hint: The pruner's advice to add a startup ``fallback``, if it gave one (more
            trials trained in parallel before its model was ready than the startup needed).
        kept: COMPLETE trials that the model called hopeless at some step and a rule kept
            (two looks, the top of their step, ...), under every rule that kept them
            (``lcpred:kept_by_rules``; a trial kept by two rules is listed under both).
        kept_became_best: Of those, the trials that finished better than every trial
            completed before them: what the rules saved.

    Example:
        Built by :func:`study_report` from a study's trials; a study without pruned trials:

        >>> import optuna
        >>> study = optuna.create_study()
        >>> study.optimize(lambda trial: trial.suggest_float("x", 0.0, 1.0), n_trials=3)
        >>> report = study_report(study)
        >>> report.counts["complete"], report.pruned, report.calibration_source
        (3, [], 'none')
    """

    study: str
    direction: str
    counts: dict[str, int]
    pruned: list[PruneReason] = field(default_factory=list)
    calibration: list[Calibration] = field(default_factory=list)
    calibration_source: str = "none"
    n_audit: int = 0
    audit_would_prune: list[int] = field(default_factory=list)
    false_prunes: list[int] = field(default_factory=list)
    startup_hint: str | None = None
    kept: dict[str, list[int]] = field(default_factory=dict)
    kept_became_best: list[int] = field(default_factory=list)

    @property
    def false_prune_rate(self) -> float:
        """False prunes over the audit trials the pruner would have stopped (NaN if none)."""
        n = len(self.audit_would_prune)
        return len(self.false_prunes) / n if n else math.nan

    def by_kind(self) -> dict[str, int]:
        """How many PRUNED trials each reason stopped."""
        out = {PREDICTION: 0, NON_FINITE: 0, OTHER: 0}
        for reason in self.pruned:
            out[reason.kind] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON (NaN where a number is undefined)."""
        data = asdict(self)
        data["by_kind"] = self.by_kind()
        data["false_prune_rate"] = self.false_prune_rate
        return data

    def format(self, last: int = 20) -> str:
        """A few tables for a terminal; ``last`` pruned trials are listed (0: none)."""
        kinds = self.by_kind()
        states = ", ".join(f"{n} {state}" for state, n in self.counts.items() if n)
        lines = [f"study {self.study!r} ({self.direction}): {states or 'no trials'}"]
        lines.append(
            f"pruned: {kinds[PREDICTION]} by a prediction, {kinds[NON_FINITE]} for a "
            f"non-finite value, {kinds[OTHER]} otherwise (startup fallback, objective)"
        )
        shown = self.pruned[-last:] if last > 0 else []
        if shown:
            lines.append("")
            title = "pruned trials" if len(shown) == len(self.pruned) else "last pruned trials"
            lines.append(f"{title} (P: probability of beating the threshold):")
            lines.append(
                f"{'trial':>6} {'step':>5} {'value':>11} {'predicted':>11} {'spread':>9} "
                f"{'threshold':>11} {'P':>7} {'n_train':>7}  reason"
            )
            for r in shown:
                lines.append(
                    f"{r.trial:>6} {_cell(r.step, 'd', 5)} {_cell(r.value, '.5g', 11)} "
                    f"{_cell(r.pred_final, '.5g', 11)} {_cell(r.pred_std, '.3g', 9)} "
                    f"{_cell(r.threshold, '.5g', 11)} {_cell(r.prob_improve, '.1%', 7)} "
                    f"{_cell(r.n_train, '.0f', 7)}  {r.kind}{_source(r.threshold_from)}"
                )
        lines.append("")
        if self.calibration:
            source = {
                "audit": f"{self.n_audit} audit trials (never pruned: an unbiased sample)",
                "complete": "the completed trials (survivors of pruning: they flatter the "
                "pruner; set audit_fraction for an unbiased sample)",
            }[self.calibration_source]
            lines.append(f"calibration, on {source}:")
            lines.append(
                f"{'at':>6} {'n':>4} {'MAE':>9} {'within 1 spread':>16} "
                f"{'within 2':>9} {'Spearman':>9}"
            )
            for c in self.calibration:
                rho = c.spearman if math.isfinite(c.spearman) else None  # "-": too few trials
                lines.append(
                    f"{c.percent:>5}% {c.n:>4} {c.mae:>9.4g} {c.within_1:>16.0%} "
                    f"{c.within_2:>9.0%} {_cell(rho, '.2f', 9)}"
                )
            lines.append("(a calibrated spread holds about 68 % within 1 spread, 95 % within 2)")
        else:
            lines.append("calibration: no trial with a prediction has finished yet")
        if self.n_audit:
            would = len(self.audit_would_prune)
            lines.append(
                f"audit: {would} of {self.n_audit} audit trials would have been pruned; "
                f"{len(self.false_prunes)} of them became the best so far "
                + (f"(live false-prune rate {self.false_prune_rate:.0%})" if would else "")
                + (f": trials {_numbers(self.false_prunes)}" if self.false_prunes else "")
            )
        if self.kept:
            n_kept = len({number for numbers in self.kept.values() for number in numbers})
            rules = ", ".join(f"{rule} {len(numbers)}" for rule, numbers in self.kept.items())
            lines.append(
                f"kept by a rule although the model called them hopeless: {n_kept} finished "
                f"({rules}); {len(self.kept_became_best)} of them became the best so far"
                + (f": trials {_numbers(self.kept_became_best)}" if self.kept_became_best else "")
            )
        if self.startup_hint:
            lines.append(f"hint: {self.startup_hint}")
        return "\n".join(lines)


def prune_reason(trial: FrozenTrial) -> PruneReason | None:
    """Why ``trial`` was pruned, from what the pruner stored on it; None unless it is PRUNED.

    The pruner writes its prediction at every decision, and marks the step where it stopped a
    trial (``lcpred:pruned_at``). A trial that reported NaN or inf last was stopped for that,
    even if an earlier prediction is stored on it; one without the mark at its last step was
    stopped by something else (the startup fallback, or the objective itself).
    """
    if trial.state != TrialState.PRUNED:
        return None
    attrs = trial.user_attrs
    step = trial.last_step
    value = float(trial.intermediate_values[step]) if step is not None else None
    if value is not None and not math.isfinite(value):
        return PruneReason(trial.number, NON_FINITE, step, value)
    if step is None or attrs.get(ATTR_PRUNED_AT) != float(step):
        return PruneReason(trial.number, OTHER, step, value)
    return PruneReason(
        trial.number,
        PREDICTION,
        step,
        value,
        pred_final=_float(attrs.get(ATTR_PRED_FINAL)),
        pred_std=_float(attrs.get(ATTR_PRED_STD)),
        threshold=_float(attrs.get(ATTR_THRESHOLD)),
        prob_improve=_float(attrs.get(ATTR_PROB_IMPROVE)),
        n_train=_float(attrs.get(ATTR_N_TRAIN)),
        prior_weight=_float(attrs.get(ATTR_PRIOR_WEIGHT)),
        prob_improve_before=_float(attrs.get(ATTR_PROB_BEFORE)),
        threshold_from=_string(attrs.get(ATTR_THRESHOLD_FROM)),
    )


def study_report(study: optuna.Study) -> StudyReport:
    """Read a study's pruning decisions back from its trials.

    Args:
        study: A single-objective study, pruned by :class:`~optuna_lcpred.LCPredictionPruner`
            (any other study reads as one whose pruned trials were stopped otherwise).

    Example:
        >>> import optuna
        >>> from optuna_lcpred import LCPredictionPruner
        >>> from optuna_lcpred.report import study_report
        >>> def objective(trial):
        ...     lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        ...     loss = float("inf")
        ...     for epoch in range(12):
        ...         loss = abs(lr - 1e-2) + 2.0 / (epoch + 2)
        ...         trial.report(loss, epoch)
        ...         if trial.should_prune():
        ...             raise optuna.TrialPruned()
        ...     return loss
        >>> sampler = optuna.samplers.RandomSampler(seed=0)
        >>> pruner = LCPredictionPruner(audit_fraction=0.2)
        >>> study = optuna.create_study(sampler=sampler, pruner=pruner)
        >>> study.optimize(objective, n_trials=30)
        >>> report = study_report(study)
        >>> report.by_kind()["prediction"] > 0 and report.calibration_source
        'audit'
    """
    if len(study.directions) != 1:
        raise ValueError(
            f"study {study.study_name!r} has {len(study.directions)} objectives; the pruning "
            "report covers single-objective studies"
        )
    direction = study.direction.name.lower()
    # A heartbeat retry's copies of the failed run's predictions are not its own.
    trials = drop_inherited_annotations(study.get_trials(deepcopy=False))
    counts = {state.name.lower(): 0 for state in TrialState}
    for trial in trials:
        counts[trial.state.name.lower()] += 1
    pruned = [r for r in (prune_reason(t) for t in trials) if r is not None]

    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]

    audit = [t for t in complete if ATTR_AUDIT in t.user_attrs]
    calibration = _calibration(audit) if audit else []
    source = "audit" if calibration else "none"
    if not calibration:
        calibration = _calibration(complete)
        source = "complete" if calibration else "none"
    would = [t for t in audit if ATTR_AUDIT_WOULD_PRUNE in t.user_attrs]
    false = [t.number for t in would if _became_best(t, complete, direction)]
    hint = study.user_attrs.get(ATTR_STARTUP_HINT)
    kept: dict[str, list[int]] = {}
    saved = []
    for trial in complete:
        rules = kept_rules(trial.user_attrs)
        for rule in rules:
            kept.setdefault(rule, []).append(trial.number)
        if rules and _became_best(trial, complete, direction):
            saved.append(trial.number)
    return StudyReport(
        study=study.study_name,
        direction=direction,
        counts=counts,
        pruned=pruned,
        calibration=calibration,
        calibration_source=source,
        n_audit=len(audit),
        audit_would_prune=[t.number for t in would],
        false_prunes=false,
        startup_hint=hint if isinstance(hint, str) else None,
        kept=kept,
        kept_became_best=saved,
    )


def _calibration(trials: Sequence[FrozenTrial]) -> list[Calibration]:
    rows = []
    for percent in MILESTONES:
        key, std_key = milestone_keys(percent)
        pairs = np.array(
            [
                (
                    float(t.value),
                    float(t.user_attrs[key]),
                    float(t.user_attrs.get(std_key, math.nan)),
                )
                for t in trials
                if key in t.user_attrs and t.value is not None
            ],
            dtype=float,
        ).reshape(-1, 3)
        pairs = pairs[np.isfinite(pairs[:, 0]) & np.isfinite(pairs[:, 1])]
        if not len(pairs):
            continue
        actual, predicted, spread = pairs.T
        error = np.abs(actual - predicted)
        if len(pairs) >= 3 and np.ptp(actual) > 0 and np.ptp(predicted) > 0:
            rho = float(spearmanr(actual, predicted).statistic)
        else:
            rho = math.nan
        rows.append(
            Calibration(
                percent=percent,
                n=len(pairs),
                mae=float(error.mean()),
                within_1=float(np.mean(error <= spread)),
                within_2=float(np.mean(error <= 2 * spread)),
                spearman=rho,
            )
        )
    return rows


def _became_best(trial: FrozenTrial, complete: Sequence[FrozenTrial], direction: str) -> bool:
    """Whether ``trial`` finished better than every trial completed before it."""
    if trial.datetime_complete is None or trial.value is None:
        return False
    earlier = [
        float(t.value)  # type: ignore[arg-type]
        for t in complete
        if t.number != trial.number
        and t.datetime_complete is not None
        and t.datetime_complete < trial.datetime_complete
    ]
    if not earlier:
        return False  # the first finished trial is the best by default, not a lost one
    if direction == "minimize":
        return float(trial.value) < min(earlier)
    return float(trial.value) > max(earlier)


def _string(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _source(threshold_from: str | None) -> str:
    """What the reason column adds when the prior's runs set the threshold."""
    if threshold_from is None or threshold_from == THRESHOLD_FROM_STUDY:
        return ""
    return f" (threshold: {threshold_from})"


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) else None


def _cell(value: float | int | None, spec: str, width: int) -> str:
    if value is None:
        return f"{'-':>{width}}"
    if isinstance(value, float) and not math.isfinite(value):
        return f"{value!s:>{width}}"
    return f"{value:>{width}{spec}}"


def _numbers(numbers: Sequence[int], limit: int = 10) -> str:
    text = ", ".join(str(n) for n in numbers[:limit])
    return text + (f" and {len(numbers) - limit} more" if len(numbers) > limit else "")
