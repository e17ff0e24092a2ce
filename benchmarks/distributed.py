"""Per-decision cost of ``should_prune`` on PostgreSQL with many concurrent workers.

    python benchmarks/distributed.py [--finished 100,1000,5000] [--workers 16] \
        [--decisions 15] [--steps 30] [--storage postgresql://...]

For each number of finished trials N, a study is filled with N COMPLETE trials (synthetic
power-law curves of ``--steps`` steps, two hyperparameters), then ``--workers`` processes start
together. Each runs two trials that report a value and call ``trial.should_prune()`` at the
first ``--decisions`` steps, timing every call and counting the SQL statements it sends
(SQLAlchemy ``before_cursor_execute``). The first trial fills the worker's finished-trial cache
and, for LCPredictionPruner, fits one model per step: its mean time per decision is reported
apart ("first"). The second trial meets cached models, as every trial after the first does in a
study whose finished trials change rarely compared with its decisions: the steady state.
Workers' own trials end PRUNED, so N stays fixed. Without ``--storage``, a PostgreSQL server is
started with ``pgserver`` in a temporary folder (Unix socket).
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import tempfile
import time
from typing import Any

import numpy as np


PRUNERS = ("median", "lcpred")


def _pruner(name: str) -> Any:
    import optuna

    from optuna_lcpred import LCPredictionPruner

    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5)
    return LCPredictionPruner(n_startup_trials=5, min_prob=0.0)  # decide, never prune


def _storage(url: str) -> Any:
    from optuna.storages import RDBStorage

    return RDBStorage(
        url,
        engine_kwargs={"pool_size": 2, "max_overflow": 2, "pool_pre_ping": True},
    )


def _fill(url: str, study_name: str, n_finished: int, n_steps: int) -> float:
    import optuna
    from optuna.distributions import FloatDistribution
    from optuna.trial import TrialState
    from optuna.trial import create_trial

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    start = time.perf_counter()
    study = optuna.create_study(study_name=study_name, storage=_storage(url))
    rng = np.random.default_rng(0)
    steps = np.arange(1, n_steps + 1)
    dists = {"lr": FloatDistribution(1e-4, 1e-1, log=True), "wd": FloatDistribution(0, 0.1)}
    trials = []
    for _ in range(n_finished):
        lr, wd = 10 ** rng.uniform(-4, -1), rng.uniform(0, 0.1)
        level = 0.2 + 0.3 * abs(np.log10(lr) + 2) + wd
        curve = level + rng.uniform(0.5, 2) * steps ** -rng.uniform(0.3, 1.2)
        trials.append(
            create_trial(
                state=TrialState.COMPLETE,
                value=float(curve[-1]),
                params={"lr": lr, "wd": wd},
                distributions=dists,
                intermediate_values={i: float(v) for i, v in enumerate(curve)},
            )
        )
    study.add_trials(trials)
    return time.perf_counter() - start


def _worker(args: tuple[str, str, str, int, int, int, Any]) -> dict[str, list[float]]:
    import optuna
    from optuna.distributions import FloatDistribution
    from sqlalchemy import event

    url, study_name, pruner_name, decisions, n_steps, seed, barrier = args
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = _storage(url)
    counter = {"n": 0}

    def count(*_: Any) -> None:
        counter["n"] += 1

    event.listen(storage.engine, "before_cursor_execute", count)
    study = optuna.load_study(
        study_name=study_name,
        storage=storage,
        pruner=_pruner(pruner_name),
        sampler=optuna.samplers.RandomSampler(seed=seed),
    )
    rng = np.random.default_rng(seed)
    space = {"lr": FloatDistribution(1e-4, 1e-1, log=True), "wd": FloatDistribution(0, 0.1)}
    out: dict[str, list[float]] = {"first": [], "seconds": [], "cpu": [], "statements": []}
    barrier.wait()
    # Trial 1 visits every decision step once: the cache fill and, for LCPredictionPruner,
    # one model fit per step happen here. Trial 2 visits the same steps: the steady state.
    for phase in ("first", "seconds"):
        trial = study.ask(space)
        level = 0.3 + rng.uniform(0, 1)
        for step in range(min(decisions, n_steps - 1)):
            trial.report(float(level + 1.0 / (step + 1) ** 0.5), step)
            before = counter["n"]
            start, cpu = time.perf_counter(), time.process_time()
            trial.should_prune()
            out[phase].append(time.perf_counter() - start)
            if phase == "seconds":
                out["cpu"].append(time.process_time() - cpu)
                out["statements"].append(float(counter["n"] - before))
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--finished", default="100,1000,5000")
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--decisions", type=int, default=15)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--storage", help="a PostgreSQL URL (default: a pgserver instance)")
    args = parser.parse_args()
    server = None
    if args.storage:
        base = args.storage
    else:
        import pgserver

        server = pgserver.get_server(tempfile.mkdtemp(prefix="lcpred-pg-"), cleanup_mode="stop")
        base = server.get_uri()
    from optuna_lcpred.worker import with_installed_driver

    base = with_installed_driver(base)
    context = multiprocessing.get_context("spawn")
    print(
        f"{args.workers} workers, {args.steps}-step curves, decisions at steps 0..."
        f"{args.decisions - 1}; first: mean ms per decision of a worker's first trial; "
        "steady state: median and p90 wall ms, median CPU ms of the worker process, SQL "
        "statements per decision"
    )
    print(
        f"{'finished':>8} {'pruner':>7} {'fill s':>7} {'first ms':>9} {'ms/decision':>12} "
        f"{'p90 ms':>7} {'cpu ms':>7} {'statements':>10}"
    )
    try:
        for n_finished in [int(n) for n in args.finished.split(",")]:
            # Both pruners run on the same study: the workers' trials end PRUNED, so the
            # COMPLETE trials the pruners learn from stay the same N.
            name = f"bench-{n_finished}-{time.time_ns()}"
            fill = _fill(base, name, n_finished, args.steps)
            for pruner_name in PRUNERS:
                barrier = context.Manager().Barrier(args.workers)
                jobs = [
                    (base, name, pruner_name, args.decisions, args.steps, i, barrier)
                    for i in range(args.workers)
                ]
                with context.Pool(args.workers) as pool:
                    results = pool.map(_worker, jobs)
                first = [x for r in results for x in r["first"]]
                seconds = [x for r in results for x in r["seconds"]]
                cpu = [x for r in results for x in r["cpu"]]
                statements = [x for r in results for x in r["statements"]]
                print(
                    f"{n_finished:>8} {pruner_name:>7} {fill:>7.1f} "
                    f"{1e3 * statistics.mean(first):>9.1f} "
                    f"{1e3 * statistics.median(seconds):>12.2f} "
                    f"{1e3 * float(np.quantile(seconds, 0.9)):>7.2f} "
                    f"{1e3 * statistics.median(cpu):>7.2f} "
                    f"{statistics.mean(statements):>10.2f}",
                    flush=True,
                )
    finally:
        if server is not None:
            server.cleanup()


if __name__ == "__main__":
    main()
