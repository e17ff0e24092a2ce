"""Pad events into batches with a mask."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from mlpf_objective.data.parquet import EventDataset


if TYPE_CHECKING:
    import torch


__all__ = ["Batch", "collate", "iterate_batches"]


@dataclass(frozen=True)
class Batch:
    """A padded batch.

    Attributes:
        elements: ``(B, N, 17)`` float32 element features; padded rows are zero (type 0).
        mask: ``(B, N)`` bool, True on real elements.
        targets: ``(B, N, 7)`` float32 target rows (class, charge, pT, eta, sin phi, cos phi,
            energy); padded rows are zero.
    """

    elements: torch.Tensor
    mask: torch.Tensor
    targets: torch.Tensor

    @property
    def target_class(self) -> torch.Tensor:
        """``(B, N)`` class indices as int64."""
        return self.targets[..., 0].long()

    def to(self, device: torch.device | str) -> Batch:
        """The same batch on ``device``."""
        return Batch(self.elements.to(device), self.mask.to(device), self.targets.to(device))


def collate(dataset: EventDataset, indices: np.ndarray | list[int], *, pad_to: int = 0) -> Batch:
    """Pad the events at ``indices`` to the longest of them (or ``pad_to``, if longer)."""
    import torch

    picked = [int(i) for i in indices]
    if not picked:
        raise ValueError("a batch needs at least one event")
    n_max = max(pad_to, *(len(dataset.elements[i]) for i in picked))
    width = dataset.elements[picked[0]].shape[1]
    n_targets = dataset.targets[picked[0]].shape[1]
    elements = np.zeros((len(picked), n_max, width), dtype=np.float32)
    targets = np.zeros((len(picked), n_max, n_targets), dtype=np.float32)
    mask = np.zeros((len(picked), n_max), dtype=bool)
    for row, i in enumerate(picked):
        n = len(dataset.elements[i])
        elements[row, :n] = dataset.elements[i]
        targets[row, :n] = dataset.targets[i]
        mask[row, :n] = True
    return Batch(torch.from_numpy(elements), torch.from_numpy(mask), torch.from_numpy(targets))


def iterate_batches(
    dataset: EventDataset,
    batch_size: int,
    *,
    shuffle: bool = False,
    rng: np.random.Generator | None = None,
) -> Iterator[Batch]:
    """Batches over the whole dataset; with ``shuffle``, in an order drawn from ``rng``."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
    order = np.arange(len(dataset))
    if shuffle:
        order = (rng or np.random.default_rng()).permutation(order)
    for start in range(0, len(order), batch_size):
        yield collate(dataset, order[start : start + batch_size])
