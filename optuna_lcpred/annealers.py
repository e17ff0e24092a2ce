"""dimod samplers for the annealer-trained SVR: a factory, and a QPU path that cannot stall.

``make_sampler`` turns a name into a :class:`dimod.Sampler`:

- ``"sa"``: simulated annealing from ``dwave-samplers`` (the default; runs anywhere);
- ``"exact"``: :class:`dimod.ExactSolver`, every state enumerated (tests and toy problems only:
  2^n states);
- ``"tabu"``: tabu search from ``dwave-samplers``;
- ``"qpu"``: a :class:`QPUSampler` in front of a D-Wave quantum annealer.

A :class:`QPUSampler` embeds each problem as a clique (``minorminer.busclique``), computed once
per problem size and QPU graph and cached on disk as JSON. Chains are held together with a
strength computed from the problem's couplings (D-Wave's uniform torque compensation, or a
multiple of the largest QUBO coefficient), samples are unembedded by majority vote,
and any failure (no credentials, network, solver error, a call that takes longer than
``timeout`` seconds) falls back to simulated annealing with a logged warning. D-Wave
credentials come from D-Wave's own configuration (``DWAVE_API_TOKEN`` or ``dwave config``); this
module never reads or logs them.

:func:`sample_bqm` calls any sampler with the keyword arguments it accepts (a seed only where
the sampler lists one), so callers can pass one set of options to every sampler.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dimod

from optuna_lcpred._files import write_atomically


__all__ = [
    "SAMPLERS",
    "EmbeddingCache",
    "QPUSampler",
    "default_cache_dir",
    "make_sampler",
    "sample_bqm",
]

_logger = logging.getLogger("optuna.lcpred.annealers")

#: Sampler names :func:`make_sampler` knows.
SAMPLERS: tuple[str, ...] = ("sa", "exact", "tabu", "qpu")

#: Variables above which the exact solver is refused (2^n states in memory).
EXACT_MAX_VARIABLES = 24

_CACHE_ENV = "OPTUNA_LCPRED_CACHE"


def make_sampler(sampler: str | dimod.Sampler = "sa", **options: Any) -> dimod.Sampler:
    """A :class:`dimod.Sampler` by name, or ``sampler`` itself when it already is one.

    Args:
        sampler: ``"sa"``, ``"exact"``, ``"tabu"``, ``"qpu"`` or a sampler instance.
        options: For ``"qpu"``, keyword arguments of :class:`QPUSampler`; no other name takes
            options.

    Raises:
        ValueError: An unknown name, or options for a sampler that takes none.
        TypeError: ``sampler`` is neither a name nor a dimod sampler.

    Example:
        >>> type(make_sampler("exact")).__name__
        'ExactSolver'
    """
    if isinstance(sampler, dimod.Sampler):
        if options:
            raise ValueError(f"options {sorted(options)} given with a sampler instance")
        return sampler
    if not isinstance(sampler, str):
        raise TypeError(f"sampler must be a name or a dimod.Sampler, got {type(sampler).__name__}")
    if sampler == "qpu":
        return QPUSampler(**options)
    if options:
        raise ValueError(f"sampler {sampler!r} takes no options, got {sorted(options)}")
    if sampler == "sa":
        from dwave.samplers import SimulatedAnnealingSampler

        return SimulatedAnnealingSampler()
    if sampler == "tabu":
        from dwave.samplers import TabuSampler

        return TabuSampler()
    if sampler == "exact":
        return dimod.ExactSolver()
    raise ValueError(f"unknown sampler {sampler!r}; expected one of {', '.join(SAMPLERS)}")


def sample_bqm(
    sampler: dimod.Sampler,
    bqm: dimod.BinaryQuadraticModel,
    *,
    num_reads: int = 100,
    seed: int | None = None,
    **parameters: Any,
) -> dimod.SampleSet:
    """Sample ``bqm`` with the options ``sampler`` accepts; the others are dropped silently.

    ``num_reads`` and ``seed`` are passed only to samplers that list them in
    ``sampler.parameters`` (the exact solver takes neither).

    Raises:
        ValueError: The exact solver on more than :data:`EXACT_MAX_VARIABLES` variables.
    """
    if isinstance(sampler, dimod.ExactSolver) and len(bqm) > EXACT_MAX_VARIABLES:
        raise ValueError(
            f"the exact solver enumerates 2^n states; {len(bqm)} variables is more than "
            f"{EXACT_MAX_VARIABLES} (use 'sa', 'tabu' or 'qpu')"
        )
    accepted = set(sampler.parameters)
    wanted: dict[str, Any] = {"num_reads": num_reads, **parameters}
    if seed is not None:
        wanted["seed"] = int(seed)
    return sampler.sample(bqm, **{k: v for k, v in wanted.items() if k in accepted})


def default_cache_dir() -> Path:
    """Where embeddings are cached: ``$OPTUNA_LCPRED_CACHE``, else ``$XDG_CACHE_HOME`` or
    ``~/.cache``, in ``optuna-lcpred/embeddings``."""
    root = os.environ.get(_CACHE_ENV)
    if root:
        return Path(root) / "embeddings"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "optuna-lcpred" / "embeddings"


class EmbeddingCache:
    """Clique embeddings by (QPU graph, problem size), in memory and as JSON files.

    A file that is unreadable or does not fit the graph (a qubit it names is missing) is
    ignored with a warning and the embedding is computed again.

    Args:
        directory: Folder of the JSON files; None keeps embeddings in memory only.
    """

    def __init__(self, directory: str | Path | None) -> None:
        self.directory = Path(directory) if directory is not None else None
        self._memory: dict[tuple[str, int], list[list[int]]] = {}
        self.n_computed = 0
        self.n_loaded = 0

    @staticmethod
    def graph_key(nodes: Any, edges: Any, topology: Mapping[str, Any] | None = None) -> str:
        """A digest of the working graph: a QPU with other broken qubits gets another key."""
        text = json.dumps(
            [
                dict(topology or {}),
                sorted(int(n) for n in nodes),
                sorted(sorted((int(u), int(v))) for u, v in edges),
            ],
            separators=(",", ":"),
        )
        return hashlib.sha256(text.encode()).hexdigest()[:20]

    def clique(self, size: int, graph: Any, key: str) -> list[list[int]]:
        """Chains (lists of qubits) of a clique of ``size`` variables in ``graph``."""
        if (key, size) in self._memory:
            return self._memory[(key, size)]
        chains = self._load(size, graph, key)
        if chains is None:
            from minorminer import busclique

            found = busclique.find_clique_embedding(size, graph, use_cache=False)
            if len(found) != size:
                raise ValueError(f"no clique embedding of {size} variables fits this QPU")
            chains = [[int(q) for q in found[i]] for i in range(size)]
            self.n_computed += 1
            self._save(size, key, chains)
        else:
            self.n_loaded += 1
        self._memory[(key, size)] = chains
        return chains

    def _path(self, size: int, key: str) -> Path | None:
        return None if self.directory is None else self.directory / f"clique-{key}-{size}.json"

    def _load(self, size: int, graph: Any, key: str) -> list[list[int]] | None:
        path = self._path(size, key)
        if path is None or not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            chains = data["chains"]
            valid = (
                data.get("size") == size
                and data.get("graph") == key
                and isinstance(chains, list)
                and len(chains) == size
                and all(
                    isinstance(c, list) and c and all(type(q) is int and q in graph for q in c)
                    for c in chains
                )
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            _logger.warning("Ignoring unreadable embedding cache file %s (%s)", path, exc)
            return None
        if not valid:
            _logger.warning("Ignoring embedding cache file %s: it does not fit this QPU", path)
            return None
        return [list(c) for c in chains]

    def _save(self, size: int, key: str, chains: list[list[int]]) -> None:
        path = self._path(size, key)
        if path is None:
            return
        try:
            text = json.dumps({"size": size, "graph": key, "chains": chains})
            write_atomically(path, lambda out: out.write(text.encode("utf-8")))
        except OSError as exc:  # a read-only cache only costs time
            _logger.warning("Could not cache the embedding in %s (%s)", path, exc)


_TOKEN = re.compile(r"\b[A-Za-z]{2,8}-[0-9a-fA-F]{32,}\b")


def _redact(text: str) -> str:
    """``text`` without anything shaped like a D-Wave API token."""
    return _TOKEN.sub("***", text)


class QPUSampler(dimod.Sampler):  # type: ignore[misc]
    """A D-Wave QPU behind a cached clique embedding, time-boxed, falling back to annealing.

    Args:
        child: A structured sampler to embed into; default a ``dwave.system.DWaveSampler``
            created on first use from D-Wave's configuration (``solver`` selects one). Tests
            pass ``dwave.system.testing.MockDWaveSampler``.
        solver: Solver name or feature filter for ``DWaveSampler`` (ignored with ``child``).
        chain_strength: Chain coupling as a multiple of the largest absolute QUBO coefficient
            (the reference work used 10); None (default) uses D-Wave's uniform torque
            compensation, which grows with the density of couplings. A dense QSVR QUBO needs
            about 20 times its largest Ising bias: at 2 times, 40-70 % of the chains of a
            clique embedding break (measured on an Advantage-sized mock graph).
        annealing_time: Microseconds per anneal; None keeps the solver's default.
        timeout: Seconds one QPU call may take before simulated annealing answers instead.
        cache_dir: Folder for cached embeddings; default :func:`default_cache_dir`.
        cache: An :class:`EmbeddingCache` to use instead (shared between samplers, or
            ``EmbeddingCache(None)`` to keep embeddings in memory only).

    Example:
        >>> import dimod
        >>> from dwave.system.testing import MockDWaveSampler
        >>> qpu = QPUSampler(MockDWaveSampler(), cache=EmbeddingCache(None))
        >>> bqm = dimod.BinaryQuadraticModel({0: -1.0, 1: -1.0}, {(0, 1): 2.0}, 0.0, "BINARY")
        >>> float(qpu.sample(bqm, num_reads=10).first.energy)
        -1.0
    """

    def __init__(
        self,
        child: dimod.Sampler | None = None,
        *,
        solver: str | Mapping[str, Any] | None = None,
        chain_strength: float | None = None,
        annealing_time: float | None = None,
        timeout: float = 60.0,
        cache_dir: str | Path | None = None,
        cache: EmbeddingCache | None = None,
    ) -> None:
        if chain_strength is not None and not chain_strength > 0:
            raise ValueError(f"chain_strength must be > 0, got {chain_strength!r}")
        if annealing_time is not None and not annealing_time > 0:
            raise ValueError(f"annealing_time must be > 0 microseconds, got {annealing_time!r}")
        if not timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
        self._child = child
        self._solver = solver
        self.chain_strength = None if chain_strength is None else float(chain_strength)
        self.annealing_time = annealing_time
        self.timeout = float(timeout)
        self.cache = (
            cache if cache is not None else EmbeddingCache(cache_dir or default_cache_dir())
        )
        self.n_fallbacks = 0
        self._connects = child is None  # the QPU connection is this sampler's own
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        """All but the lock and a QPU connection this sampler opened (a copy opens its own on
        first use; a ``child`` given to it is copied with it)."""
        state = {k: v for k, v in self.__dict__.items() if k != "_lock"}
        if self._connects:
            state["_child"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    @property
    def parameters(self) -> dict[str, list[str]]:
        return {"num_reads": [], "seed": [], "annealing_time": [], "chain_strength": []}

    @property
    def properties(self) -> dict[str, Any]:
        return {"chain_strength": self.chain_strength, "timeout": self.timeout}

    @property
    def child(self) -> dimod.Sampler:
        """The structured sampler (connects to the QPU on first use)."""
        with self._lock:
            if self._child is None:
                from dwave.system import DWaveSampler

                self._child = DWaveSampler(solver=self._solver)
            return self._child

    def embedding_for(self, bqm: dimod.BinaryQuadraticModel) -> dict[Any, list[int]]:
        """Chains for the variables of ``bqm``: a clique of its size, cached."""
        child = self.child
        graph = child.to_networkx_graph()
        key = EmbeddingCache.graph_key(
            child.nodelist, child.edgelist, child.properties.get("topology")
        )
        chains = self.cache.clique(len(bqm), graph, key)
        return {v: chains[i] for i, v in enumerate(bqm.variables)}

    def chain_strength_for(self, bqm: dimod.BinaryQuadraticModel) -> float:
        """The chain coupling for ``bqm``: ``chain_strength`` times its largest absolute QUBO
        coefficient, or D-Wave's uniform torque compensation when ``chain_strength`` is None."""
        if self.chain_strength is None:
            from dwave.embedding.chain_strength import uniform_torque_compensation

            return float(uniform_torque_compensation(bqm)) or 1.0
        biases = [abs(v) for v in bqm.linear.values()] + [abs(v) for v in bqm.quadratic.values()]
        return self.chain_strength * (max(biases, default=1.0) or 1.0)

    def sample(
        self,
        bqm: dimod.BinaryQuadraticModel,
        *,
        num_reads: int = 100,
        seed: int | None = None,
        annealing_time: float | None = None,
        chain_strength: float | None = None,
        **parameters: Any,
    ) -> dimod.SampleSet:
        """Sample on the QPU; simulated annealing answers if that fails or times out.

        ``seed`` only seeds the fallback (a QPU has no seed). ``sampleset.info`` holds the
        chain strength and the embedding's chain lengths, or ``"fallback"`` with the reason.
        """
        result: dict[str, Any] = {}

        def call() -> None:
            try:
                from dwave.system import FixedEmbeddingComposite

                embedding = self.embedding_for(bqm)
                strength = (
                    chain_strength if chain_strength is not None else self.chain_strength_for(bqm)
                )
                options: dict[str, Any] = {"num_reads": num_reads}
                anneal = annealing_time if annealing_time is not None else self.annealing_time
                if anneal is not None:
                    options["annealing_time"] = anneal
                composite = FixedEmbeddingComposite(self.child, embedding)
                sampleset = composite.sample(bqm, chain_strength=strength, **options)
                sampleset.resolve()
                sampleset.info["chain_strength"] = strength
                sampleset.info["chain_lengths"] = sorted(len(c) for c in embedding.values())
                result["sampleset"] = sampleset
            except BaseException as exc:  # reported by the caller's thread
                result["error"] = exc

        worker = threading.Thread(target=call, name="optuna-lcpred-qpu", daemon=True)
        worker.start()
        worker.join(self.timeout)
        if "sampleset" in result:
            return result["sampleset"]
        if worker.is_alive():
            reason = f"no answer within {self.timeout:g} s"
        else:
            error = result.get("error")
            reason = _redact(f"{type(error).__name__}: {error}")
        self.n_fallbacks += 1
        _logger.warning("QPU sampling failed (%s); using simulated annealing instead.", reason)
        sampleset = sample_bqm(make_sampler("sa"), bqm, num_reads=num_reads, seed=seed)
        sampleset.info["fallback"] = reason
        return sampleset
