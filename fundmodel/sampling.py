"""Random streams: seeds, pseudo-random / Latin hypercube / Sobol' draws, chunk invariance.

Every independent source of randomness (the market shocks, one project's
schedule, one project's political events, ...) has a *stream key*, a string
such as ``"schedule/mn_ree"``. Its draws are a pure function of
``(run seed, stream key, scenario index)``:

- pseudo-random and Latin hypercube draws come in fixed blocks of
  :data:`BLOCK` scenarios, each block from its own ``numpy.random.Generator``
  seeded by ``SeedSequence(seed, spawn_key=(key_hash, block))``;
- Sobol' draws are randomised quasi-Monte Carlo: :data:`SOBOL_REPLICATES` (16) independently
  scrambled Sobol' sequences per key, interleaved: scenario ``i`` is point ``i // 16`` of
  replicate ``i % 16``. Every chunk of whole blocks therefore grows each replicate by the
  same number of points, the draws stay a pure function of (seed, key, scenario index),
  and the 16 replicates are independent estimates of every figure, whose spread gives
  its standard error (:mod:`fundmodel.precision`). Only one stream of a run (the market
  shocks) uses Sobol': independently scrambled Sobol' sequences of *different* keys are
  correlated with each other, so the other stratified streams (project schedules) use
  Latin hypercube draws, stratified per block *and replicate* (64 points each) under a
  Sobol' run so that the replicates stay independent (see :meth:`ScenarioStreams.uniforms`).

So a chunk of scenarios ``[start, stop)`` gets exactly the rows it would get
inside any other chunking, and adding a project (a new key) does not shift any
other stream.

Latin hypercube sampling is stratified within each block of 1,024 scenarios
(a union of Latin hypercubes), which keeps it chunk-invariant at no cost in
memory.
"""

from __future__ import annotations

import hashlib
import warnings

import numpy as np
from scipy import stats
from scipy.stats import qmc

from .assumptions.schema import SamplingMethod, Triangular

#: Scenarios per random block (the unit of chunk invariance for pseudo/LHS draws).
BLOCK = 1024
#: Independent scramblings of the Sobol' sequence (randomised QMC), interleaved by scenario
#: index: scenario ``i`` belongs to replicate ``i % SOBOL_REPLICATES``. Divides :data:`BLOCK`.
SOBOL_REPLICATES = 16
_EPS = 2.0**-53


def stream_key(name: str) -> int:
    """Stable 63-bit integer of a stream name (independent of Python's hash seed).

    Examples
    --------
    >>> stream_key("market") == stream_key("market")
    True
    """
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little") >> 1


class ScenarioStreams:
    """Draws for scenario rows ``[start, stop)`` of named streams.

    Parameters
    ----------
    seed : int
        Run seed.
    method : SamplingMethod
        Sampling used by :meth:`uniforms` when ``quasi=True``; draws requested
        with ``quasi=False`` (rare discrete events) are always pseudo-random.

    Examples
    --------
    >>> s = ScenarioStreams(7, SamplingMethod.PSEUDO)
    >>> whole = s.uniforms("x", 0, 3000, 2)
    >>> part = s.uniforms("x", 1000, 2500, 2)
    >>> bool((whole[1000:2500] == part).all())
    True
    """

    def __init__(self, seed: int, method: SamplingMethod | str = SamplingMethod.PSEUDO):
        self.seed = int(seed)
        self.method = SamplingMethod(method)
        self._sobol: dict[tuple[str, int, int], qmc.Sobol] = {}

    # ------------------------------------------------------------------ internals
    def _block_rng(self, name: str, block: int) -> np.random.Generator:
        ss = np.random.SeedSequence(self.seed, spawn_key=(stream_key(name), block))
        return np.random.Generator(np.random.PCG64(ss))

    def _blocked(self, name: str, start: int, stop: int, dim: int, lhs: bool,
                 replicates: int = 1) -> np.ndarray:
        out = np.empty((stop - start, dim))
        first, last = start // BLOCK, (stop - 1) // BLOCK
        for block in range(first, last + 1):  # loop over blocks of scenarios, not scenarios
            rng = self._block_rng(name, block)
            if lhs and replicates > 1:  # one Latin hypercube per replicate's rows of the block
                u = np.empty((BLOCK, dim))
                for r in range(replicates):
                    u[r::replicates] = qmc.LatinHypercube(d=dim, rng=rng).random(BLOCK // replicates)
            elif lhs:
                u = qmc.LatinHypercube(d=dim, rng=rng).random(BLOCK)
            else:
                u = rng.random((BLOCK, dim))
            lo = max(start, block * BLOCK)
            hi = min(stop, (block + 1) * BLOCK)
            out[lo - start: hi - start] = u[lo - block * BLOCK: hi - block * BLOCK]
        return out

    def _sobol_points(self, name: str, replicate: int, lo: int, hi: int, dim: int) -> np.ndarray:
        """Points ``lo .. hi-1`` of the key's scrambled Sobol' sequence number ``replicate``."""
        engine = self._sobol.get((name, dim, replicate))
        if engine is None or engine.num_generated > lo:
            ss = np.random.SeedSequence(self.seed, spawn_key=(stream_key(name), replicate))
            engine = qmc.Sobol(d=dim, scramble=True, rng=np.random.default_rng(ss))
            self._sobol[(name, dim, replicate)] = engine
        if engine.num_generated < lo:
            engine.fast_forward(lo - engine.num_generated)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # balance warning for n != 2**m
            return engine.random(hi - lo)

    def _sobol_rows(self, name: str, start: int, stop: int, dim: int) -> np.ndarray:
        """Rows ``[start, stop)``: scenario ``i`` is point ``i // R`` of replicate ``i % R``."""
        R = SOBOL_REPLICATES
        out = np.empty((stop - start, dim))
        for r in range(R):  # loop over the replicates; each fills every R-th row
            lo = max(-(-(start - r) // R), 0)  # first point j with j * R + r >= start
            hi = -(-(stop - r) // R)  # first point j with j * R + r >= stop
            if hi <= lo:
                continue
            row = lo * R + r - start
            out[row: row + R * (hi - lo): R] = self._sobol_points(name, r, lo, hi, dim)
        return out

    # ------------------------------------------------------------------ public
    def uniforms(self, name: str, start: int, stop: int, dim: int, *, quasi: bool = True,
                 sobol: bool = True) -> np.ndarray:
        """Uniform draws in the open interval (0, 1).

        Parameters
        ----------
        name : str
            Stream key.
        start, stop : int
            Scenario rows ``[start, stop)``.
        dim : int
            Number of independent uniforms per scenario.
        quasi : bool, default True
            Use the run's sampling method; False forces pseudo-random draws.
        sobol : bool, default True
            Whether this stream may use the Sobol' sequence when the run samples with
            Sobol'; if not, it gets Latin hypercube draws. Independently scrambled Sobol'
            sequences are strongly correlated with each other (the scrambling keeps the
            structure of the leading bits), so a run lets exactly one stream, the market
            shocks, use Sobol' and stratifies every other stream with Latin hypercubes (one per
            block of 1,024 scenarios and Sobol' replicate, so the replicates stay independent).

        Returns
        -------
        ndarray of shape (stop - start, dim)
        """
        if stop <= start:
            return np.empty((0, dim))
        method = self.method if quasi else SamplingMethod.PSEUDO
        replicates = 1
        if method is SamplingMethod.SOBOL and not sobol:
            method = SamplingMethod.LHS
            replicates = SOBOL_REPLICATES  # independent replicates for the RQMC standard errors
        if method is SamplingMethod.SOBOL:
            u = self._sobol_rows(name, start, stop, dim)
        else:
            u = self._blocked(name, start, stop, dim, lhs=method is SamplingMethod.LHS, replicates=replicates)
        return np.clip(u, _EPS, 1.0 - _EPS)

    def pseudo_uniforms_by_dim(self, name: str, start: int, stop: int, dim: int,
                               dtype=np.float64) -> np.ndarray:
        """Pseudo-random uniforms in [0, 1) laid out dimension-major, shape (dim, stop - start).

        For the many rare-event draws (years x event types per scenario) that the engine
        reads one year at a time: drawing them dimension-major avoids a transposition,
        and ``float32`` halves their memory traffic (ample for comparisons with
        probabilities). Chunk-invariant like :meth:`uniforms` (blocks of :data:`BLOCK`).
        """
        out = np.empty((dim, stop - start), dtype=dtype)
        if stop <= start:
            return out
        for block in range(start // BLOCK, (stop - 1) // BLOCK + 1):  # loop over blocks of scenarios
            u = self._block_rng(name, block).random((dim, BLOCK), dtype=dtype)
            lo, hi = max(start, block * BLOCK), min(stop, (block + 1) * BLOCK)
            out[:, lo - start: hi - start] = u[:, lo - block * BLOCK: hi - block * BLOCK]
        return out

    def normals(self, name: str, start: int, stop: int, dim: int, *, quasi: bool = True,
                sobol: bool = True) -> np.ndarray:
        """Standard normal draws (inverse-CDF of :meth:`uniforms`), shape (stop - start, dim)."""
        return stats.norm.ppf(self.uniforms(name, start, stop, dim, quasi=quasi, sobol=sobol))


def triangular_ppf(u: np.ndarray, tri: Triangular) -> np.ndarray:
    """Inverse CDF of a triangular distribution.

    Parameters
    ----------
    u : ndarray of shape (n_scenarios,)
        Uniform draws in (0, 1).
    tri : Triangular
        min, mode, max in years.

    Returns
    -------
    ndarray of shape (n_scenarios,)
        Durations in years.
    """
    a, c, b = tri.min, tri.mode, tri.max
    if b == a:
        return np.full_like(u, a, dtype=float)
    fc = (c - a) / (b - a)
    left = a + np.sqrt(u * (b - a) * (c - a))
    right = b - np.sqrt((1 - u) * (b - a) * (b - c))
    return np.where(u < fc, left, right)
