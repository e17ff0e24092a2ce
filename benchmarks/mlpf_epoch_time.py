"""Seconds per training epoch of the demo MLPF model, on the CPU and (if present) a GPU.

    python benchmarks/mlpf_epoch_time.py [--space demo|clic] [--devices cpu,cuda]
        [--events 2000] [--epochs 3] [--threads 2]

The data are the demo study's (synthetic CLIC-like events, 75 % for training); each
configuration trains ``--epochs`` epochs after one warm-up epoch and prints the median.
``--space demo`` times the corners and middle of studies/mlpf_demo.toml's search space,
``--space clic`` those of studies/mlpf_clic.toml (the models a GPU study trains).
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


CONFIGS = {
    # width, heads, layers, batch size: each space's small corner, middle and large corner
    "demo": [(16, 1, 1, 128), (32, 2, 2, 64), (64, 4, 3, 32)],
    "clic": [(128, 4, 2, 64), (256, 8, 4, 32), (512, 16, 6, 16)],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--space", choices=sorted(CONFIGS), default="demo")
    parser.add_argument(
        "--devices", default=None, help="comma-separated (default: cpu, and cuda if present)"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    train, val = generate_dataset(args.events, seed=0).split(0.25, seed=0)
    if args.devices:
        devices = [torch.device(name) for name in args.devices.split(",")]
    else:
        devices = [torch.device("cpu")]
        if torch.cuda.is_available():
            devices.append(torch.device("cuda"))
    gpu = f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    print(
        f"{len(train)} training / {len(val)} validation events; torch {torch.__version__}, "
        f"{torch.get_num_threads()} CPU threads{gpu}"
    )
    print(
        f"{'device':>8} {'width':>5} {'heads':>5} {'layers':>6} {'batch':>5} "
        f"{'params':>7} {'s/epoch':>8}"
    )
    for device in devices:
        for width, heads, layers, batch in CONFIGS[args.space]:
            torch.manual_seed(0)
            model = MLPFModel(width=width, num_heads=heads, num_layers=layers).to(device)
            fused = True if device.type == "cuda" else None  # as MLPFObjective does
            optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=fused)
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
