"""A prior's anchor per study or per worker process: what a real multi-process study trains.

    python benchmarks/shared_anchor.py [--table mlpf_delphes] [--workers 8] [--trials 40] \
        [--seeds 3] [--step-seconds 0.02]

With a ``prior``, ``LCPredictionPruner`` never stops one trial, the anchor, on the prior's word
until a trial of the study's own has finished (so that a prior from another task is found
out). Where the storage fails a dead process's trials (heartbeats: ``run`` and ``worker`` on
PostgreSQL or MySQL), one anchor serves the whole study; elsewhere each worker process keeps
its own. ``optuna-lcpred bench`` replays its workers in one process and cannot show the
difference, so this script runs the real thing.

For each seed the table's rows are split in two halves: one is the earlier campaign (the
prior), the other is the table the study replays (``ReplayObjective``: a random sampler
proposes, the nearest row of that half is reported step by step, ``--step-seconds`` per step).
``optuna-lcpred run studies/replay_mlpf.toml --workers N`` (with ``--set`` for the table, the
prior, a random sampler and the heartbeats) runs the study on a PostgreSQL server started with
``pgserver`` twice: with heartbeats (the default; one anchor) and with
``rdb.heartbeat_interval = 0`` (an anchor per process). Printed per run: epochs trained as a
fraction of training every trial fully, COMPLETE / PRUNED trials, and the best value.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from optuna_lcpred.curves import CurveTable
from optuna_lcpred.curves import read_curve_table
from optuna_lcpred.curves import resolve_table_path
from optuna_lcpred.curves import write_curve_table


_STUDY = Path(__file__).resolve().parents[1] / "studies" / "replay_mlpf.toml"


def _half(table: CurveTable, rows: np.ndarray, name: str) -> CurveTable:
    return CurveTable(
        params={key: np.asarray(values)[rows] for key, values in table.params.items()},
        steps=table.steps,
        curves=table.curves[rows],
        name=name,
    )


def _run(folder: Path, url: str, args: argparse.Namespace, seed: int, mode: str) -> dict:
    """``optuna-lcpred run`` on the shipped replay study, with this run's table and prior."""
    settings = {
        "study.name": f"anchor-{seed}-{mode}",
        "objective.options.table": str(folder / f"study-{seed}.csv"),
        "objective.options.step_seconds": str(args.step_seconds),
        "sampler.name": "random",
        "sampler.seed": str(seed),
        "pruner.options.prior": str(folder / f"prior-{seed}.csv"),
        "rdb.heartbeat_interval": "60" if mode == "study" else "0",
    }
    out = folder / f"{mode}-{seed}.json"
    command = [str(Path(sys.executable).with_name("optuna-lcpred")), "run", str(_STUDY)]
    for key, value in settings.items():
        command += ["--set", f"{key}={value}"]
    command += ["--storage", url, "--workers", str(args.workers), "--n-trials", str(args.trials)]
    start = time.perf_counter()
    subprocess.run(
        [*command, "--json", str(out), "--no-progress", "-q"],
        check=True,
        stdout=subprocess.DEVNULL,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    summary = json.loads(out.read_text())
    summary["wall_s"] = time.perf_counter() - start
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--table", default="mlpf_delphes")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--step-seconds", type=float, default=0.02)
    args = parser.parse_args()

    import pgserver

    table = read_curve_table(resolve_table_path(args.table))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        server = pgserver.get_server(folder / "pg", cleanup_mode="stop")
        url = server.get_uri()
        print(f"{args.table}: {table.n_trials} rows; {args.workers} worker processes, "
              f"{args.trials} trials a study, a prior of half the rows")  # fmt: skip
        print(f"{'seed':>4} {'anchor':>8} {'epochs':>7} {'complete':>8} {'pruned':>6} "
              f"{'best':>9} {'wall s':>7}")  # fmt: skip
        for seed in range(args.seeds):
            order = np.random.default_rng(seed).permutation(table.n_trials)
            half = table.n_trials // 2
            write_curve_table(_half(table, order[:half], "prior"), folder / f"prior-{seed}.csv")
            write_curve_table(_half(table, order[half:], "study"), folder / f"study-{seed}.csv")
            for mode in ("process", "study"):
                summary = _run(folder, url, args, seed, mode)
                fraction = summary["epochs_trained"] / summary["epochs_full"]
                print(
                    f"{seed:>4} {mode:>8} {fraction:>7.3f} {summary['n_complete']:>8} "
                    f"{summary['n_pruned']:>6} {summary['best_value']:>9.5f} "
                    f"{summary['wall_s']:>7.1f}"
                )
        server.cleanup()


if __name__ == "__main__":
    main()
