"""What a trial checkpoint costs per epoch: seconds to save and load, and bytes on disk.

    python benchmarks/checkpoint_overhead.py [--space demo|clic|both] [--repeats 10]
        [--directory DIR]

Saves and loads the state ``MLPFObjective(checkpoint_dir=...)`` writes after every epoch (the
model's and AdamW's state after one training step, the random states and 30 losses) with
:class:`optuna_lcpred.TrialCheckpoint`, for the corners and middle of the demo and CLIC search
spaces (the models of studies/mlpf_demo.toml and studies/mlpf_clic.toml), and prints the
median of ``--repeats`` saves and loads. ``--directory`` puts the files where the workers
would (a parallel file system); the default is a temporary folder on this machine. Compare
with the seconds per epoch of benchmarks/mlpf_epoch_time.py.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import optuna
import torch

from mlpf_objective.data import collate
from mlpf_objective.data import generate_dataset
from mlpf_objective.loss import mlpf_loss
from mlpf_objective.model import MLPFModel
from optuna_lcpred import TrialCheckpoint


CONFIGS = {
    # width, heads, layers: each space's small corner, middle and large corner
    "demo": [(16, 1, 1), (32, 2, 2), (64, 4, 3)],
    "clic": [(128, 4, 2), (256, 8, 4), (512, 16, 6)],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--space", choices=[*sorted(CONFIGS), "both"], default="both")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--directory", type=Path, default=None)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spaces = sorted(CONFIGS) if args.space == "both" else [args.space]
    batch = collate(generate_dataset(32, seed=0), list(range(32)))
    directory = args.directory or Path(tempfile.mkdtemp(prefix="lcpred-ckpt-"))
    print(f"checkpoints in {directory}; median of {args.repeats} saves / loads")
    print("| space | width, heads, layers | parameters | file (MB) | save (ms) | load (ms) |")
    print("|---|---|---|---|---|---|")
    for space in spaces:
        for width, heads, layers in CONFIGS[space]:
            torch.manual_seed(0)
            model = MLPFModel(width=width, num_heads=heads, num_layers=layers)
            optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
            loss = mlpf_loss(model(batch.elements, batch.mask), batch)[0]
            loss.backward()
            optimizer.step()  # AdamW's moments exist only after a step
            rng = np.random.default_rng(0)
            state = {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "torch_rng": torch.get_rng_state(),
                "numpy_rng": rng.bit_generator.state,
                "losses": [1.0] * 30,
                "seconds": 1.0,
            }
            study = optuna.create_study(study_name=f"{space}-{width}-{heads}-{layers}")
            checkpoint = TrialCheckpoint(directory, study.ask())
            saves, loads = [], []
            for _ in range(args.repeats):
                start = time.perf_counter()
                checkpoint.save(29, state)
                saves.append(time.perf_counter() - start)
                start = time.perf_counter()
                checkpoint.load()
                loads.append(time.perf_counter() - start)
            n_parameters = sum(p.numel() for p in model.parameters())
            size = checkpoint.path.stat().st_size / 1e6
            checkpoint.remove()
            print(
                f"| {space} | {width}, {heads}, {layers} | {n_parameters:,} | {size:.2f} | "
                f"{1e3 * statistics.median(saves):.1f} | {1e3 * statistics.median(loads):.1f} |"
            )


if __name__ == "__main__":
    main()
