"""The CLIC/CLD postprocessed parquet schema that MLPF reads, as constants.

One parquet row is one event. Each field below holds, per event, a list of rows (one per track,
cluster or target), each row a list of floats in the column order named here.
"""

from __future__ import annotations


__all__ = [
    "CLASS_NAMES",
    "CLASS_PDG",
    "CLUSTER",
    "N_ELEMENT_FEATURES",
    "TRACK",
    "X_CLUSTER_FEATURES",
    "X_TRACK_FEATURES",
    "Y_GEN_FEATURES",
    "Y_TARGET_FEATURES",
]

#: Element types in column 0 of ``X_track`` / ``X_cluster`` (0 marks padding).
TRACK = 1
CLUSTER = 2

X_TRACK_FEATURES: tuple[str, ...] = (
    "elemtype",
    "pt",
    "eta",
    "sin_phi",
    "cos_phi",
    "p",
    "chi2",
    "ndf",
    "dEdx",
    "dEdxError",
    "radiusOfInnermostHit",
    "tanLambda",
    "D0",
    "omega",
    "Z0",
    "time",
)

X_CLUSTER_FEATURES: tuple[str, ...] = (
    "elemtype",
    "et",
    "eta",
    "sin_phi",
    "cos_phi",
    "energy",
    "position.x",
    "position.y",
    "position.z",
    "iTheta",
    "energy_ecal",
    "energy_hcal",
    "energy_other",
    "num_hits",
    "sigma_x",
    "sigma_y",
    "sigma_z",
)

#: Width of the element matrix: tracks are padded with zeros to the cluster width.
N_ELEMENT_FEATURES = len(X_CLUSTER_FEATURES)

#: ``ytarget_track`` / ``ytarget_cluster``: the first seven columns are what MLPF learns.
Y_TARGET_FEATURES: tuple[str, ...] = (
    "PDG",
    "charge",
    "pt",
    "eta",
    "sin_phi",
    "cos_phi",
    "energy",
    "ispu",
    "generatorStatus",
    "simulatorStatus",
    "gp_to_track",
    "gp_to_cluster",
    "jet_idx",
    "gp_idx",
)

#: Older files: ``ygen_track`` / ``ygen_cluster`` with these 7 columns, or 8 with ``ispu``.
Y_GEN_FEATURES: tuple[str, ...] = Y_TARGET_FEATURES[:8]

#: Target classes, in index order, and the |PDG id| that stands for each.
CLASS_NAMES: tuple[str, ...] = (
    "none",
    "charged_hadron",
    "neutral_hadron",
    "photon",
    "electron",
    "muon",
)
CLASS_PDG: tuple[int, ...] = (0, 211, 130, 22, 11, 13)
