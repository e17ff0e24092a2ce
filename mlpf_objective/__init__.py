"""MLPF (machine-learned particle flow) as an Optuna objective.

Placeholder package: the data reader, model, loss and objective arrive with the MLPF issue
(DESIGN section 7). Install its dependencies with ``pip install "optuna-lcpred[mlpf]"``.
"""

from __future__ import annotations


__all__: list[str] = []
