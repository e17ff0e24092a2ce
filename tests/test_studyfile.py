"""Study files: loading, validation, overrides."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from optuna_lcpred import LCPredictionPruner
from optuna_lcpred.studyfile import StudyFileError
from optuna_lcpred.studyfile import load_study_file


STUDIES = Path(__file__).resolve().parents[1] / "studies"

MINIMAL = """
[study]
name = "s"
n_trials = 3

[objective]
target = "optuna_lcpred.bench:ReplayObjective"
[objective.options]
table = "mlpf_delphes"
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "study.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("name", ["mlpf_demo.toml", "mlpf_clic.toml", "replay_mlpf.toml"])
def test_shipped_study_files_load(name: str) -> None:
    config = load_study_file(STUDIES / name)
    assert config.n_trials is not None and config.n_trials > 0
    # Their pruner is ours, built from the file's options.
    assert isinstance(config.make_pruner(), LCPredictionPruner)
    assert isinstance(config.make_sampler(), optuna.samplers.TPESampler)


def test_defaults_and_objective(tmp_path: Path) -> None:
    config = load_study_file(_write(tmp_path, MINIMAL))
    assert config.direction == "minimize" and config.sampler == "tpe"
    assert config.pruner == "lcpred"
    objective = config.make_objective()
    # The target is called with the options and returns the objective.
    assert objective.table.name == "mlpf_delphes"  # type: ignore[attr-defined]


def test_overrides(tmp_path: Path) -> None:
    config = load_study_file(
        _write(tmp_path, MINIMAL),
        [
            "study.n_trials=7",
            "pruner.options.min_prob=0.2",
            "study.name=other",
            "objective.options.step_seconds=0.5",
        ],
    )
    assert config.n_trials == 7 and config.name == "other"
    assert config.pruner_options == {"min_prob": 0.2}
    assert config.objective_options["step_seconds"] == 0.5
    with pytest.raises(StudyFileError, match=r"expected key\.path=value"):
        load_study_file(_write(tmp_path, MINIMAL), ["study.n_trials"])


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("[study2]\nx = 1\n", "unknown table 'study2'"),
        ("[sampler]\nnmae = 'tpe'\n", "unknown key sampler.nmae"),
        ("[sampler]\nname = 'annealing'\n", "sampler.name must be one of"),
        ("[rdb]\npool_size = 'big'\n", "rdb.pool_size must be int, got 'big'"),
        ("[rdb]\nmax_retry = -1\n", "rdb.max_retry must be positive"),
    ],
)
def test_errors_name_key_and_file(tmp_path: Path, extra: str, message: str) -> None:
    path = _write(tmp_path, MINIMAL + extra)
    with pytest.raises(StudyFileError, match=message) as info:
        load_study_file(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("study.n_trials='many'", "study.n_trials must be int, got 'many'"),
        ("study.n_trials=0", "study.n_trials must be >= 1"),
        ("study.direction='down'", "study.direction must be 'minimize' or 'maximize'"),
        ("objective.target='nocolon'", "module:attribute"),
        ("study.timeout=true", "study.timeout must be int or float, got True"),
    ],
)
def test_bad_values(tmp_path: Path, override: str, message: str) -> None:
    with pytest.raises(StudyFileError, match=message):
        load_study_file(_write(tmp_path, MINIMAL), [override])


def test_bad_files_and_targets(tmp_path: Path) -> None:
    with pytest.raises(StudyFileError, match="no such study file"):
        load_study_file(tmp_path / "nope.toml")
    with pytest.raises(StudyFileError, match="not valid TOML"):
        load_study_file(_write(tmp_path, "[study\n"))
    with pytest.raises(StudyFileError, match=r"study\.name is required"):
        load_study_file(_write(tmp_path, "[objective]\ntarget = 'a:b'\n"))
    config = load_study_file(_write(tmp_path, MINIMAL), ["objective.target='nowhere:thing'"])
    with pytest.raises(StudyFileError, match="cannot be imported"):
        config.make_objective()
    with pytest.raises(StudyFileError, match="cannot be imported"):
        config.objective_factory()
    config = load_study_file(_write(tmp_path, MINIMAL), ["objective.target='math:pi'"])
    with pytest.raises(StudyFileError, match="'math:pi' is a float, expected a class or function"):
        config.objective_factory()
    config = load_study_file(_write(tmp_path, MINIMAL), ["objective.options.colour='red'"])
    with pytest.raises(StudyFileError, match=r"objective\.options"):
        config.make_objective()
    config = load_study_file(_write(tmp_path, MINIMAL), ["pruner.options.min_probability=0.1"])
    with pytest.raises(StudyFileError, match="min_probability"):
        config.make_pruner()


def test_a_prior_path_is_read_next_to_the_study_file(tmp_path: Path) -> None:
    from optuna_lcpred.curves import write_curve_table
    from tests.conftest import make_table

    folder = tmp_path / "studies"
    folder.mkdir()
    write_curve_table(make_table(20, 8), folder / "old.csv")
    path = folder / "s.toml"
    path.write_text(
        '[study]\nname = "s"\nn_trials = 3\n[objective]\ntarget = "m:f"\n'
        '[pruner]\nname = "lcpred"\n[pruner.options]\nprior = "old.csv"\n'
    )
    pruner = load_study_file(path).make_pruner()
    # Found beside the study file, whatever the current folder is.
    assert pruner._prior is not None and pruner._prior.prior.n_rows == 20
    path.write_text(path.read_text().replace("old.csv", "missing.csv"))
    with pytest.raises(StudyFileError, match=r"pruner: .*missing\.csv"):
        load_study_file(path).make_pruner()


@pytest.mark.parametrize(
    "fallback",
    ['fallback = { name = "threshold", upper = 1.0 }', 'fallback = "sha"'],
)
def test_pruner_fallback_from_the_file(tmp_path: Path, fallback: str) -> None:
    config = load_study_file(_write(tmp_path, MINIMAL + f"[pruner.options]\n{fallback}\n"))
    study = optuna.create_study(pruner=config.make_pruner())
    trial = study.ask()
    trial.report(5.0, 0)
    trial.report(5.0, 1)
    # Nothing has finished, so the fallback decides: the threshold prunes 5.0; SHA, with no
    # finished trial to size its rungs, keeps it.
    assert trial.should_prune() == ("threshold" in fallback)


def test_pruner_fallback_that_names_nothing_is_an_error(tmp_path: Path) -> None:
    config = load_study_file(_write(tmp_path, MINIMAL + '[pruner.options]\nfallback = "nosuch"\n'))
    with pytest.raises(StudyFileError, match="fallback: unknown pruner 'nosuch'"):
        config.make_pruner()


def _median_decisions(pruner: optuna.pruners.BasePruner, n_steps: int) -> list[bool]:
    """Per step, whether a trial far worse than one finished trial is pruned."""
    study = optuna.create_study(pruner=pruner)
    done = study.ask()
    for step in range(n_steps):
        done.report(0.0, step)
    study.tell(done, 0.0)
    trial = study.ask()
    decisions = []
    for step in range(n_steps):
        trial.report(10.0, step)
        decisions.append(trial.should_prune())
    return decisions


@pytest.mark.parametrize(
    "pruner",
    [
        '[pruner]\nname = "median"\nsteps = 10\n'
        '[pruner.options]\nn_startup_trials = 1\nn_warmup_steps = "30%"\n',
        # The same, as lcpred's fallback: lcpred waits for 5 finished trials, the median for 1.
        '[pruner]\nname = "lcpred"\nsteps = 10\n[pruner.options]\nfallback = { name = "median",'
        ' n_startup_trials = 1, n_warmup_steps = "30%" }\n',
    ],
)
def test_step_options_as_percentages_of_the_pruner_steps(tmp_path: Path, pruner: str) -> None:
    config = load_study_file(_write(tmp_path, MINIMAL + pruner))
    assert config.pruner_steps == 10
    # 30 % of 10 steps: no pruning at steps 0-2, pruning from step 3 on.
    assert _median_decisions(config.make_pruner(), 10) == [False] * 3 + [True] * 7


def test_a_percentage_from_the_command_line(tmp_path: Path) -> None:
    path = _write(tmp_path, MINIMAL + '[pruner]\nname = "median"\n')
    config = load_study_file(
        path,
        [
            "pruner.steps=20",
            "pruner.options.n_startup_trials=1",
            "pruner.options.n_warmup_steps=50%",
        ],
    )
    assert _median_decisions(config.make_pruner(), 20) == [False] * 10 + [True] * 10


def test_a_percentage_of_the_objectives_steps(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        MINIMAL + '[pruner]\nname = "median"\n[pruner.options]\nn_startup_trials = 1\n'
        'n_warmup_steps = "30%"\n',
    )
    config = load_study_file(path)
    assert config.pruner_needs_steps
    objective = config.make_objective()
    # ReplayObjective reports the table's 100 steps: 30 % of them is 30 steps of warm-up.
    assert objective.n_steps == 100  # type: ignore[attr-defined]
    assert _median_decisions(config.make_pruner(objective), 40) == [False] * 30 + [True] * 10
    # Steps given in the file and by the objective must agree.
    config = load_study_file(path, ["pruner.steps=10"])
    assert not config.pruner_needs_steps
    with pytest.raises(StudyFileError, match=r"pruner\.steps = 10, but the objective reports 100"):
        config.make_pruner(objective)


def test_a_bad_objective_option_value_names_the_file_and_the_value(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    path = _write(
        tmp_path,
        '[study]\nname = "m"\nn_trials = 1\n[objective]\ntarget = "mlpf_objective:MLPFObjective"'
        "\n[objective.options]\nepochs = 10\n",
    )
    config = load_study_file(path, ["objective.options.epochs=abc"])  # not TOML: text
    with pytest.raises(
        StudyFileError,
        match=r"study\.toml: objective\.options: epochs must be an int >= 1, got 'abc'",
    ):
        config.make_objective()


def test_a_percentage_of_the_mlpf_epochs_follows_a_set(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    path = _write(
        tmp_path,
        '[study]\nname = "m"\nn_trials = 1\n[objective]\ntarget = "mlpf_objective:MLPFObjective"'
        '\n[objective.options]\nepochs = 10\n[pruner]\nname = "median"\n[pruner.options]\n'
        'n_startup_trials = 1\nn_warmup_steps = "50%"\n',
    )
    for epochs in (10, 20):
        config = load_study_file(path, [f"objective.options.epochs={epochs}"])
        pruner = config.make_pruner(config.make_objective())
        half = epochs // 2
        assert _median_decisions(pruner, epochs) == [False] * half + [True] * half


def test_a_worker_takes_the_steps_from_its_objective(tmp_path: Path) -> None:
    from optuna_lcpred.cli import main
    from optuna_lcpred.worker import run_worker

    path = _write(
        tmp_path, MINIMAL + '[pruner]\nname = "lcpred"\n[pruner.options]\nn_warmup_steps = "10%"\n'
    )
    storage = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    # `run` checks the pruner before it starts workers; without the objective's steps the
    # percentage would be an error there.
    assert main(["-q", "run", str(path), "--workers", "0", "--storage", storage]) == 0
    counts = run_worker(load_study_file(path), storage)
    assert counts["COMPLETE"] == 3


@pytest.mark.parametrize(
    ("pruner", "message"),
    [
        ('[pruner.options]\nn_warmup_steps = "10%"\n', r"n_warmup_steps = '10%' is a fraction"),
        (
            '[pruner.options]\nfallback = { name = "sha", min_resource = "5%" }\n',
            r"min_resource = '5%' is a fraction of training: give the number of steps",
        ),
        ('[pruner]\nsteps = 10\n[pruner.options]\nn_warmup_steps = "ten%"\n', "not a percentage"),
        ('[pruner]\nsteps = 10\n[pruner.options]\nn_warmup_steps = "150%"\n', "between 0% and"),
    ],
)
def test_bad_percentages_are_errors(tmp_path: Path, pruner: str, message: str) -> None:
    config = load_study_file(_write(tmp_path, MINIMAL + pruner))
    with pytest.raises(StudyFileError, match=message) as info:
        config.make_pruner()
    assert "study.toml: pruner:" in str(info.value)


def test_pruner_steps_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(StudyFileError, match=r"pruner\.steps must be >= 1, got 0"):
        load_study_file(_write(tmp_path, MINIMAL + "[pruner]\nsteps = 0\n"))
