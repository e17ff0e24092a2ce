"""Seconds per training epoch of the demo MLPF model, on the CPU and (if present) a GPU.

    python benchmarks/mlpf_epoch_time.py [--events 2000] [--epochs 3] [--threads 2]

The data are the demo study's (synthetic CLIC-like events, 75 % for training); each
configuration trains ``--epochs`` epochs after one warm-up epoch and prints the median.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from mlpf_objective.data import generate_dataset
from mlpf_objective.model import MLPFModel
from mlpf_objective.objective import evaluate
from mlpf_objective.objective import train_epoch


CONFIGS = [
    # width, heads, layers, batch size: the demo space's corners and middle
    (16, 1, 1, 128),
    (32, 2, 2, 64),
    (64, 4, 3, 32),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    train, val = generate_dataset(args.events, seed=0).split(0.25, seed=0)
    devices = [torch.device("cpu")]
    if torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    print(
        f"{len(train)} training / {len(val)} validation events; torch {torch.__version__}, "
        f"{torch.get_num_threads()} CPU threads"
    )
    print(
        f"{'device':>8} {'width':>5} {'heads':>5} {'layers':>6} {'batch':>5} "
        f"{'params':>7} {'s/epoch':>8}"
    )
    for device in devices:
        for width, heads, layers, batch in CONFIGS:
            torch.manual_seed(0)
            model = MLPFModel(width=width, num_heads=heads, num_layers=layers).to(device)
            optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
            rng = np.random.default_rng(0)
            times = []
            for epoch in range(args.epochs + 1):
                if device.type == "cuda":
                    torch.cuda.synchronize()
                start = time.perf_counter()
                train_epoch(model, optimizer, train, batch, rng, device)
                evaluate(model, val, device)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                if epoch:  # the first epoch warms up caches and kernels
                    times.append(time.perf_counter() - start)
            n_params = sum(p.numel() for p in model.parameters())
            print(
                f"{device.type:>8} {width:>5} {heads:>5} {layers:>6} {batch:>5} "
                f"{n_params:>7} {statistics.median(times):>8.2f}"
            )


if __name__ == "__main__":
    main()
