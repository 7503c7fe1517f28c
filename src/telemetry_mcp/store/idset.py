"""The stored events' 64-bit id hashes in memory, so dedupe never scans the id_hash column.

A sorted NumPy array plus a small sorted delta (merged in when it grows past an eighth of the
main one): 8 bytes per stored event, a vectorised lookup of a whole batch in about a millisecond.
A hit is only a candidate: the caller confirms it against the stored event ids (64-bit hashes of
different ids can collide, and rows deleted since the load leave stale entries behind).
"""

from __future__ import annotations

import threading

import numpy as np
import numpy.typing as npt

Hashes = npt.NDArray[np.uint64]
_MIN_DELTA = 65_536


class IdHashSet:
    """A set of uint64 values: add a batch, test a batch. Callers serialise writes (the write lock)."""

    def __init__(self, values: Hashes | None = None) -> None:
        self._main: Hashes = np.sort(values) if values is not None else np.empty(0, np.uint64)
        self._delta: Hashes = np.empty(0, np.uint64)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._main) + len(self._delta)

    def contains(self, hashes: Hashes) -> npt.NDArray[np.bool_]:
        """For each value, whether it is (probably) in the set."""
        with self._lock:
            return _member(self._main, hashes) | _member(self._delta, hashes)

    def add(self, hashes: Hashes) -> None:
        with self._lock:
            # sort only the (small) batch, then insert it into the sorted delta: O(batch log batch +
            # delta) instead of re-sorting the whole delta at every batch
            incoming = np.unique(np.asarray(hashes, dtype=np.uint64))
            incoming = incoming[~_member(self._delta, incoming)]
            delta = np.insert(self._delta, np.searchsorted(self._delta, incoming), incoming)
            if len(delta) > max(_MIN_DELTA, len(self._main) // 8):
                # a merge of two sorted arrays in O(n): insert the delta at its sorted positions
                at = np.searchsorted(self._main, delta)
                self._main = np.insert(self._main, at, delta)
                delta = np.empty(0, np.uint64)
            self._delta = delta


def _member(sorted_values: Hashes, probe: Hashes) -> npt.NDArray[np.bool_]:
    if len(sorted_values) == 0 or len(probe) == 0:
        return np.zeros(len(probe), dtype=np.bool_)
    at = np.searchsorted(sorted_values, probe)
    at[at == len(sorted_values)] = 0
    result: npt.NDArray[np.bool_] = sorted_values[at] == probe
    return result
