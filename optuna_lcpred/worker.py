"""Workers of one study: prepare it, run trials from its queue, summarise it.

A study run by ``optuna-lcpred run`` or by ``worker`` processes on a cluster is *prepared* once:
created if new, and topped up with WAITING trials until it holds ``n_trials`` live ones
(WAITING, RUNNING, COMPLETE or PRUNED). Workers then claim WAITING trials one at a time (an
atomic state change in the storage), so however many workers run, the study ends with exactly
``n_trials`` live trials. A trial failed by a dead worker's missing heartbeat
(:class:`RetryStaleTrialCallback`), by ``run``'s dead-worker recovery or by a SIGTERM comes
back as a new WAITING trial with the same parameters and is picked up like the others; an
objective that keeps a :class:`~optuna_lcpred.checkpoint.TrialCheckpoint` resumes it where it
stopped.
"""

from __future__ import annotations

import logging
import math
import os
import shlex
import shutil
import signal
import socket
import time
import warnings
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import optuna
from optuna.storages import BaseStorage
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from optuna_lcpred._trials import heartbeat
from optuna_lcpred._trials import pop_waiting_trial
from optuna_lcpred.checkpoint import RESUMED_ATTR
from optuna_lcpred.checkpoint import RESUMED_BY_ATTR
from optuna_lcpred.retry import RetryStaleTrialCallback
from optuna_lcpred.retry import retry_user_attrs
from optuna_lcpred.storage import open_storage
from optuna_lcpred.storage import redact_url
from optuna_lcpred.studyfile import StudyConfig


__all__ = [
    "StudySummary",
    "WorkerTerminated",
    "assign_gpus",
    "default_storage",
    "make_storage",
    "prepare_study",
    "requeue_trial",
    "run_worker",
    "summarize_study",
]

_logger = logging.getLogger("optuna.lcpred.worker")

N_TRIALS_ATTR = "lcpred:n_trials"
WORKER_ATTR = "lcpred:worker"
GPU_ATTR = "lcpred:cuda_visible_devices"
# Marks a trial that this package queued (one of the study file's ``n_trials``, or a retry), as
# opposed to one a user enqueued: a user attribute for the dashboard and for queries, where a
# WAITING trial of this package's shows no parameters yet.
QUEUED_ATTR = "lcpred:queued"
_LIVE = (TrialState.WAITING, TrialState.RUNNING, TrialState.COMPLETE, TrialState.PRUNED)


class WorkerTerminated(BaseException):
    """Raised in a worker's main thread by SIGTERM, so its running trial is marked FAIL."""


def default_storage(config: StudyConfig, workers: int, directory: str | Path = ".") -> str:
    """The embedded storage for ``workers`` local processes.

    SQLite (``NAME.sqlite3``) for one worker; Optuna's journal file (``NAME.journal``), which is
    safe for several processes on one machine, for more.
    """
    stem = Path(directory) / config.name.replace("/", "_")
    if workers <= 1:
        return f"sqlite:///{stem}.sqlite3"
    return f"journal:{stem}.journal"


def make_storage(url: str, config: StudyConfig) -> str | BaseStorage:
    """Open ``url`` with the study file's RDB settings (pool, pre-ping, heartbeats, retries).

    SQLite URLs get a plain ``RDBStorage``; PostgreSQL / MySQL URLs get a connection pool sized
    for one process (``pool_size``, ``max_overflow``), ``pool_pre_ping`` so a connection the
    server dropped is replaced instead of failing a trial, and, unless
    ``rdb.heartbeat_interval = 0``, heartbeats that fail a silent trial after ``grace_period``
    seconds and retry it ``max_retry`` times.
    """
    opened = open_storage(url)
    if not isinstance(opened, str):
        return opened
    import inspect

    from optuna.storages import RDBStorage

    if opened.startswith("sqlite"):
        return RDBStorage(opened, engine_kwargs={"connect_args": {"timeout": 60}})
    opened = with_installed_driver(opened)
    rdb = config.rdb
    kwargs: dict[str, Any] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if rdb.heartbeat_interval > 0:
            # Optuna 5 names the argument heartbeat_stale_trial_callback; 4.x has only the
            # older name.
            parameters = inspect.signature(RDBStorage).parameters
            callback_key = (
                "heartbeat_stale_trial_callback"
                if "heartbeat_stale_trial_callback" in parameters
                else "failed_trial_callback"
            )
            kwargs = {
                "heartbeat_interval": rdb.heartbeat_interval,
                "grace_period": rdb.grace_period or 3 * rdb.heartbeat_interval,
                callback_key: RetryStaleTrialCallback(max_retry=rdb.max_retry),
            }
        return RDBStorage(
            opened,
            engine_kwargs={
                "pool_size": rdb.pool_size,
                "max_overflow": rdb.max_overflow,
                "pool_recycle": rdb.pool_recycle,
                "pool_pre_ping": True,
            },
            **kwargs,
        )


def with_installed_driver(url: str) -> str:
    """``postgresql://`` with a PostgreSQL driver that is installed: psycopg2, else psycopg 3.

    SQLAlchemy's default driver for a bare ``postgresql://`` depends on its version (psycopg2
    before 2.1, psycopg 3 since), whatever is installed. The ``postgres`` extra installs
    psycopg2, which also works with every Optuna version we admit (Optuna 4.0's best-trial
    query failed under psycopg 3's strict typing).
    """
    import importlib.util

    if not url.startswith("postgresql://"):
        return url
    for module, driver in (("psycopg2", "psycopg2"), ("psycopg", "psycopg")):
        if importlib.util.find_spec(module) is not None:
            return f"postgresql+{driver}://" + url[len("postgresql://") :]
    return url


def prepare_study(
    config: StudyConfig, storage: str | BaseStorage, *, n_trials: int | None = None
) -> optuna.Study:
    """Create or load the study and enqueue WAITING trials up to ``n_trials`` live ones.

    The queued trials carry the user attribute ``lcpred:queued`` (as do retries), so they can
    be told apart from trials a user enqueued with parameters of their own.
    """
    study = optuna.create_study(
        study_name=config.name,
        storage=storage,
        direction=StudyDirection[config.direction.upper()],
        load_if_exists=True,
    )
    if study.direction.name.lower() != config.direction:
        raise ValueError(
            f"study {config.name!r} exists with direction {study.direction.name.lower()}, "
            f"but {config.source} says {config.direction}"
        )
    target = n_trials if n_trials is not None else config.n_trials
    if target is not None:
        study.set_user_attr(N_TRIALS_ATTR, target)
        live = len(study.get_trials(deepcopy=False, states=_LIVE))
        for _ in range(max(0, target - live)):
            study.enqueue_trial({}, user_attrs={QUEUED_ATTR: True})
    return study


@dataclass
class _StopRequest:
    """Set by the SIGTERM handler: the signal that asked this worker to stop, if any."""

    signum: int | None = None

    def check(self) -> None:
        """Raise :class:`WorkerTerminated` if a stop was asked for."""
        if self.signum is not None:
            raise WorkerTerminated(f"signal {self.signum}")


@contextmanager
def _terminate_on_sigterm() -> Iterator[_StopRequest]:
    request = _StopRequest()

    def handler(signum: int, frame: FrameType | None) -> None:
        request.signum = signum
        request.check()

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield request
        return
    try:
        yield request
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_worker(
    config: StudyConfig,
    storage: str | BaseStorage,
    *,
    worker_index: int = 0,
    objective: Callable[[optuna.Trial], float] | None = None,
    timeout: float | None = None,
) -> dict[str, int]:
    """Run trials of a prepared study until its queue is empty (or the timeout passes).

    Returns counts of the states this worker's trials ended in. SIGTERM (``scancel``, the end
    of a Slurm allocation, preemption) fails the running trial, so it is not left RUNNING,
    queues it again with the same parameters for the next worker (which resumes it from its
    checkpoint, if the objective keeps one), and re-raises :class:`WorkerTerminated`; the
    caller exits non-zero.
    """
    func = objective if objective is not None else config.make_objective()
    study = optuna.load_study(
        study_name=config.name,
        storage=storage,
        sampler=config.make_sampler(worker_index),
        pruner=config.make_pruner(func),
    )
    limit = timeout if timeout is not None else config.timeout
    unlimited = study.user_attrs.get(N_TRIALS_ATTR) is None
    deadline = time.monotonic() + limit if limit is not None else math.inf
    counts = {state.name: 0 for state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)}
    dashboard = config.make_dashboard_callback()
    worker_id = f"{socket.gethostname()}:{os.getpid()}"
    gpus = os.environ.get("CUDA_VISIBLE_DEVICES")  # which GPU ran the trial, when one is set
    with _terminate_on_sigterm() as stop:
        while time.monotonic() < deadline:
            _fail_stale(study)
            trial = pop_waiting_trial(study)
            if trial is None:
                if not unlimited:
                    break
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    trial = study.ask()
            trial.set_user_attr(WORKER_ATTR, worker_id)
            if gpus is not None:
                trial.set_user_attr(GPU_ATTR, gpus)
            frozen = _run_trial(study, trial, func, stop)
            stop.check()  # a signal that library code swallowed still stops the worker
            counts[frozen.state.name] = counts.get(frozen.state.name, 0) + 1
            if dashboard is not None:
                dashboard(study, frozen)
    return counts


def assign_gpus(spec: str, n_workers: int) -> list[str | None]:
    """The ``CUDA_VISIBLE_DEVICES`` each of ``n_workers`` local workers gets (None: unchanged).

    ``spec`` is ``"auto"`` (the GPUs this process sees: the entries of ``CUDA_VISIBLE_DEVICES``
    if it is set, else PyTorch's device count, else none), ``"none"`` (leave every worker's
    environment alone) or a comma-separated list of GPU indices or UUIDs. Workers are dealt
    out over the GPUs in turn, so 8 workers on 4 GPUs run 2 per GPU; with fewer than two GPUs
    nothing changes (every worker sees the one GPU there is, or none).

    Example:
        >>> assign_gpus("0,1", 3)
        ['0', '1', '0']
        >>> assign_gpus("none", 2)
        [None, None]
    """
    if n_workers < 0:
        raise ValueError(f"n_workers must be >= 0, got {n_workers!r}")
    if spec == "none":
        return [None] * n_workers
    if spec == "auto":
        gpus = _visible_gpus() if n_workers > 1 else []
        if len(gpus) < 2:
            return [None] * n_workers
    else:
        gpus = [item.strip() for item in spec.split(",")]
        if not all(gpus):
            raise ValueError(
                f"gpus must be 'auto', 'none' or a comma-separated list of GPU indices or "
                f"UUIDs such as '0,1,2,3', got {spec!r}"
            )
    return [gpus[i % len(gpus)] for i in range(n_workers)]


def _visible_gpus() -> list[str]:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [item.strip() for item in visible.split(",") if item.strip()]
    if not (Path("/proc/driver/nvidia").exists() or shutil.which("nvidia-smi")):
        return []  # no NVIDIA driver: no need to import PyTorch (2 s) to count zero GPUs
    try:
        import torch
    except ImportError:
        return []
    return [str(i) for i in range(torch.cuda.device_count())]


def _fail_stale(study: optuna.Study) -> None:
    from optuna.storages import fail_stale_trials

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        fail_stale_trials(study)


def _stopped(study: optuna.Study, frozen: FrozenTrial) -> None:
    """A trial whose worker was stopped (SIGTERM: scancel, a Slurm time limit, preemption;
    or Ctrl-C) is not at fault: queue it again, so the next worker resumes it (from its
    checkpoint, if the objective keeps one) instead of the study losing it."""
    requeue_trial(study, frozen)
    _logger.warning(
        "trial %d marked FAIL: the worker was stopped; queued again with the same parameters",
        frozen.number,
    )


def _run_trial(
    study: optuna.Study,
    trial: optuna.Trial,
    func: Callable[[optuna.Trial], float],
    stop: _StopRequest | None = None,
) -> FrozenTrial:
    try:
        with heartbeat(study, trial):
            value = func(trial)
    except optuna.TrialPruned as exc:
        frozen = study.tell(trial, state=TrialState.PRUNED)
        _logger.info("trial %d pruned: %s", trial.number, exc)
        return frozen
    except (WorkerTerminated, KeyboardInterrupt):
        _stopped(study, study.tell(trial, state=TrialState.FAIL))
        raise
    except Exception as exc:
        frozen = study.tell(trial, state=TrialState.FAIL)
        if stop is not None and stop.signum is not None:
            # The signal landed inside library code (a storage lock, say), which turned it
            # into another error: still a stop, not a failed trial to move on from.
            _stopped(study, frozen)
            raise WorkerTerminated(f"signal {stop.signum}") from exc
        _logger.exception("trial %d failed", trial.number)
        return frozen
    frozen = study.tell(trial, value)
    if frozen.state == TrialState.COMPLETE:
        _logger.info("trial %d finished with value %s", trial.number, value)
    else:
        _logger.warning(
            "trial %d returned %r and is marked %s", trial.number, value, frozen.state.name
        )
    return frozen


@dataclass(frozen=True)
class StudySummary:
    """What a finished (or running) study amounts to.

    ``epochs_trained`` counts the steps of COMPLETE and PRUNED trials, ``epochs_full`` what
    training each of them to the end would take; ``epochs_lost`` the steps FAIL trials trained
    that no retry resumed from a checkpoint (steps counted from 0), and ``n_resumed`` the
    trials that resumed one.
    """

    name: str
    storage: str
    n_complete: int
    n_pruned: int
    n_failed: int
    n_running: int
    n_waiting: int
    best_value: float | None
    best_params: dict[str, Any]
    best_number: int | None
    epochs_trained: int
    epochs_full: int
    epochs_lost: int = 0
    n_resumed: int = 0

    @property
    def epochs_fraction(self) -> float:
        """Epochs trained over the epochs of training every finished trial fully."""
        return self.epochs_trained / self.epochs_full if self.epochs_full else math.nan

    def dashboard_command(self) -> str:
        """The optuna-dashboard command that shows this study's storage."""
        url = self.storage
        if url.startswith("journal:"):
            url = url[len("journal:") :]
        return f"optuna-dashboard {url}"

    def report_command(self) -> str:
        """The ``optuna-lcpred report`` command for this study (a redacted password stays so)."""
        return (
            f"optuna-lcpred report --storage {shlex.quote(self.storage)} "
            f"--study {shlex.quote(self.name)}"
        )

    def format(self) -> str:
        """A few lines for a terminal."""
        lines = [f"study {self.name!r} in {self.storage}"]
        lines.append(
            f"trials: {self.n_complete} complete, {self.n_pruned} pruned, "
            f"{self.n_failed} failed"
            + (f", {self.n_running} running" if self.n_running else "")
            + (f", {self.n_waiting} waiting" if self.n_waiting else "")
        )
        if self.best_value is not None:
            lines.append(f"best: trial {self.best_number}, value {self.best_value:.6g}")
            lines.append("  " + ", ".join(f"{k}={v!r}" for k, v in self.best_params.items()))
        if self.epochs_full:
            lines.append(
                f"epochs trained: {self.epochs_trained} of {self.epochs_full} for training every "
                f"finished trial fully ({self.epochs_fraction:.1%})"
            )
        if self.n_failed:
            lost = f"epochs lost in failed or stopped trials: {self.epochs_lost}"
            if self.n_resumed:
                lost += f" (retries resumed from checkpoints: {self.n_resumed})"
            lines.append(lost)
        if self.n_pruned:
            lines.append(f"why pruned: {self.report_command()}")
        lines.append(f"dashboard: {self.dashboard_command()}")
        return "\n".join(lines)


def summarize_study(study: optuna.Study, storage_url: str) -> StudySummary:
    """Counts, the best trial and epochs trained, for ``study`` stored at ``storage_url``."""
    trials = study.get_trials(deepcopy=False)
    by_state = {state: 0 for state in TrialState}
    for trial in trials:
        by_state[trial.state] += 1
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    steps = [max(t.intermediate_values) + 1 for t in trials if t.intermediate_values]
    full = max(
        (
            max(t.intermediate_values) + 1
            for t in trials
            if t.state == TrialState.COMPLETE and t.intermediate_values
        ),
        default=max(steps, default=0),
    )
    # Steps a FAIL trial trained are lost unless a retry resumed them from a checkpoint (its
    # `lcpred:resumed_from` step and those before it came from the failed run).
    failed_steps = sum(len(t.intermediate_values) for t in trials if t.state == TrialState.FAIL)
    resumed = [
        t.user_attrs[RESUMED_ATTR]
        for t in trials
        if RESUMED_ATTR in t.user_attrs and t.user_attrs.get(RESUMED_BY_ATTR) == t.number
    ]
    resumed_steps = sum(int(step) + 1 for step in resumed)
    best = None
    if by_state[TrialState.COMPLETE]:
        try:
            best = study.best_trial
        except ValueError:
            best = None
    return StudySummary(
        name=study.study_name,
        storage=redact_url(storage_url),
        n_complete=by_state[TrialState.COMPLETE],
        n_pruned=by_state[TrialState.PRUNED],
        n_failed=by_state[TrialState.FAIL],
        n_running=by_state[TrialState.RUNNING],
        n_waiting=by_state[TrialState.WAITING],
        best_value=best.value if best is not None else None,
        best_params=dict(best.params) if best is not None else {},
        best_number=best.number if best is not None else None,
        epochs_trained=sum(len(t.intermediate_values) for t in finished),
        epochs_full=full * len(finished),
        epochs_lost=max(0, failed_steps - resumed_steps),
        n_resumed=len(resumed),
    )


def requeue_trial(study: optuna.Study, trial: FrozenTrial) -> None:
    """Queue ``trial`` again as a WAITING trial with the same parameters.

    The new trial's ``lcpred:retry_of`` attribute is the number of the first trial of the
    chain, so an objective that checkpoints (:class:`~optuna_lcpred.checkpoint.TrialCheckpoint`)
    resumes what the interrupted run saved, and seeds derived from it stay the same. The
    user's own attributes are copied; this package's (``lcpred:``: the pruner's predictions
    for the interrupted run, its worker) are not.
    """
    study.enqueue_trial(
        dict(trial.params), user_attrs={**retry_user_attrs(trial), QUEUED_ATTR: True}
    )


def recover_dead_worker(study: optuna.Study, pid: int, *, retry: bool = True) -> list[int]:
    """Fail the RUNNING trials of a local worker process that died, and queue them again.

    Used by ``run`` for its own child processes (on RDB storages heartbeats do the same across
    machines). Returns the numbers of the trials it failed.
    """
    me = socket.gethostname()
    failed: list[int] = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if trial.user_attrs.get(WORKER_ATTR) != f"{me}:{pid}":
            continue
        try:
            study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
        except (RuntimeError, ValueError):  # finished meanwhile
            continue
        failed.append(trial.number)
        if retry:
            requeue_trial(study, trial)
        _logger.warning(
            "trial %d of dead worker %d marked FAIL%s",
            trial.number,
            pid,
            " and queued again" if retry else "",
        )
    return failed
