"""MLPF training as an Optuna objective: one validation loss reported per epoch."""

from __future__ import annotations

import logging
import math
import numbers
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch

from mlpf_objective.data.batching import iterate_batches
from mlpf_objective.data.parquet import EventDataset
from mlpf_objective.data.parquet import read_parquet
from mlpf_objective.data.schema import CLASS_NAMES
from mlpf_objective.data.synthetic import generate_dataset
from mlpf_objective.loss import mlpf_loss
from mlpf_objective.model import MLPFModel
from mlpf_objective.search_space import parse_search_space
from mlpf_objective.search_space import suggest
from optuna_lcpred.checkpoint import TrialCheckpoint
from optuna_lcpred.checkpoint import original_trial_number


__all__ = ["MLPFObjective", "evaluate", "train_epoch"]

_logger = logging.getLogger("optuna.lcpred.mlpf.objective")


class MLPFObjective:
    """Train an MLPF model per trial, reporting the validation loss after every epoch.

    The data are read once per process (CLIC parquet files, or synthetic CLIC-like events when
    ``data`` is None) and split into training and validation events. Each trial draws its
    hyperparameters from ``search_space``, seeds NumPy and PyTorch from ``seed`` and the trial
    number, trains ``epochs`` epochs with AdamW, reports the validation loss after each
    (``trial.report(loss, epoch)``) and raises :class:`optuna.TrialPruned` when the pruner says
    so. A loss that turns NaN or infinite is reported and the trial is pruned (a diverging
    configuration is an ordinary outcome, not a failure). A finished trial stores physics
    metrics as user attributes: ``mlpf:f1_<class>`` per class, ``mlpf:pt_response`` (median
    predicted over true pT of true particles predicted as particles) and
    ``mlpf:pt_resolution`` (half the 16-84 % interval of that ratio over its median), plus
    ``mlpf:seconds_per_epoch`` and ``mlpf:n_parameters``; every trial records
    ``mlpf:device`` (and ``mlpf:gpu_name`` on a GPU).

    With ``checkpoint_dir``, the model, the optimiser, the random states and the losses so far
    are saved after every epoch (:class:`~optuna_lcpred.checkpoint.TrialCheckpoint`, no
    pickle), and a trial that a stopped or dead worker left behind, queued again with the same
    parameters, resumes after its last saved epoch: it reports the saved losses, then trains
    on exactly as the interrupted run would have (the same losses on the same device). The
    checkpoint is deleted when the trial is COMPLETE, PRUNED or fails with an error, and kept
    when a stop (SIGTERM, Ctrl-C) or a dead node ends it.

    Args:
        data: parquet file(s) or folder(s) in the CLIC schema; None for synthetic events.
        n_events: synthetic events to generate (ignored when ``data`` is given).
        max_events: read at most this many events from ``data``.
        val_fraction: share of events held out for validation.
        epochs: epochs per trial (the steps the pruner sees: 0 .. epochs-1).
        search_space: the ``search_space`` table of a study file (see
            :mod:`mlpf_objective.search_space`); entries replace the defaults.
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
        seed: data split and per-trial seeds derive from it.
        data_seed: seed of the synthetic events.
        num_threads: PyTorch CPU threads; None leaves PyTorch's default.
        checkpoint_dir: folder for per-trial checkpoints, shared by the study's workers (on a
            cluster, the parallel file system); None keeps none.
        checkpoint_every: save after every this many epochs (a save costs about 0.2 s and
            170 MB for the largest model of ``studies/mlpf_clic.toml``; docs/benchmarks.md).

    Example:
        >>> import optuna
        >>> objective = MLPFObjective(n_events=60, epochs=2, search_space={"width": 16,
        ...     "num_heads": 2, "num_layers": 1, "batch_size": 32})
        >>> optuna.logging.set_verbosity(optuna.logging.WARNING)
        >>> study = optuna.create_study()
        >>> study.optimize(objective, n_trials=1)
        >>> sorted(study.trials[0].intermediate_values)
        [0, 1]
    """

    def __init__(
        self,
        *,
        data: str | Path | list[str | Path] | None = None,
        n_events: int = 1000,
        max_events: int | None = None,
        val_fraction: float = 0.25,
        epochs: int = 10,
        search_space: Mapping[str, Any] | None = None,
        device: str = "auto",
        seed: int = 0,
        data_seed: int = 0,
        num_threads: int | None = None,
        checkpoint_dir: str | Path | None = None,
        checkpoint_every: int = 1,
    ) -> None:
        _check_int("epochs", epochs, 1)
        _check_int("n_events", n_events, 2)
        _check_int("max_events", max_events, 1, optional=True)
        _check_int("checkpoint_every", checkpoint_every, 1)
        _check_int("num_threads", num_threads, 1, optional=True)
        _check_int("seed", seed, 0)
        _check_int("data_seed", data_seed, 0)
        if (
            isinstance(val_fraction, bool)
            or not isinstance(val_fraction, (int, float))
            or not 0.0 < val_fraction < 1.0
        ):
            raise ValueError(f"val_fraction must be a number in (0, 1), got {val_fraction!r}")
        self._data = data
        self._n_events = n_events
        self._max_events = max_events
        self._val_fraction = val_fraction
        self._epochs = epochs
        self._space = parse_search_space(search_space)
        self._device = _resolve_device(device)
        self._seed = seed
        self._data_seed = data_seed
        self._num_threads = num_threads
        self._checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self._checkpoint_every = checkpoint_every
        self._split: tuple[EventDataset, EventDataset] | None = None

    @property
    def epochs(self) -> int:
        """Epochs per trial."""
        return self._epochs

    @property
    def n_steps(self) -> int:
        """Steps each trial reports (its epochs): a study file's ``"10%"`` options use it."""
        return self._epochs

    def datasets(self) -> tuple[EventDataset, EventDataset]:
        """Training and validation events (read or generated on first use)."""
        if self._split is None:
            if self._data is None:
                events = generate_dataset(self._n_events, seed=self._data_seed)
            else:
                events = read_parquet(self._data, max_events=self._max_events)
            self._split = events.split(self._val_fraction, seed=self._seed)
        return self._split

    def __call__(self, trial: optuna.Trial) -> float:
        params = suggest(trial, self._space)
        self.datasets()  # read (or generate) the events once, before any seeding
        if self._num_threads is not None:
            torch.set_num_threads(self._num_threads)
        # A retried trial is the same run: seeds follow the original trial of the chain.
        trial_seed = (self._seed * 1_000_003 + original_trial_number(trial)) % 2**31
        torch.manual_seed(trial_seed)
        rng = np.random.default_rng(trial_seed)
        heads = int(params["num_heads"])
        width = math.ceil(int(params["width"]) / heads) * heads
        model = MLPFModel(
            width=width,
            num_heads=heads,
            num_layers=int(params["num_layers"]),
            dropout=float(params["dropout"]),
        ).to(self._device)
        optimizer = torch.optim.AdamW(
            model.parameters(),
            lr=float(params["lr"]),
            weight_decay=float(params["weight_decay"]),
            # One fused kernel per step instead of several per tensor: 1.3-1.5x faster epochs
            # on a GPU, where these models are bound by kernel launches (docs/benchmarks.md).
            fused=True if self._device.type == "cuda" else None,
        )
        trial.set_user_attr("mlpf:n_parameters", sum(p.numel() for p in model.parameters()))
        trial.set_user_attr("mlpf:device", str(self._device))
        if self._device.type == "cuda":
            trial.set_user_attr("mlpf:gpu_name", torch.cuda.get_device_name(self._device))
        checkpoint = (
            TrialCheckpoint(self._checkpoint_dir, trial)
            if self._checkpoint_dir is not None
            else None
        )
        try:
            loss = self._train(trial, params, model, optimizer, rng, checkpoint)
        except Exception:
            # Pruned, diverged or failed: nothing will resume this trial. A stop (SIGTERM,
            # Ctrl-C: BaseException) keeps the checkpoint for the retry that is queued.
            _remove(checkpoint)
            raise
        _remove(checkpoint)
        return loss

    def _train(
        self,
        trial: optuna.Trial,
        params: dict[str, Any],
        model: MLPFModel,
        optimizer: torch.optim.Optimizer,
        rng: np.random.Generator,
        checkpoint: TrialCheckpoint | None,
    ) -> float:
        train, val = self.datasets()
        losses: list[float] = []
        seconds = 0.0
        saved = checkpoint.load() if checkpoint is not None else None
        if saved is not None and len(saved[1]["losses"]) > self._epochs:
            _logger.warning(
                "trial %d: its checkpoint holds %d epochs, more than epochs=%d; training "
                "from the start",
                trial.number,
                len(saved[1]["losses"]),
                self._epochs,
            )
            saved = None
        if saved is not None and checkpoint is not None:
            losses, seconds = self._restore(saved[1], model, optimizer, rng, checkpoint)
        loss = losses[-1] if losses else math.inf
        for epoch in range(len(losses), self._epochs):
            start = time.perf_counter()
            train_epoch(model, optimizer, train, int(params["batch_size"]), rng, self._device)
            loss = evaluate(model, val, self._device)["loss"]
            seconds += time.perf_counter() - start
            trial.report(loss, epoch)
            losses.append(loss)
            if not math.isfinite(loss):
                trial.set_user_attr("mlpf:diverged_at", epoch)
                raise optuna.TrialPruned(f"validation loss {loss} at epoch {epoch}")
            if checkpoint is not None and (epoch + 1) % self._checkpoint_every == 0:
                checkpoint.save(epoch, self._state(model, optimizer, rng, losses, seconds))
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at epoch {epoch}")
        trial.set_user_attr("mlpf:seconds_per_epoch", seconds / self._epochs)
        for key, value in evaluate(model, val, self._device, physics=True).items():
            if key != "loss":
                trial.set_user_attr(f"mlpf:{key}", value)
        return loss

    def _state(
        self,
        model: MLPFModel,
        optimizer: torch.optim.Optimizer,
        rng: np.random.Generator,
        losses: list[float],
        seconds: float,
    ) -> dict[str, Any]:
        state: dict[str, Any] = {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "numpy_rng": rng.bit_generator.state,
            "losses": list(losses),
            "seconds": seconds,
        }
        if self._device.type == "cuda":
            state["cuda_rng"] = torch.cuda.get_rng_state(self._device)
        return state

    def _restore(
        self,
        state: dict[str, Any],
        model: MLPFModel,
        optimizer: torch.optim.Optimizer,
        rng: np.random.Generator,
        checkpoint: TrialCheckpoint,
    ) -> tuple[list[float], float]:
        """Load a checkpoint's state; report its losses the trial does not hold yet."""
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        if self._device.type == "cuda" and "cuda_rng" in state:
            torch.cuda.set_rng_state(state["cuda_rng"], self._device)
        rng.bit_generator.state = state["numpy_rng"]
        losses = [float(value) for value in state["losses"]]
        checkpoint.report(losses)
        return losses, float(state["seconds"])


def _remove(checkpoint: TrialCheckpoint | None) -> None:
    if checkpoint is not None:
        checkpoint.remove()


def train_epoch(
    model: MLPFModel,
    optimizer: torch.optim.Optimizer,
    events: EventDataset,
    batch_size: int,
    rng: np.random.Generator,
    device: torch.device,
) -> float:
    """One pass over ``events`` in a shuffled order; returns the mean training loss."""
    model.train()
    # The sum stays on the device (reading a GPU number each batch would stall the GPU), in
    # float64 like the Python float it replaces, so CPU results are unchanged to the bit.
    total = torch.zeros((), dtype=torch.float64, device=device)
    count = 0
    for batch in iterate_batches(events, batch_size, shuffle=True, rng=rng):
        n = int(batch.mask.sum())  # counted on the host, before the copy
        batch = batch.to(device)
        loss, _ = mlpf_loss(model(batch.elements, batch.mask), batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        optimizer.step()
        total += loss.detach().double() * n
        count += n
    return float(total) / max(count, 1)


@torch.no_grad()
def evaluate(
    model: MLPFModel,
    events: EventDataset,
    device: torch.device,
    *,
    batch_size: int = 256,
    physics: bool = False,
) -> dict[str, float]:
    """Loss per element over ``events`` and, with ``physics``, F1 per class and pT metrics."""
    model.eval()
    total = torch.zeros((), dtype=torch.float64, device=device)
    count = 0
    true_classes: list[np.ndarray] = []
    pred_classes: list[np.ndarray] = []
    ratios: list[np.ndarray] = []
    for batch in iterate_batches(events, batch_size):
        n = int(batch.mask.sum())
        batch = batch.to(device)
        output = model(batch.elements, batch.mask)
        loss, _ = mlpf_loss(output, batch)
        total += loss.double() * n
        count += n
        if physics:
            mask = batch.mask
            true = batch.target_class[mask]
            pred = output.predicted_class()[mask]
            true_classes.append(true.cpu().numpy())
            pred_classes.append(pred.cpu().numpy())
            both = (true > 0) & (pred > 0)
            pt_pred = torch.exp(output.regression[..., 0][mask][both])
            pt_true = batch.targets[..., 2][mask][both]
            ratios.append((pt_pred / pt_true.clamp_min(1e-6)).cpu().numpy())
    metrics = {"loss": float(total) / max(count, 1)}
    if physics:
        metrics.update(_physics_metrics(true_classes, pred_classes, ratios))
    return metrics


def _physics_metrics(
    true_classes: list[np.ndarray], pred_classes: list[np.ndarray], ratios: list[np.ndarray]
) -> dict[str, float]:
    from sklearn.metrics import f1_score

    true = np.concatenate(true_classes)
    pred = np.concatenate(pred_classes)
    scores = f1_score(
        true, pred, labels=list(range(len(CLASS_NAMES))), average=None, zero_division=0.0
    )
    metrics = {
        f"f1_{name}": float(score) for name, score in zip(CLASS_NAMES, scores, strict=False)
    }
    ratio = np.concatenate(ratios)
    ratio = ratio[np.isfinite(ratio)]
    if len(ratio):
        q16, q50, q84 = np.quantile(ratio, [0.16, 0.5, 0.84])
        metrics["pt_response"] = float(q50)
        metrics["pt_resolution"] = float((q84 - q16) / 2.0 / q50) if q50 > 0 else math.nan
    return metrics


def _resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise ValueError(
            f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}"
        ) from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but PyTorch sees no CUDA device")
    return resolved


def _check_int(name: str, value: Any, minimum: int, *, optional: bool = False) -> None:
    """A ``ValueError`` naming ``value`` unless it is an int >= ``minimum`` (or None where
    ``optional``): options come from study files and ``--set`` as text as well."""
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        also = " or None" if optional else ""
        raise ValueError(f"{name} must be an int >= {minimum}{also}, got {value!r}")
