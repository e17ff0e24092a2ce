"""The command line that the replay scripts in ``benchmarks/`` share.

``epochs_breakdown.py`` and ``pruned_novelty.py`` run the replays of ``optuna-lcpred bench
--pruners SPEC`` themselves (same rows, seeds and decisions) to look inside them; both take the
tables, the pruner spec, the seeds, the trials and the parallel jobs the same way.
"""

from __future__ import annotations

import argparse


def replay_parser(doc: str) -> argparse.ArgumentParser:
    """A parser with the shared arguments; the script adds its own."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("tables", nargs="+", help="curve tables: CSV files or folders of them")
    parser.add_argument("--spec", default="lcpred", help="the pruner, as in bench --pruners")
    parser.add_argument("--seeds", type=int, default=5, help="replay seeds 0 .. N-1")
    parser.add_argument("--trials", type=int, default=150, help="trials drawn per replay")
    parser.add_argument("--jobs", type=int, default=2, help="replays in parallel processes")
    return parser
