"""PredictedFinalSampler: base samplers see pruned trials at their predicted final value."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.samplers import BaseSampler
from optuna.trial import TrialState

from optuna_lcpred import LCPredictionPruner
from optuna_lcpred import PredictedFinalSampler
from optuna_lcpred._trials import sampler_view


SPACE = {"x": FloatDistribution(0.0, 1.0)}


class _Recorder(BaseSampler):
    """Samples at random and records what the study looked like to it."""

    def __init__(self) -> None:
        self.seen: list[dict[int, tuple[str, float | None]]] = []
        self._random = optuna.samplers.RandomSampler(seed=0)

    def infer_relative_search_space(self, study: Any, trial: Any) -> dict[str, Any]:
        return {}

    def sample_relative(self, study: Any, trial: Any, search_space: Any) -> dict[str, Any]:
        return {}

    def sample_independent(self, study: Any, trial: Any, name: str, dist: Any) -> Any:
        finished = study._get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        pruned = study._get_trials(deepcopy=False, states=(TrialState.PRUNED,))
        self.seen.append(
            {t.number: (t.state.name, t.value) for t in finished}
            | {t.number: (t.state.name, None) for t in pruned}
        )
        return self._random.sample_independent(study, trial, name, dist)


def _study(sampler: BaseSampler) -> optuna.Study:
    study = optuna.create_study(sampler=sampler, pruner=LCPredictionPruner())
    # Trial 0 COMPLETE; trial 1 pruned for its prediction (as the pruner marks it, with
    # lcpred:pruned_at at its last step); trial 2 pruned by someone else.
    t0 = study.ask(SPACE)
    study.tell(t0, 1.5)
    t1 = study.ask(SPACE)
    t1.report(3.0, 0)
    t1.set_user_attr("lcpred:pred_final", 2.25)
    t1.set_user_attr("lcpred:pruned_at", 0.0)
    study.tell(t1, state=TrialState.PRUNED)
    t2 = study.ask(SPACE)
    t2.report(9.0, 0)
    study.tell(t2, state=TrialState.PRUNED)
    # Trial 3 was predicted to do well at step 0, then diverged: pruned for the NaN.
    t3 = study.ask(SPACE)
    t3.report(1.2, 0)
    t3.set_user_attr("lcpred:pred_final", 1.0)
    t3.report(float("nan"), 1)
    study.tell(t3, state=TrialState.PRUNED)
    # Trial 4 was kept by a prediction at step 0, then stopped by the objective at step 1.
    t4 = study.ask(SPACE)
    t4.report(1.1, 0)
    t4.set_user_attr("lcpred:pred_final", 0.9)
    t4.report(1.0, 1)
    study.tell(t4, state=TrialState.PRUNED)
    return study


def test_the_view_shows_predictions_for_this_pruners_pruned_trials_only() -> None:
    recorder = _Recorder()
    study = _study(PredictedFinalSampler(recorder))
    study.ask(SPACE)  # the base sampler looks at the study
    seen = recorder.seen[-1]
    # COMPLETE trials with their real value; pruned with a prediction: COMPLETE at it ...
    assert seen[0] == ("COMPLETE", 1.5)
    assert seen[1] == ("COMPLETE", 2.25)
    # ... and pruned by another pruner (no prediction): still PRUNED.
    assert seen[2] == ("PRUNED", None)
    # A diverged run is not shown at the favourable prediction made before it diverged, nor
    # is a run that something else stopped after a prediction kept it.
    assert seen[3] == ("PRUNED", None)
    assert seen[4] == ("PRUNED", None)
    # The study itself is untouched.
    states = [t.state for t in study.get_trials()]
    assert states[:5] == [TrialState.COMPLETE] + [TrialState.PRUNED] * 4
    assert study.best_value == 1.5


def test_the_view_reads_new_trials_at_every_ask() -> None:
    recorder = _Recorder()
    study = _study(PredictedFinalSampler(recorder))
    study.ask(SPACE)
    t5 = study.ask(SPACE)
    t5.report(1.0, 0)
    t5.set_user_attr("lcpred:pred_final", 0.5)
    t5.set_user_attr("lcpred:pruned_at", 0.0)
    study.tell(t5, state=TrialState.PRUNED)
    study.ask(SPACE)
    # The trial pruned in between is in the next view, as COMPLETE at its prediction.
    assert recorder.seen[-1][t5.number] == ("COMPLETE", 0.5)


def test_writes_go_to_the_real_study() -> None:
    study = _study(optuna.samplers.RandomSampler())
    view = sampler_view(study, "lcpred:pred_final", optuna.samplers.RandomSampler())
    trial = study.ask(SPACE)
    view._storage.set_trial_system_attr(trial._trial_id, "note", "from the view")
    assert study.trials[trial.number].system_attrs["note"] == "from the view"


def test_tpe_with_constant_liar_in_parallel_workers(tmp_path: Any) -> None:
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(str(tmp_path / "j.log")))
    tpe = optuna.samplers.TPESampler(seed=0, constant_liar=True, n_startup_trials=4)
    study = optuna.create_study(
        storage=storage, sampler=PredictedFinalSampler(tpe), pruner=LCPredictionPruner(3)
    )

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        for step in range(8):
            trial.report(x + 1.0 / (step + 1), step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return x + 0.125

    study.optimize(objective, n_trials=24, n_jobs=4)
    trials = study.get_trials()
    # Four threads, one storage: every trial finished, some pruned with a prediction ...
    assert len(trials) == 24
    assert {t.state for t in trials} <= {TrialState.COMPLETE, TrialState.PRUNED}
    assert any("lcpred:pred_final" in t.user_attrs for t in trials if t.state.name == "PRUNED")
    # ... and (Optuna 5) TPE's constant liar wrote its relative parameters on the real trials.
    if int(optuna.__version__.split(".")[0]) >= 5:
        assert any(k.startswith("tpe:relative_params") for t in trials for k in t.system_attrs)


def test_gp_sampler_learns_through_the_view() -> None:
    pytest.importorskip("torch")
    gp = optuna.samplers.GPSampler(seed=0, n_startup_trials=2)
    study = _study(PredictedFinalSampler(gp))
    for _ in range(2):
        trial = study.ask(SPACE)
        study.tell(trial, trial.params["x"])
    # GP fits on COMPLETE trials only: the predicted one counts among them in the view.
    view = sampler_view(study, "lcpred:pred_final", gp)
    assert len(view._get_trials(states=(TrialState.COMPLETE,))) == 4


def test_forwards_every_hook_and_checks_its_argument() -> None:
    calls: list[str] = []

    class Spy(optuna.samplers.RandomSampler):
        def before_trial(self, study: Any, trial: Any) -> None:
            calls.append("before")

        def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
            calls.append("after")

        def reseed_rng(self) -> None:
            calls.append("reseed")

    sampler = PredictedFinalSampler(Spy())
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    sampler.reseed_rng()
    assert calls == ["before", "after", "reseed"]
    with pytest.raises(TypeError, match="base_sampler must be an optuna sampler, got str"):
        PredictedFinalSampler("tpe")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="already a PredictedFinalSampler"):
        PredictedFinalSampler(sampler)


# Optuna's own sampler test suites (optuna.testing, Optuna >= 5), where they apply.
try:
    from optuna.testing.pytest_samplers import BasicSamplerTestCase
    from optuna.testing.pytest_samplers import RelativeSamplerTestCase

    _HAVE_SUITES = True
except ImportError:  # Optuna 4 ships no sampler suites

    class BasicSamplerTestCase:  # type: ignore[no-redef]
        pass

    class RelativeSamplerTestCase:  # type: ignore[no-redef]
        pass

    _HAVE_SUITES = False


@pytest.mark.skipif(not _HAVE_SUITES, reason="needs optuna.testing.pytest_samplers")
class TestOptunaSamplerSuites(BasicSamplerTestCase, RelativeSamplerTestCase):  # type: ignore[misc,valid-type]
    @pytest.fixture
    def sampler(self) -> Callable[[], BaseSampler]:
        return lambda: PredictedFinalSampler(
            optuna.samplers.TPESampler(multivariate=True, n_startup_trials=0, seed=0)
        )


def test_a_sampler_reused_for_study_after_study_keeps_only_the_latest_views() -> None:
    import gc
    import weakref

    from optuna_lcpred import sampler as sampler_module

    wrapper = PredictedFinalSampler(optuna.samplers.RandomSampler(seed=0))
    storages = []
    for _ in range(sampler_module._MAX_VIEWS + 3):
        study = optuna.create_study(sampler=wrapper)
        study.optimize(lambda t: t.suggest_float("x", 0.0, 1.0), n_trials=2)
        storages.append(weakref.ref(study._storage))
        del study
    gc.collect()
    assert len(wrapper._views) == sampler_module._MAX_VIEWS
    # The oldest studies' storages are no longer held; the latest ones still serve their views.
    assert storages[0]() is None and storages[-1]() is not None
