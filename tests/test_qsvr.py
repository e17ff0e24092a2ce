"""The annealer-trained SVR: its QUBO, decoding, bias, bagging, and the pruner's use of it."""

from __future__ import annotations

import dataclasses
import itertools
import threading
from typing import Any

import dimod
import numpy as np
import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from optuna_lcpred import LCPredictionPruner
from optuna_lcpred.features import RobustScale
from optuna_lcpred.predictors.qsvr import QSVRPredictor
from optuna_lcpred.predictors.qsvr import bit_weights
from optuna_lcpred.predictors.qsvr import decode_samples
from optuna_lcpred.predictors.qsvr import dual_objective
from optuna_lcpred.predictors.qsvr import qsvr_bqm
from optuna_lcpred.predictors.qsvr import svr_intercept
from optuna_lcpred.predictors.svr import rbf_kernel


def _problem(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    points = rng.normal(size=(n, 3))
    return rbf_kernel(points, points, 0.5), rng.uniform(size=n)


@pytest.mark.parametrize("beta", [0.0, 0.7])
def test_bqm_energy_is_the_penalised_dual_objective(beta: float) -> None:
    kernel, y = _problem(5)
    weights = bit_weights(3, 0.5, 0.2)
    bqm = qsvr_bqm(kernel, y, weights=weights, epsilon=0.05, xi=2.0, beta=beta)
    z = np.random.default_rng(1).integers(0, 2, size=(200, len(bqm)))
    alpha, alpha_star = decode_samples(z, 5, weights)
    direct = dual_objective(alpha, alpha_star, kernel, y, epsilon=0.05, xi=2.0, beta=beta)
    # Every bit vector has the energy of the dual objective of the coefficients it encodes.
    np.testing.assert_allclose(bqm.energies((z, list(range(len(bqm))))), direct, atol=1e-12)


def test_exact_solver_minimum_is_the_brute_force_minimum() -> None:
    kernel, y = _problem(2, seed=3)
    weights = bit_weights(2, 2.0, 1.0)
    bqm = qsvr_bqm(kernel, y, weights=weights, epsilon=0.1, xi=0.5, beta=0.1)
    every = np.array(list(itertools.product([0, 1], repeat=len(bqm))))
    alpha, alpha_star = decode_samples(every, 2, weights)
    brute = dual_objective(alpha, alpha_star, kernel, y, epsilon=0.1, xi=0.5, beta=0.1)
    # The exact solver's ground state is the best of all 2^8 coefficient settings.
    assert dimod.ExactSolver().sample(bqm).first.energy == pytest.approx(brute.min(), abs=1e-12)


def test_decoding_reads_the_bits_of_each_coefficient() -> None:
    weights = bit_weights(2, 0.5, 0.0)  # 1, 1/2
    z = np.array([[1, 0, 0, 1, 0, 0, 1, 1]])  # a = (1, 1/2), a* = (0, 3/2)
    alpha, alpha_star = decode_samples(z, 2, weights)
    np.testing.assert_array_equal(alpha, [[1.0, 0.5]])
    np.testing.assert_array_equal(alpha_star, [[0.0, 1.5]])
    with pytest.raises(ValueError, match="samples need 8 columns"):
        decode_samples(np.zeros((1, 6)), 2, weights)


def test_bias_uses_the_sign_of_each_coefficient_set() -> None:
    kernel = np.eye(2)
    y = np.array([1.0, 0.0])
    eps = 0.1
    # A free a_n: the point sits on the upper edge, b = y_n - eps - f0(x_n) = 1 - 0.1 - 0.5.
    assert svr_intercept(
        np.array([0.5, 0.0]), np.zeros(2), kernel, y, epsilon=eps, c_max=1.0
    ) == pytest.approx(0.4)
    # A free a*_n: the lower edge, b = y_n + eps - f0(x_n) = 0 + 0.1 + 0.5.
    assert svr_intercept(
        np.zeros(2), np.array([0.0, 0.5]), kernel, y, epsilon=eps, c_max=1.0
    ) == pytest.approx(0.6)
    # Both: the mean of the two estimates (0.4 and 0.6), not -eps for both (the reference bug).
    assert svr_intercept(
        np.array([0.5, 0.0]), np.array([0.0, 0.5]), kernel, y, epsilon=eps, c_max=1.0
    ) == pytest.approx(0.5)
    # At the bound (not free) they count only when nothing is free; with no support vector at
    # all, b is the mean residual.
    assert svr_intercept(
        np.array([1.0, 0.0]), np.zeros(2), kernel, y, epsilon=eps, c_max=1.0
    ) == pytest.approx(-0.1)
    assert svr_intercept(np.zeros(2), np.zeros(2), kernel, y, epsilon=eps, c_max=1.0) == 0.5


def _curves(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = np.sort(rng.uniform(1, 2, (n, 4)), axis=1)[:, ::-1]
    return X, X[:, -1] - 0.1 + 0.01 * rng.standard_normal(n)


def test_exact_solver_predictions_match_the_decoded_coefficients() -> None:
    X, y = _curves(4)
    model = QSVRPredictor(
        sampler="exact", n_bits=1, max_qubits=8, n_solutions=1, random_state=0
    ).fit(X, y)
    scaled = model.scaler_.transform(model._features(*model._split(X)))
    phi = RobustScale(model.center_, model.scale_).forward(y)
    low, span = model.target_range_
    t = (phi - low) / span
    weights = bit_weights(1, model.base, model.k0)
    probe = _curves(3, seed=5)[0]
    probe_scaled = model.scaler_.transform(model._features(*model._split(probe)))
    by_hand = np.zeros(len(probe))
    for m, rows in enumerate(model.member_rows_):
        kernel = rbf_kernel(scaled[rows], scaled[rows], model.gamma_)
        bqm = qsvr_bqm(
            kernel, t[rows], weights=weights, epsilon=model.epsilon, xi=model.xi, beta=model.beta
        )
        ground = dimod.ExactSolver().sample(bqm).first.sample
        alpha, alpha_star = decode_samples(
            np.array([[ground[i] for i in range(len(bqm))]]), len(rows), weights
        )
        coef = alpha[0] - alpha_star[0]
        bias = svr_intercept(
            alpha[0], alpha_star[0], kernel, t[rows], epsilon=model.epsilon, c_max=weights.sum()
        )
        model_coef = np.zeros(len(y))
        model_coef[model.support_] = model.dual_coef_[m]
        # Each model holds exactly the ground state's coefficients and bias ...
        np.testing.assert_allclose(model_coef[rows], coef, atol=1e-12)
        assert model.intercept_[m] == pytest.approx(bias)
        cross = rbf_kernel(probe_scaled, scaled[rows], model.gamma_)
        by_hand += model.model_weights_[m] * (low + span * (cross @ coef + bias))
    # ... and the prediction is their weighted expansion, mapped back to the loss scale.
    expected = RobustScale(model.center_, model.scale_).inverse(by_hand)
    np.testing.assert_allclose(model.predict(probe), expected, rtol=1e-10)


def test_bagging_respects_the_qubit_budget() -> None:
    X, y = _curves(50)
    model = QSVRPredictor(max_qubits=36, num_reads=5, random_state=0).fit(X, y)
    # 36 qubits hold 6 rows at 3 bits per coefficient: 9 disjoint members cover the 50 rows.
    assert max(model.qubo_sizes_) <= 36 and len(model.qubo_sizes_) == 9
    seen = np.concatenate(model.member_rows_[:: model.n_solutions])
    assert sorted(seen.tolist()) == list(range(50))
    # Every row is predicted by models that did not see it, for cross-validation at no cost.
    assert np.isfinite(model.oob_prediction_).all()
    with pytest.raises(ValueError, match="max_qubits=4 cannot hold one row"):
        QSVRPredictor(max_qubits=4).fit(X, y)


def test_few_rows_use_k_fold_members_and_weights_from_held_out_error() -> None:
    X, y = _curves(12)
    model = QSVRPredictor(num_reads=10, n_estimators=4, random_state=0).fit(X, y)
    # 12 rows fit one QUBO: 4 members, each fitted on 9 rows and weighted on the other 3.
    assert model.qubo_sizes_ == [54, 54, 54, 54]
    assert all(len(rows) == 9 for rows in model.member_rows_)
    assert model.model_weights_.sum() == pytest.approx(1.0)
    assert np.isfinite(model.oob_prediction_).all()
    assert (model.predict_spread(X) >= 0).all()


def test_seeded_fits_repeat_themselves() -> None:
    X, y = _curves(15)
    a = QSVRPredictor(num_reads=10, random_state=3).fit(X, y).predict(X)
    b = QSVRPredictor(num_reads=10, random_state=3).fit(X, y).predict(X)
    np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------------------ the pruner


class _GatedSampler(dimod.Sampler):  # type: ignore[misc]
    """Simulated annealing that waits for a gate: holds a background fit open."""

    def __init__(self) -> None:
        from dwave.samplers import SimulatedAnnealingSampler

        self.gate = threading.Event()
        self._child = SimulatedAnnealingSampler()

    @property
    def parameters(self) -> dict[str, Any]:
        return {"num_reads": [], "seed": []}

    @property
    def properties(self) -> dict[str, Any]:
        return {}

    def sample(self, bqm: Any, **kwargs: Any) -> Any:
        assert self.gate.wait(60)
        return self._child.sample(bqm, **kwargs)

    def __deepcopy__(self, memo: Any) -> _GatedSampler:
        return self


def _run_finished_trials(study: optuna.Study, n: int) -> None:
    for i in range(n):
        trial = study.ask({"x": FloatDistribution(0.0, 1.0)})
        x = trial.params["x"]
        for step in range(6):
            trial.report(x + 1.0 / (step + 1) + 0.01 * i, step)
        study.tell(trial, x + 1.0 / 6 + 0.01 * i)


def test_the_pruner_never_waits_for_the_annealer() -> None:
    gated = _GatedSampler()
    pruner = LCPredictionPruner(3, predictor="qsvr", annealer=gated, qsvr_options={"num_reads": 5})
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(0), pruner=pruner)
    _run_finished_trials(study, 8)
    trial = study.ask({"x": FloatDistribution(0.0, 1.0)})
    trial.report(5.0, 2)
    # The annealer is blocked, yet the decision comes at once, from a classical model.
    assert trial.should_prune()
    assert pruner._models == {} and pruner._classical[2].selected.name != "qsvr"
    gated.gate.set()
    assert pruner.wait_for_fits(60)
    # Once the background fit is in, its selection decides: the annealer-trained SVR joined
    # the classical candidates (the classical SVR too) and was cross-validated like them.
    everyone = {"last", "linear", "powerlaw", "svr", "qsvr"}
    assert set(pruner._models[2].selected.cv_error) == everyone
    trial.report(5.0, 3)
    trial.should_prune()
    assert pruner.wait_for_fits(60)
    assert set(pruner._models[3].selected.cv_error) == everyone
    # Every fit is counted under the predictor it chose: per step, the classical stand-in that
    # decided while the annealer ran and the background fit.
    assert sum(pruner.selections.values()) == 4
    assert set(pruner.selections) <= everyone
    assert isinstance(study.trials[trial.number].user_attrs["lcpred:prob_improve"], float)


def test_a_stale_annealer_fit_gives_way_to_the_classical_models() -> None:
    gated = _GatedSampler()
    pruner = LCPredictionPruner(3, predictor="qsvr", annealer=gated, qsvr_options={"num_reads": 5})
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(0), pruner=pruner)
    _run_finished_trials(study, 8)
    gated.gate.set()

    def decide() -> float:
        trial = study.ask({"x": FloatDistribution(0.0, 1.0)})
        trial.report(1.5, 2)
        trial.should_prune()
        assert pruner.wait_for_fits(60)
        n_train = study.trials[trial.number].user_attrs["lcpred:n_train"]
        study.tell(trial, state=TrialState.FAIL)
        return float(n_train)

    decide()  # queues the step's first annealer fit, which lands on 8 runs
    assert pruner._models[2].n_rows == 8
    assert decide() == 8.0  # the annealer's fit is current: it decides
    gated.gate.clear()
    _run_finished_trials(study, 2)
    # The annealer's refit on 10 runs is held open; its fit on 8 runs is stale, so the classical
    # models, refitted on the 10 runs now finished, decide (not a model one refit behind).
    trial = study.ask({"x": FloatDistribution(0.0, 1.0)})
    trial.report(1.5, 2)
    trial.should_prune()
    assert study.trials[trial.number].user_attrs["lcpred:n_train"] == 10.0
    assert pruner._models[2].n_rows == 8
    gated.gate.set()
    assert pruner.wait_for_fits(60)
    assert pruner._models[2].n_rows == 10


class _Hopeless:
    """A fitted predictor that calls every trial hopeless."""

    def predict_arrays(self, X: np.ndarray) -> np.ndarray:
        return np.full(len(X), 100.0)


@pytest.mark.parametrize("name", ["qsvr", "svr"])
def test_the_annealer_model_cannot_stop_a_trial_the_classical_choice_keeps(name: str) -> None:
    # The decision rule alone: keep_top would keep a trial better than every finished run.
    pruner = LCPredictionPruner(3, predictor="qsvr", qsvr_options={"num_reads": 5}, keep_top=0.0)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(0), pruner=pruner)
    _run_finished_trials(study, 8)
    trial = study.ask({"x": FloatDistribution(0.0, 1.0)})
    for step, value in enumerate([1.0, 0.5, 0.3]):  # better than every finished run
        trial.report(value, step)
    assert not trial.should_prune()
    assert pruner.wait_for_fits(60)
    # The step's selection (whatever it was) is replaced by one predicting a hopeless final.
    fitted = pruner._models[2]
    hopeless = dataclasses.replace(fitted.selected, name=name, model=_Hopeless())
    pruner._models[2] = dataclasses.replace(fitted, selected=hopeless)
    trial.report(0.3, 3)  # steps 2 and 3 share step 2's model ...
    pruner._models[3] = pruner._models[2]
    pruned = trial.should_prune()
    attrs = study.trials[trial.number].user_attrs
    assert attrs["lcpred:prob_improve"] < 0.01
    # The classical models' word is on the trial wherever the annealer's model wanted a stop.
    assert (attrs.get("lcpred:classical_prob_improve", 0.0) >= 0.06) == (name == "qsvr")
    # ... the annealer's hopeless call is overruled by the classical models, which keep the
    # trial; a classical candidate's call stands.
    assert pruned == (name != "qsvr")


def test_pruner_checks_its_annealer_settings() -> None:
    with pytest.raises(ValueError, match=r"annealer must be one of .* got 'dwave'"):
        LCPredictionPruner(predictor="qsvr", annealer="dwave")
    with pytest.raises(ValueError, match=r"qsvr_options has unknown key.*num_read"):
        LCPredictionPruner(predictor="qsvr", qsvr_options={"num_read": 5})
    with pytest.raises(ValueError, match="num_reads"):
        LCPredictionPruner(predictor="qsvr", qsvr_options={"num_reads": 0})
    with pytest.raises(ValueError, match="may not set sampler"):
        LCPredictionPruner(predictor="qsvr", qsvr_options={"sampler": "sa"})
    with pytest.raises(ValueError, match="'sa' takes no options"):
        LCPredictionPruner(predictor="qsvr", annealer="sa", annealer_options={"timeout": 3})
