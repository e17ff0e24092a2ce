"""The real entry point, run as a user would: ``optuna-lcpred`` in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from optuna_lcpred.curves import read_curve_table
from optuna_lcpred.curves import write_curve_table
from tests.conftest import make_table


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "optuna_lcpred.cli", *args],
        capture_output=True,
        text=True,
        check=check,
        timeout=300,
    )


@pytest.fixture
def table_file(tmp_path: Path) -> Path:
    path = tmp_path / "small.csv"
    write_curve_table(make_table(n_trials=30, n_steps=10, diverged=3, noise=0.01), path)
    return path


def test_version() -> None:
    out = cli("--version")
    assert out.stdout.startswith("optuna-lcpred ")
    # The same command as ``python -m optuna_lcpred`` (job scripts that name their Python).
    package = subprocess.run(
        [sys.executable, "-m", "optuna_lcpred", "--version"],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    assert package.stdout == out.stdout


def test_bench_writes_table_json_and_plot(table_file: Path, tmp_path: Path) -> None:
    out_json, out_png, out_md = tmp_path / "r.json", tmp_path / "r.png", tmp_path / "r.md"
    run = cli(
        "bench", str(table_file), "--pruners", "nop,percentile:percentile=25,n_warmup_steps=2",
        "--trials", "20", "--seeds", "2", "--workers", "3",
        "--json", str(out_json), "--plot", str(out_png), "--markdown", str(out_md),
    )  # fmt: skip
    assert "oracle" in run.stdout and "percentile:percentile=25,n_warmup_steps=2" in run.stdout
    data = json.loads(out_json.read_text())
    entry = data["tables"]["small"]
    assert (entry["T"], entry["n_trials"], entry["seeds"], entry["workers"]) == (10, 20, 2, 3)
    assert set(entry["results"]) == {"nop", "percentile:percentile=25,n_warmup_steps=2", "oracle"}
    assert entry["results"]["nop"]["epochs_fraction"] == 1.0
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    markdown = out_md.read_text().splitlines()
    assert markdown[0].startswith("| table | T | `nop` |") and markdown[2].startswith(
        "| small | 10 |"
    )
    assert "1.000 / 0.000" in markdown[2]  # nop: every epoch, no regret


def test_bench_json_to_stdout(table_file: Path) -> None:
    run = cli("bench", str(table_file), "--pruners", "median", "--trials", "10", "--seeds",
              "1", "--json", "-")  # fmt: skip
    assert set(json.loads(run.stdout)["tables"]["small"]["results"]) == {"median", "oracle"}


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--pruners", "bogus"], "unknown pruner 'bogus'"),
        (["--pruners", "median:warmup=3"], "does not take option(s) warmup"),
        (["--trials", "31"], "has 30 rows to draw from; cannot draw n_trials=31"),
        (["--workers", "0"], "--workers must be >= 1, got 0"),
        (["--unique-rows"], "--unique-rows needs --sampler"),
        (["--sampler", "annealing"], "unknown sampler 'annealing'"),
        (
            ["--sampler", "tpe:n_startp=3"],
            "--sampler: sampler spec 'tpe:n_startp=3': sampler 'tpe'"
            " does not take option(s) n_startp",
        ),
        (["--sampler", "tpe", "--unique-rows", "--trials", "31"], "cannot draw n_trials=31"),
    ],
)
def test_bench_usage_errors_exit_1_and_say_why(
    table_file: Path, args: list[str], needle: str
) -> None:
    run = cli("bench", str(table_file), *args, check=False)
    assert run.returncode == 1
    assert needle in run.stderr
    assert "Traceback" not in run.stderr


def test_bench_missing_and_malformed_tables(tmp_path: Path) -> None:
    run = cli("bench", str(tmp_path / "missing.csv"), check=False)
    assert run.returncode == 1 and "missing.csv" in run.stderr
    bad = tmp_path / "bad.csv"
    bad.write_text("param_a,loss_0\n1,oops\n")
    run = cli("bench", str(bad), check=False)
    assert run.returncode == 1 and "bad.csv, line 2 (trial row 1), column 'loss_0'" in run.stderr


def test_evaluate_json(table_file: Path) -> None:
    run = cli("evaluate", str(table_file), "--predictors", "last,linear,powerlaw",
              "--fractions", "0.2,0.5", "--folds", "3", "--json", "-")  # fmt: skip
    data = json.loads(run.stdout)["tables"]["small"]
    assert set(data) == {"last", "linear", "powerlaw"}
    for by_fraction in data.values():
        assert set(by_fraction) == {"0.2", "0.5"}
        for scores in by_fraction.values():
            assert set(scores) == {"r2", "spearman", "mae"}


def test_evaluate_markdown(table_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "e.md"
    cli("evaluate", str(table_file), "--fractions", "0.5", "--markdown", str(out))
    lines = out.read_text().splitlines()
    assert lines[0] == "| table | predictor | R^2 / rho at 0.5 |"
    assert [line.split(" | ")[1] for line in lines[2:]] == ["last", "linear", "powerlaw"]


def test_evaluate_rejects_unknown_predictor(table_file: Path) -> None:
    run = cli("evaluate", str(table_file), "--predictors", "last,oracle", check=False)
    assert run.returncode == 1 and "unknown oracle" in run.stderr


def test_export_curves_from_sqlite(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    study = optuna.create_study(study_name="exp", storage=storage)
    for value in (0.3, 0.2):
        trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
        for step in range(3):
            trial.report(value + 1.0 / (step + 1), step)
        study.tell(trial, value)
    out = tmp_path / "exp.csv"
    cli("export-curves", "--storage", storage, str(out))  # the only study: no --study needed
    table = read_curve_table(out)
    assert table.n_trials == 2 and table.steps.tolist() == [0, 1, 2]
    assert table.curves[1].tolist() == [1.2, 0.2 + 1 / 2, 0.2 + 1 / 3]
    # Each trial's objective value travels in the value column: the final is what it returned.
    assert out.read_text().splitlines()[0] == "param_x,value,loss_0,loss_1,loss_2"
    assert table.final_values.tolist() == [0.3, 0.2]
    run = cli("export-curves", "--storage", storage, "--study", "nope", str(out), check=False)
    assert run.returncode == 1 and "'nope'" in run.stderr
    # Optuna's CLI names a study with --study-name; it works here too.
    run = cli("export-curves", "--storage", storage, "--study-name", "nope", str(out), check=False)
    assert run.returncode == 1 and "'nope'" in run.stderr
    cli("export-curves", "--storage", storage, "--study-name", "exp", str(out))
    assert read_curve_table(out).n_trials == 2


def test_commands_that_read_a_study_take_the_workers_storage_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The workers read the URL from $OPTUNA_LCPRED_STORAGE (kept off command lines, which
    # others can see); report and export-curves read it too, before Optuna's $OPTUNA_STORAGE.
    ours, optunas = tmp_path / "ours.db", tmp_path / "optunas.db"
    for path, name in ((ours, "ours"), (optunas, "optunas")):
        optuna.create_study(study_name=name, storage=f"sqlite:///{path}")
    monkeypatch.delenv("OPTUNA_LCPRED_STORAGE", raising=False)
    monkeypatch.delenv("OPTUNA_STORAGE", raising=False)
    run = cli("report", check=False)
    assert run.returncode == 1
    assert "--storage is required (or set OPTUNA_LCPRED_STORAGE or OPTUNA_STORAGE)" in run.stderr
    monkeypatch.setenv("OPTUNA_STORAGE", f"sqlite:///{optunas}")
    assert "study 'optunas'" in cli("report").stdout
    monkeypatch.setenv("OPTUNA_LCPRED_STORAGE", f"sqlite:///{ours}")
    assert "study 'ours'" in cli("report").stdout


@pytest.mark.parametrize("command", ["report", "export-curves"])
def test_reading_a_study_from_a_missing_file_leaves_no_new_database(
    tmp_path: Path, command: str
) -> None:
    out = [str(tmp_path / "out.csv")] if command == "export-curves" else []
    typo = tmp_path / "stduy.db"
    run = cli(command, "--storage", f"sqlite:///{typo}", "--study", "s", *out, check=False)
    assert run.returncode == 1 and f"--storage: no SQLite database at '{typo}'" in run.stderr
    journal = tmp_path / "stduy.log"
    run = cli(command, "--storage", f"journal:{journal}", "--study", "s", *out, check=False)
    assert run.returncode == 1 and f"no journal file at '{journal}'" in run.stderr
    assert not typo.exists() and not journal.exists()


def test_bench_with_a_prior_split_and_a_prior_table(table_file: Path, tmp_path: Path) -> None:
    out = cli(
        "bench", str(table_file), "--pruners", "lcpred,lcpred:prior=none,median",
        "--prior-split", "0.5", "--trials", "12", "--seeds", "2", "--early", "5", "--json", "-",
    )  # fmt: skip
    data = json.loads(out.stdout)["tables"]["small"]
    # Half the rows became the prior: 15 rows left to draw from, for every pruner alike.
    assert data["prior"] == "0.5 of the rows" and data["early_trials"] == 5
    for result in data["results"].values():
        assert 0 < result["epochs_fraction_early"] <= 1
        assert sum(result["states"].values()) == 24  # 2 seeds x 12 trials
    other = tmp_path / "other.csv"
    write_curve_table(make_table(n_trials=20, n_steps=10, seed=5, name="other"), other)
    out = cli("bench", str(table_file), "--pruners", "lcpred", "--prior", str(other),
              "--trials", "10", "--seeds", "1", "--json", "-")  # fmt: skip
    assert json.loads(out.stdout)["tables"]["small"]["prior"] == "other"
    bad = cli("bench", str(table_file), "--prior-split", "1.5", check=False)
    assert bad.returncode == 1 and "--prior-split must be in (0, 1), got 1.5" in bad.stderr
    both = cli(
        "bench", str(table_file), "--prior", str(other), "--prior-split", "0.5", check=False
    )
    assert both.returncode == 2 and "not allowed with argument" in both.stderr
