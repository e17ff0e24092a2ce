"""Shared fixtures: small learning-curve tables made here, no files from outside the repo."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from optuna_lcpred.curves import CurveTable


def make_table(
    n_trials: int = 40,
    n_steps: int = 12,
    *,
    seed: int = 0,
    diverged: int = 0,
    noise: float = 0.0,
    name: str = "synthetic",
) -> CurveTable:
    """Power-law learning curves ``a + b s^-c`` with mixed hyperparameter types.

    The asymptote ``a`` (the final loss, nearly) falls with the learning rate's distance from
    1e-2, so the hyperparameters carry information. The last ``diverged`` rows turn NaN from a
    random step on.
    """
    rng = np.random.default_rng(seed)
    lr = 10.0 ** rng.uniform(-4, -1, n_trials)
    width = rng.choice([16, 32, 64], n_trials).astype(np.int64)
    activation = np.array(rng.choice(["relu", "tanh"], n_trials), dtype=object)
    a = 0.2 + 0.3 * np.abs(np.log10(lr) + 2.0) + rng.uniform(0.0, 0.2, n_trials)
    b = rng.uniform(0.5, 2.0, n_trials)
    c = rng.uniform(0.3, 1.5, n_trials)
    s = np.arange(1, n_steps + 1)
    curves = a[:, None] + b[:, None] * s[None, :] ** -c[:, None]
    curves = curves + noise * rng.standard_normal(curves.shape)
    for row in range(n_trials - diverged, n_trials):
        curves[row, rng.integers(1, n_steps) :] = np.nan
    return CurveTable(
        params={"lr": lr, "width": width, "activation": activation},
        steps=np.arange(n_steps),
        curves=curves,
        name=name,
    )


BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_benchmark_script(name: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """``benchmarks/<name>.py`` as a module, with its folder first on the path as when it runs
    as a script (for ``_replay_cli``)."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_benchmark_script(name: str, *args: Path | str) -> subprocess.CompletedProcess[str]:
    """Run ``benchmarks/<name>.py`` with ``args`` as a user would, output captured."""
    return subprocess.run(
        [sys.executable, str(BENCHMARKS / f"{name}.py"), *map(str, args)],
        capture_output=True,
        text=True,
    )


def installed(module: str) -> bool:
    """Whether ``module`` (an optional extra's, say ``dwave.samplers``) can be imported."""
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


def needs(module: str) -> pytest.MarkDecorator:
    """Skip a test, or one parameter of it, when an optional extra's ``module`` is missing."""
    return pytest.mark.skipif(not installed(module), reason=f"{module} is not installed")


@pytest.fixture
def table() -> CurveTable:
    return make_table()


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A PostgreSQL server for the whole session (pgserver: a Unix socket, trust auth)."""
    pgserver = pytest.importorskip("pgserver")
    pytest.importorskip("psycopg2")
    server = pgserver.get_server(tmp_path_factory.mktemp("pg"), cleanup_mode="stop")
    yield server
    server.cleanup()


@pytest.fixture(scope="session")
def postgres(pg_server: Any) -> str:
    """The server's URL (user postgres, database postgres)."""
    return str(pg_server.get_uri())


@pytest.fixture
def pg_url(postgres: str, request: pytest.FixtureRequest) -> str:
    """A fresh database per test on the shared server."""
    import sqlalchemy as sa

    from optuna_lcpred.worker import with_installed_driver

    name = "t_" + request.node.name.lower().replace("[", "_").replace("]", "")[:50]
    engine = sa.create_engine(with_installed_driver(postgres), isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return with_installed_driver(postgres.replace("/postgres?", f"/{name}?"))
