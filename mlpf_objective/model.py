"""An MLPF-style transformer: per-type encoders, masked self-attention, particle heads."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from mlpf_objective.data.schema import CLASS_NAMES
from mlpf_objective.data.schema import CLUSTER
from mlpf_objective.data.schema import N_ELEMENT_FEATURES
from mlpf_objective.data.schema import TRACK


__all__ = ["MLPFModel", "MLPFOutput"]

# Columns of the element matrix the regression starts from (tracks: pT, p; clusters: ET, E).
_PT, _ETA, _SIN, _COS, _ENERGY = 1, 2, 3, 4, 5


@dataclass(frozen=True)
class MLPFOutput:
    """Per-element outputs of :class:`MLPFModel`, each ``(B, N, ...)``.

    Attributes:
        particle_logit: ``(B, N)`` logit that the element gives a particle.
        class_logits: ``(B, N, 5)`` logits over the particle classes (charged hadron, neutral
            hadron, photon, electron, muon).
        regression: ``(B, N, 5)`` log pT, eta, sin phi, cos phi, log energy.
    """

    particle_logit: torch.Tensor
    class_logits: torch.Tensor
    regression: torch.Tensor

    def predicted_class(self) -> torch.Tensor:
        """``(B, N)`` class index, 0 where no particle is predicted."""
        particle = self.particle_logit > 0
        return torch.where(particle, self.class_logits.argmax(-1) + 1, 0)


class _Encoder(nn.Sequential):
    def __init__(self, width: int, dropout: float) -> None:
        super().__init__(
            nn.Linear(N_ELEMENT_FEATURES, width),
            nn.GELU(),
            nn.LayerNorm(width),
            nn.Dropout(dropout),
            nn.Linear(width, width),
        )


class _AttentionBlock(nn.Module):
    """Pre-norm self-attention + feed-forward; padded keys are masked, padded rows zeroed."""

    def __init__(self, width: int, num_heads: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(width)
        self.attention = nn.MultiheadAttention(width, num_heads, dropout=dropout, batch_first=True)
        self.norm2 = nn.LayerNorm(width)
        self.feed_forward = nn.Sequential(
            nn.Linear(width, 2 * width),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(2 * width, width),
        )
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        keep = mask.unsqueeze(-1).to(x.dtype)
        h = self.norm1(x)
        attended, _ = self.attention(h, h, h, key_padding_mask=~mask, need_weights=False)
        x = (x + self.dropout(attended)) * keep
        x = x + self.dropout(self.feed_forward(self.norm2(x)))
        return x * keep


def _head(width: int, out: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(width + N_ELEMENT_FEATURES, width),
        nn.GELU(),
        nn.Dropout(dropout),
        nn.Linear(width, out),
    )


class MLPFModel(nn.Module):
    """Per-element particle reconstruction from tracks and clusters.

    Tracks and clusters get their own input encoder (element features pass through ``asinh``
    so that energies spanning decades stay in range); ``num_layers`` pre-norm self-attention
    blocks mix the elements of an event, masking padded elements as keys and zeroing them as
    queries, so padding changes no output; three heads read each element's embedding together
    with its input features. Regression outputs are corrections to the element's own
    measurement (log pT, eta, sin phi, cos phi, log energy), as in MLPF.

    Args:
        width: embedding width; a multiple of ``num_heads``.
        num_heads: attention heads per block.
        num_layers: attention blocks (0 gives a per-element network).
        dropout: dropout probability in encoders, blocks and heads.

    Example:
        >>> import torch
        >>> model = MLPFModel(width=16, num_heads=2, num_layers=1)
        >>> x = torch.zeros(2, 5, 17); x[:, :3, 0] = 1.0; x[:, :3, 1] = 2.0
        >>> mask = x[..., 0] > 0
        >>> model(x, mask).class_logits.shape
        torch.Size([2, 5, 5])
    """

    def __init__(
        self, *, width: int = 64, num_heads: int = 4, num_layers: int = 2, dropout: float = 0.0
    ) -> None:
        super().__init__()
        if width < 1 or num_heads < 1 or width % num_heads:
            raise ValueError(
                f"width must be a positive multiple of num_heads, got {width=}, {num_heads=}"
            )
        if num_layers < 0:
            raise ValueError(f"num_layers must be >= 0, got {num_layers!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout!r}")
        self.track_encoder = _Encoder(width, dropout)
        self.cluster_encoder = _Encoder(width, dropout)
        self.blocks = nn.ModuleList(
            _AttentionBlock(width, num_heads, dropout) for _ in range(num_layers)
        )
        self.norm = nn.LayerNorm(width)
        self.particle_head = _head(width, 1, dropout)
        self.class_head = _head(width, len(CLASS_NAMES) - 1, dropout)
        self.regression_head = _head(width, 5, dropout)

    def forward(self, elements: torch.Tensor, mask: torch.Tensor) -> MLPFOutput:
        """Outputs for ``elements`` ``(B, N, 17)`` with ``mask`` ``(B, N)`` True on real ones."""
        kind = elements[..., 0]
        features = torch.cat([kind.unsqueeze(-1), torch.asinh(elements[..., 1:])], dim=-1)
        features = features * mask.unsqueeze(-1).to(features.dtype)
        x = torch.where(
            (kind == TRACK).unsqueeze(-1),
            self.track_encoder(features),
            torch.where(
                (kind == CLUSTER).unsqueeze(-1),
                self.cluster_encoder(features),
                torch.zeros((), dtype=features.dtype, device=features.device),
            ),
        )
        x = x * mask.unsqueeze(-1).to(x.dtype)
        for block in self.blocks:
            x = block(x, mask)
        h = torch.cat([self.norm(x), features], dim=-1)
        base = torch.stack(
            [
                torch.log(elements[..., _PT].clamp_min(1e-3)),
                elements[..., _ETA],
                elements[..., _SIN],
                elements[..., _COS],
                torch.log(elements[..., _ENERGY].clamp_min(1e-3)),
            ],
            dim=-1,
        )
        return MLPFOutput(
            particle_logit=self.particle_head(h).squeeze(-1),
            class_logits=self.class_head(h),
            regression=base + self.regression_head(h),
        )
