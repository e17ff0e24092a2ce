"""The sampler factory and the QPU path (on D-Wave's MockDWaveSampler), with its fallbacks."""

from __future__ import annotations

import copy
import json
import logging
import pickle
import threading
import time
from pathlib import Path
from typing import Any

import dimod
import numpy as np
import pytest
from dwave.system.testing import MockDWaveSampler

from optuna_lcpred.annealers import QPUSampler
from optuna_lcpred.annealers import make_sampler
from optuna_lcpred.annealers import sample_bqm
from optuna_lcpred.predictors.qsvr import QSVRPredictor
from optuna_lcpred.predictors.qsvr import bit_weights
from optuna_lcpred.predictors.qsvr import qsvr_bqm
from optuna_lcpred.predictors.svr import rbf_kernel


@pytest.fixture(scope="module")
def advantage() -> MockDWaveSampler:
    """An Advantage-sized graph (Pegasus P16, 5,640 qubits): the reference 120-variable QUBO
    embeds there as a clique; the default mock (P3) is too small. It anneals the embedded
    problem (the mock's default, a greedy descent from random states, leaves chains broken
    whatever their strength)."""
    from dwave.samplers import SimulatedAnnealingSampler

    return MockDWaveSampler(
        topology_type="pegasus",
        topology_shape=[16],
        substitute_sampler=SimulatedAnnealingSampler(),
        substitute_kwargs={"seed": 0},
    )


def _reference_bqm(n_rows: int = 20) -> Any:
    rng = np.random.default_rng(0)
    points = rng.normal(size=(n_rows, 4))
    kernel = rbf_kernel(points, points, 0.25)
    return qsvr_bqm(
        kernel, rng.uniform(size=n_rows), weights=bit_weights(3, 0.5, 0.0), epsilon=0.02, xi=3.0
    )


def test_factory_names_and_errors() -> None:
    assert type(make_sampler("sa")).__name__ == "SimulatedAnnealingSampler"
    assert type(make_sampler("tabu")).__name__ == "TabuSampler"
    assert isinstance(make_sampler("exact"), dimod.ExactSolver)
    assert isinstance(make_sampler("qpu", child=MockDWaveSampler()), QPUSampler)
    exact = dimod.ExactSolver()
    assert make_sampler(exact) is exact
    with pytest.raises(ValueError, match="unknown sampler 'annealer'; expected one of sa"):
        make_sampler("annealer")
    with pytest.raises(ValueError, match="takes no options"):
        make_sampler("sa", num_reads=3)
    with pytest.raises(TypeError, match="got int"):
        make_sampler(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="chain_strength must be > 0, got 0"):
        QPUSampler(MockDWaveSampler(), chain_strength=0)


def test_sample_bqm_passes_only_what_a_sampler_takes() -> None:
    bqm = dimod.BinaryQuadraticModel({0: -1.0, 1: 0.5}, {(0, 1): -1.0}, 0.0, "BINARY")
    # The exact solver takes neither num_reads nor seed; SA takes both and repeats with a seed.
    assert sample_bqm(make_sampler("exact"), bqm, num_reads=7, seed=1).first.energy == -1.5
    sa = make_sampler("sa")
    first = sample_bqm(sa, bqm, num_reads=7, seed=1, num_sweeps=10, bogus=True)
    again = sample_bqm(sa, bqm, num_reads=7, seed=1, num_sweeps=10)
    assert len(first) == 7
    np.testing.assert_array_equal(first.record.sample, again.record.sample)
    with pytest.raises(ValueError, match="2\\^n states; 30 variables"):
        sample_bqm(
            make_sampler("exact"),
            dimod.BinaryQuadraticModel(dict.fromkeys(range(30), 1.0), {}, 0.0, "BINARY"),
        )


def test_qpu_path_end_to_end_on_an_advantage_sized_mock(
    tmp_path: Path, advantage: MockDWaveSampler
) -> None:
    bqm = _reference_bqm()
    assert len(bqm) == 120
    from dwave.embedding.chain_strength import uniform_torque_compensation

    qpu = QPUSampler(advantage, cache_dir=tmp_path)
    result = qpu.sample(bqm, num_reads=10)
    assert "fallback" not in result.info
    # Unembedded samples on the problem's 120 variables, whose energies are the problem's own.
    assert sorted(result.variables) == list(range(120))
    np.testing.assert_allclose(result.record.energy, bqm.energies(result), atol=1e-9)
    # Chains of a clique embedding, held by the coupling-aware default strength: few break.
    assert result.info["chain_strength"] == pytest.approx(uniform_torque_compensation(bqm))
    assert result.record.chain_break_fraction.mean() < 0.05
    assert len(result.info["chain_lengths"]) == 120 and max(result.info["chain_lengths"]) > 1
    assert qpu.cache.n_computed == 1 and len(list(tmp_path.glob("clique-*-120.json"))) == 1
    # A number is a multiple of the largest QUBO coefficient (the reference used 10).
    largest = max(max(map(abs, bqm.linear.values())), max(map(abs, bqm.quadratic.values())))
    strong = QPUSampler(advantage, chain_strength=10, cache=qpu.cache)
    assert strong.sample(bqm, num_reads=2).info["chain_strength"] == pytest.approx(10 * largest)


def test_embedding_is_computed_once_and_reused_from_disk(
    tmp_path: Path, advantage: MockDWaveSampler, monkeypatch: pytest.MonkeyPatch
) -> None:
    bqm = _reference_bqm(10)
    first = QPUSampler(advantage, cache_dir=tmp_path)
    first.sample(bqm, num_reads=2)
    first.sample(bqm, num_reads=2)
    # Same size again: from memory, no second computation.
    assert (first.cache.n_computed, first.cache.n_loaded) == (1, 0)

    from minorminer import busclique

    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the embedding should come from the cache")

    monkeypatch.setattr(busclique, "find_clique_embedding", forbidden)
    second = QPUSampler(advantage, cache_dir=tmp_path)  # a new process, say
    result = second.sample(bqm, num_reads=2)
    assert "fallback" not in result.info
    assert (second.cache.n_computed, second.cache.n_loaded) == (0, 1)


def test_a_corrupt_cache_file_is_ignored_and_replaced(
    tmp_path: Path, advantage: MockDWaveSampler, caplog: pytest.LogCaptureFixture
) -> None:
    bqm = _reference_bqm(5)
    QPUSampler(advantage, cache_dir=tmp_path).sample(bqm, num_reads=2)
    (path,) = tmp_path.glob("clique-*.json")
    data = json.loads(path.read_text())
    data["chains"][0] = [10**9]  # a qubit this QPU does not have
    path.write_text(json.dumps(data))
    fresh = QPUSampler(advantage, cache_dir=tmp_path)
    with caplog.at_level(logging.WARNING, logger="optuna.lcpred.annealers"):
        result = fresh.sample(bqm, num_reads=2)
    assert "does not fit this QPU" in caplog.text
    assert fresh.cache.n_computed == 1 and "fallback" not in result.info
    path.write_text("{not json")
    with caplog.at_level(logging.WARNING, logger="optuna.lcpred.annealers"):
        QPUSampler(advantage, cache_dir=tmp_path).sample(bqm, num_reads=2)
    assert "unreadable embedding cache file" in caplog.text


class _BrokenQPU(MockDWaveSampler):  # type: ignore[misc]
    def __init__(self, delay: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.delay = delay

    def sample(self, bqm: Any, **kwargs: Any) -> Any:
        if self.delay:
            time.sleep(self.delay)
            return super().sample(bqm, **kwargs)
        raise ConnectionError("solver unavailable (token DEV-" + "0123456789abcdef" * 3 + ")")


def test_a_failing_qpu_falls_back_to_simulated_annealing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    qpu = QPUSampler(_BrokenQPU(), cache_dir=tmp_path)
    bqm = _reference_bqm(2)
    with caplog.at_level(logging.WARNING, logger="optuna.lcpred.annealers"):
        result = qpu.sample(bqm, num_reads=50, seed=0)
    # The problem is still solved, by simulated annealing, and the warning says why ...
    assert "ConnectionError" in result.info["fallback"] and qpu.n_fallbacks == 1
    assert result.first.energy == pytest.approx(dimod.ExactSolver().sample(bqm).first.energy)
    assert "using simulated annealing instead" in caplog.text
    # ... without the credential that the error message carried.
    assert "0123456789abcdef" not in caplog.text + result.info["fallback"]


def test_a_qpu_call_that_takes_too_long_falls_back(tmp_path: Path) -> None:
    qpu = QPUSampler(_BrokenQPU(delay=5.0), cache_dir=tmp_path, timeout=0.5)
    start = time.perf_counter()
    result = qpu.sample(_reference_bqm(2), num_reads=5, seed=0)
    # The caller got an answer after the time box, not after the QPU's 5 seconds.
    assert time.perf_counter() - start < 4.0
    assert result.info["fallback"] == "no answer within 0.5 s"


def test_qsvr_trains_through_the_qpu_path(tmp_path: Path, advantage: MockDWaveSampler) -> None:
    rng = np.random.default_rng(0)
    X = np.sort(rng.uniform(1, 2, (24, 4)), axis=1)[:, ::-1]
    y = X[:, -1] - 0.1
    # Annealing an embedded dense QUBO (chains of 12 qubits) finds worse states than annealing
    # the logical problem directly, so this checks the path (embedding, chains, unembedding,
    # decoding), not the accuracy a QPU would reach.
    qpu = QPUSampler(advantage, cache_dir=tmp_path)
    model = QSVRPredictor(sampler=qpu, num_reads=20, random_state=0).fit(X, y)
    # Two disjoint members of 12 rows (72 qubits each), all sampled on the (mock) QPU ...
    assert model.qubo_sizes_ == [72, 72] and qpu.n_fallbacks == 0
    assert qpu.cache.n_computed == 1  # one embedding serves both members
    # ... giving a usable model: finite predictions and held-out predictions for every row.
    assert np.isfinite(model.predict(X)).all() and np.isfinite(model.oob_prediction_).all()


class _Connection(MockDWaveSampler):  # type: ignore[misc]
    """A QPU client as DWaveSampler is one: it holds what a copy cannot take (a socket)."""

    opened = 0

    def __init__(self, solver: Any = None) -> None:
        from dwave.samplers import SimulatedAnnealingSampler

        super().__init__(
            substitute_sampler=SimulatedAnnealingSampler(), substitute_kwargs={"seed": 0}
        )
        self.solver_asked = solver
        self.socket = threading.Lock()
        type(self).opened += 1


def _assert_solved_on_the_qpu_path(result: dimod.SampleSet, bqm: dimod.BQM) -> None:
    assert "fallback" not in result.info and "chain_lengths" in result.info
    assert sorted(result.variables) == sorted(bqm.variables)
    np.testing.assert_allclose(result.record.energy, bqm.energies(result), atol=1e-9)


def test_a_copy_opens_its_own_qpu_connection_and_keeps_a_given_child(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dwave.system

    monkeypatch.setattr(dwave.system, "DWaveSampler", _Connection)
    bqm = _reference_bqm(2)
    own = QPUSampler(solver="Advantage_system4.1", cache_dir=tmp_path, timeout=30.0)
    _assert_solved_on_the_qpu_path(own.sample(bqm, num_reads=5), bqm)
    assert _Connection.opened == 1
    copied = pickle.loads(pickle.dumps(own))  # the connection stays behind
    assert copied._child is None and own._child is not None
    assert copied.timeout == 30.0 and copied.cache.directory == own.cache.directory
    _assert_solved_on_the_qpu_path(copied.sample(bqm, num_reads=5), bqm)
    assert _Connection.opened == 2 and copied.child.solver_asked == "Advantage_system4.1"
    # A child handed to the sampler goes with the copy (here a mock that can be copied).
    given = QPUSampler(MockDWaveSampler(), cache_dir=tmp_path)
    twin = copy.deepcopy(given)
    assert isinstance(twin._child, MockDWaveSampler) and twin._child is not given._child
    _assert_solved_on_the_qpu_path(twin.sample(bqm, num_reads=5), bqm)
