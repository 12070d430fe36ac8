"""A lower bound of a replay's cycles from the two roofs and program order alone (Numba).

The engine serves every DRAM read in program order through one DMA queue and runs every operator's
compute in program order on one pipeline; a read needs a free buffer slot, and a slot is freed only
when the operator holding it computes. From those rules alone, for operators ``k = 0..n-1`` with
compulsory read time ``R_k`` (compulsory bytes read / bandwidth) and compute floor ``C_k`` (MACs at
peak, or vector cycles), let ``a_k`` bound the time the reads of operators ``<= k`` are done and
``b_k`` the time operator ``k``'s compute is done:

* ``a_k >= a_(k-1) + R_k``: reads are served one after another, in program order;
* ``a_k >= b_j + R(j..k] - cap`` for every ``j < k``: before operator ``j`` finishes computing, no
  later operator has computed, so their reads in flight hold at most every slot of every buffer
  (``cap``: the DMA time of the largest tile of each buffer, times its slots); the rest must follow;
* ``b_k >= b_(k-1) + C_k``: compute runs in program order;
* ``b_k >= a_k`` when operator ``k`` reads anything: its last tile must have arrived.

So ``total_cycles >= b_(n-1)``, and ``>= `` all DRAM traffic over the bandwidth. Unlike a sum of
per-operator maxima (operators overlap) or one maximum over the run (phases do not overlap: a
compute-bound prefill cannot hide a memory-bound decode), this follows the run phase by phase.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def ordered_floor(reads: np.ndarray, compute: np.ndarray, cap: float) -> float:
    """``b_(n-1)`` of the recurrence in the module docstring (cycles; ``reads`` and ``compute`` in cycles)."""
    a = 0.0
    b = 0.0
    read_sum = 0.0
    best = 0.0  # max over j of (b_j - reads of operators <= j), with b_(-1) = 0
    for k in range(reads.size):
        read_sum += reads[k]
        a = max(a + reads[k], best + read_sum - cap)
        b = b + compute[k]
        if reads[k] > 0.0:
            b = max(b, a)
        best = max(best, b - read_sum)
    return b
