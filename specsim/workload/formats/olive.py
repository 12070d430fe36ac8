"""OliVe outlier-victim pair (OVP) quantization, 4-bit and 8-bit, for weights and activations.

Follows the public reference implementation (clevercool/ANT-Quantization, ``olive_quantization``):

* Values are quantized on a combined grid in *code units*: normals then abfloat outliers.
  ``int4`` normals are ``4 * {0..7}`` (max 28), ``flint4`` normals ``{0, 2, 4, 6, 8, 12, 16, 32}``,
  ``int8`` normals ``0.25 * {0..127}`` (max 31.75). Outliers are abfloat with 2 exponent bits and
  ``bits - 3`` mantissa bits, ``v = 2**e * (1 + m / 2**mb)`` for ``e = 5..8``, skipping ``32``:
  4-bit ``{48, 64, 96, 128, 192, 256, 384}`` (E2M1; in int4 steps 12 .. 96 = 1.7x .. 13.7x the
  largest normal), 8-bit E2M5 ``{33, 34, ..., 504}``.
* The scale maps the clip threshold alpha onto the largest normal: ``s = alpha / max_normal``.
  Each element rounds to the nearest grid value (ties: toward +inf, and an exact tie between the
  largest normal and the smallest outlier goes to the outlier, as in the reference's search).
* An element whose rounded magnitude exceeds 32 is an outlier. Elements ``2i`` and ``2i + 1`` of a
  row form a pair; if the even element is an outlier, the odd one is its victim; otherwise, if the
  odd one is an outlier, the even one is the victim. The victim is zeroed and stores the identifier
  code ``1 << (bits - 1)`` (``1000`` in 4 bits); so int4 normals span [-7, 7].
* Stored codes (``bits`` per element): normals as two's complement integers (int) or sign +
  magnitude index (flint; ``-0`` is never produced); outliers as sign + 1-based abfloat index
  (never the victim code); victims as the victim code. Decoding a pair needs no index metadata.
* Clip search: ``x_max = max(|mu + 3 sigma|, |mu - 3 sigma|)``; candidates ``alpha = x_max * i/100``
  for ``i = 75, 77, ..., 249``; least squared error after OVP pruning. Weights: per output row;
  activations: per tensor (calibrated once, then static). 4-bit chooses int or flint normals per
  tensor by total squared error (tie: int); 8-bit uses int normals only. ``search`` runs that
  exhaustively (``strategy="exhaustive"``) or, by default, coarse-to-fine: the data type is then
  chosen on every 4th row and every 8th candidate, and each row's alpha refined by bisection.
* "Outliers" of this format are the elements stored as abfloat outliers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

import numba as nb
import numpy as np
import torch

from specsim.errors import SpecsimError
from specsim.workload.formats.base import EncodedTensor, WeightFormat, check_weight

OUTLIER_THRESHOLD = 32.0  #: code-unit magnitude above which an element is an outlier
SEARCH_PERCENT = tuple(range(75, 250, 2))  #: clip candidates, percent of the 3-sigma start
SCALE_BITS = 16
#: coarse-to-fine search: every k-th candidate first (k by bit width), then bisection (+-k/2, ..., +-1).
#: 8-bit error surfaces are more rugged, so they get a finer coarse pass.
COARSE_STRIDE = {4: 8, 8: 4}
TYPE_ROW_STRIDE = 4  #: int vs flint is chosen on every 4th row


@dataclass(frozen=True)
class OliveGrid:
    """Normal and outlier magnitudes of one OliVe data type, in code units (ascending)."""

    name: str
    bits: int
    normals: tuple[float, ...]
    outliers: tuple[float, ...]
    integer_normals: bool

    @property
    def max_normal(self) -> float:
        return self.normals[-1]

    @property
    def uniform_step(self) -> float:
        """Spacing of uniform (integer) normals, 0 for non-uniform (flint) normals."""
        return self.normals[1] if self.integer_normals else 0.0

    @property
    def victim_code(self) -> int:
        return 1 << (self.bits - 1)

    @property
    def magnitudes(self) -> np.ndarray:
        return np.asarray(self.normals + self.outliers, dtype=np.float64)


def _abfloat(bits: int) -> tuple[float, ...]:
    mb = bits - 3
    vals = [2.0**e * (1 + m / 2**mb) for e in range(5, 9) for m in range(2**mb)]
    return tuple(v for v in vals if v != OUTLIER_THRESHOLD)


@cache
def grid(name: str) -> OliveGrid:
    """The OliVe data types: ``int4``, ``flint4`` and ``int8``."""
    if name == "int4":
        return OliveGrid("int4", 4, tuple(4.0 * k for k in range(8)), _abfloat(4), True)
    if name == "flint4":
        return OliveGrid("flint4", 4, (0.0, 2.0, 4.0, 6.0, 8.0, 12.0, 16.0, 32.0), _abfloat(4), False)
    if name == "int8":
        return OliveGrid("int8", 8, tuple(0.25 * k for k in range(128)), _abfloat(8), True)
    raise SpecsimError(f"unknown OliVe data type '{name}'; expected int4, flint4 or int8")


@nb.njit(cache=True)
def nearest_reference(y: float, mags: np.ndarray, n_normal: int) -> int:
    """Index into ``mags`` of the grid value nearest to ``y`` (signed), with the reference's ties.

    Plain binary search over the whole grid: the readable definition that :func:`_nearest`
    (the fast path used by the kernels) must match exactly (tested).
    """
    return _search(y, abs(y), mags, 0, mags.size - 1, n_normal)


@nb.njit(cache=True, inline="always")
def _search(y: float, a: float, mags: np.ndarray, lo: int, hi: int, n_normal: int) -> int:
    if a >= mags[hi]:
        return hi
    if a <= mags[lo]:
        return lo
    while hi - lo > 1:  # invariant: mags[lo] <= a < mags[hi]
        mid = (lo + hi) // 2
        if mags[mid] <= a:
            lo = mid
        else:
            hi = mid
    d_lo = a - mags[lo]
    d_hi = mags[hi] - a
    if d_lo < d_hi:
        return lo
    if d_hi < d_lo:
        return hi
    if lo == n_normal - 1:  # tie between the largest normal and the smallest outlier
        return hi
    return hi if y >= 0 else lo  # other ties round toward +inf


@nb.njit(cache=True, inline="always")
def _nearest(y: float, mags: np.ndarray, n_normal: int, step: float, boundary: float) -> int:
    """Fast :func:`nearest_reference`: arithmetic rounding on uniform (int) normals (``step > 0``).

    ``boundary`` is the midpoint between the largest normal and the smallest outlier.
    """
    a = abs(y)
    if a >= boundary:  # outlier region (the tie at the boundary goes to the outlier)
        return _search(y, a, mags, n_normal - 1, mags.size - 1, n_normal)
    if step > 0.0:
        k = a / step
        i = int(np.floor(k + 0.5)) if y >= 0 else int(np.ceil(k - 0.5))
        return min(i, n_normal - 1)
    i = 0  # few non-uniform normals: count the midpoints below a (ties: toward +inf)
    a2 = a + a
    if y >= 0:
        for j in range(n_normal - 1):
            i += mags[j] + mags[j + 1] <= a2
    else:
        for j in range(n_normal - 1):
            i += mags[j] + mags[j + 1] < a2
    return i


@nb.njit(cache=True, inline="always")
def _pair(x0: float, x1: float, inv: float, mags: np.ndarray, n_normal: int, step: float):
    """Grid indices of a pair after OVP pruning; index -1 marks the victim."""
    boundary = 0.5 * (mags[n_normal - 1] + mags[n_normal])
    i0 = _nearest(x0 * inv, mags, n_normal, step, boundary)
    i1 = _nearest(x1 * inv, mags, n_normal, step, boundary)
    if i0 >= n_normal:
        i1 = -1
    elif i1 >= n_normal:
        i0 = -1
    return i0, i1


@nb.njit(cache=True, parallel=True)
def _search_sse(
    x: np.ndarray, alphas: np.ndarray, mags: np.ndarray, n_normal: int, step: float, out: np.ndarray
) -> None:
    """Squared error of OVP quantization of each row of ``x`` for each candidate alpha of that row."""
    rows, cols = x.shape
    max_normal = mags[n_normal - 1]
    for r in nb.prange(rows):
        for a in range(alphas.shape[1]):
            s = alphas[r, a] / max_normal
            inv = 1.0 / s
            sse = 0.0
            for c in range(0, cols, 2):
                x0 = x[r, c]
                x1 = x[r, c + 1]
                i0, i1 = _pair(x0, x1, inv, mags, n_normal, step)
                v0 = 0.0 if i0 < 0 else (mags[i0] * s if x0 >= 0 else -mags[i0] * s)
                v1 = 0.0 if i1 < 0 else (mags[i1] * s if x1 >= 0 else -mags[i1] * s)
                sse += (x0 - v0) ** 2 + (x1 - v1) ** 2
            out[r, a] = sse


@nb.njit(cache=True, parallel=True)
def _encode(
    x: np.ndarray,
    scale: np.ndarray,
    mags: np.ndarray,
    n_normal: int,
    bits: int,
    integer_normals: bool,
    step: float,
    codes: np.ndarray,
) -> None:
    rows, cols = x.shape
    sign_bit = 1 << (bits - 1)
    mask = (1 << bits) - 1
    for r in nb.prange(rows):
        inv = 1.0 / scale[r]
        for c in range(0, cols, 2):
            i0, i1 = _pair(x[r, c], x[r, c + 1], inv, mags, n_normal, step if integer_normals else 0.0)
            for j in range(2):
                i = i0 if j == 0 else i1
                v = x[r, c + j]
                if i < 0:
                    code = sign_bit
                elif i >= n_normal:
                    code = (sign_bit if v < 0 else 0) | (i - n_normal + 1)
                elif integer_normals:
                    k = int(round(mags[i] / step))
                    code = (-k if v < 0 else k) & mask
                else:
                    code = (sign_bit if (v < 0 and i > 0) else 0) | i
                codes[r, c + j] = code


@nb.njit(cache=True, parallel=True)
def _decode(
    codes: np.ndarray,
    scale: np.ndarray,
    mags: np.ndarray,
    n_normal: int,
    bits: int,
    integer_normals: bool,
    step: float,
    out: np.ndarray,
) -> None:
    rows, cols = codes.shape
    sign_bit = 1 << (bits - 1)
    for r in nb.prange(rows):
        s = scale[r]
        for c in range(0, cols, 2):
            victim0 = codes[r, c] == sign_bit
            victim1 = codes[r, c + 1] == sign_bit
            for j in range(2):
                code = codes[r, c + j]
                if (victim0 and j == 0) or (victim1 and j == 1):
                    v = 0.0
                elif victim0 or victim1:  # the partner of a victim is an outlier
                    v = mags[n_normal + (code & (sign_bit - 1)) - 1]
                    v = -v if code & sign_bit else v
                elif integer_normals:
                    k = code - (sign_bit << 1) if code & sign_bit else code
                    v = k * step
                else:
                    v = mags[code & (sign_bit - 1)]
                    v = -v if code & sign_bit else v
                out[r, c + j] = v * s


def _start(x: torch.Tensor, per_row: bool) -> torch.Tensor:
    """3-sigma clip start ``max(|mu + 3 sigma|, |mu - 3 sigma|)`` per row or per tensor, shape [rows]."""
    xs = x if per_row else x.reshape(1, -1)
    mu = xs.double().mean(dim=1)
    sd = xs.double().std(dim=1) if xs.shape[1] > 1 else torch.zeros_like(mu)
    start = torch.maximum((mu + 3 * sd).abs(), (mu - 3 * sd).abs())
    start = torch.where(start > 0, start, xs.double().abs().amax(dim=1).clamp_min(1e-30))
    return start if per_row else start.expand(x.shape[0])


def _as_pairs(x: torch.Tensor) -> np.ndarray:
    """float64 [rows, even cols] copy (a zero column pads odd widths; it never becomes an outlier)."""
    rows, cols = x.shape
    arr = np.zeros((rows, cols + (cols & 1)), dtype=np.float64)
    arr[:, :cols] = x.detach().double().numpy()
    return arr


@dataclass(frozen=True)
class OliveChoice:
    """Result of the clip search: data type and per-row clip threshold alpha."""

    grid: OliveGrid
    alpha: torch.Tensor  #: float64 [rows]
    sse: float


def _sse(arr: np.ndarray, start: np.ndarray, percents: np.ndarray, g: OliveGrid) -> np.ndarray:
    """Squared error [rows, candidates] of OVP quantization at alpha = start * percent / 100."""
    alphas = start[:, None] * (percents / 100.0)
    out = np.empty(alphas.shape, dtype=np.float64)
    _search_sse(arr, np.ascontiguousarray(alphas), g.magnitudes, len(g.normals), g.uniform_step, out)
    return out


def _pick(sse: np.ndarray, percents: np.ndarray, per_row: bool) -> tuple[np.ndarray, float]:
    """Best candidate per row (per-row search) or one for all rows (per-tensor); first minimum wins."""
    if per_row:
        idx = sse.argmin(axis=1)
        return percents[idx], float(sse[np.arange(sse.shape[0]), idx].sum())
    total = sse.sum(axis=0)
    return np.full(sse.shape[0], percents[int(total.argmin())]), float(total.min())


def search(
    x: torch.Tensor,
    bits: int,
    per_row: bool,
    percents: tuple[int, ...] = SEARCH_PERCENT,
    strategy: str = "coarse_to_fine",
) -> OliveChoice:
    """OliVe's clip search over alpha (and int vs flint at 4 bits) for least squared error.

    ``strategy="exhaustive"`` evaluates every candidate of ``percents`` (the reference's search:
    88 candidates per data type). ``"coarse_to_fine"`` (default, 3-6x faster) picks the data type
    on every k-th candidate over every 4th row (k = 8 at 4 bits, 4 at 8 bits), evaluates every k-th
    candidate on all rows, then refines each row's optimum by bisection (+-k/2, ..., +-1).
    ``benchmarks/bench_formats.py`` measures how close it comes to the exhaustive search.
    """
    if strategy not in ("exhaustive", "coarse_to_fine"):
        raise SpecsimError(f"unknown OliVe search strategy '{strategy}'")
    arr = _as_pairs(x)
    start = _start(torch.from_numpy(arr[:, : x.shape[1]]), per_row).numpy()
    cand = np.asarray(percents, dtype=np.float64)
    names = ("int4", "flint4") if bits == 4 else ("int8",)
    if strategy == "exhaustive":
        scored = [(_pick(_sse(arr, start, cand, grid(n)), cand, per_row), grid(n)) for n in names]
        (best_pct, best_sse), g = min(scored, key=lambda t: t[0][1])  # min() keeps int on ties
        return OliveChoice(g, torch.from_numpy(start * best_pct / 100.0), best_sse)
    stride = COARSE_STRIDE[bits]
    coarse = cand[::stride]
    if len(names) > 1:  # data type chosen on the coarse candidates of every 4th row
        sub = slice(None, None, TYPE_ROW_STRIDE) if per_row else slice(None)
        sub_arr = np.ascontiguousarray(arr[sub])
        g = min(
            (grid(n) for n in names), key=lambda gr: _pick(_sse(sub_arr, start[sub], coarse, gr), coarse, per_row)[1]
        )
    else:
        g = grid(names[0])
    coarse_sse = _sse(arr, start, coarse, g)
    best_pct, _ = _pick(coarse_sse, coarse, per_row)
    best_row_sse = coarse_sse[np.arange(arr.shape[0]), np.searchsorted(coarse, best_pct)]
    step = cand[1] - cand[0] if cand.size > 1 else 1.0
    delta = stride // 2
    while delta >= 1:  # bisection refinement around each row's (or the tensor's) optimum
        trial = np.clip(best_pct[:, None] + np.array([-delta, delta])[None, :] * step, cand[0], cand[-1])
        sse = np.empty(trial.shape)
        _search_sse(arr, start[:, None] * trial / 100.0, g.magnitudes, len(g.normals), g.uniform_step, sse)
        if per_row:
            j = sse.argmin(axis=1)
            rows = np.arange(sse.shape[0])
            better = sse[rows, j] < best_row_sse
            best_pct = np.where(better, trial[rows, j], best_pct)
            best_row_sse = np.where(better, sse[rows, j], best_row_sse)
        else:
            j = int(sse.sum(axis=0).argmin())
            if sse[:, j].sum() < best_row_sse.sum():
                best_pct, best_row_sse = trial[:, j], sse[:, j]
        delta //= 2
    return OliveChoice(g, torch.from_numpy(start * best_pct / 100.0), float(best_row_sse.sum()))


@dataclass
class OliveTensor(EncodedTensor):
    """Stored OliVe codes (``bits`` per element, pairs along the last axis) and FP16 scales per row."""

    codes: torch.Tensor = field(default=None, repr=False)  #: int32 [rows, even cols]
    scale: torch.Tensor = field(default=None, repr=False)  #: float64 (FP16 values) [rows]
    grid: OliveGrid = None  # type: ignore[assignment]

    def stored_bits(self) -> int:
        distinct = self.scale.unique().numel()
        return self.grid.bits * self.codes.numel() + SCALE_BITS * (distinct if distinct == 1 else self.scale.numel())

    def outlier_count(self) -> int:
        """Abfloat outliers: exactly one per pair that holds a victim."""
        rows, cols = self.codes.shape
        victim = self.codes.reshape(rows, cols // 2, 2) == self.grid.victim_code
        return int(victim.any(dim=2).sum())


class OliVe(WeightFormat):
    """OliVe OVP quantizer for weights (per-row clip search) at 4 or 8 bits."""

    def __init__(self, bits: int = 4, strategy: str = "coarse_to_fine"):
        if bits not in (4, 8):
            raise SpecsimError(f"OliVe supports 4 or 8 bits, got {bits}")
        self.bits = bits
        self.strategy = strategy
        self.name = f"olive{bits}"

    def encode(self, w: torch.Tensor, per_row: bool = True) -> OliveTensor:
        check_weight(w)
        choice = search(w, self.bits, per_row, strategy=self.strategy)
        return encode_with(w, choice)

    def decode(self, enc: OliveTensor) -> torch.Tensor:
        g = enc.grid
        out = np.empty(tuple(enc.codes.shape), dtype=np.float64)
        step = g.normals[1]
        _decode(
            enc.codes.numpy(), enc.scale.numpy(), g.magnitudes, len(g.normals), g.bits, g.integer_normals, step, out
        )
        return torch.from_numpy(out[:, : enc.shape[1]]).float()


def encode_with(x: torch.Tensor, choice: OliveChoice) -> OliveTensor:
    """Encode ``x`` [rows, cols] with a given data type and per-row alpha (e.g. a calibrated one)."""
    g = choice.grid
    arr = _as_pairs(x)
    scale = torch.from_numpy((choice.alpha.numpy() / g.max_normal).astype(np.float16).astype(np.float64))
    scale = torch.where(scale > 0, scale, torch.full_like(scale, 2.0**-24))
    codes = np.empty(arr.shape, dtype=np.int32)
    _encode(arr, scale.numpy(), g.magnitudes, len(g.normals), g.bits, g.integer_normals, g.normals[1], codes)
    return OliveTensor(shape=tuple(x.shape), codes=torch.from_numpy(codes), scale=scale, grid=g)


class OliveActivationQuantizer:
    """Static per-tensor OliVe quantizer for activations: calibrate once, then quantize."""

    def __init__(self, bits: int = 4):
        self.bits = bits
        self.choice: OliveChoice | None = None

    def calibrate(self, x: torch.Tensor) -> OliveActivationQuantizer:
        """Pick data type and alpha on calibration activations ``[tokens, features]``."""
        self.choice = search(x.reshape(-1, x.shape[-1]), self.bits, per_row=False)
        return self

    def quantize(self, x: torch.Tensor) -> torch.Tensor:
        if self.choice is None:
            raise SpecsimError("OliVe activation quantizer used before calibration")
        flat = x.reshape(-1, x.shape[-1])
        alpha = self.choice.alpha[:1].expand(flat.shape[0]).contiguous()
        enc = encode_with(flat, OliveChoice(self.choice.grid, alpha, self.choice.sse))
        return OliVe(self.bits).decode(enc).reshape(x.shape).to(x.dtype)
