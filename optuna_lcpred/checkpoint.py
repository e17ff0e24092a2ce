"""Trial checkpoints: a trial that a dead node or a Slurm time limit interrupted resumes where
it stopped, instead of training again from its first epoch.

A worker that is stopped (SIGTERM) or dies marks its running trial FAIL and queues it again with
the same parameters (``run``'s dead-worker recovery, the worker's SIGTERM handler, and on
PostgreSQL the heartbeat retry). The retried trial is a new trial with a new number; the
checkpoint is keyed by the *original* trial's number (:func:`original_trial_number`), so the
retry finds what the interrupted run saved.

The file is one ``.npz`` per trial, written to a temporary name, synced and renamed over the
previous one (so a node that dies while writing leaves the previous checkpoint intact). Arrays
(and PyTorch tensors, stored as arrays) go in as arrays; everything else (numbers, strings,
nested dicts, lists, tuples) as JSON inside the same file. It is read with
``allow_pickle=False``: a checkpoint on a shared file system can hold numbers, never code.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial

from optuna_lcpred._files import write_atomically
from optuna_lcpred._trials import RETRY_OF_ATTR
from optuna_lcpred._trials import frozen_of


__all__ = [
    "RESUMED_ATTR",
    "RESUMED_BY_ATTR",
    "RETRY_OF_ATTR",
    "TrialCheckpoint",
    "finished_checkpoints",
    "original_trial_number",
]

_logger = logging.getLogger("optuna.lcpred.checkpoint")

RESUMED_ATTR = "lcpred:resumed_from"
"""User attribute of a trial that resumed from a checkpoint: the last step the checkpoint held."""

RESUMED_BY_ATTR = "lcpred:resumed_by"
"""The number of the trial that wrote ``lcpred:resumed_from`` (Optuna's heartbeat retry copies
user attributes to the next retry, which has not resumed anything yet)."""

_FORMAT = 1
_META_KEY = "__meta__"


def original_trial_number(trial: optuna.Trial | FrozenTrial) -> int:
    """The number of the first trial of a retry chain (the trial's own number if it is none).

    Reads this package's retry attribute (``lcpred:retry_of``, set when a stopped or dead
    worker's trial is queued again) and Optuna's (``failed_trial``, set by
    ``RetryHeartbeatStaleTrialCallback`` on a storage with heartbeats).

    Example:
        >>> import optuna
        >>> study = optuna.create_study()
        >>> study.enqueue_trial({}, user_attrs={"lcpred:retry_of": 7})
        >>> original_trial_number(study.ask())
        7
    """
    frozen = trial if isinstance(trial, FrozenTrial) else frozen_of(trial)
    for value in (frozen.user_attrs.get(RETRY_OF_ATTR), frozen.system_attrs.get("failed_trial")):
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    return frozen.number


class TrialCheckpoint:
    """Save and restore one trial's training state, keyed by its original trial number.

    Use it after the trial's parameters are suggested: they are saved with the state, and a
    checkpoint whose parameters differ from the trial's is not resumed.

    Args:
        directory: Where checkpoints live (shared by every worker of the study, e.g. on the
            cluster's parallel file system). One subfolder per study.
        trial: The running trial.

    Example:
        >>> import tempfile
        >>> import numpy as np
        >>> import optuna
        >>> optuna.logging.set_verbosity(optuna.logging.WARNING)
        >>> study = optuna.create_study(study_name="demo")
        >>> trial = study.ask({"lr": optuna.distributions.FloatDistribution(1e-4, 1e-1)})
        >>> directory = tempfile.mkdtemp()
        >>> checkpoint = TrialCheckpoint(directory, trial)
        >>> checkpoint.load() is None  # nothing saved yet: start from the first epoch
        True
        >>> checkpoint.save(3, {"weights": np.ones(2), "losses": [0.9, 0.7, 0.6, 0.5]})
        >>> step, state = checkpoint.load()
        >>> step, state["weights"].tolist(), state["losses"]
        (3, [1.0, 1.0], [0.9, 0.7, 0.6, 0.5])
        >>> checkpoint.report(state["losses"])  # a retry: the saved curve, then train on
        >>> checkpoint.remove()  # the trial finished: the checkpoint has served
        >>> checkpoint.path.exists()
        False
    """

    def __init__(self, directory: str | os.PathLike[str], trial: optuna.Trial) -> None:
        if not isinstance(trial, optuna.Trial):
            raise TypeError(
                f"trial must be the optuna.Trial an objective receives, got {type(trial).__name__}"
            )
        self._trial = trial
        self._number = original_trial_number(trial)
        self._path = (
            Path(directory) / _study_folder(trial.study.study_name) / f"trial-{self._number}.npz"
        )

    @property
    def path(self) -> Path:
        """The checkpoint file."""
        return self._path

    @property
    def trial_number(self) -> int:
        """The original trial's number, which names the file."""
        return self._number

    def save(self, step: int, state: Mapping[str, Any]) -> None:
        """Replace the checkpoint with ``state`` as of ``step`` (the last step reported).

        ``state`` may nest dicts (any JSON-able keys, e.g. a PyTorch optimizer's int keys),
        lists and tuples of arrays, tensors, numbers, strings, booleans and None: a model's and
        an optimizer's ``state_dict()``, RNG states, the losses so far.

        Raises:
            ValueError: ``step`` is not a non-negative int.
            TypeError: ``state`` holds something that is not one of the above.
        """
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ValueError(f"step must be an int >= 0, got {step!r}")
        arrays: dict[str, np.ndarray] = {}
        tree = _encode(dict(state), arrays, "state")
        meta = {
            "format": _FORMAT,
            "step": step,
            "trial": self._number,
            "params": _json_params(self._trial.params),
            "tree": tree,
        }
        arrays[_META_KEY] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        write_atomically(
            self._path,
            lambda out: np.savez(out, **arrays),  # type: ignore[arg-type]
            sync=True,
        )

    def load(self) -> tuple[int, dict[str, Any]] | None:
        """The saved ``(step, state)``, or None when there is nothing to resume from.

        Tensors come back as CPU tensors (``load_state_dict`` moves them where they belong),
        arrays as arrays. A checkpoint written for other parameters (a study deleted and
        created again under the same name), or one that cannot be read, is left in place with
        a warning and None is returned: the trial trains from its first step.
        """
        if not self._path.exists():
            return None
        try:
            with np.load(self._path, allow_pickle=False) as data:
                meta = json.loads(bytes(data[_META_KEY]).decode())
                if meta.get("format") != _FORMAT:
                    raise ValueError(f"format {meta.get('format')!r}, expected {_FORMAT}")
                step = int(meta["step"])
                state = _decode(meta["tree"], data)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            _logger.warning(
                "trial %d: checkpoint %s cannot be read (%s); training from the start",
                self._trial.number,
                self._path,
                exc,
            )
            return None
        if meta.get("params") != _json_params(self._trial.params):
            _logger.warning(
                "trial %d: checkpoint %s was written for other parameters (%s, not %s); "
                "training from the start",
                self._trial.number,
                self._path,
                meta.get("params"),
                _json_params(self._trial.params),
            )
            return None
        return step, state

    def report(self, values: Sequence[float], steps: Sequence[int] | None = None) -> None:
        """Resume: report the saved curve's values (steps 0, 1, ... unless ``steps`` are
        given) on the trial, leaving out the steps it already holds (a retry that inherited
        them), and record the last step as the user attribute ``lcpred:resumed_from`` (which
        the ``run`` summary counts).

        Raises:
            ValueError: ``steps`` and ``values`` differ in length.
        """
        steps = list(range(len(values))) if steps is None else list(steps)
        if len(steps) != len(values):
            raise ValueError(f"{len(values)} values for {len(steps)} steps")
        held = frozen_of(self._trial).intermediate_values
        for step, value in zip(steps, values, strict=True):
            if step not in held:
                self._trial.report(float(value), int(step))
        if steps:
            self._trial.set_user_attr(RESUMED_ATTR, int(steps[-1]))
            self._trial.set_user_attr(RESUMED_BY_ATTR, self._trial.number)
            _logger.info(
                "trial %d resumes trial %d's training after step %d",
                self._trial.number,
                self._number,
                steps[-1],
            )

    def remove(self) -> None:
        """Delete the checkpoint (the trial finished; nothing will resume it)."""
        self._path.unlink(missing_ok=True)


def finished_checkpoints(directory: str | os.PathLike[str], study: optuna.Study) -> list[Path]:
    """The checkpoint files of ``study`` under ``directory`` that nothing will resume.

    A file is kept while a trial of its retry chain is WAITING or RUNNING (a retry will load
    it); a file whose chain has ended (COMPLETE, PRUNED, or FAIL without a retry left, e.g.
    once ``max_retry`` heartbeat retries are spent) is listed. Objectives delete their file
    when a trial finishes; what is listed is what a dead node or an abandoned queue left.

    Example:
        >>> import tempfile
        >>> import optuna
        >>> optuna.logging.set_verbosity(optuna.logging.WARNING)
        >>> study = optuna.create_study(study_name="old")
        >>> trial = study.ask()
        >>> directory = tempfile.mkdtemp()
        >>> TrialCheckpoint(directory, trial).save(0, {"losses": [0.5]})
        >>> finished_checkpoints(directory, study)  # trial 0 is RUNNING: its file is needed
        []
        >>> _ = study.tell(trial, state=optuna.trial.TrialState.FAIL)  # and never queued again
        >>> [path.name for path in finished_checkpoints(directory, study)]
        ['trial-0.npz']
    """
    folder = Path(directory) / _study_folder(study.study_name)
    if not folder.is_dir():
        return []
    live = {
        original_trial_number(t)
        for t in study.get_trials(
            deepcopy=False,
            states=(optuna.trial.TrialState.WAITING, optuna.trial.TrialState.RUNNING),
        )
    }
    found = []
    for path in sorted(folder.glob("trial-*.npz")):
        number = path.stem.removeprefix("trial-")
        if number.isdigit() and int(number) not in live:
            found.append(path)
    return found


def _study_folder(name: str) -> str:
    # A folder name from any study name, never "." or ".." (nothing outside the directory).
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).lstrip(".") or "study"


def _json_params(params: Mapping[str, Any]) -> dict[str, Any]:
    return dict(json.loads(json.dumps(dict(sorted(params.items())), default=str)))


def _encode(value: Any, arrays: dict[str, np.ndarray], where: str) -> Any:
    """JSON for ``value``, its arrays moved into ``arrays`` under fresh keys."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)):
        return value  # NaN and inf too: Python's json writes and reads them
    if isinstance(value, np.generic):
        return _encode(value.item(), arrays, where)
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            raise TypeError(f"{where}: arrays of Python objects cannot be checkpointed")
        key = f"a{len(arrays)}"
        arrays[key] = value
        return {"__array__": key}
    if _is_tensor(value):
        import torch

        tensor = value.detach().cpu()
        dtype = str(tensor.dtype).removeprefix("torch.")
        if tensor.dtype == torch.bfloat16:
            tensor = tensor.view(torch.int16)
        key = f"a{len(arrays)}"
        arrays[key] = tensor.numpy()
        return {"__tensor__": key, "dtype": dtype}
    if isinstance(value, Mapping):
        items = []
        for k, v in value.items():
            if not (k is None or isinstance(k, (bool, int, float, str))):
                raise TypeError(f"{where}: key {k!r} is not a number or a string")
            items.append([k, _encode(v, arrays, f"{where}[{k!r}]")])
        return {"__dict__": items}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(value)]
    raise TypeError(
        f"{where}: {type(value).__name__} cannot be checkpointed; expected arrays, tensors, "
        "numbers, strings, None, or dicts, lists and tuples of them"
    )


def _decode(node: Any, arrays: Any) -> Any:
    if isinstance(node, list):
        return [_decode(v, arrays) for v in node]
    if not isinstance(node, dict):
        return node
    if "__dict__" in node:
        return {k: _decode(v, arrays) for k, v in node["__dict__"]}
    if "__tuple__" in node:
        return tuple(_decode(v, arrays) for v in node["__tuple__"])
    if "__array__" in node:
        return np.array(arrays[node["__array__"]])
    if "__tensor__" in node:
        import torch

        tensor = torch.from_numpy(np.array(arrays[node["__tensor__"]]))
        dtype = getattr(torch, str(node["dtype"]), None)
        if not isinstance(dtype, torch.dtype):
            raise ValueError(f"unknown tensor dtype {node['dtype']!r}")
        return tensor.view(dtype) if dtype == torch.bfloat16 else tensor.to(dtype)
    raise ValueError(f"unknown entry {sorted(node)}")


def _is_tensor(value: Any) -> bool:
    return type(value).__module__.startswith("torch") and hasattr(value, "detach")
