"""The MLPF model, loss, search space and objective."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest


torch = pytest.importorskip("torch")
pytest.importorskip("pyarrow")

from mlpf_objective import MLPFObjective  # noqa: E402
from mlpf_objective.data import collate  # noqa: E402
from mlpf_objective.data import generate_dataset  # noqa: E402
from mlpf_objective.loss import mlpf_loss  # noqa: E402
from mlpf_objective.model import MLPFModel  # noqa: E402
from mlpf_objective.objective import evaluate  # noqa: E402
from mlpf_objective.objective import train_epoch  # noqa: E402
from mlpf_objective.search_space import parse_search_space  # noqa: E402


TINY = {"width": 16, "num_heads": 2, "num_layers": 1, "batch_size": 32, "dropout": 0.0}


@pytest.fixture(scope="module")
def events():  # type: ignore[no-untyped-def]
    return generate_dataset(240, seed=5)


def test_padding_changes_no_output(events) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    model = MLPFModel(width=16, num_heads=4, num_layers=2, dropout=0.2).eval()
    tight = collate(events, [0, 1, 2, 3])
    padded = collate(events, [0, 1, 2, 3], pad_to=tight.mask.shape[1] + 17)
    with torch.no_grad():
        a = model(tight.elements, tight.mask)
        b = model(padded.elements, padded.mask)
    n = tight.mask.shape[1]
    # On real elements every head gives the same numbers whatever the padding.
    for name in ("particle_logit", "class_logits", "regression"):
        x, y = getattr(a, name), getattr(b, name)[:, :n]
        torch.testing.assert_close(x[tight.mask], y[tight.mask], atol=1e-5, rtol=1e-5)
    # And the loss, a mean over real elements, is the same too.
    torch.testing.assert_close(mlpf_loss(a, tight)[0], mlpf_loss(b, padded)[0])


def test_padded_elements_do_not_attend(events) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    model = MLPFModel(width=16, num_heads=2, num_layers=1).eval()
    batch = collate(events, [0], pad_to=60)
    garbage = batch.elements.clone()
    garbage[~batch.mask] = 1e3  # junk in padded rows must not leak into real elements
    with torch.no_grad():
        clean = model(batch.elements, batch.mask).class_logits[batch.mask]
        dirty = model(garbage, batch.mask).class_logits[batch.mask]
    torch.testing.assert_close(clean, dirty)


def test_model_rejects_bad_sizes() -> None:
    with pytest.raises(ValueError, match="multiple of num_heads"):
        MLPFModel(width=10, num_heads=4)
    with pytest.raises(ValueError, match="dropout"):
        MLPFModel(dropout=1.0)


def test_training_lowers_validation_loss(events) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(1)
    train, val = events.split(0.25, seed=0)
    model = MLPFModel(width=32, num_heads=2, num_layers=1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    device = torch.device("cpu")
    before = evaluate(model, val, device)["loss"]
    rng = np.random.default_rng(0)
    for _ in range(4):
        train_epoch(model, optimizer, train, 32, rng, device)
    after = evaluate(model, val, device, physics=True)
    # A few epochs on synthetic events cut the validation loss clearly.
    assert after["loss"] < 0.7 * before
    # Tracks of charged hadrons are easy: the trained model finds most of them.
    assert after["f1_charged_hadron"] > 0.5
    assert 0.8 < after["pt_response"] < 1.2


def test_search_space_parsing() -> None:
    space = parse_search_space(
        {"lr": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True}, "dropout": 0.1}
    )
    assert isinstance(space["lr"], optuna.distributions.FloatDistribution)
    assert space["dropout"] == 0.1  # a constant is not searched
    assert isinstance(space["width"], optuna.distributions.CategoricalDistribution)  # default
    with pytest.raises(ValueError, match="unknown hyperparameter 'momentum'"):
        parse_search_space({"momentum": 0.9})
    with pytest.raises(ValueError, match=r"search_space\.lr\.type"):
        parse_search_space({"lr": {"type": "uniform", "low": 0, "high": 1}})
    with pytest.raises(ValueError, match=r"search_space\.lr: missing field 'high'"):
        parse_search_space({"lr": {"type": "float", "low": 0.1}})
    with pytest.raises(ValueError, match=r"search_space\.lr: unknown field"):
        parse_search_space({"lr": {"type": "float", "low": 0.1, "high": 1, "logg": True}})


def test_two_epoch_trial_reports_its_curve() -> None:
    objective = MLPFObjective(n_events=80, epochs=2, search_space=TINY, device="cpu")
    study = optuna.create_study()
    study.optimize(objective, n_trials=1)
    trial = study.trials[0]
    # One validation loss per epoch, and the trial's value is the last of them.
    assert sorted(trial.intermediate_values) == [0, 1]
    assert trial.value == trial.intermediate_values[1]
    assert trial.state == optuna.trial.TrialState.COMPLETE
    # Physics metrics are stored on the trial.
    assert {"mlpf:f1_photon", "mlpf:pt_resolution", "mlpf:seconds_per_epoch"} <= set(
        trial.user_attrs
    )


def test_trials_are_seeded() -> None:
    values = []
    for _ in range(2):
        objective = MLPFObjective(n_events=60, epochs=1, search_space=TINY, device="cpu")
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
        study.optimize(objective, n_trials=1)
        values.append(study.trials[0].value)
    # Same seed, same trial number, same data: the same loss.
    assert values[0] == values[1]


def test_pruner_stops_training() -> None:
    objective = MLPFObjective(n_events=60, epochs=5, search_space=TINY, device="cpu")
    study = optuna.create_study(pruner=optuna.pruners.ThresholdPruner(upper=1e-9))
    study.optimize(objective, n_trials=1)
    trial = study.trials[0]
    # The pruner says stop after the first epoch, and training stops there.
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert sorted(trial.intermediate_values) == [0]


@pytest.mark.parametrize(
    "device",
    [
        "cpu",
        pytest.param(
            "cuda",
            marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
        ),
    ],
)
def test_diverging_trial_is_pruned_not_crashed(device: str) -> None:
    space = dict(TINY, lr=1e12, weight_decay=0.0)
    objective = MLPFObjective(n_events=60, epochs=4, search_space=space, device=device)
    study = optuna.create_study(pruner=optuna.pruners.NopPruner())
    study.optimize(objective, n_trials=1)
    trial = study.trials[0]
    values = list(trial.intermediate_values.values())
    # A learning rate of 1e12 blows the weights up within a few epochs.
    assert not all(math.isfinite(v) for v in values)
    # A NaN/inf loss ends the trial as PRUNED even under a pruner that never prunes.
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert "mlpf:diverged_at" in trial.user_attrs


def test_objective_rejects_bad_options() -> None:
    with pytest.raises(ValueError, match="epochs"):
        MLPFObjective(epochs=0)
    with pytest.raises(ValueError, match="device"):
        MLPFObjective(device="tpu")
    with pytest.raises(ValueError, match="unknown hyperparameter"):
        MLPFObjective(search_space={"momentum": 0.9})
    with pytest.raises(ValueError, match="checkpoint_every must be an int >= 1, got 0"):
        MLPFObjective(checkpoint_every=0)
    # Study files and --set hand over text too: the error names the value, not a comparison.
    with pytest.raises(ValueError, match="epochs must be an int >= 1, got 'abc'"):
        MLPFObjective(epochs="abc")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"n_events must be an int >= 2, got 2\.5"):
        MLPFObjective(n_events=2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_events must be an int >= 1 or None, got '10'"):
        MLPFObjective(max_events="10")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"val_fraction must be a number in \(0, 1\), got '0\.2'"):
        MLPFObjective(val_fraction="0.2")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="seed must be an int >= 0, got -1"):
        MLPFObjective(seed=-1)
    assert MLPFObjective(epochs=np.int64(3), max_events=None).epochs == 3


class _StopAt(optuna.pruners.BasePruner):
    """Stands in for a worker stopped (SIGTERM) right after it checkpointed ``step``."""

    def __init__(self, step: int) -> None:
        self.step = step

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        if trial.last_step == self.step:
            raise KeyboardInterrupt
        return False


@pytest.mark.parametrize(
    ("every", "stop_at", "resumed_from", "device"),
    [
        (1, 1, 1, "cpu"),
        (2, 2, 1, "cpu"),
        pytest.param(
            1,
            1,
            1,
            "cuda",  # fused AdamW's state and the CUDA generator (dropout) come back
            marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
        ),
    ],
)
def test_a_stopped_trial_resumes_from_its_checkpoint_as_if_never_stopped(  # type: ignore[no-untyped-def]
    tmp_path, every: int, stop_at: int, resumed_from: int, device: str
) -> None:
    from optuna_lcpred.worker import requeue_trial

    space = dict(TINY, dropout=0.3)  # dropout draws random numbers: their state must resume
    options = {"n_events": 60, "epochs": 4, "search_space": space, "device": device}
    uninterrupted = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    uninterrupted.optimize(MLPFObjective(**options), n_trials=1)

    study = optuna.create_study(
        sampler=optuna.samplers.RandomSampler(seed=1), pruner=_StopAt(step=stop_at)
    )
    objective = MLPFObjective(**options, checkpoint_dir=tmp_path, checkpoint_every=every)
    trial = study.ask()
    with pytest.raises(KeyboardInterrupt):
        objective(trial)
    requeue_trial(study, study.tell(trial, state=optuna.trial.TrialState.FAIL))
    study.pruner = optuna.pruners.NopPruner()
    retry = study.ask()
    value = objective(retry)
    resumed = study.tell(retry, value)
    expected = uninterrupted.trials[0]
    # The retry reported the saved epochs and trained the rest (with checkpoints every other
    # epoch, the one after the last save again) to the same losses: the same run, its model,
    # optimiser, shuffling and dropout continued where the checkpoint left them.
    assert resumed.user_attrs["lcpred:resumed_from"] == resumed_from
    assert resumed.params == expected.params
    if device == "cpu":
        assert resumed.intermediate_values == expected.intermediate_values
        assert resumed.value == expected.value
    else:  # GPU kernels need not add in the same order twice
        assert resumed.intermediate_values == pytest.approx(expected.intermediate_values, rel=1e-6)
    # A finished trial's checkpoint is gone.
    assert not any(path.is_file() for path in tmp_path.rglob("*"))


class _BrokenAt(optuna.pruners.BasePruner):
    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        if trial.last_step == 1:
            raise RuntimeError("out of memory")  # an error in the trial, not a stop
        return False


def test_a_failed_trial_leaves_no_checkpoint_but_a_stopped_one_does(tmp_path) -> None:  # type: ignore[no-untyped-def]
    options = {"n_events": 60, "epochs": 3, "search_space": TINY, "device": "cpu"}
    objective = MLPFObjective(**options, checkpoint_dir=tmp_path)
    for pruner, error in ((_StopAt(step=1), KeyboardInterrupt), (_BrokenAt(), RuntimeError)):
        study = optuna.create_study(study_name=error.__name__, pruner=pruner)
        with pytest.raises(error):
            objective(study.ask())
    # Nothing queues a failed trial again, so its 'out of memory' left no file behind; the
    # stopped one's file waits for its retry.
    files = [path.relative_to(tmp_path) for path in tmp_path.rglob("*.npz")]
    assert [str(path) for path in files] == ["KeyboardInterrupt/trial-0.npz"]


def test_a_checkpoint_longer_than_the_training_is_not_resumed(tmp_path, caplog) -> None:  # type: ignore[no-untyped-def]
    from optuna_lcpred.worker import requeue_trial

    options = {"n_events": 60, "search_space": TINY, "device": "cpu", "checkpoint_dir": tmp_path}
    study = optuna.create_study(pruner=_StopAt(step=2))
    trial = study.ask()
    with pytest.raises(KeyboardInterrupt):
        MLPFObjective(epochs=4, **options)(trial)
    requeue_trial(study, study.tell(trial, state=optuna.trial.TrialState.FAIL))
    study.pruner = optuna.pruners.NopPruner()
    retry = study.ask()
    # The study file now says 2 epochs: 3 saved epochs cannot be resumed into 2.
    with caplog.at_level("WARNING", logger="optuna.lcpred.mlpf.objective"):
        resumed = study.tell(retry, MLPFObjective(epochs=2, **options)(retry))
    assert "holds 3 epochs, more than epochs=2" in caplog.text
    assert sorted(resumed.intermediate_values) == [0, 1]
    assert "lcpred:resumed_from" not in resumed.user_attrs
