"""What optuna-dashboard serves of a pruned study: sortable predictions, notes, the figure."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import optuna
import pytest

from optuna_lcpred import LCPredictionPruner
from optuna_lcpred.dashboard import FIGURE_ID
from optuna_lcpred.dashboard import DashboardCallback
from optuna_lcpred.dashboard import pruning_note


pytest.importorskip("optuna_dashboard")
pytest.importorskip("plotly")


def _objective(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", 0.0, 1.0)
    for step in range(12):
        trial.report(x + 1.0 / (step + 1), step)
        if trial.should_prune():
            raise optuna.TrialPruned()
    return x + 1.0 / 12


def _get(app: Any, path: str) -> Any:
    """A GET request straight into the WSGI app; the JSON it answers."""
    status: list[str] = []
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": io.StringIO(),
        "wsgi.version": (1, 0),
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    body = b"".join(app(environ, lambda s, headers, *rest: status.append(s)))
    assert status[0].startswith("200"), status
    return json.loads(body)


@pytest.fixture
def served(tmp_path: Path) -> tuple[Any, optuna.Study]:
    from optuna_dashboard import wsgi

    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(
        storage=storage,
        sampler=optuna.samplers.RandomSampler(seed=1),
        pruner=LCPredictionPruner(3, audit_fraction=0.25),
    )
    study.optimize(_objective, n_trials=30, callbacks=[DashboardCallback(every=10)])
    return wsgi(storage), study


def test_predictions_are_sortable_user_attributes(served: tuple[Any, optuna.Study]) -> None:
    app, study = served
    detail = _get(app, f"/api/studies/{study._study_id}")
    attrs = {a["key"]: a["sortable"] for a in detail["union_user_attrs"]}
    # Every prediction key holds numbers only, so the dashboard offers to sort by it.
    for key in ("lcpred:pred_final", "lcpred:pred_std", "lcpred:prob_improve", "lcpred:step"):
        assert attrs[key] is True, key


def test_the_calibration_figure_and_the_notes_are_served(served: tuple[Any, optuna.Study]) -> None:
    app, study = served
    detail = _get(app, f"/api/studies/{study._study_id}")
    figures = {g["id"]: json.loads(g["graph_object"]) for g in detail["plotly_graph_objects"]}
    # The figure, published under its id, plots the audit trials' milestone predictions.
    figure = figures[FIGURE_ID]
    assert "audit trials" in figure["layout"]["title"]["text"]
    assert any(trace["name"] == "at 25 % of training" for trace in figure["data"])
    pruned = [t for t in detail["trials"] if t["state"] == "Pruned"]
    assert pruned
    for trial in pruned:
        # Each pruned trial has a note saying why it was stopped.
        assert "Pruned by LCPredictionPruner at step" in trial["note"]["body"]
        assert "probability of beating it" in trial["note"]["body"]
    assert all(t["note"]["body"] == "" for t in detail["trials"] if t["state"] == "Complete")


def test_the_note_names_the_decision() -> None:
    study = optuna.create_study(pruner=LCPredictionPruner(3, n_warmup_steps=0))
    study.optimize(_objective, n_trials=20)
    trial = next(t for t in study.trials if t.state.name == "PRUNED")
    note = pruning_note(trial)
    assert note is not None
    attrs = trial.user_attrs
    assert f"at step {int(attrs['lcpred:step'])}" in note
    assert f"{attrs['lcpred:prob_improve']:.1%}" in note
    assert pruning_note(study.best_trial) is None  # nothing to explain on a complete trial
    # After a warm-up step, a trial is stopped only if the look one step earlier agreed.
    study = optuna.create_study(pruner=LCPredictionPruner(3))
    study.optimize(_objective, n_trials=20)
    later = next(t for t in study.trials if t.state.name == "PRUNED")
    before = later.user_attrs["lcpred:prob_improve_before"]
    assert before < 0.25
    assert f"one step earlier: {before:.1%}" in (pruning_note(later) or "")


def test_study_file_opt_in_and_bad_settings(tmp_path: Path) -> None:
    from optuna_lcpred.studyfile import StudyFileError
    from optuna_lcpred.studyfile import load_study_file

    path = tmp_path / "s.toml"
    base = '[study]\nname = "s"\nn_trials = 3\n[objective]\ntarget = "m:f"\n'
    path.write_text(base)
    assert load_study_file(path).make_dashboard_callback() is None  # opt-in
    path.write_text(base + "[dashboard]\nevery = 5\n")
    callback = load_study_file(path).make_dashboard_callback()
    assert isinstance(callback, DashboardCallback) and callback.every == 5
    path.write_text(base + "[dashboard]\nevery = 0\n")
    with pytest.raises(StudyFileError, match="dashboard: every must be an integer >= 1, got 0"):
        load_study_file(path).make_dashboard_callback()
    path.write_text(base + '[dashboard]\nnotes = "yes"\n')
    with pytest.raises(StudyFileError, match=r"dashboard\.notes must be bool"):
        load_study_file(path)


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_the_figure_leaves_out_predictions_a_retry_only_copied() -> None:
    from optuna_lcpred.dashboard import calibration_figure
    from tests.test_retry import OptunaRetry as retry_callback

    space = {"x": optuna.distributions.FloatDistribution(0.0, 1.0)}
    study = optuna.create_study(pruner=LCPredictionPruner(3))
    dead = study.ask(space)
    dead.set_user_attr("lcpred:pred_at_25pct", 0.9)
    study.tell(dead, state=optuna.trial.TrialState.FAIL)
    retry_callback()(study, study.trials[0])  # Optuna's: copies the prediction to the retry
    study.tell(study.ask(), 0.5)
    kept = study.ask(space)
    kept.set_user_attr("lcpred:pred_at_25pct", 0.4)
    study.tell(kept, 0.45)
    trials, _ = DashboardCallback._calibration_trials(study)
    figure = calibration_figure(study, trials, "t")
    # Only the trial that made its own prediction is plotted.
    assert [list(trace.x) for trace in figure.data if trace.name == "at 25 % of training"] == [
        [0.45]
    ]
