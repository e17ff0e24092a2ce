"""Sampler specs (``bench --sampler NAME[:option=value,...]``); samplers by name in study files."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import optuna
import pytest

from optuna_lcpred._sampler_names import SAMPLER_NAMES
from optuna_lcpred._sampler_names import make_named_sampler
from optuna_lcpred._tpe import tpe_sampler
from optuna_lcpred.bench.runner import run_benchmark
from optuna_lcpred.bench.samplers import SAMPLERS
from optuna_lcpred.bench.samplers import make_bench_sampler
from optuna_lcpred.bench.samplers import parse_sampler_spec
from optuna_lcpred.curves import CurveTable
from optuna_lcpred.sampler import PredictedFinalSampler
from optuna_lcpred.studyfile import StudyFileError
from optuna_lcpred.studyfile import load_study_file
from tests.conftest import needs
from tests.test_studyfile import MINIMAL


def _proposals(sampler: optuna.samplers.BaseSampler, n: int = 8) -> list[dict[str, float]]:
    study = optuna.create_study(sampler=sampler)
    for _ in range(n):
        trial = study.ask()
        x, y = trial.suggest_float("x", -5, 5), trial.suggest_float("y", -5, 5)
        study.tell(trial, (x - 1) ** 2 + (y + 2) ** 2)
    return [t.params for t in study.trials]


def test_spec_options_reach_the_sampler() -> None:
    spec = parse_sampler_spec("TPE:n_startup_trials=3, multivariate=false")
    assert (spec.name, spec.predicted) == ("tpe", False)
    assert spec.options == {"n_startup_trials": 3, "multivariate": False}
    ours = _proposals(make_bench_sampler(spec, seed=4))
    # The same trials as the sampler built with those options and the replay's seed ...
    assert ours == _proposals(tpe_sampler(seed=4, n_startup_trials=3, multivariate=False))
    # ... and not those of the defaults (TPE starts modelling after 3 trials, not 10).
    default = _proposals(make_bench_sampler("tpe", seed=4))
    assert ours[:3] == default[:3] and ours[3:] != default[3:]


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=needs("cmaes")) if "cmaes" in n else n for n in SAMPLERS]
)
def test_every_listed_name_makes_a_sampler(name: str) -> None:
    sampler = make_bench_sampler(name, seed=0)
    if name.endswith("+predicted"):
        assert isinstance(sampler, PredictedFinalSampler)
        sampler = sampler.base_sampler
    expected = {
        "random": optuna.samplers.RandomSampler,
        "tpe": optuna.samplers.TPESampler,
        "gp": optuna.samplers.GPSampler,
        "cmaes": optuna.samplers.CmaEsSampler,
        "qmc": optuna.samplers.QMCSampler,
    }
    assert type(sampler) is expected[name.partition("+")[0]]
    # Every study-file name is a bench name too.
    assert set(SAMPLER_NAMES) <= set(SAMPLERS)


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("annealing", "unknown sampler 'annealing'"),
        ("random+predicted", "random ignores finished trials"),
        ("qmc+predicted", "qmc ignores finished trials"),
        ("tpe:seed=3", "leave out seed"),
        ("tpe:n_startp=3", "does not take option(s) n_startp; it takes"),
        ("tpe:n_startup_trials=many", "n_startup_trials='many' must be int"),
        ("gp:deterministic_objective=1", "deterministic_objective=1 must be bool"),
        ("tpe:n_startup_trials", "must look like key=value"),
        ("cmaes:popsize=4,popsize=5", "'popsize' given twice"),
    ],
)
def test_bad_specs_say_what_is_wrong(spec: str, needle: str) -> None:
    with pytest.raises(ValueError, match="sampler") as info:
        parse_sampler_spec(spec)
    assert needle in str(info.value)
    assert repr(spec) in str(info.value)  # names the spec as given


@needs("cmaes")
def test_benchmark_names_the_sampler_by_its_spec(table: CurveTable) -> None:
    text = "cmaes+predicted:n_startup_trials=4,warn_independent_sampling=false"
    report = run_benchmark([table], ["nop"], n_trials=10, seeds=[0], sampler=text)
    data = report.to_json()["tables"][table.name]
    assert data["sampler"] == text
    assert data["results"]["nop"]["epochs_fraction"] == 1.0
    with pytest.raises(ValueError, match="n_startup_trials='x' must be int"):
        run_benchmark([table], ["nop"], n_trials=10, seeds=[0], sampler="gp:n_startup_trials=x")


def test_named_sampler_checks_names_and_types() -> None:
    assert isinstance(make_named_sampler("qmc", {"seed": 0}), optuna.samplers.QMCSampler)
    with pytest.raises(ValueError, match=r"it takes .*\bn_startup_trials\b.*\bseed\b"):
        make_named_sampler("gp", {"n_startup": 3})  # lists what it does take
    with pytest.raises(ValueError, match="unknown sampler 'nsga'"):
        make_named_sampler("nsga", {})
    with pytest.raises(ValueError, match=r"n_startup_trials=True must be int"):
        make_named_sampler("tpe", {"n_startup_trials": True})  # a bool is not a count


@needs("cmaes")
def test_named_sampler_checks_the_types_of_cmaes_options() -> None:
    with pytest.raises(ValueError, match=r"popsize=2\.5 must be int or None"):
        make_named_sampler("cmaes", {"popsize": 2.5})


STUDY = (
    MINIMAL
    + """
[sampler]
name = "{name}"
seed = 1

[sampler.options]
{options}
"""
)


@pytest.mark.parametrize(
    ("name", "options", "needle"),
    [
        ("tpe", "n_startup = 3", "does not take option(s) n_startup"),
        ("gp", "n_startup_trials = 'three'", "n_startup_trials='three' must be int"),
    ],
)
def test_study_file_sampler_options_are_checked(
    tmp_path: Path, name: str, options: str, needle: str
) -> None:
    path = tmp_path / "s.toml"
    path.write_text(STUDY.format(name=name, options=options))
    config = load_study_file(path)
    with pytest.raises(StudyFileError, match=r"sampler\.options") as info:
        config.make_sampler()
    assert needle in str(info.value)


def test_cmaes_without_its_package_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    find_spec = importlib.util.find_spec

    def without_cmaes(name: str, *args: Any) -> Any:
        return None if name == "cmaes" else find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", without_cmaes)
    with pytest.raises(ValueError, match=r"pip install \"optuna-lcpred\[cmaes\]\""):
        parse_sampler_spec("cmaes")


@needs("cmaes")
def test_study_file_cmaes_with_options(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(STUDY.format(name="cmaes", options="n_startup_trials = 4"))
    sampler = load_study_file(path).make_sampler(worker_index=2)
    assert isinstance(sampler, optuna.samplers.CmaEsSampler)
    # Worker 2 gets seed 1 + 2 and the file's options.
    expected = optuna.samplers.CmaEsSampler(seed=3, n_startup_trials=4)
    assert _proposals(sampler) == _proposals(expected)
    assert _proposals(sampler) != _proposals(optuna.samplers.CmaEsSampler(seed=3))
