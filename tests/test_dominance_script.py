"""``benchmarks/dominance.py``: the per-table counts docs/benchmarks.md quotes."""

from __future__ import annotations

import json
from pathlib import Path

from optuna_lcpred.bench.runner import run_benchmark
from optuna_lcpred.curves import CurveTable
from tests.conftest import run_benchmark_script


def _bench_json(tmp_path: Path, name: str, table: CurveTable, pruners: list[str]) -> Path:
    path = tmp_path / name
    report = run_benchmark([table], pruners, n_trials=12, seeds=[0, 1])
    path.write_text(json.dumps(report.to_json()))
    return path


def _edit(path: Path, spec: str, epochs: float, regret: float) -> None:
    data = json.loads(path.read_text())
    for entry in data["tables"].values():
        entry["results"][spec]["epochs_fraction"] = epochs
        entry["results"][spec]["regret"] = regret
    path.write_text(json.dumps(data))


def test_counts_better_trade_off_and_dominated(table: CurveTable, tmp_path: Path) -> None:
    ours = _bench_json(tmp_path, "ours.json", table, ["nop"])
    theirs = _bench_json(tmp_path, "theirs.json", table, ["median", "sha", "hyperband"])
    _edit(ours, "nop", 0.20, 0.010)
    _edit(theirs, "median", 0.25, 0.010)  # more epochs, same regret: ours is better
    _edit(theirs, "sha", 0.15, 0.050)  # fewer epochs, more regret: a trade-off
    _edit(theirs, "hyperband", 0.20, 0.0)  # same epochs, less regret: ours is dominated
    run = run_benchmark_script("dominance", ours, theirs, "--pruner", "nop")
    assert run.returncode == 0, run.stderr
    rows = {line.split("|")[1].strip(): line for line in run.stdout.splitlines() if "|" in line}
    assert rows["`median`"].replace(" ", "").endswith("|1|0|0|")
    assert rows["`sha`"].replace(" ", "").endswith("|0|1|0|")
    assert rows["`hyperband`"].replace(" ", "").endswith("|0|0|1|")
    assert f"dominated by at least one of them on 1 of 1 tables: {table.name}" in run.stdout


def test_files_from_other_settings_or_a_spec_twice_are_refused(
    table: CurveTable, tmp_path: Path
) -> None:
    ours = _bench_json(tmp_path, "ours.json", table, ["nop"])
    other = tmp_path / "other.json"
    data = json.loads(ours.read_text())
    next(iter(data["tables"].values()))["workers"] = 8
    other.write_text(json.dumps(data).replace('"nop"', '"median"'))
    run = run_benchmark_script("dominance", ours, other, "--pruner", "nop")
    assert run.returncode != 0 and "other settings" in run.stderr
    run = run_benchmark_script("dominance", ours, ours, "--pruner", "nop")
    assert run.returncode != 0 and "'nop'" in run.stderr and "two files" in run.stderr
    run = run_benchmark_script("dominance", ours, "--pruner", "lcpred")
    assert run.returncode != 0 and "'lcpred' is not in the results" in run.stderr
