"""optuna-lcpred: prune Optuna trials from a prediction of their final loss.

The public API lives here; the benchmark tools (``optuna_lcpred.bench``) and the command line
(``optuna-lcpred``) are imported on demand.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

from optuna_lcpred.checkpoint import TrialCheckpoint
from optuna_lcpred.checkpoint import finished_checkpoints
from optuna_lcpred.checkpoint import original_trial_number
from optuna_lcpred.curves import CurveTable
from optuna_lcpred.curves import CurveTableError
from optuna_lcpred.curves import read_curve_table
from optuna_lcpred.curves import study_to_curve_table
from optuna_lcpred.curves import write_curve_table
from optuna_lcpred.predictors import CurvePredictor
from optuna_lcpred.predictors import LastValuePredictor
from optuna_lcpred.predictors import LinearLastValuePredictor
from optuna_lcpred.predictors import PowerLawPredictor
from optuna_lcpred.predictors import SVRPredictor
from optuna_lcpred.pruner import LCPredictionPruner
from optuna_lcpred.report import StudyReport
from optuna_lcpred.report import study_report
from optuna_lcpred.retry import RetryStaleTrialCallback
from optuna_lcpred.sampler import PredictedFinalSampler


try:
    __version__ = _version("optuna-lcpred")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = [
    "CurvePredictor",
    "CurveTable",
    "CurveTableError",
    "LCPredictionPruner",
    "LastValuePredictor",
    "LinearLastValuePredictor",
    "PowerLawPredictor",
    "PredictedFinalSampler",
    "RetryStaleTrialCallback",
    "SVRPredictor",
    "StudyReport",
    "TrialCheckpoint",
    "__version__",
    "finished_checkpoints",
    "original_trial_number",
    "read_curve_table",
    "study_report",
    "study_to_curve_table",
    "write_curve_table",
]
