"""Stop a real MLPF worker mid-trial with SIGTERM, start the next one, and count the cost.

    python benchmarks/stop_and_resume.py [--trials 3] [--stop-after 12] [--directory DIR]

Runs studies/mlpf_demo.toml (``--trials`` trials, one worker, SQLite) three times: without a
stop; with SIGTERM to the worker once trial 1 has reported ``--stop-after`` epochs, then a
second worker, with ``checkpoint_dir`` set; and the same without it. Prints each study's
summary (which counts the epochs lost in stopped trials), its trials (number, state, epochs
reported, ``lcpred:retry_of``, ``lcpred:resumed_from``, value) and the wall time from the first
worker's start to the last one's end. The trial that was stopped reaches the same final value
as in the study without a stop when its retry resumes from the checkpoint.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
from optuna.trial import TrialState


REPO = Path(__file__).resolve().parent.parent
STUDY_FILE = REPO / "studies" / "mlpf_demo.toml"
CLI = [sys.executable, "-m", "optuna_lcpred.cli"]


def _study(folder: Path, trials: int, stop_after: int | None, checkpoints: bool) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{folder / 'study.sqlite3'}"
    overrides = ["--set", f"study.n_trials={trials}"]
    if checkpoints:
        overrides += ["--set", 'objective.options.checkpoint_dir="checkpoints"']
    env = dict(os.environ, OPTUNA_LCPRED_STORAGE=url)
    prepare = [*CLI, "run", str(STUDY_FILE), "--workers", "0", "--storage", url, *overrides]
    subprocess.run(prepare, cwd=folder, check=True, capture_output=True)
    worker = [*CLI, "worker", str(STUDY_FILE), *overrides]
    start = time.perf_counter()
    if stop_after is not None:
        process = subprocess.Popen(worker, cwd=folder, env=env, stderr=subprocess.DEVNULL)
        while not _trial_one_reached(url, stop_after):
            time.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=300)
    subprocess.run(worker, cwd=folder, env=env, check=True, capture_output=True)
    wall = time.perf_counter() - start
    summary = subprocess.run(prepare, cwd=folder, check=True, capture_output=True, text=True)
    print(f"## {folder.name}: {wall:.1f} s wall for the workers")
    print(summary.stdout)
    study = optuna.load_study(study_name="mlpf-demo", storage=url)
    print("number, state, epochs, retry_of, resumed_from, value")
    for t in study.trials:
        print(
            f"  {t.number}, {t.state.name}, {len(t.intermediate_values)}, "
            f"{t.user_attrs.get('lcpred:retry_of')}, {t.user_attrs.get('lcpred:resumed_from')}, "
            f"{t.value}"
        )
    print()


def _trial_one_reached(url: str, epochs: int) -> bool:
    study = optuna.load_study(study_name="mlpf-demo", storage=url)
    return any(
        t.number == 1 and len(t.intermediate_values) >= epochs
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--stop-after", type=int, default=12)
    parser.add_argument("--directory", type=Path, default=None)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    root = args.directory or Path(tempfile.mkdtemp(prefix="lcpred-resume-"))
    _study(root / "no-stop", args.trials, None, checkpoints=False)
    _study(root / "stop-with-checkpoints", args.trials, args.stop_after, checkpoints=True)
    _study(root / "stop-without-checkpoints", args.trials, args.stop_after, checkpoints=False)


if __name__ == "__main__":
    main()
