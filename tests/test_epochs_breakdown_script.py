"""``benchmarks/epochs_breakdown.py``: where a pruner's epochs go, with and without a prior."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from optuna_lcpred.bench.runner import run_benchmark
from optuna_lcpred.bench.runner import split_for_prior
from optuna_lcpred.curves import write_curve_table
from tests.conftest import make_table
from tests.conftest import run_benchmark_script


def _totals(stdout: str) -> dict[str, float]:
    """Each printed row's label and its ``total`` column."""
    rows = {}
    for line in stdout.splitlines()[2:-1]:
        label, numbers = line[:40].strip(), line[40:].split()
        rows[label] = float(numbers[6])  # six parts, then the total
    return rows


@pytest.mark.parametrize("prior_split", [None, 0.5])
def test_parts_add_up_to_the_bench_epochs(tmp_path: Path, prior_split: float | None) -> None:
    table = make_table(n_trials=40, n_steps=10, noise=0.01, name="small")
    path = tmp_path / "small.csv"
    write_curve_table(table, path)
    split = ["--prior-split", "0.5", "--startup", "1"] if prior_split else []
    run = run_benchmark_script(
        "epochs_breakdown", path, "--seeds", "2", "--trials", "15", "--jobs", "1", *split
    )
    assert run.returncode == 0, run.stderr
    assert ("prior split 0.5" in run.stdout.splitlines()[0]) == bool(prior_split)
    # The same replays as the bench's, seed by seed, prior split included: the parts add up to
    # the mean of its per-seed epochs fractions.
    report = run_benchmark(
        [table], ["lcpred"], n_trials=15, seeds=(0, 1), prior_split=prior_split
    ).to_json()
    expected = np.mean(report["tables"]["small"]["results"]["lcpred"]["epochs_fraction_per_seed"])
    totals = _totals(run.stdout)
    assert totals["small"] == pytest.approx(expected, abs=6e-4)
    assert totals["all tables"] == totals["small"]


def test_split_for_prior_keeps_the_rows_apart() -> None:
    table = make_table(n_trials=40, n_steps=10, name="small")
    rows, prior = split_for_prior(table, 3, None, 0.25)
    assert prior is not None and (rows.n_trials, prior.n_trials) == (30, 10)
    # No run is both drawn and in the prior; the same seed splits the same way.
    drawn = {float(v) for v in rows.final_values}
    assert drawn.isdisjoint(float(v) for v in prior.final_values)
    again, _ = split_for_prior(table, 3, None, 0.25)
    np.testing.assert_array_equal(again.final_values, rows.final_values)
    # Without a split: the table, and the prior as given.
    same, given = split_for_prior(table, 3, prior, None)
    assert same is table and given is prior


def test_a_bad_prior_split_names_the_value(tmp_path: Path) -> None:
    path = tmp_path / "small.csv"
    write_curve_table(make_table(n_trials=20, n_steps=10), path)
    run = run_benchmark_script("epochs_breakdown", path, "--prior-split", "1.5")
    assert run.returncode == 2 and "--prior-split must be in (0, 1), got 1.5" in run.stderr
