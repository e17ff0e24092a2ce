"""Read CLIC/CLD postprocessed parquet files into per-event element and target matrices."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mlpf_objective.data.schema import CLASS_PDG
from mlpf_objective.data.schema import CLUSTER
from mlpf_objective.data.schema import N_ELEMENT_FEATURES
from mlpf_objective.data.schema import TRACK
from mlpf_objective.data.schema import X_CLUSTER_FEATURES
from mlpf_objective.data.schema import X_TRACK_FEATURES
from mlpf_objective.data.schema import Y_GEN_FEATURES
from mlpf_objective.data.schema import Y_TARGET_FEATURES


if TYPE_CHECKING:
    import pyarrow as pa


__all__ = ["EventDataset", "MLPFDataError", "events_from_table", "read_parquet"]

_logger = logging.getLogger("optuna.lcpred.mlpf.data")

#: Columns of :attr:`EventDataset.targets`.
TARGET_COLUMNS: tuple[str, ...] = (
    "class",
    "charge",
    "pt",
    "eta",
    "sin_phi",
    "cos_phi",
    "energy",
)


class MLPFDataError(ValueError):
    """A data file that is missing, not in the CLIC parquet schema, or holds no events."""


@dataclass(frozen=True)
class EventDataset:
    """Events as ragged element and target matrices.

    Attributes:
        elements: per event an ``(N, 17)`` float32 matrix, tracks first (their 16 features
            padded with a zero column), then clusters; column 0 is the element type (1 track,
            2 cluster).
        targets: per event an ``(N, 7)`` float32 matrix, one row per element: class index
            (0 none, 1 charged hadron, 2 neutral hadron, 3 photon, 4 electron, 5 muon), charge,
            pT, eta, sin phi, cos phi, energy. Rows of class 0 carry zeros.
        source: where the events came from (file names, or a description).
    """

    elements: tuple[np.ndarray, ...]
    targets: tuple[np.ndarray, ...]
    source: str = ""

    def __len__(self) -> int:
        return len(self.elements)

    def subset(self, indices: Iterable[int]) -> EventDataset:
        """The events at ``indices``, in that order."""
        picked = list(indices)
        return EventDataset(
            tuple(self.elements[i] for i in picked),
            tuple(self.targets[i] for i in picked),
            self.source,
        )

    def split(self, val_fraction: float, *, seed: int = 0) -> tuple[EventDataset, EventDataset]:
        """A seeded random split into training and validation events."""
        if not 0.0 < val_fraction < 1.0:
            raise ValueError(f"val_fraction must lie in (0, 1), got {val_fraction!r}")
        order = np.random.default_rng(seed).permutation(len(self))
        n_val = max(1, round(val_fraction * len(self)))
        if n_val >= len(self):
            raise MLPFDataError(
                f"{len(self)} event(s) cannot be split into training and validation sets"
            )
        return self.subset(order[n_val:].tolist()), self.subset(order[:n_val].tolist())

    def n_elements(self) -> np.ndarray:
        """Number of elements per event."""
        return np.array([len(x) for x in self.elements], dtype=np.int64)


def read_parquet(
    paths: str | Path | Sequence[str | Path], *, max_events: int | None = None
) -> EventDataset:
    """Read CLIC/CLD postprocessed parquet files (a file, a folder of ``*.parquet``, or a list).

    Accepts the current schema (``X_track``, ``X_cluster``, ``ytarget_track``,
    ``ytarget_cluster`` with 14 columns) and the older one (``ygen_track`` / ``ygen_cluster``
    with 7 or 8 columns). Events with no element are skipped.

    Raises:
        MLPFDataError: a path does not exist, a file is not parquet or lacks a field, a field
            has the wrong width, targets and elements disagree in number, or no event is left.
    """
    import pyarrow.parquet as pq

    files = _expand(paths)
    elements: list[np.ndarray] = []
    targets: list[np.ndarray] = []
    for path in files:
        try:
            table = pq.read_table(path)
        except Exception as exc:  # pyarrow raises several types for a bad file
            raise MLPFDataError(f"{path}: not a readable parquet file ({exc})") from None
        part = events_from_table(table, source=str(path))
        elements.extend(part.elements)
        targets.extend(part.targets)
        if max_events is not None and len(elements) >= max_events:
            del elements[max_events:], targets[max_events:]
            break
    if not elements:
        raise MLPFDataError(f"no events with elements in {', '.join(map(str, files))}")
    _logger.info("read %d events from %d file(s)", len(elements), len(files))
    return EventDataset(tuple(elements), tuple(targets), ", ".join(map(str, files)))


def events_from_table(table: pa.Table, *, source: str = "<table>") -> EventDataset:
    """Convert one parquet table in the CLIC schema into an :class:`EventDataset`."""
    names = set(table.column_names)
    if {"ytarget_track", "ytarget_cluster"} <= names:
        y_names = ("ytarget_track", "ytarget_cluster")
        y_widths: tuple[int, ...] = (len(Y_TARGET_FEATURES),)
    elif {"ygen_track", "ygen_cluster"} <= names:
        y_names = ("ygen_track", "ygen_cluster")
        y_widths = (len(Y_GEN_FEATURES) - 1, len(Y_GEN_FEATURES))
    else:
        raise MLPFDataError(
            f"{source}: no target fields; expected ytarget_track and ytarget_cluster (or the "
            f"older ygen_track and ygen_cluster), found {sorted(names)}"
        )
    for field in ("X_track", "X_cluster"):
        if field not in names:
            raise MLPFDataError(f"{source}: missing field {field!r}; found {sorted(names)}")
    x_track = _matrices(table, "X_track", (len(X_TRACK_FEATURES),), source)
    x_cluster = _matrices(table, "X_cluster", (len(X_CLUSTER_FEATURES),), source)
    y_track = _matrices(table, y_names[0], y_widths, source)
    y_cluster = _matrices(table, y_names[1], y_widths, source)

    elements: list[np.ndarray] = []
    targets: list[np.ndarray] = []
    for event, (xt, xc, yt, yc) in enumerate(
        zip(x_track, x_cluster, y_track, y_cluster, strict=False)
    ):
        if len(xt) != len(yt) or len(xc) != len(yc):
            raise MLPFDataError(
                f"{source}: event {event} has {len(xt)} tracks but {len(yt)} track targets, "
                f"{len(xc)} clusters but {len(yc)} cluster targets"
            )
        if len(xt) + len(xc) == 0:
            continue
        xt = np.pad(xt, ((0, 0), (0, N_ELEMENT_FEATURES - xt.shape[1])))
        xt[:, 0] = TRACK
        xc = xc.copy()
        xc[:, 0] = CLUSTER
        elements.append(np.ascontiguousarray(np.concatenate([xt, xc]), dtype=np.float32))
        targets.append(_targets(np.concatenate([yt[:, :7], yc[:, :7]])))
    return EventDataset(tuple(elements), tuple(targets), source)


def _expand(paths: str | Path | Sequence[str | Path]) -> list[Path]:
    items = [paths] if isinstance(paths, (str, Path)) else list(paths)
    if not items:
        raise MLPFDataError("no data path given")
    files: list[Path] = []
    for item in items:
        path = Path(item).expanduser()
        if path.is_dir():
            found = sorted(path.glob("*.parquet"))
            if not found:
                raise MLPFDataError(f"{path}: folder holds no *.parquet file")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise MLPFDataError(f"{path}: no such file or folder")
    return files


def _matrices(
    table: pa.Table, field: str, widths: tuple[int, ...], source: str
) -> list[np.ndarray]:
    """Per event, the rows of list-of-list field ``field`` as an ``(n, width)`` float matrix."""
    import pyarrow as pa
    import pyarrow.compute as pc

    column = table.column(field).combine_chunks()
    if not pa.types.is_list(column.type) and not pa.types.is_large_list(column.type):
        raise MLPFDataError(f"{source}: field {field!r} is {column.type}, expected lists of rows")
    rows = column.flatten()
    if not (
        pa.types.is_list(rows.type)
        or pa.types.is_large_list(rows.type)
        or pa.types.is_fixed_size_list(rows.type)
    ):
        raise MLPFDataError(f"{source}: field {field!r} holds {rows.type}, expected float rows")
    per_event = pc.list_value_length(column).fill_null(0).to_numpy(zero_copy_only=False)
    if len(rows) == 0:
        return [np.zeros((0, widths[-1]), dtype=np.float32) for _ in per_event]
    lengths = np.unique(pc.list_value_length(rows).to_numpy(zero_copy_only=False))
    if len(lengths) != 1 or int(lengths[0]) not in widths:
        wanted = " or ".join(map(str, widths))
        raise MLPFDataError(
            f"{source}: field {field!r} has rows of {lengths.tolist()} columns, expected {wanted}"
        )
    width = int(lengths[0])
    try:
        flat = rows.flatten().to_numpy(zero_copy_only=False).astype(np.float32)
    except (pa.ArrowInvalid, ValueError, TypeError) as exc:
        raise MLPFDataError(f"{source}: field {field!r} is not numeric ({exc})") from None
    matrix = flat.reshape(-1, width)
    return np.split(matrix, np.cumsum(per_event)[:-1])


def _targets(y: np.ndarray) -> np.ndarray:
    """Map raw target rows (PDG, charge, pt, eta, sin, cos, energy) to class-indexed rows."""
    pdg = np.abs(np.nan_to_num(y[:, 0])).astype(np.int64)
    charge = y[:, 1]
    classes = np.zeros(len(y), dtype=np.int64)
    for index, code in enumerate(CLASS_PDG):
        classes[pdg == code] = index
    other = (classes == 0) & (pdg != 0)
    classes[other & (charge != 0)] = CLASS_PDG.index(211)
    classes[other & (charge == 0)] = CLASS_PDG.index(130)
    out = np.zeros((len(y), len(TARGET_COLUMNS)), dtype=np.float32)
    out[:, 0] = classes
    out[:, 1:] = y[:, 1:7]
    out[classes == 0, 1:] = 0.0
    return out
