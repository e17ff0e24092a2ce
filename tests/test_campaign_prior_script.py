"""``benchmarks/campaign_prior.py``: warm starts from a pruned earlier study and a harder task."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from optuna_lcpred.bench.runner import run_benchmark
from optuna_lcpred.curves import CurveTable
from optuna_lcpred.curves import write_curve_table
from tests.conftest import load_benchmark_script
from tests.conftest import make_table
from tests.conftest import run_benchmark_script


def test_the_priors_are_an_exported_pruned_study_and_a_lowered_table(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    script = load_benchmark_script("campaign_prior", monkeypatch)
    table = make_table(n_trials=40, n_steps=10, noise=0.01, name="small")
    finals = table.final_values
    lowered = script.lowered(table, 0.5)
    delta = 0.5 * (np.median(finals) - finals.min())
    np.testing.assert_allclose(lowered.curves, table.curves - delta)
    study = script.pruned_study(table, "lcpred", 30, seed=0)
    assert study.n_trials == 30
    complete = np.isfinite(study.final_values)
    # Some runs finished and kept their whole curve; the others stop where they were pruned.
    assert 0 < complete.sum() < 30
    assert np.isfinite(study.curves[complete]).all()
    stopped = np.isfinite(study.curves[~complete]).sum(axis=1)
    assert (stopped >= 1).all() and (stopped < table.n_steps).all()
    for curve, n in zip(study.curves[~complete], stopped, strict=True):
        assert np.isfinite(curve[:n]).all() and np.isnan(curve[n:]).all()


def test_self_stopped_runs_end_at_their_patience_and_return_their_best_loss(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    script = load_benchmark_script("campaign_prior", monkeypatch)
    curves = np.array(
        [
            [5.0, 4.0, 3.0, 2.0, 1.0, 0.5],  # improves to the end
            [5.0, 3.0, 3.5, 3.2, 3.1, 2.0],  # three steps without a new best: stops at step 4
            [5.0, 4.0, 4.5, np.nan, 1.0, 1.0],  # diverges at step 3: no value
        ]
    )
    table = CurveTable({"x": np.arange(3.0)}, np.arange(6), curves, name="t")
    stopped = script.self_stopped(table, 0.5)  # patience: 3 of the 6 steps
    np.testing.assert_array_equal(stopped.final_values, [0.5, 3.0, np.nan])
    assert stopped.end_indices.tolist() == [5, 4, 5]
    np.testing.assert_array_equal(stopped.curves[1], [5.0, 3.0, 3.5, 3.2, 3.1, np.nan])
    assert np.isnan(stopped.curves[2, 3:]).all()
    lowered = script.lowered(stopped, 0.5)  # the values move with the curves
    assert lowered.finals is not None and stopped.finals is not None
    shift = lowered.curves[0, 0] - curves[0, 0]
    np.testing.assert_allclose(lowered.finals - stopped.finals, [shift, shift, np.nan])


@pytest.mark.parametrize(
    ("priors", "spec"),
    [
        ((), "lcpred:prior=none"),  # the default priors; "none" comes first
        (("split", "values-dropped"), "lcpred"),  # "split": the half bench --prior-split gives
    ],
)
def test_its_first_prior_replays_what_bench_with_a_prior_split_draws(
    tmp_path: Path, priors: tuple[str, ...], spec: str
) -> None:
    table = make_table(n_trials=40, n_steps=10, noise=0.01, name="small")
    path = tmp_path / "small.csv"
    write_curve_table(table, path)
    chosen = ("--priors", ",".join(priors)) if priors else ()
    run = run_benchmark_script(
        "campaign_prior", path, "--seeds", "2", "--trials", "15", "--jobs", "1", *chosen
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[1].split()[1:] == list(priors or ("none", "pruned", "harder", "pruned+harder"))
    cells = lines[2][40:].replace("/", " ").split()
    report = run_benchmark([table], [spec], n_trials=15, seeds=(0, 1), prior_split=0.5).to_json()
    result = report["tables"]["small"]["results"][spec]
    assert float(cells[0]) == pytest.approx(
        np.median(result["epochs_fraction_per_seed"]), abs=6e-4
    )
    assert float(cells[1]) == pytest.approx(np.mean(result["regret_per_seed"]), abs=6e-4)


def test_unknown_priors_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "small.csv"
    write_curve_table(make_table(n_trials=40, n_steps=10, name="small"), path)
    bad = run_benchmark_script("campaign_prior", path, "--priors", "split,nope")
    assert bad.returncode == 2 and "--priors: nope" in bad.stderr
