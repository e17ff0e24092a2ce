"""The one module that touches Optuna internals (``study._storage``, ``trial._trial_id``).

Everything else in the package goes through the helpers here, so an upstream change breaks one
file. The helpers are pure where they can be: they take studies and frozen trials and return
plain data.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Iterator
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from typing import TYPE_CHECKING
from typing import Any

import numpy as np
from optuna.pruners import PatientPruner
from optuna.pruners import PercentilePruner
from optuna.study import StudyDirection
from optuna.trial import TrialState


if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial


__all__ = [
    "ANNOTATION_PREFIX",
    "PRUNED_AT_ATTR",
    "RETRY_OF_ATTR",
    "CompletedCurves",
    "FinishedTrialCache",
    "PredictedFinalStorage",
    "StepValues",
    "completed_trials_needed",
    "current_curve",
    "dead_trials_are_failed",
    "direction_sign",
    "drop_inherited_annotations",
    "flush_annotations",
    "forget_cached_trials",
    "frozen_of",
    "heartbeat",
    "live_trial",
    "model_store",
    "pop_waiting_trial",
    "predicted_final_value",
    "sampler_view",
    "set_annotations",
    "study_identity",
    "study_name_and_id",
]

RETRY_OF_ATTR = "lcpred:retry_of"
"""User attribute of a queued retry: the number of the original trial it repeats."""

ANNOTATION_PREFIX = "lcpred:"
"""The prefix of every user attribute this package writes on a trial."""

PRUNED_AT_ATTR = "lcpred:pruned_at"
"""The step at which the pruner stopped the trial for its prediction (written with the prune)."""


@dataclass
class CompletedCurves:
    """The COMPLETE trials of a study as arrays, direction-normalised (smaller is better).

    Attributes:
        numbers: Trial numbers, in the order trials were added.
        values: Final objective values (negated for a maximised study).
        curves: ``{step: value}`` per trial (negated likewise).
        trials: The frozen trials themselves (parameters and distributions).
        version: Increases whenever trials are added; models keyed by it know when to refit.
        predicted: The predicted final values (negated likewise) of the PRUNED trials that
            carry one in the cache's ``predicted_key`` user attribute: with ``values``, what
            every finished trial reached or was expected to reach.
    """

    numbers: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    curves: list[dict[int, float]] = field(default_factory=list)
    trials: list[FrozenTrial] = field(default_factory=list)
    version: int = 0
    predicted: list[float] = field(default_factory=list)


class StepValues:
    """The values that finished trials (COMPLETE and PRUNED) reported at each step,
    direction-normalised: where a running trial stands among its peers at the same step."""

    def __init__(self) -> None:
        self._values: dict[int, list[float]] = {}
        self._sorted: dict[int, np.ndarray] = {}

    def add(self, curve: dict[int, float]) -> None:
        """Add one finished trial's reported values."""
        for step, value in curve.items():
            if math.isfinite(value):
                self._values.setdefault(step, []).append(value)
                self._sorted.pop(step, None)

    def peers(self, step: int) -> int:
        """How many finished trials reported a finite value at ``step``."""
        return len(self._values.get(step, ()))

    def n_better(self, step: int, value: float) -> int:
        """How many finished trials reported a value better (smaller) than ``value`` at
        ``step``."""
        if step not in self._sorted:
            self._sorted[step] = np.sort(np.asarray(self._values.get(step, ()), dtype=float))
        return int(np.searchsorted(self._sorted[step], value, side="left"))


class FinishedTrialCache:
    """COMPLETE trials of one study, and the values of all finished trials, refreshed
    incrementally.

    Each refresh asks the storage for finished trials only (COMPLETE, PRUNED, FAIL; never
    RUNNING ones) and converts just the trials it has not seen. With Optuna's RDB storage the
    query itself is incremental too: its cache layer fetches only trials that changed since the
    last call.
    """

    def __init__(self, predicted_key: str | None = None) -> None:
        self._predicted_key = predicted_key
        # The study's storage object itself, not its id: a freed storage's id may be reused
        # by the next study's, and its trials must not pass for that study's.
        self._storage: Any = None
        self._study_id = -1
        self._study_name = ""
        #: How many studies this cache has met (a change means: read afresh).
        self.n_studies = 0
        self._seen: set[int] = set()
        self._first_unfinished = 0
        self.data = CompletedCurves()
        self.steps = StepValues()

    def _same_study(self, study: optuna.Study, finished: list[FrozenTrial]) -> bool:
        """Whether ``study``, met through another storage object, is the study read so far.

        ``optuna.load_study`` in two threads gives two Study objects, each with its own
        storage object, for one study; reading it afresh at each switch would refit every
        model. It is the same study when its name and id are, and its finished trials
        include those read so far unchanged (same trial ids, start times and values: a study
        deleted and created again, or another database file under the same path, differs).
        With nothing read yet there is nothing to keep, and it counts as another study.
        """
        if not self._seen or study._study_id != self._study_id:
            return False
        if study.study_name != self._study_name:
            return False
        by_number = {trial.number: trial for trial in finished}
        if any(number not in by_number for number in self._seen):
            return False
        for known in self.data.trials:
            now = by_number[known.number]
            if (
                now._trial_id != known._trial_id
                or now.state != known.state
                or now.datetime_start != known.datetime_start
                or now.value != known.value
            ):
                return False
        return True

    def is_finished(self, number: int) -> bool:
        """Whether trial ``number`` had finished (any state) at the last refresh."""
        return number in self._seen

    @property
    def first_unfinished(self) -> int:
        """The lowest trial number that had not finished at the last refresh (trial numbers
        count from 0 without gaps, so every process sees the same one once it has refreshed)."""
        while self._first_unfinished in self._seen:
            self._first_unfinished += 1
        return self._first_unfinished

    @property
    def n_finished(self) -> int:
        """How many trials had finished (any state) at the last refresh."""
        return len(self._seen)

    def refresh(self, study: optuna.Study) -> CompletedCurves:
        """Bring the cache up to date with ``study`` and return its COMPLETE trials."""
        trials = study._storage.get_all_trials(
            study._study_id,
            deepcopy=False,
            states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL),
        )
        if study._storage is not self._storage or study._study_id != self._study_id:
            if not self._same_study(study, trials):
                self.n_studies += 1
                self._seen = set()
                self._first_unfinished = 0
                self.data = CompletedCurves()
                self.steps = StepValues()
            self._storage, self._study_id = study._storage, study._study_id
            self._study_name = study.study_name
        n_new = len(trials) - len(self._seen)
        if n_new <= 0:
            return self.data
        # Finished is final, so exactly ``n_new`` of these are unseen; they are usually the
        # latest, so look from the end and stop when all are found, then add them in order.
        fresh: list[FrozenTrial] = []
        for trial in reversed(trials):
            if trial.number not in self._seen:
                fresh.append(trial)
                if len(fresh) == n_new:
                    break
        sign = -1.0 if study.direction == StudyDirection.MAXIMIZE else 1.0
        added = False
        for trial in reversed(fresh):
            self._seen.add(trial.number)
            if trial.state == TrialState.FAIL:
                continue
            curve = {int(s): sign * float(v) for s, v in trial.intermediate_values.items()}
            self.steps.add(curve)
            if trial.state != TrialState.COMPLETE:
                predicted = (
                    predicted_final_value(trial, self._predicted_key)
                    if self._predicted_key is not None
                    else None
                )
                if predicted is not None and math.isfinite(predicted):
                    self.data.predicted.append(sign * predicted)
                continue
            value = trial.value
            if value is None or not math.isfinite(value):
                continue
            self.data.numbers.append(trial.number)
            self.data.values.append(sign * float(value))
            self.data.curves.append(curve)
            self.data.trials.append(trial)
            added = True
        if added:
            self.data.version += 1
        return self.data


def direction_sign(study: optuna.Study) -> float:
    """1 for a minimised study, -1 for a maximised one; rejects multi-objective studies."""
    directions = study.directions
    if len(directions) != 1:
        raise ValueError(
            f"LCPredictionPruner works on single-objective studies; study {study.study_name!r} "
            f"has {len(directions)} objectives"
        )
    return -1.0 if directions[0] == StudyDirection.MAXIMIZE else 1.0


def current_curve(trial: FrozenTrial, sign: float) -> dict[int, float]:
    """The running trial's reported values by step, direction-normalised."""
    return {int(s): sign * float(v) for s, v in trial.intermediate_values.items()}


def completed_trials_needed(pruner: Any) -> int | None:
    """How many COMPLETE trials an Optuna ``PercentilePruner`` or ``MedianPruner`` (also inside
    a ``PatientPruner``) waits for before it prunes anything; ``None`` for other pruners."""
    while isinstance(pruner, PatientPruner):
        pruner = getattr(pruner, "_wrapped_pruner", None)
    if isinstance(pruner, PercentilePruner):
        needed = getattr(pruner, "_n_startup_trials", None)
        return needed if isinstance(needed, int) else None
    return None


def set_annotations(
    study: optuna.Study,
    trial: FrozenTrial,
    attrs: Mapping[str, float | str],
    *,
    wait: bool = True,
) -> None:
    """Write user attributes on a RUNNING trial (the pruner's annotations): numbers as floats,
    strings as they are.

    JSON (the dashboard, some storages) has no NaN or infinity: NaN is skipped and +-inf is
    written as +-1e308. On an RDB storage all keys go in one transaction of two statements
    (delete, insert) instead of a transaction of several statements per key; with
    ``wait=False`` that transaction is handed to a background writer thread, so the caller
    does not wait for the database's commit (flushed at interpreter exit).
    """
    clean: dict[str, float | str] = {}
    for key, value in attrs.items():
        if isinstance(value, str):
            clean[key] = value
            continue
        number = float(value)
        if math.isnan(number):
            continue
        if math.isinf(number):
            number = math.copysign(1e308, number)
        clean[key] = number
    if not clean:
        return
    rdb = _rdb_storage(study)
    if rdb is not None:
        if wait:
            flush_annotations()  # an older queued batch must not land after this one
            _write_user_attrs_rdb(rdb, trial._trial_id, clean)
        else:
            _background_writer().put(rdb, trial._trial_id, clean)
        return
    for key, value in clean.items():
        study._storage.set_trial_user_attr(trial._trial_id, key, value)


class _BackgroundWriter:
    """One daemon thread per process writing annotation batches in order; flushed at exit."""

    def __init__(self) -> None:
        import atexit
        import queue
        import threading

        self._queue: queue.Queue[tuple[Any, int, dict[str, float | str]] | None] = queue.Queue()
        self._thread = threading.Thread(
            target=self._run, name="optuna-lcpred-annotations", daemon=True
        )
        self._thread.start()
        atexit.register(self.flush)

    def put(self, storage: Any, trial_id: int, attrs: dict[str, float | str]) -> None:
        self._queue.put((storage, trial_id, attrs))

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until every queued batch is written (at most ``timeout`` seconds)."""
        import time

        end = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < end:
            time.sleep(0.01)

    def _run(self) -> None:
        import logging

        while True:
            item = self._queue.get()
            try:
                if item is not None:
                    _write_user_attrs_rdb(*item)
            except Exception as exc:  # an annotation must never kill the worker
                logging.getLogger("optuna.lcpred.pruner").warning(
                    "Could not write pruning annotations: %s", exc
                )
            finally:
                self._queue.task_done()


_WRITER: _BackgroundWriter | None = None
_WRITER_LOCK = threading.Lock()


def _background_writer() -> _BackgroundWriter:
    global _WRITER
    with _WRITER_LOCK:
        if _WRITER is None:
            _WRITER = _BackgroundWriter()
        return _WRITER


def flush_annotations(timeout: float = 30.0) -> None:
    """Wait for annotations queued with ``wait=False`` to reach the database."""
    if _WRITER is not None:
        _WRITER.flush(timeout)


def _rdb_storage(study: optuna.Study) -> Any:
    from optuna.storages import RDBStorage
    from optuna.storages._cached_storage import _CachedStorage

    storage = study._storage
    if isinstance(storage, _CachedStorage):  # Optuna's caching wrapper of RDBStorage
        storage = storage._backend
    return storage if isinstance(storage, RDBStorage) else None


def _write_user_attrs_rdb(storage: Any, trial_id: int, attrs: dict[str, float | str]) -> None:
    """Replace ``attrs`` on a RUNNING trial in one transaction; a trial that finished meanwhile
    is left alone (finished trials are immutable, as Optuna 5 enforces)."""
    import json

    import sqlalchemy as sa
    from optuna.storages._rdb.models import TrialModel
    from optuna.storages._rdb.models import TrialUserAttributeModel

    table = TrialUserAttributeModel.__table__
    trials = TrialModel.__table__
    rows = [
        {"trial_id": trial_id, "key": key, "value_json": json.dumps(value)}
        for key, value in attrs.items()
    ]
    with storage.engine.begin() as connection:
        state = connection.execute(
            sa.select(trials.c.state).where(trials.c.trial_id == trial_id)
        ).scalar()
        if getattr(state, "name", state) != TrialState.RUNNING.name:
            return
        connection.execute(
            sa.delete(table).where((table.c.trial_id == trial_id) & table.c.key.in_(list(attrs)))
        )
        connection.execute(sa.insert(table), rows)


def pop_waiting_trial(study: optuna.Study) -> optuna.Trial | None:
    """Claim one WAITING trial of ``study`` for this process, or None when none is left.

    The claim is the storage's atomic WAITING -> RUNNING transition, so two workers never get
    the same trial, and unlike ``study.ask()`` no new trial is created when the queue is empty:
    a study whose trials are all enqueued up front holds exactly that many. Retries of stopped
    or dead workers' trials come first (oldest first), so they resume from their checkpoints
    before new trials start.
    """
    import optuna

    storage = study._storage
    waiting = storage.get_all_trials(study._study_id, deepcopy=False, states=(TrialState.WAITING,))
    for frozen in sorted(waiting, key=lambda t: not _is_retry(t)):
        try:
            if not storage.set_trial_state_values(frozen._trial_id, state=TrialState.RUNNING):
                continue
        except RuntimeError:  # finished meanwhile (UpdateFinishedTrialError in Optuna 5)
            continue
        return optuna.Trial(study, frozen._trial_id)
    return None


def _is_retry(trial: FrozenTrial) -> bool:
    return RETRY_OF_ATTR in trial.user_attrs or "failed_trial" in trial.system_attrs


def drop_inherited_annotations(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    """``trials`` with the pruner's annotations that a retry only copied left out.

    Optuna's heartbeat retry (``RetryFailedTrialCallback``) copies every user attribute of the
    failed trial to its WAITING copy, so the copy starts with the predictions, milestones and
    audit mark made for the failed run. A retry's ``lcpred:`` attribute whose value equals the
    one on the trial it was copied from (the last of its ``retry_history``) is taken as copied
    and dropped (except ``lcpred:retry_of``, which a chain of retries shares); what the retry's
    own run wrote differs. Other trials are returned as they are.
    (:class:`optuna_lcpred.RetryStaleTrialCallback` copies no annotations in the first place.)
    """
    by_number = {t.number: t for t in trials}
    out = []
    for trial in trials:
        history = trial.system_attrs.get("retry_history")
        source = by_number.get(history[-1]) if isinstance(history, list) and history else None
        if source is None:
            out.append(trial)
            continue
        copied = source.user_attrs
        attrs = {
            k: v
            for k, v in trial.user_attrs.items()
            if k == RETRY_OF_ATTR
            or not (k.startswith(ANNOTATION_PREFIX) and k in copied and copied[k] == v)
        }
        kept = len(attrs) == len(trial.user_attrs)
        out.append(trial if kept else _replaced(trial, user_attrs=attrs))
    return out


def _replaced(
    trial: FrozenTrial,
    *,
    state: TrialState | None = None,
    values: list[float] | None = None,
    user_attrs: dict[str, Any] | None = None,
) -> FrozenTrial:
    """A copy of ``trial`` with the given fields replaced (the original is untouched)."""
    from optuna.trial import FrozenTrial

    return FrozenTrial(
        number=trial.number,
        state=trial.state if state is None else state,
        value=None,
        values=trial.values if values is None else values,
        datetime_start=trial.datetime_start,
        datetime_complete=trial.datetime_complete,
        params=trial.params,
        distributions=trial.distributions,
        user_attrs=trial.user_attrs if user_attrs is None else user_attrs,
        system_attrs=trial.system_attrs,
        intermediate_values=trial.intermediate_values,
        trial_id=trial._trial_id,
    )


@contextlib.contextmanager
def heartbeat(study: optuna.Study, trial: optuna.Trial) -> Iterator[None]:
    """Record heartbeats for ``trial`` while the block runs (RDB storages with heartbeats on)."""
    from optuna.storages._heartbeat import get_heartbeat_thread

    with get_heartbeat_thread(trial._trial_id, study._storage):
        yield


def dead_trials_are_failed(study: optuna.Study) -> bool:
    """Whether a trial whose process died is marked FAIL by the storage's heartbeats (an RDB
    storage with ``heartbeat_interval`` set), rather than left RUNNING for good."""
    from optuna.storages._heartbeat import BaseHeartbeat

    storage = study._storage
    return isinstance(storage, BaseHeartbeat) and storage.get_heartbeat_interval() is not None


def frozen_of(trial: optuna.Trial) -> FrozenTrial:
    """The stored state of a running ``trial``, system attributes included."""
    return trial.study._storage.get_trial(trial._trial_id)


def study_identity(study: optuna.Study) -> tuple[int, int]:
    """Identifies a study within this process: its storage object and its id there."""
    return id(study._storage), study._study_id


def study_name_and_id(study: optuna.Study) -> tuple[str, int]:
    """Identifies a study in every process that opens it: its name and its id in the storage
    (a study deleted and created again under the same name gets a new id in an RDB storage)."""
    return study.study_name, study._study_id


def model_store(study: optuna.Study) -> Any:
    """The :class:`~optuna_lcpred.sharing.ModelStore` for ``study``'s storage, or None.

    RDB storages keep records in the same database; a journal file keeps them in a folder
    beside it (``PATH.lcpred-models``); in-memory studies have one process and share nothing.
    """
    from optuna.storages import JournalStorage

    from optuna_lcpred.sharing import FileModelStore
    from optuna_lcpred.sharing import RDBModelStore

    rdb = _rdb_storage(study)
    if rdb is not None:
        return RDBModelStore(rdb.engine, study._study_id)
    storage = study._storage
    if isinstance(storage, JournalStorage):
        path = getattr(getattr(storage, "_backend", None), "_file_path", None)
        if path is not None:
            return FileModelStore(f"{path}.lcpred-models", study._study_id)
    return None


# ------------------------------------------------------------ the sampler's view of a study


def predicted_final_value(trial: FrozenTrial, key: str) -> float | None:
    """The predicted final value ``LCPredictionPruner`` stored on a PRUNED trial, else None.

    None too for a trial whose last report is NaN or infinite (it was stopped because it
    diverged, and the prediction it carries is from the decision before, which kept it), and
    for one the pruner did not stop at its last step (``lcpred:pruned_at``): the objective, a
    fallback or another pruner stopped it after a decision that kept it, so the prediction it
    carries is the favourable one of that decision.
    """
    if trial.state != TrialState.PRUNED:
        return None
    last = trial.last_step
    if last is None or not math.isfinite(trial.intermediate_values[last]):
        return None
    if trial.user_attrs.get(PRUNED_AT_ATTR) != float(last):
        return None  # stopped by something else after a decision that kept it
    value = trial.user_attrs.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def as_predicted_complete(trial: FrozenTrial, value: float) -> FrozenTrial:
    """A COMPLETE copy of ``trial`` whose value is ``value`` (the original is untouched)."""
    return _replaced(trial, state=TrialState.COMPLETE, values=[value])


class PredictedFinalStorage:
    """A storage that reads like ``backend``, except that PRUNED trials carrying a predicted
    final value read as COMPLETE with that value. Every write goes to ``backend``."""

    def __init__(self, backend: Any, key: str) -> None:
        self._backend = backend
        self._key = key
        self._converted: dict[int, FrozenTrial] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)

    def _view(self, trial: FrozenTrial) -> FrozenTrial:
        value = predicted_final_value(trial, self._key)
        if value is None:
            return trial
        cached = self._converted.get(trial.number)
        if cached is None or cached.value != value:
            cached = self._converted[trial.number] = as_predicted_complete(trial, value)
        return cached

    def get_all_trials(
        self, study_id: int, deepcopy: bool = True, states: Any = None
    ) -> list[FrozenTrial]:
        wanted = None if states is None else set(states)
        asked = wanted
        if wanted is not None and TrialState.COMPLETE in wanted:
            asked = wanted | {TrialState.PRUNED}  # pruned trials may read as COMPLETE
        trials = self._backend.get_all_trials(
            study_id, deepcopy=deepcopy, states=None if asked is None else tuple(asked)
        )
        out = [self._view(t) for t in trials]
        return out if wanted is None else [t for t in out if t.state in wanted]

    def get_trial(self, trial_id: int) -> FrozenTrial:
        return self._view(self._backend.get_trial(trial_id))


def sampler_view(study: optuna.Study, key: str, sampler: Any) -> optuna.Study:
    """A :class:`optuna.Study` on ``study``'s storage as :class:`PredictedFinalStorage` sees
    it, sampling with ``sampler``."""
    import optuna

    # One predicted value cannot stand in for several objectives: such studies read as they are.
    storage = (
        study._storage if len(study.directions) > 1 else PredictedFinalStorage(study._storage, key)
    )
    return optuna.Study(
        study_name=study.study_name,
        storage=storage,  # type: ignore[arg-type]
        sampler=sampler,
        pruner=study.pruner,
    )


def forget_cached_trials(study: optuna.Study) -> None:
    """Drop ``study``'s per-thread trial cache (Optuna clears the real study's in ``ask``)."""
    study._thread_local.cached_all_trials = None


def live_trial(study: optuna.Study, trial: FrozenTrial) -> optuna.Trial:
    """An ``optuna.Trial`` handle on ``trial`` (for APIs that take one, e.g. dashboard notes)."""
    import optuna

    return optuna.Trial(study, trial._trial_id)
