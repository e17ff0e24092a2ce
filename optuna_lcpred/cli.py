"""The ``optuna-lcpred`` command line: ``run``, ``worker``, ``bench``, ``evaluate``,
``export-curves``, ``report``.

One class per command, registered in ``_COMMANDS``; data goes to stdout, logs and progress to
stderr. A usage mistake prints a one-line error and exits 1 (``--debug`` shows the traceback).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna

from optuna_lcpred import __version__
from optuna_lcpred.curves import CurveTableError
from optuna_lcpred.curves import read_curve_tables


_logger = logging.getLogger("optuna.lcpred.cli")

DEFAULT_PRUNERS = "nop,median,percentile25,sha,hyperband"


class CLIUsageError(Exception):
    """A mistake in how the command was called."""


class _BaseCommand:
    help = ""

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        raise NotImplementedError

    def take_action(self, args: argparse.Namespace) -> int:
        raise NotImplementedError


class _Bench(_BaseCommand):
    help = "Replay curve tables under pruners and report epochs saved and regret."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "tables",
            nargs="+",
            metavar="TABLE",
            help="curve table CSV files, folders of them, or a bundled table name (mlpf_delphes)",
        )
        parser.add_argument(
            "--pruners",
            action="append",
            metavar="SPECS",
            help="comma-separated pruner specs name[:key=value,...] "
            f"(default: {DEFAULT_PRUNERS}); the oracle is always added",
        )
        parser.add_argument("--trials", type=int, default=150, help="trials drawn per seed")
        parser.add_argument("--seeds", type=int, default=5, help="number of seeds")
        parser.add_argument("--first-seed", type=int, default=0, help="seeds run from this one")
        parser.add_argument("--workers", type=int, default=1, help="simulated parallel workers")
        parser.add_argument(
            "--jobs", type=int, default=1, help="processes running replays in parallel"
        )
        parser.add_argument(
            "--json",
            metavar="OUT",
            help="write results as JSON, per seed too, with each run's regret as it went "
            "('-': stdout)",
        )
        parser.add_argument("--plot", metavar="OUT.png", help="write a regret-vs-epochs plot")
        parser.add_argument(
            "--markdown", metavar="OUT.md", help="write a Markdown summary table ('-': stdout)"
        )
        parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
        prior = parser.add_mutually_exclusive_group()
        prior.add_argument(
            "--prior",
            metavar="TABLE",
            help="curves of another campaign, given as prior to the pruners that take one",
        )
        prior.add_argument(
            "--prior-split",
            type=float,
            metavar="F",
            help="per seed, a random fraction F of each table's rows becomes the prior and is "
            "left out of the draw (for every pruner)",
        )
        parser.add_argument(
            "--sampler",
            metavar="SPEC",
            help="let a sampler choose the parameters (the nearest table row is replayed): "
            "NAME[:option=value,...] with NAME one of random, tpe, tpe+predicted, gp, "
            "gp+predicted, cmaes, cmaes+predicted, qmc and the sampler's own options, e.g. "
            "tpe:n_startup_trials=5; default: rows drawn at random",
        )
        parser.add_argument(
            "--unique-rows",
            action="store_true",
            help="with --sampler: replay the nearest row not yet replayed, so no row runs twice",
        )
        parser.add_argument(
            "--early",
            type=int,
            default=30,
            metavar="N",
            help="also report the epochs fraction of the first N drawn trials (default 30)",
        )

    def take_action(self, args: argparse.Namespace) -> int:
        from tqdm import tqdm

        from optuna_lcpred.bench.pruners import parse_pruner_list
        from optuna_lcpred.bench.report import format_markdown
        from optuna_lcpred.bench.report import format_report
        from optuna_lcpred.bench.report import save_plot
        from optuna_lcpred.bench.runner import run_benchmark
        from optuna_lcpred.bench.samplers import parse_sampler_spec

        _check_positive(
            trials=args.trials, seeds=args.seeds, workers=args.workers, jobs=args.jobs,
            early=args.early,
        )  # fmt: skip
        if args.prior_split is not None and not 0.0 < args.prior_split < 1.0:
            raise CLIUsageError(f"--prior-split must be in (0, 1), got {args.prior_split}")
        if args.unique_rows and args.sampler is None:
            raise CLIUsageError("--unique-rows needs --sampler (drawn rows never repeat)")
        try:
            sampler = parse_sampler_spec(args.sampler) if args.sampler is not None else None
        except ValueError as exc:
            raise CLIUsageError(f"--sampler: {exc}") from None
        prior = read_curve_tables([args.prior])[0] if args.prior else None
        if args.plot:
            _check_matplotlib()
        specs = parse_pruner_list(args.pruners or [DEFAULT_PRUNERS])
        tables = read_curve_tables(args.tables)
        total = len(tables) * len(specs) * args.seeds
        seeds = list(range(args.first_seed, args.first_seed + args.seeds))
        with tqdm(
            total=total,
            desc="replays",
            unit="replay",
            file=sys.stderr,
            disable=True if args.no_progress else None,
        ) as bar:
            report = run_benchmark(
                tables,
                specs,
                n_trials=args.trials,
                seeds=seeds,
                workers=args.workers,
                jobs=args.jobs,
                progress=bar.update,
                prior=prior,
                prior_split=args.prior_split,
                early=args.early,
                sampler=sampler,
                unique_rows=args.unique_rows,
            )
        data = report.to_json()
        if args.json == "-":
            _dump_json(data, sys.stdout)
        else:
            print(format_report(report))
            if args.json:
                _write_json(data, args.json)
        if args.markdown == "-":
            print(format_markdown(report))
        elif args.markdown:
            Path(args.markdown).write_text(format_markdown(report), encoding="utf-8")
        if args.plot:
            save_plot(report, args.plot)
            _logger.info("Wrote %s", args.plot)
        return 0


class _Evaluate(_BaseCommand):
    help = "Cross-validate final-value predictors on curve tables (R^2, Spearman, MAE)."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("tables", nargs="+", metavar="TABLE", help="curve tables (as bench)")
        parser.add_argument(
            "--predictors", default="last,linear,powerlaw", help="comma-separated predictor names"
        )
        parser.add_argument(
            "--fractions", default="0.1,0.25,0.5", help="fractions of the curve observed"
        )
        parser.add_argument("--folds", type=int, default=5, help="grouped K-fold splits")
        parser.add_argument("--seed", type=int, default=0, help="seeds the fold assignment")
        parser.add_argument("--json", metavar="OUT", help="write results as JSON ('-': stdout)")
        parser.add_argument(
            "--markdown", metavar="OUT.md", help="write a Markdown summary (R^2 / Spearman)"
        )

    def take_action(self, args: argparse.Namespace) -> int:
        from optuna_lcpred.bench.evaluate import available_predictors
        from optuna_lcpred.bench.evaluate import evaluate_table

        predictors = [p.strip() for p in args.predictors.split(",") if p.strip()]
        unknown = [p for p in predictors if p not in available_predictors()]
        if not predictors or unknown:
            raise CLIUsageError(
                f"--predictors {args.predictors!r}: unknown {', '.join(unknown) or '(empty)'}; "
                f"known: {', '.join(available_predictors())}"
            )
        fractions = []
        for text in args.fractions.split(","):
            try:
                fractions.append(float(text))
            except ValueError:
                raise CLIUsageError(
                    f"--fractions: {text.strip()!r} is not a number; expected e.g. 0.1,0.25,0.5"
                ) from None
        tables = read_curve_tables(args.tables)
        results = {
            table.name: evaluate_table(
                table, predictors, fractions, folds=args.folds, seed=args.seed
            )
            for table in tables
        }
        data = {"tables": _nan_to_none(results)}
        if args.json == "-":
            _dump_json(data, sys.stdout)
            return 0
        for table in tables:
            print(f"{table.name}: T={table.n_steps}, {table.n_trials} trials, {args.folds} folds")
            print(f"  {'predictor':<12} {'fraction':>8} {'R^2':>8} {'Spearman':>9} {'MAE':>11}")
            for name in predictors:
                for fraction, scores in results[table.name][name].items():
                    print(
                        f"  {name:<12} {fraction:>8} {scores['r2']:>8.4f} "
                        f"{scores['spearman']:>9.4f} {scores['mae']:>11.5g}"
                    )
            print()
        if args.json:
            _write_json(data, args.json)
        if args.markdown:
            Path(args.markdown).write_text(_evaluation_markdown(results), encoding="utf-8")
        return 0


def _evaluation_markdown(results: dict[str, dict[str, dict[str, dict[str, float]]]]) -> str:
    fractions: list[str] = []
    for by_predictor in results.values():
        for by_fraction in by_predictor.values():
            fractions.extend(f for f in by_fraction if f not in fractions)
    lines = [
        "| table | predictor | " + " | ".join(f"R^2 / rho at {f}" for f in fractions) + " |",
        "|---|---|" + "---|" * len(fractions),
    ]
    for table, by_predictor in results.items():
        for predictor, by_fraction in by_predictor.items():
            cells = [
                f"{by_fraction[f]['r2']:.3f} / {by_fraction[f]['spearman']:.3f}"
                if f in by_fraction
                else ""
                for f in fractions
            ]
            lines.append(f"| {table} | {predictor} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


class _ExportCurves(_BaseCommand):
    help = "Write an Optuna study's learning curves (intermediate values) as a curve table."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("out", metavar="OUT.csv", help="the table to write ('-': stdout)")
        _add_storage_arguments(parser)
        parser.add_argument(
            "--states",
            default="complete,pruned,fail",
            help="trial states to export, comma-separated (default: complete,pruned,fail)",
        )

    def take_action(self, args: argparse.Namespace) -> int:
        from optuna.trial import TrialState

        from optuna_lcpred.curves import study_to_curve_table
        from optuna_lcpred.curves import write_curve_table

        states = []
        for text in args.states.split(","):
            try:
                states.append(TrialState[text.strip().upper()])
            except KeyError:
                names = ", ".join(s.name.lower() for s in TrialState)
                raise CLIUsageError(
                    f"--states: unknown state {text.strip()!r}; expected some of {names}"
                ) from None
        study = _load_study(args)
        study_name = study.study_name
        table = study_to_curve_table(study, states=states)
        if args.out == "-":
            write_curve_table(table, sys.stdout)
        else:
            write_curve_table(table, args.out)
            print(
                f"Wrote {table.n_trials} trials x {table.n_steps} steps of study "
                f"{study_name!r} to {args.out}",
                file=sys.stderr,
            )
        return 0


class _CleanCheckpoints(_BaseCommand):
    help = "Delete a study's trial checkpoints that nothing will resume (finished or abandoned)."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("directory", metavar="DIR", help="the objective's checkpoint_dir")
        _add_storage_arguments(parser)
        parser.add_argument(
            "--dry-run", action="store_true", help="list the files, delete nothing"
        )

    def take_action(self, args: argparse.Namespace) -> int:
        from optuna_lcpred.checkpoint import finished_checkpoints

        if not os.path.isdir(args.directory):
            raise CLIUsageError(f"{args.directory!r} is not a folder")
        study = _load_study(args)
        paths = finished_checkpoints(args.directory, study)
        size = sum(path.stat().st_size for path in paths)
        for path in paths:
            print(path)
            if not args.dry_run:
                path.unlink(missing_ok=True)
        verb = "would delete" if args.dry_run else "deleted"
        print(
            f"{verb} {len(paths)} checkpoint(s) of study {study.study_name!r}, "
            f"{size / 1e6:.1f} MB; those of waiting or running trials are kept",
            file=sys.stderr,
        )
        return 0


#: The storage URL of ``run`` and ``worker`` (and of the commands that read a study), kept
#: out of command lines, which other users of a machine can see.
_STORAGE_ENV = "OPTUNA_LCPRED_STORAGE"


def _add_storage_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--storage",
        default=os.environ.get(_STORAGE_ENV) or os.environ.get("OPTUNA_STORAGE"),
        help=f"storage URL, e.g. sqlite:///study.db (default: ${_STORAGE_ENV}, which the "
        "workers read, else Optuna's $OPTUNA_STORAGE)",
    )
    parser.add_argument(
        "--study",
        "--study-name",  # Optuna's own CLI spells it so
        dest="study",
        help="study name (optional if the storage has one study)",
    )


def _load_study(args: argparse.Namespace) -> optuna.Study:
    """The study named by ``--storage`` and ``--study`` (the only one if no name is given)."""
    from optuna_lcpred.storage import open_storage

    if not args.storage:
        raise CLIUsageError(f"--storage is required (or set {_STORAGE_ENV} or OPTUNA_STORAGE)")
    try:
        storage = open_storage(args.storage, must_exist=True)  # a typo leaves no new database
    except ValueError as exc:
        raise CLIUsageError(f"--storage: {exc}") from None
    study_name = args.study
    if study_name is None:
        summaries = optuna.get_all_study_summaries(storage, include_best_trial=False)
        study_names = [s.study_name for s in summaries]
        if len(study_names) != 1:
            raise CLIUsageError(
                f"--study is required: the storage holds {len(study_names)} studies "
                f"({', '.join(study_names) or 'none'})"
            )
        study_name = study_names[0]
    try:
        return optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        raise CLIUsageError(f"--study {study_name!r}: no such study in the storage") from None


class _Report(_BaseCommand):
    help = (
        "Say why each pruned trial of a study was stopped, how well the predictions held up, "
        "and the live false-prune rate of the audit trials."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        _add_storage_arguments(parser)
        parser.add_argument(
            "--last",
            type=int,
            default=20,
            metavar="N",
            help="list the last N pruned trials (default 20; 0: none)",
        )
        parser.add_argument("--json", metavar="OUT", help="write the report as JSON ('-': stdout)")

    def take_action(self, args: argparse.Namespace) -> int:
        from optuna_lcpred.report import study_report

        if args.last < 0:
            raise CLIUsageError(f"--last must be >= 0, got {args.last}")
        report = study_report(_load_study(args))
        if args.json == "-":
            _dump_json(report.to_dict(), sys.stdout)
            return 0
        print(report.format(last=args.last))
        if args.json:
            _write_json(report.to_dict(), args.json)
        return 0


def _add_study_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("study_file", metavar="STUDY.toml", help="the study file")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a study-file entry, e.g. --set objective.options.epochs=5 (repeatable)",
    )
    parser.add_argument("--timeout", type=float, help="seconds; no new trial starts after it")


class _Run(_BaseCommand):
    help = "Run a study file with N local worker processes and print a summary."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        _add_study_arguments(parser)
        parser.add_argument(
            "--storage",
            default=os.environ.get(_STORAGE_ENV),
            help=f"storage URL (default: ${_STORAGE_ENV}, else the study file's, else "
            "NAME.sqlite3 for one worker or NAME.journal for several, in the current folder)",
        )
        parser.add_argument(
            "--workers", type=int, default=1, help="worker processes (0: only create the study)"
        )
        parser.add_argument("--n-trials", type=int, help="trials the study should hold")
        parser.add_argument(
            "--gpus",
            default="auto",
            help="GPUs to deal the workers out over, in turn, through CUDA_VISIBLE_DEVICES: "
            "'auto' (those this process sees, if more than one), 'none', or e.g. '0,1,2,3'",
        )
        parser.add_argument(
            "--json", metavar="OUT", help="write the summary as JSON ('-': stdout)"
        )
        parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    def take_action(self, args: argparse.Namespace) -> int:
        from optuna_lcpred.studyfile import load_study_file
        from optuna_lcpred.worker import assign_gpus
        from optuna_lcpred.worker import default_storage
        from optuna_lcpred.worker import make_storage
        from optuna_lcpred.worker import prepare_study
        from optuna_lcpred.worker import summarize_study

        if args.workers < 0:
            raise CLIUsageError(f"--workers must be >= 0, got {args.workers}")
        if args.n_trials is not None and args.n_trials < 1:
            raise CLIUsageError(f"--n-trials must be >= 1, got {args.n_trials}")
        try:
            gpus = assign_gpus(args.gpus, args.workers)
        except ValueError as exc:
            raise CLIUsageError(f"--gpus: {exc}") from None
        config = load_study_file(args.study_file, args.overrides)
        # A bad objective target or pruner option fails here, before the study is created, not
        # in every worker (the objective is built only when a percentage needs its n_steps).
        config.objective_factory()
        config.make_pruner(config.make_objective() if config.pruner_needs_steps else None)
        config.make_sampler()
        config.make_dashboard_callback()
        url = args.storage or config.storage or default_storage(config, args.workers)
        storage = make_storage(url, config)
        study = prepare_study(config, storage, n_trials=args.n_trials)
        code = _run_workers(args, url, study, gpus) if args.workers > 0 else 0
        summary = summarize_study(study, url)
        print(summary.format())
        if args.json:
            data = dataclasses.asdict(summary)
            data["epochs_fraction"] = summary.epochs_fraction
            if args.json == "-":
                _dump_json(data, sys.stdout)
            else:
                _write_json(data, args.json)
        return code


def _run_workers(
    args: argparse.Namespace, url: str, study: optuna.Study, gpus: list[str | None]
) -> int:
    import subprocess
    import time

    from optuna.trial import TrialState
    from tqdm import tqdm

    from optuna_lcpred.worker import N_TRIALS_ATTR
    from optuna_lcpred.worker import recover_dead_worker

    env = dict(os.environ, **{_STORAGE_ENV: url})
    command = [sys.executable, "-m", "optuna_lcpred.cli"]
    if args.verbose:
        command.append("-v")
    command += ["worker", args.study_file]
    for item in args.overrides:
        command += ["--set", item]
    if args.timeout is not None:
        command += ["--timeout", str(args.timeout)]
    processes = []
    for i, gpu in enumerate(gpus):
        worker_env = env if gpu is None else dict(env, CUDA_VISIBLE_DEVICES=gpu)
        processes.append(subprocess.Popen([*command, "--worker-index", str(i)], env=worker_env))
    if any(gpu is not None for gpu in gpus):
        _logger.info("workers on GPUs %s", ", ".join(str(gpu) for gpu in gpus))
    total = study.user_attrs.get(N_TRIALS_ATTR)
    done_states = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    bar = tqdm(
        total=total,
        unit="trial",
        desc=study.study_name,
        disable=args.no_progress or not sys.stderr.isatty(),
        file=sys.stderr,
    )
    failed: list[int] = []
    try:
        while True:
            codes = [p.poll() for p in processes]
            for process, code in zip(processes, codes, strict=False):
                if code is not None and code != 0 and process.pid not in failed:
                    failed.append(process.pid)
                    recover_dead_worker(study, process.pid)
            finished = len(study.get_trials(deepcopy=False, states=done_states))
            bar.update(finished - bar.n)
            if all(code is not None for code in codes):
                break
            time.sleep(1.0)
    except KeyboardInterrupt:
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        for process in processes:
            recover_dead_worker(study, process.pid)
        bar.close()
        print(
            "interrupted; running trials were marked FAIL and queued again (run the study "
            "again to finish them)",
            file=sys.stderr,
        )
        return 130
    bar.close()
    if failed:
        print(
            f"optuna-lcpred run: {len(failed)} worker(s) exited with an error; "
            "their running trials were marked FAIL and queued again",
            file=sys.stderr,
        )
        return 1
    return 0


class _Worker(_BaseCommand):
    help = "Run one worker of a study (one per GPU, e.g. under srun); stops cleanly on SIGTERM."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        _add_study_arguments(parser)
        parser.add_argument(
            "--storage",
            default=os.environ.get(_STORAGE_ENV),
            help=f"storage URL (default: ${_STORAGE_ENV}, else the study file's); prefer the "
            "environment variable for URLs with a password, which command lines show to others",
        )
        parser.add_argument(
            "--worker-index",
            type=int,
            default=int(os.environ.get("SLURM_PROCID", "0")),
            help="offsets the sampler seed (default: $SLURM_PROCID or 0)",
        )

    def take_action(self, args: argparse.Namespace) -> int:
        from optuna_lcpred.studyfile import load_study_file
        from optuna_lcpred.worker import WorkerTerminated
        from optuna_lcpred.worker import make_storage
        from optuna_lcpred.worker import run_worker

        config = load_study_file(args.study_file, args.overrides)
        url = args.storage or config.storage
        if not url:
            raise CLIUsageError(
                f"--storage is required (or set {_STORAGE_ENV}, or study.storage in the file)"
            )
        storage = make_storage(url, config)
        try:
            counts = run_worker(
                config, storage, worker_index=args.worker_index, timeout=args.timeout
            )
        except WorkerTerminated:
            print(
                "optuna-lcpred worker: terminated; the running trial is marked FAIL",
                file=sys.stderr,
            )
            return 143
        except KeyError:
            raise CLIUsageError(
                f"study {config.name!r} does not exist in the storage; create it first with "
                f"optuna-lcpred run {args.study_file} --workers 0"
            ) from None
        _logger.info("worker %d done: %s", args.worker_index, counts)
        return 0


_COMMANDS: dict[str, type[_BaseCommand]] = {
    "run": _Run,
    "worker": _Worker,
    "bench": _Bench,
    "evaluate": _Evaluate,
    "export-curves": _ExportCurves,
    "report": _Report,
    "clean-checkpoints": _CleanCheckpoints,
}


def _build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    common = argparse.ArgumentParser(add_help=False)
    verbosity = common.add_mutually_exclusive_group()
    verbosity.add_argument("-v", "--verbose", action="store_true", help="log more")
    verbosity.add_argument("-q", "--quiet", action="store_true", help="log only errors")
    common.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser = argparse.ArgumentParser(
        prog="optuna-lcpred",
        description="Learning-curve prediction pruning for Optuna: benchmarks and tools.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    parsers = {}
    for name, command_class in _COMMANDS.items():
        command = command_class()
        child = sub.add_parser(name, help=command.help, description=command.help, parents=[common])
        command.add_arguments(child)
        child.set_defaults(handler=command)
        parsers[name] = child
    return parser, parsers


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``optuna-lcpred``; returns the exit code."""
    parser, parsers = _build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 1
    if args.verbose:
        optuna.logging.set_verbosity(optuna.logging.INFO)
    else:
        optuna.logging.set_verbosity(
            optuna.logging.ERROR if args.quiet else optuna.logging.WARNING
        )
    try:
        return int(args.handler.take_action(args))
    except (CLIUsageError, CurveTableError, FileNotFoundError, ValueError, ImportError) as error:
        if args.debug:
            raise
        print(f"optuna-lcpred {args.command}: error: {error}", file=sys.stderr)
        if isinstance(error, CLIUsageError):
            parsers[args.command].print_usage(sys.stderr)
        return 1
    except Exception as error:
        from sqlalchemy.exc import SQLAlchemyError

        from optuna_lcpred.storage import redact_text

        if args.debug or not isinstance(error, SQLAlchemyError):
            raise
        first = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        print(
            f"optuna-lcpred {args.command}: error: cannot use the storage: {redact_text(first)}",
            file=sys.stderr,
        )
        return 1


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if value < 1:
            raise CLIUsageError(f"--{name} must be >= 1, got {value}")


def _check_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise CLIUsageError('--plot needs matplotlib: pip install "optuna-lcpred[plot]"') from None


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nan_to_none(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _dump_json(data: Any, handle: Any) -> None:
    json.dump(_nan_to_none(data), handle, indent=2, allow_nan=False)
    handle.write("\n")


def _write_json(data: Any, path: str) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        _dump_json(data, handle)
    _logger.info("Wrote %s", path)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
