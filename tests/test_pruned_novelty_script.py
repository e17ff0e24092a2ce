"""``benchmarks/pruned_novelty.py``: how far costly prunes lie from the finished runs."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from optuna_lcpred.bench.replay import ReplayResult
from optuna_lcpred.bench.replay import ReplayTrial
from optuna_lcpred.curves import CurveTable
from optuna_lcpred.curves import write_curve_table
from tests.conftest import load_benchmark_script
from tests.conftest import make_table
from tests.conftest import run_benchmark_script


@pytest.fixture
def novelty(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    return load_benchmark_script("pruned_novelty", monkeypatch)


def _trial(number: int, row: int, end: int, state: str, final: float) -> ReplayTrial:
    return ReplayTrial(number, row, 0, end - 1, end, 1, state, final, end)


def test_hyperparameter_matrix_ranks_and_one_hot(novelty: ModuleType) -> None:
    table = CurveTable(
        params={"lr": np.array([1e-4, 1e-1, 1e-2]), "act": np.array(["relu", "tanh", "relu"])},
        steps=np.arange(2),
        curves=np.ones((3, 2)),
    )
    X = novelty.hyperparameter_matrix(table)
    np.testing.assert_allclose(X[:, 0], [0.0, 1.0, 0.5])  # ranks, not values
    # A different choice of a categorical counts 1; the same choice 0.
    assert np.linalg.norm(X[0, 1:] - X[1, 1:]) == pytest.approx(1.0)
    assert np.linalg.norm(X[0, 1:] - X[2, 1:]) == 0.0
    # A missing numeric value takes the column's mean, as in the predictors' encoding.
    table = CurveTable(
        params={"lr": np.array([1e-4, np.nan, 1e-2])}, steps=np.arange(2), curves=np.ones((3, 2))
    )
    np.testing.assert_allclose(novelty.hyperparameter_matrix(table)[:, 0], [0.0, 0.5, 1.0])


def test_distance_to_the_complete_runs_finished_before(novelty: ModuleType) -> None:
    X = np.array([[0.0], [1.0], [2.0], [10.0], [2.5], [9.0], [20.0]])
    trials = (
        _trial(0, 0, 1, "COMPLETE", 5.0),
        _trial(1, 1, 2, "COMPLETE", 4.0),
        _trial(2, 6, 3, "PRUNED", 0.0),  # two COMPLETE before it: not measured
        _trial(3, 2, 4, "COMPLETE", 3.0),
        _trial(4, 4, 5, "PRUNED", 3.5),  # nearest COMPLETE: row 2 (2.0); not costly
        _trial(5, 5, 6, "PRUNED", 2.0),  # row 3 completes only later; costly (2.0 < 3.0)
        _trial(6, 3, 7, "COMPLETE", 3.0),
    )
    result = ReplayResult("t", "p", 0, 1, 10, trials, tuple(t.final for t in trials))
    assert novelty.prune_distances(result, X) == [(0.5, False), (7.0, True)]


def test_costly_ranks(novelty: ModuleType) -> None:
    prunes = [(0.1, False), (0.4, True), (0.2, False), (0.3, True), (0.5, False)]
    np.testing.assert_allclose(novelty.costly_ranks(prunes), [0.75, 0.5])
    assert novelty.costly_ranks([(0.3, True)]).tolist() == [0.5]


def test_the_script_prints_every_table_and_the_pooled_line(tmp_path: Path) -> None:
    path = tmp_path / "small.csv"
    write_curve_table(make_table(n_trials=40, n_steps=10, noise=0.02, name="small"), path)
    run = run_benchmark_script(
        "pruned_novelty", path, "--seeds", "2", "--trials", "30", "--jobs", "1"
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith("lcpred, 30 trials, 1 worker(s), seeds 0-1")
    row = next(line for line in lines if line.startswith("small"))
    costly, prunes = (int(n) for n in row[40:57].split("/"))
    assert prunes > 0 and 0 <= costly <= prunes
    assert lines[-2].startswith("all tables: ")
