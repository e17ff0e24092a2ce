from __future__ import annotations

import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from optuna_lcpred.bench.evaluate import evaluate_table
from optuna_lcpred.bench.evaluate import observed_steps
from optuna_lcpred.bench.evaluate import prediction_scores
from optuna_lcpred.bench.evaluate import register_predictor
from optuna_lcpred.curves import CurveTable
from optuna_lcpred.predictors import LastValuePredictor
from optuna_lcpred.predictors import LinearLastValuePredictor
from optuna_lcpred.predictors import PowerLawPredictor
from optuna_lcpred.predictors import SVRPredictor
from optuna_lcpred.predictors.base import CurvePredictor
from optuna_lcpred.predictors.qsvr import QSVRPredictor
from tests.conftest import installed
from tests.conftest import make_table


def test_scores_by_hand() -> None:
    y_true = np.array([1.0, 2.0, 3.0, 4.0])
    y_pred = np.array([1.0, 2.0, 3.0, 6.0])
    scores = prediction_scores(y_true, y_pred)
    # R^2 = 1 - SS_res / SS_tot with SS_tot around the TRUE mean: 1 - 4 / 5.
    assert scores["r2"] == pytest.approx(0.2)
    assert scores["spearman"] == pytest.approx(1.0)  # the ranking is perfect
    assert scores["mae"] == pytest.approx(0.5)
    # With the arguments swapped R^2 would be 1 - 4 / 14.75; the order is the standard one.
    assert scores["r2"] != pytest.approx(1 - 4 / 14.75)
    reverse = prediction_scores(y_true, y_pred[::-1])
    assert reverse["spearman"] == pytest.approx(-1.0)


def test_scores_undefined_for_constant_predictions_are_nan() -> None:
    scores = prediction_scores(np.array([1.0, 2.0, 3.0]), np.array([2.0, 2.0, 2.0]))
    assert np.isnan(scores["spearman"]) and scores["r2"] == pytest.approx(0.0)


def test_observed_steps() -> None:
    assert observed_steps(0.25, 100) == 25
    assert observed_steps(0.1, 52) == 5
    assert observed_steps(0.001, 52) == 1
    for bad in (0.0, 1.0, -0.5, 0.995):  # 0.995 * 52 rounds to 52: the final
        with pytest.raises(ValueError, match="fraction"):
            observed_steps(bad, 52)


def _flat_after(n_trials: int, n_steps: int, flat_from: int, seed: int = 0) -> CurveTable:
    rng = np.random.default_rng(seed)
    finals = rng.uniform(1, 2, n_trials)
    curves = np.repeat(finals[:, None], n_steps, axis=1)
    curves[:, :flat_from] += rng.uniform(0.5, 1.0, (n_trials, flat_from))
    return CurveTable({"x": rng.uniform(size=n_trials)}, np.arange(n_steps), curves)


def test_last_value_is_exact_when_curves_are_flat_by_then() -> None:
    table = _flat_after(30, 10, flat_from=2)
    scores = evaluate_table(table, ["last"], [0.5])["last"]["0.5"]
    assert scores == {"r2": 1.0, "spearman": pytest.approx(1.0), "mae": 0.0}
    early = evaluate_table(table, ["last"], [0.1])["last"]["0.1"]
    assert early["r2"] < 0.0  # one noisy step tells the last value little


def test_linear_recovers_a_linear_map() -> None:
    rng = np.random.default_rng(0)
    last = rng.uniform(1, 2, 40)
    curves = np.column_stack([last + 1, last, 2 * last + 1])
    table = CurveTable({"x": rng.uniform(size=40)}, np.arange(3), curves)
    scores = evaluate_table(table, ["linear", "last"], [0.5])
    assert scores["linear"]["0.5"]["r2"] == pytest.approx(1.0)
    assert scores["linear"]["0.5"]["mae"] == pytest.approx(0.0, abs=1e-9)
    assert scores["last"]["0.5"]["r2"] < 0.0  # the final is not the last value here


def test_power_law_extrapolates_exact_power_laws() -> None:
    table = make_table(n_trials=20, n_steps=60)
    prefix = table.curves[:, :15]
    predicted = PowerLawPredictor(horizon=60).fit(prefix, table.final_values).predict(prefix)
    np.testing.assert_allclose(predicted, table.final_values, rtol=2e-3)


def test_power_law_finds_exponents_between_its_grid_points_curve_by_curve() -> None:
    # Exponents off the coarse grid: only the fine search recovers them (the grid alone errs by
    # up to 3 % here), and one curve alone (a running trial) gets what it gets in a batch.
    rng = np.random.default_rng(1)
    c, a, b = rng.uniform(0.05, 3.0, 40), rng.uniform(0.1, 2.0, 40), rng.uniform(0.5, 3.0, 40)
    X = a[:, None] + b[:, None] * np.arange(1, 21)[None, :] ** -c[:, None]
    final = a + b * 100.0**-c
    model = PowerLawPredictor(horizon=100).fit(X, final)
    together = model.predict(X)
    np.testing.assert_allclose(together, final, rtol=1e-4)
    alone = np.array([model.predict(X[i : i + 1])[0] for i in range(len(X))])
    np.testing.assert_allclose(alone, together, rtol=1e-12)


def test_power_law_with_too_few_points_falls_back_to_the_last_value() -> None:
    X = np.array([[3.0, 2.0], [5.0, np.nan]])
    predicted = PowerLawPredictor(horizon=10).fit(X, [1.0, 1.0]).predict(X)
    np.testing.assert_array_equal(predicted, [2.0, 5.0])


class _NearestConfig(CurvePredictor):
    """Memorises finals by hyperparameters: perfect if a repeated config leaks across folds."""

    def _fit(self, curves: np.ndarray, extra: np.ndarray, y: np.ndarray) -> None:
        self.extra_, self.y_ = extra, y

    def _predict(self, curves: np.ndarray, extra: np.ndarray) -> np.ndarray:
        distance = ((extra[:, None, :] - self.extra_[None, :, :]) ** 2).sum(axis=2)
        return self.y_[distance.argmin(axis=1)]


def test_folds_never_split_a_repeated_configuration() -> None:
    rng = np.random.default_rng(0)
    x = np.repeat(rng.uniform(size=30), 2)  # every configuration twice
    finals = np.repeat(rng.uniform(size=30), 2)  # its final is unrelated to x
    curves = np.column_stack([rng.uniform(size=60), finals])
    table = CurveTable({"x": x}, np.arange(2), curves)
    register_predictor("nearest-config", lambda horizon: _NearestConfig())
    scores = evaluate_table(table, ["nearest-config"], [0.5])["nearest-config"]["0.5"]
    assert scores["r2"] < 0.5  # a leaked repeat would give R^2 = 1


def test_diverged_trials_are_left_out(table: CurveTable) -> None:
    diverged = make_table(diverged=8)
    scores = evaluate_table(diverged, ["last", "powerlaw"], [0.25, 0.5])
    for by_fraction in scores.values():
        for result in by_fraction.values():
            assert all(np.isfinite(v) for v in result.values())


def test_runs_that_stopped_themselves_score_only_where_they_ran() -> None:
    rng = np.random.default_rng(0)
    finals = rng.uniform(0.2, 1.0, 30)
    curves = np.column_stack([finals + 1.0, finals + 0.5] + [finals] * 8)  # flat from step 2
    curves[20:, 2:] = np.nan  # ten runs stopped themselves after two steps ...
    values = finals.copy()
    values[20:] = finals[20:] - 0.3  # ... and returned another number than their last report
    table = CurveTable({"x": np.arange(30.0)}, np.arange(10), curves, finals=values)
    scores = evaluate_table(table, ["last"], [0.1, 0.5])
    # At half the curve only the 20 runs that got there are scored: the last value is exact.
    assert scores["last"]["0.5"]["mae"] == pytest.approx(0.0, abs=1e-12)
    # At a tenth every run had reported: the ten that stopped count, with their values.
    expected = (20 * 1.0 + 10 * 1.3) / 30
    assert scores["last"]["0.1"]["mae"] == pytest.approx(expected)


def test_evaluate_rejects_bad_arguments(table: CurveTable) -> None:
    with pytest.raises(ValueError, match=r"unknown predictor.*'nope'"):
        evaluate_table(table, ["nope"], [0.5])
    with pytest.raises(ValueError, match="folds must be >= 2, got 1"):
        evaluate_table(table, ["last"], [0.5], folds=1)
    with pytest.raises(ValueError, match=r"fraction must be in \(0, 1\), got 1\.5"):
        evaluate_table(table, ["last"], [1.5])


_CONTRACT = [
    LastValuePredictor(),
    LinearLastValuePredictor(),
    PowerLawPredictor(horizon=1000),
    SVRPredictor(),
]
if installed("dwave.samplers"):  # the quantum extra
    # Few, short anneals: the contract, not the accuracy, is under test.
    _CONTRACT.append(QSVRPredictor(num_reads=5, sampler_params={"num_sweeps": 50}, random_state=0))


@parametrize_with_checks(_CONTRACT)
def test_predictors_follow_the_scikit_learn_contract(estimator, check) -> None:  # type: ignore[no-untyped-def]
    check(estimator)
