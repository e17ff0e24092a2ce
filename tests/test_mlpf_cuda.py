"""The MLPF objective on a CUDA GPU: the same numbers as on the CPU, seeded.

These run only where PyTorch sees a CUDA device (the CPU-only CI skips them); the last test
checks what a CPU-only machine says when CUDA is asked for. A diverging trial and a trial
resumed from its checkpoint on the GPU are tested next to the CPU's, in test_mlpf_model.py.
"""

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


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")

TINY = {"width": 16, "num_heads": 2, "num_layers": 1, "batch_size": 32, "dropout": 0.0}


@pytest.fixture(autouse=True)
def _full_precision_matmul() -> object:
    # TF32 would make GPU and CPU differ by ~1e-3; these tests compare float32 with float32.
    previous = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    yield None
    torch.backends.cuda.matmul.allow_tf32 = previous


@pytest.fixture(scope="module")
def events():  # type: ignore[no-untyped-def]
    return generate_dataset(240, seed=5)


@needs_cuda
def test_forward_on_gpu_matches_cpu(events) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    model = MLPFModel(width=32, num_heads=4, num_layers=2, dropout=0.1).eval()
    batch = collate(events, list(range(16)), pad_to=80)
    with torch.no_grad():
        on_cpu = model(batch.elements, batch.mask)
        on_gpu = model.to("cuda")(batch.elements.cuda(), batch.mask.cuda())
    mask = batch.mask
    for name in ("particle_logit", "class_logits", "regression"):
        cpu_value = getattr(on_cpu, name)[mask]
        gpu_value = getattr(on_gpu, name).cpu()[mask]
        # The fused attention kernels must honour the padding mask like the CPU path.
        assert torch.isfinite(gpu_value).all(), name
        torch.testing.assert_close(gpu_value, cpu_value, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(
        mlpf_loss(on_gpu, batch.to("cuda"))[0].cpu(),
        mlpf_loss(on_cpu, batch)[0],
        atol=1e-5,
        rtol=1e-5,
    )


@needs_cuda
def test_training_on_gpu_follows_the_cpu(events) -> None:  # type: ignore[no-untyped-def]
    train, val = events.split(0.25, seed=0)
    losses = {}
    for device in ("cpu", "cuda"):
        torch.manual_seed(0)  # the weights are drawn on the CPU, then moved
        model = MLPFModel(width=16, num_heads=2, num_layers=1).to(device)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        rng = np.random.default_rng(0)  # the same batches in the same order
        for _ in range(2):
            train_epoch(model, optimizer, train, 32, rng, torch.device(device))
        losses[device] = evaluate(model, val, torch.device(device))["loss"]
    # Same data, same batches, same initial weights: the devices differ by float rounding only.
    assert losses["cuda"] == pytest.approx(losses["cpu"], rel=1e-3)


@needs_cuda
def test_trial_on_gpu_reports_its_curve_and_device() -> None:
    objective = MLPFObjective(n_events=80, epochs=2, search_space=TINY, device="cuda")
    study = optuna.create_study()
    study.optimize(objective, n_trials=1)
    trial = study.trials[0]
    assert trial.state == optuna.trial.TrialState.COMPLETE
    assert sorted(trial.intermediate_values) == [0, 1]
    assert all(math.isfinite(v) for v in trial.intermediate_values.values())
    assert trial.user_attrs["mlpf:device"].startswith("cuda")
    assert trial.user_attrs["mlpf:gpu_name"] == torch.cuda.get_device_name()
    assert trial.user_attrs["mlpf:seconds_per_epoch"] > 0.0


@needs_cuda
def test_gpu_trials_are_seeded() -> None:
    curves = []
    for _ in range(2):
        objective = MLPFObjective(
            n_events=60, epochs=2, search_space=dict(TINY, dropout=0.2), device="cuda"
        )
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
        study.optimize(objective, n_trials=1)
        curves.append(study.trials[0].intermediate_values)
    # Dropout draws from the CUDA generator, which the trial seeds too.
    assert curves[0] == pytest.approx(curves[1], rel=1e-6)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without CUDA")
def test_cuda_asked_for_without_a_gpu_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"device 'cuda:0' asked for, but PyTorch sees no CUDA"):
        MLPFObjective(device="cuda:0")
    # "auto" falls back to the CPU instead, and the trial says where it ran.
    objective = MLPFObjective(n_events=60, epochs=1, search_space=TINY, device="auto")
    study = optuna.create_study()
    study.optimize(objective, n_trials=1)
    assert study.trials[0].user_attrs["mlpf:device"] == "cpu"
    assert "mlpf:gpu_name" not in study.trials[0].user_attrs
