"""A worker thread that runs slow fits so that ``should_prune`` never waits for them."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from collections.abc import Hashable


__all__ = ["BackgroundFits"]

_logger = logging.getLogger("optuna.lcpred.pruner")


class BackgroundFits:
    """Runs submitted jobs one at a time on a daemon thread, at most one pending per key.

    A job submitted for a key that already has one waiting replaces it (only the newest
    training set is worth fitting); a job already running finishes. A failing job is logged and
    dropped: the caller keeps deciding with the model it has.
    """

    def __init__(self) -> None:
        self._jobs: dict[Hashable, Callable[[], None]] = {}
        self._running: Hashable | None = None
        self._condition = threading.Condition()
        self._thread: threading.Thread | None = None

    def submit(self, key: Hashable, job: Callable[[], None]) -> None:
        """Queue ``job`` under ``key`` (replacing a queued job with the same key)."""
        with self._condition:
            self._jobs[key] = job
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="optuna-lcpred-fits", daemon=True
                )
                self._thread.start()
            self._condition.notify_all()

    def is_pending(self, key: Hashable) -> bool:
        """Whether a job for ``key`` is queued or running."""
        with self._condition:
            return key in self._jobs or self._running == key

    def wait(self, timeout: float | None = None) -> bool:
        """Block until no job is queued or running; False if ``timeout`` passed first."""
        with self._condition:
            return self._condition.wait_for(
                lambda: not self._jobs and self._running is None, timeout
            )

    def _run(self) -> None:
        while True:
            with self._condition:
                if not self._condition.wait_for(lambda: bool(self._jobs), timeout=60.0):
                    self._thread = None  # idle for a minute: let the thread end
                    return
                key = next(iter(self._jobs))
                job = self._jobs.pop(key)
                self._running = key
            try:
                job()
            except Exception:  # a failed fit must not stop pruning
                _logger.exception("A background predictor fit failed; keeping the last model.")
            finally:
                with self._condition:
                    self._running = None
                    self._condition.notify_all()
