"""Curve tables: learning curves of many trials as one CSV file.

The format (DESIGN section 8): one row per trial; ``param_<name>`` columns hold its
hyperparameters, ``loss_<step>`` columns the value reported at that step (to minimise). An
optional ``value`` column holds a trial's final objective value (to minimise), which may
differ from its last report: a trial that stopped itself before the last step (its own early
stopping), or an objective that returns another number (the best epoch's loss, a test loss).
An empty cell is a missing or diverged value and reads as NaN.
:func:`read_curve_table` turns such a file into a :class:`CurveTable`;
:func:`write_curve_table` writes one back; :func:`study_to_curve_table` builds one from any
Optuna study.
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any
from typing import TextIO

import numpy as np


if TYPE_CHECKING:
    import optuna
    from optuna.distributions import BaseDistribution
    from optuna.trial import TrialState


__all__ = [
    "BUNDLED_TABLES",
    "CurveTable",
    "CurveTableError",
    "read_curve_table",
    "read_curve_tables",
    "resolve_table_path",
    "study_to_curve_table",
    "write_curve_table",
]

PARAM_PREFIX = "param_"
LOSS_PREFIX = "loss_"
VALUE_COLUMN = "value"

#: Tables shipped inside the package, by name (see ``optuna_lcpred/data/README.md``).
BUNDLED_TABLES: tuple[str, ...] = ("mlpf_delphes",)

_logger = logging.getLogger("optuna.lcpred.curves")


class CurveTableError(ValueError):
    """A curve table that does not follow the format.

    The message names the file, and where it applies the line, the trial row and the column.

    Attributes:
        path: The file, if the table came from one.
        column: The offending column name, if any.
        row: The offending trial row (1-based, the header not counted), if any.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        column: str | None = None,
        row: int | None = None,
    ) -> None:
        where = []
        if path is not None:
            where.append(str(path))
        if row is not None:
            where.append(f"line {row + 1} (trial row {row})")
        if column is not None:
            where.append(f"column {column!r}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)
        self.path = path
        self.column = column
        self.row = row


@dataclass(frozen=True, eq=False)
class CurveTable:
    """Learning curves of ``n_trials`` trials over ``n_steps`` report steps.

    Args:
        params: Hyperparameters by name (without the ``param_`` prefix), each an array of length
            ``n_trials``: ``int64`` or ``float64`` for numeric columns (NaN where a trial lacks the
            parameter), ``object`` holding ``str`` or ``None`` otherwise.
        steps: The report steps, strictly increasing non-negative integers, length ``n_steps``.
        curves: Values by trial and step, shape ``(n_trials, n_steps)``; NaN where missing or
            diverged.
        name: A short name, e.g. the file stem; used as the key in benchmark reports.
        finals: Optional, length ``n_trials``: each trial's final objective value (to
            minimise), NaN where it has none (a pruned or failed trial) or where its last
            step's value is its final. See :attr:`final_values` and :attr:`end_indices`.
            ``study_to_curve_table`` fills it from the COMPLETE trials' values.

    Example:
        >>> import numpy as np
        >>> table = CurveTable(
        ...     params={"lr": np.array([0.1, 0.01])},
        ...     steps=np.arange(3),
        ...     curves=np.array([[3.0, 2.0, 1.5], [3.0, 2.5, np.nan]]),
        ...     name="toy",
        ... )
        >>> table.n_trials, table.n_steps
        (2, 3)
        >>> table.final_values
        array([1.5, nan])
    """

    params: Mapping[str, np.ndarray]
    steps: np.ndarray
    curves: np.ndarray
    name: str = "table"
    finals: np.ndarray | None = None

    def __post_init__(self) -> None:
        curves = np.array(self.curves, dtype=np.float64, copy=True)
        if curves.ndim != 2:
            raise ValueError(f"curves must be 2-D (trials, steps), got shape {curves.shape}")
        steps = np.array(self.steps, copy=True)
        if steps.ndim != 1 or steps.shape[0] != curves.shape[1]:
            raise ValueError(
                f"steps must be 1-D with one entry per curve column ({curves.shape[1]}), "
                f"got shape {steps.shape}"
            )
        integral = np.issubdtype(steps.dtype, np.integer)
        if steps.size and not integral and not np.all(np.equal(np.mod(steps, 1), 0)):
            raise ValueError(f"steps must be integers, got {steps.tolist()}")
        steps = steps.astype(np.int64)
        if steps.size and (steps[0] < 0 or np.any(np.diff(steps) <= 0)):
            raise ValueError(
                f"steps must be strictly increasing non-negative integers, got {steps.tolist()}"
            )
        params: dict[str, np.ndarray] = {}
        for key, values in self.params.items():
            array = np.asarray(values)
            if array.ndim != 1 or array.shape[0] != curves.shape[0]:
                raise ValueError(
                    f"parameter {key!r} must have one value per trial ({curves.shape[0]}), "
                    f"got shape {array.shape}"
                )
            params[str(key)] = array.copy()
        finals = None
        if self.finals is not None:
            try:
                finals = np.array(self.finals, dtype=np.float64, copy=True)
            except (TypeError, ValueError):
                raise ValueError(
                    f"finals must be numbers (NaN where a trial has none), got {self.finals!r}"
                ) from None
            if finals.shape != (curves.shape[0],):
                raise ValueError(
                    f"finals must have one value per trial ({curves.shape[0]}), "
                    f"got shape {finals.shape}"
                )
            finals.setflags(write=False)
        curves.setflags(write=False)
        steps.setflags(write=False)
        for array in params.values():
            array.setflags(write=False)
        object.__setattr__(self, "curves", curves)
        object.__setattr__(self, "steps", steps)
        object.__setattr__(self, "finals", finals)
        object.__setattr__(self, "params", params)

    @property
    def n_trials(self) -> int:
        """Number of trials (rows)."""
        return int(self.curves.shape[0])

    @property
    def n_steps(self) -> int:
        """Number of report steps (``T`` in the benchmark protocol)."""
        return int(self.curves.shape[1])

    @property
    def param_names(self) -> list[str]:
        """Hyperparameter names in column order."""
        return list(self.params)

    @property
    def final_values(self) -> np.ndarray:
        """Each trial's final value: its ``finals`` entry where it has one, else its value at
        the last step (NaN for a diverged or unfinished trial)."""
        last = self.curves[:, -1]
        if self.finals is None:
            return last
        return np.where(np.isfinite(self.finals), self.finals, last)

    @property
    def end_indices(self) -> np.ndarray:
        """The column at which each trial ended: the last column, or, for a trial with a
        finite ``finals`` entry whose curve stops earlier (it stopped itself), its last finite
        column."""
        n_steps = self.curves.shape[1]
        ends = np.full(self.curves.shape[0], n_steps - 1, dtype=np.int64)
        if self.finals is None or n_steps == 0:
            return ends
        finite = np.isfinite(self.curves)
        last_finite = n_steps - 1 - finite[:, ::-1].argmax(axis=1)
        stopped = np.isfinite(self.finals) & finite.any(axis=1) & ~finite[:, -1]
        ends[stopped] = last_finite[stopped]
        return ends

    def row_params(self, row: int) -> dict[str, Any]:
        """The hyperparameters of one trial as Python scalars, leaving out missing ones."""
        out: dict[str, Any] = {}
        for key, values in self.params.items():
            value = values[row]
            if value is None or (isinstance(value, float) and math.isnan(value)):
                continue
            if isinstance(value, np.generic):
                value = value.item()
                if isinstance(value, float) and math.isnan(value):
                    continue
            out[key] = value
        return out

    def subset(self, rows: Sequence[int] | np.ndarray, name: str | None = None) -> CurveTable:
        """A new table with the given rows, in the given order."""
        index = np.asarray(rows, dtype=np.int64)
        return CurveTable(
            params={k: v[index] for k, v in self.params.items()},
            steps=self.steps,
            curves=self.curves[index],
            name=self.name if name is None else name,
            finals=None if self.finals is None else self.finals[index],
        )

    def config_groups(self) -> np.ndarray:
        """An integer group id per trial; trials with identical hyperparameters share one.

        Used for grouped cross-validation: the MLPF table repeats configurations, and a repeat
        in both the training and the test fold would flatter any predictor.
        """
        ids: dict[tuple[str, ...], int] = {}
        out = np.empty(self.n_trials, dtype=np.int64)
        columns = list(self.params.values())
        for i in range(self.n_trials):
            key = tuple(repr(_as_python(column[i])) for column in columns)
            out[i] = ids.setdefault(key, len(ids))
        return out

    def distributions(self) -> dict[str, BaseDistribution]:
        """Optuna distributions that cover each hyperparameter column.

        Integer columns give ``IntDistribution``, other numeric columns ``FloatDistribution``,
        both on a log scale when every value is positive and they span at least two decades;
        text columns give ``CategoricalDistribution`` over their distinct values.
        """
        from optuna.distributions import CategoricalDistribution
        from optuna.distributions import FloatDistribution
        from optuna.distributions import IntDistribution

        out: dict[str, BaseDistribution] = {}
        for key, values in self.params.items():
            if values.dtype == object:
                choices = sorted({v for v in values.tolist() if v is not None})
                if choices:
                    out[key] = CategoricalDistribution(choices)
                continue
            finite = values[np.isfinite(values)] if values.dtype.kind == "f" else values
            if finite.size == 0:
                continue
            low, high = finite.min().item(), finite.max().item()
            log = bool(low > 0 and high / low >= 100.0)
            if values.dtype.kind in "iu":
                out[key] = IntDistribution(int(low), int(high), log=log)
            else:
                out[key] = FloatDistribution(float(low), float(high), log=log)
        return out


def resolve_table_path(spec: str | Path) -> Path:
    """The file behind a table argument: an existing path, or the name of a bundled table.

    Raises:
        FileNotFoundError: Neither a file nor a bundled table has that name.
    """
    path = Path(spec)
    if path.is_file():
        return path
    name = path.stem if path.suffix == ".csv" and path.parent == Path(".") else str(spec)
    if name in BUNDLED_TABLES:
        bundled = resources.files("optuna_lcpred") / "data" / f"{name}.csv"
        with resources.as_file(bundled) as real:
            return Path(real)
    raise FileNotFoundError(
        f"curve table {str(spec)!r} not found: expected a CSV file or one of the bundled "
        f"tables {', '.join(BUNDLED_TABLES)}"
    )


def read_curve_table(path: str | Path, *, name: str | None = None) -> CurveTable:
    """Read a curve table from a CSV file (or a bundled table by name).

    Args:
        path: The CSV file, or the name of a bundled table such as ``"mlpf_delphes"``.
        name: The table's name; defaults to the file stem.

    Raises:
        FileNotFoundError: The file does not exist.
        CurveTableError: The file is not a curve table: no header, no ``loss_`` column, an
            unknown column, a duplicate parameter or step, a ragged row, a non-numeric loss cell,
            or no trial rows. The message names the file, column and row.

    Example:
        >>> table = read_curve_table("mlpf_delphes")  # the MLPF table bundled with the package
        >>> table.n_trials, table.n_steps
        (296, 100)
    """
    file = resolve_table_path(path)
    with open(file, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        try:
            header = next(reader)
        except StopIteration:
            raise CurveTableError("the file is empty; expected a header row", path=file) from None
        header = [cell.strip() for cell in header]
        param_columns, loss_columns, value_column = _classify_header(header, file)
        raw_params: dict[str, list[str]] = {name_: [] for _, name_ in param_columns}
        rows: list[list[float]] = []
        finals: list[float] = []
        for cells in reader:
            if not cells:
                continue
            if len(cells) != len(header):
                raise CurveTableError(
                    f"has {len(cells)} cells, the header has {len(header)}",
                    path=file,
                    row=reader.line_num - 1,
                )
            for index, pname in param_columns:
                raw_params[pname].append(cells[index].strip())
            values = []
            for index, _step in loss_columns:
                values.append(_parse_loss(cells[index], file, header[index], reader.line_num - 1))
            rows.append(values)
            if value_column is not None:
                finals.append(
                    _parse_loss(cells[value_column], file, VALUE_COLUMN, reader.line_num - 1)
                )
    if not rows:
        raise CurveTableError("has a header but no trial rows", path=file)
    curves = np.array(rows, dtype=np.float64).reshape(len(rows), len(loss_columns))
    steps = np.array([step for _, step in loss_columns], dtype=np.int64)
    params = {pname: _column_from_text(cells) for pname, cells in raw_params.items()}
    return CurveTable(
        params=params,
        steps=steps,
        curves=curves,
        name=name or file.stem,
        finals=None if value_column is None else np.array(finals, dtype=np.float64),
    )


def read_curve_tables(specs: Iterable[str | Path]) -> list[CurveTable]:
    """Read every table named by ``specs``: CSV files, folders (their ``*.csv`` files, in name
    order) or bundled table names, as the ``bench`` and ``evaluate`` commands take them.

    Raises:
        CurveTableError: A folder holds no CSV file, or two tables share a name (results are
            reported by table name).
        FileNotFoundError: A spec is neither a file, a folder nor a bundled table.

    Example:
        >>> [t.name for t in read_curve_tables(["mlpf_delphes"])]
        ['mlpf_delphes']
    """
    files: list[str | Path] = []
    for spec in specs:
        path = Path(spec)
        if path.is_dir():
            found = sorted(path.glob("*.csv"))
            if not found:
                raise CurveTableError(f"folder {str(spec)!r} holds no .csv curve table")
            files.extend(found)
        else:
            files.append(spec)
    tables = [read_curve_table(f) for f in files]
    names = [t.name for t in tables]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise CurveTableError(f"two tables share the name(s) {', '.join(duplicates)}")
    return tables


def write_curve_table(table: CurveTable, path: str | Path | TextIO) -> None:
    """Write a table in the CSV format that :func:`read_curve_table` reads.

    Floats are written with the shortest text that reads back exactly; NaN as an empty cell.

    Args:
        table: The table.
        path: A file path, or an open text handle (e.g. ``sys.stdout``).

    Example:
        >>> import sys
        >>> import numpy as np
        >>> curves = np.array([[2.0, 1.25], [3.0, np.nan]])  # the second run diverged
        >>> table = CurveTable({"width": np.array([64, 128])}, np.array([0, 5]), curves, "w")
        >>> write_curve_table(table, sys.stdout)
        param_width,loss_0,loss_5
        64,2.0,1.25
        128,3.0,
    """
    if isinstance(path, (str, Path)):
        with open(path, "w", newline="", encoding="utf-8") as handle:
            _write_rows(table, handle)
    else:
        _write_rows(table, path)


def _write_rows(table: CurveTable, handle: TextIO) -> None:
    header = [PARAM_PREFIX + key for key in table.params]
    if table.finals is not None:
        header.append(VALUE_COLUMN)
    header.extend(f"{LOSS_PREFIX}{int(step)}" for step in table.steps)
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(header)
    columns = list(table.params.values())
    for i in range(table.n_trials):
        cells = [_format_cell(column[i]) for column in columns]
        if table.finals is not None:
            cells.append(_format_cell(float(table.finals[i])))
        cells.extend(_format_cell(v) for v in table.curves[i])
        writer.writerow(cells)


def study_to_curve_table(
    study: optuna.Study,
    *,
    states: Iterable[TrialState] | None = None,
) -> CurveTable:
    """Build a curve table from an Optuna study's trials.

    Each trial that reported at least one intermediate value becomes a row: its parameters, its
    objective value (the ``value`` column, :attr:`CurveTable.finals`; empty for a trial that is
    not COMPLETE) and its intermediate values by step. Columns are the union of the parameters
    and of the steps reported by any trial; what a trial did not report is NaN. A study that
    maximises is written negated, since the format holds values to minimise.

    Args:
        study: A single-objective study.
        states: The trial states to export; defaults to COMPLETE, PRUNED and FAIL.

    Raises:
        ValueError: The study is multi-objective, or no trial of those states reported an
            intermediate value.

    Example:
        >>> import optuna
        >>> def objective(trial):
        ...     x = trial.suggest_float("x", 0.0, 1.0)
        ...     for step in range(3):
        ...         trial.report(x + 1.0 / (step + 1), step)
        ...     return x + 1.0 / 3
        >>> study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
        >>> study.optimize(objective, n_trials=4)
        >>> table = study_to_curve_table(study)
        >>> table.n_trials, list(table.params), table.steps.tolist()
        (4, ['x'], [0, 1, 2])
        >>> bool(np.allclose(table.final_values, table.curves[:, -1]))
        True
    """
    from optuna.study import StudyDirection
    from optuna.trial import TrialState

    if len(study.directions) != 1:
        raise ValueError(
            f"study {study.study_name!r} has {len(study.directions)} objectives; curve tables "
            "hold single-objective learning curves"
        )
    wanted = (
        (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
        if states is None
        else tuple(states)
    )
    trials = [t for t in study.get_trials(deepcopy=False, states=wanted) if t.intermediate_values]
    if not trials:
        state_names = ", ".join(s.name for s in wanted)
        raise ValueError(
            f"study {study.study_name!r} has no {state_names} trial with intermediate values "
            "to export"
        )
    trials.sort(key=lambda t: t.number)
    steps = sorted({step for t in trials for step in t.intermediate_values})
    column_of = {step: j for j, step in enumerate(steps)}
    curves = np.full((len(trials), len(steps)), np.nan)
    finals = np.full(len(trials), np.nan)
    for i, trial in enumerate(trials):
        for step, value in trial.intermediate_values.items():
            curves[i, column_of[step]] = value
        if trial.state == TrialState.COMPLETE and trial.value is not None:
            finals[i] = trial.value
    if study.direction == StudyDirection.MAXIMIZE:
        _logger.info(
            "Study %r maximises: its values are written negated, as the table holds losses.",
            study.study_name,
        )
        curves, finals = -curves, -finals
    names: list[str] = []
    for trial in trials:
        names.extend(k for k in trial.params if k not in names)
    params = {key: _column_from_values([t.params.get(key) for t in trials]) for key in names}
    return CurveTable(
        params=params, steps=np.array(steps), curves=curves, name=study.study_name, finals=finals
    )


def _classify_header(
    header: list[str], file: Path
) -> tuple[list[tuple[int, str]], list[tuple[int, int]], int | None]:
    param_columns: list[tuple[int, str]] = []
    loss_columns: list[tuple[int, int]] = []
    value_column: int | None = None
    seen_params: set[str] = set()
    seen_steps: dict[int, str] = {}
    for index, column in enumerate(header):
        if column.startswith(PARAM_PREFIX) and len(column) > len(PARAM_PREFIX):
            pname = column[len(PARAM_PREFIX) :]
            if pname in seen_params:
                raise CurveTableError("duplicate parameter column", path=file, column=column)
            seen_params.add(pname)
            param_columns.append((index, pname))
        elif column.startswith(LOSS_PREFIX):
            suffix = column[len(LOSS_PREFIX) :]
            if not suffix.isdigit():
                raise CurveTableError(
                    f"the step after {LOSS_PREFIX!r} must be a non-negative integer",
                    path=file,
                    column=column,
                )
            step = int(suffix)
            if step in seen_steps:
                raise CurveTableError(
                    f"duplicate step {step} (also in column {seen_steps[step]!r})",
                    path=file,
                    column=column,
                )
            seen_steps[step] = column
            loss_columns.append((index, step))
        elif column == VALUE_COLUMN:
            if value_column is not None:
                raise CurveTableError("duplicate value column", path=file, column=column)
            value_column = index
        else:
            raise CurveTableError(
                f"unknown column; expected {PARAM_PREFIX}<name>, {LOSS_PREFIX}<step> or "
                f"{VALUE_COLUMN}",
                path=file,
                column=column,
            )
    if not loss_columns:
        raise CurveTableError(
            f"no {LOSS_PREFIX}<step> columns: a curve table needs at least one report step",
            path=file,
        )
    loss_columns.sort(key=lambda item: item[1])
    return param_columns, loss_columns, value_column


def _parse_loss(cell: str, file: Path, column: str, row: int) -> float:
    text = cell.strip()
    if not text:
        return math.nan
    try:
        return float(text)
    except ValueError:
        raise CurveTableError(
            f"{text!r} is not a number (expected a float, or an empty cell for a missing value)",
            path=file,
            column=column,
            row=row,
        ) from None


def _column_from_text(cells: list[str]) -> np.ndarray:
    present = [c for c in cells if c]
    for kind in (int, float):
        try:
            parsed = [kind(c) for c in present]
        except ValueError:
            continue
        if kind is int and len(present) == len(cells):
            return np.array(parsed, dtype=np.int64)
        return np.array([float(c) if c else math.nan for c in cells], dtype=np.float64)
    return np.array([c if c else None for c in cells], dtype=object)


def _column_from_values(values: list[Any]) -> np.ndarray:
    present = [v for v in values if v is not None]
    numeric = all(
        isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
        for v in present
    )
    if present and numeric:
        if all(isinstance(v, (int, np.integer)) for v in present) and len(present) == len(values):
            return np.array(values, dtype=np.int64)
        return np.array([math.nan if v is None else float(v) for v in values], dtype=np.float64)
    return np.array([None if v is None else str(v) for v in values], dtype=object)


def _as_python(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _format_cell(value: Any) -> str:
    value = _as_python(value)
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return repr(value)
    return str(value)
