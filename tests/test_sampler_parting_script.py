"""``benchmarks/sampler_parting.py``: where a sampler's runs with and without the wrapper part."""

from __future__ import annotations

import math
from types import ModuleType

import pytest

from optuna_lcpred.bench.runner import run_benchmark
from tests.conftest import load_benchmark_script
from tests.conftest import make_table


@pytest.fixture
def parting(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    return load_benchmark_script("sampler_parting", monkeypatch)


def test_summary_counts_members_re_runs_and_regrets(parting: ModuleType) -> None:
    def member(error: float, rerun: bool, ahead: bool) -> dict[str, object]:
        return {"error": error, "rerun": rerun, "ahead_of_twin": ahead}

    records = [
        {"table": "a", "part": 11, "members": [member(-0.02, True, True)], "regrets": (0.1, 0.3)},
        {"table": "a", "part": 15, "members": [member(0.04, True, False)], "regrets": (0.2, 0.2)},
        {"table": "a", "part": None, "members": [], "regrets": (0.5, 0.5)},
        {"table": "b", "part": 20, "members": [member(0.10, False, False)], "regrets": (0.4, 0.1)},
    ]
    lines = parting.summary_rows(records)
    assert lines[0] == "| a | 2 / 3 | 13 | 2 | 2 | 1 | 0.030 | 0 / 2 / 1 |"
    assert lines[1] == "| b | 1 / 1 | 20 | 1 | 0 | 0 | 0.100 | 1 / 0 / 0 |"
    assert lines[2] == "| all tables | 3 / 4 | 15 | 3 | 2 | 1 | 0.040 | 1 / 2 / 1 |"


def test_a_real_seed_pair_parts_where_the_proposals_first_differ(parting: ModuleType) -> None:
    table = make_table(n_trials=120, n_steps=12)
    record = parting.parting(table, "lcpred", "tpe", seed=0, trials=40)
    plain, wrapped = record["rows"]
    part = record["part"]
    assert part is not None  # the wrapper changed what TPE saw on this table
    assert record["members"]  # a pruned trial in TPE's good group is what made them part
    assert plain[:part] == wrapped[:part] and plain[part] != wrapped[part]
    for member in record["members"]:
        assert math.isfinite(member["error"])
        assert member["rerun"] or not member["ahead_of_twin"]
    # The plain run is the replay that `bench --sampler tpe` makes of the same seed.
    report = run_benchmark([table], ["lcpred"], n_trials=40, seeds=[0], sampler="tpe")
    result = report.to_json()["tables"][table.name]["results"]["lcpred"]
    assert record["regrets"][0] == pytest.approx(result["regret_per_seed"][0])
