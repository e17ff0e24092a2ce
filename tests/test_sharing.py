"""Sharing fitted step models between workers: codecs, signatures, refusal, reuse."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from optuna.distributions import FloatDistribution

from optuna_lcpred import LCPredictionPruner
from optuna_lcpred._trials import flush_annotations
from optuna_lcpred.predictors.baselines import LastValuePredictor
from optuna_lcpred.predictors.baselines import LinearLastValuePredictor
from optuna_lcpred.predictors.baselines import PowerLawPredictor
from optuna_lcpred.predictors.qsvr import QSVRPredictor
from optuna_lcpred.predictors.selection import select_predictor
from optuna_lcpred.predictors.svr import SVRPredictor
from optuna_lcpred.sharing import SharedModelError
from optuna_lcpred.sharing import decode_selected
from optuna_lcpred.sharing import encode_selected
from optuna_lcpred.sharing import sign
from tests.conftest import needs


SPACE = {"x": FloatDistribution(0.0, 1.0)}
STEPS = 12


def _data(n: int = 30, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, n)
    s = np.arange(1, STEPS + 1)
    curves = (1 + x)[:, None] + rng.uniform(0.5, 2, n)[:, None] / s[None, :] ** 0.7
    curves += 0.01 * rng.standard_normal(curves.shape)
    X = np.hstack([curves[:, :5], x[:, None]])
    return X, curves[:, -1], np.arange(n)


@pytest.mark.parametrize(
    "predictor",
    [
        LastValuePredictor(n_steps=5),
        LinearLastValuePredictor(n_steps=5),
        PowerLawPredictor(n_steps=5, horizon=STEPS),
        SVRPredictor(n_steps=5),
        pytest.param(
            QSVRPredictor(n_steps=5, num_reads=10, random_state=0), marks=needs("dwave.samplers")
        ),
    ],
    ids=["last", "linear", "powerlaw", "svr", "qsvr"],
)
def test_round_trip_predicts_the_same(predictor: Any) -> None:
    X, y, groups = _data()
    selected = select_predictor({"p": predictor}, X, y, groups, n_folds=3)
    payload = encode_selected(selected, key="k")
    back = decode_selected(payload, sign(payload, None), key="k", n_features=6, share_key=None)
    probe = _data(10, seed=1)[0]
    # The rebuilt model, evaluated from plain numbers, predicts what the fitted one predicts.
    if isinstance(predictor, QSVRPredictor):
        # ... and an annealer-trained ensemble keeps its members' spread.
        np.testing.assert_allclose(
            back.model.predict_spread(probe), selected.model.predict_spread(probe), rtol=1e-9
        )
    np.testing.assert_allclose(
        back.model.predict_arrays(probe), selected.model.predict_arrays(probe), rtol=1e-9
    )
    np.testing.assert_array_equal(back.residuals, selected.residuals)
    assert back.scale == selected.scale and back.name == selected.name
    # The record is plain JSON: nothing in it can run code when loaded.
    assert json.loads(payload)["model"]["kind"] in ("last", "linear", "powerlaw", "svr", "qsvr")


def _svr_payload() -> str:
    X, y, groups = _data()
    selected = select_predictor({"svr": SVRPredictor(n_steps=5)}, X, y, groups, n_folds=3)
    return encode_selected(selected, key="k")


def test_tampered_record_is_refused() -> None:
    payload = _svr_payload()
    signature = sign(payload, None)
    record = json.loads(payload)
    record["model"]["intercept"] += 1.0
    tampered = json.dumps(record, separators=(",", ":"), sort_keys=True)
    with pytest.raises(SharedModelError, match="signature"):
        decode_selected(tampered, signature, key="k", n_features=6, share_key=None)
    # With a shared secret, a record signed without it (or forged) is refused too.
    with pytest.raises(SharedModelError, match="signature"):
        decode_selected(payload, signature, key="k", n_features=6, share_key=b"secret")
    keyed = sign(payload, b"secret")
    decode_selected(payload, keyed, key="k", n_features=6, share_key=b"secret")


def _mutate(path: list[Any], value: Any) -> str:
    record = json.loads(_svr_payload())
    node = record
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return json.dumps(record)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (["model", "kind"], "pickle", "unknown model kind"),
        (["model", "gamma"], -1.0, "gamma must be positive"),
        (["model", "intercept"], "nan", "not a number"),
        (["model", "feature_mean"], [0.0], "entries, expected"),
        (["model", "support_vectors"], [[0.0] * 3], "support_vectors has 3 entries"),
        (["model", "__reduce__"], "os.system", "unexpected fields"),
        (["schema"], "other/9", "unknown schema"),
        (["key"], "other", "fitted on other trials"),
        (["scale"], [0.0, -1.0], "scale must be positive"),
    ],
)
def test_hostile_records_are_refused(path: list[Any], value: Any, message: str) -> None:
    payload = _mutate(path, value)
    # Correctly signed, so only the content checks stand between it and the pruner.
    with pytest.raises(SharedModelError, match=message):
        decode_selected(payload, sign(payload, None), key="k", n_features=6, share_key=None)
    with pytest.raises(SharedModelError, match="NaN"):
        decode_selected(
            '{"a": NaN}', sign('{"a": NaN}', None), key="k", n_features=6, share_key=None
        )


def _study_with_trials(storage: Any) -> optuna.Study:
    study = optuna.create_study(storage=storage, study_name="share")
    rng = np.random.default_rng(3)
    for x in rng.uniform(0, 1, 14):
        study.enqueue_trial({"x": float(x)})
        trial = study.ask(SPACE)
        level = 1 + x + rng.uniform(0, 0.2)
        for step in range(STEPS):
            trial.report(float(level + 1.5 / (step + 1) ** 0.7), step)
        study.tell(trial, float(level + 1.5 / STEPS**0.7))
    study.enqueue_trial({"x": 0.95})
    trial = study.ask(SPACE)
    for step in range(4):
        trial.report(float(2.2 + 1.5 / (step + 1) ** 0.7), step)
    return study


def _decide(storage: Any, **options: Any) -> tuple[LCPredictionPruner, dict[str, Any]]:
    """A fresh pruner (a new worker) deciding on the running trial of the shared study (one
    look: a decision to prune would also load the previous step's model)."""
    options = {"confirm_prob": None, **options}
    pruner = LCPredictionPruner(n_startup_trials=3, predictor="svr", share=True, **options)
    study = optuna.load_study(study_name="share", storage=storage, pruner=pruner)
    running = study.get_trials(states=(optuna.trial.TrialState.RUNNING,))[0]
    pruner.prune(study, running)
    flush_annotations()
    attrs = study.get_trials(states=(optuna.trial.TrialState.RUNNING,))[0].user_attrs
    return pruner, dict(attrs)


def _check_reuse_and_refusal(storage: Any, tamper: Any, caplog: pytest.LogCaptureFixture) -> None:
    _study_with_trials(storage)
    first, attrs_first = _decide(storage)
    # The first worker finds nothing to reuse: it fits and publishes.
    assert first.n_shared_loads == 0
    second, attrs_second = _decide(storage)
    # Another worker on the same finished trials reuses the published model...
    assert second.n_shared_loads == 1 and second.n_shared_rejects == 0
    # ... and decides exactly as if it had fitted it.
    assert attrs_second["lcpred:pred_final"] == pytest.approx(attrs_first["lcpred:pred_final"])
    assert attrs_second["lcpred:prob_improve"] == pytest.approx(attrs_first["lcpred:prob_improve"])
    tamper()
    with caplog.at_level(logging.WARNING, logger="optuna.lcpred.pruner"):
        third, attrs_third = _decide(storage)
    # A tampered record is refused with a warning; the worker fits locally instead.
    assert third.n_shared_loads == 0 and third.n_shared_rejects == 1
    assert "refused" in caplog.text
    assert attrs_third["lcpred:pred_final"] == pytest.approx(attrs_first["lcpred:pred_final"])
    # ... and its good record replaces the bad one for the next worker.
    fourth, _ = _decide(storage)
    assert fourth.n_shared_loads == 1


def test_reuse_and_refusal_on_postgresql(pg_url: str, caplog: pytest.LogCaptureFixture) -> None:
    import sqlalchemy as sa

    def tamper() -> None:
        engine = sa.create_engine(pg_url)
        with engine.begin() as connection:
            connection.execute(
                sa.text("UPDATE lcpred_shared_models SET payload = replace(payload, :a, :b)"),
                {"a": '"intercept":', "b": '"intercept":1'},
            )
        engine.dispose()

    storage = optuna.storages.RDBStorage(pg_url)
    _check_reuse_and_refusal(storage, tamper, caplog)


def test_reuse_and_refusal_on_the_journal_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from optuna_lcpred.storage import open_storage

    path = tmp_path / "study.journal"

    def tamper() -> None:
        for file in (tmp_path / "study.journal.lcpred-models").glob("*.json"):
            file.write_text(file.read_text().replace("intercept", "intercepT"))

    _check_reuse_and_refusal(open_storage(f"journal:{path}"), tamper, caplog)
    # Records live in a folder beside the journal file.
    assert list((tmp_path / "study.journal.lcpred-models").glob("*.json"))


def test_in_memory_studies_share_nothing() -> None:
    study = _study_with_trials(None)
    pruner = LCPredictionPruner(n_startup_trials=3, share=True)
    running = study.get_trials(states=(optuna.trial.TrialState.RUNNING,))[0]
    pruner.prune(study, running)
    assert pruner.n_shared_loads == 0 and pruner.n_shared_rejects == 0


def test_a_database_made_again_at_the_same_url_gets_its_table(tmp_path: Path) -> None:
    # The table is created once per engine. A database deleted and made again at the same URL
    # is reached through a new engine, which may sit where the freed one did (same id): it
    # must get its table all the same, so engines are remembered as objects, and only while
    # they live.
    import gc

    import sqlalchemy as sa

    from optuna_lcpred.sharing import RDBModelStore

    url = f"sqlite:///{tmp_path / 'models.db'}"
    known = len(RDBModelStore._tables)
    for _ in range(3):
        engine = sa.create_engine(url)
        store = RDBModelStore(engine, study_id=0)
        assert store.load("step-1") is None
        store.save("step-1", "{}", "signature")
        assert store.load("step-1") == ("{}", "signature")
        engine.dispose()
        del store, engine
        gc.collect()
        (tmp_path / "models.db").unlink()
    assert len(RDBModelStore._tables) <= known  # freed engines are not held on to
