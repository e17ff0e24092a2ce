"""The CLIC parquet reader, the synthetic generator's physics, batching."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from mlpf_objective.data import MLPFDataError  # noqa: E402
from mlpf_objective.data import collate  # noqa: E402
from mlpf_objective.data import generate_table  # noqa: E402
from mlpf_objective.data import read_parquet  # noqa: E402
from mlpf_objective.data import write_synthetic_parquet  # noqa: E402
from mlpf_objective.data.schema import CLASS_NAMES  # noqa: E402
from mlpf_objective.data.schema import CLUSTER  # noqa: E402
from mlpf_objective.data.schema import TRACK  # noqa: E402


def _rows(table: pa.Table, field: str) -> list[np.ndarray]:
    return [
        np.array(event, dtype=float).reshape(-1, 1) if not event else np.array(event, float)
        for event in table.column(field).to_pylist()
    ]


@pytest.mark.parametrize("schema", ["ytarget", "ygen7", "ygen8"])
def test_reader_reads_each_schema_version(tmp_path: Path, schema: str) -> None:
    path = write_synthetic_parquet(tmp_path / "events.parquet", 30, seed=3, schema=schema)
    table = pq.read_table(path)
    events = read_parquet(path)
    # Every generated event has elements, so none is skipped.
    assert len(events) == 30
    y_name = "ytarget_track" if schema == "ytarget" else "ygen_track"
    for i, (x, y) in enumerate(zip(events.elements, events.targets, strict=False)):
        tracks = np.array(table.column("X_track")[i].as_py(), dtype=np.float32).reshape(-1, 16)
        clusters = np.array(table.column("X_cluster")[i].as_py(), dtype=np.float32).reshape(-1, 17)
        # Tracks come first, padded from 16 to 17 columns with zeros, then clusters as stored.
        assert x.shape == (len(tracks) + len(clusters), 17)
        np.testing.assert_array_equal(x[: len(tracks), 1:16], tracks[:, 1:])
        assert np.all(x[: len(tracks), 16] == 0)
        np.testing.assert_array_equal(x[len(tracks) :, 1:], clusters[:, 1:])
        assert np.all(x[: len(tracks), 0] == TRACK) and np.all(x[len(tracks) :, 0] == CLUSTER)
        raw = np.array(table.column(y_name)[i].as_py(), dtype=np.float32).reshape(len(tracks), -1)
        # Track targets keep pT/eta/phi/energy; the class comes from |PDG|.
        np.testing.assert_array_equal(y[: len(tracks), 2:], raw[:, 2:7])
        expected = {0: 0, 211: 1, 130: 2, 22: 3, 11: 4, 13: 5}
        assert [expected[abs(int(p))] for p in raw[:, 0]] == y[: len(tracks), 0].tolist()


def test_reader_reads_folders_and_max_events(tmp_path: Path) -> None:
    write_synthetic_parquet(tmp_path / "a.parquet", 10, seed=1)
    write_synthetic_parquet(tmp_path / "b.parquet", 10, seed=2)
    # A folder means all its parquet files, in name order.
    assert len(read_parquet(tmp_path)) == 20
    assert len(read_parquet(tmp_path, max_events=15)) == 15


def test_reader_maps_unknown_pdg_by_charge(tmp_path: Path) -> None:
    rows = [[321, 1, 5, 0, 0, 1, 5], [2112, 0, 5, 0, 0, 1, 5], [0, 0, 0, 0, 0, 0, 0]]
    x_track = [[1.0] * 16, [1.0] * 16, [1.0] * 16]
    table = pa.table(
        {
            "X_track": [x_track],
            "X_cluster": pa.array([[]], type=pa.list_(pa.list_(pa.float32()))),
            "ygen_track": [rows],
            "ygen_cluster": pa.array([[]], type=pa.list_(pa.list_(pa.float32()))),
        }
    )
    pq.write_table(table, tmp_path / "x.parquet")
    events = read_parquet(tmp_path / "x.parquet")
    # A kaon counts as a charged hadron, a neutron as a neutral hadron, PDG 0 as no particle.
    assert events.targets[0][:, 0].tolist() == [1, 2, 0]


def _write(tmp_path: Path, columns: dict[str, object]) -> Path:
    path = tmp_path / "bad.parquet"
    pq.write_table(pa.table(columns), path)
    return path


def test_reader_errors_name_the_problem(tmp_path: Path) -> None:
    good = generate_table(3, seed=0)
    with pytest.raises(MLPFDataError, match="no such file"):
        read_parquet(tmp_path / "missing.parquet")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MLPFDataError, match=r"no \*\.parquet"):
        read_parquet(tmp_path / "empty")
    (tmp_path / "text.parquet").write_text("not parquet")
    with pytest.raises(MLPFDataError, match="not a readable parquet"):
        read_parquet(tmp_path / "text.parquet")
    no_cluster = {k: good.column(k) for k in good.column_names if k != "X_cluster"}
    with pytest.raises(MLPFDataError, match="missing field 'X_cluster'"):
        read_parquet(_write(tmp_path, no_cluster))
    no_targets = {k: good.column(k) for k in ("X_track", "X_cluster")}
    with pytest.raises(MLPFDataError, match="no target fields"):
        read_parquet(_write(tmp_path, no_targets))
    narrow = dict(zip(good.column_names, good.columns, strict=False))
    narrow["X_track"] = pa.array(
        [[[1.0] * 15 for _ in range(len(e))] for e in good.column("X_track").to_pylist()]
    )
    with pytest.raises(MLPFDataError, match="'X_track' has rows of \\[15\\] columns, expected 16"):
        read_parquet(_write(tmp_path, narrow))
    short = dict(zip(good.column_names, good.columns, strict=False))
    short["ytarget_track"] = pa.array(
        [e[:-1] if e else e for e in good.column("ytarget_track").to_pylist()]
    )
    with pytest.raises(MLPFDataError, match="tracks but"):
        read_parquet(_write(tmp_path, short))
    empty = pa.array([[]], type=pa.list_(pa.list_(pa.float32())))
    nothing = {
        "X_track": empty,
        "X_cluster": empty,
        "ytarget_track": empty,
        "ytarget_cluster": empty,
    }
    with pytest.raises(MLPFDataError, match="no events with elements"):
        read_parquet(_write(tmp_path, nothing))


@pytest.fixture(scope="module")
def generated() -> pa.Table:
    return generate_table(400, seed=11)


def test_generator_every_charged_particle_has_a_track(generated: pa.Table) -> None:
    for yt, yc in zip(
        generated.column("ytarget_track").to_pylist(),
        generated.column("ytarget_cluster").to_pylist(),
        strict=False,
    ):
        yt = np.array(yt).reshape(-1, 14)
        yc = np.array(yc).reshape(-1, 14)
        # Charged particles are the targets of tracks, and only of tracks.
        assert np.all(yt[:, 1] != 0)
        assert np.all(yc[yc[:, 0] != 0, 1] == 0)


def test_generator_energy_at_least_momentum(generated: pa.Table) -> None:
    y = np.concatenate(
        [
            np.array(e).reshape(-1, 14)
            for e in generated.column("ytarget_track").to_pylist()
            + generated.column("ytarget_cluster").to_pylist()
            if e
        ]
    )
    y = y[y[:, 0] != 0]
    momentum = y[:, 2] * np.cosh(y[:, 3])
    # E^2 = p^2 + m^2 >= p^2 for every particle (float32 rounding aside).
    assert np.all(y[:, 6] >= momentum * (1 - 1e-5))
    # pT follows a falling spectrum above the threshold.
    assert y[:, 2].min() >= 0.5 and np.median(y[:, 2]) < 2.0


def test_generator_class_frequencies_are_sane(generated: pa.Table) -> None:
    targets = np.concatenate([t[:, 0] for t in read_events(generated)])
    counts = np.bincount(targets.astype(int), minlength=len(CLASS_NAMES))
    shares = counts / counts.sum()
    # Every class occurs; charged hadrons outnumber every other particle class, and rare
    # leptons stay rare, as in CLIC ttbar events.
    assert np.all(counts > 0)
    assert shares[1] == shares[1:].max()
    assert shares[4] < 0.1 and shares[5] < 0.1
    # Noise, merged and track-matched clusters give "none" elements, but not most of them.
    assert 0.1 < shares[0] < 0.6


def read_events(table: pa.Table) -> tuple[np.ndarray, ...]:
    from mlpf_objective.data.parquet import events_from_table

    return events_from_table(table).targets


def test_generator_track_resolution_grows_with_pt(generated: pa.Table) -> None:
    measured, true = [], []
    for xt, yt in zip(
        generated.column("X_track").to_pylist(),
        generated.column("ytarget_track").to_pylist(),
        strict=False,
    ):
        if xt:
            measured.append(np.array(xt)[:, 1])
            true.append(np.array(yt)[:, 2])
    ratio = np.concatenate(measured) / np.concatenate(true)
    pt = np.concatenate(true)
    low = np.std(ratio[pt < 2.0])
    high = np.std(ratio[pt > 5.0])
    # sigma(pT)/pT grows with pT for a curvature measurement.
    assert high > low


def test_collate_pads_and_masks(tmp_path: Path) -> None:
    events = read_parquet(write_synthetic_parquet(tmp_path / "e.parquet", 5, seed=0))
    batch = collate(events, [0, 1, 2], pad_to=100)
    assert batch.elements.shape == (3, 100, 17)
    lengths = events.n_elements()[:3]
    # The mask marks exactly the real elements; padded rows are zero.
    assert batch.mask.sum(1).tolist() == lengths.tolist()
    assert float(batch.elements[~batch.mask].abs().sum()) == 0.0
    with pytest.raises(ValueError, match="at least one event"):
        collate(events, [])
