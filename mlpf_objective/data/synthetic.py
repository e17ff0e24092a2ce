"""A synthetic CLIC-like event generator that writes the CLIC postprocessed parquet schema.

Not a detector simulation, but physics a particle-flow network has to learn:

- particles of five classes (charged hadrons, neutral hadrons, photons, electrons, muons) with a
  falling power-law pT spectrum above ``pt_min`` and flat eta in the tracker acceptance;
- every charged particle leaves a track; its pT is measured from the curvature ``omega`` in a
  4 T field with a resolution ``sigma(1/pT) = a (+) b / pT``, so that ``sigma(pT)/pT`` grows
  with pT as in a real tracker;
- photons and electrons shower in the ECAL (``sigma_E/E = 15 %/sqrt(E) (+) 1 %``), hadrons
  mostly in the HCAL (``50 %/sqrt(E) (+) 5 %``), muons leave a minimum-ionising deposit;
- clusters closer than ``merge_dr`` in (eta, phi) merge into one (the softer particle is lost),
  and noise clusters appear;
- targets follow MLPF's assignment: a charged particle is the target of its track, a neutral one
  of its cluster; a hadron's cluster that already belongs to a track has target "none".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Literal

import numpy as np

from mlpf_objective.data.parquet import EventDataset
from mlpf_objective.data.parquet import events_from_table
from mlpf_objective.data.schema import CLUSTER
from mlpf_objective.data.schema import TRACK
from mlpf_objective.data.schema import X_CLUSTER_FEATURES
from mlpf_objective.data.schema import X_TRACK_FEATURES
from mlpf_objective.data.schema import Y_TARGET_FEATURES


if TYPE_CHECKING:
    import pyarrow as pa


__all__ = ["SyntheticConfig", "generate_dataset", "generate_table", "write_synthetic_parquet"]

Schema = Literal["ytarget", "ygen7", "ygen8"]

_B_FIELD = 4.0  # tesla, CLIC
_ECAL_RADIUS = 1.5  # metres
# PDG id, charge choices, mass (GeV), relative frequency
_SPECIES: tuple[tuple[int, tuple[int, ...], float, float], ...] = (
    (211, (-1, 1), 0.13957, 0.45),
    (130, (0,), 0.49761, 0.12),
    (22, (0,), 0.0, 0.30),
    (11, (-1, 1), 0.000511, 0.07),
    (13, (-1, 1), 0.10566, 0.06),
)


@dataclass(frozen=True)
class SyntheticConfig:
    """Knobs of the generator; the defaults give about 25 elements per event."""

    mean_particles: float = 14.0
    pt_min: float = 0.5
    pt_power: float = 1.5
    pt_max: float = 200.0
    eta_max: float = 2.5
    track_a: float = 2e-5
    track_b: float = 1e-3
    merge_dr: float = 0.06
    mean_noise_clusters: float = 1.5
    noise_energy: float = 0.3


def generate_table(
    n_events: int,
    *,
    seed: int = 0,
    schema: Schema = "ytarget",
    config: SyntheticConfig | None = None,
) -> pa.Table:
    """``n_events`` synthetic events as a pyarrow table in the CLIC parquet schema."""
    import pyarrow as pa

    if n_events < 1:
        raise ValueError(f"n_events must be >= 1, got {n_events!r}")
    if schema not in ("ytarget", "ygen7", "ygen8"):
        raise ValueError(f"schema must be 'ytarget', 'ygen7' or 'ygen8', got {schema!r}")
    cfg = config or SyntheticConfig()
    rng = np.random.default_rng(seed)
    fields: dict[str, list[np.ndarray]] = {
        "X_track": [],
        "X_cluster": [],
        "y_track": [],
        "y_cluster": [],
    }
    for _ in range(n_events):
        xt, xc, yt, yc = _event(rng, cfg)
        fields["X_track"].append(xt)
        fields["X_cluster"].append(xc)
        fields["y_track"].append(yt)
        fields["y_cluster"].append(yc)
    y_width = {"ytarget": len(Y_TARGET_FEATURES), "ygen7": 7, "ygen8": 8}[schema]
    y_prefix = "ytarget" if schema == "ytarget" else "ygen"
    columns = {
        "X_track": _nested(fields["X_track"], len(X_TRACK_FEATURES)),
        "X_cluster": _nested(fields["X_cluster"], len(X_CLUSTER_FEATURES)),
        f"{y_prefix}_track": _nested([y[:, :y_width] for y in fields["y_track"]], y_width),
        f"{y_prefix}_cluster": _nested([y[:, :y_width] for y in fields["y_cluster"]], y_width),
    }
    return pa.table(columns)


def generate_dataset(
    n_events: int, *, seed: int = 0, config: SyntheticConfig | None = None
) -> EventDataset:
    """Synthetic events, converted exactly as :func:`read_parquet` converts a file."""
    table = generate_table(n_events, seed=seed, config=config)
    return events_from_table(table, source=f"synthetic(n_events={n_events}, seed={seed})")


def write_synthetic_parquet(
    path: str | Path,
    n_events: int,
    *,
    seed: int = 0,
    schema: Schema = "ytarget",
    config: SyntheticConfig | None = None,
) -> Path:
    """Write ``n_events`` synthetic events to a parquet file; returns its path."""
    import pyarrow.parquet as pq

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(generate_table(n_events, seed=seed, schema=schema, config=config), out)
    return out


def _nested(matrices: list[np.ndarray], width: int) -> pa.Array:
    """Events of ``(n, width)`` matrices as ``list<list<float32>>``."""
    import pyarrow as pa

    counts = np.array([len(m) for m in matrices], dtype=np.int32)
    flat = (
        np.concatenate([m.reshape(-1) for m in matrices]).astype(np.float32)
        if counts.sum()
        else np.zeros(0, dtype=np.float32)
    )
    row_offsets = pa.array(np.arange(0, len(flat) + 1, width, dtype=np.int32))
    rows = pa.ListArray.from_arrays(row_offsets, pa.array(flat, type=pa.float32()))
    event_offsets = pa.array(np.concatenate([[0], np.cumsum(counts)]).astype(np.int32))
    return pa.ListArray.from_arrays(event_offsets, rows)


def _event(
    rng: np.random.Generator, cfg: SyntheticConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    n = max(1, int(rng.poisson(cfg.mean_particles)))
    freq = np.array([s[3] for s in _SPECIES])
    species = rng.choice(len(_SPECIES), size=n, p=freq / freq.sum())
    u = rng.uniform(size=n)
    pt = np.minimum(cfg.pt_min * (1.0 - u) ** (-1.0 / cfg.pt_power), cfg.pt_max)
    eta = rng.uniform(-cfg.eta_max, cfg.eta_max, n)
    phi = rng.uniform(-math.pi, math.pi, n)
    pdg = np.array([_SPECIES[s][0] for s in species])
    charge = np.array([rng.choice(_SPECIES[s][1]) for s in species], dtype=np.float64)
    mass = np.array([_SPECIES[s][2] for s in species])
    p = pt * np.cosh(eta)
    energy = np.sqrt(p**2 + mass**2)

    gen = np.zeros((n, len(Y_TARGET_FEATURES)))
    gen[:, 0] = pdg * np.where(charge < 0, -1, 1)
    gen[:, 1] = charge
    gen[:, 2] = pt
    gen[:, 3] = eta
    gen[:, 4] = np.sin(phi)
    gen[:, 5] = np.cos(phi)
    gen[:, 6] = energy
    gen[:, 8] = 1.0  # generatorStatus: stable
    gen[:, 12] = -1.0  # jet_idx: not clustered here
    gen[:, 13] = np.arange(n)

    # Tracks: every charged particle; pT from the measured curvature.
    charged = np.flatnonzero(charge != 0)
    tracks = np.zeros((len(charged), len(X_TRACK_FEATURES)))
    omega_true = 0.3 * _B_FIELD / pt[charged] * charge[charged]
    sigma_inv_pt = np.hypot(cfg.track_a, cfg.track_b / pt[charged])
    inv_pt = np.abs(1.0 / pt[charged] + sigma_inv_pt * rng.standard_normal(len(charged)))
    pt_meas = 1.0 / np.maximum(inv_pt, 1e-4)
    eta_meas = eta[charged] + 1e-4 * rng.standard_normal(len(charged))
    phi_meas = phi[charged] + 1e-4 * rng.standard_normal(len(charged))
    tracks[:, 0] = TRACK
    tracks[:, 1] = pt_meas
    tracks[:, 2] = eta_meas
    tracks[:, 3] = np.sin(phi_meas)
    tracks[:, 4] = np.cos(phi_meas)
    tracks[:, 5] = pt_meas * np.cosh(eta_meas)
    ndf = rng.integers(8, 20, len(charged)).astype(float)
    tracks[:, 6] = rng.chisquare(ndf)
    tracks[:, 7] = ndf
    is_electron = pdg[charged] == 11
    tracks[:, 8] = np.where(is_electron, 1.4, 1.0) * rng.normal(1.0, 0.08, len(charged))
    tracks[:, 9] = 0.08
    tracks[:, 10] = np.abs(rng.normal(0.03, 0.01, len(charged)))
    tracks[:, 11] = np.sinh(eta_meas)
    tracks[:, 12] = rng.normal(0.0, 0.02, len(charged))
    tracks[:, 13] = omega_true * pt[charged] / pt_meas
    tracks[:, 14] = rng.normal(0.0, 0.05, len(charged))
    tracks[:, 15] = rng.normal(0.0, 0.01, len(charged))
    y_track = gen[charged].copy()
    y_track[:, 10] = 1.0

    # Calorimeter deposits: (particle index, energy, ecal fraction, eta, phi, shower width).
    deposits: list[tuple[int, float, float, float, float, float]] = []
    for i in range(n):
        code = pdg[i]
        if code in (22, 11):
            sigma = math.hypot(0.15 / math.sqrt(energy[i]), 0.01)
            measured = energy[i] * max(0.05, 1.0 + sigma * rng.standard_normal())
            deposits.append((i, measured, rng.uniform(0.95, 1.0), eta[i], phi[i], 0.015))
        elif code in (211, 130):
            if rng.uniform() < (0.85 if code == 211 else 0.95):
                sigma = math.hypot(0.5 / math.sqrt(energy[i]), 0.05)
                measured = energy[i] * max(0.05, 1.0 + sigma * rng.standard_normal())
                deposits.append((i, measured, rng.uniform(0.0, 0.4), eta[i], phi[i], 0.06))
        elif code == 13 and rng.uniform() < 0.8:
            deposits.append((i, abs(rng.normal(0.3, 0.08)), 0.3, eta[i], phi[i], 0.01))
    deposits.sort(key=lambda d: -d[1])
    merged: list[list[float]] = []  # owner, energy, ecal energy, eta, phi, width, n_merged
    for owner, e_dep, f_ecal, d_eta, d_phi, width in deposits:
        for cluster in merged:
            d_phi_wrapped = (d_phi - cluster[4] + math.pi) % (2 * math.pi) - math.pi
            if math.hypot(d_eta - cluster[3], d_phi_wrapped) < cfg.merge_dr:
                cluster[1] += e_dep
                cluster[2] += f_ecal * e_dep
                cluster[5] = max(cluster[5], width) * 1.3
                cluster[6] += 1
                break
        else:
            merged.append([owner, e_dep, f_ecal * e_dep, d_eta, d_phi, width, 1])
    for _ in range(rng.poisson(cfg.mean_noise_clusters)):
        e_noise = rng.exponential(cfg.noise_energy) + 0.05
        merged.append(
            [
                -1,
                e_noise,
                e_noise * rng.uniform(0, 1),
                rng.uniform(-cfg.eta_max, cfg.eta_max),
                rng.uniform(-math.pi, math.pi),
                0.1,
                1,
            ]
        )

    clusters = np.zeros((len(merged), len(X_CLUSTER_FEATURES)))
    y_cluster = np.zeros((len(merged), len(Y_TARGET_FEATURES)))
    y_cluster[:, 12] = -1.0
    for row, (owner_code, e_dep, e_ecal, c_eta, c_phi, width, n_merged) in enumerate(merged):
        clusters[row, :6] = (
            CLUSTER,
            e_dep / math.cosh(c_eta),
            c_eta,
            math.sin(c_phi),
            math.cos(c_phi),
            e_dep,
        )
        z = _ECAL_RADIUS * math.sinh(c_eta)
        clusters[row, 6:10] = (
            _ECAL_RADIUS * math.cos(c_phi),
            _ECAL_RADIUS * math.sin(c_phi),
            z,
            math.atan2(_ECAL_RADIUS, z),
        )
        clusters[row, 10:13] = (e_ecal, e_dep - e_ecal, 0.0)
        clusters[row, 13] = 1 + rng.poisson(8.0 * e_dep) * n_merged
        clusters[row, 14:17] = width * rng.uniform(0.8, 1.2, 3)
        owner_index = int(owner_code)
        if owner_index >= 0 and charge[owner_index] == 0:
            y_cluster[row] = gen[owner_index]
            y_cluster[row, 11] = 1.0
    return tracks, clusters, y_track, y_cluster
