"""``benchmarks/digits_table.py``: a curve table from real training of small MLPs."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from optuna_lcpred.curves import read_curve_table
from tests.conftest import needs
from tests.conftest import run_benchmark_script


@needs("torch")
def test_writes_a_table_of_validation_losses_that_repeats(tmp_path: Path) -> None:
    paths = []
    for name, jobs in (("one", "1"), ("two", "2")):
        run = run_benchmark_script(
            "digits_table", tmp_path / name, "--rows", "4", "--epochs", "3", "--jobs", jobs
        )
        assert run.returncode == 0, run.stderr
        assert "4 runs of 3 epochs" in run.stdout
        paths.append(tmp_path / name / "digits_mlp.csv")
    table = read_curve_table(paths[0])
    assert table.curves.shape == (4, 3)
    assert list(np.asarray(table.steps)) == [0, 1, 2]
    assert set(table.params) == {
        "optimizer", "lr", "weight_decay", "width", "depth", "dropout", "batch_size"
    }  # fmt: skip
    assert set(table.params["optimizer"]) <= {"sgd", "adam"}
    finite = table.curves[np.isfinite(table.curves)]
    # Cross-entropy over 10 classes: positive, and near log(10) = 2.3 for an untrained net.
    assert finite.size and (finite > 0).all() and (finite < 50).all()
    # Each run is seeded by its row: the table does not depend on how many processes train.
    assert paths[0].read_text() == paths[1].read_text()
    # The best-so-far table: the running minimum of the same curves.
    best = read_curve_table(tmp_path / "one" / "digits_mlp_best.csv")
    np.testing.assert_array_equal(best.curves, np.minimum.accumulate(table.curves, axis=1))
    assert (np.diff(best.curves, axis=1) <= 0).all()


def test_bad_counts_are_one_line_errors(tmp_path: Path) -> None:
    run = run_benchmark_script("digits_table", tmp_path, "--rows", "0")
    assert run.returncode == 2
    assert "--rows must be >= 1, got 0" in run.stderr
    assert not (tmp_path / "digits_mlp.csv").exists()
