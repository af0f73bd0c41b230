"""Helpers for year-major arrays ``(n_years, n_scenarios)``.

numpy's reductions and scans along axis 0 of a C-ordered array walk memory with a
large stride and run several times slower than a short loop of contiguous row
operations; the engine uses these instead.
"""

from __future__ import annotations

import numpy as np


def cumsum_years(x: np.ndarray) -> np.ndarray:
    """Cumulative sum over years (axis 0) of a year-major array.

    Examples
    --------
    >>> cumsum_years(np.array([[1, 2], [3, 4]])).tolist()
    [[1.0, 2.0], [4.0, 6.0]]
    """
    out = np.empty(x.shape, dtype=float)
    out[0] = x[0]
    for t in range(1, x.shape[0]):  # loop over years
        np.add(out[t - 1], x[t], out=out[t])
    return out


def first_year(mask: np.ndarray) -> np.ndarray:
    """First year index where a year-major boolean mask is True, ``n_years`` where never.

    Examples
    --------
    >>> first_year(np.array([[False, False], [True, False]])).tolist()
    [1, 2]
    """
    n_years = mask.shape[0]
    first = np.full(mask.shape[1], n_years)
    for t in range(n_years - 1, -1, -1):  # loop over years, backwards: the earliest wins
        first[mask[t]] = t
    return first
