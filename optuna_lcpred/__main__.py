"""``python -m optuna_lcpred``: the ``optuna-lcpred`` command, for a job script that names its
Python interpreter rather than relying on the environment's ``bin`` folder being on ``PATH``."""

from __future__ import annotations

import sys

from optuna_lcpred.cli import main


if __name__ == "__main__":
    sys.exit(main())
