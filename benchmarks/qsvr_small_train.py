"""Annealer-trained SVR against classical SVR on few training points (the reference experiment).

    python benchmarks/qsvr_small_train.py [--table mlpf_delphes] [--fraction 0.25] \
        [--train 20] [--splits 10] [--sampler sa] [--num-reads 100] [--all-rows]

For each split (seeded by its number) ``--train`` rows of the table are drawn as the training
set and every other row is the test set. Both predictors see the same features: the first
``fraction`` of each curve and the hyperparameters. Printed per split and on average: R^2 on the
test rows (``r2_score(y_true, y_pred)``) of ``SVRPredictor`` (NuSVR) and ``QSVRPredictor``
(QUBOs sampled by ``--sampler``), and for the QSVR the QUBO size and sampling time of each
ensemble member. Like the reference work, the single run whose final loss is the table's
maximum (an outlier at 597 on MLPF) is left out unless ``--all-rows``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from sklearn.metrics import r2_score

from optuna_lcpred.bench.evaluate import observed_steps
from optuna_lcpred.curves import read_curve_table
from optuna_lcpred.curves import resolve_table_path
from optuna_lcpred.features import encode_hyperparameters
from optuna_lcpred.predictors import SVRPredictor
from optuna_lcpred.predictors.qsvr import QSVRPredictor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--table", default="mlpf_delphes")
    parser.add_argument("--fraction", type=float, default=0.25)
    parser.add_argument("--train", type=int, default=20)
    parser.add_argument("--splits", type=int, default=10)
    parser.add_argument("--sampler", default="sa")
    parser.add_argument("--num-reads", type=int, default=100)
    parser.add_argument("--all-rows", action="store_true")
    args = parser.parse_args()

    table = read_curve_table(resolve_table_path(args.table))
    finals = table.final_values
    usable = np.isfinite(finals)
    if not args.all_rows:
        usable &= finals < np.nanmax(finals)
    n_obs = observed_steps(args.fraction, table.n_steps)
    X = np.hstack([table.curves[:, :n_obs], encode_hyperparameters(table.params)])[usable]
    y = finals[usable]
    print(
        f"{table.name}: {len(y)} rows, first {n_obs} of {table.n_steps} steps + "
        f"{X.shape[1] - n_obs} hyperparameter columns; {args.train} training rows per split; "
        f"QSVR on {args.sampler!r} with {args.num_reads} reads"
    )
    header = ("split", "R2 SVR", "R2 QSVR", "members", "qubits", "s/member")
    print(" ".join(f"{h:>{w}}" for h, w in zip(header, (5, 8, 8, 8, 7, 9), strict=True)))
    svr_r2: list[float] = []
    qsvr_r2: list[float] = []
    seconds: list[float] = []
    sizes: list[int] = []
    for split in range(args.splits):
        rng = np.random.default_rng(split)
        train = rng.choice(len(y), args.train, replace=False)
        test = np.setdiff1d(np.arange(len(y)), train)
        svr = SVRPredictor(n_steps=n_obs).fit(X[train], y[train])
        start = time.perf_counter()
        qsvr = QSVRPredictor(
            n_steps=n_obs, sampler=args.sampler, num_reads=args.num_reads, random_state=split
        ).fit(X[train], y[train])
        elapsed = time.perf_counter() - start
        svr_r2.append(float(r2_score(y[test], svr.predict(X[test]))))
        qsvr_r2.append(float(r2_score(y[test], qsvr.predict(X[test]))))
        seconds.extend(qsvr.fit_seconds_)
        sizes.extend(qsvr.qubo_sizes_)
        print(
            f"{split:>5} {svr_r2[-1]:>8.3f} {qsvr_r2[-1]:>8.3f} {len(qsvr.qubo_sizes_):>8} "
            f"{max(qsvr.qubo_sizes_):>7} {statistics.mean(qsvr.fit_seconds_):>9.3f}"
            f"   (fit {elapsed:.1f} s)"
        )
    print(
        f"mean R^2: SVR {statistics.mean(svr_r2):.3f} (sd {statistics.stdev(svr_r2):.3f}), "
        f"QSVR {statistics.mean(qsvr_r2):.3f} (sd {statistics.stdev(qsvr_r2):.3f}); "
        f"QUBO size {min(sizes)}-{max(sizes)} binary variables, sampling "
        f"{statistics.median(seconds):.3f} s per member (median)"
    )


if __name__ == "__main__":
    main()
