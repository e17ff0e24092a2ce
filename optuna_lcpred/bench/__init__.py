"""Benchmarks over learning-curve tables: pruner replay (``bench``) and prediction quality
(``evaluate``). Imported on demand, not by ``optuna_lcpred`` itself."""

from __future__ import annotations

from optuna_lcpred.bench.evaluate import evaluate_table
from optuna_lcpred.bench.metrics import epochs_fraction
from optuna_lcpred.bench.metrics import oracle_outcome
from optuna_lcpred.bench.metrics import regret
from optuna_lcpred.bench.objective import ReplayObjective
from optuna_lcpred.bench.pruners import make_pruner
from optuna_lcpred.bench.pruners import parse_pruner_list
from optuna_lcpred.bench.pruners import register_pruner
from optuna_lcpred.bench.replay import ReplayResult
from optuna_lcpred.bench.replay import replay
from optuna_lcpred.bench.runner import BenchReport
from optuna_lcpred.bench.runner import run_benchmark


__all__ = [
    "BenchReport",
    "ReplayObjective",
    "ReplayResult",
    "epochs_fraction",
    "evaluate_table",
    "make_pruner",
    "oracle_outcome",
    "parse_pruner_list",
    "register_pruner",
    "regret",
    "replay",
    "run_benchmark",
]
