"""Publish a fitted step model once, reuse it in every worker: JSON and numbers, never pickle.

When many workers share a study, each would otherwise fit the same predictor on the same
finished trials. With ``LCPredictionPruner(share=True)`` the first worker that needs a step's
model fits it and publishes it; the others load it, provided it was fitted on exactly the
finished trials they see (the record carries a key of the training set and the pruner's
settings). Records live next to the study: in a table ``lcpred_shared_models`` of the same
database for RDB storages, in a folder beside the journal file for the journal storage.

A record is canonical JSON holding only names and numbers (a fitted SVR travels as its
support vectors, dual coefficients, intercept, kernel width and scalers, an annealer-trained
SVR as the same for each of its weighted models, and both are evaluated with NumPy), so loading
one cannot execute code. It is signed: HMAC-SHA256 with the key in
``$OPTUNA_LCPRED_SHARE_KEY`` (or ``share_key=``) when there is one, which also stops anyone
without the key from forging records; otherwise a SHA-256 digest, which catches corruption.
A record that fails the signature, the schema, the shapes, or holds non-finite numbers is
refused with a warning and the worker fits locally (and publishes a good record in its place).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import os
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any
from typing import ClassVar

import numpy as np

from optuna_lcpred._files import write_atomically
from optuna_lcpred.features import RobustScale
from optuna_lcpred.predictors.base import CurvePredictor
from optuna_lcpred.predictors.baselines import LastValuePredictor
from optuna_lcpred.predictors.baselines import LinearLastValuePredictor
from optuna_lcpred.predictors.baselines import PowerLawPredictor
from optuna_lcpred.predictors.qsvr import QSVRPredictor
from optuna_lcpred.predictors.selection import SelectedPredictor
from optuna_lcpred.predictors.svr import FeatureScaler
from optuna_lcpred.predictors.svr import SVRPredictor
from optuna_lcpred.predictors.svr import rbf_kernel


if TYPE_CHECKING:
    from sqlalchemy.engine import Engine


__all__ = [
    "FileModelStore",
    "ModelStore",
    "RDBModelStore",
    "SharedModelError",
    "decode_selected",
    "encode_selected",
    "sign",
    "training_key",
]

_logger = logging.getLogger("optuna.lcpred.sharing")

SCHEMA = "optuna-lcpred/step-model/1"
SHARE_KEY_ENV = "OPTUNA_LCPRED_SHARE_KEY"
MAX_RECORD_BYTES = 16 * 2**20
_MAX_ROWS = 100_000


class SharedModelError(ValueError):
    """A shared record that is corrupt, forged or does not fit this study."""


def training_key(parts: Sequence[Any]) -> str:
    """A SHA-256 key of what a model depends on (settings, steps, training trial numbers)."""
    text = json.dumps([_plain(p) for p in parts], separators=(",", ":"), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def sign(payload: str, key: bytes | None) -> str:
    """HMAC-SHA256 of ``payload`` with ``key``, or its SHA-256 digest without one."""
    if key:
        return "hmac-sha256:" + hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()
    return "sha256:" + hashlib.sha256(payload.encode()).hexdigest()


def share_key_from_env() -> bytes | None:
    """The signing key from ``$OPTUNA_LCPRED_SHARE_KEY``, if set."""
    value = os.environ.get(SHARE_KEY_ENV)
    return value.encode() if value else None


def encode_selected(selected: SelectedPredictor, *, key: str) -> str:
    """Canonical JSON for a fitted step model. Raises ``SharedModelError`` for a model that
    cannot travel (a custom predictor)."""
    record = {
        "schema": SCHEMA,
        "key": key,
        "name": selected.name,
        "scale": [selected.scale.center, selected.scale.scale],
        "residuals": _floats(selected.residuals),
        "cv_error": {k: _float(v) for k, v in sorted(selected.cv_error.items())},
        "model": _encode_model(selected.model),
    }
    return json.dumps(record, separators=(",", ":"), sort_keys=True, allow_nan=False)


def decode_selected(
    payload: str, signature: str, *, key: str, n_features: int, share_key: bytes | None
) -> SelectedPredictor:
    """Check and rebuild a step model; ``n_features`` is the width of the rows it will see.

    Raises:
        SharedModelError: bad signature, not this training set, malformed or non-finite.
    """
    if len(payload) > MAX_RECORD_BYTES:
        raise SharedModelError(f"record of {len(payload)} bytes exceeds {MAX_RECORD_BYTES}")
    expected = sign(payload, share_key)
    if not hmac.compare_digest(expected, signature):
        raise SharedModelError("signature does not match the record (tampered or corrupt)")
    try:
        record = json.loads(payload, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise SharedModelError(f"record is not valid JSON ({exc})") from None
    _expect(isinstance(record, dict), "record is not an object")
    _expect(
        set(record) == {"schema", "key", "name", "scale", "residuals", "cv_error", "model"},
        "record has unexpected fields",
    )
    _expect(record["schema"] == SCHEMA, f"unknown schema {record['schema']!r}")
    if record["key"] != key:
        raise SharedModelError("record was fitted on other trials or settings")
    center, scale = _vector(record["scale"], 2, "scale")
    _expect(scale > 0, "scale must be positive")
    residuals = _vector(record["residuals"], None, "residuals", allow_inf=True)
    cv_error = record["cv_error"]
    _expect(
        isinstance(cv_error, dict) and all(isinstance(k, str) for k in cv_error),
        "cv_error must map names to numbers",
    )
    model = _decode_model(record["model"], n_features)
    _expect(isinstance(record["name"], str), "name must be text")
    return SelectedPredictor(
        name=record["name"],
        model=model,
        scale=RobustScale(float(center), float(scale)),
        residuals=residuals,
        cv_error={k: _number(v, f"cv_error.{k}", allow_inf=True) for k, v in cv_error.items()},
    )


# ---------------------------------------------------------------- predictors <-> plain data


def _encode_model(model: CurvePredictor) -> dict[str, Any]:
    n_steps = int(model.n_steps) if model.n_steps is not None else None
    common = {"n_steps": n_steps, "n_features_in": int(model.n_features_in_)}
    if type(model) is LastValuePredictor:
        return {"kind": "last", **common}
    if type(model) is LinearLastValuePredictor:
        return {"kind": "linear", **common, "coef": model.coef_, "intercept": model.intercept_}
    if type(model) is PowerLawPredictor:
        return {"kind": "powerlaw", **common, "horizon": int(model.horizon)}
    if type(model) in (SVRPredictor, QSVRPredictor):
        kernel_part = {
            "n_points": int(model.n_points),
            "center": model.center_,
            "scale": model.scale_,
            "feature_mean": _floats(model.scaler_.mean_),
            "feature_scale": _floats(model.scaler_.scale_),
            "gamma": model.gamma_,
        }
        if isinstance(model, QSVRPredictor):
            return {
                "kind": "qsvr",
                **common,
                **kernel_part,
                "support_vectors": [_floats(row) for row in model.support_vectors_],
                "dual_coef": [_floats(row) for row in model.dual_coef_],
                "intercept": _floats(model.intercept_),
                "model_weights": _floats(model.model_weights_),
                "target_range": _floats(model.target_range_),
            }
        svr = model.svr_
        return {
            "kind": "svr",
            **common,
            **kernel_part,
            "support_vectors": [_floats(row) for row in svr.support_vectors_],
            "dual_coef": _floats(svr.dual_coef_[0]),
            "intercept": _float(svr.intercept_[0]),
        }
    raise SharedModelError(f"{type(model).__name__} cannot be shared")


def _decode_model(data: Any, n_features: int) -> CurvePredictor:
    _expect(isinstance(data, dict), "model is not an object")
    kind = data.get("kind")
    n_steps = data.get("n_steps")
    _expect(
        isinstance(n_steps, int) and not isinstance(n_steps, bool) and 1 <= n_steps <= n_features,
        "model.n_steps out of range",
    )
    _expect(data.get("n_features_in") == n_features, "model was fitted on another feature width")
    fields = {"kind", "n_steps", "n_features_in"}
    model: CurvePredictor
    if kind == "last":
        _expect(set(data) == fields, "unexpected fields for 'last'")
        model = LastValuePredictor(n_steps=n_steps)
    elif kind == "linear":
        _expect(set(data) == fields | {"coef", "intercept"}, "unexpected fields for 'linear'")
        model = LinearLastValuePredictor(n_steps=n_steps)
        model.coef_ = _number(data["coef"], "coef")
        model.intercept_ = _number(data["intercept"], "intercept")
    elif kind == "powerlaw":
        _expect(set(data) == fields | {"horizon"}, "unexpected fields for 'powerlaw'")
        horizon = data["horizon"]
        _expect(isinstance(horizon, int) and n_steps <= horizon <= 10**7, "bad horizon")
        model = PowerLawPredictor(n_steps=n_steps, horizon=horizon)
        model.fitted_ = True
    elif kind in ("svr", "qsvr"):
        model = _decode_kernel_model(data, fields, n_steps, n_features)
    else:
        raise SharedModelError(f"unknown model kind {kind!r}")
    model.n_features_in_ = n_features
    return model


def _decode_kernel_model(
    data: dict[str, Any], fields: set[str], n_steps: int, n_features: int
) -> Any:
    qsvr = data["kind"] == "qsvr"
    wanted = fields | {
        "n_points",
        "center",
        "scale",
        "feature_mean",
        "feature_scale",
        "gamma",
        "support_vectors",
        "dual_coef",
        "intercept",
    }
    if qsvr:
        wanted |= {"model_weights", "target_range"}
    _expect(set(data) == wanted, f"unexpected fields for {data['kind']!r}")
    n_points = data["n_points"]
    _expect(isinstance(n_points, int) and 1 <= n_points <= 1000, "bad n_points")
    width = n_points + 2 + (n_features - n_steps)
    mean = _vector(data["feature_mean"], width, "feature_mean")
    scale = _vector(data["feature_scale"], width, "feature_scale")
    _expect(bool(np.all(scale > 0)), "feature_scale must be positive")
    vectors = data["support_vectors"]
    _expect(
        isinstance(vectors, list) and (qsvr or len(vectors) >= 1) and len(vectors) <= _MAX_ROWS,
        "bad support vectors",
    )
    support = np.array([_vector(row, width, "support_vectors") for row in vectors])
    support = support.reshape(len(vectors), width)
    gamma = _number(data["gamma"], "gamma")
    _expect(gamma > 0, "gamma must be positive")
    target_scale = _number(data["scale"], "scale")
    _expect(target_scale > 0, "scale must be positive")
    model: Any = (QSVRPredictor if qsvr else SVRPredictor)(n_steps=n_steps, n_points=n_points)
    model.center_ = _number(data["center"], "center")
    model.scale_ = target_scale
    model.gamma_ = gamma
    model.scaler_ = FeatureScaler(mean, scale)
    if not qsvr:
        dual = _vector(data["dual_coef"], len(support), "dual_coef")
        model.svr_ = RBFExpansion(support, dual, _number(data["intercept"], "intercept"), gamma)
        return model
    rows = data["dual_coef"]
    _expect(isinstance(rows, list) and 1 <= len(rows) <= 10_000, "bad dual_coef")
    dual_coef = np.array([_vector(row, len(support), "dual_coef") for row in rows])
    model.dual_coef_ = dual_coef.reshape(len(rows), len(support))
    model.intercept_ = _vector(data["intercept"], len(rows), "intercept")
    weights = _vector(data["model_weights"], len(rows), "model_weights")
    _expect(bool(np.all(weights >= 0)) and abs(weights.sum() - 1.0) < 1e-6, "bad weights")
    model.model_weights_ = weights
    low, span = _vector(data["target_range"], 2, "target_range")
    _expect(span > 0, "target_range must have a positive span")
    model.target_range_ = (float(low), float(span))
    model.support_vectors_ = support
    return model


class RBFExpansion:
    """``f(x) = sum_i dual_coef_i exp(-gamma |x - sv_i|^2) + intercept``: what a fitted RBF
    ``NuSVR`` computes, from plain arrays."""

    def __init__(
        self, support_vectors: np.ndarray, dual_coef: np.ndarray, intercept: float, gamma: float
    ) -> None:
        self.support_vectors_ = support_vectors
        self.dual_coef_ = dual_coef[None, :]
        self.intercept_ = np.array([intercept])
        self.gamma = gamma

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The expansion at each row of ``X``."""
        kernel = rbf_kernel(X, self.support_vectors_, self.gamma)
        return np.asarray(kernel @ self.dual_coef_[0] + self.intercept_[0])


# ---------------------------------------------------------------------------- validation


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise SharedModelError(message)


def _reject_constant(name: str) -> float:
    raise SharedModelError(f"record holds {name}, expected finite numbers")


def _number(value: Any, what: str, *, allow_inf: bool = False) -> float:
    if isinstance(value, str) and allow_inf and value in ("inf", "-inf"):
        return float(value)
    _expect(
        isinstance(value, (int, float)) and not isinstance(value, bool), f"{what} is not a number"
    )
    _expect(math.isfinite(value), f"{what} is not finite")
    return float(value)


def _vector(value: Any, length: int | None, what: str, *, allow_inf: bool = False) -> np.ndarray:
    _expect(isinstance(value, list) and len(value) <= _MAX_ROWS, f"{what} is not a list")
    if length is not None:
        _expect(len(value) == length, f"{what} has {len(value)} entries, expected {length}")
    return np.array([_number(v, what, allow_inf=allow_inf) for v in value], dtype=np.float64)


def _float(value: Any) -> float | str:
    number = float(value)
    if math.isinf(number):
        return "inf" if number > 0 else "-inf"
    if math.isnan(number):
        raise SharedModelError("NaN cannot be shared")
    return number


def _floats(values: Any) -> list[float | str]:
    return [_float(v) for v in np.asarray(values, dtype=np.float64).ravel()]


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    return value


# ---------------------------------------------------------------------------- stores


class ModelStore:
    """Where records of one study live. ``load`` returns ``(payload, signature)`` or None."""

    def load(self, name: str) -> tuple[str, str] | None:
        raise NotImplementedError

    def save(self, name: str, payload: str, signature: str) -> None:
        raise NotImplementedError


class RDBModelStore(ModelStore):
    """Records in table ``lcpred_shared_models`` of the study's own database."""

    # The table, created once per engine (held weakly: a freed engine's id may be reused by
    # an engine for another database, which must get its table created too).
    _tables: ClassVar[weakref.WeakKeyDictionary[Engine, Any]] = weakref.WeakKeyDictionary()

    def __init__(self, engine: Engine, study_id: int) -> None:
        self._engine = engine
        self._study_id = study_id
        self._table = self._table_for(engine)

    @classmethod
    def _table_for(cls, engine: Engine) -> Any:
        import sqlalchemy as sa
        from sqlalchemy.dialects import mysql

        if engine not in cls._tables:
            metadata = sa.MetaData()
            table = sa.Table(
                "lcpred_shared_models",
                metadata,
                sa.Column("study_id", sa.Integer, primary_key=True, autoincrement=False),
                sa.Column("name", sa.String(255), primary_key=True),
                sa.Column("payload", sa.Text().with_variant(mysql.LONGTEXT(), "mysql")),
                sa.Column("signature", sa.String(128), nullable=False),
            )
            metadata.create_all(engine, checkfirst=True)
            cls._tables[engine] = table
        return cls._tables[engine]

    def load(self, name: str) -> tuple[str, str] | None:
        import sqlalchemy as sa

        t = self._table
        query = sa.select(t.c.payload, t.c.signature).where(
            t.c.study_id == self._study_id, t.c.name == name
        )
        with self._engine.connect() as connection:
            row = connection.execute(query).first()
        return (str(row[0]), str(row[1])) if row is not None else None

    def save(self, name: str, payload: str, signature: str) -> None:
        import sqlalchemy as sa
        from sqlalchemy.exc import IntegrityError

        t = self._table
        where = (t.c.study_id == self._study_id) & (t.c.name == name)
        values = {"payload": payload, "signature": signature}
        with self._engine.begin() as connection:
            if connection.execute(sa.update(t).where(where).values(**values)).rowcount:
                return
        try:
            with self._engine.begin() as connection:
                connection.execute(
                    sa.insert(t).values(study_id=self._study_id, name=name, **values)
                )
        except IntegrityError:  # another worker inserted it first: overwrite
            with self._engine.begin() as connection:
                connection.execute(sa.update(t).where(where).values(**values))


class FileModelStore(ModelStore):
    """Records as files in a folder (beside a journal file), replaced atomically."""

    def __init__(self, directory: str | Path, study_id: int) -> None:
        self._directory = Path(directory)
        self._study_id = study_id

    def _path(self, name: str) -> Path:
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
        return self._directory / f"study{self._study_id}-{safe}.json"

    def load(self, name: str) -> tuple[str, str] | None:
        try:
            data = json.loads(self._path(name).read_text(encoding="utf-8"))
            return str(data["payload"]), str(data["signature"])
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as exc:
            raise SharedModelError(
                f"record file {self._path(name)} is unreadable ({exc})"
            ) from None

    def save(self, name: str, payload: str, signature: str) -> None:
        text = json.dumps({"payload": payload, "signature": signature})
        write_atomically(self._path(name), lambda out: out.write(text.encode("utf-8")))
