"""The pruning report: why each trial stopped, calibration, live false-prune rate."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from optuna_lcpred import LCPredictionPruner
from optuna_lcpred import study_report
from optuna_lcpred._trials import flush_annotations
from optuna_lcpred.pruner import is_audit_number
from optuna_lcpred.report import prune_reason
from tests.test_cli import cli


SPACE = {"x": FloatDistribution(0.0, 1.0)}
STEPS = 10


def curve(x: float) -> list[float]:
    return [1.0 + x + 2.0 / (s + 1) for s in range(STEPS)]


def finish(study: optuna.Study, values: Sequence[float]) -> int:
    """Train a trial to the end, asking the pruner at each step (and not listening)."""
    trial = study.ask(SPACE)
    for step, value in enumerate(values):
        trial.report(value, step)
        trial.should_prune()
    flush_annotations()
    study.tell(trial, values[-1])
    return trial.number


def run_until_pruned(study: optuna.Study, values: Sequence[float]) -> int:
    """Report ``values`` until the pruner says stop (or the objective stops itself)."""
    trial = study.ask(SPACE)
    for step, value in enumerate(values):
        trial.report(value, step)
        if trial.should_prune():
            break
    flush_annotations()
    study.tell(trial, state=TrialState.PRUNED)
    return trial.number


def base_study(**options: float) -> optuna.Study:
    pruner = LCPredictionPruner(n_startup_trials=3, n_warmup_steps=0, keep_top=0.0, **options)
    study = optuna.create_study(pruner=pruner)
    for x in (0.1, 0.3, 0.5, 0.7, 0.9):
        finish(study, curve(x))
    return study


def test_each_pruned_trial_gets_its_reason() -> None:
    study = base_study()
    hopeless = run_until_pruned(study, [50.0, 49.0, 48.0])
    # Predicted as a likely new best for three steps, then it diverges: the stored prediction
    # is favourable, but it was the NaN that stopped it.
    diverged = run_until_pruned(study, [0.5, 0.4, 0.3, math.nan])
    # The objective stops itself at step 1 while the pruner keeps it.
    gave_up = run_until_pruned(study, [0.5, 0.4])
    finish(study, curve(0.2))
    report = study_report(study)
    reasons = {r.trial: r for r in report.pruned}
    assert [reasons[n].kind for n in (hopeless, diverged, gave_up)] == [
        "prediction",
        "non-finite",
        "other",
    ]
    attrs = study.trials[hopeless].user_attrs
    stopped = reasons[hopeless]
    assert stopped.step == 0 and stopped.value == 50.0
    assert stopped.pred_final == attrs["lcpred:pred_final"]
    assert stopped.prob_improve == attrs["lcpred:prob_improve"] < 0.06
    assert stopped.prob_improve_before is None  # a first step is decided on one look
    assert stopped.threshold == attrs["lcpred:threshold"] == 1.1 + 2.0 / STEPS
    assert reasons[diverged].step == 3 and math.isnan(reasons[diverged].value or 0.0)
    assert reasons[diverged].prob_improve is None  # the earlier prediction is not the reason
    assert study.trials[diverged].user_attrs["lcpred:prob_improve"] > 0.5
    assert report.by_kind() == {"prediction": 1, "non-finite": 1, "other": 1}
    assert study.trials[hopeless].user_attrs["lcpred:pruned_at"] == 0.0
    # The objective stopped itself right after a decision to keep it: no mark, not a prediction.
    assert study.trials[gave_up].user_attrs["lcpred:step"] == 1.0
    assert "lcpred:pruned_at" not in study.trials[gave_up].user_attrs
    assert prune_reason(study.trials[0]) is None  # complete: nothing to explain
    text = report.format()
    assert "1 by a prediction, 1 for a non-finite value, 1 otherwise" in text
    assert f"{hopeless:>6}     0" in text and "non-finite" in text
    # No audit trials: the calibration comes from the survivors, and says so.
    assert report.calibration_source == "complete" and "survivors of pruning" in text


def test_the_dashboard_note_says_a_diverged_run_was_not_stopped_by_a_prediction() -> None:
    pytest.importorskip("plotly")
    from optuna_lcpred.dashboard import pruning_note

    study = base_study()
    diverged = run_until_pruned(study, [0.5, 0.4, 0.3, math.inf])
    gave_up = run_until_pruned(study, [0.5, 0.4])
    note = pruning_note(study.trials[diverged])
    assert note is not None and "step 3: it reported inf" in note
    assert "probability" not in note
    assert pruning_note(study.trials[gave_up]) is None


def audit_numbers(fraction: float, start: int, count: int) -> tuple[list[int], list[int]]:
    numbers = range(start, start + count)
    audit = [n for n in numbers if is_audit_number(n, fraction)]
    return audit, [n for n in numbers if n not in audit]


def test_audit_trials_give_the_calibration_and_the_live_false_prune_rate() -> None:
    fraction = 0.3
    study = base_study(audit_fraction=fraction)
    audit, _ = audit_numbers(fraction, 5, 30)
    assert len(audit) >= 3  # the hash spreads them: enough for the test below
    false_prune, late_bad = audit[0], audit[1]
    best_before = min(t.value for t in study.trials if t.value is not None)
    for number in range(5, audit[2] + 1):
        assert len(study.trials) == number
        if number == false_prune:
            # Looks hopeless for half its training, then finishes as the new best.
            early, late = range(5), range(5, STEPS)
            values = [50.0 - s for s in early] + [0.2 + 0.01 * (STEPS - s) for s in late]
            trial_number = finish(study, values)
            assert values[-1] < best_before
        elif number == late_bad:
            trial_number = finish(study, [50.0 - s for s in range(STEPS)])  # hopeless throughout
        elif number in audit:
            # The best all along: predicted to win, so never a would-be prune.
            trial_number = finish(study, [0.15 - 0.001 * s for s in range(STEPS)])
        else:
            trial_number = run_until_pruned(study, [40.0, 39.0])
        assert trial_number == number
    flush_annotations()
    report = study_report(study)
    marked = [t.number for t in study.trials if "lcpred:audit" in t.user_attrs]
    assert marked == audit[:3]  # the pruner marks its audit trials, and only them
    assert report.calibration_source == "audit" and report.n_audit == 3
    assert report.audit_would_prune == [false_prune, late_bad]
    assert report.false_prunes == [false_prune] and report.false_prune_rate == 0.5
    at10 = report.calibration[0]
    assert at10.percent == 10 and at10.n == 3
    text = report.format()
    assert "2 of 3 audit trials would have been pruned; 1 of them became the best" in text
    assert "live false-prune rate 50%" in text and f"trials {false_prune}" in text


def manual_study(direction: str = "minimize") -> optuna.Study:
    """Trials carrying the pruner's milestone predictions, written by hand."""
    study = optuna.create_study(direction=direction)
    # (final value, prediction at 10 %, spread at 10 %)
    for final, predicted, spread in [(1.0, 1.1, 0.2), (2.0, 2.5, 0.2), (3.0, 2.95, 0.03)]:
        trial = study.ask(SPACE)
        trial.set_user_attr("lcpred:pred_at_10pct", predicted)
        trial.set_user_attr("lcpred:std_at_10pct", spread)
        trial.report(final, 0)
        study.tell(trial, final)
    return study


def test_calibration_numbers() -> None:
    report = study_report(manual_study())
    (at10,) = report.calibration
    assert at10.n == 3 and at10.mae == pytest.approx((0.1 + 0.5 + 0.05) / 3)
    # errors 0.1, 0.5, 0.05 against spreads 0.2, 0.2, 0.03
    assert at10.within_1 == pytest.approx(1 / 3) and at10.within_2 == pytest.approx(2 / 3)
    assert at10.spearman == pytest.approx(1.0)


def test_a_new_best_is_direction_aware() -> None:
    study = optuna.create_study(direction="maximize")
    for number, value in enumerate([0.5, 0.9, 0.7]):
        trial = study.ask(SPACE)
        trial.set_user_attr("lcpred:audit", 1.0)
        if number:
            trial.set_user_attr("lcpred:audit_would_prune_at", 0.0)
        trial.report(value, 0)
        study.tell(trial, value)
    report = study_report(study)
    assert report.audit_would_prune == [1, 2] and report.false_prunes == [1]


def test_trials_a_rule_kept_are_counted_with_the_ones_that_became_the_best() -> None:
    study = base_study(confirm_prob=0.25)
    # A run better than all five at every step but one, where a noisy evaluation reads 40:
    # the model calls it hopeless there, the look one step earlier did not, so it goes on ...
    values = curve(0.0)
    values[4] = 40.0
    kept = finish(study, values)
    attrs = study.trials[kept].user_attrs
    assert attrs["lcpred:kept_by"] == "two looks" and attrs["lcpred:kept_at"] == 4.0
    assert attrs["lcpred:kept_by_rules"] == "two looks"
    # ... and finishes as the new best: the report counts what the rule saved.
    report = study_report(study)
    assert report.kept == {"two looks": [kept]}
    assert report.kept_became_best == [kept]
    assert (
        "kept by a rule although the model called them hopeless: 1 finished (two looks 1); "
        f"1 of them became the best so far: trials {kept}"
    ) in report.format()
    assert json.loads(json.dumps(report.to_dict()))["kept"] == {"two looks": [kept]}


def test_the_rules_that_kept_a_trial_add_up() -> None:
    study = base_study(confirm_prob=0.25)
    values = curve(0.0)
    values[4] = 40.0  # kept by two looks at step 4, as above
    trial = study.ask(SPACE)
    # Another process kept it earlier by another rule (written on the trial, not seen here).
    trial.set_user_attr("lcpred:kept_by_rules", "top of its step")
    for step, value in enumerate(values):
        trial.report(value, step)
        trial.should_prune()
    flush_annotations()
    study.tell(trial, values[-1])
    attrs = study.trials[trial.number].user_attrs
    assert attrs["lcpred:kept_by"] == "two looks"
    assert attrs["lcpred:kept_by_rules"] == "two looks; top of its step"  # in KEEP_RULES order
    assert study_report(study).kept == {
        "two looks": [trial.number],
        "top of its step": [trial.number],
    }


def test_a_trial_kept_by_several_rules_counts_once_under_each() -> None:
    study = optuna.create_study()
    space = {"x": optuna.distributions.FloatDistribution(0, 1)}
    for value, attrs in (
        (3.0, {}),
        (2.0, {"lcpred:kept_by": "top of its step", "lcpred:kept_by_rules": "two looks; "
               "top of its step"}),
        (2.5, {"lcpred:kept_by": "two looks"}),  # written before kept_by_rules existed
        (4.0, {"lcpred:kept_by": "two looks", "lcpred:kept_by_rules": "two looks"}),
    ):  # fmt: skip
        study.add_trial(
            optuna.trial.create_trial(
                params={"x": 0.5},
                distributions=space,
                value=value,
                intermediate_values={0: value},
                user_attrs=attrs,
            )
        )
    report = study_report(study)
    assert report.kept == {"two looks": [1, 2, 3], "top of its step": [1]}
    assert report.kept_became_best == [1]
    assert (
        "kept by a rule although the model called them hopeless: 3 finished "
        "(two looks 3, top of its step 1); 1 of them became the best so far: trials 1"
    ) in report.format()


def test_the_startup_hint_is_repeated() -> None:
    study = optuna.create_study(pruner=LCPredictionPruner(n_startup_trials=2, n_warmup_steps=0))
    assert study_report(study).startup_hint is None
    running = [study.ask(SPACE) for _ in range(4)]  # four train at once, none finished
    for trial in running:
        trial.report(1.0, 0)
        trial.should_prune()
    hint = study_report(study).startup_hint
    assert hint is not None and "fallback" in hint
    assert f"hint: {hint}" in study_report(study).format()


def test_multi_objective_studies_are_refused() -> None:
    study = optuna.create_study(directions=["minimize", "minimize"])
    with pytest.raises(ValueError, match="2 objectives"):
        study_report(study)


def test_the_report_command(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    study = optuna.create_study(
        study_name="rep",
        storage=storage,
        pruner=LCPredictionPruner(n_startup_trials=3, n_warmup_steps=0, keep_top=0.0),
    )
    for x in (0.1, 0.3, 0.5, 0.7, 0.9):
        finish(study, curve(x))
    hopeless = run_until_pruned(study, [50.0, 49.0])
    run = cli("report", "--storage", storage)
    assert "1 by a prediction" in run.stdout and f"{hopeless:>6}     0" in run.stdout
    data = json.loads(cli("report", "--storage", storage, "--json", "-").stdout)
    assert data["by_kind"]["prediction"] == 1 and data["pruned"][0]["trial"] == hopeless
    assert data["false_prune_rate"] is None  # no audit trials: undefined, not 0
    bad = cli("report", "--storage", storage, "--last", "-1", check=False)
    assert bad.returncode == 1 and "--last must be >= 0, got -1" in bad.stderr
    missing = cli("report", "--storage", storage, "--study", "nope", check=False)
    assert missing.returncode == 1 and "'nope'" in missing.stderr


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_a_heartbeat_retry_does_not_report_the_failed_runs_predictions_as_its_own() -> None:
    from optuna_lcpred.pruner import milestone_keys
    from tests.test_retry import OptunaRetry as retry_callback

    at25, std25 = milestone_keys(25)
    at50, _ = milestone_keys(50)
    study = optuna.create_study()
    # An audit trial whose worker died after the pruner had predicted it at 25 % and 50 %.
    dead = study.ask(SPACE)
    for key, value in {"lcpred:audit": 1.0, at25: 0.9, std25: 0.1, at50: 0.8}.items():
        dead.set_user_attr(key, value)
    dead.set_user_attr("lcpred:audit_would_prune_at", 3.0)
    dead.set_user_attr("owner", "ana")
    study.tell(dead, state=TrialState.FAIL)
    # Optuna's own heartbeat retry copies every user attribute to the retry ...
    retry_callback()(study, study.trials[dead.number])
    retry = study.ask()  # takes the WAITING retry
    assert retry.user_attrs[at25] == 0.9 and retry.user_attrs["owner"] == "ana"
    # ... whose own run predicts again at 50 % (not an audit trial, by its number) and ends.
    retry.set_user_attr(at50, 0.6)
    study.tell(retry, 0.5)
    report = study_report(study)
    # The copied audit mark and would-prune step are not the retry's: no audit trial.
    assert report.n_audit == 0 and report.audit_would_prune == []
    # Only the retry's own prediction (at 50 %) is set against its final value.
    assert [(c.percent, c.n) for c in report.calibration] == [(50, 1)]
    assert report.calibration[0].mae == pytest.approx(0.1)
    # One trial has no rank correlation: NaN in Python, a dash in the text.
    assert math.isnan(report.calibration[0].spearman)
    row = next(line for line in report.format().splitlines() if line.startswith("   50%"))
    assert row.split()[-1] == "-" and "nan" not in report.format()
