"""Curve tables of kinds the public tables lack, to check the pruner beyond them.

    python benchmarks/synthetic_tables.py DIR [--rows 500] [--seed 0]

Writes three tables (the CSV format of ``optuna-lcpred bench``) into ``DIR``:

- ``stepdecay60``: 60 epochs with the learning rate cut tenfold at epochs 30 and 45 (a ResNet
  style schedule). The loss floor is lowest near a learning rate of 0.03; runs with a high
  learning rate are noisy and high until the first cut and among the best after it, so the
  eventual best runs look mediocre for half of their training.
- ``short10``: 10 epochs (a fine-tuning budget); each run approaches its own floor at its own
  rate, and 5 % of the runs diverge (empty cells, NaN) from a random epoch on. Neither
  parameter tells the floor.
- ``noisy200``: 200 evaluations of a power law ``a + b s^-c`` with Gaussian noise of 0.05 on
  every evaluation (validation on a small batch).

Nothing about them was fitted to the pruner: they are here so that its defaults can be seen on
curves they were not chosen on (docs/benchmarks.md, "Curves of other kinds").
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from optuna_lcpred import CurveTable
from optuna_lcpred import write_curve_table


def step_decay(rng: np.random.Generator, rows: int) -> CurveTable:
    lr = 10 ** rng.uniform(-4.0, -0.5, rows)
    wd = 10 ** rng.uniform(-6.0, -2.0, rows)
    width = rng.choice([64, 128, 256, 512], rows)
    t = np.arange(60)
    floor = (
        0.2
        + 0.08 * (np.log10(lr) + 1.5) ** 2
        + 0.02 * np.abs(np.log10(wd) + 4.0)
        + 0.05 * (width < 128)
    )
    noise = 0.5 * lr  # high learning rates: a noisy, high plateau until the first cut
    rate = 0.3 * np.minimum(1.0, 300.0 * lr)
    decay = 0.8 * np.exp(-rate[:, None] * t[None, :])
    phase = np.select([t < 30, t < 45], [1.0, 0.5], 0.25)  # what is left of the decay
    excess = np.select([t < 30, t < 45], [0.5, 0.2], 0.05)  # the plateau's noise excess
    curves = floor[:, None] + noise[:, None] * excess[None, :] + decay * phase[None, :]
    curves += rng.normal(0.0, 1.0, curves.shape) * (0.01 + 0.05 * noise)[:, None]
    return CurveTable({"lr": lr, "wd": wd, "width": width}, t, curves, name="stepdecay60")


def short(rng: np.random.Generator, rows: int) -> CurveTable:
    floor = rng.uniform(0.05, 0.6, rows)
    rate = rng.uniform(0.1, 1.5, rows)
    t = np.arange(10)
    curves = floor[:, None] + (1.0 - floor[:, None]) * np.exp(-rate[:, None] * (t[None, :] + 1))
    curves += rng.normal(0.0, 0.01, curves.shape)
    for row in np.flatnonzero(rng.random(rows) < 0.05):
        curves[row, rng.integers(2, 10) :] = np.nan
    params = {"lr": 10 ** rng.uniform(-4.0, -1.0, rows), "seed": rng.integers(0, 1000, rows)}
    return CurveTable(params, t, curves, name="short10")


def noisy(rng: np.random.Generator, rows: int) -> CurveTable:
    a = rng.uniform(0.1, 1.0, rows)
    b = rng.uniform(0.5, 3.0, rows)
    c = rng.uniform(0.2, 1.2, rows)
    s = np.arange(1, 201)
    curves = a[:, None] + b[:, None] * s[None, :] ** -c[:, None]
    curves += rng.normal(0.0, 0.05, curves.shape)
    params = {"p1": rng.random(rows), "p2": 10 ** rng.uniform(-3.0, 0.0, rows)}
    return CurveTable(params, s - 1, curves, name="noisy200")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    for make in (step_decay, short, noisy):
        table = make(rng, args.rows)
        path = args.directory / f"{table.name}.csv"
        write_curve_table(table, path)
        print(f"{path}: {table.n_trials} runs of {table.n_steps} steps")


if __name__ == "__main__":
    main()
