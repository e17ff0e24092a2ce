"""Collection: files whose optional extra is not installed are left out, not errors.

``pytest`` (the README's test command) collects the tests and the package's doctests; a user
who installed only some extras (see the README) still gets a clean run of everything they have.
"""

from __future__ import annotations

from tests.conftest import installed


_NEEDS = {
    "optuna_lcpred/annealers.py": ("dimod",),
    "optuna_lcpred/predictors/qsvr.py": ("dwave.samplers",),
    "optuna_lcpred/dashboard.py": ("optuna_dashboard", "plotly"),
    "tests/test_annealers.py": ("dwave.samplers",),
    "tests/test_qsvr.py": ("dwave.samplers",),
    "mlpf_objective": ("torch",),
}


collect_ignore = [path for path, modules in _NEEDS.items() if not all(map(installed, modules))]
# A folder named in `testpaths` is an initial argument, which `collect_ignore` does not filter:
# its contents are left out by pattern instead.
collect_ignore_glob = [f"{path}/*" for path in collect_ignore if not path.endswith(".py")]
