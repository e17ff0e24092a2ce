"""``benchmarks/anytime.py``: every pruner's regret at fixed budgets of training."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from optuna_lcpred.bench.runner import run_benchmark
from optuna_lcpred.curves import CurveTable
from tests.conftest import run_benchmark_script


def _result(traces: list[list[list[float]]], steps: list[int]) -> dict[str, Any]:
    finals = [trace[-1][1] for trace in traces]
    return {
        "epochs_fraction": sum(steps) / len(steps) / 100,
        "regret": sum(finals) / len(finals),
        "regret_per_seed": finals,
        "steps_trained_per_seed": steps,
        "regret_trace_per_seed": traces,
    }


def _file(path: Path, seeds: list[int], results: dict[str, dict[str, Any]]) -> Path:
    """One table of 10 trials of 10 steps (100 steps in all)."""
    table = {"T": 10, "n_trials": 10, "workers": 1, "seed_values": seeds, "results": results}
    path.write_text(json.dumps({"tables": {"t": table}}))
    return path


def _rows(stdout: str, title: str) -> dict[str, list[str]]:
    """The rows of the table printed after the line starting with ``title``."""
    block = stdout.split(title, 1)[1].split("\n\n")[1]
    rows = [line.split("|")[1:-1] for line in block.splitlines()[2:]]
    return {cells[0].strip().strip("`"): [c.strip() for c in cells[1:]] for cells in rows}


def test_regret_when_the_budget_ran_out(tmp_path: Path) -> None:
    # "fast" finds the best model after 20 steps and stops at 40; "slow" reaches 0.5 after 50
    # steps (25 on its second seed) and trains on to 90, never better.
    fast = _result([[[0, 1.0], [20, 0.0]]] * 2, [40, 40])
    slow = _result([[[0, 1.0], [50, 0.5]], [[0, 1.0], [25, 0.5]]], [90, 90])
    path = _file(tmp_path / "a.json", [0, 1], {"fast": fast, "slow": slow})
    run = run_benchmark_script(
        "anytime", path, "--pruner", "fast", "--budgets", "0.1,0.3,0.6", "--table-at", "0.3"
    )
    assert run.returncode == 0, run.stderr
    means = _rows(run.stdout, "Mean regret over")
    # At 10 % neither has completed a trial: nothing found, not the regret of finding nothing.
    # At 30 % "fast" has its best and "slow" has found something on one seed; at 60 % "fast"
    # has ended (40 steps) and counts with its final regret, "slow" has found 0.5 on both.
    assert means["fast"] == ["none in 2/2", "0.000", "0.000"]
    assert means["slow"] == ["none in 2/2", "none in 1/2", "0.500"]
    lowest = _rows(run.stdout, "Tables where")  # where nobody found anything, nobody is lowest
    assert lowest["fast"] == ["0", "1", "1"] and lowest["slow"] == ["0", "0", "0"]
    against = _rows(run.stdout, "`fast` against")
    assert [cell.split(",")[0] for cell in against["slow"]] == ["0 / 0", "1 / 0", "1 / 0"]
    assert against["slow"][0].endswith("p = 1.00")
    per_table = _rows(run.stdout, "Mean regret at B = 0.3")
    assert per_table["t"] == ["0.000", "none in 1/2"]


def test_a_bench_file_reads_and_seed_halves_merge(table: CurveTable, tmp_path: Path) -> None:
    def bench(name: str, seeds: list[int]) -> Path:
        report = run_benchmark([table], ["nop"], n_trials=12, seeds=seeds)
        (tmp_path / name).write_text(json.dumps(report.to_json()))
        return tmp_path / name

    whole = bench("whole.json", [0, 1])
    halves = [bench(f"h{seed}.json", [seed]) for seed in (0, 1)]
    one = run_benchmark_script("anytime", whole, "--pruner", "nop", "--budgets", "0.1,1")
    two = run_benchmark_script(
        "anytime", ",".join(map(str, halves)), "--pruner", "nop", "--budgets", "0.1,1"
    )
    assert one.returncode == 0, one.stderr
    assert one.stdout == two.stdout
    # The oracle trains only new bests and ends at regret 0, within the full budget.
    assert _rows(one.stdout, "Mean regret over")["oracle"][-1] == "0.000"
    assert "`oracle`" not in one.stdout.split("Tables where")[1]


def test_bad_input_is_refused_by_name(tmp_path: Path) -> None:
    good = _result([[[0, 1.0], [20, 0.0]]], [40])
    a = _file(tmp_path / "a.json", [0], {"fast": good})
    run = run_benchmark_script("anytime", a, "--pruner", "lcpred")
    assert run.returncode != 0 and "'lcpred' is not in the results" in run.stderr
    run = run_benchmark_script("anytime", a, a, "--pruner", "fast")
    assert run.returncode != 0 and "'fast' on 't' is in two files" in run.stderr
    run = run_benchmark_script("anytime", f"{a},{a}", "--pruner", "fast")
    assert run.returncode != 0 and "repeats seeds" in run.stderr
    other_seeds = _file(tmp_path / "b.json", [5], {"slow": good})
    run = run_benchmark_script("anytime", a, other_seeds, "--pruner", "fast")
    assert run.returncode != 0 and "other seeds or settings" in run.stderr
    old = {k: v for k, v in good.items() if k != "regret_trace_per_seed"}
    run = run_benchmark_script(
        "anytime", _file(tmp_path / "old.json", [0], {"fast": old}), "--pruner", "fast"
    )
    assert run.returncode != 0 and "no regret traces" in run.stderr
    run = run_benchmark_script("anytime", a, "--pruner", "fast", "--budgets", "0.1,x")
    assert run.returncode != 0 and "'0.1,x'" in run.stderr
    run = run_benchmark_script("anytime", a, "--pruner", "fast", "--budgets", "0")
    assert run.returncode != 0 and "got 0.0" in run.stderr
