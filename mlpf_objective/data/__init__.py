"""MLPF data: the CLIC parquet reader, a synthetic generator in the same schema, batching."""

from __future__ import annotations

from mlpf_objective.data.batching import Batch
from mlpf_objective.data.batching import collate
from mlpf_objective.data.batching import iterate_batches
from mlpf_objective.data.parquet import EventDataset
from mlpf_objective.data.parquet import MLPFDataError
from mlpf_objective.data.parquet import read_parquet
from mlpf_objective.data.synthetic import SyntheticConfig
from mlpf_objective.data.synthetic import generate_dataset
from mlpf_objective.data.synthetic import generate_table
from mlpf_objective.data.synthetic import write_synthetic_parquet


__all__ = [
    "Batch",
    "EventDataset",
    "MLPFDataError",
    "SyntheticConfig",
    "collate",
    "generate_dataset",
    "generate_table",
    "iterate_batches",
    "read_parquet",
    "write_synthetic_parquet",
]
