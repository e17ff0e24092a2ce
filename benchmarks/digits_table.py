"""A curve table from real training: MLPs on scikit-learn's bundled digits, random settings.

    python benchmarks/digits_table.py DIR [--rows 500] [--epochs 40] [--seed 0] [--jobs 2]

Writes ``DIR/digits_mlp.csv`` (the CSV format of ``optuna-lcpred bench``): one row per run, the
validation cross-entropy after each epoch; and ``DIR/digits_mlp_best.csv``, the same runs as an
objective that reports the best validation loss so far would see them (a running minimum: the
loss of the checkpoint an early-stopping callback keeps).

Each run trains a PyTorch MLP on 70 % of the 1,797 8x8 digit images that ship with scikit-learn
(no download) and is validated on the other 30 %, with settings drawn at random: optimiser (SGD
with momentum 0.9, or Adam), learning rate (1e-4 to 0.3, log-uniform), weight decay (1e-6 to
1e-2, log-uniform), width (16-256), depth (1-3 hidden layers), dropout (0-0.5) and batch size
(16-128). The validation loss of a small network on a small set rises again once it overfits, so
the final value is not the curve's minimum, and too high a learning rate for Adam diverges
(empty cells from then on): curves of kinds the public tables hold little of, from real training
rather than formulas.

Runs are seeded by their row (``torch.manual_seed(seed * 100003 + row)``, one thread each), so
the table repeats on one machine; another CPU may differ in the last digits. Nothing in it was
fitted to the pruner (docs/benchmarks.md, "Curves of other kinds").
"""

from __future__ import annotations

import argparse
import functools
import math
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from optuna_lcpred import CurveTable
from optuna_lcpred import write_curve_table


def draw_settings(rows: int, seed: int) -> dict[str, np.ndarray]:
    """The settings of every run, drawn at random (reproducibly from ``seed``)."""
    rng = np.random.default_rng(seed)
    return {
        "optimizer": rng.choice(np.array(["sgd", "adam"]), rows),
        "lr": 10 ** rng.uniform(-4.0, math.log10(0.3), rows),
        "weight_decay": 10 ** rng.uniform(-6.0, -2.0, rows),
        "width": rng.choice(np.array([16, 32, 64, 128, 256]), rows),
        "depth": rng.integers(1, 4, rows),
        "dropout": rng.uniform(0.0, 0.5, rows),
        "batch_size": rng.choice(np.array([16, 32, 64, 128]), rows),
    }


@functools.lru_cache(maxsize=1)
def _data(seed: int) -> tuple[Any, Any, Any, Any]:
    """The standardised training and validation split (made once per process)."""
    import torch
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    x, y = load_digits(return_X_y=True)
    x_train, x_val, y_train, y_val = train_test_split(
        x, y, test_size=0.3, random_state=seed, stratify=y
    )
    scaler = StandardScaler().fit(x_train)
    features = [torch.tensor(scaler.transform(a), dtype=torch.float32) for a in (x_train, x_val)]
    labels = [torch.tensor(a, dtype=torch.long) for a in (y_train, y_val)]
    return features[0], labels[0], features[1], labels[1]


def train_one(job: tuple[int, dict[str, Any], int, int]) -> list[float]:
    """Train one run; its validation loss after each epoch (NaN from a divergence on)."""
    import torch
    from torch import nn

    row, settings, epochs, seed = job
    torch.set_num_threads(1)
    torch.manual_seed(seed * 100003 + row)
    x_train, y_train, x_val, y_val = _data(seed)
    layers: list[nn.Module] = []
    width_in = x_train.shape[1]
    for _ in range(int(settings["depth"])):
        layers += [nn.Linear(width_in, int(settings["width"])), nn.ReLU()]
        layers.append(nn.Dropout(float(settings["dropout"])))
        width_in = int(settings["width"])
    model = nn.Sequential(*layers, nn.Linear(width_in, 10))
    lr, wd = float(settings["lr"]), float(settings["weight_decay"])
    if settings["optimizer"] == "adam":
        optimizer: torch.optim.Optimizer = torch.optim.Adam(
            model.parameters(), lr=lr, weight_decay=wd
        )
    else:
        optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=wd)
    loss_fn = nn.CrossEntropyLoss()
    batch = int(settings["batch_size"])
    losses: list[float] = []
    for _ in range(epochs):
        if losses and not math.isfinite(losses[-1]):
            losses.append(math.nan)
            continue
        model.train()
        order = torch.randperm(len(x_train))
        for start in range(0, len(order), batch):
            index = order[start : start + batch]
            optimizer.zero_grad()
            loss_fn(model(x_train[index]), y_train[index]).backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            value = float(loss_fn(model(x_val), y_val))
        losses.append(value if math.isfinite(value) else math.nan)
    return losses


def make_table(rows: int, epochs: int, seed: int, jobs: int) -> CurveTable:
    settings = draw_settings(rows, seed)
    work = [
        (row, {key: values[row] for key, values in settings.items()}, epochs, seed)
        for row in range(rows)
    ]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        curves = np.array(list(pool.map(train_one, work, chunksize=4)), dtype=np.float64)
    return CurveTable(settings, np.arange(epochs), curves, name="digits_mlp")


def best_so_far(table: CurveTable) -> CurveTable:
    """Each curve's running minimum (a diverged run stays empty from its divergence on)."""
    curves = np.where(np.isnan(table.curves), np.inf, table.curves)
    running = np.minimum.accumulate(curves, axis=1)
    running[np.isnan(table.curves)] = np.nan
    return CurveTable(table.params, table.steps, running, name=f"{table.name}_best")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path, help="folder the table is written to")
    parser.add_argument("--rows", type=int, default=500, help="runs (default 500)")
    parser.add_argument("--epochs", type=int, default=40, help="epochs per run (default 40)")
    parser.add_argument("--seed", type=int, default=0, help="settings and data split")
    parser.add_argument("--jobs", type=int, default=2, help="training processes")
    args = parser.parse_args()
    for name in ("rows", "epochs", "jobs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    args.out.mkdir(parents=True, exist_ok=True)
    table = make_table(args.rows, args.epochs, args.seed, args.jobs)
    path = args.out / "digits_mlp.csv"
    write_curve_table(table, path)
    write_curve_table(best_so_far(table), args.out / "digits_mlp_best.csv")
    diverged = int(np.isnan(table.curves[:, -1]).sum())
    print(f"{path}: {args.rows} runs of {args.epochs} epochs, {diverged} diverged")
    print(f"{args.out / 'digits_mlp_best.csv'}: the same runs, best validation loss so far")


if __name__ == "__main__":
    main()
