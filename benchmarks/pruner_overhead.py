"""Overhead of LCPredictionPruner in a large study; prints its numbers.

A study holds ``--finished`` COMPLETE trials of ``--steps`` steps (synthetic power-law curves
over four hyperparameters). Then:

- refit: the first ``should_prune`` at a step, which fits that step's model (cross-validation of
  every candidate included), at a few steps;
- latency: ``should_prune`` of new trials at a step whose model is already fitted (no refit due),
  median and 95th percentile over ``--calls`` calls. Each trial is decided there for the first
  time, so a decision to prune also predicts the step before (``confirm_prob``); with
  ``--every-step`` each trial is decided at every step before the timed one too, as in a study,
  and that earlier decision is reused.

``--pruner median`` times Optuna's MedianPruner on the same study instead: what reading the
finished trials from the storage costs any pruner.

Usage::

    python benchmarks/pruner_overhead.py [--finished 1000] [--steps 100] [--calls 200]
        [--storage sqlite:///overhead.db] [--pruner lcpred|median] [--every-step]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution
from optuna.trial import TrialState
from optuna.trial import create_trial

from optuna_lcpred import LCPredictionPruner


SPACE = {
    "lr": FloatDistribution(1e-5, 1e-1, log=True),
    "dropout": FloatDistribution(0.0, 0.5),
    "layers": IntDistribution(1, 6),
    "optimizer": CategoricalDistribution(["adam", "sgd"]),
}


def _curve(rng: np.random.Generator, params: dict[str, object], steps: int) -> np.ndarray:
    lr = float(params["lr"])  # type: ignore[arg-type]
    level = 0.3 + 0.2 * abs(np.log10(lr) + 3) + 0.2 * float(params["dropout"])  # type: ignore[arg-type]
    s = np.arange(1, steps + 1)
    return level + rng.uniform(0.5, 2) * s ** -rng.uniform(0.3, 1.2) + rng.normal(0, 0.01, steps)


def _sample(rng: np.random.Generator) -> dict[str, object]:
    return {
        "lr": float(10 ** rng.uniform(-5, -1)),
        "dropout": float(rng.uniform(0, 0.5)),
        "layers": int(rng.integers(1, 7)),
        "optimizer": str(rng.choice(["adam", "sgd"])),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--finished", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--storage", default=None, help="default: in memory")
    parser.add_argument("--pruner", choices=("lcpred", "median"), default="lcpred")
    parser.add_argument(
        "--every-step", action="store_true", help="decide each trial at the steps before too"
    )
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rng = np.random.default_rng(0)
    pruner: optuna.pruners.BasePruner = (
        LCPredictionPruner() if args.pruner == "lcpred" else optuna.pruners.MedianPruner()
    )
    study = optuna.create_study(storage=args.storage, pruner=pruner)
    started = time.perf_counter()
    trials = []
    for _ in range(args.finished):
        params = _sample(rng)
        curve = _curve(rng, params, args.steps)
        trials.append(
            create_trial(
                state=TrialState.COMPLETE,
                value=float(curve[-1]),
                params=params,
                distributions=SPACE,
                intermediate_values={s: float(v) for s, v in enumerate(curve)},
            )
        )
    study.add_trials(trials)
    print(
        f"{args.pruner}; study: {args.finished} COMPLETE trials x {args.steps} steps, "
        f"storage {args.storage or 'in memory'} (built in {time.perf_counter() - started:.1f} s)"
    )

    def run_trial(decision_step: int) -> float:
        params = _sample(rng)
        curve = _curve(rng, params, args.steps)
        study.enqueue_trial(params)
        trial = study.ask(SPACE)
        for step in range(decision_step + 1):
            trial.report(float(curve[step]), step)
            if args.every_step and step < decision_step:
                trial.should_prune()
        begin = time.perf_counter()
        trial.should_prune()
        elapsed = time.perf_counter() - begin
        study.tell(trial, state=TrialState.PRUNED)
        return elapsed

    refits = {}
    for step in (2, 10, 25, 50, 90):
        if step < args.steps - 1:
            refits[step] = run_trial(step)
    for step, seconds in refits.items():
        print(f"refit + decision at step {step:>3}: {seconds:.3f} s")
    print(f"refit, worst of those steps: {max(refits.values()):.3f} s (target <= 0.5 s)")
    latencies = [run_trial(10) * 1e3 for _ in range(args.calls)]
    latencies.sort()
    print(
        f"should_prune without refit (step 10, {args.calls} calls): "
        f"median {statistics.median(latencies):.3f} ms, "
        f"p95 {latencies[int(0.95 * len(latencies)) - 1]:.3f} ms (target: median <= 2 ms)"
    )


if __name__ == "__main__":
    main()
