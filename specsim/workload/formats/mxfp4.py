"""MXFP4 (OCP Microscaling v1.0), weight-only direct cast as in ML-SpecQD.

* Blocks of 32 consecutive elements along the reduction (input-feature, last) axis share one
  E8M0 scale (8 bits, bias 127, code 255 = NaN, never produced here).
* Scale by the spec's FLOOR rule: ``X = 2**(floor(log2(amax)) - 2)`` (2 = emax of E2M1); an
  all-zero block gets code 0 (``2**-127``) and all-zero elements.
* Elements are FP4 E2M1 (sign + 2 exponent + 1 mantissa bit; magnitudes 0, 0.5, 1, 1.5, 2, 3, 4, 6;
  0.5 is the subnormal), round-to-nearest-even of ``V / X``, saturating at +-6.
* Stored codes: one 4-bit element code ``sign << 3 | magnitude index`` per weight (padded to whole
  blocks) and one 8-bit scale per block: 4 + 8/32 = 4.25 bits per weight.

"Outliers" of this format are the elements that saturate at +-6 (the FLOOR rule lets a block's
largest element reach up to 8 * X, which clips to 6 * X).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numba as nb
import numpy as np
import torch

from specsim.workload.formats.base import EncodedTensor, WeightFormat, check_weight

BLOCK = 32
E8M0_BIAS = 127
ELEMENT_EMAX = 2
E2M1_VALUES = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0], dtype=np.float32)


@nb.njit(cache=True, inline="always")
def _rne(y: float) -> float:
    """Round half to even."""
    f = np.floor(y)
    r = y - f
    if r > 0.5 or (r == 0.5 and (f % 2.0) != 0.0):
        return f + 1.0
    return f


@nb.njit(cache=True, inline="always")
def e2m1_code(x: float) -> int:
    """3-bit E2M1 magnitude index of ``|x|`` (already divided by the block scale), RNE, saturating."""
    a = abs(x)
    if a < 2.0:
        q = _rne(a * 2.0)  # step 0.5: index == q (0..4)
        return int(q)
    if a < 4.0:
        q = _rne(a)  # step 1: 2, 3 or 4
        return 4 if q == 2.0 else (5 if q == 3.0 else 6)
    q = _rne(a * 0.5)  # step 2: 2 (=4.0) or >= 3 (=6.0, saturated)
    return 6 if q == 2.0 else 7


@nb.njit(cache=True, parallel=True)
def _encode(x: np.ndarray, codes: np.ndarray, scales: np.ndarray, saturated: np.ndarray) -> None:
    rows, blocks = scales.shape
    for r in nb.prange(rows):
        nsat = 0
        for b in range(blocks):
            amax = 0.0
            for i in range(BLOCK):
                a = abs(x[r, b * BLOCK + i])
                if a > amax:
                    amax = a
            if amax == 0.0:
                scales[r, b] = 0
                for i in range(BLOCK):
                    codes[r, b * BLOCK + i] = 0
                continue
            _, e = math.frexp(amax)
            shared = e - 1 - ELEMENT_EMAX
            code = min(max(shared + E8M0_BIAS, 0), 254)
            scales[r, b] = code
            inv = 2.0 ** (E8M0_BIAS - code)
            for i in range(BLOCK):
                v = x[r, b * BLOCK + i]
                y = v * inv
                if abs(y) > 6.0:
                    nsat += 1
                c = e2m1_code(y)
                codes[r, b * BLOCK + i] = (8 if v < 0 and c > 0 else 0) | c
        saturated[r] = nsat


@nb.njit(cache=True, parallel=True)
def _decode(codes: np.ndarray, scales: np.ndarray, table: np.ndarray, out: np.ndarray) -> None:
    rows, cols = out.shape
    for r in nb.prange(rows):
        for c in range(cols):
            code = codes[r, c]
            v = table[code & 7] * np.float32(2.0 ** (np.int32(scales[r, c // BLOCK]) - E8M0_BIAS))
            out[r, c] = -v if code & 8 else v


@dataclass
class MXFP4Tensor(EncodedTensor):
    """Stored MXFP4 codes: element nibbles [rows, padded cols] and E8M0 scales [rows, blocks]."""

    codes: torch.Tensor = field(default=None, repr=False)  #: uint8, low 4 bits used
    scales: torch.Tensor = field(default=None, repr=False)  #: uint8 E8M0 codes
    saturated: int = 0

    def stored_bits(self) -> int:
        return 4 * self.codes.numel() + 8 * self.scales.numel()

    def outlier_count(self) -> int:
        return self.saturated


class MXFP4(WeightFormat):
    """OCP MXFP4 direct cast (block 32 along the reduction axis, FLOOR scale, E2M1 RNE)."""

    name = "mxfp4"

    def encode(self, w: torch.Tensor) -> MXFP4Tensor:
        check_weight(w)
        rows, cols = w.shape
        blocks = -(-cols // BLOCK)
        x = np.zeros((rows, blocks * BLOCK), dtype=np.float32)
        x[:, :cols] = w.detach().float().numpy()
        codes = np.empty(x.shape, dtype=np.uint8)
        scales = np.empty((rows, blocks), dtype=np.uint8)
        saturated = np.empty(rows, dtype=np.int64)
        _encode(x, codes, scales, saturated)
        return MXFP4Tensor(
            shape=(rows, cols),
            codes=torch.from_numpy(codes),
            scales=torch.from_numpy(scales),
            saturated=int(saturated.sum()),
        )

    def decode(self, enc: MXFP4Tensor) -> torch.Tensor:
        out = np.empty(tuple(enc.codes.shape), dtype=np.float32)
        _decode(enc.codes.numpy(), enc.scales.numpy(), E2M1_VALUES, out)
        return torch.from_numpy(out[:, : enc.shape[1]])
