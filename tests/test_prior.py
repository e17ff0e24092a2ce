"""Warm starts: prior curves train the pruner's models before the study's own trials finish."""

from __future__ import annotations

import pickle
import time
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution

from optuna_lcpred import LCPredictionPruner
from optuna_lcpred.curves import CurveTable
from optuna_lcpred.curves import study_to_curve_table
from optuna_lcpred.curves import write_curve_table
from optuna_lcpred.dashboard import pruning_note
from optuna_lcpred.prior import PriorCurves
from optuna_lcpred.prior import PriorError
from optuna_lcpred.prior import load_prior
from optuna_lcpred.report import study_report
from tests.conftest import make_table


SPACE = {"lr": FloatDistribution(1e-4, 1e-1, log=True), "width": IntDistribution(16, 64)}
# Far above every prior curve (finals about 0.3-1.2); the pruner stops such a run once two
# consecutive looks agree (``confirm_prob``), here at its fourth report.
HOPELESS = [50.0, 49.0, 48.0, 47.0]


def _run(study: optuna.Study, values: list[float], params: dict[str, Any] | None = None) -> Any:
    """A trial reporting ``values`` from step 0; returns it and the last decision."""
    study.enqueue_trial(params or {"lr": 1e-2, "width": 32})
    trial = study.ask(SPACE)
    pruned = False
    for step, value in enumerate(values):
        trial.report(value, step)
        pruned = trial.should_prune()
        if pruned:
            break
    return trial, pruned


def test_a_prior_prunes_a_hopeless_trial_before_any_trial_has_finished() -> None:
    prior = make_table(60, 12, seed=3)  # finals about 0.3-1.2
    study = optuna.create_study(pruner=LCPredictionPruner(prior=prior))
    # The first trial is the anchor: it finishes whatever it reports, so the prior can be
    # checked against it. It is still running when the second trial decides.
    _anchor, pruned = _run(study, HOPELESS)
    assert not pruned
    second, pruned = _run(study, HOPELESS)
    # Nothing of the study's own has finished, yet the hopeless second trial is stopped ...
    assert pruned
    assert not study.get_trials(states=[optuna.trial.TrialState.COMPLETE])
    attrs = study.trials[second.number].user_attrs
    assert attrs["lcpred:prior_weight"] == 1.0 and attrs["lcpred:n_train"] == 60.0
    # Its threshold is the prior's median run, and the report and the dashboard say so.
    assert attrs["lcpred:threshold_from"] == "prior median run"
    assert attrs["lcpred:threshold"] == pytest.approx(np.median(prior.final_values))
    study.tell(second, state=optuna.trial.TrialState.PRUNED)
    assert "(threshold: prior median run)" in study_report(study).format()
    note = pruning_note(study.trials[second.number])
    assert note is not None and "(the prior's median run: no trial of this study" in note
    # ... while one whose curve looks like the prior's best runs is not.
    best = prior.curves[np.argmin(prior.final_values), : len(HOPELESS)].tolist()
    _, pruned = _run(study, best)
    assert not pruned


@pytest.mark.parametrize("factor", [0.5, 0.1])
def test_a_trial_better_than_every_prior_run_is_not_stopped(factor: float) -> None:
    prior = make_table(60, 12, seed=3)
    own = make_table(40, 12, seed=4)
    pruner = LCPredictionPruner(prior=prior)
    study = optuna.create_study(pruner=pruner)
    trial, _ = _run(study, own.curves[0].tolist())  # one of the study's own finishes
    study.tell(trial, float(own.curves[0, -1]))
    # At every step below every prior run and the finished one: the fitted models have seen
    # nothing like it (an RBF SVR predicted the prior's mean for it, about 0.7, and the
    # trial was stopped at step 1).
    curve = factor * np.minimum(prior.curves.min(axis=0), own.curves[0])
    better, pruned = _run(study, curve[:-1].tolist(), params={"lr": 3e-4, "width": 16})
    assert not pruned
    attrs = study.trials[better.number].user_attrs
    assert attrs["lcpred:step"] == 10.0 and attrs["lcpred:n_train"] == 61.0
    assert attrs["lcpred:kept_by"] == "outside the training runs"
    # The guard keeps it; it does not hide a hopeless trial, which is still stopped.
    _, pruned = _run(study, HOPELESS)
    assert pruned


def _worker(url: str, prior: CurveTable, *, heartbeat: bool) -> optuna.Study:
    """The study as one worker process sees it: its own storage connection and pruner."""
    kwargs = {"heartbeat_interval": 1, "grace_period": 1} if heartbeat else {}
    storage = optuna.storages.RDBStorage(url, **kwargs)
    return optuna.create_study(
        study_name="warm",
        storage=storage,
        pruner=LCPredictionPruner(prior=prior),
        load_if_exists=True,
    )


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
@pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")  # ask/tell, no optimize
@pytest.mark.parametrize("heartbeat", [True, False])
def test_worker_processes_share_one_anchor_where_heartbeats_fail_dead_trials(
    tmp_path: Path, heartbeat: bool
) -> None:
    prior = make_table(60, 12, seed=3)
    url = f"sqlite:///{tmp_path / 'warm.db'}"
    first = _worker(url, prior, heartbeat=heartbeat)
    second = _worker(url, prior, heartbeat=heartbeat)
    _, pruned = _run(first, HOPELESS)
    assert not pruned  # trial 0, the anchor of both rules
    _, pruned = _run(second, HOPELESS)
    # With heartbeats trial 0 anchors the whole study and the other process's hopeless trial
    # stops on the prior's word; without, each process keeps its own first trial.
    assert pruned is heartbeat


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
@pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")  # ask/tell, no optimize
def test_when_the_anchor_s_process_dies_heartbeats_hand_the_anchor_on(tmp_path: Path) -> None:
    prior = make_table(60, 12, seed=3)
    url = f"sqlite:///{tmp_path / 'warm.db'}"
    dead = _worker(url, prior, heartbeat=True)
    live = _worker(url, prior, heartbeat=True)
    anchor, pruned = _run(dead, [50.0])
    assert not pruned
    dead._storage.record_heartbeat(anchor._trial_id)  # then its process dies
    second, pruned = _run(live, HOPELESS)
    assert pruned  # trial 0 is still the anchor: it may be alive
    live.tell(second, state=optuna.trial.TrialState.PRUNED)
    time.sleep(2.1)  # past the grace period
    optuna.storages.fail_stale_trials(live)
    assert live.trials[anchor.number].state == optuna.trial.TrialState.FAIL
    # The lowest unfinished trial now anchors the study: trial 2, started next.
    third, pruned = _run(live, HOPELESS)
    assert third.number == 2 and not pruned
    _, pruned = _run(live, HOPELESS)
    assert pruned


def test_without_a_prior_nothing_is_pruned_before_the_startup_trials() -> None:
    study = optuna.create_study(pruner=LCPredictionPruner())
    _run(study, [50.0, 49.0])
    _, pruned = _run(study, [50.0, 49.0, 48.0])
    assert not pruned  # the same hopeless trial: no model yet


def test_a_prior_with_other_parameter_names_works_on_curve_features() -> None:
    prior = make_table(60, 12, seed=3)
    prior = CurveTable(
        params={"momentum": prior.params["lr"]},  # nothing in common with the study's space
        steps=prior.steps,
        curves=prior.curves,
        name="other-space",
    )
    pruner = LCPredictionPruner(prior=prior)
    study = optuna.create_study(pruner=pruner)
    _run(study, HOPELESS)
    _, pruned = _run(study, HOPELESS)
    assert pruned
    # The models see the curve only: no hyperparameter column matched.
    assert pruner._hyper_names() == []
    k, model = max({**pruner._models, **pruner._classical}.items())  # the model that decided
    assert model.selected.model.n_features_in_ == k + 1  # the curve up to its step, nothing else


def test_matching_parameters_are_used_as_features() -> None:
    prior = make_table(60, 12, seed=3)  # has lr, width and activation
    curves = PriorCurves([prior])
    assert curves.matching_params(SPACE) == ["lr", "width"]
    space = {"lr": FloatDistribution(1e-4, 1e-1, log=True), "width": FloatDistribution(1, 2)}
    assert curves.matching_params(space) == ["lr", "width"]  # both numeric: compatible
    categorical = {"width": optuna.distributions.CategoricalDistribution([16, 32, 64])}
    assert curves.matching_params(categorical) == []  # numeric in the prior: not compatible


def test_steps_map_by_fraction_of_training() -> None:
    # A prior of 20 steps whose value at step j is j; a study of 10 steps (target step 9).
    table = CurveTable(
        params={"x": np.arange(3.0)},
        steps=np.arange(20),
        curves=np.tile(np.arange(20.0), (3, 1)),
    )
    curves = PriorCurves([table]).curves_at(np.array([0, 4, 9]), target=9)
    # Study step s is fraction (s + 1) / 10, i.e. prior step 2 (s + 1) - 1.
    np.testing.assert_allclose(curves, np.tile([1.0, 9.0, 19.0], (3, 1)))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ([], "the prior is empty"),
        (3, "a prior item must be a curve table"),
        ("sqlite:///nothing.db:", "expected a CSV table or STORAGE_URL:STUDY_NAME"),
        ("no_such_table.csv", "prior 'no_such_table.csv'"),
    ],
)
def test_unreadable_priors_raise_clear_errors(spec: Any, message: str) -> None:
    with pytest.raises(PriorError, match=message):
        LCPredictionPruner(prior=spec)


def test_a_prior_from_a_missing_database_is_an_error_that_creates_nothing(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "old.db"
    with pytest.raises(PriorError, match="no SQLite database at"):
        LCPredictionPruner(prior=f"sqlite:///{missing}:mlpf-v1")
    assert not missing.exists()


def test_a_prior_without_a_usable_run_is_an_error_at_construction(tmp_path: Path) -> None:
    table = make_table(5, 6)
    curves = table.curves.copy()
    curves[:, -1] = np.nan  # no run has a final value
    table = _with_curves(table, curves)
    with pytest.raises(PriorError, match="has no run with a finite final value"):
        LCPredictionPruner(prior=table)
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'old.db'}", study_name="old")
    with pytest.raises(PriorError, match="prior study 'old' has no COMPLETE trial"):
        LCPredictionPruner(prior=study)
    with pytest.raises(PriorError, match="no study 'missing'"):
        LCPredictionPruner(prior=f"sqlite:///{tmp_path / 'old.db'}:missing")


def test_priors_from_files_and_studies(tmp_path: Path) -> None:
    table = make_table(20, 8, seed=1)
    write_curve_table(table, tmp_path / "old.csv")
    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = optuna.create_study(storage=url, study_name="mlpf-v1")
    for row in range(10):
        trial = old.ask(SPACE)
        for step, value in enumerate(table.curves[row]):
            trial.report(float(value), step)
        old.tell(trial, float(table.curves[row, -1]))
    for row in range(10, 15):  # stopped after 3 steps
        trial = old.ask(SPACE)
        for step, value in enumerate(table.curves[row, :3]):
            trial.report(float(value), step)
        old.tell(trial, state=optuna.trial.TrialState.PRUNED)
    prior = load_prior([str(tmp_path / "old.csv"), f"{url}:mlpf-v1", old])
    # The CSV's 20 runs, and the study's 10 COMPLETE trials twice (by name and as a Study);
    # its PRUNED trials train nothing, but are counted (the prior's top decile ranks them last).
    assert prior.n_rows == 40 and prior.n_steps == 8
    assert prior.n_without_final == 10


def test_runs_that_stopped_themselves_train_as_prior_runs(tmp_path: Path) -> None:
    """An objective with its own early stopping: its COMPLETE trials end before the last step
    and return their best loss. Each of them is a prior run with that value as its final."""
    table = make_table(12, 10, seed=2)
    old = optuna.create_study(storage=f"sqlite:///{tmp_path / 'old.db'}", study_name="old")
    values, stops = [], []
    for row in range(12):
        stops.append(10 if row < 6 else 4 + row % 5)  # 6 of them run to the last step
        trial = old.ask(SPACE)
        for step in range(stops[-1]):
            trial.report(float(table.curves[row, step]), step)
        values.append(float(np.min(table.curves[row, : stops[-1]])))
        old.tell(trial, values[-1])
    csv = tmp_path / "old.csv"
    write_curve_table(study_to_curve_table(old), csv)
    for spec in (old, str(csv)):
        prior = load_prior(spec)
        # Before tables carried each trial's value, the 6 that stopped themselves had no
        # final and trained nothing.
        assert prior.n_rows == 12 and prior.n_without_final == 0
        np.testing.assert_allclose(prior.finals, values)
        # A run trains the steps it reached, as the study's own finished trials do.
        at = prior.curves_at(np.arange(10), target=9)
        assert np.isfinite(at).sum(axis=1).tolist() == stops
        assert prior.curves_at(np.arange(5), target=4)[6].tolist()[:2] == pytest.approx(
            table.curves[6, [1, 3]].tolist()
        )  # at half the length, step s of 5 is step 2s + 1 of 10
    study = optuna.create_study(pruner=LCPredictionPruner(prior=old))
    _run(study, HOPELESS)  # the anchor
    second, pruned = _run(study, HOPELESS)
    assert pruned and study.trials[second.number].user_attrs["lcpred:n_train"] == 12.0
    # Later, only the runs still going train a step's model: at step 8, the six that ran on.
    best = int(np.argmin(values[:6]))
    third, pruned = _run(study, table.curves[best].tolist())
    attrs = study.trials[third.number].user_attrs
    assert not pruned and attrs["lcpred:step"] == 8.0 and attrs["lcpred:n_train"] == 6.0


def test_the_prior_check_skips_steps_too_few_prior_runs_reached() -> None:
    """The prior's weight is checked at fractions of training that most runs of a prior that
    stopped itself early never reached: those checks are left out, not fitted on one run."""
    table = make_table(12, 10, seed=4)
    curves = table.curves.copy()
    curves[1:, 3:] = np.nan  # all but one stopped themselves after 3 of 10 steps
    prior = CurveTable(table.params, table.steps, curves, finals=np.nanmin(curves, axis=1))
    pruner = LCPredictionPruner(prior=prior)
    study = optuna.create_study(pruner=pruner)
    anchor, _ = _run(study, table.curves[0].tolist())
    study.tell(anchor, float(table.curves[0, -1]))
    _run(study, HOPELESS)  # decides after the anchor finished: the weight is checked
    assert pruner._prior is not None and pruner._prior.n_checked == 1
    assert 0.0 < pruner._prior.weight <= 1.0


def _with_curves(table: CurveTable, curves: np.ndarray) -> CurveTable:
    return CurveTable(params=table.params, steps=table.steps, curves=curves, name=table.name)


def _decide_after(
    prior: CurveTable, own: CurveTable, rows: list[int]
) -> tuple[LCPredictionPruner, dict[str, Any]]:
    """A study with ``prior`` whose own trials replay ``own``'s ``rows`` to the end; returns
    the pruner and the annotations of one more trial's decision at step 2."""
    pruner = LCPredictionPruner(prior=prior, n_startup_trials=3, keep_top=0.0)
    study = optuna.create_study(pruner=pruner)
    for row in rows:
        study.enqueue_trial({"lr": float(own.params["lr"][row]), "width": 32})
        trial = study.ask(SPACE)
        for step, value in enumerate(own.curves[row]):
            trial.report(float(value), step)
        study.tell(trial, float(own.curves[row, -1]))
    study.enqueue_trial({"lr": 1e-2, "width": 32})
    trial = study.ask(SPACE)
    for step in range(3):
        trial.report(float(own.curves[rows[0], step]), step)
        trial.should_prune()
    return pruner, study.trials[trial.number].user_attrs


def test_the_prior_weight_falls_when_the_study_contradicts_it() -> None:
    prior = make_table(80, 12, seed=3)
    same_task = make_table(80, 12, seed=4)
    agreeing, _ = _decide_after(prior, same_task, list(range(6)))
    # The study's runs land where the prior's models expect: the prior keeps its weight.
    assert agreeing._prior is not None and agreeing._prior.weight >= 0.8
    # Another task: the same early curves, but every run gets stuck at 2.0 from step 3 on.
    other_task = make_table(80, 12, seed=4)
    stuck = other_task.curves.copy()
    stuck[:, 3:] = 2.0
    other_task = _with_curves(other_task, stuck)
    contradicted, _ = _decide_after(prior, other_task, list(range(6)))
    assert contradicted._prior is not None
    assert contradicted._prior.weight < 0.2 and contradicted._prior.n_used == 0
    # Switched off: the models learn from the study's own trials only.
    assert contradicted._hyper_names() == ["lr", "width"]


def test_a_pruner_reused_for_another_study_weighs_its_prior_afresh() -> None:
    prior = make_table(80, 12, seed=3)
    other_task = make_table(80, 12, seed=4)
    stuck = other_task.curves.copy()
    stuck[:, 3:] = 2.0
    other_task = _with_curves(other_task, stuck)
    contradicted, _ = _decide_after(prior, other_task, list(range(6)))
    assert contradicted._prior is not None and contradicted._prior.n_used == 0  # switched off
    # The same pruner on a new study: the prior is in use again from its first trials on.
    study = optuna.create_study(pruner=contradicted)
    _, pruned = _run(study, HOPELESS)
    assert not pruned  # the anchor
    second, pruned = _run(study, HOPELESS)
    assert pruned and study.trials[second.number].user_attrs["lcpred:prior_weight"] == 1.0


def test_prior_options_are_checked() -> None:
    with pytest.raises(ValueError, match="prior_size must be an integer >= 1, got 0"):
        LCPredictionPruner(prior=make_table(), prior_size=0)


def test_a_prior_from_the_same_task_sets_the_bar_at_its_top_decile() -> None:
    prior = make_table(80, 12, seed=3)
    same_task = make_table(80, 12, seed=4)
    # Three of the study's own runs finish, none of them among the task's best.
    middle = np.argsort(same_task.final_values)[38:41].tolist()
    pruner, attrs = _decide_after(prior, same_task, middle)
    assert pruner._prior is not None and pruner._prior.weight == 1.0
    in_use = prior.final_values[pruner._prior.rows()]
    # Beating the best of three middling runs is not enough: a trial must be able to reach
    # what the prior's good runs reached.
    assert attrs["lcpred:threshold"] == pytest.approx(np.quantile(in_use, 0.1))
    assert attrs["lcpred:threshold"] < same_task.final_values[middle].min()


def test_a_prior_of_only_good_runs_does_not_set_the_bar() -> None:
    # An earlier campaign that a sampler steered to the good region: the same task (its
    # runs stay in use as training rows), but they end far better than this study's do.
    task = make_table(200, 12, seed=3)
    best = np.argsort(task.final_values)[:40]
    prior = CurveTable(
        params={k: v[best] for k, v in task.params.items()},
        steps=task.steps,
        curves=task.curves[best],
        name="tuned",
    )
    own = make_table(80, 12, seed=4)
    rows = list(range(8))
    pruner, attrs = _decide_after(prior, own, rows)
    assert pruner._prior is not None and pruner._prior.n_used > 0
    # The study's finished trials are significantly worse than the prior's runs, so the bar
    # is the study's own best.
    assert attrs["lcpred:threshold"] == pytest.approx(own.final_values[rows].min())


@pytest.mark.parametrize("n_startup_trials", [1, 2])
@pytest.mark.parametrize("background", [False, True])
def test_a_prior_switched_off_leaves_no_model_behind(
    n_startup_trials: int, background: bool
) -> None:
    # Curve features only (no parameter in common), and a study whose finished trials get
    # stuck where the prior's runs never do: the prior is switched off after the study's second
    # finished trial, too few for a model of the study's own.
    prior = make_table(60, 12, seed=3)
    prior = CurveTable(
        params={"momentum": prior.params["lr"]},
        steps=prior.steps,
        curves=prior.curves,
        name="other-task",
    )
    best = prior.curves[np.argsort(prior.final_values)[:2]]
    pruner = LCPredictionPruner(
        prior=prior, n_startup_trials=n_startup_trials, fit_in_background=background
    )
    study = optuna.create_study(pruner=pruner)
    stuck = np.concatenate([best[0, :3], np.full(9, 1.2)])
    first, _ = _run(study, stuck.tolist())
    study.tell(first, 1.2)
    # The second trial starts like the prior's best runs and is decided by models fitted with
    # the prior (still in use, at a lower weight) ...
    second, pruned = _run(study, best[1, :6].tolist())
    assert pruner.wait_for_fits(timeout=60)
    assert not pruned and pruner._models
    assert pruner._prior is not None and pruner._prior.n_used > 0
    # ... then it gets stuck too.
    for step in range(6, 12):
        second.report(1.2, step)
    study.tell(second, 1.2)
    trial, pruned = _run(study, HOPELESS)
    assert pruner._prior.n_used == 0
    # The models fitted with the prior must not decide now that it is off: they learned from
    # a prior found wrong (and an SVR among them, fed the study's parameters too, raised a
    # shape error). Nothing decides until the study has a model of its own.
    assert not pruned
    assert "lcpred:prob_improve" not in study.trials[trial.number].user_attrs


def test_prior_features_are_cached_by_the_search_space_not_by_the_encoder_object() -> None:
    # An encoder is replaced when a study is read afresh (another study, say), and the new one
    # may reuse the freed one's id: the cached features must follow the distributions.
    from optuna_lcpred._search_space import ParamEncoder
    from optuna_lcpred.prior import PriorTrainingSet

    prior = PriorTrainingSet(load_prior(make_table(30, 12, seed=3)), size=300)
    steps = np.arange(4)

    def encoder(high: float) -> ParamEncoder:
        made = ParamEncoder()
        made.update([{"lr": FloatDistribution(1e-4, high, log=True)}])
        return made

    narrow = prior.features(steps, 11, encoder(1e-1), ["lr"])[1]
    wide = prior.features(steps, 11, encoder(1.0), ["lr"])[1]
    assert not np.allclose(narrow, wide)  # the same name on another range encodes otherwise
    assert prior.features(steps, 11, encoder(1e-1), ["lr"])[1] is narrow  # an equal space
    assert not pickle.loads(pickle.dumps(prior))._features  # a copy fills its own cache


def test_two_study_objects_of_one_study_share_a_pruner_as_one(tmp_path: Path) -> None:
    # optuna.load_study in two threads of one process gives two Study objects (two storage
    # objects) for one study; a pruner shared by them must treat them as that one study, not
    # start afresh at each switch (here: it would make each trial its own anchor and stop
    # nothing on the prior's word).
    prior = make_table(60, 12, seed=3)
    url = f"sqlite:///{tmp_path / 'one.db'}"
    pruner = LCPredictionPruner(prior=prior)
    optuna.create_study(study_name="one", storage=url)
    first = optuna.load_study(study_name="one", storage=url, pruner=pruner)
    second = optuna.load_study(study_name="one", storage=url, pruner=pruner)
    anchor, pruned = _run(first, HOPELESS)
    assert not pruned  # trial 0 anchors the study, still running
    _, pruned = _run(second, HOPELESS)
    assert pruned
    _, pruned = _run(first, HOPELESS)
    assert pruned
    assert pruner._anchor == anchor.number


def _study_with(
    prior: CurveTable, complete: list[float], pruned: list[float]
) -> tuple[LCPredictionPruner, float, str]:
    """A study with ``prior`` whose finished trials are ``complete`` (finals) and ``pruned``
    (predicted finals of trials this pruner stopped at step 2); returns its pruner and the
    threshold of one more trial's decision at step 2, and where that came from."""
    pruner = LCPredictionPruner(prior=prior)
    study = optuna.create_study(pruner=pruner)
    finished = np.flatnonzero(np.isfinite(prior.final_values))
    row = int(finished[np.argsort(prior.final_values[finished])[len(finished) // 2]])
    curve = prior.curves[row]
    params = {"lr": float(prior.params["lr"][row]), "width": int(prior.params["width"][row])}
    for final in complete:
        values = {step: float(v) for step, v in enumerate(curve[:-1])}
        study.add_trial(
            optuna.trial.create_trial(
                params=params,
                distributions=SPACE,
                value=final,
                intermediate_values={**values, len(curve) - 1: final},
            )
        )
    for predicted in pruned:
        study.add_trial(
            optuna.trial.create_trial(
                state=optuna.trial.TrialState.PRUNED,
                params=params,
                distributions=SPACE,
                intermediate_values={step: float(curve[step]) for step in range(3)},
                user_attrs={"lcpred:pred_final": predicted, "lcpred:pruned_at": 2.0},
            )
        )
    trial, _ = _run(study, curve[:3].tolist(), params)
    attrs = study.trials[trial.number].user_attrs
    return pruner, attrs["lcpred:threshold"], attrs["lcpred:threshold_from"]


@pytest.mark.parametrize("n_pruned", [20, 29])
def test_the_prior_bar_goes_when_too_few_of_the_study_s_runs_reach_it(n_pruned: int) -> None:
    # A study a little worse than its prior (another dataset version): its runs look like the
    # prior's, but none reaches the prior's top decile. The bar would stop every run that
    # could become its best, and with nothing completing, nothing would change; a tenth of
    # the prior's runs reach it, so after enough finished trials none of which did, it goes.
    prior = make_table(60, 12, seed=3)
    finals = np.sort(prior.final_values)
    bar = float(np.quantile(finals, 0.1))
    predicted = np.resize(finals[finals > bar + 0.05], n_pruned).tolist()  # like the rest
    anchor = float(finals[len(finals) // 2])  # the median run's
    pruner, threshold, source = _study_with(prior, [anchor], predicted)
    if n_pruned == 20:  # 0.9 ** 21 = 0.11: no evidence yet against the prior's top decile
        assert threshold == pruner._prior_good_final == pytest.approx(bar, rel=0.01)
        assert source == "prior top decile"
    else:  # 0.9 ** 30 = 0.04: the study's own best is the bar
        assert threshold == pytest.approx(anchor) and pruner._prior_good_final is None
        assert source == "study"


def test_prior_runs_without_a_final_count_in_the_prior_bar() -> None:
    # A prior exported from a pruned study: 10 complete runs (its survivors) and runs it
    # stopped. Its top decile is taken over all its runs, those without a final ranked last;
    # the survivors' own top decile would be about that study's best run.
    full = make_table(100, 12, seed=3)
    order = np.argsort(full.final_values)
    curves = full.curves.copy()
    curves[order[10:], 4:] = np.nan  # all but the 10 best were stopped after 4 steps
    survivors = np.sort(full.final_values[order[:10]])

    def bar_with(n_stopped: int) -> float | None:
        prior = _with_curves(full, curves).subset(
            np.concatenate([order[:10], order[10:][:n_stopped]])
        )
        anchor = float(np.sort(prior.final_values[np.isfinite(prior.final_values)])[5])
        pruner, _, _ = _study_with(prior, [anchor], [])
        return pruner._prior_good_final

    assert bar_with(0) == pytest.approx(np.quantile(survivors, 0.1))  # about the best
    assert bar_with(20) == pytest.approx(survivors[2] + 0.9 * (survivors[3] - survivors[2]))
    assert bar_with(90) is None  # its top decile includes runs it stopped: no bar
