from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import optuna
import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution
from optuna.trial import TrialState

from optuna_lcpred.curves import CurveTable
from optuna_lcpred.curves import CurveTableError
from optuna_lcpred.curves import read_curve_table
from optuna_lcpred.curves import read_curve_tables
from optuna_lcpred.curves import resolve_table_path
from optuna_lcpred.curves import study_to_curve_table
from optuna_lcpred.curves import write_curve_table
from tests.conftest import make_table


def assert_tables_equal(a: CurveTable, b: CurveTable) -> None:
    assert a.param_names == b.param_names
    for key in a.params:
        assert a.params[key].dtype == b.params[key].dtype, key
        if a.params[key].dtype == object:
            assert a.params[key].tolist() == b.params[key].tolist(), key
        else:
            np.testing.assert_array_equal(a.params[key], b.params[key])
    np.testing.assert_array_equal(a.steps, b.steps)
    # assert_array_equal treats NaN == NaN, and compares +-inf exactly.
    np.testing.assert_array_equal(a.curves, b.curves)
    assert (a.finals is None) == (b.finals is None)
    if a.finals is not None:
        np.testing.assert_array_equal(a.finals, b.finals)


def test_round_trip_keeps_every_value_and_type(tmp_path: Path) -> None:
    original = CurveTable(
        params={
            "lr": np.array([1e-3, 0.1, np.nan]),
            "layers": np.array([2, 3, 4]),
            "act": np.array(["relu", None, "a,b"], dtype=object),
        },
        steps=np.array([1, 5, 10]),
        curves=np.array([[1.0, 0.5, 0.1 + 0.2], [np.inf, np.nan, -np.inf], [3.0, 2.0, np.nan]]),
        name="rt",
    )
    path = tmp_path / "rt.csv"
    write_curve_table(original, path)
    back = read_curve_table(path)
    assert back.name == "rt"  # the file stem names the table
    assert_tables_equal(original, back)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.lists(st.floats(allow_nan=True, allow_infinity=True, width=64), min_size=3, max_size=3),
        min_size=1,
        max_size=6,
    )
)
def test_round_trip_any_floats(tmp_path_factory: pytest.TempPathFactory, rows: list) -> None:
    curves = np.array(rows, dtype=np.float64)
    table = CurveTable(
        params={"x": np.arange(len(rows), dtype=np.int64)}, steps=np.arange(3), curves=curves
    )
    path = tmp_path_factory.mktemp("h") / "t.csv"
    write_curve_table(table, path)
    assert_tables_equal(table, read_curve_table(path))


def test_bundled_mlpf_table_reads() -> None:
    table = read_curve_table("mlpf_delphes")
    assert (table.n_trials, table.n_steps) == (296, 100)
    assert len(table.param_names) == 7
    assert np.isfinite(table.curves).all()


def test_distributions_follow_the_columns(table: CurveTable) -> None:
    dists = table.distributions()
    # lr spans three decades: log scale; width is integral; activation is text.
    assert isinstance(dists["lr"], FloatDistribution) and dists["lr"].log
    assert isinstance(dists["width"], IntDistribution) and not dists["width"].log
    assert dists["activation"] == CategoricalDistribution(["relu", "tanh"])
    for row in range(table.n_trials):
        for key, value in table.row_params(row).items():
            assert dists[key]._contains(dists[key].to_internal_repr(value))


def test_config_groups_match_identical_hyperparameters() -> None:
    table = CurveTable(
        params={"a": np.array([1.0, 1.0, 2.0, np.nan, np.nan]), "b": np.array(["x"] * 5, object)},
        steps=np.arange(1),
        curves=np.zeros((5, 1)),
    )
    groups = table.config_groups()
    assert groups[0] == groups[1] and groups[3] == groups[4]  # repeats share a group
    assert len(set(groups.tolist())) == 3


def _write(tmp_path: Path, text: str, name: str = "bad.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("param_a,param_b\n1,2\n", ["bad.csv", "no loss_<step> columns"]),
        (
            "param_a,loss_0,loss_1\n1,0.5,0.4\n2,0.5,abc\n",
            ["bad.csv", "line 3", "'loss_1'", "abc"],
        ),
        ("param_a,loss_5,loss_05\n1,0.5,0.4\n", ["bad.csv", "'loss_05'", "duplicate step 5"]),
        ("param_a,param_a,loss_0\n1,2,0.5\n", ["bad.csv", "'param_a'", "duplicate parameter"]),
        ("param_a,los_0\n1,0.5\n", ["bad.csv", "'los_0'", "unknown column"]),
        ("param_a,loss_x\n1,0.5\n", ["bad.csv", "'loss_x'", "non-negative integer"]),
        ("param_a,loss_0\n1,0.5\n2\n", ["bad.csv", "line 3", "1 cells"]),
        ("value,loss_0\n0.5,0.5\nbest,0.4\n", ["bad.csv", "line 3", "'value'", "'best'"]),
        ("value,loss_0,value\n1,0.5,1\n", ["bad.csv", "'value'", "duplicate value column"]),
        ("", ["bad.csv", "empty"]),
        ("param_a,loss_0\n", ["bad.csv", "no trial rows"]),
    ],
)
def test_malformed_tables_name_file_column_and_row(
    tmp_path: Path, text: str, needles: list[str]
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(CurveTableError) as info:
        read_curve_table(path)
    for needle in needles:
        assert needle in str(info.value), (needle, str(info.value))


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.csv"):
        resolve_table_path(tmp_path / "nope.csv")


def test_table_rejects_inconsistent_shapes() -> None:
    with pytest.raises(ValueError, match="one value per trial"):
        CurveTable(params={"a": np.arange(3)}, steps=np.arange(2), curves=np.zeros((2, 2)))
    with pytest.raises(ValueError, match="strictly increasing"):
        CurveTable(params={}, steps=np.array([2, 1]), curves=np.zeros((1, 2)))


def _objective_recording(record: dict[int, dict[int, float]]):  # type: ignore[no-untyped-def]
    def objective(trial: optuna.Trial) -> float:
        lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        opt = trial.suggest_categorical("opt", ["adam", "sgd"])
        depth = trial.suggest_int("depth", 1, 4)
        curve = {}
        for step in range(0, 20, 2):  # sparse steps: 0, 2, ..., 18
            value = 1.0 / (1 + step) + lr + (0.1 if opt == "sgd" else 0.0) + depth * 0.01
            curve[step] = value
            trial.report(value, step)
            if trial.number % 3 == 1 and step == 6:
                record[trial.number] = curve
                raise optuna.TrialPruned()
            if trial.number % 5 == 4 and step == 8:
                record[trial.number] = curve
                raise RuntimeError("node died")
        record[trial.number] = curve
        return value

    return objective


def test_a_value_column_gives_the_finals_of_runs_that_stopped_themselves(tmp_path: Path) -> None:
    table = CurveTable(
        params={"lr": np.array([0.1, 0.01, 0.001])},
        steps=np.arange(4),
        # Row 0 ran to the end; row 1 stopped itself after step 1 (its own early stopping) and
        # returned its best loss; row 2 diverged and has no value.
        curves=np.array([[3.0, 2.0, 1.5, 1.4], [3.0, 2.5, np.nan, np.nan], [3.0, np.nan] * 2]),
        finals=np.array([1.2, 2.5, np.nan]),
        name="own-stopping",
    )
    # The value where there is one (even if not the last report), else the last report.
    np.testing.assert_array_equal(table.final_values, [1.2, 2.5, np.nan])
    assert table.end_indices.tolist() == [3, 1, 3]  # a run without a value ran to the end
    path = tmp_path / "own-stopping.csv"
    write_curve_table(table, path)
    assert path.read_text().splitlines()[:2] == ["param_lr,value,loss_0,loss_1,loss_2,loss_3",
                                                 "0.1,1.2,3.0,2.0,1.5,1.4"]  # fmt: skip
    back = read_curve_table(path)
    assert_tables_equal(table, back)
    assert_tables_equal(table.subset([1]), back.subset([1]))
    assert back.subset([2, 1]).final_values[1] == 2.5
    with pytest.raises(ValueError, match=r"finals must have one value per trial \(3\)"):
        CurveTable(table.params, table.steps, table.curves, finals=np.zeros(2))
    # Without the column nothing changes: the last report is the final.
    plain = CurveTable(table.params, table.steps, table.curves)
    np.testing.assert_array_equal(plain.final_values, [1.4, np.nan, np.nan])
    assert plain.end_indices.tolist() == [3, 3, 3]


def test_export_writes_each_complete_trial_s_value() -> None:
    study = optuna.create_study(direction="maximize")
    for stop_after, value in ((4, 0.9), (2, 0.8)):  # accuracies; the second stopped itself
        trial = study.ask()
        for step in range(stop_after):
            trial.report(0.5 + 0.1 * step, step)
        study.tell(trial, value)
    pruned = study.ask()
    pruned.report(0.1, 0)
    study.tell(pruned, state=TrialState.PRUNED)  # Optuna gives it its last report as value
    table = study_to_curve_table(study)
    assert table.finals is not None
    np.testing.assert_array_equal(table.finals, [-0.9, -0.8, np.nan])  # negated, as the curves
    np.testing.assert_array_equal(table.final_values, [-0.9, -0.8, np.nan])
    assert table.end_indices.tolist() == [3, 1, 3]


def test_export_of_a_real_sqlite_study_equals_what_was_reported(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(study_name="s", storage=storage)
    record: dict[int, dict[int, float]] = {}
    study.optimize(_objective_recording(record), n_trials=12, catch=(RuntimeError,))
    table = study_to_curve_table(optuna.load_study(study_name="s", storage=storage))
    assert table.n_trials == 12  # complete, pruned and failed trials all reported values
    assert table.steps.tolist() == list(range(0, 20, 2))
    trials = study.get_trials()
    for row, trial in enumerate(trials):
        expected = [record[trial.number].get(int(s), math.nan) for s in table.steps]
        np.testing.assert_array_equal(table.curves[row], expected)
        assert table.row_params(row) == trial.params
        complete = trial.state == TrialState.COMPLETE
        assert table.finals is not None
        np.testing.assert_array_equal(table.finals[row], trial.value if complete else np.nan)
    complete_only = study_to_curve_table(study, states=[TrialState.COMPLETE])
    assert complete_only.n_trials == sum(t.state == TrialState.COMPLETE for t in trials)
    # The exported table survives a trip through CSV unchanged.
    path = tmp_path / "out.csv"
    write_curve_table(table, path)
    assert_tables_equal(table, read_curve_table(path, name="s"))


def test_export_negates_a_maximised_study() -> None:
    study = optuna.create_study(direction="maximize")
    trial = study.ask()
    trial.report(0.7, 0)
    study.tell(trial, 0.7)
    table = study_to_curve_table(study)
    assert table.curves.tolist() == [[-0.7]]  # tables hold values to minimise


def test_export_rejects_what_it_cannot_write() -> None:
    multi = optuna.create_study(directions=["minimize", "minimize"])
    with pytest.raises(ValueError, match="2 objectives"):
        study_to_curve_table(multi)
    empty = optuna.create_study(study_name="empty")
    empty.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    with pytest.raises(ValueError, match=r"'empty' has no .* intermediate values"):
        study_to_curve_table(empty)


def test_subset_keeps_rows_in_order() -> None:
    table = make_table(n_trials=5)
    sub = table.subset([3, 1])
    np.testing.assert_array_equal(sub.curves, table.curves[[3, 1]])
    assert sub.params["activation"].tolist() == table.params["activation"][[3, 1]].tolist()


def test_read_curve_tables_expands_folders_in_name_order(tmp_path: Path) -> None:
    folder = tmp_path / "runs"
    folder.mkdir()
    write_curve_table(make_table(6, 4), folder / "b.csv")
    write_curve_table(make_table(5, 3), folder / "a.csv")
    tables = read_curve_tables([folder, "mlpf_delphes"])
    assert [t.name for t in tables] == ["a", "b", "mlpf_delphes"]
    assert [t.n_trials for t in tables[:2]] == [5, 6]


def test_read_curve_tables_refuses_empty_folders_and_name_clashes(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CurveTableError, match=r"holds no \.csv"):
        read_curve_tables([empty])
    other = tmp_path / "other"
    other.mkdir()
    write_curve_table(make_table(5, 3), tmp_path / "a.csv")
    write_curve_table(make_table(5, 3), other / "a.csv")
    with pytest.raises(CurveTableError, match="share the name"):
        read_curve_tables([tmp_path / "a.csv", other])
