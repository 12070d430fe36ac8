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


@nb.njit(cache=True)
def shifts_of_peak_codes(peaks: np.ndarray) -> np.ndarray:
    """Shift d (int32) aligning each peak magnitude code (int64, any shape) into [1, 2); 0 for a zero peak."""
    flat = peaks.ravel()
    out = np.zeros(flat.size, dtype=np.int32)
    for i in range(flat.size):
        if flat[i] > 0:
            out[i] = -floor_log2_code(flat[i])
    return out.reshape(peaks.shape)


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
def block_peak_codes(mag: np.ndarray, excluded: np.ndarray, block: int) -> np.ndarray:
    """Largest finite magnitude code per block of ``block`` columns of ``mag`` [rows, cols] -> [rows, blocks].

    ``excluded`` elements are skipped; the last block of a row may be partial.
    """
    rows, cols = mag.shape
    nblocks = (cols + block - 1) // block
    out = np.zeros((rows, nblocks), dtype=np.int32)
    for r in nb.prange(rows):
        for c in range(cols):
            v = mag[r, c]
            b = c // block
            if v < 0x7C00 and v > out[r, b] and not excluded[r, c]:
                out[r, b] = v
    return out


@nb.njit(cache=True, parallel=True)
def align_codes(
    mag: np.ndarray, shift: np.ndarray, block: int, limit: int, aligned: np.ndarray, side: np.ndarray
) -> None:
    """Align magnitude codes by ``2**shift[row, col // block]``; mark elements that cannot be aligned below ``limit``.

    Writes ``aligned`` (int32 code, saturated to ``limit - 1`` for side elements) and ORs into ``side``.
    """
    rows, cols = mag.shape
    for r in nb.prange(rows):
        for c in range(cols):
            d = shift[r, c // block]
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
def weighted_histogram(
    codes: np.ndarray, side: np.ndarray, select: np.ndarray, weight: np.ndarray, block: int, tables: int, bins: int
) -> np.ndarray:
    """Histogram [tables, bins] of aligned codes over non-side elements, per level table ``select[row, block]``,
    each element weighted by its block's ``weight[row, block]``."""
    rows, cols = codes.shape
    hist = np.zeros((tables, bins), dtype=np.float64)
    for r in range(rows):
        for c in range(cols):
            if not side[r, c]:
                b = c // block
                hist[select[r, b], codes[r, c]] += weight[r, b]
    return hist


@nb.njit(cache=True, parallel=True)
def block_table_errors(
    codes: np.ndarray, side: np.ndarray, block: int, bucket_of: np.ndarray, levels: np.ndarray, values: np.ndarray
) -> np.ndarray:
    """Squared draft error (aligned domain) of every block under every level table -> [rows, blocks, tables].

    ``bucket_of`` [tables, bins] maps a code to its bucket, ``levels`` [tables, 8], ``values`` [bins] code -> value.
    """
    rows, cols = codes.shape
    tables = levels.shape[0]
    nblocks = (cols + block - 1) // block
    out = np.zeros((rows, nblocks, tables), dtype=np.float64)
    for r in nb.prange(rows):
        for c in range(cols):
            if side[r, c]:
                continue
            u = codes[r, c]
            b = c // block
            for t in range(tables):
                e = values[u] - levels[t, bucket_of[t, u]]
                out[r, b, t] += e * e
    return out


@nb.njit(cache=True, parallel=True)
def pack_words(
    bits: np.ndarray,
    aligned: np.ndarray,
    select: np.ndarray,
    block: int,
    bucket_of: np.ndarray,
    edges: np.ndarray,
    offset_bits: int,
    words: np.ndarray,
) -> None:
    """BSFP words: sign | bucket << offset_bits | (aligned - edges[t, bucket]), t = select[row, col // block]."""
    rows, cols = bits.shape
    for r in nb.prange(rows):
        for c in range(cols):
            t = select[r, c // block]
            u = aligned[r, c]
            b = bucket_of[t, u]
            words[r, c] = (bits[r, c] & 0x8000) | (b << offset_bits) | (u - edges[t, b])


@nb.njit(cache=True, parallel=True)
def unpack_words(
    words: np.ndarray,
    shift: np.ndarray,
    select: np.ndarray,
    block: int,
    edges: np.ndarray,
    offset_bits: int,
    out_bits: np.ndarray,
) -> None:
    """Full BSFP decode to FP16 bit patterns: undo the remap of the block's table, then its alignment."""
    rows, cols = words.shape
    low_mask = (1 << offset_bits) - 1
    for r in nb.prange(rows):
        for b in range((cols + block - 1) // block):
            t = select[r, b]
            d = -shift[r, b]
            for c in range(b * block, min(cols, (b + 1) * block)):
                w = words[r, c]
                a = scale_code(edges[t, (w >> offset_bits) & 7] + (w & low_mask), d)
                out_bits[r, c] = (w & 0x8000) | (a if a >= 0 else 0)


@nb.njit(cache=True, parallel=True)
def draft_values(
    words: np.ndarray,
    shift: np.ndarray,
    select: np.ndarray,
    block: int,
    levels: np.ndarray,
    offset_bits: int,
    out: np.ndarray,
) -> None:
    """Draft decode from the top nibble: ``(-1)**s * levels[t, bucket] * 2**-shift[row, block]`` (float32)."""
    rows, cols = words.shape
    for r in nb.prange(rows):
        for b in range((cols + block - 1) // block):
            t = select[r, b]
            scale = np.float32(2.0 ** (-shift[r, b]))
            for c in range(b * block, min(cols, (b + 1) * block)):
                nib = words[r, c] >> offset_bits
                v = levels[t, nib & 7] * scale
                out[r, c] = -v if nib >= 8 else v
