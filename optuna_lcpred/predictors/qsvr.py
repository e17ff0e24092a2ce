"""Support-vector regression whose dual problem is solved as a QUBO on an annealer.

The epsilon-SVR dual (DESIGN section 4) over coefficients ``a, a* >= 0`` is

    E = 1/2 (a - a*)^T K (a - a*) + eps 1^T (a + a*) - y^T (a - a*) + xi (1^T (a - a*))^2
        + beta a^T a*

where the last two terms replace the constraint ``sum(a - a*) = 0`` by a penalty and optionally
discourage ``a_n`` and ``a*_n`` from both being non-zero. Each coefficient is written with
``n_bits`` binary variables, ``a_n = sum_k w_k z_nk`` with ``w_k = base^(k - k0)``, so the box
``0 <= a <= C`` is implicit with ``C = sum_k w_k``. With ``P = I_N (x) w^T``, ``M = [P, -P]`` and
``S = [P, P]`` over ``z = [z_a, z_a*]`` (``2 N n_bits`` binaries) the energy is the QUBO

    E(z) = z^T (1/2 M^T K M + xi M^T 1 1^T M + beta/2 (P^T P between the halves)) z
           + (eps S^T 1 - M^T y)^T z.

:func:`qsvr_bqm` builds it as a :class:`dimod.BinaryQuadraticModel`, :func:`decode_samples` turns
samples back into coefficients, :func:`dual_objective` evaluates ``E`` directly (the tests
compare the two), and :func:`svr_intercept` finds the bias, ``y_n - eps - f(x_n)`` from free
``a_n`` and ``y_n + eps - f(x_n)`` from free ``a*_n``. :class:`QSVRPredictor` fits several such
QUBOs on subsets of the training rows that fit a qubit budget and combines their lowest-energy
solutions, weighted by their error on rows they were not fitted on.
"""

from __future__ import annotations

import math
import time
from numbers import Integral
from numbers import Real
from typing import Any

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods
from sklearn.utils._param_validation import Interval
from sklearn.utils._param_validation import StrOptions

from optuna_lcpred.features import RobustScale
from optuna_lcpred.predictors.svr import KernelRegressor
from optuna_lcpred.predictors.svr import rbf_kernel


__all__ = [
    "QSVRPredictor",
    "bit_weights",
    "decode_samples",
    "dual_objective",
    "qsvr_bqm",
    "qsvr_qubo",
    "svr_intercept",
]


def bit_weights(n_bits: int, base: float, k0: float) -> np.ndarray:
    """``w_k = base^(k - k0)`` for ``k = 0 .. n_bits-1``.

    Example:
        >>> bit_weights(3, 2.0, 0.0)
        array([1., 2., 4.])
    """
    if n_bits < 1:
        raise ValueError(f"n_bits must be >= 1, got {n_bits}")
    return np.asarray(float(base) ** (np.arange(n_bits) - float(k0)), dtype=np.float64)


def _encoding(n_points: int, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    p = np.kron(np.eye(n_points), weights[None, :])  # (N, N * n_bits)
    return p, np.hstack([p, -p]), np.hstack([p, p])


def qsvr_qubo(
    kernel: np.ndarray,
    y: np.ndarray,
    *,
    weights: np.ndarray,
    epsilon: float,
    xi: float,
    beta: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """The QUBO of the penalised SVR dual as ``(Q, q)``: energy ``z^T Q z + q^T z``.

    Args:
        kernel: ``(N, N)`` kernel matrix of the training rows.
        y: ``(N,)`` targets.
        weights: Bit weights of one coefficient (:func:`bit_weights`).
        epsilon: Width of the insensitive tube.
        xi: Penalty on ``(sum(a - a*))^2``.
        beta: Penalty on ``sum(a * a*)``.
    """
    kernel = np.asarray(kernel, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n = len(y)
    if kernel.shape != (n, n):
        raise ValueError(f"kernel must be ({n}, {n}) for {n} targets, got {kernel.shape}")
    p, m, s = _encoding(n, np.asarray(weights, dtype=np.float64))
    ones = m.sum(axis=0)  # M^T 1
    quadratic = 0.5 * m.T @ kernel @ m + xi * np.outer(ones, ones)
    if beta:
        half = p.shape[1]
        cross = 0.5 * beta * (p.T @ p)
        quadratic[:half, half:] += cross
        quadratic[half:, :half] += cross.T
    linear = epsilon * s.sum(axis=0) - m.T @ y
    return quadratic, linear


def qsvr_bqm(
    kernel: np.ndarray,
    y: np.ndarray,
    *,
    weights: np.ndarray,
    epsilon: float,
    xi: float,
    beta: float = 0.0,
) -> Any:
    """:func:`qsvr_qubo` as a binary :class:`dimod.BinaryQuadraticModel` on variables
    ``0 .. 2 N n_bits - 1`` (``a`` bits first, ``n_bits`` per row)."""
    import dimod

    quadratic, linear = qsvr_qubo(kernel, y, weights=weights, epsilon=epsilon, xi=xi, beta=beta)
    # Binary variables: z_i^2 = z_i, so the diagonal joins the linear part; the upper triangle
    # carries each pair once.
    return dimod.BinaryQuadraticModel(
        linear + np.diag(quadratic), np.triu(quadratic + quadratic.T, 1), 0.0, "BINARY"
    )


def decode_samples(
    samples: np.ndarray, n_points: int, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients ``(a, a*)``, each ``(n_samples, N)``, from rows of binaries ``z``."""
    samples = np.atleast_2d(np.asarray(samples, dtype=np.float64))
    n_bits = len(weights)
    if samples.shape[1] != 2 * n_points * n_bits:
        raise ValueError(
            f"samples need {2 * n_points * n_bits} columns (2 x {n_points} rows x {n_bits} "
            f"bits), got {samples.shape[1]}"
        )
    bits = samples.reshape(len(samples), 2, n_points, n_bits)
    coefficients = bits @ np.asarray(weights, dtype=np.float64)
    return coefficients[:, 0, :], coefficients[:, 1, :]


def dual_objective(
    alpha: np.ndarray,
    alpha_star: np.ndarray,
    kernel: np.ndarray,
    y: np.ndarray,
    *,
    epsilon: float,
    xi: float,
    beta: float = 0.0,
) -> np.ndarray:
    """The penalised dual ``E`` of each coefficient pair (rows of ``alpha``, ``alpha_star``),
    computed directly (not through the QUBO)."""
    a = np.atleast_2d(alpha)
    b = np.atleast_2d(alpha_star)
    d = a - b
    quadratic = 0.5 * np.einsum("si,ij,sj->s", d, kernel, d)
    return np.asarray(
        quadratic
        + epsilon * (a + b).sum(axis=1)
        - d @ y
        + xi * d.sum(axis=1) ** 2
        + beta * (a * b).sum(axis=1)
    )


def svr_intercept(
    alpha: np.ndarray,
    alpha_star: np.ndarray,
    kernel: np.ndarray,
    y: np.ndarray,
    *,
    epsilon: float,
    c_max: float,
) -> float:
    """The bias ``b`` of ``f(x) = sum (a - a*) k(x_n, x) + b``.

    Averaged over free support vectors (``0 < a < C``): ``y_n - eps - f0(x_n)`` for a free
    ``a_n`` (the point lies on the upper edge of the tube) and ``y_n + eps - f0(x_n)`` for a free
    ``a*_n`` (lower edge), where ``f0`` is the expansion without bias. Without free ones, every
    support vector counts with the same signs; without any, ``b = mean(y - f0)``.

    Example:
        >>> K = np.eye(2)
        >>> svr_intercept(np.array([0.5, 0.0]), np.array([0.0, 0.0]), K, np.array([1.0, 0.0]),
        ...               epsilon=0.1, c_max=1.0)
        0.4
    """
    f0 = kernel @ (alpha - alpha_star)
    tol = 1e-9 * max(1.0, c_max)
    upper = y - epsilon - f0
    lower = y + epsilon - f0
    free_a = (alpha > tol) & (alpha < c_max - tol)
    free_s = (alpha_star > tol) & (alpha_star < c_max - tol)
    if not (free_a.any() or free_s.any()):
        free_a, free_s = alpha > tol, alpha_star > tol
    if not (free_a.any() or free_s.any()):
        return float(np.mean(y - f0))
    return float(np.concatenate([upper[free_a], lower[free_s]]).mean())


class QSVRPredictor(KernelRegressor):
    """Epsilon-SVR trained as QUBOs on a D-Wave sampler (simulated annealing by default).

    Features and the robust target scale are :class:`~optuna_lcpred.predictors.svr.
    KernelRegressor`'s; the targets are then mapped to [0, 1] over the training rows, the range
    ``epsilon`` refers to. The training rows are split into members that each fit the qubit
    budget (``2 n_bits`` qubits per row): disjoint subsets when there are more rows than one
    QUBO holds, otherwise the ``n_estimators`` training sets of a K-fold split. Each member's
    QUBO is sampled ``num_reads`` times; its ``n_solutions`` lowest-energy distinct solutions
    become models weighted by ``1 / (held-out MSE + 1 % of the target variance)``, the error on
    the member's held-out rows (never the training error). The prediction is the weighted mean
    of all models and :meth:`predict_spread` their weighted standard deviation; the held-out
    predictions are kept as ``oob_prediction_`` (cross-validated predictions for free).

    Parameters
    ----------
    n_steps : int or None, default=None
        How many leading columns of ``X`` are the observed curve; None means all of them.
    n_points : int, default=6
        Points at which the observed curve is resampled.
    n_bits : int, default=3
        Binary variables per coefficient (``K``).
    base : float, default=0.5
        Bit weights ``base^(k - k0)``: 1, 1/2, 1/4 for the defaults, so ``C = 1.75`` (the
        classical optimum on the MLPF table needs coefficients below 1 in steps finer than 1).
    k0 : float, default=0.0
        Offset of the bit exponents (the largest weight is ``base^-k0`` for ``base < 1``).
    epsilon : float, default=0.02
        Insensitive tube, on the [0, 1] target range.
    xi : float, default=3.0
        Penalty of the equality constraint ``sum(a - a*) = 0``. Weaker penalties leave the sum
        far from 0 and the bias wrong (R^2 0.33-0.58 at 0.01 on the MLPF table, against 0.77
        at 3); much stronger ones make the landscape harder for the annealer (0.74 at 10).
    beta : float, default=0.0
        Penalty of ``sum(a * a*)``.
    gamma : float or {"scale", "auto"}, default="scale"
        RBF kernel width on the standardised features.
    sampler : str or dimod.Sampler, default="sa"
        ``"sa"``, ``"exact"``, ``"tabu"``, ``"qpu"`` (see :mod:`optuna_lcpred.annealers`) or any
        dimod sampler.
    num_reads : int, default=100
        Samples drawn per QUBO.
    sampler_params : dict or None, default=None
        More keyword arguments for the sampler (e.g. ``{"num_sweeps": 500}``); those it does
        not accept are dropped.
    n_solutions : int, default=4
        Lowest-energy distinct solutions kept per QUBO.
    max_qubits : int, default=120
        Binary variables per QUBO at most.
    n_estimators : int, default=10
        Members (the training sets of a K-fold split) when all rows fit one QUBO.
    max_samples : int, default=300
        Fit on at most this many rows (evenly spaced in the order of their targets), as the
        classical SVR; each member still sees at most ``max_qubits / (2 n_bits)`` of them.
    random_state : int, RandomState or None, default=None
        Seeds the split into members and the sampler.

    Attributes
    ----------
    support_vectors_ : ndarray of shape (n_support, n_features)
        Training rows with a non-zero coefficient in some model (scaled features).
    dual_coef_ : ndarray of shape (n_models, n_support)
        ``a - a*`` of each model (zero where a model does not use a row).
    intercept_ : ndarray of shape (n_models,)
        Bias of each model (on the [0, 1] target range).
    model_weights_ : ndarray of shape (n_models,)
        Combination weights, summing to 1.
    oob_prediction_ : ndarray of shape (n_samples,)
        Each training row predicted by the models that did not see it (NaN if none).
    member_rows_ : list of ndarray
        The training rows (indices into ``X``) each model was fitted on.
    qubo_sizes_ : list of int
        Binary variables of each member's QUBO.
    fit_seconds_ : list of float
        Sampling time of each member's QUBO.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = np.sort(rng.uniform(1, 2, (30, 4)), axis=1)[:, ::-1]
    >>> y = X[:, -1] - 0.1
    >>> model = QSVRPredictor(num_reads=20, random_state=0).fit(X, y)
    >>> float(np.corrcoef(model.predict(X), y)[0, 1]) > 0.9
    True
    """

    _held_out_predictions = True
    _parameter_constraints: dict[str, list[Any]] = {  # noqa: RUF012 - scikit-learn's convention
        "n_steps": [Interval(Integral, 1, None, closed="left"), None],
        "n_points": [Interval(Integral, 1, None, closed="left")],
        "n_bits": [Interval(Integral, 1, 16, closed="both")],
        "base": [Interval(Real, 0, None, closed="neither")],
        "k0": [Real],
        "epsilon": [Interval(Real, 0, None, closed="left")],
        "xi": [Interval(Real, 0, None, closed="left")],
        "beta": [Interval(Real, 0, None, closed="left")],
        "gamma": [Interval(Real, 0, None, closed="neither"), StrOptions({"scale", "auto"})],
        "sampler": [StrOptions({"sa", "exact", "tabu", "qpu"}), HasMethods(["sample"])],
        "num_reads": [Interval(Integral, 1, None, closed="left")],
        "sampler_params": [dict, None],
        "n_solutions": [Interval(Integral, 1, None, closed="left")],
        "max_qubits": [Interval(Integral, 2, None, closed="left")],
        "n_estimators": [Interval(Integral, 2, None, closed="left")],
        "max_samples": [Interval(Integral, 2, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        *,
        n_steps: int | None = None,
        n_points: int = 6,
        n_bits: int = 3,
        base: float = 0.5,
        k0: float = 0.0,
        epsilon: float = 0.02,
        xi: float = 3.0,
        beta: float = 0.0,
        gamma: float | str = "scale",
        sampler: Any = "sa",
        num_reads: int = 100,
        sampler_params: dict[str, Any] | None = None,
        n_solutions: int = 4,
        max_qubits: int = 120,
        n_estimators: int = 10,
        max_samples: int = 300,
        random_state: Any = None,
    ) -> None:
        super().__init__(n_steps=n_steps, n_points=n_points, gamma=gamma, max_samples=max_samples)
        self.n_bits = n_bits
        self.base = base
        self.k0 = k0
        self.epsilon = epsilon
        self.xi = xi
        self.beta = beta
        self.sampler = sampler
        self.num_reads = num_reads
        self.sampler_params = sampler_params
        self.n_solutions = n_solutions
        self.max_qubits = max_qubits
        self.n_estimators = n_estimators
        self.random_state = random_state

    def _fit(self, curves: np.ndarray, extra: np.ndarray, y: np.ndarray) -> None:
        self._validate_params()
        per_qubo = int(self.max_qubits) // (2 * int(self.n_bits))
        if per_qubo < 1:
            raise ValueError(
                f"max_qubits={self.max_qubits} cannot hold one row at n_bits={self.n_bits} "
                f"(each row needs {2 * self.n_bits} qubits)"
            )
        super()._fit(curves, extra, y)
        # Rows dropped by max_samples get no held-out prediction.
        oob = np.full(len(y), np.nan)
        oob[self.sample_index_] = self._oob_scaled
        self.oob_prediction_ = RobustScale(self.center_, self.scale_).inverse(oob)
        del self._oob_scaled

    def _fit_scaled(self, features: np.ndarray, target: np.ndarray) -> None:
        from optuna_lcpred.annealers import make_sampler
        from optuna_lcpred.annealers import sample_bqm

        rng = check_random_state(self.random_state)
        n = len(target)
        # [0, 1] spans the 5th-95th percentile of the training targets; the tails are clipped
        # to [-0.5, 1.5], so a few exploded runs cannot squeeze the others into a sliver that
        # the tube width epsilon swallows.
        low, high = (float(q) for q in np.percentile(target, [5, 95]))
        span = high - low if high > low else 1.0
        t = np.clip((target - low) / span, -0.5, 1.5)
        self.target_range_ = (low, span)
        weights = bit_weights(int(self.n_bits), float(self.base), float(self.k0))
        c_max = float(weights.sum())
        sampler = make_sampler(self.sampler)
        params = dict(self.sampler_params or {})
        members = self._members(n, rng)
        coefs: list[np.ndarray] = []  # (n,) a - a* over all rows, per model
        intercepts: list[float] = []
        errors: list[float] = []
        held_out: list[np.ndarray] = []
        held_out_pred: list[np.ndarray] = []
        self.member_rows_: list[np.ndarray] = []
        self.qubo_sizes_: list[int] = []
        self.fit_seconds_: list[float] = []
        floor = 0.01 * float(t.var()) if n > 1 else 1e-6
        for train, test in members:
            kernel = rbf_kernel(features[train], features[train], self.gamma_)
            bqm = qsvr_bqm(
                kernel, t[train], weights=weights, epsilon=self.epsilon, xi=self.xi, beta=self.beta
            )
            start = time.perf_counter()
            sampleset = sample_bqm(
                sampler,
                bqm,
                num_reads=int(self.num_reads),
                seed=int(rng.randint(2**31 - 1)),
                **params,
            )
            self.fit_seconds_.append(time.perf_counter() - start)
            self.qubo_sizes_.append(len(bqm))
            for z in _lowest_distinct(sampleset, len(bqm), int(self.n_solutions)):
                alpha, alpha_star = decode_samples(z, len(train), weights)
                a, s = alpha[0], alpha_star[0]
                bias = svr_intercept(
                    a, s, kernel, t[train], epsilon=float(self.epsilon), c_max=c_max
                )
                coef = np.zeros(n)
                coef[train] = a - s
                coefs.append(coef)
                intercepts.append(bias)
                self.member_rows_.append(self.sample_index_[train])
                if len(test):
                    cross = rbf_kernel(features[test], features[train], self.gamma_)
                    pred = cross @ (a - s) + bias
                    errors.append(float(np.mean((pred - t[test]) ** 2)))
                    held_out_pred.append(pred)
                else:
                    errors.append(math.nan)
                    held_out_pred.append(np.zeros(0))
                held_out.append(test)
        err = np.asarray(errors)
        w = np.where(np.isfinite(err), 1.0 / (np.nan_to_num(err, nan=0.0) + floor), 1.0)
        if not np.isfinite(err).any():
            w = np.ones_like(err)
        w = w / w.sum()
        coef_matrix = np.asarray(coefs)
        used = np.flatnonzero(np.abs(coef_matrix).sum(axis=0) > 0)
        self.support_ = used
        self.support_vectors_ = features[used]
        self.dual_coef_ = coef_matrix[:, used]
        self.intercept_ = np.asarray(intercepts, dtype=np.float64)
        self.model_weights_ = w
        # Held-out prediction of each row: the weighted models that did not see it.
        total = np.zeros(n)
        mass = np.zeros(n)
        for weight, rows, pred in zip(w, held_out, held_out_pred, strict=True):
            total[rows] += weight * pred
            mass[rows] += weight
        with np.errstate(invalid="ignore", divide="ignore"):
            oob_t = np.where(mass > 0, total / mass, np.nan)
        self._oob_scaled = low + span * oob_t

    def _members(self, n: int, rng: np.random.RandomState) -> list[tuple[np.ndarray, np.ndarray]]:
        """(train, held-out) row indices of each member, every train set within the budget."""
        per_qubo = int(self.max_qubits) // (2 * int(self.n_bits))
        order = rng.permutation(n)
        if n > per_qubo:
            chunks = np.array_split(order, math.ceil(n / per_qubo))
        elif n >= 2:
            folds = np.array_split(order, min(int(self.n_estimators), n))
            return [(np.setdiff1d(order, f), np.sort(f)) for f in folds]
        else:
            chunks = [order]
        return [(np.sort(c), np.setdiff1d(order, c)) for c in chunks]

    def _models_scaled(self, features: np.ndarray) -> np.ndarray:
        """Each model's prediction, on the robust target scale: ``(n_models, n_rows)``."""
        kernel = rbf_kernel(features, self.support_vectors_, self.gamma_)
        low, span = self.target_range_
        return np.asarray(low + span * (self.dual_coef_ @ kernel.T + self.intercept_[:, None]))

    def _predict_scaled(self, features: np.ndarray) -> np.ndarray:
        return np.asarray(self.model_weights_ @ self._models_scaled(features))

    def predict_spread(self, X: Any) -> np.ndarray:
        """Weighted standard deviation of the models' predictions for each row of ``X``, on
        the robust scale of the training targets (``arcsinh((y - median) / IQR)``)."""
        from sklearn.utils.validation import check_is_fitted
        from sklearn.utils.validation import validate_data

        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan", reset=False)
        curves, extra = self._split(X)
        models = self._models_scaled(self.scaler_.transform(self._features(curves, extra)))
        mean = self.model_weights_ @ models
        return np.asarray(np.sqrt(self.model_weights_ @ (models - mean) ** 2))

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        # Seeded classical samplers repeat themselves; a QPU does not.
        seeded = isinstance(self.random_state, (int, np.integer))
        tags.non_deterministic = not seeded or self.sampler == "qpu"
        return tags


def _lowest_distinct(sampleset: Any, n_variables: int, count: int) -> list[np.ndarray]:
    """Up to ``count`` distinct samples of lowest energy, as 0/1 rows in variable order."""
    aggregated = sampleset.aggregate()
    order = np.argsort(aggregated.record.energy, kind="stable")
    labels = list(aggregated.variables)
    index = [labels.index(v) for v in range(n_variables)]
    rows = aggregated.record.sample[:, index]
    return [rows[i][None, :] for i in order[:count]]
