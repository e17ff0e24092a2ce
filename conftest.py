"""Collection: files whose optional extra is not installed are left out, not errors.

``pytest`` (the README's test command) collects the tests and the package's doctests; a user
who installed only some extras (see the README) still gets a clean run of everything they have.
"""

from __future__ import annotations

import importlib.util


_NEEDS = {
    "optuna_lcpred/annealers.py": "dimod",
    "tests/test_annealers.py": "dwave.samplers",
    "tests/test_qsvr.py": "dwave.samplers",
    "mlpf_objective": "torch",
}


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


collect_ignore = [path for path, module in _NEEDS.items() if not _installed(module)]
