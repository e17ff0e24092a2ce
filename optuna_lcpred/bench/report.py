"""Human-readable benchmark output: a text table and a regret-against-epochs plot."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from optuna_lcpred.bench.metrics import regret_at
from optuna_lcpred.bench.metrics import regret_trace
from optuna_lcpred.bench.runner import BenchReport
from optuna_lcpred.bench.runner import RunSummary
from optuna_lcpred.bench.runner import TableReport


if TYPE_CHECKING:
    from matplotlib.axes import Axes


__all__ = ["format_markdown", "format_report", "regret_trajectory", "save_plot"]


def format_report(report: BenchReport) -> str:
    """One block per table: each pruner's epochs fraction (median over seeds, with the seeds'
    range) and regret (mean over seeds, with the worst seed), oracle last."""
    lines: list[str] = []
    for table in report.tables:
        worker_word = "worker" if table.workers == 1 else "workers"
        prior = f", prior: {table.prior}" if table.prior else ""
        if table.sampler:
            drawn = f"{table.n_trials} trials chosen by {table.sampler} among {table.n_rows} rows"
            drawn += " (each row once)" if table.unique_rows else ""
        else:
            drawn = f"{table.n_trials} of {table.n_rows} trials drawn"
        lines.append(
            f"{table.name}: T={table.n_steps} steps, {drawn}, {len(table.seeds)} seeds, "
            f"{table.workers} {worker_word}{prior}"
        )
        width = max(12, *(len(name) for name in table.runs))
        early = f"first {table.early}"
        lines.append(
            f"  {'pruner':<{width}}  {'epochs_fraction':>15}  {'(seed range)':>13}  "
            f"{'regret':>8}  {'(worst)':>8}  {early:>9}"
        )
        for name, runs in table.runs.items():
            fractions = [r.epochs_fraction for r in runs]
            regrets = [r.regret for r in runs]
            lines.append(
                f"  {name:<{width}}  {table.epochs_fraction(name):>15.4f}  "
                f"{min(fractions):>6.3f}-{max(fractions):<6.3f}  "
                f"{table.regret(name):>8.4f}  {max(regrets):>8.4f}  "
                f"{table.early_epochs_fraction(name):>9.4f}"
            )
        lines.append("")
    return "\n".join(lines)


def format_markdown(report: BenchReport) -> str:
    """One Markdown table with a row per benchmark table and a column pair per pruner:
    epochs fraction (median over seeds) / regret (mean over seeds)."""
    pruners: list[str] = []
    for table in report.tables:
        pruners.extend(name for name in table.runs if name not in pruners)
    header = "| table | T | " + " | ".join(f"`{name}`" for name in pruners) + " |"
    lines = [header, "|---|---|" + "---|" * len(pruners)]
    for table in report.tables:
        cells = []
        for name in pruners:
            if name in table.runs:
                cells.append(f"{table.epochs_fraction(name):.3f} / {table.regret(name):.3f}")
            else:
                cells.append("")
        lines.append(f"| {table.name} | {table.n_steps} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def regret_trajectory(
    run: RunSummary, n_trials: int, n_steps: int, grid: np.ndarray
) -> np.ndarray:
    """Regret of the best trial completed so far, at each epochs fraction in ``grid``.

    Before the first completion the regret is that of finding nothing (see
    :func:`~optuna_lcpred.bench.metrics.regret`).
    """
    budget = float(n_trials * n_steps)
    trace = regret_trace(run.completions, run.drawn_finals)
    return np.array([regret_at(trace, x * budget) for x in grid], dtype=np.float64)


def save_plot(report: BenchReport, path: str | Path) -> None:
    """Write a PNG: for each table, mean regret over seeds against the epochs fraction trained
    so far, one line per pruner; a dot marks where each pruner ends.

    Raises:
        ImportError: matplotlib is not installed (``pip install "optuna-lcpred[plot]"``).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError('--plot needs matplotlib: pip install "optuna-lcpred[plot]"') from error
    n = len(report.tables)
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.9 * rows), squeeze=False)
    grid = np.geomspace(1e-3, 1.0, 300)
    for ax, table in zip(axes.flat, report.tables, strict=False):
        _plot_table(ax, table, grid)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(6, len(labels)), frameon=False)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_table(ax: Axes, table: TableReport, grid: np.ndarray) -> None:
    for name, runs in table.runs.items():
        curves = np.array(
            [regret_trajectory(r, table.n_trials, table.n_steps, grid) for r in runs]
        )
        mean = np.mean(np.minimum(curves, 1.5), axis=0)
        end = table.epochs_fraction(name)
        visible = grid <= max(end, grid[0])
        if name == "oracle":
            (line,) = ax.plot(grid[visible], mean[visible], "--", color="black", label=name)
        else:
            (line,) = ax.plot(grid[visible], mean[visible], label=name)
        ax.plot([end], [table.regret(name)], "o", color=line.get_color())
    ax.set_xscale("log")
    ax.set_ylim(-0.02, 1.05)
    ax.set_xlabel("epochs trained (fraction of training every trial fully)")
    ax.set_ylabel("regret (mean over seeds)")
    ax.set_title(f"{table.name}, {table.workers} worker{'' if table.workers == 1 else 's'}")
    ax.grid(True, which="both", alpha=0.3)
