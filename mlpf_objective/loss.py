"""The MLPF loss: particle / no-particle BCE, focal class loss, weighted regression."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from mlpf_objective.data.batching import Batch
from mlpf_objective.model import MLPFOutput


__all__ = ["LossWeights", "mlpf_loss", "regression_targets"]


@dataclass(frozen=True)
class LossWeights:
    """Weights of the loss terms (pT and energy weigh more, as in MLPF)."""

    particle: float = 1.0
    classification: float = 1.0
    pt: float = 2.0
    eta: float = 1.0
    sin_phi: float = 1.0
    cos_phi: float = 1.0
    energy: float = 2.0
    focal_gamma: float = 2.0


def regression_targets(targets: torch.Tensor) -> torch.Tensor:
    """``(..., 5)`` log pT, eta, sin phi, cos phi, log energy from ``(..., 7)`` target rows."""
    return torch.stack(
        [
            torch.log(targets[..., 2].clamp_min(1e-3)),
            targets[..., 3],
            targets[..., 4],
            targets[..., 5],
            torch.log(targets[..., 6].clamp_min(1e-3)),
        ],
        dim=-1,
    )


def mlpf_loss(
    output: MLPFOutput, batch: Batch, weights: LossWeights | None = None
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The total loss (mean over real elements) and its terms.

    Binary cross-entropy of particle against no particle on every real element; the focal
    loss ``(1 - p)^gamma * CE`` over the five particle classes and squared errors of the
    regression outputs on elements that carry a particle. Padded elements contribute nothing.
    """
    w = weights or LossWeights()
    mask = batch.mask
    target_class = batch.target_class
    is_particle = (target_class > 0) & mask
    n_real = mask.sum().clamp_min(1)

    bce = (
        F.binary_cross_entropy_with_logits(
            output.particle_logit[mask],
            is_particle[mask].to(output.particle_logit.dtype),
            reduction="sum",
        )
        / n_real
    )
    zero = output.particle_logit.new_zeros(())
    terms: dict[str, torch.Tensor] = {"particle": bce}
    if bool(is_particle.any()):
        n_particles = is_particle.sum()
        ce = F.cross_entropy(
            output.class_logits[is_particle], target_class[is_particle] - 1, reduction="none"
        )
        focal = ((1.0 - torch.exp(-ce)) ** w.focal_gamma * ce).sum() / n_particles
        squared = output.regression[is_particle] - regression_targets(batch.targets)[is_particle]
        squared = squared.pow(2).sum(0) / n_particles
    else:
        focal = zero
        squared = output.regression.new_zeros(5)
    terms["classification"] = focal
    names = ("pt", "eta", "sin_phi", "cos_phi", "energy")
    for index, name in enumerate(names):
        terms[name] = squared[index]
    total = w.particle * bce + w.classification * focal
    for name in names:
        total = total + getattr(w, name) * terms[name]
    return total, terms
