"""Trial checkpoints: what goes in comes out, no pickle, and retries find the original's file."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from optuna_lcpred.checkpoint import TrialCheckpoint
from optuna_lcpred.checkpoint import original_trial_number
from optuna_lcpred.worker import requeue_trial
from optuna_lcpred.worker import summarize_study


LR = {"lr": FloatDistribution(1e-4, 1e-1)}


def _trial(name: str = "study") -> tuple[optuna.Study, optuna.Trial]:
    study = optuna.create_study(study_name=name)
    return study, study.ask(LR)


def test_round_trip_of_plain_values(tmp_path: Path) -> None:
    _, trial = _trial()
    checkpoint = TrialCheckpoint(tmp_path, trial)
    state = {
        "weights": np.arange(6, dtype=np.float32).reshape(2, 3),
        "counts": np.array([1, 2], dtype=np.int64),
        "rng": np.random.default_rng(3).bit_generator.state,  # 128-bit integers
        "losses": [0.5, math.nan, math.inf],
        "nested": {1: ("a", None, True), "x": np.float64(2.5)},
    }
    checkpoint.save(4, state)
    step, loaded = checkpoint.load()  # type: ignore[misc]
    assert step == 4
    assert loaded["weights"].dtype == np.float32
    np.testing.assert_array_equal(loaded["weights"], state["weights"])
    np.testing.assert_array_equal(loaded["counts"], state["counts"])
    # Big integers survive: the restored generator draws what the original draws.
    restored = np.random.default_rng()
    restored.bit_generator.state = loaded["rng"]
    assert restored.random() == np.random.default_rng(3).random()
    assert loaded["losses"][0] == 0.5
    assert math.isnan(loaded["losses"][1]) and loaded["losses"][2] == math.inf
    # Int keys stay ints and tuples stay tuples (an optimizer's state_dict needs both).
    assert loaded["nested"] == {1: ("a", None, True), "x": 2.5}


def test_round_trip_of_a_torch_model_and_optimizer(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.01)
    model(torch.ones(4, 3)).sum().backward()
    optimizer.step()
    _, trial = _trial()
    checkpoint = TrialCheckpoint(tmp_path, trial)
    half = torch.arange(4, dtype=torch.bfloat16)  # no NumPy dtype: stored by its bits
    checkpoint.save(
        0,
        {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "rng": torch.get_rng_state(),
            "half": half,
        },
    )
    _, state = checkpoint.load()  # type: ignore[misc]
    assert state["half"].dtype == torch.bfloat16 and torch.equal(state["half"], half)
    twin = torch.nn.Linear(3, 2)
    twin_optimizer = torch.optim.AdamW(twin.parameters(), lr=0.5)
    twin.load_state_dict(state["model"])
    twin_optimizer.load_state_dict(state["optimizer"])
    # The restored pair takes the same next step as the original.
    for m, o in ((model, optimizer), (twin, twin_optimizer)):
        o.zero_grad()
        m(torch.ones(4, 3)).sum().backward()
        o.step()
    for a, b in zip(model.parameters(), twin.parameters(), strict=True):
        assert torch.equal(a, b)
    assert twin_optimizer.param_groups[0]["lr"] == 0.01


def test_the_file_holds_no_pickle(tmp_path: Path) -> None:
    _, trial = _trial()
    checkpoint = TrialCheckpoint(tmp_path, trial)
    checkpoint.save(0, {"w": np.ones(2), "meta": {"a": [1, 2]}})
    with np.load(checkpoint.path, allow_pickle=False) as data:  # raises on any pickled entry
        assert all(data[key].dtype != object for key in data.files)
    with pytest.raises(TypeError, match=r"state\['bad'\]: arrays of Python objects"):
        checkpoint.save(1, {"bad": np.array([object()])})
    with pytest.raises(TypeError, match=r"state\['f'\]: builtin_function_or_method cannot"):
        checkpoint.save(1, {"f": print})
    # A save that failed left the previous checkpoint as it was, and no temporary file.
    assert checkpoint.load()[0] == 0  # type: ignore[index]
    assert [p.name for p in checkpoint.path.parent.iterdir()] == [checkpoint.path.name]


@pytest.mark.parametrize(("name", "folder"), [("mlpf/v2 run", "mlpf_v2_run"), ("..", "study")])
def test_every_study_name_gives_a_folder_inside_the_directory(
    tmp_path: Path, name: str, folder: str
) -> None:
    _, trial = _trial(name)
    assert TrialCheckpoint(tmp_path, trial).path == tmp_path / folder / "trial-0.npz"


def test_bad_arguments_name_the_value(tmp_path: Path) -> None:
    study, trial = _trial()
    with pytest.raises(ValueError, match="step must be an int >= 0, got -1"):
        TrialCheckpoint(tmp_path, trial).save(-1, {})
    with pytest.raises(TypeError, match="got FrozenTrial"):
        TrialCheckpoint(tmp_path, study.trials[0])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="2 values for 1 steps"):
        TrialCheckpoint(tmp_path, trial).report([0.1, 0.2], [0])


def test_a_checkpoint_for_other_parameters_is_not_resumed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The same study name and trial number, other parameters: a study deleted and made again.
    for lr in (0.01, 0.02):
        study = optuna.create_study(study_name="again")
        study.enqueue_trial({"lr": lr})
        trial = study.ask(LR)
        checkpoint = TrialCheckpoint(tmp_path, trial)
        if lr == 0.01:
            checkpoint.save(2, {"w": np.ones(1)})
    with caplog.at_level(logging.WARNING, logger="optuna.lcpred.checkpoint"):
        assert checkpoint.load() is None
    assert "written for other parameters" in caplog.text
    assert checkpoint.path.exists()  # left for whoever it belongs to
    assert "lcpred:resumed_from" not in trial.user_attrs


def test_an_unreadable_checkpoint_means_a_fresh_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _, trial = _trial()
    checkpoint = TrialCheckpoint(tmp_path, trial)
    checkpoint.path.parent.mkdir(parents=True)
    checkpoint.path.write_bytes(b"not a checkpoint")
    with caplog.at_level(logging.WARNING, logger="optuna.lcpred.checkpoint"):
        assert checkpoint.load() is None
    assert "cannot be read" in caplog.text


def test_a_retry_finds_the_original_trials_checkpoint(tmp_path: Path) -> None:
    study, trial = _trial("chain")
    TrialCheckpoint(tmp_path, trial).save(1, {"losses": [0.9, 0.8]})
    for _ in range(2):  # the retry is stopped too: the chain still leads to trial 0
        frozen = study.tell(trial, state=TrialState.FAIL)
        requeue_trial(study, frozen)
        trial = study.ask(LR)
        assert trial.params == frozen.params
    assert trial.number == 2
    assert original_trial_number(trial) == 0
    checkpoint = TrialCheckpoint(tmp_path, trial)
    step, state = checkpoint.load()  # type: ignore[misc]
    assert (step, state["losses"]) == (1, [0.9, 0.8])
    # The saved curve is reported on the retry, step for step, and the retry says so.
    assert "lcpred:resumed_from" not in study.trials[2].user_attrs
    checkpoint.report(state["losses"])
    study.tell(trial, 0.8)
    assert study.trials[2].intermediate_values == {0: 0.9, 1: 0.8}
    assert study.trials[2].user_attrs["lcpred:resumed_from"] == 1


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_optunas_heartbeat_retry_is_followed_too(tmp_path: Path) -> None:
    from tests.test_retry import OptunaRetry as retry

    study, trial = _trial()
    trial.report(0.5, 0)
    frozen = study.tell(trial, state=TrialState.FAIL)
    retry(inherit_intermediate_values=True)(study, frozen)
    retried = study.ask()
    assert original_trial_number(retried) == 0
    assert original_trial_number(study.trials[retried.number]) == 0
    # A retry that inherited step 0 is not told it again.
    TrialCheckpoint(tmp_path, retried).report([0.7, 0.4])
    frozen = study.tell(retried, state=TrialState.FAIL)
    assert frozen.intermediate_values == {0: 0.5, 1: 0.4}
    # Its own retry inherits its user attributes, "resumed" among them, but resumes nothing:
    # the summary counts one resumed trial, and the steps of two failed ones as lost but one.
    retry(inherit_intermediate_values=True)(study, frozen)
    again = study.ask()
    assert again.user_attrs["lcpred:resumed_from"] == 1
    study.tell(again, 0.3)
    summary = summarize_study(study, "sqlite:///x")
    assert (summary.n_resumed, summary.n_failed, summary.epochs_lost) == (1, 2, 1)


def test_a_retry_is_claimed_before_the_trials_queued_earlier() -> None:
    from optuna_lcpred._trials import pop_waiting_trial

    study = optuna.create_study()
    for lr in (0.01, 0.02, 0.03):
        study.enqueue_trial({"lr": lr})
    first = pop_waiting_trial(study)
    assert first is not None and first.number == 0
    first.suggest_float("lr", 1e-4, 1e-1)
    requeue_trial(study, study.tell(first, state=TrialState.FAIL))
    # The stopped trial 0, queued again as trial 3, resumes before trials 1 and 2 start.
    claimed = [pop_waiting_trial(study) for _ in range(3)]
    assert [t.number for t in claimed if t is not None] == [3, 1, 2]
    assert pop_waiting_trial(study) is None


def test_clean_checkpoints_deletes_only_what_nothing_will_resume(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from optuna_lcpred.cli import main

    storage = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    study = optuna.create_study(study_name="campaign", storage=storage)
    trials = [study.ask(LR) for _ in range(3)]
    for trial in trials:
        TrialCheckpoint(tmp_path / "ckpt", trial).save(0, {"losses": [0.5]})
    requeue_trial(study, study.tell(trials[0], state=TrialState.FAIL))  # its retry waits
    study.tell(trials[1], state=TrialState.FAIL)  # retries spent: nothing will resume it
    # trials[2] is still running.
    args = [
        "clean-checkpoints",
        str(tmp_path / "ckpt"),
        "--storage",
        storage,
        "--study",
        "campaign",
    ]
    assert main([*args, "--dry-run"]) == 0
    listed = capsys.readouterr()
    assert listed.out.split() == [str(tmp_path / "ckpt" / "campaign" / "trial-1.npz")]
    assert "would delete 1 checkpoint(s)" in listed.err
    assert len(list((tmp_path / "ckpt").rglob("*.npz"))) == 3
    assert main(args) == 0
    left = sorted(path.name for path in (tmp_path / "ckpt").rglob("*.npz"))
    assert left == ["trial-0.npz", "trial-2.npz"]
    assert main(["clean-checkpoints", str(tmp_path / "nowhere"), "--storage", storage]) != 0
