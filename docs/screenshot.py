"""Screenshots of optuna-dashboard on a demo study, for docs/dashboard.md.

Runs a small study with :class:`~optuna_lcpred.LCPredictionPruner` (audit trials on) and
:class:`~optuna_lcpred.dashboard.DashboardCallback`, starts optuna-dashboard on it, and has a
headless Chromium save ``docs/img/dashboard.png`` (the study page, with the calibration figure)
and ``docs/img/dashboard_trial.png`` (a pruned trial with its note)::

    apt-get install chromium            # Debian's package: /usr/bin/chromium
    pip install -e ".[dashboard]"
    python docs/screenshot.py

The demo objective replays learning curves made here (no data files, no network); Chromium
reaches only the local dashboard (background networking off).
"""

from __future__ import annotations

import argparse
import math
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import optuna

from optuna_lcpred import LCPredictionPruner
from optuna_lcpred.dashboard import DashboardCallback


HERE = Path(__file__).resolve().parent


def demo_objective(trial: optuna.Trial) -> float:
    """A power-law learning curve whose floor depends on the learning rate and the width."""
    lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
    width = trial.suggest_categorical("width", [32, 64, 128])
    rng = np.random.default_rng(trial.number)
    floor = 0.2 + 0.25 * abs(math.log10(lr) + 2.5) + 0.05 * (128 / width) + rng.uniform(0, 0.05)
    scale, rate = rng.uniform(0.6, 1.6), rng.uniform(0.4, 1.2)
    loss = math.inf
    for step in range(40):
        loss = floor + scale * (step + 1) ** -rate + 0.005 * rng.standard_normal()
        trial.report(loss, step)
        if trial.should_prune():
            raise optuna.TrialPruned()
    return loss


def make_demo_study(storage: str, n_trials: int) -> optuna.Study:
    study = optuna.create_study(
        storage=storage,
        study_name="lcpred-demo",
        sampler=optuna.samplers.TPESampler(seed=0),
        pruner=LCPredictionPruner(audit_fraction=0.2, seed=0),
    )
    study.optimize(demo_objective, n_trials=n_trials, callbacks=[DashboardCallback(every=10)])
    return study


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def screenshot(chromium: str, url: str, out: Path, size: str) -> None:
    subprocess.run(
        [
            chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            "--disable-background-networking", "--disable-component-update", "--no-first-run",
            "--disable-sync", "--disable-extensions", f"--window-size={size}",
            "--virtual-time-budget=20000", f"--screenshot={out}", url,
        ],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    if not out.exists() or out.stat().st_size == 0:
        raise RuntimeError(f"chromium wrote no screenshot to {out}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "img", help="folder for the PNGs")
    parser.add_argument("--trials", type=int, default=80, help="trials in the demo study")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = parser.parse_args(argv)
    if not Path(args.chromium).exists():
        print(f"no Chromium at {args.chromium}: apt-get install chromium", file=sys.stderr)
        return 2
    from optuna_dashboard import run_server

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        storage = f"sqlite:///{Path(tmp) / 'demo.db'}"
        study = make_demo_study(storage, args.trials)
        study_id = study._study_id  # the dashboard's URLs use it
        pruned = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
        port = _free_port()
        server = threading.Thread(
            target=run_server, args=(storage,), kwargs={"host": "127.0.0.1", "port": port},
            daemon=True,
        )  # fmt: skip
        server.start()
        base = f"http://127.0.0.1:{port}/dashboard/studies/{study_id}"
        _wait_for(f"http://127.0.0.1:{port}/api/studies")
        screenshot(args.chromium, base, args.out / "dashboard.png", "1400,2400")
        print(f"wrote {args.out / 'dashboard.png'}")
        if pruned:
            # The trial list opened at the latest pruned trial: its note says why.
            url = f"{base}/trials?numbers={pruned[-1].number}"
            screenshot(args.chromium, url, args.out / "dashboard_trial.png", "1400,1400")
            print(f"wrote {args.out / 'dashboard_trial.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
