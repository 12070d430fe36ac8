"""BSFP: SPEQ's bit-sharing floating point (a 4-bit draft inside every FP16 weight).

Every weight is stored as one 16-bit word. Its top nibble is the draft operand; all 16 bits give
back the original FP16 weight bit-exactly. The draft therefore costs no extra storage and a draft
pass fetches a quarter of the weight bytes (the top-nibble plane).

Exact bit layout of a stored word::

     15   14 13 12   11 ............ 0
    +----+--------+-------------------+
    | s  |   c    |      offset       |      draft operand = bits 15..12 = (s, c)
    +----+--------+-------------------+

* ``s``: the FP16 sign bit, unchanged.
* ``c``: 3-bit bucket code. The *aligned* weight ``v = w * 2**d`` (``d`` a power-of-two shift per
  scope: the whole tensor, or each row = output channel) has ``|v| < 2``, so FP16's top exponent
  bit is 0 and its remaining 14 bits, the *magnitude code* ``u = bits(v) & 0x3FFF`` (4 exponent
  bits + 10 mantissa bits, monotone in ``|v|``), take 16,384 values. A per-tensor *remap* splits
  ``[0, 16384)`` into 8 consecutive buckets with edges ``e0 = 0 <= e1 <= ... <= e8 = 16384`` and
  widths ``e[c+1] - e[c] <= 4096`` (at most 4 binades); ``c`` is the bucket of ``u``.
* ``offset = u - e[c]`` (12 bits).

Full decode (verify pass): ``u = e[c] + offset``; ``v = fp16(s << 15 | u)``; ``w = v * 2**-d``;
bit-exact. Draft decode: ``w_draft = (-1)**s * level[c] * 2**-d`` where ``level`` is an 8-entry
per-tensor table of FP16 magnitudes constrained by the *layout*:

* ``e3``   -- sign + 3-bit exponent code: ``level = (0, 2^-6, ..., 2^-1, 1) * g``; decoding is an
  exponent add (the mantissa of the per-tensor gain ``g`` is applied once per output).
* ``e2m1`` -- sign + E2M1 code: ``level = (0, 0.5, 1, 1.5, 2, 3, 4, 6) / 6 * g``.
* ``lut8`` -- a free per-tensor table of 8 FP16 magnitudes (Lloyd-Max fit), ``level[0] = 0``.

The remap is the exponent remapping: given the levels, bucket edges sit at the code of the midpoint
between consecutive levels (round to nearest), then are moved the least needed to respect the
4096-code width limit. The gain ``g`` (or the table) is fitted per tensor to minimise the draft's
squared error (``fit="mse"``) or pins the top level at the tensor's largest aligned magnitude
(``fit="max"``). Named layouts (:data:`LAYOUTS`): ``<grid>`` (one shift per tensor),
``<grid>_row`` (one shift per row), ``<grid>_row_max`` (pinned top level; ``lut8_row_max`` was the
default until 2026-12-02) and the per-block layouts below; the default, ``lut8_b32s4_t4e``, has the
highest greedy agreement and speculative alpha of them on SmolLM2-135M and Gemma 3 270M.

Per-block layouts (``scope="block"``, names ``<grid>_b<B>[s<bits>][_t<T>[e]]``) close most of the
gap to MXFP4 (which scales every 32 weights along the reduction axis by its own power of two):

* ``d`` is chosen per block of ``B`` consecutive weights of a row (along the in-features, i.e.
  reduction, axis), aligning each block's largest magnitude into ``[1, 2)`` like MXFP4's E8M0 scale.
  A block's shift is stored in ``s`` bits: ``s >= 6`` holds ``d`` itself (every finite FP16 peak
  needs ``d`` in ``[-15, 24]``: 40 values, so 6 bits suffice; the plain ``_b<B>`` names price the
  8 bits of an E8M0 byte), ``s < 6`` holds ``min(d_block - d_row, 2**s - 1)`` above an 8-bit shift
  per row (a block far below its row's maximum is then aligned less than fully; still exact).
* ``T`` level tables per tensor (each one its own remap: edges and levels) and a ``log2 T``-bit
  *selector* per block naming the block's table. The selector is chosen by the leading mantissa
  bits of the block's aligned maximum (``_t<T>``) or, with ``e``, as the table with the least
  squared draft error, the tables refitted on their blocks 3 times (k-means-like); either way the
  encoder just writes it, the decoders read it.
* Bit-exactness holds per scope: every table's remap is a feasible partition of the 14-bit code
  space (widths <= 4096), so ``u = e[t][c] + offset`` and ``w = fp16(s, u) * 2**-d_block``.
  Values a block cannot align exactly (a block whose maximum is >= 2 aligns downwards, ``d < 0``,
  and its subnormals may lose bits) go to the side list, as for the other scopes.

Hardware (quarter-mode PE of a draft pass), per weight: take the nibble's sign, look up
``level[t][c]`` in a ``8 T``-entry FP16 register file (``t`` fixed for the block: the selector
is read once per block), multiply by the FP16 activation; per block: add ``-d_block`` to the
exponent of the block's partial sum (an exponent add once per ``B`` products, as an MX dot
product does with its E8M0 scale; applying it per product instead is one 5-bit exponent add per
weight). The verify pass additionally adds ``e[t][c]`` (a 14-bit add from an ``8 T``-entry edge
table) to the 12-bit offset before its exponent shift by ``-d_block``. ``T`` tables cost
``T x (8 x 16 + 7 x 14)`` bits per tensor.

Draft bits per weight of a per-block layout (no side list): ``4 + (s + log2 T) / B`` + 8 bits per
row if ``s < 6`` + ``8 x 16 x T`` bits per tensor; e.g. ``lut8_b32s6_t4e``: 4 + 8/32 = 4.25 plus
512 bits per tensor, the same as MXFP4's 4 + 8/32 up to the tables; the verify pass reads the 16-bit
words plus the same metadata.

Special values: zeros are exact in both passes (level[0] = 0 and ``u = 0``); subnormals are ordinary
magnitude codes (exact in the full decode); the largest values are aligned into ``[1, 2)`` by ``d``.
Outliers take an exact side list of ``(flat index, original FP16 bits)`` read by both passes:
(a) the ``exact_outliers`` largest magnitudes of a tensor if the layout asks for them, and
(b) elements outside the BSFP range: non-finite values, or values whose alignment ``w * 2**d`` is
not exact (a scope whose largest value is >= 2 aligns downwards, ``d < 0``, and its tiniest values
would lose bits). Their stored word holds the saturated code of the nearest in-range value.

Storage per tensor (bits): 16 per weight + 8 per scope shift (``s`` per block, plus 8 per row if
``s < 6``) + ``log2 T`` per scope selector if ``T > 1`` + ``T x (7 x 14 + 8 x 16)`` (edges, levels)
+ 48 per side-list entry (32-bit index + 16-bit value). A draft pass fetches 4 per weight + the
shifts + the selectors + the level tables + the side list.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

import numpy as np
import torch

from specsim.errors import SpecsimError
from specsim.workload.formats import _fp16_kernels as _kernels
from specsim.workload.formats import fp16
from specsim.workload.formats.base import EncodedTensor, WeightFormat

N_BUCKETS = 8
CODE_SPACE = 1 << 14  #: magnitude codes of aligned values |v| < 2
OFFSET_BITS = 12
BUCKET_CAPACITY = 1 << OFFSET_BITS  #: at most 4096 consecutive codes per bucket (4 binades)
SHIFT_BITS = 8
EDGE_BITS = 14
LEVEL_BITS = 16
SIDE_ENTRY_BITS = 32 + 16

Scope = Literal["tensor", "row", "block"]
Fit = Literal["mse", "max"]
Select = Literal["max", "mse"]
#: Alignment shifts of finite nonzero FP16 values: d = -floor(log2(peak)) in [-15, 24] (40 values), so a
#: 6-bit field holds any block's shift; narrower fields store a clamped delta above an 8-bit row shift.
ABS_SHIFT_BITS = 6

_GRIDS: dict[str, tuple[float, ...] | None] = {
    "e3": (0.0,) + tuple(2.0 ** (c - 7) for c in range(1, 8)),
    "e2m1": tuple(v / 6.0 for v in (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)),
    "lut8": None,
}


@dataclass(frozen=True)
class BSFPLayout:
    """How the draft nibble is decoded and how the remap is fitted.

    Attributes:
        name: layout name as used in format names (``bsfp_draft_<name>``).
        grid: the 8 draft levels relative to a per-tensor gain, or ``None`` for a free table.
        scope: granularity of the power-of-two alignment shift ``d``: ``tensor``, ``row`` or ``block``
            (``block`` consecutive weights of a row, along the reduction axis).
        fit: ``mse`` (least squared draft error) or ``max`` (top level = largest aligned magnitude).
        exact_outliers: the k largest magnitudes of each tensor kept exactly on the side list.
        block: weights per block (``scope="block"`` only).
        shift_bits: bits of each block's shift field (``scope="block"``): >= 6 holds the shift itself;
            1..5 hold ``min(d_block - d_row, 2**shift_bits - 1)`` above an 8-bit shift per row.
        tables: level tables (each with its own remap) per tensor; with more than one, every scope
            (block, or row) stores a ``log2(tables)``-bit selector.
        select: how the selector is chosen: ``max`` (by the leading mantissa bits of the scope's
            aligned maximum) or ``mse`` (the table with the least squared draft error, refitted 3 times).
    """

    name: str
    grid: tuple[float, ...] | None
    scope: Scope = "tensor"
    fit: Fit = "mse"
    exact_outliers: int = 0
    block: int = 32
    shift_bits: int = SHIFT_BITS
    tables: int = 1
    select: Select = "max"

    def __post_init__(self) -> None:
        if self.grid is not None and (len(self.grid) != N_BUCKETS or list(self.grid) != sorted(self.grid)):
            raise ValueError(f"layout {self.name}: grid must hold {N_BUCKETS} ascending levels")
        if self.scope not in ("tensor", "row", "block"):
            raise ValueError(f"layout {self.name}: scope must be 'tensor', 'row' or 'block'")
        if self.fit not in ("mse", "max"):
            raise ValueError(f"layout {self.name}: fit must be 'mse' or 'max'")
        if self.exact_outliers < 0:
            raise ValueError(f"layout {self.name}: exact_outliers must be >= 0")
        if self.block < 1 or not 1 <= self.shift_bits <= SHIFT_BITS:
            raise ValueError(f"layout {self.name}: block must be >= 1 and shift_bits in 1..{SHIFT_BITS}")
        if self.tables not in (1, 2, 4, 8) or self.select not in ("max", "mse"):
            raise ValueError(f"layout {self.name}: tables must be 1, 2, 4 or 8 and select 'max' or 'mse'")

    @property
    def selector_bits(self) -> int:
        return (self.tables - 1).bit_length()

    @property
    def delta_shift(self) -> bool:
        """Block shifts stored as a delta above a per-row shift (narrow shift field)."""
        return self.scope == "block" and self.shift_bits < ABS_SHIFT_BITS

    def draft_bits_per_weight(self, rows: int, cols: int) -> float:
        """Draft bits per weight of an unpadded ``[rows, cols]`` tensor without side-list entries:
        4 + shifts + selectors + level tables (hand formula; :meth:`BSFPTensor.fetched_bits` counts them)."""
        scopes = rows * (-(-cols // self.block)) if self.scope == "block" else (rows if self.scope == "row" else 1)
        shift_field = self.shift_bits if self.scope == "block" else SHIFT_BITS
        meta = scopes * (shift_field + (self.selector_bits if self.tables > 1 else 0))
        meta += rows * SHIFT_BITS if self.delta_shift else 0
        return 4 + (meta + self.tables * N_BUCKETS * LEVEL_BITS) / (rows * cols)


def _layout(base: str, scope: Scope = "tensor", fit: Fit = "mse", k: int = 0) -> BSFPLayout:
    name = base + ("_row" if scope == "row" else "") + ("_max" if fit == "max" else "") + (f"_x{k}" if k else "")
    return BSFPLayout(name, _GRIDS[base], scope, fit, k)


def block_layout(
    base: str, block: int = 32, shift_bits: int = SHIFT_BITS, tables: int = 1, fit: Fit = "mse", select: Select = "max"
) -> BSFPLayout:
    """Per-block layout named ``<base>_b<block>[s<shift_bits>][_t<tables>[e]][_max]`` (``e``: selector by error)."""
    name = f"{base}_b{block}" + (f"s{shift_bits}" if shift_bits != SHIFT_BITS else "")
    name += (f"_t{tables}" + ("e" if select == "mse" else "")) if tables > 1 else ""
    name += "_max" if fit == "max" else ""
    return BSFPLayout(name, _GRIDS[base], "block", fit, 0, block, shift_bits, tables, select)


#: Named layouts selectable as ``bsfp_draft_<name>``.
LAYOUTS: dict[str, BSFPLayout] = {
    lay.name: lay
    for lay in (
        _layout("e3"),
        _layout("e2m1"),
        _layout("lut8"),
        _layout("e3", "row"),
        _layout("lut8", "row"),
        _layout("e3", "row", fit="max"),
        _layout("lut8", "row", fit="max"),
        block_layout("lut8", 32),
        block_layout("lut8", 32, shift_bits=4),
        block_layout("lut8", 32, shift_bits=4, tables=4, select="mse"),
        block_layout("lut8", 32, shift_bits=6, tables=4, select="mse"),
    )
}
#: One alignment shift per 32 weights along the reduction axis (a 4-bit delta above an 8-bit row shift) and
#: 4 level tables per tensor chosen per block by least draft error: 4.20 draft bits/weight on SmolLM2-135M
#: and Gemma 3 270M, where its teacher-forced greedy agreement and speculative alpha match or beat MXFP4's
#: (docs/formats.md#per-block-layouts). Until 2026-12-02 the default was ``lut8_row_max`` (per-row shift,
#: one table, top level pinned at the maximum; 4.01 bits/weight), the best per-tensor/per-row layout.
DEFAULT_LAYOUT = "lut8_b32s4_t4e"


def get_layout(name: str) -> BSFPLayout:
    try:
        return LAYOUTS[name]
    except KeyError:
        raise SpecsimError(f"unknown BSFP layout '{name}'; expected one of: {', '.join(LAYOUTS)}") from None


@dataclass(frozen=True)
class BSFPRemap:
    """Per-tensor exponent remapping: bucket edges (magnitude codes) and draft levels (aligned domain)."""

    edges: tuple[int, ...]
    levels: tuple[float, ...]

    def __post_init__(self) -> None:
        e = self.edges
        if len(e) != N_BUCKETS + 1 or e[0] != 0 or e[-1] != CODE_SPACE:
            raise ValueError(f"remap edges must be {N_BUCKETS + 1} codes from 0 to {CODE_SPACE}: {e}")
        widths = [b - a for a, b in zip(e[:-1], e[1:])]
        if min(widths) < 0 or max(widths) > BUCKET_CAPACITY:
            raise ValueError(f"remap bucket widths must lie in [0, {BUCKET_CAPACITY}]: {widths}")
        if len(self.levels) != N_BUCKETS:
            raise ValueError(f"remap needs {N_BUCKETS} levels")


@dataclass
class BSFPTensor(EncodedTensor):
    """Stored BSFP codes of one tensor (see the module docstring for the layout)."""

    words: torch.Tensor = field(repr=False)  #: int32 holding the 16-bit words, weight shape
    shift: torch.Tensor = field(repr=False)  #: int32 alignment shift d per scope: [1, 1], [rows, 1] or [rows, blocks]
    remaps: tuple[BSFPRemap, ...] = ()  #: one remap (bucket edges + draft levels) per level table
    side_index: torch.Tensor = field(default=None, repr=False)  #: int64 flat indices of side-list entries
    side_bits: torch.Tensor = field(default=None, repr=False)  #: int32 original FP16 bits of those entries
    counts: dict[str, int] = field(default_factory=dict)
    select: torch.Tensor = field(default=None, repr=False)  #: int32 level table per scope, [rows, blocks]
    block: int = 0  #: columns per scope (shift and selector); the row length for tensor and row scopes
    shift_field_bits: int = SHIFT_BITS  #: stored bits per entry of ``shift``
    row_shift_bits: int = 0  #: bits of a base shift per row (block shifts stored as deltas above it)

    def _metadata_bits(self, draft: bool) -> int:
        rows = self.shape[0]
        shift = self.shift_field_bits * self.shift.numel() + self.row_shift_bits * rows
        tables = len(self.remaps)
        selector = (tables - 1).bit_length() * self.select.numel() if tables > 1 else 0
        table = tables * (N_BUCKETS * LEVEL_BITS + (0 if draft else (N_BUCKETS - 1) * EDGE_BITS))
        return shift + selector + table + SIDE_ENTRY_BITS * int(self.side_index.numel())

    def stored_bits(self) -> int:
        return 16 * self.numel + self._metadata_bits(draft=False)

    def fetched_bits(self) -> int:
        """Bits a draft pass reads: the top-nibble plane, shifts, selectors, level tables, the side list."""
        return 4 * self.numel + self._metadata_bits(draft=True)

    def outlier_count(self) -> int:
        return int(self.side_index.numel())

    @property
    def draft_nibbles(self) -> torch.Tensor:
        """The draft operands: bits 15..12 of every word (sign, bucket code)."""
        return self.words >> OFFSET_BITS


@lru_cache(maxsize=1)
def _code_values() -> np.ndarray:
    """float64 value of every magnitude code in [0, 16384) (ascending)."""
    return fp16.from_bits(torch.arange(CODE_SPACE, dtype=torch.int32)).double().numpy()


def project_edges(edges: np.ndarray) -> np.ndarray:
    """Move monotone bucket edges ``[..., 9]`` the least needed so every bucket holds <= 4096 codes."""
    e = np.clip(np.asarray(edges, dtype=np.int64), 0, CODE_SPACE)
    e[..., 0] = 0
    e[..., -1] = CODE_SPACE
    for i in range(1, N_BUCKETS):  # forward: a bucket may not outgrow its capacity from below
        e[..., i] = np.minimum(np.maximum(e[..., i], e[..., i - 1]), e[..., i - 1] + BUCKET_CAPACITY)
    for i in range(N_BUCKETS - 1, 0, -1):  # backward: ... nor from above
        e[..., i] = np.minimum(np.maximum(e[..., i], e[..., i + 1] - BUCKET_CAPACITY), e[..., i + 1])
    return e


def nearest_edges(levels: np.ndarray) -> np.ndarray:
    """Feasible round-to-nearest edges ``[..., 9]`` for ascending levels ``[..., 8]`` (float64)."""
    mids = (levels[..., :-1] + levels[..., 1:]) / 2
    cut = np.searchsorted(_code_values(), mids)  # first code whose value >= midpoint
    pad = np.zeros(cut.shape[:-1] + (1,), dtype=np.int64)
    return project_edges(np.concatenate([pad, cut, pad + CODE_SPACE], axis=-1))


def remap_for_levels(levels) -> BSFPRemap:
    """Round-to-nearest remap for given ascending levels (FP16-rounded), made feasible."""
    lv = np.asarray(levels, dtype=np.float64).astype(np.float16).astype(np.float64)
    return BSFPRemap(tuple(int(e) for e in nearest_edges(lv)), tuple(float(v) for v in lv))


def _bucket_of_codes(edges: tuple[int, ...]) -> np.ndarray:
    """Lookup table code -> bucket (int32) over [0, 16384)."""
    return np.searchsorted(np.asarray(edges[1:-1]), np.arange(CODE_SPACE), side="right").astype(np.int32)


@dataclass(frozen=True)
class CodeMoments:
    """Prefix sums over magnitude codes of a weighted histogram: mass, first and second moments.

    The squared error of a bucket ``[a, b)`` drafted as level ``L`` is
    ``M2[a:b] - 2 L M1[a:b] + L**2 M0[a:b]``, so fitting never revisits the weights.
    """

    m0: np.ndarray
    m1: np.ndarray
    m2: np.ndarray

    @classmethod
    def of(cls, hist: np.ndarray) -> CodeMoments:
        v = _code_values()
        cum = [np.concatenate([[0.0], np.cumsum(hist * v**k)]) for k in range(3)]
        return cls(*cum)

    def sums(self, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Mass, first and second moment of every bucket of ``edges [..., 9]`` -> ``[..., 8]`` each."""
        return tuple(np.diff(m[edges], axis=-1) for m in (self.m0, self.m1, self.m2))

    def sse(self, edges: np.ndarray, levels: np.ndarray) -> np.ndarray:
        """Weighted squared draft error of remaps ``edges [..., 9]``, ``levels [..., 8]``."""
        s0, s1, s2 = self.sums(edges)
        return np.maximum(s2 - 2 * levels * s1 + levels**2 * s0, 0.0).sum(axis=-1)


#: Gain search of grid layouts: top level = largest aligned magnitude x 2**-4 .. 1 (41 log steps).
GAIN_FRACTIONS = tuple(2.0 ** (-4 + 4 * i / 40) for i in range(41))


def fit_remap(hist: np.ndarray, layout: BSFPLayout, top: float) -> BSFPRemap:
    """Choose the per-tensor remap from a weighted histogram of aligned magnitude codes.

    Grid layouts search the gain (top level between 1/16 and 1 times ``top``) for least squared
    draft error, or pin it at ``top`` (``fit="max"``); ``lut8`` runs a constrained Lloyd-Max.

    Args:
        hist: float64 array [16384], weighted count of each magnitude code.
        layout: draft layout (grid or free table, fit objective).
        top: largest aligned magnitude of the tensor, in (0, 2).
    """
    hist = np.asarray(hist, dtype=np.float64)
    if top <= 0:
        top = 1.0
    if layout.grid is not None:
        grid = np.asarray(layout.grid, dtype=np.float64)
        fractions = np.asarray([1.0] if layout.fit == "max" else GAIN_FRACTIONS)
        levels = (fractions[:, None] * grid[None, :] * (top / grid[-1])).astype(np.float16).astype(np.float64)
        best = int(CodeMoments.of(hist).sse(nearest_edges(levels), levels).argmin())
        return remap_for_levels(levels[best])
    return _lloyd_max(CodeMoments.of(hist), top, pin_top=layout.fit == "max")


def _lloyd_max(moments: CodeMoments, top: float, pin_top: bool, iterations: int = 40) -> BSFPRemap:
    """Lloyd-Max quantizer on the code histogram, level[0] pinned to 0, edges kept feasible."""
    remap = remap_for_levels([0.0] + [top * 2.0 ** (c - 7) for c in range(1, 8)])
    for _ in range(iterations):
        mass, moment, _ = moments.sums(np.asarray(remap.edges))
        centroid = np.where(mass > 0, moment / np.maximum(mass, 1e-300), np.asarray(remap.levels))
        centroid[0] = 0.0
        if pin_top:
            centroid[-1] = top
        candidate = remap_for_levels(np.sort(centroid))
        if candidate == remap:
            break
        remap = candidate
    return remap


def shift_of_peaks(peak_codes: np.ndarray) -> np.ndarray:
    """Shift d (int32) aligning each peak magnitude code into [1, 2); 0 for a zero peak."""
    return _kernels.shifts_of_peak_codes(np.ascontiguousarray(peak_codes, dtype=np.int64))


def _alignment_shift(peaks: np.ndarray, layout: BSFPLayout) -> np.ndarray:
    """Shift d per scope [rows, blocks] (int32) from the block peak codes [rows, blocks]."""
    if layout.scope == "tensor":
        return np.full((peaks.shape[0], 1), shift_of_peaks(peaks.max(initial=0)), dtype=np.int32)
    row = shift_of_peaks(peaks.max(axis=1, initial=0))[:, None]
    if layout.scope == "row":
        return row
    d = shift_of_peaks(peaks)
    if layout.delta_shift:  # a clamped delta above the row's shift (all-zero blocks: delta 0)
        d = row + np.where(peaks > 0, np.clip(d - row, 0, (1 << layout.shift_bits) - 1), 0)
    return d.astype(np.int32)


def _class_by_peak(peaks_aligned: np.ndarray, tables: int) -> np.ndarray:
    """Selector by the leading mantissa bits of each scope's aligned maximum (in [1, 2)); 0 below 1."""
    top = peaks_aligned >= (15 << 10)
    return np.where(top, ((peaks_aligned & 0x3FF) * tables) >> 10, 0).astype(np.int32)


SELECT_ROUNDS = 3  #: refits of the error-driven selector (``select="mse"``)


class BSFP(WeightFormat):
    """SPEQ bit-sharing FP16 codec for one draft layout (see the module docstring)."""

    def __init__(self, layout: str | BSFPLayout = DEFAULT_LAYOUT):
        self.layout = get_layout(layout) if isinstance(layout, str) else layout
        self.name = f"bsfp_{self.layout.name}"

    def encode(
        self,
        w: torch.Tensor,
        remap: BSFPRemap | tuple[BSFPRemap, ...] | None = None,
        shift: torch.Tensor | None = None,
        select: torch.Tensor | None = None,
    ) -> BSFPTensor:
        """Encode weights (any float dtype; rounded to FP16 first; non-finite values allowed).

        Args:
            w: 2-D tensor ``[out, in]``.
            remap: use this remap (or one per level table) instead of fitting (tests sweep remap choices).
            shift: alignment shift d -- a scalar, one per row, or one per block ``[rows, blocks]`` --
                instead of the fitted one.
            select: level table per scope ``[rows, blocks]`` instead of the fitted choice.
        """
        if w.dim() != 2:
            raise SpecsimError(f"BSFP expects a 2-D [out, in] tensor, got shape {tuple(w.shape)}")
        lay = self.layout
        h = w.detach().to(torch.float16).contiguous()
        rows, cols = h.shape
        block = lay.block if lay.scope == "block" else max(cols, 1)
        nblocks = -(-cols // block) if cols else 1
        bits = fp16.to_bits(h).numpy()
        mag = (bits & fp16.MAGNITUDE_MASK).astype(np.uint16)
        side = np.zeros(mag.shape, dtype=np.bool_)
        k = min(lay.exact_outliers, h.numel())
        if k:
            finite_mag = torch.from_numpy(np.where(mag < fp16.INF_CODE, mag, 0).astype(np.int32))
            side.reshape(-1)[torch.topk(finite_mag.reshape(-1), k).indices.numpy()] = True
        if shift is None:
            d = _alignment_shift(_kernels.block_peak_codes(mag, side, block), lay)
        else:
            given = np.asarray(shift, dtype=np.int32)
            d = np.broadcast_to(given.reshape(-1, 1) if given.ndim < 2 else given, (rows, nblocks))
        d = np.array(np.broadcast_to(d, (rows, nblocks)), dtype=np.int32)  # a writable copy
        aligned = np.empty(mag.shape, dtype=np.int32)
        _kernels.align_codes(mag, d, block, CODE_SPACE, aligned, side)
        remaps = (remap,) if isinstance(remap, BSFPRemap) else remap
        tables = len(remaps) if remaps is not None else lay.tables
        if select is not None:
            sel = np.array(np.broadcast_to(np.asarray(select, dtype=np.int32), (rows, nblocks)))
        elif tables > 1:
            sel = _class_by_peak(_kernels.block_peak_codes(aligned, side, block), tables)
        else:
            sel = np.zeros((rows, nblocks), dtype=np.int32)
        if remaps is None:
            weight = np.exp2(-2.0 * d)
            remaps = self._fit(aligned, side, sel, weight, block, tables)
            if tables > 1 and lay.select == "mse" and select is None:
                for _ in range(SELECT_ROUNDS):
                    errors = _kernels.block_table_errors(
                        aligned, side, block, _bucket_table(remaps), _level_table(remaps), _code_values()
                    )
                    sel = np.ascontiguousarray(errors.argmin(axis=2).astype(np.int32))
                    remaps = self._fit(aligned, side, sel, weight, block, tables)
        edges = np.asarray([r.edges for r in remaps], dtype=np.int32)
        words = np.empty(mag.shape, dtype=np.int32)
        _kernels.pack_words(bits, aligned, sel, block, _bucket_table(remaps), edges, OFFSET_BITS, words)
        side_index = np.flatnonzero(side)
        first_above = np.asarray([self._first_code_above(r) for r in remaps])
        sel_of = np.repeat(sel, block, axis=1)[:, :cols]
        counts = {
            "weights": h.numel(),
            "zeros": int(np.count_nonzero(mag == 0)),
            "subnormals": int(np.count_nonzero((mag > 0) & (mag < 0x400))),
            "side_exact_top": k,
            "side_out_of_range": int(side_index.size) - k,
            # largest values: aligned magnitudes above the top draft level (clipped by the draft only)
            "draft_clipped": int(np.count_nonzero((aligned >= first_above[sel_of]) & ~side)),
        }
        scope_shift = d[:1, :1] if lay.scope == "tensor" and shift is None else d
        return BSFPTensor(
            shape=tuple(h.shape),
            words=torch.from_numpy(words),
            shift=torch.from_numpy(np.array(scope_shift)),
            remaps=tuple(remaps),
            side_index=torch.from_numpy(side_index),
            side_bits=torch.from_numpy(bits.reshape(-1)[side_index]),
            counts=counts,
            select=torch.from_numpy(sel),
            block=block,
            shift_field_bits=lay.shift_bits if lay.scope == "block" else SHIFT_BITS,
            row_shift_bits=SHIFT_BITS if lay.delta_shift else 0,
        )

    def _fit(self, aligned, side, sel, weight, block: int, tables: int) -> tuple[BSFPRemap, ...]:
        """One remap per level table from the weighted histogram of its scopes' aligned codes."""
        hist = _kernels.weighted_histogram(aligned, side, sel, weight, block, tables, CODE_SPACE)
        out = []
        for t in range(tables):
            nonzero = np.flatnonzero(hist[t])
            top = float(_code_values()[int(nonzero[-1])]) if nonzero.size else 1.0
            out.append(fit_remap(hist[t], self.layout, top))
        return tuple(out)

    @staticmethod
    def _first_code_above(remap: BSFPRemap) -> int:
        return int(np.searchsorted(_code_values(), remap.levels[-1], side="right"))

    @staticmethod
    def _scopes(enc: BSFPTensor) -> tuple[np.ndarray, np.ndarray, int]:
        """Shift and selector per scope, both [rows, blocks] int32, and the scope width in columns."""
        rows = enc.shape[0]
        sel = enc.select.numpy()
        shift = np.ascontiguousarray(np.broadcast_to(enc.shift.numpy(), (rows, sel.shape[1])), dtype=np.int32)
        return shift, sel, enc.block

    def decode(self, enc: BSFPTensor) -> torch.Tensor:
        """Full 16-bit decode (verify pass): the original FP16 values, bit-exact, as float32."""
        return self.decode_fp16(enc).float()

    def decode_fp16(self, enc: BSFPTensor) -> torch.Tensor:
        """Full 16-bit decode returning FP16 (bit-exact reconstruction of the encoded tensor)."""
        out_bits = np.empty(enc.shape, dtype=np.int32)
        edges = np.asarray([r.edges for r in enc.remaps], dtype=np.int32)
        shift, sel, block = self._scopes(enc)
        _kernels.unpack_words(enc.words.numpy(), shift, sel, block, edges, OFFSET_BITS, out_bits)
        out_bits.reshape(-1)[enc.side_index.numpy()] = enc.side_bits.numpy()
        return fp16.from_bits(torch.from_numpy(out_bits))

    def decode_draft(self, enc: BSFPTensor) -> torch.Tensor:
        """Draft decode from the top nibble only (+ level tables, shifts, selectors, side list), as float32."""
        out = np.empty(enc.shape, dtype=np.float32)
        shift, sel, block = self._scopes(enc)
        _kernels.draft_values(enc.words.numpy(), shift, sel, block, _level_table(enc.remaps), OFFSET_BITS, out)
        result = torch.from_numpy(out)
        result.view(-1)[enc.side_index] = fp16.from_bits(enc.side_bits).float()
        return result

    def quantize_draft(self, w: torch.Tensor) -> torch.Tensor:
        """Draft view of ``w`` (what a quarter-width draft pass computes with), in ``w``'s dtype."""
        return self.decode_draft(self.encode(w)).to(w.dtype)


def _bucket_table(remaps) -> np.ndarray:
    """Code -> bucket lookup per level table, int32 [tables, 16384]."""
    return np.stack([_bucket_of_codes(r.edges) for r in remaps])


def _level_table(remaps) -> np.ndarray:
    """Draft levels per table, float32 [tables, 8]."""
    return np.asarray([r.levels for r in remaps], dtype=np.float32)


class BSFPDraft(WeightFormat):
    """The draft view of BSFP as a :class:`WeightFormat` (``decode`` = draft decode)."""

    def __init__(self, layout: str | BSFPLayout = DEFAULT_LAYOUT):
        self.codec = BSFP(layout)
        self.name = f"bsfp_draft_{self.codec.layout.name}"

    def encode(self, w: torch.Tensor) -> BSFPTensor:
        return self.codec.encode(w)

    def decode(self, enc: BSFPTensor) -> torch.Tensor:
        return self.codec.decode_draft(enc)
