"""Numba kernels on FP16 bit patterns (integer arithmetic only, so every result is exact).

Used by the BSFP codec's hot loops. Patterns are ``uint16`` magnitude codes (sign stripped): 5
exponent bits (bias 15) and 10 mantissa bits; codes >= 0x7C00 are inf/NaN.
"""

from __future__ import annotations

import numba as nb
import numpy as np

NOT_EXACT = -1  #: returned by :func:`scale_code` when the scaled value is not an exact FP16 number


@nb.njit(cache=True, inline="always")
def floor_log2_code(code: int) -> int:
    """``floor(log2(value))`` of a finite nonzero magnitude code (subnormals included)."""
    e = code >> 10
    if e > 0:
        return e - 15
    m = code & 0x3FF
    p = 0
    while (m >> (p + 1)) > 0:
        p += 1
    return p - 24


@nb.njit(cache=True, inline="always")
def scale_code(code: int, d: int) -> int:
    """Magnitude code of ``value(code) * 2**d``, or ``NOT_EXACT`` if not exactly representable.

    ``code`` must be finite (< 0x7C00). Overflow (>= 2**16) and bits lost in the subnormal range
    both give ``NOT_EXACT``.
    """
    if code == 0:
        return 0
    e = code >> 10
    m = code & 0x3FF
    if e > 0:
        s = 1024 + m
        x = e - 25  # value = s * 2**x
    else:
        s = m
        x = -24
    x += d
    p = 0
    while (s >> (p + 1)) > 0:
        p += 1
    binade = p + x
    if binade >= -14:  # normal result
        ef = binade + 15
        if ef >= 31:
            return NOT_EXACT
        return (ef << 10) | ((s << (10 - p)) & 0x3FF)
    sh = x + 24  # subnormal result: integer mantissa s * 2**sh
    if sh >= 0:
        return s << sh
    if s & ((1 << (-sh)) - 1):
        return NOT_EXACT
    return s >> (-sh)


@nb.njit(cache=True, parallel=True)
def row_peak_codes(mag: np.ndarray, excluded: np.ndarray) -> np.ndarray:
    """Largest finite magnitude code per row of ``mag`` [rows, cols], skipping ``excluded`` elements."""
    rows, cols = mag.shape
    out = np.zeros(rows, dtype=np.int32)
    for r in nb.prange(rows):
        best = 0
        for c in range(cols):
            v = mag[r, c]
            if v < 0x7C00 and v > best and not excluded[r, c]:
                best = v
        out[r] = best
    return out


@nb.njit(cache=True, parallel=True)
def align_codes(mag: np.ndarray, shift: np.ndarray, limit: int, aligned: np.ndarray, side: np.ndarray) -> None:
    """Align magnitude codes by ``2**shift[row]``; mark elements that cannot be aligned below ``limit``.

    Writes ``aligned`` (int32 code, saturated to ``limit - 1`` for side elements) and ORs into ``side``.
    """
    rows, cols = mag.shape
    for r in nb.prange(rows):
        d = shift[r]
        for c in range(cols):
            v = mag[r, c]
            if v >= 0x7C00:
                side[r, c] = True
                aligned[r, c] = limit - 1
                continue
            a = scale_code(v, d)
            if a == NOT_EXACT or a >= limit:
                side[r, c] = True
                big = a >= limit or (v > 0 and floor_log2_code(v) + d >= 1)
                aligned[r, c] = limit - 1 if big else 0
            else:
                aligned[r, c] = a


@nb.njit(cache=True)
def weighted_histogram(codes: np.ndarray, side: np.ndarray, row_weight: np.ndarray, bins: int) -> np.ndarray:
    """Histogram of aligned codes over non-side elements, each weighted by its row's weight."""
    rows, cols = codes.shape
    hist = np.zeros(bins, dtype=np.float64)
    for r in range(rows):
        w = row_weight[r]
        for c in range(cols):
            if not side[r, c]:
                hist[codes[r, c]] += w
    return hist


@nb.njit(cache=True, parallel=True)
def pack_words(
    bits: np.ndarray, aligned: np.ndarray, bucket_of: np.ndarray, edges: np.ndarray, offset_bits: int, words: np.ndarray
) -> None:
    """BSFP words: sign | bucket << offset_bits | (aligned - edges[bucket])."""
    rows, cols = bits.shape
    for r in nb.prange(rows):
        for c in range(cols):
            u = aligned[r, c]
            b = bucket_of[u]
            words[r, c] = (bits[r, c] & 0x8000) | (b << offset_bits) | (u - edges[b])


@nb.njit(cache=True, parallel=True)
def unpack_words(
    words: np.ndarray, shift: np.ndarray, edges: np.ndarray, offset_bits: int, out_bits: np.ndarray
) -> None:
    """Full BSFP decode to FP16 bit patterns: undo the remap, then the alignment ``2**shift[row]``."""
    rows, cols = words.shape
    low_mask = (1 << offset_bits) - 1
    for r in nb.prange(rows):
        d = -shift[r]
        for c in range(cols):
            w = words[r, c]
            u = edges[(w >> offset_bits) & 7] + (w & low_mask)
            a = scale_code(u, d)
            out_bits[r, c] = (w & 0x8000) | (a if a >= 0 else 0)


@nb.njit(cache=True, parallel=True)
def draft_values(words: np.ndarray, shift: np.ndarray, levels: np.ndarray, offset_bits: int, out: np.ndarray) -> None:
    """Draft decode from the top nibble: ``(-1)**s * levels[bucket] * 2**-shift[row]`` (float32)."""
    rows, cols = words.shape
    for r in nb.prange(rows):
        scale = np.float32(2.0 ** (-shift[r]))
        for c in range(cols):
            nib = words[r, c] >> offset_bits
            v = levels[nib & 7] * scale
            out[r, c] = -v if nib >= 8 else v
