"""Tender: INT4/INT8 with power-of-two channel groups and shift-accumulate arithmetic.

Follows the public reference (snu-comparch/Tender):

* **Weights**: symmetric INT per output row, ``scale = amax_row / qmax`` (the per-channel
  :class:`~specsim.workload.formats.integer.IntFormat`).
* **Activations** ``[tokens, channels]`` are split into chunks of 256 rows. Per channel a bias
  ``(max + min) / 2`` is subtracted; ``tmax = max |x - bias|`` over the chunk; thresholds
  ``thr_i = tmax / 2**(G-1-i)``; channel ``c`` joins the smallest group ``i`` with
  ``cmax_c <= thr_i`` ("round up"). Group scales are ``s_i = thr_i / qmax = s_0 * 2**i``: exact
  powers of two apart. Codes: ``clamp(round_half_even(x / s_i), -qmax - 1, qmax)``.
  Calibration is offline: :meth:`TenderActivationQuantizer.calibrate` merges the statistics of all
  calibration chunks (bias averaged, maxima maxed) into one set used for every chunk at run time;
  ``runtime=True`` recomputes them on each chunk instead (the reference's no-calibration mode).
* **Arithmetic** (:func:`tender_matmul`): integer partial sums per group, accumulated from the
  largest-scale group down, the accumulator shifted left by one bit at each group boundary
  (``acc = 2 * acc + P_i``), dequantized once: ``y = acc * s_0 * s_w + bias @ W^T`` (the bias term
  uses the unquantized FP16 weight and is precomputed per chunk, as in the reference code). This
  equals the reference's emulation -- dequantized activations times dequantized weights, plus the
  same bias term -- exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from specsim.errors import SpecsimError
from specsim.workload.formats.integer import IntFormat, IntTensor, qmax_of

CHUNK_ROWS = 256
DEFAULT_GROUPS = 8  #: the reference code's default G


@dataclass(frozen=True)
class TenderCalibration:
    """Per-channel decomposition of a layer's input activations."""

    bias: torch.Tensor  #: float32 [channels], subtracted before quantization
    group: torch.Tensor  #: int64 [channels], group index 0..G-1 (higher = larger scale)
    base_scale: float  #: s_0, scale of group 0; group i has scale s_0 * 2**i
    groups: int
    bits: int

    @property
    def scales(self) -> torch.Tensor:
        """Scale of every group, float64 [G]: exactly ``s_0 * 2**i``."""
        return self.base_scale * torch.exp2(torch.arange(self.groups, dtype=torch.float64))

    def channel_scale(self) -> torch.Tensor:
        return self.scales[self.group]


def _chunk_stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-chunk channel bias, channel max |x - bias| and chunk tmax; x [rows, channels]."""
    rows, channels = x.shape
    chunks = []
    for start in range(0, rows, CHUNK_ROWS):
        c = x[start : start + CHUNK_ROWS].double()
        bias = (c.amax(dim=0) + c.amin(dim=0)) / 2
        cmax = (c - bias).abs().amax(dim=0)
        chunks.append((bias, cmax))
    bias = torch.stack([b for b, _ in chunks])
    cmax = torch.stack([m for _, m in chunks])
    return bias, cmax, cmax.amax(dim=1)


def decompose(bias: torch.Tensor, cmax: torch.Tensor, bits: int, groups: int) -> TenderCalibration:
    """Group channels by their max magnitude into ``groups`` power-of-two scale classes."""
    tmax = float(cmax.max()) if cmax.numel() else 0.0
    if tmax <= 0:
        tmax = 1.0
    exponent = torch.arange(groups, dtype=torch.float64) - (groups - 1)
    thresholds = tmax * torch.exp2(exponent)
    group = torch.searchsorted(thresholds, cmax.double(), right=False).clamp_max(groups - 1)
    base = tmax * 2.0 ** (-(groups - 1)) / qmax_of(bits)
    return TenderCalibration(bias.float(), group, base, groups, bits)


class TenderActivationQuantizer:
    """Tender's activation quantizer for one linear layer's input."""

    def __init__(self, bits: int = 4, groups: int = DEFAULT_GROUPS):
        if bits not in (4, 8):
            raise SpecsimError(f"Tender supports 4 or 8 bits, got {bits}")
        if groups < 1:
            raise SpecsimError(f"Tender needs at least one channel group, got {groups}")
        self.bits = bits
        self.groups = groups
        self.calibration: TenderCalibration | None = None

    def calibrate(self, x: torch.Tensor) -> TenderActivationQuantizer:
        """Offline calibration on real activations ``[..., channels]``."""
        bias, cmax, _ = _chunk_stats(x.reshape(-1, x.shape[-1]))
        self.calibration = decompose(bias.mean(dim=0), cmax.amax(dim=0), self.bits, self.groups)
        return self

    def encode(self, x: torch.Tensor, runtime: bool = False) -> tuple[torch.Tensor, list[TenderCalibration]]:
        """Integer codes ``[rows, channels]`` (int32) and the calibration used by each 256-row chunk."""
        flat = x.reshape(-1, x.shape[-1])
        q = qmax_of(self.bits)
        codes = torch.empty(flat.shape, dtype=torch.int32)
        used = []
        for start in range(0, flat.shape[0], CHUNK_ROWS):
            chunk = flat[start : start + CHUNK_ROWS].double()
            if runtime:
                bias, cmax, _ = _chunk_stats(chunk)
                cal = decompose(bias[0], cmax[0], self.bits, self.groups)
            elif self.calibration is None:
                raise SpecsimError("Tender activation quantizer used before calibration")
            else:
                cal = self.calibration
            scaled = (chunk - cal.bias.double()) / cal.channel_scale()
            codes[start : start + CHUNK_ROWS] = torch.round(scaled).clamp(-q - 1, q).to(torch.int32)
            used.append(cal)
        return codes, used

    def quantize(self, x: torch.Tensor, runtime: bool = False) -> torch.Tensor:
        """Quantize-dequantize view of activations, same shape and dtype."""
        codes, cals = self.encode(x, runtime)
        out = torch.empty(codes.shape, dtype=torch.float64)
        for i, cal in enumerate(cals):
            sl = slice(i * CHUNK_ROWS, (i + 1) * CHUNK_ROWS)
            out[sl] = codes[sl].double() * cal.channel_scale() + cal.bias.double()
        return out.reshape(x.shape).to(x.dtype)


class TenderWeights(IntFormat):
    """Tender's weight format: symmetric INT per output row."""

    def __init__(self, bits: int = 4):
        super().__init__(bits, group=None, name=f"tender{bits}")


def tender_matmul(codes: torch.Tensor, cal: TenderCalibration, w_enc: IntTensor, w_fp: torch.Tensor) -> torch.Tensor:
    """Tender's integer GEMM for one chunk: ``y [rows, out]`` from activation codes and INT weights.

    Partial sums ``P_i`` of each channel group (exact int64) are accumulated from the largest-scale
    group down with a one-bit left shift per group boundary; the result is dequantized once and the
    precomputed bias term ``bias @ W^T`` (unquantized weights) is added. Returns float64.
    """
    if w_enc.group != w_enc.shape[1]:
        raise SpecsimError("tender_matmul needs per-row (group=None) weight codes")
    wq = w_enc.codes[:, : w_enc.shape[1]].long()
    xq = codes.long()
    acc = torch.zeros(codes.shape[0], wq.shape[0], dtype=torch.int64)
    for i in range(cal.groups - 1, -1, -1):
        members = (cal.group == i).nonzero().reshape(-1)
        acc = acc * 2 + xq[:, members] @ wq[:, members].T
    w_scale = w_enc.scales[:, 0].double()
    return acc.double() * cal.base_scale * w_scale + cal.bias.double() @ w_fp.double().T
