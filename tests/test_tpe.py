"""Study files and ``bench --sampler tpe`` get Optuna 5's TPE on every admitted Optuna."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import optuna
import pytest

from optuna_lcpred._tpe import tpe_sampler
from optuna_lcpred.bench.samplers import make_bench_sampler
from optuna_lcpred.studyfile import load_study_file


def _proposals(sampler: optuna.samplers.BaseSampler) -> list[dict[str, float]]:
    """Parameters of three trials asked while the first two still run (parallel workers)."""
    study = optuna.create_study(sampler=sampler)
    for i in range(12):
        trial = study.ask()
        x, y = trial.suggest_float("x", -5, 5), trial.suggest_float("y", -5, 5)
        study.tell(trial, (x - 1) ** 2 + (x * y - 2) ** 2 + 0.1 * i)
    running = []
    for _ in range(3):
        trial = study.ask()
        trial.suggest_float("x", -5, 5)
        trial.suggest_float("y", -5, 5)
        running.append(trial.params)
    return running


def _tpe(**options: Any) -> optuna.samplers.TPESampler:
    options = {"seed": 0, "n_startup_trials": 4, **options}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(**options)


def test_tpe_has_optuna5_defaults_on_any_optuna() -> None:
    ours = _proposals(tpe_sampler(seed=0, n_startup_trials=4))
    # The same proposals as with both options asked for, on Optuna 4 as on 5 ...
    assert ours == _proposals(_tpe(multivariate=True, constant_liar=True))
    # ... and not those of Optuna 4's defaults: running trials change what TPE proposes.
    assert ours != _proposals(_tpe(multivariate=True, constant_liar=False))
    assert ours != _proposals(_tpe(multivariate=False, constant_liar=True))


def test_tpe_options_given_win() -> None:
    off = _proposals(tpe_sampler(seed=0, n_startup_trials=4, constant_liar=False))
    assert off == _proposals(_tpe(multivariate=True, constant_liar=False))


def test_tpe_defaults_warn_nothing() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Optuna 4's ExperimentalWarning would raise here
        tpe_sampler(seed=1)
        make_bench_sampler("tpe", 1)


def _study_file(tmp_path: Path, sampler_options: str) -> Path:
    path = tmp_path / "study.toml"
    path.write_text(
        '[study]\nname = "s"\nn_trials = 5\n[objective]\ntarget = "m:f"\n'
        f'[sampler]\nname = "tpe"\nseed = 0\n[sampler.options]\n{sampler_options}\n'
    )
    return path


def test_study_file_and_bench_use_it(tmp_path: Path) -> None:
    config = load_study_file(_study_file(tmp_path, "n_startup_trials = 4"))
    expected = _proposals(_tpe(multivariate=True, constant_liar=True))
    assert _proposals(config.make_sampler()) == expected
    # bench --sampler tpe: seeded with the replay's seed, TPE's own startup.
    assert _proposals(make_bench_sampler("tpe", 0)) == _proposals(
        _tpe(n_startup_trials=10, multivariate=True, constant_liar=True)
    )


@pytest.mark.parametrize("value", [True, False])
def test_study_file_option_overrides(tmp_path: Path, value: bool) -> None:
    path = _study_file(tmp_path, f"n_startup_trials = 4\nconstant_liar = {str(value).lower()}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = load_study_file(path).make_sampler()
    assert _proposals(sampler) == _proposals(_tpe(multivariate=True, constant_liar=value))
