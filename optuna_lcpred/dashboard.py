"""What optuna-dashboard shows of the pruner: why each trial was stopped, and how well it predicts.

:class:`DashboardCallback` is a study callback (``study.optimize(..., callbacks=[...])``, or
``[dashboard]`` in a study file). On each trial that :class:`~optuna_lcpred.LCPredictionPruner`
pruned it writes a note: the step, the predicted final value and its spread, the threshold and
the probability of beating it. Every ``every`` finished trials it publishes a Plotly figure of
the predicted final value (at 10, 25 and 50 % of training) against the actual one, for the
audit trials (``LCPredictionPruner(audit_fraction=...)``, never pruned, so an unbiased sample);
without audit trials, for the completed trials, which the title marks as survivors.

Needs the ``dashboard`` extra (``optuna-dashboard``, ``plotly``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING
from typing import Any

import optuna
from optuna.trial import TrialState

from optuna_lcpred import _trials
from optuna_lcpred.pruner import MILESTONES
from optuna_lcpred.pruner import THRESHOLD_FROM_PRIOR_MEDIAN
from optuna_lcpred.pruner import THRESHOLD_FROM_PRIOR_TOP
from optuna_lcpred.pruner import LCPredictionPruner
from optuna_lcpred.pruner import milestone_keys
from optuna_lcpred.report import NON_FINITE
from optuna_lcpred.report import OTHER
from optuna_lcpred.report import prune_reason


if TYPE_CHECKING:
    from optuna.trial import FrozenTrial


__all__ = ["FIGURE_ID", "DashboardCallback", "calibration_figure", "pruning_note"]

_logger = logging.getLogger("optuna.lcpred.dashboard")

#: The id under which the calibration figure is published (replaced on each update).
FIGURE_ID = "lcpred-calibration"


#: How a note says that the prior's runs set the threshold (``lcpred:threshold_from``).
_THRESHOLD_SOURCES = {
    THRESHOLD_FROM_PRIOR_MEDIAN: " (the prior's median run: no trial of this study had finished)",
    THRESHOLD_FROM_PRIOR_TOP: " (the prior's top decile of runs, which this study's finished "
    "trials had not reached)",
}


def pruning_note(trial: FrozenTrial, direction: str = "minimize") -> str | None:
    """The Markdown note saying why ``trial`` was pruned, or None.

    A note is written for a trial stopped by a prediction (the step, the predicted final value
    and spread, the threshold, the probability) and for one stopped because it reported a
    non-finite value; None for other trials (not PRUNED, or pruned where no prediction was
    made: the startup fallback or the objective itself). See :func:`.report.prune_reason`.
    """
    reason = prune_reason(trial)
    if reason is None or reason.kind == OTHER:
        return None
    if reason.kind == NON_FINITE:
        return (
            f"**Stopped at step {reason.step}: it reported {reason.value}** (a diverged run; "
            "LCPredictionPruner prunes non-finite values and never trains on them)"
        )
    better = "below" if direction == "minimize" else "above"
    lines = [
        f"**Pruned by LCPredictionPruner at step {reason.step}**",
        "",
        f"- predicted final value: {_number(reason.pred_final, '.6g')} "
        f"(spread {_number(reason.pred_std, '.3g')})",
        f"- threshold to beat ({better}): {_number(reason.threshold, '.6g')}"
        + _THRESHOLD_SOURCES.get(reason.threshold_from or "", ""),
        f"- probability of beating it: {_number(reason.prob_improve, '.1%')}",
    ]
    if reason.prob_improve_before is not None:
        lines.append(
            f"- one step earlier: {_number(reason.prob_improve_before, '.1%')} (two looks agreed)"
        )
    if reason.n_train is not None:
        lines.append(f"- model trained on {int(reason.n_train)} finished runs")
    if reason.prior_weight is not None:
        lines.append(f"- weight of the prior campaigns: {reason.prior_weight:.2f}")
    return "\n".join(lines)


def _number(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def calibration_figure(study: optuna.Study, trials: list[FrozenTrial], title: str) -> Any:
    """Predicted (at each milestone, with its spread) against actual final value."""
    import plotly.graph_objects as go

    figure = go.Figure()
    values: list[float] = []
    for percent in MILESTONES:
        key, std_key = milestone_keys(percent)
        rows = [t for t in trials if key in t.user_attrs and t.value is not None]
        if not rows:
            continue
        actual = [float(t.value) for t in rows]  # type: ignore[arg-type]
        predicted = [float(t.user_attrs[key]) for t in rows]
        spread = [float(t.user_attrs.get(std_key, 0.0)) for t in rows]
        values.extend(actual + predicted)
        figure.add_trace(
            go.Scatter(
                x=actual,
                y=predicted,
                mode="markers",
                name=f"at {percent} % of training",
                error_y={"type": "data", "array": spread, "visible": True},
                text=[f"trial {t.number}" for t in rows],
            )
        )
    if values:
        low, high = min(values), max(values)
        figure.add_trace(
            go.Scatter(x=[low, high], y=[low, high], mode="lines", name="exact",
                       line={"dash": "dot", "color": "grey"})
        )  # fmt: skip
    figure.update_layout(
        title=title,
        xaxis_title="actual final value",
        yaxis_title="predicted final value",
    )
    return figure


class DashboardCallback:
    """Notes on pruned trials and a calibration figure, for optuna-dashboard.

    Example:
        >>> import optuna
        >>> from optuna_lcpred import LCPredictionPruner
        >>> from optuna_lcpred.dashboard import DashboardCallback
        >>> def objective(trial):
        ...     x = trial.suggest_float("x", 0, 1)
        ...     for step in range(10):
        ...         trial.report(x + 1 / (step + 1), step)
        ...         if trial.should_prune():
        ...             raise optuna.TrialPruned()
        ...     return x + 0.1
        >>> study = optuna.create_study(pruner=LCPredictionPruner(audit_fraction=0.2))
        >>> study.optimize(objective, n_trials=20, callbacks=[DashboardCallback(every=10)])

    Args:
        every: Publish the figure after every this many finished trials.
        notes: Write a note on each pruned trial.
    """

    def __init__(self, every: int = 10, *, notes: bool = True) -> None:
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be an integer >= 1, got {every!r}")
        try:
            import optuna_dashboard  # noqa: F401
            import plotly  # noqa: F401
        except ImportError:
            raise ImportError(
                "DashboardCallback needs optuna-dashboard and plotly: pip install "
                '"optuna-lcpred[dashboard]"'
            ) from None
        self.every = every
        self.notes = notes
        self._seen = 0

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        from optuna_dashboard import save_note
        from optuna_dashboard import save_plotly_graph_object

        try:
            if self.notes:
                note = pruning_note(trial, study.direction.name.lower())
                if note is not None:
                    save_note(_trials.live_trial(study, trial), note)
            self._seen += 1
            if self._seen % self.every:
                return
            trials, title = self._calibration_trials(study)
            if trials:
                figure = calibration_figure(study, trials, title)
                save_plotly_graph_object(study, figure, graph_object_id=FIGURE_ID)
        except Exception as exc:  # the dashboard must never stop a study
            _logger.warning("Could not update the dashboard: %s", exc)

    @staticmethod
    def _calibration_trials(study: optuna.Study) -> tuple[list[FrozenTrial], str]:
        # A heartbeat retry's copies of the failed run's milestones are not its own.
        trials = _trials.drop_inherited_annotations(study.get_trials(deepcopy=False))
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        pruner = study.pruner
        if isinstance(pruner, LCPredictionPruner):
            audit = [t for t in complete if pruner.is_audit_trial(t.number)]
            if audit:
                return audit, f"Predicted vs actual final value: {len(audit)} audit trials"
        return complete, (
            f"Predicted vs actual final value: {len(complete)} completed trials "
            "(survivors of pruning: a biased sample; set audit_fraction for an unbiased one)"
        )
