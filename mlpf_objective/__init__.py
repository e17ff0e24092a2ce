"""MLPF (machine-learned particle flow) as an Optuna objective.

MLPF reconstructs particles from a collider event's tracks and calorimeter clusters. This
package reads the CLIC/CLD postprocessed parquet format (or generates synthetic CLIC-like events
in the same schema), trains an MLPF-style transformer, and exposes the training as an Optuna
objective that reports the validation loss after each epoch (DESIGN section 7). Install its
dependencies with ``pip install "optuna-lcpred[mlpf]"``.

Example:
    >>> from mlpf_objective import MLPFObjective
    >>> objective = MLPFObjective(n_events=200, epochs=3)  # synthetic events
"""

from __future__ import annotations

from mlpf_objective.objective import MLPFObjective


__all__ = ["MLPFObjective"]
