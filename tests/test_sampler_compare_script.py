"""``benchmarks/sampler_compare.py``: the per-table, per-seed comparison of two bench runs."""

from __future__ import annotations

import json
from pathlib import Path

from optuna_lcpred.bench.runner import run_benchmark
from optuna_lcpred.curves import CurveTable
from tests.conftest import run_benchmark_script


SEEDS = list(range(6))


def _bench_json(tmp_path: Path, name: str, table: CurveTable, seeds: list[int] = SEEDS) -> Path:
    path = tmp_path / name
    report = run_benchmark([table], ["nop"], n_trials=12, seeds=seeds)
    path.write_text(json.dumps(report.to_json()))
    return path


def _edit(path: Path, epochs: float, regrets: list[float]) -> None:
    data = json.loads(path.read_text())
    for entry in data["tables"].values():
        result = entry["results"]["nop"]
        result["epochs_fraction"] = epochs
        result["regret_per_seed"] = regrets
        result["regret"] = sum(regrets) / len(regrets)
        result["epochs_fraction_per_seed"] = [epochs] * len(regrets)
    path.write_text(json.dumps(data))


def test_counts_and_the_paired_test(table: CurveTable, tmp_path: Path) -> None:
    a, b = _bench_json(tmp_path, "a.json", table), _bench_json(tmp_path, "b.json", table)
    _edit(a, 0.50, [0.3] * 6)
    _edit(b, 0.52, [0.0] * 6)  # lower regret on every seed, epochs within 5 %
    run = run_benchmark_script(
        "sampler_compare", a, b, "--pruner", "nop", "--names", "tpe", "tpe+predicted"
    )
    assert run.returncode == 0, run.stderr
    row = next(line for line in run.stdout.splitlines() if line.startswith(f"| {table.name}"))
    cells = [c.strip() for c in row.split("|")[1:-1]]
    assert cells[1:6] == ["0.500 / 0.300", "0.520 / 0.000", "yes", "yes", "6 / 0"]
    assert float(cells[6]) < 0.05  # six seeds all the same way: Wilcoxon p = 2 / 2**6
    assert "on 1 of 1 tables" in run.stdout and "paired p < 0.05 on 1" in run.stdout
    assert "Over all 6 table-seed pairs: lower regret on 6, higher on 0, paired p = 0.03" in (
        run.stdout
    )
    # One seed worse, the rest equal: regret higher, and nothing a test can tell from noise.
    _edit(b, 0.60, [0.3] * 5 + [0.4])
    run = run_benchmark_script("sampler_compare", a, b, "--pruner", "nop")
    row = next(line for line in run.stdout.splitlines() if line.startswith(f"| {table.name}"))
    cells = [c.strip() for c in row.split("|")[1:-1]]
    assert cells[3:7] == ["no", "no", "0 / 1", "1.00"]
    assert "on 0 of 1 tables" in run.stdout


def test_other_seeds_or_a_missing_pruner_are_refused(table: CurveTable, tmp_path: Path) -> None:
    a = _bench_json(tmp_path, "a.json", table)
    other = tmp_path / "other.json"
    data = json.loads(a.read_text())
    next(iter(data["tables"].values()))["seed_values"] = [9]
    other.write_text(json.dumps(data))
    run = run_benchmark_script("sampler_compare", a, other, "--pruner", "nop")
    assert run.returncode != 0 and "other seeds" in run.stderr
    run = run_benchmark_script("sampler_compare", a, a, "--pruner", "lcpred")
    assert run.returncode != 0 and "no results for pruner 'lcpred'" in run.stderr


def test_runs_split_over_seeds_merge(table: CurveTable, tmp_path: Path) -> None:
    halves = []
    for name, seeds in (("a0", [0, 1, 2]), ("a3", [3, 4, 5])):
        halves.append(_bench_json(tmp_path, f"{name}.json", table, seeds))
    _edit(halves[0], 0.50, [0.3] * 3)
    _edit(halves[1], 0.50, [0.3] * 3)
    b = _bench_json(tmp_path, "b.json", table)
    _edit(b, 0.50, [0.0] * 6)
    run = run_benchmark_script("sampler_compare", ",".join(map(str, halves)), b, "--pruner", "nop")
    assert run.returncode == 0, run.stderr
    assert "| 6 / 0 |" in run.stdout  # six seeds compared, as in one file
    run = run_benchmark_script("sampler_compare", f"{halves[0]},{halves[0]}", b, "--pruner", "nop")
    assert run.returncode != 0 and "repeats seeds" in run.stderr


def _set_traces(path: Path, steps: list[int], traces: list[list[list[float]]]) -> None:
    data = json.loads(path.read_text())
    for entry in data["tables"].values():
        entry["results"]["nop"]["steps_trained_per_seed"] = steps
        entry["results"]["nop"]["regret_trace_per_seed"] = traces
    path.write_text(json.dumps(data))


def test_regret_at_exactly_equal_epochs(table: CurveTable, tmp_path: Path) -> None:
    a, b = _bench_json(tmp_path, "a.json", table), _bench_json(tmp_path, "b.json", table)
    # The first run ends better (0.0 against 0.2) but found its best late, after 90 steps;
    # the second stopped after 60 and had 0.2 from step 50 on. Stopped at 60 steps both, the
    # first stands at 1.0, so at equal epochs the second is better on every seed.
    _edit(a, 0.50, [0.0] * 6)
    _edit(b, 0.40, [0.2] * 6)
    _set_traces(a, [100] * 6, [[[0, 4.0], [20, 1.0], [90, 0.0]]] * 6)
    _set_traces(b, [60] * 6, [[[0, 4.0], [50, 0.2]]] * 6)
    run = run_benchmark_script("sampler_compare", a, b, "--pruner", "nop")
    assert run.returncode == 0, run.stderr
    assert "regret no worse on 0" in run.stdout  # the tolerance reading: worse at the end
    exact = run.stdout.split("At exactly equal epochs")[1]
    row = next(line for line in exact.splitlines() if line.startswith(f"| {table.name}"))
    cells = [c.strip() for c in row.split("|")[1:-1]]
    assert cells[1:5] == ["1.000", "0.200", "yes", "6 / 0"] and float(cells[5]) < 0.05
    assert "at exactly equal epochs on 1 of 1 tables" in run.stdout
    pooled = [line for line in run.stdout.splitlines() if "table-seed pairs" in line]
    assert "lower regret on 0, higher on 6" in pooled[0]  # at the end, the second is worse
    assert "lower regret on 6, higher on 0, paired p = 0.03" in pooled[1]  # at equal epochs
    # A regret that was never finite (nothing found) reads back as infinite, not as 0.
    _set_traces(b, [60] * 6, [[[0, None]]] * 6)
    run = run_benchmark_script("sampler_compare", a, b, "--pruner", "nop")
    assert "at exactly equal epochs on 0 of 1 tables" in run.stdout, run.stderr
    # Files without traces (older bench versions) still compare by the tolerance.
    for path in (a, b):
        data = json.loads(path.read_text())
        for entry in data["tables"].values():
            del entry["results"]["nop"]["regret_trace_per_seed"]
        path.write_text(json.dumps(data))
    run = run_benchmark_script("sampler_compare", a, b, "--pruner", "nop")
    assert run.returncode == 0 and "no comparison at exactly equal epochs" in run.stdout
